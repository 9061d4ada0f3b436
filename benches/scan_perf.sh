#!/usr/bin/env bash
# Reproducible scan comparison (README "Performance"): trawl scan vs grep -F / rg -F / wc -l on
# the same generated Squid log, in the same run.
#   benches/scan_perf.sh [WORKDIR] [LINES]     (RUNS=N: alternated runs of wc -l and trawl, 5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-perf}
lines=${2:-7000000}
cd "$root"
cargo build --release --bin trawl >/dev/null
trawl="$root/target/release/trawl"
if [ ! -f "$work/access.log" ] || [ "$(cat "$work/.lines" 2>/dev/null)" != "$lines" ]; then
  python3 benches/gen_perf_data.py "$work" "$lines"
  echo "$lines" > "$work/.lines"
fi
log="$work/access.log"
size=$(stat -c %s "$log")
echo "input: $log, $(wc -l < "$log") lines, $((size / 1000000)) MB"
( cd "$work" && /usr/bin/time -f "update: %e s, max RSS %M KB" "$trawl" -q update --config trawl.toml --data data --force )
du -sh "$work/data/snapshots" | sed 's/^/snapshot on disk: /'
cat "$log" > /dev/null  # warm the page cache for every contender alike

t() { # label, command...
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  echo "$label: $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}') s" >&2
}
# The read floor and trawl, alternated RUNS times (default 5) so both see the same machine
# (other tenants come and go): min and median of each, and their ratios.
secs() { # command... -> wall seconds
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN{printf "%.3f\n", b-a}'
}
runs=${RUNS:-5}
wc_times=(); trawl_times=()
for _ in $(seq "$runs"); do
  wc_times+=("$(secs wc -l "$log")")
  trawl_times+=("$(secs "$trawl" -q scan --data "$work/data" -o /dev/null "$log")")
done
stats() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END{printf "%s %s", v[1], v[int((NR+1)/2)]}'; }
read -r wc_min wc_med <<< "$(stats "${wc_times[@]}")"
read -r tr_min tr_med <<< "$(stats "${trawl_times[@]}")"
echo "wc -l: min ${wc_min} s, median ${wc_med} s over ${runs} runs"
echo "trawl scan: min ${tr_min} s, median ${tr_med} s over ${runs} runs (alternated with wc -l)"
awk -v a="$tr_min" -v b="$wc_min" -v c="$tr_med" -v d="$wc_med" \
  'BEGIN{printf "trawl scan / wc -l: %.2fx (mins), %.2fx (medians)\n", a/b, c/d}'
/usr/bin/time -f "trawl scan: %e s wall, %U s user, max RSS %M KB (incl. the mapped input)" \
  "$trawl" -q scan --data "$work/data" -o "$work/trawl.alerts" "$log"
# Memory beyond the mapped input: peak anonymous RSS, sampled every 20 ms.
"$trawl" -q scan --data "$work/data" -o /dev/null "$log" & pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
  a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${a:-0}" -gt "$peak" ] && peak=$a
  sleep 0.02
done
wait "$pid"
echo "trawl scan: peak anonymous RSS (beyond the mapped input and snapshot) $((peak / 1024)) MB"
/usr/bin/time -f "trawl scan --no-prefilter (every line parsed and looked up in full): %e s wall, %U s user" \
  "$trawl" -q scan --no-prefilter --data "$work/data" -o "$work/trawl.full.alerts" "$log"
cmp -s "$work/trawl.alerts" "$work/trawl.full.alerts" && echo "with and without the prefilter: identical alerts" || echo "with and without the prefilter: DIFFERENT alerts"
echo "trawl alerts: $(wc -l < "$work/trawl.alerts"); distinct alerted lines: $(grep -o '"offset":[0-9]*' "$work/trawl.alerts" | sort -u | wc -l); planted: $(wc -l < "$work/planted.txt")"
t "LC_ALL=C grep -F -f domains.txt" timeout 900 env LC_ALL=C grep -F -f "$work/domains.txt" "$log" > "$work/grep.out" || true
echo "grep lines: $(wc -l < "$work/grep.out")"
if command -v rg >/dev/null; then
  t "rg -F -f domains.txt" timeout 900 rg -F -f "$work/domains.txt" "$log" > "$work/rg.out" || true
  echo "rg lines: $(wc -l < "$work/rg.out")"
fi
python3 - "$work" <<'PY'
import sys, json, re
work = sys.argv[1]
domains = set(open(f"{work}/domains.txt").read().split())
def true_domain_hit(line):
    m = re.search(r" (?:GET|CONNECT) (?:https?://)?([^/:\s]+)", line)
    if not m:
        return False
    host = m.group(1).lower().split(".")
    return any(".".join(host[i:]) in domains for i in range(len(host)))
for tool in ("grep", "rg"):
    try:
        lines = open(f"{work}/{tool}.out", errors="replace").read().splitlines()
    except FileNotFoundError:
        continue
    false = sum(1 for l in lines if not true_domain_hit(l))
    print(f"{tool}: {len(lines)} lines matched, {false} of them false hits (substring, not the host or a parent)")
PY

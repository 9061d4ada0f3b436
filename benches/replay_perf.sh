#!/usr/bin/env bash
# Reproducible replay comparison (README "Performance → Packets"): trawl replay vs tshark -T fields
# vs tcpdump -r (the read floor) on the same generated capture, in the same run.
#   benches/replay_perf.sh [WORKDIR] [PACKETS]
# Generates (once per packet count) the 1.5M indicators (benches/gen_perf_data.py: 1M domains,
# 100k URLs, 100k IPs, 10k CIDRs, plus 290k more domains here) and the capture (the seeded mix
# of benches/replay.rs with flows that churn and ~0.1% planted hits:
# `cargo run --release -p trawl-ingest --example gen_capture`), runs `trawl update`, then times
# each tool with /usr/bin/time and samples trawl's VmRSS every second.
# TSHARK_PACKETS (default 200000): tshark is timed on a prefix of that many packets (editcap),
# and trawl on the same prefix, for the side-by-side ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-replay-perf}
packets=${2:-5000000}
tshark_packets=${TSHARK_PACKETS:-200000}
mkdir -p "$work"
cd "$root"
cargo build --release --bin trawl >/dev/null 2>&1
cargo build --release -p trawl-ingest --example gen_capture >/dev/null 2>&1
trawl="$root/target/release/trawl"
if [ ! -f "$work/domains.txt" ] || [ ! -f "$work/extra.txt" ]; then
  python3 benches/gen_perf_data.py "$work" 1000 >/dev/null
  python3 - "$work" <<'PY'
import random, sys
work = sys.argv[1]
rng = random.Random(20261129)
seen = set(open(f"{work}/domains.txt").read().split())
A = "abcdefghijklmnopqrstuvwxyz0123456789"
extra = set()
while len(extra) < 290_000:
    d = "".join(rng.choice(A) for _ in range(rng.randint(6, 16))) + rng.choice([".com", ".net", ".org", ".xyz", ".top"])
    if d not in seen:
        extra.add(d)
open(f"{work}/extra.txt", "w").write("\n".join(sorted(extra)) + "\n")
with open(f"{work}/trawl.toml", "a") as f:
    f.write('[[feed]]\nname = "perf-extra"\nsource = "extra.txt"\nformat = "plain"\n'
            'itype = "fqdn"\nconfidence = 80\nseverity = "high"\nderive = false\n\n')
PY
  rm -f "$work/.packets"
fi
cap="$work/capture.pcap"
if [ ! -f "$cap" ] || [ "$(cat "$work/.packets" 2>/dev/null)" != "$packets" ]; then
  "$root/target/release/examples/gen_capture" "$cap" "$packets" "$work"
  echo "$packets" > "$work/.packets"
fi
( cd "$work" && /usr/bin/time -f "update: %e s, max RSS %M KB" "$trawl" -q update --config trawl.toml --data data --force )
echo "indicators: $(cat "$work"/domains.txt "$work"/extra.txt "$work"/urls.txt "$work"/ips.txt "$work"/cidrs.txt | wc -l)"
echo "capture: $cap, $packets packets, $(( $(stat -c %s "$cap") / 1000000 )) MB, planted hits: $(wc -l < "$cap.planted")"
echo "load before: $(uptime)"
cat "$cap" > /dev/null  # warm the page cache for every contender alike

rows=()
row() { # label packets timefile
  local label=$1 n=$2 tf=$3
  read -r wall user sys rss < "$tf"
  rows+=("$(awk -v l="$label" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN{
    c = u + s; printf "| %s | %d | %.2f | %.2f | %d | %.0f | %.0f |", l, n, w, c, r / 1024, n / (w > 0 ? w : 0.01), n / (c > 0 ? c : 0.01) }')")
}
timed() { # timefile command...
  local tf=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$tf" "$@"
}

# trawl replay, with VmRSS sampled every second.
/usr/bin/time -f "%e %U %S %M" -o "$work/t.trawl" \
  "$trawl" replay --data "$work/data" -o "$work/trawl.alerts" "$cap" 2> "$work/trawl.summary" &
tpid=$!
: > "$work/rss.log"
sleep 0.5
while kill -0 "$tpid" 2>/dev/null; do
  pid=$(pgrep -P "$tpid" -x trawl || true)
  [ -n "$pid" ] && awk -v t="$(date +%s)" '/^VmRSS/{print t, $2}' "/proc/$pid/status" 2>/dev/null >> "$work/rss.log" || true
  sleep 1
done
wait "$tpid"
cat "$work/trawl.summary"
row "trawl replay (2 workers + reader)" "$packets" "$work/t.trawl"
echo "trawl alerts: $(wc -l < "$work/trawl.alerts") (planted: $(wc -l < "$cap.planted"))"
echo "VmRSS samples (KB, one a second): $(awk '{printf "%s ", $2}' "$work/rss.log")"

timed "$work/t.tcpdump" tcpdump -r "$cap" -w /dev/null 2>/dev/null
row "tcpdump -r FILE -w /dev/null" "$packets" "$work/t.tcpdump"

pre="$work/prefix.pcap"
if [ "$tshark_packets" -lt "$packets" ]; then
  editcap -r "$cap" "$pre" "1-$tshark_packets" >/dev/null
else
  pre=$cap; tshark_packets=$packets
fi
timed "$work/t.trawl_pre" "$trawl" -q replay --data "$work/data" -o /dev/null "$pre"
row "trawl replay, first $tshark_packets packets" "$tshark_packets" "$work/t.trawl_pre"
timed "$work/t.tshark" tshark -n -r "$pre" -T fields -E separator=/t \
  -e frame.number -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e tcp.srcport -e tcp.dstport \
  -e udp.srcport -e udp.dstport -e dns.qry.name -e dns.a -e dns.aaaa -e dns.cname \
  -e http.request.method -e http.host -e http.request.uri -e http.user_agent \
  -e tls.handshake.extensions_server_name -e tls.handshake.ja3 > "$work/tshark.tsv" 2>/dev/null
row "tshark -T fields (same fields), first $tshark_packets packets" "$tshark_packets" "$work/t.tshark"
echo "load after: $(uptime)"
echo
echo "| tool | packets | wall s | CPU s (user+sys) | max RSS MiB | packets/s wall | packets per CPU-s |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
awk '{print $1 + 0}' "$work/t.trawl_pre" "$work/t.tshark" | paste -sd' ' | awk '{ if ($1 > 0) printf "tshark / trawl wall on the same %s packets: %.0fx\n", "'"$tshark_packets"'", $2 / $1 }'
read -r _ tu ts _ < "$work/t.trawl_pre"; read -r _ su ss _ < "$work/t.tshark"
awk -v a="$tu" -v b="$ts" -v c="$su" -v d="$ss" 'BEGIN{ if (a + b > 0) printf "tshark / trawl CPU: %.0fx\n", (c + d) / (a + b) }'

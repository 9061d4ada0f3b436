#!/usr/bin/env bash
# trawl serve under load (issue 18 "Performance"), on the 1.21M-indicator set of
# gen_perf_data.py, with query logging on:
#   - GET /indicators?q= with wrk, cycling through a mix of hits and misses (one Lua script):
#     requests/s and latency percentiles;
#   - GET /v1/feed?format=snort&itype=ipv4&limit=100000 (100k IPv4 as Snort rules): time;
#   - POST /indicators of 10k new indicators: time;
#   - the server's RSS sampled every second over the whole run;
#   - the same lookups through `trawl query` (one process for all, and one per value).
#   benches/server_perf.sh [WORKDIR] [SECONDS] [CONNECTIONS]
# Env: WRK_THREADS (2), NO_BUILD=1 (use target/release/trawl as it is), MIX (hit share in %, 50).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-serve-perf}
secs=${2:-30}
conns=${3:-32}
threads=${WRK_THREADS:-2}
mix=${MIX:-50}
cd "$root"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
[ -n "${NO_BUILD:-}" ] || cargo build --release --bin trawl >/dev/null
trawl="$root/target/release/trawl"
if [ ! -f "$work/domains.txt" ]; then
  python3 benches/gen_perf_data.py "$work" 1000
fi
cfg="$work/serve.toml"
# Rate limits off: the load generator is one address with one token.
{ printf '[sensor]\ndata = "data"\n\n[server]\nrate_limit = 0\nrate_limit_per_address = 0\n\n'
  cat "$work/trawl.toml"; } > "$cfg"
if [ ! -e "$work/data/current" ]; then
  /usr/bin/time -f "update: %e s, max RSS %M KB" "$trawl" -q update --config "$cfg"
fi
rm -f "$work"/data/server.db*   # a fresh store: the query log starts empty
tok=$("$trawl" token create --config "$cfg" --user bench --read --write --max-tlp red --format json 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# The lookups: MIX% hits (domains, IPv4, URLs' hosts in the feeds), the rest misses.
python3 - "$work" "$mix" <<'EOF'
import random, sys
work, mix = sys.argv[1], int(sys.argv[2])
rng = random.Random(18)
doms = open(f"{work}/domains.txt").read().split()
ips = open(f"{work}/ips.txt").read().split()
vals = []
for n in range(20000):
    if rng.randrange(100) < mix:
        vals.append(rng.choice(doms) if n % 3 else rng.choice(ips))
    elif n % 3:
        vals.append(f"miss{n}-{rng.randrange(1 << 30):x}.example.org")
    else:
        vals.append(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}")
open(f"{work}/lookups.txt", "w").write("\n".join(vals) + "\n")
# 10k new indicators for POST /indicators.
import json
sub = [{"indicator": f"posted{n}-{rng.randrange(1 << 30):x}.example.net", "confidence": 7,
        "tags": ["bench"]} for n in range(10000)]
open(f"{work}/post10k.json", "w").write(json.dumps(sub))
EOF
cat > "$work/lookups.lua" <<'EOF'
-- wrk: GET /indicators?q= cycling through lookups.txt (each thread from its own offset).
local vals = {}
for line in io.lines(os.getenv("LOOKUPS")) do vals[#vals + 1] = line end
local auth = "Token token=" .. os.getenv("TOKEN")
local i = math.random(#vals)
request = function()
  i = i % #vals + 1
  return wrk.format("GET", "/indicators?q=" .. vals[i], { ["Authorization"] = auth })
end
EOF

ready="$work/ready"; rm -f "$ready"
"$trawl" serve --config "$cfg" --listen 127.0.0.1:0 --ready-file "$ready" 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; kill $rss_pid 2>/dev/null' EXIT
for _ in $(seq 300); do [ -s "$ready" ] && break; sleep 0.1; done
url=$(cat "$ready")
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s) $(rss)"; sleep 1; done ) > "$work/rss.log" &
rss_pid=$!
echo "server $url (pid $pid), RSS at start $(rss) KB; $(wc -l < "$work/lookups.txt") lookups, ${mix}% hits"
curl -s -o /dev/null -H "Authorization: Token token=$tok" "$url/indicators?q=warm.example&nolog=1"

echo "== GET /indicators?q= : wrk -t$threads -c$conns -d${secs}s"
LOOKUPS="$work/lookups.txt" TOKEN="$tok" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency \
  -s "$work/lookups.lua" "$url" | tee "$work/wrk.txt"
echo "RSS after the load: $(rss) KB"
logged=$(curl -s -H "Authorization: Token token=$tok" "$url/indicators?q=$(sed -n 2p "$work/lookups.txt")&nolog=1" |
  python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(max([r.get("count",0) for r in d] or [0]))')
echo "searches of one value logged (count): $logged"

timed() { # label, curl args...
  local label=$1; shift
  curl -s -o "$work/out.bin" -w "$label: HTTP %{http_code}, %{size_download} bytes, %{time_total} s\n" \
    -H "Authorization: Token token=$tok" "$@"
}
echo "== feed and submissions"
for n in 1 2 3; do
  timed "GET /v1/feed?format=snort&itype=ipv4&limit=100000 (run $n)" \
    "$url/v1/feed?format=snort&itype=ipv4&limit=100000"
done
echo "snort rules in the feed: $(grep -c '^alert' "$work/out.bin")"
timed "POST /indicators, 10k" -H 'Content-Type: application/json' \
  --data-binary @"$work/post10k.json" "$url/indicators"
timed "GET /search?q=posted0... (a submission, at once)" \
  "$url/search?q=$(python3 -c "import json; print(json.load(open('$work/post10k.json'))[0]['indicator'])")&nolog=1"
grep -o '"indicator"' "$work/out.bin" | head -1 | sed 's/^/found: /'
echo "RSS at the end: $(rss) KB"
awk 'NR==1 {min=$2; max=$2} {if ($2<min) min=$2; if ($2>max) max=$2} END {printf "RSS over the run: min %d KB, max %d KB, %d samples\n", min, max, NR}' "$work/rss.log"

echo "== the same lookups through trawl query (local snapshot)"
head -1000 "$work/lookups.txt" > "$work/lookups1k.txt"
/usr/bin/time -f "trawl query -n, 1000 values in one process: %e s, max RSS %M KB" \
  "$trawl" query -n --format json --data "$work/data" $(cat "$work/lookups1k.txt") > /dev/null || true
start=$(date +%s.%N)
head -100 "$work/lookups.txt" | while read -r v; do "$trawl" query -n --data "$work/data" "$v" >/dev/null || true; done
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN{printf "trawl query -n, one process per value: %.1f ms a lookup (100 values)\n", (b-a)*10}'

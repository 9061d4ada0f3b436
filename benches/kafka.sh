#!/usr/bin/env bash
# Kafka benchmark (benches/README.md "Kafka"): a Tansu broker (release build, memory storage)
# on 127.0.0.1, a topic of 4 partitions holding 2M Zeek dns JSON records (Zeek's Kafka
# tagging) with 1,000 planted hits, the standard 1.21M-indicator bench set; then
#   1. one `trawl run` in a group consumes the topic: messages/s, trawl's and the broker's
#      CPU per million messages, every planted hit's alert in the output topic;
#   2. the same member, caught up, while records arrive at LIVE_RATE/s: latency from a
#      record's produce time to its alert's produce time (p50, p99);
#   3. two `trawl run` in a new group consume the same 2M records: the same figures.
#
#   benches/kafka.sh [WORKDIR]
#   env: RECORDS (2000000) HITS (1000) LIVE_RECORDS (100000) LIVE_HITS (100) LIVE_RATE (20000)
#        TANSU (a release build of tansu 0.6.0; default /tmp/tansu-release-bin, else
#        ~/.cargo/bin/tansu, which `make test-deps` builds in debug: slower), TRAWL and
#        CLIENT (binaries to use instead of those built), SOURCE_OPTIONS (lines added to the
#        members' [source.options], e.g. '"fetch.wait.max.ms" = 100')
# One command, a printed summary at the end (also in WORKDIR/summary.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-kafka-bench}
records=${RECORDS:-2000000}
hits=${HITS:-1000}
live=${LIVE_RECORDS:-100000}
live_hits=${LIVE_HITS:-100}
rate=${LIVE_RATE:-20000}
tansu_src=${TANSU:-/tmp/tansu-release-bin}
[ -x "$tansu_src" ] || tansu_src=$HOME/.cargo/bin/tansu
[ -x "$tansu_src" ] || { echo "no tansu binary: set TANSU=/path/to/tansu (make test-deps builds one)" >&2; exit 1; }
mkdir -p "$work"
cd "$root"
# One cargo command for both: the bench target's dev-dependencies change the features some
# shared crates are built with, so building them apart rebuilds trawl each time.
# Nothing is built when both binaries are given (A/B runs of an old and a new trawl).
built=""
if [ -z "${TRAWL:-}" ] || [ -z "${CLIENT:-}" ]; then
built=$(cargo build --release --bin trawl --bench kafka_client --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable"): print(m["target"]["name"], m["executable"])')
fi
trawl=${TRAWL:-$(awk '$1 == "trawl" {print $2}' <<< "$built")}
client=${CLIENT:-$(awk '$1 == "kafka_client" {print $2}' <<< "$built")}
[ -x "$trawl" ] && [ -x "$client" ] || { echo "building trawl and kafka_client failed: cargo build --release --bin trawl --bench kafka_client" >&2; exit 1; }
tick=$(getconf CLK_TCK)
summary="$work/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # ticks, user + system
now() { date +%s.%N; }
# Context switches of every thread of a process (voluntary: waits, i.e. wake-ups; and forced).
ctxsw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'; }

# Data: the standard indicator set (gen_perf_data.py; its Squid log is not used) and the records.
if [ ! -f "$work/domains.txt" ]; then
  python3 benches/gen_perf_data.py "$work" 1000 >/dev/null
fi
if [ "$(cat "$work/.records" 2>/dev/null)" != "$records $hits $live $live_hits" ]; then
  python3 benches/gen_kafka_dns.py "$work" dns "$records" "$hits"
  python3 benches/gen_kafka_dns.py "$work" live "$live" "$live_hits" 7
  echo "$records $hits $live $live_hits" > "$work/.records"
fi
if [ ! -d "$work/data/snapshots" ]; then
  (cd "$work" && "$trawl" -q update --config trawl.toml --data data --force)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The broker.
cp "$tansu_src" "$work/tansu"
bport=$(free_port)
brokers="127.0.0.1:$bport"
"$work/tansu" broker --listener-url "tcp://$brokers" --advertised-listener-url "tcp://$brokers" \
  --storage-engine memory://tansu/ > "$work/tansu.log" 2>&1 &
broker=$!
pids+=("$broker")
for _ in $(seq 200); do (echo > "/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break; sleep 0.1; done
"$client" topic "$brokers" dns 4
"$client" topic "$brokers" dns-live 4

say "load before: $(uptime)"
b0=$(cpu "$broker")
say "producer: $("$client" produce "$brokers" dns 4 "$work/dns.json" "$work/dns.planted.txt" "$work/dns.offsets")"
say "  broker CPU while taking them: $(awk -v a="$b0" -v b="$(cpu "$broker")" -v t="$tick" -v n="$records" \
  'BEGIN{printf "%.2f s, %.2f CPU-s per million", (b-a)/t, (b-a)/t/(n/1e6)}')"

# One member's config: the feeds (for `trawl update`, not used by run), the source and sink.
member_config() { # name port group topics alert-topic
  local dir="$work/$1"
  rm -rf "$dir"; mkdir -p "$dir"
  cp -r "$work/data" "$dir/data"
  cat > "$dir/trawl.toml" <<EOF
[sensor]
name = "kafka-bench-$1"
data = "$dir/data"
metrics = "127.0.0.1:$2"

[[source]]
kind = "kafka"
brokers = ["$brokers"]
topics = $4
group = "$3"
start = "earliest"
[source.options]
"statistics.interval.ms" = 1000
"session.timeout.ms" = 6000
"heartbeat.interval.ms" = 500
${SOURCE_OPTIONS:-}

[[sink]]
kind = "kafka"
brokers = ["$brokers"]
topic = "$5"
EOF
}
consumed() { # metrics ports... -> messages of topic dns consumed, summed
  local n=0 p v
  for p in "$@"; do
    v=$(curl -s "http://127.0.0.1:$p/metrics" | awk '/^trawl_kafka_messages_total\{topic="dns"\}/ {print $2}')
    n=$((n + ${v:-0}))
  done
  echo "$n"
}

# Run NAME MEMBERS GROUP TOPICS: start the members, time them through the dns topic.
mports=(); mpids=()
run() {
  local name=$1 members=$2 group=$3 topics=$4 i
  mports=(); mpids=()
  "$client" topic "$brokers" "alerts-$name" 4
  for i in $(seq "$members"); do
    mports+=("$(free_port)")
    member_config "$name-$i" "${mports[-1]}" "$group" "$topics" "alerts-$name"
    "$trawl" run --config "$work/$name-$i/trawl.toml" 2> "$work/$name-$i/stderr" &
    mpids+=("$!"); pids+=("$!")
  done
  local t0="" c0=0 bc0=0 w0=0 n=0 deadline=$((SECONDS + 1800))
  while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(consumed "${mports[@]}")
    if [ -z "$t0" ] && [ "$n" -gt 0 ]; then
      t0=$(now); n0=$n; c0=0; w0=0; for p in "${mpids[@]}"; do c0=$((c0 + $(cpu "$p"))); w0=$((w0 + $(ctxsw "$p"))); done; bc0=$(cpu "$broker")
    fi
    [ "$n" -ge "$records" ] && break
    sleep 0.2
  done
  local t1 c1=0 bc1 w1=0
  t1=$(now); for p in "${mpids[@]}"; do c1=$((c1 + $(cpu "$p"))); w1=$((w1 + $(ctxsw "$p"))); done; bc1=$(cpu "$broker")
  [ "$n" -ge "$records" ] || { say "$name: only $n of $records consumed in 30 min"; return 1; }
  say "$name: $members trawl run in group $group: $((n - n0)) messages in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s: $(awk -v a="$t0" -v b="$t1" -v n="$((n - n0))" 'BEGIN{printf "%.0f", n/(b-a)}') messages/s consumed and matched"
  say "  trawl CPU: $(awk -v a="$c0" -v b="$c1" -v t="$tick" -v n="$((n - n0))" 'BEGIN{printf "%.2f s, %.2f CPU-s per million messages", (b-a)/t, (b-a)/t/(n/1e6)}');" \
    "broker CPU: $(awk -v a="$bc0" -v b="$bc1" -v t="$tick" -v n="$((n - n0))" 'BEGIN{printf "%.2f s, %.2f CPU-s per million messages", (b-a)/t, (b-a)/t/(n/1e6)}')"
  say "  trawl context switches (all threads): $((w1 - w0)), $(awk -v w="$((w1 - w0))" -v n="$((n - n0))" 'BEGIN{printf "%.0f", w/(n/1e6)}') per million messages"
  if [ "$n" -gt "$records" ]; then say "  $((n - records)) messages read twice (in flight at a rebalance)"; fi
  for i in $(seq "$members"); do
    say "  member $i: $(consumed "${mports[$((i - 1))]}") messages; max RSS $(awk '/VmHWM/ {print int($2/1024)}' "/proc/${mpids[$((i - 1))]}/status") MB"
  done
  # The records were all in the topic before the members started: no latency figure here.
  say "  $("$client" collect "$brokers" "alerts-$name" 4 "$work/dns.offsets" 120 | sed 's/; latency.*//')"
}
stop_members() { for p in "${mpids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; for p in "${mpids[@]}"; do wait "$p" 2>/dev/null || true; done; }

run one 1 bench-one '["dns", "dns-live"]'
# Latency: records at LIVE_RATE/s to the member, which has caught up.
sleep 2
lc0=$(cpu "${mpids[0]}"); lb0=$(cpu "$broker")
say "live: $("$client" produce "$brokers" dns-live 4 "$work/live.json" "$work/live.planted.txt" "$work/live.offsets" "$rate")"
sleep 1
say "  $("$client" collect "$brokers" "alerts-one" 4 "$work/live.offsets" 60)"
say "  at $rate records/s: trawl CPU $(awk -v a="$lc0" -v b="$(cpu "${mpids[0]}")" -v t="$tick" -v n="$live" 'BEGIN{printf "%.2f CPU-s per million", (b-a)/t/(n/1e6)}'), broker $(awk -v a="$lb0" -v b="$(cpu "$broker")" -v t="$tick" -v n="$live" 'BEGIN{printf "%.2f CPU-s per million (with the producer'"'"'s load)", (b-a)/t/(n/1e6)}')"
stop_members
run two 2 bench-two '["dns"]'
stop_members
say "load after: $(uptime)"
echo
echo "=== summary ($work/summary.txt) ==="
cat "$summary"

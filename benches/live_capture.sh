#!/usr/bin/env bash
# Live capture side by side (README "Packets"): tcpreplay sends a capture from a network
# namespace into a veth pair; `tcpdump -w /dev/null` and `trawl sniff` listen in turn on the host
# end, at top speed and at fixed rates. Prints sent / captured / dropped for each, and the
# highest rate at which trawl dropped nothing.
#   sudo benches/live_capture.sh CAPTURE DATA_DIR
# CAPTURE: a pcap (e.g. benches/replay_perf.sh's WORKDIR/capture.pcap); DATA_DIR: a data directory
# with a compiled snapshot (replay_perf.sh's WORKDIR/data). Environment:
#   RATES    space-separated packets/s, "top" for --topspeed (default "top 100000 200000 300000")
#   WORKERS  trawl sniff --workers (default 1)   BUFFER  trawl --buffer MiB and tcpdump -B (default 64)
#   LOOP     tcpreplay --loop (default 1)        TRAWL   the binary (default target/release/trawl)
# Needs root, iproute2, tcpreplay and tcpdump. Report the load (`uptime`, printed) with figures.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:?usage: live_capture.sh CAPTURE DATA_DIR}
data=${2:?usage: live_capture.sh CAPTURE DATA_DIR}
rates=${RATES:-top 100000 200000 300000}
workers=${WORKERS:-1}
buffer=${BUFFER:-64}
loop=${LOOP:-1}
trawl=${TRAWL:-$root/target/release/trawl}
[ -x "$trawl" ] || (cd "$root" && cargo build --release --bin trawl >/dev/null 2>&1)
for t in ip tcpreplay tcpdump; do
  command -v "$t" >/dev/null || { echo "needs $t" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, veth, capture)" >&2; exit 2; }

ns=trawl-live-$$ host=tlh$$ peer=tlp$$
work=$(mktemp -d)
cleanup() {
  ip link del "$host" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "$host" type veth peer name "$peer" netns "$ns"
sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
ip link set "$host" up
ip netns exec "$ns" ip link set "$peer" up

# send RATE: replay into the peer; prints "SENT PPS".
send() {
  local speed=(--topspeed)
  [ "$1" = top ] || speed=(--pps="$1")
  ip netns exec "$ns" tcpreplay -i "$peer" "${speed[@]}" --loop="$loop" "$cap" 2>&1 |
    awk '/Actual:/{n=$2} /Rated:/{for(i=1;i<=NF;i++) if($i=="pps") p=$(i-1); if(!p) p=$4} END{printf "%d %d\n", n, p}'
}

# listen NAME CMD...: run CMD in the background, send, stop it with SIGINT; prints "SENT PPS" and
# leaves the listener's stderr in $work/NAME.err.
listen() {
  local name=$1; shift
  "$@" 2> "$work/$name.err" &
  local pid=$!
  sleep 3  # libpcap open, trawl's snapshot load
  send "$rate" > "$work/$name.sent"
  sleep 1
  kill -INT "$pid"
  wait "$pid" || true
}

echo "capture: $cap ($(stat -c %s "$cap") bytes), loop $loop, trawl --workers $workers --buffer $buffer"
echo "load before: $(uptime)"
printf '| rate | tool | sent | sent pps | captured | kernel dropped | if dropped | queue dropped |\n|---|---|---|---|---|---|---|---|\n'
best=0
for rate in $rates; do
  listen tcpdump tcpdump -n -i "$host" -B $((buffer * 1024)) -w /dev/null
  read -r sent pps < "$work/tcpdump.sent"
  got=$(awk '/packets captured/{print $1}' "$work/tcpdump.err")
  drop=$(awk '/dropped by kernel/{print $1}' "$work/tcpdump.err")
  ifdrop=$(awk '/dropped by interface/{print $1}' "$work/tcpdump.err")
  echo "| $rate | tcpdump -w /dev/null | $sent | $pps | ${got:-?} | ${drop:-?} | ${ifdrop:-0} | - |"

  listen trawl "$trawl" sniff -i "$host" --data "$data" -o /dev/null --buffer "$buffer" --workers "$workers"
  read -r sent pps < "$work/trawl.sent"
  line=$(grep '^captured ' "$work/trawl.err" || true)
  got=$(awk '{print $2}' <<< "$line")
  drop=$(awk '{print $6}' <<< "$line")
  # "captured N packets on IFACE: K dropped by the kernel (ring full), I by the interface,
  # Q by trawl (decoder queue full)"
  ifdrop=$(awk '{for(i=1;i<=NF;i++) if($i=="by" && $(i+1)=="the" && $(i+2)~/^interface/) print $(i-1)}' <<< "$line")
  qdrop=$(awk '{for(i=1;i<=NF;i++) if($i=="by" && $(i+1)=="trawl") print $(i-1)}' <<< "$line")
  echo "| $rate | trawl sniff | $sent | $pps | ${got:-?} | ${drop:-?} | ${ifdrop:-?} | ${qdrop:-?} |"
  if [ "${drop:-1}" = 0 ] && [ "${ifdrop:-1}" = 0 ] && [ "${qdrop:-1}" = 0 ] && [ "$pps" -gt "$best" ]; then best=$pps; fi
done
echo "load after: $(uptime)"
echo "highest sending rate (packets/s) at which trawl dropped nothing: $best"

#!/usr/bin/env bash
# Sightings ingestion (issue 19): batches POSTed to /v1/sightings of a real `trawl serve`, on
# SQLite and on PostgreSQL (from the Debian package, started here in WORKDIR/pg with its
# default durability: fsync on), by CLIENTS connections at once, each with keep-alive.
# Prints sightings/s (wall) and the CPU-seconds (user + sys, from /proc) of the server and, on
# PostgreSQL, of the database's processes (the postmaster, its children, those reaped).
#   benches/sightings_ingest.sh [WORKDIR] [BATCHES] [BATCH_SIZE] [CLIENTS]
# Env: NO_BUILD=1 (use target/release/trawl as it is), TRAWL (another binary, e.g. a debug
#      build: NO_BUILD implied), STORES ("sqlite postgres"),
#      DISTINCT=1 (every item a new indicator; 0: the same BATCH_SIZE indicators every batch).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/trawl-sightings-perf}
batches=${2:-40}
size=${3:-5000}
clients=${4:-2}
stores=${STORES:-sqlite postgres}
distinct=${DISTINCT:-1}
cd "$root"
[ -n "${NO_BUILD:-}${TRAWL:-}" ] || cargo build --release --bin trawl >/dev/null
trawl=${TRAWL:-$root/target/release/trawl}
if [ -d "$work/pg/data" ]; then
  "$pgbin"/pg_ctl -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$work"; mkdir -p "$work"
printf 'evil.example\n' > "$work/intel.txt"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -d "$work/pg/data" ]; then
    $as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m fast stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
# PostgreSQL refuses to run as root: its commands run as nobody then (set here, not in
# start_pg, which runs in a subshell, so the cleanup can stop the cluster).
as_pg=""
if [ "$(id -u)" = 0 ]; then as_pg="runuser -u nobody --"; fi
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

start_pg() {
  [ -x "$pgbin/initdb" ] || { echo "PostgreSQL server binaries missing: make deps" >&2; exit 2; }
  mkdir -p "$work/pg"
  if [ "$(id -u)" = 0 ]; then chown nobody "$work/pg"; fi
  pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  $as_pg "$pgbin/initdb" -D "$work/pg/data" -U trawl --auth=trust --no-locale -E UTF8 >/dev/null
  $as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $work/pg" start >/dev/null
  $as_pg "$pgbin/createdb" -h 127.0.0.1 -p "$pgport" -U trawl trawl
  echo "postgres://trawl@127.0.0.1:$pgport/trawl?sslmode=disable"
}

for store in $stores; do
  dir="$work/$store"; mkdir -p "$dir"
  db=""
  if [ "$store" = postgres ]; then db="database = \"$(start_pg)\""; fi
  cfg="$dir/serve.toml"
  printf '[sensor]\ndata = "data"\n\n[server]\nrate_limit = 0\nrate_limit_per_address = 0\n%s\n\n[[feed]]\nname = "intel"\nsource = "%s"\n' \
    "$db" "$work/intel.txt" > "$cfg"
  "$trawl" -q update --config "$cfg"
  tok=$("$trawl" token create --config "$cfg" --user sensor --read --write --format json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  ready="$dir/ready"
  "$trawl" serve --config "$cfg" --listen 127.0.0.1:0 --ready-file "$ready" 2>"$dir/serve.log" &
  pid=$!; pids+=("$pid")
  for _ in $(seq 300); do [ -s "$ready" ] && break; sleep 0.1; done
  url=$(cat "$ready")
  pgpid=0
  if [ "$store" = postgres ]; then pgpid=$(head -1 "$work/pg/data/postmaster.pid"); fi
  python3 - "$url" "$tok" "$batches" "$size" "$clients" "$distinct" "$pid" "$store" "$pgpid" <<'PY'
import http.client, json, os, sys, threading, time, urllib.parse, uuid
url, tok, batches, size, clients, distinct, pid, store, pgpid = sys.argv[1:]
batches, size, clients, distinct = int(batches), int(size), int(clients), distinct == "1"
u = urllib.parse.urlparse(url)
now = int(time.time())
def body(n):
    items = [{"itype": "fqdn",
              "value": (f"s{n}-{i}.bench.example" if distinct else f"h{i}.bench.example"),
              "count": 1 + i % 7, "first_seen": now - 3600, "last_seen": now - i % 600}
             for i in range(size)]
    return json.dumps({"batch_id": str(uuid.uuid4()), "sensor": f"ids-{n % 100}",
                       "sightings": items}).encode()
bodies = [body(n) for n in range(batches)]
def stat(p):
    try:
        return open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
def cpu(p=pid, children=False):
    f = stat(p)
    t = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if children else 0)
    return t / os.sysconf("SC_CLK_TCK")
def db_cpu():
    if pgpid == "0":
        return 0.0
    total = cpu(pgpid, children=True)
    for d in os.listdir("/proc"):
        f = stat(d) if d.isdigit() else None
        if f and f[1] == pgpid:
            total += cpu(d)
    return total
errors = []
def run(part):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    for b in part:
        c.request("POST", "/v1/sightings", b, {"Authorization": f"Bearer {tok}",
                                               "Content-Type": "application/json"})
        r = c.getresponse(); text = r.read()
        d = json.loads(text)["data"] if r.status == 200 else None
        if r.status != 200 or d["accepted"] != size:
            errors.append((r.status, text[:200]))
# One warm-up batch (connections, prepared statements), not counted.
run([body(batches + 1)])
c0, d0, t0 = cpu(), db_cpu(), time.monotonic()
threads = [threading.Thread(target=run, args=(bodies[k::clients],)) for k in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall, used, db = time.monotonic() - t0, cpu() - c0, db_cpu() - d0
n = batches * size
print(f"{store}: {batches} batches x {size} sightings ({'new' if distinct else 'repeated'} "
      f"indicators), {clients} client(s): {wall:.2f} s wall, {n / wall:,.0f} sightings/s; "
      f"server {used:.2f} CPU-s ({n / max(used, 1e-9):,.0f} sightings per CPU-s)"
      + (f", PostgreSQL {db:.2f} CPU-s" if pgpid != "0" else "") + "; "
      f"{len(errors)} errors {errors[:1]}")
PY
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
uptime

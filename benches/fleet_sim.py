#!/usr/bin/env python3
"""A sensor fleet against one real `trawl serve` on loopback (ARCHITECTURE.md §11).

One server over `gen_perf_data.py`'s 1.21M-indicator set (or a fraction of it, --scale),
signing releases with [server] signing_key; SENSORS pullers speaking real HTTP to it
(threads running a cheap client of the same protocol as `trawl update`'s [upstream]: a
conditional GET of /v1/snapshot/latest.json with If-None-Match, X-Trawl-Sensor and
X-Trawl-Release, then the delta from the held release when offered, else the bundle, then
a confirming conditional GET naming the new release; it does not verify signatures or apply
deltas), plus optionally one real sensor (`trawl update --force` with [upstream]) whose held
set is checked against the manifest's content hash. Each cycle replaces 2% of the domain,
URL and IPv4 lines, runs `trawl update` on the server, waits for it to serve the new
snapshot, then every sensor pulls at once.

Per cycle it reports: the release, bytes per sensor (manifest excluded; delta or bundle),
the server's CPU seconds (utime + stime from /proc, the lazy per-grant publish included),
`trawl update`'s CPU seconds, the time until every sensor holds the new release, and the
server's own trawl_fleet_sensors_behind after the pulls (0: the registry agrees).

After the pulls each sensor POSTs one sightings batch (--sightings items, 1,000 by default:
an hour of alerts folded per indicator) to /v1/sightings, all at once; the row gives the
sightings/s the server took and its CPU for them.

The row also gives how many deltas the release offers (one from each kept release, the
older ones composed from the previous release's) and their stored bytes. With
--real-sensor-every N the real sensor pulls only every N cycles, so it applies a delta
spanning N releases.

Usage: fleet_sim.py DIR [--scale 0.1] [--sensors 100] [--cycles 4] [--sightings 1000]
                    [--trawl PATH] [--real-sensor] [--real-sensor-every N]
"""
import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import urllib.parse
import zlib

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--scale", type=float, default=1.0, help="fraction of the 1.21M set")
ap.add_argument("--sensors", type=int, default=100)
ap.add_argument("--cycles", type=int, default=4, help="releases (the first is a full bundle)")
ap.add_argument("--change", type=float, default=0.02, help="fraction of lines replaced a cycle")
ap.add_argument("--trawl", default=None, help="trawl binary (default target/release, else debug)")
ap.add_argument("--real-sensor", action="store_true", help="also run one real `trawl update`")
ap.add_argument("--real-sensor-every", type=int, default=1,
                help="the real sensor pulls every N cycles (N > 1: it applies a delta from "
                     "N releases back, composed by the server)")
ap.add_argument("--sightings", type=int, default=1000,
                help="sightings each sensor pushes a cycle, one batch (0: none)")
args = ap.parse_args()

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
trawl = args.trawl or next(
    p for p in (f"{root}/target/release/trawl", f"{root}/target/debug/trawl") if os.path.exists(p)
)
d = os.path.abspath(args.dir)
os.makedirs(d, exist_ok=True)
rng = random.Random(20261207)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=d, **kw)


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# The set: the generator's files, cut to --scale.
if not os.path.exists(f"{d}/full/domains.txt"):
    subprocess.run([sys.executable, f"{root}/benches/gen_perf_data.py", f"{d}/full", "1000"],
                   check=True, stdout=subprocess.DEVNULL)
FILES = ["domains", "urls", "ips", "cidrs"]
lines = {}
for name in FILES:
    with open(f"{d}/full/{name}.txt") as f:
        all_lines = f.read().split()
    lines[name] = all_lines[: max(1, int(len(all_lines) * args.scale))]
shutil.copy(f"{d}/full/trawl.toml", f"{d}/feeds.toml")
total = sum(len(v) for v in lines.values())


def write_set():
    for name in FILES:
        with open(f"{d}/{name}.txt", "w") as f:
            f.write("\n".join(lines[name]) + "\n")


def change():
    """Replace `--change` of the domain, URL and IPv4 lines with new values."""
    for name in ["domains", "urls", "ips"]:
        vals = lines[name]
        for i in rng.sample(range(len(vals)), int(len(vals) * args.change)):
            if name == "domains":
                vals[i] = f"sim{rng.getrandbits(48):x}.example"
            elif name == "urls":
                vals[i] = f"http://sim{rng.getrandbits(48):x}.example/x.php"
            else:
                vals[i] = f"45.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        lines[name] = sorted(set(vals))


write_set()
if not os.path.exists(f"{d}/fleet.key"):
    run(trawl, "keygen", "--out", "fleet")
with open(f"{d}/trawl.toml", "w") as f:
    f.write('[sensor]\ndata = "server-data"\n\n[server]\nsigning_key = "fleet.key"\n'
            'rate_limit = 0\nrate_limit_per_address = 0\ntimeout = "300s"\n\n')
    f.write(open(f"{d}/feeds.toml").read())
shutil.rmtree(f"{d}/server-data", ignore_errors=True)
shutil.rmtree(f"{d}/sensor-data", ignore_errors=True)


def server_update():
    before = child_cpu()
    t = time.time()
    run(trawl, "-q", "update", "--force", "--config", "trawl.toml")
    return time.time() - t, child_cpu() - before


wall, cpu = server_update()
print(f"set: {total} indicators (scale {args.scale}); first trawl update {wall:.1f} s, "
      f"{cpu:.1f} CPU-s; trawl: {trawl}", flush=True)
token = json.loads(run(trawl, "token", "create", "--config", "trawl.toml", "--user", "fleet",
                       "--read", "--write", "--format", "json").stdout)["token"]
admin = json.loads(run(trawl, "token", "create", "--config", "trawl.toml", "--user", "ops",
                       "--admin", "--format", "json").stdout)["token"]
ready = f"{d}/ready"
if os.path.exists(ready):
    os.remove(ready)
server = subprocess.Popen([trawl, "serve", "--config", "trawl.toml", "--listen", "127.0.0.1:0",
                           "--ready-file", ready], cwd=d, stdout=subprocess.DEVNULL,
                          stderr=open(f"{d}/serve.log", "w"))
try:
    while not (os.path.exists(ready) and open(ready).read().endswith("\n")):
        time.sleep(0.1)
    base = open(ready).read().strip()
    host = urllib.parse.urlparse(base)

    def server_cpu():
        with open(f"/proc/{server.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def get(_conn, path, headers, tok=token, gz_sha256=False):
        """One request on a new connection, as `trawl update` makes them. With `gz_sha256`
        the body is streamed: (status, bytes received, SHA-256 of its gunzipped content),
        so 100 sensors never hold 100 inflated bundles (1.21M: 250 MB each)."""
        conn = http.client.HTTPConnection(host.hostname, host.port, timeout=600)
        h = {"Authorization": f"Bearer {tok}", "User-Agent": "trawl/sim", **headers}
        conn.request("GET", path, headers=h)
        r = conn.getresponse()
        if gz_sha256:
            inflate, digest, n = zlib.decompressobj(wbits=31), hashlib.sha256(), 0
            while chunk := r.read(1 << 16):
                n += len(chunk)
                digest.update(inflate.decompress(chunk))
            digest.update(inflate.flush())
            out = r.status, n, digest.hexdigest()
        else:
            out = r.status, r.getheader("ETag"), r.read()
        conn.close()
        return out

    def metric(name):
        _, _, body = get(None, "/metrics", {})
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return None

    class Sensor:
        def __init__(self, n):
            self.name = f"sim-{n:03}"
            self.held = ""
            self.etag = None

        def pull(self):
            """One pull: (how, bytes of release files, seconds)."""
            t = time.time()
            conn = None
            hdr = {"X-Trawl-Sensor": self.name}
            if self.held:
                hdr["X-Trawl-Release"] = self.held
            if self.etag and self.held:
                hdr["If-None-Match"] = self.etag
            status, etag, body = get(conn, "/v1/snapshot/latest.json", hdr)
            if status == 304:
                return "304", 0, time.time() - t
            assert status == 200, (status, body[:200])
            m = json.loads(json.loads(body)["manifest"])
            if m["id"] == self.held:
                self.etag = etag
                return "same", 0, time.time() - t
            delta = next((x["file"] for x in m["deltas"] if x["from"] == self.held), None)
            f = delta["path"] if delta else m["bundle"]["path"]
            status, size, sha = get(conn, f"/v1/snapshot/{f}", {"X-Trawl-Sensor": self.name},
                                    gz_sha256=True)
            assert status == 200 and sha == (delta or m["bundle"])["sha256"], f
            self.held, self.etag = m["id"], etag
            # Confirm, as `trawl update` does: the registry learns the new release.
            get(conn, "/v1/snapshot/latest.json",
                {"X-Trawl-Sensor": self.name, "X-Trawl-Release": self.held,
                 "If-None-Match": etag})
            return ("delta" if delta else "bundle"), size, time.time() - t

        def push(self, cycle):
            """One sightings batch, as `trawl run` with `[upstream] sightings` sends it: the
            sensor's alerts of the last hour folded per indicator (here: --sightings domains
            of the set). Returns the items the server accepted."""
            now = int(time.time())
            items = [{"itype": "fqdn", "value": v, "count": rng.randint(1, 20),
                      "first_seen": now - 3600, "last_seen": now - rng.randint(0, 3599)}
                     for v in rng.sample(lines["domains"], args.sightings)]
            body = json.dumps({"batch_id": f"{rng.getrandbits(128):032x}", "sensor": self.name,
                               "sightings": items}).encode()
            conn = http.client.HTTPConnection(host.hostname, host.port, timeout=600)
            conn.request("POST", "/v1/sightings", body=body,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            answer = r.read()
            conn.close()
            assert r.status == 200, (r.status, answer[:200])
            return json.loads(answer)["data"]["accepted"]

    sensors = [Sensor(i) for i in range(args.sensors)]
    if args.real_sensor:
        with open(f"{d}/sensor.toml", "w") as f:
            f.write(f'[sensor]\ndata = "sensor-data"\n[upstream]\nurl = "{base}/v1/snapshot/"\n'
                    f'token = "{token}"\npublic_key = "fleet.pub"\nname = "real-sensor"\n')
    rows = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.sensors)
    version = 0
    for cycle in range(args.cycles):
        up_wall, up_cpu = (0.0, 0.0)
        if cycle > 0:
            change()
            write_set()
            up_wall, up_cpu = server_update()
        # The server serves the new snapshot once its reload thread has seen it.
        while (metric("trawl_serve_snapshot_version") or 0) <= version:
            time.sleep(0.1)
        version = metric("trawl_serve_snapshot_version")
        cpu0, t0 = server_cpu(), time.time()
        results = list(pool.map(lambda s: s.pull(), sensors))
        converge = time.time() - t0
        cpu = server_cpu() - cpu0
        hows = {h for h, _, _ in results}
        per = [b for _, b, _ in results]
        # What the release offers: deltas from how many kept releases, their stored bytes.
        _, _, body = get(None, "/v1/snapshot/latest.json", {})
        offered = json.loads(json.loads(body)["manifest"])["deltas"]
        real = ""
        if args.real_sensor and cycle % args.real_sensor_every == 0:
            t = time.time()
            c0 = child_cpu()
            out = subprocess.run([trawl, "update", "--force", "--config", "sensor.toml"], cwd=d,
                                 capture_output=True, text=True)
            st = json.load(open(f"{d}/sensor-data/upstream/state.json"))
            held = hashlib.sha256(open(f"{d}/sensor-data/upstream/indicators.jsonl", "rb")
                                  .read()).hexdigest()
            ok = held == st["held"]["content_hash"] and st["held"]["id"] == sensors[0].held
            real = (f"real sensor: {st['last_outcome']}, {time.time() - t:.1f} s, "
                    f"{child_cpu() - c0:.1f} CPU-s, hash {'ok' if ok else 'MISMATCH'}")
        behind = metric("trawl_fleet_sensors_behind")
        pushed, push_s, push_cpu = 0, 0.0, 0.0
        if args.sightings:
            cpu0, t0 = server_cpu(), time.time()
            pushed = sum(pool.map(lambda s: s.push(cycle), sensors))
            push_s, push_cpu = time.time() - t0, server_cpu() - cpu0
        row = {
            "cycle": cycle, "release": sensors[0].held, "how": sorted(hows),
            "bytes_per_sensor": max(per), "server_cpu_s": round(cpu, 2),
            "deltas_offered": len(offered),
            "deltas_bytes": sum(x["file"]["bytes"] for x in offered),
            "server_update_s": round(up_wall, 1), "server_update_cpu_s": round(up_cpu, 1),
            "fleet_converged_s": round(converge, 2), "fleet_behind_after": behind,
            "sightings": pushed, "sightings_per_s": round(pushed / push_s) if push_s else 0,
            "sightings_server_cpu_s": round(push_cpu, 2),
        }
        rows.append(row)
        print(json.dumps(row), real, flush=True)
    # An unchanged cycle: every sensor's pull is one 304.
    cpu0, t0 = server_cpu(), time.time()
    results = list(pool.map(lambda s: s.pull(), sensors))
    print(json.dumps({"unchanged_cycle": sorted({h for h, _, _ in results}),
                      "server_cpu_s": round(server_cpu() - cpu0, 2),
                      "seconds": round(time.time() - t0, 2),
                      "fleet_sensors": metric("trawl_fleet_sensors")}), flush=True)
    if args.sightings:
        # The registry noted every sensor's last batch (the fleet view's SIGHTINGS column).
        _, _, body = get(None, "/v1/fleet", {}, tok=admin)
        noted = sum(1 for r in json.loads(body)["data"] if r.get("last_sighting_batch"))
        print(json.dumps({"sensors_with_a_sighting_batch_noted": noted}), flush=True)
finally:
    server.terminate()
    server.wait()

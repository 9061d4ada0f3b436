#!/usr/bin/env python3
"""Daemon benchmarks for `trawl run` (README "Performance", issue 7).

  benches/daemon_bench.py latency [RATE] [SECONDS]
      Appends Squid lines to a tailed file at RATE lines/s (default 100000) for SECONDS
      (default 10); every 100th line hits the feed and carries its write time. Reports
      lines processed, and the p50/p99/max latency from write to alert on disk.
  benches/daemon_bench.py reload [DOMAINS] [RELOADS]
      Compiles DOMAINS domains (default 1000000), starts the daemon, then publishes RELOADS
      (default 20) new snapshots with `trawl update --force`; reports each reload's time
      (update published -> /metrics shows the version) and the daemon's RSS after each.
  benches/daemon_bench.py throughput [LINES]
      Writes LINES Squid lines (default 1000000, each a distinct URL on one of 20,000
      hosts from 500 clients, every 1000th a hit), starts the daemon on them and times the
      catch-up: lines/s and the daemon's CPU seconds until /metrics counts them all.

  --retro (any mode): the config gets `[retro]` (flush every 60 s, no client sample), so
  every line's values are also recorded in the retro index (issue 20: its cost on the
  daemon's lines/s).
  --no-prescreen (any mode): the snapshot's prefilter is removed after `trawl update` (its
  manifest resealed), so the daemon parses and looks up every line as `[retro]` must: the
  honest baseline for recording's cost (a snapshot without a prefilter screens nothing).

Needs a release build (cargo build --release), or the binary in $TRAWL (for A/B runs of two
builds); uses only the standard library.
"""
import json, os, random, re, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAWL = os.environ.get("TRAWL") or os.path.join(ROOT, "target", "release", "trawl")

def free_port():
    import socket
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

RETRO = False
NO_PRESCREEN = False

def drop_prefilter(data):
    """Remove prefilter.bin from every snapshot in `data` and reseal the manifests."""
    import zlib
    snaps = f"{data}/snapshots"
    for v in os.listdir(snaps):
        d = f"{snaps}/{v}"
        if not v.isdigit() or not os.path.exists(f"{d}/prefilter.bin"):
            continue
        lines = open(f"{d}/manifest").read().splitlines()
        body = "".join(l + "\n" for l in lines
                       if not l.startswith("prefilter.bin ") and not l.startswith("end "))
        with open(f"{d}/manifest", "w") as f:
            f.write(body + f"end {zlib.crc32(body.encode()):08x}\n")
        os.remove(f"{d}/prefilter.bin")

def setup(work, domains):
    os.makedirs(f"{work}/logs", exist_ok=True)
    with open(f"{work}/bad.txt", "w") as f:
        f.write("\n".join(domains) + "\n")
    port = free_port()
    with open(f"{work}/trawl.toml", "w") as f:
        f.write(f'''[sensor]
name = "bench"
data = "{work}/data"
metrics = "127.0.0.1:{port}"

[[feed]]
name = "bad"
source = "bad.txt"
format = "plain"
itype = "fqdn"

[[source]]
kind = "file"
paths = ["{work}/logs/access.log*"]
format = "squid"

[[sink]]
kind = "jsonl"
path = "{work}/alerts.jsonl"
''' + ('\n[retro]\nretention = "30d"\nflush = "60s"\n' if RETRO else ""))
    subprocess.run([TRAWL, "-q", "update", "--config", f"{work}/trawl.toml"], check=True)
    if NO_PRESCREEN:
        drop_prefilter(f"{work}/data")
    return port

def metrics(port):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    out = {}
    for line in body.splitlines():
        m = re.match(r"^([a-z_]+) (\d+)$", line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out

def wait_metrics(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if metrics(port):
            return
        time.sleep(0.05)
    raise SystemExit("daemon did not start")

def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")

def latency(rate, seconds):
    work = tempfile.mkdtemp(prefix="trawl-lat-")
    port = setup(work, ["bad.example"])
    d = subprocess.Popen([TRAWL, "run", "--config", f"{work}/trawl.toml"], stderr=subprocess.DEVNULL)
    try:
        wait_metrics(port)
        log = open(f"{work}/logs/access.log", "a")
        tick, written, hits = 0.01, 0, 0
        per_tick = max(1, int(rate * tick))
        start = time.time()
        next_t = start
        lat, seen, pos = [], 0, 0
        alerts_path = f"{work}/alerts.jsonl"
        def drain():
            nonlocal pos, seen
            try:
                with open(alerts_path) as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:
                return
            cut = data.rfind("\n") + 1
            pos += len(data[:cut].encode())
            now = time.time_ns()
            for line in data[:cut].splitlines():
                url = json.loads(line)["url"]["full"]
                lat.append((now - int(url.rsplit("/", 1)[1])) / 1e6)
                seen += 1
        while time.time() - start < seconds:
            now_ns = time.time_ns()
            chunk = []
            for i in range(per_tick):
                written += 1
                if written % 100 == 0:
                    hits += 1
                    chunk.append(f"{now_ns // 10**9}.000 5 10.0.0.5 TCP_MISS/200 10 GET http://www.bad.example/w/{now_ns} - HIER_DIRECT/93.184.216.34 -\n")
                else:
                    chunk.append(f"{now_ns // 10**9}.000 5 10.0.0.5 TCP_MISS/200 10 GET http://www.good.example/{written} - HIER_DIRECT/93.184.216.34 -\n")
            log.write("".join(chunk)); log.flush()
            drain()
            next_t += tick
            delay = next_t - time.time()
            if delay > 0:
                time.sleep(delay)
        elapsed = time.time() - start
        end = time.time() + 30
        while seen < hits and time.time() < end:
            drain(); time.sleep(0.005)
        m = metrics(port)
        print(f"latency: wrote {written} lines in {elapsed:.1f} s ({written/elapsed:,.0f} lines/s offered); "
              f"daemon processed {m.get('trawl_lines_total', 0)} lines; {seen}/{hits} alerts; "
              f"write->alert p50 {pct(lat, .5):.0f} ms, p99 {pct(lat, .99):.0f} ms, max {max(lat or [0]):.0f} ms")
    finally:
        d.terminate(); d.wait()

def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def throughput(lines):
    work = tempfile.mkdtemp(prefix="trawl-thr-")
    port = setup(work, ["bad.example"])
    rng = random.Random(20)
    now = int(time.time()) - 3600
    with open(f"{work}/logs/access.log", "w") as f:
        for i in range(lines):
            host = "www.bad.example" if i % 1000 == 0 else f"h{rng.randrange(20000)}.example"
            f.write(f"{now + i * 3600 // lines}.000 5 10.0.{rng.randrange(2)}.{rng.randrange(1, 251)} "
                    f"TCP_MISS/200 10 GET http://{host}/p/{i}/{rng.getrandbits(32):08x} - "
                    f"HIER_DIRECT/93.184.216.{rng.randrange(1, 250)} text/html\n")
    d = subprocess.Popen([TRAWL, "run", "--config", f"{work}/trawl.toml"], stderr=subprocess.DEVNULL)
    try:
        t0 = time.time()
        wait_metrics(port)
        while metrics(port).get("trawl_lines_total", 0) < lines:
            if time.time() - t0 > 600:
                raise SystemExit("the daemon did not catch up in 600 s")
            time.sleep(0.02)
        took = time.time() - t0
        cpu = cpu_secs(d.pid)
        print(f"throughput{' --retro' if RETRO else ''}{' --no-prescreen' if NO_PRESCREEN else ''}: {lines} lines in {took:.2f} s wall "
              f"({lines / took:,.0f} lines/s), daemon {cpu:.2f} CPU-s ({lines / cpu:,.0f} lines per "
              f"CPU-s), RSS {rss_kb(d.pid) / 1024:.0f} MiB; load {os.getloadavg()[0]:.1f}")
        d.terminate()
        _, _, ru = os.wait4(d.pid, 0)
        total = ru.ru_utime + ru.ru_stime
        print(f"  with the stop (the last flush writes what is pending): {total:.2f} CPU-s "
              f"({lines / total:,.0f} lines per CPU-s), max RSS {ru.ru_maxrss / 1024:.0f} MiB")
    finally:
        if d.returncode is None:
            try:
                d.terminate(); d.wait()
            except ChildProcessError:
                pass
    if RETRO:
        segs = [n for n in os.listdir(f"{work}/data/retro") if n.endswith(".seg")]
        size = sum(os.path.getsize(f"{work}/data/retro/{n}") for n in segs)
        print(f"  retro index after the stop: {len(segs)} segments, {size:,} bytes")
    import shutil
    shutil.rmtree(work, ignore_errors=True)

def reload_bench(n_domains, reloads):
    work = tempfile.mkdtemp(prefix="trawl-reload-")
    rng = random.Random(7)
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    domains = sorted({"".join(rng.choice(alnum) for _ in range(12)) + ".com" for _ in range(n_domains)})
    port = setup(work, domains)
    d = subprocess.Popen([TRAWL, "run", "--config", f"{work}/trawl.toml"], stderr=subprocess.DEVNULL)
    try:
        wait_metrics(port)
        time.sleep(1)
        base = rss_kb(d.pid)
        print(f"reload: {len(domains)} domains; daemon RSS after first load {base/1024:.0f} MiB")
        for i in range(reloads):
            with open(f"{work}/bad.txt", "a") as f:
                f.write(f"reload{i}.example\n")
            subprocess.run([TRAWL, "-q", "update", "--force", "--config", f"{work}/trawl.toml"], check=True)
            t0 = time.time()
            want = i + 2
            while metrics(port).get("trawl_snapshot_version") != want:
                if time.time() - t0 > 60:
                    raise SystemExit("reload not seen")
                time.sleep(0.01)
            took = (time.time() - t0) * 1000
            time.sleep(0.3)
            print(f"  reload {i+1:2d}: seen after {took:5.0f} ms; RSS {rss_kb(d.pid)/1024:6.0f} MiB")
    finally:
        d.terminate(); d.wait()

if __name__ == "__main__":
    if not os.path.exists(TRAWL):
        raise SystemExit("build first: cargo build --release")
    if "--retro" in sys.argv:
        sys.argv.remove("--retro")
        RETRO = True
    if "--no-prescreen" in sys.argv:
        sys.argv.remove("--no-prescreen")
        NO_PRESCREEN = True
    cmd = sys.argv[1] if len(sys.argv) > 1 else "latency"
    if cmd == "throughput":
        throughput(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
    elif cmd == "latency":
        latency(int(sys.argv[2]) if len(sys.argv) > 2 else 100_000, float(sys.argv[3]) if len(sys.argv) > 3 else 10)
    elif cmd == "reload":
        reload_bench(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000, int(sys.argv[3]) if len(sys.argv) > 3 else 20)
    else:
        raise SystemExit(__doc__)

#!/usr/bin/env python3
"""Seeded generator for the scan performance comparison (README "Performance").

Writes into OUTDIR:
  domains.txt  (1M fqdn)   urls.txt (100k)   ips.txt (100k IPv4)   cidrs.txt (10k)
  trawl.toml   feeds config for `trawl update`
  access.log   Squid native log, ~LINES lines, about 0.1% of lines hitting an indicator
  planted.txt  the 0-based line numbers that were planted as hits (ground truth)

Usage: gen_perf_data.py OUTDIR [LINES]   (default 7,000,000 lines, about 1 GB)
"""
import os
import random
import sys

out = sys.argv[1]
lines = int(sys.argv[2]) if len(sys.argv) > 2 else 7_000_000
rng = random.Random(20261128)
os.makedirs(out, exist_ok=True)

TLDS = ["com", "net", "org", "info", "io", "xyz", "top", "ru", "de", "co.uk", "biz", "online"]
WORDS = ("alpha beta cloud data edge fast gate host info jet kilo link mail node open pay quick "
         "relay shop tech update view web zone secure login account verify portal cdn api static "
         "media img news blog store app service my get free best").split()
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

def label(n=None):
    n = n or rng.randint(5, 14)
    return "".join(rng.choice(ALNUM) for _ in range(n))

def bad_domain():
    return f"{label()}{rng.choice(['-', ''])}{rng.choice(WORDS)}.{rng.choice(TLDS)}"

def good_domain():
    return f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.randint(1, 999)}.{rng.choice(TLDS)}"

def public_ip():
    while True:
        a = rng.randint(1, 223)
        if a not in (10, 100, 127, 169, 172, 192, 198, 203):
            return f"{a}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

domains = set()
while len(domains) < 1_000_000:
    domains.add(bad_domain())
domains = sorted(domains)
urls = sorted({f"http://{bad_domain()}/{label(6)}/{rng.choice(WORDS)}.php" for _ in range(100_000)})
ips = sorted({public_ip() for _ in range(100_000)})
cidrs = set()
while len(cidrs) < 10_000:
    ip = public_ip().rsplit(".", 1)[0]
    cidrs.add(f"{ip}.0/24")
cidrs = sorted(cidrs)
for name, vals in [("domains", domains), ("urls", urls), ("ips", ips), ("cidrs", cidrs)]:
    with open(os.path.join(out, f"{name}.txt"), "w") as f:
        f.write("\n".join(vals) + "\n")
with open(os.path.join(out, "trawl.toml"), "w") as f:
    for name, itype in [("domains", "fqdn"), ("urls", "url"), ("ips", "ipv4"), ("cidrs", "ipv4")]:
        f.write(f'[[feed]]\nname = "perf-{name}"\nsource = "{name}.txt"\nformat = "plain"\n'
                f'itype = "{itype}"\nconfidence = 80\nseverity = "high"\nderive = false\n\n')

ip_set = set(ips)
cidr_set = {c.rsplit(".", 1)[0] for c in cidrs}
domain_set = set(domains)
clients = [f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(2000)]
good_hosts = [good_domain() for _ in range(50_000)]
good_hosts = [h for h in good_hosts if h not in domain_set]
paths = [f"/{rng.choice(WORDS)}/{label(8)}" for _ in range(5000)]
types = ["text/html", "image/png", "application/json", "text/css", "application/javascript"]
t = 1764300000.0
planted = []
with open(os.path.join(out, "access.log"), "w") as f:
    buf = []
    for i in range(lines):
        t += rng.random() * 0.01
        client = rng.choice(clients)
        kind = rng.random()
        dst = public_ip()
        while dst in ip_set or dst.rsplit(".", 1)[0] in cidr_set:
            dst = public_ip()
        if kind < 0.0004:
            host = rng.choice(domains)
            if rng.random() < 0.5:
                host = f"www.{host}"
            url = f"http://{host}{rng.choice(paths)}"
            planted.append(i)
        elif kind < 0.0006:
            url = rng.choice(urls)
            planted.append(i)
        elif kind < 0.0008:
            url = f"http://{rng.choice(good_hosts)}{rng.choice(paths)}"
            dst = rng.choice(ips)
            planted.append(i)
        elif kind < 0.0010:
            url = f"http://{rng.choice(good_hosts)}{rng.choice(paths)}"
            dst = rng.choice(cidrs).rsplit(".", 1)[0] + f".{rng.randint(1, 254)}"
            planted.append(i)
        elif kind < 0.05:
            url = f"{rng.choice(good_hosts)}:443"
            buf.append(f"{t:.3f} {rng.randint(20, 90000):6d} {client} TCP_TUNNEL/200 {rng.randint(300, 90000)} CONNECT {url} - HIER_DIRECT/{dst} -\n")
            continue
        else:
            url = f"http://{rng.choice(good_hosts)}{rng.choice(paths)}?id={rng.randint(1, 10**6)}"
        buf.append(f"{t:.3f} {rng.randint(20, 9000):6d} {client} TCP_MISS/200 {rng.randint(200, 900000)} GET {url} - HIER_DIRECT/{dst} {rng.choice(types)}\n")
        if len(buf) >= 100_000:
            f.write("".join(buf))
            buf.clear()
    f.write("".join(buf))
with open(os.path.join(out, "planted.txt"), "w") as f:
    f.write("\n".join(map(str, planted)) + "\n")
print(f"{out}: {lines} lines, {len(planted)} planted hits")

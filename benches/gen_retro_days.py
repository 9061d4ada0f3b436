#!/usr/bin/env python3
"""Seeded Squid log spread over DAYS days ending yesterday, for the retro-hunt figures
(benches/README.md, "Retro index"): PER_DAY lines a day, each with a distinct URL on one of
2,000 hosts, from 500 clients; one line a day goes to c2.hunted.example.

Usage: gen_retro_days.py OUT.log [DAYS] [PER_DAY]   (default 90 days of 20,000 lines)
Then:  trawl scan --record --config DIR/trawl.toml OUT.log   ([retro] retention > DAYS)
       trawl hunt --config DIR/trawl.toml hunted.example     (one value over DAYS day segments)
"""
import random
import sys
import time

out = sys.argv[1]
days = int(sys.argv[2]) if len(sys.argv) > 2 else 90
per_day = int(sys.argv[3]) if len(sys.argv) > 3 else 20_000
rng = random.Random(20261207)
today = int(time.time()) // 86400 * 86400
hosts = [f"h{i}.{rng.choice(['com', 'net', 'org'])}-site{i % 97}.example" for i in range(2000)]
with open(out, "w") as f:
    for d in range(days, 0, -1):
        start = today - d * 86400
        for i in range(per_day):
            t = start + i * 86400 // per_day
            host = "c2.hunted.example" if i == per_day // 2 else rng.choice(hosts)
            client = f"10.{rng.randrange(2)}.{rng.randrange(250)}.{rng.randrange(1, 255)}"
            f.write(f"{t}.{rng.randrange(1000):03d} 12 {client} TCP_MISS/200 {rng.randrange(100, 9000)} "
                    f"GET http://{host}/p/{d}/{i}/{rng.getrandbits(32):08x} - "
                    f"HIER_DIRECT/93.184.216.{rng.randrange(1, 250)} text/html\n")

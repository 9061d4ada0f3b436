#!/usr/bin/env python3
"""Seeded Zeek dns records for the Kafka benchmark (benches/kafka.sh), as Zeek's Kafka writer
produces them with tagging on: one JSON object per line, `{"dns": {...}}`.

Reads PERFDIR/domains.txt (the standard bench indicator set from gen_perf_data.py) and writes
into PERFDIR:
  NAME.json          RECORDS records; HITS of them (evenly spaced) query a listed domain or a
                     name below it, the others names no indicator covers; answers are in
                     203.0.113.0/24, which the generated IP and CIDR feeds never hold
  NAME.planted.txt   the 0-based line numbers of the planted hits (ground truth)

Usage: gen_kafka_dns.py PERFDIR NAME RECORDS HITS [SEED]
"""
import os
import random
import sys

perf, name = sys.argv[1], sys.argv[2]
records, hits = int(sys.argv[3]), int(sys.argv[4])
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 20261207
if not 0 < hits <= records:
    sys.exit("HITS must be between 1 and RECORDS")
rng = random.Random(seed)
WORDS = ("alpha beta cloud data edge fast gate host info jet kilo link mail node open pay quick "
         "relay shop tech update view web zone secure login account verify portal cdn api static "
         "media img news blog store app service my get free best").split()
TLDS = ["com", "net", "org", "info", "io", "xyz", "top", "ru", "de", "co.uk", "biz", "online"]
with open(os.path.join(perf, "domains.txt")) as f:
    bad = f.read().split()
# gen_perf_data.py's listed names end in a word before the TLD; these end in digits, so
# neither they nor a name below them is ever listed.
good = [f"{rng.choice(WORDS)}{rng.choice(WORDS)}{rng.randint(1, 999)}.{rng.choice(TLDS)}"
        for _ in range(50_000)]
clients = [f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
           for _ in range(2000)]
step = records // hits
planted = []
t = 1765065600.0
with open(os.path.join(perf, f"{name}.json"), "w") as out:
    buf = []
    for i in range(records):
        t += rng.random() * 0.001
        if i % step == step // 2 and len(planted) < hits:
            q = rng.choice(bad)
            if rng.random() < 0.5:
                q = f"www.{q}"
            planted.append(i)
        else:
            q = rng.choice(good)
        buf.append(
            f'{{"dns":{{"ts":{t:.6f},"uid":"C{i:017d}","id.orig_h":"{rng.choice(clients)}",'
            f'"id.orig_p":{1024 + i % 60000},"id.resp_h":"10.0.0.53","id.resp_p":53,'
            f'"proto":"udp","trans_id":{i % 65536},"rtt":0.00087,"query":"{q}","qclass":1,'
            f'"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,'
            f'"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,'
            f'"answers":["203.0.113.{i % 254 + 1}"],"TTLs":[300.0],"rejected":false}}}}\n')
        if len(buf) >= 100_000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))
with open(os.path.join(perf, f"{name}.planted.txt"), "w") as f:
    f.write("\n".join(map(str, planted)) + "\n")
print(f"{perf}/{name}.json: {records} records, {len(planted)} planted hits")

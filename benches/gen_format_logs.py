#!/usr/bin/env python3
"""Rewrite the first LINES lines of gen_perf_data.py's Squid log as the other log formats a
SOC scans, for the per-format figures in README "Performance".

Each Squid line (client, URL, server address) becomes one record of:
  zeek-dns.log    Zeek TSV dns.log: query = the URL's host, answers = the server address
  zeek-http.log   Zeek TSV http.log: host and origin-form uri, a browser user agent
  zeek-ssl.log    Zeek TSV ssl.log: server_name = the URL's host, a SHA-256 certificate chain
  zeek-dns.json   the dns.log records as Zeek JSON
  bind-query.log  BIND 9 query log lines (client @0x..., query: NAME IN A)
  eve-dns.json    Suricata EVE dns v2 answers

Usage: gen_format_logs.py PERFDIR [LINES]   (default 1,000,000; reads PERFDIR/access.log)
"""
import json
import os
import sys
import time

perf = sys.argv[1]
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000

HEAD = ("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
        "#path\t{path}\n#fields\t{fields}\n#types\t{types}\n")
DNS_FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p proto trans_id rtt query qclass "
              "qclass_name qtype qtype_name rcode rcode_name AA TC RD RA Z answers TTLs rejected")
DNS_TYPES = ("time string addr port addr port enum count interval string count string count "
             "string count string bool bool bool bool count vector[string] vector[interval] bool")
HTTP_FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p trans_depth method host uri "
               "referrer version user_agent request_body_len response_body_len status_code "
               "status_msg resp_fuids resp_mime_types")
SSL_FIELDS = ("ts uid id.orig_h id.orig_p id.resp_h id.resp_p version cipher curve server_name "
              "resumed established ssl_history cert_chain_fps sni_matches_cert")
SSL_TYPES = ("time string addr port addr port string string string string bool bool string "
             "vector[string] bool")
HTTP_TYPES = ("time string addr port addr port count string string string string string string "
              "count count count string vector[string] vector[string]")


def tabs(s):
    return s.replace(" ", "\t")


def out(name):
    return open(os.path.join(perf, name), "w")


dns, http, ssl, zjson, bind, eve = (out(n) for n in (
    "zeek-dns.log", "zeek-http.log", "zeek-ssl.log", "zeek-dns.json", "bind-query.log",
    "eve-dns.json"))
dns.write(HEAD.format(path="dns", fields=tabs(DNS_FIELDS), types=tabs(DNS_TYPES)))
http.write(HEAD.format(path="http", fields=tabs(HTTP_FIELDS), types=tabs(HTTP_TYPES)))
ssl.write(HEAD.format(path="ssl", fields=tabs(SSL_FIELDS), types=tabs(SSL_TYPES)))
with open(os.path.join(perf, "access.log")) as f:
    for i, line in enumerate(f):
        if i >= limit:
            break
        t = line.split()
        ts, client, method, url, hier, ctype = t[0], t[2], t[5], t[6], t[8], t[9]
        server = hier.split("/", 1)[1]
        rest = url.split("://", 1)[1] if "://" in url else url
        host_port, _, path = rest.partition("/")
        host = host_port.split(":")[0]
        dns.write(f"{ts}\tC{i:017d}\t{client}\t41772\t10.0.0.100\t53\tudp\t{i % 65536}\t0.000870\t"
                  f"{host}\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t{server}\t300.000000\tF\n")
        zjson.write(json.dumps({
            "ts": float(ts), "uid": f"C{i:017d}", "id.orig_h": client, "id.orig_p": 41772,
            "id.resp_h": "10.0.0.100", "id.resp_p": 53, "proto": "udp", "trans_id": i % 65536,
            "query": host, "qclass": 1, "qclass_name": "C_INTERNET", "qtype": 1,
            "qtype_name": "A", "rcode": 0, "rcode_name": "NOERROR", "answers": [server],
            "TTLs": [300.0], "rejected": False}, separators=(",", ":")) + "\n")
        if "://" in url:
            http.write(f"{ts}\tC{i:017d}\t{client}\t51234\t{server}\t80\t1\t{method}\t{host_port}\t"
                       f"/{path}\t-\t1.1\tMozilla/5.0 (Windows NT 10.0; Win64; x64)\t0\t{t[4]}\t"
                       f"200\tOK\tF{i:017d}\t{ctype}\n")
        fp = f"{i * 2654435761 % (1 << 64):016x}" * 4
        ssl.write(f"{ts}\tC{i:017d}\t{client}\t51234\t{server}\t443\tTLSv13\t"
                  f"TLS_AES_128_GCM_SHA256\tx25519\t{host}\tF\tT\tCsiI\t{fp},{fp[::-1]}\tT\n")
        when = time.strftime("%d-%b-%Y %H:%M:%S", time.gmtime(float(ts)))
        bind.write(f"{when}.{i % 1000:03d} client @0x7f1c2c0a1b20 {client}#41772 ({host}): "
                   f"query: {host} IN A +E(0)K (10.0.0.100)\n")
        eve.write(json.dumps({
            "timestamp": f"2025-11-28T03:20:00.{i % 1000000:06d}+0000", "flow_id": i,
            "event_type": "dns", "src_ip": client, "src_port": 41772, "dest_ip": "10.0.0.100",
            "dest_port": 53, "proto": "UDP",
            "dns": {"version": 2, "type": "answer", "id": i % 65536, "rrname": host,
                    "rrtype": "A", "rcode": "NOERROR",
                    "answers": [{"rrname": host, "rrtype": "A", "ttl": 300, "rdata": server}]}},
            separators=(",", ":")) + "\n")
print(f"{perf}: {min(i + 1, limit)} records in zeek-dns.log, zeek-http.log, zeek-ssl.log, "
      "zeek-dns.json, "
      "bind-query.log, eve-dns.json")

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
  squid-plan.log  Squid with a custom logformat (client port, SNI), read with --logformat
                  (the format string is in squid-plan.format)
  iis-w3c.log     IIS W3C extended (#Fields: header, cs(Host), cs(User-Agent))
  cef.log         CEF behind a syslog header (src, dst, spt, dpt, request, requestMethod)
  leef.log        LEEF 2.0 with a ^ delimiter (src, dst, srcPort, dstPort, url)
  fortigate.log   FortiGate utm webfilter (srcip, dstip, hostname, url)
  umbrella-dns.csv  Cisco Umbrella DNS log export
  umbrella-proxy.csv  Cisco Umbrella proxy log export
  windows-dns.log Windows DNS Server debug log PACKET lines
  panos.csv       PAN-OS THREAT url CSV

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
plan, iis, cef, leef, forti, udns, uproxy, windns, panos = (out(n) for n in (
    "squid-plan.log", "iis-w3c.log", "cef.log", "leef.log", "fortigate.log", "umbrella-dns.csv",
    "umbrella-proxy.csv", "windows-dns.log", "panos.csv"))
PLAN = "logformat sni %ts.%03tu %6tr %>a:%>p %Ss/%03>Hs %<st %rm %ru %un %Sh/%<a %mt %ssl::>sni"
with out("squid-plan.format") as f:
    f.write(PLAN + "\n")
iis.write("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
          "#Date: 2025-11-28 03:20:00\n#Fields: date time s-ip cs-method cs-uri-stem "
          "cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) cs(Host) sc-status "
          "sc-substatus sc-win32-status time-taken\n")
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
        # The vendor formats of issue 22, from the same record.
        when = time.gmtime(float(ts))
        day, clock = time.strftime("%Y-%m-%d", when), time.strftime("%H:%M:%S", when)
        secs, _, ms = ts.partition(".")
        sni = host if method == "CONNECT" else "-"
        plan.write(f"{secs}.{ms} {t[1]:>6} {client}:{41772 + i % 1000} {t[3]} {t[4]} {method} "
                   f"{url} {t[7]} {hier} {ctype} {sni}\n")
        stem = "/" + path.split("?")[0]
        query = path.split("?", 1)[1] if "?" in path else "-"
        iis.write(f"{day} {clock} {server if server[0].isdigit() else '10.0.0.100'} {method} "
                  f"{stem} {query} 80 - {client} Mozilla/5.0+(Windows+NT+10.0) - {host} 200 0 0 "
                  f"{t[1]}\n")
        syslog = time.strftime("%b %d %H:%M:%S", when)
        cef.write(f"<14>{syslog} proxy1 CEF:0|Vendor|Proxy|1.0|100|request|3|src={client} "
                  f"dst=10.0.0.100 spt=41772 dpt=80 requestMethod={method} request={url} "
                  f"requestClientApplication=Mozilla/5.0 rt={secs}{ms}\n")
        leef.write(f"LEEF:2.0|Vendor|Proxy|1.0|100|^|src={client}^dst=10.0.0.100^srcPort=41772"
                   f"^dstPort=80^url={url}^devTime={secs}{ms}\n")
        forti.write(f"<189>date={day} time={clock} devname=\"fw1\" logid=\"0316013056\" "
                    f"type=\"utm\" subtype=\"webfilter\" srcip={client} srcport=41772 "
                    f"dstip=10.0.0.100 dstport=80 proto=6 service=\"HTTP\" hostname=\"{host}\" "
                    f"action=\"passthrough\" url=\"{stem}\" method=\"domain\"\n")
        udns.write(f'"{day} {clock}","user{i % 97}","user{i % 97},Site","{client}",'
                   f'"198.51.100.1","Allowed","1 (A)","NOERROR","{host}.","Business Services",'
                   f'"Policy","AD Users",""\n')
        uproxy.write(f'"{day} {clock}","Site","{client}","198.51.100.1","10.0.0.100",'
                     f'"{ctype}","ALLOWED","{url}","","Mozilla/5.0","200","100","{t[4]}","",'
                     f'"","Business Services","","","","","","Networks",""\n')
        labels = "".join(f"({len(l)}){l}" for l in host.split(".")) + "(0)"
        us = time.strftime("%m/%d/%Y %I:%M:%S %p", when).lstrip("0").replace("/0", "/")
        windns.write(f"{us} 0E24 PACKET  0000009AC98841A0 UDP Rcv {client:<15} {i % 65536:04x}"
                     f"   Q [0001   D   NOERROR] A      {labels}\n")
        pdate = time.strftime("%Y/%m/%d %H:%M:%S", when)
        panos.write(f"1,{pdate},0006C000005,THREAT,url,0,{pdate},{client},10.0.0.100,"
                    f"198.51.100.1,10.0.0.100,out,,,web-browsing,vsys1,trust,untrust,eth1/1,"
                    f"eth1/2,fwd,{pdate},{i},1,41772,80,12211,80,0x40b000,tcp,alert,"
                    f"\"{rest}\",(9999),business,informational,client-to-server,{i},0x0,"
                    f"10.0.0.0-10.255.255.255,US,0,,0,,,0,,,,,,,,0,16,11,0,0,,PAN1,\n")
print(f"{perf}: {min(i + 1, limit)} records in zeek-dns.log, zeek-http.log, zeek-ssl.log, "
      "zeek-dns.json, "
      "bind-query.log, eve-dns.json, squid-plan.log, iis-w3c.log, cef.log, leef.log, "
      "fortigate.log, umbrella-dns.csv, umbrella-proxy.csv, windows-dns.log, panos.csv")

#!/usr/bin/env python3
"""Write samples/pcaps/demo.pcap: a small capture of our own with planted indicator hits.

No third-party modules: every header is packed by hand, so the bytes are exactly what this file
says. Re-run after editing; the output is deterministic (fixed timestamps, ports and ids).
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcaps", "demo.pcap")
T0 = 1764309600  # 2025-11-28T06:00:00Z

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def ip4(a):
    return bytes(int(x) for x in a.split("."))

def ip6(a):
    import ipaddress
    return ipaddress.IPv6Address(a).packed

def eth(payload, v6=False):
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + (b"\x86\xdd" if v6 else b"\x08\x00") + payload

def ipv4(src, dst, proto, payload, ident=1):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload

def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nh, 64, ip6(src), ip6(dst)) + payload

def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload

def tcp(sport, dport, seq, ack, flags, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload

SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01

def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"

def dns_query(ident, name, qtype):
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname(name) + struct.pack("!HH", qtype, 1)

def dns_response(ident, name, qtype, answers):
    body = struct.pack("!HHHHHH", ident, 0x8180, 1, len(answers), 0, 0) + qname(name) + struct.pack("!HH", qtype, 1)
    for rtype, rdata in answers:
        body += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return body

def client_hello(sni):
    name = sni.encode()
    sni_ext = struct.pack("!HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    groups = struct.pack("!HHH", 10, 4, 2) + struct.pack("!H", 29)
    formats = struct.pack("!HHB", 11, 2, 1) + b"\x00"
    exts = sni_ext + groups + formats
    suites = struct.pack("!HHH", 0x1301, 0xC02F, 0x002F)
    body = b"\x03\x03" + bytes(range(32)) + b"\x00" + struct.pack("!H", len(suites)) + suites + b"\x01\x00"
    body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

packets = []
def add(frame):
    packets.append(frame)

# 1. DNS: a subdomain of a listed C2 domain, answered with an address in a DROP range.
add(eth(ipv4("10.0.0.20", "10.0.0.1", 17, udp(40000, 53, dns_query(0x1111, "beacon.update-checker.top", 1)))))
add(eth(ipv4("10.0.0.1", "10.0.0.20", 17, udp(53, 40000, dns_response(0x1111, "beacon.update-checker.top", 1, [(1, ip4("45.142.212.9"))])))))
# 2. HTTP request to a listed phishing URL (TCP handshake, then the request).
c, s = ("10.0.0.21", 40001), ("93.184.216.60", 80)
req = b"GET /verify/account.php?id=7 HTTP/1.1\r\nHost: secure-login-paypa1.com\r\nUser-Agent: Mozilla/5.0 (demo)\r\nAccept: */*\r\n\r\n"
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 1000, 0, SYN))))
add(eth(ipv4(s[0], c[0], 6, tcp(s[1], c[1], 5000, 1001, SYN | ACK))))
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 1001, 5001, ACK))))
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 1001, 5001, PSH | ACK, req))))
# 3. TLS ClientHello whose SNI is a listed phishing URL's host (derived, exact-only domain).
c, s = ("10.0.0.22", 40002), ("93.184.216.61", 443)
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 2000, 0, SYN))))
add(eth(ipv4(s[0], c[0], 6, tcp(s[1], c[1], 7000, 2001, SYN | ACK))))
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 2001, 7001, ACK))))
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 2001, 7001, PSH | ACK, client_hello("docs-share.info")))))
# 4. A connection attempt to an address inside a DROP CIDR (IP hit, once per flow direction).
c, s = ("10.0.0.23", 40003), ("185.220.100.5", 22)
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 3000, 0, SYN))))
add(eth(ipv4(s[0], c[0], 6, tcp(s[1], c[1], 9000, 3001, SYN | ACK))))
add(eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 3001, 9001, ACK))))
# 5. IPv6 DNS query for a listed mail relay.
add(eth(ipv6("fd00::20", "2001:4860:4860::8888", 17, udp(40004, 53, dns_query(0x2222, "mail.evil-relay.org", 28))), v6=True))
# 6. Benign traffic: must not alert.
add(eth(ipv4("10.0.0.24", "10.0.0.1", 17, udp(40005, 53, dns_query(0x3333, "www.wikipedia.org", 1)))))
add(eth(ipv4("10.0.0.24", "10.0.0.1", 17, udp(40006, 53, dns_query(0x3334, "notevil.com", 1)))))

os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i, p in enumerate(packets):
        ts = T0 + i
        f.write(struct.pack("<IIII", ts, 1000 * i, len(p), len(p)))
        f.write(p)
print("wrote", OUT, len(packets), "packets")

"""A name server that answers every query with SERVFAIL (rcode 2).

dnsmasq forwards the zone servfail.test here, so a query for that zone
gets a SERVFAIL relayed by the real server. Prints its port, then serves.
Usage: python3 servfail.py PORT (0 = any free port)
"""

import socket
import sys

sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
print(sock.getsockname()[1], flush=True)
while True:
    query, peer = sock.recvfrom(4096)
    if len(query) < 12:
        continue
    end = query.find(b"\0", 12)  # end of the question's name
    if end < 0 or len(query) < end + 5:
        continue
    # Same id, one question (no EDNS record); QR=1, opcode and RD copied,
    # RA=1, RCODE=2 (SERVFAIL).
    flags = 0x8000 | (query[2] << 8 & 0x7900) | 0x0080 | 2
    header = query[:2] + flags.to_bytes(2, "big") + b"\0\1\0\0\0\0\0\0"
    sock.sendto(header + query[12 : end + 5], peer)

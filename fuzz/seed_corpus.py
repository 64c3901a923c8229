"""Seed inputs for fuzz/corpus/<target>/, made by CPython (and the zstd CLI).

Each file is one input, named by a hash of its bytes, so running this again
adds nothing twice. The layouts follow fuzz/src/targets.rs: a few option
bytes at the front for the frame and compression targets (each one byte
picks among that target's choices, `max` is two bytes), `format NUL data`
for struct, a record-type byte then the name for dns_name, a value limit
(two bytes) and a chunk size then the replies of a real memcached (Debian's
`memcached`, started on a free loopback port) for memcache.

Usage: python3 fuzz/seed_corpus.py
"""

import base64
import gzip
import hashlib
import json
import os
import pickle
import random
import socket
import struct
import subprocess
import time
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
rng = random.Random(20)


def put(target, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


SAMPLES = [b"", b"a", b"hello, world\n", bytes(range(256)), b"x" * 1000, b"line one\r\nline two\nthree",
           rng.randbytes(300)]


def structs():
    formats = ["!IHb", "<hh", "@ci", "=q", ">Q", "<e", "!f", "d", "3s", "10p", "?", "@nNP", "4x I", "2i 3h",
               "<1000000000000000H", "999999999I", "999999999999999x", "0s", "c0i", "!BBHI8s", "<5H", "255p"]
    for fmt in formats:
        size = struct.calcsize(fmt)
        data = rng.randbytes(size) if size < 4096 else b"\0" * 8
        put("struct", fmt.encode() + b"\0" + data)


def frames():
    kinds = {"length": 0, "line": 1, "netstring": 2, "chunked": 3}
    for payload in SAMPLES[:5]:
        for prefix, (fmt, idx) in enumerate([("!I", 0), ("<H", 1), ("B", 2), ("!Q", 3)]):
            n = min(len(payload), 255)
            body = struct.pack(fmt, n) + payload[:n]
            put("frame", bytes([kinds["length"], idx]) + b"\xff\xff" + bytes([prefix * 7]) + body * 2)
        put("frame", bytes([kinds["line"], 0]) + b"\xff\x00\x05" + payload + b"\r\n" + payload + b"\n")
        put("frame", bytes([kinds["netstring"], 0]) + b"\xff\xff\x03" + b"%d:%s," % (len(payload), payload))
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 7]), payload[i:i + 7]) for i in range(0, len(payload), 7))
        put("frame", bytes([kinds["chunked"], 0]) + b"\xff\xff\x00" + chunked + b"0\r\nX-T: 1\r\n\r\n")


def codecs():
    values = [None, True, 1, -2**63, 2**64, 1.5, float("inf"), "text", "é\u2603", [1, [2, [3]]],
              {"a": 1, "b": [None, 2.5]}, (1, 2), b"bytes", bytearray(b"ba"), {1: "int key"}, {1, 2}, frozenset([3]),
              [[[[[]]]]], {"x": {"y": {"z": {}}}}]
    for v in values:
        for proto in range(6):
            put("pickle", pickle.dumps(v, protocol=proto))
        try:
            put("json", json.dumps(v).encode())
        except TypeError:
            pass
    for text in ['{"a": [1, 2, {"b": null}]}', "[1e400, -0.0, 123456789012345678901234567890]",
                 '"\\ud83d\\ude00 \\u00e9"', "  [ ]  ", '{"a":1,"a":2}', "[" * 40 + "]" * 40]:
        put("json", text.encode())
    for data in SAMPLES:
        put("text", base64.b64encode(data))
        put("text", base64.urlsafe_b64encode(data).rstrip(b"="))
        put("text", base64.encodebytes(data))
        put("text", data.hex().encode())
        put("text", data.hex(" ").upper().encode())


def compressed():
    # Indexes into WBITS in targets.rs: 0 = -15, 7 = 15, 11 = 31, 14 = 47.
    for data in SAMPLES:
        for idx, wbits in [(0, -15), (7, 15), (11, 31), (14, 47)]:
            c = zlib.compressobj(6, zlib.DEFLATED, wbits if wbits != 47 else 31)
            stream = c.compress(data) + c.flush()
            put("zlib", bytes([idx]) + b"\xff\xff\x11" + stream + b"tail")
        put("gzip", b"\x00\xff\xff\x09" + gzip.compress(data) + gzip.compress(data[:10]))
        z = subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE, check=True).stdout
        put("zstd", b"\x00\xff\xff\x05" + z + z)


def names():
    for name in ["example.com", "a.b.c.", "xn--bcher-kva.example", "b\u00fccher.example", "127.0.0.1", "::1",
                 "[::1]", "1.0.0.127.in-addr.arpa", "a" * 63 + ".com", ("a" * 60 + ".") * 5, "", ".", "..",
                 "-bad-.example", "under_score.example", "*.example", "localhost", "192.168.1.300", "fe80::1%lo"]:
        for rtype in range(2):
            put("dns_name", bytes([rtype]) + name.encode())


def memcache_replies():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    root = ["-u", "root"] if os.getuid() == 0 else []
    server = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1"] + root)
    try:
        for _ in range(500):
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.01)
        conn.settimeout(0.3)

        def ask(request):
            conn.sendall(request)
            reply = b""
            try:
                while True:
                    part = conn.recv(65536)
                    if not part:
                        break
                    reply += part
            except socket.timeout:
                pass
            return reply

        binary = bytes(range(256)) + b"\r\nEND\r\n"
        sessions = [
            b"set k 5 0 3\r\nabc\r\nget k\r\ngets k\r\n",
            b"set bin 7 0 %d\r\n%s\r\nget bin k nothere\r\n" % (len(binary), binary),
            b"add k 0 0 1\r\nx\r\nreplace nothere 0 0 1\r\nx\r\nappend k 0 0 2\r\nyz\r\nprepend k 0 0 1\r\n_\r\n",
            b"gets k\r\ncas k 0 0 1 1\r\nz\r\ncas nothere 0 0 1 1\r\nz\r\n",
            b"set n 0 0 2\r\n41\r\nincr n 1\r\ndecr n 100\r\nincr k 1\r\nincr nothere 1\r\n",
            b"touch k 10\r\ntouch nothere 10\r\ndelete k\r\ndelete k\r\n",
            b"stats\r\n",
            b"version\r\nflush_all\r\nbogus\r\n",
            b"set big 0 0 2000\r\n" + b"v" * 2000 + b"\r\nget big\r\n",
            b"set bad 0 0 1\r\ntoo long\r\n",
        ]
        for i, request in enumerate(sessions):
            put("memcache", b"\xff\xff" + bytes([i * 37 % 256]) + ask(request))
        # A small value limit: the VALUE of 2000 bytes is over it.
        put("memcache", b"\x01\x01\x00" + ask(b"get big\r\n"))
    finally:
        server.kill()
        server.wait()


structs()
frames()
codecs()
compressed()
names()
memcache_replies()

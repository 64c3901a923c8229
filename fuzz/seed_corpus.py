"""Seed inputs for fuzz/corpus/<target>/, made by CPython (and the zstd and openssl CLIs).

Each file is one input, named by a hash of its bytes, so running this again
adds nothing twice. The layouts follow fuzz/src/targets.rs: a few option
bytes at the front for the frame and compression targets (each one byte
picks among that target's choices, `max` is two bytes), `format NUL data`
for struct, `selector NUL page` for html, a record-type byte then the name
for dns_name, the raw bytes for cert (DER, PEM, PEM after a key, a key
alone), `url NUL reference` for url, and what a client sends for
http_server (request heads and bodies, some pipelined, as http.client and
curl write them), a value limit (two bytes), a chunk size and a reply shape (two bytes)
then the replies of a real memcached (Debian's `memcached`, started on a free
loopback port) for memcache.

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


def pages():
    # `selector NUL page`: the test pages of tests/it/html_pages, and small
    # broken fragments, each with a few selectors.
    folder = os.path.join(os.path.dirname(ROOT), os.pardir, "tests", "it", "html_pages")
    texts = [open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder)) if f.endswith(".html")]
    texts += [b"<p>unclosed <b>bold <i>both</b> italic</i>", b"<table>stray<tr><td>x<div>y</table>",
              b"<template><a href=t>t</a><form><input name=t></form></template>",
              b"<svg><a xlink:href='/s'>s</a><foreignObject><p>f</svg>", b"<math><mi>x<![CDATA[y]]></math>",
              b"<select name=s><optgroup disabled><option>a</optgroup><option selected>b</select>",
              b"<form id=f></form><input form=f name=late value=1><fieldset disabled><legend><input name=l>",
              b"<base href='//other.example/x/'><a href='../up'>u</a><a href='http://[::1'>v</a>",
              b"<script>if (a < b) {}</script><style>p{}</style><rt>r</rt><!-- c -->&amp;&nbsp;&#x1F600;",
              b"<div>" * 200 + b"deep", b"<span>" * 2000 + b"deep", b""]
    selectors = [b"", b"p", b"a[href$='.pdf' i]", b"li:nth-child(3n+1):not(.x)", b"div > p + p ~ b",
                 b":has(> td)", b"::nope(", b"[", b"http://example.com/base/"]
    for i, text in enumerate(texts):
        for css in selectors[i % 3::3]:
            put("html", css + b"\0" + text)


def names():
    for name in ["example.com", "a.b.c.", "xn--bcher-kva.example", "b\u00fccher.example", "127.0.0.1", "::1",
                 "[::1]", "1.0.0.127.in-addr.arpa", "a" * 63 + ".com", ("a" * 60 + ".") * 5, "", ".", "..",
                 "-bad-.example", "under_score.example", "*.example", "localhost", "192.168.1.300", "fe80::1%lo"]:
        for rtype in range(2):
            put("dns_name", bytes([rtype]) + name.encode())


def certs():
    # Certificates of several key types and extensions, each as DER and PEM
    # (alone, and after a private key), and the keys as PEM.
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for i, (key, ext) in enumerate([
            (["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
             "subjectAltName=DNS:a.test,IP:127.0.0.1,IP:::1,email:a@b.c,URI:http://u.test/"),
            (["-newkey", "ed25519"], "authorityInfoAccess=OCSP;URI:http://o.test/,caIssuers;URI:http://c.test/"),
            (["-newkey", "rsa:1024"], "crlDistributionPoints=URI:http://crl.test/a.crl"),
        ]):
            pem, keyfile = os.path.join(d, f"{i}.pem"), os.path.join(d, f"{i}.key")
            subprocess.run(["openssl", "req", "-x509", *key, "-nodes", "-keyout", keyfile, "-out", pem, "-days", "20000",
                            "-subj", f"/CN=fuzz{i}.test/O=Fuzz+OU=Multi", "-addext", ext], check=True,
                           stderr=subprocess.DEVNULL)
            der = subprocess.run(["openssl", "x509", "-in", pem, "-outform", "DER"], stdout=subprocess.PIPE,
                                 check=True).stdout
            with open(pem, "rb") as f:
                cert = f.read()
            with open(keyfile, "rb") as f:
                k = f.read()
            put("cert", der)
            put("cert", cert)
            put("cert", k + cert)
            put("cert", k)


def urls():
    # The RFC 3986 examples' base and references, and query strings.
    base = "http://a/b/c/d;p?q"
    refs = ["g:h", "g", "./g", "g/", "/g", "//g", "?y", "g?y", "#s", "g#s", "g?y#s", ";x", "g;x", "g;x?y#s", "",
            ".", "./", "..", "../", "../g", "../..", "../../", "../../g", "../../../g", "/./g", "/../g", "g.",
            ".g", "g..", "..g", "./../g", "./g/.", "g/./h", "g/../h", "g;x=1/./y", "g;x=1/../y", "g?y/./x",
            "g#s/../x", "http:g", "a=1&b=2&a=3", "x=%zz&y=%41+b;c", "=&&=="]
    for r in refs:
        put("url", base.encode() + b"\0" + r.encode())
    for u in ["http://[::1]:80/p", "http://u:p@H.example:65536/", "https://[v1.x]/", "mailto:a@b", "//h/p",
              "file:///etc/hosts", "http://\uff21.example/", " \t\nhttp://x/ y", "svn+ssh://h/p?q#f", "a%2Fb c~"]:
        put("url", u.encode())


def http_requests():
    def req(method, target, headers=(), body=b""):
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if body and not any(n.lower() in ("content-length", "transfer-encoding") for n, _ in headers):
            head += f"Content-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    boundary = "----fuzzboundary7"
    multipart = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAnn\r\n"
                 f"--{boundary}\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.txt\"\r\n"
                 f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    form = ("Content-Type", "application/x-www-form-urlencoded")
    for data in [
        req("GET", "/"),
        req("GET", "/a/b%20c?x=1&x=2&y=%20z&e=&=v;k", [("Cookie", "sid=abc; flash=\"hi there\"; a=1; a=2")]),
        req("POST", "/form", [form], b"name=a+b%21&tag=1&tag=2&empty="),
        req("POST", "/up", [("Content-Type", f"multipart/form-data; boundary={boundary}")], multipart),
        req("POST", "/json", [("Content-Type", "application/json")], json.dumps({"a": [1, 2.5, None, "x"]}).encode()),
        req("PUT", "/chunked", [("Transfer-Encoding", "chunked"), form], b"5\r\nname=\r\n3\r\nAnn\r\n0\r\n\r\n"),
        req("POST", "/expect", [("Expect", "100-continue"), form], b"a=1"),
        req("POST", "/big", [("Content-Length", "99999")], b"x" * 10),
        req("GET", "/s/README.md", [("Range", "bytes=0-10")]),
        req("GET", "/s/README.md", [("Range", "bytes=-5")]),
        req("GET", "/s/README.md", [("Range", "bytes=100-")]),
        req("GET", "/s/README.md", [("Range", "bytes=0-1,3-4")]),
        req("GET", "/s/README.md", [("Range", "bytes=99999999-")]),
        req("GET", "/s/README.md", [("If-None-Match", "W/\"1-2\", *")]),
        req("GET", "/s/Cargo.toml", [("If-Modified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")]),
        req("HEAD", "/s/README.md"),
        req("GET", "/s/src/"),
        req("GET", "/s/../Cargo.toml"),
        req("GET", "/s/%2e%2e/%2E%2E/Cargo.toml"),
        req("GET", "/s/README.md%00.png"),
        req("GET", "/s/..%5c..%5cCargo.toml"),
        req("GET", "/one") + req("POST", "/two", [form], b"a=1") + req("GET", "/three", [("Connection", "close")]),
        b"GET /old HTTP/1.0\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 garbage\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        req("GET", "/h", [(f"X-H{i}", "v" * i) for i in range(40)]),
    ]:
        put("http_server", data)
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
        # The reply shape: 0x80 | (n - 1) for n one-line replies, n - 1 for
        # n END-ended blocks, then the most items they hold.
        for i, request in enumerate(sessions):
            put("memcache", b"\xff\xff" + bytes([i * 37 % 256, 0x80, 0]) + ask(request))
        for request, shape, items in [
            (b"get k\r\nget bin k nothere\r\n", 1, 4),
            (b"stats\r\n", 0, 255),
            (b"get bin k\r\n", 0, 1),
        ]:
            put("memcache", b"\xff\xff\x07" + bytes([shape, items]) + ask(request))
        # A small value limit: the VALUE of 2000 bytes is over it.
        put("memcache", b"\x01\x01\x00\x00\x01" + ask(b"get big\r\n"))
    finally:
        server.kill()
        server.wait()


structs()
frames()
codecs()
compressed()
pages()
names()
certs()
urls()
http_requests()
memcache_replies()

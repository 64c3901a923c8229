"""Differential cases for netscript's `url::`, computed by CPython's `urllib.parse`.

Prints one JSON object per line:
  {"fn": "split"|"parse"|"port"|"unsplit"|"unparse"|"join"|"defrag"|"quote"|"quote_plus"|
         "unquote"|"unquote_plus"|"unquote_to_bytes"|"parse_qs"|"parse_qsl"|"encode",
   "args": [arg], "ok": bool, "result": value, "error": str}

Arguments and results are JSON; a Python bytes value is {"$blob": hex}. For
split/parse the result holds the fields, the netloc attributes (`port` is
null when reading it raises), `port_checked` (the port, or "error" when
reading `.port` raises ValueError) and `geturl`.

Inputs: RFC 3986 section 5.4 (normal and abnormal examples), RFC 1808's
examples, the tables of CPython's test_urlparse.py (url_tables.py), focused
cases for each option and error, and random strings from an alphabet heavy
in URL delimiters, percent signs, whitespace and non-ASCII characters.

Usage: python3 url_cases.py [seed]
"""

import json
import os
import random
import sys
import urllib.parse as P

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import url_tables as T  # noqa: E402

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 20261203
rng = random.Random(SEED)

RFC3986_BASE = "http://a/b/c/d;p?q"
RFC3986_NORMAL = ["g:h", "g", "./g", "g/", "/g", "//g", "?y", "g?y", "#s", "g#s", "g?y#s", ";x", "g;x", "g;x?y#s",
                  "", ".", "./", "..", "../", "../g", "../..", "../../", "../../g"]
RFC3986_ABNORMAL = ["../../../g", "../../../../g", "/./g", "/../g", "g.", ".g", "g..", "..g", "./../g", "./g/.",
                    "g/./h", "g/../h", "g;x=1/./y", "g;x=1/../y", "g?y/./x", "g?y/../x", "g#s/./x", "g#s/../x",
                    "http:g"]
RFC1808_BASE = "http://a/b/c/d;p?q#f"
RFC1808 = ["g:h", "g", "./g", "g/", "/g", "//g", "?y", "g?y", "g?y/./x", "#s", "g#s", "g#s/./x", "g?y#s", ";x",
           "g;x", "g;x?y#s", ".", "./", "..", "../", "../g", "../..", "../../", "../../g", "", "../../../g",
           "../../../../g", "/./g", "/../g", "g.", ".g", "g..", "..g", "./../g", "./g/.", "g/./h", "g/../h"]

DELIMS = ":/?#[]@!$&'()*+,;=%"
ALPHABET = (DELIMS * 4 + "abcAZ019-._~ " + "\t\n\r\x00\x01\x1f" + "é中ü℀＠ß İΣ\u3002\uff1f\u2474"
            + "%41" + "%zz")
PIECES = ["%41", "%e2%82%ac", "%C3", "%A9", "%", "%2", "%zZ", "+", "[", "]", "[::1]", "[v1.x]", "[1.2.3.4]",
          "[fe80::1%25eth0]", "[::ffff:1.2.3.4]", "[v.x]", "[::1", "@", "user:pw@", ":80", ":0080", ":65536",
          ":abc", ":-1", ":", "//", "http:", "HTTPS:", "svn+ssh:", "mailto:", "1a:", "a1+.-:", "?", "#", ";",
          "=", "&", "é", "℀", "＠", "\u2100", "\uff03", "\t", " ", "\x00"]
SCHEMES = ["http", "HTTPS", "ftp", "file", "mailto", "svn+ssh", "git", "tel", "sip", "x-y", "ws", "", "news", "hdl"]
HOSTS = ["a", "Example.COM", "[::1]", "[FE80::1%Zone]", "[v1.fe]", "127.0.0.1", "", "xn--n3h", "é.fr", "h℀",
         "h＠x", "[::1.2.3.4]", "[1::2::3]", "[12345::]", "[]", "h]", "[h"]


def rand_text(n):
    out = []
    for _ in range(n):
        out.append(rng.choice(PIECES) if rng.random() < 0.3 else rng.choice(ALPHABET))
    return "".join(out)


def rand_url():
    if rng.random() < 0.4:
        return rand_text(rng.randint(0, 24))
    parts = []
    scheme = rng.choice(SCHEMES)
    if scheme:
        parts.append(scheme + ":")
    if rng.random() < 0.8:
        parts.append("//")
        if rng.random() < 0.3:
            parts.append(rng.choice(["u", "u:p", "U:", ":p", "a@b", "é"]) + "@")
        parts.append(rng.choice(HOSTS))
        if rng.random() < 0.4:
            parts.append(rng.choice([":80", ":0", ":65535", ":65536", ":08080", ":x", ":", ":１２"]))
    for _ in range(rng.randint(0, 4)):
        parts.append(rng.choice(["/", "/..", "/.", "/a", "/b;p", ";q=1", "//", "/%2e%2E"]))
    if rng.random() < 0.4:
        parts.append("?" + rand_text(rng.randint(0, 6)))
    if rng.random() < 0.3:
        parts.append("#" + rand_text(rng.randint(0, 6)))
    if rng.random() < 0.2:
        i = rng.randint(0, len(parts))
        parts.insert(i, rng.choice(PIECES))
    return "".join(parts)


def jsonable(v):
    if isinstance(v, bytes):
        return {"$blob": v.hex()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def unjson(v):
    if isinstance(v, dict) and set(v) == {"$blob"}:
        return bytes.fromhex(v["$blob"])
    if isinstance(v, list):
        return [unjson(x) for x in v]
    if isinstance(v, dict):
        return {k: unjson(x) for k, x in v.items()}
    return v


def netloc_attrs(r, out):
    out["hostname"] = r.hostname
    out["username"] = r.username
    out["password"] = r.password
    try:
        out["port"] = r.port
        out["port_checked"] = r.port
    except ValueError:
        out["port"] = None
        out["port_checked"] = "error"
    out["geturl"] = r.geturl()
    return out


def split_opts(opts):
    return {"scheme": opts.get("scheme", ""), "allow_fragments": opts.get("allow_fragments", True)}


def qs_opts(opts):
    return {k: v for k, v in opts.items()}


def run(fn, args):
    a = unjson(args)
    if fn == "split":
        r = P.urlsplit(a[0], **(split_opts(a[1]) if len(a) > 1 else {}))
        return netloc_attrs(r, dict(r._asdict()))
    if fn == "parse":
        r = P.urlparse(a[0], **(split_opts(a[1]) if len(a) > 1 else {}))
        return netloc_attrs(r, dict(r._asdict()))
    if fn == "port":
        return P.urlsplit(a[0]).port
    if fn == "unsplit":
        return P.urlunsplit(a[0])
    if fn == "unparse":
        return P.urlunparse(a[0])
    if fn == "join":
        return P.urljoin(a[0], a[1], **(a[2] if len(a) > 2 else {}))
    if fn == "defrag":
        r = P.urldefrag(a[0])
        return {"url": r.url, "fragment": r.fragment}
    if fn in ("quote", "quote_plus"):
        f = getattr(P, fn)
        return f(a[0], a[1]) if len(a) > 1 else f(a[0])
    if fn == "unquote":
        return P.unquote(a[0])
    if fn == "unquote_plus":
        return P.unquote_plus(a[0])
    if fn == "unquote_to_bytes":
        return P.unquote_to_bytes(a[0])
    if fn == "parse_qs":
        return P.parse_qs(a[0], **(qs_opts(a[1]) if len(a) > 1 else {}))
    if fn == "parse_qsl":
        return [list(p) for p in P.parse_qsl(a[0], **(qs_opts(a[1]) if len(a) > 1 else {}))]
    if fn == "encode":
        q = a[0]
        # A script map iterates in key order; pairs keep theirs.
        q = dict(sorted(q.items())) if isinstance(q, dict) else [tuple(p) for p in q]
        opts = dict(a[1]) if len(a) > 1 else {}
        if "quote_via" in opts:
            opts["quote_via"] = getattr(P, opts["quote_via"])
        return P.urlencode(q, **opts)
    raise AssertionError(fn)


CASES = []


def case(fn, *args):
    CASES.append((fn, list(args)))


# Tables: RFC 3986 section 5.4, RFC 1808, CPython's own test inputs.
for ref in RFC3986_NORMAL + RFC3986_ABNORMAL:
    case("join", RFC3986_BASE, ref)
for ref in RFC1808:
    case("join", RFC1808_BASE, ref)
for base, ref in T.JOIN:
    case("join", base, ref)
for item in T.SPLIT:
    args = item if isinstance(item, list) else [item]
    case("split", *args)
    case("parse", *args)
for parts in T.UNSPLIT:
    case("unsplit", parts)
for parts in T.UNPARSE:
    case("unparse", parts)
for u in T.DEFRAG:
    case("defrag", u)
for q in T.QUERY:
    for opts in [{}, {"keep_blank_values": True}, {"strict_parsing": True}, {"separator": ";"}]:
        case("parse_qs", q, opts)
        case("parse_qsl", q, opts)
for s in T.UNQUOTE:
    case("unquote", s)
    case("unquote_to_bytes", s)

# Focused cases: options, bytes, errors.
for u in ["http://[::1]:80/", "http://[::1", "http://::1]/", "http://[1.2.3.4]/", "http://[v1.x]/", "http://[v1.]/",
          "http://[vg.x]/", "http://[fe80::1%eth0]/", "http://[fe80::1%]/", "http://h\u2100/", "http://h\uff03/",
          "http://u@h\uff20x/", "http://\u00e9/", " \x00\thttp://h/\n", "HTTP://H/p", "1http://h/", "a:b", "path:80",
          "http://h:65536/", "http://h:0x10/", "http://h:\uff11/", "//h/p", "ht\ttp://h/", "http://h/p#f?q",
          "mailto:a@b?subject=x", "tel:+1;ext=2", "svn+ssh://h/p;x", "http://u:p:q@h:1/", "http://a@b@c/"]:
    case("split", u)
    case("parse", u)
    case("split", u, {"scheme": "https", "allow_fragments": False})
    case("parse", u, {"scheme": " \tx\n", "allow_fragments": False})
    case("defrag", u)
for base, ref in [("http://a/b", "https://c/d"), ("mailto:a", "b"), ("foo:a/b", "c"), ("svn+ssh://h/a/b", "../c"),
                  ("", "x"), ("http://a/b", ""), ("http://a/b/c", "//[::1/x"), ("http://a/b#f", "#"),
                  ("http://a/b?q", "?"), ("http://a/b;p", ";q")]:
    case("join", base, ref)
    case("join", base, ref, {"allow_fragments": False})
QUOTE_INPUTS = ["", "a b", "a/b c~é", "+ +", "%41", "\x00\x7f", "中文", "safe!*'()"]
for s in QUOTE_INPUTS:
    for fn in ("quote", "quote_plus"):
        case(fn, s)
        for safe in ["", "/", " ", "+", "é/", ":@!*", {"$blob": "2f20ff"}]:
            case(fn, s, safe)
        case(fn, {"$blob": s.encode().hex() + "ff00"}, "/")
for s in ["%", "%2", "%zz", "%41%42", "%C3%A9", "%C3é%A9", "%ff%fe", "%ED%A0%80", "%F0%9F%98", "a+b", "%E2%82%AC+"]:
    for fn in ("unquote", "unquote_plus", "unquote_to_bytes"):
        case(fn, s)
    case("unquote", {"$blob": s.encode().hex()})
for q in ["a=1&b=2&a=3", "a&b=&=c&&d=1=2", "a=1;b=2", "a+b=c+d%20e", "", "&", "=", "a", "k=%E9", "a=1&&b=2"]:
    for opts in [{}, {"keep_blank_values": True}, {"strict_parsing": True}, {"max_num_fields": 2},
                 {"max_num_fields": 0}, {"separator": ";"}, {"separator": "&&"}, {"separator": ""},
                 {"keep_blank_values": True, "strict_parsing": True, "max_num_fields": 3, "separator": ";"}]:
        case("parse_qs", q, opts)
        case("parse_qsl", q, opts)
for query in [{"a": "b c", "é": "/~+"}, [["x", 1], ["y", 2.5], ["z", True], ["n", None], ["x", "1"]],
              [["b", {"$blob": "ff20"}], ["k", 1e20], ["k", -0.0], ["k", 1e-7], ["k", 123456789.125]],
              {"tags": ["a", "b c", 3], "one": "v"}, [], {}]:
    for opts in [{}, {"doseq": True}, {"safe": "/ "}, {"quote_via": "quote"}, {"quote_via": "quote_plus", "safe": "+"},
                 {"doseq": True, "quote_via": "quote", "safe": ":"}]:
        if not opts.get("doseq") and any(isinstance(v, list) for v in
                                         (query.values() if isinstance(query, dict) else [p[1] for p in query])):
            continue  # str(list) is Python's repr: a script array needs doseq
        case("encode", query, opts)

# Floats are written as Python's repr writes them: random doubles of every magnitude.
import math  # noqa: E402
import struct  # noqa: E402
floats = []
while len(floats) < 2000:
    x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
    if math.isfinite(x):
        floats.append(x)
floats += [rng.random() * 10 ** rng.randint(-6, 17) for _ in range(2000)]
for i in range(0, len(floats), 100):
    case("encode", [["f", x] for x in floats[i:i + 100]])

# Random strings, through every function.
for _ in range(1500):
    u = rand_url()
    case("split", u)
    case("parse", u)
    case("defrag", u)
    case("join", rng.choice([RFC3986_BASE, RFC1808_BASE, rand_url()]), rand_url())
    r = [rand_text(rng.randint(0, 4)) for _ in range(6)]
    case("unsplit", r[:5])
    case("unparse", r)
    s = rand_text(rng.randint(0, 16))
    case("quote", s, rng.choice(["", "/", DELIMS, "é%"]))
    case("quote_plus", s)
    case("unquote", s)
    case("unquote_plus", s)
    case("unquote_to_bytes", s)
    opts = {"keep_blank_values": rng.random() < 0.5, "strict_parsing": rng.random() < 0.2,
            "separator": rng.choice(["&", ";", "&"])}
    case("parse_qs", s, opts)
    case("parse_qsl", s, opts)
    case("encode", [[rand_text(3), rand_text(4)], [rand_text(2), rand_text(3)]],
         {"safe": rng.choice(["", "/", DELIMS]), "quote_via": rng.choice(["quote", "quote_plus"])})
    case("port", u)
    case("split", u, {"scheme": rng.choice(["", "HTTP", " x\t"]), "allow_fragments": rng.random() < 0.5})
    case("parse_qsl", s, {"max_num_fields": rng.randint(0, 4), "keep_blank_values": True})
    values = [rand_text(2), rng.randint(-99, 99), rng.random() * 10 ** rng.randint(-8, 20), rng.random() < 0.5, None,
              {"$blob": bytes(rng.randrange(256) for _ in range(3)).hex()}]
    case("encode", {rand_text(2): rng.sample(values, 3), rand_text(3): rng.choice(values)},
         {"doseq": True, "safe": rng.choice(["", "/", DELIMS])})

for fn, args in CASES:
    line = {"fn": fn, "args": args}
    try:
        line["result"] = jsonable(run(fn, args))
        line["ok"] = True
    except ValueError as e:
        line["ok"] = False
        line["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(line, ensure_ascii=False))

//! The fuzz targets: one per parser a script or a peer feeds.
//!
//! Each target turns the raw input into script variables (with
//! [`arbitrary::Unstructured`] for the few option bytes at the front) and
//! runs a tiny script through the standard library, exactly as a script
//! reaches it. The script catches every error and returns the `kind` of
//! each; the harness fails when a kind is not one the target expects, when
//! a round trip the script checks does not hold (it throws a string, which
//! has no kind), and of course when the process panics or dies.

use arbitrary::Unstructured;
use netscript_stdlib::memcache::protocol::{self, Assembly, Expect, Frame, Malformed};
use rhai::{Array, Blob, Dynamic, INT, Scope};

/// One fuzz target.
pub struct Target {
    /// Its name, also the folder of its corpus (`fuzz/corpus/<name>/`).
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    /// How an input is run.
    pub check: Check,
}

/// How a target runs an input.
pub enum Check {
    /// A script, for parsers a script feeds.
    Script {
        /// The script run on every input (after [`PRELUDE`]); it returns
        /// the kinds of the errors it caught.
        script: &'static str,
        /// Error kinds the script may meet.
        kinds: &'static [&'static str],
        /// The script's variables for an input.
        scope: fn(&[u8]) -> Scope<'static>,
        /// Whether the script runs as a host task (an event loop under it)
        /// that may listen and connect on 127.0.0.1; otherwise it has no
        /// network.
        loopback: bool,
    },
    /// A Rust function that panics on a bug, for parsers only a peer feeds
    /// through code a script cannot hand bytes to directly.
    Native(fn(&[u8])),
}

/// Shared by every script: the list of caught kinds and how to name one.
pub const PRELUDE: &str = r#"
fn kind_of(e) {
    if type_of(e) == "map" && "kind" in e { e.kind } else { `not an error map: ${e}` }
}
let kinds = [];
"#;

/// Every target, in the order `run` takes them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "struct",
        about: "struct formats (calcsize, compile) and unpack/pack of the rest of the input",
        check: Check::Script {
            script: r#"
try { struct::calcsize(fmt); } catch (e) { kinds.push(kind_of(e)); }
try {
    let s = struct::compile(fmt);
    let v = s.unpack_from(data);
    let again = struct::pack(fmt, v);
    if again.len() != s.size { throw `pack gave ${again.len()} bytes, not ${s.size}`; }
    struct::unpack(fmt, again);
} catch (e) { kinds.push(kind_of(e)); }
try { struct::iter_unpack(fmt, data); } catch (e) { kinds.push(kind_of(e)); }
try { struct::pack(fmt, values); } catch (e) { kinds.push(kind_of(e)); }
kinds
"#,
            kinds: &["pack", "limit"],
            scope: struct_scope,
            loopback: false,
        },
    },
    Target {
        name: "frame",
        about: "frame::decoder for each framing fed in chunks, split_lines, and encode/decode round trips",
        check: Check::Script {
            script: r#"
let opts = if kind == "length" { #{prefix: prefix, max: max} } else { #{max: max} };
try {
    let d = frame::decoder(kind, opts);
    for c in chunks { d.feed(c); }
    d.pending; d.take(); d.eof();
} catch (e) { kinds.push(kind_of(e)); }
try { frame::split_lines(data); } catch (e) { kinds.push(kind_of(e)); }
try {
    let d = frame::decoder("length", #{prefix: prefix});
    let got = d.feed(frame::encode_length(data, #{prefix: prefix}));
    if got != [data] { throw "length round trip"; }
} catch (e) { kinds.push(kind_of(e)); }
let d = frame::decoder("netstring");
if d.feed(frame::encode_netstring(data)) != [data] { throw "netstring round trip"; }
let d = frame::decoder("chunked");
if d.feed(frame::encode_chunked(data, #{size: max % 97 + 1})) != [data] { throw "chunked round trip"; }
kinds
"#,
            kinds: &["frame", "value"],
            scope: frame_scope,
            loopback: false,
        },
    },
    Target {
        name: "json",
        about: "json::decode of the input, then encode/decode/encode agreeing",
        check: Check::Script {
            script: r#"
try {
    let v = json::decode(data);
    let text = json::encode(v);
    if json::encode(json::decode(text)) != text { throw "json round trip"; }
} catch (e) { kinds.push(kind_of(e)); }
kinds
"#,
            kinds: &["decode", "value", "limit"],
            scope: data_scope,
            loopback: false,
        },
    },
    Target {
        name: "pickle",
        about: "pickle::loads of the input, then dumps/loads of the value",
        check: Check::Script {
            script: r#"
try {
    let v = pickle::loads(data);
    pickle::loads(pickle::dumps(v));
} catch (e) { kinds.push(kind_of(e)); }
kinds
"#,
            kinds: &["decode", "value", "limit"],
            scope: data_scope,
            loopback: false,
        },
    },
    Target {
        name: "zlib",
        about: "zlib::decompress and the streaming decompressor over deflate, zlib and gzip wbits",
        check: Check::Script {
            script: r#"
try { zlib::decompress(data, wbits, #{max_size: max}); } catch (e) { kinds.push(kind_of(e)); }
try {
    let d = zlib::decompressor(wbits, #{max_size: max});
    for c in chunks { d.feed(c); }
    d.flush(); d.eof; d.unused_data;
} catch (e) { kinds.push(kind_of(e)); }
if zlib::decompress(zlib::compress(data)) != data { throw "zlib round trip"; }
kinds
"#,
            kinds: &["decode", "value", "limit"],
            scope: compress_scope,
            loopback: false,
        },
    },
    Target {
        name: "gzip",
        about: "gzip::decompress and the streaming decompressor",
        check: Check::Script {
            script: r#"
try { gzip::decompress(data, #{max_size: max}); } catch (e) { kinds.push(kind_of(e)); }
try {
    let d = gzip::decompressor(#{max_size: max});
    for c in chunks { d.feed(c); }
    d.flush(); d.eof; d.unused_data;
} catch (e) { kinds.push(kind_of(e)); }
if gzip::decompress(gzip::compress(data)) != data { throw "gzip round trip"; }
kinds
"#,
            kinds: &["decode", "value", "limit"],
            scope: compress_scope,
            loopback: false,
        },
    },
    Target {
        name: "zstd",
        about: "zstd::decompress and the streaming decompressor",
        check: Check::Script {
            script: r#"
try { zstd::decompress(data, #{max_size: max}); } catch (e) { kinds.push(kind_of(e)); }
try {
    let d = zstd::decompressor(#{max_size: max});
    for c in chunks { d.feed(c); }
    d.flush(); d.eof; d.unused_data;
} catch (e) { kinds.push(kind_of(e)); }
if zstd::decompress(zstd::compress(data)) != data { throw "zstd round trip"; }
kinds
"#,
            kinds: &["decode", "value", "limit"],
            scope: compress_scope,
            loopback: false,
        },
    },
    Target {
        name: "text",
        about: "base64 (both alphabets) and hex decoding of the input, and their round trips",
        check: Check::Script {
            script: r#"
for f in [|t| base64::decode(t), |t| base64::urlsafe_decode(t), |t| hex::decode(t), |t| bytes::from_hex(t.as_string_lossy())] {
    try { f.call(data); } catch (e) { kinds.push(kind_of(e)); }
}
if base64::decode(base64::encode(data)) != data { throw "base64 round trip"; }
if base64::urlsafe_decode(base64::urlsafe_encode(data)) != data { throw "urlsafe base64 round trip"; }
if hex::decode(hex::encode(data)) != data { throw "hex round trip"; }
kinds
"#,
            kinds: &["decode", "value"],
            scope: data_scope,
            loopback: false,
        },
    },
    Target {
        name: "html",
        about: "html::parse of the page, a CSS selector from the input, and every walk: text, serialisation, navigation, links, forms and fill",
        check: Check::Script {
            script: r#"
let doc = html::parse(page, #{url: "http://example.com/dir/page.html"});
doc.text(); doc.text(#{separator: "|", strip: true}); doc.title; doc.html(); doc.errors; doc.root.children();
let found = [];
try { found = doc.select(css); doc.select_one(css); } catch (e) { kinds.push(kind_of(e)); }
for css in ["a[href]", "p b", "form input", "li:nth-child(2n+1)", "table td", ":is(div, span) > *"] {
    found += doc.select(css);
}
for e in found {
    e.tag; e.attrs; e.attr("class"); e.text(); e.text(#{separator: " ", strip: true});
    e.html(); e.inner_html(); e.children(); e.parent(); e.to_string();
    try { e.select(css); e.select_one(css); } catch (e) { kinds.push(kind_of(e)); }
}
doc.links(); doc.links(css);
for f in doc.forms() + doc.forms(css) {
    f.action; f.method; f.enctype; f.element.tag;
    let fields = f.fields;
    let again = #{};
    for kv in fields { again[kv[0]] = kv[1]; }
    try { f.fill(again).fields; f.fill(#{field: css}, #{add: true}); f.fill(#{field: css}); } catch (e) { kinds.push(kind_of(e)); }
}
kinds
"#,
            kinds: &["value"],
            scope: html_scope,
            loopback: false,
        },
    },
    Target {
        name: "dns_name",
        about: "DNS names and addresses as dns:: and tcp:: take them (the host allows no network, so nothing is sent)",
        check: Check::Script {
            script: r#"
try { dns::resolve(name, rtype, #{nameserver: "127.0.0.1:9", timeout: 0.1, attempts: 1}); } catch (e) { kinds.push(kind_of(e)); }
try { dns::reverse(name, #{nameserver: "127.0.0.1:9", timeout: 0.1, attempts: 1}); } catch (e) { kinds.push(kind_of(e)); }
try { dns::resolve(name, rtype, #{nameserver: name}); } catch (e) { kinds.push(kind_of(e)); }
try { tcp::connect(name, 9); } catch (e) { kinds.push(kind_of(e)); }
kinds
"#,
            kinds: &["value", "permission"],
            scope: dns_scope,
            loopback: false,
        },
    },
    Target {
        name: "cert",
        about: "certificates as DER and PEM (tls::cert_info), and PEM private keys (the key option of tls::make_ca)",
        check: Check::Script {
            script: r#"
try { tls::cert_info(data); } catch (e) { kinds.push(kind_of(e)); }
try { tls::cert_info(data.as_string_lossy()); } catch (e) { kinds.push(kind_of(e)); }
try { tls::make_ca(#{key: data.as_string_lossy()}); } catch (e) { kinds.push(kind_of(e)); }
kinds
"#,
            kinds: &["value"],
            scope: data_scope,
            loopback: false,
        },
    },
    Target {
        name: "http_server",
        about: "raw bytes a client sends to http::listen(...).serve(router): request heads, bodies, query, cookies, \
                forms, Range and conditional headers on static files; no 500s, and the server answers the next client",
        check: Check::Script {
            script: r#"
let r = http::router();
r.static_dir("/s", dir);
r.any("/*rest", |req| {
    let seen = [req.method, req.path, req.query, req.query_string, req.url, req.version, req.headers, req.cookies,
                req.remote, req.params, req.header("content-type"), req.body.len()];
    for decode in [|q| q.text(), |q| q.json(), |q| q.form()] {
        try { decode.call(req); } catch (e) { if kind_of(e) != "decode" { throw e; } }
    }
    "ok"
});
let s = http::listen("127.0.0.1", 0, #{max_body: 4096, max_headers: 32, header_timeout: 2, body_timeout: 2}).serve(r);
let c = tcp::connect("127.0.0.1", s.port, #{timeout: 5});
let reply = "";
try {
    c.send(data);
    c.shutdown("write");
    reply = c.recv_all().as_string_lossy();
} catch (e) { kinds.push(kind_of(e)); }
c.close();
if reply.contains("HTTP/1.1 500 ") { throw `the server failed: ${reply}`; }
let c = tcp::connect("127.0.0.1", s.port, #{timeout: 5});
c.send("GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
let next = c.recv_all().as_string_lossy();
if !next.starts_with("HTTP/1.1 200 ") || !next.ends_with("ok") { throw `the next client got ${next}`; }
s.stop();
s.wait();
kinds
"#,
            // The server may hang up with the input unread (after a 400, 413 or
            // 431), which resets the connection.
            kinds: &["reset", "closed"],
            scope: http_scope,
            loopback: true,
        },
    },
    Target {
        name: "url",
        about: "URLs as url:: splits, parses, joins and rebuilds them (urllib.parse), and query strings and percent-escapes",
        check: Check::Script {
            script: r#"
try {
    let p = url::parse(u);
    let again = url::unparse(p);
    let s = url::split(u);
    url::unsplit(s);
    url::split(again);
    url::port(u);
} catch (e) { kinds.push(kind_of(e)); }
try { url::join(u, r); url::join(r, u); url::defrag(u); } catch (e) { kinds.push(kind_of(e)); }
try {
    let pairs = url::parse_qsl(u, #{keep_blank_values: true});
    url::encode(pairs);
    url::parse_qs(r, #{strict_parsing: true, max_num_fields: 50});
} catch (e) { kinds.push(kind_of(e)); }
if url::unquote(url::quote(u, "")) != u { throw "quote round trip"; }
if url::unquote_plus(url::quote_plus(r)) != r { throw "quote_plus round trip"; }
url::unquote(r);
kinds
"#,
            kinds: &["value"],
            scope: url_scope,
            loopback: false,
        },
    },
    Target {
        name: "memcache",
        about: "memcached reply parsing (what a server sends), whole and fed in chunks as a connection reads it",
        check: Check::Native(memcache_replies),
    },
    Target {
        name: "recording",
        about: "recordings (the JSON lines `net::recording` and `mock::replay` read) and `bytes::diff` of two parts of the input",
        check: Check::Native(recording_and_diff),
    },
    Target {
        name: "faults",
        about: "fault specs (`--faults`, `net::faults`) and the durations they share with the CLI and load options; a spec read back from how it prints",
        check: Check::Native(fault_specs),
    },
    Target {
        name: "zmtp",
        about: "the ZMTP 3 decoder (greeting, commands, short and long frames, multipart messages) under a message size limit, whole and read in chunks",
        check: Check::Native(zmtp_stream),
    },
];

/// The target called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The input as the blob `data`.
fn data_scope(input: &[u8]) -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push("data", Blob::from(input));
    scope
}

/// `input` cut into chunks of `size` bytes (all of it at once for 0).
fn chunks(input: &[u8], size: u8) -> Array {
    let size = if size == 0 { input.len().max(1) } else { usize::from(size) };
    input.chunks(size).map(|c| Dynamic::from_blob(c.to_vec())).collect()
}

/// `fmt` up to the first NUL byte, `data` after it; `values` are the
/// data's bytes as integers, for packing.
fn struct_scope(input: &[u8]) -> Scope<'static> {
    let (fmt, data) = match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let mut scope = Scope::new();
    scope.push("fmt", String::from_utf8_lossy(fmt).into_owned());
    scope.push("values", data.iter().map(|&b| Dynamic::from_int(INT::from(b))).collect::<Array>());
    scope.push("data", Blob::from(data));
    scope
}

/// Framing options from the first bytes, then the data.
fn frame_scope(input: &[u8]) -> Scope<'static> {
    const KINDS: [&str; 4] = ["length", "line", "netstring", "chunked"];
    const PREFIXES: [&str; 8] = ["!I", "<H", "B", "!Q", "<Q", "@L", "=I", ">H"];
    let mut u = Unstructured::new(input);
    let kind = *u.choose(&KINDS).unwrap_or(&KINDS[0]);
    let prefix = *u.choose(&PREFIXES).unwrap_or(&PREFIXES[0]);
    let max = INT::from(u.arbitrary::<u16>().unwrap_or(u16::MAX));
    let chunk = u.arbitrary::<u8>().unwrap_or(0);
    let data = u.take_rest();
    let mut scope = Scope::new();
    scope.push("kind", kind);
    scope.push("prefix", prefix);
    scope.push("max", max);
    scope.push("chunks", chunks(data, chunk));
    scope.push("data", Blob::from(data));
    scope
}

/// Decompression options from the first bytes, then the data.
fn compress_scope(input: &[u8]) -> Scope<'static> {
    // Every window size of each header kind, and a few bad ones.
    const WBITS: [INT; 24] =
        [-15, -12, -9, -8, 8, 9, 12, 15, 16, 24, 25, 31, 32, 40, 47, 48, 0, -16, 15, 31, 47, 15, 31, 47];
    let mut u = Unstructured::new(input);
    let wbits = *u.choose(&WBITS).unwrap_or(&15);
    let max = INT::from(u.arbitrary::<u16>().unwrap_or(u16::MAX)) * 16;
    let chunk = u.arbitrary::<u8>().unwrap_or(0);
    let data = u.take_rest();
    let mut scope = Scope::new();
    scope.push("wbits", wbits);
    scope.push("max", max);
    scope.push("chunks", chunks(data, chunk));
    scope.push("data", Blob::from(data));
    scope
}

/// The input as the blob `data` a client sends, and the directory served
/// under `/s` (this crate's, so `/s/README.md` is a file).
fn http_scope(input: &[u8]) -> Scope<'static> {
    let mut scope = data_scope(input);
    scope.push("dir", env!("CARGO_MANIFEST_DIR"));
    scope
}

/// A CSS selector (which also serves as a base URL and a field value) up
/// to the first NUL byte, the page after it, both UTF-8 (lossily).
fn html_scope(input: &[u8]) -> Scope<'static> {
    let (css, page) = match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&[][..], input),
    };
    let mut scope = Scope::new();
    scope.push("css", String::from_utf8_lossy(css).into_owned());
    scope.push("page", String::from_utf8_lossy(page).into_owned());
    scope
}

/// A record type from the first byte, then the name (UTF-8, lossily).
fn dns_scope(input: &[u8]) -> Scope<'static> {
    const TYPES: [&str; 6] = ["A", "AAAA", "MX", "PTR", "TXT", "SRV"];
    let mut u = Unstructured::new(input);
    let rtype = *u.choose(&TYPES).unwrap_or(&TYPES[0]);
    let mut scope = Scope::new();
    scope.push("rtype", rtype);
    scope.push("name", String::from_utf8_lossy(u.take_rest()).into_owned());
    scope
}

/// A URL `u` up to the first NUL byte and `r` after it (a reference to
/// join, a query string), both UTF-8, lossily.
fn url_scope(input: &[u8]) -> Scope<'static> {
    let (u, r) = match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let mut scope = Scope::new();
    scope.push("u", String::from_utf8_lossy(u).into_owned());
    scope.push("r", String::from_utf8_lossy(r).into_owned());
    scope
}

/// The reply units of `buf` read from the front until one is incomplete or
/// malformed, checking the parser's bounds on each.
fn memcache_frames(buf: &[u8], max_value: usize) -> (Vec<Frame>, usize, Option<Malformed>) {
    let (mut frames, mut at) = (Vec::new(), 0);
    loop {
        match protocol::parse(&buf[at..], max_value) {
            Ok(Some((frame, used))) => {
                assert!(used > 0 && used <= buf.len() - at, "memcache: used {used} of {} bytes", buf.len() - at);
                if let Frame::Value { data, .. } = &frame {
                    assert!(
                        data.len() <= max_value,
                        "memcache: a {}-byte value above the limit {max_value}",
                        data.len()
                    );
                }
                frames.push(frame);
                at += used;
            }
            Ok(None) => return (frames, at, None),
            Err(bad) => return (frames, at, Some(bad)),
        }
    }
}

/// Options from the first bytes (the value limit, a chunk size, the shape
/// of every request's reply), then a reply stream: parsed whole, and fed
/// `chunk` bytes at a time as `memcache::` reads a socket, with the same
/// units and the same error; then the units gathered into replies of that
/// shape as a connection shared by many calls does.
fn memcache_replies(input: &[u8]) {
    let mut u = Unstructured::new(input);
    let max_value = usize::from(u.arbitrary::<u16>().unwrap_or(u16::MAX));
    let chunk = usize::from(u.arbitrary::<u8>().unwrap_or(0)).max(1);
    let shape = u.arbitrary::<u8>().unwrap_or(0);
    let items = usize::from(u.arbitrary::<u8>().unwrap_or(1));
    let count = usize::from(shape & 3) + 1;
    let expect = if shape & 0x80 != 0 { Expect::Lines(count) } else { Expect::Ends { ends: count, items } };
    let data = u.take_rest();
    let whole = memcache_frames(data, max_value);
    let (mut frames, mut buf, mut error) = (Vec::new(), Vec::new(), None);
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        let (more, used, bad) = memcache_frames(&buf, max_value);
        frames.extend(more);
        buf.drain(..used);
        if bad.is_some() {
            error = bad;
            break;
        }
    }
    assert_eq!(whole.0, frames, "memcache: units differ when fed {chunk} bytes at a time");
    assert_eq!(whole.2, error, "memcache: the error differs when fed {chunk} bytes at a time");
    memcache_assembly(expect, frames);
}

/// Gather `frames` into replies of `expect` until one breaks the shape,
/// checking that each reply has that shape and that a unit is refused only
/// when it does not fit.
fn memcache_assembly(expect: Expect, frames: Vec<Frame>) {
    let ends_it = |f: &Frame| matches!(f, Frame::End | Frame::Failure(_));
    let mut reply = Assembly::default();
    let mut pending: Vec<Frame> = Vec::new();
    for frame in frames {
        pending.push(frame.clone());
        match (reply.push(expect, frame), expect) {
            (Ok(None), _) => {}
            (Ok(Some(whole)), _) => {
                assert_eq!(whole, pending, "memcache: a reply is not the units it was given");
                match expect {
                    Expect::Lines(n) => assert_eq!(whole.len(), n, "memcache: a reply of {n} lines"),
                    Expect::Ends { ends, items } => {
                        let ended = whole.iter().filter(|f| ends_it(f)).count();
                        assert!(ends_it(&whole[whole.len() - 1]), "memcache: a reply not ended by an end");
                        assert!(ended == ends && whole.len() - ended <= items, "memcache: a reply of the wrong shape");
                    }
                }
                pending.clear();
            }
            (Err(bad), Expect::Ends { items, .. }) => {
                let last = &pending[pending.len() - 1];
                let item = matches!(last, Frame::Value { .. } | Frame::Stat(..));
                let held = pending.iter().filter(|f| !ends_it(f)).count();
                assert!(!ends_it(last) && (!item || held > items), "memcache: {last:?} refused ({bad}) though it fits");
                return;
            }
            (Err(bad), Expect::Lines(_)) => panic!("memcache: a line refused ({bad})"),
        }
    }
}

/// The input as a fault spec and as a duration (UTF-8, lossily): neither
/// may panic, and a spec that parses prints as a spec that parses to the
/// same print, since `--faults` announces it for the run to be repeated.
fn fault_specs(input: &[u8]) {
    use netscript_stdlib::faults::Spec;
    let text = String::from_utf8_lossy(input);
    let _ = netscript_stdlib::args::parse_duration(&text);
    let Ok(spec) = Spec::parse(&text) else { return };
    let printed = spec.to_string();
    let again =
        Spec::parse(&printed).unwrap_or_else(|e| panic!("faults: {text:?} prints as {printed:?}, which fails: {e}"));
    assert_eq!(again.to_string(), printed, "faults: {text:?} does not read back from its print");
}

/// A peer's bytes, handed out at most `chunk` at a time (then the end).
struct Chunked {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl futures_util::io::AsyncRead for Chunked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let n = self.chunk.min(buf.len()).min(self.data.len() - self.at);
        buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
        self.at += n;
        std::task::Poll::Ready(Ok(n))
    }
}

/// What the decoder makes of `data` read `chunk` bytes at a time, with
/// messages limited to `max` bytes: its units up to the first error (a
/// socket drops the peer there), and that error.
fn zmtp_units(data: &[u8], chunk: usize, max: usize) -> (Vec<String>, Option<String>) {
    use futures_util::Stream;
    use zeromq::__bench::{Message, zmq_framed_read_with_options};
    let mut options = zeromq::SocketOptions::default();
    options.max_message_size(max);
    let reader = Chunked { data: data.to_vec(), at: 0, chunk };
    let mut read = zmq_framed_read_with_options(reader, std::sync::Arc::new(options));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut units = Vec::new();
    loop {
        match std::pin::Pin::new(&mut read).poll_next(&mut cx) {
            std::task::Poll::Ready(Some(Ok(Message::Message(message)))) => {
                let parts = message.into_vec();
                let size: usize = parts.iter().map(|p| p.len()).sum();
                assert!(size <= max, "zmtp: a {size}-byte message above the limit {max}");
                units.push(format!("message {parts:?}"));
            }
            std::task::Poll::Ready(Some(Ok(Message::Command(command)))) => {
                // (Properties in a stable order: they are a hash map.)
                let properties: std::collections::BTreeMap<_, _> = command.properties.into_iter().collect();
                units.push(format!("command {} {properties:?}", command.name));
            }
            std::task::Poll::Ready(Some(Ok(greeting))) => units.push(format!("{greeting:?}")),
            std::task::Poll::Ready(Some(Err(e))) => return (units, Some(format!("{e:?}"))),
            std::task::Poll::Ready(None) => return (units, None),
            std::task::Poll::Pending => panic!("zmtp: the decoder waits with its input all there"),
        }
    }
}

/// A recording read from a file holding the input: any bytes give
/// conversations or an error naming the line, never a panic, and never
/// more payload than the limit. Then `bytes::diff` of the input cut in two
/// (at a place the first byte picks): empty exactly when both are equal.
fn recording_and_diff(input: &[u8]) {
    const MAX: usize = 1 << 16;
    let path = std::env::temp_dir().join(format!("netscript-fuzz-recording-{}", std::process::id()));
    std::fs::write(&path, input).expect("a temporary file");
    if let Ok(conversations) = netscript_stdlib::capture::recording::read(&path, MAX) {
        let payload: usize = conversations.iter().flat_map(|c| &c.messages).map(|m| m.data.len()).sum();
        assert!(payload <= MAX, "recording: {payload} bytes past the limit {MAX}");
        for c in &conversations {
            assert!(
                c.messages.windows(2).all(|w| w[0].from_client != w[1].from_client),
                "recording: one side's chunks not joined"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
    let Some((&cut, rest)) = input.split_first() else { return };
    let (a, b) = rest.split_at(usize::from(cut).min(rest.len()));
    let diff = netscript_stdlib::bytes::diff(a, b);
    assert_eq!(diff.is_empty(), a == b, "diff: {diff:?}");
    let same = netscript_stdlib::bytes::diff(a, a);
    assert!(same.is_empty(), "diff of equal inputs: {same:?}");
}

/// Options from the first bytes (the message size limit, up to 16 MiB as
/// `zmq::` sets it, and a read size), then what a peer sends on a ZMTP
/// connection: decoded read whole and read in chunks, with the same units
/// and the same error. A frame announcing more than the limit (a 2^62-byte
/// one) must be an error before anything is reserved for it: the harness's
/// 4 GiB address space would kill the run otherwise.
fn zmtp_stream(input: &[u8]) {
    let mut u = Unstructured::new(input);
    let max = usize::from(u.arbitrary::<u16>().unwrap_or(u16::MAX)) * 256;
    let chunk = usize::from(u.arbitrary::<u8>().unwrap_or(0)).max(1);
    let data = u.take_rest();
    let whole = zmtp_units(data, data.len().max(1), max);
    let chunked = zmtp_units(data, chunk, max);
    assert_eq!(whole, chunked, "zmtp: read whole and {chunk} bytes at a time differ");
}

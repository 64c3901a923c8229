//! `frame::` and the framing methods of connections against CPython peers on
//! loopback: `struct.pack` length prefixes, netstrings, and HTTP chunked
//! encoding as written and read by `http.client`, in both directions; the
//! blob decoders fed in pieces; oversize, EOF mid-frame and malformed input;
//! and the example scripts built on them.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::util::{cli, eval, eval_limited, python};

/// A process (CPython or netscript) that printed a port on its first line.
struct Peer {
    child: Child,
    port: u16,
    out: BufReader<ChildStdout>,
}

impl Peer {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .current_dir(crate::util::repo_root())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("peer starts");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("peer prints its port");
        let port = line
            .split_whitespace()
            .filter_map(|w| w.rsplit(':').next()?.parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Self { child, port, out }
    }

    /// Stop a peer that serves until interrupted.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the peer to exit successfully; the rest of its output.
    fn finish(mut self) -> String {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).expect("peer output");
        let status = self.child.wait().expect("peer exits");
        assert!(status.success(), "peer failed ({status}); output: {rest}");
        rest
    }
}

/// A CPython server that accepts one connection as `conn` (with
/// `recv_exact(n)` and `recv_all()` helpers) and runs `code`.
fn py_server(code: &str) -> Peer {
    let prelude = r"
import socket, struct, sys, http.client, io
srv = socket.create_server(('127.0.0.1', 0))
srv.settimeout(30)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
conn.settimeout(30)
def recv_exact(n):
    b = b''
    while len(b) < n:
        d = conn.recv(n - len(b))
        if not d:
            raise EOFError(f'{len(b)} of {n}')
        b += d
    return b
def recv_all():
    b = b''
    while True:
        d = conn.recv(65536)
        if not d:
            return b
        b += d
";
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(format!("{prelude}\n{code}"));
    Peer::start(cmd)
}

/// A netscript process running `code` that prints its port first.
fn ns_server(code: &str) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netscript"));
    cmd.args(["run", "-e", code]);
    Peer::start(cmd)
}

/// Evaluate `code` after [`HELPERS`], expecting a string.
fn text(code: &str) -> String {
    eval(&format!("{HELPERS}\n{code}"))
        .unwrap_or_else(|e| panic!("script failed: {e}"))
        .into_string()
        .expect("a string")
}

/// Evaluate `code` after [`HELPERS`], expecting an error (`"kind: message"`).
fn fails(code: &str) -> String {
    match eval(&format!("{HELPERS}\n{code}")) {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

/// Script helpers: `hexes(array)` gives the hex of each blob, comma-separated;
/// `attempt(f)` calls `f` and gives `"kind: message"` of its error.
const HELPERS: &str = r#"
fn hexes(a) { let s = []; for x in a { s.push(hex::encode(x)) } s.reduce(|acc, h| if acc == () { h } else { acc + "," + h }) ?? "" }
fn attempt(f) { try { f.call(); return "no error" } catch (e) { return e.kind + ": " + e.message } }
"#;

/// Test messages: empty, short, binary, and one larger than a socket read.
const MESSAGES_PY: &str = "[b'', b'hello', bytes(range(256)), b'x' * 60000, b'end']";

#[test]
fn recv_frame_from_python_struct_pack_prefixes() {
    for fmt in ["!I", "<H", ">Q", "=I", "B", "<L"] {
        let msgs = if fmt == "B" { "[b'', b'hello', bytes(range(200))]" } else { MESSAGES_PY };
        let py = py_server(&format!(
            "msgs = {msgs}\nfor m in msgs: conn.sendall(struct.pack('{fmt}', len(m)) + m)\nconn.close()\nprint(','.join(m.hex() for m in msgs))"
        ));
        let got = text(&format!(
            r#"            let c = tcp::connect("127.0.0.1", {});
            let frames = [];
            loop {{ let f = c.recv_frame(#{{prefix: "{fmt}"}}); if f == () {{ break }} frames.push(f); }}
            hexes(frames)"#,
            py.port
        ));
        assert_eq!(got, py.finish().trim(), "prefix {fmt}");
    }
}

#[test]
fn send_frame_to_python_struct_unpack() {
    for fmt in ["!I", "<H", ">Q", "=H"] {
        let py = py_server(&format!(
            r"size = struct.calcsize('{fmt}')
out = []
while True:
    head = conn.recv(size, socket.MSG_WAITALL)
    if not head: break
    (n,) = struct.unpack('{fmt}', head)
    out.append(recv_exact(n).hex())
print(','.join(out))"
        ));
        let sent = text(&format!(
            r#"            let c = tcp::connect("127.0.0.1", {});
            let msgs = ["", "hello", blob(300, 7), blob(60000, 0x41)];
            for m in msgs {{ c.send_frame(m, #{{prefix: "{fmt}"}}); }}
            c.close();
            hexes(msgs.map(|m| if type_of(m) == "string" {{ m.to_blob() }} else {{ m }}))"#,
            py.port
        ));
        assert_eq!(py.finish().trim(), sent, "prefix {fmt}");
    }
}

#[test]
fn default_send_frame_round_trips_through_python_echo() {
    let py = py_server(
        "while True:\n    head = conn.recv(4, socket.MSG_WAITALL)\n    if not head: break\n    (n,) = struct.unpack('!I', head)\n    body = recv_exact(n)\n    conn.sendall(struct.pack('!I', n) + body[::-1])\nprint('done')",
    );
    let got = text(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
        let out = "";
        for i in 0..50 {{ c.send_frame(`message ${{i}}`); out += c.recv_frame().as_string() + ";"; }}
        c.close();
        out"#,
        py.port
    ));
    assert_eq!(py.finish().trim(), "done");
    let want: String = (0..50).map(|i| format!("message {i}").chars().rev().collect::<String>() + ";").collect();
    assert_eq!(got, want);
}

#[test]
fn recv_frame_oversize_is_a_frame_error_and_keeps_the_bytes() {
    let py = py_server("conn.sendall(struct.pack('!I', 1000) + b'a' * 1000)\nrecv_all()\nprint('ok')");
    let got = text(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
        let msg = attempt(|| c.recv_frame(#{{max: 100}}));
        let f = c.recv_frame(#{{max: 1000}});
        c.close();
        msg + " | " + f.len()"#,
        py.port
    ));
    assert_eq!(py.finish().trim(), "ok");
    assert!(got.starts_with("frame: recv_frame 127.0.0.1:"), "{got}");
    assert!(got.contains("1000 bytes exceeds the maximum of 100"), "{got}");
    assert!(got.ends_with(" | 1000"), "{got}");
}

#[test]
fn eof_mid_frame_reports_how_much_arrived() {
    let py = py_server("conn.sendall(struct.pack('!I', 10) + b'abcd')\nconn.close()\nprint(4 + 4, 4 + 10)");
    let got = text(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
        let msg = attempt(|| c.recv_frame());
        msg + " | " + c.recv(100).len()"#,
        py.port
    ));
    let oracle = py.finish();
    let (have, total) = oracle.trim().split_once(' ').expect("two numbers");
    assert!(got.starts_with("frame: "), "{got}");
    assert!(got.contains(&format!("after {have} of {total} bytes")), "{got}");
    assert!(got.ends_with(&format!(" | {have}")), "{got}");
}

#[test]
fn clean_eof_gives_unit_and_short_prefix_is_an_error() {
    let py = py_server("conn.close()");
    assert_eq!(text(&format!(r#"let c = tcp::connect("127.0.0.1", {}); type_of(c.recv_frame())"#, py.port)), "()");
    py.finish();
    let py = py_server("conn.sendall(b'\\x00\\x00')\nconn.close()");
    let err = fails(&format!(r#"let c = tcp::connect("127.0.0.1", {}); c.recv_frame()"#, py.port));
    py.finish();
    assert!(err.starts_with("frame: ") && err.contains("after 2 bytes"), "{err}");
}

#[test]
fn send_frame_oversize_is_a_frame_error() {
    let py = py_server("print(len(recv_all()))");
    let got = text(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
        let a = attempt(|| c.send_frame(blob(300), #{{prefix: ">B"}}));
        let b = attempt(|| c.send_frame(blob(300), #{{max: 299}}));
        c.close();
        a + " | " + b"#,
        py.port
    ));
    assert_eq!(py.finish().trim(), "0", "nothing may be sent");
    assert!(
        got.contains("frame: send_frame") && got.contains("300 bytes does not fit a 1-byte length prefix"),
        "{got}"
    );
    assert!(got.contains("300 bytes exceeds the maximum of 299"), "{got}");
}

#[test]
fn bad_prefix_format_is_a_value_error() {
    for bad in ["!i", "I!", "!", "xI", "!II", "!f"] {
        let err = fails(&format!(r#"frame::encode_length("x", #{{prefix: "{bad}"}})"#));
        assert!(err.starts_with("value: frame::encode_length") && err.contains("prefix"), "{bad}: {err}");
    }
}

#[test]
fn netstrings_both_ways_with_python() {
    // Python writes netstrings by hand; netscript reads them.
    let py = py_server(&format!(
        "msgs = {MESSAGES_PY}\nfor m in msgs: conn.sendall(str(len(m)).encode() + b':' + m + b',')\nconn.close()\nprint(','.join(m.hex() for m in msgs))"
    ));
    let got = text(&format!(
        r#"        let c = tcp::connect("127.0.0.1", {});
        let out = [];
        loop {{ let s = c.recv_netstring(); if s == () {{ break }} out.push(s); }}
        hexes(out)"#,
        py.port
    ));
    assert_eq!(got, py.finish().trim());

    // netscript writes; Python parses.
    let py = py_server(
        r"data = recv_all()
out = []
while data:
    n, _, rest = data.partition(b':')
    n = int(n)
    assert rest[n:n+1] == b','
    out.append(rest[:n].hex())
    data = rest[n+1:]
print(','.join(out))",
    );
    let sent = text(&format!(
        r#"        let c = tcp::connect("127.0.0.1", {});
        let msgs = [blob(0), "hello".to_blob(), blob(70000, 0x2c)];
        for m in msgs {{ c.send_netstring(m); }}
        c.close();
        hexes(msgs)"#,
        py.port
    ));
    assert_eq!(py.finish().trim(), sent);
}

#[test]
fn malformed_netstrings_are_frame_errors() {
    for (wire, needle) in [
        ("5:hello!", "expected ',' after 5 bytes"),
        ("x:hello,", "expected a decimal length"),
        ("05:hello,", "leading zero"),
        ("99999999999999999999999:", "too many digits"),
        ("2000:", "exceeds the maximum of 1000"),
    ] {
        let py = py_server(&format!("conn.sendall({wire:?}.encode())\nrecv_all()"));
        let err =
            fails(&format!(r#"let c = tcp::connect("127.0.0.1", {}); c.recv_netstring(#{{max: 1000}})"#, py.port));
        py.finish();
        assert!(err.starts_with("frame: recv_netstring") && err.contains(needle), "{wire}: {err}");
    }
}

#[test]
fn chunked_request_from_http_client_and_chunked_reply_read_by_it() {
    // Python's http.client encodes the request body; netscript decodes it,
    // answers with its own chunked encoding, which http.client decodes.
    let ns = ns_server(
        r#"let l = tcp::listen("127.0.0.1", 0);
        print(l.port);
        let c = l.accept();
        let head = c.recv_until("\r\n\r\n").as_string();
        let body = c.recv_chunked();
        print(hex::encode(body));
        c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
        c.send_chunked(body, #{size: 3, last: false});
        c.send_chunked("!");
        c.close();"#,
    );
    let reply = python(&format!(
        r"import http.client
c = http.client.HTTPConnection('127.0.0.1', {})
parts = [b'hello ', b'', b'chunked ', bytes(range(256)), b'world']
c.request('POST', '/', body=iter(parts), encode_chunked=True)
r = c.getresponse()
print(b''.join(parts).hex())
print(r.read().hex())",
        ns.port
    ));
    let seen = ns.finish();
    let mut lines = reply.lines();
    let sent = lines.next().expect("sent body");
    assert_eq!(seen.trim(), sent, "netscript decoded what http.client encoded");
    assert_eq!(lines.next().expect("reply"), format!("{sent}21"), "http.client decoded what netscript encoded");
}

#[test]
fn chunked_with_extensions_and_trailers_from_python() {
    let py = py_server(
        r"body = b'first' + b'-' * 300 + b'last'
conn.sendall(b'5;name=val\r\nfirst\r\n12C\r\n' + b'-' * 300 + b'\r\n4 \r\nlast\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\nNEXT')
conn.close()
print(body.hex())",
    );
    let got = text(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
        let body = c.recv_chunked();
        hex::encode(body) + " " + c.recv_all().as_string()"#,
        py.port
    ));
    assert_eq!(got, format!("{} NEXT", py.finish().trim()));
}

#[test]
fn malformed_and_oversize_chunks_are_frame_errors() {
    for (wire, needle) in [
        (r"zz\r\nhello\r\n0\r\n\r\n", "malformed chunk-size line \"zz\""),
        (r"5\r\nhelloXX0\r\n\r\n", "chunk of 5 bytes is not followed by CRLF"),
        (r"400\r\n", "chunked body of 1024 bytes exceeds the maximum of 1000"),
        (r"3\r\nabc\r\n", "stream ended inside a chunked body after 8 bytes"),
    ] {
        let py = py_server(&format!("conn.sendall(b'{wire}')\nconn.close()"));
        let err = fails(&format!(r#"let c = tcp::connect("127.0.0.1", {}); c.recv_chunked(#{{max: 1000}})"#, py.port));
        py.finish();
        assert!(err.starts_with("frame: recv_chunked") && err.contains(needle), "{wire}: {err}");
    }
}

/// Python builds a stream of frames; the script feeds it to a decoder in
/// pieces of several sizes and must get the same frames back.
fn decoder_matches_python(kind_opts: &str, py_encode: &str) {
    let out = python(&format!(
        "import struct\nmsgs = [b'', b'hello', bytes(range(256)), b'x' * 5000, b'end']\nenc = {py_encode}\nprint(b''.join(enc(m) for m in msgs).hex())\nprint(','.join(m.hex() for m in msgs))"
    ));
    let (stream, want) = out.trim().split_once('\n').expect("two lines");
    for piece in [1, 3, 7, 64, 100_000] {
        let got = text(&format!(
            r#"            let data = hex::decode("{stream}");
            let d = frame::decoder({kind_opts});
            let frames = [];
            let i = 0;
            while i < data.len() {{ frames += d.feed(data.extract(i, {piece})); i += {piece}; }}
            d.eof();
            hexes(frames)"#
        ));
        assert_eq!(got, want, "{kind_opts} in pieces of {piece}");
    }
}

#[test]
fn length_decoder_matches_python_struct() {
    decoder_matches_python(r#""length""#, "lambda m: struct.pack('!I', len(m)) + m");
    decoder_matches_python(r#""length", #{prefix: "<Q"}"#, "lambda m: struct.pack('<Q', len(m)) + m");
}

#[test]
fn netstring_decoder_matches_python() {
    decoder_matches_python(r#""netstring""#, "lambda m: str(len(m)).encode() + b':' + m + b','");
}

#[test]
fn chunked_decoder_matches_python() {
    // One body: each message a chunk (the empty one is left out, as a
    // zero-size chunk ends the body), then the next message on the wire.
    let out = python(
        "msgs = [b'hello', bytes(range(256)), b'x' * 5000, b'end']\nbody = b''.join(b'%x;ext=1\\r\\n%s\\r\\n' % (len(m), m) for m in msgs) + b'0\\r\\nX-Trailer: 1\\r\\n\\r\\nNEXT'\nprint(body.hex())\nprint(b''.join(msgs).hex())",
    );
    let (stream, want) = out.trim().split_once('\n').expect("two lines");
    for piece in [1, 3, 7, 64, 100_000] {
        let got = text(&format!(
            r#"let data = hex::decode("{stream}");
            let d = frame::decoder("chunked");
            let frames = [];
            let i = 0;
            while i < data.len() {{ frames += d.feed(data.extract(i, {piece})); i += {piece}; }}
            d.eof();
            `${{frames.len()}} ${{d.done}} ${{hexes(frames)}} ${{d.take().as_string()}}`"#
        ));
        assert_eq!(got, format!("1 true {want} NEXT"), "pieces of {piece}");
    }
}

#[test]
fn encoders_match_python() {
    let want = python(
        "import struct\nm = bytes(range(40))\nprint(struct.pack('!I', 40).hex() + m.hex(), struct.pack('<H', 40).hex() + m.hex(), (b'40:' + m + b',').hex(), (b'28\\r\\n' + m + b'\\r\\n0\\r\\n\\r\\n').hex())",
    );
    let got = text(
        r#"let m = blob(40); for i in 0..40 { m[i] = i }
        hex::encode(frame::encode_length(m)) + " " + hex::encode(frame::encode_length(m, #{prefix: "<H"})) + " "
            + hex::encode(frame::encode_netstring(m)) + " " + hex::encode(frame::encode_chunked(m))"#,
    );
    assert_eq!(got, want.trim());
}

#[test]
fn line_decoder_and_split_lines() {
    let got = text(
        r#"let d = frame::decoder("line", #{max: 10});
        let a = d.feed("one\r\ntw");
        let b = d.feed("o\nthree");
        let pending = d.pending;
        let e = attempt(|| d.eof()).split(":")[0];
        let long = attempt(|| d.feed("0123456789abc"));
        let s = frame::split_lines("a\r\nb\n\nrest");
        let t = frame::split_lines("x\n");
        `${a.len()} ${a[0].as_string()} ${b[0].as_string()} ${pending} ${e} | ${long} | ${s.len()} ${s[3].as_string()} ${t.len()}`"#,
    );
    // Python's own splitlines() agrees on the split_lines cases.
    let py = python(
        "print(len(b'a\\r\\nb\\n\\nrest'.splitlines()), b'a\\r\\nb\\n\\nrest'.splitlines()[3].decode(), len(b'x\\n'.splitlines()))",
    );
    let (left, right) = got.split_once(" | ").expect("parts");
    assert_eq!(left, "1 one two 5 frame");
    assert!(right.starts_with("frame: decoder.feed: no end of line within 10 bytes"), "{right}");
    assert!(got.ends_with(&format!(" | {}", py.trim())), "{got} vs {py}");
}

#[test]
fn decoder_errors_keep_earlier_frames_buffered() {
    let got = text(
        r#"let d = frame::decoder("netstring");
        let err = attempt(|| d.feed("1:a,1:b,x:")).split(":")[0];
        let rest = d.take().as_string();
        `${err} ${rest} ${d.pending}`"#,
    );
    assert_eq!(got, "frame 1:a,1:b,x: 0");
    let err =
        fails(r#"let d = frame::decoder("length"); d.feed(frame::encode_length("hello").extract(0, 6)); d.eof()"#);
    assert!(err.starts_with("frame: decoder.eof") && err.contains("after 6 of 9 bytes"), "{err}");
    let err = fails(r#"frame::decoder("bogus")"#);
    assert!(err.starts_with("value: frame::decoder") && err.contains("unknown framing"), "{err}");
}

#[test]
fn json_server_and_client_scripts_agree_with_a_python_client() {
    let (status, standalone, stderr) = cli(&["run", "scripts/json_client.rhai"]);
    assert_eq!(status, 0, "{stderr}");
    let server = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_netscript"));
        cmd.args(["run", "scripts/json_server.rhai", "0"]);
        Peer::start(cmd)
    };
    let port = server.port.to_string();
    let (status, against_server, stderr) = cli(&["run", "scripts/json_client.rhai", &port]);
    assert_eq!(status, 0, "{stderr}");
    // A Python client replays each request line printed by the script and
    // prints what the server answers, in the script's format.
    let replay = python(&format!(
        r"import json, socket, struct
lines = {standalone:?}.splitlines()
s = socket.create_connection(('127.0.0.1', {port}))
def recv_exact(n):
    b = b''
    while len(b) < n:
        b += s.recv(n - len(b))
    return b
for line in lines:
    req, _, _ = line.partition(' -> ')
    data = req.encode()
    s.sendall(struct.pack('!I', len(data)) + data)
    (n,) = struct.unpack('!I', recv_exact(4))
    print(req + ' -> ' + recv_exact(n).decode())"
    ));
    server.kill();
    assert!(standalone.lines().count() >= 4, "{standalone}");
    assert_eq!(standalone, against_server);
    assert_eq!(standalone.trim(), replay.trim());
}

#[test]
fn zlib_stream_script_matches_python_zlib() {
    let (status, out, stderr) = cli(&["run", "scripts/zlib_stream.rhai", "--hex"]);
    assert_eq!(status, 0, "{stderr}");
    // The script prints the original size, the CRC-32 it read from the
    // trailer, and the one it computed; Python's zlib.crc32 of the same
    // text (printed by the script as hex) must agree.
    let mut fields = std::collections::HashMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(": ") {
            fields.insert(k.to_string(), v.to_string());
        }
    }
    let crc = python(&format!("import zlib\nprint(zlib.crc32(bytes.fromhex('{}')))", fields["sample"]));
    assert_eq!(fields["trailer crc32"], crc.trim(), "{out}");
    assert_eq!(fields["computed crc32"], crc.trim(), "{out}");
    assert_eq!(fields["after trailer"], "DONE", "{out}");
}

#[test]
fn records_script_matches_python_struct() {
    let (status, out, stderr) = cli(&["run", "scripts/records.rhai"]);
    assert_eq!(status, 0, "{stderr}");
    // The script prints the record file as hex first, then one line per
    // record; Python's struct.iter_unpack decodes the same file.
    let mut lines = out.lines();
    let file = lines.next().expect("file hex").trim_start_matches("file: ");
    let rest: Vec<&str> = lines.collect();
    let want = python(&format!(
        r"import struct
data = bytes.fromhex('{file}')
(count,) = struct.unpack_from('!H', data)
for rid, temp, flags, name in struct.iter_unpack('!IhB8s', data[2:2 + count * 15]):
    print(f'record {{rid}}: temp={{temp / 10}} flags={{flags:#04x}} name={{name.rstrip(bytes(1)).decode()}}')"
    ));
    assert_eq!(rest.join("\n"), want.trim_end(), "{out}");
}

/// A declared length beyond the blob limit (but within `max`) is refused
/// when the prefix arrives, before any of the body is buffered.
#[test]
fn declared_frame_lengths_beyond_the_blob_limit_are_limit_errors() {
    let py = py_server(
        "conn.sendall(struct.pack('!I', 1 << 20) + b'a' * 100)\n\
         conn.sendall(b'1048576:' + b'a' * 100)\n\
         recv_all()\nprint('ok')",
    );
    let code = format!(
        r#"{HELPERS}
        let c = tcp::connect("127.0.0.1", {});
        let framed = attempt(|| c.recv_frame(#{{max: 1 << 30}}));
        let kept = hex::encode(c.recv_exact(4));
        c.close();
        let d = frame::decoder("netstring", #{{max: 1 << 30}});
        let netstring = attempt(|| d.feed("1048576:abc"));
        let d = frame::decoder("chunked", #{{max: 1 << 30}});
        let chunked = attempt(|| d.feed("100000\r\nabc"));
        [framed, kept, netstring, chunked]"#,
        py.port
    );
    let got = eval_limited(&code, 4096).unwrap_or_else(|e| panic!("script failed: {e}"));
    let got: Vec<String> = got.into_array().expect("array").into_iter().map(|v| v.to_string()).collect();
    assert_eq!(py.finish().trim(), "ok");
    assert!(got[0].starts_with("limit: recv_frame"), "{got:?}");
    assert!(got[0].contains("1048576 bytes exceeds the limit of 4096"), "{got:?}");
    // Nothing was consumed: the prefix is still there to read.
    assert_eq!(got[1], "00100000", "{got:?}");
    assert!(got[2].starts_with("limit: ") && got[2].contains("1048576 bytes"), "{got:?}");
    assert!(got[3].starts_with("limit: ") && got[3].contains("1048576 bytes"), "{got:?}");
}

/// `recv_exact(n)` beyond the blob limit fails at once, without waiting
/// for (or buffering) the peer's bytes.
#[test]
fn recv_exact_beyond_the_blob_limit_is_a_limit_error() {
    let py = py_server("conn.sendall(b'abc')\nrecv_all()\nprint('ok')");
    let code = format!(
        r#"{HELPERS}
        let c = tcp::connect("127.0.0.1", {});
        let big = attempt(|| c.recv_exact(100000));
        let small = c.recv_exact(3).as_string();
        c.close();
        big + " | " + small"#,
        py.port
    );
    let got = eval_limited(&code, 4096).unwrap_or_else(|e| panic!("script failed: {e}")).to_string();
    assert_eq!(py.finish().trim(), "ok");
    assert!(got.starts_with("limit: recv_exact"), "{got}");
    assert!(got.ends_with(" | abc"), "{got}");
}

//! Record and replay against real peers: a session with aiosmtpd, nginx or
//! memcached recorded with `--record`, its server side replayed by
//! `mock::replay` to the same client code (same results; a changed client
//! gets a diff), and the recording proxy (`netscript record`) with
//! `netscript replay` playing either side.

use crate::http_client::Nginx;
use crate::mail::SmtpSink;
use crate::memcache::Memcached;
use crate::util::{Peer, cli};

/// A scratch directory for one test's scripts and recordings.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-replay-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Record `client` (Rhai that talks to `host`:`port` and prints what it
/// got) against the real server at `port`, then run it against
/// `mock::replay` of the recording (with `replay_opts`, a Rhai map), and
/// run `changed` (another client) against a replay too. Returns the
/// recorded run's output, the replayed run's (status, stdout, stderr), and
/// the changed run's.
type Run = (i32, String, String);
fn record_and_replay(tag: &str, port: u16, client: &str, replay_opts: &str, changed: &str) -> (String, Run, Run) {
    let dir = scratch(tag);
    let rec = dir.join("session.jsonl");
    let rec = rec.to_str().unwrap();
    let live = dir.join("live.rhai");
    std::fs::write(&live, format!("let host = \"127.0.0.1\";\nlet port = parse_int(ARGS[0]);\n{client}")).unwrap();
    let (status, recorded, err) = cli(&["run", "--record", rec, live.to_str().unwrap(), &port.to_string()]);
    assert_eq!(status, 0, "recording run: {err}");
    let against_replay = |code: &str, name: &str| {
        let file = dir.join(name);
        std::fs::write(
            &file,
            format!(
                "import \"mock\" as mock;\nlet m = mock::replay(ARGS[0], {replay_opts});\nlet host = m.host;\nlet port = m.port;\n\
                 try {{\n{code}\n}} catch (e) {{ print(`client: ${{e.kind}}`); }}\nmock::verify(m);\n"
            ),
        )
        .unwrap();
        cli(&["run", file.to_str().unwrap(), rec])
    };
    let replayed = against_replay(client, "replayed.rhai");
    let changed = against_replay(changed, "changed.rhai");
    let _ = std::fs::remove_dir_all(&dir);
    (recorded, replayed, changed)
}

const SMTP_CLIENT: &str = r#"
import "smtp" as smtp;
let s = smtp::connect(host, port);
let refused = smtp::sendmail(s, "alice@x.test", ["bob@x.test", "reject@x.test"],
    smtp::message("alice@x.test", "bob@x.test", "recorded", "hello, replay\r\n"));
print(`${s.esmtp} ${s.features.keys().len() > 0} refused ${refused.keys()}`);
smtp::quit(s);
"#;

#[test]
fn an_smtp_delivery_replays_to_the_same_client_and_a_changed_one_gets_a_diff() {
    let sink = SmtpSink::start("replay");
    let changed = SMTP_CLIENT.replace("\"alice@x.test\", [", "\"carol@x.test\", [");
    let (recorded, (ok, replayed, why), (status, out, err)) =
        record_and_replay("smtp", sink.port, SMTP_CLIENT, "#{}", &changed);
    assert_eq!(ok, 0, "replayed run: {replayed}{why}");
    assert_eq!(recorded.trim(), "true true refused [\"reject@x.test\"]");
    assert_eq!(replayed, recorded, "the replayed server answers as aiosmtpd did");
    assert_eq!(sink.messages().len(), 1, "only the recording run reached the real server");
    assert_eq!(status, 1, "verify fails for the changed client: {out}{err}");
    assert!(out.contains("client: closed") || out.contains("client: reset"), "{out}");
    assert!(err.contains("differs at byte 11"), "{err}");
    assert!(err.contains("- line 1: \"MAIL FROM:<alice@x.test>"), "{err}");
    assert!(err.contains("+ line 1: \"MAIL FROM:<carol@x.test>"), "{err}");
}

const HTTP_CLIENT: &str = r#"
let a = http::get(`http://${host}:${port}/small.txt`);
let b = http::get(`http://${host}:${port}/sub/`);
print(`${a.status} ${a.headers["Content-Type"]} ${a.text()}| ${b.status} ${b.text()}`);
"#;

/// The matcher for requests whose `Host` header names the port asked:
/// equal but for that line.
const HOST_MATCHER: &str = r#"#{ matcher: |want, got| {
    let strip = |b| { let s = b.as_string(); let i = s.index_of("host: "); if i < 0 { s } else { s.sub_string(0, i) + s.sub_string(s.index_of("\r\n", i)) } };
    strip.call(want) == strip.call(got)
} }"#;

#[test]
fn an_http_exchange_with_nginx_replays_with_a_matcher_for_the_host_header() {
    let ng = Nginx::start();
    let changed = HTTP_CLIENT.replace("/sub/", "/other/");
    let (recorded, (ok, replayed, why), (status, out, err)) =
        record_and_replay("http", ng.port, HTTP_CLIENT, HOST_MATCHER, &changed);
    assert_eq!(ok, 0, "replayed run: {replayed}{why}");
    assert_eq!(recorded.trim(), "200 text/plain hello from nginx\n| 200 <p>index</p>");
    assert_eq!(replayed, recorded, "nginx's answers, replayed");
    assert_eq!(status, 1, "{out}{err}");
    assert!(err.contains("- line 1: \"GET /sub/ HTTP/1.1\\r\\n\""), "{err}");
    assert!(err.contains("+ line 1: \"GET /other/ HTTP/1.1\\r\\n\""), "{err}");
    // Without the matcher the Host header (another port) is a mismatch.
    let (_, (status, _, err), _) = record_and_replay("http-exact", ng.port, HTTP_CLIENT, "#{}", HTTP_CLIENT);
    assert_eq!(status, 1);
    assert!(err.contains("+ line 2: \"host: 127.0.0.1:"), "{err}");
}

const MEMCACHE_CLIENT: &str = r#"
let mc = memcache::client([`${host}:${port}`]);
mc.set("greeting", "hello");
mc.set("count", "41");
let n = mc.incr("count", 1);
print(`${mc.get("greeting")} ${n} ${mc.get("missing")} ${mc.delete("greeting")} ${mc.get("greeting")}`);
"#;

#[test]
fn a_memcached_session_replays_to_the_same_client() {
    let server = Memcached::start();
    let port: u16 = server.addr().rsplit(':').next().unwrap().parse().unwrap();
    let changed = MEMCACHE_CLIENT.replace("mc.set(\"count\", \"41\")", "mc.set(\"count\", \"40\")");
    let (recorded, (ok, replayed, why), (status, _, err)) =
        record_and_replay("memcache", port, MEMCACHE_CLIENT, "#{}", &changed);
    assert_eq!(ok, 0, "replayed run: {replayed}{why}");
    assert_eq!(recorded.trim(), "hello 42  true");
    assert_eq!(replayed, recorded);
    assert_eq!(status, 1);
    assert!(err.contains("- line 2: \"41\\r\\n\"") && err.contains("+ line 2: \"40\\r\\n\""), "{err}");
}

/// A Python line server: each line back in capitals (`LOWER=1`: as sent).
const PY_UPPER: &str = r#"
import os, socketserver
class H(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line if os.environ.get("LOWER") else line.upper())
s = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// A Python client: sends two lines on one connection, prints the replies.
const PY_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = c.makefile("rb")
for line in (b"hello\n", b"replay me\n"):
    c.sendall(line)
    sys.stdout.write(f.readline().decode())
"#;

fn py_client(port: u16) -> String {
    let out = std::process::Command::new("python3").args(["-c", PY_CLIENT, &port.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_recording_proxy_and_netscript_replay_play_either_side() {
    let dir = scratch("proxy");
    let rec = dir.join("proxy.jsonl");
    let rec_s = rec.to_str().unwrap();
    let server = Peer::start(PY_UPPER);
    let to = format!("127.0.0.1:{}", server.port);
    let proxy = Peer::netscript(&["record", "--listen", "0", "--to", &to, "--out", rec_s]);
    assert!(proxy.line.contains(&format!("recording to {rec_s}")), "{}", proxy.line);
    assert_eq!(py_client(proxy.port), "HELLO\nREPLAY ME\n");
    // The conversation is in the file once it has ended.
    let mut lines = 0;
    for _ in 0..100 {
        lines = std::fs::read_to_string(&rec).unwrap_or_default().lines().count();
        if lines >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(lines, 4, "two lines each way");
    let first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&rec).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(
        (first["role"].as_str(), first["dir"].as_str(), first["text"].as_str()),
        (Some("client"), Some("send"), Some("hello\n"))
    );
    drop(proxy);
    drop(server);

    // The server side, to a new client: the same replies without the server.
    let replayer = Peer::netscript(&["replay", rec_s, "--listen", "0"]);
    assert!(replayer.line.starts_with("replaying 1 conversation(s)"), "{}", replayer.line);
    assert_eq!(py_client(replayer.port), "HELLO\nREPLAY ME\n");
    drop(replayer);

    // The client side, against a new server build: as recorded, or a diff.
    let server = Peer::start(PY_UPPER);
    let (status, out, err) = cli(&["replay", rec_s, "--to", &format!("127.0.0.1:{}", server.port)]);
    assert_eq!(status, 0, "{out}{err}");
    assert!(out.contains("1 conversation(s)") && out.contains("as recorded"), "{out}");
    let mut lower = std::process::Command::new("python3");
    lower.args(["-u", "-c", PY_UPPER]).env("LOWER", "1").stdout(std::process::Stdio::piped());
    let (mut child, line) = {
        let mut child = lower.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        (child, line)
    };
    let (status, _, err) = cli(&["replay", rec_s, "--to", &format!("127.0.0.1:{}", line.trim())]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 1, "{err}");
    assert!(
        err.contains("message 2 (from the server)")
            && err.contains("- line 1: \"HELLO\\n\"")
            && err.contains("+ line 1: \"hello\\n\""),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_recording_proxy_ends_tls_on_both_sides_and_records_the_plaintext() {
    let ng = Nginx::start();
    let pki = crate::tls::pki();
    let dir = scratch("tls-proxy");
    let rec = dir.join("tls.jsonl");
    let rec_s = rec.to_str().unwrap();
    let to = format!("127.0.0.1:{}", ng.tls_port);
    let (cert, key, ca) = (pki.path("leaf.pem"), pki.path("leaf.key"), pki.path("ca.pem"));
    let proxy = Peer::netscript(&[
        "record",
        "--listen",
        "0",
        "--to",
        &to,
        "--out",
        rec_s,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--to-tls",
        "--ca",
        &ca,
        "--server-name",
        "localhost",
    ]);
    let url = format!("https://localhost:{}/small.txt", proxy.port);
    let got = std::process::Command::new("curl")
        .args(["-s", "--http1.1", "--cacert", &ca, "--resolve", &format!("localhost:{}:127.0.0.1", proxy.port), &url])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "hello from nginx\n", "{}", String::from_utf8_lossy(&got.stderr));
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&rec).unwrap_or_default();
        if text.contains("hello from nginx") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let said =
        |dir: &str| -> String { lines.iter().filter(|l| l["dir"] == dir).filter_map(|l| l["text"].as_str()).collect() };
    assert!(said("send").starts_with("GET /small.txt HTTP/1.1\r\n"), "the client's request, in plaintext: {text}");
    assert!(said("recv").starts_with("HTTP/1.1 200 OK\r\n") && said("recv").ends_with("hello from nginx\n"), "{text}");
    // A server certificate the proxy cannot verify is refused, and said so.
    drop(proxy);
    let strict = Peer::netscript(&["proxy", "--listen", "0", "--to", &to, "--to-tls"]);
    let plain = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://127.0.0.1:{}/small.txt", strict.port)])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000", "no answer through an unverified server");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn original_timing_keeps_the_recorded_pauses_and_fast_drops_them() {
    let dir = scratch("timing");
    let rec = dir.join("slow.jsonl");
    // A server that answered 0.6 s after the question, written as a recording.
    let line = |t: f64, dir: &str, text: &str| {
        format!(
            r#"{{"time":{t},"proto":"tcp","conn":1,"role":"client","local":"127.0.0.1:5000","peer":"127.0.0.1:7000","dir":"{dir}","text":{text:?}}}"#
        )
    };
    std::fs::write(&rec, [line(100.0, "send", "ping\n"), line(100.6, "recv", "pong\n")].join("\n")).unwrap();
    let code = r#"
import "mock" as mock;
let m = mock::replay(ARGS[0], #{timing: ARGS[1]});
let c = tcp::connect(m.host, m.port);
let t0 = timestamp();
c.send("ping\n");
let got = c.recv_line();
print(`${got} ${t0.elapsed}`);
mock::verify(m);
"#;
    let waited = |timing: &str| -> f64 {
        let (status, out, err) = cli(&["run", "-e", code, rec.to_str().unwrap(), timing]);
        assert_eq!(status, 0, "{err}");
        let (got, secs) = out.trim().split_once(' ').unwrap();
        assert_eq!(got, "pong");
        secs.parse().unwrap()
    };
    let original = waited("original");
    assert!((0.55..2.0).contains(&original), "the recorded 0.6 s pause: {original}");
    let fast = waited("fast");
    assert!(fast < 0.3, "as fast as possible: {fast}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! Fault injection. `netscript proxy --faults`: a deliberately naive
//! parser (one `recv` is one message) breaks under `fragment` while every
//! framer of `frame::` and the connection's own line and exact reads do
//! not; latency and a bandwidth cap measured by a real (Python) client;
//! streams cut after N bytes with a FIN or a RST. In scripts (`--faults`
//! on `run` and `test`, `net::faults`, the `faults` option): the same
//! parsers meet the same faults in the script's own connections, and the
//! test runner shows which tests assume one `recv` is one message.

use crate::util::{Peer, cli};

/// The netscript peer: on each connection, a first line says what to send.
/// `naive`: for each `next` line, one 40-byte line. `frames`: 20 rounds of
/// one message in every framing.
const SERVER: &str = r#"
let server = tcp::listen("127.0.0.1", 0).serve(|c| {
    let mode = c.recv_line();
    if mode == "naive" {
        loop {
            let l = c.recv_line();
            if l == () { break }
            c.send_line("0123456789012345678901234567890123456789");
        }
    } else {
        for i in 0..20 {
            let m = `message ${i} of twenty, with some padding`;
            c.send_frame(m);
            c.send_netstring(m);
            c.send_line(m);
            c.send_chunked(m, #{ size: 9 });
            c.send(m.sub_string(0, 16));
        }
    }
});
print(`server on 127.0.0.1:${server.port}`);
server.wait();
"#;

fn proxy(to: u16, faults: &str) -> Peer {
    Peer::netscript(&["proxy", "--listen", "0", "--to", &format!("127.0.0.1:{to}"), "--faults", faults])
}

/// Run `client` (a script reading from the port in ARGS[0]); its output.
fn client(port: u16, code: &str) -> (i32, String, String) {
    cli(&["run", "-e", code, &port.to_string()])
}

const NAIVE: &str = r#"
let c = tcp::connect("127.0.0.1", parse_int(ARGS[0]), #{ timeout: 5 });
c.send_line("naive");
let whole = 0;
for i in 0..20 {
    c.send_line("next");
    let got = c.recv(4096);           // the bug: one recv is not one message
    if got.len() == 41 { whole += 1 }
    while got.len() < 41 { got += c.recv(4096); }
}
print(`whole ${whole}`);
"#;

const FRAMERS: &str = r#"
let c = tcp::connect("127.0.0.1", parse_int(ARGS[0]), #{ timeout: 5 });
c.send_line("frames");
let ok = 0;
for i in 0..20 {
    let m = `message ${i} of twenty, with some padding`;
    if c.recv_frame().as_string() == m { ok += 1 }
    if c.recv_netstring().as_string() == m { ok += 1 }
    if c.recv_line() == m { ok += 1 }
    if c.recv_chunked().as_string() == m { ok += 1 }
    if c.recv_exact(16).as_string() == m.sub_string(0, 16) { ok += 1 }
}
print(`ok ${ok}`);
"#;

#[test]
fn fragmenting_exposes_a_naive_parser_and_not_the_framers() {
    let server = Peer::netscript(&["run", "-e", SERVER]);
    // Straight to the server, the naive reads happen to work on loopback.
    let (status, out, err) = client(server.port, NAIVE);
    assert_eq!((status, out.trim()), (0, "whole 20"), "{err}");
    for (max, seed) in [(1, 1), (3, 2), (7, 3)] {
        let p = proxy(server.port, &format!("fragment=1..{max},fragment_pause=1ms,seed={seed}"));
        assert!(p.line.contains(&format!("seed {seed}")), "the seed is printed: {}", p.line);
        let (status, out, err) = client(p.port, NAIVE);
        assert_eq!(status, 0, "{err}");
        let whole: u32 = out.trim().trim_start_matches("whole ").parse().expect(&out);
        assert!(whole < 5, "fragments of 1..{max} bytes still gave {whole} whole messages to one recv");
        let (status, out, err) = client(p.port, FRAMERS);
        assert_eq!((status, out.trim()), (0, "ok 100"), "framers under fragment=1..{max}: {err}");
    }
}

/// A Python client through `port`: the time of a 100-byte round trip, and
/// of reading a 300 kB answer to the end.
const PY_CLIENT: &str = r#"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
t0 = time.monotonic()
s.sendall(b"x" * 99 + b"\n")
got = b""
while len(got) < 100:
    got += s.recv(4096)
rtt = time.monotonic() - t0
s.sendall(b"big\n")
t0 = time.monotonic()
n = 0
while n < 300000:
    d = s.recv(65536)
    if not d:
        break
    n += len(d)
print(f"{rtt:.4f} {time.monotonic() - t0:.4f} {n}")
"#;

/// A Python server: echoes the first line, then sends 300 kB for `big`.
const PY_SERVER: &str = r#"
import socket, threading
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
print(ls.getsockname()[1], flush=True)
def serve(c):
    f = c.makefile("rb")
    c.sendall(f.readline())
    f.readline()
    c.sendall(b"y" * 300000)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn measure(port: u16) -> (f64, f64, usize) {
    let out =
        std::process::Command::new("python3").args(["-c", PY_CLIENT, &port.to_string()]).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 3, "{text} {}", String::from_utf8_lossy(&out.stderr));
    (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap())
}

#[test]
fn delay_and_bandwidth_measure_as_configured() {
    let server = Peer::start(PY_SERVER);
    // 150 ms each way: a round trip of 300 ms.
    let p = proxy(server.port, "delay=150ms");
    let (rtt, _, n) = measure(p.port);
    assert_eq!(n, 300_000);
    assert!((0.27..=0.33).contains(&rtt), "round trip {rtt:.3} s under delay=150ms each way");
    // 100 kB/s towards the client only: 300 kB in about 3 s.
    let p = proxy(server.port, "bandwidth=100k,direction=down");
    let (rtt, secs, n) = measure(p.port);
    assert_eq!(n, 300_000);
    assert!(rtt < 0.1, "the echo is not held up: {rtt}");
    assert!((2.7..=3.3).contains(&secs), "300 kB at 100 kB/s took {secs:.2} s");
}

#[test]
fn drop_after_cuts_with_a_close_or_a_reset() {
    let server = Peer::start(PY_SERVER);
    let read = |faults: &str| {
        let p = proxy(server.port, faults);
        let code = r#"
let c = tcp::connect("127.0.0.1", parse_int(ARGS[0]), #{ timeout: 5 });
c.send_line("hello");
c.send_line("big");
let n = 0;
try {
    loop { let d = c.recv(65536); if d.len() == 0 { break } n += d.len(); }
    print(`eof after ${n}`);
} catch (e) {
    print(`${e.kind} after ${n}`);
}
"#;
        let (status, out, err) = client(p.port, code);
        assert_eq!(status, 0, "{err}");
        out.trim().to_string()
    };
    assert_eq!(read("drop_after=1000,direction=down"), "eof after 1000");
    assert_eq!(read("drop_after=1000:reset,direction=down"), "reset after 1000");
    let (status, _, err) = cli(&["proxy", "--listen", "0", "--to", "127.0.0.1:1", "--faults", "wobble=1"]);
    assert_eq!(status, 2);
    assert!(err.contains("unknown fault \"wobble\""), "{err}");
}

#[test]
fn run_faults_bend_the_scripts_own_connections() {
    let server = Peer::netscript(&["run", "-e", SERVER]);
    let port = server.port.to_string();
    let run = |faults: &str, code: &str| cli(&["run", "--faults", faults, "-e", code, &port]);
    let (status, out, err) = run("fragment=1..3,seed=5", NAIVE);
    assert_eq!(status, 0, "{err}");
    assert!(err.contains("faults fragment=1..3,seed=5"), "the faults are announced: {err}");
    let whole: u32 = out.trim().trim_start_matches("whole ").parse().expect(&out);
    assert!(whole < 5, "in-process fragments of 1..3 bytes still gave {whole} whole messages");
    let (status, out, err) = run("fragment=1..3,seed=5", FRAMERS);
    assert_eq!((status, out.trim()), (0, "ok 100"), "{err}");
    // Without a seed one is drawn, and printed so that the run can be repeated.
    let (_, _, err) = run("fragment", FRAMERS);
    let seed = err.split("seed=").nth(1).and_then(|s| s.split([' ', ')']).next()).expect(&err);
    assert!(seed.parse::<u64>().is_ok(), "{err}");
    let (status, _, err) = run("fragment=0", FRAMERS);
    assert_eq!(status, 2);
    assert!(err.contains("--faults: fragment is N or MIN..MAX"), "{err}");
}

#[test]
fn scripts_set_faults_per_thread_and_per_connection() {
    let server = Peer::start(PY_SERVER);
    let code = r#"
fn check(ok, what) { if !ok { throw `check failed: ${what}` } }
fn line(ch) { let s = ""; for i in 0..39 { s += ch; } s }
let port = parse_int(ARGS[0]);
check(net::faults() == (), "net::faults() == ()");
check(net::faults("fragment=1..2,seed=1") == "fragment=1..2,seed=1", "net::faults(\"fragment=1..2,seed=1\") == \"fragment=1..2,seed=1\"");
check(net::faults() == "fragment=1..2,seed=1", "net::faults() == \"fragment=1..2,seed=1\"");
// Bent, the connection still names its real peer.
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5 });
check(c.peer == `127.0.0.1:${port}`, `peer ${c.peer}`);
c.send_line(line("x"));
let sizes = [];
let got = 0;
while got < 40 { let d = c.recv(4096); sizes.push(d.len()); got += d.len(); }
check(sizes.all(|n| n <= 2), `pieces ${sizes}`);
// An option of the connection's own wins: `()` is none at all.
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5, faults: () });
c.send_line(line("y"));
check(c.recv(4096).len() == 40, "c.recv(4096).len() == 40");
net::faults(());
check(net::faults() == (), "net::faults() == ()");
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5, faults: #{ drop_after: 10, direction: "down" } });
c.send_line(line("z"));
check(c.recv_all().len() == 10, "c.recv_all().len() == 10");
// Delay each way: a round trip of about 2 × 100 ms.
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5, faults: "delay=100ms" });
let t0 = timestamp();
c.send_line(line("w"));
c.recv_exact(40);
let rtt = t0.elapsed;
check(rtt >= 0.19 && rtt < 2.0, `round trip ${rtt}`);
// Faults set on an open connection, changed, and taken off again.
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5 });
check(c.faults == (), `not bent: ${c.faults}`);
c.faults = "fragment=1..2,seed=5";
check(c.faults == "fragment=1..2,seed=5", `bent: ${c.faults}`);
c.send_line(line("v"));
let sizes = [];
let got = 0;
while got < 40 { let d = c.recv(4096); sizes.push(d.len()); got += d.len(); }
check(sizes.len() >= 20 && sizes.all(|n| n <= 2), `pieces after c.faults = ...: ${sizes}`);
c.faults = ();
check(c.faults == (), "taken off");
// The server's second answer: 300,000 bytes, in big reads again.
c.send_line(line("u"));
let got = 0;
let reads = 0;
while got < 300000 { got += c.recv(65536).len(); reads += 1; }
check(reads < 2000, `${reads} reads for 300000 bytes`);
let c = tcp::connect("127.0.0.1", port, #{ timeout: 5 });
c.faults = #{ drop_after: 5, direction: "down" };
c.send_line(line("t"));
check(c.recv_all().len() == 5, "cut after 5 bytes");
let e = ();
try { net::faults(#{ wobble: 1 }); } catch (err) { e = err; }
check(e != () && e.kind == "value" && e.message.contains("wobble"), `an unknown fault is a value error: ${e}`);
print("ok");
"#;
    let (status, out, err) = cli(&["run", "-e", code, &server.port.to_string()]);
    assert_eq!((status, out.trim()), (0, "ok"), "{err}");
}

#[test]
fn http_servers_and_clients_under_fragment_still_agree() {
    // Both ends in one script: the server's accepted connections and the
    // client's are bent; the protocol code must reassemble every piece.
    let code = r#"
fn check(ok, what) { if !ok { throw `check failed: ${what}` } }
let body = "";
for i in 0..300 { body += "0123456789"; }
let server = http::listen("127.0.0.1", 0).serve(|req| #{ path: req.path, body: body, got: req.text() });
for i in 0..5 {
    let r = http::post(`${server.url}/item/${i}`, #{ body: `payload ${i}` });
    check(r.status == 200, "r.status == 200");
    let j = r.json();
    check(j.path == `/item/${i}` && j.body == body && j.got == `payload ${i}`, `reply ${i}: ${j.path} ${j.got}`);
}
server.stop();
print("ok");
"#;
    let (status, out, err) = cli(&["run", "--faults", "fragment=1..7,fragment_pause=0ms,seed=3", "-e", code]);
    assert_eq!((status, out.trim()), (0, "ok"), "{err}");
}

/// A test suite whose first test reads one message with one `recv`.
const SUITE: &str = r#"
fn start() {
    tcp::listen("127.0.0.1", 0).serve(|c| {
        c.send_frame("a framed message of forty-two bytes, or so");
        c.send("a bare message, read with a single recv\n");
    })
}

fn test_a_naive_parser() {
    let s = start();
    let c = tcp::connect("127.0.0.1", s.port);
    c.recv_frame();
    let got = c.recv(4096).as_string();
    c.close();
    s.stop();
    assert_eq(got, "a bare message, read with a single recv\n");
}

fn test_a_framed_parser() {
    let s = start();
    let c = tcp::connect("127.0.0.1", s.port);
    let got = [c.recv_frame().as_string(), c.recv_line()];
    c.close();
    s.stop();
    assert_eq(got, ["a framed message of forty-two bytes, or so", "a bare message, read with a single recv"]);
}
"#;

#[test]
fn test_faults_fragment_shows_which_tests_assume_one_recv_is_one_message() {
    let dir = std::env::temp_dir().join(format!("netscript-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("parsers_test.rhai");
    std::fs::write(&file, SUITE).unwrap();
    let file = file.to_str().unwrap();
    let (status, out, err) = cli(&["test", file]);
    assert_eq!(status, 0, "on loopback both pass: {out}{err}");
    assert!(out.contains("2 passed, 0 failed"), "{out}");
    let (status, out, err) = cli(&["test", "--faults", "fragment", file]);
    assert_eq!(status, 1, "{out}{err}");
    assert!(out.contains("FAIL  test_a_naive_parser"), "{out}");
    assert!(out.contains("ok    test_a_framed_parser"), "{out}");
    assert!(out.contains("1 passed, 1 failed"), "{out}");
    assert_eq!(err.matches("netscript: faults fragment=1..7,seed=").count(), 1, "announced once: {err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Python UDP receiver: the sequence numbers it got, until an `end`
/// datagram and half a second of silence after it (for one held back).
const PY_UDP: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(30)
got = []
try:
    while True:
        d = s.recv(100)
        if d == b"end":
            s.settimeout(0.5)
        else:
            got.append(int(d))
except socket.timeout:
    pass
print(" ".join(map(str, got)), flush=True)
"#;

#[test]
fn udp_faults_lose_double_and_reorder_reproducibly() {
    let send = |faults: &str| {
        let mut py = Peer::start(PY_UDP);
        let code = r#"
let u = udp::bind("127.0.0.1", 0);
// Paced, so that the receiver's buffer (some 270 small datagrams) never fills.
for i in 0..400 {
    u.send_to(`${i}`, "127.0.0.1", parse_int(ARGS[0]));
    if i % 25 == 24 { task::sleep(0.01) }
}
// Five ends: one seed loses the same ones every run, and some arrive.
for i in 0..5 { u.send_to("end", "127.0.0.1", parse_int(ARGS[0])) }
"#;
        let (status, _, err) = cli(&["run", "--faults", faults, "-e", code, &py.port.to_string()]);
        assert_eq!(status, 0, "{err}");
        let got: Vec<u32> = py.next_line().split_whitespace().map(|n| n.parse().unwrap()).collect();
        got
    };
    let clean = send("fragment");
    assert_eq!(clean, (0..400).collect::<Vec<_>>(), "TCP faults leave datagrams alone");
    let faults = "udp_loss=0.2,udp_duplicate=0.2,udp_reorder=0.2,seed=9";
    let got = send(faults);
    let mut seen = [0u32; 400];
    for &i in &got {
        seen[i as usize] += 1;
    }
    let lost = seen.iter().filter(|&&n| n == 0).count();
    let doubled = seen.iter().filter(|&&n| n == 2).count();
    let late = got.windows(2).filter(|w| w[1] < w[0]).count();
    assert!((40..130).contains(&lost), "lost {lost} of 400 at udp_loss=0.2");
    assert!((20..100).contains(&doubled), "doubled {doubled}");
    assert!(late > 10, "reordered {late}");
    assert_eq!(send(faults), got, "one seed, one fate");
}

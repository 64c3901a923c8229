//! `netscript proxy --faults`: a deliberately naive parser (one `recv` is
//! one message) breaks under `fragment` while every framer of `frame::`
//! and the connection's own line and exact reads do not; latency and a
//! bandwidth cap measured by a real (Python) client; streams cut after N
//! bytes with a FIN or a RST.

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

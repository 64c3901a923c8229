//! `--pcap` read back by a real dissector: `tshark` (Debian) reassembles
//! each TCP stream of the capture into exactly the bytes the script sent
//! and received, sees the UDP datagrams one by one, and decrypts a TLS
//! session with the `--keylog` file.

use std::collections::BTreeMap;
use std::process::Command;

use crate::tls::{SServer, pki};
use crate::util::{Peer, cli};

/// Where a test's capture goes.
fn temp(name: &str) -> String {
    std::env::temp_dir().join(format!("netscript-capture-{}-{name}", std::process::id())).to_string_lossy().into_owned()
}

/// tshark's fields of every packet of `file` matching `filter`; `None` (with
/// a SKIP line) where tshark cannot be had.
fn tshark(file: &str, filter: &str, fields: &[&str], extra: &[&str]) -> Option<Vec<Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-r", file, "-Y", filter, "-T", "fields", "-E", "separator=|"]).args(extra);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => {
            println!("SKIP: tshark cannot run ({e}); the README's test command installs it (apt-get install tshark)");
            return None;
        }
    };
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('|').map(String::from).collect()).collect())
}

fn unhex(h: &str) -> Vec<u8> {
    let h: String = h.chars().filter(char::is_ascii_hexdigit).collect();
    (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()).collect()
}

/// A Python echo server over TCP (each connection echoes until EOF).
const PY_ECHO: &str = r#"
import socket, threading
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen()
print(ls.getsockname()[1], flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

#[test]
fn tshark_reassembles_every_tcp_stream_into_what_the_script_sent_and_received() {
    let echo = Peer::start(PY_ECHO);
    let file = temp("tcp.pcapng");
    // Two connections: small lines, then 200 kB in one send (many segments).
    let code = r#"
let port = parse_int(ARGS[0]);
let a = tcp::connect("127.0.0.1", port);
for i in 0..5 { a.send_line(`line ${i}`); a.recv_line(); }
let b = tcp::connect("127.0.0.1", port);
let big = blob(200000, 0x5a);
b.send(big);
b.recv_exact(200000);
a.close();
b.close();
print(`${a.local} ${b.local}`);
"#;
    let (status, out, err) = cli(&["run", "--pcap", &file, "-e", code, &echo.port.to_string()]);
    assert_eq!(status, 0, "{err}");
    let ports: Vec<String> = out.split_whitespace().map(|a| a.rsplit(':').next().unwrap().to_string()).collect();
    let Some(rows) = tshark(&file, "tcp", &["tcp.stream", "tcp.srcport", "tcp.payload"], &[]) else { return };
    // Per stream, per source port: the payload bytes in order.
    let mut streams: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    for r in &rows {
        streams.entry((r[0].clone(), r[1].clone())).or_default().extend(unhex(&r[2]));
    }
    let stream_ids: std::collections::BTreeSet<&String> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(stream_ids.len(), 2, "two connections, two streams: {stream_ids:?}");
    let lines: Vec<u8> = (0..5).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    let sent_a = streams.iter().find(|((_, p), _)| *p == ports[0]).map(|(_, d)| d.clone()).expect("stream of a");
    assert_eq!(sent_a, lines, "what the first connection sent");
    let echo_port = echo.port.to_string();
    let got: Vec<&Vec<u8>> = streams.iter().filter(|((_, p), _)| *p == echo_port).map(|(_, d)| d).collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&&lines), "the echo of the lines");
    assert!(got.contains(&&vec![0x5a; 200_000]), "the echo of 200 kB, reassembled");
    let sent_b = streams.iter().find(|((_, p), _)| *p == ports[1]).map(|(_, d)| d.clone()).expect("stream of b");
    assert_eq!(sent_b, vec![0x5a; 200_000]);
    // Consistent sequence numbers: tshark finds nothing to flag (no lost
    // segment, retransmission or out-of-order packet), and sees each
    // connection open and close.
    let flagged = tshark(&file, "tcp.analysis.flags && !tcp.analysis.window_update", &["frame.number"], &[]).unwrap();
    assert!(flagged.is_empty(), "tshark flagged {} packets", flagged.len());
    let syns = tshark(&file, "tcp.flags.syn == 1 && tcp.flags.ack == 0", &["tcp.stream"], &[]).unwrap();
    let fins = tshark(&file, "tcp.flags.fin == 1", &["tcp.stream"], &[]).unwrap();
    assert_eq!((syns.len(), fins.len()), (2, 4), "a SYN per connection, a FIN each way");
    let _ = std::fs::remove_file(&file);
}

/// A Python UDP echo server.
const PY_UDP_ECHO: &str = r#"
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
while True:
    d, a = s.recvfrom(65536)
    s.sendto(d.upper(), a)
"#;

#[test]
fn tshark_sees_each_udp_datagram_both_ways() {
    let echo = Peer::start(PY_UDP_ECHO);
    let file = temp("udp.pcapng");
    let code = r#"
let u = udp::bind("127.0.0.1", 0);
for w in ["alpha", "beta", "gamma"] { u.send_to(w, "127.0.0.1", parse_int(ARGS[0])); u.recv_from(); }
"#;
    let (status, _, err) = cli(&["run", "--pcap", &file, "-e", code, &echo.port.to_string()]);
    assert_eq!(status, 0, "{err}");
    let Some(rows) = tshark(&file, "udp", &["udp.srcport", "udp.payload"], &[]) else { return };
    let got: Vec<(bool, String)> =
        rows.iter().map(|r| (r[0] == echo.port.to_string(), String::from_utf8(unhex(&r[1])).unwrap())).collect();
    let want: Vec<(bool, String)> =
        ["alpha", "beta", "gamma"].iter().flat_map(|w| [(false, (*w).to_string()), (true, w.to_uppercase())]).collect();
    assert_eq!(got, want);
    let _ = std::fs::remove_file(&file);
}

#[test]
fn net_capture_starts_and_stops_a_capture_from_the_script() {
    let echo = Peer::start(PY_UDP_ECHO);
    let (first, second) = (temp("first.pcapng"), temp("second.pcapng"));
    let code = r#"
let u = udp::bind("127.0.0.1", 0);
let port = parse_int(ARGS[0]);
u.send_to("before", "127.0.0.1", port); u.recv_from();
net::capture(ARGS[1]);
u.send_to("during", "127.0.0.1", port); u.recv_from();
net::capture(ARGS[2]);              // a new file; the first is finished
u.send_to("next", "127.0.0.1", port); u.recv_from();
net::capture(());
u.send_to("after", "127.0.0.1", port); u.recv_from();
let e = ();
try { net::capture("/nonexistent/dir/x.pcapng"); } catch (err) { e = err; }
print(e.kind);
"#;
    let (status, out, err) = cli(&["run", "-e", code, &echo.port.to_string(), &first, &second]);
    assert_eq!((status, out.trim()), (0, "io"), "{err}");
    let payloads = |file: &str| -> Option<Vec<String>> {
        let rows = tshark(file, "udp", &["udp.payload"], &[])?;
        Some(rows.iter().map(|r| String::from_utf8(unhex(&r[0])).unwrap()).collect())
    };
    let Some(got) = payloads(&first) else { return };
    assert_eq!(got, ["during", "DURING"]);
    assert_eq!(payloads(&second).unwrap(), ["next", "NEXT"]);
    let _ = std::fs::remove_file(&first);
    let _ = std::fs::remove_file(&second);
}

#[test]
fn a_tls_capture_is_decrypted_with_the_key_log() {
    let server = SServer::start("leaf", &[]);
    let (file, keys) = (temp("tls.pcapng"), temp("tls.keys"));
    let code = format!(
        r#"
let c = tls::connect("localhost", {}, #{{ca: "{}"}});
c.send("a secret line\n");
print(c.recv_line());
c.close();
"#,
        server.port,
        pki().path("ca.pem")
    );
    let (status, out, err) = cli(&["run", "--pcap", &file, "--keylog", &keys, "-e", &code]);
    assert_eq!((status, out.trim()), (0, "enil terces a"), "{err}");
    let log = std::fs::read_to_string(&keys).unwrap();
    assert!(log.contains("CLIENT_TRAFFIC_SECRET_0 "), "an SSLKEYLOGFILE line per secret: {log}");
    let Some(plain) = tshark(&file, "tls", &["tls.handshake.type"], &[]) else { return };
    assert!(!plain.is_empty(), "tshark sees the TLS handshake");
    // Without the keys, no application data can be read; with them, both lines.
    let records = tshark(&file, "tls.app_data", &["tls.app_data"], &[]).unwrap();
    assert!(records.len() >= 2, "application data records both ways: {records:?}");
    let plaintext = records.iter().flatten().any(|f| String::from_utf8_lossy(&unhex(f)).contains("secret"));
    assert!(!plaintext, "the capture holds ciphertext, not the plaintext");
    let keylog = format!("tls.keylog_file:{keys}");
    let follow = Command::new("tshark")
        .args(["-r", &file, "-o", &keylog, "-q", "-z", "follow,tls,ascii,0"])
        .output()
        .expect("tshark");
    let text = String::from_utf8_lossy(&follow.stdout);
    assert!(text.contains("a secret line") && text.contains("enil terces a"), "decrypted: {text}");
    // The plaintext, without the keys: its own stream on the marked interface,
    // between the IPv4-mapped forms of the connection's addresses.
    let marked = tshark(&file, "tcp.stream == 1", &["frame.interface_name", "ipv6.src", "tcp.srcport"], &[]).unwrap();
    assert!(
        !marked.is_empty() && marked.iter().all(|f| f[0] == "tls-plaintext" && f[1].starts_with("::ffff:127.0.0.1")),
        "{marked:?}"
    );
    let follow = Command::new("tshark").args(["-r", &file, "-q", "-z", "follow,tcp,ascii,1"]).output().expect("tshark");
    let text = String::from_utf8_lossy(&follow.stdout);
    assert!(text.contains("a secret line") && text.contains("enil terces a"), "plaintext stream: {text}");
    let streams = tshark(&file, "tcp.flags.syn == 1 && tcp.flags.ack == 0", &["tcp.stream"], &[]).unwrap();
    assert_eq!(streams.len(), 2, "the ciphertext and the plaintext stream: {streams:?}");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&keys);
}

#[test]
fn http_clients_and_servers_are_captured_once_per_connection() {
    // The script is both ends: the server's connection is the client's seen
    // the other way, and the capture holds it once.
    let file = temp("http.pcapng");
    let code = r#"
let s = http::listen("127.0.0.1", 0).serve(|req| `hello ${req.path}`);
let r = http::get(`${s.url}/there`);
print(r.text());
s.stop();
"#;
    let (status, out, err) = cli(&["run", "--pcap", &file, "-e", code]);
    assert_eq!((status, out.trim()), (0, "hello /there"), "{err}");
    let Some(requests) = tshark(&file, "http.request", &["http.request.method", "http.request.uri"], &[]) else {
        return;
    };
    assert_eq!(requests, [["GET", "/there"]]);
    let responses = tshark(&file, "http.response", &["http.response.code", "http.file_data"], &[]).unwrap();
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0][0], "200");
    let flagged = tshark(&file, "tcp.analysis.flags", &["frame.number"], &[]).unwrap();
    assert!(flagged.is_empty(), "tshark's analysis flags nothing: {flagged:?}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn zeromq_sockets_are_captured_and_bent_like_the_others() {
    let port = crate::util::closed_port();
    let code = format!(
        r#"
let rep = zmq::socket("rep", #{{timeout: 5}});
rep.bind("tcp://127.0.0.1:{port}");
let req = zmq::socket("req", #{{timeout: 5}});
req.connect("tcp://127.0.0.1:{port}");
let t = task::start(|| {{ let m = rep.recv(); rep.send("pong: " + m.as_string()); }});
req.send("ping over zmtp");
print(req.recv().as_string());
t.join();
"#
    );
    let file = temp("zmq.pcapng");
    let (status, out, err) = cli(&["run", "--pcap", &file, "-e", &code]);
    assert_eq!((status, out.trim()), (0, "pong: ping over zmtp"), "{err}");
    let Some(starts) = tshark(&file, "tcp.flags.syn == 1 && tcp.flags.ack == 0", &["tcp.dstport"], &[]) else {
        return;
    };
    assert_eq!(starts, [[port.to_string()]], "one connection, to the REP socket, captured once");
    let follow = Command::new("tshark").args(["-r", &file, "-q", "-z", "follow,tcp,ascii,0"]).output().expect("tshark");
    let text = String::from_utf8_lossy(&follow.stdout);
    assert!(text.contains("ping over zmtp") && text.contains("pong: ping over zmtp"), "{text}");
    // The same sockets under faults: fragmented, ZMTP still frames whole
    // messages; cut after 20 bytes, the handshake fails.
    let (status, out, err) = cli(&["run", "--faults", "fragment=1..3,seed=1", "-e", &code]);
    assert_eq!((status, out.trim()), (0, "pong: ping over zmtp"), "{err}");
    let (status, _, err) = cli(&["run", "--faults", "drop_after=20", "-e", &code]);
    assert_eq!(status, 1, "{err}");
    assert!(err.contains("closed: zmq.connect"), "{err}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn trace_json_has_a_line_per_send_and_receive_with_the_bytes() {
    let echo = Peer::start(PY_ECHO);
    let file = temp("trace.jsonl");
    let code = r#"
let c = tcp::connect("127.0.0.1", parse_int(ARGS[0]));
c.send("hello\n");
c.recv_line();
c.send(blob(3, 0xff));
c.recv_exact(3);
let u = udp::bind("127.0.0.1", 0);
u.send_to("dgram", "127.0.0.1", 9);
print(c.local);
"#;
    let (status, out, err) = cli(&["run", "--trace-json", &file, "-e", code, &echo.port.to_string()]);
    assert_eq!(status, 0, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
    use base64::Engine as _;
    let bytes =
        |v: &serde_json::Value| base64::engine::general_purpose::STANDARD.decode(v["data"].as_str().unwrap()).unwrap();
    let tcp: Vec<&serde_json::Value> = lines.iter().filter(|l| l["proto"] == "tcp").collect();
    let sent: Vec<u8> = tcp.iter().filter(|l| l["dir"] == "send").flat_map(|l| bytes(l)).collect();
    let got: Vec<u8> = tcp.iter().filter(|l| l["dir"] == "recv").flat_map(|l| bytes(l)).collect();
    assert_eq!(sent, b"hello\n\xff\xff\xff");
    assert_eq!(got, sent, "the echo");
    assert!(tcp.iter().all(|l| l["conn"] == tcp[0]["conn"] && l["local"] == out.trim()));
    assert!(tcp.iter().all(|l| l["len"].as_u64().unwrap() as usize == bytes(l).len()));
    let times: Vec<f64> = lines.iter().map(|l| l["time"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]) && times[0] > 1.7e9, "{times:?}");
    let udp: Vec<&serde_json::Value> = lines.iter().filter(|l| l["proto"] == "udp").collect();
    assert_eq!(udp.len(), 1);
    assert_eq!((bytes(udp[0]), udp[0]["peer"].as_str().unwrap()), (b"dgram".to_vec(), "127.0.0.1:9"));
    assert_ne!(udp[0]["conn"], tcp[0]["conn"]);
    let _ = std::fs::remove_file(&file);
}

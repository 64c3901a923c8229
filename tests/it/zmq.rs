//! `zmq::` against libzmq: every pattern with pyzmq peers
//! (`tests/peers/zmq_peers.py`) in both directions — pipeline fan-out,
//! publish-subscribe with topic filters, request-reply, ROUTER/DEALER
//! envelopes, PAIR — plus multipart and binary messages, timeouts, peers
//! that go away and come back, garbage on a ZMTP port, a slow subscriber,
//! and the pattern scripts of `scripts/zmq_*.rhai`.

use rhai::Dynamic;
use serde_json::{Value, json};

use crate::util::{Peer, closed_port, eval};

/// `code` with each `@NAME` replaced by its value (scripts are full of
/// braces, which `format!` would need doubled).
fn script(code: &str, vars: &[(&str, &dyn ToString)]) -> String {
    vars.iter().fold(code.to_string(), |code, (name, value)| code.replace(&format!("@{name}"), &value.to_string()))
}

/// A pyzmq peer of `tests/peers/zmq_peers.py` running `mode`.
fn py(mode: &str, args: &[&str]) -> Peer {
    let mut all = vec![mode];
    all.extend_from_slice(args);
    Peer::script("zmq_peers.py", &all)
}

/// The JSON report a peer prints before it exits.
fn report(peer: Peer) -> Value {
    let out = peer.output();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("peer reported {out:?}: {e}"))
}

/// The ports a peer printed on its first line.
fn ports(peer: &Peer) -> Vec<u16> {
    peer.line.split(' ').map(|p| p.parse().expect("port")).collect()
}

#[test]
fn python_ventilator_fans_out_to_script_workers_and_a_python_sink() {
    const WORKERS: usize = 3;
    const TASKS: usize = 300;
    let vent = py("ventilator", &[&WORKERS.to_string(), &TASKS.to_string()]);
    let [push, sink] = ports(&vent)[..] else { panic!("{}", vent.line) };
    let got = eval(&script(
        r#"fn worker(w) {
               let pull = zmq::socket("pull", #{timeout: 20});
               pull.connect("tcp://127.0.0.1:@PUSH");
               let out = zmq::socket("push", #{timeout: 20});
               out.connect("tcp://127.0.0.1:@SINK");
               let got = [];
               loop {
                   let m = pull.recv_string();
                   if m == "END" { break }
                   got.push(parse_int(m));
                   out.send(`${w}:${m}`);
               }
               got
           }
           let tasks = [];
           for w in 0..@WORKERS { tasks.push(task::start(Fn("worker"), [w])) }
           tasks.map(|t| t.join())"#,
        &[("PUSH", &push), ("SINK", &sink), ("WORKERS", &WORKERS)],
    ))
    .expect("workers run");
    let per_worker: Vec<Vec<i64>> = got
        .into_typed_array::<Dynamic>()
        .expect("array")
        .into_iter()
        .map(|a| a.into_typed_array::<i64>().expect("ints"))
        .collect();
    // Every worker got a share, each in the order sent (one pipe each).
    for (w, items) in per_worker.iter().enumerate() {
        assert!(!items.is_empty(), "worker {w} got nothing: {per_worker:?}");
        assert!(items.windows(2).all(|p| p[0] < p[1]), "worker {w} out of order: {items:?}");
    }
    // Together exactly the tasks sent, each once.
    let mut all: Vec<i64> = per_worker.concat();
    all.sort_unstable();
    assert_eq!(all, (0..TASKS as i64).collect::<Vec<_>>());
    // The sink got every result, each from the worker that had the task.
    let mut results: Vec<String> =
        report(vent).as_array().expect("list").iter().map(|v| v.as_str().expect("str").to_string()).collect();
    results.sort_unstable();
    let mut expected: Vec<String> =
        per_worker.iter().enumerate().flat_map(|(w, items)| items.iter().map(move |i| format!("{w}:{i}"))).collect();
    expected.sort_unstable();
    assert_eq!(results, expected);
}

#[test]
fn script_publisher_filters_topics_for_python_subscribers() {
    let port = closed_port();
    // Subscribers to "a.", to the binary prefix 00 ff, and to "zzz" (nothing).
    let subs = py("subscribers", &[&port.to_string(), &hex("a."), "00ff", &hex("zzz")]);
    assert_eq!(subs.line, "ready");
    let seen_subs = eval(&script(
        r#"let pub = zmq::socket("xpub", #{timeout: 20});
           pub.bind("tcp://127.0.0.1:@PORT");
           // XPUB shows each subscription: wait for all six (two per SUB).
           let seen = [];
           while seen.len() < 6 { seen.push(pub.recv()) }
           for i in 0..20 {
               pub.send(`a.${i}`);
               pub.send(`b.${i}`);
               pub.send(blob(1, 0) + blob(1, 255) + `${i}`.to_blob());
               pub.send_multipart(["a.multi", `${i}`, blob()]);
           }
           pub.send("END");
           seen.map(|s| bytes::to_hex(s))"#,
        &[("PORT", &port)],
    ))
    .expect("publisher runs");
    // Each subscription as XPUB shows it: 01 and the prefix.
    let mut subscriptions: Vec<String> = seen_subs.into_typed_array::<String>().expect("strings");
    subscriptions.sort_unstable();
    let mut expected: Vec<String> = ["a.", "END", "END", "END", "zzz"]
        .iter()
        .map(|p| format!("01{}", hex(p)))
        .chain(["0100ff".to_string()])
        .collect();
    expected.sort_unstable();
    assert_eq!(subscriptions, expected);
    let seen = report(subs);
    let a: Vec<Value> = (0..20).flat_map(|i| [json!([hex(&format!("a.{i}"))]), multi(i)]).collect();
    let bin: Vec<Value> = (0..20).map(|i| json!([format!("00ff{}", hex(&i.to_string()))])).collect();
    assert_eq!(seen, json!([a, bin, []]));
}

/// The report of a `["a.multi", i, ""]` message.
fn multi(i: i32) -> Value {
    json!([hex("a.multi"), hex(&i.to_string()), ""])
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn script_subscriber_filters_a_python_publisher_by_text_and_binary_prefixes() {
    // The script subscribes three times before it reads.
    let publisher = py("publisher", &["5", "3"]);
    let got = eval(&script(
        r#"let sub = zmq::socket("sub", #{timeout: 20});
           sub.connect("tcp://127.0.0.1:@PORT");
           sub.subscribe("a.");
           sub.subscribe(blob(1, 0) + blob(1, 255));
           sub.subscribe("END");
           let got = [];
           loop {
               let parts = sub.recv_multipart();
               if parts.len() == 1 && parts[0].as_string() == "END" { break }
               got.push(parts.map(|p| bytes::to_hex(p)).reduce(|s, p| if s == () { p } else { s + "|" + p }));
           }
           got"#,
        &[("PORT", &publisher.port)],
    ))
    .expect("subscriber runs");
    let expected: Vec<String> = (0..5)
        .flat_map(|i| {
            [
                hex(&format!("a.{i}")),
                format!("00ff{}", hex(&i.to_string())),
                format!("{}|{}|", hex("a.multi"), hex(&i.to_string())),
            ]
        })
        .collect();
    let got: Vec<String> = got.into_typed_array::<String>().expect("strings");
    assert_eq!(got, expected);
}

#[test]
fn python_req_client_against_a_script_rep_server_multipart_and_binary() {
    let port = closed_port();
    let client = py("req", &[&port.to_string(), "20"]);
    let _served = eval(&script(
        r#"let rep = zmq::socket("rep", #{timeout: 20});
           rep.bind("tcp://127.0.0.1:@PORT");
           for n in 0..20 {
               let parts = rep.recv_multipart();
               rep.send_multipart([`got ${parts.len()}`] + parts.map(|p| p.len().to_string()) + [parts[1]]);
           }"#,
        &[("PORT", &port)],
    ))
    .expect("server runs");
    let replies = report(client);
    let expected: Vec<Value> = (0..20)
        .map(|i: usize| {
            let len = 256 * (i + 1);
            json!([hex("got 3"), hex(&i.to_string().len().to_string()), hex(&len.to_string()), "30", len])
        })
        .collect();
    assert_eq!(replies, json!(expected));
}

#[test]
fn script_req_client_against_python_rep_servers_round_robin() {
    let one = py("rep", &["one", "-1"]);
    let two = py("rep", &["two", "-1"]);
    let got = eval(&script(
        r#"let req = zmq::socket("req", #{timeout: 20});
           req.connect("tcp://127.0.0.1:@ONE");
           req.connect("tcp://127.0.0.1:@TWO");
           let all = blob();
           for b in 0..256 { all.push(b) }
           let out = [];
           for i in 0..6 {
               req.send_multipart([`${i}`, all, blob()]);
               let r = req.recv_multipart();
               if r[2] != all || r[3].len() != 0 { throw "binary part changed" }
               out.push(`${r[0].as_string()}:${r[1].as_string()}`);
           }
           out"#,
        &[("ONE", &one.port), ("TWO", &two.port)],
    ))
    .expect("client runs");
    let got: Vec<String> = got.into_typed_array::<String>().expect("strings");
    // Requests alternate between the two servers, in order.
    let first = got[0].split(':').next().expect("tag").to_string();
    let other = if first == "one" { "two" } else { "one" };
    let expected: Vec<String> = (0..6).map(|i| format!("{}:{i}", if i % 2 == 0 { &first } else { other })).collect();
    assert_eq!(got, expected);
}

#[test]
fn python_dealers_with_identities_against_a_script_router() {
    let port = closed_port();
    let a = py("dealer", &[&port.to_string(), "alice", "3"]);
    let b = py("dealer", &[&port.to_string(), "bob", "3"]);
    let _served = eval(&script(
        r#"let router = zmq::socket("router", #{timeout: 20});
           router.bind("tcp://127.0.0.1:@PORT");
           for n in 0..6 {
               let parts = router.recv_multipart();
               let who = parts[0].as_string();
               router.send_multipart([parts[0], `for ${who}`, parts[2]]);
           }"#,
        &[("PORT", &port)],
    ))
    .expect("router runs");
    for (peer, who) in [(a, "alice"), (b, "bob")] {
        assert_eq!(
            report(peer),
            json!([[format!("for {who}"), "0"], [format!("for {who}"), "1"], [format!("for {who}"), "2"]])
        );
    }
}

#[test]
fn script_dealer_with_an_identity_against_a_python_router() {
    let router = py("router", &[]);
    let got = eval(&script(
        r#"let d = zmq::socket("dealer", #{identity: "worker-7", timeout: 20});
           d.connect("tcp://127.0.0.1:@PORT");
           d.send_multipart(["hello", blob(3, 0)]);
           let r1 = d.recv_multipart();
           d.send("END");
           let r2 = d.recv_multipart();
           [r1.map(|p| bytes::to_hex(p)), r2.map(|p| p.as_string())]"#,
        &[("PORT", &router.port)],
    ))
    .expect("dealer runs");
    assert_eq!(
        got.to_string(),
        format!(
            r#"[["{}", "{}", "{}", "000000"], ["seen", "worker-7", "END"]]"#,
            hex("seen"),
            hex("worker-7"),
            hex("hello")
        )
    );
    assert_eq!(report(router), json!([hex("worker-7"), hex("worker-7")]));
}

#[test]
fn a_python_push_feeds_a_script_pull_over_ipc() {
    let path = std::env::temp_dir().join(format!("netscript-zmq-{}.ipc", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let _ = std::fs::remove_file(&path);
    let pull = eval_in_background(script(
        r#"let pull = zmq::socket("pull", #{timeout: 20});
           let ep = pull.bind("@EP");
           let got = [];
           for i in 0..50 { got.push(parse_int(pull.recv_string())) }
           [ep, got]"#,
        &[("EP", &endpoint)],
    ));
    for _ in 0..500 {
        if path.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let feeder = py("push", &[&endpoint, "50"]);
    let got = pull.join().expect("thread").expect("pull runs");
    let numbers: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    assert_eq!(got.to_string(), format!(r#"["{endpoint}", [{}]]"#, numbers.join(", ")));
    assert_eq!(report(feeder), json!("sent"));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn waits_end_in_timeout_errors_naming_the_operation_and_endpoint() {
    let silent = py("rep-silent", &[]);
    let got = eval(&script(
        r#"let kinds = [];
           let pull = zmq::socket("pull");
           pull.bind("tcp://127.0.0.1:0");
           try { pull.recv(0.1) } catch (e) { kinds.push(`${e.kind} ${e.op} ${e.peer == pull.last_endpoint}`) }
           pull.timeout = 0.1;
           try { pull.recv_multipart() } catch (e) { kinds.push(`${e.kind} ${e.op}`) }
           // A send with no peer to take it waits, as libzmq's does, up to the timeout.
           let push = zmq::socket("push", #{timeout: 0.1});
           try { push.send("x") } catch (e) { kinds.push(`${e.kind} ${e.op}`) }
           // A REQ whose server never answers: the reply times out, and the
           // socket stays waiting for it (libzmq's EFSM): a new send is a value error.
           let req = zmq::socket("req", #{timeout: 0.2});
           req.connect("tcp://127.0.0.1:@PORT");
           req.send("hello?");
           try { req.recv() } catch (e) { kinds.push(`${e.kind} ${e.op}`) }
           try { req.send("again") } catch (e) { kinds.push(`${e.kind} ${e.op}`) }
           // Nothing listening: connect retries up to connect_timeout.
           let lonely = zmq::socket("dealer", #{connect_timeout: 0.2});
           try { lonely.connect("tcp://127.0.0.1:@CLOSED") } catch (e) { kinds.push(`${e.kind} ${e.op}`) }
           kinds"#,
        &[("PORT", &silent.port), ("CLOSED", &closed_port())],
    ))
    .expect("script runs");
    assert_eq!(
        got.to_string(),
        r#"["timeout zmq.recv true", "timeout zmq.recv_multipart", "timeout zmq.send", "timeout zmq.recv", "value zmq.send", "timeout zmq.connect"]"#
    );
}

#[test]
fn wrong_use_is_a_value_error() {
    let got = eval(
        r#"let kinds = [];
           for f in [
               || zmq::socket("pair2"),
               || zmq::socket("pull").send("x"),
               || zmq::socket("push").recv(0.1),
               || zmq::socket("rep").send("no request yet"),
               || zmq::socket("req").recv(0.1),
               || zmq::socket("pub").subscribe("a"),
               || zmq::socket("pull").bind("tcpx://127.0.0.1:1"),
               || zmq::socket("push").send_multipart([]),
               || zmq::socket("dealer", #{identity: ""}),
               || zmq::socket("push", #{colour: 1}),
           ] {
               try { f.call(); kinds.push("ok") } catch (e) { kinds.push(e.kind) }
           }
           kinds"#,
    )
    .expect("script runs");
    assert_eq!(
        got.to_string(),
        r#"["value", "value", "value", "value", "value", "value", "value", "value", "value", "value"]"#
    );
}

#[test]
fn binding_a_taken_port_is_addr_in_use_and_closed_sockets_say_closed() {
    let got = eval(
        r#"let a = zmq::socket("pull");
           let ep = a.bind("tcp://127.0.0.1:0");
           let out = [];
           try { zmq::socket("pull").bind(ep) } catch (e) { out.push(e.kind) }
           a.close();
           try { a.recv(0.1) } catch (e) { out.push(e.kind) }
           a.close();
           out"#,
    )
    .expect("script runs");
    assert_eq!(got.to_string(), r#"["addr_in_use", "closed"]"#);
}

#[test]
fn close_wakes_a_task_waiting_in_recv() {
    let got = eval(
        r#"let s = zmq::socket("pull");
           s.bind("tcp://127.0.0.1:0");
           let t = task::start(|| { let r = "got one"; try { s.recv() } catch (e) { r = e.kind } r });
           task::sleep(0.05);
           s.close();
           t.join(5)"#,
    )
    .expect("script runs");
    assert_eq!(got.to_string(), "closed");
}

#[test]
fn a_full_send_queue_waits_for_room_and_resumes_as_the_peer_reads() {
    let got = eval(
        r#"let pull = zmq::socket("pull");
           let endpoint = pull.bind("tcp://127.0.0.1:0");
           let push = zmq::socket("push", #{send_hwm: 10, timeout: 0.3});
           push.connect(endpoint);
           let big = blob(65536, 0x61);
           // Nobody reads: the queue and the socket buffers fill, then a send
           // waits and times out, having sent nothing.
           let queued = 0;
           loop {
               try { push.send(big); queued += 1; } catch (e) { if e.kind != "timeout" { throw e } break }
               if queued > 100000 { break }
           }
           // A reader now: the waiting sender is woken as the queue drains,
           // each time it fills (2,000 messages through a queue of 10).
           push.timeout = 5;
           let sender = task::start(|| { for i in 0..2000 { push.send(`${i}`) } "sent" });
           for i in 0..queued { if pull.recv().len() != 65536 { throw "a short message" } }
           for i in 0..2000 {
               let m = pull.recv_string();
               if m != `${i}` { throw `message ${m} where ${i} was due` }
           }
           [queued > 10, queued < 1000, sender.join(5)]"#,
    )
    .expect("script runs");
    assert_eq!(got.to_string(), r#"[true, true, "sent"]"#);
}

/// Run `code` on a thread of its own (the test meanwhile restarts peers).
fn eval_in_background(code: String) -> std::thread::JoinHandle<Result<Dynamic, String>> {
    std::thread::spawn(move || eval(&code).map(|v| v.flatten()))
}

#[test]
fn a_push_reconnects_to_a_pull_peer_that_restarts_on_its_port() {
    let port = closed_port();
    let first = py("pull-bound", &[&port.to_string(), "3"]);
    // Sends 0..300 a few milliseconds apart, then END; a send while the peer
    // is away waits for it to come back.
    let sender = eval_in_background(script(
        r#"let push = zmq::socket("push", #{timeout: 20});
           push.connect("tcp://127.0.0.1:@PORT");
           for i in 0..300 { push.send(`${i}`); task::sleep(0.005) }
           push.send("END");"#,
        &[("PORT", &port)],
    ));
    assert_eq!(report(first), json!(["0", "1", "2"]));
    let second = py("pull-until-end", &[&port.to_string()]);
    let _sent = sender.join().expect("thread").expect("sender runs");
    let got: Vec<i64> = report(second)
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v.as_str().expect("str").parse().expect("int"))
        .collect();
    // What was in flight to the first peer when it exited is lost; the rest
    // reaches the second, in order, up to the last.
    assert!(got.windows(2).all(|p| p[0] < p[1]), "{got:?}");
    assert_eq!(got.last(), Some(&299), "{got:?}");
}

#[test]
fn a_req_client_hides_how_many_rep_servers_there_are() {
    let (p1, p2) = (closed_port(), closed_port());
    let one = py("rep-bound", &[&p1.to_string(), "one"]);
    let two = py("rep-bound", &[&p2.to_string(), "two"]);
    // Ask until `n` answers came back; a request that was sent to a server
    // as it died fails with `closed` and is sent again.
    let ask = r#"fn ask(req, n) {
                     let tags = [];
                     let lost = 0;
                     while tags.len() < n {
                         try { req.send("q"); tags.push(req.recv_string()) }
                         catch (e) { if e.kind != "closed" { throw e } lost += 1 }
                     }
                     tags.sort();
                     tags.dedup();
                     [tags, lost]
                 }
                 let req = zmq::socket("req", #{timeout: 20});
                 req.connect("tcp://127.0.0.1:@P1");
                 req.connect("tcp://127.0.0.1:@P2");
                 let both = ask(req, 4);
                 // The test asks on this socket before each change of servers.
                 let ctl = zmq::socket("rep", #{timeout: 20});
                 ctl.bind("tcp://127.0.0.1:@CTL");
                 ctl.recv(); ctl.send("");            // may server two go?
                 ctl.recv(); ctl.send("");            // it is gone
                 let alone = ask(req, 6);
                 ctl.recv(); ctl.send("");            // it is back on its port
                 // It reconnects in the background: ask until it answers again.
                 let back = false;
                 for i in 0..1000 {
                     req.send("q");
                     if req.recv_string() == "two" { back = true; break }
                     task::sleep(0.01);
                 }
                 [both, alone, back]"#;
    let ctl = closed_port();
    let client = eval_in_background(script(ask, &[("P1", &p1), ("P2", &p2), ("CTL", &ctl)]));
    let signal = || assert_eq!(report(py("req", &[&ctl.to_string(), "1"])), json!([[""]]));
    signal();
    drop(two);
    signal();
    let two = py("rep-bound", &[&p2.to_string(), "two"]);
    signal();
    let got = client.join().expect("thread").expect("client runs");
    drop((one, two));
    let got = got.to_string();
    assert!(got.starts_with(r#"[[["one", "two"], 0], [["one"], "#), "{got}");
    assert!(got.ends_with("], true]"), "{got}");
}

/// A ZMTP 3.0 greeting (NULL mechanism) and a READY command from a PUSH.
fn zmtp_hello() -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    g.extend_from_slice(b"NULL");
    g.resize(64, 0);
    let mut ready = b"\x05READY\x0bSocket-Type".to_vec();
    ready.extend_from_slice(&4u32.to_be_bytes());
    ready.extend_from_slice(b"PUSH");
    g.extend_from_slice(&[0x04, u8::try_from(ready.len()).expect("short")]);
    g.extend_from_slice(&ready);
    g
}

#[test]
fn garbage_and_giant_frames_drop_their_peer_and_the_socket_keeps_serving() {
    use std::io::Write;
    let port = closed_port();
    let pull = eval_in_background(script(
        r#"let pull = zmq::socket("pull", #{timeout: 20});
           pull.bind("tcp://127.0.0.1:@PORT");
           let got = [];
           for i in 0..10 { got.push(parse_int(pull.recv_string())) }
           got"#,
        &[("PORT", &port)],
    ));
    let connect = || {
        for _ in 0..500 {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the script never listened on {port}");
    };
    // Not ZMTP at all.
    let mut http = connect();
    http.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("write");
    // A greeting, then a command frame claiming 2^62 bytes.
    let mut giant_command = connect();
    let mut bytes = zmtp_hello()[..64].to_vec();
    bytes.push(0x06);
    bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    giant_command.write_all(&bytes).expect("write");
    // A full handshake, then a message of 2^62 bytes, then one over 16 MiB.
    let mut giant_message = connect();
    let mut bytes = zmtp_hello();
    bytes.push(0x02);
    bytes.extend_from_slice(&(1u64 << 62).to_be_bytes());
    giant_message.write_all(&bytes).expect("write");
    let mut big_message = connect();
    let mut bytes = zmtp_hello();
    bytes.push(0x02);
    bytes.extend_from_slice(&(17u64 << 20).to_be_bytes());
    bytes.extend_from_slice(&[b'x'; 4096]);
    big_message.write_all(&bytes).expect("write");
    // A real peer is served all the same.
    let feeder = py("push", &[&format!("tcp://127.0.0.1:{port}"), "10"]);
    let got = pull.join().expect("thread").expect("pull runs");
    assert_eq!(got.to_string(), "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
    assert_eq!(report(feeder), json!("sent"));
    drop((http, giant_command, giant_message, big_message));
}

/// The peak resident memory of process `pid` in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("number")
}

#[test]
fn a_stalled_subscriber_costs_the_publisher_bounded_memory() {
    // 300,000 messages of 1 KB (300 MB) to a subscriber that reads nothing:
    // past the high-water mark (1,000 per subscriber) PUB drops them.
    let mut publisher = Peer::netscript(&[
        "run",
        "-e",
        r#"let pub = zmq::socket("pub");
           pub.bind("tcp://127.0.0.1:0");
           let joined = zmq::socket("pull");
           joined.bind("tcp://127.0.0.1:0");
           print(`${pub.port} ${joined.port}`);
           // Until the subscriber has seen one message (and said so).
           loop { pub.send("sync"); try { joined.recv(0.01); break } catch (e) { } }
           let big = blob(1000, 120);
           for i in 0..300000 { pub.send(big) }
           print("done");
           task::sleep(30);"#,
    ]);
    let [pub_port, joined_port] = ports(&publisher)[..] else { panic!("{}", publisher.line) };
    let _sub = py("sub-stalled", &[&pub_port.to_string(), &joined_port.to_string()]);
    assert_eq!(publisher.next_line(), "done");
    let peak = peak_rss_kib(publisher.pid());
    println!("publisher peak RSS: {} MiB", peak / 1024);
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn net_select_waits_for_zmq_sockets_with_tcp_ones() {
    let got = eval(
        r#"let a = zmq::socket("pull");
           let ea = a.bind("tcp://127.0.0.1:0");
           let b = zmq::socket("pull");
           let eb = b.bind("tcp://127.0.0.1:0");
           let l = tcp::listen("127.0.0.1", 0);
           let out = [];
           out.push(net::select([a, b, l], 0.05).len());
           let push = zmq::socket("push");
           push.connect(eb);
           push.send("to b");
           let ready = net::select([a, b, l], 5);
           out.push(ready.len());
           out.push(ready[0].last_endpoint == eb);
           // The message select saw is the one recv returns.
           out.push(b.recv_string());
           out.push(net::select([a, b], 0.05).len());
           out"#,
    )
    .expect("script runs");
    assert_eq!(got.to_string(), r#"[0, 1, true, "to b", 0]"#);
}

#[test]
fn queuecrazy_script_runs_the_chapter_pipeline() {
    let (code, out, err) = crate::util::cli(&["run", "scripts/zmq_queuecrazy.rhai", "12"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<(u32, String)> = out
        .lines()
        .map(|l| {
            let (n, word) = l.split_once(' ').expect("N WORD");
            (n.parse().expect("processor number"), word.to_string())
        })
        .collect();
    assert_eq!(lines.len(), 12, "{out}");
    // PUSH deals the words out in turn: 4 to each of the 3 processors; each
    // processor's REQ alternates between the upper- and lower-case responders.
    for n in 1..=3 {
        let words: Vec<&String> = lines.iter().filter(|(p, _)| *p == n).map(|(_, w)| w).collect();
        assert_eq!(words.len(), 4, "{out}");
        let upper: Vec<bool> = words.iter().map(|w| w.chars().all(|c| c.is_ascii_uppercase())).collect();
        assert!(
            words
                .iter()
                .all(|w| w.chars().all(|c| c.is_ascii_lowercase()) || w.chars().all(|c| c.is_ascii_uppercase())),
            "{out}"
        );
        assert!(upper.windows(2).all(|p| p[0] != p[1]), "{out}");
    }
}

#[test]
fn python_pair_connects_to_a_script_pair_multipart_both_ways() {
    let port = closed_port();
    let peer = py("pair-connect", &[&port.to_string(), "5"]);
    let _served = eval(&script(
        r#"let p = zmq::socket("pair", #{timeout: 20});
           p.bind("tcp://127.0.0.1:@PORT");
           for n in 0..5 {
               let parts = p.recv_multipart();
               p.send_multipart([`got ${parts.len()}`, parts[0], parts[1].len().to_string(), parts[2]]);
           }
           p.send("last");
           p.type"#,
        &[("PORT", &port)],
    ))
    .expect("script pair runs");
    let mut expected: Vec<Value> = (0..5).map(|i| json!([hex("got 3"), hex(&i.to_string()), hex("256"), ""])).collect();
    expected.push(json!([hex("last")]));
    assert_eq!(report(peer), json!(expected));
}

#[test]
fn script_pair_connects_to_a_python_pair_multipart_both_ways() {
    let peer = py("pair-bound", &["4"]);
    let got = eval(&script(
        r#"let p = zmq::socket("pair", #{timeout: 20});
           p.connect("tcp://127.0.0.1:@PORT");
           let out = [];
           for i in 0..4 {
               p.send_multipart([`${i}`, blob(2, i), blob()]);
               out.push(p.recv_multipart().map(|x| bytes::to_hex(x)));
           }
           out.push(p.recv_string());
           out"#,
        &[("PORT", &peer.port)],
    ))
    .expect("script pair runs");
    let echoes: Vec<String> =
        (0..4).map(|i| format!(r#"["{}", "{}", "0{i}0{i}", ""]"#, hex("echo"), hex(&i.to_string()))).collect();
    assert_eq!(got.to_string(), format!(r#"[{}, "bye"]"#, echoes.join(", ")));
    let sent: Vec<Value> = (0..4).map(|i| json!([hex(&i.to_string()), format!("0{i}0{i}"), ""])).collect();
    assert_eq!(report(peer), json!(sent));
}

#[test]
fn a_script_pair_refuses_a_second_peer_until_the_first_goes() {
    let port = closed_port();
    let peers = py("pair-second", &[&port.to_string()]);
    let got = eval(&script(
        r#"let p = zmq::socket("pair", #{timeout: 20});
           p.bind("tcp://127.0.0.1:@PORT");
           let got = [];
           loop {
               let m = p.recv_string();
               got.push(m);
               p.send(`ack:${m}`);
               if m == "b:now" { break }
           }
           got"#,
        &[("PORT", &port)],
    ))
    .expect("script pair runs");
    let got: Vec<String> = got.into_typed_array::<String>().expect("strings");
    // While A held the place, nothing of B's came through (B sent before
    // A's second message); what B queued then may have been lost with a
    // refused connection, as with libzmq.
    assert_eq!(got[..2], ["a:hello", "a:after"], "{got:?}");
    assert!(got[2..] == ["b:now"] || got[2..] == ["b:intruder", "b:now"], "{got:?}");
    let seen = report(peers);
    assert_eq!(seen["a"], json!(["ack:a:hello", "ack:a:after"]));
    assert_eq!(seen["events"], json!(["handshake", "disconnected"]));
    assert_eq!(seen["b_early"], json!(0));
    let b_expected: Vec<String> = got[2..].iter().map(|m| format!("ack:{m}")).collect();
    assert_eq!(seen["b"], json!(b_expected));
}

#[test]
fn pipeline_script_runs_ventilator_workers_and_sink_as_tasks() {
    let (code, out, err) = crate::util::cli(&["run", "scripts/zmq_pipeline.rhai", "100", "4"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    // The workers all joined before the first task: PUSH dealt 25 to each.
    assert_eq!(
        lines,
        [
            "sink: 100 results from 4 workers, sum of squares 328350",
            "ventilator: 100 tasks sent",
            "worker w1 did 25 tasks",
            "worker w2 did 25 tasks",
            "worker w3 did 25 tasks",
            "worker w4 did 25 tasks",
        ]
    );
}

#[test]
fn pipeline_script_roles_as_processes_with_a_python_worker() {
    let script = "scripts/zmq_pipeline.rhai";
    let sink = Peer::netscript(&["run", script, "sink", "0", "0", "2"]);
    let [_, _, results, control] = sink.line.split(' ').collect::<Vec<_>>()[..] else { panic!("{}", sink.line) };
    let sink_url = format!("tcp://127.0.0.1:{results}");
    let control_url = format!("tcp://127.0.0.1:{control}");
    let port = closed_port().to_string();
    let ventilator_url = format!("tcp://127.0.0.1:{port}");
    let ventilator = Peer::netscript(&["run", script, "ventilator", &port, &sink_url, &control_url, "100"]);
    let python = py("pipeline-worker", &["py", &ventilator_url, &sink_url, &control_url]);
    let (code, out, err) = crate::util::cli(&["run", script, "worker", "ns", &ventilator_url, &sink_url, &control_url]);
    assert_eq!(code, 0, "{out}\n{err}");
    // Both workers said they were ready before the first task: 50 each.
    assert_eq!(out.trim(), "worker ns did 50 tasks");
    assert_eq!(report(python), json!(50));
    assert_eq!(sink.output().trim(), "sink: 100 results from 2 workers, sum of squares 328350");
    assert_eq!(ventilator.output().trim(), "ventilator: 100 tasks sent");
}

#[test]
fn pubsub_script_delivers_each_subscriber_exactly_its_topics() {
    let (code, out, err) = crate::util::cli(&["run", "scripts/zmq_pubsub.rhai", "40"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let published: std::collections::HashMap<&str, &str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("publisher "))
        .map(|l| l.split_once(':').expect("CITY: SUMMARY"))
        .collect();
    assert_eq!(published.len(), 3, "{out}");
    assert!(published.values().all(|s| s.starts_with(" 40 readings, mean ")), "{out}");
    // Each subscriber saw, for each city it subscribed to, what was published.
    for (who, cities) in
        [("all", &["berlin", "lima", "oslo"][..]), ("north", &["berlin", "oslo"]), ("south", &["lima"])]
    {
        let got: Vec<String> = out.lines().filter(|l| l.starts_with(&format!("{who} "))).map(str::to_string).collect();
        let expected: Vec<String> = cities.iter().map(|c| format!("{who} {c}:{}", published[c])).collect();
        assert_eq!(got, expected, "{out}");
    }
}

#[test]
fn reqrep_script_takes_turns_among_servers_of_its_own_and_python_ones() {
    let (code, out, err) = crate::util::cli(&["run", "scripts/zmq_reqrep.rhai", "6", "3"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let servers: Vec<&str> = out.lines().map(|l| l.split(' ').nth(2).expect("server name")).collect();
    assert_eq!(servers.len(), 6, "{out}");
    // Round robin: three different servers, then the same three again.
    assert_eq!(servers[..3], servers[3..], "{out}");
    let mut first = servers[..3].to_vec();
    first.sort_unstable();
    assert_eq!(first, ["server-1", "server-2", "server-3"], "{out}");
    assert!(out.lines().next().is_some_and(|l| l.starts_with("alpha -> server-") && l.ends_with(" alpha 5")), "{out}");
    // The client role against two pyzmq REP servers (they answer [tag, request]).
    let one = py("rep", &["one", "-1"]);
    let two = py("rep", &["two", "-1"]);
    let urls = [one.port, two.port].map(|p| format!("tcp://127.0.0.1:{p}"));
    let (code, out, err) = crate::util::cli(&["run", "scripts/zmq_reqrep.rhai", "client", "4", &urls[0], &urls[1]]);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    let first = if lines[0].contains("-> one") { "one" } else { "two" };
    let other = if first == "one" { "two" } else { "one" };
    assert_eq!(
        lines,
        [
            format!("alpha -> {first} alpha"),
            format!("beta -> {other} beta"),
            format!("gamma -> {first} gamma"),
            format!("delta -> {other} delta"),
        ]
    );
    // And the server role against a pyzmq REQ client, which sends
    // [i, 256·(i+1) bytes, ""] and reports long parts by their length.
    let port = closed_port().to_string();
    let server = Peer::netscript(&["run", "scripts/zmq_reqrep.rhai", "server", &port, "ns"]);
    assert_eq!(server.line, format!("server ns on {port}"));
    let replies = report(py("req", &[&port, "2"]));
    drop(server);
    assert_eq!(
        replies,
        json!([[hex("ns"), hex("0"), 256, "", hex("257")], [hex("ns"), hex("1"), 512, "", hex("513")]])
    );
}

#[test]
fn net_select_reports_a_zmq_socket_ready_for_every_queued_message() {
    // Each round takes the socket's lock three times; past tokio's
    // cooperative budget (128), a ready socket used to be left out.
    let got = eval(
        r#"let push = zmq::socket("push");
           let pull = zmq::socket("pull");
           push.connect(pull.bind("tcp://127.0.0.1:0"));
           for i in 0..300 { push.send(`${i}`) }
           let got = [];
           while got.len() < 300 {
               if net::select([pull], 5).is_empty() { break }
               got.push(parse_int(pull.recv_string()));
           }
           let in_order = true;
           for i in 0..got.len() { if got[i] != i { in_order = false } }
           [got.len(), in_order]"#,
    )
    .expect("script runs");
    assert_eq!(got.to_string(), "[300, true]");
}

//! TCP and UDP against real peers: Python socket servers and clients on
//! loopback, and the example scripts run by the built binary.

use crate::util::{Peer, cli, closed_port, eval};

/// A Python server that accepts one connection, runs `body` (with `c` the
/// connection), and exits.
fn py_server(body: &str) -> Peer {
    let body: String = body.lines().map(|l| format!("    {l}\n")).collect();
    Peer::start(&format!(
        "import socket, struct, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', 0))\ns.listen(5)\nprint(s.getsockname()[1])\nc, _ = s.accept()\nif True:\n{body}"
    ))
}

#[test]
fn mixed_reads_share_one_buffer_without_losing_bytes() {
    // The peer sends everything in odd-sized pieces with pauses.
    let peer = py_server(
        "data = b'line one\\r\\nline two\\n' + struct.pack('!I', 5) + b'hello' + b'tail-after-exact'\n\
         for i in range(0, len(data), 3):\n    c.sendall(data[i:i+3]); time.sleep(0.002)\nc.close()",
    );
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           let a = c.recv_line();
           let b = c.recv_line();
           let n = c.recv_exact(4);
           let body = c.recv_exact(5);
           let rest = c.recv_all();
           [a, b, n.len(), body.as_string(), rest.as_string()]"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"["line one", "line two", 4, "hello", "tail-after-exact"]"#);
}

#[test]
fn eof_in_the_middle_of_recv_exact_is_a_closed_error_and_keeps_the_bytes() {
    let peer = py_server("c.sendall(b'abc'); c.close()");
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           let kind = "";
           try {{ c.recv_exact(5); }} catch (e) {{ kind = e.kind; }}
           [kind, c.recv(10).as_string(), c.recv(10).len()]"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), r#"["closed", "abc", 0]"#);
}

#[test]
fn refused_connection_is_a_refused_error_naming_the_peer() {
    let port = closed_port();
    let err = eval(&format!(r#"tcp::connect("127.0.0.1", {port})"#)).unwrap_err();
    assert!(err.starts_with("refused: tcp::connect 127.0.0.1:"), "{err}");
    assert!(err.contains(&port.to_string()), "{err}");
}

#[test]
fn silent_peer_gives_a_timeout_error() {
    let peer = py_server("time.sleep(5)");
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           c.timeout = 0.2;
           let r = "no error";
           try {{ c.recv(10); }} catch (e) {{ r = `${{e.kind}} ${{e.op}} ${{e.peer}}`; }}
           r"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), format!("timeout recv 127.0.0.1:{}", peer.port));
}

#[test]
fn reset_by_peer_is_a_reset_error() {
    // SO_LINGER with a zero timeout makes close() send RST.
    let peer = py_server(
        "c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\ntime.sleep(0.2)\nc.close()",
    );
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           task::sleep(0.4);
           let r = "no error";
           try {{ c.send("x"); c.recv(10); }} catch (e) {{ r = e.kind; }}
           r"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), "reset");
}

#[test]
fn listening_on_a_taken_port_is_addr_in_use() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = eval(&format!(r#"tcp::listen("127.0.0.1", {port})"#)).unwrap_err();
    assert!(err.starts_with("addr_in_use: tcp::listen"), "{err}");
}

#[test]
fn unknown_host_is_a_dns_error() {
    let err = eval(r#"tcp::connect("no-such-host.invalid", 80)"#).unwrap_err();
    assert!(err.starts_with("dns: tcp::connect"), "{err}");
    assert!(err.contains("no-such-host.invalid"), "{err}");
}

#[test]
fn half_close_lets_the_peer_read_to_eof_then_reply() {
    let peer = py_server(
        "data = b''\nwhile True:\n    d = c.recv(100)\n    if not d: break\n    data += d\nc.sendall(b'%d bytes' % len(data))\nc.close()",
    );
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           c.send("0123456789");
           c.shutdown("write");
           c.recv_all().as_string()"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), "10 bytes");
}

#[test]
fn python_client_talks_to_a_script_server_over_ipv6() {
    // The script serves on ::1 and reports its port over a channel to a
    // Python client started from the test.
    let script = r#"
        let srv = tcp::listen("::1", 0).serve(|c| {
            let name = c.recv_line();
            c.send_line(`hello ${name}`);
        });
        print(srv.port);
        task::sleep(3);
    "#;
    let server = Peer::netscript(&["run", "-e", script]);
    let reply = crate::util::python(&format!(
        "import socket\nc = socket.create_connection(('::1', {}))\nc.sendall(b'py\\n')\nprint(c.makefile().readline().strip())",
        server.port
    ));
    assert_eq!(reply.trim(), "hello py");
}

#[test]
fn a_failing_handler_closes_only_its_connection() {
    let v = eval(
        r#"let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
               let l = c.recv_line();
               if l == "boom" { throw "handler failed"; }
               c.send_line(`ok ${l}`);
           });
           let a = tcp::connect("127.0.0.1", srv.port);
           a.send_line("boom");
           let first = a.recv(10).len();          // EOF: the server closed it
           let b = tcp::connect("127.0.0.1", srv.port);
           b.send_line("fine");
           [first, b.recv_line()]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[0, "ok fine"]"#);
}

#[test]
fn two_tasks_share_one_captured_connection() {
    // One task reads while the other writes on the same connection.
    let v = eval(
        r#"let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
               for i in 0..50 { let l = c.recv_line(); c.send_line(l + "!"); }
           });
           let c = tcp::connect("127.0.0.1", srv.port);
           let reader = task::start(|| { let got = []; for i in 0..50 { got.push(c.recv_line()) } got });
           let writer = task::start(|| { for i in 0..50 { c.send_line(`m${i}`); task::yield_now(); } });
           writer.join();
           let got = reader.join();
           [got.len(), got[0], got[49]]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[50, "m0!", "m49!"]"#);
}

#[test]
fn two_tasks_waiting_to_read_one_connection_are_both_woken() {
    // Three readers wait on one connection at once (the first through the
    // socket's waker slot, the others queued), with no timeout to rescue a
    // reader that is never woken; each line goes to exactly one of them.
    let v = eval(
        r#"let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
               c.recv_line();
               for i in 0..3 { task::sleep(0.05); c.send_line(`m${i}`); }
               c.recv_line();
           });
           let c = tcp::connect("127.0.0.1", srv.port);
           c.timeout = ();
           let readers = [];
           for i in 0..3 { readers.push(task::start(|| c.recv_line())); }
           task::sleep(0.05);
           c.send_line("go");
           let got = readers.map(|r| r.join());
           got.sort();
           c.send_line("done");
           got"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"["m0", "m1", "m2"]"#);
}

#[test]
fn udp_round_trip_with_a_python_peer() {
    let peer = Peer::start(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', 0))\n\
         print(s.getsockname()[1])\nd, a = s.recvfrom(100)\ns.sendto(d.upper(), a)",
    );
    let v = eval(&format!(
        r#"let u = udp::bind("127.0.0.1", 0);
           u.send_to("ping", "127.0.0.1", {});
           let m = u.recv_from(2);
           [m.data.as_string(), m.host, m.port]"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(v.to_string(), format!(r#"["PING", "127.0.0.1", {}]"#, peer.port));
}

#[test]
fn udp_recv_timeout() {
    let err = eval(r#"let u = udp::bind("127.0.0.1", 0); u.recv_from(0.1)"#).unwrap_err();
    assert!(err.starts_with("timeout: recv_from"), "{err}");
}

#[test]
fn select_reports_only_readable_handles() {
    let v = eval(
        r#"let srv = tcp::listen("127.0.0.1", 0).serve(|c| { c.send_line(c.recv_line()); task::sleep(1); });
           let a = tcp::connect("127.0.0.1", srv.port);
           let b = tcp::connect("127.0.0.1", srv.port);
           b.send_line("wake");
           let ready = net::select([a, b], 2.0);
           let none = net::select([a], 0.1);
           [ready.len(), ready[0].local == b.local, none.len()]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), "[1, true, 0]");
}

#[test]
fn tasks_join_cancel_and_channels() {
    let v = eval(
        r#"let t = task::start(|| 6 * 7);
           let failing = task::start(|| { throw #{kind: "custom", message: "bad"}; });
           let kind = "";
           try { failing.join() } catch (e) { kind = e.kind }
           let sleeper = task::start(|| { task::sleep(10); "woke" });
           sleeper.cancel();
           let cancelled = "";
           try { sleeper.join() } catch (e) { cancelled = e.kind }
           let ch = task::channel(2);
           task::start(|| { for i in 0..5 { ch.send(i) } ch.close() });
           let sum = 0;
           for v in ch { sum += v }
           [t.join(), kind, cancelled, sum]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[42, "custom", "cancelled", 10]"#);
}

#[test]
fn permissions_forbid_connecting_and_listening() {
    let host = netscript::Host::builder().permissions(netscript::Permissions::none()).build().unwrap();
    let e = host.run_source("p.rhai", r#"tcp::connect("127.0.0.1", 80)"#, &[]).unwrap_err();
    assert_eq!(e.kind(), "permission");
    let e = host.run_source("p.rhai", r#"tcp::listen("127.0.0.1", 0)"#, &[]).unwrap_err();
    assert_eq!(e.kind(), "permission");
}

#[test]
fn limits_stop_runaway_scripts() {
    let limits = netscript::Limits { max_operations: 10_000, ..netscript::Limits::default() };
    let host = netscript::Host::builder().limits(limits).build().unwrap();
    assert_eq!(host.run_source("l.rhai", "loop {}", &[]).unwrap_err().kind(), "limit");
    let limits = netscript::Limits { deadline: Some(std::time::Duration::from_millis(200)), ..Default::default() };
    let host = netscript::Host::builder().limits(limits).build().unwrap();
    let e = host.run_source("d.rhai", "task::sleep(5)", &[]).unwrap_err();
    assert_eq!((e.kind(), e.message()), ("limit", "the run exceeded its deadline of 200ms"));
    let e = host.run_source("d.rhai", "loop {}", &[]).unwrap_err();
    assert_eq!(e.kind(), "limit");
}

#[test]
fn cli_exit_codes_and_error_rendering() {
    let (code, out, _) = cli(&["run", "-e", "print(`args ${ARGS}`)", "a", "b"]);
    assert_eq!((code, out.trim()), (0, r#"args ["a", "b"]"#));
    let src = "let x = 1;\nlet l = tcp::listen(\"127.0.0.1\", 0);\nl.accept(0.05);\n";
    let (code, _, err) = crate::util::cli_stdin(&["run", "-"], src);
    assert_eq!(code, 1);
    let first = err.lines().next().unwrap();
    assert!(first.starts_with("<stdin>:3:3: timeout: accept 127.0.0.1:"), "{err}");
    assert!(first.ends_with(": timed out after 50ms"), "{err}");
    assert!(err.contains("3 | l.accept(0.05);\n      ^"), "{err}");
    let (code, _, err) = cli(&["run", "--no-such-flag", "x.rhai"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(&["run", "-e", "let = ;"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("<eval>:1:"), "{err}");
    assert!(err.contains("syntax:"), "{err}");
    // A top-level name used inside a function: the message says how to reach it.
    let (code, _, err) = cli(&["run", "-e", "const K = 7; fn f() { K } print(f());"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("<eval>:1:23: script: Variable not found: K (a function sees only its parameters"),
        "{err}"
    );
    assert!(err.contains("`global::K`"), "{err}");
    let (code, out, err) = cli(&["run", "-e", "const K = 7; fn f() { global::K } print(f());"]);
    assert_eq!((code, out.trim()), (0, "7"), "{err}");
}

#[test]
fn shebang_scripts_run_directly() {
    let dir = std::env::temp_dir().join(format!("ns-shebang-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hello.rhai");
    std::fs::write(&script, "#!/usr/bin/env netscript\nprint(\"hi from shebang\");\n").unwrap();
    let (code, out, err) = cli(&[script.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, "hi from shebang"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn example_scripts_run() {
    let (code, out, err) = cli(&["run", "scripts/demo.rhai"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("20 concurrent clients echoed"), "{out}");
    assert!(out.contains("half-close reply: 27 bytes received"), "{out}");
    assert!(out.contains("caught refused"), "{out}");
    assert!(out.contains("\"netscript demo\" links to https://localhost:"), "{out}");
    assert!(out.contains("which answers id 7"), "{out}");
    let (code, out, err) = cli(&["run", "scripts/half_close.rhai"]);
    assert_eq!((code, out.trim()), (0, "got 43 bytes; last word: dog"), "{err}");
    let (code, out, err) = cli(&["run", "scripts/udp_ping.rhai"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("pong ")).count(), 3, "{out}");
}

#[test]
fn echo_server_and_client_scripts_talk() {
    let server = Peer::netscript(&["run", "scripts/echo_server.rhai", "0"]);
    let (code, out, err) = cli(&["run", "scripts/echo_client.rhai", &server.port.to_string(), "alpha", "beta"]);
    assert_eq!((code, out.as_str()), (0, "echo: alpha\necho: beta\n"), "{err}");
}

#[test]
fn chat_relay_broadcasts_between_python_clients() {
    let server = Peer::netscript(&["run", "scripts/chat_relay.rhai", "0"]);
    let out = crate::util::python(&format!(
        "import socket, time\n\
         a = socket.create_connection(('127.0.0.1', {port})); fa = a.makefile()\n\
         b = socket.create_connection(('127.0.0.1', {port})); fb = b.makefile()\n\
         joined = fa.readline().strip()\n\
         a.sendall(b'hi all\\n')\n\
         print(joined.startswith('* 127.0.0.1:'), joined.endswith('joined'))\n\
         print(fb.readline().strip().endswith('> hi all'))",
        port = server.port
    ));
    assert_eq!(out, "True True\nTrue\n");
}

#[test]
fn family_and_socket_options() {
    let v = eval(
        r#"let l = tcp::listen("::1", 0);
           let c = tcp::connect("::1", l.port, #{family: "inet6", nodelay: true, keepalive: 30});
           let s = l.accept(2);
           [c.peer, s.local == c.peer]"#,
    )
    .unwrap();
    assert!(v.to_string().starts_with(r#"["[::1]:"#), "{v}");
    assert!(v.to_string().ends_with("true]"), "{v}");
    let err = eval(r#"tcp::connect("127.0.0.1", 80, #{family: "inet6"})"#).unwrap_err();
    assert!(err.starts_with("dns: tcp::connect"), "{err}");
    let err = eval(r#"tcp::connect("127.0.0.1", 80, #{timout: 1})"#).unwrap_err();
    assert!(err.contains("unknown option 'timout'"), "{err}");
}

#[test]
fn ctrl_c_cancels_a_blocked_run_cleanly() {
    let (child, line) = crate::util::netscript_first_line(&[
        "run",
        "-e",
        "print(\"waiting\"); let l = tcp::listen(\"127.0.0.1\", 0); l.accept();",
    ]);
    assert_eq!(line.trim(), "waiting");
    let status = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cancelled: the run was cancelled"), "{err}");
}

#[test]
fn script_typed_methods_win_over_native_ones_per_receiver_type() {
    // `fn Conn.recv` shadows the native `recv` on connections only; the
    // native methods still serve everything else. Repeated calls alternate
    // receiver types, so a per-type lookup cache must keep them apart.
    let peer = py_server("c.sendall(b'ok'); c.recv(1)");
    let v = eval(&format!(
        r#"fn Conn.recv(n) {{ `script recv ${{n}}` }}
           fn blob.tag() {{ "blob" }}
           fn string.tag() {{ "string" }}
           let c = tcp::connect("127.0.0.1", {});
           let out = [];
           for i in 0..3 {{
               out.push(c.recv(i));
               out.push(blob(1).tag());
               out.push("s".tag());
           }}
           out.push(c.recv_exact(2).as_string());
           out.push(type_of(c));
           c.close();
           out"#,
        peer.port
    ))
    .unwrap();
    assert_eq!(
        v.to_string(),
        r#"["script recv 0", "blob", "string", "script recv 1", "blob", "string", "script recv 2", "blob", "string", "ok", "Conn"]"#
    );
}

#[test]
fn reads_after_a_short_read_wait_for_more_data_without_missing_it() {
    // A read that returns less than it had room for marks the socket drained
    // (no syscall spent on EAGAIN next time). Data arriving right after such
    // a read, or much later, or together with the peer's close, must still
    // wake the next `recv`; a 4 KB piece exercises a read that fills the room.
    let peer = py_server(
        "c.sendall(b'a'); time.sleep(0.05)\n\
         c.sendall(b'b'); c.sendall(b'c'); time.sleep(0.3)\n\
         c.sendall(b'x' * 4096); time.sleep(0.05)\n\
         c.sendall(b'end'); c.close()",
    );
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {});
           c.timeout = 5;
           let out = [];
           while true {{
               let d = c.recv(65536);
               if d.len() == 0 {{ break }}
               out.push(d.len());
           }}
           let total = 0;
           for n in out {{ total += n }}
           total"#,
        peer.port
    ))
    .unwrap();
    // A missed wake-up would end in a `timeout` error instead.
    assert_eq!(v.to_string(), "4102");
}

/// Run one of the Python peers of `tests/peers/` with `args`.
fn py_peer(file: &str, args: &[&str]) -> Peer {
    let path = crate::util::repo_root().join("tests/peers").join(file);
    let argv: Vec<String> =
        std::iter::once(path.display().to_string()).chain(args.iter().map(|a| a.to_string())).collect();
    Peer::start(&format!("import runpy, sys\nsys.argv = {argv:?}\nrunpy.run_path(sys.argv[0], run_name='__main__')"))
}

/// Run `tests/peers/abuse.py` with `args` to completion; its standard output.
fn abuse(args: &[&str]) -> String {
    let out = std::process::Command::new("python3")
        .arg(crate::util::repo_root().join("tests/peers/abuse.py"))
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "abuse.py {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the slow-drip peers send, one byte every 0.2 s (about 21 s in all):
/// a length prefix announcing a 100-byte frame, then letters, no newline.
const DRIP: &str =
    "\0\0\0dabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv";

#[test]
fn a_slow_drip_peer_cannot_hold_a_call_past_its_timeout() {
    // Each call gets a byte every 0.2 s but not what it waits for: the 1 s
    // timeout bounds the call as a whole, and the bytes that trickled in
    // stay buffered, in order, for the next read.
    let hex: String = DRIP.bytes().map(|b| format!("{b:02x}")).collect();
    let peer = py_peer("slow_peer.py", &["drip", "0.2", &hex]);
    let netstrings = py_peer("slow_peer.py", &["drip", "0.2", &hex.replacen("00000064", "3130303a", 1)]);
    let calls = [
        ("recv_exact", "c.recv_exact(200)"),
        ("recv_line", "c.recv_line()"),
        ("recv_until", r#"c.recv_until("\r\n\r\n")"#),
        ("recv_all", "c.recv_all()"),
        ("recv_frame", "c.recv_frame()"),
        ("recv_netstring", "c.recv_netstring()"),
    ];
    let tasks: String = calls
        .iter()
        .map(|(name, call)| {
            let port = if *name == "recv_netstring" { netstrings.port } else { peer.port };
            format!(
                r#"tasks.push(task::start(|| {{
                       let c = tcp::connect("127.0.0.1", {port});
                       c.timeout = 1;
                       let r = "returned";
                       try {{ {call}; }} catch (e) {{ r = `${{e.kind}} ${{e.op}} ${{e.message}}`; }}
                       [r, c.recv(1000)]
                   }}));"#
            )
        })
        .collect();
    let started = std::time::Instant::now();
    let v = eval(&format!("let tasks = []; {tasks} tasks.map(|t| t.join())")).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    let results = v.into_array().unwrap();
    for ((name, _), result) in calls.iter().zip(results) {
        let result = result.into_array().unwrap();
        let error = result[0].to_string();
        assert!(error.starts_with(&format!("timeout {name} {name} 127.0.0.1:")), "{name}: {error}");
        assert!(error.contains("timed out after 1s ("), "{name}: {error}");
        let kept = result[1].clone().into_blob().unwrap();
        let sent: Vec<u8> =
            if *name == "recv_netstring" { [b"100:", &DRIP.as_bytes()[4..]].concat() } else { DRIP.into() };
        assert!(kept.len() >= 2 && sent.starts_with(&kept), "{name}: kept {kept:?}");
    }
}

#[test]
fn send_to_a_slow_reader_times_out_as_a_whole() {
    // The reader takes 2 MB every half second: each wait of `send` ends
    // within the timeout, the whole 64 MB would take far longer.
    let peer = py_peer("slow_peer.py", &["sink", "0.5", "2000000"]);
    let started = std::time::Instant::now();
    let v = eval(&format!(
        r#"let c = tcp::connect("127.0.0.1", {}, #{{timeout: 1}});
           let r = "sent";
           try {{ c.send(blob(64000000)); }} catch (e) {{ r = `${{e.kind}} ${{e.op}} ${{e.message}}`; }}
           r"#,
        peer.port
    ))
    .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    let r = v.to_string();
    assert!(r.starts_with("timeout send send 127.0.0.1:") && r.ends_with(": timed out after 1s"), "{r}");
}

#[test]
fn connect_timeout_option_sets_the_connection_timeout() {
    // As Python's create_connection(addr, timeout): `timeout` also bounds
    // every later call; `connect_timeout` bounds the connect alone.
    let hex: String = DRIP.bytes().map(|b| format!("{b:02x}")).collect();
    let peer = py_peer("slow_peer.py", &["drip", "0.2", &hex]);
    let started = std::time::Instant::now();
    let v = eval(&format!(
        r#"let p = {};
           let c = tcp::connect("127.0.0.1", p, #{{timeout: 1}});
           let r = "returned";
           try {{ c.recv_exact(200); }} catch (e) {{ r = e.kind; }}
           [c.timeout, r,
            tcp::connect("127.0.0.1", p).timeout,
            tcp::connect("127.0.0.1", p, #{{connect_timeout: 1}}).timeout,
            tcp::connect("127.0.0.1", p, #{{connect_timeout: 1, timeout: 2.5}}).timeout,
            tcp::connect("127.0.0.1", p, #{{timeout: ()}}).timeout]"#,
        peer.port
    ))
    .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(v.to_string(), r#"[1.0, "timeout", 30.0, 30.0, 2.5, ()]"#);
}

/// An echo server that listens at once but serves only after reading a
/// line from its first connection (so connections can queue unaccepted).
const SERVE_ON_SIGNAL: &str = r#"let l = tcp::listen("127.0.0.1", 0);
print(l.port);
let ctl = l.accept();
ctl.recv_line();
let srv = l.serve(|c| { loop { let d = c.recv(4096); if d.len() == 0 { break } c.send(d); } });
ctl.send_line("serving");
srv.wait();"#;

#[test]
fn connections_reset_before_accept_do_not_stall_the_accept_loop() {
    // 500 connections reset while queued: each fails as it is accepted
    // ("Transport endpoint is not connected"). They are skipped at once (a
    // pause per failure would hold the probe's connection for seconds past
    // its 5 s timeout), and none is reported.
    let (mut server, line) = crate::util::netscript_first_line(&["run", "-e", SERVE_ON_SIGNAL]);
    let out = abuse(&["queued", line.trim(), "500"]);
    let _ = server.kill();
    let output = server.wait_with_output().unwrap();
    assert!(out.starts_with("ok "), "{out}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("accept failed"), "{stderr}");
}

#[test]
fn a_flood_of_failing_handlers_is_summarised_on_stderr() {
    // 300 handlers fail; stderr shows the first few failures and a count of
    // the rest, which together account for every one of them.
    let script = r#"let n = 0;
        let srv = tcp::listen("127.0.0.1", 0).serve(|c| { n += 1; throw "boom"; });
        for i in 0..300 { tcp::connect("127.0.0.1", srv.port).close(); }
        while n < 300 { task::sleep(0.01); }
        task::sleep(0.1);
        srv.stop();
        task::sleep(0.1);"#;
    let (code, _, err) = cli(&["run", "-e", script]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() <= 12, "{} lines:\n{err}", lines.len());
    let mut accounted = 0;
    for line in &lines {
        if line.contains(": handler for 127.0.0.1:") && line.ends_with("failed: boom") {
            accounted += 1;
        } else if let Some(rest) = line.split(": … ").nth(1) {
            let count: String = rest.split(' ').next().unwrap().replace(',', "");
            assert!(rest.contains(" more handler errors in the last "), "{line}");
            accounted += count.parse::<usize>().unwrap_or_else(|_| panic!("{line}"));
        } else {
            panic!("unexpected line {line:?}");
        }
    }
    assert_eq!(accounted, 300, "{err}");
}

#[test]
fn soak_resets_and_garbage_leave_the_echo_server_as_it_was() {
    // Three rounds of 2,000 connections reset at once or after garbage,
    // while a well-behaved client probes with a new connection every 1 ms.
    let server = Peer::netscript(&["run", "scripts/echo_server.rhai", "0"]);
    let out = abuse(&["soak", &server.port.to_string(), &server.pid().to_string(), "3", "2000"]);
    println!("soak figures: {out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["failures"], serde_json::json!([]), "{out}");
    let (fd_base, rss_base) = (r["fd_base"].as_u64().unwrap(), r["rss_base_mb"].as_f64().unwrap());
    let rounds = r["rounds"].as_array().unwrap();
    for round in rounds {
        assert!(round["probes"].as_u64().unwrap() > 0, "{out}");
        assert_eq!(round["connected"], 2000, "{out}");
        assert!(round["fd_after"].as_u64().unwrap() <= fd_base, "descriptors leaked: {out}");
        assert!(round["rss_after_mb"].as_f64().unwrap() < rss_base + 16.0, "memory grew: {out}");
    }
    let rss = |i: usize| rounds[i]["rss_after_mb"].as_f64().unwrap();
    assert!(rss(2) < rss(0) + 4.0, "memory grows round after round: {out}");
    assert!(r["p99_ms"].as_f64().unwrap() < 50.0, "the probe's p99 is 50 ms or more: {out}");
}

#[test]
fn running_out_of_descriptors_backs_off_and_recovers() {
    // With 64 descriptors, 100 held connections exhaust them: accept fails
    // with EMFILE, which pauses accepting (and is reported a few times, not
    // once per retry) until the clients let go; then the server serves again.
    let mut server = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 64 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_netscript")])
        .args(["run", "scripts/echo_server.rhai", "0"])
        .current_dir(crate::util::repo_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(server.stdout.as_mut().unwrap()), &mut line).unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_string();
    let out = abuse(&["hold", &port, "100", "2"]);
    let _ = server.kill();
    let output = server.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(out.starts_with("ok "), "{out}\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.iter().any(|l| l.contains("accept failed: Too many open files")), "{stderr}");
    assert!(lines.len() <= 6, "{stderr}");
}

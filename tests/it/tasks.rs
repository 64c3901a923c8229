//! Tasks under pressure: deadlines, cancellation and Ctrl-C during long
//! native calls, the task ceiling, call depth, bad channel capacities, and how
//! long a lone task polls for a reply before it sleeps (`--spin`).

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netscript::{Host, Limits};

use crate::util::cli;

/// Hashing this much takes many seconds on any machine (0.2 GB per call, 100
/// calls), so a run that ends within the bounds below was stopped, not done.
const LONG_HASHING: &str = "let b = blob(200000000); print(\"ready\"); for i in 0..1000 { hash::sha256(b) }";

/// How soon a stopped run must end: the hashing above (and the task's
/// below) would take minutes, so ending well within this shows it stopped,
/// also on a machine loaded by other builds.
const STOPPED: Duration = Duration::from_secs(60);

fn sigint(child: &Child) {
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs").success();
    assert!(ok, "kill -INT failed");
}

/// Wait for `child` to exit within `bound`; its status code and standard error.
fn exit_within(mut child: Child, bound: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut err);
            return (status.code(), err);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netscript did not exit within {bound:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_deadline_stops_hashing_a_large_blob() {
    let started = Instant::now();
    let (code, _, err) = cli(&["run", "--deadline", "1", "-e", LONG_HASHING]);
    assert!(started.elapsed() < STOPPED, "took {:?}", started.elapsed());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("limit: the run exceeded its deadline of 1s"), "{err}");
}

#[test]
fn cancelling_a_task_stops_its_long_native_call() {
    let host = Host::builder().build().unwrap();
    let started = Instant::now();
    let kind = host
        .run_source(
            "c.rhai",
            r#"
            let b = blob(200000000);
            let t = task::start(|| { for i in 0..1000 { hash::sha256(b) } "finished" });
            task::sleep(0.2);
            t.cancel();
            let kind = "";
            try { t.join() } catch (e) { kind = e.kind }
            // The event loop went on meanwhile: small work is inline and correct.
            kind + " " + hex::encode(hash::sha256("abc"))
            "#,
            &[],
        )
        .unwrap();
    assert!(started.elapsed() < STOPPED, "took {:?}", started.elapsed());
    assert_eq!(
        kind.into_string().unwrap(),
        "cancelled ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn a_cancellation_that_arrives_with_a_timer_is_never_lost() {
    // Each worker's waits end on their own wake (a 1 ms timer), so the
    // cancellation often lands in the same tick as the timer; every one of
    // them must still stop (the driver once dropped such cancellations).
    let lost = crate::util::eval(
        r#"
        let lost = 0;
        for round in 0..20 {
            let ts = [];
            for i in 0..20 { ts.push(task::start(|| { for j in 0..200 { task::sleep(0.001) } "finished" })); }
            task::sleep(0.03);
            for t in ts { t.cancel(); }
            for t in ts { try { t.join(); lost += 1; } catch (e) { if e.kind != "cancelled" { throw e } } }
        }
        lost
        "#,
    )
    .unwrap();
    assert_eq!(lost.as_int().unwrap(), 0, "tasks finished although cancelled");
}

#[test]
fn large_offloaded_results_match_python() {
    // Over the offload threshold: hashing, compression and JSON run on the
    // blocking pool and give the same bytes as CPython.
    let script = r#"
        let b = blob(3000000, 0x61);
        let z = zlib::decompress(zlib::compress(b));
        let j = json::decode(json::encode([b.as_string()]));
        print(hex::encode(hash::sha256(b)));
        print(hash::crc32(b));
        print(z == b);
        print(j[0].len());
    "#;
    let (code, out, err) = cli(&["run", "-e", script]);
    assert_eq!(code, 0, "{err}");
    let py = crate::util::python(
        "import hashlib, zlib; b = b'a' * 3000000; print(hashlib.sha256(b).hexdigest()); print(zlib.crc32(b)); print('true'); print(3000000)",
    );
    assert_eq!(out, py);
}

#[test]
fn one_ctrl_c_cancels_a_long_native_call() {
    let (child, _) = crate::util::netscript_first_line(&["run", "-e", LONG_HASHING]);
    sigint(&child);
    let (code, err) = exit_within(child, STOPPED);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cancelled"), "{err}");
}

#[test]
fn two_ctrl_c_exit_a_run_at_once() {
    let (child, _) = crate::util::netscript_first_line(&["run", "-e", LONG_HASHING]);
    sigint(&child);
    sigint(&child);
    // Either the first Ctrl-C's cancellation or the second's exit wins; the
    // run never goes on hashing.
    let (code, err) = exit_within(child, STOPPED);
    assert!(matches!(code, Some(1 | 130)), "{code:?} {err}");
}

#[test]
fn the_second_ctrl_c_exits_even_when_the_first_was_handled() {
    // The test runner goes on to the next case after a cancelled one; the
    // second Ctrl-C ends the whole process with status 130.
    let dir = std::env::temp_dir().join(format!("netscript-tasks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("sleepy_test.rhai");
    std::fs::write(
        &file,
        "fn test_a() { print(\"a\"); task::sleep(60); }\nfn test_b() { print(\"b\"); task::sleep(60); }\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netscript"))
        .args(["test", "--timeout", "120", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netscript starts");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 {
        let l = line.trim().to_string();
        line.clear();
        if l == "a" {
            sigint(&child);
        }
        seen.push(l.clone());
        if l == "b" {
            sigint(&child);
            break;
        }
    }
    assert!(seen.iter().any(|l| l == "b"), "the runner did not go on to the next case: {seen:?}");
    let (code, err) = exit_within(child, STOPPED);
    assert_eq!(code, Some(130), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_task_that_cannot_be_created_is_a_limit_error() {
    let limits = Limits { max_tasks: 10, ..Limits::default() };
    let host = Host::builder().limits(limits).build().unwrap();
    let v = host
        .run_source(
            "t.rhai",
            r#"
            let ts = [];
            let err = ();
            try { for i in 0..20 { ts.push(task::start(|| task::sleep(5))) } } catch (e) { err = e }
            for t in ts { t.cancel() }
            [ts.len(), err.kind, err.message]
            "#,
            &[],
        )
        .unwrap()
        .into_array()
        .unwrap();
    // The main script counts as one task.
    assert_eq!(v[0].as_int().unwrap(), 9);
    assert_eq!(v[1].clone().into_string().unwrap(), "limit");
    let message = v[2].clone().into_string().unwrap();
    assert!(message.starts_with("task::start: too many tasks: 10 are running and the task ceiling is 10"), "{message}");
    assert!(message.contains("two memory mappings"), "{message}");
    // Uncaught, from the command line.
    let (code, _, err) = cli(&["run", "--max-tasks", "3", "-e", "for i in 0..5 { task::start(|| task::sleep(5)) }"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("limit: task::start: too many tasks"), "{err}");
}

#[test]
fn a_server_over_the_task_ceiling_closes_the_connection_and_says_why() {
    let script = r#"
        let l = tcp::listen("127.0.0.1", 0);
        print(l.port);
        l.serve(|c| { c.send("hi\n"); task::sleep(30); });
        task::sleep(30);
    "#;
    let (mut child, line) = crate::util::netscript_first_line(&["run", "--max-tasks", "2", "-e", script]);
    let port = line.trim();
    // The main script and the first handler fill the ceiling of 2; the
    // second connection gets no handler and is closed.
    let out = crate::util::python(&format!(
        "import socket\n\
         a = socket.create_connection(('127.0.0.1', {port}), timeout=10)\n\
         print(a.recv(10))\n\
         b = socket.create_connection(('127.0.0.1', {port}), timeout=10)\n\
         print(b.recv(10))\n"
    ));
    assert_eq!(out, "b'hi\\n'\nb''\n");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("serve: too many tasks: 2 are running and the task ceiling is 2"), "{err}");
}

#[test]
fn the_main_script_recurses_as_deep_as_python_and_tasks_stop_cleanly() {
    let f = "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } }";
    let (code, out, err) = cli(&["run", "-e", &format!("{f} print(f(999));")]);
    assert_eq!((code, out.trim()), (0, "999"), "{err}");
    // Deeper is a limit error, reported, not a crash.
    let (code, _, err) = cli(&["run", "-e", &format!("{f} print(f(5000));")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("limit: Stack overflow"), "{err}");
    // A task has a smaller stack and stops at its own depth, catchably.
    let (code, out, err) = cli(&[
        "run",
        "-e",
        &format!("{f} let t = task::start(|| f(900)); try {{ t.join() }} catch (e) {{ print(e) }}"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Stack overflow"), "{out}");
    let (code, out, err) = cli(&["run", "-e", &format!("{f} print(task::start(|| f(30)).join());")]);
    assert_eq!((code, out.trim()), (0, "30"), "{err}");
}

#[test]
fn call_levels_above_the_cap_are_a_usage_error() {
    let (code, _, err) = cli(&["run", "--max-call-levels", "5000", "-e", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("--max-call-levels is at most 1000"), "{err}");
    let deep = Limits { max_call_levels: 5000, ..Limits::default() };
    let e = Host::builder().limits(deep).build().err().expect("a host deeper than its stack does not build");
    assert!(e.message().contains("at most 1000"), "{}", e.message());
    let f = "fn f(n) { if n == 0 { 0 } else { 1 + f(n - 1) } }";
    let (code, _, err) = cli(&["run", "--max-call-levels", "20", "-e", &format!("{f} f(50)")]);
    assert_eq!(code, 1);
    assert!(err.contains("limit: Stack overflow"), "{err}");
}

#[test]
fn bad_channel_capacities_are_value_errors() {
    let host = Host::builder().build().unwrap();
    for cap in ["9223372036854775807", "1099511627776", "65537", "0", "-1"] {
        let e = host.run_source("ch.rhai", &format!("task::channel({cap})"), &[]).unwrap_err();
        assert_eq!(e.kind(), "value", "{cap}");
        assert!(e.message().contains("capacity must be between 1 and 65536"), "{cap}: {}", e.message());
    }
    assert!(host.run_source("ch.rhai", "task::channel(65536).len", &[]).is_ok());
}

#[test]
fn tasks_and_workers_see_the_scripts_global_constants() {
    let v = crate::util::eval(
        r#"
        const LIMIT = 7;
        fn limit() { global::LIMIT }
        let t = task::start(|| limit() * 6);
        let pool = worker::pool(1);
        [t.join(), pool.map(|n| n + limit(), [1])[0]]
    "#,
    )
    .expect("runs");
    assert_eq!(v.to_string(), "[42, 8]");
}

/// A lone task waiting 1 s for a reply that never comes.
const LONE_WAIT: &str = r#"
let l = tcp::listen("127.0.0.1", 0);
let c = tcp::connect("127.0.0.1", l.port);
let quiet = l.accept();
c.timeout = 1;
let t = timestamp();
try { c.recv(10); } catch (e) { print(`${e.kind} ${t.elapsed >= 1.0 && t.elapsed < 1.5}`); }
"#;

/// The same wait with a second task waiting alongside.
const TWO_WAITS: &str = r#"
let l = tcp::listen("127.0.0.1", 0);
let other = task::start(|| { let c = tcp::connect("127.0.0.1", l.port); c.timeout = 1; try { c.recv(10) } catch { } });
let c = tcp::connect("127.0.0.1", l.port);
let quiet = [l.accept(), l.accept()];
c.timeout = 1;
let t = timestamp();
try { c.recv(10); } catch (e) { print(`${e.kind} ${t.elapsed >= 1.0 && t.elapsed < 1.5}`); }
other.join();
"#;

/// Run `script` with `--spin` set to `spin` (or left at its default),
/// through bash so that `times` reports the run's CPU time: its output and
/// the CPU seconds (user + system).
fn spin_run(spin: Option<&str>, script: &str) -> (String, f64) {
    let flag = spin.map_or(String::new(), |s| format!("--spin {s}"));
    let out = Command::new("bash")
        .args(["-c", &format!("\"$0\" run {flag} -e \"$1\"; times"), env!("CARGO_BIN_EXE_netscript"), script])
        .output()
        .expect("bash runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let printed = lines.next().unwrap_or_default().to_string();
    // `times`: the shell's own user and system time, then its children's.
    let children = lines.nth(1).unwrap_or_else(|| panic!("no times in {text:?}"));
    let seconds = |t: &str| {
        let (m, s) = t.trim_end_matches('s').split_once('m').expect("XmY.YYYs");
        m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
    };
    (printed, children.split_whitespace().map(seconds).sum())
}

#[test]
fn a_lone_task_polls_for_its_reply_up_to_the_spin_limit_then_sleeps() {
    // Spinning through the whole wait takes CPU, and the timeout still
    // fires on time (the timers are polled too).
    let (out, cpu) = spin_run(Some("2s"), LONE_WAIT);
    assert_eq!(out, "timeout true");
    assert!(cpu >= 0.3, "a 1 s wait under --spin 2s took only {cpu} s of CPU");
    // Spinning stops at its limit, and the rest of the wait sleeps.
    let (out, cpu) = spin_run(Some("200ms"), LONE_WAIT);
    assert_eq!(out, "timeout true");
    assert!(cpu < 0.8, "a 1 s wait under --spin 200ms took {cpu} s of CPU");
    // The default (50 µs) and 0 sleep through the wait.
    for spin in [None, Some("0")] {
        let (out, cpu) = spin_run(spin, LONE_WAIT);
        assert_eq!(out, "timeout true", "--spin {spin:?}");
        assert!(cpu < 0.3, "a 1 s wait under --spin {spin:?} took {cpu} s of CPU");
    }
    // Only a lone task spins: two waiting tasks leave the thread to sleep.
    let (out, cpu) = spin_run(Some("2s"), TWO_WAITS);
    assert_eq!(out, "timeout true");
    assert!(cpu < 0.3, "two tasks' 1 s waits under --spin 2s took {cpu} s of CPU");
    let (code, _, err) = cli(&["run", "--spin", "soon", "-e", "1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid value 'soon' for '--spin <DURATION>'"), "{err}");
}

#[test]
fn no_task_spins_while_the_process_runs_workers() {
    // The lone wait of LONE_WAIT, with a worker sleeping alongside: the
    // threads compete for the cores, so neither the main task nor the
    // worker's polls through its wait.
    let script = format!("let w = worker::start(|| {{ sleep(1.2); 1 }});\n{LONE_WAIT}\nw.join();");
    let (out, cpu) = spin_run(Some("2s"), &script);
    assert_eq!(out, "timeout true");
    assert!(cpu < 0.3, "a 1 s wait beside a worker under --spin 2s took {cpu} s of CPU");
    // Once the workers are gone, a lone task spins again.
    let script = format!("worker::start(|| 1).join();\n{LONE_WAIT}");
    let (out, cpu) = spin_run(Some("2s"), &script);
    assert_eq!(out, "timeout true");
    assert!(cpu >= 0.3, "a 1 s wait after a worker ended under --spin 2s took only {cpu} s of CPU");
}

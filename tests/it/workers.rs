//! `worker::`, `--workers N` and `mapreduce::`: values crossing between
//! hosts, failures staying in their worker, threads cleaned up, the kernel
//! spreading connections over `--workers`, and map-reduce jobs checked
//! against Python, the Hadoop Streaming contract (`sort` between the
//! phases) and Apache Spark.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::util::{Peer, cli, eval, python, repo_root};

#[test]
fn values_cross_as_equal_copies_both_ways() {
    let v = eval(
        r#"
        let deep = #{text: "héllo wörld ✓ 日本", n: -7, f: 2.5, c: '√', yes: true, none: (),
                     blob: bytes::from_hex("00ff10"), list: [[1, [2, [3, #{k: [4]}]]], "x"]};
        let nested = [];
        for i in 0..100 { nested = [nested]; }
        deep.nested = nested;
        // As an argument and a result, then through send/recv both ways.
        let back = worker::start(|v| v, [deep]).join();
        let w = worker::start(|| { let p = worker::parent(); let v = p.recv(); p.send(v); v.n });
        w.send(deep);
        let echoed = w.recv();
        [back == deep, echoed == deep, w.join(), type_of(back.blob)]
        "#,
    )
    .expect("script runs");
    assert_eq!(v.to_string(), r#"[true, true, -7, "blob"]"#);
}

#[test]
fn captured_variables_are_copied_not_shared() {
    let v = eval(
        r#"
        let counter = [1];
        let w = worker::start(|| { counter.push(2); counter });
        let theirs = w.join();
        [theirs, counter]
        "#,
    )
    .expect("script runs");
    assert_eq!(v.to_string(), "[[1, 2], [1]]");
}

#[test]
fn a_handle_cannot_cross() {
    for code in [
        r#"let l = tcp::listen("127.0.0.1", 0); worker::start(|| l.port)"#,
        r#"let l = tcp::listen("127.0.0.1", 0); worker::start(|x| x, [l])"#,
        r#"let l = tcp::listen("127.0.0.1", 0); let w = worker::start(|| worker::parent().recv()); w.send(#{l: l})"#,
        r#"worker::start(|| tcp::listen("127.0.0.1", 0)).join()"#,
    ] {
        let err = eval(code).expect_err(code);
        assert!(err.starts_with("value: ") && err.contains("Listener cannot cross"), "{code}: {err}");
    }
}

#[test]
fn a_failing_worker_reports_its_error_and_line_and_the_parent_goes_on() {
    let v = eval(
        r#"
        let w = worker::start(|| {
            let x = 1;
            tcp::connect("127.0.0.1", 1)
        });
        let e = ();
        try { w.join() } catch (err) { e = err }
        [e.kind, e.line, e.worker == w.id, e.worker > 0, w.alive, "parent still runs"]
        "#,
    )
    .expect("script runs");
    assert_eq!(v.to_string(), r#"["refused", 4, true, true, false, "parent still runs"]"#);
}

#[test]
fn a_script_file_runs_as_a_worker_with_its_args() {
    let dir = std::env::temp_dir().join(format!("netscript-worker-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ok = dir.join("double.rhai");
    // A `#!` line, then a script that talks to its parent and returns.
    std::fs::write(
        &ok,
        "#!/usr/bin/env -S netscript run\nlet p = worker::parent();\np.send(`worker ${worker::id()} got ${ARGS}`);\nARGS[0] * 2\n",
    )
    .expect("script");
    let bad = dir.join("bad.rhai");
    std::fs::write(&bad, "#!/usr/bin/env -S netscript run\nlet x = 1;\n\ntcp::connect(\"127.0.0.1\", 1)\n")
        .expect("script");
    let v = eval(&format!(
        r#"
        let w = worker::start({ok:?}, [21, "x"]);
        let said = w.recv(5);
        let doubled = w.join();
        let e = ();
        try {{ worker::start({bad:?}).join() }} catch (err) {{ e = err }}
        let missing = ();
        try {{ worker::start({missing:?}).join() }} catch (err) {{ missing = err }}
        [said == `worker ${{w.id}} got [21, "x"]`, doubled, e.kind, e.line, missing.kind, missing.message]
        "#,
        ok = ok.display().to_string(),
        bad = bad.display().to_string(),
        missing = dir.join("missing.rhai").display().to_string(),
    ))
    .expect("script runs");
    let missing = dir.join("missing.rhai").display().to_string();
    assert_eq!(
        v.to_string(),
        format!(r#"[true, 42, "refused", 4, "io", "worker::start {missing}: no such file or directory"]"#)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn terminate_stops_a_busy_worker() {
    let v = eval(
        r#"
        let w = worker::start(|| { let n = 0; loop { n += 1 } });
        task::sleep(0.05);
        let before = w.alive;
        w.terminate();
        let e = ();
        try { w.join(5) } catch (err) { e = err }
        [before, w.alive, e.kind]
        "#,
    )
    .expect("script runs");
    assert_eq!(v.to_string(), r#"[true, false, "cancelled"]"#);
}

#[test]
fn limits_and_permissions_apply_inside_workers() {
    let limits = netscript::Limits { max_operations: 50_000, ..netscript::Limits::default() };
    let permissions = netscript::Permissions::allow_net(["127.0.0.2"]).expect("an entry");
    let host = netscript::Host::builder().limits(limits).permissions(permissions).build().expect("host");
    let v = host
        .run_source(
            "<test>",
            r#"
            let spin = worker::start(|| { let n = 0; loop { n += 1 } });
            let dial = worker::start(|| tcp::connect("127.0.0.1", 9));
            let out = [];
            try { spin.join(10) } catch (e) { out.push(`${e}`.contains("operations")) }
            try { dial.join(10) } catch (e) { out.push(e.kind) }
            out
            "#,
            &[],
        )
        .expect("the parent survives its workers' failures");
    assert_eq!(v.to_string(), r#"[true, "permission"]"#);
}

/// Threads of process `pid` (from `/proc/PID/status`).
fn threads(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok()).expect("Threads:")
}

#[test]
fn a_hundred_workers_started_and_joined_leave_no_threads_behind() {
    let script = |n: usize| {
        format!(
            r#"let ws = []; for i in 0..{n} {{ ws.push(worker::start(|i| i * 2, [i])) }}
               let sum = 0; for w in ws {{ sum += w.join() }}
               let p = worker::pool(4); let m = p.map(|x| x, range(0, 100)); p.close(); p.join();
               print(`ready ${{sum}} ${{m.len()}} :0`); task::sleep(30);"#
        )
    };
    let idle = Peer::netscript(&["run", "-e", &script(0)]);
    let busy = Peer::netscript(&["run", "-e", &script(100)]);
    assert_eq!(busy.line, "ready 9900 100 :0");
    assert_eq!(threads(busy.pid()), threads(idle.pid()), "threads left behind by 100 workers and a pool");
}

#[test]
fn pool_map_keeps_input_order_and_names_the_failing_item() {
    let v = eval(
        r#"
        let pool = worker::pool(2);
        let squares = pool.map(|n| n * n, range(0, 11));
        let single = pool.map(|s| s + "!", ["a", "b", "c"], 1);
        let any = pool.map_unordered(|n| n * 10, [1, 2, 3]);
        any.sort();
        let e = ();
        try { pool.map(|n| 10 / (n - 3), range(0, 8)) } catch (err) { e = err }
        [squares, single, any, pool.apply(|a, b| a * b, [6, 7]), e, pool.size]
        "#,
    )
    .expect("script runs");
    let ours = v.to_string();
    let python = python("print([n * n for n in range(11)])");
    assert!(ours.starts_with(&format!("[{}, ", python.trim())), "{ours} against {python}");
    assert!(ours.contains(r#"["a!", "b!", "c!"], [10, 20, 30], 42, "item 3: Division by zero"#), "{ours}");
    assert!(ours.ends_with(", 2]"), "{ours}");
}

#[test]
fn pool_map_counts_out_ranges_and_calls_a_scripts_functions_constants_and_captures() {
    // Each worker runs its own copy of the closure (its library, constants
    // and captured values allocated anew): what it calls and reads must be
    // the same as in the script.
    let v = eval(
        r#"
        const SUFFIX = "!";
        fn shout(s) { s.to_upper() + global::SUFFIX }
        let pool = worker::pool(2);
        let sep = "-";
        let words = pool.map(|w| shout(w) + sep, ["ab", "cd", "ef"], 1);
        let inclusive = pool.map(|n| n, -2..=2);
        let sums = [pool.map(|n| n, 0..1000).reduce(|a, b| a + b, 0), pool.map(|n| n * 2, 5..=7)];
        let empty = [pool.map(|n| n, 3..3), pool.map(|n| n, 5..3)];
        // One chunk, one set of resolution caches: each item's `+` is still
        // the one for its type.
        let mixed = pool.map(|v| v + v, [1, "a", 2.5, [1], 3, "b"], 6);
        let e = ();
        try { pool.map(|n| n, 0..100000000000) } catch (err) { e = err.kind }
        [words, inclusive, sums, empty, e, mixed]
        "#,
    )
    .expect("script runs");
    assert_eq!(
        v.to_string(),
        r#"[["AB!-", "CD!-", "EF!-"], [-2, -1, 0, 1, 2], [499500, [10, 12, 14]], [[], []], "limit", [2, "aa", 5.0, [1, 1], 6, "bb"]]"#
    );
}

#[test]
fn two_workers_share_a_port_and_both_serve() {
    let mut server = Peer::netscript(&[
        "run",
        "--workers",
        "2",
        "-e",
        r#"let l = tcp::listen("127.0.0.1", parse_int(ARGS[0]));
           print(`worker ${worker::id()} serving on 127.0.0.1:${l.port}`);
           l.serve(|c| c.send_line(`worker ${worker::id()}`)).wait();"#,
        &crate::util::closed_port().to_string(),
    ]);
    // Both have bound the port before the first client connects.
    assert!(server.next_line().contains("serving on"));
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let c = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        let mut line = String::new();
        BufReader::new(c).read_line(&mut line).expect("reply");
        *seen.entry(line.trim().to_string()).or_insert(0) += 1;
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), ["worker 0", "worker 1"], "{seen:?}");
}

/// A text of `lines` lines of words (mixed case, punctuation, Unicode), from Python.
fn text(lines: usize) -> String {
    python(&format!(
        r#"
import random
r = random.Random(7)
words = ["the", "The", "cat", "hat,", "naïve", "日本", "don't", "a", "b", "x" * 20]
for i in range({lines}):
    print(" ".join(r.choice(words) for _ in range(r.randint(0, 12))) + ("\t" if i % 5 == 0 else ""))
"#
    ))
}

/// Python's word count of `path` as sorted `word\tcount` lines.
fn python_wordcount(path: &std::path::Path) -> String {
    python(&format!(
        r#"
import collections
c = collections.Counter()
for line in open({:?}, encoding="utf-8"):
    c.update(line.lower().split())
for w in sorted(c, key=lambda w: w.encode()):
    print(f"{{w}}\t{{c[w]}}")
"#,
        path.display().to_string()
    ))
}

#[test]
fn wordcount_matches_python_locally_and_through_the_streaming_contract() {
    let dir = std::env::temp_dir().join(format!("netscript-wordcount-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("input.txt");
    std::fs::write(&input, text(3000)).expect("input");
    let expected = python_wordcount(&input);
    assert!(expected.lines().count() > 5);

    // All cores, in one process.
    let (status, local, stderr) =
        cli(&["mapreduce", "scripts/wordcount.rhai", "--input", input.to_str().expect("path"), "--workers", "2"]);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(local, expected);

    // Hadoop Streaming: map | LC_ALL=C sort | reduce, as separate processes.
    let bin = env!("CARGO_BIN_EXE_netscript");
    let pipeline = format!(
        "{bin} mapreduce scripts/wordcount.rhai --phase map < {input} | LC_ALL=C sort | {bin} mapreduce scripts/wordcount.rhai --phase reduce",
        input = input.display()
    );
    let out = Command::new("sh").arg("-c").arg(&pipeline).current_dir(repo_root()).output().expect("sh runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);

    // A run that spills sorted runs to disk, over splits of 997 bytes (so
    // most splits start and end inside a line), gives the same counts; so
    // does a map function of the `emit` form over splits of 13 bytes, and
    // one that returns the words alone.
    for (map, opts) in [
        (
            r#"|l| { let p = []; for w in l.to_lower().split() { if w != "" { p.push([w, 1]) } } p }"#,
            "#{sorted: true, max_memory: 2000, split: 997, workers: 3}",
        ),
        (
            r#"|l, emit| { for w in l.to_lower().split() { if w != "" { emit.call(w, 1) } } }"#,
            "#{sorted: true, split: 13}",
        ),
        // Bare keys, each counting 1.
        (r#"|l| if l == "" { [] } else { l.to_lower().split() }"#, "#{sorted: true, split: 4096, workers: 2}"),
    ] {
        let code = format!(
            "let r = mapreduce::run(ARGS[0], {map}, |w, ones| ones.len(), {opts});\n\
             for kv in r {{ print(kv[0] + \"\\t\" + kv[1]) }}"
        );
        let (status, out, stderr) = cli(&["run", "-e", &code, input.to_str().expect("path")]);
        assert_eq!(status, 0, "{code}: {stderr}");
        assert_eq!(out, expected, "{code}");
    }

    // The emit form through the streaming contract too.
    let job = dir.join("emit.rhai");
    std::fs::write(
        &job,
        "fn map(line, emit) { for w in line.to_lower().split() { if w != \"\" { emit.call(w, 1) } } }\n\
         fn reduce(w, counts) { let t = 0; for n in counts { t += n } t }\n",
    )
    .expect("job");
    let pipeline = format!(
        "{bin} mapreduce {job} --phase map < {input} | LC_ALL=C sort | {bin} mapreduce {job} --phase reduce",
        job = job.display(),
        input = input.display()
    );
    let out = Command::new("sh").arg("-c").arg(&pipeline).current_dir(repo_root()).output().expect("sh runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_scripts_run() {
    let (status, out, stderr) = cli(&["run", "scripts/squares.rhai"]);
    assert_eq!(status, 0, "{stderr}");
    let sum: i64 = (0..=10).map(|n| n * n).sum();
    assert_eq!(out, format!("squares [0, 1, 4, 9, 16, 25, 36, 49, 64, 81, 100]\nsum {sum}\nmapreduce {sum}\n"));

    let (status, out, stderr) = cli(&["run", "scripts/probe_many.rhai"]);
    assert_eq!(status, 0, "{stderr}");
    // Every port the script listens on answers with its banner; every
    // port is counted once. (Another test may hold a port of the block, so
    // the script says how many endpoints it started.)
    let started: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("started ")?.strip_suffix(" endpoints")?.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((8..=10).contains(&started), "{out}");
    assert_eq!(out.matches(" open hello from 127.0.0.1:").count(), started, "{out}");
    let states: usize = out.lines().filter_map(|l| l.split_once(": ").and_then(|(_, n)| n.parse::<usize>().ok())).sum();
    assert_eq!(states, 30, "{out}");

    // Totals and the ten most frequent words, as Python's Counter has them.
    let input = std::env::temp_dir().join(format!("netscript-wordcount-script-{}.txt", std::process::id()));
    std::fs::write(&input, text(2000)).expect("input");
    let expected = python(&format!(
        r#"
import collections
c = collections.Counter()
for line in open({:?}, encoding="utf-8"):
    c.update(line.lower().split())
print(f"{{sum(c.values())}} words, {{len(c)}} distinct")
for w, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:10]:
    print(f"{{n}}\t{{w}}")
"#,
        input.display().to_string()
    ));
    let (status, out, stderr) = cli(&["run", "scripts/wordcount.rhai", input.to_str().expect("path")]);
    let _ = std::fs::remove_file(&input);
    assert_eq!(status, 0, "{stderr}");
    assert_eq!(out, expected);
}

/// Whether `python3 -c "import pyspark"` works and `java` runs.
fn have_spark() -> bool {
    let ok = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    ok(Command::new("java").arg("-version")) && ok(Command::new("python3").args(["-c", "import pyspark"]))
}

#[test]
fn the_same_job_runs_on_spark_through_pipe() {
    if !have_spark() {
        eprintln!("SKIPPED: pyspark or Java 17 is not installed (tests/run installs both)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("netscript-spark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = dir.join("input.txt");
    std::fs::write(&input, text(2000)).expect("input");
    let expected = python_wordcount(&input);
    let bin = env!("CARGO_BIN_EXE_netscript");
    let job = repo_root().join("scripts/wordcount.rhai").display().to_string();
    let code = format!(
        r#"
import sys
from pyspark import SparkConf, SparkContext
conf = SparkConf().setMaster("local[2]").setAppName("wordcount").set("spark.ui.enabled", "false")
sc = SparkContext(conf=conf)
sc.setLogLevel("ERROR")
mapper = "{bin} mapreduce {job} --phase map"
reducer = "{bin} mapreduce {job} --phase reduce"
pairs = sc.textFile({input:?}, 2).pipe(mapper)
# The shuffle: every key to one partition, sorted within it, as Hadoop does.
keyed = pairs.map(lambda l: (l.split("\t", 1)[0], l))
def partition(key):
    import zlib
    return zlib.crc32(key.encode())
shuffled = keyed.repartitionAndSortWithinPartitions(2, partition, keyfunc=lambda k: k.encode())
out = shuffled.map(lambda kv: kv[1]).pipe(reducer).collect()
sc.stop()
for line in sorted(out, key=lambda l: l.split("\t", 1)[0].encode()):
    print(line)
"#,
        input = input.display().to_string()
    );
    let out = Command::new("python3")
        .args(["-c", &code])
        .env("PYSPARK_PYTHON", "python3")
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "spark failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let _ = std::fs::remove_dir_all(&dir);
}

//! `netscript load`: executors' arithmetic, checks, thresholds and the exit
//! status, summaries that merge exactly, and the metrics transports record,
//! against the project's own echo server (a separate process), its HTTP
//! server and memcached on loopback. Times are generous: precise figures
//! belong in `bench/load`.

use crate::util::{Peer, cli};
use serde_json::Value;

/// A scratch directory for one test's scenario and summaries.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("netscript-load-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Write `scenario` into `dir` and run `netscript load` on it with `flags`,
/// the summary written as JSON; (status, stdout, stderr, summary).
fn load(dir: &std::path::Path, scenario: &str, flags: &[&str]) -> (i32, String, String, Value) {
    let file = dir.join("scenario.rhai");
    std::fs::write(&file, scenario).expect("scenario written");
    let json = dir.join(format!("summary-{}.json", flags.join("_").replace(['/', ' '], "-")));
    let _ = std::fs::remove_file(&json);
    let mut args = vec!["load", "--quiet", "--summary-json", json.to_str().unwrap(), file.to_str().unwrap()];
    args.extend_from_slice(flags);
    let (status, out, err) = cli(&args);
    let summary =
        std::fs::read_to_string(&json).map_or(Value::Null, |s| serde_json::from_str(&s).expect("summary is JSON"));
    (status, out, err, summary)
}

/// A figure of a metric in a JSON summary (0 when the metric is absent).
fn figure(summary: &Value, metric: &str, field: &str) -> f64 {
    summary["metrics"][metric][field].as_f64().unwrap_or(0.0)
}

fn echo_server() -> Peer {
    Peer::netscript(&["run", "scripts/echo_server.rhai", "0"])
}

/// An iteration against the echo server at `PORT` (given as ARGS[0]):
/// connect once per VU, send a line, check the echo.
const ECHO_ITERATION: &str = r#"
const PORT = parse_int(ARGS[0]);
fn iteration(data, vu) {
    if vu.conn == () { vu.conn = tcp::connect("127.0.0.1", global::PORT, #{ timeout: 5 }); }
    let line = `${vu.id}:${vu.iteration}`;
    vu.conn.send_line(line);
    load::check(vu.conn.recv_line(), #{ "echo": |l| l == line });
}
"#;

#[test]
fn constant_arrival_rate_starts_its_iterations_on_schedule() {
    let echo = echo_server();
    let dir = scratch("rate");
    let scenario = format!(
        "{ECHO_ITERATION}\nconst options = #{{ scenarios: #{{ open: #{{ executor: \"constant-arrival-rate\", \
         rate: 200, timeUnit: \"1s\", duration: \"5s\", preAllocatedVUs: 5, maxVUs: 20 }} }} }};"
    );
    let (status, out, err, s) = load(&dir, &scenario, &[&echo.port.to_string()]);
    assert_eq!(status, 0, "{out}\n{err}");
    let iterations = figure(&s, "iterations", "sum");
    assert!((990.0..=1010.0).contains(&iterations), "200/s for 5 s started {iterations} iterations");
    assert_eq!(figure(&s, "dropped_iterations", "sum"), 0.0, "{out}");
    assert_eq!(figure(&s, "checks", "count"), iterations, "one check per iteration");
    assert_eq!(figure(&s, "checks", "rate"), 1.0, "every echo came back intact");
    assert_eq!(figure(&s, "data_sent", "sum"), figure(&s, "data_received", "sum"), "echoed byte for byte");
    assert!(figure(&s, "vus_max", "value") <= 20.0);
    assert!(out.contains("iterations") && out.contains("✓ echo"), "{out}");
}

#[test]
fn an_open_model_counts_the_iterations_it_could_not_start() {
    let dir = scratch("dropped");
    // A target slowed down to answer after 0.1 s, and two VUs at most: at
    // most ~20 iterations a second can run, of the 100 a second that come due.
    let scenario = r#"
        const options = #{ scenarios: #{ slow: #{ executor: "constant-arrival-rate", rate: 100,
            duration: "2s", preAllocatedVUs: 2, maxVUs: 2 } } };
        fn setup() {
            let server = tcp::listen("127.0.0.1", 0).serve(|c| {
                loop { let l = c.recv_line(); if l == () { break } task::sleep(0.1); c.send_line(l); }
            });
            server.port
        }
        fn iteration(port, vu) {
            if vu.conn == () { vu.conn = tcp::connect("127.0.0.1", port); }
            vu.conn.send_line("slow?");
            load::check(vu.conn.recv_line(), #{ "answered": |l| l == "slow?" });
        }
    "#;
    let (status, out, err, s) = load(&dir, scenario, &[]);
    assert_eq!(status, 0, "{out}\n{err}");
    let (started, dropped) = (figure(&s, "iterations", "sum"), figure(&s, "dropped_iterations", "sum"));
    assert_eq!(started + dropped, 200.0, "every arrival is started or dropped: {started} + {dropped}");
    assert!(dropped >= 120.0, "a slowed target drops arrivals: {dropped} dropped, {started} started");
    assert!(started >= 20.0, "{started}");
    assert_eq!(figure(&s, "checks", "rate"), 1.0, "the slow answers still came: {s}");
}

#[test]
fn closed_model_executors_run_their_counts() {
    let dir = scratch("closed");
    let scenario = r#"
        const options = #{ scenarios: #{
            each: #{ executor: "per-vu-iterations", vus: 3, iterations: 4, exec: "each" },
            pooled: #{ executor: "shared-iterations", vus: 4, iterations: 10, exec: "pooled" },
            ramp: #{ executor: "ramping-vus", startVUs: 0, stages: [#{ duration: "1s", target: 4 },
                #{ duration: "1s", target: 4 }, #{ duration: "500ms", target: 0 }], exec: "ramp" },
        } };
        fn each(data, vu) { load::counter("by_vu").add(1, #{ vu: `${vu.id}` }); task::sleep(0.01); }
        fn pooled() { load::counter("shared_done").add(1); task::sleep(0.01); }
        fn ramp(data, vu) { load::gauge("ramp_vu").add(vu.id); task::sleep(0.05); }
    "#;
    let (status, out, err, s) = load(&dir, scenario, &[]);
    assert_eq!(status, 0, "{out}\n{err}");
    for vu in 1..=3 {
        assert_eq!(figure(&s, &format!("by_vu{{vu:{vu}}}"), "sum"), 4.0, "VU {vu} ran its 4: {s}");
    }
    assert_eq!(figure(&s, "shared_done", "sum"), 10.0);
    assert_eq!(figure(&s, "iterations{scenario:each}", "sum"), 12.0);
    assert_eq!(figure(&s, "iterations{scenario:pooled}", "sum"), 10.0);
    assert_eq!(figure(&s, "ramp_vu", "max"), 4.0, "the ramp reached 4 VUs and no more");
    assert!(figure(&s, "iterations{scenario:ramp}", "sum") > 20.0);
}

#[test]
fn thresholds_set_the_exit_status() {
    let echo = echo_server();
    let dir = scratch("thresholds");
    let port = echo.port.to_string();
    let passing = format!(
        "{ECHO_ITERATION}\nconst options = #{{ iterations: 50, vus: 2, thresholds: #{{ \
         \"checks\": [\"rate == 1\"], \"iteration_duration\": [\"p(95) < 2000\", \"max < 5000\"], \
         \"errors{{kind:timeout}}\": [\"count < 1\"], \"iterations\": [\"count == 50\"] }} }};"
    );
    let (status, out, err, s) = load(&dir, &passing, &[&port]);
    assert_eq!(status, 0, "{out}\n{err}");
    assert_eq!(s["passed"], Value::Bool(true));
    assert_eq!(s["thresholds"].as_array().map(Vec::len), Some(5));
    assert!(out.contains("✓ iterations: count == 50"), "{out}");

    let failing = passing.replace("count == 50", "count > 50");
    let (status, out, _, s) = load(&dir, &failing, &[&port]);
    assert_eq!(status, 99, "a failed threshold exits 99: {out}");
    assert_eq!(s["passed"], Value::Bool(false));
    assert!(out.contains("✗ iterations: count > 50 (got 50)"), "{out}");

    // A rule that cannot be read is a value error before anything runs.
    let (status, _, err, _) = load(&dir, &passing.replace("p(95) < 2000", "p95 < 2000"), &[&port]);
    assert_eq!(status, 1);
    assert!(err.contains("value") && err.contains("p95 < 2000"), "{err}");
}

#[test]
fn abort_on_fail_stops_the_run_early() {
    let dir = scratch("abort");
    let scenario = r#"
        const options = #{ vus: 2, duration: "60s", thresholds: #{
            "errors": [#{ threshold: "count < 3", abortOnFail: true }] } };
        fn iteration() { task::sleep(0.05); throw "always fails"; }
    "#;
    let t0 = std::time::Instant::now();
    let (status, out, err, s) = load(&dir, scenario, &[]);
    assert_eq!(status, 99, "{out}\n{err}");
    assert!(t0.elapsed().as_secs() < 30, "a 60 s run aborted after {:?}", t0.elapsed());
    assert!(s["aborted"].as_str().is_some_and(|a| a.contains("count < 3")), "{s}");
    assert!(figure(&s, "errors{kind:script}", "sum") >= 3.0);
    assert!(err.contains("always fails"), "the first errors are printed: {err}");
}

#[test]
fn segments_merge_into_the_counts_of_one_run() {
    let dir = scratch("segments");
    // Values that do not depend on which VU ran what: VU ids and their
    // iteration numbers are the same in a whole run and in its segments.
    let scenario = r#"
        const options = #{
            scenarios: #{
                common: #{ executor: "shared-iterations", vus: 3, iterations: 101 },
                each: #{ executor: "per-vu-iterations", vus: 5, iterations: 20, exec: "each" },
                open: #{ executor: "constant-arrival-rate", rate: 50, duration: "1s", preAllocatedVUs: 4, exec: "open" },
            },
            thresholds: #{ "work": ["count == 151"], "size": ["max < 1000"] },
        };
        fn iteration() { load::counter("work").add(1); }
        fn each(data, vu) { load::trend("size").add(vu.id * 100 + vu.iteration); }
        fn open() { load::counter("work").add(1); }
    "#;
    let (status, out, err, whole) = load(&dir, scenario, &[]);
    assert_eq!(status, 0, "{out}\n{err}");
    let mut parts = Vec::new();
    for seg in ["1/3", "2/3", "3/3"] {
        let (status, _, _, part) = load(&dir, scenario, &["--segment", seg]);
        assert_eq!(status, 99, "each third alone fails count == 151");
        assert!(figure(&part, "work", "sum") < 151.0);
        parts.push(dir.join(format!("summary-{}.json", format!("--segment_{seg}").replace('/', "-"))));
    }
    let merged_json = dir.join("merged.json");
    let mut args = vec!["load", "--summary-json", merged_json.to_str().unwrap(), "--merge"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let (status, out, err) = cli(&args);
    assert_eq!(status, 0, "the merged thresholds pass: {out}\n{err}");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    for (metric, field) in [("work", "sum"), ("iterations", "sum"), ("size", "count"), ("size", "sum"), ("size", "max")]
    {
        assert_eq!(figure(&merged, metric, field), figure(&whole, metric, field), "{metric}.{field}");
    }
    assert_eq!(figure(&merged, "work", "sum"), 151.0);
    assert_eq!(figure(&merged, "size", "count"), 100.0);
    // The sizes are 100..=119, 200..=219, …, 500..=519: each quantile is the
    // nearest-rank sample, up to the histogram's three significant digits.
    let mut sizes: Vec<f64> = (1..=5).flat_map(|id| (0..20).map(move |i| f64::from(id * 100 + i))).collect();
    sizes.sort_by(f64::total_cmp);
    for (q, share) in [("med", 0.5), ("p(90)", 0.9), ("p(99)", 0.99)] {
        let want = sizes[(share * sizes.len() as f64).ceil() as usize - 1];
        let got = figure(&whole, "size", q);
        assert!((got - want).abs() <= want * 0.001, "{q} of the whole run: {got}, the samples' {want}");
        assert_eq!(figure(&merged, "size", q), got, "histograms merge exactly: {q}");
    }
    assert_eq!(merged["segments"], serde_json::json!(["1/3", "2/3", "3/3"]));
    assert!(out.contains("✓ work: count == 151"), "{out}");
}

#[test]
fn a_merge_keeps_samples_larger_than_the_first_part_held() {
    let dir = scratch("grow");
    // Two runs of the same trend: 1..=10, then 100001..=100010. The merged
    // histogram starts as the first part's and must grow to hold the second.
    let scenario = "const options = #{ iterations: 10 };\nconst BASE = parse_int(ARGS[0]);\n\
                    fn iteration(data, vu) { load::trend(\"t\").add(global::BASE + vu.iteration + 1); }";
    let mut parts = Vec::new();
    for base in ["0", "100000"] {
        let (status, out, err, _) = load(&dir, scenario, &[base]);
        assert_eq!(status, 0, "{out}\n{err}");
        parts.push(dir.join(format!("summary-{base}.json")));
    }
    let merged_json = dir.join("merged.json");
    let mut args = vec!["load", "--quiet", "--summary-json", merged_json.to_str().unwrap(), "--merge"];
    args.extend(parts.iter().map(|p| p.to_str().unwrap()));
    let (status, out, err) = cli(&args);
    assert_eq!(status, 0, "{out}\n{err}");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&merged_json).unwrap()).unwrap();
    assert_eq!(figure(&merged, "t", "count"), 20.0);
    // Nearest rank of the twenty: the 10th is 10, the 18th 100008, the 20th 100010.
    for (q, want) in [("med", 10.0), ("p(90)", 100_008.0), ("p(99)", 100_010.0)] {
        let got = figure(&merged, "t", q);
        assert!((got - want).abs() <= want * 0.001, "{q}: {got}, the samples' {want}: {merged}");
    }
}

#[test]
fn percentiles_of_slow_responses_are_their_durations() {
    let dir = scratch("slow");
    // The server waits as long as the query says: 10, 20, …, 100 ms, one
    // request each. The percentiles (and the thresholds on them) must be
    // those durations, whatever their size.
    let scenario = r#"
        fn setup() {
            let server = http::listen("127.0.0.1", 0).serve(|req| {
                task::sleep(parse_int(req.query_string) / 1000.0);
                "slow"
            });
            `http://127.0.0.1:${server.port}/`
        }
        fn iteration(url, vu) {
            if vu.client == () { vu.client = http::session(); }
            vu.client.get(url + "?" + (vu.iteration + 1) * 10);
        }
        const options = #{
            scenarios: #{ steps: #{ executor: "per-vu-iterations", vus: 1, iterations: 10 } },
            thresholds: #{ "http_req_duration": ["p(90) < 80"], "http_req_waiting": ["med > 40"] },
        };
    "#;
    let (status, out, err, s) = load(&dir, scenario, &[]);
    assert_eq!(status, 99, "p(90) < 80 fails: the 9th of 10 answers, fastest first, took 90 ms: {out}\n{err}");
    assert!(out.contains("✗ http_req_duration: p(90) < 80"), "{out}");
    assert!(out.contains("✓ http_req_waiting: med > 40"), "{out}");
    // Nearest rank of ten samples, each its server wait plus our overhead.
    let at = |q: &str| figure(&s, "http_req_duration", q);
    for (q, least) in [("min", 10.0), ("med", 50.0), ("p(90)", 90.0), ("p(99)", 100.0), ("max", 100.0)] {
        assert!(at(q) >= least * 0.999, "{q} is at least {least} ms: {s}");
    }
    assert!(at("min") < at("med") && at("med") < at("p(90)") && at("p(99)") <= at("max"), "{s}");
}

#[test]
fn failed_iterations_count_by_error_kind() {
    let dir = scratch("kinds");
    let closed = crate::util::closed_port();
    let scenario = format!(
        "const options = #{{ iterations: 5 }};\n\
         fn iteration() {{ tcp::connect(\"127.0.0.1\", {closed}, #{{ timeout: 2 }}); }}"
    );
    let (status, out, err, s) = load(&dir, &scenario, &[]);
    assert_eq!(status, 0, "no thresholds, no failure status: {out}\n{err}");
    assert_eq!(figure(&s, "errors{kind:refused}", "sum"), 5.0, "{s}");
    assert_eq!(figure(&s, "iterations", "sum"), 5.0);
    assert!(out.contains("errors{kind:refused}"), "{out}");
    assert!(err.contains("refused") && err.contains(&closed.to_string()), "the error names the peer: {err}");
}

#[test]
fn http_requests_record_their_durations_by_status() {
    let dir = scratch("http");
    let scenario = r#"
        fn setup() {
            let server = http::listen("127.0.0.1", 0).serve(|req| if req.path == "/" { "hello" } else { http::not_found() });
            `http://127.0.0.1:${server.port}`
        }
        fn iteration(base, vu) {
            if vu.client == () { vu.client = http::session(); }
            let ok = vu.client.get(base + "/");
            load::check(ok, #{ "200": |r| r.status == 200, "body": |r| r.text() == "hello" });
            vu.client.get(base + "/missing");
        }
        const options = #{ vus: 2, iterations: 20, thresholds: #{
            "http_req_duration{status:200}": ["p(99) < 5000"], "http_req_failed": ["rate < 0.6"] } };
    "#;
    let (status, out, err, s) = load(&dir, scenario, &[]);
    assert_eq!(status, 0, "{out}\n{err}");
    assert_eq!(figure(&s, "http_reqs", "sum"), 40.0);
    assert_eq!(figure(&s, "http_reqs{status:200}", "sum"), 20.0);
    assert_eq!(figure(&s, "http_reqs{status_class:4xx}", "sum"), 20.0);
    assert_eq!(figure(&s, "http_req_duration", "count"), 40.0);
    assert_eq!(figure(&s, "http_req_waiting", "count"), 40.0);
    assert!(
        figure(&s, "http_req_waiting", "max") <= figure(&s, "http_req_duration", "max"),
        "the head comes before the body"
    );
    assert!((figure(&s, "http_req_failed", "rate") - 0.5).abs() < 1e-9);
    assert_eq!(figure(&s, "checks{check:body}", "rate"), 1.0);
    assert_eq!(figure(&s, "tcp_connect", "count"), 2.0, "one keep-alive connection per VU: {s}");
}

#[test]
fn the_echo_example_passes_its_thresholds_against_a_real_echo_server() {
    let echo = echo_server();
    let target = format!("127.0.0.1:{}", echo.port);
    let json = scratch("example").join("summary.json");
    let (status, out, err) = cli(&[
        "load",
        "--quiet",
        "--vus",
        "4",
        "--duration",
        "2s",
        "--summary-json",
        json.to_str().unwrap(),
        "scripts/load_echo.rhai",
        &target,
    ]);
    assert_eq!(status, 0, "{out}\n{err}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(figure(&s, "iterations", "sum") > 100.0, "{out}");
    assert_eq!(figure(&s, "tcp_connect", "count"), 4.0, "one connection per VU");
    assert_eq!(figure(&s, "echo_rtt", "count"), figure(&s, "iterations", "sum"));
    // Without a target the example starts its own server.
    let (status, out, err) = cli(&["load", "--quiet", "--vus", "2", "--iterations", "20", "scripts/load_echo.rhai"]);
    assert_eq!(status, 0, "{out}\n{err}");
    assert!(out.contains("iterations") && out.contains(" 20 "), "{out}");
}

#[test]
fn load_run_is_callable_from_a_script() {
    let v = crate::util::eval(
        r#"
        fn iteration(data) { load::rate("even").add(data % 2 == 0); }
        fn setup() { 4 }
        let s = load::run(#{ vus: 2, iterations: 6 });
        [s.metrics.iterations.sum, s.metrics.even.rate, s.passed, s.text().contains("even")]
    "#,
    )
    .expect("runs");
    assert_eq!(v.to_string(), "[6.0, 1.0, true, true]");
    let bad = crate::util::eval(
        r#"fn iteration() {} load::run(#{ scenarios: #{ a: #{ executor: "constant-vus", vus: 1, duraton: "1s" } } })"#,
    );
    let bad = bad.expect_err("a typo is an error");
    assert!(bad.starts_with("value:") && bad.contains("duraton"), "{bad}");
    let missing = crate::util::eval(r#"load::run(#{ iterations: 1 })"#).expect_err("no iteration function");
    assert!(missing.contains("fn iteration()"), "{missing}");
}

#[test]
fn workers_split_the_test_and_merge_exactly() {
    let echo = echo_server();
    let dir = scratch("workers");
    let scenario = format!("{ECHO_ITERATION}\nconst options = #{{ vus: 3, iterations: 101 }};");
    let port = echo.port.to_string();
    let (status, out, err, s) = load(&dir, &scenario, &["--workers", "2", &port]);
    assert_eq!(status, 0, "{out}\n{err}");
    assert_eq!(figure(&s, "iterations", "sum"), 101.0, "every shared iteration ran once: {s}");
    assert_eq!(figure(&s, "checks", "sum"), 101.0);
    assert_eq!(figure(&s, "tcp_connect", "count"), 3.0, "three VUs over two hosts, one connection each");
    assert_eq!(s["segments"], serde_json::json!(["1/2", "2/2"]));
    assert_eq!(figure(&s, "vus_max", "value"), 3.0, "the hosts' VUs add up");
}

#[test]
fn the_memcache_example_warms_a_real_memcached() {
    let mc = crate::memcache::Memcached::start();
    let dir = scratch("memcache");
    let json = dir.join("summary.json");
    let (status, out, err) = cli(&[
        "load",
        "-q",
        "scripts/load_memcache.rhai",
        &mc.addr(),
        "--vus",
        "4",
        "--iterations",
        "2000",
        "--summary-json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{out}\n{err}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // 500 keys: each is a miss once (and stored), every later look-up a hit.
    let misses = figure(&s, "cache_hit", "count") - figure(&s, "cache_hit", "sum");
    assert_eq!(figure(&s, "cache_hit", "count"), 2000.0);
    assert!((500.0..=520.0).contains(&misses), "{misses} misses for 500 keys (a few VUs may race on one key)");
    assert_eq!(figure(&s, "memcache_reqs{op:get}", "sum"), 2000.0);
    assert_eq!(figure(&s, "memcache_reqs{op:set}", "sum"), misses);
    assert_eq!(figure(&s, "memcache_req_failed", "rate"), 0.0);
    assert!(figure(&s, "data_received", "sum") > 0.0 && figure(&s, "tcp_connect", "count") >= 4.0, "{s}");
}

#[test]
fn the_http_example_ramps_and_passes_its_thresholds() {
    let dir = scratch("http-example");
    let json = dir.join("summary.json");
    let (status, out, err) = cli(&["load", "-q", "scripts/load_http.rhai", "--summary-json", json.to_str().unwrap()]);
    assert_eq!(status, 0, "{out}\n{err}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(figure(&s, "vus_max", "value"), 10.0, "the ramp reached its 10 VUs");
    assert_eq!(figure(&s, "http_reqs", "sum"), figure(&s, "iterations", "sum"));
    assert_eq!(figure(&s, "checks", "rate"), 1.0);
    assert_eq!(figure(&s, "group_duration{group:item}", "count"), figure(&s, "iterations", "sum"));
    assert!(figure(&s, "http_reqs", "sum") > 100.0);
}

#[test]
fn zmq_and_dns_record_their_metrics() {
    let v = crate::util::eval(
        r#"
        fn setup() {
            let pull = zmq::socket("pull");
            pull.bind("tcp://127.0.0.1:0");
            let push = zmq::socket("push");
            push.connect(`tcp://127.0.0.1:${pull.port}`);
            let l = tcp::listen("127.0.0.1", 0);
            tcp::connect("localhost", l.port).close();
            #{ push: push, pull: pull }
        }
        fn iteration(s) { s.push.send("twelve bytes"); s.pull.recv(); }
        let s = load::run(#{ iterations: 25 });
        let m = s.metrics;
        [m.zmq_msgs_sent.sum, m.zmq_msgs_received.sum, m.data_sent.sum >= 300.0, m.dns_lookup.count >= 1]
    "#,
    )
    .expect("runs");
    assert_eq!(v.to_string(), "[25.0, 25.0, true, true]");
}

#[test]
fn watch_runs_the_scenario_again_after_a_save() {
    let dir = scratch("watch");
    let file = dir.join("scenario.rhai");
    let v1 = "const options = #{ iterations: 3 };\nfn iteration() { load::counter(\"version_one\").add(1); }\n";
    std::fs::write(&file, v1).unwrap();
    let w = crate::watch::Watch::with_args(&["load", "--watch", "-q", file.to_str().unwrap()]);
    w.expect("version_one");
    // Let the watcher settle after the first run, then save a new version.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&file, v1.replace("version_one", "version_two").replace("iterations: 3", "iterations: 4")).unwrap();
    w.expect_all(&["changed: running again", "version_two"]);
}

//! `netscript load SCENARIO.rhai`: a load test as k6 runs one — the file's
//! `fn iteration()` as one iteration of one virtual user, `const options` for
//! scenarios and thresholds, an end-of-test summary on standard output —
//! and `netscript load --merge A.json B.json…` to combine the summaries of
//! segments run elsewhere. Exit status: 0 when every threshold passed, 99
//! when one failed (k6's status), 1 on a script error, 2 on a usage error.

use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use netscript_stdlib::load::Segment;
use netscript_stdlib::load::summary::Summary;

use super::HostArgs;

/// The exit status of a run whose thresholds failed (k6's).
pub const THRESHOLDS_FAILED: i32 = 99;

/// Arguments of `netscript load`.
#[derive(Args, Debug)]
pub struct LoadArgs {
    /// The scenario: a script defining `fn iteration()` (and optionally
    /// `fn setup()`, `fn teardown(data)`, `const options = #{…}`).
    #[arg(value_name = "SCENARIO", required_unless_present = "merge")]
    scenario: Option<PathBuf>,
    /// Arguments given to the scenario as `ARGS` (flags may come before or
    /// after them; after `--` everything is an argument).
    #[arg(value_name = "ARGS")]
    args: Vec<String>,
    /// Virtual users (replaces the file's scenarios, as the flags below do).
    #[arg(long, value_name = "N")]
    vus: Option<u64>,
    /// How long to run: `30s`, `1m30s`, `250ms`, or seconds.
    #[arg(long, value_name = "TIME")]
    duration: Option<String>,
    /// Iterations shared by the VUs.
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// Iterations started per second whether or not earlier ones finished
    /// (the open model; `--vus` is then the most running at once, 100 by
    /// default; needs `--duration`).
    #[arg(long, value_name = "PER_SEC")]
    rate: Option<f64>,
    /// Run one of N equal slices of the test (`2/4`): VU `i` and arrival
    /// `k` run in segment `i mod N + 1`; merge the slices' summaries with
    /// `--merge`.
    #[arg(long, value_name = "I/N")]
    segment: Option<String>,
    /// Write the summary, with every histogram, as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Write each second's figures of every metric: `csv=FILE`.
    #[arg(long, value_name = "csv=FILE", value_parser = parse_out)]
    out: Option<PathBuf>,
    /// Write an HTML report to FILE: the thresholds, the metrics, and
    /// charts of latency, throughput and VUs over time (one page, no
    /// external resources).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Combine the JSON summaries of runs made side by side and evaluate
    /// the thresholds on the sum, instead of running a scenario.
    #[arg(long, value_name = "FILES", num_args = 1.., conflicts_with = "scenario")]
    merge: Vec<PathBuf>,
    /// Run on N threads, each with its own host running 1/N of the test
    /// (an execution segment, as `--segment` gives), and merge their
    /// summaries: every core drives load. `setup()` runs in each.
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    /// Run again after every save of the scenario (or a module it imports),
    /// for developing a short scenario; a save during a run is taken up
    /// when the run ends.
    #[arg(long, conflicts_with = "merge")]
    watch: bool,
    /// No progress lines on standard error.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

/// `--out csv=FILE`: the file.
fn parse_out(text: &str) -> Result<PathBuf, String> {
    match text.split_once('=') {
        Some(("csv", path)) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("--out takes csv=FILE, got {text:?}")),
    }
}

/// The code run after the scenario's own: the run, with the flags, as
/// `segment` (of `workers`; progress shown by the first only).
fn driver(args: &LoadArgs, segment: Option<Segment>, first: bool) -> String {
    let mut cli = Vec::new();
    if let Some(n) = args.vus {
        cli.push(format!("vus: {n}"));
    }
    if let Some(d) = &args.duration {
        cli.push(format!("duration: {d:?}"));
    }
    if let Some(n) = args.iterations {
        cli.push(format!("iterations: {n}"));
    }
    if let Some(r) = args.rate {
        cli.push(format!("rate: {r:?}"));
    }
    if let Some(s) = segment {
        cli.push(format!("segment: {:?}", s.label()));
    }
    cli.push(format!("progress: {}", !args.quiet && first));
    format!("\n;\nload::run(if is_def_var(\"options\") {{ options }} else {{ #{{}} }}, #{{{}}})\n", cli.join(", "))
}

/// Print the summary, write its JSON, series and HTML report (titled
/// `title`), and return the exit status.
fn report(args: &LoadArgs, summary: &Summary, title: &str) -> i32 {
    print!("{}", summary.text());
    let _ = std::io::stdout().flush();
    if let Some(path) = &args.summary_json
        && let Err(e) = std::fs::write(path, summary.json().to_string())
    {
        eprintln!("netscript: cannot write {}: {e}", path.display());
        return 1;
    }
    if let Some(path) = &args.out
        && let Err(e) = std::fs::write(path, summary.series.csv())
    {
        eprintln!("netscript: cannot write {}: {e}", path.display());
        return 1;
    }
    if let Some(path) = &args.report
        && let Err(e) = std::fs::write(path, netscript_stdlib::load::report::html(summary, title))
    {
        eprintln!("netscript: cannot write {}: {e}", path.display());
        return 1;
    }
    if summary.passed() { 0 } else { THRESHOLDS_FAILED }
}

/// `--merge`: read each summary, combine them, report.
fn merge(args: &LoadArgs) -> i32 {
    let mut parts = Vec::new();
    for path in &args.merge {
        let read = std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|text| {
            let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
            Summary::from_json(&v).map_err(|e| e.message())
        });
        match read {
            Ok(s) => parts.push(s),
            Err(e) => {
                eprintln!("netscript: {}: {e}", path.display());
                return 2;
            }
        }
    }
    report(args, &Summary::merge(&parts), "merged summary")
}

/// Run the scenario (or the merge); the exit status.
pub fn run(args: &LoadArgs) -> i32 {
    if !args.merge.is_empty() {
        return merge(args);
    }
    let Some(path) = &args.scenario else { return 2 };
    if args.watch {
        return watch(args, path);
    }
    run_once(args, path)
}

/// `--watch`: run, then run again after each save; the last run's status.
fn watch(args: &LoadArgs, path: &std::path::Path) -> i32 {
    use netscript::reload::{self, Watcher};
    let name = path.display().to_string();
    let mut deps = reload::dependencies(path, &args.host.module_paths);
    let mut watcher = match Watcher::new(&deps, super::watch::DEBOUNCE) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("netscript: cannot watch {name}: {e}");
            return 2;
        }
    };
    let mut status = run_once(args, path);
    while watcher.next_change().is_some() {
        println!("──── {name} changed: running again ────");
        status = run_once(args, path);
        let now = reload::dependencies(path, &args.host.module_paths);
        if now != deps {
            deps = now;
            match Watcher::new(&deps, super::watch::DEBOUNCE) {
                Ok(w) => watcher = w,
                Err(e) => eprintln!("netscript: cannot watch the new imports: {e}"),
            }
        }
    }
    status
}

/// One run of the scenario at `path`; the exit status.
fn run_once(args: &LoadArgs, path: &std::path::Path) -> i32 {
    let name = path.display().to_string();
    let source = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netscript: cannot read {name}: {e}");
            return 2;
        }
    };
    let base = match args.segment.as_deref().map(Segment::parse).transpose() {
        Ok(base) => base,
        Err(e) => {
            eprintln!("netscript: --segment: {e}");
            return 2;
        }
    };
    if args.workers <= 1 {
        let host = match args.host.host() {
            Ok(h) => h,
            Err(e) => {
                eprintln!("netscript: {e}");
                return 2;
            }
        };
        let result = host.run_source(&name, &format!("{source}{}", driver(args, base, true)), &args.args);
        drop(host);
        return finish(args, &name, vec![result]);
    }
    let builders = match args.host.builders(args.workers) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    let base = base.unwrap_or(Segment::WHOLE);
    let results = std::thread::scope(|scope| {
        let runs: Vec<_> = builders
            .into_iter()
            .enumerate()
            .map(|(w, builder)| {
                let code =
                    format!("{source}{}", driver(args, Some(base.within(w as u64, args.workers as u64)), w == 0));
                let name = &name;
                scope.spawn(move || builder.build()?.run_source(name, &code, &args.args))
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|_| Err(netscript::Error::host("internal", "a load worker panicked"))))
            .collect()
    });
    finish(args, &name, results)
}

/// Report the summaries of the hosts (merged when there are several), or
/// the first error.
fn finish(args: &LoadArgs, name: &str, results: Vec<Result<rhai::Dynamic, netscript::Error>>) -> i32 {
    let mut parts = Vec::new();
    for result in results {
        match result {
            Ok(v) => match v.try_cast::<Summary>() {
                Some(summary) => parts.push(summary),
                None => {
                    eprintln!("netscript: {name}: the scenario did not end in a load run");
                    return 1;
                }
            },
            Err(e) => {
                eprintln!("{}", e.render());
                return 1;
            }
        }
    }
    let title = std::path::Path::new(name).file_name().map_or(name.into(), |f| f.to_string_lossy());
    match parts.len() {
        1 => report(args, &parts[0], &title),
        _ => report(args, &Summary::merge(&parts), &title),
    }
}

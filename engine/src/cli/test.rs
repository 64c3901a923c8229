//! `netscript test [PATHS…]`: run the `test_*` functions of `*_test.rhai`
//! files (see `netscript::testing`), print one line per case and the summary
//! `N passed, N failed`; exit 1 if any case failed. `--tap` prints TAP,
//! `--junit FILE` writes JUnit XML, `--watch` re-runs affected files on save.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use netscript::reload::{Watcher, dependencies};
use netscript::testing::{self, CaseResult, Outcome, Runner};

use super::HostArgs;

/// Arguments of `netscript test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Test files, or directories searched for `*_test.rhai` (default: `.`).
    #[arg(value_name = "PATHS")]
    paths: Vec<PathBuf>,
    /// Fail a case (setup + case + teardown) that runs longer than this.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// Run only cases whose name contains NAME.
    #[arg(long, value_name = "NAME")]
    filter: Option<String>,
    /// Also write the results as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Print TAP (Test Anything Protocol) instead of the human format.
    #[arg(long)]
    tap: bool,
    /// Keep running: re-run a test file when it or a module it imports changes.
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

/// Run the tests; 0 if all passed, 1 if any failed, 2 on a usage error.
pub fn test(args: &TestArgs) -> i32 {
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        eprintln!("netscript: --timeout must be a positive number of seconds, got {}", args.timeout);
        return 2;
    }
    let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let files = match testing::discover(&paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    // Each case is one run, so the per-run deadline is the case timeout.
    let mut host_args = args.host.clone();
    host_args.deadline = Some(args.timeout);
    if let Err(e) = host_args.builder() {
        eprintln!("netscript: {e}");
        return 2;
    }
    let factory = move || {
        host_args
            .builder()
            .map_err(|e| netscript::Error::host("value", e))?
            .ctrl_c(true)
            .configure(testing::register_assertions)
            .build()
    };
    let runner = Runner { factory: &factory, filter: args.filter.clone() };
    let status = run_files(args, &runner, &files);
    if !args.watch {
        return status;
    }
    watch_tests(args, &runner, &files)
}

/// Run `files`, print results, write JUnit; the exit status.
fn run_files(args: &TestArgs, runner: &Runner, files: &[PathBuf]) -> i32 {
    let started = Instant::now();
    let mut results: Vec<CaseResult> = Vec::new();
    let mut tap_index = 0;
    if args.tap {
        println!("TAP version 13");
    }
    for file in files {
        if !args.tap {
            println!("{}", file.display());
        }
        let mut report = |r: &CaseResult| {
            tap_index += 1;
            if args.tap {
                print_tap(tap_index, r);
            } else {
                print_human(r);
            }
        };
        results.extend(runner.run_file(file, &mut report));
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    if args.tap {
        println!("1..{}", results.len());
        println!("# {passed} passed, {failed} failed");
    } else {
        println!("{} file(s) in {:.2}s", files.len(), started.elapsed().as_secs_f64());
        println!("{passed} passed, {failed} failed");
    }
    if let Some(path) = &args.junit
        && let Err(e) = std::fs::write(path, testing::junit(&results))
    {
        eprintln!("netscript: cannot write {}: {e}", path.display());
        return 2;
    }
    i32::from(failed > 0)
}

fn print_human(r: &CaseResult) {
    let ms = r.time.as_secs_f64() * 1000.0;
    match &r.outcome {
        Outcome::Pass => println!("  ok    {} ({ms:.1} ms)", r.name),
        Outcome::Fail(text) => {
            println!("  FAIL  {} ({ms:.1} ms)", r.name);
            for line in text.lines() {
                println!("        {line}");
            }
        }
    }
}

fn print_tap(n: usize, r: &CaseResult) {
    let name = format!("{} {}", r.file.display(), r.name);
    match &r.outcome {
        Outcome::Pass => println!("ok {n} - {name}"),
        Outcome::Fail(text) => {
            println!("not ok {n} - {name}");
            println!("  ---\n  message: |");
            for line in text.lines() {
                println!("    {line}");
            }
            println!("  ...");
        }
    }
}

/// `--watch`: after each save, re-run the test files that depend on the
/// changed file. Runs until interrupted.
fn watch_tests(args: &TestArgs, runner: &Runner, files: &[PathBuf]) -> i32 {
    let deps: Vec<(PathBuf, Vec<PathBuf>)> =
        files.iter().map(|f| (f.clone(), dependencies(f, &args.host.module_paths))).collect();
    let all: Vec<PathBuf> = deps.iter().flat_map(|(_, d)| d.iter().cloned()).collect();
    let watcher = match Watcher::new(&all, Duration::from_millis(20)) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("netscript: cannot watch: {e}");
            return 2;
        }
    };
    println!("watching {} file(s); Ctrl-C to stop", all.len());
    while let Some(changed) = watcher.next_change() {
        let affected: Vec<PathBuf> = deps
            .iter()
            .filter(|(_, d)| d.iter().any(|p| changed.iter().any(|c| same(c, p))))
            .map(|(f, _)| f.clone())
            .collect();
        if affected.is_empty() {
            continue;
        }
        println!(
            "\n──── {} changed ────",
            changed.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
        run_files(args, runner, &affected);
    }
    0
}

fn same(a: &Path, b: &Path) -> bool {
    a == b || std::fs::canonicalize(a).ok().zip(std::fs::canonicalize(b).ok()).is_some_and(|(x, y)| x == y)
}

//! Script tests: the assertion functions (`assert`, `assert_eq`,
//! `assert_error`, `assert_match`) and the runner behind `netscript test`.
//!
//! A test file is a `*_test.rhai` script; every function `test_*()` is a
//! case, run after an optional `setup()` and followed by `teardown()`. The
//! file's top level runs once. Each case is its own run on the host (so the
//! run's deadline is the case timeout); afterwards the runner checks that
//! the case left no task running and no socket open (like Deno's
//! sanitizers) and, if it did, fails it and starts the next case on a fresh
//! host so leaks cannot spill into other cases.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rhai::{Blob, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use crate::pretty::pretty;
use crate::{Error, Host, Session};

/// An assertion failure: a script error of kind `assert`.
fn failure(op: &str, message: impl Into<String>) -> Box<EvalAltResult> {
    let mut m = Map::new();
    m.insert("kind".into(), "assert".into());
    m.insert("message".into(), message.into().into());
    m.insert("op".into(), op.into());
    m.insert("peer".into(), Dynamic::UNIT);
    Box::new(EvalAltResult::ErrorRuntime(m.into(), Position::NONE))
}

/// Install the assertion functions on `engine`.
///
/// ```rhai
/// assert(1 + 1 == 2, "arithmetic");
/// assert_eq(b"ab".len(), 2);
/// assert_error(|| tcp::connect("127.0.0.1", 1), "refused");
/// assert_match("HTTP/1.0 200 OK", "^HTTP/1\\.[01] 200");
/// ```
pub fn register_assertions(engine: &mut Engine) {
    engine.register_fn("assert", |cond: bool| if cond { Ok(()) } else { Err(failure("assert", "assertion failed")) });
    engine.register_fn("assert", |cond: bool, msg: &str| if cond { Ok(()) } else { Err(failure("assert", msg)) });
    engine.register_fn("assert_eq", |ctx: NativeCallContext, a: Dynamic, b: Dynamic| assert_eq(&ctx, &a, &b, None));
    engine.register_fn("assert_eq", |ctx: NativeCallContext, a: Dynamic, b: Dynamic, msg: &str| {
        assert_eq(&ctx, &a, &b, Some(msg))
    });
    engine.register_fn("assert_error", assert_error);
    engine.register_fn("assert_match", assert_match);
}

/// Fail unless `a == b`, showing both sides (a hexdump diff for blobs).
fn assert_eq(ctx: &NativeCallContext, a: &Dynamic, b: &Dynamic, msg: Option<&str>) -> Result<(), Box<EvalAltResult>> {
    let (a, b) = (a.flatten_clone(), b.flatten_clone());
    let equal = if a.type_id() == b.type_id() {
        ctx.call_native_fn::<bool>("==", (a.clone(), b.clone()))
            .unwrap_or_else(|_| pretty(ctx.engine(), &a) == pretty(ctx.engine(), &b))
    } else {
        false
    };
    if equal {
        return Ok(());
    }
    let (left, right) = match (a.read_lock::<Blob>(), b.read_lock::<Blob>()) {
        (Some(x), Some(y)) => (netscript_stdlib::bytes::hexdump(&x), netscript_stdlib::bytes::hexdump(&y)),
        _ => (pretty(ctx.engine(), &a), pretty(ctx.engine(), &b)),
    };
    let mut text = msg.map_or_else(|| "values differ".to_string(), ToString::to_string);
    if a.type_name() != b.type_name() {
        text.push_str(&format!(" (types {} and {})", a.type_name(), b.type_name()));
    }
    text.push_str(" (- left, + right):\n");
    text.push_str(&diff(&left, &right));
    Err(failure("assert_eq", text))
}

/// A line diff: common lines indented, differing ones marked `-` / `+`.
#[must_use]
pub fn diff(left: &str, right: &str) -> String {
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let mut out = Vec::new();
    for i in 0..l.len().max(r.len()) {
        match (l.get(i), r.get(i)) {
            (Some(x), Some(y)) if x == y => out.push(format!("  {x}")),
            (x, y) => {
                if let Some(x) = x {
                    out.push(format!("- {x}"));
                }
                if let Some(y) = y {
                    out.push(format!("+ {y}"));
                }
            }
        }
    }
    out.join("\n")
}

/// Call `f` and fail unless it raises an error of `kind`.
fn assert_error(ctx: NativeCallContext, f: FnPtr, kind: &str) -> Result<(), Box<EvalAltResult>> {
    match f.call_within_context::<Dynamic>(&ctx, ()) {
        Ok(v) => Err(failure(
            "assert_error",
            format!("expected a `{kind}` error, but the call returned {}", pretty(ctx.engine(), &v)),
        )),
        Err(e) if netscript_stdlib::runtime::innermost_terminated(&e) => Err(e),
        Err(e) => {
            let got = error_kind(&e);
            if got == kind {
                Ok(())
            } else {
                Err(failure(
                    "assert_error",
                    format!("expected a `{kind}` error, got `{got}`: {}", netscript_stdlib::error::describe(&e)),
                ))
            }
        }
    }
}

/// The `kind` of a raised error map; `script` for Rhai's own errors.
fn error_kind(err: &EvalAltResult) -> String {
    match netscript_stdlib::error::innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => {
            v.read_lock::<Map>().and_then(|m| m.get("kind").map(ToString::to_string)).unwrap_or_else(|| "error".into())
        }
        _ => "script".into(),
    }
}

/// Fail unless `text` matches the regular expression `pattern`.
fn assert_match(text: &str, pattern: &str) -> Result<(), Box<EvalAltResult>> {
    let re = regex::Regex::new(pattern)
        .map_err(|e| netscript_stdlib::Error::value("assert_match", format!("bad regular expression: {e}")))?;
    if re.is_match(text) {
        Ok(())
    } else {
        Err(failure("assert_match", format!("{text:?} does not match /{pattern}/")))
    }
}

/// How a case ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Passed.
    Pass,
    /// Failed, with the rendered error.
    Fail(String),
}

/// The result of one case (or of loading a file, named `<load>`).
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The test file.
    pub file: PathBuf,
    /// The function name.
    pub name: String,
    /// Pass or fail.
    pub outcome: Outcome,
    /// Wall time of setup + case + teardown.
    pub time: Duration,
}

impl CaseResult {
    /// Whether the case passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Pass)
    }
}

/// Find the test files: each path is a file, or a directory searched
/// recursively for `*_test.rhai`. Sorted, so runs are reproducible.
///
/// # Errors
/// A path does not exist.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut found).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        } else if p.is_file() {
            found.push(p.clone());
        } else {
            return Err(format!("no such file or directory: {}", p.display()));
        }
    }
    found.sort();
    found.dedup();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_test.rhai")) {
            out.push(path);
        }
    }
    Ok(())
}

/// Makes a fresh host (with the assertions installed) for a test file.
pub type HostFactory<'a> = &'a dyn Fn() -> Result<Host, Error>;

/// A loaded test file: the host, the session holding its functions.
struct Loaded {
    host: Host,
    session: Session,
}

/// Runs the cases of test files one by one.
pub struct Runner<'a> {
    /// Builds hosts.
    pub factory: HostFactory<'a>,
    /// Only cases whose name contains this.
    pub filter: Option<String>,
}

impl Runner<'_> {
    /// Run every case of `file`; `report` sees each result as it is made.
    pub fn run_file(&self, file: &Path, report: &mut dyn FnMut(&CaseResult)) -> Vec<CaseResult> {
        let mut results = Vec::new();
        let mut push = |r: CaseResult, results: &mut Vec<CaseResult>| {
            report(&r);
            results.push(r);
        };
        let started = Instant::now();
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                let r = self.result(file, "<load>", Outcome::Fail(format!("cannot read: {e}")), started);
                push(r, &mut results);
                return results;
            }
        };
        let name = file.display().to_string();
        let mut loaded = match self.load(&name, &source) {
            Ok(l) => l,
            Err(e) => {
                push(self.result(file, "<load>", Outcome::Fail(e), started), &mut results);
                return results;
            }
        };
        let functions = loaded.session.functions();
        let has = |f: &str| functions.iter().any(|s| fn_name(s) == Some(f));
        let (setup, teardown) = (has("setup"), has("teardown"));
        let mut cases: Vec<String> = functions
            .iter()
            .filter_map(|s| fn_name(s))
            .filter(|n| n.starts_with("test_"))
            .filter(|n| self.filter.as_deref().is_none_or(|f| n.contains(f)))
            .map(ToString::to_string)
            .collect();
        let imports = imports(&source);
        // In source order (the library's order is a hash order).
        cases.sort_by_key(|c| source.find(&format!("fn {c}(")).unwrap_or(usize::MAX));
        for case in cases {
            let started = Instant::now();
            let before = Usage::of(&loaded.host);
            let mut outcome = run_case(&loaded, &name, &source, &imports, &case, setup, teardown);
            if let Some(leak) = before.leaks(&loaded.host) {
                if matches!(outcome, Outcome::Pass) {
                    outcome = Outcome::Fail(leak);
                } else if let Outcome::Fail(text) = &mut outcome {
                    text.push('\n');
                    text.push_str(&leak);
                }
                // Leaked tasks and sockets must not reach the next case.
                match self.load(&name, &source) {
                    Ok(l) => loaded = l,
                    Err(e) => {
                        push(self.result(file, &case, outcome, started), &mut results);
                        push(self.result(file, "<load>", Outcome::Fail(e), started), &mut results);
                        return results;
                    }
                }
            }
            push(self.result(file, &case, outcome, started), &mut results);
        }
        results
    }

    fn result(&self, file: &Path, name: &str, outcome: Outcome, started: Instant) -> CaseResult {
        CaseResult { file: file.to_path_buf(), name: name.into(), outcome, time: started.elapsed() }
    }

    /// A fresh host with the file's top level run in a session.
    fn load(&self, name: &str, source: &str) -> Result<Loaded, String> {
        let host = (self.factory)().map_err(|e| e.render())?;
        let session = host.session();
        let _ = host.eval(&session, name, source, true).map_err(|e| e.render())?;
        Ok(Loaded { host, session })
    }
}

/// The file's top-level `import` statements: each case runs as a new
/// snippet, which must import again for functions to see the modules
/// (imports are cached, so this is cheap).
fn imports(source: &str) -> String {
    source.lines().map(str::trim).filter(|l| l.starts_with("import ") && l.ends_with(';')).collect::<Vec<_>>().join(" ")
}

/// Setup, the case, teardown (always, if setup ran); the first failure wins.
fn run_case(l: &Loaded, file: &str, source: &str, imports: &str, case: &str, setup: bool, teardown: bool) -> Outcome {
    let call = |f: &str| l.host.eval(&l.session, file, &format!("{imports} {f}();"), false).map(|_| ());
    let mut result = if setup { call("setup") } else { Ok(()) };
    if result.is_ok() {
        result = call(case);
    }
    if teardown && let Err(e) = call("teardown") {
        result = result.and(Err(e));
    }
    match result {
        Ok(()) => Outcome::Pass,
        Err(e) if e.kind() == "limit" && e.message().contains("deadline") => {
            Outcome::Fail(format!("timeout: {}", e.message()))
        }
        Err(e) => Outcome::Fail(render(&e, file, source)),
    }
}

/// The error as `file:line:col: kind: message` with the line of the test
/// file and a caret (the case ran as a snippet calling into the file, so the
/// error's own rendering would quote the snippet).
fn render(e: &Error, file: &str, source: &str) -> String {
    let head = format!("{}: {}", e.kind(), e.message());
    match e.position() {
        Some((line, col)) => {
            let text = source.lines().nth(line.saturating_sub(1)).unwrap_or_default();
            let gutter = format!("{line} | ");
            format!(
                "{file}:{line}:{col}: {head}\n{gutter}{text}\n{}^",
                " ".repeat(gutter.len() + col.saturating_sub(1))
            )
        }
        None => format!("{file}: {head}"),
    }
}

/// The name of a zero-parameter function from its signature `name()`.
fn fn_name(signature: &str) -> Option<&str> {
    let head = signature.strip_suffix("()")?;
    head.rsplit(' ').next().filter(|n| !n.is_empty())
}

/// Tasks running on the host and sockets open in the process.
#[derive(Clone, Copy)]
struct Usage {
    tasks: usize,
    sockets: usize,
}

impl Usage {
    fn of(host: &Host) -> Self {
        let tasks = host.with_engine(|_| netscript_stdlib::runtime::active_tasks()).unwrap_or(0);
        Self { tasks, sockets: open_sockets() }
    }

    /// What the case left behind, after giving closing sockets and ending
    /// tasks a few milliseconds to finish.
    fn leaks(self, host: &Host) -> Option<String> {
        let mut now = Self::of(host);
        for _ in 0..50 {
            if now.tasks <= self.tasks && now.sockets <= self.sockets {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
            now = Self::of(host);
        }
        let mut parts = Vec::new();
        if now.tasks > self.tasks {
            parts.push(format!("{} task(s) still running", now.tasks - self.tasks));
        }
        if now.sockets > self.sockets {
            parts.push(format!("{} socket(s) left open", now.sockets - self.sockets));
        }
        (!parts.is_empty()).then(|| {
            format!("leak: the case ended with {} (stop servers, close connections, join tasks)", parts.join(" and "))
        })
    }
}

/// Sockets open in this process (Linux: `/proc/self/fd`); 0 where unknown.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")))
            .count()
    })
}

/// JUnit XML for `results` (one `testsuite` per file).
#[must_use]
pub fn junit(results: &[CaseResult]) -> String {
    let mut files: Vec<&Path> = results.iter().map(|r| r.file.as_path()).collect();
    files.dedup();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for file in files {
        let cases: Vec<&CaseResult> = results.iter().filter(|r| r.file == file).collect();
        let failures = cases.iter().filter(|c| !c.passed()).count();
        let time: f64 = cases.iter().map(|c| c.time.as_secs_f64()).sum();
        let suite = xml(&file.display().to_string());
        out.push_str(&format!(
            "  <testsuite name=\"{suite}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.6}\">\n",
            cases.len()
        ));
        for c in cases {
            let (name, secs) = (xml(&c.name), c.time.as_secs_f64());
            out.push_str(&format!("    <testcase classname=\"{suite}\" name=\"{name}\" time=\"{secs:.6}\""));
            match &c.outcome {
                Outcome::Pass => out.push_str("/>\n"),
                Outcome::Fail(text) => {
                    let first = xml(text.lines().next().unwrap_or_default());
                    out.push_str(&format!(
                        ">\n      <failure message=\"{first}\">{}</failure>\n    </testcase>\n",
                        xml(text)
                    ));
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            c => c.to_string(),
        })
        .collect()
}

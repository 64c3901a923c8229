//! `load::` — load scenarios as k6 users know them, on netscript's own
//! transports. `netscript load scenario.rhai` calls [`api::run`] with the
//! file's `options`; scripts may call it too. Iterations are calls of a
//! script function (`fn iteration()`, or a scenario's `exec`) on green-thread
//! tasks; the executors are in [`executor`], the plan in [`options`], the
//! thresholds and the summary in [`summary`], the samples in
//! [`crate::metrics`].
//!
//! k6 calls the iteration function `default`; Rhai reserves that word (it
//! cannot name a function), so here it is `fn iteration()`.
//!
//! ```rhai
//! fn iteration() {
//!     let c = tcp::connect("127.0.0.1", 7);
//!     c.send("ping\n");
//!     load::check(c.recv_line(), #{ "echoed": |l| l == "ping" });
//! }
//! ```

mod executor;
mod options;
pub mod report;
pub mod series;
pub mod summary;

pub use options::Segment;

use rhai::plugin::*;
use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext};

use self::executor::{Function, Job};
use self::options::Overrides;
use self::summary::Summary;
use crate::error::{Error, NativeResult};
use crate::metrics::{self, MetricKind};
use crate::task::Callable;

/// A metric a script records into (`load::trend("login_time")`…).
#[derive(Clone, Debug)]
pub struct MetricHandle {
    name: rhai::ImmutableString,
    kind: MetricKind,
    time: bool,
}

/// Longest metric name (k6's limit).
const MAX_NAME: usize = 128;

fn metric(name: &str, kind: MetricKind, time: bool) -> Result<MetricHandle, Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(Error::value(
            "load.metric",
            format!("a metric name is 1 to {MAX_NAME} letters, digits and underscores, got {name:?}"),
        ));
    }
    Ok(MetricHandle { name: name.into(), kind, time })
}

/// Tags of a script map as name/value pairs.
fn tags(op: &str, map: &Map) -> Result<Vec<(String, String)>, Error> {
    map.iter()
        .map(|(k, v)| {
            let (k, v) = (k.to_string(), v.to_string());
            if k.contains(['{', '}', ':']) || v.contains(['{', '}']) {
                return Err(Error::value(
                    op,
                    format!("a tag may not contain braces (or a colon in its name): {k}:{v}"),
                ));
            }
            Ok((k, v))
        })
        .collect()
}

fn record(m: &MetricHandle, value: &Dynamic, tags: &[(String, String)]) -> Result<(), Error> {
    let v = match m.kind {
        MetricKind::Rate => f64::from(u8::from(value.as_bool().unwrap_or_else(|_| truthy(value)))),
        _ => value.as_int().map(|n| n as f64).or_else(|_| value.as_float()).map_err(|_| {
            Error::value("load.add", format!("{} {} takes a number, got {}", m.kind.name(), m.name, value.type_name()))
        })?,
    };
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    metrics::record(m.kind, m.time, &m.name, &tags, v);
    Ok(())
}

/// A check's verdict of a value that is not a bool: k6 counts truthy
/// values as passes (non-zero numbers, non-empty strings).
fn truthy(v: &Dynamic) -> bool {
    if let Ok(b) = v.as_bool() {
        return b;
    }
    if let Ok(n) = v.as_int() {
        return n != 0;
    }
    if let Ok(f) = v.as_float() {
        return f != 0.0;
    }
    if v.is_string() {
        return !v.to_string().is_empty();
    }
    !v.is_unit()
}

/// The script function `name` if the script defines it with at most `most`
/// parameters (the most it has).
fn function(ctx: &NativeCallContext, name: &str, most: usize) -> Option<Function> {
    let callable = Callable::new(ctx, FnPtr::new(name).ok()?);
    let params = (0..=most).rev().find(|n| callable.takes(*n))?;
    Some(Function { callable, params })
}

/// The command line's settings, as a map (`vus`, `duration`, `iterations`,
/// `rate`, `segment`, `progress`).
fn overrides(map: &Map) -> Result<(Overrides, Segment, bool), Error> {
    const OP: &str = "load.run";
    let a = crate::args::Opts::new(OP, map.clone(), &["vus", "duration", "iterations", "rate", "segment", "progress"])?;
    let count = |k: &str| -> Result<Option<u64>, Error> {
        a.get(k)
            .map(|v| {
                v.as_int()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| Error::value(OP, format!("{k} must be a whole number >= 0")))
            })
            .transpose()
    };
    let duration = a
        .get("duration")
        .map(|v| options::duration(v).map_err(|e| Error::value(OP, format!("duration: {e}"))))
        .transpose()?;
    let rate = a
        .get("rate")
        .map(|v| v.as_int().map(|n| n as f64).or_else(|_| v.as_float()).ok().filter(|r| *r > 0.0 && r.is_finite()))
        .map(|r| r.ok_or_else(|| Error::value(OP, "rate must be a number > 0")))
        .transpose()?;
    let segment = match a.string("segment")? {
        Some(s) => Segment::parse(&s).map_err(|e| Error::value(OP, e))?,
        None => Segment::WHOLE,
    };
    let o = Overrides { vus: count("vus")?, duration, iterations: count("iterations")?, rate };
    Ok((o, segment, a.bool("progress", false)?))
}

fn run_with(ctx: &NativeCallContext, options: &Map, cli: &Map) -> NativeResult<Summary> {
    let (overrides, segment, progress) = overrides(cli)?;
    let plan = options::plan(options, &overrides, segment)?;
    let mut functions = Vec::new();
    for s in &plan.scenarios {
        let f = function(ctx, &s.exec, 2).ok_or_else(|| {
            Error::value(
                "load.run",
                format!(
                    "scenario {:?} runs fn {}(), fn {}(data) or fn {}(data, vu), which the script does not define",
                    s.name, s.exec, s.exec, s.exec
                ),
            )
        })?;
        functions.push(f);
    }
    let setup = function(ctx, "setup", 0).map(|f| f.callable);
    let teardown = function(ctx, "teardown", 1);
    executor::execute(Job { plan, functions, setup, teardown, progress })
}

/// Turn a summary given as JSON text (or a summary value) into a summary.
fn summary_of(v: &Dynamic) -> Result<Summary, Error> {
    if let Some(s) = v.read_lock::<Summary>() {
        return Ok(s.clone());
    }
    let text = v.read_lock::<rhai::ImmutableString>().ok_or_else(|| {
        Error::value("load.merge", format!("a summary is a summary value or its JSON text, got {}", v.type_name()))
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::value("load.merge", format!("not JSON: {e}")))?;
    Summary::from_json(&json)
}

/// The `load::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// The script-visible functions of `load::`.
#[export_module]
pub mod api {
    use super::*;

    /// A metric of the script's own (see `load::trend`).
    pub type Metric = MetricHandle;
    /// The result of a load run (see `load::run`).
    pub type LoadSummary = Summary;

    /// Run the load test `options` describes (as a scenario file's `const
    /// options`: `scenarios`, `thresholds`, or the `vus`/`duration`/
    /// `iterations` shortcut) over the script's `fn iteration()` (or each
    /// scenario's `exec`), with `fn setup()` before and `fn teardown(data)`
    /// after; returns the summary. `netscript load FILE` does this.
    ///
    /// ```rhai
    /// fn iteration() { load::counter("hits").add(1); }
    /// let s = load::run(#{ vus: 2, iterations: 10 });
    /// print(s.metrics.hits.count);   // 10
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run(ctx: NativeCallContext, options: Map) -> NativeResult<Summary> {
        run_with(&ctx, &options, &Map::new())
    }

    /// `load::run(options, cli)` with the command line's settings: `vus`,
    /// `duration`, `iterations`, `rate` (these replace the file's
    /// scenarios, as k6's flags do), `segment` (`"2/4"`: this process runs
    /// the second of four equal slices) and `progress` (show the progress
    /// line on standard error).
    ///
    /// ```rhai
    /// fn iteration() { }
    /// let s = load::run(#{}, #{ vus: 2, iterations: 6, segment: "1/2" });
    /// print(s.metrics.iterations.count);   // 3
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run_cli(ctx: NativeCallContext, options: Map, cli: Map) -> NativeResult<Summary> {
        run_with(&ctx, &options, &cli)
    }

    /// A counter: `add(n)` sums.
    ///
    /// ```rhai
    /// let bytes = load::counter("payload_bytes");
    /// bytes.add(512);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn counter(name: &str) -> NativeResult<Metric> {
        Ok(metric(name, MetricKind::Counter, false)?)
    }

    /// A gauge: keeps the last value added, and its minimum and maximum.
    ///
    /// ```rhai
    /// load::gauge("queue_depth").add(17);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn gauge(name: &str) -> NativeResult<Metric> {
        Ok(metric(name, MetricKind::Gauge, false)?)
    }

    /// A rate: the share of values added that are true.
    ///
    /// ```rhai
    /// load::rate("cache_hit").add(true);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn rate(name: &str) -> NativeResult<Metric> {
        Ok(metric(name, MetricKind::Rate, false)?)
    }

    /// A trend: every value added, summarised as avg/min/med/p(90)/p(95)/
    /// p(99)/max (HDR histogram, three significant digits).
    ///
    /// ```rhai
    /// load::trend("items_per_page").add(25);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn trend(name: &str) -> NativeResult<Metric> {
        Ok(metric(name, MetricKind::Trend, false)?)
    }

    /// A trend of milliseconds (shown with time units), when `time` is true.
    ///
    /// ```rhai
    /// let t = load::trend("login_time", true);
    /// t.add(12.5);
    /// ```
    #[rhai_fn(name = "trend", return_raw)]
    pub fn trend_time(name: &str, time: bool) -> NativeResult<Metric> {
        Ok(metric(name, MetricKind::Trend, time)?)
    }

    /// Add a value (a bool for a rate, a number otherwise). Outside a load
    /// run this does nothing.
    ///
    /// ```rhai
    /// load::trend("size").add(1024);
    /// ```
    #[rhai_fn(global, name = "add", return_raw, pure)]
    pub fn add(m: &mut Metric, value: Dynamic) -> NativeResult<()> {
        Ok(record(m, &value, &[])?)
    }

    /// Add a value with tags: it also counts under `name{tag:value}` for
    /// each tag, which thresholds can name.
    ///
    /// ```rhai
    /// load::counter("replies").add(1, #{ code: "250" });
    /// ```
    #[rhai_fn(global, name = "add", return_raw, pure)]
    pub fn add_tags(m: &mut Metric, value: Dynamic, tags: Map) -> NativeResult<()> {
        let tags = super::tags("load.add", &tags)?;
        Ok(record(m, &value, &tags)?)
    }

    /// The metric's name.
    #[rhai_fn(global, get = "name", pure)]
    pub fn name(m: &mut Metric) -> String {
        m.name.to_string()
    }

    /// Run each named predicate on `value` and count passes and failures in
    /// the `checks` rate (and `checks{check:NAME}`); a failure does not stop
    /// the iteration. Returns whether all passed. A predicate that throws
    /// counts as failed, and its error goes on up.
    ///
    /// ```rhai
    /// let ok = load::check(200, #{ "status is 200": |s| s == 200 });
    /// print(ok);   // true
    /// ```
    #[rhai_fn(return_raw)]
    pub fn check(ctx: NativeCallContext, value: Dynamic, checks: Map) -> NativeResult<bool> {
        let mut all = true;
        for (name, f) in checks {
            let Some(f) = f.read_lock::<FnPtr>().map(|f| f.clone()) else {
                return Err(Error::value(
                    "load.check",
                    format!("check {name:?} must be a function, got {}", f.type_name()),
                )
                .into());
            };
            let result = f.call_within_context::<Dynamic>(&ctx, (value.clone(),));
            let pass = result.as_ref().is_ok_and(truthy);
            metrics::record(MetricKind::Rate, false, "checks", &[("check", &name)], f64::from(u8::from(pass)));
            all &= pass;
            let _ = result?;
        }
        Ok(all)
    }

    /// Run `f` and record how long it took in `group_duration{group:NAME}`;
    /// returns what `f` returns.
    ///
    /// ```rhai
    /// let n = load::group("login", || 1 + 1);
    /// print(n);   // 2
    /// ```
    #[rhai_fn(return_raw)]
    pub fn group(ctx: NativeCallContext, name: &str, f: FnPtr) -> NativeResult<Dynamic> {
        let t0 = std::time::Instant::now();
        let result = f.call_within_context::<Dynamic>(&ctx, ());
        metrics::time("group_duration", &[("group", name)], t0.elapsed());
        result
    }

    /// Combine the summaries of runs made side by side (the segments of one
    /// test, as JSON text or summary values): counts and histograms add
    /// up exactly and the thresholds are evaluated again on the sum.
    ///
    /// ```rhai
    /// fn iteration() { }
    /// let a = load::run(#{}, #{ iterations: 4, segment: "1/2" });
    /// let b = load::run(#{}, #{ iterations: 4, segment: "2/2" });
    /// print(load::merge([a, b.json()]).metrics.iterations.count);   // 4
    /// ```
    #[rhai_fn(return_raw)]
    pub fn merge(parts: Array) -> NativeResult<LoadSummary> {
        let parts = parts.iter().map(summary_of).collect::<Result<Vec<_>, _>>()?;
        Ok(Summary::merge(&parts))
    }

    /// Whether every threshold passed.
    #[rhai_fn(global, get = "passed", pure)]
    pub fn passed(s: &mut LoadSummary) -> bool {
        s.passed()
    }

    /// Every metric, by name (`iterations`, `checks{check:ok}`…), as a map
    /// of its figures: `count`, `sum`, `min`, `max`, `rate`, and for trends
    /// `avg`, `med`, `p(90)`, `p(95)`, `p(99)`.
    ///
    /// ```rhai
    /// fn iteration() { }
    /// print(load::run(#{ iterations: 3 }).metrics.iterations.count);   // 3
    /// ```
    #[rhai_fn(global, get = "metrics", pure)]
    pub fn summary_metrics(s: &mut LoadSummary) -> Map {
        s.to_map().remove("metrics").and_then(|m| m.try_cast::<Map>()).unwrap_or_default()
    }

    /// The thresholds with their verdicts: `#{metric, threshold, value, passed}`.
    #[rhai_fn(global, get = "thresholds", pure)]
    pub fn summary_thresholds(s: &mut LoadSummary) -> Array {
        s.to_map().remove("thresholds").and_then(|m| m.try_cast::<Array>()).unwrap_or_default()
    }

    /// How long the run took, in seconds.
    #[rhai_fn(global, get = "duration", pure)]
    pub fn summary_duration(s: &mut LoadSummary) -> rhai::FLOAT {
        s.elapsed.as_secs_f64()
    }

    /// The end-of-test summary as k6 prints it.
    ///
    /// ```rhai
    /// fn iteration() { }
    /// print(load::run(#{ iterations: 2 }).text());
    /// ```
    #[rhai_fn(global, name = "text", pure)]
    pub fn text(s: &mut LoadSummary) -> String {
        s.text()
    }

    /// The summary as JSON text (what `--summary-json` writes), with every
    /// trend's whole histogram, so that `load::merge` is exact.
    ///
    /// ```rhai
    /// fn iteration() { load::trend("t").add(5); }
    /// let text = load::run(#{ iterations: 2 }).json();
    /// print(json::decode(text).metrics.t.count);   // 2
    /// ```
    #[rhai_fn(global, name = "json", pure)]
    pub fn json(s: &mut LoadSummary) -> String {
        s.json().to_string()
    }

    /// The run's time series as CSV (what `--out csv=FILE` writes): one
    /// row per second per metric, `time,metric,type,count,value,avg,med,p95,p99,max`.
    ///
    /// ```rhai
    /// fn iteration() { }
    /// print(load::run(#{ iterations: 2 }).csv());
    /// ```
    #[rhai_fn(global, name = "csv", pure)]
    pub fn csv(s: &mut LoadSummary) -> String {
        s.series.csv()
    }

    /// `print(summary)` shows the text summary.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(s: &mut LoadSummary) -> String {
        s.text()
    }
}

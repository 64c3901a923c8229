//! The end of a load run: thresholds (`"p(95) < 200"` on a metric) and
//! their evaluation, the k6-style text summary, and the JSON summary that
//! keeps every histogram so that summaries of several segments merge into
//! exactly what one run would have collected.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use rhai::Map;
use serde_json::{Value, json};

use crate::error::Error;
use crate::metrics::{Metric, MetricKind, Metrics};

const OP: &str = "load.thresholds";

/// What a threshold measures of its metric.
#[derive(Clone, Debug, PartialEq)]
pub enum Agg {
    /// The mean.
    Avg,
    /// The smallest sample.
    Min,
    /// The largest sample.
    Max,
    /// The median.
    Med,
    /// A percentile, 0..=100.
    P(f64),
    /// Samples (trends, rates) or the total (counters).
    Count,
    /// A rate's share of true samples, or a counter's total per second.
    Rate,
    /// A gauge's last value.
    Value,
}

/// One rule on one metric: `agg op limit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// `name` or `name{tag:value}`.
    pub metric: String,
    /// The rule as written.
    pub source: String,
    /// What is measured.
    pub agg: Agg,
    /// The comparison: `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub op: String,
    /// What the measure is compared with.
    pub limit: f64,
    /// Stop the run as soon as this rule fails.
    pub abort_on_fail: bool,
    /// How long after the start before `abort_on_fail` is looked at.
    pub delay_abort_eval: Duration,
}

/// Parse `"p(95) < 200"`.
fn rule(metric: &str, source: &str) -> Result<(Agg, String, f64), Error> {
    let bad = |why: &str| Error::value(OP, format!("{metric}: {source:?}: {why} (expected e.g. \"p(95) < 200\")"));
    let s = source.trim();
    let at = s.find(['<', '>', '=', '!']).ok_or_else(|| bad("no comparison"))?;
    let (agg, rest) = (s[..at].trim(), &s[at..]);
    let op_len = if rest.len() > 1 && rest.as_bytes()[1] == b'=' { 2 } else { 1 };
    let op = &rest[..op_len];
    if !["<", "<=", ">", ">=", "==", "!="].contains(&op) {
        return Err(bad("unknown comparison"));
    }
    let limit: f64 = rest[op_len..].trim().parse().map_err(|_| bad("the limit is not a number"))?;
    let agg = match agg {
        "avg" => Agg::Avg,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "med" => Agg::Med,
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        "value" => Agg::Value,
        p if p.starts_with("p(") && p.ends_with(')') => match p[2..p.len() - 1].trim().parse::<f64>() {
            Ok(q) if (0.0..=100.0).contains(&q) => Agg::P(q),
            _ => return Err(bad("a percentile is p(0) to p(100)")),
        },
        _ => return Err(bad("unknown aggregation (avg, min, max, med, p(N), count, rate, value)")),
    };
    Ok((agg, op.to_string(), limit))
}

/// The thresholds of `options.thresholds`: metric name to a list of rules,
/// each a string or `#{threshold, abortOnFail, delayAbortEval}`.
///
/// # Errors
/// A `value` error naming the rule that cannot be read.
pub fn thresholds(map: &Map) -> Result<Vec<Threshold>, Error> {
    let mut out = Vec::new();
    for (metric, rules) in map {
        let list = match rules.read_lock::<rhai::Array>() {
            Some(a) => a.clone(),
            None => vec![rules.clone()],
        };
        for r in list {
            let (source, abort_on_fail, delay) = if r.is_string() {
                (r.to_string(), false, Duration::ZERO)
            } else if let Some(m) = r.read_lock::<Map>() {
                let get =
                    |k: &str| m.iter().find(|(key, _)| key.replace('_', "").eq_ignore_ascii_case(k)).map(|(_, v)| v);
                let source = get("threshold").filter(|v| v.is_string()).map(ToString::to_string);
                let source =
                    source.ok_or_else(|| Error::value(OP, format!("{metric}: a rule map needs threshold: \"…\"")))?;
                let abort = get("abortonfail").map_or(Ok(false), |v| v.as_bool().map_err(|_| "abortOnFail is a bool"));
                let delay = get("delayaborteval").map_or(Ok(Duration::ZERO), super::options::duration);
                (
                    source,
                    abort.map_err(|e| Error::value(OP, format!("{metric}: {e}")))?,
                    delay.map_err(|e| Error::value(OP, format!("{metric}: delayAbortEval: {e}")))?,
                )
            } else {
                return Err(Error::value(OP, format!("{metric}: a rule is a string such as \"p(95) < 200\", got {r}")));
            };
            let (agg, op, limit) = rule(metric, &source)?;
            out.push(Threshold {
                metric: metric.to_string(),
                source,
                agg,
                op,
                limit,
                abort_on_fail,
                delay_abort_eval: delay,
            });
        }
    }
    Ok(out)
}

/// A threshold's outcome.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// The rule.
    pub threshold: Threshold,
    /// The measured value; `None` when the metric has no samples to measure.
    pub value: Option<f64>,
    /// Whether the rule held.
    pub passed: bool,
}

/// The value of `agg` over `m` (counters and rates read `count` and `rate`
/// over `elapsed`); `None` when `agg` does not apply to the metric's kind.
fn measure(m: &Metric, agg: &Agg, elapsed: Duration) -> Option<f64> {
    use MetricKind::{Counter, Gauge, Rate, Trend};
    let secs = elapsed.as_secs_f64().max(1e-9);
    Some(match (m.kind, agg) {
        (Trend, Agg::Avg) => m.avg(),
        (Trend | Gauge, Agg::Min) => m.min,
        (Trend | Gauge, Agg::Max) => m.max,
        (Trend, Agg::Med) => m.quantile(0.5),
        (Trend, Agg::P(q)) => m.quantile(q / 100.0),
        (Trend | Rate, Agg::Count) => m.count as f64,
        (Counter, Agg::Count) => m.sum,
        (Counter, Agg::Rate) => m.sum / secs,
        (Rate, Agg::Rate) => m.avg(),
        (Gauge, Agg::Value) => m.last,
        _ => return None,
    })
}

/// Evaluate every threshold over the metrics `metric` finds by name. A
/// metric that never got a sample counts as zero for `count` and `rate` (so
/// `count < 10` on an error that never happened passes) and fails every
/// other rule: a test that measured nothing has not met its goal.
#[must_use]
pub fn evaluate<'a>(
    thresholds: &[Threshold],
    metric: impl Fn(&str) -> Option<&'a Metric>,
    elapsed: Duration,
) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|t| {
            let value = match metric(&t.metric) {
                Some(m) if m.count > 0 => measure(m, &t.agg, elapsed),
                _ if matches!(t.agg, Agg::Count | Agg::Rate) => Some(0.0),
                _ => None,
            };
            let passed = value.is_some_and(|v| match t.op.as_str() {
                "<" => v < t.limit,
                "<=" => v <= t.limit,
                ">" => v > t.limit,
                ">=" => v >= t.limit,
                "==" => (v - t.limit).abs() < f64::EPSILON,
                _ => (v - t.limit).abs() >= f64::EPSILON,
            });
            Verdict { threshold: t.clone(), value, passed }
        })
        .collect()
}

/// A finished run (or a merge of several).
#[derive(Clone, Debug)]
pub struct Summary {
    /// Every metric collected.
    pub metrics: Metrics,
    /// How long the run took (the longest part, after a merge).
    pub elapsed: Duration,
    /// The rules the run was held to.
    pub thresholds: Vec<Threshold>,
    /// Their outcome on `metrics`.
    pub verdicts: Vec<Verdict>,
    /// The segments this summary covers (`1/2`, or several after a merge).
    pub segments: Vec<String>,
    /// Why the run stopped early, if it did (a threshold with `abortOnFail`).
    pub aborted: Option<String>,
    /// Each second's figures (empty when read from JSON; after a merge,
    /// those of the parts combined second by second).
    pub series: super::series::Series,
}

impl Summary {
    /// A summary of `metrics`, with `thresholds` evaluated.
    #[must_use]
    pub fn new(metrics: Metrics, elapsed: Duration, thresholds: Vec<Threshold>, segments: Vec<String>) -> Self {
        let verdicts = evaluate(&thresholds, |name| metrics.get(name), elapsed);
        Self { metrics, elapsed, thresholds, verdicts, segments, aborted: None, series: Default::default() }
    }

    /// Whether every threshold passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.verdicts.iter().all(|v| v.passed)
    }

    /// The end-of-test summary, as k6 prints it: checks, then every metric
    /// (tagged ones only when a threshold names them, or for checks and
    /// errors), then the thresholds with ✓ or ✗.
    #[must_use]
    pub fn text(&self) -> String {
        let mut out = String::new();
        let secs = self.elapsed.as_secs_f64();
        let checks: Vec<_> = self
            .metrics
            .iter()
            .filter_map(|(k, m)| Some((k.strip_prefix("checks{check:")?.strip_suffix('}')?, m)))
            .collect();
        if !checks.is_empty() {
            for (name, m) in &checks {
                let fails = m.count - m.sum as u64;
                let mark = if fails == 0 { '✓' } else { '✗' };
                let _ = writeln!(out, "     {mark} {name}");
                if fails > 0 {
                    let _ = writeln!(out, "      ↳  {:.0}% — ✓ {} / ✗ {fails}", m.avg() * 100.0, m.sum as u64);
                }
            }
            out.push('\n');
        }
        let named: Vec<&str> = self.thresholds.iter().map(|t| t.metric.as_str()).collect();
        let width = self.metrics.keys().map(|k| k.chars().count()).max().unwrap_or(0).max(30) + 2;
        for (key, m) in &self.metrics {
            let tagged = key.contains('{');
            if tagged && !named.contains(&key.as_str()) && !key.starts_with("errors{kind:") {
                continue;
            }
            let mark = match self
                .verdicts
                .iter()
                .filter(|v| v.threshold.metric == *key)
                .map(|v| v.passed)
                .reduce(|a, b| a && b)
            {
                Some(true) => '✓',
                Some(false) => '✗',
                None => ' ',
            };
            let dots = ".".repeat(width.saturating_sub(key.chars().count()));
            let _ = writeln!(out, "   {mark} {key}{dots}: {}", describe(key, m, secs));
        }
        if !self.verdicts.is_empty() {
            out.push_str("\n   thresholds\n");
            for v in &self.verdicts {
                let mark = if v.passed { '✓' } else { '✗' };
                let got = v.value.map_or_else(|| "no samples".to_string(), |x| format!("{}", round(x)));
                let _ = writeln!(out, "   {mark} {}: {} (got {got})", v.threshold.metric, v.threshold.source);
            }
        }
        if let Some(why) = &self.aborted {
            let _ = writeln!(out, "\n   aborted: {why}");
        }
        out
    }

    /// The summary as JSON: every metric with its figures and (for trends)
    /// its whole histogram, the thresholds and their verdicts.
    #[must_use]
    pub fn json(&self) -> Value {
        let metrics: serde_json::Map<String, Value> =
            self.metrics.iter().map(|(k, m)| (k.clone(), metric_json(m, self.elapsed))).collect();
        let thresholds: Vec<Value> = self
            .verdicts
            .iter()
            .map(|v| {
                json!({
                    "metric": v.threshold.metric,
                    "threshold": v.threshold.source,
                    "abort_on_fail": v.threshold.abort_on_fail,
                    "delay_abort_eval": v.threshold.delay_abort_eval.as_secs_f64(),
                    "value": v.value,
                    "passed": v.passed,
                })
            })
            .collect();
        json!({
            "format": "netscript-load-summary",
            "version": 1,
            "duration": self.elapsed.as_secs_f64(),
            "segments": self.segments,
            "passed": self.passed(),
            "aborted": self.aborted,
            "thresholds": thresholds,
            "metrics": metrics,
        })
    }

    /// Read a summary written by [`Summary::json`].
    ///
    /// # Errors
    /// A `value` error saying what is missing or malformed.
    pub fn from_json(v: &Value) -> Result<Self, Error> {
        const OP: &str = "load.merge";
        let bad = |why: &str| Error::value(OP, format!("not a netscript load summary: {why}"));
        if v.get("format").and_then(Value::as_str) != Some("netscript-load-summary") {
            return Err(bad("no \"format\": \"netscript-load-summary\""));
        }
        let elapsed = v.get("duration").and_then(Value::as_f64).and_then(|d| Duration::try_from_secs_f64(d).ok());
        let elapsed = elapsed.ok_or_else(|| bad("no duration"))?;
        let mut metrics = Metrics::new();
        for (k, m) in v.get("metrics").and_then(Value::as_object).ok_or_else(|| bad("no metrics"))? {
            metrics.insert(k.clone(), metric_from_json(m).map_err(|e| bad(&format!("metric {k}: {e}")))?);
        }
        let mut thresholds = Vec::new();
        for t in v.get("thresholds").and_then(Value::as_array).ok_or_else(|| bad("no thresholds"))? {
            let (Some(metric), Some(source)) =
                (t.get("metric").and_then(Value::as_str), t.get("threshold").and_then(Value::as_str))
            else {
                return Err(bad("a threshold without metric or rule"));
            };
            let (agg, op, limit) = rule(metric, source)?;
            let delay =
                t.get("delay_abort_eval").and_then(Value::as_f64).and_then(|d| Duration::try_from_secs_f64(d).ok());
            thresholds.push(Threshold {
                metric: metric.into(),
                source: source.into(),
                agg,
                op,
                limit,
                abort_on_fail: t.get("abort_on_fail").and_then(Value::as_bool).unwrap_or(false),
                delay_abort_eval: delay.unwrap_or_default(),
            });
        }
        let segments = v
            .get("segments")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let mut s = Self::new(metrics, elapsed, thresholds, segments);
        s.aborted = v.get("aborted").and_then(Value::as_str).map(String::from);
        Ok(s)
    }

    /// Combine summaries of runs made side by side (segments of one test):
    /// counts and histograms add up, the duration is the longest, the
    /// thresholds (of every part, once each) are evaluated again on the sum,
    /// and the time series are combined second by second.
    #[must_use]
    pub fn merge(parts: &[Self]) -> Self {
        let mut metrics = Metrics::new();
        let mut thresholds: Vec<Threshold> = Vec::new();
        let mut segments = Vec::new();
        let mut elapsed = Duration::ZERO;
        let mut aborted = None;
        for p in parts {
            for (k, m) in &p.metrics {
                match metrics.get_mut(k) {
                    // VUs of parts running side by side add up (as k6 sums
                    // its instances'); other gauges keep the larger value.
                    Some(have) if k == "vus" || k == "vus_max" => {
                        have.count += m.count;
                        have.last += m.last;
                        have.max += m.max;
                        have.min += m.min;
                        have.sum += m.sum;
                    }
                    Some(have) if have.kind == m.kind => have.merge(m),
                    Some(_) => {}
                    None => {
                        metrics.insert(k.clone(), m.clone());
                    }
                }
            }
            for t in &p.thresholds {
                if !thresholds.iter().any(|h| h.metric == t.metric && h.source == t.source) {
                    thresholds.push(t.clone());
                }
            }
            segments.extend(p.segments.iter().cloned());
            elapsed = elapsed.max(p.elapsed);
            aborted = aborted.or_else(|| p.aborted.clone());
        }
        let mut s = Self::new(metrics, elapsed, thresholds, segments);
        s.aborted = aborted;
        s.series = super::series::Series::merge(&parts.iter().map(|p| &p.series).collect::<Vec<_>>());
        s
    }

    /// The summary as a script map: `metrics` (name to a map of figures),
    /// `thresholds` (verdicts), `passed`, `duration`.
    #[must_use]
    pub fn to_map(&self) -> Map {
        crate::codec::json::from_json(self.json(), "load.summary")
            .ok()
            .and_then(|d| d.try_cast::<Map>())
            .unwrap_or_default()
    }
}

/// Round for display: 2 decimals, fewer where they are zeros.
pub(super) fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A millisecond figure with a unit (`950.00µs`, `12.30ms`, `1.20s`).
pub(super) fn ms(x: f64) -> String {
    if x.abs() >= 1000.0 {
        format!("{:.2}s", x / 1000.0)
    } else if x.abs() >= 1.0 {
        format!("{x:.2}ms")
    } else {
        format!("{:.2}µs", x * 1000.0)
    }
}

/// Bytes with an SI unit, as k6 shows data.
pub(super) fn bytes(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1} GB", x / 1e9),
        x if x >= 1e6 => format!("{:.1} MB", x / 1e6),
        x if x >= 1e3 => format!("{:.1} kB", x / 1e3),
        x => format!("{x:.0} B"),
    }
}

/// One metric's summary line after its name.
fn describe(key: &str, m: &Metric, secs: f64) -> String {
    let secs = secs.max(1e-9);
    match m.kind {
        MetricKind::Counter if key.starts_with("data_") => format!("{:<10} {}/s", bytes(m.sum), bytes(m.sum / secs)),
        MetricKind::Counter => format!("{:<10} {:.2}/s", round(m.sum), m.sum / secs),
        MetricKind::Gauge => format!("{:<10} min={} max={}", round(m.last), round(m.min), round(m.max)),
        MetricKind::Rate => format!("{:.2}%  ✓ {}  ✗ {}", m.avg() * 100.0, m.sum as u64, m.count - m.sum as u64),
        MetricKind::Trend => {
            let f = |x: f64| if m.time { ms(x) } else { format!("{}", round(x)) };
            format!(
                "avg={} min={} med={} p(90)={} p(95)={} p(99)={} max={}",
                f(m.avg()),
                f(m.min),
                f(m.quantile(0.5)),
                f(m.quantile(0.9)),
                f(m.quantile(0.95)),
                f(m.quantile(0.99)),
                f(m.max)
            )
        }
    }
}

fn metric_json(m: &Metric, elapsed: Duration) -> Value {
    let mut v = json!({
        "type": m.kind.name(),
        "count": m.count,
        "sum": m.sum,
        "min": if m.count > 0 { json!(m.min) } else { Value::Null },
        "max": if m.count > 0 { json!(m.max) } else { Value::Null },
    });
    let o = v.as_object_mut().expect("an object");
    match m.kind {
        MetricKind::Counter => {
            o.insert("rate".into(), json!(m.sum / elapsed.as_secs_f64().max(1e-9)));
        }
        MetricKind::Gauge => {
            o.insert("value".into(), json!(m.last));
        }
        MetricKind::Rate => {
            o.insert("rate".into(), json!(m.avg()));
        }
        MetricKind::Trend => {
            o.insert("time".into(), json!(m.time));
            o.insert("avg".into(), json!(m.avg()));
            for (name, q) in [("med", 0.5), ("p(90)", 0.9), ("p(95)", 0.95), ("p(99)", 0.99)] {
                o.insert(name.into(), json!(m.quantile(q)));
            }
            if let Some(h) = &m.hist {
                let mut buf = Vec::new();
                if V2DeflateSerializer::new().serialize(h, &mut buf).is_ok() {
                    o.insert("histogram".into(), json!(base64::engine::general_purpose::STANDARD.encode(buf)));
                }
            }
        }
    }
    v
}

fn metric_from_json(v: &Value) -> Result<Metric, String> {
    let kind = v.get("type").and_then(Value::as_str).and_then(MetricKind::parse).ok_or("no type")?;
    let num = |k: &str| v.get(k).and_then(Value::as_f64);
    let mut m = Metric::new(kind, v.get("time").and_then(Value::as_bool).unwrap_or(false));
    m.count = v.get("count").and_then(Value::as_u64).ok_or("no count")?;
    m.sum = num("sum").ok_or("no sum")?;
    m.min = num("min").unwrap_or(f64::INFINITY);
    m.max = num("max").unwrap_or(f64::NEG_INFINITY);
    m.last = num("value").unwrap_or(0.0);
    if kind == MetricKind::Trend {
        let text = v.get("histogram").and_then(Value::as_str).ok_or("no histogram")?;
        let raw = base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("histogram: {e}"))?;
        let mut h: hdrhistogram::Histogram<u64> =
            Deserializer::new().deserialize(&mut raw.as_slice()).map_err(|e| format!("histogram: {e:?}"))?;
        // A histogram read back has the range it was written with; merging a
        // part with larger samples into it must grow it, as recording does.
        h.auto(true);
        m.hist = Some(h);
    }
    Ok(m)
}

//! Load-test metrics: the registry that `netscript load` collects into.
//! Transports record themselves here (`data_sent`, `tcp_connect`…) when a
//! load run has switched the registry on for this host thread; otherwise a
//! record is one thread-local flag test. `load::` adds the script's own
//! metrics and reads the registry out into a summary. Like [`crate::trace`],
//! this layer knows nothing of who records or who reads.
//!
//! Four kinds, as k6 has them: a counter sums, a gauge keeps its last value
//! (and its extremes), a rate counts the share of true samples, a trend keeps
//! every sample in an HDR histogram (three significant digits; values are
//! stored in thousandths, so a trend of milliseconds resolves microseconds).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

/// What a metric does with its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Sums its samples.
    Counter,
    /// Keeps the last sample.
    Gauge,
    /// The share of true samples.
    Rate,
    /// Every sample, in a histogram.
    Trend,
}

impl MetricKind {
    /// The k6 name of the kind (`counter`, `gauge`, `rate`, `trend`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Rate => "rate",
            Self::Trend => "trend",
        }
    }

    /// The kind named `name`.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "rate" => Self::Rate,
            "trend" => Self::Trend,
            _ => return None,
        })
    }
}

/// Trend samples are stored as integers in thousandths of their unit.
pub const TREND_SCALE: f64 = 1000.0;

/// The largest sample a trend's histogram holds apart, in thousandths: 2^40,
/// about 12.7 days of milliseconds. Larger samples count as this one in the
/// percentiles (min, max and sum stay exact). A histogram grows as its
/// samples do, by 8 KiB per doubling: 16 KiB up to 2 ms, 136 KiB up to a
/// minute, 256 KiB at this bound.
pub const TREND_MAX: u64 = 1 << 40;

/// The most distinct metrics (names with their tag values) one registry
/// holds; samples for further tagged variants only reach the untagged metric,
/// so a peer answering with ever-new status codes cannot grow it unbounded.
pub const MAX_METRICS: usize = 4096;

/// One metric's samples.
#[derive(Clone, Debug)]
pub struct Metric {
    /// What the metric does with its samples.
    pub kind: MetricKind,
    /// Samples recorded (for a rate: all of them, true or not).
    pub count: u64,
    /// Sum of the samples (for a rate: the true ones).
    pub sum: f64,
    /// The smallest sample (infinite while there is none).
    pub min: f64,
    /// The largest sample (minus infinity while there is none).
    pub max: f64,
    /// The last sample (gauges).
    pub last: f64,
    /// Whether a trend's samples are milliseconds (shown with time units).
    pub time: bool,
    /// Every sample of a trend, in thousandths.
    pub hist: Option<Histogram<u64>>,
}

impl Metric {
    /// An empty metric of `kind`; `time` for trends of milliseconds.
    #[must_use]
    pub fn new(kind: MetricKind, time: bool) -> Self {
        let hist = (kind == MetricKind::Trend).then(|| Histogram::new(3).expect("3 significant digits is valid"));
        Self { kind, count: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, last: 0.0, time, hist }
    }

    /// Add one sample.
    pub fn record(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
        if let Some(h) = &mut self.hist {
            // Negative and non-finite samples keep their exact min, max and
            // sum; the histogram (percentiles) clamps them into 0..=TREND_MAX.
            let scaled = (value * TREND_SCALE).round();
            let v = if scaled.is_finite() && scaled > 0.0 { scaled.min(TREND_MAX as f64) as u64 } else { 0 };
            // `record` grows the histogram to the sample (`saturating_record`
            // would clamp it into the range the histogram started with,
            // about 2 ms); it fails only when it cannot grow, and then the
            // sample goes to the top of the range it has.
            if h.record(v).is_err() {
                h.saturating_record(v);
            }
        }
    }

    /// Fold `other` (of the same kind) into this metric: the result is what
    /// one registry that saw both sets of samples would hold (a gauge keeps
    /// the larger last value, since the two ran side by side).
    pub fn merge(&mut self, other: &Self) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.last = self.last.max(other.last);
        if let (Some(a), Some(b)) = (&mut self.hist, &other.hist) {
            let _ = a.add(b);
        }
    }

    /// The `q`-quantile (0..=1) of a trend's samples.
    #[must_use]
    pub fn quantile(&self, q: f64) -> f64 {
        match &self.hist {
            Some(h) if self.count > 0 => {
                let v = h.value_at_quantile(q) as f64 / TREND_SCALE;
                // The histogram's buckets round up; never past the true extremes.
                v.clamp(self.min.min(self.max), self.max)
            }
            _ => 0.0,
        }
    }

    /// The mean sample (for a rate: the share of true samples).
    #[must_use]
    pub fn avg(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
    }
}

/// Every metric of a run, by name (`name` or `name{tag:value}`), in order.
pub type Metrics = BTreeMap<String, Metric>;

/// The metrics being collected, hashed: a request records about a dozen
/// samples, and a tree look-up compares the name with a string at each level.
pub type Registry = HashMap<String, Metric, ahash::RandomState>;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Whether a load run is collecting on this thread.
#[must_use]
pub fn on() -> bool {
    ON.get()
}

/// Start collecting on this thread, with an empty registry.
pub fn start() {
    REGISTRY.with_borrow_mut(Registry::clear);
    ON.set(true);
}

/// Stop collecting; returns what was collected.
pub fn stop() -> Metrics {
    ON.set(false);
    REGISTRY.with_borrow_mut(std::mem::take).into_iter().collect()
}

/// Record `value` into the metric `name` of `kind`, and into `name{k:v}` for
/// each tag. Nothing happens unless a load run is collecting. A name already
/// used with another kind keeps its kind (the sample is dropped). `time`
/// marks a new trend as one of milliseconds.
pub fn record(kind: MetricKind, time: bool, name: &str, tags: &[(&str, &str)], value: f64) {
    if !on() {
        return;
    }
    REGISTRY.with_borrow_mut(|reg| {
        add(reg, kind, time, name, value);
        if tags.is_empty() {
            return;
        }
        // The tagged names are built in one reused buffer: a sample costs
        // no allocation once its metrics exist.
        KEY.with_borrow_mut(|key| {
            for (k, v) in tags {
                key.clear();
                key.push_str(name);
                key.push('{');
                key.push_str(k);
                key.push(':');
                key.push_str(v);
                key.push('}');
                add(reg, kind, time, key, value);
            }
        });
    });
}

fn add(reg: &mut Registry, kind: MetricKind, time: bool, key: &str, value: f64) {
    let put = |m: &mut Metric| {
        if m.kind == kind {
            m.record(value);
        }
    };
    // One look-up for a metric that exists (every sample after its first).
    if let Some(m) = reg.get_mut(key) {
        return put(m);
    }
    if reg.len() < MAX_METRICS {
        put(reg.entry(key.to_string()).or_insert_with(|| Metric::new(kind, time)));
    }
}

/// Add `n` to a counter (bytes sent, requests made).
pub fn count(name: &str, n: f64) {
    record(MetricKind::Counter, false, name, &[], n);
}

/// Add a duration in milliseconds to a trend.
pub fn time(name: &str, tags: &[(&str, &str)], elapsed: std::time::Duration) {
    record(MetricKind::Trend, true, name, tags, elapsed.as_secs_f64() * 1000.0);
}

/// Look at what has been collected so far, without copying it.
pub fn with<R>(f: impl FnOnce(&Registry) -> R) -> R {
    REGISTRY.with_borrow(f)
}

//! Time series of a load run: once a second, each untagged metric's figures
//! over the second just past (counts and sums as differences, trends as the
//! percentiles of the samples that arrived in it, by subtracting the
//! previous histogram). `--out csv=FILE` writes them, one row per second
//! per metric; the HTML report draws them.

use crate::metrics::{Metric, MetricKind, Metrics};

/// Most points kept (a day of one-second rows for 40 metrics); later
/// seconds are not recorded, so a long run cannot grow memory without bound.
pub const MAX_POINTS: usize = 40 * 86_400;

/// One metric over one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Seconds from the start of the run to the end of the interval.
    pub t: f64,
    /// The metric's name.
    pub metric: String,
    /// Its kind.
    pub kind: MetricKind,
    /// Samples in the interval.
    pub count: u64,
    /// Their sum (a rate: the true ones; a gauge: its value at the end).
    pub sum: f64,
    /// A trend's mean, median, 95th and 99th percentile and maximum in the
    /// interval (0 for other kinds, or when it had no samples).
    pub avg: f64,
    /// See `avg`.
    pub med: f64,
    /// See `avg`.
    pub p95: f64,
    /// See `avg`.
    pub p99: f64,
    /// See `avg`.
    pub max: f64,
}

/// The points of a run so far, and what the last sample saw.
#[derive(Clone, Default, Debug)]
pub struct Series {
    prev: Metrics,
    /// Every point, in time order (metrics by name within a second).
    pub points: Vec<Point>,
}

impl Series {
    /// Add the interval that ends at `t` seconds, from the registry `now`.
    pub fn sample<'a>(&mut self, t: f64, now: impl IntoIterator<Item = (&'a String, &'a Metric)>) {
        let mut untagged: Vec<_> = now.into_iter().filter(|(k, _)| !k.contains('{')).collect();
        untagged.sort_unstable_by_key(|(k, _)| *k);
        for &(name, m) in &untagged {
            if self.points.len() >= MAX_POINTS {
                return;
            }
            let before = self.prev.get(name);
            self.points.push(point(t, name, m, before));
        }
        self.prev = untagged.into_iter().map(|(k, m)| (k.clone(), m.clone())).collect();
    }

    /// Combine the series of runs made side by side, second by second:
    /// counts, sums and gauges add up; a trend's per-second mean is exact,
    /// its percentiles are the parts' weighted by their counts (close, not
    /// exact: the summary's percentiles, from whole histograms, are exact).
    #[must_use]
    pub fn merge(parts: &[&Self]) -> Self {
        let mut at: std::collections::BTreeMap<(i64, String), Point> = std::collections::BTreeMap::new();
        for p in parts.iter().flat_map(|s| &s.points) {
            let key = (p.t.round() as i64, p.metric.clone());
            match at.get_mut(&key) {
                None => {
                    at.insert(key, p.clone());
                }
                Some(m) => {
                    let (a, b) = (m.count as f64, p.count as f64);
                    let weigh = |x: f64, y: f64| if a + b > 0.0 { (x * a + y * b) / (a + b) } else { 0.0 };
                    m.med = weigh(m.med, p.med);
                    m.p95 = weigh(m.p95, p.p95);
                    m.p99 = weigh(m.p99, p.p99);
                    m.max = m.max.max(p.max);
                    m.t = m.t.max(p.t);
                    m.count += p.count;
                    m.sum += p.sum;
                    m.avg = if m.count > 0 && m.kind == MetricKind::Trend { m.sum / m.count as f64 } else { 0.0 };
                }
            }
        }
        let mut points: Vec<Point> = at.into_values().collect();
        points.sort_by(|a, b| a.t.total_cmp(&b.t).then_with(|| a.metric.cmp(&b.metric)));
        Self { prev: Metrics::new(), points }
    }

    /// The points as CSV: a header, then one row per second per metric.
    #[must_use]
    pub fn csv(&self) -> String {
        let mut out = String::from("time,metric,type,count,value,avg,med,p95,p99,max\n");
        for p in &self.points {
            out.push_str(&format!(
                "{:.3},{},{},{},{},{},{},{},{},{}\n",
                p.t,
                p.metric,
                p.kind.name(),
                p.count,
                p.sum,
                p.avg,
                p.med,
                p.p95,
                p.p99,
                p.max
            ));
        }
        out
    }
}

fn point(t: f64, name: &str, m: &Metric, before: Option<&Metric>) -> Point {
    let (count, sum) = match (m.kind, before) {
        (MetricKind::Gauge, _) => (m.count - before.map_or(0, |b| b.count), m.last),
        (_, Some(b)) => (m.count - b.count.min(m.count), m.sum - b.sum),
        (_, None) => (m.count, m.sum),
    };
    let mut p = Point {
        t,
        metric: name.to_string(),
        kind: m.kind,
        count,
        sum,
        avg: 0.0,
        med: 0.0,
        p95: 0.0,
        p99: 0.0,
        max: 0.0,
    };
    if let Some(h) = &m.hist
        && count > 0
    {
        let mut interval = h.clone();
        if let Some(prev) = before.and_then(|b| b.hist.as_ref()) {
            let _ = interval.subtract(prev);
        }
        let scale = crate::metrics::TREND_SCALE;
        p.avg = sum / count as f64;
        p.med = interval.value_at_quantile(0.5) as f64 / scale;
        p.p95 = interval.value_at_quantile(0.95) as f64 / scale;
        p.p99 = interval.value_at_quantile(0.99) as f64 / scale;
        p.max = interval.max() as f64 / scale;
    }
    p
}

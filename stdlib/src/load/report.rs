//! The HTML report of a load run (`netscript load --report FILE.html`):
//! one page that needs nothing else — no script, style sheet
//! or font is fetched, the charts are SVG drawn here — so it can be attached
//! to a CI job or opened offline. It shows the verdicts, the summary's
//! figures and charts of the per-second series (latency of every time
//! trend, throughput, VUs, errors), and holds the charts' data as JSON in
//! `<script type="application/json" id="series">` for tools.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::series::Point;
use super::summary::{Agg, Summary, bytes, ms, round};
use crate::http::response::html_escape as esc;
use crate::metrics::{Metric, MetricKind};

/// Most points drawn per line: more than a chart has pixels across.
const MAX_DRAWN: usize = 1000;

/// Lines of at most this many points get a marker with a hover label at
/// each; on longer ones the markers would hide the line.
const MAX_MARKERS: usize = 120;

/// Shorter intervals are left out of per-second lines: the last sample of
/// a run comes just after the one before, and a few iterations over a few
/// milliseconds would draw as a spike.
const MIN_INTERVAL: f64 = 0.25;

/// Line colours, in order: med, p95, p99 on a latency chart.
const COLORS: [&str; 4] = ["#2563eb", "#f59e0b", "#dc2626", "#16a34a"];

/// The chart's size in SVG units, and the margins left for the axes' labels.
const W: f64 = 640.0;
/// See [`W`].
const H: f64 = 220.0;
/// See [`W`].
const LEFT: f64 = 56.0;
/// See [`W`].
const RIGHT: f64 = 14.0;
/// See [`W`].
const TOP: f64 = 14.0;
/// See [`W`].
const BOTTOM: f64 = 24.0;

/// Steps of the time axis, in seconds: round to a clock reader.
const TIME_STEPS: [f64; 17] = [
    1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
    43200.0,
];

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;color:#111;background:#fff;max-width:1320px;\
margin:24px auto;padding:0 16px}h1{font-size:20px;margin:0}h2{font-size:16px;margin:24px 0 8px}\
.pass{color:#15803d}.fail{color:#b91c1c}table{border-collapse:collapse}\
th,td{padding:2px 10px;text-align:right;border-bottom:1px solid #e5e7eb;white-space:nowrap}\
th:first-child,td:first-child{text-align:left}\
#charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:20px}\
figure{margin:0}figcaption{font-weight:600}.key{font-weight:400;margin-left:12px}\
.key i{display:inline-block;width:10px;height:10px;margin-right:4px}svg{width:100%;height:auto}\
svg text{font-size:11px;fill:#555}.grid{stroke:#e5e7eb}.axis{stroke:#999}\
path{fill:none;stroke-width:2;stroke-linejoin:round}";

/// What a chart's values are.
#[derive(Clone, Copy)]
enum Unit {
    /// Milliseconds (shown as µs, ms or s as they run).
    Ms,
    /// Per second.
    PerSec,
    /// A count (VUs).
    Count,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Ms => "ms",
            Self::PerSec => "/s",
            Self::Count => "",
        }
    }

    /// A value with its unit, for a hover label.
    fn show(self, v: f64) -> String {
        match self {
            Self::Ms => ms(v),
            Self::PerSec => format!("{}/s", round(v)),
            Self::Count => format!("{}", round(v)),
        }
    }
}

/// One line: each point's time (seconds from the start) and value; `None`
/// is a second without samples, where the line breaks.
struct Line {
    name: &'static str,
    points: Vec<(f64, Option<f64>)>,
}

struct Chart {
    id: String,
    title: String,
    unit: Unit,
    lines: Vec<Line>,
}

/// The report of `summary` as an HTML page headed `title`.
#[must_use]
pub fn html(summary: &Summary, title: &str) -> String {
    let charts = charts(summary);
    let span = summary.series.points.iter().map(|p| p.t).fold(0.0, f64::max);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>\n",
        esc(title)
    );
    header(&mut out, summary, title);
    thresholds(&mut out, summary);
    figures(&mut out, summary);
    out.push_str("<h2>Over time</h2>\n");
    if charts.is_empty() {
        // A summary read back from JSON (`--merge`) has no series.
        out.push_str("<p>No time series was recorded.</p>\n");
    } else {
        out.push_str("<div id=\"charts\">\n");
        for c in &charts {
            svg(&mut out, c, span);
        }
        out.push_str("</div>\n");
    }
    // JSON never holds `<` outside strings, and `\u003c` inside one keeps a
    // `</script>` in a metric's data from closing the element.
    let data = json!({
        "title": title,
        "duration": summary.elapsed.as_secs_f64(),
        "passed": summary.passed(),
        "charts": charts.iter().map(chart_json).collect::<Vec<_>>(),
    });
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"series\">{}</script>\n</body></html>\n",
        data.to_string().replace('<', "\\u003c")
    );
    out
}

fn header(out: &mut String, s: &Summary, title: &str) {
    let verdict = match (s.passed(), s.verdicts.is_empty()) {
        (true, true) => "<span class=\"pass\">✓ passed</span> (no thresholds)".to_string(),
        (true, false) => "<span class=\"pass\">✓ every threshold passed</span>".to_string(),
        (false, _) => {
            let failed = s.verdicts.iter().filter(|v| !v.passed).count();
            format!("<span class=\"fail\">✗ {failed} of {} thresholds failed</span>", s.verdicts.len())
        }
    };
    let _ = write!(out, "<h1>{}</h1>\n<p id=\"verdict\">{verdict} · {:.1}s", esc(title), s.elapsed.as_secs_f64());
    if let Some(m) = s.metrics.get("vus_max") {
        let _ = write!(out, " · up to {} VUs", m.max.max(0.0));
    }
    if !s.segments.is_empty() {
        let _ = write!(out, " · segments {}", esc(&s.segments.join(", ")));
    }
    out.push_str("</p>\n");
    if let Some(why) = &s.aborted {
        let _ = writeln!(out, "<p class=\"fail\">Aborted: {}</p>", esc(why));
    }
}

fn thresholds(out: &mut String, s: &Summary) {
    if s.verdicts.is_empty() {
        return;
    }
    out.push_str("<h2>Thresholds</h2>\n<table><tr><th>metric</th><th>rule</th><th>got</th></tr>\n");
    for v in &s.verdicts {
        let t = &v.threshold;
        let timed = s.metrics.get(&t.metric).is_some_and(|m| m.time) && t.agg != Agg::Count;
        let got = match v.value {
            None => "no samples".to_string(),
            Some(x) if timed => ms(x),
            Some(x) => format!("{}", round(x)),
        };
        let (class, mark) = if v.passed { ("pass", '✓') } else { ("fail", '✗') };
        let _ = writeln!(
            out,
            "<tr class=\"{class}\"><td>{mark} {}</td><td>{}</td><td>{got}</td></tr>",
            esc(&t.metric),
            esc(&t.source)
        );
    }
    out.push_str("</table>\n");
}

/// The untagged metrics' figures: trends in one table, the other kinds in
/// another, then each check.
fn figures(out: &mut String, s: &Summary) {
    let secs = s.elapsed.as_secs_f64().max(1e-9);
    let untagged = || s.metrics.iter().filter(|(k, _)| !k.contains('{'));
    out.push_str(
        "<h2>Metrics</h2>\n<table id=\"trends\"><tr><th>trend</th><th>count</th><th>avg</th><th>med</th>\
<th>p(95)</th><th>p(99)</th><th>max</th></tr>\n",
    );
    for (k, m) in untagged().filter(|(_, m)| m.kind == MetricKind::Trend) {
        let f = |x: f64| if m.time { ms(x) } else { format!("{}", round(x)) };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(k),
            m.count,
            f(m.avg()),
            f(m.quantile(0.5)),
            f(m.quantile(0.95)),
            f(m.quantile(0.99)),
            f(if m.count > 0 { m.max } else { 0.0 })
        );
    }
    out.push_str(
        "</table>\n<p></p><table id=\"counts\"><tr><th>metric</th><th>type</th><th>value</th><th></th></tr>\n",
    );
    for (k, m) in untagged().filter(|(_, m)| m.kind != MetricKind::Trend) {
        let _ = writeln!(out, "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", esc(k), m.kind.name(), figure(k, m, secs));
    }
    out.push_str("</table>\n");
    let checks: Vec<_> =
        s.metrics.iter().filter_map(|(k, m)| Some((k.strip_prefix("checks{check:")?.strip_suffix('}')?, m))).collect();
    if !checks.is_empty() {
        out.push_str("<h2>Checks</h2>\n<table id=\"checks\"><tr><th>check</th><th>passed</th><th>failed</th></tr>\n");
        for (name, m) in checks {
            let fails = m.count - m.sum as u64;
            let (class, mark) = if fails == 0 { ("pass", '✓') } else { ("fail", '✗') };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\"><td>{mark} {}</td><td>{}</td><td>{fails}</td></tr>",
                esc(name),
                m.sum as u64
            );
        }
        out.push_str("</table>\n");
    }
}

/// The value and detail cells of a counter, gauge or rate.
fn figure(key: &str, m: &Metric, secs: f64) -> String {
    match m.kind {
        MetricKind::Counter if key.starts_with("data_") => {
            format!("{}</td><td>{}/s", bytes(m.sum), bytes(m.sum / secs))
        }
        MetricKind::Counter => format!("{}</td><td>{:.2}/s", round(m.sum), m.sum / secs),
        MetricKind::Gauge => format!("{}</td><td>min {} max {}", round(m.last), round(m.min), round(m.max)),
        _ => format!("{:.2}%</td><td>✓ {} ✗ {}", m.avg() * 100.0, m.sum as u64, m.count - m.sum as u64),
    }
}

/// Each point with the length of the interval it covers: from the sample
/// before it (of any metric: one that first appears counts from there).
fn intervals(points: &[Point]) -> Vec<(&Point, f64)> {
    let (mut prev, mut at) = (0.0, 0.0);
    points
        .iter()
        .map(|p| {
            if p.t > at {
                (prev, at) = (at, p.t);
            }
            (p, at - prev)
        })
        .collect()
}

/// At most [`MAX_DRAWN`] points: of each run of neighbours, the one with
/// the largest value, so that a spike stays visible.
fn thin(points: Vec<(f64, Option<f64>)>) -> Vec<(f64, Option<f64>)> {
    let per = points.len().div_ceil(MAX_DRAWN);
    if per <= 1 {
        return points;
    }
    let key = |p: &(f64, Option<f64>)| p.1.unwrap_or(f64::NEG_INFINITY);
    points.chunks(per).filter_map(|run| run.iter().copied().max_by(|a, b| key(a).total_cmp(&key(b)))).collect()
}

fn charts(s: &Summary) -> Vec<Chart> {
    let timed = intervals(&s.series.points);
    let line = |metric: &str, name: &'static str, value: &dyn Fn(&Point, f64) -> Option<f64>| Line {
        name,
        points: thin(
            timed
                .iter()
                .filter(|(p, _)| p.metric == metric)
                .map(|(p, dt)| ((p.t * 1000.0).round() / 1000.0, value(p, *dt)))
                .collect(),
        ),
    };
    let drawn = |l: &Line| l.points.iter().any(|p| p.1.is_some());
    let mut out = Vec::new();
    for (name, _) in s.metrics.iter().filter(|(k, m)| !k.contains('{') && m.kind == MetricKind::Trend && m.time) {
        let sampled = |p: &Point, v: f64| (p.count > 0).then_some(v);
        let lines = vec![
            line(name, "med", &|p, _| sampled(p, p.med)),
            line(name, "p95", &|p, _| sampled(p, p.p95)),
            line(name, "p99", &|p, _| sampled(p, p.p99)),
        ];
        if lines.iter().any(drawn) {
            out.push(Chart { id: format!("latency-{name}"), title: name.clone(), unit: Unit::Ms, lines });
        }
    }
    let per_sec = |p: &Point, dt: f64| (dt >= MIN_INTERVAL).then(|| p.sum / dt);
    let lines: Vec<Line> =
        ["iterations", "http_reqs"].map(|m| line(m, m, &per_sec)).into_iter().filter(drawn).collect();
    if !lines.is_empty() {
        out.push(Chart { id: "throughput".into(), title: "Throughput".into(), unit: Unit::PerSec, lines });
    }
    let vus = line("vus", "vus", &|p, _| Some(p.sum));
    if drawn(&vus) {
        out.push(Chart { id: "vus".into(), title: "Virtual users".into(), unit: Unit::Count, lines: vec![vus] });
    }
    let errors = line("errors", "errors", &per_sec);
    if errors.points.iter().any(|p| p.1.is_some_and(|v| v > 0.0)) {
        out.push(Chart { id: "errors".into(), title: "Errors".into(), unit: Unit::PerSec, lines: vec![errors] });
    }
    out
}

fn chart_json(c: &Chart) -> Value {
    let lines: Vec<Value> = c
        .lines
        .iter()
        .map(|l| json!({ "name": l.name, "points": l.points.iter().map(|(t, v)| json!([t, v])).collect::<Vec<_>>() }))
        .collect();
    json!({ "id": c.id, "title": c.title, "unit": c.unit.name(), "lines": lines })
}

/// A round step near `x`: 1, 2 or 5 times a power of ten.
fn nice(x: f64) -> f64 {
    let power = 10f64.powf(x.log10().floor());
    let f = x / power;
    power
        * if f <= 1.0 {
            1.0
        } else if f <= 2.0 {
            2.0
        } else if f <= 5.0 {
            5.0
        } else {
            10.0
        }
}

/// A tick's label, with as many decimals as its `step` needs (and `k`/`M`
/// for thousands and millions).
fn tick(v: f64, step: f64) -> String {
    let (div, suffix) = if step >= 1e6 {
        (1e6, "M")
    } else if step >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    // -log10 of a step of 10^-k is k, give or take a rounding error.
    if v == 0.0 {
        return "0".into();
    }
    let decimals = if step / div >= 1.0 { 0 } else { (-(step / div).log10() - 1e-9).ceil() as usize };
    format!("{:.decimals$}{suffix}", v / div)
}

/// `t` seconds as a clock reader writes them: `45s`, `2m`, `1h30m`.
fn clock(t: f64) -> String {
    let secs = t.round() as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            let _ = write!(out, "{n}{unit}");
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// One chart as a figure: its title and key, then the SVG with both axes
/// from zero (time across `span` seconds, values up to a round step above
/// the largest).
fn svg(out: &mut String, c: &Chart, span: f64) {
    let _ = write!(out, "<figure id=\"{}\"><figcaption>{}", esc(&c.id), esc(&c.title));
    for (l, color) in c.lines.iter().zip(COLORS.iter().cycle()) {
        let _ = write!(out, "<span class=\"key\"><i style=\"background:{color}\"></i>{}</span>", esc(l.name));
    }
    out.push_str("</figcaption>\n");
    let top = c.lines.iter().flat_map(|l| l.points.iter().filter_map(|p| p.1)).fold(0.0, f64::max);
    // Time values are drawn in the unit that suits their size.
    let (scale, unit) = match c.unit {
        Unit::Ms if top >= 1000.0 => (1000.0, "s"),
        Unit::Ms if top > 0.0 && top < 1.0 => (0.001, "µs"),
        u => (1.0, u.name()),
    };
    let step = nice(if top > 0.0 { top / scale / 4.0 } else { 0.25 });
    let ymax = ((top / scale / step).ceil() * step).max(step);
    let span = span.max(1e-9);
    let x = |t: f64| LEFT + t / span * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (1.0 - v / scale / ymax) * (H - TOP - BOTTOM);
    let _ = write!(out, "<svg viewBox=\"0 0 {W} {H}\" role=\"img\"><text x=\"4\" y=\"{}\">{unit}</text>", TOP - 2.0);
    for i in 0..=(ymax / step).round() as usize {
        let v = i as f64 * step;
        let at = y(v * scale);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{at:.1}\" y2=\"{at:.1}\"/>\
<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            at + 4.0,
            tick(v, step)
        );
    }
    let tstep =
        TIME_STEPS.iter().copied().find(|s| span / s <= 8.0).unwrap_or_else(|| (span / 8.0 / 86400.0).ceil() * 86400.0);
    for i in 0..=(span / tstep).floor() as usize {
        let t = i as f64 * tstep;
        let _ = write!(
            out,
            "<line class=\"axis\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1}\" y2=\"{2}\"/>\
<text x=\"{0:.1}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>",
            x(t),
            H - BOTTOM,
            H - BOTTOM + 4.0,
            H - BOTTOM + 16.0,
            clock(t)
        );
    }
    let _ = write!(out, "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{1}\" y2=\"{1}\"/>", W - RIGHT, H - BOTTOM);
    for (l, color) in c.lines.iter().zip(COLORS.iter().cycle()) {
        let (mut d, mut marks, mut pen) = (String::new(), String::new(), false);
        for &(t, v) in &l.points {
            let Some(v) = v else {
                pen = false;
                continue;
            };
            let _ = write!(d, "{}{:.1},{:.1}", if pen { 'L' } else { 'M' }, x(t), y(v));
            pen = true;
            if l.points.len() <= MAX_MARKERS {
                let _ = write!(
                    marks,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{color}\"><title>{} at {}: {}</title></circle>",
                    x(t),
                    y(v),
                    esc(l.name),
                    clock(t),
                    c.unit.show(v)
                );
            }
        }
        let _ = write!(out, "<path d=\"{d}\" stroke=\"{color}\"><title>{}</title></path>{marks}", esc(l.name));
    }
    out.push_str("</svg></figure>\n");
}

//! `netscript load --report FILE.html`: the page holds the run's time series
//! as JSON, refers to nothing outside itself, and draws its charts in a real
//! headless Chromium with no script errors.

use crate::util::cli;
use serde_json::Value;

/// A run of the echo example with a report; the page's text.
fn echo_report(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("netscript-load-report-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("report.html");
    let _ = std::fs::remove_file(&file);
    let (status, out, err) = cli(&[
        "load",
        "scripts/load_echo.rhai",
        "--vus",
        "2",
        "--duration",
        "3s",
        "-q",
        "--report",
        file.to_str().unwrap(),
    ]);
    assert_eq!(status, 0, "{out}\n{err}");
    let html = std::fs::read_to_string(&file).expect("report written");
    (file, html)
}

/// The JSON of `<script type="application/json" id="series">`.
fn series(html: &str) -> Value {
    let open = r#"<script type="application/json" id="series">"#;
    let start = html.find(open).expect("series element") + open.len();
    let end = start + html[start..].find("</script>").expect("its end");
    serde_json::from_str(&html[start..end]).expect("series is JSON")
}

/// A chart's line of the series JSON: its `(seconds, value)` points, those
/// of seconds without a value (`null`) left out.
fn points(data: &Value, chart: &str, line: &str) -> Vec<(f64, f64)> {
    let found = data["charts"].as_array().unwrap().iter().find(|c| c["id"] == chart);
    let found = found.unwrap_or_else(|| panic!("no chart {chart:?} in {data}"));
    let points = found["lines"].as_array().unwrap().iter().find(|l| l["name"] == line);
    let points = points.unwrap_or_else(|| panic!("no line {line} in {found}"))["points"].as_array().unwrap();
    points.iter().filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?))).collect()
}

#[test]
fn the_report_holds_the_series_and_refers_to_nothing_outside() {
    let (_, html) = echo_report("series");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(html.contains("<h1>load_echo.rhai</h1>") && html.contains("✓ every threshold passed"), "{html}");
    for rule in ["p(95) &lt; 50", "rate &gt; 0.99", "count &lt; 1"] {
        assert!(html.contains(rule), "threshold {rule} missing");
    }
    for metric in ["<td>iterations</td>", "<td>echo_rtt</td>", "<td>vus</td>"] {
        assert!(html.contains(metric), "metric row {metric} missing");
    }
    let lower = html.to_ascii_lowercase();
    for outside in ["http://", "https://", "src=", "href=", "url(", "@import", "//cdn"] {
        assert!(!lower.contains(outside), "the report refers to {outside}");
    }
    let data = series(&html);
    let iterations = points(&data, "throughput", "iterations");
    assert!(iterations.len() >= 3, "{iterations:?}");
    assert!(iterations.iter().all(|&(_, v)| v > 0.0), "{iterations:?}");
    for line in ["med", "p95", "p99"] {
        let latency = points(&data, "latency-echo_rtt", line);
        assert!(latency.len() >= 3, "{line}: {latency:?}");
        assert!(latency.iter().all(|&(_, v)| v > 0.0 && v < 50.0), "{line}: {latency:?}");
    }
    let seconds: Vec<f64> = iterations.iter().map(|p| p.0).collect();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]) && seconds[0] > 0.5, "{seconds:?}");
    assert!(points(&data, "vus", "vus").iter().any(|&(_, v)| v == 2.0), "{data}");
}

/// `--merge` reports on summaries read from JSON, which keep no series.
#[test]
fn a_merge_reports_without_charts() {
    let dir = std::env::temp_dir().join(format!("netscript-load-report-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (json, page) = (dir.join("a.json"), dir.join("merged.html"));
    let (json, page) = (json.to_str().unwrap(), page.to_str().unwrap());
    let (status, out, err) =
        cli(&["load", "scripts/load_echo.rhai", "--vus", "1", "--iterations", "20", "-q", "--summary-json", json]);
    assert_eq!(status, 0, "{out}\n{err}");
    let (status, out, err) = cli(&["load", "--merge", json, "--report", page]);
    assert_eq!(status, 0, "{out}\n{err}");
    let html = std::fs::read_to_string(page).expect("report written");
    assert!(html.contains("<h1>merged summary</h1>") && html.contains("No time series"), "{html}");
    assert_eq!(series(&html)["charts"], serde_json::json!([]), "{html}");
}

/// The page opens from a file in Chromium: no errors, no resource fetched,
/// the SVG charts have their lines, and screenshots of them show coloured
/// pixels (counted by decoding the PNG with Python's zlib and struct).
#[test]
fn chromium_draws_the_report_charts() {
    let (file, _) = echo_report("chromium");
    let Some(out) = crate::util::chromium(
        "chromium_draws_the_report_charts",
        &format!(
            r##"import json, struct, zlib
def coloured(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat = 8, b""
    while at < len(png):
        n, kind = struct.unpack(">I4s", png[at:at + 8])
        body = png[at + 8:at + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    assert depth == 8 and ctype in (2, 6), (depth, ctype)
    bpp = 4 if ctype == 6 else 3
    raw, stride, prev, count, pos = zlib.decompress(idat), w * bpp, bytearray(w * bpp), 0, 0
    for _ in range(h):
        f, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            r, g, bl = line[x], line[x + 1], line[x + 2]
            if max(r, g, bl) - min(r, g, bl) > 60:
                count += 1
        prev = line
    return count
d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {{"source":
    "window.__errors = []; addEventListener('error', e => __errors.push(String(e.message)));"}})
d.set_window_size(1000, 1200)
d.get("file://{file}")
print("errors", json.dumps(d.execute_script("return window.__errors")))
print("severe", len([e for e in d.get_log("browser") if e["level"] == "SEVERE"]))
print("fetched", d.execute_script("return performance.getEntriesByType('resource').length"))
print("charts", d.execute_script("return JSON.parse(document.getElementById('series').textContent).charts.length"))
figures = d.find_elements(By.CSS_SELECTOR, "#charts figure")
print("svgs", len(d.find_elements(By.CSS_SELECTOR, "#charts figure svg")))
for f in figures:
    s = f.find_element(By.TAG_NAME, "svg")
    paths = [p for p in s.find_elements(By.TAG_NAME, "path") if p.get_attribute("d")]
    size = s.size
    print("chart", f.get_attribute("id"), len(paths), size["width"], size["height"], coloured(s.screenshot_as_png))
"##,
            file = file.display()
        ),
    ) else {
        return;
    };
    let line = |key: &str| out.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {out}"));
    assert_eq!(line("errors "), "errors []", "{out}");
    assert_eq!(line("severe "), "severe 0", "{out}");
    assert_eq!(line("fetched "), "fetched 0", "{out}");
    let charts: usize = line("charts ")[7..].parse().unwrap();
    assert_eq!(line("svgs "), format!("svgs {charts}"), "{out}");
    let drawn: Vec<Vec<&str>> =
        out.lines().filter(|l| l.starts_with("chart ")).map(|l| l.split(' ').collect()).collect();
    assert!(drawn.len() >= 3, "{out}");
    for id in ["latency-echo_rtt", "throughput", "vus"] {
        let chart = drawn.iter().find(|c| c[1] == id).unwrap_or_else(|| panic!("no chart {id}: {out}"));
        let paths: usize = chart[2].parse().unwrap();
        let (width, height): (f64, f64) = (chart[3].parse().unwrap(), chart[4].parse().unwrap());
        let pixels: usize = chart[5].parse().unwrap();
        assert!(paths >= 1 && width > 300.0 && height > 150.0, "{id}: {out}");
        assert!(pixels > 200, "{id}: only {pixels} coloured pixels: {out}");
    }
}

//! `html::` against BeautifulSoup: the same pages (well-formed, broken,
//! foreign content, forms, a generated megabyte) parsed by netscript and by
//! BeautifulSoup over html5lib (the HTML5 tree-building algorithm
//! html5ever follows), compared on selected elements (tag, attributes,
//! text), `get_text`, titles, links and the fields forms would submit
//! (tests/it/html_oracle.py). Plus errors, limits and `form.fill`.

use serde_json::Value;

use crate::util::{eval, repo_root};

/// Selectors covering tags, classes, ids, every attribute operator, the
/// four combinators and the structural pseudo-classes.
const SELECTORS: &[&str] = &[
    "p",
    "li",
    "b i",
    "i",
    "div.note, p.note",
    "#main",
    ".item.first",
    "a[href]",
    "a[href^='http']",
    "a[href$='.pdf']",
    "a[href*='example']",
    "[lang|=en]",
    "[class~=big]",
    "[data-x='1']",
    "input[type=checkbox]",
    "ul > li",
    "div p",
    "h2 + p",
    "h2 ~ p",
    "li:nth-child(2)",
    "li:nth-child(odd)",
    "li:nth-child(3n+1)",
    "li:first-child",
    "li:last-child",
    "li:only-child",
    "p:not(.note)",
    "td:nth-of-type(2)",
    "tr:first-child td",
    "table td",
    "body > *",
    "option",
    "textarea",
    "title",
    "svg a",
    "template p",
];

/// The script that builds, for each page, what the oracle builds.
const SCRIPT: &str = r#"
let job = json::decode(ARGS[0]);
let out = #{};
for p in job.pages {
    let doc = if p[2] == () { html::parse(p[1]) } else { html::parse(p[1], #{url: p[2]}) };
    let sel = #{};
    for css in job.selectors {
        let found = [];
        for e in doc.select(css) {
            let attrs = [];
            let m = e.attrs;
            for k in m.keys() { attrs.push([k, m[k]]); }
            found.push([e.tag, attrs, e.text(), e.text(#{separator: "|", strip: true})]);
        }
        sel[css] = found;
    }
    let forms = [];
    for f in doc.forms() {
        forms.push(#{action: f.action, method: f.method, enctype: f.enctype, fields: f.fields});
    }
    out[p[0]] = #{
        text: doc.text(),
        text_strip: doc.text(#{separator: "|", strip: true}),
        title: doc.title,
        select: sel,
        links: doc.links(),
        forms: forms,
    };
}
json::encode(out)
"#;

/// A page of about a megabyte: repeated blocks with classes, links, lists
/// and tables, and now and then broken markup.
fn big_page() -> String {
    let mut s = String::from("<!doctype html><html><head><title>Big page</title></head><body><div id=main>");
    let mut i = 0u64;
    while s.len() < 1 << 20 {
        s.push_str(&format!(
            "<div class=\"row r{}\" id=\"row{i}\"><h2>Title {i}</h2><p class=\"{}\">Text {i} &amp; more \
             <a href=\"/item/{i}?x={}\">link {i}</a></p><ul><li>a{i}</li><li class=\"item\">b</li><li>c</li></ul>\
             <table><tr><td>{i}</td><td>{}</td></tr></table></div>\n",
            i % 7,
            if i.is_multiple_of(2) { "even" } else { "odd note" },
            i % 13,
            i * i
        ));
        if i.is_multiple_of(50) {
            s.push_str("<p>unclosed <b>bold <i>both</b> italic</i> <table>stray<tr><td>x</table>\n");
        }
        i += 1;
    }
    s
}

fn pages() -> Vec<(String, String, Option<String>)> {
    let dir = repo_root().join("tests/it/html_pages");
    let mut pages: Vec<(String, String, Option<String>)> = std::fs::read_dir(&dir)
        .expect("html_pages")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .map(|p| {
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).expect("page");
            (name.clone(), text, Some(format!("http://example.com/site/{name}.html")))
        })
        .collect();
    pages.sort();
    assert!(pages.len() >= 4, "pages missing from {}", dir.display());
    // One page without a URL: links and actions come as written.
    let basic = pages.iter().find(|p| p.0 == "basic").expect("basic.html").1.clone();
    pages.push(("basic-no-url".into(), basic, None));
    pages.push(("big".into(), big_page(), Some("http://example.com/big/".into())));
    pages
}

fn job(pages: &[(String, String, Option<String>)], parser: &str) -> String {
    serde_json::json!({"pages": pages, "selectors": SELECTORS, "parser": parser}).to_string()
}

fn oracle(job: &str) -> Value {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .arg(repo_root().join("tests/it/html_oracle.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 starts");
    child.stdin.take().expect("stdin").write_all(job.as_bytes()).expect("job written");
    let out = child.wait_with_output().expect("oracle runs");
    assert!(out.status.success(), "oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("oracle prints JSON")
}

/// Run `script` with `ARGS` set to `args`.
fn run(script: &str, args: &[String]) -> rhai::Dynamic {
    let host = netscript::Host::builder().build().expect("host starts");
    host.run_source("<html test>", script, args)
        .map_err(|e| format!("{}: {}", e.kind(), e.message()))
        .expect("script runs")
}

fn netscript(job: &str) -> Value {
    let out = run(SCRIPT, &[job.to_owned()]);
    serde_json::from_str(&out.into_string().expect("a string")).expect("script prints JSON")
}

/// Every place where `ours` and `theirs` differ, as `path: ours != theirs`.
fn diff(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                diff(&format!("{path}.{k}"), a.get(k).unwrap_or(&Value::Null), v, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if ours != theirs => {
            let short = |v: &Value| {
                let s = v.to_string();
                if s.len() > 400 {
                    format!("{}…", &s[..s.char_indices().nth(400).map_or(s.len(), |c| c.0)])
                } else {
                    s
                }
            };
            out.push(format!("{path}:\n  netscript: {}\n  bs4:       {}", short(ours), short(theirs)));
        }
        _ => {}
    }
}

fn assert_same(ours: &Value, theirs: &Value) {
    let mut diffs = Vec::new();
    diff("", ours, theirs, &mut diffs);
    let n = diffs.len();
    diffs.truncate(20);
    assert!(n == 0, "{n} differences from BeautifulSoup:\n{}", diffs.join("\n"));
}

#[test]
fn same_tree_text_links_and_forms_as_beautifulsoup_html5lib() {
    let job = job(&pages(), "html5lib");
    let theirs = oracle(&job);
    let ours = netscript(&job);
    // The comparison must see what it compares: many selections, forms, links.
    let selected: usize = theirs
        .as_object()
        .expect("pages")
        .values()
        .flat_map(|p| p["select"].as_object().expect("select").values())
        .map(|v| v.as_array().map_or(0, Vec::len))
        .sum();
    assert!(selected > 10_000, "only {selected} elements selected");
    assert!(theirs["forms"]["forms"].as_array().is_some_and(|f| f.len() >= 5));
    assert_same(&ours, &theirs);
}

/// `v` without the texts that keep whitespace (libxml2 shortens
/// whitespace-only text between tags to its first line break).
fn without_raw_text(mut v: Value) -> Value {
    for page in v.as_object_mut().expect("pages").values_mut() {
        page.as_object_mut().expect("page").remove("text");
        for found in page["select"].as_object_mut().expect("select").values_mut() {
            for el in found.as_array_mut().expect("elements") {
                el.as_array_mut().expect("element").remove(2);
            }
        }
    }
    v
}

/// On well-formed markup lxml builds the same tree (but for whitespace-only
/// text, see [`without_raw_text`]); on broken markup it differs from
/// browsers (it does not reparent misnested formatting or foster-parent
/// stray table content), so only the well-formed page is compared.
#[test]
fn same_as_beautifulsoup_lxml_on_well_formed_markup() {
    let all = pages();
    let basic: Vec<_> = all.into_iter().filter(|p| p.0 == "basic").collect();
    let job = job(&basic, "lxml");
    assert_same(&without_raw_text(netscript(&job)), &without_raw_text(oracle(&job)));
}

#[test]
fn a_bad_selector_is_a_value_error_naming_it() {
    for css in ["li[", "p >", "::nope(", "a:unknown-pseudo", "", "#"] {
        let err = eval(&format!("html::parse(\"<p>x</p>\").select({css:?})")).expect_err(css);
        assert!(err.starts_with("value: select: bad CSS selector"), "{css}: {err}");
        assert!(err.contains(&format!("'{css}'")), "{css}: {err}");
    }
    let nested = ":not(".repeat(2_000);
    let err = eval(&format!("html::parse(\"<p>x</p>\").select_one({nested:?})")).expect_err("nested");
    assert!(err.contains("nested more than"), "{err}");
}

#[test]
fn elements_navigate_and_serialise() {
    let got = eval(
        r##"
        let doc = html::parse("<div id=d><p>a<br>b</p> text <!--c--><p class=x>c</p></div>");
        let d = doc.select_one("#d");
        let kids = d.children();
        [kids.len(), kids[1].attr("class"), kids[0].parent().attr("id"), doc.root.tag, doc.root.parent(),
         d.inner_html(), kids[0].html(), d.select("p").len(), doc.select_one("span"), d.attr("nope"),
         d.select(":scope > p.x").len(), doc.select_one("br").children().len(), doc.title]
        "##,
    )
    .expect("runs");
    let got: Vec<String> = got.into_array().expect("array").iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "2",
            "x",
            "d",
            "html",
            "",
            r#"<p>a<br>b</p> text <!--c--><p class="x">c</p>"#,
            "<p>a<br>b</p>",
            "2",
            "",
            "",
            "1",
            "0",
            ""
        ]
    );
}

#[test]
fn fill_replaces_adds_and_refuses_unknown_names() {
    let got = eval(
        r##"
        let f = html::parse("<form><input name=a value=1><input type=checkbox name=c value=x>" +
            "<select name=s multiple><option>p<option>q</select><input type=submit name=go value=Go>" +
            "<input name=z value=last></form>").forms()[0];
        let r = [f.fields, f.buttons];
        r.push(f.fill(#{c: "x", a: ()}).fields);
        r.push(f.fill(#{s: ["q", "p"], "go": "Go"}).fields);
        r.push(f.fill(#{a: 2}).fill(#{a: [3, 4]}).fields);
        r.push(f.fill(#{extra: "e"}, #{add: true}).fields);
        r.push(f.fields);
        try { f.fill(#{nope: 1}) } catch (e) { r.push(e.kind); r.push(e.message) }
        try { f.fill(#{a: #{}}) } catch (e) { r.push(e.kind) }
        r
        "##,
    )
    .expect("runs");
    let got: Vec<String> = got.into_array().expect("array").iter().map(ToString::to_string).collect();
    assert_eq!(got[0], r#"[["a", "1"], ["z", "last"]]"#);
    assert_eq!(got[1], r#"[["go", "Go"]]"#);
    assert_eq!(got[2], r#"[["c", "x"], ["z", "last"]]"#);
    assert_eq!(got[3], r#"[["a", "1"], ["s", "q"], ["s", "p"], ["go", "Go"], ["z", "last"]]"#);
    assert_eq!(got[4], r#"[["a", "3"], ["a", "4"], ["z", "last"]]"#);
    assert_eq!(got[5], r#"[["a", "1"], ["z", "last"], ["extra", "e"]]"#);
    assert_eq!(got[6], got[0], "fill leaves the original form alone");
    assert_eq!(got[7], "value");
    assert!(got[8].contains("'nope'") && got[8].contains("a, c, s, go, z"), "{}", got[8]);
    assert_eq!(got[9], "value");
}

#[test]
fn huge_and_deeply_nested_pages_do_not_crash() {
    // 100,000 nested inline elements, 5,000 nested blocks, a 20 MB page:
    // every walk over them (text, serialisation, selection) is iterative.
    const ROW: &str = "<tr><td class=c>cell</td><td>two &amp; three</td></tr>";
    const ROWS: usize = 20_000_000 / ROW.len();
    let got = run(
        r##"
        let page = ""; for i in 0..100000 { page += "<span>"; }
        let doc = html::parse(page + "deep");
        let r = [doc.select("span").len(), doc.text(), doc.html().len(), doc.select_one("span span span").tag];
        let spans = doc.select("span");
        r.push(spans[spans.len() - 1].parent().tag);
        let blocks = ""; for i in 0..5000 { blocks += "<div>"; }
        r.push(html::parse(blocks + "x").select("div > div").len());
        r.push(html::parse(ARGS[0]).select("td.c").len());
        r
        "##,
        &[format!("<table>{}", ROW.repeat(ROWS))],
    );
    let got: Vec<String> = got.into_array().expect("array").iter().map(ToString::to_string).collect();
    assert_eq!(got[0], "100000");
    assert_eq!(got[1], "deep");
    assert!(got[2].parse::<usize>().expect("length") > 1_300_000);
    assert_eq!(got[3], "span");
    assert_eq!(got[4], "span");
    assert_eq!(got[5], "4999");
    assert_eq!(got[6], ROWS.to_string(), "one td.c per row of the 20 MB table");
}

#[test]
fn options_are_checked() {
    for code in [
        r#"html::parse("x", #{nope: 1})"#,
        r#"html::parse("x").text(#{strip: 1})"#,
        r#"html::parse("x").text(#{sep: ","})"#,
        r#"html::parse("<form></form>").forms()[0].fill(#{}, #{append: true})"#,
    ] {
        let err = eval(code).expect_err(code);
        assert!(err.starts_with("value: "), "{code}: {err}");
    }
}

#[test]
fn big_pages_are_parsed_off_the_event_loop() {
    // A task that counts while the main script parses: it can only run if
    // the parse waits on a worker thread instead of holding the event loop.
    let got = run(
        r#"
        let ch = task::channel(65536);
        let t = task::start(|| { loop { ch.send(1); task::yield_now(); } });
        let rows = html::parse(ARGS[0]).select("tr").len();
        t.cancel();
        [rows, ch.len > 0]
        "#,
        &[format!("<table>{}", "<tr><td>x</td></tr>".repeat(200_000))],
    );
    let got: Vec<String> = got.into_array().expect("array").iter().map(ToString::to_string).collect();
    assert_eq!(got, ["200000", "true"]);
}

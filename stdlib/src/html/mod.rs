//! `html::` — parse HTML the way browsers do (html5ever, through `scraper`)
//! and pick elements with CSS selectors, as BeautifulSoup users do with
//! `soup.select(css)`.
//!
//! A document is one parsed tree shared by every element taken from it: an
//! element is the document plus a node id, so handles are cheap to copy and
//! keep the tree alive. Walks over the tree (text, serialisation, forms) use
//! explicit iteration, never recursion, so a page nested 100,000 levels deep
//! is as safe as a flat one.
//!
//! ```rhai
//! let doc = html::parse("<ul><li class='a'>one</li><li>two</li></ul>");
//! for li in doc.select("li") { print(li.text()) }   // one, two
//! print(doc.select_one("li.a").attr("class"));       // a
//! ```

mod form;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use html5ever::driver::{self, ParseOpts};
use html5ever::tendril::TendrilSink;
use html5ever::tree_builder::TreeBuilderOpts;
use rhai::plugin::*;
use rhai::{Array, Dynamic, EvalAltResult, Map};
use scraper::{ElementRef, Html, HtmlTreeSink, Node, Selector};

pub use form::{Form, Submitted};

use crate::args::Opts;
use crate::error::{Error, NativeResult};
use crate::runtime;

/// Longest CSS selector accepted (a selector is a line of code, not data).
const SELECTOR_MAX: usize = 16 << 10;
/// Deepest nesting of parentheses in a selector (`:not(:is(…))`); the
/// selector parser recurses once per level.
const SELECTOR_DEPTH_MAX: usize = 32;
/// Pages this long (bytes) or longer are parsed on the blocking pool:
/// html5ever parses some 20–40 MB/s, so this is a millisecond or more.
const PARSE_OFFLOAD_MIN: usize = 64 << 10;
/// Documents of this many nodes or more (about a megabyte of markup) are
/// searched on the blocking pool.
const SELECT_OFFLOAD_NODES: usize = 50_000;
/// Most parse errors kept in `doc.errors` (a broken page can have one per byte).
const ERRORS_MAX: usize = 1000;

/// A parsed HTML document; clones share the tree.
#[derive(Clone)]
pub struct Document(Arc<DocInner>);

struct DocInner {
    /// `Html` is `Send` but not `Sync` (its elements cache ids and classes in
    /// cells), so the tree sits behind a lock; scripts run on one thread, so
    /// it is never contended.
    html: Mutex<Html>,
    /// The nodes inside `<template>` contents, which selectors do not see
    /// (as in browsers and soupsieve); usually none.
    in_template: HashSet<NodeId>,
    /// How many nodes the tree has (to decide where `select` runs).
    nodes: usize,
    /// The URL the page came from (`html::parse(text, #{url})`), if given.
    url: Option<String>,
}

/// One element of a [`Document`].
#[derive(Clone)]
pub struct Element {
    doc: Document,
    id: NodeId,
}

impl Document {
    /// Parse `text` as a whole HTML document (never fails: broken markup is
    /// repaired as browsers repair it). Pages of 64 KiB or more (about a
    /// millisecond of parsing) are parsed off the event loop.
    pub fn parse(text: &str, url: Option<String>) -> NativeResult<Self> {
        let owned = text.to_owned();
        let size = if text.len() >= PARSE_OFFLOAD_MIN { runtime::OFFLOAD_THRESHOLD } else { 0 };
        let (html, in_template) = runtime::offload("html::parse", size, move || Ok::<_, Error>(parse_html(&owned)))?;
        let nodes = html.tree.values().count();
        Ok(Self(Arc::new(DocInner { html: Mutex::new(html), in_template, nodes, url })))
    }

    /// The URL given to [`Document::parse`].
    #[must_use]
    pub fn url(&self) -> Option<&str> {
        self.0.url.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Html> {
        self.0.html.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn element(&self, id: NodeId) -> Element {
        Element { doc: self.clone(), id }
    }

    /// The elements below node `scope` (the whole document when `None`)
    /// that match `css`, in document order. On a large document this runs
    /// off the event loop: a selector such as `div span` walks every
    /// element's ancestors, which a deeply nested page makes slow.
    fn select(&self, scope: Option<NodeId>, css: &str, first: bool) -> Result<Vec<Element>, Box<EvalAltResult>> {
        let selector = parse_selector(css)?;
        let size = if self.0.nodes >= SELECT_OFFLOAD_NODES { runtime::OFFLOAD_THRESHOLD } else { 0 };
        let doc = self.clone();
        let ids = runtime::offload("select", size, move || Ok::<_, Error>(doc.matching(scope, &selector, first)))?;
        Ok(ids.into_iter().map(|id| self.element(id)).collect())
    }

    fn matching(&self, scope: Option<NodeId>, selector: &Selector, first: bool) -> Vec<NodeId> {
        let html = self.lock();
        let hidden = &self.0.in_template;
        match scope.and_then(|id| html.tree.get(id)).and_then(ElementRef::wrap) {
            // Inside a template, its contents are what is searched.
            Some(el) if el.value().name() == "template" || hidden.contains(&el.id()) => {
                pick(el.select(selector), &HashSet::new(), first)
            }
            Some(el) => pick(el.select(selector), hidden, first),
            // `Html::select` goes in the order nodes were made, which is not
            // document order where the parser moved one (foster parenting).
            None => {
                let root = html.root_element();
                let with_root = selector.matches(&root).then_some(root);
                pick(with_root.into_iter().chain(root.select(selector)), hidden, first)
            }
        }
    }

    /// The document's base URL: its first `<base href>` resolved against
    /// the URL it came from (or `base`, when given), as a browser takes it.
    fn base_url(&self, base: Option<&str>) -> Option<String> {
        let given = base.or(self.url());
        let html = self.lock();
        let base_href = html
            .tree
            .root()
            .descendants()
            .filter_map(ElementRef::wrap)
            .find(|e| e.value().name() == "base" && e.value().attr("href").is_some())
            .and_then(|e| e.value().attr("href"))
            .map(|h| h.trim_matches(is_ascii_ws).to_owned());
        match (given, base_href) {
            (Some(g), Some(h)) => Some(join(g, &h)),
            (None, Some(h)) => Some(h),
            (g, None) => g.map(str::to_owned),
        }
    }

    /// `href` of every `<a href>`, in document order, resolved against the
    /// base URL (those inside a `<template>` are inert, as in browsers).
    fn links(&self, base: Option<&str>) -> Vec<String> {
        let base = self.base_url(base);
        let html = self.lock();
        html.tree
            .root()
            .descendants()
            .filter_map(ElementRef::wrap)
            .filter(|e| e.value().name() == "a" && !self.0.in_template.contains(&e.id()))
            .filter_map(|e| e.value().attr("href"))
            .map(|href| {
                let href = href.trim_matches(is_ascii_ws);
                base.as_deref().map_or_else(|| href.to_owned(), |b| join(b, href))
            })
            .collect()
    }
}

/// Parse a document as a browser without scripts does (so `<noscript>`
/// holds markup, as in BeautifulSoup and lxml), and note which nodes are
/// template contents.
fn parse_html(text: &str) -> (Html, HashSet<NodeId>) {
    let opts = ParseOpts {
        tree_builder: TreeBuilderOpts { scripting_enabled: false, ..TreeBuilderOpts::default() },
        ..ParseOpts::default()
    };
    let html = driver::parse_document(HtmlTreeSink::new(Html::new_document()), opts).one(text);
    let mut in_template = HashSet::new();
    // Template contents hang below a fragment node of their template.
    for fragment in html.tree.nodes().filter(|n| n.value().is_fragment()) {
        in_template.extend(fragment.descendants().map(|n| n.id()));
    }
    (html, in_template)
}

fn pick<'a>(found: impl Iterator<Item = ElementRef<'a>>, hidden: &HashSet<NodeId>, first: bool) -> Vec<NodeId> {
    let ids = found.map(|e| e.id()).filter(|id| !hidden.contains(id));
    if first { ids.take(1).collect() } else { ids.collect() }
}

/// Parse a CSS selector, bounding its size and nesting first.
fn parse_selector(css: &str) -> Result<Selector, Error> {
    let bad = |why: String| Error::value("select", format!("bad CSS selector '{}': {why}", clip(css)));
    if css.len() > SELECTOR_MAX {
        return Err(bad(format!("longer than {SELECTOR_MAX} bytes")));
    }
    let mut depth = 0usize;
    for c in css.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > SELECTOR_DEPTH_MAX {
            return Err(bad(format!("nested more than {SELECTOR_DEPTH_MAX} levels")));
        }
    }
    Selector::parse(css).map_err(|e| bad(e.to_string()))
}

/// At most 100 characters of `s`, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Resolve `href` against `base` as Python's `urllib.parse.urljoin` does;
/// an href `urljoin` would reject (a broken IPv6 host) comes as written.
fn join(base: &str, href: &str) -> String {
    crate::url::join(base, href, true, "html").unwrap_or_else(|_| href.to_owned())
}

/// ASCII whitespace as the HTML standard defines it (what browsers strip
/// from URLs in attributes).
fn is_ascii_ws(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Python's `str.isspace()`: Unicode whitespace plus the four ASCII
/// information separators Python also counts.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// Elements whose text BeautifulSoup keeps apart (`Script`, `Stylesheet`,
/// `TemplateString`, ruby text): their strings count only when the text of
/// that element itself (or of something inside it) is asked for.
const STRING_CONTAINERS: [&str; 5] = ["script", "style", "template", "rt", "rp"];

fn container(node: NodeRef<'_, Node>) -> Option<&str> {
    let name = node.value().as_element()?.name();
    STRING_CONTAINERS.iter().copied().find(|c| *c == name)
}

/// The text of `node` as BeautifulSoup's `get_text(separator, strip)` gives
/// it: every text node below, in order, each stripped (Python's
/// `str.strip`) and dropped when empty if `strip`, joined by `separator`.
/// Comments and doctypes are not text; strings inside `<script>`, `<style>`,
/// `<template>`, `<rt>` and `<rp>` belong to that element only.
fn text_of(node: NodeRef<'_, Node>, separator: &str, strip: bool) -> String {
    let wanted = container(node);
    // The class of a string is its innermost container, ancestors included.
    let outer = node.ancestors().find_map(container);
    let mut stack: Vec<&str> = Vec::new();
    let mut out = String::new();
    let mut first = true;
    for edge in node.traverse() {
        match edge {
            Edge::Open(n) => {
                if let Some(c) = container(n) {
                    stack.push(c);
                } else if let Some(t) = n.value().as_text() {
                    if stack.last().copied().or(outer) != wanted {
                        continue;
                    }
                    let t: &str = if strip { t.trim_matches(is_py_space) } else { t };
                    if strip && t.is_empty() {
                        continue;
                    }
                    if !first {
                        out.push_str(separator);
                    }
                    first = false;
                    out.push_str(t);
                }
            }
            Edge::Close(n) => {
                if container(n).is_some() {
                    stack.pop();
                }
            }
        }
    }
    out
}

/// Read the options of `text(opts)`.
fn get_text_opts(op: &str, opts: Map) -> Result<(String, bool), Error> {
    let opts = Opts::new(op, opts, &["separator", "strip"])?;
    Ok((opts.string("separator")?.unwrap_or_default(), opts.bool("strip", false)?))
}

/// An attribute's name as the markup spells it (`xlink:href` in SVG).
fn attr_name(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{local}"),
        None => local.to_owned(),
    }
}

impl Element {
    fn with<R>(&self, f: impl FnOnce(ElementRef<'_>) -> R) -> R {
        let html = self.doc.lock();
        let node = html.tree.get(self.id).and_then(ElementRef::wrap).expect("element ids come from their own document");
        f(node)
    }

    /// The tag name, lower-case for HTML elements (`div`, SVG's `foreignObject`).
    #[must_use]
    pub fn tag(&self) -> String {
        self.with(|e| e.value().name().to_owned())
    }

    /// The value of attribute `name`, if present.
    #[must_use]
    pub fn attr(&self, name: &str) -> Option<String> {
        self.with(|e| {
            e.value()
                .attrs
                .iter()
                .find(|(k, _)| attr_name(k.prefix.as_deref(), &k.local) == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// Every attribute as `(name, value)`, in source order.
    #[must_use]
    pub fn attrs(&self) -> Vec<(String, String)> {
        self.with(|e| {
            e.value().attrs.iter().map(|(k, v)| (attr_name(k.prefix.as_deref(), &k.local), v.to_string())).collect()
        })
    }

    /// BeautifulSoup's `get_text(separator, strip)` of this element.
    #[must_use]
    pub fn text(&self, separator: &str, strip: bool) -> String {
        self.with(|e| text_of(*e, separator, strip))
    }

    fn start_tag(&self) -> String {
        let mut s = format!("<{}", self.tag());
        for (k, v) in self.attrs() {
            s.push_str(&format!(" {k}=\"{}\"", v.replace('&', "&amp;").replace('"', "&quot;")));
        }
        s.push('>');
        s
    }
}

fn elements(found: Vec<Element>) -> Array {
    found.into_iter().map(Dynamic::from).collect()
}

fn first(mut found: Vec<Element>) -> Dynamic {
    found.pop().map_or(Dynamic::UNIT, Dynamic::from)
}

fn opt_string(s: Option<String>) -> Dynamic {
    s.map_or(Dynamic::UNIT, Dynamic::from)
}

/// The `html::` module.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.combine_flatten(exported_module!(form::api));
    m.set_custom_type::<Form>("Form");
    m
}

#[export_module]
mod api {
    use super::*;

    /// A parsed HTML document.
    pub type Document = super::Document;
    /// An element of a parsed document.
    pub type Element = super::Element;

    /// Parse `text` as an HTML document, repairing broken markup exactly as
    /// browsers (and BeautifulSoup's `html5lib` parser) do. Never fails.
    ///
    /// ```rhai
    /// let doc = html::parse("<p>unclosed <b>bold");
    /// print(doc.select_one("b").text());   // bold
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parse(text: &str) -> NativeResult<Document> {
        super::Document::parse(text, None)
    }

    /// Parse with options: `url`, the address the page came from, against
    /// which `doc.links()` and `doc.forms()` resolve relative URLs.
    ///
    /// ```rhai
    /// let doc = html::parse("<a href='/about'>x</a>", #{url: "http://example.com/index.html"});
    /// print(doc.links());   // ["http://example.com/about"]
    /// ```
    #[rhai_fn(name = "parse", return_raw)]
    pub fn parse_opts(text: &str, opts: Map) -> NativeResult<Document> {
        let opts = Opts::new("html::parse", opts, &["url"])?;
        super::Document::parse(text, opts.string("url")?)
    }

    /// Every element matching the CSS selector `css`, in document order
    /// (BeautifulSoup's `soup.select(css)`). A bad selector is a `value`
    /// error naming it.
    ///
    /// ```rhai
    /// let doc = html::parse("<div id=m><p>a</p><p class=x>b</p></div>");
    /// print(doc.select("#m > p.x").len());   // 1
    /// ```
    #[rhai_fn(global, name = "select", return_raw, pure)]
    pub fn doc_select(doc: &mut Document, css: &str) -> NativeResult<Array> {
        Ok(elements(doc.select(None, css, false)?))
    }

    /// The first element matching `css`, or `()` when none does
    /// (`soup.select_one(css)`).
    ///
    /// ```rhai
    /// let doc = html::parse("<h1>Title</h1>");
    /// print(doc.select_one("h1").text());   // Title
    /// print(doc.select_one("h2"));          // ()
    /// ```
    #[rhai_fn(global, name = "select_one", return_raw, pure)]
    pub fn doc_select_one(doc: &mut Document, css: &str) -> NativeResult<Dynamic> {
        Ok(first(doc.select(None, css, true)?))
    }

    /// All the text of the document (`soup.get_text()`): comments are not
    /// text, nor is what `<script>` and `<style>` hold.
    ///
    /// ```rhai
    /// print(html::parse("<p>a</p><p>b</p>").text());   // ab
    /// ```
    #[rhai_fn(global, name = "text", pure)]
    pub fn doc_text(doc: &mut Document) -> String {
        text_of(doc.lock().tree.root(), "", false)
    }

    /// The document's text with options, as `soup.get_text(separator, strip)`:
    /// `separator` (string put between strings), `strip` (strip each string
    /// and drop the empty ones).
    ///
    /// ```rhai
    /// let doc = html::parse("<p> a </p>\n<p> b </p>");
    /// print(doc.text(#{separator: "|", strip: true}));   // a|b
    /// ```
    #[rhai_fn(global, name = "text", return_raw, pure)]
    pub fn doc_text_opts(doc: &mut Document, opts: Map) -> NativeResult<String> {
        let (sep, strip) = get_text_opts("text", opts)?;
        Ok(text_of(doc.lock().tree.root(), &sep, strip))
    }

    /// The text of the first `<title>`, or `()` when there is none (`soup.title.string`).
    ///
    /// ```rhai
    /// print(html::parse("<title>Home</title>").title);   // Home
    /// ```
    #[rhai_fn(global, get = "title", pure)]
    pub fn doc_title(doc: &mut Document) -> Dynamic {
        let title = doc.select(None, "title", true).ok().and_then(|mut t| t.pop());
        title.map_or(Dynamic::UNIT, |t| t.text("", false).into())
    }

    /// The root element (`<html>`; the parser always makes one).
    ///
    /// ```rhai
    /// print(html::parse("hi").root.tag);   // html
    /// ```
    #[rhai_fn(global, get = "root", pure)]
    pub fn doc_root(doc: &mut Document) -> Element {
        let id = doc.lock().root_element().id();
        doc.element(id)
    }

    /// The URL given to `html::parse(text, #{url})`, or `()`.
    ///
    /// ```rhai
    /// print(html::parse("", #{url: "http://example.com/"}).url);
    /// ```
    #[rhai_fn(global, get = "url", pure)]
    pub fn doc_url(doc: &mut Document) -> Dynamic {
        opt_string(doc.url().map(str::to_owned))
    }

    /// The parser's complaints about broken markup (at most 1,000), for
    /// checking a page; parsing itself never fails.
    ///
    /// ```rhai
    /// print(html::parse("<p></b>").errors.len() > 0);   // true
    /// ```
    #[rhai_fn(global, get = "errors", pure)]
    pub fn doc_errors(doc: &mut Document) -> Array {
        doc.lock().errors.iter().take(ERRORS_MAX).map(|e| Dynamic::from(e.to_string())).collect()
    }

    /// The whole document serialised back to HTML.
    ///
    /// ```rhai
    /// print(html::parse("<p>hi").html());   // <html><head></head><body><p>hi</p></body></html>
    /// ```
    #[rhai_fn(global, name = "html", pure)]
    pub fn doc_html(doc: &mut Document) -> String {
        doc.lock().html()
    }

    /// The `href` of every `<a href>` in document order, made absolute
    /// against the document's base URL (its `<base href>`, resolved against
    /// the URL given to `html::parse`), as `urllib.parse.urljoin` would.
    /// Without a base URL the hrefs come as written.
    ///
    /// ```rhai
    /// let doc = html::parse("<a href='b.html'>b</a><a name=x>no href</a>");
    /// print(doc.links());   // ["b.html"]
    /// ```
    #[rhai_fn(global, name = "links", pure)]
    pub fn doc_links(doc: &mut Document) -> Array {
        doc.links(None).into_iter().map(Dynamic::from).collect()
    }

    /// The links made absolute against `base` (instead of the URL the
    /// document was parsed with).
    ///
    /// ```rhai
    /// let doc = html::parse("<a href='b.html'>b</a>");
    /// print(doc.links("http://example.com/a/"));   // ["http://example.com/a/b.html"]
    /// ```
    #[rhai_fn(global, name = "links", pure)]
    pub fn doc_links_base(doc: &mut Document, base: &str) -> Array {
        doc.links(Some(base)).into_iter().map(Dynamic::from).collect()
    }

    /// The tag name (`"div"`; lower-case for HTML elements).
    ///
    /// ```rhai
    /// print(html::parse("<DIV>x</DIV>").select_one("div").tag);   // div
    /// ```
    #[rhai_fn(global, get = "tag", pure)]
    pub fn tag(el: &mut Element) -> String {
        el.tag()
    }

    /// The attributes as a map of strings (`class` stays one string, as in lxml's `attrib`).
    ///
    /// ```rhai
    /// let a = html::parse("<a href='/x' class='btn big'>x</a>").select_one("a");
    /// print(a.attrs);   // #{"class": "btn big", "href": "/x"}
    /// ```
    #[rhai_fn(global, get = "attrs", pure)]
    pub fn attrs(el: &mut Element) -> Map {
        el.attrs().into_iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    /// The value of attribute `name`, or `()` when the element has none
    /// (`tag.get(name)`).
    ///
    /// ```rhai
    /// let a = html::parse("<a href='/x'>x</a>").select_one("a");
    /// print(a.attr("href"));    // /x
    /// print(a.attr("title"));   // ()
    /// ```
    #[rhai_fn(global, name = "attr", pure)]
    pub fn attr(el: &mut Element, name: &str) -> Dynamic {
        opt_string(el.attr(name))
    }

    /// All the text inside the element (`tag.get_text()`).
    ///
    /// ```rhai
    /// print(html::parse("<p>a <b>b</b> c</p>").select_one("p").text());   // a b c
    /// ```
    #[rhai_fn(global, name = "text", pure)]
    pub fn text(el: &mut Element) -> String {
        el.text("", false)
    }

    /// The element's text with options, as `tag.get_text(separator, strip)`:
    /// `separator` between strings, `strip` to strip each string and drop
    /// the empty ones.
    ///
    /// ```rhai
    /// let ul = html::parse("<ul>\n <li> a </li>\n <li>b</li>\n</ul>").select_one("ul");
    /// print(ul.text(#{separator: ",", strip: true}));   // a,b
    /// ```
    #[rhai_fn(global, name = "text", return_raw, pure)]
    pub fn text_opts(el: &mut Element, opts: Map) -> NativeResult<String> {
        let (sep, strip) = get_text_opts("text", opts)?;
        Ok(el.text(&sep, strip))
    }

    /// The element serialised with its tags (outer HTML; `str(tag)`).
    ///
    /// ```rhai
    /// print(html::parse("<p>a<br>b</p>").select_one("p").html());   // <p>a<br>b</p>
    /// ```
    #[rhai_fn(global, name = "html", pure)]
    pub fn outer_html(el: &mut Element) -> String {
        el.with(|e| e.html())
    }

    /// What is inside the element, serialised (`tag.decode_contents()`).
    ///
    /// ```rhai
    /// print(html::parse("<p>a<b>b</b></p>").select_one("p").inner_html());   // a<b>b</b>
    /// ```
    #[rhai_fn(global, name = "inner_html", pure)]
    pub fn inner_html(el: &mut Element) -> String {
        el.with(|e| e.inner_html())
    }

    /// The child elements in document order (text and comments left out;
    /// `tag.find_all(recursive=False)`).
    ///
    /// ```rhai
    /// let ul = html::parse("<ul><li>a</li> text <li>b</li></ul>").select_one("ul");
    /// print(ul.children().len());   // 2
    /// ```
    #[rhai_fn(global, name = "children", pure)]
    pub fn children(el: &mut Element) -> Array {
        let ids: Vec<NodeId> = el.with(|e| e.child_elements().map(|c| c.id()).collect());
        ids.into_iter().map(|id| Dynamic::from(el.doc.element(id))).collect()
    }

    /// The parent element, or `()` for the root `<html>`.
    ///
    /// ```rhai
    /// let b = html::parse("<p><b>x</b></p>").select_one("b");
    /// print(b.parent().tag);   // p
    /// ```
    #[rhai_fn(global, name = "parent", pure)]
    pub fn parent(el: &mut Element) -> Dynamic {
        let id = el.with(|e| e.parent().and_then(ElementRef::wrap).map(|p| p.id()));
        id.map_or(Dynamic::UNIT, |id| Dynamic::from(el.doc.element(id)))
    }

    /// The elements inside this one that match `css` (the element itself
    /// is not among them; `:scope` is the element).
    ///
    /// ```rhai
    /// let t = html::parse("<table><tr><td>1</td><td>2</td></tr></table>").select_one("table");
    /// for td in t.select("td") { print(td.text()) }
    /// ```
    #[rhai_fn(global, name = "select", return_raw, pure)]
    pub fn select(el: &mut Element, css: &str) -> NativeResult<Array> {
        Ok(elements(el.doc.select(Some(el.id), css, false)?))
    }

    /// The first element inside this one that matches `css`, or `()`.
    ///
    /// ```rhai
    /// let row = html::parse("<table><tr><td>1</td></tr></table>").select_one("tr");
    /// print(row.select_one("td").text());   // 1
    /// ```
    #[rhai_fn(global, name = "select_one", return_raw, pure)]
    pub fn select_one(el: &mut Element, css: &str) -> NativeResult<Dynamic> {
        Ok(first(el.doc.select(Some(el.id), css, true)?))
    }

    /// The element's start tag, e.g. `<a href="/x">`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(el: &mut Element) -> String {
        el.start_tag()
    }

    /// The element's start tag, e.g. `<a href="/x">`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(el: &mut Element) -> String {
        el.start_tag()
    }

    /// `<html document>`, with its URL when known.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn doc_to_string(doc: &mut Document) -> String {
        doc.url().map_or_else(|| "<html document>".to_owned(), |u| format!("<html document {u}>"))
    }

    /// `<html document>`, with its URL when known.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn doc_to_debug(doc: &mut Document) -> String {
        doc_to_string(doc)
    }
}

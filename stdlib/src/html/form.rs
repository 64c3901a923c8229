//! `doc.forms()`: each form of a page with what a browser would submit,
//! following the HTML standard's form-submission algorithm ("constructing
//! the entry list"), and `form.fill(values)` to change it before it is
//! sent.
//!
//! Covered: form owners (ancestor `<form>` or a `form="id"` attribute),
//! disabled controls (own attribute, a disabled `<fieldset>` outside its
//! first `<legend>`, a disabled `<optgroup>`), `<datalist>` contents,
//! checkboxes and radios (checked only, value `"on"` by default), select
//! boxes (selected options; the first enabled option of a single select
//! with none selected, the last one when several are), textareas, file
//! inputs (an empty value, as urlencoded submission sends them), value
//! sanitisation of text-like inputs, and submit buttons (left out unless
//! filled in). Not covered: image buttons (`name.x`/`name.y`), a
//! submitter's `formaction`/`formmethod`, `dirname`, and the sanitisation of
//! number, date, range and colour inputs.

use std::collections::HashMap;
use std::sync::Arc;

use ego_tree::iter::Edge;
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};
use scraper::ElementRef;

use super::{Document, Element, is_ascii_ws, join};
use crate::args::Opts;
use crate::error::{Error, NativeResult};

/// A form as a browser would submit it; `fill` makes a changed copy.
#[derive(Clone)]
pub struct Form {
    action: String,
    method: String,
    enctype: String,
    element: Element,
    entries: Arc<Vec<Entry>>,
}

/// One named control's value: submitted when `on`. Unchecked boxes,
/// unselected options and buttons are kept (not `on`) so that `fill` knows
/// the form has them and where they stand. A file input's value is the
/// chosen file's name (`""` for none).
#[derive(Clone)]
struct Entry {
    name: String,
    value: String,
    on: bool,
    button: bool,
    file: bool,
}

impl Entry {
    fn new(name: &str, value: impl Into<String>, on: bool) -> Self {
        Self { name: name.to_owned(), value: value.into(), on, button: false, file: false }
    }
}

/// One entry a submission sends: a file input's `value` is its file name.
pub struct Submitted<'a> {
    /// The control's name.
    pub name: &'a str,
    /// Its value (a file input's: the file name).
    pub value: &'a str,
    /// Whether it is a file input.
    pub file: bool,
}

impl Form {
    /// The absolute URL the form submits to (the page's own URL when the
    /// form has no `action`; as written when no URL is known).
    #[must_use]
    pub fn action(&self) -> &str {
        &self.action
    }

    /// `GET` or `POST` (`DIALOG` for `method=dialog`, which submits nothing).
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`.
    #[must_use]
    pub fn enctype(&self) -> &str {
        &self.enctype
    }

    /// The `(name, value)` pairs a browser would send, in document order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.submitted().map(|e| (e.name, e.value))
    }

    /// The entries a browser would send, in document order, with file
    /// inputs marked (multipart sends them as file parts).
    pub fn submitted(&self) -> impl Iterator<Item = Submitted<'_>> {
        self.entries.iter().filter(|e| e.on).map(|e| Submitted { name: &e.name, value: &e.value, file: e.file })
    }

    /// The submit buttons as `(name, value)`; filling one in (`fill(#{go: "Go"})`)
    /// submits the form as if that button were clicked.
    pub fn buttons(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().filter(|e| e.button).map(|e| (e.name.as_str(), e.value.as_str()))
    }

    /// A copy whose fields named in `values` submit exactly the values
    /// given (a string or number, an array of them, or `()` for none), in
    /// the place of the form's first control of that name. A name the form
    /// has no control for is a `value` error, unless `add` (then it goes
    /// at the end).
    pub fn fill(&self, values: &Map, add: bool) -> Result<Self, Error> {
        let mut entries = (*self.entries).clone();
        for (name, value) in values {
            let new = fill_values(name, value)?;
            match entries.iter().position(|e| e.name == name.as_str()) {
                Some(at) => {
                    let (button, file) = (entries[at].button, entries[at].file);
                    let mut new: Vec<Entry> =
                        new.into_iter().map(|v| Entry { button, file, ..Entry::new(name, v, true) }).collect();
                    if new.is_empty() {
                        new.push(Entry { on: false, ..entries[at].clone() });
                    }
                    let rest = entries.split_off(at).into_iter().filter(|e| e.name != name.as_str());
                    entries.extend(new);
                    entries.extend(rest);
                }
                None if add => entries.extend(new.into_iter().map(|v| Entry::new(name, v, true))),
                None => {
                    let known: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
                    return Err(Error::value(
                        "fill",
                        format!(
                            "the form has no field '{name}' (it has: {}); pass #{{add: true}} to add one",
                            dedup(known).join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(Self { entries: Arc::new(entries), ..self.clone() })
    }
}

fn dedup(mut names: Vec<&str>) -> Vec<&str> {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(*n));
    names
}

/// The values `fill` was given for one name.
fn fill_values(name: &str, value: &Dynamic) -> Result<Vec<String>, Error> {
    let one = |v: &Dynamic| -> Result<String, Error> {
        if v.is_string() || v.is_int() || v.is_float() || v.is_decimal() {
            Ok(v.to_string())
        } else {
            Err(Error::value(
                "fill",
                format!("field '{name}': expected a string, a number, an array of them or (), got {}", v.type_name()),
            ))
        }
    };
    if value.is_unit() {
        Ok(Vec::new())
    } else if let Some(items) = value.read_lock::<Array>() {
        items.iter().map(one).collect()
    } else {
        one(value).map(|v| vec![v])
    }
}

/// Every form of `doc` in document order, actions resolved against `base`
/// (or the document's own base URL).
pub(super) fn forms(doc: &Document, base: Option<&str>) -> Vec<Form> {
    let base_url = doc.base_url(base);
    let page_url = base.or(doc.url()).map(str::to_owned);
    let html = doc.lock();
    let root = html.tree.root();
    // Template contents are inert: no forms, no controls.
    let inert = &doc.0.in_template;
    let form_els: Vec<ElementRef<'_>> = root
        .descendants()
        .filter_map(ElementRef::wrap)
        .filter(|e| e.value().name() == "form" && !inert.contains(&e.id()))
        .collect();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, f) in form_els.iter().enumerate() {
        if let Some(id) = f.value().attr("id") {
            by_id.entry(id).or_insert(i);
        }
    }
    let index: HashMap<ego_tree::NodeId, usize> = form_els.iter().enumerate().map(|(i, f)| (f.id(), i)).collect();
    let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); form_els.len()];
    // Per open element: whether controls inside it are barred (disabled
    // by a fieldset, or in a datalist); and the open forms.
    let mut barred: Vec<bool> = Vec::new();
    let mut open_forms: Vec<usize> = Vec::new();
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                let Some(el) = ElementRef::wrap(node) else { continue };
                let outside = barred.last().copied().unwrap_or(false);
                let name = el.value().name();
                let inside = match name {
                    "fieldset" if el.value().attr("disabled").is_some() => true,
                    "datalist" => true,
                    "legend" if is_first_legend_of_disabled(el) => {
                        barred.len().checked_sub(2).is_some_and(|i| barred[i])
                    }
                    _ => outside,
                };
                barred.push(inside);
                if let Some(&i) = index.get(&el.id()) {
                    open_forms.push(i);
                }
                if !matches!(name, "input" | "button" | "select" | "textarea") || inert.contains(&el.id()) {
                    continue;
                }
                let owner = match el.value().attr("form") {
                    Some(id) => by_id.get(id).copied(),
                    None => open_forms.last().copied(),
                };
                if let Some(owner) = owner
                    && !outside
                    && el.value().attr("disabled").is_none()
                {
                    entries[owner].extend(control(el));
                }
            }
            Edge::Close(node) => {
                if node.value().is_element() {
                    barred.pop();
                    if index.contains_key(&node.id()) {
                        open_forms.pop();
                    }
                }
            }
        }
    }
    form_els
        .iter()
        .zip(entries)
        .map(|(f, entries)| {
            let action = f.value().attr("action").map(|a| a.trim_matches(is_ascii_ws)).unwrap_or("");
            let action = match (action, &base_url, &page_url) {
                ("", _, Some(page)) => page.clone(),
                (a, Some(b), _) => join(b, a),
                (a, None, _) => a.to_owned(),
            };
            let method = match f.value().attr("method").map(str::to_ascii_lowercase).as_deref() {
                Some("post") => "POST",
                Some("dialog") => "DIALOG",
                _ => "GET",
            };
            let enctype = match f.value().attr("enctype").map(str::to_ascii_lowercase).as_deref() {
                Some(e @ ("multipart/form-data" | "text/plain")) => e.to_owned(),
                _ => "application/x-www-form-urlencoded".to_owned(),
            };
            Form {
                action,
                method: method.to_owned(),
                enctype,
                element: doc.element(f.id()),
                entries: Arc::new(entries),
            }
        })
        .collect()
}

/// Whether `legend` is the first `<legend>` child of a disabled `<fieldset>`
/// (whose disabling does not reach inside it).
fn is_first_legend_of_disabled(legend: ElementRef<'_>) -> bool {
    let Some(parent) = legend.parent().and_then(ElementRef::wrap) else { return false };
    parent.value().name() == "fieldset"
        && parent.value().attr("disabled").is_some()
        && parent.child_elements().find(|c| c.value().name() == "legend").is_some_and(|l| l.id() == legend.id())
}

/// The entries of one enabled control (none when it has no name or is
/// never submitted: reset and plain buttons, image buttons).
fn control(el: ElementRef<'_>) -> Vec<Entry> {
    let e = el.value();
    let Some(name) = e.attr("name").filter(|n| !n.is_empty()) else { return Vec::new() };
    match e.name() {
        "input" => {
            let kind = e.attr("type").map(str::to_ascii_lowercase).unwrap_or_default();
            let value = e.attr("value");
            match kind.as_str() {
                "checkbox" | "radio" => vec![Entry::new(name, value.unwrap_or("on"), e.attr("checked").is_some())],
                "submit" => vec![Entry { button: true, ..Entry::new(name, value.unwrap_or(""), false) }],
                "image" | "reset" | "button" => Vec::new(),
                "file" => vec![Entry { file: true, ..Entry::new(name, "", true) }],
                "email" | "url" => {
                    let v: String = value.unwrap_or("").chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
                    vec![Entry::new(name, v.trim_matches(is_ascii_ws), true)]
                }
                "hidden" => vec![Entry::new(name, value.unwrap_or(""), true)],
                // text, search, tel, password and every unknown type are text:
                // line breaks are stripped from their value.
                _ => vec![Entry::new(name, value.unwrap_or("").replace(['\r', '\n'], ""), true)],
            }
        }
        "button" => match e.attr("type").map(str::to_ascii_lowercase).as_deref() {
            Some("reset" | "button") => Vec::new(),
            _ => vec![Entry { button: true, ..Entry::new(name, e.attr("value").unwrap_or(""), false) }],
        },
        "textarea" => vec![Entry::new(name, el.text().collect::<String>(), true)],
        _ => select(el, name),
    }
}

/// A select box's options, the selected ones `on`.
fn select(el: ElementRef<'_>, name: &str) -> Vec<Entry> {
    let multiple = el.value().attr("multiple").is_some();
    let size = el.value().attr("size").and_then(|s| s.trim().parse::<u64>().ok()).filter(|&s| s > 0);
    let display_size = size.unwrap_or(if multiple { 4 } else { 1 });
    // The list of options: option children, and option children of optgroup children.
    let mut options: Vec<(ElementRef<'_>, bool)> = Vec::new();
    for child in el.child_elements() {
        match child.value().name() {
            "option" => options.push((child, false)),
            "optgroup" => {
                let off = child.value().attr("disabled").is_some();
                options.extend(child.child_elements().filter(|o| o.value().name() == "option").map(|o| (o, off)));
            }
            _ => {}
        }
    }
    let values: Vec<(String, bool, bool)> = options
        .iter()
        .map(|(o, group_off)| {
            let value = o.value().attr("value").map_or_else(|| collapse(&o.text().collect::<String>()), str::to_owned);
            (value, o.value().attr("selected").is_some(), *group_off || o.value().attr("disabled").is_some())
        })
        .collect();
    let mut selected: Vec<bool> = values.iter().map(|v| v.1).collect();
    if !multiple {
        // One selected at most: the parser leaves the last one selected…
        if let Some(last) = selected.iter().rposition(|&s| s) {
            selected.iter_mut().take(last).for_each(|s| *s = false);
        } else if display_size == 1
            && let Some(first) = values.iter().position(|v| !v.2)
        {
            // …or, with none selected, the first enabled option.
            selected[first] = true;
        }
    }
    values
        .into_iter()
        .zip(selected)
        .map(|((value, _, disabled), on)| Entry::new(name, value, on && !disabled))
        .collect()
}

/// Strip and collapse ASCII whitespace (an option's text as its value).
fn collapse(s: &str) -> String {
    s.split(is_ascii_ws).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

fn pairs<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Array {
    it.map(|(k, v)| Dynamic::from_array(vec![k.into(), v.into()])).collect()
}

#[export_module]
pub mod api {
    use super::*;

    /// A form of a parsed page, ready to fill in and submit.
    pub type Form = super::Form;

    /// Every `<form>` of the page in document order, each with its
    /// `action` (absolute against the base URL), `method`, `enctype` and
    /// the `fields` a browser would submit.
    ///
    /// ```rhai
    /// let doc = html::parse("<form action='/login' method=post><input name=user value=bob></form>",
    ///                       #{url: "http://example.com/"});
    /// let f = doc.forms()[0];
    /// print(f.action);   // http://example.com/login
    /// print(f.fields);   // [["user", "bob"]]
    /// ```
    #[rhai_fn(global, name = "forms", pure)]
    pub fn doc_forms(doc: &mut Document) -> Array {
        forms(doc, None).into_iter().map(Dynamic::from).collect()
    }

    /// The forms with actions resolved against `base`.
    ///
    /// ```rhai
    /// let doc = html::parse("<form action='s'><input name=q></form>");
    /// print(doc.forms("http://example.com/a/")[0].action);   // http://example.com/a/s
    /// ```
    #[rhai_fn(global, name = "forms", pure)]
    pub fn doc_forms_base(doc: &mut Document, base: &str) -> Array {
        forms(doc, Some(base)).into_iter().map(Dynamic::from).collect()
    }

    /// Where the form submits to: absolute when the page's URL is known.
    #[rhai_fn(global, get = "action", pure)]
    pub fn action(f: &mut Form) -> String {
        f.action.clone()
    }

    /// `"GET"` (the default) or `"POST"`.
    #[rhai_fn(global, get = "method", pure)]
    pub fn method(f: &mut Form) -> String {
        f.method.clone()
    }

    /// How the fields are encoded: `application/x-www-form-urlencoded` by
    /// default, `multipart/form-data` or `text/plain`.
    #[rhai_fn(global, get = "enctype", pure)]
    pub fn enctype(f: &mut Form) -> String {
        f.enctype.clone()
    }

    /// The `[name, value]` pairs a browser would submit, in document order.
    #[rhai_fn(global, get = "fields", pure)]
    pub fn fields(f: &mut Form) -> Array {
        pairs(f.fields())
    }

    /// The submit buttons as `[name, value]` pairs (not in `fields` until
    /// filled in, as only the clicked button is sent).
    #[rhai_fn(global, get = "buttons", pure)]
    pub fn buttons(f: &mut Form) -> Array {
        pairs(f.buttons())
    }

    /// The `<form>` element itself (for its `id`, `name` or contents).
    #[rhai_fn(global, get = "element", pure)]
    pub fn element(f: &mut Form) -> Element {
        f.element.clone()
    }

    /// A copy of the form with the named fields set: a string or number,
    /// an array for a name sent several times (checkboxes, a multiple
    /// select), `()` to send none; a submit button's name with its value
    /// clicks it. A name the form has no control for is a `value` error.
    ///
    /// ```rhai
    /// let f = html::parse("<form><input name=user><input type=checkbox name=keep></form>").forms()[0];
    /// let g = f.fill(#{user: "bob", keep: "on"});
    /// print(g.fields);   // [["user", "bob"], ["keep", "on"]]
    /// ```
    #[rhai_fn(global, name = "fill", return_raw, pure)]
    pub fn fill(f: &mut Form, values: Map) -> NativeResult<Form> {
        Ok(f.fill(&values, false)?)
    }

    /// `fill` with options: `add: true` appends fields the form does not have.
    ///
    /// ```rhai
    /// let f = html::parse("<form><input name=q></form>").forms()[0];
    /// print(f.fill(#{q: "rust", page: 2}, #{add: true}).fields);   // [["q", "rust"], ["page", "2"]]
    /// ```
    #[rhai_fn(global, name = "fill", return_raw, pure)]
    pub fn fill_opts(f: &mut Form, values: Map, opts: Map) -> NativeResult<Form> {
        let opts = Opts::new("fill", opts, &["add"])?;
        Ok(f.fill(&values, opts.bool("add", false)?)?)
    }

    /// `<form POST http://…>`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(f: &mut Form) -> String {
        format!("<form {} {}>", f.method, f.action)
    }

    /// `<form POST http://…>` with its fields.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(f: &mut Form) -> String {
        let fields: Vec<String> = f.fields().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
        format!("<form {} {} {{{}}}>", f.method, f.action, fields.join(", "))
    }
}

//! The script reference, generated from the registered functions: every
//! standard-library function with its signature and its `///` doc comment
//! (which carries a ```rhai example). `netscript doc` prints it as Markdown,
//! the REPL's `.help` looks functions up in it, and a test checks that every
//! function is documented and that every example compiles.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One documented function.
#[derive(Debug, Clone)]
pub struct FnDoc {
    /// The module it is installed under (`tcp`, `struct`…); `None` for global functions.
    pub module: Option<String>,
    /// The function's name (`connect`, `recv_line`, `get$port` for getters).
    pub name: String,
    /// The signature as Rhai prints it.
    pub signature: String,
    /// The doc comment, without the `///` markers.
    pub doc: String,
    /// Whether it is called as a method or property (`conn.recv(10)`), not as `module::name`.
    pub method: bool,
    /// Type of the first parameter as registered (`&mut TcpConn`), for method completion.
    pub receiver: String,
}

impl FnDoc {
    /// How a script calls it: `tcp::connect(…)`, `conn.recv(…)`, or `conn.peer`.
    #[must_use]
    pub fn display_name(&self) -> String {
        if let Some(prop) = self.name.strip_prefix("get$").or_else(|| self.name.strip_prefix("set$")) {
            format!(".{prop}")
        } else if self.method {
            format!(".{}()", self.name)
        } else {
            match &self.module {
                Some(m) => format!("{m}::{}()", self.name),
                None => format!("{}()", self.name),
            }
        }
    }

    /// The ```rhai examples in the doc comment.
    #[must_use]
    pub fn examples(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current: Option<String> = None;
        for line in self.doc.lines() {
            match (&mut current, line.trim()) {
                (None, "```rhai") => current = Some(String::new()),
                (Some(code), "```") => {
                    out.push(std::mem::take(code));
                    current = None;
                }
                (Some(code), _) => {
                    code.push_str(line);
                    code.push('\n');
                }
                (None, _) => {}
            }
        }
        out
    }
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    modules: BTreeMap<String, ModuleMeta>,
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
struct ModuleMeta {
    #[serde(default)]
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FnMeta {
    name: String,
    namespace: String,
    signature: String,
    #[serde(default)]
    doc_comments: Vec<String>,
    #[serde(default)]
    params: Vec<ParamMeta>,
}

#[derive(Deserialize)]
struct ParamMeta {
    #[serde(default, rename = "type")]
    typ: String,
}

/// Every function of the standard library, by module then name.
#[must_use]
pub fn stdlib() -> Vec<FnDoc> {
    let mut engine = rhai::Engine::new_raw();
    netscript_stdlib::register_all(&mut engine);
    collect(&engine, false)
}

/// Every function registered on `engine` (with Rhai's built-in packages if
/// `standard`): module functions first, by module, then global ones.
#[must_use]
pub fn collect(engine: &rhai::Engine, standard: bool) -> Vec<FnDoc> {
    let json = engine.gen_fn_metadata_to_json(standard).unwrap_or_default();
    let meta: Meta = serde_json::from_str(&json).unwrap_or(Meta { modules: BTreeMap::new(), functions: Vec::new() });
    let modules =
        meta.modules.into_iter().flat_map(|(name, m)| m.functions.into_iter().map(move |f| (Some(name.clone()), f)));
    let mut docs: Vec<FnDoc> =
        modules.chain(meta.functions.into_iter().map(|f| (None, f))).map(|(module, f)| doc_of(module, f)).collect();
    // Rhai lists overloads in hash order; sort so the reference is stable.
    docs.sort_by(|a, b| {
        (a.module.is_none(), &a.module, &a.name, &a.signature).cmp(&(
            b.module.is_none(),
            &b.module,
            &b.name,
            &b.signature,
        ))
    });
    docs
}

fn doc_of(module: Option<String>, f: FnMeta) -> FnDoc {
    let doc = f
        .doc_comments
        .iter()
        .flat_map(|c| c.lines())
        .map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("///").or_else(|| l.strip_prefix("/**")).unwrap_or(l);
            l.strip_prefix(' ').unwrap_or(l).trim_end_matches("*/")
        })
        .collect::<Vec<_>>()
        .join("\n");
    FnDoc {
        method: module.is_none() || f.namespace == "global",
        module,
        receiver: f.params.first().map(|p| p.typ.trim_start_matches("&mut ").to_string()).unwrap_or_default(),
        name: f.name,
        signature: tidy_signature(&f.signature),
        doc,
    }
}

/// A signature in script terms: `recv(c: Conn, max: int) -> blob`
/// rather than the Rust types it was registered with.
fn tidy_signature(sig: &str) -> String {
    let mut s = sig.replace("&mut ", "").replace("NativeCallContext, ", "");
    if let Some(i) = s.find("NativeResult<") {
        let inner = &s[i + "NativeResult<".len()..];
        let inner = inner.strip_suffix('>').unwrap_or(inner).to_string();
        s = format!("{}{inner}", &s[..i]);
    }
    for (rust, script) in [
        ("ImmutableString", "string"),
        ("&str", "string"),
        ("String", "string"),
        ("Dynamic", "any"),
        ("INT", "int"),
        ("i64", "int"),
        ("FLOAT", "float"),
        ("f64", "float"),
        ("Blob", "blob"),
        ("Array", "array"),
        ("Map", "map"),
        ("FnPtr", "fn"),
    ] {
        s = replace_word(&s, rust, script);
    }
    s
}

/// Replace `word` where it is not part of a longer identifier.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(word) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + word.len()..].chars().next();
        out.push_str(&rest[..i]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[i + word.len()..];
    }
    out.push_str(rest);
    out
}

/// The functions whose name or display name matches `query` (`recv`, `tcp::connect`, `.peer`).
#[must_use]
pub fn lookup<'a>(docs: &'a [FnDoc], query: &str) -> Vec<&'a FnDoc> {
    let q = query.trim().trim_end_matches("()").trim_start_matches('.');
    docs.iter()
        .filter(|d| {
            let full = d.module.as_ref().map(|m| format!("{m}::{}", d.name));
            d.name == q
                || full.as_deref() == Some(q)
                || d.display_name().trim_start_matches('.').trim_end_matches("()") == q
        })
        .collect()
}

/// The whole reference as Markdown, one section per module.
#[must_use]
pub fn markdown(docs: &[FnDoc]) -> String {
    let mut out = String::from(
        "# netscript script reference\n\nGenerated by `netscript doc` from the registered functions; do not edit by hand.\n\
         Errors are raised as maps `#{kind, message, op, peer}`; see ARCHITECTURE.md.\n",
    );
    let mut module = None;
    let mut i = 0;
    while let Some(d) = docs.get(i) {
        if d.module != module {
            module.clone_from(&d.module);
            let title = d.module.as_ref().map_or_else(|| "global functions".to_string(), |m| format!("`{m}::`"));
            out.push_str(&format!("\n## {title}\n"));
        }
        // Overloads that share one doc comment (`struct::pack(format, v1, …)`
        // for each count of values) share one section, one signature a line.
        let same = docs[i..].iter().take_while(|o| o.module == d.module && o.name == d.name && o.doc == d.doc);
        let signatures: Vec<String> = same.map(|o| format!("`{}`", o.signature)).collect();
        i += signatures.len();
        out.push_str(&format!("\n### `{}`\n\n{}\n\n{}\n", d.display_name(), signatures.join("  \n"), d.doc.trim()));
    }
    out
}

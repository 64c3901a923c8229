//! Readable renderings of script values, shared by the REPL (printing
//! results) and the test assertions (diffs): blobs as hexdumps, maps and
//! arrays indented when they do not fit on a line, handles through their
//! script-level `to_debug` (Rust's `{:?}` of a custom type prints only its
//! type name).

use rhai::{Blob, Dynamic, Engine, Scope};

/// Lines longer than this are broken up (maps and arrays one item a line).
const WIDTH: usize = 72;

/// Blobs up to this length print inline as hex; longer ones as a hexdump.
const INLINE_BLOB: usize = 16;

/// Values nested deeper than this many levels print as `to_debug` writes
/// them (on one line, without recursion), so a deeply nested value cannot
/// overflow the stack or print quadratic indentation.
const MAX_NESTING: usize = 32;

/// Render `value` for people. `engine` provides the `to_debug` of handles
/// (connections, listeners, tasks…).
#[must_use]
pub fn pretty(engine: &Engine, value: &Dynamic) -> String {
    render(engine, value, 0)
}

fn render(engine: &Engine, value: &Dynamic, indent: usize) -> String {
    if indent > 2 * MAX_NESTING {
        return format!("{value:?}");
    }
    let value = value.flatten_clone();
    if let Some(b) = value.read_lock::<Blob>() {
        return blob(&b);
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return format!("{:?}", s.as_str());
    }
    if let Some(a) = value.read_lock::<rhai::Array>() {
        let items: Vec<String> = a.iter().map(|v| render(engine, v, indent + 2)).collect();
        return group("[", "]", &items, indent);
    }
    if let Some(m) = value.read_lock::<rhai::Map>() {
        let items: Vec<String> =
            m.iter().map(|(k, v)| format!("{}: {}", key(k), render(engine, v, indent + 2))).collect();
        return group("#{", "}", &items, indent);
    }
    if value.is_unit() {
        return "()".into();
    }
    if value.is_variant() {
        return script_debug(engine, &value);
    }
    value.to_string()
}

/// A map key as written in a literal: bare when it is an identifier.
fn key(k: &str) -> String {
    let ident = k.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_alphanumeric() || c == '_');
    if ident { k.to_string() } else { format!("{k:?}") }
}

/// `[a, b]` on one line when it fits, else one item a line.
fn group(open: &str, close: &str, items: &[String], indent: usize) -> String {
    let one_line = format!("{open}{}{close}", items.join(", "));
    if one_line.len() + indent <= WIDTH && !one_line.contains('\n') {
        return one_line;
    }
    let pad = " ".repeat(indent + 2);
    let body: Vec<String> = items.iter().map(|i| format!("{pad}{i},")).collect();
    format!("{open}\n{}\n{}{close}", body.join("\n"), " ".repeat(indent))
}

/// `blob(3): 01 02 03` for short blobs, a hexdump under a header otherwise.
#[must_use]
pub fn blob(data: &[u8]) -> String {
    if data.len() <= INLINE_BLOB {
        let hex: Vec<String> = data.iter().map(|b| format!("{b:02x}")).collect();
        format!("blob({}): {}", data.len(), hex.join(" "))
    } else {
        format!("blob({}):\n{}", data.len(), netscript_stdlib::bytes::hexdump(data))
    }
}

/// The script-level `to_debug` of a handle, or its type name if it has none.
fn script_debug(engine: &Engine, value: &Dynamic) -> String {
    let mut scope = Scope::new();
    scope.push_dynamic("__v", value.clone());
    engine
        .eval_expression_with_scope::<String>(&mut scope, "__v.to_debug()")
        .unwrap_or_else(|_| format!("<{}>", value.type_name()))
}

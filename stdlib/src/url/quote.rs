//! Percent-encoding and query strings exactly as CPython 3.11's
//! `urllib.parse` does them: `quote`, `quote_plus`, `unquote`,
//! `unquote_plus`, `unquote_to_bytes`, `parse_qsl`, `parse_qs`, `urlencode`.
//!
//! Hand-written rather than over `percent-encoding` or `form_urlencoded`:
//! those follow WHATWG's sets (`~`, `*` and friends differ), decode a whole
//! string at once where `unquote` decodes each ASCII run on its own, and
//! have no `keep_blank_values`, `strict_parsing` or `max_num_fields`.

use crate::error::Error;

/// Bytes `quote` never escapes (`_ALWAYS_SAFE`): RFC 3986's unreserved set.
fn always_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~')
}

/// The 128-entry "keep as is" table for a `safe` set: its ASCII bytes plus
/// [`always_safe`] (non-ASCII characters of a `safe` string are ignored, as
/// `quote_from_bytes` drops them).
fn safe_table(safe: &[u8]) -> [bool; 128] {
    let mut table = [false; 128];
    for (b, slot) in (0u8..128).zip(table.iter_mut()) {
        *slot = always_safe(b);
    }
    for &b in safe.iter().filter(|b| b.is_ascii()) {
        table[usize::from(b)] = true;
    }
    table
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn quote_with(data: &[u8], table: &[bool; 128], plus: bool, out: &mut String) {
    for &b in data {
        if plus && b == b' ' {
            out.push('+');
        } else if b.is_ascii() && table[usize::from(b)] {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 15)]));
        }
    }
}

/// `quote(data, safe)` (`quote_from_bytes` for bytes; a `str` is its UTF-8).
/// Python's default `safe` is `"/"`.
#[must_use]
pub fn quote(data: &[u8], safe: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + data.len() / 2);
    quote_with(data, &safe_table(safe), false, &mut out);
    out
}

/// `quote_plus(data, safe)`: spaces become `+` (unless `safe` keeps them),
/// `+` itself is escaped unless `safe` has it. Python's default `safe` is `""`.
#[must_use]
pub fn quote_plus(data: &[u8], safe: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + data.len() / 2);
    quote_with(data, &safe_table(safe), true, &mut out);
    out
}

fn hex_value(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `unquote_to_bytes`: `%XX` (either case) becomes the byte; a `%` not
/// followed by two hex digits stays as it is.
#[must_use]
pub fn unquote_to_bytes(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'%'
            && let (Some(hi), Some(lo)) =
                (data.get(i + 1).and_then(|&c| hex_value(c)), data.get(i + 2).and_then(|&c| hex_value(c)))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

/// `unquote(text)` with UTF-8 and `errors='replace'`: each run of ASCII is
/// unquoted and decoded on its own (invalid UTF-8 → U+FFFD per maximal bad
/// sequence, as Python's decoder does); other characters stay as they are.
#[must_use]
pub fn unquote(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest.bytes().take_while(u8::is_ascii).count();
        let (run, tail) = rest.split_at(ascii);
        if run.contains('%') {
            out.push_str(&String::from_utf8_lossy(&unquote_to_bytes(run.as_bytes())));
        } else {
            out.push_str(run);
        }
        let other = tail.char_indices().find(|(_, c)| c.is_ascii()).map_or(tail.len(), |(i, _)| i);
        out.push_str(&tail[..other]);
        rest = &tail[other..];
    }
    out
}

/// `unquote_plus(text)`: `+` is a space, then [`unquote`].
#[must_use]
pub fn unquote_plus(text: &str) -> String {
    if text.contains('+') { unquote(&text.replace('+', " ")) } else { unquote(text) }
}

/// The options of `parse_qs` / `parse_qsl`, with Python's defaults.
#[derive(Debug, Clone)]
pub struct QsOptions {
    /// Keep `a=` and `a` as `("a", "")` instead of dropping them.
    pub keep_blank_values: bool,
    /// A field without `=` (or an empty one) is a `value` error.
    pub strict_parsing: bool,
    /// More fields than this is a `value` error (`None`: no limit).
    pub max_num_fields: Option<i64>,
    /// What separates fields; must not be empty.
    pub separator: String,
}

impl Default for QsOptions {
    fn default() -> Self {
        Self { keep_blank_values: false, strict_parsing: false, max_num_fields: None, separator: "&".to_owned() }
    }
}

/// `parse_qsl(qs, …)`: the `(name, value)` pairs of a query string, `+` as
/// space and percent-escapes decoded as [`unquote`] does. Errors (`value`,
/// from `op`) where Python raises `ValueError`.
pub fn parse_qsl(qs: &str, opts: &QsOptions, op: &str) -> Result<Vec<(String, String)>, Error> {
    let sep = opts.separator.as_str();
    if sep.is_empty() {
        return Err(Error::value(op, "Separator must be of type string or bytes."));
    }
    if let Some(max) = opts.max_num_fields {
        let fields = if qs.is_empty() { 0 } else { 1 + qs.matches(sep).count() };
        if usize::try_from(max).map_or(true, |max| max < fields) {
            return Err(Error::value(op, "Max number of fields exceeded"));
        }
    }
    let mut pairs = Vec::new();
    if qs.is_empty() {
        return Ok(pairs);
    }
    for field in qs.split(sep) {
        if field.is_empty() && !opts.strict_parsing {
            continue;
        }
        let (name, value) = match field.split_once('=') {
            Some(nv) => nv,
            None if opts.strict_parsing => {
                return Err(Error::value(op, format!("bad query field: {}", super::split::py_repr(field))));
            }
            None if opts.keep_blank_values => (field, ""),
            None => continue,
        };
        if !value.is_empty() || opts.keep_blank_values {
            pairs.push((unquote_plus(name), unquote_plus(value)));
        }
    }
    Ok(pairs)
}

/// `parse_qs(qs, …)`: [`parse_qsl`]'s values gathered by name, names in
/// order of first appearance.
pub fn parse_qs(qs: &str, opts: &QsOptions, op: &str) -> Result<Vec<(String, Vec<String>)>, Error> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (name, value) in parse_qsl(qs, opts, op)? {
        match index.get(&name) {
            Some(&i) => out[i].1.push(value),
            None => {
                index.insert(name.clone(), out.len());
                out.push((name, vec![value]));
            }
        }
    }
    Ok(out)
}

/// Which quoting `urlencode` applies to names and values (`quote_via`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuoteVia {
    /// [`quote_plus`], Python's default.
    #[default]
    QuotePlus,
    /// [`quote`].
    Quote,
}

/// `urlencode(pairs, safe=safe, quote_via=via)` for pairs already turned
/// into bytes (a `str` as its UTF-8; `doseq` sequences already spread into
/// one pair per element).
#[must_use]
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)], safe: &[u8], via: QuoteVia) -> String {
    let table = safe_table(safe);
    let plus = via == QuoteVia::QuotePlus;
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_with(k.as_ref(), &table, plus, &mut out);
        out.push('=');
        quote_with(v.as_ref(), &table, plus, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_decodes_each_ascii_run_alone() {
        // Python: unquote('%C3é%A9') == '\ufffdé\ufffd'.
        assert_eq!(unquote("%C3é%A9"), "\u{fffd}é\u{fffd}");
        assert_eq!(unquote("%c3%a9%zz%4"), "é%zz%4");
        assert_eq!(unquote_plus("a+b%2B"), "a b+");
    }

    #[test]
    fn quote_keeps_the_unreserved_set_and_safe() {
        assert_eq!(quote("a b/~é".as_bytes(), b"/"), "a%20b/~%C3%A9");
        assert_eq!(quote_plus(b"a b+c", b""), "a+b%2Bc");
        assert_eq!(quote_plus(b"a b+c", b"+"), "a+b+c");
        assert_eq!(encode(&[("k", "a b"), ("x/y", "~")], b"", QuoteVia::Quote), "k=a%20b&x%2Fy=~");
    }
}

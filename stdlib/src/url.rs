//! `url::` — Python's `urllib.parse`, result for result (CPython 3.11).
//!
//! The string work is in `url/split.rs` (`urlsplit`, `urlparse`, `urljoin`…)
//! and `url/quote.rs` (percent-encoding and query strings), re-exported here
//! so the HTTP client and server and the HTML module use the same rules as
//! scripts. This file turns their results into script values: a split URL
//! is a map `#{scheme, netloc, path, [params,] query, fragment, hostname,
//! port, username, password}`, missing parts `()` where Python has `None`.
//!
//! Python raises `ValueError` when `.port` is *read* and is not a number in
//! 0–65535; a map cannot raise on reading, so the map's `port` is `()` then
//! and `url::port(u)` raises the `value` error.

mod quote;
mod split;

pub use quote::{
    QsOptions, QuoteVia, encode, parse_qs, parse_qsl, quote, quote_plus, unquote, unquote_plus, unquote_to_bytes,
};
pub use split::{
    ParseResult, Parts, SplitResult, USES_NETLOC, USES_PARAMS, USES_RELATIVE, clean, defrag, hostname, join, parse,
    parse_parts, port, split, split_parts, unparse, unsplit, userinfo,
};

use rhai::plugin::*;
use rhai::{Array, Blob, Map};

use crate::args::Opts;
use crate::error::{Error, NativeResult};

/// The `url::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

fn opt_str(v: Option<&str>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Into::into)
}

/// The netloc-derived attributes of a split URL, added to its map.
fn add_netloc_parts(m: &mut Map, netloc: &str) {
    let (user, pass) = userinfo(netloc);
    m.insert("username".into(), opt_str(user));
    m.insert("password".into(), opt_str(pass));
    m.insert("hostname".into(), hostname(netloc).map_or(Dynamic::UNIT, Into::into));
    let port = port(netloc, "url::port").ok().flatten();
    m.insert("port".into(), port.map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))));
}

/// A split or parsed URL as a script map; `params` only for a parse.
fn parts_map(p: &Parts<'_>, with_params: bool) -> Map {
    let mut m = Map::new();
    add_netloc_parts(&mut m, p.netloc);
    m.insert("scheme".into(), p.scheme.as_ref().into());
    m.insert("netloc".into(), p.netloc.into());
    m.insert("path".into(), p.path.into());
    if with_params {
        m.insert("params".into(), p.params.into());
    }
    m.insert("query".into(), p.query.into());
    m.insert("fragment".into(), p.fragment.into());
    m
}

/// `url::split` / `url::parse` of `u` with the default scheme and `allow_fragments`.
fn split_to_map(u: &str, scheme: &str, allow_fragments: bool, parse: bool, op: &str) -> Result<Map, Error> {
    let u = clean(u);
    let p = if parse {
        parse_parts(&u, scheme, allow_fragments, op)?
    } else {
        split_parts(&u, scheme, allow_fragments, op)?
    };
    Ok(parts_map(&p, parse))
}

/// `scheme` (default scheme) and `allow_fragments` from a split's options.
fn split_opts(op: &str, opts: Map) -> Result<(String, bool), Error> {
    let opts = Opts::new(op, opts, &["scheme", "allow_fragments"])?;
    Ok((opts.string("scheme")?.unwrap_or_default(), opts.bool("allow_fragments", true)?))
}

/// One component of a URL given to `unsplit`/`unparse`: a string, or `()` for "".
fn component(op: &str, name: &str, v: Option<&Dynamic>) -> Result<String, Error> {
    match v {
        None => Ok(String::new()),
        Some(v) if v.is_unit() => Ok(String::new()),
        Some(v) => v
            .read_lock::<ImmutableString>()
            .map(|s| s.to_string())
            .ok_or_else(|| Error::value(op, format!("'{name}' must be a string, got {}", v.type_name()))),
    }
}

/// The named components of a URL given as a map (missing keys are "") or as
/// an array of exactly `names.len()` items.
fn components(op: &str, parts: &Dynamic, names: &[&str]) -> Result<Vec<String>, Error> {
    if let Some(m) = parts.read_lock::<Map>() {
        return names.iter().map(|n| component(op, n, m.get(*n))).collect();
    }
    if let Some(a) = parts.read_lock::<Array>() {
        if a.len() != names.len() {
            return Err(Error::value(
                op,
                format!("expected {} items ({}), got {}", names.len(), names.join(", "), a.len()),
            ));
        }
        return names.iter().zip(a.iter()).map(|(n, v)| component(op, n, Some(v))).collect();
    }
    Err(Error::value(op, format!("expected a map or an array of {} strings, got {}", names.len(), parts.type_name())))
}

/// `str(value)` as Python spells it, as bytes: what `urlencode` quotes.
/// Blobs are bytes as they are; containers have no Python spelling here.
fn py_str(op: &str, v: &Dynamic) -> Result<Vec<u8>, Error> {
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(s.as_bytes().to_vec());
    }
    if let Some(b) = v.read_lock::<Blob>() {
        return Ok(b.clone());
    }
    let text = if v.is_unit() {
        "None".to_owned()
    } else if let Ok(b) = v.as_bool() {
        (if b { "True" } else { "False" }).to_owned()
    } else if let Ok(i) = v.as_int() {
        i.to_string()
    } else if let Ok(f) = v.as_float() {
        py_float_repr(f)
    } else if let Ok(c) = v.as_char() {
        c.to_string()
    } else {
        return Err(Error::value(
            op,
            format!("cannot encode a {} value (strings, blobs, numbers, bools, ())", v.type_name()),
        ));
    };
    Ok(text.into_bytes())
}

/// Python's `repr(float)`: the shortest round-trip digits, positional for
/// exponents −4 to 15 and scientific (`1e+16`, `1.5e-07`) outside.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let a = f.abs();
    // Rust's shortest digits round-trip but are not always the closest of
    // that length to the value, which Python's are (`97196633545424.62`,
    // not `.63`): take the correctly rounded number of that many digits when
    // it round-trips too.
    let shortest = format!("{a:e}");
    let len = shortest.split('e').next().map_or(1, |m| m.bytes().filter(u8::is_ascii_digit).count());
    let closest = format!("{a:.*e}", len.saturating_sub(1));
    let sci = if closest.parse::<f64>() == Ok(a) { closest } else { shortest };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{}{frac}e{esign}{:02}", &digits[..1], exp.unsigned_abs())
    }
}

/// A name and a value, as the bytes `urlencode` quotes.
type BytePair = (Vec<u8>, Vec<u8>);

/// `urlencode`'s pairs from a map (its keys in order) or an array of
/// `[name, value]` pairs; with `doseq`, an array value gives one pair per item.
fn encode_pairs(op: &str, query: &Dynamic, doseq: bool) -> Result<Vec<BytePair>, Error> {
    let entries: Vec<(Vec<u8>, Dynamic)> = if let Some(m) = query.read_lock::<Map>() {
        m.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.clone())).collect()
    } else if let Some(a) = query.read_lock::<Array>() {
        let pair = |item: &Dynamic| -> Result<(Vec<u8>, Dynamic), Error> {
            match item.read_lock::<Array>() {
                Some(p) if p.len() == 2 => Ok((py_str(op, &p[0])?, p[1].clone())),
                _ => Err(Error::value(op, format!("expected [name, value] pairs, got an item {item}"))),
            }
        };
        a.iter().map(pair).collect::<Result<_, _>>()?
    } else {
        return Err(Error::value(
            op,
            format!("not a valid non-string sequence or mapping object: {}", query.type_name()),
        ));
    };
    let mut pairs = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match v.read_lock::<Array>() {
            Some(items) if doseq => {
                for item in items.iter() {
                    pairs.push((k.clone(), py_str(op, item)?));
                }
            }
            Some(_) => return Err(Error::value(op, "an array value needs doseq: true")),
            None => pairs.push((k, py_str(op, &v)?)),
        }
    }
    Ok(pairs)
}

/// `safe` given as a string or a blob (as Python accepts str or bytes).
fn safe_arg(op: &str, safe: &Dynamic) -> Result<Vec<u8>, Error> {
    crate::bytes::data_arg(safe, op).map(std::borrow::Cow::into_owned)
}

fn qs_opts(op: &str, opts: Map) -> Result<QsOptions, Error> {
    let o = Opts::new(op, opts, &["keep_blank_values", "strict_parsing", "max_num_fields", "separator"])?;
    let max = match o.get("max_num_fields") {
        None => None,
        Some(v) if v.is_unit() => None,
        Some(_) => Some(o.int("max_num_fields", 0)?),
    };
    Ok(QsOptions {
        keep_blank_values: o.bool("keep_blank_values", false)?,
        strict_parsing: o.bool("strict_parsing", false)?,
        max_num_fields: max,
        separator: o.string("separator")?.unwrap_or_else(|| "&".to_owned()),
    })
}

#[export_module]
mod api {
    use super::*;

    /// Split a URL into `#{scheme, netloc, path, query, fragment}` plus
    /// `hostname` (lowercased), `port` (an integer), `username` and
    /// `password` — `()` where Python's `urlsplit` result has `None` (an
    /// invalid port is `()` here; `url::port(u)` raises for it). Nothing is
    /// decoded. Unbalanced `[` `]` or a bad bracketed host is a `value` error.
    ///
    /// ```rhai
    /// let u = url::split("https://Bob@Example.COM:8443/a/b?x=1#top");
    /// print(`${u.hostname} ${u.port} ${u.path} ${u.query}`);   // example.com 8443 /a/b x=1
    /// ```
    #[rhai_fn(name = "split", return_raw)]
    pub fn split_url(u: &str) -> NativeResult<Map> {
        Ok(split_to_map(u, "", true, false, "url::split")?)
    }

    /// `url::split` with options: `scheme` (used when the URL has none) and
    /// `allow_fragments` (default true; false leaves `#…` in the path or query).
    ///
    /// ```rhai
    /// print(url::split("//host/p", #{scheme: "http"}).scheme);   // http
    /// ```
    #[rhai_fn(name = "split", return_raw)]
    pub fn split_with(u: &str, opts: Map) -> NativeResult<Map> {
        const OP: &str = "url::split";
        let (scheme, frags) = split_opts(OP, opts)?;
        Ok(split_to_map(u, &scheme, frags, false, OP)?)
    }

    /// Like `url::split`, with `params` (after `;` in the last path segment,
    /// for the schemes in Python's `uses_params`): Python's `urlparse`.
    ///
    /// ```rhai
    /// let u = url::parse("http://h/p;type=a?q");
    /// print(`${u.path} ${u.params}`);   // /p type=a
    /// ```
    #[rhai_fn(name = "parse", return_raw)]
    pub fn parse_url(u: &str) -> NativeResult<Map> {
        Ok(split_to_map(u, "", true, true, "url::parse")?)
    }

    /// `url::parse` with options `scheme` and `allow_fragments`, as for `url::split`.
    ///
    /// ```rhai
    /// print(url::parse("p#f", #{allow_fragments: false}).path);   // p#f
    /// ```
    #[rhai_fn(name = "parse", return_raw)]
    pub fn parse_with(u: &str, opts: Map) -> NativeResult<Map> {
        const OP: &str = "url::parse";
        let (scheme, frags) = split_opts(OP, opts)?;
        Ok(split_to_map(u, &scheme, frags, true, OP)?)
    }

    /// Put a split URL back together (`urlunsplit`, `geturl()`): a map with
    /// `scheme, netloc, path, query, fragment` (missing keys are empty) or a
    /// 5-item array.
    ///
    /// ```rhai
    /// let u = url::split("http://h/p?q");
    /// u.query = "x=2";
    /// print(url::unsplit(u));                          // http://h/p?x=2
    /// print(url::unsplit(["https", "h", "", "", ""])); // https://h
    /// ```
    #[rhai_fn(name = "unsplit", return_raw)]
    pub fn unsplit_url(parts: Dynamic) -> NativeResult<String> {
        let c = components("url::unsplit", &parts, &["scheme", "netloc", "path", "query", "fragment"])?;
        Ok(unsplit(&c[0], &c[1], &c[2], &c[3], &c[4]))
    }

    /// Put a parsed URL back together (`urlunparse`): a map with `scheme,
    /// netloc, path, params, query, fragment` or a 6-item array.
    ///
    /// ```rhai
    /// print(url::unparse(["http", "h", "/p", "a=1", "q", ""]));   // http://h/p;a=1?q
    /// ```
    #[rhai_fn(name = "unparse", return_raw)]
    pub fn unparse_url(parts: Dynamic) -> NativeResult<String> {
        let c = components("url::unparse", &parts, &["scheme", "netloc", "path", "params", "query", "fragment"])?;
        let [scheme, netloc, path, params, query, fragment] = <[String; 6]>::try_from(c).unwrap_or_default();
        Ok(unparse(&ParseResult { scheme, netloc, path, params, query, fragment }))
    }

    /// Resolve a reference against a base URL (`urljoin`): RFC 3986 for the
    /// schemes in Python's `uses_relative`; a reference with another scheme
    /// comes back as it is.
    ///
    /// ```rhai
    /// print(url::join("http://a/b/c/d;p?q", "../g"));   // http://a/b/g
    /// ```
    #[rhai_fn(name = "join", return_raw)]
    pub fn join_url(base: &str, reference: &str) -> NativeResult<String> {
        Ok(join(base, reference, true, "url::join")?)
    }

    /// `url::join` with `#{allow_fragments: false}` (fragments stay in the path).
    ///
    /// ```rhai
    /// print(url::join("http://a/b", "c#d", #{allow_fragments: false}));   // http://a/c#d
    /// ```
    #[rhai_fn(name = "join", return_raw)]
    pub fn join_with(base: &str, reference: &str, opts: Map) -> NativeResult<String> {
        const OP: &str = "url::join";
        let opts = Opts::new(OP, opts, &["allow_fragments"])?;
        Ok(join(base, reference, opts.bool("allow_fragments", true)?, OP)?)
    }

    /// Split off the fragment (`urldefrag`): `#{url, fragment}`.
    ///
    /// ```rhai
    /// let d = url::defrag("http://h/p?q#sec");
    /// print(`${d.url} ${d.fragment}`);   // http://h/p?q sec
    /// ```
    #[rhai_fn(name = "defrag", return_raw)]
    pub fn defrag_url(u: &str) -> NativeResult<Map> {
        let (url, fragment) = defrag(u, "url::defrag")?;
        let mut m = Map::new();
        m.insert("url".into(), url.into());
        m.insert("fragment".into(), fragment.into());
        Ok(m)
    }

    /// The port of a URL (a string, or a map from `url::split`/`url::parse`)
    /// as Python's `.port` reads it: an integer, `()` without one, and a
    /// `value` error when it is not digits or is out of 0–65535.
    ///
    /// ```rhai
    /// print(url::port("http://h:8080/"));   // 8080
    /// try { url::port("http://h:99999/") } catch (e) { print(e.kind) }   // value
    /// ```
    #[rhai_fn(name = "port", return_raw)]
    pub fn port_of(u: Dynamic) -> NativeResult<Dynamic> {
        const OP: &str = "url::port";
        let netloc = if let Some(m) = u.read_lock::<Map>() {
            component(OP, "netloc", m.get("netloc"))?
        } else if let Some(s) = u.read_lock::<ImmutableString>() {
            split_parts(&clean(s.as_str()), "", true, OP)?.netloc.to_owned()
        } else {
            return Err(Error::value(OP, format!("expected a URL string or map, got {}", u.type_name())).into());
        };
        Ok(port(&netloc, OP)?.map_or(Dynamic::UNIT, |p| Dynamic::from_int(i64::from(p))))
    }

    /// Percent-encode a string (as UTF-8) or blob, keeping letters, digits,
    /// `_.-~` and `/` (Python's `quote` with its default `safe="/"`).
    ///
    /// ```rhai
    /// print(url::quote("/a b/ü"));   // /a%20b/%C3%BC
    /// ```
    #[rhai_fn(name = "quote", return_raw)]
    pub fn quote_default(s: Dynamic) -> NativeResult<String> {
        quote_safe(s, "/".into())
    }

    /// `url::quote` with the characters to keep given: `safe` is a string or
    /// blob (only its ASCII characters count; `""` escapes `/` too).
    ///
    /// ```rhai
    /// print(url::quote("a/b c", ""));   // a%2Fb%20c
    /// ```
    #[rhai_fn(name = "quote", return_raw)]
    pub fn quote_safe(s: Dynamic, safe: Dynamic) -> NativeResult<String> {
        const OP: &str = "url::quote";
        let safe = safe_arg(OP, &safe)?;
        if let Some(text) = s.read_lock::<ImmutableString>() {
            return Ok(quote(text.as_bytes(), &safe));
        }
        Ok(quote(&crate::bytes::data_arg(&s, OP)?, &safe))
    }

    /// Percent-encode for a form value: like `url::quote` with no safe
    /// characters, and spaces as `+` (Python's `quote_plus`).
    ///
    /// ```rhai
    /// print(url::quote_plus("a b&c/d"));   // a+b%26c%2Fd
    /// ```
    #[rhai_fn(name = "quote_plus", return_raw)]
    pub fn quote_plus_default(s: Dynamic) -> NativeResult<String> {
        quote_plus_safe(s, "".into())
    }

    /// `url::quote_plus` keeping the characters of `safe` (string or blob).
    ///
    /// ```rhai
    /// print(url::quote_plus("a b/c", "/"));   // a+b/c
    /// ```
    #[rhai_fn(name = "quote_plus", return_raw)]
    pub fn quote_plus_safe(s: Dynamic, safe: Dynamic) -> NativeResult<String> {
        const OP: &str = "url::quote_plus";
        let safe = safe_arg(OP, &safe)?;
        if let Some(text) = s.read_lock::<ImmutableString>() {
            return Ok(quote_plus(text.as_bytes(), &safe));
        }
        Ok(quote_plus(&crate::bytes::data_arg(&s, OP)?, &safe))
    }

    /// Decode `%XX` escapes as UTF-8 (`unquote`): a bad sequence becomes
    /// U+FFFD, as with Python's `errors="replace"`; a `%` without two hex
    /// digits stays as it is.
    ///
    /// ```rhai
    /// print(url::unquote("caf%C3%A9%20au%2Blait"));   // café au+lait
    /// ```
    #[rhai_fn(name = "unquote", return_raw)]
    pub fn unquote_text(s: Dynamic) -> NativeResult<String> {
        if let Some(text) = s.read_lock::<ImmutableString>() {
            return Ok(unquote(text.as_str()));
        }
        let bytes = crate::bytes::data_arg(&s, "url::unquote")?;
        Ok(String::from_utf8_lossy(&unquote_to_bytes(&bytes)).into_owned())
    }

    /// `url::unquote` after turning `+` into spaces (`unquote_plus`, for form values).
    ///
    /// ```rhai
    /// print(url::unquote_plus("a+b%2Bc"));   // a b+c
    /// ```
    #[rhai_fn(name = "unquote_plus")]
    pub fn unquote_plus_text(s: &str) -> String {
        unquote_plus(s)
    }

    /// Decode `%XX` escapes of a string or blob into a blob (`unquote_to_bytes`).
    ///
    /// ```rhai
    /// print(url::unquote_to_bytes("%FF%00a").len());   // 3
    /// ```
    #[rhai_fn(name = "unquote_to_bytes", return_raw)]
    pub fn unquote_bytes(s: Dynamic) -> NativeResult<Blob> {
        Ok(unquote_to_bytes(&crate::bytes::data_arg(&s, "url::unquote_to_bytes")?))
    }

    /// Parse a query string into a map of arrays of values (`parse_qs`):
    /// `+` is a space, escapes are decoded, blank values are dropped.
    ///
    /// ```rhai
    /// let q = url::parse_qs("a=1&b=x+y&a=2&c=");
    /// print(q.a);   // ["1", "2"]
    /// ```
    #[rhai_fn(name = "parse_qs", return_raw)]
    pub fn parse_qs_default(q: &str) -> NativeResult<Map> {
        parse_qs_with(q, Map::new())
    }

    /// `url::parse_qs` with options `keep_blank_values`, `strict_parsing`
    /// (a malformed field is a `value` error), `max_num_fields` (more is a
    /// `value` error) and `separator` (default `"&"`).
    ///
    /// ```rhai
    /// print(url::parse_qs("a=1;b=", #{separator: ";", keep_blank_values: true}).b);   // [""]
    /// ```
    #[rhai_fn(name = "parse_qs", return_raw)]
    pub fn parse_qs_with(q: &str, opts: Map) -> NativeResult<Map> {
        const OP: &str = "url::parse_qs";
        let opts = qs_opts(OP, opts)?;
        let mut m = Map::new();
        for (name, values) in parse_qs(q, &opts, OP)? {
            m.insert(name.into(), values.into_iter().map(Dynamic::from).collect::<Array>().into());
        }
        Ok(m)
    }

    /// Parse a query string into an array of `[name, value]` pairs in order
    /// (`parse_qsl`).
    ///
    /// ```rhai
    /// print(url::parse_qsl("a=1&b=%20"));   // [["a", "1"], ["b", " "]]
    /// ```
    #[rhai_fn(name = "parse_qsl", return_raw)]
    pub fn parse_qsl_default(q: &str) -> NativeResult<Array> {
        parse_qsl_with(q, Map::new())
    }

    /// `url::parse_qsl` with the options of `url::parse_qs`.
    ///
    /// ```rhai
    /// print(url::parse_qsl("a&b=2", #{keep_blank_values: true}));   // [["a", ""], ["b", "2"]]
    /// ```
    #[rhai_fn(name = "parse_qsl", return_raw)]
    pub fn parse_qsl_with(q: &str, opts: Map) -> NativeResult<Array> {
        const OP: &str = "url::parse_qsl";
        let opts = qs_opts(OP, opts)?;
        let pair = |(k, v): (String, String)| Dynamic::from_array(vec![k.into(), v.into()]);
        Ok(parse_qsl(q, &opts, OP)?.into_iter().map(pair).collect())
    }

    /// Encode a map (its keys in order) or an array of `[name, value]` pairs
    /// as a query string (`urlencode`): values are strings, blobs, numbers
    /// (as Python prints them), bools (`True`) or `()` (`None`).
    ///
    /// ```rhai
    /// print(url::encode([["q", "a b"], ["n", 1]]));   // q=a+b&n=1
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode_default(query: Dynamic) -> NativeResult<String> {
        encode_with(query, Map::new())
    }

    /// `url::encode` with options: `doseq` (an array value gives one field
    /// per item), `safe` (characters left as they are) and `quote_via`
    /// (`"quote_plus"`, the default, or `"quote"`: spaces as `%20`).
    ///
    /// ```rhai
    /// print(url::encode(#{tag: ["a", "b c"]}, #{doseq: true, quote_via: "quote"}));   // tag=a&tag=b%20c
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode_with(query: Dynamic, opts: Map) -> NativeResult<String> {
        const OP: &str = "url::encode";
        let o = Opts::new(OP, opts, &["doseq", "safe", "quote_via"])?;
        let safe = match o.get("safe") {
            Some(s) => safe_arg(OP, s)?,
            None => Vec::new(),
        };
        let via = match o.string("quote_via")?.as_deref() {
            None | Some("quote_plus") => QuoteVia::QuotePlus,
            Some("quote") => QuoteVia::Quote,
            Some(other) => {
                return Err(
                    Error::value(OP, format!("quote_via must be \"quote_plus\" or \"quote\", got {other:?}")).into()
                );
            }
        };
        let pairs = encode_pairs(OP, &query, o.bool("doseq", false)?)?;
        Ok(encode(&pairs, &safe, via))
    }
}

#[cfg(test)]
mod tests {
    use super::py_float_repr;

    #[test]
    fn floats_print_as_python_repr() {
        for (f, want) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (1e-4, "0.0001"),
            (1.5e-7, "1.5e-07"),
            (-0.0, "-0.0"),
            (123456.789, "123456.789"),
            (1e300, "1e+300"),
            (97196633545424.62, "97196633545424.62"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
        ] {
            assert_eq!(py_float_repr(f), want, "{f}");
        }
    }
}

//! Request bodies from script options — `form` (urlencoded), `multipart`,
//! `json`, `body` — and the query string of `params`, encoded as Python's
//! `urllib.parse.urlencode` and requests do.

use std::sync::atomic::{AtomicU64, Ordering};

use rhai::{Array, Dynamic, Map};

use crate::error::Error;

/// A scalar option value as text (`true`, `3`, `"a"`), like Python's `str()`.
fn text(op: &str, key: &str, v: &Dynamic) -> Result<String, Error> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() || v.is_char() || v.is_decimal() {
        Ok(v.to_string())
    } else {
        Err(Error::value(op, format!("the value of {key:?} must be a string or a number, got {}", v.type_name())))
    }
}

/// `(name, value)` pairs of a map (arrays as values repeat the name, as
/// `urlencode(..., doseq=True)` and requests do) or of an array of
/// `[name, value]` pairs, in order.
pub fn pairs(op: &str, what: &str, value: &Dynamic) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    let mut push = |k: &str, v: &Dynamic| -> Result<(), Error> {
        match v.read_lock::<Array>() {
            Some(items) => items.iter().try_for_each(|item| {
                out.push((k.to_string(), text(op, k, item)?));
                Ok(())
            }),
            None if v.is_unit() => Ok(()),
            None => {
                out.push((k.to_string(), text(op, k, v)?));
                Ok(())
            }
        }
    };
    if let Some(map) = value.read_lock::<Map>() {
        for (k, v) in map.iter() {
            push(k, v)?;
        }
    } else if let Some(items) = value.read_lock::<Array>() {
        for item in items.iter() {
            let pair = item
                .read_lock::<Array>()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| Error::value(op, format!("{what} must be a map or an array of [name, value] pairs")))?;
            push(&text(op, what, &pair[0])?, &pair[1])?;
        }
    } else {
        return Err(Error::value(op, format!("{what} must be a map or an array of [name, value] pairs")));
    }
    Ok(out)
}

/// `urlencode(pairs)`: `a=1&b=x+y` (`url::encode`'s rules).
pub fn urlencode(pairs: &[(String, String)]) -> String {
    crate::url::encode(pairs, b"", crate::url::QuoteVia::QuotePlus)
}

/// A request body and its content type.
pub struct Body {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
}

/// One part of a `multipart/form-data` body: a file part has a file name
/// and a content type.
pub struct Part {
    pub name: String,
    pub file: Option<(String, String)>,
    pub content: Vec<u8>,
}

impl Part {
    /// A plain field.
    pub fn field(name: &str, value: impl Into<Vec<u8>>) -> Self {
        Self { name: name.to_owned(), file: None, content: value.into() }
    }

    /// A file part from `#{filename, content, content_type}` (content a
    /// string or blob; the file name defaults to the field's name, the type
    /// to `application/octet-stream`).
    pub fn file(op: &str, name: &str, file: &Map) -> Result<Self, Error> {
        let get = |k: &str| file.get(k).filter(|v| !v.is_unit());
        let content = get("content")
            .map_or(Ok(Vec::new()), |c| crate::bytes::data_arg(c, op).map(std::borrow::Cow::into_owned))?;
        let filename = get("filename").map_or_else(|| name.to_owned(), ToString::to_string);
        let ctype = get("content_type").map_or_else(|| "application/octet-stream".into(), ToString::to_string);
        Ok(Self { name: name.to_owned(), file: Some((filename, ctype)), content })
    }
}

/// A `multipart/form-data` body from a map of fields (or an array of
/// `[name, value]` pairs, for repeated names): each value is a string or
/// number, or a file `#{filename, content, content_type}`.
pub fn multipart(op: &str, fields: &Dynamic) -> Result<Body, Error> {
    let part = |name: &str, v: &Dynamic| match v.read_lock::<Map>() {
        Some(file) => Part::file(op, name, &file),
        None => Ok(Part::field(name, text(op, name, v)?)),
    };
    let mut parts = Vec::new();
    if let Some(map) = fields.read_lock::<Map>() {
        for (name, v) in map.iter() {
            parts.push(part(name, v)?);
        }
    } else if let Some(items) = fields.read_lock::<Array>() {
        for item in items.iter() {
            let pair = item
                .read_lock::<Array>()
                .filter(|p| p.len() == 2)
                .ok_or_else(|| Error::value(op, "multipart must be a map or an array of [name, value] pairs"))?;
            parts.push(part(&text(op, "multipart", &pair[0])?, &pair[1])?);
        }
    } else {
        return Err(Error::value(op, "multipart must be a map or an array of [name, value] pairs"));
    }
    Ok(multipart_body(parts))
}

/// Encode `parts` as `multipart/form-data` (RFC 7578), names and file names
/// escaped as the HTML standard says and browsers do (`"` as `%22`, CR and
/// LF as `%0D` and `%0A`).
pub fn multipart_body(parts: Vec<Part>) -> Body {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // A boundary that occurs in no part (checked, not hoped for).
    let boundary = loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let b = format!("netscript{:x}{:x}", nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
        if !parts.iter().any(|p| crate::tcp::find(&p.content, b.as_bytes()).is_some()) {
            break b;
        }
    };
    let quote = |s: &str| s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A");
    let mut out = Vec::new();
    for part in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", quote(&part.name)).as_bytes(),
        );
        if let Some((filename, ctype)) = &part.file {
            out.extend_from_slice(format!("; filename=\"{}\"\r\nContent-Type: {ctype}", quote(filename)).as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&part.content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Body { bytes: out, content_type: Some(format!("multipart/form-data; boundary={boundary}")) }
}

/// A form's `application/x-www-form-urlencoded` entry list as browsers
/// write it (the WHATWG serializer: `*` kept, `~` escaped, unlike Python's
/// `urlencode`).
pub fn browser_urlencode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// Line breaks as a submitted form sends them: every CR, LF or CRLF as CRLF.
pub fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n").replace('\n', "\r\n")
}

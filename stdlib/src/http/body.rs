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

/// A `multipart/form-data` body: each field is a string or number, or a
/// file `#{filename, content, content_type}` (content a string or blob).
pub fn multipart(op: &str, fields: &Dynamic) -> Result<Body, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut parts: Vec<(String, Option<String>, String, Vec<u8>)> = Vec::new();
    let map = fields.read_lock::<Map>().ok_or_else(|| Error::value(op, "multipart must be a map of fields"))?;
    for (name, v) in map.iter() {
        match v.read_lock::<Map>() {
            Some(file) => {
                let get = |k: &str| file.get(k).filter(|v| !v.is_unit());
                let content = get("content")
                    .map_or(Ok(Vec::new()), |c| crate::bytes::data_arg(c, op).map(std::borrow::Cow::into_owned))?;
                let filename = get("filename").map(ToString::to_string).unwrap_or_else(|| name.to_string());
                let ctype = get("content_type").map_or("application/octet-stream".into(), ToString::to_string);
                parts.push((name.to_string(), Some(filename), ctype, content));
            }
            None => parts.push((name.to_string(), None, String::new(), text(op, name, v)?.into_bytes())),
        }
    }
    // A boundary that occurs in no part (checked, not hoped for).
    let boundary = loop {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let b = format!("netscript{:x}{:x}", nanos, COUNTER.fetch_add(1, Ordering::Relaxed));
        if !parts.iter().any(|p| crate::tcp::find(&p.3, b.as_bytes()).is_some()) {
            break b;
        }
    };
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace(['\r', '\n'], " ");
    let mut out = Vec::new();
    for (name, filename, ctype, content) in parts {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", quote(&name)).as_bytes(),
        );
        if let Some(f) = filename {
            out.extend_from_slice(format!("; filename=\"{}\"\r\nContent-Type: {ctype}", quote(&f)).as_bytes());
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok(Body { bytes: out, content_type: Some(format!("multipart/form-data; boundary={boundary}")) })
}

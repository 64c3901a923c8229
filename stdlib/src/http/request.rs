//! The request a handler of `http::listen(...).serve(handler)` receives:
//! method, path, query, headers, cookies, peer and body, with the body
//! decoders `text()`, `json()` and `form()` (urlencoded and multipart).
//!
//! Maps are built when a script asks for them, so a handler that looks only
//! at `req.path` pays for nothing else.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{CONTENT_TYPE, COOKIE, HOST};
use hyper::{HeaderMap, Method, Uri, Version};
use rhai::{Array, Blob, Dynamic, Map};

use crate::error::{Error, Kind, NativeResult};
use crate::url::{QsOptions, parse_qsl, unquote};

/// A request as handed to a script; clones share it.
#[derive(Clone)]
pub struct ServerRequest(Arc<RequestInner>);

struct RequestInner {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
    remote: SocketAddr,
    /// `http` or `https`, for `req.url`.
    scheme: &'static str,
    /// Path parameters filled in by the router (`/items/:id`).
    params: Map,
}

impl ServerRequest {
    /// A request with its whole body read.
    pub(crate) fn new(
        parts: hyper::http::request::Parts,
        body: Bytes,
        remote: SocketAddr,
        params: Map,
        scheme: &'static str,
    ) -> Self {
        Self(Arc::new(RequestInner {
            method: parts.method,
            uri: parts.uri,
            version: parts.version,
            headers: parts.headers,
            body,
            remote,
            scheme,
            params,
        }))
    }

    /// The method (`GET`).
    #[must_use]
    pub fn method(&self) -> &str {
        self.0.method.as_str()
    }

    /// The path, percent-decoded, without the query (`/a b`).
    #[must_use]
    pub fn path(&self) -> String {
        unquote(self.0.uri.path())
    }

    /// The query string as sent, without `?` (`""` if none).
    #[must_use]
    pub fn query_string(&self) -> &str {
        self.0.uri.query().unwrap_or("")
    }

    /// The query as Python's `parse_qs`: each name to the list of its values.
    #[must_use]
    pub fn query(&self) -> Map {
        parse_qs(self.query_string())
    }

    /// The whole URL, rebuilt from the `Host` header (or the URI's authority).
    #[must_use]
    pub fn url(&self) -> String {
        let host = self
            .0
            .uri
            .authority()
            .map(ToString::to_string)
            .or_else(|| self.0.headers.get(HOST).and_then(|h| h.to_str().ok()).map(String::from))
            .unwrap_or_default();
        let target = self.0.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{}://{host}{target}", self.0.scheme)
    }

    /// `HTTP/1.1`, `HTTP/2.0`.
    #[must_use]
    pub fn version(&self) -> String {
        format!("{:?}", self.0.version)
    }

    /// The headers with lowercase names; repeated headers are joined by `, `.
    #[must_use]
    pub fn headers(&self) -> Map {
        let mut map = Map::new();
        for (name, value) in &self.0.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            map.entry(name.as_str().into())
                .and_modify(|v: &mut Dynamic| *v = format!("{v}, {value}").into())
                .or_insert_with(|| value.into_owned().into());
        }
        map
    }

    /// One header by name, in any case; `()` if absent.
    pub fn header(&self, name: &str) -> Dynamic {
        let values: Vec<_> =
            self.0.headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
        if values.is_empty() { Dynamic::UNIT } else { values.join(", ").into() }
    }

    /// Cookies sent by the client, name to value (the first of a repeated name wins).
    #[must_use]
    pub fn cookies(&self) -> Map {
        let mut map = Map::new();
        for header in self.0.headers.get_all(COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for cookie in cookie::Cookie::split_parse(text).flatten() {
                map.entry(cookie.name().into()).or_insert_with(|| cookie.value().to_string().into());
            }
        }
        map
    }

    /// The peer's `ip:port`.
    #[must_use]
    pub fn remote(&self) -> String {
        self.0.remote.to_string()
    }

    /// The body as received.
    #[must_use]
    pub fn body(&self) -> Blob {
        self.0.body.to_vec()
    }

    /// Path parameters from the router.
    #[must_use]
    pub fn params(&self) -> Map {
        self.0.params.clone()
    }

    /// The body decoded as UTF-8; a `decode` error if it is not.
    pub fn text(&self) -> Result<String, Error> {
        String::from_utf8(self.0.body.to_vec())
            .map_err(|e| Error::new(Kind::Decode, "req.text", format!("the body is not UTF-8: {e}")))
    }

    /// The body decoded as JSON.
    pub fn json(&self) -> Result<Dynamic, Error> {
        const OP: &str = "req.json";
        let value = serde_json::from_slice(&self.0.body)
            .map_err(|e| Error::new(Kind::Decode, OP, format!("the body is not JSON: {e}")))?;
        crate::codec::json::from_json(value, OP)
    }

    fn content_type(&self) -> &str {
        self.0.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The form fields of an urlencoded or multipart body: each name to its
    /// value, or to an array of values when the name is repeated. Files are
    /// `#{filename, content_type, data}`.
    pub fn form(&self) -> NativeResult<Map> {
        const OP: &str = "req.form";
        let ctype = self.content_type().to_ascii_lowercase();
        if ctype.starts_with("multipart/form-data") {
            let boundary = multer::parse_boundary(self.content_type())
                .map_err(|e| Error::new(Kind::Decode, OP, format!("bad multipart content type: {e}")))?;
            let body = self.0.body.clone();
            return crate::runtime::block_on(multipart(body, boundary))?.map_err(Into::into);
        }
        if ctype.is_empty() || ctype.starts_with("application/x-www-form-urlencoded") {
            // Blank fields are kept: a form's empty input is a value ("").
            let opts = QsOptions { keep_blank_values: true, ..QsOptions::default() };
            let mut map = Map::new();
            for (name, value) in parse_qsl(&String::from_utf8_lossy(&self.0.body), &opts, OP)? {
                add_field(&mut map, &name, value.into());
            }
            return Ok(map);
        }
        Err(Error::new(Kind::Decode, OP, format!("not a form body (content type {ctype:?})")).into())
    }
}

/// Add `value` under `name`: the first is stored as is, a second turns the
/// entry into an array of all of them.
fn add_field(map: &mut Map, name: &str, value: Dynamic) {
    match map.get_mut(name) {
        None => {
            map.insert(name.into(), value);
        }
        Some(existing) if existing.is_array() => {
            if let Some(mut list) = existing.write_lock::<Array>() {
                list.push(value);
            }
        }
        Some(existing) => {
            let first = std::mem::take(existing);
            *existing = Dynamic::from_array(vec![first, value]);
        }
    }
}

/// Decode a complete multipart body (already read within `max_body`).
async fn multipart(body: Bytes, boundary: String) -> Result<Map, Error> {
    const OP: &str = "req.form";
    let bad = |e: multer::Error| Error::new(Kind::Decode, OP, format!("bad multipart body: {e}"));
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut map = Map::new();
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        let filename = field.file_name().map(String::from);
        let ctype = field.content_type().map(ToString::to_string);
        let data = field.bytes().await.map_err(bad)?;
        let value = match filename {
            Some(filename) => {
                let mut file = Map::new();
                file.insert("filename".into(), filename.into());
                file.insert("content_type".into(), ctype.unwrap_or_else(|| "application/octet-stream".into()).into());
                file.insert("data".into(), Dynamic::from_blob(data.to_vec()));
                file.into()
            }
            None => String::from_utf8_lossy(&data).into_owned().into(),
        };
        add_field(&mut map, &name, value);
    }
    Ok(map)
}

/// Python's `urllib.parse.parse_qs(qs)` as a map of lists.
fn parse_qs(qs: &str) -> Map {
    let pairs = crate::url::parse_qs(qs, &QsOptions::default(), "req.query").unwrap_or_default();
    pairs
        .into_iter()
        .map(|(name, values)| (name.into(), values.into_iter().map(Dynamic::from).collect::<Array>().into()))
        .collect()
}

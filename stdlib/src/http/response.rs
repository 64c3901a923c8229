//! What a handler returns, and how it becomes an HTTP response: a string is
//! an HTML page, a blob raw bytes, a map or array JSON, `()` an empty 204,
//! and `http::response`/`redirect`/`not_found`/`stream` build a
//! [`ServerResponse`] with a status, headers and cookies of its own.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use rhai::{Blob, Dynamic, Map};
use tokio::sync::mpsc;

use crate::args::Opts;
use crate::error::{Error, Kind, NativeResult};
use crate::task::Callable;

/// The body type of every response the server sends.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A complete body.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|never: Infallible| match never {}).boxed_unsync()
}

/// A body fed chunk by chunk through `rx`; an `Err` chunk aborts it.
pub fn channel_body(rx: mpsc::Receiver<Result<Bytes, std::io::Error>>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map(Frame::data), rx))
    });
    StreamBody::new(stream).boxed_unsync()
}

pub(crate) const HTML: &str = "text/html; charset=utf-8";
const OCTETS: &str = "application/octet-stream";
const JSON: &str = "application/json";

/// The payload of a [`ServerResponse`].
#[derive(Clone)]
pub enum Payload {
    /// The whole body.
    Data(Bytes),
    /// `http::stream(|w| …)`: the closure writes the body in a task of its own.
    Stream(Callable),
}

/// A response built by a script (`http::response(201, body)`); a plain
/// value that `set_cookie` and `set_header` change in place.
#[derive(Clone)]
pub struct ServerResponse {
    /// Status code (100..999).
    pub status: u16,
    /// Headers in the order set; names as given.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Payload,
}

impl ServerResponse {
    /// A response with `status` whose body and default content type follow
    /// the handler return conventions.
    pub fn of_value(status: u16, body: &Dynamic, op: &str) -> Result<Self, Error> {
        let (data, ctype) = encode_body(body, op)?;
        let headers = ctype.map(|c| vec![("Content-Type".to_string(), c.to_string())]).unwrap_or_default();
        Ok(Self { status, headers, body: Payload::Data(data) })
    }

    /// A handler's return value as a response (a [`ServerResponse`] as is).
    pub fn from_return(value: Dynamic) -> Result<Self, Error> {
        if value.is_unit() {
            return Ok(Self { status: 204, headers: Vec::new(), body: Payload::Data(Bytes::new()) });
        }
        match value.try_cast_result::<Self>() {
            Ok(resp) => Ok(resp),
            Err(value) => Self::of_value(200, &value, "handler"),
        }
    }

    /// A plain-text page with `status`, used for the server's own answers (404, 500…).
    #[must_use]
    pub fn text(status: u16, text: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: Payload::Data(text.into()),
        }
    }

    /// Set a header, replacing one of the same name (in any case).
    pub fn set_header(&mut self, name: &str, value: &str) -> Result<(), Error> {
        check_header("resp.set_header", name, value)?;
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    /// The headers as a map (the last of a repeated name wins, except
    /// `Set-Cookie` lines, which are joined by `\n`).
    #[must_use]
    pub fn header_map(&self) -> Map {
        let mut map = Map::new();
        for (name, value) in &self.headers {
            map.entry(name.as_str().into())
                .and_modify(|v: &mut Dynamic| *v = format!("{v}\n{value}").into())
                .or_insert_with(|| value.clone().into());
        }
        map
    }

    /// Add a `Set-Cookie` header. Options: `max_age` (seconds), `path`
    /// (default `/`), `domain`, `secure`, `httponly`, `samesite`
    /// (`"Strict"`, `"Lax"`, `"None"`).
    pub fn set_cookie(&mut self, name: &str, value: &str, opts: Map) -> Result<(), Error> {
        const OP: &str = "resp.set_cookie";
        let opts = Opts::new(OP, opts, &["max_age", "path", "domain", "secure", "httponly", "samesite"])?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)) {
            return Err(Error::value(OP, format!("invalid cookie name {name:?}")));
        }
        if value.bytes().any(|b| !b.is_ascii_graphic() || b"\",;\\".contains(&b)) {
            return Err(Error::value(OP, format!("invalid cookie value {value:?} (quote it, e.g. with url encoding)")));
        }
        let mut c = cookie::Cookie::new(name.to_string(), value.to_string());
        c.set_path(opts.string("path")?.unwrap_or_else(|| "/".into()));
        if let Some(domain) = opts.string("domain")? {
            c.set_domain(domain);
        }
        if let Some(age) = opts.duration("max_age", None)? {
            let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX);
            c.set_max_age(cookie::time::Duration::seconds(secs));
        }
        c.set_secure(opts.bool("secure", false)?.then_some(true));
        c.set_http_only(opts.bool("httponly", false)?.then_some(true));
        if let Some(same) = opts.string("samesite")? {
            c.set_same_site(match same.to_ascii_lowercase().as_str() {
                "strict" => cookie::SameSite::Strict,
                "lax" => cookie::SameSite::Lax,
                "none" => cookie::SameSite::None,
                _ => return Err(Error::value(OP, format!("samesite must be Strict, Lax or None, got {same:?}"))),
            });
        }
        self.headers.push(("Set-Cookie".into(), c.to_string()));
        Ok(())
    }

    /// Tell the client to drop cookie `name` (an expired `Set-Cookie`).
    pub fn delete_cookie(&mut self, name: &str) -> Result<(), Error> {
        let mut opts = Map::new();
        opts.insert("max_age".into(), Dynamic::from_int(0));
        self.set_cookie(name, "", opts)
    }
}

/// A body value as bytes and its default content type.
fn encode_body(body: &Dynamic, op: &str) -> Result<(Bytes, Option<&'static str>), Error> {
    if body.is_unit() {
        return Ok((Bytes::new(), None));
    }
    if let Some(s) = body.read_lock::<rhai::ImmutableString>() {
        return Ok((Bytes::copy_from_slice(s.as_bytes()), Some(HTML)));
    }
    if let Some(b) = body.read_lock::<Blob>() {
        return Ok((Bytes::copy_from_slice(&b), Some(OCTETS)));
    }
    let text = crate::codec::json::encode_with(body, &Map::new())
        .map_err(|e| Error::value(op, format!("cannot send {} as JSON: {}", body.type_name(), e.message())))?;
    Ok((Bytes::from(text), Some(JSON)))
}

/// Check that `name: value` can be sent as a header.
pub fn check_header(op: &str, name: &str, value: &str) -> Result<(), Error> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::value(op, format!("invalid header name {name:?}")))?;
    HeaderValue::from_str(value)
        .map_err(|_| Error::value(op, format!("invalid value for header {name}: {value:?}")))?;
    Ok(())
}

/// A status code argument.
pub fn status_arg(op: &str, status: rhai::INT) -> Result<u16, Error> {
    u16::try_from(status)
        .ok()
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| Error::value(op, format!("status must be 100..999, got {status}")))
}

/// `http::response(status, body, headers)`.
pub fn response(status: rhai::INT, body: &Dynamic, headers: Map) -> Result<ServerResponse, Error> {
    const OP: &str = "http::response";
    let mut resp = ServerResponse::of_value(status_arg(OP, status)?, body, OP)?;
    for (name, value) in headers {
        let value = value.to_string();
        check_header(OP, &name, &value)?;
        resp.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        resp.headers.push((name.to_string(), value));
    }
    Ok(resp)
}

/// `http::redirect(url, status)`.
pub fn redirect(url: &str, status: rhai::INT) -> Result<ServerResponse, Error> {
    const OP: &str = "http::redirect";
    let status = status_arg(OP, status)?;
    if !(300..400).contains(&status) {
        return Err(Error::value(OP, format!("a redirect status is 3xx, got {status}")));
    }
    check_header(OP, "Location", url)?;
    let page = format!("<a href=\"{}\">{}</a>\n", html_escape(url), html_escape(url));
    let mut resp = ServerResponse::of_value(status, &page.into(), OP)?;
    resp.headers.push(("Location".into(), url.to_string()));
    Ok(resp)
}

/// `http::stream(f)`: a 200 response whose body `f(w)` writes.
#[must_use]
pub fn stream(writer: Callable) -> ServerResponse {
    ServerResponse { status: 200, headers: vec![("Content-Type".into(), OCTETS.into())], body: Payload::Stream(writer) }
}

/// Escape `&<>"'` for HTML text and attributes.
#[must_use]
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// How many chunks a streaming handler may write ahead of the client.
const STREAM_QUEUE: usize = 8;

/// The `w` of `http::stream(|w| …)`: `w.write(data)` sends a chunk,
/// waiting while the client is slower than the script.
#[derive(Clone)]
pub struct StreamWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    timeout: Option<Duration>,
}

impl StreamWriter {
    /// A writer and the body it feeds.
    #[must_use]
    pub fn new(timeout: Option<Duration>) -> (Self, Body) {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        (Self { tx, timeout }, channel_body(rx))
    }

    /// Send one chunk: a `closed` error once the client has gone, a
    /// `timeout` error if it takes none for the write timeout.
    pub fn write(&self, data: &[u8]) -> NativeResult<()> {
        const OP: &str = "w.write";
        if data.is_empty() {
            return Ok(());
        }
        let tx = self.tx.clone();
        let chunk = Bytes::copy_from_slice(data);
        crate::runtime::block_on_timeout(OP, self.timeout, async move {
            tx.send(Ok(chunk)).await.map_err(|_| Error::new(Kind::Closed, OP, "the client has gone"))
        })
    }

    /// Abort the body (the client sees the response cut short).
    pub fn fail(&self, why: String) {
        let _ = self.tx.try_send(Err(std::io::Error::other(why)));
    }
}

/// Convert headers given by a script to hyper's, skipping invalid ones
/// (they were checked when set).
pub fn to_hyper(resp: ServerResponse, body: Body) -> hyper::Response<Body> {
    let mut out = hyper::Response::new(body);
    *out.status_mut() = hyper::StatusCode::from_u16(resp.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (name, value) in resp.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            headers.append(n, v);
        }
    }
    if !headers.contains_key(CONTENT_TYPE) && resp.status != 204 && resp.status != 304 {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(OCTETS));
    }
    out
}

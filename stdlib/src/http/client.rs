//! `http::` — an HTTP client a requests (or Deno `fetch`) user would pick:
//! `http::get(url, opts?)` and the other methods, `http::session(opts?)`
//! with a keep-alive pool per origin and an RFC 6265 cookie jar, redirects
//! checked hop by hop against the permissions, decompression, streaming.
//!
//! Each request runs on hyper's client connection API over a connection
//! from [`super::transport`], so every hop goes through our permission
//! checks, resolver, timeouts and `--trace`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use ::url::Url;
use base64::Engine as _;
use bytes::Bytes;
use cookie_store::{CookieStore, RawCookie};
use http_body_util::Full;
use hyper::Method;
use hyper::body::Incoming;
use rhai::plugin::*;
use rhai::{Array, Blob, FLOAT, INT, Map};

use super::body::{self, Body};
use super::client_response::{BodyReader, Chunks, Head, Headers, ReaderSpec, Response};
use super::decode::Decoder;
use super::transport::{self, Sender, Timing, hyper_error};
use crate::args::{self, Opts};
use crate::error::{Error, Kind, NativeResult};
use crate::html::Form;

/// Connect and read timeouts when none is given (as `tcp::connect`'s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response head (status line and headers) by default.
const DEFAULT_MAX_HEADER: usize = 64 << 10;
/// Largest response body (after decoding) by default.
const DEFAULT_MAX_SIZE: usize = 1 << 30;
/// Idle connections kept per origin.
const POOL_PER_ORIGIN: usize = 64;
/// A redirect's own body is read (for `history`) up to this size; a larger
/// one is dropped with its connection.
const REDIRECT_BODY: u64 = 1 << 20;
/// Encodings offered when `decompress` is on.
const ACCEPT_ENCODING: &str = "gzip, deflate, zstd, br";
/// The `User-Agent` sent unless the script sets one.
const USER_AGENT: &str = concat!("netscript/", env!("CARGO_PKG_VERSION"));

/// Options a session takes (also accepted per request).
const SESSION_OPTS: &[&str] = &[
    "headers",
    "auth",
    "timeout",
    "follow_redirects",
    "max_redirects",
    "decompress",
    "cookies",
    "max_header_size",
    "max_size",
    "ca",
    "insecure",
    "cert",
    "key",
    "http2",
];
/// Options of one request.
const REQUEST_OPTS: &[&str] = &[
    "headers",
    "auth",
    "timeout",
    "follow_redirects",
    "max_redirects",
    "decompress",
    "cookies",
    "max_header_size",
    "max_size",
    "params",
    "form",
    "multipart",
    "json",
    "body",
    "stream",
    "ca",
    "insecure",
    "cert",
    "key",
    "http2",
];
/// The options that configure TLS (as `tls::connect`'s).
const TLS_OPTS: &[&str] = &["ca", "insecure", "cert", "key"];

/// Settings shared by a session's requests, each overridable per request.
#[derive(Clone)]
struct Settings {
    headers: Vec<(String, String)>,
    cookies: Vec<(String, String)>,
    auth: Option<String>,
    connect: Option<Duration>,
    read: Option<Duration>,
    total: Option<Duration>,
    follow: bool,
    max_redirects: usize,
    decompress: bool,
    max_header: usize,
    max_size: usize,
    /// `tls::connect` options for `https` origins (`alpn` from `http2`).
    tls: Map,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            headers: Vec::new(),
            cookies: Vec::new(),
            auth: None,
            connect: Some(DEFAULT_TIMEOUT),
            read: Some(DEFAULT_TIMEOUT),
            total: None,
            follow: true,
            max_redirects: 30,
            decompress: true,
            max_header: DEFAULT_MAX_HEADER,
            max_size: DEFAULT_MAX_SIZE,
            tls: Map::new(),
        }
    }
}

impl Settings {
    /// These settings with the options of `opts` applied.
    fn with(&self, op: &str, opts: &Opts) -> Result<Self, Error> {
        let mut s = self.clone();
        if let Some(h) = opts.get("headers") {
            for (k, v) in body::pairs(op, "headers", h)? {
                s.headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
                s.headers.push((k, v));
            }
        }
        if let Some(c) = opts.get("cookies") {
            for (k, v) in body::pairs(op, "cookies", c)? {
                s.cookies.retain(|(name, _)| *name != k);
                s.cookies.push((k, v));
            }
        }
        if let Some(a) = opts.get("auth") {
            s.auth = basic_auth(op, a)?;
        }
        if let Some(t) = opts.get("timeout") {
            (s.connect, s.read, s.total) = timeouts(op, t)?;
        }
        s.follow = opts.bool("follow_redirects", s.follow)?;
        s.max_redirects = opts.size("max_redirects", s.max_redirects)?;
        s.decompress = opts.bool("decompress", s.decompress)?;
        s.max_header = opts.size("max_header_size", s.max_header)?;
        s.max_size = opts.size("max_size", s.max_size)?;
        for key in TLS_OPTS {
            if let Some(v) = opts.get(key) {
                s.tls.insert((*key).into(), v.clone());
            }
        }
        if let Some(h2) = opts.get("http2") {
            let on = h2.as_bool().map_err(|t| Error::value(op, format!("option 'http2' must be a bool, got {t}")))?;
            s.tls.insert(
                "alpn".into(),
                if on { Dynamic::from_array(vec!["h2".into(), "http/1.1".into()]) } else { Dynamic::UNIT },
            );
        }
        s.tls.retain(|_, v| !v.is_unit());
        Ok(s)
    }
}

/// `auth: [user, password]` as a `Basic` `Authorization` value (`()` = none).
fn basic_auth(op: &str, value: &Dynamic) -> Result<Option<String>, Error> {
    if value.is_unit() {
        return Ok(None);
    }
    let pair = value
        .read_lock::<Array>()
        .filter(|a| a.len() == 2)
        .map(|a| (a[0].to_string(), a[1].to_string()))
        .ok_or_else(|| Error::value(op, "auth must be [user, password]"))?;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", pair.0, pair.1));
    Ok(Some(format!("Basic {token}")))
}

/// The `connect`, `read` and `total` limits (`None`: no limit).
type Timeouts = (Option<Duration>, Option<Duration>, Option<Duration>);

/// `timeout`: seconds for connect and each read, or `#{connect, read, total}`.
fn timeouts(op: &str, value: &Dynamic) -> Result<Timeouts, Error> {
    match value.read_lock::<Map>() {
        Some(m) => {
            let opts = Opts::new(op, m.clone(), &["connect", "read", "total"])?;
            Ok((
                opts.duration("connect", Some(DEFAULT_TIMEOUT))?,
                opts.duration("read", Some(DEFAULT_TIMEOUT))?,
                opts.duration("total", None)?,
            ))
        }
        None => {
            let t = args::duration(op, value)?;
            Ok((t, t, None))
        }
    }
}

/// A session: settings, a pool of idle connections per origin, a cookie jar.
#[derive(Clone)]
pub struct Session(Arc<SessionInner>);

struct SessionInner {
    settings: Settings,
    jar: Mutex<CookieStore>,
    pool: Mutex<HashMap<String, Vec<Sender>>>,
    /// The last TLS configuration built, by its options (building one reads
    /// the system's roots, so it is kept).
    tls: Mutex<Option<(String, Arc<rustls::ClientConfig>)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One request as it goes out, rebuilt at each redirect.
struct Outgoing {
    method: Method,
    url: Url,
    body: Option<Body>,
    settings: Settings,
}

/// The response head and body of one exchange, and the connection.
struct Exchanged {
    /// The head without its headers (they are in `headers`).
    parts: http::response::Parts,
    headers: Arc<http::HeaderMap>,
    body: Incoming,
    sender: Sender,
    target: Arc<Target>,
    elapsed: Duration,
}

/// Where a URL's requests go, worked out once per origin: the host (IP
/// literals without brackets), the port, the pool key `scheme://host:port`,
/// the `host:port` errors name, and the `Host` header.
struct Target {
    host: String,
    port: u16,
    origin: String,
    peer: String,
    host_header: Option<http::HeaderValue>,
}

impl Target {
    /// The target of `url`. The last one worked out on this thread is kept:
    /// a load test requests one origin in a loop, and the strings cost a
    /// few formatting calls and allocations per request.
    fn of(url: &Url) -> Arc<Self> {
        thread_local! {
            static LAST: std::cell::RefCell<Option<(String, Arc<Target>)>> = const { std::cell::RefCell::new(None) };
        }
        // By the URL's text up to its path (scheme, user, host, port).
        let authority = &url[..::url::Position::BeforePath];
        if let Some(t) = LAST.with_borrow(|last| last.as_ref().filter(|(a, _)| a == authority).map(|(_, t)| t.clone()))
        {
            return t;
        }
        let host = url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let peer = crate::net::host_port(&host, port);
        let origin = format!("{}://{peer}", url.scheme());
        let host_header =
            http::HeaderValue::from_str(&url[::url::Position::BeforeHost..::url::Position::BeforePath]).ok();
        let t = Arc::new(Self { host, port, origin, peer, host_header });
        LAST.set(Some((authority.to_string(), t.clone())));
        t
    }
}

impl Session {
    fn new(settings: Settings) -> Self {
        Self(Arc::new(SessionInner {
            settings,
            jar: Mutex::new(CookieStore::default()),
            pool: Mutex::new(HashMap::new()),
            tls: Mutex::new(None),
        }))
    }

    /// The cookies in the jar that have not expired, by name.
    fn cookies(&self) -> Map {
        lock(&self.0.jar).iter_unexpired().map(|c| (c.name().into(), c.value().to_string().into())).collect()
    }

    /// Drop every idle connection.
    fn close(&self) {
        lock(&self.0.pool).clear();
    }

    /// Make a request: `op` names it in errors.
    fn request(&self, op: &str, method: &str, url: &str, opts: Map) -> NativeResult<Response> {
        let started = Instant::now();
        let opts = Opts::new(op, opts, REQUEST_OPTS)?;
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| Error::value(op, format!("not an HTTP method: {method:?}")))?;
        let mut url = parse_url(op, url)?;
        if let Some(params) = opts.get("params") {
            let encoded = body::urlencode(&body::pairs(op, "params", params)?);
            if !encoded.is_empty() {
                let query = match url.query() {
                    Some(q) if !q.is_empty() => format!("{q}&{encoded}"),
                    _ => encoded,
                };
                url.set_query(Some(&query));
            }
        }
        let body = request_body(op, &opts)?;
        self.perform(op, started, &opts, Outgoing { method, url, body, settings: self.0.settings.clone() })
    }

    /// Submit `form` as a browser would (the HTML standard's form
    /// submission): a GET replaces the action's query with the fields, a
    /// POST sends them urlencoded, as `multipart/form-data` (file inputs as
    /// file parts, their content from `files`) or as `text/plain`; line
    /// breaks in values go as CRLF.
    fn submit(&self, op: &str, form: &Form, mut opts: Map) -> NativeResult<Response> {
        let started = Instant::now();
        if let Some(k) = ["params", "form", "multipart", "json", "body"].into_iter().find(|k| opts.contains_key(*k)) {
            return Err(Error::value(op, format!("the form gives the query and the body: remove option {k:?}")).into());
        }
        let files = opts.remove("files").unwrap_or_default();
        let files = match files.read_lock::<Map>() {
            Some(m) => m.clone(),
            None if files.is_unit() => Map::new(),
            None => {
                return Err(Error::value(
                    op,
                    "files must be a map of file input name to #{filename, content, content_type}",
                )
                .into());
            }
        };
        let opts = Opts::new(op, opts, REQUEST_OPTS)?;
        let mut url = parse_url(op, form.action()).map_err(|e| {
            Error::value(
                op,
                format!("{}; give html::parse the page's URL (#{{url}}) so actions are absolute", e.detail()),
            )
        })?;
        let file_input = |name: &str| form.submitted().any(|e| e.file && e.name == name);
        if let Some(name) = files.keys().find(|n| !file_input(n)) {
            return Err(Error::value(op, format!("files: the form has no file input {name:?}")).into());
        }
        let mut parts = Vec::new();
        for e in form.submitted() {
            let (name, value) = (body::crlf(e.name), body::crlf(e.value));
            parts.push(match files.get(e.name).and_then(|f| f.read_lock::<Map>().map(|m| m.clone())) {
                Some(file) => body::Part::file(op, &name, &file)?,
                None if e.file => body::Part {
                    name,
                    file: Some((e.value.to_owned(), "application/octet-stream".into())),
                    content: Vec::new(),
                },
                None => body::Part::field(&name, value),
            });
        }
        // Outside multipart, a file goes as its name.
        let text = |p: &body::Part| {
            p.file.as_ref().map_or_else(|| String::from_utf8_lossy(&p.content).into_owned(), |f| f.0.clone())
        };
        let pairs: Vec<(String, String)> = parts.iter().map(|p| (p.name.clone(), text(p))).collect();
        let encoded = || body::browser_urlencode(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let (method, body) = match (form.method(), form.enctype()) {
            ("DIALOG", _) => return Err(Error::value(op, "a method=dialog form submits nothing").into()),
            ("GET", _) => {
                url.set_query(Some(&encoded()));
                (Method::GET, None)
            }
            (_, "multipart/form-data") => (Method::POST, Some(body::multipart_body(parts))),
            (_, "text/plain") => {
                let lines: String = pairs.iter().map(|(k, v)| format!("{k}={v}\r\n")).collect();
                (Method::POST, Some(Body { bytes: lines.into_bytes(), content_type: Some("text/plain".into()) }))
            }
            _ => (
                Method::POST,
                Some(Body {
                    bytes: encoded().into_bytes(),
                    content_type: Some("application/x-www-form-urlencoded".into()),
                }),
            ),
        };
        self.perform(op, started, &opts, Outgoing { method, url, body, settings: self.0.settings.clone() })
    }

    /// Send `out` with the request options applied, following redirects.
    fn perform(&self, op: &str, started: Instant, opts: &Opts, mut out: Outgoing) -> NativeResult<Response> {
        out.settings = out.settings.with(op, opts)?;
        let settings = &out.settings;
        let timing =
            Timing { connect: settings.connect, read: settings.read, deadline: settings.total.map(|t| started + t) };
        let stream = opts.bool("stream", false)?;
        let mut history: Vec<Response> = Vec::new();
        loop {
            let hop = Instant::now();
            let ex = self.exchange(op, &out, &timing).inspect_err(|_| record_request(None, hop))?;
            // Time to the response head: k6's `http_req_waiting` (with the connect, when new).
            crate::metrics::time("http_req_waiting", &[], hop.elapsed());
            self.store_cookies(&ex.headers, &out.url);
            let location = ex.headers.get(http::header::LOCATION).and_then(|l| l.to_str().ok());
            let status = ex.parts.status.as_u16();
            let redirect = matches!(status, 301 | 302 | 303 | 307 | 308) && out.settings.follow;
            let next = match location {
                Some(loc) if redirect => {
                    Some(redirect_target(op, &out.url, loc).map_err(|e| e.with_peer(&ex.target.peer))?)
                }
                _ => None,
            };
            let head = self.head(&out, &ex, std::mem::take(&mut history));
            let Some(next) = next else {
                return self.finish(op, head, ex, &out, &timing, stream).inspect(|_| record_request(Some(status), hop));
            };
            if head.history.len() >= out.settings.max_redirects {
                let mut chain: Vec<String> = head.history.iter().map(|r| r.head().url.clone()).collect();
                chain.push(out.url.to_string());
                chain.push(next.to_string());
                return Err(Error::new(
                    Kind::Http,
                    op,
                    format!("too many redirects (more than {}): {}", out.settings.max_redirects, chain.join(" -> ")),
                )
                .with_peer(&ex.target.peer)
                .into());
            }
            if !matches!(next.scheme(), "http" | "https") {
                return Err(Error::new(Kind::Http, op, format!("redirect to a URL that is not http: {next}"))
                    .with_peer(&ex.target.peer)
                    .into());
            }
            let mut prior = head;
            history = std::mem::take(&mut prior.history);
            let small = ex.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok())
                <= Some(REDIRECT_BODY);
            let answer = if small {
                self.finish(op, prior, ex, &out, &timing, false)?
            } else {
                Response::whole(prior, Blob::new())
            };
            record_request(Some(status), hop);
            history.push(answer);
            redirect_request(&mut out, status, next);
        }
    }

    /// Send `out` on a pooled connection to its origin or a new one; a
    /// pooled connection the server had closed is replaced once.
    fn exchange(&self, op: &str, out: &Outgoing, timing: &Timing) -> NativeResult<Exchanged> {
        let target = Target::of(&out.url);
        let (host, port, peer) = (&target.host, target.port, &target.peer);
        let tls = || -> NativeResult<Option<transport::Tls>> {
            if out.url.scheme() != "https" {
                return Ok(None);
            }
            Ok(Some(transport::Tls { config: self.tls_config(op, &out.settings.tls)?, server_name: host.clone() }))
        };
        let pooled = lock(&self.0.pool).get_mut(&target.origin).and_then(Vec::pop);
        let pooled_was_used = pooled.is_some();
        let max_header = out.settings.max_header;
        let first = match pooled {
            Some(sender) => sender,
            None => transport::connect(op, host, port, timing, max_header, tls()?)?,
        };
        let request = self.build(op, out, &target, first.is_h2())?;
        if crate::trace::on() {
            trace_request(peer, &request, out.body.as_ref().map_or(&[], |b| &b.bytes));
        }
        let retry = (pooled_was_used).then(|| request.clone());
        let started = Instant::now();
        let sent = send(op, peer, timing, first, request);
        let (sender, response) = match (sent, retry) {
            (Err(e), Some(again)) if is_stale(&e) => {
                let fresh = transport::connect(op, host, port, timing, max_header, tls()?)?;
                send(op, peer, timing, fresh, again)?
            }
            (sent, _) => sent?,
        };
        let (mut parts, body) = response.into_parts();
        if crate::trace::on() {
            trace_response(peer, &parts);
        }
        let headers = Arc::new(std::mem::take(&mut parts.headers));
        Ok(Exchanged { parts, headers, body, sender, target, elapsed: started.elapsed() })
    }

    /// The hyper request for `out`: the session's and request's headers
    /// over the defaults, cookies from the jar, the body. (Built field by
    /// field with the standard header names: `http::request::Builder`
    /// parses every name and moves itself through each call, a tenth of a
    /// keep-alive request's CPU.)
    fn build(&self, op: &str, out: &Outgoing, target: &Target, h2: bool) -> NativeResult<http::Request<Full<Bytes>>> {
        use http::header::{self, HeaderName, HeaderValue};
        let url = &out.url;
        let bad = |e: &dyn std::fmt::Display| Error::value(op, format!("cannot build the request to {url}: {e}"));
        // HTTP/2 takes the absolute URI (its `:authority` replaces `Host`).
        let from = if h2 { ::url::Position::BeforeScheme } else { ::url::Position::BeforePath };
        let path = &url[from..::url::Position::AfterQuery];
        let uri = http::Uri::try_from(if path.is_empty() { "/" } else { path }).map_err(|e| bad(&e))?;
        let s = &out.settings;
        let given = |name: &HeaderName| s.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name.as_str()));
        let value = |v: &str| HeaderValue::try_from(v).map_err(|e| bad(&e));
        let bytes = out.body.as_ref().map_or_else(Vec::new, |b| b.bytes.clone());
        let mut defaults: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(8);
        if !h2 {
            let host = target.host_header.clone().ok_or_else(|| bad(&"the host is not a valid header value"))?;
            defaults.push((header::HOST, host));
        }
        defaults.push((header::USER_AGENT, HeaderValue::from_static(USER_AGENT)));
        if s.decompress {
            defaults.push((header::ACCEPT_ENCODING, HeaderValue::from_static(ACCEPT_ENCODING)));
        }
        defaults.push((header::ACCEPT, HeaderValue::from_static("*/*")));
        if let Some(auth) = &s.auth {
            defaults.push((header::AUTHORIZATION, value(auth)?));
        }
        let mut cookies: Vec<String> =
            lock(&self.0.jar).get_request_values(url).map(|(k, v)| format!("{k}={v}")).collect();
        cookies.extend(s.cookies.iter().map(|(k, v)| format!("{k}={v}")));
        if !cookies.is_empty() {
            defaults.push((header::COOKIE, value(&cookies.join("; "))?));
        }
        if let Some(ct) = out.body.as_ref().and_then(|b| b.content_type.as_deref()) {
            defaults.push((header::CONTENT_TYPE, value(ct)?));
        }
        if out.body.is_some() || matches!(out.method, Method::POST | Method::PUT | Method::PATCH) {
            defaults.push((header::CONTENT_LENGTH, HeaderValue::from(bytes.len())));
        }
        let mut req = http::Request::new(Full::new(Bytes::from(bytes)));
        *req.method_mut() = out.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = if h2 { http::Version::HTTP_2 } else { http::Version::HTTP_11 };
        let headers = req.headers_mut();
        headers.reserve(defaults.len() + s.headers.len());
        for (k, v) in defaults.into_iter().filter(|(k, _)| !given(k)) {
            headers.append(k, v);
        }
        for (k, v) in &s.headers {
            headers.append(HeaderName::try_from(k.as_str()).map_err(|e| bad(&e))?, value(v)?);
        }
        Ok(req)
    }

    /// The TLS client configuration for `opts` (the session's last one if
    /// the options are the same).
    fn tls_config(&self, op: &str, opts: &Map) -> NativeResult<Arc<rustls::ClientConfig>> {
        let key = format!("{opts:?}");
        let mut cached = lock(&self.0.tls);
        if let Some((k, config)) = &*cached
            && *k == key
        {
            return Ok(config.clone());
        }
        let config = crate::tls::client_config(op, opts.clone())?;
        *cached = Some((key, config.clone()));
        Ok(config)
    }

    /// Keep the `Set-Cookie`s of a response to `url` in the jar.
    fn store_cookies(&self, headers: &http::HeaderMap, url: &Url) {
        let cookies = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| RawCookie::parse(v.to_str().ok()?.to_string()).ok());
        lock(&self.0.jar).store_response_cookies(cookies, url);
    }

    /// The script-visible head of an exchange.
    fn head(&self, out: &Outgoing, ex: &Exchanged, history: Vec<Response>) -> Head {
        let p = &ex.parts;
        // hyper keeps the phrase only when it is not the status's usual one.
        let reason = match p.extensions.get::<hyper::ext::ReasonPhrase>() {
            Some(r) => String::from_utf8_lossy(r.as_bytes()).into_owned().into(),
            None => p.status.canonical_reason().unwrap_or_default().into(),
        };
        let version = match p.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        };
        Head {
            status: p.status.as_u16(),
            reason,
            version,
            headers: Headers(ex.headers.clone()),
            url: out.url.to_string(),
            method: out.method.clone(),
            history,
            elapsed: ex.elapsed,
        }
    }

    /// The response of the last hop: its body read whole, or left to stream.
    /// The connection returns to the pool once the body has been read.
    fn finish(
        &self,
        op: &str,
        head: Head,
        ex: Exchanged,
        out: &Outgoing,
        timing: &Timing,
        stream: bool,
    ) -> NativeResult<Response> {
        let headers = &ex.headers;
        let keep = !headers
            .get(http::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let pool: Weak<SessionInner> = Arc::downgrade(&self.0);
        let (target, sender) = (ex.target.clone(), ex.sender);
        let on_done = keep.then(|| {
            Box::new(move || {
                if let Some(session) = pool.upgrade()
                    && !sender.is_closed()
                {
                    let mut pool = lock(&session.pool);
                    let idle = match pool.get_mut(&target.origin) {
                        Some(idle) => idle,
                        None => pool.entry(target.origin.clone()).or_default(),
                    };
                    if idle.len() < POOL_PER_ORIGIN {
                        idle.push(sender);
                    }
                }
            }) as super::client_response::OnDone
        });
        let decoder = if out.settings.decompress {
            headers
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .and_then(|ce| Decoder::new(ce, out.settings.max_size))
        } else {
            None
        };
        let declared = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        let spec = ReaderSpec {
            op: op.to_string(),
            peer: ex.target.peer.clone(),
            timing: *timing,
            max: out.settings.max_size,
            decoder,
            declared,
            on_done,
        };
        let mut reader = BodyReader::new(ex.body, spec);
        if stream {
            return Ok(Response::streaming(head, reader));
        }
        let body = reader.read_all()?;
        if crate::trace::on() {
            eprintln!("[http < {}] body, {} bytes\n{}", ex.target.peer, body.len(), crate::bytes::render(&body));
        }
        Ok(Response::whole(head, body))
    }
}

/// Send one request on `sender` once it is ready, waiting for the head.
fn send(
    op: &str,
    peer: &str,
    timing: &Timing,
    mut sender: Sender,
    request: http::Request<Full<Bytes>>,
) -> NativeResult<(Sender, http::Response<Incoming>)> {
    let (op_s, peer_s) = (op.to_string(), peer.to_string());
    timing.wait(op, peer, timing.read, async move {
        let response = sender.send(request).await.map_err(|e| hyper_error(&op_s, &peer_s, &e))?;
        Ok((sender, response))
    })
}

/// Whether a failed send on a pooled connection means the server had
/// closed it while idle (then the request goes again on a new one).
fn is_stale(err: &EvalAltResult) -> bool {
    matches!(crate::error::innermost(err), EvalAltResult::ErrorRuntime(v, _)
        if v.read_lock::<Map>().and_then(|m| m.get("kind").map(ToString::to_string)).is_some_and(|k| k == "closed" || k == "reset"))
}

/// The next hop's request after a redirect with `status` to `next`, as
/// requests and browsers do it: 303 (and 301/302 after a POST) become a
/// GET without a body; 307/308 keep the method and body. Credentials are
/// not sent to another host.
fn redirect_request(out: &mut Outgoing, status: u16, next: Url) {
    let to_get = match status {
        303 => out.method != Method::HEAD,
        301 | 302 => out.method == Method::POST,
        _ => false,
    };
    if to_get {
        out.method = Method::GET;
        out.body = None;
        out.settings.headers.retain(|(k, _)| {
            !["content-type", "content-length", "transfer-encoding"].contains(&k.to_ascii_lowercase().as_str())
        });
    }
    if next.host_str() != out.url.host_str() {
        out.settings.auth = None;
        out.settings.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    }
    out.url = next;
}

/// Where a redirect from `base` with `Location: loc` goes: `loc` joined to
/// `base` as Python's `urljoin` does (requests' rule), keeping `base`'s
/// fragment when `loc` has none (RFC 9110 §10.2.2).
fn redirect_target(op: &str, base: &Url, loc: &str) -> Result<Url, Error> {
    let bad = |e: String| Error::new(Kind::Http, op, format!("bad redirect Location {loc:?}: {e}"));
    let mut joined = crate::url::join(base.as_str(), loc, true, op).map_err(|e| bad(e.detail().to_string()))?;
    if let Some(fragment) = base.fragment()
        && !joined.contains('#')
    {
        joined = format!("{joined}#{fragment}");
    }
    Url::parse(&joined).map_err(|e| bad(e.to_string()))
}

/// An `http`/`https` URL, or a `value` error. The last URL parsed on this
/// thread is kept: a script that requests one URL in a loop (a load test's
/// iteration) has it copied instead of parsed again (host name processing
/// included), which costs a few percent of a request.
fn parse_url(op: &str, text: &str) -> Result<Url, Error> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, Url)>> = const { std::cell::RefCell::new(None) };
    }
    if let Some(url) = LAST.with_borrow(|last| last.as_ref().filter(|(t, _)| t == text).map(|(_, u)| u.clone())) {
        return Ok(url);
    }
    let url = Url::parse(text).map_err(|e| Error::value(op, format!("invalid URL {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(Error::value(op, format!("not an http:// or https:// URL: {text:?}")));
    }
    LAST.set(Some((text.to_string(), url.clone())));
    Ok(url)
}

/// Record one request of a load run: `http_reqs` and `http_req_duration`
/// (from sending to the whole response, or to its head when streamed)
/// tagged with the status and its class (`2xx`), and `http_req_failed`
/// (a status of 400 or more, or no response at all).
fn record_request(status: Option<u16>, started: Instant) {
    use crate::metrics::{self, MetricKind};
    if !metrics::on() {
        return;
    }
    let failed = status.is_none_or(|s| s >= 400);
    metrics::record(MetricKind::Rate, false, "http_req_failed", &[], f64::from(u8::from(failed)));
    let Some(status) = status else { return };
    // (Written without allocating: this runs for every request of a load test.)
    let digits = [b'0' + (status / 100 % 10) as u8, b'0' + (status / 10 % 10) as u8, b'0' + (status % 10) as u8];
    let class = [digits[0], b'x', b'x'];
    let (code, class) = if status < 1000 {
        (std::str::from_utf8(&digits).unwrap_or("?"), std::str::from_utf8(&class).unwrap_or("?"))
    } else {
        ("?", "?")
    };
    let tags = [("status", code), ("status_class", class)];
    metrics::time("http_req_duration", &tags, started.elapsed());
    metrics::record(MetricKind::Counter, false, "http_reqs", &tags, 1.0);
}

/// The body of `form`, `multipart`, `json` or `body` (at most one).
fn request_body(op: &str, opts: &Opts) -> Result<Option<Body>, Error> {
    let given: Vec<&str> =
        ["form", "multipart", "json", "body"].into_iter().filter(|k| opts.get(k).is_some()).collect();
    if given.len() > 1 {
        return Err(Error::value(op, format!("give one request body, not {}", given.join(" and "))));
    }
    let Some(&which) = given.first() else { return Ok(None) };
    let value = opts.get(which).cloned().unwrap_or_default();
    Ok(Some(match which {
        "form" => Body {
            bytes: body::urlencode(&body::pairs(op, "form", &value)?).into_bytes(),
            content_type: Some("application/x-www-form-urlencoded".into()),
        },
        "multipart" => body::multipart(op, &value)?,
        "json" => Body {
            bytes: crate::codec::json::api::encode(value)
                .map_err(|e| Error::value(op, crate::error::describe(&e)))?
                .into_bytes(),
            content_type: Some("application/json".into()),
        },
        _ => Body { bytes: crate::bytes::data_arg(&value, op)?.into_owned(), content_type: None },
    }))
}

/// `--trace` of a request: its line, headers and body (as `trace` shows data).
fn trace_request(peer: &str, req: &http::Request<Full<Bytes>>, body: &[u8]) {
    let mut text = format!("[http > {peer}] {} {} {:?}\n", req.method(), req.uri(), req.version());
    for (k, v) in req.headers() {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    text.push_str(&format!("[http > {peer}] body, {} bytes", body.len()));
    if !body.is_empty() {
        text.push_str(&format!("\n{}", crate::bytes::render(body)));
    }
    eprintln!("{text}");
}

/// `--trace` of a response head (its body is traced once read).
fn trace_response(peer: &str, parts: &http::response::Parts) {
    let mut text = format!("[http < {peer}] {:?} {}\n", parts.version, parts.status);
    for (k, v) in &parts.headers {
        text.push_str(&format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    eprint!("{text}");
}

/// A one-off request (`http::get` and friends): a session of its own, so
/// cookies set during redirects are sent on the later hops, as in requests.
fn once(op: &str, method: &str, url: &str, opts: Map) -> NativeResult<Response> {
    Session::new(Settings::default()).request(op, method, url, opts)
}

/// The `http::` client module.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.set_iterator_result::<ChunkIter, Blob>();
    m.set_iter_result(std::any::TypeId::of::<Response>(), |r: Dynamic| {
        Box::new(Chunks(r.cast::<Response>()).map(|c| c.map(Dynamic::from_blob)))
    });
    m
}

/// The iterator `resp.chunks()` returns.
#[derive(Clone)]
pub struct ChunkIter(Response);

impl Iterator for ChunkIter {
    type Item = NativeResult<Blob>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_chunk().transpose()
    }
}

#[export_module]
mod api {
    use super::*;

    /// An HTTP response.
    pub type Response = super::Response;
    /// An HTTP session: connection pool, cookie jar, default settings.
    pub type Session = super::Session;
    /// Response headers (case-insensitive; repeated headers kept).
    pub type Headers = super::Headers;
    /// The pieces of a streamed response body (`r.chunks()`).
    pub type Chunks = super::ChunkIter;

    /// GET `url`; follows redirects; the body is read whole.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// print(`${r.status} ${r.reason}: ${r.text().len()} characters`);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn get(url: &str) -> NativeResult<Response> {
        once("http::get", "GET", url, Map::new())
    }

    /// GET with options: `headers`, `params` (query map), `timeout` (seconds,
    /// or `#{connect, read, total}`), `auth` (`[user, password]`), `cookies`,
    /// `follow_redirects`, `max_redirects` (30), `decompress` (true),
    /// `stream` (read the body with `read`/`read_line`/`for`), `max_size`,
    /// `max_header_size`.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/search", #{params: #{q: "a b"}, timeout: 5});
    /// ```
    #[rhai_fn(name = "get", return_raw)]
    pub fn get_opts(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::get", "GET", url, opts)
    }

    /// HEAD `url` (no body).
    ///
    /// ```rhai
    /// let r = http::head("http://127.0.0.1:8080/big.iso");
    /// print(r.headers["content-length"]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn head(url: &str) -> NativeResult<Response> {
        once("http::head", "HEAD", url, Map::new())
    }

    /// HEAD with options (as `http::get`).
    ///
    /// ```rhai
    /// let r = http::head("http://127.0.0.1:8080/", #{follow_redirects: false});
    /// ```
    #[rhai_fn(name = "head", return_raw)]
    pub fn head_opts(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::head", "HEAD", url, opts)
    }

    /// POST `url` with an empty body.
    ///
    /// ```rhai
    /// let r = http::post("http://127.0.0.1:8080/ping");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn post(url: &str) -> NativeResult<Response> {
        once("http::post", "POST", url, Map::new())
    }

    /// POST with options: one body of `form` (map, urlencoded), `json` (any
    /// value), `multipart` (fields; a file is `#{filename, content,
    /// content_type}`) or `body` (string or blob), plus `http::get`'s options.
    ///
    /// ```rhai
    /// let r = http::post("http://127.0.0.1:8080/login", #{form: #{user: "ann", password: "pw"}});
    /// let j = http::post("http://127.0.0.1:8080/api", #{json: #{id: 1}}).json();
    /// ```
    #[rhai_fn(name = "post", return_raw)]
    pub fn post_opts(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::post", "POST", url, opts)
    }

    /// PUT `url` with options (as `http::post`).
    ///
    /// ```rhai
    /// let r = http::put("http://127.0.0.1:8080/item/1", #{json: #{name: "x"}});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn put(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::put", "PUT", url, opts)
    }

    /// PATCH `url` with options (as `http::post`).
    ///
    /// ```rhai
    /// let r = http::patch("http://127.0.0.1:8080/item/1", #{json: #{name: "y"}});
    /// ```
    #[rhai_fn(return_raw)]
    pub fn patch(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::patch", "PATCH", url, opts)
    }

    /// DELETE `url`.
    ///
    /// ```rhai
    /// let r = http::delete("http://127.0.0.1:8080/item/1");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn delete(url: &str) -> NativeResult<Response> {
        once("http::delete", "DELETE", url, Map::new())
    }

    /// DELETE with options (as `http::get`).
    ///
    /// ```rhai
    /// let r = http::delete("http://127.0.0.1:8080/item/1", #{auth: ["ann", "pw"]});
    /// ```
    #[rhai_fn(name = "delete", return_raw)]
    pub fn delete_opts(url: &str, opts: Map) -> NativeResult<Response> {
        once("http::delete", "DELETE", url, opts)
    }

    /// A request with any method (`"OPTIONS"`, `"PROPFIND"`…) and options.
    ///
    /// ```rhai
    /// let r = http::request("OPTIONS", "http://127.0.0.1:8080/", #{});
    /// print(r.headers["allow"]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn request(method: &str, url: &str, opts: Map) -> NativeResult<Response> {
        once("http::request", method, url, opts)
    }

    /// Submit a form of a parsed page (`doc.forms()`, after `fill`) as a
    /// browser would: GET with the fields as the action's query, or POST
    /// urlencoded, `multipart/form-data` or `text/plain` as its `enctype`
    /// says. A one-off session: use `s.submit(form)` to keep cookies.
    ///
    /// ```rhai
    /// let page = http::get("http://127.0.0.1:8080/search");
    /// let form = page.html().forms()[0].fill(#{q: "rhai"});
    /// let r = http::submit(form);
    /// print(r.url);   // http://127.0.0.1:8080/search?q=rhai
    /// ```
    #[rhai_fn(return_raw)]
    pub fn submit(form: Form) -> NativeResult<Response> {
        Session::new(Settings::default()).submit("http::submit", &form, Map::new())
    }

    /// `submit` with a request's options (`headers`, `timeout`, `auth`…;
    /// not `params`, `form`, `multipart`, `json` or `body`: the form gives
    /// those) and `files`: the content of file inputs by name, each
    /// `#{filename, content, content_type}`.
    ///
    /// ```rhai
    /// let form = http::get("http://127.0.0.1:8080/upload").html().forms()[0];
    /// let r = http::submit(form, #{files: #{doc: #{filename: "a.txt", content: "hello"}}});
    /// ```
    #[rhai_fn(name = "submit", return_raw)]
    pub fn submit_opts(form: Form, opts: Map) -> NativeResult<Response> {
        Session::new(Settings::default()).submit("http::submit", &form, opts)
    }

    /// A session with default settings: keep-alive connections per origin
    /// and a cookie jar shared by its requests.
    ///
    /// ```rhai
    /// let s = http::session();
    /// s.post("http://127.0.0.1:8080/login", #{form: #{user: "ann"}});
    /// let page = s.get("http://127.0.0.1:8080/private");
    /// ```
    pub fn session() -> Session {
        Session::new(Settings::default())
    }

    /// A session with defaults for its requests: `headers`, `auth`,
    /// `timeout`, `cookies`, `follow_redirects`, `max_redirects`,
    /// `decompress`, `max_size`, `max_header_size`.
    ///
    /// ```rhai
    /// let s = http::session(#{headers: #{"User-Agent": "bot/1"}, timeout: 10});
    /// ```
    #[rhai_fn(name = "session", return_raw)]
    pub fn session_opts(opts: Map) -> NativeResult<Session> {
        const OP: &str = "http::session";
        let opts = Opts::new(OP, opts, SESSION_OPTS)?;
        Ok(Session::new(Settings::default().with(OP, &opts)?))
    }

    /// GET through the session.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.get("http://127.0.0.1:8080/");
    /// ```
    #[rhai_fn(global, name = "get", return_raw, pure)]
    pub fn s_get(s: &mut Session, url: &str) -> NativeResult<Response> {
        s.request("session.get", "GET", url, Map::new())
    }

    /// GET through the session with options (as `http::get`).
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.get("http://127.0.0.1:8080/", #{params: #{page: 2}});
    /// ```
    #[rhai_fn(global, name = "get", return_raw, pure)]
    pub fn s_get_opts(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.get", "GET", url, opts)
    }

    /// HEAD through the session with options.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.head("http://127.0.0.1:8080/", #{});
    /// ```
    #[rhai_fn(global, name = "head", return_raw, pure)]
    pub fn s_head(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.head", "HEAD", url, opts)
    }

    /// POST through the session with options (as `http::post`).
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.post("http://127.0.0.1:8080/login", #{form: #{user: "ann"}});
    /// ```
    #[rhai_fn(global, name = "post", return_raw, pure)]
    pub fn s_post(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.post", "POST", url, opts)
    }

    /// PUT through the session with options.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.put("http://127.0.0.1:8080/item/1", #{body: "x"});
    /// ```
    #[rhai_fn(global, name = "put", return_raw, pure)]
    pub fn s_put(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.put", "PUT", url, opts)
    }

    /// PATCH through the session with options.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.patch("http://127.0.0.1:8080/item/1", #{json: #{a: 1}});
    /// ```
    #[rhai_fn(global, name = "patch", return_raw, pure)]
    pub fn s_patch(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.patch", "PATCH", url, opts)
    }

    /// DELETE through the session with options.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.delete("http://127.0.0.1:8080/item/1", #{});
    /// ```
    #[rhai_fn(global, name = "delete", return_raw, pure)]
    pub fn s_delete(s: &mut Session, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.delete", "DELETE", url, opts)
    }

    /// A request with any method through the session.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let r = s.request("OPTIONS", "http://127.0.0.1:8080/", #{});
    /// ```
    #[rhai_fn(global, name = "request", return_raw, pure)]
    pub fn s_request(s: &mut Session, method: &str, url: &str, opts: Map) -> NativeResult<Response> {
        s.request("session.request", method, url, opts)
    }

    /// Submit a form through the session (its cookies and connections),
    /// as `http::submit`; options as `http::submit`'s.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let login = s.get("http://127.0.0.1:8080/login").html().forms()[0];
    /// s.submit(login.fill(#{user: "ann", password: "secret"}), #{});
    /// ```
    #[rhai_fn(global, name = "submit", return_raw, pure)]
    pub fn s_submit(s: &mut Session, form: Form, opts: Map) -> NativeResult<Response> {
        s.submit("session.submit", &form, opts)
    }

    /// Submit a form through the session with no options.
    ///
    /// ```rhai
    /// let s = http::session();
    /// let search = s.get("http://127.0.0.1:8080/").html().forms()[0];
    /// print(s.submit(search.fill(#{q: "ports"})).url);
    /// ```
    #[rhai_fn(global, name = "submit", return_raw, pure)]
    pub fn s_submit_plain(s: &mut Session, form: Form) -> NativeResult<Response> {
        s.submit("session.submit", &form, Map::new())
    }

    /// The session's cookies that have not expired, by name.
    #[rhai_fn(global, get = "cookies", pure)]
    pub fn s_cookies(s: &mut Session) -> Map {
        s.cookies()
    }

    /// Close the session's idle connections (it stays usable).
    ///
    /// ```rhai
    /// let s = http::session();
    /// s.close();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn s_close(s: &mut Session) {
        s.close();
    }

    /// The status code (`200`).
    #[rhai_fn(global, get = "status", pure)]
    pub fn status(r: &mut Response) -> INT {
        INT::from(r.head().status)
    }

    /// The reason phrase (`"OK"`).
    #[rhai_fn(global, get = "reason", pure)]
    pub fn reason(r: &mut Response) -> String {
        r.head().reason.to_string()
    }

    /// Whether the status is below 400 (requests' `ok`).
    #[rhai_fn(global, get = "ok", pure)]
    pub fn ok(r: &mut Response) -> bool {
        r.head().status < 400
    }

    /// The protocol version (`"HTTP/1.1"`).
    #[rhai_fn(global, get = "version", pure)]
    pub fn version(r: &mut Response) -> String {
        r.head().version.into()
    }

    /// The method of the request that got this response (after redirects).
    #[rhai_fn(global, get = "method", pure)]
    pub fn method(r: &mut Response) -> String {
        r.head().method.to_string()
    }

    /// The final URL, after redirects.
    #[rhai_fn(global, get = "url", pure)]
    pub fn url(r: &mut Response) -> String {
        r.head().url.clone()
    }

    /// The redirect responses that led here, oldest first.
    #[rhai_fn(global, get = "history", pure)]
    pub fn history(r: &mut Response) -> Array {
        r.history()
    }

    /// Seconds from sending the request to receiving the response head.
    #[rhai_fn(global, get = "elapsed", pure)]
    pub fn elapsed(r: &mut Response) -> FLOAT {
        r.head().elapsed.as_secs_f64()
    }

    /// The headers.
    #[rhai_fn(global, get = "headers", pure)]
    pub fn headers(r: &mut Response) -> Headers {
        r.head().headers.clone()
    }

    /// The body as a blob (decompressed); a streamed body is read to its end.
    #[rhai_fn(global, get = "body", return_raw, pure)]
    pub fn body(r: &mut Response) -> NativeResult<Blob> {
        r.body()
    }

    /// The body as text, in the charset of `Content-Type` (UTF-8 if none).
    ///
    /// ```rhai
    /// let html = http::get("http://127.0.0.1:8080/").text();
    /// ```
    #[rhai_fn(global, name = "text", return_raw, pure)]
    pub fn text(r: &mut Response) -> NativeResult<String> {
        r.text()
    }

    /// The body parsed as an HTML document whose URL is the response's
    /// (`html::parse(r.text(), #{url: r.url})`): links and form actions
    /// come out absolute.
    ///
    /// ```rhai
    /// let doc = http::get("http://127.0.0.1:8080/").html();
    /// print(doc.links());
    /// ```
    #[rhai_fn(global, name = "html", return_raw, pure)]
    pub fn html(r: &mut Response) -> NativeResult<crate::html::Document> {
        crate::html::Document::parse(&r.text()?, Some(r.head().url.clone()))
    }

    /// The body parsed as JSON (as `json::decode`).
    ///
    /// ```rhai
    /// let v = http::get("http://127.0.0.1:8080/api/item/1").json();
    /// ```
    #[rhai_fn(global, name = "json", return_raw, pure)]
    pub fn json(r: &mut Response) -> NativeResult<Dynamic> {
        crate::codec::json::api::decode(Dynamic::from_blob(r.body()?))
    }

    /// A `status` error (its `code` is the status) for a 4xx or 5xx
    /// response; nothing otherwise.
    ///
    /// ```rhai
    /// try { http::get("http://127.0.0.1:8080/missing").raise_for_status() }
    /// catch (e) { print(`${e.kind} ${e.code}`) }   // status 404
    /// ```
    #[rhai_fn(global, name = "raise_for_status", return_raw, pure)]
    pub fn raise_for_status(r: &mut Response) -> NativeResult<()> {
        let h = r.head();
        let side = match h.status {
            400..=499 => "Client",
            500..=599 => "Server",
            _ => return Ok(()),
        };
        Err(Error::new(
            Kind::Status,
            "raise_for_status",
            format!("{} {side} Error: {} for url: {}", h.status, h.reason, h.url),
        )
        .with_code(h.status.to_string())
        .into())
    }

    /// Up to `n` bytes of the body (streamed or not); an empty blob at its end.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/big.iso", #{stream: true});
    /// let first = r.read(65536);
    /// ```
    #[rhai_fn(global, name = "read", return_raw, pure)]
    pub fn read(r: &mut Response, n: INT) -> NativeResult<Blob> {
        let n = usize::try_from(n).map_err(|_| Error::value("read", format!("size must not be negative, got {n}")))?;
        r.read(n)
    }

    /// The next line of the body with its `\n` as a blob, or `()` at its end.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/events", #{stream: true});
    /// while true { let line = r.read_line(); if line == () { break } print(line.as_string()) }
    /// ```
    #[rhai_fn(global, name = "read_line", return_raw, pure)]
    pub fn read_line(r: &mut Response) -> NativeResult<Dynamic> {
        r.read_line()
    }

    /// The pieces of the body as they arrive (`for chunk in r.chunks()`,
    /// or just `for chunk in r`).
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/big.iso", #{stream: true});
    /// let n = 0;
    /// for chunk in r.chunks() { n += chunk.len() }
    /// ```
    #[rhai_fn(global, name = "chunks", pure)]
    pub fn chunks(r: &mut Response) -> Chunks {
        ChunkIter(r.clone())
    }

    /// `<Response [200]>`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn response_to_string(r: &mut Response) -> String {
        format!("<Response [{}]>", r.head().status)
    }

    /// `<Response [200] GET http://…>`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn response_to_debug(r: &mut Response) -> String {
        let h = r.head();
        format!("<Response [{}] {} {}>", h.status, h.method, h.url)
    }

    /// The value of header `name` (any case); repeated headers joined with
    /// `", "`; `()` if absent.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// print(r.headers["Content-Type"]);
    /// ```
    #[rhai_fn(global, index_get, pure)]
    pub fn header_index(h: &mut Headers, name: &str) -> Dynamic {
        h.get(name).map_or(Dynamic::UNIT, Into::into)
    }

    /// The value of header `name`, or `default` if absent.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// let ct = r.headers.get("Content-Type", "text/plain");
    /// ```
    #[rhai_fn(global, name = "get", pure)]
    pub fn header_get(h: &mut Headers, name: &str, default: Dynamic) -> Dynamic {
        h.get(name).map_or(default, Into::into)
    }

    /// Every value of header `name`, in order (each `Set-Cookie`…).
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// for c in r.headers.get_all("set-cookie") { print(c) }
    /// ```
    #[rhai_fn(global, name = "get_all", pure)]
    pub fn header_get_all(h: &mut Headers, name: &str) -> Array {
        h.get_all(name).into_iter().map(Into::into).collect()
    }

    /// Whether header `name` is present (any case).
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// if r.headers.contains("etag") { print("cacheable") }
    /// ```
    #[rhai_fn(global, name = "contains", pure)]
    pub fn header_contains(h: &mut Headers, name: &str) -> bool {
        h.contains(name)
    }

    /// The headers as `[name, value]` pairs, in order, repeats kept.
    ///
    /// ```rhai
    /// let r = http::get("http://127.0.0.1:8080/");
    /// for p in r.headers.items() { print(`${p[0]}: ${p[1]}`) }
    /// ```
    #[rhai_fn(global, name = "items", pure)]
    pub fn header_items(h: &mut Headers) -> Array {
        h.pairs().map(|(k, v)| Dynamic::from_array(vec![k.into(), v.into()])).collect()
    }

    /// How many header lines there are.
    #[rhai_fn(global, get = "len", pure)]
    pub fn header_len(h: &mut Headers) -> INT {
        h.0.len() as INT
    }

    /// The headers, one `name: value` per line.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn headers_to_string(h: &mut Headers) -> String {
        h.pairs().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n")
    }

    /// The headers as a map-like debug string.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn headers_to_debug(h: &mut Headers) -> String {
        format!("{:?}", h.pairs().collect::<Vec<_>>())
    }
}

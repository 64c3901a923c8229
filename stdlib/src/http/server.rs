//! `http::listen(host, port, opts).serve(handler)`: an HTTP/1.1 (and h2c)
//! server on hyper whose handlers are script functions.
//!
//! Each accepted connection is a hyper connection on the event loop; each
//! request that reaches a script handler runs it in a green-thread task of
//! its own (so a handler may block on sockets, sleep or call other
//! servers), and the connection's service future awaits that task. Static
//! files, 404s, 405s and the limits (`max_body`, `max_headers`,
//! `header_timeout`, `idle_timeout`) are answered natively without a task.
//! A handler that throws gets its client a 500 and is reported on standard
//! error (with its script position); other requests go on. With the `tls`
//! option the connection is the `tls::` module's rustls server stream, and
//! HTTP/2 is offered by ALPN.
//!
//! ```rhai
//! let srv = http::listen("127.0.0.1", 0).serve(|req| `hello ${req.query.name ?? ["you"]}`);
//! print(srv.url);
//! srv.stop();
//! ```

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use hyper::header::{ALLOW, CONTENT_LENGTH, HeaderValue};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, FnPtr, INT, Map, NativeCallContext, Position};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::request::ServerRequest;
use super::response::{self, Body, Payload, ServerResponse, StreamWriter, to_hyper};
use super::router::{Handler, Router, Target};
use super::static_files;
use crate::args::Opts;
use crate::error::{Error, Kind, NativeResult};
use crate::runtime;
use crate::task::Callable;
use crate::tcp::FailureLog;
use crate::url::unquote;

/// Default `max_body`: 1 MiB (larger bodies get 413).
const DEFAULT_MAX_BODY: usize = 1 << 20;
/// Default `max_headers` (hyper's own default is 100).
const DEFAULT_MAX_HEADERS: usize = 100;
/// Default `header_timeout`: a client has this long to send a request's head.
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `idle_timeout`: a keep-alive connection with no traffic is closed after this.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default `body_timeout`: reading a request body, and each `w.write` of a streamed response.
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

const LISTEN_OPTS: &[&str] = &[
    "family",
    "backlog",
    "http2",
    "max_body",
    "max_headers",
    "header_timeout",
    "body_timeout",
    "keep_alive",
    "idle_timeout",
    "debug",
    "log",
    "tls",
    "faults",
];

/// Server settings from `http::listen`'s options.
#[derive(Clone, Debug)]
struct Settings {
    http2: bool,
    max_body: usize,
    max_headers: usize,
    header_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
    keep_alive: bool,
    idle_timeout: Option<Duration>,
    debug: bool,
    log: bool,
    /// HTTPS: the rustls configuration of the `tls` option (ALPN offers h2 and http/1.1).
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Settings {
    fn from_opts(op: &str, opts: &Opts) -> Result<Self, Error> {
        let tls = match opts.get("tls") {
            None => None,
            Some(v) => {
                let mut map = v
                    .read_lock::<Map>()
                    .map(|m| m.clone())
                    .ok_or_else(|| Error::value(op, "option 'tls' must be a map #{cert, key, client_ca?}"))?;
                map.entry("alpn".into()).or_insert_with(|| Dynamic::from_array(vec!["h2".into(), "http/1.1".into()]));
                Some(crate::tls::server_config(op, map)?)
            }
        };
        Ok(Self {
            tls,
            http2: opts.bool("http2", false)?,
            max_body: opts.size("max_body", DEFAULT_MAX_BODY)?,
            max_headers: opts.size("max_headers", DEFAULT_MAX_HEADERS)?.max(1),
            header_timeout: opts.duration("header_timeout", Some(DEFAULT_HEADER_TIMEOUT))?,
            body_timeout: opts.duration("body_timeout", Some(DEFAULT_BODY_TIMEOUT))?,
            keep_alive: opts.bool("keep_alive", true)?,
            idle_timeout: opts.duration("idle_timeout", Some(DEFAULT_IDLE_TIMEOUT))?,
            debug: opts.bool("debug", false)?,
            log: opts.bool("log", false)?,
        })
    }
}

/// A listening socket waiting for `serve`.
#[derive(Clone)]
pub struct HttpListener {
    listener: Arc<TcpListener>,
    local: SocketAddr,
    settings: Arc<Settings>,
    /// The faults every accepted connection suffers (`faults` option, `--faults`).
    faults: Option<Arc<crate::faults::Spec>>,
}

/// A running server: `port`, `url`, `stop()`, `wait()`.
#[derive(Clone)]
pub struct HttpServer {
    token: CancellationToken,
    local: SocketAddr,
    /// `http` or `https`.
    scheme: &'static str,
    /// Connections still open; `wait` returns once stopped and at 0.
    open: watch::Receiver<usize>,
}

impl HttpServer {
    fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.local)
    }
}

impl fmt::Display for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.token.is_cancelled() { "stopped" } else { "serving" };
        write!(f, "http server {} ({state})", self.url())
    }
}

fn listen(host: &str, port: INT, opts: Map) -> NativeResult<HttpListener> {
    const OP: &str = "http::listen";
    let port = u16::try_from(port).map_err(|_| Error::value(OP, format!("port must be 0..65535, got {port}")))?;
    let opts = Opts::new(OP, opts, LISTEN_OPTS)?;
    let settings = Settings::from_opts(OP, &opts)?;
    let mut socket_opts = Map::new();
    for key in ["family", "backlog"] {
        if let Some(v) = opts.get(key) {
            socket_opts.insert(key.into(), v.clone());
        }
    }
    let tcp = crate::tcp::listen_as(OP, host, port, &Opts::new(OP, socket_opts, &["family", "backlog"])?, None)?;
    let listener = tcp.listener_for(OP)?;
    let local = listener.local_addr().map_err(|e| Error::io(OP, &e))?;
    let faults = crate::faults::for_connection(OP, opts.get("faults"))?;
    Ok(HttpListener { listener, local, settings: Arc::new(settings), faults })
}

/// What every connection of one server shares.
struct Shared {
    handler: Handler,
    settings: Arc<Settings>,
    failures: Rc<FailureLog>,
    /// `http` or `https`, for `req.url`.
    scheme: &'static str,
    faults: Option<Arc<crate::faults::Spec>>,
}

/// Counts an open connection while alive.
struct OpenGuard(Rc<watch::Sender<usize>>);

impl OpenGuard {
    fn new(tx: &Rc<watch::Sender<usize>>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(tx.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn serve(l: &HttpListener, handler: Handler) -> HttpServer {
    let token = crate::task::root_token().child_token();
    let (open_tx, open) = watch::channel(0usize);
    let open_tx = Rc::new(open_tx);
    let local = l.local;
    let scheme = if l.settings.tls.is_some() { "https" } else { "http" };
    let shared = Rc::new(Shared {
        handler,
        settings: l.settings.clone(),
        failures: FailureLog::new(format!("http {local}"), "handler errors"),
        scheme,
        faults: l.faults.clone(),
    });
    let accept_log = FailureLog::new(format!("http {local}"), "accept failures");
    let (listener, stop) = (l.listener.clone(), token.clone());
    // The accept loop holds one count, so `wait` also waits for it to end.
    let guard = OpenGuard::new(&open_tx);
    tokio::task::spawn_local(async move {
        let _guard = guard;
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                r = listener.accept() => r,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let open = OpenGuard::new(&open_tx);
                    tokio::task::spawn_local(accepted_connection(shared.clone(), stream, peer, stop.clone(), open));
                }
                Err(e) => {
                    accept_log.report(format!("accept failed: {e}"));
                    // Out of descriptors: let closing connections free some.
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(20)) => {}
                    }
                }
            }
        }
        accept_log.flush();
        shared.failures.flush();
    });
    HttpServer { token, local, scheme, open }
}

/// Serve an accepted connection: after the TLS handshake (bounded by
/// `header_timeout`) for HTTPS, else at once.
async fn accepted_connection(
    shared: Rc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
    open: OpenGuard,
) {
    const OP: &str = "http handshake";
    let Ok(stream) = crate::faults::bend(
        stream,
        shared.faults.clone().map(crate::faults::Control::fixed),
        crate::faults::Side::Server,
        true,
    )
    .await
    else {
        return;
    };
    let Some(config) = shared.settings.tls.clone() else {
        return connection(shared, stream, peer, stop, open).await;
    };
    // Boxed, as the connection below: a plain connection's task should not
    // carry room for a TLS session it does not have.
    let handshake = Box::pin(crate::tls::accept_stream(OP, stream, config));
    let limit = shared.settings.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT);
    let tls = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(limit, handshake) => r,
    };
    match tls {
        Ok(Ok(tls)) => Box::pin(connection(shared, tls, peer, stop, open)).await,
        // A failed handshake is the client's problem: traced, not logged.
        Ok(Err(e)) if crate::trace::on() => crate::trace::event("http tls", &peer.to_string(), &e.to_string()),
        Ok(Err(_)) | Err(_) => {}
    }
}

/// What a connection's timeouts look at. hyper's own `header_read_timeout`
/// also closes an idle keep-alive connection (its timer runs while it waits
/// for the next request), so the server keeps these and applies
/// `header_timeout` only from the first byte of a request (or the connect)
/// to its complete head, and `idle_timeout` to the silence between requests.
struct Clock {
    /// When bytes last moved either way.
    last: Cell<Instant>,
    /// When the request being received began (its first byte, or the
    /// connect); `None` while none is being received.
    head_since: Cell<Option<Instant>>,
    /// Requests whose head was read and whose answer is not yet sent.
    inflight: Cell<usize>,
}

/// Counts a request in flight on its connection's [`Clock`] while alive
/// (a service future hyper drops, when a client resets a stream, counts too).
struct InFlight(Rc<Clock>);

impl InFlight {
    fn new(clock: &Rc<Clock>) -> Self {
        clock.inflight.set(clock.inflight.get() + 1);
        clock.head_since.set(None);
        Self(clock.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.set(self.0.inflight.get().saturating_sub(1));
    }
}

/// A connection's socket, feeding its [`Clock`].
struct Tracked<S> {
    stream: S,
    clock: Rc<Clock>,
}

impl<S> Tracked<S> {
    fn moved(&self, read: bool) {
        let now = Instant::now();
        self.clock.last.set(now);
        if read && self.clock.inflight.get() == 0 && self.clock.head_since.get().is_none() {
            self.clock.head_since.set(Some(now));
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.moved(true);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if polled.is_ready() {
            self.moved(false);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if polled.is_ready() {
            self.moved(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Runs hyper's HTTP/2 stream tasks on the host thread's `LocalSet`.
#[derive(Clone, Copy)]
struct LocalExec;

impl<F: std::future::Future + 'static> hyper::rt::Executor<F> for LocalExec {
    fn execute(&self, fut: F) {
        tokio::task::spawn_local(fut);
    }
}

/// Serve one connection until it closes, the server stops (gracefully:
/// the request in flight finishes) or it is idle for `idle_timeout`.
async fn connection<S>(shared: Rc<Shared>, stream: S, peer: SocketAddr, stop: CancellationToken, _open: OpenGuard)
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let settings = shared.settings.clone();
    let now = Instant::now();
    let clock = Rc::new(Clock { last: Cell::new(now), head_since: Cell::new(Some(now)), inflight: Cell::new(0) });
    let io = TokioIo::new(Tracked { stream, clock: clock.clone() });
    let mut builder = auto::Builder::new(LocalExec);
    builder.http1().keep_alive(settings.keep_alive).max_headers(settings.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_headers * 8192).unwrap_or(u32::MAX));
    // HTTP/2 by prior knowledge (h2c) when asked for, and over TLS (ALPN).
    let builder = if settings.http2 || settings.tls.is_some() { builder } else { builder.http1_only() };
    let (sh, cl) = (shared.clone(), clock.clone());
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (sh, inflight) = (sh.clone(), InFlight::new(&cl));
        // Boxed: hyper keeps room for one service future in every
        // connection, idle or not, and this one is a few kilobytes.
        Box::pin(async move {
            let resp = handle(&sh, req, peer).await;
            drop(inflight);
            Ok::<_, Infallible>(resp)
        })
    });
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        // Between requests: the head's deadline, or the idle one.
        let idle = clock.inflight.get() == 0;
        let head_at = clock.head_since.get().zip(settings.header_timeout).map(|(t, d)| t + d);
        let idle_at = settings.idle_timeout.map(|d| clock.last.get() + d);
        let wake = if idle { head_at.or(idle_at) } else { None };
        tokio::select! {
            _ = conn.as_mut() => break,
            () = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until(wake), if wake.is_some() && !closing => {
                let now = Instant::now();
                if clock.inflight.get() > 0 {
                    continue;
                }
                if clock.head_since.get().zip(settings.header_timeout).is_some_and(|(t, d)| now >= t + d) {
                    // Slowloris: no complete head in time; hang up.
                    break;
                }
                if !closing && settings.idle_timeout.is_some_and(|d| now >= clock.last.get() + d) {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Answer one request.
async fn handle(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let tracing = crate::trace::on();
    if !tracing && !shared.settings.log {
        return dispatch(shared, req, peer).await;
    }
    let line = format!("{} {} {:?}", req.method(), req.uri(), req.version());
    if tracing {
        let mut text = format!("[http {peer}] > {line}\n");
        for (name, value) in req.headers() {
            text.push_str(&format!("[http {peer}] > {name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        eprint!("{text}");
    }
    let resp = dispatch(shared, req, peer).await;
    if tracing {
        let mut text = format!("[http {peer}] < {:?} {}\n", resp.version(), resp.status());
        for (name, value) in resp.headers() {
            text.push_str(&format!("[http {peer}] < {name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
        }
        eprint!("{text}");
    }
    if shared.settings.log {
        let size = resp.body().size_hint().exact().map_or_else(|| "-".to_string(), |n| n.to_string());
        eprintln!("{} - - [{}] \"{line}\" {} {size}", peer.ip(), clf_date(SystemTime::now()), resp.status().as_u16());
    }
    resp
}

fn plain(status: u16, text: &str) -> Response<Body> {
    let text = format!("{text}\n");
    to_hyper(ServerResponse::text(status, text.clone()), response::full(text))
}

async fn dispatch(shared: &Shared, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = unquote(req.uri().path());
    if path.contains('\0') {
        return plain(400, "Bad Request: NUL in path");
    }
    let method = req.method().as_str().to_string();
    match shared.handler.route(&method, &path) {
        Target::NotFound => plain(404, "Not Found"),
        Target::NotAllowed(methods) => {
            let mut resp = plain(405, "Method Not Allowed");
            if let Ok(v) = HeaderValue::from_str(&methods.join(", ")) {
                resp.headers_mut().insert(ALLOW, v);
            }
            resp
        }
        Target::File(mount, rest) => {
            let head = method == "HEAD";
            let headers = req.headers().clone();
            static_files::serve(mount, rest, headers, head).await.unwrap_or_else(|| plain(404, "Not Found"))
        }
        Target::Handler(callable, params) => {
            let (parts, body) = req.into_parts();
            let body = match read_body(&shared.settings, &parts.headers, body).await {
                Ok(body) => body,
                Err(resp) => return resp,
            };
            let request = ServerRequest::new(parts, body, peer, params, shared.scheme);
            run_handler(shared, callable, request).await
        }
    }
}

/// Read a request body within `max_body` (413 beyond) and `body_timeout` (408).
async fn read_body(settings: &Settings, headers: &hyper::HeaderMap, body: Incoming) -> Result<Bytes, Response<Body>> {
    let too_large = || plain(413, &format!("Content Too Large (the limit is {} bytes)", settings.max_body));
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_body as u64) {
        return Err(too_large());
    }
    let collect = Limited::new(body, settings.max_body).collect();
    let collected = match settings.body_timeout {
        Some(t) => tokio::time::timeout(t, collect).await.map_err(|_| plain(408, "Request Timeout"))?,
        None => collect.await,
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(plain(400, "Bad Request: the body was cut short")),
    }
}

/// `kind: message (line 3, position 9)` for a failed handler.
fn located(err: &EvalAltResult) -> String {
    let mut pos = Position::NONE;
    let mut e = err;
    loop {
        if !e.position().is_none() {
            pos = e.position();
        }
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => e = inner,
            _ => break,
        }
    }
    let what = crate::error::describe(err);
    // Rhai's own errors already end with their position; thrown values and
    // library errors do not.
    let bare = matches!(crate::error::innermost(err), EvalAltResult::ErrorRuntime(..));
    if pos.is_none() || !bare { what } else { format!("{what} ({pos})") }
}

/// Run a script handler in a task of its own and turn what it returns into
/// a response. The task is cancelled if the client goes away first.
async fn run_handler(shared: &Shared, callable: Callable, request: ServerRequest) -> Response<Body> {
    let token = crate::task::root_token().child_token();
    let _cancel_if_dropped = token.clone().drop_guard();
    let arg = Dynamic::from(request.clone());
    let spawned = runtime::spawn("http handler", runtime::StackKind::Task, token, move || callable.call((arg,)));
    let outcome = match spawned {
        Ok(task) => match task.await {
            Ok(result) => result,
            Err(join) => Err(Error::new(Kind::Io, "http handler", join.to_string()).into()),
        },
        Err(limit) => {
            shared.failures.report(format!("{} {}: {limit}", request.method(), request.path()));
            return plain(503, "Service Unavailable");
        }
    };
    let reply = outcome.and_then(|v| ServerResponse::from_return(v).map_err(Into::into));
    match reply {
        Ok(resp) => respond(shared, resp),
        Err(err) if runtime::innermost_terminated(&err) => plain(503, "Service Unavailable (the server is stopping)"),
        Err(err) => {
            let what = located(&err);
            shared.failures.report(format!("{} {} failed: {what}", request.method(), request.path()));
            let body = if shared.settings.debug {
                format!("Internal Server Error\n\n{what}")
            } else {
                "Internal Server Error".into()
            };
            plain(500, &body)
        }
    }
}

/// Send a script's response; a streamed body is written by its closure in a new task.
fn respond(shared: &Shared, resp: ServerResponse) -> Response<Body> {
    match resp.body.clone() {
        Payload::Data(data) => to_hyper(resp, response::full(data)),
        Payload::Stream(writer_fn) => {
            let (writer, body) = StreamWriter::new(shared.settings.body_timeout);
            let failures = shared.failures.clone();
            let token = crate::task::root_token().child_token();
            let w = writer.clone();
            let spawned = runtime::spawn("http::stream", runtime::StackKind::Task, token, move || {
                let result = writer_fn.call((Dynamic::from(w.clone()),));
                if let Err(err) = &result
                    && !runtime::innermost_terminated(err)
                {
                    let what = located(err);
                    failures.report(format!("stream failed: {what}"));
                    w.fail(what);
                }
                result
            });
            match spawned {
                Ok(task) => {
                    drop(task);
                    to_hyper(resp, body)
                }
                Err(limit) => {
                    shared.failures.report(limit.to_string());
                    plain(503, "Service Unavailable")
                }
            }
        }
    }
}

/// A time as the common log format writes it: `03/Dec/2026:07:45:43 +0000`.
fn clf_date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let month = t.month().to_string();
    format!("{:02}/{}/{}:{:02}:{:02}:{:02} +0000", t.day(), &month[..3], t.year(), t.hour(), t.minute(), t.second())
}

#[export_module]
mod api {
    use super::*;

    /// A listening HTTP socket (`http::listen`).
    pub type HttpListener = super::HttpListener;
    /// A running HTTP server (`l.serve(handler)`).
    pub type HttpServer = super::HttpServer;
    /// A request given to a handler.
    pub type ServerRequest = super::ServerRequest;
    /// A response built by `http::response` and friends.
    pub type ServerResponse = super::ServerResponse;
    /// Routes requests to handlers (`http::router()`).
    pub type Router = super::Router;
    /// The writer of a streamed response (`http::stream(|w| …)`).
    pub type StreamWriter = super::StreamWriter;

    /// Listen for HTTP on `host:port` (port 0 picks a free one).
    ///
    /// ```rhai
    /// let l = http::listen("127.0.0.1", 0);
    /// print(l.port);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn listen(host: &str, port: INT) -> NativeResult<HttpListener> {
        super::listen(host, port, Map::new())
    }

    /// Listen with options: `max_body` (bytes, default 1 MiB; larger
    /// bodies get 413), `max_headers` (default 100; more get 431),
    /// `header_timeout` (seconds a client has to send a request head,
    /// default 10: slowloris protection), `body_timeout` (seconds to read a
    /// body, and for each `w.write` of a stream, default 60), `keep_alive`
    /// (default true), `idle_timeout` (seconds before an idle keep-alive
    /// connection is closed, default 60), `http2` (also accept HTTP/2 with
    /// prior knowledge, h2c), `"debug"` (500 pages show the error; quote
    /// the key, `debug` is a reserved word), `log`
    /// (an access log line per request on standard error, common log
    /// format), `tls` (HTTPS: `#{cert, key, client_ca}` and the other
    /// `tls::listen` options; ALPN offers h2 and http/1.1), `faults` (what
    /// every accepted connection suffers, as `net::faults` takes them),
    /// `family`, `backlog`.
    ///
    /// ```rhai
    /// let l = http::listen("127.0.0.1", 0, #{max_body: 10_000, log: true, http2: true});
    /// ```
    #[rhai_fn(name = "listen", return_raw)]
    pub fn listen_opts(host: &str, port: INT, opts: Map) -> NativeResult<HttpListener> {
        super::listen(host, port, opts)
    }

    /// Serve every request with `handler(req)` in the background. The
    /// handler's return value is the response: a string is a 200 HTML page,
    /// a blob `application/octet-stream`, a map or array JSON, `()` an empty
    /// 204, or a response from `http::response`, `http::redirect`,
    /// `http::not_found` or `http::stream`. Use a named function
    /// (`Fn("app")`) so `netscript watch` can swap it under the running server.
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| #{path: req.path, q: req.query});
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "serve", pure)]
    pub fn serve_fn(ctx: NativeCallContext, l: &mut HttpListener, handler: FnPtr) -> HttpServer {
        super::serve(l, Handler::Function(Callable::new(&ctx, handler)))
    }

    /// Serve with a router: routes, 404, 405 and static directories.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.get("/items/:id", |req| #{id: req.params.id});
    /// let srv = http::listen("127.0.0.1", 0).serve(r);
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "serve", pure)]
    pub fn serve_router(l: &mut HttpListener, router: Router) -> HttpServer {
        super::serve(l, Handler::Router(router))
    }

    /// The listener's port.
    #[rhai_fn(global, get = "port", pure)]
    pub fn listener_port(l: &mut HttpListener) -> INT {
        INT::from(l.local.port())
    }

    /// The server's port.
    #[rhai_fn(global, get = "port", pure)]
    pub fn server_port(s: &mut HttpServer) -> INT {
        INT::from(s.local.port())
    }

    /// The server's base URL, `http://127.0.0.1:8080`.
    #[rhai_fn(global, get = "url", pure)]
    pub fn server_url(s: &mut HttpServer) -> String {
        s.url()
    }

    /// Stop gracefully: no new connections; requests in flight finish,
    /// idle keep-alive connections are closed.
    ///
    /// ```rhai
    /// let s = http::listen("127.0.0.1", 0).serve(|req| "hi");
    /// s.stop();
    /// s.wait();
    /// ```
    #[rhai_fn(global, name = "stop", pure)]
    pub fn server_stop(s: &mut HttpServer) {
        s.token.cancel();
    }

    /// Block until the server is stopped (by `stop()` in another task, or
    /// Ctrl-C) and its last connection has closed.
    ///
    /// ```rhai
    /// let s = http::listen("127.0.0.1", 0).serve(|req| "hi");
    /// task::start(|| { task::sleep(0.1); s.stop() });
    /// s.wait();
    /// ```
    #[rhai_fn(global, name = "wait", return_raw, pure)]
    pub fn server_wait(s: &mut HttpServer) -> NativeResult<()> {
        let (token, mut open) = (s.token.clone(), s.open.clone());
        runtime::block_on(async move {
            token.cancelled().await;
            let _ = open.wait_for(|n| *n == 0).await;
        })
    }

    /// `http server http://127.0.0.1:8080 (serving)`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn server_to_string(s: &mut HttpServer) -> String {
        s.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn server_to_debug(s: &mut HttpServer) -> String {
        s.to_string()
    }

    /// A new, empty router.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.get("/", |req| "home");
    /// r.post("/items", |req| http::response(201, req.json()));
    /// ```
    pub fn router() -> Router {
        Router::default()
    }

    /// Route `GET` (and `HEAD`) requests for `pattern` to `handler`.
    /// `:name` matches one path segment, `*name` the rest of the path; both
    /// land in `req.params`. Routes are tried in the order added.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.get("/users/:id/files/*path", |req| req.params);
    /// ```
    #[rhai_fn(global, name = "get", return_raw)]
    pub fn route_get(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(Some("GET"), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route `POST` requests.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.post("/login", |req| http::redirect("/"));
    /// ```
    #[rhai_fn(global, name = "post", return_raw)]
    pub fn route_post(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(Some("POST"), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route `PUT` requests.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.put("/items/:id", |req| req.json());
    /// ```
    #[rhai_fn(global, name = "put", return_raw)]
    pub fn route_put(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(Some("PUT"), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route `DELETE` requests.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.delete("/items/:id", |req| ());
    /// ```
    #[rhai_fn(global, name = "delete", return_raw)]
    pub fn route_delete(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(Some("DELETE"), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route `PATCH` requests.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.patch("/items/:id", |req| req.json());
    /// ```
    #[rhai_fn(global, name = "patch", return_raw)]
    pub fn route_patch(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(Some("PATCH"), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route requests of any method.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.any("/echo", |req| #{method: req.method});
    /// ```
    #[rhai_fn(global, name = "any", return_raw)]
    pub fn route_any(ctx: NativeCallContext, r: &mut Router, pattern: &str, handler: FnPtr) -> NativeResult<()> {
        r.add(None, pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Route requests of `method` (any name, e.g. `"OPTIONS"`).
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.route("OPTIONS", "/", |req| http::response(204, (), #{Allow: "GET, OPTIONS"}));
    /// ```
    #[rhai_fn(global, name = "route", return_raw)]
    pub fn route_method(
        ctx: NativeCallContext,
        r: &mut Router,
        method: &str,
        pattern: &str,
        handler: FnPtr,
    ) -> NativeResult<()> {
        if hyper::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(Error::value("r.route", format!("invalid method {method:?}")).into());
        }
        r.add(Some(method), pattern, Callable::new(&ctx, handler)).map_err(Into::into)
    }

    /// Serve the files below `dir` under `prefix` for GET and HEAD (not
    /// `r.static`: `static` is a reserved word in Rhai). Content
    /// types come from file names; `ETag`/`Last-Modified` give 304s, `Range`
    /// 206s; a directory serves its `index.html`; `..`, `%2e%2e`, NUL bytes
    /// and symlinks leading outside `dir` are a 404.
    ///
    /// ```rhai
    /// let r = http::router();
    /// r.static_dir("/static", ".");
    /// ```
    #[rhai_fn(global, name = "static_dir", return_raw)]
    pub fn static_dir(r: &mut Router, prefix: &str, dir: &str) -> NativeResult<()> {
        r.mount(prefix, dir).map_err(Into::into)
    }

    /// `http router (2 routes, 1 static mounts)`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn router_to_string(r: &mut Router) -> String {
        super::super::router::describe(r)
    }

    /// A response with `status` and `body` (string, blob, map/array as JSON, or `()`).
    ///
    /// ```rhai
    /// let resp = http::response(201, #{id: 7});
    /// print(resp.status);   // 201
    /// ```
    #[rhai_fn(name = "response", return_raw)]
    pub fn response2(status: INT, body: Dynamic) -> NativeResult<ServerResponse> {
        response::response(status, &body, Map::new()).map_err(Into::into)
    }

    /// A response with `status`, `body` and `headers` (a map; a
    /// `Content-Type` here replaces the default).
    ///
    /// ```rhai
    /// let resp = http::response(200, "a,b\n", #{"Content-Type": "text/csv"});
    /// ```
    #[rhai_fn(name = "response", return_raw)]
    pub fn response3(status: INT, body: Dynamic, headers: Map) -> NativeResult<ServerResponse> {
        response::response(status, &body, headers).map_err(Into::into)
    }

    /// A `303 See Other` to `url`: after a POST, the browser GETs `url`.
    ///
    /// ```rhai
    /// let resp = http::redirect("/guestbook");
    /// print(resp.status);   // 303
    /// ```
    #[rhai_fn(name = "redirect", return_raw)]
    pub fn redirect(url: &str) -> NativeResult<ServerResponse> {
        response::redirect(url, 303).map_err(Into::into)
    }

    /// A redirect with another 3xx status (301, 302, 307, 308).
    ///
    /// ```rhai
    /// let resp = http::redirect("https://example.org/", 301);
    /// ```
    #[rhai_fn(name = "redirect", return_raw)]
    pub fn redirect_status(url: &str, status: INT) -> NativeResult<ServerResponse> {
        response::redirect(url, status).map_err(Into::into)
    }

    /// A `404 Not Found` page.
    ///
    /// ```rhai
    /// let resp = http::not_found();
    /// print(resp.status);   // 404
    /// ```
    pub fn not_found() -> ServerResponse {
        ServerResponse::text(404, "Not Found\n")
    }

    /// A streamed 200 response: `writer(w)` runs in a task of its own and
    /// sends the body with `w.write(data)` (chunked encoding), waiting while
    /// the client is slower. Set headers on the result before returning it.
    ///
    /// ```rhai
    /// let resp = http::stream(|w| { for i in 0..3 { w.write(`${i}\n`); task::sleep(0.1); } });
    /// resp.set_header("Content-Type", "text/plain");
    /// ```
    #[rhai_fn(name = "stream")]
    pub fn stream(ctx: NativeCallContext, writer: FnPtr) -> ServerResponse {
        response::stream(Callable::new(&ctx, writer))
    }

    /// Send one chunk of a streamed body (a string or blob); a `closed`
    /// error once the client has gone.
    ///
    /// ```rhai
    /// let resp = http::stream(|w| w.write("hello\n"));
    /// ```
    #[rhai_fn(global, name = "write", return_raw, pure)]
    pub fn stream_write(w: &mut StreamWriter, data: Dynamic) -> NativeResult<()> {
        w.write(&crate::bytes::data_arg(&data, "w.write")?)
    }

    /// The response's status code.
    #[rhai_fn(global, get = "status", pure)]
    pub fn resp_status(r: &mut ServerResponse) -> INT {
        INT::from(r.status)
    }

    /// Change the status code.
    ///
    /// ```rhai
    /// let resp = http::stream(|w| w.write("x"));
    /// resp.status = 206;
    /// ```
    #[rhai_fn(global, set = "status", return_raw)]
    pub fn resp_set_status(r: &mut ServerResponse, status: INT) -> NativeResult<()> {
        r.status = response::status_arg("resp.status", status)?;
        Ok(())
    }

    /// The response's headers as a map.
    #[rhai_fn(global, get = "headers", pure)]
    pub fn resp_headers(r: &mut ServerResponse) -> Map {
        r.header_map()
    }

    /// The response's body (empty for a streamed one).
    #[rhai_fn(global, get = "body", pure)]
    pub fn resp_body(r: &mut ServerResponse) -> rhai::Blob {
        match &r.body {
            Payload::Data(d) => d.to_vec(),
            Payload::Stream(_) => rhai::Blob::new(),
        }
    }

    /// Set a header, replacing any of the same name.
    ///
    /// ```rhai
    /// let resp = http::response(200, "ok");
    /// resp.set_header("Cache-Control", "no-store");
    /// ```
    #[rhai_fn(global, name = "set_header", return_raw)]
    pub fn resp_set_header(r: &mut ServerResponse, name: &str, value: &str) -> NativeResult<()> {
        r.set_header(name, value).map_err(Into::into)
    }

    /// Add a `Set-Cookie` (path `/`).
    ///
    /// ```rhai
    /// let resp = http::redirect("/");
    /// resp.set_cookie("flash", "saved");
    /// ```
    #[rhai_fn(global, name = "set_cookie", return_raw)]
    pub fn resp_set_cookie(r: &mut ServerResponse, name: &str, value: &str) -> NativeResult<()> {
        r.set_cookie(name, value, Map::new()).map_err(Into::into)
    }

    /// Add a `Set-Cookie` with options `max_age` (seconds), `path`,
    /// `domain`, `secure`, `httponly`, `samesite`.
    ///
    /// ```rhai
    /// let resp = http::response(200, "hi");
    /// resp.set_cookie("sid", "abc123", #{max_age: 3600, httponly: true, samesite: "Lax"});
    /// ```
    #[rhai_fn(global, name = "set_cookie", return_raw)]
    pub fn resp_set_cookie_opts(r: &mut ServerResponse, name: &str, value: &str, opts: Map) -> NativeResult<()> {
        r.set_cookie(name, value, opts).map_err(Into::into)
    }

    /// Tell the client to forget cookie `name`.
    ///
    /// ```rhai
    /// let resp = http::response(200, "bye");
    /// resp.delete_cookie("sid");
    /// ```
    #[rhai_fn(global, name = "delete_cookie", return_raw)]
    pub fn resp_delete_cookie(r: &mut ServerResponse, name: &str) -> NativeResult<()> {
        r.delete_cookie(name).map_err(Into::into)
    }

    /// `GET`, `POST`…
    #[rhai_fn(global, get = "method", pure)]
    pub fn req_method(r: &mut ServerRequest) -> String {
        r.method().to_string()
    }

    /// The path, percent-decoded, without the query.
    #[rhai_fn(global, get = "path", pure)]
    pub fn req_path(r: &mut ServerRequest) -> String {
        r.path()
    }

    /// The query as Python's `parse_qs`: `?a=1&a=2&b=x` is `#{a: ["1", "2"], b: ["x"]}`.
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| (req.query.name ?? ["?"])[0]);
    /// srv.stop();
    /// ```
    #[rhai_fn(global, get = "query", pure)]
    pub fn req_query(r: &mut ServerRequest) -> Map {
        r.query()
    }

    /// The raw query string (without `?`).
    #[rhai_fn(global, get = "query_string", pure)]
    pub fn req_query_string(r: &mut ServerRequest) -> String {
        r.query_string().to_string()
    }

    /// The full URL of the request, `http://host:port/path?query`.
    #[rhai_fn(global, get = "url", pure)]
    pub fn req_url(r: &mut ServerRequest) -> String {
        r.url()
    }

    /// `HTTP/1.1` or `HTTP/2.0`.
    #[rhai_fn(global, get = "version", pure)]
    pub fn req_version(r: &mut ServerRequest) -> String {
        r.version()
    }

    /// The headers with lowercase names (`req.headers["content-type"]`).
    #[rhai_fn(global, get = "headers", pure)]
    pub fn req_headers(r: &mut ServerRequest) -> Map {
        r.headers()
    }

    /// One header by name in any case, or `()`.
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| req.header("User-Agent") ?? "none");
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "header", pure)]
    pub fn req_header(r: &mut ServerRequest, name: &str) -> Dynamic {
        r.header(name)
    }

    /// The cookies the client sent, name to value.
    #[rhai_fn(global, get = "cookies", pure)]
    pub fn req_cookies(r: &mut ServerRequest) -> Map {
        r.cookies()
    }

    /// The client's `ip:port`.
    #[rhai_fn(global, get = "remote", pure)]
    pub fn req_remote(r: &mut ServerRequest) -> String {
        r.remote()
    }

    /// The body as a blob.
    #[rhai_fn(global, get = "body", pure)]
    pub fn req_body(r: &mut ServerRequest) -> rhai::Blob {
        r.body()
    }

    /// Path parameters from the router (`/items/:id` → `req.params.id`).
    #[rhai_fn(global, get = "params", pure)]
    pub fn req_params(r: &mut ServerRequest) -> Map {
        r.params()
    }

    /// The body as UTF-8 text (`decode` error if it is not).
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| req.text().to_upper());
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "text", return_raw, pure)]
    pub fn req_text(r: &mut ServerRequest) -> NativeResult<String> {
        r.text().map_err(Into::into)
    }

    /// The body decoded as JSON (`decode` error if it is not).
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| #{got: req.json()});
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "json", return_raw, pure)]
    pub fn req_json(r: &mut ServerRequest) -> NativeResult<Dynamic> {
        r.json().map_err(Into::into)
    }

    /// The form fields of an urlencoded or multipart body: name to value
    /// (an array when a name repeats); uploaded files are
    /// `#{filename, content_type, data}`.
    ///
    /// ```rhai
    /// let srv = http::listen("127.0.0.1", 0).serve(|req| {
    ///     let f = req.form();
    ///     `${f.name} sent ${f.upload.data.len()} bytes`
    /// });
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "form", return_raw, pure)]
    pub fn req_form(r: &mut ServerRequest) -> NativeResult<Map> {
        r.form()
    }

    /// `GET /path from 127.0.0.1:5555`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn req_to_string(r: &mut ServerRequest) -> String {
        format!("{} {} from {}", r.method(), r.path(), r.remote())
    }

    /// Escape `& < > " '` for HTML, as Python's `html.escape`.
    ///
    /// ```rhai
    /// print(http::escape("<b>&</b>"));   // &lt;b&gt;&amp;&lt;/b&gt;
    /// ```
    pub fn escape(text: &str) -> String {
        response::html_escape(text)
    }
}

/// The server half of the `http::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clf_dates_match_the_calendar() {
        let at = |secs: u64| clf_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "01/Jan/1970:00:00:00 +0000");
        // 2000-02-29 12:34:56 UTC (a leap day).
        assert_eq!(at(951_827_696), "29/Feb/2000:12:34:56 +0000");
        // 2026-12-03 07:45:43 UTC.
        assert_eq!(at(1_796_283_943), "03/Dec/2026:07:45:43 +0000");
    }
}

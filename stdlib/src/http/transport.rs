//! How the HTTP client reaches a server: a TCP connection opened the
//! project's way (the permission check, our resolver, one connect budget
//! that DNS counts towards), handed to hyper's client connection API.
//!
//! hyper's connection API rather than reqwest: reqwest opens its own
//! sockets, so redirect hops would escape `--allow-net`, tracing and our
//! timeouts; here every hop comes through [`connect`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::error::{Error, Kind, NativeResult};
use crate::net::{self, Family};
use crate::{permissions, runtime};

/// Request bodies are built whole before sending.
pub type ReqBody = Full<Bytes>;

/// A connection's request sender: HTTP/1.1, or HTTP/2 when the server
/// chose `h2` by ALPN.
pub enum Sender {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

impl Sender {
    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        match self {
            Self::H1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }

    /// Whether requests go out as HTTP/2 (absolute URIs, no `Host`).
    pub fn is_h2(&self) -> bool {
        matches!(self, Self::H2(_))
    }

    /// Send `req` once the connection can take it; the response head.
    pub async fn send(&mut self, req: http::Request<ReqBody>) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Self::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Self::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// TLS for an `https` origin: the client configuration and the name to verify.
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
    pub server_name: String,
}

/// The time limits of one request: `connect` (DNS and TCP), `read` (each
/// wait for the response's head or a piece of its body), and `total`
/// (the whole exchange, redirects included) as a deadline.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub connect: Option<Duration>,
    pub read: Option<Duration>,
    pub deadline: Option<Instant>,
}

impl Timing {
    /// How long the next wait of a phase limited to `phase` may last: the
    /// smaller of it and what is left of the total.
    pub fn limit(&self, phase: Option<Duration>) -> Option<Duration> {
        let left = self.deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match (phase, left) {
            (Some(p), Some(l)) => Some(p.min(l)),
            (p, l) => p.or(l),
        }
    }

    /// Wait for `fut` at most `phase` (and the total's rest).
    pub fn wait<F, T>(&self, op: &str, peer: &str, phase: Option<Duration>, fut: F) -> NativeResult<T>
    where
        F: Future<Output = Result<T, Error>> + 'static,
        T: 'static,
    {
        runtime::block_on_timeout_at(op, Some(&peer), self.limit(phase), fut)
    }
}

/// The socket error under a hyper error, if that is what it is.
pub fn io_source(err: &hyper::Error) -> Option<&std::io::Error> {
    std::error::Error::source(err).and_then(|s| s.downcast_ref::<std::io::Error>())
}

/// A classified hyper error: `timeout`, `limit` (a head too large),
/// `http` (malformed), `closed`, or the socket's own kind.
pub fn hyper_error(op: &str, peer: &str, err: &hyper::Error) -> Error {
    // hyper tells a head over its buffer only by its message.
    let e = if err.is_parse() && err.to_string().contains("too large") {
        Error::new(Kind::Limit, op, "the response header is larger than max_header_size")
    } else if err.is_parse() || err.is_parse_status() {
        Error::new(Kind::Http, op, format!("malformed response: {err}"))
    } else if err.is_timeout() {
        Error::new(Kind::Timeout, op, err.to_string())
    } else if let Some(io) = io_source(err) {
        // A TLS failure inside gets its `reason`; a plain socket error its kind.
        if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
            return crate::tls::io_error(op, peer, io);
        }
        Error::io(op, io)
    } else if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        Error::new(Kind::Closed, op, format!("the server closed the connection: {err}"))
    } else {
        Error::new(Kind::Http, op, err.to_string())
    };
    e.with_peer(peer)
}

/// Open a connection to `host:port` for `op`: check the permissions,
/// resolve and connect (and run the TLS handshake) within
/// `timing.connect`, and start hyper's connection task on this thread's
/// event loop. `max_header` bounds an HTTP/1 response head.
pub fn connect(
    op: &str,
    host: &str,
    port: u16,
    timing: &Timing,
    max_header: usize,
    tls: Option<Tls>,
) -> NativeResult<Sender> {
    let peer = net::host_port(host, port);
    permissions::check_connect(op, host, port)?;
    let start = Instant::now();
    let left = || timing.connect.map(|c| c.saturating_sub(start.elapsed()));
    let addrs = net::resolve(op, host, port, Family::Any, timing.limit(timing.connect))?;
    let mut last = None;
    let mut stream = None;
    let faults = crate::faults::active();
    for addr in addrs {
        let (op_s, peer_s, faults) = (op.to_string(), peer.clone(), faults.clone());
        let started = Instant::now();
        let attempt = timing.wait(op, &peer, left(), async move {
            let s = TcpStream::connect(addr).await.map_err(|e| Error::io(&op_s, &e).with_peer(&peer_s))?;
            crate::faults::bend(s, faults.map(crate::faults::Control::fixed), crate::faults::Side::Client, true)
                .await
                .map_err(|e| Error::io(op_s, &e).with_peer(peer_s))
        });
        match attempt {
            Ok(s) => {
                crate::metrics::time("tcp_connect", &[], started.elapsed());
                stream = Some(s);
                break;
            }
            Err(e) if runtime::innermost_terminated(&e) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(last.unwrap_or_else(|| Error::new(Kind::Dns, op, "no addresses").with_peer(&peer).into()));
    };
    stream.set_nodelay(true).map_err(|e| Error::io(op, &e).with_peer(&peer))?;
    let Some(tls) = tls else { return http1_over(op, &peer, stream, max_header) };
    let op_s = op.to_string();
    let started = Instant::now();
    let stream = timing.wait(op, &peer, left(), async move {
        crate::tls::connect_stream(&op_s, stream, &tls.server_name, tls.config).await
    })?;
    crate::metrics::time("tls_handshake", &[], started.elapsed());
    if crate::trace::on() {
        let (_, session) = stream.get_ref();
        let alpn = session.alpn_protocol().map_or("none".into(), |p| String::from_utf8_lossy(p).into_owned());
        crate::trace::event("tls", &peer, &format!("{:?}, ALPN {alpn}", session.protocol_version()));
    }
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return http1_over(op, &peer, stream, max_header);
    }
    let (op_s, peer_s) = (op.to_string(), peer.clone());
    let (sender, conn) = runtime::block_on(async move {
        http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| hyper_error(&op_s, &peer_s, &e))
    })??;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(sender))
}

/// Start HTTP/1.1 over a connected stream.
fn http1_over<S>(op: &str, peer: &str, stream: S, max_header: usize) -> NativeResult<Sender>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.max_buf_size(max_header.max(8192)).max_header_size(max_header);
    let (op_s, peer_s) = (op.to_string(), peer.to_string());
    let (sender, conn) = runtime::block_on(async move {
        builder.handshake(TokioIo::new(stream)).await.map_err(|e| hyper_error(&op_s, &peer_s, &e))
    })??;
    // The connection task reads and writes the socket; it ends when the
    // server closes, or when the sender and the last body are dropped.
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(Sender::H1(sender))
}

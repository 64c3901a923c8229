//! `zmq::` — ZeroMQ sockets (ZMTP 3, interoperable with libzmq and pyzmq)
//! over the pure-Rust `zeromq` crate: REQ/REP, DEALER/ROUTER, PUB/SUB/XPUB,
//! PUSH/PULL and PAIR (written for this project in `vendor/zeromq`) on
//! `tcp://` and `ipc://` endpoints.
//!
//! ```rhai
//! let pull = zmq::socket("pull");
//! let endpoint = pull.bind("tcp://127.0.0.1:0");
//! let push = zmq::socket("push");
//! push.connect(endpoint);
//! push.send("work item");
//! print(pull.recv_string());
//! ```
//!
//! A zeromq socket is driven through `&mut`, so the handle keeps it behind an
//! async mutex: any task may use it, and a call waits for the one before it
//! on the same socket (a task waiting in `recv` holds it until a message
//! arrives, its timeout ends or the socket is closed). Every call waits at
//! most the socket's `timeout` (30 s by default, as connections'), and
//! `close` ends the waits at once. Everything runs on the event loop: the
//! crate's own tasks (readers, writers, reconnection) are tokio tasks, and
//! `vendor/zeromq` is patched so that none of them blocks the thread
//! (`vendor/README.md`). Guide: `docs/reference/zmq.md`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, INT, Map};
use tokio_util::sync::CancellationToken;
use zeromq::{
    DealerSocket, Endpoint, Host, PairSocket, PubSocket, PullSocket, PushSocket, RepSocket, ReqSocket, RouterSocket,
    Socket, SocketOptions, SocketRecv, SocketSend, SubSocket, XPubSocket, ZmqError, ZmqMessage,
};

use zeromq::util::PeerIdentity;

use crate::args::{self, Opts};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};
use crate::{permissions, runtime};

/// How often a send retries while its socket has no peer yet (libzmq blocks
/// until one connects; the crate refuses at once, so we poll).
const NO_PEER_RETRY: Duration = Duration::from_millis(5);

/// Each call's default limit, as for TCP connections.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages queued for each peer, libzmq's default `SNDHWM`.
const DEFAULT_SEND_HWM: usize = 1000;

/// One socket of any supported type.
enum Sock {
    Req(ReqSocket),
    Rep(RepSocket),
    Dealer(DealerSocket),
    Router(RouterSocket),
    Pub(PubSocket),
    Sub(SubSocket),
    XPub(XPubSocket),
    Push(PushSocket),
    Pull(PullSocket),
    Pair(PairSocket),
}

/// Apply `$body` to the socket inside every variant.
macro_rules! each {
    ($sock:expr, $s:ident => $body:expr) => {
        match $sock {
            Sock::Req($s) => $body,
            Sock::Rep($s) => $body,
            Sock::Dealer($s) => $body,
            Sock::Router($s) => $body,
            Sock::Pub($s) => $body,
            Sock::Sub($s) => $body,
            Sock::XPub($s) => $body,
            Sock::Push($s) => $body,
            Sock::Pull($s) => $body,
            Sock::Pair($s) => $body,
        }
    };
}

/// The socket type names, as pyzmq spells them in lower case (`zmq.PUSH`).
const TYPES: &str = "req, rep, dealer, router, pub, sub, xpub, push, pull, pair";

impl Sock {
    /// A socket of the type named `kind`, with that name as a static string.
    fn new(kind: &str, options: SocketOptions) -> Option<(Self, &'static str)> {
        Some(match kind {
            "req" => (Self::Req(ReqSocket::with_options(options)), "req"),
            "rep" => (Self::Rep(RepSocket::with_options(options)), "rep"),
            "dealer" => (Self::Dealer(DealerSocket::with_options(options)), "dealer"),
            "router" => (Self::Router(RouterSocket::with_options(options)), "router"),
            "pub" => (Self::Pub(PubSocket::with_options(options)), "pub"),
            "sub" => (Self::Sub(SubSocket::with_options(options)), "sub"),
            "xpub" => (Self::XPub(XPubSocket::with_options(options)), "xpub"),
            "push" => (Self::Push(PushSocket::with_options(options)), "push"),
            "pull" => (Self::Pull(PullSocket::with_options(options)), "pull"),
            "pair" => (Self::Pair(PairSocket::with_options(options)), "pair"),
            _ => return None,
        })
    }

    async fn bind(&mut self, endpoint: &str) -> Result<Endpoint, ZmqError> {
        each!(self, s => s.bind(endpoint).await)
    }

    async fn connect(&mut self, endpoint: &str) -> Result<(), ZmqError> {
        each!(self, s => s.connect(endpoint).await)
    }

    async fn send(&mut self, message: ZmqMessage) -> Result<(), ZmqError> {
        match self {
            Self::Req(s) => s.send(message).await,
            Self::Rep(s) => s.send(message).await,
            Self::Dealer(s) => s.send(message).await,
            Self::Router(s) => s.send(message).await,
            Self::Pub(s) => s.send(message).await,
            Self::XPub(s) => s.send(message).await,
            Self::Push(s) => s.send(message).await,
            Self::Pair(s) => s.send(message).await,
            Self::Sub(_) | Self::Pull(_) => Err(ZmqError::Socket("this socket type cannot send")),
        }
    }

    /// The next message. A peer that breaks the protocol (garbage on the
    /// port, an oversized message) has been dropped by the crate when its
    /// error comes up here: the socket goes on serving the others, as
    /// libzmq's does. Only a REQ, which waits for one peer's reply, reports
    /// that peer's end.
    async fn recv(&mut self) -> Result<ZmqMessage, ZmqError> {
        loop {
            let received = match self {
                Self::Req(s) => return s.recv().await,
                Self::Rep(s) => s.recv().await,
                Self::Dealer(s) => s.recv().await,
                Self::Router(s) => s.recv().await,
                Self::Sub(s) => s.recv().await,
                Self::XPub(s) => s.recv().await,
                Self::Pull(s) => s.recv().await,
                Self::Pair(s) => s.recv().await,
                Self::Pub(_) | Self::Push(_) => Err(ZmqError::Socket("this socket type cannot receive")),
            };
            match received {
                Err(ZmqError::Codec(_)) => {}
                other => return other,
            }
        }
    }
}

/// A socket with the message `net::select` found waiting (the crate has no
/// "readable" test that leaves the message in place).
struct Held {
    sock: Sock,
    pending: Option<ZmqMessage>,
}

impl Held {
    async fn recv(&mut self) -> Result<ZmqMessage, ZmqError> {
        match self.pending.take() {
            Some(message) => Ok(message),
            None => self.sock.recv().await,
        }
    }
}

/// A ZeroMQ socket handle (cheap to clone; clones share the socket).
#[derive(Clone)]
pub struct ZmqSock(Arc<Shared>);

struct Shared {
    kind: &'static str,
    socket: Arc<tokio::sync::Mutex<Option<Held>>>,
    /// Cancelled by `close`: every call waiting on the socket ends then.
    closed: CancellationToken,
    timeout: Mutex<Option<Duration>>,
    /// The endpoint of the last `bind` or `connect` (pyzmq's `LAST_ENDPOINT`).
    last_endpoint: Mutex<String>,
}

impl ZmqSock {
    fn timeout(&self) -> Option<Duration> {
        *self.0.timeout.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn last_endpoint(&self) -> String {
        self.0.last_endpoint.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_last_endpoint(&self, endpoint: String) {
        *self.0.last_endpoint.lock().unwrap_or_else(PoisonError::into_inner) = endpoint;
    }

    /// Run `f` on the socket under its lock, bounded by `timeout` and by
    /// the socket's closing.
    fn run<T, F>(&self, op: &'static str, timeout: Option<Duration>, f: F) -> NativeResult<T>
    where
        T: 'static,
        F: AsyncFnOnce(&mut Held) -> Result<T, Error> + 'static,
    {
        let socket = self.0.socket.clone();
        let closed = self.0.closed.clone().cancelled_owned();
        let peer = self.last_endpoint();
        runtime::block_on_timeout_at(op, Some(&peer), timeout, async move {
            tokio::select! {
                biased;
                () = closed => Err(closed_error(op)),
                done = async move {
                    let mut guard = socket.lock().await;
                    let held = guard.as_mut().ok_or_else(|| closed_error(op))?;
                    f(held).await
                } => done,
            }
        })
    }

    /// Ready when a `recv` would not wait (a message is held for it, or the
    /// socket is closed): `net::select`'s test.
    pub(crate) fn readable(&self) -> BoxFuture<'static, ()> {
        let socket = self.0.socket.clone();
        let closed = self.0.closed.clone().cancelled_owned();
        async move {
            tokio::select! {
                biased;
                () = closed => {}
                () = async move {
                    let mut guard = socket.lock().await;
                    let Some(held) = guard.as_mut() else { return };
                    if held.pending.is_none() {
                        // An error (a REQ's server gone) is for `recv` to report:
                        // ready, so that it is called.
                        if let Ok(message) = held.sock.recv().await {
                            held.pending = Some(message);
                        }
                    }
                } => {}
            }
        }
        .boxed()
    }

    fn send_frames(&self, op: &'static str, frames: Vec<Bytes>) -> NativeResult<()> {
        let mut message =
            ZmqMessage::try_from(frames).map_err(|_| Error::value(op, "a message needs at least one part"))?;
        if crate::trace::on() {
            for frame in message.iter() {
                crate::trace::data(op, &self.last_endpoint(), frame);
            }
        }
        if crate::metrics::on() {
            crate::metrics::count("zmq_msgs_sent", 1.0);
            crate::metrics::count("data_sent", message.iter().map(|f| f.len() as f64).sum());
        }
        if let Some(sent) = self.send_ready(&message) {
            return sent.map_err(|e| zmq_error(op, e).into());
        }
        self.run(op, self.timeout(), async move |held: &mut Held| {
            loop {
                match held.sock.send(message).await {
                    // libzmq blocks a send until a peer is there to take it.
                    Err(ZmqError::ReturnToSender { reason, message: back }) if reason.starts_with("Not connected") => {
                        message = back;
                        tokio::time::sleep(NO_PEER_RETRY).await;
                    }
                    other => return other.map_err(|e| zmq_error(op, e)),
                }
            }
        })
    }

    /// `message` sent at once if there is room for it in a peer's queue,
    /// without suspending the task (as [`Self::recv_ready`] receives): no
    /// timer, no race with `close`, no switch to the event loop and back.
    /// Only PUSH, DEALER and PAIR sockets, whose send queues one peer's
    /// message and does nothing before it can: a try that would wait is
    /// dropped with nothing sent, and the message (a copy of the frame list;
    /// the frames are reference-counted) takes the waiting path. `None` then,
    /// and when the socket is busy, closed, or has no peer yet.
    fn send_ready(&self, message: &ZmqMessage) -> Option<Result<(), ZmqError>> {
        let mut guard = self.0.socket.try_lock().ok()?;
        let held = guard.as_mut()?;
        if !matches!(held.sock, Sock::Push(_) | Sock::Dealer(_) | Sock::Pair(_)) {
            return None;
        }
        match held.sock.send(message.clone()).now_or_never()? {
            Err(ZmqError::ReturnToSender { .. }) => None,
            sent => Some(sent),
        }
    }

    /// The next message if one is waiting already, taken without suspending
    /// the task: no timer, no race with `close`, no switch to the event loop
    /// and back, which together cost more than the message itself at
    /// PUSH/PULL rates. An unfinished `recv` dropped here keeps its place in
    /// the queue, as one ended by a timeout does. `None` when the socket is
    /// busy (another task's call, `net::select`), closed, or has nothing yet.
    fn recv_ready(&self) -> Option<Result<ZmqMessage, ZmqError>> {
        let mut guard = self.0.socket.try_lock().ok()?;
        guard.as_mut()?.recv().now_or_never()
    }

    fn recv_frames(&self, op: &'static str, timeout: Option<Duration>) -> NativeResult<Vec<Bytes>> {
        let frames = match self.recv_ready() {
            Some(received) => received.map(ZmqMessage::into_vec).map_err(|e| zmq_error(op, e))?,
            None => self.run(op, timeout, async move |held: &mut Held| {
                held.recv().await.map(ZmqMessage::into_vec).map_err(|e| zmq_error(op, e))
            })?,
        };
        let max = runtime::max_array_size();
        if let Some(big) = frames.iter().find(|f| max != 0 && f.len() > max) {
            return Err(Error::new(
                Kind::Limit,
                op,
                format!("a {}-byte message part is larger than the blob limit ({max})", big.len()),
            )
            .into());
        }
        if crate::trace::on() {
            for frame in &frames {
                crate::trace::data(op, &self.last_endpoint(), frame);
            }
        }
        if crate::metrics::on() {
            crate::metrics::count("zmq_msgs_received", 1.0);
            crate::metrics::count("data_received", frames.iter().map(|f| f.len() as f64).sum());
        }
        Ok(frames)
    }

    fn subscription(&self, op: &'static str, prefix: &Dynamic, subscribe: bool) -> NativeResult<()> {
        let prefix = data_arg(prefix, op)?.into_owned();
        let kind = self.0.kind;
        self.run(op, self.timeout(), async move |held: &mut Held| {
            let Sock::Sub(sub) = &mut held.sock else {
                return Err(Error::value(op, format!("only a sub socket subscribes (this is a {kind})")));
            };
            let done =
                if subscribe { sub.subscribe_bytes(&prefix).await } else { sub.unsubscribe_bytes(&prefix).await };
            done.map_err(|e| zmq_error(op, e))
        })
    }
}

impl fmt::Display for ZmqSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last_endpoint().as_str() {
            "" => write!(f, "zmq {} socket", self.0.kind),
            endpoint => write!(f, "zmq {} socket {endpoint}", self.0.kind),
        }
    }
}

fn closed_error(op: &str) -> Error {
    Error::new(Kind::Closed, op, "the socket is closed")
}

/// The error for a failure the crate reported to `op`.
fn zmq_error(op: &str, err: ZmqError) -> Error {
    match err {
        ZmqError::Network(e) => Error::io(op, &e),
        ZmqError::ConnectTimeout(d) => {
            Error::new(Kind::Timeout, op, format!("timed out after {} (connect_timeout)", runtime::seconds(d)))
        }
        ZmqError::Endpoint(e) => Error::value(op, format!("bad endpoint: {e}")),
        ZmqError::ReturnToSender { reason, .. } if reason.contains("disconnected") => {
            Error::new(Kind::Closed, op, "the peer went away")
        }
        ZmqError::ReturnToSender { reason, .. } => Error::value(op, reason),
        ZmqError::Other(reason) if reason.contains("No request in progress") => Error::value(op, reason),
        ZmqError::Other(reason) if reason.contains("not found by identity") => {
            Error::new(Kind::Unreachable, op, "no peer has this identity")
        }
        ZmqError::Other("Server disconnected") | ZmqError::NoMessage | ZmqError::BufferFull(_) => {
            Error::new(Kind::Closed, op, "the peer went away")
        }
        ZmqError::Codec(e) => Error::new(Kind::Closed, op, format!("the peer went away: {e}")),
        ZmqError::Socket(reason) if reason.contains("cannot") || reason.contains("requires") => {
            Error::value(op, reason)
        }
        ZmqError::PeerIdentity => Error::value(op, "an identity is 1 to 255 bytes"),
        other => Error::new(Kind::Zmq, op, other.to_string()),
    }
}

/// Check an endpoint against the host's permissions: `tcp://` like a TCP
/// connect or listen; `ipc://` needs unrestricted network access (there is
/// no host to allow) and, to bind, listening.
fn check_endpoint(op: &str, endpoint: &str, bind: bool) -> Result<(), Error> {
    let parsed: Endpoint = endpoint.parse().map_err(|e| Error::value(op, format!("bad endpoint {endpoint:?}: {e}")))?;
    let (host, port) = match &parsed {
        Endpoint::Tcp(host, port) => (
            match host {
                Host::Ipv4(ip) => ip.to_string(),
                Host::Ipv6(ip) => ip.to_string(),
                Host::Domain(name) => name.clone(),
            },
            *port,
        ),
        _ => {
            if runtime::with_permissions(|p| p.net().is_some()) {
                return Err(Error::new(Kind::Permission, op, "ipc endpoints need unrestricted network access")
                    .with_peer(endpoint));
            }
            (String::new(), 0)
        }
    };
    if bind {
        permissions::check_listen(op, &host, port)
    } else {
        permissions::check_connect(op, &host, port)?;
        if matches!(parsed, Endpoint::Tcp(Host::Domain(_), _)) { permissions::check_lookup(op, &host) } else { Ok(()) }
    }
}

fn socket(kind: &str, opts: &Opts) -> NativeResult<ZmqSock> {
    const OP: &str = "zmq::socket";
    let timeout = opts.duration("timeout", Some(DEFAULT_TIMEOUT))?;
    let mut options = SocketOptions::default();
    match opts.duration("connect_timeout", Some(zeromq::DEFAULT_CONNECT_TIMEOUT))? {
        Some(limit) => options.connect_timeout(limit),
        None => options.no_connect_timeout(),
    };
    options.max_message_size(opts.size("max_message_size", crate::frame::DEFAULT_MAX)?);
    options.send_high_water_mark(opts.size("send_hwm", DEFAULT_SEND_HWM)?);
    if let Some(id) = opts.get("identity") {
        let id = data_arg(id, OP)?;
        // (The crate would take an empty one as "make one up".)
        let id = Some(id.into_owned())
            .filter(|id| !id.is_empty())
            .and_then(|id| PeerIdentity::try_from(Bytes::from(id)).ok())
            .ok_or_else(|| Error::value(OP, "an identity is 1 to 255 bytes"))?;
        options.peer_identity(id);
    }
    let (sock, kind) = Sock::new(&kind.to_ascii_lowercase(), options)
        .ok_or_else(|| Error::value(OP, format!("unknown socket type {kind:?} (known: {TYPES})")))?;
    Ok(ZmqSock(Arc::new(Shared {
        kind,
        socket: Arc::new(tokio::sync::Mutex::new(Some(Held { sock, pending: None }))),
        closed: CancellationToken::new(),
        timeout: Mutex::new(timeout),
        last_endpoint: Mutex::new(String::new()),
    })))
}

fn parts_arg(op: &str, parts: &Array) -> Result<Vec<Bytes>, Error> {
    parts.iter().map(|p| data_arg(p, op).map(|d| Bytes::from(d.into_owned()))).collect()
}

fn text(op: &str, frame: Bytes) -> NativeResult<String> {
    String::from_utf8(frame.to_vec()).map_err(|_| Error::new(Kind::Decode, op, "the message is not valid UTF-8").into())
}

/// The zeromq crate's TCP sockets, connected or accepted, through the
/// thread's faults (`--faults`, `net::faults`) and the capture, as the
/// other transports' are: its tasks run on the host thread, so the faults
/// read here are the script's.
fn bend(
    socket: tokio::net::TcpStream,
    accepted: bool,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<tokio::net::TcpStream>> + Send>> {
    let control = crate::faults::active().map(crate::faults::Control::fixed);
    let side = if accepted { crate::faults::Side::Server } else { crate::faults::Side::Client };
    Box::pin(crate::faults::bend(socket, control, side, true))
}

/// The `zmq::` module.
#[must_use]
pub fn module() -> rhai::Module {
    zeromq::set_tcp_hook(bend);
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A ZeroMQ socket.
    pub type Zmq = ZmqSock;

    /// A new socket of `type`: `"req"`, `"rep"`, `"dealer"`, `"router"`,
    /// `"pub"`, `"sub"`, `"xpub"`, `"push"`, `"pull"` or `"pair"` (pyzmq's
    /// `zmq.Context().socket(zmq.PUSH)`). A `"pair"` talks to one peer at a
    /// time, both ways; a second peer is disconnected after its handshake,
    /// unread, until the first one goes (libzmq's `ZMQ_PAIR`). Each call waits at most
    /// `s.timeout`, 30 s unless set.
    ///
    /// ```rhai
    /// let s = zmq::socket("push");
    /// print(s.type);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn socket(kind: &str) -> NativeResult<Zmq> {
        super::socket(kind, &Opts::empty("zmq::socket"))
    }

    /// A new socket with options: `timeout` (seconds each call may wait,
    /// default 30, `()` for no limit; pyzmq's `RCVTIMEO` and `SNDTIMEO`),
    /// `connect_timeout` (seconds `connect` retries a peer that is not there
    /// yet, default 30), `identity` (the routing id a ROUTER peer sees, 1 to
    /// 255 bytes; pyzmq's `zmq.ROUTING_ID`), `max_message_size` (bytes a
    /// peer's message may have, all parts together, default 16 MiB; a peer
    /// sending more is disconnected; pyzmq's `zmq.MAXMSGSIZE`), `send_hwm`
    /// (messages queued for each peer, default 1,000, pyzmq's `zmq.SNDHWM`:
    /// past it a PUB drops that subscriber's messages, other types' `send`
    /// waits).
    ///
    /// ```rhai
    /// let d = zmq::socket("dealer", #{identity: "worker-1", timeout: 5});
    /// ```
    #[rhai_fn(name = "socket", return_raw)]
    pub fn socket_opts(kind: &str, opts: Map) -> NativeResult<Zmq> {
        let opts = Opts::new(
            "zmq::socket",
            opts,
            &["timeout", "connect_timeout", "identity", "max_message_size", "send_hwm"],
        )?;
        super::socket(kind, &opts)
    }

    /// Listen on `endpoint` (`tcp://127.0.0.1:5555`, `tcp://*:0` for any
    /// free port, `ipc:///tmp/name`); returns the endpoint actually bound,
    /// with the port filled in (pyzmq's `LAST_ENDPOINT`).
    ///
    /// ```rhai
    /// let s = zmq::socket("pull");
    /// let endpoint = s.bind("tcp://127.0.0.1:0");
    /// print(endpoint);
    /// ```
    #[rhai_fn(global, name = "bind", return_raw, pure)]
    pub fn bind(s: &mut Zmq, endpoint: &str) -> NativeResult<String> {
        const OP: &str = "zmq.bind";
        check_endpoint(OP, endpoint, true)?;
        let target = endpoint.to_string();
        let bound = s.run(OP, s.timeout(), async move |held: &mut Held| {
            held.sock.bind(&target).await.map(|e| e.to_string()).map_err(|e| zmq_error(OP, e).with_peer(&target))
        })?;
        s.set_last_endpoint(bound.clone());
        Ok(bound)
    }

    /// Connect to `endpoint`. Unlike libzmq, which connects in the
    /// background, this waits until the peer answers the ZMTP handshake
    /// (retrying up to the socket's `connect_timeout`). Afterwards the
    /// socket reconnects by itself, every 100 ms, whenever the peer goes
    /// away, as libzmq does.
    ///
    /// ```rhai
    /// let s = zmq::socket("req");
    /// s.connect("tcp://127.0.0.1:5555");
    /// ```
    #[rhai_fn(global, name = "connect", return_raw, pure)]
    pub fn connect(s: &mut Zmq, endpoint: &str) -> NativeResult<()> {
        const OP: &str = "zmq.connect";
        check_endpoint(OP, endpoint, false)?;
        let target = endpoint.to_string();
        s.run(OP, s.timeout(), async move |held: &mut Held| {
            held.sock.connect(&target).await.map_err(|e| zmq_error(OP, e).with_peer(&target))
        })?;
        s.set_last_endpoint(endpoint.to_string());
        Ok(())
    }

    /// Send a one-part message (a string or a blob). With no peer yet it
    /// waits for one, as libzmq does. Sending out of turn on REQ/REP is a
    /// `value` error.
    ///
    /// ```rhai
    /// s.send("hello");
    /// ```
    #[rhai_fn(global, name = "send", return_raw, pure)]
    pub fn send(s: &mut Zmq, data: Dynamic) -> NativeResult<()> {
        let frame = Bytes::from(data_arg(&data, "zmq.send")?.into_owned());
        s.send_frames("zmq.send", vec![frame])
    }

    /// Send a multipart message: an array of strings or blobs, delivered
    /// all together or not at all. On a ROUTER the first part is the
    /// identity of the peer to send to.
    ///
    /// ```rhai
    /// s.send_multipart(["topic", "payload"]);
    /// ```
    #[rhai_fn(global, name = "send_multipart", return_raw, pure)]
    pub fn send_multipart(s: &mut Zmq, parts: Array) -> NativeResult<()> {
        const OP: &str = "zmq.send_multipart";
        let frames = parts_arg(OP, &parts)?;
        s.send_frames(OP, frames)
    }

    /// Receive a message as one blob (the parts of a multipart message
    /// joined; use `recv_multipart` to keep them apart). Waits up to the
    /// socket's `timeout`.
    ///
    /// ```rhai
    /// let data = s.recv();
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv(s: &mut Zmq) -> NativeResult<Blob> {
        let t = s.timeout();
        s.recv_frames("zmq.recv", t).map(|frames| frames.concat())
    }

    /// Receive a message, waiting at most `timeout` seconds.
    ///
    /// ```rhai
    /// try { s.recv(0.5) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv_timeout(s: &mut Zmq, timeout: Dynamic) -> NativeResult<Blob> {
        let t = args::duration("zmq.recv", &timeout)?;
        s.recv_frames("zmq.recv", t).map(|frames| frames.concat())
    }

    /// Receive a message as a string (UTF-8; a `decode` error otherwise).
    ///
    /// ```rhai
    /// let text = s.recv_string();
    /// ```
    #[rhai_fn(global, name = "recv_string", return_raw, pure)]
    pub fn recv_string(s: &mut Zmq) -> NativeResult<String> {
        const OP: &str = "zmq.recv_string";
        let t = s.timeout();
        let frames = s.recv_frames(OP, t)?;
        text(OP, Bytes::from(frames.concat()))
    }

    /// Receive a multipart message as an array of blobs (on a ROUTER, the
    /// sender's identity comes first).
    ///
    /// ```rhai
    /// let parts = s.recv_multipart();
    /// print(parts.len());
    /// ```
    #[rhai_fn(global, name = "recv_multipart", return_raw, pure)]
    pub fn recv_multipart(s: &mut Zmq) -> NativeResult<Array> {
        let t = s.timeout();
        let frames = s.recv_frames("zmq.recv_multipart", t)?;
        Ok(frames.into_iter().map(|f| Dynamic::from_blob(f.to_vec())).collect())
    }

    /// Receive a multipart message, waiting at most `timeout` seconds.
    ///
    /// ```rhai
    /// let parts = s.recv_multipart(2.0);
    /// ```
    #[rhai_fn(global, name = "recv_multipart", return_raw, pure)]
    pub fn recv_multipart_timeout(s: &mut Zmq, timeout: Dynamic) -> NativeResult<Array> {
        let t = args::duration("zmq.recv_multipart", &timeout)?;
        let frames = s.recv_frames("zmq.recv_multipart", t)?;
        Ok(frames.into_iter().map(|f| Dynamic::from_blob(f.to_vec())).collect())
    }

    /// On a SUB socket, receive messages whose first part starts with
    /// `prefix` (a string or a blob, any bytes); `""` receives everything.
    /// A SUB socket receives nothing until it subscribes.
    ///
    /// ```rhai
    /// let sub = zmq::socket("sub");
    /// sub.subscribe("weather.");
    /// ```
    #[rhai_fn(global, name = "subscribe", return_raw, pure)]
    pub fn subscribe(s: &mut Zmq, prefix: Dynamic) -> NativeResult<()> {
        s.subscription("zmq.subscribe", &prefix, true)
    }

    /// Stop receiving messages that start with `prefix`.
    ///
    /// ```rhai
    /// let sub = zmq::socket("sub");
    /// sub.subscribe("a");
    /// sub.unsubscribe("a");
    /// ```
    #[rhai_fn(global, name = "unsubscribe", return_raw, pure)]
    pub fn unsubscribe(s: &mut Zmq, prefix: Dynamic) -> NativeResult<()> {
        s.subscription("zmq.unsubscribe", &prefix, false)
    }

    /// The socket type (`"push"`, `"router"`…).
    #[rhai_fn(global, get = "type", pure)]
    pub fn kind(s: &mut Zmq) -> String {
        s.0.kind.to_string()
    }

    /// The endpoint of the last `bind` (with its port) or `connect`, or `""`.
    #[rhai_fn(global, get = "last_endpoint", pure)]
    pub fn last_endpoint(s: &mut Zmq) -> String {
        s.last_endpoint()
    }

    /// Seconds each call may wait, or `()` for no limit (the default).
    #[rhai_fn(global, get = "timeout", pure)]
    pub fn get_timeout(s: &mut Zmq) -> Dynamic {
        s.timeout().map_or(Dynamic::UNIT, |d| d.as_secs_f64().into())
    }

    /// Set the timeout in seconds, or `()` for none (pyzmq's `RCVTIMEO` and
    /// `SNDTIMEO` together).
    #[rhai_fn(global, set = "timeout", return_raw)]
    pub fn set_timeout(s: &mut Zmq, value: Dynamic) -> NativeResult<()> {
        *s.0.timeout.lock().unwrap_or_else(PoisonError::into_inner) = args::duration("timeout", &value)?;
        Ok(())
    }

    /// Close the socket: its listeners stop and its connections drop;
    /// messages still queued are discarded (pyzmq's `close(linger=0)`).
    ///
    /// ```rhai
    /// let s = zmq::socket("pub");
    /// s.close();
    /// ```
    #[rhai_fn(global, name = "close", return_raw, pure)]
    pub fn close(s: &mut Zmq) -> NativeResult<()> {
        // Waiting calls end first (and let go of the socket).
        s.0.closed.cancel();
        let socket = s.0.socket.clone();
        let held = runtime::block_on(async move { socket.lock().await.take() })?;
        if let Some(held) = held {
            each!(held.sock, s => drop(runtime::block_on(s.close())?));
        }
        Ok(())
    }

    /// `zmq push socket tcp://127.0.0.1:5555`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(s: &mut Zmq) -> String {
        s.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(s: &mut Zmq) -> String {
        s.to_string()
    }

    /// The port of the last bound or connected `tcp://` endpoint (0 if none).
    #[rhai_fn(global, get = "port", pure)]
    pub fn port(s: &mut Zmq) -> INT {
        s.last_endpoint().rsplit(':').next().and_then(|p| p.parse::<INT>().ok()).unwrap_or(0)
    }
}

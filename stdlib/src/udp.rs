//! `udp::` — datagram sockets: `bind`, `send_to`/`recv_from`, and
//! `connect` for a fixed peer.
//!
//! ```rhai
//! let a = udp::bind("127.0.0.1", 0);
//! let b = udp::bind("127.0.0.1", 0);
//! a.send_to("ping", "127.0.0.1", b.port);
//! let m = b.recv_from(1.0);
//! print(`${m.data.as_string()} from ${m.host}:${m.port}`);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Blob, Dynamic, INT, Map};
use tokio::net::UdpSocket;

use crate::args::{self, Opts};
use crate::bytes::data_arg;
use crate::capture;
use crate::error::{Error, Kind, NativeResult};
use crate::faults::Datagrams;
use crate::net::{self, Family};
use crate::runtime;

/// Largest datagram `recv_from` accepts (the IPv4 UDP maximum).
const MAX_DATAGRAM: usize = 65_507;

/// A UDP socket handle (cheap to clone).
#[derive(Clone)]
pub struct UdpSock(Arc<UdpInner>);

struct UdpInner {
    socket: std::sync::Mutex<Option<Arc<UdpSocket>>>,
    local: SocketAddr,
    timeout: std::sync::Mutex<Option<Duration>>,
    /// Under `deny_listen`, the addresses datagrams may come from.
    peers: Option<crate::permissions::UdpPeers>,
    /// `udp_loss` / `udp_duplicate` / `udp_reorder` of what is sent…
    up: Option<Mutex<Datagrams<Outgoing>>>,
    /// …and of what arrives, with the datagrams that passed and wait for a `recv`.
    down: Option<Mutex<(Datagrams<Incoming>, VecDeque<Incoming>)>>,
}

/// A datagram to send, and where (`None`: the connected peer).
type Outgoing = (Blob, Option<SocketAddr>);
/// A datagram received, and from where.
type Incoming = (Blob, SocketAddr);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl UdpSock {
    /// The tokio socket, or a `closed` error.
    pub fn socket_for(&self, op: &str) -> Result<Arc<UdpSocket>, Error> {
        self.0
            .socket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::new(Kind::Closed, op, "the socket is closed").with_peer(self.0.local))
    }

    fn timeout(&self) -> Option<Duration> {
        *self.0.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record that the socket talks to `addr` (see [`crate::permissions::UdpPeers`]).
    fn note_peer(&self, op: &str, addr: SocketAddr) -> Result<(), Error> {
        self.0.peers.as_ref().map_or(Ok(()), |p| p.note(op, addr))
    }

    fn send_to(&self, data: &[u8], host: &str, port: u16) -> NativeResult<INT> {
        const OP: &str = "send_to";
        crate::permissions::check_connect(OP, host, port)?;
        let sock = self.socket_for(OP)?;
        let want = if self.0.local.is_ipv4() { Family::V4 } else { Family::V6 };
        let addr = net::resolve(OP, host, port, want, self.timeout())?[0];
        self.note_peer(OP, addr)?;
        if crate::trace::on() {
            crate::trace::data("send_to", &addr.to_string(), data);
        }
        crate::metrics::count("data_sent", data.len() as f64);
        self.send_datagrams(OP, sock, (data.to_vec(), Some(addr)), addr)
    }

    /// Send `d` (through the socket's datagram faults, if any): the byte
    /// count of `d`, whether it went out once, twice or not at all.
    fn send_datagrams(
        &self,
        op: &'static str,
        sock: Arc<UdpSocket>,
        d: Outgoing,
        peer: SocketAddr,
    ) -> NativeResult<INT> {
        let n = d.0.len() as INT;
        let out = match &self.0.up {
            Some(faults) => lock(faults).pass(d),
            None => vec![d],
        };
        let local = self.0.local;
        runtime::block_on_timeout(op, self.timeout(), async move {
            for (data, to) in out {
                match to {
                    Some(addr) => sock.send_to(&data, addr).await,
                    None => sock.send(&data).await,
                }
                .map_err(|e| Error::io(op, &e).with_peer(peer))?;
                if capture::on() {
                    capture::udp(local, to.unwrap_or(peer), capture::Dir::Sent, &data);
                }
            }
            Ok(n)
        })
    }

    fn recv_from(&self, timeout: Option<Duration>) -> NativeResult<(Blob, SocketAddr)> {
        const OP: &str = "recv_from";
        let sock = self.socket_for(OP)?;
        let local = self.0.local;
        let inner = self.0.clone();
        let queued = inner.down.as_ref().and_then(|d| lock(d).1.pop_front());
        let (data, from) = match queued {
            Some(d) => d,
            None => runtime::block_on_timeout(OP, timeout, async move {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                loop {
                    let (n, from) = sock.recv_from(&mut buf).await.map_err(|e| Error::io(OP, &e).with_peer(local))?;
                    // Under deny_listen, datagrams from strangers are dropped.
                    if !inner.peers.as_ref().is_none_or(|p| p.accepts(from)) {
                        continue;
                    }
                    let Some(down) = &inner.down else { return Ok((buf[..n].to_vec(), from)) };
                    let mut down = lock(down);
                    let mut passed = down.0.pass((buf[..n].to_vec(), from)).into_iter();
                    if let Some(first) = passed.next() {
                        down.1.extend(passed);
                        return Ok(first);
                    }
                }
            })?,
        };
        if crate::trace::on() {
            crate::trace::data("recv_from", &from.to_string(), &data);
        }
        if capture::on() {
            capture::udp(local, from, capture::Dir::Received, &data);
        }
        crate::metrics::count("data_received", data.len() as f64);
        Ok((data, from))
    }
}

impl fmt::Display for UdpSock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sock = self.0.socket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match sock.as_ref().map(|s| s.peer_addr()) {
            None => write!(f, "udp {} (closed)", self.0.local),
            Some(Ok(peer)) => write!(f, "udp {} -> {peer}", self.0.local),
            Some(Err(_)) => write!(f, "udp {}", self.0.local),
        }
    }
}

fn port_arg(op: &str, port: INT) -> Result<u16, Error> {
    u16::try_from(port).map_err(|_| Error::value(op, format!("port must be 0..65535, got {port}")))
}

fn bind(host: &str, port: u16, opts: &Opts) -> NativeResult<UdpSock> {
    const OP: &str = "udp::bind";
    let family = Family::from_opts(OP, opts)?;
    let broadcast = opts.bool("broadcast", false)?;
    let timeout = opts.duration("timeout", Some(crate::tcp::DEFAULT_TIMEOUT))?;
    let peers = crate::permissions::check_udp_bind(OP, host, port)?;
    let addr = net::resolve(OP, host, port, family, timeout)?[0];
    let std_sock = std::net::UdpSocket::bind(addr).map_err(|e| Error::io(OP, &e).with_peer(addr))?;
    std_sock.set_nonblocking(true).map_err(|e| Error::io(OP, &e))?;
    std_sock.set_broadcast(broadcast).map_err(|e| Error::io(OP, &e))?;
    let socket = UdpSocket::from_std(std_sock).map_err(|e| Error::io(OP, &e))?;
    let local = socket.local_addr().map_err(|e| Error::io(OP, &e))?;
    let (up, down) = match crate::faults::for_connection(OP, opts.get("faults"))? {
        Some(spec) => {
            let stream = crate::faults::next_stream();
            let up = Datagrams::new(&spec, stream, true).map(Mutex::new);
            (up, Datagrams::new(&spec, stream + 1, false).map(|d| Mutex::new((d, VecDeque::new()))))
        }
        None => (None, None),
    };
    Ok(UdpSock(Arc::new(UdpInner {
        socket: std::sync::Mutex::new(Some(Arc::new(socket))),
        local,
        timeout: std::sync::Mutex::new(timeout),
        peers,
        up,
        down,
    })))
}

/// The `udp::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A UDP socket.
    pub type Udp = UdpSock;

    /// Bind a UDP socket to `host:port` (port 0 picks a free port).
    ///
    /// ```rhai
    /// let u = udp::bind("127.0.0.1", 0);
    /// print(u.port);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn bind(host: &str, port: INT) -> NativeResult<Udp> {
        super::bind(host, port_arg("udp::bind", port)?, &Opts::empty("udp::bind"))
    }

    /// Bind with options: `family`, `broadcast` (bool), `timeout` (seconds
    /// for sends and `recv`, default 30), `faults` (`udp_loss`,
    /// `udp_duplicate`, `udp_reorder`, `direction`, `seed`, as
    /// `net::faults` takes them; by default those of `net::faults`).
    ///
    /// ```rhai
    /// let u = udp::bind("0.0.0.0", 0, #{broadcast: true});
    /// let lossy = udp::bind("127.0.0.1", 0, #{faults: "udp_loss=0.1,seed=4"});
    /// ```
    #[rhai_fn(name = "bind", return_raw)]
    pub fn bind_opts(host: &str, port: INT, opts: Map) -> NativeResult<Udp> {
        let opts = Opts::new("udp::bind", opts, &["family", "broadcast", "timeout", "faults"])?;
        super::bind(host, port_arg("udp::bind", port)?, &opts)
    }

    /// Send one datagram to `host:port`; returns the bytes sent.
    ///
    /// ```rhai
    /// u.send_to("ping", "127.0.0.1", 9999);
    /// ```
    #[rhai_fn(global, name = "send_to", return_raw, pure)]
    pub fn send_to(u: &mut Udp, data: Dynamic, host: &str, port: INT) -> NativeResult<INT> {
        let data = data_arg(&data, "send_to")?;
        u.send_to(&data, host, port_arg("send_to", port)?)
    }

    /// Receive one datagram: `#{data, host, port}` (waits up to the socket's timeout).
    ///
    /// ```rhai
    /// let m = u.recv_from();
    /// u.send_to(m.data, m.host, m.port);
    /// ```
    #[rhai_fn(global, name = "recv_from", return_raw, pure)]
    pub fn recv_from(u: &mut Udp) -> NativeResult<Map> {
        let t = u.timeout();
        recv_map(u, t)
    }

    /// Receive one datagram, waiting at most `timeout` seconds.
    ///
    /// ```rhai
    /// try { u.recv_from(0.5) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "recv_from", return_raw, pure)]
    pub fn recv_from_timeout(u: &mut Udp, timeout: Dynamic) -> NativeResult<Map> {
        let t = args::duration("recv_from", &timeout)?;
        recv_map(u, t)
    }

    /// Fix the peer: `send(data)` goes there and only its datagrams are received.
    ///
    /// ```rhai
    /// u.connect("127.0.0.1", 9999);
    /// u.send("ping");
    /// ```
    #[rhai_fn(global, name = "connect", return_raw, pure)]
    pub fn connect(u: &mut Udp, host: &str, port: INT) -> NativeResult<()> {
        const OP: &str = "udp.connect";
        let port = port_arg(OP, port)?;
        crate::permissions::check_connect(OP, host, port)?;
        let sock = u.socket_for(OP)?;
        let want = if u.0.local.is_ipv4() { Family::V4 } else { Family::V6 };
        let addr = net::resolve(OP, host, port, want, u.timeout())?[0];
        u.note_peer(OP, addr)?;
        runtime::block_on_timeout(OP, u.timeout(), async move {
            sock.connect(addr).await.map_err(|e| Error::io(OP, &e).with_peer(addr))
        })
    }

    /// Send a datagram to the connected peer.
    ///
    /// ```rhai
    /// u.send("ping");
    /// ```
    #[rhai_fn(global, name = "send", return_raw, pure)]
    pub fn send(u: &mut Udp, data: Dynamic) -> NativeResult<INT> {
        const OP: &str = "udp.send";
        let data = data_arg(&data, OP)?.into_owned();
        let sock = u.socket_for(OP)?;
        let local = u.0.local;
        if crate::trace::on() {
            crate::trace::data("send", &local.to_string(), &data);
        }
        crate::metrics::count("data_sent", data.len() as f64);
        let peer = sock.peer_addr().unwrap_or(local);
        u.send_datagrams(OP, sock, (data, None), peer)
    }

    /// Receive a datagram from the connected peer (its data only).
    ///
    /// ```rhai
    /// let reply = u.recv();
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv(u: &mut Udp) -> NativeResult<Blob> {
        let t = u.timeout();
        u.recv_from(t).map(|(d, _)| d)
    }

    /// The bound port.
    #[rhai_fn(global, get = "port", pure)]
    pub fn port(u: &mut Udp) -> INT {
        INT::from(u.0.local.port())
    }

    /// The local address `ip:port`.
    #[rhai_fn(global, get = "local", pure)]
    pub fn local(u: &mut Udp) -> String {
        u.0.local.to_string()
    }

    /// Seconds sends and receives may wait, or `()` for no limit.
    #[rhai_fn(global, get = "timeout", pure)]
    pub fn get_timeout(u: &mut Udp) -> Dynamic {
        u.timeout().map_or(Dynamic::UNIT, |d| d.as_secs_f64().into())
    }

    /// Set the timeout in seconds, or `()` for none.
    #[rhai_fn(global, set = "timeout", return_raw)]
    pub fn set_timeout(u: &mut Udp, value: Dynamic) -> NativeResult<()> {
        *u.0.timeout.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = args::duration("timeout", &value)?;
        Ok(())
    }

    /// Close the socket.
    ///
    /// ```rhai
    /// let u = udp::bind("127.0.0.1", 0);
    /// u.close();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn close(u: &mut Udp) {
        u.0.socket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }

    /// `udp 127.0.0.1:5000 -> 127.0.0.1:9999`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn to_string(u: &mut Udp) -> String {
        u.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(u: &mut Udp) -> String {
        u.to_string()
    }
}

fn recv_map(u: &UdpSock, timeout: Option<Duration>) -> NativeResult<Map> {
    let (data, from) = u.recv_from(timeout)?;
    let mut m = Map::new();
    m.insert("data".into(), Dynamic::from_blob(data));
    m.insert("host".into(), from.ip().to_string().into());
    m.insert("port".into(), INT::from(from.port()).into());
    Ok(m)
}

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

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Blob, Dynamic, INT, Map};
use tokio::net::UdpSocket;

use crate::args::{self, Opts};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};
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
        let data = data.to_vec();
        runtime::block_on_timeout(OP, self.timeout(), async move {
            sock.send_to(&data, addr).await.map(|n| n as INT).map_err(|e| Error::io(OP, &e).with_peer(addr))
        })
    }

    fn recv_from(&self, timeout: Option<Duration>) -> NativeResult<(Blob, SocketAddr)> {
        const OP: &str = "recv_from";
        let sock = self.socket_for(OP)?;
        let local = self.0.local;
        let inner = self.0.clone();
        let (data, from) = runtime::block_on_timeout(OP, timeout, async move {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            let (n, from) = loop {
                let (n, from) = sock.recv_from(&mut buf).await.map_err(|e| Error::io(OP, &e).with_peer(local))?;
                // Under deny_listen, datagrams from strangers are dropped.
                if inner.peers.as_ref().is_none_or(|p| p.accepts(from)) {
                    break (n, from);
                }
            };
            buf.truncate(n);
            Ok((buf, from))
        })?;
        if crate::trace::on() {
            crate::trace::data("recv_from", &from.to_string(), &data);
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
    Ok(UdpSock(Arc::new(UdpInner {
        socket: std::sync::Mutex::new(Some(Arc::new(socket))),
        local,
        timeout: std::sync::Mutex::new(timeout),
        peers,
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
    /// for sends and `recv`, default 30).
    ///
    /// ```rhai
    /// let u = udp::bind("0.0.0.0", 0, #{broadcast: true});
    /// ```
    #[rhai_fn(name = "bind", return_raw)]
    pub fn bind_opts(host: &str, port: INT, opts: Map) -> NativeResult<Udp> {
        let opts = Opts::new("udp::bind", opts, &["family", "broadcast", "timeout"])?;
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
        runtime::block_on_timeout(OP, u.timeout(), async move {
            sock.send(&data).await.map(|n| n as INT).map_err(|e| Error::io(OP, &e).with_peer(local))
        })
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

//! `net::` — address resolution shared by the socket modules, and
//! `net::select`, the book's select/poll for single-task event loops.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, select_all};
use rhai::plugin::*;
use rhai::{Array, Dynamic};

use crate::args::{self, Opts};
use crate::error::{Error, Kind, NativeResult};
use crate::runtime;

/// Address family filter (`family` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Any family.
    Any,
    /// IPv4 only (`"inet"`).
    V4,
    /// IPv6 only (`"inet6"`).
    V6,
}

impl Family {
    /// Read the `family` option: `"inet"`, `"inet6"` or absent.
    pub fn from_opts(op: &str, opts: &Opts) -> Result<Self, Error> {
        match opts.string("family")?.as_deref() {
            None | Some("any") => Ok(Self::Any),
            Some("inet" | "ipv4" | "4") => Ok(Self::V4),
            Some("inet6" | "ipv6" | "6") => Ok(Self::V6),
            Some(other) => Err(Error::value(op, format!("family must be \"inet\" or \"inet6\", got {other:?}"))),
        }
    }

    fn accepts(self, addr: &SocketAddr) -> bool {
        match self {
            Self::Any => true,
            Self::V4 => addr.is_ipv4(),
            Self::V6 => addr.is_ipv6(),
        }
    }
}

/// `host:port`, with brackets around IPv6 literals.
#[must_use]
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Resolve `host` (a name or an IP literal; `""` means any address) to
/// socket addresses of `family`, via the system resolver off the event loop.
pub fn resolve(
    op: &str,
    host: &str,
    port: u16,
    family: Family,
    timeout: Option<Duration>,
) -> NativeResult<Vec<SocketAddr>> {
    let literal = match host {
        "" | "*" => Some(if family == Family::V6 { IpAddr::from([0u16; 8]) } else { IpAddr::from([0u8; 4]) }),
        h => h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok(),
    };
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            let name = host.to_string();
            let op_owned = op.to_string();
            let peer = host_port(host, port);
            runtime::block_on_timeout(op, timeout, async move {
                match tokio::net::lookup_host((name.as_str(), port)).await {
                    Ok(addrs) => Ok(addrs.collect()),
                    Err(e) => {
                        Err(Error::new(Kind::Dns, op_owned, format!("cannot resolve {name:?}: {}", gai_detail(&e)))
                            .with_peer(peer))
                    }
                }
            })?
        }
    };
    let addrs: Vec<SocketAddr> = addrs.into_iter().filter(|a| family.accepts(a)).collect();
    if addrs.is_empty() {
        return Err(Error::new(Kind::Dns, op, format!("{host:?} has no address of the requested family"))
            .with_peer(host_port(host, port))
            .into());
    }
    Ok(addrs)
}

/// getaddrinfo's text, without Rust's prefix, telling "not found" from
/// "temporary failure".
fn gai_detail(err: &std::io::Error) -> String {
    let text = err.to_string();
    text.strip_prefix("failed to lookup address information: ").unwrap_or(&text).to_string()
}

/// A future that completes when `handle` has something to read (or a
/// connection to accept), or `None` if it is not a selectable handle.
fn readable(handle: &Dynamic) -> Option<Result<BoxFuture<'static, ()>, Error>> {
    if let Some(c) = handle.read_lock::<crate::tcp::TcpConn>() {
        if c.buffered() > 0 {
            return Some(Ok(futures_util::future::ready(()).boxed()));
        }
        return Some(c.stream_for("net::select").map(|s| {
            async move {
                let _ = s.readable().await;
            }
            .boxed()
        }));
    }
    if let Some(l) = handle.read_lock::<crate::tcp::Listener>() {
        return Some(l.listener_for("net::select").map(|l| {
            async move {
                // A listener is readable when accept would not wait.
                let _ = std::future::poll_fn(|cx| l.poll_accept(cx).map(|_| ())).await;
            }
            .boxed()
        }));
    }
    if let Some(u) = handle.read_lock::<crate::udp::UdpSock>() {
        return Some(u.socket_for("net::select").map(|s| {
            async move {
                let _ = s.readable().await;
            }
            .boxed()
        }));
    }
    None
}

/// The `net::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// Wait until at least one of `handles` (TCP connections, listeners,
    /// UDP sockets) is readable, at most `timeout` seconds (`()` = forever);
    /// returns the readable ones (empty on timeout), like `select.select`.
    ///
    /// ```rhai
    /// let ready = net::select([conn_a, conn_b, listener], 1.0);
    /// for h in ready { print(h) }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn select(handles: Array, timeout: Dynamic) -> NativeResult<Array> {
        const OP: &str = "net::select";
        let timeout = args::duration(OP, &timeout)?;
        let mut waits = Vec::with_capacity(handles.len());
        for (i, h) in handles.iter().enumerate() {
            match readable(h) {
                Some(Ok(f)) => waits.push(f),
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Error::value(OP, format!("item {i} is a {}, not a socket", h.type_name())).into()),
            }
        }
        if waits.is_empty() {
            return Ok(Array::new());
        }
        let ready = runtime::block_on(async move {
            match timeout {
                Some(t) => tokio::time::timeout(t, select_all(waits)).await.is_ok(),
                None => {
                    select_all(waits).await;
                    true
                }
            }
        })?;
        if !ready {
            return Ok(Array::new());
        }
        // Report every handle ready now, not only the first to wake.
        let mut out = Array::new();
        for h in handles {
            if let Some(Ok(f)) = readable(&h)
                && f.now_or_never().is_some()
            {
                out.push(h);
            }
        }
        Ok(out)
    }
}

//! `net::` — address resolution shared by the socket modules, and
//! `net::select`, the book's select/poll for single-task event loops.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, select_all};
use rhai::plugin::*;
use rhai::{Array, Dynamic, INT};

use crate::args::{self, Opts};
use crate::error::{Error, Kind, NativeResult};
use crate::{permissions, runtime};

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
/// Looking up a name needs the permissions' leave (see [`permissions`]).
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
            permissions::check_lookup(op, host)?;
            let name = host.to_string();
            let op_owned = op.to_string();
            let peer = host_port(host, port);
            let started = std::time::Instant::now();
            let found = runtime::block_on_timeout(op, timeout, async move {
                match tokio::net::lookup_host((name.as_str(), port)).await {
                    Ok(addrs) => Ok(addrs.collect()),
                    Err(e) => {
                        Err(Error::new(Kind::Dns, op_owned, format!("cannot resolve {name:?}: {}", gai_detail(&e)))
                            .with_peer(peer))
                    }
                }
            })?;
            crate::metrics::time("dns_lookup", &[], started.elapsed());
            found
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

/// Run blocking `f` (a libc resolver call) on tokio's blocking pool and wait
/// for it without blocking the event loop.
fn off_loop<T, F>(op: &str, f: F) -> NativeResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    runtime::block_on(tokio::task::spawn_blocking(f))?
        .map_err(|e| Error::new(Kind::Io, op, format!("resolver thread failed: {e}")).into())
}

/// A `dns` error for a failed getaddrinfo/getnameinfo, whose message and
/// `code` tell "name not found" from "temporary failure".
fn gai_error(op: &str, what: &str, err: dns_lookup::LookupError) -> Error {
    use dns_lookup::LookupErrorKind as K;
    let (code, label) = match err.kind() {
        K::NoName => ("noname", "name not found"),
        K::NoData => ("nodata", "the name has no addresses"),
        K::Again => ("again", "temporary failure in name resolution"),
        K::Fail => ("fail", "non-recoverable failure in name resolution"),
        K::Service => ("service", "service not supported for this socket type"),
        K::Family => ("family", "address family not supported"),
        K::Socktype => ("socktype", "socket type not supported"),
        K::Badflags => ("badflags", "invalid flags"),
        K::Memory => ("memory", "out of memory"),
        K::System | K::IO | K::Unknown => ("system", "system error"),
    };
    let system = std::io::Error::from(err).to_string();
    Error::new(Kind::Dns, op, format!("{what}: {label} ({system})")).with_code(code)
}

/// Socket type names as in Python's `socket.SOCK_*`.
const SOCKTYPES: &[(&str, i32)] = &[
    ("stream", libc::SOCK_STREAM),
    ("dgram", libc::SOCK_DGRAM),
    ("raw", libc::SOCK_RAW),
    ("seqpacket", libc::SOCK_SEQPACKET),
];

/// getaddrinfo flags by name (`AI_CANONNAME` → `"canonname"`).
const GAI_FLAGS: &[(&str, i32)] = &[
    ("passive", libc::AI_PASSIVE),
    ("canonname", libc::AI_CANONNAME),
    ("numerichost", libc::AI_NUMERICHOST),
    ("numericserv", libc::AI_NUMERICSERV),
    ("v4mapped", libc::AI_V4MAPPED),
    ("all", libc::AI_ALL),
    ("addrconfig", libc::AI_ADDRCONFIG),
];

/// A constant given by name (from `table`) or number.
fn named_int(op: &str, key: &str, value: &Dynamic, table: &[(&str, i32)]) -> Result<i32, Error> {
    let names = || table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    if let Ok(i) = value.as_int() {
        return i32::try_from(i).map_err(|_| Error::value(op, format!("option '{key}' is out of range: {i}")));
    }
    let text = value
        .clone()
        .into_string()
        .map_err(|t| Error::value(op, format!("option '{key}' must be a name or integer, got {t}")))?;
    table
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&text))
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::value(op, format!("option '{key}': unknown value {text:?} (known: {})", names())))
}

/// getaddrinfo hints from `#{family, socktype, proto, flags}`.
fn gai_hints(op: &str, opts: &Opts) -> Result<dns_lookup::AddrInfoHints, Error> {
    let mut hints = dns_lookup::AddrInfoHints {
        address: match Family::from_opts(op, opts)? {
            Family::Any => libc::AF_UNSPEC,
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        },
        ..Default::default()
    };
    if let Some(v) = opts.get("socktype").filter(|v| !v.is_unit()) {
        hints.socktype = named_int(op, "socktype", v, SOCKTYPES)?;
    }
    if let Some(v) = opts.get("proto").filter(|v| !v.is_unit()) {
        let protos = [("tcp", libc::IPPROTO_TCP), ("udp", libc::IPPROTO_UDP)];
        hints.protocol = named_int(op, "proto", v, &protos)?;
    }
    if let Some(v) = opts.get("flags").filter(|v| !v.is_unit()) {
        hints.flags = match v.read_lock::<Array>() {
            Some(list) => {
                let mut bits = 0;
                for f in list.iter() {
                    bits |= named_int(op, "flags", f, GAI_FLAGS)?;
                }
                bits
            }
            None => named_int(op, "flags", v, GAI_FLAGS)?,
        };
    }
    Ok(hints)
}

/// One getaddrinfo result in Python's shape.
fn gai_entry(ai: &dns_lookup::AddrInfo) -> Dynamic {
    let mut m = rhai::Map::new();
    let family = match ai.address {
        libc::AF_INET => "inet".into(),
        libc::AF_INET6 => "inet6".into(),
        other => Dynamic::from_int(other.into()),
    };
    let socktype = SOCKTYPES
        .iter()
        .find(|(_, v)| *v == ai.socktype)
        .map_or_else(|| Dynamic::from_int(ai.socktype.into()), |(n, _)| (*n).into());
    m.insert("family".into(), family);
    m.insert("socktype".into(), socktype);
    m.insert("proto".into(), Dynamic::from_int(ai.protocol.into()));
    m.insert("canonname".into(), ai.canonname.clone().unwrap_or_default().into());
    m.insert("host".into(), ai.sockaddr.ip().to_string().into());
    m.insert("port".into(), Dynamic::from_int(ai.sockaddr.port().into()));
    m.into()
}

fn getaddrinfo_with(host: &Dynamic, service: &Dynamic, opts: rhai::Map) -> NativeResult<Array> {
    const OP: &str = "net::getaddrinfo";
    let opts = Opts::new(OP, opts, &["family", "socktype", "proto", "flags"])?;
    let hints = gai_hints(OP, &opts)?;
    let text = |v: &Dynamic, what: &str| -> Result<Option<String>, Error> {
        if v.is_unit() {
            Ok(None)
        } else if let Ok(i) = v.as_int() {
            Ok(Some(i.to_string()))
        } else {
            v.clone()
                .into_string()
                .map(Some)
                .map_err(|t| Error::value(OP, format!("{what} must be a string, integer or (), got {t}")))
        }
    };
    let (host, service) = (text(host, "host")?, text(service, "service")?);
    if host.is_none() && service.is_none() {
        return Err(Error::value(OP, "host and service cannot both be ()").into());
    }
    if let Some(h) = &host {
        permissions::check_lookup(OP, h)?;
    }
    let what = format!("{}:{}", host.as_deref().unwrap_or("*"), service.as_deref().unwrap_or("*"));
    let found = off_loop(OP, move || {
        dns_lookup::getaddrinfo(host.as_deref(), service.as_deref(), Some(hints))
            .map(|iter| iter.filter_map(Result::ok).collect::<Vec<_>>())
    })?;
    match found {
        Ok(list) => Ok(list.iter().map(gai_entry).collect()),
        Err(e) => Err(gai_error(OP, &what, e).into()),
    }
}

/// The services and protocols databases (`/etc/services`, `/etc/protocols`
/// through NSS) as Python's `socket` reads them. libc's lookups return a
/// pointer to static storage, so calls are serialised.
mod netdb {
    use std::ffi::{CStr, CString, c_char};
    use std::sync::Mutex;

    use crate::error::{Error, Kind};

    static LOCK: Mutex<()> = Mutex::new(());

    fn c_string(op: &str, what: &str, text: &str) -> Result<CString, Error> {
        CString::new(text).map_err(|_| Error::value(op, format!("{what} contains a NUL byte")))
    }

    fn opt_proto(op: &str, proto: Option<&str>) -> Result<Option<CString>, Error> {
        proto.map(|p| c_string(op, "protocol name", p)).transpose()
    }

    fn not_found(op: &str, what: &str) -> Error {
        Error::new(Kind::Dns, op, format!("{what} not found")).with_code("notfound")
    }

    /// Port of service `name` (for `proto`, or any).
    pub fn service_port(op: &str, name: &str, proto: Option<&str>) -> Result<u16, Error> {
        let c_name = c_string(op, "service name", name)?;
        let c_proto = opt_proto(op, proto)?;
        let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let proto_ptr = c_proto.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: both pointers are valid C strings (or null for the
        // protocol); the result points at libc's static storage, read
        // before the lock is released.
        let ent = unsafe { libc::getservbyname(c_name.as_ptr(), proto_ptr) };
        if ent.is_null() {
            return Err(not_found(op, "service/proto"));
        }
        // SAFETY: non-null result of getservbyname, valid until the next call.
        Ok(u16::from_be(unsafe { (*ent).s_port } as u16))
    }

    /// Name of the service on `port` (for `proto`, or any).
    pub fn service_name(op: &str, port: u16, proto: Option<&str>) -> Result<String, Error> {
        let c_proto = opt_proto(op, proto)?;
        let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let proto_ptr = c_proto.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: the protocol is a valid C string or null; the result is read under the lock.
        let ent = unsafe { libc::getservbyport(i32::from(port.to_be()), proto_ptr) };
        if ent.is_null() {
            return Err(not_found(op, "port/proto"));
        }
        // SAFETY: non-null result: s_name is a NUL-terminated string.
        Ok(unsafe { text((*ent).s_name) })
    }

    /// Number of protocol `name`.
    pub fn protocol_number(op: &str, name: &str) -> Result<i64, Error> {
        let c_name = c_string(op, "protocol name", name)?;
        let _guard = LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: valid C string; the result is read under the lock.
        let ent = unsafe { libc::getprotobyname(c_name.as_ptr()) };
        if ent.is_null() {
            return Err(not_found(op, "protocol"));
        }
        // SAFETY: non-null result of getprotobyname.
        Ok(i64::from(unsafe { (*ent).p_proto }))
    }

    /// # Safety
    /// `ptr` must be a valid NUL-terminated string.
    unsafe fn text(ptr: *const c_char) -> String {
        // SAFETY: guaranteed by the caller.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }
}

/// Python's `socket.getfqdn`: the first name containing a dot among the
/// host name of `name`'s address (found by getnameinfo) and `name`; else
/// that host name; `name` itself if the lookups fail. With an allow-list,
/// an address is looked up only if listed, a name only if listed.
fn getfqdn_of(name: &str) -> NativeResult<String> {
    const OP: &str = "net::getfqdn";
    let name = name.trim();
    let name = if name.is_empty() || name == "0.0.0.0" || name == "::" {
        dns_lookup::get_hostname().map_err(|e| Error::io(OP, &e))?
    } else {
        name.to_string()
    };
    match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => permissions::check_reverse(OP, ip)?,
        Err(_) => permissions::check_lookup(OP, &name)?,
    }
    let owned = name.clone();
    let found = off_loop(OP, move || {
        let addr = dns_lookup::getaddrinfo(Some(&owned), None, None).ok()?.filter_map(Result::ok).next()?.sockaddr;
        dns_lookup::getnameinfo(&addr, libc::NI_NAMEREQD).ok().map(|(host, _)| host)
    })?;
    Ok(found.unwrap_or(name))
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
    if let Some(z) = handle.read_lock::<crate::zmq::ZmqSock>() {
        return Some(Ok(z.readable()));
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

fn getservbyport_proto_opt(port: INT, proto: Option<&str>) -> NativeResult<String> {
    const OP: &str = "net::getservbyport";
    let port = u16::try_from(port).map_err(|_| Error::value(OP, format!("port must be 0-65535, got {port}")))?;
    Ok(netdb::service_name(OP, port, proto)?)
}

/// The `net::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// Resolve `host` and `service` like Python's `socket.getaddrinfo`:
    /// an array of `#{family, socktype, proto, canonname, host, port}`.
    /// `host` or `service` may be `()`; `service` is a name or a port.
    /// With an allow-list, a `host` name must be listed (`permission` error).
    ///
    /// ```rhai
    /// for ai in net::getaddrinfo("localhost", 80) { print(`${ai.family} ${ai.host}:${ai.port}`) }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn getaddrinfo(host: Dynamic, service: Dynamic) -> NativeResult<Array> {
        getaddrinfo_with(&host, &service, rhai::Map::new())
    }

    /// `getaddrinfo` with hints: `family` (`"inet"`, `"inet6"`), `socktype`
    /// (`"stream"`, `"dgram"`, `"raw"` or a number), `proto` (`"tcp"`,
    /// `"udp"` or a number), `flags` (names such as `"canonname"`,
    /// `"passive"`, `"numerichost"`, `"addrconfig"`, or an array of them).
    ///
    /// ```rhai
    /// let ai = net::getaddrinfo("localhost", "http", #{family: "inet", socktype: "stream", flags: ["canonname"]});
    /// print(ai[0].canonname);
    /// ```
    #[rhai_fn(name = "getaddrinfo", return_raw)]
    pub fn getaddrinfo_opts(host: Dynamic, service: Dynamic, opts: rhai::Map) -> NativeResult<Array> {
        getaddrinfo_with(&host, &service, opts)
    }

    /// The port of a service by name, as `socket.getservbyname`.
    ///
    /// ```rhai
    /// assert(net::getservbyname("smtp") == 25);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn getservbyname(name: &str) -> NativeResult<INT> {
        Ok(netdb::service_port("net::getservbyname", name, None)?.into())
    }

    /// The port of a service for protocol `proto` (`"tcp"`, `"udp"`).
    ///
    /// ```rhai
    /// print(net::getservbyname("domain", "udp"));
    /// ```
    #[rhai_fn(name = "getservbyname", return_raw)]
    pub fn getservbyname_proto(name: &str, proto: &str) -> NativeResult<INT> {
        Ok(netdb::service_port("net::getservbyname", name, Some(proto))?.into())
    }

    /// The service name of a port, as `socket.getservbyport`.
    ///
    /// ```rhai
    /// assert(net::getservbyport(80) == "http");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn getservbyport(port: INT) -> NativeResult<String> {
        getservbyport_proto_opt(port, None)
    }

    /// The service name of a port for protocol `proto`.
    ///
    /// ```rhai
    /// print(net::getservbyport(53, "udp"));
    /// ```
    #[rhai_fn(name = "getservbyport", return_raw)]
    pub fn getservbyport_proto(port: INT, proto: &str) -> NativeResult<String> {
        getservbyport_proto_opt(port, Some(proto))
    }

    /// The number of a protocol by name, as `socket.getprotobyname`.
    ///
    /// ```rhai
    /// assert(net::getprotobyname("tcp") == 6);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn getprotobyname(name: &str) -> NativeResult<INT> {
        Ok(netdb::protocol_number("net::getprotobyname", name)?)
    }

    /// This machine's host name, as `socket.gethostname`.
    ///
    /// ```rhai
    /// print(net::gethostname());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn gethostname() -> NativeResult<String> {
        dns_lookup::get_hostname().map_err(|e| Error::io("net::gethostname", &e).into())
    }

    /// This machine's fully qualified name, as `socket.getfqdn()`.
    ///
    /// ```rhai
    /// print(net::getfqdn());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn getfqdn() -> NativeResult<String> {
        getfqdn_of("")
    }

    /// The fully qualified name of `name`, as `socket.getfqdn(name)`.
    /// With an allow-list, `name` (a name or an address) must be listed.
    ///
    /// ```rhai
    /// print(net::getfqdn("localhost"));
    /// ```
    #[rhai_fn(name = "getfqdn", return_raw)]
    pub fn getfqdn_name(name: &str) -> NativeResult<String> {
        getfqdn_of(name)
    }

    /// Bend every connection opened or accepted from now on (TCP, TLS,
    /// HTTP, memcached) through `faults`: a string such as
    /// `"fragment=1..7,delay=20ms~5ms,seed=42"` or a map of the same names
    /// (`fragment`, `fragment_pause`, `delay`, `bandwidth`, `drop_after`,
    /// `reset_probability`, `stall`, `corrupt`, `direction`, `seed`; see the
    /// faults reference). Returns the faults in full, with the seed drawn
    /// when none was given: print it, and a failing run can be repeated.
    /// `()` or `""` turns them off. Connections already open keep theirs.
    ///
    /// ```rhai
    /// print(net::faults("fragment"));            // "fragment=1..7,seed=…"
    /// net::faults(#{delay: "50ms", direction: "down", seed: 7});
    /// net::faults(());
    /// ```
    #[rhai_fn(name = "faults", return_raw)]
    pub fn set_faults(faults: Dynamic) -> NativeResult<Dynamic> {
        let spec = crate::faults::Spec::from_dynamic_or_off("net::faults", &faults)?;
        let text = spec.as_ref().map_or(Dynamic::UNIT, |s| s.to_string().into());
        crate::faults::set(spec);
        Ok(text)
    }

    /// The faults new connections meet now (see `net::faults(spec)`), or `()`.
    ///
    /// ```rhai
    /// if net::faults() != () { print(`faults on: ${net::faults()}`) }
    /// ```
    #[rhai_fn(name = "faults")]
    pub fn get_faults() -> Dynamic {
        crate::faults::active().map_or(Dynamic::UNIT, |s| s.to_string().into())
    }

    /// Write every connection's traffic from now on to the pcapng file
    /// `path` (as `--pcap FILE`; a capture already on is finished first);
    /// `()` finishes the capture. Open it with Wireshark or `tshark -r`.
    ///
    /// ```rhai
    /// net::capture("session.pcapng");
    /// let c = tcp::connect("127.0.0.1", 7000);
    /// c.send_line("hello");
    /// net::capture(());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn capture(path: Dynamic) -> NativeResult<()> {
        const OP: &str = "net::capture";
        let done = if path.is_unit() {
            crate::capture::stop_pcap()
        } else {
            let p = path.into_string().map_err(|t| Error::value(OP, format!("the path is a string, not {t}")))?;
            crate::capture::start(std::path::Path::new(&p)).map_err(|e| Error::io(OP, &e).with_peer(p))?;
            Ok(())
        };
        done.map_err(|e| Error::io(OP, &e).into())
    }

    /// The TCP conversations of a recording (`--record FILE`, `netscript
    /// record --out FILE`): an array of `#{conn, client, server, messages}`
    /// whose `messages` are `#{from: "client" | "server", data: blob, at}`
    /// (`at`: seconds since the conversation's first bytes), consecutive
    /// chunks from one side joined. `mock::replay` plays them.
    ///
    /// ```rhai
    /// for c in net::recording("smtp.jsonl") {
    ///     print(`${c.client} -> ${c.server}: ${c.messages.len()} messages`);
    /// }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn recording(path: &str) -> NativeResult<Array> {
        const OP: &str = "net::recording";
        let max = match crate::runtime::max_array_size() {
            0 => usize::MAX,
            n => n,
        };
        let read = crate::capture::recording::read(std::path::Path::new(path), max)
            .map_err(|e| Error::io(OP, &e).with_peer(path))?;
        Ok(read
            .into_iter()
            .map(|c| {
                let mut m = rhai::Map::new();
                m.insert("conn".into(), Dynamic::from(c.conn as i64));
                m.insert("client".into(), c.client.into());
                m.insert("server".into(), c.server.into());
                let messages: Array = c
                    .messages
                    .into_iter()
                    .map(|msg| {
                        let mut x = rhai::Map::new();
                        x.insert("from".into(), if msg.from_client { "client" } else { "server" }.into());
                        x.insert("data".into(), Dynamic::from_blob(msg.data));
                        x.insert("at".into(), Dynamic::from_float(msg.at));
                        Dynamic::from_map(x)
                    })
                    .collect();
                m.insert("messages".into(), Dynamic::from_array(messages));
                Dynamic::from_map(m)
            })
            .collect())
    }

    /// Wait until at least one of `handles` (TCP connections, listeners,
    /// UDP sockets, ZeroMQ sockets) is readable, at most `timeout` seconds (`()` = forever);
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
        // Report every handle ready now, not only the first to wake. Each
        // test runs outside tokio's cooperative budget: a task that has
        // spent it (about 40 select-and-recv rounds on a ZeroMQ socket,
        // whose lock counts against it) would otherwise see its socket's
        // lock wait, and a ready handle would be left out of the result.
        let mut out = Array::new();
        for h in handles {
            if let Some(Ok(f)) = readable(&h)
                && tokio::task::unconstrained(f).now_or_never().is_some()
            {
                out.push(h);
            }
        }
        Ok(out)
    }
}

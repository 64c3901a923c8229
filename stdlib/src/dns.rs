//! `dns::` — DNS queries of any common record type (a scriptable `dig`),
//! reverse lookups and mail routing (`mx_hosts`), on hickory-resolver.
//!
//! Results are arrays of typed maps, one per answer record, each with the
//! owner `name`, `type`, `ttl`, `data` (the record in zone-file text, as dig
//! prints it) and fields of its type (`address`, `target`, `preference` and
//! `exchange`, …). Failures are `dns` errors with a `code`: `nxdomain`,
//! `nodata`, `servfail`, `refused` (or another response code's name); no
//! reply at all is a `timeout` error.
//!
//! Resolvers are built once per distinct option set and kept for the host's
//! lifetime, so a loop of queries reuses sockets instead of re-reading
//! `/etc/resolv.conf` each time. They do not cache answers: every call asks
//! the server, as dig does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::{Rc, Weak};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use crate::args::Opts;
use crate::error::{Error, Kind, NativeResult};
use crate::permissions;
use crate::runtime::{self, Context};

const OPTS: &[&str] = &["nameserver", "timeout", "tcp", "attempts"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_ATTEMPTS: usize = 2;

/// What makes two resolvers different.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    nameserver: Option<SocketAddr>,
    timeout: Duration,
    tcp: bool,
    attempts: usize,
}

impl Key {
    fn from_opts(op: &str, opts: &Opts) -> Result<Self, Error> {
        let nameserver = opts.string("nameserver")?.map(|s| parse_nameserver(op, &s)).transpose()?;
        let timeout = opts.duration("timeout", Some(DEFAULT_TIMEOUT))?.unwrap_or(DEFAULT_TIMEOUT);
        let attempts = opts.int("attempts", DEFAULT_ATTEMPTS as i64)?;
        let attempts = usize::try_from(attempts)
            .ok()
            .filter(|a| (1..=10).contains(a))
            .ok_or_else(|| Error::value(op, format!("option 'attempts' must be 1 to 10, got {attempts}")))?;
        Ok(Self { nameserver, timeout, tcp: opts.bool("tcp", false)?, attempts })
    }
}

/// `"127.0.0.1:5353"`, `"[::1]:53"`, or a bare IP (port 53).
fn parse_nameserver(op: &str, text: &str) -> Result<SocketAddr, Error> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| Error::value(op, format!("nameserver must be an IP address with optional :port, got {text:?}")))
}

/// A built resolver and the servers it talks to (for permission checks).
struct Cached {
    resolver: TokioResolver,
    servers: Vec<SocketAddr>,
}

/// The resolvers of one host (a new host on the same thread starts afresh:
/// the old one's runtime, which ran their sockets, is gone).
struct Resolvers {
    host: Weak<Context>,
    by_key: HashMap<Key, Rc<Cached>>,
}

thread_local! {
    static RESOLVERS: RefCell<Resolvers> = RefCell::new(Resolvers { host: Weak::new(), by_key: HashMap::new() });
}

/// The resolver for `key`, built on first use.
fn resolver(op: &str, key: &Key) -> Result<Rc<Cached>, Error> {
    let ctx = runtime::context();
    RESOLVERS.with(|cell| {
        let mut cache = cell.borrow_mut();
        if !std::ptr::eq(cache.host.as_ptr(), Rc::as_ptr(&ctx)) {
            *cache = Resolvers { host: Rc::downgrade(&ctx), by_key: HashMap::new() };
        }
        if let Some(found) = cache.by_key.get(key) {
            return Ok(found.clone());
        }
        let built = Rc::new(build(op, key)?);
        cache.by_key.insert(key.clone(), built.clone());
        Ok(built)
    })
}

fn build(op: &str, key: &Key) -> Result<Cached, Error> {
    let connections = |port: u16| {
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = port;
        if key.tcp {
            return vec![tcp];
        }
        let mut udp = ConnectionConfig::udp();
        udp.port = port;
        vec![udp, tcp]
    };
    let (config, mut opts) = match key.nameserver {
        Some(ns) => (
            ResolverConfig::from_name_servers(vec![NameServerConfig::new(ns.ip(), true, connections(ns.port()))]),
            ResolverOpts::default(),
        ),
        None => {
            let (system, opts) = hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                Error::new(Kind::Dns, op, format!("cannot read the system resolver configuration: {e}"))
            })?;
            let (domain, search, servers) = system.into_parts();
            let servers = servers
                .into_iter()
                .map(|s| {
                    let port = s.connections.first().map_or(53, |c| c.port);
                    NameServerConfig::new(s.ip, s.trust_negative_responses, connections(port))
                })
                .collect();
            (ResolverConfig::from_parts(domain, search, servers), opts)
        }
    };
    let servers = config
        .name_servers()
        .iter()
        .flat_map(|s| s.connections.iter().map(move |c| SocketAddr::new(s.ip, c.port)))
        .collect::<Vec<_>>();
    opts.timeout = key.timeout;
    opts.attempts = key.attempts;
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.try_tcp_on_error = !key.tcp;
    // Many tasks may share one resolver: let them all be in flight at once.
    opts.max_active_requests = 1024;
    let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| Error::new(Kind::Dns, op, format!("cannot set up the resolver: {e}")))?;
    Ok(Cached { resolver, servers })
}

/// Turn a resolver failure into a `dns` error with a `code`, or a `timeout`.
fn lookup_error(op: &str, name: &str, rtype: RecordType, err: &NetError) -> Error {
    let rcode = match err {
        NetError::Dns(DnsError::NoRecordsFound(nr)) => Some(nr.response_code),
        NetError::Dns(DnsError::ResponseCode(rc)) => Some(*rc),
        _ => None,
    };
    let (kind, code, detail) = match (err, rcode) {
        (NetError::Timeout, _) => (Kind::Timeout, "timeout".into(), "no reply from the name server".into()),
        (_, Some(ResponseCode::NXDomain)) => (Kind::Dns, "nxdomain".into(), "name not found (NXDOMAIN)".into()),
        (_, Some(ResponseCode::NoError)) => {
            (Kind::Dns, "nodata".into(), format!("the name has no {rtype} records (NODATA)"))
        }
        (_, Some(rc)) => (Kind::Dns, format!("{rc:?}").to_lowercase(), format!("the server answered {rc:?} ({rc})")),
        (NetError::Io(io), _) => (Kind::of_io(io), "io".into(), io.to_string()),
        (other, _) => (Kind::Dns, "error".into(), other.to_string()),
    };
    Error::new(kind, op, format!("{name} {rtype}: {detail}")).with_code(code)
}

/// Parse a record type name (`"MX"`, `"aaaa"`).
fn record_type(op: &str, text: &str) -> Result<RecordType, Error> {
    const KNOWN: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"];
    let upper = text.to_ascii_uppercase();
    if !KNOWN.contains(&upper.as_str()) {
        return Err(Error::value(op, format!("unsupported record type {text:?} (supported: {})", KNOWN.join(", "))));
    }
    RecordType::from_str(&upper).map_err(|e| Error::value(op, format!("bad record type {text:?}: {e}")))
}

/// Query `name` for `rtype` with `key`'s resolver; the answer records.
fn query(op: &str, name: &str, rtype: RecordType, key: &Key) -> NativeResult<Vec<Record>> {
    let qname = Name::from_str(name).map_err(|e| Error::value(op, format!("bad domain name {name:?}: {e}")))?;
    let cached = resolver(op, key)?;
    for server in &cached.servers {
        permissions::check_connect(op, &server.ip().to_string(), server.port())?;
    }
    let (op_owned, name_owned) = (op.to_string(), name.to_string());
    runtime::block_on(async move {
        let result = cached.resolver.lookup(qname.clone(), rtype).await;
        // The resolver caches whatever it is configured with; every call
        // here must ask the server, so drop the entry in the same poll that
        // stored it (no other task runs in between on this thread).
        cached.resolver.clear_lookup_cache(qname, rtype);
        match result {
            Ok(lookup) => Ok(lookup.answers().iter().filter(|r| r.record_type() == rtype).cloned().collect()),
            Err(e) => Err(lookup_error(&op_owned, &name_owned, rtype, &e)),
        }
    })?
    .map_err(Into::into)
}

/// A domain name as text, without the root's trailing dot.
fn host_name(name: &Name) -> String {
    let text = name.to_string();
    text.strip_suffix('.').map_or(text.clone(), str::to_string)
}

/// One answer record as a script map.
fn record_map(record: &Record) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), record.name.to_string().into());
    m.insert("type".into(), record.record_type().to_string().into());
    m.insert("ttl".into(), Dynamic::from_int(i64::from(record.ttl)));
    m.insert("data".into(), record.data.to_string().into());
    let mut put = |k: &str, v: Dynamic| {
        m.insert(k.into(), v);
    };
    let name = |n: &Name| Dynamic::from(n.to_string());
    let int = |i: i64| Dynamic::from_int(i);
    match &record.data {
        RData::A(a) => put("address", a.0.to_string().into()),
        RData::AAAA(a) => put("address", a.0.to_string().into()),
        RData::CNAME(t) => put("target", name(&t.0)),
        RData::NS(t) => put("target", name(&t.0)),
        RData::PTR(t) => put("target", name(&t.0)),
        RData::MX(mx) => {
            put("preference", int(mx.preference.into()));
            put("exchange", name(&mx.exchange));
        }
        RData::SRV(srv) => {
            put("priority", int(srv.priority.into()));
            put("weight", int(srv.weight.into()));
            put("port", int(srv.port.into()));
            put("target", name(&srv.target));
        }
        RData::SOA(soa) => {
            put("mname", name(&soa.mname));
            put("rname", name(&soa.rname));
            put("serial", int(soa.serial.into()));
            put("refresh", int(soa.refresh.into()));
            put("retry", int(soa.retry.into()));
            put("expire", int(soa.expire.into()));
            put("minimum", int(soa.minimum.into()));
        }
        RData::TXT(txt) => {
            let strings: Array =
                txt.txt_data.iter().map(|s| Dynamic::from(String::from_utf8_lossy(s).into_owned())).collect();
            put("strings", strings.into());
        }
        RData::CAA(caa) => {
            put("flags", int(caa.flags().into()));
            put("tag", caa.tag.clone().into());
            put("value", String::from_utf8_lossy(&caa.value).into_owned().into());
        }
        _ => {}
    }
    m
}

fn resolve_with(name: &str, rtype: &str, opts: Map) -> NativeResult<Array> {
    const OP: &str = "dns::resolve";
    let opts = Opts::new(OP, opts, OPTS)?;
    let key = Key::from_opts(OP, &opts)?;
    let rtype = record_type(OP, rtype)?;
    Ok(query(OP, name, rtype, &key)?.iter().map(|r| record_map(r).into()).collect())
}

fn reverse_with(ip: &str, opts: Map) -> NativeResult<Array> {
    const OP: &str = "dns::reverse";
    let opts = Opts::new(OP, opts, OPTS)?;
    let key = Key::from_opts(OP, &opts)?;
    let addr: IpAddr = ip
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| Error::value(OP, format!("expected an IP address, got {ip:?}")))?;
    let arpa = Name::from(addr).to_string();
    Ok(query(OP, &arpa, RecordType::PTR, &key)?
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(Dynamic::from(host_name(&p.0))),
            _ => None,
        })
        .collect())
}

fn mx_hosts_with(domain: &str, opts: Map) -> NativeResult<Array> {
    const OP: &str = "dns::mx_hosts";
    let opts = Opts::new(OP, opts, OPTS)?;
    let key = Key::from_opts(OP, &opts)?;
    let mxs = match query(OP, domain, RecordType::MX, &key) {
        Ok(records) => records,
        Err(e) if is_nodata(&e) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut mxs: Vec<(u16, String)> = mxs
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((mx.preference, host_name(&mx.exchange))),
            _ => None,
        })
        .collect();
    if mxs.is_empty() {
        // RFC 5321 §5.1: no MX means the domain itself is the mail host,
        // provided it has an address.
        for rtype in [RecordType::A, RecordType::AAAA] {
            match query(OP, domain, rtype, &key) {
                Ok(r) if !r.is_empty() => return Ok(vec![Dynamic::from(domain.trim_end_matches('.').to_string())]),
                Ok(_) => {}
                Err(e) if is_nodata(&e) => {}
                Err(e) => return Err(e),
            }
        }
        return Err(Error::new(Kind::Dns, OP, format!("{domain} has no MX, A or AAAA records"))
            .with_code("nodata")
            .into());
    }
    // A null MX (RFC 7505: one record, target ".") means "accepts no mail".
    if mxs.len() == 1 && mxs[0].1.is_empty() {
        return Err(Error::new(Kind::Dns, OP, format!("{domain} accepts no mail (null MX)"))
            .with_code("nullmx")
            .into());
    }
    mxs.sort_by_key(|(pref, _)| *pref);
    Ok(mxs.into_iter().map(|(_, host)| Dynamic::from(host)).collect())
}

/// Whether a raised error is a `dns` error with code `nodata`.
fn is_nodata(err: &EvalAltResult) -> bool {
    match crate::error::innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => {
            v.read_lock::<Map>().and_then(|m| m.get("code").map(|c| c.to_string() == "nodata")).unwrap_or(false)
        }
        _ => false,
    }
}

/// The `dns::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// Query `name` for records of `type` (A, AAAA, CNAME, MX, NS, PTR,
    /// SOA, SRV, TXT, CAA) with the system's name servers; an array of
    /// record maps with `name`, `type`, `ttl`, `data` and typed fields.
    /// With an allow-list, the name servers must be allowed.
    ///
    /// ```rhai
    /// for mx in dns::resolve("example.com", "MX") { print(`${mx.preference} ${mx.exchange}`) }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn resolve(name: &str, rtype: &str) -> NativeResult<Array> {
        resolve_with(name, rtype, Map::new())
    }

    /// `resolve` with options: `nameserver` (`"127.0.0.1:5353"`), `timeout`
    /// (seconds per try, default 5), `tcp` (query over TCP), `attempts`
    /// (tries per server, default 2).
    ///
    /// ```rhai
    /// let soa = dns::resolve("example.test", "SOA", #{nameserver: "127.0.0.1:5353", timeout: 2})[0];
    /// print(soa.serial);
    /// ```
    #[rhai_fn(name = "resolve", return_raw)]
    pub fn resolve_opts(name: &str, rtype: &str, opts: Map) -> NativeResult<Array> {
        resolve_with(name, rtype, opts)
    }

    /// The host names of `ip` from its PTR records (reverse lookup).
    ///
    /// ```rhai
    /// print(dns::reverse("127.0.0.1"));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn reverse(ip: &str) -> NativeResult<Array> {
        reverse_with(ip, Map::new())
    }

    /// `reverse` with the options of `resolve`.
    ///
    /// ```rhai
    /// let names = dns::reverse("192.0.2.1", #{nameserver: "127.0.0.1:5353"});
    /// ```
    #[rhai_fn(name = "reverse", return_raw)]
    pub fn reverse_opts(ip: &str, opts: Map) -> NativeResult<Array> {
        reverse_with(ip, opts)
    }

    /// The mail hosts of `domain`, best first: its MX targets sorted by
    /// preference, or the domain itself when it has no MX but an address
    /// (RFC 5321 §5.1).
    ///
    /// ```rhai
    /// let hosts = dns::mx_hosts("example.com");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn mx_hosts(domain: &str) -> NativeResult<Array> {
        mx_hosts_with(domain, Map::new())
    }

    /// `mx_hosts` with the options of `resolve`.
    ///
    /// ```rhai
    /// let hosts = dns::mx_hosts("example.test", #{nameserver: "127.0.0.1:5353"});
    /// ```
    #[rhai_fn(name = "mx_hosts", return_raw)]
    pub fn mx_hosts_opts(domain: &str, opts: Map) -> NativeResult<Array> {
        mx_hosts_with(domain, opts)
    }
}

//! `memcache::` — a memcached client sharded like pylibmc (libmemcached).
//!
//! A client holds a server list and a ring ([`ketama`]) that sends each key
//! to the server libmemcached would pick for the same list and options, so
//! a script and a pylibmc program share one cache. Each server has one
//! connection shared by every call and task ([`pipe`]): requests made at
//! once are written together and the replies read in order, in the text
//! protocol ([`protocol`]). `get_multi` sends one pipelined request per
//! server and waits for all servers at once. A server that fails
//! raises `refused`/`timeout`/`closed` for its own keys only; with
//! `remove_failed: N` it leaves the ring after N failures in a row and comes
//! back after `retry_timeout` seconds, as libmemcached's auto-eject does.
//!
//! ```rhai
//! let mc = memcache::client(["127.0.0.1:11211", "127.0.0.1:11212"]);
//! mc.set("greeting", "hello", 60);
//! print(mc.get("greeting"));          // hello
//! print(mc.get_multi(["greeting", "other"]));
//! ```

pub mod ketama;
mod pipe;
pub mod protocol;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rhai::plugin::*;
use rhai::{Array, Dynamic, INT, Map};

use crate::args::Opts;
use crate::error::{Error, Kind, NativeResult};
use crate::net::{self, Family};
use crate::runtime;
use ketama::{Distribution, Hash, Node, Ring};
use protocol::Expect;
use protocol::{Failure, Frame, Status};

/// Default timeout of each call (connect, send and reply together).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// libmemcached's default `retry_timeout`.
const DEFAULT_RETRY: Duration = Duration::from_secs(2);
/// Default largest value accepted in a reply (memcached's default item
/// size limit is 1 MiB; servers started with `-I` may store more).
const DEFAULT_MAX_VALUE: usize = 16 << 20;
/// Keys per `get` command of a `get_multi` (memcached splits longer lines
/// anyway; this keeps each one well under its limits). The commands to one
/// server go out in one write and their replies are read in turn.
const KEYS_PER_GET: usize = 100;
/// Most `STAT` lines accepted from one server.
const MAX_STATS: usize = 10_000;

const CLIENT_OPTS: &[&str] = &[
    "distribution",
    "hash",
    "weighted",
    "timeout",
    "connect_timeout",
    "remove_failed",
    "retry_timeout",
    "max_value",
    "bytes",
];
const STORE_OPTS: &[&str] = &["expire", "flags"];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recover the data if one did.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A memcached client handle; clones share servers, connections and the ring.
#[derive(Clone)]
pub struct Client(Arc<Inner>);

struct Inner {
    servers: Vec<Arc<Server>>,
    nodes: Vec<Node>,
    distribution: Distribution,
    hash: Hash,
    weighted: bool,
    ring: Mutex<RingState>,
    timeout_ms: AtomicU64,
    settings: Settings,
}

/// What each exchange needs, copied into its future.
#[derive(Clone, Copy)]
struct Settings {
    connect_timeout: Duration,
    remove_failed: u32,
    retry_timeout: Duration,
    max_value: usize,
    bytes: bool,
}

struct RingState {
    ring: Ring,
    /// The earliest time an ejected server is due back (then the ring is rebuilt).
    next_rebuild: Option<Instant>,
}

struct Server {
    /// `host:port` as scripts see it.
    label: String,
    addr: SocketAddr,
    /// Its one connection, shared by every call.
    pipe: Mutex<pipe::Pipe>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    /// Failures in a row.
    failures: u32,
    /// Ejected from the ring until then (`remove_failed`).
    dead_until: Option<Instant>,
}

/// A parsed server entry.
struct Spec {
    host: String,
    port: u16,
    weight: u32,
}

/// Whether an error means the server (not the request) failed.
fn is_server_failure(err: &Error) -> bool {
    matches!(
        err.kind(),
        Kind::Refused | Kind::Timeout | Kind::Reset | Kind::Closed | Kind::Io | Kind::Decode | Kind::Unreachable
    )
}

/// Send `request` to `server` and read its reply units, within `deadline`
/// (see [`pipe`]). A reply with an error unit still counts as an answer.
async fn exchange(
    server: Arc<Server>,
    op: &'static str,
    settings: Settings,
    request: Vec<u8>,
    expect: Expect,
    deadline: tokio::time::Instant,
) -> Result<Vec<Frame>, Error> {
    let label = server.clone();
    let started = std::time::Instant::now();
    let result =
        match tokio::time::timeout_at(deadline, pipe::Call::new(server, op, settings, request, expect, deadline)).await
        {
            Ok(result) => result,
            Err(_) => {
                Err(Error::new(Kind::Timeout, op, "no reply within the client's timeout").with_peer(&label.label))
            }
        };
    if crate::metrics::on() {
        use crate::metrics::{self, MetricKind};
        let failed = result.is_err();
        metrics::time("memcache_req_duration", &[("op", op)], started.elapsed());
        metrics::record(MetricKind::Counter, false, "memcache_reqs", &[("op", op)], 1.0);
        metrics::record(MetricKind::Rate, false, "memcache_req_failed", &[], f64::from(u8::from(failed)));
    }
    result
}

/// The error for a server's error reply.
fn failure_error(op: &str, peer: &str, failure: &Failure) -> Error {
    match failure {
        Failure::Unknown => Error::value(op, "the server does not know this command").with_code("error"),
        Failure::Client(msg) => {
            Error::value(op, format!("the server rejected the request: {msg}")).with_code("client_error")
        }
        Failure::Server(msg) => {
            let kind = if msg.contains("too large") || msg.contains("out of memory") { Kind::Limit } else { Kind::Io };
            Error::new(kind, op, format!("the server failed: {msg}")).with_code("server_error")
        }
    }
    .with_peer(peer)
}

fn unexpected(op: &str, peer: &str, frame: &Frame) -> Error {
    match frame {
        Frame::Failure(f) => failure_error(op, peer, f),
        other => Error::new(Kind::Decode, op, format!("unexpected reply {other:?}")).with_peer(peer),
    }
}

/// Check a key as memcached requires.
fn key_arg<'a>(op: &str, key: &'a str) -> Result<&'a [u8], Error> {
    match protocol::key_problem(key.as_bytes()) {
        None => Ok(key.as_bytes()),
        Some(why) => Err(Error::value(op, format!("{why}: {key:?}"))),
    }
}

/// A value to store: a blob, a string, or a number (stored as its text, so
/// `incr` works on it).
fn value_arg(op: &str, value: &Dynamic) -> Result<Vec<u8>, Error> {
    if let Ok(i) = value.as_int() {
        return Ok(i.to_string().into_bytes());
    }
    crate::bytes::data_arg(value, op).map(std::borrow::Cow::into_owned)
}

/// Expire and flags of a storage call: `()`, seconds, or `#{expire, flags}`.
fn store_opts(op: &str, extra: &Dynamic) -> Result<(u32, u32), Error> {
    let num = |what: &str, v: i64| {
        u32::try_from(v).map_err(|_| Error::value(op, format!("{what} must be 0..4294967295, got {v}")))
    };
    if extra.is_unit() {
        return Ok((0, 0));
    }
    if let Ok(secs) = extra.as_int() {
        return Ok((num("expire", secs)?, 0));
    }
    match extra.read_lock::<Map>() {
        Some(map) => {
            let opts = Opts::new(op, map.clone(), STORE_OPTS)?;
            Ok((num("expire", opts.int("expire", 0)?)?, num("flags", opts.int("flags", 0)?)?))
        }
        None => {
            Err(Error::value(op, format!("expected expire seconds or #{{expire, flags}}, got {}", extra.type_name())))
        }
    }
}

/// Parse one entry of the server list.
fn parse_spec(op: &str, entry: &Dynamic) -> Result<Spec, Error> {
    let port_of = |p: i64| u16::try_from(p).ok().filter(|&p| p != 0);
    if let Some(s) = entry.read_lock::<rhai::ImmutableString>() {
        let bad_port = || Error::value(op, format!("bad port in server {:?}", s.as_str()));
        // `host`, `host:port`, `[v6]`, `[v6]:port`; a bare v6 address has no port.
        let (host, port) = match s.strip_prefix('[').and_then(|r| r.split_once(']')) {
            Some((h, "")) => (h, None),
            Some((h, rest)) => (h, Some(rest.strip_prefix(':').ok_or_else(bad_port)?)),
            None => match s.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (s.as_str(), None),
            },
        };
        let port = match port {
            None => ketama::DEFAULT_PORT,
            Some(p) => p.parse::<i64>().ok().and_then(port_of).ok_or_else(bad_port)?,
        };
        if host.is_empty() {
            return Err(Error::value(op, format!("no host in server {:?}", s.as_str())));
        }
        return Ok(Spec { host: host.to_string(), port, weight: 1 });
    }
    if let Some(map) = entry.read_lock::<Map>() {
        let opts = Opts::new(op, map.clone(), &["host", "port", "weight"])?;
        let host = opts.string("host")?.ok_or_else(|| Error::value(op, "a server map needs 'host'"))?;
        let port = opts.int("port", i64::from(ketama::DEFAULT_PORT))?;
        let port = port_of(port).ok_or_else(|| Error::value(op, format!("bad port {port}")))?;
        let weight = opts.int("weight", 1)?;
        let weight = u32::try_from(weight)
            .ok()
            .filter(|&w| w >= 1)
            .ok_or_else(|| Error::value(op, format!("weight must be a positive integer, got {weight}")))?;
        return Ok(Spec { host, port, weight });
    }
    Err(Error::value(op, format!("a server is \"host:port\" or #{{host, port, weight}}, got {}", entry.type_name())))
}

impl Client {
    /// A client over `servers` with `opts` (see the module docs).
    pub fn new(servers: &Array, opts: &Opts) -> NativeResult<Self> {
        const OP: &str = "memcache::client";
        if servers.is_empty() {
            return Err(Error::value(OP, "the server list is empty").into());
        }
        let specs = servers.iter().map(|s| parse_spec(OP, s)).collect::<Result<Vec<_>, _>>()?;
        let distribution = match opts.string("distribution")?.as_deref() {
            None | Some("ketama" | "consistent") => Distribution::Ketama,
            Some("modula") => Distribution::Modula,
            Some(other) => {
                return Err(Error::value(OP, format!("unknown distribution {other:?} (ketama, modula)")).into());
            }
        };
        let weighted_opt = opts.bool("weighted", false)?;
        let hash = match opts.string("hash")? {
            // libmemcached's ketama_weighted behaviour switches the key hash to md5.
            None if weighted_opt => Hash::Md5,
            None => Hash::OneAtATime,
            Some(name) => Hash::named(&name).ok_or_else(|| {
                let known: Vec<&str> = ketama::HASHES.iter().map(|(n, _)| *n).collect();
                Error::value(OP, format!("unknown hash {name:?} (known: {})", known.join(", ")))
            })?,
        };
        // As in libmemcached, a weight above 1 turns weighted points on.
        let weighted = distribution == Distribution::Ketama && (weighted_opt || specs.iter().any(|s| s.weight > 1));
        let timeout = opts.duration("timeout", Some(DEFAULT_TIMEOUT))?;
        let settings = Settings {
            connect_timeout: opts.duration("connect_timeout", timeout)?.unwrap_or(Duration::from_secs(3600)),
            remove_failed: u32::try_from(opts.int("remove_failed", 0)?)
                .map_err(|_| Error::value(OP, "remove_failed must be 0 or more"))?,
            retry_timeout: opts.duration("retry_timeout", Some(DEFAULT_RETRY))?.unwrap_or(DEFAULT_RETRY),
            max_value: opts.size("max_value", DEFAULT_MAX_VALUE)?,
            bytes: opts.bool("bytes", false)?,
        };
        let mut servers = Vec::with_capacity(specs.len());
        for spec in &specs {
            crate::permissions::check_connect(OP, &spec.host, spec.port)?;
            let addr = net::resolve(OP, &spec.host, spec.port, Family::Any, timeout)?[0];
            servers.push(Arc::new(Server {
                label: net::host_port(&spec.host, spec.port),
                addr,
                pipe: Mutex::new(pipe::Pipe::default()),
                health: Mutex::new(Health::default()),
            }));
        }
        let nodes: Vec<Node> =
            specs.into_iter().map(|s| Node { host: s.host, port: s.port, weight: s.weight }).collect();
        let ring = Ring::new(distribution, hash, weighted, &nodes, &[]);
        let client = Self(Arc::new(Inner {
            servers,
            nodes,
            distribution,
            hash,
            weighted,
            ring: Mutex::new(RingState { ring, next_rebuild: None }),
            timeout_ms: AtomicU64::new(0),
            settings,
        }));
        client.set_timeout(timeout);
        Ok(client)
    }

    fn timeout(&self) -> Option<Duration> {
        match self.0.timeout_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    fn set_timeout(&self, t: Option<Duration>) {
        let ms = t.map_or(u64::MAX, |d| (d.as_millis() as u64).min(u64::MAX - 1));
        self.0.timeout_ms.store(ms, Ordering::Relaxed);
    }

    fn deadline(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        // No timeout: a day stands for "never" and keeps the arithmetic simple.
        now + self.timeout().unwrap_or(Duration::from_secs(86_400))
    }

    /// Rebuild the ring from the servers' health.
    fn rebuild(&self, state: &mut RingState) {
        let now = Instant::now();
        let mut live = Vec::with_capacity(self.0.servers.len());
        let mut next = None;
        for server in &self.0.servers {
            let mut health = lock(&server.health);
            match health.dead_until {
                Some(t) if t > now => {
                    live.push(false);
                    next = Some(next.map_or(t, |n: Instant| n.min(t)));
                }
                Some(_) => {
                    health.dead_until = None;
                    live.push(true);
                }
                None => live.push(true),
            }
        }
        state.ring = Ring::new(self.0.distribution, self.0.hash, self.0.weighted, &self.0.nodes, &live);
        state.next_rebuild = next;
    }

    /// The index of the server for `key`.
    fn route(&self, op: &str, key: &[u8]) -> Result<usize, Error> {
        let mut index = 0;
        self.route_each(op, [key], |i, _| index = i)?;
        Ok(index)
    }

    /// Call `each` with the server index of every key, under one look at the
    /// ring (a `get_multi` routes many keys).
    fn route_each<'a>(
        &self,
        op: &str,
        keys: impl IntoIterator<Item = &'a [u8]>,
        mut each: impl FnMut(usize, &'a [u8]),
    ) -> Result<(), Error> {
        let mut state = lock(&self.0.ring);
        if state.next_rebuild.is_some_and(|t| Instant::now() >= t) {
            self.rebuild(&mut state);
        }
        // A server is out only while a rebuild is due.
        let any_dead = state.next_rebuild.is_some();
        for key in keys {
            let index = state.ring.pick(key).ok_or_else(|| {
                Error::new(Kind::Refused, op, "every server has been removed after failures (retry_timeout not over)")
            })?;
            if any_dead && lock(&self.0.servers[index].health).dead_until.is_some_and(|t| t > Instant::now()) {
                // Only modula keeps a removed server's keys on it.
                return Err(Error::new(Kind::Refused, op, "the server is marked dead after failures")
                    .with_peer(&self.0.servers[index].label));
            }
            each(index, key);
        }
        Ok(())
    }

    /// Record the outcome of an exchange with server `index`.
    fn note(&self, index: usize, result: Result<(), &Error>) {
        let server = &self.0.servers[index];
        let mut health = lock(&server.health);
        match result {
            Ok(()) => health.failures = 0,
            Err(e) if is_server_failure(e) => {
                health.failures += 1;
                let limit = self.0.settings.remove_failed;
                if limit > 0 && health.failures >= limit {
                    health.failures = 0;
                    health.dead_until = Some(Instant::now() + self.0.settings.retry_timeout);
                    drop(health);
                    let mut state = lock(&self.0.ring);
                    self.rebuild(&mut state);
                }
            }
            Err(_) => {}
        }
    }

    /// One request to the server of `key`; returns the reply units.
    fn call(
        &self,
        op: &'static str,
        key: &[u8],
        request: Vec<u8>,
        expect: Expect,
    ) -> NativeResult<(Vec<Frame>, usize)> {
        let index = self.route(op, key)?;
        let server = self.0.servers[index].clone();
        let fut = exchange(server, op, self.0.settings, request, expect, self.deadline());
        let result = runtime::block_on(fut)?;
        self.note(index, result.as_ref().map(|_| ()));
        Ok((result?, index))
    }

    /// The same request to every server, all at once; `(label, reply)` per server.
    fn broadcast(&self, op: &'static str, request: &[u8], expect: Expect) -> NativeResult<Vec<(String, Vec<Frame>)>> {
        let deadline = self.deadline();
        let futs: Vec<_> = self
            .0
            .servers
            .iter()
            .map(|s| exchange(s.clone(), op, self.0.settings, request.to_vec(), expect, deadline))
            .collect();
        let results = runtime::block_on(futures_util::future::join_all(futs))?;
        let mut out = Vec::with_capacity(results.len());
        for (index, result) in results.into_iter().enumerate() {
            self.note(index, result.as_ref().map(|_| ()));
            out.push((self.0.servers[index].label.clone(), result?));
        }
        Ok(out)
    }

    fn label(&self, index: usize) -> &str {
        &self.0.servers[index].label
    }

    /// A value as scripts see it: a string when it is UTF-8 text (unless
    /// the client was made with `bytes: true`), a blob otherwise.
    fn script_value(&self, data: Vec<u8>) -> Dynamic {
        if self.0.settings.bytes {
            return Dynamic::from_blob(data);
        }
        match String::from_utf8(data) {
            Ok(s) => s.into(),
            Err(e) => Dynamic::from_blob(e.into_bytes()),
        }
    }

    fn get(&self, op: &'static str, key: &str, with_cas: bool) -> NativeResult<Option<(Dynamic, u32, Option<u64>)>> {
        let key = key_arg(op, key)?;
        let cmd = if with_cas { "gets" } else { "get" };
        let (frames, index) = self.call(op, key, protocol::command(cmd, [key]), Expect::Ends { ends: 1, items: 1 })?;
        // The reply is one VALUE then END, or END alone.
        match frames.into_iter().next() {
            Some(Frame::Value { key: k, flags, cas, data }) if k == key => {
                Ok(Some((self.script_value(data), flags, cas)))
            }
            Some(Frame::End) | None => Ok(None),
            Some(other) => Err(unexpected(op, self.label(index), &other).into()),
        }
    }

    /// Up to [`KEYS_PER_GET`] keys per `get` line, all lines to a server in one write.
    fn get_multi(&self, keys: &Array) -> NativeResult<Map> {
        const OP: &str = "get_multi";
        let mut names = Vec::with_capacity(keys.len());
        for key in keys {
            let key = key
                .read_lock::<rhai::ImmutableString>()
                .ok_or_else(|| Error::value(OP, format!("keys must be strings, got {}", key.type_name())))?
                .clone();
            key_arg(OP, &key)?;
            names.push(key);
        }
        let mut seen = ahash::AHashSet::with_capacity(names.len());
        let mut per_server: Vec<Vec<&[u8]>> = vec![Vec::new(); self.0.servers.len()];
        let unique = names.iter().map(|k| k.as_bytes()).filter(|k| seen.insert(*k));
        self.route_each(OP, unique, |index, key| per_server[index].push(key))?;
        let deadline = self.deadline();
        let mut order = Vec::with_capacity(per_server.len());
        let mut futs = Vec::with_capacity(per_server.len());
        for (index, keys) in per_server.iter().enumerate().filter(|(_, keys)| !keys.is_empty()) {
            let mut request = Vec::with_capacity(keys.iter().map(|k| k.len() + 1).sum::<usize>() + 8);
            for chunk in keys.chunks(KEYS_PER_GET) {
                request.extend(protocol::command("get", chunk.iter().copied()));
            }
            let expect = Expect::Ends { ends: keys.len().div_ceil(KEYS_PER_GET), items: keys.len() };
            futs.push(exchange(self.0.servers[index].clone(), OP, self.0.settings, request, expect, deadline));
            order.push(index);
        }
        let results = runtime::block_on(futures_util::future::join_all(futs))?;
        let mut out = Map::new();
        for (index, result) in order.into_iter().zip(results) {
            self.note(index, result.as_ref().map(|_| ()));
            // As pylibmc: the keys of a server that fails are misses.
            let Ok(frames) = result else { continue };
            for frame in frames {
                match frame {
                    // Keys were checked to be text; one that is not was never asked for.
                    Frame::Value { key, data, .. } if seen.contains(key.as_slice()) => {
                        if let Ok(key) = std::str::from_utf8(&key) {
                            out.insert(key.into(), self.script_value(data));
                        }
                    }
                    Frame::Failure(f) => return Err(failure_error(OP, self.label(index), &f).into()),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

    /// A storage command; true when the server stored the value.
    fn store(
        &self,
        cmd: &'static str,
        key: &str,
        value: &Dynamic,
        extra: &Dynamic,
        cas: Option<u64>,
    ) -> NativeResult<bool> {
        let key = key_arg(cmd, key)?;
        let data = value_arg(cmd, value)?;
        let (expire, flags) = store_opts(cmd, extra)?;
        let request = protocol::storage(cmd, key, flags, expire, &data, cas);
        let (frames, index) = self.call(cmd, key, request, Expect::Lines(1))?;
        match &frames[0] {
            Frame::Status(Status::Stored) => Ok(true),
            Frame::Status(Status::NotStored | Status::Exists | Status::NotFound) => Ok(false),
            other => Err(unexpected(cmd, self.label(index), other).into()),
        }
    }

    /// A one-line command on `key`; its reply unit.
    fn simple(&self, op: &'static str, key: &str, args: &[&[u8]]) -> NativeResult<(Frame, usize)> {
        let key = key_arg(op, key)?;
        let request = protocol::command(op, std::iter::once(key).chain(args.iter().copied()));
        let (mut frames, index) = self.call(op, key, request, Expect::Lines(1))?;
        Ok((frames.remove(0), index))
    }

    fn delta(&self, op: &'static str, key: &str, by: INT) -> NativeResult<Dynamic> {
        let by =
            u64::try_from(by).map_err(|_| Error::value(op, format!("the delta must not be negative, got {by}")))?;
        match self.simple(op, key, &[by.to_string().as_bytes()])? {
            (Frame::Number(n), _) => Ok(Dynamic::from_int(n as INT)),
            (Frame::Status(Status::NotFound), _) => Ok(Dynamic::UNIT),
            (other, index) => Err(unexpected(op, self.label(index), &other).into()),
        }
    }

    fn flush_all(&self, delay: INT) -> NativeResult<()> {
        const OP: &str = "flush_all";
        let delay = u32::try_from(delay).map_err(|_| Error::value(OP, "the delay must be 0..4294967295"))?;
        let request = protocol::command(OP, [delay.to_string().as_bytes()]);
        for (label, frames) in self.broadcast(OP, &request, Expect::Lines(1))? {
            if frames[0] != Frame::Status(Status::Ok) {
                return Err(unexpected(OP, &label, &frames[0]).into());
            }
        }
        Ok(())
    }

    fn stats(&self) -> NativeResult<Map> {
        const OP: &str = "stats";
        let request = protocol::command(OP, []);
        let mut out = Map::new();
        for (label, frames) in self.broadcast(OP, &request, Expect::Ends { ends: 1, items: MAX_STATS })? {
            let mut stats = Map::new();
            for frame in frames {
                match frame {
                    Frame::Stat(name, value) => {
                        stats.insert(name.into(), value.into());
                    }
                    Frame::End => {}
                    other => return Err(unexpected(OP, &label, &other).into()),
                }
            }
            out.insert(label.into(), stats.into());
        }
        Ok(out)
    }

    fn version(&self) -> NativeResult<Map> {
        const OP: &str = "version";
        let request = protocol::command(OP, []);
        let mut out = Map::new();
        for (label, frames) in self.broadcast(OP, &request, Expect::Lines(1))? {
            match &frames[0] {
                Frame::Version(v) => out.insert(label.into(), v.clone().into()),
                other => return Err(unexpected(OP, &label, other).into()),
            };
        }
        Ok(out)
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.0.servers.iter().map(|s| s.label.as_str()).collect();
        write!(f, "memcache client [{}]", labels.join(", "))
    }
}

/// The `memcache::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A memcached client over a list of servers.
    pub type MemcacheClient = Client;

    /// A client over `servers`: `"host:port"` strings (port 11211 if left
    /// out) or `#{host, port, weight}` maps. Keys go where pylibmc puts them
    /// with `behaviors={"ketama": True}` (one-at-a-time hash, 100 points
    /// per server); nothing is connected until the first call.
    ///
    /// ```rhai
    /// let mc = memcache::client(["127.0.0.1:11211", "127.0.0.1:11212"]);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn client(servers: Array) -> NativeResult<MemcacheClient> {
        Client::new(&servers, &Opts::empty("memcache::client"))
    }

    /// A client with options: `distribution` (`"ketama"`, the default, or
    /// `"modula"`), `hash` (`"one_at_a_time"` default, `"md5"`, `"crc"`,
    /// `"fnv1_64"`, `"fnv1a_64"`, `"fnv1_32"`, `"fnv1a_32"`), `weighted`
    /// (pylibmc's `ketama_weighted`: md5, 160 points per server shared by
    /// weight; also on when a weight is above 1), `timeout` (seconds per
    /// call, default 5, `()` none), `connect_timeout`, `remove_failed` (take
    /// a server off the ring after this many failures in a row; 0 = never),
    /// `retry_timeout` (seconds before a removed server is tried again,
    /// default 2), `max_value` (largest value accepted, default 16 MiB),
    /// `bytes` (true: values always come back as blobs).
    ///
    /// ```rhai
    /// let mc = memcache::client([#{host: "10.0.0.1", weight: 2}, "10.0.0.2"],
    ///                           #{weighted: true, remove_failed: 3, retry_timeout: 10});
    /// ```
    #[rhai_fn(name = "client", return_raw)]
    pub fn client_opts(servers: Array, opts: Map) -> NativeResult<MemcacheClient> {
        Client::new(&servers, &Opts::new("memcache::client", opts, CLIENT_OPTS)?)
    }

    /// The value stored under `key`, or `()` if there is none. Text comes
    /// back as a string, other bytes as a blob.
    ///
    /// ```rhai
    /// let v = mc.get("user:42");
    /// if v == () { print("miss") }
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn get(mc: &mut MemcacheClient, key: &str) -> NativeResult<Dynamic> {
        Ok(mc.get("get", key, false)?.map_or(Dynamic::UNIT, |(v, _, _)| v))
    }

    /// The values of many keys as a map (missing keys are left out): one
    /// pipelined request per server, all servers at once. The keys of a
    /// server that fails are left out too, as pylibmc does.
    ///
    /// ```rhai
    /// let found = mc.get_multi(["a", "b", "c"]);
    /// print(found.keys());
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn get_multi(mc: &mut MemcacheClient, keys: Array) -> NativeResult<Map> {
        mc.get_multi(&keys)
    }

    /// `#{value, cas, flags}` for `key`, or `()`: the `cas` token is for [`cas`].
    ///
    /// ```rhai
    /// let item = mc.gets("counter");
    /// if item != () { mc.cas("counter", item.value + "!", item.cas); }
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn gets(mc: &mut MemcacheClient, key: &str) -> NativeResult<Dynamic> {
        Ok(match mc.get("gets", key, true)? {
            None => Dynamic::UNIT,
            Some((value, flags, cas)) => {
                let mut m = Map::new();
                m.insert("value".into(), value);
                m.insert("cas".into(), Dynamic::from_int(cas.unwrap_or(0) as INT));
                m.insert("flags".into(), Dynamic::from_int(INT::from(flags)));
                m.into()
            }
        })
    }

    /// The flags stored with `key` by the last `set`, or `()` if there is none.
    ///
    /// ```rhai
    /// mc.set("k", "v", #{flags: 3});
    /// print(mc.flags("k"));   // 3
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn flags(mc: &mut MemcacheClient, key: &str) -> NativeResult<Dynamic> {
        Ok(mc.get("get", key, false)?.map_or(Dynamic::UNIT, |(_, f, _)| Dynamic::from_int(INT::from(f))))
    }

    /// Store `value` (string, blob or integer) under `key`; true once stored.
    ///
    /// ```rhai
    /// mc.set("k", "v");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn set(mc: &mut MemcacheClient, key: &str, value: Dynamic) -> NativeResult<bool> {
        mc.store("set", key, &value, &Dynamic::UNIT, None)
    }

    /// `set` with expire seconds, or `#{expire, flags}`.
    ///
    /// ```rhai
    /// mc.set("session", "data", 300);
    /// mc.set("blob", blob(4, 0), #{expire: 60, flags: 1});
    /// ```
    #[rhai_fn(global, name = "set", return_raw, pure)]
    pub fn set_with(mc: &mut MemcacheClient, key: &str, value: Dynamic, extra: Dynamic) -> NativeResult<bool> {
        mc.store("set", key, &value, &extra, None)
    }

    /// Store only if `key` is absent; false if it exists.
    ///
    /// ```rhai
    /// if !mc.add("lock", "me", 30) { print("taken") }
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn add(mc: &mut MemcacheClient, key: &str, value: Dynamic) -> NativeResult<bool> {
        mc.store("add", key, &value, &Dynamic::UNIT, None)
    }

    /// `add` with expire seconds, or `#{expire, flags}`.
    ///
    /// ```rhai
    /// mc.add("lock", "me", #{expire: 30});
    /// ```
    #[rhai_fn(global, name = "add", return_raw, pure)]
    pub fn add_with(mc: &mut MemcacheClient, key: &str, value: Dynamic, extra: Dynamic) -> NativeResult<bool> {
        mc.store("add", key, &value, &extra, None)
    }

    /// Store only if `key` exists; false if it does not.
    ///
    /// ```rhai
    /// mc.replace("k", "newer");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn replace(mc: &mut MemcacheClient, key: &str, value: Dynamic) -> NativeResult<bool> {
        mc.store("replace", key, &value, &Dynamic::UNIT, None)
    }

    /// `replace` with expire seconds, or `#{expire, flags}`.
    ///
    /// ```rhai
    /// mc.replace("k", "newer", 60);
    /// ```
    #[rhai_fn(global, name = "replace", return_raw, pure)]
    pub fn replace_with(mc: &mut MemcacheClient, key: &str, value: Dynamic, extra: Dynamic) -> NativeResult<bool> {
        mc.store("replace", key, &value, &extra, None)
    }

    /// Add bytes after the stored value; false if `key` does not exist.
    ///
    /// ```rhai
    /// mc.append("log", "line\n");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn append(mc: &mut MemcacheClient, key: &str, value: Dynamic) -> NativeResult<bool> {
        mc.store("append", key, &value, &Dynamic::UNIT, None)
    }

    /// Add bytes before the stored value; false if `key` does not exist.
    ///
    /// ```rhai
    /// mc.prepend("log", "first\n");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn prepend(mc: &mut MemcacheClient, key: &str, value: Dynamic) -> NativeResult<bool> {
        mc.store("prepend", key, &value, &Dynamic::UNIT, None)
    }

    /// Store `value` only if `key` is unchanged since [`gets`] gave `cas`;
    /// false if another client changed it (or it is gone).
    ///
    /// ```rhai
    /// let item = mc.gets("k");
    /// let won = mc.cas("k", "mine", item.cas);
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn cas(mc: &mut MemcacheClient, key: &str, value: Dynamic, cas: INT) -> NativeResult<bool> {
        let cas = u64::try_from(cas).map_err(|_| Error::value("cas", "the cas token must not be negative"))?;
        mc.store("cas", key, &value, &Dynamic::UNIT, Some(cas))
    }

    /// `cas` with expire seconds, or `#{expire, flags}`.
    ///
    /// ```rhai
    /// mc.cas("k", "mine", item.cas, 60);
    /// ```
    #[rhai_fn(global, name = "cas", return_raw, pure)]
    pub fn cas_with(
        mc: &mut MemcacheClient,
        key: &str,
        value: Dynamic,
        cas: INT,
        extra: Dynamic,
    ) -> NativeResult<bool> {
        let cas = u64::try_from(cas).map_err(|_| Error::value("cas", "the cas token must not be negative"))?;
        mc.store("cas", key, &value, &extra, Some(cas))
    }

    /// Delete `key`; false if it was not there.
    ///
    /// ```rhai
    /// mc.delete("k");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn delete(mc: &mut MemcacheClient, key: &str) -> NativeResult<bool> {
        match mc.simple("delete", key, &[])? {
            (Frame::Status(Status::Deleted), _) => Ok(true),
            (Frame::Status(Status::NotFound), _) => Ok(false),
            (other, index) => Err(unexpected("delete", mc.label(index), &other).into()),
        }
    }

    /// Add 1 to the number stored under `key`: the new value, or `()` if
    /// there is no such key (a `value` error if the value is not a number).
    ///
    /// ```rhai
    /// mc.set("hits", 0);
    /// print(mc.incr("hits"));   // 1
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn incr(mc: &mut MemcacheClient, key: &str) -> NativeResult<Dynamic> {
        mc.delta("incr", key, 1)
    }

    /// Add `by` (≥ 0) to the number under `key`; wraps at 2⁶⁴ as memcached does.
    ///
    /// ```rhai
    /// mc.incr("hits", 10);
    /// ```
    #[rhai_fn(global, name = "incr", return_raw, pure)]
    pub fn incr_by(mc: &mut MemcacheClient, key: &str, by: INT) -> NativeResult<Dynamic> {
        mc.delta("incr", key, by)
    }

    /// Subtract 1 (memcached stops at 0): the new value, or `()`.
    ///
    /// ```rhai
    /// mc.decr("stock");
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn decr(mc: &mut MemcacheClient, key: &str) -> NativeResult<Dynamic> {
        mc.delta("decr", key, 1)
    }

    /// Subtract `by` (≥ 0; memcached stops at 0).
    ///
    /// ```rhai
    /// mc.decr("stock", 5);
    /// ```
    #[rhai_fn(global, name = "decr", return_raw, pure)]
    pub fn decr_by(mc: &mut MemcacheClient, key: &str, by: INT) -> NativeResult<Dynamic> {
        mc.delta("decr", key, by)
    }

    /// Give `key` a new expiry (seconds; 0 = never); false if it is not there.
    ///
    /// ```rhai
    /// mc.touch("session", 600);
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn touch(mc: &mut MemcacheClient, key: &str, expire: INT) -> NativeResult<bool> {
        let expire = u32::try_from(expire).map_err(|_| Error::value("touch", "expire must be 0..4294967295"))?;
        match mc.simple("touch", key, &[expire.to_string().as_bytes()])? {
            (Frame::Status(Status::Touched), _) => Ok(true),
            (Frame::Status(Status::NotFound), _) => Ok(false),
            (other, index) => Err(unexpected("touch", mc.label(index), &other).into()),
        }
    }

    /// Empty every server.
    ///
    /// ```rhai
    /// mc.flush_all();
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn flush_all(mc: &mut MemcacheClient) -> NativeResult<()> {
        mc.flush_all(0)
    }

    /// Empty every server in `delay` seconds.
    ///
    /// ```rhai
    /// mc.flush_all(10);
    /// ```
    #[rhai_fn(global, name = "flush_all", return_raw, pure)]
    pub fn flush_all_in(mc: &mut MemcacheClient, delay: INT) -> NativeResult<()> {
        mc.flush_all(delay)
    }

    /// Every server's statistics: `#{"host:port": #{pid: "…", curr_items: "…", …}}`.
    ///
    /// ```rhai
    /// for (s, server) in mc.stats() { print(`${server}: ${s.curr_items}`) }
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn stats(mc: &mut MemcacheClient) -> NativeResult<Map> {
        mc.stats()
    }

    /// Every server's version: `#{"host:port": "1.6.18"}`.
    ///
    /// ```rhai
    /// print(mc.version());
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn version(mc: &mut MemcacheClient) -> NativeResult<Map> {
        mc.version()
    }

    /// The `"host:port"` that `key` lives on (libmemcached's
    /// `memcached_server_by_key`), after removals of failed servers.
    ///
    /// ```rhai
    /// print(mc.server_for("user:42"));
    /// ```
    #[rhai_fn(global, return_raw, pure)]
    pub fn server_for(mc: &mut MemcacheClient, key: &str) -> NativeResult<String> {
        let key = key_arg("server_for", key)?;
        Ok(mc.label(mc.route("server_for", key)?).to_string())
    }

    /// The servers, as `"host:port"` strings in the order given.
    ///
    /// ```rhai
    /// print(mc.servers);
    /// ```
    #[rhai_fn(global, get = "servers", pure)]
    pub fn servers(mc: &mut MemcacheClient) -> Array {
        mc.0.servers.iter().map(|s| s.label.clone().into()).collect()
    }

    /// The timeout of each call in seconds (`()` = none).
    ///
    /// ```rhai
    /// print(mc.timeout);   // 5.0
    /// ```
    #[rhai_fn(global, get = "timeout", pure)]
    pub fn get_timeout(mc: &mut MemcacheClient) -> Dynamic {
        mc.timeout().map_or(Dynamic::UNIT, |d| Dynamic::from_float(d.as_secs_f64()))
    }

    /// Set the timeout of each call (seconds, or `()` for none).
    ///
    /// ```rhai
    /// mc.timeout = 0.5;
    /// ```
    #[rhai_fn(global, set = "timeout", return_raw)]
    pub fn set_timeout(mc: &mut MemcacheClient, value: Dynamic) -> NativeResult<()> {
        mc.set_timeout(crate::args::duration("timeout", &value)?);
        Ok(())
    }

    /// `memcache client [host:port, …]`.
    ///
    /// ```rhai
    /// print(mc);
    /// ```
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn client_to_string(mc: &mut MemcacheClient) -> String {
        mc.to_string()
    }

    /// Same as `to_string`.
    ///
    /// ```rhai
    /// debug(mc);
    /// ```
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn client_to_debug(mc: &mut MemcacheClient) -> String {
        mc.to_string()
    }
}

//! `tcp::` — TCP connections and listeners in blocking style.
//!
//! A connection keeps one read buffer, so `recv_line`, `recv_exact` and
//! `recv` can be mixed freely without losing bytes, and an error such as EOF
//! in the middle of `recv_exact` leaves what arrived in the buffer for the
//! next read. The connection's timeout (`conn.timeout`, 30 s by default)
//! bounds each call as a whole: `recv_exact(100)` against a peer that sends
//! a byte now and then fails with `timeout` once the time is up, however
//! many bytes trickled in meanwhile (they stay buffered).
//!
//! ```rhai
//! let srv = tcp::listen("127.0.0.1", 0).serve(|c| c.send(c.recv_line() + "\n"));
//! let c = tcp::connect("127.0.0.1", srv.port);
//! c.send("hello\n");
//! print(c.recv_line());   // hello
//! srv.stop();
//! ```

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rhai::plugin::*;
use rhai::{Blob, Dynamic, FnNamespace, FnPtr, INT, Map, NativeCallContext};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::args::{self, Borrowing, Opts};
use crate::bytes::data_arg;
use crate::capture;
use crate::error::{Error, Kind, NativeResult};
use crate::faults;
use crate::metrics;
use crate::net::{self, Family};
use crate::runtime;
use crate::task::Callable;
use crate::tls;
use crate::trace;

/// Default timeout of every call on a connection.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `max` of `recv_until` / `recv_line`.
const DEFAULT_LINE_MAX: usize = 1 << 20;
/// Default `max` of `recv_all`.
const DEFAULT_ALL_MAX: usize = 64 << 20;
/// Largest single read into the buffer.
const READ_CHUNK_MAX: usize = 64 << 10;
/// Encodes "no timeout" in the atomic timeout field.
const NO_TIMEOUT: u64 = u64::MAX;

/// A TCP connection handle; clones share one socket and one read buffer.
#[derive(Clone)]
pub struct TcpConn(Arc<ConnInner>);

struct ConnInner {
    /// The socket and the read buffer under one lock: one lock per operation.
    state: Mutex<ConnState>,
    /// Size of the next read; grows while reads fill it.
    chunk: AtomicU64,
    timeout_ms: AtomicU64,
    eof: AtomicBool,
    /// Tasks waiting to read / to write (see [`SlotReady`]).
    waiting: [AtomicUsize; 2],
    peer: SocketAddr,
    local: SocketAddr,
    /// Whether the local end connected or accepted.
    side: faults::Side,
}

struct ConnState {
    /// `None` once `close()` was called.
    stream: Option<Arc<TcpStream>>,
    /// The transport over the socket: `None` for plain TCP, or the TLS layer
    /// a handshake (`tls::connect`, `starttls`…) put there. Reads and writes
    /// of both go through the same buffer, waits and error kinds.
    tls: Option<Box<tls::Session>>,
    buf: BytesMut,
    /// The faults of a bent connection (`c.faults`), which its splice follows.
    faults: Option<faults::Control>,
}

impl ConnState {
    fn stream(&self, op: &str, peer: SocketAddr) -> Result<&Arc<TcpStream>, Error> {
        self.stream.as_ref().ok_or_else(|| closed(op, peer))
    }

    /// Take up to `max` buffered bytes.
    fn take(&mut self, max: usize) -> Blob {
        let n = max.min(self.buf.len());
        // Copy out and advance: `split_to` would turn the buffer shared.
        let out = self.buf[..n].to_vec();
        self.buf.advance(n);
        out
    }
}

/// The error of an operation on a closed connection.
fn closed(op: &str, peer: SocketAddr) -> Error {
    Error::new(Kind::Closed, op, "the connection is closed").with_peer(peer)
}

/// What one read attempt ([`TcpConn::try_fill`]) found.
enum Filled {
    /// This many bytes arrived (more than 0).
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// Nothing to read yet: wait until this stream is readable.
    Wait(Arc<TcpStream>),
}

/// How many empty read buffers the thread keeps for its connections.
const SPARE_BUFFERS: usize = 16;

thread_local! {
    /// Read buffers of connections that went idle, for the next connection
    /// that reads: a busy server would otherwise free and allocate a buffer
    /// per message (an idle connection holds none, see [`TcpConn::try_fill`]).
    static SPARE: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty read buffer, reused if the thread has one.
fn take_spare() -> BytesMut {
    SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default()
}

/// Keep the empty buffer `buf` for reuse (up to [`SPARE_BUFFERS`] of at most
/// [`READ_CHUNK_MAX`] bytes), or free it.
fn give_spare(mut buf: BytesMut) {
    if buf.capacity() == 0 || buf.capacity() > READ_CHUNK_MAX {
        return;
    }
    buf.clear();
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        if spare.len() < SPARE_BUFFERS {
            spare.push(buf);
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code panics while holding these locks; recover the data if one did.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until a socket is readable (or writable) through the socket's own
/// waker slot (`poll_read_ready`): a 16-byte future with no waiter node, so
/// a waiting connection touches little memory. The slot holds one waker per
/// direction, so only a direction's sole waiter uses it; a second task
/// waiting on the same connection queues through `readable()` instead (both
/// are woken by the same event).
struct SlotReady {
    stream: Arc<TcpStream>,
    write: bool,
}

impl Future for SlotReady {
    type Output = std::io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.write { self.stream.poll_write_ready(cx) } else { self.stream.poll_read_ready(cx) }
    }
}

/// Counts a task as waiting on one direction of a connection while alive.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The time budget of one call on a connection (`recv_exact`, `recv_line`,
/// `send`, a frame read…): the connection's timeout, counted from the call's
/// first wait, bounds all of that call's waits together, so a peer that
/// sends a byte at a time cannot hold the call open. Start one per call
/// ([`Deadline::default`]) and pass it to each [`TcpConn::fill`]; a call that
/// never waits never reads the clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Deadline(Option<Instant>);

impl TcpConn {
    /// Wrap a connected stream.
    pub fn new(stream: TcpStream) -> std::io::Result<Self> {
        let (peer, local) = (stream.peer_addr()?, stream.local_addr()?);
        Ok(Self::with_addrs(stream, peer, local, faults::Side::Client, None))
    }

    /// Wrap `stream` as the connection from `local` to `peer` (a bent
    /// stream's own addresses are its loopback pair's).
    fn with_addrs(
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
        side: faults::Side,
        faults: Option<faults::Control>,
    ) -> Self {
        Self(Arc::new(ConnInner {
            state: Mutex::new(ConnState { stream: Some(Arc::new(stream)), tls: None, buf: BytesMut::new(), faults }),
            chunk: AtomicU64::new(4096),
            timeout_ms: AtomicU64::new(DEFAULT_TIMEOUT.as_millis() as u64),
            eof: AtomicBool::new(false),
            waiting: [AtomicUsize::new(0), AtomicUsize::new(0)],
            peer,
            local,
            side,
        }))
    }

    /// The connection of a socket just connected or accepted, through the
    /// `faults` when there are any (see [`faults::bend`]).
    async fn bent(stream: TcpStream, faults: Option<Arc<faults::Spec>>, side: faults::Side) -> std::io::Result<Self> {
        let (peer, local) = (stream.peer_addr()?, stream.local_addr()?);
        if capture::on() {
            capture::tcp_open(local, peer, side == faults::Side::Client);
        }
        let control = faults.map(|spec| faults::Control::live(Some(spec)));
        let bent = faults::bend(stream, control.clone(), side, false).await?;
        Ok(Self::with_addrs(bent, peer, local, side, control))
    }

    /// The connection's faults now (`c.faults`).
    #[must_use]
    pub fn faults(&self) -> Option<Arc<faults::Spec>> {
        lock(&self.0.state).faults.as_ref().and_then(faults::Control::spec)
    }

    /// Change the connection's faults (`c.faults = …`): a bent connection's
    /// splice takes them from its next chunk; one not bent yet is bent now
    /// (its socket handed to a splice, what was read staying buffered).
    ///
    /// # Errors
    /// `value` while another task waits on the socket (it cannot be handed
    /// over then), or the I/O error of making the loopback pair.
    pub fn set_faults(&self, spec: Option<Arc<faults::Spec>>) -> Result<(), Error> {
        const OP: &str = "faults";
        let mut st = lock(&self.0.state);
        if let Some(control) = &st.faults {
            control.set(spec);
            return Ok(());
        }
        let Some(spec) = spec else { return Ok(()) };
        let stream = st.stream.take().ok_or_else(|| closed(OP, self.0.peer))?;
        let real = match Arc::try_unwrap(stream) {
            Ok(real) => real,
            Err(shared) => {
                st.stream = Some(shared);
                return Err(Error::value(
                    OP,
                    "another task is waiting on this connection; set its faults before sharing it",
                )
                .with_peer(self.0.peer));
            }
        };
        let control = faults::Control::live(Some(spec));
        let near = faults::bend_now(real, control.clone(), self.0.side)
            .map_err(|e| Error::io(OP, &e).with_peer(self.0.peer))?;
        st.stream = Some(Arc::new(near));
        st.faults = Some(control);
        Ok(())
    }

    /// The remote address.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.0.peer
    }

    /// The timeout that bounds each call (see [`Deadline`]).
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        match self.0.timeout_ms.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    fn set_timeout(&self, t: Option<Duration>) {
        let ms = t.map_or(NO_TIMEOUT, |d| (d.as_millis() as u64).min(NO_TIMEOUT - 1));
        self.0.timeout_ms.store(ms, Ordering::Relaxed);
    }

    fn stream(&self, op: &str) -> Result<Arc<TcpStream>, Error> {
        lock(&self.0.state).stream(op, self.0.peer).cloned()
    }

    /// Whether `close()` was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        lock(&self.0.state).stream.is_none()
    }

    /// Bytes read but not yet consumed.
    #[must_use]
    pub fn buffered(&self) -> usize {
        lock(&self.0.state).buf.len()
    }

    /// Read once from the socket into the buffer without waiting (the
    /// caller holds the lock).
    fn try_fill(&self, st: &mut ConnState, op: &str) -> Result<Filled, Error> {
        if self.0.eof.load(Ordering::Relaxed) {
            return Ok(Filled::Eof);
        }
        let ConnState { stream, tls, buf, .. } = st;
        let stream = stream.as_ref().ok_or_else(|| closed(op, self.0.peer))?;
        if let Some(tls) = tls {
            return self.try_fill_tls(tls, stream, buf, op);
        }
        let chunk = self.0.chunk.load(Ordering::Relaxed) as usize;
        if buf.capacity() == 0 {
            *buf = take_spare();
        }
        buf.reserve(chunk);
        let before = buf.len();
        let room = buf.capacity() - before;
        match stream.try_read_buf(buf) {
            Ok(0) => {
                self.0.eof.store(true, Ordering::Relaxed);
                Ok(Filled::Eof)
            }
            Ok(n) => {
                if n == chunk && chunk < READ_CHUNK_MAX {
                    self.0.chunk.store((chunk * 2) as u64, Ordering::Relaxed);
                }
                if n < room {
                    // A short read drained the socket (as libuv assumes): mark it not
                    // readable so the next read waits for the poller's next event instead
                    // of spending a syscall on `EAGAIN`. Bytes arriving after the read
                    // raise a new event, so none are missed.
                    let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(std::io::ErrorKind::WouldBlock.into()));
                }
                if trace::on() {
                    trace::data("recv", &self.0.peer.to_string(), &buf[before..]);
                }
                if capture::on() {
                    capture::tcp(self.0.local, self.0.peer, capture::Dir::Received, &buf[before..]);
                }
                if metrics::on() {
                    metrics::count("data_received", n as f64);
                }
                Ok(Filled::Data(n))
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let stream = stream.clone();
                if buf.is_empty() {
                    // Nothing buffered and about to wait, maybe for long:
                    // an idle connection holds no read buffer.
                    give_spare(std::mem::take(buf));
                }
                Ok(Filled::Wait(stream))
            }
            Err(e) => Err(Error::io(op, &e).with_peer(self.0.peer)),
        }
    }

    /// [`try_fill`](Self::try_fill) through the TLS layer: decrypted bytes
    /// land in the same buffer; out of line, so plain TCP's path stays short.
    #[inline(never)]
    fn try_fill_tls(
        &self,
        tls: &mut tls::Session,
        stream: &Arc<TcpStream>,
        buf: &mut BytesMut,
        op: &str,
    ) -> Result<Filled, Error> {
        let before = buf.len();
        match tls.try_read(stream, buf, op, self.0.peer)? {
            tls::Read::Data => {
                if trace::on() {
                    trace::data("recv", &self.0.peer.to_string(), &buf[before..]);
                }
                if capture::on() {
                    capture::tls_plaintext(self.0.local, self.0.peer, capture::Dir::Received, &buf[before..]);
                }
                if metrics::on() {
                    metrics::count("data_received", (buf.len() - before) as f64);
                }
                Ok(Filled::Data(buf.len() - before))
            }
            tls::Read::Eof => {
                self.0.eof.store(true, Ordering::Relaxed);
                Ok(Filled::Eof)
            }
            tls::Read::Wait => {
                if buf.is_empty() {
                    give_spare(std::mem::take(buf));
                }
                Ok(Filled::Wait(stream.clone()))
            }
        }
    }

    /// Wait until `stream` is readable or, with `write`, writable, until
    /// the call's `deadline` at the latest.
    fn wait_ready(&self, stream: Arc<TcpStream>, write: bool, op: &str, deadline: &mut Deadline) -> NativeResult<()> {
        let waiting = &self.0.waiting[usize::from(write)];
        let _waiting = Waiting::enter(waiting);
        let (timeout, sole) = (self.timeout(), waiting.load(Ordering::Relaxed) == 1);
        let ready = if timeout.is_none() && sole {
            // The common wait of a server's connection: no timer, no error
            // type in the future's output, so the frames that stay on the
            // waiting task's stack are small.
            runtime::block_on(SlotReady { stream, write })?
        } else {
            self.wait_general(stream, write, sole, timeout, deadline, op)?
        };
        ready.map_err(|e| Error::io(op, &e).with_peer(self.0.peer).into())
    }

    /// [`wait_ready`](Self::wait_ready) with a `timeout` (fixing the call's
    /// `deadline` on its first wait), or for a second task waiting on the
    /// same direction (the socket's waker slot is taken, so it queues).
    #[inline(never)]
    fn wait_general(
        &self,
        stream: Arc<TcpStream>,
        write: bool,
        sole: bool,
        timeout: Option<Duration>,
        deadline: &mut Deadline,
        op: &str,
    ) -> NativeResult<std::io::Result<()>> {
        // The future reports a bare `io::Error`; naming it in `wait_ready`
        // saves an owned copy of `op` per wait.
        let ready = async move {
            if sole {
                SlotReady { stream, write }.await
            } else if write {
                stream.writable().await
            } else {
                stream.readable().await
            }
        };
        // One clock read per wait, as a plain timeout costs.
        let at = match (timeout, deadline.0) {
            (None, _) => return runtime::block_on(ready),
            // `timeout_at` polls the wait first, so a socket that is ready
            // again at each wait (a peer that reads or sends a little at a
            // time) would never see a deadline that has passed: look first.
            (Some(_), Some(at)) if Instant::now() >= at => return Err(self.timed_out(op, write).into()),
            (Some(_), Some(at)) => at,
            (Some(t), None) => match Instant::now().checked_add(t) {
                Some(at) => *deadline.0.insert(at),
                // Too far away to represent: as good as no timeout.
                None => return runtime::block_on(ready),
            },
        };
        runtime::block_on(tokio::time::timeout_at(at, ready))?.map_err(|_| self.timed_out(op, write).into())
    }

    /// The `timeout` error of a call whose time ran out.
    #[cold]
    fn timed_out(&self, op: &str, write: bool) -> Error {
        let budget = self.timeout().map_or_else(|| "its timeout".into(), runtime::seconds);
        let have = self.buffered();
        let kept = if write || have == 0 { String::new() } else { format!(" ({have} bytes stay buffered)") };
        Error::new(Kind::Timeout, op, format!("timed out after {budget}{kept}")).with_peer(self.0.peer)
    }

    /// Read once from the socket into the buffer, waiting if nothing has
    /// arrived, until the call's `deadline` at the latest (a `timeout`
    /// error). Returns how many bytes arrived; 0 means the peer closed its
    /// side.
    pub fn fill(&self, op: &str, deadline: &mut Deadline) -> NativeResult<usize> {
        loop {
            let filled = self.try_fill(&mut lock(&self.0.state), op)?;
            match filled {
                Filled::Data(n) => return Ok(n),
                Filled::Eof => return Ok(0),
                Filled::Wait(stream) => self.wait_ready(stream, false, op, deadline)?,
            }
        }
    }

    /// Run `f` on the read buffer (framers decode from it in place).
    pub(crate) fn with_buffer<R>(&self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        f(&mut lock(&self.0.state).buf)
    }

    /// Take up to `max` buffered bytes.
    fn take(&self, max: usize) -> Blob {
        lock(&self.0.state).take(max)
    }

    /// Up to `max` bytes: what is buffered, or one read. Empty only at EOF.
    pub fn recv(&self, max: usize, op: &str) -> NativeResult<Blob> {
        if max == 0 {
            return Ok(Blob::new());
        }
        let mut deadline = Deadline::default();
        loop {
            // Check, read and take under one lock; unlocked only to wait.
            let stream = {
                let mut st = lock(&self.0.state);
                if !st.buf.is_empty() {
                    return Ok(st.take(max));
                }
                match self.try_fill(&mut st, op)? {
                    Filled::Data(_) => return Ok(st.take(max)),
                    Filled::Eof => return Ok(Blob::new()),
                    Filled::Wait(stream) => stream,
                }
            };
            self.wait_ready(stream, false, op, &mut deadline)?;
        }
    }

    /// Exactly `n` bytes; a `closed` error if the peer closes first (what
    /// arrived stays buffered for the next read).
    pub fn recv_exact(&self, n: usize, op: &str) -> NativeResult<Blob> {
        let mut deadline = Deadline::default();
        while self.buffered() < n {
            if self.fill(op, &mut deadline)? == 0 {
                let have = self.buffered();
                return Err(Error::new(
                    Kind::Closed,
                    op,
                    format!("connection closed after {have} of {n} bytes (they stay buffered for the next read)"),
                )
                .with_peer(self.0.peer)
                .into());
            }
        }
        Ok(self.take(n))
    }

    /// Bytes up to and including `delim` (`keep: false` drops it), reading
    /// at most `max` bytes while looking.
    pub fn recv_until(&self, delim: &[u8], keep: bool, max: usize, op: &str) -> NativeResult<Option<Blob>> {
        if delim.is_empty() {
            return Err(Error::value(op, "the delimiter is empty").into());
        }
        let mut scanned: usize = 0;
        let mut deadline = Deadline::default();
        loop {
            {
                let buf = &mut lock(&self.0.state).buf;
                let start = scanned.saturating_sub(delim.len() - 1);
                if let Some(i) = find(&buf[start..], delim) {
                    let end = start + i;
                    let mut out = buf.split_to(end + delim.len());
                    if !keep {
                        out.truncate(end);
                    }
                    return Ok(Some(out.to_vec()));
                }
                scanned = buf.len();
                if scanned > max {
                    return Err(Error::new(
                        Kind::Limit,
                        op,
                        format!("no delimiter within {max} bytes (raise the 'max' option; the bytes stay buffered)"),
                    )
                    .with_peer(self.0.peer)
                    .into());
                }
            }
            if self.fill(op, &mut deadline)? == 0 {
                return Ok(None);
            }
        }
    }

    /// Everything until the peer closes, at most `max` bytes.
    pub fn recv_all(&self, max: usize, op: &str) -> NativeResult<Blob> {
        let mut deadline = Deadline::default();
        while self.fill(op, &mut deadline)? > 0 {
            if self.buffered() > max {
                return Err(Error::new(
                    Kind::Limit,
                    op,
                    format!("more than {max} bytes before end of stream (raise the 'max' option)"),
                )
                .with_peer(self.0.peer)
                .into());
            }
        }
        Ok(self.take(usize::MAX))
    }

    /// Send all of `data`, waiting while the socket is full.
    pub fn send(&self, data: &[u8], op: &str) -> NativeResult<usize> {
        let mut sent = 0;
        let mut first = true;
        let mut deadline = Deadline::default();
        loop {
            // Write under the lock; clone the stream only to wait.
            let stream = {
                let mut st = lock(&self.0.state);
                let ConnState { stream, tls, .. } = &mut *st;
                let stream = stream.as_ref().ok_or_else(|| closed(op, self.0.peer))?;
                if first && trace::on() {
                    trace::data("send", &self.0.peer.to_string(), data);
                }
                if first && metrics::on() {
                    metrics::count("data_sent", data.len() as f64);
                }
                first = false;
                if let Some(tls) = tls {
                    let before = sent;
                    let done = tls.try_send(stream, data, &mut sent, op, self.0.peer)?;
                    if capture::on() && sent > before {
                        capture::tls_plaintext(self.0.local, self.0.peer, capture::Dir::Sent, &data[before..sent]);
                    }
                    if done {
                        return Ok(sent);
                    }
                    stream.clone()
                } else {
                    loop {
                        if sent == data.len() {
                            return Ok(sent);
                        }
                        match stream.try_write(&data[sent..]) {
                            Ok(n) => {
                                if capture::on() {
                                    capture::tcp(self.0.local, self.0.peer, capture::Dir::Sent, &data[sent..sent + n]);
                                }
                                sent += n;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break stream.clone(),
                            Err(e) => return Err(Error::io(op, &e).with_peer(self.0.peer).into()),
                        }
                    }
                }
            };
            self.wait_ready(stream, true, op, &mut deadline)?;
        }
    }

    /// Half-close: `"read"`, `"write"` (sends FIN) or `"both"`.
    pub fn shutdown(&self, how: &str) -> NativeResult<()> {
        let how = match how {
            "read" => Shutdown::Read,
            "write" => Shutdown::Write,
            "both" => Shutdown::Both,
            other => {
                return Err(Error::value(
                    "shutdown",
                    format!("expected \"read\", \"write\" or \"both\", got {other:?}"),
                )
                .into());
            }
        };
        let stream = {
            let mut st = lock(&self.0.state);
            let stream = st.stream("shutdown", self.0.peer)?.clone();
            if let Some(tls) = st.tls.as_mut().filter(|_| how != Shutdown::Read) {
                // The peer must see close_notify, not a bare FIN (truncation).
                tls.close_notify(&stream);
            }
            stream
        };
        socket2::SockRef::from(&*stream).shutdown(how).map_err(|e| Error::io("shutdown", &e).with_peer(self.0.peer))?;
        Ok(())
    }

    /// Close the connection: the peer sees EOF, pending reads in other tasks end.
    pub fn close(&self) {
        let mut st = lock(&self.0.state);
        if let Some(stream) = st.stream.take() {
            if let Some(tls) = st.tls.as_mut() {
                tls.close_notify(&stream);
            }
            // Wake readers in other tasks holding a clone of the stream.
            let _ = socket2::SockRef::from(&*stream).shutdown(Shutdown::Both);
            if capture::on() {
                capture::tcp_close(self.0.local, self.0.peer);
            }
        }
    }

    /// The tokio stream, for readiness checks (`net::select`).
    pub fn stream_for(&self, op: &str) -> Result<Arc<TcpStream>, Error> {
        self.stream(op)
    }

    /// The socket of a plain connection about to be upgraded to TLS by
    /// `op` (STARTTLS). Bytes already read but not consumed would be
    /// taken as if they came through the TLS session: refuse them (the
    /// STARTTLS command-injection class of bugs), as well as a connection
    /// that already speaks TLS.
    pub(crate) fn plain_socket(&self, op: &str) -> Result<Arc<TcpStream>, Error> {
        let st = lock(&self.0.state);
        let stream = st.stream(op, self.0.peer)?.clone();
        if st.tls.is_some() {
            return Err(Error::value(op, "the connection already speaks TLS").with_peer(self.0.peer));
        }
        if !st.buf.is_empty() {
            return Err(Error::new(
                Kind::Tls,
                op,
                format!(
                    "{} bytes the peer sent before the handshake are unread; they would pass as if protected by \
                     TLS (command injection): read or drop them first",
                    st.buf.len()
                ),
            )
            .with_peer(self.0.peer)
            .with_reason("injection"));
        }
        Ok(stream)
    }

    /// Put the TLS layer of a finished handshake over the socket.
    pub(crate) fn set_tls(&self, session: tls::Session) {
        lock(&self.0.state).tls = Some(Box::new(session));
    }

    /// Run `f` on the TLS layer (`None` on a plain or closed connection).
    pub(crate) fn with_tls<R>(&self, f: impl FnOnce(Option<&tls::Session>) -> R) -> R {
        let st = lock(&self.0.state);
        f(st.tls.as_deref())
    }

    /// The local address.
    #[must_use]
    pub fn local(&self) -> SocketAddr {
        self.0.local
    }
}

/// First index of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|b| *b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl fmt::Display for TcpConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_closed() { "closed" } else { "open" };
        match self.with_tls(|t| t.map(tls::Session::summary)) {
            Some(tls) => write!(f, "tls {} -> {} ({state}, {tls})", self.0.local, self.0.peer),
            None => write!(f, "tcp {} -> {} ({state})", self.0.local, self.0.peer),
        }
    }
}

/// Connect to `host:port`, trying each resolved address in turn. As in
/// Python's `create_connection(addr, timeout)`, `timeout` bounds the
/// connect and becomes the connection's timeout; `connect_timeout`, if
/// given, bounds the connect alone.
pub fn connect(host: &str, port: u16, opts: &Opts) -> NativeResult<TcpConn> {
    connect_as("tcp::connect", host, port, opts)
}

/// [`connect`] on behalf of operation `op` (`tls::connect` connects first).
pub(crate) fn connect_as(op: &'static str, host: &str, port: u16, opts: &Opts) -> NativeResult<TcpConn> {
    let peer = net::host_port(host, port);
    crate::permissions::check_connect(op, host, port)?;
    let timeout = opts.duration("timeout", Some(DEFAULT_TIMEOUT))?;
    let family = Family::from_opts(op, opts)?;
    let source = opts.string("source")?;
    let source_port =
        u16::try_from(opts.int("source_port", 0)?).map_err(|_| Error::value(op, "source_port must be 0..65535"))?;
    let nodelay = opts.bool("nodelay", false)?;
    let keepalive = opts.duration("keepalive", None)?;
    let faults = faults::for_connection(op, opts.get("faults"))?;
    // `timeout` stays the connection's; the connect waits `connect_timeout`.
    let (conn_timeout, timeout) = (timeout, opts.duration("connect_timeout", timeout)?);

    let addrs = net::resolve(op, host, port, family, timeout)?;
    let source = match source {
        Some(s) => Some(net::resolve(op, &s, source_port, family, timeout)?[0]),
        None if source_port != 0 => Some(SocketAddr::from(([0, 0, 0, 0], source_port))),
        None => None,
    };
    let mut last = None;
    for addr in addrs {
        let attempt = async move {
            let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }?;
            if let Some(src) = source {
                socket.bind(src)?;
            }
            socket.connect(addr).await
        };
        let peer_s = peer.clone();
        let started = std::time::Instant::now();
        let result = runtime::block_on_timeout_at(op, Some(&peer), timeout, async move {
            attempt.await.map_err(|e| Error::io(op, &e).with_peer(peer_s))
        });
        match result {
            Ok(stream) => {
                metrics::time("tcp_connect", &[], started.elapsed());
                if nodelay {
                    stream.set_nodelay(true).map_err(|e| Error::io(op, &e).with_peer(&peer))?;
                }
                if let Some(idle) = keepalive {
                    let ka = socket2::TcpKeepalive::new().with_time(idle);
                    socket2::SockRef::from(&stream)
                        .set_tcp_keepalive(&ka)
                        .map_err(|e| Error::io(op, &e).with_peer(&peer))?;
                }
                let conn = match faults.clone() {
                    None => TcpConn::new(stream).map_err(|e| Error::io(op, &e).with_peer(&peer))?,
                    Some(spec) => {
                        let peer_s = peer.clone();
                        runtime::block_on(async move {
                            TcpConn::bent(stream, Some(spec), faults::Side::Client)
                                .await
                                .map_err(|e| Error::io(op, &e).with_peer(peer_s))
                        })??
                    }
                };
                conn.set_timeout(conn_timeout);
                return Ok(conn);
            }
            Err(e) if runtime::innermost_terminated(&e) => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::new(Kind::Dns, op, "no addresses").with_peer(&peer).into()))
}

/// A listening socket handle.
#[derive(Clone)]
pub struct Listener(Arc<ListenerInner>);

struct ListenerInner {
    listener: Mutex<Option<Arc<TcpListener>>>,
    local: SocketAddr,
    /// `tls::listen`: each accepted connection's handshake, before use.
    tls: Option<tls::ServerTls>,
    /// The faults every accepted connection suffers (`faults` option, `--faults`).
    faults: Option<Arc<faults::Spec>>,
}

impl Listener {
    fn get(&self, op: &str) -> Result<Arc<TcpListener>, Error> {
        lock(&self.0.listener)
            .clone()
            .ok_or_else(|| Error::new(Kind::Closed, op, "the listener is closed").with_peer(self.0.local))
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.0.local.port()
    }

    /// The tokio listener, for readiness checks (`net::select`).
    pub fn listener_for(&self, op: &str) -> Result<Arc<TcpListener>, Error> {
        self.get(op)
    }

    fn accept(&self, timeout: Option<Duration>) -> NativeResult<TcpConn> {
        const OP: &str = "accept";
        let l = self.get(OP)?;
        let (local, faults) = (self.0.local, self.0.faults.clone());
        let conn = runtime::block_on_timeout_at(OP, Some(&local), timeout, async move {
            let (stream, _) = l.accept().await.map_err(|e| Error::io(OP, &e).with_peer(local))?;
            TcpConn::bent(stream, faults, faults::Side::Server).await.map_err(|e| Error::io(OP, &e).with_peer(local))
        })?;
        if let Some(server) = &self.0.tls {
            // As Python's `SSLSocket.accept` (do_handshake_on_connect).
            server.handshake(&conn, OP)?;
        }
        Ok(conn)
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if lock(&self.0.listener).is_some() { "listening" } else { "closed" };
        let kind = if self.0.tls.is_some() { "tls" } else { "tcp" };
        write!(f, "{kind} listener {} ({state})", self.0.local)
    }
}

/// Bind and listen on `host:port` (port 0 picks a free port).
pub fn listen(host: &str, port: u16, opts: &Opts) -> NativeResult<Listener> {
    listen_as("tcp::listen", host, port, opts, None)
}

/// [`listen`] on behalf of `op`; with `tls`, every accepted connection
/// does its handshake first (`tls::listen`).
pub(crate) fn listen_as(
    op: &str,
    host: &str,
    port: u16,
    opts: &Opts,
    tls: Option<tls::ServerTls>,
) -> NativeResult<Listener> {
    crate::permissions::check_listen(op, host, port)?;
    let family = Family::from_opts(op, opts)?;
    let backlog = u32::try_from(opts.int("backlog", 1024)?).map_err(|_| Error::value(op, "backlog must be 0..2^32"))?;
    let reuseaddr = opts.bool("reuseaddr", true)?;
    let faults = faults::for_connection(op, opts.get("faults"))?;
    let reuseport = runtime::context().reuse_port;
    let addr = net::resolve(op, host, port, family, Some(DEFAULT_TIMEOUT))?[0];
    let bind = || -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }?;
        socket.set_reuseaddr(reuseaddr)?;
        if reuseport {
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        socket.listen(backlog)
    };
    let listener = bind().map_err(|e| Error::io(op, &e).with_peer(addr))?;
    let local = listener.local_addr().map_err(|e| Error::io(op, &e))?;
    Ok(Listener(Arc::new(ListenerInner { listener: Mutex::new(Some(Arc::new(listener))), local, tls, faults })))
}

/// A background server started by `listener.serve(handler)`.
#[derive(Clone)]
pub struct Server {
    token: CancellationToken,
    local: SocketAddr,
    tls: bool,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.token.is_cancelled() { "stopped" } else { "serving" };
        let kind = if self.tls { "tls" } else { "tcp" };
        write!(f, "{kind} server {} ({state})", self.local)
    }
}

/// Accept connections in the background, running `handler(conn)` in a new
/// task for each; a failing handler closes only its own connection.
fn serve(listener: &Listener, handler: Callable) -> NativeResult<Server> {
    let l = listener.get("serve")?;
    let token = crate::task::root_token().child_token();
    let local = listener.0.local;
    let stop = token.clone();
    let owner = listener.clone();
    let handler_log = FailureLog::new(format!("serve {local}"), "handler errors");
    let accept_log = FailureLog::new(format!("serve {local}"), "accept failures");
    tokio::task::spawn_local(async move {
        let mut backoff = Duration::ZERO;
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                r = l.accept() => r,
            };
            let conn = match accepted {
                Ok((s, _)) => TcpConn::bent(s, owner.0.faults.clone(), faults::Side::Server).await,
                Err(e) => Err(e),
            };
            let conn = match conn {
                Ok(conn) => conn,
                // The peer reset or aborted this one connection before we
                // got it: nothing to report, take the next one at once.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors or memory: report, back off (5 ms,
                    // doubling up to 1 s) so closing connections can free
                    // some, keep serving.
                    backoff = (backoff * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
                    accept_log.report(format!("accept failed: {e} (retrying in {})", runtime::seconds(backoff)));
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(backoff) => continue,
                    }
                }
            };
            backoff = Duration::ZERO;
            let (handler, log) = (handler.clone(), handler_log.clone());
            let tls = owner.0.tls.clone();
            let spawned = runtime::spawn("serve", runtime::StackKind::Task, stop.child_token(), move || {
                let peer = conn.peer();
                // The handshake runs in the connection's own task, bounded
                // by its timeout: a client that stalls it holds up no other.
                if let Some(server) = tls
                    && let Err(err) = server.handshake(&conn, "serve")
                {
                    conn.close();
                    if !runtime::innermost_terminated(&err) {
                        log.report(format!("handshake with {peer} failed: {}", crate::error::describe(&err)));
                    }
                    return Ok(Dynamic::UNIT);
                }
                let result = handler.call((conn.clone(),));
                conn.close();
                if let Err(err) = &result
                    && !runtime::innermost_terminated(err)
                {
                    log.report(format!("handler for {peer} failed: {}", crate::error::describe(err)));
                }
                result
            });
            // No task for this connection: it is closed (dropped) unserved.
            if let Err(err) = spawned {
                accept_log.report(err.to_string());
            }
        }
        handler_log.flush();
        accept_log.flush();
        owner.close();
    });
    Ok(Server { token, local, tls: listener.0.tls.is_some() })
}

impl Listener {
    fn close(&self) {
        lock(&self.0.listener).take();
    }
}

/// First and longest pause of `serve` after an accept failure that is not
/// one connection's own (out of descriptors or memory).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Whether a failed accept (or reading the new socket's addresses) is the
/// fault of that one connection — reset or aborted by its peer before we
/// took it, or a network error Linux passes on through `accept` — so the
/// next one can be taken at once. Resource exhaustion (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, `ENOMEM`) and anything unexpected are not.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ENOTCONN
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::EPERM
                | libc::ETIMEDOUT
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EOPNOTSUPP
        )
    )
}

/// How long a [`FailureLog`] window lasts, and how many failures it prints.
const LOG_WINDOW: Duration = Duration::from_secs(10);
const LOG_SHOWN: u32 = 5;

/// Failures a server reports on standard error. In each 10-second window
/// the first few are printed; the rest are counted and summarised in one
/// line when the window ends (or the server stops), so a flood of failing
/// connections does not become a flood of output.
pub(crate) struct FailureLog {
    /// `serve 127.0.0.1:9000`
    prefix: String,
    /// `handler errors`
    what: &'static str,
    window: std::cell::RefCell<LogWindow>,
}

#[derive(Default)]
struct LogWindow {
    /// When the current window started; `None` between windows.
    start: Option<Instant>,
    /// Counts windows, so a summary timer knows whether its window still runs.
    generation: u64,
    shown: u32,
    hidden: u64,
}

impl FailureLog {
    pub(crate) fn new(prefix: String, what: &'static str) -> std::rc::Rc<Self> {
        std::rc::Rc::new(Self { prefix, what, window: std::cell::RefCell::default() })
    }

    /// Print `line`, or count it if this window has printed its share.
    pub(crate) fn report(self: &std::rc::Rc<Self>, line: String) {
        let now = Instant::now();
        let mut w = self.window.borrow_mut();
        let start = match w.start {
            Some(start) if now < start + LOG_WINDOW => start,
            _ => {
                // The window ended, its summary timer not run yet.
                self.summarise(&w);
                *w = LogWindow { start: Some(now), generation: w.generation + 1, shown: 0, hidden: 0 };
                now
            }
        };
        if w.shown < LOG_SHOWN {
            w.shown += 1;
            eprintln!("{}: {line}", self.prefix);
            return;
        }
        w.hidden += 1;
        if w.hidden == 1 {
            let (log, generation) = (self.clone(), w.generation);
            tokio::task::spawn_local(async move {
                tokio::time::sleep_until(start + LOG_WINDOW).await;
                if log.window.borrow().generation == generation {
                    log.flush();
                }
            });
        }
    }

    /// Print the summary of the failures not shown, and end the window.
    pub(crate) fn flush(&self) {
        let mut w = self.window.borrow_mut();
        self.summarise(&w);
        w.start = None;
        w.hidden = 0;
    }

    /// The summary line of window `w`, if it hid failures.
    fn summarise(&self, w: &LogWindow) {
        if let Some(start) = w.start
            && w.hidden > 0
        {
            let secs = start.elapsed().min(LOG_WINDOW).as_secs_f64().ceil().max(1.0);
            eprintln!("{}: … {} more {} in the last {secs} s (not shown)", self.prefix, thousands(w.hidden), self.what);
        }
    }
}

/// `3412` as `3,412`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn port_arg(op: &str, port: INT) -> Result<u16, Error> {
    u16::try_from(port).map_err(|_| Error::value(op, format!("port must be 0..65535, got {port}")))
}

pub(crate) const CONNECT_OPTS: &[&str] =
    &["timeout", "connect_timeout", "family", "source", "source_port", "nodelay", "keepalive", "faults"];
pub(crate) const LISTEN_OPTS: &[&str] = &["family", "backlog", "reuseaddr", "faults"];
const UNTIL_OPTS: &[&str] = &["keep", "max"];

/// The doc comment of `conn.send`, registered by hand (see [`module`]).
const SEND_DOC: &str = "\
/// Send all of `data` (blob or string); returns the byte count, or a
/// `timeout` error if the peer does not take it all within `c.timeout`.
///
/// ```rhai
/// c.send(\"GET / HTTP/1.0\\r\\n\\r\\n\");
/// ```";

/// The `tcp::` module.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    // `send` only reads its data, so a loop body passes it the buffer in place
    // instead of copying it for each call.
    let params = ["c: &mut Conn", "data: Dynamic", "INT"].map(String::from).to_vec();
    let types = vec![TypeId::of::<TcpConn>(), TypeId::of::<Dynamic>()];
    Borrowing::register(&mut m, "send", FnNamespace::Global, params, types, SEND_DOC, send);
    m
}

/// `conn.send(data)`: `args` is the connection, then the data, both read in place.
fn send(args: &mut [&mut Dynamic]) -> NativeResult<Dynamic> {
    let (conn, data) = args.split_first_mut().ok_or_else(|| Error::value("send", "no connection"))?;
    let conn = conn.read_lock::<TcpConn>().ok_or_else(|| Error::value("send", "not a connection"))?;
    let data = data.first().ok_or_else(|| Error::value("send", "no data"))?;
    let sent = match data.read_lock::<Blob>() {
        Some(blob) => conn.send(&blob, "send")?,
        None => conn.send(&data_arg(data, "send")?, "send")?,
    };
    Ok(Dynamic::from_int(sent as INT))
}

#[export_module]
mod api {
    use super::*;

    /// A TCP connection.
    pub type Conn = TcpConn;
    /// A listening TCP socket.
    pub type TcpListener = Listener;
    /// A background TCP server.
    pub type TcpServer = Server;

    /// Connect to `host:port` (30 s timeout); tries each address of `host`.
    ///
    /// ```rhai
    /// let c = tcp::connect("127.0.0.1", 8080);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn connect(host: &str, port: INT) -> NativeResult<Conn> {
        super::connect(host, port_arg("tcp::connect", port)?, &Opts::empty("tcp::connect"))
    }

    /// Connect with options: `timeout` (seconds, `()` = none: bounds the
    /// connect and becomes `c.timeout`, as Python's
    /// `create_connection(addr, timeout)`), `connect_timeout` (seconds for
    /// the connect alone; `c.timeout` stays `timeout` or 30), `family`
    /// (`"inet"`/`"inet6"`), `source` (local address), `source_port`,
    /// `nodelay` (bool), `keepalive` (idle seconds), `faults` (this
    /// connection's faults, as `net::faults` takes them; `()` for none
    /// whatever `net::faults` says).
    ///
    /// ```rhai
    /// let c = tcp::connect("localhost", 8080, #{timeout: 2, family: "inet6", nodelay: true});
    /// print(c.timeout);   // 2.0
    /// let d = tcp::connect("localhost", 8080, #{connect_timeout: 1, timeout: ()});
    /// let e = tcp::connect("localhost", 8080, #{faults: "fragment=1..3,seed=7"});
    /// ```
    #[rhai_fn(name = "connect", return_raw)]
    pub fn connect_opts(host: &str, port: INT, opts: Map) -> NativeResult<Conn> {
        let opts = Opts::new("tcp::connect", opts, CONNECT_OPTS)?;
        super::connect(host, port_arg("tcp::connect", port)?, &opts)
    }

    /// Listen on `host:port`; port 0 picks a free port (see `l.port`).
    ///
    /// ```rhai
    /// let l = tcp::listen("127.0.0.1", 0);
    /// print(l.port);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn listen(host: &str, port: INT) -> NativeResult<TcpListener> {
        super::listen(host, port_arg("tcp::listen", port)?, &Opts::empty("tcp::listen"))
    }

    /// Listen with options: `family`, `backlog` (default 1024), `reuseaddr`
    /// (default true), `faults` (what every accepted connection suffers, as
    /// `net::faults` takes them).
    ///
    /// ```rhai
    /// let l = tcp::listen("::1", 0, #{backlog: 16});
    /// let bent = tcp::listen("127.0.0.1", 0, #{faults: #{fragment: true, delay: "5ms"}});
    /// ```
    #[rhai_fn(name = "listen", return_raw)]
    pub fn listen_opts(host: &str, port: INT, opts: Map) -> NativeResult<TcpListener> {
        let opts = Opts::new("tcp::listen", opts, LISTEN_OPTS)?;
        super::listen(host, port_arg("tcp::listen", port)?, &opts)
    }

    /// Wait for the next connection (no timeout).
    ///
    /// ```rhai
    /// let l = tcp::listen("127.0.0.1", 0);
    /// let c = l.accept();
    /// ```
    #[rhai_fn(global, name = "accept", return_raw, pure)]
    pub fn accept(l: &mut TcpListener) -> NativeResult<Conn> {
        l.accept(None)
    }

    /// Wait at most `timeout` seconds for the next connection.
    ///
    /// ```rhai
    /// let l = tcp::listen("127.0.0.1", 0);
    /// try { l.accept(0.1) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "accept", return_raw, pure)]
    pub fn accept_timeout(l: &mut TcpListener, timeout: Dynamic) -> NativeResult<Conn> {
        let t = args::duration("accept", &timeout)?;
        l.accept(t)
    }

    /// Serve in the background: `handler(conn)` runs in its own task for
    /// each connection, which is closed when the handler returns. A handler
    /// error closes only that connection and is printed to standard error
    /// (the first 5 in each 10 s, then one line counting the rest).
    /// Connections reset before they are accepted are skipped silently.
    ///
    /// ```rhai
    /// let srv = tcp::listen("127.0.0.1", 0).serve(|c| {
    ///     loop { let d = c.recv(4096); if d.len() == 0 { break } c.send(d); }
    /// });
    /// print(srv.port);
    /// srv.stop();
    /// ```
    #[rhai_fn(global, name = "serve", return_raw, pure)]
    pub fn serve(ctx: NativeCallContext, l: &mut TcpListener, handler: FnPtr) -> NativeResult<TcpServer> {
        super::serve(l, Callable::new(&ctx, handler))
    }

    /// The listener's port.
    #[rhai_fn(global, get = "port", pure)]
    pub fn listener_port(l: &mut TcpListener) -> INT {
        INT::from(l.port())
    }

    /// The listener's local address `ip:port`.
    #[rhai_fn(global, get = "local", pure)]
    pub fn listener_local(l: &mut TcpListener) -> String {
        l.0.local.to_string()
    }

    /// Stop listening.
    ///
    /// ```rhai
    /// let l = tcp::listen("127.0.0.1", 0);
    /// l.close();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn listener_close(l: &mut TcpListener) {
        l.close();
    }

    /// The server's port.
    #[rhai_fn(global, get = "port", pure)]
    pub fn server_port(s: &mut TcpServer) -> INT {
        INT::from(s.local.port())
    }

    /// Stop the server: no new connections, running handlers are cancelled.
    ///
    /// ```rhai
    /// let s = tcp::listen("127.0.0.1", 0).serve(|c| c.send("hi"));
    /// s.stop();
    /// ```
    #[rhai_fn(global, name = "stop", pure)]
    pub fn server_stop(s: &mut TcpServer) {
        s.token.cancel();
    }

    /// Block until the server is stopped (by `stop()` from another task, or
    /// Ctrl-C): the way a serving script stays up.
    ///
    /// ```rhai
    /// let s = tcp::listen("127.0.0.1", 0).serve(|c| c.send("hi"));
    /// task::start(|| { task::sleep(0.1); s.stop() });
    /// s.wait();
    /// ```
    #[rhai_fn(global, name = "wait", return_raw, pure)]
    pub fn server_wait(s: &mut TcpServer) -> NativeResult<()> {
        let t = s.token.clone();
        runtime::block_on(async move { t.cancelled().await })
    }

    /// Send `line` followed by `"\n"`.
    ///
    /// ```rhai
    /// c.send_line("HELO example.org");
    /// ```
    #[rhai_fn(global, name = "send_line", return_raw, pure)]
    pub fn send_line(c: &mut Conn, line: Dynamic) -> NativeResult<INT> {
        let mut data = data_arg(&line, "send_line")?.into_owned();
        data.push(b'\n');
        c.send(&data, "send_line").map(|n| n as INT)
    }

    /// Receive up to `max` bytes; an empty blob means the peer closed.
    ///
    /// ```rhai
    /// let d = c.recv(4096);
    /// if d.len() == 0 { print("EOF") }
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv(c: &mut Conn, max: INT) -> NativeResult<Blob> {
        let max =
            usize::try_from(max).map_err(|_| Error::value("recv", format!("max must not be negative, got {max}")))?;
        c.recv(max, "recv")
    }

    /// Receive exactly `n` bytes; `closed` error if the peer closes first,
    /// `timeout` if they take longer than `c.timeout` in all. An `n` beyond
    /// the host's blob limit is a `limit` error at once.
    ///
    /// ```rhai
    /// let header = c.recv_exact(4);
    /// ```
    #[rhai_fn(global, name = "recv_exact", return_raw, pure)]
    pub fn recv_exact(c: &mut Conn, n: INT) -> NativeResult<Blob> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= 1 << 30)
            .ok_or_else(|| Error::value("recv_exact", format!("n must be 0..2^30, got {n}")))?;
        crate::bytes::check_blob_len(n, "recv_exact")?;
        c.recv_exact(n, "recv_exact")
    }

    /// Receive through the delimiter (kept); `closed` error at EOF first,
    /// `limit` error past 1 MiB without it.
    ///
    /// ```rhai
    /// let head = c.recv_until("\r\n\r\n");
    /// ```
    #[rhai_fn(global, name = "recv_until", return_raw, pure)]
    pub fn recv_until(c: &mut Conn, delim: Dynamic) -> NativeResult<Blob> {
        recv_until_opts(c, delim, Map::new())
    }

    /// `recv_until` with options `keep` (default true) and `max` bytes.
    ///
    /// ```rhai
    /// let field = c.recv_until(":", #{keep: false, max: 100});
    /// ```
    #[rhai_fn(global, name = "recv_until", return_raw, pure)]
    pub fn recv_until_opts(c: &mut Conn, delim: Dynamic, opts: Map) -> NativeResult<Blob> {
        const OP: &str = "recv_until";
        let opts = Opts::new(OP, opts, UNTIL_OPTS)?;
        let delim = data_arg(&delim, OP)?;
        match c.recv_until(&delim, opts.bool("keep", true)?, opts.size("max", DEFAULT_LINE_MAX)?, OP)? {
            Some(b) => Ok(b),
            None => Err(Error::new(
                Kind::Closed,
                OP,
                format!("connection closed before the delimiter ({} bytes stay buffered)", c.buffered()),
            )
            .with_peer(c.peer())
            .into()),
        }
    }

    /// Receive one line as a string, without its `\n` or `\r\n`; `()` at EOF.
    /// A last line without newline is returned as is.
    ///
    /// ```rhai
    /// while true { let l = c.recv_line(); if l == () { break } print(l); }
    /// ```
    #[rhai_fn(global, name = "recv_line", return_raw, pure)]
    pub fn recv_line(c: &mut Conn) -> NativeResult<Dynamic> {
        recv_line_opts(c, Map::new())
    }

    /// `recv_line` with option `max` (bytes, default 1 MiB).
    ///
    /// ```rhai
    /// let l = c.recv_line(#{max: 512});
    /// ```
    #[rhai_fn(global, name = "recv_line", return_raw, pure)]
    pub fn recv_line_opts(c: &mut Conn, opts: Map) -> NativeResult<Dynamic> {
        const OP: &str = "recv_line";
        let opts = Opts::new(OP, opts, &["max"])?;
        let line = match c.recv_until(b"\n", false, opts.size("max", DEFAULT_LINE_MAX)?, OP)? {
            Some(mut l) => {
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                l
            }
            None if c.buffered() == 0 => return Ok(Dynamic::UNIT),
            None => c.take(usize::MAX),
        };
        Ok(String::from_utf8_lossy(&line).into_owned().into())
    }

    /// Receive everything until the peer closes (at most 64 MiB).
    ///
    /// ```rhai
    /// c.shutdown("write");
    /// let reply = c.recv_all();
    /// ```
    #[rhai_fn(global, name = "recv_all", return_raw, pure)]
    pub fn recv_all(c: &mut Conn) -> NativeResult<Blob> {
        c.recv_all(DEFAULT_ALL_MAX, "recv_all")
    }

    /// `recv_all` with option `max` (bytes).
    ///
    /// ```rhai
    /// let body = c.recv_all(#{max: 1000000});
    /// ```
    #[rhai_fn(global, name = "recv_all", return_raw, pure)]
    pub fn recv_all_opts(c: &mut Conn, opts: Map) -> NativeResult<Blob> {
        let opts = Opts::new("recv_all", opts, &["max"])?;
        c.recv_all(opts.size("max", DEFAULT_ALL_MAX)?, "recv_all")
    }

    /// Half-close: `"write"` sends FIN (the peer reads EOF, you can still
    /// read its reply), `"read"`, or `"both"`.
    ///
    /// ```rhai
    /// c.send("question");
    /// c.shutdown("write");
    /// print(c.recv_all().as_string());
    /// ```
    #[rhai_fn(global, name = "shutdown", return_raw, pure)]
    pub fn shutdown(c: &mut Conn, how: &str) -> NativeResult<()> {
        c.shutdown(how)
    }

    /// Close the connection (idempotent).
    ///
    /// ```rhai
    /// c.close();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn close(c: &mut Conn) {
        c.close();
    }

    /// The remote address `ip:port`.
    #[rhai_fn(global, get = "peer", pure)]
    pub fn peer(c: &mut Conn) -> String {
        c.0.peer.to_string()
    }

    /// The local address `ip:port`.
    #[rhai_fn(global, get = "local", pure)]
    pub fn local(c: &mut Conn) -> String {
        c.0.local.to_string()
    }

    /// Whether the connection was closed with `close()`.
    #[rhai_fn(global, get = "closed", pure)]
    pub fn closed(c: &mut Conn) -> bool {
        c.is_closed()
    }

    /// Seconds each call may take (FLOAT), or `()` for no limit. Default 30,
    /// or the `timeout` option of `tcp::connect`. It bounds a call as a
    /// whole, not each read: `recv_exact(100)` fails with `timeout` after 2 s
    /// even if a byte arrives every 0.5 s (what arrived stays buffered for
    /// the next read). The same holds for `recv`, `recv_line`, `recv_until`,
    /// `recv_all`, `send` and the frame reads.
    ///
    /// ```rhai
    /// c.timeout = 2.5;
    /// c.timeout = ();
    /// ```
    #[rhai_fn(global, get = "timeout", pure)]
    pub fn get_timeout(c: &mut Conn) -> Dynamic {
        c.timeout().map_or(Dynamic::UNIT, |d| d.as_secs_f64().into())
    }

    /// Set the timeout in seconds (INT or FLOAT), or `()` for none.
    #[rhai_fn(global, set = "timeout", return_raw)]
    pub fn set_timeout(c: &mut Conn, value: Dynamic) -> NativeResult<()> {
        c.set_timeout(args::duration("timeout", &value)?);
        Ok(())
    }

    /// The connection's faults (the spec as text, with its seed), or `()`
    /// when it is not bent.
    ///
    /// ```rhai
    /// print(c.faults);   // fragment=1..7,seed=42
    /// ```
    #[rhai_fn(global, get = "faults", pure)]
    pub fn get_faults(c: &mut Conn) -> Dynamic {
        c.faults().map_or(Dynamic::UNIT, |s| s.to_string().into())
    }

    /// Bend the connection from now on: a spec string or map as
    /// `net::faults` takes (`()` or `""`: none). A connection already bent
    /// takes the new faults at its next chunk, counting `drop_after` and
    /// `stall` afresh; one that is not is put through a splice at once,
    /// what it had read staying buffered.
    ///
    /// ```rhai
    /// c.faults = "fragment=1..3";
    /// c.faults = #{ delay: "50ms" };
    /// c.faults = ();
    /// ```
    #[rhai_fn(global, set = "faults", return_raw)]
    pub fn set_faults(c: &mut Conn, spec: Dynamic) -> NativeResult<()> {
        const OP: &str = "faults";
        let spec = faults::Spec::from_dynamic_or_off(OP, &spec)?;
        c.set_faults(spec.map(Arc::new)).map_err(Into::into)
    }

    /// `tcp 127.0.0.1:50112 -> 127.0.0.1:9000 (open)`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn conn_to_string(c: &mut Conn) -> String {
        c.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn conn_to_debug(c: &mut Conn) -> String {
        c.to_string()
    }

    /// `tcp listener 127.0.0.1:9000 (listening)`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn listener_to_string(l: &mut TcpListener) -> String {
        l.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn listener_to_debug(l: &mut TcpListener) -> String {
        l.to_string()
    }

    /// `tcp server 127.0.0.1:9000 (serving)`
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn server_to_string(s: &mut TcpServer) -> String {
        s.to_string()
    }

    /// Same as `to_string`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn server_to_debug(s: &mut TcpServer) -> String {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        let got: Vec<String> = [0, 999, 1000, 3412, 999_999, 1_234_567].map(thousands).to_vec();
        assert_eq!(got, ["0", "999", "1,000", "3,412", "999,999", "1,234,567"]);
    }

    #[test]
    fn only_one_connection_s_own_failures_skip_the_accept_pause() {
        let os = std::io::Error::from_raw_os_error;
        for e in [libc::ECONNABORTED, libc::ENOTCONN, libc::ECONNRESET, libc::EPROTO] {
            assert!(is_connection_error(&os(e)), "{e}");
        }
        for e in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM, libc::EBADF] {
            assert!(!is_connection_error(&os(e)), "{e}");
        }
        assert!(!is_connection_error(&std::io::Error::other("no errno")));
    }
}

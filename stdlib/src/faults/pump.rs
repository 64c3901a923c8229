//! The I/O of fault injection: [`splice`] forwards both directions of a
//! client–server pair of sockets, each through its own [`Faults`]; [`bend`]
//! puts a script's own connection through a splice, by way of a loopback
//! pair, so that every read and write of the script meets the faults while
//! its code and the peer stay as they are. A splice can also hand what it
//! forwards to the capture ([`Tap`]): the recording proxy, and the
//! transports that hand their sockets to hyper (HTTP), use that.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

use super::{Cut, Faults, Spec, Step, next_stream};
use crate::capture::{self, Dir};

/// Chunks read ahead of delivery per direction (bounds a delayed stream's memory).
const QUEUED: usize = 64;
const READ: usize = 16 * 1024;

/// The faults of a splice: fixed for its life (the proxy's), or live ones
/// that the connection's owner may change while it is open (`c.faults =
/// …`); a live splice looks at them before each chunk.
#[derive(Clone, Debug)]
pub struct Control(Arc<ControlInner>);

#[derive(Debug)]
struct ControlInner {
    live: bool,
    /// Bumped by each change.
    generation: AtomicU64,
    spec: Mutex<Option<Arc<Spec>>>,
}

impl Control {
    /// Faults fixed for the splice's life.
    #[must_use]
    pub fn fixed(spec: Arc<Spec>) -> Self {
        Self(Arc::new(ControlInner { live: false, generation: AtomicU64::new(0), spec: Mutex::new(Some(spec)) }))
    }

    /// Faults that [`Control::set`] changes while the splice runs.
    #[must_use]
    pub fn live(spec: Option<Arc<Spec>>) -> Self {
        Self(Arc::new(ControlInner { live: true, generation: AtomicU64::new(0), spec: Mutex::new(spec) }))
    }

    /// The faults now.
    #[must_use]
    pub fn spec(&self) -> Option<Arc<Spec>> {
        self.0.spec.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Change the faults (of a live control): from the next chunk on, with
    /// their byte counts (`drop_after`, `stall`) starting again.
    pub fn set(&self, spec: Option<Arc<Spec>>) {
        *self.0.spec.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = spec;
        self.0.generation.fetch_add(1, Ordering::Release);
    }

    /// The faults of direction `up` of stream `stream` now, if any apply.
    fn faults(&self, stream: u64, up: bool) -> Option<Faults> {
        self.spec().filter(|s| s.applies(up) && !s.is_empty()).map(|s| Faults::new(&s, stream))
    }

    fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }
}

/// Keeps one direction's [`Faults`] in step with a live [`Control`].
struct Follow {
    control: Control,
    seen: u64,
    stream: u64,
    up: bool,
}

impl Follow {
    fn new(control: &Control, stream: u64, up: bool) -> Self {
        Self { control: control.clone(), seen: control.generation(), stream, up }
    }

    /// `faults`, replaced if the control changed since last looked at.
    fn refresh(&mut self, faults: &mut Faults) {
        let now = self.control.generation();
        if now != self.seen {
            self.seen = now;
            *faults = self.control.faults(self.stream, self.up).unwrap_or_else(|| none(self.stream));
        }
    }
}

/// The faults of a stream with none: every chunk as it comes.
fn none(stream: u64) -> Faults {
    Faults::new(&Spec::default(), stream)
}

/// Which end of the connection the script holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The script connected (`up` is what it sends).
    Client,
    /// The script accepted (`up` is what it receives).
    Server,
}

/// How a splice reports to the capture: as the connection `local`–`peer`
/// of a capture, whose local end is the splice's client side when
/// `client` (bytes going up are sent), else its server side.
#[derive(Clone, Copy, Debug)]
pub struct Tap {
    /// The capture's local address.
    pub local: SocketAddr,
    /// The capture's peer address.
    pub peer: SocketAddr,
    /// Whether the local end is the client (the one that connected).
    pub client: bool,
}

impl Tap {
    /// Which way bytes going up (client to server) went, seen from `local`.
    fn dir(self, up: bool) -> Dir {
        if up == self.client { Dir::Sent } else { Dir::Received }
    }
}

/// Put `real` (a connected socket) through the faults of `control`, if
/// any: the returned socket is the script's end of a loopback pair whose
/// other end a splice joins to `real`. With `tap` and a capture on, the
/// splice also reports the bytes to the capture under `real`'s addresses
/// (for transports whose reads the capture does not see). Otherwise
/// `real` itself.
///
/// # Errors
/// When the loopback pair cannot be made (out of descriptors or ports).
pub async fn bend(real: TcpStream, control: Option<Control>, side: Side, tap: bool) -> std::io::Result<TcpStream> {
    let tap = tap_of(&real, side, tap)?;
    if control.is_none() && tap.is_none() {
        return Ok(real);
    }
    let (near, far) = loopback_pair()?;
    start_splice(real, far, control, side, tap);
    Ok(near)
}

/// [`bend`] for a caller that cannot wait (a property setter), with a
/// live control.
///
/// # Errors
/// When the loopback pair cannot be made.
pub fn bend_now(real: TcpStream, control: Control, side: Side) -> std::io::Result<TcpStream> {
    let (near, far) = loopback_pair()?;
    let tap = tap_of(&real, side, false)?;
    start_splice(real, far, Some(control), side, tap);
    Ok(near)
}

/// The capture tap of a bent `real`, when asked for and a capture is on.
fn tap_of(real: &TcpStream, side: Side, tap: bool) -> std::io::Result<Option<Tap>> {
    Ok(match tap && capture::on() {
        true => Some(Tap { local: real.local_addr()?, peer: real.peer_addr()?, client: side == Side::Client }),
        false => None,
    })
}

/// Splice `real` and `far` (the script's loopback end) as a task of the
/// current runtime; it ends with the connection.
fn start_splice(real: TcpStream, far: TcpStream, control: Option<Control>, side: Side, tap: Option<Tap>) {
    let control = control.unwrap_or_else(|| Control::fixed(Arc::new(Spec::default())));
    let stream = next_stream();
    tokio::spawn(async move {
        // A splice ends with an error when one side goes away abruptly:
        // that is the connection ending, which its owner sees on its end.
        let _ = match side {
            Side::Client => splice(far, real, &control, stream, tap).await,
            Side::Server => splice(real, far, &control, stream, tap).await,
        };
    });
}

/// Two connected loopback sockets (no delay on either, registered with
/// the current runtime): a stream that stands in for another, whose far
/// end a task feeds. Made with blocking calls, which on loopback return at
/// once (the kernel completes the handshake inside `connect`), so callers
/// that cannot wait use it too.
///
/// # Errors
/// When out of descriptors or ports.
pub fn loopback_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let near = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (far, _) = listener.accept()?;
    for s in [&near, &far] {
        s.set_nonblocking(true)?;
        s.set_nodelay(true)?;
    }
    Ok((TcpStream::from_std(near)?, TcpStream::from_std(far)?))
}

/// Forward between `client` and `server` until both directions end, the
/// client-to-server direction under the faults of stream `stream`, the
/// other under those of `stream + 1` (as `spec.direction` allows), each
/// chunk read reported to the capture as `tap` says.
///
/// # Errors
/// The first I/O error of either direction.
pub async fn splice(
    client: TcpStream,
    server: TcpStream,
    control: &Control,
    stream: u64,
    tap: Option<Tap>,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    if let Some(t) = tap {
        capture::tcp_open(t.local, t.peer, t.client);
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, control, stream, true, tap.map(|t| (t, t.dir(true))));
    let down = pump(sr, cw, control, stream + 1, false, tap.map(|t| (t, t.dir(false))));
    tokio::pin!(up, down);
    // One direction may end (a half-close) while the other goes on; a
    // reset ends both, dropping every half so the reset socket closes.
    let ended = tokio::select! {
        r = &mut up => match r { Ok(Ended::Reset) => Ok(()), Ok(Ended::Closed) => down.await.map(drop), Err(e) => Err(e) },
        r = &mut down => match r { Ok(Ended::Reset) => Ok(()), Ok(Ended::Closed) => up.await.map(drop), Err(e) => Err(e) },
    };
    if let Some(t) = tap {
        capture::tcp_close(t.local, t.peer);
    }
    ended
}

/// How a direction ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// End of stream, passed on (or cut with a FIN).
    Closed,
    /// Cut with a reset.
    Reset,
}

/// Forward `from` to `to` under the faults of `control` for direction `up`
/// of stream `stream`: a reader queues each chunk with its due time (so a
/// delay adds latency without cutting throughput); the writer delivers it
/// as the faults' plan says, within the bandwidth. Each chunk read is
/// reported to the capture as `tap` says.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    control: &Control,
    stream: u64,
    up: bool,
    tap: Option<(Tap, Dir)>,
) -> std::io::Result<Ended> {
    let report = move |chunk: &[u8]| {
        if let Some((t, dir)) = tap
            && !chunk.is_empty()
        {
            capture::tcp(t.local, t.peer, dir, chunk);
        }
    };
    let faults = control.faults(stream, up);
    let live = control.0.live;
    let Some(mut faults) = faults.or_else(|| live.then(|| none(stream))) else {
        if tap.is_none() {
            let copied = tokio::io::copy(&mut from, &mut to).await;
            let _ = to.shutdown().await;
            return copied.map(|_| Ended::Closed);
        }
        let mut buf = vec![0u8; READ];
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                let _ = to.shutdown().await;
                return Ok(Ended::Closed);
            }
            report(&buf[..n]);
            to.write_all(&buf[..n]).await?;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(QUEUED);
    let mut delays = faults.clone();
    let (mut follow_reads, mut follow_writes) = (Follow::new(control, stream, up), Follow::new(control, stream, up));
    let reader = async move {
        let mut buf = vec![0u8; READ];
        loop {
            let n = from.read(&mut buf).await?;
            report(&buf[..n]);
            follow_reads.refresh(&mut delays);
            if n == 0 || tx.send((Instant::now() + delays.latency(), buf[..n].to_vec())).await.is_err() {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    let writer = async move {
        let started = Instant::now();
        let mut sent = 0u64;
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            follow_writes.refresh(&mut faults);
            for step in faults.plan(&chunk) {
                match step {
                    Step::Pause(d) => tokio::time::sleep(d).await,
                    Step::Write(piece) => {
                        for part in piece.chunks(slice(faults.bandwidth())) {
                            to.write_all(part).await?;
                            sent += part.len() as u64;
                            if let Some(bw) = faults.bandwidth() {
                                tokio::time::sleep_until(started + Duration::from_secs_f64(sent as f64 / bw as f64))
                                    .await;
                            }
                        }
                    }
                    Step::Cut(Cut::Close) => {
                        to.shutdown().await?;
                        return Ok(Ended::Closed);
                    }
                    Step::Cut(Cut::Reset) => {
                        // Linger 0 and no FIN first: the close is a bare RST.
                        socket2::SockRef::from(to.as_ref()).set_linger(Some(Duration::ZERO))?;
                        to.forget();
                        return Ok(Ended::Reset);
                    }
                }
            }
        }
        to.shutdown().await.map(|()| Ended::Closed)
    };
    // The writer drains what the reader queued; the reader stops with the
    // writer (a cut stream reads no more).
    tokio::pin!(reader, writer);
    let mut read_all = false;
    loop {
        tokio::select! {
            w = &mut writer => return w,
            r = &mut reader, if !read_all => {
                r?;
                read_all = true;
            }
        }
    }
}

/// Bytes written at once under a bandwidth cap: a hundredth of a second's worth.
fn slice(bandwidth: Option<u64>) -> usize {
    bandwidth.map_or(usize::MAX, |bw| (bw / 100).max(1) as usize)
}

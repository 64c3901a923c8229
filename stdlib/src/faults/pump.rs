//! The I/O of fault injection: [`splice`] forwards both directions of a
//! client–server pair of sockets, each through its own [`Faults`]; [`bend`]
//! puts a script's own connection through a splice, by way of a loopback
//! pair, so that every read and write of the script meets the faults while
//! its code and the peer stay as they are. A splice can also hand what it
//! forwards to the capture ([`Tap`]): the recording proxy, and the
//! transports that hand their sockets to hyper (HTTP), use that.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use super::{Cut, Faults, Spec, Step, next_stream};
use crate::capture::{self, Dir};

/// Chunks read ahead of delivery per direction (bounds a delayed stream's memory).
const QUEUED: usize = 64;
const READ: usize = 16 * 1024;

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

/// Put `real` (a connected socket) through the faults of `spec`, if any:
/// the returned socket is the script's end of a loopback pair whose other
/// end a splice joins to `real`. The splice runs as a task of the current
/// runtime and ends with the connection. With `tap` and a capture on, the
/// splice also reports the bytes to the capture under `real`'s addresses
/// (for transports whose reads the capture does not see). Otherwise
/// `real` itself.
///
/// # Errors
/// When the loopback pair cannot be made (out of descriptors or ports).
pub async fn bend(real: TcpStream, spec: Option<Arc<Spec>>, side: Side, tap: bool) -> std::io::Result<TcpStream> {
    let tap = match tap && capture::on() {
        true => Some(Tap { local: real.local_addr()?, peer: real.peer_addr()?, client: side == Side::Client }),
        false => None,
    };
    if spec.is_none() && tap.is_none() {
        return Ok(real);
    }
    let spec = spec.unwrap_or_default();
    let (near, far) = loopback_pair().await?;
    let stream = next_stream();
    tokio::spawn(async move {
        // A splice ends with an error when one side goes away abruptly:
        // that is the connection ending, which its owner sees on its end.
        let _ = match side {
            Side::Client => splice(far, real, &spec, stream, tap).await,
            Side::Server => splice(real, far, &spec, stream, tap).await,
        };
    });
    Ok(near)
}

/// Two connected loopback sockets (no delay on either): a stream that
/// stands in for another, whose far end a task feeds.
///
/// # Errors
/// When out of descriptors or ports.
pub async fn loopback_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let (near, (far, _)) = tokio::try_join!(TcpStream::connect(addr), listener.accept())?;
    near.set_nodelay(true)?;
    far.set_nodelay(true)?;
    Ok((near, far))
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
    spec: &Spec,
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
    let faulty = |up: bool| (spec.applies(up) && !spec.is_empty()).then(|| Faults::new(spec, stream + u64::from(!up)));
    let up = pump(cr, sw, faulty(true), tap.map(|t| (t, t.dir(true))));
    let down = pump(sr, cw, faulty(false), tap.map(|t| (t, t.dir(false))));
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

/// Forward `from` to `to` under `faults`: a reader queues each chunk with
/// its due time (so a delay adds latency without cutting throughput); the
/// writer delivers it as the faults' plan says, within the bandwidth. Each
/// chunk read is reported to the capture as `tap` says.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: Option<Faults>,
    tap: Option<(Tap, Dir)>,
) -> std::io::Result<Ended> {
    let report = move |chunk: &[u8]| {
        if let Some((t, dir)) = tap
            && !chunk.is_empty()
        {
            capture::tcp(t.local, t.peer, dir, chunk);
        }
    };
    let Some(mut faults) = faults else {
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
    let reader = async move {
        let mut buf = vec![0u8; READ];
        loop {
            let n = from.read(&mut buf).await?;
            report(&buf[..n]);
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

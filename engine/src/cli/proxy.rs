//! `netscript proxy --listen PORT --to HOST:PORT --faults SPEC`: a TCP
//! proxy that makes the network misbehave on purpose, for programs that are
//! not netscript scripts: writes cut into 1..N-byte pieces, latency, a
//! bandwidth cap, streams closed or reset after N bytes, stalls, flipped
//! bits — seeded, so a failing run is reproduced from the seed it printed.
//! The faults themselves are `netscript_stdlib::faults`; this is the I/O.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use netscript_stdlib::faults::{Cut, Faults, Spec, Step};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Arguments of `netscript proxy`.
#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Port to listen on (0: any free port; the first line printed says which).
    #[arg(long, value_name = "PORT")]
    listen: u16,
    /// Address to listen on.
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    host: String,
    /// Where to forward each connection.
    #[arg(long, value_name = "HOST:PORT")]
    to: String,
    /// The faults: `fragment=1..7`, `delay=100ms~20ms`, `bandwidth=64k`,
    /// `drop_after=N[:reset]`, `reset_probability=P`, `stall=2s@N`,
    /// `corrupt=P`, `direction=both|up|down`, `seed=N`, comma-separated.
    #[arg(long, value_name = "SPEC", default_value = "")]
    faults: String,
}

/// Chunks read ahead of delivery per direction (bounds a delayed stream's memory).
const QUEUED: usize = 64;
const READ: usize = 16 * 1024;

/// Run the proxy until killed; 2 on a usage error, 1 when it cannot listen.
pub fn run(args: &ProxyArgs) -> i32 {
    let mut spec = match Spec::parse(&args.faults) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netscript: --faults: {e}");
            return 2;
        }
    };
    if !args.faults.contains("seed=") {
        spec.seed = fastrand::u64(..);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 1;
        }
    };
    rt.block_on(serve(args, spec))
}

async fn serve(args: &ProxyArgs, spec: Spec) -> i32 {
    let listener = match TcpListener::bind((args.host.as_str(), args.listen)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("netscript: cannot listen on {}:{}: {e}", args.host, args.listen);
            return 1;
        }
    };
    let port = listener.local_addr().map_or(args.listen, |a| a.port());
    // The port last: scripts and tests read it off the end of the line.
    println!("proxy to {} faults {:?} seed {} on {}:{port}", args.to, args.faults, spec.seed, args.host);
    let spec = Arc::new(spec);
    let streams = Arc::new(AtomicU64::new(0));
    loop {
        let Ok((client, peer)) = listener.accept().await else { continue };
        let (spec, to, streams) = (spec.clone(), args.to.clone(), streams.clone());
        tokio::spawn(async move {
            let n = streams.fetch_add(2, Ordering::Relaxed);
            if let Err(e) = proxy(client, &to, &spec, n).await {
                eprintln!("proxy: {peer}: {e}");
            }
        });
    }
}

/// One connection: both directions, each with its own faults.
async fn proxy(client: TcpStream, to: &str, spec: &Spec, stream: u64) -> std::io::Result<()> {
    let server = TcpStream::connect(to).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, spec.applies(true).then(|| Faults::new(spec, stream)));
    let down = pump(sr, cw, spec.applies(false).then(|| Faults::new(spec, stream + 1)));
    tokio::pin!(up, down);
    // One direction may end (a half-close) while the other goes on; a
    // reset ends both, dropping every half so the reset socket closes.
    tokio::select! {
        r = &mut up => if r? == Ended::Reset { Ok(()) } else { down.await.map(drop) },
        r = &mut down => if r? == Ended::Reset { Ok(()) } else { up.await.map(drop) },
    }
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
/// writer delivers it as the faults' plan says, within the bandwidth.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, faults: Option<Faults>) -> std::io::Result<Ended> {
    let Some(mut faults) = faults else {
        let copied = tokio::io::copy(&mut from, &mut to).await;
        let _ = to.shutdown().await;
        return copied.map(|_| Ended::Closed);
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, Vec<u8>)>(QUEUED);
    let mut delays = faults.clone();
    let reader = async move {
        let mut buf = vec![0u8; READ];
        loop {
            let n = from.read(&mut buf).await?;
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

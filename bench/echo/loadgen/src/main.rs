//! Echo benchmark tools for `bench/run`: a closed-loop TCP echo load
//! generator and a native tokio echo server to compare netscript against.
//!
//! ```text
//! echo-bench serve PORT [--threads N]        native echo server (prints "echo server on 127.0.0.1:PORT")
//! echo-bench load --port P [--conns N] [--size B] [--warm S] [--measure S]
//!                 [--threads T] [--idle K] [--host H] [--tls CA.pem]
//! echo-bench handshakes --port P --tls CA.pem [--conns N] [--warm S] [--measure S]
//! ```
//!
//! `--tls CA.pem` speaks TLS (tokio-rustls, ring) to a server whose
//! certificate for `localhost` that CA signed. `handshakes` measures full
//! TLS 1.3 handshakes: each of `N` loops connects, handshakes (no session
//! resumption), echoes one message, closes, and starts over.
//!
//! `load` opens `K` idle connections first (held open, never used), then `N`
//! active ones. Each active connection sends one `B`-byte message, waits for
//! all of it to come back, and sends the next (closed loop). After `--warm`
//! seconds it starts counting; after `--measure` more seconds it stops and
//! prints one JSON line: messages per second and latency percentiles (µs)
//! over the measured window.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

const WARM: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// Connections opened at once while setting up (keeps accept queues of
/// servers with small backlogs from overflowing).
const CONNECT_BATCH: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("load") => load(&args[1..]),
        Some("handshakes") => handshakes(&args[1..]),
        _ => Err(usage()),
    };
    if let Err(msg) = result {
        eprintln!("echo-bench: {msg}");
        std::process::exit(2);
    }
}

fn usage() -> String {
    "usage: echo-bench serve PORT [--threads N] | echo-bench load --port P [--conns N] [--size B] \
     [--warm S] [--measure S] [--threads T] [--idle K] [--host H] [--tls CA.pem] | \
     echo-bench handshakes --port P --tls CA.pem [--conns N] [--warm S] [--measure S]"
        .to_string()
}

/// `--name value` options after positional arguments.
struct Flags<'a>(&'a [String]);

impl Flags<'_> {
    fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.0.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => {
                let v = self.0.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
                v.parse().map_err(|_| format!("bad value for {name}: {v}"))
            }
        }
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut b = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all().build().map_err(|e| format!("runtime: {e}"))
}

/// Native echo server: one task per connection, read then write back.
/// One thread by default, like netscript, Node and asyncio.
fn serve(args: &[String]) -> Result<(), String> {
    let port: u16 = args.first().ok_or_else(usage)?.parse().map_err(|_| usage())?;
    let threads: usize = Flags(args).get("--threads", 1)?;
    runtime(threads)?.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| format!("bind: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("echo server on {local}");
        loop {
            let Ok((mut s, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    })
}

struct Load {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    warm: Duration,
    measure: Duration,
    idle: usize,
    tls: Option<TlsConnector>,
}

/// A TLS 1.3 client that trusts the CA in `path` (no resumption: every
/// connection does a full handshake).
fn connector(path: &str) -> Result<TlsConnector, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{path}: {e}"))? {
        roots.add(cert.map_err(|e| format!("{path}: {e}"))?).map_err(|e| format!("{path}: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

fn server_name() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").expect("a valid name")
}

fn load(args: &[String]) -> Result<(), String> {
    let f = Flags(args);
    let host: String = f.get("--host", "127.0.0.1".to_string())?;
    let port: u16 = f.get("--port", 0)?;
    let cfg = Load {
        addr: format!("{host}:{port}").parse().map_err(|e| format!("address: {e}"))?,
        conns: f.get("--conns", 50)?,
        size: f.get("--size", 64)?,
        warm: Duration::from_secs_f64(f.get("--warm", 5.0)?),
        measure: Duration::from_secs_f64(f.get("--measure", 10.0)?),
        idle: f.get("--idle", 0)?,
        tls: match f.get("--tls", String::new())?.as_str() {
            "" => None,
            ca => Some(connector(ca)?),
        },
    };
    let threads: usize = f.get("--threads", 1)?;
    runtime(threads)?.block_on(run_load(cfg))
}

/// Open `n` connections, `CONNECT_BATCH` at a time.
async fn connect_all(addr: SocketAddr, n: usize) -> Result<Vec<TcpStream>, String> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = CONNECT_BATCH.min(n - out.len());
        let mut pending = Vec::with_capacity(batch);
        for _ in 0..batch {
            pending.push(tokio::spawn(TcpStream::connect(addr)));
        }
        for p in pending {
            let s = p.await.map_err(|e| e.to_string())?.map_err(|e| format!("connect {addr} (#{}): {e}", out.len()))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            out.push(s);
        }
    }
    Ok(out)
}

/// What one connection measured.
struct Tally {
    hist: Histogram<u32>,
    count: u64,
    error: Option<String>,
}

async fn run_load(cfg: Load) -> Result<(), String> {
    let idle = connect_all(cfg.addr, cfg.idle).await?;
    let active = connect_all(cfg.addr, cfg.conns).await?;
    let phase = Arc::new(AtomicU8::new(WARM));
    let mut tasks = Vec::with_capacity(cfg.conns);
    for s in active {
        let phase = phase.clone();
        tasks.push(match &cfg.tls {
            None => tokio::spawn(client(s, cfg.size, phase)),
            Some(tls) => {
                let s = tls.connect(server_name(), s).await.map_err(|e| format!("TLS handshake: {e}"))?;
                tokio::spawn(client(s, cfg.size, phase))
            }
        });
    }
    tokio::time::sleep(cfg.warm).await;
    phase.store(MEASURE, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(cfg.measure).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();

    let mut hist = new_hist();
    let mut count = 0u64;
    let mut errors = Vec::new();
    for t in tasks {
        let tally = t.await.map_err(|e| e.to_string())?;
        hist.add(&tally.hist).map_err(|e| e.to_string())?;
        count += tally.count;
        errors.extend(tally.error);
    }
    drop(idle);
    let first_error = errors.first().map_or("null".to_string(), |e| format!("{e:?}"));
    println!(
        "{{\"conns\": {}, \"idle\": {}, \"size\": {}, \"seconds\": {elapsed:.3}, \"msgs\": {count}, \
         \"msgs_per_s\": {:.0}, \"p50_us\": {}, \"p99_us\": {}, \"p999_us\": {}, \"max_us\": {}, \
         \"errors\": {}, \"first_error\": {first_error}}}",
        cfg.conns,
        cfg.idle,
        cfg.size,
        count as f64 / elapsed,
        hist.value_at_quantile(0.50),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        errors.len(),
    );
    Ok(())
}

/// Latency in microseconds, 1 µs .. 10 s, two significant figures (≤ 1 %
/// error; small enough to keep one per connection).
fn new_hist() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 10_000_000, 2).expect("valid histogram bounds")
}

/// One closed-loop connection: send, wait for the whole echo, repeat.
async fn client<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, size: usize, phase: Arc<AtomicU8>) -> Tally {
    let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let mut buf = vec![0u8; size];
    let mut tally = Tally { hist: new_hist(), count: 0, error: None };
    loop {
        let t0 = Instant::now();
        let round = async {
            s.write_all(&msg).await?;
            s.read_exact(&mut buf).await?;
            Ok::<(), std::io::Error>(())
        };
        if let Err(e) = round.await {
            tally.error = Some(e.to_string());
            return tally;
        }
        if buf != msg {
            tally.error = Some("echo differs from what was sent".into());
            return tally;
        }
        match phase.load(Ordering::Relaxed) {
            MEASURE => {
                let us = t0.elapsed().as_micros().max(1) as u64;
                tally.hist.saturating_record(us);
                tally.count += 1;
            }
            STOP => return tally,
            _ => {}
        }
    }
}

/// Full TLS handshakes per second: `--conns` loops of connect, handshake,
/// one 64-byte echo, close.
fn handshakes(args: &[String]) -> Result<(), String> {
    let f = Flags(args);
    let port: u16 = f.get("--port", 0)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().map_err(|e| format!("address: {e}"))?;
    let tls = connector(&f.get("--tls", String::new())?)?;
    let conns: usize = f.get("--conns", 8)?;
    let warm = Duration::from_secs_f64(f.get("--warm", 2.0)?);
    let measure = Duration::from_secs_f64(f.get("--measure", 10.0)?);
    runtime(1)?.block_on(async move {
        let phase = Arc::new(AtomicU8::new(WARM));
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (tls, phase) = (tls.clone(), phase.clone());
            tasks.push(tokio::spawn(async move {
                let msg = [7u8; 64];
                let mut buf = [0u8; 64];
                let (mut count, mut error) = (0u64, None);
                while phase.load(Ordering::Relaxed) != STOP {
                    let round = async {
                        let tcp = TcpStream::connect(addr).await?;
                        tcp.set_nodelay(true)?;
                        let mut s = tls.connect(server_name(), tcp).await?;
                        s.write_all(&msg).await?;
                        s.read_exact(&mut buf).await?;
                        s.shutdown().await
                    };
                    match round.await {
                        Ok(()) if phase.load(Ordering::Relaxed) == MEASURE => count += 1,
                        Ok(()) => {}
                        Err(e) => {
                            error = Some(e.to_string());
                            break;
                        }
                    }
                }
                (count, error)
            }));
        }
        tokio::time::sleep(warm).await;
        phase.store(MEASURE, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep(measure).await;
        phase.store(STOP, Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let (mut count, mut errors) = (0u64, Vec::new());
        for t in tasks {
            let (n, e) = t.await.map_err(|e| e.to_string())?;
            count += n;
            errors.extend(e);
        }
        let first_error = errors.first().map_or("null".to_string(), |e| format!("{e:?}"));
        println!(
            "{{\"conns\": {conns}, \"seconds\": {elapsed:.3}, \"handshakes\": {count}, \"handshakes_per_s\": {:.0}, \
             \"errors\": {}, \"first_error\": {first_error}}}",
            count as f64 / elapsed,
            errors.len()
        );
        Ok(())
    })
}

//! `netscript proxy --listen PORT --to HOST:PORT --faults SPEC`: a TCP
//! proxy that makes the network misbehave on purpose, for programs that are
//! not netscript scripts: writes cut into 1..N-byte pieces, latency, a
//! bandwidth cap, streams closed or reset after N bytes, stalls, flipped
//! bits — seeded, so a failing run is reproduced from the seed it printed.
//! The faults and their I/O are `netscript_stdlib::faults`; this is the
//! listener. `netscript record --out FILE` is the same proxy saving each
//! conversation as JSON lines (the capture's `--trace-json` format, which
//! `mock::replay` and `netscript replay` play back). Either side may be
//! TLS (`--tls-cert`/`--tls-key` towards clients, `--to-tls` towards the
//! server): the proxy ends each TLS session itself, so faults and the
//! recording see the plaintext.

use std::sync::Arc;

use clap::Args;
use netscript_stdlib::capture;
use netscript_stdlib::faults::{self, Spec, Tap};
use tokio::net::{TcpListener, TcpStream};

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
    /// Save every conversation to FILE (JSON lines: per connection, who sent
    /// what, when); required by `netscript record`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Accept TLS from clients with this certificate chain (PEM; with `--tls-key`).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<String>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<String>,
    /// Speak TLS to the server (verified against the system's roots, or `--ca`).
    #[arg(long)]
    to_tls: bool,
    /// CA certificates (PEM) that sign the server's certificate (with `--to-tls`).
    #[arg(long, value_name = "PEM", requires = "to_tls")]
    ca: Option<String>,
    /// The name to verify the server's certificate against (default: the host of `--to`).
    #[arg(long, value_name = "NAME", requires = "to_tls")]
    server_name: Option<String>,
    /// Do not verify the server's certificate (with `--to-tls`).
    #[arg(long, requires = "to_tls")]
    insecure: bool,
}

/// The TLS ends of the proxy: towards clients, towards the server (with
/// the name to verify).
struct Tls {
    accept: Option<Arc<rustls::ServerConfig>>,
    connect: Option<(Arc<rustls::ClientConfig>, String)>,
}

impl Tls {
    fn new(args: &ProxyArgs) -> Result<Self, String> {
        let accept = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let mut opts = rhai::Map::new();
                opts.insert("cert".into(), cert.clone().into());
                opts.insert("key".into(), key.clone().into());
                Some(netscript_stdlib::tls::server_config("--tls-cert", opts).map_err(|e| e.to_string())?)
            }
            _ => None,
        };
        let connect = if args.to_tls {
            let mut opts = rhai::Map::new();
            if let Some(ca) = &args.ca {
                opts.insert("ca".into(), ca.clone().into());
            }
            opts.insert("insecure".into(), args.insecure.into());
            let config = netscript_stdlib::tls::client_config("--to-tls", opts).map_err(|e| e.to_string())?;
            let host = args.to.rsplit_once(':').map_or(args.to.as_str(), |(h, _)| h).trim_matches(['[', ']']);
            Some((config, args.server_name.clone().unwrap_or_else(|| host.to_string())))
        } else {
            None
        };
        Ok(Self { accept, connect })
    }
}

/// `stream` as a plain socket: the near end of a loopback pair whose far
/// end a task joins to it (the proxy's own TLS sessions, ended here).
async fn plain<S>(stream: S) -> std::io::Result<TcpStream>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (near, mut far) = faults::loopback_pair()?;
    tokio::spawn(async move {
        let mut stream = stream;
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut far).await;
    });
    Ok(near)
}

/// The client and server sockets of one proxied connection, TLS ended.
async fn ends(client: TcpStream, to: &str, tls: &Tls) -> Result<(TcpStream, TcpStream, std::net::SocketAddr), String> {
    let server = TcpStream::connect(to).await.map_err(|e| format!("{to}: {e}"))?;
    let server_addr = server.peer_addr().map_err(|e| e.to_string())?;
    let client = match &tls.accept {
        Some(config) => plain(
            netscript_stdlib::tls::accept_stream("proxy accept", client, config.clone())
                .await
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?,
        None => client,
    };
    let server = match &tls.connect {
        Some((config, name)) => plain(
            netscript_stdlib::tls::connect_stream("proxy connect", server, name, config.clone())
                .await
                .map_err(|e| e.to_string())?,
        )
        .await
        .map_err(|e| e.to_string())?,
        None => server,
    };
    Ok((client, server, server_addr))
}

/// Run the proxy until killed; 2 on a usage error, 1 when it cannot listen.
pub fn run(args: &ProxyArgs) -> i32 {
    let spec = match Spec::parse_seeded(&args.faults) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netscript: --faults: {e}");
            return 2;
        }
    };
    let tls = match Tls::new(args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    if let Some(out) = &args.out
        && let Err(e) = capture::start_json(out)
    {
        eprintln!("netscript: cannot write {}: {e}", out.display());
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 1;
        }
    };
    rt.block_on(serve(args, spec, tls))
}

async fn serve(args: &ProxyArgs, spec: Spec, tls: Tls) -> i32 {
    let listener = match TcpListener::bind((args.host.as_str(), args.listen)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("netscript: cannot listen on {}:{}: {e}", args.host, args.listen);
            return 1;
        }
    };
    let port = listener.local_addr().map_or(args.listen, |a| a.port());
    // The port last: scripts and tests read it off the end of the line.
    let recording = args.out.as_ref().map(|p| format!(" recording to {}", p.display())).unwrap_or_default();
    println!("proxy to {} faults {:?} seed {}{recording} on {}:{port}", args.to, args.faults, spec.seed, args.host);
    let (spec, tls) = (faults::Control::fixed(Arc::new(spec)), Arc::new(tls));
    let record = args.out.is_some();
    loop {
        let Ok((client, peer)) = listener.accept().await else { continue };
        let (spec, tls, to) = (spec.clone(), tls.clone(), args.to.clone());
        tokio::spawn(async move {
            let n = faults::next_stream();
            let spliced = match ends(client, &to, &tls).await {
                Ok((client, server, to)) => {
                    // Recorded as the client's connection to the server.
                    let tap = record.then_some(Tap { local: peer, peer: to, client: true });
                    let done = faults::splice(client, server, &spec, n, tap).await.map_err(|e| e.to_string());
                    // Each conversation reaches the file when it ends.
                    if record && let Err(e) = capture::flush() {
                        eprintln!("proxy: cannot write the recording: {e}");
                    }
                    done
                }
                Err(e) => Err(e),
            };
            if let Err(e) = spliced {
                eprintln!("proxy: {peer}: {e}");
            }
        });
    }
}

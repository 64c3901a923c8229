//! `netscript proxy --listen PORT --to HOST:PORT --faults SPEC`: a TCP
//! proxy that makes the network misbehave on purpose, for programs that are
//! not netscript scripts: writes cut into 1..N-byte pieces, latency, a
//! bandwidth cap, streams closed or reset after N bytes, stalls, flipped
//! bits — seeded, so a failing run is reproduced from the seed it printed.
//! The faults and their I/O are `netscript_stdlib::faults`; this is the
//! listener. `netscript record --out FILE` is the same proxy saving each
//! conversation as JSON lines (the capture's `--trace-json` format, which
//! `mock::replay` and `netscript replay` play back).

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
    let recording = args.out.as_ref().map(|p| format!(" recording to {}", p.display())).unwrap_or_default();
    println!("proxy to {} faults {:?} seed {}{recording} on {}:{port}", args.to, args.faults, spec.seed, args.host);
    let spec = Arc::new(spec);
    let record = args.out.is_some();
    loop {
        let Ok((client, peer)) = listener.accept().await else { continue };
        let (spec, to) = (spec.clone(), args.to.clone());
        tokio::spawn(async move {
            let n = faults::next_stream();
            let spliced = match TcpStream::connect(&to).await {
                Ok(server) => {
                    // Recorded as the client's connection to the server.
                    let tap = match (record, server.peer_addr()) {
                        (true, Ok(to)) => Some(Tap { local: peer, peer: to, client: true }),
                        _ => None,
                    };
                    let done = faults::splice(client, server, &spec, n, tap).await;
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

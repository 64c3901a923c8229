//! `netscript replay FILE`: a recording (`--record FILE`, `netscript
//! record --out FILE`) played back. With `--listen PORT`, a server that
//! plays the recorded server side to each new client until killed, printing
//! each mismatch with a diff; with `--to HOST:PORT`, the recorded client
//! side played once against a server, exit status 1 at a mismatch. Both
//! are `mock::replay` / `mock::replay_client` run as a script on a host.

use clap::Args;

use super::HostArgs;

/// Arguments of `netscript replay`.
#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The recording (JSON lines).
    #[arg(value_name = "FILE")]
    file: String,
    /// Serve the recorded server side on this port (0: any free port; the
    /// first line printed says which).
    #[arg(long, value_name = "PORT", conflicts_with = "to", required_unless_present = "to")]
    listen: Option<u16>,
    /// Address to listen on.
    #[arg(long = "host", value_name = "HOST", default_value = "127.0.0.1")]
    address: String,
    /// Play the recorded client side against this server instead.
    #[arg(long, value_name = "HOST:PORT")]
    to: Option<String>,
    /// `fast` (replies at once) or `original` (the recorded pauses).
    #[arg(long, value_name = "TIMING", default_value = "fast", value_parser = ["fast", "original"])]
    timing: String,
    /// Seconds each read may take.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    timeout: f64,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

/// The script both modes run: `ARGS` are the file, the mode's address and
/// the options.
const SCRIPT: &str = r#"
import "mock" as mock;
let file = ARGS[0];
let host = ARGS[2];
let port = parse_int(ARGS[3]);
let opts = #{timing: ARGS[4], timeout: parse_float(ARGS[5]), log: true};
if ARGS[1] == "listen" {
    let m = mock::replay(file, opts + #{host: host, port: port});
    print(`replaying ${m.clients} conversation(s) of ${file} on ${m.host}:${m.port}`);
    m.server.wait();
} else {
    let n = mock::replay_client(file, host, port, opts);
    print(`${n} conversation(s) of ${file} replayed against ${host}:${port}: as recorded`);
}
"#;

/// Run the replay; the exit status of the script (1 at a client-side
/// mismatch), 2 for a `--to` that is not HOST:PORT.
pub fn run(args: &ReplayArgs) -> i32 {
    let (mode, host, port) = match (&args.to, args.listen) {
        (Some(to), _) => match to.rsplit_once(':').map(|(h, p)| (h.trim_matches(['[', ']']), p.parse::<u16>())) {
            Some((h, Ok(p))) if !h.is_empty() => ("to", h.to_string(), p),
            _ => {
                eprintln!("netscript replay: --to {to}: expected HOST:PORT");
                return 2;
            }
        },
        (None, Some(port)) => ("listen", args.address.clone(), port),
        (None, None) => unreachable!("clap requires --listen or --to"),
    };
    let script_args =
        [args.file.clone(), mode.into(), host, port.to_string(), args.timing.clone(), args.timeout.to_string()];
    super::run::run_source(&args.host, "<replay>", SCRIPT, &script_args)
}

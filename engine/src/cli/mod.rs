//! Command-line interface: argument parsing and dispatch to one file per
//! subcommand. Exit status: 0 success, 1 script error, 2 usage error (and
//! 99 when a load test's thresholds fail).

mod doc;
mod load;
mod mapreduce;
mod proxy;
mod repl;
mod replay;
mod run;
mod test;
mod watch;

use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use netscript::{Host, HostBuilder, Limits, Permissions};
use netscript_stdlib::faults::Spec;

/// netscript — network-protocol scripts in blocking style on an event loop.
#[derive(Parser)]
#[command(name = "netscript", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a script file (`-` reads standard input; `-e CODE` runs a string).
    Run(run::RunArgs),
    /// Interactive prompt: state, connections and servers persist across lines.
    Repl(repl::ReplArgs),
    /// Run a script and re-run or hot-swap it whenever it or its imports change.
    Watch(watch::WatchArgs),
    /// Run `test_*` functions of `*_test.rhai` files.
    Test(test::TestArgs),
    /// Print the script reference (every function, its signature and example) as Markdown.
    Doc(doc::DocArgs),
    /// Run a map-reduce job locally on every core, or as a Hadoop Streaming phase (`--phase map|reduce`).
    Mapreduce(mapreduce::MapReduceArgs),
    /// Run a load scenario (`fn iteration()` as one iteration of a virtual user), k6-style; or merge summaries.
    Load(load::LoadArgs),
    /// A TCP proxy that injects faults (fragmented writes, latency, bandwidth, resets…), seeded.
    Proxy(proxy::ProxyArgs),
    /// A recording TCP proxy: every conversation through it saved to `--out FILE` (JSON lines).
    Record(proxy::ProxyArgs),
    /// Play a recording's server side to new clients (`--listen PORT`), or its client side against a server (`--to HOST:PORT`).
    Replay(replay::ReplayArgs),
}

/// Limits, permissions and tracing shared by the subcommands that run scripts.
#[derive(Args, Debug, Clone, Default)]
pub struct HostArgs {
    /// Stop a run after this many seconds (wall clock).
    #[arg(long, value_name = "SECS")]
    deadline: Option<f64>,
    /// Maximum Rhai operations per run.
    #[arg(long, value_name = "N")]
    max_operations: Option<u64>,
    /// Maximum script call depth of the main script (at most 1000); tasks and
    /// connection handlers are capped at 64 levels (48 in debug builds).
    #[arg(long, value_name = "N")]
    max_call_levels: Option<usize>,
    /// Maximum tasks at once (default: what vm.max_map_count allows, two
    /// memory mappings per task stack).
    #[arg(long, value_name = "N")]
    max_tasks: Option<usize>,
    /// Maximum string length in bytes.
    #[arg(long, value_name = "BYTES")]
    max_string_size: Option<usize>,
    /// Maximum array or blob length.
    #[arg(long, value_name = "N")]
    max_array_size: Option<usize>,
    /// Only allow network access to these hosts (comma-separated). `host`
    /// allows every port of it, `host:port` that port only; write IPv6
    /// addresses in brackets (`[::1]`, `[::1]:7500`). A name allows the
    /// addresses it resolves to; resolving any other name, or a reverse
    /// lookup of an address not listed, is refused. `--allow-net ""`
    /// allows nothing.
    #[arg(long, value_name = "HOSTS", value_delimiter = ',')]
    allow_net: Option<Vec<String>>,
    /// Forbid listening: no `tcp::listen`, and UDP sockets only on port 0,
    /// receiving only from addresses they have sent to.
    #[arg(long)]
    deny_listen: bool,
    /// Directory searched by `import` (repeatable).
    #[arg(long = "module-path", short = 'I', value_name = "DIR")]
    module_paths: Vec<std::path::PathBuf>,
    /// Print every send and receive to standard error.
    #[arg(long)]
    trace: bool,
    /// Bend every connection the script opens or accepts: `fragment` (1..7-byte
    /// pieces, the framing-bug finder), `delay=50ms~10ms`, `bandwidth=64k`,
    /// `drop_after=N[:reset]`, `reset_probability=P`, `stall=2s@N`,
    /// `corrupt=P`, `direction=up|down`, `seed=N`, comma-separated. The
    /// faults and their seed are printed to standard error first.
    #[arg(long, value_name = "SPEC")]
    faults: Option<String>,
    /// Write every connection's traffic to FILE as pcapng (Wireshark, tshark):
    /// TCP streams with synthesised headers, UDP datagrams, TLS as its records.
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,
    /// Write one JSON line per send and receive to FILE: time, protocol,
    /// connection number, role, addresses, direction, length, the bytes in
    /// base64 and as text when they are text. The file is a recording that
    /// `mock::replay` and `netscript replay` play back (hence `--record`).
    #[arg(long, visible_alias = "record", value_name = "FILE")]
    trace_json: Option<std::path::PathBuf>,
    /// Append the secrets of every TLS session to FILE in the SSLKEYLOGFILE
    /// format, so that Wireshark can decrypt a capture.
    #[arg(long, value_name = "FILE")]
    keylog: Option<std::path::PathBuf>,
    /// How long a lone task polls for a reply before the thread sleeps
    /// (default 50us; 0 sleeps at once): sequential request-reply scripts
    /// get replies sooner, for at most this much CPU per longer wait.
    #[arg(long, value_name = "DURATION", value_parser = netscript_stdlib::args::parse_duration)]
    spin: Option<Duration>,
}

impl HostArgs {
    /// Build a host from these options; Ctrl-C cancels the running script.
    pub fn host(&self) -> Result<Host, String> {
        self.builder()?.ctrl_c(true).build().map_err(|e| e.to_string())
    }

    /// A host builder configured from these options (no Ctrl-C handling).
    /// Builders of the `n` hosts of `--workers N`: each runs the script on
    /// its own thread, numbered 0..N (`worker::id()`), and they share their
    /// listening ports (`SO_REUSEPORT`). One plain builder when `n` is 1.
    pub fn builders(&self, n: usize) -> Result<Vec<HostBuilder>, String> {
        if n == 0 {
            return Err("--workers must be at least 1".into());
        }
        if n == 1 {
            return Ok(vec![self.builder()?]);
        }
        netscript_stdlib::worker::reserve_ids(n);
        (0..n).map(|i| Ok(self.builder()?.worker(i))).collect()
    }

    /// What these options set for the whole process, before any host
    /// starts: the `--pcap` capture, the `--trace-json` lines and the
    /// `--keylog` file; and the seed of `--faults`, drawn if it gives none and
    /// announced on standard error so that a failing run can be repeated
    /// (every host built from these options then has the same faults).
    fn settle(&mut self) -> Result<(), String> {
        if let Some(path) = &self.keylog {
            netscript_stdlib::tls::set_keylog(path).map_err(|e| format!("--keylog {}: {e}", path.display()))?;
        }
        if let Some(text) = &self.faults {
            let spec = Spec::parse_seeded(text).map_err(|e| format!("--faults: {e}"))?;
            eprintln!("netscript: faults {spec} (repeat with --faults {spec})");
            self.faults = Some(spec.to_string());
        }
        if let Some(path) = &self.pcap {
            netscript_stdlib::capture::start(path).map_err(|e| format!("--pcap {}: {e}", path.display()))?;
        }
        if let Some(path) = &self.trace_json {
            netscript_stdlib::capture::start_json(path).map_err(|e| format!("--trace-json {}: {e}", path.display()))?;
        }
        Ok(())
    }

    pub fn builder(&self) -> Result<HostBuilder, String> {
        let faults = match &self.faults {
            Some(text) => Some(Spec::parse_seeded(text).map_err(|e| format!("--faults: {e}"))?),
            None => None,
        };
        let defaults = Limits::default();
        let deadline = match self.deadline {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(s) => return Err(format!("--deadline must be a positive number of seconds, got {s}")),
            None => None,
        };
        let limits = Limits {
            max_operations: self.max_operations.unwrap_or(defaults.max_operations),
            max_call_levels: self.max_call_levels.unwrap_or(defaults.max_call_levels),
            max_string_size: self.max_string_size.unwrap_or(defaults.max_string_size),
            max_array_size: self.max_array_size.unwrap_or(defaults.max_array_size),
            max_map_size: defaults.max_map_size,
            deadline,
            max_tasks: self.max_tasks.unwrap_or(defaults.max_tasks),
        };
        limits.check()?;
        let permissions = match &self.allow_net {
            Some(list) => Permissions::allow_net(list).map_err(|e| e.to_string())?,
            None => Permissions::default(),
        }
        .deny_listen(self.deny_listen);
        let mut builder = Host::builder().limits(limits).permissions(permissions).trace(self.trace).faults(faults);
        if let Some(limit) = self.spin {
            builder = builder.spin(limit);
        }
        for dir in &self.module_paths {
            builder = builder.module_path(dir);
        }
        Ok(builder)
    }
}

/// Parse arguments and run; returns the exit status.
pub fn main() -> i32 {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `#!/usr/bin/env netscript` runs the file: `netscript FILE …` means `netscript run FILE …`.
    let subcommand = |name: &str| Cli::command().get_subcommands().any(|c| c.get_name() == name) || name == "help";
    if let Some(first) = argv.get(1).and_then(|a| a.to_str())
        && !subcommand(first)
        && (first.ends_with(".rhai") || (std::path::Path::new(first).is_file() && !first.starts_with('-')))
    {
        argv.insert(1, "run".into());
    }
    let mut cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let host = match &mut cli.command {
        Command::Run(a) => Some(&mut a.host),
        Command::Repl(a) => Some(&mut a.host),
        Command::Watch(a) => Some(&mut a.host),
        Command::Test(a) => Some(&mut a.host),
        Command::Mapreduce(a) => Some(&mut a.host),
        Command::Load(a) => Some(&mut a.host),
        Command::Replay(a) => Some(&mut a.host),
        Command::Doc(_) | Command::Proxy(_) | Command::Record(_) => None,
    };
    if let Some(Err(e)) = host.map(HostArgs::settle) {
        eprintln!("netscript: {e}");
        return 2;
    }
    let status = dispatch(cli.command);
    // The capture of `--pcap` or of a script's `net::capture`, finished.
    if let Err(e) = netscript_stdlib::capture::stop() {
        eprintln!("netscript: --pcap: {e}");
        return 1;
    }
    status
}

fn dispatch(command: Command) -> i32 {
    match command {
        Command::Run(args) if args.watch => watch::run_watch(&args),
        Command::Run(args) => run::run(&args),
        Command::Repl(args) => repl::repl(&args),
        Command::Watch(args) => watch::watch(&args),
        Command::Test(args) => test::test(&args),
        Command::Doc(args) => doc::run(&args),
        Command::Mapreduce(args) => mapreduce::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Proxy(args) => proxy::run(&args),
        Command::Record(args) if args.out.is_none() => {
            eprintln!("netscript record: --out FILE is required");
            2
        }
        Command::Record(args) => proxy::run(&args),
        Command::Replay(args) => replay::run(&args),
    }
}

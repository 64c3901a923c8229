//! `netscript run FILE [ARGS…]`: run one script and exit with its status.

use std::io::{Read, Write};
use std::path::PathBuf;

use clap::Args;

use super::HostArgs;

/// Arguments of `netscript run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Evaluate this code instead of a file (then every positional argument is in `ARGS`).
    #[arg(short = 'e', long = "eval", value_name = "CODE")]
    pub code: Option<String>,
    /// The script to run (`-` for standard input).
    #[arg(value_name = "FILE", required_unless_present = "code")]
    pub file: Option<PathBuf>,
    /// Arguments given to the script as `ARGS`.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Re-run (or hot-swap the functions of) the script when it or its imports change.
    #[arg(long)]
    pub watch: bool,
    /// Run the script on N threads at once, each with its own host
    /// (`worker::id()` is 0..N); listeners share their ports, so the kernel
    /// spreads connections over the N copies (the nginx and Node cluster
    /// model). Nothing else is shared.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    #[command(flatten)]
    pub host: HostArgs,
}

impl RunArgs {
    /// The script's `ARGS`: with `-e`, the would-be FILE is the first of them.
    pub fn script_args(&self) -> Vec<String> {
        match (&self.code, &self.file) {
            (Some(_), Some(first)) => {
                std::iter::once(first.display().to_string()).chain(self.args.iter().cloned()).collect()
            }
            _ => self.args.clone(),
        }
    }
}

/// Run the script; 0 on success, 1 on a script error, 2 on a usage error.
pub fn run(args: &RunArgs) -> i32 {
    let (name, source) = match (&args.code, &args.file) {
        (Some(code), _) => ("<eval>".to_string(), code.clone()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut code = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut code) {
                eprintln!("netscript: cannot read standard input: {e}");
                return 2;
            }
            ("<stdin>".to_string(), code)
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(code) => (path.display().to_string(), code),
            Err(e) => {
                eprintln!("netscript: cannot read {}: {e}", path.display());
                return 2;
            }
        },
        (None, None) => unreachable!("clap requires FILE or -e"),
    };
    let script_args = args.script_args();
    if args.workers != 1 {
        return run_workers(args.workers, &args.host, &name, &source, &script_args);
    }
    run_source(&args.host, &name, &source, &script_args)
}

/// Run `source` (named `name`) on one host with `script_args` as `ARGS`:
/// 0 on success, 1 on a script error (printed), 2 when the host cannot start.
pub fn run_source(host: &HostArgs, name: &str, source: &str, script_args: &[String]) -> i32 {
    let host = match host.host() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    let result = host.run_source(name, source, script_args);
    drop(host);
    let _ = std::io::stdout().flush();
    match result {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("{}", e.render());
            1
        }
    }
}

/// `--workers N`: the script on N hosts at once, each on its own thread;
/// 1 when any of them fails. Ctrl-C stops the process (no host catches it).
fn run_workers(n: usize, host: &HostArgs, name: &str, source: &str, script_args: &[String]) -> i32 {
    let builders = match host.builders(n) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    let status = std::thread::scope(|scope| {
        let runs: Vec<_> = builders
            .into_iter()
            .map(|builder| {
                scope.spawn(move || {
                    let host = builder.build()?;
                    host.run_source(name, source, script_args)
                })
            })
            .collect();
        let mut status = 0;
        for run in runs {
            match run.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    eprintln!("{}", e.render());
                    status = 1;
                }
                Err(_) => status = 1,
            }
        }
        status
    });
    let _ = std::io::stdout().flush();
    status
}

//! `netscript watch FILE` and `netscript run --watch FILE`: run a script and
//! react to saves of it or of the modules it imports.
//!
//! While the script's top level is still running (a server waiting in
//! `s.wait()`, a client loop), a save of the script swaps its functions in
//! place (`netscript::reload`): sockets, servers, connections, tasks and
//! every value stay; the next call of a function runs the new code; then
//! `on_reload()` runs if the script defines it. The top level is not run
//! again, so nothing binds its port twice. A syntax error is reported with
//! its position and the running version stays. Once the top level has
//! finished — or when an imported module changes (module functions cannot
//! be swapped) — a save restarts the script on a fresh host.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use netscript::Host;
use netscript::reload::{self, Program, Watcher};

use super::HostArgs;
use super::run::RunArgs;

/// Arguments of `netscript watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The script to run and watch.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Arguments given to the script as `ARGS`.
    #[arg(value_name = "ARGS", trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
    /// Run the script on N hosts at once, as `run --workers N` does; a save
    /// swaps the functions in every one of them.
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

/// Changes closer together than this are one change (editors write in steps).
pub(super) const DEBOUNCE: Duration = Duration::from_millis(20);

/// `netscript watch FILE`.
pub fn watch(args: &WatchArgs) -> i32 {
    watch_file(&args.file, &args.args, &args.host, args.workers)
}

/// `netscript run --watch FILE`.
pub fn run_watch(args: &RunArgs) -> i32 {
    match &args.file {
        Some(file) if args.code.is_none() && file.as_os_str() != "-" => {
            watch_file(file, &args.args, &args.host, args.workers)
        }
        _ => {
            eprintln!("netscript: --watch needs a script file");
            2
        }
    }
}

/// One run of the script on each of its hosts (one, or N with `--workers N`).
struct Run(Vec<Instance>);

/// The script on one host: the host, its swappable functions, and whether
/// its top level has finished.
struct Instance {
    host: Arc<Host>,
    program: Program,
    finished: Arc<AtomicBool>,
}

impl Run {
    /// Start the script's top level on new hosts, in the background.
    fn start(file: &Path, script_args: &[String], host_args: &HostArgs, workers: usize) -> Result<Self, String> {
        let name = file.display().to_string();
        let source = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
        let builders = host_args.builders(workers)?;
        let mut instances = Vec::with_capacity(builders.len());
        for builder in builders {
            instances.push(Instance::start(builder, &name, &source, script_args)?);
        }
        Ok(Self(instances))
    }

    /// Whether the top level has finished on every host.
    fn finished(&self) -> bool {
        self.0.iter().all(|i| i.finished.load(Ordering::SeqCst))
    }

    /// Swap in the functions of the new `source` on every host; a source
    /// that does not parse is reported once and changes nothing.
    fn swap(&self, name: &str, source: &str) {
        let Some(first) = self.0.first() else { return };
        let ast = match reload::compile(&first.host, name, source) {
            Ok(ast) => ast,
            Err(e) => {
                eprintln!("{}", e.render());
                println!("──── {name} has errors: the previous version keeps running ────");
                return;
            }
        };
        let mut swapped = 0;
        for instance in &self.0 {
            swapped = instance.program.swap(&ast);
        }
        let on = if self.0.len() > 1 { format!(" in each of {} workers", self.0.len()) } else { String::new() };
        println!("──── {name} reloaded: {swapped} function(s) swapped{on}; sockets and connections kept ────");
        for instance in &self.0 {
            instance.on_reload(name);
        }
    }
}

impl Instance {
    fn start(
        builder: netscript::HostBuilder,
        name: &str,
        source: &str,
        script_args: &[String],
    ) -> Result<Self, String> {
        let host = Arc::new(builder.build().map_err(|e| e.to_string())?);
        let session = host.session();
        let program = Program::new();
        let finished = Arc::new(AtomicBool::new(false));
        let args_src = script_args.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let (h, s, p, done) = (host.clone(), session.clone(), program.clone(), finished.clone());
        let (name, source) = (name.to_string(), source.to_string());
        std::thread::Builder::new()
            .name("watch-main".into())
            .spawn(move || {
                // `ARGS` as in `run`: a constant defined before the script.
                let _ = h.eval(&s, "<args>", &format!("const ARGS = [{args_src}];"), true);
                let result = h.eval_with(&s, &name, &source, false, Some(p.prepare()));
                match result {
                    Ok(v) if v.is_unit() => println!("──── {name} finished ────"),
                    Ok(v) => println!("──── {name} finished: {v} ────"),
                    Err(e) => {
                        eprintln!("{}", e.render());
                        println!("──── {name} failed ────");
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
            .map_err(|e| e.to_string())?;
        Ok(Self { host, program, finished })
    }

    /// Run the script's `on_reload()`, if it defines one.
    fn on_reload(&self, name: &str) {
        if self.program.defines("on_reload", 0) {
            // A session of its own: the top level holds the main session's scope while it runs.
            let session = self.host.session();
            match self.host.eval_with(&session, name, "on_reload()", false, Some(self.program.with_current())) {
                Ok(v) if v.is_unit() => {}
                Ok(v) => println!("on_reload: {v}"),
                Err(e) => eprintln!("{}", e.render()),
            }
        }
    }
}

fn watch_file(file: &Path, script_args: &[String], host_args: &HostArgs, workers: usize) -> i32 {
    let name = file.display().to_string();
    let main = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let mut deps = reload::dependencies(file, &host_args.module_paths);
    let mut watcher = match Watcher::new(&deps, DEBOUNCE) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("netscript: cannot watch {name}: {e}");
            return 2;
        }
    };
    // Started after the watch is in place, so no save is missed.
    let mut run = match Run::start(file, script_args, host_args, workers) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    while let Some(changed) = watcher.next_change() {
        let started = Instant::now();
        let source = match std::fs::read_to_string(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netscript: cannot read {name}: {e}");
                continue;
            }
        };
        let module_changed = changed.iter().any(|p| *p != main);
        if run.finished() || module_changed {
            println!("──── {name} changed: restarting ────");
            drop(run);
            run = match Run::start(file, script_args, host_args, workers) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("netscript: {e}");
                    return 2;
                }
            };
        } else {
            run.swap(&name, &source);
        }
        if std::env::var_os("NETSCRIPT_WATCH_TIMING").is_some() {
            eprintln!("reload handled in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        let now = reload::dependencies(file, &host_args.module_paths);
        if now != deps {
            deps = now;
            match Watcher::new(&deps, DEBOUNCE) {
                Ok(w) => watcher = w,
                Err(e) => eprintln!("netscript: cannot watch the new imports: {e}"),
            }
        }
    }
    0
}

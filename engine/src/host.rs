//! The embedding API: build a [`Host`] (limits, permissions, module search
//! path), then run scripts on it.
//!
//! A host owns one thread running a tokio current-thread runtime; every
//! script task is a green thread on it (see `netscript_stdlib::runtime`).
//! `run_*` calls submit a job to that thread and wait for its result, so the
//! API is synchronous and background tasks (servers started by a script)
//! keep running between calls — which is what the REPL relies on.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use netscript_stdlib::faults;
use netscript_stdlib::runtime::{self, Context};
use rhai::{AST, Dynamic, Engine, Scope};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::limits::Limits;
use crate::resolver::Resolver;
pub use netscript_stdlib::permissions::Permissions;

type Job = Box<dyn FnOnce(Arc<Shared>) -> LocalBoxFuture<'static, ()> + Send>;

/// Extra set-up applied to the engine of the host and of each of its
/// workers (e.g. test assertions).
type Configure = Arc<dyn Fn(&mut Engine) + Send + Sync>;

/// Rewrites a compiled program before it runs (hot reload swaps functions this way).
pub type Prepare = Box<dyn FnOnce(&Engine, AST) -> AST + Send>;

/// State the host thread shares with its jobs.
struct Shared {
    engine: Arc<Engine>,
    limits: Limits,
    root: CancellationToken,
    current: Arc<Mutex<Option<CancellationToken>>>,
}

/// What every thread of a host is built from: its own and its workers'
/// (`worker::start`), which get the same modules, limits, permissions and
/// tracing.
struct Settings {
    limits: Limits,
    permissions: Permissions,
    module_paths: Vec<PathBuf>,
    configure: Vec<Configure>,
    trace: Arc<AtomicBool>,
    reuse_port: bool,
    faults: Option<faults::Spec>,
    spin: Duration,
}

impl Settings {
    /// A new engine with the standard modules, the limits and the extra set-up.
    fn engine(&self) -> Engine {
        let mut engine = build_engine(&self.limits, self.module_paths.clone());
        for f in &self.configure {
            f(&mut engine);
        }
        engine
    }

    /// Install the runtime context of a host thread whose tasks descend from `root`.
    fn install(self: &Arc<Self>, engine: Arc<Engine>, root: CancellationToken, worker_id: usize) {
        runtime::set_context(Context {
            engine,
            permissions: self.permissions.clone(),
            trace: self.trace.clone(),
            root,
            hosts: Some(Arc::new(Workers(self.clone()))),
            worker_id,
            reuse_port: self.reuse_port,
        });
        runtime::set_task_ceiling(self.limits.max_tasks);
        runtime::set_spin(self.spin);
        faults::set(self.faults.clone());
    }
}

/// Starts the worker hosts of `worker::` with the host's settings.
struct Workers(Arc<Settings>);

impl runtime::HostFactory for Workers {
    fn start(&self, job: runtime::HostJob) -> std::io::Result<JoinHandle<()>> {
        let settings = self.0.clone();
        std::thread::Builder::new().name(job.name.clone()).spawn(move || {
            let runtime::HostJob { root, worker_id, body, done, .. } = job;
            let mut result = None;
            let started = event_loop(root.clone(), async {
                let engine = Arc::new(settings.engine());
                settings.install(engine, root.clone(), worker_id);
                let token = root.child_token();
                arm_deadline(settings.limits.deadline, &token);
                result = Some(match runtime::spawn("worker::start", runtime::StackKind::Main, token, body) {
                    Ok(handle) => handle.await.unwrap_or_else(|join| {
                        Err(netscript_stdlib::Error::new(
                            netscript_stdlib::Kind::Io,
                            "worker::start",
                            format!("the worker failed: {join}"),
                        )
                        .into())
                    }),
                    Err(err) => Err(err.into()),
                });
            });
            done(match (started, result) {
                (_, Some(result)) => result,
                (Err(e), None) => Err(e.into()),
                (Ok(()), None) => Err(netscript_stdlib::Error::new(
                    netscript_stdlib::Kind::Io,
                    "worker::start",
                    "the worker stopped before its script ran",
                )
                .into()),
            });
        })
    }
}

/// Run `main` as the event loop of this thread (a tokio current-thread
/// runtime and its `LocalSet`); when it ends, cancel every task under
/// `root` and give them a moment to unwind.
fn event_loop(root: CancellationToken, main: impl Future<Output = ()>) -> Result<(), netscript_stdlib::Error> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        netscript_stdlib::Error::new(netscript_stdlib::Kind::Io, "host", format!("cannot start the runtime: {e}"))
    })?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        main.await;
        root.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while runtime::active_tasks() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    drop(local);
    // Offloaded work a cancelled task left behind finishes (or not) on its
    // own; the host does not wait for it.
    rt.shutdown_background();
    Ok(())
}

/// Cancel `token` once `limit` has passed (a run's `deadline`); the
/// returned flag says whether it did.
fn arm_deadline(limit: Option<Duration>, token: &CancellationToken) -> Arc<AtomicBool> {
    let hit = Arc::new(AtomicBool::new(false));
    if let Some(limit) = limit {
        let (t, hit) = (token.clone(), hit.clone());
        tokio::task::spawn_local(async move {
            tokio::select! {
                () = t.cancelled() => {}
                () = tokio::time::sleep(limit) => { hit.store(true, Ordering::Relaxed); t.cancel(); }
            }
        });
    }
    hit
}

/// Configures and builds a [`Host`].
#[derive(Default)]
pub struct HostBuilder {
    limits: Limits,
    permissions: Permissions,
    module_paths: Vec<PathBuf>,
    trace: bool,
    ctrl_c: bool,
    worker_id: usize,
    reuse_port: bool,
    faults: Option<faults::Spec>,
    spin: Option<Duration>,
    configure: Vec<Configure>,
}

impl std::fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBuilder")
            .field("limits", &self.limits)
            .field("permissions", &self.permissions)
            .field("module_paths", &self.module_paths)
            .field("trace", &self.trace)
            .field("ctrl_c", &self.ctrl_c)
            .field("worker_id", &self.worker_id)
            .field("reuse_port", &self.reuse_port)
            .field("faults", &self.faults)
            .field("spin", &self.spin)
            .finish_non_exhaustive()
    }
}

impl HostBuilder {
    /// Resource limits for every run.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// What scripts may do with the network (see [`Permissions`]: hosts
    /// allowed to connect to and to look up, and whether to listen).
    #[must_use]
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.permissions = permissions;
        self
    }

    /// Add a directory searched by `import "name"` (after the script's own directory).
    #[must_use]
    pub fn module_path(mut self, dir: impl Into<PathBuf>) -> Self {
        self.module_paths.push(dir.into());
        self
    }

    /// Print every send and receive to standard error.
    #[must_use]
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = on;
        self
    }

    /// Let Ctrl-C cancel the running script (the CLI's behaviour); a second
    /// Ctrl-C, or one while nothing runs, exits the process at once, whatever
    /// is running (the signal is watched from its own thread).
    #[must_use]
    pub fn ctrl_c(mut self, on: bool) -> Self {
        self.ctrl_c = on;
        self
    }

    /// Make this host one of several running the same script on their own
    /// threads (`netscript run --workers N`): scripts see `id` as
    /// `worker::id()`, and listeners set `SO_REUSEPORT` so the hosts share
    /// each port and the kernel spreads connections over them. Reserve the
    /// ids first with `netscript_stdlib::worker::reserve_ids`.
    #[must_use]
    pub fn worker(mut self, id: usize) -> Self {
        self.worker_id = id;
        self.reuse_port = true;
        self
    }

    /// Bend every connection the scripts open or accept (theirs and their
    /// workers') through these faults, as `net::faults(spec)` does (the
    /// CLI's `--faults`).
    #[must_use]
    pub fn faults(mut self, spec: Option<faults::Spec>) -> Self {
        self.faults = spec;
        self
    }

    /// How long a task that is alone on its thread polls for the end of a
    /// wait before the thread sleeps (the CLI's `--spin`; default
    /// `runtime::DEFAULT_SPIN`, 50 µs; `Duration::ZERO` sleeps at once). A
    /// sequential request-reply script gets its replies sooner (about twice
    /// the `get`s per second from a local memcached), for at most this much
    /// CPU time per longer wait.
    #[must_use]
    pub fn spin(mut self, limit: Duration) -> Self {
        self.spin = Some(limit);
        self
    }

    /// Apply `f` to the engine after the standard modules are installed
    /// (register extra functions, e.g. the test runner's assertions); the
    /// engines of the host's workers get it too.
    #[must_use]
    pub fn configure(mut self, f: impl Fn(&mut Engine) + Send + Sync + 'static) -> Self {
        self.configure.push(Arc::new(f));
        self
    }

    /// Start the host thread.
    ///
    /// # Errors
    /// If the limits cannot be honoured ([`Limits::check`]), or the thread or
    /// its runtime cannot be created.
    pub fn build(self) -> Result<Host, Error> {
        self.limits.check().map_err(|e| Error::host("value", e))?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let current = Arc::new(Mutex::new(None));
        let trace = Arc::new(AtomicBool::new(self.trace));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_current = current.clone();
        let worker_id = self.worker_id;
        let group = self.reuse_port.then(runtime::WorkerHost::enter);
        let settings = Arc::new(Settings {
            limits: self.limits,
            permissions: self.permissions,
            module_paths: self.module_paths,
            configure: self.configure,
            trace: trace.clone(),
            reuse_port: self.reuse_port,
            faults: self.faults,
            spin: self.spin.unwrap_or(runtime::DEFAULT_SPIN),
        });
        let thread = std::thread::Builder::new()
            .name("netscript-host".into())
            .spawn(move || {
                let root = CancellationToken::new();
                let ready = ready_tx.clone();
                let started = event_loop(root.clone(), async move {
                    let engine = Arc::new(settings.engine());
                    settings.install(engine.clone(), root.clone(), worker_id);
                    let shared = Arc::new(Shared {
                        engine,
                        limits: settings.limits.clone(),
                        root: root.clone(),
                        current: thread_current,
                    });
                    let _ = ready.send(Ok(()));
                    while let Some(job) = rx.recv().await {
                        tokio::task::spawn_local(job(shared.clone()));
                    }
                });
                if let Err(e) = started {
                    let _ = ready_tx.send(Err(Error::host("io", e.message())));
                }
            })
            .map_err(|e| Error::host("io", format!("cannot start the host thread: {e}")))?;
        ready_rx.recv().map_err(|_| Error::host("io", "the host thread failed to start"))??;
        let ctrl_c = if self.ctrl_c { Some(CtrlC::watch(current.clone())?) } else { None };
        Ok(Host { jobs: Some(tx), thread: Some(thread), current, trace, _ctrl_c: ctrl_c, _group: group })
    }
}

/// Whether this process has had a Ctrl-C already: the next one exits.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Watches SIGINT on its own OS thread, so that it is seen even while a
/// native call holds the host thread: the first Ctrl-C cancels the running
/// job (exits if none runs), any later one exits at once.
struct CtrlC {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl CtrlC {
    fn watch(current: Arc<Mutex<Option<CancellationToken>>>) -> Result<Self, Error> {
        let cannot = |e: std::io::Error| Error::host("io", format!("cannot watch Ctrl-C: {e}"));
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT]).map_err(cannot)?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("netscript-sigint".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let job = current.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                    match job {
                        Some(token) if !INTERRUPTED.swap(true, Ordering::SeqCst) => token.cancel(),
                        _ => std::process::exit(130),
                    }
                }
            })
            .map_err(cannot)?;
        Ok(Self { handle, thread: Some(thread) })
    }
}

impl Drop for CtrlC {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `print`: a line on standard output. When the reader has gone (`script |
/// head`), the process ends quietly with the status a shell gives a
/// process killed by SIGPIPE (141), as a command-line tool would; other
/// write errors drop the line.
fn print_line(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{s}")
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(141);
    }
}

/// Set up an engine: standard modules, limits, printing, module resolution.
fn build_engine(limits: &Limits, module_paths: Vec<PathBuf>) -> Engine {
    let mut engine = Engine::new();
    netscript_stdlib::register_all(&mut engine);
    limits.apply(&mut engine);
    engine.on_progress(runtime::on_progress).set_progress_interval(runtime::PROGRESS_INTERVAL);
    engine.on_print(print_line);
    engine.on_debug(|s, src, pos| match (src, pos.line()) {
        (Some(src), Some(line)) => eprintln!("{src}:{line}: {s}"),
        (None, Some(line)) => eprintln!("{line}: {s}"),
        _ => eprintln!("{s}"),
    });
    engine.set_module_resolver(Resolver::new(module_paths));
    engine
}

/// A running host. Dropping it cancels every task and stops its thread.
///
/// ```
/// let host = netscript::Host::builder().build().unwrap();
/// let v = host.run_source("sum.rhai", "let t = task::start(|| 40 + 2); t.join()", &[]).unwrap();
/// assert_eq!(v.as_int().unwrap(), 42);
/// ```
pub struct Host {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<JoinHandle<()>>,
    current: Arc<Mutex<Option<CancellationToken>>>,
    trace: Arc<AtomicBool>,
    /// Kept for its `Drop`: stops watching Ctrl-C with the host.
    _ctrl_c: Option<CtrlC>,
    /// One of several hosts of `--workers N` counts as a worker host while
    /// it lives, so that none of their tasks spins (`runtime::WorkerHost`).
    _group: Option<runtime::WorkerHost>,
}

impl Host {
    /// Start configuring a host.
    #[must_use]
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Run a script file with `args` (visible to the script as `ARGS`).
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or the script fails.
    pub fn run_file(&self, path: &Path, args: &[String]) -> Result<Dynamic, Error> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| Error::host("io", format!("cannot read {}: {e}", path.display())))?;
        self.run_source(&path.display().to_string(), &source, args)
    }

    /// Run script `source` (named `name` in messages) with `args` as `ARGS`.
    ///
    /// # Errors
    /// The source does not parse or the script fails.
    pub fn run_source(&self, name: &str, source: &str, args: &[String]) -> Result<Dynamic, Error> {
        let mut scope = Scope::new();
        scope.push_constant("ARGS", args.iter().map(|a| Dynamic::from(a.clone())).collect::<rhai::Array>());
        let session = Session { scope: Arc::new(Mutex::new(scope)), ast: Arc::new(Mutex::new(AST::empty())) };
        self.eval(&session, name, source, false)
    }

    /// A new session: a scope and function library that persist across
    /// [`Host::eval`] calls (the REPL's state).
    #[must_use]
    pub fn session(&self) -> Session {
        Session { scope: Arc::new(Mutex::new(Scope::new())), ast: Arc::new(Mutex::new(AST::empty())) }
    }

    /// Evaluate `source` in `session`: its variables and functions persist
    /// when `keep` is true (REPL input), else only for this call.
    ///
    /// # Errors
    /// The source does not parse or the script fails.
    pub fn eval(&self, session: &Session, name: &str, source: &str, keep: bool) -> Result<Dynamic, Error> {
        self.eval_with(session, name, source, keep, None)
    }

    /// [`Host::eval`], with `prepare` rewriting the compiled program before
    /// it runs (after it is merged with the session's functions).
    ///
    /// # Errors
    /// The source does not parse or the script fails.
    pub fn eval_with(
        &self,
        session: &Session,
        name: &str,
        source: &str,
        keep: bool,
        prepare: Option<Prepare>,
    ) -> Result<Dynamic, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (name, source, session) = (name.to_string(), source.to_string(), session.clone());
        self.submit(Box::new(move |shared: Arc<Shared>| {
            Box::pin(async move {
                let _ = tx.send(run_job(&shared, &session, &name, &source, keep, prepare).await);
            })
        }))?;
        rx.recv().map_err(|_| Error::host("io", "the host stopped"))?
    }

    /// Run `f` on the host thread with its engine (outside any task) and
    /// return its result: format values with script-level functions, read
    /// `netscript_stdlib::runtime` counters.
    ///
    /// # Errors
    /// If the host has stopped.
    pub fn with_engine<R: Send + 'static>(&self, f: impl FnOnce(&Engine) -> R + Send + 'static) -> Result<R, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.submit(Box::new(move |shared: Arc<Shared>| {
            Box::pin(async move {
                let _ = tx.send(f(&shared.engine));
            })
        }))?;
        rx.recv().map_err(|_| Error::host("io", "the host stopped"))
    }

    /// Cancel the script running now (as Ctrl-C does); background tasks go on.
    pub fn interrupt(&self) {
        if let Some(token) = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref() {
            token.cancel();
        }
    }

    /// Turn traffic tracing on or off.
    pub fn set_trace(&self, on: bool) {
        self.trace.store(on, Ordering::Relaxed);
    }

    /// Whether traffic tracing is on.
    #[must_use]
    pub fn tracing(&self) -> bool {
        self.trace.load(Ordering::Relaxed)
    }

    fn submit(&self, job: Job) -> Result<(), Error> {
        self.jobs.as_ref().and_then(|j| j.send(job).ok()).ok_or_else(|| Error::host("io", "the host stopped"))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Variables and functions that persist across evaluations.
#[derive(Clone)]
pub struct Session {
    scope: Arc<Mutex<Scope<'static>>>,
    ast: Arc<Mutex<AST>>,
}

impl Session {
    /// Names and values of the session's variables.
    #[must_use]
    pub fn variables(&self) -> Vec<(String, Dynamic)> {
        let scope = self.scope.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        scope.iter_raw().map(|(name, _, value)| (name.to_string(), value.clone())).collect()
    }

    /// Signatures of the functions the session has defined.
    #[must_use]
    pub fn functions(&self) -> Vec<String> {
        let ast = self.ast.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        ast.iter_functions().map(|f| f.to_string()).collect()
    }
}

/// Compile and run `source` as a new main task; map failures to [`Error`].
async fn run_job(
    shared: &Shared,
    session: &Session,
    name: &str,
    source: &str,
    keep: bool,
    prepare: Option<Prepare>,
) -> Result<Dynamic, Error> {
    let engine = shared.engine.clone();
    // A `#!` line makes a script executable; blank it, keeping line numbers.
    let code = match source.strip_prefix("#!") {
        Some(rest) => rest.find('\n').map_or(String::new(), |i| rest[i..].to_string()),
        None => source.to_string(),
    };
    let mut ast = engine
        .compile_with_scope(&session.scope.lock().unwrap_or_else(std::sync::PoisonError::into_inner), &code)
        .map_err(|e| Error::parse(&e, name, source))?;
    ast.set_source(name);
    let program = {
        let mut lib = session.ast.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let merged = lib.merge(&ast);
        if keep {
            let mut functions = merged.clone();
            functions.clear_statements();
            *lib = functions;
        }
        merged
    };
    let program = match prepare {
        Some(f) => f(&engine, program),
        None => program,
    };
    let token = shared.root.child_token();
    *shared.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
    let deadline_hit = arm_deadline(shared.limits.deadline, &token);
    let scope = session.scope.clone();
    let eng = engine.clone();
    let handle = runtime::spawn("run", runtime::StackKind::Main, token.clone(), move || {
        let mut scope = scope.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let len = scope.len();
        let result = eng.eval_ast_with_scope::<Dynamic>(&mut scope, &program);
        if !keep {
            scope.rewind(len);
        }
        result
    });
    let result = match handle {
        Ok(handle) => handle.await,
        Err(err) => Ok(Err(err.into())),
    };
    *shared.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    token.cancel();
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(err)) => {
            let mut e = Error::runtime(&err, name, source);
            if deadline_hit.load(Ordering::Relaxed) && runtime::innermost_terminated(&err) {
                e = e.into_deadline(shared.limits.deadline.unwrap_or_default());
            }
            Err(e)
        }
        Err(join) => Err(Error::host("io", format!("the script task failed: {join}"))),
    }
}

//! Green-thread tasks: how blocking-looking scripts run at event-loop speed.
//!
//! Every script task (the main script, each `task::start`, each connection a
//! server accepts) is a stackful coroutine ([`corosensei`]) driven by a tokio
//! task on one current-thread runtime. A native function that must wait —
//! `recv`, `accept`, `sleep` — calls [`block_on`] with a future: the
//! coroutine suspends, hands the future to its driver, and resumes with the
//! result when the future completes. Script code stays synchronous (Rhai
//! evaluation is), the event loop never blocks, and thousands of tasks cost a
//! few kilobytes each. This is the design of NSE (Lua coroutines on nsock)
//! and OpenResty (cosockets).
//!
//! The per-thread [`Context`] carries what natives need from the host: the
//! engine (to call closures in new tasks), permissions, tracing.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use rhai::{Dynamic, Engine, EvalAltResult, Position};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind, NativeResult};
pub use crate::permissions::Permissions;

/// What a suspended task waits for: a future run by the task's driver. It
/// lives pinned on the suspended task's own stack (no allocation per wait);
/// the driver polls it only while the task stays suspended, and the task
/// drops it after resuming.
#[derive(Clone, Copy)]
struct Wait(*mut (dyn Future<Output = ()> + 'static));

impl Future for Wait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        // SAFETY: the pointee is pinned on the stack of a coroutine that is
        // suspended in `block_on` until its driver (the only caller) has
        // stopped polling; see `block_on`.
        let fut = self.0;
        unsafe { Pin::new_unchecked(&mut *fut) }.poll(cx)
    }
}

/// Virtual size of a task's stack. Pages are committed only when touched, so
/// an idle connection costs what its deepest call used, not this.
/// Rhai has no stack probes: [`MAX_CALL_LEVELS`] must fit in this (about
/// 8 KB a level in release builds, about 48 KB in debug builds).
pub const STACK_SIZE: usize = if cfg!(debug_assertions) { 8 << 20 } else { 2 << 20 };

/// Script call depth of a task (`task::start`, a connection handler): what
/// fits in [`STACK_SIZE`] with a wide margin. Tasks start their calls at the
/// engine's `max_call_levels` minus this, so they never go deeper.
pub const MAX_CALL_LEVELS: usize = if cfg!(debug_assertions) { 48 } else { 64 };

/// Script call depth of a run's main script, like Python's default
/// recursion limit; its stack is [`MAIN_STACK_SIZE`].
pub const MAIN_CALL_LEVELS: usize = 1000;

/// Virtual size of the main script's stack: [`MAIN_CALL_LEVELS`] with the
/// same margin as a task's. Committed lazily like every stack, so a shallow
/// script costs only the pages it touches.
pub const MAIN_STACK_SIZE: usize = if cfg!(debug_assertions) { 192 << 20 } else { 32 << 20 };

/// How many finished stacks are kept for reuse (saves an mmap per task).
const STACK_POOL: usize = 256;

/// Memory mappings left for everything but task stacks when the task
/// ceiling is derived from `vm.max_map_count`: about 50 at rest, plus the
/// allocator's growth and up to 512 blocking-pool threads (two each).
const RESERVED_MAPPINGS: usize = 4096;

/// The task running right now: its yielder and its cancellation token.
struct Frame {
    yielder: *const Yielder<(), Wait>,
    token: CancellationToken,
}

thread_local! {
    static CURRENT: Cell<*const Frame> = const { Cell::new(ptr::null()) };
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
    static CONTEXT: RefCell<Option<Rc<Context>>> = const { RefCell::new(None) };
    static ACTIVE: Cell<usize> = const { Cell::new(0) };
    static CEILING: Cell<usize> = const { Cell::new(0) };
    static SPIN: Cell<Duration> = const { Cell::new(DEFAULT_SPIN) };
    static SPIN_SKIP: Cell<u32> = const { Cell::new(0) };
    static SPIN_MISSES: Cell<u32> = const { Cell::new(0) };
}

/// The kernel's limit on memory mappings per process (`vm.max_map_count`),
/// if it can be read; Linux's default is 65,530.
#[must_use]
pub fn max_map_count() -> Option<usize> {
    std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?.trim().parse().ok()
}

/// The default task ceiling: each task stack takes two memory mappings (the
/// stack and its guard page, which splits the mapping), so the kernel's
/// mapping limit, less a reserve for the rest of the process, bounds how
/// many tasks can exist at once. Without a readable limit, Linux's default.
#[must_use]
pub fn default_task_ceiling() -> usize {
    max_map_count().unwrap_or(65_530).saturating_sub(RESERVED_MAPPINGS) / 2
}

/// Set how many tasks may run or wait at once on this thread (`0` = the
/// [`default_task_ceiling`]); starting one more is a `limit` error.
pub fn set_task_ceiling(max: usize) {
    CEILING.set(if max == 0 { default_task_ceiling() } else { max });
}

/// How many tasks may run or wait at once on this thread.
#[must_use]
pub fn task_ceiling() -> usize {
    match CEILING.get() {
        0 => {
            let max = default_task_ceiling();
            CEILING.set(max);
            max
        }
        max => max,
    }
}

/// How many tasks are running or waiting on this thread.
pub fn active_tasks() -> usize {
    ACTIVE.get()
}

/// How long a lone task polls for the end of a wait before the thread sleeps
/// (see [`set_spin`]).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// Set how long a task that is alone on this thread keeps polling the event
/// loop for the end of a wait before the thread sleeps (`Duration::ZERO`:
/// sleep at once). The default is [`DEFAULT_SPIN`].
///
/// A sequential request-reply script (`mc.get` in a loop, a DNS query, an
/// HTTP request) waits for replies that take tens of microseconds on a local
/// network; sleeping in `epoll_wait` and being woken again costs about as
/// much, on a virtual machine more. Polling meanwhile (a non-blocking look at
/// the sockets and timers, and other tokio tasks run) takes the reply as it
/// lands. This is what Go's scheduler does before parking a thread, and
/// Linux's `SO_BUSY_POLL` in the kernel. Only a lone task polls: with more
/// tasks, their waits overlap and the thread has work, and a load run's
/// CPU stays for its virtual users; with worker hosts running, no task of
/// the process spins ([`WorkerHost`]). The price is at most this much CPU time
/// per wait that lasts longer, and fewer such waits spin: after a wait
/// outlasts its spin, the next ones sleep at once for a while (`Spin`).
pub fn set_spin(limit: Duration) {
    SPIN.set(limit);
}

/// Worker hosts running in this process (see [`WorkerHost`]).
static WORKER_HOSTS: AtomicUsize = AtomicUsize::new(0);

/// Held by a worker host's main task while it runs (`worker::`, pools,
/// map-reduce). While any is held no task of the process spins: its host
/// threads compete for the cores, and a thread that polls takes a core
/// another one has work for (a word count on two map-reduce workers ran
/// about 10 % slower while lone tasks spun through their short waits).
pub struct WorkerHost(());

impl WorkerHost {
    /// Count a worker host as running until the value is dropped.
    #[must_use]
    pub fn enter() -> Self {
        WORKER_HOSTS.fetch_add(1, Ordering::Relaxed);
        Self(())
    }
}

impl Drop for WorkerHost {
    fn drop(&mut self) {
        WORKER_HOSTS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most waits skipped before spinning is tried again: after misses in a
/// row, 2, 4, … up to this many waits sleep at once.
const SPIN_MAX_SKIP: u32 = 64;

/// The spin of one wait (see [`set_spin`]).
///
/// It adapts: a wait that outlasts its spin wasted that CPU, so after one,
/// the next 2 waits sleep at once, after two in a row the next 4, and so on
/// up to [`SPIN_MAX_SKIP`]; a wait that ends while spinning resets this. A
/// loop whose replies take longer than the limit (a `get_multi` of many
/// keys, a slow server) soon spins on one wait in 65, and one whose replies
/// land within it spins on every wait.
#[derive(Default)]
struct Spin {
    /// Until when this wait spins, from its first pending poll.
    until: Option<std::time::Instant>,
    /// This wait sleeps at once (after misses, or not alone).
    skipped: bool,
}

impl Spin {
    /// Called when the wait pends: while the task is alone on its thread and
    /// the wait has pended for less than the limit, ask tokio to poll the
    /// event loop without blocking and then poll this task again
    /// (`yield_now` defers its wake-up until after that poll), rather than
    /// sleep.
    fn pending(&mut self, cx: &mut std::task::Context<'_>) {
        if self.skipped {
            return;
        }
        let until = match self.until {
            Some(until) => until,
            None => {
                let limit = SPIN.get();
                let skip = SPIN_SKIP.get();
                let alone = ACTIVE.get() == 1 && !limit.is_zero() && WORKER_HOSTS.load(Ordering::Relaxed) == 0;
                self.skipped = !alone || skip > 0;
                if self.skipped {
                    if alone {
                        SPIN_SKIP.set(skip.saturating_sub(1));
                    }
                    return;
                }
                *self.until.insert(std::time::Instant::now() + limit)
            }
        };
        if std::time::Instant::now() < until {
            let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
        }
    }

    /// Called when the wait ends: note whether its spin paid off.
    fn ended(&self) {
        let Some(until) = self.until else { return };
        if std::time::Instant::now() < until {
            SPIN_MISSES.set(0);
        } else {
            let misses = (SPIN_MISSES.get() + 1).min(SPIN_MAX_SKIP.trailing_zeros());
            SPIN_MISSES.set(misses);
            SPIN_SKIP.set(1 << misses);
        }
    }
}

/// Host settings visible to native functions on the runtime thread.
pub struct Context {
    /// The engine scripts run on; new tasks call closures with it.
    pub engine: Arc<Engine>,
    /// What scripts may do.
    pub permissions: Permissions,
    /// Print every send and receive (`.trace on`, `--trace`).
    pub trace: Arc<AtomicBool>,
    /// Every task descends from this token; cancelling it stops them all.
    pub root: CancellationToken,
    /// Starts more host threads like this one (`worker::`); `None` where
    /// the host cannot (a bare test engine).
    pub hosts: Option<Arc<dyn HostFactory>>,
    /// Which worker this host is (`worker::id()`): 0 for a lone host, 0..N
    /// for `--workers N`, and a process-unique number for each
    /// `worker::start`.
    pub worker_id: usize,
    /// Listeners set `SO_REUSEPORT`, so that the hosts of `--workers N`
    /// share each port and the kernel spreads connections over them.
    pub reuse_port: bool,
}

/// The body of a new host's main task and what receives its result.
pub struct HostJob {
    /// The thread's name.
    pub name: String,
    /// The new host's root token: cancelling it stops the host (`terminate`).
    pub root: CancellationToken,
    /// The new host's `worker::id()`.
    pub worker_id: usize,
    /// The main task, run on the new host's thread.
    pub body: Box<dyn FnOnce() -> NativeResult<Dynamic> + Send>,
    /// Called on the new host's thread with the main task's result, once
    /// every task on it has stopped.
    pub done: Box<dyn FnOnce(NativeResult<Dynamic>) + Send>,
}

/// Starts a host thread with the settings of the current one (its engine's
/// modules and limits, permissions, tracing): what `worker::` runs each
/// worker on. The host crate implements it; this crate only calls it.
pub trait HostFactory: Send + Sync {
    /// Start a thread running `job` as the main task of a new host.
    ///
    /// # Errors
    /// When the operating system refuses the thread.
    fn start(&self, job: HostJob) -> std::io::Result<std::thread::JoinHandle<()>>;
}

/// Install the host context for this thread (done once by the host).
pub fn set_context(ctx: Context) {
    CONTEXT.with(|c| *c.borrow_mut() = Some(Rc::new(ctx)));
}

/// The host context of this thread.
///
/// # Panics
/// Only if called off a host thread, which is a bug in the host, not a script error.
pub fn context() -> Rc<Context> {
    CONTEXT.with(|c| c.borrow().clone()).expect("netscript runtime context is installed by the host")
}

/// The engine's `max_array_size` (the longest array or blob; 0 = no limit),
/// or 0 when no host context is installed (a plain `Engine::eval`).
pub fn max_array_size() -> usize {
    CONTEXT.with(|c| c.borrow().as_ref().map_or(0, |c| c.engine.max_array_size()))
}

/// The host's trace flag (`--trace`); what tracing prints is `trace.rs`'s.
pub fn trace_flag() -> bool {
    CONTEXT.with(|c| c.borrow().as_ref().is_some_and(|c| c.trace.load(Ordering::Relaxed)))
}

/// Apply `f` to the permissions of this thread's host (everything is
/// allowed off a host thread, e.g. in a plain `Engine::eval`).
pub fn with_permissions<R>(f: impl FnOnce(&Permissions) -> R) -> R {
    static ALL: Permissions = Permissions::ALL;
    CONTEXT.with(|c| f(c.borrow().as_ref().map_or(&ALL, |c| &c.permissions)))
}

/// The task was cancelled (`task.cancel()`, Ctrl-C, a run's deadline).
///
/// Becomes a non-catchable termination: a script cannot swallow it.
#[derive(Debug, Clone, Copy)]
pub struct Cancelled;

impl From<Cancelled> for Box<EvalAltResult> {
    fn from(_: Cancelled) -> Self {
        Box::new(EvalAltResult::ErrorTerminated("cancelled".into(), Position::NONE))
    }
}

/// Whether `err` is (inside its call wrappers) a cancellation.
pub fn innermost_terminated(err: &EvalAltResult) -> bool {
    matches!(crate::error::innermost(err), EvalAltResult::ErrorTerminated(..))
}

/// The cancellation token of the running task, if code runs in a task.
pub fn current_token() -> Option<CancellationToken> {
    let frame = CURRENT.get();
    // SAFETY: a non-null CURRENT points at the Frame on the stack of the
    // coroutine running right now; it is reset before that coroutine suspends.
    (!frame.is_null()).then(|| unsafe { (*frame).token.clone() })
}

/// Whether the running task has been cancelled.
pub fn cancelled() -> bool {
    let frame = CURRENT.get();
    // SAFETY: as in `current_token`.
    !frame.is_null() && unsafe { (*frame).token.is_cancelled() }
}

/// Wait for `fut` from inside a task, suspending only this task.
///
/// Returns [`Cancelled`] if the task is cancelled first (the future is then
/// dropped). Outside a task (a plain `Engine::eval`) there is no event loop
/// to wait on, which is an error.
pub fn block_on<F>(fut: F) -> Result<F::Output, Box<EvalAltResult>>
where
    F: Future + 'static,
{
    let frame = CURRENT.get();
    if frame.is_null() {
        return Err(Error::new(
            Kind::Value,
            "runtime",
            "network and task functions need the netscript host (not a bare engine)",
        )
        .into());
    }
    // SAFETY: see `current_token`; the frame outlives this call because it
    // lives below us on the same coroutine stack.
    let frame = unsafe { &*frame };
    // No cancellation check here (the token's check takes a lock, and
    // touches memory a waiting task otherwise leaves alone): the driver sees
    // a cancellation as soon as the wait is pending, and the progress hook
    // every `PROGRESS_INTERVAL` operations stops a task whose waits all
    // complete at once.
    // The result lands in this slot on our own stack.
    let mut slot: Option<F::Output> = None;
    let out: *mut Option<F::Output> = &raw mut slot;
    // The driver races this against the task's cancellation (see `spawn`).
    let wait = std::pin::pin!(async move {
        let value = fut.await;
        // SAFETY: only the driver polls `wait`, only while this coroutine is
        // suspended below (so `slot` is alive and not otherwise borrowed).
        // Dropping `wait` unpolled (cancellation, or the task torn down)
        // never reaches this write.
        unsafe { *out = Some(value) };
    });
    // SAFETY (of the `Wait` the driver polls): `wait` is pinned here and
    // outlives the suspension; the driver stops using the pointer before it
    // resumes us (or drops the coroutine, which unwinds this frame).
    let wait = Wait(unsafe { Pin::get_unchecked_mut(wait) });
    CURRENT.set(ptr::null());
    // SAFETY: the yielder belongs to the coroutine we are running on.
    unsafe { (*frame.yielder).suspend(wait) };
    CURRENT.set(frame);
    slot.take().ok_or_else(|| Cancelled.into())
}

/// [`block_on`] with a timeout (`None` waits forever): a timeout is a
/// `timeout` error naming `op` and the time waited.
pub fn block_on_timeout<F, T>(op: &str, timeout: Option<Duration>, fut: F) -> Result<T, Box<EvalAltResult>>
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    block_on_timeout_at(op, None, timeout, fut)
}

/// [`block_on_timeout`] whose timeout error also names the peer (formatted
/// only if the timeout happens, so the hot path does not allocate).
pub fn block_on_timeout_at<F, T>(
    op: &str,
    peer: Option<&dyn std::fmt::Display>,
    timeout: Option<Duration>,
    fut: F,
) -> Result<T, Box<EvalAltResult>>
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    match timeout {
        None => block_on(fut)?.map_err(Into::into),
        Some(limit) => block_on_limited(op, peer, limit, fut),
    }
}

/// The timed branch of [`block_on_timeout_at`], kept out of line: the timer
/// makes its future large, and inlined it would deepen every caller's stack
/// frame (and so every waiting task's working set) even without a timeout.
#[inline(never)]
fn block_on_limited<F, T>(
    op: &str,
    peer: Option<&dyn std::fmt::Display>,
    limit: Duration,
    fut: F,
) -> Result<T, Box<EvalAltResult>>
where
    F: Future<Output = Result<T, Error>> + 'static,
    T: 'static,
{
    match block_on(tokio::time::timeout(limit, fut))? {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            let err = Error::new(Kind::Timeout, op, format!("timed out after {}", seconds(limit)));
            Err(match peer {
                Some(p) => err.with_peer(p),
                None => err,
            }
            .into())
        }
    }
}

/// Native work on at least this many bytes runs off the event loop
/// ([`offload`]); below it, the work takes about a millisecond or less, less
/// than the hand-over would add to it.
pub const OFFLOAD_THRESHOLD: usize = 1 << 20;

/// Run `work`, a native computation on `size` bytes (hashing, compression,
/// encoding or decoding a large value), so that it does not hold up the event
/// loop: below [`OFFLOAD_THRESHOLD`] (or outside a task) it runs inline;
/// above, on tokio's blocking pool while this task waits for it. Other tasks,
/// timers and the run's deadline keep running meanwhile, and a cancelled task
/// (`task.cancel()`, Ctrl-C, `--deadline`) returns at once; the abandoned
/// work finishes in the background and its result is dropped.
///
/// `work` must not call into the runtime (no `block_on`, no [`context`]):
/// it runs on another thread. `op` names the operation in errors.
///
/// # Errors
/// `work`'s own error, or the task's cancellation.
pub fn offload<T, E, W>(op: &str, size: usize, work: W) -> Result<T, Box<EvalAltResult>>
where
    W: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Into<Box<EvalAltResult>> + Send + 'static,
{
    if size < OFFLOAD_THRESHOLD || CURRENT.get().is_null() {
        return work().map_err(Into::into);
    }
    match block_on(tokio::task::spawn_blocking(work))? {
        Ok(result) => result.map_err(Into::into),
        // A panic in `work` unwinds this task, as it would have inline.
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(Error::new(Kind::Cancelled, op, format!("the work was stopped: {join}")).into()),
    }
}

/// The size in bytes of a blob or string argument, for [`offload`]
/// (`0` for other values).
#[must_use]
pub fn data_size(value: &Dynamic) -> usize {
    if value.is_blob() {
        value.read_lock::<rhai::Blob>().map_or(0, |b| b.len())
    } else {
        value.read_lock::<rhai::ImmutableString>().map_or(0, |s| s.len())
    }
}

/// A rough size in bytes of `value` for [`offload`]: strings and blobs by
/// length, 16 bytes for every other item, looking two levels deep and no
/// further than [`OFFLOAD_THRESHOLD`], so it is cheap for any value however
/// large or deeply nested (and never recurses).
#[must_use]
pub fn value_size(value: &Dynamic) -> usize {
    fn shallow(v: &Dynamic) -> usize {
        let items =
            v.read_lock::<rhai::Array>().map(|a| a.len()).or_else(|| v.read_lock::<rhai::Map>().map(|m| m.len()));
        16 + data_size(v) + items.unwrap_or(0).saturating_mul(16)
    }
    let mut size = shallow(value);
    let mut add = |child: &Dynamic| {
        size = size.saturating_add(shallow(child));
        size < OFFLOAD_THRESHOLD
    };
    if let Some(array) = value.read_lock::<rhai::Array>() {
        let _ = array.iter().all(&mut add);
    } else if let Some(map) = value.read_lock::<rhai::Map>() {
        let _ = map.values().all(&mut add);
    }
    size
}

/// `1.5s` / `250ms` for messages.
pub fn seconds(d: Duration) -> String {
    if d.as_millis() < 1000 { format!("{}ms", d.as_millis()) } else { format!("{}s", d.as_secs_f64()) }
}

/// How often (in script operations) the engine calls [`on_progress`]:
/// checking the token takes a lock, so look every 1,024 operations (tens of
/// microseconds), not on each one.
pub const PROGRESS_INTERVAL: u64 = 1024;

/// Called from the engine's progress hook (every [`PROGRESS_INTERVAL`]
/// operations): stop a cancelled task, and let other tasks run now and then
/// during long computations.
pub fn on_progress(ops: u64) -> Option<Dynamic> {
    // An engine that calls on every operation still checks only this often.
    if !ops.is_multiple_of(PROGRESS_INTERVAL) {
        return None;
    }
    if cancelled() {
        return Some("cancelled".into());
    }
    if ops & 0xFFFF == 0 && !CURRENT.get().is_null() {
        // A long computation shares the thread fairly with I/O tasks.
        if block_on(tokio::task::yield_now()).is_err() {
            return Some("cancelled".into());
        }
    }
    None
}

/// Which stack a new task runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackKind {
    /// A task's stack ([`STACK_SIZE`], pooled).
    Task,
    /// A run's main script ([`MAIN_STACK_SIZE`], not pooled).
    Main,
}

/// Start `body` as a new task; the returned handle resolves to its result.
///
/// Must be called on the host's runtime thread, inside its `LocalSet`.
/// A panic in `body` becomes an error result, never a crash of the host.
///
/// # Errors
/// A `limit` error naming `op` when the task cannot be created: the
/// [`task_ceiling`] is reached, or the kernel refuses its stack.
pub fn spawn<F>(
    op: &str,
    kind: StackKind,
    token: CancellationToken,
    body: F,
) -> Result<tokio::task::JoinHandle<NativeResult<Dynamic>>, Error>
where
    F: FnOnce() -> NativeResult<Dynamic> + 'static,
{
    let active = ACTIVE.get();
    let ceiling = task_ceiling();
    if kind == StackKind::Task && active >= ceiling {
        return Err(Error::new(
            Kind::Limit,
            op,
            format!("too many tasks: {active} are running and the task ceiling is {ceiling}{}", ceiling_cause()),
        ));
    }
    let stack = match kind {
        StackKind::Task => STACKS.with(|s| s.borrow_mut().pop()).map_or_else(|| DefaultStack::new(STACK_SIZE), Ok),
        StackKind::Main => DefaultStack::new(MAIN_STACK_SIZE),
    }
    .map_err(|err| {
        Error::new(
            Kind::Limit,
            op,
            format!("cannot map a task stack with {active} tasks running: {err}{}", ceiling_cause()),
        )
    })?;
    // One registration for the task's whole life, not one per wait.
    let cancelled = token.clone().cancelled_owned();
    let mut co = Coroutine::with_stack(stack, move |yielder: &Yielder<(), Wait>, ()| {
        let frame = Frame { yielder, token };
        CURRENT.set(&frame);
        let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| panic.downcast_ref::<String>().cloned());
            match what {
                Some(what) => Err(Error::new(Kind::Io, "task", format!("internal error (panic): {what}")).into()),
                // Not a panic message: the coroutine's own forced unwind on drop.
                None => std::panic::resume_unwind(panic),
            }
        });
        CURRENT.set(ptr::null());
        result
    });
    ACTIVE.set(active + 1);
    Ok(tokio::task::spawn_local(async move {
        let _active = ActiveGuard;
        tokio::pin!(cancelled);
        // Registered with the token at the first wait that pends; from then
        // on the token's wake sets this flag, so a cancellation is seen with
        // one load, however it arrives: while the wait pends, or in the same
        // tick as the wait's own result (a timer, a read), when the result is
        // delivered (nothing received is lost) and the next wait is cancelled.
        let mut flag: Option<Arc<CancelFlag>> = None;
        loop {
            match co.resume(()) {
                // Dropping the wait unpolled: `block_on` finds its slot empty.
                CoroutineResult::Yield(_) if flag.as_ref().is_some_and(|f| f.is_set()) => {}
                CoroutineResult::Yield(mut wait) => {
                    let mut spin = Spin::default();
                    std::future::poll_fn(|cx| {
                        if Pin::new(&mut wait).poll(cx).is_ready() {
                            spin.ended();
                            return std::task::Poll::Ready(());
                        }
                        let f = flag.get_or_insert_with(|| CancelFlag::new(cx.waker()));
                        if f.is_set() || f.poll(cancelled.as_mut()).is_ready() {
                            return std::task::Poll::Ready(());
                        }
                        spin.pending(cx);
                        std::task::Poll::Pending
                    })
                    .await;
                }
                CoroutineResult::Return(result) => {
                    let stack = co.into_stack();
                    if kind == StackKind::Task {
                        STACKS.with(|s| {
                            let mut pool = s.borrow_mut();
                            if pool.len() < STACK_POOL {
                                pool.push(stack);
                            }
                        });
                    }
                    return result;
                }
            }
        }
    }))
}

/// Why the task ceiling is where it is, for limit errors.
fn ceiling_cause() -> String {
    let maps =
        max_map_count().map_or_else(|| "the kernel's mapping limit".to_string(), |n| format!("vm.max_map_count = {n}"));
    format!(" (each task stack takes two memory mappings, against {maps}; see --max-tasks)")
}

/// The waker a task's cancellation future is registered with: sets the
/// flag, then wakes the task (from any thread: Ctrl-C cancels from its own).
struct CancelFlag {
    set: AtomicBool,
    /// Whether the cancellation future has been polled (registered) yet.
    registered: AtomicBool,
    task: std::task::Waker,
}

impl CancelFlag {
    fn new(task: &std::task::Waker) -> Arc<Self> {
        Arc::new(Self { set: AtomicBool::new(false), registered: AtomicBool::new(false), task: task.clone() })
    }

    fn is_set(&self) -> bool {
        self.set.load(Ordering::Relaxed)
    }

    /// Register `cancelled` with this flag's waker the first time (two
    /// locks, once per task); later, only the flag is read.
    fn poll<F: Future<Output = ()>>(self: &Arc<Self>, cancelled: Pin<&mut F>) -> std::task::Poll<()> {
        if self.registered.swap(true, Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        let waker = std::task::Waker::from(self.clone());
        let ready = cancelled.poll(&mut std::task::Context::from_waker(&waker));
        if ready.is_ready() {
            self.set.store(true, Ordering::Relaxed);
        }
        ready
    }
}

impl std::task::Wake for CancelFlag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.set.store(true, Ordering::Relaxed);
        self.task.wake_by_ref();
    }
}

/// Counts a task as active until its driver ends (or is dropped).
struct ActiveGuard;

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        ACTIVE.set(ACTIVE.get().saturating_sub(1));
    }
}

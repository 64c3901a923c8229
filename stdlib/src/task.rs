//! `task::` — concurrent tasks, sleeping and channels.
//!
//! Tasks are green threads (see [`crate::runtime`]): `task::start(|| …)`
//! runs a closure concurrently with the caller; every blocking-looking call
//! in it (`recv`, `sleep`, `join`) suspends only that task.
//!
//! ```rhai
//! let t = task::start(|| { task::sleep(0.1); 42 });
//! let ch = task::channel(10);
//! task::start(|| { for i in 0..3 { ch.send(i) } ch.close(); });
//! for v in ch { print(v) }
//! print(t.join());   // 42
//! ```

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use rhai::plugin::*;
use rhai::{AST, Dynamic, EvalAltResult, FnPtr, FuncArgs, INT, NativeCallContext, Position};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind, NativeResult};
use crate::runtime;

/// A script's global constants as Rhai shares them (its `SharedGlobalConstants`,
/// which it does not export by name).
type Constants = Arc<std::sync::RwLock<std::collections::BTreeMap<rhai::ImmutableString, Dynamic>>>;

/// A script closure made ready to run in another task: the function pointer
/// and the script library it was defined in.
#[derive(Clone)]
pub struct Callable {
    fnptr: FnPtr,
    lib: Arc<AST>,
    /// The script's global constants (`const` at the top level), which its
    /// functions read as `global::NAME`.
    constants: Option<Constants>,
    /// Captured shared variables that held `()` when the closure was taken
    /// (`let t; t = task::start(|| … t …)`): their position among the
    /// captured values and the address of the shared cell's value.
    unit_cells: Vec<(usize, usize)>,
    /// The identity of a detached closure and its clones, which
    /// [`Callable::here`] gives each thread its own copy of; `None` for one
    /// that stays on its host.
    home: Option<Arc<()>>,
    /// Function resolution caches of finished calls, for the next calls to
    /// start warm (a call from native code otherwise looks up every function
    /// it calls anew): one per call in progress at once (tasks suspended in
    /// a call each hold theirs), kept up to [`KEPT_CACHES`].
    caches: Arc<std::sync::Mutex<Vec<rhai::Caches>>>,
}

/// How many idle resolution caches a closure keeps (one per task that
/// calls it at once, as a load test's virtual users do).
const KEPT_CACHES: usize = 256;

thread_local! {
    /// This thread's own copies of detached closures, by the identity of the
    /// original: a `Weak`, which a finished original leaves dead (and its
    /// address untaken), so the copy is dropped at the next look-up.
    static HERE: RefCell<Vec<(Weak<()>, Callable)>> = const { RefCell::new(Vec::new()) };
}

impl Callable {
    /// Capture `fnptr` from a native call.
    ///
    /// Captured handles (connections, listeners, channels…) are given to the
    /// new task as copies of the handle instead of the shared variable: a task
    /// suspended in `c.recv()` holds the lock of the variable it called the
    /// method on, so two tasks sharing one captured variable would otherwise
    /// collide. Handles are cheap clones of one socket, so behaviour is the same.
    /// Captured plain values (numbers, maps, arrays) stay shared.
    pub fn new(ctx: &NativeCallContext, mut fnptr: FnPtr) -> Self {
        let mut unit_cells = Vec::new();
        for (i, value) in fnptr.iter_curry_mut().enumerate() {
            if value.is_shared() {
                let Some(inner) = value.read_lock::<Dynamic>() else { continue };
                if inner.is_variant() {
                    drop(inner);
                    *value = value.flatten_clone();
                } else if inner.is_unit() {
                    unit_cells.push((i, &raw const *inner as usize));
                }
            }
        }
        Self {
            fnptr,
            lib: Self::lib(ctx),
            constants: Self::constants(ctx),
            unit_cells,
            home: None,
            caches: Arc::default(),
        }
    }

    /// The script functions visible to the native call `ctx`.
    fn lib(ctx: &NativeCallContext) -> Arc<AST> {
        let mut namespaces = ctx.namespaces().iter();
        let mut lib = namespaces.next().map_or_else(AST::empty, |m| AST::new_from_module(m.clone()));
        for m in namespaces {
            lib.combine(AST::new_from_module(m.clone()));
        }
        Arc::new(lib)
    }

    /// The global constants visible to the native call `ctx`.
    fn constants(ctx: &NativeCallContext) -> Option<Constants> {
        ctx.global_runtime_state().constants.clone()
    }

    /// Capture `fnptr` to run on another host thread (`worker::`): every
    /// captured value is replaced by `copy` of it, so nothing is shared.
    ///
    /// # Errors
    /// What `copy` refuses (a handle cannot leave its host).
    pub fn detached(
        ctx: &NativeCallContext,
        mut fnptr: FnPtr,
        copy: impl Fn(&Dynamic) -> Result<Dynamic, Error>,
    ) -> Result<Self, Error> {
        for value in fnptr.iter_curry_mut() {
            *value = copy(value)?;
        }
        // The script's constants go as copies too; one that cannot cross
        // (a handle) stays behind, and `global::NAME` of it is not found.
        let constants = Self::constants(ctx).map(|shared| {
            let own = shared.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let copies = own.iter().filter_map(|(k, v)| Some((k.clone(), copy(v).ok()?))).collect();
            Arc::new(std::sync::RwLock::new(copies))
        });
        let home = (ctx.namespaces().len() <= 1).then(|| Arc::new(()));
        Ok(Self { fnptr, lib: Self::lib(ctx), constants, unit_cells: Vec::new(), home, caches: Arc::default() })
    }

    /// This thread's own copy of a detached closure (itself for one that is
    /// not), made at the first call on the thread. Every call of a script
    /// function increments and decrements reference counts in its
    /// definition (each parameter's name), its library and the script's
    /// constants; shared by workers on several cores, those counts bounce
    /// between the cores' caches, which cost a fifth of a trivial
    /// function's time on two (`pool.map`). The copy has its own: a new
    /// library with each definition, its name and its parameters' names
    /// allocated anew, and new constants. Only for a closure made in a
    /// script's own functions (one library, `home` set): a function of an
    /// imported module carries its module's environment, which a copy
    /// would lose.
    fn here(&self) -> Option<Self> {
        let home = self.home.as_ref()?;
        Some(HERE.with_borrow_mut(|own| {
            own.retain(|(original, _)| original.strong_count() > 0);
            if let Some((_, copy)) = own.iter().find(|(original, _)| original.as_ptr() == Arc::as_ptr(home)) {
                return copy.clone();
            }
            let copy = self.own_copy();
            own.push((Arc::downgrade(home), copy.clone()));
            copy
        }))
    }

    /// See [`Callable::here`].
    fn own_copy(&self) -> Self {
        let fresh = |s: &rhai::ImmutableString| rhai::ImmutableString::from(s.as_str());
        let fresh_value = |v: &Dynamic| match v.read_lock::<rhai::ImmutableString>() {
            Some(s) => Dynamic::from(fresh(&s)),
            None => v.clone(),
        };
        let mut lib = rhai::Module::new();
        for (.., def) in self.lib.shared_lib().iter_script_fn_info() {
            let mut def = (**def).clone();
            def.name = fresh(&def.name);
            def.params = def.params.iter().map(fresh).collect();
            lib.set_script_fn(def);
        }
        let constants = self.constants.as_ref().map(|shared| {
            let own = shared.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::new(std::sync::RwLock::new(own.iter().map(|(k, v)| (fresh(k), fresh_value(v))).collect()))
        });
        let mut fnptr = self.fnptr.clone();
        for value in fnptr.iter_curry_mut() {
            *value = fresh_value(value);
        }
        Self {
            fnptr,
            lib: Arc::new(AST::new_from_module(lib)),
            constants,
            unit_cells: Vec::new(),
            home: None,
            caches: Arc::default(),
        }
    }

    /// Call the closure with `args` on the host's engine, as the body of a
    /// new task: its calls start [`runtime::MAX_CALL_LEVELS`] below the
    /// engine's `max_call_levels` (which the main script may use in full, on
    /// its deeper stack), so a task never recurses deeper than its stack holds.
    pub fn call(&self, args: impl FuncArgs) -> NativeResult<Dynamic> {
        if let Some(own) = self.here() {
            return own.call(args);
        }
        self.call_fnptr(&self.fnptr, args)
    }

    /// [`Callable::call`] as the body of a task started by `task::start`:
    /// captured variables that held `()` when the task was started and a
    /// handle now are given to it as copies of the handle, like the handles
    /// [`Callable::new`] copies — from `given` (handed over by a `join` that
    /// holds the variable locked, see [`Handoff`]) or read now.
    fn call_task(&self, args: impl FuncArgs, given: Vec<(usize, Dynamic)>) -> NativeResult<Dynamic> {
        if self.unit_cells.is_empty() {
            return self.call(args);
        }
        let mut fnptr = self.fnptr.clone();
        for (i, value) in fnptr.iter_curry_mut().enumerate() {
            if !self.unit_cells.iter().any(|(j, _)| *j == i) {
                continue;
            }
            if let Some((_, handle)) = given.iter().find(|(j, _)| *j == i) {
                *value = handle.clone();
            } else if !value.is_locked() && value.read_lock::<Dynamic>().is_some_and(|v| v.is_variant()) {
                *value = value.flatten_clone();
            }
        }
        self.call_fnptr(&fnptr, args)
    }

    /// [`Callable::call`] once per item, with the item as the first argument
    /// (and `extra` as the second, when given), giving each result to `each` (which returns whether to go on): the
    /// calls share one set-up, which for a trivial function costs more than
    /// the call (`pool.map`).
    pub fn call_each(
        &self,
        items: Vec<Dynamic>,
        extra: Option<&Dynamic>,
        mut each: impl FnMut(NativeResult<Dynamic>) -> bool,
    ) {
        if let Some(own) = self.here() {
            return own.call_each(items, extra, each);
        }
        let engine = runtime::context().engine.clone();
        let mut global = engine.new_global_runtime_state();
        global.lib.push(self.lib.shared_lib().clone());
        global.constants.clone_from(&self.constants);
        global.level = engine.max_call_levels().saturating_sub(runtime::MAX_CALL_LEVELS);
        let ctx = NativeCallContext::new_with_all_fields(&engine, self.fnptr.fn_name(), None, &global, Position::NONE);
        let mut caches = self.take_caches();
        for item in items {
            let mut values = rhai::StaticVec::new_const();
            values.push(item);
            values.extend(extra.cloned());
            if !each(self.fnptr.call_raw_with_caches(&ctx, &mut caches, None, values)) {
                break;
            }
        }
        self.keep_caches(caches);
    }

    fn take_caches(&self) -> rhai::Caches {
        self.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop().unwrap_or_default()
    }

    fn keep_caches(&self, caches: rhai::Caches) {
        let mut kept = self.caches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.len() < KEPT_CACHES {
            kept.push(caches);
        }
    }

    /// Whether the function is a script function (or closure) that takes
    /// `n` arguments besides the values it captured.
    pub fn takes(&self, n: usize) -> bool {
        let (name, n) = (self.fnptr.fn_name(), n + self.fnptr.curry().len());
        self.lib.iter_functions().any(|f| f.name == name && f.params.len() == n)
    }

    fn call_fnptr(&self, fnptr: &FnPtr, args: impl FuncArgs) -> NativeResult<Dynamic> {
        let engine = runtime::context().engine.clone();
        let mut values = rhai::StaticVec::new_const();
        args.parse(&mut values);
        let mut global = engine.new_global_runtime_state();
        global.lib.push(self.lib.shared_lib().clone());
        global.constants.clone_from(&self.constants);
        global.level = engine.max_call_levels().saturating_sub(runtime::MAX_CALL_LEVELS);
        let ctx = NativeCallContext::new_with_all_fields(&engine, fnptr.fn_name(), None, &global, Position::NONE);
        let mut caches = self.take_caches();
        let result = fnptr.call_raw_with_caches(&ctx, &mut caches, None, values);
        self.keep_caches(caches);
        result
    }

    /// The function's name, for messages.
    pub fn name(&self) -> &str {
        self.fnptr.fn_name()
    }
}

/// The outcome of a finished task, shared by everyone who joins it.
type Outcome = Option<Result<Dynamic, Arc<EvalAltResult>>>;

/// How a task gets its own handle through a captured variable that its
/// starter is waiting on: in `let t; t = task::start(|| { … t.cancel() … });
/// t.join()`, the starter holds `t` locked while it waits in `t.join()` (Rhai
/// locks a shared variable for the length of a method call on it), so the
/// task could not read `t`. `join` sees the address of the variable it was
/// called on; when that is one of the task's captured `()` variables and the
/// task has not begun, it hands the task a copy of the handle for it.
struct Handoff {
    /// [`Callable::unit_cells`] of the task's closure.
    cells: Vec<(usize, usize)>,
    /// Handles given before the task began; `None` once it has.
    given: std::sync::Mutex<Option<Vec<(usize, Dynamic)>>>,
}

impl Handoff {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<(usize, Dynamic)>>> {
        self.given.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A handle on a started task: `join()` for its result, `cancel()` to stop it.
#[derive(Clone)]
pub struct TaskHandle {
    token: CancellationToken,
    outcome: watch::Receiver<Outcome>,
    handoff: Arc<Handoff>,
}

impl TaskHandle {
    /// Start `callable(args)` as a new task under the host's root token.
    ///
    /// # Errors
    /// A `limit` error when the task cannot be created (see [`runtime::spawn`]).
    pub fn start(callable: Callable, args: Vec<Dynamic>) -> Result<Self, Error> {
        let token = root_token().child_token();
        let (tx, rx) = watch::channel(None);
        let handoff = Arc::new(Handoff { cells: callable.unit_cells.clone(), given: Default::default() });
        *handoff.lock() = Some(Vec::new());
        let given = handoff.clone();
        let handle = runtime::spawn("task::start", runtime::StackKind::Task, token.clone(), move || {
            let given = given.lock().take().unwrap_or_default();
            let result = callable.call_task(args, given);
            // Nobody holds the handle: report the failure like an uncaught
            // exception in a Python thread, instead of losing it.
            if let Err(err) = &result
                && tx.receiver_count() == 0
                && !runtime::innermost_terminated(err)
            {
                eprintln!("task {} failed: {}", callable.name(), crate::error::describe(err));
            }
            tx.send_replace(Some(match &result {
                Ok(v) => Ok(v.clone()),
                Err(e) => Err(Arc::from(crate::error::copy_error(e))),
            }));
            result
        })?;
        drop(handle);
        Ok(Self { token, outcome: rx, handoff })
    }

    /// `t.join(…)` called on the variable whose value lives at `addr`: if the
    /// task captured that variable while it held `()` and has not begun,
    /// give it this handle for it (see [`Handoff`]).
    fn hand_over(&self, addr: usize) {
        let Some((i, _)) = self.handoff.cells.iter().find(|(_, a)| *a == addr) else { return };
        if let Some(given) = self.handoff.lock().as_mut() {
            given.push((*i, Dynamic::from(self.clone())));
        }
    }

    /// Wait for the task to finish (up to `timeout`); its value or its error.
    pub fn join(&self, timeout: Option<Duration>) -> NativeResult<Dynamic> {
        let mut rx = self.outcome.clone();
        let outcome = runtime::block_on_timeout("task.join", timeout, async move {
            let done = rx
                .wait_for(Option::is_some)
                .await
                .map_err(|_| Error::new(Kind::Cancelled, "task.join", "the task ended without a result"))?;
            Ok(done.clone())
        })?;
        match outcome {
            Some(Ok(value)) => Ok(value),
            Some(Err(err)) if runtime::innermost_terminated(&err) => {
                Err(Error::new(Kind::Cancelled, "task.join", "the task was cancelled").into())
            }
            Some(Err(err)) => Err(crate::error::copy_error(&err)),
            None => Err(Error::new(Kind::Cancelled, "task.join", "the task ended without a result").into()),
        }
    }

    /// Whether the task has finished.
    pub fn is_done(&self) -> bool {
        self.outcome.borrow().is_some()
    }
}

/// The token all tasks of this host descend from (cancelled on shutdown).
pub fn root_token() -> CancellationToken {
    runtime::context().root.clone()
}

/// The largest capacity `task::channel` accepts: a bounded channel allocates
/// all its slots (24 bytes each) when it is made, so a script-chosen count
/// must be bounded before it reaches the allocator.
pub const MAX_CHANNEL_CAPACITY: usize = 1 << 16;

/// A multi-producer multi-consumer channel between tasks.
#[derive(Clone)]
pub struct Channel {
    tx: async_channel::Sender<Dynamic>,
    rx: async_channel::Receiver<Dynamic>,
}

impl Channel {
    fn recv(&self, timeout: Option<Duration>) -> NativeResult<Dynamic> {
        // Fast path: a value is waiting or the channel is closed and empty.
        match self.rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(async_channel::TryRecvError::Closed) => return Ok(Dynamic::UNIT),
            Err(async_channel::TryRecvError::Empty) => {}
        }
        let rx = self.rx.clone();
        runtime::block_on_timeout("channel.recv", timeout, async move { Ok(rx.recv().await.unwrap_or(Dynamic::UNIT)) })
    }
}

impl IntoIterator for Channel {
    type Item = Dynamic;
    type IntoIter = ChannelIter;
    fn into_iter(self) -> ChannelIter {
        ChannelIter(self)
    }
}

/// Iterating a channel receives until it is closed and drained.
pub struct ChannelIter(Channel);

impl Iterator for ChannelIter {
    type Item = Dynamic;
    fn next(&mut self) -> Option<Dynamic> {
        let rx = self.0.rx.clone();
        match self.0.rx.try_recv() {
            Ok(v) => Some(v),
            Err(async_channel::TryRecvError::Closed) => None,
            Err(async_channel::TryRecvError::Empty) => {
                runtime::block_on(async move { rx.recv().await.ok() }).ok().flatten()
            }
        }
    }
}

/// The doc comment of `t.join()`, registered by hand (see [`module`]).
const JOIN_DOC: &str = "\
/// Wait for the task and return its value; its error is raised here.
/// A cancelled task raises a `cancelled` error.
///
/// ```rhai
/// let v = task::start(|| 1).join();
/// ```";

/// The doc comment of `t.join(timeout)`.
const JOIN_TIMEOUT_DOC: &str = "\
/// Wait at most `timeout` seconds for the task (`timeout` error after).
///
/// ```rhai
/// let t = task::start(|| task::sleep(10));
/// try { t.join(0.1) } catch (e) { print(e.kind) }   // timeout
/// ```";

/// The `task::` module.
#[must_use]
pub fn module() -> rhai::Module {
    use std::any::TypeId;
    let mut m = exported_module!(api);
    m.set_iterable::<Channel>();
    // `join` is registered by hand so that it sees its handle in place, in
    // the variable it was called on (see `Handoff`).
    let global = rhai::FnNamespace::Global;
    let params = ["t: &mut Task", "Dynamic"].map(String::from).to_vec();
    let types = vec![TypeId::of::<TaskHandle>()];
    crate::args::Borrowing::register(&mut m, "join", global, params, types, JOIN_DOC, join);
    let params = ["t: &mut Task", "timeout: Dynamic", "Dynamic"].map(String::from).to_vec();
    let types = vec![TypeId::of::<TaskHandle>(), TypeId::of::<Dynamic>()];
    crate::args::Borrowing::register(&mut m, "join", global, params, types, JOIN_TIMEOUT_DOC, join);
    m
}

/// `t.join()` and `t.join(timeout)`: `args` is the handle (in the variable
/// it was called on), then the timeout if given.
fn join(args: &mut [&mut Dynamic]) -> NativeResult<Dynamic> {
    const OP: &str = "task.join";
    let (first, rest) = args.split_first_mut().ok_or_else(|| Error::value(OP, "no task"))?;
    let addr = &raw const **first as usize;
    let t = first.read_lock::<TaskHandle>().ok_or_else(|| Error::value(OP, "not a task"))?.clone();
    let timeout = match rest.first() {
        Some(timeout) => crate::args::duration(OP, timeout)?,
        None => None,
    };
    t.hand_over(addr);
    t.join(timeout)
}

#[export_module]
mod api {
    use super::*;

    /// A running task (see `task::start`).
    pub type Task = TaskHandle;
    /// A channel between tasks (see `task::channel`).
    pub type Chan = Channel;

    /// Run a closure concurrently; returns a task handle. When no more tasks
    /// can be created (the task ceiling, `--max-tasks`, or the kernel's
    /// memory-map limit) this is a `limit` error naming the cause.
    ///
    /// ```rhai
    /// let t = task::start(|| 6 * 7);
    /// print(t.join());   // 42
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start(ctx: NativeCallContext, f: FnPtr) -> NativeResult<Task> {
        Ok(TaskHandle::start(Callable::new(&ctx, f), Vec::new())?)
    }

    /// Run a closure concurrently with arguments: `task::start(f, [a, b])`.
    ///
    /// ```rhai
    /// let t = task::start(|a, b| a + b, [1, 2]);
    /// print(t.join());   // 3
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_with(ctx: NativeCallContext, f: FnPtr, args: rhai::Array) -> NativeResult<Task> {
        Ok(TaskHandle::start(Callable::new(&ctx, f), args)?)
    }

    /// Cancel the task: it stops at its next wait or loop iteration.
    ///
    /// ```rhai
    /// let t = task::start(|| loop { task::sleep(1) });
    /// t.cancel();
    /// ```
    #[rhai_fn(global, name = "cancel", pure)]
    pub fn cancel(t: &mut Task) {
        t.token.cancel();
    }

    /// Whether the task has finished (`t.done`).
    #[rhai_fn(global, get = "done", pure)]
    pub fn done(t: &mut Task) -> bool {
        t.is_done()
    }

    /// Suspend this task for `secs` seconds (INT or FLOAT); other tasks run.
    ///
    /// ```rhai
    /// task::sleep(0.05);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn sleep(secs: Dynamic) -> NativeResult<()> {
        let d = crate::args::duration("task::sleep", &secs)?.unwrap_or(Duration::ZERO);
        runtime::block_on(tokio::time::sleep(d))
    }

    /// Let other tasks run, then continue.
    ///
    /// ```rhai
    /// task::yield_now();
    /// ```
    #[rhai_fn(return_raw)]
    pub fn yield_now() -> NativeResult<()> {
        runtime::block_on(tokio::task::yield_now())
    }

    /// A channel holding up to `capacity` values; `send` waits when full.
    /// The capacity is 1 to 65,536 (its slots are allocated up front); any
    /// other value, zero and negative numbers included, is a `value` error.
    ///
    /// ```rhai
    /// let ch = task::channel(1);
    /// ch.send("hi");
    /// print(ch.recv());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn channel(capacity: INT) -> NativeResult<Chan> {
        let cap =
            usize::try_from(capacity).ok().filter(|c| (1..=MAX_CHANNEL_CAPACITY).contains(c)).ok_or_else(|| {
                Error::value(
                    "task::channel",
                    format!("capacity must be between 1 and {MAX_CHANNEL_CAPACITY}, got {capacity}"),
                )
            })?;
        let (tx, rx) = async_channel::bounded(cap);
        Ok(Channel { tx, rx })
    }

    /// Send a value, waiting while the channel is full; `closed` error if closed.
    ///
    /// ```rhai
    /// let ch = task::channel(4);
    /// ch.send(#{n: 1});
    /// ```
    #[rhai_fn(global, name = "send", return_raw, pure)]
    pub fn send(ch: &mut Chan, value: Dynamic) -> NativeResult<()> {
        let value = match ch.tx.try_send(value) {
            Ok(()) => return Ok(()),
            Err(async_channel::TrySendError::Closed(_)) => {
                return Err(Error::new(Kind::Closed, "channel.send", "the channel is closed").into());
            }
            Err(async_channel::TrySendError::Full(v)) => v,
        };
        let tx = ch.tx.clone();
        runtime::block_on(async move { tx.send(value).await })?
            .map_err(|_| Error::new(Kind::Closed, "channel.send", "the channel is closed").into())
    }

    /// Receive the next value, waiting for one; `()` once closed and drained.
    ///
    /// ```rhai
    /// let ch = task::channel(1);
    /// ch.close();
    /// print(ch.recv() == ());   // true
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv(ch: &mut Chan) -> NativeResult<Dynamic> {
        ch.recv(None)
    }

    /// Receive with a timeout in seconds (`timeout` error when it passes).
    ///
    /// ```rhai
    /// let ch = task::channel(1);
    /// try { ch.recv(0.01) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv_timeout(ch: &mut Chan, timeout: Dynamic) -> NativeResult<Dynamic> {
        let timeout = crate::args::duration("channel.recv", &timeout)?;
        ch.recv(timeout)
    }

    /// Close the channel: senders fail, receivers drain what is left.
    ///
    /// ```rhai
    /// let ch = task::channel(1);
    /// ch.close();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn close(ch: &mut Chan) {
        ch.tx.close();
    }

    /// Number of values waiting in the channel (`ch.len`).
    #[rhai_fn(global, get = "len", pure)]
    pub fn len(ch: &mut Chan) -> INT {
        ch.rx.len() as INT
    }
}

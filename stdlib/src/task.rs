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

use std::sync::Arc;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{AST, Dynamic, EvalAltResult, FnPtr, FuncArgs, INT, NativeCallContext, Position};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Kind, NativeResult};
use crate::runtime;

/// A script closure made ready to run in another task: the function pointer
/// and the script library it was defined in.
#[derive(Clone)]
pub struct Callable {
    fnptr: FnPtr,
    lib: Arc<AST>,
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
        for value in fnptr.iter_curry_mut() {
            if value.is_shared() {
                let is_handle = value.read_lock::<Dynamic>().is_some_and(|v| v.is_variant());
                if is_handle {
                    *value = value.flatten_clone();
                }
            }
        }
        let mut namespaces = ctx.namespaces().iter();
        let mut lib = namespaces.next().map_or_else(AST::empty, |m| AST::new_from_module(m.clone()));
        for m in namespaces {
            lib.combine(AST::new_from_module(m.clone()));
        }
        Self { fnptr, lib: Arc::new(lib) }
    }

    /// Call the closure with `args` on the host's engine, as the body of a
    /// new task: its calls start [`runtime::MAX_CALL_LEVELS`] below the
    /// engine's `max_call_levels` (which the main script may use in full, on
    /// its deeper stack), so a task never recurses deeper than its stack holds.
    pub fn call(&self, args: impl FuncArgs) -> NativeResult<Dynamic> {
        let engine = runtime::context().engine.clone();
        let mut values = rhai::StaticVec::new_const();
        args.parse(&mut values);
        let mut global = engine.new_global_runtime_state();
        global.lib.push(self.lib.shared_lib().clone());
        global.level = engine.max_call_levels().saturating_sub(runtime::MAX_CALL_LEVELS);
        let ctx = NativeCallContext::new_with_all_fields(&engine, self.fnptr.fn_name(), None, &global, Position::NONE);
        self.fnptr.call_raw(&ctx, None, values)
    }

    /// The function's name, for messages.
    pub fn name(&self) -> &str {
        self.fnptr.fn_name()
    }
}

/// The outcome of a finished task, shared by everyone who joins it.
type Outcome = Option<Result<Dynamic, Arc<EvalAltResult>>>;

/// A handle on a started task: `join()` for its result, `cancel()` to stop it.
#[derive(Clone)]
pub struct TaskHandle {
    token: CancellationToken,
    outcome: watch::Receiver<Outcome>,
}

impl TaskHandle {
    /// Start `callable(args)` as a new task under the host's root token.
    ///
    /// # Errors
    /// A `limit` error when the task cannot be created (see [`runtime::spawn`]).
    pub fn start(callable: Callable, args: Vec<Dynamic>) -> Result<Self, Error> {
        let token = root_token().child_token();
        let (tx, rx) = watch::channel(None);
        let handle = runtime::spawn("task::start", runtime::StackKind::Task, token.clone(), move || {
            let result = callable.call(args);
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
        Ok(Self { token, outcome: rx })
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

/// The `task::` module.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.set_iterable::<Channel>();
    m
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

    /// Wait for the task and return its value; its error is raised here.
    /// A cancelled task raises a `cancelled` error.
    ///
    /// ```rhai
    /// let v = task::start(|| 1).join();
    /// ```
    #[rhai_fn(global, name = "join", return_raw, pure)]
    pub fn join(t: &mut Task) -> NativeResult<Dynamic> {
        t.join(None)
    }

    /// Wait at most `timeout` seconds for the task (`timeout` error after).
    ///
    /// ```rhai
    /// let t = task::start(|| task::sleep(10));
    /// try { t.join(0.1) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "join", return_raw, pure)]
    pub fn join_timeout(t: &mut Task, timeout: Dynamic) -> NativeResult<Dynamic> {
        let timeout = crate::args::duration("task.join", &timeout)?;
        t.join(timeout)
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

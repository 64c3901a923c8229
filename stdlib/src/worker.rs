//! `worker::` — parallelism across cores: script functions and files run on
//! other OS threads, each with its own host (engine, event loop, tasks).
//!
//! This is Python's `multiprocessing` without processes: nothing is shared,
//! values cross as copies (strings, blobs, numbers, booleans, characters,
//! arrays and maps; a connection or any other handle cannot cross and is a
//! `value` error saying so), and a worker that fails, panics or exceeds its
//! limits fails alone. The host starts the threads
//! ([`crate::runtime::HostFactory`]); this module only describes the work.
//!
//! ```rhai
//! let w = worker::start(|n| { let s = 0; for i in 0..n { s += i } s }, [1000]);
//! print(w.join());                                  // 499500
//! let pool = worker::pool(2);
//! print(pool.map(|n| n * n, [1, 2, 3]));            // [1, 4, 9]
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, FnPtr, INT, NativeCallContext};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::codec::{MAX_DEPTH, too_deep};
use crate::error::{Error, Kind, NativeResult};
use crate::runtime::{self, HostJob};
use crate::task::Callable;

/// Values waiting in each direction of a worker's link before `send` waits.
pub const LINK_CAPACITY: usize = 1024;

/// The next `worker::id()` to hand out (0 is the main host).
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

/// Keep ids below `n` for hosts numbered by the caller (`--workers N`
/// numbers its hosts 0..N), so `worker::start` hands out ids from `n` up.
pub fn reserve_ids(n: usize) {
    NEXT_ID.fetch_max(n, Ordering::Relaxed);
}

thread_local! {
    /// The link to the parent, on a worker's thread (`worker::parent()`).
    static PARENT: RefCell<Option<Port>> = const { RefCell::new(None) };
}

/// Copy `value` so that it can cross to another host: shared (captured)
/// variables are read, arrays and maps copied item by item (at most
/// [`MAX_DEPTH`] levels deep, checked before going deeper), and anything
/// that belongs to its host — a connection, a listener, a task, a closure —
/// is refused.
///
/// # Errors
/// A `value` error naming the type that cannot cross; a `limit` error for
/// data nested too deeply.
pub fn copy(op: &str, value: &Dynamic) -> Result<Dynamic, Error> {
    copy_at(op, value, 0)
}

fn copy_at(op: &str, value: &Dynamic, depth: usize) -> Result<Dynamic, Error> {
    if value.is_shared() {
        return copy_at(op, &value.flatten_clone(), depth);
    }
    if value.is_unit()
        || value.is_bool()
        || value.is_int()
        || value.is_float()
        || value.is_char()
        || value.is_string()
        || value.is_blob()
        || value.is_decimal()
    {
        // Strings are shared immutably (atomically counted), so a clone is a copy.
        return Ok(value.clone());
    }
    if depth >= MAX_DEPTH {
        return Err(too_deep(Kind::Limit, op));
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return array.iter().map(|v| copy_at(op, v, depth + 1)).collect::<Result<rhai::Array, _>>().map(Into::into);
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let mut out = rhai::Map::new();
        for (k, v) in map.iter() {
            out.insert(k.clone(), copy_at(op, v, depth + 1)?);
        }
        return Ok(out.into());
    }
    let name = runtime::context().engine.map_type_name(value.type_name()).to_string();
    Err(Error::value(
        op,
        format!(
            "a {name} cannot cross to another worker: only strings, blobs, numbers, booleans, characters, arrays and maps do"
        ),
    ))
}

/// Copy an error raised on a worker so that it can be raised on its parent.
fn copy_err(op: &str, err: &EvalAltResult) -> Box<EvalAltResult> {
    match *crate::error::copy_error(err) {
        EvalAltResult::ErrorRuntime(v, pos) => {
            let v = copy(op, &v).unwrap_or_else(|_| v.to_string().into());
            Box::new(EvalAltResult::ErrorRuntime(v, pos))
        }
        other => Box::new(other),
    }
}

/// One end of the link between a worker and its parent: `send` and `recv`.
#[derive(Clone)]
pub struct Port {
    tx: async_channel::Sender<Dynamic>,
    rx: async_channel::Receiver<Dynamic>,
}

impl Port {
    /// The two ends of a new link.
    fn pair() -> (Self, Self) {
        let (a_tx, a_rx) = async_channel::bounded(LINK_CAPACITY);
        let (b_tx, b_rx) = async_channel::bounded(LINK_CAPACITY);
        (Self { tx: a_tx, rx: b_rx }, Self { tx: b_tx, rx: a_rx })
    }

    fn send(&self, op: &str, value: &Dynamic) -> NativeResult<()> {
        let closed = || Error::new(Kind::Closed, op, "the other end has finished").into();
        let value = match self.tx.try_send(copy(op, value)?) {
            Ok(()) => return Ok(()),
            Err(async_channel::TrySendError::Closed(_)) => return Err(closed()),
            Err(async_channel::TrySendError::Full(v)) => v,
        };
        let tx = self.tx.clone();
        runtime::block_on(async move { tx.send(value).await })?.map_err(|_| closed())
    }

    fn recv(&self, op: &str, timeout: Option<Duration>) -> NativeResult<Dynamic> {
        match self.rx.try_recv() {
            Ok(v) => return Ok(v),
            Err(async_channel::TryRecvError::Closed) => return Ok(Dynamic::UNIT),
            Err(async_channel::TryRecvError::Empty) => {}
        }
        let rx = self.rx.clone();
        runtime::block_on_timeout(op, timeout, async move { Ok(rx.recv().await.unwrap_or(Dynamic::UNIT)) })
    }
}

/// What a worker runs.
enum Target {
    /// A script function or closure, with its captured values copied.
    Function(Callable),
    /// A script file, run with `ARGS`.
    File(String),
}

/// How a worker ended: its value, or its error.
type Outcome = Option<Result<Dynamic, Arc<EvalAltResult>>>;

/// A started worker (`worker::start`).
#[derive(Clone)]
pub struct Worker(Arc<WorkerInner>);

struct WorkerInner {
    id: usize,
    port: Port,
    root: CancellationToken,
    outcome: watch::Receiver<Outcome>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    /// Start a host thread running `body` with `port` as its parent link.
    fn spawn(op: &str, body: impl FnOnce() -> NativeResult<Dynamic> + Send + 'static) -> NativeResult<Self> {
        let ctx = runtime::context();
        let hosts = ctx.hosts.clone().ok_or_else(|| Error::value(op, "this host cannot start workers"))?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let (mine, theirs) = Port::pair();
        let root = ctx.root.child_token();
        let (tx, rx) = watch::channel(None);
        let done_op = op.to_string();
        // Counted from now, not from when the thread gets going, so that no
        // wait begun meanwhile spins.
        let running = runtime::WorkerHost::enter();
        let job = HostJob {
            name: format!("netscript-worker-{id}"),
            root: root.clone(),
            worker_id: id,
            body: Box::new(move || {
                let _running = running;
                PARENT.with(|p| *p.borrow_mut() = Some(theirs));
                let result = body();
                PARENT.with(|p| p.borrow_mut().take());
                result
            }),
            done: Box::new(move |result| {
                let outcome = match result {
                    Ok(v) => copy(&done_op, &v).map_err(|e| Arc::from(Box::<EvalAltResult>::from(e))),
                    Err(e) => Err(Arc::from(copy_err(&done_op, &e))),
                };
                tx.send_replace(Some(outcome));
            }),
        };
        let thread =
            hosts.start(job).map_err(|e| Error::new(Kind::Limit, op, format!("cannot start a worker thread: {e}")))?;
        Ok(Self(Arc::new(WorkerInner { id, port: mine, root, outcome: rx, thread: Mutex::new(Some(thread)) })))
    }

    /// Start `target(args)` on a new worker.
    fn start(op: &str, target: Target, args: rhai::Array) -> NativeResult<Self> {
        let args = args.iter().map(|v| copy(op, v)).collect::<Result<rhai::Array, _>>()?;
        Self::spawn(op, move || match target {
            Target::Function(f) => f.call(args),
            Target::File(path) => {
                let engine = runtime::context().engine.clone();
                let source =
                    std::fs::read_to_string(&path).map_err(|e| Error::io("worker::start", &e).with_peer(&path))?;
                // A `#!` line makes a script executable; blank it, keeping line numbers.
                let code = match source.strip_prefix("#!") {
                    Some(rest) => rest.find('\n').map_or("", |i| &rest[i..]),
                    None => &source,
                };
                let mut ast = engine.compile(code)?;
                ast.set_source(path);
                let mut scope = rhai::Scope::new();
                scope.push_constant("ARGS", args);
                engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            }
        })
    }

    /// Wait (up to `timeout`) for the worker's thread to finish; how it ended.
    fn wait(&self, op: &str, timeout: Option<Duration>) -> NativeResult<Outcome> {
        let mut rx = self.0.outcome.clone();
        let ended = Error::new(Kind::Cancelled, op, "the worker ended without a result");
        let outcome = runtime::block_on_timeout(op, timeout, async move {
            Ok(rx.wait_for(Option::is_some).await.map_err(|_| ended)?.clone())
        })?;
        // The thread only returns after reporting: this wait is short.
        if let Some(t) = self.0.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            let _ = t.join();
        }
        Ok(outcome)
    }

    /// Wait (up to `timeout`) for the worker to finish; its value, or its
    /// error raised here (with the worker's script position and `worker` id).
    fn join(&self, timeout: Option<Duration>) -> NativeResult<Dynamic> {
        const OP: &str = "worker.join";
        match self.wait(OP, timeout)? {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) if runtime::innermost_terminated(&e) => {
                Err(Error::new(Kind::Cancelled, OP, format!("worker {} was terminated", self.0.id)).into())
            }
            Some(Err(e)) => Err(self.located(&e)),
            None => Err(Error::new(Kind::Cancelled, OP, "the worker ended without a result").into()),
        }
    }

    /// The worker's error as raised on the parent: a library error map gets
    /// `worker` (the id) and `line` (in the worker's script).
    fn located(&self, err: &EvalAltResult) -> Box<EvalAltResult> {
        let mut err = crate::error::copy_error(err);
        if let EvalAltResult::ErrorRuntime(v, pos) = &mut *err
            && let Some(mut map) = v.write_lock::<rhai::Map>()
        {
            map.insert("worker".into(), (self.0.id as INT).into());
            if let Some(line) = pos.line() {
                map.insert("line".into(), (line as INT).into());
            }
        }
        err
    }

    fn alive(&self) -> bool {
        self.0.outcome.borrow().is_none()
    }
}

/// A pool of workers (`worker::pool`), like `multiprocessing.Pool`.
#[derive(Clone)]
pub struct Pool(Arc<PoolInner>);

struct PoolInner {
    workers: Vec<Worker>,
    /// Chunks of work; every pool worker takes the next one. Closed by `close`.
    jobs: Mutex<Option<async_channel::Sender<Job>>>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // The workers finish what is queued, then return.
        self.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

/// Results of one chunk of a `map`: where it starts among the items, then
/// one result per item.
type ChunkResult = (usize, Vec<Result<Dynamic, Box<EvalAltResult>>>);

/// Work for a pool worker: runs on the worker's host thread and sends its
/// own results back.
pub type Job = Box<dyn FnOnce() + Send>;

/// The result of a call made on a worker, copied so that it can go back
/// to the parent.
pub fn result_back(op: &str, r: NativeResult<Dynamic>) -> Result<Dynamic, Box<EvalAltResult>> {
    match r {
        Ok(v) => copy(op, &v).map_err(Into::into),
        Err(e) => Err(copy_err(op, &e)),
    }
}

/// Wait for the next of the results that pool jobs send on `rx`; a
/// `cancelled` error once every job has gone without sending (a worker stopped).
pub fn next_result<T: Send + 'static>(op: &str, rx: &async_channel::Receiver<T>) -> NativeResult<T> {
    let next = match rx.try_recv() {
        Ok(r) => Some(r),
        Err(_) => {
            let rx = rx.clone();
            runtime::block_on(async move { rx.recv().await.ok() })?
        }
    };
    next.ok_or_else(|| Error::new(Kind::Cancelled, op, "a pool worker stopped").into())
}

impl Pool {
    /// A pool of `size` workers.
    ///
    /// # Errors
    /// When this host cannot start workers, or a thread cannot be started.
    pub fn new(size: usize) -> NativeResult<Self> {
        const OP: &str = "worker::pool";
        let (tx, rx) = async_channel::unbounded::<Job>();
        let mut workers = Vec::with_capacity(size);
        for _ in 0..size {
            let rx = rx.clone();
            workers.push(Worker::spawn(OP, move || {
                loop {
                    let next = match rx.try_recv() {
                        Ok(chunk) => Some(chunk),
                        Err(async_channel::TryRecvError::Closed) => None,
                        Err(async_channel::TryRecvError::Empty) => {
                            let rx = rx.clone();
                            runtime::block_on(async move { rx.recv().await.ok() })?
                        }
                    };
                    match next {
                        Some(job) => job(),
                        None => return Ok(Dynamic::UNIT),
                    }
                }
            })?);
        }
        Ok(Self(Arc::new(PoolInner { workers, jobs: Mutex::new(Some(tx)) })))
    }

    /// How many workers the pool has.
    #[must_use]
    pub fn size(&self) -> usize {
        self.0.workers.len()
    }

    /// Queue `job` for the next free worker.
    ///
    /// # Errors
    /// A `closed` error once the pool is closed.
    pub fn submit(&self, op: &str, job: Job) -> NativeResult<()> {
        let jobs = self.0.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        jobs.and_then(|j| j.try_send(job).ok()).ok_or_else(|| Error::new(Kind::Closed, op, "the pool is closed").into())
    }

    /// Queue `items` in chunks (of `chunk`, or about a quarter of an even
    /// share per worker, as `multiprocessing.Pool.map` does) and collect the
    /// results, calling `each` with the results of each chunk as it arrives.
    /// With `spread`, one call with the items as its arguments (`apply`).
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        op: &'static str,
        ctx: &NativeCallContext,
        f: FnPtr,
        items: &Items,
        chunk: Option<INT>,
        spread: bool,
        mut each: impl FnMut(ChunkResult),
    ) -> NativeResult<()> {
        let callable = Arc::new(Callable::detached(ctx, f, |v| copy(op, v))?);
        let len = items.len();
        let size = match chunk {
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::value(op, format!("the chunk size must be a positive number, got {n}")))?,
            None if spread => len.max(1),
            None => len.div_ceil(4 * self.size()).max(1),
        };
        let (reply, results) = async_channel::unbounded();
        let parts = len.div_ceil(size).max(usize::from(spread));
        for i in 0..parts {
            let part = items.part(op, i * size..len.min((i + 1) * size))?;
            let (callable, reply) = (callable.clone(), reply.clone());
            self.submit(
                op,
                Box::new(move || {
                    let items = part.values();
                    let results = if spread {
                        vec![result_back(op, callable.call(items))]
                    } else {
                        let mut out = Vec::with_capacity(items.len());
                        callable.call_each(items, None, |r| {
                            out.push(result_back(op, r));
                            true
                        });
                        out
                    };
                    let _ = reply.try_send((i * size, results));
                }),
            )?;
        }
        drop(reply);
        for _ in 0..parts {
            each(next_result(op, &results)?);
        }
        Ok(())
    }

    /// The error of item `index`, raised on the parent saying which item:
    /// a library error map gets `index` and its message `item N: …`, any
    /// other value becomes the text `item N: …`.
    fn item_error(index: usize, mut err: Box<EvalAltResult>) -> Box<EvalAltResult> {
        if let EvalAltResult::ErrorRuntime(v, _) = &mut *err {
            if v.is_map() {
                if let Some(mut map) = v.write_lock::<rhai::Map>() {
                    map.insert("index".into(), (index as INT).into());
                    if let Some(msg) = map.get("message").map(ToString::to_string) {
                        map.insert("message".into(), format!("item {index}: {msg}").into());
                    }
                }
            } else {
                *v = format!("item {index}: {v}").into();
            }
        }
        err
    }

    fn map(&self, ctx: &NativeCallContext, f: FnPtr, items: &Items, chunk: Option<INT>) -> NativeResult<Dynamic> {
        // Made at the first results, while the workers go on with the rest.
        let mut out: Vec<Dynamic> = Vec::new();
        let mut first_err: Option<(usize, Box<EvalAltResult>)> = None;
        self.run("pool.map", ctx, f, items, chunk, false, |(start, results)| {
            if out.is_empty() {
                out = vec![Dynamic::UNIT; items.len()];
            }
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(v) => out[start + i] = v,
                    Err(e) if first_err.as_ref().is_none_or(|(j, _)| start + i < *j) => {
                        first_err = Some((start + i, e))
                    }
                    Err(_) => {}
                }
            }
        })?;
        match first_err {
            Some((i, e)) => Err(Self::item_error(i, e)),
            None => Ok(out.into()),
        }
    }

    fn map_unordered(
        &self,
        ctx: &NativeCallContext,
        f: FnPtr,
        items: &Items,
        chunk: Option<INT>,
    ) -> NativeResult<Dynamic> {
        let mut out = Vec::with_capacity(items.len());
        let mut first_err: Option<(usize, Box<EvalAltResult>)> = None;
        self.run("pool.map_unordered", ctx, f, items, chunk, false, |(start, results)| {
            for (i, r) in results.into_iter().enumerate() {
                match r {
                    Ok(v) => out.push(v),
                    Err(e) if first_err.is_none() => first_err = Some((start + i, e)),
                    Err(_) => {}
                }
            }
        })?;
        match first_err {
            Some((i, e)) => Err(Self::item_error(i, e)),
            None => Ok(out.into()),
        }
    }

    fn apply(&self, ctx: &NativeCallContext, f: FnPtr, args: rhai::Array) -> NativeResult<Dynamic> {
        let mut result = None;
        let args = Items::Array(args);
        self.run("pool.apply", ctx, f, &args, None, true, |(_, mut results)| result = results.pop())?;
        result.unwrap_or(Ok(Dynamic::UNIT))
    }
}

/// The number of cores this process may use (the default pool size).
#[must_use]
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The items of `pool.map`: an array, or a range of integers (as Python
/// maps over `range(…)`), which each worker counts out for itself.
enum Items {
    Array(rhai::Array),
    Range(std::ops::Range<INT>),
}

/// One chunk of [`Items`], ready to go to a worker.
enum Part {
    Values(Vec<Dynamic>),
    Range(std::ops::Range<INT>),
}

impl Items {
    /// The items of `value` for `op`: an array, or a range no longer than
    /// the largest array allowed (the results are one).
    fn from(op: &str, value: Dynamic) -> NativeResult<Self> {
        let range = if let Some(r) = value.read_lock::<std::ops::Range<INT>>() {
            Some(r.clone())
        } else if let Some(r) = value.read_lock::<std::ops::RangeInclusive<INT>>() {
            Some(
                *r.start()
                    ..r.end()
                        .checked_add(1)
                        .ok_or_else(|| Error::value(op, "the range ends past the largest integer"))?,
            )
        } else {
            None
        };
        if let Some(r) = range {
            let len = range_len(&r);
            // The results are an array of as many values (and the items
            // another, a chunk at a time): checked before anything is made.
            let max = match runtime::max_array_size() {
                0 => crate::bytes::physical_memory() / (2 * std::mem::size_of::<Dynamic>()),
                max => max,
            };
            if len > max {
                return Err(Error::new(
                    Kind::Limit,
                    op,
                    format!("{len} items are more than an array may hold ({max})"),
                )
                .into());
            }
            return Ok(Self::Range(r));
        }
        let type_name = value.type_name();
        value
            .try_cast::<rhai::Array>()
            .map(Self::Array)
            .ok_or_else(|| Error::value(op, format!("expected an array or a range, got {type_name}")).into())
    }

    fn len(&self) -> usize {
        match self {
            Self::Array(a) => a.len(),
            Self::Range(r) => range_len(r),
        }
    }

    /// Items `at` (positions), copied for a worker.
    fn part(&self, op: &str, at: std::ops::Range<usize>) -> Result<Part, Error> {
        Ok(match self {
            Self::Array(a) => Part::Values(a[at].iter().map(|v| copy(op, v)).collect::<Result<_, _>>()?),
            #[allow(clippy::cast_possible_wrap)] // (positions within a range's length)
            Self::Range(r) => Part::Range(r.start + at.start as INT..r.start + at.end as INT),
        })
    }
}

/// How many integers `r` holds (none when it ends before it starts).
fn range_len(r: &std::ops::Range<INT>) -> usize {
    r.end.checked_sub(r.start).map_or(usize::MAX, |n| usize::try_from(n.max(0)).unwrap_or(usize::MAX))
}

impl Part {
    fn values(self) -> Vec<Dynamic> {
        match self {
            Self::Values(v) => v,
            Self::Range(r) => r.map(Dynamic::from_int).collect(),
        }
    }
}

/// The `worker::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A worker started by `worker::start`.
    pub type Worker = super::Worker;
    /// The link from a worker to its parent (`worker::parent()`).
    pub type Parent = Port;
    /// A pool of workers (`worker::pool`).
    pub type Pool = super::Pool;

    /// Run a function on another core, with its own host: the analogue of
    /// `multiprocessing.Process(target=f)`. Captured variables are copied;
    /// handles (connections, listeners…) cannot cross and are a `value`
    /// error.
    ///
    /// ```rhai
    /// let w = worker::start(|| 6 * 7);
    /// print(w.join());   // 42
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start(ctx: NativeCallContext, f: FnPtr) -> NativeResult<Worker> {
        start_with(ctx, f, rhai::Array::new())
    }

    /// Run a function on another core with arguments (copied).
    ///
    /// ```rhai
    /// let w = worker::start(|a, b| a + b, [40, 2]);
    /// print(w.join());   // 42
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_with(ctx: NativeCallContext, f: FnPtr, args: rhai::Array) -> NativeResult<Worker> {
        const OP: &str = "worker::start";
        let callable = Callable::detached(&ctx, f, |v| copy(OP, v))?;
        super::Worker::start(OP, Target::Function(callable), args)
    }

    /// Run a script file on another core; `args` are its `ARGS`.
    ///
    /// ```rhai
    /// let w = worker::start("job.rhai", ["input.txt"]);
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_file(path: &str, args: rhai::Array) -> NativeResult<Worker> {
        super::Worker::start("worker::start", Target::File(path.to_string()), args)
    }

    /// Run a script file on another core, with no `ARGS`.
    ///
    /// ```rhai
    /// let w = worker::start("job.rhai");
    /// ```
    #[rhai_fn(name = "start", return_raw)]
    pub fn start_file_only(path: &str) -> NativeResult<Worker> {
        start_file(path, rhai::Array::new())
    }

    /// Wait for the worker and return its value; its error is raised here,
    /// with `worker` (its id) and `line` (where it failed) in the error map.
    /// A terminated worker raises a `cancelled` error.
    ///
    /// ```rhai
    /// let w = worker::start(|| throw "no");
    /// try { w.join() } catch (e) { print(e) }
    /// ```
    #[rhai_fn(global, name = "join", return_raw, pure)]
    pub fn join(w: &mut Worker) -> NativeResult<Dynamic> {
        w.join(None)
    }

    /// Wait at most `timeout` seconds for the worker (`timeout` error after).
    ///
    /// ```rhai
    /// let w = worker::start(|| task::sleep(10));
    /// try { w.join(0.1) } catch (e) { print(e.kind) }   // timeout
    /// w.terminate();
    /// ```
    #[rhai_fn(global, name = "join", return_raw, pure)]
    pub fn join_timeout(w: &mut Worker, timeout: Dynamic) -> NativeResult<Dynamic> {
        let timeout = crate::args::duration("worker.join", &timeout)?;
        w.join(timeout)
    }

    /// Stop the worker: every task on it stops at its next wait or loop
    /// iteration, busy loops included (Python's `terminate()`).
    ///
    /// ```rhai
    /// let w = worker::start(|| loop {});
    /// w.terminate();
    /// ```
    #[rhai_fn(global, name = "terminate", pure)]
    pub fn terminate(w: &mut Worker) {
        w.0.root.cancel();
    }

    /// Whether the worker is still running (`w.alive`).
    #[rhai_fn(global, get = "alive", pure)]
    pub fn alive(w: &mut Worker) -> bool {
        w.alive()
    }

    /// The worker's id (`w.id`), what `worker::id()` returns inside it.
    #[rhai_fn(global, get = "id", pure)]
    pub fn worker_id(w: &mut Worker) -> INT {
        w.0.id as INT
    }

    /// Send a copy of `value` to the worker (it reads it with
    /// `worker::parent().recv()`); waits while 1,024 values are unread.
    ///
    /// ```rhai
    /// let w = worker::start(|| worker::parent().recv() * 2);
    /// w.send(21);
    /// print(w.join());   // 42
    /// ```
    #[rhai_fn(global, name = "send", return_raw, pure)]
    pub fn send(w: &mut Worker, value: Dynamic) -> NativeResult<()> {
        w.0.port.send("worker.send", &value)
    }

    /// Receive the next value the worker sent; `()` once it has finished
    /// and everything it sent has been read.
    ///
    /// ```rhai
    /// let w = worker::start(|| worker::parent().send("hi"));
    /// print(w.recv());   // hi
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv(w: &mut Worker) -> NativeResult<Dynamic> {
        w.0.port.recv("worker.recv", None)
    }

    /// Receive with a timeout in seconds (`timeout` error when it passes).
    ///
    /// ```rhai
    /// let w = worker::start(|| task::sleep(1));
    /// try { w.recv(0.01) } catch (e) { print(e.kind) }   // timeout
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn recv_timeout(w: &mut Worker, timeout: Dynamic) -> NativeResult<Dynamic> {
        let timeout = crate::args::duration("worker.recv", &timeout)?;
        w.0.port.recv("worker.recv", timeout)
    }

    /// Inside a worker: the link to the parent, with `send` and `recv`.
    /// Elsewhere a `value` error.
    ///
    /// ```rhai
    /// let w = worker::start(|| { let p = worker::parent(); p.send(p.recv() + 1) });
    /// w.send(1);
    /// print(w.recv());   // 2
    /// ```
    #[rhai_fn(return_raw)]
    pub fn parent() -> NativeResult<Parent> {
        PARENT
            .with(|p| p.borrow().clone())
            .ok_or_else(|| Error::value("worker::parent", "this script is not running in a worker").into())
    }

    /// Send a copy of `value` to the parent (`w.recv()` there).
    ///
    /// ```rhai
    /// let w = worker::start(|| worker::parent().send([1, 2]));
    /// print(w.recv());
    /// ```
    #[rhai_fn(global, name = "send", return_raw, pure)]
    pub fn parent_send(p: &mut Parent, value: Dynamic) -> NativeResult<()> {
        p.send("parent.send", &value)
    }

    /// Receive the next value the parent sent; `()` once the parent's
    /// handle is gone and everything it sent has been read.
    ///
    /// ```rhai
    /// let w = worker::start(|| worker::parent().recv());
    /// w.send("x");
    /// print(w.join());   // x
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn parent_recv(p: &mut Parent) -> NativeResult<Dynamic> {
        p.recv("parent.recv", None)
    }

    /// Receive from the parent with a timeout in seconds.
    ///
    /// ```rhai
    /// let w = worker::start(|| try { worker::parent().recv(0.01) } catch (e) { e.kind });
    /// print(w.join());   // timeout
    /// ```
    #[rhai_fn(global, name = "recv", return_raw, pure)]
    pub fn parent_recv_timeout(p: &mut Parent, timeout: Dynamic) -> NativeResult<Dynamic> {
        let timeout = crate::args::duration("parent.recv", &timeout)?;
        p.recv("parent.recv", timeout)
    }

    /// Which worker this script runs in: 0 on the main host, `0..N` under
    /// `netscript run --workers N`, a process-unique number in a worker
    /// started with `worker::start` or a pool.
    ///
    /// ```rhai
    /// print(worker::id());   // 0
    /// ```
    pub fn id() -> INT {
        runtime::context().worker_id as INT
    }

    /// The number of cores this process may use (the default pool size).
    ///
    /// ```rhai
    /// print(worker::cores());
    /// ```
    #[rhai_fn(name = "cores")]
    pub fn cores_int() -> INT {
        super::cores() as INT
    }

    /// A pool of one worker per core (`multiprocessing.Pool()`).
    ///
    /// ```rhai
    /// let pool = worker::pool();
    /// print(pool.map(|x| x + 1, [1, 2]));   // [2, 3]
    /// ```
    #[rhai_fn(name = "pool", return_raw)]
    pub fn pool() -> NativeResult<Pool> {
        super::Pool::new(super::cores())
    }

    /// A pool of `n` workers (1 to 1,024).
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// print(pool.size);   // 2
    /// ```
    #[rhai_fn(name = "pool", return_raw)]
    pub fn pool_of(n: INT) -> NativeResult<Pool> {
        let n = usize::try_from(n)
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| Error::value("worker::pool", format!("a pool has 1 to 1024 workers, got {n}")))?;
        super::Pool::new(n)
    }

    /// How many workers the pool has (`pool.size`).
    #[rhai_fn(global, get = "size", pure)]
    pub fn pool_size(p: &mut Pool) -> INT {
        p.size() as INT
    }

    /// `f(item)` for every item, spread over the pool's workers in chunks;
    /// the results in input order (`Pool.map`). A failing item raises its
    /// error with `index` added (the lowest failing index).
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// print(pool.map(|n| n * n, range(0, 11)));   // [0, 1, 4, …, 100]
    /// ```
    #[rhai_fn(global, name = "map", return_raw, pure)]
    pub fn map(ctx: NativeCallContext, p: &mut Pool, f: FnPtr, items: Dynamic) -> NativeResult<Dynamic> {
        p.map(&ctx, f, &super::Items::from("pool.map", items)?, None)
    }

    /// `pool.map` with a chosen chunk size (items per message to a worker).
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// print(pool.map(|n| n + 1, [1, 2, 3], 1));   // [2, 3, 4]
    /// ```
    #[rhai_fn(global, name = "map", return_raw, pure)]
    pub fn map_chunked(
        ctx: NativeCallContext,
        p: &mut Pool,
        f: FnPtr,
        items: Dynamic,
        chunk: INT,
    ) -> NativeResult<Dynamic> {
        p.map(&ctx, f, &super::Items::from("pool.map", items)?, Some(chunk))
    }

    /// Like `map`, with results in the order they finish (`imap_unordered`).
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// print(pool.map_unordered(|n| n * 2, [1, 2, 3]).len());   // 3
    /// ```
    #[rhai_fn(global, name = "map_unordered", return_raw, pure)]
    pub fn map_unordered(ctx: NativeCallContext, p: &mut Pool, f: FnPtr, items: Dynamic) -> NativeResult<Dynamic> {
        p.map_unordered(&ctx, f, &super::Items::from("pool.map_unordered", items)?, None)
    }

    /// `f(args…)` on one of the pool's workers; waits for its result (`Pool.apply`).
    ///
    /// ```rhai
    /// let pool = worker::pool(1);
    /// print(pool.apply(|a, b| a * b, [6, 7]));   // 42
    /// ```
    #[rhai_fn(global, name = "apply", return_raw, pure)]
    pub fn apply(ctx: NativeCallContext, p: &mut Pool, f: FnPtr, args: rhai::Array) -> NativeResult<Dynamic> {
        p.apply(&ctx, f, args)
    }

    /// Accept no more work; the workers finish what is queued, then stop.
    ///
    /// ```rhai
    /// let pool = worker::pool(1);
    /// pool.close();
    /// pool.join();
    /// ```
    #[rhai_fn(global, name = "close", pure)]
    pub fn pool_close(p: &mut Pool) {
        p.0.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }

    /// Wait for every worker of a closed (or terminated) pool to stop; on
    /// a pool still open a `value` error, as in Python.
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// pool.close();
    /// pool.join();
    /// ```
    #[rhai_fn(global, name = "join", return_raw, pure)]
    pub fn pool_join(p: &mut Pool) -> NativeResult<()> {
        if p.0.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some() {
            return Err(Error::value("pool.join", "the pool is still open: close() or terminate() it first").into());
        }
        for w in &p.0.workers {
            w.wait("pool.join", None)?;
        }
        Ok(())
    }

    /// Stop every worker of the pool now.
    ///
    /// ```rhai
    /// let pool = worker::pool(2);
    /// pool.terminate();
    /// ```
    #[rhai_fn(global, name = "terminate", pure)]
    pub fn pool_terminate(p: &mut Pool) {
        pool_close(p);
        for w in &p.0.workers {
            w.0.root.cancel();
        }
    }
}

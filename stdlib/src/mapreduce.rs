//! `mapreduce::` — map-reduce over a pool of workers, and the Hadoop
//! Streaming contract that lets the same job run on Hadoop or Spark.
//!
//! `mapreduce::run(inputs, map_fn, reduce_fn, opts?)` splits the inputs into
//! chunks, maps each chunk on a worker (grouping its pairs by key, and
//! combining them there when a `combine` function is given), shuffles the
//! groups to the parent, and reduces them on the workers, one chunk of keys
//! each. Keys are compared as text. Past `max_memory` bytes of grouped
//! pairs, the parent writes them as a sorted run to a temporary file and
//! merges the runs at the end, so inputs larger than memory work.
//!
//! ```rhai
//! let squares = mapreduce::run(range(0, 11), |n| [["sum", n * n]], |k, vs| vs.reduce(|a, b| a + b, 0));
//! print(squares.sum);   // 385
//! ```
//!
//! `mapreduce::streaming_map(f)` and `mapreduce::streaming_reduce(f)` are
//! the two phases of Hadoop Streaming (`netscript mapreduce job.rhai --phase
//! map|reduce` runs them): lines on standard input, `key\tvalue` lines out.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::sync::Arc;

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, FnPtr, INT, ImmutableString, Map, NativeCallContext};

use crate::error::{Error, Kind, NativeResult};
use crate::runtime;
use crate::task::Callable;
use crate::worker::{self, Pool, copy, next_result, result_back};

/// Items per map task when `opts.chunk` is not given.
const DEFAULT_CHUNK: usize = 4096;

/// Grouped pairs the parent holds before it spills a sorted run to disk.
const DEFAULT_MAX_MEMORY: usize = 256 << 20;

/// Pairs grouped by key (as text): the key as first seen, then its values.
type Groups = HashMap<ImmutableString, (Dynamic, Vec<Dynamic>)>;

/// One key's group in key order: the key as text, the key, its values.
type Group = (ImmutableString, Dynamic, Vec<Dynamic>);

/// A key as text: a string key is shared, not copied.
fn key_text(k: &Dynamic) -> ImmutableString {
    k.read_lock::<ImmutableString>().map_or_else(|| k.to_string().into(), |s| s.clone())
}

/// What a map task sends back: its groups and their rough size in bytes.
type MapResult = Result<(Groups, usize), Box<EvalAltResult>>;

/// The job's functions, ready to run on the workers.
struct Job {
    map: Callable,
    combine: Option<Callable>,
    reduce: Callable,
}

/// A rough size of a value, for `max_memory`.
fn size_of(v: &Dynamic) -> usize {
    runtime::value_size(v)
}

/// Add the pairs `map_fn` returned — an array of `[key, value]` pairs or a
/// map of key to value — to `groups`.
fn add_pairs(op: &str, out: Dynamic, groups: &mut Groups, size: &mut usize) -> Result<(), Error> {
    let mut add = |k: Dynamic, v: Dynamic| -> Result<(), Error> {
        let (k, v) = (copy(op, &k)?, copy(op, &v)?);
        *size += size_of(&v) + 16;
        let text = key_text(&k);
        match groups.get_mut(&text) {
            Some((_, vs)) => vs.push(v),
            None => {
                *size += size_of(&k) + 64;
                groups.insert(text, (k, vec![v]));
            }
        }
        Ok(())
    };
    if out.is_unit() {
        return Ok(());
    }
    if let Some(map) = out.read_lock::<Map>() {
        for (k, v) in map.iter() {
            add(k.as_str().into(), v.clone())?;
        }
        return Ok(());
    }
    let Some(pairs) = out.read_lock::<rhai::Array>() else {
        let name = runtime::context().engine.map_type_name(out.type_name()).to_string();
        return Err(Error::value(op, format!("the map function must return [key, value] pairs or a map, got {name}")));
    };
    for pair in pairs.iter() {
        let kv = pair.read_lock::<rhai::Array>().filter(|kv| kv.len() == 2).ok_or_else(|| {
            Error::value(op, format!("the map function must return [key, value] pairs, got {pair} in its array"))
        })?;
        add(kv[0].clone(), kv[1].clone())?;
    }
    Ok(())
}

impl Job {
    /// Map `items` (on a worker): their pairs grouped by key, combined if asked.
    fn map_chunk(&self, op: &str, items: Vec<Dynamic>) -> MapResult {
        let mut groups = Groups::new();
        let mut size = 0;
        let mut failed: Option<Box<EvalAltResult>> = None;
        self.map.call_each(items, |out| {
            failed = match out {
                Ok(out) => add_pairs(op, out, &mut groups, &mut size).err().map(Into::into),
                Err(e) => Some(e),
            };
            failed.is_none()
        });
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(combine) = &self.combine {
            size = 0;
            for (k, vs) in groups.values_mut() {
                let v = result_back(op, combine.call(vec![k.clone(), std::mem::take(vs).into()]))?;
                size += size_of(k) + size_of(&v) + 80;
                *vs = vec![v];
            }
        }
        Ok((groups, size))
    }
}

/// The inputs of a run: items, or the lines of files.
enum Inputs {
    Items(rhai::Array),
    Files(Vec<String>),
}

impl Inputs {
    fn from(op: &str, v: Dynamic) -> NativeResult<Self> {
        if let Some(path) = v.read_lock::<rhai::ImmutableString>() {
            return Ok(Self::Files(vec![path.to_string()]));
        }
        if let Some(map) = v.read_lock::<Map>() {
            let files = map.get("files").and_then(|f| f.read_lock::<rhai::Array>().map(|a| a.clone()));
            let files = files.ok_or_else(|| Error::value(op, "inputs as a map are #{files: [paths…]}"))?;
            return Ok(Self::Files(files.iter().map(ToString::to_string).collect()));
        }
        let type_name = v.type_name();
        let items = if let Some(r) = v.read_lock::<std::ops::Range<INT>>() {
            r.clone().map(Dynamic::from_int).collect()
        } else {
            v.try_cast::<rhai::Array>().ok_or_else(|| {
                Error::value(
                    op,
                    format!("inputs are an array, a range, a file path or #{{files: […]}}, got {type_name}"),
                )
            })?
        };
        Ok(Self::Items(items))
    }

    /// Call `each` with successive chunks of at most `chunk` items (lines
    /// without their line ends, for files), reading files as it goes.
    fn chunks(
        self,
        op: &str,
        chunk: usize,
        mut each: impl FnMut(Vec<Dynamic>) -> NativeResult<()>,
    ) -> NativeResult<()> {
        match self {
            Self::Items(items) => {
                for part in items.chunks(chunk) {
                    each(part.iter().map(|v| copy(op, v)).collect::<Result<_, _>>()?)?;
                }
            }
            Self::Files(paths) => {
                for path in paths {
                    let file = std::fs::File::open(&path).map_err(|e| Error::io(op, &e).with_peer(&path))?;
                    let mut lines = BufReader::new(file).lines();
                    loop {
                        let mut part = Vec::with_capacity(chunk);
                        for line in lines.by_ref().take(chunk) {
                            part.push(line.map_err(|e| Error::io(op, &e).with_peer(&path))?.into());
                        }
                        if part.is_empty() {
                            break;
                        }
                        each(part)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Sorted runs of grouped pairs the parent wrote to disk (`max_memory`),
/// one JSON array `[key, [values…]]` per line, in key order.
struct Spill {
    dir: Option<tempfile_dir::Dir>,
    runs: Vec<std::path::PathBuf>,
}

/// A temporary folder removed when dropped (std has no such type).
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Self> {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("netscript-mapreduce-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(Self(path))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Sort groups by key: numbers by value, everything else as text (bytes).
fn sort_groups(groups: Groups) -> Vec<Group> {
    let mut all: Vec<_> = groups.into_iter().map(|(s, (k, vs))| (s, k, vs)).collect();
    all.sort_by(|a, b| compare_keys(&a.1, &a.0, &b.1, &b.0));
    all
}

fn compare_keys(a: &Dynamic, a_text: &str, b: &Dynamic, b_text: &str) -> CmpOrdering {
    match (a.as_int(), b.as_int()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a_text.cmp(b_text),
    }
}

impl Spill {
    fn write(&mut self, op: &str, groups: Groups) -> NativeResult<()> {
        if self.dir.is_none() {
            self.dir = Some(tempfile_dir::Dir::new().map_err(|e| Error::io(op, &e))?);
        }
        let dir = &self.dir.as_ref().map(|d| d.0.clone()).unwrap_or_default();
        let path = dir.join(format!("run-{}.jsonl", self.runs.len()));
        let file = std::fs::File::create(&path).map_err(|e| Error::io(op, &e))?;
        let mut out = BufWriter::new(file);
        for (_, k, vs) in sort_groups(groups) {
            let line = crate::codec::json::encode_with(&Dynamic::from_array(vec![k, vs.into()]), &Map::new())?;
            writeln!(out, "{line}").map_err(|e| Error::io(op, &e))?;
        }
        out.flush().map_err(|e| Error::io(op, &e))?;
        self.runs.push(path);
        Ok(())
    }

    /// Merge the runs and the groups still in memory, in key order, calling
    /// `each` with every key and all its values.
    fn merge(
        self,
        op: &str,
        rest: Groups,
        mut each: impl FnMut(Dynamic, Vec<Dynamic>) -> NativeResult<()>,
    ) -> NativeResult<()> {
        /// The next group of one run, ordered for a min-heap.
        struct Head {
            text: ImmutableString,
            key: Dynamic,
            values: Vec<Dynamic>,
            run: usize,
        }
        impl PartialEq for Head {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == CmpOrdering::Equal
            }
        }
        impl Eq for Head {}
        impl PartialOrd for Head {
            fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Head {
            fn cmp(&self, other: &Self) -> CmpOrdering {
                compare_keys(&other.key, &other.text, &self.key, &self.text).then(other.run.cmp(&self.run))
            }
        }
        let mut sources: Vec<Box<dyn Iterator<Item = NativeResult<Group>>>> = Vec::new();
        for path in &self.runs {
            let file = std::fs::File::open(path).map_err(|e| Error::io(op, &e))?;
            let op = op.to_string();
            sources.push(Box::new(BufReader::new(file).lines().map(move |line| {
                let line = line.map_err(|e| Error::io(&op, &e))?;
                let value: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| Error::new(Kind::Decode, &op, e.to_string()))?;
                let pair = crate::codec::json::from_json(value, &op)?.into_array().unwrap_or_default();
                let mut pair = pair.into_iter();
                let key = pair.next().unwrap_or_default();
                let values = pair.next().and_then(|v| v.into_array().ok()).unwrap_or_default();
                Ok((key_text(&key), key, values))
            })));
        }
        sources.push(Box::new(sort_groups(rest).into_iter().map(Ok)));
        let mut heap = BinaryHeap::new();
        for (run, source) in sources.iter_mut().enumerate() {
            if let Some(next) = source.next() {
                let (text, key, values) = next?;
                heap.push(Head { text, key, values, run });
            }
        }
        let mut current: Option<Group> = None;
        while let Some(head) = heap.pop() {
            if let Some(next) = sources[head.run].next() {
                let (text, key, values) = next?;
                heap.push(Head { text, key, values, run: head.run });
            }
            match &mut current {
                Some((text, _, values)) if *text == head.text => values.extend(head.values),
                _ => {
                    if let Some((_, k, vs)) = current.take() {
                        each(k, vs)?;
                    }
                    current = Some((head.text, head.key, head.values));
                }
            }
        }
        if let Some((_, k, vs)) = current {
            each(k, vs)?;
        }
        Ok(())
    }
}

/// Options of `mapreduce::run`.
struct Options {
    workers: usize,
    chunk: usize,
    max_memory: usize,
    sorted: bool,
    combine: Option<FnPtr>,
}

impl Options {
    fn from(op: &str, opts: &Map) -> NativeResult<Self> {
        let known = ["workers", "chunk", "max_memory", "sorted", "combine"];
        if let Some(k) = opts.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::value(op, format!("unknown option {k:?} (known: {})", known.join(", "))).into());
        }
        let count = |name: &str, default: usize, max: usize| -> NativeResult<usize> {
            match opts.get(name) {
                None => Ok(default),
                Some(v) => {
                    v.as_int().ok().and_then(|n| usize::try_from(n).ok()).filter(|n| (1..=max).contains(n)).ok_or_else(
                        || Error::value(op, format!("{name} must be a number from 1 to {max}, got {v}")).into(),
                    )
                }
            }
        };
        let combine = match opts.get("combine") {
            None => None,
            Some(f) => {
                Some(f.clone().try_cast::<FnPtr>().ok_or_else(|| Error::value(op, "combine must be a function"))?)
            }
        };
        Ok(Self {
            workers: count("workers", worker::cores(), 1024)?,
            chunk: count("chunk", DEFAULT_CHUNK, 1 << 24)?,
            max_memory: count("max_memory", DEFAULT_MAX_MEMORY, usize::MAX)?,
            sorted: opts.get("sorted").is_some_and(|v| v.as_bool().unwrap_or(false)),
            combine,
        })
    }
}

/// `mapreduce::run`.
fn run(ctx: &NativeCallContext, inputs: Dynamic, map: FnPtr, reduce: FnPtr, opts: &Map) -> NativeResult<Dynamic> {
    const OP: &str = "mapreduce::run";
    let opts = Options::from(OP, opts)?;
    let detached = |f: FnPtr| Callable::detached(ctx, f, |v| copy(OP, v));
    let job = Arc::new(Job {
        map: detached(map)?,
        combine: opts.combine.clone().map(detached).transpose()?,
        reduce: detached(reduce)?,
    });
    let inputs = Inputs::from(OP, inputs)?;
    let pool = Pool::new(opts.workers)?;

    // Map: every chunk on the next free worker; the parent merges the groups
    // as they come back, keeping at most twice the workers' chunks in flight.
    let (reply, results) = async_channel::unbounded::<MapResult>();
    let mut groups = Groups::new();
    let mut held = 0usize;
    let mut spill = Spill { dir: None, runs: Vec::new() };
    let mut in_flight = 0usize;
    let receive = |groups: &mut Groups, held: &mut usize, spill: &mut Spill| -> NativeResult<()> {
        let (part, size) = next_result(OP, &results)??;
        for (text, (k, vs)) in part {
            match groups.get_mut(&text) {
                Some((_, all)) => all.extend(vs),
                None => {
                    groups.insert(text, (k, vs));
                }
            }
        }
        *held += size;
        if *held > opts.max_memory {
            spill.write(OP, std::mem::take(groups))?;
            *held = 0;
        }
        Ok(())
    };
    inputs.chunks(OP, opts.chunk, |items| {
        if in_flight >= 2 * pool.size() {
            receive(&mut groups, &mut held, &mut spill)?;
            in_flight -= 1;
        }
        let (job, reply) = (job.clone(), reply.clone());
        pool.submit(
            OP,
            Box::new(move || {
                let _ = reply.try_send(job.map_chunk(OP, items));
            }),
        )?;
        in_flight += 1;
        Ok(())
    })?;
    drop(reply);
    for _ in 0..in_flight {
        receive(&mut groups, &mut held, &mut spill)?;
    }

    // Reduce: keys in key order, in chunks, on the workers.
    let (reply, results) = async_channel::unbounded::<(usize, Vec<Result<Dynamic, Box<EvalAltResult>>>)>();
    let mut keys: Vec<Dynamic> = Vec::new();
    let mut batch: Vec<(Dynamic, Vec<Dynamic>)> = Vec::new();
    let mut sent = 0usize;
    let flush = |batch: &mut Vec<(Dynamic, Vec<Dynamic>)>, sent: &mut usize| -> NativeResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (job, reply, part, start) = (job.clone(), reply.clone(), std::mem::take(batch), *sent);
        pool.submit(
            OP,
            Box::new(move || {
                let out =
                    part.into_iter().map(|(k, vs)| result_back(OP, job.reduce.call(vec![k, vs.into()]))).collect();
                let _ = reply.try_send((start, out));
            }),
        )?;
        *sent += 1;
        Ok(())
    };
    spill.merge(OP, groups, |k, vs| {
        keys.push(k.clone());
        batch.push((k, vs));
        if batch.len() >= opts.chunk {
            flush(&mut batch, &mut sent)?;
        }
        Ok(())
    })?;
    flush(&mut batch, &mut sent)?;
    drop(reply);
    let mut values: Vec<Dynamic> = vec![Dynamic::UNIT; keys.len()];
    for _ in 0..sent {
        let (start, out) = next_result(OP, &results)?;
        for (i, r) in out.into_iter().enumerate() {
            values[start * opts.chunk + i] = r?;
        }
    }
    drop(pool);
    if opts.sorted {
        Ok(keys.into_iter().zip(values).map(|(k, v)| Dynamic::from_array(vec![k, v])).collect::<rhai::Array>().into())
    } else {
        Ok(keys.into_iter().zip(values).map(|(k, v)| (k.to_string().into(), v)).collect::<Map>().into())
    }
}

/// A value as Hadoop Streaming text: strings as they are, anything else as JSON.
fn to_text(v: &Dynamic) -> Result<String, Error> {
    match v.read_lock::<rhai::ImmutableString>() {
        Some(s) => Ok(s.to_string()),
        None => crate::codec::json::encode_with(v, &Map::new()),
    }
}

/// A value read back from Hadoop Streaming text: JSON numbers, arrays,
/// maps, booleans and quoted strings as such, anything else as the string.
fn from_text(op: &str, s: &str) -> Dynamic {
    match serde_json::from_str::<serde_json::Value>(s) {
        Ok(
            v @ (serde_json::Value::Number(_)
            | serde_json::Value::Array(_)
            | serde_json::Value::Object(_)
            | serde_json::Value::Bool(_)
            | serde_json::Value::String(_)),
        ) => crate::codec::json::from_json(v, op).unwrap_or_else(|_| s.into()),
        _ => s.into(),
    }
}

/// Lines of standard input, read without blocking the event loop.
fn stdin_lines(op: &str, mut each: impl FnMut(String) -> NativeResult<()>) -> NativeResult<()> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::with_capacity(1 << 16, tokio::io::stdin()).lines();
    loop {
        // Up to 1,024 lines per wait: one suspension per batch, not per line.
        let (batch, rest) = runtime::block_on(async move {
            let mut batch = Vec::new();
            while batch.len() < 1024 {
                match lines.next_line().await {
                    Ok(Some(line)) => batch.push(Ok(line)),
                    Ok(None) => break,
                    Err(e) => {
                        batch.push(Err(e));
                        break;
                    }
                }
            }
            (batch, lines)
        })?;
        lines = rest;
        if batch.is_empty() {
            return Ok(());
        }
        for line in batch {
            each(line.map_err(|e| Error::io(op, &e))?)?;
        }
    }
}

/// Write `key\tvalue` to standard output.
fn emit(op: &str, out: &mut impl Write, k: &Dynamic, v: &Dynamic) -> NativeResult<()> {
    writeln!(out, "{}\t{}", to_text(k)?, to_text(v)?).map_err(|e| Error::io(op, &e).into())
}

/// The `mapreduce::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// Map-reduce on a pool of workers: `map_fn(item)` returns `[key, value]`
    /// pairs (or a map of key to value), `reduce_fn(key, values)` one value
    /// per key; the result is a map of key to value. `inputs` is an array, a
    /// range, a file path (its lines) or `#{files: [paths…]}`.
    ///
    /// ```rhai
    /// let squares = mapreduce::run(range(0, 11), |n| [["sum", n * n]], |k, vs| vs.reduce(|a, b| a + b, 0));
    /// print(squares.sum);   // 385
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run(ctx: NativeCallContext, inputs: Dynamic, map_fn: FnPtr, reduce_fn: FnPtr) -> NativeResult<Dynamic> {
        super::run(&ctx, inputs, map_fn, reduce_fn, &Map::new())
    }

    /// `mapreduce::run` with options: `workers` (default: every core),
    /// `combine` (a `|key, values|` function run on each map chunk's groups,
    /// like Hadoop's combiner), `chunk` (items or lines per task, 4096),
    /// `max_memory` (bytes of grouped pairs held before spilling sorted runs
    /// to temporary files, 256 MiB), `sorted: true` (an array of `[key,
    /// value]` pairs in key order instead of a map).
    ///
    /// ```rhai
    /// let words = ["a b", "b c", "b"];
    /// let counts = mapreduce::run(words, |line| line.split(" ").map(|w| [w, 1]),
    ///     |w, ones| ones.len(), #{workers: 2, sorted: true});
    /// print(counts);   // [["a", 1], ["b", 3], ["c", 1]]
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run_with(
        ctx: NativeCallContext,
        inputs: Dynamic,
        map_fn: FnPtr,
        reduce_fn: FnPtr,
        opts: Map,
    ) -> NativeResult<Dynamic> {
        super::run(&ctx, inputs, map_fn, reduce_fn, &opts)
    }

    /// The map phase of Hadoop Streaming: `map_fn(line)` for every line of
    /// standard input; each pair written as a `key\tvalue` line (strings as
    /// they are, other values as JSON). What `netscript mapreduce job.rhai
    /// --phase map` runs.
    ///
    /// ```rhai
    /// mapreduce::streaming_map(|line| line.split(" ").map(|w| [w, 1]));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn streaming_map(ctx: NativeCallContext, map_fn: FnPtr) -> NativeResult<()> {
        const OP: &str = "mapreduce::streaming_map";
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        stdin_lines(OP, |line| {
            let pairs: Dynamic = map_fn.call_within_context(&ctx, (line,))?;
            let mut groups = Groups::new();
            let mut size = 0;
            if let Some(a) = pairs.read_lock::<rhai::Array>() {
                // In order, one line per pair, as Hadoop expects of a mapper.
                for pair in a.iter() {
                    match pair.read_lock::<rhai::Array>() {
                        Some(kv) if kv.len() == 2 => emit(OP, &mut out, &kv[0], &kv[1])?,
                        _ => {
                            return Err(Error::value(
                                OP,
                                format!("the map function must return [key, value] pairs, got {pair} in its array"),
                            )
                            .into());
                        }
                    }
                }
                return Ok(());
            }
            add_pairs(OP, pairs, &mut groups, &mut size)?;
            for (_, k, vs) in sort_groups(groups) {
                for v in vs {
                    emit(OP, &mut out, &k, &v)?;
                }
            }
            Ok(())
        })?;
        out.flush().map_err(|e| Error::io(OP, &e).into())
    }

    /// The reduce phase of Hadoop Streaming: standard input is `key\tvalue`
    /// lines sorted by key (as Hadoop's shuffle or `LC_ALL=C sort` leaves
    /// them); `reduce_fn(key, values)` for each run of one key, written as
    /// `key\tresult`. Values that read as JSON (numbers…) are given as such.
    ///
    /// ```rhai
    /// mapreduce::streaming_reduce(|word, ones| ones.len());
    /// ```
    #[rhai_fn(return_raw)]
    pub fn streaming_reduce(ctx: NativeCallContext, reduce_fn: FnPtr) -> NativeResult<()> {
        const OP: &str = "mapreduce::streaming_reduce";
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let mut current: Option<(String, Vec<Dynamic>)> = None;
        let finish = |out: &mut BufWriter<_>, key: String, values: Vec<Dynamic>| -> NativeResult<()> {
            let key: Dynamic = key.into();
            let v: Dynamic = reduce_fn.call_within_context(&ctx, (key.clone(), Dynamic::from_array(values)))?;
            emit(OP, out, &key, &v)
        };
        stdin_lines(OP, |line| {
            let (key, value) = line.split_once('\t').unwrap_or((line.as_str(), ""));
            match &mut current {
                Some((k, values)) if k == key => values.push(from_text(OP, value)),
                _ => {
                    if let Some((k, values)) = current.take() {
                        finish(&mut out, k, values)?;
                    }
                    current = Some((key.to_string(), vec![from_text(OP, value)]));
                }
            }
            Ok(())
        })?;
        if let Some((k, values)) = current {
            finish(&mut out, k, values)?;
        }
        out.flush().map_err(|e| Error::io(OP, &e).into())
    }
}

//! `mapreduce::` — map-reduce over a pool of workers, and the Hadoop
//! Streaming contract that lets the same job run on Hadoop or Spark.
//!
//! `mapreduce::run(inputs, map_fn, reduce_fn, opts?)` splits the inputs into
//! tasks (chunks of items, byte ranges of files), maps each task on a worker
//! (grouping its pairs by key and spreading the groups over one partition
//! per worker by a hash of the key, combining them there when a `combine`
//! function is given), and at the end reduces each partition on a worker,
//! in key order. Keys are compared as text. Past `max_memory` bytes of
//! grouped pairs, the workers write each partition's groups as a sorted run
//! to a temporary file, merged when the partition is reduced, so inputs
//! larger than memory work.
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
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rhai::plugin::*;
use rhai::{Dynamic, EvalAltResult, FnPtr, INT, ImmutableString, Map, NativeCallContext};

use crate::error::{Error, Kind, NativeResult};
use crate::runtime;
use crate::task::Callable;
use crate::worker::{self, Pool, copy, next_result, result_back};

/// Items per map task when `opts.chunk` is not given.
const DEFAULT_CHUNK: usize = 4096;

/// Bytes of a file per map task when `opts.split` is not given: a quarter
/// of an even share per worker, within these bounds. With a built-in
/// combiner a task sends back one value per distinct key, whatever its
/// size, so its splits may be larger: fewer tasks, fewer groups to copy
/// and merge (a word count on two workers: 1.75x one worker's rate with
/// 4 MiB splits, 1.96x with 16 MiB).
const MIN_SPLIT: u64 = 64 << 10;
const MAX_SPLIT: u64 = 4 << 20;
const MAX_SPLIT_COMBINED: u64 = 32 << 20;

/// Map tasks' groups a partition holds before the workers merge them.
const MERGE_AT: usize = 8;

/// Grouped pairs the parent holds before it spills sorted runs to disk.
const DEFAULT_MAX_MEMORY: usize = 256 << 20;

/// Pairs grouped by key (as text): the key as first seen, then its values.
type Groups = HashMap<ImmutableString, (Dynamic, Vec<Dynamic>), ahash::RandomState>;

/// One key's group in key order: the key as text, the key, its values.
type Group = (ImmutableString, Dynamic, Vec<Dynamic>);

/// A key as text: a string key is shared, not copied.
fn key_text(k: &Dynamic) -> ImmutableString {
    k.read_lock::<ImmutableString>().map_or_else(|| k.to_string().into(), |s| s.clone())
}

/// What a map task sends back: its groups, one map per reduce partition,
/// and their rough size in bytes.
type MapResult = Result<(Vec<Groups>, usize), Box<EvalAltResult>>;

/// What a reduce task sends back: its keys in key order with their results.
type ReduceResult = Result<Vec<(ImmutableString, Dynamic, Dynamic)>, Box<EvalAltResult>>;

/// The job's functions, ready to run on the workers, and how keys are
/// spread over the reduce partitions (the hash shuffle).
struct Job {
    map: Callable,
    /// `map_fn` takes `(item, emit)` and calls `emit(key, value)`.
    emits: bool,
    combine: Option<Fold>,
    reduce: Fold,
    shuffle: ahash::RandomState,
    partitions: usize,
}

/// A combine or reduce step: a script function of `(key, values)`, or a
/// built-in fold.
enum Fold {
    Script(Callable),
    Builtin(Builtin),
}

/// The built-in folds: `"sum"`, `"min"` and `"max"`. As a combiner one
/// folds each value into the key's running value as the map task goes, so
/// the values are never held (Spark's `reduceByKey` does the same).
#[derive(Clone, Copy)]
enum Builtin {
    Sum,
    Min,
    Max,
}

impl Builtin {
    const NAMES: &'static str = "\"sum\", \"min\" or \"max\"";

    fn from(op: &str, what: &str, name: &str) -> Result<Self, Error> {
        match name {
            "sum" => Ok(Self::Sum),
            "min" => Ok(Self::Min),
            "max" => Ok(Self::Max),
            _ => Err(Error::value(op, format!("{what} is a function or one of {}, got {name:?}", Self::NAMES))),
        }
    }

    /// Fold `v` into `acc`.
    fn fold(self, op: &str, acc: &mut Dynamic, v: Dynamic) -> Result<(), Error> {
        let bad = |v: &Dynamic| {
            let name = runtime::context().engine.map_type_name(v.type_name()).to_string();
            Error::value(
                op,
                format!("the built-in {} folds numbers (min and max also strings), got {name}", self.name()),
            )
        };
        let number = |v: &Dynamic| v.as_int().map(|n| n as f64).or_else(|_| v.as_float());
        match self {
            Self::Sum => {
                *acc = match (acc.as_int(), v.as_int()) {
                    (Ok(a), Ok(b)) => a.checked_add(b).ok_or_else(|| Error::value(op, "the sum overflows"))?.into(),
                    _ => (number(acc).map_err(|_| bad(acc))? + number(&v).map_err(|_| bad(&v))?).into(),
                };
            }
            Self::Min | Self::Max => {
                let order = match (acc.read_lock::<ImmutableString>(), v.read_lock::<ImmutableString>()) {
                    (Some(a), Some(b)) => b.as_str().cmp(a.as_str()),
                    _ => {
                        let (a, b) = (number(acc).map_err(|_| bad(acc))?, number(&v).map_err(|_| bad(&v))?);
                        b.partial_cmp(&a).unwrap_or(CmpOrdering::Equal)
                    }
                };
                let wanted = if matches!(self, Self::Min) { CmpOrdering::Less } else { CmpOrdering::Greater };
                if order == wanted {
                    *acc = v;
                }
            }
        }
        Ok(())
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sum => "sum",
            Self::Min => "min",
            Self::Max => "max",
        }
    }

    /// All of `values` folded into one.
    fn fold_all(self, op: &str, values: Vec<Dynamic>) -> Result<Dynamic, Error> {
        let mut values = values.into_iter();
        let mut acc = values.next().unwrap_or(Dynamic::UNIT);
        for v in values {
            self.fold(op, &mut acc, v)?;
        }
        Ok(acc)
    }
}

impl Fold {
    /// A function, or the name of a built-in.
    fn from(
        op: &str,
        what: &str,
        v: Dynamic,
        detached: impl Fn(FnPtr) -> Result<Callable, Error>,
    ) -> NativeResult<Self> {
        if let Some(name) = v.read_lock::<ImmutableString>() {
            return Ok(Self::Builtin(Builtin::from(op, what, name.as_str())?));
        }
        let type_name = v.type_name();
        match v.try_cast::<FnPtr>() {
            Some(f) => Ok(Self::Script(detached(f)?)),
            None => {
                Err(Error::value(op, format!("{what} is a function or one of {}, got {type_name}", Builtin::NAMES))
                    .into())
            }
        }
    }

    /// The value of `key` from its values.
    fn apply(&self, op: &str, key: &Dynamic, values: Vec<Dynamic>) -> Result<Dynamic, Box<EvalAltResult>> {
        match self {
            Self::Script(f) => result_back(op, f.call(vec![key.clone(), values.into()])),
            Self::Builtin(b) => b.fold_all(op, values).map_err(Into::into),
        }
    }
}

/// A rough size of a value, for `max_memory`.
fn size_of(v: &Dynamic) -> usize {
    runtime::value_size(v)
}

/// Pairs grouped by key as the map function gives them, spread over
/// partitions by the hash of the key.
struct Grouper<'a> {
    parts: Vec<Groups>,
    size: usize,
    shuffle: &'a ahash::RandomState,
    /// A built-in combiner: each key keeps one running value.
    fold: Option<Builtin>,
}

impl<'a> Grouper<'a> {
    fn new(partitions: usize, shuffle: &'a ahash::RandomState, fold: Option<Builtin>) -> Self {
        Self { parts: (0..partitions).map(|_| Groups::default()).collect(), size: 0, shuffle, fold }
    }

    /// One pair, copied so that it can leave the worker.
    fn add(&mut self, op: &str, k: &Dynamic, v: &Dynamic) -> Result<(), Error> {
        let v = copy(op, v)?;
        let text = key_text(k);
        let n = self.parts.len();
        let part = if n == 1 { &mut self.parts[0] } else { &mut self.parts[partition(self.shuffle, &text, n)] };
        match (part.get_mut(&text), self.fold) {
            (Some((_, vs)), Some(fold)) => fold.fold(op, &mut vs[0], v)?,
            (Some((_, vs)), None) => {
                self.size += size_of(&v) + 16;
                vs.push(v);
            }
            (None, _) => {
                let k = copy(op, k)?;
                self.size += size_of(&v) + 16;
                self.size += size_of(&k) + 64;
                part.insert(text, (k, vec![v]));
            }
        }
        Ok(())
    }

    /// What `map_fn` returned: an array of `[key, value]` pairs and bare
    /// keys (each counting as `[key, 1]`, as `Counter(words)` counts), or a
    /// map of key to value (or `()`: nothing).
    fn add_output(&mut self, op: &str, out: &Dynamic) -> Result<(), Error> {
        if out.is_unit() {
            return Ok(());
        }
        if let Some(map) = out.read_lock::<Map>() {
            for (k, v) in map.iter() {
                self.add(op, &k.as_str().into(), v)?;
            }
            return Ok(());
        }
        let Some(pairs) = out.read_lock::<rhai::Array>() else {
            let name = runtime::context().engine.map_type_name(out.type_name()).to_string();
            return Err(Error::value(
                op,
                format!("the map function must return [key, value] pairs or a map, got {name}"),
            ));
        };
        let one = Dynamic::from(1 as rhai::INT);
        for pair in pairs.iter() {
            if !pair.is_array() {
                self.add(op, pair, &one)?;
                continue;
            }
            let kv = pair.read_lock::<rhai::Array>().filter(|kv| kv.len() == 2).ok_or_else(|| {
                Error::value(
                    op,
                    format!("the map function must return [key, value] pairs or keys, got {pair} in its array"),
                )
            })?;
            self.add(op, &kv[0], &kv[1])?;
        }
        Ok(())
    }
}

/// The reduce partition of a key.
fn partition(shuffle: &ahash::RandomState, text: &str, partitions: usize) -> usize {
    // The modulo of a 64-bit hash by a small count: always below `partitions`.
    #[allow(clippy::cast_possible_truncation)]
    let p = (shuffle.hash_one(text) % partitions as u64) as usize;
    p
}

/// The pairs given to an `emit` callback since it was last drained.
type Emitted = Arc<Mutex<Vec<(Dynamic, Dynamic)>>>;

/// An `emit(key, value)` function for a map function of the `(item, emit)`
/// form, and where its pairs go.
fn emitter(op: &'static str) -> (Dynamic, Emitted) {
    let emitted = Emitted::default();
    let sink = emitted.clone();
    // `FnPtr::from_fn` is marked volatile (not deprecated) by Rhai; it is
    // the one way to hand a native closure to a script function.
    #[allow(deprecated)]
    let f = FnPtr::from_fn("emit", move |_, args| {
        let [k, v] = args else {
            return Err(Error::value(op, format!("emit takes a key and a value, got {} arguments", args.len())).into());
        };
        sink.lock().unwrap_or_else(PoisonError::into_inner).push((k.flatten_clone(), v.flatten_clone()));
        Ok(Dynamic::UNIT)
    });
    (Dynamic::from(f.unwrap_or_else(|_| unreachable!("emit is a valid name"))), emitted)
}

impl Job {
    /// Map `items` (on a worker): their pairs grouped by key and partition,
    /// combined if asked.
    fn map_chunk(&self, op: &'static str, items: Vec<Dynamic>) -> MapResult {
        let mut grouper = Grouper::new(self.partitions, &self.shuffle, self.fold());
        let mut failed: Option<Box<EvalAltResult>> = None;
        let (emit, emitted) = if self.emits { Some(emitter(op)) } else { None }.unzip();
        self.map.call_each(items, emit.as_ref(), |out| {
            failed = match (out, &emitted) {
                (Ok(_), Some(emitted)) => {
                    let pairs = std::mem::take(&mut *emitted.lock().unwrap_or_else(PoisonError::into_inner));
                    pairs.iter().try_for_each(|(k, v)| grouper.add(op, k, v)).err().map(Into::into)
                }
                (Ok(out), None) => grouper.add_output(op, &out).err().map(Into::into),
                (Err(e), _) => Some(e),
            };
            failed.is_none()
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let mut size = grouper.size;
        if let Some(Fold::Script(combine)) = &self.combine {
            size = 0;
            for (k, vs) in grouper.parts.iter_mut().flat_map(|p| p.values_mut()) {
                let v = result_back(op, combine.call(vec![k.clone(), std::mem::take(vs).into()]))?;
                size += size_of(k) + size_of(&v) + 80;
                *vs = vec![v];
            }
        }
        Ok((grouper.parts, size))
    }

    /// Reduce one partition (on a worker): its groups held in memory and its
    /// runs on disk, merged in key order.
    fn reduce_partition(&self, op: &str, held: Vec<Groups>, runs: &[PathBuf]) -> ReduceResult {
        let mut out = Vec::new();
        merge_runs(op, runs, self.gather(op, held)?, |text, k, vs| {
            let v = self.reduce.apply(op, &k, vs)?;
            out.push((text, k, v));
            Ok(())
        })?;
        Ok(out)
    }
}

impl Job {
    /// The built-in combiner, if the job has one.
    fn fold(&self) -> Option<Builtin> {
        match &self.combine {
            Some(Fold::Builtin(b)) => Some(*b),
            _ => None,
        }
    }

    /// The groups of several map tasks as one (the largest first, so the
    /// fewest entries move), folded by a built-in combiner.
    fn gather(&self, op: &str, mut parts: Vec<Groups>) -> Result<Groups, Error> {
        if let Some(i) = (0..parts.len()).max_by_key(|&i| parts[i].len()) {
            parts.swap(0, i);
        }
        let mut parts = parts.into_iter();
        let mut all = parts.next().unwrap_or_default();
        let fold = self.fold();
        for part in parts {
            for (text, (k, vs)) in part {
                match (all.get_mut(&text), fold) {
                    (Some((_, values)), Some(fold)) => {
                        for v in vs {
                            fold.fold(op, &mut values[0], v)?;
                        }
                    }
                    (Some((_, values)), None) => values.extend(vs),
                    (None, _) => {
                        all.insert(text, (k, vs));
                    }
                }
            }
        }
        Ok(all)
    }
}

/// A rough size of grouped pairs, for `max_memory`.
fn groups_size(groups: &Groups) -> usize {
    groups.values().map(|(k, vs)| size_of(k) + 64 + vs.iter().map(|v| size_of(v) + 16).sum::<usize>()).sum()
}

/// One map task: items, or a byte range of a file.
enum Task {
    Items(Vec<Dynamic>),
    Split { path: Arc<str>, start: u64, end: u64 },
}

impl Task {
    /// The items of the task (on a worker): for a split, the lines that start
    /// in its range, without their line ends (a line that runs past the end
    /// is read whole; the one the range starts inside belongs to the split
    /// before), as Hadoop splits text files.
    fn items(self, op: &str) -> Result<Vec<Dynamic>, Error> {
        let (path, start, end) = match self {
            Self::Items(items) => return Ok(items),
            Self::Split { path, start, end } => (path, start, end),
        };
        let failed = |e: &std::io::Error| Error::io(op, e).with_peer(&path);
        let mut file = std::fs::File::open(&*path).map_err(|e| failed(&e))?;
        let mut pos = start.saturating_sub(1);
        file.seek(SeekFrom::Start(pos)).map_err(|e| failed(&e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let mut line = Vec::new();
        if start > 0 {
            pos += reader.read_until(b'\n', &mut line).map_err(|e| failed(&e))? as u64;
        }
        let mut lines = Vec::new();
        while pos < end {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| failed(&e))?;
            if n == 0 {
                break;
            }
            let at = pos;
            pos += n as u64;
            let text = line.strip_suffix(b"\n").map_or(&line[..], |l| l.strip_suffix(b"\r").unwrap_or(l));
            let text = std::str::from_utf8(text).map_err(|e| {
                Error::new(Kind::Decode, op, format!("the line at byte {at} is not UTF-8: {e}")).with_peer(&path)
            })?;
            lines.push(text.into());
        }
        Ok(lines)
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

    /// Call `each` with successive map tasks: chunks of at most `chunk`
    /// items, or byte ranges of `split` bytes of the files (which the
    /// workers read).
    fn tasks(
        self,
        op: &str,
        opts: &Options,
        combined: bool,
        mut each: impl FnMut(Task) -> NativeResult<()>,
    ) -> NativeResult<()> {
        match self {
            Self::Items(items) => {
                for part in items.chunks(opts.chunk) {
                    each(Task::Items(part.iter().map(|v| copy(op, v)).collect::<Result<_, _>>()?))?;
                }
            }
            Self::Files(paths) => {
                let mut files = Vec::with_capacity(paths.len());
                for path in paths {
                    let len = std::fs::metadata(&path).map_err(|e| Error::io(op, &e).with_peer(&path))?.len();
                    files.push((Arc::<str>::from(path), len));
                }
                // By default a quarter of an even share per worker (as
                // `chunk` does for items), from 64 KiB to 4 MiB (32 MiB
                // with a built-in combiner).
                let total: u64 = files.iter().map(|(_, len)| len).sum();
                let max = if combined { MAX_SPLIT_COMBINED } else { MAX_SPLIT };
                let split =
                    opts.split.map_or_else(|| (total / (4 * opts.workers as u64)).clamp(MIN_SPLIT, max), |n| n as u64);
                for (path, len) in files {
                    let mut start = 0;
                    while start < len {
                        let end = len.min(start + split);
                        each(Task::Split { path: path.clone(), start, end })?;
                        start = end;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A temporary folder removed when dropped (std has no such type).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("netscript-mapreduce-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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

/// Write groups as a sorted run (one JSON array `[key, [values…]]` per
/// line, in key order) to `path`.
fn write_run(op: &str, path: &std::path::Path, groups: Groups) -> NativeResult<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::io(op, &e))?;
    let mut out = BufWriter::new(file);
    for (_, k, vs) in sort_groups(groups) {
        let line = crate::codec::json::encode_with(&Dynamic::from_array(vec![k, vs.into()]), &Map::new())?;
        writeln!(out, "{line}").map_err(|e| Error::io(op, &e))?;
    }
    out.flush().map_err(|e| Error::io(op, &e).into())
}

/// Merge sorted runs and the groups still in memory, in key order, calling
/// `each` with every key (as text and as given) and all its values.
fn merge_runs(
    op: &str,
    runs: &[PathBuf],
    rest: Groups,
    mut each: impl FnMut(ImmutableString, Dynamic, Vec<Dynamic>) -> NativeResult<()>,
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
    if runs.is_empty() {
        for (text, k, vs) in sort_groups(rest) {
            each(text, k, vs)?;
        }
        return Ok(());
    }
    let mut sources: Vec<Box<dyn Iterator<Item = NativeResult<Group>>>> = Vec::new();
    for path in runs {
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
                if let Some((text, k, vs)) = current.take() {
                    each(text, k, vs)?;
                }
                current = Some((head.text, head.key, head.values));
            }
        }
    }
    if let Some((text, k, vs)) = current {
        each(text, k, vs)?;
    }
    Ok(())
}

/// Options of `mapreduce::run`.
struct Options {
    workers: usize,
    chunk: usize,
    split: Option<usize>,
    max_memory: usize,
    sorted: bool,
    combine: Option<Dynamic>,
}

impl Options {
    fn from(op: &str, opts: &Map) -> NativeResult<Self> {
        let known = ["workers", "chunk", "split", "max_memory", "sorted", "combine"];
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
        Ok(Self {
            workers: count("workers", worker::cores(), 1024)?,
            chunk: count("chunk", DEFAULT_CHUNK, 1 << 24)?,
            split: opts.get("split").map(|_| count("split", 0, 1 << 40)).transpose()?,
            max_memory: count("max_memory", DEFAULT_MAX_MEMORY, usize::MAX)?,
            sorted: opts.get("sorted").is_some_and(|v| v.as_bool().unwrap_or(false)),
            combine: opts.get("combine").cloned(),
        })
    }
}

/// One reduce partition on the parent: the map tasks' groups it holds, and
/// the sorted runs it spilled.
#[derive(Default)]
struct Partition {
    held: Vec<Groups>,
    runs: Vec<PathBuf>,
}

/// `mapreduce::run`.
fn run(ctx: &NativeCallContext, inputs: Dynamic, map: FnPtr, reduce: Dynamic, opts: &Map) -> NativeResult<Dynamic> {
    const OP: &str = "mapreduce::run";
    let opts = Options::from(OP, opts)?;
    let detached = |f: FnPtr| Callable::detached(ctx, f, |v| copy(OP, v));
    let map = detached(map)?;
    let reduce = Fold::from(OP, "reduce_fn", reduce, detached)?;
    // A built-in reduce is its own combiner, unless another is given.
    let combine = match (opts.combine.clone(), &reduce) {
        (Some(c), _) => Some(Fold::from(OP, "combine", c, detached)?),
        (None, Fold::Builtin(b)) => Some(Fold::Builtin(*b)),
        (None, Fold::Script(_)) => None,
    };
    let job = Arc::new(Job {
        emits: map.takes(2) && !map.takes(1),
        map,
        combine,
        reduce,
        shuffle: ahash::RandomState::new(),
        partitions: opts.workers,
    });
    let inputs = Inputs::from(OP, inputs)?;
    let pool = Pool::new(opts.workers)?;

    // Map: every task on the next free worker, which groups its pairs by
    // partition; the parent only files them, keeping at most twice the
    // workers' tasks in flight, and past `max_memory` has the workers spill
    // each partition's groups as a sorted run.
    let (reply, results) = async_channel::unbounded::<MapResult>();
    let mut parts: Vec<Partition> = (0..job.partitions).map(|_| Partition::default()).collect();
    let mut held = 0usize;
    let mut dir: Option<TempDir> = None;
    let mut in_flight = 0usize;
    let mut receive = |parts: &mut Vec<Partition>| -> NativeResult<()> {
        let (groups, size) = next_result(OP, &results)??;
        for (part, g) in parts.iter_mut().zip(groups) {
            if !g.is_empty() {
                part.held.push(g);
            }
        }
        held += size;
        if parts.iter().any(|p| p.held.len() >= MERGE_AT) {
            held = compact(OP, &pool, &job, parts)?;
        }
        if held > opts.max_memory {
            if dir.is_none() {
                dir = Some(TempDir::new().map_err(|e| Error::io(OP, &e))?);
            }
            spill(OP, &pool, &job, dir.as_ref().map(|d| d.0.as_path()).unwrap_or(std::path::Path::new(".")), parts)?;
            held = 0;
        }
        Ok(())
    };
    inputs.tasks(OP, &opts, job.fold().is_some(), |task| {
        if in_flight >= 2 * pool.size() {
            receive(&mut parts)?;
            in_flight -= 1;
        }
        let (job, reply) = (job.clone(), reply.clone());
        pool.submit(
            OP,
            Box::new(move || {
                let _ = reply.try_send(task.items(OP).map_err(Into::into).and_then(|items| job.map_chunk(OP, items)));
            }),
        )?;
        in_flight += 1;
        Ok(())
    })?;
    drop(reply);
    for _ in 0..in_flight {
        receive(&mut parts)?;
    }

    // Reduce: each partition on a worker, in key order.
    let (reply, results) = async_channel::unbounded::<ReduceResult>();
    for part in std::mem::take(&mut parts) {
        let (job, reply) = (job.clone(), reply.clone());
        pool.submit(
            OP,
            Box::new(move || {
                let _ = reply.try_send(job.reduce_partition(OP, part.held, &part.runs));
            }),
        )?;
    }
    drop(reply);
    let mut out = Vec::new();
    for _ in 0..job.partitions {
        let part = next_result(OP, &results)??;
        if out.is_empty() {
            out = part;
        } else {
            out.extend(part);
        }
    }
    drop(pool);
    drop(dir);
    if opts.sorted {
        // Keys are distinct across partitions: an unstable sort is exact.
        out.sort_unstable_by(|a, b| compare_keys(&a.1, &a.0, &b.1, &b.0));
        Ok(out.into_iter().map(|(_, k, v)| Dynamic::from_array(vec![k, v])).collect::<rhai::Array>().into())
    } else {
        Ok(out.into_iter().map(|(text, _, v)| (text.as_str().into(), v)).collect::<Map>().into())
    }
}

/// Have the workers merge each partition's held groups into one, and wait
/// for them; the size of what the partitions then hold.
fn compact(op: &'static str, pool: &Pool, job: &Arc<Job>, parts: &mut [Partition]) -> NativeResult<usize> {
    let (reply, results) = async_channel::unbounded::<(usize, Result<(Groups, usize), Error>)>();
    let mut sent = 0;
    for (p, part) in parts.iter_mut().enumerate() {
        if part.held.is_empty() {
            continue;
        }
        let (held, job, reply) = (std::mem::take(&mut part.held), job.clone(), reply.clone());
        pool.submit(
            op,
            Box::new(move || {
                let merged = job.gather(op, held).map(|g| {
                    let size = groups_size(&g);
                    (g, size)
                });
                let _ = reply.try_send((p, merged));
            }),
        )?;
        sent += 1;
    }
    drop(reply);
    let mut held = 0;
    for _ in 0..sent {
        let (p, merged) = next_result(op, &results)?;
        let (groups, size) = merged?;
        parts[p].held.push(groups);
        held += size;
    }
    Ok(held)
}

/// Have the workers write each partition's held groups as a sorted run in
/// `dir`, and wait for them.
fn spill(
    op: &'static str,
    pool: &Pool,
    job: &Arc<Job>,
    dir: &std::path::Path,
    parts: &mut [Partition],
) -> NativeResult<()> {
    let (reply, results) = async_channel::unbounded::<NativeResult<()>>();
    let mut sent = 0;
    for (p, part) in parts.iter_mut().enumerate() {
        if part.held.is_empty() {
            continue;
        }
        let path = dir.join(format!("part-{p}-run-{}.jsonl", part.runs.len()));
        part.runs.push(path.clone());
        let (held, job, reply) = (std::mem::take(&mut part.held), job.clone(), reply.clone());
        pool.submit(
            op,
            Box::new(move || {
                let _ = reply.try_send(job.gather(op, held).map_err(Into::into).and_then(|g| write_run(op, &path, g)));
            }),
        )?;
        sent += 1;
    }
    drop(reply);
    for _ in 0..sent {
        next_result(op, &results)??;
    }
    Ok(())
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
fn write_pair(op: &str, out: &mut impl Write, k: &Dynamic, v: &Dynamic) -> NativeResult<()> {
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
    /// pairs and bare keys, each counting as `[key, 1]` (or a map of key to
    /// value; a `|item, emit|` function calls `emit(key, value)` instead),
    /// `reduce_fn(key, values)` one value per
    /// key (or a built-in: `"sum"`, `"min"`, `"max"`, which also combines on
    /// the workers); the result is a map of key to value. `inputs` is an
    /// array, a range, a file path (its lines) or `#{files: [paths…]}`.
    ///
    /// ```rhai
    /// let squares = mapreduce::run(range(0, 11), |n| [["sum", n * n]], |k, vs| vs.reduce(|a, b| a + b, 0));
    /// print(squares.sum);   // 385
    /// let words = mapreduce::run(["a b", "b"], |line, emit| {
    ///     for w in line.split() { emit.call(w, 1) }
    /// }, "sum");
    /// print(words);   // #{"a": 1, "b": 2}
    /// // Keys alone count one each, as Python's Counter(words):
    /// let same = mapreduce::run(["a b", "b"], |line| line.split(), "sum");
    /// ```
    #[rhai_fn(name = "run", return_raw)]
    pub fn run(ctx: NativeCallContext, inputs: Dynamic, map_fn: FnPtr, reduce_fn: Dynamic) -> NativeResult<Dynamic> {
        super::run(&ctx, inputs, map_fn, reduce_fn, &Map::new())
    }

    /// `mapreduce::run` with options: `workers` (default: every core),
    /// `combine` (a `|key, values|` function run on each map task's groups,
    /// like Hadoop's combiner, or a built-in's name), `chunk` (items per
    /// task, 4096), `split` (bytes of a file per task; by default a quarter
    /// of a worker's share, 64 KiB to 4 MiB, or to 32 MiB with a built-in
    /// combiner), `max_memory` (bytes of grouped pairs held before spilling
    /// sorted runs to temporary files, 256 MiB),
    /// `sorted: true` (an array of `[key, value]` pairs in key order instead
    /// of a map).
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
        reduce_fn: Dynamic,
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
        let callable = Callable::new(&ctx, map_fn.clone());
        let (emit, emitted) = if callable.takes(2) && !callable.takes(1) { Some(emitter(OP)) } else { None }.unzip();
        stdin_lines(OP, |line| {
            let pairs: Dynamic = match &emit {
                Some(emit) => map_fn.call_within_context(&ctx, (line, emit.clone()))?,
                None => map_fn.call_within_context(&ctx, (line,))?,
            };
            if let Some(emitted) = &emitted {
                for (k, v) in std::mem::take(&mut *emitted.lock().unwrap_or_else(PoisonError::into_inner)) {
                    write_pair(OP, &mut out, &k, &v)?;
                }
                return Ok(());
            }
            if pairs.is_unit() {
                return Ok(());
            }
            // A map's pairs in key order.
            if let Some(map) = pairs.read_lock::<Map>() {
                for (k, v) in map.iter() {
                    write_pair(OP, &mut out, &k.as_str().into(), v)?;
                }
                return Ok(());
            }
            let Some(a) = pairs.read_lock::<rhai::Array>() else {
                let name = ctx.engine().map_type_name(pairs.type_name()).to_string();
                return Err(Error::value(
                    OP,
                    format!("the map function must return [key, value] pairs or a map, got {name}"),
                )
                .into());
            };
            // In order, one line per pair, as Hadoop expects of a mapper;
            // a bare key is `key\t1`.
            let one = Dynamic::from(1 as rhai::INT);
            for pair in a.iter() {
                match pair.read_lock::<rhai::Array>() {
                    Some(kv) if kv.len() == 2 => write_pair(OP, &mut out, &kv[0], &kv[1])?,
                    None => write_pair(OP, &mut out, pair, &one)?,
                    Some(_) => {
                        return Err(Error::value(
                            OP,
                            format!("the map function must return [key, value] pairs or keys, got {pair} in its array"),
                        )
                        .into());
                    }
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
            write_pair(OP, out, &key, &v)
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

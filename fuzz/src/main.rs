//! `netscript-fuzz`: a fuzzing harness on stable Rust for the parsers that
//! scripts and peers feed (see `fuzz/README.md`).
//!
//! ```text
//! netscript-fuzz run [--seconds N] [--seed S] [TARGET...]   replay the corpus, then mutate it for N s in all
//! netscript-fuzz replay [TARGET...]                         only replay the corpus
//! netscript-fuzz one TARGET HEX|FILE                        run one input in this process
//! netscript-fuzz list                                       the targets
//! ```
//!
//! Each target runs in a child process (this program again, `child`), so a
//! crash that no `catch_unwind` survives (a stack overflow, an abort on a
//! failed allocation) is still reported: before each input the child
//! writes it to a file, and when the child dies the parent prints that
//! input in hex and fails. The child's address space is capped, so an
//! unbounded allocation is a crash too instead of a swapping machine.

mod targets;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use netscript_stdlib::runtime::{self, Context, Permissions};
use rhai::{AST, Dynamic, Engine, EvalAltResult};

use targets::{Check, TARGETS, Target};

/// Longest input the mutator makes.
const MAX_INPUT: usize = 16 << 10;
/// Address space of a child: far above what any target needs.
const CHILD_ADDRESS_SPACE: u64 = 4 << 30;
/// Stack of the thread that runs the inputs: a task's in release builds.
const TASK_STACK: usize = 2 << 20;
/// How long past its budget a child may run before it counts as hung.
const GRACE: Duration = Duration::from_secs(30);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

/// The corpus of `target`, sorted by file name.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    files.sort();
    files.into_iter().filter_map(|p| std::fs::read(&p).ok().map(|data| (p, data))).collect()
}

/// Runs a target's inputs: its script through the standard library, or
/// its native check.
struct Harness {
    target: &'static Target,
    runner: Runner,
}

/// A target made ready to run inputs.
enum Runner {
    /// The engine with the compiled script, the kinds it may meet, its
    /// variables, and the event loop a loopback script runs on as a host task.
    Script {
        engine: Arc<Engine>,
        ast: Arc<AST>,
        kinds: &'static [&'static str],
        scope: fn(&[u8]) -> rhai::Scope<'static>,
        host: Option<(tokio::runtime::Runtime, tokio::task::LocalSet)>,
    },
    /// The target's own check.
    Native(fn(&[u8])),
}

impl Harness {
    fn new(target: &'static Target) -> Self {
        // A panic anywhere is a bug, also one that a task or the event loop
        // would survive: print it and die, so the parent reports the input.
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            report(info);
            std::process::abort();
        }));
        let (script, kinds, scope, loopback) = match target.check {
            Check::Script { script, kinds, scope, loopback } => (script, kinds, scope, loopback),
            Check::Native(check) => return Self { target, runner: Runner::Native(check) },
        };
        let mut engine = Engine::new();
        netscript_stdlib::register_all(&mut engine);
        // Limits as an embedder sets them: the size checks of the natives
        // read these.
        engine.set_max_string_size(1 << 22);
        engine.set_max_array_size(1 << 22);
        engine.set_max_map_size(1 << 16);
        engine.set_max_operations(2_000_000);
        engine.set_max_expr_depths(64, 32);
        let engine = Arc::new(engine);
        // No network at all (a target that would send a packet gets a
        // `permission` error instead), or only 127.0.0.1 for a loopback one.
        let permissions = if loopback {
            Permissions::allow_net(["127.0.0.1"]).expect("127.0.0.1 is an entry")
        } else {
            Permissions::none()
        };
        runtime::set_context(Context {
            engine: Arc::clone(&engine),
            permissions,
            trace: Arc::new(AtomicBool::new(false)),
            root: tokio_util::sync::CancellationToken::new(),
            hosts: None,
            worker_id: 0,
            reuse_port: false,
        });
        let ast = engine
            .compile(format!("{}{script}", targets::PRELUDE))
            .unwrap_or_else(|e| panic!("target {}: the script does not compile: {e}", target.name));
        let host = loopback.then(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime starts");
            (rt, tokio::task::LocalSet::new())
        });
        Self { target, runner: Runner::Script { engine, ast: Arc::new(ast), kinds, scope, host } }
    }

    /// Run one input; panics when it finds a bug (the kind of failure the
    /// parent reports).
    fn run(&self, input: &[u8]) {
        let (engine, ast, kinds, scope, host) = match &self.runner {
            Runner::Native(check) => return check(input),
            Runner::Script { engine, ast, kinds, scope, host } => (engine, ast, kinds, scope, host),
        };
        match eval(engine, ast, host.as_ref(), scope(input)) {
            Ok(caught) => {
                for kind in caught.into_array().unwrap_or_default() {
                    let kind = kind.to_string();
                    assert!(
                        kinds.contains(&kind.as_str()),
                        "target {}: unexpected error {kind:?} (expected one of {kinds:?})",
                        self.target.name,
                    );
                }
            }
            // The engine's own limits stop a script; that is not a bug.
            Err(e)
                if matches!(
                    *e,
                    EvalAltResult::ErrorDataTooLarge(..)
                        | EvalAltResult::ErrorTooManyOperations(..)
                        | EvalAltResult::ErrorStackOverflow(..)
                ) => {}
            Err(e) => panic!("target {}: uncaught error: {e}", self.target.name),
        }
    }
}

/// A script's result on `scope`: evaluated here, or as a task of `host`.
fn eval(
    engine: &Arc<Engine>,
    ast: &Arc<AST>,
    host: Option<&(tokio::runtime::Runtime, tokio::task::LocalSet)>,
    mut scope: rhai::Scope<'static>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let Some((rt, local)) = host else {
        return engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
    };
    let (engine, ast) = (Arc::clone(engine), Arc::clone(ast));
    local.block_on(rt, async move {
        let token = runtime::context().root.child_token();
        let task = runtime::spawn("fuzz", runtime::StackKind::Main, token.clone(), move || {
            engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
        })
        .expect("a task starts");
        let result = task.await.expect("the task ends");
        // Whatever the script left running stops with it.
        token.cancel();
        result
    })
}

/// Byte-level mutations of corpus entries.
struct Mutator {
    rng: fastrand::Rng,
}

impl Mutator {
    /// A new input from `pool` (at least one entry).
    fn next(&mut self, pool: &[Vec<u8>]) -> Vec<u8> {
        let mut input = pool[self.rng.usize(..pool.len())].clone();
        for _ in 0..self.rng.usize(1..=4) {
            self.mutate(&mut input, pool);
        }
        input.truncate(MAX_INPUT);
        input
    }

    fn mutate(&mut self, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
        const INTERESTING: [u8; 12] = [0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'(', b'[', b'{', b'\n', b':'];
        let rng = &mut self.rng;
        let len = input.len();
        match rng.u8(..8) {
            0 if len > 0 => input[rng.usize(..len)] ^= 1 << rng.u8(..8),
            1 if len > 0 => input[rng.usize(..len)] = INTERESTING[rng.usize(..INTERESTING.len())],
            2 => {
                let at = rng.usize(..=len);
                let bytes: Vec<u8> = (0..rng.usize(1..=8)).map(|_| rng.u8(..)).collect();
                input.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..=16)).min(len);
                input.drain(start..end);
            }
            // Repeat a slice many times: nesting, long runs, big counts.
            4 if len > 0 => {
                let start = rng.usize(..len);
                let end = (start + rng.usize(1..=8)).min(len);
                let piece = input[start..end].to_vec();
                let most = if rng.bool() { 8 } else { 2000 };
                let times = rng.usize(1..=most);
                let at = rng.usize(..=len);
                input.splice(at..at, piece.iter().copied().cycle().take(piece.len() * times));
            }
            // A decimal number: repeat counts, lengths, sizes.
            5 => {
                let n = match rng.u8(..4) {
                    0 => rng.u64(..10),
                    1 => rng.u64(..1 << 16),
                    2 => u64::MAX >> rng.u32(..64),
                    _ => 10u64.pow(rng.u32(..20)) - 1,
                };
                let at = rng.usize(..=len);
                input.splice(at..at, n.to_string().into_bytes());
            }
            // Splice in part of another entry.
            6 => {
                let other = &pool[rng.usize(..pool.len())];
                if !other.is_empty() {
                    let start = rng.usize(..other.len());
                    let end = (start + rng.usize(1..=64)).min(other.len());
                    let at = rng.usize(..=len);
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ if len > 1 => input.truncate(rng.usize(..len)),
            _ => input.push(rng.u8(..)),
        }
    }
}

/// Where a child writes the input it is about to run.
fn input_file(target: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netscript-fuzz-{}-{target}.input", std::process::id()))
}

/// Run `f` on a thread with a task's stack (the release size, which
/// production scripts get), so recursion that would overflow a task
/// overflows here too.
fn on_task_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new().stack_size(TASK_STACK).spawn_scoped(s, f);
        thread.expect("a fuzzing thread starts").join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The child: replay the corpus, then mutate it until `millis` pass.
fn child(target: &'static Target, millis: u64, seed: u64, record: &Path) -> ExitCode {
    let limit = libc::rlimit { rlim_cur: CHILD_ADDRESS_SPACE, rlim_max: CHILD_ADDRESS_SPACE };
    // SAFETY: setrlimit reads the struct it is given; no memory is shared.
    unsafe { libc::setrlimit(libc::RLIMIT_AS, &raw const limit) };
    on_task_stack(|| fuzz(target, millis, seed, record))
}

/// Replay the corpus of `target`, then run mutations of it for `millis`,
/// recording each input in `record` before running it.
fn fuzz(target: &'static Target, millis: u64, seed: u64, record: &Path) -> ExitCode {
    let file = File::create(record).expect("the input record file can be created");
    let harness = Harness::new(target);
    let run = |input: &[u8]| {
        let mut rec = (input.len() as u64).to_le_bytes().to_vec();
        rec.extend_from_slice(input);
        file.write_all_at(&rec, 0).expect("the input is recorded");
        harness.run(input);
    };
    let entries = corpus(target.name);
    for (_, data) in &entries {
        run(data);
    }
    let mut pool: Vec<Vec<u8>> = entries.into_iter().map(|(_, d)| d).collect();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let mut mutator = Mutator { rng: fastrand::Rng::with_seed(seed) };
    let (start, budget) = (Instant::now(), Duration::from_millis(millis));
    let mut runs = 0u64;
    while start.elapsed() < budget {
        run(&mutator.next(&pool));
        runs += 1;
    }
    println!("{:<11} {:>4} corpus inputs, {runs:>7} new inputs", target.name, pool.len());
    ExitCode::SUCCESS
}

/// The recorded input of a dead child.
fn recorded(path: &Path) -> Option<Vec<u8>> {
    let rec = std::fs::read(path).ok()?;
    let len = usize::try_from(u64::from_le_bytes(rec.get(..8)?.try_into().ok()?)).ok()?;
    rec.get(8..8 + len).map(<[u8]>::to_vec)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run `targets` in children, `millis` of mutation each; false if any failed.
fn supervise(targets: &[&'static Target], millis: u64, seed: u64) -> bool {
    let exe = std::env::current_exe().expect("the harness knows its path");
    let mut ok = true;
    for (i, target) in targets.iter().enumerate() {
        let record = input_file(target.name);
        let child_seed = seed.wrapping_add(i as u64);
        let mut proc = Command::new(&exe)
            .args(["child", target.name, &millis.to_string(), &child_seed.to_string()])
            .arg(&record)
            .spawn()
            .expect("the harness starts a child");
        let deadline = Instant::now() + Duration::from_millis(millis) + GRACE;
        let status = loop {
            if let Some(status) = proc.try_wait().expect("the child is waited for") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = proc.kill();
                let _ = proc.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.is_none_or(|s| !s.success()) {
            ok = false;
            let what = status.map_or_else(|| "hung".to_string(), |s| format!("failed ({s})"));
            let input = recorded(&record).unwrap_or_default();
            eprintln!(
                "fuzz target {} {what} on this input ({} bytes, seed {child_seed}):\n{}\n\
                 reproduce: cargo run -p netscript-fuzz -- one {} {}",
                target.name,
                input.len(),
                hex(&input),
                target.name,
                hex(&input)
            );
        }
        let _ = std::fs::remove_file(&record);
    }
    ok
}

/// The targets named in `names` (all when empty).
fn select(names: &[String]) -> Result<Vec<&'static Target>, String> {
    if names.is_empty() {
        return Ok(TARGETS.iter().collect());
    }
    names.iter().map(|n| targets::find(n).ok_or_else(|| format!("unknown target {n:?} (see `list`)"))).collect()
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: netscript-fuzz run [--seconds N] [--seed S] [TARGET...] | replay [TARGET...] | one TARGET HEX|FILE | list"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else { return usage() };
    match command.as_str() {
        "list" => {
            for t in TARGETS {
                println!("{:<11} {}", t.name, t.about);
            }
            ExitCode::SUCCESS
        }
        "run" | "replay" => {
            let (mut seconds, mut seed) = (if command == "run" { 60.0 } else { 0.0 }, None);
            let mut names = Vec::new();
            let mut it = rest.iter();
            while let Some(arg) = it.next() {
                match arg.as_str() {
                    "--seconds" => match it.next().and_then(|s| s.parse::<f64>().ok()) {
                        Some(s) if s >= 0.0 => seconds = s,
                        _ => return usage(),
                    },
                    "--seed" => match it.next().and_then(|s| s.parse::<u64>().ok()) {
                        Some(s) => seed = Some(s),
                        None => return usage(),
                    },
                    name => names.push(name.to_string()),
                }
            }
            let targets = match select(&names) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{e}");
                    return usage();
                }
            };
            let seed = seed.unwrap_or_else(|| fastrand::u64(..));
            let millis = (seconds * 1000.0 / targets.len() as f64) as u64;
            println!("fuzzing {} targets, {millis} ms each after the corpus, seed {seed}", targets.len());
            if supervise(&targets, millis, seed) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        "child" => match rest {
            [name, millis, seed, record] => {
                let (Some(target), Ok(millis), Ok(seed)) = (targets::find(name), millis.parse(), seed.parse()) else {
                    return usage();
                };
                child(target, millis, seed, Path::new(record))
            }
            _ => usage(),
        },
        "one" => match rest {
            [name, input] => {
                let Some(target) = targets::find(name) else { return usage() };
                let data = std::fs::read(input).unwrap_or_else(|_| {
                    (0..input.len() / 2).filter_map(|i| u8::from_str_radix(&input[2 * i..2 * i + 2], 16).ok()).collect()
                });
                on_task_stack(|| Harness::new(target).run(&data));
                println!("target {name}: no failure on this input ({} bytes)", data.len());
                ExitCode::SUCCESS
            }
            _ => usage(),
        },
        _ => usage(),
    }
}

//! `netscript repl`: an interactive prompt on a long-lived host. Variables,
//! functions, connections and servers persist across inputs; results print
//! through `netscript::pretty` (blobs as hexdumps, handles via `to_debug`).
//!
//! Line editing, history and completion come from rustyline; input goes on
//! while brackets or strings are open. Ctrl-C at the prompt clears the line;
//! during an evaluation it interrupts the running call (our own SIGINT
//! handler calls `Host::interrupt`, background tasks keep running). Ctrl-D
//! or `.quit` leaves. See REPL.md.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use clap::Args;
use netscript::docs::{self, FnDoc};
use netscript::{Host, Session, pretty, testing};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper, Highlighter, Hinter};

use super::HostArgs;

/// Arguments of `netscript repl`.
#[derive(Args, Debug)]
pub struct ReplArgs {
    /// Run this script first (its variables and functions stay defined).
    #[arg(long, value_name = "FILE")]
    load: Option<PathBuf>,
    /// History file (default: `~/.netscript_history`).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    #[command(flatten)]
    pub(super) host: HostArgs,
}

const HELP: &str = "\
Meta commands:
  .help [name]     signature and documentation of a function (`.help tcp::connect`, `.help recv`)
  .load FILE       run a script in this session
  .save FILE       write this session's successful inputs as a script
  .vars            list variables
  .trace on|off    print every send and receive of every connection
  .pcap FILE|off   write every connection's traffic to FILE (pcapng, for Wireshark), or stop
  .reset           new session: forget variables, close connections, stop servers
  .quit            leave (also Ctrl-D)
Ctrl-C interrupts a running call; Tab completes modules, functions, methods and variables.";

/// The REPL's host and session, replaced together by `.reset`.
struct State {
    host: Arc<Host>,
    session: Session,
    /// Inputs that ran without error, for `.save`.
    inputs: Vec<String>,
}

/// Run the REPL; the exit status.
pub fn repl(args: &ReplArgs) -> i32 {
    let new_host = || -> Result<Host, String> {
        args.host.builder()?.configure(testing::register_assertions).build().map_err(|e| e.to_string())
    };
    let host = match new_host() {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("netscript: {e}");
            return 2;
        }
    };
    let session = host.session();
    let state = Arc::new(Mutex::new(State { host, session, inputs: Vec::new() }));
    let busy = Arc::new(AtomicBool::new(false));
    if let Err(e) = watch_sigint(state.clone(), busy.clone()) {
        eprintln!("netscript: cannot handle Ctrl-C: {e}");
        return 2;
    }
    let mut editor: Editor<ReplHelper, rustyline::history::DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("netscript: cannot start line editing: {e}");
            return 2;
        }
    };
    editor.set_helper(Some(ReplHelper { state: state.clone() }));
    let history =
        args.history.clone().or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".netscript_history")));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    if let Some(file) = &args.load {
        load(&state, &busy, file);
    }
    println!("netscript {} — .help for help, Ctrl-D to leave", env!("CARGO_PKG_VERSION"));
    loop {
        match editor.readline("> ") {
            Ok(line) => {
                let input = line.trim();
                if input.is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(input);
                if let Some(meta) = input.strip_prefix('.')
                    && !meta.starts_with(|c: char| c.is_ascii_digit())
                {
                    if !command(&state, &busy, meta, &new_host) {
                        break;
                    }
                } else {
                    eval(&state, &busy, "<repl>", input);
                }
            }
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("netscript: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    0
}

/// SIGINT while an evaluation runs interrupts it; at the prompt the
/// terminal is in raw mode and rustyline sees Ctrl-C as a key instead.
fn watch_sigint(state: Arc<Mutex<State>>, busy: Arc<AtomicBool>) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT])?;
    std::thread::Builder::new().name("repl-sigint".into()).spawn(move || {
        for _ in signals.forever() {
            if busy.load(Ordering::SeqCst) {
                let host = lock(&state).host.clone();
                host.interrupt();
            }
        }
    })?;
    Ok(())
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Evaluate one input and print its value or error; the state lock is not
/// held while it runs (the SIGINT thread and completion need it).
fn eval(state: &Mutex<State>, busy: &AtomicBool, name: &str, source: &str) -> bool {
    let (host, session) = {
        let s = lock(state);
        (s.host.clone(), s.session.clone())
    };
    busy.store(true, Ordering::SeqCst);
    let result = host.eval(&session, name, source, true);
    busy.store(false, Ordering::SeqCst);
    match result {
        Ok(value) => {
            lock(state).inputs.push(source.to_string());
            if !value.is_unit() {
                let text = host.with_engine(move |engine| pretty::pretty(engine, &value)).unwrap_or_default();
                println!("{text}");
            }
            true
        }
        Err(e) if e.kind() == "cancelled" => {
            println!("interrupted");
            false
        }
        Err(e) => {
            eprintln!("{}", e.render());
            false
        }
    }
}

fn load(state: &Mutex<State>, busy: &AtomicBool, file: &std::path::Path) {
    match std::fs::read_to_string(file) {
        Ok(code) => {
            eval(state, busy, &file.display().to_string(), &code);
        }
        Err(e) => eprintln!("cannot read {}: {e}", file.display()),
    }
}

/// Run a meta command; false to leave the REPL.
fn command(state: &Mutex<State>, busy: &AtomicBool, meta: &str, new_host: &dyn Fn() -> Result<Host, String>) -> bool {
    let (cmd, arg) = meta.split_once(char::is_whitespace).map_or((meta, ""), |(c, a)| (c, a.trim()));
    match (cmd, arg) {
        ("quit" | "exit", _) => return false,
        ("help", "") => println!("{HELP}\nModules: {}", catalog().modules().join(", ")),
        ("help", name) => println!("{}", catalog().help(name)),
        ("load", "") | ("save", "") => eprintln!(".{cmd} needs a file name"),
        ("load", file) => load(state, busy, std::path::Path::new(file)),
        ("save", file) => {
            // One statement per input: end each with `;` unless it is a block.
            let text: String = lock(state)
                .inputs
                .iter()
                .map(|i| if i.ends_with(';') || i.ends_with('}') { format!("{i}\n") } else { format!("{i};\n") })
                .collect();
            match std::fs::write(file, text) {
                Ok(()) => println!("saved {} input(s) to {file}", lock(state).inputs.len()),
                Err(e) => eprintln!("cannot write {file}: {e}"),
            }
        }
        ("vars", _) => {
            let (host, vars) = {
                let s = lock(state);
                (s.host.clone(), s.session.variables())
            };
            let text = host.with_engine(move |engine| {
                vars.iter().map(|(n, v)| format!("{n} = {}", pretty::pretty(engine, v))).collect::<Vec<_>>().join("\n")
            });
            println!("{}", text.unwrap_or_default());
        }
        ("trace", "on" | "off") => {
            lock(state).host.set_trace(arg == "on");
            println!("trace {arg}");
        }
        ("trace", _) => println!("trace is {}", if lock(state).host.tracing() { "on" } else { "off" }),
        ("pcap", "" | "off") => match netscript_stdlib::capture::stop_pcap() {
            Ok(()) => println!("capture off"),
            Err(e) => eprintln!("cannot finish the capture: {e}"),
        },
        ("pcap", file) => match netscript_stdlib::capture::start(std::path::Path::new(file)) {
            Ok(()) => println!("capturing to {file}"),
            Err(e) => eprintln!("cannot capture to {file}: {e}"),
        },
        ("reset", _) => match new_host() {
            Ok(h) => {
                let mut s = lock(state);
                s.session = h.session();
                s.host = Arc::new(h);
                s.inputs.clear();
                println!("session reset");
            }
            Err(e) => eprintln!("cannot reset: {e}"),
        },
        _ => eprintln!("unknown command .{cmd} (.help lists them)"),
    }
    true
}

/// Every standard function with its documentation, built on first use (a
/// second engine, so the prompt appears without waiting for it).
struct Catalog {
    fns: Vec<FnDoc>,
    /// Maps Rust type names to script names (`type_of`).
    engine: rhai::Engine,
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::build)
}

impl Catalog {
    fn build() -> Self {
        let mut engine = rhai::Engine::new();
        netscript::stdlib::register_all(&mut engine);
        testing::register_assertions(&mut engine);
        Self { fns: docs::collect(&engine, true), engine }
    }

    fn modules(&self) -> Vec<String> {
        let mut m: Vec<String> = self.fns.iter().filter_map(|f| f.module.clone()).collect();
        m.sort();
        m.dedup();
        m
    }

    /// `.help name`: every overload of `name` (`tcp::connect` or a bare name).
    fn help(&self, query: &str) -> String {
        let (module, name) = match query.rsplit_once("::") {
            Some((m, n)) => (Some(m), n),
            None => (None, query),
        };
        let hits: Vec<&FnDoc> = self
            .fns
            .iter()
            .filter(|f| f.name == name && (module.is_none() || f.module.as_deref() == module))
            .filter(|f| !f.name.starts_with("anon$"))
            .collect();
        if hits.is_empty() {
            return format!("no function named {query}");
        }
        let mut out = Vec::new();
        for f in hits {
            let prefix = f.module.as_ref().map(|m| format!("{m}::")).unwrap_or_default();
            out.push(format!("{prefix}{}", f.signature));
            if !f.doc.is_empty() {
                out.push(indent(&f.doc));
            }
        }
        out.join("\n")
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// rustyline helper: completion and multi-line validation.
#[derive(Helper, Hinter, Highlighter)]
struct ReplHelper {
    state: Arc<Mutex<State>>,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start =
            before.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':' || c == '.')).map_or(0, |i| i + 1);
        let word = &before[start..];
        let (base, prefix, candidates) = if let Some((module, prefix)) = word.rsplit_once("::") {
            let names = catalog().fns.iter().filter(|f| f.module.as_deref() == Some(module)).map(|f| f.name.clone());
            (format!("{module}::"), prefix, names.collect::<Vec<_>>())
        } else if let Some((value, prefix)) = word.rsplit_once('.') {
            (format!("{value}."), prefix, self.methods(value))
        } else {
            (String::new(), word, self.names())
        };
        let mut out: Vec<Pair> = candidates
            .into_iter()
            .filter(|c| c.starts_with(prefix) && !c.contains('$'))
            .map(|c| Pair { display: c.clone(), replacement: format!("{base}{c}") })
            .collect();
        out.sort_by(|a, b| a.display.cmp(&b.display));
        out.dedup_by(|a, b| a.display == b.display);
        Ok((start, out))
    }
}

impl ReplHelper {
    /// Variables, session functions, modules, global functions, keywords.
    fn names(&self) -> Vec<String> {
        let (vars, fns) = {
            let s = lock(&self.state);
            (s.session.variables(), s.session.functions())
        };
        let mut names: Vec<String> = vars.into_iter().map(|(n, _)| n).collect();
        names.extend(
            fns.iter().filter_map(|f| f.split('(').next()).map(|n| n.rsplit(' ').next().unwrap_or(n).to_string()),
        );
        names.extend(catalog().modules());
        names.extend(catalog().fns.iter().filter(|f| f.module.is_none()).map(|f| f.name.clone()));
        names.extend(
            [
                "let", "const", "fn", "if", "else", "while", "loop", "for", "in", "return", "throw", "try", "catch",
                "import", "true", "false",
            ]
            .map(String::from),
        );
        names
    }

    /// Methods that take the value of variable `var` as first argument.
    fn methods(&self, var: &str) -> Vec<String> {
        let value = lock(&self.state).session.variables().into_iter().find(|(n, _)| n == var).map(|(_, v)| v);
        let Some(value) = value else { return Vec::new() };
        let short = catalog().engine.map_type_name(value.type_name()).to_string();
        let short = short.as_str();
        catalog()
            .fns
            .iter()
            .filter(|f| !f.name.starts_with("get$") && !f.name.starts_with("set$"))
            .filter(|f| type_matches(&f.receiver, short))
            .map(|f| f.name.clone())
            .chain(
                catalog()
                    .fns
                    .iter()
                    .filter(|f| f.name.starts_with("get$") && type_matches(&f.receiver, short))
                    .map(|f| f.name[4..].to_string()),
            )
            .collect()
    }
}

/// Whether a documented parameter type names the value's type.
fn type_matches(param: &str, value_type: &str) -> bool {
    let param = param.rsplit("::").next().unwrap_or(param);
    param == value_type
        || (value_type == "Blob" && param == "Blob")
        || (value_type == "ImmutableString" && matches!(param, "String" | "&str" | "ImmutableString"))
        || (value_type == "string" && matches!(param, "String" | "&str" | "ImmutableString"))
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if is_open(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

/// Whether `src` ends inside a bracket, string or block comment (so the
/// input goes on on the next line).
fn is_open(src: &str) -> bool {
    let mut depth = 0i32;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            '"' | '`' | '\'' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return c != '\'';
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                let mut closed = false;
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        closed = true;
                        break;
                    }
                    prev = d;
                }
                if !closed {
                    return true;
                }
            }
            _ => {}
        }
    }
    depth > 0
}

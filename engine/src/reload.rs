//! Hot reload: swapping a running script's functions, finding the files a
//! script depends on, and watching them.
//!
//! # How functions are swapped
//! A program run for hot reload is rewritten before it starts
//! ([`Program::prepare`]): each named script function `f` is renamed
//! `__impl_f`, and `f` becomes a small native trampoline that looks up the
//! *current* version of `__impl_f` in a shared slot and calls it (keeping the
//! caller's call depth, so `max_call_levels` still holds). Bodies run with
//! the trampolines as their library, so every call of a named function — in
//! a handler started long ago, in a loop of an established connection, via
//! `Fn("name")` — reaches the newest code. [`Program::swap`] compiles a new
//! version and replaces the slot; nothing else is touched, so listening
//! sockets, connections and tasks survive. A function that the new version
//! no longer has keeps its old code. Closures (`|c| …`) keep the code they
//! were created with; the named functions they call are swapped.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, new_debouncer};
use rhai::{
    AST, Dynamic, Engine, FnAccess, FnNamespace, FuncRegistration, Module, NativeCallContext, RhaiFunc, Shared,
};

use crate::host::Prepare;

/// Prefix of the renamed function bodies.
const IMPL: &str = "__impl_";

/// The swappable functions of a running script.
#[derive(Clone, Default)]
pub struct Program {
    current: Arc<RwLock<Option<Shared<Module>>>>,
}

impl Program {
    /// A program slot with no version yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A [`Prepare`] hook for `Host::eval_with` that makes the compiled
    /// program's functions swappable and installs them as the current version.
    #[must_use]
    pub fn prepare(&self) -> Prepare {
        let this = self.clone();
        Box::new(move |_engine: &Engine, ast: AST| {
            let lib = this.library(ast.shared_lib());
            this.set(lib.clone());
            with_lib(&ast, lib)
        })
    }

    /// A [`Prepare`] hook that runs a snippet (like `on_reload()`) against the
    /// current version's functions.
    #[must_use]
    pub fn with_current(&self) -> Prepare {
        let this = self.clone();
        Box::new(move |_engine: &Engine, ast: AST| match this.get() {
            Some(lib) => with_lib(&ast, lib),
            None => ast,
        })
    }

    /// Install the functions of `ast` as the current version; returns how
    /// many named functions it defines.
    pub fn swap(&self, ast: &AST) -> usize {
        let lib = self.library(ast.shared_lib());
        self.set(lib);
        ast.iter_functions().filter(|f| is_named(f.name)).count()
    }

    /// Whether the current version defines `name` with `arity` parameters.
    #[must_use]
    pub fn defines(&self, name: &str, arity: usize) -> bool {
        self.get().is_some_and(|m| m.get_script_fn(format!("{IMPL}{name}"), arity).is_some())
    }

    fn get(&self) -> Option<Shared<Module>> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set(&self, lib: Shared<Module>) {
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(lib);
    }

    /// Trampolines plus renamed bodies for the functions of `source`.
    fn library(&self, source: &Module) -> Shared<Module> {
        Arc::new_cyclic(|own: &Weak<Module>| {
            let mut lib = Module::new();
            for (_, _, name, arity, def) in source.iter_script_fn_info() {
                if !is_named(name) {
                    // Closures are called through their own definition; keep as is.
                    lib.set_script_fn(def.clone());
                    continue;
                }
                let mut body = (**def).clone();
                body.name = format!("{IMPL}{name}").into();
                body.access = FnAccess::Public;
                lib.set_script_fn(body);
                self.trampoline(&mut lib, name, arity, own.clone());
            }
            lib
        })
    }

    /// Register `name/arity` in `lib` as a call of the current `__impl_name`
    /// (or of this version's, if the current one no longer defines it).
    fn trampoline(&self, lib: &mut Module, name: &str, arity: usize, own: Weak<Module>) {
        let target = format!("{IMPL}{name}");
        let slot = self.clone();
        let func = move |ctx: Option<NativeCallContext>, args: &mut [&mut Dynamic]| {
            let ctx = ctx.ok_or("hot-reload trampoline called without a context")?;
            let lib = slot
                .get()
                .filter(|m| m.get_script_fn(&target, arity).is_some())
                .or_else(|| own.upgrade())
                .ok_or_else(|| format!("function {target} is gone"))?;
            let mut global = ctx.global_runtime_state().clone();
            global.lib.clear();
            global.lib.push(lib);
            let inner = NativeCallContext::new_with_all_fields(
                ctx.engine(),
                &target,
                ctx.call_source(),
                &global,
                ctx.call_position(),
            );
            inner.call_fn_raw(&target, false, false, args)
        };
        FuncRegistration::new(name).with_namespace(FnNamespace::Internal).set_into_module_raw(
            lib,
            vec![std::any::TypeId::of::<Dynamic>(); arity],
            RhaiFunc::Pure { func: Shared::new(func), has_context: true, is_pure: true, is_volatile: true },
        );
    }
}

/// `ast`'s statements with `lib` as its function library.
fn with_lib(ast: &AST, lib: Shared<Module>) -> AST {
    let mut out = AST::new(ast.statements().to_vec(), lib);
    if let Some(src) = ast.source() {
        out.set_source(src);
    }
    out
}

/// Named functions are swapped; closures (`anon$…`) are not.
fn is_named(name: &str) -> bool {
    rhai::is_valid_function_name(name) && !name.starts_with(IMPL)
}

/// `file` and, recursively, the `.rhai` files it imports (`import "x"`),
/// looked up beside the importing file and in `module_paths`. Embedded
/// standard modules and imports that cannot be found are left out.
#[must_use]
pub fn dependencies(file: &Path, module_paths: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(re) = regex::Regex::new(r#"\bimport\s+"([^"]+)""#) else { return vec![file.to_path_buf()] };
    let mut found: Vec<PathBuf> = vec![absolute(file)];
    let mut i = 0;
    while let Some(current) = found.get(i).cloned() {
        i += 1;
        let Ok(source) = std::fs::read_to_string(&current) else { continue };
        let dir = current.parent().map(Path::to_path_buf).unwrap_or_default();
        for cap in re.captures_iter(&source) {
            let name = &cap[1];
            let file_name = if name.ends_with(".rhai") { name.to_string() } else { format!("{name}.rhai") };
            let candidate = std::iter::once(&dir)
                .chain(module_paths)
                .map(|d| d.join(&file_name))
                .find(|p| p.is_file())
                .map(|p| absolute(&p));
            if let Some(p) = candidate
                && !found.contains(&p)
            {
                found.push(p);
            }
        }
    }
    found
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Watches a set of files through their directories (editors replace files
/// on save, which a watch on the file itself would miss), debounced.
pub struct Watcher {
    files: Vec<PathBuf>,
    events: std::sync::mpsc::Receiver<DebounceEventResult>,
    _debouncer: notify_debouncer_full::Debouncer<notify::RecommendedWatcher, notify_debouncer_full::RecommendedCache>,
}

impl Watcher {
    /// Watch `files`; changes closer together than `debounce` are one change.
    ///
    /// # Errors
    /// If the platform watcher cannot be set up.
    pub fn new(files: &[PathBuf], debounce: Duration) -> Result<Self, String> {
        let (tx, events) = std::sync::mpsc::channel();
        let mut debouncer = new_debouncer(debounce, Some(debounce / 4), tx).map_err(|e| e.to_string())?;
        let files: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
        let mut dirs: Vec<PathBuf> = files.iter().filter_map(|f| f.parent().map(Path::to_path_buf)).collect();
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            debouncer.watch(dir, RecursiveMode::NonRecursive).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(Self { files, events, _debouncer: debouncer })
    }

    /// Wait for the next change to a watched file; the files changed.
    /// `None` when the watcher has stopped.
    pub fn next_change(&self) -> Option<Vec<PathBuf>> {
        loop {
            let batch = self.events.recv().ok()?;
            let Ok(events) = batch else { continue };
            let mut changed: Vec<PathBuf> = events
                .iter()
                .filter(|e| !e.kind.is_access())
                .flat_map(|e| e.paths.iter())
                .map(|p| absolute(p))
                .filter(|p| self.files.contains(p))
                .collect();
            changed.sort();
            changed.dedup();
            if !changed.is_empty() {
                return Some(changed);
            }
        }
    }
}

/// Compile `source` on `host`'s engine without running it (a syntax check
/// before swapping); a syntax error renders with its position.
///
/// # Errors
/// The source does not parse, or the host has stopped.
pub fn compile(host: &crate::Host, name: &str, source: &str) -> Result<AST, crate::Error> {
    let (name, source) = (name.to_string(), source.to_string());
    host.with_engine(move |engine| {
        engine.compile(&source).map_err(|e| crate::Error::parse(&e, &name, &source)).map(|mut ast| {
            ast.set_source(name.as_str());
            ast
        })
    })?
}

//! Module resolution for `import "name"`: the standard script modules
//! shipped inside the binary (`stdlib/*.rhai`), then files beside the
//! importing script, then the host's module path. File modules are cached
//! until [`Resolver::clear_cache`] (hot reload).

use std::path::PathBuf;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

type SharedModule = Shared<Module>;

/// Script-written standard modules, compiled on first import.
const EMBEDDED: &[(&str, &str)] = netscript_stdlib::SCRIPT_MODULES;

/// Resolves imports to embedded modules or `.rhai` files.
pub struct Resolver {
    files: Vec<FileModuleResolver>,
    embedded: std::sync::Mutex<std::collections::HashMap<String, SharedModule>>,
}

impl Resolver {
    /// Search the importing script's directory first, then `paths`.
    #[must_use]
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let mut files = vec![FileModuleResolver::new()];
        files.extend(paths.into_iter().map(FileModuleResolver::new_with_path));
        Self { files, embedded: std::sync::Mutex::new(std::collections::HashMap::new()) }
    }

    /// Forget compiled file modules so the next import reads them again.
    pub fn clear_cache(&mut self) {
        for f in &mut self.files {
            f.clear_cache();
        }
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        if let Some((_, code)) = EMBEDDED.iter().find(|(name, _)| *name == path) {
            let mut cache = self.embedded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(m) = cache.get(path) {
                return Ok(m.clone());
            }
            let mut ast = engine
                .compile(*code)
                .map_err(|e| Box::new(EvalAltResult::ErrorInModule(path.into(), e.into(), pos)))?;
            ast.set_source(format!("<stdlib>/{path}.rhai"));
            let module: SharedModule = Module::eval_ast_as_new(Scope::new(), &ast, engine)
                .map_err(|e| Box::new(EvalAltResult::ErrorInModule(path.into(), e, pos)))?
                .into();
            cache.insert(path.to_string(), module.clone());
            return Ok(module);
        }
        let mut last = None;
        for files in &self.files {
            match files.resolve(engine, source, path, pos) {
                Ok(m) => return Ok(m),
                Err(e) if matches!(*e, EvalAltResult::ErrorModuleNotFound(..)) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| EvalAltResult::ErrorModuleNotFound(path.into(), pos).into()))
    }
}

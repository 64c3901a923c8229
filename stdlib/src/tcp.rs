//! `tcp::` (placeholder while the module is written).

/// The `tcp::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

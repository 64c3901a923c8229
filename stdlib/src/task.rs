//! `task::` (placeholder while the module is written).

/// The `task::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

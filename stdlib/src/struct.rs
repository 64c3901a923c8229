//! `struct::` (placeholder while the module is written).

/// The `struct::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

//! `frame::` (placeholder while the module is written).

/// The `frame::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

//! `net::` (placeholder while the module is written).

/// The `net::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

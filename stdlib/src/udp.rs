//! `udp::` (placeholder while the module is written).

/// The `udp::` module.
#[must_use]
pub fn module() -> rhai::Module {
    rhai::Module::new()
}

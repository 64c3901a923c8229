//! placeholder while the modules are written.

/// The modules in this file with their namespaces.
#[must_use]
pub fn modules() -> Vec<(&'static str, rhai::Module)> {
    Vec::new()
}

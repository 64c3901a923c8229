//! `tls::` — TLS helpers; for now the certificate side ([`certs`]).

pub mod certs;

/// The `tls::` namespace.
#[must_use]
pub fn module() -> rhai::Module {
    certs::module()
}

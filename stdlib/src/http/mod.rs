//! `http::` — HTTP: the client ([`client`]), built on hyper's connection
//! API over the project's own sockets.

pub mod client;

mod body;
mod decode;
mod response;
mod transport;

/// The `http::` module.
#[must_use]
pub fn module() -> rhai::Module {
    client::module()
}

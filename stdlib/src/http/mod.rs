//! `http::` — HTTP for scripts: the client ([`client`], built on hyper's
//! connection API over the project's own sockets) and the server
//! (`http::listen(...).serve(handler)`, routers, static files, forms,
//! cookies, streaming), installed as one namespace.

pub mod client;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod static_files;

mod body;
mod client_response;
mod decode;
mod transport;

pub use request::ServerRequest;
pub use response::{ServerResponse, StreamWriter};
pub use router::Router;

/// The `http::` module: the client's functions and the server's.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = server::module();
    m.combine(client::module());
    m
}

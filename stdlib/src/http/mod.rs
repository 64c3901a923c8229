//! `http::` — an HTTP server for scripts (`http::listen(...).serve(handler)`,
//! routers, static files, forms, cookies, streaming).

pub mod request;
pub mod response;
pub mod router;
pub mod server;
pub mod static_files;

pub use request::ServerRequest;
pub use response::{ServerResponse, StreamWriter};
pub use router::Router;

/// The `http::` module.
#[must_use]
pub fn module() -> rhai::Module {
    server::module()
}

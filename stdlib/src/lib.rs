//! netscript's script-visible standard library.
//!
//! # Layout
//! One file per script namespace (`tcp.rs` → `tcp::`), each exporting a
//! [`rhai::Module`] built with `#[export_module]`; methods on handles are
//! marked `global` so `conn.recv(10)` works wherever the module is installed.
//!
//! - [`error`]: the one error type; becomes `#{kind, message, op, peer}` in scripts.
//! - [`runtime`]: green-thread tasks (stackful coroutines on a tokio
//!   current-thread runtime) and [`runtime::block_on`], which lets a native
//!   function wait for a future without blocking the event loop.
//! - Sockets and tasks: [`tcp`], [`udp`], [`net`], [`task`].
//! - Load runs: [`load`] (`load::`) over the samples of [`metrics`].
//! - Data: [`bytes`], [`structs`] (`struct::`), [`frame`], [`zlib`], [`codec`]
//!   (`json::`, `pickle::`, `base64::`, `hex::`, `hash::`).

pub mod args;
pub mod error;
pub mod faults;
pub mod runtime;

pub mod bytes;
pub mod capture;
pub mod codec;
pub mod compress;
pub mod dns;
pub mod frame;
pub mod html;
pub mod http;
pub mod load;
pub mod mapreduce;
pub mod memcache;
pub mod metrics;
pub mod net;
pub mod permissions;
#[path = "struct.rs"]
pub mod structs;
pub mod task;
pub mod tcp;
pub mod tls;
pub mod trace;
pub mod udp;
pub mod url;
pub mod worker;
pub mod zmq;

pub use error::{Error, Kind, NativeResult};

use rhai::Engine;

/// Install every standard module on `engine` as a static module
/// (`tcp::connect`, `struct::pack`…), with handle methods global, and the
/// size-checked blob constructors over Rhai's ([`bytes::register_sized`]).
pub fn register_all(engine: &mut Engine) {
    for (name, module) in modules() {
        engine.register_static_module(name, module.into());
    }
    bytes::register_sized(engine);
}

/// Every standard module with the namespace it is installed under.
#[must_use]
pub fn modules() -> Vec<(&'static str, rhai::Module)> {
    let mut all = vec![
        ("bytes", bytes::module()),
        ("tcp", tcp::module()),
        ("tls", tls::module()),
        ("udp", udp::module()),
        ("net", net::module()),
        ("dns", dns::module()),
        ("task", task::module()),
        ("struct", structs::module()),
        ("frame", frame::module()),
        ("http", http::module()),
        ("html", html::module()),
        ("url", url::module()),
        ("memcache", memcache::module()),
        ("zmq", zmq::module()),
        ("worker", worker::module()),
        ("mapreduce", mapreduce::module()),
        ("load", load::module()),
    ];
    all.extend(compress::modules());
    all.extend(codec::modules());
    all
}

/// Standard modules written in Rhai, by import name (`import "smtp" as smtp;`).
pub const SCRIPT_MODULES: &[(&str, &str)] = &[("smtp", include_str!("smtp.rhai")), ("mock", include_str!("mock.rhai"))];

//! netscript: an embeddable network-protocol scripting host.
//!
//! Scripts are written in [Rhai](https://rhai.rs) in blocking style —
//! `let line = conn.recv_line();` — and run as green threads on a tokio
//! event loop, so one process serves thousands of connections.
//!
//! # Embedding
//! ```
//! use netscript::{Host, Limits, Permissions};
//! use std::time::Duration;
//!
//! let host = Host::builder()
//!     .limits(Limits { max_operations: 1_000_000, deadline: Some(Duration::from_secs(5)), ..Limits::default() })
//!     .permissions(Permissions::none())
//!     .build()
//!     .unwrap();
//! let err = host.run_source("probe.rhai", r#"tcp::connect("127.0.0.1", 9)"#, &[]).unwrap_err();
//! assert_eq!(err.kind(), "permission");
//! ```
//!
//! # Layout
//! - [`host`]: [`Host`], its builder and sessions; the host thread and job loop.
//! - [`limits`]: [`Limits`] applied to the engine.
//! - [`resolver`]: `import` of embedded standard modules and script files.
//! - [`docs`]: the script reference generated from the registered functions.
//! - [`error`]: [`Error`], rendered as `file:line:col: kind: message` with a caret.
//! - [`pretty`]: readable renderings of values (REPL output, assertion diffs).
//! - [`reload`]: hot reload — swappable functions, dependency scan, file watcher.
//! - [`testing`]: assertions and the runner behind `netscript test`.
//! - `cli`: the `netscript` command, one file per subcommand.
//! - The script-visible modules live in the `netscript-stdlib` crate.

pub mod docs;
pub mod error;
pub mod host;
pub mod limits;
pub mod pretty;
pub mod reload;
pub mod resolver;
pub mod testing;

pub use error::Error;
pub use host::{Host, HostBuilder, Permissions, Session};
pub use limits::Limits;
pub use netscript_stdlib as stdlib;
pub use rhai;

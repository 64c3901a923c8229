//! Wire tracing (`--trace`, the REPL's `.trace on`): every transport prints
//! what it sends and receives through here, as text or a hexdump
//! ([`crate::bytes::render`]), and TLS reports its handshakes. The flag itself
//! is host data kept in the runtime's context; the scheduler knows nothing of
//! what is printed.

use crate::runtime;

/// Whether traffic is traced on this thread's host.
#[must_use]
pub fn on() -> bool {
    runtime::trace_flag()
}

/// Print one send or receive (`dir`: `send`, `recv`, `send_to`…) of `peer`
/// to standard error.
pub fn data(dir: &str, peer: &str, data: &[u8]) {
    eprintln!("[{dir} {peer}, {} bytes]\n{}", data.len(), crate::bytes::render(data));
}

/// Print one event of a traced connection (a TLS handshake and its outcome).
pub fn event(what: &str, peer: &str, detail: &str) {
    eprintln!("[{what} {peer}] {detail}");
}

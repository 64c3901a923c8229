//! The standard library's one error type.
//!
//! Every failure a script can meet is an [`Error`] with a stable [`Kind`]
//! label. At the script boundary it becomes a catchable Rhai runtime error
//! whose value is the map `#{kind, message, op, peer}`, so scripts branch on
//! `e.kind` instead of parsing text:
//!
//! ```rhai
//! try { tcp::connect("127.0.0.1", 1) } catch (e) { if e.kind == "refused" { print("down") } }
//! ```

use std::fmt;
use std::io;

use rhai::{Dynamic, EvalAltResult, Map, Position};

/// What went wrong, as a stable lowercase label scripts can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// An operation did not finish within its timeout.
    Timeout,
    /// The peer refused the connection.
    Refused,
    /// The peer reset the connection (or the pipe broke).
    Reset,
    /// The connection or handle is closed, or the peer closed it mid-message.
    Closed,
    /// A name could not be resolved.
    Dns,
    /// The local address is already in use.
    AddrInUse,
    /// The address cannot be used here (not local, wrong family, unreachable).
    Unreachable,
    /// The host's permissions forbid the operation.
    Permission,
    /// A configured limit was exceeded (sizes, decompression bombs, counts).
    Limit,
    /// A bad argument: wrong type, out of range, malformed option.
    Value,
    /// Any other operating-system I/O error.
    Io,
    /// `struct` packing or unpacking failed.
    Pack,
    /// A framed message was malformed, oversized or cut short.
    Frame,
    /// Encoded data (JSON, pickle, base64, hex, compressed streams, text) is malformed.
    Decode,
    /// A TLS handshake or certificate check failed.
    Tls,
    /// An HTTP exchange failed.
    Http,
    /// An HTTP response had an error status (`raise_for_status`); `code` holds it.
    Status,
    /// The task was cancelled while waiting.
    Cancelled,
    /// A ZeroMQ peer broke the protocol, or the ZeroMQ layer failed.
    Zmq,
}

impl Kind {
    /// The stable label scripts see in `e.kind`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::Reset => "reset",
            Self::Closed => "closed",
            Self::Dns => "dns",
            Self::AddrInUse => "addr_in_use",
            Self::Unreachable => "unreachable",
            Self::Permission => "permission",
            Self::Limit => "limit",
            Self::Value => "value",
            Self::Io => "io",
            Self::Pack => "pack",
            Self::Frame => "frame",
            Self::Decode => "decode",
            Self::Tls => "tls",
            Self::Http => "http",
            Self::Status => "status",
            Self::Cancelled => "cancelled",
            Self::Zmq => "zmq",
        }
    }

    /// Classify an operating-system error.
    #[must_use]
    pub fn of_io(err: &io::Error) -> Self {
        use io::ErrorKind as K;
        match err.kind() {
            K::TimedOut | K::WouldBlock => Self::Timeout,
            K::ConnectionRefused => Self::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Self::Reset,
            K::UnexpectedEof | K::NotConnected => Self::Closed,
            K::AddrInUse => Self::AddrInUse,
            K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable => Self::Unreachable,
            K::PermissionDenied => Self::Permission,
            K::InvalidInput | K::InvalidData => Self::Value,
            _ => Self::Io,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a script-visible operation: its kind, the operation
/// (`tcp::connect`, `recv_exact`…), the peer if there is one, and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: Kind,
    op: String,
    peer: Option<String>,
    detail: String,
    code: Option<String>,
    reason: Option<&'static str>,
}

impl Error {
    /// A new error of `kind` raised by operation `op`.
    pub fn new(kind: Kind, op: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { kind, op: op.into(), peer: None, detail: detail.into(), code: None, reason: None }
    }

    /// A `value` error: a bad argument given to `op`.
    pub fn value(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Kind::Value, op, detail)
    }

    /// Wrap an operating-system error met by `op`.
    pub fn io(op: impl Into<String>, err: &io::Error) -> Self {
        Self::new(Kind::of_io(err), op, io_detail(err))
    }

    /// Name the peer (`host:port`) the operation was talking to.
    #[must_use]
    pub fn with_peer(mut self, peer: impl fmt::Display) -> Self {
        self.peer = Some(peer.to_string());
        self
    }

    /// Attach a finer, protocol-specific code (`"nxdomain"`, an SMTP reply
    /// code…); scripts see it as `e.code`.
    #[must_use]
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Attach the stable reason of a `tls` failure (`"expired"`,
    /// `"unknown_ca"`, `"truncated"`…); scripts see it as `e.reason`.
    #[must_use]
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The stable reason, if any.
    #[must_use]
    pub fn reason(&self) -> Option<&'static str> {
        self.reason
    }

    /// The protocol-specific code, if any.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The stable kind label.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The operation that failed.
    #[must_use]
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The peer, if the operation had one.
    #[must_use]
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// The detail, without the operation and peer.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The full human message: operation, peer and detail.
    #[must_use]
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The script-visible value: `#{kind, message, op, peer}`, plus `code`
    /// and `reason` when the error has them.
    #[must_use]
    pub fn to_map(&self) -> Map {
        let mut m = Map::new();
        m.insert("kind".into(), self.kind.as_str().into());
        m.insert("message".into(), self.message().into());
        m.insert("op".into(), self.op.clone().into());
        m.insert("peer".into(), self.peer.clone().map_or(Dynamic::UNIT, Into::into));
        if let Some(code) = &self.code {
            m.insert("code".into(), code.clone().into());
        }
        if let Some(reason) = self.reason {
            m.insert("reason".into(), reason.into());
        }
        m
    }
}

/// The text of an I/O error without Rust's "(os error N)" suffix.
fn io_detail(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_lowercase(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.peer {
            Some(peer) => write!(f, "{} {}: {}", self.op, peer, self.detail),
            None => write!(f, "{}: {}", self.op, self.detail),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for Box<EvalAltResult> {
    fn from(err: Error) -> Self {
        Box::new(EvalAltResult::ErrorRuntime(err.to_map().into(), Position::NONE))
    }
}

/// Result of a native function: a value, or an error Rhai can raise.
pub type NativeResult<T> = Result<T, Box<EvalAltResult>>;

/// A copy of a script error (Rhai's error type is not `Clone`): the raised
/// value and position are kept; other errors keep their text.
#[must_use]
pub fn copy_error(err: &EvalAltResult) -> Box<EvalAltResult> {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(v, pos) => Box::new(EvalAltResult::ErrorRuntime(v.clone(), *pos)),
        EvalAltResult::ErrorTerminated(v, pos) => Box::new(EvalAltResult::ErrorTerminated(v.clone(), *pos)),
        other => Box::new(EvalAltResult::ErrorRuntime(other.to_string().into(), other.position())),
    }
}

/// One line describing a script error: `kind: message` for library errors,
/// Rhai's own text otherwise. Wrappers from function calls are looked through.
#[must_use]
pub fn describe(err: &EvalAltResult) -> String {
    match innermost(err) {
        EvalAltResult::ErrorRuntime(value, _) => match value.read_lock::<Map>() {
            Some(m) => match (m.get("kind"), m.get("message")) {
                (Some(kind), Some(msg)) => format!("{kind}: {msg}"),
                _ => value.to_string(),
            },
            None => value.to_string(),
        },
        other => other.to_string(),
    }
}

/// The error inside any `ErrorInFunctionCall` / `ErrorInModule` wrappers.
pub fn innermost(err: &EvalAltResult) -> &EvalAltResult {
    match err {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) | EvalAltResult::ErrorInModule(_, inner, _) => {
            innermost(inner)
        }
        other => other,
    }
}

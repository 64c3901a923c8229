//! `frame::` — message framing: length prefixes, lines, netstrings and HTTP
//! chunked transfer encoding, over connections and over plain blobs.
//!
//! One [`Framer`] describes a framing; its decoder only ever looks at the
//! start of a buffer and consumes a frame once it is complete. The same code
//! serves the connection methods (`conn.recv_frame()` decodes straight out of
//! the connection's read buffer) and the blob decoder objects
//! (`frame::decoder("length")`), so a protocol parser can be tested without
//! sockets. Because nothing is consumed until a frame is whole, a timeout or
//! an EOF in the middle of a frame leaves every byte buffered.
//!
//! tokio-util's `LengthDelimitedCodec` / `LinesCodec` are not used: they keep
//! hidden state between calls (the length codec removes the prefix from the
//! buffer before the body has arrived, the lines codec yields UTF-8 strings
//! only), which would break that guarantee and lose the declared length the
//! error messages report. Netstrings and chunked encoding have no codec there.
//!
//! ```rhai
//! let d = frame::decoder("length", #{prefix: "!H"});
//! print(d.feed(frame::encode_length("hi", #{prefix: "!H"})));   // [b"6869" (2 bytes)]
//! ```

use std::ops::Range;

use bytes::{Buf, BytesMut};
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, INT, Map};

use crate::args::Opts;
use crate::bytes::{check_blob_len, data_arg};
use crate::error::{Error, Kind, NativeResult};
use crate::tcp::{Deadline, TcpConn};

/// Default largest frame (length-prefixed, netstring, chunked body): 16 MiB.
pub const DEFAULT_MAX: usize = 16 << 20;
/// Default longest line, as for `recv_line`: 1 MiB.
pub const DEFAULT_LINE_MAX: usize = 1 << 20;
/// Longest chunk-size line (size, extensions, CRLF) accepted.
const CHUNK_LINE_MAX: usize = 4096;
/// Longest trailer section after the last chunk.
const TRAILER_MAX: usize = 64 << 10;
/// Most digits a netstring length may have (`u64::MAX` has 20).
const NETSTRING_DIGITS_MAX: usize = 20;

/// The integer prefix of a length-prefixed frame, from a struct format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    size: usize,
    big: bool,
}

impl Prefix {
    /// `"!I"`: 4-byte big-endian, the default.
    pub const NETWORK_U32: Self = Self { size: 4, big: true };

    /// Parse a struct format of one unsigned integer: an optional byte order
    /// (`@ = < > !`) then one of `B H I L Q`. As in Python's `struct`, `L`
    /// is the C `unsigned long` (8 bytes here) with native (`@` or no) order.
    pub fn parse(op: &str, format: &str) -> Result<Self, Error> {
        let bad = || {
            Error::value(
                op,
                format!(
                    "prefix must be a struct format of one unsigned integer (B H I L Q with an optional byte order @ = < > !), like \"!I\" or \"<H\"; got {format:?}"
                ),
            )
        };
        let (order, code) = match format.as_bytes() {
            [code] => (b'@', *code),
            [order, code] => (*order, *code),
            _ => return Err(bad()),
        };
        let native = matches!(order, b'@');
        let big = match order {
            b'@' | b'=' => cfg!(target_endian = "big"),
            b'<' => false,
            b'>' | b'!' => true,
            _ => return Err(bad()),
        };
        let size = match code {
            b'B' => 1,
            b'H' => 2,
            b'I' => 4,
            b'L' if native => std::mem::size_of::<std::ffi::c_ulong>(),
            b'L' => 4,
            b'Q' => 8,
            _ => return Err(bad()),
        };
        Ok(Self { size, big })
    }

    /// Largest length the prefix can carry.
    fn limit(self) -> u64 {
        u64::MAX >> (64 - 8 * self.size)
    }

    /// Read the prefix from the first `size` bytes of `b` (caller checks the length).
    fn read(self, b: &[u8]) -> u64 {
        let b = &b[..self.size];
        if self.big {
            b.iter().fold(0, |n, &x| (n << 8) | u64::from(x))
        } else {
            b.iter().rev().fold(0, |n, &x| (n << 8) | u64::from(x))
        }
    }

    /// Append `n` (at most [`Self::limit`]) as the prefix.
    fn write(self, n: u64, out: &mut Vec<u8>) {
        let bytes = n.to_be_bytes();
        let field = &bytes[8 - self.size..];
        if self.big {
            out.extend_from_slice(field);
        } else {
            out.extend(field.iter().rev());
        }
    }
}

/// A framing and its limits.
#[derive(Clone, Copy, Debug)]
pub enum Framer {
    /// An unsigned integer prefix giving the payload length.
    Length {
        /// The prefix format.
        prefix: Prefix,
        /// Largest payload.
        max: usize,
    },
    /// Lines ending in `\n` (a `\r` before it is dropped too).
    Line {
        /// Longest line, without its terminator.
        max: usize,
    },
    /// Netstrings: `5:hello,`.
    Netstring {
        /// Largest payload.
        max: usize,
    },
    /// An HTTP/1.1 chunked body: chunks, the last (empty) chunk, trailers.
    Chunked {
        /// Largest body (all chunks together).
        max: usize,
    },
}

/// What the start of a buffer holds.
enum Scan {
    /// A complete frame: where its payload lies and how many bytes it used.
    Frame(Vec<Range<usize>>, usize),
    /// An incomplete frame; its total size once known.
    Partial(Option<usize>),
}

impl Scan {
    /// A frame whose payload is one contiguous span.
    fn span(payload: Range<usize>, used: usize) -> Self {
        Self::Frame(std::iter::once(payload).collect(), used)
    }
}

impl Framer {
    /// The default length-prefixed framing: `"!I"`, 16 MiB.
    pub const DEFAULT_LENGTH: Self = Self::Length { prefix: Prefix::NETWORK_U32, max: DEFAULT_MAX };

    /// Build the framing named `kind` (`"length"`, `"line"`, `"netstring"`,
    /// `"chunked"`) from its options (`max`; `prefix` for `"length"`).
    pub fn from_opts(op: &str, kind: &str, opts: Map) -> Result<Self, Error> {
        Ok(match kind {
            "length" => {
                let (prefix, max) = length_opts(op, opts)?;
                Self::Length { prefix, max }
            }
            "line" => Self::Line { max: Opts::new(op, opts, &["max"])?.size("max", DEFAULT_LINE_MAX)? },
            "netstring" => Self::Netstring { max: Opts::new(op, opts, &["max"])?.size("max", DEFAULT_MAX)? },
            "chunked" => Self::Chunked { max: Opts::new(op, opts, &["max"])?.size("max", DEFAULT_MAX)? },
            other => {
                return Err(Error::value(
                    op,
                    format!("unknown framing {other:?} (known: \"length\", \"line\", \"netstring\", \"chunked\")"),
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Length { .. } => "length-prefixed frame",
            Self::Line { .. } => "line",
            Self::Netstring { .. } => "netstring",
            Self::Chunked { .. } => "chunked body",
        }
    }

    /// Look for a complete frame at the start of `buf`.
    fn scan(self, buf: &[u8], op: &str) -> Result<Scan, Error> {
        match self {
            Self::Length { prefix, max } => scan_length(buf, prefix, max, op),
            Self::Line { max } => {
                Ok(scan_line(buf, max, op)?.map_or(Scan::Partial(None), |(line, used)| Scan::span(line, used)))
            }
            Self::Netstring { max } => scan_netstring(buf, max, op),
            Self::Chunked { max } => scan_chunked(buf, max, op),
        }
    }

    /// The first complete frame of `buf[from..]`, and where it ends.
    fn next(self, buf: &[u8], from: usize, op: &str) -> Result<Option<(Blob, usize)>, Error> {
        let rest = buf.get(from..).unwrap_or_default();
        Ok(match self.scan(rest, op)? {
            Scan::Frame(parts, used) => {
                let mut out = Blob::with_capacity(parts.iter().map(ExactSizeIterator::len).sum());
                for r in parts {
                    out.extend_from_slice(&rest[r]);
                }
                Some((out, from + used))
            }
            Scan::Partial(_) => None,
        })
    }

    /// Remove and return the first complete frame of `buf`; `None` when it
    /// is incomplete (nothing is consumed then).
    pub fn decode(self, buf: &mut BytesMut, op: &str) -> Result<Option<Blob>, Error> {
        Ok(self.next(buf, 0, op)?.map(|(frame, used)| {
            buf.advance(used);
            frame
        }))
    }

    /// Remove the complete frames of `buf`, at most `limit`. On a bad frame
    /// nothing is consumed, so the frames before it stay buffered too.
    pub fn decode_all(self, buf: &mut BytesMut, limit: usize, op: &str) -> Result<Array, Error> {
        let mut frames = Array::new();
        let mut at = 0;
        while frames.len() < limit
            && let Some((frame, end)) = self.next(buf, at, op)?
        {
            frames.push(Dynamic::from_blob(frame));
            at = end;
        }
        buf.advance(at);
        Ok(frames)
    }

    /// The error for a stream that ended with `buf` (not empty) unframed.
    pub fn eof_error(self, buf: &[u8], op: &str) -> Error {
        let have = buf.len();
        let detail = match self.scan(buf, op) {
            Err(e) => return e,
            Ok(Scan::Partial(Some(total))) => {
                format!("stream ended after {have} of {total} bytes of a {} (they stay buffered)", self.name())
            }
            _ => format!("stream ended inside a {} after {have} bytes (they stay buffered)", self.name()),
        };
        Error::new(Kind::Frame, op, detail)
    }
}

fn frame_err(op: &str, detail: impl Into<String>) -> Error {
    Error::new(Kind::Frame, op, detail)
}

fn oversize(op: &str, what: &str, n: u64, max: usize) -> Error {
    frame_err(op, format!("{what} of {n} bytes exceeds the maximum of {max} (raise the 'max' option)"))
}

/// A few bytes of `b` for an error message.
fn show(b: &[u8]) -> String {
    let head = &b[..b.len().min(32)];
    let text = format!("{:?}", String::from_utf8_lossy(head));
    if b.len() > head.len() { format!("{text}...") } else { text }
}

fn scan_length(buf: &[u8], prefix: Prefix, max: usize, op: &str) -> Result<Scan, Error> {
    if buf.len() < prefix.size {
        return Ok(Scan::Partial(None));
    }
    let n = prefix.read(buf);
    if n > max as u64 {
        return Err(oversize(op, "frame", n, max));
    }
    // n <= max, so it fits in usize.
    let n = n as usize;
    check_blob_len(n, op)?;
    let total = prefix.size + n;
    Ok(if buf.len() < total { Scan::Partial(Some(total)) } else { Scan::span(prefix.size..total, total) })
}

/// A line of at most `max` bytes at the start of `buf`: its range without
/// `\n` / `\r\n`, and the bytes it used.
fn scan_line(buf: &[u8], max: usize, op: &str) -> Result<Option<(Range<usize>, usize)>, Error> {
    // A line of `max` bytes may carry `\r\n` after it.
    let window = &buf[..buf.len().min(max.saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let end = if i > 0 && buf[i - 1] == b'\r' { i - 1 } else { i };
            if end > max {
                return Err(frame_err(
                    op,
                    format!("line of {end} bytes exceeds the maximum of {max} (raise the 'max' option)"),
                ));
            }
            Ok(Some((0..end, i + 1)))
        }
        None if buf.len() > max.saturating_add(1) => Err(frame_err(
            op,
            format!("no end of line within {max} bytes (raise the 'max' option; the bytes stay buffered)"),
        )),
        None => Ok(None),
    }
}

fn scan_netstring(buf: &[u8], max: usize, op: &str) -> Result<Scan, Error> {
    let digits = buf.iter().take_while(|b| b.is_ascii_digit()).count();
    let malformed = |why: &str| frame_err(op, format!("malformed netstring: {why} (at {})", show(buf)));
    if digits > NETSTRING_DIGITS_MAX {
        return Err(malformed("length has too many digits"));
    }
    match buf.get(digits) {
        None => return Ok(Scan::Partial(None)),
        Some(b':') if digits > 0 => {}
        Some(_) => return Err(malformed("expected a decimal length then ':'")),
    }
    if digits > 1 && buf[0] == b'0' {
        return Err(malformed("the length has a leading zero"));
    }
    let n = buf[..digits].iter().try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')));
    let n = match n {
        Some(n) if n <= max as u64 => n as usize,
        Some(n) => return Err(oversize(op, "netstring", n, max)),
        None => return Err(malformed("the length overflows")),
    };
    check_blob_len(n, op)?;
    let start = digits + 1;
    let total = start + n + 1;
    match buf.get(total - 1) {
        None => Ok(Scan::Partial(Some(total))),
        Some(b',') => Ok(Scan::span(start..start + n, total)),
        Some(&b) => {
            Err(frame_err(op, format!("malformed netstring: expected ',' after {n} bytes of data, got byte 0x{b:02x}")))
        }
    }
}

fn scan_chunked(buf: &[u8], max: usize, op: &str) -> Result<Scan, Error> {
    let mut parts = Vec::new();
    let mut body: usize = 0;
    let mut pos = 0;
    loop {
        // Chunk-size line: hex size, optional `;extensions`, CRLF (or LF).
        let Some((line, used)) = scan_line(&buf[pos..], CHUNK_LINE_MAX, op)
            .map_err(|_| frame_err(op, format!("chunk-size line longer than {CHUNK_LINE_MAX} bytes")))?
        else {
            return Ok(Scan::Partial(None));
        };
        let text = &buf[pos..pos + line.end];
        let size_field = text.split(|&b| b == b';').next().unwrap_or_default().trim_ascii();
        let size = std::str::from_utf8(size_field)
            .ok()
            .filter(|s| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| frame_err(op, format!("malformed chunk-size line {}", show(text))))?;
        pos += used;
        if size == 0 {
            return scan_trailers(buf, pos, parts, op);
        }
        if size > (max - body) as u64 {
            return Err(oversize(op, "chunked body", body as u64 + size, max));
        }
        let size = size as usize;
        check_blob_len(body + size, op)?;
        let end = pos + size;
        match buf.get(end..end + 2) {
            None => return Ok(Scan::Partial(None)),
            Some(b"\r\n") => {}
            Some(_) => return Err(frame_err(op, format!("chunk of {size} bytes is not followed by CRLF"))),
        }
        parts.push(pos..end);
        body += size;
        pos = end + 2;
    }
}

/// Skip trailer fields after the last chunk, up to the empty line.
fn scan_trailers(buf: &[u8], mut pos: usize, parts: Vec<Range<usize>>, op: &str) -> Result<Scan, Error> {
    let start = pos;
    loop {
        let too_long = || frame_err(op, format!("trailer section longer than {TRAILER_MAX} bytes"));
        let Some((line, used)) = scan_line(&buf[pos..], TRAILER_MAX, op).map_err(|_| too_long())? else {
            return Ok(Scan::Partial(None));
        };
        pos += used;
        if line.is_empty() {
            return Ok(Scan::Frame(parts, pos));
        }
        if pos - start > TRAILER_MAX {
            return Err(too_long());
        }
    }
}

/// `data` with a length prefix.
pub fn encode_length(data: &[u8], prefix: Prefix, max: usize, op: &str) -> Result<Blob, Error> {
    let n = data.len() as u64;
    if n > max as u64 {
        return Err(oversize(op, "frame", n, max));
    }
    if n > prefix.limit() {
        return Err(frame_err(op, format!("frame of {n} bytes does not fit a {}-byte length prefix", prefix.size)));
    }
    let mut out = Blob::with_capacity(prefix.size + data.len());
    prefix.write(n, &mut out);
    out.extend_from_slice(data);
    Ok(out)
}

/// `data` as a netstring.
#[must_use]
pub fn encode_netstring(data: &[u8]) -> Blob {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.reserve(data.len() + 1);
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// `data` as chunks of at most `size` bytes (one chunk if `None`; none if
/// empty), then the last chunk when `last`.
#[must_use]
pub fn encode_chunked(data: &[u8], size: Option<usize>, last: bool) -> Blob {
    let mut out = Blob::with_capacity(data.len() + 32);
    for chunk in data.chunks(size.unwrap_or(data.len()).max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    if last {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    out
}

/// Options of `encode_length` / `send_frame`.
fn length_opts(op: &str, opts: Map) -> Result<(Prefix, usize), Error> {
    let opts = Opts::new(op, opts, &["prefix", "max"])?;
    let prefix = match opts.string("prefix")? {
        Some(f) => Prefix::parse(op, &f)?,
        None => Prefix::NETWORK_U32,
    };
    Ok((prefix, opts.size("max", DEFAULT_MAX)?))
}

/// Options of `encode_chunked` / `send_chunked`: chunk `size`, `last`.
fn chunked_opts(op: &str, opts: Map) -> Result<(Option<usize>, bool), Error> {
    let opts = Opts::new(op, opts, &["size", "last"])?;
    let size = match opts.size("size", 0)? {
        0 if opts.get("size").is_some() => return Err(Error::value(op, "option 'size' must be at least 1")),
        0 => None,
        n => Some(n),
    };
    Ok((size, opts.bool("last", true)?))
}

/// Receive one frame from `c`; `()` at a clean EOF before its first byte.
/// The connection's timeout bounds the whole frame, not each read.
fn recv_framed(c: &TcpConn, framer: Framer, op: &str) -> NativeResult<Dynamic> {
    let mut deadline = Deadline::default();
    loop {
        if let Some(frame) = c.with_buffer(|b| framer.decode(b, op)).map_err(|e| e.with_peer(c.peer()))? {
            return Ok(Dynamic::from_blob(frame));
        }
        if c.fill(op, &mut deadline)? == 0 {
            return c.with_buffer(|b| {
                if b.is_empty() { Ok(Dynamic::UNIT) } else { Err(framer.eof_error(b, op).with_peer(c.peer()).into()) }
            });
        }
    }
}

/// Send an encoded frame; returns the bytes sent.
fn send_encoded(c: &TcpConn, frame: Result<Blob, Error>, op: &str) -> NativeResult<INT> {
    let frame = frame.map_err(|e| e.with_peer(c.peer()))?;
    c.send(&frame, op).map(|n| n as INT)
}

/// A decoder fed chunk by chunk that returns complete frames.
#[derive(Clone)]
pub struct FrameDecoder {
    framer: Framer,
    buf: BytesMut,
    /// A chunked decoder has decoded its body; later input is only buffered.
    done: bool,
}

impl FrameDecoder {
    fn feed(&mut self, chunk: &[u8], op: &str) -> Result<Array, Error> {
        self.buf.extend_from_slice(chunk);
        if self.done {
            return Ok(Array::new());
        }
        // A chunked body is one HTTP message body: what follows it belongs
        // to the next message, so it stays buffered for `take()`.
        let limit = if matches!(self.framer, Framer::Chunked { .. }) { 1 } else { usize::MAX };
        let frames = self.framer.decode_all(&mut self.buf, limit, op)?;
        self.done = limit == 1 && !frames.is_empty();
        Ok(frames)
    }
}

/// The `frame::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A decoder from `frame::decoder`.
    pub type Decoder = FrameDecoder;

    /// Prefix `data` with its length as a 4-byte big-endian integer (`"!I"`).
    ///
    /// ```rhai
    /// print(frame::encode_length("hi"));   // [000000026869]
    /// ```
    #[rhai_fn(name = "encode_length", return_raw)]
    pub fn encode_length(data: Dynamic) -> NativeResult<Blob> {
        encode_length_opts(data, Map::new())
    }

    /// `encode_length` with options `prefix` (struct format of one unsigned
    /// integer: `"!I"`, `"<H"`, `">Q"`, `"B"`…) and `max` (bytes, default 16 MiB).
    /// Raises `frame` if `data` is longer than `max` or than the prefix can say.
    ///
    /// ```rhai
    /// print(frame::encode_length("hi", #{prefix: "<H"}));   // [02006869]
    /// ```
    #[rhai_fn(name = "encode_length", return_raw)]
    pub fn encode_length_opts(data: Dynamic, opts: Map) -> NativeResult<Blob> {
        const OP: &str = "frame::encode_length";
        let (prefix, max) = length_opts(OP, opts)?;
        Ok(super::encode_length(&data_arg(&data, OP)?, prefix, max, OP)?)
    }

    /// `data` as a netstring: `len:data,`.
    ///
    /// ```rhai
    /// print(frame::encode_netstring("hello").as_string());   // 5:hello,
    /// ```
    #[rhai_fn(name = "encode_netstring", return_raw)]
    pub fn encode_netstring(data: Dynamic) -> NativeResult<Blob> {
        Ok(super::encode_netstring(&data_arg(&data, "frame::encode_netstring")?))
    }

    /// `data` in HTTP chunked transfer encoding: one chunk (none if `data`
    /// is empty) then the last chunk `0\r\n\r\n`.
    ///
    /// ```rhai
    /// print(frame::encode_chunked("hello").as_string());   // "5\r\nhello\r\n0\r\n\r\n"
    /// ```
    #[rhai_fn(name = "encode_chunked", return_raw)]
    pub fn encode_chunked(data: Dynamic) -> NativeResult<Blob> {
        encode_chunked_opts(data, Map::new())
    }

    /// `encode_chunked` with options `size` (split into chunks of at most
    /// this many bytes) and `last` (default true; false leaves the body open
    /// so more chunks can follow).
    ///
    /// ```rhai
    /// let part = frame::encode_chunked("hello world", #{size: 4, last: false});
    /// let end = frame::encode_chunked("");
    /// ```
    #[rhai_fn(name = "encode_chunked", return_raw)]
    pub fn encode_chunked_opts(data: Dynamic, opts: Map) -> NativeResult<Blob> {
        const OP: &str = "frame::encode_chunked";
        let (size, last) = chunked_opts(OP, opts)?;
        Ok(super::encode_chunked(&data_arg(&data, OP)?, size, last))
    }

    /// Split `data` into lines without their `\n` / `\r\n`. Like Python's
    /// `bytes.splitlines()` for `\n` endings: an unterminated last line is
    /// the last element, and a trailing `\n` adds no empty line. To keep
    /// the unterminated rest for later, use `frame::decoder("line")`.
    ///
    /// ```rhai
    /// let lines = frame::split_lines("a\r\nb\nrest");   // a, b, rest (3 blobs)
    /// ```
    #[rhai_fn(name = "split_lines", return_raw)]
    pub fn split_lines(data: Dynamic) -> NativeResult<Array> {
        const OP: &str = "frame::split_lines";
        let data = data_arg(&data, OP)?;
        let mut buf = BytesMut::from(&data[..]);
        let mut lines = Framer::Line { max: usize::MAX }.decode_all(&mut buf, usize::MAX, OP)?;
        if !buf.is_empty() {
            lines.push(Dynamic::from_blob(buf.to_vec()));
        }
        Ok(lines)
    }

    /// A decoder for framing `kind`: `"length"` (options `prefix`, `max`),
    /// `"line"` (`max`, default 1 MiB), `"netstring"` (`max`) or `"chunked"`
    /// (`max` of the whole body). Default `max` is 16 MiB.
    ///
    /// ```rhai
    /// let d = frame::decoder("netstring");
    /// print(d.feed("5:hel"));     // []
    /// print(d.feed("lo,3:a"));    // [b"68656c6c6f" (5 bytes)]
    /// print(d.pending);           // 3
    /// ```
    #[rhai_fn(name = "decoder", return_raw)]
    pub fn decoder(kind: &str) -> NativeResult<Decoder> {
        decoder_opts(kind, Map::new())
    }

    /// `frame::decoder` with options.
    ///
    /// ```rhai
    /// let d = frame::decoder("length", #{prefix: "<H", max: 1024});
    /// ```
    #[rhai_fn(name = "decoder", return_raw)]
    pub fn decoder_opts(kind: &str, opts: Map) -> NativeResult<Decoder> {
        let framer = Framer::from_opts("frame::decoder", kind, opts)?;
        Ok(FrameDecoder { framer, buf: BytesMut::new(), done: false })
    }

    /// Add `chunk` (blob or string) and return the frames now complete, as
    /// an array of blobs. Incomplete bytes stay buffered. A `"chunked"`
    /// decoder yields its one body as one blob, then sets `done` and only
    /// buffers what follows (get it with `take()`). An oversize or malformed frame raises `frame`
    /// and consumes nothing from this call.
    ///
    /// ```rhai
    /// let d = frame::decoder("line");
    /// for line in d.feed("one\ntwo\nthr") { print(line.as_string()) }
    /// ```
    #[rhai_fn(global, name = "feed", return_raw)]
    pub fn feed(d: &mut Decoder, chunk: Dynamic) -> NativeResult<Array> {
        const OP: &str = "decoder.feed";
        Ok(d.feed(&data_arg(&chunk, OP)?, OP)?)
    }

    /// Declare the end of input: raises `frame` if a partial frame is buffered.
    ///
    /// ```rhai
    /// let d = frame::decoder("length");
    /// d.feed(frame::encode_length("x"));
    /// d.eof();   // fine: nothing left over
    /// ```
    #[rhai_fn(global, name = "eof", return_raw, pure)]
    pub fn eof(d: &mut Decoder) -> NativeResult<()> {
        if d.buf.is_empty() || d.done { Ok(()) } else { Err(d.framer.eof_error(&d.buf, "decoder.eof").into()) }
    }

    /// Whether a `"chunked"` decoder has decoded its body (always false for
    /// the other kinds, which decode any number of frames).
    ///
    /// ```rhai
    /// let d = frame::decoder("chunked");
    /// d.feed("3\r\nabc\r\n0\r\n\r\n");
    /// print(d.done);   // true
    /// ```
    #[rhai_fn(global, get = "done", pure)]
    pub fn done(d: &mut Decoder) -> bool {
        d.done
    }

    /// How many bytes are buffered, waiting for the rest of a frame.
    #[rhai_fn(global, get = "pending", pure)]
    pub fn pending(d: &mut Decoder) -> INT {
        d.buf.len() as INT
    }

    /// Remove and return the buffered bytes (what follows a chunked body,
    /// or the rest after an error).
    ///
    /// ```rhai
    /// let d = frame::decoder("chunked");
    /// d.feed("0\r\n\r\nHTTP/1.1 200 OK\r\n");
    /// print(d.take().as_string());   // HTTP/1.1 200 OK
    /// ```
    #[rhai_fn(global, name = "take")]
    pub fn take(d: &mut Decoder) -> Blob {
        d.buf.split().to_vec()
    }

    /// `frame decoder (length-prefixed frame, 3 bytes pending)`
    #[rhai_fn(global, name = "to_string", name = "to_debug", pure)]
    pub fn decoder_to_string(d: &mut Decoder) -> String {
        format!("frame decoder ({}, {} bytes pending)", d.framer.name(), d.buf.len())
    }

    /// Send `data` with a 4-byte big-endian length prefix; returns the bytes sent.
    ///
    /// ```rhai
    /// c.send_frame(json::encode(#{op: "ping"}));
    /// ```
    #[rhai_fn(global, name = "send_frame", return_raw, pure)]
    pub fn send_frame(c: &mut TcpConn, data: Dynamic) -> NativeResult<INT> {
        const OP: &str = "send_frame";
        send_encoded(c, super::encode_length(&data_arg(&data, OP)?, Prefix::NETWORK_U32, DEFAULT_MAX, OP), OP)
    }

    /// `send_frame` with options `prefix` (e.g. `"<H"`) and `max`; `frame`
    /// error if `data` is too long.
    ///
    /// ```rhai
    /// c.send_frame("hello", #{prefix: "!H"});
    /// ```
    #[rhai_fn(global, name = "send_frame", return_raw, pure)]
    pub fn send_frame_opts(c: &mut TcpConn, data: Dynamic, opts: Map) -> NativeResult<INT> {
        const OP: &str = "send_frame";
        let (prefix, max) = length_opts(OP, opts)?;
        send_encoded(c, super::encode_length(&data_arg(&data, OP)?, prefix, max, OP), OP)
    }

    /// Receive one length-prefixed frame (`"!I"` prefix, at most 16 MiB) as
    /// a blob; `()` if the peer closed before sending any byte of it.
    /// Raises `frame` if the length exceeds the maximum or the peer closes
    /// mid-frame (the bytes stay buffered), `timeout` if the whole frame
    /// takes longer than `c.timeout` (the bytes stay buffered too).
    ///
    /// ```rhai
    /// while true { let f = c.recv_frame(); if f == () { break } print(f.len()); }
    /// ```
    #[rhai_fn(global, name = "recv_frame", return_raw, pure)]
    pub fn recv_frame(c: &mut TcpConn) -> NativeResult<Dynamic> {
        recv_framed(c, Framer::DEFAULT_LENGTH, "recv_frame")
    }

    /// `recv_frame` with options `prefix` and `max`.
    ///
    /// ```rhai
    /// let f = c.recv_frame(#{prefix: "<H", max: 4096});
    /// ```
    #[rhai_fn(global, name = "recv_frame", return_raw, pure)]
    pub fn recv_frame_opts(c: &mut TcpConn, opts: Map) -> NativeResult<Dynamic> {
        recv_framed(c, Framer::from_opts("recv_frame", "length", opts)?, "recv_frame")
    }

    /// Send `data` as a netstring (`5:hello,`); returns the bytes sent.
    ///
    /// ```rhai
    /// c.send_netstring("hello");
    /// ```
    #[rhai_fn(global, name = "send_netstring", return_raw, pure)]
    pub fn send_netstring(c: &mut TcpConn, data: Dynamic) -> NativeResult<INT> {
        const OP: &str = "send_netstring";
        send_encoded(c, Ok(super::encode_netstring(&data_arg(&data, OP)?)), OP)
    }

    /// Receive one netstring's data (at most 16 MiB); `()` at a clean EOF.
    /// Raises `frame` when malformed, oversize or cut short.
    ///
    /// ```rhai
    /// let s = c.recv_netstring();
    /// ```
    #[rhai_fn(global, name = "recv_netstring", return_raw, pure)]
    pub fn recv_netstring(c: &mut TcpConn) -> NativeResult<Dynamic> {
        recv_netstring_opts(c, Map::new())
    }

    /// `recv_netstring` with option `max`.
    ///
    /// ```rhai
    /// let s = c.recv_netstring(#{max: 1000});
    /// ```
    #[rhai_fn(global, name = "recv_netstring", return_raw, pure)]
    pub fn recv_netstring_opts(c: &mut TcpConn, opts: Map) -> NativeResult<Dynamic> {
        recv_framed(c, Framer::from_opts("recv_netstring", "netstring", opts)?, "recv_netstring")
    }

    /// Send `data` in chunked transfer encoding, ending the body; returns
    /// the bytes sent.
    ///
    /// ```rhai
    /// c.send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    /// c.send_chunked("hello");
    /// ```
    #[rhai_fn(global, name = "send_chunked", return_raw, pure)]
    pub fn send_chunked(c: &mut TcpConn, data: Dynamic) -> NativeResult<INT> {
        send_chunked_opts(c, data, Map::new())
    }

    /// `send_chunked` with options `size` (largest chunk) and `last`
    /// (default true; false sends chunks only, so the body can go on).
    ///
    /// ```rhai
    /// c.send_chunked("part one", #{last: false});
    /// c.send_chunked("part two");
    /// ```
    #[rhai_fn(global, name = "send_chunked", return_raw, pure)]
    pub fn send_chunked_opts(c: &mut TcpConn, data: Dynamic, opts: Map) -> NativeResult<INT> {
        const OP: &str = "send_chunked";
        let (size, last) = chunked_opts(OP, opts)?;
        send_encoded(c, Ok(super::encode_chunked(&data_arg(&data, OP)?, size, last)), OP)
    }

    /// Receive a whole chunked body (chunks joined, trailers skipped; at
    /// most 16 MiB); `()` at a clean EOF. Raises `frame` for a malformed
    /// chunk-size line, an oversize body, or EOF inside the body.
    ///
    /// ```rhai
    /// let head = c.recv_until("\r\n\r\n");
    /// let body = c.recv_chunked();
    /// ```
    #[rhai_fn(global, name = "recv_chunked", return_raw, pure)]
    pub fn recv_chunked(c: &mut TcpConn) -> NativeResult<Dynamic> {
        recv_chunked_opts(c, Map::new())
    }

    /// `recv_chunked` with option `max` (bytes of body).
    ///
    /// ```rhai
    /// let body = c.recv_chunked(#{max: 1000000});
    /// ```
    #[rhai_fn(global, name = "recv_chunked", return_raw, pure)]
    pub fn recv_chunked_opts(c: &mut TcpConn, opts: Map) -> NativeResult<Dynamic> {
        recv_framed(c, Framer::from_opts("recv_chunked", "chunked", opts)?, "recv_chunked")
    }
}

//! Compression: the `zlib::`, `gzip::` and `zstd::` namespaces.
//!
//! Each codec has its own file (`zlib.rs`, `gzip.rs`, `zstd.rs`); this one
//! holds what they share:
//!
//! - the decompression-bomb guard: every decompression stops with a `limit`
//!   error once it would produce more than `max_size` bytes (default
//!   [`DEFAULT_MAX_SIZE`], overridable with an options map `#{max_size: n}`);
//! - the streaming handles [`Compressor`] and [`Decompressor`], which drive
//!   any codec engine ([`Encode`], [`Decode`]) and give scripts the
//!   Python-style `.feed(chunk)`, `.flush()`, `.eof` and `.unused_data`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rhai::plugin::*;
use rhai::{Blob, Map};

use crate::error::{Error, Kind};

#[path = "gzip.rs"]
pub mod gzip;
#[path = "zlib.rs"]
pub mod zlib;
#[path = "zstd.rs"]
pub mod zstd;

/// The modules in this file with their namespaces.
#[must_use]
pub fn modules() -> Vec<(&'static str, rhai::Module)> {
    vec![("zlib", zlib::module()), ("gzip", gzip::module()), ("zstd", zstd::module())]
}

/// Default cap on the output of one decompression: 256 MiB.
pub const DEFAULT_MAX_SIZE: usize = 256 << 20;

/// How much output room to add at a time while (de)compressing.
const CHUNK: usize = 32 << 10;

/// Read the options map of a decompression: only `max_size` is known. The
/// result never exceeds the engine's `max_array_size` when one is set.
pub(crate) fn max_size_option(opts: &Map, op: &str) -> Result<usize, Error> {
    let mut max = DEFAULT_MAX_SIZE;
    for (key, value) in opts {
        match key.as_str() {
            "max_size" => {
                let n =
                    value.as_int().map_err(|t| Error::value(op, format!("max_size must be an integer, got {t}")))?;
                max = usize::try_from(n)
                    .map_err(|_| Error::value(op, format!("max_size must not be negative, got {n}")))?;
            }
            other => return Err(Error::value(op, format!("unknown option '{other}' (known: max_size)"))),
        }
    }
    // Output past the blob limit could not be returned anyway: stop there.
    Ok(match crate::runtime::max_array_size() {
        0 => max,
        limit => max.min(limit),
    })
}

/// Make room in `out` for more output while keeping what this call adds
/// (everything past `base`) within `limit`.
///
/// Room is granted up to one byte past the limit, so a stream that produces
/// more is caught by the next call instead of being silently cut.
pub(crate) fn make_room(out: &mut Vec<u8>, base: usize, limit: usize, op: &str) -> Result<(), Error> {
    check_limit(out, base, limit, op)?;
    let produced = out.len() - base;
    if out.len() == out.capacity() {
        out.reserve_exact((limit + 1 - produced).min(produced.max(CHUNK)));
    }
    Ok(())
}

/// A `limit` error if this call added more than `limit` bytes to `out` past `base`.
pub(crate) fn check_limit(out: &[u8], base: usize, limit: usize, op: &str) -> Result<(), Error> {
    if out.len() - base > limit {
        return Err(Error::new(Kind::Limit, op, format!("decompressed data exceeds max_size of {limit} bytes")));
    }
    Ok(())
}

/// Make room in `out` for compressed output (no limit applies).
pub(crate) fn grow(out: &mut Vec<u8>) {
    if out.len() == out.capacity() {
        out.reserve(CHUNK);
    }
}

/// A `decode` error about corrupt or truncated compressed data.
pub(crate) fn corrupt(op: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(Kind::Decode, op, format!("invalid compressed data: {detail}"))
}

/// How a compressor's `.flush(mode)` ends the data given so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Emit everything so far on a byte boundary; the stream goes on.
    Sync,
    /// As `Sync`, and forget history so decoding can restart here (deflate).
    Full,
    /// End the stream (write the trailer).
    Finish,
}

impl FlushMode {
    fn parse(mode: &str, op: &str) -> Result<Self, Error> {
        match mode {
            "sync" => Ok(Self::Sync),
            "full" => Ok(Self::Full),
            "finish" => Ok(Self::Finish),
            other => Err(Error::value(op, format!("unknown flush mode '{other}' (sync, full, finish)"))),
        }
    }
}

/// A streaming compression engine.
pub trait Encode: Send {
    /// Compress `input`, appending the output that is ready to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, op: &str) -> Result<(), Error>;
    /// Flush pending output to `out` as `mode` says.
    fn flush(&mut self, mode: FlushMode, out: &mut Vec<u8>, op: &str) -> Result<(), Error>;
}

/// A streaming decompression engine for one stream (or frame).
pub trait Decode: Send {
    /// Decompress from `input`, appending at most `limit` bytes (past the
    /// current end) to `out`.
    ///
    /// Returns how much of `input` was used and whether the stream ended;
    /// all of `input` is used unless the stream ended.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize, op: &str) -> Result<(usize, bool), Error>;
}

/// Decompress one whole stream from `data`: error if it is cut short.
///
/// Returns the output and the bytes after the end of the stream.
pub(crate) fn decode_one<'a>(
    engine: &mut dyn Decode,
    data: &'a [u8],
    out: &mut Vec<u8>,
    limit: usize,
    op: &str,
) -> Result<&'a [u8], Error> {
    let (used, ended) = engine.feed(data, out, limit, op)?;
    if !ended {
        return Err(Error::new(Kind::Decode, op, "incomplete or truncated stream"));
    }
    Ok(data.get(used..).unwrap_or_default())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct CompressorState {
    engine: Box<dyn Encode>,
    codec: &'static str,
    finished: bool,
}

/// A streaming compressor handle (`zlib::compressor()`…); clones share state.
#[derive(Clone)]
pub struct Compressor(Arc<Mutex<CompressorState>>);

impl Compressor {
    /// Wrap a compression engine of the codec named `codec`.
    pub(crate) fn new(codec: &'static str, engine: Box<dyn Encode>) -> Self {
        Self(Arc::new(Mutex::new(CompressorState { engine, codec, finished: false })))
    }

    fn feed(&self, chunk: &[u8]) -> Result<Blob, Error> {
        let mut st = lock(&self.0);
        let op = format!("{}::compressor.feed", st.codec);
        if st.finished {
            return Err(Error::value(op, "the stream was already finished by flush()"));
        }
        let mut out = Blob::new();
        st.engine.feed(chunk, &mut out, &op)?;
        Ok(out)
    }

    fn flush(&self, mode: &str) -> Result<Blob, Error> {
        let mut st = lock(&self.0);
        let op = format!("{}::compressor.flush", st.codec);
        let mode = FlushMode::parse(mode, &op)?;
        let mut out = Blob::new();
        if st.finished {
            return Ok(out);
        }
        st.engine.flush(mode, &mut out, &op)?;
        st.finished = mode == FlushMode::Finish;
        Ok(out)
    }
}

struct DecompressorState {
    engine: Box<dyn Decode>,
    codec: &'static str,
    max_size: usize,
    eof: bool,
    unused: Blob,
}

/// A streaming decompressor handle (`zlib::decompressor()`…); clones share state.
#[derive(Clone)]
pub struct Decompressor(Arc<Mutex<DecompressorState>>);

impl Decompressor {
    /// Wrap a decompression engine of the codec named `codec`, producing at
    /// most `max_size` bytes per `feed`.
    pub(crate) fn new(codec: &'static str, engine: Box<dyn Decode>, max_size: usize) -> Self {
        Self(Arc::new(Mutex::new(DecompressorState { engine, codec, max_size, eof: false, unused: Blob::new() })))
    }

    fn feed(&self, chunk: &[u8]) -> Result<Blob, Error> {
        let mut guard = lock(&self.0);
        let st = &mut *guard;
        let mut out = Blob::new();
        if st.eof {
            st.unused.extend_from_slice(chunk);
            return Ok(out);
        }
        let op = format!("{}::decompressor.feed", st.codec);
        let (used, ended) = st.engine.feed(chunk, &mut out, st.max_size, &op)?;
        if ended {
            st.eof = true;
            st.unused.extend_from_slice(chunk.get(used..).unwrap_or_default());
        }
        Ok(out)
    }
}

/// The `.feed`, `.flush`, `.eof` and `.unused_data` of the streaming handles,
/// installed with every compression namespace.
#[must_use]
pub(crate) fn stream_module() -> rhai::Module {
    exported_module!(stream_api)
}

#[export_module]
mod stream_api {
    use crate::bytes::data_arg;
    use crate::error::NativeResult;

    /// A streaming compressor from `zlib::compressor`, `gzip::compressor` or `zstd::compressor`.
    pub type Compressor = super::Compressor;
    /// A streaming decompressor from `zlib::decompressor`, `gzip::decompressor` or `zstd::decompressor`.
    pub type Decompressor = super::Decompressor;

    /// Compress a chunk (blob or string); returns the compressed bytes ready so far
    /// (often empty: the compressor buffers).
    ///
    /// ```rhai
    /// let c = zlib::compressor();
    /// let out = c.feed("hello ");
    /// out += c.feed("world");
    /// out += c.flush();
    /// print(zlib::decompress(out).as_string());   // hello world
    /// ```
    #[rhai_fn(global, name = "feed", return_raw, pure)]
    pub fn compressor_feed(c: &mut Compressor, chunk: Dynamic) -> NativeResult<Blob> {
        let data = data_arg(&chunk, "compressor.feed")?;
        Ok(c.feed(&data)?)
    }

    /// Finish the stream: returns the remaining compressed bytes and trailer.
    /// Feeding after this is a `value` error.
    ///
    /// ```rhai
    /// let c = zstd::compressor(3);
    /// let frame = c.feed("data") + c.flush();
    /// ```
    #[rhai_fn(global, name = "flush", return_raw, pure)]
    pub fn compressor_finish(c: &mut Compressor) -> NativeResult<Blob> {
        Ok(c.flush("finish")?)
    }

    /// Flush with a mode: `"sync"` emits everything so far and keeps the
    /// stream open (for request/response protocols), `"full"` also resets
    /// the history (deflate), `"finish"` ends the stream.
    ///
    /// ```rhai
    /// let c = zlib::compressor(6, -15);
    /// let d = zlib::decompressor(-15);
    /// let packet = c.feed("ping") + c.flush("sync");
    /// print(d.feed(packet).as_string());   // ping
    /// ```
    #[rhai_fn(global, name = "flush", return_raw, pure)]
    pub fn compressor_flush(c: &mut Compressor, mode: &str) -> NativeResult<Blob> {
        Ok(c.flush(mode)?)
    }

    /// Decompress a chunk (blob or string); returns the bytes decompressed
    /// from it. Bytes after the end of the stream are kept in `.unused_data`.
    /// A `decode` error for corrupt data; a `limit` error if one feed would
    /// produce more than `max_size` bytes.
    ///
    /// ```rhai
    /// let d = zlib::decompressor();
    /// let data = zlib::compress("hi");
    /// let text = d.feed(data.extract(0, 3)) + d.feed(data.extract(3));
    /// print(text.as_string());   // hi
    /// ```
    #[rhai_fn(global, name = "feed", return_raw, pure)]
    pub fn decompressor_feed(d: &mut Decompressor, chunk: Dynamic) -> NativeResult<Blob> {
        let data = data_arg(&chunk, "decompressor.feed")?;
        Ok(d.feed(&data)?)
    }

    /// Return output still held back; empty in practice, since `feed`
    /// returns everything it can. Kept for code written against Python's
    /// `decompressobj().flush()`.
    ///
    /// ```rhai
    /// let d = zlib::decompressor();
    /// let rest = d.flush();
    /// ```
    #[rhai_fn(global, name = "flush", pure)]
    pub fn decompressor_flush(d: &mut Decompressor) -> Blob {
        let _ = d;
        Blob::new()
    }

    /// `true` once the end of the compressed stream has been reached.
    ///
    /// ```rhai
    /// let d = zlib::decompressor();
    /// d.feed(zlib::compress("x"));
    /// print(d.eof);   // true
    /// ```
    #[rhai_fn(get = "eof", pure)]
    pub fn decompressor_eof(d: &mut Decompressor) -> bool {
        super::lock(&d.0).eof
    }

    /// The bytes fed after the end of the compressed stream (the start of
    /// whatever follows it on the wire); empty until `.eof`.
    ///
    /// ```rhai
    /// let d = zlib::decompressor();
    /// d.feed(zlib::compress("x") + "NEXT".to_blob());
    /// print(d.unused_data.as_string());   // NEXT
    /// ```
    #[rhai_fn(get = "unused_data", pure)]
    pub fn decompressor_unused(d: &mut Decompressor) -> Blob {
        super::lock(&d.0).unused.clone()
    }
}

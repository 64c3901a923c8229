//! `zlib::` — deflate compression compatible with Python's `zlib` module.
//!
//! `wbits` selects the container exactly as in Python: 8..15 zlib,
//! -9..-15 raw deflate, 25..31 gzip, and for decompression also 0 (zlib,
//! window from the header) and 32 or 40..47 (detect zlib or gzip). The deflate
//! engines here are shared with `gzip::`.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use rhai::plugin::*;
use rhai::{Blob, INT, Map};

use super::{
    Compressor, Decode, Decompressor, Encode, FlushMode, check_limit, corrupt, decode_one, grow, make_room,
    max_size_option,
};
use crate::bytes::data_arg;
use crate::error::{Error, NativeResult};
use crate::runtime;

/// The `zlib::` module (with the streaming handle methods).
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.combine_flatten(super::stream_module());
    m
}

/// The framing around deflate data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Container {
    /// RFC 1950: 2-byte header, Adler-32 trailer.
    Zlib,
    /// RFC 1951 raw deflate, no header.
    Raw,
    /// RFC 1952 gzip member.
    Gzip,
    /// zlib or gzip, told apart by the gzip magic (decompression only).
    Detect,
}

/// Python's default `wbits`: a zlib stream with a 32 KiB window.
pub(crate) const MAX_WBITS: INT = 15;

/// Split a Python `wbits` value into container and window size (8..=15).
///
/// 8 is zlib only, as in Python: compressing uses 9 (zlib's own rule, so the
/// header says 9), and decompressing accepts only a header for 8.
pub(crate) fn parse_wbits(wbits: INT, decompress: bool, op: &str) -> Result<(Container, u8), Error> {
    let (container, bits) = match wbits {
        0 if decompress => (Container::Zlib, 15),
        8..=15 => (Container::Zlib, wbits),
        -15..=-9 => (Container::Raw, -wbits),
        25..=31 => (Container::Gzip, wbits - 16),
        32 if decompress => (Container::Detect, 15),
        40..=47 if decompress => (Container::Detect, wbits - 32),
        _ => {
            let valid = if decompress { "0, 8..15, -9..-15, 25..31, 32 or 40..47" } else { "8..15, -9..-15 or 25..31" };
            return Err(Error::value(op, format!("invalid wbits {wbits} (expected {valid})")));
        }
    };
    // Every arm above yields 8..=15.
    Ok((container, u8::try_from(bits).unwrap_or(15)))
}

/// Check a Python compression level: -1 (default, 6) or 0..9.
pub(crate) fn parse_level(level: INT, op: &str) -> Result<Compression, Error> {
    match level {
        -1 => Ok(Compression::default()),
        0..=9 => Ok(Compression::new(u32::try_from(level).unwrap_or(6))),
        _ => Err(Error::value(op, format!("invalid compression level {level} (expected -1 or 0..9)"))),
    }
}

/// A deflate compressor.
pub(crate) struct Deflate(Compress);

impl Deflate {
    /// A compressor writing `container` (not `Detect`) with a `2^bits` window.
    pub(crate) fn new(level: Compression, container: Container, bits: u8) -> Self {
        Self(match container {
            Container::Gzip => Compress::new_gzip(level, bits),
            Container::Raw => Compress::new_with_window_bits(level, false, bits),
            // zlib itself turns a window of 2^8 into 2^9 for the zlib container.
            Container::Zlib | Container::Detect => Compress::new_with_window_bits(level, true, bits.max(9)),
        })
    }

    fn run(&mut self, input: &[u8], flush: FlushCompress, out: &mut Vec<u8>, op: &str) -> Result<(), Error> {
        let mut pos = 0;
        loop {
            grow(out);
            let (in_before, out_before) = (self.0.total_in(), out.len());
            let status = self
                .0
                .compress_vec(input.get(pos..).unwrap_or_default(), out, flush)
                .map_err(|e| Error::value(op, format!("compression failed: {e}")))?;
            pos += usize::try_from(self.0.total_in() - in_before).unwrap_or(0);
            let stalled = self.0.total_in() == in_before && out.len() == out_before;
            // zlib's rule: the call is complete once it leaves output room unused.
            if status == Status::StreamEnd || (pos >= input.len() && out.len() < out.capacity()) || stalled {
                return Ok(());
            }
        }
    }

    /// Compress all of `data` in one go.
    pub(crate) fn compress_all(mut self, data: &[u8], op: &str) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        self.run(data, FlushCompress::Finish, &mut out, op)?;
        Ok(out)
    }
}

impl Encode for Deflate {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, op: &str) -> Result<(), Error> {
        self.run(input, FlushCompress::None, out, op)
    }

    fn flush(&mut self, mode: FlushMode, out: &mut Vec<u8>, op: &str) -> Result<(), Error> {
        let flush = match mode {
            FlushMode::Sync => FlushCompress::Sync,
            FlushMode::Full => FlushCompress::Full,
            FlushMode::Finish => FlushCompress::Finish,
        };
        self.run(&[], flush, out, op)
    }
}

/// A deflate decompressor; in `Detect` mode it waits for two bytes to tell
/// gzip (magic `1f 8b`) from zlib, as zlib's own detection does.
pub(crate) enum Inflate {
    /// Container not known yet: the bytes seen so far and the window size.
    Detect(Vec<u8>, u8),
    /// A zlib stream for a 256-byte window (`wbits` 8), whose header is not
    /// seen yet; flate2 only takes 9..15, and a 512-byte window reads it.
    Small,
    /// Decompressing.
    Ready(Decompress),
}

impl Inflate {
    /// A decompressor for `container` with a `2^bits` window.
    pub(crate) fn new(container: Container, bits: u8) -> Self {
        match container {
            Container::Zlib if bits < 9 => Self::Small,
            Container::Zlib => Self::Ready(Decompress::new_with_window_bits(true, bits)),
            Container::Raw => Self::Ready(Decompress::new_with_window_bits(false, bits)),
            // A gzip header names no window; flate2 takes 9..15.
            Container::Gzip => Self::Ready(Decompress::new_gzip(bits.max(9))),
            Container::Detect => Self::Detect(Vec::new(), bits),
        }
    }
}

/// Run `z` over `input`; see [`Decode::feed`].
fn inflate(
    z: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
    op: &str,
) -> Result<(usize, bool), Error> {
    let (start_in, base) = (z.total_in(), out.len());
    loop {
        make_room(out, base, limit, op)?;
        let used = usize::try_from(z.total_in() - start_in).unwrap_or(usize::MAX);
        let rest = input.get(used..).unwrap_or_default();
        let out_before = out.len();
        let status = z.decompress_vec(rest, out, FlushDecompress::None).map_err(|e| corrupt(op, e))?;
        let used_now = usize::try_from(z.total_in() - start_in).unwrap_or(usize::MAX);
        if status == Status::StreamEnd {
            check_limit(out, base, limit, op)?;
            return Ok((used_now, true));
        }
        let stalled = used_now == used && out.len() == out_before;
        if (used_now >= input.len() && out.len() < out.capacity()) || (stalled && out.len() < out.capacity()) {
            return Ok((used_now, false));
        }
    }
}

impl Decode for Inflate {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize, op: &str) -> Result<(usize, bool), Error> {
        let (held, buffered, bits) = match self {
            Self::Ready(z) => return inflate(z, input, out, limit, op),
            Self::Small => {
                let Some(&cmf) = input.first() else { return Ok((0, false)) };
                // The header's CINFO (window size - 8) must be 0, as zlib checks.
                if cmf >> 4 != 0 {
                    return Err(corrupt(op, "invalid window size"));
                }
                *self = Self::Ready(Decompress::new_with_window_bits(true, 9));
                return self.feed(input, out, limit, op);
            }
            Self::Detect(seen, bits) => {
                let held = seen.len();
                seen.extend_from_slice(input);
                if seen.len() < 2 && seen.first().is_none_or(|&b| b == 0x1f) {
                    return Ok((input.len(), false));
                }
                (held, std::mem::take(seen), *bits)
            }
        };
        let container = if buffered.starts_with(&[0x1f, 0x8b]) { Container::Gzip } else { Container::Zlib };
        *self = Self::new(container, bits);
        let (used, ended) = self.feed(&buffered, out, limit, op)?;
        Ok((used.saturating_sub(held), ended))
    }
}

fn compress_with(data: &Dynamic, level: INT, wbits: INT) -> NativeResult<Blob> {
    const OP: &str = "zlib::compress";
    let (container, bits) = parse_wbits(wbits, false, OP)?;
    let engine = Deflate::new(parse_level(level, OP)?, container, bits);
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(16), move || engine.compress_all(&data, OP))
}

fn decompress_with(data: &Dynamic, wbits: INT, opts: &Map) -> NativeResult<Blob> {
    const OP: &str = "zlib::decompress";
    let (container, bits) = parse_wbits(wbits, true, OP)?;
    let limit = max_size_option(opts, OP)?;
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(16), move || {
        let mut out = Blob::new();
        decode_one(&mut Inflate::new(container, bits), &data, &mut out, limit, OP).map(|_| out)
    })
}

fn decompressor_with(wbits: INT, opts: &Map) -> NativeResult<Decompressor> {
    const OP: &str = "zlib::decompressor";
    let (container, bits) = parse_wbits(wbits, true, OP)?;
    let engine = Box::new(Inflate::new(container, bits));
    Ok(Decompressor::new("zlib", engine, max_size_option(opts, OP)?))
}

#[export_module]
mod api {
    use super::{Blob, Compressor, Decompressor, INT, Map};
    use crate::error::NativeResult;

    /// Compress data (blob or string) into a zlib stream at the default level (6).
    ///
    /// ```rhai
    /// let z = zlib::compress("hello hello hello");
    /// print(zlib::decompress(z).as_string());
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress(data: Dynamic) -> NativeResult<Blob> {
        super::compress_with(&data, -1, super::MAX_WBITS)
    }

    /// Compress data at `level` (-1 default, 0 store … 9 best).
    /// An out-of-range level is a `value` error.
    ///
    /// ```rhai
    /// let z = zlib::compress("aaaaaaaaaaaaaaaa", 9);
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress_level(data: Dynamic, level: INT) -> NativeResult<Blob> {
        super::compress_with(&data, level, super::MAX_WBITS)
    }

    /// Compress data at `level` into the container `wbits` selects:
    /// 8..15 zlib, -9..-15 raw deflate, 25..31 gzip (as Python's `compressobj`).
    ///
    /// ```rhai
    /// let raw = zlib::compress("data", 6, -15);
    /// print(zlib::decompress(raw, -15).as_string());
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress_wbits(data: Dynamic, level: INT, wbits: INT) -> NativeResult<Blob> {
        super::compress_with(&data, level, wbits)
    }

    /// Decompress a whole zlib stream; bytes after its end are ignored (as in
    /// Python). `decode` error if corrupt or truncated, `limit` error past 256 MiB.
    ///
    /// ```rhai
    /// let text = zlib::decompress(zlib::compress("hi")).as_string();
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress(data: Dynamic) -> NativeResult<Blob> {
        super::decompress_with(&data, super::MAX_WBITS, &Map::new())
    }

    /// Decompress with Python's `wbits`: 0 or 8..15 zlib, -9..-15 raw deflate,
    /// 25..31 gzip, 40..47 detect zlib or gzip. Bad `wbits` is a `value` error.
    ///
    /// ```rhai
    /// let any = zlib::decompress(gzip::compress("x"), 47);
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress_wbits(data: Dynamic, wbits: INT) -> NativeResult<Blob> {
        super::decompress_with(&data, wbits, &Map::new())
    }

    /// Decompress with options: `max_size` caps the output in bytes
    /// (default 256 MiB); more raises a `limit` error.
    ///
    /// ```rhai
    /// let small = zlib::decompress(zlib::compress("abc"), #{max_size: 1024});
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress_opts(data: Dynamic, opts: Map) -> NativeResult<Blob> {
        super::decompress_with(&data, super::MAX_WBITS, &opts)
    }

    /// Decompress with `wbits` and options (`max_size`).
    ///
    /// ```rhai
    /// let out = zlib::decompress(zlib::compress("abc", 6, -15), -15, #{max_size: 10});
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress_wbits_opts(data: Dynamic, wbits: INT, opts: Map) -> NativeResult<Blob> {
        super::decompress_with(&data, wbits, &opts)
    }

    /// A streaming compressor writing a zlib stream at the default level;
    /// see `.feed(chunk)` and `.flush()`.
    ///
    /// ```rhai
    /// let c = zlib::compressor();
    /// let z = c.feed("part one, ") + c.feed("part two") + c.flush();
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor() -> NativeResult<Compressor> {
        compressor_wbits(-1, super::MAX_WBITS)
    }

    /// A streaming zlib compressor at `level` (-1, 0..9).
    ///
    /// ```rhai
    /// let c = zlib::compressor(9);
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor_level(level: INT) -> NativeResult<Compressor> {
        compressor_wbits(level, super::MAX_WBITS)
    }

    /// A streaming compressor at `level` writing the container `wbits`
    /// selects (8..15 zlib, -9..-15 raw, 25..31 gzip).
    ///
    /// ```rhai
    /// let c = zlib::compressor(6, -15);   // raw deflate, as in WebSocket permessage-deflate
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor_wbits(level: INT, wbits: INT) -> NativeResult<Compressor> {
        const OP: &str = "zlib::compressor";
        let (container, bits) = super::parse_wbits(wbits, false, OP)?;
        let engine = super::Deflate::new(super::parse_level(level, OP)?, container, bits);
        Ok(Compressor::new("zlib", Box::new(engine)))
    }

    /// A streaming decompressor for a zlib stream; see `.feed(chunk)`, `.eof`
    /// and `.unused_data`. Each feed may produce at most 256 MiB.
    ///
    /// ```rhai
    /// let d = zlib::decompressor();
    /// let text = d.feed(zlib::compress("hello")).as_string();
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor() -> NativeResult<Decompressor> {
        super::decompressor_with(super::MAX_WBITS, &Map::new())
    }

    /// A streaming decompressor for the container `wbits` selects
    /// (0, 8..15, -9..-15, 25..31, 40..47).
    ///
    /// ```rhai
    /// let d = zlib::decompressor(-15);
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor_wbits(wbits: INT) -> NativeResult<Decompressor> {
        super::decompressor_with(wbits, &Map::new())
    }

    /// A streaming zlib decompressor with options: `max_size` caps what one
    /// `.feed` may produce (default 256 MiB; more is a `limit` error).
    ///
    /// ```rhai
    /// let d = zlib::decompressor(#{max_size: 65536});
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor_opts(opts: Map) -> NativeResult<Decompressor> {
        super::decompressor_with(super::MAX_WBITS, &opts)
    }

    /// A streaming decompressor with `wbits` and options (`max_size`).
    ///
    /// ```rhai
    /// let d = zlib::decompressor(47, #{max_size: 65536});
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor_wbits_opts(wbits: INT, opts: Map) -> NativeResult<Decompressor> {
        super::decompressor_with(wbits, &opts)
    }
}

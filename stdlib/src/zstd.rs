//! `zstd::` — Zstandard frames, compatible with the `zstd` command-line tool
//! (and Python 3.14's `compression.zstd`).

use ::zstd::stream::raw::{Decoder, Encoder, InBuffer, Operation, OutBuffer};
use rhai::plugin::*;
use rhai::{Blob, INT, Map};

use super::{
    Compressor, Decode, Decompressor, Encode, FlushMode, check_limit, corrupt, grow, make_room, max_size_option,
};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};
use crate::runtime;

/// The `zstd::` module (with the streaming handle methods).
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.combine_flatten(super::stream_module());
    m
}

/// Check a zstd level: 1..22, negative for faster modes, 0 for the default (3).
fn parse_level(level: INT, op: &str) -> Result<i32, Error> {
    let range = ::zstd::compression_level_range();
    i32::try_from(level).ok().filter(|l| range.contains(l)).ok_or_else(|| {
        Error::value(op, format!("invalid compression level {level} (expected {}..{})", range.start(), range.end()))
    })
}

/// A zstd frame compressor.
struct ZstdEncode(Encoder<'static>);

impl ZstdEncode {
    fn new(level: i32, op: &str) -> Result<Self, Error> {
        Encoder::new(level).map(Self).map_err(|e| Error::value(op, e.to_string()))
    }
}

impl Encode for ZstdEncode {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, op: &str) -> Result<(), Error> {
        let mut inb = InBuffer::around(input);
        while inb.pos < input.len() {
            grow(out);
            let mut outb = OutBuffer::around_pos(out, out.len());
            self.0.run(&mut inb, &mut outb).map_err(|e| Error::value(op, format!("compression failed: {e}")))?;
        }
        Ok(())
    }

    fn flush(&mut self, mode: FlushMode, out: &mut Vec<u8>, op: &str) -> Result<(), Error> {
        loop {
            grow(out);
            let mut outb = OutBuffer::around_pos(out, out.len());
            let pending = match mode {
                FlushMode::Sync | FlushMode::Full => self.0.flush(&mut outb),
                FlushMode::Finish => self.0.finish(&mut outb, true),
            }
            .map_err(|e| Error::value(op, format!("compression failed: {e}")))?;
            if pending == 0 {
                return Ok(());
            }
        }
    }
}

/// A zstd frame decompressor; stops at the end of one frame.
struct ZstdDecode(Decoder<'static>);

impl ZstdDecode {
    fn new(op: &str) -> Result<Self, Error> {
        Decoder::new().map(Self).map_err(|e| Error::value(op, e.to_string()))
    }
}

impl Decode for ZstdDecode {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize, op: &str) -> Result<(usize, bool), Error> {
        let base = out.len();
        let mut inb = InBuffer::around(input);
        loop {
            make_room(out, base, limit, op)?;
            let before = (inb.pos, out.len());
            // `run` returns 0 exactly when a frame is complete and flushed.
            let hint = self.0.run(&mut inb, &mut OutBuffer::around_pos(out, out.len())).map_err(|e| corrupt(op, e))?;
            if hint == 0 {
                check_limit(out, base, limit, op)?;
                return Ok((inb.pos, true));
            }
            let stalled = before == (inb.pos, out.len());
            if out.len() < out.capacity() && (inb.pos >= input.len() || stalled) {
                return Ok((inb.pos, false));
            }
        }
    }
}

/// Decompress every frame in `data` (like `zstd -d` on concatenated frames).
fn decompress_frames(data: &[u8], limit: usize, op: &str) -> Result<Vec<u8>, Error> {
    if data.is_empty() {
        return Err(Error::new(Kind::Decode, op, "no zstd frame in empty input"));
    }
    let mut engine = ZstdDecode::new(op)?;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let room = limit.saturating_sub(out.len());
        rest = super::decode_one(&mut engine, rest, &mut out, room, op)?;
    }
    Ok(out)
}

fn compress_with(data: &Dynamic, level: INT) -> NativeResult<Blob> {
    const OP: &str = "zstd::compress";
    let level = parse_level(level, OP)?;
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(4), move || {
        ::zstd::bulk::compress(&data, level).map_err(|e| Error::value(OP, e.to_string()))
    })
}

fn decompress_with(data: &Dynamic, opts: &Map) -> NativeResult<Blob> {
    const OP: &str = "zstd::decompress";
    let limit = max_size_option(opts, OP)?;
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(16), move || decompress_frames(&data, limit, OP))
}

fn decompressor_with(opts: &Map) -> NativeResult<Decompressor> {
    const OP: &str = "zstd::decompressor";
    let limit = max_size_option(opts, OP)?;
    Ok(Decompressor::new("zstd", Box::new(ZstdDecode::new(OP)?), limit))
}

#[export_module]
mod api {
    use super::{Blob, Compressor, Decompressor, INT, Map};
    use crate::error::NativeResult;

    /// Compress data (blob or string) into one zstd frame at the default level (3).
    ///
    /// ```rhai
    /// let z = zstd::compress("hello hello hello");
    /// print(zstd::decompress(z).as_string());
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress(data: Dynamic) -> NativeResult<Blob> {
        super::compress_with(&data, 0)
    }

    /// Compress data at `level`: 1..22 (higher is smaller and slower),
    /// negative for faster modes, 0 for the default. Out of range is a `value` error.
    ///
    /// ```rhai
    /// let z = zstd::compress("aaaaaaaaaaaaaaaa", 19);
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress_level(data: Dynamic, level: INT) -> NativeResult<Blob> {
        super::compress_with(&data, level)
    }

    /// Decompress zstd data: every frame, concatenated. `decode` error for
    /// corrupt, truncated or empty input or trailing garbage; `limit` error past 256 MiB.
    ///
    /// ```rhai
    /// let text = zstd::decompress(zstd::compress("hi")).as_string();
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress(data: Dynamic) -> NativeResult<Blob> {
        super::decompress_with(&data, &Map::new())
    }

    /// Decompress with options: `max_size` caps the output in bytes
    /// (default 256 MiB); more is a `limit` error.
    ///
    /// ```rhai
    /// let out = zstd::decompress(zstd::compress("abc"), #{max_size: 100});
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress_opts(data: Dynamic, opts: Map) -> NativeResult<Blob> {
        super::decompress_with(&data, &opts)
    }

    /// A streaming compressor writing one zstd frame at the default level;
    /// see `.feed(chunk)` and `.flush()` (`.flush("sync")` emits a block
    /// boundary and keeps the frame open).
    ///
    /// ```rhai
    /// let c = zstd::compressor();
    /// let z = c.feed("part one, ") + c.feed("part two") + c.flush();
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor() -> NativeResult<Compressor> {
        compressor_level(0)
    }

    /// A streaming zstd compressor at `level`.
    ///
    /// ```rhai
    /// let c = zstd::compressor(10);
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor_level(level: INT) -> NativeResult<Compressor> {
        const OP: &str = "zstd::compressor";
        let engine = super::ZstdEncode::new(super::parse_level(level, OP)?, OP)?;
        Ok(Compressor::new("zstd", Box::new(engine)))
    }

    /// A streaming decompressor for one zstd frame; `.eof` turns true at its
    /// end and later bytes go to `.unused_data`.
    ///
    /// ```rhai
    /// let d = zstd::decompressor();
    /// let text = d.feed(zstd::compress("hi")).as_string();
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor() -> NativeResult<Decompressor> {
        super::decompressor_with(&Map::new())
    }

    /// A streaming zstd decompressor with options: `max_size` caps what one
    /// `.feed` may produce (default 256 MiB).
    ///
    /// ```rhai
    /// let d = zstd::decompressor(#{max_size: 1048576});
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor_opts(opts: Map) -> NativeResult<Decompressor> {
        super::decompressor_with(&opts)
    }
}

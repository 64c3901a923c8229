//! `gzip::` — gzip files and streams (RFC 1952), compatible with Python's
//! `gzip.compress` / `gzip.decompress`, built on the deflate engines of
//! `zlib::`.

use rhai::plugin::*;
use rhai::{Blob, INT, Map};

use super::zlib::{Container, Deflate, Inflate, parse_level};
use super::{Compressor, Decompressor, decode_one, max_size_option};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};
use crate::runtime;

/// The `gzip::` module (with the streaming handle methods).
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.combine_flatten(super::stream_module());
    m
}

/// Python's `gzip.compress` default level.
const DEFAULT_LEVEL: INT = 9;

/// Window size of gzip members: 32 KiB.
const WINDOW_BITS: u8 = 15;

/// Decompress every gzip member in `data`, as Python's `gzip.decompress`
/// does: members follow each other, zero padding between them is skipped,
/// and anything else after a member is a `decode` error.
fn decompress_members(data: &[u8], limit: usize, op: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if !rest.starts_with(&[0x1f, 0x8b]) {
            let head: Vec<u8> = rest.iter().copied().take(2).collect();
            return Err(Error::new(Kind::Decode, op, format!("not a gzipped file (starts with {head:02x?})")));
        }
        let room = limit.saturating_sub(out.len());
        rest = decode_one(&mut Inflate::new(Container::Gzip, WINDOW_BITS), rest, &mut out, room, op)?;
        let padding = rest.iter().take_while(|&&b| b == 0).count();
        rest = rest.get(padding..).unwrap_or_default();
    }
    Ok(out)
}

fn compress_with(data: &Dynamic, level: INT) -> NativeResult<Blob> {
    const OP: &str = "gzip::compress";
    let engine = Deflate::new(parse_level(level, OP)?, Container::Gzip, WINDOW_BITS);
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(16), move || engine.compress_all(&data, OP))
}

fn decompress_with(data: &Dynamic, opts: &Map) -> NativeResult<Blob> {
    const OP: &str = "gzip::decompress";
    let limit = max_size_option(opts, OP)?;
    let data = data_arg(data, OP)?.into_owned();
    runtime::offload(OP, data.len().saturating_mul(16), move || decompress_members(&data, limit, OP))
}

fn decompressor_with(opts: &Map) -> NativeResult<Decompressor> {
    let limit = max_size_option(opts, "gzip::decompressor")?;
    let engine = Inflate::new(Container::Gzip, WINDOW_BITS);
    Ok(Decompressor::new("gzip", Box::new(engine), limit))
}

#[export_module]
mod api {
    use super::{Blob, Compressor, Decompressor, INT, Map};
    use crate::error::NativeResult;

    /// Compress data (blob or string) into one gzip member at level 9
    /// (Python's default for `gzip.compress`).
    ///
    /// ```rhai
    /// let gz = gzip::compress("hello");
    /// print(gzip::decompress(gz).as_string());
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress(data: Dynamic) -> NativeResult<Blob> {
        super::compress_with(&data, super::DEFAULT_LEVEL)
    }

    /// Compress data into a gzip member at `level` (-1, 0..9).
    ///
    /// ```rhai
    /// let gz = gzip::compress("hello", 1);
    /// ```
    #[rhai_fn(name = "compress", return_raw)]
    pub fn compress_level(data: Dynamic, level: INT) -> NativeResult<Blob> {
        super::compress_with(&data, level)
    }

    /// Decompress gzip data: all members, concatenated (zero padding between
    /// members is skipped). Empty input gives an empty blob. `decode` error
    /// for bad magic, corrupt or truncated data; `limit` error past 256 MiB.
    ///
    /// ```rhai
    /// let both = gzip::decompress(gzip::compress("a") + gzip::compress("b"));
    /// print(both.as_string());   // ab
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress(data: Dynamic) -> NativeResult<Blob> {
        super::decompress_with(&data, &Map::new())
    }

    /// Decompress gzip data with options: `max_size` caps the total output
    /// in bytes (default 256 MiB); more is a `limit` error.
    ///
    /// ```rhai
    /// let out = gzip::decompress(gzip::compress("abc"), #{max_size: 100});
    /// ```
    #[rhai_fn(name = "decompress", return_raw)]
    pub fn decompress_opts(data: Dynamic, opts: Map) -> NativeResult<Blob> {
        super::decompress_with(&data, &opts)
    }

    /// A streaming compressor writing one gzip member at level 9; see
    /// `.feed(chunk)` and `.flush()`.
    ///
    /// ```rhai
    /// let c = gzip::compressor();
    /// let gz = c.feed("log line\n") + c.flush();
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor() -> NativeResult<Compressor> {
        compressor_level(super::DEFAULT_LEVEL)
    }

    /// A streaming gzip compressor at `level` (-1, 0..9).
    ///
    /// ```rhai
    /// let c = gzip::compressor(6);
    /// ```
    #[rhai_fn(name = "compressor", return_raw)]
    pub fn compressor_level(level: INT) -> NativeResult<Compressor> {
        let level = super::parse_level(level, "gzip::compressor")?;
        let engine = super::Deflate::new(level, super::Container::Gzip, super::WINDOW_BITS);
        Ok(Compressor::new("gzip", Box::new(engine)))
    }

    /// A streaming decompressor for one gzip member; `.eof` turns true at its
    /// end and later bytes (e.g. a next member) go to `.unused_data`.
    ///
    /// ```rhai
    /// let d = gzip::decompressor();
    /// let text = d.feed(gzip::compress("hi")).as_string();
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor() -> NativeResult<Decompressor> {
        super::decompressor_with(&Map::new())
    }

    /// A streaming gzip decompressor with options: `max_size` caps what one
    /// `.feed` may produce (default 256 MiB).
    ///
    /// ```rhai
    /// let d = gzip::decompressor(#{max_size: 1048576});
    /// ```
    #[rhai_fn(name = "decompressor", return_raw)]
    pub fn decompressor_opts(opts: Map) -> NativeResult<Decompressor> {
        super::decompressor_with(&opts)
    }
}

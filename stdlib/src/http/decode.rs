//! Response body decompression (`Content-Encoding: gzip, deflate, zstd, br`),
//! fed chunk by chunk as the body arrives so a streamed download is never
//! whole in memory, and bounded so a small bomb cannot expand without limit.

use std::io::Write;

use crate::error::{Error, Kind};

/// Input is fed to a decoder this many bytes at a time, and the output is
/// measured after each piece: a piece of any format expands to a few
/// megabytes at most before the size limit is checked again.
const PIECE: usize = 1024;

/// One content coding's push decoder, writing into a `Vec`.
enum Codec {
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zlib(flate2::write::ZlibDecoder<Vec<u8>>),
    Raw(flate2::write::DeflateDecoder<Vec<u8>>),
    /// `deflate` before its first two bytes tell zlib-wrapped from raw
    /// (servers send both; browsers and urllib3 accept both).
    Deflate(Vec<u8>),
    Zstd(Box<zstd::stream::write::Decoder<'static, Vec<u8>>>),
    Br(Box<brotli::DecompressorWriter<Vec<u8>>>),
}

impl Codec {
    fn new(name: &str) -> Option<Self> {
        Some(match name {
            "gzip" | "x-gzip" => Self::Gzip(flate2::write::GzDecoder::new(Vec::new())),
            "deflate" => Self::Deflate(Vec::new()),
            "zstd" => Self::Zstd(Box::new(zstd::stream::write::Decoder::new(Vec::new()).ok()?)),
            "br" => Self::Br(Box::new(brotli::DecompressorWriter::new(Vec::new(), 4096))),
            _ => return None,
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Deflate(head) => {
                head.extend_from_slice(data);
                if head.len() < 2 {
                    return Ok(());
                }
                let zlib = head[0] & 0x0f == 8 && u16::from_be_bytes([head[0], head[1]]) % 31 == 0;
                let head = std::mem::take(head);
                *self = if zlib {
                    Self::Zlib(flate2::write::ZlibDecoder::new(Vec::new()))
                } else {
                    Self::Raw(flate2::write::DeflateDecoder::new(Vec::new()))
                };
                self.write(&head)
            }
            Self::Gzip(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Zlib(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Raw(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Zstd(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Br(d) => d.write_all(data).and_then(|()| d.flush()),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Self::Deflate(head) if head.is_empty() => Ok(()),
            Self::Deflate(_) => Err(std::io::Error::other("deflate stream cut short")),
            Self::Gzip(d) => d.try_finish(),
            Self::Zlib(d) => d.try_finish(),
            Self::Raw(d) => d.try_finish(),
            Self::Zstd(d) => d.flush(),
            Self::Br(d) => d.close(),
        }
    }

    fn take(&mut self) -> Vec<u8> {
        match self {
            Self::Deflate(_) => Vec::new(),
            Self::Gzip(d) => std::mem::take(d.get_mut()),
            Self::Zlib(d) => std::mem::take(d.get_mut()),
            Self::Raw(d) => std::mem::take(d.get_mut()),
            Self::Zstd(d) => std::mem::take(d.get_mut()),
            Self::Br(d) => std::mem::take(d.get_mut()),
        }
    }
}

/// The decoders of a response's `Content-Encoding` list, applied last
/// first, with a cap on the decoded size.
pub struct Decoder {
    codecs: Vec<Codec>,
    names: String,
    max: usize,
    produced: usize,
}

impl Decoder {
    /// Decoders for `content_encoding` (`"gzip"`, `"deflate, br"`…), or
    /// `None` when there is nothing to undo (absent, `identity`) or a coding
    /// is unknown, in which case the body is passed on as it came (as
    /// requests does). `max` bounds the decoded size.
    pub fn new(content_encoding: &str, max: usize) -> Option<Self> {
        let names: Vec<String> = content_encoding
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty() && s != "identity")
            .collect();
        let codecs = names.iter().rev().map(|n| Codec::new(n)).collect::<Option<Vec<_>>>()?;
        (!codecs.is_empty()).then(|| Self { codecs, names: names.join(", "), max, produced: 0 })
    }

    /// Decode the next piece of the body; `last` finishes the streams.
    pub fn feed(&mut self, data: &[u8], last: bool, op: &str) -> Result<Vec<u8>, Error> {
        let mut input = data.to_vec();
        let stages = self.codecs.len();
        for (i, codec) in self.codecs.iter_mut().enumerate() {
            let mut out = Vec::new();
            for piece in input.chunks(PIECE) {
                codec.write(piece).map_err(|e| bad(op, &self.names, &e))?;
                out.extend(codec.take());
                if out.len() > self.max.saturating_sub(self.produced) {
                    return Err(too_big(op, self.max));
                }
            }
            if last {
                codec.finish().map_err(|e| bad(op, &self.names, &e))?;
                out.extend(codec.take());
            }
            if i + 1 == stages && out.len() > self.max.saturating_sub(self.produced) {
                return Err(too_big(op, self.max));
            }
            input = out;
        }
        self.produced += input.len();
        Ok(input)
    }
}

fn bad(op: &str, names: &str, err: &std::io::Error) -> Error {
    Error::new(Kind::Decode, op, format!("cannot decode the {names} body: {err}"))
}

/// The error for a body past the `max_size` limit.
pub fn too_big(op: &str, max: usize) -> Error {
    Error::new(Kind::Limit, op, format!("the response body is larger than max_size ({max} bytes)"))
}

//! `hash::` — message digests, HMAC and checksums, matching Python's
//! `hashlib`, `hmac` and `zlib.crc32` / `zlib.adler32`.
//!
//! Digests are blobs; for hex text, as `hashlib`'s `hexdigest()` gives, use
//! `hex::encode(hash::sha256(data))`.

use hmac::digest::Digest;
use hmac::digest::core_api::BlockSizeUser;
use hmac::{Mac, SimpleHmac};
use rhai::plugin::*;
use rhai::{Blob, INT};

use crate::bytes::data_arg;
use crate::error::{Error, NativeResult};
use crate::runtime;

/// The `hash::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// A digest algorithm scripts can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algo {
    /// MD5 (16 bytes).
    Md5,
    /// SHA-1 (20 bytes).
    Sha1,
    /// SHA-224 (28 bytes).
    Sha224,
    /// SHA-256 (32 bytes).
    Sha256,
    /// SHA-384 (48 bytes).
    Sha384,
    /// SHA-512 (64 bytes).
    Sha512,
}

impl Algo {
    /// The algorithm named `name` (any case, as `hashlib.new` takes it).
    pub fn parse(name: &str, op: &str) -> Result<Self, Error> {
        match name.to_ascii_lowercase().as_str() {
            "md5" => Ok(Self::Md5),
            "sha1" => Ok(Self::Sha1),
            "sha224" => Ok(Self::Sha224),
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            "sha512" => Ok(Self::Sha512),
            _ => Err(Error::value(
                op,
                format!("unknown hash algorithm '{name}' (md5, sha1, sha224, sha256, sha384, sha512)"),
            )),
        }
    }

    /// The digest of `data`.
    #[must_use]
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => md5::Md5::digest(data).to_vec(),
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    /// The HMAC of `data` under `key` (RFC 2104).
    pub fn hmac(self, key: &[u8], data: &[u8], op: &str) -> Result<Vec<u8>, Error> {
        match self {
            Self::Md5 => hmac_with::<md5::Md5>(key, data, op),
            Self::Sha1 => hmac_with::<sha1::Sha1>(key, data, op),
            Self::Sha224 => hmac_with::<sha2::Sha224>(key, data, op),
            Self::Sha256 => hmac_with::<sha2::Sha256>(key, data, op),
            Self::Sha384 => hmac_with::<sha2::Sha384>(key, data, op),
            Self::Sha512 => hmac_with::<sha2::Sha512>(key, data, op),
        }
    }
}

fn hmac_with<D: Digest + BlockSizeUser>(key: &[u8], data: &[u8], op: &str) -> Result<Vec<u8>, Error> {
    // HMAC takes keys of any length, so this error cannot happen in practice.
    let mut mac = <SimpleHmac<D> as hmac::digest::KeyInit>::new_from_slice(key)
        .map_err(|e| Error::value(op, format!("bad HMAC key: {e}")))?;
    mac.update(data);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Python's checksum `value` argument: any integer, taken modulo 2^32.
fn checksum_start(start: INT) -> u32 {
    u32::try_from(start & 0xffff_ffff).unwrap_or(0)
}

/// Hash a data argument of the function named `op` with `algo`; large data
/// is hashed off the event loop, so a deadline or `task.cancel()` stops the
/// call at once (see [`runtime::offload`]).
fn digest_of(algo: Algo, data: &Dynamic, op: &str) -> NativeResult<Blob> {
    let data = data_arg(data, op)?.into_owned();
    runtime::offload(op, data.len(), move || Ok::<_, Error>(algo.digest(&data)))
}

fn crc32_with(data: &Dynamic, start: INT) -> NativeResult<INT> {
    let data = data_arg(data, "hash::crc32")?.into_owned();
    runtime::offload("hash::crc32", data.len(), move || {
        let mut h = crc32fast::Hasher::new_with_initial(checksum_start(start));
        h.update(&data);
        Ok::<_, Error>(INT::from(h.finalize()))
    })
}

fn adler32_with(data: &Dynamic, start: INT) -> NativeResult<INT> {
    let data = data_arg(data, "hash::adler32")?.into_owned();
    runtime::offload("hash::adler32", data.len(), move || {
        let mut h = adler2::Adler32::from_checksum(checksum_start(start));
        h.write_slice(&data);
        Ok::<_, Error>(INT::from(h.checksum()))
    })
}

#[export_module]
mod api {
    use super::{Algo, Blob, INT, NativeResult, adler32_with, crc32_with, data_arg, digest_of, runtime};

    /// MD5 digest (16-byte blob) of data (blob or string).
    ///
    /// ```rhai
    /// print(hex::encode(hash::md5("abc")));   // 900150983cd24fb0d6963f7d28e17f72
    /// ```
    #[rhai_fn(name = "md5", return_raw)]
    pub fn md5(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Md5, &data, "hash::md5")
    }

    /// SHA-1 digest (20-byte blob).
    ///
    /// ```rhai
    /// let d = hash::sha1("abc");
    /// ```
    #[rhai_fn(name = "sha1", return_raw)]
    pub fn sha1(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Sha1, &data, "hash::sha1")
    }

    /// SHA-224 digest (28-byte blob).
    ///
    /// ```rhai
    /// let d = hash::sha224("abc");
    /// ```
    #[rhai_fn(name = "sha224", return_raw)]
    pub fn sha224(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Sha224, &data, "hash::sha224")
    }

    /// SHA-256 digest (32-byte blob).
    ///
    /// ```rhai
    /// let hexdigest = hex::encode(hash::sha256("abc"));
    /// ```
    #[rhai_fn(name = "sha256", return_raw)]
    pub fn sha256(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Sha256, &data, "hash::sha256")
    }

    /// SHA-384 digest (48-byte blob).
    ///
    /// ```rhai
    /// let d = hash::sha384("abc");
    /// ```
    #[rhai_fn(name = "sha384", return_raw)]
    pub fn sha384(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Sha384, &data, "hash::sha384")
    }

    /// SHA-512 digest (64-byte blob).
    ///
    /// ```rhai
    /// let d = hash::sha512("abc");
    /// ```
    #[rhai_fn(name = "sha512", return_raw)]
    pub fn sha512(data: Dynamic) -> NativeResult<Blob> {
        digest_of(Algo::Sha512, &data, "hash::sha512")
    }

    /// Digest with the algorithm named `algo` ("md5", "sha1", "sha224",
    /// "sha256", "sha384", "sha512"; any case), like `hashlib.new(algo, data)`.
    /// An unknown name is a `value` error.
    ///
    /// ```rhai
    /// let d = hash::digest("sha256", "abc");
    /// ```
    #[rhai_fn(name = "digest", return_raw)]
    pub fn digest(algo: &str, data: Dynamic) -> NativeResult<Blob> {
        const OP: &str = "hash::digest";
        digest_of(Algo::parse(algo, OP)?, &data, OP)
    }

    /// HMAC of `data` under `key` (both blob or string) with the digest
    /// `algo`, like `hmac.digest(key, data, algo)`. Unknown `algo` is a `value` error.
    ///
    /// ```rhai
    /// let tag = hash::hmac("sha256", "secret key", "message");
    /// print(tag.len());   // 32
    /// ```
    #[rhai_fn(name = "hmac", return_raw)]
    pub fn hmac(algo: &str, key: Dynamic, data: Dynamic) -> NativeResult<Blob> {
        const OP: &str = "hash::hmac";
        let algo = Algo::parse(algo, OP)?;
        let (key, data) = (data_arg(&key, OP)?.into_owned(), data_arg(&data, OP)?.into_owned());
        runtime::offload(OP, data.len(), move || algo.hmac(&key, &data, OP))
    }

    /// Compare two digests (blobs or strings) in time independent of where
    /// they differ, like `hmac.compare_digest`.
    ///
    /// ```rhai
    /// let ok = hash::compare_digest(hash::hmac("sha256", "k", "m"), hash::hmac("sha256", "k", "m"));
    /// ```
    #[rhai_fn(name = "compare_digest", return_raw)]
    pub fn compare_digest(a: Dynamic, b: Dynamic) -> NativeResult<bool> {
        const OP: &str = "hash::compare_digest";
        let (a, b) = (data_arg(&a, OP)?, data_arg(&b, OP)?);
        let diff = a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        Ok(a.len() == b.len() && diff == 0)
    }

    /// CRC-32 of data as a non-negative integer, like `zlib.crc32(data)`.
    ///
    /// ```rhai
    /// print(hash::crc32("hello"));   // 907060870
    /// ```
    #[rhai_fn(name = "crc32", return_raw)]
    pub fn crc32(data: Dynamic) -> NativeResult<INT> {
        crc32_with(&data, 0)
    }

    /// CRC-32 continuing from `start` (a previous result), like
    /// `zlib.crc32(data, start)`; `start` is taken modulo 2^32.
    ///
    /// ```rhai
    /// let c = hash::crc32("world", hash::crc32("hello "));   // == hash::crc32("hello world")
    /// ```
    #[rhai_fn(name = "crc32", return_raw)]
    pub fn crc32_start(data: Dynamic, start: INT) -> NativeResult<INT> {
        crc32_with(&data, start)
    }

    /// Adler-32 checksum of data, like `zlib.adler32(data)` (starts at 1).
    ///
    /// ```rhai
    /// print(hash::adler32("hello"));   // 103547413
    /// ```
    #[rhai_fn(name = "adler32", return_raw)]
    pub fn adler32(data: Dynamic) -> NativeResult<INT> {
        adler32_with(&data, 1)
    }

    /// Adler-32 continuing from `start`, like `zlib.adler32(data, start)`.
    ///
    /// ```rhai
    /// let a = hash::adler32("world", hash::adler32("hello "));
    /// ```
    #[rhai_fn(name = "adler32", return_raw)]
    pub fn adler32_start(data: Dynamic, start: INT) -> NativeResult<INT> {
        adler32_with(&data, start)
    }
}

//! `base64::` — Base64 text, matching Python's `base64.b64encode` /
//! `urlsafe_b64encode` output (padded).
//!
//! Decoding skips ASCII whitespace (line-wrapped MIME text), accepts input
//! with or without `=` padding, and rejects anything else outside the
//! alphabet with a `decode` error.

use ::base64::Engine as _;
use ::base64::alphabet::{Alphabet, STANDARD, URL_SAFE};
use ::base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rhai::Blob;
use rhai::plugin::*;

use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};

/// The `base64::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// An engine for `alphabet` that writes padding and reads it if present.
/// Trailing bits after the last byte are ignored, as Python does.
const fn engine(alphabet: &Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_encode_padding(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

const STANDARD_ENGINE: GeneralPurpose = engine(&STANDARD);
const URL_SAFE_ENGINE: GeneralPurpose = engine(&URL_SAFE);

fn encode_with(engine: &GeneralPurpose, data: &Dynamic, op: &str) -> Result<String, Error> {
    Ok(engine.encode(data_arg(data, op)?))
}

fn decode_with(engine: &GeneralPurpose, text: &Dynamic, op: &str) -> Result<Blob, Error> {
    let mut compact = data_arg(text, op)?.into_owned();
    compact.retain(|b| !matches!(b, b' ' | b'\t'..=b'\r'));
    engine.decode(&compact).map_err(|e| Error::new(Kind::Decode, op, format!("invalid base64: {e}")))
}

#[export_module]
mod api {
    use super::{Blob, NativeResult, STANDARD_ENGINE, URL_SAFE_ENGINE, decode_with, encode_with};

    /// Base64-encode data (blob or string) with the standard alphabet and
    /// `=` padding, like `base64.b64encode`.
    ///
    /// ```rhai
    /// print(base64::encode("hi?"));   // aGk/
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode(data: Dynamic) -> NativeResult<String> {
        Ok(encode_with(&STANDARD_ENGINE, &data, "base64::encode")?)
    }

    /// Decode standard Base64 text (string or blob) into a blob. Whitespace
    /// is skipped and padding is optional; other bad input is a `decode` error.
    ///
    /// ```rhai
    /// print(base64::decode("aGk/").as_string());   // hi?
    /// ```
    #[rhai_fn(name = "decode", return_raw)]
    pub fn decode(text: Dynamic) -> NativeResult<Blob> {
        Ok(decode_with(&STANDARD_ENGINE, &text, "base64::decode")?)
    }

    /// Base64-encode with the URL-safe alphabet (`-` and `_`), padded, like
    /// `base64.urlsafe_b64encode`.
    ///
    /// ```rhai
    /// print(base64::urlsafe_encode("hi?"));   // aGk_
    /// ```
    #[rhai_fn(name = "urlsafe_encode", return_raw)]
    pub fn urlsafe_encode(data: Dynamic) -> NativeResult<String> {
        Ok(encode_with(&URL_SAFE_ENGINE, &data, "base64::urlsafe_encode")?)
    }

    /// Decode URL-safe Base64 text into a blob; padding is optional (as in
    /// JWTs). Bad input is a `decode` error.
    ///
    /// ```rhai
    /// print(base64::urlsafe_decode("aGk_").as_string());   // hi?
    /// ```
    #[rhai_fn(name = "urlsafe_decode", return_raw)]
    pub fn urlsafe_decode(text: Dynamic) -> NativeResult<Blob> {
        Ok(decode_with(&URL_SAFE_ENGINE, &text, "base64::urlsafe_decode")?)
    }
}

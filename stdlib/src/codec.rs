//! Codecs and digests: the `json::`, `pickle::`, `base64::`, `hex::` and
//! `hash::` namespaces, one file each.

#[path = "base64.rs"]
pub mod base64;
#[path = "hash.rs"]
pub mod hash;
#[path = "hex.rs"]
pub mod hex;
#[path = "json.rs"]
pub mod json;
#[path = "pickle.rs"]
pub mod pickle;

use rhai::{Array, Blob, Dynamic, DynamicReadLock, ImmutableString, Map};
use rust_decimal::Decimal;

use crate::error::Error;

/// How deeply arrays and maps may nest when encoding or decoding; beyond
/// this is a `limit` (encoding) or `decode` (decoding) error instead of a
/// stack overflow. JSON parsing has the same limit built in; the pickle
/// decoder checks it while decoding, before anything recurses.
pub(crate) const MAX_DEPTH: usize = 128;

/// The error for data nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep(kind: crate::Kind, op: &str) -> Error {
    Error::new(kind, op, format!("data is nested deeper than {MAX_DEPTH} levels"))
}

/// A script value seen as one of the types the encoders understand.
pub(crate) enum View<'a> {
    /// `()`.
    Unit,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(rhai::INT),
    /// A float.
    Float(rhai::FLOAT),
    /// A decimal (big integers decoded from JSON or pickle are decimals).
    Decimal(Decimal),
    /// A character, encoded as a one-character string.
    Char(char),
    /// A string.
    Str(DynamicReadLock<'a, ImmutableString>),
    /// A blob.
    Blob(DynamicReadLock<'a, Blob>),
    /// An array.
    Array(DynamicReadLock<'a, Array>),
    /// An object map.
    Map(DynamicReadLock<'a, Map>),
    /// Anything else, by type name.
    Other(&'a str),
}

impl<'a> View<'a> {
    /// Classify `value` (looking through shared values).
    pub(crate) fn of(value: &'a Dynamic) -> Self {
        if value.is_unit() {
            return Self::Unit;
        }
        if let Ok(b) = value.as_bool() {
            return Self::Bool(b);
        }
        if let Ok(n) = value.as_int() {
            return Self::Int(n);
        }
        if let Ok(f) = value.as_float() {
            return Self::Float(f);
        }
        if let Ok(d) = value.as_decimal() {
            return Self::Decimal(d);
        }
        if let Ok(c) = value.as_char() {
            return Self::Char(c);
        }
        if let Some(s) = value.read_lock::<ImmutableString>() {
            return Self::Str(s);
        }
        if let Some(b) = value.read_lock::<Blob>() {
            return Self::Blob(b);
        }
        if let Some(a) = value.read_lock::<Array>() {
            return Self::Array(a);
        }
        if let Some(m) = value.read_lock::<Map>() {
            return Self::Map(m);
        }
        Self::Other(value.type_name())
    }
}

/// The modules in this file with their namespaces.
#[must_use]
pub fn modules() -> Vec<(&'static str, rhai::Module)> {
    vec![
        ("json", json::module()),
        ("pickle", pickle::module()),
        ("base64", base64::module()),
        ("hex", hex::module()),
        ("hash", hash::module()),
    ]
}

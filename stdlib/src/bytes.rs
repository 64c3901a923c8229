//! `bytes::` — helpers for binary data.
//!
//! Script data is Rhai blobs (`Vec<u8>`); every function that sends or
//! encodes data also accepts a string, taken as UTF-8 ([`data_arg`]).

use std::borrow::Cow;

use rhai::plugin::*;
use rhai::{Blob, Dynamic};

use crate::error::Error;

/// Borrow the bytes of a data argument: a blob as is, a string as UTF-8.
///
/// Any other type is a `value` error naming `op`.
pub fn data_arg<'a>(value: &'a Dynamic, op: &str) -> Result<Cow<'a, [u8]>, Error> {
    if value.is_blob() {
        // A read lock can only fail on a shared value locked elsewhere.
        if let Some(b) = value.read_lock::<Blob>() {
            return Ok(Cow::Owned(b.clone()));
        }
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return Ok(Cow::Owned(s.as_bytes().to_vec()));
    }
    Err(Error::value(op, format!("expected a blob or a string, got {}", value.type_name())))
}

/// The `bytes::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {}

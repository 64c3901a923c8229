//! `pickle::` — Python pickles, read and written without running code.
//!
//! `loads` reads protocols 0–5 but only plain data: any other object (a
//! class instance, a `GLOBAL` other than the builtins for sets, bytes and
//! bytearrays) is a `decode` error — nothing is ever imported or called.
//! The decoder counts nesting as it goes and stops at [`MAX_DEPTH`], so no
//! pickle makes anything recurse deeper than that.
//! `dumps` writes protocol 3 (default) or 2, which every Python 3 reads.
//!
//! Mapping: `None` ↔ `()`, bool, int ↔ INT (ints beyond INT become
//! decimals, up to about ±7.9e28; larger ones are a `decode` error), float,
//! str ↔ string, bytes/bytearray ↔ blob, list/tuple/set/frozenset → array
//! (arrays are written as lists), dict ↔ object map. Map keys are strings:
//! dict keys that are `str` stay, `int` keys become their decimal text and
//! `bytes` keys their UTF-8 text; other keys (float, tuple, None…), or two
//! keys that become the same text, are a `decode` error.

use rhai::plugin::*;
use rhai::{Array, Blob, INT, Map};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_pickle::{DeOptions, HashableValue, SerOptions, Value};

use super::{MAX_DEPTH, View, too_deep};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};

/// The `pickle::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// The protocol `dumps` writes unless told otherwise.
const DEFAULT_PROTOCOL: INT = 3;

/// A whole number that does not fit INT, as a decimal if it fits one.
fn big_int(text: &str, op: &str) -> Result<Dynamic, Error> {
    Decimal::from_str_exact(text)
        .map(Dynamic::from_decimal)
        .map_err(|_| Error::new(Kind::Decode, op, format!("integer {text} is too large (limit about ±7.9e28)")))
}

/// A dict key as map key text.
fn key_text(key: HashableValue, op: &str) -> Result<String, Error> {
    let kind = match key {
        HashableValue::String(s) => return Ok(s),
        HashableValue::I64(n) => return Ok(n.to_string()),
        HashableValue::Int(n) => return Ok(n.to_string()),
        HashableValue::Bytes(b) => {
            return String::from_utf8(b)
                .map_err(|_| Error::new(Kind::Decode, op, "a bytes dict key is not UTF-8 text"));
        }
        HashableValue::None => "None",
        HashableValue::Bool(_) => "bool",
        HashableValue::F64(_) => "float",
        HashableValue::Tuple(_) => "tuple",
        HashableValue::FrozenSet(_) => "frozenset",
    };
    Err(Error::new(Kind::Decode, op, format!("a dict key of type {kind} cannot be a map key (str, int or bytes only)")))
}

/// Convert an unpickled value to a script value.
fn from_pickle(value: Value, depth: usize, op: &str) -> Result<Dynamic, Error> {
    if depth > MAX_DEPTH {
        return Err(too_deep(Kind::Decode, op));
    }
    let items = |values: Vec<Value>| -> Result<Dynamic, Error> {
        Ok(values.into_iter().map(|v| from_pickle(v, depth + 1, op)).collect::<Result<Array, _>>()?.into())
    };
    Ok(match value {
        Value::None => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::I64(n) => n.into(),
        Value::Int(n) => big_int(&n.to_string(), op)?,
        Value::F64(f) => f.into(),
        Value::Bytes(b) => Dynamic::from_blob(b),
        Value::String(s) => s.into(),
        Value::List(v) | Value::Tuple(v) => items(v)?,
        Value::Set(s) | Value::FrozenSet(s) => items(s.into_iter().map(HashableValue::into_value).collect())?,
        Value::Dict(d) => {
            let mut map = Map::new();
            for (k, v) in d {
                let key = key_text(k, op)?;
                if map.contains_key(key.as_str()) {
                    return Err(Error::new(Kind::Decode, op, format!("two dict keys both become the map key '{key}'")));
                }
                map.insert(key.into(), from_pickle(v, depth + 1, op)?);
            }
            map.into()
        }
    })
}

/// Convert a script value to a picklable value.
fn to_pickle(value: &Dynamic, depth: usize, op: &str) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(too_deep(Kind::Limit, op));
    }
    Ok(match View::of(value) {
        View::Unit => Value::None,
        View::Bool(b) => Value::Bool(b),
        View::Int(n) => Value::I64(n),
        View::Float(f) => Value::F64(f),
        View::Decimal(d) if d.fract().is_zero() => {
            let text = d.trunc().to_string();
            Value::Int(text.parse().map_err(|e| Error::value(op, format!("cannot pickle decimal {d}: {e}")))?)
        }
        View::Decimal(d) => Value::F64(d.to_f64().unwrap_or(f64::NAN)),
        View::Char(c) => Value::String(c.to_string()),
        View::Str(s) => Value::String(s.to_string()),
        View::Blob(b) => Value::Bytes(b.to_vec()),
        View::Array(a) => Value::List(a.iter().map(|v| to_pickle(v, depth + 1, op)).collect::<Result<_, _>>()?),
        View::Map(m) => Value::Dict(
            m.iter()
                .map(|(k, v)| Ok((HashableValue::String(k.to_string()), to_pickle(v, depth + 1, op)?)))
                .collect::<Result<_, Error>>()?,
        ),
        View::Other(t) => return Err(Error::value(op, format!("a value of type {t} cannot be pickled"))),
    })
}

fn dumps_with(value: &Dynamic, protocol: INT) -> Result<Blob, Error> {
    const OP: &str = "pickle::dumps";
    let options = match protocol {
        2 => SerOptions::new().proto_v2(),
        3 => SerOptions::new(),
        _ => {
            return Err(Error::value(OP, format!("cannot write pickle protocol {protocol} (2 or 3; loads reads 0-5)")));
        }
    };
    serde_pickle::value_to_vec(&to_pickle(value, 0, OP)?, options).map_err(|e| Error::value(OP, e.to_string()))
}

#[export_module]
mod api {
    use super::{Blob, DEFAULT_PROTOCOL, INT, NativeResult, dumps_with};

    /// Pickle a value (`()`, bool, number, string, blob, array, object map)
    /// with protocol 3. Other types are a `value` error; data nested deeper
    /// than 128 levels is a `limit` error.
    ///
    /// ```rhai
    /// let p = pickle::dumps(#{id: 7, tags: ["a"], raw: "xy".to_blob()});
    /// print(pickle::loads(p).id);   // 7
    /// ```
    #[rhai_fn(name = "dumps", return_raw)]
    pub fn dumps(value: Dynamic) -> NativeResult<Blob> {
        crate::runtime::offload("pickle::dumps", crate::runtime::value_size(&value), move || {
            dumps_with(&value, DEFAULT_PROTOCOL)
        })
    }

    /// Pickle a value with `protocol` 2 or 3; any other is a `value` error.
    ///
    /// ```rhai
    /// let p = pickle::dumps([1, 2.5, "x"], 2);
    /// ```
    #[rhai_fn(name = "dumps", return_raw)]
    pub fn dumps_protocol(value: Dynamic, protocol: INT) -> NativeResult<Blob> {
        crate::runtime::offload("pickle::dumps", crate::runtime::value_size(&value), move || {
            dumps_with(&value, protocol)
        })
    }

    /// Unpickle plain data (protocols 0–5) from a blob. Never runs code:
    /// class instances and other objects are a `decode` error, as is
    /// malformed or truncated data or nesting deeper than 128 levels
    /// (counted while decoding, so a hostile pickle cannot exhaust the stack).
    ///
    /// ```rhai
    /// let v = pickle::loads(pickle::dumps([1, "two", ()]));
    /// print(v[1]);   // two
    /// ```
    #[rhai_fn(name = "loads", return_raw)]
    pub fn loads(data: Dynamic) -> NativeResult<Dynamic> {
        const OP: &str = "pickle::loads";
        let bytes = super::data_arg(&data, OP)?.into_owned();
        crate::runtime::offload(OP, bytes.len(), move || {
            // The depth is checked while decoding, before anything recurses on it.
            let options = super::DeOptions::new().decode_strings().deny_objects().max_depth(super::MAX_DEPTH as u32);
            let value = serde_pickle::value_from_slice(&bytes, options)
                .map_err(|e| super::Error::new(super::Kind::Decode, OP, format!("cannot unpickle: {e}")))?;
            super::from_pickle(value, 0, OP)
        })
    }
}

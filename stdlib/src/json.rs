//! `json::` — JSON text, interoperable with Python's `json` module.
//!
//! Mapping: `()` ↔ `null`, bool, INT ↔ integer, FLOAT ↔ number with a
//! fraction or exponent, string, array, object map ↔ object. Integers
//! beyond INT decode exactly as decimals (up to about ±7.9e28); larger ones
//! are a `decode` error, never a rounded float. Whole decimals encode as
//! exact integers. Blobs are not JSON: encoding one is a `value`
//! error (use `base64::encode` first). NaN and infinities are rejected both
//! ways (strict JSON, unlike Python's default `allow_nan`).

use rhai::plugin::*;
use rhai::{Array, Map};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Number, Value};

use super::{MAX_DEPTH, View, too_deep};
use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};

/// The `json::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// A decimal as a JSON number: the exact integer when it is a whole
/// number, otherwise the nearest float.
fn decimal_number(d: Decimal) -> Option<Number> {
    if d.fract().is_zero() {
        return d.trunc().normalize().to_string().parse().ok();
    }
    d.to_f64().and_then(Number::from_f64)
}

/// Convert a script value to JSON.
fn to_json(value: &Dynamic, depth: usize, op: &str) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(too_deep(Kind::Limit, op));
    }
    let not_finite = |x: &dyn std::fmt::Display| Error::value(op, format!("{x} cannot be encoded as JSON"));
    Ok(match View::of(value) {
        View::Unit => Value::Null,
        View::Bool(b) => Value::Bool(b),
        View::Int(n) => Value::Number(n.into()),
        View::Float(f) => Value::Number(Number::from_f64(f).ok_or_else(|| not_finite(&f))?),
        View::Decimal(d) => Value::Number(decimal_number(d).ok_or_else(|| not_finite(&d))?),
        View::Char(c) => Value::String(c.to_string()),
        View::Str(s) => Value::String(s.to_string()),
        View::Blob(_) => return Err(Error::value(op, "blobs cannot be encoded as JSON; use base64::encode first")),
        View::Array(a) => Value::Array(a.iter().map(|v| to_json(v, depth + 1, op)).collect::<Result<_, _>>()?),
        View::Map(m) => Value::Object(
            m.iter().map(|(k, v)| Ok((k.to_string(), to_json(v, depth + 1, op)?))).collect::<Result<_, Error>>()?,
        ),
        View::Other(t) => return Err(Error::value(op, format!("a value of type {t} cannot be encoded as JSON"))),
    })
}

/// A parsed JSON number as a script value: INT, else a decimal for an
/// integer (exactly, or a `decode` error), else a float.
fn number(n: &Number, op: &str) -> Result<Dynamic, Error> {
    if let Some(i) = n.as_i64() {
        return Ok(i.into());
    }
    // Numbers keep their text (`arbitrary_precision`): an integer has no
    // fraction or exponent.
    let text = n.as_str();
    if !text.contains(['.', 'e', 'E']) {
        return Decimal::from_str_exact(text)
            .map(Dynamic::from_decimal)
            .map_err(|_| Error::new(Kind::Decode, op, format!("integer {text} is too large (limit about ±7.9e28)")));
    }
    Ok(n.as_f64().unwrap_or(f64::NAN).into())
}

/// Convert parsed JSON to a script value.
pub(crate) fn from_json(value: Value, op: &str) -> Result<Dynamic, Error> {
    Ok(match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::Number(n) => number(&n, op)?,
        Value::String(s) => s.into(),
        Value::Array(a) => a.into_iter().map(|v| from_json(v, op)).collect::<Result<Array, _>>()?.into(),
        Value::Object(o) => {
            o.into_iter().map(|(k, v)| Ok((k.into(), from_json(v, op)?))).collect::<Result<Map, Error>>()?.into()
        }
    })
}

/// Encode with the options map of `json::encode`.
pub(crate) fn encode_with(value: &Dynamic, opts: &Map) -> Result<String, Error> {
    const OP: &str = "json::encode";
    let mut pretty = false;
    for (key, v) in opts {
        let flag = v.as_bool().map_err(|t| Error::value(OP, format!("option '{key}' must be a bool, got {t}")))?;
        match key.as_str() {
            "pretty" => pretty = flag,
            // Object maps iterate in key order, so keys are always sorted.
            "sort_keys" => {}
            other => return Err(Error::value(OP, format!("unknown option '{other}' (known: pretty, sort_keys)"))),
        }
    }
    let json = to_json(value, 0, OP)?;
    let text = if pretty { serde_json::to_string_pretty(&json) } else { serde_json::to_string(&json) };
    text.map_err(|e| Error::value(OP, e.to_string()))
}

#[export_module]
pub(crate) mod api {
    use super::{Map, NativeResult, data_arg, encode_with};

    /// Encode a value (`()`, bool, number, string, array, object map) as
    /// compact JSON text. Blobs, NaN, infinities and other types are a
    /// `value` error; data nested deeper than 128 levels is a `limit` error.
    ///
    /// ```rhai
    /// print(json::encode(#{name: "x", ports: [80, 443], tls: ()}));
    /// // {"name":"x","ports":[80,443],"tls":null}
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode(value: Dynamic) -> NativeResult<String> {
        crate::runtime::offload("json::encode", crate::runtime::value_size(&value), move || {
            encode_with(&value, &Map::new())
        })
    }

    /// Encode with options: `pretty: true` indents by two spaces (as
    /// Python's `indent=2`); `sort_keys` is accepted, and keys are always
    /// sorted since object maps keep their keys in order.
    ///
    /// ```rhai
    /// print(json::encode(#{b: 1, a: [true]}, #{pretty: true}));
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode_opts(value: Dynamic, opts: Map) -> NativeResult<String> {
        crate::runtime::offload("json::encode", crate::runtime::value_size(&value), move || encode_with(&value, &opts))
    }

    /// Decode JSON text (a string, or a blob of UTF-8) into a value.
    /// Malformed JSON is a `decode` error giving line and column. Integers
    /// beyond INT decode exactly as decimals; one too large for a decimal
    /// (about ±7.9e28) is a `decode` error, never a rounded float.
    ///
    /// ```rhai
    /// let v = json::decode(`{"port": 8080, "hosts": ["a", "b"]}`);
    /// print(v.port + 1);   // 8081
    /// ```
    #[rhai_fn(name = "decode", return_raw)]
    pub fn decode(text: Dynamic) -> NativeResult<Dynamic> {
        const OP: &str = "json::decode";
        let bytes = data_arg(&text, OP)?.into_owned();
        crate::runtime::offload(OP, bytes.len(), move || {
            let value = serde_json::from_slice(&bytes)
                .map_err(|e| crate::Error::new(crate::Kind::Decode, OP, format!("invalid JSON: {e}")))?;
            super::from_json(value, OP)
        })
    }
}

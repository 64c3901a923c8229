//! Argument helpers shared by native functions: option maps and durations.

use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::error::Error;

/// Seconds (INT or FLOAT) as a duration; `()` means "no limit" (`None`).
pub fn duration(op: &str, value: &Dynamic) -> Result<Option<Duration>, Error> {
    if value.is_unit() {
        return Ok(None);
    }
    let secs = if let Ok(i) = value.as_int() {
        i as f64
    } else if let Ok(f) = value.as_float() {
        f
    } else {
        return Err(Error::value(op, format!("expected seconds as a number or (), got {}", value.type_name())));
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(Error::value(op, format!("seconds must be between 0 and 1e9, got {secs}")));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// An options map (`#{timeout: 5, keep: false}`) read with typed getters.
/// Unknown keys are an error, so a misspelt option never goes unnoticed.
pub struct Opts<'a> {
    op: &'a str,
    map: Map,
}

impl<'a> Opts<'a> {
    /// Check `map`'s keys against `known` and wrap it.
    pub fn new(op: &'a str, map: Map, known: &[&str]) -> Result<Self, Error> {
        if let Some(bad) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(Error::value(op, format!("unknown option '{bad}' (known: {})", known.join(", "))));
        }
        Ok(Self { op, map })
    }

    /// No options.
    #[must_use]
    pub fn empty(op: &'a str) -> Self {
        Self { op, map: Map::new() }
    }

    /// The raw value of `key`, if given.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key)
    }

    /// A boolean option.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, Error> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().map_err(|t| self.bad(key, "a bool", t)),
        }
    }

    /// An integer option.
    pub fn int(&self, key: &str, default: i64) -> Result<i64, Error> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v.as_int().map_err(|t| self.bad(key, "an integer", t)),
        }
    }

    /// A size option (non-negative integer).
    pub fn size(&self, key: &str, default: usize) -> Result<usize, Error> {
        let v = self.int(key, default as i64)?;
        usize::try_from(v).map_err(|_| Error::value(self.op, format!("option '{key}' must not be negative, got {v}")))
    }

    /// A string option.
    pub fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) if v.is_unit() => Ok(None),
            Some(v) => v.clone().into_string().map(Some).map_err(|t| self.bad(key, "a string", t)),
        }
    }

    /// A duration option in seconds; `()` means none; missing gives `default`.
    pub fn duration(&self, key: &str, default: Option<Duration>) -> Result<Option<Duration>, Error> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => duration(self.op, v),
        }
    }

    fn bad(&self, key: &str, want: &str, got: &str) -> Error {
        Error::value(self.op, format!("option '{key}' must be {want}, got {got}"))
    }
}

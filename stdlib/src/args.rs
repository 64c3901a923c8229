//! Argument helpers shared by native functions: option maps, durations, and
//! natives that read their arguments in place.

use std::any::TypeId;
use std::sync::Arc;
use std::time::Duration;

use rhai::plugin::{NativeCallContext, PluginFunc};
use rhai::{Dynamic, FnNamespace, FuncRegistration, Map, RhaiFunc};

use crate::error::{Error, NativeResult};

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

/// A duration written as k6 and the CLI write them (`"30s"`, `"1m30s"`,
/// `"250ms"`, `"50us"`) or a bare number of seconds.
///
/// # Errors
/// A message saying what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("a duration such as \"30s\", \"1m30s\" or \"250ms\", got {text:?}");
    let s = text.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let number = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let nanos: u64 = match &rest[..unit_len] {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        // Whole numbers exactly (a duration prints as one and must read
        // back the same), fractions through f64.
        let part = match number.parse::<u128>() {
            Ok(n) => n
                .checked_mul(u128::from(nanos))
                .and_then(|n| Some(Duration::new(u64::try_from(n / 1_000_000_000).ok()?, (n % 1_000_000_000) as u32))),
            Err(_) => {
                let n: f64 = number.parse().map_err(|_| bad())?;
                Duration::try_from_secs_f64(n * nanos as f64 * 1e-9).ok()
            }
        };
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// `d` as [`parse_duration`] reads it back exactly: whole milliseconds,
/// microseconds or nanoseconds (`250ms`, `1500us`, `7ns`).
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
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

/// A native function as [`Borrowing`] calls it.
pub type BorrowingFn = fn(&mut [&mut Dynamic]) -> NativeResult<Dynamic>;

/// A native function registered by hand so that it reads its arguments in
/// place (`PluginFunc::borrows_args` in the vendored Rhai): a loop body then
/// passes it its variables and literals in place, where a generated function
/// would take copies of them (a whole buffer for each `struct::unpack` or
/// `conn.send`).
pub struct Borrowing(BorrowingFn);

impl Borrowing {
    /// Register `f` in `m` as `name` with the given metadata.
    pub fn register(
        m: &mut rhai::Module,
        name: &str,
        namespace: FnNamespace,
        params: Vec<String>,
        types: Vec<TypeId>,
        doc: &str,
        f: BorrowingFn,
    ) {
        FuncRegistration::new(name)
            .with_namespace(namespace)
            .with_params_info(params)
            .with_comments([doc])
            .set_into_module_raw(m, types, RhaiFunc::Plugin { func: Arc::new(Self(f)) });
    }
}

impl PluginFunc for Borrowing {
    fn call(&self, _: Option<NativeCallContext>, args: &mut [&mut Dynamic]) -> NativeResult<Dynamic> {
        (self.0)(args)
    }

    fn is_method_call(&self) -> bool {
        // The first argument is only read, so it may as well be a reference.
        true
    }

    fn has_context(&self) -> bool {
        false
    }

    fn is_volatile(&self) -> bool {
        false
    }

    fn borrows_args(&self) -> bool {
        true
    }
}

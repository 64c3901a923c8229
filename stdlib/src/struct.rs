//! `struct::` — CPython's `struct` format language: pack values into blobs
//! and unpack blobs into values.
//!
//! `struct::pack("!IHb", [1, 2, 3])` gives the same bytes as Python's
//! `struct.pack("!IHb", 1, 2, 3)`, and `struct::unpack` gives the values
//! back. Byte orders `@ = < > !`, native sizes and alignment (those of the C
//! compiler, as CPython: x86-64 Linux in practice), the codes
//! `x c b B ? h H i I l L q Q n N e f d s p P` (`n N P` in native mode only),
//! repeat counts and whitespace between items all follow CPython.
//!
//! # Values
//! - Integer codes take an INT, `true`/`false` (as 1/0) or an integral
//!   Decimal; a FLOAT is refused ("required argument is not an integer"), as
//!   in Python. INT is i64, so unsigned 8-byte codes (`Q`, and `L N P` in
//!   native mode) unpack values above 2^63-1 as an exact Decimal, and pack
//!   them from one.
//! - Float codes (`e f d`) take a FLOAT, INT, bool or Decimal.
//! - `?` packs the truthiness of any value (`false`, 0, 0.0, `""`, empty
//!   blob, array or map and `()` are false) and unpacks to a bool.
//! - `s` and `p` take a blob or a string, padded with zeros or cut to the
//!   count, and unpack to a blob; `c` takes a 1-byte blob, string or
//!   character and unpacks to a 1-byte blob.
//!
//! # Errors
//! Bad formats, wrong value counts, out-of-range or mistyped values and
//! wrong buffer sizes raise a `pack` error in Python's words; a bad value's
//! message names its index among the values and its format code.
//!
//! # Speed
//! A format is parsed once: `struct::compile` returns a [`Struct`] holding
//! the parsed layout, and the function forms keep the last few layouts in a
//! small per-thread cache.

use std::any::TypeId;
use std::borrow::Borrow;
use std::cell::RefCell;
use std::ffi::{c_int, c_long, c_longlong, c_short, c_void};
use std::mem::{align_of, size_of};
use std::sync::Arc;

use half::f16;
use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, FnNamespace, INT, ImmutableString, Map};
use rust_decimal::Decimal;

use crate::args::{Borrowing, BorrowingFn};
use crate::bytes::{data_arg, zeroed_blob};
use crate::error::{Error, Kind, NativeResult};

/// Byte order of multi-byte items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Little,
    Big,
}

const NATIVE_ORDER: Order = if cfg!(target_endian = "big") { Order::Big } else { Order::Little };

/// How one format code turns a script value into bytes and back.
#[derive(Clone, Copy, Debug)]
enum Conv {
    /// A two's-complement integer of the item's size.
    Int { signed: bool },
    /// `P`: a pointer-sized integer, taking -2^63..2^64-1 like `PyLong_AsVoidPtr`.
    Pointer,
    /// `?`.
    Bool,
    /// `c`: one byte.
    Char,
    /// `e`: IEEE 754 half precision.
    Half,
    /// `f`: standard sizes refuse finite values that round to infinity;
    /// native mode casts like C (as CPython does).
    Single { checked: bool },
    /// `d`.
    Double,
    /// `s`: a byte string of the item's size.
    Bytes,
    /// `p`: a Pascal string (length byte, then data) of the item's size.
    Pascal,
}

/// A run of `count` items of one code starting at byte `offset`, each
/// `size` bytes (`s` and `p` are one item whose size is the count).
#[derive(Clone, Copy, Debug)]
struct Item {
    code: u8,
    conv: Conv,
    size: usize,
    count: usize,
    offset: usize,
}

/// A parsed format.
#[derive(Debug)]
struct Layout {
    format: ImmutableString,
    order: Order,
    size: usize,
    values: usize,
    items: Box<[Item]>,
    /// One slot per value when every item is an integer code (the commonest
    /// formats, such as `"!IHb"`): packing and unpacking then take a short path.
    ints: Option<Box<[IntSlot]>>,
}

/// Where one integer value goes, and the range `pack` accepts for it.
#[derive(Clone, Copy, Debug)]
struct IntSlot {
    offset: usize,
    size: usize,
    signed: bool,
    lo: INT,
    hi: INT,
}

impl IntSlot {
    /// The slots of `items`, if they are all integer codes whose ranges fit an INT
    /// (every one but `Q`/`N`/`P`, whose top half only Decimals reach) and
    /// there are at most [`MAX_SLOTS`] values: a repeat count is a count, so
    /// a long run (`"999999999I"`) takes the general path, which costs
    /// nothing per value until values are packed.
    fn plan(items: &[Item], values: usize) -> Option<Box<[IntSlot]>> {
        if values > MAX_SLOTS {
            return None;
        }
        let mut slots = Vec::with_capacity(values);
        for item in items {
            let Conv::Int { signed } = item.conv else { return None };
            let (lo, hi) = int_range(item.size, signed);
            let (lo, hi) = (INT::try_from(lo).ok()?, INT::try_from(hi).ok()?);
            slots.extend((0..item.count).map(|k| IntSlot {
                offset: item.offset + k * item.size,
                size: item.size,
                signed,
                lo,
                hi,
            }));
        }
        Some(slots.into())
    }
}

/// A compiled format (`struct::compile`): a cheap handle on a parsed layout.
#[derive(Clone, Debug)]
pub struct Struct(Arc<Layout>);

/// CPython's limit on a format's total size (`PY_SSIZE_T_MAX`).
const MAX_SIZE: usize = isize::MAX as usize;

/// Most values a format may have to get the integer short path.
const MAX_SLOTS: usize = 256;

/// Largest packed size the integer short path allocates unchecked.
const SMALL_INTS: usize = 4096;

/// How many parsed formats each thread keeps for the function forms.
const CACHE_SLOTS: usize = 16;

thread_local! {
    /// Most recently used first.
    static CACHE: RefCell<Vec<(ImmutableString, Struct)>> = const { RefCell::new(Vec::new()) };
}

/// A `pack` error raised by `op`.
fn pack_error(op: &str, detail: impl Into<String>) -> Error {
    Error::new(Kind::Pack, op, detail)
}

/// Conversion (`None` for the pad byte `x`), size and alignment of `code`,
/// or `None` when the code does not exist in this mode.
fn lookup(code: u8, native: bool) -> Option<(Option<Conv>, usize, usize)> {
    /// Native size and alignment of a C type.
    const fn c<T>() -> (usize, usize) {
        (size_of::<T>(), align_of::<T>())
    }
    let int = |signed| Some(Conv::Int { signed });
    let (conv, standard, (size, align)) = match code {
        b'x' => (None, 1, (1, 1)),
        b'c' => (Some(Conv::Char), 1, (1, 1)),
        b'b' => (int(true), 1, (1, 1)),
        b'B' => (int(false), 1, (1, 1)),
        b'?' => (Some(Conv::Bool), 1, c::<bool>()),
        b'h' => (int(true), 2, c::<c_short>()),
        b'H' => (int(false), 2, c::<c_short>()),
        b'i' => (int(true), 4, c::<c_int>()),
        b'I' => (int(false), 4, c::<c_int>()),
        b'l' => (int(true), 4, c::<c_long>()),
        b'L' => (int(false), 4, c::<c_long>()),
        b'q' => (int(true), 8, c::<c_longlong>()),
        b'Q' => (int(false), 8, c::<c_longlong>()),
        b'e' => (Some(Conv::Half), 2, c::<c_short>()),
        b'f' => (Some(Conv::Single { checked: !native }), 4, c::<f32>()),
        b'd' => (Some(Conv::Double), 8, c::<f64>()),
        b's' => (Some(Conv::Bytes), 1, (1, 1)),
        b'p' => (Some(Conv::Pascal), 1, (1, 1)),
        b'n' if native => (int(true), 0, c::<isize>()),
        b'N' if native => (int(false), 0, c::<usize>()),
        b'P' if native => (Some(Conv::Pointer), 0, c::<*const c_void>()),
        _ => return None,
    };
    Some(if native { (conv, size, align) } else { (conv, standard, 1) })
}

/// CPython's `Py_ISSPACE`.
const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

impl Layout {
    /// Parse `format` as CPython's `struct` does; the error is the detail.
    fn parse(format: &str) -> Result<Self, String> {
        let bytes = format.as_bytes();
        let (native, order, start) = match bytes.first() {
            Some(b'@') => (true, NATIVE_ORDER, 1),
            Some(b'=') => (false, NATIVE_ORDER, 1),
            Some(b'<') => (false, Order::Little, 1),
            Some(b'>' | b'!') => (false, Order::Big, 1),
            _ => (true, NATIVE_ORDER, 0),
        };
        let too_long = || "total struct size too long".to_string();
        let grow = |size: usize, more: Option<usize>| {
            more.and_then(|m| m.checked_add(size)).filter(|&s| s <= MAX_SIZE).ok_or_else(too_long)
        };
        let (mut items, mut size, mut values) = (Vec::new(), 0usize, 0usize);
        let mut pos = start;
        while let Some(&c) = bytes.get(pos) {
            pos += 1;
            if is_space(c) {
                continue;
            }
            let (count, code) = if c.is_ascii_digit() {
                let mut count = usize::from(c - b'0');
                while let Some(&d) = bytes.get(pos).filter(|d| d.is_ascii_digit()) {
                    count = grow(usize::from(d - b'0'), count.checked_mul(10))?;
                    pos += 1;
                }
                let code = *bytes.get(pos).ok_or("repeat count given without format specifier")?;
                pos += 1;
                (count, code)
            } else {
                (1, c)
            };
            let (conv, unit, align) = lookup(code, native).ok_or_else(|| {
                let shown = format.get(pos - 1..).and_then(|s| s.chars().next()).unwrap_or('?');
                format!("bad char in struct format: {shown:?} at position {}", pos - 1)
            })?;
            size = size.checked_next_multiple_of(align).filter(|&s| s <= MAX_SIZE).ok_or_else(too_long)?;
            let offset = size;
            size = grow(size, count.checked_mul(unit))?;
            match conv {
                None => {}
                Some(conv @ (Conv::Bytes | Conv::Pascal)) => {
                    items.push(Item { code, conv, size: count, count: 1, offset });
                    values += 1;
                }
                Some(_) if count == 0 => {}
                Some(conv) => {
                    items.push(Item { code, conv, size: unit, count, offset });
                    values += count;
                }
            }
        }
        let ints = IntSlot::plan(&items, values);
        Ok(Self { format: format.into(), order, size, values, items: items.into(), ints })
    }

    /// Refuse a value count other than the format's.
    fn check_count(&self, op: &str, got: usize) -> Result<(), Error> {
        if got == self.values {
            Ok(())
        } else {
            Err(pack_error(op, format!("expected {} items for packing (got {got})", self.values)))
        }
    }

    /// Pack `values` (already counted) into `out`, which is `size` zero bytes.
    fn write<D: Borrow<Dynamic>>(&self, values: &[D], out: &mut [u8], op: &str) -> Result<(), Error> {
        let mut values = values.iter().map(Borrow::borrow).enumerate();
        for item in &self.items {
            for k in 0..item.count {
                let (index, value) = values.next().ok_or_else(|| pack_error(op, "too few items for packing"))?;
                let at = item.offset + k * item.size;
                pack_one(item.conv, value, &mut out[at..at + item.size], self.order)
                    .map_err(|why| pack_error(op, format!("item {index} ('{}'): {why}", char::from(item.code))))?;
            }
        }
        Ok(())
    }

    /// Pack `values` into a new blob.
    fn pack<D: Borrow<Dynamic>>(&self, values: &[D], op: &str) -> Result<Blob, Error> {
        self.check_count(op, values.len())?;
        if let Some(out) = self.pack_ints(values) {
            return Ok(out);
        }
        let mut out = zeroed_blob(self.size, op)?;
        self.write(values, &mut out, op)?;
        Ok(out)
    }

    /// The short path of `pack`: integer codes, given integers in range. `None`
    /// sends anything else (a bool, a Decimal, a value out of range, which
    /// raises) down the general path.
    fn pack_ints<D: Borrow<Dynamic>>(&self, values: &[D]) -> Option<Blob> {
        let slots = self.ints.as_deref()?;
        // Only pads make a short-path format large (`"999999999x"`): the
        // general path checks and reserves that size.
        if self.size > SMALL_INTS {
            return None;
        }
        let mut out = vec![0; self.size];
        for (slot, value) in slots.iter().zip(values) {
            let v = value.borrow().as_int().ok().filter(|v| (slot.lo..=slot.hi).contains(v))?;
            // Two's complement: the low bytes of the value as a u64.
            put_uint(&mut out[slot.offset..slot.offset + slot.size], v as u64, self.order);
        }
        Some(out)
    }

    /// Pack `values` into `buf` at `offset` (negative counts from the end).
    /// On error `buf` is left as it was (CPython leaves items before the bad
    /// one written).
    fn pack_into(&self, buf: &mut [u8], offset: INT, values: &[Dynamic], op: &str) -> Result<(), Error> {
        self.check_count(op, values.len())?;
        let at = self.place(offset, buf.len(), Access::Pack).map_err(|d| pack_error(op, d))?;
        let packed = self.pack(values, op)?;
        buf[at..at + self.size].copy_from_slice(&packed);
        Ok(())
    }

    /// Unpack `data`, which is exactly `size` bytes.
    fn read(&self, data: &[u8]) -> Array {
        let mut out = Array::with_capacity(self.values);
        if let Some(slots) = self.ints.as_deref() {
            out.extend(slots.iter().map(|slot| {
                let bytes = &data[slot.offset..slot.offset + slot.size];
                // Unsigned slots fit an INT (see `plan`).
                Dynamic::from_int(if slot.signed {
                    get_int(bytes, self.order)
                } else {
                    get_uint(bytes, self.order) as INT
                })
            }));
            return out;
        }
        for item in &self.items {
            for k in 0..item.count {
                let at = item.offset + k * item.size;
                out.push(unpack_one(item.conv, &data[at..at + item.size], self.order));
            }
        }
        out
    }

    /// Unpack a buffer of exactly `size` bytes.
    fn unpack(&self, data: &[u8], op: &str) -> Result<Array, Error> {
        if data.len() != self.size {
            return Err(pack_error(
                op,
                format!("unpack requires a buffer of {} bytes (got {})", self.size, data.len()),
            ));
        }
        Ok(self.read(data))
    }

    /// Unpack `size` bytes at `offset` (negative counts from the end).
    fn unpack_from(&self, data: &[u8], offset: INT, op: &str) -> Result<Array, Error> {
        let at = self.place(offset, data.len(), Access::Unpack).map_err(|d| pack_error(op, d))?;
        Ok(self.read(&data[at..at + self.size]))
    }

    /// Unpack a buffer holding a whole number of records, one array each.
    fn iter_unpack(&self, data: &[u8], op: &str) -> Result<Array, Error> {
        if self.size == 0 {
            return Err(pack_error(op, "cannot iteratively unpack with a struct of length 0"));
        }
        if !data.len().is_multiple_of(self.size) {
            return Err(pack_error(
                op,
                format!(
                    "iterative unpacking requires a buffer of a multiple of {} bytes (got {})",
                    self.size,
                    data.len()
                ),
            ));
        }
        Ok(data.chunks_exact(self.size).map(|record| self.read(record).into()).collect())
    }

    /// Where `size` bytes at `offset` start in a buffer of `len` bytes,
    /// with CPython's rules and messages for `pack_into` and `unpack_from`.
    fn place(&self, offset: INT, len: usize, access: Access) -> Result<usize, String> {
        let (size, len_wide) = (self.size as i128, len as i128);
        let mut at = i128::from(offset);
        if at < 0 {
            if at + size > 0 {
                return Err(match access {
                    Access::Pack => format!("no space to pack {size} bytes at offset {offset}"),
                    Access::Unpack => format!("not enough data to unpack {size} bytes at offset {offset}"),
                });
            }
            if at + len_wide < 0 {
                return Err(format!("offset {offset} out of range for {len}-byte buffer"));
            }
            at += len_wide;
        }
        if len_wide - at < size {
            let (name, verb) = match access {
                Access::Pack => ("pack_into", "packing"),
                Access::Unpack => ("unpack_from", "unpacking"),
            };
            return Err(format!(
                "{name} requires a buffer of at least {} bytes for {verb} {size} bytes at offset {at} \
                 (actual buffer size is {len})",
                size + at
            ));
        }
        // 0 <= at <= len - size here, so it fits in usize.
        usize::try_from(at).map_err(|_| format!("offset {offset} out of range for {len}-byte buffer"))
    }
}

/// Which of `pack_into` / `unpack_from` is placing its bytes.
#[derive(Clone, Copy)]
enum Access {
    Pack,
    Unpack,
}

/// Run `f` on the parsed layout of `format`, from the per-thread cache.
fn with_layout<R>(format: &str, op: &str, f: impl FnOnce(&Struct) -> Result<R, Error>) -> Result<R, Error> {
    with_cached_layout(format, None, op, f)
}

/// [`with_layout`] for a format string value: the cache keeps that value, so
/// the same string next time (a literal a loop body passes in place) is found
/// by its address, without comparing its text.
fn with_layout_of<R>(
    format: &ImmutableString,
    op: &str,
    f: impl FnOnce(&Struct) -> Result<R, Error>,
) -> Result<R, Error> {
    with_cached_layout(format, Some(format), op, f)
}

fn with_cached_layout<R>(
    format: &str,
    key: Option<&ImmutableString>,
    op: &str,
    f: impl FnOnce(&Struct) -> Result<R, Error>,
) -> Result<R, Error> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let same = |k: &ImmutableString| key.is_some_and(|key| key.ptr_eq(k)) || k.as_str() == format;
        match cache.iter().position(|(k, _)| same(k)) {
            // The usual case: the same format as last time.
            Some(0) => {}
            Some(i) => cache[..=i].rotate_right(1),
            None => {
                let parsed = Struct(Arc::new(Layout::parse(format).map_err(|d| pack_error(op, d))?));
                cache.truncate(CACHE_SLOTS - 1);
                cache.insert(0, (key.cloned().unwrap_or_else(|| format.into()), parsed));
            }
        }
        if let Some(key) = key.filter(|key| !key.ptr_eq(&cache[0].0)) {
            cache[0].0 = key.clone();
        }
        f(&cache[0].1)
    })
}

/// Run `f` on the bytes of a blob or string argument of `op`.
///
/// A blob is borrowed rather than copied: unpacking is a hot path.
fn with_data<R>(data: &Dynamic, op: &str, f: impl FnOnce(&[u8]) -> Result<R, Error>) -> NativeResult<R> {
    if let Some(blob) = data.read_lock::<Blob>() {
        return Ok(f(&blob)?);
    }
    Ok(f(&data_arg(data, op)?)?)
}

/// The integer value of a script value for an integer code.
#[inline]
fn int_value(value: &Dynamic) -> Result<i128, &'static str> {
    if let Ok(i) = value.as_int() {
        return Ok(i.into());
    }
    if let Ok(b) = value.as_bool() {
        return Ok(b.into());
    }
    match value.as_decimal() {
        Ok(d) if d.is_integer() => Ok(d.trunc().normalize().mantissa()),
        _ => Err("required argument is not an integer"),
    }
}

/// The float value of a script value for a float code.
fn float_value(value: &Dynamic) -> Result<f64, &'static str> {
    const NOT_FLOAT: &str = "required argument is not a float";
    if let Ok(x) = value.as_float() {
        return Ok(x);
    }
    if let Ok(i) = value.as_int() {
        return Ok(i as f64);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(f64::from(u8::from(b)));
    }
    // Decimal's text is exact and Rust's float parsing rounds correctly,
    // like Python's int-to-float conversion.
    let d = value.as_decimal().map_err(|_| NOT_FLOAT)?;
    d.to_string().parse().map_err(|_| NOT_FLOAT)
}

/// Python's truthiness of a script value, for `?`.
fn truthy(value: &Dynamic) -> bool {
    if let Ok(b) = value.as_bool() {
        b
    } else if let Ok(i) = value.as_int() {
        i != 0
    } else if let Ok(x) = value.as_float() {
        x != 0.0
    } else if let Ok(d) = value.as_decimal() {
        !d.is_zero()
    } else if value.is_unit() {
        false
    } else if let Some(s) = value.read_lock::<ImmutableString>() {
        !s.is_empty()
    } else if let Some(b) = value.read_lock::<Blob>() {
        !b.is_empty()
    } else if let Some(a) = value.read_lock::<Array>() {
        !a.is_empty()
    } else if let Some(m) = value.read_lock::<Map>() {
        !m.is_empty()
    } else {
        true
    }
}

/// `lo..=hi` for an integer of `size` bytes.
#[inline]
fn int_range(size: usize, signed: bool) -> (i128, i128) {
    let bits = 8 * size as u32;
    if signed { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) } else { (0, (1i128 << bits) - 1) }
}

/// Write the low `slot.len()` (1, 2, 4 or 8) bytes of `v` in `order`.
fn put_uint(slot: &mut [u8], v: u64, order: Order) {
    let n = slot.len();
    let le = order == Order::Little;
    // Fixed-size cases first: they compile to single stores.
    match n {
        1 => slot[0] = v as u8,
        2 => slot.copy_from_slice(&if le { (v as u16).to_le_bytes() } else { (v as u16).to_be_bytes() }),
        4 => slot.copy_from_slice(&if le { (v as u32).to_le_bytes() } else { (v as u32).to_be_bytes() }),
        _ if le => slot.copy_from_slice(&v.to_le_bytes()[..n]),
        _ => slot.copy_from_slice(&v.to_be_bytes()[8 - n..]),
    }
}

/// Read an unsigned integer of `slot.len()` (1, 2, 4 or 8) bytes in `order`.
fn get_uint(slot: &[u8], order: Order) -> u64 {
    let le = order == Order::Little;
    // Each common size reads its bytes at once: bytes stored one by one into a
    // buffer and read back as a word would stall the read.
    if let [b] = slot {
        return (*b).into();
    }
    if let Ok(b) = <[u8; 8]>::try_from(slot) {
        return if le { u64::from_le_bytes(b) } else { u64::from_be_bytes(b) };
    }
    if let Ok(b) = <[u8; 2]>::try_from(slot) {
        return (if le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }).into();
    }
    if let Ok(b) = <[u8; 4]>::try_from(slot) {
        return (if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }).into();
    }
    let n = slot.len().min(8);
    let mut raw = [0u8; 8];
    if le {
        raw[..n].copy_from_slice(&slot[..n]);
        u64::from_le_bytes(raw)
    } else {
        raw[8 - n..].copy_from_slice(&slot[..n]);
        u64::from_be_bytes(raw)
    }
}

/// Read a two's-complement integer of `slot.len()` (1, 2, 4 or 8) bytes in `order`.
fn get_int(slot: &[u8], order: Order) -> INT {
    let shift = 64 - 8 * slot.len() as u32;
    // Move the sign bit to the top, then shift back arithmetically.
    ((get_uint(slot, order) << shift) as INT) >> shift
}

/// The bytes of an `s`/`p`/`c` value: a blob, a string, or (for `c`) a character.
fn bytes_value(value: &Dynamic) -> Option<Vec<u8>> {
    if let Ok(ch) = value.as_char() {
        return Some(ch.to_string().into_bytes());
    }
    data_arg(value, "struct::pack").ok().map(std::borrow::Cow::into_owned)
}

/// Pack one value into its slot (which holds zeros); the error is the reason.
fn pack_one(conv: Conv, value: &Dynamic, slot: &mut [u8], order: Order) -> Result<(), String> {
    match conv {
        Conv::Int { signed } => {
            let v = int_value(value)?;
            let (lo, hi) = int_range(slot.len(), signed);
            if v < lo || v > hi {
                return Err(format!("format requires {lo} <= number <= {hi}"));
            }
            // Two's complement: the low bytes of the value as a u64.
            put_uint(slot, v as u64, order);
        }
        Conv::Pointer => {
            let v = int_value(value)?;
            let (lo, hi) = (i128::from(i64::MIN), i128::from(u64::MAX));
            if v < lo || v > hi {
                return Err(format!("format requires {lo} <= number <= {hi}"));
            }
            put_uint(slot, v as u64, order);
        }
        Conv::Bool => slot[0] = u8::from(truthy(value)),
        Conv::Char => match bytes_value(value).as_deref() {
            Some(&[b]) => slot[0] = b,
            _ => return Err("char format requires a blob or string of length 1".into()),
        },
        Conv::Half => {
            let bits = f64_to_f16_bits(float_value(value)?).ok_or("float too large to pack with e format")?;
            put_uint(slot, bits.into(), order);
        }
        Conv::Single { checked } => {
            let x = float_value(value)?;
            let y = x as f32;
            if checked && y.is_infinite() && x.is_finite() {
                return Err("float too large to pack with f format".into());
            }
            put_uint(slot, y.to_bits().into(), order);
        }
        Conv::Double => put_uint(slot, float_value(value)?.to_bits(), order),
        Conv::Bytes | Conv::Pascal => {
            let data = bytes_value(value).ok_or_else(|| {
                let code = if matches!(conv, Conv::Bytes) { 's' } else { 'p' };
                format!("argument for '{code}' must be a blob or a string")
            })?;
            if matches!(conv, Conv::Bytes) {
                let n = data.len().min(slot.len());
                slot[..n].copy_from_slice(&data[..n]);
            } else if let Some((len, rest)) = slot.split_first_mut() {
                // CPython writes a stray length byte for `0p`; nothing is written here.
                let n = data.len().min(rest.len());
                rest[..n].copy_from_slice(&data[..n]);
                *len = u8::try_from(n).unwrap_or(u8::MAX);
            }
        }
    }
    Ok(())
}

/// An unsigned 64-bit value as an INT, or an exact Decimal above `i64::MAX`.
fn unsigned_value(raw: u64) -> Dynamic {
    i64::try_from(raw).map_or_else(|_| Dynamic::from(Decimal::from(raw)), Dynamic::from_int)
}

/// Unpack one item from its slot.
fn unpack_one(conv: Conv, slot: &[u8], order: Order) -> Dynamic {
    match conv {
        Conv::Int { signed: true } => Dynamic::from_int(get_int(slot, order)),
        Conv::Int { signed: false } | Conv::Pointer => unsigned_value(get_uint(slot, order)),
        Conv::Bool => Dynamic::from_bool(slot[0] != 0),
        Conv::Char | Conv::Bytes => Dynamic::from_blob(slot.to_vec()),
        Conv::Pascal => match slot.split_first() {
            Some((&len, rest)) => Dynamic::from_blob(rest[..usize::from(len).min(rest.len())].to_vec()),
            None => Dynamic::from_blob(Blob::new()),
        },
        Conv::Half => {
            let h = f16::from_bits(get_uint(slot, order) as u16);
            // CPython drops NaN payloads: a quiet NaN with the sign kept.
            Dynamic::from_float(if h.is_nan() { f64::NAN.copysign(h.to_f64()) } else { h.to_f64() })
        }
        Conv::Single { .. } => Dynamic::from_float(f32::from_bits(get_uint(slot, order) as u32).into()),
        Conv::Double => Dynamic::from_float(f64::from_bits(get_uint(slot, order))),
    }
}

/// IEEE half-precision bits of `x`, rounded to nearest-even straight from
/// f64 as CPython's `PyFloat_Pack2` does, or `None` when a finite `x` is too
/// large. Hand-written because `half::f16::from_f64` rounds through f32 on
/// F16C hardware (double rounding) and its software path drops low mantissa
/// bits before rounding, so neither matches CPython at every tie.
fn f64_to_f16_bits(x: f64) -> Option<u16> {
    let bits = x.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    if x.is_nan() {
        return Some(sign | 0x7e00);
    }
    if x.is_infinite() {
        return Some(sign | 0x7c00);
    }
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        // Zero or an f64 subnormal: far below half's smallest subnormal.
        return Some(sign);
    }
    let exp = biased - 1023;
    if exp >= 16 {
        return None;
    }
    let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
    // Keep 11 significant bits for normals; fewer below 2^-14 (subnormals,
    // whose unit is 2^-24).
    let shift = 42 + (-14 - exp).max(0);
    if shift >= 64 {
        return Some(sign);
    }
    let (mut q, rest, half) = (mant >> shift, mant & ((1u64 << shift) - 1), 1u64 << (shift - 1));
    if rest > half || (rest == half && q & 1 == 1) {
        q += 1;
    }
    // Normals: biased exponent above the implicit bit; a rounding carry
    // moves into the exponent on its own.
    let out = if exp >= -14 { (((exp + 14) as u64) << 10) + q } else { q };
    (out < 0x7c00).then_some(sign | out as u16)
}

/// Most values `struct::pack(format, v1, v2, …)` takes as separate
/// arguments; more go in an array. Each count is one overload, and resolving
/// a call tries up to 2^count `Dynamic` parameter combinations once per call
/// site, so the count stays small.
const MAX_POSITIONAL: usize = 10;

/// The doc comment of the positional `struct::pack` overloads.
const PACK_POSITIONAL_DOC: &str = "\
/// Pack the values given as separate arguments, exactly as Python's
/// `struct.pack(format, v1, v2, …)` does (up to 10 values; more go in an
/// array). Errors as for the array form.
///
/// ```rhai
/// let b = struct::pack(\"!IHb\", 1, 2, -3);   // 00 00 00 01 00 02 fd
/// ```";
const STRUCT_PACK_POSITIONAL_DOC: &str = "\
/// Pack the values given as separate arguments with this compiled format,
/// as Python's `Struct.pack(v1, v2, …)` does (up to 10 values; more go in
/// an array).
///
/// ```rhai
/// let b = struct::compile(\"<hh\").pack(1, -1);   // 01 00 ff ff
/// ```";

/// The doc comments of the hand-registered `unpack` functions.
const UNPACK_DOC: &str = "\
/// Unpack `data` (a blob or string of exactly `struct::calcsize(format)`
/// bytes) into an array of values, like Python's `struct.unpack`.
///
/// ```rhai
/// let v = struct::unpack(\"!IHb\", struct::pack(\"!IHb\", [1, 2, -3]));   // [1, 2, -3]
/// ```";
const UNPACK_FROM_DOC: &str = "\
/// Unpack `struct::calcsize(format)` bytes of `data` starting at `offset`
/// (negative counts from the end), like Python's `struct.unpack_from`.
///
/// ```rhai
/// let v = struct::unpack_from(\"<H\", blob(4, 1), 2);   // [257]
/// ```";
const UNPACK_FROM_START_DOC: &str = "\
/// Unpack the first `struct::calcsize(format)` bytes of `data`.
///
/// ```rhai
/// let v = struct::unpack_from(\"<H\", blob(4, 1));   // [257]
/// ```";
const BLOB_UNPACK_FROM_DOC: &str = "\
/// Unpack `struct::calcsize(format)` bytes of this blob at `offset`
/// (negative counts from the end): `struct::unpack_from` with the blob
/// first. Use this form over a large buffer: a call gets its first
/// argument by reference, but outside a loop body copies of the others, so
/// `struct::unpack_from(format, buf, offset)` copies all of `buf` on
/// every call outside a loop (a loop body passes it `buf` in place).
///
/// ```rhai
/// let buf = blob(8, 1);
/// let v = buf.unpack_from(\"<H\", 6);   // [257]
/// ```";
const BLOB_UNPACK_FROM_START_DOC: &str = "\
/// Unpack the first `struct::calcsize(format)` bytes of this blob.
///
/// ```rhai
/// let v = blob(8, 1).unpack_from(\"<H\");   // [257]
/// ```";
const STRUCT_UNPACK_DOC: &str = "\
/// Unpack exactly `size` bytes with this compiled format.
///
/// ```rhai
/// let v = struct::compile(\"<hh\").unpack(struct::pack(\"<hh\", [1, -1]));   // [1, -1]
/// ```";

/// The `struct::` module.
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    // One function serves every count of values, which Rhai's plugin macros
    // cannot express.
    let positional: [(FnNamespace, &str, TypeId, &str, BorrowingFn); 2] = [
        (FnNamespace::Internal, "format: &str", TypeId::of::<ImmutableString>(), PACK_POSITIONAL_DOC, pack_positional),
        (
            FnNamespace::Global,
            "s: &mut Struct",
            TypeId::of::<Struct>(),
            STRUCT_PACK_POSITIONAL_DOC,
            struct_pack_positional,
        ),
    ];
    for (namespace, first, first_type, doc, f) in positional {
        for count in 1..=MAX_POSITIONAL {
            let mut types = vec![first_type];
            types.resize(count + 1, TypeId::of::<Dynamic>());
            let mut params = vec![first.to_string()];
            params.extend((1..=count).map(|k| format!("v{k}: Dynamic")));
            params.push("Blob".into());
            Borrowing::register(&mut m, "pack", namespace, params, types, doc, f);
        }
    }
    let (string, dynamic, int) = (TypeId::of::<ImmutableString>(), TypeId::of::<Dynamic>(), TypeId::of::<INT>());
    let (blob, compiled) = (TypeId::of::<Blob>(), TypeId::of::<Struct>());
    let table: [Row; 6] = [
        ("unpack", FnNamespace::Internal, &["format: &str", "data: Dynamic"], vec![string, dynamic], UNPACK_DOC, |a| {
            unpack_at(a[0], a[1], None, "struct::unpack")
        }),
        (
            "unpack_from",
            FnNamespace::Internal,
            &["format: &str", "data: Dynamic", "offset: INT"],
            vec![string, dynamic, int],
            UNPACK_FROM_DOC,
            |a| unpack_at(a[0], a[1], Some(int_arg(a[2])), "struct::unpack_from"),
        ),
        (
            "unpack_from",
            FnNamespace::Internal,
            &["format: &str", "data: Dynamic"],
            vec![string, dynamic],
            UNPACK_FROM_START_DOC,
            |a| unpack_at(a[0], a[1], Some(0), "struct::unpack_from"),
        ),
        (
            "unpack_from",
            FnNamespace::Global,
            &["data: &mut Blob", "format: &str", "offset: INT"],
            vec![blob, string, int],
            BLOB_UNPACK_FROM_DOC,
            |a| unpack_at(a[1], a[0], Some(int_arg(a[2])), "struct::unpack_from"),
        ),
        (
            "unpack_from",
            FnNamespace::Global,
            &["data: &mut Blob", "format: &str"],
            vec![blob, string],
            BLOB_UNPACK_FROM_START_DOC,
            |a| unpack_at(a[1], a[0], Some(0), "struct::unpack_from"),
        ),
        (
            "unpack",
            FnNamespace::Global,
            &["s: &mut Struct", "data: Dynamic"],
            vec![compiled, dynamic],
            STRUCT_UNPACK_DOC,
            |a| {
                const OP: &str = "struct::unpack";
                let s = a[0].read_lock::<Struct>().ok_or_else(|| pack_error(OP, "not a compiled format"))?;
                Ok(Dynamic::from_array(with_data(a[1], OP, |bytes| s.0.unpack(bytes, OP))?))
            },
        ),
    ];
    for (name, namespace, params, types, doc, f) in table {
        let mut params: Vec<String> = params.iter().map(ToString::to_string).collect();
        params.push("Array".into());
        Borrowing::register(&mut m, name, namespace, params, types, doc, f);
    }
    m
}

/// One hand-registered `unpack` function: name, namespace, parameters (the
/// return type is `Array`), parameter types, doc comment and body.
type Row = (&'static str, FnNamespace, &'static [&'static str], Vec<TypeId>, &'static str, BorrowingFn);

/// An INT argument (its type was checked when the call was resolved).
fn int_arg(value: &Dynamic) -> INT {
    value.as_int().unwrap_or_default()
}

/// `struct::unpack` (no offset: the data is exactly the format's size) and
/// `struct::unpack_from` (at an offset) of `data` with the `format` string.
fn unpack_at(format: &Dynamic, data: &Dynamic, offset: Option<INT>, op: &str) -> NativeResult<Dynamic> {
    let format = format.read_lock::<ImmutableString>().ok_or_else(|| pack_error(op, "the format is not a string"))?;
    let array = with_data(data, op, |bytes| {
        with_layout_of(&format, op, |s| match offset {
            None => s.0.unpack(bytes, op),
            Some(offset) => s.0.unpack_from(bytes, offset, op),
        })
    })?;
    Ok(Dynamic::from_array(array))
}

/// `s.pack(v1, v2, …)`: `args` is the compiled format, then the values.
fn struct_pack_positional(args: &mut [&mut Dynamic]) -> NativeResult<Dynamic> {
    const OP: &str = "struct::pack";
    let (s, values) = args.split_first_mut().ok_or_else(|| pack_error(OP, "no format"))?;
    let s = s.read_lock::<Struct>().ok_or_else(|| pack_error(OP, "not a compiled format"))?;
    Ok(Dynamic::from_blob(s.0.pack(values, OP)?))
}

/// `struct::pack(format, v1, v2, …)`: `args` is the format, then the values.
fn pack_positional(args: &mut [&mut Dynamic]) -> NativeResult<Dynamic> {
    const OP: &str = "struct::pack";
    let (format, values) = args.split_first_mut().ok_or_else(|| pack_error(OP, "no format"))?;
    let format = format.read_lock::<ImmutableString>().ok_or_else(|| pack_error(OP, "the format is not a string"))?;
    Ok(Dynamic::from_blob(with_layout_of(&format, OP, |s| s.0.pack(values, OP))?))
}

#[export_module]
mod api {
    use super::{with_data, with_layout};
    use crate::error::{Error, NativeResult};
    use rhai::{Array, Blob, Dynamic, INT};

    /// A compiled format from `struct::compile`.
    pub type Struct = super::Struct;

    /// Pack `values` as `format` says, like Python's `struct.pack(format, *values)`.
    ///
    /// Raises a `pack` error for a bad format, a wrong number of values, or a
    /// value that does not fit its code.
    ///
    /// ```rhai
    /// let b = struct::pack("!IHb", [1, 2, -3]);   // 00 00 00 01 00 02 fd
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pack(format: &str, values: Array) -> NativeResult<Blob> {
        let s = with_layout(format, "struct::pack", |s| Ok(s.clone()))?;
        crate::runtime::offload("struct::pack", values.len() * 8, move || s.0.pack(&values, "struct::pack"))
    }

    /// Unpack a buffer of whole records, giving one array per record, like
    /// Python's `struct.iter_unpack` (eagerly).
    ///
    /// ```rhai
    /// let rows = struct::iter_unpack("<HB", blob(6, 1));   // [[257, 1], [257, 1]]
    /// ```
    #[rhai_fn(return_raw)]
    pub fn iter_unpack(format: &str, data: Dynamic) -> NativeResult<Array> {
        const OP: &str = "struct::iter_unpack";
        let s = with_layout(format, OP, |s| Ok(s.clone()))?;
        crate::runtime::offload(OP, crate::runtime::data_size(&data), move || {
            with_data(&data, OP, |b| s.0.iter_unpack(b, OP))
        })
    }

    /// The number of bytes `format` packs into, like Python's `struct.calcsize`.
    ///
    /// ```rhai
    /// let n = struct::calcsize("@ci");   // 8: the int is aligned
    /// ```
    #[rhai_fn(return_raw)]
    pub fn calcsize(format: &str) -> NativeResult<INT> {
        Ok(with_layout(format, "struct::calcsize", |s| Ok(s.0.size as INT))?)
    }

    /// Parse `format` once into a reusable `Struct` (Python's `struct.Struct`).
    ///
    /// ```rhai
    /// let hdr = struct::compile("!IHb");
    /// let b = hdr.pack([1, 2, 3]);
    /// print(hdr.unpack(b));   // [1, 2, 3]
    /// ```
    #[rhai_fn(return_raw)]
    pub fn compile(format: &str) -> NativeResult<Struct> {
        Ok(with_layout(format, "struct::compile", |s| Ok(s.clone()))?)
    }

    /// Pack `values` into this blob at `offset` (negative counts from the
    /// end), changing it in place, like Python's `struct.pack_into`. The blob
    /// comes first so that it can be changed: `buf.pack_into(format, offset,
    /// values)` or `struct::pack_into(buf, format, offset, values)`.
    ///
    /// On error the blob is left unchanged.
    ///
    /// ```rhai
    /// let buf = blob(8);
    /// buf.pack_into("!H", 2, [0x1234]);   // 00 00 12 34 00 00 00 00
    /// ```
    #[rhai_fn(global, return_raw)]
    pub fn pack_into(buf: &mut Blob, format: &str, offset: INT, values: Array) -> NativeResult<()> {
        const OP: &str = "struct::pack_into";
        Ok(with_layout(format, OP, |s| s.0.pack_into(buf, offset, &values, OP))?)
    }

    /// Pack `values` with a compiled `Struct` into this blob at `offset`.
    ///
    /// ```rhai
    /// let hdr = struct::compile("!H");
    /// let buf = blob(4);
    /// buf.pack_into(hdr, 0, [7]);   // 00 07 00 00
    /// ```
    #[rhai_fn(name = "pack_into", global, return_raw)]
    pub fn pack_into_compiled(buf: &mut Blob, s: Struct, offset: INT, values: Array) -> NativeResult<()> {
        Ok(s.0.pack_into(buf, offset, &values, "struct::pack_into")?)
    }

    /// Python's argument order cannot change the caller's blob (only a
    /// call's first argument is passed by reference), so it raises a
    /// `value` error pointing to `buf.pack_into(format, offset, values)`.
    ///
    /// ```rhai
    /// let buf = blob(4);
    /// buf.pack_into("!H", 0, [7]);   // not struct::pack_into("!H", buf, 0, [7])
    /// ```
    #[rhai_fn(name = "pack_into", return_raw)]
    pub fn pack_into_python_order(_format: &str, _buf: Blob, _offset: INT, _values: Array) -> NativeResult<()> {
        Err(Error::value(
            "struct::pack_into",
            "the blob must come first to be changed in place: \
             use buf.pack_into(format, offset, values) or struct::pack_into(buf, format, offset, values)",
        )
        .into())
    }

    /// Pack `values` with this compiled format.
    ///
    /// ```rhai
    /// let b = struct::compile("<hh").pack([1, -1]);   // 01 00 ff ff
    /// ```
    #[rhai_fn(name = "pack", global, pure, return_raw)]
    pub fn struct_pack(s: &mut Struct, values: Array) -> NativeResult<Blob> {
        Ok(s.0.pack(&values, "struct::pack")?)
    }

    /// Unpack `size` bytes at `offset` (negative counts from the end).
    ///
    /// ```rhai
    /// let v = struct::compile("B").unpack_from(blob(3, 9), -1);   // [9]
    /// ```
    #[rhai_fn(name = "unpack_from", global, pure, return_raw)]
    pub fn struct_unpack_from(s: &mut Struct, data: Dynamic, offset: INT) -> NativeResult<Array> {
        const OP: &str = "struct::unpack_from";
        with_data(&data, OP, |bytes| s.0.unpack_from(bytes, offset, OP))
    }

    /// Unpack the first `size` bytes of `data`.
    ///
    /// ```rhai
    /// let v = struct::compile("B").unpack_from(blob(3, 9));   // [9]
    /// ```
    #[rhai_fn(name = "unpack_from", global, pure, return_raw)]
    pub fn struct_unpack_from_start(s: &mut Struct, data: Dynamic) -> NativeResult<Array> {
        struct_unpack_from(s, data, 0)
    }

    /// Unpack `size` bytes of this blob at `offset` with a compiled format,
    /// without copying the blob (see `buf.unpack_from(format, offset)`).
    ///
    /// ```rhai
    /// let rec = struct::compile("<H");
    /// let v = blob(8, 1).unpack_from(rec, 6);   // [257]
    /// ```
    #[rhai_fn(name = "unpack_from", global, pure, return_raw)]
    pub fn blob_unpack_from_compiled(data: &mut Blob, s: Struct, offset: INT) -> NativeResult<Array> {
        Ok(s.0.unpack_from(data, offset, "struct::unpack_from")?)
    }

    /// Unpack the first `size` bytes of this blob with a compiled format.
    ///
    /// ```rhai
    /// let v = blob(8, 1).unpack_from(struct::compile("<H"));   // [257]
    /// ```
    #[rhai_fn(name = "unpack_from", global, pure, return_raw)]
    pub fn blob_unpack_from_compiled_start(data: &mut Blob, s: Struct) -> NativeResult<Array> {
        blob_unpack_from_compiled(data, s, 0)
    }

    /// Unpack a buffer of whole records, one array per record.
    ///
    /// ```rhai
    /// let rows = struct::compile("B").iter_unpack(blob(2, 5));   // [[5], [5]]
    /// ```
    #[rhai_fn(name = "iter_unpack", global, pure, return_raw)]
    pub fn struct_iter_unpack(s: &mut Struct, data: Dynamic) -> NativeResult<Array> {
        const OP: &str = "struct::iter_unpack";
        with_data(&data, OP, |bytes| s.0.iter_unpack(bytes, OP))
    }

    /// The number of bytes this format packs into.
    ///
    /// ```rhai
    /// let n = struct::compile("!IHb").size;   // 7
    /// ```
    #[rhai_fn(get = "size", global, pure)]
    pub fn size(s: &mut Struct) -> INT {
        s.0.size as INT
    }

    /// The format string this `Struct` was compiled from.
    ///
    /// ```rhai
    /// let f = struct::compile("!IHb").format;   // "!IHb"
    /// ```
    #[rhai_fn(get = "format", global, pure)]
    pub fn format(s: &mut Struct) -> rhai::ImmutableString {
        s.0.format.clone()
    }

    /// `Struct("!IHb")`.
    ///
    /// ```rhai
    /// print(struct::compile("<H"));   // Struct("<H")
    /// ```
    #[rhai_fn(name = "to_string", name = "to_debug", global, pure)]
    pub fn describe(s: &mut Struct) -> String {
        format!("Struct({:?})", s.0.format.as_str())
    }
}

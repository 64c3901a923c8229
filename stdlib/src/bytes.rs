//! `bytes::` — helpers for binary data.
//!
//! Script data is Rhai blobs (`Vec<u8>`); every function that sends or
//! encodes data also accepts a string, taken as UTF-8 ([`data_arg`]).

use std::borrow::Cow;
use std::sync::OnceLock;

use std::fmt::Write as _;

use rhai::plugin::*;
use rhai::{Blob, Dynamic, Engine, EvalAltResult, FuncRegistration, INT, NativeCallContext, Position};

use crate::error::{Error, Kind, NativeResult};

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

/// Blobs up to this many bytes are allocated directly; larger ones are
/// reserved fallibly, so a huge size is a `limit` error instead of an abort.
const SMALL_BLOB: usize = 1 << 16;

/// The machine's physical memory in bytes: no blob can usefully be larger,
/// whatever the limits say.
pub(crate) fn physical_memory() -> usize {
    static BYTES: OnceLock<usize> = OnceLock::new();
    *BYTES.get_or_init(|| {
        // SAFETY: sysconf only reads its argument.
        let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
        match (usize::try_from(pages), usize::try_from(page)) {
            (Ok(pages), Ok(page)) if pages > 0 && page > 0 => pages.saturating_mul(page),
            _ => usize::MAX,
        }
    })
}

/// Refuse a blob of `len` bytes beyond the engine's `max_array_size` (or,
/// without one, beyond the machine's memory) with a `limit` error naming
/// `op`, before anything is allocated.
///
/// Every native that builds a blob whose size a script or a peer chose
/// checks it here first.
pub fn check_blob_len(len: usize, op: &str) -> Result<(), Error> {
    match crate::runtime::max_array_size() {
        max if max > 0 && len > max => Err(Error::new(
            Kind::Limit,
            op,
            format!("a blob of {len} bytes exceeds the limit of {max} bytes (max_array_size)"),
        )),
        _ if len > physical_memory() => Err(Error::new(
            Kind::Limit,
            op,
            format!("a blob of {len} bytes exceeds this machine's memory ({} bytes)", physical_memory()),
        )),
        _ => Ok(()),
    }
}

/// Room for `len` more bytes in `out`, after [`check_blob_len`] of the total:
/// a `limit` error when it is too large or the memory cannot be had.
pub fn reserve_blob(out: &mut Blob, len: usize, op: &str) -> Result<(), Error> {
    let total = out.len().checked_add(len).ok_or_else(|| Error::new(Kind::Limit, op, "size overflows"))?;
    check_blob_len(total, op)?;
    if len <= SMALL_BLOB {
        out.reserve(len);
        return Ok(());
    }
    out.try_reserve_exact(len).map_err(|_| Error::new(Kind::Limit, op, format!("cannot allocate {total} bytes")))
}

/// A blob of `len` zero bytes for `op` (see [`reserve_blob`]).
pub fn zeroed_blob(len: usize, op: &str) -> Result<Blob, Error> {
    if len <= SMALL_BLOB {
        check_blob_len(len, op)?;
        return Ok(vec![0; len]);
    }
    let mut out = Blob::new();
    reserve_blob(&mut out, len, op)?;
    out.resize(len, 0);
    Ok(out)
}

/// The length `len` asks for in Rhai's `blob(len)` / `pad(len)`: 0 when not
/// positive; Rhai's own (uncatchable) error beyond the engine's
/// `max_array_size`, as its built-ins raise; a `limit` error beyond the
/// machine's memory when no limit is set.
fn asked_len(ctx: &NativeCallContext, len: INT, op: &str) -> NativeResult<usize> {
    let len = usize::try_from(len).unwrap_or(0);
    let max = ctx.engine().max_array_size();
    if max > 0 && len > max {
        return Err(EvalAltResult::ErrorDataTooLarge("Size of BLOB".into(), Position::NONE).into());
    }
    check_blob_len(len, op)?;
    Ok(len)
}

/// Register `blob(len)`, `blob(len, value)` and `b.pad(len, value)` on
/// `engine`, over Rhai's built-ins of the same names. They behave the same,
/// except that without a `max_array_size` Rhai's versions try any size (an
/// abort, or filling memory for ever, for `blob(1 << 50)`); these raise a
/// `limit` error beyond the machine's memory.
pub fn register_sized(engine: &mut Engine) {
    const BLOB: &[&str] = &[
        "/// A new blob of `len` zero bytes (empty if `len` <= 0).",
        "///",
        "/// A length beyond the machine's memory is a `limit` error (beyond",
        "/// `--max-array-size`, the engine's size error).",
        "///",
        "/// ```rhai",
        "/// let b = blob(4);   // [00000000]",
        "/// ```",
    ];
    const BLOB_VALUE: &[&str] = &[
        "/// A new blob of `len` bytes, each `value` (its low 8 bits); empty if `len` <= 0.",
        "///",
        "/// ```rhai",
        "/// let b = blob(3, 0x41);   // [414141]",
        "/// ```",
    ];
    const PAD: &[&str] = &[
        "/// Grow the blob to `len` bytes with copies of `value` (its low 8 bits);",
        "/// nothing happens if it is already that long.",
        "///",
        "/// ```rhai",
        "/// let b = blob(1);",
        "/// b.pad(3, 0xff);   // [00ffff]",
        "/// ```",
    ];
    FuncRegistration::new("blob")
        .with_comments(BLOB)
        .with_params_info(["len: INT", "Blob"])
        .register_into_engine(engine, |ctx: NativeCallContext, len: INT| -> NativeResult<Blob> {
            Ok(vec![0; asked_len(&ctx, len, "blob")?])
        });
    FuncRegistration::new("blob")
        .with_comments(BLOB_VALUE)
        .with_params_info(["len: INT", "value: INT", "Blob"])
        .register_into_engine(engine, |ctx: NativeCallContext, len: INT, value: INT| -> NativeResult<Blob> {
            Ok(vec![(value & 0xff) as u8; asked_len(&ctx, len, "blob")?])
        });
    FuncRegistration::new("pad")
        .with_comments(PAD)
        .with_params_info(["blob: &mut Blob", "len: INT", "value: INT", "()"])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, b: &mut Blob, len: INT, value: INT| -> NativeResult<()> {
                let len = asked_len(&ctx, len, "pad")?;
                if len > b.len() {
                    b.resize(len, (value & 0xff) as u8);
                }
                Ok(())
            },
        );
}

/// The `bytes::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// `xxd`-style dump: offset, 16 bytes in hex (grouped by two), ASCII.
#[must_use]
pub fn hexdump(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 + 16);
    for (i, line) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x}: ", i * 16);
        for j in 0..16 {
            match line.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x}");
                }
                None => out.push_str("  "),
            }
            if j % 2 == 1 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(line.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }));
        out.push('\n');
    }
    out.pop();
    out
}

/// Text if `data` is printable UTF-8 (shown with escapes for controls),
/// otherwise a hexdump: how traces and the REPL show traffic.
#[must_use]
pub fn render(data: &[u8]) -> String {
    match printable(data) {
        Some(text) => format!("{text:?}"),
        None => hexdump(data),
    }
}

/// `data` as text if it is UTF-8 with no control characters but tab, CR
/// and LF.
#[must_use]
pub fn printable(data: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(data).ok()?;
    s.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\r' | '\n')).then_some(s)
}

/// How `received` differs from `expected`, for a person: empty when they
/// are equal; else the first differing byte's offset and both lengths,
/// then, for text, the first differing line of each (with a line of
/// context before it), or, for binary data, a hexdump of each around the
/// offset.
#[must_use]
pub fn diff(expected: &[u8], received: &[u8]) -> String {
    if expected == received {
        return String::new();
    }
    let at = expected.iter().zip(received).take_while(|(a, b)| a == b).count();
    let mut out = format!("differs at byte {at} (expected {} bytes, received {})", expected.len(), received.len());
    if let (Some(e), Some(r)) = (printable(expected), printable(received)) {
        // Counted in bytes: `at` may fall inside a character both share the first byte of.
        let line = expected[..at].iter().filter(|&&b| b == b'\n').count();
        let (el, rl): (Vec<&str>, Vec<&str>) = (e.split_inclusive('\n').collect(), r.split_inclusive('\n').collect());
        if line > 0 {
            let _ = write!(out, "\n  line {}: {:?}", line, el[line - 1]);
        }
        let _ = write!(out, "\n- line {}: {:?}", line + 1, el.get(line).copied().unwrap_or(""));
        let _ = write!(out, "\n+ line {}: {:?}", line + 1, rl.get(line).copied().unwrap_or(""));
    } else {
        let from = at / 16 * 16;
        let window = |d: &[u8]| {
            let part = &d[from.min(d.len())..(from + 48).min(d.len())];
            hexdump(part)
                .lines()
                .enumerate()
                .map(|(i, l)| format!("{:08x}{}", from + i * 16, &l[8..]))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        let _ = write!(out, "\n- expected:\n  {}\n+ received:\n  {}", window(expected), window(received));
    }
    out
}

/// Short debug form of a blob: inline hex when small, a hexdump otherwise.
#[must_use]
pub fn debug(data: &[u8]) -> String {
    if data.len() <= 16 {
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        format!("b\"{hex}\" ({} bytes)", data.len())
    } else {
        format!("blob, {} bytes:\n{}", data.len(), hexdump(&data[..data.len().min(256)]))
            + if data.len() > 256 { "\n..." } else { "" }
    }
}

/// Python-style index: negative counts from the end; clamped to `0..=len`.
fn clamp_index(i: INT, len: usize) -> usize {
    if i < 0 { len.saturating_sub(i.unsigned_abs() as usize) } else { (i as usize).min(len) }
}

#[export_module]
mod api {
    use super::*;

    /// Hex text to a blob; whitespace between bytes is ignored (as
    /// `hex::decode`).
    ///
    /// ```rhai
    /// let b = bytes::from_hex("de ad be ef");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn from_hex(text: &str) -> NativeResult<Blob> {
        crate::codec::hex::decode(text.as_bytes(), "bytes::from_hex").map_err(Into::into)
    }

    /// A blob (or string) as lowercase hex.
    ///
    /// ```rhai
    /// print(bytes::to_hex("AB"));   // 4142
    /// ```
    #[rhai_fn(return_raw)]
    pub fn to_hex(data: Dynamic) -> NativeResult<String> {
        let data = data_arg(&data, "bytes::to_hex")?;
        Ok(data.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// How `received` differs from `expected` (blobs or strings): `""` when
    /// equal, else where they part, with the differing line of each for
    /// text or a hexdump of each around that byte for binary data.
    ///
    /// ```rhai
    /// print(bytes::diff("HELO alpha\r\n", "HELO beta\r\n"));
    /// // differs at byte 5 (expected 12 bytes, received 11)
    /// // - line 1: "HELO alpha\r\n"
    /// // + line 1: "HELO beta\r\n"
    /// ```
    #[rhai_fn(return_raw)]
    pub fn diff(expected: Dynamic, received: Dynamic) -> NativeResult<String> {
        let e = data_arg(&expected, "bytes::diff")?;
        let r = data_arg(&received, "bytes::diff")?;
        Ok(super::diff(&e, &r))
    }

    /// An `xxd`-style dump: offset, hex columns, ASCII.
    ///
    /// ```rhai
    /// print(bytes::hexdump("hello, world\n"));
    /// ```
    #[rhai_fn(return_raw)]
    pub fn hexdump(data: Dynamic) -> NativeResult<String> {
        let data = data_arg(&data, "bytes::hexdump")?;
        Ok(super::hexdump(&data))
    }

    /// The UTF-8 bytes of a string (or a copy of a blob).
    ///
    /// ```rhai
    /// let b = bytes::from("héllo");   // 6 bytes
    /// ```
    #[rhai_fn(name = "from", return_raw)]
    pub fn from_data(data: Dynamic) -> NativeResult<Blob> {
        Ok(data_arg(&data, "bytes::from")?.into_owned())
    }

    /// Latin-1 text to bytes: each character 0..255 becomes one byte.
    ///
    /// ```rhai
    /// let b = bytes::from_latin1("caf\u00e9");   // 4 bytes
    /// ```
    #[rhai_fn(return_raw)]
    pub fn from_latin1(text: &str) -> NativeResult<Blob> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                u8::try_from(u32::from(c)).map_err(|_| {
                    Error::value("bytes::from_latin1", format!("character {i} ({c:?}) is not latin-1")).into()
                })
            })
            .collect()
    }

    /// The blob as UTF-8 text; a `decode` error if it is not valid UTF-8.
    ///
    /// ```rhai
    /// let s = bytes::from_hex("6869").as_string();   // "hi"
    /// ```
    #[rhai_fn(global, name = "as_string", return_raw)]
    pub fn as_string(b: &mut Blob) -> NativeResult<String> {
        String::from_utf8(b.clone()).map_err(|e| {
            Error::new(Kind::Decode, "as_string", format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()))
                .into()
        })
    }

    /// The blob as UTF-8 text, invalid sequences replaced by U+FFFD.
    ///
    /// ```rhai
    /// let s = bytes::from_hex("68ff").as_string_lossy();
    /// ```
    #[rhai_fn(global, name = "as_string_lossy", pure)]
    pub fn as_string_lossy(b: &mut Blob) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// The blob as latin-1 text (every byte is one character).
    ///
    /// ```rhai
    /// let s = bytes::from_hex("e9").as_latin1();   // "é"
    /// ```
    #[rhai_fn(global, name = "as_latin1", pure)]
    pub fn as_latin1(b: &mut Blob) -> String {
        b.iter().map(|&c| char::from(c)).collect()
    }

    /// Index of the first `needle` (blob or string), or -1.
    ///
    /// ```rhai
    /// print(bytes::from("a=b").find("="));   // 1
    /// ```
    #[rhai_fn(global, name = "find", return_raw, pure)]
    pub fn find(b: &mut Blob, needle: Dynamic) -> NativeResult<INT> {
        let needle = data_arg(&needle, "find")?;
        if needle.is_empty() {
            return Ok(0);
        }
        Ok(crate::tcp::find(b, &needle).map_or(-1, |i| i as INT))
    }

    /// Bytes `start..end` with Python slice rules (negative from the end, clamped).
    ///
    /// ```rhai
    /// let b = bytes::from("hello");
    /// print(b.slice(1, -1).as_string());   // ell
    /// ```
    #[rhai_fn(global, name = "slice", pure)]
    pub fn slice(b: &mut Blob, start: INT, end: INT) -> Blob {
        let (s, e) = (clamp_index(start, b.len()), clamp_index(end, b.len()));
        if s >= e { Blob::new() } else { b[s..e].to_vec() }
    }

    /// Bytes from `start` to the end (Python slice rules).
    ///
    /// ```rhai
    /// print(bytes::from("hello").slice(-2).as_string());   // lo
    /// ```
    #[rhai_fn(global, name = "slice", pure)]
    pub fn slice_from(b: &mut Blob, start: INT) -> Blob {
        let s = clamp_index(start, b.len());
        b[s..].to_vec()
    }

    /// Whether the blob starts with `prefix` (blob or string).
    ///
    /// ```rhai
    /// print(bytes::from("HTTP/1.1").starts_with("HTTP"));   // true
    /// ```
    #[rhai_fn(global, name = "starts_with", return_raw, pure)]
    pub fn starts_with(b: &mut Blob, prefix: Dynamic) -> NativeResult<bool> {
        Ok(b.starts_with(&data_arg(&prefix, "starts_with")?))
    }

    /// A blob with a short hexdump, for `debug` and the REPL.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn to_debug(b: &mut Blob) -> String {
        super::debug(b)
    }
}

#[cfg(test)]
mod tests {
    use rhai::{Blob, Engine, Map};

    fn engine() -> Engine {
        let mut engine = Engine::new();
        crate::register_all(&mut engine);
        engine
    }

    #[test]
    fn diff_points_at_the_first_difference_as_text_or_hex() {
        assert_eq!(super::diff(b"same", b"same"), "");
        let text = super::diff(b"EHLO a\r\nMAIL FROM:<x>\r\n", b"EHLO a\r\nMAIL FROM:<y>\r\n");
        assert!(text.starts_with("differs at byte 19 (expected 23 bytes, received 23)"), "{text}");
        assert!(text.contains("  line 1: \"EHLO a\\r\\n\""), "{text}");
        assert!(text.contains("- line 2: \"MAIL FROM:<x>\\r\\n\"\n+ line 2: \"MAIL FROM:<y>\\r\\n\""), "{text}");
        // They part inside a character ("é" and "è" share their first byte).
        let accents = super::diff("caf\u{e9}\n".as_bytes(), "caf\u{e8}\n".as_bytes());
        assert!(accents.starts_with("differs at byte 4") && accents.contains("- line 1: \"café\\n\""), "{accents}");
        let short = super::diff(b"abc", b"ab");
        assert!(short.contains("differs at byte 2 (expected 3 bytes, received 2)"), "{short}");
        let mut a = vec![0u8; 40];
        let mut b = a.clone();
        b[33] = 0xff;
        a[0] = 1;
        b[0] = 1;
        let hex = super::diff(&a, &b);
        assert!(hex.contains("differs at byte 33"), "{hex}");
        assert!(hex.contains("- expected:\n  00000020: 0000"), "{hex}");
        assert!(hex.contains("+ received:\n  00000020: 00ff"), "{hex}");
    }

    #[test]
    fn blob_constructors_refuse_sizes_beyond_memory_with_a_catchable_limit_error() {
        let engine = engine();
        for code in ["blob(1 << 50)", "blob(1 << 40, 1)", "let b = blob(1); b.pad(1 << 50, 0); b"] {
            let caught: Map = engine
                .eval(&format!("let r = #{{}}; try {{ {code}; }} catch (e) {{ r = e; }} r"))
                .unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(caught.get("kind").map(ToString::to_string).as_deref(), Some("limit"), "{code}: {caught:?}");
        }
    }

    #[test]
    fn blob_constructors_behave_as_rhais_within_memory() {
        let engine = engine();
        let cases: [(&str, &[u8]); 5] = [
            ("blob(4)", &[0, 0, 0, 0]),
            ("blob(3, 0x141)", b"AAA"),
            ("blob(-1)", &[]),
            ("let b = blob(1); b.pad(3, 0xff); b", &[0, 0xff, 0xff]),
            ("let b = blob(2, 7); b.pad(1, 1); b", &[7, 7]),
        ];
        for (code, want) in cases {
            assert_eq!(engine.eval::<Blob>(code).unwrap_or_else(|e| panic!("{code}: {e}")), want, "{code}");
        }
        // With a limit set, Rhai's own size error, as its built-ins raise.
        let mut limited = engine;
        limited.set_max_array_size(10);
        let e = limited.eval::<Blob>("blob(20)").expect_err("over the limit");
        assert!(matches!(*e, rhai::EvalAltResult::ErrorDataTooLarge(..)), "{e}");
    }
}

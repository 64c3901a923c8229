//! `hex::` — hexadecimal text, like Python's `bytes.hex()` and `bytes.fromhex()`.
//!
//! Hand-written: the codec is a few lines and no hex crate is a dependency;
//! `decode` follows `bytes.fromhex` exactly (whitespace allowed between
//! byte pairs, not inside one).

use rhai::Blob;
use rhai::plugin::*;

use crate::bytes::data_arg;
use crate::error::{Error, Kind, NativeResult};

/// The `hex::` module.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

/// Lowercase hex digits of `data`.
#[must_use]
pub fn encode(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(data.len() * 2);
    for &b in data {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    text
}

/// What stands at byte `i` of `text`, for an error message: the character
/// there (a whole UTF-8 sequence) or, in bytes that are not UTF-8, the byte.
fn shown_at(text: &[u8], i: usize) -> String {
    let Some(rest) = text.get(i..).filter(|r| !r.is_empty()) else { return "end of text".to_owned() };
    let chunk = rest.utf8_chunks().next();
    match chunk.and_then(|c| c.valid().chars().next()) {
        Some(c) => format!("{c:?}"),
        None => format!("byte 0x{:02x}", rest[0]),
    }
}

/// The character position of byte `i` in UTF-8 `text` (its byte position
/// when `text` is not UTF-8 before it), as Python counts positions in a str.
fn char_position(text: &[u8], i: usize) -> usize {
    let head = &text[..i.min(text.len())];
    if std::str::from_utf8(head).is_ok() { head.iter().filter(|&&b| b & 0xc0 != 0x80).count() } else { i }
}

/// Parse hex text as `bytes.fromhex` does; errors name `op`, the position
/// (in characters) and the character found there.
pub fn decode(text: &[u8], op: &str) -> Result<Vec<u8>, Error> {
    let digit = |i: usize| -> Result<u8, Error> {
        let c = text.get(i).copied();
        c.and_then(|c| char::from(c).to_digit(16)).and_then(|d| u8::try_from(d).ok()).ok_or_else(|| {
            let (at, what) = (char_position(text, i), shown_at(text, i));
            Error::new(Kind::Decode, op, format!("non-hexadecimal number found at position {at} ({what})"))
        })
    };
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut i = 0;
    while i < text.len() {
        // Python's ASCII whitespace: space, \t \n \v \f \r.
        if matches!(text[i], b' ' | b'\t'..=b'\r') {
            i += 1;
            continue;
        }
        out.push(digit(i)? << 4 | digit(i + 1)?);
        i += 2;
    }
    Ok(out)
}

#[export_module]
mod api {
    use super::{Blob, NativeResult, data_arg};

    /// Hex-encode data (blob or string) as lowercase text, like `bytes.hex()`.
    ///
    /// ```rhai
    /// print(hex::encode("AB"));   // 4142
    /// ```
    #[rhai_fn(name = "encode", return_raw)]
    pub fn encode(data: Dynamic) -> NativeResult<String> {
        Ok(super::encode(&data_arg(&data, "hex::encode")?))
    }

    /// Decode hex text (either case; whitespace between byte pairs is
    /// skipped, like `bytes.fromhex`) into a blob. Anything else is a
    /// `decode` error giving the position.
    ///
    /// ```rhai
    /// let b = hex::decode("de ad BE EF");
    /// print(b.len());   // 4
    /// ```
    #[rhai_fn(name = "decode", return_raw)]
    pub fn decode(text: Dynamic) -> NativeResult<Blob> {
        const OP: &str = "hex::decode";
        Ok(super::decode(&data_arg(&text, OP)?, OP)?)
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    fn error(text: &[u8]) -> String {
        decode(text, "hex::decode").expect_err("bad hex").to_string()
    }

    #[test]
    fn errors_name_the_character_and_its_position() {
        // Python: non-hexadecimal number found in fromhex() arg at position 2.
        assert!(error("abé".as_bytes()).contains("at position 2 ('é')"), "{}", error("abé".as_bytes()));
        // Positions count characters, as Python's do in a str.
        assert!(error("éé00".as_bytes()).contains("at position 0 ('é')"));
        assert!(error("00 ☃".as_bytes()).contains("at position 3 ('☃')"));
        assert!(error(b"a").contains("at position 1 (end of text)"));
        // Not UTF-8: the byte itself.
        assert!(error(b"00\xff").contains("at position 2 (byte 0xff)"), "{}", error(b"00\xff"));
        assert_eq!(decode(b"de ad\tBE\nEF", "hex::decode").expect("good hex"), [0xde, 0xad, 0xbe, 0xef]);
    }
}

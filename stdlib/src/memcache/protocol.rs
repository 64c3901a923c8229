//! memcached's text protocol: request encoding and a bounded, incremental
//! reply parser.
//!
//! [`parse`] reads one reply unit (a status line, a `VALUE` block, a `STAT`
//! line, `END`…) from the front of a buffer and says how many bytes it
//! used, or that more bytes are needed. A peer can send anything: lines are
//! bounded by [`MAX_LINE`], values by the caller's limit, and every number is
//! checked, so a hostile reply is an error, never a panic or a huge
//! allocation.

use std::fmt;

/// Longest reply line accepted (a `VALUE` header holds a 250-byte key and
/// three numbers; `STAT` and error lines are shorter in practice).
pub const MAX_LINE: usize = 4096;
/// Longest key memcached accepts.
pub const MAX_KEY: usize = 250;

/// One unit of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An item of a `get`/`gets` reply.
    Value {
        /// The item's key.
        key: Vec<u8>,
        /// The client flags stored with it.
        flags: u32,
        /// Its CAS unique (`gets` only).
        cas: Option<u64>,
        /// The value.
        data: Vec<u8>,
    },
    /// A `STAT name value` line.
    Stat(String, String),
    /// `END`: a retrieval or `stats` reply is complete.
    End,
    /// The new value of `incr`/`decr`.
    Number(u64),
    /// `VERSION x`.
    Version(String),
    /// A one-word status.
    Status(Status),
    /// `ERROR`, `CLIENT_ERROR msg` or `SERVER_ERROR msg`.
    Failure(Failure),
}

/// The one-word statuses of storage and other commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `STORED`.
    Stored,
    /// `NOT_STORED` (`add` of an existing key, `replace` of a missing one…).
    NotStored,
    /// `EXISTS` (a `cas` lost the race).
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
}

/// An error reply of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `ERROR`: the server did not know the command.
    Unknown,
    /// `CLIENT_ERROR msg`: the request was malformed (or, for `incr`, the value is not a number).
    Client(String),
    /// `SERVER_ERROR msg`: the server could not do it (out of memory, too large…).
    Server(String),
}

/// A reply that breaks the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(what: impl Into<String>) -> Malformed {
    Malformed(what.into())
}

/// Parse one reply unit from the front of `buf`: `Ok(Some((frame, used)))`,
/// `Ok(None)` if more bytes are needed, or an error for a reply that breaks
/// the protocol (a line longer than [`MAX_LINE`], a value larger than
/// `max_value`, a bad number, a missing terminator…).
pub fn parse(buf: &[u8], max_value: usize) -> Result<Option<(Frame, usize)>, Malformed> {
    let scan = &buf[..buf.len().min(MAX_LINE + 2)];
    let Some(nl) = scan.windows(2).position(|w| w == b"\r\n") else {
        // Only a full window proves the line too long: with one byte less,
        // its last byte may be the `\r` of a line of exactly MAX_LINE.
        if scan.len() == MAX_LINE + 2 {
            return Err(bad(format!("a reply line longer than {MAX_LINE} bytes")));
        }
        return Ok(None);
    };
    let line = &buf[..nl];
    let after = nl + 2;
    let text = std::str::from_utf8(line).map_err(|_| bad("a reply line that is not text"))?;
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let frame = match word {
        "VALUE" => return parse_value(buf, rest, after, max_value),
        "END" if rest.is_empty() => Frame::End,
        "STAT" => {
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            Frame::Stat(name.to_string(), value.to_string())
        }
        "VERSION" => Frame::Version(rest.to_string()),
        "STORED" => Frame::Status(Status::Stored),
        "NOT_STORED" => Frame::Status(Status::NotStored),
        "EXISTS" => Frame::Status(Status::Exists),
        "NOT_FOUND" => Frame::Status(Status::NotFound),
        "DELETED" => Frame::Status(Status::Deleted),
        "TOUCHED" => Frame::Status(Status::Touched),
        "OK" => Frame::Status(Status::Ok),
        "ERROR" => Frame::Failure(Failure::Unknown),
        "CLIENT_ERROR" => Frame::Failure(Failure::Client(rest.to_string())),
        "SERVER_ERROR" => Frame::Failure(Failure::Server(rest.to_string())),
        digits if rest.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Frame::Number(digits.parse().map_err(|_| bad(format!("a number out of range: {digits}")))?)
        }
        _ => return Err(bad(format!("an unexpected reply line {:?}", preview(text)))),
    };
    Ok(Some((frame, after)))
}

/// The rest of a `VALUE <key> <flags> <bytes> [<cas>]` header at `buf[..after]`.
fn parse_value(buf: &[u8], header: &str, after: usize, max_value: usize) -> Result<Option<(Frame, usize)>, Malformed> {
    let fields: Vec<&str> = header.split(' ').collect();
    if !(3..=4).contains(&fields.len()) {
        return Err(bad(format!("a malformed VALUE line {:?}", preview(header))));
    }
    let key = fields[0];
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(bad("a VALUE line with a bad key"));
    }
    let number = |s: &str| -> Result<u64, Malformed> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("a bad number {:?} in a VALUE line", preview(s))));
        }
        s.parse().map_err(|_| bad(format!("a number out of range in a VALUE line: {}", preview(s))))
    };
    let flags = u32::try_from(number(fields[1])?).map_err(|_| bad("VALUE flags out of range"))?;
    let size = number(fields[2])?;
    let cas = fields.get(3).map(|s| number(s)).transpose()?;
    let size = usize::try_from(size).ok().filter(|&n| n <= max_value).ok_or_else(|| {
        bad(format!("a value of {size} bytes, above the limit of {max_value} (raise the 'max_value' option)"))
    })?;
    let end = after + size;
    if buf.len() < end + 2 {
        return Ok(None);
    }
    if &buf[end..end + 2] != b"\r\n" {
        return Err(bad("a value not followed by CRLF"));
    }
    let frame = Frame::Value { key: key.as_bytes().to_vec(), flags, cas, data: buf[after..end].to_vec() };
    Ok(Some((frame, end + 2)))
}

/// What ends the reply of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// This many one-line replies.
    Lines(usize),
    /// This many `END`-terminated blocks (one per `get` line) of at most
    /// `items` values or `STAT` lines in all.
    Ends {
        /// The `END`s (or error lines) that end it.
        ends: usize,
        /// The most values or `STAT` lines it can hold.
        items: usize,
    },
}

/// The reply of one request, gathered unit by unit as [`parse`] yields
/// them. A server that sends more than the request can have (a `get` of
/// three keys answered by four values) or a unit that does not belong (a
/// number in a `get` reply) has broken the protocol: an error, never an
/// unbounded reply.
#[derive(Debug, Default)]
pub struct Assembly {
    frames: Vec<Frame>,
    ends: usize,
}

impl Assembly {
    /// Add `frame` to the reply of a request that expects `expect`: the
    /// whole reply once this unit completes it (and the assembly is empty
    /// again for the next request), `None` while more are to come.
    pub fn push(&mut self, expect: Expect, frame: Frame) -> Result<Option<Vec<Frame>>, Malformed> {
        let done = match expect {
            Expect::Lines(n) => self.frames.len() + 1 >= n,
            Expect::Ends { ends, items } => {
                match &frame {
                    Frame::End | Frame::Failure(_) => self.ends += 1,
                    Frame::Value { .. } | Frame::Stat(..) if self.frames.len() - self.ends < items => {}
                    Frame::Value { .. } | Frame::Stat(..) => {
                        return Err(bad(format!("more items than the request can have ({items})")));
                    }
                    other => return Err(bad(format!("an unexpected reply {other:?}"))),
                }
                self.ends >= ends
            }
        };
        self.frames.push(frame);
        if !done {
            return Ok(None);
        }
        self.ends = 0;
        Ok(Some(std::mem::take(&mut self.frames)))
    }

    /// Forget a reply begun on a connection that is gone.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.ends = 0;
    }
}

/// At most 60 characters of `s`, for messages.
fn preview(s: &str) -> String {
    s.chars().take(60).collect()
}

/// Why a key cannot be sent, if it cannot: memcached keys are 1 to 250
/// bytes with no spaces or control characters.
#[must_use]
pub fn key_problem(key: &[u8]) -> Option<String> {
    if key.is_empty() {
        return Some("the key is empty".into());
    }
    if key.len() > MAX_KEY {
        return Some(format!("the key is {} bytes long; memcached allows {MAX_KEY}", key.len()));
    }
    key.iter()
        .position(|&b| b <= b' ' || b == 0x7f)
        .map(|i| format!("the key has a space or control character (byte 0x{:02x} at {i})", key[i]))
}

/// A storage command: `<cmd> <key> <flags> <exptime> <bytes> [<cas>]\r\n<data>\r\n`.
#[must_use]
pub fn storage(cmd: &str, key: &[u8], flags: u32, expire: u32, data: &[u8], cas: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmd.len() + key.len() + data.len() + 48);
    out.extend_from_slice(cmd.as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.extend_from_slice(format!(" {flags} {expire} {}", data.len()).as_bytes());
    if let Some(cas) = cas {
        out.extend_from_slice(format!(" {cas}").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// A command of words: `<cmd> <arg> <arg>…\r\n` (`get a b c`, `delete k`, `incr k 5`).
#[must_use]
pub fn command<'a>(cmd: &str, args: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(cmd.as_bytes());
    for arg in args {
        out.push(b' ');
        out.extend_from_slice(arg);
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_reply_unit() {
        let reply = b"VALUE k 5 3 99\r\nabc\r\nEND\r\n";
        let (frame, used) = parse(reply, 100).unwrap().unwrap();
        assert_eq!(frame, Frame::Value { key: b"k".to_vec(), flags: 5, cas: Some(99), data: b"abc".to_vec() });
        assert_eq!(parse(&reply[used..], 100).unwrap(), Some((Frame::End, 5)));
        assert_eq!(parse(b"42\r\n", 1).unwrap(), Some((Frame::Number(42), 4)));
        assert_eq!(parse(b"STAT pid 7\r\n", 1).unwrap().unwrap().0, Frame::Stat("pid".into(), "7".into()));
        assert_eq!(
            parse(b"SERVER_ERROR out of memory\r\n", 1).unwrap().unwrap().0,
            Frame::Failure(Failure::Server("out of memory".into()))
        );
    }

    #[test]
    fn assembles_a_reply_until_its_ends_and_refuses_more_than_it_can_hold() {
        let value = |k: &str| Frame::Value { key: k.into(), flags: 0, cas: None, data: b"v".to_vec() };
        let two_gets = Expect::Ends { ends: 2, items: 3 };
        let mut reply = Assembly::default();
        for frame in [value("a"), Frame::End, value("b")] {
            assert_eq!(reply.push(two_gets, frame).unwrap(), None);
        }
        let whole = reply.push(two_gets, Frame::End).unwrap().unwrap();
        assert_eq!(whole, [value("a"), Frame::End, value("b"), Frame::End]);
        // The next reply starts empty.
        assert_eq!(reply.push(Expect::Lines(1), Frame::Number(7)).unwrap(), Some(vec![Frame::Number(7)]));

        let one_get = Expect::Ends { ends: 1, items: 1 };
        reply.push(one_get, value("a")).unwrap();
        assert_eq!(reply.push(one_get, value("b")).unwrap_err().0, "more items than the request can have (1)");
        reply.clear();
        assert!(reply.push(one_get, Frame::Number(1)).unwrap_err().0.starts_with("an unexpected reply Number"));
    }

    #[test]
    fn waits_for_whole_units() {
        assert_eq!(parse(b"VALUE k 0 10\r\nabc", 100).unwrap(), None);
        assert_eq!(parse(b"STOR", 100).unwrap(), None);
        // The longest line, its CRLF still on the way.
        let mut line = b"STAT x ".to_vec();
        line.resize(MAX_LINE, b'y');
        line.push(b'\r');
        assert_eq!(parse(&line, 100).unwrap(), None);
        line.push(b'\n');
        assert_eq!(parse(&line, 100).unwrap().unwrap().1, MAX_LINE + 2);
    }

    #[test]
    fn rejects_hostile_replies() {
        assert!(parse(b"VALUE k 0 99999999999999999999999\r\n", 100).is_err());
        assert!(parse(b"VALUE k 0 101\r\n", 100).is_err());
        assert!(parse(b"VALUE k 0 3\r\nabcXY", 100).is_err());
        assert!(parse(b"VALUE k 99999999999 3\r\nabc\r\n", 100).is_err());
        assert!(parse(&[b'x'; MAX_LINE + 10], 100).is_err());
        assert!(parse(b"HELLO\r\n", 100).is_err());
    }

    #[test]
    fn keys_are_checked() {
        assert!(key_problem(b"ok-key").is_none());
        assert!(key_problem(b"").is_some());
        assert!(key_problem(b"a b").is_some());
        assert!(key_problem(b"a\nb").is_some());
        assert!(key_problem(&[b'k'; 251]).is_some());
        assert!(key_problem(&[b'k'; 250]).is_none());
    }
}

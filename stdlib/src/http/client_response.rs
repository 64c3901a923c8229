//! An HTTP response as scripts see it: status, reason, headers (looked up
//! case-insensitively, repeated headers kept), the final URL, the redirect
//! history, and the body — read whole, or streamed piece by piece with
//! `read(n)`, `read_line()` and iteration so a large download never sits
//! whole in memory.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use rhai::{Array, Blob, Dynamic};

use super::decode::{Decoder, too_big};
use super::transport::{Timing, hyper_error};
use crate::error::{Error, Kind, NativeResult};

/// Response headers as hyper parsed them: names lower-cased, in arrival
/// order with repeats after their first, values turned into text only when
/// a script reads them (a load test that never looks at them pays nothing).
#[derive(Clone, Debug, Default)]
pub struct Headers(pub Arc<http::HeaderMap>);

/// A header value as text (bytes that are not UTF-8 replaced).
fn text(v: &http::HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

impl Headers {
    /// Every value of `name` (any case), in order.
    pub fn get_all(&self, name: &str) -> Vec<String> {
        self.0.get_all(name).iter().map(text).collect()
    }

    /// The values of `name` joined with `", "`, as requests' `headers[name]`.
    pub fn get(&self, name: &str) -> Option<String> {
        let all = self.get_all(name);
        (!all.is_empty()).then(|| all.join(", "))
    }

    /// Whether `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every `(name, value)`, in order, repeats kept.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, String)> {
        self.0.iter().map(|(k, v)| (k.as_str(), text(v)))
    }
}

/// What runs once a body has been read to its end: the connection goes
/// back to its session's pool.
pub type OnDone = Box<dyn FnOnce() + Send + Sync>;

/// The body of a response still arriving from the server.
pub struct BodyReader {
    body: Option<Incoming>,
    decoder: Option<Decoder>,
    /// Bytes received from the wire (before decoding).
    received: usize,
    /// What `Content-Length` announced, if anything.
    declared: Option<u64>,
    produced: usize,
    max: usize,
    timing: Timing,
    op: String,
    peer: String,
    on_done: Option<OnDone>,
}

/// Reading a body: where its pieces come from and the limits that apply.
pub struct ReaderSpec {
    pub op: String,
    pub peer: String,
    pub timing: Timing,
    pub max: usize,
    pub decoder: Option<Decoder>,
    pub declared: Option<u64>,
    pub on_done: Option<OnDone>,
}

impl BodyReader {
    /// A reader of `body`.
    pub fn new(body: Incoming, spec: ReaderSpec) -> Self {
        Self {
            body: Some(body),
            decoder: spec.decoder,
            received: 0,
            declared: spec.declared,
            produced: 0,
            max: spec.max,
            timing: spec.timing,
            op: spec.op,
            peer: spec.peer,
            on_done: spec.on_done,
        }
    }

    /// The next decoded piece of the body, or `None` at its end.
    pub fn next_chunk(&mut self) -> NativeResult<Option<Vec<u8>>> {
        loop {
            let Some(mut body) = self.body.take() else { return Ok(None) };
            // A body whose announced length has all arrived ends here, with
            // no wait for hyper to say so.
            let (body, frame) = if hyper::body::Body::is_end_stream(&body) {
                (body, None)
            } else {
                self.timing.wait(&self.op, &self.peer, self.timing.read, async move {
                    let frame = body.frame().await;
                    Ok((body, frame))
                })?
            };
            let data = match frame {
                None => {
                    let tail = match &mut self.decoder {
                        Some(d) => d.feed(&[], true, &self.op)?,
                        None => Vec::new(),
                    };
                    if let Some(done) = self.on_done.take() {
                        done();
                    }
                    return Ok((!tail.is_empty()).then_some(tail));
                }
                Some(Err(e)) => return Err(self.cut_short(&e).into()),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    // Trailers: nothing for the body.
                    Err(_) => {
                        self.body = Some(body);
                        continue;
                    }
                },
            };
            self.body = Some(body);
            self.received += data.len();
            let out = match &mut self.decoder {
                Some(d) => d.feed(&data, false, &self.op)?,
                None => data.to_vec(),
            };
            if out.len() > self.max.saturating_sub(self.produced) {
                self.body = None;
                return Err(too_big(&self.op, self.max).with_peer(&self.peer).into());
            }
            self.produced += out.len();
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    /// The error for a body that broke off, saying how much arrived.
    fn cut_short(&self, err: &hyper::Error) -> Error {
        let eof = super::transport::io_source(err).is_some_and(|io| io.kind() == std::io::ErrorKind::UnexpectedEof);
        if eof || err.is_incomplete_message() || err.is_closed() {
            let announced =
                self.declared.map_or(String::new(), |n| format!(" of the {n} its Content-Length announced"));
            return Error::new(
                Kind::Http,
                &self.op,
                format!("the server closed the connection after {} bytes of the body{announced}", self.received),
            )
            .with_peer(&self.peer);
        }
        hyper_error(&self.op, &self.peer, err)
    }

    /// The rest of the body, decoded.
    pub fn read_all(&mut self) -> NativeResult<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(piece) = self.next_chunk()? {
            if all.is_empty() {
                all = piece;
            } else {
                all.extend_from_slice(&piece);
            }
        }
        Ok(all)
    }
}

/// Where a response's body is.
enum BodyState {
    /// Read whole, and how much of it `read`/`read_line` have handed out.
    Whole(Blob, usize),
    /// Still arriving: what was decoded but not yet handed out, and the
    /// reader (`None` while a task is waiting on it).
    Stream(Blob, Option<Box<BodyReader>>),
}

/// The response fields besides the body.
pub struct Head {
    pub status: u16,
    pub reason: std::borrow::Cow<'static, str>,
    pub version: &'static str,
    pub headers: Headers,
    pub url: String,
    pub method: http::Method,
    pub history: Vec<Response>,
    pub elapsed: Duration,
}

/// A response handle (cheap to clone).
#[derive(Clone)]
pub struct Response(Arc<Inner>);

struct Inner {
    head: Head,
    body: Mutex<BodyState>,
}

/// Longest line `read_line` returns before a `limit` error.
const MAX_LINE: usize = 1 << 20;

impl Response {
    /// A response whose body was read whole.
    pub fn whole(head: Head, body: Blob) -> Self {
        Self(Arc::new(Inner { head, body: Mutex::new(BodyState::Whole(body, 0)) }))
    }

    /// A response whose body is read as the script asks for it.
    pub fn streaming(head: Head, reader: BodyReader) -> Self {
        Self(Arc::new(Inner { head, body: Mutex::new(BodyState::Stream(Blob::new(), Some(Box::new(reader)))) }))
    }

    /// Status line, headers, URL and history.
    pub fn head(&self) -> &Head {
        &self.0.head
    }

    fn lock(&self) -> MutexGuard<'_, BodyState> {
        self.0.body.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run `f` on the buffered bytes and the reader, outside the lock (it
    /// waits); `f` returns what to hand out. A whole body serves from memory.
    fn with_reader<R>(
        &self,
        op: &str,
        whole: impl FnOnce(&mut Blob) -> R,
        f: impl FnOnce(&mut Blob, &mut BodyReader) -> NativeResult<R>,
    ) -> NativeResult<R> {
        let (mut buf, mut reader) = {
            let mut state = self.lock();
            match &mut *state {
                BodyState::Whole(body, pos) => {
                    let mut rest = body.get(*pos..).unwrap_or_default().to_vec();
                    let before = rest.len();
                    let out = whole(&mut rest);
                    *pos += before - rest.len();
                    return Ok(out);
                }
                BodyState::Stream(buf, reader) => match reader.take() {
                    Some(r) => (std::mem::take(buf), r),
                    None => return Err(Error::value(op, "another task is reading this response").into()),
                },
            }
        };
        let result = f(&mut buf, &mut reader);
        *self.lock() = BodyState::Stream(buf, Some(reader));
        result
    }

    /// The whole body (for a streamed response, the rest of it, which is
    /// then kept).
    pub fn body(&self) -> NativeResult<Blob> {
        if let BodyState::Whole(body, _) = &*self.lock() {
            return Ok(body.clone());
        }
        let all = self.with_reader("body", std::mem::take, |buf, r| {
            let mut all = std::mem::take(buf);
            all.extend(r.read_all()?);
            Ok(all)
        })?;
        *self.lock() = BodyState::Whole(all.clone(), all.len());
        Ok(all)
    }

    /// Up to `n` bytes of a streamed body (empty at its end).
    pub fn read(&self, n: usize) -> NativeResult<Blob> {
        let take = |buf: &mut Blob| buf.drain(..n.min(buf.len())).collect();
        self.with_reader(
            "read",
            |b| take(b),
            |buf, r| {
                while buf.len() < n {
                    match r.next_chunk()? {
                        Some(piece) => buf.extend(piece),
                        None => break,
                    }
                    if !buf.is_empty() {
                        break;
                    }
                }
                Ok(take(buf))
            },
        )
    }

    /// The next line of a streamed body with its `\n`, or `()` at its end.
    pub fn read_line(&self) -> NativeResult<Dynamic> {
        let line = |buf: &mut Blob, end: bool| -> Option<Blob> {
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => Some(buf.drain(..=i).collect()),
                None if end && !buf.is_empty() => Some(std::mem::take(buf)),
                None => None,
            }
        };
        let got = self.with_reader(
            "read_line",
            |b| line(b, true),
            |buf, r| loop {
                if let Some(l) = line(buf, false) {
                    return Ok(Some(l));
                }
                if buf.len() > MAX_LINE {
                    return Err(
                        Error::new(Kind::Limit, "read_line", format!("a line longer than {MAX_LINE} bytes")).into()
                    );
                }
                match r.next_chunk()? {
                    Some(piece) => buf.extend(piece),
                    None => return Ok(line(buf, true)),
                }
            },
        )?;
        Ok(got.map_or(Dynamic::UNIT, Dynamic::from_blob))
    }

    /// The next piece of a streamed body as it arrived, or `None` at the end
    /// (the iteration of `for chunk in resp`).
    pub fn next_chunk(&self) -> NativeResult<Option<Blob>> {
        self.with_reader(
            "chunks",
            |b| (!b.is_empty()).then(|| std::mem::take(b)),
            |buf, r| {
                if !buf.is_empty() {
                    return Ok(Some(std::mem::take(buf)));
                }
                r.next_chunk()
            },
        )
    }

    /// The body decoded as text: the charset of `Content-Type`, else UTF-8
    /// (bytes that are not valid become U+FFFD).
    pub fn text(&self) -> NativeResult<String> {
        let body = self.body()?;
        let charset = self.head().headers.get("content-type").and_then(|ct| {
            ct.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_string())
            })
        });
        let encoding =
            charset.and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes())).unwrap_or(encoding_rs::UTF_8);
        Ok(encoding.decode_with_bom_removal(&body).0.into_owned())
    }

    /// The history as script values.
    pub fn history(&self) -> Array {
        self.head().history.iter().cloned().map(Dynamic::from).collect()
    }
}

/// `for chunk in resp`: the pieces of a streamed body as they arrive.
pub struct Chunks(pub Response);

impl Iterator for Chunks {
    type Item = NativeResult<Blob>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_chunk().transpose()
    }
}

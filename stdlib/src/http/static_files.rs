//! Files served by `r.static_dir(prefix, dir)`: content types from the file
//! name, `Last-Modified`/`ETag` with `If-Modified-Since`/`If-None-Match`
//! (304), single byte ranges (206/416), `index.html` for directories, and
//! no way out of `dir`: `..` and `.` segments (also as `%2e%2e`), NUL bytes
//! and backslashes are refused, and the resolved path (symlinks followed)
//! must stay below the directory.
//!
//! Files are read on tokio's blocking pool in chunks, so a large file never
//! holds up the event loop or sits whole in memory.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

use bytes::Bytes;
use hyper::header::{
    ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE,
    IF_NONE_MATCH, LAST_MODIFIED, RANGE,
};
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::response::{Body, channel_body, full};
use super::router::Mount;

/// Size of each read of a served file.
const CHUNK: usize = 64 << 10;

/// What a file request resolved to.
struct Found {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

/// The file below `mount` named by the decoded path segments `rest`, or
/// `None` if there is none or the request tries to leave the directory.
fn resolve(mount: &Mount, rest: &[String]) -> Option<Found> {
    let mut path = mount.dir.clone();
    for seg in rest {
        if seg == ".." || seg == "." || seg.contains(['\0', '\\', '/']) {
            return None;
        }
        path.push(seg);
    }
    // Symlinks are followed, and where they lead must be below the mount.
    let mut real = std::fs::canonicalize(&path).ok()?;
    if !real.starts_with(&mount.dir) {
        return None;
    }
    let mut meta = std::fs::metadata(&real).ok()?;
    if meta.is_dir() {
        real.push("index.html");
        real = std::fs::canonicalize(&real).ok()?;
        if !real.starts_with(&mount.dir) {
            return None;
        }
        meta = std::fs::metadata(&real).ok()?;
    }
    meta.is_file().then(|| Found { path: real, len: meta.len(), modified: meta.modified().ok() })
}

/// A byte range request: `Some(Ok((start, end)))` inclusive, `Some(Err(()))`
/// if unsatisfiable, `None` if absent or not a single byte range (then the
/// whole file is sent, as RFC 9110 allows).
fn range(headers: &HeaderMap, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = headers.get(RANGE)?.to_str().ok()?.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let parsed = if a.is_empty() {
        // The last `b` bytes.
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() { len.saturating_sub(1) } else { b.parse::<u64>().ok()?.min(len.saturating_sub(1)) };
        if start >= len || end < start {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(parsed))
}

/// Whether the client's cached copy (by `If-None-Match`, else
/// `If-Modified-Since`) is current.
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<SystemTime>) -> bool {
    if let Some(tags) = headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return tags.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag.trim_start_matches("W/")
        });
    }
    let since =
        headers.get(IF_MODIFIED_SINCE).and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v).ok());
    match (since, modified) {
        // HTTP dates have whole seconds.
        (Some(since), Some(m)) => httpdate::HttpDate::from(m) <= httpdate::HttpDate::from(since),
        _ => false,
    }
}

/// Serve the file below `mount` at `rest` (GET or HEAD), or `None` for a 404.
pub async fn serve(mount: Mount, rest: Vec<String>, headers: HeaderMap, head: bool) -> Option<Response<Body>> {
    let found = tokio::task::spawn_blocking(move || resolve(&mount, &rest)).await.ok()??;
    let mtime = found.modified.and_then(|m| m.duration_since(SystemTime::UNIX_EPOCH).ok()).unwrap_or_default();
    let etag = format!("W/\"{:x}-{:x}\"", found.len, mtime.as_secs());
    let mut resp = Response::new(full(Bytes::new()));
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(ETAG, v);
    }
    if let Some(m) = found.modified
        && let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(m))
    {
        h.insert(LAST_MODIFIED, v);
    }
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(&headers, &etag, found.modified) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Some(resp);
    }
    let ctype = mime_guess::from_path(&found.path).first_or_octet_stream();
    let ctype =
        if ctype.type_() == mime_guess::mime::TEXT { format!("{ctype}; charset=utf-8") } else { ctype.to_string() };
    if let Ok(v) = HeaderValue::from_str(&ctype) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    let (start, end) = match range(&headers, found.len) {
        None => (0, found.len.saturating_sub(1)),
        Some(Ok((start, end))) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", found.len)) {
                resp.headers_mut().insert(CONTENT_RANGE, v);
            }
            (start, end)
        }
        Some(Err(())) => {
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", found.len)) {
                resp.headers_mut().insert(CONTENT_RANGE, v);
            }
            return Some(resp);
        }
    };
    let count = if found.len == 0 { 0 } else { end - start + 1 };
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(count));
    if head || count == 0 {
        return Some(resp);
    }
    let (tx, rx) = mpsc::channel(4);
    let path = found.path;
    tokio::task::spawn_blocking(move || {
        let read = || -> std::io::Result<()> {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut left = count;
            while left > 0 {
                let mut buf = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
                let n = file.read(&mut buf)?;
                if n == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file shrank"));
                }
                buf.truncate(n);
                left -= n as u64;
                if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                    // The client has gone.
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = read() {
            let _ = tx.blocking_send(Err(e));
        }
    });
    *resp.body_mut() = channel_body(rx);
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(range_value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_str(range_value).unwrap());
        h
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(range(&headers("bytes=0-4"), 10), Some(Ok((0, 4))));
        assert_eq!(range(&headers("bytes=5-"), 10), Some(Ok((5, 9))));
        assert_eq!(range(&headers("bytes=-3"), 10), Some(Ok((7, 9))));
        assert_eq!(range(&headers("bytes=8-100"), 10), Some(Ok((8, 9))));
        assert_eq!(range(&headers("bytes=10-"), 10), Some(Err(())));
        assert_eq!(range(&headers("bytes=0-1,3-4"), 10), None);
        assert_eq!(range(&headers("items=0-1"), 10), None);
        assert_eq!(range(&HeaderMap::new(), 10), None);
    }
}

//! Splitting, joining and reassembling URLs exactly as CPython 3.11's
//! `urllib.parse` does (`urlsplit`, `urlparse`, `urlunsplit`, `urlunparse`,
//! `urljoin`, `urldefrag` and the netloc attributes of their results).
//!
//! Written by hand at the string level rather than over the `url` crate: that
//! crate implements the WHATWG parser, which normalises (case, default ports,
//! empty `?`), rejects or rewrites inputs Python keeps verbatim and resolves
//! references for every scheme, where `urllib.parse` follows RFC 3986 with
//! its own scheme lists. Every step below mirrors a line of `parse.py`; all
//! delimiters are ASCII, so byte offsets in UTF-8 stand for Python's
//! character offsets.

use std::borrow::Cow;

use unicode_normalization::UnicodeNormalization;

use crate::error::Error;

/// Schemes whose references resolve against a base (`uses_relative`).
pub const USES_RELATIVE: &[&str] = &[
    "", "ftp", "http", "gopher", "nntp", "imap", "wais", "file", "https", "shttp", "mms", "prospero", "rtsp", "rtsps",
    "rtspu", "sftp", "svn", "svn+ssh", "ws", "wss",
];

/// Schemes that have a `//netloc` (`uses_netloc`).
pub const USES_NETLOC: &[&str] = &[
    "", "ftp", "http", "gopher", "nntp", "telnet", "imap", "wais", "file", "mms", "https", "shttp", "snews",
    "prospero", "rtsp", "rtsps", "rtspu", "rsync", "svn", "svn+ssh", "sftp", "nfs", "git", "git+ssh", "ws", "wss",
];

/// Schemes whose last path segment may carry `;params` (`uses_params`).
pub const USES_PARAMS: &[&str] = &[
    "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtsps", "rtspu", "sip", "sips", "mms",
    "sftp", "tel",
];

/// `urlsplit`'s five parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitResult {
    /// Lowercased scheme, or the default given to [`split`].
    pub scheme: String,
    /// `user:pass@host:port`, verbatim.
    pub netloc: String,
    /// The path (with any `;params`).
    pub path: String,
    /// After `?`, without it.
    pub query: String,
    /// After `#`, without it.
    pub fragment: String,
}

/// `urlparse`'s six parts: [`SplitResult`] with `;params` taken off the path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseResult {
    /// Lowercased scheme, or the default given to [`parse`].
    pub scheme: String,
    /// `user:pass@host:port`, verbatim.
    pub netloc: String,
    /// The path without `;params`.
    pub path: String,
    /// The parameters of the last path segment, after `;`.
    pub params: String,
    /// After `?`, without it.
    pub query: String,
    /// After `#`, without it.
    pub fragment: String,
}

/// WHATWG's "C0 control or space", which `urlsplit` strips from the left.
fn c0_or_space(c: char) -> bool {
    c <= ' '
}

/// Tabs and newlines, which `urlsplit` removes everywhere (`_UNSAFE_URL_BYTES_TO_REMOVE`).
fn without_unsafe(text: &str) -> String {
    text.chars().filter(|c| !matches!(c, '\t' | '\r' | '\n')).collect()
}

fn scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// The parts of a split (or parsed: `params` is then filled in) URL,
/// borrowed from its cleaned text ([`clean`]): what [`split`] and [`parse`]
/// return owned, for callers that only look.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parts<'a> {
    /// Lowercased scheme, or the (cleaned) default.
    pub scheme: Cow<'a, str>,
    /// `user:pass@host:port`, verbatim.
    pub netloc: &'a str,
    /// The path (without `;params` after [`parse_parts`]).
    pub path: &'a str,
    /// The parameters of the last path segment ([`parse_parts`] only).
    pub params: &'a str,
    /// After `?`, without it.
    pub query: &'a str,
    /// After `#`, without it.
    pub fragment: &'a str,
}

/// What `urlsplit` does to its input first: C0 controls and spaces stripped
/// from the left (WHATWG's "C0 control or space"), tabs and newlines removed
/// everywhere (`_UNSAFE_URL_BYTES_TO_REMOVE`).
#[must_use]
pub fn clean(url: &str) -> Cow<'_, str> {
    let url = url.trim_start_matches(c0_or_space);
    if url.contains(['\t', '\r', '\n']) { Cow::Owned(without_unsafe(url)) } else { Cow::Borrowed(url) }
}

/// `urlsplit(url, scheme, allow_fragments)` of a [`clean`]ed URL, borrowing
/// from it. Errors (`value`, from `op`) as CPython raises `ValueError`:
/// unbalanced brackets (`Invalid IPv6 URL`), a bracketed host that is not
/// IPv6 or IPvFuture, and a non-ASCII netloc that NFKC normalisation turns
/// into one with `/?#@:`.
pub fn split_parts<'a>(
    url: &'a str,
    default_scheme: &'a str,
    allow_fragments: bool,
    op: &str,
) -> Result<Parts<'a>, Error> {
    let mut url = url;
    let default_scheme = default_scheme.trim_matches(c0_or_space);
    let mut scheme = if default_scheme.contains(['\t', '\r', '\n']) {
        Cow::Owned(without_unsafe(default_scheme))
    } else {
        Cow::Borrowed(default_scheme)
    };
    if let Some(i) = url.find(':')
        && i > 0
        && url.as_bytes()[0].is_ascii_alphabetic()
        && url.as_bytes()[..i].iter().all(|&c| scheme_char(c))
    {
        let name = &url[..i];
        scheme = if name.bytes().any(|c| c.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        url = &url[i + 1..];
    }
    let mut netloc = "";
    if url.starts_with("//") {
        let end = url[2..].find(['/', '?', '#']).map_or(url.len(), |e| e + 2);
        netloc = &url[2..end];
        url = &url[end..];
        let (open, close) = (netloc.contains('['), netloc.contains(']'));
        if open != close {
            return Err(Error::value(op, "Invalid IPv6 URL"));
        }
        if open {
            let after = netloc.split_once('[').map_or("", |(_, b)| b);
            check_bracketed_host(after.split_once(']').map_or(after, |(h, _)| h), op)?;
        }
    }
    let mut fragment = "";
    if allow_fragments && let Some((rest, f)) = url.split_once('#') {
        (url, fragment) = (rest, f);
    }
    let mut query = "";
    if let Some((rest, q)) = url.split_once('?') {
        (url, query) = (rest, q);
    }
    check_netloc(netloc, op)?;
    Ok(Parts { scheme, netloc, path: url, params: "", query, fragment })
}

/// [`split_parts`], then `;params` off the last path segment for the
/// schemes in [`USES_PARAMS`] (`urlparse`).
pub fn parse_parts<'a>(
    url: &'a str,
    default_scheme: &'a str,
    allow_fragments: bool,
    op: &str,
) -> Result<Parts<'a>, Error> {
    let mut p = split_parts(url, default_scheme, allow_fragments, op)?;
    if USES_PARAMS.contains(&p.scheme.as_ref()) && p.path.contains(';') {
        let from = p.path.rfind('/').unwrap_or(0);
        if let Some(i) = p.path[from..].find(';').map(|i| i + from) {
            (p.path, p.params) = (&p.path[..i], &p.path[i + 1..]);
        }
    }
    Ok(p)
}

/// `urlsplit(url, scheme, allow_fragments)`; errors as [`split_parts`].
pub fn split(url: &str, default_scheme: &str, allow_fragments: bool, op: &str) -> Result<SplitResult, Error> {
    let url = clean(url);
    let p = split_parts(&url, default_scheme, allow_fragments, op)?;
    Ok(SplitResult {
        scheme: p.scheme.into_owned(),
        netloc: p.netloc.to_owned(),
        path: p.path.to_owned(),
        query: p.query.to_owned(),
        fragment: p.fragment.to_owned(),
    })
}

/// `urlparse(url, scheme, allow_fragments)`: [`split`], then `;params` off
/// the last path segment for the schemes in [`USES_PARAMS`].
pub fn parse(url: &str, default_scheme: &str, allow_fragments: bool, op: &str) -> Result<ParseResult, Error> {
    let url = clean(url);
    let p = parse_parts(&url, default_scheme, allow_fragments, op)?;
    Ok(ParseResult {
        scheme: p.scheme.into_owned(),
        netloc: p.netloc.to_owned(),
        path: p.path.to_owned(),
        params: p.params.to_owned(),
        query: p.query.to_owned(),
        fragment: p.fragment.to_owned(),
    })
}

/// `_checknetloc`: a netloc that NFKC normalisation would give new URL
/// delimiters (`℀` → `a/c`) is refused, as IDNA would apply that mapping.
fn check_netloc(netloc: &str, op: &str) -> Result<(), Error> {
    if netloc.is_ascii() {
        return Ok(());
    }
    let n: String = netloc.chars().filter(|c| !matches!(c, '@' | ':' | '#' | '?')).collect();
    let normalized: String = n.nfkc().collect();
    if n != normalized && normalized.contains(['/', '?', '#', '@', ':']) {
        return Err(Error::value(
            op,
            format!("netloc '{netloc}' contains invalid characters under NFKC normalization"),
        ));
    }
    Ok(())
}

/// `_check_bracketed_host`: `[v1.x]` (IPvFuture) or an IPv6 address, as
/// Python's `ipaddress` parses them; an IPv4 address in brackets is refused.
fn check_bracketed_host(host: &str, op: &str) -> Result<(), Error> {
    if let Some(rest) = host.strip_prefix('v') {
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        let future = hex > 0 && rest[hex..].strip_prefix('.').is_some_and(|tail| !tail.is_empty());
        return if future { Ok(()) } else { Err(Error::value(op, "IPvFuture address is invalid")) };
    }
    if is_ipv4(host) {
        return Err(Error::value(op, "An IPv4 address cannot be in brackets"));
    }
    if is_ipv6(host) {
        return Ok(());
    }
    Err(Error::value(op, format!("'{host}' does not appear to be an IPv4 or IPv6 address")))
}

/// `ipaddress.IPv4Address(text)` succeeds: four decimal octets, no leading zeros.
fn is_ipv4(text: &str) -> bool {
    let octet = |o: &str| {
        !o.is_empty()
            && o.len() <= 3
            && o.bytes().all(|c| c.is_ascii_digit())
            && (o == "0" || !o.starts_with('0'))
            && o.parse::<u16>().is_ok_and(|v| v <= 255)
    };
    !text.contains('/') && text.split('.').count() == 4 && text.split('.').all(octet)
}

/// `ipaddress.IPv6Address(text)` succeeds (a `%scope` suffix allowed). A port
/// of `_ip_int_from_string`'s checks, which differ from the standard
/// library's parser (which has no scope ids).
fn is_ipv6(text: &str) -> bool {
    if text.contains('/') {
        return false;
    }
    let addr = match text.split_once('%') {
        Some((_, scope)) if scope.is_empty() || scope.contains('%') => return false,
        Some((addr, _)) => addr,
        None => text,
    };
    if addr.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 {
        return false;
    }
    if parts.last().is_some_and(|p| p.contains('.')) {
        if !parts.pop().is_some_and(is_ipv4) {
            return false;
        }
        // Two hextets stand in for the dotted quad; any valid ones do.
        parts.extend(["0", "0"]);
    }
    const HEXTETS: usize = 8;
    if parts.len() > HEXTETS + 1 {
        return false;
    }
    let inner = &parts[1..parts.len() - 1];
    let mut empties = inner.iter().enumerate().filter(|(_, p)| p.is_empty()).map(|(i, _)| i + 1);
    let skip = empties.next();
    if empties.next().is_some() {
        return false;
    }
    let (hi, lo) = match skip {
        Some(skip) => {
            let (mut hi, mut lo) = (skip, parts.len() - skip - 1);
            if parts[0].is_empty() {
                hi -= 1;
                if hi > 0 {
                    return false;
                }
            }
            if parts[parts.len() - 1].is_empty() {
                lo -= 1;
                if lo > 0 {
                    return false;
                }
            }
            if HEXTETS < hi + lo + 1 {
                return false;
            }
            (hi, lo)
        }
        None => {
            if parts.len() != HEXTETS || parts[0].is_empty() || parts[HEXTETS - 1].is_empty() {
                return false;
            }
            (HEXTETS, 0)
        }
    };
    let hextet = |h: &&str| h.bytes().all(|c| c.is_ascii_hexdigit()) && h.len() <= 4;
    // Python's `int(h, 16)` of an empty hextet also fails.
    let hextet = |h: &&str| hextet(h) && !h.is_empty();
    parts[..hi].iter().all(hextet) && parts[parts.len() - lo..].iter().all(hextet)
}

/// `urlunsplit`: the parts put back together (`geturl()`).
#[must_use]
pub fn unsplit(scheme: &str, netloc: &str, path: &str, query: &str, fragment: &str) -> String {
    let mut url = String::with_capacity(scheme.len() + netloc.len() + path.len() + query.len() + fragment.len() + 5);
    if !netloc.is_empty() || (!scheme.is_empty() && USES_NETLOC.contains(&scheme) && !path.starts_with("//")) {
        url.push_str("//");
        url.push_str(netloc);
        if !path.is_empty() && !path.starts_with('/') {
            url.push('/');
        }
    }
    url.push_str(path);
    let mut out = String::with_capacity(url.len() + scheme.len() + 1);
    if !scheme.is_empty() {
        out.push_str(scheme);
        out.push(':');
    }
    out.push_str(&url);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `urlunparse`: `path;params`, then [`unsplit`].
#[must_use]
pub fn unparse(p: &ParseResult) -> String {
    if p.params.is_empty() {
        unsplit(&p.scheme, &p.netloc, &p.path, &p.query, &p.fragment)
    } else {
        unsplit(&p.scheme, &p.netloc, &format!("{};{}", p.path, p.params), &p.query, &p.fragment)
    }
}

impl SplitResult {
    /// `geturl()`.
    #[must_use]
    pub fn url(&self) -> String {
        unsplit(&self.scheme, &self.netloc, &self.path, &self.query, &self.fragment)
    }
}

impl ParseResult {
    /// `geturl()`.
    #[must_use]
    pub fn url(&self) -> String {
        unparse(self)
    }
}

/// `urljoin(base, url, allow_fragments)`: resolve `url` against `base` with
/// RFC 3986's algorithm for the schemes in [`USES_RELATIVE`]; other
/// references come back unchanged. Errors as [`split`] raises them.
pub fn join(base: &str, url: &str, allow_fragments: bool, op: &str) -> Result<String, Error> {
    if base.is_empty() {
        return Ok(url.to_owned());
    }
    if url.is_empty() {
        return Ok(base.to_owned());
    }
    let b = parse(base, "", allow_fragments, op)?;
    let mut r = parse(url, &b.scheme, allow_fragments, op)?;
    if r.scheme != b.scheme || !USES_RELATIVE.contains(&r.scheme.as_str()) {
        return Ok(url.to_owned());
    }
    if USES_NETLOC.contains(&r.scheme.as_str()) {
        if !r.netloc.is_empty() {
            return Ok(unparse(&r));
        }
        r.netloc = b.netloc;
    }
    if r.path.is_empty() && r.params.is_empty() {
        r.path = b.path;
        r.params = b.params;
        if r.query.is_empty() {
            r.query = b.query;
        }
        return Ok(unparse(&r));
    }
    let mut base_parts: Vec<&str> = b.path.split('/').collect();
    if base_parts.last().is_some_and(|last| !last.is_empty()) {
        // The last segment is not a directory: it takes no part in resolving.
        base_parts.pop();
    }
    let segments: Vec<&str> = if r.path.starts_with('/') {
        r.path.split('/').collect()
    } else {
        let mut all = base_parts;
        all.extend(r.path.split('/'));
        // Drop empty inner segments, which would make `//` on re-joining.
        let n = all.len();
        all.into_iter().enumerate().filter(|&(i, s)| i == 0 || i == n - 1 || !s.is_empty()).map(|(_, s)| s).collect()
    };
    let mut resolved: Vec<&str> = Vec::with_capacity(segments.len());
    for &seg in &segments {
        match seg {
            ".." => {
                resolved.pop();
            }
            "." => {}
            _ => resolved.push(seg),
        }
    }
    if segments.last().is_some_and(|&last| last == "." || last == "..") {
        // A last segment naming a directory keeps its trailing slash.
        resolved.push("");
    }
    let path = resolved.join("/");
    r.path = if path.is_empty() { "/".to_owned() } else { path };
    Ok(unparse(&r))
}

/// `urldefrag(url)`: the URL without its fragment, and the fragment.
pub fn defrag(url: &str, op: &str) -> Result<(String, String), Error> {
    if !url.contains('#') {
        return Ok((url.to_owned(), String::new()));
    }
    let mut p = parse(url, "", true, op)?;
    let fragment = std::mem::take(&mut p.fragment);
    Ok((unparse(&p), fragment))
}

/// `_userinfo`: the user name and password of a netloc, `None` where Python has `None`.
#[must_use]
pub fn userinfo(netloc: &str) -> (Option<&str>, Option<&str>) {
    match netloc.rsplit_once('@') {
        Some((info, _)) => match info.split_once(':') {
            Some((user, pass)) => (Some(user), Some(pass)),
            None => (Some(info), None),
        },
        None => (None, None),
    }
}

/// `_hostinfo`: the raw host (brackets removed) and port text of a netloc.
fn hostinfo(netloc: &str) -> (&str, Option<&str>) {
    let host = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h);
    let (hostname, port) = match host.split_once('[') {
        Some((_, bracketed)) => {
            let (name, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
            (name, after.split_once(':').map_or("", |(_, p)| p))
        }
        None => host.split_once(':').unwrap_or((host, "")),
    };
    (hostname, Some(port).filter(|p| !p.is_empty()))
}

/// The `hostname` attribute: lowercased (an IPv6 zone after `%` kept as is),
/// `None` when empty.
#[must_use]
pub fn hostname(netloc: &str) -> Option<String> {
    let (host, _) = hostinfo(netloc);
    if host.is_empty() {
        return None;
    }
    Some(match host.split_once('%') {
        Some((name, zone)) => format!("{}%{zone}", name.to_lowercase()),
        None => host.to_lowercase(),
    })
}

/// The `port` attribute: `None` without one; a `value` error (from `op`)
/// when it is not ASCII digits or out of 0–65535, as reading `.port` raises
/// `ValueError` in Python.
pub fn port(netloc: &str, op: &str) -> Result<Option<u16>, Error> {
    let Some(text) = hostinfo(netloc).1 else { return Ok(None) };
    if !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Error::value(op, format!("Port could not be cast to integer value as {}", py_repr(text))));
    }
    let digits = text.trim_start_matches('0');
    match digits.parse::<u16>() {
        Ok(p) => Ok(Some(p)),
        Err(_) if digits.is_empty() => Ok(Some(0)),
        Err(_) => Err(Error::value(op, "Port out of range 0-65535")),
    }
}

/// A string as Python's `repr` quotes it, for messages (escapes kept simple).
pub(super) fn py_repr(text: &str) -> String {
    if text.contains('\'') && !text.contains('"') {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_follows_pythons_ipaddress() {
        for good in ["::1", "::", "1::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "fe80::1%eth0", "1:2:3:4:5:6:7::"] {
            assert!(is_ipv6(good), "{good}");
        }
        for bad in ["1", ":1", "1:", ":::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "::1.2.3.04", "::1%", "g::"] {
            assert!(!is_ipv6(bad), "{bad}");
        }
    }

    #[test]
    fn owned_results_match_the_borrowed_parts() {
        let r = split(" \tHTTP://U@H:1/p;q?x#f", "", true, "t").expect("splits");
        assert_eq!((r.scheme.as_str(), r.netloc.as_str(), r.path.as_str()), ("http", "U@H:1", "/p;q"));
        assert_eq!((r.query.as_str(), r.fragment.as_str()), ("x", "f"));
        let p = parse("http://h/a;b/c;d?x", "", true, "t").expect("parses");
        assert_eq!((p.path.as_str(), p.params.as_str()), ("/a;b/c", "d"));
        assert_eq!(p.url(), "http://h/a;b/c;d?x");
        assert_eq!(r.url(), "http://U@H:1/p;q?x#f");
        assert_eq!(split("//h", "x\n", false, "t").expect("splits").scheme, "x");
        assert_eq!(join("http://a/b/c", "../../../g?y", true, "t").expect("joins"), "http://a/g?y");
        assert_eq!(defrag("http://a/b#c", "t").expect("defrags"), ("http://a/b".to_owned(), "c".to_owned()));
        assert!(split("http://[::1/", "", true, "t").is_err());
    }

    #[test]
    fn ports_are_checked_when_read() {
        assert_eq!(port("h:0080", "t"), Ok(Some(80)));
        assert_eq!(port("h:", "t"), Ok(None));
        assert_eq!(port("[::1]:00000", "t"), Ok(Some(0)));
        assert!(port("h:65536", "t").is_err());
        assert!(port("h:99999999999999999999999", "t").is_err());
        assert!(port("h:-1", "t").is_err());
    }
}

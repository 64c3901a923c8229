//! The TLS layer of a connection: a rustls connection fed from the socket's
//! own non-blocking reads and writes, under the connection's lock.
//!
//! Why not tokio-rustls here: a connection's calls try the socket without
//! waiting and wait through its readiness (one read buffer, `SlotReady`,
//! one deadline per call — see `tcp.rs`). Driving rustls' `Connection`
//! straight over `try_read`/`try_write` keeps all of that for TLS: a read
//! decrypts what the socket holds into the connection's buffer, a send
//! encrypts and writes what the socket takes, and only a `WouldBlock`
//! waits, on the same socket readiness as plain TCP. tokio-rustls would add
//! a `poll_fn` per call and a second copy of the plaintext. It is used only
//! where an `AsyncRead` is wanted ([`super::connect_stream`], for hyper).

use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rustls::Connection;
use tokio::net::TcpStream;

use super::reason;
use crate::capture;
use crate::error::Error;

/// `std::io` over a tokio socket's non-blocking calls (`WouldBlock` when
/// the socket has nothing to give or no room).
struct Sock<'a>(&'a TcpStream);

impl Sock<'_> {
    /// Capture `data` going `dir` (the TLS records themselves: `--keylog`
    /// lets Wireshark decrypt them).
    #[inline(never)]
    fn capture(&self, dir: capture::Dir, data: &[u8]) {
        if let (Ok(local), Ok(peer)) = (self.0.local_addr(), self.0.peer_addr()) {
            capture::tcp(local, peer, dir, data);
        }
    }
}

impl io::Read for Sock<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.try_read(buf)?;
        if capture::on() {
            self.capture(capture::Dir::Received, &buf[..n]);
        }
        Ok(n)
    }
}

impl io::Write for Sock<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.try_write(buf)?;
        if capture::on() {
            self.capture(capture::Dir::Sent, &buf[..n]);
        }
        Ok(n)
    }

    /// rustls hands over all queued records at once: one `writev`, so a
    /// handshake flight leaves as one segment instead of one per record
    /// (with Nagle's algorithm, each later small segment waited for the
    /// peer's delayed ACK of the first).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.0.try_write_vectored(bufs)?;
        if capture::on() {
            let mut left = n;
            let mut written = Vec::with_capacity(n);
            for b in bufs {
                let take = left.min(b.len());
                written.extend_from_slice(&b[..take]);
                left -= take;
            }
            self.capture(capture::Dir::Sent, &written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one read attempt through TLS found.
pub(crate) enum Read {
    /// Decrypted bytes were appended to the buffer.
    Data,
    /// The peer closed the session (close_notify, or a bare EOF when
    /// truncation is allowed).
    Eof,
    /// Nothing decrypted yet: wait until the socket is readable.
    Wait,
}

/// A finished TLS session over a connection's socket.
pub(crate) struct Session {
    conn: Connection,
    /// The name the client asked for (SNI / verification name).
    server_name: Option<String>,
    /// Whether the peer's certificate was verified.
    verified: bool,
    /// Whether an EOF without close_notify is a plain EOF (Python's
    /// `suppress_ragged_eofs`) instead of a `truncated` error.
    ragged_ok: bool,
    /// The socket reported EOF.
    tcp_eof: bool,
}

/// The outcome of a handshake that failed, before it is named for a script.
pub(crate) enum Failure {
    /// rustls refused (a certificate, an alert, a protocol error).
    Tls(rustls::Error),
    /// The socket failed.
    Io(io::Error),
    /// The peer closed the connection during the handshake.
    Eof,
}

/// What a handshake needs to know beyond the rustls connection.
pub(crate) struct Setup {
    pub server_name: Option<String>,
    pub verified: bool,
    pub ragged_ok: bool,
}

/// Run the handshake of `conn` over `sock`, waiting on the socket's
/// readiness; the caller bounds it with a timeout.
pub(crate) async fn handshake(sock: Arc<TcpStream>, mut conn: Connection, setup: Setup) -> Result<Session, Failure> {
    loop {
        while conn.wants_write() {
            match conn.write_tls(&mut Sock(&sock)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(e) = sock.writable().await {
                        return Err(Failure::Io(e));
                    }
                }
                Err(e) => return Err(Failure::Io(e)),
            }
        }
        if !conn.is_handshaking() {
            let Setup { server_name, verified, ragged_ok } = setup;
            return Ok(Session { conn, server_name, verified, ragged_ok, tcp_eof: false });
        }
        match conn.read_tls(&mut Sock(&sock)) {
            Ok(0) => return Err(Failure::Eof),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // Tell the peer why (rustls queued the alert).
                    let _ = conn.write_tls(&mut Sock(&sock));
                    return Err(Failure::Tls(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = sock.readable().await {
                    return Err(Failure::Io(e));
                }
            }
            Err(e) => return Err(Failure::Io(e)),
        }
    }
}

impl Session {
    /// Decrypt what the socket holds into `buf` without waiting.
    // Kept out of line: inlined into the connection's read and send, the
    // TLS path pushed the plain path's socket calls out of line too.
    #[inline(never)]
    pub(crate) fn try_read(
        &mut self,
        sock: &TcpStream,
        buf: &mut BytesMut,
        op: &str,
        peer: SocketAddr,
    ) -> Result<Read, Error> {
        loop {
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    let _ = self.conn.write_tls(&mut Sock(sock));
                    return Err(reason::of_rustls(op, &peer.to_string(), &e, self.server_name.as_deref()));
                }
            };
            let ready = state.plaintext_bytes_to_read();
            let closed = state.peer_has_closed();
            // Session tickets, key updates, alerts: out with them now.
            self.flush(sock);
            if ready > 0 {
                // All of it, so nothing decrypted waits inside rustls where
                // `buffered()` (and `net::select`) would not see it.
                let before = buf.len();
                buf.resize(before + ready, 0);
                let n = self.conn.reader().read(&mut buf[before..]).unwrap_or(0);
                buf.truncate(before + n);
                if n > 0 {
                    return Ok(Read::Data);
                }
            }
            if closed {
                return Ok(Read::Eof);
            }
            if self.tcp_eof {
                if self.ragged_ok {
                    return Ok(Read::Eof);
                }
                return Err(reason::truncated(op, peer));
            }
            match self.conn.read_tls(&mut Sock(sock)) {
                Ok(0) => self.tcp_eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Read::Wait),
                Err(e) => return Err(Error::io(op, &e).with_peer(peer)),
            }
        }
    }

    /// Encrypt `data[*sent..]` and write what the socket takes; `true` once
    /// all of `data` is on the socket, `false` when the socket is full
    /// (wait until writable and call again).
    #[inline(never)]
    pub(crate) fn try_send(
        &mut self,
        sock: &TcpStream,
        data: &[u8],
        sent: &mut usize,
        op: &str,
        peer: SocketAddr,
    ) -> Result<bool, Error> {
        loop {
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut Sock(sock)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(Error::io(op, &e).with_peer(peer)),
                }
            }
            if *sent == data.len() {
                return Ok(true);
            }
            // rustls takes what fits in its buffer limit, encrypted at once.
            let n = self.conn.writer().write(&data[*sent..]).map_err(|e| Error::io(op, &e).with_peer(peer))?;
            *sent += n;
            if n == 0 && !self.conn.wants_write() {
                return Err(Error::new(crate::error::Kind::Tls, op, "the TLS session takes no more data")
                    .with_peer(peer)
                    .with_reason("handshake"));
            }
        }
    }

    /// Write queued records without waiting (best effort).
    fn flush(&mut self, sock: &TcpStream) {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut Sock(sock)).is_err() {
                break;
            }
        }
    }

    /// Send close_notify (best effort, without waiting): the end of the
    /// session, so the peer can tell it from a truncation.
    pub(crate) fn close_notify(&mut self, sock: &TcpStream) {
        self.conn.send_close_notify();
        self.flush(sock);
    }

    /// The rustls connection (facts, certificates).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The name the client asked for.
    pub(crate) fn server_name(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => self.server_name.as_deref(),
        }
    }

    /// Record whether the peer's certificate was verified.
    pub(crate) fn set_verified(&mut self, verified: bool) {
        self.verified = verified;
    }

    /// Whether the peer's certificate was verified.
    pub(crate) fn verified(&self) -> bool {
        self.verified
    }

    /// `TLSv1.3` (Python's `SSLSocket.version()`), or `?` before a handshake.
    pub(crate) fn version(&self) -> &'static str {
        match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "?",
        }
    }

    /// The IANA name of the cipher suite (`TLS_AES_256_GCM_SHA384`).
    pub(crate) fn cipher(&self) -> String {
        self.conn.negotiated_cipher_suite().map_or_else(String::new, |s| {
            let name = s.suite().as_str().map_or_else(|| format!("{:?}", s.suite()), str::to_string);
            // rustls spells TLS 1.3 suites `TLS13_…`; IANA and OpenSSL `TLS_…`.
            name.strip_prefix("TLS13_").map_or(name.clone(), |rest| format!("TLS_{rest}"))
        })
    }

    /// `TLSv1.3, verified` for a connection's printed form.
    pub(crate) fn summary(&self) -> String {
        let check = if self.verified { "verified" } else { "not verified" };
        format!("{} {}, {check}", self.version(), self.cipher())
    }
}

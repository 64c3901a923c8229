//! `tls::` — TLS connections and servers on the same connection type as
//! `tcp::` (every `recv…`/`send…`/frame method, `net::select`, `serve`,
//! `--trace` work unchanged), STARTTLS both ways, connection facts and
//! certificate checks with a stable `reason` on failure.
//!
//! rustls 0.23 with the ring provider. Client connections verify the chain
//! against the system roots (or `ca`) and the host name by default;
//! `insecure: true` turns both off and the connection reports
//! `verified: false`.
//!
//! ```rhai
//! let c = tls::connect("example.org", 443);
//! c.send("HEAD / HTTP/1.0\r\nHost: example.org\r\n\r\n");
//! print(c.recv_line());
//! print(c.tls.version);   // TLSv1.3
//! ```
//!
//! The Rust-level API ([`client_config`], [`connect_stream`],
//! [`server_config`], [`accept_stream`], [`io_error`]) gives other modules
//! (the HTTP client and server) a tokio-rustls stream with the same
//! options and the same error reasons.

pub mod certs;
mod config;
mod reason;
mod session;

use std::sync::Arc;
use std::time::Duration;

use rhai::plugin::*;
use rhai::{Array, Blob, Dynamic, INT, Map};
use tokio::net::TcpStream;

pub(crate) use session::{Read, Session};

use crate::args::Opts;
use crate::error::{Error, NativeResult};
use crate::runtime;
use crate::tcp::{self, TcpConn};
use crate::trace;

pub use config::{provider, set_keylog};

/// A `tls::listen` server's side of each handshake.
#[derive(Clone)]
pub(crate) struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    /// Bounds each handshake (a client that connects and sends nothing).
    timeout: Option<Duration>,
    ragged_ok: bool,
}

impl ServerTls {
    fn new(op: &str, opts: &Opts) -> Result<Self, Error> {
        Ok(Self {
            config: config::server(op, opts)?,
            timeout: opts.duration("timeout", Some(tcp::DEFAULT_TIMEOUT))?,
            ragged_ok: opts.bool("suppress_ragged_eofs", false)?,
        })
    }

    /// Run the server side of the handshake on `conn`.
    pub(crate) fn handshake(&self, conn: &TcpConn, op: &'static str) -> NativeResult<()> {
        let tls = rustls::ServerConnection::new(self.config.clone())
            .map_err(|e| reason::of_rustls(op, &conn.peer().to_string(), &e, None))?;
        let setup = session::Setup { server_name: None, verified: false, ragged_ok: self.ragged_ok };
        upgrade(conn, op, tls.into(), setup, self.timeout)
    }
}

/// Handshake over `conn`'s socket with `tls`, bounded by `timeout`, and
/// put the session in place.
fn upgrade(
    conn: &TcpConn,
    op: &'static str,
    tls: rustls::Connection,
    setup: session::Setup,
    timeout: Option<Duration>,
) -> NativeResult<()> {
    let sock = conn.plain_socket(op)?;
    let peer = conn.peer();
    // TLS writes whole records, and the library writes some of its own
    // (session tickets after the handshake, close_notify): with Nagle's
    // algorithm a script's reply after such a record waited for the peer's
    // delayed ACK, 40 ms a handshake. Go and asyncio set it on every TCP
    // connection; netscript on TLS ones.
    sock.set_nodelay(true).map_err(|e| Error::io(op, &e).with_peer(peer))?;
    let name = setup.server_name.clone();
    let is_server = matches!(tls, rustls::Connection::Server(_));
    let started = std::time::Instant::now();
    let mut session = runtime::block_on_timeout_at(op, Some(&peer), timeout, async move {
        session::handshake(sock, tls, setup)
            .await
            .map_err(|f| reason::of_failure(op, &peer.to_string(), &f, name.as_deref()))
    })?;
    if !is_server {
        crate::metrics::time("tls_handshake", &[], started.elapsed());
    }
    if is_server {
        // A server verified the client if the client showed a certificate
        // (a configured client verifier checked it).
        let shown = session.conn().peer_certificates().is_some_and(|c| !c.is_empty());
        session.set_verified(shown);
    }
    if trace::on() {
        trace::event("tls", &peer.to_string(), &session.summary());
    }
    conn.set_tls(session);
    Ok(())
}

/// A client handshake ready to run: built from the options before any
/// connect, so a bad option fails first.
struct Client {
    tls: rustls::Connection,
    setup: session::Setup,
}

impl Client {
    /// `host` names the server unless option `server_name` does.
    fn new(op: &str, host: &str, opts: &Opts) -> Result<Self, Error> {
        let (config, verified) = config::client(op, opts)?;
        let sni = opts.string("server_name")?.unwrap_or_else(|| host.to_string());
        let name = config::server_name(op, &sni)?;
        let tls = rustls::ClientConnection::new(config, name)
            .map_err(|e| reason::of_rustls(op, host, &e, Some(&sni)))?
            .into();
        let ragged_ok = opts.bool("suppress_ragged_eofs", false)?;
        Ok(Self { tls, setup: session::Setup { server_name: Some(sni), verified, ragged_ok } })
    }

    /// Run it on `conn`, bounded by option `timeout` (else `conn`'s).
    fn start(self, conn: &TcpConn, op: &'static str, opts: &Opts) -> NativeResult<()> {
        let timeout = opts.duration("timeout", conn.timeout())?;
        upgrade(conn, op, self.tls, self.setup, timeout)
    }
}

/// `2020-01-02 03:04:05 UTC` for `secs` since the Unix epoch.
pub(crate) fn utc(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The rustls client configuration of a `tls::connect` option map (`ca`,
/// `alpn`, `cert` + `key`, `min_version`/`max_version`, `insecure`; the
/// connection's `server_name` and `timeout` are the caller's), with the
/// same verifier as `tls::connect` (so the same error reasons). For
/// crates that drive their own streams (hyper): pair it with
/// [`connect_stream`].
///
/// # Errors
/// A `value` error naming `op` for a bad option.
pub fn client_config(op: &str, opts: Map) -> Result<Arc<rustls::ClientConfig>, Error> {
    let opts = Opts::new(op, opts, config::CLIENT_OPTS)?;
    config::client(op, &opts).map(|(config, _)| config)
}

/// The TLS client handshake over a connected `tcp` stream (tokio-rustls),
/// verifying `server_name` (a DNS name or an IP address). The caller
/// bounds it with a timeout. Failures are `tls` errors with the same
/// `reason` values as `tls::connect`.
///
/// # Errors
/// A `tls` error (with `reason`), or the socket's I/O error.
pub async fn connect_stream(
    op: &str,
    tcp: TcpStream,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let peer = tcp.peer_addr().map_or_else(|_| server_name.to_string(), |a| a.to_string());
    let name = config::server_name(op, server_name)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| reason::of_io(op, &peer, &e, Some(server_name)))
}

/// The rustls server configuration of a `tls::listen` option map (`cert`,
/// `key`, `client_ca`, `require_client_cert`, `alpn`, versions).
///
/// # Errors
/// A `value` error naming `op` for a bad or missing option.
pub fn server_config(op: &str, opts: Map) -> Result<Arc<rustls::ServerConfig>, Error> {
    let opts = Opts::new(op, opts, config::SERVER_OPTS)?;
    config::server(op, &opts)
}

/// The TLS server handshake over an accepted `tcp` stream (tokio-rustls).
/// The caller bounds it with a timeout.
///
/// # Errors
/// A `tls` error (with `reason`), or the socket's I/O error.
pub async fn accept_stream(
    op: &str,
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, Error> {
    let peer = tcp.peer_addr().map_or_else(|_| "?".into(), |a| a.to_string());
    tokio_rustls::TlsAcceptor::from(config).accept(tcp).await.map_err(|e| reason::of_io(op, &peer, &e, None))
}

/// Name an I/O error of a tokio-rustls stream (or of hyper over one): a
/// TLS failure inside becomes a `tls` error with its `reason`.
#[must_use]
pub fn io_error(op: &str, peer: &str, err: &std::io::Error) -> Error {
    reason::of_io(op, peer, err, None)
}

/// Options of `tls::connect`: TCP's and TLS client ones.
fn connect_opts() -> Vec<&'static str> {
    tcp::CONNECT_OPTS.iter().chain(config::CLIENT_OPTS).copied().collect()
}

/// Options of `tls::listen`: TCP's and TLS server ones.
fn listen_opts() -> Vec<&'static str> {
    tcp::LISTEN_OPTS.iter().chain(config::SERVER_OPTS).copied().collect()
}

/// Options of `c.starttls`: TLS client ones and the handshake's `timeout`.
fn starttls_opts() -> Vec<&'static str> {
    config::CLIENT_OPTS.iter().chain(&["timeout"]).copied().collect()
}

fn port_arg(op: &str, port: INT) -> Result<u16, Error> {
    u16::try_from(port).map_err(|_| Error::value(op, format!("port must be 0..65535, got {port}")))
}

/// `c.tls`: `#{version, cipher, alpn, server_name, verified}`, or `()`.
fn facts(c: &TcpConn) -> Dynamic {
    c.with_tls(|t| {
        let Some(t) = t else { return Dynamic::UNIT };
        let mut m = Map::new();
        m.insert("version".into(), t.version().into());
        m.insert("cipher".into(), t.cipher().into());
        let alpn = t.conn().alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
        m.insert("alpn".into(), alpn.map_or(Dynamic::UNIT, Into::into));
        m.insert("server_name".into(), t.server_name().map_or(Dynamic::UNIT, |n| n.to_string().into()));
        m.insert("verified".into(), t.verified().into());
        m.into()
    })
}

/// The peer's certificates, leaf first (empty on a plain connection or
/// when the peer showed none).
fn chain(c: &TcpConn) -> Vec<Blob> {
    c.with_tls(|t| {
        t.and_then(|t| t.conn().peer_certificates())
            .map(|certs| certs.iter().map(|c| c.as_ref().to_vec()).collect())
            .unwrap_or_default()
    })
}

#[export_module]
mod api {
    use super::*;

    /// A connection (the same type as `tcp::connect`'s).
    pub type Conn = TcpConn;

    /// Connect to `host:port` and do the TLS handshake, verifying the
    /// certificate chain against the system roots and the name `host` (a
    /// DNS name or an IP address). Python's
    /// `create_default_context().wrap_socket(create_connection(...), server_hostname=host)`.
    ///
    /// ```rhai
    /// let c = tls::connect("example.org", 443);
    /// print(c.tls.version);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn connect(host: &str, port: INT) -> NativeResult<Conn> {
        connect_opts(host, port, Map::new())
    }

    /// Connect with options: TCP's (`timeout` bounds the connect and the
    /// handshake and stays the connection's, `connect_timeout`, `family`,
    /// `source`…; `TCP_NODELAY` is always on) and `ca` (PEM text, blob or file path:
    /// replaces the system roots), `server_name` (SNI and the name
    /// verified, when connecting by address), `alpn` (array of protocol
    /// names), `cert` + `key` (client certificate), `min_version` /
    /// `max_version` (`"1.2"`, `"1.3"`), `insecure: true` (no verification
    /// at all; `c.tls.verified` is false), `suppress_ragged_eofs: true` (an
    /// EOF without close_notify reads as EOF, not a `truncated` error).
    /// A failed check is a `tls` error whose `reason` is `expired`,
    /// `not_yet_valid`, `hostname_mismatch`, `unknown_ca`, `self_signed`,
    /// `bad_certificate`, `client_cert_required`, `protocol_version` or
    /// `handshake`.
    ///
    /// ```rhai
    /// let c = tls::connect("127.0.0.1", 8443, #{ca: "ca.pem", server_name: "localhost", alpn: ["h2", "http/1.1"]});
    /// try { tls::connect("127.0.0.1", 8443) } catch (e) { if e.reason == "hostname_mismatch" { print(e.message) } }
    /// ```
    #[rhai_fn(name = "connect", return_raw)]
    pub fn connect_opts(host: &str, port: INT, opts: Map) -> NativeResult<Conn> {
        const OP: &str = "tls::connect";
        let known = super::connect_opts();
        let opts = Opts::new(OP, opts, &known)?;
        let port = port_arg(OP, port)?;
        let client = Client::new(OP, host, &opts)?;
        let conn = tcp::connect_as(OP, host, port, &opts)?;
        if let Err(e) = client.start(&conn, OP, &opts) {
            conn.close();
            return Err(e);
        }
        Ok(conn)
    }

    /// Listen for TLS clients on `host:port`: `cert` and `key` (PEM text,
    /// blob or file path) are required; `client_ca` asks clients for a
    /// certificate signed by it (required unless `require_client_cert:
    /// false`), `alpn` lists the protocols offered, `min_version` /
    /// `max_version`, `timeout` bounds each handshake (30 s), plus TCP's
    /// `family`, `backlog`, `reuseaddr`, `faults`. `accept` and `serve` work as for
    /// `tcp::listen`; under `serve` each handshake runs in the new
    /// connection's own task, and a failed one is logged and skipped.
    ///
    /// ```rhai
    /// let srv = tls::listen("127.0.0.1", 0, #{cert: "cert.pem", key: "key.pem"})
    ///     .serve(|c| c.send(c.recv_line() + "\n"));
    /// print(srv.port);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn listen(host: &str, port: INT, opts: Map) -> NativeResult<tcp::Listener> {
        const OP: &str = "tls::listen";
        let known = listen_opts();
        let opts = Opts::new(OP, opts, &known)?;
        let server = ServerTls::new(OP, &opts)?;
        tcp::listen_as(OP, host, port_arg(OP, port)?, &opts, Some(server))
    }

    /// Upgrade this plain connection to TLS as its client (STARTTLS):
    /// verifies `server_name` as `tls::connect` verifies its host. Bytes the
    /// peer sent before the handshake that are still unread raise a `tls`
    /// error with reason `injection` (they would pass as protected): read
    /// them first.
    ///
    /// ```rhai
    /// c.send_line("STARTTLS");
    /// c.recv_line();
    /// c.starttls("mail.example.org");
    /// ```
    #[rhai_fn(global, name = "starttls", return_raw, pure)]
    pub fn starttls(c: &mut Conn, server_name: &str) -> NativeResult<()> {
        starttls_opts(c, server_name, Map::new())
    }

    /// `starttls` with the options of `tls::connect` (`ca`, `alpn`, `cert` +
    /// `key`, versions, `insecure`, `suppress_ragged_eofs`) and `timeout`
    /// for the handshake (default `c.timeout`).
    ///
    /// ```rhai
    /// c.starttls("localhost", #{ca: "ca.pem", timeout: 5});
    /// ```
    #[rhai_fn(global, name = "starttls", return_raw, pure)]
    pub fn starttls_opts(c: &mut Conn, server_name: &str, opts: Map) -> NativeResult<()> {
        const OP: &str = "starttls";
        let known = super::starttls_opts();
        let opts = Opts::new(OP, opts, &known)?;
        Client::new(OP, server_name, &opts)?.start(c, OP, &opts)
    }

    /// Upgrade this plain connection to TLS as its server (the server side
    /// of STARTTLS), with the options of `tls::listen` (`cert`, `key`,
    /// `client_ca`, `require_client_cert`, `alpn`, versions, `timeout`).
    ///
    /// ```rhai
    /// c.send_line("220 go ahead");
    /// c.starttls_server(#{cert: "cert.pem", key: "key.pem"});
    /// ```
    #[rhai_fn(global, name = "starttls_server", return_raw, pure)]
    pub fn starttls_server(c: &mut Conn, opts: Map) -> NativeResult<()> {
        const OP: &str = "starttls_server";
        let opts = Opts::new(OP, opts, config::SERVER_OPTS)?;
        ServerTls::new(OP, &opts)?.handshake(c, OP)
    }

    /// The TLS facts of the connection, `()` on a plain one:
    /// `#{version, cipher, alpn, server_name, verified}` — `version` as
    /// Python's `version()` (`"TLSv1.3"`), `cipher` the IANA suite name,
    /// `alpn` the protocol agreed (or `()`), `server_name` the name the
    /// client asked for, `verified` whether the peer's certificate was
    /// checked (a client's `false` only with `insecure: true`; a server's
    /// `true` when the client showed a certificate its `client_ca` signed).
    ///
    /// ```rhai
    /// if c.tls != () { print(`${c.tls.version} ${c.tls.cipher}`) }
    /// ```
    #[rhai_fn(global, get = "tls", pure)]
    pub fn tls(c: &mut Conn) -> Dynamic {
        facts(c)
    }

    /// The peer's certificate as Python's `getpeercert()` shows it:
    /// `#{subject, issuer, version, serialNumber, notBefore, notAfter,
    /// subjectAltName}` (`subject` and `issuer` as tuples of
    /// `[[name, value]]` pairs); `()` on a plain connection or when the peer
    /// showed none (a server whose client sent no certificate). Unlike
    /// Python, an unverified certificate (`insecure: true`) is shown too.
    ///
    /// ```rhai
    /// let cert = c.peer_cert();
    /// print(cert.notAfter);
    /// ```
    #[rhai_fn(global, name = "peer_cert", return_raw, pure)]
    pub fn peer_cert(c: &mut Conn) -> NativeResult<Dynamic> {
        match chain(c).first() {
            Some(der) => Ok(certs::peer_cert_map(der)?.into()),
            None => Ok(Dynamic::UNIT),
        }
    }

    /// The peer's certificate in DER form, `()` if none.
    ///
    /// ```rhai
    /// let der = c.peer_cert_der();
    /// ```
    #[rhai_fn(global, name = "peer_cert_der", pure)]
    pub fn peer_cert_der(c: &mut Conn) -> Dynamic {
        chain(c).into_iter().next().map_or(Dynamic::UNIT, Dynamic::from_blob)
    }

    /// The peer's certificate chain as sent, leaf first: an array of DER
    /// blobs (empty if none).
    ///
    /// ```rhai
    /// print(c.peer_chain().len());
    /// ```
    #[rhai_fn(global, name = "peer_chain", pure)]
    pub fn peer_chain(c: &mut Conn) -> Array {
        chain(c).into_iter().map(Dynamic::from_blob).collect()
    }
}

/// The `tls::` module: connections and servers, and the certificate
/// functions ([`certs`]).
#[must_use]
pub fn module() -> rhai::Module {
    let mut m = exported_module!(api);
    m.combine_flatten(certs::module());
    m
}

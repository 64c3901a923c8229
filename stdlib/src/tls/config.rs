//! TLS option maps into rustls configurations: roots and `ca`, client and
//! server certificates (PEM text, blob or file path), versions, ALPN, the
//! verifiers (the default one tells a self-signed certificate apart from one
//! of an unknown CA; `insecure: true` checks nothing).

use std::sync::{Arc, OnceLock};

use rhai::Dynamic;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use super::reason::SelfSigned;
use crate::args::Opts;
use crate::error::{Error, Kind};

/// The options of a TLS client (`tls::connect`, `starttls`) besides TCP's.
pub const CLIENT_OPTS: &[&str] =
    &["ca", "server_name", "alpn", "cert", "key", "min_version", "max_version", "insecure", "suppress_ragged_eofs"];

/// The options of a TLS server (`tls::listen`, `starttls_server`).
pub const SERVER_OPTS: &[&str] = &[
    "cert",
    "key",
    "client_ca",
    "require_client_cert",
    "alpn",
    "min_version",
    "max_version",
    "timeout",
    "suppress_ragged_eofs",
];

/// The ring provider, installed once as the process default too (crates
/// that build their own rustls configuration, reqwest, panic without one).
#[must_use]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let provider = rustls::crypto::ring::default_provider();
            // Already installed (by an embedding program): keep theirs.
            let _ = provider.clone().install_default();
            Arc::new(provider)
        })
        .clone()
}

/// The system's trust roots (rustls-native-certs), loaded once.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            // Unreadable or malformed system certificates are skipped, as
            // OpenSSL skips them.
            let _ = store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(store)
        })
        .clone()
}

/// The bytes of a PEM/DER option: PEM text, a blob, or a file path.
fn material(op: &str, key: &str, value: &Dynamic) -> Result<Vec<u8>, Error> {
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return Ok(blob.clone());
    }
    let text = value
        .read_lock::<rhai::ImmutableString>()
        .map(|s| s.to_string())
        .ok_or_else(|| Error::value(op, format!("option '{key}' must be PEM text, a blob or a file path")))?;
    if text.contains("-----BEGIN") {
        return Ok(text.into_bytes());
    }
    std::fs::read(&text).map_err(|e| Error::io(op, &e).with_peer(format!("option '{key}' file {text}")))
}

/// Whether `bytes` look like PEM (text with a `-----BEGIN` line) rather than DER.
fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"-----BEGIN")
}

/// Certificates from PEM (every `CERTIFICATE` block) or one DER certificate.
pub(crate) fn certificates(op: &str, key: &str, value: &Dynamic) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = material(op, key, value)?;
    let certs: Vec<CertificateDer<'static>> = if is_pem(&bytes) {
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::value(op, format!("option '{key}': bad PEM: {e}")))?
    } else {
        vec![CertificateDer::from(bytes)]
    };
    if certs.is_empty() {
        return Err(Error::value(op, format!("option '{key}' holds no certificate")));
    }
    Ok(certs)
}

/// A private key from PEM (PKCS#8, PKCS#1 or SEC1) or DER.
fn private_key(op: &str, value: &Dynamic) -> Result<PrivateKeyDer<'static>, Error> {
    let bytes = material(op, "key", value)?;
    if is_pem(&bytes) {
        PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| Error::value(op, format!("option 'key': bad PEM key: {e}")))
    } else {
        PrivateKeyDer::try_from(bytes).map_err(|e| Error::value(op, format!("option 'key': {e}")))
    }
}

/// A root store of the certificates in option `key`.
fn roots(op: &str, key: &str, value: &Dynamic) -> Result<Arc<RootCertStore>, Error> {
    let mut store = RootCertStore::empty();
    for cert in certificates(op, key, value)? {
        store.add(cert).map_err(|e| Error::value(op, format!("option '{key}': {e}")))?;
    }
    Ok(Arc::new(store))
}

/// The versions from `min_version`/`max_version` (`"1.2"`, `"1.3"`).
fn versions(op: &str, opts: &Opts) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, Error> {
    let parse = |key: &str, default: u8| -> Result<u8, Error> {
        match opts.string(key)?.as_deref() {
            None => Ok(default),
            Some("1.2" | "TLSv1.2") => Ok(2),
            Some("1.3" | "TLSv1.3") => Ok(3),
            Some(other) => Err(Error::value(op, format!("option '{key}' must be \"1.2\" or \"1.3\", got {other:?}"))),
        }
    };
    let (min, max) = (parse("min_version", 2)?, parse("max_version", 3)?);
    if min > max {
        return Err(Error::value(op, "min_version is above max_version"));
    }
    let all = [(2, &rustls::version::TLS12), (3, &rustls::version::TLS13)];
    Ok(all.iter().filter(|(v, _)| (min..=max).contains(v)).map(|(_, s)| *s).collect())
}

/// `alpn: ["h2", "http/1.1"]`.
fn alpn(op: &str, opts: &Opts) -> Result<Vec<Vec<u8>>, Error> {
    let Some(value) = opts.get("alpn") else { return Ok(Vec::new()) };
    let list = value
        .read_lock::<rhai::Array>()
        .ok_or_else(|| Error::value(op, "option 'alpn' must be an array of protocol names"))?;
    list.iter()
        .map(|p| {
            p.read_lock::<rhai::ImmutableString>()
                .filter(|s| !s.is_empty() && s.len() < 256)
                .map(|s| s.as_bytes().to_vec())
                .ok_or_else(|| Error::value(op, "option 'alpn' must hold protocol names of 1..255 bytes"))
        })
        .collect()
}

/// Where the secrets of new TLS sessions go: `--keylog FILE`.
static KEYLOG: std::sync::Mutex<Option<Arc<dyn rustls::KeyLog>>> = std::sync::Mutex::new(None);

/// Secrets in the `SSLKEYLOGFILE` format (`LABEL client_random secret`,
/// hex), which Wireshark reads to decrypt a capture.
#[derive(Debug)]
struct KeyLogTo(std::sync::Mutex<std::fs::File>);

impl rustls::KeyLog for KeyLogTo {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let mut line = format!("{label} ");
        for b in client_random {
            let _ = write!(line, "{b:02x}");
        }
        line.push(' ');
        for b in secret {
            let _ = write!(line, "{b:02x}");
        }
        line.push('\n');
        let mut file = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // One write per line, so that a reader never sees half of one.
        let _ = file.write_all(line.as_bytes());
    }
}

/// Log the secrets of every TLS session made from now on to `path`
/// (appended, created if missing), for Wireshark (`--keylog FILE`).
///
/// # Errors
/// When the file cannot be opened.
pub fn set_keylog(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    *KEYLOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(KeyLogTo(file.into())));
    Ok(())
}

/// The key log of a new configuration: `--keylog`'s file, else
/// `SSLKEYLOGFILE` when set (as curl, Firefox and Python's `ssl` read it),
/// else none.
fn key_log() -> Arc<dyn rustls::KeyLog> {
    if let Some(log) = KEYLOG.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
        return log;
    }
    if std::env::var_os("SSLKEYLOGFILE").is_some() {
        return Arc::new(rustls::KeyLogFile::new());
    }
    Arc::new(rustls::NoKeyLog)
}

/// A client configuration and whether it verifies the server.
pub(crate) fn client(op: &str, opts: &Opts) -> Result<(Arc<ClientConfig>, bool), Error> {
    let insecure = opts.bool("insecure", false)?;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(op, opts)?)
        .map_err(|e| Error::value(op, format!("TLS versions: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(Insecure(provider.clone()))
    } else {
        let roots = match opts.get("ca") {
            Some(ca) if !ca.is_unit() => roots(op, "ca", ca)?,
            _ => system_roots(),
        };
        Arc::new(Verifier::new(op, roots, provider.clone())?)
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match (opts.get("cert"), opts.get("key")) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(op, "cert", cert)?, private_key(op, key)?)
            .map_err(|e| Error::value(op, format!("client certificate: {e}")))?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(Error::value(op, "options 'cert' and 'key' go together")),
    };
    config.alpn_protocols = alpn(op, opts)?;
    config.key_log = key_log();
    Ok((Arc::new(config), !insecure))
}

/// A server configuration: `cert` + `key`, optional `client_ca` and
/// `require_client_cert` (default true when `client_ca` is given, as
/// Python's `CERT_REQUIRED`; false is `CERT_OPTIONAL`).
pub(crate) fn server(op: &str, opts: &Opts) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(op, opts)?)
        .map_err(|e| Error::value(op, format!("TLS versions: {e}")))?;
    let builder = match opts.get("client_ca") {
        Some(ca) if !ca.is_unit() => {
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots(op, "client_ca", ca)?, provider);
            if !opts.bool("require_client_cert", true)? {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| Error::value(op, format!("option 'client_ca': {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ if opts.bool("require_client_cert", false)? => {
            return Err(Error::value(
                op,
                "require_client_cert needs client_ca (the CA that signs client certificates)",
            ));
        }
        _ => builder.with_no_client_auth(),
    };
    let (cert, key) = match (opts.get("cert"), opts.get("key")) {
        (Some(cert), Some(key)) => (certificates(op, "cert", cert)?, private_key(op, key)?),
        _ => return Err(Error::value(op, "a TLS server needs options 'cert' and 'key'")),
    };
    let mut config =
        builder.with_single_cert(cert, key).map_err(|e| Error::value(op, format!("server certificate: {e}")))?;
    config.alpn_protocols = alpn(op, opts)?;
    config.key_log = key_log();
    Ok(Arc::new(config))
}

/// The name to send and verify: `server_name` if given, else `host`.
pub(crate) fn server_name(op: &str, name: &str) -> Result<ServerName<'static>, Error> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|_| Error::new(Kind::Value, op, format!("{name:?} is not a valid TLS server name")))
}

/// The default verifier (chain to the roots, then the name), which tells
/// a self-signed certificate apart from one whose CA is unknown.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl Verifier {
    fn new(op: &str, roots: Arc<RootCertStore>, provider: Arc<CryptoProvider>) -> Result<Self, Error> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| Error::value(op, format!("option 'ca': {e}")))?;
        Ok(Self { inner, provider })
    }

    /// Whether `cert` is its own issuer: it verifies with itself as the
    /// only root (or fails for another reason than an unknown issuer).
    fn self_signed(&self, cert: &CertificateDer<'_>, name: &ServerName<'_>, now: UnixTime) -> bool {
        let mut store = RootCertStore::empty();
        if store.add(cert.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(alone) = WebPkiServerVerifier::builder_with_provider(Arc::new(store), self.provider.clone()).build()
        else {
            return false;
        };
        !matches!(
            alone.verify_server_cert(cert, &[], name, &[], now),
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature))
        )
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty() && self.self_signed(end_entity, server_name, now) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
                    SelfSigned,
                )))))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure: true`: any certificate and name pass; the handshake's
/// signatures are still checked, so the session is encrypted to whoever
/// holds the key of the certificate shown.
#[derive(Debug)]
struct Insecure(Arc<CryptoProvider>);

impl ServerCertVerifier for Insecure {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

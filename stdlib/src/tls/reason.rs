//! TLS failures as script errors: kind `tls` with a stable `reason`
//! (`expired`, `not_yet_valid`, `hostname_mismatch`, `unknown_ca`,
//! `self_signed`, `bad_certificate`, `client_cert_required`,
//! `protocol_version`, `handshake`, `truncated`, `injection`) and a message
//! naming the peer and what was wrong.

use std::net::SocketAddr;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};

use super::session::Failure;
use crate::error::{Error, Kind};

/// Marks a certificate that is its own issuer and is not a trusted root
/// (the verifier tells it apart from one of an unknown CA).
#[derive(Debug)]
pub(crate) struct SelfSigned;

impl std::fmt::Display for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("self-signed certificate")
    }
}

impl std::error::Error for SelfSigned {}

fn tls(op: &str, peer: &str, reason: &'static str, detail: String) -> Error {
    Error::new(Kind::Tls, op, detail).with_peer(peer).with_reason(reason)
}

/// A handshake's failure, named.
pub(crate) fn of_failure(op: &str, peer: &str, failure: &Failure, name: Option<&str>) -> Error {
    match failure {
        Failure::Tls(e) => of_rustls(op, peer, e, name),
        Failure::Io(e) => Error::io(op, e).with_peer(peer),
        Failure::Eof => tls(op, peer, "handshake", "the peer closed the connection during the TLS handshake".into()),
    }
}

/// An EOF without close_notify.
pub(crate) fn truncated(op: &str, peer: SocketAddr) -> Error {
    tls(
        op,
        &peer.to_string(),
        "truncated",
        "the peer closed the connection without a TLS close_notify: the data may be truncated \
         (option suppress_ragged_eofs: true reads this as a plain EOF)"
            .into(),
    )
}

/// A rustls error, named; `name` is the server name the client asked for.
pub(crate) fn of_rustls(op: &str, peer: &str, err: &rustls::Error, name: Option<&str>) -> Error {
    use rustls::Error as E;
    let (reason, detail): (&'static str, String) = match err {
        E::InvalidCertificate(c) => certificate(c, name),
        E::NoCertificatesPresented => ("client_cert_required", "the client presented no certificate".into()),
        E::AlertReceived(alert) => received(*alert),
        E::PeerIncompatible(p) if version_mismatch(p) => {
            ("protocol_version", format!("no TLS version in common with the peer ({p:?})"))
        }
        other => ("handshake", format!("TLS handshake failed: {other}")),
    };
    tls(op, peer, reason, detail)
}

/// Whether the peer's offer and ours share no protocol version.
fn version_mismatch(p: &PeerIncompatible) -> bool {
    matches!(
        p,
        PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
    )
}

/// What our side found wrong with the peer's certificate.
fn certificate(c: &CertificateError, name: Option<&str>) -> (&'static str, String) {
    use CertificateError as C;
    match c {
        C::Expired | C::ExpiredContext { .. } => ("expired", format!("certificate verify failed: {}", expiry(c))),
        C::NotValidYet | C::NotValidYetContext { .. } => {
            ("not_yet_valid", format!("certificate verify failed: {}", expiry(c)))
        }
        C::NotValidForNameContext { expected, presented } => (
            "hostname_mismatch",
            format!(
                "certificate verify failed: hostname mismatch, the certificate is for {}, not '{}'",
                names(presented),
                expected.to_str()
            ),
        ),
        C::NotValidForName => (
            "hostname_mismatch",
            format!(
                "certificate verify failed: hostname mismatch, the certificate is not for '{}'",
                name.unwrap_or("?")
            ),
        ),
        C::UnknownIssuer => ("unknown_ca", "certificate verify failed: unable to get local issuer certificate".into()),
        C::Other(other) if other.0.downcast_ref::<SelfSigned>().is_some() => {
            ("self_signed", "certificate verify failed: self-signed certificate".into())
        }
        other => ("bad_certificate", format!("certificate verify failed: {other}")),
    }
}

/// `certificate has expired (not after 2020-01-02 00:00:00 UTC)`.
fn expiry(c: &CertificateError) -> String {
    let at = |t: &rustls::pki_types::UnixTime| {
        let secs = t.as_secs();
        crate::tls::utc(secs)
    };
    match c {
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("certificate has expired (not valid after {})", at(not_after))
        }
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("certificate is not yet valid (not valid before {})", at(not_before))
        }
        CertificateError::NotValidYet => "certificate is not yet valid".into(),
        _ => "certificate has expired".into(),
    }
}

/// `['localhost', '127.0.0.1']`, or `no name` for an empty list.
fn names(presented: &[String]) -> String {
    if presented.is_empty() {
        return "no name".into();
    }
    // rustls gives them in Debug form (`DnsName("example.org")`): keep the name.
    let bare = |n: &str| n.split('"').nth(1).map_or_else(|| n.to_string(), str::to_string);
    let quoted: Vec<String> = presented.iter().map(|n| format!("'{}'", bare(n))).collect();
    quoted.join(", ")
}

/// What the peer told us it found wrong (an alert).
fn received(alert: AlertDescription) -> (&'static str, String) {
    use AlertDescription as A;
    let reason = match alert {
        A::CertificateRequired => "client_cert_required",
        A::ProtocolVersion => "protocol_version",
        A::UnknownCA => "unknown_ca",
        A::CertificateExpired => "expired",
        A::BadCertificate | A::UnsupportedCertificate | A::CertificateUnknown | A::CertificateRevoked => {
            "bad_certificate"
        }
        _ => "handshake",
    };
    (reason, format!("the peer refused the TLS session: alert {alert:?}"))
}

/// Is this I/O error (from tokio-rustls) a TLS failure? Name it if so.
pub(crate) fn of_io(op: &str, peer: &str, err: &std::io::Error, name: Option<&str>) -> Error {
    match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls_err) => of_rustls(op, peer, tls_err, name),
        None if err.kind() == std::io::ErrorKind::UnexpectedEof => {
            tls(op, peer, "handshake", "the peer closed the connection during the TLS handshake".into())
        }
        None => Error::io(op, err).with_peer(peer),
    }
}

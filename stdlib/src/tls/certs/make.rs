//! Making test certificates with rcgen: self-signed ones, and a test CA
//! whose `issue` signs leaves (the `trustme` way), with the validity dates,
//! names, key types and usages a test scenario asks for.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, SignatureAlgorithm,
};
use rhai::{Dynamic, Map};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

use crate::args::Opts;
use crate::error::Error;

/// Operation names, for errors.
pub const SELF_SIGNED: &str = "tls::self_signed";
/// See [`SELF_SIGNED`].
pub const MAKE_CA: &str = "tls::make_ca";
/// See [`SELF_SIGNED`].
pub const ISSUE: &str = "ca.issue";
/// See [`SELF_SIGNED`].
pub const CHILD_CA: &str = "ca.child_ca";

/// Options of `tls::self_signed` and `ca.issue`.
pub const CERT_OPTS: &[&str] =
    &["days", "not_before", "not_after", "common_name", "organization", "key_type", "key", "client_auth", "is_ca"];
/// Options of `tls::make_ca`.
pub const CA_OPTS: &[&str] = &["days", "not_before", "not_after", "common_name", "organization", "key_type", "key"];

const DAY: i64 = 86_400;
/// Default validity of a leaf, in days.
const LEAF_DAYS: i64 = 365;
/// Default validity of a CA, in days.
const CA_DAYS: i64 = 3650;
/// Certificates start this many seconds in the past, for clock skew.
const BACKDATE: i64 = 3600;
/// Dates X.509 can hold that a reader accepts: 1950-01-01 to 9999-12-31.
const EARLIEST: i64 = -631_152_000;
const LATEST: i64 = 253_402_300_799;
/// At most this many names in one certificate.
const MAX_NAMES: usize = 1000;
/// The common name of a CA made without one.
const CA_NAME: &str = "netscript test CA";

/// A test certificate authority: its certificate, its key, and what signs
/// with them. Clones share one CA.
#[derive(Clone)]
pub struct CertAuthority(Arc<CaInner>);

struct CaInner {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    /// This CA's certificate, then its issuers' up to the root.
    chain_pem: String,
    key_pem: String,
    subject: String,
}

impl CertAuthority {
    /// A new self-signed CA (`tls::make_ca(opts)`).
    pub fn new(opts: &Opts) -> Result<Self, Error> {
        Self::build(MAKE_CA, opts, None)
    }

    /// A CA signed by this one (`ca.child_ca(opts)`), for chains with an
    /// intermediate.
    pub fn child(&self, opts: &Opts) -> Result<Self, Error> {
        Self::build(CHILD_CA, opts, Some(&self.0))
    }

    fn build(op: &str, opts: &Opts, parent: Option<&CaInner>) -> Result<Self, Error> {
        let subject = opts.string("common_name")?.unwrap_or_else(|| CA_NAME.to_string());
        let mut params = CertificateParams::default();
        params.distinguished_name = distinguished_name(opts, &subject)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        set_validity(op, &mut params, opts, CA_DAYS)?;
        let key = key_pair(op, opts)?;
        let (cert_pem, chain_pem) = match parent {
            None => {
                let cert = params.self_signed(&key).map_err(|e| rcgen_error(op, &e))?.pem();
                (cert.clone(), cert)
            }
            Some(parent) => {
                params.use_authority_key_identifier_extension = true;
                let cert = params.signed_by(&key, &parent.issuer).map_err(|e| rcgen_error(op, &e))?.pem();
                let chain = format!("{cert}{}", parent.chain_pem);
                (cert, chain)
            }
        };
        let key_pem = key.serialize_pem();
        let issuer = Issuer::new(params, key);
        Ok(Self(Arc::new(CaInner { issuer, cert_pem, chain_pem, key_pem, subject })))
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.0.cert_pem
    }

    /// This CA's certificate then its issuers' (PEM), up to the root.
    #[must_use]
    pub fn chain_pem(&self) -> &str {
        &self.0.chain_pem
    }

    /// The CA's private key, PEM (PKCS#8).
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.0.key_pem
    }

    /// The CA's common name.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.0.subject
    }

    /// `ca.issue(names, opts)`: `#{cert, key, chain}` signed by this CA.
    pub fn issue(&self, names: &Dynamic, opts: &Opts) -> Result<Map, Error> {
        let (mut params, key) = leaf_params(ISSUE, names, opts)?;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.0.issuer).map_err(|e| rcgen_error(ISSUE, &e))?;
        let cert = cert.pem();
        let mut m = Map::new();
        m.insert("chain".into(), format!("{cert}{}", self.0.chain_pem).into());
        m.insert("cert".into(), cert.into());
        m.insert("key".into(), key.serialize_pem().into());
        Ok(m)
    }
}

/// `tls::self_signed(names, opts)`: `#{cert, key}`.
pub fn self_signed(names: &Dynamic, opts: &Opts) -> Result<Map, Error> {
    let (params, key) = leaf_params(SELF_SIGNED, names, opts)?;
    let cert = params.self_signed(&key).map_err(|e| rcgen_error(SELF_SIGNED, &e))?;
    let mut m = Map::new();
    m.insert("cert".into(), cert.pem().into());
    m.insert("key".into(), key.serialize_pem().into());
    Ok(m)
}

/// The parameters and key of a certificate for `names` (DNS names or IP
/// addresses; the first is the common name unless `common_name` is given).
fn leaf_params(op: &str, names: &Dynamic, opts: &Opts) -> Result<(CertificateParams, KeyPair), Error> {
    let names = name_list(op, names)?;
    let common_name = opts.string("common_name")?.unwrap_or_else(|| names[0].clone());
    let mut params = CertificateParams::new(names).map_err(|e| rcgen_error(op, &e))?;
    params.distinguished_name = distinguished_name(opts, &common_name)?;
    set_validity(op, &mut params, opts, LEAF_DAYS)?;
    let key = key_pair(op, opts)?;
    if opts.bool("is_ca", false)? {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    } else {
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if key.is_compatible(&PKCS_RSA_SHA256) {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if opts.bool("client_auth", false)? {
        params.extended_key_usages.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    Ok((params, key))
}

/// `names` as a non-empty list of strings (one string counts as a list of one).
fn name_list(op: &str, names: &Dynamic) -> Result<Vec<String>, Error> {
    let list: Vec<String> = if let Some(s) = names.read_lock::<rhai::ImmutableString>() {
        vec![s.to_string()]
    } else if let Some(items) = names.read_lock::<rhai::Array>() {
        items
            .iter()
            .map(|v| v.clone().into_string().map_err(|t| Error::value(op, format!("names must be strings, got {t}"))))
            .collect::<Result<_, _>>()?
    } else {
        return Err(Error::value(op, format!("expected a name or an array of names, got {}", names.type_name())));
    };
    if list.is_empty() {
        return Err(Error::value(op, "at least one name (DNS name or IP address) is needed"));
    }
    if list.len() > MAX_NAMES {
        return Err(Error::value(op, format!("{} names, at most {MAX_NAMES}", list.len())));
    }
    if let Some(bad) = list.iter().find(|n| !is_name(n)) {
        return Err(Error::value(
            op,
            format!("bad name {bad:?}: expected a DNS name (letters, digits, '-', '_', '.', '*') or an IP address"),
        ));
    }
    Ok(list)
}

/// An IP address, or a DNS name made of ASCII letters, digits, `-`, `_`,
/// `.` and `*` (wildcards; test names like `_srv.example` pass too).
fn is_name(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (!name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*')))
}

/// A subject with `common_name` and the `organization` option.
fn distinguished_name(opts: &Opts, common_name: &str) -> Result<DistinguishedName, Error> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = opts.string("organization")? {
        dn.push(DnType::OrganizationName, org);
    }
    Ok(dn)
}

/// Validity from the options: `not_before` (default an hour ago) and
/// `not_after` (default `days` after now, or after `not_before` when that is
/// given). A past `not_after` with the default start makes a certificate
/// that was valid for `default_days` before it expired.
fn set_validity(op: &str, params: &mut CertificateParams, opts: &Opts, default_days: i64) -> Result<(), Error> {
    if opts.get("days").is_some() && opts.get("not_after").is_some() {
        return Err(Error::value(op, "give either 'days' or 'not_after', not both"));
    }
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let days = opts.int("days", default_days)?;
    let span = days.checked_mul(DAY).ok_or_else(|| Error::value(op, format!("days out of range: {days}")))?;
    let given_start = opts.get("not_before").map(|_| opts.int("not_before", 0)).transpose()?;
    let not_after = match opts.get("not_after") {
        Some(_) => opts.int("not_after", 0)?,
        None => given_start.unwrap_or(now).saturating_add(span),
    };
    let not_before = given_start.unwrap_or_else(|| {
        let start = now - BACKDATE;
        if not_after > start { start } else { not_after.saturating_sub(default_days * DAY) }
    });
    if not_before > not_after {
        return Err(Error::value(op, format!("not_before ({not_before}) is after not_after ({not_after})")));
    }
    params.not_before = date(op, "not_before", not_before)?;
    params.not_after = date(op, "not_after", not_after)?;
    Ok(())
}

fn date(op: &str, what: &str, unix: i64) -> Result<OffsetDateTime, Error> {
    if !(EARLIEST..=LATEST).contains(&unix) {
        return Err(Error::value(op, format!("{what} {unix} is outside 1950..9999")));
    }
    OffsetDateTime::from_unix_timestamp(unix).map_err(|e| Error::value(op, format!("{what} {unix}: {e}")))
}

/// The `key` option's PEM key, or a new key of `key_type`.
fn key_pair(op: &str, opts: &Opts) -> Result<KeyPair, Error> {
    let key_type = opts.string("key_type")?;
    if let Some(pem) = opts.string("key")? {
        if key_type.is_some() {
            return Err(Error::value(op, "give either 'key' or 'key_type', not both"));
        }
        return KeyPair::from_pem(&pem)
            .map_err(|e| Error::value(op, format!("bad 'key' (a PEM PKCS#8 private key): {e}")));
    }
    let alg: &'static SignatureAlgorithm = match key_type.as_deref().unwrap_or("ecdsa-p256") {
        "ecdsa-p256" => &PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &PKCS_ECDSA_P384_SHA384,
        "ed25519" => &PKCS_ED25519,
        rsa if rsa.starts_with("rsa") => {
            return Err(Error::value(
                op,
                format!(
                    "key_type '{rsa}': RSA keys cannot be generated here; make one with \
                     `openssl genpkey -algorithm RSA` and pass its PEM as 'key'"
                ),
            ));
        }
        other => {
            return Err(Error::value(
                op,
                format!("unknown key_type '{other}' (known: ecdsa-p256, ecdsa-p384, ed25519)"),
            ));
        }
    };
    let key = KeyPair::generate_for(alg).map_err(|e| rcgen_error(op, &e))?;
    if alg == &PKCS_ED25519 { ed25519_v1(op, &key) } else { Ok(key) }
}

/// The same Ed25519 key in a PKCS#8 v1 document. ring writes v2 (with the
/// public key), which OpenSSL 3.0 — and so Python's `ssl` — cannot load.
fn ed25519_v1(op: &str, key: &KeyPair) -> Result<KeyPair, Error> {
    /// The v1 document up to the 32-byte seed: version 0, id-Ed25519, the
    /// OCTET STRING holding the CurvePrivateKey OCTET STRING.
    const V1_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let v2 = key.serialized_der();
    // ring's v2 document has the same layout as v1 up to the seed, but for
    // the outer length and the version.
    let seed = match v2.get(..48) {
        Some(head) if head[5..16] == V1_PREFIX[5..] => &head[16..48],
        _ => return Err(Error::value(op, "unexpected Ed25519 key encoding")),
    };
    let mut v1 = V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(v1), &PKCS_ED25519).map_err(|e| rcgen_error(op, &e))
}

fn rcgen_error(op: &str, err: &rcgen::Error) -> Error {
    Error::value(op, err.to_string())
}

//! Reading certificates with x509-parser into the maps scripts see: the
//! fields of Python's `getpeercert()` (as CPython builds them from OpenSSL in
//! `_ssl.c`: OpenSSL's long attribute names, `i2a_ASN1_INTEGER` serials,
//! `ASN1_TIME_print` dates, Python's own IPv6 formatting) and the extras of
//! `tls::cert_info`.

use std::borrow::Cow;

use rhai::{Array, Dynamic, INT, Map};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{self, PemObject};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::asn1_rs::{Any, Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::{SubjectPublicKeyInfo, X509Name};

use super::strings;
use crate::bytes::data_arg;
use crate::error::Error;

/// The operation name of `tls::cert_info`.
const CERT_INFO: &str = "tls::cert_info";

/// The map of Python's `getpeercert()` for the DER certificate `der`.
pub fn peer_cert_map(der: &[u8]) -> Result<Map, Error> {
    Ok(python_fields(&parse("peer_cert", der)?))
}

/// `tls::cert_info(pem_or_der)`: the `getpeercert()` fields and the extras.
pub fn cert_info(value: &Dynamic) -> Result<Map, Error> {
    let der = der_of(CERT_INFO, value)?;
    let cert = parse(CERT_INFO, &der)?;
    let mut m = python_fields(&cert);
    let digest = Sha256::digest(&der);
    m.insert("fingerprint_sha256".into(), digest.iter().map(|b| format!("{b:02x}")).collect::<String>().into());
    m.insert("is_ca".into(), cert.is_ca().into());
    let (key_type, key_bits) = key_facts(cert.public_key());
    m.insert("key_type".into(), key_type.into());
    m.insert("key_bits".into(), (key_bits as INT).into());
    let sig = &cert.signature_algorithm.algorithm;
    m.insert("signature_algorithm".into(), oid_name(sig, SIGNATURE_NAMES).into());
    let validity = cert.validity();
    m.insert("not_before".into(), validity.not_before.timestamp().into());
    m.insert("not_after".into(), validity.not_after.timestamp().into());
    Ok(m)
}

/// The DER bytes of a certificate given as PEM text, PEM bytes or DER bytes.
pub fn der_of(op: &str, value: &Dynamic) -> Result<Vec<u8>, Error> {
    let bytes = data_arg(value, op)?;
    if find(&bytes, b"-----BEGIN").is_some() {
        return CertificateDer::from_pem_slice(&bytes).map(|d| d.to_vec()).map_err(|e| match e {
            pem::Error::NoItemsFound => Error::value(op, "no -----BEGIN CERTIFICATE----- section in the PEM text"),
            other => Error::value(op, format!("bad PEM certificate: {other}")),
        });
    }
    if value.is_string() {
        return Err(Error::value(op, "expected a PEM certificate (-----BEGIN CERTIFICATE-----) or a DER blob"));
    }
    Ok(bytes.into_owned())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parse one DER certificate, with nothing after it.
fn parse<'a>(op: &str, der: &'a [u8]) -> Result<X509Certificate<'a>, Error> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(Error::value(op, format!("{} bytes after the DER certificate", rest.len()))),
        Err(e) => Err(Error::value(op, format!("not a DER X.509 certificate: {e}"))),
    }
}

/// The `getpeercert()` fields; the optional ones only when present, as in Python.
fn python_fields(cert: &X509Certificate<'_>) -> Map {
    let mut m = Map::new();
    m.insert("subject".into(), name_array(cert.subject()).into());
    m.insert("issuer".into(), name_array(cert.issuer()).into());
    m.insert("version".into(), (INT::from(cert.version().0) + 1).into());
    m.insert("serialNumber".into(), serial_hex(cert.raw_serial()).into());
    m.insert("notBefore".into(), python_time(cert.validity().not_before.to_datetime()).into());
    m.insert("notAfter".into(), python_time(cert.validity().not_after.to_datetime()).into());
    let mut alt_names: Option<Array> = None;
    let (mut ocsp, mut ca_issuers, mut crl): (Array, Array, Option<Array>) = (Array::new(), Array::new(), None);
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                alt_names.get_or_insert_with(Array::new).extend(san.general_names.iter().map(general_name));
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for desc in &aia.accessdescs {
                    let GeneralName::URI(uri) = desc.access_location else { continue };
                    match desc.access_method.to_id_string().as_str() {
                        "1.3.6.1.5.5.7.48.1" => ocsp.push(uri.into()),
                        "1.3.6.1.5.5.7.48.2" => ca_issuers.push(uri.into()),
                        _ => {}
                    }
                }
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                let uris = crl.get_or_insert_with(Array::new);
                for point in points.iter() {
                    let Some(DistributionPointName::FullName(names)) = &point.distribution_point else { continue };
                    uris.extend(names.iter().filter_map(|n| match n {
                        GeneralName::URI(uri) => Some(Dynamic::from(uri.to_string())),
                        _ => None,
                    }));
                }
            }
            _ => {}
        }
    }
    if let Some(names) = alt_names {
        m.insert("subjectAltName".into(), names.into());
    }
    if !ocsp.is_empty() {
        m.insert("OCSP".into(), ocsp.into());
    }
    if !ca_issuers.is_empty() {
        m.insert("caIssuers".into(), ca_issuers.into());
    }
    if let Some(uris) = crl {
        m.insert("crlDistributionPoints".into(), uris.into());
    }
    m
}

/// A distinguished name as Python shows it: an array of RDNs, each an array
/// of `[attribute, value]` pairs.
fn name_array(name: &X509Name<'_>) -> Array {
    name.iter()
        .map(|rdn| {
            let pairs: Array = rdn
                .iter()
                .map(|attr| strings([oid_name(attr.attr_type(), ATTRIBUTE_NAMES), attr_text(attr.attr_value())]).into())
                .collect();
            pairs.into()
        })
        .collect()
}

/// One subject alternative name as Python's `[type, value]`.
fn general_name(name: &GeneralName<'_>) -> Dynamic {
    let pair = |kind: &str, value: String| Dynamic::from_array(strings([kind.to_string(), value]));
    match name {
        GeneralName::DNSName(s) => pair("DNS", s.to_string()),
        GeneralName::RFC822Name(s) => pair("email", s.to_string()),
        GeneralName::URI(s) => pair("URI", s.to_string()),
        GeneralName::IPAddress(ip) => pair("IP Address", ip_text(ip)),
        GeneralName::DirectoryName(dn) => Dynamic::from_array(vec!["DirName".into(), name_array(dn).into()]),
        GeneralName::RegisteredID(oid) => pair("Registered ID", oid.to_id_string()),
        GeneralName::OtherName(oid, value) => pair("othername", other_name(oid, value)),
        GeneralName::X400Address(_) => pair("X400Name", "<unsupported>".into()),
        GeneralName::EDIPartyName(_) => pair("EdiPartyName", "<unsupported>".into()),
        GeneralName::Invalid(..) => pair("invalid", "<invalid>".into()),
    }
}

/// An otherName SAN as OpenSSL 3's `GENERAL_NAME_print` shows it (which
/// Python splits at the first colon): the types it knows with their UTF-8
/// (SRVName: IA5) value, anything else `<unsupported>`.
fn other_name(oid: &Oid<'_>, explicit: &[u8]) -> String {
    let label = match oid.to_id_string().as_str() {
        "1.3.6.1.5.5.7.8.9" => "SmtpUTF8Mailbox",
        "1.3.6.1.5.5.7.8.5" => "XmppAddr",
        "1.3.6.1.5.5.7.8.7" => "SRVName",
        "1.3.6.1.4.1.311.20.2.3" => "UPN",
        "1.3.6.1.5.5.7.8.8" => "NAIRealm",
        _ => return "<unsupported>".into(),
    };
    let want = if label == "SRVName" { Tag::Ia5String } else { Tag::Utf8String };
    // The value is `[0] EXPLICIT ANY`: unwrap the tag, then read the string.
    let value = Any::from_der(explicit).ok().and_then(|(_, wrapper)| Any::from_der(wrapper.data).ok());
    match value {
        Some((_, v)) if v.tag() == want => format!("{label}:{}", String::from_utf8_lossy(v.data)),
        _ => "<unsupported>".into(),
    }
}

/// An IP address SAN as CPython prints it: dotted IPv4; IPv6 as eight
/// uppercase hex groups without `::` compression.
fn ip_text(ip: &[u8]) -> String {
    match ip {
        [a, b, c, d] => format!("{a}.{b}.{c}.{d}"),
        _ if ip.len() == 16 => {
            ip.chunks(2).map(|g| format!("{:X}", u16::from_be_bytes([g[0], g[1]]))).collect::<Vec<_>>().join(":")
        }
        _ => "<invalid>".into(),
    }
}

/// An attribute value as UTF-8, the way OpenSSL's `ASN1_STRING_to_UTF8`
/// reads each string type.
fn attr_text(value: &Any<'_>) -> String {
    let data = value.data;
    match value.tag() {
        Tag::BmpString => {
            let units = data.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        // T61 is read as Latin-1, as OpenSSL does.
        Tag::TeletexString => data.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(data).into_owned(),
    }
}

/// The serial as OpenSSL's `i2a_ASN1_INTEGER`: uppercase hex of the
/// magnitude without leading zero bytes (`"00"` for zero), `-` if negative.
fn serial_hex(raw: &[u8]) -> String {
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude: Cow<[u8]> = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = raw.iter().map(|b| !b).collect();
        for byte in m.iter_mut().rev() {
            let (v, carry) = byte.overflowing_add(1);
            *byte = v;
            if !carry {
                break;
            }
        }
        Cow::Owned(m)
    } else {
        Cow::Borrowed(raw)
    };
    let start = magnitude.iter().position(|&b| b != 0).unwrap_or(magnitude.len());
    let digits: String = magnitude[start..].iter().map(|b| format!("{b:02X}")).collect();
    let digits = if digits.is_empty() { "00".to_string() } else { digits };
    if negative { format!("-{digits}") } else { digits }
}

/// A date as OpenSSL's `ASN1_TIME_print`: `Jan  5 09:34:43 2026 GMT`.
fn python_time(t: OffsetDateTime) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS[usize::from(u8::from(t.month())) - 1];
    format!("{month} {:2} {:02}:{:02}:{:02} {} GMT", t.day(), t.hour(), t.minute(), t.second(), t.year())
}

/// The key's type (named like the `key_type` option) and size in bits.
fn key_facts(spki: &SubjectPublicKeyInfo<'_>) -> (String, usize) {
    let alg = spki.algorithm.algorithm.to_id_string();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    let parsed = spki.parsed().ok();
    match (alg.as_str(), curve.as_deref()) {
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10", _) => {
            let bits = match parsed {
                Some(PublicKey::RSA(rsa)) => unsigned_bits(rsa.modulus),
                _ => 0,
            };
            let kind = if alg.ends_with(".1") { "rsa" } else { "rsa-pss" };
            (kind.into(), bits)
        }
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => ("ecdsa-p256".into(), 256),
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => ("ecdsa-p384".into(), 384),
        ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => ("ecdsa-p521".into(), 521),
        ("1.2.840.10045.2.1", _) => ("ecdsa".into(), parsed.map_or(0, |k| k.key_size())),
        ("1.3.101.112", _) => ("ed25519".into(), 256),
        ("1.3.101.113", _) => ("ed448".into(), 456),
        ("1.2.840.10040.4.1", _) => ("dsa".into(), parsed.map_or(0, |k| k.key_size())),
        _ => (alg, parsed.map_or(0, |k| k.key_size())),
    }
}

/// The bit length of a big-endian unsigned integer.
fn unsigned_bits(be: &[u8]) -> usize {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i - 1) * 8 + (8 - be[i].leading_zeros() as usize),
        None => 0,
    }
}

/// OpenSSL's long name of `oid` from `table`, or its dotted form (as
/// `OBJ_obj2txt` prints an OID it does not know).
fn oid_name(oid: &Oid<'_>, table: &[(&str, &str)]) -> String {
    let dotted = oid.to_id_string();
    table.iter().find(|(o, _)| *o == dotted).map_or(dotted, |(_, name)| (*name).to_string())
}

/// Distinguished-name attributes by OID, with OpenSSL's long names (what
/// Python shows).
const ATTRIBUTE_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "commonName"),
    ("2.5.4.4", "surname"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "countryName"),
    ("2.5.4.7", "localityName"),
    ("2.5.4.8", "stateOrProvinceName"),
    ("2.5.4.9", "streetAddress"),
    ("2.5.4.10", "organizationName"),
    ("2.5.4.11", "organizationalUnitName"),
    ("2.5.4.12", "title"),
    ("2.5.4.13", "description"),
    ("2.5.4.15", "businessCategory"),
    ("2.5.4.16", "postalAddress"),
    ("2.5.4.17", "postalCode"),
    ("2.5.4.18", "postOfficeBox"),
    ("2.5.4.20", "telephoneNumber"),
    ("2.5.4.41", "name"),
    ("2.5.4.42", "givenName"),
    ("2.5.4.43", "initials"),
    ("2.5.4.44", "generationQualifier"),
    ("2.5.4.45", "x500UniqueIdentifier"),
    ("2.5.4.46", "dnQualifier"),
    ("2.5.4.65", "pseudonym"),
    ("2.5.4.72", "role"),
    ("2.5.4.97", "organizationIdentifier"),
    ("0.9.2342.19200300.100.1.1", "userId"),
    ("0.9.2342.19200300.100.1.25", "domainComponent"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("1.2.840.113549.1.9.2", "unstructuredName"),
    ("1.3.6.1.4.1.311.60.2.1.1", "jurisdictionLocalityName"),
    ("1.3.6.1.4.1.311.60.2.1.2", "jurisdictionStateOrProvinceName"),
    ("1.3.6.1.4.1.311.60.2.1.3", "jurisdictionCountryName"),
];

/// Signature algorithms by OID, with OpenSSL's long names.
const SIGNATURE_NAMES: &[(&str, &str)] = &[
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption"),
    ("1.2.840.113549.1.1.10", "rsassaPss"),
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.113549.1.1.14", "sha224WithRSAEncryption"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1"),
    ("1.2.840.10045.4.3.1", "ecdsa-with-SHA224"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    ("1.2.840.10040.4.3", "dsaWithSHA1"),
    ("2.16.840.1.101.3.4.3.2", "dsa_with_SHA256"),
    ("1.3.101.112", "ED25519"),
    ("1.3.101.113", "ED448"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_print_as_openssl_i2a_asn1_integer() {
        assert_eq!(serial_hex(&[0x01]), "01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[]), "00");
        assert_eq!(serial_hex(&[0x00, 0xff, 0x10]), "FF10");
        assert_eq!(serial_hex(&[0xfb]), "-05");
        assert_eq!(serial_hex(&[0xff, 0x00]), "-0100");
        assert_eq!(serial_hex(&[0x80]), "-80");
    }

    #[test]
    fn ip_addresses_and_dates_print_as_cpython() {
        assert_eq!(ip_text(&[10, 0, 0, 1]), "10.0.0.1");
        let v6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd];
        assert_eq!(ip_text(&v6), "2001:DB8:0:0:0:0:0:ABCD");
        assert_eq!(ip_text(&[1, 2, 3]), "<invalid>");
        let t = OffsetDateTime::from_unix_timestamp(1_767_605_683).expect("a date");
        assert_eq!(python_time(t), "Jan  5 09:34:43 2026 GMT");
    }

    #[test]
    fn peer_cert_map_is_cert_info_without_the_extras_and_rejects_garbage() {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["peer.test".to_string()]).expect("params");
        let der = params.self_signed(&key).expect("cert").der().to_vec();
        let peer = peer_cert_map(&der).expect("parses");
        let mut info = cert_info(&Dynamic::from_blob(der.clone())).expect("parses");
        info.retain(|k, _| peer.contains_key(k));
        assert_eq!(format!("{peer:?}"), format!("{info:?}"));
        assert_eq!(peer["subjectAltName"].to_string(), r#"[["DNS", "peer.test"]]"#);
        let err = peer_cert_map(&der[..der.len() - 1]).expect_err("cut short");
        assert!(err.to_string().starts_with("peer_cert: not a DER X.509 certificate"), "{err}");
        let mut long = der;
        long.push(0);
        assert_eq!(
            peer_cert_map(&long).expect_err("trailing byte").to_string(),
            "peer_cert: 1 bytes after the DER certificate"
        );
    }
}

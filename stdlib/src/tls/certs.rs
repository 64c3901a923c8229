//! Certificates for `tls::`: reading them (`tls::cert_info`, and
//! [`peer_cert_map`] for a connection's `peer_cert()`, shaped like Python's
//! `ssl.SSLSocket.getpeercert()`), and making test certificates
//! (`tls::self_signed`, `tls::make_ca` / `ca.issue`) so a scenario can stand
//! up a TLS server and its client with no files.
//!
//! ```rhai
//! let ca = tls::make_ca();
//! let leaf = ca.issue(["localhost", "127.0.0.1"]);
//! let info = tls::cert_info(leaf.cert);
//! print(info.subjectAltName);   // [["DNS", "localhost"], ["IP Address", "127.0.0.1"]]
//! ```

mod make;
mod read;

pub use make::CertAuthority;
pub use read::{der_of, peer_cert_map};

use rhai::plugin::*;
use rhai::{Array, Dynamic, Map};

use crate::args::Opts;
use crate::error::NativeResult;

/// The `tls::` certificate functions.
#[must_use]
pub fn module() -> rhai::Module {
    exported_module!(api)
}

#[export_module]
mod api {
    use super::*;

    /// A test certificate authority made by `tls::make_ca`.
    pub type CA = CertAuthority;

    /// Facts about a certificate (a PEM string — the first certificate of
    /// several — or a DER blob): the fields of Python's `getpeercert()`
    /// (`subject`, `issuer`, `version`, `serialNumber`, `notBefore`,
    /// `notAfter`, `subjectAltName`, `OCSP`, `caIssuers`,
    /// `crlDistributionPoints`) plus `fingerprint_sha256` (lowercase hex, no
    /// colons, like `hashlib.sha256(der).hexdigest()`), `is_ca`, `key_type`
    /// (`"rsa"`, `"ecdsa-p256"`, `"ecdsa-p384"`, `"ecdsa-p521"`, `"ed25519"`,
    /// `"ed448"`, `"dsa"`, or the key's OID), `key_bits`,
    /// `signature_algorithm` (OpenSSL's name, e.g. `"ecdsa-with-SHA256"`),
    /// and `not_before` / `not_after` as unix seconds.
    ///
    /// ```rhai
    /// let c = tls::self_signed(["example.test"]);
    /// let info = tls::cert_info(c.cert);
    /// print(info.subject);    // [[["commonName", "example.test"]]]
    /// print(info.key_type);   // ecdsa-p256
    /// ```
    #[rhai_fn(return_raw)]
    pub fn cert_info(cert: Dynamic) -> NativeResult<Map> {
        Ok(read::cert_info(&cert)?)
    }

    /// A self-signed certificate for `names` (DNS names and/or IP
    /// addresses, an array or one string; all become subject alternative
    /// names, the first also the common name): `#{cert, key}` as PEM
    /// strings, valid from an hour ago for 365 days, ECDSA P-256.
    ///
    /// ```rhai
    /// let c = tls::self_signed(["localhost", "127.0.0.1", "::1"]);
    /// print(c.cert);   // -----BEGIN CERTIFICATE-----…
    /// ```
    #[rhai_fn(return_raw)]
    pub fn self_signed(names: Dynamic) -> NativeResult<Map> {
        Ok(make::self_signed(&names, &Opts::empty(make::SELF_SIGNED))?)
    }

    /// A self-signed certificate with options: `days` (validity from now,
    /// default 365; negative makes an expired certificate), `not_before` /
    /// `not_after` (unix seconds, instead of the defaults), `common_name`,
    /// `organization`, `key_type` (`"ecdsa-p256"` default, `"ecdsa-p384"`,
    /// `"ed25519"`), `key` (a PEM PKCS#8 private key to use instead of a new
    /// one — the way to get RSA), `client_auth` (also usable as a TLS
    /// client certificate), `is_ca`.
    ///
    /// ```rhai
    /// let old = tls::self_signed("old.test", #{days: -1});
    /// let soon = tls::self_signed(["soon.test"], #{not_before: 4102444800, key_type: "ed25519"});
    /// ```
    #[rhai_fn(name = "self_signed", return_raw)]
    pub fn self_signed_opts(names: Dynamic, opts: Map) -> NativeResult<Map> {
        let opts = Opts::new(make::SELF_SIGNED, opts, make::CERT_OPTS)?;
        Ok(make::self_signed(&names, &opts)?)
    }

    /// A new test certificate authority (`"netscript test CA"`, valid from
    /// an hour ago for ten years, ECDSA P-256); `ca.issue(names)` makes
    /// certificates it signs. Like Python's `trustme.CA()`.
    ///
    /// ```rhai
    /// let ca = tls::make_ca();
    /// print(ca.cert);   // -----BEGIN CERTIFICATE-----…
    /// ```
    #[rhai_fn(return_raw)]
    pub fn make_ca() -> NativeResult<CA> {
        Ok(CertAuthority::new(&Opts::empty(make::MAKE_CA))?)
    }

    /// A new test CA with options: `common_name`, `organization`, `days`,
    /// `not_before`, `not_after`, `key_type`, `key` (as for
    /// `tls::self_signed`).
    ///
    /// ```rhai
    /// let ca = tls::make_ca(#{common_name: "Test Root", organization: "Example", key_type: "ecdsa-p384"});
    /// ```
    #[rhai_fn(name = "make_ca", return_raw)]
    pub fn make_ca_opts(opts: Map) -> NativeResult<CA> {
        let opts = Opts::new(make::MAKE_CA, opts, make::CA_OPTS)?;
        Ok(CertAuthority::new(&opts)?)
    }

    /// The CA's certificate (PEM): what a client trusts.
    #[rhai_fn(global, get = "cert", pure)]
    pub fn ca_cert(ca: &mut CA) -> String {
        ca.cert_pem().to_string()
    }

    /// The CA's private key (PEM, PKCS#8).
    #[rhai_fn(global, get = "key", pure)]
    pub fn ca_key(ca: &mut CA) -> String {
        ca.key_pem().to_string()
    }

    /// The CA's certificate followed by its issuers' (PEM), up to the root:
    /// just `ca.cert` for a root made by `tls::make_ca`.
    #[rhai_fn(global, get = "chain", pure)]
    pub fn ca_chain(ca: &mut CA) -> String {
        ca.chain_pem().to_string()
    }

    /// An intermediate CA signed by this one, with the options of
    /// `tls::make_ca`; its leaves' `chain` holds the leaf, the
    /// intermediate and the root. Like trustme's `ca.create_child_ca()`.
    ///
    /// ```rhai
    /// let root = tls::make_ca();
    /// let mid = root.child_ca(#{common_name: "Issuing CA"});
    /// let leaf = mid.issue("localhost");   // leaf.chain: leaf, mid, root
    /// ```
    #[rhai_fn(global, name = "child_ca", return_raw, pure)]
    pub fn child_ca(ca: &mut CA) -> NativeResult<CA> {
        Ok(ca.child(&Opts::empty(make::CHILD_CA))?)
    }

    /// An intermediate CA with options (`common_name`, `organization`,
    /// `days`, `not_before`, `not_after`, `key_type`, `key`).
    ///
    /// ```rhai
    /// let mid = tls::make_ca().child_ca(#{common_name: "Issuing CA", key_type: "ed25519"});
    /// ```
    #[rhai_fn(global, name = "child_ca", return_raw, pure)]
    pub fn child_ca_opts(ca: &mut CA, opts: Map) -> NativeResult<CA> {
        let opts = Opts::new(make::CHILD_CA, opts, make::CA_OPTS)?;
        Ok(ca.child(&opts)?)
    }

    /// A certificate for `names` signed by this CA: `#{cert, key, chain}`
    /// (PEM strings; `chain` is the leaf then `ca.chain`). Valid
    /// from an hour ago for 365 days, for TLS servers.
    ///
    /// ```rhai
    /// let ca = tls::make_ca();
    /// let leaf = ca.issue(["localhost", "127.0.0.1"]);
    /// print(leaf.chain);
    /// ```
    #[rhai_fn(global, name = "issue", return_raw, pure)]
    pub fn issue(ca: &mut CA, names: Dynamic) -> NativeResult<Map> {
        Ok(ca.issue(&names, &Opts::empty(make::ISSUE))?)
    }

    /// A certificate signed by this CA, with the options of
    /// `tls::self_signed` (`client_auth: true` for a mutual-TLS client
    /// certificate, `days: -1` for an expired one, `is_ca: true` for an
    /// intermediate…).
    ///
    /// ```rhai
    /// let ca = tls::make_ca();
    /// let client = ca.issue(["alice"], #{client_auth: true, organization: "Example"});
    /// let expired = ca.issue("localhost", #{days: -1});
    /// ```
    #[rhai_fn(global, name = "issue", return_raw, pure)]
    pub fn issue_opts(ca: &mut CA, names: Dynamic, opts: Map) -> NativeResult<Map> {
        let opts = Opts::new(make::ISSUE, opts, make::CERT_OPTS)?;
        Ok(ca.issue(&names, &opts)?)
    }

    /// `CA(<subject>)`.
    #[rhai_fn(global, name = "to_string", pure)]
    pub fn ca_to_string(ca: &mut CA) -> String {
        format!("CA({})", ca.subject())
    }

    /// `CA(<subject>)`.
    #[rhai_fn(global, name = "to_debug", pure)]
    pub fn ca_to_debug(ca: &mut CA) -> String {
        ca_to_string(ca)
    }
}

/// A Rhai array of strings.
fn strings<I: IntoIterator<Item = S>, S: Into<Dynamic>>(items: I) -> Array {
    items.into_iter().map(Into::into).collect()
}

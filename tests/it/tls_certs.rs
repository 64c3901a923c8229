//! Certificate helpers against independent oracles: certificates made by the
//! `openssl` CLI read by `tls::cert_info` and by CPython's
//! `ssl._ssl._test_decode_cert` (the dict `getpeercert()` returns), and our
//! own test certificates checked by `openssl verify` / `openssl x509` and
//! used by Python's `ssl` module in a real TLS handshake.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::eval;

/// Keys of `tls::cert_info` that Python's dict does not have.
const EXTRAS: &[&str] =
    &["fingerprint_sha256", "is_ca", "key_type", "key_bits", "signature_algorithm", "not_before", "not_after"];

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("netscript-certs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).expect("read scratch file")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run `openssl args…` in `dir`; returns (success, stdout + stderr).
fn openssl_status(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Run `openssl args…` in `dir`, which must succeed; returns stdout + stderr.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let (ok, text) = openssl_status(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

/// CPython's `getpeercert()` dict for the PEM file at `path`, as JSON.
fn python_decode(path: &Path) -> Value {
    let out = crate::util::python(&format!(
        "import ssl, json; print(json.dumps(ssl._ssl._test_decode_cert({:?})))",
        path.to_str().expect("utf-8 path")
    ));
    serde_json::from_str(&out).expect("python prints JSON")
}

/// `tls::cert_info(pem)` as JSON.
fn cert_info(pem: &str) -> Value {
    let v = eval(&format!("json::encode(tls::cert_info(`{pem}`))")).expect("cert_info succeeds");
    serde_json::from_str(&v.into_string().expect("a string")).expect("JSON")
}

/// `cert_info` without the extras: what must equal Python's dict.
fn python_part(mut info: Value) -> Value {
    let obj = info.as_object_mut().expect("a map");
    for k in EXTRAS {
        assert!(obj.remove(*k).is_some(), "cert_info lacks {k}");
    }
    info
}

/// A string field of a script map.
fn field(map: &rhai::Dynamic, key: &str) -> String {
    map.read_lock::<rhai::Map>().expect("a map")[key].clone().into_string().expect("a string")
}

/// The extras of `info` (for the PEM file `name` in `dir`) against what
/// `openssl x509` prints.
fn extras_agree_with_openssl(dir: &Path, name: &str, info: &Value) {
    let text = openssl(dir, &["x509", "-in", name, "-noout", "-text"]);
    let sig = info["signature_algorithm"].as_str().expect("signature_algorithm");
    assert!(text.contains(&format!("Signature Algorithm: {sig}\n")), "{name}: {sig} not in\n{text}");
    let key_type = info["key_type"].as_str().expect("key_type");
    let bits = info["key_bits"].as_i64().expect("key_bits");
    match key_type {
        "ed25519" => assert!(text.contains("ED25519 Public-Key:"), "{name}"),
        "ed448" => assert!(text.contains("ED448 Public-Key:"), "{name}"),
        _ => assert!(text.contains(&format!("Public-Key: ({bits} bit)")), "{name}: {key_type} {bits} bits\n{text}"),
    }
    let curve = [("ecdsa-p256", "prime256v1"), ("ecdsa-p384", "secp384r1"), ("ecdsa-p521", "secp521r1")];
    if let Some((_, nist)) = curve.iter().find(|(k, _)| *k == key_type) {
        assert!(text.contains(&format!("ASN1 OID: {nist}")), "{name}: {key_type}\n{text}");
    }
    assert_eq!(info["is_ca"], text.contains("CA:TRUE"), "{name}");
    let fp = openssl(dir, &["x509", "-in", name, "-noout", "-fingerprint", "-sha256"]);
    let fp = fp.trim().rsplit('=').next().unwrap_or_default().replace(':', "").to_lowercase();
    assert_eq!(info["fingerprint_sha256"], fp.as_str(), "{name}");
}

/// Make certificates of many shapes with the openssl CLI and compare our
/// `getpeercert()` fields with CPython's, field by field.
#[test]
fn cert_info_matches_cpython_for_certificates_made_by_openssl() {
    let dir = Scratch::new("openssl-made");
    let d = &dir.0;
    // 1. EC P-256, a full subject, every common SAN type, serial 1.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "1.key",
            "-out",
            "1.pem",
            "-days",
            "30",
            "-set_serial",
            "1",
            "-subj",
            "/C=US/ST=California/L=San Francisco/O=Example Inc/OU=Web/CN=example.com/emailAddress=admin@example.com",
            "-addext",
            "subjectAltName=DNS:example.com,DNS:*.example.com,IP:127.0.0.1,IP:2001:db8::1,IP:::1,IP:fe80::a:bc,email:admin@example.com,URI:https://example.com/path?q=1",
        ],
    );
    // 2. RSA 2048, multi-valued RDN and UTF-8 names, a 20-byte serial,
    //    notAfter after 2050 (GeneralizedTime), AIA and CRL extensions.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-utf8",
            "-keyout",
            "2.key",
            "-out",
            "2.pem",
            "-days",
            "20000",
            "-set_serial",
            "0x7FEEDDCCBBAA99887766554433221100FFEEDDCC",
            "-subj",
            "/CN=Zoë Ünïcode+OU=Multi Valued/O=日本語の組織/DC=example/DC=com/serialNumber=ABC-123/street=1 Main St/postalCode=12345/GN=Jo/SN=Doe/title=Dr/UID=jdoe/L=Köln",
            "-addext",
            "authorityInfoAccess=OCSP;URI:http://ocsp.example.com/,caIssuers;URI:http://ca.example.com/ca.crt,OCSP;URI:http://ocsp2.example.com/",
            "-addext",
            "crlDistributionPoints=URI:http://crl.example.com/a.crl,URI:http://crl2.example.com/b.crl",
        ],
    );
    // 3. Ed25519 from a config file: a DirName and a registered-ID SAN,
    //    a serial whose top bit is set (DER pads it with a zero byte).
    dir.write(
        "3.cnf",
        "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n[dn]\nCN = dirname.test\nO = Dir Org\n\
         [ext]\nsubjectAltName = DNS:a.test, dirName:dir_sect, RID:1.2.3.4, DNS:b.test\nbasicConstraints = critical, CA:FALSE\n\
         [dir_sect]\nC = GB\nO = My Organization\nCN = My Name\n",
    );
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ed25519",
            "-nodes",
            "-config",
            "3.cnf",
            "-keyout",
            "3.key",
            "-out",
            "3.pem",
            "-days",
            "1",
            "-set_serial",
            "0xFF00000000000000000000000000000001",
        ],
    );
    // 4. A CA and a leaf it signs (issuer differs from subject), serial 0,
    //    only caIssuers in AIA, one CRL point, no email/IP SANs.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:secp384r1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/C=DE/O=Test CA Org/CN=Test Root CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "4.key",
            "-out",
            "4.csr",
            "-subj",
            "/CN=leaf.test/O=Leaf Org",
        ],
    );
    dir.write(
        "4.ext",
        "subjectAltName = DNS:leaf.test, DNS:www.leaf.test\nauthorityInfoAccess = caIssuers;URI:http://ca.test/root.der\n\
         crlDistributionPoints = URI:http://ca.test/root.crl\nextendedKeyUsage = serverAuth\n",
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "4.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "0",
            "-days",
            "90",
            "-extfile",
            "4.ext",
            "-out",
            "4.pem",
        ],
    );
    // 5. otherName SANs (UPN, SRVName, an unknown type), Ed448.
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ed448",
            "-nodes",
            "-keyout",
            "5.key",
            "-out",
            "5.pem",
            "-subj",
            "/CN=other.test",
            "-addext",
            "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:user@example.com,otherName:1.3.6.1.5.5.7.8.7;IA5:_imap.example.com,otherName:1.2.3.4;UTF8:x,otherName:1.3.6.1.4.1.311.20.2.3;IA5:not-utf8-type,DNS:other.test",
        ],
    );
    // 6. A version 1 certificate (no extensions), a negative serial, a
    //    subject in T61String (`nombstr`).
    dir.write("6.cnf", "[req]\ndistinguished_name = dn\nprompt = no\nstring_mask = nombstr\n[dn]\nCN = x\n");
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:secp521r1",
            "-nodes",
            "-config",
            "6.cnf",
            "-utf8",
            "-subj",
            "/CN=Zoë Latin/O=Plain",
            "-set_serial",
            "-5",
            "-keyout",
            "6.key",
            "-out",
            "6.pem",
        ],
    );
    for name in ["1.pem", "2.pem", "3.pem", "ca.pem", "4.pem", "5.pem", "6.pem"] {
        let python = python_decode(&dir.path(name));
        let ours = python_part(cert_info(&dir.read(name)));
        assert_eq!(ours, python, "{name}: ours (left) differs from CPython (right)");
        extras_agree_with_openssl(d, name, &cert_info(&dir.read(name)));
    }
    // The shapes the test meant to cover really are there (so the
    // comparison above is not between two empty maps).
    let two = python_decode(&dir.path("2.pem"));
    assert_eq!(two["serialNumber"], "7FEEDDCCBBAA99887766554433221100FFEEDDCC");
    assert_eq!(two["subject"][0].as_array().map(Vec::len), Some(2), "multi-valued RDN: {}", two["subject"]);
    assert!(two["notAfter"].as_str().is_some_and(|s| s.ends_with(" 2080 GMT") || s.ends_with(" 2081 GMT")));
    assert_eq!(two["OCSP"].as_array().map(Vec::len), Some(2));
    let one = python_decode(&dir.path("1.pem"));
    assert!(one["subjectAltName"].to_string().contains(r#"["IP Address","2001:DB8:0:0:0:0:0:1"]"#), "{one}");
    let three = python_decode(&dir.path("3.pem"));
    assert!(three["subjectAltName"].to_string().contains("DirName"), "{three}");
    assert_eq!(python_decode(&dir.path("4.pem"))["serialNumber"], "00");
    let five = python_decode(&dir.path("5.pem"));
    assert!(five["subjectAltName"].to_string().contains(r#"["othername","UPN:user@example.com"]"#), "{five}");
    let six = python_decode(&dir.path("6.pem"));
    assert_eq!((&six["version"], &six["serialNumber"]), (&serde_json::json!(1), &serde_json::json!("-05")));
    assert!(openssl(d, &["asn1parse", "-in", "6.pem"]).contains("T61STRING"));
}

/// Our own certificates read back by CPython give the same dict too, and
/// carry the names, organisation and dates asked for.
#[test]
fn cert_info_matches_cpython_for_our_own_certificates() {
    let dir = Scratch::new("own");
    let v = eval(
        r#"let ca = tls::make_ca(#{common_name: "Our Root", organization: "Ünïcode Org", key_type: "ecdsa-p384"});
           let leaf = ca.issue(["svc.test", "10.1.2.3", "2001:db8::7"], #{not_before: 1893456000, not_after: 2556144000, client_auth: true});
           let own = tls::self_signed("only.test", #{key_type: "ed25519", organization: "Solo"});
           #{ca: ca.cert, leaf: leaf.cert, own: own.cert}"#,
    )
    .unwrap();
    for name in ["ca", "leaf", "own"] {
        let pem = field(&v, name);
        let path = dir.write(&format!("{name}.pem"), &pem);
        assert_eq!(python_part(cert_info(&pem)), python_decode(&path), "{name}: ours (left) vs CPython (right)");
    }
    let leaf = python_decode(&dir.path("leaf.pem"));
    assert_eq!(leaf["subject"], serde_json::json!([[["commonName", "svc.test"]]]));
    assert_eq!(
        leaf["issuer"],
        serde_json::json!([[["commonName", "Our Root"]], [["organizationName", "Ünïcode Org"]]])
    );
    assert_eq!(
        leaf["subjectAltName"],
        serde_json::json!([["DNS", "svc.test"], ["IP Address", "10.1.2.3"], ["IP Address", "2001:DB8:0:0:0:0:0:7"]])
    );
    assert_eq!(leaf["notBefore"], "Jan  1 00:00:00 2030 GMT");
    assert_eq!(leaf["notAfter"], "Jan  1 00:00:00 2051 GMT");
}

/// The extras of `cert_info` against `openssl x509` and Python's
/// `ssl.cert_time_to_seconds`; DER input, PEM bundles and RSA keys made by
/// openssl (passed in as `key`).
#[test]
fn cert_info_extras_agree_with_openssl() {
    let dir = Scratch::new("extras");
    let d = &dir.0;
    openssl(d, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.key"]);
    let rsa_key = dir.read("rsa.key");
    let v = eval(&format!(
        r#"let ca = tls::make_ca(#{{key: `{rsa_key}`}});
           let leaf = ca.issue(["rsa.test"]);
           #{{ca: ca.cert, leaf: leaf.cert, chain: leaf.chain}}"#
    ))
    .unwrap();
    for (name, key_type, bits, is_ca) in [("ca", "rsa", 2048, true), ("leaf", "ecdsa-p256", 256, false)] {
        let pem = field(&v, name);
        let path = dir.write(&format!("{name}.pem"), &pem);
        let path = path.to_str().unwrap();
        let info = cert_info(&pem);
        assert_eq!(info["key_type"], key_type, "{name}");
        assert_eq!(info["key_bits"], bits, "{name}");
        assert_eq!(info["is_ca"], is_ca, "{name}");
        extras_agree_with_openssl(d, &format!("{name}.pem"), &info);
        let py = crate::util::python(&format!(
            "import ssl; d = ssl._ssl._test_decode_cert({path:?}); \
             print(int(ssl.cert_time_to_seconds(d['notBefore'])), int(ssl.cert_time_to_seconds(d['notAfter'])))"
        ));
        assert_eq!(py.trim(), format!("{} {}", info["not_before"], info["not_after"]));
    }
    // The CA (RSA) signed the leaf with RSA.
    assert_eq!(cert_info(&field(&v, "leaf"))["signature_algorithm"], "sha256WithRSAEncryption");
    // A bundle gives its first certificate; DER input gives the same map.
    assert_eq!(cert_info(&field(&v, "chain")), cert_info(&field(&v, "leaf")));
    openssl(d, &["x509", "-in", "leaf.pem", "-outform", "DER", "-out", "leaf.der"]);
    let der: String = std::fs::read(dir.path("leaf.der")).unwrap().iter().map(|b| format!("{b:02x}")).collect();
    let from_der = eval(&format!(r#"json::encode(tls::cert_info(hex::decode("{der}")))"#)).unwrap();
    let from_der: Value = serde_json::from_str(&from_der.into_string().unwrap()).unwrap();
    assert_eq!(from_der, cert_info(&field(&v, "leaf")));
}

/// A leaf from `make_ca` verifies against the CA with `openssl verify`, and
/// `openssl x509` shows the names and dates asked for.
#[test]
fn openssl_verifies_a_make_ca_leaf_and_shows_its_names_and_dates() {
    let dir = Scratch::new("verify");
    let d = &dir.0;
    let v = eval(
        r#"let ca = tls::make_ca();
           let leaf = ca.issue(["localhost", "127.0.0.1", "::1"], #{not_before: 1700000000, not_after: 4102444800});
           let client = ca.issue(["alice"], #{client_auth: true});
           #{ca: ca.cert, leaf: leaf.cert, client: client.cert}"#,
    )
    .unwrap();
    dir.write("ca.pem", &field(&v, "ca"));
    dir.write("leaf.pem", &field(&v, "leaf"));
    dir.write("client.pem", &field(&v, "client"));
    assert!(openssl(d, &["verify", "-CAfile", "ca.pem", "leaf.pem"]).contains("leaf.pem: OK"));
    let ok = openssl(
        d,
        &["verify", "-CAfile", "ca.pem", "-purpose", "sslserver", "-verify_hostname", "localhost", "leaf.pem"],
    );
    assert!(ok.contains("OK"), "{ok}");
    assert!(openssl(d, &["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "client.pem"]).contains("OK"));
    // Without client_auth the leaf is no TLS client certificate.
    let (ok, text) = openssl_status(d, &["verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "leaf.pem"]);
    assert!(!ok && text.contains("unsuitable certificate purpose"), "{text}");
    let sans = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName"]);
    assert!(sans.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"), "{sans}");
    let dates = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-dates"]);
    assert!(dates.contains("notBefore=Nov 14 22:13:20 2023 GMT"), "{dates}");
    assert!(dates.contains("notAfter=Jan  1 00:00:00 2100 GMT"), "{dates}");
    let subject = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-subject", "-issuer"]);
    assert!(
        subject.contains("subject=CN = localhost") && subject.contains("issuer=CN = netscript test CA"),
        "{subject}"
    );
}

/// Expired and not-yet-valid certificates, made on purpose, are rejected by
/// `openssl verify` with the matching error.
#[test]
fn openssl_rejects_expired_and_not_yet_valid_certificates() {
    let dir = Scratch::new("dates");
    let d = &dir.0;
    let v = eval(
        r#"let ca = tls::make_ca();
           #{ca: ca.cert,
             expired: ca.issue("localhost", #{days: -1}).cert,
             future: ca.issue("localhost", #{not_before: 4102444800}).cert,
             self_expired: tls::self_signed("localhost", #{days: -2, is_ca: true}).cert}"#,
    )
    .unwrap();
    for name in ["ca", "expired", "future", "self_expired"] {
        dir.write(&format!("{name}.pem"), &field(&v, name));
    }
    let (ok, text) = openssl_status(d, &["verify", "-CAfile", "ca.pem", "expired.pem"]);
    assert!(!ok && text.contains("error 10") && text.contains("certificate has expired"), "{text}");
    let (ok, text) = openssl_status(d, &["verify", "-CAfile", "ca.pem", "future.pem"]);
    assert!(!ok && text.contains("error 9") && text.contains("certificate is not yet valid"), "{text}");
    let (ok, text) = openssl_status(d, &["verify", "-CAfile", "self_expired.pem", "self_expired.pem"]);
    assert!(!ok && text.contains("certificate has expired"), "{text}");
    // The expired one was valid for a year before it expired.
    let info = cert_info(&field(&v, "expired"));
    let (nb, na) = (info["not_before"].as_i64().unwrap(), info["not_after"].as_i64().unwrap());
    assert_eq!(na - nb, 365 * 86400);
    // A short validity starts an hour ago, like the default one.
    let short =
        eval(r#"let i = tls::cert_info(tls::self_signed("a.test", #{days: 0}).cert); i.not_after - i.not_before"#);
    assert_eq!(short.unwrap().as_int().unwrap(), 3600);
}

/// Python's `ssl` loads our certificates and keys of every key type, a
/// Python TLS server with a `make_ca` leaf is verified by Python's client
/// trusting the CA (host name checked), and mutual TLS works with a
/// `client_auth` certificate.
#[test]
fn python_tls_handshake_with_make_ca_certificates() {
    let dir = Scratch::new("python");
    for key_type in ["ecdsa-p256", "ecdsa-p384", "ed25519"] {
        let v = eval(&format!(
            r#"let ca = tls::make_ca(#{{key_type: "{key_type}"}});
               let server = ca.issue(["localhost", "127.0.0.1"], #{{key_type: "{key_type}"}});
               let client = ca.issue(["client.test"], #{{client_auth: true, key_type: "{key_type}"}});
               #{{ca: ca.cert, cert: server.chain, key: server.key, ccert: client.cert, ckey: client.key}}"#
        ))
        .unwrap();
        for name in ["ca", "cert", "key", "ccert", "ckey"] {
            dir.write(&format!("{name}.pem"), &field(&v, name));
        }
        let out = crate::util::python(&format!(
            r#"
import os, socket, ssl, threading
os.chdir({dir:?})
srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
srv_ctx.load_cert_chain("cert.pem", "key.pem")
srv_ctx.load_verify_locations("ca.pem")
srv_ctx.verify_mode = ssl.CERT_REQUIRED
lsock = socket.create_server(("127.0.0.1", 0))
port = lsock.getsockname()[1]
seen = {{}}
def serve():
    c, _ = lsock.accept()
    with srv_ctx.wrap_socket(c, server_side=True) as s:
        seen["client"] = s.getpeercert()["subject"]
        s.sendall(s.recv(100).upper())
t = threading.Thread(target=serve); t.start()
cli_ctx = ssl.create_default_context(cafile="ca.pem")
cli_ctx.load_cert_chain("ccert.pem", "ckey.pem")
with cli_ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as s:
    s.sendall(b"hello")
    reply = s.recv(100)
    cert = s.getpeercert()
t.join()
print(reply.decode(), cert["subjectAltName"], seen["client"])
"#,
            dir = dir.0.to_str().unwrap()
        ));
        assert_eq!(
            out.trim(),
            "HELLO (('DNS', 'localhost'), ('IP Address', '127.0.0.1')) ((('commonName', 'client.test'),),)",
            "{key_type}"
        );
    }
}

/// A self-signed certificate is its own trust anchor for Python's client,
/// with the host name checked against its names.
#[test]
fn python_trusts_a_self_signed_certificate_as_its_own_ca() {
    let dir = Scratch::new("self-signed");
    let v = eval(r#"tls::self_signed(["localhost", "127.0.0.1"], #{organization: "Solo"})"#).unwrap();
    dir.write("cert.pem", &field(&v, "cert"));
    dir.write("key.pem", &field(&v, "key"));
    let out = crate::util::python(&format!(
        r#"
import os, socket, ssl, threading
os.chdir({dir:?})
srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
srv_ctx.load_cert_chain("cert.pem", "key.pem")
lsock = socket.create_server(("127.0.0.1", 0))
def serve():
    c, _ = lsock.accept()
    with srv_ctx.wrap_socket(c, server_side=True) as s:
        s.sendall(b"hi")
t = threading.Thread(target=serve); t.start()
ctx = ssl.create_default_context(cafile="cert.pem")
with ctx.wrap_socket(socket.create_connection(lsock.getsockname()), server_hostname="127.0.0.1") as s:
    print(s.recv(2).decode(), s.getpeercert()["subject"])
t.join()
"#,
        dir = dir.0.to_str().unwrap()
    ));
    assert_eq!(out.trim(), "hi ((('commonName', 'localhost'),), (('organizationName', 'Solo'),))");
}

/// Python's client rejects a leaf from another CA and a leaf for another
/// name, so the handshake above proves verification really happened.
#[test]
fn python_client_rejects_unknown_ca_and_wrong_name() {
    let dir = Scratch::new("python-reject");
    let v = eval(
        r#"let ca = tls::make_ca();
           let other = tls::make_ca(#{common_name: "Other CA"});
           let a = other.issue("localhost");
           let b = ca.issue("elsewhere.test");
           #{ca: ca.cert, a: a.cert, ak: a.key, b: b.chain, bk: b.key}"#,
    )
    .unwrap();
    for name in ["ca", "a", "ak", "b", "bk"] {
        dir.write(&format!("{name}.pem"), &field(&v, name));
    }
    let out = crate::util::python(&format!(
        r#"
import os, socket, ssl, threading
os.chdir({dir:?})
def attempt(cert, key):
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(cert, key)
    lsock = socket.create_server(("127.0.0.1", 0))
    def serve():
        c, _ = lsock.accept()
        try:
            srv_ctx.wrap_socket(c, server_side=True).close()
        except ssl.SSLError:
            pass
    t = threading.Thread(target=serve); t.start()
    ctx = ssl.create_default_context(cafile="ca.pem")
    try:
        ctx.wrap_socket(socket.create_connection(lsock.getsockname()), server_hostname="localhost").close()
        result = "accepted"
    except ssl.SSLCertVerificationError as e:
        result = e.verify_message
    t.join(); lsock.close()
    return result
print(attempt("a.pem", "ak.pem"))
print(attempt("b.pem", "bk.pem"))
"#,
        dir = dir.0.to_str().unwrap()
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "unable to get local issuer certificate");
    assert!(lines[1].starts_with("Hostname mismatch"), "{out}");
}

/// Bad input is a `value` error naming the function and what was wrong;
/// nothing panics.
#[test]
fn bad_input_is_a_value_error_naming_the_function() {
    let cases = [
        (r#"tls::cert_info("not a certificate")"#, "tls::cert_info", "PEM"),
        (r#"tls::cert_info(blob(40, 0x30))"#, "tls::cert_info", "not a DER X.509 certificate"),
        (
            "tls::cert_info(\"-----BEGIN CERTIFICATE-----\\n%%%%\\n-----END CERTIFICATE-----\\n\")",
            "tls::cert_info",
            "bad PEM",
        ),
        (r#"tls::cert_info(tls::self_signed("a.test").key)"#, "tls::cert_info", "no -----BEGIN CERTIFICATE-----"),
        (r#"tls::cert_info(42)"#, "tls::cert_info", "expected a blob or a string"),
        (r#"tls::self_signed([])"#, "tls::self_signed", "at least one name"),
        (r#"tls::self_signed(["bad name"])"#, "tls::self_signed", "bad name"),
        (r#"tls::self_signed(["zoë.test"])"#, "tls::self_signed", "bad name"),
        (r#"tls::self_signed(["fe80::1%eth0"])"#, "tls::self_signed", "bad name"),
        (r#"tls::self_signed(["a.test", ""])"#, "tls::self_signed", "bad name"),
        (r#"tls::self_signed([1])"#, "tls::self_signed", "names must be strings"),
        (r#"tls::self_signed("a.test", #{key_type: "rsa2048"})"#, "tls::self_signed", "RSA keys cannot be generated"),
        (r#"tls::self_signed("a.test", #{key_type: "dsa"})"#, "tls::self_signed", "unknown key_type 'dsa'"),
        (r#"tls::self_signed("a.test", #{dayz: 3})"#, "tls::self_signed", "unknown option 'dayz'"),
        (r#"tls::self_signed("a.test", #{days: 3, not_after: 5})"#, "tls::self_signed", "either 'days' or 'not_after'"),
        (r#"tls::self_signed("a.test", #{not_before: 10, not_after: 5})"#, "tls::self_signed", "after not_after"),
        (r#"tls::self_signed("a.test", #{days: 9223372036854775807})"#, "tls::self_signed", "out of range"),
        (r#"tls::self_signed("a.test", #{not_after: 999999999999})"#, "tls::self_signed", "outside 1950..9999"),
        (
            r#"tls::make_ca(#{key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})"#,
            "tls::make_ca",
            "bad 'key'",
        ),
        (r#"tls::make_ca(#{client_auth: true})"#, "tls::make_ca", "unknown option 'client_auth'"),
        (r#"tls::make_ca().issue("a.test", #{key_type: "ed448"})"#, "ca.issue", "unknown key_type"),
    ];
    for (code, op, detail) in cases {
        let err = eval(code).expect_err(code);
        assert!(err.starts_with(&format!("value: {op}: ")), "{code}: {err}");
        assert!(err.contains(detail), "{code}: {err} lacks {detail:?}");
    }
}

/// The CA handle is a cheap shared value: clones issue with the same CA,
/// and it prints its subject.
#[test]
fn ca_handle_clones_share_one_ca() {
    let v = eval(
        r#"let ca = tls::make_ca(#{common_name: "Shared"});
           let copy = ca;
           let a = tls::cert_info(ca.issue("a.test").cert);
           let b = tls::cert_info(copy.issue("b.test").cert);
           [a.issuer == b.issuer, ca.cert == copy.cert, `${ca}`, a.issuer]"#,
    )
    .unwrap();
    assert_eq!(v.to_string(), r#"[true, true, "CA(Shared)", [[["commonName", "Shared"]]]]"#);
}

/// An intermediate from `ca.child_ca` makes a three-certificate chain that
/// `openssl verify` accepts from the root (with the intermediate as
/// untrusted) and rejects without the intermediate.
#[test]
fn child_ca_makes_a_chain_openssl_verifies() {
    let dir = Scratch::new("child");
    let d = &dir.0;
    let v = eval(
        r#"let root = tls::make_ca(#{common_name: "Root"});
           let mid = root.child_ca(#{common_name: "Issuing", key_type: "ed25519"});
           let leaf = mid.issue(["localhost"]);
           #{root: root.cert, mid: mid.cert, mid_chain: mid.chain, leaf: leaf.cert, chain: leaf.chain,
             root_chain: root.chain}"#,
    )
    .unwrap();
    for name in ["root", "mid", "leaf"] {
        dir.write(&format!("{name}.pem"), &field(&v, name));
    }
    let ok = openssl(d, &["verify", "-CAfile", "root.pem", "-untrusted", "mid.pem", "-show_chain", "leaf.pem"]);
    assert!(ok.contains("leaf.pem: OK") && ok.contains("depth=2"), "{ok}");
    let (ok, text) = openssl_status(d, &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert!(!ok && text.contains("unable to get local issuer certificate"), "{text}");
    let (root, mid, leaf) = (field(&v, "root"), field(&v, "mid"), field(&v, "leaf"));
    assert_eq!(field(&v, "chain"), format!("{leaf}{mid}{root}"));
    assert_eq!(field(&v, "mid_chain"), format!("{mid}{root}"));
    assert_eq!(field(&v, "root_chain"), root);
    let mid_info = cert_info(&mid);
    assert_eq!(mid_info["is_ca"], true);
    assert_eq!(mid_info["issuer"], serde_json::json!([[["commonName", "Root"]]]));
    assert_eq!(cert_info(&leaf)["signature_algorithm"], "ED25519");
}

//! `tls::` against real peers: `openssl s_server` / `s_client` and Python's
//! `ssl` module, with certificates made by the `openssl` CLI (an oracle
//! independent of our own helpers): a CA, a leaf for `localhost` and
//! `127.0.0.1`, expired, not-yet-valid, wrong-name, self-signed,
//! unknown-CA and client-only leaves, and a client certificate. Every
//! error `reason` is produced by a real peer.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::util::{Peer, eval};

/// The certificates of the scenarios, as files in a temporary directory.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Path of file `name` (`ca.pem`, `leaf.pem`, `leaf.key`…) as a script string.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

/// A leaf certificate of the scenarios: file stem, CN, signing CA, the
/// extensions file and the validity dates (`notBefore`, `notAfter`).
struct Leaf {
    name: &'static str,
    cn: &'static str,
    ca: &'static str,
    ext: String,
    valid: (&'static str, &'static str),
}

fn openssl(dir: &Path, args: &[&str]) {
    let out =
        Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Make (once per test process) the CA, the leaves and the client certificate.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("netscript-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect("write");
        write("req.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = placeholder\n");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        // Two CAs: ours, and one the clients do not know.
        for ca in ["ca", "other-ca"] {
            let subj = format!("/CN=netscript test {ca}");
            let (key, pem) = (format!("{ca}.key"), format!("{ca}.pem"));
            let mut args = vec!["req", "-config", "req.cnf", "-x509"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &pem, "-days", "30", "-subj", &subj]);
            args.extend(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(&dir, &args);
            let d = dir.to_string_lossy();
            write(
                &format!("{ca}.cnf"),
                &format!(
                    "[ca]\ndefault_ca = x\n[x]\ndatabase = {d}/{ca}.index\nnew_certs_dir = {d}\nserial = {d}/{ca}.serial\n\
                     default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n"
                ),
            );
            write(&format!("{ca}.index"), "");
            write(&format!("{ca}.serial"), "1000\n");
        }
        let server = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
        let good_names = "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
        const ALWAYS: (&str, &str) = ("20240101000000Z", "20991231000000Z");
        let leaf = |name, cn, ca, ext: String, valid| Leaf { name, cn, ca, ext, valid };
        let leaves = [
            leaf("leaf", "localhost", "ca", format!("{server}{good_names}"), ALWAYS),
            leaf("expired", "localhost", "ca", format!("{server}{good_names}"), ("20200101000000Z", "20200201000000Z")),
            leaf("future", "localhost", "ca", format!("{server}{good_names}"), ("20900101000000Z", "20910101000000Z")),
            leaf("wrong", "wrong.example", "ca", format!("{server}subjectAltName=DNS:wrong.example,DNS:*.wrong.example\n"), ALWAYS),
            leaf("stranger", "localhost", "other-ca", format!("{server}{good_names}"), ALWAYS),
            leaf("clientonly", "localhost", "ca", format!("basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n{good_names}"), ALWAYS),
            leaf("client", "netscript client", "ca", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n".to_string(), ALWAYS),
        ];
        for Leaf { name, cn, ca, ext, valid: (start, end) } in &leaves {
            let (key, csr, pem, extfile) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
            write(&extfile, ext);
            let subj = format!("/CN={cn}");
            let mut args = vec!["req", "-config", "req.cnf"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(&dir, &args);
            let (cnf, cacert, cakey) = (format!("{ca}.cnf"), format!("{ca}.pem"), format!("{ca}.key"));
            openssl(
                &dir,
                &["ca", "-batch", "-notext", "-config", &cnf, "-cert", &cacert, "-keyfile", &cakey, "-in", &csr, "-out", &pem,
                  "-startdate", start, "-enddate", end, "-extfile", &extfile],
            );
        }
        // A self-signed leaf for the right names.
        openssl(
            &dir,
            &["req", "-config", "req.cnf", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
              "-keyout", "self.key", "-out", "self.pem", "-days", "30", "-subj", "/CN=localhost",
              "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=CA:FALSE"],
        );
        Pki { dir }
    })
}

/// `openssl s_server` on a free loopback port; killed when dropped.
pub struct SServer {
    child: Child,
    pub port: u16,
}

impl SServer {
    /// Serve `cert`/`key` (names in the PKI) with extra arguments; `-rev`
    /// echoes each line reversed.
    pub fn start(cert: &str, extra: &[&str]) -> Self {
        let pki = pki();
        let child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-rev"])
            .args(["-cert", &pki.path(&format!("{cert}.pem")), "-key", &pki.path(&format!("{cert}.key"))])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_server starts");
        // Owned by the server at once, so a failure below still reaps it.
        let mut server = Self { child, port: 0 };
        let mut out = BufReader::new(server.child.stdout.take().expect("stdout"));
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).expect("s_server output") > 0, "s_server exited");
            if let Some(addr) = line.trim().strip_prefix("ACCEPT ") {
                server.port = addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
                // Keep draining its output so it never blocks on a full pipe.
                std::thread::spawn(move || for _ in out.lines() {});
                return server;
            }
        }
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a client script met connecting to `port` with `opts` (Rhai map
/// text) and exchanging a line: `ok <reply>` or `kind/reason: message`.
fn exchange(port: u16, host: &str, opts: &str) -> String {
    let code = format!(
        r#"let out = ();
        try {{
            let c = tls::connect("{host}", {port}, {opts});
            c.send("hello\n");
            let r = c.recv_line();
            c.close();
            out = `ok ${{r}}`;
        }} catch (e) {{ out = `${{e.kind}}/${{e.reason}}: ${{e.message}}`; }}
        out"#
    );
    eval(&code).expect("script runs").to_string()
}

fn ca_opts(extra: &str) -> String {
    format!(r#"#{{ca: "{}", timeout: 10{extra}}}"#, pki().path("ca.pem"))
}

#[test]
fn verified_echo_over_tls13_and_tls12_with_openssl_s_server() {
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let srv = SServer::start("leaf", &[flag]);
        let code = format!(
            r#"let c = tls::connect("localhost", {port}, #{{ca: "{ca}", timeout: 10}});
            c.send("hello world\n");
            let line = c.recv_line();
            let f = c.tls;
            let shown = c.to_string();
            c.close();
            [line, f.version, f.cipher, f.verified, f.server_name, f.alpn, shown]"#,
            port = srv.port,
            ca = pki().path("ca.pem")
        );
        let got = eval(&code).expect("script runs").into_array().expect("array");
        let text: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(text[0], "dlrow olleh", "{flag}");
        assert_eq!(text[1], version);
        assert!(text[2].starts_with("TLS_") || text[2].starts_with("TLS_ECDHE"), "cipher {}", text[2]);
        assert_eq!(text[3], "true");
        assert_eq!(text[4], "localhost");
        assert_eq!(text[5], "");
        assert!(
            text[6].starts_with("tls ") && text[6].contains(version) && text[6].contains("verified"),
            "{}",
            text[6]
        );
    }
}

#[test]
fn an_ip_address_is_verified_against_the_ip_san() {
    let srv = SServer::start("leaf", &[]);
    assert_eq!(exchange(srv.port, "127.0.0.1", &ca_opts("")), "ok olleh");
}

#[test]
fn every_certificate_failure_has_its_reason() {
    let cases = [
        ("expired", "127.0.0.1", "", "tls/expired"),
        ("future", "127.0.0.1", "", "tls/not_yet_valid"),
        ("wrong", "127.0.0.1", "", "tls/hostname_mismatch"),
        ("stranger", "127.0.0.1", "", "tls/unknown_ca"),
        ("self", "127.0.0.1", "", "tls/self_signed"),
        ("clientonly", "127.0.0.1", "", "tls/bad_certificate"),
    ];
    for (cert, host, extra, want) in cases {
        let srv = SServer::start(cert, &[]);
        let got = exchange(srv.port, host, &ca_opts(extra));
        assert!(got.starts_with(&format!("{want}: ")), "{cert}: {got}");
        assert!(got.contains(&format!("127.0.0.1:{}", srv.port)), "the message names the peer: {got}");
    }
}

#[test]
fn a_hostname_mismatch_names_the_name_asked_for_and_the_names_presented() {
    let srv = SServer::start("wrong", &[]);
    let got = exchange(srv.port, "127.0.0.1", &ca_opts(r#", server_name: "localhost""#));
    assert!(got.starts_with("tls/hostname_mismatch: "), "{got}");
    assert!(
        got.contains("'localhost'") && got.contains("'wrong.example'") && got.contains("'*.wrong.example'"),
        "{got}"
    );
}

#[test]
fn server_name_lets_an_address_be_checked_against_a_dns_name() {
    let srv = SServer::start("wrong", &[]);
    assert_eq!(exchange(srv.port, "127.0.0.1", &ca_opts(r#", server_name: "www.wrong.example""#)), "ok olleh");
}

#[test]
fn the_system_roots_do_not_trust_a_private_ca() {
    let srv = SServer::start("leaf", &[]);
    let got = exchange(srv.port, "localhost", "#{timeout: 10}");
    assert!(got.starts_with("tls/unknown_ca: "), "{got}");
}

#[test]
fn insecure_connects_to_anything_and_says_unverified() {
    let srv = SServer::start("self", &[]);
    let code = format!(
        r#"let c = tls::connect("127.0.0.1", {}, #{{insecure: true, timeout: 10}});
        c.send("abc\n");
        let r = c.recv_line();
        let v = c.tls.verified;
        c.close();
        `${{r}} ${{v}}`"#,
        srv.port
    );
    assert_eq!(eval(&code).expect("runs").to_string(), "cba false");
}

#[test]
fn a_version_no_peer_shares_is_protocol_version() {
    let srv = SServer::start("leaf", &["-tls1_2"]);
    let got = exchange(srv.port, "localhost", &ca_opts(r#", min_version: "1.3""#));
    assert!(got.starts_with("tls/protocol_version: "), "{got}");
}

#[test]
fn a_server_that_requires_a_client_certificate() {
    let ca = pki().path("ca.pem");
    let srv = SServer::start("leaf", &["-tls1_3", "-Verify", "1", "-CAfile", &ca]);
    let got = exchange(srv.port, "localhost", &ca_opts(""));
    assert!(got.starts_with("tls/client_cert_required: "), "{got}");
    let with_cert = ca_opts(&format!(r#", cert: "{}", key: "{}""#, pki().path("client.pem"), pki().path("client.key")));
    assert_eq!(exchange(srv.port, "localhost", &with_cert), "ok olleh");
}

#[test]
fn a_peer_that_is_not_tls_fails_the_handshake() {
    let peer = Peer::start(
        "import socket\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\nprint(s.getsockname()[1], flush=True)\n\
         while True:\n    c,_=s.accept(); c.recv(4096); c.sendall(b'HTTP/1.0 400 Bad Request\\r\\n\\r\\n' * 4); c.close()",
    );
    let got = exchange(peer.port, "localhost", &ca_opts(""));
    assert!(got.starts_with("tls/handshake: "), "{got}");
}

#[test]
fn alpn_is_negotiated_with_openssl() {
    let srv = SServer::start("leaf", &["-alpn", "h2,http/1.1"]);
    let code = format!(
        r#"let c = tls::connect("localhost", {}, #{{ca: "{}", alpn: ["spdy/1", "http/1.1"]}});
        let a = c.tls.alpn; c.close(); a"#,
        srv.port,
        pki().path("ca.pem")
    );
    assert_eq!(eval(&code).expect("runs").to_string(), "http/1.1");
}

/// A Python `ssl` server on loopback with `cert`, running `body` for one
/// client with the wrapped socket `c` (the port is printed first).
fn python_server(cert: &str, setup: &str, body: &str) -> Peer {
    let pki = pki();
    Peer::start(&format!(
        "import socket, ssl\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         ctx.load_cert_chain({c:?}, {k:?})\n\
         {setup}\n\
         s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
         print(s.getsockname()[1], flush=True)\n\
         raw, _ = s.accept()\n\
         c = ctx.wrap_socket(raw, server_side=True)\n\
         {body}\n",
        c = pki.path(&format!("{cert}.pem")),
        k = pki.path(&format!("{cert}.key")),
    ))
}

#[test]
fn mutual_tls_with_a_python_server_that_requires_certificates() {
    let pki = pki();
    let srv = python_server(
        "leaf",
        &format!("ctx.verify_mode = ssl.CERT_REQUIRED\nctx.load_verify_locations({:?})", pki.path("ca.pem")),
        "subject = dict(x[0] for x in c.getpeercert()['subject'])\n\
         c.sendall((subject['commonName'] + '\\n').encode())\n\
         c.recv(100)\nc.unwrap().close()",
    );
    let code = format!(
        r#"let c = tls::connect("localhost", {}, #{{ca: "{}", cert: "{}", key: "{}", timeout: 10}});
        let cn = c.recv_line();
        c.send("bye");
        let rest = c.recv_all();
        c.close();
        `${{cn}} ${{rest.len()}}`"#,
        srv.port,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key")
    );
    // The server saw our certificate; its close_notify ends the stream cleanly.
    assert_eq!(eval(&code).expect("runs").to_string(), "netscript client 0");
}

#[test]
fn an_eof_without_close_notify_is_truncated_unless_suppressed() {
    // SSLSocket.shutdown is the socket's: a FIN with no close_notify.
    let body = "c.recv(100)\nc.sendall(b'partial')\nc.shutdown(socket.SHUT_RDWR)\nc.close()";
    let script = |port: u16, extra: &str| {
        format!(
            r#"let c = tls::connect("localhost", {port}, #{{ca: "{}", timeout: 10{extra}}});
            c.send("go");
            let out = ();
            try {{ let d = c.recv_all(); c.close(); out = `eof ${{d.as_string()}}`; }} catch (e) {{ out = `${{e.reason}} ${{c.recv(100).as_string()}}`; c.close(); }}
            out"#,
            pki().path("ca.pem")
        )
    };
    let srv = python_server("leaf", "", body);
    assert_eq!(eval(&script(srv.port, "")).expect("runs").to_string(), "truncated partial");
    let srv = python_server("leaf", "", body);
    assert_eq!(eval(&script(srv.port, ", suppress_ragged_eofs: true")).expect("runs").to_string(), "eof partial");
}

#[test]
fn close_sends_close_notify_which_python_reads_as_a_clean_eof() {
    // With suppress_ragged_eofs=False, Python raises on an EOF without close_notify.
    let out = std::env::temp_dir().join(format!("netscript-tls-notify-{}", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let _srv = python_server(
        "leaf",
        "",
        &format!(
            "c.suppress_ragged_eofs = False\n\
             data = b''\n\
             while True:\n    d = c.read(100)\n    if not d: break\n    data += d\n\
             open({:?}, 'w').write('clean ' + data.decode())",
            out.to_string_lossy()
        ),
    );
    let code = format!(
        r#"let c = tls::connect("localhost", {}, #{{ca: "{}"}}); c.send("all of it"); c.close(); "sent""#,
        _srv.port,
        pki().path("ca.pem")
    );
    assert_eq!(eval(&code).expect("runs").to_string(), "sent");
    let mut got = String::new();
    for _ in 0..500 {
        got = std::fs::read_to_string(&out).unwrap_or_default();
        if !got.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&out);
    assert_eq!(got, "clean all of it");
}

/// A netscript TLS echo server (the bench's script) on a free port.
fn tls_echo_server(extra_args: &[&str]) -> Peer {
    let pki = pki();
    let (cert, key) = (pki.path("leaf.pem"), pki.path("leaf.key"));
    let mut args = vec!["run", "scripts/tls_echo_server.rhai", "0", &cert, &key];
    args.extend(extra_args);
    Peer::netscript(&args)
}

#[test]
fn python_ssl_client_of_a_tls_listen_server_checks_getpeercert() {
    let srv = tls_echo_server(&[]);
    let out = crate::util::python(&format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         with socket.create_connection(('127.0.0.1', {port})) as raw:\n\
         \x20   with ctx.wrap_socket(raw, server_hostname='localhost') as c:\n\
         \x20       cert = c.getpeercert()\n\
         \x20       c.sendall(b'ping\\n')\n\
         \x20       print(c.recv(100).decode().strip(), c.version(), dict(x[0] for x in cert['subject'])['commonName'], cert['subjectAltName'])\n",
        ca = pki().path("ca.pem"),
        port = srv.port
    ));
    assert_eq!(out.trim(), "ping TLSv1.3 localhost (('DNS', 'localhost'), ('IP Address', '127.0.0.1'))");
}

#[test]
fn openssl_s_client_echoes_through_a_tls_listen_server_while_a_silent_client_waits() {
    let srv = tls_echo_server(&[]);
    // A client that connects and never speaks must not hold up the others.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    for flag in ["-tls1_3", "-tls1_2"] {
        let mut client = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", srv.port), "-quiet", flag])
            .args(["-CAfile", &pki().path("ca.pem"), "-verify_return_error", "-verify_hostname", "localhost"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client starts");
        let mut stdin = client.stdin.take().expect("stdin");
        stdin.write_all(b"over tls\n").expect("write");
        let mut line = String::new();
        BufReader::new(client.stdout.take().expect("stdout")).read_line(&mut line).expect("reply");
        drop(stdin);
        let _ = client.kill();
        let _ = client.wait();
        assert_eq!(line, "over tls\n", "{flag}");
    }
}

#[test]
fn a_tls_listen_server_survives_clients_that_fail_the_handshake() {
    let srv = tls_echo_server(&[]);
    // A client that does not trust us, and one that is not TLS at all.
    let bad = crate::util::python(&format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context()\n\
         try:\n\
         \x20   ctx.wrap_socket(socket.create_connection(('127.0.0.1', {p})), server_hostname='localhost')\n\
         except ssl.SSLCertVerificationError as e:\n\
         \x20   print(e.verify_message)\n\
         s = socket.create_connection(('127.0.0.1', {p})); s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n'); s.recv(100); s.close()\n",
        p = srv.port
    ));
    assert_eq!(bad.trim(), "unable to get local issuer certificate");
    assert_eq!(exchange(srv.port, "localhost", &ca_opts("")), "ok hello");
}

#[test]
fn starttls_upgrades_a_plain_connection_and_refuses_unread_bytes() {
    let pki = pki();
    // A line-protocol server: greet, on STARTTLS reply then wrap; the
    // second one injects a line right after its reply.
    let server = |inject: bool| {
        Peer::start(&format!(
            "import socket, ssl\n\
             ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain({c:?}, {k:?})\n\
             s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
             print(s.getsockname()[1], flush=True)\n\
             raw, _ = s.accept()\n\
             raw.sendall(b'220 ready\\r\\n')\n\
             f = raw.makefile('rb')\n\
             assert f.readline() == b'STARTTLS\\r\\n'\n\
             raw.sendall(b'220 go ahead\\r\\n' + ({inject} and b'250 injected\\r\\n' or b''))\n\
             c = ctx.wrap_socket(raw, server_side=True)\n\
             c.sendall(c.recv(100).upper())\n\
             c.unwrap()\n",
            c = pki.path("leaf.pem"),
            k = pki.path("leaf.key"),
            inject = if inject { "True" } else { "False" },
        ))
    };
    let script = |port: u16| {
        format!(
            r#"let c = tcp::connect("127.0.0.1", {port});
            c.recv_line();
            c.send("STARTTLS\r\n");
            c.recv_line();
            task::sleep(0.2);
            c.recv(0);
            let out = ();
            try {{
                c.starttls("localhost", #{{ca: "{}"}});
                c.send("secret");
                let r = c.recv(100).as_string();
                let shown = c.to_string();
                c.close();
                out = `${{r}} ${{shown.starts_with("tls")}}`;
            }} catch (e) {{ c.close(); out = `${{e.kind}}/${{e.reason}}`; }}
            out"#,
            pki.path("ca.pem")
        )
    };
    let plain = server(false);
    assert_eq!(eval(&script(plain.port)).expect("runs").to_string(), "SECRET true");
    let injecting = server(true);
    assert_eq!(eval(&script(injecting.port)).expect("runs").to_string(), "tls/injection");
}

#[test]
fn starttls_server_upgrades_the_server_side() {
    let pki = pki();
    let code = format!(
        r#"let opts = #{{cert: "{c}", key: "{k}"}};
        let srv = tcp::listen("127.0.0.1", 0).serve(|c| {{
            c.send_line("ready");
            c.starttls_server(opts);
            c.send(c.recv_line().to_upper() + "\n");
        }});
        let c = tcp::connect("127.0.0.1", srv.port);
        c.recv_line();
        c.starttls("localhost", #{{ca: "{ca}"}});
        c.send("quiet\n");
        let r = c.recv_line();
        c.close();
        srv.stop();
        r"#,
        c = pki.path("leaf.pem"),
        k = pki.path("leaf.key"),
        ca = pki.path("ca.pem")
    );
    assert_eq!(eval(&code).expect("runs").to_string(), "QUIET");
}

#[test]
fn frames_select_and_serve_work_over_tls_in_one_script() {
    let pki = pki();
    let code = format!(
        r#"let srv = tls::listen("127.0.0.1", 0, #{{cert: "{c}", key: "{k}", client_ca: "{ca}"}}).serve(|c| {{
            let facts = c.tls;
            let m = c.recv_frame();
            c.send_frame(m.as_string() + "!");
            c.send_line(`${{facts.verified}} ${{c.peer_chain().len()}}`);
        }});
        let c = tls::connect("localhost", srv.port, #{{ca: "{ca}", cert: "{cc}", key: "{ck}"}});
        c.send_frame("abc");
        let ready = net::select([c], 5);
        let echoed = c.recv_frame().as_string();
        let line = c.recv_line();
        c.close();
        srv.stop();
        `${{ready.len()}} ${{echoed}} ${{line}}`"#,
        c = pki.path("leaf.pem"),
        k = pki.path("leaf.key"),
        ca = pki.path("ca.pem"),
        cc = pki.path("client.pem"),
        ck = pki.path("client.key"),
    );
    assert_eq!(eval(&code).expect("runs").to_string(), "1 abc! true 1");
}

#[test]
fn tls_options_are_checked() {
    let got =
        eval(r#"let k; try { tls::connect("localhost", 1, #{colour: 1}) } catch (e) { k = e.kind } k"#).expect("runs");
    assert_eq!(got.to_string(), "value");
    let got = eval(r#"let k; try { tls::listen("127.0.0.1", 0, #{}) } catch (e) { k = e.message } k"#).expect("runs");
    assert!(got.to_string().contains("'cert' and 'key'"), "{got}");
    let got = eval(r#"let k; try { tls::connect("localhost", 1, #{min_version: "1.1"}) } catch (e) { k = e.kind } k"#)
        .expect("runs");
    assert_eq!(got.to_string(), "value");
}

#[test]
fn peer_cert_is_pythons_getpeercert_of_the_same_certificate() {
    let pki = pki();
    let srv = SServer::start("leaf", &[]);
    let code = format!(
        r#"let c = tls::connect("localhost", {}, #{{ca: "{}"}});
        let p = c.peer_cert();
        let n = c.peer_chain().len();
        let same = c.peer_cert_der() == c.peer_chain()[0];
        c.close();
        `${{n}} ${{same}} ${{json::encode(p)}}`"#,
        srv.port,
        pki.path("ca.pem")
    );
    let got = eval(&code).expect("runs").to_string();
    let (head, json) = got.split_at(got.find('{').expect("a map"));
    assert_eq!(head, "1 true ");
    let ours: serde_json::Value = serde_json::from_str(json).expect("json");
    let python: serde_json::Value = serde_json::from_str(&crate::util::python(&format!(
        "import ssl, json; print(json.dumps(ssl._ssl._test_decode_cert({:?})))",
        pki.path("leaf.pem")
    )))
    .expect("python json");
    for key in ["subject", "issuer", "version", "serialNumber", "notBefore", "notAfter", "subjectAltName"] {
        assert_eq!(ours[key], python[key], "{key}");
    }
}

#[test]
fn a_tls_listen_server_sees_the_client_certificate_of_a_python_client() {
    let pki = pki();
    let code = format!(
        r#"let l = tls::listen("127.0.0.1", 0, #{{cert: "{c}", key: "{k}", client_ca: "{ca}", suppress_ragged_eofs: true}});
        print(l.port);
        let c = l.accept(20);
        let p = c.peer_cert();
        let f = c.tls;
        c.send_line(`${{p.subject[0][0][1]}} ${{f.verified}} ${{f.version}}`);
        c.recv_all();
        c.close();
        l.close();"#,
        c = pki.path("leaf.pem"),
        k = pki.path("leaf.key"),
        ca = pki.path("ca.pem"),
    );
    let script = std::env::temp_dir().join(format!("netscript-tls-mtls-{}.rhai", std::process::id()));
    std::fs::write(&script, code).expect("write script");
    let srv = Peer::netscript(&["run", &script.to_string_lossy()]);
    let out = crate::util::python(&format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile={ca:?})\n\
         ctx.load_cert_chain({cc:?}, {ck:?})\n\
         with ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='localhost') as c:\n\
         \x20   print(c.recv(200).decode().strip(), dict(x[0] for x in c.getpeercert()['subject'])['commonName'])\n",
        ca = pki.path("ca.pem"),
        cc = pki.path("client.pem"),
        ck = pki.path("client.key"),
        port = srv.port
    ));
    let _ = std::fs::remove_file(&script);
    assert_eq!(out.trim(), "netscript client true TLSv1.3 localhost");
}

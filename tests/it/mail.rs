//! Mail and WHOIS scripts against real peers: `scripts/send_mail.rhai`
//! routes through MX records served by dnsmasq to an aiosmtpd server on
//! loopback; the `smtp` module's errors carry the server's codes;
//! `scripts/whois.rhai` follows a referral between two WHOIS servers.

use std::process::{Command, Stdio};

use crate::dns::{DnsServer, Peer, first_line};
use crate::util::{cli, eval, repo_root};

/// aiosmtpd saving messages to a JSON-lines file.
pub(crate) struct SmtpSink {
    pub(crate) port: u16,
    out: std::path::PathBuf,
    _peer: Peer,
}

impl SmtpSink {
    pub(crate) fn start(tag: &str) -> Self {
        Self::start_with(tag, &[])
    }

    /// A sink that offers STARTTLS with the test PKI's `localhost` certificate.
    fn start_tls(tag: &str) -> Self {
        let pki = crate::tls::pki();
        Self::start_with(tag, &[pki.path("leaf.pem"), pki.path("leaf.key")])
    }

    fn start_with(tag: &str, extra: &[String]) -> Self {
        let out = std::env::temp_dir().join(format!("netscript-smtp-{}-{tag}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let mut peer = Peer(
            Command::new("python3")
                .arg(repo_root().join("tests/peers/smtp_sink.py"))
                .arg(&out)
                .args(extra)
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 starts"),
        );
        let line = first_line(&mut peer.0);
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("smtp_sink.py did not start (is aiosmtpd installed? pip install aiosmtpd): {line:?}")
        });
        Self { port, out, _peer: peer }
    }

    /// The messages received so far.
    pub(crate) fn messages(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.out);
    }
}

#[test]
fn send_mail_delivers_via_mx_intact() {
    let dns = DnsServer::start();
    let sink = SmtpSink::start("mx");
    // Lines that need dot-stuffing, a lone dot, and trailing text.
    let body = "Hello,\n.hidden line\n..two dots\n.\nlast line";
    let script = repo_root().join("scripts/send_mail.rhai");
    let port = sink.port.to_string();
    let ns = dns.ns();
    let (status, out, err) = cli(&[
        "run",
        script.to_str().expect("path"),
        "--from",
        "alice@sender.test",
        "--to",
        "bob@example.test",
        "--subject",
        "Dots and headers",
        "--body",
        body,
        "--nameserver",
        &ns,
        "--port",
        &port,
        "--user",
        "alice",
        "--password",
        "secret",
    ]);
    assert_eq!(status, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("delivered to bob@example.test via mail.example.test"), "{out}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    let m = &msgs[0];
    assert_eq!(m["mail_from"], "alice@sender.test");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["bob@example.test"]));
    assert_eq!(m["login"], "alice");
    let data = m["data"].as_str().expect("data");
    let expected = format!(
        "From: alice@sender.test\r\nTo: bob@example.test\r\nSubject: Dots and headers\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    );
    assert_eq!(data, expected);
}

/// Run `body` with the smtp module imported and a session `s` open on `port`.
fn with_session(port: u16, body: &str) -> Result<rhai::Dynamic, String> {
    eval(&format!("import \"smtp\" as smtp;\nlet s = smtp::connect(\"127.0.0.1\", {port});\n{body}"))
}

#[test]
fn smtp_module_replies_errors_and_tls() {
    let sink = SmtpSink::start("module");
    let port = sink.port;
    // EHLO features parsed from the multi-line reply.
    let auth = with_session(port, "s.esmtp && s.features.auth.contains(\"PLAIN\")").expect("features");
    assert!(auth.as_bool().expect("bool"));
    // A multi-line reply as #{code, lines}.
    let help = with_session(port, "let r = smtp::command(s, \"NOOP\"); `${r.code} ${r.lines.len()}`").expect("noop");
    assert_eq!(help.to_string(), "250 1");
    // A refused recipient: kind smtp with the server's code.
    let code = with_session(
        port,
        "let c = (); try { smtp::sendmail(s, \"a@x.test\", [\"reject@x.test\"], \"Subject: x\\r\\n\\r\\nhi\") } catch (e) { c = `${e.kind} ${e.code}` } c",
    )
    .expect("script runs");
    assert_eq!(code.to_string(), "smtp 550");
    // Partly refused: delivered, refused recipients returned.
    let refused = with_session(
        port,
        "let r = smtp::sendmail(s, \"a@x.test\", [\"reject1@x.test\", \"ok@x.test\"], \"Subject: x\\r\\n\\r\\nhi\"); r.keys()",
    )
    .expect("partial");
    assert_eq!(refused.to_string(), "[\"reject1@x.test\"]");
    assert_eq!(sink.messages().len(), 1);
    // Wrong password: 535 from the server.
    let err = with_session(port, "smtp::login(s, \"u\", \"wrong\")").expect_err("bad login");
    assert!(err.starts_with("smtp:") && err.contains("535"), "{err}");
    // TLS demanded of a server without STARTTLS: a clear tls error.
    let err = eval(&format!("import \"smtp\" as smtp; smtp::connect(\"127.0.0.1\", {port}, #{{require_tls: true}})"))
        .expect_err("tls");
    assert!(err.starts_with("tls:") && err.contains("does not offer STARTTLS"), "{err}");
}

#[test]
fn smtp_starttls_delivers_intact_over_tls_and_says_ehlo_again() {
    let sink = SmtpSink::start_tls("starttls");
    let ca = crate::tls::pki().path("ca.pem");
    let body = "Hello over TLS,\n.dotted line\nbye";
    // Through `connect`'s `require_tls`, and through `start_tls` on a plain session.
    let openings = [
        format!(r#"smtp::connect("localhost", {}, #{{require_tls: true, tls: #{{ca: "{ca}"}}}})"#, sink.port),
        format!(r#"smtp::start_tls(smtp::connect("localhost", {}), #{{ca: "{ca}"}})"#, sink.port),
    ];
    for (n, open) in openings.iter().enumerate() {
        let code = format!(
            r#"import "smtp" as smtp;
            let s = {open};
            let facts = s.conn.tls;
            let offered_again = "starttls" in s.features;
            smtp::sendmail(s, "a@x.test", ["b@x.test"], smtp::message("a@x.test", "b@x.test", "tls", "{body}"));
            smtp::quit(s);
            `${{s.tls}} ${{facts.version}} ${{facts.verified}} ${{offered_again}}`"#,
            body = body.replace('\n', "\\n"),
        );
        // After the upgrade the server no longer offers STARTTLS: the second EHLO's features replaced the first's.
        assert_eq!(eval(&code).expect("script runs").to_string(), "true TLSv1.3 true false", "{open}");
        let messages = sink.messages();
        assert_eq!(messages.len(), n + 1);
        let data = messages[n]["data"].as_str().expect("data");
        assert!(data.contains("Hello over TLS,\r\n.dotted line\r\nbye"), "{data:?}");
    }
}

#[test]
fn smtp_starttls_refuses_bytes_injected_before_the_handshake() {
    // A server that answers STARTTLS with its 220 and a forged reply in
    // the same segment (the STARTTLS command-injection class).
    let mut peer = Peer(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import socket\n\
                 s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                 print(s.getsockname()[1], flush=True)\n\
                 c, _ = s.accept(); f = c.makefile('rb')\n\
                 c.sendall(b'220 fake ESMTP\\r\\n'); f.readline()\n\
                 c.sendall(b'250-fake\\r\\n250 STARTTLS\\r\\n'); f.readline()\n\
                 c.sendall(b'220 go ahead\\r\\n250 forged\\r\\n')\n\
                 f.readline()\n",
            )
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts"),
    );
    let port: u16 = first_line(&mut peer.0).trim().parse().expect("port");
    let err = eval(&format!(
        r#"import "smtp" as smtp; smtp::connect("127.0.0.1", {port}, #{{require_tls: true, tls: #{{insecure: true}}}})"#
    ))
    .expect_err("injection");
    assert!(err.starts_with("tls:") && err.contains("command injection"), "{err}");
}

#[test]
fn whois_follows_referrals() {
    let mut peer = Peer(
        Command::new("python3")
            .arg(repo_root().join("tests/peers/whois_peer.py"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts"),
    );
    let line = first_line(&mut peer.0);
    let (registry, registrar) = line.trim().split_once(' ').expect("two ports");
    let script = repo_root().join("scripts/whois.rhai");
    let (status, out, err) =
        cli(&["run", script.to_str().expect("path"), "--server", "127.0.0.1", "--port", registry, "example.test"]);
    assert_eq!(status, 0, "{err}");
    assert!(out.contains(&format!("% example.test at 127.0.0.1:{registry}")), "{out}");
    assert!(out.contains(&format!("refer: 127.0.0.1:{registrar}")), "{out}");
    assert!(out.contains(&format!("% example.test at 127.0.0.1:{registrar}")), "{out}");
    assert!(out.contains("Domain Name: EXAMPLE.TEST"), "{out}");
}

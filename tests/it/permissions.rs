//! Permissions against real peers: the system resolver (dnsmasq, logging
//! every query it receives, as the only name server of a private mount
//! namespace) sees no query for a name the allow-list does not name; a UDP
//! socket under `--deny-listen` drops a real sender's datagrams; IPv6
//! entries compare canonically on real connections; bad entries are usage
//! errors.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netscript::{Host, Permissions};

use crate::dns::{DnsServer, require};
use crate::util::{Peer, cli};

/// Run `script` on a host with `permissions`; its value as text, or `kind: message`.
fn run(permissions: Permissions, script: &str) -> Result<String, String> {
    let host = Host::builder().permissions(permissions).build().expect("host starts");
    host.run_source("<test>", script, &[]).map(|v| v.to_string()).map_err(|e| format!("{}: {}", e.kind(), e.message()))
}

fn allow(entries: &[&str]) -> Permissions {
    Permissions::allow_net(entries).expect("valid entries")
}

/// A file in the temporary directory, unique to this test process.
fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netscript-perm-{}-{name}", std::process::id()))
}

/// dnsmasq on port 53 of a loopback address of its own, logging queries.
struct Resolver {
    server: DnsServer,
    log: PathBuf,
    conf: PathBuf,
}

impl Resolver {
    fn start(tag: u8) -> Self {
        let pid = std::process::id();
        let ip = format!("127.{}.{}.{tag}", 100 + (pid >> 8) % 100, pid % 256);
        let log = temp(&format!("queries-{tag}.log"));
        let _ = std::fs::remove_file(&log);
        let server =
            DnsServer::start_at(&ip, 53, &["--log-queries".into(), format!("--log-facility={}", log.display())]);
        let conf = temp(&format!("resolv-{tag}.conf"));
        std::fs::write(&conf, format!("nameserver {ip}\noptions timeout:1 attempts:1\n")).expect("write resolv.conf");
        Self { server, log, conf }
    }

    /// `netscript run ARGS -e CODE` whose only system name server is this
    /// one: a private mount namespace with this resolv.conf bound over
    /// `/etc/resolv.conf`.
    fn run(&self, args: &[&str], code: &str) -> (i32, String, String) {
        require("unshare", "util-linux");
        let out = Command::new("unshare")
            .args(["-m", "sh", "-c", r#"mount --bind "$1" /etc/resolv.conf && shift && exec "$@""#, "sh"])
            .arg(&self.conf)
            .arg(env!("CARGO_BIN_EXE_netscript"))
            .arg("run")
            .args(args)
            .args(["-e", code])
            .output()
            .expect("unshare runs");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !err.contains("unshare:") && !err.contains("mount:"),
            "the test needs a private mount namespace (run as root): {err}"
        );
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), err)
    }

    /// The names queried so far (sorted, each once), once a query for `marker` has arrived
    /// (the log is in order, so every earlier query is in it too).
    fn queries_until(&self, marker: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let mut names: Vec<String> = text
                .lines()
                .filter_map(|l| l.split_once("]: query[").map(|(_, q)| q))
                .filter_map(|q| q.split(' ').nth(1).map(str::to_string))
                .collect();
            if names.iter().any(|n| n == marker) {
                names.sort();
                names.dedup();
                return names;
            }
            assert!(Instant::now() < deadline, "no query for {marker} reached dnsmasq; log:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Send a query for `name` straight to the server (not through netscript).
    fn mark(&self, name: &str) {
        self.server.dig(&[name, "A"]);
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.conf);
    }
}

/// Every call that would make the system resolver (or a name server) look
/// something up for a name or address the list does not name; each must
/// raise `permission`. Prints one kind per call.
fn denied_calls(ns: &str) -> String {
    let calls = [
        r#"net::getaddrinfo("leak-gai.test", 80)"#.to_string(),
        r#"net::getaddrinfo("leak-gai-opts.test", (), #{family: "inet"})"#.into(),
        r#"net::getfqdn("leak-fqdn.test")"#.into(),
        r#"net::getfqdn("192.0.2.77")"#.into(),
        r#"net::getfqdn()"#.into(),
        r#"tcp::listen("leak-listen.test", 0)"#.into(),
        r#"udp::bind("leak-bind.test", 0)"#.into(),
        r#"tcp::connect("127.0.0.1", 7500, #{source: "leak-source.test", timeout: 2})"#.into(),
        r#"tcp::connect("leak-connect.test", 7500)"#.into(),
        r#"udp::bind("127.0.0.1", 0).send_to("x", "leak-sendto.test", 9)"#.into(),
        r#"udp::bind("127.0.0.1", 0).connect("leak-udpconnect.test", 9)"#.into(),
        r#"dns::resolve("leak-dns.test", "A")"#.into(),
        format!(r#"dns::resolve("leak-dns-ns.test", "A", #{{nameserver: "{ns}"}})"#),
        r#"dns::reverse("192.0.2.78")"#.into(),
        r#"dns::mx_hosts("leak-mx.test")"#.into(),
    ];
    let mut code = String::from("let out = [];\n");
    for call in calls {
        code += &format!(
            "try {{ {call}; out.push(\"allowed: {}\") }} catch (e) {{ out.push(e.kind) }}\n",
            call.replace('"', "'")
        );
    }
    code + "print(out);\n"
}

#[test]
fn names_not_allowed_never_reach_the_system_resolver() {
    let resolver = Resolver::start(1);
    let ns = resolver.server.ns();

    // The harness sees a leak: with no allow-list the lookup arrives.
    let (status, _, err) = resolver.run(&[], r#"try { net::getaddrinfo("leak-unrestricted.test", 80) } catch (e) {}"#);
    assert_eq!(status, 0, "{err}");
    resolver.queries_until("leak-unrestricted.test");

    // An allow-list naming one address and one name: every other lookup is
    // refused before anything is sent; the listed name resolves.
    let code = denied_calls(&ns) + r#"print(net::getaddrinfo("www.example.test", 80, #{family: "inet"})[0].host);"#;
    let (status, out, err) = resolver.run(&["--allow-net", "127.0.0.1:7500,www.example.test"], &code);
    assert_eq!(status, 0, "{err}");
    let mut lines = out.lines();
    let kinds = lines.next().expect("kinds");
    assert!(!kinds.contains("allowed") && kinds.matches("permission").count() == 15, "{kinds}");
    assert_eq!(lines.next(), Some("127.0.0.1"), "the allowed name resolves through the same resolver");
    let names = resolver.queries_until("www.example.test");
    let leaked: Vec<&String> = names.iter().filter(|n| n.contains("leak") || n.contains("in-addr")).collect();
    assert_eq!(leaked, [&"leak-unrestricted.test".to_string()], "queries that escaped the allow-list: {names:?}");

    // `--allow-net ""` allows nothing, lookups included.
    let (status, out, err) = resolver.run(&["--allow-net", ""], &denied_calls(&ns));
    assert_eq!(status, 0, "{err}");
    assert!(out.matches("permission").count() == 15 && !out.contains("allowed"), "{out}");
    resolver.mark("marker.example.test");
    let names = resolver.queries_until("marker.example.test");
    let leaked: Vec<&String> = names.iter().filter(|n| n.contains("leak") || n.contains("in-addr")).collect();
    assert_eq!(leaked, [&"leak-unrestricted.test".to_string()], "queries that escaped --allow-net \"\": {names:?}");
}

#[test]
fn an_allowed_name_server_answers_dns_queries() {
    let server = DnsServer::start();
    let code = format!(r#"dns::resolve("www.example.test", "A", #{{nameserver: "{}"}})[0].address"#, server.ns());
    assert_eq!(run(allow(&[&server.ns()]), &code).as_deref(), Ok("127.0.0.1"));
    let err = run(allow(&["127.0.0.1:7500"]), &code).expect_err("the name server is not listed");
    assert!(err.starts_with("permission:") && err.contains(&server.ns()), "{err}");
}

/// A UDP peer: what it receives on 127.0.0.1 it echoes (`echo:` + data),
/// but first a stranger on 127.0.0.2 sends `stranger` to the same port.
const UDP_PEER: &str = r#"
import socket
echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); echo.bind(("127.0.0.1", 0))
stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); stranger.bind(("127.0.0.2", 0))
print(echo.getsockname()[1], flush=True)
while True:
    data, addr = echo.recvfrom(2048)
    stranger.sendto(b"stranger", addr)
    echo.sendto(b"echo:" + data, addr)
"#;

fn udp_script(echo_port: u16, fixed_port: u16) -> String {
    format!(
        r#"
        let fixed = "bound";
        try {{ udp::bind("127.0.0.1", {fixed_port}).close(); }} catch (e) {{ fixed = e.kind }}
        let u = udp::bind("127.0.0.1", 0);
        u.send_to("hello", "127.0.0.1", {echo_port});
        let first = u.recv_from(5.0);
        let second = "";
        try {{ second = u.recv_from(1.0).data.as_string(); }} catch (e) {{ second = e.kind }}
        `${{fixed}} ${{first.data.as_string()}} ${{first.host}} ${{second}}`
        "#
    )
}

#[test]
fn deny_listen_covers_udp() {
    let peer = Peer::start(UDP_PEER);
    let fixed = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("a free port").port();
    let script = udp_script(peer.port, fixed);
    // Without the switch a fixed port binds and the stranger's datagram,
    // sent first, is received first.
    assert_eq!(run(Permissions::default(), &script).as_deref(), Ok("bound stranger 127.0.0.2 echo:hello"));
    // With it, a fixed port is refused; an ephemeral socket hears only the
    // address it sent to.
    let denied = Permissions::default().deny_listen(true);
    assert_eq!(run(denied.clone(), &script).as_deref(), Ok("permission echo:hello 127.0.0.1 timeout"));
    // The same through the CLI.
    let (status, out, err) = cli(&["run", "--deny-listen", "-e", &format!("print({{ {script} }})")]);
    assert_eq!((status, out.trim()), (0, "permission echo:hello 127.0.0.1 timeout"), "{err}");
    // A connected socket is fine too: its peer is noted at connect.
    let connected = format!(
        r#"let u = udp::bind("127.0.0.1", 0); u.connect("127.0.0.1", {}); u.send("hi"); u.recv().as_string()"#,
        peer.port
    );
    assert_eq!(run(denied, &connected).as_deref(), Ok("echo:hi"));
}

/// A loopback listener on `ip` that accepts (and drops) connections in the background.
fn listener(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || for _ in l.incoming() {});
    port
}

/// `ok` if `tcp::connect(host, port)` connects, else the error kind.
fn connect_kind(permissions: &Permissions, host: &str, port: u16) -> String {
    let code = format!(
        r#"let r = "ok"; try {{ tcp::connect({host:?}, {port}, #{{timeout: 5}}).close(); }} catch (e) {{ r = e.kind }} r"#
    );
    run(permissions.clone(), &code).expect("script runs")
}

#[test]
fn ipv6_entries_compare_canonically() {
    let v6 = listener("::1");
    let v4 = listener("127.0.0.1");
    let p = allow(&[&format!("[::1]:{v6}"), &format!("127.0.0.1:{v4}")]);
    for host in ["::1", "[::1]", "0:0:0:0:0:0:0:1", "0000:0000::0001"] {
        assert_eq!(connect_kind(&p, host, v6), "ok", "{host}");
    }
    // An IPv4-mapped spelling is the IPv4 address.
    assert_eq!(connect_kind(&p, "::ffff:127.0.0.1", v4), "ok");
    // Other ports, the other family, and the ambiguous spelling are refused.
    assert_eq!(connect_kind(&p, "::1", v4), "permission");
    assert_eq!(connect_kind(&p, "127.0.0.1", v6), "permission");
    assert_eq!(connect_kind(&p, &format!("::1:{v6}"), 9), "permission");
    assert_eq!(connect_kind(&p, "localhost", v4), "permission", "an address entry does not allow names");
}

#[test]
fn a_name_entry_allows_every_port_and_its_addresses() {
    let a = listener("127.0.0.1");
    let b = listener("127.0.0.1");
    let p = allow(&["LocalHost."]);
    assert_eq!(connect_kind(&p, "localhost", a), "ok");
    assert_eq!(connect_kind(&p, "localhost", b), "ok");
    assert_eq!(connect_kind(&p, "127.0.0.1", a), "permission", "the address itself is not listed");
    let p = allow(&[&format!("localhost:{a}")]);
    assert_eq!(connect_kind(&p, "localhost", a), "ok");
    assert_eq!(connect_kind(&p, "localhost", b), "permission");
}

#[test]
fn bad_entries_are_usage_errors() {
    for (entry, hint) in [
        ("::1:7500", "[::1]:7500"),
        ("::1", "[::1]"),
        ("[::1", "[::1]:7500"),
        ("127.0.0.1:0", "1 to 65535"),
        ("http://example.com", "host name"),
    ] {
        let (status, _, err) = cli(&["run", "--allow-net", entry, "-e", "1"]);
        assert_eq!(status, 2, "{entry}: {err}");
        assert!(err.contains("--allow-net") && err.contains(hint), "{entry}: {err}");
    }
    let (status, _, err) = cli(&["run", "--allow-net", "127.0.0.1:7500,[::1]:7500,example.com", "-e", "1"]);
    assert_eq!(status, 0, "{err}");
}

#[test]
fn help_says_what_an_entry_allows() {
    let (status, out, _) = cli(&["run", "--help"]);
    assert_eq!(status, 0);
    let text = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in ["allows every port", "that port only", "[::1]:7500", "resolves to", "only on port 0"] {
        assert!(text.contains(phrase), "--help lacks {phrase:?}: {text}");
    }
}

//! `dns::` against a real name server (dnsmasq serving the zone of
//! `tests/peers/dns/zone.conf` on a loopback port) with `dig` as the oracle,
//! and `net::`'s naming functions against CPython's `socket` module.

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{eval, python, repo_root};

/// The path of a required peer program, or a failing test that says which
/// package provides it.
pub fn require(program: &str, package: &str) -> PathBuf {
    let dirs = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    dirs.into_iter()
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} is missing: install the {package} package (the test needs the real peer)"))
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first line a child prints (it says it is ready and where).
pub fn first_line(child: &mut Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    let out = child.stdout.as_mut().expect("stdout is piped");
    std::io::BufReader::new(out).read_line(&mut line).expect("read the peer's first line");
    line
}

/// A child process killed when the test ends.
pub struct Peer(pub Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq serving example.test, with servfail.test forwarded to a server
/// that answers SERVFAIL.
pub struct DnsServer {
    pub ip: String,
    pub port: u16,
    _dnsmasq: Peer,
    _servfail: Peer,
}

impl DnsServer {
    pub fn start() -> Self {
        Self::start_at("127.0.0.1", free_port(), &[])
    }

    /// dnsmasq on `ip:port`, with `extra` arguments (e.g. a query log).
    pub fn start_at(ip: &str, port: u16, extra: &[String]) -> Self {
        let dnsmasq = require("dnsmasq", "dnsmasq-base");
        require("dig", "dnsutils (bind9-dnsutils)");
        let peers = repo_root().join("tests/peers/dns");
        let mut servfail = Peer(
            Command::new("python3")
                .arg(peers.join("servfail.py"))
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 starts"),
        );
        // The peer prints its port once it is bound.
        let sf_port = first_line(&mut servfail.0).trim().parse::<u16>().expect("servfail.py prints its port");
        let child = Command::new(dnsmasq)
            .arg(format!("--conf-file={}", peers.join("zone.conf").display()))
            .arg(format!("--port={port}"))
            .arg(format!("--listen-address={ip}"))
            .args(extra)
            .arg(format!("--server=/servfail.test/127.0.0.1#{sf_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dnsmasq starts");
        let server = Self { ip: ip.to_string(), port, _dnsmasq: Peer(child), _servfail: servfail };
        let deadline = Instant::now() + Duration::from_secs(15);
        while server.dig(&["example.test", "SOA", "+short"]).trim().is_empty() {
            assert!(Instant::now() < deadline, "dnsmasq did not answer on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `"IP:PORT"`.
    pub fn ns(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// dig's output for `args` against this server.
    pub fn dig(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .args([&format!("@{}", self.ip), "-p", &self.port.to_string(), "+tries=1", "+time=2"])
            .args(args)
            .output()
            .expect("dig runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// dig's answer records of `rtype` for `name`, whitespace-normalised.
    pub fn answers(&self, name: &str, rtype: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .dig(&["+noall", "+answer", name, rtype])
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|l| l.split(' ').nth(3) == Some(rtype))
            .collect();
        lines.sort();
        lines
    }

    /// dig's status word (`NOERROR`, `NXDOMAIN`, …) for a query.
    pub fn status(&self, name: &str, rtype: &str) -> String {
        let out = self.dig(&[name, rtype]);
        let after = out.split("status: ").nth(1).unwrap_or_else(|| panic!("no status from dig: {out}"));
        after.split(',').next().unwrap_or_default().to_string()
    }
}

/// A script that formats each answer from its typed fields the way dig
/// prints the record: `name ttl IN TYPE fields…`.
const FORMAT: &str = r#"
fn join(parts) { parts.reduce(|acc, p| if acc == "" { `${p}` } else { acc + " " + p }, "") }
fn fields(r) {
    switch r.type {
        "A" | "AAAA" => [r.address],
        "CNAME" | "NS" | "PTR" => [r.target],
        "MX" => [r.preference, r.exchange],
        "SRV" => [r.priority, r.weight, r.port, r.target],
        "SOA" => [r.mname, r.rname, r.serial, r.refresh, r.retry, r.expire, r.minimum],
        "TXT" => r.strings.map(|s| `"${s}"`),
        "CAA" => [r.flags, r.tag, `"${r.value}"`],
        _ => throw "unexpected type " + r.type
    }
}
fn show(r) {
    if r.data == "" { throw "empty data" }
    join([r.name, r.ttl, "IN", r.type]) + " " + join(fields(r))
}
"#;

fn resolve_lines(server: &DnsServer, name: &str, rtype: &str, extra: &str) -> Vec<String> {
    let code = format!(
        "{FORMAT} let out = []; for r in dns::resolve({name:?}, {rtype:?}, #{{nameserver: {ns:?}{extra}}}) {{ out.push(show(r)) }} out.sort(); out",
        ns = server.ns()
    );
    let value = eval(&code).unwrap_or_else(|e| panic!("{name} {rtype}: {e}"));
    value.into_array().expect("array").into_iter().map(|v| v.to_string()).collect()
}

#[test]
fn every_record_type_matches_dig() {
    let server = DnsServer::start();
    let queries = [
        ("example.test", "SOA"),
        ("example.test", "NS"),
        ("example.test", "MX"),
        ("example.test", "TXT"),
        ("example.test", "CAA"),
        ("_smtp._tcp.example.test", "SRV"),
        ("www.example.test", "A"),
        ("www.example.test", "AAAA"),
        ("alias.example.test", "CNAME"),
        ("alias.example.test", "A"),
        ("10.2.0.192.in-addr.arpa", "PTR"),
    ];
    for (name, rtype) in queries {
        let expected = server.answers(name, rtype);
        assert!(!expected.is_empty(), "dig found no {rtype} for {name}: the test zone is wrong");
        assert_eq!(resolve_lines(&server, name, rtype, ""), expected, "{name} {rtype}");
    }
    // The same answers over TCP.
    assert_eq!(resolve_lines(&server, "example.test", "MX", ", tcp: true"), server.answers("example.test", "MX"));
}

/// The `code` of the error raised by `dns::resolve`, and its kind.
fn failure(server: &DnsServer, name: &str, rtype: &str) -> (String, String) {
    let code = format!(
        "let r = \"no error\"; try {{ dns::resolve({name:?}, {rtype:?}, #{{nameserver: {ns:?}, timeout: 3, attempts: 1}}); }} catch (e) {{ r = `${{e.kind}} ${{e.code}}` }} r",
        ns = server.ns()
    );
    let text = eval(&code).expect("script runs").to_string();
    let (kind, code) = text.split_once(' ').expect("kind and code");
    (kind.to_string(), code.to_string())
}

#[test]
fn failures_have_distinct_codes() {
    let server = DnsServer::start();
    // (query, dig's status, expected code); dig decides what the server said.
    let cases = [
        ("nope.example.test", "A", "NXDOMAIN", "nxdomain"),
        ("www.example.test", "MX", "NOERROR", "nodata"),
        ("x.servfail.test", "A", "SERVFAIL", "servfail"),
        ("elsewhere.zz", "A", "REFUSED", "refused"),
    ];
    for (name, rtype, status, code) in cases {
        assert_eq!(server.status(name, rtype), status, "dig {name} {rtype}");
        if status == "NOERROR" {
            assert!(server.answers(name, rtype).is_empty(), "{name} {rtype} has answers");
        }
        assert_eq!(failure(&server, name, rtype), ("dns".to_string(), code.to_string()), "{name} {rtype}");
    }
}

#[test]
fn a_silent_server_times_out() {
    // A UDP socket that reads queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let sink = silent.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while sink.recv_from(&mut buf).is_ok() {}
    });
    let code = format!(
        "let r = \"no error\"; try {{ dns::resolve(\"example.test\", \"A\", #{{nameserver: \"127.0.0.1:{port}\", timeout: 0.3, attempts: 1}}); }} catch (e) {{ r = e.kind }} r"
    );
    assert_eq!(eval(&code).expect("script runs").to_string(), "timeout");
}

#[test]
fn reverse_and_mx_hosts() {
    let server = DnsServer::start();
    let ns = server.ns();
    let ptr = server.dig(&["+short", "-x", "192.0.2.10"]);
    let names = eval(&format!("dns::reverse(\"192.0.2.10\", #{{nameserver: {ns:?}}})")).expect("reverse");
    let names: Vec<String> = names.into_array().expect("array").iter().map(ToString::to_string).collect();
    let expected: Vec<String> = ptr.lines().map(|l| l.trim_end_matches('.').to_string()).collect();
    assert_eq!(names, expected);

    // MX targets by preference, from dig's answer.
    let mut mx: Vec<(u32, String)> = server
        .dig(&["+short", "example.test", "MX"])
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(p, h)| (p.parse().expect("pref"), h.trim_end_matches('.').to_string())))
        .collect();
    mx.sort();
    let hosts = eval(&format!("dns::mx_hosts(\"example.test\", #{{nameserver: {ns:?}}})")).expect("mx_hosts");
    let hosts: Vec<String> = hosts.into_array().expect("array").iter().map(ToString::to_string).collect();
    assert_eq!(hosts, mx.into_iter().map(|(_, h)| h).collect::<Vec<_>>());

    // No MX but an address: the domain itself (RFC 5321 §5.1).
    assert!(server.dig(&["+short", "nomx.example.test", "MX"]).trim().is_empty());
    assert!(!server.dig(&["+short", "nomx.example.test", "A"]).trim().is_empty());
    let hosts = eval(&format!("dns::mx_hosts(\"nomx.example.test\", #{{nameserver: {ns:?}}})")).expect("fallback");
    assert_eq!(
        hosts.into_array().expect("array").iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["nomx.example.test"]
    );

    let err = eval(&format!("dns::mx_hosts(\"nope.example.test\", #{{nameserver: {ns:?}}})")).expect_err("nxdomain");
    assert!(err.starts_with("dns:") && err.contains("NXDOMAIN"), "{err}");
}

#[test]
fn bad_arguments_are_value_errors() {
    for code in [
        r#"dns::resolve("example.test", "BOGUS")"#,
        r#"dns::resolve("example.test", "A", #{nameserver: "not an ip"})"#,
        r#"dns::resolve("example.test", "A", #{colour: 1})"#,
        r#"dns::resolve("example.test", "A", #{attempts: 0})"#,
        r#"dns::reverse("300.1.1.1")"#,
        r#"net::getaddrinfo((), ())"#,
        r#"net::getaddrinfo("localhost", 80, #{socktype: "pipe"})"#,
        r#"net::getservbyport(70000)"#,
    ] {
        let err = eval(code).expect_err(code);
        assert!(err.starts_with("value:"), "{code}: {err}");
    }
}

/// Python's getaddrinfo results, one `family socktype proto canonname host port` line each.
const PY_GAI: &str = r#"
import socket, sys
def show(host, port, **kw):
    try:
        for fam, st, proto, canon, addr in socket.getaddrinfo(host, port, **kw):
            fam = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}.get(fam, int(fam))
            st = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_RAW: "raw"}.get(st, int(st))
            print(fam, st, proto, repr(canon), addr[0], addr[1])
    except socket.gaierror as e:
        codes = {socket.EAI_NONAME: "noname", socket.EAI_AGAIN: "again", socket.EAI_FAIL: "fail",
                 socket.EAI_SERVICE: "service", socket.EAI_NODATA: "nodata"}
        print("error", codes.get(e.errno, e.errno))
"#;

const RHAI_GAI: &str = r#"
fn show(host, port, opts) {
    let out = "";
    try {
        for a in net::getaddrinfo(host, port, opts) {
            out += `${a.family} ${a.socktype} ${a.proto} '${a.canonname}' ${a.host} ${a.port}` + "\n";
        }
    } catch (e) {
        if e.kind != "dns" { throw e }
        out = `error ${e.code}` + "\n";
    }
    out
}
"#;

#[test]
fn getaddrinfo_matches_python() {
    // (python call, script call) pairs with the same meaning.
    let cases = [
        ("'localhost', 80", r#""localhost", 80, #{}"#),
        (
            "'localhost', 'http', family=socket.AF_INET, type=socket.SOCK_STREAM",
            r#""localhost", "http", #{family: "inet", socktype: "stream"}"#,
        ),
        ("'127.0.0.1', 53, type=socket.SOCK_DGRAM", r#""127.0.0.1", 53, #{socktype: "dgram"}"#),
        ("None, 25, flags=socket.AI_PASSIVE", r#"(), 25, #{flags: "passive"}"#),
        ("'localhost', None, flags=socket.AI_CANONNAME", r#""localhost", (), #{flags: ["canonname"]}"#),
        (
            "'::1', 443, family=socket.AF_INET6, proto=socket.IPPROTO_TCP",
            r#""::1", 443, #{family: "inet6", proto: "tcp"}"#,
        ),
        ("'no-such-host.invalid', 80", r#""no-such-host.invalid", 80, #{}"#),
        ("'localhost', 'no-such-service'", r#""localhost", "no-such-service", #{}"#),
    ];
    for (py, rhai) in cases {
        let expected = python(&format!("{PY_GAI}\nshow({py})"));
        let got = eval(&format!("{RHAI_GAI}\nshow({rhai})")).unwrap_or_else(|e| panic!("{rhai}: {e}")).to_string();
        assert_eq!(got, expected, "getaddrinfo({py})");
    }
}

#[test]
fn getaddrinfo_errors_say_what_failed() {
    let err = eval(r#"net::getaddrinfo("no-such-host.invalid", 80)"#).expect_err("fails");
    assert!(err.starts_with("dns:"), "{err}");
    assert!(err.contains("name not found") || err.contains("temporary failure"), "{err}");
}

#[test]
fn naming_functions_match_python() {
    let cases = [
        ("socket.getservbyname('smtp')", r#"net::getservbyname("smtp")"#),
        ("socket.getservbyname('domain', 'udp')", r#"net::getservbyname("domain", "udp")"#),
        ("socket.getservbyname('https', 'tcp')", r#"net::getservbyname("https", "tcp")"#),
        ("socket.getservbyport(80)", "net::getservbyport(80)"),
        ("socket.getservbyport(53, 'udp')", r#"net::getservbyport(53, "udp")"#),
        ("socket.getservbyport(25, 'tcp')", r#"net::getservbyport(25, "tcp")"#),
        ("socket.getprotobyname('tcp')", r#"net::getprotobyname("tcp")"#),
        ("socket.getprotobyname('udp')", r#"net::getprotobyname("udp")"#),
        ("socket.getprotobyname('icmp')", r#"net::getprotobyname("icmp")"#),
        ("socket.gethostname()", "net::gethostname()"),
        ("socket.getfqdn()", "net::getfqdn()"),
        ("socket.getfqdn('localhost')", r#"net::getfqdn("localhost")"#),
        ("socket.getfqdn('127.0.0.1')", r#"net::getfqdn("127.0.0.1")"#),
        ("socket.getfqdn('no-such-host.invalid')", r#"net::getfqdn("no-such-host.invalid")"#),
    ];
    for (py, rhai) in cases {
        let expected = python(&format!("import socket\nprint({py})"));
        let got = eval(rhai).unwrap_or_else(|e| panic!("{rhai}: {e}")).to_string();
        assert_eq!(got, expected.trim_end(), "{py}");
    }
    // Lookups Python fails are errors here too.
    for (py, rhai) in [
        ("socket.getservbyname('no-such-service')", r#"net::getservbyname("no-such-service")"#),
        ("socket.getservbyport(1, 'udp')", r#"net::getservbyport(1, "udp")"#),
        ("socket.getprotobyname('no-such-proto')", r#"net::getprotobyname("no-such-proto")"#),
    ] {
        let py_fails =
            python(&format!("import socket\ntry:\n    {py}\n    print('ok')\nexcept OSError:\n    print('error')"));
        assert_eq!(py_fails.trim(), "error", "{py}");
        let err = eval(rhai).expect_err(rhai);
        assert!(err.starts_with("dns:") && err.contains("not found"), "{rhai}: {err}");
    }
}

#[test]
fn dns_query_script_prints_like_dig() {
    let server = DnsServer::start();
    let root = repo_root();
    let script = root.join("scripts/dns_query.rhai");
    let (status, out, err) = crate::util::cli(&[
        "run",
        script.to_str().expect("path"),
        "@127.0.0.1",
        "-p",
        &server.port.to_string(),
        "example.test",
        "MX",
    ]);
    assert_eq!(status, 0, "{err}");
    let lines: Vec<String> = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted, server.answers("example.test", "MX"), "{out}");
    assert!(out.contains("status: NOERROR"), "{out}");
    let (_, out, _) = crate::util::cli(&[
        "run",
        script.to_str().expect("path"),
        "@127.0.0.1",
        "-p",
        &server.port.to_string(),
        "nope.example.test",
    ]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
}

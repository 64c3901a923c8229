//! What scripts may do with the network: the allow-list of hosts
//! (`--allow-net`), the listening switch (`--deny-listen`), and the checks
//! the socket and name natives call before they act.
//!
//! The rules (also in `docs/reference/net.md`):
//!
//! - **Entries.** `host` allows every port of `host`; `host:port` allows
//!   that port only. IPv6 addresses are written in brackets (`[::1]`,
//!   `[::1]:7500`); an unbracketed entry with more than one colon is
//!   ambiguous (`::1:7500` is both an address and an address with a port)
//!   and rejected. Addresses compare canonically (`::1` is
//!   `0:0:0:0:0:0:0:1` is `[::1]`; `::ffff:127.0.0.1` is `127.0.0.1`),
//!   names case-insensitively without a trailing dot.
//! - **Names.** A name entry allows connecting to that name and to
//!   whatever addresses it resolves to (the addresses are not checked
//!   again); an address entry allows that address, not names that resolve
//!   to it.
//! - **Resolution is network access.** With an allow-list, a name is
//!   looked up through the system resolver only if the list names it, and
//!   an address is looked up in reverse only if the list names it; IP
//!   literals need no lookup. `dns::` queries go to a name server, which
//!   must be allowed like any other peer.
//! - **Listening.** With `deny_listen`, `tcp::listen` is refused, and so is
//!   binding a UDP socket to a chosen port; a UDP socket on an ephemeral
//!   port (port 0) receives only datagrams from addresses it has sent to
//!   or connected to, as behind a stateful firewall.
//!
//! The allow-list is parsed once, when the [`Permissions`] are built.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;

use crate::error::{Error, Kind};
use crate::runtime;

/// What scripts may do with the network. The default allows everything;
/// an embedding host narrows it.
///
/// ```
/// use netscript_stdlib::permissions::Permissions;
/// let p = Permissions::allow_net(["127.0.0.1", "[::1]:7500", "example.com"]).unwrap().deny_listen(true);
/// assert!(p.allows_connect("0:0:0:0:0:0:0:1", 7500));
/// assert!(!p.allows_connect("::1", 7501));
/// assert!(Permissions::allow_net(["::1:7500"]).is_err());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Hosts scripts may connect or send to; `None` allows all.
    net: Option<Vec<NetEntry>>,
    /// Whether scripts may not listen.
    deny_listen: bool,
}

impl Permissions {
    /// Allow everything (the default).
    pub const ALL: Self = Self { net: None, deny_listen: false };

    /// Allow nothing: no outgoing connections, no lookups, no listening.
    #[must_use]
    pub fn none() -> Self {
        Self { net: Some(Vec::new()), deny_listen: true }
    }

    /// Allow connections only to the hosts of `entries` (`host`,
    /// `host:port`, `[v6]`, `[v6]:port`; empty entries are skipped, so an
    /// empty list allows nothing). Listening stays as it was.
    ///
    /// # Errors
    /// If an entry is malformed or ambiguous; the error says how to write it.
    pub fn allow_net<I, S>(entries: I) -> Result<Self, EntryError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let net = entries
            .into_iter()
            .filter(|e| !e.as_ref().trim().is_empty())
            .map(|e| e.as_ref().parse())
            .collect::<Result<Vec<NetEntry>, _>>()?;
        Ok(Self { net: Some(net), deny_listen: false })
    }

    /// Forbid (or allow again) listening sockets.
    #[must_use]
    pub fn deny_listen(mut self, deny: bool) -> Self {
        self.deny_listen = deny;
        self
    }

    /// The allow-list, or `None` when every host is allowed.
    #[must_use]
    pub fn net(&self) -> Option<&[NetEntry]> {
        self.net.as_deref()
    }

    /// Whether listening is forbidden.
    #[must_use]
    pub fn denies_listen(&self) -> bool {
        self.deny_listen
    }

    /// Whether scripts may connect or send to `host` (a name or an IP
    /// literal, brackets allowed) on `port`.
    #[must_use]
    pub fn allows_connect(&self, host: &str, port: u16) -> bool {
        let Some(list) = &self.net else { return true };
        let target = Target::of(host);
        list.iter().any(|e| e.port.is_none_or(|p| p == port) && e.host.matches(&target))
    }

    /// Whether scripts may have the system resolver look up `host`: always
    /// for IP literals (no lookup happens), otherwise only for names the
    /// allow-list names (on any port).
    #[must_use]
    pub fn allows_lookup(&self, host: &str) -> bool {
        let Some(list) = &self.net else { return true };
        match Target::of(host) {
            Target::Ip(_) => true,
            name @ Target::Name(_) => list.iter().any(|e| e.host.matches(&name)),
        }
    }

    /// Whether scripts may look up the names of `ip` (a reverse lookup):
    /// only for addresses the allow-list names.
    #[must_use]
    pub fn allows_reverse(&self, ip: IpAddr) -> bool {
        let Some(list) = &self.net else { return true };
        let target = Target::Ip(ip.to_canonical());
        list.iter().any(|e| e.host.matches(&target))
    }
}

/// One allow-list entry: a host and, optionally, the one port it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetEntry {
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A canonical address (IPv4-mapped IPv6 as IPv4).
    Ip(IpAddr),
    /// A lower-case name without a trailing dot.
    Name(String),
}

/// A host as a script names it, in the allow-list's terms.
enum Target {
    Ip(IpAddr),
    Name(String),
}

impl Target {
    fn of(host: &str) -> Self {
        match host {
            // The natives read an empty host as the unspecified address.
            "" | "*" => Self::Ip(IpAddr::from([0u8; 4])),
            h => match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(h).parse::<IpAddr>() {
                Ok(ip) => Self::Ip(ip.to_canonical()),
                Err(_) => Self::Name(normal_name(h)),
            },
        }
    }
}

impl HostPattern {
    fn matches(&self, target: &Target) -> bool {
        match (self, target) {
            (Self::Ip(a), Target::Ip(b)) => a == b || (a.is_unspecified() && b.is_unspecified()),
            (Self::Name(a), Target::Name(b)) => a == b,
            _ => false,
        }
    }
}

fn normal_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl fmt::Display for NetEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
            HostPattern::Ip(ip) => ip.to_string(),
            HostPattern::Name(n) => n.clone(),
        };
        match self.port {
            Some(p) => write!(f, "{host}:{p}"),
            None => f.write_str(&host),
        }
    }
}

/// A malformed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    entry: String,
    reason: String,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad --allow-net entry {:?}: {}", self.entry, self.reason)
    }
}

impl std::error::Error for EntryError {}

impl FromStr for NetEntry {
    type Err = EntryError;

    fn from_str(text: &str) -> Result<Self, EntryError> {
        let fail = |reason: String| EntryError { entry: text.to_string(), reason };
        let entry = text.trim();
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(fail(format!("the port must be 1 to 65535, got {p:?}"))),
            Ok(p) => Ok(p),
        };
        if entry.contains('/') {
            return Err(fail("expected a host name or address with an optional :port, not a URL or path".into()));
        }
        if let Some(rest) = entry.strip_prefix('[') {
            let (inside, after) =
                rest.split_once(']').ok_or_else(|| fail("a '[' without its ']' (write [::1] or [::1]:7500)".into()))?;
            let ip = inside
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| fail(format!("{inside:?} in brackets is not an IPv6 address")))?;
            let port = match after {
                "" => None,
                a => Some(port(a.strip_prefix(':').ok_or_else(|| fail("write [address]:port".into()))?)?),
            };
            return Ok(Self { host: HostPattern::Ip(IpAddr::V6(ip).to_canonical()), port });
        }
        if entry.matches(':').count() > 1 {
            let hint = match entry.rsplit_once(':') {
                Some((addr, p)) if addr.parse::<std::net::Ipv6Addr>().is_ok() && p.parse::<u16>().is_ok() => {
                    format!("write [{entry}] for the address, or [{addr}]:{p} for address {addr} port {p}")
                }
                _ => format!("write IPv6 addresses in brackets: [{entry}] or [{entry}]:port"),
            };
            return Err(fail(format!("ambiguous IPv6 entry; {hint}")));
        }
        let (host, port) = match entry.split_once(':') {
            Some((h, p)) => (h, Some(port(p)?)),
            None => (entry, None),
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Self { host: HostPattern::Ip(ip.to_canonical()), port });
        }
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let name = host.strip_suffix('.').unwrap_or(host);
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(fail(
                "expected a host name, an IPv4 address or a bracketed IPv6 address, with an optional :port".into(),
            ));
        }
        Ok(Self { host: HostPattern::Name(normal_name(name)), port })
    }
}

/// The permission error for `op` on `peer`.
fn denied(op: &str, peer: impl Into<String>, detail: &str) -> Error {
    Error::new(Kind::Permission, op, detail).with_peer(peer.into())
}

/// Check that scripts may connect or send to `host:port`.
pub fn check_connect(op: &str, host: &str, port: u16) -> Result<(), Error> {
    if runtime::with_permissions(|p| p.allows_connect(host, port)) {
        Ok(())
    } else {
        Err(denied(op, crate::net::host_port(host, port), "network access to this host is not allowed"))
    }
}

/// Check that scripts may listen on `host:port` with TCP.
pub fn check_listen(op: &str, host: &str, port: u16) -> Result<(), Error> {
    if runtime::with_permissions(Permissions::denies_listen) {
        Err(denied(op, crate::net::host_port(host, port), "listening sockets are not allowed"))
    } else {
        Ok(())
    }
}

/// Check that scripts may bind a UDP socket to `host:port`. Under
/// `deny_listen` only an ephemeral port is allowed, and the socket gets a
/// [`UdpPeers`] filter; otherwise `None` (it receives from anyone).
pub fn check_udp_bind(op: &str, host: &str, port: u16) -> Result<Option<UdpPeers>, Error> {
    if !runtime::with_permissions(Permissions::denies_listen) {
        return Ok(None);
    }
    if port != 0 {
        return Err(denied(
            op,
            crate::net::host_port(host, port),
            "binding a UDP port to receive on is listening, which is not allowed (bind port 0 to send)",
        ));
    }
    Ok(Some(UdpPeers::default()))
}

/// Check that the system resolver may look up `host` (a name; IP literals
/// always pass).
pub fn check_lookup(op: &str, host: &str) -> Result<(), Error> {
    if runtime::with_permissions(|p| p.allows_lookup(host)) {
        Ok(())
    } else {
        Err(denied(op, host, "looking up this name is network access, and the host is not allowed"))
    }
}

/// Check that the system resolver may look up the names of `ip`.
pub fn check_reverse(op: &str, ip: IpAddr) -> Result<(), Error> {
    if runtime::with_permissions(|p| p.allows_reverse(ip)) {
        Ok(())
    } else {
        Err(denied(op, ip.to_string(), "a reverse lookup is network access, and this address is not allowed"))
    }
}

/// How many peers a UDP socket under `deny_listen` remembers.
pub const MAX_UDP_PEERS: usize = 1024;

/// The addresses a UDP socket under `deny_listen` has sent to: it receives
/// datagrams only from these (any port), as a stateful firewall would.
#[derive(Debug, Default)]
pub struct UdpPeers(Mutex<HashSet<IpAddr>>);

impl UdpPeers {
    /// Remember that the socket sends to `addr`.
    ///
    /// # Errors
    /// A `limit` error when the socket already remembers [`MAX_UDP_PEERS`] others.
    pub fn note(&self, op: &str, addr: SocketAddr) -> Result<(), Error> {
        let mut peers = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let ip = addr.ip().to_canonical();
        if peers.len() >= MAX_UDP_PEERS && !peers.contains(&ip) {
            return Err(Error::new(
                Kind::Limit,
                op,
                format!("with listening denied a UDP socket talks to at most {MAX_UDP_PEERS} addresses"),
            )
            .with_peer(addr.to_string()));
        }
        peers.insert(ip);
        Ok(())
    }

    /// Whether a datagram from `from` may be received.
    pub fn accepts(&self, from: SocketAddr) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&from.ip().to_canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(entries: &[&str]) -> Permissions {
        Permissions::allow_net(entries).expect("valid entries")
    }

    #[test]
    fn entries_parse_to_canonical_forms() {
        let cases = [
            ("127.0.0.1", "127.0.0.1"),
            ("127.0.0.1:7500", "127.0.0.1:7500"),
            ("[::1]", "[::1]"),
            ("[0:0:0:0:0:0:0:1]:7500", "[::1]:7500"),
            ("[::ffff:127.0.0.1]:80", "127.0.0.1:80"),
            ("Example.COM.", "example.com"),
            ("mail.example.com:25", "mail.example.com:25"),
            (" localhost ", "localhost"),
        ];
        for (text, shown) in cases {
            assert_eq!(text.parse::<NetEntry>().map(|e| e.to_string()).as_deref(), Ok(shown), "{text}");
        }
    }

    #[test]
    fn ambiguous_and_malformed_entries_are_rejected() {
        let err = "::1:7500".parse::<NetEntry>().expect_err("ambiguous").to_string();
        assert!(err.contains("[::1:7500]") && err.contains("[::1]:7500"), "{err}");
        let err = "::1".parse::<NetEntry>().expect_err("unbracketed").to_string();
        assert!(err.contains("[::1]"), "{err}");
        for bad in [
            "[::1",
            "[::1]7500",
            "[127.0.0.1]",
            "[::1]:0",
            "[::1]:70000",
            "host:",
            "host:http",
            "http://host",
            "a b",
            "-",
            ":80",
            "x..y",
        ] {
            assert!(bad.parse::<NetEntry>().is_err(), "{bad} parses");
        }
        assert!(Permissions::allow_net(["127.0.0.1", "fe80::1"]).is_err());
    }

    #[test]
    fn empty_entries_allow_nothing() {
        let p = allow(&["", " "]);
        assert_eq!(p.net(), Some(&[][..]));
        assert!(!p.allows_connect("127.0.0.1", 80));
        assert!(!p.allows_lookup("localhost"));
    }

    #[test]
    fn addresses_compare_canonically() {
        let p = allow(&["[::1]:7500", "127.0.0.1:7501", "[::ffff:10.0.0.1]"]);
        for host in ["::1", "[::1]", "0:0:0:0:0:0:0:1", "0000::0001"] {
            assert!(p.allows_connect(host, 7500), "{host}");
            assert!(!p.allows_connect(host, 7501), "{host} on another port");
        }
        assert!(p.allows_connect("::ffff:127.0.0.1", 7501));
        assert!(p.allows_connect("[::ffff:127.0.0.1]", 7501));
        assert!(p.allows_connect("10.0.0.1", 1));
        assert!(!p.allows_connect("::1:7500", 9), "the ambiguous spelling is another address");
        assert!(!p.allows_connect("127.0.0.2", 7501));
        assert!(!p.allows_connect("localhost", 7501), "an address entry does not allow names");
    }

    #[test]
    fn names_allow_their_ports_and_lookups() {
        let p = allow(&["example.com", "mail.example.com:25", "10.0.0.1"]);
        assert!(p.allows_connect("EXAMPLE.com.", 1));
        assert!(p.allows_connect("example.com", 65535));
        assert!(p.allows_connect("mail.example.com", 25));
        assert!(!p.allows_connect("mail.example.com", 26));
        assert!(!p.allows_connect("www.example.com", 80), "no wildcard");
        assert!(p.allows_lookup("mail.example.com"), "a port entry still names the host");
        assert!(p.allows_lookup("10.9.9.9"), "literals need no lookup");
        assert!(p.allows_lookup("[::1]"));
        assert!(!p.allows_lookup("anything.test"));
        assert!(p.allows_reverse("10.0.0.1".parse().unwrap()));
        assert!(p.allows_reverse("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!p.allows_reverse("10.0.0.2".parse().unwrap()));
    }

    #[test]
    fn empty_host_is_the_unspecified_address() {
        assert!(!allow(&["127.0.0.1"]).allows_connect("", 80));
        assert!(allow(&["0.0.0.0"]).allows_connect("", 80));
        assert!(allow(&["[::]"]).allows_connect("*", 80));
    }

    #[test]
    fn no_list_allows_everything() {
        let p = Permissions::default();
        assert!(p.allows_connect("anything.test", 1) && p.allows_lookup("anything.test"));
        assert!(p.allows_reverse("192.0.2.1".parse().unwrap()) && !p.denies_listen());
        assert!(Permissions::none().denies_listen());
    }

    #[test]
    fn udp_peers_filter_by_address_and_are_bounded() {
        let peers = UdpPeers::default();
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        assert!(!peers.accepts(a));
        peers.note("send_to", a).unwrap();
        assert!(peers.accepts("127.0.0.1:6000".parse().unwrap()), "any port of the address");
        assert!(peers.accepts("[::ffff:127.0.0.1]:5000".parse().unwrap()));
        assert!(!peers.accepts("127.0.0.2:5000".parse().unwrap()));
        for i in 1..MAX_UDP_PEERS {
            peers.note("send_to", SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1))).unwrap();
        }
        assert_eq!(peers.note("send_to", "10.9.9.9:1".parse().unwrap()).unwrap_err().kind(), Kind::Limit);
        peers.note("send_to", a).expect("a known peer is still fine");
    }
}

//! Packet capture (`--pcap FILE`, `net::capture(path)`, the REPL's `.pcap
//! FILE`): every send and receive of the transports, written as a pcapng
//! file that Wireshark and `tshark` open as ordinary TCP and UDP streams;
//! and the same events as JSON lines for tools (`--trace-json FILE`: one
//! object per send or receive with the connection's number, direction,
//! time and bytes in base64).
//!
//! Nothing is sniffed: the transports report the bytes they hand to or take
//! from the kernel, and this module wraps them in synthesised Ethernet, IP
//! and TCP/UDP headers (etherparse builds them, with their checksums; the
//! pcap-file crate writes the blocks). Each TCP connection gets a
//! three-way handshake when its first bytes are seen, sequence and
//! acknowledgement numbers that follow the bytes of each direction, and a
//! FIN exchange when it is closed, so stream reassembly (`follow,tcp`) sees
//! exactly the bytes the script sent and received, in order, with real
//! addresses, ports and timestamps. TLS connections are captured as their
//! ciphertext (the records rustls reads and writes), which `--keylog FILE`
//! lets Wireshark decrypt, and their plaintext as a second, marked stream:
//! on an interface named `tls-plaintext`, between the IPv4-mapped IPv6
//! forms of the connection's addresses (`::ffff:127.0.0.1`), so that it is
//! its own conversation.
//!
//! The JSON lines are also the recording format (`--record FILE`,
//! `netscript record`) that [`recording::read`] turns back into
//! conversations for `mock::replay`.
//!
//! Off, it costs one relaxed atomic load per send or receive.

pub mod recording;

use std::io::Write as _;

use base64::Engine as _;

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use etherparse::PacketBuilder;
use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};

/// Whether a capture is being written (checked before taking the lock).
static ON: AtomicBool = AtomicBool::new(false);
static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);

/// Largest payload put in one synthesised segment (IPv4's 64 KiB limit, headers included).
const SEGMENT: usize = 32 * 1024;
/// The synthesised MAC addresses of the local and the remote end.
const LOCAL_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// Initial sequence numbers of the two directions (tshark shows them relative).
const ISN: [u32; 2] = [1_000, 500_000];

/// Which way bytes went, seen from the script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The script sent them.
    Sent,
    /// The script received them.
    Received,
}

/// The open capture and JSON files and the TCP connections seen.
struct Capture {
    pcap: Option<PcapNgWriter<BufWriter<File>>>,
    json: Option<BufWriter<File>>,
    /// Per TCP connection (local, peer): its number, the next sequence
    /// number of each direction (local-to-peer first) and whether the local
    /// end connected (`true`) or accepted.
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    /// Connections (and UDP sockets) numbered so far.
    numbered: u64,
    /// The numbers of UDP sockets, by local address.
    sockets: HashMap<SocketAddr, u64>,
}

fn lock() -> MutexGuard<'static, Option<Capture>> {
    CAPTURE.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The capture, started if need be.
fn open(guard: &mut Option<Capture>) -> &mut Capture {
    guard.get_or_insert_with(|| Capture {
        pcap: None,
        json: None,
        flows: HashMap::new(),
        numbered: 0,
        sockets: HashMap::new(),
    })
}

/// Whether a capture is on.
#[inline]
#[must_use]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Start writing every connection's traffic to `path` (a new pcapng file;
/// a capture already on is finished first).
///
/// # Errors
/// When the file cannot be created or written.
pub fn start(path: &Path) -> std::io::Result<()> {
    let mut guard = lock();
    if let Some(old) = guard.as_mut() {
        old.finish_pcap()?;
    }
    let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
    let mut writer = PcapNgWriter::new(file).map_err(std::io::Error::other)?;
    // Interface 0 carries the traffic, interface 1 the TLS plaintext streams.
    let interfaces = [
        vec![InterfaceDescriptionOption::IfName("netscript".into())],
        vec![
            InterfaceDescriptionOption::IfName("tls-plaintext".into()),
            InterfaceDescriptionOption::IfDescription(
                "TLS plaintext, written by netscript; addresses are the IPv4-mapped forms of the connection's".into(),
            ),
        ],
    ];
    for options in interfaces {
        let block = InterfaceDescriptionBlock { linktype: DataLink::ETHERNET, snaplen: 0, options };
        writer.write_pcapng_block(block).map_err(std::io::Error::other)?;
    }
    open(&mut guard).pcap = Some(writer);
    ON.store(true, Ordering::Relaxed);
    Ok(())
}

/// Finish the pcapng file (`net::capture(())`); `--trace-json` goes on.
///
/// # Errors
/// When the file cannot be written.
pub fn stop_pcap() -> std::io::Result<()> {
    let mut guard = lock();
    let Some(c) = guard.as_mut() else { return Ok(()) };
    let done = c.finish_pcap();
    if c.json.is_none() {
        ON.store(false, Ordering::Relaxed);
        *guard = None;
    }
    done
}

/// Write every send and receive as a JSON line to `path` (`--trace-json`).
///
/// # Errors
/// When the file cannot be created.
pub fn start_json(path: &Path) -> std::io::Result<()> {
    let file = BufWriter::with_capacity(256 * 1024, File::create(path)?);
    let mut guard = lock();
    open(&mut guard).json = Some(file);
    ON.store(true, Ordering::Relaxed);
    Ok(())
}

/// Write out what the capture and the JSON lines hold so far.
///
/// # Errors
/// When a file cannot be written.
pub fn flush() -> std::io::Result<()> {
    let mut guard = lock();
    let Some(c) = guard.as_mut() else { return Ok(()) };
    if let Some(json) = c.json.as_mut() {
        json.flush()?;
    }
    if let Some(pcap) = c.pcap.as_mut() {
        pcap.get_mut().flush()?;
    }
    Ok(())
}

/// Finish the capture and the JSON lines (close every TCP stream still
/// open, flush the files).
///
/// # Errors
/// When a file cannot be written.
pub fn stop() -> std::io::Result<()> {
    ON.store(false, Ordering::Relaxed);
    let Some(mut capture) = lock().take() else { return Ok(()) };
    if let Some(mut json) = capture.json.take() {
        json.flush()?;
    }
    capture.finish_pcap()
}

/// Record that the TCP connection `local`–`peer` was made: connected by
/// the local end when `client`, else accepted (the handshake starts from
/// the client's end; a connection first seen by its bytes counts as
/// connected).
pub fn tcp_open(local: SocketAddr, peer: SocketAddr, client: bool) {
    if let Some(c) = lock().as_mut() {
        c.flow(canon(local), canon(peer), client);
    }
}

/// Record `data` sent or received on the TCP connection `local`–`peer`.
pub fn tcp(local: SocketAddr, peer: SocketAddr, dir: Dir, data: &[u8]) {
    if let Some(c) = lock().as_mut() {
        c.tcp_data(canon(local), canon(peer), dir, data);
    }
}

/// Record the plaintext of `data` sent or received on the TLS connection
/// `local`–`peer`: a JSON line with `"proto": "tls"`, and segments of the
/// marked plaintext stream (IPv4 connections; an IPv6 one has no mapped
/// form, so only its JSON lines and ciphertext are written).
pub fn tls_plaintext(local: SocketAddr, peer: SocketAddr, dir: Dir, data: &[u8]) {
    let mut guard = lock();
    let Some(c) = guard.as_mut() else { return };
    let (local, peer) = (canon(local), canon(peer));
    let real = c.flow(local, peer, true);
    c.json_line("tls", real.id, Some(real.client), local, peer, dir, data);
    if let (Some(l), Some(p)) = (mapped(local), mapped(peer)) {
        c.stream_data(l, p, real.client, dir, data);
    }
}

/// Record that the TCP connection `local`–`peer` was closed (a FIN each
/// way); nothing if it carried no bytes.
pub fn tcp_close(local: SocketAddr, peer: SocketAddr) {
    if let Some(c) = lock().as_mut() {
        let (local, peer) = (canon(local), canon(peer));
        c.close(local, peer);
        if let (Some(l), Some(p)) = (mapped(local), mapped(peer)) {
            c.close(l, p);
        }
    }
}

/// Record a datagram sent or received on the UDP socket `local`.
pub fn udp(local: SocketAddr, peer: SocketAddr, dir: Dir, data: &[u8]) {
    let mut guard = lock();
    let Some(c) = guard.as_mut() else { return };
    let (local, peer) = (canon(local), canon(peer));
    if c.json.is_some() {
        let id = match c.sockets.get(&local) {
            Some(id) => *id,
            None => {
                c.numbered += 1;
                c.sockets.insert(local, c.numbered);
                c.numbered
            }
        };
        c.json_line("udp", id, None, local, peer, dir, data);
    }
    if c.pcap.is_none() {
        return;
    }
    let (src, dst) = ends(local, peer, dir);
    if let Some(step) = ip(src, dst) {
        let builder = step.udp(src.port(), dst.port());
        let mut packet = Vec::with_capacity(builder.size(data.len()));
        if builder.write(&mut packet, data).is_ok() {
            c.write(&packet, 0);
        }
    }
}

/// (source, destination) of bytes going `dir`.
fn ends(local: SocketAddr, peer: SocketAddr, dir: Dir) -> (SocketAddr, SocketAddr) {
    match dir {
        Dir::Sent => (local, peer),
        Dir::Received => (peer, local),
    }
}

/// `a` with an IPv4-mapped IPv6 address as the IPv4 one: real traffic is
/// written as its family, whatever the socket's (so a mapped address
/// always marks the plaintext stream).
fn canon(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

/// The plaintext stream's address for `a` (canonical): its IPv4-mapped
/// IPv6 form; `None` for an IPv6 address.
fn mapped(a: SocketAddr) -> Option<SocketAddr> {
    match a.ip() {
        IpAddr::V4(v4) => Some(SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port())),
        IpAddr::V6(_) => None,
    }
}

/// Whether `a` is a plaintext stream's address: mapped addresses are only
/// ever theirs (see [`canon`]).
fn is_plaintext(a: SocketAddr) -> bool {
    matches!(a.ip(), IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some())
}

/// The Ethernet and IP headers from `src` to `dst`; `None` for a mix of
/// families.
fn ip(src: SocketAddr, dst: SocketAddr) -> Option<etherparse::PacketBuilderStep<etherparse::IpHeaders>> {
    let eth = PacketBuilder::ethernet2(LOCAL_MAC, PEER_MAC);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Some(eth.ipv4(s.octets(), d.octets(), 64)),
        (IpAddr::V6(s), IpAddr::V6(d)) => Some(eth.ipv6(s.octets(), d.octets(), 64)),
        _ => None,
    }
}

/// A TCP connection's number, next sequence numbers (local-to-peer first)
/// and whether the local end connected.
#[derive(Clone, Copy)]
struct Flow {
    id: u64,
    seqs: [u32; 2],
    client: bool,
    /// The other end of a connection whose first end is also in this
    /// process (a script talking to itself): its segments are that end's
    /// seen the other way, so the pcapng gets them once.
    mirror: bool,
}

/// TCP flags of a synthesised segment.
#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    PshAck,
    FinAck,
}

/// Seconds since the epoch, as pcapng and the JSON lines give time.
fn now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Capture {
    /// Close every TCP stream still open in the pcapng file (a FIN each
    /// way) and flush it; the streams start again with a handshake in the
    /// next file.
    fn finish_pcap(&mut self) -> std::io::Result<()> {
        if self.pcap.is_none() {
            return Ok(());
        }
        let open: Vec<_> = self.flows.keys().copied().collect();
        for (local, peer) in open {
            self.close(local, peer);
        }
        match self.pcap.take() {
            Some(w) => w.into_inner().into_inner().map(drop).map_err(|e| e.into_error()),
            None => Ok(()),
        }
    }

    /// One JSON line: `{"time", "proto", "conn", "role" (TCP: "client" when
    /// the local end connected, else "server"), "local", "peer", "dir",
    /// "len", "data" (base64), "text" (when the bytes are UTF-8 text)}`.
    #[allow(clippy::too_many_arguments)]
    fn json_line(
        &mut self,
        proto: &str,
        id: u64,
        client: Option<bool>,
        local: SocketAddr,
        peer: SocketAddr,
        dir: Dir,
        data: &[u8],
    ) {
        let Some(out) = self.json.as_mut() else { return };
        let mut line = serde_json::Map::new();
        line.insert("time".into(), serde_json::json!((now().as_secs_f64() * 1e6).round() / 1e6));
        line.insert("proto".into(), proto.into());
        line.insert("conn".into(), id.into());
        if let Some(client) = client {
            line.insert("role".into(), if client { "client" } else { "server" }.into());
        }
        line.insert("local".into(), local.to_string().into());
        line.insert("peer".into(), peer.to_string().into());
        line.insert("dir".into(), if dir == Dir::Sent { "send" } else { "recv" }.into());
        line.insert("len".into(), data.len().into());
        line.insert("data".into(), base64::engine::general_purpose::STANDARD.encode(data).into());
        if let Some(text) = crate::bytes::printable(data) {
            line.insert("text".into(), text.into());
        }
        let _ = writeln!(out, "{}", serde_json::Value::Object(line));
    }

    /// One packet on interface `interface` (0: the traffic, 1: TLS plaintext).
    fn write(&mut self, packet: &[u8], interface: u32) {
        let Some(writer) = self.pcap.as_mut() else { return };
        let now = now();
        let block = EnhancedPacketBlock {
            interface_id: interface,
            timestamp: now,
            original_len: packet.len() as u32,
            data: packet.into(),
            options: vec![],
        };
        // A capture that cannot be written (disk full) loses packets, not the run.
        let _ = writer.write_pcapng_block(block);
    }

    /// One segment from `src` to `dst`; `dir` says which of the flow's two
    /// directions it is, so `seq` is that direction's and `ack` the other's.
    fn segment(&mut self, src: SocketAddr, dst: SocketAddr, dir: Dir, seqs: [u32; 2], flags: Flags, data: &[u8]) {
        if self.pcap.is_none() {
            return;
        }
        let (me, other) = if dir == Dir::Sent { (0, 1) } else { (1, 0) };
        let Some(step) = ip(src, dst) else { return };
        let tcp = step.tcp(src.port(), dst.port(), seqs[me], 65_535);
        let tcp = match flags {
            Flags::Syn => tcp.syn(),
            Flags::SynAck => tcp.syn().ack(seqs[other]),
            Flags::Ack => tcp.ack(seqs[other]),
            Flags::PshAck => tcp.psh().ack(seqs[other]),
            Flags::FinAck => tcp.fin().ack(seqs[other]),
        };
        let mut packet = Vec::with_capacity(tcp.size(data.len()));
        if tcp.write(&mut packet, data).is_ok() {
            self.write(&packet, u32::from(is_plaintext(src)));
        }
    }

    /// The flow of `local`–`peer`, numbered (but for a plaintext stream,
    /// which shares its connection's number) and opened with a handshake
    /// (from the client's end) the first time it is seen.
    fn flow(&mut self, local: SocketAddr, peer: SocketAddr, client: bool) -> Flow {
        if let Some(flow) = self.flows.get(&(local, peer)) {
            return *flow;
        }
        if !is_plaintext(local) {
            self.numbered += 1;
        }
        let mut seqs = ISN;
        let mirror = self.flows.contains_key(&(peer, local));
        // The handshake's three segments: (from the local end?, flags).
        let (syn, synack) = if client { (Dir::Sent, Dir::Received) } else { (Dir::Received, Dir::Sent) };
        for (dir, flags) in [(syn, Flags::Syn), (synack, Flags::SynAck), (syn, Flags::Ack)] {
            let (src, dst) = ends(local, peer, dir);
            if !mirror {
                self.segment(src, dst, dir, seqs, flags, &[]);
            }
            if !matches!(flags, Flags::Ack) {
                let me = usize::from(dir == Dir::Received);
                seqs[me] = seqs[me].wrapping_add(1);
            }
        }
        let flow = Flow { id: self.numbered, seqs, client, mirror };
        self.flows.insert((local, peer), flow);
        flow
    }

    fn tcp_data(&mut self, local: SocketAddr, peer: SocketAddr, dir: Dir, data: &[u8]) {
        let flow = self.flow(local, peer, true);
        self.json_line("tcp", flow.id, Some(flow.client), local, peer, dir, data);
        self.stream_data(local, peer, flow.client, dir, data);
    }

    /// The segments of `data` on the flow `local`–`peer` (opened, with the
    /// local end as the client when `client`, if new).
    fn stream_data(&mut self, local: SocketAddr, peer: SocketAddr, client: bool, dir: Dir, data: &[u8]) {
        let mut flow = self.flow(local, peer, client);
        if flow.mirror {
            return;
        }
        let (src, dst) = ends(local, peer, dir);
        let me = usize::from(dir == Dir::Received);
        for piece in data.chunks(SEGMENT) {
            self.segment(src, dst, dir, flow.seqs, Flags::PshAck, piece);
            flow.seqs[me] = flow.seqs[me].wrapping_add(piece.len() as u32);
        }
        self.flows.insert((local, peer), flow);
    }

    fn close(&mut self, local: SocketAddr, peer: SocketAddr) {
        let Some(Flow { mut seqs, mirror: false, .. }) = self.flows.remove(&(local, peer)) else { return };
        self.segment(local, peer, Dir::Sent, seqs, Flags::FinAck, &[]);
        seqs[0] = seqs[0].wrapping_add(1);
        self.segment(peer, local, Dir::Received, seqs, Flags::FinAck, &[]);
        seqs[1] = seqs[1].wrapping_add(1);
        self.segment(local, peer, Dir::Sent, seqs, Flags::Ack, &[]);
    }
}

//! Fault injection: a network that misbehaves on purpose, reproducibly.
//! A [`Spec`] (parsed from `fragment=1..7,delay=50ms~10ms,seed=42`) says
//! what to do to a byte stream; a [`Faults`] is one connection direction's
//! seeded state, which decides for each chunk how it is cut, when it is
//! delivered, which bits flip and where the stream ends. `pump` applies it
//! to real connections: in the proxy (`netscript proxy --faults`), and in a
//! script's own connections (`--faults`, `net::faults`, the `faults` option
//! of `tcp::connect` / `tcp::listen`), which it bends through a loopback
//! pair of sockets so that the script reads exactly what a misbehaving
//! network would deliver.
//!
//! Written here rather than taken from a crate: the fault proxies that exist
//! (toxiproxy, comcast) are separate programs, not libraries, and none cuts
//! writes into 1..N-byte pieces, which is the fault that finds framing bugs.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rhai::Dynamic;

use crate::args::parse_duration as duration;
use crate::error::Error;

mod pump;

pub use pump::{Control, Side, Tap, bend, bend_now, loopback_pair, splice};

/// How a stream is cut short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// A normal close (FIN): the peer reads end of stream.
    Close,
    /// An abortive close (RST): the peer's next read fails with `reset`.
    Reset,
}

/// Which directions of a proxied connection the faults apply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server and server to client.
    Both,
    /// Client to server only.
    Up,
    /// Server to client only.
    Down,
}

/// What to do to a stream. Every field is off by default.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Deliver each chunk in pieces of `min..=max` bytes.
    pub fragment: Option<(usize, usize)>,
    /// Pause between pieces of a fragmented chunk, so that each arrives alone.
    pub fragment_pause: Duration,
    /// Deliver each chunk this long after it was read, give or take `jitter`.
    pub delay: Duration,
    /// See `delay`.
    pub jitter: Duration,
    /// At most this many bytes per second.
    pub bandwidth: Option<u64>,
    /// End the stream after this many bytes, as `Cut` says.
    pub drop_after: Option<(u64, Cut)>,
    /// The chance, per chunk, that the connection is reset instead.
    pub reset_probability: f64,
    /// Stop delivering for a while once this many bytes have passed.
    pub stall: Option<(Duration, u64)>,
    /// The chance, per byte, that one of its bits is flipped.
    pub corrupt: f64,
    /// UDP: the chance that a datagram is lost.
    pub udp_loss: f64,
    /// UDP: the chance that a datagram arrives twice.
    pub udp_duplicate: f64,
    /// UDP: the chance that a datagram is held back and arrives after the next.
    pub udp_reorder: f64,
    /// Which directions suffer.
    pub direction: Direction,
    /// The seed of every random choice (printed, so a failure can be replayed).
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            fragment: None,
            fragment_pause: Duration::from_millis(1),
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            bandwidth: None,
            drop_after: None,
            reset_probability: 0.0,
            stall: None,
            corrupt: 0.0,
            udp_loss: 0.0,
            udp_duplicate: 0.0,
            udp_reorder: 0.0,
            direction: Direction::Both,
            seed: 0,
        }
    }
}

/// A byte count as `1000`, `64k`, `2M` (powers of 1000, as network rates are).
fn bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, scale) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok((n * scale) as u64),
        _ => Err(format!("{text:?} is not a byte count (1000, 64k, 2M)")),
    }
}

fn probability(name: &str, text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{name} is a probability from 0 to 1, got {text:?}")),
    }
}

impl Spec {
    /// Parse `name=value,name=value…`:
    /// `fragment=N` or `fragment=MIN..MAX` (bytes per piece),
    /// `fragment_pause=1ms`, `delay=100ms` or `delay=100ms~20ms` (jitter),
    /// `bandwidth=64k` (bytes per second), `drop_after=N` or
    /// `drop_after=N:reset`, `reset_probability=P`, `stall=2s` or
    /// `stall=2s@N` (after N bytes), `corrupt=P` (per byte),
    /// `direction=both|up|down`, `seed=N`.
    ///
    /// # Errors
    /// A message naming the part that cannot be read.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut spec = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            match name.trim() {
                // A bare `fragment` is the classic framing-bug finder: 1..7 bytes.
                "fragment" if value.is_empty() => spec.fragment = Some((1, 7)),
                "fragment" => {
                    let (lo, hi) = match value.split_once("..") {
                        Some((lo, hi)) => (bytes(lo)?, bytes(hi)?),
                        None => (1, bytes(value)?),
                    };
                    if lo == 0 || hi < lo {
                        return Err(format!("fragment is N or MIN..MAX bytes with 1 <= MIN <= MAX, got {value:?}"));
                    }
                    spec.fragment = Some((lo as usize, hi as usize));
                }
                "fragment_pause" => spec.fragment_pause = duration(value)?,
                "delay" => match value.split_once('~') {
                    Some((d, j)) => (spec.delay, spec.jitter) = (duration(d)?, duration(j)?),
                    None => spec.delay = duration(value)?,
                },
                "bandwidth" => {
                    let b = bytes(value)?;
                    if b == 0 {
                        return Err("bandwidth must be at least 1 byte per second".into());
                    }
                    spec.bandwidth = Some(b);
                }
                "drop_after" => {
                    let (n, how) = value.split_once(':').unwrap_or((value, "close"));
                    let cut = match how {
                        "close" => Cut::Close,
                        "reset" => Cut::Reset,
                        other => return Err(format!("drop_after=N:close or N:reset, got {other:?}")),
                    };
                    spec.drop_after = Some((bytes(n)?, cut));
                }
                "reset_probability" => spec.reset_probability = probability(name, value)?,
                "stall" => {
                    let (d, after) = value.split_once('@').unwrap_or((value, "0"));
                    spec.stall = Some((duration(d)?, bytes(after)?));
                }
                "corrupt" => spec.corrupt = probability(name, value)?,
                "udp_loss" => spec.udp_loss = probability(name, value)?,
                "udp_duplicate" => spec.udp_duplicate = probability(name, value)?,
                "udp_reorder" => spec.udp_reorder = probability(name, value)?,
                "direction" => {
                    spec.direction = match value {
                        "both" => Direction::Both,
                        "up" => Direction::Up,
                        "down" => Direction::Down,
                        other => return Err(format!("direction is both, up or down, got {other:?}")),
                    }
                }
                "seed" => {
                    spec.seed = value.trim().parse().map_err(|_| format!("seed is a whole number, got {value:?}"))?
                }
                other => {
                    return Err(format!(
                        "unknown fault {other:?} (fragment, fragment_pause, delay, bandwidth, drop_after, \
                         reset_probability, stall, corrupt, udp_loss, udp_duplicate, udp_reorder, direction, seed)"
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// [`Spec::parse`], with a random seed when `text` gives none (the
    /// caller prints it, so that the run can be repeated).
    ///
    /// # Errors
    /// As [`Spec::parse`].
    pub fn parse_seeded(text: &str) -> Result<Self, String> {
        let mut spec = Self::parse(text)?;
        if !text.split(',').any(|p| p.trim().starts_with("seed")) {
            spec.seed = fastrand::u64(..1 << 48);
        }
        Ok(spec)
    }

    /// A spec from a script: a string as [`Spec::parse`] reads, or a map of
    /// the same names (`#{fragment: "1..7", delay: "50ms", seed: 3}`, numbers
    /// as numbers, `true` for a bare `fragment`). `op` names the operation
    /// in the `value` error.
    ///
    /// # Errors
    /// A `value` error naming the part that cannot be read.
    pub fn from_dynamic(op: &str, value: &Dynamic) -> Result<Self, Error> {
        let text = if let Some(map) = value.read_lock::<rhai::Map>() {
            let mut parts = Vec::with_capacity(map.len());
            for (name, v) in map.iter() {
                if v.as_bool() == Ok(true) {
                    parts.push(name.to_string());
                } else {
                    parts.push(format!("{name}={v}"));
                }
            }
            parts.join(",")
        } else if value.is_string() {
            value.to_string()
        } else {
            return Err(Error::value(op, format!("faults are a string or a map, not {}", value.type_name())));
        };
        Self::parse_seeded(&text).map_err(|e| Error::value(op, format!("faults: {e}")))
    }

    /// A script's faults value, where `()` and a blank string mean none
    /// (`net::faults(…)`, `c.faults = …`, a `faults` option).
    ///
    /// # Errors
    /// As [`Spec::from_dynamic`].
    pub fn from_dynamic_or_off(op: &str, value: &Dynamic) -> Result<Option<Self>, Error> {
        let off = value.is_unit() || value.read_lock::<rhai::ImmutableString>().is_some_and(|s| s.trim().is_empty());
        if off { Ok(None) } else { Self::from_dynamic(op, value).map(Some) }
    }

    /// Whether no stream fault is set (UDP faults aside): a splice then
    /// forwards bytes as they come.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fragment.is_none()
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.bandwidth.is_none()
            && self.drop_after.is_none()
            && self.reset_probability == 0.0
            && self.stall.is_none()
            && self.corrupt == 0.0
    }

    /// Whether the faults apply to the client-to-server direction (`up`) or
    /// the other.
    #[must_use]
    pub fn applies(&self, up: bool) -> bool {
        match self.direction {
            Direction::Both => true,
            Direction::Up => up,
            Direction::Down => !up,
        }
    }
}

/// The spec as [`Spec::parse`] reads it back: only what is on, the seed last.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = crate::args::format_duration;
        let mut parts = Vec::new();
        if let Some((lo, hi)) = self.fragment {
            parts.push(format!("fragment={lo}..{hi}"));
            if self.fragment_pause != Spec::default().fragment_pause {
                parts.push(format!("fragment_pause={}", ms(self.fragment_pause)));
            }
        }
        if !self.delay.is_zero() || !self.jitter.is_zero() {
            let jitter = if self.jitter.is_zero() { String::new() } else { format!("~{}", ms(self.jitter)) };
            parts.push(format!("delay={}{jitter}", ms(self.delay)));
        }
        if let Some(b) = self.bandwidth {
            parts.push(format!("bandwidth={b}"));
        }
        if let Some((n, cut)) = self.drop_after {
            parts.push(format!("drop_after={n}{}", if cut == Cut::Reset { ":reset" } else { "" }));
        }
        if self.reset_probability > 0.0 {
            parts.push(format!("reset_probability={}", self.reset_probability));
        }
        if let Some((d, after)) = self.stall {
            parts.push(format!("stall={}@{after}", ms(d)));
        }
        for (name, p) in [
            ("corrupt", self.corrupt),
            ("udp_loss", self.udp_loss),
            ("udp_duplicate", self.udp_duplicate),
            ("udp_reorder", self.udp_reorder),
        ] {
            if p > 0.0 {
                parts.push(format!("{name}={p}"));
            }
        }
        match self.direction {
            Direction::Both => {}
            Direction::Up => parts.push("direction=up".into()),
            Direction::Down => parts.push("direction=down".into()),
        }
        parts.push(format!("seed={}", self.seed));
        f.write_str(&parts.join(","))
    }
}

thread_local! {
    /// The faults every new connection of this host thread suffers
    /// (`--faults`, `net::faults`).
    static ACTIVE: RefCell<Option<Arc<Spec>>> = const { RefCell::new(None) };
}

/// Bend every connection this thread opens or accepts from now on (`None`: none).
pub fn set(spec: Option<Spec>) {
    ACTIVE.with(|a| *a.borrow_mut() = spec.map(Arc::new));
}

/// The faults of this thread's new connections, if any.
#[must_use]
pub fn active() -> Option<Arc<Spec>> {
    ACTIVE.with(|a| a.borrow().clone())
}

/// The faults of one new connection: its own `faults` option when it has
/// one, else the thread's.
///
/// # Errors
/// When the option cannot be read.
pub fn for_connection(op: &str, option: Option<&Dynamic>) -> Result<Option<Arc<Spec>>, Error> {
    match option {
        Some(v) => Ok(Spec::from_dynamic_or_off(op, v)?.map(Arc::new)),
        None => Ok(active()),
    }
}

/// The number of the next stream (each connection takes two: one per
/// direction), so that one seed gives every stream of a run its own fate.
#[must_use]
pub fn next_stream() -> u64 {
    static STREAMS: AtomicU64 = AtomicU64::new(0);
    STREAMS.fetch_add(2, Ordering::Relaxed)
}

/// One direction of one UDP socket under a [`Spec`]: which datagrams are
/// lost, doubled or held back to arrive after the next one.
#[derive(Debug)]
pub struct Datagrams<T> {
    rng: fastrand::Rng,
    loss: f64,
    duplicate: f64,
    reorder: f64,
    held: Option<T>,
}

impl<T: Clone> Datagrams<T> {
    /// The datagram faults of stream `stream` in direction `up`, or `None`
    /// when the spec has none for it.
    #[must_use]
    pub fn new(spec: &Spec, stream: u64, up: bool) -> Option<Self> {
        let any = spec.udp_loss > 0.0 || spec.udp_duplicate > 0.0 || spec.udp_reorder > 0.0;
        (any && spec.applies(up)).then(|| Self {
            rng: fastrand::Rng::with_seed(spec.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            loss: spec.udp_loss,
            duplicate: spec.udp_duplicate,
            reorder: spec.udp_reorder,
            held: None,
        })
    }

    /// What goes through, in order, when datagram `d` comes along: nothing
    /// (lost, or held back), `d`, `d` twice, and after it the one held back.
    pub fn pass(&mut self, d: T) -> Vec<T> {
        if self.loss > 0.0 && self.rng.f64() < self.loss {
            return Vec::new();
        }
        if self.held.is_none() && self.reorder > 0.0 && self.rng.f64() < self.reorder {
            self.held = Some(d);
            return Vec::new();
        }
        let mut out = Vec::with_capacity(3);
        if self.duplicate > 0.0 && self.rng.f64() < self.duplicate {
            out.push(d.clone());
        }
        out.push(d);
        out.extend(self.held.take());
        out
    }
}

/// What to do with the next part of a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes.
    Write(Vec<u8>),
    /// Wait this long first.
    Pause(Duration),
    /// End the stream.
    Cut(Cut),
}

/// One direction of one connection under a [`Spec`].
#[derive(Clone, Debug)]
pub struct Faults {
    spec: Spec,
    rng: fastrand::Rng,
    /// Bytes delivered so far.
    passed: u64,
    stalled: bool,
}

impl Faults {
    /// The faults of stream number `stream` (each connection direction has
    /// its own, so that one seed gives every stream a reproducible fate).
    #[must_use]
    pub fn new(spec: &Spec, stream: u64) -> Self {
        let rng = fastrand::Rng::with_seed(spec.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Self { spec: spec.clone(), rng, passed: 0, stalled: false }
    }

    /// How long after it was read the next chunk is due.
    pub fn latency(&mut self) -> Duration {
        let j = self.spec.jitter.as_secs_f64();
        if j == 0.0 {
            return self.spec.delay;
        }
        let d = self.spec.delay.as_secs_f64() + (self.rng.f64() * 2.0 - 1.0) * j;
        Duration::from_secs_f64(d.max(0.0))
    }

    /// The bandwidth limit, bytes per second.
    #[must_use]
    pub fn bandwidth(&self) -> Option<u64> {
        self.spec.bandwidth
    }

    /// The steps that deliver `chunk`: pieces to write, pauses between
    /// them (fragments, a stall), and the cut where the stream ends.
    pub fn plan(&mut self, chunk: &[u8]) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.spec.reset_probability > 0.0 && self.rng.f64() < self.spec.reset_probability {
            steps.push(Step::Cut(Cut::Reset));
            return steps;
        }
        let mut data = chunk.to_vec();
        if self.spec.corrupt > 0.0 {
            for b in &mut data {
                if self.rng.f64() < self.spec.corrupt {
                    *b ^= 1 << self.rng.u8(0..8);
                }
            }
        }
        let mut cut = None;
        if let Some((limit, how)) = self.spec.drop_after {
            let left = limit.saturating_sub(self.passed);
            if (data.len() as u64) >= left {
                data.truncate(left as usize);
                cut = Some(how);
            }
        }
        let mut at = 0;
        while at < data.len() {
            if let Some((pause, after)) = self.spec.stall
                && !self.stalled
                && self.passed + (data.len() - at) as u64 > after
            {
                let before = (after.saturating_sub(self.passed)) as usize;
                if before > 0 {
                    steps.push(Step::Write(data[at..at + before].to_vec()));
                    self.passed += before as u64;
                    at += before;
                }
                steps.push(Step::Pause(pause));
                self.stalled = true;
                continue;
            }
            let n = match self.spec.fragment {
                Some((lo, hi)) => self.rng.usize(lo..=hi).min(data.len() - at),
                None => data.len() - at,
            };
            if self.spec.fragment.is_some() && at > 0 {
                steps.push(Step::Pause(self.spec.fragment_pause));
            }
            steps.push(Step::Write(data[at..at + n].to_vec()));
            self.passed += n as u64;
            at += n;
        }
        if let Some(how) = cut {
            steps.push(Step::Cut(how));
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(steps: &[Step]) -> Vec<usize> {
        steps.iter().filter_map(|s| if let Step::Write(w) = s { Some(w.len()) } else { None }).collect()
    }

    #[test]
    fn a_spec_reads_every_fault() {
        let s = Spec::parse("fragment=2..5,delay=100ms~20ms,bandwidth=64k,drop_after=10:reset,stall=2s@3,corrupt=0.5,direction=down,seed=9")
            .unwrap();
        assert_eq!(s.fragment, Some((2, 5)));
        assert_eq!((s.delay, s.jitter), (Duration::from_millis(100), Duration::from_millis(20)));
        assert_eq!(s.bandwidth, Some(64_000));
        assert_eq!(s.drop_after, Some((10, Cut::Reset)));
        assert_eq!(s.stall, Some((Duration::from_secs(2), 3)));
        assert_eq!((s.corrupt, s.direction, s.seed), (0.5, Direction::Down, 9));
        assert!(!s.applies(true) && s.applies(false));
        assert_eq!(Spec::parse("fragment").unwrap().fragment, Some((1, 7)));
        for bad in
            ["fragment=0", "fragment=5..2", "delay=soon", "corrupt=2", "bandwidth=0", "wobble=1", "drop_after=5:maybe"]
        {
            assert!(Spec::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_spec_reads_back_what_it_prints() {
        for text in [
            "fragment=2..5,delay=100ms~20ms,bandwidth=64000,drop_after=10:reset,stall=2000ms@3,corrupt=0.5,direction=down,seed=9",
            "fragment=1..7,fragment_pause=3ms,reset_probability=0.25,udp_loss=0.1,udp_reorder=0.5,seed=0",
            "delay=1500us,drop_after=4,seed=7",
            // Exactly, however long: a fraction of a millisecond, or more
            // milliseconds than an f64 holds.
            "delay=100000000000002999000ms~7ns,stall=1500us@0,seed=3",
        ] {
            let spec = Spec::parse(text).unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(Spec::parse(&spec.to_string()).unwrap(), spec);
        }
    }

    #[test]
    fn a_map_is_read_as_the_same_names() {
        let mut map = rhai::Map::new();
        map.insert("fragment".into(), Dynamic::TRUE);
        map.insert("delay".into(), "5ms".into());
        map.insert("seed".into(), Dynamic::from_int(4));
        let spec = Spec::from_dynamic("t", &Dynamic::from_map(map)).unwrap();
        assert_eq!((spec.fragment, spec.delay, spec.seed), (Some((1, 7)), Duration::from_millis(5), 4));
        assert!(Spec::from_dynamic("t", &Dynamic::from_int(3)).is_err());
    }

    #[test]
    fn fragments_cover_the_chunk_and_repeat_with_the_seed() {
        let spec = Spec::parse("fragment=1..7,seed=42").unwrap();
        let data: Vec<u8> = (0..200u8).collect();
        let (mut a, mut b) = (Faults::new(&spec, 1), Faults::new(&spec, 1));
        let (pa, pb) = (a.plan(&data), b.plan(&data));
        assert_eq!(pa, pb, "one seed, one fate");
        let sizes = writes(&pa);
        assert!(sizes.iter().all(|n| (1..=7).contains(n)), "{sizes:?}");
        let joined: Vec<u8> =
            pa.iter().filter_map(|s| if let Step::Write(w) = s { Some(w.clone()) } else { None }).flatten().collect();
        assert_eq!(joined, data, "nothing lost, nothing reordered");
        assert_ne!(writes(&Faults::new(&spec, 2).plan(&data)), sizes, "another stream, other cuts");
    }

    #[test]
    fn drop_after_and_stall_fall_where_they_are_asked() {
        let spec = Spec::parse("drop_after=10,stall=1s@4").unwrap();
        let mut f = Faults::new(&spec, 0);
        assert_eq!(
            f.plan(&[1; 6]),
            vec![Step::Write(vec![1; 4]), Step::Pause(Duration::from_secs(1)), Step::Write(vec![1; 2])]
        );
        assert_eq!(f.plan(&[2; 6]), vec![Step::Write(vec![2; 4]), Step::Cut(Cut::Close)]);
    }

    #[test]
    fn datagrams_are_lost_doubled_and_reordered_as_asked() {
        let spec = Spec::parse("udp_loss=0.2,udp_duplicate=0.2,udp_reorder=0.2,seed=11").unwrap();
        assert!(Datagrams::<u32>::new(&Spec::default(), 0, true).is_none(), "off unless asked");
        let mut d = Datagrams::new(&spec, 0, true).unwrap();
        let out: Vec<u32> = (0..10_000).flat_map(|i| d.pass(i)).collect();
        let mut seen = vec![0u32; 10_000];
        for &i in &out {
            seen[i as usize] += 1;
        }
        let lost = seen.iter().filter(|&&n| n == 0).count();
        let doubled = seen.iter().filter(|&&n| n == 2).count();
        let late = out.windows(2).filter(|w| w[1] < w[0]).count();
        // About 20 % lost (plus a held one now and then), 20 % of the rest doubled, some reordered.
        assert!((1_700..2_600).contains(&lost), "lost {lost}");
        assert!((1_200..1_900).contains(&doubled), "doubled {doubled}");
        assert!(late > 500, "reordered {late}");
        assert!(seen.iter().all(|&n| n <= 2));
        let spec = Spec::parse("udp_loss=1,direction=up").unwrap();
        assert!(Datagrams::<u32>::new(&spec, 0, false).is_none(), "direction down spared");
        assert!(Datagrams::new(&spec, 0, true).unwrap().pass(1).is_empty());
    }

    #[test]
    fn corruption_flips_single_bits() {
        let spec = Spec::parse("corrupt=1,seed=3").unwrap();
        let steps = Faults::new(&spec, 0).plan(&[0u8; 64]);
        let Step::Write(w) = &steps[0] else { panic!("{steps:?}") };
        assert!(w.iter().all(|b| b.count_ones() == 1), "{w:?}");
    }
}

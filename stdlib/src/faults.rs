//! Fault injection: a network that misbehaves on purpose, reproducibly.
//! A [`Spec`] (parsed from `fragment=1..7,delay=50ms~10ms,seed=42`) says
//! what to do to a byte stream; a [`Faults`] is one connection direction's
//! seeded state, which decides for each chunk how it is cut, when it is
//! delivered, which bits flip and where the stream ends. The proxy
//! (`netscript proxy --faults`) applies it to real connections; nothing here
//! does I/O.
//!
//! Written here rather than taken from a crate: the fault proxies that exist
//! (toxiproxy, comcast) are separate programs, not libraries, and none cuts
//! writes into 1..N-byte pieces, which is the fault that finds framing bugs.

use std::time::Duration;

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
            direction: Direction::Both,
            seed: 0,
        }
    }
}

/// A duration as `250ms`, `2s`, `1.5s`, `100us`.
fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else {
        (t, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("{text:?} is not a duration (250ms, 2s)"))
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
                         reset_probability, stall, corrupt, direction, seed)"
                    ));
                }
            }
        }
        Ok(spec)
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
        for bad in
            ["fragment=0", "fragment=5..2", "delay=soon", "corrupt=2", "bandwidth=0", "wobble=1", "drop_after=5:maybe"]
        {
            assert!(Spec::parse(bad).is_err(), "{bad} was accepted");
        }
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
    fn corruption_flips_single_bits() {
        let spec = Spec::parse("corrupt=1,seed=3").unwrap();
        let steps = Faults::new(&spec, 0).plan(&[0u8; 64]);
        let Step::Write(w) = &steps[0] else { panic!("{steps:?}") };
        assert!(w.iter().all(|b| b.count_ones() == 1), "{w:?}");
    }
}

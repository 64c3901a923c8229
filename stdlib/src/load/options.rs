//! A load run's plan, read from the scenario's `options` map and the command
//! line: the scenarios with their executors (named and shaped as k6 has
//! them), the thresholds, and the execution segment this process runs.
//!
//! Option names are k6's (`preAllocatedVUs`, `timeUnit`, `gracefulStop`…);
//! snake case (`pre_allocated_vus`) is the same name, since keys are compared
//! without case and underscores. Unknown keys are `value` errors, so a typo
//! never silently runs a different test.

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::summary::Threshold;
use crate::args::parse_duration;
use crate::error::Error;

const OP: &str = "load.options";

/// One stage of a ramping executor: reach `target` (VUs or iterations per
/// time unit) linearly over `duration`.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: f64,
}

/// How a scenario starts its iterations.
#[derive(Clone, Debug, PartialEq)]
pub enum Executor {
    /// `iterations` in all, taken by `vus` VUs as each becomes free.
    SharedIterations { vus: u64, iterations: u64, max_duration: Duration },
    /// `iterations` for each of `vus` VUs.
    PerVuIterations { vus: u64, iterations: u64, max_duration: Duration },
    /// `vus` VUs looping for `duration`.
    ConstantVus { vus: u64, duration: Duration },
    /// A VU count moving through `stages`.
    RampingVus { start_vus: u64, stages: Vec<Stage>, graceful_ramp_down: Duration },
    /// `rate` iterations started per `time_unit` for `duration` (open model).
    ConstantArrivalRate { rate: f64, time_unit: Duration, duration: Duration, pre_allocated: u64, max_vus: u64 },
    /// An arrival rate moving through `stages` (open model).
    RampingArrivalRate { start_rate: f64, time_unit: Duration, stages: Vec<Stage>, pre_allocated: u64, max_vus: u64 },
}

impl Executor {
    /// The k6 name of the executor.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::SharedIterations { .. } => "shared-iterations",
            Self::PerVuIterations { .. } => "per-vu-iterations",
            Self::ConstantVus { .. } => "constant-vus",
            Self::RampingVus { .. } => "ramping-vus",
            Self::ConstantArrivalRate { .. } => "constant-arrival-rate",
            Self::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    /// One line describing the executor, as the run's header shows it.
    #[must_use]
    pub fn describe(&self) -> String {
        let secs = |d: &Duration| format!("{}s", d.as_secs_f64());
        let what = match self {
            Self::SharedIterations { vus, iterations, max_duration } => {
                format!("{iterations} iterations shared by {vus} VUs (at most {})", secs(max_duration))
            }
            Self::PerVuIterations { vus, iterations, max_duration } => {
                format!("{iterations} iterations for each of {vus} VUs (at most {})", secs(max_duration))
            }
            Self::ConstantVus { vus, duration } => format!("{vus} VUs for {}", secs(duration)),
            Self::RampingVus { start_vus, stages, .. } => {
                format!("from {start_vus} VUs through {} stages over {}", stages.len(), secs(&self.duration()))
            }
            Self::ConstantArrivalRate { rate, time_unit, duration, pre_allocated, max_vus } => format!(
                "{rate} iterations per {} for {} ({pre_allocated} VUs pre-allocated, at most {max_vus})",
                secs(time_unit),
                secs(duration)
            ),
            Self::RampingArrivalRate { start_rate, time_unit, stages, max_vus, .. } => format!(
                "from {start_rate} iterations per {} through {} stages over {} (at most {max_vus} VUs)",
                secs(time_unit),
                stages.len(),
                secs(&self.duration())
            ),
        };
        format!("{}, {what}", self.name())
    }

    /// The most VUs the executor runs at once (before segmenting).
    #[must_use]
    pub fn max_vus(&self) -> u64 {
        match self {
            Self::SharedIterations { vus, .. } | Self::PerVuIterations { vus, .. } | Self::ConstantVus { vus, .. } => {
                *vus
            }
            Self::RampingVus { start_vus, stages, .. } => {
                stages.iter().map(|s| s.target.ceil() as u64).fold(*start_vus, u64::max)
            }
            Self::ConstantArrivalRate { max_vus, .. } | Self::RampingArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// How long the executor starts iterations for (its maximum duration
    /// for the iteration-count executors).
    #[must_use]
    pub fn duration(&self) -> Duration {
        match self {
            Self::SharedIterations { max_duration, .. } | Self::PerVuIterations { max_duration, .. } => *max_duration,
            Self::ConstantVus { duration, .. } | Self::ConstantArrivalRate { duration, .. } => *duration,
            Self::RampingVus { stages, .. } | Self::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
        }
    }
}

/// One named scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    /// The script function one iteration calls (`iteration` unless `exec`).
    pub exec: String,
    pub executor: Executor,
    /// Delay from the start of the run.
    pub start_time: Duration,
    /// How long iterations still running at the end may take to finish.
    pub graceful_stop: Duration,
}

/// This process's share of a run split over several (`--segment 2/4`):
/// VU `i` and arrival `k` belong to segment `index` when `i % count == index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Which slice, 0-based.
    pub index: u64,
    /// How many slices.
    pub count: u64,
}

impl Segment {
    /// The whole run.
    pub const WHOLE: Self = Self { index: 0, count: 1 };

    /// Parse `i/n` (1-based `i`).
    ///
    /// # Errors
    /// A message when it is not `i/n` with 1 ≤ i ≤ n.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("a segment is i/n with 1 <= i <= n, got {text:?}");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (i, n): (u64, u64) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if i == 0 || n == 0 || i > n {
            return Err(bad());
        }
        Ok(Self { index: i - 1, count: n })
    }

    /// Whether unit `i` (a VU, an arrival, a shared iteration) is ours.
    #[must_use]
    pub fn owns(self, i: u64) -> bool {
        i % self.count == self.index
    }

    /// How many of units `0..n` are ours.
    #[must_use]
    pub fn share(self, n: u64) -> u64 {
        n / self.count + u64::from(n % self.count > self.index)
    }

    /// Part `w` of `n` of this segment (the segments of `--workers N`):
    /// together the `n` parts own exactly what this segment owns.
    #[must_use]
    pub fn within(self, w: u64, n: u64) -> Self {
        Self { index: self.index + self.count * w, count: self.count * n }
    }

    /// `i/n` as written on the command line.
    #[must_use]
    pub fn label(self) -> String {
        format!("{}/{}", self.index + 1, self.count)
    }
}

/// What the command line sets: `--vus`, `--duration`, `--iterations`,
/// `--rate` replace the file's scenarios with one, as k6's flags do.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub vus: Option<u64>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub rate: Option<f64>,
}

impl Overrides {
    fn any(&self) -> bool {
        self.vus.is_some() || self.duration.is_some() || self.iterations.is_some() || self.rate.is_some()
    }
}

/// Everything a run needs to know before it starts.
#[derive(Clone, Debug)]
pub struct Plan {
    pub scenarios: Vec<Scenario>,
    pub thresholds: Vec<Threshold>,
    pub segment: Segment,
}

/// k6's defaults.
const MAX_DURATION: Duration = Duration::from_secs(600);
const GRACEFUL_STOP: Duration = Duration::from_secs(30);
/// VUs of `--rate` without `--vus`.
const RATE_VUS: u64 = 100;

/// A key compared as k6 and snake case both write it.
fn norm(key: &str) -> String {
    key.chars().filter(|c| *c != '_' && *c != '-').map(|c| c.to_ascii_lowercase()).collect()
}

/// A map whose keys were normalised, taken apart key by key.
struct Opts {
    what: String,
    map: Vec<(String, String, Dynamic)>,
}

impl Opts {
    fn new(what: &str, map: &Map, known: &[&str]) -> Result<Self, Error> {
        let mut out = Vec::new();
        for (k, v) in map {
            let n = norm(k);
            if !known.iter().any(|kn| norm(kn) == n) {
                return Err(Error::value(OP, format!("{what}: unknown option {k:?} (known: {})", known.join(", "))));
            }
            out.push((n, k.to_string(), v.clone()));
        }
        Ok(Self { what: what.to_string(), map: out })
    }

    fn get(&self, key: &str) -> Option<&Dynamic> {
        let n = norm(key);
        self.map.iter().find(|(k, ..)| *k == n).map(|(.., v)| v)
    }

    fn count(&self, key: &str, default: Option<u64>) -> Result<u64, Error> {
        match self.get(key) {
            None => default.ok_or_else(|| Error::value(OP, format!("{}: {key} is required", self.what))),
            Some(v) => match v.as_int() {
                Ok(n) if n >= 0 => Ok(n.cast_unsigned()),
                _ => Err(Error::value(OP, format!("{}: {key} must be a whole number >= 0, got {v}", self.what))),
            },
        }
    }

    fn number(&self, key: &str, default: Option<f64>) -> Result<f64, Error> {
        match self.get(key) {
            None => default.ok_or_else(|| Error::value(OP, format!("{}: {key} is required", self.what))),
            Some(v) => match v.as_int().map(|n| n as f64).or_else(|_| v.as_float()) {
                Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
                _ => Err(Error::value(OP, format!("{}: {key} must be a number >= 0, got {v}", self.what))),
            },
        }
    }

    fn duration(&self, key: &str, default: Option<Duration>) -> Result<Duration, Error> {
        match self.get(key) {
            None => default.ok_or_else(|| Error::value(OP, format!("{}: {key} is required", self.what))),
            Some(v) => duration(v).map_err(|e| Error::value(OP, format!("{}: {key}: {e}", self.what))),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_string() => Ok(Some(v.to_string())),
            Some(v) => Err(Error::value(OP, format!("{}: {key} must be a string, got {v}", self.what))),
        }
    }

    fn stages(&self) -> Result<Vec<Stage>, Error> {
        let Some(v) = self.get("stages") else {
            return Err(Error::value(OP, format!("{}: stages is required", self.what)));
        };
        let Some(list) = v.read_lock::<rhai::Array>() else {
            return Err(Error::value(OP, format!("{}: stages must be an array of #{{duration, target}}", self.what)));
        };
        list.iter()
            .enumerate()
            .map(|(i, s)| {
                let Some(m) = s.read_lock::<Map>() else {
                    return Err(Error::value(OP, format!("{}: stage {i} must be #{{duration, target}}", self.what)));
                };
                let o = Opts::new(&format!("{} stage {i}", self.what), &m, &["duration", "target"])?;
                Ok(Stage { duration: o.duration("duration", None)?, target: o.number("target", None)? })
            })
            .collect()
    }
}

/// A duration as k6 writes it (`"30s"`, `"1m30s"`, `"250ms"`, `"2h"`, `"10us"`)
/// or a number of seconds.
///
/// # Errors
/// A message saying what was expected.
pub fn duration(v: &Dynamic) -> Result<Duration, String> {
    if let Ok(n) = v.as_int() {
        return u64::try_from(n).map(Duration::from_secs).map_err(|_| format!("must be >= 0, got {n}"));
    }
    if let Ok(f) = v.as_float() {
        return Duration::try_from_secs_f64(f).map_err(|_| format!("must be >= 0 seconds, got {f}"));
    }
    if v.is_string() {
        return parse_duration(&v.to_string());
    }
    Err(format!("a duration is a number of seconds or a string such as \"30s\", got {v}"))
}

const SCENARIO_KEYS: &[&str] = &[
    "executor",
    "exec",
    "startTime",
    "gracefulStop",
    "vus",
    "iterations",
    "maxDuration",
    "duration",
    "startVUs",
    "stages",
    "gracefulRampDown",
    "rate",
    "startRate",
    "timeUnit",
    "preAllocatedVUs",
    "maxVUs",
];

/// Read one scenario's map.
fn scenario(name: &str, map: &Map) -> Result<Scenario, Error> {
    let o = Opts::new(&format!("scenario {name:?}"), map, SCENARIO_KEYS)?;
    let executor =
        o.string("executor")?.ok_or_else(|| Error::value(OP, format!("scenario {name:?}: executor is required")))?;
    let (pre, time_unit) =
        (o.count("preAllocatedVUs", Some(1))?, o.duration("timeUnit", Some(Duration::from_secs(1)))?);
    if time_unit.is_zero() {
        return Err(Error::value(OP, format!("scenario {name:?}: timeUnit must be positive")));
    }
    let executor = match executor.as_str() {
        "shared-iterations" => Executor::SharedIterations {
            vus: o.count("vus", Some(1))?,
            iterations: o.count("iterations", Some(1))?,
            max_duration: o.duration("maxDuration", Some(MAX_DURATION))?,
        },
        "per-vu-iterations" => Executor::PerVuIterations {
            vus: o.count("vus", Some(1))?,
            iterations: o.count("iterations", Some(1))?,
            max_duration: o.duration("maxDuration", Some(MAX_DURATION))?,
        },
        "constant-vus" => {
            Executor::ConstantVus { vus: o.count("vus", Some(1))?, duration: o.duration("duration", None)? }
        }
        "ramping-vus" => Executor::RampingVus {
            start_vus: o.count("startVUs", Some(1))?,
            stages: o.stages()?,
            graceful_ramp_down: o.duration("gracefulRampDown", Some(GRACEFUL_STOP))?,
        },
        "constant-arrival-rate" => Executor::ConstantArrivalRate {
            rate: o.number("rate", None)?,
            time_unit,
            duration: o.duration("duration", None)?,
            pre_allocated: pre,
            max_vus: o.count("maxVUs", Some(pre))?.max(pre),
        },
        "ramping-arrival-rate" => Executor::RampingArrivalRate {
            start_rate: o.number("startRate", Some(0.0))?,
            time_unit,
            stages: o.stages()?,
            pre_allocated: pre,
            max_vus: o.count("maxVUs", Some(pre))?.max(pre),
        },
        other => {
            return Err(Error::value(
                OP,
                format!(
                    "scenario {name:?}: unknown executor {other:?} (shared-iterations, per-vu-iterations, \
                     constant-vus, ramping-vus, constant-arrival-rate, ramping-arrival-rate)"
                ),
            ));
        }
    };
    Ok(Scenario {
        name: name.to_string(),
        exec: o.string("exec")?.unwrap_or_else(|| "iteration".into()),
        executor,
        start_time: o.duration("startTime", Some(Duration::ZERO))?,
        graceful_stop: o.duration("gracefulStop", Some(GRACEFUL_STOP))?,
    })
}

/// The one scenario of the shortcuts (`vus`, `duration`, `iterations`,
/// `stages` at the top of `options`, or the command line's flags).
fn shortcut(o: &Opts, cli: &Overrides) -> Result<Scenario, Error> {
    let vus = match cli.vus {
        Some(v) => Some(v),
        None if cli.any() => None,
        None => o.get("vus").map(|_| o.count("vus", None)).transpose()?,
    };
    let (duration, iterations) = if cli.any() {
        (cli.duration, cli.iterations)
    } else {
        let d = o.get("duration").map(|_| o.duration("duration", None)).transpose()?;
        (d, o.get("iterations").map(|_| o.count("iterations", None)).transpose()?)
    };
    let executor = if let Some(rate) = cli.rate {
        let max_vus = vus.unwrap_or(RATE_VUS);
        let duration = duration.ok_or_else(|| Error::value(OP, "--rate needs --duration"))?;
        Executor::ConstantArrivalRate {
            rate,
            time_unit: Duration::from_secs(1),
            duration,
            pre_allocated: max_vus,
            max_vus,
        }
    } else if let Some(iterations) = iterations {
        let max_duration = duration.unwrap_or(MAX_DURATION);
        Executor::SharedIterations { vus: vus.unwrap_or(1), iterations, max_duration }
    } else if let Some(duration) = duration {
        Executor::ConstantVus { vus: vus.unwrap_or(1), duration }
    } else if !cli.any() && o.get("stages").is_some() {
        Executor::RampingVus { start_vus: vus.unwrap_or(1), stages: o.stages()?, graceful_ramp_down: GRACEFUL_STOP }
    } else {
        Executor::SharedIterations { vus: vus.unwrap_or(1), iterations: vus.unwrap_or(1), max_duration: MAX_DURATION }
    };
    Ok(Scenario {
        name: "default".into(),
        exec: "iteration".into(),
        executor,
        start_time: Duration::ZERO,
        graceful_stop: GRACEFUL_STOP,
    })
}

/// The plan of a run: `options` as the scenario file defines it, with the
/// command line's `overrides` and `segment`.
///
/// # Errors
/// A `value` error naming the option that is wrong.
pub fn plan(options: &Map, cli: &Overrides, segment: Segment) -> Result<Plan, Error> {
    let o = Opts::new("options", options, &["scenarios", "thresholds", "vus", "duration", "iterations", "stages"])?;
    let scenarios = match o.get("scenarios") {
        Some(s) if !cli.any() => {
            let Some(map) = s.read_lock::<Map>() else {
                return Err(Error::value(OP, "options: scenarios must be a map of name to scenario"));
            };
            let mut list = Vec::new();
            for (name, v) in map.iter() {
                let Some(m) = v.read_lock::<Map>() else {
                    return Err(Error::value(OP, format!("scenario {name:?} must be a map")));
                };
                list.push(scenario(name, &m)?);
            }
            if list.is_empty() {
                return Err(Error::value(OP, "options: scenarios is empty"));
            }
            list
        }
        _ => vec![shortcut(&o, cli)?],
    };
    let thresholds = match o.get("thresholds") {
        None => Vec::new(),
        Some(t) => match t.read_lock::<Map>() {
            Some(map) => super::summary::thresholds(&map)?,
            None => return Err(Error::value(OP, "options: thresholds must be a map of metric to a list of rules")),
        },
    };
    Ok(Plan { scenarios, thresholds, segment })
}

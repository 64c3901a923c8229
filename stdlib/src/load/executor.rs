//! Running a load plan: each scenario gets a controller task that starts
//! its virtual users (closed model: VUs loop over iterations) or its
//! arrivals (open model: an iteration starts on schedule in a free VU, or is
//! counted as dropped), while the calling task shows progress, watches the
//! `abortOnFail` thresholds and waits for the end. Every iteration is a call
//! of the scenario's script function on a green-thread task of this host.

use std::cell::{Cell, RefCell};
use std::io::IsTerminal as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, EvalAltResult};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::options::{Executor, Plan, Scenario, Segment, Stage};
use super::summary::{self, Summary};
use crate::error::NativeResult;
use crate::metrics::{self, MetricKind};
use crate::runtime;
use crate::task::Callable;

/// How often the waiting task wakes to show progress and check thresholds.
const TICK: Duration = Duration::from_secs(1);
/// How often a plain (not a terminal) progress line is printed.
const PLAIN_EVERY: u32 = 5;
/// How often an idle VU of a ramping executor looks at the target again.
const RAMP_POLL: Duration = Duration::from_millis(20);
/// Errors of iterations printed in full; later ones are only counted.
const PRINT_ERRORS: u64 = 10;

/// A count of running things, with a wake-up when it reaches zero.
#[derive(Default)]
struct Live {
    n: Cell<u64>,
    zero: Notify,
}

impl Live {
    fn up(&self) {
        self.n.set(self.n.get() + 1);
    }

    fn down(&self) {
        self.n.set(self.n.get().saturating_sub(1));
        if self.n.get() == 0 {
            self.zero.notify_waiters();
        }
    }

    /// Wait until nothing runs, or until `deadline`; whether nothing runs.
    fn wait(self: &Rc<Self>, deadline: Option<Instant>) -> NativeResult<bool> {
        if self.n.get() == 0 {
            return Ok(true);
        }
        let me = self.clone();
        let deadline = deadline.map(tokio::time::Instant::from_std);
        runtime::block_on(async move {
            let zero = me.zero.notified();
            match deadline {
                Some(d) => tokio::time::timeout_at(d, zero).await.is_ok(),
                None => {
                    zero.await;
                    true
                }
            }
        })
    }
}

/// What every task of a run shares (all on the host thread).
struct Run {
    /// Set when the run must end early (a threshold, a failed setup).
    stop: Cell<bool>,
    iterations: Cell<u64>,
    errors: Cell<u64>,
    /// VUs active now (looping, or allocated by an open-model scenario),
    /// and the most that were.
    vus: Cell<u64>,
    vus_max: Cell<u64>,
    /// The value `setup()` returned, given to every iteration.
    data: Dynamic,
}

impl Run {
    fn vu_up(&self) {
        self.vus.set(self.vus.get() + 1);
        self.vus_max.set(self.vus_max.get().max(self.vus.get()));
    }

    fn vu_down(&self, n: u64) {
        self.vus.set(self.vus.get().saturating_sub(n));
    }

    fn sleep_until(&self, at: Instant) -> NativeResult<()> {
        runtime::block_on(tokio::time::sleep_until(tokio::time::Instant::from_std(at)))
    }
}

/// One scenario while it runs.
struct ScenarioRun {
    run: Rc<Run>,
    scenario: Scenario,
    callable: Callable,
    /// Parameters of the function: none, `data`, or `data, vu`.
    params: usize,
    segment: Segment,
    /// When its iterations may start, and when they must have started.
    start: Instant,
    end: Instant,
    /// The next shared iteration (shared-iterations).
    ticket: Cell<u64>,
    /// Free VUs of the open model, with their state.
    free_vus: RefCell<Vec<(u64, Dynamic)>>,
    allocated: Cell<u64>,
    /// Tasks of this scenario still running.
    live: Rc<Live>,
    token: CancellationToken,
}

impl ScenarioRun {
    /// The state of VU `id`: a shared map the VU's iterations see as their
    /// `vu` parameter, with its `id` (1-based, as k6's `__VU`), `iteration`
    /// (0-based, `__ITER`) and `scenario`, and whatever the script keeps in it.
    fn vu_state(&self, id: u64) -> Dynamic {
        let mut m = rhai::Map::new();
        m.insert("id".into(), Dynamic::from_int(id.cast_signed() + 1));
        m.insert("iteration".into(), Dynamic::from_int(-1));
        m.insert("scenario".into(), self.scenario.name.as_str().into());
        Dynamic::from_map(m).into_shared()
    }

    /// One iteration of the VU whose state is `vu`. `Err` only when the
    /// task is cancelled; a failing iteration is counted under
    /// `errors{kind:…}` and the VU goes on.
    fn iterate(&self, vu: &Dynamic) -> NativeResult<()> {
        let run = &self.run;
        let mut cell = vu.clone();
        if let Some(mut m) = cell.write_lock::<rhai::Map>()
            && let Some(i) = m.get_mut("iteration")
        {
            *i = Dynamic::from_int(i.as_int().unwrap_or(-1) + 1);
        }
        let t0 = Instant::now();
        let result = match self.params {
            0 => self.callable.call(()),
            1 => self.callable.call((run.data.clone(),)),
            _ => self.callable.call((run.data.clone(), vu.clone())),
        };
        let tags = [("scenario", self.scenario.name.as_str())];
        if let Err(err) = result {
            if runtime::innermost_terminated(&err) || runtime::cancelled() {
                return Err(err);
            }
            let kind = kind_of(&err);
            metrics::record(MetricKind::Counter, false, "errors", &[("kind", &kind), tags[0]], 1.0);
            run.errors.set(run.errors.get() + 1);
            if run.errors.get() <= PRINT_ERRORS {
                let at = err.position();
                let at = if at.is_none() { String::new() } else { format!(" at {at}") };
                eprintln!("load: {} iteration failed{at}: {}", self.scenario.name, crate::error::describe(&err));
                if run.errors.get() == PRINT_ERRORS {
                    eprintln!("load: further iteration errors are only counted");
                }
            }
        }
        metrics::time("iteration_duration", &tags, t0.elapsed());
        metrics::record(MetricKind::Counter, false, "iterations", &tags, 1.0);
        run.iterations.set(run.iterations.get() + 1);
        Ok(())
    }

    fn stopping(&self) -> bool {
        self.run.stop.get() || Instant::now() >= self.end
    }

    /// The next shared iteration of this segment, if any is left.
    fn take_ticket(&self, total: u64) -> bool {
        loop {
            let k = self.ticket.get();
            if k >= total {
                return false;
            }
            self.ticket.set(k + 1);
            if self.segment.owns(k) {
                return true;
            }
        }
    }

    /// VU number `vu` of a closed-model executor; counted in `vus` while
    /// it may start iterations (a ramping VU above the target is not).
    fn vu_loop(&self, vu: u64) -> NativeResult<()> {
        let mut active = false;
        let result = self.vu_iterations(vu, &mut active);
        if active {
            self.run.vu_down(1);
        }
        result
    }

    fn vu_iterations(&self, vu: u64, active: &mut bool) -> NativeResult<()> {
        let state = self.vu_state(vu);
        let mut done = 0u64;
        while !self.stopping() {
            match &self.scenario.executor {
                Executor::SharedIterations { iterations, .. } if !self.take_ticket(*iterations) => break,
                Executor::PerVuIterations { iterations, .. } if done >= *iterations => break,
                Executor::RampingVus { start_vus, stages, .. } => {
                    let target = ramp(*start_vus as f64, stages, self.start.elapsed());
                    let wanted = (vu as f64) < target.round();
                    if wanted != *active {
                        *active = wanted;
                        if wanted { self.run.vu_up() } else { self.run.vu_down(1) }
                    }
                    if !wanted {
                        self.run.sleep_until((Instant::now() + RAMP_POLL).min(self.end))?;
                        continue;
                    }
                }
                _ if !*active => {
                    *active = true;
                    self.run.vu_up();
                }
                _ => {}
            }
            self.iterate(&state)?;
            done += 1;
        }
        Ok(())
    }

    /// A task on this scenario's token, counted in `live`.
    fn spawn(self: &Rc<Self>, body: impl FnOnce(&Rc<Self>) -> NativeResult<()> + 'static) -> NativeResult<()> {
        let me = self.clone();
        self.live.up();
        let started = runtime::spawn("load", runtime::StackKind::Task, self.token.child_token(), move || {
            let result = body(&me);
            me.live.down();
            result.map(|()| Dynamic::UNIT)
        });
        if let Err(e) = started {
            self.live.down();
            return Err(e.into());
        }
        Ok(())
    }

    /// The controller of a closed-model scenario: start its VUs, wait for
    /// them, give stragglers `gracefulStop`, then cancel them.
    fn closed(self: &Rc<Self>) -> NativeResult<()> {
        let vus = self.scenario.executor.max_vus();
        for vu in (0..vus).filter(|v| self.segment.owns(*v)) {
            self.spawn(move |me| me.vu_loop(vu))?;
        }
        self.finish()
    }

    /// The controller of an open-model scenario: start arrival `k` at its
    /// time in a free VU, or count it as dropped when `maxVUs` are busy.
    fn open(self: &Rc<Self>) -> NativeResult<()> {
        let max_vus = self.segment.share(self.scenario.executor.max_vus()).max(1);
        let tags = [("scenario", self.scenario.name.as_str())];
        let mut k = 0u64;
        while !self.run.stop.get() {
            let Some(at) = arrival(&self.scenario.executor, k) else { break };
            let at = self.start + at;
            if at >= self.end {
                break;
            }
            k += 1;
            if !self.segment.owns(k - 1) {
                continue;
            }
            if at > Instant::now() {
                self.run.sleep_until(at)?;
            }
            let vu = self.free_vus.borrow_mut().pop().or_else(|| {
                (self.allocated.get() < max_vus).then(|| {
                    let id = self.allocated.get();
                    self.allocated.set(id + 1);
                    self.run.vu_up();
                    (id, self.vu_state(id))
                })
            });
            match vu {
                Some(vu) => self.spawn(move |me| {
                    let result = me.iterate(&vu.1);
                    me.free_vus.borrow_mut().push(vu);
                    result
                })?,
                None => metrics::record(MetricKind::Counter, false, "dropped_iterations", &tags, 1.0),
            }
        }
        let result = self.finish();
        self.run.vu_down(self.allocated.get());
        result
    }

    /// Wait for the scenario's tasks until its end plus `gracefulStop`
    /// (ramping VUs: `gracefulRampDown`), then cancel what still runs.
    fn finish(&self) -> NativeResult<()> {
        let grace = match &self.scenario.executor {
            Executor::RampingVus { graceful_ramp_down, .. } => *graceful_ramp_down,
            _ => self.scenario.graceful_stop,
        };
        let all_done = self.live.wait(Some(self.end + grace))?;
        if !all_done {
            self.token.cancel();
            metrics::record(
                MetricKind::Counter,
                false,
                "interrupted_iterations",
                &[("scenario", self.scenario.name.as_str())],
                self.live.n.get() as f64,
            );
        }
        Ok(())
    }
}

/// The target of a ramp `start → stages` at `t` (linear within a stage).
fn ramp(start: f64, stages: &[Stage], t: Duration) -> f64 {
    let (mut from, mut at) = (start, Duration::ZERO);
    for s in stages {
        if t < at + s.duration {
            let f = (t - at).as_secs_f64() / s.duration.as_secs_f64().max(1e-9);
            return from + (s.target - from) * f;
        }
        at += s.duration;
        from = s.target;
    }
    from
}

/// When arrival `k` (0-based) of an open-model executor starts, from the
/// start of its scenario: the time at which `k` iterations have come due
/// under the (piecewise linear) rate. `None` when it never comes.
fn arrival(executor: &Executor, k: u64) -> Option<Duration> {
    let n = k as f64;
    match executor {
        Executor::ConstantArrivalRate { rate, time_unit, .. } => {
            let per_sec = rate / time_unit.as_secs_f64();
            (per_sec > 0.0).then(|| Duration::from_secs_f64(n / per_sec))
        }
        Executor::RampingArrivalRate { start_rate, time_unit, stages, .. } => {
            let unit = time_unit.as_secs_f64();
            let (mut from, mut at, mut due) = (start_rate / unit, 0.0, 0.0);
            for s in stages {
                let (to, d) = (s.target / unit, s.duration.as_secs_f64());
                let area = (from + to) / 2.0 * d;
                if due + area > n {
                    // Solve from·t + (to-from)/(2d)·t² = n - due for t in [0, d].
                    let left = n - due;
                    let a = (to - from) / (2.0 * d.max(1e-12));
                    let t = if a.abs() < 1e-12 {
                        left / from
                    } else {
                        (-from + (from * from + 4.0 * a * left).max(0.0).sqrt()) / (2.0 * a)
                    };
                    return Some(Duration::from_secs_f64(at + t.clamp(0.0, d)));
                }
                due += area;
                at += d;
                from = to;
            }
            None
        }
        _ => None,
    }
}

/// The `kind` of a failed iteration's error (`script` for a thrown value
/// that is not a library error).
fn kind_of(err: &EvalAltResult) -> String {
    match crate::error::innermost(err) {
        EvalAltResult::ErrorRuntime(v, _) => v
            .read_lock::<rhai::Map>()
            .and_then(|m| m.get("kind").filter(|k| k.is_string()).map(ToString::to_string))
            .unwrap_or_else(|| "script".into()),
        _ => "script".into(),
    }
}

/// A script function of the run, with whether it takes the setup data.
pub struct Function {
    pub callable: Callable,
    /// Its parameters: none, `data`, or `data, vu` (iterations only).
    pub params: usize,
}

/// What [`execute`] needs besides the plan.
pub struct Job {
    pub plan: Plan,
    /// The function each scenario's `exec` names, in the plan's order.
    pub functions: Vec<Function>,
    pub setup: Option<Callable>,
    pub teardown: Option<Function>,
    /// Show the live progress line (or periodic plain lines).
    pub progress: bool,
}

/// Cancels what the run started, whichever way it ends.
struct Cleanup(CancellationToken);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.cancel();
        if metrics::on() {
            metrics::stop();
        }
    }
}

/// Run `job` from the calling task; its summary when it ends.
///
/// # Errors
/// The error of `setup()` or `teardown()`, or the termination of the
/// calling task (Ctrl-C, a deadline).
pub fn execute(job: Job) -> NativeResult<Summary> {
    let Job { plan, functions, setup, teardown, progress } = job;
    let token = runtime::current_token().unwrap_or_default().child_token();
    let _cleanup = Cleanup(token.clone());
    metrics::start();
    let data = match &setup {
        Some(f) => f.call(())?,
        None => Dynamic::UNIT,
    };
    let run = Rc::new(Run {
        stop: Cell::new(false),
        iterations: Cell::new(0),
        errors: Cell::new(0),
        vus: Cell::new(0),
        vus_max: Cell::new(0),
        data,
    });
    let t0 = Instant::now();
    let controllers = Rc::new(Live::default());
    let mut scenarios = Vec::new();
    for (scenario, f) in plan.scenarios.iter().zip(functions) {
        let start = t0 + scenario.start_time;
        let sc = Rc::new(ScenarioRun {
            run: run.clone(),
            end: start + scenario.executor.duration(),
            scenario: scenario.clone(),
            callable: f.callable,
            params: f.params,
            segment: plan.segment,
            start,
            ticket: Cell::new(0),
            free_vus: RefCell::new(Vec::new()),
            allocated: Cell::new(0),
            live: Rc::new(Live::default()),
            token: token.child_token(),
        });
        scenarios.push(sc.clone());
        controllers.up();
        let live = controllers.clone();
        let started = runtime::spawn("load", runtime::StackKind::Task, token.child_token(), move || {
            let result = (|| {
                if sc.start > Instant::now() {
                    sc.run.sleep_until(sc.start)?;
                }
                match sc.scenario.executor {
                    Executor::ConstantArrivalRate { .. } | Executor::RampingArrivalRate { .. } => sc.open(),
                    _ => sc.closed(),
                }
            })();
            live.down();
            if let Err(e) = &result
                && !runtime::innermost_terminated(e)
            {
                eprintln!("load: scenario {} failed: {}", sc.scenario.name, crate::error::describe(e));
            }
            result.map(|()| Dynamic::UNIT)
        });
        if let Err(e) = started {
            controllers.down();
            return Err(e.into());
        }
    }
    let longest = plan.scenarios.iter().map(|s| s.start_time + s.executor.duration()).max().unwrap_or_default();
    if progress {
        let vus: u64 = plan.scenarios.iter().map(|s| plan.segment.share(s.executor.max_vus())).sum();
        let segment =
            if plan.segment == Segment::WHOLE { String::new() } else { format!(", segment {}", plan.segment.label()) };
        eprintln!(
            "load: {} scenario(s), {vus} max VUs, {:.1}s max duration{segment}",
            plan.scenarios.len(),
            longest.as_secs_f64()
        );
        for s in &plan.scenarios {
            eprintln!("load:   * {}: {} (exec: {})", s.name, s.executor.describe(), s.exec);
        }
    }
    let mut bar = Progress::new(progress, longest);
    let mut aborted = None;
    let mut series = super::series::Series::default();
    loop {
        let done = controllers.wait(Some(Instant::now() + TICK))?;
        metrics::record(MetricKind::Gauge, false, "vus", &[], run.vus.get() as f64);
        metrics::record(MetricKind::Gauge, false, "vus_max", &[], run.vus_max.get() as f64);
        metrics::with(|m| series.sample(t0.elapsed().as_secs_f64(), m));
        if done {
            break;
        }
        bar.tick(t0.elapsed(), &run);
        if aborted.is_none()
            && let Some(why) = abort_reason(&plan.thresholds, t0.elapsed())
        {
            eprintln!("load: {why}; stopping");
            aborted = Some(why);
            run.stop.set(true);
            for sc in &scenarios {
                sc.token.cancel();
            }
        }
    }
    bar.finish(t0.elapsed(), &run);
    let elapsed = t0.elapsed();
    if let Some(f) = &teardown {
        let _ = if f.params > 0 { f.callable.call((run.data.clone(),))? } else { f.callable.call(())? };
    }
    let segments = if plan.segment == Segment::WHOLE { Vec::new() } else { vec![plan.segment.label()] };
    let mut summary = Summary::new(metrics::stop(), elapsed, plan.thresholds, segments);
    summary.aborted = aborted;
    summary.series = series;
    Ok(summary)
}

/// Why the run must stop now: the first `abortOnFail` threshold that fails
/// once its `delayAbortEval` has passed.
fn abort_reason(thresholds: &[summary::Threshold], elapsed: Duration) -> Option<String> {
    let due: Vec<_> = thresholds.iter().filter(|t| t.abort_on_fail && elapsed >= t.delay_abort_eval).cloned().collect();
    if due.is_empty() {
        return None;
    }
    let verdicts = metrics::with(|m| summary::evaluate(&due, |name| m.get(name), elapsed));
    verdicts
        .into_iter()
        .find(|v| !v.passed)
        .map(|v| format!("threshold {}: {} failed", v.threshold.metric, v.threshold.source))
}

/// The live progress line on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    on: bool,
    ticks: u32,
    total: Duration,
}

impl Progress {
    fn new(on: bool, total: Duration) -> Self {
        let bar = (on && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar, on, ticks: 0, total }
    }

    fn line(elapsed: Duration, total: Duration, run: &Run) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        format!(
            "{:.1}s/{:.1}s  vus {}  iterations {} ({:.1}/s)  errors {}",
            secs,
            total.as_secs_f64(),
            run.vus.get(),
            run.iterations.get(),
            run.iterations.get() as f64 / secs,
            run.errors.get()
        )
    }

    fn tick(&mut self, elapsed: Duration, run: &Run) {
        self.ticks += 1;
        match &self.bar {
            Some(bar) => bar.set_message(Self::line(elapsed, self.total, run)),
            None if self.on && self.ticks.is_multiple_of(PLAIN_EVERY) => {
                eprintln!("load: {}", Self::line(elapsed, self.total, run));
            }
            None => {}
        }
    }

    fn finish(&mut self, elapsed: Duration, run: &Run) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(Self::line(elapsed, self.total, run));
        }
    }
}

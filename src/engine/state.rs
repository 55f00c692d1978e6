//! The engine's synchronous state machine: events and probe reports in, counters and histograms
//! out through the [`Recorder`], gauges and alert signals read from the per-domain measures
//! (`measures/`) on each tick.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::dedup::{Dedup, flag};
use super::measures::calls::Calls;
use super::measures::inputs::Inputs;
use super::measures::probes::Probes;
use super::measures::queues::Queues;
use super::measures::registrations::Registrations;
use super::measures::trunks::{Known, Trunks};
use super::measures::{CURRENT, MeasuresAt, Names};
use super::names::LabelSet;
use super::time::TimePolicy;
use super::{GaugePoint, GaugeSnapshot, Recorder, SharedSnapshot};
use crate::alert::{AlertEngine, SignalValue};
use crate::config::{Config, EngineConfig};
use crate::event::{Direction, VoipEvent, VoipEventKind};
use crate::metrics::{Metric, label};
use crate::probe::ProbeReport;
use crate::signal::{AlertScope, AlertSignal, Domain, GaugeWindow, SIGNALS};

pub use super::measures::probes::ProbeState;

/// How often the active-call table is swept for calls past their TTL.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The one owner of derived state.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    quality_window: Duration,
    retention: Duration,
    names: Names,
    calls: Calls,
    trunks: Trunks,
    registrations: Registrations,
    queues: Queues,
    probes: Probes,
    inputs: Inputs,
    last_sweep: Option<SystemTime>,
    time: TimePolicy,
    dedup: Dedup,
    alerts: AlertEngine,
    eval_interval: Duration,
    last_eval: Option<SystemTime>,
    snapshot: SharedSnapshot,
}

impl Engine {
    /// An engine for `cfg`, keeping windows long enough for every configured window and rule.
    pub fn new(cfg: &Config) -> Self {
        let e = &cfg.engine;
        let mut retention = e
            .registration_window
            .max(e.queue_window)
            .max(e.active_calls_window)
            .max(cfg.quality.window);
        for r in &cfg.alerts.rules {
            retention = retention.max(r.window);
        }
        Engine {
            cfg: e.clone(),
            quality_window: cfg.quality.window,
            retention,
            names: Names {
                pbxs: LabelSet::new(&[], e.max_series),
                trunks: LabelSet::new(&e.trunks, e.max_series),
                queues: LabelSet::new(&e.queues, e.max_series),
                codecs: LabelSet::new(&[], 50),
            },
            calls: Calls::with_cap(e.max_active_calls),
            trunks: Trunks::new(cfg.quality.clone(), retention),
            registrations: Registrations::new(retention),
            queues: Queues::new(retention),
            probes: Probes::new(cfg.quality.clone()),
            inputs: Inputs::default(),
            last_sweep: None,
            time: TimePolicy {
                max_skew: e.max_clock_skew,
                retention,
                arrival_only: e.event_time == crate::config::EventTimeSource::Arrival,
            },
            dedup: Dedup::new(e.dedup_capacity),
            alerts: AlertEngine::new(&cfg.alerts),
            eval_interval: cfg.alerts.evaluation_interval,
            last_eval: None,
            snapshot: Arc::new(GaugeSnapshot::default()),
        }
    }

    /// The window retention (the longest window any gauge or rule asks for).
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Calls in the active table.
    pub fn active_calls(&self) -> usize {
        self.calls.table.len()
    }

    /// The last published gauges.
    pub fn snapshot(&self) -> SharedSnapshot {
        self.snapshot.clone()
    }

    /// The last round of a probe target.
    pub fn probe(&self, target: &str) -> Option<&ProbeState> {
        self.probes.get(target)
    }

    fn measures(&self, now: SystemTime) -> MeasuresAt<'_> {
        MeasuresAt {
            names: &self.names,
            calls: &self.calls,
            trunks: &self.trunks,
            registrations: &self.registrations,
            queues: &self.queues,
            probes: &self.probes,
            inputs: &self.inputs,
            now,
        }
    }

    /// The value of `signal` for every group of `scope` over `window`, as the alert rules see it.
    pub fn signal(
        &self,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        self.measures(now).values(signal, scope, window)
    }

    /// Applies one VoIP event that arrived at `now`, at its own time (see `engine::time`),
    /// once (see `engine::dedup`).
    pub fn on_event(&mut self, ev: &VoipEvent, now: SystemTime, rec: &mut dyn Recorder) {
        let stamp = self.time.stamp(ev.meta.time, now);
        if let Some(reason) = stamp.adjusted {
            rec.add(Metric::EngineDropped, 1, &[(label::REASON, reason)]);
        }
        let (at, windowed) = (stamp.at, stamp.windowed);
        let names = &mut self.names;
        let pbx = names.pbxs.intern(Some(&ev.meta.pbx));
        let mut mark = |dedup: &mut Dedup, key: &str, bits: u8| {
            let (before, evicted) = dedup.mark(pbx, key, bits);
            if evicted > 0 {
                rec.add(
                    Metric::EngineDropped,
                    evicted,
                    &[(label::REASON, "dedup_evicted")],
                );
            }
            before
        };
        let duplicate = |rec: &mut dyn Recorder| {
            rec.add(Metric::EngineDropped, 1, &[(label::REASON, "duplicate")]);
        };
        match &ev.kind {
            VoipEventKind::CallStart {
                call_id,
                trunk,
                direction,
            } => {
                let before = mark(&mut self.dedup, call_id, flag::START);
                if before & flag::START != 0 {
                    return duplicate(rec);
                }
                // Its end came first (out of order): the call is over, never active.
                if before & (flag::END | flag::CDR) != 0 {
                    return;
                }
                let t = names.trunks.intern(trunk.as_deref());
                self.calls.table.start(pbx, call_id, t, *direction, at);
            }
            VoipEventKind::CallAnswer {
                call_id,
                post_dial_delay,
            } => {
                let before = mark(&mut self.dedup, call_id, flag::ANSWER);
                if before & flag::ANSWER != 0 {
                    return duplicate(rec);
                }
                let rung = self.calls.table.answer(pbx, call_id, at);
                if let Some(pdd) = (*post_dial_delay).filter(|_| !rung) {
                    let t = match self.calls.table.trunk_of(pbx, call_id) {
                        Some((t, _)) => t,
                        None => names.trunks.intern(None),
                    };
                    self.trunks
                        .record_pdd(names, (pbx, t), pdd, at, windowed, rec);
                }
            }
            VoipEventKind::CallRinging { call_id } => {
                if let Some((t, pdd)) = self.calls.table.ring(pbx, call_id, at) {
                    self.trunks
                        .record_pdd(names, (pbx, t), pdd, at, windowed, rec);
                }
            }
            VoipEventKind::CallEnd(r) | VoipEventKind::Cdr(r) => {
                let is_cdr = matches!(ev.kind, VoipEventKind::Cdr(_));
                let kind = if is_cdr { flag::CDR } else { flag::END };
                let quality = if r.quality.is_empty() {
                    0
                } else {
                    flag::END_QUALITY
                };
                let before = mark(&mut self.dedup, &r.call_id, kind | quality);
                if before & kind != 0 {
                    return duplicate(rec);
                }
                let known = self
                    .calls
                    .table
                    .end(pbx, &r.call_id, at)
                    .map(|e| Known {
                        trunk: Some(e.trunk),
                        direction: Some(e.direction),
                        talk: e.talk,
                    })
                    .unwrap_or_default();
                if before & (flag::END | flag::CDR) != 0 {
                    // The call was counted by its other end record (AMI's Hangup and Cdr, or
                    // FreeSWITCH's event and CDR file): take only the quality it lacked.
                    if quality != 0 && before & flag::END_QUALITY == 0 {
                        let t = names.trunks.intern(r.trunk.as_deref());
                        self.trunks.on_quality(
                            names,
                            (pbx, t),
                            r.direction,
                            &r.quality,
                            at,
                            windowed,
                            rec,
                        );
                    }
                    return duplicate(rec);
                }
                self.trunks
                    .on_call_record(names, pbx, r, known, is_cdr, at, windowed, rec);
            }
            VoipEventKind::Quality {
                call_id,
                trunk,
                direction,
                quality,
            } => {
                // A report with its own time is identified by it; a re-delivered one is dropped.
                if let Some(t) = ev.meta.time {
                    let nanos = t
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_nanos();
                    let key = format!("{call_id}\u{0}q{nanos}");
                    if mark(&mut self.dedup, &key, flag::SEEN) != 0 {
                        return duplicate(rec);
                    }
                }
                let known = self.calls.table.trunk_of(pbx, call_id);
                let t = match (trunk, known) {
                    (Some(_), _) => names.trunks.intern(trunk.as_deref()),
                    (None, Some((t, _))) => t,
                    (None, None) => names.trunks.intern(None),
                };
                let dir = match (direction, known) {
                    (Direction::Unknown, Some((_, d))) => d,
                    (d, _) => *d,
                };
                self.trunks
                    .on_quality(names, (pbx, t), dir, quality, at, windowed, rec);
            }
            VoipEventKind::Registration { outcome, kind, .. } => {
                self.registrations
                    .on_registration(names, pbx, *outcome, *kind, at, windowed, rec);
            }
            VoipEventKind::Queue {
                queue,
                outcome,
                wait_time,
                call_id,
            } => {
                if let Some(id) = call_id {
                    let key = format!("{id}\u{0}{queue}\u{0}{}", outcome.as_str());
                    if mark(&mut self.dedup, &key, flag::SEEN) != 0 {
                        return duplicate(rec);
                    }
                }
                let q = names.queues.intern(Some(queue));
                self.queues
                    .on_queue(names, (pbx, q), *outcome, *wait_time, at, windowed, rec);
            }
        }
    }

    /// The native inputs' state now (`kind`, name, up), for the `input_up` signal.
    pub fn observe_inputs(
        &mut self,
        inputs: impl IntoIterator<Item = (&'static str, String, bool)>,
    ) {
        self.inputs.observe(inputs);
    }

    /// Applies one finished probe round.
    pub fn on_probe(&mut self, r: &ProbeReport, now: SystemTime, rec: &mut dyn Recorder) {
        self.probes.on_probe(r, now, rec);
    }

    /// Applies one input of the engine task.
    pub fn handle(&mut self, input: super::EngineInput, now: SystemTime, rec: &mut dyn Recorder) {
        match input {
            super::EngineInput::Events(events) => {
                for ev in &events {
                    self.on_event(ev, now, rec);
                }
            }
            super::EngineInput::Probe(report) => self.on_probe(&report, now, rec),
        }
    }

    /// A tick that also evaluates the alert rules when due and emits their transitions; the
    /// gauges are built once, after the evaluation, so the firing gauge reflects it.
    pub fn tick_with(&mut self, now: SystemTime, rec: &mut dyn Recorder) -> SharedSnapshot {
        self.advance(now);
        self.report_dropped_calls(rec);
        let due = self
            .last_eval
            .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= self.eval_interval);
        if due {
            let m = MeasuresAt {
                names: &self.names,
                calls: &self.calls,
                trunks: &self.trunks,
                registrations: &self.registrations,
                queues: &self.queues,
                probes: &self.probes,
                inputs: &self.inputs,
                now,
            };
            for t in &self.alerts.evaluate(now, &m) {
                rec.alert(t);
            }
            for (rule, n) in self.alerts.take_suppressed() {
                rec.add(Metric::AlertsSuppressed, n, &[(label::ALERT_RULE, &rule)]);
            }
            self.last_eval = Some(now);
        }
        rec.flush();
        self.snapshot = Arc::new(self.gauges(now));
        self.snapshot.clone()
    }

    /// The alert state to keep across a restart (`alerts.state_file`).
    pub fn save_alerts(&self) -> Option<String> {
        Some(self.alerts.save_state())
    }

    /// Restores alert state saved by [`Engine::save_alerts`], so alerts firing before a restart
    /// are not announced twice.
    pub fn restore_alerts(
        &mut self,
        state: &str,
        now: SystemTime,
    ) -> Result<(), crate::alert::AlertError> {
        self.alerts.restore_state(state, now)
    }

    /// Time moves on: TTL sweep, active-call sampling.
    fn advance(&mut self, now: SystemTime) {
        let due = self
            .last_sweep
            .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= SWEEP_EVERY);
        if due {
            self.calls.table.sweep(now, self.cfg.call_ttl);
            self.last_sweep = Some(now);
        }
        self.calls.sample(now, self.cfg.active_calls_window);
    }

    /// Counts the calls the table dropped and the label values folded since the last report.
    fn report_dropped_calls(&mut self, rec: &mut dyn Recorder) {
        let (evicted, expired) = self.calls.table.take_dropped();
        let overflowed = self.names.take_overflowed();
        for (reason, n) in [
            ("call_evicted", evicted),
            ("call_expired", expired),
            ("label_overflow", overflowed),
        ] {
            if n > 0 {
                rec.add(Metric::EngineDropped, n, &[(label::REASON, reason)]);
            }
        }
    }

    /// Periodic work without alert evaluation: TTL sweep, active-call sampling, gauges.
    pub fn on_tick(&mut self, now: SystemTime) -> SharedSnapshot {
        self.advance(now);
        self.snapshot = Arc::new(self.gauges(now));
        self.snapshot.clone()
    }

    /// Every gauge of the signal table, each from the same `values` the alert rules read; a
    /// group with no value now publishes no point (a gauge says "now" or nothing).
    fn gauges(&self, now: SystemTime) -> GaugeSnapshot {
        let m = self.measures(now);
        let mut points = Vec::new();
        for def in SIGNALS {
            let Some((metric, gw)) = def.gauge else {
                continue;
            };
            let window = match gw {
                GaugeWindow::Quality => self.quality_window,
                GaugeWindow::Registration => self.cfg.registration_window,
                GaugeWindow::Queue => self.cfg.queue_window,
                GaugeWindow::Current => CURRENT,
            };
            let params: Vec<(f64, Option<(&'static str, &'static str)>)> = match def.param {
                Some(p) => p
                    .gauge_values
                    .iter()
                    .map(|(v, s)| (*v, Some((p.label, *s))))
                    .collect(),
                None => vec![(0.0, None)],
            };
            for (param, extra) in params {
                let Some(signal) = AlertSignal::from_def(def, param) else {
                    continue;
                };
                for v in m.values(signal, def.scopes[0], window) {
                    let Some(value) = v.value.filter(|x| x.is_finite()) else {
                        continue;
                    };
                    let mut labels = v.scope;
                    if def.domain == Domain::Probes {
                        let transport = labels
                            .first()
                            .and_then(|(_, t)| self.probes.transport_of(t))
                            .unwrap_or(label::OTHER);
                        labels.push((label::TRANSPORT, transport.to_string()));
                    }
                    if let Some((k, s)) = extra {
                        labels.push((k, s.to_string()));
                    }
                    points.push(GaugePoint {
                        metric,
                        labels,
                        value,
                    });
                }
            }
        }
        for (rule, severity, n) in self.alerts.firing() {
            points.push(GaugePoint {
                metric: Metric::AlertsFiring,
                labels: vec![
                    (label::ALERT_RULE, rule),
                    (label::ALERT_SEVERITY, severity.as_str().to_string()),
                ],
                value: n as f64,
            });
        }
        GaugeSnapshot { points }
    }

    /// Prunes windows of scopes that have been silent for longer than the retention, so a PBX or
    /// queue that disappears does not hold memory for months.
    pub fn prune(&mut self, now: SystemTime) {
        self.registrations.prune(now);
        self.queues.prune(now);
        self.trunks.prune(now);
    }
}

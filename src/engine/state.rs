//! The engine's synchronous state machine: events and probe reports in, counters and histograms
//! out through the [`Recorder`], gauges recomputed on each tick.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::calls::{ActiveCalls, DropTracker, Ended};
use super::names::LabelSet;
use super::stats::{CallCounts, QueueCounts, RegCounts, SHORT_CALL_SECONDS};
use super::window::SlidingWindow;
use super::{GaugePoint, GaugeSnapshot, Labels, Recorder, SharedSnapshot};
use crate::alert::AlertEngine;
use crate::config::{Config, EngineConfig, QualityConfig, SipTransport};
use crate::event::{
    CallRecord, Direction, Disposition, QualityFields, QueueOutcome, RegistrationKind,
    RegistrationOutcome, VoipEvent, VoipEventKind,
};
use crate::metrics::{Metric, label};
use crate::probe::{ProbeReport, RequestOutcome};
use crate::quality;

/// Most post-dial-delay samples kept per trunk for the percentile gauges.
const PDD_SAMPLES: usize = 4096;
/// Quantiles of the post-dial-delay gauge.
const PDD_QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];
/// MOS bounds of the below-ratio gauges (the seed's escalation and "unacceptable" lines).
const MOS_BOUNDS: [(f64, &str); 2] = [(3.5, "3.5"), (3.0, "3.0")];
/// How often the active-call table is swept for calls past their TTL.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Per (pbx, trunk) windows.
#[derive(Debug)]
struct TrunkState {
    calls: SlidingWindow<CallCounts>,
    pdd: VecDeque<(SystemTime, f64)>,
}

/// Latest state of one probe target.
#[derive(Debug, Clone)]
pub struct ProbeState {
    /// Transport of the last round.
    pub transport: SipTransport,
    /// Loss of the last round.
    pub loss_ratio: f64,
    /// Jitter of the last round.
    pub jitter: Option<Duration>,
    /// Median RTT of the last round.
    pub rtt_median: Option<Duration>,
    /// Up in the last round.
    pub up: bool,
    /// Consecutive rounds not up.
    pub down_rounds: u64,
    /// Estimated network MOS of the last round (none when nothing answered).
    pub mos: Option<quality::Estimate>,
    /// When the last round ended.
    pub at: SystemTime,
}

/// The one owner of derived state.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    quality: QualityConfig,
    retention: Duration,
    pub(super) pbxs: LabelSet,
    pub(super) trunks: LabelSet,
    pub(super) queues: LabelSet,
    codecs: LabelSet,
    pub(super) calls: ActiveCalls,
    pub(super) drops: HashMap<u32, DropTracker>,
    trunk_state: HashMap<(u32, u32), TrunkState>,
    pub(super) registrations: HashMap<u32, SlidingWindow<RegCounts>>,
    pub(super) queue_state: HashMap<(u32, u32), SlidingWindow<QueueCounts>>,
    pub(super) probes: BTreeMap<String, ProbeState>,
    last_sweep: Option<SystemTime>,
    /// Taken out while it evaluates (it reads the rest of the engine).
    alerts: Option<AlertEngine>,
    eval_interval: Duration,
    last_eval: Option<SystemTime>,
    snapshot: SharedSnapshot,
}

fn status_class(code: u16) -> &'static str {
    match code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        600..=699 => "6xx",
        _ => label::OTHER,
    }
}

/// Q.850 causes are 1..=127; anything else folds into `other` to keep the label set bounded.
/// Written into `buf` so the per-CDR path allocates nothing.
fn hangup_cause_label(cause: u16, buf: &mut [u8; 3]) -> &str {
    if !(1..=127).contains(&cause) {
        return label::OTHER;
    }
    let (mut n, mut start) = (cause, buf.len());
    while let Some(i) = start.checked_sub(1) {
        buf[i] = b'0' + (n % 10) as u8;
        start = i;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[start..]).unwrap_or(label::OTHER)
}

/// Nearest-rank quantile: the smallest value with at least `q` of the samples at or below it.
/// Selection, not a sort: the gauges are rebuilt every tick, over up to 4,096 samples per trunk.
fn quantile(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    let (_, v, _) = samples.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*v)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
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
            quality: cfg.quality.clone(),
            retention,
            pbxs: LabelSet::new(&[], e.max_series),
            trunks: LabelSet::new(&e.trunks, e.max_series),
            queues: LabelSet::new(&e.queues, e.max_series),
            codecs: LabelSet::new(&[], 50),
            calls: ActiveCalls::default(),
            drops: HashMap::new(),
            trunk_state: HashMap::new(),
            registrations: HashMap::new(),
            queue_state: HashMap::new(),
            probes: BTreeMap::new(),
            last_sweep: None,
            alerts: Some(AlertEngine::new(&cfg.alerts)),
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
        self.calls.len()
    }

    /// The last published gauges.
    pub fn snapshot(&self) -> SharedSnapshot {
        self.snapshot.clone()
    }

    fn trunk(&mut self, pbx: u32, trunk: u32) -> &mut TrunkState {
        let retention = self.retention;
        self.trunk_state
            .entry((pbx, trunk))
            .or_insert_with(|| TrunkState {
                calls: SlidingWindow::new(retention),
                pdd: VecDeque::new(),
            })
    }

    /// Applies one VoIP event.
    pub fn on_event(&mut self, ev: &VoipEvent, now: SystemTime, rec: &mut dyn Recorder) {
        let pbx = self.pbxs.intern(Some(&ev.meta.pbx));
        match &ev.kind {
            VoipEventKind::CallStart {
                call_id,
                trunk,
                direction,
            } => {
                let t = self.trunks.intern(trunk.as_deref());
                self.calls.start(pbx, call_id, t, *direction, now);
            }
            VoipEventKind::CallAnswer {
                call_id,
                post_dial_delay,
            } => {
                self.calls.answer(pbx, call_id, now);
                if let Some(pdd) = post_dial_delay {
                    let t = match self.calls.trunk_of(pbx, call_id) {
                        Some((t, _)) => t,
                        None => self.trunks.intern(None),
                    };
                    self.record_pdd(pbx, t, *pdd, now, rec);
                }
            }
            VoipEventKind::CallEnd(r) => {
                let ended = self.calls.end(pbx, &r.call_id, now);
                self.on_call_record(pbx, r, ended, false, now, rec);
            }
            VoipEventKind::Cdr(r) => {
                let ended = self.calls.end(pbx, &r.call_id, now);
                self.on_call_record(pbx, r, ended, true, now, rec);
            }
            VoipEventKind::Quality {
                call_id,
                trunk,
                direction,
                quality,
            } => {
                let known = self.calls.trunk_of(pbx, call_id);
                let t = match (trunk, known) {
                    (Some(_), _) => self.trunks.intern(trunk.as_deref()),
                    (None, Some((t, _))) => t,
                    (None, None) => self.trunks.intern(None),
                };
                let dir = match (direction, known) {
                    (Direction::Unknown, Some((_, d))) => d,
                    (d, _) => *d,
                };
                self.on_quality(pbx, t, dir, quality, now, rec);
            }
            VoipEventKind::Registration { outcome, kind, .. } => {
                self.on_registration(pbx, *outcome, *kind, now, rec);
            }
            VoipEventKind::Queue {
                queue,
                outcome,
                wait_time,
                ..
            } => {
                let q = self.queues.intern(Some(queue));
                self.on_queue(pbx, q, *outcome, *wait_time, now, rec);
            }
        }
    }

    fn record_pdd(
        &mut self,
        pbx: u32,
        trunk: u32,
        pdd: Duration,
        now: SystemTime,
        rec: &mut dyn Recorder,
    ) {
        let secs = pdd.as_secs_f64();
        rec.record(
            Metric::CallPostDialDelay,
            secs,
            &[
                (label::PBX, self.pbxs.name(pbx)),
                (label::TRUNK, self.trunks.name(trunk)),
            ],
        );
        let ts = self.trunk(pbx, trunk);
        ts.pdd.push_back((now, secs));
        if ts.pdd.len() > PDD_SAMPLES {
            ts.pdd.pop_front();
        }
    }

    fn on_call_record(
        &mut self,
        pbx: u32,
        r: &CallRecord,
        ended: Option<Ended>,
        is_cdr: bool,
        now: SystemTime,
        rec: &mut dyn Recorder,
    ) {
        let started_on = ended.map(|e| e.trunk);
        let trunk = match (&r.trunk, started_on) {
            (Some(name), _) => self.trunks.intern(Some(name)),
            (None, Some(t)) => t,
            (None, None) => self.trunks.intern(None),
        };
        // Borrowed from the interned names: no allocation per record. The borrows end before
        // the `&mut self` calls below.
        let (pbx_name, trunk_name) = (self.pbxs.name(pbx), self.trunks.name(trunk));
        let direction = match (r.direction, ended) {
            (Direction::Unknown, Some(e)) => e.direction,
            (d, _) => d,
        };
        let dir = direction.as_str();
        rec.add(
            Metric::Calls,
            1,
            &[
                (label::PBX, pbx_name),
                (label::TRUNK, trunk_name),
                (label::DIRECTION, dir),
                (label::DISPOSITION, r.disposition.as_str()),
            ],
        );
        let answered = r.disposition == Disposition::Answered;
        // Talk time as reported, else measured between the answer and end events.
        let talk = r
            .billable_duration
            .or(r.duration)
            .or(ended.and_then(|e| e.talk));
        if answered && let Some(d) = talk {
            rec.record(
                Metric::CallDuration,
                d.as_secs_f64(),
                &[
                    (label::PBX, pbx_name),
                    (label::TRUNK, trunk_name),
                    (label::DIRECTION, dir),
                ],
            );
        }
        if let Some(code) = r.sip_status {
            rec.add(
                Metric::SipResponses,
                1,
                &[
                    (label::PBX, pbx_name),
                    (label::TRUNK, trunk_name),
                    (label::STATUS_CLASS, status_class(code)),
                ],
            );
        }
        if let Some(cause) = r.hangup_cause {
            let mut buf = [0u8; 3];
            rec.add(
                Metric::HangupCauses,
                1,
                &[
                    (label::PBX, pbx_name),
                    (label::HANGUP_CAUSE, hangup_cause_label(cause, &mut buf)),
                ],
            );
        }
        // A CDR carries the whole call, including its post-dial delay; an end event's PDD came
        // with the answer event already when the PBX sent one, so only count it when given here.
        if let Some(pdd) = r.post_dial_delay
            && (is_cdr || !answered || started_on.is_none())
        {
            self.record_pdd(pbx, trunk, pdd, now, rec);
        }
        let ner_ok = matches!(
            r.disposition,
            Disposition::Answered
                | Disposition::Busy
                | Disposition::NoAnswer
                | Disposition::Cancelled
        ) || matches!(r.sip_status, Some(403 | 480 | 486 | 600 | 603));
        let ser_excluded = matches!(r.sip_status, Some(300..=399 | 401 | 402 | 407));
        let talk_s = if answered {
            talk.map(|d| d.as_secs_f64()).unwrap_or(0.0)
        } else {
            0.0
        };
        let counts = CallCounts {
            attempts: 1,
            answered: u64::from(answered),
            ner_ok: u64::from(ner_ok),
            ser_excluded: u64::from(ser_excluded),
            talk_seconds: talk_s,
            short: u64::from(answered && talk.is_some() && talk_s < SHORT_CALL_SECONDS),
            ..Default::default()
        };
        self.trunk(pbx, trunk).calls.add(now, counts);
        if !r.quality.is_empty() {
            self.on_quality(pbx, trunk, direction, &r.quality, now, rec);
        }
    }

    fn on_quality(
        &mut self,
        pbx: u32,
        trunk: u32,
        direction: Direction,
        q: &QualityFields,
        now: SystemTime,
        rec: &mut dyn Recorder,
    ) {
        // Borrowed from the interned names, as in `on_call_record`.
        let (pbx_name, trunk_name) = (self.pbxs.name(pbx), self.trunks.name(trunk));
        let dir = direction.as_str();
        if let Some(m) = q.reported_mos {
            rec.record(
                Metric::CallMosReported,
                m,
                &[
                    (label::PBX, pbx_name),
                    (label::TRUNK, trunk_name),
                    (label::DIRECTION, dir),
                ],
            );
        }
        let Some(est) = quality::estimate_call(q, &self.quality) else {
            return;
        };
        let codec_id = self.codecs.intern(Some(&est.codec));
        let labels = [
            (label::PBX, pbx_name),
            (label::TRUNK, trunk_name),
            (label::CODEC, self.codecs.name(codec_id)),
            (label::DIRECTION, dir),
            // A wideband score (G.107.1, R up to 129) must not be compared with a narrowband one.
            (
                label::CODEC_BAND,
                if est.wideband {
                    "wideband"
                } else {
                    "narrowband"
                },
            ),
        ];
        rec.record(Metric::CallMos, est.mos, &labels);
        rec.record(Metric::CallRFactor, est.r, &labels);
        self.trunk(pbx, trunk)
            .calls
            .add(now, CallCounts::mos(est.mos));
    }

    fn on_registration(
        &mut self,
        pbx: u32,
        outcome: RegistrationOutcome,
        kind: RegistrationKind,
        now: SystemTime,
        rec: &mut dyn Recorder,
    ) {
        let kind_s = match kind {
            RegistrationKind::Endpoint => "endpoint",
            RegistrationKind::Trunk => "trunk",
        };
        rec.add(
            Metric::RegistrationAttempts,
            1,
            &[
                (label::PBX, self.pbxs.name(pbx)),
                (label::REGISTRATION_OUTCOME, outcome.as_str()),
                (label::REGISTRATION_KIND, kind_s),
            ],
        );
        // Expiries and unregistrations are counted but are not REGISTER attempts: they would
        // dilute (or inflate) the failure ratio that pages.
        let c = match outcome {
            RegistrationOutcome::Success => RegCounts {
                success: 1,
                failure: 0,
            },
            RegistrationOutcome::Failure => RegCounts {
                success: 0,
                failure: 1,
            },
            _ => return,
        };
        let retention = self.retention;
        self.registrations
            .entry(pbx)
            .or_insert_with(|| SlidingWindow::new(retention))
            .add(now, c);
    }

    fn on_queue(
        &mut self,
        pbx: u32,
        queue: u32,
        outcome: QueueOutcome,
        wait: Option<Duration>,
        now: SystemTime,
        rec: &mut dyn Recorder,
    ) {
        let (p, q) = (self.pbxs.name(pbx), self.queues.name(queue));
        rec.add(
            Metric::QueueCalls,
            1,
            &[
                (label::PBX, p),
                (label::QUEUE, q),
                (label::QUEUE_OUTCOME, outcome.as_str()),
            ],
        );
        if let (Some(w), QueueOutcome::Answer | QueueOutcome::Abandon) = (wait, outcome) {
            rec.record(
                Metric::QueueWaitTime,
                w.as_secs_f64(),
                &[
                    (label::PBX, p),
                    (label::QUEUE, q),
                    (label::QUEUE_OUTCOME, outcome.as_str()),
                ],
            );
        }
        let c = match outcome {
            QueueOutcome::Join => QueueCounts {
                joined: 1,
                ..Default::default()
            },
            QueueOutcome::Answer => QueueCounts {
                answered: 1,
                ..Default::default()
            },
            QueueOutcome::Abandon => QueueCounts {
                abandoned: 1,
                ..Default::default()
            },
        };
        let retention = self.retention;
        self.queue_state
            .entry((pbx, queue))
            .or_insert_with(|| SlidingWindow::new(retention))
            .add(now, c);
    }

    /// Applies one finished probe round.
    pub fn on_probe(&mut self, r: &ProbeReport, now: SystemTime, rec: &mut dyn Recorder) {
        let target = r.target.as_str();
        let transport = r.transport.as_str();
        for o in &r.outcomes {
            match o {
                RequestOutcome::Answered { status, rtt } => {
                    rec.add(
                        Metric::ProbeRequests,
                        1,
                        &[
                            (label::PROBE_TARGET, target),
                            (label::TRANSPORT, transport),
                            (label::PROBE_OUTCOME, "success"),
                            (label::STATUS_CLASS, status_class(*status)),
                        ],
                    );
                    rec.record(
                        Metric::ProbeRtt,
                        rtt.as_secs_f64(),
                        &[(label::PROBE_TARGET, target), (label::TRANSPORT, transport)],
                    );
                }
                RequestOutcome::Timeout | RequestOutcome::Error(_) => {
                    let outcome = if matches!(o, RequestOutcome::Timeout) {
                        "timeout"
                    } else {
                        "error"
                    };
                    rec.add(
                        Metric::ProbeRequests,
                        1,
                        &[
                            (label::PROBE_TARGET, target),
                            (label::TRANSPORT, transport),
                            (label::PROBE_OUTCOME, outcome),
                            (label::STATUS_CLASS, "none"),
                        ],
                    );
                }
            }
        }
        // A REGISTER round is one `sip.probe.requests` point with its round outcome.
        if let Some(reg) = &r.register {
            rec.add(
                Metric::ProbeRequests,
                1,
                &[
                    (label::PROBE_TARGET, target),
                    (label::TRANSPORT, transport),
                    (label::PROBE_OUTCOME, reg.outcome.as_str()),
                    (label::STATUS_CLASS, reg.status.map_or("none", status_class)),
                ],
            );
            if let Some(d) = reg.duration {
                rec.record(
                    Metric::ProbeRegisterDuration,
                    d.as_secs_f64(),
                    &[(label::PROBE_TARGET, target), (label::TRANSPORT, transport)],
                );
            }
        }
        for d in [r.connect_duration, r.tls_handshake_duration]
            .into_iter()
            .flatten()
        {
            rec.record(
                Metric::ProbeConnectDuration,
                d.as_secs_f64(),
                &[(label::PROBE_TARGET, target), (label::TRANSPORT, transport)],
            );
        }
        let drops = [
            ("unmatched", r.dropped.unmatched),
            ("late", r.dropped.late),
            ("duplicate", r.dropped.duplicate),
            ("spoofed", r.dropped.spoofed),
            ("malformed", r.dropped.malformed),
        ];
        for (reason, n) in drops {
            if n > 0 {
                rec.add(
                    Metric::ProbeResponsesDropped,
                    n,
                    &[
                        (label::PROBE_TARGET, target),
                        (label::PROBE_DROP_REASON, reason),
                    ],
                );
            }
        }
        let mos = r.rtt_median.map(|rtt| {
            quality::estimate_probe(
                rtt,
                r.jitter.unwrap_or_default(),
                r.loss_ratio,
                &self.quality,
            )
        });
        let down_rounds = match (r.up, self.probes.get(target)) {
            (true, _) => 0,
            (false, Some(prev)) => prev.down_rounds + 1,
            (false, None) => 1,
        };
        self.probes.insert(
            r.target.clone(),
            ProbeState {
                transport: r.transport,
                loss_ratio: r.loss_ratio,
                jitter: r.jitter,
                rtt_median: r.rtt_median,
                up: r.up,
                down_rounds,
                mos,
                at: now,
            },
        );
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

    /// A tick that also evaluates the alert rules when due and emits their transitions.
    pub fn tick_with(&mut self, now: SystemTime, rec: &mut dyn Recorder) -> SharedSnapshot {
        self.on_tick(now);
        let due = self
            .last_eval
            .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= self.eval_interval);
        if due && let Some(mut alerts) = self.alerts.take() {
            let transitions =
                alerts.evaluate(now, &super::signals::SignalsAt { engine: self, now });
            for t in &transitions {
                rec.alert(t);
            }
            for (rule, n) in alerts.take_suppressed() {
                rec.add(Metric::AlertsSuppressed, n, &[(label::ALERT_RULE, &rule)]);
            }
            self.alerts = Some(alerts);
            self.last_eval = Some(now);
            // The firing gauge must reflect this evaluation, not the previous one.
            self.snapshot = Arc::new(self.gauges(now));
        }
        self.snapshot.clone()
    }

    /// The alert state to keep across a restart (`alerts.state_file`).
    pub fn save_alerts(&self) -> Option<String> {
        self.alerts.as_ref().map(AlertEngine::save_state)
    }

    /// Restores alert state saved by [`Engine::save_alerts`], so alerts firing before a restart
    /// are not announced twice.
    pub fn restore_alerts(
        &mut self,
        state: &str,
        now: SystemTime,
    ) -> Result<(), crate::alert::AlertError> {
        match self.alerts.as_mut() {
            Some(a) => a.restore_state(state, now),
            None => Ok(()),
        }
    }

    /// Periodic work: TTL sweep, active-call sampling, gauges. Returns the new snapshot.
    pub fn on_tick(&mut self, now: SystemTime) -> SharedSnapshot {
        let due = self
            .last_sweep
            .is_none_or(|t| now.duration_since(t).unwrap_or_default() >= SWEEP_EVERY);
        if due {
            self.calls.sweep(now, self.cfg.call_ttl);
            self.last_sweep = Some(now);
        }
        let window = self.cfg.active_calls_window;
        let mut pbx_ids: Vec<u32> = self.calls.per_trunk().map(|((p, _), _)| p).collect();
        pbx_ids.sort_unstable();
        pbx_ids.dedup();
        for p in pbx_ids {
            let total = self.calls.total_for(p);
            self.drops.entry(p).or_default().sample(now, total, window);
        }
        self.snapshot = Arc::new(self.gauges(now));
        self.snapshot.clone()
    }

    fn gauges(&self, now: SystemTime) -> GaugeSnapshot {
        let mut points = Vec::new();
        let mut push = |metric: Metric, labels: Labels, value: f64| {
            points.push(GaugePoint {
                metric,
                labels,
                value,
            })
        };
        let p = |id: u32| (label::PBX, self.pbxs.name(id).to_string());
        let t = |id: u32| (label::TRUNK, self.trunks.name(id).to_string());

        let mut active: Vec<_> = self.calls.per_trunk().collect();
        active.sort_unstable();
        for ((pbx, trunk), n) in active {
            push(Metric::CallsActive, vec![p(pbx), t(trunk)], n as f64);
        }

        let mut regs: Vec<_> = self.registrations.iter().collect();
        regs.sort_unstable_by_key(|(k, _)| **k);
        for (pbx, w) in regs {
            let c = w.sum(now, self.cfg.registration_window);
            if let Some(r) = ratio(c.failure, c.success + c.failure) {
                push(Metric::RegistrationFailureRatio, vec![p(*pbx)], r);
            }
        }

        let mut queues: Vec<_> = self.queue_state.iter().collect();
        queues.sort_unstable_by_key(|(k, _)| **k);
        for ((pbx, q), w) in queues {
            let c = w.sum(now, self.cfg.queue_window);
            if let Some(r) = ratio(c.abandoned, c.answered + c.abandoned) {
                push(
                    Metric::QueueAbandonRatio,
                    vec![p(*pbx), (label::QUEUE, self.queues.name(*q).to_string())],
                    r,
                );
            }
        }

        let mut trunks: Vec<_> = self.trunk_state.iter().collect();
        trunks.sort_unstable_by_key(|(k, _)| **k);
        let qwin = self.quality.window;
        for ((pbx, trunk), ts) in trunks {
            let c = ts.calls.sum(now, qwin);
            let base = || vec![p(*pbx), t(*trunk)];
            if c.mos_count > 0 {
                push(Metric::CallMosMean, base(), c.mos_sum / c.mos_count as f64);
                for (bound, bound_s) in MOS_BOUNDS {
                    if let Some(r) = c.mos_below_ratio(bound) {
                        let mut l = base();
                        l.push((label::MOS_BOUND, bound_s.to_string()));
                        push(Metric::CallMosBelowRatio, l, r);
                    }
                }
            }
            if let Some(r) = ratio(c.answered, c.attempts) {
                push(Metric::KpiAsr, base(), r);
            }
            if let Some(r) = ratio(c.ner_ok, c.attempts) {
                push(Metric::KpiNer, base(), r);
            }
            if let Some(r) = ratio(c.answered, c.attempts.saturating_sub(c.ser_excluded)) {
                push(Metric::KpiSer, base(), r);
            }
            if c.answered > 0 {
                push(Metric::KpiAcd, base(), c.talk_seconds / c.answered as f64);
                push(
                    Metric::KpiShortCallRatio,
                    base(),
                    c.short as f64 / c.answered as f64,
                );
            }
            let mut pdd: Vec<f64> = ts
                .pdd
                .iter()
                .filter(|(at, _)| now.duration_since(*at).unwrap_or_default() <= qwin)
                .map(|(_, v)| *v)
                .collect();
            for (q, q_s) in PDD_QUANTILES {
                if let Some(v) = quantile(&mut pdd, q) {
                    let mut l = base();
                    l.push((label::QUANTILE, q_s.to_string()));
                    push(Metric::KpiPostDialDelay, l, v);
                }
            }
        }

        for (name, st) in &self.probes {
            let l = || {
                vec![
                    (label::PROBE_TARGET, name.clone()),
                    (label::TRANSPORT, st.transport.as_str().to_string()),
                ]
            };
            push(Metric::ProbeLossRatio, l(), st.loss_ratio);
            push(Metric::ProbeUp, l(), if st.up { 1.0 } else { 0.0 });
            if let Some(j) = st.jitter {
                push(Metric::ProbeJitter, l(), j.as_secs_f64());
            }
            if let Some(m) = &st.mos {
                push(Metric::ProbeMos, l(), m.mos);
            }
        }
        if let Some(alerts) = &self.alerts {
            for (rule, severity, n) in alerts.firing() {
                push(
                    Metric::AlertsFiring,
                    vec![
                        (label::ALERT_RULE, rule),
                        (label::ALERT_SEVERITY, severity.as_str().to_string()),
                    ],
                    n as f64,
                );
            }
        }
        GaugeSnapshot { points }
    }

    /// Every trunk's window sum over `span`.
    pub(super) fn trunk_windows(
        &self,
        now: SystemTime,
        span: Duration,
    ) -> Vec<((u32, u32), CallCounts)> {
        self.trunk_state
            .iter()
            .map(|(k, ts)| (*k, ts.calls.sum(now, span)))
            .collect()
    }

    /// Prunes windows of scopes that have been silent for longer than the retention, so a PBX or
    /// queue that disappears does not hold memory for months.
    pub fn prune(&mut self, now: SystemTime) {
        for w in self.registrations.values_mut() {
            w.prune(now);
        }
        self.registrations.retain(|_, w| !w.is_empty());
        for w in self.queue_state.values_mut() {
            w.prune(now);
        }
        self.queue_state.retain(|_, w| !w.is_empty());
        let retention = self.retention;
        for ts in self.trunk_state.values_mut() {
            ts.calls.prune(now);
            while ts
                .pdd
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at).unwrap_or_default() > retention)
            {
                ts.pdd.pop_front();
            }
        }
        self.trunk_state
            .retain(|_, ts| !ts.calls.is_empty() || !ts.pdd.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_cause_labels_are_the_decimal_cause_or_other() {
        for cause in 0..=1000u16 {
            let mut buf = [0u8; 3];
            let want = if (1..=127).contains(&cause) {
                cause.to_string()
            } else {
                label::OTHER.to_string()
            };
            assert_eq!(hangup_cause_label(cause, &mut buf), want, "cause {cause}");
        }
        let mut buf = [0u8; 3];
        assert_eq!(hangup_cause_label(u16::MAX, &mut buf), label::OTHER);
    }
}

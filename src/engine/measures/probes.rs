//! callpulse's own SIP probes: the last round of each target, and how many rounds in a row it
//! has been down.
//!
//! A value is a statement about now: a round with no answer has no RTT, jitter or MOS (they are
//! absent, not repeated from the last good round), and a target whose reports stop goes stale
//! after two of its own intervals.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::{CURRENT, value};
use crate::alert::SignalValue;
use crate::config::{QualityConfig, SipTransport};
use crate::engine::Recorder;
use crate::engine::measures::trunks::status_class;
use crate::metrics::{Metric, label};
use crate::probe::{ProbeReport, RequestOutcome};
use crate::quality;
use crate::signal::{AlertScope, AlertSignal};

/// Latest state of one probe target.
#[derive(Debug, Clone)]
pub struct ProbeState {
    /// Transport of the last round.
    pub transport: SipTransport,
    /// Loss of the last round.
    pub loss_ratio: f64,
    /// Jitter as of the last round, when that round was answered.
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
    /// Time between the last two rounds, once there were two.
    pub gap: Option<Duration>,
    /// INVITE probes: the last call's figures, when it was answered and carried media.
    pub call: Option<CallFigures>,
    /// REGISTER probes: consecutive rounds that did not register.
    pub register_failed_rounds: Option<u64>,
}

/// What the gauges of an INVITE probe say about its last call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFigures {
    /// E-model of the call ([`call_estimate`]); `None` without enough RTP to judge.
    pub estimate: Option<quality::Estimate>,
    /// RTP loss by RFC 3550 sequence accounting.
    pub loss_ratio: Option<f64>,
    /// RFC 3550 interarrival jitter.
    pub jitter: Option<Duration>,
    /// Median echoed-RTP round trip.
    pub rtt: Option<Duration>,
}

/// The E-model of a synthetic call, by the project's `quality` code: the codec's Ie and Bpl,
/// Ppl = (RTP lost + jitter-buffer late discards) / expected, and mouth-to-ear delay = median
/// echoed RTT / 2 + the modelled buffer's depth + the call's packet time + the codec's
/// look-ahead + `quality.extra_delay`. The buffer is the probe's own fixed 2 × ptime, not
/// `quality.jitter_buffer_*` (those size a buffer from jitter that endpoints report); without
/// echoes (a peer that sends its own stream) the network delay is unknown and taken as 0.
/// `None` when too few packets arrived to count loss.
pub fn call_estimate(
    media: &crate::probe::CallMedia,
    cfg: &QualityConfig,
) -> Option<quality::Estimate> {
    let loss = media.effective_loss_ratio?;
    let mut fixed = cfg.clone();
    fixed.jitter_buffer_min = media.jitter_buffer;
    fixed.jitter_buffer_factor = 0.0;
    let fields = crate::event::QualityFields {
        loss_ratio: Some(loss),
        jitter: media.jitter,
        rtt: media.rtt_median,
        codec: Some(media.codec.as_str().to_string()),
        ..Default::default()
    };
    let mut inputs = quality::mapping::call_inputs(&fields, &fixed)?;
    // Packetisation is the call's ptime, whatever the codec table assumes.
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    inputs.mouth_to_ear_ms += ms(media.ptime) - ms(inputs.codec.packet_time);
    inputs.codec.packet_time = media.ptime;
    Some(inputs.estimate())
}

/// The probe domain.
#[derive(Debug)]
pub(in crate::engine) struct Probes {
    targets: BTreeMap<String, ProbeState>,
    quality: QualityConfig,
}

impl Probes {
    /// No targets yet.
    pub fn new(quality: QualityConfig) -> Self {
        Probes {
            targets: BTreeMap::new(),
            quality,
        }
    }

    /// The transport label of a target.
    pub fn transport_of(&self, target: &str) -> Option<&'static str> {
        self.targets.get(target).map(|s| s.transport.as_str())
    }

    /// Applies one finished probe round.
    pub fn on_probe(&mut self, r: &ProbeReport, now: SystemTime, rec: &mut dyn Recorder) {
        let target = r.target.as_str();
        let transport = r.transport.as_str();
        for o in &r.outcomes {
            let status = match o {
                RequestOutcome::Answered { status, rtt } => {
                    rec.record(
                        Metric::ProbeRtt,
                        rtt.as_secs_f64(),
                        &[(label::PROBE_TARGET, target), (label::TRANSPORT, transport)],
                    );
                    status_class(*status)
                }
                _ => "none",
            };
            rec.add(
                Metric::ProbeRequests,
                1,
                &[
                    (label::PROBE_TARGET, target),
                    (label::TRANSPORT, transport),
                    (label::PROBE_OUTCOME, o.outcome_label()),
                    (label::STATUS_CLASS, status),
                ],
            );
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
        let mut call_figures = None;
        if let Some(call) = &r.call {
            rec.add(
                Metric::ProbeRequests,
                1,
                &[
                    (label::PROBE_TARGET, target),
                    (label::TRANSPORT, transport),
                    (label::PROBE_OUTCOME, call.outcome.as_str()),
                    (
                        label::STATUS_CLASS,
                        call.status.map_or("none", status_class),
                    ),
                ],
            );
            for (metric, d) in [
                (Metric::ProbeCallSetupDuration, call.setup),
                (Metric::ProbeCallPostDialDelay, call.post_dial_delay),
            ] {
                if let Some(d) = d {
                    rec.record(
                        metric,
                        d.as_secs_f64(),
                        &[(label::PROBE_TARGET, target), (label::TRANSPORT, transport)],
                    );
                }
            }
            // Gauges speak only of a call that succeeded: a failed one has no figures.
            if call.outcome == crate::probe::CallOutcome::Ok
                && let Some(media) = &call.media
            {
                call_figures = Some(CallFigures {
                    estimate: call_estimate(media, &self.quality),
                    loss_ratio: media.loss_ratio,
                    jitter: media.jitter,
                    rtt: media.rtt_median,
                });
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
        let prev = self.targets.get(target);
        let down_rounds = match (r.up, prev) {
            (true, _) => 0,
            (false, Some(prev)) => prev.down_rounds + 1,
            (false, None) => 1,
        };
        let gap = prev.and_then(|p| now.duration_since(p.at).ok());
        let register_failed_rounds = r.register.as_ref().map(|reg| {
            if reg.outcome == crate::probe::RegisterOutcome::Ok {
                0
            } else {
                prev.and_then(|p| p.register_failed_rounds).unwrap_or(0) + 1
            }
        });
        self.targets.insert(
            r.target.clone(),
            ProbeState {
                transport: r.transport,
                loss_ratio: r.loss_ratio,
                // The estimator carries over rounds; a round nobody answered has no jitter.
                jitter: r.rtt_median.and(r.jitter),
                rtt_median: r.rtt_median,
                up: r.up,
                down_rounds,
                mos,
                at: now,
                gap,
                call: call_figures,
                register_failed_rounds,
            },
        );
    }

    /// Every target's value of a probe signal. `window` is the rule's (a round older than it is
    /// stale), or [`CURRENT`] for the gauges (stale after two of the target's own intervals).
    pub fn values(
        &self,
        signal: AlertSignal,
        _scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        self.targets
            .iter()
            .map(|(name, st)| {
                let v = match signal {
                    AlertSignal::ProbeMos => st.mos.as_ref().map(|m| m.mos),
                    AlertSignal::ProbeLoss => Some(st.loss_ratio),
                    AlertSignal::ProbeRtt => st.rtt_median.map(|d| d.as_secs_f64()),
                    AlertSignal::ProbeJitter => st.jitter.map(|d| d.as_secs_f64()),
                    AlertSignal::ProbeUp => Some(if st.up { 1.0 } else { 0.0 }),
                    AlertSignal::ProbeDownRounds => Some(st.down_rounds as f64),
                    AlertSignal::ProbeCallMos => st
                        .call
                        .as_ref()
                        .and_then(|c| c.estimate.as_ref())
                        .map(|e| e.mos),
                    AlertSignal::ProbeCallRFactor => st
                        .call
                        .as_ref()
                        .and_then(|c| c.estimate.as_ref())
                        .map(|e| e.r),
                    AlertSignal::ProbeRtpLoss => st.call.as_ref().and_then(|c| c.loss_ratio),
                    AlertSignal::ProbeRtpJitter => st
                        .call
                        .as_ref()
                        .and_then(|c| c.jitter)
                        .map(|d| d.as_secs_f64()),
                    AlertSignal::ProbeRtpRtt => st
                        .call
                        .as_ref()
                        .and_then(|c| c.rtt)
                        .map(|d| d.as_secs_f64()),
                    AlertSignal::ProbeRegisterFailedRounds => {
                        st.register_failed_rounds.map(|n| n as f64)
                    }
                    _ => None,
                };
                let age = now.duration_since(st.at).unwrap_or_default();
                let fresh = if window == CURRENT {
                    st.gap
                        .is_none_or(|g| age <= 2 * g.max(Duration::from_secs(1)))
                } else {
                    age <= window.max(Duration::from_secs(1))
                };
                value(
                    vec![(label::PROBE_TARGET, name.clone())],
                    if fresh { v } else { None },
                    u64::from(fresh),
                )
            })
            .collect()
    }

    /// The state of one target.
    pub fn get(&self, target: &str) -> Option<&ProbeState> {
        self.targets.get(target)
    }
}

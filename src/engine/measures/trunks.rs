//! Ended calls per (PBX, trunk): attempts and outcomes for the RFC 6076 / E.425 KPIs, talk time,
//! computed MOS and post-dial delay, each in a sliding window bucketed by event time.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::stats::{CallCounts, SHORT_CALL_SECONDS};
use super::{Names, group, ratio, value};
use crate::alert::SignalValue;
use crate::config::QualityConfig;
use crate::engine::Recorder;
use crate::engine::window::SlidingWindow;
use crate::event::{CallRecord, Direction, Disposition, QualityFields};
use crate::metrics::{Metric, label};
use crate::quality;
use crate::signal::{AlertScope, AlertSignal};

/// Most post-dial-delay samples kept per trunk for the percentile gauges.
const PDD_SAMPLES: usize = 4096;

/// Per (pbx, trunk) windows.
#[derive(Debug)]
struct TrunkState {
    calls: SlidingWindow<CallCounts>,
    pdd: VecDeque<(SystemTime, f64)>,
}

/// What the active-call table knew of a call that ended, for records that do not say.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::engine) struct Known {
    /// The trunk the call started on.
    pub trunk: Option<u32>,
    /// Its direction at start.
    pub direction: Option<Direction>,
    /// Answer to end, measured between event times.
    pub talk: Option<Duration>,
}

/// The trunk domain.
#[derive(Debug)]
pub(in crate::engine) struct Trunks {
    state: HashMap<(u32, u32), TrunkState>,
    quality: QualityConfig,
    retention: Duration,
}

pub(in crate::engine) fn status_class(code: u16) -> &'static str {
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
pub(in crate::engine) fn quantile(samples: &mut [f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    let (_, v, _) = samples.select_nth_unstable_by(rank - 1, f64::total_cmp);
    Some(*v)
}

/// Contents of one scope group: the window's counts and its post-dial delays.
#[derive(Debug, Default)]
struct Group {
    calls: CallCounts,
    pdd: Vec<f64>,
}

impl std::ops::AddAssign for Group {
    fn add_assign(&mut self, o: Self) {
        self.calls += o.calls;
        self.pdd.extend(o.pdd);
    }
}

impl Trunks {
    /// An empty domain keeping `retention` of history.
    pub fn new(quality: QualityConfig, retention: Duration) -> Self {
        Trunks {
            state: HashMap::new(),
            quality,
            retention,
        }
    }

    fn trunk(&mut self, pbx: u32, trunk: u32) -> &mut TrunkState {
        let retention = self.retention;
        self.state
            .entry((pbx, trunk))
            .or_insert_with(|| TrunkState {
                calls: SlidingWindow::new(retention),
                pdd: VecDeque::new(),
            })
    }

    /// Records one post-dial delay at event time `at` (`windowed` false for a late event: the
    /// histogram counts it, the current window does not).
    pub fn record_pdd(
        &mut self,
        names: &Names,
        (pbx, trunk): (u32, u32),
        pdd: Duration,
        at: SystemTime,
        windowed: bool,
        rec: &mut dyn Recorder,
    ) {
        let secs = pdd.as_secs_f64();
        rec.record(
            Metric::CallPostDialDelay,
            secs,
            &[
                (label::PBX, names.pbxs.name(pbx)),
                (label::TRUNK, names.trunks.name(trunk)),
            ],
        );
        if !windowed {
            return;
        }
        let ts = self.trunk(pbx, trunk);
        ts.pdd.push_back((at, secs));
        if ts.pdd.len() > PDD_SAMPLES {
            ts.pdd.pop_front();
        }
    }

    /// One ended call (`voip.call.end` or `voip.cdr`), at event time `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_call_record(
        &mut self,
        names: &mut Names,
        pbx: u32,
        r: &CallRecord,
        known: Known,
        is_cdr: bool,
        at: SystemTime,
        windowed: bool,
        rec: &mut dyn Recorder,
    ) {
        let trunk = match (&r.trunk, known.trunk) {
            (Some(name), _) => names.trunks.intern(Some(name)),
            (None, Some(t)) => t,
            (None, None) => names.trunks.intern(None),
        };
        // Borrowed from the interned names: no allocation per record.
        let (pbx_name, trunk_name) = (names.pbxs.name(pbx), names.trunks.name(trunk));
        let direction = match (r.direction, known.direction) {
            (Direction::Unknown, Some(d)) => d,
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
        // Talk time as reported, else measured between the answer and end events' own times.
        let talk = r.billable_duration.or(r.duration).or(known.talk);
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
            && (is_cdr || !answered || known.trunk.is_none())
        {
            self.record_pdd(names, (pbx, trunk), pdd, at, windowed, rec);
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
        if windowed {
            let counts = CallCounts {
                attempts: 1,
                answered: u64::from(answered),
                ner_ok: u64::from(ner_ok),
                ser_excluded: u64::from(ser_excluded),
                talk_seconds: talk_s,
                short: u64::from(answered && talk.is_some() && talk_s < SHORT_CALL_SECONDS),
                ..Default::default()
            };
            self.trunk(pbx, trunk).calls.add(at, counts);
        }
        if !r.quality.is_empty() {
            self.on_quality(
                names,
                (pbx, trunk),
                direction,
                &r.quality,
                at,
                windowed,
                rec,
            );
        }
    }

    /// Quality of a call leg, mid-call or at its end: the E-model per report, into the MOS window.
    #[allow(clippy::too_many_arguments)]
    pub fn on_quality(
        &mut self,
        names: &mut Names,
        (pbx, trunk): (u32, u32),
        direction: Direction,
        q: &QualityFields,
        at: SystemTime,
        windowed: bool,
        rec: &mut dyn Recorder,
    ) {
        let dir = direction.as_str();
        if let Some(m) = q.reported_mos {
            rec.record(
                Metric::CallMosReported,
                m,
                &[
                    (label::PBX, names.pbxs.name(pbx)),
                    (label::TRUNK, names.trunks.name(trunk)),
                    (label::DIRECTION, dir),
                ],
            );
        }
        let Some(est) = quality::estimate_call(q, &self.quality) else {
            return;
        };
        let codec_id = names.codecs.intern(Some(&est.codec));
        let labels = [
            (label::PBX, names.pbxs.name(pbx)),
            (label::TRUNK, names.trunks.name(trunk)),
            (label::CODEC, names.codecs.name(codec_id)),
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
        if windowed {
            self.trunk(pbx, trunk)
                .calls
                .add(at, CallCounts::mos(est.mos));
        }
    }

    /// The value of a trunk signal for every group of `scope`, over `window` as of `now`.
    pub fn values(
        &self,
        names: &Names,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        let wants_pdd = matches!(signal, AlertSignal::PostDialDelay(_));
        // `at >= since` is `now - at <= window` (a sample ahead of `now` counts too), without
        // a checked subtraction per sample: every tick reads up to 4,096 samples per trunk.
        let since = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
        let groups = group(self.state.iter().map(|((p, t), ts)| {
            let key = match scope {
                AlertScope::Pbx => vec![names.pbx(*p)],
                _ => vec![names.pbx(*p), names.trunk(*t)],
            };
            let pdd = if wants_pdd {
                ts.pdd
                    .iter()
                    .filter(|(at, _)| *at >= since)
                    .map(|(_, v)| *v)
                    .collect()
            } else {
                Vec::new()
            };
            let g = Group {
                calls: ts.calls.sum(now, window),
                pdd,
            };
            (key, g)
        }));
        groups
            .into_iter()
            .map(|(scope, mut g)| {
                let c = &g.calls;
                let (v, samples) = match signal {
                    AlertSignal::CallMosMean => (
                        (c.mos_count > 0).then(|| c.mos_sum / c.mos_count as f64),
                        c.mos_count,
                    ),
                    AlertSignal::CallMosBelowRatio(b) => (c.mos_below_ratio(b), c.mos_count),
                    AlertSignal::Asr => (ratio(c.answered, c.attempts), c.attempts),
                    AlertSignal::Ner => (ratio(c.ner_ok, c.attempts), c.attempts),
                    AlertSignal::Ser => (
                        ratio(c.answered, c.attempts.saturating_sub(c.ser_excluded)),
                        c.attempts,
                    ),
                    AlertSignal::Acd => (
                        (c.answered > 0).then(|| c.talk_seconds / c.answered as f64),
                        c.answered,
                    ),
                    AlertSignal::ShortCallRatio => (ratio(c.short, c.answered), c.answered),
                    AlertSignal::PostDialDelay(q) => {
                        let n = g.pdd.len() as u64;
                        (quantile(&mut g.pdd, q), n)
                    }
                    _ => (None, 0),
                };
                value(scope, v, samples)
            })
            .collect()
    }

    /// Drops history older than the retention, and trunks left with none.
    pub fn prune(&mut self, now: SystemTime) {
        let retention = self.retention;
        for ts in self.state.values_mut() {
            ts.calls.prune(now);
            ts.pdd
                .retain(|(at, _)| now.duration_since(*at).unwrap_or_default() <= retention);
        }
        self.state
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

//! A simulated PBX: calls of every disposition on a good and a poor trunk, registrations with a
//! burst of failures, queue joins and abandons, and a sudden loss of calls — as OTLP log records
//! in the input contract, so the demo drives the real receiver and engine.
//!
//! Pure and seeded: `step(second)` yields the records of one simulated second.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

/// Length of the scenario; it repeats.
pub const CYCLE_SECONDS: u64 = 1200;
/// Simulated seconds during which registrations fail in a burst.
pub const REGISTRATION_BURST: std::ops::Range<u64> = 120..180;
/// Simulated seconds during which carrier-b's calls sound poor.
pub const POOR_QUALITY: std::ops::Range<u64> = 240..720;
/// The simulated second at which half of carrier-a's calls drop.
pub const OUTAGE_AT: u64 = 600;
/// Simulated seconds of a queue abandon surge.
pub const ABANDON_SURGE: std::ops::Range<u64> = 780..1000;

/// The trunk with good quality.
pub const GOOD_TRUNK: &str = "carrier-a";
/// The trunk whose quality degrades.
pub const POOR_TRUNK: &str = "carrier-b";
/// The queue.
pub const QUEUE: &str = "support";

/// How often a live call reports its quality (RTCP-style, as AMI `RTCPReceived` or a FreeSWITCH
/// RTCP event would), so a degradation shows while calls are still up.
pub const QUALITY_EVERY: u64 = 20;

#[derive(Debug, Clone)]
struct LiveCall {
    id: String,
    trunk: &'static str,
    ends_at: u64,
    poor: bool,
    next_report: u64,
}

/// The simulated PBX.
#[derive(Debug)]
pub struct SimulatedPbx {
    rng: fastrand::Rng,
    live: Vec<LiveCall>,
    next_id: u64,
    time_unix_nano: u64,
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn f(key: &str, v: f64) -> KeyValue {
    kv(key, any_value::Value::DoubleValue(v))
}

fn i(key: &str, v: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(v))
}

impl SimulatedPbx {
    /// A PBX whose traffic is reproducible from `seed`.
    pub fn new(seed: u64) -> Self {
        SimulatedPbx {
            rng: fastrand::Rng::with_seed(seed),
            live: Vec::new(),
            next_id: 0,
            time_unix_nano: 0,
        }
    }

    /// Calls in progress.
    pub fn active(&self) -> usize {
        self.live.len()
    }

    fn record(&self, event: &str, attributes: Vec<KeyValue>) -> LogRecord {
        LogRecord {
            time_unix_nano: self.time_unix_nano,
            event_name: event.to_string(),
            severity_number: 9,
            severity_text: "INFO".into(),
            attributes,
            ..Default::default()
        }
    }

    /// The records of simulated second `second` (counted from the demo's start), stamped with
    /// `time_unix_nano`.
    pub fn step(&mut self, second: u64, time_unix_nano: u64) -> Vec<LogRecord> {
        self.time_unix_nano = time_unix_nano;
        let phase = second % CYCLE_SECONDS;
        let mut out = Vec::new();
        self.calls(phase, &mut out);
        self.registrations(phase, &mut out);
        self.queue(phase, &mut out);
        out
    }

    fn calls(&mut self, phase: u64, out: &mut Vec<LogRecord>) {
        // The outage: half of carrier-a's calls end at once with Q.850 38 (network out of order).
        if phase == OUTAGE_AT {
            let mut keep = Vec::new();
            let mut dropped = 0;
            for c in std::mem::take(&mut self.live) {
                let good = c.trunk == GOOD_TRUNK;
                if good && dropped % 2 == 0 {
                    out.push(self.end(&c, "answered", 200, 38));
                } else {
                    keep.push(c);
                }
                if good {
                    dropped += 1;
                }
            }
            self.live = keep;
        }
        // Mid-call quality: carrier-b sounds poor while its network is degraded, for every call on
        // it, not only the calls that started during the degradation.
        let degraded = POOR_QUALITY.contains(&phase);
        let mut reports = Vec::new();
        for c in &mut self.live {
            if c.next_report <= phase {
                c.next_report = phase + QUALITY_EVERY;
                c.poor = c.trunk == POOR_TRUNK && degraded;
                reports.push(c.clone());
            }
        }
        for c in reports {
            out.push(self.quality(&c));
        }
        // Calls whose time has come.
        let now_due: Vec<LiveCall> = self
            .live
            .iter()
            .filter(|c| c.ends_at <= phase)
            .cloned()
            .collect();
        self.live.retain(|c| c.ends_at > phase);
        for c in now_due {
            out.push(self.end(&c, "answered", 200, 16));
        }
        // New calls: ~0.6/s on carrier-a, ~0.3/s on carrier-b; about 1 in 5 never gets answered.
        for (trunk, rate) in [(GOOD_TRUNK, 0.6), (POOR_TRUNK, 0.3)] {
            if self.rng.f64() >= rate {
                continue;
            }
            self.next_id += 1;
            let id = format!("demo-{}", self.next_id);
            let direction = if self.rng.bool() {
                "inbound"
            } else {
                "outbound"
            };
            out.push(self.record(
                "voip.call.start",
                vec![
                    s("voip.call.id", &id),
                    s("voip.trunk", trunk),
                    s("voip.call.direction", direction),
                ],
            ));
            let roll = self.rng.f64();
            let (disposition, status, cause) = match roll {
                r if r < 0.80 => ("answered", 200, 16),
                r if r < 0.88 => ("busy", 486, 17),
                r if r < 0.94 => ("no_answer", 480, 19),
                r if r < 0.97 => ("cancelled", 487, 16),
                r if r < 0.99 => ("failed", 503, 41),
                _ => ("congestion", 503, 34),
            };
            let pdd = 0.8 + self.rng.f64() * 2.5;
            if disposition == "answered" {
                out.push(self.record(
                    "voip.call.answer",
                    vec![s("voip.call.id", &id), f("voip.call.post_dial_delay", pdd)],
                ));
                let talk = 20 + self.rng.u64(0..280);
                let poor = trunk == POOR_TRUNK && POOR_QUALITY.contains(&phase);
                self.live.push(LiveCall {
                    id,
                    trunk,
                    ends_at: phase + talk,
                    poor,
                    next_report: phase + QUALITY_EVERY,
                });
            } else {
                let c = LiveCall {
                    id,
                    trunk,
                    ends_at: phase,
                    poor: false,
                    next_report: phase,
                };
                out.push(self.end(&c, disposition, status, cause));
            }
        }
    }

    fn end(&self, c: &LiveCall, disposition: &str, status: i64, cause: i64) -> LogRecord {
        self.record(
            "voip.call.end",
            vec![
                s("voip.call.id", &c.id),
                s("voip.call.disposition", disposition),
                s("voip.trunk", c.trunk),
                i("sip.response.status_code", status),
                i("voip.call.hangup_cause", cause),
            ],
        )
    }

    fn quality(&mut self, c: &LiveCall) -> LogRecord {
        // Good: G.711 across a clean network. Poor: G.729 with 4 % loss, 40 ms jitter, 300 ms RTT.
        let (codec, loss, jitter, rtt) = if c.poor {
            (
                "G729",
                0.03 + self.rng.f64() * 0.02,
                0.04,
                0.30 + self.rng.f64() * 0.05,
            )
        } else {
            (
                "PCMU",
                self.rng.f64() * 0.004,
                0.004,
                0.04 + self.rng.f64() * 0.02,
            )
        };
        self.record(
            "voip.quality",
            vec![
                s("voip.call.id", &c.id),
                s("voip.trunk", c.trunk),
                s("voip.codec", codec),
                f("voip.rtp.loss_ratio", loss),
                f("voip.rtp.jitter", jitter),
                f("voip.rtp.rtt", rtt),
            ],
        )
    }

    fn registrations(&mut self, phase: u64, out: &mut Vec<LogRecord>) {
        // Phones re-register at ~2/s; during the burst, 1/s more fail with 403 (a bad password push).
        let ok = 1 + u64::from(self.rng.bool()) + u64::from(self.rng.bool());
        for _ in 0..ok {
            out.push(self.record(
                "voip.registration",
                vec![
                    s("voip.registration.outcome", "success"),
                    i("sip.response.status_code", 200),
                ],
            ));
        }
        if REGISTRATION_BURST.contains(&phase) || self.rng.f64() < 0.01 {
            out.push(self.record(
                "voip.registration",
                vec![
                    s("voip.registration.outcome", "failure"),
                    i("sip.response.status_code", 403),
                ],
            ));
        }
    }

    fn queue(&mut self, phase: u64, out: &mut Vec<LogRecord>) {
        if self.rng.f64() >= 0.2 {
            return;
        }
        self.next_id += 1;
        let id = format!("demo-q-{}", self.next_id);
        out.push(self.record(
            "voip.queue.join",
            vec![s("voip.queue.name", QUEUE), s("voip.call.id", &id)],
        ));
        let abandon = if ABANDON_SURGE.contains(&phase) {
            0.4
        } else {
            0.05
        };
        let wait = 5.0 + self.rng.f64() * 90.0;
        let event = if self.rng.f64() < abandon {
            "voip.queue.abandon"
        } else {
            "voip.queue.answer"
        };
        out.push(self.record(
            event,
            vec![
                s("voip.queue.name", QUEUE),
                s("voip.call.id", &id),
                f("voip.queue.wait_time", wait),
            ],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(records: &[LogRecord], event: &str, attr: Option<(&str, &str)>) -> usize {
        records
            .iter()
            .filter(|r| r.event_name == event)
            .filter(|r| match attr {
                None => true,
                Some((k, v)) => r.attributes.iter().any(|a| {
                    a.key == k
                        && matches!(&a.value, Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) if s == v)
                }),
            })
            .count()
    }

    #[test]
    fn a_cycle_has_every_kind_of_event() {
        let mut pbx = SimulatedPbx::new(7);
        let mut all = Vec::new();
        let mut before_outage = 0;
        let mut after_outage = 0;
        for sec in 0..CYCLE_SECONDS {
            if sec == OUTAGE_AT {
                before_outage = pbx.active();
            }
            all.extend(pbx.step(sec, sec * 1_000_000_000));
            if sec == OUTAGE_AT {
                after_outage = pbx.active();
            }
        }
        for d in ["answered", "busy", "no_answer", "cancelled", "failed"] {
            assert!(
                count(&all, "voip.call.end", Some(("voip.call.disposition", d))) > 0,
                "{d}"
            );
        }
        assert!(count(&all, "voip.quality", Some(("voip.codec", "G729"))) > 10);
        assert!(count(&all, "voip.queue.abandon", None) > 5);
        let burst_failures = count(
            &all,
            "voip.registration",
            Some(("voip.registration.outcome", "failure")),
        );
        assert!(burst_failures >= 60, "{burst_failures}");
        // The outage takes away at least a fifth of the calls at once (what the drop rule looks for).
        assert!(before_outage >= 10, "{before_outage}");
        assert!(
            (after_outage as f64) < before_outage as f64 * 0.8,
            "{before_outage} → {after_outage}"
        );
    }

    #[test]
    fn reproducible_from_seed() {
        let (mut a, mut b) = (SimulatedPbx::new(1), SimulatedPbx::new(1));
        for sec in 0..100 {
            assert_eq!(a.step(sec, 0), b.step(sec, 0));
        }
    }
}

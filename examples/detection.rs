//! Time to detect, measured: each built-in rule's fault injected at t0 into steady traffic, in
//! simulated time through the real engine (the same `Engine` `callpulse run` uses), and the time
//! from t0 to `firing` and from recovery to `resolved`.
//!
//! Traffic: one PBX, calls arriving at 0.5/s on one trunk lasting 2–5 minutes, each sending an
//! RTCP-style quality report every 20 s while it lasts (as AMI `RTCPReceived` or a FreeSWITCH
//! RTCP event would), phones re-registering at 1/s with 1 % failures, a queue taking a call every
//! 10 s with 5 % abandons, an SBC probed every 60 s. Every event carries its own time.
//!
//! ```sh
//! cargo run --release --example detection
//! ```
//! prints a Markdown table (the one in `docs/alerts.md`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use callpulse::alert::{AlertState, names};
use callpulse::config::{Config, SipTransport};
use callpulse::engine::{Engine, EngineInput, MemoryRecorder};
use callpulse::event::*;
use callpulse::probe::{DroppedResponses, ProbeReport, RequestOutcome};

const PBX: &str = "pbx-1";
const WARMUP: u64 = 900;
const FAULT_FOR: u64 = 1200;
const AFTER: u64 = 1200;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Every call's audio degrades (G.729, 4 % loss, 40 ms jitter, 320 ms RTT).
    Mos,
    /// 10 % of REGISTERs fail.
    Registration,
    /// 30 % of active calls end at once (a trunk flaps).
    Drop,
    /// 40 % of queue callers abandon.
    Queue,
    /// The SBC stops answering probes.
    Probe,
}

struct Call {
    id: String,
    started: u64,
    ends_at: u64,
    next_report: u64,
}

struct Sim {
    engine: Engine,
    rec: MemoryRecorder,
    rng: fastrand::Rng,
    live: Vec<Call>,
    next_id: u64,
    fault: Fault,
    /// Quality reports during the call (RTCP); else only one at the call's end (a CDR).
    interim: bool,
    /// When the fault began, while it lasts.
    fault_since: Option<u64>,
}

fn at(sec: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + sec)
}

fn ev(sec: u64, kind: VoipEventKind) -> VoipEvent {
    VoipEvent {
        meta: EventMeta {
            pbx: PBX.into(),
            time: Some(at(sec)),
        },
        kind,
    }
}

impl Sim {
    fn new(fault: Fault, interim: bool, seed: u64) -> Self {
        Sim {
            engine: Engine::new(&Config::default()),
            rec: MemoryRecorder::default(),
            rng: fastrand::Rng::with_seed(seed),
            live: Vec::new(),
            next_id: 0,
            fault,
            interim,
            fault_since: None,
        }
    }

    fn quality(&self, id: &str, poor: bool) -> VoipEventKind {
        let q = if poor {
            QualityFields {
                loss_ratio: Some(0.04),
                jitter: Some(Duration::from_millis(40)),
                rtt: Some(Duration::from_millis(320)),
                codec: Some("G729".into()),
                ..Default::default()
            }
        } else {
            QualityFields {
                loss_ratio: Some(0.002),
                jitter: Some(Duration::from_millis(4)),
                rtt: Some(Duration::from_millis(50)),
                codec: Some("PCMU".into()),
                ..Default::default()
            }
        };
        VoipEventKind::Quality {
            call_id: id.into(),
            trunk: Some("carrier-a".into()),
            direction: Direction::Outbound,
            quality: q,
        }
    }

    fn second(&mut self, sec: u64, faulty: bool, fault_starts: bool) {
        let mut out = Vec::new();
        let f = |x: Fault| faulty && self.fault == x;
        match (faulty, self.fault_since) {
            (true, None) => self.fault_since = Some(sec),
            (false, Some(_)) => self.fault_since = None,
            _ => {}
        }
        // The trunk flap: 30 % of calls end at once, at t0.
        if fault_starts && self.fault == Fault::Drop {
            let n = self.live.len() * 3 / 10;
            for c in self.live.drain(..n) {
                let mut r = CallRecord::new(c.id, Disposition::Answered);
                r.hangup_cause = Some(38);
                out.push(ev(sec, VoipEventKind::CallEnd(r)));
            }
        }
        // Calls arriving.
        if self.rng.f64() < 0.5 {
            self.next_id += 1;
            let id = format!("c{}", self.next_id);
            out.push(ev(
                sec,
                VoipEventKind::CallStart {
                    call_id: id.clone(),
                    direction: Direction::Outbound,
                    trunk: Some("carrier-a".into()),
                },
            ));
            out.push(ev(
                sec + 2,
                VoipEventKind::CallAnswer {
                    call_id: id.clone(),
                    post_dial_delay: Some(Duration::from_millis(1500)),
                },
            ));
            self.live.push(Call {
                id,
                started: sec,
                ends_at: sec + 120 + self.rng.u64(0..=180),
                next_report: sec + 20,
            });
        }
        // Mid-call quality reports and ends.
        let poor = f(Fault::Mos);
        for i in 0..self.live.len() {
            if self.interim && self.live[i].next_report <= sec {
                self.live[i].next_report += 20;
                out.push(ev(sec, self.quality(&self.live[i].id, poor)));
            }
        }
        let (ended, live): (Vec<Call>, Vec<Call>) =
            self.live.drain(..).partition(|c| c.ends_at <= sec);
        self.live = live;
        for c in ended {
            if !self.interim {
                // A CDR's figures average the whole call: poor when most of it was in the fault.
                let faulty = match (poor, self.fault_since) {
                    (true, Some(since)) => {
                        let len = (c.ends_at - c.started).max(1);
                        (c.ends_at - since.max(c.started)) * 2 > len
                    }
                    _ => false,
                };
                out.push(ev(sec, self.quality(&c.id, faulty)));
            }
            let mut r = CallRecord::new(c.id, Disposition::Answered);
            r.sip_status = Some(200);
            r.hangup_cause = Some(16);
            out.push(ev(sec, VoipEventKind::CallEnd(r)));
        }
        // Registrations.
        let p_fail = if f(Fault::Registration) { 0.10 } else { 0.01 };
        let outcome = if self.rng.f64() < p_fail {
            RegistrationOutcome::Failure
        } else {
            RegistrationOutcome::Success
        };
        out.push(ev(
            sec,
            VoipEventKind::Registration {
                outcome,
                kind: RegistrationKind::Endpoint,
                sip_status: None,
                trunk: None,
            },
        ));
        // The queue.
        if sec.is_multiple_of(10) {
            let p_abandon = if f(Fault::Queue) { 0.40 } else { 0.05 };
            let outcome = if self.rng.f64() < p_abandon {
                QueueOutcome::Abandon
            } else {
                QueueOutcome::Answer
            };
            out.push(ev(
                sec,
                VoipEventKind::Queue {
                    queue: "support".into(),
                    outcome,
                    call_id: Some(format!("q{sec}")),
                    wait_time: Some(Duration::from_secs(30)),
                },
            ));
        }
        let now = at(sec);
        self.engine
            .handle(EngineInput::Events(out), now, &mut self.rec);
        // The probe, every 60 s.
        if sec.is_multiple_of(60) {
            let up = !f(Fault::Probe);
            let report = ProbeReport {
                target: "sbc-1".into(),
                transport: SipTransport::Udp,
                at: now,
                outcomes: if up {
                    vec![
                        RequestOutcome::Answered {
                            status: 200,
                            rtt: Duration::from_millis(20)
                        };
                        10
                    ]
                } else {
                    vec![RequestOutcome::Timeout; 10]
                },
                loss_ratio: if up { 0.0 } else { 1.0 },
                jitter: up.then_some(Duration::from_millis(1)),
                rtt_median: up.then_some(Duration::from_millis(20)),
                up,
                connect_duration: None,
                tls_handshake_duration: None,
                dropped: DroppedResponses::default(),
                register: None,
                call: None,
            };
            self.engine
                .handle(EngineInput::Probe(report), now, &mut self.rec);
        }
        self.engine.tick_with(now, &mut self.rec);
    }
}

fn run(
    fault: Fault,
    interim: bool,
    rule: &str,
    seed: u64,
) -> (Option<u64>, Option<u64>, Vec<String>) {
    let mut sim = Sim::new(fault, interim, seed);
    let t0 = WARMUP;
    let recovery = t0 + FAULT_FOR;
    for sec in 0..recovery + AFTER {
        sim.second(sec, (t0..recovery).contains(&sec), sec == t0);
    }
    let when = |state: AlertState, from: u64| {
        sim.rec
            .alerts
            .iter()
            .filter(|a| a.rule == rule && a.state == state)
            .filter_map(|a| a.at.duration_since(at(from)).ok())
            .map(|d| d.as_secs())
            .next()
    };
    let others: Vec<String> = sim
        .rec
        .alerts
        .iter()
        .filter(|a| a.rule != rule && a.state == AlertState::Firing)
        .map(|a| a.rule.clone())
        .collect();
    let before = sim
        .rec
        .alerts
        .iter()
        .any(|a| a.rule == rule && a.at >= at(WARMUP / 2) && a.at < at(t0));
    // The first minutes fill the windows from nothing (a few failures among 20 REGISTERs can
    // pass 5 %); steady state is what the figures are about.
    assert!(!before, "{rule} fired in steady state, before its fault");
    let resolved_from = if fault == Fault::Drop { t0 } else { recovery };
    (
        when(AlertState::Firing, t0),
        when(AlertState::Resolved, resolved_from),
        others,
    )
}

fn mmss(s: Option<u64>) -> String {
    match s {
        Some(s) => format!("{}m{:02}s", s / 60, s % 60),
        None => "never".into(),
    }
}

fn main() {
    let cases = [
        (
            Fault::Mos,
            true,
            names::CALL_MOS_LOW,
            "all calls' audio degrades (G.729, 4 % loss, 40 ms jitter, 320 ms RTT), reported every 20 s during the call",
        ),
        (Fault::Mos, true, names::CALL_MOS_UNACCEPTABLE, "the same"),
        (
            Fault::Mos,
            false,
            names::CALL_MOS_LOW,
            "the same, quality reported only at each call's end (CDR)",
        ),
        (
            Fault::Mos,
            false,
            names::CALL_MOS_UNACCEPTABLE,
            "the same, quality only at call end",
        ),
        (
            Fault::Registration,
            true,
            names::REGISTRATION_FAILURES,
            "10 % of REGISTERs fail (1 % before)",
        ),
        (
            Fault::Drop,
            true,
            names::ACTIVE_CALLS_DROP,
            "30 % of active calls end at once",
        ),
        (
            Fault::Queue,
            true,
            names::QUEUE_ABANDON,
            "40 % of queue callers abandon (5 % before)",
        ),
        (
            Fault::Probe,
            true,
            names::PROBE_UNREACHABLE,
            "the SBC stops answering OPTIONS",
        ),
    ];
    println!(
        "| rule | fault injected at t0 | t0 → firing (3 seeds) | recovery → resolved (3 seeds) |"
    );
    println!("|---|---|---|---|");
    for (fault, interim, rule, what) in cases {
        let mut fired = Vec::new();
        let mut resolved = Vec::new();
        for seed in [1, 2, 3] {
            let (f, r, _) = run(fault, interim, rule, seed);
            fired.push(mmss(f));
            resolved.push(mmss(r));
        }
        let resolved_note = if fault == Fault::Drop {
            " (from t0)"
        } else {
            ""
        };
        println!(
            "| `{rule}` | {what} | {} | {}{resolved_note} |",
            fired.join(", "),
            resolved.join(", ")
        );
    }
}

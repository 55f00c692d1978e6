//! The `generic` preset: the input contract of `docs/schema.md` taken as is. Reads a record's
//! attributes in one pass into fixed slots, then builds the [`VoipEventKind`] its event name
//! calls for. Also holds the contract's value parsers (direction, outcome, kind) that the
//! native presets reuse, so a contract attribute means the same thing wherever it appears.
//!
//! [`Fields`] holds borrowed values ([`AnyRef`]) so that one reader serves both ways a record
//! arrives: `prost`'s decoded attributes ([`Fields::collect`]) and attributes read in place from
//! the encoded request ([`Fields::collect_wire`]), which is the ingest hot path.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::attributes::{contract, event, event_name};
use super::coerce::{self, AnyRef, Invalid, Problem};
use crate::event::{
    CallRecord, Direction, Disposition, QualityFields, QueueOutcome, RegistrationKind,
    RegistrationOutcome, VoipEventKind,
};
use crate::otlp_wire::Attr;

/// The event names of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContractEvent {
    CallStart,
    CallAnswer,
    CallRinging,
    CallEnd,
    Cdr,
    Quality,
    Registration,
    QueueJoin,
    QueueAnswer,
    QueueAbandon,
}

impl ContractEvent {
    /// The event named `name`, if it is one of the contract's.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            event::CALL_START => ContractEvent::CallStart,
            event::CALL_ANSWER => ContractEvent::CallAnswer,
            event::CALL_RINGING => ContractEvent::CallRinging,
            event::CALL_END => ContractEvent::CallEnd,
            event::CDR => ContractEvent::Cdr,
            event::QUALITY => ContractEvent::Quality,
            event::REGISTRATION => ContractEvent::Registration,
            event::QUEUE_JOIN => ContractEvent::QueueJoin,
            event::QUEUE_ANSWER => ContractEvent::QueueAnswer,
            event::QUEUE_ABANDON => ContractEvent::QueueAbandon,
            _ => return None,
        })
    }

    /// The contract spelling.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ContractEvent::CallStart => event::CALL_START,
            ContractEvent::CallAnswer => event::CALL_ANSWER,
            ContractEvent::CallRinging => event::CALL_RINGING,
            ContractEvent::CallEnd => event::CALL_END,
            ContractEvent::Cdr => event::CDR,
            ContractEvent::Quality => event::QUALITY,
            ContractEvent::Registration => event::REGISTRATION,
            ContractEvent::QueueJoin => event::QUEUE_JOIN,
            ContractEvent::QueueAnswer => event::QUEUE_ANSWER,
            ContractEvent::QueueAbandon => event::QUEUE_ABANDON,
        }
    }
}

// Slot indexes of the one-pass attribute read.
const CALL_ID: usize = 0;
const DIRECTION: usize = 1;
const TRUNK: usize = 2;
const DISPOSITION: usize = 3;
const SIP_STATUS: usize = 4;
const HANGUP_CAUSE: usize = 5;
const DURATION: usize = 6;
const BILLABLE: usize = 7;
const PDD: usize = 8;
const CODEC: usize = 9;
const LOSS: usize = 10;
const LOST: usize = 11;
const EXPECTED: usize = 12;
const JITTER: usize = 13;
const RTT: usize = 14;
const OWD: usize = 15;
const BURST: usize = 16;
const MOS: usize = 17;
const REG_OUTCOME: usize = 18;
const REG_KIND: usize = 19;
const QUEUE: usize = 20;
const WAIT: usize = 21;
const OTEL_EVENT_NAME: usize = 22;
const EVENT_NAME_ATTR: usize = 23;
const SLOTS: usize = 24;

#[inline]
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        contract::CALL_ID => CALL_ID,
        contract::DIRECTION => DIRECTION,
        contract::TRUNK => TRUNK,
        contract::DISPOSITION => DISPOSITION,
        contract::SIP_STATUS => SIP_STATUS,
        contract::HANGUP_CAUSE => HANGUP_CAUSE,
        contract::DURATION => DURATION,
        contract::BILLABLE_DURATION => BILLABLE,
        contract::POST_DIAL_DELAY => PDD,
        contract::CODEC => CODEC,
        contract::LOSS_RATIO => LOSS,
        contract::PACKETS_LOST => LOST,
        contract::PACKETS_EXPECTED => EXPECTED,
        contract::JITTER => JITTER,
        contract::RTT => RTT,
        contract::ONE_WAY_DELAY => OWD,
        contract::BURST_RATIO => BURST,
        contract::MOS => MOS,
        contract::REGISTRATION_OUTCOME => REG_OUTCOME,
        contract::REGISTRATION_KIND => REG_KIND,
        contract::QUEUE_NAME => QUEUE,
        contract::QUEUE_WAIT_TIME => WAIT,
        event_name::OTEL_EVENT_NAME => OTEL_EVENT_NAME,
        event_name::EVENT_NAME => EVENT_NAME_ATTR,
        _ => return None,
    })
}

/// A record's contract attributes, read in one pass.
pub(crate) struct Fields<'a>([Option<AnyRef<'a>>; SLOTS]);

impl<'a> Fields<'a> {
    /// Reads every contract attribute of `attrs` (unknown keys are skipped).
    #[inline]
    pub(crate) fn collect(attrs: &'a [KeyValue]) -> Self {
        Fields(coerce::collect_by(
            attrs
                .iter()
                .map(|kv| (kv.key.as_str(), kv.value.as_ref().map(AnyRef::from))),
            slot,
        ))
    }

    /// [`Self::collect`] over attributes read from the wire.
    #[inline]
    pub(crate) fn collect_wire(attrs: &[Attr<'a>]) -> Self {
        Fields(coerce::collect_by(
            attrs.iter().map(|a| (a.key, a.value)),
            slot,
        ))
    }

    /// The record's contract event: its `event_name` field, else `otel.event.name`, else the
    /// deprecated `event.name` — the first of them that is a contract name.
    pub(crate) fn event(&self, event_name: &str) -> Option<ContractEvent> {
        ContractEvent::from_name(event_name)
            .or_else(|| coerce::str_of(self.0[OTEL_EVENT_NAME]).and_then(ContractEvent::from_name))
            .or_else(|| coerce::str_of(self.0[EVENT_NAME_ATTR]).and_then(ContractEvent::from_name))
    }

    /// The contract's direction and trunk when a native record carries them too (a Collector
    /// processor may add them); they override what a preset guesses.
    pub(crate) fn overrides(&self, what: &'static str) -> Result<Overrides, Invalid> {
        let r = Reader { f: self, what };
        Ok(Overrides {
            direction: r.direction()?,
            trunk: r.string(TRUNK)?,
        })
    }
}

/// Contract attributes that override a preset's guesses.
#[derive(Debug, Default)]
pub(crate) struct Overrides {
    /// `voip.call.direction`, when present.
    pub direction: Option<Direction>,
    /// `voip.trunk`, when present.
    pub trunk: Option<String>,
}

/// Builds the event `ev` from its fields.
pub(crate) fn build(ev: ContractEvent, f: &Fields<'_>) -> Result<VoipEventKind, Invalid> {
    let r = Reader { f, what: ev.name() };
    Ok(match ev {
        ContractEvent::CallStart => VoipEventKind::CallStart {
            call_id: r.required_string(CALL_ID)?,
            direction: r.direction()?.unwrap_or_default(),
            trunk: r.string(TRUNK)?,
        },
        ContractEvent::CallAnswer => VoipEventKind::CallAnswer {
            call_id: r.required_string(CALL_ID)?,
            post_dial_delay: r.seconds(PDD)?,
        },
        ContractEvent::CallRinging => VoipEventKind::CallRinging {
            call_id: r.required_string(CALL_ID)?,
        },
        ContractEvent::CallEnd => VoipEventKind::CallEnd(r.call_record()?),
        ContractEvent::Cdr => VoipEventKind::Cdr(r.call_record()?),
        ContractEvent::Quality => VoipEventKind::Quality {
            call_id: r.required_string(CALL_ID)?,
            trunk: r.string(TRUNK)?,
            direction: r.direction()?.unwrap_or_default(),
            quality: r.quality()?,
        },
        ContractEvent::Registration => VoipEventKind::Registration {
            outcome: r.required(REG_OUTCOME, "success|failure|expired|unregistered", |s| {
                parse_registration_outcome(s)
            })?,
            kind: r
                .parsed(REG_KIND, "endpoint|trunk", parse_registration_kind)?
                .unwrap_or_default(),
            sip_status: r.with(SIP_STATUS, coerce::sip_status)?,
            trunk: r.string(TRUNK)?,
        },
        ContractEvent::QueueJoin | ContractEvent::QueueAnswer | ContractEvent::QueueAbandon => {
            VoipEventKind::Queue {
                queue: r.required_string(QUEUE)?,
                outcome: match ev {
                    ContractEvent::QueueJoin => QueueOutcome::Join,
                    ContractEvent::QueueAnswer => QueueOutcome::Answer,
                    _ => QueueOutcome::Abandon,
                },
                call_id: r.string(CALL_ID)?,
                wait_time: r.seconds(WAIT)?,
            }
        }
    })
}

/// Reads typed values out of [`Fields`], naming the event and key in every error.
struct Reader<'f, 'a> {
    f: &'f Fields<'a>,
    what: &'static str,
}

/// Every contract key, by slot (the in-place tests set each of them too).
pub(super) const KEYS: [&str; SLOTS] = [
    contract::CALL_ID,
    contract::DIRECTION,
    contract::TRUNK,
    contract::DISPOSITION,
    contract::SIP_STATUS,
    contract::HANGUP_CAUSE,
    contract::DURATION,
    contract::BILLABLE_DURATION,
    contract::POST_DIAL_DELAY,
    contract::CODEC,
    contract::LOSS_RATIO,
    contract::PACKETS_LOST,
    contract::PACKETS_EXPECTED,
    contract::JITTER,
    contract::RTT,
    contract::ONE_WAY_DELAY,
    contract::BURST_RATIO,
    contract::MOS,
    contract::REGISTRATION_OUTCOME,
    contract::REGISTRATION_KIND,
    contract::QUEUE_NAME,
    contract::QUEUE_WAIT_TIME,
    event_name::OTEL_EVENT_NAME,
    event_name::EVENT_NAME,
];

impl<'a> Reader<'_, 'a> {
    fn err(&self, i: usize, p: Problem) -> Invalid {
        Invalid::new(self.what, KEYS[i], p)
    }

    fn with<T>(
        &self,
        i: usize,
        read: impl FnOnce(AnyRef<'a>) -> Result<Option<T>, Problem>,
    ) -> Result<Option<T>, Invalid> {
        match self.f.0[i] {
            None => Ok(None),
            Some(v) => read(v).map_err(|p| self.err(i, p)),
        }
    }

    fn string(&self, i: usize) -> Result<Option<String>, Invalid> {
        self.with(i, |v| {
            coerce::text(v).map(|t| t.map(|t| t.trim().to_owned()))
        })
        .map(|s| s.filter(|s| !s.is_empty()))
    }

    fn required_string(&self, i: usize) -> Result<String, Invalid> {
        self.string(i)?.ok_or_else(|| self.err(i, Problem::Missing))
    }

    fn seconds(&self, i: usize) -> Result<Option<Duration>, Invalid> {
        self.with(i, coerce::seconds)
    }

    /// A string value parsed by `parse`; an unknown spelling is invalid.
    fn parsed<T>(
        &self,
        i: usize,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, Invalid> {
        self.with(i, |v| match coerce::text(v)? {
            None => Ok(None),
            Some(s) => parse(&s).map(Some).ok_or_else(|| Problem::BadValue {
                expected,
                value: coerce::shorten(&s),
            }),
        })
    }

    fn required<T>(
        &self,
        i: usize,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, Invalid> {
        self.parsed(i, expected, parse)?
            .ok_or_else(|| self.err(i, Problem::Missing))
    }

    fn direction(&self) -> Result<Option<Direction>, Invalid> {
        self.parsed(
            DIRECTION,
            "inbound|outbound|internal|unknown",
            parse_direction,
        )
    }

    fn call_record(&self) -> Result<CallRecord, Invalid> {
        Ok(CallRecord {
            call_id: self.required_string(CALL_ID)?,
            disposition: self.required(
                DISPOSITION,
                "answered|no_answer|busy|failed|cancelled|congestion",
                Disposition::parse,
            )?,
            duration: self.seconds(DURATION)?,
            billable_duration: self.seconds(BILLABLE)?,
            post_dial_delay: self.seconds(PDD)?,
            trunk: self.string(TRUNK)?,
            direction: self.direction()?.unwrap_or_default(),
            sip_status: self.with(SIP_STATUS, coerce::sip_status)?,
            hangup_cause: self.with(HANGUP_CAUSE, coerce::cause)?,
            quality: self.quality()?,
        })
    }

    fn quality(&self) -> Result<QualityFields, Invalid> {
        let loss_ratio = match self.with(LOSS, coerce::ratio)? {
            Some(r) => Some(r),
            None => loss_from_counts(
                self.with(LOST, coerce::number)?,
                self.with(EXPECTED, coerce::number)?,
            ),
        };
        let mos = self.with(MOS, coerce::number)?;
        if let Some(m) = mos
            && !(1.0..=5.0).contains(&m)
        {
            return Err(self.err(
                MOS,
                Problem::BadValue {
                    expected: "a MOS 1..5",
                    value: m.to_string(),
                },
            ));
        }
        let burst = self.with(BURST, coerce::number)?;
        if let Some(b) = burst
            && b < 0.0
        {
            return Err(self.err(
                BURST,
                Problem::BadValue {
                    expected: "a burst ratio ≥ 0",
                    value: b.to_string(),
                },
            ));
        }
        Ok(QualityFields {
            loss_ratio,
            jitter: self.seconds(JITTER)?,
            rtt: self.seconds(RTT)?,
            one_way_delay: self.seconds(OWD)?,
            burst_ratio: burst,
            codec: self.string(CODEC)?,
            reported_mos: mos,
        })
    }
}

/// Lost ÷ expected, clamped to 0..1 (RFC 3550's cumulative loss can go negative with
/// duplicates); `None` unless both are known and something was expected.
pub(crate) fn loss_from_counts(lost: Option<f64>, expected: Option<f64>) -> Option<f64> {
    match (lost, expected) {
        (Some(l), Some(e)) if e > 0.0 => Some((l / e).clamp(0.0, 1.0)),
        _ => None,
    }
}

/// The contract's direction spellings (plus `in`/`incoming`, `out`/`outgoing`, `local`).
pub(crate) fn parse_direction(s: &str) -> Option<Direction> {
    let s = s.trim();
    let is = |w: &str| s.eq_ignore_ascii_case(w);
    if is("inbound") || is("incoming") || is("in") {
        Some(Direction::Inbound)
    } else if is("outbound") || is("outgoing") || is("out") {
        Some(Direction::Outbound)
    } else if is("internal") || is("local") {
        Some(Direction::Internal)
    } else if is("unknown") {
        Some(Direction::Unknown)
    } else {
        None
    }
}

/// The contract's registration outcomes (plus `failed`).
pub(crate) fn parse_registration_outcome(s: &str) -> Option<RegistrationOutcome> {
    let s = s.trim();
    let is = |w: &str| s.eq_ignore_ascii_case(w);
    if is("success") {
        Some(RegistrationOutcome::Success)
    } else if is("failure") || is("failed") {
        Some(RegistrationOutcome::Failure)
    } else if is("expired") {
        Some(RegistrationOutcome::Expired)
    } else if is("unregistered") {
        Some(RegistrationOutcome::Unregistered)
    } else {
        None
    }
}

/// `endpoint` or `trunk`.
pub(crate) fn parse_registration_kind(s: &str) -> Option<RegistrationKind> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("endpoint") {
        Some(RegistrationKind::Endpoint)
    } else if s.eq_ignore_ascii_case("trunk") {
        Some(RegistrationKind::Trunk)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::coerce::tests::{d, i, kvl, s};
    use opentelemetry_proto::tonic::common::v1::AnyValue;

    fn attrs(pairs: Vec<(&str, AnyValue)>) -> Vec<KeyValue> {
        pairs
            .into_iter()
            .map(|(k, v)| KeyValue {
                key: k.into(),
                value: Some(v),
                ..Default::default()
            })
            .collect()
    }

    fn run(ev: ContractEvent, pairs: Vec<(&str, AnyValue)>) -> Result<VoipEventKind, String> {
        let a = attrs(pairs);
        build(ev, &Fields::collect(&a)).map_err(|e| e.to_string())
    }

    #[test]
    fn event_name_from_field_then_attributes() {
        let a = attrs(vec![("otel.event.name", s("voip.cdr"))]);
        let f = Fields::collect(&a);
        assert_eq!(f.event(""), Some(ContractEvent::Cdr));
        assert_eq!(f.event("voip.quality"), Some(ContractEvent::Quality));
        let a = attrs(vec![("event.name", s("voip.queue.join"))]);
        assert_eq!(
            Fields::collect(&a).event(""),
            Some(ContractEvent::QueueJoin)
        );
        let a = attrs(vec![("event.name", s("app.started"))]);
        assert_eq!(Fields::collect(&a).event(""), None);
        let a = attrs(vec![("otel.event.name", i(7))]);
        assert_eq!(Fields::collect(&a).event(""), None);
    }

    #[test]
    fn every_event_name_round_trips() {
        for ev in [
            ContractEvent::CallStart,
            ContractEvent::CallAnswer,
            ContractEvent::CallEnd,
            ContractEvent::Cdr,
            ContractEvent::Quality,
            ContractEvent::Registration,
            ContractEvent::QueueJoin,
            ContractEvent::QueueAnswer,
            ContractEvent::QueueAbandon,
        ] {
            assert_eq!(ContractEvent::from_name(ev.name()), Some(ev));
        }
    }

    #[test]
    fn call_start_and_answer() {
        assert_eq!(
            run(
                ContractEvent::CallStart,
                vec![
                    ("voip.call.id", s("c1")),
                    ("voip.call.direction", s("Outbound")),
                    ("voip.trunk", s("carrier-a")),
                    ("unknown.key", kvl(vec![])),
                ]
            ),
            Ok(VoipEventKind::CallStart {
                call_id: "c1".into(),
                direction: Direction::Outbound,
                trunk: Some("carrier-a".into()),
            })
        );
        assert_eq!(
            run(
                ContractEvent::CallAnswer,
                vec![
                    ("voip.call.id", i(42)),
                    ("voip.call.post_dial_delay", s("2.5"))
                ]
            ),
            Ok(VoipEventKind::CallAnswer {
                call_id: "42".into(),
                post_dial_delay: Some(Duration::from_millis(2500)),
            })
        );
        assert_eq!(
            run(ContractEvent::CallAnswer, vec![]).unwrap_err(),
            "voip.call.answer: missing voip.call.id"
        );
    }

    #[test]
    fn cdr_with_every_field_coerced() {
        let got = run(
            ContractEvent::Cdr,
            vec![
                ("voip.call.id", s("c2")),
                ("voip.call.disposition", s("ANSWERED")),
                ("voip.call.duration", d(65.0)),
                ("voip.call.billable_duration", s("60")),
                ("voip.call.post_dial_delay", s("1.25")),
                ("voip.trunk", s("carrier-b")),
                ("voip.call.direction", s("inbound")),
                ("sip.response.status_code", s("200")),
                ("voip.call.hangup_cause", d(16.0)),
                ("voip.codec", s("PCMA")),
                ("voip.rtp.packets_lost", s("30")),
                ("voip.rtp.packets_expected", i(1000)),
                ("voip.rtp.jitter", s("0.012")),
                ("voip.rtp.rtt", d(0.08)),
                ("voip.mos", s("4.1")),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            VoipEventKind::Cdr(CallRecord {
                call_id: "c2".into(),
                disposition: Disposition::Answered,
                duration: Some(Duration::from_secs(65)),
                billable_duration: Some(Duration::from_secs(60)),
                post_dial_delay: Some(Duration::from_millis(1250)),
                trunk: Some("carrier-b".into()),
                direction: Direction::Inbound,
                sip_status: Some(200),
                hangup_cause: Some(16),
                quality: QualityFields {
                    loss_ratio: Some(0.03),
                    jitter: Some(Duration::from_millis(12)),
                    rtt: Some(Duration::from_millis(80)),
                    one_way_delay: None,
                    burst_ratio: None,
                    codec: Some("PCMA".into()),
                    reported_mos: Some(4.1),
                },
            })
        );
    }

    #[test]
    fn call_end_needs_a_disposition() {
        assert_eq!(
            run(ContractEvent::CallEnd, vec![("voip.call.id", s("c3"))]).unwrap_err(),
            "voip.call.end: missing voip.call.disposition"
        );
        let VoipEventKind::CallEnd(r) = run(
            ContractEvent::CallEnd,
            vec![
                ("voip.call.id", s("c3")),
                ("voip.call.disposition", s("busy")),
                ("sip.response.status_code", i(486)),
                ("voip.call.hangup_cause", s("17")),
            ],
        )
        .unwrap() else {
            panic!("not a call end")
        };
        assert_eq!(
            (r.disposition, r.sip_status, r.hangup_cause),
            (Disposition::Busy, Some(486), Some(17))
        );
    }

    #[test]
    fn wrong_types_are_invalid_with_the_key_named() {
        let base = || vec![("voip.call.id", s("c4"))];
        let cases: Vec<(Vec<(&str, AnyValue)>, &str)> = vec![
            (
                vec![("voip.call.disposition", kvl(vec![]))],
                "voip.cdr: voip.call.disposition: expected a string, got kvlist",
            ),
            (
                vec![("voip.call.disposition", s("sideways"))],
                "voip.cdr: voip.call.disposition: expected answered|no_answer|busy|failed|cancelled|congestion, got \"sideways\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("voip.call.duration", s("abc")),
                ],
                "voip.cdr: voip.call.duration: expected a number, got \"abc\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("voip.call.duration", i(-5)),
                ],
                "voip.cdr: voip.call.duration: expected seconds ≥ 0, got \"-5\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("sip.response.status_code", s("2000")),
                ],
                "voip.cdr: sip.response.status_code: expected a whole number in range, got \"2000\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("voip.call.direction", s("sideways")),
                ],
                "voip.cdr: voip.call.direction: expected inbound|outbound|internal|unknown, got \"sideways\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("voip.rtp.loss_ratio", d(250.0)),
                ],
                "voip.cdr: voip.rtp.loss_ratio: expected a ratio 0..1 (or a percent), got \"250\"",
            ),
            (
                vec![
                    ("voip.call.disposition", s("answered")),
                    ("voip.mos", d(7.0)),
                ],
                "voip.cdr: voip.mos: expected a MOS 1..5, got \"7\"",
            ),
        ];
        for (extra, want) in cases {
            let mut pairs = base();
            pairs.extend(extra);
            assert_eq!(run(ContractEvent::Cdr, pairs).unwrap_err(), want);
        }
    }

    #[test]
    fn quality_loss_from_ratio_percent_or_counts() {
        let q = |pairs| match run(ContractEvent::Quality, pairs).unwrap() {
            VoipEventKind::Quality { quality, .. } => quality,
            other => panic!("{other:?}"),
        };
        let with = |k: &'static str, v: AnyValue| vec![("voip.call.id", s("q")), (k, v)];
        assert_eq!(
            q(with("voip.rtp.loss_ratio", d(0.02))).loss_ratio,
            Some(0.02)
        );
        assert_eq!(
            q(with("voip.rtp.loss_ratio", s("2"))).loss_ratio,
            Some(0.02)
        );
        let mut pairs = with("voip.rtp.packets_lost", i(5));
        pairs.push(("voip.rtp.packets_expected", s("500")));
        assert_eq!(q(pairs).loss_ratio, Some(0.01));
        // Negative cumulative loss (duplicates) clamps to 0; nothing expected gives no ratio.
        let mut pairs = with("voip.rtp.packets_lost", i(-3));
        pairs.push(("voip.rtp.packets_expected", i(100)));
        assert_eq!(q(pairs).loss_ratio, Some(0.0));
        let mut pairs = with("voip.rtp.packets_lost", i(3));
        pairs.push(("voip.rtp.packets_expected", i(0)));
        assert_eq!(q(pairs).loss_ratio, None);
        // An explicit ratio wins over counts.
        let mut pairs = with("voip.rtp.loss_ratio", d(0.5));
        pairs.push(("voip.rtp.packets_lost", i(1)));
        pairs.push(("voip.rtp.packets_expected", i(100)));
        assert_eq!(q(pairs).loss_ratio, Some(0.5));
        let full = q(vec![
            ("voip.call.id", s("q")),
            ("voip.rtp.one_way_delay", s("0.15")),
            ("voip.rtp.burst_ratio", d(1.3)),
        ]);
        assert_eq!(full.one_way_delay, Some(Duration::from_millis(150)));
        assert_eq!(full.burst_ratio, Some(1.3));
        assert_eq!(
            run(ContractEvent::Quality, vec![("voip.rtp.jitter", d(0.01))]).unwrap_err(),
            "voip.quality: missing voip.call.id"
        );
    }

    #[test]
    fn registration_outcomes_and_kinds() {
        for (word, outcome) in [
            ("success", RegistrationOutcome::Success),
            ("failure", RegistrationOutcome::Failure),
            ("expired", RegistrationOutcome::Expired),
            ("unregistered", RegistrationOutcome::Unregistered),
        ] {
            assert_eq!(
                run(
                    ContractEvent::Registration,
                    vec![("voip.registration.outcome", s(word))]
                ),
                Ok(VoipEventKind::Registration {
                    outcome,
                    kind: RegistrationKind::Endpoint,
                    sip_status: None,
                    trunk: None,
                })
            );
        }
        assert_eq!(
            run(
                ContractEvent::Registration,
                vec![
                    ("voip.registration.outcome", s("failure")),
                    ("voip.registration.kind", s("trunk")),
                    ("sip.response.status_code", d(403.0)),
                    ("voip.trunk", s("carrier-a")),
                ]
            ),
            Ok(VoipEventKind::Registration {
                outcome: RegistrationOutcome::Failure,
                kind: RegistrationKind::Trunk,
                sip_status: Some(403),
                trunk: Some("carrier-a".into()),
            })
        );
        assert_eq!(
            run(ContractEvent::Registration, vec![]).unwrap_err(),
            "voip.registration: missing voip.registration.outcome"
        );
        assert!(
            run(
                ContractEvent::Registration,
                vec![
                    ("voip.registration.outcome", s("success")),
                    ("voip.registration.kind", s("phone")),
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn queue_events() {
        for (ev, outcome) in [
            (ContractEvent::QueueJoin, QueueOutcome::Join),
            (ContractEvent::QueueAnswer, QueueOutcome::Answer),
            (ContractEvent::QueueAbandon, QueueOutcome::Abandon),
        ] {
            assert_eq!(
                run(
                    ev,
                    vec![
                        ("voip.queue.name", s("support")),
                        ("voip.call.id", s("c9")),
                        ("voip.queue.wait_time", s("42"))
                    ]
                ),
                Ok(VoipEventKind::Queue {
                    queue: "support".into(),
                    outcome,
                    call_id: Some("c9".into()),
                    wait_time: Some(Duration::from_secs(42)),
                })
            );
            assert_eq!(
                run(ev, vec![("voip.queue.name", s(""))]).unwrap_err(),
                format!("{}: missing voip.queue.name", ev.name())
            );
        }
    }
}

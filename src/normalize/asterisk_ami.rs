//! The `asterisk_ami` preset: Asterisk Manager Interface events as attributes (a bridge writing
//! AMI events as JSON lines, read by the Collector's `json_parser`), or as a JSON object or raw
//! `Key: Value` block in the body. Keys are matched case-insensitively.
//!
//! Maps call, registration, security, queue and RTCP events (table in `docs/schema.md`); every
//! other AMI event is ignored.
//!
//! One call is counted once: by party A's `Hangup`, which every AMI feed with the `call` class
//! has. `Cdr` events (`cdr_manager`) are recognised but not mapped: they would count the same
//! call a second time (one per party-A/party-B pairing, even), and this preset keeps no state to
//! pair them with the `Hangup`. A PBX that only sends CDRs sends `Master.csv`.
//!
//! Trunk and direction come from channel names: a named (not all-digit) PJSIP/SIP endpoint is a
//! provider. A call from a provider starts at its `Newchannel`; a call from an extension starts
//! at the `DialBegin` that shows where it goes (so an outbound call starts on its trunk).

use std::borrow::Cow;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::asterisk_cdr_csv;
use super::attributes::ami::{self, events as ev};
use super::body::{self, Attrs};
use super::coerce::{self, Invalid, Problem};
use super::generic::Fields;
use super::{Ctx, Out, epoch_of};
use crate::event::{
    CallRecord, Direction, Disposition, QualityFields, QueueOutcome, RegistrationKind,
    RegistrationOutcome, VoipEventKind,
};

/// The AMI events this preset recognises (for detection); `Cdr` among them, though it maps to
/// nothing.
pub(crate) fn is_mapped_event(name: &str) -> bool {
    matches!(
        name,
        ev::NEWCHANNEL
            | ev::HANGUP
            | ev::DIAL_BEGIN
            | ev::DIAL_END
            | ev::DIAL_STATE
            | ev::REGISTRY
            | ev::CONTACT_STATUS
            | ev::CHALLENGE_RESPONSE_FAILED
            | ev::INVALID_PASSWORD
            | ev::INVALID_ACCOUNT_ID
            | ev::FAILED_ACL
            | ev::AUTH_METHOD_NOT_ALLOWED
            | ev::QUEUE_CALLER_JOIN
            | ev::QUEUE_CALLER_ABANDON
            | ev::AGENT_CONNECT
            | ev::RTCP_SENT
            | ev::RTCP_RECEIVED
            | ev::CDR
    )
}

/// True when `key` is AMI's event key in any case.
pub(crate) fn is_event_key(key: &str) -> bool {
    key.eq_ignore_ascii_case(ami::EVENT)
}

// Slots of the one-pass read (lowercase keys).
const EVENT: usize = 0;
const CHANNEL: usize = 1;
const CHANNEL_STATE: usize = 2;
const CONTEXT: usize = 3;
const UNIQUEID: usize = 4;
const LINKEDID: usize = 5;
const CAUSE: usize = 6;
const TECH_CAUSE: usize = 7;
const DIAL_STATUS: usize = 8;
const STATUS: usize = 9;
const DOMAIN: usize = 10;
const CONTACT_STATUS: usize = 11;
const SERVICE: usize = 12;
const QUEUE: usize = 13;
const HOLD_TIME: usize = 14;
const RTT: usize = 15;
const MES: usize = 16;
const FRACTION_LOST: usize = 17;
const IA_JITTER: usize = 18;
const TIMESTAMP: usize = 19;
const DEST_CHANNEL: usize = 20;
const SLOTS: usize = 21;

/// Display spelling of each slot's key, for messages.
const KEYS: [&str; SLOTS] = [
    ami::EVENT,
    ami::CHANNEL,
    ami::CHANNEL_STATE,
    ami::CONTEXT,
    ami::UNIQUEID,
    ami::LINKEDID,
    ami::CAUSE,
    ami::TECH_CAUSE,
    ami::DIAL_STATUS,
    ami::STATUS,
    ami::DOMAIN,
    ami::CONTACT_STATUS,
    ami::SERVICE,
    ami::QUEUE,
    ami::HOLD_TIME,
    ami::RTT,
    ami::MES,
    ami::REPORT0_FRACTION_LOST,
    ami::REPORT0_IA_JITTER,
    ami::TIMESTAMP,
    ami::DEST_CHANNEL,
];

fn slot(key: &str) -> Option<usize> {
    let mut buf = [0u8; 48];
    let k = coerce::lower(key, &mut buf)?;
    // The match arms are the lowercase forms of the `attributes::ami` names.
    Some(match k {
        "event" => EVENT,
        "channel" => CHANNEL,
        "channelstate" => CHANNEL_STATE,
        "context" => CONTEXT,
        "uniqueid" => UNIQUEID,
        "linkedid" => LINKEDID,
        "cause" => CAUSE,
        "techcause" => TECH_CAUSE,
        "dialstatus" => DIAL_STATUS,
        "status" => STATUS,
        "domain" => DOMAIN,
        "contactstatus" => CONTACT_STATUS,
        "service" => SERVICE,
        "queue" => QUEUE,
        "holdtime" => HOLD_TIME,
        "rtt" => RTT,
        "mes" => MES,
        "report0fractionlost" => FRACTION_LOST,
        "report0iajitter" => IA_JITTER,
        "timestamp" => TIMESTAMP,
        "destchannel" => DEST_CHANNEL,
        _ => return None,
    })
}

/// The RTP clock of narrowband codecs (G.711, G.729, and G.722 by its RFC 3551 quirk): AMI
/// reports jitter in clock units and does not say the codec.
const RTP_CLOCK_HZ: f64 = 8000.0;
/// Channel state "Up" (answered).
const STATE_UP: i64 = 6;

/// The event's fields, read in one pass.
struct Event<'a> {
    name: &'a str,
    v: [Option<&'a AnyValue>; SLOTS],
}

impl<'a> Event<'a> {
    fn err(&self, i: usize, p: Problem) -> Invalid {
        Invalid::new(format!("asterisk_ami {}", self.name), KEYS[i], p)
    }

    fn text(&self, i: usize) -> Result<Option<Cow<'a, str>>, Invalid> {
        match self.v[i] {
            None => Ok(None),
            Some(v) => coerce::text(v)
                .map(|t| t.filter(|t| !t.trim().is_empty()))
                .map_err(|p| self.err(i, p)),
        }
    }

    fn number(&self, i: usize) -> Result<Option<f64>, Invalid> {
        match self.v[i] {
            None => Ok(None),
            Some(v) => coerce::number(v).map_err(|p| self.err(i, p)),
        }
    }

    fn seconds(&self, i: usize) -> Result<Option<Duration>, Invalid> {
        match self.v[i] {
            None => Ok(None),
            Some(v) => coerce::seconds(v).map_err(|p| self.err(i, p)),
        }
    }

    fn required_text(&self, i: usize) -> Result<Cow<'a, str>, Invalid> {
        self.text(i)?.ok_or_else(|| self.err(i, Problem::Missing))
    }

    /// The call id (`Linkedid`, else `Uniqueid`) and whether this channel is party A.
    fn call(&self) -> Result<(String, bool), Invalid> {
        let uid = self.text(UNIQUEID)?;
        let lid = self.text(LINKEDID)?;
        let party_a = match (&uid, &lid) {
            (Some(u), Some(l)) => u == l,
            _ => true,
        };
        let id = lid
            .or(uid)
            .ok_or_else(|| self.err(LINKEDID, Problem::Missing))?;
        Ok((id.into_owned(), party_a))
    }
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, fields: &Fields<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let attrs = if ctx.record.attributes.iter().any(|kv| is_event_key(&kv.key)) {
        Attrs::Record(&ctx.record.attributes)
    } else {
        let parsed = body::body_text(ctx.record).and_then(|t| {
            body::json_object(t).or_else(|| body::header_block(t, ami::EVENT, false))
        });
        match parsed {
            Some(p) => Attrs::Parsed(p),
            None => {
                return Err(Invalid::new("asterisk_ami", ami::EVENT, Problem::Missing));
            }
        }
    };
    map_attrs(ctx, fields, attrs.as_slice(), out)
}

fn map_attrs(
    ctx: &Ctx<'_>,
    fields: &Fields<'_>,
    attrs: &[KeyValue],
    out: &mut Out<'_>,
) -> Result<(), Invalid> {
    let v: [Option<&AnyValue>; SLOTS] = coerce::collect(attrs, slot);
    let name = coerce::str_of(v[EVENT])
        .map(str::trim)
        .ok_or_else(|| Invalid::new("asterisk_ami", ami::EVENT, Problem::Missing))?;
    let e = Event { name, v };
    let time = e.v[TIMESTAMP].and_then(epoch_of);
    let overrides = || fields.overrides("asterisk_ami");
    let kind = match name {
        ev::NEWCHANNEL => {
            let (call_id, party_a) = e.call()?;
            if !party_a {
                return Ok(());
            }
            let o = overrides()?;
            let (dir, trunk) = asterisk_cdr_csv::channel_route(
                e.text(CONTEXT)?.as_deref(),
                e.text(CHANNEL)?.as_deref(),
            );
            let direction = o.direction.unwrap_or(dir);
            let trunk = o.trunk.or(trunk);
            if direction == Direction::Unknown && trunk.is_none() {
                return Ok(()); // an extension's call: its DialBegin starts it
            }
            VoipEventKind::CallStart {
                call_id,
                direction,
                trunk,
            }
        }
        ev::DIAL_BEGIN => {
            // Any channel of the call may dial (a `Local/` half does for FreePBX routes); the
            // first DialBegin that shows the route starts the call, the engine ignores the rest.
            // An originated call's DialBegin has no caller block: nothing to route.
            if e.v[UNIQUEID].is_none() && e.v[LINKEDID].is_none() {
                return Ok(());
            }
            let call_id = e.call()?.0;
            let o = overrides()?;
            let (dir, trunk) = asterisk_cdr_csv::guess_route(
                e.text(CONTEXT)?.as_deref(),
                e.text(CHANNEL)?.as_deref(),
                e.text(DEST_CHANNEL)?.as_deref(),
            );
            let direction = o.direction.unwrap_or(dir);
            let trunk = o.trunk.or(trunk);
            if direction == Direction::Unknown && trunk.is_none() {
                return Ok(());
            }
            VoipEventKind::CallStart {
                call_id,
                direction,
                trunk,
            }
        }
        ev::HANGUP => {
            let (call_id, party_a) = e.call()?;
            if !party_a {
                return Ok(());
            }
            let o = overrides()?;
            let state = e.number(CHANNEL_STATE)?;
            let cause = match e.v[CAUSE] {
                Some(v) => coerce::cause(v).map_err(|p| e.err(CAUSE, p))?,
                None => None,
            };
            let tech = e.number(TECH_CAUSE)?;
            let (dir, trunk) = asterisk_cdr_csv::channel_route(
                e.text(CONTEXT)?.as_deref(),
                e.text(CHANNEL)?.as_deref(),
            );
            // `Queue()` answers its callers; one who gave up waiting hangs up on an Up channel
            // that no member ever answered. `Queue()` marks it `ABANDONED=TRUE`, which the
            // Hangup carries when `manager.conf` lists it in `channelvars`.
            let disposition = if abandoned_in_queue(attrs) {
                Disposition::Cancelled
            } else {
                hangup_disposition(state.map(|s| s as i64), cause)
            };
            VoipEventKind::CallEnd(CallRecord {
                call_id,
                disposition,
                duration: None,
                billable_duration: None,
                post_dial_delay: None,
                trunk: o.trunk.or(trunk),
                direction: o.direction.unwrap_or(dir),
                sip_status: tech
                    .filter(|t| (100.0..700.0).contains(t) && t.fract() == 0.0)
                    .map(|t| t as u16),
                hangup_cause: cause,
                quality: QualityFields::default(),
            })
        }
        ev::DIAL_STATE => {
            // The destination alerting (`RINGING`) or sending early media (`PROGRESS`): the
            // first 18x, which ends the post-dial delay that began at the call's DialBegin.
            let status = e.required_text(DIAL_STATUS)?;
            let s = status.trim();
            if !(s.eq_ignore_ascii_case("RINGING") || s.eq_ignore_ascii_case("PROGRESS")) {
                return Ok(());
            }
            VoipEventKind::CallRinging {
                call_id: e.call()?.0,
            }
        }
        ev::DIAL_END => {
            let status = e.required_text(DIAL_STATUS)?;
            if !status.trim().eq_ignore_ascii_case("ANSWER") {
                return Ok(());
            }
            let call_id = e.call()?.0;
            // An answer with no ringing before it ends the post-dial delay itself (RFC 6076:
            // INVITE → first 180/183 or 200); the engine keeps only a call's first such event.
            out.push(ctx.event(
                VoipEventKind::CallRinging {
                    call_id: call_id.clone(),
                },
                time,
            ));
            VoipEventKind::CallAnswer {
                call_id,
                post_dial_delay: None,
            }
        }
        ev::REGISTRY => {
            let status = e.required_text(STATUS)?;
            let outcome = match status.trim() {
                s if s.eq_ignore_ascii_case("Registered") => RegistrationOutcome::Success,
                s if s.eq_ignore_ascii_case("Rejected") => RegistrationOutcome::Failure,
                s if s.eq_ignore_ascii_case("Unregistered") => RegistrationOutcome::Unregistered,
                _ => return Ok(()),
            };
            let domain = e.text(DOMAIN)?;
            VoipEventKind::Registration {
                outcome,
                kind: RegistrationKind::Trunk,
                sip_status: None,
                trunk: overrides()?
                    .trunk
                    .or_else(|| domain.as_deref().and_then(uri_host).map(str::to_owned)),
            }
        }
        ev::CONTACT_STATUS => {
            let status = e.required_text(CONTACT_STATUS)?;
            let outcome = match status.trim() {
                "Created" | "NonQualified" | "Reachable" => RegistrationOutcome::Success,
                "Removed" => RegistrationOutcome::Unregistered,
                _ => return Ok(()),
            };
            VoipEventKind::Registration {
                outcome,
                kind: RegistrationKind::Endpoint,
                sip_status: None,
                trunk: None,
            }
        }
        ev::CHALLENGE_RESPONSE_FAILED
        | ev::INVALID_PASSWORD
        | ev::INVALID_ACCOUNT_ID
        | ev::FAILED_ACL
        | ev::AUTH_METHOD_NOT_ALLOWED => {
            // AMI logins raise the same security events (Service: AMI); only SIP counts.
            if let Some(service) = e.text(SERVICE)?
                && !(service.eq_ignore_ascii_case("PJSIP") || service.eq_ignore_ascii_case("SIP"))
            {
                return Ok(());
            }
            VoipEventKind::Registration {
                outcome: RegistrationOutcome::Failure,
                kind: RegistrationKind::Endpoint,
                sip_status: None,
                trunk: None,
            }
        }
        ev::QUEUE_CALLER_JOIN | ev::AGENT_CONNECT | ev::QUEUE_CALLER_ABANDON => {
            let outcome = match name {
                ev::QUEUE_CALLER_JOIN => QueueOutcome::Join,
                ev::AGENT_CONNECT => QueueOutcome::Answer,
                _ => QueueOutcome::Abandon,
            };
            VoipEventKind::Queue {
                queue: e.required_text(QUEUE)?.trim().to_owned(),
                outcome,
                call_id: e.text(UNIQUEID)?.map(Cow::into_owned),
                wait_time: match outcome {
                    QueueOutcome::Join => None,
                    _ => e.seconds(HOLD_TIME)?,
                },
            }
        }
        ev::RTCP_SENT | ev::RTCP_RECEIVED => {
            let (call_id, party_a) = e.call()?;
            let loss_ratio = match e.v[FRACTION_LOST] {
                Some(v) => coerce::integer_in(v, 0, 255)
                    .map_err(|p| e.err(FRACTION_LOST, p))?
                    .map(|n| n as f64 / 256.0),
                None => None,
            };
            let jitter = match e.number(IA_JITTER)? {
                Some(j) if j >= 0.0 => Some(Duration::from_secs_f64(j / RTP_CLOCK_HZ)),
                Some(j) => {
                    return Err(e.err(
                        IA_JITTER,
                        Problem::BadValue {
                            expected: "clock units ≥ 0",
                            value: j.to_string(),
                        },
                    ));
                }
                None => None,
            };
            let rtt = e.seconds(RTT)?;
            let mos = e
                .number(MES)?
                .filter(|m| *m > 0.0)
                .map(|m| (m / 20.0).clamp(1.0, 5.0));
            let quality = QualityFields {
                loss_ratio,
                jitter,
                rtt,
                reported_mos: mos,
                ..QualityFields::default()
            };
            if quality.is_empty() {
                return Ok(());
            }
            // A report on a provider's channel is that trunk's media: party A's leg came in
            // from it, party B's went out to it. On an extension's leg the engine takes the
            // call's trunk.
            let o = overrides()?;
            let provider = e
                .text(CHANNEL)?
                .as_deref()
                .and_then(asterisk_cdr_csv::provider_endpoint)
                .map(str::to_owned);
            let dir = match (&provider, party_a) {
                (None, _) => Direction::Unknown,
                (Some(_), true) => Direction::Inbound,
                (Some(_), false) => Direction::Outbound,
            };
            VoipEventKind::Quality {
                call_id,
                trunk: o.trunk.or(provider),
                direction: o.direction.unwrap_or(dir),
                quality,
            }
        }
        _ => return Ok(()),
    };
    out.push(ctx.event(kind, time));
    Ok(())
}

/// True when the event carries `ChanVariable: ABANDONED=TRUE`: as a `NAME=value` string (the
/// wire form; repeated for several variables), a list of them, or a map (bridges that group
/// channel variables).
fn abandoned_in_queue(attrs: &[KeyValue]) -> bool {
    fn says(v: &AnyValue) -> bool {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        match &v.value {
            Some(Value::StringValue(s)) => s
                .split_once('=')
                .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case(ami::ABANDONED) && is_true(v)),
            Some(Value::ArrayValue(a)) => a.values.iter().any(says),
            Some(Value::KvlistValue(l)) => l.values.iter().any(|kv| {
                kv.key.eq_ignore_ascii_case(ami::ABANDONED)
                    && kv
                        .value
                        .as_ref()
                        .and_then(|v| coerce::str_of(Some(v)))
                        .is_some_and(is_true)
            }),
            _ => false,
        }
    }
    fn is_true(v: &str) -> bool {
        let v = v.trim();
        v.eq_ignore_ascii_case("TRUE") || v == "1" || v.eq_ignore_ascii_case("yes")
    }
    attrs.iter().any(|kv| {
        kv.key.eq_ignore_ascii_case(ami::CHAN_VARIABLE) && kv.value.as_ref().is_some_and(says)
    })
}

/// How a party-A hangup ended: answered when the channel was Up; else by Q.850 cause.
/// Without a channel state, cause 16 (normal clearing) is taken as an answered call.
fn hangup_disposition(state: Option<i64>, cause: Option<u16>) -> Disposition {
    match (state, cause) {
        (Some(STATE_UP), _) | (None, Some(16)) => Disposition::Answered,
        (_, Some(17)) => Disposition::Busy,
        (_, Some(18 | 19)) => Disposition::NoAnswer,
        (_, Some(34 | 38 | 41 | 42 | 44)) => Disposition::Congestion,
        (_, None | Some(0 | 16 | 31 | 127)) => Disposition::Cancelled,
        _ => Disposition::Failed,
    }
}

/// The host of a SIP URI: `sip:user@sip.carrier-a.example:5060;transport=udp` →
/// `sip.carrier-a.example`.
pub(crate) fn uri_host(uri: &str) -> Option<&str> {
    let u = uri.trim();
    let u = u
        .strip_prefix("sips:")
        .or_else(|| u.strip_prefix("sip:"))
        .unwrap_or(u);
    let u = u.rsplit_once('@').map_or(u, |(_, h)| h);
    let host = if let Some(v6) = u.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        u.split([':', ';', '>', '/']).next()?
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_dispositions() {
        assert_eq!(hangup_disposition(Some(6), Some(16)), Disposition::Answered);
        assert_eq!(
            hangup_disposition(Some(4), Some(16)),
            Disposition::Cancelled
        );
        assert_eq!(hangup_disposition(Some(5), Some(17)), Disposition::Busy);
        assert_eq!(hangup_disposition(Some(5), Some(19)), Disposition::NoAnswer);
        assert_eq!(
            hangup_disposition(Some(0), Some(34)),
            Disposition::Congestion
        );
        assert_eq!(hangup_disposition(Some(0), Some(1)), Disposition::Failed);
        assert_eq!(hangup_disposition(None, Some(16)), Disposition::Answered);
        assert_eq!(hangup_disposition(None, None), Disposition::Cancelled);
    }

    #[test]
    fn abandoned_channel_variable_forms() {
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};
        let text = |s: &str| AnyValue {
            value: Some(Value::StringValue(s.into())),
        };
        let kv = |k: &str, v: AnyValue| KeyValue {
            key: k.into(),
            value: Some(v),
            ..Default::default()
        };
        let wire = [
            kv("Event", text("Hangup")),
            kv("ChanVariable", text("QUEUESTATUS=")),
            kv("ChanVariable", text("ABANDONED=TRUE")),
        ];
        assert!(abandoned_in_queue(&wire));
        let list = kv(
            "ChanVariable",
            AnyValue {
                value: Some(Value::ArrayValue(ArrayValue {
                    values: vec![text("FOO=bar"), text("abandoned=true")],
                })),
            },
        );
        assert!(abandoned_in_queue(&[list]));
        let map = kv(
            "chanvariable",
            AnyValue {
                value: Some(Value::KvlistValue(KeyValueList {
                    values: vec![kv("ABANDONED", text("TRUE"))],
                })),
            },
        );
        assert!(abandoned_in_queue(&[map]));
        assert!(!abandoned_in_queue(&[kv(
            "ChanVariable",
            text("ABANDONED=")
        )]));
        assert!(!abandoned_in_queue(&[kv(
            "DestChanVariable",
            text("ABANDONED=TRUE")
        )]));
        assert!(!abandoned_in_queue(&[kv("ABANDONED", text("TRUE"))]));
    }

    #[test]
    fn uri_hosts() {
        assert_eq!(
            uri_host("sip:sip.carrier-a.example"),
            Some("sip.carrier-a.example")
        );
        assert_eq!(
            uri_host("sip:4155550100@sip.carrier-a.example:5060;transport=udp"),
            Some("sip.carrier-a.example")
        );
        assert_eq!(uri_host("sip:[2001:db8::1]:5060"), Some("2001:db8::1"));
        assert_eq!(uri_host("sip:"), None);
    }

    #[test]
    fn slots_match_any_case() {
        assert_eq!(slot("Uniqueid"), Some(UNIQUEID));
        assert_eq!(slot("UniqueID"), Some(UNIQUEID));
        assert_eq!(slot("Report0IAJitter"), Some(IA_JITTER));
        assert_eq!(slot("Privilege"), None);
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(slot(k), Some(i), "{k}");
        }
    }
}

//! The `freeswitch_event` preset: event-socket events as attributes (ESL `text/event-json`
//! headers through the Collector's `json_parser`), or the JSON or plain (`Key: Value`,
//! URL-encoded) event in the body. Header names are matched case-insensitively.
//!
//! Channel events of A-legs become call events; `sofia::*` CUSTOM events registrations;
//! `callcenter::info` queue events. Everything else is ignored.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::attributes::freeswitch_event::{self as fse, events as ev};
use super::body::{self, Attrs};
use super::coerce::{self, Invalid, Problem};
use super::freeswitch_json_cdr::Vars;
use super::generic::Fields;
use super::{Ctx, Out};
use crate::event::{QueueOutcome, RegistrationKind, RegistrationOutcome, VoipEventKind};

const WHAT: &str = "freeswitch_event";

const EVENT_NAME: usize = 0;
const SUBCLASS: usize = 1;
const TIMESTAMP: usize = 2;
const UNIQUE_ID: usize = 3;
const CALL_UUID: usize = 4;
const OTHER_TYPE: usize = 5;
const HANGUP_CAUSE: usize = 6;
const CREATED: usize = 7;
const PROGRESS: usize = 8;
const PROGRESS_MEDIA: usize = 9;
const ANSWERED: usize = 10;
const GATEWAY: usize = 11;
const STATE: usize = 12;
const STATUS: usize = 13;
const REGISTRATION_TYPE: usize = 14;
const CC_ACTION: usize = 15;
const CC_QUEUE: usize = 16;
const CC_MEMBER: usize = 17;
const CC_CAUSE: usize = 18;
const CC_CANCEL_REASON: usize = 19;
const CC_JOINED: usize = 20;
const CC_LEAVING: usize = 21;
const CC_AGENT_ANSWERED: usize = 22;
const SLOTS: usize = 23;

const KEYS: [&str; SLOTS] = [
    fse::EVENT_NAME,
    fse::EVENT_SUBCLASS,
    fse::EVENT_DATE_TIMESTAMP,
    fse::UNIQUE_ID,
    fse::CHANNEL_CALL_UUID,
    fse::OTHER_TYPE,
    fse::HANGUP_CAUSE,
    fse::CREATED_TIME,
    fse::PROGRESS_TIME,
    fse::PROGRESS_MEDIA_TIME,
    fse::ANSWERED_TIME,
    fse::GATEWAY,
    fse::STATE,
    fse::STATUS,
    fse::REGISTRATION_TYPE,
    fse::CC_ACTION,
    fse::CC_QUEUE,
    fse::CC_MEMBER_SESSION_UUID,
    fse::CC_CAUSE,
    fse::CC_CANCEL_REASON,
    fse::CC_MEMBER_JOINED_TIME,
    fse::CC_MEMBER_LEAVING_TIME,
    fse::CC_AGENT_ANSWERED_TIME,
];

fn slot(key: &str) -> Option<usize> {
    let mut buf = [0u8; 48];
    let k = coerce::lower(key, &mut buf)?;
    // Lowercase forms of `attributes::freeswitch_event`; a test checks they agree.
    Some(match k {
        "event-name" => EVENT_NAME,
        "event-subclass" => SUBCLASS,
        "event-date-timestamp" => TIMESTAMP,
        "unique-id" => UNIQUE_ID,
        "channel-call-uuid" => CALL_UUID,
        "other-type" => OTHER_TYPE,
        "hangup-cause" => HANGUP_CAUSE,
        "caller-channel-created-time" => CREATED,
        "caller-channel-progress-time" => PROGRESS,
        "caller-channel-progress-media-time" => PROGRESS_MEDIA,
        "caller-channel-answered-time" => ANSWERED,
        "gateway" => GATEWAY,
        "state" => STATE,
        "status" => STATUS,
        "registration-type" => REGISTRATION_TYPE,
        "cc-action" => CC_ACTION,
        "cc-queue" => CC_QUEUE,
        "cc-member-session-uuid" => CC_MEMBER,
        "cc-cause" => CC_CAUSE,
        "cc-cancel-reason" => CC_CANCEL_REASON,
        "cc-member-joined-time" => CC_JOINED,
        "cc-member-leaving-time" => CC_LEAVING,
        "cc-agent-answered-time" => CC_AGENT_ANSWERED,
        _ => return None,
    })
}

/// True when `key` is the event-name header in any case.
pub(crate) fn is_event_key(key: &str) -> bool {
    key.eq_ignore_ascii_case(fse::EVENT_NAME)
}

struct Event<'a> {
    h: [Option<&'a AnyValue>; SLOTS],
    vars: Vars<'a>,
    what: String,
}

impl<'a> Event<'a> {
    fn err(&self, i: usize, p: Problem) -> Invalid {
        Invalid::new(self.what.clone(), KEYS[i], p)
    }

    fn text(&self, i: usize) -> Result<Option<Cow<'a, str>>, Invalid> {
        match self.h[i] {
            None => Ok(None),
            Some(v) => coerce::text(v)
                .map(|t| t.filter(|t| !t.trim().is_empty()))
                .map_err(|p| self.err(i, p)),
        }
    }

    fn is(&self, i: usize, want: &str) -> Result<bool, Invalid> {
        Ok(self
            .text(i)?
            .is_some_and(|t| t.trim().eq_ignore_ascii_case(want)))
    }

    fn number(&self, i: usize) -> Result<Option<f64>, Invalid> {
        match self.h[i] {
            None => Ok(None),
            Some(v) => coerce::number(v).map_err(|p| self.err(i, p)),
        }
    }

    /// A µs epoch header; 0 (milestone not reached) → `None`.
    fn micros(&self, i: usize) -> Result<Option<u64>, Invalid> {
        Ok(self.number(i)?.filter(|n| *n > 0.0).map(|n| n as u64))
    }

    /// The call id and whether this is party A: `Other-Type: originator` or a
    /// `Channel-Call-UUID` other than the leg's own marks a B-leg.
    fn call(&self) -> Result<(String, bool), Invalid> {
        let own = self.text(UNIQUE_ID)?;
        let call = self.text(CALL_UUID)?;
        let b_leg = self.is(OTHER_TYPE, "originator")?
            || matches!((&own, &call), (Some(o), Some(c)) if o != c);
        let id = call
            .or(own)
            .ok_or_else(|| self.err(UNIQUE_ID, Problem::Missing))?;
        Ok((id.into_owned(), !b_leg))
    }

    /// Seconds between two epoch-second headers (`to − from`), when both are there and in order.
    fn span(&self, from: usize, to: usize) -> Result<Option<Duration>, Invalid> {
        Ok(match (self.number(from)?, self.number(to)?) {
            (Some(a), Some(b)) if a > 0.0 && b >= a => Some(Duration::from_secs_f64(b - a)),
            _ => None,
        })
    }
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, fields: &Fields<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let attrs = if ctx.record.attributes.iter().any(|kv| is_event_key(&kv.key)) {
        Attrs::Record(&ctx.record.attributes)
    } else {
        let parsed = body::body_text(ctx.record).and_then(|t| {
            body::json_object(t).or_else(|| body::header_block(t, fse::EVENT_NAME, true))
        });
        match parsed {
            Some(p) => Attrs::Parsed(p),
            None => return Err(Invalid::new(WHAT, fse::EVENT_NAME, Problem::Missing)),
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
    let mut h = [None; SLOTS];
    let mut vars = Vars::new(WHAT, fse::VARIABLE_PREFIX);
    for kv in attrs {
        if let Some(name) = kv.key.strip_prefix(fse::VARIABLE_PREFIX) {
            vars.set(name, kv.value.as_ref());
        } else if let Some(i) = slot(&kv.key)
            && h[i].is_none()
        {
            h[i] = kv.value.as_ref();
        }
    }
    let name = coerce::str_of(h[EVENT_NAME])
        .map(str::trim)
        .ok_or_else(|| Invalid::new(WHAT, fse::EVENT_NAME, Problem::Missing))?;
    let subclass = coerce::str_of(h[SUBCLASS]).map(str::trim).unwrap_or("");
    let label = if name == ev::CUSTOM { subclass } else { name };
    let e = Event {
        h,
        vars,
        what: format!("{WHAT} {label}"),
    };
    let time: Option<SystemTime> = e
        .micros(TIMESTAMP)
        .ok()
        .flatten()
        .map(|us| UNIX_EPOCH + Duration::from_micros(us));
    let kind = match (name, subclass) {
        (ev::CHANNEL_CREATE, _) => {
            let (call_id, party_a) = e.call()?;
            if !party_a {
                return Ok(());
            }
            let o = fields.overrides(WHAT)?;
            let (dir, trunk) = e.vars.route()?;
            VoipEventKind::CallStart {
                call_id,
                direction: o.direction.unwrap_or(dir),
                trunk: o.trunk.or(trunk),
            }
        }
        (ev::CHANNEL_ANSWER, _) => {
            let (call_id, party_a) = e.call()?;
            if !party_a {
                return Ok(());
            }
            let created = e.micros(CREATED)?;
            let reached = match e.micros(PROGRESS)? {
                Some(t) => Some(t),
                None => match e.micros(PROGRESS_MEDIA)? {
                    Some(t) => Some(t),
                    None => e.micros(ANSWERED)?,
                },
            };
            let pdd = match (created, reached) {
                (Some(c), Some(r)) if r >= c => Some(Duration::from_micros(r - c)),
                _ => None,
            };
            VoipEventKind::CallAnswer {
                call_id,
                post_dial_delay: pdd,
            }
        }
        (ev::CHANNEL_HANGUP_COMPLETE, _) => {
            let (call_id, party_a) = e.call()?;
            if !party_a {
                return Ok(());
            }
            let cause = e.text(HANGUP_CAUSE)?;
            VoipEventKind::CallEnd(e.vars.call_record(
                Some(call_id),
                cause.as_deref(),
                None,
                fields.overrides(WHAT)?,
            )?)
        }
        (ev::CUSTOM, ev::SOFIA_REGISTER) => registration(RegistrationOutcome::Success, None),
        (ev::CUSTOM, ev::SOFIA_REGISTER_FAILURE) => {
            // Fires for failed INVITE authentication too; only REGISTER counts.
            if let Some(t) = e.text(REGISTRATION_TYPE)?
                && !t.trim().eq_ignore_ascii_case("REGISTER")
            {
                return Ok(());
            }
            registration(RegistrationOutcome::Failure, Some(403))
        }
        (ev::CUSTOM, ev::SOFIA_UNREGISTER) => registration(RegistrationOutcome::Unregistered, None),
        (ev::CUSTOM, ev::SOFIA_EXPIRE) => registration(RegistrationOutcome::Expired, None),
        (ev::CUSTOM, ev::SOFIA_GATEWAY_STATE) => {
            let state = e
                .text(STATE)?
                .ok_or_else(|| e.err(STATE, Problem::Missing))?;
            // Every failed attempt ends in FAIL_WAIT exactly once (mod_sofia sofia_reg.c: a
            // rejection, a timeout, a 5xx to the auth retry or a lost ping all set FAILED, and
            // the next check moves FAILED to FAIL_WAIT and fires the event). The FAILED (with
            // the SIP `Status`) and TIMEOUT events that precede it belong to the same attempt,
            // and FAILED is not always fired: counting FAIL_WAIT alone counts each once.
            let outcome = match state.trim() {
                "REGED" => RegistrationOutcome::Success,
                "FAIL_WAIT" => RegistrationOutcome::Failure,
                "EXPIRED" => RegistrationOutcome::Expired,
                // UNREGED is the state before every REGISTER (each refresh and retry passes
                // through it), not an unregistration; UNREGISTER is one (`killgw`, shutdown).
                "UNREGISTER" => RegistrationOutcome::Unregistered,
                _ => return Ok(()),
            };
            let o = fields.overrides(WHAT)?;
            let status = match e.h[STATUS] {
                Some(v) => coerce::integer_in(v, 100, 699).ok().flatten(),
                None => None,
            };
            VoipEventKind::Registration {
                outcome,
                kind: RegistrationKind::Trunk,
                sip_status: status.map(|s| s as u16),
                trunk: o.trunk.or(e.text(GATEWAY)?.map(Cow::into_owned)),
            }
        }
        (ev::CUSTOM, ev::CALLCENTER_INFO) => {
            let action = e.text(CC_ACTION)?;
            let (outcome, wait) = match action.as_deref().map(str::trim) {
                Some("member-queue-start") => (QueueOutcome::Join, None),
                Some("bridge-agent-start") => {
                    (QueueOutcome::Answer, e.span(CC_JOINED, CC_AGENT_ANSWERED)?)
                }
                Some("member-queue-end") => {
                    let cancelled = e.is(CC_CAUSE, "Cancel")?;
                    let caller_hung_up = match e.text(CC_CANCEL_REASON)? {
                        None => true,
                        Some(r) => r.trim().eq_ignore_ascii_case("NONE"),
                    };
                    if !(cancelled && caller_hung_up) {
                        return Ok(());
                    }
                    (QueueOutcome::Abandon, e.span(CC_JOINED, CC_LEAVING)?)
                }
                _ => return Ok(()),
            };
            VoipEventKind::Queue {
                queue: e
                    .text(CC_QUEUE)?
                    .ok_or_else(|| e.err(CC_QUEUE, Problem::Missing))?
                    .trim()
                    .to_owned(),
                outcome,
                call_id: e.text(CC_MEMBER)?.map(Cow::into_owned),
                wait_time: wait,
            }
        }
        _ => return Ok(()),
    };
    out.push(ctx.event(kind, time));
    Ok(())
}

fn registration(outcome: RegistrationOutcome, sip_status: Option<u16>) -> VoipEventKind {
    VoipEventKind::Registration {
        outcome,
        kind: RegistrationKind::Endpoint,
        sip_status,
        trunk: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_has_a_slot() {
        for (i, k) in KEYS.iter().enumerate() {
            assert_eq!(slot(k), Some(i), "{k}");
        }
        assert_eq!(slot("EVENT-NAME"), Some(EVENT_NAME));
    }
}

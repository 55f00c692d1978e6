//! The `kamailio_acc` preset: Kamailio `acc` records — the syslog line
//! (`… ACC: transaction answered: timestamp=…;method=INVITE;…;call_id=…;code=200;…`) in the body
//! or in the syslog receiver's `message` attribute, its pairs as attributes (`key_value_parser`),
//! or the `acc_json` object (`time`, `method`, `callid`, `sip_code`) as attributes or JSON text.
//!
//! INVITE outcomes become call events, BYE ends a call, REGISTER lines (a site convention)
//! become registrations; other methods are ignored.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::attributes::kamailio as k;
use super::body::{self, Attrs};
use super::coerce::{self, Invalid, Problem};
use super::generic::Fields;
use super::{Ctx, Out, epoch_of};
use crate::event::{
    CallRecord, Direction, Disposition, RegistrationKind, RegistrationOutcome, VoipEventKind,
};

const WHAT: &str = "kamailio_acc";
/// The final response of an answered INVITE.
const INVITE_ANSWERED: u16 = 200;

/// The acc pairs of a log line: everything after `ACC: <what happened>: `, split on `;` and `=`.
pub(crate) fn acc_pairs(text: &str) -> Option<Vec<KeyValue>> {
    let at = text.find(k::ACC_MARKER)? + k::ACC_MARKER.len();
    let rest = text.get(at..)?;
    let payload = match rest.find(": ") {
        Some(i) if !rest[..i].contains('=') => rest.get(i + 2..)?,
        _ => rest,
    };
    let pairs: Vec<KeyValue> = payload
        .trim_end()
        .split(';')
        .filter_map(|p| p.split_once('='))
        .map(|(key, v)| body::string_kv(key.trim(), v.trim().to_owned()))
        .collect();
    (!pairs.is_empty()).then_some(pairs)
}

/// True when text holds an acc line or an `acc_json` object.
pub(crate) fn looks_like_text(text: &str) -> bool {
    text.contains(k::ACC_MARKER)
        || (text.trim_start().starts_with('{')
            && text.contains("\"method\"")
            && ["\"callid\"", "\"call_id\"", "\"sip_code\""]
                .iter()
                .any(|k| text.contains(k)))
}

fn parsed_text(text: &str) -> Option<Vec<KeyValue>> {
    if text.contains(k::ACC_MARKER) {
        acc_pairs(text)
    } else {
        body::json_object(text)
    }
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, fields: &Fields<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let record_attrs = &ctx.record.attributes;
    let attrs = if record_attrs.iter().any(|kv| kv.key == k::METHOD) {
        Attrs::Record(record_attrs)
    } else {
        let message = coerce::str_of(coerce::find(record_attrs, k::MESSAGE));
        let parsed = message
            .and_then(parsed_text)
            .or_else(|| body::body_text(ctx.record).and_then(parsed_text));
        match parsed {
            Some(p) => Attrs::Parsed(p),
            None => {
                return Err(Invalid::record(
                    WHAT,
                    "no acc line, acc pairs or acc_json object",
                ));
            }
        }
    };
    let [method, call_id, callid, code, sip_code, timestamp, time]: [Option<&AnyValue>; 7] =
        coerce::collect(attrs.as_slice(), |key| {
            Some(match key {
                k::METHOD => 0,
                k::CALL_ID => 1,
                k::CALLID => 2,
                k::CODE => 3,
                k::SIP_CODE => 4,
                k::TIMESTAMP => 5,
                k::TIME => 6,
                _ => return None,
            })
        });
    let method = match method {
        Some(v) => coerce::text(v).map_err(|p| Invalid::new(WHAT, k::METHOD, p))?,
        None => None,
    }
    .ok_or_else(|| Invalid::new(WHAT, k::METHOD, Problem::Missing))?;
    let method = method.trim().to_ascii_uppercase();
    let what = || format!("{WHAT} {method}");
    // The acc line's `timestamp`, else `acc_json`'s `time` (epoch, fractions allowed); a
    // formatted date (`time_mode` 3/4) is no epoch and falls through to the record's time.
    let time = timestamp
        .and_then(epoch_of)
        .or_else(|| time.and_then(epoch_of));
    let code_key = if code.is_some() { k::CODE } else { k::SIP_CODE };
    let code = || -> Result<u16, Invalid> {
        let v = code
            .or(sip_code)
            .ok_or_else(|| Invalid::new(what(), code_key, Problem::Missing))?;
        coerce::sip_status(v)
            .map_err(|p| Invalid::new(what(), code_key, p))?
            .ok_or_else(|| Invalid::new(what(), code_key, Problem::Missing))
    };
    let id_key = if call_id.is_some() {
        k::CALL_ID
    } else {
        k::CALLID
    };
    let call = || -> Result<String, Invalid> {
        let v = call_id
            .or(callid)
            .ok_or_else(|| Invalid::new(what(), id_key, Problem::Missing))?;
        coerce::text(v)
            .map_err(|p| Invalid::new(what(), id_key, p))?
            .map(Cow::into_owned)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Invalid::new(what(), id_key, Problem::Missing))
    };
    match method.as_str() {
        k::INVITE => {
            let code = code()?;
            let o = fields.overrides(WHAT)?;
            let direction = o.direction.unwrap_or(Direction::Unknown);
            match code {
                200..=299 => {
                    let call_id = call()?;
                    out.push(ctx.event(
                        VoipEventKind::CallStart {
                            call_id: call_id.clone(),
                            direction,
                            trunk: o.trunk,
                        },
                        time,
                    ));
                    out.push(ctx.event(
                        VoipEventKind::CallAnswer {
                            call_id,
                            post_dial_delay: None,
                        },
                        time,
                    ));
                }
                300.. => {
                    let record = CallRecord {
                        direction,
                        trunk: o.trunk,
                        sip_status: Some(code),
                        ..record(call()?, code_disposition(code))
                    };
                    out.push(ctx.event(VoipEventKind::Cdr(record), time));
                }
                _ => {}
            }
        }
        k::BYE => {
            // The call is counted here, so its INVITE's final response is counted here too: a
            // dialog ended by BYE was answered with a 2xx (200; the BYE line's own `code` is the
            // BYE's). The INVITE-200 line itself gives start and answer, no record.
            let o = fields.overrides(WHAT)?;
            let record = CallRecord {
                direction: o.direction.unwrap_or(Direction::Unknown),
                trunk: o.trunk,
                sip_status: Some(INVITE_ANSWERED),
                ..record(call()?, Disposition::Answered)
            };
            out.push(ctx.event(VoipEventKind::CallEnd(record), time));
        }
        k::REGISTER => {
            let code = code()?;
            let outcome = match code {
                200..=299 => RegistrationOutcome::Success,
                401 | 407 => return Ok(()), // a challenge, not a failure
                300.. => RegistrationOutcome::Failure,
                _ => return Ok(()),
            };
            out.push(ctx.event(
                VoipEventKind::Registration {
                    outcome,
                    kind: RegistrationKind::Endpoint,
                    sip_status: Some(code),
                    trunk: None,
                },
                time,
            ));
        }
        _ => {}
    }
    Ok(())
}

fn record(call_id: String, disposition: Disposition) -> CallRecord {
    CallRecord::new(call_id, disposition)
}

/// The disposition of a failed INVITE from its final SIP code.
fn code_disposition(code: u16) -> Disposition {
    match code {
        486 | 600 => Disposition::Busy,
        487 => Disposition::Cancelled,
        408 | 480 => Disposition::NoAnswer,
        503 => Disposition::Congestion,
        _ => Disposition::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;

    fn get<'a>(kv: &'a [KeyValue], key: &str) -> Option<&'a str> {
        kv.iter()
            .find(|p| p.key == key)
            .and_then(|p| match p.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.as_str()),
                _ => None,
            })
    }

    #[test]
    fn acc_lines() {
        let line = "Mar 14 10:00:17 sip-proxy-01 kamailio[2819]: NOTICE: acc [acc.c:288]: acc_log_request(): ACC: transaction answered: timestamp=1741946417;method=INVITE;from_tag=b7f31a2c;to_tag=as5e1d9c70;call_id=5d3a@198.51.100.21;code=200;reason=OK;src_user=1001\n";
        let kv = acc_pairs(line).unwrap();
        assert_eq!(get(&kv, "method"), Some("INVITE"));
        assert_eq!(get(&kv, "call_id"), Some("5d3a@198.51.100.21"));
        assert_eq!(get(&kv, "src_user"), Some("1001"));
        assert_eq!(get(&kv, "timestamp"), Some("1741946417"));
        assert!(acc_pairs("no marker here").is_none());
        assert!(acc_pairs("ACC: call missed: ").is_none());
        assert!(looks_like_text(line));
        assert!(looks_like_text(r#"{"time":1,"method":"BYE","callid":"x"}"#));
        assert!(!looks_like_text(r#"{"level":"info"}"#));
    }

    #[test]
    fn codes() {
        assert_eq!(code_disposition(486), Disposition::Busy);
        assert_eq!(code_disposition(487), Disposition::Cancelled);
        assert_eq!(code_disposition(480), Disposition::NoAnswer);
        assert_eq!(code_disposition(503), Disposition::Congestion);
        assert_eq!(code_disposition(404), Disposition::Failed);
    }
}

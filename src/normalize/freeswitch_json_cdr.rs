//! The `freeswitch_json_cdr` preset: `mod_json_cdr` documents as the Collector's `json_parser`
//! delivers them (`variables`, `callStats`, `callflow` as maps and arrays; every variable a
//! URL-encoded string), or the JSON text in the body. A-legs only: a B-leg is ignored.
//!
//! Also owns the reading of FreeSWITCH channel variables ([`Vars`]) that `freeswitch_event`
//! reuses for `CHANNEL_HANGUP_COMPLETE` (`variable_*` headers).

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::attributes::freeswitch_cdr::{self as fs, var};
use super::body::{self, Attrs};
use super::coerce::{self, Invalid, Problem};
use super::generic::{Fields, Overrides};
use super::{Ctx, Out};
use crate::event::{CallRecord, Direction, Disposition, QualityFields, VoipEventKind};

const WHAT: &str = "freeswitch_json_cdr";

// Variable slots.
const UUID: usize = 0;
const CALL_UUID: usize = 1;
const ORIGINATING_LEG_UUID: usize = 2;
const DIRECTION: usize = 3;
const PROFILE: usize = 4;
const GATEWAY: usize = 5;
const LAST_ARG: usize = 6;
const HANGUP_CAUSE: usize = 7;
const HANGUP_CAUSE_Q850: usize = 8;
const SIP_TERM_STATUS: usize = 9;
const SIP_INVITE_FAILURE_STATUS: usize = 10;
const ANSWER_EPOCH: usize = 11;
const END_UEPOCH: usize = 12;
const DURATION: usize = 13;
const MDURATION: usize = 14;
const BILLSEC: usize = 15;
const BILLMSEC: usize = 16;
const ANSWERMSEC: usize = 17;
const PROGRESSMSEC: usize = 18;
const PROGRESS_MEDIAMSEC: usize = 19;
const READ_CODEC: usize = 20;
const USE_CODEC: usize = 21;
const IN_MOS: usize = 22;
const IN_PACKETS: usize = 23;
const IN_FLAWS: usize = 24;
const END_EPOCH: usize = 25;
const VARS: usize = 26;

const VAR_NAMES: [&str; VARS] = [
    var::UUID,
    var::CALL_UUID,
    var::ORIGINATING_LEG_UUID,
    var::DIRECTION,
    var::SOFIA_PROFILE_NAME,
    var::SIP_GATEWAY_NAME,
    var::LAST_ARG,
    var::HANGUP_CAUSE,
    var::HANGUP_CAUSE_Q850,
    var::SIP_TERM_STATUS,
    var::SIP_INVITE_FAILURE_STATUS,
    var::ANSWER_EPOCH,
    var::END_UEPOCH,
    var::DURATION,
    var::MDURATION,
    var::BILLSEC,
    var::BILLMSEC,
    var::ANSWERMSEC,
    var::PROGRESSMSEC,
    var::PROGRESS_MEDIAMSEC,
    var::READ_CODEC,
    var::RTP_USE_CODEC_NAME,
    var::RTP_AUDIO_IN_MOS,
    var::RTP_AUDIO_IN_PACKET_COUNT,
    var::RTP_AUDIO_IN_FLAW_TOTAL,
    var::END_EPOCH,
];

fn var_slot(name: &str) -> Option<usize> {
    Some(match name {
        var::UUID => UUID,
        var::CALL_UUID => CALL_UUID,
        var::ORIGINATING_LEG_UUID => ORIGINATING_LEG_UUID,
        var::DIRECTION => DIRECTION,
        var::SOFIA_PROFILE_NAME => PROFILE,
        var::SIP_GATEWAY_NAME => GATEWAY,
        var::LAST_ARG => LAST_ARG,
        var::HANGUP_CAUSE => HANGUP_CAUSE,
        var::HANGUP_CAUSE_Q850 => HANGUP_CAUSE_Q850,
        var::SIP_TERM_STATUS => SIP_TERM_STATUS,
        var::SIP_INVITE_FAILURE_STATUS => SIP_INVITE_FAILURE_STATUS,
        var::ANSWER_EPOCH => ANSWER_EPOCH,
        var::END_UEPOCH => END_UEPOCH,
        var::DURATION => DURATION,
        var::MDURATION => MDURATION,
        var::BILLSEC => BILLSEC,
        var::BILLMSEC => BILLMSEC,
        var::ANSWERMSEC => ANSWERMSEC,
        var::PROGRESSMSEC => PROGRESSMSEC,
        var::PROGRESS_MEDIAMSEC => PROGRESS_MEDIAMSEC,
        var::READ_CODEC => READ_CODEC,
        var::RTP_USE_CODEC_NAME => USE_CODEC,
        var::RTP_AUDIO_IN_MOS => IN_MOS,
        var::RTP_AUDIO_IN_PACKET_COUNT => IN_PACKETS,
        var::RTP_AUDIO_IN_FLAW_TOTAL => IN_FLAWS,
        var::END_EPOCH => END_EPOCH,
        _ => return None,
    })
}

/// FreeSWITCH channel variables, read in one pass; values URL-decoded when read.
pub(crate) struct Vars<'a> {
    v: [Option<&'a AnyValue>; VARS],
    what: &'static str,
    /// Prefix of the keys in messages (`variable_` for event headers).
    prefix: &'static str,
}

impl<'a> Vars<'a> {
    /// Empty, to be filled with [`Vars::set`].
    pub(crate) fn new(what: &'static str, prefix: &'static str) -> Self {
        Vars {
            v: [None; VARS],
            what,
            prefix,
        }
    }

    /// Reads a `variables` map.
    pub(crate) fn from_list(list: &'a [KeyValue], what: &'static str) -> Self {
        Vars {
            v: coerce::collect(list, var_slot),
            what,
            prefix: "variables.",
        }
    }

    /// Records variable `name` (the first value wins).
    pub(crate) fn set(&mut self, name: &str, value: Option<&'a AnyValue>) {
        if let Some(i) = var_slot(name)
            && self.v[i].is_none()
        {
            self.v[i] = value;
        }
    }

    fn err(&self, i: usize, p: Problem) -> Invalid {
        Invalid::new(self.what, format!("{}{}", self.prefix, VAR_NAMES[i]), p)
    }

    fn text(&self, i: usize) -> Result<Option<Cow<'a, str>>, Invalid> {
        let Some(v) = self.v[i] else { return Ok(None) };
        let t = coerce::text(v).map_err(|p| self.err(i, p))?;
        Ok(t.map(|t| match t {
            Cow::Borrowed(s) => coerce::url_decode(s),
            Cow::Owned(s) => Cow::Owned(coerce::url_decode(&s).into_owned()),
        })
        .filter(|t| !t.trim().is_empty()))
    }

    fn number(&self, i: usize) -> Result<Option<f64>, Invalid> {
        match self.text(i)? {
            None => Ok(None),
            Some(t) => coerce::number_str(&t).map_err(|p| self.err(i, p)),
        }
    }

    /// A non-negative number of `1/per_second` seconds (1000 for ms) as a duration; 0 → `None`
    /// when `zero_is_none` (FreeSWITCH writes 0 for milestones never reached).
    fn duration(
        &self,
        i: usize,
        per_second: f64,
        zero_is_none: bool,
    ) -> Result<Option<Duration>, Invalid> {
        match self.number(i)? {
            None => Ok(None),
            Some(n) if zero_is_none && n == 0.0 => Ok(None),
            Some(n) => coerce::seconds_from(n / per_second)
                .map(Some)
                .map_err(|p| self.err(i, p)),
        }
    }

    fn code(&self, i: usize) -> Result<Option<u16>, Invalid> {
        match self.number(i)? {
            None | Some(0.0) => Ok(None),
            Some(n) => coerce::integer_from(n, 100, 699)
                .map(|n| Some(n as u16))
                .map_err(|p| self.err(i, p)),
        }
    }

    /// The leg's own id.
    pub(crate) fn uuid(&self) -> Result<Option<String>, Invalid> {
        Ok(self
            .text(UUID)?
            .or(self.text(CALL_UUID)?)
            .map(Cow::into_owned))
    }

    /// Set on B-legs by originate.
    pub(crate) fn has_originating_leg(&self) -> bool {
        self.v[ORIGINATING_LEG_UUID].is_some()
    }

    /// End of the leg: `end_uepoch` (µs), else `end_epoch` (s). Both are UTC epochs, unlike
    /// the local-time `end_stamp`.
    pub(crate) fn end_time(&self) -> Option<SystemTime> {
        let positive = |i: usize| self.number(i).ok().flatten().filter(|n| *n > 0.0);
        positive(END_UEPOCH)
            .map(|us| UNIX_EPOCH + Duration::from_micros(us as u64))
            .or_else(|| positive(END_EPOCH).and_then(super::epoch_secs))
    }

    /// Direction and trunk: a `bridge` to `sofia/gateway/<gw>/…` in `last_arg` → outbound on
    /// `gw`; `sip_gateway_name` → on that gateway, outbound when FreeSWITCH originated the leg,
    /// else inbound; profile `external` → inbound, `internal` → internal.
    pub(crate) fn route(&self) -> Result<(Direction, Option<String>), Invalid> {
        if let Some(arg) = self.text(LAST_ARG)?
            && let Some(gw) = bridged_gateway(&arg)
        {
            return Ok((Direction::Outbound, Some(gw.to_owned())));
        }
        if let Some(gw) = self.text(GATEWAY)? {
            let outbound = self
                .text(DIRECTION)?
                .is_some_and(|d| d.eq_ignore_ascii_case("outbound"));
            let dir = if outbound {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            return Ok((dir, Some(gw.into_owned())));
        }
        Ok(match self.text(PROFILE)?.as_deref() {
            Some(p) if p.eq_ignore_ascii_case("external") => (Direction::Inbound, None),
            Some(p) if p.eq_ignore_ascii_case("internal") => (Direction::Internal, None),
            _ => (Direction::Unknown, None),
        })
    }

    /// Quality of the inbound stream: the `callStats.audio.inbound` map when given, else the
    /// `rtp_audio_in_*` variables.
    fn quality(&self, stats: Option<&[KeyValue]>) -> Result<QualityFields, Invalid> {
        let (mos, packets, flaws) = match stats {
            Some(list) => {
                let [mos, packets, flaws] = coerce::collect(list, |k| match k {
                    fs::MOS => Some(0),
                    fs::PACKET_COUNT => Some(1),
                    fs::FLAW_TOTAL => Some(2),
                    _ => None,
                });
                let num = |v: Option<&AnyValue>, key: &'static str| match v {
                    None => Ok(None),
                    Some(v) => coerce::number(v).map_err(|p| {
                        Invalid::new(self.what, format!("callStats.audio.inbound.{key}"), p)
                    }),
                };
                (
                    num(mos, fs::MOS)?,
                    num(packets, fs::PACKET_COUNT)?,
                    num(flaws, fs::FLAW_TOTAL)?,
                )
            }
            None => (
                self.number(IN_MOS)?,
                self.number(IN_PACKETS)?,
                self.number(IN_FLAWS)?,
            ),
        };
        let loss_ratio = match (packets, flaws) {
            (Some(p), Some(f)) if p >= 0.0 && f >= 0.0 && p + f > 0.0 => Some(f / (p + f)),
            _ => None,
        };
        Ok(QualityFields {
            loss_ratio,
            codec: self
                .text(READ_CODEC)?
                .or(self.text(USE_CODEC)?)
                .map(Cow::into_owned),
            // Legs without media report 0; FreeSWITCH's scale tops at 4.5.
            reported_mos: mos.filter(|m| (1.0..=5.0).contains(m)),
            ..QualityFields::default()
        })
    }

    /// The call record of the leg. `call_id` replaces the leg's own id when given;
    /// `cause_name` is the hangup cause when the variables lack it (an event header).
    pub(crate) fn call_record(
        &self,
        call_id: Option<String>,
        cause_name: Option<&str>,
        stats: Option<&[KeyValue]>,
        overrides: Overrides,
    ) -> Result<CallRecord, Invalid> {
        let call_id = match call_id {
            Some(id) => id,
            None => self
                .uuid()?
                .ok_or_else(|| self.err(UUID, Problem::Missing))?,
        };
        let billable = self
            .duration(BILLMSEC, 1000.0, false)?
            .or(self.duration(BILLSEC, 1.0, false)?);
        let answered = self.number(ANSWER_EPOCH)?.is_some_and(|e| e > 0.0)
            || billable.is_some_and(|b| !b.is_zero());
        let disposition = if answered {
            Disposition::Answered
        } else {
            let cause = self.text(HANGUP_CAUSE)?;
            cause_disposition(cause.as_deref().or(cause_name).unwrap_or(""))
        };
        let pdd = match self.duration(PROGRESSMSEC, 1000.0, true)? {
            Some(p) => Some(p),
            None => match self.duration(PROGRESS_MEDIAMSEC, 1000.0, true)? {
                Some(p) => Some(p),
                None if answered => self.duration(ANSWERMSEC, 1000.0, true)?,
                None => None,
            },
        };
        let (dir, trunk) = self.route()?;
        Ok(CallRecord {
            call_id,
            disposition,
            duration: self
                .duration(MDURATION, 1000.0, false)?
                .or(self.duration(DURATION, 1.0, false)?),
            billable_duration: billable,
            post_dial_delay: pdd,
            trunk: overrides.trunk.or(trunk),
            direction: overrides.direction.unwrap_or(dir),
            sip_status: self
                .code(SIP_TERM_STATUS)?
                .or(self.code(SIP_INVITE_FAILURE_STATUS)?),
            hangup_cause: match self.number(HANGUP_CAUSE_Q850)? {
                None => None,
                Some(n) => Some(
                    coerce::integer_from(n, 0, i64::from(u16::MAX))
                        .map_err(|p| self.err(HANGUP_CAUSE_Q850, p))? as u16,
                ),
            },
            quality: self.quality(stats)?,
        })
    }
}

/// The gateway of a `bridge` target `sofia/gateway/<gw>/<number>`.
fn bridged_gateway(arg: &str) -> Option<&str> {
    const MARK: &str = "sofia/gateway/";
    let at = arg.find(MARK)? + MARK.len();
    let gw = arg.get(at..)?.split(['/', ',', '|', ']']).next()?;
    (!gw.is_empty()).then_some(gw)
}

/// The disposition of an unanswered leg from FreeSWITCH's hangup cause name.
pub(crate) fn cause_disposition(cause: &str) -> Disposition {
    match cause.trim() {
        "USER_BUSY" => Disposition::Busy,
        "NO_ANSWER" | "NO_USER_RESPONSE" | "ALLOTTED_TIMEOUT" => Disposition::NoAnswer,
        "ORIGINATOR_CANCEL" | "LOSE_RACE" => Disposition::Cancelled,
        "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" => Disposition::Congestion,
        _ => Disposition::Failed,
    }
}

/// True when a `callflow` (array, or the object of FreeSWITCH before 2015) has a caller profile
/// with an `originator`: the leg was originated by another, it is a B-leg.
fn originated(callflow: Option<&AnyValue>) -> bool {
    let has = |step: &AnyValue| {
        coerce::kvlist(Some(step))
            .and_then(|s| coerce::kvlist(coerce::find(s, fs::CALLER_PROFILE)))
            .is_some_and(|p| p.iter().any(|kv| kv.key == fs::ORIGINATOR))
    };
    match coerce::array(callflow) {
        Some(steps) => steps.iter().any(has),
        None => callflow.is_some_and(has),
    }
}

/// True when the attributes have the JSON CDR shape: a `variables` map beside `core-uuid`,
/// `channel_data` or `callStats`.
pub(crate) fn is_top_key(key: &str) -> bool {
    matches!(key, fs::CORE_UUID | fs::CHANNEL_DATA | fs::CALL_STATS)
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, fields: &Fields<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let attrs = if ctx
        .record
        .attributes
        .iter()
        .any(|kv| kv.key == fs::VARIABLES)
    {
        Attrs::Record(&ctx.record.attributes)
    } else {
        match body::body_text(ctx.record).and_then(body::json_object) {
            Some(p) => Attrs::Parsed(p),
            None => return Err(Invalid::new(WHAT, fs::VARIABLES, Problem::Missing)),
        }
    };
    let [variables, stats, callflow] = coerce::collect(attrs.as_slice(), |k| match k {
        fs::VARIABLES => Some(0),
        fs::CALL_STATS => Some(1),
        fs::CALLFLOW => Some(2),
        _ => None,
    });
    let list = match variables {
        None => return Err(Invalid::new(WHAT, fs::VARIABLES, Problem::Missing)),
        Some(v) => coerce::kvlist(Some(v)).ok_or_else(|| {
            Invalid::new(
                WHAT,
                fs::VARIABLES,
                Problem::WrongType {
                    expected: "a map",
                    got: coerce::kind(v),
                },
            )
        })?,
    };
    let vars = Vars::from_list(list, WHAT);
    if vars.has_originating_leg() || originated(callflow) {
        return Ok(()); // a B-leg: its A-leg's CDR describes the call
    }
    let inbound = coerce::kvlist(stats)
        .and_then(|s| coerce::kvlist(coerce::find(s, fs::AUDIO)))
        .and_then(|a| coerce::kvlist(coerce::find(a, fs::INBOUND)));
    let record = vars.call_record(None, None, inbound, fields.overrides(WHAT)?)?;
    out.push(ctx.event(VoipEventKind::Cdr(record), vars.end_time()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_in_bridge_targets() {
        assert_eq!(
            bridged_gateway("sofia/gateway/carrier-a/4155550100"),
            Some("carrier-a")
        );
        assert_eq!(
            bridged_gateway("{ignore_early_media=true}sofia/gateway/gw2/1,user/1002"),
            Some("gw2")
        );
        assert_eq!(bridged_gateway("user/1002@example.com"), None);
    }

    #[test]
    fn causes() {
        assert_eq!(cause_disposition("USER_BUSY"), Disposition::Busy);
        assert_eq!(cause_disposition("NO_ANSWER"), Disposition::NoAnswer);
        assert_eq!(
            cause_disposition("ORIGINATOR_CANCEL"),
            Disposition::Cancelled
        );
        assert_eq!(
            cause_disposition("NORMAL_CIRCUIT_CONGESTION"),
            Disposition::Congestion
        );
        assert_eq!(cause_disposition("CALL_REJECTED"), Disposition::Failed);
        assert_eq!(cause_disposition(""), Disposition::Failed);
    }

    #[test]
    fn every_variable_has_a_slot() {
        for (i, name) in VAR_NAMES.iter().enumerate() {
            assert_eq!(var_slot(name), Some(i), "{name}");
        }
    }
}

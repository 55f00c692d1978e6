//! The `asterisk_queue_log` preset: lines of Asterisk's `queue_log`
//! (`epoch|callid|queue|agent|EVENT|data1|data2|…`) delivered unparsed in the body.
//!
//! `ENTERQUEUE`, `CONNECT` and `ABANDON` become queue events; every other queue_log event
//! (agent state, timeouts and key exits, which are not abandons) is ignored.

use super::attributes::queue_log as ql;
use super::body;
use super::coerce::{self, Invalid, Problem};
use super::{Ctx, Out, epoch_text};
use crate::event::{QueueOutcome, VoipEventKind};

const WHAT: &str = "asterisk_queue_log";
/// Field names of a line, for messages.
const FIELDS: [&str; 8] = [
    "epoch",
    "callid",
    "queuename",
    "agent",
    "event",
    "data1",
    "data2",
    "data3",
];
/// Call ids that name no call.
const NO_CALL: [&str; 3] = ["NONE", "MANAGER", "REALTIME"];

/// True when `line` has the queue_log shape: an epoch, four more fields, an upper-case event.
pub(crate) fn looks_like_line(line: &str) -> bool {
    let mut it = line.trim().split('|');
    let epoch = it.next().unwrap_or("");
    let event = it.nth(3).unwrap_or("");
    !epoch.is_empty()
        && epoch.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && !event.is_empty()
        && event
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c == b'_' || c.is_ascii_digit())
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let line = body::body_text(ctx.record)
        .map(str::trim)
        .ok_or_else(|| Invalid::record(WHAT, "no queue_log line in the body"))?;
    let f: Vec<&str> = line.split('|').collect();
    if f.len() < 5 {
        return Err(Invalid::record(
            WHAT,
            format!(
                "expected epoch|callid|queue|agent|event, got {} fields",
                f.len()
            ),
        ));
    }
    let field = |i: usize| f.get(i).map(|s| s.trim()).filter(|s| !s.is_empty());
    let time = epoch_text(f[0]);
    let wait = |i: usize| match field(i) {
        None => Ok(None),
        Some(s) => coerce::number_str(s)
            .and_then(|n| n.map(coerce::seconds_from).transpose())
            .map_err(|p| Invalid::new(WHAT, FIELDS[i], p)),
    };
    let (outcome, wait_time) = match f[4].trim() {
        ql::ENTERQUEUE => (QueueOutcome::Join, None),
        ql::CONNECT => (QueueOutcome::Answer, wait(5)?),
        ql::ABANDON => (QueueOutcome::Abandon, wait(7)?),
        _ => return Ok(()),
    };
    let queue = field(2).ok_or_else(|| Invalid::new(WHAT, FIELDS[2], Problem::Missing))?;
    let call_id = field(1).filter(|c| !NO_CALL.contains(c)).map(str::to_owned);
    let kind = VoipEventKind::Queue {
        queue: queue.to_owned(),
        outcome,
        call_id,
        wait_time,
    };
    out.push(ctx.event(kind, time));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape() {
        assert!(looks_like_line(
            "1741943000|1741942990.12|support|NONE|ENTERQUEUE||1001|1"
        ));
        assert!(looks_like_line(
            "1741943000|NONE|support|PJSIP/1003|ADDMEMBER|"
        ));
        assert!(!looks_like_line("hello|world"));
        assert!(!looks_like_line("abc|a|b|c|ENTERQUEUE"));
        assert!(!looks_like_line("1741943000|a|b|c|enterqueue"));
    }
}

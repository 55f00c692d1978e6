//! Shape detection: which native preset a record looks like, for records that carry no contract
//! event name and match no `sources` entry. Cheap on purpose — it runs for every such record,
//! ignored ones included: one pass over the attribute keys, then a few substring checks on a
//! string body. Parses nothing beyond one CSV split for a line with ≥ 15 commas.

use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::attributes::ami::EVENT as AMI_EVENT;
use super::attributes::freeswitch_event::EVENT_NAME as FS_EVENT_NAME;
use super::attributes::{freeswitch_cdr as fs, kamailio as k};
use super::{asterisk_ami, asterisk_cdr_csv, asterisk_queue_log, body, coerce, freeswitch_event};
use super::{freeswitch_json_cdr, kamailio_acc};
use crate::config::Preset;

/// The preset whose shape `record` has, if any.
pub(crate) fn detect(record: &LogRecord) -> Option<Preset> {
    let mut variables = false;
    let mut fs_top = false;
    let mut csv_columns = 0;
    let mut method = false;
    let mut call_id = false; // or an acc_json sip_code
    for kv in &record.attributes {
        let key = kv.key.as_str();
        if asterisk_ami::is_event_key(key) {
            if coerce::str_of(kv.value.as_ref()).is_some_and(asterisk_ami::is_mapped_event) {
                return Some(Preset::AsteriskAmi);
            }
        } else if freeswitch_event::is_event_key(key) {
            return Some(Preset::FreeswitchEvent);
        } else if key == fs::VARIABLES {
            variables = coerce::kvlist(kv.value.as_ref()).is_some();
        } else if freeswitch_json_cdr::is_top_key(key) {
            fs_top = true;
        } else if asterisk_cdr_csv::is_row_key(key) {
            csv_columns += 1;
        } else if key == k::METHOD {
            method = true;
        } else if key == k::CALL_ID || key == k::CALLID || key == k::SIP_CODE {
            call_id = true;
        } else if key == k::MESSAGE
            && coerce::str_of(kv.value.as_ref()).is_some_and(kamailio_acc::looks_like_text)
        {
            return Some(Preset::KamailioAcc);
        }
    }
    if variables && fs_top {
        return Some(Preset::FreeswitchJsonCdr);
    }
    if csv_columns == 3 {
        return Some(Preset::AsteriskCdrCsv);
    }
    if method && call_id {
        return Some(Preset::KamailioAcc);
    }
    body::body_text(record).and_then(detect_text)
}

/// The preset of a string body.
fn detect_text(text: &str) -> Option<Preset> {
    let t = text.trim_start();
    if t.starts_with('{') {
        // A JSON object: look for each shape's tell-tale keys without parsing.
        let has = |key: &str| {
            t.match_indices(key).any(|(i, _)| {
                t[..i].ends_with('"')
                    && t[i + key.len()..]
                        .strip_prefix('"')
                        .is_some_and(|r| r.trim_start().starts_with(':'))
            })
        };
        if has(FS_EVENT_NAME) {
            return Some(Preset::FreeswitchEvent);
        }
        if has(fs::VARIABLES)
            && (has(fs::CORE_UUID) || has(fs::CHANNEL_DATA) || has(fs::CALL_STATS))
        {
            return Some(Preset::FreeswitchJsonCdr);
        }
        if has(AMI_EVENT) {
            return Some(Preset::AsteriskAmi);
        }
        if kamailio_acc::looks_like_text(t) {
            return Some(Preset::KamailioAcc);
        }
        return None;
    }
    if t.contains(k::ACC_MARKER) {
        return Some(Preset::KamailioAcc);
    }
    if header_first(t, FS_EVENT_NAME) {
        return Some(Preset::FreeswitchEvent);
    }
    if header_first(t, AMI_EVENT) {
        return Some(Preset::AsteriskAmi);
    }
    if asterisk_queue_log::looks_like_line(t) {
        return Some(Preset::AsteriskQueueLog);
    }
    if asterisk_cdr_csv::looks_like_line(t) {
        return Some(Preset::AsteriskCdrCsv);
    }
    None
}

/// True when the text starts with the header `key: `.
fn header_first(t: &str, key: &str) -> bool {
    t.strip_prefix(key).is_some_and(|r| r.starts_with(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shapes() {
        assert_eq!(
            detect_text(r#"{"Event-Name":"CHANNEL_CREATE","Unique-ID":"x"}"#),
            Some(Preset::FreeswitchEvent)
        );
        assert_eq!(
            detect_text(r#"{"core-uuid":"u","variables":{"uuid":"x"}}"#),
            Some(Preset::FreeswitchJsonCdr)
        );
        assert_eq!(
            detect_text(r#"{"Event":"Hangup","Uniqueid":"1.1"}"#),
            Some(Preset::AsteriskAmi)
        );
        assert_eq!(
            detect_text(r#"{"time":1,"method":"INVITE","callid":"c","sip_code":"200"}"#),
            Some(Preset::KamailioAcc)
        );
        assert_eq!(detect_text(r#"{"level":"info","msg":"Event"}"#), None);
        assert_eq!(
            detect_text("Event: Hangup\r\nPrivilege: call,all\r\n"),
            Some(Preset::AsteriskAmi)
        );
        assert_eq!(
            detect_text("Event-Name: CUSTOM\nEvent-Subclass: sofia%3A%3Aregister\n"),
            Some(Preset::FreeswitchEvent)
        );
        assert_eq!(
            detect_text("1741943000|1741942990.12|support|NONE|ENTERQUEUE||1001|1"),
            Some(Preset::AsteriskQueueLog)
        );
        assert_eq!(
            detect_text(
                "kamailio[1]: NOTICE: ACC: transaction answered: method=BYE;call_id=x;code=200"
            ),
            Some(Preset::KamailioAcc)
        );
        assert_eq!(detect_text("GET /healthz 200"), None);
        assert_eq!(detect_text("a,b,c"), None);
    }
}

//! Native shapes that arrive as text instead of parsed attributes — a JSON object, a
//! `Key: Value` header block (AMI, FreeSWITCH plain events), a CSV line — turned into the same
//! key/value lists the presets read from attributes. Fallback paths: allocation is fine here.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

/// Attributes a preset reads: the record's own, or a list parsed from its body.
pub(crate) enum Attrs<'a> {
    /// The record's attributes.
    Record(&'a [KeyValue]),
    /// Parsed from text.
    Parsed(Vec<KeyValue>),
}

impl Attrs<'_> {
    /// The list.
    pub(crate) fn as_slice(&self) -> &[KeyValue] {
        match self {
            Attrs::Record(a) => a,
            Attrs::Parsed(v) => v,
        }
    }
}

/// The record's body when it is a string.
pub(crate) fn body_text(record: &LogRecord) -> Option<&str> {
    match record.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// A JSON object's members as key/values (numbers → int or double, objects → kvlist).
pub(crate) fn json_object(text: &str) -> Option<Vec<KeyValue>> {
    let t = text.trim();
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<serde_json::Value>(t).ok()? {
        serde_json::Value::Object(map) => Some(
            map.into_iter()
                .map(|(k, v)| KeyValue {
                    key: k,
                    value: Some(json_value(v)),
                    ..Default::default()
                })
                .collect(),
        ),
        _ => None,
    }
}

fn json_value(v: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(Value::BoolValue(b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => Some(Value::IntValue(i)),
            None => n.as_f64().map(Value::DoubleValue),
        },
        J::String(s) => Some(Value::StringValue(s)),
        J::Array(a) => Some(Value::ArrayValue(ArrayValue {
            values: a.into_iter().map(json_value).collect(),
        })),
        J::Object(map) => Some(Value::KvlistValue(KeyValueList {
            values: map
                .into_iter()
                .map(|(k, v)| KeyValue {
                    key: k,
                    value: Some(json_value(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// A `Key: Value` block (one header per line, `\r\n` or `\n`), as AMI writes events and
/// FreeSWITCH writes plain events. `decode` URL-decodes the values (ESL plain format).
/// `None` unless the first line is `first_key: …`.
pub(crate) fn header_block(text: &str, first_key: &str, decode: bool) -> Option<Vec<KeyValue>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.strip_prefix(' ').unwrap_or(v);
        let v = if decode {
            super::coerce::url_decode(v).into_owned()
        } else {
            v.to_owned()
        };
        out.push(string_kv(k.trim(), v));
    }
    (out.first()?.key == first_key).then_some(out)
}

/// A string key/value.
pub(crate) fn string_kv(k: &str, v: String) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v)),
        }),
        ..Default::default()
    }
}

/// Splits one CSV line (`"` quotes, `""` inside quotes, `,` separators), as Asterisk writes
/// `Master.csv`. `None` for an unterminated quote.
pub(crate) fn csv_fields(line: &str) -> Option<Vec<Cow<'_, str>>> {
    let line = line.trim_end_matches(['\r', '\n']);
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(21);
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            // Quoted field: up to the closing quote, `""` is one quote.
            let mut field = String::new();
            let mut start = i + 1;
            let mut j = start;
            loop {
                match b.get(j) {
                    None => return None,
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        field.push_str(line.get(start..=j)?);
                        j += 2;
                        start = j;
                    }
                    Some(b'"') => {
                        field.push_str(line.get(start..j)?);
                        j += 1;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            out.push(Cow::Owned(field));
            // Skip anything up to the separator (lenient, like lazy quotes).
            match line.get(j..)?.find(',') {
                Some(off) => i = j + off + 1,
                None => return Some(out),
            }
        } else {
            match line.get(i..)?.find(',') {
                Some(off) => {
                    out.push(Cow::Borrowed(line.get(i..i + off)?));
                    i += off + 1;
                }
                None => {
                    out.push(Cow::Borrowed(line.get(i..)?));
                    return Some(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_as_asterisk_writes_them() {
        let line = r#""","1001","1002","from-internal","""Alice Smith"" <1001>","PJSIP/1001-0000002a","PJSIP/1002-0000002b","Dial","PJSIP/1002,30,tT","2025-03-14 09:02:11",,"2025-03-14 09:02:31",20,0,"NO ANSWER","DOCUMENTATION""#;
        let f = csv_fields(line).unwrap();
        assert_eq!(f.len(), 16);
        assert_eq!(f[4], "\"Alice Smith\" <1001>");
        assert_eq!(f[8], "PJSIP/1002,30,tT");
        assert_eq!(f[10], "");
        assert_eq!(f[12], "20");
        assert_eq!(f[14], "NO ANSWER");
        assert_eq!(csv_fields("a,,b\r\n").unwrap(), ["a", "", "b"]);
        assert_eq!(csv_fields("\"open").map(|v| v.len()), None);
        assert_eq!(csv_fields("").unwrap(), [""]);
    }

    #[test]
    fn json_objects_become_key_values() {
        let kv = json_object(r#"{"a":1,"b":2.5,"c":"x","d":{"e":[true,null]}}"#).unwrap();
        assert_eq!(kv.len(), 4);
        assert_eq!(
            kv[0].value.as_ref().unwrap().value,
            Some(Value::IntValue(1))
        );
        assert_eq!(
            kv[1].value.as_ref().unwrap().value,
            Some(Value::DoubleValue(2.5))
        );
        assert!(matches!(
            kv[3].value.as_ref().unwrap().value,
            Some(Value::KvlistValue(_))
        ));
        assert!(json_object("[1]").is_none());
        assert!(json_object("{broken").is_none());
        assert!(json_object("plain").is_none());
    }

    #[test]
    fn header_blocks() {
        let kv = header_block(
            "Event: Hangup\r\nPrivilege: call,all\r\nCause-txt: Normal Clearing\r\nEmpty: \r\n",
            "Event",
            false,
        )
        .unwrap();
        assert_eq!(kv.len(), 4);
        assert_eq!(kv[2].key, "Cause-txt");
        assert_eq!(
            kv[2].value.as_ref().unwrap().value,
            Some(Value::StringValue("Normal Clearing".into()))
        );
        let kv = header_block(
            "Event-Name: CUSTOM\nfrom-user: 1001%40x",
            "Event-Name",
            true,
        )
        .unwrap();
        assert_eq!(
            kv[1].value.as_ref().unwrap().value,
            Some(Value::StringValue("1001@x".into()))
        );
        assert!(header_block("Privilege: x\nEvent: y", "Event", false).is_none());
    }
}

//! A borrowing reader of an encoded OTLP `ExportLogsServiceRequest`: strings, bytes and numbers
//! are read in place, so a request costs a few `Vec`s instead of a `String` per attribute key
//! and value (what `prost` spends most of its decode time on, and as much again freeing them).
//!
//! It validates the whole message in one pass before anything is used, at least as strictly as
//! `prost` (wire types, varint and length overruns, UTF-8 of every string field, nesting), and
//! declines ([`LogsView::parse`] returns `None`) whatever it does not handle exactly as `prost`
//! does: malformed input, a singular field given twice (`prost` merges or replaces), groups, deep
//! nesting. A declined request is then decoded by `prost` as a whole, so `prost` alone decides
//! what is rejected and with which message; the view only ever reads requests that `prost`
//! decodes to the same values. Unknown fields are skipped, as `prost` skips them.
//!
//! A top-level module rather than part of `receiver`: `normalize` reads the view (and must not
//! depend on the receiver), and the receiver only hands it the bytes. Field numbers and types are
//! those of opentelemetry-proto's `logs.proto`, `common.proto` and `resource.proto`.

use std::ops::Range;

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};

/// An OTLP `AnyValue`, borrowed: from a `prost` [`AnyValue`] (no copy) or from the wire.
/// Nested arrays and key/value lists are validated but not exposed: a reader that needs their
/// contents decodes the record with `prost` ([`RecordView::raw`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AnyRef<'a> {
    /// An `AnyValue` with no value set.
    Empty,
    /// `string_value`.
    Str(&'a str),
    /// `bool_value`.
    Bool(bool),
    /// `int_value`.
    Int(i64),
    /// `double_value`.
    Double(f64),
    /// `bytes_value`.
    Bytes(&'a [u8]),
    /// `array_value`.
    Array,
    /// `kvlist_value`.
    Kvlist,
    /// `string_value_strindex` (a profiles dictionary index).
    StrIndex(i32),
}

impl AnyRef<'_> {
    /// The OTLP type name, for messages.
    pub(crate) fn type_name(self) -> &'static str {
        match self {
            AnyRef::Empty => "an empty value",
            AnyRef::Str(_) => "string",
            AnyRef::Bool(_) => "bool",
            AnyRef::Int(_) => "int",
            AnyRef::Double(_) => "double",
            AnyRef::Array => "array",
            AnyRef::Kvlist => "kvlist",
            AnyRef::Bytes(_) => "bytes",
            AnyRef::StrIndex(_) => "string index",
        }
    }
}

impl<'a> From<&'a AnyValue> for AnyRef<'a> {
    #[inline]
    fn from(v: &'a AnyValue) -> Self {
        match &v.value {
            None => AnyRef::Empty,
            Some(Value::StringValue(s)) => AnyRef::Str(s),
            Some(Value::BoolValue(b)) => AnyRef::Bool(*b),
            Some(Value::IntValue(i)) => AnyRef::Int(*i),
            Some(Value::DoubleValue(d)) => AnyRef::Double(*d),
            Some(Value::BytesValue(b)) => AnyRef::Bytes(b),
            Some(Value::ArrayValue(_)) => AnyRef::Array,
            Some(Value::KvlistValue(_)) => AnyRef::Kvlist,
            Some(Value::StringValueStrindex(i)) => AnyRef::StrIndex(*i),
        }
    }
}

/// One attribute: its key and, when the `value` field is present, its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Attr<'a> {
    /// `key`.
    pub key: &'a str,
    /// `value`; `None` when the field is absent (as `prost`'s `Option<AnyValue>`).
    pub value: Option<AnyRef<'a>>,
}

/// One `ResourceLogs`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourceView<'a> {
    /// The encoded `Resource` message, when present.
    pub resource: Option<&'a [u8]>,
    attributes: Range<usize>,
    scopes: Range<usize>,
    records: Range<usize>,
}

/// One `ScopeLogs`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ScopeView<'a> {
    /// The scope's `name` (empty when there is no scope).
    pub name: &'a str,
    /// The scope's `version`.
    pub version: &'a str,
    records: Range<usize>,
}

/// One `LogRecord`: the fields the contract path reads, and its encoding for everything else.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordView<'a> {
    /// The encoded `LogRecord` (for `LogRecord::decode` when a preset needs the whole record).
    pub raw: &'a [u8],
    /// `time_unix_nano`.
    pub time_unix_nano: u64,
    /// `observed_time_unix_nano`.
    pub observed_time_unix_nano: u64,
    /// `event_name`.
    pub event_name: &'a str,
    /// `body`, when present.
    pub body: Option<AnyRef<'a>>,
    attributes: Range<usize>,
}

/// A validated request, read in place. Records and attributes of every resource sit in flat
/// lists (one allocation each per request, none per value).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct LogsView<'a> {
    resources: Vec<ResourceView<'a>>,
    scopes: Vec<ScopeView<'a>>,
    records: Vec<RecordView<'a>>,
    attributes: Vec<Attr<'a>>,
}

/// Deepest message nesting the view reads (the request is depth 0, an attribute's value 5);
/// deeper requests are left to `prost`, whose own limit (100) is far beyond this.
const MAX_DEPTH: u32 = 32;

// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

impl<'a> LogsView<'a> {
    /// Reads an encoded `ExportLogsServiceRequest`; `None` when the view declines it (see the
    /// module doc): the caller decodes it with `prost` instead.
    pub(crate) fn parse(buf: &'a [u8]) -> Option<Self> {
        let mut view = LogsView {
            records: Vec::with_capacity(buf.len() / 256),
            attributes: Vec::with_capacity(buf.len() / 32),
            ..LogsView::default()
        };
        let mut r = Reader::new(buf);
        while !r.done() {
            match r.key()? {
                (1, LEN) => {
                    let msg = r.bytes()?;
                    view.resource_logs(msg, 1)?;
                }
                (1, _) => return None,
                (_, wire) => r.skip(wire)?,
            }
        }
        Some(view)
    }

    /// The `ResourceLogs`, in order.
    pub(crate) fn resources(&self) -> &[ResourceView<'a>] {
        &self.resources
    }

    /// The `ScopeLogs` of a resource.
    #[allow(
        dead_code,
        reason = "exposed for readers of the scope; the VoIP mapping reads none"
    )]
    pub(crate) fn scopes(&self, resource: &ResourceView<'a>) -> &[ScopeView<'a>] {
        self.scopes.get(resource.scopes.clone()).unwrap_or(&[])
    }

    /// The log records of a resource, over all its scopes, in order.
    pub(crate) fn records(&self, resource: &ResourceView<'a>) -> &[RecordView<'a>] {
        self.records.get(resource.records.clone()).unwrap_or(&[])
    }

    /// The log records of a scope.
    #[allow(
        dead_code,
        reason = "exposed for readers of the scope; the VoIP mapping reads none"
    )]
    pub(crate) fn scope_records(&self, scope: &ScopeView<'a>) -> &[RecordView<'a>] {
        self.records.get(scope.records.clone()).unwrap_or(&[])
    }

    /// A resource's attributes.
    pub(crate) fn resource_attributes(&self, resource: &ResourceView<'a>) -> &[Attr<'a>] {
        self.attributes
            .get(resource.attributes.clone())
            .unwrap_or(&[])
    }

    /// A record's attributes.
    pub(crate) fn attributes(&self, record: &RecordView<'a>) -> &[Attr<'a>] {
        self.attributes
            .get(record.attributes.clone())
            .unwrap_or(&[])
    }

    /// Number of log records in the request.
    pub(crate) fn record_count(&self) -> usize {
        self.records.len()
    }

    /// `ResourceLogs`: 1 resource, 2 scope_logs, 3 schema_url.
    fn resource_logs(&mut self, buf: &'a [u8], depth: u32) -> Option<()> {
        let mut r = Reader::new(buf);
        let mut seen = Seen::default();
        let mut resource = None;
        let mut attributes = 0..0;
        let scopes_start = self.scopes.len();
        let records_start = self.records.len();
        while !r.done() {
            match r.key()? {
                (1, LEN) => {
                    seen.once(1)?;
                    let msg = r.bytes()?;
                    attributes = self.resource(msg, depth + 1)?;
                    resource = Some(msg);
                }
                (2, LEN) => {
                    let msg = r.bytes()?;
                    self.scope_logs(msg, depth + 1)?;
                }
                (3, LEN) => {
                    seen.once(3)?;
                    r.str()?;
                }
                (1..=3, _) => return None,
                (_, wire) => r.skip(wire)?,
            }
        }
        self.resources.push(ResourceView {
            resource,
            attributes,
            scopes: scopes_start..self.scopes.len(),
            records: records_start..self.records.len(),
        });
        Some(())
    }

    /// `Resource`: 1 attributes, 2 dropped_attributes_count, 3 entity_refs. Returns where its
    /// attributes went.
    fn resource(&mut self, buf: &'a [u8], depth: u32) -> Option<Range<usize>> {
        enter(depth)?;
        let mut r = Reader::new(buf);
        let mut seen = Seen::default();
        let start = self.attributes.len();
        while !r.done() {
            match r.key()? {
                (1, LEN) => {
                    let attr = key_value(r.bytes()?, depth + 1)?;
                    self.attributes.push(attr);
                }
                (2, VARINT) => {
                    seen.once(2)?;
                    r.varint()?;
                }
                (3, LEN) => entity_ref(r.bytes()?, depth + 1)?,
                (1..=3, _) => return None,
                (_, wire) => r.skip(wire)?,
            }
        }
        Some(start..self.attributes.len())
    }

    /// `ScopeLogs`: 1 scope, 2 log_records, 3 schema_url.
    fn scope_logs(&mut self, buf: &'a [u8], depth: u32) -> Option<()> {
        enter(depth)?;
        let mut r = Reader::new(buf);
        let mut seen = Seen::default();
        let mut scope = ("", "");
        let start = self.records.len();
        while !r.done() {
            match r.key()? {
                (1, LEN) => {
                    seen.once(1)?;
                    scope = instrumentation_scope(r.bytes()?, depth + 1)?;
                }
                (2, LEN) => {
                    let msg = r.bytes()?;
                    self.log_record(msg, depth + 1)?;
                }
                (3, LEN) => {
                    seen.once(3)?;
                    r.str()?;
                }
                (1..=3, _) => return None,
                (_, wire) => r.skip(wire)?,
            }
        }
        self.scopes.push(ScopeView {
            name: scope.0,
            version: scope.1,
            records: start..self.records.len(),
        });
        Some(())
    }

    /// `LogRecord`: 1 time_unix_nano, 2 severity_number, 3 severity_text, 5 body,
    /// 6 attributes, 7 dropped_attributes_count, 8 flags, 9 trace_id, 10 span_id,
    /// 11 observed_time_unix_nano, 12 event_name.
    fn log_record(&mut self, buf: &'a [u8], depth: u32) -> Option<()> {
        enter(depth)?;
        let mut r = Reader::new(buf);
        let mut seen = Seen::default();
        let mut rec = RecordView {
            raw: buf,
            time_unix_nano: 0,
            observed_time_unix_nano: 0,
            event_name: "",
            body: None,
            attributes: 0..0,
        };
        let start = self.attributes.len();
        while !r.done() {
            let (tag, wire) = r.key()?;
            // 4 is reserved (an unknown field to `prost`); 6 is repeated.
            if (1..=12).contains(&tag) && tag != 4 && tag != 6 {
                seen.once(tag)?;
            }
            match (tag, wire) {
                (1, FIXED64) => rec.time_unix_nano = r.fixed64()?,
                (11, FIXED64) => rec.observed_time_unix_nano = r.fixed64()?,
                (2 | 7, VARINT) => {
                    r.varint()?;
                }
                (3, LEN) => {
                    r.str()?;
                }
                (5, LEN) => rec.body = Some(any_value(r.bytes()?, depth + 1)?),
                (6, LEN) => {
                    let attr = key_value(r.bytes()?, depth + 1)?;
                    self.attributes.push(attr);
                }
                (8, FIXED32) => {
                    r.fixed32()?;
                }
                (9 | 10, LEN) => {
                    r.bytes()?;
                }
                (12, LEN) => rec.event_name = r.str()?,
                (4, wire) => r.skip(wire)?,
                (1..=12, _) => return None,
                (_, wire) => r.skip(wire)?,
            }
        }
        rec.attributes = start..self.attributes.len();
        self.records.push(rec);
        Some(())
    }
}

/// Fails when a message at `depth` is too deep for the view.
fn enter(depth: u32) -> Option<()> {
    (depth <= MAX_DEPTH).then_some(())
}

/// `InstrumentationScope`: 1 name, 2 version, 3 attributes, 4 dropped_attributes_count.
fn instrumentation_scope(buf: &[u8], depth: u32) -> Option<(&str, &str)> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    let mut seen = Seen::default();
    let (mut name, mut version) = ("", "");
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                seen.once(1)?;
                name = r.str()?;
            }
            (2, LEN) => {
                seen.once(2)?;
                version = r.str()?;
            }
            (3, LEN) => {
                key_value(r.bytes()?, depth + 1)?;
            }
            (4, VARINT) => {
                seen.once(4)?;
                r.varint()?;
            }
            (1..=4, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some((name, version))
}

/// `EntityRef`: 1 schema_url, 2 type, 3 id_keys, 4 description_keys.
fn entity_ref(buf: &[u8], depth: u32) -> Option<()> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    let mut seen = Seen::default();
    while !r.done() {
        match r.key()? {
            (tag @ (1 | 2), LEN) => {
                seen.once(tag)?;
                r.str()?;
            }
            (3 | 4, LEN) => {
                r.str()?;
            }
            (1..=4, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

/// `KeyValue`: 1 key, 2 value, 3 key_strindex.
fn key_value(buf: &[u8], depth: u32) -> Option<Attr<'_>> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    let mut seen = Seen::default();
    let mut attr = Attr {
        key: "",
        value: None,
    };
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                seen.once(1)?;
                attr.key = r.str()?;
            }
            (2, LEN) => {
                seen.once(2)?;
                attr.value = Some(any_value(r.bytes()?, depth + 1)?);
            }
            (3, VARINT) => {
                seen.once(3)?;
                r.varint()?;
            }
            (1..=3, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(attr)
}

/// `AnyValue`: the oneof `value`, 1 string, 2 bool, 3 int, 4 double, 5 array, 6 kvlist,
/// 7 bytes, 8 string_value_strindex. A second member of the oneof (which `prost` merges or
/// replaces) makes the view decline.
fn any_value(buf: &[u8], depth: u32) -> Option<AnyRef<'_>> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    let mut value = AnyRef::Empty;
    let mut set = false;
    while !r.done() {
        let (tag, wire) = r.key()?;
        if (1..=8).contains(&tag) {
            if set {
                return None;
            }
            set = true;
        }
        value = match (tag, wire) {
            (1, LEN) => AnyRef::Str(r.str()?),
            (2, VARINT) => AnyRef::Bool(r.varint()? != 0),
            // As `prost` reads int64 and int32: the varint's low bits.
            (3, VARINT) => AnyRef::Int(r.varint()? as i64),
            (4, FIXED64) => AnyRef::Double(f64::from_bits(r.fixed64()?)),
            (5, LEN) => {
                array_value(r.bytes()?, depth + 1)?;
                AnyRef::Array
            }
            (6, LEN) => {
                kvlist_value(r.bytes()?, depth + 1)?;
                AnyRef::Kvlist
            }
            (7, LEN) => AnyRef::Bytes(r.bytes()?),
            (8, VARINT) => AnyRef::StrIndex(r.varint()? as i32),
            (1..=8, _) => return None,
            (_, wire) => {
                r.skip(wire)?;
                value
            }
        };
    }
    Some(value)
}

/// `ArrayValue`: 1 values.
fn array_value(buf: &[u8], depth: u32) -> Option<()> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                any_value(r.bytes()?, depth + 1)?;
            }
            (1, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

/// `KeyValueList`: 1 values.
fn kvlist_value(buf: &[u8], depth: u32) -> Option<()> {
    enter(depth)?;
    let mut r = Reader::new(buf);
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                key_value(r.bytes()?, depth + 1)?;
            }
            (1, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

/// Singular fields seen in one message (tags 1..=31): a second occurrence declines.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn once(&mut self, tag: u32) -> Option<()> {
        let bit = 1u32.checked_shl(tag)?;
        if self.0 & bit != 0 {
            return None;
        }
        self.0 |= bit;
        Some(())
    }
}

/// Protobuf wire primitives over one message's bytes; `None` on anything malformed.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn done(&self) -> bool {
        self.buf.is_empty()
    }

    /// A varint as `prost` accepts it: at most 10 bytes, the 10th at most 1.
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return None;
                }
                self.buf = &self.buf[i + 1..];
                return Some(value);
            }
        }
        None
    }

    /// A field key: (tag, wire type). Keys `prost` refuses (over 32 bits, tag 0) decline.
    #[inline]
    fn key(&mut self) -> Option<(u32, u8)> {
        let key = u32::try_from(self.varint()?).ok()?;
        let tag = key >> 3;
        (tag != 0).then_some((tag, (key & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    /// A length-delimited field's bytes.
    #[inline]
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    /// A string field: UTF-8, as `prost` checks it.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    fn fixed64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    }

    fn fixed32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes(b.try_into().ok()?))
    }

    /// Skips an unknown field as `prost` does; groups (deprecated, never in OTLP) decline.
    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValue, KeyValueList};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    use crate::normalize::in_place_tests::{any, kv};

    fn every_type() -> Vec<KeyValue> {
        vec![
            kv("s", Some(any(Value::StringValue("x".into())))),
            kv("e", Some(any(Value::StringValue(String::new())))),
            kv("b", Some(any(Value::BoolValue(true)))),
            kv("i", Some(any(Value::IntValue(-7)))),
            kv("d", Some(any(Value::DoubleValue(1.5)))),
            kv("y", Some(any(Value::BytesValue(vec![0, 255])))),
            kv(
                "a",
                Some(any(Value::ArrayValue(ArrayValue {
                    values: vec![any(Value::IntValue(1))],
                }))),
            ),
            kv(
                "k",
                Some(any(Value::KvlistValue(KeyValueList {
                    values: vec![kv("n", None)],
                }))),
            ),
            kv("x", Some(any(Value::StringValueStrindex(3)))),
            kv("empty", Some(AnyValue { value: None })),
            kv("none", None),
        ]
    }

    fn request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv("host.name", Some(any(Value::StringValue("h".into()))))],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(Default::default()),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: 5,
                            observed_time_unix_nano: 6,
                            event_name: "voip.cdr".into(),
                            body: Some(any(Value::StringValue("b".into()))),
                            attributes: every_type(),
                            severity_text: "INFO".into(),
                            trace_id: vec![1; 16],
                            flags: 1,
                            ..Default::default()
                        },
                        LogRecord::default(),
                    ],
                    ..Default::default()
                }],
                schema_url: "u".into(),
            }],
        }
    }

    #[test]
    fn reads_what_prost_encodes() {
        let req = request();
        let bytes = req.encode_to_vec();
        let view = LogsView::parse(&bytes).unwrap();
        assert_eq!(view.record_count(), 2);
        let res = &view.resources()[0];
        assert_eq!(view.resource_attributes(res)[0].key, "host.name");
        assert_eq!(view.scopes(res).len(), 1);
        let rec = &view.records(res)[0];
        assert_eq!(
            (
                rec.time_unix_nano,
                rec.observed_time_unix_nano,
                rec.event_name
            ),
            (5, 6, "voip.cdr")
        );
        assert_eq!(rec.body, Some(AnyRef::Str("b")));
        let want = &req.resource_logs[0].scope_logs[0].log_records[0];
        let got: Vec<_> = view.attributes(rec).to_vec();
        let expected: Vec<_> = want
            .attributes
            .iter()
            .map(|kv| Attr {
                key: &kv.key,
                value: kv.value.as_ref().map(AnyRef::from),
            })
            .collect();
        assert_eq!(got, expected);
        assert_eq!(LogRecord::decode(rec.raw).unwrap(), *want);
        assert_eq!(view.scope_records(&view.scopes(res)[0]).len(), 2);
    }

    #[test]
    fn declines_what_it_does_not_handle_like_prost() {
        let good = request().encode_to_vec();
        let mut cases: Vec<Vec<u8>> = vec![
            good[..good.len() - 1].to_vec(),         // truncated
            [&good[..], &[0x0a, 0x05][..]].concat(), // length overrun
            [&good[..], &[0x0b][..]].concat(),       // group
            [&good[..], &[0x08, 0x01][..]].concat(), // known field, wrong wire type
            [&good[..], &[0x00][..]].concat(),       // tag 0
            [&good[..], &[0xff; 11][..]].concat(),   // varint too long
        ];
        // A string with bad UTF-8, a value with two members of its oneof, a repeated singular.
        let mut bad_utf8 = request();
        bad_utf8.resource_logs[0].scope_logs[0].log_records[0].event_name = "voip.cdr".into();
        let mut b = bad_utf8.encode_to_vec();
        let at = b.windows(8).position(|w| w == b"voip.cdr").unwrap();
        b[at] = 0xff;
        cases.push(b);
        let two_members = [0x0a, 0x01, b'a', 0x18, 0x01]; // string then int
        let kv = [&[0x12, two_members.len() as u8][..], &two_members].concat();
        let rec = [&[0x32, kv.len() as u8][..], &kv].concat();
        let scope = [&[0x12, rec.len() as u8][..], &rec].concat();
        let rl = [&[0x12, scope.len() as u8][..], &scope].concat();
        cases.push([&[0x0a, rl.len() as u8][..], &rl].concat());
        let twice = [0x09, 0, 0, 0, 0, 0, 0, 0, 1, 0x09, 0, 0, 0, 0, 0, 0, 0, 2];
        let scope = [&[0x12, twice.len() as u8][..], &twice[..]].concat();
        let rl = [&[0x12, scope.len() as u8][..], &scope].concat();
        cases.push([&[0x0a, rl.len() as u8][..], &rl].concat());
        for (i, c) in cases.iter().enumerate() {
            assert!(LogsView::parse(c).is_none(), "case {i} not declined");
        }
        // Unknown fields of every wire type are skipped.
        let unknown = [
            &good[..],
            &[
                0x78, 0x01, 0x79, 0, 0, 0, 0, 0, 0, 0, 0, 0x7a, 0x01, 0, 0x7d, 0, 0, 0, 0,
            ][..],
        ]
        .concat();
        assert_eq!(LogsView::parse(&unknown).map(|v| v.record_count()), Some(2));
    }

    #[test]
    fn ten_byte_varints_as_prost_reads_them() {
        let good = request().encode_to_vec();
        let with = |last: u8| {
            let mut b = good.clone();
            b.push(0x78); // tag 15, varint: unknown
            b.extend([0xff; 9]);
            b.push(last);
            b
        };
        let max = with(0x01);
        assert!(ExportLogsServiceRequest::decode(&max[..]).is_ok());
        assert!(LogsView::parse(&max).is_some());
        let over = with(0x02);
        assert!(ExportLogsServiceRequest::decode(&over[..]).is_err());
        assert!(LogsView::parse(&over).is_none());
    }

    #[test]
    fn nesting_past_the_depth_declines() {
        let mut v = any(Value::IntValue(1));
        for _ in 0..20 {
            v = any(Value::ArrayValue(ArrayValue { values: vec![v] }));
        }
        let mut req = request();
        req.resource_logs[0].scope_logs[0].log_records[1].body = Some(v);
        let bytes = req.encode_to_vec();
        assert!(ExportLogsServiceRequest::decode(&bytes[..]).is_ok());
        assert!(LogsView::parse(&bytes).is_none());
    }
}

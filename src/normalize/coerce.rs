//! Reading OTLP attribute values whatever type the collector gave them: numbers as int, double
//! or string, text from any scalar, durations in seconds, ratios 0..1. Owns the "why not" of a
//! value ([`Problem`], [`Invalid`]); knows no event names.
//!
//! An empty string reads as absent (CSV and key=value parsers deliver missing fields as `""`).
//!
//! The readers take any value that converts to an [`AnyRef`]: a `prost` `&AnyValue` (the native
//! presets, the JSON path) or a value read in place from the wire (`otlp_wire`), so both ways in
//! share one set of rules and messages.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

pub(crate) use crate::otlp_wire::AnyRef;

/// Why one value could not be read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Problem {
    /// A required field is absent (or empty).
    Missing,
    /// The value has a type that cannot be coerced (`expected a number, got kvlist`).
    WrongType {
        /// What was wanted.
        expected: &'static str,
        /// The OTLP type found.
        got: &'static str,
    },
    /// The value has the right type but cannot be read (`expected seconds, got "abc"`).
    BadValue {
        /// What was wanted.
        expected: &'static str,
        /// The value, shortened.
        value: String,
    },
    /// Anything a preset needs to say in its own words (`wrong number of fields: 12`).
    Other(String),
}

/// A record that is a VoIP event but cannot be mapped: what, which key, why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    /// The event or native shape (`voip.cdr`, `asterisk_ami Hangup`).
    pub what: Cow<'static, str>,
    /// The offending key (empty for whole-record problems).
    pub key: Cow<'static, str>,
    /// The problem.
    pub problem: Problem,
}

impl Invalid {
    /// A problem with one key.
    pub(crate) fn new(
        what: impl Into<Cow<'static, str>>,
        key: impl Into<Cow<'static, str>>,
        problem: Problem,
    ) -> Self {
        Invalid {
            what: what.into(),
            key: key.into(),
            problem,
        }
    }

    /// A problem with the record as a whole.
    pub(crate) fn record(what: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Invalid {
            what: what.into(),
            key: Cow::Borrowed(""),
            problem: Problem::Other(reason.into()),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, key) = (&self.what, &self.key);
        match &self.problem {
            Problem::Missing => write!(f, "{what}: missing {key}"),
            Problem::WrongType { expected, got } => {
                write!(f, "{what}: {key}: expected {expected}, got {got}")
            }
            Problem::BadValue { expected, value } => {
                write!(f, "{what}: {key}: expected {expected}, got {value:?}")
            }
            Problem::Other(reason) if key.is_empty() => write!(f, "{what}: {reason}"),
            Problem::Other(reason) => write!(f, "{what}: {key}: {reason}"),
        }
    }
}

/// The OTLP type name of a value, for messages.
pub(crate) fn kind<'a>(v: impl Into<AnyRef<'a>>) -> &'static str {
    v.into().type_name()
}

/// Shortens an input value for a message (64 characters at most).
pub(crate) fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn bad(expected: &'static str, value: &str) -> Problem {
    Problem::BadValue {
        expected,
        value: shorten(value),
    }
}

/// A string (an int, a double or a bool is rendered as text). `None` for an empty string or
/// an empty value.
pub(crate) fn text<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<Cow<'a, str>>, Problem> {
    match v.into() {
        AnyRef::Str("") => Ok(None),
        AnyRef::Str(s) => Ok(Some(Cow::Borrowed(s))),
        AnyRef::Int(i) => Ok(Some(Cow::Owned(i.to_string()))),
        AnyRef::Double(d) if d.is_finite() && d.fract() == 0.0 && d.abs() < 1e15 => {
            Ok(Some(Cow::Owned(format!("{d:.0}"))))
        }
        AnyRef::Double(d) => Ok(Some(Cow::Owned(d.to_string()))),
        AnyRef::Bool(b) => Ok(Some(Cow::Borrowed(if b { "true" } else { "false" }))),
        AnyRef::Empty => Ok(None),
        other => Err(Problem::WrongType {
            expected: "a string",
            got: other.type_name(),
        }),
    }
}

/// A string value without coercion: `None` for every other type (used to recognise shapes).
pub(crate) fn str_of<'a, V: Into<AnyRef<'a>>>(v: Option<V>) -> Option<&'a str> {
    match v.map(Into::into) {
        Some(AnyRef::Str(s)) => Some(s),
        _ => None,
    }
}

/// A finite number from an int, a double or a numeric string (surrounding blanks allowed).
pub(crate) fn number<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<f64>, Problem> {
    match v.into() {
        AnyRef::Int(i) => Ok(Some(i as f64)),
        AnyRef::Double(d) if d.is_finite() => Ok(Some(d)),
        AnyRef::Double(d) => Err(bad("a finite number", &d.to_string())),
        AnyRef::Str(s) => number_str(s),
        AnyRef::Empty => Ok(None),
        other => Err(Problem::WrongType {
            expected: "a number",
            got: other.type_name(),
        }),
    }
}

/// A finite number from text; `None` for blank text.
pub(crate) fn number_str(s: &str) -> Result<Option<f64>, Problem> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Some(n)),
        _ => Err(bad("a number", s)),
    }
}

/// A non-negative duration in seconds (fractions allowed).
pub(crate) fn seconds<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<Duration>, Problem> {
    number(v).and_then(|n| n.map(seconds_from).transpose())
}

/// A duration from a number of seconds; negative or absurd (> 10 years) values are refused.
pub(crate) fn seconds_from(n: f64) -> Result<Duration, Problem> {
    const TEN_YEARS: f64 = 10.0 * 365.0 * 86_400.0;
    if (0.0..=TEN_YEARS).contains(&n) {
        Ok(Duration::from_secs_f64(n))
    } else {
        Err(bad("seconds ≥ 0", &n.to_string()))
    }
}

/// A ratio 0..1. A value in (1, 100] is taken as a percent and divided by 100; anything else
/// outside 0..1 is refused.
pub(crate) fn ratio<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<f64>, Problem> {
    number(v).and_then(|n| n.map(ratio_from).transpose())
}

/// See [`ratio`].
pub(crate) fn ratio_from(n: f64) -> Result<f64, Problem> {
    if (0.0..=1.0).contains(&n) {
        Ok(n)
    } else if n > 1.0 && n <= 100.0 {
        Ok(n / 100.0)
    } else {
        Err(bad("a ratio 0..1 (or a percent)", &n.to_string()))
    }
}

/// A whole number within `lo..=hi` (`486`, `486.0`, `"486"`).
pub(crate) fn integer_in<'a>(
    v: impl Into<AnyRef<'a>>,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>, Problem> {
    number(v).and_then(|n| n.map(|n| integer_from(n, lo, hi)).transpose())
}

/// See [`integer_in`].
pub(crate) fn integer_from(n: f64, lo: i64, hi: i64) -> Result<i64, Problem> {
    if n.fract() == 0.0 && n >= lo as f64 && n <= hi as f64 {
        Ok(n as i64)
    } else {
        Err(bad("a whole number in range", &n.to_string()))
    }
}

/// A SIP status code, 100..=699.
pub(crate) fn sip_status<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<u16>, Problem> {
    integer_in(v, 100, 699).map(|n| n.map(|n| n as u16))
}

/// A Q.850 (or PBX-specific) cause number, 0..=65535.
pub(crate) fn cause<'a>(v: impl Into<AnyRef<'a>>) -> Result<Option<u16>, Problem> {
    integer_in(v, 0, i64::from(u16::MAX)).map(|n| n.map(|n| n as u16))
}

/// The key/value list of a kvlist value.
pub(crate) fn kvlist(v: Option<&AnyValue>) -> Option<&[KeyValue]> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::KvlistValue(l)) => Some(&l.values),
        _ => None,
    }
}

/// The elements of an array value.
pub(crate) fn array(v: Option<&AnyValue>) -> Option<&[AnyValue]> {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::ArrayValue(a)) => Some(&a.values),
        _ => None,
    }
}

/// One pass over a key/value list: `slot(key)` says where a key goes; the first value of each
/// slot wins. This is how every preset reads its fields (no per-key linear search).
#[inline]
pub(crate) fn collect<const N: usize>(
    attrs: &[KeyValue],
    slot: impl Fn(&str) -> Option<usize>,
) -> [Option<&AnyValue>; N] {
    collect_by(
        attrs.iter().map(|kv| (kv.key.as_str(), kv.value.as_ref())),
        slot,
    )
}

/// [`collect`] over (key, value) pairs of any form: `prost` attributes or attributes read from
/// the wire. A pair without a value fills nothing, so a later pair with the same key can.
#[inline]
pub(crate) fn collect_by<'k, T: Copy, const N: usize>(
    pairs: impl IntoIterator<Item = (&'k str, Option<T>)>,
    slot: impl Fn(&str) -> Option<usize>,
) -> [Option<T>; N] {
    let mut out = [None; N];
    for (key, value) in pairs {
        if let Some(i) = slot(key)
            && let Some(cell) = out.get_mut(i)
            && cell.is_none()
        {
            *cell = value;
        }
    }
    out
}

/// The value of one key (a linear search, for the few lookups outside a [`collect`] pass).
pub(crate) fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// Lowercases an ASCII key into `buf` for case-insensitive matching; `None` when it is too long
/// to be one of ours.
pub(crate) fn lower<'b>(key: &str, buf: &'b mut [u8; 48]) -> Option<&'b str> {
    let bytes = key.as_bytes();
    let dst = buf.get_mut(..bytes.len())?;
    for (d, s) in dst.iter_mut().zip(bytes) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(dst).ok()
}

/// Decodes `%XX` escapes (FreeSWITCH URL-encodes CDR values and plain event headers). `+` is
/// left alone: FreeSWITCH encodes a plus as `%2B`. A malformed escape is kept as written.
pub(crate) fn url_decode(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    pub(crate) fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(Value::StringValue(v.into())),
        }
    }
    pub(crate) fn i(v: i64) -> AnyValue {
        AnyValue {
            value: Some(Value::IntValue(v)),
        }
    }
    pub(crate) fn d(v: f64) -> AnyValue {
        AnyValue {
            value: Some(Value::DoubleValue(v)),
        }
    }
    pub(crate) fn b(v: bool) -> AnyValue {
        AnyValue {
            value: Some(Value::BoolValue(v)),
        }
    }
    pub(crate) fn kvl(pairs: Vec<(&str, AnyValue)>) -> AnyValue {
        AnyValue {
            value: Some(Value::KvlistValue(KeyValueList {
                values: pairs
                    .into_iter()
                    .map(|(k, v)| KeyValue {
                        key: k.into(),
                        value: Some(v),
                        ..Default::default()
                    })
                    .collect(),
            })),
        }
    }

    #[test]
    fn numbers_come_as_int_double_or_string() {
        assert_eq!(number(&i(12)), Ok(Some(12.0)));
        assert_eq!(number(&d(12.5)), Ok(Some(12.5)));
        assert_eq!(number(&s("12")), Ok(Some(12.0)));
        assert_eq!(number(&s(" 12.5 ")), Ok(Some(12.5)));
        assert_eq!(number(&s("")), Ok(None));
        assert!(matches!(number(&s("abc")), Err(Problem::BadValue { .. })));
        assert!(matches!(number(&s("NaN")), Err(Problem::BadValue { .. })));
        assert!(matches!(
            number(&d(f64::INFINITY)),
            Err(Problem::BadValue { .. })
        ));
        assert_eq!(
            number(&kvl(vec![])),
            Err(Problem::WrongType {
                expected: "a number",
                got: "kvlist"
            })
        );
        assert!(matches!(number(&b(true)), Err(Problem::WrongType { .. })));
    }

    #[test]
    fn seconds_accept_fractions_and_refuse_negatives() {
        assert_eq!(seconds(&s("1.5")), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(seconds(&i(0)), Ok(Some(Duration::ZERO)));
        assert!(seconds(&i(-1)).is_err());
        assert!(seconds(&d(1e12)).is_err());
        assert!(seconds(&s("abc")).is_err());
    }

    #[test]
    fn ratios_accept_percents_above_one() {
        assert_eq!(ratio(&d(0.05)), Ok(Some(0.05)));
        assert_eq!(ratio(&i(1)), Ok(Some(1.0)));
        assert_eq!(ratio(&s("5")), Ok(Some(0.05)));
        assert_eq!(ratio(&d(100.0)), Ok(Some(1.0)));
        assert!(ratio(&d(100.5)).is_err());
        assert!(ratio(&d(-0.1)).is_err());
    }

    #[test]
    fn integers_and_codes() {
        assert_eq!(sip_status(&s("486")), Ok(Some(486)));
        assert_eq!(sip_status(&d(200.0)), Ok(Some(200)));
        assert!(sip_status(&d(200.5)).is_err());
        assert!(sip_status(&i(99)).is_err());
        assert!(sip_status(&i(700)).is_err());
        assert_eq!(cause(&i(16)), Ok(Some(16)));
        assert!(cause(&i(-1)).is_err());
    }

    #[test]
    fn text_renders_scalars() {
        assert_eq!(text(&s("abc")).unwrap().as_deref(), Some("abc"));
        assert_eq!(text(&i(42)).unwrap().as_deref(), Some("42"));
        assert_eq!(text(&d(42.0)).unwrap().as_deref(), Some("42"));
        assert_eq!(text(&d(1.5)).unwrap().as_deref(), Some("1.5"));
        assert_eq!(text(&s("")).unwrap(), None);
        let arr = AnyValue {
            value: Some(Value::ArrayValue(ArrayValue { values: vec![] })),
        };
        assert!(matches!(
            text(&arr),
            Err(Problem::WrongType { got: "array", .. })
        ));
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("1001%40pbx.example.com"), "1001@pbx.example.com");
        assert_eq!(
            url_decode("2025-03-14%2010%3A00%3A05"),
            "2025-03-14 10:00:05"
        );
        assert_eq!(url_decode("plain"), "plain");
        assert_eq!(url_decode("bad%zzescape%4"), "bad%zzescape%4");
        assert_eq!(url_decode("a+b"), "a+b");
        assert_eq!(url_decode("caf%C3%A9"), "café");
    }

    #[test]
    fn messages_name_the_key() {
        let m = Invalid::new("voip.cdr", "voip.call.disposition", Problem::Missing);
        assert_eq!(m.to_string(), "voip.cdr: missing voip.call.disposition");
        let m = Invalid::new("voip.cdr", "voip.call.duration", bad("seconds", "abc"));
        assert_eq!(
            m.to_string(),
            "voip.cdr: voip.call.duration: expected seconds, got \"abc\""
        );
        assert_eq!(shorten(&"x".repeat(100)).chars().count(), 65);
    }

    #[test]
    fn collect_takes_the_first_value_per_slot() {
        let attrs = vec![
            KeyValue {
                key: "a".into(),
                value: Some(i(1)),
                ..Default::default()
            },
            KeyValue {
                key: "b".into(),
                value: Some(i(2)),
                ..Default::default()
            },
            KeyValue {
                key: "a".into(),
                value: Some(i(3)),
                ..Default::default()
            },
        ];
        let got: [Option<&AnyValue>; 2] = collect(&attrs, |k| match k {
            "a" => Some(0),
            "b" => Some(1),
            _ => None,
        });
        assert_eq!(got[0], Some(&i(1)));
        assert_eq!(got[1], Some(&i(2)));
        let mut buf = [0u8; 48];
        assert_eq!(lower("Uniqueid", &mut buf), Some("uniqueid"));
        assert_eq!(lower(&"k".repeat(60), &mut buf), None);
    }
}

//! The `asterisk_cdr_csv` preset: `Master.csv` rows (`cdr_csv`) as the Collector's `csv_parser`
//! delivers them — the column names as attributes, every value a string — or, when no parser
//! ran, the raw line in the body, split here by its column count (16–21).
//!
//! Also owns the Asterisk channel-name heuristics (trunk and direction) that `asterisk_ami`
//! reuses, and the CDR row mapping shared with AMI `Cdr` events.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::AnyValue;

use super::attributes::asterisk_csv as col;
use super::body;
use super::coerce::{self, Invalid, Problem};
use super::generic::{Fields, Overrides};
use super::{Ctx, Out};
use crate::event::{CallRecord, Direction, Disposition, QualityFields, VoipEventKind};

const WHAT: &str = "asterisk_cdr_csv";

/// The columns a CDR row mapping reads, as text (owned when split from a line).
#[derive(Debug, Default)]
pub(crate) struct Row<'a> {
    pub uniqueid: Option<Cow<'a, str>>,
    pub linkedid: Option<Cow<'a, str>>,
    pub channel: Option<Cow<'a, str>>,
    pub dstchannel: Option<Cow<'a, str>>,
    pub dcontext: Option<Cow<'a, str>>,
    pub duration: Option<Cow<'a, str>>,
    pub billsec: Option<Cow<'a, str>>,
    pub disposition: Option<Cow<'a, str>>,
}

/// Keys under which a [`Row`]'s columns were found, for messages.
pub(crate) struct RowKeys {
    pub uniqueid: &'static str,
    pub duration: &'static str,
    pub billsec: &'static str,
    pub disposition: &'static str,
}

const CSV_KEYS: RowKeys = RowKeys {
    uniqueid: col::UNIQUEID,
    duration: col::DURATION,
    billsec: col::BILLSEC,
    disposition: col::DISPOSITION,
};

/// True when the attributes look like a `csv_parser`-parsed `Master.csv` row.
pub(crate) fn is_row_key(key: &str) -> bool {
    matches!(key, col::DISPOSITION | col::BILLSEC | col::DURATION)
}

/// Maps one record.
pub(crate) fn map(ctx: &Ctx<'_>, fields: &Fields<'_>, out: &mut Out<'_>) -> Result<(), Invalid> {
    let attrs = &ctx.record.attributes;
    let row = if attrs.iter().any(|kv| kv.key == col::DISPOSITION) {
        row_from_attributes(attrs)?
    } else {
        let line = body::body_text(ctx.record).ok_or_else(|| {
            Invalid::record(WHAT, "no Master.csv columns and no line in the body")
        })?;
        row_from_line(line)?
    };
    let record = call_record(&row, WHAT, &CSV_KEYS, fields.overrides(WHAT)?)?;
    out.push_row(ctx.event(VoipEventKind::Cdr(record), None));
    Ok(())
}

fn text_of<'a>(
    v: Option<&'a AnyValue>,
    key: &'static str,
) -> Result<Option<Cow<'a, str>>, Invalid> {
    match v {
        None => Ok(None),
        Some(v) => coerce::text(v).map_err(|p| Invalid::new(WHAT, key, p)),
    }
}

fn row_from_attributes(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
) -> Result<Row<'_>, Invalid> {
    let [
        uniqueid,
        linkedid,
        channel,
        dstchannel,
        dcontext,
        duration,
        billsec,
        disposition,
    ] = coerce::collect(attrs, |k| {
        Some(match k {
            col::UNIQUEID => 0,
            col::LINKEDID => 1,
            col::CHANNEL => 2,
            col::DSTCHANNEL => 3,
            col::DCONTEXT => 4,
            col::DURATION => 5,
            col::BILLSEC => 6,
            col::DISPOSITION => 7,
            _ => return None,
        })
    });
    Ok(Row {
        uniqueid: text_of(uniqueid, col::UNIQUEID)?,
        linkedid: text_of(linkedid, col::LINKEDID)?,
        channel: text_of(channel, col::CHANNEL)?,
        dstchannel: text_of(dstchannel, col::DSTCHANNEL)?,
        dcontext: text_of(dcontext, col::DCONTEXT)?,
        duration: text_of(duration, col::DURATION)?,
        billsec: text_of(billsec, col::BILLSEC)?,
        disposition: text_of(disposition, col::DISPOSITION)?,
    })
}

/// The column names of a line with `n` fields; `uid_like` says whether field 17 looks like a
/// `uniqueid` (`epoch.seq`), which decides what a 17- or 20-column file carries.
pub(crate) fn header_for(n: usize, uid_like: bool) -> Option<Vec<&'static str>> {
    let mut h: Vec<&'static str> = col::BASE.to_vec();
    let one = if uid_like {
        col::UNIQUEID
    } else {
        col::USERFIELD
    };
    match n {
        16 => {}
        17 => h.push(one),
        18 => h.extend([col::UNIQUEID, col::USERFIELD]),
        19 => h.extend(col::NEW_COLUMNS),
        20 => {
            h.push(one);
            h.extend(col::NEW_COLUMNS);
        }
        21 => {
            h.extend([col::UNIQUEID, col::USERFIELD]);
            h.extend(col::NEW_COLUMNS);
        }
        _ => return None,
    }
    Some(h)
}

fn looks_like_uniqueid(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Splits a raw `Master.csv` line and names its columns by their count.
pub(crate) fn row_from_line(line: &str) -> Result<Row<'_>, Invalid> {
    let fields = body::csv_fields(line)
        .ok_or_else(|| Invalid::record(WHAT, "unterminated quote in the line"))?;
    let uid_like = fields.get(16).is_some_and(|f| looks_like_uniqueid(f));
    let header = header_for(fields.len(), uid_like).ok_or_else(|| {
        Invalid::record(
            WHAT,
            format!(
                "wrong number of fields: {} (Master.csv has 16 to 21)",
                fields.len()
            ),
        )
    })?;
    let mut row = Row::default();
    for (name, value) in header.into_iter().zip(fields) {
        let value = (!value.is_empty()).then_some(value);
        match name {
            col::UNIQUEID => row.uniqueid = value,
            col::LINKEDID => row.linkedid = value,
            col::CHANNEL => row.channel = value,
            col::DSTCHANNEL => row.dstchannel = value,
            col::DCONTEXT => row.dcontext = value,
            col::DURATION => row.duration = value,
            col::BILLSEC => row.billsec = value,
            col::DISPOSITION => row.disposition = value,
            _ => {}
        }
    }
    Ok(row)
}

/// True when `line` is plausibly a `Master.csv` row (for detection): 16–21 fields whose 15th is
/// an Asterisk disposition.
pub(crate) fn looks_like_line(line: &str) -> bool {
    if line.bytes().filter(|&c| c == b',').count() < 15 {
        return false;
    }
    body::csv_fields(line).is_some_and(|f| {
        (16..=21).contains(&f.len()) && f.get(14).is_some_and(|d| Disposition::parse(d).is_some())
    })
}

/// Maps a CDR row (from `Master.csv` or an AMI `Cdr` event) to a call record.
pub(crate) fn call_record(
    row: &Row<'_>,
    what: &'static str,
    keys: &RowKeys,
    overrides: Overrides,
) -> Result<CallRecord, Invalid> {
    let call_id = row
        .uniqueid
        .as_deref()
        .or(row.linkedid.as_deref())
        .or(row.channel.as_deref())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Invalid::new(what, keys.uniqueid, Problem::Missing))?;
    let disposition = match row.disposition.as_deref() {
        None => return Err(Invalid::new(what, keys.disposition, Problem::Missing)),
        Some(d) => Disposition::parse(d).ok_or_else(|| {
            Invalid::new(
                what,
                keys.disposition,
                Problem::BadValue {
                    expected: "ANSWERED|NO ANSWER|BUSY|FAILED|CONGESTION|CANCEL",
                    value: coerce::shorten(d),
                },
            )
        })?,
    };
    let secs = |v: &Option<Cow<'_, str>>, key: &'static str| match v.as_deref() {
        None => Ok(None),
        Some(s) => coerce::number_str(s)
            .and_then(|n| n.map(coerce::seconds_from).transpose())
            .map_err(|p| Invalid::new(what, key, p)),
    };
    let (guess_dir, guess_trunk) = guess_route(
        row.dcontext.as_deref(),
        row.channel.as_deref(),
        row.dstchannel.as_deref(),
    );
    Ok(CallRecord {
        call_id,
        disposition,
        duration: secs(&row.duration, keys.duration)?,
        billable_duration: secs(&row.billsec, keys.billsec)?,
        post_dial_delay: None,
        trunk: overrides.trunk.or(guess_trunk),
        direction: overrides.direction.unwrap_or(guess_dir),
        sip_status: None,
        hangup_cause: None,
        quality: QualityFields::default(),
    })
}

/// Dialplan contexts that receive calls from a provider (FreePBX and common hand-written names).
const INBOUND_CONTEXTS: [&str; 6] = [
    "from-trunk",
    "from-pstn",
    "from-external",
    "from-did",
    "from-provider",
    "inbound",
];

/// The endpoint of a channel name: `PJSIP/carrier-a-0000002a` → `carrier-a`. `None` for
/// `Local/…` channels and names without a technology.
pub(crate) fn channel_endpoint(channel: &str) -> Option<&str> {
    let (tech, rest) = channel.split_once('/')?;
    if tech.eq_ignore_ascii_case("local") || rest.is_empty() {
        return None;
    }
    // The sequence suffix is `-` + hex digits; keep the name when there is none.
    let name = match rest.rsplit_once('-') {
        Some((name, seq))
            if !name.is_empty()
                && !seq.is_empty()
                && seq.bytes().all(|c| c.is_ascii_hexdigit()) =>
        {
            name
        }
        _ => rest,
    };
    Some(name)
}

fn is_extension(endpoint: &str) -> bool {
    !endpoint.is_empty() && endpoint.bytes().all(|c| c.is_ascii_digit())
}

/// Guesses direction and trunk of an Asterisk call: a provider context means inbound on the
/// caller's endpoint; an extension (all digits) calling a named endpoint means outbound on it;
/// two extensions mean internal; a named endpoint calling an extension means inbound on it.
pub(crate) fn guess_route(
    context: Option<&str>,
    channel: Option<&str>,
    dst_channel: Option<&str>,
) -> (Direction, Option<String>) {
    let a = channel.and_then(channel_endpoint);
    let b = dst_channel.and_then(channel_endpoint);
    let inbound_context = context.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        INBOUND_CONTEXTS.iter().any(|p| c.contains(p))
    });
    if inbound_context {
        return (Direction::Inbound, a.map(str::to_owned));
    }
    match (a, b) {
        (Some(a), Some(b)) if is_extension(a) && !is_extension(b) => {
            (Direction::Outbound, Some(b.to_owned()))
        }
        (Some(a), Some(b)) if is_extension(a) && is_extension(b) => (Direction::Internal, None),
        (Some(a), Some(b)) if !is_extension(a) && is_extension(b) => {
            (Direction::Inbound, Some(a.to_owned()))
        }
        _ => (Direction::Unknown, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_endpoints() {
        assert_eq!(
            channel_endpoint("PJSIP/carrier-a-0000002a"),
            Some("carrier-a")
        );
        assert_eq!(channel_endpoint("PJSIP/1001-0000002a"), Some("1001"));
        assert_eq!(channel_endpoint("SIP/trunk"), Some("trunk"));
        assert_eq!(
            channel_endpoint("Local/1002@from-internal-00000001;1"),
            None
        );
        assert_eq!(channel_endpoint("garbage"), None);
    }

    #[test]
    fn routes() {
        let r = |ctx, a, b| guess_route(Some(ctx), Some(a), b);
        assert_eq!(
            r(
                "from-trunk",
                "PJSIP/carrier-a-00000001",
                Some("PJSIP/1001-00000002")
            ),
            (Direction::Inbound, Some("carrier-a".into()))
        );
        assert_eq!(
            r(
                "from-internal",
                "PJSIP/1001-00000001",
                Some("PJSIP/carrier-b-00000002")
            ),
            (Direction::Outbound, Some("carrier-b".into()))
        );
        assert_eq!(
            r(
                "from-internal",
                "PJSIP/1001-00000001",
                Some("PJSIP/1002-00000002")
            ),
            (Direction::Internal, None)
        );
        assert_eq!(
            r(
                "default",
                "PJSIP/carrier-a-00000001",
                Some("PJSIP/1002-00000002")
            ),
            (Direction::Inbound, Some("carrier-a".into()))
        );
        assert_eq!(
            r("from-internal", "PJSIP/1001-00000001", None),
            (Direction::Unknown, None)
        );
    }

    #[test]
    fn column_counts() {
        for n in 16..=21 {
            assert_eq!(header_for(n, true).unwrap().len(), n);
        }
        assert_eq!(header_for(17, true).unwrap()[16], col::UNIQUEID);
        assert_eq!(header_for(17, false).unwrap()[16], col::USERFIELD);
        assert_eq!(header_for(21, true).unwrap()[19], col::LINKEDID);
        assert!(header_for(15, true).is_none());
        assert!(header_for(22, true).is_none());
    }

    #[test]
    fn malformed_lines_are_invalid() {
        let e = row_from_line("a,b,c").unwrap_err();
        assert_eq!(
            e.to_string(),
            "asterisk_cdr_csv: wrong number of fields: 3 (Master.csv has 16 to 21)"
        );
        assert!(row_from_line("\"unterminated").is_err());
        assert!(!looks_like_line("a,b,c"));
    }
}

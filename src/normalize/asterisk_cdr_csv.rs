//! The `asterisk_cdr_csv` preset: `Master.csv` rows (`cdr_csv`) as the Collector's `csv_parser`
//! delivers them — the column names as attributes, every value a string — or, when no parser
//! ran, the raw line in the body, split here by its column count (16–21).
//!
//! Also owns the Asterisk channel-name heuristics (trunk and direction) that `asterisk_ami`
//! reuses.
//!
//! A row describes a whole call: its event time is the row's `end` when that names an instant
//! (an epoch or a date with a zone, as `cdr_custom` can write); `Master.csv`'s own dates carry no
//! zone (local time unless `usegmtime=yes`), so for them the Collector's timestamp operator,
//! which knows the PBX's `location`, stays the authority and the dates only give durations.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    pub lastapp: Option<Cow<'a, str>>,
    pub start: Option<Cow<'a, str>>,
    pub answer: Option<Cow<'a, str>>,
    pub end: Option<Cow<'a, str>>,
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
    let (record, end) = call_record(&row, WHAT, &CSV_KEYS, fields.overrides(WHAT)?)?;
    out.push_row(ctx.event(VoipEventKind::Cdr(record), end));
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
        lastapp,
        start,
        answer,
        end,
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
            col::LASTAPP => 8,
            col::START => 9,
            col::ANSWER => 10,
            col::END => 11,
            _ => return None,
        })
    });
    Ok(Row {
        uniqueid: text_of(uniqueid, col::UNIQUEID)?,
        linkedid: text_of(linkedid, col::LINKEDID)?,
        channel: text_of(channel, col::CHANNEL)?,
        dstchannel: text_of(dstchannel, col::DSTCHANNEL)?,
        dcontext: text_of(dcontext, col::DCONTEXT)?,
        lastapp: text_of(lastapp, col::LASTAPP)?,
        start: text_of(start, col::START)?,
        answer: text_of(answer, col::ANSWER)?,
        end: text_of(end, col::END)?,
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
            col::LASTAPP => row.lastapp = value,
            col::START => row.start = value,
            col::ANSWER => row.answer = value,
            col::END => row.end = value,
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

/// Maps a CDR row to a call record and the row's end as an instant, when it names one.
///
/// Durations are the `duration`/`billsec` columns (Asterisk computes them from sub-second
/// times), else the differences of the row's `start`/`answer`/`end` dates (a zone cancels out).
/// A row whose party A was answered by the PBX and then sat in `Queue()` without ever reaching
/// a member (`lastapp` `Queue`, no `dstchannel`) is `ANSWERED` to Asterisk but a caller who gave
/// up to everyone else: it is mapped `cancelled`, so queue abandons do not lift the answer ratio.
pub(crate) fn call_record(
    row: &Row<'_>,
    what: &'static str,
    keys: &RowKeys,
    overrides: Overrides,
) -> Result<(CallRecord, Option<SystemTime>), Invalid> {
    let call_id = row
        .uniqueid
        .as_deref()
        .or(row.linkedid.as_deref())
        .or(row.channel.as_deref())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Invalid::new(what, keys.uniqueid, Problem::Missing))?;
    let mut disposition = match row.disposition.as_deref() {
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
    let blank = |v: &Option<Cow<'_, str>>| v.as_deref().is_none_or(|s| s.trim().is_empty());
    if disposition == Disposition::Answered
        && blank(&row.dstchannel)
        && row
            .lastapp
            .as_deref()
            .is_some_and(|a| a.trim().eq_ignore_ascii_case(QUEUE_APP))
    {
        disposition = Disposition::Cancelled;
    }
    let secs = |v: &Option<Cow<'_, str>>, key: &'static str| match v.as_deref() {
        None => Ok(None),
        Some(s) => coerce::number_str(s)
            .and_then(|n| n.map(coerce::seconds_from).transpose())
            .map_err(|p| Invalid::new(what, key, p)),
    };
    // A date in a shape not known here (a `cdr_custom` format) only costs its time: the
    // record is still good.
    let date = |v: &Option<Cow<'_, str>>| v.as_deref().and_then(CdrDate::parse);
    let (start, answer, end) = (date(&row.start), date(&row.answer), date(&row.end));
    let (guess_dir, guess_trunk) = guess_route(
        row.dcontext.as_deref(),
        row.channel.as_deref(),
        row.dstchannel.as_deref(),
    );
    let record = CallRecord {
        call_id,
        disposition,
        duration: secs(&row.duration, keys.duration)?.or_else(|| CdrDate::span(start, end)),
        billable_duration: secs(&row.billsec, keys.billsec)?.or_else(|| CdrDate::span(answer, end)),
        post_dial_delay: None,
        trunk: overrides.trunk.or(guess_trunk),
        direction: overrides.direction.unwrap_or(guess_dir),
        sip_status: None,
        hangup_cause: None,
        quality: QualityFields::default(),
    };
    Ok((record, end.and_then(CdrDate::instant)))
}

/// The dialplan application that queues callers.
const QUEUE_APP: &str = "Queue";

/// A CDR date: `Master.csv`'s `%Y-%m-%d %H:%M:%S` (no zone), the same with `T`, a fraction and a
/// zone (`Z`, `+0000`, `+00:00`: `cdr_custom`'s `start(%FT%T%z)`), or epoch seconds
/// (`start(int64)`, `start(double)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CdrDate {
    /// Seconds since the epoch, a zone-less date read as UTC.
    secs: f64,
    /// The text fixed its instant (an epoch or a date with a zone).
    zoned: bool,
}

impl CdrDate {
    pub(crate) fn parse(s: &str) -> Option<CdrDate> {
        let s = s.trim();
        if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            let t = super::epoch_text(s)?;
            let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
            return Some(CdrDate { secs, zoned: true });
        }
        let b = s.as_bytes();
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        if !matches!(b[10], b' ' | b'T') {
            return None;
        }
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut rest = &s[19..];
        let mut frac = 0.0;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac = format!("0.{}", &r[..n]).parse().ok()?;
            rest = &r[n..];
        }
        let rest = rest.trim();
        let offset = match rest {
            "" => None,
            "Z" | "z" | "UTC" | "GMT" => Some(0),
            z => {
                let sign = match z.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
                if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let hh: i64 = digits[..2].parse().ok()?;
                let mm: i64 = digits[2..].parse().ok()?;
                Some(sign * (hh * 3600 + mm * 60))
            }
        };
        let days = days_from_civil(y, mo, d);
        let local = days * 86_400 + h * 3600 + mi * 60 + sec;
        let secs = (local - offset.unwrap_or(0)) as f64 + frac;
        Some(CdrDate {
            secs,
            zoned: offset.is_some(),
        })
    }

    /// The instant, when the text fixed one.
    pub(crate) fn instant(self) -> Option<SystemTime> {
        (self.zoned && self.secs > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(self.secs))
    }

    /// `to − from`, when both are there and in order.
    pub(crate) fn span(from: Option<CdrDate>, to: Option<CdrDate>) -> Option<Duration> {
        let (from, to) = (from?, to?);
        (to.secs >= from.secs && from.zoned == to.zoned)
            .then(|| Duration::from_secs_f64(to.secs - from.secs))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

/// A `Local/…` channel: a dialplan loop, no endpoint of its own.
fn is_local(channel: &str) -> bool {
    channel
        .split_once('/')
        .is_some_and(|(tech, _)| tech.eq_ignore_ascii_case("local"))
}

/// Direction and trunk of a party-A channel seen on its own (AMI `Newchannel`, `Hangup`): a
/// provider context or a named (not all-digit) endpoint means a call in from that endpoint; an
/// extension says nothing yet, its `Dial` does.
pub(crate) fn channel_route(
    context: Option<&str>,
    channel: Option<&str>,
) -> (Direction, Option<String>) {
    match guess_route(context, channel, None) {
        (Direction::Unknown, _) => match channel.and_then(channel_endpoint) {
            Some(e) if !is_extension(e) => (Direction::Inbound, Some(e.to_owned())),
            _ => (Direction::Unknown, None),
        },
        known => known,
    }
}

/// The endpoint of a channel when it names a provider (a named, not all-digit, endpoint).
pub(crate) fn provider_endpoint(channel: &str) -> Option<&str> {
    channel_endpoint(channel).filter(|e| !is_extension(e))
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
    let local_a = channel.is_some_and(is_local);
    match (a, b) {
        (Some(a), Some(b)) if is_extension(a) && !is_extension(b) => {
            (Direction::Outbound, Some(b.to_owned()))
        }
        // A `Local/` half (FreePBX routes outbound calls through one) dialling a named endpoint.
        (None, Some(b)) if local_a && !is_extension(b) => (Direction::Outbound, Some(b.to_owned())),
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
    fn local_halves_and_lone_channels() {
        assert_eq!(
            guess_route(
                Some("from-internal"),
                Some("Local/4155550100@from-internal-00000001;2"),
                Some("PJSIP/carrier-b-00000003")
            ),
            (Direction::Outbound, Some("carrier-b".into()))
        );
        assert_eq!(
            guess_route(
                Some("from-internal"),
                Some("Local/1002@from-internal-00000001;2"),
                Some("PJSIP/1002-00000003")
            ),
            (Direction::Unknown, None)
        );
        let lone = |ctx, ch| channel_route(Some(ctx), Some(ch));
        assert_eq!(
            lone("default", "PJSIP/carrier-a-0000000a"),
            (Direction::Inbound, Some("carrier-a".into()))
        );
        assert_eq!(
            lone("from-pstn", "PJSIP/4155550100-0000000a"),
            (Direction::Inbound, Some("4155550100".into()))
        );
        assert_eq!(
            lone("from-internal", "PJSIP/1001-0000000b"),
            (Direction::Unknown, None)
        );
        assert_eq!(provider_endpoint("PJSIP/1001-0000000b"), None);
        assert_eq!(
            provider_endpoint("SIP/carrier-a-0000000b"),
            Some("carrier-a")
        );
    }

    #[test]
    fn cdr_dates() {
        let at = |s| CdrDate::parse(s).map(|d| (d.secs, d.zoned));
        // 2025-03-14 09:03:34 UTC = 1741943014.
        assert_eq!(at("2025-03-14 09:03:34"), Some((1_741_943_014.0, false)));
        assert_eq!(at("2025-03-14T09:03:34Z"), Some((1_741_943_014.0, true)));
        assert_eq!(
            at("2025-03-14T10:03:34+0100"),
            Some((1_741_943_014.0, true))
        );
        assert_eq!(
            at("2025-03-14T04:03:34-05:00"),
            Some((1_741_943_014.0, true))
        );
        assert_eq!(
            at("2025-03-14 09:03:34.5 UTC"),
            Some((1_741_943_014.5, true))
        );
        assert_eq!(at("1741943014"), Some((1_741_943_014.0, true)));
        assert_eq!(at("2000-02-29 00:00:00"), Some((951_782_400.0, false)));
        for bad in [
            "",
            "0",
            "2025-13-01 00:00:00",
            "2025-03-14",
            "14/03/2025 09:03:34",
            "2025-03-14 09:03:34 CET",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        let d = |s| CdrDate::parse(s);
        assert_eq!(
            CdrDate::span(d("2025-03-14 09:00:00"), d("2025-03-14 09:03:34")),
            Some(Duration::from_secs(214))
        );
        assert_eq!(
            CdrDate::span(d("2025-03-14 09:03:34"), d("2025-03-14 09:00:00")),
            None
        );
        assert_eq!(CdrDate::span(None, d("2025-03-14 09:00:00")), None);
        assert_eq!(d("2025-03-14 09:03:34").and_then(CdrDate::instant), None);
        assert_eq!(
            d("2025-03-14T09:03:34Z").and_then(CdrDate::instant),
            Some(UNIX_EPOCH + Duration::from_secs(1_741_943_014))
        );
    }

    #[test]
    fn a_queue_row_that_reached_no_member_is_cancelled() {
        let row = |lastapp: &'static str, dst: Option<&'static str>| Row {
            uniqueid: Some("1.1".into()),
            channel: Some("PJSIP/carrier-b-00000040".into()),
            dstchannel: dst.map(Cow::Borrowed),
            dcontext: Some("from-pstn".into()),
            lastapp: Some(lastapp.into()),
            disposition: Some("ANSWERED".into()),
            ..Row::default()
        };
        let disposition = |r: Row<'_>| {
            call_record(&r, WHAT, &CSV_KEYS, Overrides::default())
                .map(|(c, _)| c.disposition)
                .ok()
        };
        assert_eq!(
            disposition(row("Queue", None)),
            Some(Disposition::Cancelled)
        );
        assert_eq!(
            disposition(row("queue", Some(""))),
            Some(Disposition::Cancelled)
        );
        assert_eq!(
            disposition(row("Queue", Some("PJSIP/1003-00000041"))),
            Some(Disposition::Answered)
        );
        assert_eq!(
            disposition(row("Playback", None)),
            Some(Disposition::Answered)
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

//! Presets mapping OTLP log records to [`VoipEvent`]s: the generic input contract
//! (`docs/schema.md`) and the Asterisk, FreeSWITCH and Kamailio shapes. Pure: keeps no state,
//! does no I/O, reads no clock.
//!
//! Per record: a contract event name (`event_name`, `otel.event.name`, `event.name`) makes it a
//! generic event; otherwise the first `sources` entry whose `match` pairs all hold picks the
//! preset; otherwise the record's shape is detected; otherwise it is ignored. A VoIP event that
//! cannot be mapped is counted invalid and logged at debug with the key at fault. Nothing else
//! in the request is lost.
//!
//! Two ways in, one mapping: [`normalize_request`] takes a `prost`-decoded request (OTLP/JSON,
//! tests); [`normalize_encoded`] reads an encoded one in place (`otlp_wire`), so contract records
//! (the hot path) cost no allocation per attribute. A record that needs a native preset is
//! decoded by `prost` from its own bytes and mapped as on the first way; a request the wire
//! reader declines is decoded by `prost` whole. Both give the same [`Normalized`].

mod asterisk_ami;
mod asterisk_cdr_csv;
mod asterisk_queue_log;
pub mod attributes;
mod body;
mod coerce;
mod detect;
mod freeswitch_event;
mod freeswitch_json_cdr;
mod generic;
#[cfg(test)]
pub(crate) mod in_place_tests;
mod kamailio_acc;

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use tracing::{debug, trace};

use crate::config::{Preset, SourceConfig};
use crate::event::{Disposition, EventMeta, VoipEvent, VoipEventKind};
use crate::otlp_wire::LogsView;
use attributes::resource;
use coerce::{AnyRef, Invalid};

/// The result of normalising one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Normalized {
    /// The VoIP events, in record order.
    pub events: Vec<VoipEvent>,
    /// Records that are no VoIP event.
    pub ignored: u64,
    /// VoIP events lacking a required field or with a bad value.
    pub invalid: u64,
    /// The first invalid record's reason, for the partial-success message.
    pub first_invalid: Option<String>,
}

/// Maps every log record of a request.
pub fn normalize_request(req: &ExportLogsServiceRequest, sources: &[SourceConfig]) -> Normalized {
    let records: usize = req
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum();
    let mut out = Normalized {
        events: Vec::with_capacity(records),
        ..Normalized::default()
    };
    let mut rows = Vec::new();
    let mut index = 0usize;
    for rl in &req.resource_logs {
        let res = rl
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or(&[]);
        let pbx = pbx_identity(res);
        let plan = SourcePlan::new(sources, prost_pairs(res));
        for record in rl.scope_logs.iter().flat_map(|sl| &sl.log_records) {
            let ctx = Ctx { pbx: &pbx, record };
            normalize_record(&ctx, &plan, index, &mut out, &mut rows);
            index += 1;
        }
    }
    merge_cdr_rows(&mut out.events, &rows);
    out
}

/// Decodes an encoded `ExportLogsServiceRequest` and maps every log record: the same result as
/// [`normalize_request`] of `ExportLogsServiceRequest::decode(bytes)`, and the same error for a
/// body that does not decode, without a `String` per attribute for contract records.
/// Returns the result and the request's number of log records.
pub fn normalize_encoded(
    bytes: &[u8],
    sources: &[SourceConfig],
) -> Result<(Normalized, u64), prost::DecodeError> {
    if let Some(out) = LogsView::parse(bytes)
        .and_then(|view| normalize_view(&view, sources).map(|n| (n, view.record_count() as u64)))
    {
        return Ok(out);
    }
    let req = ExportLogsServiceRequest::decode(bytes)?;
    let records = req
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len() as u64)
        .sum();
    Ok((normalize_request(&req, sources), records))
}

/// Fuzzing hook (`fuzz/fuzz_targets/otlp_view.rs`): the in-place path alone, `None` when the wire
/// reader declines the request (then `prost` decides). Not part of the API.
#[doc(hidden)]
pub fn fuzz_normalize_view(bytes: &[u8], sources: &[SourceConfig]) -> Option<Normalized> {
    normalize_view(&LogsView::parse(bytes)?, sources)
}

/// [`normalize_request`] over a request read in place. `None` (never expected: the view was
/// validated) when a slice it hands to `prost` does not decode; the caller then decodes the
/// request whole.
fn normalize_view(view: &LogsView<'_>, sources: &[SourceConfig]) -> Option<Normalized> {
    let mut out = Normalized {
        events: Vec::with_capacity(view.record_count()),
        ..Normalized::default()
    };
    let mut rows = Vec::new();
    let mut index = 0usize;
    for rv in view.resources() {
        let res = view.resource_attributes(rv);
        let pairs = || res.iter().map(|a| (a.key, a.value));
        let pbx = pbx_identity_of(pairs());
        let plan = SourcePlan::new(sources, pairs());
        for rec in view.records(rv) {
            let fields = generic::Fields::collect_wire(view.attributes(rec));
            match fields.event(rec.event_name) {
                Some(ev) => {
                    let before = out.events.len();
                    let result = generic::build(ev, &fields).map(|kind| {
                        out.events.push(VoipEvent {
                            meta: event_meta(
                                &pbx,
                                None,
                                rec.time_unix_nano,
                                rec.observed_time_unix_nano,
                            ),
                            kind,
                        });
                    });
                    settle(result, before, index, &mut out, &mut rows);
                }
                None => {
                    let record = LogRecord::decode(rec.raw).ok()?;
                    let ctx = Ctx {
                        pbx: &pbx,
                        record: &record,
                    };
                    normalize_record(&ctx, &plan, index, &mut out, &mut rows);
                }
            }
            index += 1;
        }
    }
    merge_cdr_rows(&mut out.events, &rows);
    Some(out)
}

/// Maps one event a native input (AMI, ESL) read from the PBX, shaped as a log record (AMI
/// headers as attributes, an ESL JSON event as the body), through `preset`, for the PBX named
/// `pbx`. The same mapping as OTLP records take: one mapping, two ways in.
pub(crate) fn normalize_native(preset: Preset, pbx: &str, record: &LogRecord) -> Normalized {
    let mut out = Normalized::default();
    let mut rows = Vec::new();
    let ctx = Ctx { pbx, record };
    let fields = generic::Fields::collect(&record.attributes);
    let mut sink = Out {
        events: &mut out.events,
        rows: &mut rows,
    };
    match map_preset(preset, &ctx, &fields, &mut sink) {
        Ok(()) if out.events.is_empty() => out.ignored = 1,
        Ok(()) => {}
        Err(invalid) => {
            out.events.clear();
            out.invalid = 1;
            out.first_invalid = Some(invalid.to_string());
        }
    }
    out
}

/// The PBX a resource describes: `service.instance.id`, else `host.name`, else `service.name`
/// (the first non-empty one), else `unknown`.
pub fn pbx_identity(resource_attributes: &[KeyValue]) -> Cow<'_, str> {
    pbx_identity_of(prost_pairs(resource_attributes))
}

/// `prost` attributes as the (key, value) pairs that attributes read from the wire are too.
fn prost_pairs(attrs: &[KeyValue]) -> impl Iterator<Item = (&str, Option<AnyRef<'_>>)> + Clone {
    attrs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.as_ref().map(AnyRef::from)))
}

/// [`pbx_identity`] over (key, value) pairs.
fn pbx_identity_of<'a>(
    resource_attributes: impl Iterator<Item = (&'a str, Option<AnyRef<'a>>)>,
) -> Cow<'a, str> {
    let slots: [_; 3] = coerce::collect_by(resource_attributes, |k| match k {
        resource::SERVICE_INSTANCE_ID => Some(0),
        resource::HOST_NAME => Some(1),
        resource::SERVICE_NAME => Some(2),
        _ => None,
    });
    slots
        .into_iter()
        .flatten()
        .find_map(|v| {
            coerce::text(v)
                .ok()
                .flatten()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or(Cow::Borrowed(resource::UNKNOWN_PBX))
}

/// One record and where it came from, handed to a preset.
pub(crate) struct Ctx<'a> {
    /// The PBX identity of the record's resource.
    pub pbx: &'a str,
    /// The record.
    pub record: &'a LogRecord,
}

impl Ctx<'_> {
    /// The event's metadata. Its time is the native record's own time (`native`: the time
    /// field of the PBX's format, which says when the event happened), else the OTLP record's
    /// `time_unix_nano` (a Collector timestamp operator, or the sender's clock), else
    /// `observed_time_unix_nano` (when the Collector read it). The native time goes first
    /// because the other two drift from the event when records are late: a file read after a
    /// restart, a retried batch, a syslog relay that stamps arrival. `docs/schema.md` states
    /// this order; keep the two in step.
    pub(crate) fn meta(&self, native: Option<SystemTime>) -> EventMeta {
        event_meta(
            self.pbx,
            native,
            self.record.time_unix_nano,
            self.record.observed_time_unix_nano,
        )
    }

    /// An event of this record.
    pub(crate) fn event(&self, kind: VoipEventKind, native: Option<SystemTime>) -> VoipEvent {
        VoipEvent {
            meta: self.meta(native),
            kind,
        }
    }
}

/// See [`Ctx::meta`]; also for records read in place.
fn event_meta(pbx: &str, native: Option<SystemTime>, time: u64, observed: u64) -> EventMeta {
    EventMeta {
        pbx: pbx.to_owned(),
        time: native.or_else(|| nanos(time)).or_else(|| nanos(observed)),
    }
}

fn nanos(n: u64) -> Option<SystemTime> {
    (n != 0).then(|| UNIX_EPOCH + Duration::from_nanos(n))
}

/// A time from epoch seconds (fractions allowed), as native shapes carry it.
pub(crate) fn epoch_secs(s: f64) -> Option<SystemTime> {
    (s.is_finite() && s > 0.0 && s < 1e11).then(|| UNIX_EPOCH + Duration::from_secs_f64(s))
}

/// A time from epoch seconds written as text (`1741943149.101582`), read exactly.
pub(crate) fn epoch_text(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = sec.parse().ok()?;
    if secs == 0 || secs >= 100_000_000_000 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos = frac
        .bytes()
        .take(9)
        .zip((0..9).rev())
        .map(|(c, p)| u32::from(c - b'0') * 10u32.pow(p))
        .sum();
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// A time from an epoch-seconds value of any type (text is read exactly).
pub(crate) fn epoch_of(v: &opentelemetry_proto::tonic::common::v1::AnyValue) -> Option<SystemTime> {
    match coerce::str_of(Some(v)) {
        Some(s) => epoch_text(s),
        None => coerce::number(v).ok().flatten().and_then(epoch_secs),
    }
}

/// Where presets put their events.
pub(crate) struct Out<'o> {
    events: &'o mut Vec<VoipEvent>,
    /// Indexes of `voip.cdr` events made from Asterisk CDR rows, merged per call at the end.
    rows: &'o mut Vec<usize>,
}

impl Out<'_> {
    /// Adds an event.
    pub(crate) fn push(&mut self, ev: VoipEvent) {
        self.events.push(ev);
    }

    /// Adds a `voip.cdr` made from one Asterisk CDR row; rows of one call are merged.
    pub(crate) fn push_row(&mut self, ev: VoipEvent) {
        self.rows.push(self.events.len());
        self.events.push(ev);
    }
}

fn normalize_record(
    ctx: &Ctx<'_>,
    plan: &SourcePlan<'_>,
    index: usize,
    out: &mut Normalized,
    rows: &mut Vec<usize>,
) {
    let record = ctx.record;
    let fields = generic::Fields::collect(&record.attributes);
    let before = out.events.len();
    let result = match fields.event(&record.event_name) {
        Some(ev) => generic::build(ev, &fields).map(|kind| out.events.push(ctx.event(kind, None))),
        None => match plan.preset_for(record) {
            Some(preset) => {
                let mut sink = Out {
                    events: &mut out.events,
                    rows,
                };
                map_preset(preset, ctx, &fields, &mut sink)
            }
            None => Ok(()),
        },
    };
    settle(result, before, index, out, rows);
}

/// Counts one record's outcome: events pushed since `before` (or none: ignored), or invalid
/// (its events and CDR rows taken back).
fn settle(
    result: Result<(), Invalid>,
    before: usize,
    index: usize,
    out: &mut Normalized,
    rows: &mut Vec<usize>,
) {
    if result.is_err() {
        rows.retain(|&i| i < before);
    }
    match result {
        Ok(()) if out.events.len() == before => {
            out.ignored += 1;
            trace!(record = index, "log record is no voip event");
        }
        Ok(()) => {}
        Err(invalid) => {
            out.events.truncate(before);
            out.invalid += 1;
            debug!(
                record = index,
                event = %invalid.what,
                key = %invalid.key,
                reason = %invalid,
                "voip event invalid"
            );
            if out.first_invalid.is_none() {
                out.first_invalid = Some(format!("record {index}: {invalid}"));
            }
        }
    }
}

/// Maps a record that carries no contract event name through a native preset. Pushes nothing
/// for a record the preset does not map (it is then counted ignored).
fn map_preset(
    preset: Preset,
    ctx: &Ctx<'_>,
    fields: &generic::Fields<'_>,
    out: &mut Out<'_>,
) -> Result<(), Invalid> {
    match preset {
        // A generic record without a contract event name is no VoIP event.
        Preset::Generic => Ok(()),
        Preset::AsteriskCdrCsv => asterisk_cdr_csv::map(ctx, fields, out),
        Preset::AsteriskAmi => asterisk_ami::map(ctx, fields, out),
        Preset::AsteriskQueueLog => asterisk_queue_log::map(ctx, out),
        Preset::FreeswitchJsonCdr => freeswitch_json_cdr::map(ctx, fields, out),
        Preset::FreeswitchEvent => freeswitch_event::map(ctx, fields, out),
        Preset::KamailioAcc => kamailio_acc::map(ctx, fields, out),
    }
}

/// Merges `voip.cdr` events made from Asterisk CDR rows that share PBX and call id (a `Queue()`
/// or a forked `Dial()` writes one row per attempt): one record per call, the answered row if
/// any, else the most telling disposition, with the longest duration. The merged record takes
/// the first row's place and the latest row's time.
fn merge_cdr_rows(events: &mut Vec<VoipEvent>, rows: &[usize]) {
    if rows.len() < 2 {
        return;
    }
    let mut groups: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for &i in rows {
        if let Some(VoipEvent {
            meta,
            kind: VoipEventKind::Cdr(r),
        }) = events.get(i)
        {
            groups
                .entry((meta.pbx.as_str(), r.call_id.as_str()))
                .or_default()
                .push(i);
        }
    }
    let mut merges: Vec<(usize, Vec<usize>, VoipEventKind, Option<SystemTime>)> = Vec::new();
    for members in groups.into_values().filter(|m| m.len() > 1) {
        let records: Vec<_> = members
            .iter()
            .filter_map(|&i| match &events[i].kind {
                VoipEventKind::Cdr(r) => Some(r),
                _ => None,
            })
            .collect();
        let Some(best) = records
            .iter()
            .min_by_key(|r| disposition_rank(r.disposition))
        else {
            continue;
        };
        let mut merged = (*best).clone();
        merged.duration = records.iter().filter_map(|r| r.duration).max();
        let latest = members.iter().filter_map(|&i| events[i].meta.time).max();
        merges.push((
            members[0],
            members[1..].to_vec(),
            VoipEventKind::Cdr(merged),
            latest,
        ));
    }
    if merges.is_empty() {
        return;
    }
    let mut drop = vec![false; events.len()];
    for (keep, others, kind, latest) in merges {
        events[keep].kind = kind;
        events[keep].meta.time = latest;
        for o in others {
            drop[o] = true;
        }
    }
    let mut i = 0;
    events.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
}

/// Which row of a call tells its outcome: answered first, then the outcomes a caller hears.
fn disposition_rank(d: Disposition) -> u8 {
    match d {
        Disposition::Answered => 0,
        Disposition::Busy => 1,
        Disposition::NoAnswer => 2,
        Disposition::Congestion => 3,
        Disposition::Cancelled => 4,
        Disposition::Failed => 5,
    }
}

/// How far a `sources` entry is decided by a resource's attributes alone.
enum SourceState<'s> {
    /// Every pair holds on the resource.
    Matched,
    /// A pair fails on the resource.
    Failed,
    /// These pairs are not on the resource; they must hold on the record.
    Pending(Vec<(&'s str, &'s str)>),
}

/// The `sources` entries evaluated once per resource, so records only check what is left.
struct SourcePlan<'s> {
    entries: Vec<(Preset, SourceState<'s>)>,
}

impl<'s> SourcePlan<'s> {
    /// Evaluates `sources` on a resource's attributes, given as (key, value) pairs.
    fn new<'r>(
        sources: &'s [SourceConfig],
        res: impl Iterator<Item = (&'r str, Option<AnyRef<'r>>)> + Clone,
    ) -> Self {
        let entries = sources
            .iter()
            .map(|src| {
                let mut pending = Vec::new();
                for (k, want) in &src.matches {
                    match res.clone().find(|(key, _)| key == k) {
                        Some((_, v)) if value_equals(v, want) => {}
                        Some(_) => return (src.preset, SourceState::Failed),
                        None => pending.push((k.as_str(), want.as_str())),
                    }
                }
                let state = if pending.is_empty() {
                    SourceState::Matched
                } else {
                    SourceState::Pending(pending)
                };
                (src.preset, state)
            })
            .collect();
        SourcePlan { entries }
    }

    /// The preset of the first entry that matches the record; else the detected shape.
    fn preset_for(&self, record: &LogRecord) -> Option<Preset> {
        self.configured(record).or_else(|| detect::detect(record))
    }

    /// The preset of the first entry that matches the record.
    fn configured(&self, record: &LogRecord) -> Option<Preset> {
        for (preset, state) in &self.entries {
            match state {
                SourceState::Matched => return Some(*preset),
                SourceState::Failed => {}
                SourceState::Pending(pairs) => {
                    let holds = pairs.iter().all(|(k, want)| {
                        record
                            .attributes
                            .iter()
                            .find(|kv| kv.key == *k)
                            .is_some_and(|kv| {
                                value_equals(kv.value.as_ref().map(AnyRef::from), want)
                            })
                    });
                    if holds {
                        return Some(*preset);
                    }
                }
            }
        }
        None
    }
}

/// A `match` value equals an attribute when the attribute, read as text, is that string.
fn value_equals(value: Option<AnyRef<'_>>, want: &str) -> bool {
    value
        .and_then(|v| coerce::text(v).ok().flatten())
        .is_some_and(|s| s == want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CallRecord, Direction, Disposition};
    use coerce::tests::{i, kvl, s};
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use std::collections::BTreeMap;

    fn kv(k: &str, v: AnyValue) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(v),
            ..Default::default()
        }
    }

    fn rec(event: &str, attrs: Vec<KeyValue>) -> LogRecord {
        LogRecord {
            event_name: event.into(),
            attributes: attrs,
            time_unix_nano: 1_741_942_931_000_000_000,
            ..Default::default()
        }
    }

    fn request(resource: Vec<KeyValue>, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// [`normalize_request`], asserting the in-place path agrees.
    fn checked(req: &ExportLogsServiceRequest, sources: &[SourceConfig]) -> Normalized {
        let want = normalize_request(req, sources);
        let bytes = req.encode_to_vec();
        assert_eq!(fuzz_normalize_view(&bytes, sources).as_ref(), Some(&want));
        want
    }

    fn cdr(id: &str, disposition: &str) -> LogRecord {
        rec(
            "voip.cdr",
            vec![
                kv("voip.call.id", s(id)),
                kv("voip.call.disposition", s(disposition)),
            ],
        )
    }

    #[test]
    fn epochs() {
        assert_eq!(
            epoch_text("1741943149.101582"),
            Some(UNIX_EPOCH + Duration::new(1_741_943_149, 101_582_000))
        );
        assert_eq!(
            epoch_text("1741943149"),
            Some(UNIX_EPOCH + Duration::from_secs(1_741_943_149))
        );
        assert_eq!(epoch_text("0"), None);
        assert_eq!(epoch_text("abc"), None);
        assert_eq!(epoch_text("12.x"), None);
        assert_eq!(
            epoch_of(&i(1_741_943_149)),
            Some(UNIX_EPOCH + Duration::from_secs(1_741_943_149))
        );
    }

    #[test]
    fn pbx_identity_prefers_instance_then_host_then_service() {
        let all = vec![
            kv("service.name", s("asterisk")),
            kv("host.name", s("pbx-host")),
            kv("service.instance.id", s("pbx-1")),
        ];
        assert_eq!(pbx_identity(&all), "pbx-1");
        assert_eq!(pbx_identity(&all[..2]), "pbx-host");
        assert_eq!(pbx_identity(&all[..1]), "asterisk");
        assert_eq!(pbx_identity(&[]), "unknown");
        assert_eq!(
            pbx_identity(&[kv("service.instance.id", s("")), kv("host.name", i(7))]),
            "7"
        );
    }

    #[test]
    fn mixed_batch_keeps_the_good_records() {
        let req = request(
            vec![kv("service.instance.id", s("pbx-1"))],
            vec![
                cdr("a", "answered"),
                rec("", vec![kv("http.method", s("GET"))]),
                rec("voip.cdr", vec![kv("voip.call.id", s("b"))]),
                cdr("c", "busy"),
                rec(
                    "voip.cdr",
                    vec![
                        kv("voip.call.id", s("d")),
                        kv("voip.call.disposition", kvl(vec![])),
                    ],
                ),
                rec("app.started", vec![]),
            ],
        );
        let n = checked(&req, &[]);
        let ids: Vec<_> = n
            .events
            .iter()
            .map(|e| match &e.kind {
                VoipEventKind::Cdr(r) => r.call_id.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!((n.ignored, n.invalid), (2, 2));
        assert_eq!(
            n.first_invalid.as_deref(),
            Some("record 2: voip.cdr: missing voip.call.disposition")
        );
        assert!(n.events.iter().all(|e| e.meta.pbx == "pbx-1"));
    }

    #[test]
    fn event_time_falls_back_to_observed() {
        let mut r = cdr("a", "answered");
        r.time_unix_nano = 0;
        r.observed_time_unix_nano = 2_000_000_000;
        let mut none = cdr("b", "answered");
        none.time_unix_nano = 0;
        let n = checked(&request(vec![], vec![cdr("x", "failed"), r, none]), &[]);
        let times: Vec<_> = n.events.iter().map(|e| e.meta.time).collect();
        assert_eq!(
            times,
            [
                Some(UNIX_EPOCH + Duration::from_secs(1_741_942_931)),
                Some(UNIX_EPOCH + Duration::from_secs(2)),
                None
            ]
        );
        assert_eq!(n.events[0].meta.pbx, "unknown");
    }

    #[test]
    fn event_name_attribute_variants() {
        let req = request(
            vec![kv("host.name", s("h"))],
            vec![
                rec(
                    "",
                    vec![
                        kv("otel.event.name", s("voip.call.start")),
                        kv("voip.call.id", s("x")),
                    ],
                ),
                rec(
                    "",
                    vec![
                        kv("event.name", s("voip.call.end")),
                        kv("voip.call.id", s("x")),
                        kv("voip.call.disposition", s("answered")),
                    ],
                ),
            ],
        );
        let n = checked(&req, &[]);
        assert_eq!(n.events.len(), 2);
        assert_eq!(
            n.events[0].kind,
            VoipEventKind::CallStart {
                call_id: "x".into(),
                direction: Direction::Unknown,
                trunk: None
            }
        );
        assert_eq!(
            n.events[1].kind,
            VoipEventKind::CallEnd(CallRecord::new("x", Disposition::Answered))
        );
    }

    #[test]
    fn sources_match_resource_then_record_attributes() {
        let src = |preset, pairs: &[(&str, &str)]| SourceConfig {
            preset,
            matches: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        let sources = vec![
            src(Preset::KamailioAcc, &[("pbx.vendor", "kamailio")]),
            src(
                Preset::AsteriskQueueLog,
                &[("pbx.vendor", "asterisk"), ("log.file.name", "queue_log")],
            ),
            src(Preset::AsteriskCdrCsv, &[("pbx.vendor", "asterisk")]),
        ];
        let res = vec![kv("pbx.vendor", s("asterisk"))];
        let plan = SourcePlan::new(&sources, prost_pairs(&res));
        let with_file = rec("", vec![kv("log.file.name", s("queue_log"))]);
        assert_eq!(plan.preset_for(&with_file), Some(Preset::AsteriskQueueLog));
        assert_eq!(
            plan.preset_for(&rec("", vec![])),
            Some(Preset::AsteriskCdrCsv)
        );
        let plan = SourcePlan::new(&sources, prost_pairs(&[]));
        let tagged = rec("", vec![kv("pbx.vendor", s("kamailio"))]);
        assert_eq!(plan.preset_for(&tagged), Some(Preset::KamailioAcc));
        let int_tagged = rec("", vec![kv("pbx.vendor", i(1))]);
        assert_eq!(plan.preset_for(&int_tagged), None);
    }
}

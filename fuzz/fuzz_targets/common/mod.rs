//! Shared by the fuzz targets: a request normalised under every preset pinned and with detection,
//! with the invariants every result must keep.
#![allow(dead_code)]

use std::collections::BTreeMap;

use callpulse::config::{Preset, SourceConfig};
use callpulse::normalize::normalize_request;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

/// One `sources` list per preset (matching every record), then none (shape detection).
pub fn source_plans() -> Vec<Vec<SourceConfig>> {
    let mut plans: Vec<Vec<SourceConfig>> = Preset::ALL
        .iter()
        .map(|(preset, _)| {
            vec![SourceConfig {
                preset: *preset,
                matches: BTreeMap::new(),
            }]
        })
        .collect();
    plans.push(Vec::new());
    plans
}

/// Counts the request's records.
pub fn records(req: &ExportLogsServiceRequest) -> u64 {
    req.resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len() as u64)
        .sum()
}

/// Normalises `req` under every plan; a record is an event, ignored or invalid, and one record
/// (a CDR row) yields at most a handful of events.
pub fn normalize_all(req: &ExportLogsServiceRequest) {
    let n = records(req);
    for plan in source_plans() {
        let out = normalize_request(req, &plan);
        assert!(out.ignored + out.invalid <= n, "{out:?} from {n} records");
        assert!(
            out.events.len() as u64 <= n.saturating_mul(8),
            "{} events from {n} records",
            out.events.len()
        );
        assert_eq!(out.first_invalid.is_some(), out.invalid > 0, "{out:?}");
    }
}

/// The input of a stream target: up to 4 control bytes, then the stream's bytes.
pub fn control_and_stream(data: &[u8]) -> (&[u8], &[u8]) {
    data.split_at(data.len().min(4))
}

/// `stream` cut into chunks as socket reads could deliver it: chunk lengths cycle through
/// `control[i] + 1` (1 to 256 bytes), so the fuzzer chooses where frames, lines and `\r\n`
/// pairs are split.
pub fn chunks<'a>(stream: &'a [u8], control: &[u8]) -> Vec<&'a [u8]> {
    if control.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (usize::from(control[i % control.len()]) + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

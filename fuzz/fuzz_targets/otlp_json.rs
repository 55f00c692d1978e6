//! Fuzz target: an OTLP/HTTP JSON body — the JSON mapping of `ExportLogsServiceRequest` (as the
//! HTTP receiver decodes it), then `normalize_request` with each preset pinned and with detection.
//! Run: `cd fuzz && cargo +nightly fuzz run otlp_json corpus/otlp_json seeds/otlp_json -- -max_total_time=600`
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ExportLogsServiceRequest>(data) {
        common::normalize_all(&req);
    }
});

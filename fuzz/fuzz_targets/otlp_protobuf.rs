//! Fuzz target: an OTLP/gRPC or OTLP/HTTP protobuf body — `ExportLogsServiceRequest` decoding, then
//! `normalize_request` with each preset pinned and with shape detection.
//! Run: `cd fuzz && cargo +nightly fuzz run otlp_protobuf corpus/otlp_protobuf seeds/otlp_protobuf -- -max_total_time=600`
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = ExportLogsServiceRequest::decode(data) {
        common::normalize_all(&req);
    }
});

//! Fuzz target: an OTLP/gRPC or OTLP/HTTP protobuf body through the receivers' in-place path
//! (`normalize_encoded`, `otlp_wire`) against `prost` decode + `normalize_request`, under every
//! source plan. Whatever `prost` refuses, the in-place reader must decline and
//! `normalize_encoded` must refuse with the same error; whatever `prost` decodes must normalise
//! to the same events, counts and first invalid message, with the same record count, whether or
//! not the in-place reader took it.
//! Run: `cd fuzz && cargo +nightly fuzz run otlp_view corpus/otlp_view seeds/otlp_protobuf -- -max_total_time=300`
#![no_main]

mod common;

use callpulse::normalize::{fuzz_normalize_view, normalize_encoded, normalize_request};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let decoded = ExportLogsServiceRequest::decode(data);
    for plan in common::source_plans() {
        let in_place = fuzz_normalize_view(data, &plan);
        let encoded = normalize_encoded(data, &plan);
        match &decoded {
            Ok(req) => {
                let want = normalize_request(req, &plan);
                let (got, records) = match encoded {
                    Ok(ok) => ok,
                    Err(e) => panic!("prost decodes, normalize_encoded refuses: {e}"),
                };
                assert_eq!(got, want);
                assert_eq!(records, common::records(req));
                if let Some(got) = in_place {
                    assert_eq!(got, want);
                }
            }
            Err(e) => {
                assert!(in_place.is_none(), "the in-place reader took what prost refuses: {e}");
                match encoded {
                    Err(got) => assert_eq!(got.to_string(), e.to_string()),
                    Ok(_) => panic!("prost refuses ({e}), normalize_encoded accepts"),
                }
            }
        }
    }
});

//! Shared test helpers: the in-process OTLP sink, OTLP request builders, the whole sidecar, and
//! the preset fixtures as the Collector delivers them.
pub mod fixtures;
pub mod otlp_client;
pub mod otlp_sink;
pub mod sidecar;

use callpulse::config::SourceConfig;
use callpulse::normalize::{Normalized, fuzz_normalize_view, normalize_encoded, normalize_request};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

/// `normalize_request`, asserting that the receivers' path — the encoded request read in place
/// (`normalize_encoded`) — gives the same result, and reads it without falling back to `prost`.
pub fn normalize_checked(req: &ExportLogsServiceRequest, sources: &[SourceConfig]) -> Normalized {
    let want = normalize_request(req, sources);
    let bytes = req.encode_to_vec();
    let (got, _) = normalize_encoded(&bytes, sources).expect("an encoded request decodes");
    assert_eq!(
        got, want,
        "normalize_encoded differs from normalize_request"
    );
    assert_eq!(
        fuzz_normalize_view(&bytes, sources).as_ref(),
        Some(&want),
        "the in-place path declined or differs"
    );
    want
}

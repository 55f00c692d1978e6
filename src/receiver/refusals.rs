//! Requests refused before their records could be counted (unauthenticated, too large, too slow,
//! over the byte budget, undecodable, during shutdown), by transport and `reason`.
//!
//! Record outcomes live in [`crate::stats::SelfStats`]; a request refused before decoding has no
//! records to count there, so it is counted here, once per request. Plain atomics: counting must
//! never wait, least of all under attack.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::ReceiverTransport;

/// Why a request was refused before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// Missing or wrong bearer token.
    Unauthenticated,
    /// Content-Type not protobuf or JSON.
    UnsupportedMediaType,
    /// Content-Encoding not gzip or identity.
    UnsupportedEncoding,
    /// Over the size limit (declared, read, or after decompression).
    TooLarge,
    /// The body did not arrive in time (stalled or trickling).
    BodyTimeout,
    /// The byte budget for bodies was spent: retryable.
    OverBudget,
    /// Shutdown began before the body was complete: retryable.
    ShuttingDown,
    /// Undecodable body, bad gzip, or a connection broken mid-body.
    BadRequest,
    /// A new connection past `max_connections`, closed at once (counted per connection).
    TooManyConnections,
}

impl RefusalReason {
    /// Every reason.
    pub const ALL: [RefusalReason; 9] = [
        RefusalReason::Unauthenticated,
        RefusalReason::UnsupportedMediaType,
        RefusalReason::UnsupportedEncoding,
        RefusalReason::TooLarge,
        RefusalReason::BodyTimeout,
        RefusalReason::OverBudget,
        RefusalReason::ShuttingDown,
        RefusalReason::BadRequest,
        RefusalReason::TooManyConnections,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Unauthenticated => "unauthenticated",
            RefusalReason::UnsupportedMediaType => "unsupported_media_type",
            RefusalReason::UnsupportedEncoding => "unsupported_encoding",
            RefusalReason::TooLarge => "too_large",
            RefusalReason::BodyTimeout => "body_timeout",
            RefusalReason::OverBudget => "over_budget",
            RefusalReason::ShuttingDown => "shutting_down",
            RefusalReason::BadRequest => "bad_request",
            RefusalReason::TooManyConnections => "too_many_connections",
        }
    }
}

/// Refused requests by transport and reason.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: [[AtomicU64; RefusalReason::ALL.len()]; ReceiverTransport::ALL.len()],
}

impl Refusals {
    /// Counts one refused request.
    pub fn count(&self, transport: ReceiverTransport, reason: RefusalReason) {
        self.counts[transport as usize][reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused so far for `reason`.
    pub fn get(&self, transport: ReceiverTransport, reason: RefusalReason) -> u64 {
        self.counts[transport as usize][reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_transport_and_reason() {
        let r = Refusals::default();
        r.count(ReceiverTransport::Grpc, RefusalReason::OverBudget);
        r.count(ReceiverTransport::Grpc, RefusalReason::OverBudget);
        r.count(ReceiverTransport::Http, RefusalReason::BodyTimeout);
        assert_eq!(r.get(ReceiverTransport::Grpc, RefusalReason::OverBudget), 2);
        assert_eq!(r.get(ReceiverTransport::Http, RefusalReason::OverBudget), 0);
        assert_eq!(
            r.get(ReceiverTransport::Http, RefusalReason::BodyTimeout),
            1
        );
        let labels: std::collections::BTreeSet<_> =
            RefusalReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(labels.len(), RefusalReason::ALL.len());
    }
}

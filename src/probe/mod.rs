//! SIP probes: the schedule, OPTIONS over UDP/TCP/TLS, and response matching. Measures RTT, loss
//! and jitter per round and hands a [`ProbeReport`] to the engine; MOS is `quality`'s job.

use std::time::{Duration, SystemTime};

use crate::config::SipTransport;

/// What became of one request of a round.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestOutcome {
    /// A final response arrived in time.
    Answered {
        /// Its status code.
        status: u16,
        /// Time from send to the final response.
        rtt: Duration,
    },
    /// No final response within the timeout (a lost request).
    Timeout,
    /// The request could not be sent (connection refused, TLS failure, …).
    Error(String),
}

/// Responses dropped during a round, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DroppedResponses {
    /// Matched no request of ours.
    pub unmatched: u64,
    /// Matched a request that had already timed out.
    pub late: u64,
    /// A second final response to the same request.
    pub duplicate: u64,
    /// Matching ids but from another source address.
    pub spoofed: u64,
    /// Not parseable as SIP.
    pub malformed: u64,
}

/// One finished round against one target.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// The target's configured name (`sip.probe.target`).
    pub target: String,
    /// Transport used.
    pub transport: SipTransport,
    /// When the round ended.
    pub at: SystemTime,
    /// Each request's outcome, in send order.
    pub outcomes: Vec<RequestOutcome>,
    /// Unanswered / sent, 0..1.
    pub loss_ratio: f64,
    /// RFC 3550-style smoothed |ΔRTT| over the round's answered requests.
    pub jitter: Option<Duration>,
    /// Median RTT of answered requests.
    pub rtt_median: Option<Duration>,
    /// At least one final response with a code in `up_codes`.
    pub up: bool,
    /// TCP connect time of a new connection made this round.
    pub connect_duration: Option<Duration>,
    /// TLS handshake time of a new connection made this round.
    pub tls_handshake_duration: Option<Duration>,
    /// Responses dropped this round.
    pub dropped: DroppedResponses,
}

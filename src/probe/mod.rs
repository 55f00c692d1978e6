//! SIP probes: the schedule, OPTIONS and REGISTER over UDP/TCP/TLS, and response matching.
//! OPTIONS rounds measure RTT, loss and jitter; a REGISTER round registers (answering the digest
//! challenge) and unREGISTERs. Each round becomes a [`ProbeReport`] for the engine; MOS is
//! `quality`'s job, and SIP syntax (parsing, digest) is [`crate::sip`]'s.
//! Never answers inbound SIP (the [`responder`] is a test and demo peer, not used by the prober).
//! See `docs/probes.md` for what each measurement means exactly.

pub mod call;
#[doc(hidden)]
pub mod fuzzing;
pub mod matcher;
pub mod message;
pub mod oneshot;
pub mod register;
pub mod responder;
pub mod round;
pub mod runner;
pub mod schedule;
pub mod transport;
pub mod uas;
pub mod uri;

use std::time::{Duration, SystemTime};

use crate::sip::SipTransport;

/// Moved to [`crate::sip`] (pure SIP code); re-exported so `probe::parse` / `probe::framing`
/// paths keep working.
pub use crate::sip::{framing, parse};

pub use call::{CallMedia, CallOutcome, CallResult};
pub use oneshot::oneshot;
pub use round::{ProbeContext, ProbeError, TargetProbe};
pub use runner::run;

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
    /// RFC 3550-style smoothed |ΔRTT| over the round's answered requests: `J += (|D| − J)/16`
    /// with `D` the RTT difference of successive answered requests in send order. The estimator's
    /// state carries over from the target's earlier rounds (as RTCP's does across reports), so a
    /// 10-request round is not biased towards 0; `None` until two requests were ever answered.
    /// Exactly defined in `docs/probes.md` and [`crate::quality::jitter::RttJitter`].
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
    /// REGISTER probes: what the round's registration came to. `None` for OPTIONS probes. For a
    /// REGISTER probe `outcomes` stays empty (the round is one registration, not `count`
    /// requests), `up` is "a 200 bound the contact", `loss_ratio` is the share of the round's
    /// transactions without a final response, and `jitter` / `rtt_median` are `None`. Boxed:
    /// OPTIONS reports, the common case, stay small in the engine's channel.
    pub register: Option<Box<RegisterResult>>,
    /// INVITE probes: the synthetic call. `None` for OPTIONS and REGISTER probes. For a call,
    /// `outcomes` stays empty, `up` is "answered and torn down with media", `loss_ratio` is the
    /// RTP loss (1 when the call failed) and `jitter` / `rtt_median` are `None` (the RTP figures
    /// are in [`CallMedia`]).
    pub call: Option<Box<CallResult>>,
}

/// The outcome of one REGISTER round: the `sip.probe.outcome` of its `sip.probe.requests` point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// A 2xx bound our contact.
    Ok,
    /// A challenge was answered and the registrar still said 401/407/403, or it challenged and
    /// we could not answer (no credentials, no supported algorithm, another realm).
    AuthFailed,
    /// Any other final 3xx–6xx (including a second 423).
    Rejected,
    /// A transaction got no final response within `timeout`.
    Timeout,
    /// A request could not be sent (resolve, connect, TLS, backoff) or the connection broke.
    Error,
}

impl RegisterOutcome {
    /// The `sip.probe.outcome` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterOutcome::Ok => "ok",
            RegisterOutcome::AuthFailed => "auth_failed",
            RegisterOutcome::Rejected => "rejected",
            RegisterOutcome::Timeout => "timeout",
            RegisterOutcome::Error => "error",
        }
    }
}

/// One REGISTER transaction of a round, for the one-shot command and debugging.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterStep {
    /// `Expires` asked for (0 for the unREGISTER).
    pub expires: u32,
    /// It carried a digest answer.
    pub authorized: bool,
    /// Its final response, timeout or send error.
    pub result: RequestOutcome,
    /// UDP retransmissions of this request (RFC 3261 Timer E).
    pub retransmissions: u32,
}

/// What a REGISTER round came to.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterResult {
    /// The round's outcome.
    pub outcome: RegisterOutcome,
    /// The final status that decided it (none for timeout and error).
    pub status: Option<u16>,
    /// First REGISTER sent → final 2xx received, challenge round trips and retransmissions
    /// included (RFC 6076 §4.1 Registration Request Delay); only for `Ok`.
    pub duration: Option<Duration>,
    /// Why, in words, for anything but `Ok` (never holds the password).
    pub detail: Option<String>,
    /// The `Contact` values of the final 2xx: every binding the registrar holds for the AoR.
    pub bindings: Vec<String>,
    /// The contact the round's REGISTER carried.
    pub contact: Option<String>,
    /// After an `Ok` round without `keep_registered`: whether the unREGISTER got a 2xx.
    pub unregistered: Option<bool>,
    /// Every transaction of the round in order, the unREGISTER's included.
    pub steps: Vec<RegisterStep>,
}

impl RequestOutcome {
    /// The `sip.probe.outcome` value: `success` for any final response (the server is alive;
    /// whether it is healthy is `up_codes`' business), `timeout`, or `error`.
    pub fn outcome_label(&self) -> &'static str {
        match self {
            RequestOutcome::Answered { .. } => "success",
            RequestOutcome::Timeout => "timeout",
            RequestOutcome::Error(_) => "error",
        }
    }

    /// The `sip.response.status_class` value (`2xx` … `6xx`), for answered requests.
    pub fn status_class(&self) -> Option<&'static str> {
        match self {
            RequestOutcome::Answered { status, .. } => Some(match status / 100 {
                1 => "1xx",
                2 => "2xx",
                3 => "3xx",
                4 => "4xx",
                5 => "5xx",
                _ => "6xx",
            }),
            _ => None,
        }
    }
}

impl DroppedResponses {
    /// All dropped responses.
    pub fn total(&self) -> u64 {
        self.unmatched + self.late + self.duplicate + self.spoofed + self.malformed
    }

    /// `(sip.probe.drop_reason, count)` pairs, zero counts included, in a fixed order.
    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("unmatched", self.unmatched),
            ("late", self.late),
            ("duplicate", self.duplicate),
            ("spoofed", self.spoofed),
            ("malformed", self.malformed),
        ]
    }
}

impl ProbeReport {
    /// RTTs of the answered requests, in send order.
    pub fn rtts(&self) -> Vec<Duration> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                RequestOutcome::Answered { rtt, .. } => Some(*rtt),
                _ => None,
            })
            .collect()
    }

    /// Requests that got a final response.
    pub fn answered(&self) -> usize {
        self.rtts().len()
    }
}

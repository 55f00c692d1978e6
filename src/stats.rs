//! Self-telemetry counters shared by the edges (receiver, exporters) and read by `export`.
//!
//! Plain atomics: the receiver's hot path must not wait on the engine or the SDK to count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What happened to a received log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A VoIP event handed to the engine.
    Accepted,
    /// Refused for back-pressure, size, auth or an undecodable request.
    Refused,
    /// A VoIP event lacking a required field or with a bad value.
    Invalid,
    /// Not a VoIP event.
    Ignored,
}

impl RecordOutcome {
    /// Every outcome.
    pub const ALL: [RecordOutcome; 4] = [
        RecordOutcome::Accepted,
        RecordOutcome::Refused,
        RecordOutcome::Invalid,
        RecordOutcome::Ignored,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Accepted => "accepted",
            RecordOutcome::Refused => "refused",
            RecordOutcome::Invalid => "invalid",
            RecordOutcome::Ignored => "ignored",
        }
    }
}

/// Which receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverTransport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl ReceiverTransport {
    /// Both transports.
    pub const ALL: [ReceiverTransport; 2] = [ReceiverTransport::Grpc, ReceiverTransport::Http];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverTransport::Grpc => "grpc",
            ReceiverTransport::Http => "http",
        }
    }
}

/// Which exporter failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// OTLP metrics.
    OtlpMetrics,
    /// OTLP logs.
    OtlpLogs,
}

impl ExporterKind {
    /// Both.
    pub const ALL: [ExporterKind; 2] = [ExporterKind::OtlpMetrics, ExporterKind::OtlpLogs];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExporterKind::OtlpMetrics => "otlp_metrics",
            ExporterKind::OtlpLogs => "otlp_logs",
        }
    }
}

/// Why a native PBX input (AMI, ESL) lost or could not make its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    /// TCP connect, name resolution or TLS failed.
    Connect,
    /// The PBX refused the login.
    LoginRefused,
    /// The PBX closed the connection (or the socket failed), possibly mid-event.
    Closed,
    /// A frame exceeded the size limit.
    Oversize,
    /// The peer sent something that is not the protocol.
    Malformed,
    /// A reply (banner, login, snapshot, keep-alive) did not come in time.
    Timeout,
}

impl InputError {
    /// Every reason.
    pub const ALL: [InputError; 6] = [
        InputError::Connect,
        InputError::LoginRefused,
        InputError::Closed,
        InputError::Oversize,
        InputError::Malformed,
        InputError::Timeout,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            InputError::Connect => "connect",
            InputError::LoginRefused => "login_refused",
            InputError::Closed => "closed",
            InputError::Oversize => "oversize",
            InputError::Malformed => "malformed",
            InputError::Timeout => "timeout",
        }
    }
}

/// The counters of one native input, shared by its task (writer) and the exporters (readers).
#[derive(Debug)]
pub struct InputStats {
    /// `ami` or `esl`.
    pub kind: &'static str,
    /// The input's name (its `voip.pbx`).
    pub name: String,
    up: AtomicBool,
    events: [AtomicU64; 4],
    errors: [AtomicU64; 6],
}

impl InputStats {
    /// Marks the session up (logged in, subscribed, snapshot taken) or down.
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Relaxed);
    }

    /// Whether the session is up.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Counts `n` native events of one outcome (`refused` is not used: the socket waits).
    pub fn count_events(&self, outcome: RecordOutcome, n: u64) {
        if n > 0 {
            self.events[outcome as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Native events counted so far.
    pub fn events(&self, outcome: RecordOutcome) -> u64 {
        self.events[outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one lost or failed session.
    pub fn count_error(&self, reason: InputError) {
        self.errors[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Sessions lost for `reason` so far.
    pub fn errors(&self, reason: InputError) -> u64 {
        self.errors[reason as usize].load(Ordering::Relaxed)
    }
}

/// Counters of the edges.
#[derive(Debug, Default)]
pub struct SelfStats {
    records: [[AtomicU64; 4]; 2],
    export_failures: [AtomicU64; 2],
    queue_depth: AtomicU64,
    queued_events: AtomicU64,
    refusals: std::sync::OnceLock<std::sync::Arc<crate::receiver::Refusals>>,
    probes: std::sync::OnceLock<std::sync::Arc<crate::probe::runner::ProbeCounters>>,
    /// Native inputs, registered once at start; the lock is taken at registration and by the
    /// exporters' collection, never on an event path.
    inputs: Mutex<Vec<Arc<InputStats>>>,
}

impl SelfStats {
    /// Counts `n` records of one outcome.
    pub fn count_records(&self, transport: ReceiverTransport, outcome: RecordOutcome, n: u64) {
        if n > 0 {
            self.records[transport as usize][outcome as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records counted so far.
    pub fn records(&self, transport: ReceiverTransport, outcome: RecordOutcome) -> u64 {
        self.records[transport as usize][outcome as usize].load(Ordering::Relaxed)
    }

    /// Counts one failed export.
    pub fn count_export_failure(&self, exporter: ExporterKind) {
        self.export_failures[exporter as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Failed exports so far.
    pub fn export_failures(&self, exporter: ExporterKind) -> u64 {
        self.export_failures[exporter as usize].load(Ordering::Relaxed)
    }

    /// Sets the engine queue depth (batches waiting).
    pub fn set_queue_depth(&self, depth: u64) {
        self.queue_depth.store(depth, Ordering::Relaxed);
    }

    /// The engine queue depth.
    pub fn queue_depth(&self) -> u64 {
        self.queue_depth.load(Ordering::Relaxed)
    }

    /// Reserves room for `n` events in the engine queue, or says there is none: the queue is
    /// bounded by events (`receivers.otlp.queue_events`), not only by requests.
    pub fn reserve_events(&self, n: u64, cap: u64) -> bool {
        self.queued_events
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q.saturating_add(n) <= cap || q == 0).then_some(q.saturating_add(n))
            })
            .is_ok()
    }

    /// Gives back room for `n` events (the engine took them, or the send failed).
    pub fn release_events(&self, n: u64) {
        let _ = self
            .queued_events
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
    }

    /// Events waiting for the engine.
    pub fn queued_events(&self) -> u64 {
        self.queued_events.load(Ordering::Relaxed)
    }

    /// Hands the receivers' refusal counters to the exporters (set once, at start).
    pub fn set_refusals(&self, refusals: std::sync::Arc<crate::receiver::Refusals>) {
        let _ = self.refusals.set(refusals);
    }

    /// Hands the probe scheduler's counters to the exporters (set once, at start).
    pub fn set_probe_counters(
        &self,
        counters: std::sync::Arc<crate::probe::runner::ProbeCounters>,
    ) {
        let _ = self.probes.set(counters);
    }

    /// The probe scheduler's counters, once it runs.
    pub fn probe_counters(&self) -> Option<&crate::probe::runner::ProbeCounters> {
        self.probes.get().map(|c| c.as_ref())
    }

    /// Requests refused before decoding, once the receivers run.
    pub fn refusals(&self) -> Option<&crate::receiver::Refusals> {
        self.refusals.get().map(|r| r.as_ref())
    }

    /// Registers a native input's counters (down until its first session is up).
    pub fn register_input(&self, kind: &'static str, name: &str) -> Arc<InputStats> {
        let s = Arc::new(InputStats {
            kind,
            name: name.to_owned(),
            up: AtomicBool::new(false),
            events: Default::default(),
            errors: Default::default(),
        });
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(s.clone());
        s
    }

    /// The registered native inputs.
    pub fn inputs(&self) -> Vec<Arc<InputStats>> {
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

//! OTLP log receivers (gRPC `LogsService/Export`, HTTP `POST /v1/logs`): limits, auth, TLS and
//! back-pressure statuses. Hands normalised events to the engine; interprets no VoIP semantics.
//! The native PBX inputs (`ami`, `esl`, sharing `native`) connect out to a PBX instead and feed
//! the same presets.
//!
//! Both servers share one [`Ingest`] core: normalise the request (a protobuf body read in place,
//! see `otlp_wire`; a JSON one decoded into `prost` types), `try_send` the events to
//! the engine (never wait: a full queue is answered with a retryable refusal), count every
//! record's outcome in [`SelfStats`] and build the OTLP (partial) success. One byte budget caps the
//! request bodies held at once, charged as bytes arrive and never waited for (see `limits`), and
//! every body has deadlines: so memory stays bounded under a flood, and no client, however slow
//! or stalled, keeps another from being served. Requests refused before their records could be
//! counted are counted in [`Refusals`] by reason.

pub mod ami;
mod auth;
pub mod esl;
mod limits;
mod listener;
pub mod native;
mod otlp_grpc;
mod otlp_http;
mod refusals;
mod rpc_status;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{ListenerConfig, ReceiverConfig, SourceConfig};
use crate::engine::EngineInput;
use crate::normalize::Normalized;
use crate::stats::{ReceiverTransport, RecordOutcome, SelfStats};

pub use refusals::{RefusalReason, Refusals};

/// After shutdown fires, how long connections may take to finish before they are closed by force.
/// A body still arriving is refused after `limits::BODY_DEADLINES.after_shutdown` (1 s); this
/// leaves time to write the answers.
const SHUTDOWN_LINGER: Duration = Duration::from_millis(1500);

/// Maps one decoded request to VoIP events. [`start`] uses [`crate::normalize::normalize_request`];
/// [`start_with_normalizer`] takes another so tests and benchmarks can exercise the transport
/// alone.
pub type NormalizeFn = fn(&ExportLogsServiceRequest, &[SourceConfig]) -> Normalized;

/// How [`Ingest`] maps requests.
#[derive(Clone, Copy)]
enum Normalizer {
    /// The presets: an encoded request is read in place
    /// ([`crate::normalize::normalize_encoded`]), a decoded one mapped by
    /// [`crate::normalize::normalize_request`].
    Presets,
    /// Another mapping (tests, benchmarks): encoded requests are decoded by `prost` for it.
    Custom(NormalizeFn),
}

/// Fuzzing hook (`fuzz/fuzz_targets/gunzip.rs`): the OTLP/HTTP receiver's bounded gunzip,
/// with the refusal as text. Not part of the API.
#[doc(hidden)]
pub fn fuzz_gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    limits::gunzip(compressed, limit).map_err(|e| match e {
        limits::GunzipError::TooLarge => "too large".to_owned(),
        limits::GunzipError::Corrupt(e) => e.to_string(),
    })
}

/// Why a receiver could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The listening socket could not be bound.
    #[error("cannot bind the otlp {transport} receiver to {addr}: {source}")]
    Bind {
        /// `grpc` or `http`.
        transport: &'static str,
        /// The configured endpoint.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load the otlp {transport} receiver's tls {what} from {}: {reason}", path.display())]
    Tls {
        /// `grpc` or `http`.
        transport: &'static str,
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file named in the config.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A server failed while running.
    #[error("the otlp {transport} receiver on {addr} failed: {reason}")]
    Serve {
        /// `grpc` or `http`.
        transport: &'static str,
        /// The bound address.
        addr: SocketAddr,
        /// The failure.
        reason: String,
    },
    /// A server task panicked or was aborted.
    #[error("an otlp receiver task ended abnormally: {reason}")]
    Task {
        /// The join error.
        reason: String,
    },
}

/// The running receivers: their real addresses (port 0 resolved) and their tasks.
#[derive(Debug)]
pub struct ReceiverHandle {
    /// Where the gRPC server listens, when enabled.
    pub grpc_addr: Option<SocketAddr>,
    /// Where the HTTP server listens, when enabled.
    pub http_addr: Option<SocketAddr>,
    /// Requests refused before decoding, by transport and reason.
    pub refusals: Arc<Refusals>,
    tasks: JoinSet<Result<(), ReceiverError>>,
}

impl ReceiverHandle {
    /// Resolves once both servers have stopped after `shutdown` fired and answered every request
    /// they had started; the first server failure, if any, is returned.
    pub async fn wait(mut self) -> Result<(), ReceiverError> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined.unwrap_or_else(|e| {
                Err(ReceiverError::Task {
                    reason: e.to_string(),
                })
            });
            if let Err(e) = result {
                warn!(error = %e, "otlp receiver stopped with an error");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The server tasks, for a supervisor that must notice one ending early.
    pub fn into_tasks(self) -> JoinSet<Result<(), ReceiverError>> {
        self.tasks
    }
}

/// Starts the configured OTLP servers, normalising with the preset mapping
/// ([`crate::normalize::normalize_request`]). Binding happens before this returns, so a busy port
/// is reported at start-up with its address.
pub async fn start(
    cfg: &ReceiverConfig,
    sources: Arc<[SourceConfig]>,
    tx: mpsc::Sender<EngineInput>,
    stats: Arc<SelfStats>,
    shutdown: CancellationToken,
) -> Result<ReceiverHandle, ReceiverError> {
    start_with(cfg, sources, Normalizer::Presets, tx, stats, shutdown).await
}

/// [`start`] with another mapping: lets tests and benchmarks drive the transport with records
/// whose outcome they choose, independent of the presets.
pub async fn start_with_normalizer(
    cfg: &ReceiverConfig,
    sources: Arc<[SourceConfig]>,
    normalize: NormalizeFn,
    tx: mpsc::Sender<EngineInput>,
    stats: Arc<SelfStats>,
    shutdown: CancellationToken,
) -> Result<ReceiverHandle, ReceiverError> {
    start_with(
        cfg,
        sources,
        Normalizer::Custom(normalize),
        tx,
        stats,
        shutdown,
    )
    .await
}

async fn start_with(
    cfg: &ReceiverConfig,
    sources: Arc<[SourceConfig]>,
    normalize: Normalizer,
    tx: mpsc::Sender<EngineInput>,
    stats: Arc<SelfStats>,
    shutdown: CancellationToken,
) -> Result<ReceiverHandle, ReceiverError> {
    let max_request_size = cfg.max_request_size.max(1);
    let edge = Arc::new(Edge {
        ingest: Ingest {
            sources,
            normalize,
            tx,
            stats,
            queue_events: cfg.queue_events.max(1) as u64,
        },
        bearer: cfg.bearer_token.as_deref().map(auth::BearerToken::new),
        budget: limits::Budget::new(max_request_size),
        max_request_size,
        retry_after: cfg.retry_after,
        refusals: Arc::new(Refusals::default()),
        shutdown: shutdown.clone(),
        cpu_slots: Arc::new(Semaphore::new(cpu_slots())),
    });

    // Bind and load everything first, so no server runs when another cannot start.
    let grpc = match &cfg.grpc {
        Some(l) => Some(prepare(l, "grpc", tls::ALPN_GRPC).await?),
        None => None,
    };
    let http = match &cfg.http {
        Some(l) => Some(prepare(l, "http", tls::ALPN_HTTP).await?),
        None => None,
    };

    debug!(
        budget_bytes = edge.budget.total(),
        max_request_size, "otlp receivers' body budget"
    );
    // Connections still open this long after shutdown (stalled peers) are closed by force; see
    // `listener`. Requests in flight have their bodies by then (`limits::BODY_DEADLINES`).
    let close = CancellationToken::new();
    {
        let (shutdown, close) = (shutdown.clone(), close.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_LINGER).await;
            close.cancel();
        });
    }
    let mut tasks = JoinSet::new();
    let mut handle_addrs = (None, None);
    if let Some(p) = grpc {
        handle_addrs.0 = Some(p.addr);
        info!(addr = %p.addr, tls = p.tls.is_some(), "otlp grpc receiver listening");
        let conns = listener::spawn_acceptor(
            p.listener,
            p.tls,
            listener::Admission::new(cfg.max_connections, &edge.refusals, ReceiverTransport::Grpc),
            shutdown.clone(),
            close.clone(),
        );
        tasks.spawn(otlp_grpc::serve(
            p.addr,
            conns,
            Arc::clone(&edge),
            shutdown.clone(),
        ));
    }
    if let Some(p) = http {
        handle_addrs.1 = Some(p.addr);
        info!(addr = %p.addr, tls = p.tls.is_some(), "otlp http receiver listening");
        let conns = listener::spawn_acceptor(
            p.listener,
            p.tls,
            listener::Admission::new(cfg.max_connections, &edge.refusals, ReceiverTransport::Http),
            shutdown.clone(),
            close.clone(),
        );
        tasks.spawn(otlp_http::serve(
            p.addr,
            conns,
            Arc::clone(&edge),
            shutdown.clone(),
        ));
    }
    Ok(ReceiverHandle {
        grpc_addr: handle_addrs.0,
        http_addr: handle_addrs.1,
        refusals: Arc::clone(&edge.refusals),
        tasks,
    })
}

/// A bound listener with its TLS acceptor.
struct Prepared {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

async fn prepare(
    cfg: &ListenerConfig,
    transport: &'static str,
    alpn: &[&[u8]],
) -> Result<Prepared, ReceiverError> {
    let tls = match &cfg.tls {
        Some(t) => Some(tls::acceptor(t, transport, alpn)?),
        None => None,
    };
    let bind_error = |source| ReceiverError::Bind {
        transport,
        addr: cfg.endpoint,
        source,
    };
    let listener = tokio::net::TcpListener::bind(cfg.endpoint)
        .await
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(Prepared {
        listener,
        addr,
        tls,
    })
}

/// What both servers share: the ingest core and the request-level policy.
pub(crate) struct Edge {
    pub(crate) ingest: Ingest,
    /// The expected bearer token, when auth is on.
    pub(crate) bearer: Option<auth::BearerToken>,
    /// Bytes of request bodies held at once, across both servers.
    pub(crate) budget: limits::Budget,
    /// Largest request, after decompression too.
    pub(crate) max_request_size: usize,
    /// Delay suggested with a back-pressure refusal.
    pub(crate) retry_after: Duration,
    /// Requests refused before decoding.
    pub(crate) refusals: Arc<Refusals>,
    /// Fires when the receivers stop: bodies still arriving are cut short.
    pub(crate) shutdown: CancellationToken,
    /// Heavy requests decoded and normalised at once (see [`Edge::run_cpu`]).
    pub(crate) cpu_slots: Arc<Semaphore>,
}

impl Edge {
    /// Runs CPU work (inflating, decoding, normalising a request) on the blocking pool when
    /// `heavy`, so the runtime's workers (one by default) keep answering other clients while a
    /// burst of large requests is processed; light work runs in place, where a thread hop costs
    /// more than it saves. Heavy work waits for one of [`Self::cpu_slots`]: that bounds the
    /// threads and the decoded requests in memory at once, and waiting here is harmless (the
    /// body is read, so no flow-control window is held; the bytes stay charged to the budget,
    /// which refuses newcomers when spent).
    pub(crate) async fn run_cpu<T, F>(
        &self,
        heavy: bool,
        work: F,
    ) -> Result<T, tokio::task::JoinError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if !heavy {
            return Ok(work());
        }
        // The semaphore is never closed; should it be, the work runs unthrottled.
        let slot = Arc::clone(&self.cpu_slots).acquire_owned().await.ok();
        let result = tokio::task::spawn_blocking(work).await;
        drop(slot);
        result
    }

    /// Counts and logs one refused request.
    pub(crate) fn refused(
        &self,
        transport: ReceiverTransport,
        reason: RefusalReason,
        peer: Option<SocketAddr>,
    ) {
        self.refusals.count(transport, reason);
        debug!(
            transport = transport.as_str(),
            peer = ?peer,
            reason = reason.as_str(),
            "otlp request refused"
        );
    }
}

/// The transport-independent part of one export: normalise, hand over, count, answer.
pub(crate) struct Ingest {
    sources: Arc<[SourceConfig]>,
    normalize: Normalizer,
    tx: mpsc::Sender<EngineInput>,
    stats: Arc<SelfStats>,
    /// Most events queued for the engine at once (the engine releases them as it takes them).
    queue_events: u64,
}

/// How one decoded request ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IngestOutcome {
    /// Taken; `partial` is set when some records were rejected as invalid.
    Accepted {
        /// The partial success to report, if any record was rejected.
        partial: Option<ExportLogsPartialSuccess>,
    },
    /// The engine queue is full (or the engine has stopped): retry later.
    Busy {
        /// Why, for the status message.
        reason: &'static str,
    },
}

/// Longest `error_message` sent back; the spec caps whole responses at 4 MiB.
const MAX_ERROR_MESSAGE: usize = 1024;

impl Ingest {
    /// Normalises `req`, sends its events to the engine without waiting, counts every record.
    pub(crate) fn ingest(
        &self,
        transport: ReceiverTransport,
        req: &ExportLogsServiceRequest,
        peer: Option<SocketAddr>,
    ) -> IngestOutcome {
        let normalized = match self.normalize {
            Normalizer::Presets => crate::normalize::normalize_request(req, &self.sources),
            Normalizer::Custom(f) => f(req, &self.sources),
        };
        self.deliver(transport, normalized, record_count(req), peer)
    }

    /// [`Self::ingest`] of an encoded `ExportLogsServiceRequest`, read in place where it can be
    /// (see `otlp_wire`); `Err` when `prost` cannot decode it (the whole request is refused).
    pub(crate) fn ingest_encoded(
        &self,
        transport: ReceiverTransport,
        bytes: &[u8],
        peer: Option<SocketAddr>,
    ) -> Result<IngestOutcome, prost::DecodeError> {
        match self.normalize {
            Normalizer::Presets => {
                let (normalized, records) =
                    crate::normalize::normalize_encoded(bytes, &self.sources)?;
                Ok(self.deliver(transport, normalized, records, peer))
            }
            Normalizer::Custom(_) => {
                let req = <ExportLogsServiceRequest as prost::Message>::decode(bytes)?;
                Ok(self.ingest(transport, &req, peer))
            }
        }
    }

    /// Sends a request's events to the engine without waiting, counts its `records`, builds
    /// the answer.
    fn deliver(
        &self,
        transport: ReceiverTransport,
        normalized: Normalized,
        records: u64,
        peer: Option<SocketAddr>,
    ) -> IngestOutcome {
        // Records, not events: a preset can make several events of one record (Kamailio's
        // answered INVITE is a start and an answer) or one of several (Asterisk's CDR rows of
        // a queue call), and every record is exactly one of accepted, invalid or ignored.
        let accepted = records
            .saturating_sub(normalized.invalid)
            .saturating_sub(normalized.ignored);
        if !normalized.events.is_empty() {
            let n = normalized.events.len() as u64;
            let refused = if !self.stats.reserve_events(n, self.queue_events) {
                Some("engine queue full")
            } else {
                match self.tx.try_send(EngineInput::Events(normalized.events)) {
                    Ok(()) => None,
                    Err(e) => {
                        self.stats.release_events(n);
                        Some(match e {
                            mpsc::error::TrySendError::Full(_) => "engine queue full",
                            mpsc::error::TrySendError::Closed(_) => "engine stopped",
                        })
                    }
                }
            };
            if let Some(reason) = refused {
                // The client retries the whole request, so every record of it is refused now
                // and counted again under its real outcome when it comes back.
                self.stats
                    .count_records(transport, RecordOutcome::Refused, records);
                debug!(
                    transport = transport.as_str(),
                    peer = ?peer,
                    records,
                    reason,
                    "otlp request refused"
                );
                return IngestOutcome::Busy { reason };
            }
        }
        self.stats
            .count_records(transport, RecordOutcome::Accepted, accepted);
        self.stats
            .count_records(transport, RecordOutcome::Invalid, normalized.invalid);
        self.stats
            .count_records(transport, RecordOutcome::Ignored, normalized.ignored);
        let partial = (normalized.invalid > 0).then(|| {
            let mut message = normalized.first_invalid.unwrap_or_else(|| {
                format!(
                    "{} log records are VoIP events lacking a required field",
                    normalized.invalid
                )
            });
            truncate_at_char(&mut message, MAX_ERROR_MESSAGE);
            debug!(
                transport = transport.as_str(),
                peer = ?peer,
                invalid = normalized.invalid,
                first = %message,
                "otlp request partially rejected"
            );
            ExportLogsPartialSuccess {
                rejected_log_records: i64::try_from(normalized.invalid).unwrap_or(i64::MAX),
                error_message: message,
            }
        });
        IngestOutcome::Accepted { partial }
    }
}

/// Request size (bytes on the wire, or log records once decoded: about 250 bytes each) from
/// which inflating, decoding and normalising run on the blocking pool.
pub(crate) const HEAVY_REQUEST: usize = 64 << 10;

/// One heavy request per core, at least two: decoding is CPU-bound, more at once only adds
/// memory.
fn cpu_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Number of log records in a request (for counting a refused request).
pub(crate) fn record_count(req: &ExportLogsServiceRequest) -> u64 {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len() as u64)
        .sum()
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::VoipEventKind;
    use crate::event::{CallRecord, Disposition, EventMeta, VoipEvent};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};

    fn request(names: &[&str]) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: names
                        .iter()
                        .map(|n| LogRecord {
                            event_name: (*n).to_string(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// `good` → an event, `bad` → invalid, anything else → ignored.
    fn fake(req: &ExportLogsServiceRequest, _: &[SourceConfig]) -> Normalized {
        let mut n = Normalized::default();
        for r in req
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| &s.log_records)
        {
            match r.event_name.as_str() {
                "good" => n.events.push(VoipEvent {
                    meta: EventMeta {
                        pbx: "pbx".into(),
                        time: None,
                    },
                    kind: VoipEventKind::Cdr(CallRecord::new("c", Disposition::Answered)),
                }),
                "bad" => {
                    n.invalid += 1;
                    n.first_invalid
                        .get_or_insert_with(|| "voip.cdr lacks voip.call.id".into());
                }
                _ => n.ignored += 1,
            }
        }
        n
    }

    fn ingest(cap: usize) -> (Ingest, mpsc::Receiver<EngineInput>, Arc<SelfStats>) {
        let (tx, rx) = mpsc::channel(cap);
        let stats = Arc::new(SelfStats::default());
        let ingest = Ingest {
            sources: Arc::from(Vec::new()),
            normalize: Normalizer::Custom(fake),
            tx,
            stats: Arc::clone(&stats),
            queue_events: 1_000,
        };
        (ingest, rx, stats)
    }

    #[test]
    fn the_queue_is_bounded_by_events_not_only_requests() {
        let (mut ingest, mut rx, stats) = ingest(1024);
        ingest.queue_events = 5;
        let g = ReceiverTransport::Grpc;
        let three = request(&["good", "good", "good"]);
        assert!(matches!(
            ingest.ingest(g, &three, None),
            IngestOutcome::Accepted { .. }
        ));
        // 3 queued + 3 > 5: refused although the request queue has room.
        assert!(matches!(
            ingest.ingest(g, &three, None),
            IngestOutcome::Busy { .. }
        ));
        assert_eq!(stats.queued_events(), 3);
        // The engine takes the first batch and gives its room back.
        let Ok(EngineInput::Events(events)) = rx.try_recv() else {
            panic!("no events batch");
        };
        stats.release_events(events.len() as u64);
        assert!(matches!(
            ingest.ingest(g, &three, None),
            IngestOutcome::Accepted { .. }
        ));
        // One request larger than the whole bound still passes when the queue is empty, or it
        // could never be delivered.
        let (mut big, _rx, _) = super::tests::ingest(4);
        big.queue_events = 2;
        assert!(matches!(
            big.ingest(g, &three, None),
            IngestOutcome::Accepted { .. }
        ));
    }

    #[test]
    fn mixed_batch_sends_good_records_and_reports_partial_success() {
        let (ingest, mut rx, stats) = ingest(4);
        let out = ingest.ingest(
            ReceiverTransport::Grpc,
            &request(&["good", "bad", "other", "good", "bad"]),
            None,
        );
        let IngestOutcome::Accepted { partial: Some(p) } = out else {
            panic!("expected partial success, got {out:?}");
        };
        assert_eq!(p.rejected_log_records, 2);
        assert_eq!(p.error_message, "voip.cdr lacks voip.call.id");
        let Ok(EngineInput::Events(events)) = rx.try_recv() else {
            panic!("no events batch");
        };
        assert_eq!(events.len(), 2);
        let g = ReceiverTransport::Grpc;
        assert_eq!(stats.records(g, RecordOutcome::Accepted), 2);
        assert_eq!(stats.records(g, RecordOutcome::Invalid), 2);
        assert_eq!(stats.records(g, RecordOutcome::Ignored), 1);
        assert_eq!(stats.records(g, RecordOutcome::Refused), 0);
    }

    #[test]
    fn request_without_voip_events_sends_nothing_even_when_queue_full() {
        let (ingest, mut rx, stats) = ingest(1);
        assert!(matches!(
            ingest.ingest(ReceiverTransport::Http, &request(&["good"]), None),
            IngestOutcome::Accepted { partial: None }
        ));
        // The queue is full now, but a request with nothing for the engine is still accepted.
        let out = ingest.ingest(ReceiverTransport::Http, &request(&["x", "y"]), None);
        assert_eq!(out, IngestOutcome::Accepted { partial: None });
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
        assert_eq!(
            stats.records(ReceiverTransport::Http, RecordOutcome::Ignored),
            2
        );
    }

    #[test]
    fn full_queue_refuses_every_record_of_the_request() {
        let (ingest, _rx, stats) = ingest(1);
        let _ = ingest.ingest(ReceiverTransport::Grpc, &request(&["good"]), None);
        let out = ingest.ingest(
            ReceiverTransport::Grpc,
            &request(&["good", "bad", "z"]),
            None,
        );
        assert!(matches!(out, IngestOutcome::Busy { .. }));
        let g = ReceiverTransport::Grpc;
        assert_eq!(stats.records(g, RecordOutcome::Refused), 3);
        assert_eq!(stats.records(g, RecordOutcome::Accepted), 1);
        assert_eq!(stats.records(g, RecordOutcome::Invalid), 0);
    }

    #[test]
    fn closed_queue_is_busy_not_a_panic() {
        let (ingest, rx, _) = ingest(1);
        drop(rx);
        let out = ingest.ingest(ReceiverTransport::Grpc, &request(&["good"]), None);
        assert_eq!(
            out,
            IngestOutcome::Busy {
                reason: "engine stopped"
            }
        );
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let mut s = "é".repeat(600);
        truncate_at_char(&mut s, MAX_ERROR_MESSAGE);
        assert!(s.len() <= MAX_ERROR_MESSAGE);
        assert!(s.chars().all(|c| c == 'é'));
    }
}

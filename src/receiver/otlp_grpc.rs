//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export` on tonic's generated
//! server, gzip both ways, size limit after decompression.
//!
//! A small tower layer ([`GrpcEdge`]) sits in front of tonic: it checks the bearer token before
//! the body is read, reads the body itself at once (charged to the byte budget as it arrives,
//! under the body deadlines, see `limits`), decodes, normalises and ingests `Export` requests
//! itself in one go ([`Ingested`]) and hands tonic the rest, and corrects the two statuses
//! tonic's decoder gets wrong for OTLP (see [`spec_status`]).
//!
//! Reading every admitted stream at once is what keeps HTTP/2 flow control moving: data that
//! nobody reads holds the connection window, and then the streams behind it get nothing. A
//! stalled stream costs no budget and is cut off by the idle deadline; it can only use up its
//! own connection's stream limit.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::Full;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Request, Response, Status};
use tower::{Layer, Service};
use tracing::debug;

/// Streams one connection may have open: a client stalling all of them blocks only itself.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;
/// HTTP/2 receive window per stream: a 1 MiB request arrives without waiting for updates.
const STREAM_WINDOW: u32 = 1 << 20;
/// HTTP/2 receive window per connection: room for several streams' data in flight at once.
/// Every admitted stream is read at once, so this is a rate, not memory held.
const CONNECTION_WINDOW: u32 = 4 << 20;
/// Largest header block: OTLP requests carry a few short headers.
const MAX_HEADER_LIST: u32 = 64 << 10;
/// Pings on an idle connection, and how long to wait for the answer: finds dead peers.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC frame header: compressed flag and 4-byte length.
const FRAME_HEADER: usize = 5;

use super::limits::{self, BODY_DEADLINES, BodyError};
use super::listener::Conn;
use super::rpc_status::{Detail, RpcCode, RpcStatus};
use super::{Edge, IngestOutcome, ReceiverError, RefusalReason};
use crate::stats::ReceiverTransport;

/// Runs the gRPC server on `conns` until `shutdown`, then waits for in-flight calls.
pub(crate) async fn serve(
    addr: SocketAddr,
    conns: mpsc::Receiver<Conn>,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
) -> Result<(), ReceiverError> {
    let logs = LogsServiceServer::new(GrpcLogs {
        edge: Arc::clone(&edge),
    })
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip)
    // tonic checks this against the frame length (compressed or not) and while inflating.
    .max_decoding_message_size(edge.max_request_size);
    let incoming = ReceiverStream::new(conns).map(Ok::<_, std::io::Error>);
    let server = tonic::transport::Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(GrpcEdgeLayer::new(edge))
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    // Connections that outlive shutdown are closed by force (see `listener`), so this returns.
    server.await.map_err(|e| ReceiverError::Serve {
        transport: "grpc",
        addr,
        reason: e.to_string(),
    })
}

/// The `LogsService` implementation: the edge's outcome (or a request tonic decoded) in, OTLP
/// response or status out.
struct GrpcLogs {
    edge: Arc<Edge>,
}

#[tonic::async_trait]
impl LogsService for GrpcLogs {
    async fn export(
        &self,
        mut request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        if let Some(Ingested(outcome)) = request.extensions_mut().remove::<Ingested>() {
            return respond(outcome, &self.edge);
        }
        let peer = request.remote_addr();
        let req = request.into_inner();
        // Large requests are normalised on the blocking pool, so the worker is left to the
        // connections and the engine.
        let heavy = super::record_count(&req) >= (super::HEAVY_REQUEST / 256) as u64;
        let edge = Arc::clone(&self.edge);
        let work = move || edge.ingest.ingest(ReceiverTransport::Grpc, &req, peer);
        match self.edge.run_cpu(heavy, work).await {
            Ok(outcome) => respond(outcome, &self.edge),
            Err(e) => Err(handling_failed(&e)),
        }
    }
}

/// The answer to an ingested request.
fn respond(
    outcome: IngestOutcome,
    edge: &Edge,
) -> Result<Response<ExportLogsServiceResponse>, Status> {
    match outcome {
        IngestOutcome::Accepted { partial } => Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial,
        })),
        IngestOutcome::Busy { reason } => Err(unavailable(reason, edge)),
    }
}

/// Request handling panicked. Not INTERNAL: `spec_status` reads that as tonic's decoder failing.
fn handling_failed(e: &tokio::task::JoinError) -> Status {
    Status::unknown(format!("request handling failed: {e}"))
}

/// UNAVAILABLE (retryable) with a `RetryInfo` detail, as OTLP asks for throttling.
fn unavailable(reason: &str, edge: &Edge) -> Status {
    let message = format!("{reason}, retry later");
    let details = RpcStatus::new(
        RpcCode::Unavailable,
        &message,
        &Detail::RetryAfter(edge.retry_after),
    )
    .encode_to_vec();
    Status::with_details(Code::Unavailable, message, details.into())
}

/// Installs [`GrpcEdge`] around tonic's router.
#[derive(Clone)]
struct GrpcEdgeLayer {
    edge: Arc<Edge>,
    in_flight: Arc<AtomicUsize>,
}

impl GrpcEdgeLayer {
    fn new(edge: Arc<Edge>) -> GrpcEdgeLayer {
        GrpcEdgeLayer {
            edge,
            in_flight: Arc::default(),
        }
    }
}

impl<S> Layer<S> for GrpcEdgeLayer {
    type Service = GrpcEdge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcEdge {
            inner,
            edge: Arc::clone(&self.edge),
            in_flight: Arc::clone(&self.in_flight),
        }
    }
}

/// Auth, body reading (budget, deadlines), off-runtime decoding of large requests and status
/// correction in front of tonic.
#[derive(Clone)]
struct GrpcEdge<S> {
    inner: S,
    edge: Arc<Edge>,
    /// `Export` calls between their body being read and their answer, over all connections.
    in_flight: Arc<AtomicUsize>,
}

/// Counts one call in [`GrpcEdge::in_flight`] while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Enters; returns the guard and whether another call was in flight already.
    fn enter(counter: &Arc<AtomicUsize>) -> (InFlight, bool) {
        let before = counter.fetch_add(1, Ordering::Relaxed);
        (InFlight(Arc::clone(counter)), before > 0)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<http::Request<tonic::body::Body>> for GrpcEdge<S>
where
    S: Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        // The clone that was polled ready does the call; the fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let edge = Arc::clone(&self.edge);
        let in_flight = Arc::clone(&self.in_flight);
        Box::pin(async move {
            let peer = peer_of(&req);
            if let Some(token) = &edge.bearer
                && !token.admits(req.headers())
            {
                edge.refused(
                    ReceiverTransport::Grpc,
                    RefusalReason::Unauthenticated,
                    peer,
                );
                return Ok(Status::unauthenticated("missing or wrong bearer token").into_http());
            }
            let (parts, mut body) = req.into_parts();
            // One unary message: its frame header and at most the limit (tonic checks the
            // inflated size while decoding).
            let limit = edge.max_request_size.saturating_add(FRAME_HEADER);
            let read = limits::read_body(
                &mut body,
                limit,
                None,
                &edge.budget,
                BODY_DEADLINES,
                &edge.shutdown,
            )
            .await;
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    edge.refused(ReceiverTransport::Grpc, e.reason(), peer);
                    return Ok(body_refusal(&e, &edge).into_http());
                }
            };
            let mut parts = parts;
            let mut message = read.bytes.clone();
            let mut _counted = None;
            if parts.uri.path() == EXPORT_PATH {
                let (guard, concurrent) = InFlight::enter(&in_flight);
                _counted = Some(guard);
                let gzip_ok = parts
                    .headers
                    .get(GRPC_ENCODING)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
                let bytes = message.clone();
                let work = {
                    let edge = Arc::clone(&edge);
                    move || process(&bytes, gzip_ok, &edge, peer)
                };
                match edge.run_cpu(concurrent || is_heavy(&message), work).await {
                    Ok(Processed::Done(outcome)) => {
                        parts.extensions.insert(Ingested(outcome));
                        message = Bytes::from_static(EMPTY_MESSAGE);
                    }
                    Ok(Processed::Refuse(reason, status)) => {
                        edge.refused(ReceiverTransport::Grpc, reason, peer);
                        return Ok(status.into_http());
                    }
                    Ok(Processed::LeaveToTonic) => {}
                    Err(e) => return Ok(handling_failed(&e).into_http()),
                }
            }
            let whole = tonic::body::Body::new(Full::new(message));
            let mut response = inner.call(http::Request::from_parts(parts, whole)).await?;
            // The budget is given back once tonic has decoded and the engine has the events.
            drop(read);
            if let Some(reason) = spec_status(&mut response) {
                edge.refused(ReceiverTransport::Grpc, reason, peer);
            }
            Ok(response)
        })
    }
}

/// How a request the edge ingested itself ended, handed to [`GrpcLogs`] in the request's
/// extensions while tonic is given an empty message ([`EMPTY_MESSAGE`]) to decode in its place.
///
/// Why: the edge has the whole body anyway, and reading it from the one contiguous buffer is
/// cheaper than tonic's decoding through its chunked `DecodeBuf`, in place where it can be
/// (`otlp_wire`: no `String` per attribute; see docs/performance.md). Decoding, normalising and
/// handing the events to the engine are one piece of CPU work, so they take one trip to the
/// blocking pool, not two, and the borrowed view of the body never outlives it. Large or
/// compressed bodies, and any body that arrives while another `Export` call is in flight, go to
/// the pool: tonic would decode in the connection's task, on the runtime's worker (one by
/// default), where a burst of large requests keeps every other client waiting, and with several
/// clients sending at once the pool puts the other cores to work while the worker serves
/// connections and the engine. A lone small request is handled right here: a hop to the pool
/// would cost more than it saves.
#[derive(Clone)]
struct Ingested(IngestOutcome);

/// The one method the edge decodes itself; anything else is tonic's to answer.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
/// An uncompressed gRPC frame holding an empty message.
const EMPTY_MESSAGE: &[u8] = &[0, 0, 0, 0, 0];
const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// Whether a request body is worth decoding on the blocking pool: large, or compressed (it may
/// inflate to the limit).
fn is_heavy(body: &[u8]) -> bool {
    body.len() >= super::HEAVY_REQUEST || body.first() == Some(&1)
}

/// What the edge made of a body.
enum Processed {
    /// Decoded and ingested.
    Done(IngestOutcome),
    /// Refused with this status.
    Refuse(RefusalReason, Status),
    /// Not one well-formed frame, or an encoding other than gzip: tonic answers it as usual.
    LeaveToTonic,
}

/// Decodes, normalises and ingests one unary gRPC frame (see [`Ingested`]).
fn process(body: &[u8], gzip_ok: bool, edge: &Edge, peer: Option<SocketAddr>) -> Processed {
    let data = match unframe(body, gzip_ok, edge.max_request_size) {
        Unframed::Message(data) => data,
        Unframed::Refuse(reason, status) => return Processed::Refuse(reason, status),
        Unframed::LeaveToTonic => return Processed::LeaveToTonic,
    };
    match edge
        .ingest
        .ingest_encoded(ReceiverTransport::Grpc, &data, peer)
    {
        Ok(outcome) => Processed::Done(outcome),
        Err(e) => Processed::Refuse(
            RefusalReason::BadRequest,
            Status::invalid_argument(format!("cannot decode the request: {e}")),
        ),
    }
}

/// The message of a body.
enum Unframed<'b> {
    /// The (inflated) message.
    Message(std::borrow::Cow<'b, [u8]>),
    /// Refused with this status.
    Refuse(RefusalReason, Status),
    /// Not one well-formed frame, or an encoding other than gzip: tonic answers it as usual.
    LeaveToTonic,
}

/// The message of one unary gRPC frame: inflated when flagged compressed and the request said
/// gzip, never past `limit`.
fn unframe(body: &[u8], gzip_ok: bool, limit: usize) -> Unframed<'_> {
    let Some((&flag, rest)) = body.split_first() else {
        return Unframed::LeaveToTonic;
    };
    let Some((len, payload)) = rest.split_first_chunk::<4>() else {
        return Unframed::LeaveToTonic;
    };
    if usize::try_from(u32::from_be_bytes(*len)).ok() != Some(payload.len()) {
        return Unframed::LeaveToTonic;
    }
    let too_large = || {
        Unframed::Refuse(
            RefusalReason::TooLarge,
            Status::resource_exhausted(format!(
                "request larger than the limit of {limit} bytes (after decompression)"
            )),
        )
    };
    match flag {
        0 if payload.len() > limit => too_large(),
        0 => Unframed::Message(payload.into()),
        1 if gzip_ok => match limits::gunzip(payload, limit) {
            Ok(d) => Unframed::Message(d.into()),
            Err(limits::GunzipError::TooLarge) => too_large(),
            Err(limits::GunzipError::Corrupt(e)) => Unframed::Refuse(
                RefusalReason::BadRequest,
                Status::invalid_argument(format!("bad gzip: {e}")),
            ),
        },
        _ => Unframed::LeaveToTonic,
    }
}

/// The status for a body that could not be read: retryable for what is the server's or the
/// moment's doing (budget, shutdown, a slow network), not for an oversized message.
fn body_refusal(e: &BodyError, edge: &Edge) -> Status {
    match e {
        BodyError::TooLarge => Status::resource_exhausted(format!(
            "request larger than the limit of {} bytes",
            edge.max_request_size
        )),
        BodyError::OverBudget => unavailable("receiver busy", edge),
        BodyError::ShuttingDown => unavailable("receiver shutting down", edge),
        BodyError::TimedOut => unavailable("request body not received in time", edge),
        BodyError::Broken(reason) => Status::cancelled(format!("request body broken: {reason}")),
    }
}

fn peer_of<B>(req: &http::Request<B>) -> Option<SocketAddr> {
    req.extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
}

/// Maps tonic's decoder failures onto the codes the OTLP spec asks for. tonic answers an
/// oversized message with OUT_OF_RANGE, which OTLP clients retry, where the spec wants
/// RESOURCE_EXHAUSTED (not retried); and undecodable protobuf with INTERNAL where the spec wants
/// INVALID_ARGUMENT. Our handler returns neither code, so a trailers-only response carrying one
/// comes from tonic's request decoding.
/// Returns how the refusal is counted when it corrected one.
fn spec_status(response: &mut http::Response<tonic::body::Body>) -> Option<RefusalReason> {
    let code = response.headers().get(GRPC_STATUS)?;
    let (corrected, reason) = match Code::from_bytes(code.as_bytes()) {
        Code::OutOfRange => (Code::ResourceExhausted, RefusalReason::TooLarge),
        Code::Internal => (Code::InvalidArgument, RefusalReason::BadRequest),
        _ => return None,
    };
    debug!(from = ?Code::from_bytes(code.as_bytes()), to = ?corrected, "otlp grpc request refused by the decoder");
    response
        .headers_mut()
        .insert(GRPC_STATUS, HeaderValue::from(corrected as i32));
    Some(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use std::io::Write;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![flag];
        f.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord {
                        event_name: "voip.cdr".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn unframe_reads_plain_and_gzip_frames() {
        let bytes = request().encode_to_vec();
        for (body, gzip_ok) in [(frame(0, &bytes), false), (frame(1, &gzip(&bytes)), true)] {
            match unframe(&body, gzip_ok, 1 << 20) {
                Unframed::Message(m) => assert_eq!(m.as_ref(), &bytes[..]),
                _ => panic!("not unframed"),
            }
        }
        assert!(is_heavy(&frame(1, b"x")));
        assert!(!is_heavy(&frame(0, &bytes)));
    }

    #[test]
    fn unframe_refuses_what_is_too_large_or_corrupt() {
        let big = vec![0u8; 2000];
        let cases = [
            (
                frame(0, &big),
                true,
                RefusalReason::TooLarge,
                Code::ResourceExhausted,
            ),
            (
                frame(1, &gzip(&big)),
                true,
                RefusalReason::TooLarge,
                Code::ResourceExhausted,
            ),
            (
                frame(1, b"not gzip"),
                true,
                RefusalReason::BadRequest,
                Code::InvalidArgument,
            ),
        ];
        for (body, gzip_ok, want_reason, want_code) in cases {
            match unframe(&body, gzip_ok, 1000) {
                Unframed::Refuse(reason, status) => {
                    assert_eq!((reason, status.code()), (want_reason, want_code));
                }
                _ => panic!("not refused: {want_reason:?}"),
            }
        }
    }

    #[test]
    fn unframe_leaves_odd_frames_to_tonic() {
        let bytes = request().encode_to_vec();
        let mut two = frame(0, &bytes);
        two.extend(frame(0, &bytes));
        let mut short = frame(0, &bytes);
        short.pop();
        for body in [
            Vec::new(),
            vec![0, 0, 0],
            two,
            short,
            // compressed, but the request did not say gzip
            frame(1, &gzip(&bytes)),
        ] {
            assert!(matches!(
                unframe(&body, false, 1 << 20),
                Unframed::LeaveToTonic
            ));
        }
    }
}

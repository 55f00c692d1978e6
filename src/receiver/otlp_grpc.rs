//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export` on tonic's generated
//! server, gzip both ways, size limit after decompression.
//!
//! A small tower layer ([`GrpcEdge`]) sits in front of tonic: it checks the bearer token before
//! the body is read, reads the body itself at once (charged to the byte budget as it arrives,
//! under the body deadlines, see `limits`) and hands tonic the complete message, and corrects the
//! two statuses tonic's decoder gets wrong for OTLP (see [`spec_status`]).
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
use std::task::{Context, Poll};
use std::time::Duration;

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
use tracing::{debug, warn};

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
/// After shutdown fires, longest wait for connections to close once their streams are answered
/// (stalled bodies are refused after `BODY_DEADLINES.after_shutdown`); then they are dropped.
pub(crate) const SHUTDOWN_LINGER: Duration = Duration::from_secs(3);
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
        .layer(GrpcEdgeLayer { edge })
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::pin!(server);
    let linger = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_LINGER).await;
    };
    tokio::select! {
        result = &mut server => result.map_err(|e| ReceiverError::Serve {
            transport: "grpc",
            addr,
            reason: e.to_string(),
        }),
        () = linger => {
            warn!(addr = %addr, "otlp grpc connections still open after shutdown; closing them");
            Ok(())
        }
    }
}

/// The `LogsService` implementation: decoded request in, OTLP response or status out.
struct GrpcLogs {
    edge: Arc<Edge>,
}

#[tonic::async_trait]
impl LogsService for GrpcLogs {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let peer = request.remote_addr();
        let req = request.into_inner();
        match self.edge.ingest.ingest(ReceiverTransport::Grpc, &req, peer) {
            IngestOutcome::Accepted { partial } => Ok(Response::new(ExportLogsServiceResponse {
                partial_success: partial,
            })),
            IngestOutcome::Busy { reason } => Err(unavailable(reason, &self.edge)),
        }
    }
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
}

impl<S> Layer<S> for GrpcEdgeLayer {
    type Service = GrpcEdge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcEdge {
            inner,
            edge: Arc::clone(&self.edge),
        }
    }
}

/// Auth, in-flight permit and status correction in front of tonic.
#[derive(Clone)]
struct GrpcEdge<S> {
    inner: S,
    edge: Arc<Edge>,
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
            let whole = tonic::body::Body::new(Full::new(read.bytes.clone()));
            let mut response = inner.call(http::Request::from_parts(parts, whole)).await?;
            // The budget is given back once tonic has decoded and the engine has the events.
            drop(read);
            spec_status(&mut response);
            Ok(response)
        })
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
fn spec_status(response: &mut http::Response<tonic::body::Body>) {
    let Some(code) = response.headers().get(GRPC_STATUS) else {
        return;
    };
    let corrected = match Code::from_bytes(code.as_bytes()) {
        Code::OutOfRange => Code::ResourceExhausted,
        Code::Internal => Code::InvalidArgument,
        _ => return,
    };
    debug!(from = ?Code::from_bytes(code.as_bytes()), to = ?corrected, "otlp grpc request refused by the decoder");
    response
        .headers_mut()
        .insert(GRPC_STATUS, HeaderValue::from(corrected as i32));
}

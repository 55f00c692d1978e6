//! OTLP/gRPC: `opentelemetry.proto.collector.logs.v1.LogsService/Export` on tonic's generated
//! server, gzip both ways, size limit after decompression.
//!
//! A small tower layer ([`GrpcEdge`]) sits in front of tonic: it checks the bearer token before
//! the body is read, holds an in-flight permit while tonic reads and decodes, and corrects the two
//! statuses tonic's decoder gets wrong for OTLP (see [`spec_status`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue};
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

use super::listener::Conn;
use super::rpc_status::{Detail, RpcCode, RpcStatus};
use super::{Edge, IngestOutcome, ReceiverError};
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
    tonic::transport::Server::builder()
        .layer(GrpcEdgeLayer { edge })
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
        .map_err(|e| ReceiverError::Serve {
            transport: "grpc",
            addr,
            reason: e.to_string(),
        })
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

impl<S, B> Service<http::Request<B>> for GrpcEdge<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone that was polled ready does the call; the fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let edge = Arc::clone(&self.edge);
        Box::pin(async move {
            if let Some(token) = &edge.bearer
                && !token.admits(req.headers())
            {
                debug!(peer = ?peer_of(&req), "otlp grpc request without a valid bearer token");
                return Ok(Status::unauthenticated("missing or wrong bearer token").into_http());
            }
            let Ok(_permit) = Arc::clone(&edge.permits).acquire_owned().await else {
                return Ok(Status::unavailable("receiver shutting down").into_http());
            };
            let mut response = inner.call(req).await?;
            spec_status(&mut response);
            Ok(response)
        })
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

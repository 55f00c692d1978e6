//! OTLP/HTTP: `POST /v1/logs` with protobuf or JSON bodies, optional gzip, on axum behind our own
//! HTTP/1.1 accept loop (plain or TLS).
//!
//! Every refusal carries a `google.rpc.Status` body in the request's encoding, as the OTLP spec
//! asks. Every check that needs no body (method, auth, types, declared length, budget) is made
//! before the body is touched, so a client that sent `Expect: 100-continue` is refused without
//! ever being told to continue. Bodies are read under the deadlines and the byte budget of
//! `limits`; a connection gets `HEADER_TIMEOUT` to send its request headers. Only `/v1/logs` is served: `/v1/metrics` and `/v1/traces` get 404 like any other path,
//! because callpulse takes no metrics or traces in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

use super::limits::{self, BODY_DEADLINES, BodyError, GunzipError};
use super::listener::Conn;
use super::rpc_status::{Detail, RpcCode, RpcStatus};
use super::{Edge, IngestOutcome, ReceiverError, RefusalReason};
use crate::stats::ReceiverTransport;

/// The one path served.
pub(crate) const LOGS_PATH: &str = "/v1/logs";
const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
/// Longest a client may take to send its request headers, counted from connecting or from the end
/// of the previous response: hyper uses it as the keep-alive idle limit too, so it stays at the
/// usual 30 s (shorter closes idle exporter connections that are about to be reused, and the
/// client's next request races the close). A connection waiting for headers holds no body
/// budget, so a slow client costs only its socket meanwhile.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest spent discarding the rest of a refused oversized body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the HTTP server on `conns` until `shutdown`, then lets every connection finish the
/// request it is serving.
pub(crate) async fn serve(
    addr: SocketAddr,
    mut conns: mpsc::Receiver<Conn>,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
) -> Result<(), ReceiverError> {
    let router = Router::new()
        .route(LOGS_PATH, any(export_logs))
        .fallback(not_found)
        .with_state(edge);
    let connections = TaskTracker::new();
    loop {
        let conn = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            conn = conns.recv() => match conn {
                Some(c) => c,
                None => break,
            },
        };
        connections.spawn(serve_connection(conn, router.clone(), shutdown.clone()));
    }
    drop(conns);
    connections.close();
    connections.wait().await;
    debug!(addr = %addr, "otlp http receiver stopped");
    Ok(())
}

/// The client's address, for logs.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

async fn serve_connection(conn: Conn, router: Router, shutdown: CancellationToken) {
    let peer = conn.peer;
    let svc = router.map_request(move |mut req: http::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        req
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(conn), TowerToHyperService::new(svc));
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            // Finish the request in progress (if any), then close. A body still arriving is
            // refused shortly after shutdown (see `limits`); a connection still open after
            // the linger (half-sent headers, an unread answer) is closed by force (see
            // `listener`).
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        debug!(peer = %peer, error = %e, "otlp http connection ended with an error");
    }
}

/// Body encoding, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding the request declares, parameters (`; charset=utf-8`) ignored.
    fn of(headers: &HeaderMap) -> Option<Encoding> {
        let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case(PROTOBUF) {
            Some(Encoding::Protobuf)
        } else if media.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        })
    }
}

/// A refusal: HTTP status, the `google.rpc.Status` it carries, in the request's encoding.
fn refusal(
    status: StatusCode,
    code: RpcCode,
    message: &str,
    detail: Detail,
    encoding: Encoding,
) -> Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus::new(code, message, &detail).encode_to_vec(),
        Encoding::Json => RpcStatus::to_json(code, message, &detail),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, encoding.content_type());
    response
}

/// 413, closing the connection: the rest of the body is not read.
fn too_large(limit: usize, encoding: Encoding) -> Response {
    let mut r = refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        RpcCode::ResourceExhausted,
        &format!("request larger than the limit of {limit} bytes (after decompression)"),
        Detail::None,
        encoding,
    );
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn bad_request(reason: String, encoding: Encoding) -> Response {
    refusal(
        StatusCode::BAD_REQUEST,
        RpcCode::InvalidArgument,
        &format!("cannot decode the request: {reason}"),
        Detail::BadRequest(reason),
        encoding,
    )
}

async fn not_found(req: Request) -> Response {
    let encoding = Encoding::of(req.headers()).unwrap_or(Encoding::Protobuf);
    debug!(path = %req.uri().path(), "otlp http request to an unknown path");
    refusal(
        StatusCode::NOT_FOUND,
        RpcCode::NotFound,
        &format!("no such path; OTLP logs go to POST {LOGS_PATH}"),
        Detail::None,
        encoding,
    )
}

/// `Content-Encoding`: gzip or nothing; `Err` carries an unsupported value.
fn gzipped(headers: &HeaderMap) -> Result<bool, String> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(false);
    };
    let v = String::from_utf8_lossy(value.as_bytes())
        .trim()
        .to_ascii_lowercase();
    match v.as_str() {
        "" | "identity" => Ok(false),
        "gzip" | "x-gzip" => Ok(true),
        _ => Err(v),
    }
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether the client waits for `100 Continue` before sending its body: then a refusal must be
/// sent without touching the body (hyper sends the `100` on the first read).
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Marks a response as the connection's last: the rest of the body is not read.
fn closing(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn export_logs(State(edge): State<Arc<Edge>>, req: Request) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let (parts, mut body) = req.into_parts();
    let declared = Encoding::of(&parts.headers);
    let reply = declared.unwrap_or(Encoding::Protobuf);
    let refused = |reason| edge.refused(ReceiverTransport::Http, reason, peer);

    if parts.method != Method::POST {
        let mut r = refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            RpcCode::Unimplemented,
            &format!("{} is not allowed; use POST", parts.method),
            Detail::None,
            reply,
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    if let Some(token) = &edge.bearer
        && !token.admits(&parts.headers)
    {
        refused(RefusalReason::Unauthenticated);
        let mut r = refusal(
            StatusCode::UNAUTHORIZED,
            RpcCode::Unauthenticated,
            "missing or wrong bearer token",
            Detail::None,
            reply,
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let Some(encoding) = declared else {
        let got = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".into());
        debug!(peer = ?peer, content_type = %got, "otlp http request with an unsupported content type");
        refused(RefusalReason::UnsupportedMediaType);
        return refusal(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            RpcCode::InvalidArgument,
            &format!("unsupported content type {got:?}; use {PROTOBUF} or {JSON}"),
            Detail::None,
            reply,
        );
    };
    let gzip = match gzipped(&parts.headers) {
        Ok(g) => g,
        Err(other) => {
            // 415, as for a content type: the body is fine, its packaging is not understood.
            refused(RefusalReason::UnsupportedEncoding);
            return refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                RpcCode::InvalidArgument,
                &format!("unsupported content encoding {other:?}; use gzip or none"),
                Detail::None,
                encoding,
            );
        }
    };
    let limit = edge.max_request_size;
    let length = content_length(&parts.headers);
    let waits_to_continue = expects_continue(&parts.headers);
    if let Some(length) = length
        && length > limit
    {
        debug!(peer = ?peer, length, limit, "otlp http request over the size limit");
        refused(RefusalReason::TooLarge);
        // A client waiting for `100 Continue` has sent no body: answer at once. Otherwise read
        // a bounded amount of what it is sending so it sees the 413 rather than a reset.
        if !waits_to_continue {
            limits::drain(&mut body, limit, DRAIN_TIMEOUT).await;
        }
        return too_large(limit, encoding);
    }
    // Checked before the body is touched, so a waiting client is not told to continue: the
    // budget is charged while the body arrives, this only refuses what cannot fit now.
    if length.is_some_and(|n| n > edge.budget.free()) {
        refused(RefusalReason::OverBudget);
        return closing(busy(&edge, "receiver busy", encoding));
    }

    let raw = match limits::read_body(
        &mut body,
        limit,
        length,
        &edge.budget,
        BODY_DEADLINES,
        &edge.shutdown,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => {
            refused(e.reason());
            return match e {
                BodyError::TooLarge => {
                    debug!(peer = ?peer, limit, "otlp http body over the size limit");
                    limits::drain(&mut body, limit, DRAIN_TIMEOUT).await;
                    too_large(limit, encoding)
                }
                BodyError::TimedOut => closing(refusal(
                    StatusCode::REQUEST_TIMEOUT,
                    RpcCode::InvalidArgument,
                    "request body not received in time",
                    Detail::None,
                    encoding,
                )),
                BodyError::OverBudget => closing(busy(&edge, "receiver busy", encoding)),
                BodyError::ShuttingDown => closing(busy(&edge, "receiver shutting down", encoding)),
                BodyError::Broken(reason) => bad_request(reason, encoding),
            };
        }
    };
    let heavy = gzip || raw.bytes.len() >= super::HEAVY_REQUEST;
    let work = {
        let edge = Arc::clone(&edge);
        move || handle_body(&edge, raw, gzip, encoding, peer)
    };
    match edge.run_cpu(heavy, work).await {
        Ok(response) => response,
        Err(e) => {
            warn!(peer = ?peer, error = %e, "otlp http request handling failed");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                RpcCode::Internal,
                "internal error",
                Detail::None,
                encoding,
            )
        }
    }
}

/// Inflates, decodes, normalises and answers a body read whole. CPU work only: runs on the
/// blocking pool for a large request (see `Edge::run_cpu`).
fn handle_body(
    edge: &Edge,
    raw: limits::ReadBody,
    gzip: bool,
    encoding: Encoding,
    peer: Option<SocketAddr>,
) -> Response {
    let limit = edge.max_request_size;
    let refused = |reason| edge.refused(ReceiverTransport::Http, reason, peer);
    let data = if gzip {
        match limits::gunzip(&raw.bytes, limit) {
            Ok(d) => Bytes::from(d),
            Err(GunzipError::TooLarge) => {
                debug!(peer = ?peer, limit, "otlp http body inflates past the size limit");
                refused(RefusalReason::TooLarge);
                return too_large(limit, encoding);
            }
            Err(GunzipError::Corrupt(e)) => {
                refused(RefusalReason::BadRequest);
                return bad_request(format!("bad gzip: {e}"), encoding);
            }
        }
    } else {
        raw.bytes.clone()
    };
    // Protobuf is read in place (`otlp_wire`); JSON goes through serde into `prost` types.
    let outcome = match encoding {
        Encoding::Protobuf => edge
            .ingest
            .ingest_encoded(ReceiverTransport::Http, &data, peer)
            .map_err(|e| e.to_string()),
        Encoding::Json => serde_json::from_slice::<ExportLogsServiceRequest>(&data)
            .map_err(|e| format!("invalid json: {e}"))
            .map(|request| edge.ingest.ingest(ReceiverTransport::Http, &request, peer)),
    };
    let outcome = match outcome {
        Ok(o) => o,
        Err(reason) => {
            debug!(peer = ?peer, reason = %reason, "otlp http request undecodable");
            refused(RefusalReason::BadRequest);
            return bad_request(reason, encoding);
        }
    };
    drop(raw);
    match outcome {
        IngestOutcome::Accepted { partial } => success(partial, encoding),
        IngestOutcome::Busy { reason } => busy(edge, reason, encoding),
    }
}

/// 503 with `Retry-After` and a `RetryInfo` detail: OTLP clients retry it.
fn busy(edge: &Edge, reason: &str, encoding: Encoding) -> Response {
    let mut r = refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        RpcCode::Unavailable,
        &format!("{reason}, retry later"),
        Detail::RetryAfter(edge.retry_after),
        encoding,
    );
    let secs = edge.retry_after.as_secs() + u64::from(edge.retry_after.subsec_nanos() > 0);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// 200 with an `ExportLogsServiceResponse`; `partial_success` unset on full success.
fn success(partial: Option<ExportLogsPartialSuccess>, encoding: Encoding) -> Response {
    let mut r = Response::new(Body::from(success_body(partial, encoding)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, encoding.content_type());
    r
}

fn success_body(partial: Option<ExportLogsPartialSuccess>, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceResponse {
            partial_success: partial,
        }
        .encode_to_vec(),
        // Written by hand: OTLP/JSON wants int64 as a string and no `null` for an unset field.
        Encoding::Json => match partial {
            None => b"{}".to_vec(),
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }
            })
            .to_string()
            .into_bytes(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn content_type_parameters_and_case_are_ignored() {
        let cases = [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("Application/JSON; charset=utf-8", Some(Encoding::Json)),
            (" application/json ", Some(Encoding::Json)),
            ("text/plain", None),
            ("application/protobuf", None),
        ];
        for (ct, want) in cases {
            assert_eq!(
                Encoding::of(&headers(&[("content-type", ct)])),
                want,
                "{ct}"
            );
        }
        assert_eq!(Encoding::of(&HeaderMap::new()), None);
    }

    #[test]
    fn content_encoding_accepts_gzip_and_identity_only() {
        assert_eq!(gzipped(&HeaderMap::new()), Ok(false));
        assert_eq!(gzipped(&headers(&[("content-encoding", "GZIP")])), Ok(true));
        assert_eq!(
            gzipped(&headers(&[("content-encoding", "identity")])),
            Ok(false)
        );
        assert_eq!(
            gzipped(&headers(&[("content-encoding", "zstd")])),
            Err("zstd".into())
        );
    }

    #[test]
    fn expect_continue_is_recognised_in_any_case() {
        assert!(expects_continue(&headers(&[("expect", "100-Continue")])));
        assert!(!expects_continue(&headers(&[("expect", "something")])));
        assert!(!expects_continue(&HeaderMap::new()));
    }

    #[test]
    fn json_success_bodies_follow_otlp_json() {
        assert_eq!(success_body(None, Encoding::Json), b"{}");
        assert!(success_body(None, Encoding::Protobuf).is_empty());
        let partial = ExportLogsPartialSuccess {
            rejected_log_records: 2,
            error_message: "voip.cdr lacks \"voip.call.id\"".into(),
        };
        let v: serde_json::Value =
            serde_json::from_slice(&success_body(Some(partial.clone()), Encoding::Json)).unwrap();
        assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "2");
        assert_eq!(
            v["partialSuccess"]["errorMessage"],
            "voip.cdr lacks \"voip.call.id\""
        );
        let back = ExportLogsServiceResponse::decode(
            &success_body(Some(partial.clone()), Encoding::Protobuf)[..],
        )
        .unwrap();
        assert_eq!(back.partial_success, Some(partial));
    }
}

//! An in-process OTLP backend for end-to-end tests: a gRPC server (opentelemetry-proto's
//! `MetricsService` + `LogsService` stubs, gzip accepted) or an HTTP server (`POST /v1/metrics`,
//! `POST /v1/logs`, protobuf or JSON, gzip accepted), optionally over TLS, on 127.0.0.1:0. It stores
//! every request and answers success, and offers lookups that read like assertions:
//!
//! ```ignore
//! let (sink, _addr) = OtlpSink::start().await;            // gRPC; start_http() for OTLP/HTTP
//! // … point callpulse's exporter at sink.endpoint() …
//! sink.wait_for_metric("voip.calls", secs(5)).await;
//! assert_eq!(sink.sum("voip.calls", &[("voip.call.disposition", "answered")]), Some(3.0));
//! let h = sink.histogram("sip.probe.rtt", &[]).unwrap();   // count, sum, bounds, bucket_counts
//! let alert = sink.wait_for_log("voip.alert", secs(5)).await;
//! ```
//!
//! Lookups take the **latest** matching data point (the most recent request that has one), so
//! they read cumulative values naturally; [`OtlpSink::points`] gives every point in arrival order
//! for delta temporality.
//!
//! [`OtlpSink::set_refusing`] turns it into a backend in an outage: every export is answered with
//! gRPC `UNAVAILABLE` / HTTP 503 and nothing is stored, until it is switched back.

// Shared by every module's end-to-end tests; not every helper is used by each.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric, number_data_point};
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Status};

/// Which wire the sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

/// A PEM certificate and key for a TLS sink (see [`tls_identity`]).
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    /// Certificate (self-signed: also the CA to trust).
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
}

/// A self-signed certificate for `127.0.0.1` and `localhost`; write `cert_pem` to a file and
/// use it as the client's CA file.
pub fn tls_identity() -> TlsIdentity {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("self-signed certificate");
    TlsIdentity {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
    }
}

/// One stored request of either signal, with the headers (gRPC metadata) it came with.
#[derive(Debug, Clone)]
pub struct Received<T> {
    /// The decoded request.
    pub request: T,
    /// Request headers (gRPC: metadata), e.g. to check an API key arrived.
    pub headers: HeaderMap,
}

#[derive(Default)]
struct Store {
    metrics: Mutex<Vec<Received<ExportMetricsServiceRequest>>>,
    logs: Mutex<Vec<Received<ExportLogsServiceRequest>>>,
    notify: Notify,
    /// While set, every export is refused and nothing stored (a backend outage).
    refusing: std::sync::atomic::AtomicBool,
    /// Exports refused so far.
    refused: std::sync::atomic::AtomicU64,
}

impl Store {
    /// True (and counted) when the request must be refused.
    fn refuse(&self) -> bool {
        let refusing = self.refusing.load(std::sync::atomic::Ordering::SeqCst);
        if refusing {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        refusing
    }

    fn push_metrics(&self, request: ExportMetricsServiceRequest, headers: HeaderMap) {
        self.metrics
            .lock()
            .unwrap()
            .push(Received { request, headers });
        self.notify.notify_waiters();
    }

    fn push_logs(&self, request: ExportLogsServiceRequest, headers: HeaderMap) {
        self.logs
            .lock()
            .unwrap()
            .push(Received { request, headers });
        self.notify.notify_waiters();
    }
}

/// A flattened data point: what a test wants to assert on.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Metric name.
    pub name: String,
    /// Metric unit.
    pub unit: String,
    /// Attributes, values rendered as strings (ints and doubles via `to_string`).
    pub attrs: BTreeMap<String, String>,
    /// Start of the aggregation interval (ns since epoch).
    pub start_time_unix_nano: u64,
    /// End of the interval (ns since epoch).
    pub time_unix_nano: u64,
    /// The value.
    pub value: PointValue,
}

/// The value of a data point.
#[derive(Debug, Clone, PartialEq)]
pub enum PointValue {
    /// A sum (counter); `delta` when its temporality is DELTA.
    Sum {
        /// Value (ints widened).
        value: f64,
        /// Monotonic flag.
        monotonic: bool,
        /// Delta temporality.
        delta: bool,
    },
    /// A gauge value.
    Gauge(f64),
    /// An explicit-bucket histogram.
    Histogram(HistogramValue),
}

/// An explicit-bucket histogram point.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramValue {
    /// Number of values recorded.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// Bucket upper bounds.
    pub bounds: Vec<f64>,
    /// Counts per bucket (`bounds.len() + 1`).
    pub bucket_counts: Vec<u64>,
    /// Delta temporality.
    pub delta: bool,
}

impl Point {
    /// Whether every `(key, value)` in `subset` is among this point's attributes.
    pub fn has(&self, subset: &[(&str, &str)]) -> bool {
        subset
            .iter()
            .all(|(k, v)| self.attrs.get(*k).is_some_and(|a| a == v))
    }
}

/// Renders an OTLP attribute value as a string (what assertions compare).
pub fn any_value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs_map(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value_string(kv.value.as_ref())))
        .collect()
}

const DELTA: i32 = 1; // AggregationTemporality::Delta

fn flatten(m: &Metric) -> Vec<Point> {
    let point = |attrs: &[KeyValue], start, time, value| Point {
        name: m.name.clone(),
        unit: m.unit.clone(),
        attrs: attrs_map(attrs),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value,
    };
    let number = |v: &Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsDouble(d)) => *d,
        Some(number_data_point::Value::AsInt(i)) => *i as f64,
        None => f64::NAN,
    };
    match &m.data {
        Some(metric::Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| {
                point(
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    PointValue::Sum {
                        value: number(&p.value),
                        monotonic: s.is_monotonic,
                        delta: s.aggregation_temporality == DELTA,
                    },
                )
            })
            .collect(),
        Some(metric::Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| {
                point(
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    PointValue::Gauge(number(&p.value)),
                )
            })
            .collect(),
        Some(metric::Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                point(
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    PointValue::Histogram(HistogramValue {
                        count: p.count,
                        sum: p.sum.unwrap_or(f64::NAN),
                        bounds: p.explicit_bounds.clone(),
                        bucket_counts: p.bucket_counts.clone(),
                        delta: h.aggregation_temporality == DELTA,
                    }),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The running sink. Dropping it stops the server.
pub struct OtlpSink {
    store: Arc<Store>,
    addr: SocketAddr,
    protocol: SinkProtocol,
    tls: bool,
    stop: CancellationToken,
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl OtlpSink {
    /// A gRPC sink on 127.0.0.1:0.
    pub async fn start() -> (OtlpSink, SocketAddr) {
        Self::start_grpc(None).await
    }

    /// A gRPC sink over TLS with `identity`.
    pub async fn start_tls(identity: &TlsIdentity) -> (OtlpSink, SocketAddr) {
        Self::start_grpc(Some(identity)).await
    }

    /// An OTLP/HTTP sink on 127.0.0.1:0.
    pub async fn start_http() -> (OtlpSink, SocketAddr) {
        Self::start_http_inner(None).await
    }

    /// An OTLP/HTTP sink over TLS (https) with `identity`.
    pub async fn start_http_tls(identity: &TlsIdentity) -> (OtlpSink, SocketAddr) {
        Self::start_http_inner(Some(identity)).await
    }

    async fn start_grpc(tls: Option<&TlsIdentity>) -> (OtlpSink, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::new(Store::default());
        let stop = CancellationToken::new();
        let handler = GrpcHandler(store.clone());
        let mut builder = Server::builder();
        if let Some(id) = tls {
            builder = builder
                .tls_config(
                    ServerTlsConfig::new().identity(Identity::from_pem(&id.cert_pem, &id.key_pem)),
                )
                .unwrap();
        }
        let router = builder
            .add_service(
                MetricsServiceServer::new(handler.clone())
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(64 << 20),
            )
            .add_service(
                LogsServiceServer::new(handler)
                    .accept_compressed(CompressionEncoding::Gzip)
                    .max_decoding_message_size(64 << 20),
            );
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let _ = router
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await;
        });
        let sink = OtlpSink {
            store,
            addr,
            protocol: SinkProtocol::Grpc,
            tls: tls.is_some(),
            stop,
        };
        (sink, addr)
    }

    async fn start_http_inner(tls: Option<&TlsIdentity>) -> (OtlpSink, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::new(Store::default());
        let stop = CancellationToken::new();
        let app = Router::new()
            .route("/v1/metrics", post(http_metrics))
            .route("/v1/logs", post(http_logs))
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(store.clone());
        match tls {
            None => {
                let shutdown = stop.clone().cancelled_owned();
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown)
                        .await;
                });
            }
            Some(id) => spawn_https(listener, app, id, stop.clone()),
        }
        let sink = OtlpSink {
            store,
            addr,
            protocol: SinkProtocol::Http,
            tls: tls.is_some(),
            stop,
        };
        (sink, addr)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// gRPC or HTTP.
    pub fn protocol(&self) -> SinkProtocol {
        self.protocol
    }

    /// The base URL to configure an exporter with (`http://127.0.0.1:port`, `https://` for TLS);
    /// for HTTP, the exporter appends `/v1/metrics` and `/v1/logs`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Every metrics request received so far.
    pub fn metric_requests(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        self.store.metrics.lock().unwrap().clone()
    }

    /// Every logs request received so far.
    pub fn log_requests(&self) -> Vec<Received<ExportLogsServiceRequest>> {
        self.store.logs.lock().unwrap().clone()
    }

    /// Starts (true) or ends (false) an outage: while refusing, exports get gRPC `UNAVAILABLE` or
    /// HTTP 503 and nothing is stored.
    pub fn set_refusing(&self, refusing: bool) {
        self.store
            .refusing
            .store(refusing, std::sync::atomic::Ordering::SeqCst);
    }

    /// Exports refused so far (both signals).
    pub fn refused(&self) -> u64 {
        self.store.refused.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        self.store.metrics.lock().unwrap().clear();
        self.store.logs.lock().unwrap().clear();
    }

    /// Names of every metric received, sorted and deduplicated (for failure messages).
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .store
            .metrics
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.request.resource_metrics.iter())
            .flat_map(|rm| rm.scope_metrics.iter())
            .flat_map(|sm| sm.metrics.iter())
            .map(|m| m.name.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The latest metric named `name` (unit, description and data as sent).
    pub fn metric(&self, name: &str) -> Option<Metric> {
        let store = self.store.metrics.lock().unwrap();
        store
            .iter()
            .rev()
            .flat_map(|r| r.request.resource_metrics.iter())
            .flat_map(|rm| rm.scope_metrics.iter())
            .flat_map(|sm| sm.metrics.iter())
            .find(|m| m.name == name)
            .cloned()
    }

    /// Every data point of `name` whose attributes include `subset`, in arrival order.
    pub fn points(&self, name: &str, subset: &[(&str, &str)]) -> Vec<Point> {
        let store = self.store.metrics.lock().unwrap();
        store
            .iter()
            .flat_map(|r| r.request.resource_metrics.iter())
            .flat_map(|rm| rm.scope_metrics.iter())
            .flat_map(|sm| sm.metrics.iter())
            .filter(|m| m.name == name)
            .flat_map(flatten)
            .filter(|p| p.has(subset))
            .collect()
    }

    /// The latest data point of `name` whose attributes include `subset`.
    pub fn point(&self, name: &str, subset: &[(&str, &str)]) -> Option<Point> {
        self.points(name, subset).pop()
    }

    /// The latest value of a sum (counter) point.
    pub fn sum(&self, name: &str, subset: &[(&str, &str)]) -> Option<f64> {
        match self.point(name, subset)?.value {
            PointValue::Sum { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The latest value of a gauge point.
    pub fn gauge(&self, name: &str, subset: &[(&str, &str)]) -> Option<f64> {
        match self.point(name, subset)?.value {
            PointValue::Gauge(v) => Some(v),
            _ => None,
        }
    }

    /// The latest histogram point.
    pub fn histogram(&self, name: &str, subset: &[(&str, &str)]) -> Option<HistogramValue> {
        match self.point(name, subset)?.value {
            PointValue::Histogram(h) => Some(h),
            _ => None,
        }
    }

    /// The resource attributes of the latest metrics request.
    pub fn metrics_resource(&self) -> BTreeMap<String, String> {
        let store = self.store.metrics.lock().unwrap();
        store
            .last()
            .and_then(|r| r.request.resource_metrics.first())
            .and_then(|rm| rm.resource.as_ref())
            .map(|r| attrs_map(&r.attributes))
            .unwrap_or_default()
    }

    /// The resource attributes of the latest logs request.
    pub fn logs_resource(&self) -> BTreeMap<String, String> {
        let store = self.store.logs.lock().unwrap();
        store
            .last()
            .and_then(|r| r.request.resource_logs.first())
            .and_then(|rl| rl.resource.as_ref())
            .map(|r| attrs_map(&r.attributes))
            .unwrap_or_default()
    }

    /// Every log record received, in arrival order.
    pub fn logs(&self) -> Vec<LogRecord> {
        let store = self.store.logs.lock().unwrap();
        store
            .iter()
            .flat_map(|r| r.request.resource_logs.iter())
            .flat_map(|rl| rl.scope_logs.iter())
            .flat_map(|sl| sl.log_records.iter())
            .cloned()
            .collect()
    }

    /// Log records with this `event_name`, in arrival order.
    pub fn log_records(&self, event_name: &str) -> Vec<LogRecord> {
        self.logs()
            .into_iter()
            .filter(|r| r.event_name == event_name)
            .collect()
    }

    /// Waits until `cond` holds, re-checking whenever a request arrives. Panics after `timeout`
    /// with the metric names seen, so a failing test says what did arrive.
    pub async fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&OtlpSink) -> bool) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register before checking, so a request landing in between still wakes us.
            let notified = self.store.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                assert!(
                    cond(self),
                    "condition not met within {timeout:?}; metrics seen: {:?}; log records: {}",
                    self.metric_names(),
                    self.logs().len()
                );
                return;
            }
        }
    }

    /// Waits for a metric named `name` and returns its latest version.
    pub async fn wait_for_metric(&self, name: &str, timeout: Duration) -> Metric {
        self.wait_until(timeout, |s| s.metric(name).is_some()).await;
        self.metric(name).expect("metric present after wait")
    }

    /// Waits for a log record with `event_name` and returns the first one.
    pub async fn wait_for_log(&self, event_name: &str, timeout: Duration) -> LogRecord {
        self.wait_until(timeout, |s| !s.log_records(event_name).is_empty())
            .await;
        self.log_records(event_name).remove(0)
    }
}

/// The value of a log record's attribute, as a string.
pub fn log_attr(record: &LogRecord, key: &str) -> Option<String> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| any_value_string(kv.value.as_ref()))
}

/// The raw OTLP value of a log record's attribute (to check its type).
pub fn log_attr_value(record: &LogRecord, key: &str) -> Option<any_value::Value> {
    record
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone())
}

#[derive(Clone)]
struct GrpcHandler(Arc<Store>);

#[tonic::async_trait]
impl MetricsService for GrpcHandler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        if self.0.refuse() {
            return Err(Status::unavailable("sink refusing (test outage)"));
        }
        let headers = request.metadata().clone().into_headers();
        self.0.push_metrics(request.into_inner(), headers);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for GrpcHandler {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        if self.0.refuse() {
            return Err(Status::unavailable("sink refusing (test outage)"));
        }
        let headers = request.metadata().clone().into_headers();
        self.0.push_logs(request.into_inner(), headers);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// Decompresses (gzip) and decodes (protobuf or JSON) an OTLP/HTTP body.
fn decode_http<T>(headers: &HeaderMap, body: &[u8]) -> Result<T, (StatusCode, String)>
where
    T: prost::Message + Default + serde::de::DeserializeOwned,
{
    let bad = |msg: String| (StatusCode::BAD_REQUEST, msg);
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let mut plain = Vec::new();
    let body: &[u8] = if gzip {
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .map_err(|e| bad(format!("gzip: {e}")))?;
        &plain
    } else {
        body
    };
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/json") {
        serde_json::from_slice(body).map_err(|e| bad(format!("json: {e}")))
    } else if ctype.starts_with("application/x-protobuf") {
        T::decode(body).map_err(|e| bad(format!("protobuf: {e}")))
    } else {
        Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, ctype.to_string()))
    }
}

fn http_ok(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-protobuf")], body).into_response()
}

async fn http_metrics(
    State(store): State<Arc<Store>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if store.refuse() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match decode_http::<ExportMetricsServiceRequest>(&headers, &body) {
        Ok(req) => {
            store.push_metrics(req, headers);
            http_ok(ExportMetricsServiceResponse::default().encode_to_vec())
        }
        Err(resp) => resp.into_response(),
    }
}

async fn http_logs(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    if store.refuse() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match decode_http::<ExportLogsServiceRequest>(&headers, &body) {
        Ok(req) => {
            store.push_logs(req, headers);
            http_ok(ExportLogsServiceResponse::default().encode_to_vec())
        }
        Err(resp) => resp.into_response(),
    }
}

/// Serves `app` over TLS (HTTP/1.1) until `stop`.
fn spawn_https(listener: TcpListener, app: Router, id: &TlsIdentity, stop: CancellationToken) {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(id.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop.cancelled() => return,
                r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

/// Polls `f` until it returns `Some`, for conditions that no request signals (e.g. counters).
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path` over plain HTTP/1.1 on 127.0.0.1; returns the status and body (e.g. a scrape).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Scrapes `/metrics` at `addr` and returns the text (panics unless 200).
pub async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "scrape of {addr} failed: {body}");
    body
}

/// One sample of a Prometheus text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Series name (with `_bucket`/`_sum`/`_count`/`_total` as rendered).
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the samples of a Prometheus text exposition (comments skipped).
pub fn parse_prometheus(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(p) => p,
            None => continue,
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or(f64::NAN),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
            None => (series, BTreeMap::new()),
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    out
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim().trim_start_matches(',').trim().to_string();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => {}
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
    }
    out
}

/// The value of the first sample named `name` whose labels include `subset`.
pub fn prom_value(text: &str, name: &str, subset: &[(&str, &str)]) -> Option<f64> {
    parse_prometheus(text)
        .into_iter()
        .find(|s| {
            s.name == name
                && subset
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|l| l == v))
        })
        .map(|s| s.value)
}

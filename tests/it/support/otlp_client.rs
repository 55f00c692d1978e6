//! OTLP client helpers for tests and the ingest bench: build `ExportLogsServiceRequest`s shaped
//! like the input contract, and send them over gRPC (typed, raw bytes, or a hand-driven HTTP/2
//! stream) and HTTP (plain or TLS). Everything talks to 127.0.0.1 only.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use tokio::sync::mpsc;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, metadata::MetadataValue};

/// The gRPC method path of OTLP logs.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

// ---------------------------------------------------------------- request builders

/// A string attribute.
pub fn attr_str(key: &str, value: &str) -> KeyValue {
    attr(key, any_value::Value::StringValue(value.into()))
}

/// An integer attribute.
pub fn attr_int(key: &str, value: i64) -> KeyValue {
    attr(key, any_value::Value::IntValue(value))
}

/// A double attribute.
pub fn attr_f64(key: &str, value: f64) -> KeyValue {
    attr(key, any_value::Value::DoubleValue(value))
}

/// An attribute of any value.
pub fn attr(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A log record carrying `event_name` and attributes.
pub fn event(event_name: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        observed_time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: 9,
        event_name: event_name.into(),
        attributes,
        ..Default::default()
    }
}

/// A `voip.cdr` record with the input contract's attributes (answered, 63.5 s, trunk `carrier-a`).
pub fn cdr(call_id: &str) -> LogRecord {
    event(
        "voip.cdr",
        vec![
            attr_str("voip.call.id", call_id),
            attr_str("voip.call.disposition", "answered"),
            attr_f64("voip.call.duration", 63.5),
            attr_f64("voip.call.billable_duration", 58.0),
            attr_f64("voip.call.post_dial_delay", 1.2),
            attr_str("voip.trunk", "carrier-a"),
            attr_str("voip.call.direction", "outbound"),
            attr_int("sip.response.status_code", 200),
            attr_str("voip.codec", "PCMA"),
        ],
    )
}

/// A plain application log line: no VoIP event.
pub fn plain_log(text: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: 9,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(text.into())),
        }),
        ..Default::default()
    }
}

/// One request from PBX `pbx` holding `records`.
pub fn request(pbx: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    attr_str("service.name", "asterisk"),
                    attr_str("service.instance.id", pbx),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A request of `n` `voip.cdr` records with distinct call ids.
pub fn cdr_request(pbx: &str, n: usize) -> ExportLogsServiceRequest {
    request(pbx, (0..n).map(|i| cdr(&format!("call-{i}"))).collect())
}

/// The protobuf encoding.
pub fn to_protobuf(req: &ExportLogsServiceRequest) -> Vec<u8> {
    req.encode_to_vec()
}

/// The OTLP/JSON encoding (opentelemetry-proto's serde: camelCase, int64 as strings, hex ids).
pub fn to_json(req: &ExportLogsServiceRequest) -> Vec<u8> {
    serde_json::to_vec(req).expect("request serialises")
}

/// gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip in memory");
    e.finish().expect("gzip in memory")
}

/// One gzip member that inflates to `mib` MiB of zeros, built without ever holding them
/// (100 MiB gives about 470 KiB).
pub fn gzip_bomb(mib: usize) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        e.write_all(&zeros).expect("gzip in memory");
    }
    e.finish().expect("gzip in memory")
}

// ---------------------------------------------------------------- gRPC

/// A typed OTLP logs client on a fresh connection, gzip both ways when asked.
pub async fn grpc_client(addr: SocketAddr, gzip: bool) -> LogsServiceClient<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    let client = LogsServiceClient::new(channel).max_encoding_message_size(usize::MAX);
    if gzip {
        client
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip)
    } else {
        client
    }
}

/// A request with `Authorization: Bearer <token>` when a token is given.
pub fn with_token<T>(msg: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            MetadataValue::try_from(format!("Bearer {t}")).expect("ascii token"),
        );
    }
    r
}

/// Sends already-encoded protobuf bytes as the `Export` message (one gRPC frame, uncompressed):
/// for garbage and truncated payloads, and for benchmarks that must not pay for encoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

/// Encoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RawEncoder;

/// Decoder half of [`RawCodec`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportLogsServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportLogsServiceResponse;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportLogsServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// A raw-bytes gRPC client (see [`RawCodec`]) on a fresh connection.
pub async fn grpc_raw_client(addr: SocketAddr) -> tonic::client::Grpc<Channel> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("grpc connect");
    tonic::client::Grpc::new(channel)
}

/// One `Export` call with raw protobuf bytes.
pub async fn grpc_raw_export(
    client: &mut tonic::client::Grpc<Channel>,
    body: Bytes,
) -> Result<ExportLogsServiceResponse, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unknown(e.to_string()))?;
    client
        .unary(
            tonic::Request::new(body),
            http::uri::PathAndQuery::from_static(EXPORT_PATH),
            RawCodec,
        )
        .await
        .map(tonic::Response::into_inner)
}

/// One gRPC frame: compressed flag, big-endian length, payload.
pub fn grpc_frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 5);
    f.push(u8::from(compressed));
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// A gRPC call driven by hand over HTTP/2: the test feeds the request body piece by piece
/// through `body`, then reads the final `grpc-status` from [`H2Call::finish`].
pub struct H2Call {
    /// Send body pieces here; drop it to end the request.
    pub body: mpsc::Sender<Bytes>,
    response: tokio::task::JoinHandle<Result<(http::StatusCode, Option<String>), String>>,
}

impl H2Call {
    /// Opens a connection and starts an `Export` call with extra `headers`.
    pub async fn start(addr: SocketAddr, headers: &[(&str, &str)]) -> H2Call {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .expect("h2 handshake");
        tokio::spawn(conn);
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let stream =
            tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |b| {
                Ok::<_, Infallible>(Frame::data(b))
            });
        let mut builder = http::Request::post(format!("http://{addr}{EXPORT_PATH}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let req = builder.body(StreamBody::new(stream)).expect("h2 request");
        let response = tokio::spawn(async move {
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let in_headers = resp
                .headers()
                .get("grpc-status")
                .map(|v| v.to_str().unwrap_or("?").to_string());
            let collected = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            let in_trailers = collected
                .trailers()
                .and_then(|t| t.get("grpc-status"))
                .map(|v| v.to_str().unwrap_or("?").to_string());
            Ok((status, in_headers.or(in_trailers)))
        });
        H2Call { body: tx, response }
    }

    /// Waits for the response: HTTP status and `grpc-status`.
    pub async fn finish(self) -> Result<(http::StatusCode, Option<String>), String> {
        drop(self.body);
        self.response.await.map_err(|e| e.to_string())?
    }
}

// ---------------------------------------------------------------- HTTP

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// How the body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// With `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`, no length.
    Chunked,
}

/// `method` `http://addr{path}` with headers and body, through reqwest's blocking client on a
/// blocking thread.
pub async fn http_send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    framing: Framing,
) -> HttpReply {
    // reqwest is built with `rustls-no-provider` (for the OTLP/HTTP exporter's ring TLS): a client
    // needs a process-wide provider, as `main` installs one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("http://{addr}{path}");
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client");
        let mut rb = client.request(method, url);
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb = match framing {
            Framing::Length => rb.body(body),
            Framing::Chunked => rb.body(reqwest::blocking::Body::new(std::io::Cursor::new(body))),
        };
        let resp = rb.send().expect("http request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().expect("http body").to_vec();
        HttpReply {
            status,
            headers,
            body,
        }
    })
    .await
    .expect("http thread")
}

/// `POST /v1/logs` with a content type, optional extra headers, and a length-framed body.
pub async fn http_post(
    addr: SocketAddr,
    content_type: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> HttpReply {
    let mut all = vec![("content-type", content_type)];
    all.extend_from_slice(headers);
    http_send(addr, "POST", "/v1/logs", &all, body, Framing::Length).await
}

/// `POST https://addr/v1/logs` trusting `ca_pem` for `server_name`, over HTTP/1.1.
pub async fn https_post(
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<HttpReply, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| e.to_string())?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::post("/v1/logs")
        .header("host", server_name)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

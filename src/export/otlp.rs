//! The OTLP exporters (metrics and logs, gRPC via tonic or HTTP/protobuf via blocking reqwest)
//! built from `exporters.otlp`, and the wrapper that counts and logs every failed export. Owns the
//! endpoint, header and TLS translation; must not decide what is exported.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, RetryPolicy, WithExportConfig,
    WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::LogBatch;
use opentelemetry_sdk::metrics::Temporality as SdkTemporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tonic::metadata::MetadataMap;
use tonic::transport::{Certificate, ClientTlsConfig};
use tracing::warn;

use super::ExportError;
use crate::config::{OtlpExporterConfig, OtlpProtocol, Temporality};
use crate::stats::{ExporterKind, SelfStats};

/// Path the OTLP/HTTP metrics endpoint lives under, appended to the configured base URL.
pub const HTTP_METRICS_PATH: &str = "/v1/metrics";
/// Path of the OTLP/HTTP logs endpoint.
pub const HTTP_LOGS_PATH: &str = "/v1/logs";

/// The full URL of one OTLP/HTTP signal: the configured base with `path` appended (as the
/// Collector's `otlphttp` exporter does). The SDK uses a programmatic endpoint verbatim.
pub fn http_signal_url(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

fn is_https(endpoint: &str) -> bool {
    endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// Builds the metrics exporter for `cfg`.
pub fn metric_exporter(cfg: &OtlpExporterConfig) -> Result<MetricExporter, ExportError> {
    let temporality = match cfg.temporality {
        Temporality::Cumulative => SdkTemporality::Cumulative,
        Temporality::Delta => SdkTemporality::Delta,
    };
    let built = match cfg.protocol {
        OtlpProtocol::Grpc => {
            let mut b = MetricExporter::builder()
                .with_temporality(temporality)
                .with_tonic()
                .with_endpoint(cfg.endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_metadata(grpc_metadata(cfg)?);
            if cfg.gzip {
                b = b.with_compression(Compression::Gzip);
            }
            if let Some(tls) = grpc_tls(cfg)? {
                b = b.with_tls_config(tls);
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = MetricExporter::builder()
                .with_temporality(temporality)
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(http_signal_url(&cfg.endpoint, HTTP_METRICS_PATH))
                .with_timeout(cfg.timeout)
                .with_headers(http_headers(cfg)?);
            if cfg.gzip {
                b = b.with_compression(Compression::Gzip);
            }
            b.with_http_client(http_client(cfg)?).build()
        }
    };
    built.map_err(|e| ExportError::Build {
        signal: "metrics",
        endpoint: cfg.endpoint.clone(),
        reason: e.to_string(),
    })
}

/// Builds the logs exporter for `cfg` (same endpoint, protocol, headers, TLS and timeout). It
/// makes one attempt per export: the alert outbox (`delivery.rs`) retries with its own backoff
/// and keeps what failed, so retries inside the exporter would only stretch each attempt.
pub fn log_exporter(cfg: &OtlpExporterConfig) -> Result<LogExporter, ExportError> {
    let built = match cfg.protocol {
        OtlpProtocol::Grpc => {
            let mut b = LogExporter::builder()
                .with_tonic()
                .with_endpoint(cfg.endpoint.clone())
                .with_timeout(cfg.timeout)
                .with_retry_policy(RetryPolicy::disabled())
                .with_metadata(grpc_metadata(cfg)?);
            if cfg.gzip {
                b = b.with_compression(Compression::Gzip);
            }
            if let Some(tls) = grpc_tls(cfg)? {
                b = b.with_tls_config(tls);
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(http_signal_url(&cfg.endpoint, HTTP_LOGS_PATH))
                .with_timeout(cfg.timeout)
                .with_retry_policy(RetryPolicy::disabled())
                .with_headers(http_headers(cfg)?);
            if cfg.gzip {
                b = b.with_compression(Compression::Gzip);
            }
            b.with_http_client(http_client(cfg)?).build()
        }
    };
    built.map_err(|e| ExportError::Build {
        signal: "logs",
        endpoint: cfg.endpoint.clone(),
        reason: e.to_string(),
    })
}

/// Validates every header (the SDK would silently drop a bad one) into a header map.
fn header_map(cfg: &OtlpExporterConfig) -> Result<HeaderMap, ExportError> {
    let mut map = HeaderMap::with_capacity(cfg.headers.len());
    for (name, value) in &cfg.headers {
        let n =
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| ExportError::InvalidHeader {
                name: name.clone(),
                what: "name",
            })?;
        let v = HeaderValue::from_str(value).map_err(|_| ExportError::InvalidHeader {
            name: name.clone(),
            what: "value",
        })?;
        map.append(n, v);
    }
    Ok(map)
}

fn grpc_metadata(cfg: &OtlpExporterConfig) -> Result<MetadataMap, ExportError> {
    Ok(MetadataMap::from_headers(header_map(cfg)?))
}

fn http_headers(cfg: &OtlpExporterConfig) -> Result<HashMap<String, String>, ExportError> {
    header_map(cfg)?;
    Ok(cfg
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect())
}

/// The configured CA file: its PEM bytes and the certificates in it (at least one).
struct CaFile {
    pem: Vec<u8>,
    certs: Vec<CertificateDer<'static>>,
}

/// Reads the configured CA file, if any.
fn read_ca(cfg: &OtlpExporterConfig) -> Result<Option<CaFile>, ExportError> {
    let Some(path) = &cfg.ca_file else {
        return Ok(None);
    };
    let err = |reason: String| ExportError::CaFile {
        path: path.clone(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in the file".into()));
    }
    Ok(Some(CaFile { pem, certs }))
}

/// TLS for an `https://` gRPC endpoint: the system roots plus the configured CA.
fn grpc_tls(cfg: &OtlpExporterConfig) -> Result<Option<ClientTlsConfig>, ExportError> {
    if !is_https(&cfg.endpoint) {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new().with_enabled_roots();
    if let Some(ca) = read_ca(cfg)? {
        tls = tls.ca_certificate(Certificate::from_pem(ca.pem));
    }
    Ok(Some(tls))
}

/// The blocking reqwest client of the OTLP/HTTP exporter, on rustls with the ring provider,
/// trusting the webpki roots plus the configured CA. Always ours, even for plain `http://`:
/// reqwest's own default would need a process-wide rustls provider and panic without one.
/// Built on a plain thread: the blocking client owns a runtime, which must not be created or
/// dropped on a tokio worker.
fn http_client(cfg: &OtlpExporterConfig) -> Result<reqwest::blocking::Client, ExportError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = read_ca(cfg)? {
        for cert in ca.certs {
            roots.add(cert).map_err(|e| ExportError::CaFile {
                path: cfg.ca_file.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?;
        }
    }
    let err = |reason: String| ExportError::HttpClient {
        endpoint: cfg.endpoint.clone(),
        reason,
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let timeout = cfg.timeout;
    std::thread::Builder::new()
        .name("callpulse-otlp-http-client".into())
        .spawn(move || {
            reqwest::blocking::Client::builder()
                .tls_backend_preconfigured(tls)
                .timeout(timeout)
                .build()
        })
        .map_err(|e| err(e.to_string()))?
        .join()
        .map_err(|_| err("client builder thread panicked".into()))?
        .map_err(|e| err(e.to_string()))
}

/// How often a failing exporter may log: an outage fails an export every few seconds per
/// exporter, and one line a minute (with the count of the ones held back) says as much.
pub const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// Lets one failure line through per period and counts the ones held back. Takes `now`, so it is
/// tested without a clock.
#[derive(Debug, Default)]
pub struct LogLimiter {
    last: Option<tokio::time::Instant>,
    suppressed: u64,
}

impl LogLimiter {
    /// `Some(n)` when a line may be written now, `n` being the lines held back since the last;
    /// `None` when this one is held back (and counted).
    pub fn admit(&mut self, now: tokio::time::Instant, every: Duration) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Wraps an exporter to count every failed export in [`SelfStats`] (`callpulse.export.failures`)
/// and log it at warn, at most once per [`FAILURE_LOG_EVERY`] per exporter with the number of
/// failures not logged since: the SDK alone reports failures only through its internal logs, and
/// `shutdown` can return `Ok` anyway.
#[derive(Debug)]
pub struct Counted<E> {
    inner: E,
    kind: ExporterKind,
    stats: Arc<SelfStats>,
    limiter: std::sync::Mutex<LogLimiter>,
}

impl<E> Counted<E> {
    /// Wraps `inner`, counting its failures under `kind`.
    pub fn new(inner: E, kind: ExporterKind, stats: Arc<SelfStats>) -> Counted<E> {
        Counted {
            inner,
            kind,
            stats,
            limiter: std::sync::Mutex::default(),
        }
    }

    fn observe(&self, result: OTelSdkResult) -> OTelSdkResult {
        if let Err(e) = &result {
            self.stats.count_export_failure(self.kind);
            let admitted = self
                .limiter
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit(tokio::time::Instant::now(), FAILURE_LOG_EVERY);
            if let Some(suppressed) = admitted {
                warn!(
                    exporter = self.kind.as_str(),
                    failures = self.stats.export_failures(self.kind),
                    suppressed,
                    error = %e,
                    "otlp export failed"
                );
            }
        }
        result
    }
}

impl<E: PushMetricExporter> PushMetricExporter for Counted<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let r = self.inner.export(metrics).await;
        self.observe(r)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> SdkTemporality {
        self.inner.temporality()
    }
}

impl<E: opentelemetry_sdk::logs::LogExporter> opentelemetry_sdk::logs::LogExporter for Counted<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let r = self.inner.export(batch).await;
        self.observe(r)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn event_enabled(
        &self,
        level: opentelemetry::logs::Severity,
        target: &str,
        name: Option<&str>,
    ) -> bool {
        self.inner.event_enabled(level, target, name)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn http_paths_are_appended_to_the_base() {
        assert_eq!(
            http_signal_url("http://h:4318", HTTP_METRICS_PATH),
            "http://h:4318/v1/metrics"
        );
        assert_eq!(
            http_signal_url("https://h/otlp/", HTTP_LOGS_PATH),
            "https://h/otlp/v1/logs"
        );
    }

    #[test]
    fn bad_headers_are_errors_naming_the_header_not_the_value() {
        let mut cfg = OtlpExporterConfig {
            headers: BTreeMap::from([("dd api key".to_string(), "s3cret".to_string())]),
            ..OtlpExporterConfig::default()
        };
        let e = header_map(&cfg).unwrap_err().to_string();
        assert!(e.contains("dd api key") && !e.contains("s3cret"), "{e}");
        cfg.headers = BTreeMap::from([("x-key".to_string(), "bad\nvalue".to_string())]);
        let e = header_map(&cfg).unwrap_err().to_string();
        assert!(e.contains("x-key") && e.contains("value"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error() {
        let mut cfg = OtlpExporterConfig {
            endpoint: "https://collector:4317".into(),
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..OtlpExporterConfig::default()
        };
        assert!(matches!(grpc_tls(&cfg), Err(ExportError::CaFile { .. })));
        let dir = std::env::temp_dir().join(format!("callpulse-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        cfg.ca_file = Some(empty);
        let e = grpc_tls(&cfg).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A metrics exporter that always fails, as an unreachable backend does.
    struct Failing;
    impl PushMetricExporter for Failing {
        async fn export(&self, _: &ResourceMetrics) -> OTelSdkResult {
            Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "connection refused".into(),
            ))
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
        fn temporality(&self) -> SdkTemporality {
            SdkTemporality::Cumulative
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_export_is_counted_and_logged_at_warn() {
        let stats = Arc::new(SelfStats::default());
        let counted = Counted::new(Failing, ExporterKind::OtlpMetrics, stats.clone());
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = tracing::subscriber::with_default(subscriber, || {
            rt.block_on(counted.export(&ResourceMetrics::default()))
        });
        assert!(result.is_err(), "the SDK still sees the failure");
        assert_eq!(stats.export_failures(ExporterKind::OtlpMetrics), 1);
        assert_eq!(stats.export_failures(ExporterKind::OtlpLogs), 0);
        let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("otlp export failed"), "{log}");
        assert!(log.contains("exporter=\"otlp_metrics\""), "{log}");
        assert!(log.contains("connection refused"), "{log}");

        // A second failure within the minute is counted but not logged.
        let out2 = Captured::default();
        let writer = out2.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let result = tracing::subscriber::with_default(subscriber, || {
            rt.block_on(counted.export(&ResourceMetrics::default()))
        });
        assert!(result.is_err());
        assert_eq!(stats.export_failures(ExporterKind::OtlpMetrics), 2);
        let log = String::from_utf8(out2.0.lock().unwrap().clone()).unwrap();
        assert!(log.is_empty(), "{log}");
    }

    #[test]
    fn failure_lines_are_limited_to_one_per_period_with_a_count() {
        let mut l = LogLimiter::default();
        let t0 = tokio::time::Instant::now();
        let every = Duration::from_secs(60);
        assert_eq!(l.admit(t0, every), Some(0));
        for s in 1..=5 {
            assert_eq!(l.admit(t0 + Duration::from_secs(s * 10), every), None);
        }
        assert_eq!(l.admit(t0 + Duration::from_secs(60), every), Some(5));
        assert_eq!(l.admit(t0 + Duration::from_secs(61), every), None);
        assert_eq!(l.admit(t0 + Duration::from_secs(125), every), Some(1));
    }

    #[test]
    fn plain_http_needs_no_tls() {
        let cfg = OtlpExporterConfig::default();
        assert!(grpc_tls(&cfg).unwrap().is_none());
    }
}

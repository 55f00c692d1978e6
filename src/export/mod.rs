//! Export through the OpenTelemetry SDK: OTLP metrics and logs (gRPC or HTTP), the Prometheus
//! scrape endpoint and the console exporter, all fed by one set of instruments. SDK types stay here.
//!
//! One [`SdkMeterProvider`] carries every reader (OTLP periodic, Prometheus pull, console
//! periodic), so every output sees the same instruments and the same numbers. Alert transitions
//! are log records that wait in the alert outbox until the OTLP logs exporter delivered them (see
//! [`logs`] and [`delivery`]). Nothing here blocks the engine: recording is lock-free on the
//! caller's side, a transition is a short locked push, and exports run on their own threads.

mod console;
mod delivery;
mod instruments;
mod logs;
mod otlp;
mod prometheus;
mod resource;
mod sdk_log;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use tokio::sync::{oneshot, watch};
use tracing::{debug, warn};

use crate::alert::SharedOutbox;
use crate::alert::outbox::DEFAULT_CAPACITY as OUTBOX_CAPACITY;
use crate::config::ExportersConfig;
use crate::engine::{Recorder, SharedSnapshot};
use crate::stats::{ExporterKind, SelfStats};

pub use console::ConsoleOutput;
pub use delivery::{BACKOFF_MAX as ALERT_RETRY_MAX, BACKOFF_MIN as ALERT_RETRY_MIN};
pub use logs::{ALERT_EVENT_NAME, attr as alert_attr};
pub use prometheus::{METRICS_PATH, prometheus_name};
pub use sdk_log::SdkLogLimit;

/// Who this sidecar is, stamped on every exported metric and log record as the OTel resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// `service.instance.id`: unique per sidecar, so every series has one writer.
    pub instance_id: String,
    /// `service.version`: lets a backend tell releases apart after an upgrade.
    pub version: String,
}

/// Why the exporters could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The OTLP exporter rejected its configuration (endpoint, compression, TLS).
    #[error("exporters.otlp: cannot build the {signal} exporter for {endpoint}: {reason}")]
    Build {
        /// `metrics` or `logs`.
        signal: &'static str,
        /// The endpoint as configured.
        endpoint: String,
        /// The SDK's explanation.
        reason: String,
    },
    /// A header name or value cannot go on the wire (the SDK would drop it silently).
    #[error("exporters.otlp.headers: {name:?} is not a valid header {what}")]
    InvalidHeader {
        /// The header name as configured (the value is never shown: it is often a secret).
        name: String,
        /// `name` or `value`.
        what: &'static str,
    },
    /// The CA file for an `https://` endpoint cannot be read or holds no certificate.
    #[error("exporters.otlp.tls.ca_file: {path}: {reason}")]
    CaFile {
        /// The file as configured.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS client for the OTLP/HTTP exporter cannot be built.
    #[error("exporters.otlp: cannot build the https client for {endpoint}: {reason}")]
    HttpClient {
        /// The endpoint as configured.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The alert delivery thread could not be started.
    #[error("exporters.otlp: cannot start alert delivery: {0}")]
    Delivery(std::io::Error),
    /// The Prometheus reader could not be created.
    #[error("exporters.prometheus: {0}")]
    Prometheus(String),
    /// The Prometheus endpoint could not be bound.
    #[error("exporters.prometheus.endpoint: cannot listen on {addr}: {source}")]
    Bind {
        /// The address as configured.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The last flush at shutdown failed (already counted in `callpulse.export.failures`).
    #[error("export at shutdown failed: {0}")]
    Flush(String),
    /// Shutdown did not finish within its budget; whatever was still pending is lost.
    #[error("export shutdown did not finish within {0:?}")]
    ShutdownTimeout(Duration),
}

/// The running exporters: the meter and logger providers, the instruments and the Prometheus
/// endpoint. Built once by the app; the engine gets a [`Recorder`] from it.
pub struct Telemetry {
    meter_provider: SdkMeterProvider,
    delivery: Option<delivery::Delivery>,
    instruments: Arc<instruments::Instruments>,
    alerts: logs::AlertEmitter,
    prometheus: Option<prometheus::PrometheusServer>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("otlp_logs", &self.delivery.is_some())
            .field("prometheus", &self.prometheus_addr())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the providers, readers and instruments and binds the Prometheus endpoint (port 0
    /// picks a free port). Must be called inside a multi-thread tokio runtime: the gRPC exporter
    /// spawns its channel onto it while the SDK exports from its own threads.
    pub async fn start(
        cfg: &ExportersConfig,
        resource: ResourceInfo,
        gauges: watch::Receiver<SharedSnapshot>,
        stats: Arc<SelfStats>,
    ) -> Result<Telemetry, ExportError> {
        Self::start_with_console(cfg, resource, gauges, stats, ConsoleOutput::Stdout).await
    }

    /// Like [`Telemetry::start`], with the console exporter writing to `console` instead of
    /// stdout, so tests and embedders can read what a person watching the demo would see.
    pub async fn start_with_console(
        cfg: &ExportersConfig,
        resource: ResourceInfo,
        gauges: watch::Receiver<SharedSnapshot>,
        stats: Arc<SelfStats>,
        console: ConsoleOutput,
    ) -> Result<Telemetry, ExportError> {
        let res = resource::build(&resource);
        let mut builder = SdkMeterProvider::builder().with_resource(res.clone());
        let mut delivery = None;

        if let Some(otlp_cfg) = &cfg.otlp {
            let exporter = otlp::metric_exporter(otlp_cfg)?;
            let exporter = otlp::Counted::new(exporter, ExporterKind::OtlpMetrics, stats.clone());
            builder = builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(otlp_cfg.interval)
                    .build(),
            );
            let log_exporter = otlp::log_exporter(otlp_cfg)?;
            let log_exporter =
                otlp::Counted::new(log_exporter, ExporterKind::OtlpLogs, stats.clone());
            // The exporter's own timeout bounds an attempt; the margin covers connecting.
            let attempt_timeout = otlp_cfg.timeout + Duration::from_secs(5);
            delivery = Some(
                delivery::Delivery::start(
                    log_exporter,
                    res,
                    scope(),
                    SharedOutbox::new(OUTBOX_CAPACITY),
                    attempt_timeout,
                )
                .map_err(ExportError::Delivery)?,
            );
        }

        let mut prometheus_reader = None;
        if cfg.prometheus.is_some() {
            let (reader, registry) = prometheus::reader()?;
            builder = builder.with_reader(reader);
            prometheus_reader = Some(registry);
        }

        if let Some(console_cfg) = &cfg.console {
            builder = builder.with_reader(
                PeriodicReader::builder(console::ConsoleExporter::new(
                    console.clone(),
                    console_cfg.verbose,
                ))
                .with_interval(console_cfg.interval)
                .build(),
            );
        }

        let meter_provider = builder.build();
        let meter = meter_provider.meter_with_scope(scope());
        let instruments = Arc::new(instruments::Instruments::new(&meter, gauges, stats));

        let alerts = logs::AlertEmitter::new(
            delivery.as_ref().map(|d| logs::OutboxSender {
                outbox: d.outbox().clone(),
                wake: d.waker(),
            }),
            cfg.console.is_some().then_some(console),
        );

        let prometheus = match (&cfg.prometheus, prometheus_reader) {
            (Some(p), Some(registry)) => {
                Some(prometheus::PrometheusServer::start(p.endpoint, registry).await?)
            }
            _ => None,
        };

        debug!(
            otlp = cfg.otlp.is_some(),
            prometheus = ?prometheus.as_ref().map(|p| p.addr()),
            console = cfg.console.is_some(),
            "exporters started"
        );
        Ok(Telemetry {
            meter_provider,
            delivery,
            instruments,
            alerts,
            prometheus,
        })
    }

    /// A recorder for the engine: counters, histograms and alert events. Each call makes a new
    /// one sharing the same instruments; the engine takes one and keeps it.
    pub fn recorder(&self) -> Box<dyn Recorder> {
        Box::new(instruments::OtelRecorder::new(
            self.instruments.clone(),
            self.alerts.clone(),
        ))
    }

    /// The alert outbox (when OTLP is on): the engine task keeps it in the alert state file and
    /// the app restores it from there at start.
    pub fn alert_outbox(&self) -> Option<SharedOutbox> {
        self.delivery.as_ref().map(|d| d.outbox().clone())
    }

    /// Tells the alert delivery task to look at the outbox now: after the app restored
    /// transitions from the state file into it.
    pub fn wake_alert_delivery(&self) {
        if let Some(d) = &self.delivery {
            d.waker().notify_one();
        }
    }

    /// Where `/metrics` is served (the real port when the config asked for port 0).
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus.as_ref().map(|p| p.addr())
    }

    /// Exports everything recorded so far on every push reader (OTLP, console) and tries to
    /// deliver the waiting alert events now (ignoring the retry backoff), waiting for the exports
    /// to finish. Blocks the calling thread (inside a multi-thread runtime it steps off the worker
    /// first); failures are counted and logged by the exporters themselves.
    pub fn force_flush(&self) {
        let run = || {
            if let Err(e) = self.meter_provider.force_flush() {
                debug!(error = %e, "metrics flush incomplete");
            }
            if let Some(d) = &self.delivery
                && !d.flush_blocking(Duration::from_secs(30))
            {
                debug!("alert delivery flush incomplete");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(run)
            }
            _ => run(),
        }
    }

    /// Flushes the last metrics and alert events, then stops the Prometheus endpoint. Returns
    /// within `budget` whatever the backend does: the SDK's blocking shutdown runs on its own
    /// thread and is abandoned (with an error) when the budget runs out. Alert transitions still
    /// undelivered stay in the outbox (the caller saves it in the state file) and are reported.
    pub async fn shutdown(self, budget: Duration) -> Result<(), ExportError> {
        let deadline = tokio::time::Instant::now() + budget;
        let Telemetry {
            meter_provider,
            delivery,
            instruments,
            alerts,
            prometheus,
        } = self;
        // Stop accepting scrapes while the providers flush.
        if let Some(p) = &prometheus {
            p.stop();
        }
        drop(alerts);
        drop(instruments);

        // A plain thread, not spawn_blocking: a backend that hangs must not keep the runtime
        // from shutting down after we give up on it.
        let (tx, rx) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("callpulse-export-shutdown".into())
            .spawn(move || {
                let _ = tx.send(meter_provider.shutdown_with_timeout(budget));
            });
        if let Err(e) = spawned {
            return Err(ExportError::Flush(format!(
                "cannot spawn shutdown thread: {e}"
            )));
        }

        // Alerts deliver side by side with the metrics flush, under the same deadline.
        let undelivered = match delivery {
            Some(d) => d.finish(deadline).await,
            None => 0,
        };
        let outcome = tokio::time::timeout_at(deadline, rx).await;
        if let Some(p) = prometheus {
            p.join(deadline).await;
        }
        match outcome {
            Err(_) => {
                warn!(budget = ?budget, "export shutdown timed out; pending telemetry dropped");
                Err(ExportError::ShutdownTimeout(budget))
            }
            Ok(Err(_)) => Err(ExportError::Flush("shutdown thread ended early".into())),
            Ok(Ok(metrics)) => {
                let mut failures = Vec::new();
                match metrics {
                    Ok(()) | Err(OTelSdkError::AlreadyShutdown) => {}
                    Err(e) => failures.push(format!("metrics: {e}")),
                }
                if undelivered > 0 {
                    warn!(
                        undelivered,
                        "alert transitions not delivered by shutdown; kept in the outbox"
                    );
                    failures.push(format!(
                        "alerts: {undelivered} transitions undelivered (kept in the alert state file when one is configured)"
                    ));
                }
                if failures.is_empty() {
                    Ok(())
                } else {
                    Err(ExportError::Flush(failures.join("; ")))
                }
            }
        }
    }
}

/// The instrumentation scope of every metric and log record callpulse emits.
fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(resource::SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

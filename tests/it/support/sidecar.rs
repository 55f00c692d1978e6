//! The whole sidecar (`app::run`) on 127.0.0.1 port 0, stopped through its shutdown token.

use std::sync::Arc;
use std::time::Duration;

use callpulse::app::{self, Endpoints, Hooks};
use callpulse::clock::Clock;
use callpulse::config::{Config, ListenerConfig, OtlpExporterConfig, PrometheusConfig};
use callpulse::engine::SharedSnapshot;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running sidecar.
pub struct Sidecar {
    pub endpoints: Endpoints,
    pub snapshots: watch::Receiver<SharedSnapshot>,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

/// A config on free ports: receivers on 127.0.0.1:0, Prometheus on 127.0.0.1:0, no console, an
/// OTLP exporter to `sink_endpoint` (when given) with a short interval, and a fast engine tick.
pub fn test_config(sink_endpoint: Option<String>) -> Config {
    let mut cfg = Config::default();
    cfg.receiver.grpc = Some(ListenerConfig::new(([127, 0, 0, 1], 0).into()));
    cfg.receiver.http = Some(ListenerConfig::new(([127, 0, 0, 1], 0).into()));
    cfg.exporters.prometheus = Some(PrometheusConfig {
        endpoint: ([127, 0, 0, 1], 0).into(),
    });
    cfg.exporters.console = None;
    cfg.exporters.otlp = sink_endpoint.map(|endpoint| OtlpExporterConfig {
        endpoint,
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        ..Default::default()
    });
    cfg.engine.tick = Duration::from_millis(50);
    // The fixtures carry their own (past) times; these tests are about mappings and transport,
    // so events count at arrival. Event time has its own tests (engine::tests, pipeline).
    cfg.engine.event_time = callpulse::config::EventTimeSource::Arrival;
    cfg.alerts.evaluation_interval = Duration::from_secs(1);
    cfg.telemetry.instance_id = Some("test-sidecar".into());
    cfg.telemetry.shutdown_grace = Duration::from_secs(5);
    cfg
}

impl Sidecar {
    /// Starts `app::run` and waits until it listens.
    pub async fn start(cfg: Config, clock: Arc<dyn Clock>) -> Sidecar {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (snap_tx, snap_rx) = oneshot::channel();
        let shutdown = CancellationToken::new();
        let hooks = Hooks {
            ready: Some(ready_tx),
            snapshots: Some(snap_tx),
        };
        let task = tokio::spawn(app::run(cfg, clock, shutdown.clone(), hooks));
        let endpoints = tokio::time::timeout(Duration::from_secs(10), ready_rx)
            .await
            .expect("sidecar ready in time")
            .expect("sidecar started");
        let snapshots = snap_rx.await.expect("snapshots");
        Sidecar {
            endpoints,
            snapshots,
            shutdown,
            task,
        }
    }

    /// The gRPC receiver address.
    pub fn grpc(&self) -> std::net::SocketAddr {
        self.endpoints.grpc.expect("grpc receiver")
    }

    /// The HTTP receiver address.
    pub fn http(&self) -> std::net::SocketAddr {
        self.endpoints.http.expect("http receiver")
    }

    /// Waits until the engine's published gauges satisfy `cond`.
    pub async fn wait_for_gauges(
        &mut self,
        timeout: Duration,
        cond: impl Fn(&SharedSnapshot) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(&self.snapshots.borrow_and_update()) {
                return;
            }
            if tokio::time::timeout_at(deadline, self.snapshots.changed())
                .await
                .is_err()
            {
                panic!(
                    "gauges never reached the expected state: {:?}",
                    self.snapshots.borrow()
                );
            }
        }
    }

    /// Graceful stop; returns app::run's result.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("stopped in time")
            .expect("join")
    }
}

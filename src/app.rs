//! Wiring: channels, tasks and staged shutdown.
//!
//! Order of stopping (design.md): cancel → receivers finish in-flight requests and the probe
//! scheduler stops → their senders drop → the engine drains its queue and does a final tick →
//! exporters flush under what is left of the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{self, Engine, SharedSnapshot};
use crate::export::{ResourceInfo, Telemetry};
use crate::stats::SelfStats;

/// Where a running callpulse listens (port 0 in config becomes the real port here).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoints {
    /// OTLP/gRPC receiver.
    pub grpc: Option<SocketAddr>,
    /// OTLP/HTTP receiver.
    pub http: Option<SocketAddr>,
    /// Prometheus `/metrics`.
    pub prometheus: Option<SocketAddr>,
}

/// Hooks for embedding (tests, the demo): where to announce readiness and what to watch.
#[derive(Debug, Default)]
pub struct Hooks {
    /// Receives the bound endpoints once everything listens.
    pub ready: Option<oneshot::Sender<Endpoints>>,
    /// Receives the gauge snapshots the engine publishes.
    pub snapshots: Option<oneshot::Sender<watch::Receiver<SharedSnapshot>>>,
}

/// The service instance id: the configured one, else the host name, else "callpulse".
pub fn instance_id(cfg: &Config) -> String {
    cfg.telemetry
        .instance_id
        .clone()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "callpulse".to_string())
}

/// Restores firing alerts from the state file so a restart does not announce them twice. A missing
/// file is a first start; an unreadable one is logged and ignored (the alerts re-evaluate).
fn restore_alert_state(engine: &mut Engine, path: &std::path::Path, now: std::time::SystemTime) {
    match std::fs::read_to_string(path) {
        Ok(text) => match engine.restore_alerts(&text, now) {
            Ok(()) => tracing::info!(path = %path.display(), "alert state restored"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "alert state file ignored")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "alert state file unreadable"),
    }
}

/// Writes the alert state next to its final name and renames it, so a crash never leaves half a file.
fn save_alert_state(engine: &Engine, path: &std::path::Path) {
    let Some(text) = engine.save_alerts() else {
        return;
    };
    let tmp = path.with_extension("tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    match result {
        Ok(()) => tracing::info!(path = %path.display(), "alert state saved"),
        Err(e) => tracing::error!(path = %path.display(), error = %e, "alert state not saved"),
    }
}

/// Runs callpulse until `shutdown` fires, then stops in stages within the grace period.
pub async fn run(
    cfg: Config,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let stats = Arc::new(SelfStats::default());
    let mut engine = Engine::new(&cfg);
    if let Some(path) = &cfg.alerts.state_file {
        restore_alert_state(&mut engine, path, clock.now());
    }
    let (snap_tx, snap_rx) = watch::channel(engine.snapshot());
    let resource = ResourceInfo {
        instance_id: instance_id(&cfg),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let telemetry = Telemetry::start(&cfg.exporters, resource, snap_rx.clone(), stats.clone())
        .await
        .context("starting exporters")?;

    let (tx, rx) = mpsc::channel(cfg.receiver.queue_capacity.max(1));
    let engine_task = tokio::spawn(engine::run(
        engine,
        rx,
        telemetry.recorder(),
        snap_tx,
        clock.clone(),
        stats.clone(),
    ));

    let ingress = CancellationToken::new();
    let sources: Arc<[crate::config::SourceConfig]> = cfg.sources.clone().into();
    let receiver = crate::receiver::start(
        &cfg.receiver,
        sources,
        tx.clone(),
        stats.clone(),
        ingress.clone(),
    )
    .await
    .context("starting OTLP receivers")?;
    let probes = if cfg.probes.sip.is_empty() {
        None
    } else {
        let max = cfg.probes.max_in_flight.unwrap_or(256);
        Some(tokio::spawn(crate::probe::runner::run(
            cfg.probes.sip.clone(),
            max,
            tx.clone(),
            ingress.clone(),
        )))
    };
    drop(tx);

    let endpoints = Endpoints {
        grpc: receiver.grpc_addr,
        http: receiver.http_addr,
        prometheus: telemetry.prometheus_addr(),
    };
    tracing::info!(
        grpc = ?endpoints.grpc,
        http = ?endpoints.http,
        prometheus = ?endpoints.prometheus,
        probes = cfg.probes.sip.len(),
        "callpulse running"
    );
    if let Some(ready) = hooks.ready {
        let _ = ready.send(endpoints);
    }
    if let Some(s) = hooks.snapshots {
        let _ = s.send(snap_rx);
    }

    shutdown.cancelled().await;
    let grace = cfg.telemetry.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(grace = ?grace, "stopping");
    ingress.cancel();
    let stopped = async {
        receiver.wait().await.context("OTLP receivers")?;
        if let Some(p) = probes {
            p.await.context("probe scheduler")?;
        }
        let engine = engine_task.await.context("engine")?;
        if let Some(path) = &cfg.alerts.state_file {
            save_alert_state(&engine, path);
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout_at(deadline, stopped).await {
        Ok(r) => r?,
        Err(_) => tracing::warn!(
            "grace period over before ingress and engine stopped; flushing what there is"
        ),
    }
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_millis(500));
    telemetry
        .shutdown(left)
        .await
        .context("flushing exporters")?;
    tracing::info!("stopped");
    Ok(())
}

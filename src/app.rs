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

/// Runs the probe scheduler on a thread and runtime of its own, so that decoding and normalising a
/// large OTLP batch on the receivers' worker never delays the timestamp of a probe's response
/// (which would show as RTT and jitter that the network did not have).
fn spawn_probes(
    targets: Vec<crate::config::SipProbeConfig>,
    max_in_flight: usize,
    tx: mpsc::Sender<crate::engine::EngineInput>,
    shutdown: CancellationToken,
    counters: Arc<crate::probe::runner::ProbeCounters>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the probe runtime")?;
    std::thread::Builder::new()
        .name("callpulse-probes".into())
        .spawn(move || {
            runtime.block_on(crate::probe::runner::run_counted(
                targets,
                max_in_flight,
                tx,
                shutdown,
                counters,
            ));
            let _ = done_tx.send(());
        })
        .context("starting the probe thread")?;
    // A panic on that thread drops `done_tx`: the supervisor sees an abnormal end.
    Ok(tokio::spawn(async move {
        if done_rx.await.is_err() {
            panic!("the probe thread panicked");
        }
    }))
}

/// Runs callpulse until `shutdown` fires, then stops in stages within the grace period.
///
/// Every task is supervised: a receiver, the probe scheduler or the engine ending on its own is
/// an error that stops the process with a message naming it (a monitor must never look alive
/// while one of its parts is dead). Whatever failed, the engine's final tick, the alert state
/// file and the exporters' flush still run within the grace period.
pub async fn run(
    cfg: Config,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
    hooks: Hooks,
) -> anyhow::Result<()> {
    let stats = Arc::new(SelfStats::default());
    let mut engine = Engine::new(&cfg);
    let (snap_tx, snap_rx) = watch::channel(engine.snapshot());
    let resource = ResourceInfo {
        instance_id: instance_id(&cfg),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let telemetry = Telemetry::start(&cfg.exporters, resource, snap_rx.clone(), stats.clone())
        .await
        .context("starting exporters")?;
    // After the exporters: the state file's outbox goes into the outbox they deliver.
    let outbox = telemetry.alert_outbox();
    if let Some(path) = &cfg.alerts.state_file {
        engine::restore_alert_state(&mut engine, path, clock.now(), outbox.as_ref());
        telemetry.wake_alert_delivery();
    }

    let (tx, rx) = mpsc::channel(cfg.receiver.queue_capacity.max(1));
    let (probe_tx, probe_rx) = mpsc::channel(64);
    let engine_stop = CancellationToken::new();
    let mut engine_task = tokio::spawn(engine::run_with(
        engine,
        rx,
        telemetry.recorder(),
        snap_tx,
        clock.clone(),
        stats.clone(),
        engine::RunOptions {
            stop: engine_stop.clone(),
            state_file: cfg.alerts.state_file.clone(),
            probes: Some(probe_rx),
            outbox: outbox.clone(),
        },
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
    stats.set_refusals(receiver.refusals.clone());
    let mut probes = if cfg.probes.sip.is_empty() {
        None
    } else {
        let max = cfg.probes.max_in_flight.unwrap_or(256);
        let counters = Arc::new(crate::probe::runner::ProbeCounters::default());
        stats.set_probe_counters(counters.clone());
        Some(spawn_probes(
            cfg.probes.sip.clone(),
            max,
            probe_tx,
            ingress.clone(),
            counters,
        )?)
    };
    // Native PBX inputs (AMI, ESL): each task ends only on `ingress`, so one ending sooner is
    // supervised like the probe scheduler. The task yields its input's name for the message.
    let mut natives = tokio::task::JoinSet::new();
    for input in &cfg.native_inputs {
        let name = format!("{} input \"{}\"", input.kind.as_str(), input.name);
        let run =
            crate::receiver::native::run(input.clone(), tx.clone(), stats.clone(), ingress.clone());
        natives.spawn(async move {
            run.await;
            name
        });
    }
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
        native_inputs = cfg.native_inputs.len(),
        "callpulse running"
    );
    if let Some(ready) = hooks.ready {
        let _ = ready.send(endpoints);
    }
    if let Some(s) = hooks.snapshots {
        let _ = s.send(snap_rx);
    }
    let mut receivers = receiver.into_tasks();

    // Until asked to stop, any task that ends is a failure of the whole.
    let mut failure: Option<anyhow::Error> = tokio::select! {
        () = shutdown.cancelled() => None,
        Some(joined) = receivers.join_next() => Some(match joined {
            Ok(Ok(())) => anyhow::anyhow!("an OTLP receiver stopped on its own"),
            Ok(Err(e)) => anyhow::Error::new(e).context("OTLP receiver failed"),
            Err(e) => anyhow::anyhow!("an OTLP receiver task ended abnormally: {e}"),
        }),
        joined = async { match probes.as_mut() { Some(p) => p.await, None => std::future::pending().await } } => {
            probes = None;
            Some(match joined {
                Ok(()) => anyhow::anyhow!("the probe scheduler stopped on its own"),
                Err(e) => anyhow::anyhow!("the probe scheduler ended abnormally: {e}"),
            })
        }
        Some(joined) = natives.join_next() => Some(match joined {
            Ok(name) => anyhow::anyhow!("the {name} stopped on its own"),
            Err(e) => anyhow::anyhow!("a native PBX input ended abnormally: {e}"),
        }),
        joined = &mut engine_task => {
            let e = match joined {
                Ok(_) => anyhow::anyhow!("the engine stopped on its own"),
                Err(e) => anyhow::anyhow!("the engine ended abnormally: {e}"),
            };
            tracing::error!(error = %format!("{e:#}"), "stopping: a task failed");
            telemetry.shutdown(cfg.telemetry.shutdown_grace).await.context("flushing exporters")?;
            return Err(e);
        }
    };
    if let Some(e) = &failure {
        tracing::error!(error = %format!("{e:#}"), "stopping: a task failed");
    }

    let grace = cfg.telemetry.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(grace = ?grace, "stopping");
    ingress.cancel();
    // Ingress gets half the grace to finish in-flight requests; the engine and the exporters
    // keep the rest, so a stalled client can delay but never cancel the final flush.
    let ingress_deadline = tokio::time::Instant::now() + grace / 2;
    let ingress_stopped = async {
        let mut first: Option<anyhow::Error> = None;
        while let Some(joined) = receivers.join_next().await {
            let e = match joined {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => anyhow::Error::new(e).context("OTLP receiver failed"),
                Err(e) => anyhow::anyhow!("an OTLP receiver task ended abnormally: {e}"),
            };
            first.get_or_insert(e);
        }
        if let Some(p) = probes.take()
            && let Err(e) = p.await
        {
            first.get_or_insert(anyhow::anyhow!("the probe scheduler ended abnormally: {e}"));
        }
        while let Some(joined) = natives.join_next().await {
            if let Err(e) = joined {
                first.get_or_insert(anyhow::anyhow!("a native PBX input ended abnormally: {e}"));
            }
        }
        first
    };
    match tokio::time::timeout_at(ingress_deadline, ingress_stopped).await {
        Ok(Some(e)) => {
            failure.get_or_insert(e);
        }
        Ok(None) => {}
        Err(_) => {
            tracing::warn!("ingress did not stop within half the grace period; closing it");
            receivers.abort_all();
            natives.abort_all();
        }
    }
    engine_stop.cancel();
    let mut stopped_engine = None;
    match tokio::time::timeout_at(deadline, &mut engine_task).await {
        Ok(Ok(engine)) => stopped_engine = Some(engine),
        Ok(Err(e)) => {
            failure.get_or_insert(anyhow::anyhow!("the engine ended abnormally: {e}"));
        }
        Err(_) => {
            tracing::warn!(
                "grace period over before the engine's final tick; flushing what there is"
            );
        }
    }
    let left = deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .max(Duration::from_millis(500));
    let flushed = telemetry.shutdown(left).await;
    // Once more after the last delivery, so what it delivered is not sent again after a restart.
    if let (Some(engine), Some(path)) = (&stopped_engine, &cfg.alerts.state_file) {
        engine::save_alert_state(engine, outbox.as_ref(), path);
    }
    flushed.context("flushing exporters")?;
    if let Some(e) = failure {
        return Err(e);
    }
    tracing::info!("stopped");
    Ok(())
}

//! The scheduler task: starts every target's rounds on the [`Schedule`], at most one round per
//! target at a time, with requests in flight capped across all targets, and hands each report to
//! the engine with an awaited send (probes are few; back-pressure just delays the next report).
//! Stops on the shutdown token: rounds in progress are abandoned, no report is half-sent; then
//! REGISTER probes that may still hold a binding (a round cut short) unREGISTER, all at once,
//! within a bounded grace time — unless they are configured `keep_registered`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::config::SipProbeConfig;
use crate::engine::EngineInput;
use crate::probe::round::{ProbeContext, TargetProbe};
use crate::probe::schedule::Schedule;

/// What the scheduler skipped or dropped, as vector counts every drop: read by the exporters
/// while it runs (`sip.probe.rounds.skipped`, `sip.probe.datagrams.dropped`).
#[derive(Debug, Default)]
pub struct ProbeCounters {
    /// Rounds not started because the target's previous round was still running.
    pub busy: AtomicU64,
    /// Rounds not started because the scheduler fell behind by more than an interval.
    pub late: AtomicU64,
    /// Rounds that panicked (the target is rebuilt and probed again next round).
    pub panicked: AtomicU64,
    /// UDP datagrams that belonged to no round in progress.
    pub stray: AtomicU64,
    /// UDP datagrams dropped because their round's queue was full.
    pub route_full: AtomicU64,
}

/// Probes `targets` until `shutdown` fires or the engine goes away. Invalid targets are logged
/// and skipped (config validation should have refused them already).
pub async fn run(
    targets: Vec<SipProbeConfig>,
    max_in_flight: usize,
    tx: mpsc::Sender<EngineInput>,
    shutdown: CancellationToken,
) {
    run_counted(
        targets,
        max_in_flight,
        tx,
        shutdown,
        Arc::new(ProbeCounters::default()),
    )
    .await;
}

/// [`run`], counting what it skips and drops in `counters`.
pub async fn run_counted(
    targets: Vec<SipProbeConfig>,
    max_in_flight: usize,
    tx: mpsc::Sender<EngineInput>,
    shutdown: CancellationToken,
    counters: Arc<ProbeCounters>,
) {
    run_inner(
        targets,
        max_in_flight,
        tx,
        shutdown,
        Arc::new(SystemClock),
        counters,
    )
    .await;
}

/// [`run`] with an injected wall clock for the reports' `at`.
pub async fn run_with_clock(
    targets: Vec<SipProbeConfig>,
    max_in_flight: usize,
    tx: mpsc::Sender<EngineInput>,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
) {
    let counters = Arc::new(ProbeCounters::default());
    run_inner(targets, max_in_flight, tx, shutdown, clock, counters).await;
}

async fn run_inner(
    targets: Vec<SipProbeConfig>,
    max_in_flight: usize,
    tx: mpsc::Sender<EngineInput>,
    shutdown: CancellationToken,
    clock: Arc<dyn Clock>,
    counters: Arc<ProbeCounters>,
) {
    let ctx = ProbeContext::with_clock(Some(max_in_flight.max(1)), clock);
    let mut probes: Vec<Option<TargetProbe>> = Vec::with_capacity(targets.len());
    let mut intervals = Vec::with_capacity(targets.len());
    let configs = targets.clone();
    for cfg in targets {
        intervals.push(cfg.interval);
        match TargetProbe::new(cfg, ctx.clone()) {
            Ok(probe) => probes.push(Some(probe)),
            Err(error) => {
                warn!(%error, "probe target skipped");
                probes.push(None);
            }
        }
    }
    let valid: Vec<bool> = probes.iter().map(Option::is_some).collect();
    if !valid.iter().any(|v| *v) {
        // Ending here would read as a dead scheduler to the supervisor: idle until shutdown.
        debug!("no probe targets");
        shutdown.cancelled().await;
        return;
    }
    info!(
        targets = valid.iter().filter(|v| **v).count(),
        max_in_flight, "probe scheduler started"
    );
    let mut schedule = Schedule::new(&intervals, Instant::now());
    let mut rounds: JoinSet<(usize, TargetProbe, bool)> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
    let refresh = |schedule: &Schedule| {
        counters.late.store(schedule.skipped(), Ordering::Relaxed);
        counters
            .stray
            .store(ctx.stray_datagrams(), Ordering::Relaxed);
        counters
            .route_full
            .store(ctx.route_full_datagrams(), Ordering::Relaxed);
    };

    loop {
        let next = schedule.next_due();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(done) = rounds.join_next_with_id() => {
                refresh(&schedule);
                match done {
                    Ok((id, (index, probe, delivered))) => {
                        running.remove(&id);
                        probes[index] = Some(probe);
                        if !delivered {
                            debug!("engine gone; probe scheduler stops");
                            break;
                        }
                    }
                    Err(error) => {
                        // A bug, not input: the target is rebuilt from its config and probed
                        // again at its next round; the others go on.
                        let index = running.remove(&error.id());
                        if error.is_panic() {
                            counters.panicked.fetch_add(1, Ordering::Relaxed);
                            warn!(%error, "probe round panicked; the target is probed again next round");
                        }
                        if let Some(index) = index
                            && let Some(cfg) = configs.get(index)
                        {
                            probes[index] = TargetProbe::new(cfg.clone(), ctx.clone()).ok();
                        }
                    }
                }
            },
            _ = sleep_until_opt(next) => {
                for index in schedule.pop_due(Instant::now()) {
                    if !valid[index] {
                        continue;
                    }
                    let Some(mut probe) = probes[index].take() else {
                        // Its previous round is still running (interval shorter than a round).
                        counters.busy.fetch_add(1, Ordering::Relaxed);
                        debug!(target = index, "probe round skipped: previous round still running");
                        continue;
                    };
                    let tx = tx.clone();
                    let shutdown = shutdown.clone();
                    let handle = rounds.spawn(async move {
                        let report = tokio::select! {
                            biased;
                            _ = shutdown.cancelled() => return (index, probe, true),
                            report = probe.round() => report,
                        };
                        let delivered = tx.send(EngineInput::Probe(report)).await.is_ok();
                        (index, probe, delivered)
                    });
                    running.insert(handle.id(), index);
                }
            }
        }
    }
    // Rounds see the cancellation and hand their probe back; give them a moment.
    let grace = Duration::from_secs(1);
    let _ = tokio::time::timeout(grace, async {
        while let Some(done) = rounds.join_next().await {
            if let Ok((index, probe, _)) = done {
                probes[index] = Some(probe);
            }
        }
    })
    .await;
    rounds.shutdown().await;
    unregister_all(&mut probes).await;
    refresh(&schedule);
    info!(
        skipped_busy = counters.busy.load(Ordering::Relaxed),
        skipped_late = schedule.skipped(),
        panicked = counters.panicked.load(Ordering::Relaxed),
        stray_datagrams = ctx.stray_datagrams(),
        route_full = ctx.route_full_datagrams(),
        "probe scheduler stopped"
    );
}

/// unREGISTERs every probe that may hold a binding, concurrently, within twice the longest
/// timeout (plus a second): shutdown must not hang on an unreachable registrar.
async fn unregister_all(probes: &mut [Option<TargetProbe>]) {
    let mut pending: JoinSet<(String, bool)> = JoinSet::new();
    let mut limit = Duration::ZERO;
    for probe in probes.iter_mut() {
        if let Some(mut p) = probe.take_if(|p| p.needs_unregister()) {
            limit = limit.max(p.config().timeout * 2);
            pending.spawn(async move {
                let ok = p.unregister().await;
                (p.config().name.clone(), ok)
            });
        }
    }
    if pending.is_empty() {
        return;
    }
    let deadline = limit + Duration::from_secs(1);
    let _ = tokio::time::timeout(deadline, async {
        while let Some(done) = pending.join_next().await {
            match done {
                Ok((target, true)) => debug!(target, "probe binding removed at shutdown"),
                Ok((target, false)) => {
                    warn!(
                        target,
                        "probe unregister at shutdown failed; the binding expires on its own"
                    )
                }
                Err(_) => {}
            }
        }
    })
    .await;
    pending.shutdown().await;
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

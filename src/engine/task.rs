//! The async shell around the engine: a short `select!` loop, tick arm first, so a flood of
//! input can never starve the gauges and alerts. Ends when every sender is gone (staged shutdown)
//! or when told to stop (then it drains what is already queued), and always leaves the alert
//! state file written: the firing alerts and the outbox of transitions not yet delivered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Engine, EngineInput, Recorder, SharedSnapshot};
use crate::alert::SharedOutbox;
use crate::clock::Clock;
use crate::stats::SelfStats;

/// Runs the engine until `rx` closes, then does a final tick and publishes the last snapshot.
pub async fn run(
    engine: Engine,
    rx: mpsc::Receiver<EngineInput>,
    recorder: Box<dyn Recorder>,
    snapshot_tx: watch::Sender<SharedSnapshot>,
    clock: Arc<dyn Clock>,
    stats: Arc<SelfStats>,
) -> Engine {
    let opts = RunOptions {
        stop: CancellationToken::new(),
        state_file: None,
        probes: None,
        outbox: None,
    };
    run_with(engine, rx, recorder, snapshot_tx, clock, stats, opts).await
}

/// How the engine task ends and where it keeps its alert state.
#[derive(Debug)]
pub struct RunOptions {
    /// Stop even while senders are still alive (a stalled receiver must not keep the engine from
    /// its final tick): what is queued is applied, then the task ends.
    pub stop: CancellationToken,
    /// Written after each evaluation that changed an alert, each tick after the outbox changed,
    /// and at the end.
    pub state_file: Option<PathBuf>,
    /// Probe reports on a channel of their own, read before the ingest queue: an OTLP flood must
    /// not delay a probe result (nor its `sip.probe.up`).
    pub probes: Option<mpsc::Receiver<EngineInput>>,
    /// The alert outbox (when OTLP is on), kept in the state file.
    pub outbox: Option<SharedOutbox>,
}

/// [`run`], stoppable, keeping the alert state file current.
pub async fn run_with(
    mut engine: Engine,
    mut rx: mpsc::Receiver<EngineInput>,
    mut recorder: Box<dyn Recorder>,
    snapshot_tx: watch::Sender<SharedSnapshot>,
    clock: Arc<dyn Clock>,
    stats: Arc<SelfStats>,
    mut opts: RunOptions,
) -> Engine {
    let mut probes = opts.probes.take();
    let tick = engine.config().tick.max(Duration::from_millis(10));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    let mut saved = engine.save_alerts();
    let mut saved_revision = outbox_revision(opts.outbox.as_ref());
    loop {
        tokio::select! {
            biased;
            _ = interval.tick() => {
                let now = clock.now();
                stats.set_queue_depth(rx.len() as u64);
                engine.observe_inputs(
                    stats.inputs().iter().map(|i| (i.kind, i.name.clone(), i.up())),
                );
                engine.tick_with(now, recorder.as_mut());
                ticks += 1;
                if ticks.is_multiple_of(60) {
                    engine.prune(now);
                }
                snapshot_tx.send_replace(engine.snapshot());
                if let Some(path) = &opts.state_file {
                    let state = engine.save_alerts();
                    let revision = outbox_revision(opts.outbox.as_ref());
                    if state != saved || revision != saved_revision {
                        save_alert_state(&engine, opts.outbox.as_ref(), path);
                        saved = state;
                        saved_revision = revision;
                    }
                }
            }
            report = recv_opt(&mut probes) => match report {
                Some(input) => engine.handle(input, clock.now(), recorder.as_mut()),
                // The scheduler is gone; ingest goes on.
                None => probes = None,
            },
            () = opts.stop.cancelled() => {
                if let Some(p) = probes.as_mut() {
                    while let Ok(input) = p.try_recv() {
                        engine.handle(input, clock.now(), recorder.as_mut());
                    }
                }
                while let Ok(input) = rx.try_recv() {
                    take(&input, &stats);
                    engine.handle(input, clock.now(), recorder.as_mut());
                }
                break;
            }
            input = rx.recv() => match input {
                Some(input) => {
                    take(&input, &stats);
                    engine.handle(input, clock.now(), recorder.as_mut());
                }
                None => break,
            },
        }
    }
    let now = clock.now();
    engine.tick_with(now, recorder.as_mut());
    stats.set_queue_depth(0);
    snapshot_tx.send_replace(engine.snapshot());
    if let Some(path) = &opts.state_file {
        save_alert_state(&engine, opts.outbox.as_ref(), path);
    }
    engine
}

/// Gives the receivers back the queue room of a batch the engine took.
fn take(input: &EngineInput, stats: &SelfStats) {
    if let EngineInput::Events(events) = input {
        stats.release_events(events.len() as u64);
    }
}

async fn recv_opt(rx: &mut Option<mpsc::Receiver<EngineInput>>) -> Option<EngineInput> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn outbox_revision(outbox: Option<&SharedOutbox>) -> Option<u64> {
    outbox.map(|o| o.lock().revision())
}

/// Restores firing alerts from the state file so a restart does not announce them twice, and the
/// outbox's undelivered transitions into `outbox` so they are delivered after the restart. A
/// missing file is a first start; an unreadable one is logged and ignored (the alerts
/// re-evaluate).
pub fn restore_alert_state(
    engine: &mut Engine,
    path: &Path,
    now: std::time::SystemTime,
    outbox: Option<&SharedOutbox>,
) {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "alert state file unreadable");
            return;
        }
    };
    match engine.restore_alerts(&text, now) {
        Ok(()) => tracing::info!(path = %path.display(), "alert state restored"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "alert state file ignored");
            return;
        }
    }
    match (crate::alert::restore_outbox(&text), outbox) {
        (Ok(entries), Some(o)) => o.lock().restore(entries),
        (Ok(entries), None) if !entries.is_empty() => tracing::warn!(
            path = %path.display(),
            undelivered = entries.len(),
            "alert outbox not restored: no OTLP exporter is configured to deliver it"
        ),
        (Ok(_), None) => {}
        (Err(e), _) => tracing::warn!(path = %path.display(), error = %e, "alert outbox ignored"),
    }
}

/// Writes the alert state (the engine's firing alerts and the outbox) now; the app calls it once
/// more after the exporters' last delivery, so transitions delivered at shutdown are not sent
/// again after the next start.
pub fn save_alert_state(engine: &Engine, outbox: Option<&SharedOutbox>, path: &Path) {
    let Some(state) = engine.save_alerts() else {
        return;
    };
    let text = match outbox {
        None => Some(state),
        Some(o) => {
            // Copied out first: the lock is not held while serialising.
            let entries: Vec<_> = o.lock().entries().cloned().collect();
            crate::alert::state_with_outbox(&state, &entries)
        }
    };
    if let Some(text) = text {
        write_atomically(&text, path);
    }
}

/// Writes next to the final name and renames, so a crash never leaves half a file.
fn write_atomically(text: &str, path: &Path) {
    let tmp = path.with_extension("tmp");
    let result = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    match result {
        Ok(()) => tracing::debug!(path = %path.display(), "alert state saved"),
        Err(e) => tracing::error!(path = %path.display(), error = %e, "alert state not saved"),
    }
}

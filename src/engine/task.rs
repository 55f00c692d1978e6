//! The async shell around the engine: a short `select!` loop, tick arm first, so a flood of
//! input can never starve the gauges and alerts. Ends when every sender is gone (staged shutdown).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::{Engine, EngineInput, Recorder, SharedSnapshot};
use crate::clock::Clock;
use crate::stats::SelfStats;

/// Runs the engine until `rx` closes, then does a final tick and publishes the last snapshot.
pub async fn run(
    mut engine: Engine,
    mut rx: mpsc::Receiver<EngineInput>,
    mut recorder: Box<dyn Recorder>,
    snapshot_tx: watch::Sender<SharedSnapshot>,
    clock: Arc<dyn Clock>,
    stats: Arc<SelfStats>,
) -> Engine {
    let tick = engine.config().tick.max(Duration::from_millis(10));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            biased;
            _ = interval.tick() => {
                let now = clock.now();
                stats.set_queue_depth(rx.len() as u64);
                engine.tick_with(now, recorder.as_mut());
                ticks += 1;
                if ticks.is_multiple_of(60) {
                    engine.prune(now);
                }
                snapshot_tx.send_replace(engine.snapshot());
            }
            input = rx.recv() => match input {
                Some(input) => engine.handle(input, clock.now(), recorder.as_mut()),
                None => break,
            },
        }
    }
    let now = clock.now();
    engine.tick_with(now, recorder.as_mut());
    stats.set_queue_depth(0);
    snapshot_tx.send_replace(engine.snapshot());
    engine
}

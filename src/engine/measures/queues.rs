//! Queue outcomes per (PBX, queue), for the abandon ratio.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::stats::QueueCounts;
use super::{Names, group, ratio, value};
use crate::alert::SignalValue;
use crate::engine::Recorder;
use crate::engine::window::SlidingWindow;
use crate::event::QueueOutcome;
use crate::metrics::{Metric, label};
use crate::signal::{AlertScope, AlertSignal};

/// The queue domain.
#[derive(Debug)]
pub(in crate::engine) struct Queues {
    windows: HashMap<(u32, u32), SlidingWindow<QueueCounts>>,
    retention: Duration,
}

impl Queues {
    /// An empty domain keeping `retention` of history.
    pub fn new(retention: Duration) -> Self {
        Queues {
            windows: HashMap::new(),
            retention,
        }
    }

    /// One queue event at event time `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_queue(
        &mut self,
        names: &Names,
        (pbx, queue): (u32, u32),
        outcome: QueueOutcome,
        wait: Option<Duration>,
        at: SystemTime,
        windowed: bool,
        rec: &mut dyn Recorder,
    ) {
        let (p, q) = (names.pbxs.name(pbx), names.queues.name(queue));
        rec.add(
            Metric::QueueCalls,
            1,
            &[
                (label::PBX, p),
                (label::QUEUE, q),
                (label::QUEUE_OUTCOME, outcome.as_str()),
            ],
        );
        if let (Some(w), QueueOutcome::Answer | QueueOutcome::Abandon) = (wait, outcome) {
            rec.record(
                Metric::QueueWaitTime,
                w.as_secs_f64(),
                &[
                    (label::PBX, p),
                    (label::QUEUE, q),
                    (label::QUEUE_OUTCOME, outcome.as_str()),
                ],
            );
        }
        if !windowed {
            return;
        }
        let c = match outcome {
            QueueOutcome::Join => QueueCounts {
                joined: 1,
                ..Default::default()
            },
            QueueOutcome::Answer => QueueCounts {
                answered: 1,
                ..Default::default()
            },
            QueueOutcome::Abandon => QueueCounts {
                abandoned: 1,
                ..Default::default()
            },
        };
        let retention = self.retention;
        self.windows
            .entry((pbx, queue))
            .or_insert_with(|| SlidingWindow::new(retention))
            .add(at, c);
    }

    /// The abandon ratio per group of `scope` over `window` as of `now`.
    pub fn values(
        &self,
        names: &Names,
        signal: AlertSignal,
        scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        if signal != AlertSignal::QueueAbandonRatio {
            return Vec::new();
        }
        group(self.windows.iter().map(|((p, q), w)| {
            let key = match scope {
                AlertScope::Pbx => vec![names.pbx(*p)],
                _ => vec![names.pbx(*p), names.queue(*q)],
            };
            (key, w.sum(now, window))
        }))
        .into_iter()
        .map(|(scope, c)| {
            let n = c.answered + c.abandoned;
            value(scope, ratio(c.abandoned, n), n)
        })
        .collect()
    }

    /// Drops history older than the retention, and queues left with none.
    pub fn prune(&mut self, now: SystemTime) {
        for w in self.windows.values_mut() {
            w.prune(now);
        }
        self.windows.retain(|_, w| !w.is_empty());
    }
}

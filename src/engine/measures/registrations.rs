//! REGISTER outcomes as the PBX saw them, per PBX, for the failure ratio that pages.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::stats::RegCounts;
use super::{Names, ratio, value};
use crate::alert::SignalValue;
use crate::engine::Recorder;
use crate::engine::window::SlidingWindow;
use crate::event::{RegistrationKind, RegistrationOutcome};
use crate::metrics::{Metric, label};
use crate::signal::{AlertScope, AlertSignal};

/// The registration domain.
#[derive(Debug)]
pub(in crate::engine) struct Registrations {
    windows: HashMap<u32, SlidingWindow<RegCounts>>,
    retention: Duration,
}

impl Registrations {
    /// An empty domain keeping `retention` of history.
    pub fn new(retention: Duration) -> Self {
        Registrations {
            windows: HashMap::new(),
            retention,
        }
    }

    /// One registration outcome at event time `at`.
    #[allow(clippy::too_many_arguments)]
    pub fn on_registration(
        &mut self,
        names: &Names,
        pbx: u32,
        outcome: RegistrationOutcome,
        kind: RegistrationKind,
        at: SystemTime,
        windowed: bool,
        rec: &mut dyn Recorder,
    ) {
        let kind_s = match kind {
            RegistrationKind::Endpoint => "endpoint",
            RegistrationKind::Trunk => "trunk",
        };
        rec.add(
            Metric::RegistrationAttempts,
            1,
            &[
                (label::PBX, names.pbxs.name(pbx)),
                (label::REGISTRATION_OUTCOME, outcome.as_str()),
                (label::REGISTRATION_KIND, kind_s),
            ],
        );
        // Expiries and unregistrations are counted but are not REGISTER attempts: they would
        // dilute (or inflate) the failure ratio that pages.
        let c = match outcome {
            RegistrationOutcome::Success => RegCounts {
                success: 1,
                failure: 0,
            },
            RegistrationOutcome::Failure => RegCounts {
                success: 0,
                failure: 1,
            },
            _ => return,
        };
        if !windowed {
            return;
        }
        let retention = self.retention;
        self.windows
            .entry(pbx)
            .or_insert_with(|| SlidingWindow::new(retention))
            .add(at, c);
    }

    /// The failure ratio per PBX over `window` as of `now`.
    pub fn values(
        &self,
        names: &Names,
        signal: AlertSignal,
        _scope: AlertScope,
        window: Duration,
        now: SystemTime,
    ) -> Vec<SignalValue> {
        if signal != AlertSignal::RegistrationFailureRatio {
            return Vec::new();
        }
        let mut out: Vec<_> = self
            .windows
            .iter()
            .map(|(p, w)| {
                let c = w.sum(now, window);
                let n = c.success + c.failure;
                value(vec![names.pbx(*p)], ratio(c.failure, n), n)
            })
            .collect();
        out.sort_by(|a, b| a.scope.cmp(&b.scope));
        out
    }

    /// Drops history older than the retention, and PBXs left with none.
    pub fn prune(&mut self, now: SystemTime) {
        for w in self.windows.values_mut() {
            w.prune(now);
        }
        self.windows.retain(|_, w| !w.is_empty());
    }
}

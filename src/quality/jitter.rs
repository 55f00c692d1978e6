//! RFC 3550 interarrival jitter (§6.4.1, sample code §A.8) and the probe's variant of it over
//! successive round-trip times. Pure arithmetic: knows nothing of SIP, RTP sockets or clocks.
//!
//! # RFC 3550
//! For packets i−1, i in arrival order, with RTP timestamps S and arrival times R in the same
//! clock units: `D = (R_i − R_{i−1}) − (S_i − S_{i−1})` (the change in relative transit time) and
//! `J += (|D| − J) / 16`. The first packet only sets the reference; J starts at 0.
//!
//! Worked example (PCMU, 8 kHz, 20 ms = 160 ticks; arrivals 50, 72, 88, 115, 130, 150 ms):
//! transits 400, 416, 384, 440, 400, 400 ticks; D = +16, −32, +56, −40, 0;
//! J = 1.0, 2.9375, 6.25390625, 8.363037109375, 7.8403472900390625 ticks, i.e. 0.98004 ms.
//! The integer form (state scaled by 16) reports 1, 2, 6, 8, 7.
//!
//! # `sip.probe.jitter`
//! [`RttJitter`] applies the same filter to the round-trip times of a probe target's answered
//! requests, in send order: the RTT of request i plays the part of the relative transit time, so
//! `D_i = RTT_i − RTT_{i−1}` (i−1 = the previous *answered* request; a lost request contributes
//! no sample) and `J += (|D_i| − J) / 16`, in seconds. The state lives as long as the target, across
//! rounds (as an RTCP receiver's does across report intervals), so with 10 requests per round the
//! estimate is not dragged towards 0 by a fresh start each round; `sip.probe.jitter` is its value
//! at the end of the round. It is a round-trip variation: both directions and the far end's
//! processing time add into it; one-way jitter is roughly `J / √2` only if both directions vary
//! independently and alike.

use std::time::Duration;

/// RFC 3550 jitter in floating point, in whatever unit the caller feeds (ticks, seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InterarrivalJitter {
    last_transit: Option<f64>,
    jitter: f64,
}

impl InterarrivalJitter {
    /// No packet seen yet.
    pub fn new() -> InterarrivalJitter {
        InterarrivalJitter::default()
    }

    /// Feeds one packet's relative transit time (arrival − timestamp, same units); returns J.
    pub fn update(&mut self, transit: f64) -> f64 {
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        self.jitter
    }

    /// Feeds one packet by RTP timestamp and arrival time (same units); returns J.
    pub fn update_packet(&mut self, rtp_timestamp: f64, arrival: f64) -> f64 {
        self.update(arrival - rtp_timestamp)
    }

    /// The current estimate (0 until two packets were seen).
    pub fn value(&self) -> f64 {
        self.jitter
    }
}

/// RFC 3550 §A.8 integer jitter in RTP timestamp units, wrap-safe, as an RTCP receiver report
/// carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpJitter {
    last_transit: Option<u32>,
    /// J scaled by 16.
    scaled: u32,
}

impl RtpJitter {
    /// No packet seen yet.
    pub fn new() -> RtpJitter {
        RtpJitter::default()
    }

    /// Feeds one packet: its RTP timestamp and its arrival time in timestamp units (both may
    /// wrap); returns the reportable jitter.
    pub fn update(&mut self, rtp_timestamp: u32, arrival: u32) -> u32 {
        let transit = arrival.wrapping_sub(rtp_timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit.wrapping_sub(last) as i32).unsigned_abs();
            // jitter += d - ((jitter + 8) >> 4), in the scaled domain.
            self.scaled = self
                .scaled
                .wrapping_add(d)
                .wrapping_sub((self.scaled + 8) >> 4);
        }
        self.last_transit = Some(transit);
        self.report()
    }

    /// The value an RTCP report carries (`scaled >> 4`).
    pub fn report(&self) -> u32 {
        self.scaled >> 4
    }
}

/// The probe's RTT-variation estimator behind `sip.probe.jitter` (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RttJitter {
    inner: InterarrivalJitter,
    samples: u64,
}

impl RttJitter {
    /// No RTT seen yet.
    pub fn new() -> RttJitter {
        RttJitter::default()
    }

    /// Feeds the RTT of the next answered request, in send order.
    pub fn update(&mut self, rtt: Duration) {
        self.inner.update(rtt.as_secs_f64());
        self.samples += 1;
    }

    /// The estimate, once at least two RTTs (one difference) were seen.
    pub fn value(&self) -> Option<Duration> {
        (self.samples >= 2).then(|| Duration::from_secs_f64(self.inner.value().max(0.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `protocols.md` §5 worked example: (S ticks, arrival ms, J float ticks, int report).
    const WORKED: &[(u32, u32, f64, u32)] = &[
        (0, 50, 0.0, 0),
        (160, 72, 1.0, 1),
        (320, 88, 2.9375, 2),
        (480, 115, 6.25390625, 6),
        (640, 130, 8.363037109375, 8),
        (800, 150, 7.8403472900390625, 7),
    ];

    #[test]
    fn float_form_matches_the_worked_example() {
        let mut j = InterarrivalJitter::new();
        for &(s, ms, want, _) in WORKED {
            let got = j.update_packet(f64::from(s), f64::from(ms * 8));
            assert!((got - want).abs() < 1e-12, "at S={s}: {got} != {want}");
        }
        let seconds = j.value() / 8000.0;
        assert!((seconds - 0.000_980_043).abs() < 1e-9, "{seconds}");
    }

    #[test]
    fn integer_form_matches_the_worked_example_and_truncates_the_float() {
        let mut j = RtpJitter::new();
        let mut f = InterarrivalJitter::new();
        for &(s, ms, _, want) in WORKED {
            assert_eq!(j.update(s, ms * 8), want, "at S={s}");
            assert_eq!(
                f.update_packet(f64::from(s), f64::from(ms * 8)) as u32,
                want
            );
        }
    }

    #[test]
    fn constant_offsets_and_wraparound_change_nothing() {
        for offset in [0u32, 12_345, u32::MAX - 500, u32::MAX] {
            let mut base = RtpJitter::new();
            let mut shifted = RtpJitter::new();
            for &(s, ms, _, _) in WORKED {
                base.update(s, ms * 8);
                shifted.update(s.wrapping_add(offset), (ms * 8).wrapping_add(offset / 3));
            }
            assert_eq!(base.scaled, shifted.scaled, "offset {offset}");
            assert_eq!(base.report(), 7);
        }
    }

    #[test]
    fn rtt_variant_is_the_same_filter_over_successive_rtts() {
        // The example's transit times, read as RTTs in ms: same J, in seconds.
        let rtts_ms = [50.0, 52.0, 48.0, 55.0, 50.0, 50.0];
        let mut j = RttJitter::new();
        assert_eq!(j.value(), None);
        j.update(Duration::from_secs_f64(rtts_ms[0] / 1000.0));
        assert_eq!(j.value(), None, "one RTT gives no difference yet");
        for rtt in &rtts_ms[1..] {
            j.update(Duration::from_secs_f64(rtt / 1000.0));
        }
        // 400, 416, 384, 440, 400, 400 ticks / 8 = the RTTs above: J = 7.84034729 / 8 ms.
        let got = j.value().unwrap().as_secs_f64();
        assert!((got - 0.000_980_043_4).abs() < 1e-9, "{got}");
    }

    #[test]
    fn steady_rtt_gives_zero_and_alternating_rtt_converges_to_the_step() {
        let mut j = RttJitter::new();
        for _ in 0..10 {
            j.update(Duration::from_millis(20));
        }
        assert_eq!(j.value(), Some(Duration::ZERO));
        for i in 0..400 {
            j.update(Duration::from_millis(if i % 2 == 0 { 30 } else { 20 }));
        }
        let got = j.value().unwrap().as_secs_f64();
        assert!((got - 0.010).abs() < 1e-6, "{got}");
    }
}

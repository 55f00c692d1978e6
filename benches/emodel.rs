//! E-model evaluations per second: the full G.107 `r_factor` (it runs once per call and per
//! probe round), the whole per-call path `estimate_call` (mapping, codec lookup, E-model,
//! Annex B), and, as the baseline measured in the same run, Annex B alone.
//!
//! Run: `cargo bench --bench emodel`. A plain timing loop (no harness); figures are printed,
//! never asserted.

use std::hint::black_box;
use std::time::Duration;

use callpulse::config::QualityConfig;
use callpulse::event::QualityFields;
use callpulse::quality::{EModelParams, estimate_call, mos_from_r, r_factor};

/// Runs `f` over `n` iterations after a warm-up and returns (iterations per second, ns each).
#[allow(clippy::disallowed_methods)] // a benchmark measures wall time by definition
fn time<F: FnMut(u64) -> f64>(n: u64, mut f: F) -> (f64, f64) {
    let mut sink = 0.0;
    for i in 0..n / 10 {
        sink += f(i);
    }
    let start = std::time::Instant::now();
    for i in 0..n {
        sink += f(i);
    }
    let elapsed = start.elapsed().as_secs_f64();
    black_box(sink);
    (n as f64 / elapsed, elapsed * 1e9 / n as f64)
}

fn main() {
    const N: u64 = 2_000_000;

    // Vary the inputs each iteration so nothing is hoisted out of the loop.
    let (base_rate, base_ns) = time(N, |i| mos_from_r(black_box((i % 1000) as f64 * 0.1)));

    let (nb_rate, nb_ns) = time(N, |i| {
        let d = (i % 800) as f64;
        let p = EModelParams {
            t: d,
            ta: d,
            tr: 2.0 * d,
            ie: 11.0,
            bpl: 19.0,
            ppl: (i % 30) as f64,
            ..EModelParams::default()
        };
        r_factor(black_box(&p))
    });

    let cfg = QualityConfig::default();
    let codecs = ["PCMU", "PCMA", "G729", "G722", "opus"];
    let (call_rate, call_ns) = time(N / 4, |i| {
        let q = QualityFields {
            rtt: Some(Duration::from_millis(i % 600)),
            jitter: Some(Duration::from_millis(i % 40)),
            loss_ratio: Some((i % 20) as f64 / 100.0),
            codec: Some(codecs[(i % 5) as usize].to_string()),
            ..QualityFields::default()
        };
        estimate_call(black_box(&q), &cfg).map_or(0.0, |e| e.mos)
    });

    println!(
        "emodel bench ({N} iterations; per-call path {} iterations)",
        N / 4
    );
    println!("  Annex B only (baseline) : {base_rate:>14.0} /s  {base_ns:>8.1} ns");
    println!(
        "  r_factor (full G.107)   : {nb_rate:>14.0} /s  {nb_ns:>8.1} ns  ({:.1}x baseline cost)",
        nb_ns / base_ns
    );
    println!(
        "  estimate_call (per call): {call_rate:>14.0} /s  {call_ns:>8.1} ns  ({:.1}x baseline cost)",
        call_ns / base_ns
    );
}

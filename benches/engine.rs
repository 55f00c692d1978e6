//! Engine benchmarks: memory of 100,000 concurrent active calls (target ≤ 64 MiB) and the engine's
//! own event rate, as figures printed by one run (`cargo bench --bench engine`), never asserted.
//! A counting global allocator gives the exact heap the engine holds beside the RSS growth; its
//! two relaxed atomic adds per allocation are in the rates too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::disallowed_methods,
    missing_docs
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callpulse::alert::AlertTransition;
use callpulse::config::Config;
use callpulse::engine::{Engine, Recorder};
use callpulse::event::*;
use callpulse::metrics::Metric;

/// The system allocator, counting live heap bytes: what the engine holds, exactly, beside the
/// RSS the kernel reports (which also counts allocator slack and pages not yet returned).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

struct NullRecorder;

impl Recorder for NullRecorder {
    fn add(&mut self, _: Metric, _: u64, _: &[(&'static str, &str)]) {}
    fn record(&mut self, _: Metric, _: f64, _: &[(&'static str, &str)]) {}
    fn alert(&mut self, _: &AlertTransition) {}
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let meta = EventMeta {
        pbx: "pbx1".into(),
        time: None,
    };

    // 1. 100,000 concurrent calls (realistic 36-char call ids, 20 trunks).
    let events: Vec<VoipEvent> = (0..100_000u64)
        .map(|i| VoipEvent {
            meta: meta.clone(),
            kind: VoipEventKind::CallStart {
                call_id: format!("{:08x}-4f2a-11ef-9c3b-{:012x}", i, i * 7919),
                direction: Direction::Inbound,
                trunk: Some(format!("trunk-{}", i % 20)),
            },
        })
        .collect();
    let mut engine = Engine::new(&Config::default());
    let before = rss_kib();
    let live_before = live_mib();
    let start = Instant::now();
    for ev in &events {
        engine.on_event(ev, t0, &mut NullRecorder);
    }
    let took = start.elapsed();
    engine.on_tick(t0);
    let after = rss_kib();
    let live = live_mib() - live_before;
    println!(
        "active calls: {} held, RSS +{:.1} MiB, live heap +{:.1} MiB ({:.0} bytes per call) (target ≤ 64 MiB), {:.0} starts/s",
        engine.active_calls(),
        (after.saturating_sub(before)) as f64 / 1024.0,
        live,
        live * 1024.0 * 1024.0 / engine.active_calls().max(1) as f64,
        events.len() as f64 / took.as_secs_f64()
    );
    drop(events);

    // 2. CDR throughput of the engine alone.
    let cdrs: Vec<VoipEvent> = (0..200_000u64)
        .map(|i| VoipEvent {
            meta: meta.clone(),
            kind: VoipEventKind::Cdr(CallRecord {
                call_id: format!("cdr-{i}"),
                disposition: if i % 5 == 0 {
                    Disposition::Busy
                } else {
                    Disposition::Answered
                },
                duration: Some(Duration::from_secs(60 + i % 300)),
                billable_duration: Some(Duration::from_secs(55 + i % 300)),
                post_dial_delay: Some(Duration::from_millis(800 + i % 2000)),
                trunk: Some(format!("trunk-{}", i % 20)),
                direction: Direction::Outbound,
                sip_status: Some(200),
                hangup_cause: Some(16),
                quality: QualityFields::default(),
            }),
        })
        .collect();
    let mut engine = Engine::new(&Config::default());
    let start = Instant::now();
    for (i, ev) in cdrs.iter().enumerate() {
        let now: SystemTime = t0 + Duration::from_millis(i as u64 / 10);
        engine.on_event(ev, now, &mut NullRecorder);
    }
    let took = start.elapsed();
    println!(
        "engine alone: {:.0} CDRs/s (null recorder)",
        cdrs.len() as f64 / took.as_secs_f64()
    );
}

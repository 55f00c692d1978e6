//! Fuzz target: the alert state file reader. Accepted files round-trip through the writer; the
//! alert engine (built-in rules) restores from any input without panicking.
//! Run: `cd fuzz && cargo +nightly fuzz run alert_state corpus/alert_state seeds/alert_state -- -max_total_time=600`
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use callpulse::alert::{AlertEngine, fuzz_state_file};
use callpulse::config::AlertsConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let decoded = fuzz_state_file(text);
    let mut engine = AlertEngine::new(&AlertsConfig::default());
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    assert_eq!(decoded.is_ok(), engine.restore_state(text, now).is_ok());
});

//! Fuzz target: config text → `config::parse_str_with_env` (YAML, `${env:NAME}` substitution with
//! an injected environment, validation), and each line through the duration, size and SIP URI
//! parsers. A parsed duration formats and parses back to itself.
//! Run: `cd fuzz && cargo +nightly fuzz run config corpus/config seeds/config -- -max_total_time=600`
#![no_main]

use callpulse::config::{
    SipTarget, format_duration, fuzz_parse_size, parse_duration, parse_str_with_env,
};
use libfuzzer_sys::fuzz_target;

/// Names starting with `UNSET` are unset; others expand to a value that is itself YAML-ish.
fn lookup(name: &str) -> Option<String> {
    if name.starts_with("UNSET") {
        None
    } else if name.starts_with("PORT") {
        Some("4317".into())
    } else {
        Some(format!("v-{name}: ${{env:X}}\n- [x"))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = parse_str_with_env(text, "fuzz.yaml", &lookup) {
        assert!(!e.problems.is_empty());
        let _ = e.to_string();
    }
    for line in text.lines().take(32) {
        let value = line.split_once(':').map_or(line, |(_, v)| v).trim();
        for s in [line, value] {
            if let Ok(d) = parse_duration(s) {
                let f = format_duration(d);
                assert_eq!(parse_duration(&f), Ok(d), "{s:?} -> {f:?}");
            }
            let _ = fuzz_parse_size(s);
            if let Ok(uri) = SipTarget::parse(s) {
                let _ = uri.port();
                let _ = uri.server_name();
                // The canonical spelling (with its transport) names the same target.
                let canonical = uri.to_string();
                assert_eq!(
                    SipTarget::parse(&canonical).as_ref(),
                    Ok(&uri),
                    "{s:?} -> {canonical:?}"
                );
            }
        }
    }
});

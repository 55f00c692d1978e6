//! Fuzz target: SIP response parser, message splitter, TCP/TLS stream framer, matcher and the
//! 401/407 digest challenge path (parse, choose, answer).
//! Run: `cd fuzz && cargo +nightly fuzz run response_parser corpus/response_parser seeds/response_parser -- -max_total_time=600`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    callpulse::probe::fuzzing::exercise(data);
});

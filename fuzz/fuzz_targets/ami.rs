//! Fuzz target: the Asterisk Manager Interface input as read from its socket — the bounded
//! framer (banner line, blank-line-ended blocks, either line end), the `Key: Value` reader, the
//! Login reply, the `CoreShowChannels` snapshot and every event block through the
//! `asterisk_ami` preset. The first 4 bytes choose where the stream is cut into reads; the
//! transcript must be the same as when the stream arrives in one read.
//! Run: `cd fuzz && cargo +nightly fuzz run ami corpus/ami seeds/ami -- -max_total_time=600`
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (control, stream) = common::control_and_stream(data);
    let split = callpulse::receiver::ami::fuzz_session(common::chunks(stream, control));
    let whole = callpulse::receiver::ami::fuzz_session([stream]);
    assert_eq!(
        split, whole,
        "where the reads split the stream changed the result"
    );
});

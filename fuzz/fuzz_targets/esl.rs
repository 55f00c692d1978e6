//! Fuzz target: the FreeSWITCH event-socket input as read from its socket — the bounded
//! framer (header blocks, `Content-Length` bodies that arrive over several reads), the header
//! reader, `Content-Type`/`Reply-Text`, `text/event-json` bodies through the `freeswitch_event`
//! preset and `api/response` bodies as the `show channels as json` snapshot. The first 4 bytes
//! choose where the stream is cut into reads; the transcript must be the same as when the stream
//! arrives in one read.
//! Run: `cd fuzz && cargo +nightly fuzz run esl corpus/esl seeds/esl -- -max_total_time=600`
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (control, stream) = common::control_and_stream(data);
    let split = callpulse::receiver::esl::fuzz_session(common::chunks(stream, control));
    let whole = callpulse::receiver::esl::fuzz_session([stream]);
    assert_eq!(
        split, whole,
        "where the reads split the stream changed the result"
    );
});

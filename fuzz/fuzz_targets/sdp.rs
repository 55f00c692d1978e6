//! Fuzz target: an SDP answer or re-offer from the network (`sip::sdp::parse`): the first audio
//! m-line, session- and media-level `c=`, `a=ptime`. A usable answer never has port 0, and an
//! offer we write reads back as itself.
//! Run: `cd fuzz && cargo +nightly fuzz run sdp corpus/sdp seeds/sdp -- -max_total_time=600`
#![no_main]

use std::time::Duration;

use callpulse::sip::sdp::{self, CallCodec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = sdp::parse(data) else {
        return;
    };
    assert_ne!(answer.media.port(), 0, "a rejected stream is an error");
    if let Some(ptime) = answer.ptime {
        assert!(ptime > Duration::ZERO && ptime <= Duration::from_secs(1));
    }
    // Answering with the codec the answer lists first (or PCMU): our offer reads back exactly.
    let codec = match answer.payload_types.first() {
        Some(8) => CallCodec::Pcma,
        Some(9) => CallCodec::G722,
        _ => CallCodec::Pcmu,
    };
    let ptime = answer.ptime.unwrap_or(Duration::from_millis(20));
    let offer = sdp::offer(1, answer.media, codec, ptime);
    let back = sdp::parse(offer.as_bytes()).expect("our offer reads back");
    assert_eq!(back.media, answer.media);
    assert_eq!(back.payload_types, vec![codec.payload_type()]);
    assert_eq!(back.ptime, Some(ptime));
});

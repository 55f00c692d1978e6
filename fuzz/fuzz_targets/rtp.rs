//! Fuzz target: received RTP (`rtp::RtpPacket::parse`: fixed header, CSRCs, header extension,
//! padding) and what the call probe does with a stream of packets: RFC 3550 §A.1/§A.3 sequence
//! and loss accounting with §A.8 jitter (`rtp::ReceiverStats`) and the fixed playout buffer
//! (`rtp::FixedJitterBuffer`). A parsed packet must write back to the same bytes (padding
//! contents aside) and parse to the same packet. Then the input, read as 10-byte
//! (sequence, timestamp, arrival) records, drives the statistics; every report stays consistent.
//! src/rtp parses no RTCP (the probe sends none and reads none), so there is no RTCP target.
//! Run: `cd fuzz && cargo +nightly fuzz run rtp corpus/rtp seeds/rtp -- -max_total_time=600`
#![no_main]

use callpulse::rtp::{FixedJitterBuffer, Playout, ReceiverStats, RtpPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RtpPacket::parse(data) {
        assert!(p.payload.len() + usize::from(p.padding) <= data.len());
        assert!(p.header.csrc.len() <= 15 && p.header.payload_type <= 127);
        let mut out = Vec::new();
        p.header
            .write(p.payload, p.padding, &mut out)
            .expect("a parsed header writes");
        assert_eq!(out.len(), data.len());
        // Padding bytes other than the count are written as zero.
        let kept = data.len() - usize::from(p.padding);
        assert_eq!(out[..kept], data[..kept]);
        assert_eq!(out.last(), data.last());
        let back = RtpPacket::parse(&out).expect("what we wrote parses");
        assert_eq!(back, p);
    }

    let mut stats = ReceiverStats::new();
    let mut jb = FixedJitterBuffer::new(320);
    let mut counted = 0u32;
    for (i, r) in data.chunks_exact(10).enumerate() {
        let seq = u16::from_be_bytes([r[0], r[1]]);
        let ts = u32::from_be_bytes([r[2], r[3], r[4], r[5]]);
        let arrival = u32::from_be_bytes([r[6], r[7], r[8], r[9]]);
        if stats.on_packet(seq, ts, arrival) {
            counted += 1;
        }
        let _: Playout = jb.on_packet(ts, arrival);
        assert_eq!(jb.played() + jb.late() + jb.duplicates(), i as u64 + 1);
        if i % 7 == 6 {
            let report = stats.report();
            // A restart (§A.1 init_seq) starts the count again.
            assert!(report.received <= counted);
            assert!((-0x80_0000..=0x7f_ffff).contains(&report.cumulative_lost));
        }
    }
    let report = stats.report();
    assert!(report.received <= counted);
});

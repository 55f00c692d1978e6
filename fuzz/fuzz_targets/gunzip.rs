//! Fuzz target: the OTLP/HTTP receiver's bounded gunzip (`Content-Encoding: gzip`). The output never
//! passes the limit; bytes that were gzipped here come back unchanged when they fit.
//! Run: `cd fuzz && cargo +nightly fuzz run gunzip corpus/gunzip seeds/gunzip -- -max_total_time=600`
#![no_main]

use std::io::Write;

use callpulse::receiver::fuzz_gunzip;
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

/// Small, so mutations reach the limit check; the receiver's default is 4 MiB.
const LIMIT: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    if let Ok(out) = fuzz_gunzip(data, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
    // The input as the plain text of a gzip body: round trip, or refused as too large.
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).unwrap();
    let z = e.finish().unwrap();
    let limit = data.len().max(1) - usize::from(data.len() > 1 && data[0] & 1 == 1);
    match fuzz_gunzip(&z, limit) {
        Ok(out) => assert_eq!(out, data),
        Err(e) => assert!(limit < data.len() && e == "too large", "{e}"),
    }
});

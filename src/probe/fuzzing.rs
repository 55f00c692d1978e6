//! The fuzz entry point shared by `fuzz/fuzz_targets/response_parser.rs` (cargo-fuzz, libFuzzer)
//! and the bounded random-mutation test below: bytes go through the response parser, the message
//! splitter, the stream framer, the matcher and — for 401/407 answers — the digest challenge
//! parser, chooser and answer builder, and every invariant is checked. Not part of the prober's
//! behaviour.

use std::time::Duration;

use tokio::time::Instant;

use crate::probe::framing::StreamFramer;
use crate::probe::matcher::{Matcher, PastRequest, Verdict};
use crate::probe::message::RequestKey;
use crate::probe::parse::{parse_message, parse_response};
use crate::probe::uri::TargetUri;
use crate::sip::digest::{self, AnswerInput, Secret};

/// Ids of the pending request the fuzzer's seeds answer, so mutations reach the matcher's deep
/// paths (`z9hG4bK-cp-1-fuzz`, Call-ID `fuzz`, CSeq 1..=3).
pub const FUZZ_BRANCH: &str = "z9hG4bK-cp-1-fuzz";

/// Feeds `data` to every parser and the matcher; panics only on a broken invariant (or a bug).
pub fn exercise(data: &[u8]) {
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 5060));
    let t0 = Instant::now();
    let mut matcher = Matcher::new([PastRequest {
        key: key(FUZZ_BRANCH, 3),
        peer,
        answered: true,
    }]);
    matcher.sent(0, key(FUZZ_BRANCH, 1), peer, t0, Duration::from_secs(2));
    matcher.sent(
        1,
        key("z9hG4bK-cp-1-fuzz2", 2),
        peer,
        t0,
        Duration::from_secs(2),
    );

    // Datagram path.
    let parsed = parse_response(data);
    if let Ok(r) = &parsed {
        assert!((100..=699).contains(&r.status));
    }
    let at = t0 + Duration::from_millis(u64::from(data.first().copied().unwrap_or(0)) * 10);
    let first = matcher_verdict(&mut matcher, &parsed, peer, at);
    check(&mut matcher, first.clone());
    // The same bytes again: never a second answer to one request.
    let again = matcher_verdict(&mut matcher, &parsed, peer, at);
    assert!(
        !(matches!(first, Verdict::Answered { .. }) && matches!(again, Verdict::Answered { .. })),
        "{first:?} then {again:?}"
    );
    let _ = parse_message(data);
    if let Ok(r) = &parsed {
        challenge_path(&r.challenges);
    }
    // The whole input as one challenge value too, so mutations hit the parameter grammar directly.
    challenge_path(&[String::from_utf8_lossy(data).into_owned()]);

    // Stream path: the bytes split at a data-derived point, framed, each frame parsed and matched.
    let mut framer = StreamFramer::new();
    let cut = data
        .len()
        .min(usize::from(data.last().copied().unwrap_or(0)));
    framer.push(&data[..cut]);
    let mut frames = 0;
    while let Some(frame) = framer.next_frame() {
        frames += 1;
        if let Ok(frame) = frame {
            assert!(!frame.bytes.is_empty());
            let parsed = parse_response(&frame.bytes);
            let verdict = matcher_verdict(&mut matcher, &parsed, peer, at);
            check(&mut matcher, verdict);
        }
        assert!(frames <= data.len() + 1, "framer made progress");
    }
    framer.push(&data[cut..]);
    while let Some(frame) = framer.next_frame() {
        frames += 1;
        if let Ok(frame) = frame {
            let _ = parse_response(&frame.bytes);
        }
        assert!(frames <= data.len() + 1, "framer made progress");
    }

    let expired = matcher.expire(t0 + Duration::from_secs(3));
    assert!(expired.len() <= 2);
    assert_eq!(matcher.pending(), 0);
    let _ = TargetUri::parse(&String::from_utf8_lossy(data));
    call_path(data);
}

/// What an INVITE probe does with a datagram: the dialog reader and its accessors, the SDP of
/// the body (and the bytes as SDP directly), and the answer to a request.
fn call_path(data: &[u8]) {
    use crate::sip::{dialog, sdp};
    if let Ok(answer) = sdp::parse(data) {
        assert_ne!(answer.media.port(), 0, "a rejected stream is an error");
    }
    let Ok(m) = dialog::parse(data) else {
        return;
    };
    assert!(m.body.len() <= data.len());
    let _ = (
        m.cseq(),
        m.top_branch(),
        m.to_tag(),
        m.from_tag(),
        m.status(),
    );
    let _ = m.all("record-route");
    if let Some(contact) = m.header("contact") {
        let _ = dialog::uri_of(contact);
    }
    if let Ok(answer) = sdp::parse(&m.body) {
        assert_ne!(answer.media.port(), 0);
    }
    if m.method().is_some() {
        let reply = dialog::format_response(
            &m,
            200,
            "OK",
            "t",
            Some("sip:cp@127.0.0.1:5"),
            Some("v=0\r\n"),
        );
        assert!(reply.starts_with(b"SIP/2.0 200 OK\r\n"));
    }
}

/// A 401/407's challenges as the REGISTER flow handles them: choose, parse, answer.
fn challenge_path(values: &[String]) {
    let password = Secret::new("fuzz-password");
    for realm in [None, Some("callpulse.test")] {
        if let Ok(ch) = digest::choose(values, realm) {
            if let Some(r) = realm {
                assert_eq!(ch.realm, r);
            }
            let input = AnswerInput {
                username: "alice",
                password: &password,
                method: "REGISTER",
                uri: "sip:127.0.0.1",
                cnonce: "0a4f113b",
                nc: 1,
            };
            let header = digest::authorization(&ch, &input);
            assert!(header.starts_with("Digest username=\"alice\""));
            assert!(!header.contains("fuzz-password"));
            // The answer must stay one header line whatever the challenge held.
            assert!(!header.contains(['\r', '\n']), "{header:?}");
        }
    }
    for v in values {
        let _ = digest::parse_challenge(v);
        let _ = digest::digest_params(v);
    }
}

fn key(branch: &str, cseq: u32) -> RequestKey {
    RequestKey {
        branch: branch.into(),
        call_id: "fuzz".into(),
        cseq,
        method: "OPTIONS",
    }
}

fn matcher_verdict(
    matcher: &mut Matcher,
    parsed: &Result<crate::probe::parse::Response, crate::probe::parse::ParseError>,
    peer: std::net::SocketAddr,
    at: Instant,
) -> Verdict {
    matcher.on_message(parsed.as_ref(), peer, at)
}

fn check(matcher: &mut Matcher, verdict: Verdict) {
    if let Verdict::Answered { index, status, rtt } = verdict {
        assert!(index <= 1);
        assert!((200..=699).contains(&status));
        assert!(rtt <= Duration::from_secs(2));
    }
    assert!(matcher.pending() <= 2);
}

/// Seed messages for fuzzing: valid answers to the fuzz request in several spellings.
pub fn seeds() -> Vec<Vec<u8>> {
    let base = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-cp-1-fuzz;rport=5062;received=127.0.0.1\r\n\
        From: <sip:callpulse@127.0.0.1>;tag=1\r\n\
        To: <sip:127.0.0.1>;tag=2\r\n\
        Call-ID: fuzz\r\n\
        CSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    vec![
        base.as_bytes().to_vec(),
        base.replace("Via:", "v:")
            .replace("Call-ID:", "i:")
            .replace("Content-Length:", "l:")
            .replace("\r\n", "\n")
            .into_bytes(),
        base.replace(
            ";rport=5062",
            ";rport=5062,\r\n SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bK-x",
        )
        .into_bytes(),
        base.replace("200 OK", "100 Trying").into_bytes(),
        base.replace("Content-Length: 0", "Content-Length: 5")
            .replace("\r\n\r\n", "\r\n\r\nhello")
            .into_bytes(),
        [
            base.as_bytes(),
            base.replace("1 OPTIONS", "2 OPTIONS")
                .replace("fuzz;", "fuzz2;")
                .as_bytes(),
        ]
        .concat(),
        base.replace(
            "200 OK\r\n",
            "401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"callpulse.test\", \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv\", qop=\"auth,auth-int\", algorithm=SHA-256, \
             opaque=\"FQhe\\\"q\", stale=TRUE\r\nWWW-Authenticate: Digest realm=\"callpulse.test\", nonce=\"n2\"\r\n",
        )
        .into_bytes(),
        base.replace(
            "200 OK\r\n",
            "407 Proxy Authentication Required\r\nProxy-Authenticate: Digest realm=\"p\",\r\n nonce=abc, algorithm=MD5-sess, qop=auth\r\n",
        )
        .into_bytes(),
        // An INVITE's 200 with an SDP answer, and an in-dialog BYE (the call probe's inputs).
        {
            let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=ptime:20\r\n";
            base.replace("1 OPTIONS", "1 INVITE")
                .replace(
                    "Content-Length: 0\r\n\r\n",
                    &format!(
                        "Contact: <sip:echo@127.0.0.1:5070>\r\nRecord-Route: <sip:p;lr>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                        sdp.len()
                    ),
                )
                .into_bytes()
        },
        b"BYE sip:cp@127.0.0.1:4000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-b\r\nFrom: <sip:echo@h>;tag=2\r\nTo: <sip:cp@h>;tag=1\r\nCall-ID: fuzz\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n".to_vec(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bounded stand-in for the libFuzzer run, for machines without nightly: random mutations
    /// of the seeds (flips, inserts, deletes, splices, truncations) through [`exercise`].
    #[test]
    fn bounded_random_mutation_never_panics() {
        let seeds = seeds();
        let iterations: usize = std::env::var("CALLPULSE_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000);
        let mut rng = fastrand::Rng::with_seed(0x5eed_ca11_9017_5e00);
        const TOKENS: &[&[u8]] = &[
            b"\r\n",
            b"\n",
            b" ",
            b";",
            b",",
            b":",
            b"[",
            b"]",
            b"<",
            b">",
            b"\"",
            b"=",
            b"\r\n ",
            b"branch=",
            b"z9hG4bK",
            b"SIP/2.0",
            b"l: ",
            b"Content-Length: 99999",
            b"\xff",
            b"\xc3",
            b"CSeq: 4294967296 OPTIONS",
            b"v: ",
            b"Via: SIP/2.0/UDP [::1",
            b"\0",
            b"Digest ",
            b"realm=\"",
            b"nonce=",
            b"qop=\"auth\"",
            b"algorithm=SHA-256-sess",
            b"stale=true",
            b"\\",
            b"WWW-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n",
            b"m=audio ",
            b"c=IN IP4 ",
            b"c=IN IP6 ::1/127",
            b"\r\nv=0\r\n",
            b"a=ptime:",
        ];
        for _ in 0..iterations {
            let mut data = seeds[rng.usize(..seeds.len())].clone();
            for _ in 0..rng.usize(1..8) {
                let at = rng.usize(..=data.len());
                match rng.u8(..6) {
                    0 if !data.is_empty() => {
                        let i = at.min(data.len() - 1);
                        data[i] ^= 1 << rng.u8(..8);
                    }
                    1 => {
                        let t = TOKENS[rng.usize(..TOKENS.len())];
                        data.splice(at..at, t.iter().copied());
                    }
                    2 => {
                        let end = (at + rng.usize(..16)).min(data.len());
                        data.drain(at..end);
                    }
                    3 => data.truncate(at),
                    4 => {
                        let other = &seeds[rng.usize(..seeds.len())];
                        let from = rng.usize(..other.len());
                        data.splice(at..at, other[from..].iter().copied());
                    }
                    _ => data.insert(at, rng.u8(..)),
                }
            }
            exercise(&data);
        }
        for seed in &seeds {
            exercise(seed);
        }
    }

    #[test]
    fn challenge_seeds_reach_the_digest_answer() {
        for seed in &seeds()[6..8] {
            let r = parse_response(seed).unwrap();
            assert!(matches!(r.status, 401 | 407));
            assert!(digest::choose(&r.challenges, None).is_ok(), "{r:?}");
        }
    }

    #[test]
    fn call_seeds_reach_the_sdp_and_the_answer() {
        let seeds = seeds();
        let ok = crate::sip::dialog::parse(&seeds[8]).unwrap();
        let answer = crate::sip::sdp::parse(&ok.body).unwrap();
        assert_eq!(answer.media.port(), 6000);
        let bye = crate::sip::dialog::parse(&seeds[9]).unwrap();
        assert_eq!(bye.method(), Some("BYE"));
    }

    #[test]
    fn seeds_reach_the_matcher() {
        let peer = "127.0.0.1:5060".parse().unwrap();
        let t0 = Instant::now();
        let mut m = Matcher::new([]);
        m.sent(0, key(FUZZ_BRANCH, 1), peer, t0, Duration::from_secs(2));
        let r = parse_response(&seeds()[1]).unwrap();
        assert!(matches!(
            m.on_message(Ok(&r), peer, t0),
            Verdict::Answered { .. }
        ));
    }
}

//! Fuzz target: one datagram as the INVITE call probe (`src/probe/call.rs`) and the test UAS
//! (`src/probe/uas.rs`) read it: the dialog reader (`sip::dialog::parse`) and its accessors,
//! the SDP of the body, and what each side builds from it —
//! - a request from the peer (BYE, re-INVITE, UPDATE, OPTIONS, CANCEL, INVITE, …): every answer
//!   the probe and the UAS give (200 with and without SDP, 405, 481, 100, 180, 487) must read
//!   back as a response to that request (status, Via, From, Call-ID, CSeq, a To tag), and the
//!   UAS's digest check of an Authorization runs;
//! - a response to our INVITE: a 2xx sets the dialog (remote tag, remote target, route set) and
//!   the ACK and BYE built from it must read back as well-formed requests of our dialog (a
//!   Request-URI without spaces or control characters, our Call-ID and CSeq, the remote tag);
//!   a non-2xx final is ACKed with its To tag; a 401/407's challenges are chosen and answered.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run sip_dialog corpus/sip_dialog seeds/sip_dialog -- -max_total_time=600`
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use callpulse::sip::SipTransport;
use callpulse::sip::dialog::{self, DialogMessage, DialogRequest, StartLine};
use callpulse::sip::digest::{self, AnswerInput, Secret};
use callpulse::sip::sdp::{self, CallCodec};
use libfuzzer_sys::fuzz_target;

const CALL_ID: &str = "fuzz-call";
const TAG: &str = "cp-tag";
const REQUEST_URI: &str = "sip:echo@127.0.0.1:5060";
const CONTACT: &str = "sip:callpulse@127.0.0.1:4000";

fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4000))
}

fn rtp() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40000))
}

fn read_back(bytes: &[u8]) -> DialogMessage {
    dialog::parse(bytes).unwrap_or_else(|e| {
        panic!(
            "a message we built does not read back ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(answer) = sdp::parse(data) {
        assert_ne!(answer.media.port(), 0, "a rejected stream is an error");
    }
    let Ok(m) = dialog::parse(data) else {
        return;
    };
    assert!(m.body.len() <= data.len());
    let _ = (m.cseq(), m.top_branch(), m.from_tag(), m.all("via"));
    if let Ok(answer) = sdp::parse(&m.body) {
        assert_ne!(answer.media.port(), 0);
    }
    match &m.start {
        StartLine::Request { method, .. } => {
            assert_eq!(m.method(), Some(method.as_str()));
            answer_request(&m);
        }
        StartLine::Response { status, .. } => {
            assert!((100..700).contains(status));
            on_response(&m, *status);
        }
    }
});

/// The answers `Dialog::recv` (call probe) and `Uas::on_datagram`/`invite` (test UAS) send.
fn answer_request(m: &DialogMessage) {
    let offer = sdp::offer(7, rtp(), CallCodec::Pcmu, Duration::from_millis(20));
    let answers: [(u16, &str, &str, Option<&str>, Option<&str>); 8] = [
        (200, "OK", TAG, Some(CONTACT), Some(&offer)),
        (200, "OK", TAG, None, None),
        (405, "Method Not Allowed", TAG, None, None),
        (481, "Call/Transaction Does Not Exist", TAG, None, None),
        (100, "Trying", "", None, None),
        (
            180,
            "Ringing",
            "uas-1",
            Some("sip:uas@127.0.0.1:5070"),
            None,
        ),
        (200, "OK", "uas", None, None),
        (487, "Request Terminated", "uas-1", None, None),
    ];
    for (status, reason, to_tag, contact, body) in answers {
        let bytes = dialog::format_response(m, status, reason, to_tag, contact, body);
        let r = read_back(&bytes);
        assert_eq!(r.status(), Some(status));
        assert_eq!(r.all("via"), m.all("via"));
        assert_eq!(r.header("from"), m.header("from"));
        assert_eq!(r.header("call-id"), m.header("call-id"));
        assert_eq!(r.header("cseq"), m.header("cseq"));
        if m.header("to").is_some() {
            let want = m.to_tag().unwrap_or_else(|| to_tag.to_string());
            assert_eq!(
                r.to_tag(),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if let Some(body) = body {
            assert_eq!(r.body, body.as_bytes());
            assert_eq!(sdp::parse(&r.body).map(|a| a.media), Ok(rtp()));
        }
    }
    // The UAS checks a digest answer to its challenge.
    for name in ["authorization", "proxy-authorization"] {
        if let Some(value) = m.header(name) {
            let answer = digest::Credentials::parse(value);
            let challenge = digest::Challenge {
                realm: "callpulse.test".into(),
                nonce: "fuzz-nonce".into(),
                opaque: None,
                algorithm: digest::Algorithm::Md5,
                qop: digest::Qop::Auth,
                stale: false,
            };
            let password = Secret::new("fuzz-password");
            let expected = answer.expected(&challenge, "alice", &password, "INVITE");
            assert!(!expected.contains("fuzz-password"));
        }
    }
}

/// Our side of the dialog, as `Dialog::request` builds it.
struct Ours {
    remote_tag: Option<String>,
    remote_target: Option<String>,
    route: Vec<String>,
}

impl Ours {
    fn request(&self, method: &str, branch: &str, cseq: u32, sdp: Option<&str>) -> Vec<u8> {
        let in_dialog = method == "BYE" || (method == "ACK" && self.remote_target.is_some());
        let ruri = match (&self.remote_target, in_dialog) {
            (Some(target), true) => target.as_str(),
            _ => REQUEST_URI,
        };
        let route: &[String] = if in_dialog { &self.route } else { &[] };
        dialog::format_request(&DialogRequest {
            method,
            request_uri: ruri,
            transport: SipTransport::Udp,
            sent_by: local(),
            branch,
            from: ("sip:callpulse@127.0.0.1", TAG),
            to: (REQUEST_URI, self.remote_tag.as_deref()),
            call_id: CALL_ID,
            cseq,
            contact: (method == "INVITE").then_some(CONTACT),
            route,
            authorization: None,
            user_agent: Some("callpulse/fuzz"),
            extra: &[],
            sdp,
        })
    }

    /// The request must read back as a well-formed request of our dialog.
    fn check(&self, bytes: &[u8], method: &str, cseq: u32) {
        let r = read_back(bytes);
        let StartLine::Request { method: m, uri } = &r.start else {
            panic!("not a request: {:?}", String::from_utf8_lossy(bytes));
        };
        assert_eq!(m, method);
        assert!(
            !uri.is_empty() && !uri.chars().any(|c| c.is_whitespace() || c.is_control()),
            "Request-URI {uri:?} of {:?}",
            String::from_utf8_lossy(bytes)
        );
        assert_eq!(r.header("call-id"), Some(CALL_ID));
        assert_eq!(r.cseq(), Some((cseq, method)));
        assert_eq!(r.from_tag().as_deref(), Some(TAG));
        assert_eq!(
            r.to_tag(),
            self.remote_tag,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// What `place_call`/`invite`/`cancel` do with a response to our INVITE (CSeq 1).
fn on_response(m: &DialogMessage, status: u16) {
    let cseq = 1;
    if (200..300).contains(&status) {
        let ours = Ours {
            remote_tag: m.to_tag(),
            remote_target: m.remote_target(),
            route: m.route_set(),
        };
        let ack = ours.request("ACK", "z9hG4bK-cp-1-a", cseq, None);
        ours.check(&ack, "ACK", cseq);
        let bye = ours.request("BYE", "z9hG4bK-cp-1-b", cseq + 1, None);
        ours.check(&bye, "BYE", cseq + 1);
        let _ = sdp::parse(&m.body);
    } else if status >= 300 {
        // A non-2xx final is ACKed in its transaction with the response's To tag; during a
        // CANCEL, on the response's top Via branch.
        let ours = Ours {
            remote_tag: m.to_tag(),
            remote_target: None,
            route: Vec::new(),
        };
        let branch = m.top_branch().unwrap_or_default();
        let ack = ours.request("ACK", &branch, cseq, None);
        let _ = dialog::parse(&ack);
        if matches!(status, 401 | 407) {
            let name = if status == 407 {
                "proxy-authenticate"
            } else {
                "www-authenticate"
            };
            let values: Vec<String> = m
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect();
            if let Ok(ch) = digest::choose(&values, None) {
                let password = Secret::new("fuzz-password");
                let header = digest::authorization(
                    &ch,
                    &AnswerInput {
                        username: "alice",
                        password: &password,
                        method: "INVITE",
                        uri: REQUEST_URI,
                        cnonce: "0a4f113b",
                        nc: 1,
                    },
                );
                assert!(!header.contains(['\r', '\n']), "{header:?}");
                let invite = ours.request("INVITE", "z9hG4bK-cp-1-c", cseq + 1, Some("v=0\r\n"));
                let _ = dialog::parse(&invite);
            }
        }
    }
}

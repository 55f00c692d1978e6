//! Builds OPTIONS requests per RFC 3261 §8.1.1 and §11.1: a unique `z9hG4bK` branch and a fresh
//! Call-ID per request, a From tag per target, a CSeq counting up across the target's requests,
//! Max-Forwards 70, a bare `rport` (RFC 3581), User-Agent and `Content-Length: 0`. Owns the ids a
//! response is matched on (the layout is `sip::request`'s); must not do I/O.
//!
//! Why a Call-ID per request: each OPTIONS is its own out-of-dialog transaction, and stateful peers
//! (SBCs, SIPp) key state on the Call-ID — a reused one can be taken for a retransmission or land
//! on a finished "call" and be swallowed. The CSeq still counts up, so a trace shows the sequence.

use std::net::SocketAddr;

use crate::config::SipProbeConfig;
use crate::probe::uri::TargetUri;
use crate::sip::SipTransport;
use crate::sip::request::{OutRequest, format_request, host_of};

/// The branch prefix: the RFC 3261 magic cookie, then our own marker.
pub const BRANCH_PREFIX: &str = "z9hG4bK-cp-";
/// The User-Agent we send unless the target's `headers` name another.
pub const USER_AGENT: &str = concat!("callpulse/", env!("CARGO_PKG_VERSION"));
/// CSeq must stay below 2^31 (RFC 3261 §8.1.1.5); past it we start again at 1.
const CSEQ_LIMIT: u32 = 1 << 31;

pub use crate::sip::RESERVED_HEADERS;

/// What a response must echo to match its request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    /// Top Via branch (`z9hG4bK-cp-<target>-<random>`).
    pub branch: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method (`OPTIONS`, `REGISTER`); a response must carry exactly this one.
    pub method: &'static str,
}

/// One formatted request and its key.
#[derive(Debug, Clone)]
pub struct OptionsRequest {
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// The ids it carries.
    pub key: RequestKey,
}

/// Why a target's request settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// A header name that is not a SIP token.
    #[error("header name {0:?} is not a valid sip token")]
    BadHeaderName(String),
    /// A header value with a line break (header injection).
    #[error("header {0:?} has a line break in its value")]
    LineBreak(String),
    /// A header the prober sets itself.
    #[error("header {0:?} is set by the prober and cannot be overridden")]
    Reserved(String),
    /// `from` or `request_uri` with a line break or blank.
    #[error("{field} {value:?} is not a usable sip uri")]
    BadUri {
        /// `from` or `request_uri`.
        field: &'static str,
        /// As configured.
        value: String,
    },
}

/// Makes the requests of one target: fixed From tag, CSeq counting up across rounds.
#[derive(Debug, Clone)]
pub struct RequestFactory {
    transport: SipTransport,
    request_uri: String,
    to_uri: String,
    from: Option<String>,
    from_tag: String,
    next_cseq: u32,
    branch_prefix: String,
    headers: Vec<(String, String)>,
    user_agent: bool,
}

impl RequestFactory {
    /// A factory for `target`; `target_id` is put in every branch so a shared UDP socket can route
    /// responses back to their target.
    pub fn new(
        target: &TargetUri,
        cfg: &SipProbeConfig,
        target_id: u64,
    ) -> Result<RequestFactory, MessageError> {
        for (name, value) in &cfg.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(MessageError::BadHeaderName(name.clone()));
            }
            if value.contains(['\r', '\n']) {
                return Err(MessageError::LineBreak(name.clone()));
            }
            if RESERVED_HEADERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
            {
                return Err(MessageError::Reserved(name.clone()));
            }
        }
        let request_uri = match &cfg.request_uri {
            Some(uri) => checked_uri("request_uri", uri)?,
            None => target.request_uri(),
        };
        let from = match &cfg.from {
            Some(uri) => Some(checked_uri("from", uri)?),
            None => None,
        };
        let user_agent = !cfg
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
        Ok(RequestFactory {
            transport: target.transport,
            to_uri: request_uri.clone(),
            request_uri,
            from,
            from_tag: random_hex(8),
            next_cseq: 1,
            branch_prefix: format!("{BRANCH_PREFIX}{target_id:x}-"),
            headers: cfg.headers.clone(),
            user_agent,
        })
    }

    /// The next request, sent from `local` (the address the peer sees in Via sent-by; with `rport`
    /// the peer answers to the real source address anyway).
    pub fn build(&mut self, local: SocketAddr) -> OptionsRequest {
        if self.next_cseq >= CSEQ_LIMIT {
            self.next_cseq = 1;
        }
        let cseq = self.next_cseq;
        self.next_cseq += 1;
        let branch = format!("{}{}", self.branch_prefix, random_hex(8));
        let call_id = random_hex(16);
        let from = match &self.from {
            Some(uri) => uri.clone(),
            None => format!("sip:callpulse@{}", host_of(local)),
        };
        let bytes = format_request(&OutRequest {
            method: "OPTIONS",
            request_uri: &self.request_uri,
            transport: self.transport,
            sent_by: local,
            branch: &branch,
            from: &from,
            from_tag: &self.from_tag,
            to: &self.to_uri,
            call_id: &call_id,
            cseq,
            contact: None,
            expires: None,
            authorization: None,
            accept: Some("application/sdp"),
            user_agent: self.user_agent.then_some(USER_AGENT),
            extra: &self.headers,
        });
        OptionsRequest {
            bytes,
            key: RequestKey {
                branch,
                call_id,
                cseq,
                method: "OPTIONS",
            },
        }
    }
}

/// The target id a branch of ours carries, so a shared socket can route a response.
pub fn target_id_of_branch(branch: &str) -> Option<u64> {
    let rest = branch.strip_prefix(BRANCH_PREFIX)?;
    let (id, _) = rest.split_once('-')?;
    u64::from_str_radix(id, 16).ok()
}

fn checked_uri(field: &'static str, value: &str) -> Result<String, MessageError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.contains(['\r', '\n']) {
        return Err(MessageError::BadUri {
            field,
            value: value.into(),
        });
    }
    Ok(trimmed.to_string())
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// `bytes` random bytes as lowercase hex, from the system CSPRNG (RFC 3261 §8.1.1.4 recommends
/// cryptographic randomness for Call-IDs; an unguessable branch also stops blind spoofing).
pub(crate) fn random_hex(bytes: usize) -> String {
    use ring::rand::SecureRandom;
    let mut buf = vec![0u8; bytes];
    if ring::rand::SystemRandom::new().fill(&mut buf).is_err() {
        // The kernel CSPRNG failing is near impossible; fall back rather than stop probing.
        buf.iter_mut().for_each(|b| *b = fastrand::u8(..));
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes * 2);
    for b in buf {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn factory(cfg: &SipProbeConfig) -> RequestFactory {
        let uri = TargetUri::parse(&cfg.target).unwrap();
        RequestFactory::new(&uri, cfg, 0xabc).unwrap()
    }

    fn header<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
        msg.split("\r\n")
            .filter_map(|l| l.split_once(": "))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn formats_an_rfc3261_options_request() {
        let cfg = SipProbeConfig::new("pbx1", "sip:pbx1.example.net:5080;transport=tcp");
        let mut f = factory(&cfg);
        let req = f.build("192.0.2.10:40000".parse().unwrap());
        let text = String::from_utf8(req.bytes.clone()).unwrap();
        assert!(text.starts_with("OPTIONS sip:pbx1.example.net:5080 SIP/2.0\r\n"));
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
        let via = header(&text, "Via");
        assert_eq!(via.len(), 1);
        assert!(
            via[0].starts_with("SIP/2.0/TCP 192.0.2.10:40000;branch=z9hG4bK-cp-abc-"),
            "{}",
            via[0]
        );
        assert!(via[0].ends_with(";rport"));
        assert!(via[0].contains(&format!("branch={}", req.key.branch)));
        assert_eq!(header(&text, "Max-Forwards"), ["70"]);
        let from = header(&text, "From");
        assert!(
            from[0].starts_with("<sip:callpulse@192.0.2.10>;tag="),
            "{}",
            from[0]
        );
        assert_eq!(header(&text, "To"), ["<sip:pbx1.example.net:5080>"]);
        assert!(!header(&text, "To")[0].contains("tag="));
        assert_eq!(header(&text, "Call-ID"), [req.key.call_id.as_str()]);
        assert_eq!(header(&text, "CSeq"), ["1 OPTIONS"]);
        assert_eq!(header(&text, "User-Agent"), [USER_AGENT]);
        assert_eq!(target_id_of_branch(&req.key.branch), Some(0xabc));
    }

    #[test]
    fn options_layout_is_exactly_the_documented_one() {
        let cfg = SipProbeConfig::new("pbx1", "sip:pbx1.example.net");
        let mut f = factory(&cfg);
        let req = f.build("192.0.2.10:40712".parse().unwrap());
        let text = String::from_utf8(req.bytes).unwrap();
        let want = format!(
            "OPTIONS sip:pbx1.example.net SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:40712;branch={};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:callpulse@192.0.2.10>;tag={}\r\n\
             To: <sip:pbx1.example.net>\r\n\
             Call-ID: {}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Accept: application/sdp\r\n\
             User-Agent: {USER_AGENT}\r\n\
             Content-Length: 0\r\n\r\n",
            req.key.branch, f.from_tag, req.key.call_id
        );
        assert_eq!(text, want);
    }

    #[test]
    fn branch_and_call_id_are_unique_and_cseq_increments() {
        let cfg = SipProbeConfig::new("pbx1", "sip:127.0.0.1");
        let mut f = factory(&cfg);
        let local = "127.0.0.1:5000".parse().unwrap();
        let reqs: Vec<_> = (0..1000).map(|_| f.build(local)).collect();
        let branches: HashSet<_> = reqs.iter().map(|r| r.key.branch.clone()).collect();
        assert_eq!(branches.len(), reqs.len());
        assert!(reqs.iter().all(|r| r.key.branch.starts_with("z9hG4bK")));
        let cseqs: Vec<u32> = reqs.iter().map(|r| r.key.cseq).collect();
        assert_eq!(cseqs, (1..=1000).collect::<Vec<_>>());
        let call_ids: HashSet<_> = reqs.iter().map(|r| r.key.call_id.clone()).collect();
        assert_eq!(call_ids.len(), reqs.len());
        let tag = |r: &OptionsRequest| {
            let text = String::from_utf8(r.bytes.clone()).unwrap();
            header(&text, "From")[0].to_string()
        };
        assert!(
            reqs.iter().all(|r| tag(r) == tag(&reqs[0])),
            "one From tag per target"
        );
        assert_ne!(tag(&factory(&cfg).build(local)), tag(&reqs[0]));
    }

    #[test]
    fn cseq_rolls_over_below_2_pow_31() {
        let cfg = SipProbeConfig::new("pbx1", "sip:127.0.0.1");
        let mut f = factory(&cfg);
        f.next_cseq = CSEQ_LIMIT - 1;
        let local = "127.0.0.1:5000".parse().unwrap();
        let last = f.build(local);
        let next = f.build(local);
        assert_eq!(last.key.cseq, CSEQ_LIMIT - 1);
        assert_eq!(next.key.cseq, 1);
    }

    #[test]
    fn extra_headers_from_and_request_uri_and_ipv6() {
        let mut cfg = SipProbeConfig::new("sbc", "sip:[2001:db8::1]:5062");
        cfg.from = Some("sip:monitor@example.net".into());
        cfg.request_uri = Some("sip:ping@example.net".into());
        cfg.headers = vec![
            ("X-Probe".into(), "callpulse".into()),
            ("User-Agent".into(), "ops-prober".into()),
        ];
        let mut f = factory(&cfg);
        let req = f.build("[2001:db8::2]:6000".parse().unwrap());
        let text = String::from_utf8(req.bytes).unwrap();
        assert!(text.starts_with("OPTIONS sip:ping@example.net SIP/2.0\r\n"));
        assert!(header(&text, "Via")[0].starts_with("SIP/2.0/UDP [2001:db8::2]:6000;branch="));
        assert!(header(&text, "From")[0].starts_with("<sip:monitor@example.net>;tag="));
        assert_eq!(header(&text, "To"), ["<sip:ping@example.net>"]);
        assert_eq!(header(&text, "X-Probe"), ["callpulse"]);
        assert_eq!(header(&text, "User-Agent"), ["ops-prober"]);
    }

    #[test]
    fn refuses_unsafe_headers() {
        let uri = TargetUri::parse("sip:127.0.0.1").unwrap();
        let mut cfg = SipProbeConfig::new("t", "sip:127.0.0.1");
        for (name, value, want) in [
            ("X-A", "a\r\nVia: x", MessageError::LineBreak("X-A".into())),
            (
                "Bad Name",
                "x",
                MessageError::BadHeaderName("Bad Name".into()),
            ),
            ("", "x", MessageError::BadHeaderName(String::new())),
            ("call-id", "x", MessageError::Reserved("call-id".into())),
            ("v", "x", MessageError::Reserved("v".into())),
        ] {
            cfg.headers = vec![(name.into(), value.into())];
            assert_eq!(RequestFactory::new(&uri, &cfg, 1).unwrap_err(), want);
        }
        cfg.headers.clear();
        cfg.from = Some("sip:a\r\nb".into());
        assert!(matches!(
            RequestFactory::new(&uri, &cfg, 1),
            Err(MessageError::BadUri { field: "from", .. })
        ));
    }

    #[test]
    fn foreign_branches_carry_no_target_id() {
        assert_eq!(target_id_of_branch("z9hG4bK776asdhds"), None);
        assert_eq!(target_id_of_branch("z9hG4bK-cp-zz-1"), None);
        assert_eq!(target_id_of_branch("z9hG4bK-cp-ff-1234"), Some(255));
    }
}

//! Tolerant SIP message parsing on top of `ezk-sip-types`: compact header names, folded
//! (continuation) lines, LF-only line ends, comma-joined Via values, IPv6 sent-by and non-UTF-8
//! bytes. Owns turning bytes into the few fields the matcher needs; must never panic on input
//! (the fuzz target in `fuzz/` and the bounded fuzz test below check that).

use std::str::FromStr;

use ezk_sip_types::Headers;
use ezk_sip_types::Name;
use ezk_sip_types::header::typed::{CSeq, CallID, Via};
use ezk_sip_types::msg::StatusLine;

/// Largest message we look at: the UDP maximum (RFC 3261 §18.3).
pub const MAX_MESSAGE: usize = 65_535;

/// The parts of a response a probe uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase (may be empty).
    pub reason: String,
    /// The top (first) Via.
    pub top_via: ViaInfo,
    /// How many Via values the response carries (comma-joined ones counted apart).
    pub via_count: usize,
    /// Call-ID, trimmed.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method exactly as sent (methods are case-sensitive).
    pub cseq_method: String,
    /// Raw `WWW-Authenticate` values of a 401, or `Proxy-Authenticate` values of a 407, in
    /// order (one challenge each); empty for other statuses. Parsed by [`crate::sip::digest`].
    pub challenges: Vec<String>,
    /// `Min-Expires` of a 423 Interval Too Brief (RFC 3261 §10.2.8), when it is a number.
    pub min_expires: Option<u32>,
    /// Raw `Contact` values of a 2xx to REGISTER: the bindings the registrar holds for the AoR
    /// (RFC 3261 §10.3 step 8); empty otherwise.
    pub contacts: Vec<String>,
}

/// The parts of a Via header a probe uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ViaInfo {
    /// Transport token (`UDP`, `TCP`, `TLS`, …).
    pub transport: String,
    /// `host[:port]` as written (IPv6 in brackets).
    pub sent_by: String,
    /// The `branch` parameter.
    pub branch: Option<String>,
    /// The `received` parameter: the address the peer saw us at.
    pub received: Option<String>,
    /// The `rport` value: the port the peer saw us at.
    pub rport: Option<u16>,
}

/// Why bytes were not a usable SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// Bigger than any SIP message may be.
    #[error("message of {0} bytes exceeds the 65535-byte limit")]
    TooLarge(usize),
    /// The first line is neither a status line nor a request line.
    #[error("not a sip message: first line {0:?}")]
    BadStartLine(String),
    /// A request where a response was expected.
    #[error("a {0} request, not a response")]
    NotAResponse(String),
    /// A status code outside 100..=699.
    #[error("status code {0} outside 100..=699")]
    BadStatus(u16),
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A mandatory header did not parse.
    #[error("malformed {0} header: {1:?}")]
    BadHeader(&'static str, String),
    /// A stream lost its framing (bad Content-Length, oversized message); the connection ends.
    #[error("stream framing lost: {0}")]
    Framing(String),
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// Method token.
        method: String,
        /// Request-URI as written.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// Status code.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A message split into start line and headers (names mapped from compact forms), for callers
/// that need more than [`Response`] (the test responder).
#[derive(Debug, Clone)]
pub struct Message {
    /// The start line.
    pub start: StartLine,
    /// All headers, folded lines joined, in order.
    pub headers: Headers,
    /// Bytes after the blank line (empty when there is none).
    pub body_len: usize,
}

impl Message {
    /// Every raw value of a header (long or compact name), in order.
    pub fn values(&self, name: &Name) -> Vec<String> {
        self.headers
            .get_raw(name)
            .map(|v| v.as_str().to_string())
            .collect()
    }
}

/// True for a keep-alive (RFC 5626 §4.4.1 CRLF ping/pong) or an empty datagram: not an error and
/// not counted.
pub fn is_keepalive(buf: &[u8]) -> bool {
    buf.iter()
        .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
}

/// Parses a response and extracts what matching needs; anything less is an error.
pub fn parse_response(buf: &[u8]) -> Result<Response, ParseError> {
    let msg = parse_message(buf)?;
    let (status, reason) = match &msg.start {
        StartLine::Response { status, reason } => (*status, reason.clone()),
        StartLine::Request { method, .. } => return Err(ParseError::NotAResponse(method.clone())),
    };
    let via_values = msg.values(&Name::VIA);
    if via_values.is_empty() {
        return Err(ParseError::MissingHeader("Via"));
    }
    let vias = typed_vias(&msg.headers);
    let (top_via, via_count) = match vias {
        Some((top, count)) => (top, count),
        None => {
            // ezk refused the Via; fall back to reading the first value by hand, so an odd but
            // readable Via does not turn a live server into a false outage.
            let first = via_values[0].as_str();
            let top = raw_via(first).ok_or_else(|| ParseError::BadHeader("Via", first.into()))?;
            (top, via_values.iter().map(|v| split_commas(v).len()).sum())
        }
    };
    let call_id = match msg.headers.try_get_named::<CallID>() {
        Some(Ok(id)) if !id.0.trim().is_empty() => id.0.trim().to_string(),
        Some(_) => return Err(ParseError::BadHeader("Call-ID", first(&msg, Name::CALL_ID))),
        None => return Err(ParseError::MissingHeader("Call-ID")),
    };
    let raw_cseq = first(&msg, Name::CSEQ);
    let (cseq, cseq_method) = match msg.headers.try_get_named::<CSeq>() {
        Some(Ok(c)) => {
            // ezk matches method names by prefix and case-insensitively; keep the exact token
            // (methods are case-sensitive, and "OPTIONSX" is not OPTIONS).
            let method = raw_cseq.split_whitespace().nth(1).unwrap_or_default();
            if method.is_empty() || !method.bytes().all(is_token_byte) {
                return Err(ParseError::BadHeader("CSeq", raw_cseq));
            }
            (c.cseq, method.to_string())
        }
        Some(Err(_)) => return Err(ParseError::BadHeader("CSeq", raw_cseq)),
        None => return Err(ParseError::MissingHeader("CSeq")),
    };
    // Only what a REGISTER flow reads, and only for the statuses that carry it, so the OPTIONS
    // hot path pays nothing for it.
    let challenges = match status {
        401 => msg.values(&Name::WWW_AUTHENTICATE),
        407 => msg.values(&Name::PROXY_AUTHENTICATE),
        _ => Vec::new(),
    };
    let min_expires = if status == 423 {
        msg.values(&Name::MIN_EXPIRES)
            .first()
            .and_then(|v| v.trim().parse().ok())
    } else {
        None
    };
    let contacts = if (200..300).contains(&status) && cseq_method == "REGISTER" {
        msg.values(&Name::CONTACT)
            .iter()
            .flat_map(|v| split_commas(v))
            .map(str::to_string)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Response {
        status,
        reason,
        top_via,
        via_count,
        call_id,
        cseq,
        cseq_method,
        challenges,
        min_expires,
        contacts,
    })
}

/// Splits a message into start line and headers. Tolerant: LF or CRLF line ends, folded lines,
/// a missing final blank line (some UDP stacks), stray non-UTF-8 bytes (replaced).
pub fn parse_message(buf: &[u8]) -> Result<Message, ParseError> {
    if buf.len() > MAX_MESSAGE {
        return Err(ParseError::TooLarge(buf.len()));
    }
    let text = String::from_utf8_lossy(buf);
    let text = text.trim_start_matches(['\r', '\n', ' ', '\t']);
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let (head, body_len) = match find_head_end(text.as_bytes()) {
        Some((end, body_start)) => (&text[..end], text.len() - body_start),
        None => (text, 0),
    };
    let mut lines = unfold(head).into_iter();
    let first_line = lines.next().unwrap_or_default();
    let start = parse_start_line(first_line.trim_end())?;
    let mut headers = Headers::with_capacity(12);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue; // not a header line; a tolerant reader skips it
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            continue;
        }
        headers.insert(Name::from(name.to_string()), value.trim().to_string());
    }
    Ok(Message {
        start,
        headers,
        body_len,
    })
}

fn first(msg: &Message, name: Name) -> String {
    msg.headers
        .get_raw(&name)
        .next()
        .map(|v| v.as_str().to_string())
        .unwrap_or_default()
}

fn typed_vias(headers: &Headers) -> Option<(ViaInfo, usize)> {
    let vias: Vec<Via> = headers.get_named::<Vec<Via>>().ok()?;
    let top = vias.first()?;
    let param = |name: &str| {
        top.params
            .get_val(name)
            .map(|v| v.as_str().trim_matches('"').to_string())
    };
    let branch = param("branch");
    // A branch that ezk's parameter grammar swallowed oddly: trust the raw text instead.
    branch.as_ref()?;
    Some((
        ViaInfo {
            transport: top.transport.as_str().to_string(),
            sent_by: match top.sent_by.port {
                Some(port) => format!("{}:{port}", top.sent_by.host),
                None => top.sent_by.host.to_string(),
            },
            branch,
            received: param("received"),
            rport: param("rport").and_then(|p| p.parse().ok()),
        },
        vias.len(),
    ))
}

/// Reads one Via value by hand: `SIP/2.0/UDP host[:port] *(;param[=value])`.
fn raw_via(value: &str) -> Option<ViaInfo> {
    let first = split_commas(value).into_iter().next()?;
    let mut parts = first.split(';');
    let proto = parts.next()?.trim();
    let (version, sent_by) = proto.split_once(char::is_whitespace)?;
    let transport = version
        .trim()
        .rsplit('/')
        .next()
        .filter(|t| !t.is_empty())?;
    if !version.trim().to_ascii_uppercase().starts_with("SIP/") {
        return None;
    }
    let mut via = ViaInfo {
        transport: transport.to_string(),
        sent_by: sent_by.trim().to_string(),
        ..ViaInfo::default()
    };
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"').to_string())),
            None => (param.trim(), None),
        };
        if name.eq_ignore_ascii_case("branch") {
            via.branch = value;
        } else if name.eq_ignore_ascii_case("received") {
            via.received = value;
        } else if name.eq_ignore_ascii_case("rport") {
            via.rport = value.and_then(|v| v.parse().ok());
        }
    }
    Some(via)
}

/// Splits a header value at commas outside quotes and brackets.
pub(crate) fn split_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut start) = (0i32, false, 0usize);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' | '[' if !quoted => depth += 1,
            '>' | ']' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// A request or status line; the status line read by `ezk-sip-types`, codes 100–699 only.
pub(crate) fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let shown = || line.chars().take(80).collect::<String>();
    if line
        .get(..7)
        .is_some_and(|v| v.eq_ignore_ascii_case("SIP/2.0"))
    {
        let status = StatusLine::from_str(line).map_err(|_| ParseError::BadStartLine(shown()))?;
        let code = status.code.into_u16();
        if !(100..=699).contains(&code) {
            return Err(ParseError::BadStatus(code));
        }
        return Ok(StartLine::Response {
            status: code,
            reason: status
                .reason
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
        });
    }
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(method), Some(uri), Some(version), None)
            if version.eq_ignore_ascii_case("SIP/2.0") && method.bytes().all(is_token_byte) =>
        {
            Ok(StartLine::Request {
                method: method.to_string(),
                uri: uri.to_string(),
            })
        }
        _ => Err(ParseError::BadStartLine(shown())),
    }
}

/// Where the head ends: `(end of head, start of body)`, for CRLFCRLF or LFLF.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// Physical lines joined into logical ones: a line starting with SP/HT continues the previous
/// (RFC 3261 §7.3.1); the line break and leading whitespace become one space.
pub(crate) fn unfold(head: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t'])
            && let Some(prev) = out.last_mut()
        {
            prev.push(' ');
            prev.push_str(line.trim_start());
            continue;
        }
        if !line.is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

use super::is_token_byte;

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "SIP/2.0 200 OK\r\n\
        Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-cp-1-abc;rport=5062;received=192.0.2.10\r\n\
        From: <sip:callpulse@192.0.2.10>;tag=8c1f\r\n\
        To: <sip:pbx1.example.net>;tag=99\r\n\
        Call-ID: 3b9d1f6e@192.0.2.10\r\n\
        CSeq: 7 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn parses_a_plain_200() {
        let r = parse_response(PLAIN.as_bytes()).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(r.top_via.branch.as_deref(), Some("z9hG4bK-cp-1-abc"));
        assert_eq!(r.top_via.transport, "UDP");
        assert_eq!(r.top_via.sent_by, "192.0.2.10:5062");
        assert_eq!(r.top_via.rport, Some(5062));
        assert_eq!(r.top_via.received.as_deref(), Some("192.0.2.10"));
        assert_eq!(r.via_count, 1);
        assert_eq!(r.call_id, "3b9d1f6e@192.0.2.10");
        assert_eq!((r.cseq, r.cseq_method.as_str()), (7, "OPTIONS"));
    }

    #[test]
    fn compact_headers_lf_only_and_reason_kept() {
        let msg = "SIP/2.0 486 Busy Here\n\
            v: SIP/2.0/TCP [2001:db8::10]:5061;branch=z9hG4bK-cp-2-x\n\
            f: <sip:a@b>;tag=1\n\
            t: <sip:c@d>\n\
            i: abc123\n\
            CSeq: 3 OPTIONS\n\
            l: 0\n\n";
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!((r.status, r.reason.as_str()), (486, "Busy Here"));
        assert_eq!(r.top_via.sent_by, "[2001:db8::10]:5061");
        assert_eq!(r.top_via.branch.as_deref(), Some("z9hG4bK-cp-2-x"));
        assert_eq!(r.call_id, "abc123");
    }

    #[test]
    fn folded_headers_and_comma_joined_vias() {
        let msg = "SIP/2.0 200 OK\r\n\
            Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-top,\r\n \
            SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK-two\r\n\
            Via: SIP/2.0/TCP [::1]:5070;branch=z9hG4bK-three\r\n\
            From: <sip:a@b>\r\n\t;tag=1\r\n\
            To: <sip:c@d>\r\n\
            Call-ID:\r\n   folded-call-id\r\n\
            CSeq: 1\r\n  OPTIONS\r\n\
            Content-Length: 0\r\n\r\n";
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!(r.top_via.branch.as_deref(), Some("z9hG4bK-top"));
        assert_eq!(r.via_count, 3);
        assert_eq!(r.call_id, "folded-call-id");
        assert_eq!(r.cseq, 1);
    }

    #[test]
    fn space_before_params_keeps_the_branch() {
        let msg = PLAIN.replace("192.0.2.10:5062;branch", "192.0.2.10:5062 ;branch");
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!(r.top_via.branch.as_deref(), Some("z9hG4bK-cp-1-abc"));
    }

    #[test]
    fn missing_blank_line_and_latin1_reason_are_tolerated() {
        let mut msg = PLAIN.trim_end().as_bytes().to_vec();
        let at = msg.windows(2).position(|w| w == b"OK").unwrap();
        msg.splice(at..at + 2, b"Tr\xe8s bien".iter().copied());
        let r = parse_response(&msg).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.reason.starts_with("Tr"));
    }

    #[test]
    fn refuses_what_cannot_be_matched() {
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (b"".to_vec(), ParseError::Empty),
            (b"\r\n\r\n".to_vec(), ParseError::Empty),
            (
                b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
                ParseError::BadStartLine("HTTP/1.1 200 OK".into()),
            ),
            (
                b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\n\r\n".to_vec(),
                ParseError::NotAResponse("OPTIONS".into()),
            ),
            (
                PLAIN.replace("200 OK", "999 Odd").into_bytes(),
                ParseError::BadStatus(999),
            ),
            (
                PLAIN.replace("200 OK", "20 OK").into_bytes(),
                ParseError::BadStatus(20),
            ),
            (
                PLAIN.replace("Call-ID", "X-Call-ID").into_bytes(),
                ParseError::MissingHeader("Call-ID"),
            ),
            (
                PLAIN.replace("CSeq: 7 OPTIONS", "X: y").into_bytes(),
                ParseError::MissingHeader("CSeq"),
            ),
            (
                PLAIN
                    .replace("CSeq: 7 OPTIONS", "CSeq: seven OPTIONS")
                    .into_bytes(),
                ParseError::BadHeader("CSeq", "seven OPTIONS".into()),
            ),
            (
                PLAIN.replace("CSeq: 7 OPTIONS", "CSeq: 7").into_bytes(),
                ParseError::BadHeader("CSeq", "7".into()),
            ),
            (
                PLAIN.replace("Via:", "X-Via:").into_bytes(),
                ParseError::MissingHeader("Via"),
            ),
            (
                vec![b'x'; MAX_MESSAGE + 1],
                ParseError::TooLarge(MAX_MESSAGE + 1),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_response(&input).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn cseq_method_is_kept_exactly() {
        for (written, kept) in [
            ("OPTIONSX", "OPTIONSX"),
            ("options", "options"),
            ("INVITE", "INVITE"),
        ] {
            let msg = PLAIN.replace("7 OPTIONS", &format!("7 {written}"));
            assert_eq!(parse_response(msg.as_bytes()).unwrap().cseq_method, kept);
        }
    }

    #[test]
    fn register_answers_keep_challenges_min_expires_and_contacts() {
        let reg = PLAIN.replace("7 OPTIONS", "7 REGISTER");
        let msg = reg.replace(
            "200 OK\r\n",
            "401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"1\", algorithm=SHA-256\r\n\
             WWW-Authenticate: Digest realm=\"a\", nonce=\"2\"\r\n",
        );
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!(r.challenges.len(), 2);
        assert!(r.challenges[0].contains("SHA-256"), "{:?}", r.challenges);
        let msg = reg.replace(
            "200 OK\r\n",
            "407 Proxy Authentication Required\r\nProxy-Authenticate: Digest realm=\"p\", nonce=\"3\"\r\n",
        );
        assert_eq!(parse_response(msg.as_bytes()).unwrap().challenges.len(), 1);
        let msg = reg.replace(
            "200 OK\r\n",
            "423 Interval Too Brief\r\nMin-Expires: 1800\r\n",
        );
        assert_eq!(
            parse_response(msg.as_bytes()).unwrap().min_expires,
            Some(1800)
        );
        let msg = reg.replace(
            "Content-Length",
            "m: <sip:a@10.0.0.1:5>;expires=60, <sip:a@10.0.0.2>;expires=30\r\nContent-Length",
        );
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!(
            r.contacts,
            [
                "<sip:a@10.0.0.1:5>;expires=60",
                "<sip:a@10.0.0.2>;expires=30"
            ]
        );
        // The OPTIONS path reads none of it.
        let r = parse_response(PLAIN.as_bytes()).unwrap();
        assert!(r.challenges.is_empty() && r.contacts.is_empty() && r.min_expires.is_none());
    }

    #[test]
    fn a_via_without_branch_parses_with_none() {
        let msg = PLAIN.replace(";branch=z9hG4bK-cp-1-abc", "");
        let r = parse_response(msg.as_bytes()).unwrap();
        assert_eq!(r.top_via.branch, None);
    }

    #[test]
    fn requests_parse_as_messages_for_the_responder() {
        let req = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5;branch=z9hG4bK1;rport\r\ni: x\r\nl: 0\r\n\r\n";
        let m = parse_message(req.as_bytes()).unwrap();
        assert_eq!(
            m.start,
            StartLine::Request {
                method: "OPTIONS".into(),
                uri: "sip:127.0.0.1".into()
            }
        );
        assert_eq!(m.values(&Name::VIA).len(), 1);
        assert_eq!(m.values(&Name::CALL_ID), ["x"]);
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(!is_keepalive(req.as_bytes()));
    }
}

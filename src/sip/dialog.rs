//! The SIP of one INVITE dialog (RFC 3261 §12–§15, §17.1.1, §9): a small tolerant reader for
//! every message a call can receive (responses with SDP bodies, and in-dialog requests — BYE,
//! re-INVITE, UPDATE — that must be answered), and the formatter for the call's requests (INVITE,
//! ACK, CANCEL, BYE) and its answers to in-dialog requests. Pure: the caller decides branches,
//! tags, CSeq numbers and bodies; nothing here reads a clock or a socket, and the reader never
//! panics on input (it runs in `probe::fuzzing`'s mutation test).

use std::net::SocketAddr;

use super::SipTransport;
use super::parse::{find_head_end, parse_start_line, split_commas, unfold};
use super::request::{angle, request_head};

pub use super::parse::StartLine;

/// One received message, headers in order under their long lower-case names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogMessage {
    /// Request or status line.
    pub start: StartLine,
    /// `(name, value)`: names in long lower-case form (`v` → `via`), values trimmed, folded
    /// lines joined.
    pub headers: Vec<(String, String)>,
    /// The body, `Content-Length` bytes of it (all that follows the head when absent).
    pub body: Vec<u8>,
}

/// Why a datagram is not a SIP message the call can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogParseError {
    /// No blank line after the head, or the head is not UTF-8.
    #[error("no complete head")]
    Head,
    /// The first line is neither a request nor a status line.
    #[error("bad start line")]
    StartLine,
    /// `Content-Length` is not a number or runs past the datagram.
    #[error("bad content-length")]
    ContentLength,
}

fn long_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "s" => "subject",
        other => return other.to_string(),
    }
    .to_string()
}

/// Reads one message (a UDP datagram), with the same head reader as the probes' responses
/// (`sip::parse`: LF or CRLF line ends, folded lines, a bodiless message without its final blank
/// line), then takes the body by `Content-Length`.
pub fn parse(buf: &[u8]) -> Result<DialogMessage, DialogParseError> {
    let (head_len, body_start) = find_head_end(buf).unwrap_or((buf.len(), buf.len()));
    let head = std::str::from_utf8(&buf[..head_len]).map_err(|_| DialogParseError::Head)?;
    let rest = buf.get(body_start..).unwrap_or_default();
    let mut lines = unfold(head).into_iter();
    let first = lines.next().ok_or(DialogParseError::StartLine)?;
    let start = parse_start_line(first.trim_end()).map_err(|_| DialogParseError::StartLine)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            Some((long_name(n), v.trim().to_string()))
        })
        .collect();
    let body = match headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v.parse::<usize>())
    {
        Some(Ok(n)) => rest.get(..n).ok_or(DialogParseError::ContentLength)?,
        Some(Err(_)) => return Err(DialogParseError::ContentLength),
        None => rest,
    };
    Ok(DialogMessage {
        start,
        headers,
        body: body.to_vec(),
    })
}

impl DialogMessage {
    /// The first value of a header (long lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-joined values split (except inside `<>` and quotes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| split_commas(v).into_iter().map(str::to_string))
            .collect()
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// `CSeq` as number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let (n, m) = self.header("cseq")?.split_once(char::is_whitespace)?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The top Via's `branch`.
    pub fn top_branch(&self) -> Option<String> {
        let via = self.all("via").into_iter().next()?;
        param(&via, "branch")
    }

    /// The `tag` of the To header.
    pub fn to_tag(&self) -> Option<String> {
        param(self.header("to")?, "tag")
    }

    /// The `tag` of the From header.
    pub fn from_tag(&self) -> Option<String> {
        param(self.header("from")?, "tag")
    }

    /// The remote target a 2xx to our INVITE sets (RFC 3261 §12.1.2): its Contact's URI, the
    /// Request-URI of the dialog's later requests (ACK, BYE). `None` when that is no URI at all
    /// (empty, or with a space or a control character, which a Request-URI never has, RFC 3261
    /// §25.1): it would make our ACK and BYE malformed, so they keep the original Request-URI.
    pub fn remote_target(&self) -> Option<String> {
        let uri = uri_of(self.header("contact")?);
        let usable = !uri.is_empty() && !uri.chars().any(|c| c.is_whitespace() || c.is_control());
        usable.then(|| uri.to_string())
    }

    /// The route set a 2xx to our INVITE sets (RFC 3261 §12.1.2): its Record-Route values,
    /// reversed.
    pub fn route_set(&self) -> Vec<String> {
        self.all("record-route").into_iter().rev().collect()
    }
}

/// A header parameter (`;name=value`) outside the `<…>` of a name-addr.
pub fn param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The URI of a name-addr or addr-spec (`"Bob" <sip:b@h>;tag=1` → `sip:b@h`).
pub fn uri_of(value: &str) -> &str {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value).trim(),
    }
}

/// One request of the call.
#[derive(Debug, Clone, Copy)]
pub struct DialogRequest<'a> {
    /// `INVITE`, `ACK`, `CANCEL`, `BYE`.
    pub method: &'a str,
    /// Request-URI.
    pub request_uri: &'a str,
    /// Via transport.
    pub transport: SipTransport,
    /// Via sent-by.
    pub sent_by: SocketAddr,
    /// Via branch.
    pub branch: &'a str,
    /// From URI and our tag.
    pub from: (&'a str, &'a str),
    /// To URI and the remote tag once the dialog has one.
    pub to: (&'a str, Option<&'a str>),
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number (method = `method`).
    pub cseq: u32,
    /// Contact URI (INVITE).
    pub contact: Option<&'a str>,
    /// `Route` values, in order (the dialog's route set).
    pub route: &'a [String],
    /// `(header, value)` of a digest answer.
    pub authorization: Option<(&'a str, &'a str)>,
    /// User-Agent value.
    pub user_agent: Option<&'a str>,
    /// Extra configured headers.
    pub extra: &'a [(String, String)],
    /// An `application/sdp` body.
    pub sdp: Option<&'a str>,
}

/// The request's bytes.
pub fn format_request(r: &DialogRequest<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(1024);
    request_head(
        &mut out,
        r.method,
        r.request_uri,
        r.transport,
        r.sent_by,
        r.branch,
    );
    for route in r.route {
        out.push_str(&format!("Route: {route}\r\n"));
    }
    out.push_str(&format!("From: {};tag={}\r\n", angle(r.from.0), r.from.1));
    match r.to.1 {
        Some(tag) => out.push_str(&format!("To: {};tag={tag}\r\n", angle(r.to.0))),
        None => out.push_str(&format!("To: {}\r\n", angle(r.to.0))),
    }
    out.push_str(&format!("Call-ID: {}\r\n", r.call_id));
    out.push_str(&format!("CSeq: {} {}\r\n", r.cseq, r.method));
    if let Some(contact) = r.contact {
        out.push_str(&format!("Contact: {}\r\n", angle(contact)));
    }
    if let Some((name, value)) = r.authorization {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if r.method == "INVITE" {
        out.push_str("Allow: INVITE, ACK, CANCEL, BYE, UPDATE, OPTIONS\r\n");
    }
    if let Some(ua) = r.user_agent {
        out.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    for (name, value) in r.extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    finish(&mut out, r.sdp);
    out.into_bytes()
}

fn finish(out: &mut String, sdp: Option<&str>) {
    match sdp {
        Some(body) => {
            out.push_str("Content-Type: application/sdp\r\n");
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            out.push_str(body);
        }
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
}

/// An answer to a received request (RFC 3261 §8.2.6): its Via, From, Call-ID and CSeq copied,
/// its To with `to_tag` added when it has none.
pub fn format_response(
    request: &DialogMessage,
    status: u16,
    reason: &str,
    to_tag: &str,
    contact: Option<&str>,
    sdp: Option<&str>,
) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status} {reason}\r\n");
    for via in request.headers.iter().filter(|(n, _)| n == "via") {
        out.push_str(&format!("Via: {}\r\n", via.1));
    }
    if let Some(from) = request.header("from") {
        out.push_str(&format!("From: {from}\r\n"));
    }
    if let Some(to) = request.header("to") {
        if param(to, "tag").is_some() {
            out.push_str(&format!("To: {to}\r\n"));
        } else {
            out.push_str(&format!("To: {to};tag={to_tag}\r\n"));
        }
    }
    if let Some(call_id) = request.header("call-id") {
        out.push_str(&format!("Call-ID: {call_id}\r\n"));
    }
    if let Some(cseq) = request.header("cseq") {
        out.push_str(&format!("CSeq: {cseq}\r\n"));
    }
    if let Some(contact) = contact {
        out.push_str(&format!("Contact: {}\r\n", angle(contact)));
    }
    finish(&mut out, sdp);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_200_with_sdp_compact_and_folded() {
        let sdp = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 6000 RTP/AVP 0\r\n";
        let msg = format!(
            "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a;rport=5060, SIP/2.0/UDP 10.0.0.1;branch=x\r\nf: <sip:a@b>;tag=111\r\nTo: \"Echo\"\r\n <sip:echo@h>;tag=222\r\ni: cid\r\nCSeq: 7 INVITE\r\nm: <sip:echo@127.0.0.1:5070;transport=udp>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nl: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let m = parse(msg.as_bytes()).unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(m.cseq(), Some((7, "INVITE")));
        assert_eq!(m.top_branch().as_deref(), Some("z9hG4bK-a"));
        assert_eq!(m.to_tag().as_deref(), Some("222"));
        assert_eq!(m.from_tag().as_deref(), Some("111"));
        assert_eq!(m.header("call-id"), Some("cid"));
        assert_eq!(
            uri_of(m.header("contact").unwrap()),
            "sip:echo@127.0.0.1:5070;transport=udp"
        );
        assert_eq!(m.all("record-route"), vec!["<sip:p1;lr>", "<sip:p2;lr>"]);
        assert_eq!(m.body, sdp.as_bytes());
    }

    #[test]
    fn answers_an_in_dialog_request() {
        let bye = b"BYE sip:cp@127.0.0.1:4000 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-b\nFrom: <sip:echo@h>;tag=222\nTo: <sip:cp@h>;tag=111\nCall-ID: cid\nCSeq: 2 BYE\nContent-Length: 0\n\n";
        let m = parse(bye).unwrap();
        assert_eq!(m.method(), Some("BYE"));
        let r = String::from_utf8(format_response(&m, 200, "OK", "999", None, None)).unwrap();
        assert!(
            r.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-b\r\n")
        );
        assert!(
            r.contains("To: <sip:cp@h>;tag=111\r\n"),
            "keeps the existing tag: {r}"
        );
        assert!(r.ends_with("CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"));
        let reinvite =
            parse(b"INVITE sip:x SIP/2.0\r\nTo: <sip:cp@h>\r\nCSeq: 3 INVITE\r\n\r\n").unwrap();
        let r = String::from_utf8(format_response(
            &reinvite,
            200,
            "OK",
            "999",
            Some("sip:cp@1.2.3.4:5"),
            Some("v=0\r\n"),
        ))
        .unwrap();
        assert!(
            r.contains("To: <sip:cp@h>;tag=999\r\n")
                && r.contains("Contact: <sip:cp@1.2.3.4:5>\r\n")
        );
        assert!(r.ends_with("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"));
    }

    #[test]
    fn formats_an_invite_with_its_body() {
        let sdp = "v=0\r\n";
        let bytes = format_request(&DialogRequest {
            method: "INVITE",
            request_uri: "sip:echo@127.0.0.1:5060",
            transport: SipTransport::Udp,
            sent_by: "127.0.0.1:4000".parse().unwrap(),
            branch: "z9hG4bK-cp-1-ab",
            from: ("sip:callpulse@127.0.0.1", "ft"),
            to: ("sip:echo@127.0.0.1:5060", None),
            call_id: "cid",
            cseq: 1,
            contact: Some("sip:callpulse@127.0.0.1:4000"),
            route: &[],
            authorization: None,
            user_agent: Some("callpulse/test"),
            extra: &[],
            sdp: Some(sdp),
        });
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("INVITE sip:echo@127.0.0.1:5060 SIP/2.0\r\n"));
        assert!(text.contains("\r\nTo: <sip:echo@127.0.0.1:5060>\r\n"));
        assert!(
            text.ends_with("Content-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n")
        );
        let back = parse(&bytes).unwrap();
        assert_eq!(back.method(), Some("INVITE"));
        assert_eq!(back.body, sdp.as_bytes());
    }

    /// Found by the `sip_dialog` fuzz target: a 2xx whose Contact URI has a space became the
    /// Request-URI of our ACK and BYE (`ACK sip:uas@127.0.0.1:507 OPT0 SIP/2.0`), which no peer
    /// (nor our own reader) can parse.
    #[test]
    fn a_contact_that_is_no_uri_sets_no_remote_target() {
        let crash = b"SIP/2.0 200 OK\nv: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-cp-1-fuzz;rport=5062;received=127.0.0.1\nFrom: <sip:callpulse@127.0.0.1>;tag=1\nTo: <sip:127.0.0.1>;tag=2\ni: fuzz\nSIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a\n-call\nCSeq: 1 CSeq: 1INVITE\nContact: <sip:uas@127.0.0.1:507 OPT0>\n\nIONS\nl: 0\n\n";
        let m = parse(crash).unwrap();
        assert_eq!(m.remote_target(), None);
        for (contact, want) in [
            (
                "<sip:uas@127.0.0.1:5070;transport=udp>",
                Some("sip:uas@127.0.0.1:5070;transport=udp"),
            ),
            ("\"Echo\" <sip:echo@h>;expires=60", Some("sip:echo@h")),
            ("sip:bare@h;q=1", Some("sip:bare@h")),
            ("<>", None),
            ("<sip:a\tb@h>", None),
            ("<sip:a\rb@h>", None),
        ] {
            let msg = format!("SIP/2.0 200 OK\r\nContact: {contact}\r\nl: 0\r\n\r\n");
            let m = parse(msg.as_bytes()).unwrap();
            assert_eq!(m.remote_target().as_deref(), want, "{contact:?}");
        }
    }

    /// Found by the `sip_dialog` fuzz target: a whitespace-only continuation line left a
    /// trailing space in the value it folded into (`From: &< 5 `), and one after an empty value
    /// a leading space — so a Call-ID followed by a blank continuation no longer matched ours.
    #[test]
    fn folded_values_stay_trimmed() {
        let crash = b"INVITE sip:callpulse@127.0.0.1:4000 SIP/2.0\r\nViLength: \n\t\t\t\t\ta: SIp127.0.0.1>;tag=untent-Length: 5\r\n\r\t\n\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\tP/2Required\r\nProxy-AuthenticateddddACK \r\nFrom: &< 5\r\n\r\t\n\t\t\t\t\r";
        let m = parse(crash).unwrap();
        assert_eq!(m.header("from"), Some("&< 5"));
        let m = parse(b"BYE sip:cp@h SIP/2.0\r\nCall-ID: abc\r\n \r\nSubject:\r\n\thello\r\n  world \r\nl: 0\r\n\r\n").unwrap();
        assert_eq!(m.header("call-id"), Some("abc"));
        assert_eq!(m.header("subject"), Some("hello world"));
        let answer = parse(&format_response(&m, 200, "OK", "t", None, None)).unwrap();
        assert_eq!(answer.header("call-id"), Some("abc"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"\xff\xff\r\n\r\n",
            b"HELLO\r\n\r\n",
            b"SIP/2.0 99 x\r\n\r\n",
            b"SIP/2.0 200 OK\r\nl: 10\r\n\r\nabc",
            b"SIP/2.0 200 OK\r\nl: x\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}

//! Formats out-of-dialog requests (RFC 3261 §8.1.1) from fully decided fields: the caller picks
//! branch, tags, Call-ID and CSeq (so this stays pure and testable byte for byte), this module
//! only lays them out in the fixed order the probe documentation shows. Used for REGISTER
//! (RFC 3261 §10.2) and OPTIONS (§11.1, via `probe::message::RequestFactory`).

use std::net::SocketAddr;

use super::SipTransport;

/// Everything one request carries.
#[derive(Debug, Clone, Copy)]
pub struct OutRequest<'a> {
    /// Method (`REGISTER`).
    pub method: &'a str,
    /// Request-URI, as on the request line.
    pub request_uri: &'a str,
    /// Transport named in the Via.
    pub transport: SipTransport,
    /// Via sent-by: our address as the peer should see it.
    pub sent_by: SocketAddr,
    /// Via branch (starts with `z9hG4bK`).
    pub branch: &'a str,
    /// From URI.
    pub from: &'a str,
    /// From tag.
    pub from_tag: &'a str,
    /// To URI (no tag: out of dialog).
    pub to: &'a str,
    /// Call-ID.
    pub call_id: &'a str,
    /// CSeq number.
    pub cseq: u32,
    /// Contact URI, when the method needs one.
    pub contact: Option<&'a str>,
    /// `Expires` header value.
    pub expires: Option<u32>,
    /// `(header name, value)` of a digest answer.
    pub authorization: Option<(&'a str, &'a str)>,
    /// `Accept` value (OPTIONS: `application/sdp`, RFC 3261 §11.1).
    pub accept: Option<&'a str>,
    /// User-Agent value, unless the extra headers carry one.
    pub user_agent: Option<&'a str>,
    /// Extra headers, in order (already checked by the caller).
    pub extra: &'a [(String, String)],
}

/// `host` of an address for Via and Contact: IPv6 in brackets.
pub fn host_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    }
}

/// `<uri>` unless the value is already a name-addr.
pub fn angle(uri: &str) -> String {
    if uri.contains('<') {
        uri.to_string()
    } else {
        format!("<{uri}>")
    }
}

/// The request line, our Via (with `rport`, RFC 3581) and Max-Forwards: how every request we
/// send begins, in or out of a dialog.
pub(crate) fn request_head(
    out: &mut String,
    method: &str,
    request_uri: &str,
    transport: SipTransport,
    sent_by: SocketAddr,
    branch: &str,
) {
    out.push_str(&format!("{method} {request_uri} SIP/2.0\r\n"));
    out.push_str(&format!(
        "Via: SIP/2.0/{} {}:{};branch={branch};rport\r\n",
        transport.via_token(),
        host_of(sent_by),
        sent_by.port(),
    ));
    out.push_str("Max-Forwards: 70\r\n");
}

/// The request's bytes, `Content-Length: 0` and no body.
pub fn format_request(r: &OutRequest<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(640);
    request_head(
        &mut out,
        r.method,
        r.request_uri,
        r.transport,
        r.sent_by,
        r.branch,
    );
    out.push_str(&format!("From: {};tag={}\r\n", angle(r.from), r.from_tag));
    out.push_str(&format!("To: {}\r\n", angle(r.to)));
    out.push_str(&format!("Call-ID: {}\r\n", r.call_id));
    out.push_str(&format!("CSeq: {} {}\r\n", r.cseq, r.method));
    if let Some(contact) = r.contact {
        out.push_str(&format!("Contact: {}\r\n", angle(contact)));
    }
    if let Some(expires) = r.expires {
        out.push_str(&format!("Expires: {expires}\r\n"));
    }
    if let Some((name, value)) = r.authorization {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(accept) = r.accept {
        out.push_str(&format!("Accept: {accept}\r\n"));
    }
    if let Some(ua) = r.user_agent {
        out.push_str(&format!("User-Agent: {ua}\r\n"));
    }
    for (name, value) in r.extra {
        out.push_str(&format!("{name}: {}\r\n", value.trim()));
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_a_register_byte_for_byte() {
        let req = OutRequest {
            method: "REGISTER",
            request_uri: "sip:example.net",
            transport: SipTransport::Tcp,
            sent_by: "[2001:db8::2]:5070".parse().unwrap(),
            branch: "z9hG4bK-cp-1-ab",
            from: "sip:alice@example.net",
            from_tag: "f1",
            to: "sip:alice@example.net",
            call_id: "c1",
            cseq: 2,
            contact: Some("sip:alice@[2001:db8::2]:5070;transport=tcp"),
            expires: Some(60),
            authorization: Some(("Authorization", "Digest username=\"alice\"")),
            accept: None,
            user_agent: Some("callpulse/test"),
            extra: &[("X-A".to_string(), " 1 ".to_string())],
        };
        let text = String::from_utf8(format_request(&req)).unwrap();
        assert_eq!(
            text,
            "REGISTER sip:example.net SIP/2.0\r\n\
             Via: SIP/2.0/TCP [2001:db8::2]:5070;branch=z9hG4bK-cp-1-ab;rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:alice@example.net>;tag=f1\r\n\
             To: <sip:alice@example.net>\r\n\
             Call-ID: c1\r\n\
             CSeq: 2 REGISTER\r\n\
             Contact: <sip:alice@[2001:db8::2]:5070;transport=tcp>\r\n\
             Expires: 60\r\n\
             Authorization: Digest username=\"alice\"\r\n\
             User-Agent: callpulse/test\r\n\
             X-A: 1\r\n\
             Content-Length: 0\r\n\r\n"
        );
    }
}

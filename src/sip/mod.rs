//! SIP protocol code without I/O: response parsing and stream framing, request formatting,
//! digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) and the few shared SIP types.
//!
//! `config` (to validate probe settings) and `probe` (to talk to targets) both use it, so it must
//! not import either of them, nor the engine: everything here takes its inputs as arguments —
//! including randomness (cnonces, tags) and time — and is tested with fixed vectors.

pub mod dialog;
pub mod digest;
pub mod framing;
pub mod parse;
pub mod request;
pub mod sdp;
pub mod uri;

/// SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SipTransport {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl SipTransport {
    /// The `network.transport` / URI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SipTransport::Udp => "udp",
            SipTransport::Tcp => "tcp",
            SipTransport::Tls => "tls",
        }
    }

    /// The Via transport token (`UDP`, `TCP`, `TLS`).
    pub fn via_token(self) -> &'static str {
        match self {
            SipTransport::Udp => "UDP",
            SipTransport::Tcp => "TCP",
            SipTransport::Tls => "TLS",
        }
    }
}

/// Headers a probe's `headers` may not set, because the prober owns them (long and compact
/// forms). Config refuses them at load time; the request formatter refuses them again.
pub const RESERVED_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "max-forwards",
    "content-length",
    "l",
];

/// A `token` byte of RFC 3261 §25.1 (header names, methods).
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

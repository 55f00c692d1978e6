//! SDP (RFC 4566) for the synthetic call's offer/answer (RFC 3264): the offer we send (one audio
//! m-line, one static payload type, our RTP socket's address and port) and the few facts we read
//! back from an answer (connection address, audio port, payload types, ptime). Pure; never panics
//! on input (the answer comes from the network, and the mutation test in `probe::fuzzing` feeds
//! it garbage).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A codec the call probe can offer: the static RTP/AVP payload types of RFC 3551 §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CallCodec {
    /// G.711 µ-law, payload type 0.
    #[default]
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
    /// G.722, payload type 9 (its RTP clock is 8000 Hz for historic reasons, RFC 3551 §4.5.2).
    G722,
}

impl CallCodec {
    /// Config spelling, and the name the `quality` codec table knows.
    pub fn as_str(self) -> &'static str {
        match self {
            CallCodec::Pcmu => "PCMU",
            CallCodec::Pcma => "PCMA",
            CallCodec::G722 => "G722",
        }
    }

    /// Parses the config spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<CallCodec> {
        match s.to_ascii_uppercase().as_str() {
            "PCMU" => Some(CallCodec::Pcmu),
            "PCMA" => Some(CallCodec::Pcma),
            "G722" => Some(CallCodec::G722),
            _ => None,
        }
    }

    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            CallCodec::Pcmu => 0,
            CallCodec::Pcma => 8,
            CallCodec::G722 => 9,
        }
    }

    /// RTP timestamp units per second.
    pub fn clock_rate(self) -> u32 {
        8000
    }

    /// Payload bytes per millisecond of audio (all three run at 64 kbit/s).
    pub fn bytes_per_ms(self) -> usize {
        8
    }

    /// One byte of encoded silence, so the peer plays nothing audible.
    pub fn silence_byte(self) -> u8 {
        match self {
            CallCodec::Pcmu => 0xFF,
            CallCodec::Pcma => 0xD5,
            CallCodec::G722 => 0x00,
        }
    }
}

/// Why an SDP answer cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// Not UTF-8 or no `v=0` first line.
    #[error("not an sdp body")]
    NotSdp,
    /// No `m=audio` line.
    #[error("no audio m-line")]
    NoAudio,
    /// The audio port is 0: the stream was rejected (RFC 3264 §6).
    #[error("audio stream rejected (port 0)")]
    Rejected,
    /// No usable `c=` line (session or media level).
    #[error("no usable connection address")]
    NoConnection,
    /// A field did not parse.
    #[error("bad {0} line")]
    Bad(&'static str),
}

/// What the call needs from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpAnswer {
    /// Where to send RTP.
    pub media: SocketAddr,
    /// Payload types of the audio m-line, in order.
    pub payload_types: Vec<u8>,
    /// `a=ptime`, when given.
    pub ptime: Option<Duration>,
}

/// The offer: `session_id` is the o= id and version (RFC 4566 §5.2: unique per session; the
/// version must rise on a changed offer, and re-offers repeat the same one).
pub fn offer(session_id: u64, rtp: SocketAddr, codec: CallCodec, ptime: Duration) -> String {
    let (net, ip) = match rtp.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    let pt = codec.payload_type();
    let name = codec.as_str();
    format!(
        "v=0\r\n\
         o=callpulse {session_id} {session_id} IN {net} {ip}\r\n\
         s=callpulse\r\n\
         c=IN {net} {ip}\r\n\
         t=0 0\r\n\
         m=audio {port} RTP/AVP {pt}\r\n\
         a=rtpmap:{pt} {name}/{clock}\r\n\
         a=ptime:{ptime}\r\n\
         a=sendrecv\r\n",
        port = rtp.port(),
        clock = codec.clock_rate(),
        ptime = ptime.as_millis(),
    )
}

/// Reads an answer (or a re-offer): the first audio m-line, its `c=` (else the session's).
pub fn parse(body: &[u8]) -> Result<SdpAnswer, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotSdp)?;
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next().map(str::trim) != Some("v=0") {
        return Err(SdpError::NotSdp);
    }
    let mut session_c: Option<IpAddr> = None;
    let mut media_c: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut ptime = None;
    let mut in_audio = false;
    let mut seen_media = false;
    for line in lines {
        let Some((kind, value)) = line.split_once('=') else {
            continue;
        };
        match kind {
            "m" => {
                seen_media = true;
                // Only the first audio m-line counts; later ones are other streams.
                in_audio = audio.is_none() && value.starts_with("audio ");
                if in_audio {
                    let mut parts = value.split_ascii_whitespace().skip(1);
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or(SdpError::Bad("m="))?;
                    let _proto = parts.next().ok_or(SdpError::Bad("m="))?;
                    let pts = parts.filter_map(|p| p.parse::<u8>().ok()).collect();
                    audio = Some((port, pts));
                }
            }
            "c" => {
                let ip = connection(value)?;
                if !seen_media {
                    session_c = Some(ip);
                } else if in_audio {
                    media_c = Some(ip);
                }
            }
            "a" if in_audio => {
                if let Some(ms) = value.strip_prefix("ptime:") {
                    ptime = ms
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| *ms > 0 && *ms <= 1000)
                        .map(Duration::from_millis);
                }
            }
            _ => {}
        }
    }
    let (port, payload_types) = audio.ok_or(SdpError::NoAudio)?;
    if port == 0 {
        return Err(SdpError::Rejected);
    }
    let ip = media_c.or(session_c).ok_or(SdpError::NoConnection)?;
    Ok(SdpAnswer {
        media: SocketAddr::new(ip, port),
        payload_types,
        ptime,
    })
}

fn connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut parts = value.split_ascii_whitespace();
    if parts.next() != Some("IN") {
        return Err(SdpError::Bad("c="));
    }
    let _net = parts.next().ok_or(SdpError::Bad("c="))?;
    // Multicast answers carry `/ttl`; the address is what matters here.
    let addr = parts
        .next()
        .and_then(|a| a.split('/').next())
        .ok_or(SdpError::Bad("c="))?;
    addr.parse().map_err(|_| SdpError::NoConnection)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_round_trips_through_parse() {
        let rtp: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let body = offer(42, rtp, CallCodec::Pcma, Duration::from_millis(20));
        assert!(body.contains("m=audio 40000 RTP/AVP 8\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:8 PCMA/8000\r\n"));
        assert!(body.contains("c=IN IP4 192.0.2.10\r\n"));
        let a = parse(body.as_bytes()).unwrap();
        assert_eq!(a.media, rtp);
        assert_eq!(a.payload_types, vec![8]);
        assert_eq!(a.ptime, Some(Duration::from_millis(20)));
        let v6: SocketAddr = "[2001:db8::1]:5004".parse().unwrap();
        let a = parse(offer(1, v6, CallCodec::G722, Duration::from_millis(30)).as_bytes()).unwrap();
        assert_eq!((a.media, a.payload_types), (v6, vec![9]));
    }

    #[test]
    fn answers_as_peers_write_them() {
        // SIPp's built-in uas: session-level c=, LF line ends, extra attributes.
        let sipp = "v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n";
        let a = parse(sipp.as_bytes()).unwrap();
        assert_eq!(a.media, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(a.ptime, None);
        // Media-level c= wins; video before audio is skipped; the first audio line counts.
        let multi = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 7000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\nm=audio 8000/2 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.2/127\r\na=ptime:30\r\nm=audio 9000 RTP/AVP 8\r\n";
        let a = parse(multi.as_bytes()).unwrap();
        assert_eq!(a.media, "10.0.0.2:8000".parse().unwrap());
        assert_eq!(a.payload_types, vec![0, 101]);
        assert_eq!(a.ptime, Some(Duration::from_millis(30)));
    }

    #[test]
    fn unusable_answers_are_errors() {
        let cases: &[(&[u8], SdpError)] = &[
            (b"", SdpError::NotSdp),
            (b"\xff\xfe", SdpError::NotSdp),
            (b"v=1\r\n", SdpError::NotSdp),
            (b"v=0\r\nc=IN IP4 1.2.3.4\r\n", SdpError::NoAudio),
            (
                b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n",
                SdpError::Rejected,
            ),
            (b"v=0\r\nm=audio 5 RTP/AVP 0\r\n", SdpError::NoConnection),
            (b"v=0\r\nm=audio x RTP/AVP 0\r\n", SdpError::Bad("m=")),
            (
                b"v=0\r\nc=XX\r\nm=audio 5 RTP/AVP 0\r\n",
                SdpError::Bad("c="),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(
                parse(body).as_ref(),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

//! The RTP fixed header (RFC 3550 §5.1) with CSRCs, the header extension (§5.3.1) and padding:
//! parsing borrowed from a datagram, and writing. Refuses what a receiver must not trust
//! (version ≠ 2, lengths past the end, padding larger than the payload) instead of panicking.

/// The fixed header size.
pub const FIXED_HEADER: usize = 12;

/// The header fields of one packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit (e.g. the first packet of a talkspurt).
    pub marker: bool,
    /// Payload type, 0..=127 (0 = PCMU, 8 = PCMA, dynamic 96..=127).
    pub payload_type: u8,
    /// Sequence number (wraps at 2^16).
    pub sequence: u16,
    /// RTP timestamp in the payload's clock rate (wraps at 2^32).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrc: Vec<u32>,
    /// Header extension: profile-defined 16 bits and the data (a multiple of 4 bytes).
    pub extension: Option<(u16, Vec<u8>)>,
}

/// A parsed packet borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The header.
    pub header: RtpHeader,
    /// The payload, padding removed.
    pub payload: &'a [u8],
    /// Padding bytes that followed the payload (0 without the P bit).
    pub padding: u8,
}

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its header says.
    #[error("rtp packet of {got} bytes, the header needs {need}")]
    TooShort {
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        got: usize,
    },
    /// Version other than 2.
    #[error("rtp version {0}, expected 2")]
    Version(u8),
    /// Padding count 0 or larger than what follows the header.
    #[error("rtp padding of {0} bytes does not fit the packet")]
    Padding(u8),
    /// More than 15 CSRCs or a payload type over 127 or extension data not in 32-bit words (write).
    #[error("rtp header field out of range: {0}")]
    Field(&'static str),
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let short = |need: usize| RtpError::TooShort {
            need,
            got: buf.len(),
        };
        if buf.len() < FIXED_HEADER {
            return Err(short(FIXED_HEADER));
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = usize::from(buf[0] & 0x0f);
        let word = |at: usize| u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
        let mut at = FIXED_HEADER + 4 * csrc_count;
        if buf.len() < at {
            return Err(short(at));
        }
        let csrc = (0..csrc_count)
            .map(|i| word(FIXED_HEADER + 4 * i))
            .collect();
        let extension = if has_extension {
            if buf.len() < at + 4 {
                return Err(short(at + 4));
            }
            let profile = u16::from_be_bytes([buf[at], buf[at + 1]]);
            let words = usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]]));
            let end = at + 4 + 4 * words;
            if buf.len() < end {
                return Err(short(end));
            }
            let data = buf[at + 4..end].to_vec();
            at = end;
            Some((profile, data))
        } else {
            None
        };
        let mut end = buf.len();
        let mut padding = 0;
        if has_padding {
            padding = buf[end - 1];
            if padding == 0 || usize::from(padding) > end - at {
                return Err(RtpError::Padding(padding));
            }
            end -= usize::from(padding);
        }
        Ok(RtpPacket {
            header: RtpHeader {
                marker: buf[1] & 0x80 != 0,
                payload_type: buf[1] & 0x7f,
                sequence: u16::from_be_bytes([buf[2], buf[3]]),
                timestamp: word(4),
                ssrc: word(8),
                csrc,
                extension,
            },
            payload: &buf[at..end],
            padding,
        })
    }
}

impl RtpHeader {
    /// Appends this header, `payload` and `padding` bytes of padding (0: none) to `out`.
    pub fn write(&self, payload: &[u8], padding: u8, out: &mut Vec<u8>) -> Result<(), RtpError> {
        if self.csrc.len() > 15 {
            return Err(RtpError::Field("more than 15 csrc"));
        }
        if self.payload_type > 127 {
            return Err(RtpError::Field("payload type over 127"));
        }
        let mut b0 = 0x80 | self.csrc.len() as u8;
        if padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrc {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, data)) = &self.extension {
            let words = u16::try_from(data.len() / 4)
                .ok()
                .filter(|_| data.len() % 4 == 0)
                .ok_or(RtpError::Field("extension data not in 32-bit words"))?;
            out.extend_from_slice(&profile.to_be_bytes());
            out.extend_from_slice(&words.to_be_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(payload);
        if padding > 0 {
            out.extend(std::iter::repeat_n(0, usize::from(padding) - 1));
            out.push(padding);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCMU packet byte for byte: V=2, M=1, PT=0, seq 0x1234, ts 0x000000a0, SSRC 0xdeadbeef.
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0x00, 0x00, 0x00, 0xa0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xfe, 0x7f,
        0x00,
    ];

    #[test]
    fn parses_a_pcmu_packet_exactly() {
        let p = RtpPacket::parse(&PCMU).unwrap();
        assert!(p.header.marker);
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.sequence, 0x1234);
        assert_eq!(p.header.timestamp, 160);
        assert_eq!(p.header.ssrc, 0xdead_beef);
        assert!(p.header.csrc.is_empty() && p.header.extension.is_none());
        assert_eq!(p.payload, &[0xff, 0xfe, 0x7f, 0x00]);
        let mut out = Vec::new();
        p.header.write(p.payload, 0, &mut out).unwrap();
        assert_eq!(out, PCMU);
    }

    #[test]
    fn csrc_extension_and_padding_round_trip() {
        let header = RtpHeader {
            marker: false,
            payload_type: 111,
            sequence: 65535,
            timestamp: u32::MAX,
            ssrc: 7,
            csrc: vec![1, 2],
            extension: Some((0xbede, vec![0x10, 0xaa, 0, 0])),
        };
        let mut out = Vec::new();
        header.write(b"opus", 3, &mut out).unwrap();
        assert_eq!(out.len(), 12 + 8 + 8 + 4 + 3);
        assert_eq!(out[0], 0x80 | 0x20 | 0x10 | 2);
        let p = RtpPacket::parse(&out).unwrap();
        assert_eq!(p.header, header);
        assert_eq!((p.payload, p.padding), (&b"opus"[..], 3));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let mut v1 = PCMU;
        v1[0] = 0x40;
        let mut csrc = PCMU;
        csrc[0] = 0x82; // two CSRCs need 20 bytes
        let mut ext = PCMU;
        ext[0] = 0x90; // extension header needs 16 + its words
        ext[14] = 0x00;
        ext[15] = 0x05;
        let mut pad = PCMU;
        pad[0] = 0xa0;
        pad[15] = 9; // 9 bytes of padding, 4 after the header
        let mut pad0 = PCMU;
        pad0[0] = 0xa0; // last byte 0: padding count 0
        for (bytes, want) in [
            (&PCMU[..11], RtpError::TooShort { need: 12, got: 11 }),
            (&v1[..], RtpError::Version(1)),
            (&csrc[..], RtpError::TooShort { need: 20, got: 16 }),
            (&ext[..], RtpError::TooShort { need: 36, got: 16 }),
            (&pad[..], RtpError::Padding(9)),
            (&pad0[..], RtpError::Padding(0)),
        ] {
            assert_eq!(RtpPacket::parse(bytes), Err(want));
        }
        let bad = RtpHeader {
            csrc: vec![0; 16],
            ..RtpHeader::default()
        };
        assert!(bad.write(&[], 0, &mut Vec::new()).is_err());
        let bad = RtpHeader {
            extension: Some((1, vec![1, 2, 3])),
            ..RtpHeader::default()
        };
        assert!(bad.write(&[], 0, &mut Vec::new()).is_err());
    }

    #[test]
    fn never_panics_on_truncations_and_flips() {
        let mut out = Vec::new();
        RtpHeader {
            csrc: vec![9],
            extension: Some((1, vec![0; 8])),
            ..RtpHeader::default()
        }
        .write(b"payload", 4, &mut out)
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(3550);
        for _ in 0..5000 {
            let mut b = out.clone();
            let i = rng.usize(..b.len());
            b[i] ^= 1 << rng.u8(..8);
            b.truncate(rng.usize(..=b.len()));
            let _ = RtpPacket::parse(&b);
        }
    }
}

//! Stream framing for SIP over TCP/TLS (RFC 3261 §18.3): a message is its head up to the blank
//! line plus exactly `Content-Length` (or compact `l:`) body bytes. Owns the byte buffer of one
//! connection; must not parse beyond the length header.

use crate::sip::parse::{MAX_MESSAGE, find_head_end};

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Head and body.
    pub bytes: Vec<u8>,
    /// The head had no Content-Length; we took the body as empty (RFC 3261 requires the header
    /// on streams, but a missing one on a bodiless reply should not turn into a false outage).
    pub length_missing: bool,
}

/// The stream cannot be read further: the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A Content-Length that is not a number, or two that disagree.
    #[error("invalid content-length {0:?}")]
    BadContentLength(String),
    /// Head or head + body bigger than any SIP message.
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// Accumulates stream bytes and cuts them into messages.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    failed: bool,
}

impl StreamFramer {
    /// An empty framer.
    pub fn new() -> StreamFramer {
        StreamFramer::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes held that do not form a whole message yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `None` when more bytes are needed. After an error the framer stays
    /// failed: a stream whose framing is lost cannot be resynchronised safely.
    pub fn next_frame(&mut self) -> Option<Result<Frame, FrameError>> {
        if self.failed {
            return None;
        }
        // RFC 5626 keep-alives (CRLF) between messages are skipped.
        let skip = self
            .buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return None;
        }
        let Some((head_end, body_start)) = find_head_end(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE {
                return Some(Err(self.fail(FrameError::TooLarge)));
            }
            return None;
        };
        let length = match content_length(&self.buf[..head_end]) {
            Ok(length) => length,
            Err(e) => return Some(Err(self.fail(e))),
        };
        let body = length.unwrap_or(0);
        let total = body_start.saturating_add(body);
        if total > MAX_MESSAGE {
            return Some(Err(self.fail(FrameError::TooLarge)));
        }
        if self.buf.len() < total {
            return None;
        }
        let bytes: Vec<u8> = self.buf.drain(..total).collect();
        Some(Ok(Frame {
            bytes,
            length_missing: length.is_none(),
        }))
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = true;
        self.buf.clear();
        e
    }
}

/// The Content-Length of a head (long or compact name, case-insensitive, folded values allowed).
fn content_length(head: &[u8]) -> Result<Option<usize>, FrameError> {
    let text = String::from_utf8_lossy(head);
    let mut found: Option<usize> = None;
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if !(name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l")) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.peek() {
            if next.starts_with([' ', '\t']) {
                value.push_str(next.trim());
                lines.next();
            } else {
                break;
            }
        }
        let n: usize = value
            .parse()
            .map_err(|_| FrameError::BadContentLength(value.clone()))?;
        if found.is_some_and(|f| f != n) {
            return Err(FrameError::BadContentLength(value));
        }
        found = Some(n);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"SIP/2.0 200 OK\r\nCall-ID: a\r\nContent-Length: 0\r\n\r\n";
    const B: &[u8] = b"SIP/2.0 200 OK\r\ni: b\r\nl: 5\r\n\r\nhello";

    fn frames(f: &mut StreamFramer) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(frame) = f.next_frame() {
            out.push(frame.unwrap().bytes);
        }
        out
    }

    #[test]
    fn split_reads_byte_by_byte() {
        let mut f = StreamFramer::new();
        let all = [A, B].concat();
        let mut got = Vec::new();
        for b in &all {
            f.push(&[*b]);
            got.extend(frames(&mut f));
        }
        assert_eq!(got, vec![A.to_vec(), B.to_vec()]);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn two_messages_in_one_read_and_keepalives_between() {
        let mut f = StreamFramer::new();
        f.push(&[b"\r\n\r\n", A, b"\r\n", B].concat());
        assert_eq!(frames(&mut f), vec![A.to_vec(), B.to_vec()]);
    }

    #[test]
    fn compact_length_counts_the_body_exactly() {
        let mut f = StreamFramer::new();
        f.push(&B[..B.len() - 1]);
        assert!(f.next_frame().is_none(), "body incomplete");
        f.push(&B[B.len() - 1..]);
        let frame = f.next_frame().unwrap().unwrap();
        assert!(frame.bytes.ends_with(b"hello"));
        assert!(!frame.length_missing);
    }

    #[test]
    fn lf_only_head_and_folded_length() {
        let msg = b"SIP/2.0 200 OK\nContent-Length:\n 3\n\nabc";
        let mut f = StreamFramer::new();
        f.push(msg);
        assert_eq!(frames(&mut f), vec![msg.to_vec()]);
    }

    #[test]
    fn missing_length_takes_an_empty_body_and_keeps_going() {
        let bare = b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n";
        let mut f = StreamFramer::new();
        f.push(&[&bare[..], A].concat());
        let first = f.next_frame().unwrap().unwrap();
        assert!(first.length_missing);
        assert_eq!(first.bytes, bare.to_vec());
        let second = f.next_frame().unwrap().unwrap();
        assert_eq!(second.bytes, A.to_vec());
    }

    #[test]
    fn bad_or_conflicting_length_fails_the_stream() {
        for head in [
            &b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n"[..],
            &b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nxx"[..],
            &b"SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"[..],
        ] {
            let mut f = StreamFramer::new();
            f.push(head);
            assert!(matches!(
                f.next_frame(),
                Some(Err(FrameError::BadContentLength(_)))
            ));
            f.push(A);
            assert!(f.next_frame().is_none(), "a failed framer stays failed");
        }
    }

    #[test]
    fn oversized_heads_and_bodies_fail() {
        let mut f = StreamFramer::new();
        f.push(&vec![b'a'; MAX_MESSAGE + 1]);
        assert_eq!(f.next_frame(), Some(Err(FrameError::TooLarge)));
        let mut f = StreamFramer::new();
        f.push(b"SIP/2.0 200 OK\r\nl: 70000\r\n\r\n");
        assert_eq!(f.next_frame(), Some(Err(FrameError::TooLarge)));
    }
}

//! Size limits: reading a request body and gunzipping it without ever holding more than the
//! configured maximum, and how many requests may be in memory at once.
//!
//! Pure byte handling: no statuses, no OTLP types.

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt;

/// Memory the receiver may hold in request bodies at once, before decoding.
const IN_FLIGHT_BUDGET: usize = 64 << 20;

/// How many requests may be read and decoded at once: enough to keep both servers busy, few
/// enough that `permits × max_request_size` stays near [`IN_FLIGHT_BUDGET`] (4 MiB → 16).
pub(crate) fn max_in_flight(max_request_size: usize) -> usize {
    (IN_FLIGHT_BUDGET / max_request_size.max(1)).clamp(4, 64)
}

/// Longest a client may take to send its body once the request holds a permit.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the limit.
    TooLarge,
    /// The client was too slow.
    TimedOut,
    /// The connection failed mid-body.
    Broken(String),
}

/// Reads a whole body, refusing it as soon as it passes `limit` bytes. `size_hint` (the
/// Content-Length, already checked against `limit`) sizes the buffer once.
pub(crate) async fn read_body<B>(
    body: &mut B,
    limit: usize,
    size_hint: Option<usize>,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut buf = BytesMut::with_capacity(size_hint.unwrap_or(16 << 10).min(limit));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(BodyError::TooLarge);
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(())) => Ok(buf.freeze()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::TimedOut),
    }
}

/// Reads and discards up to `limit` more bytes of a refused body (for at most `deadline`), so the
/// client finishes writing and reads the refusal instead of a connection reset.
pub(crate) async fn drain<B>(body: &mut B, limit: usize, deadline: Duration)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen = seen.saturating_add(data.len());
                if seen > limit {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(deadline, drain).await;
}

/// Why a gzip body was refused.
#[derive(Debug)]
pub(crate) enum GunzipError {
    /// Inflates to more than the limit.
    TooLarge,
    /// Not valid gzip.
    Corrupt(std::io::Error),
}

/// Inflates `compressed` (one or more gzip members), stopping as soon as the output would pass
/// `limit`: a gzip bomb costs at most `limit` bytes of memory, never its inflated size.
pub(crate) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, GunzipError> {
    let mut decoder = MultiGzDecoder::new(compressed);
    let mut out: Vec<u8> =
        Vec::with_capacity(compressed.len().saturating_mul(4).max(4096).min(limit));
    let mut chunk = vec![0u8; 32 << 10];
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(GunzipError::Corrupt(e)),
        };
        if out.len() + n > limit {
            return Err(GunzipError::TooLarge);
        }
        if out.capacity() - out.len() < n {
            // Grow by doubling, but never past the limit.
            let target = (out.capacity() * 2).min(limit).max(out.len() + n);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn in_flight_permits_follow_the_request_size() {
        assert_eq!(max_in_flight(4 << 20), 16);
        assert_eq!(max_in_flight(64 << 20), 4);
        assert_eq!(max_in_flight(1), 64);
        assert_eq!(max_in_flight(0), 64);
    }

    #[test]
    fn gunzip_round_trips_and_accepts_exactly_the_limit() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let out = gunzip(&gzip(&data), data.len()).unwrap();
        assert_eq!(out, data);
        assert!(out.capacity() <= data.len());
    }

    #[test]
    fn gunzip_stops_a_bomb_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 64 << 10);
        assert!(matches!(gunzip(&bomb, 1 << 20), Err(GunzipError::TooLarge)));
    }

    #[test]
    fn gunzip_reads_concatenated_members() {
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world"));
        assert_eq!(gunzip(&two, 100).unwrap(), b"hello world");
    }

    #[test]
    fn gunzip_refuses_garbage_and_truncation() {
        assert!(matches!(
            gunzip(b"not gzip at all", 100),
            Err(GunzipError::Corrupt(_))
        ));
        let z = gzip(&[7u8; 1000]);
        assert!(matches!(
            gunzip(&z[..z.len() / 2], 10_000),
            Err(GunzipError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn read_body_enforces_the_limit_across_chunks() {
        let chunks = || -> Vec<Result<Frame<Bytes>, std::convert::Infallible>> {
            (0..10)
                .map(|_| Ok(Frame::data(Bytes::from(vec![1u8; 100]))))
                .collect()
        };
        let mut body = StreamBody::new(tokio_stream::iter(chunks()));
        assert_eq!(
            read_body(&mut body, 999, None).await,
            Err(BodyError::TooLarge)
        );
        // What is left of a refused body can still be drained.
        drain(&mut body, 10_000, Duration::from_secs(1)).await;
        assert!(body.frame().await.is_none());
        let mut body = StreamBody::new(tokio_stream::iter(chunks()));
        assert_eq!(read_body(&mut body, 1000, None).await.unwrap().len(), 1000);
        let mut full = Full::new(Bytes::from_static(b"abc"));
        assert_eq!(&read_body(&mut full, 3, Some(3)).await.unwrap()[..], b"abc");
    }
}

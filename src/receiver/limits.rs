//! Limits on what a client can make the receiver hold: bytes of request bodies (one budget across
//! both servers), time to send a body, and inflating gzip without ever passing the size limit.
//!
//! Pure byte handling: no statuses, no OTLP types.
//!
//! Why a byte budget taken while the body arrives, and never waited for: a request that waits for
//! a slot before its body is read still has its body in flight, and on HTTP/2 that body holds
//! the connection's flow-control window, so the requests that do hold slots never get their
//! data; and a client that sends headers and then nothing would hold a slot for as long as it
//! likes. Charging the bytes actually received means a stalled request costs nothing, and
//! refusing at once when the budget is spent gives the client a retryable answer instead of a
//! queue.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use flate2::read::MultiGzDecoder;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::RefusalReason;

/// Memory the receiver may hold in request bodies at once, before decoding (at least two
/// requests of the largest size).
const IN_FLIGHT_BUDGET: usize = 64 << 20;

/// Least budget taken at a time. A body takes budget ahead of its data, doubling what it holds
/// (so a large body costs a few semaphore operations, not one per frame), but starts small: a
/// client trickling a byte at a time holds only this much.
const BUDGET_STEP: usize = 4 << 10;

/// Bytes of request bodies held at once, across both servers.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl Budget {
    /// A budget of [`IN_FLIGHT_BUDGET`], or two requests of `max_request_size` when that is more.
    pub(crate) fn new(max_request_size: usize) -> Budget {
        let total = IN_FLIGHT_BUDGET
            .max(max_request_size.saturating_mul(2))
            .min(u32::MAX as usize)
            .min(Semaphore::MAX_PERMITS);
        Budget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// `n` bytes of the budget now, or `None` when they are not free: the caller refuses with a
    /// retryable status instead of waiting (see the module doc).
    pub(crate) fn try_take(&self, n: usize) -> Option<OwnedSemaphorePermit> {
        let n = u32::try_from(n).ok()?;
        Arc::clone(&self.bytes).try_acquire_many_owned(n).ok()
    }

    /// Bytes not taken now.
    pub(crate) fn free(&self) -> usize {
        self.bytes.available_permits()
    }

    /// The whole budget.
    pub(crate) fn total(&self) -> usize {
        self.total
    }
}

/// How long a client may take to send a body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadlines {
    /// Longest wait for the next piece of the body: a client that stops sending is cut off this
    /// soon, whatever the total allows.
    pub(crate) idle: Duration,
    /// Longest the whole body may take: bounds a client trickling a byte at a time.
    pub(crate) total: Duration,
    /// Once shutdown starts, a body still arriving gets this much longer, then the request is
    /// refused (retryable) so shutdown never waits for a slow or stalled client.
    pub(crate) after_shutdown: Duration,
}

/// The deadlines both servers use.
pub(crate) const BODY_DEADLINES: BodyDeadlines = BodyDeadlines {
    idle: Duration::from_secs(10),
    total: Duration::from_secs(30),
    after_shutdown: Duration::from_secs(1),
};

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// More than the limit.
    TooLarge,
    /// The client was too slow (idle or total deadline).
    TimedOut,
    /// The byte budget is spent: retry later.
    OverBudget,
    /// Shutdown started and the body was still not complete.
    ShuttingDown,
    /// The connection failed mid-body.
    Broken(String),
}

impl BodyError {
    /// How the refusal is counted.
    pub(crate) fn reason(&self) -> RefusalReason {
        match self {
            BodyError::TooLarge => RefusalReason::TooLarge,
            BodyError::TimedOut => RefusalReason::BodyTimeout,
            BodyError::OverBudget => RefusalReason::OverBudget,
            BodyError::ShuttingDown => RefusalReason::ShuttingDown,
            BodyError::Broken(_) => RefusalReason::BadRequest,
        }
    }
}

/// A body read whole, with the budget it holds until dropped.
#[derive(Debug)]
pub(crate) struct ReadBody {
    /// The bytes.
    pub(crate) bytes: Bytes,
    /// Its share of the [`Budget`]; dropping it gives the bytes back.
    _held: Option<OwnedSemaphorePermit>,
}

impl ReadBody {
    /// Bytes of the budget this body holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self._held
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

/// Reads a whole body, refusing it as soon as it passes `limit` bytes, charging the bytes to
/// `budget` as they arrive (never before: a client that declares a large body and then stalls
/// holds nothing), under `deadlines`, and giving up shortly after `shutdown` fires. `size_hint`
/// (the Content-Length, already checked against `limit`) caps the buffer growth.
pub(crate) async fn read_body<B>(
    body: &mut B,
    limit: usize,
    size_hint: Option<usize>,
    budget: &Budget,
    deadlines: BodyDeadlines,
    shutdown: &CancellationToken,
) -> Result<ReadBody, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let cap = size_hint.unwrap_or(limit).min(limit);
    let mut held: Option<OwnedSemaphorePermit> = None;
    let mut buf = BytesMut::new();
    let deadline = Instant::now() + deadlines.total;
    let stop = async {
        shutdown.cancelled().await;
        tokio::time::sleep(deadlines.after_shutdown).await;
    };
    tokio::pin!(stop);
    loop {
        let wait_until = (Instant::now() + deadlines.idle).min(deadline);
        let frame = tokio::select! {
            biased;
            () = &mut stop => return Err(BodyError::ShuttingDown),
            frame = tokio::time::timeout_at(wait_until, body.frame()) => frame,
        };
        let frame = match frame {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(BodyError::Broken(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let need = buf.len() + data.len();
        if need > limit {
            return Err(BodyError::TooLarge);
        }
        let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        if need > have {
            // Take a step ahead (up to the declared length) and size the buffer to match, so
            // the memory held tracks the budget taken.
            let target = need.max(have.saturating_mul(2).max(BUDGET_STEP).min(cap));
            let more = budget
                .try_take(target - have)
                .ok_or(BodyError::OverBudget)?;
            match held.as_mut() {
                Some(h) => h.merge(more),
                None => held = Some(more),
            }
            buf.reserve(target - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    Ok(ReadBody {
        bytes: buf.freeze(),
        _held: held,
    })
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
    fn budget_holds_at_least_two_of_the_largest_requests() {
        assert_eq!(Budget::new(4 << 20).total(), 64 << 20);
        assert_eq!(Budget::new(64 << 20).total(), 128 << 20);
        assert_eq!(Budget::new(usize::MAX).total(), u32::MAX as usize);
        let b = Budget::new(1);
        let held = b.try_take(60 << 20).unwrap();
        assert!(b.try_take(8 << 20).is_none());
        drop(held);
        assert_eq!(b.free(), b.total());
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

    fn chunks(n: usize) -> Vec<Result<Frame<Bytes>, std::convert::Infallible>> {
        (0..n)
            .map(|_| Ok(Frame::data(Bytes::from(vec![1u8; 100]))))
            .collect()
    }

    async fn read<B>(body: &mut B, limit: usize, budget: &Budget) -> Result<ReadBody, BodyError>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let token = CancellationToken::new();
        read_body(body, limit, None, budget, BODY_DEADLINES, &token).await
    }

    #[tokio::test]
    async fn read_body_enforces_the_limit_across_chunks() {
        let budget = Budget::new(1);
        let mut body = StreamBody::new(tokio_stream::iter(chunks(10)));
        assert_eq!(
            read(&mut body, 999, &budget).await.unwrap_err(),
            BodyError::TooLarge
        );
        // What is left of a refused body can still be drained.
        drain(&mut body, 10_000, Duration::from_secs(1)).await;
        assert!(body.frame().await.is_none());
        assert_eq!(
            budget.free(),
            budget.total(),
            "a refused body gives its budget back"
        );
        let mut body = StreamBody::new(tokio_stream::iter(chunks(10)));
        let read_whole = read(&mut body, 1000, &budget).await.unwrap();
        assert_eq!(read_whole.bytes.len(), 1000);
        assert!(read_whole.held() >= 1000);
        assert_eq!(
            budget.free(),
            budget.total() - read_whole.held(),
            "held while in use"
        );
        drop(read_whole);
        assert_eq!(budget.free(), budget.total());
        let mut full = Full::new(Bytes::from_static(b"abc"));
        assert_eq!(
            &read(&mut full, 3, &budget).await.unwrap().bytes[..],
            b"abc"
        );
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_instead_of_waiting() {
        let budget = Budget::new(1);
        let _all = budget.try_take(budget.total()).unwrap();
        let mut body = StreamBody::new(tokio_stream::iter(chunks(1)));
        assert_eq!(
            read(&mut body, 1000, &budget).await.unwrap_err(),
            BodyError::OverBudget
        );
    }

    /// A body whose first piece arrives and then nothing more.
    fn stalled() -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let first = tokio_stream::iter(chunks(1));
        StreamBody::new(tokio_stream::StreamExt::chain(
            first,
            tokio_stream::pending(),
        ))
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_off_after_the_idle_deadline() {
        let budget = Budget::new(1);
        let started = Instant::now();
        let mut body = stalled();
        assert_eq!(
            read(&mut body, 1000, &budget).await.unwrap_err(),
            BodyError::TimedOut
        );
        assert_eq!(started.elapsed(), BODY_DEADLINES.idle);
        assert_eq!(budget.free(), budget.total());
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_cut_off_at_the_total_deadline() {
        let trickle =
            tokio_stream::StreamExt::throttle(
                tokio_stream::iter((0..1000).map(|_| {
                    Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from_static(b"x")))
                })),
                Duration::from_secs(5),
            );
        let mut body = StreamBody::new(Box::pin(trickle));
        let budget = Budget::new(1);
        let started = Instant::now();
        assert_eq!(
            read(&mut body, 10_000, &budget).await.unwrap_err(),
            BodyError::TimedOut
        );
        assert!(
            started.elapsed() <= BODY_DEADLINES.total,
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_gives_a_stalled_body_only_a_short_grace() {
        let budget = Budget::new(1);
        let token = CancellationToken::new();
        let mut body = stalled();
        let started = Instant::now();
        let read = read_body(&mut body, 1000, None, &budget, BODY_DEADLINES, &token);
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(read, cancel);
        assert_eq!(result.unwrap_err(), BodyError::ShuttingDown);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(2) + BODY_DEADLINES.after_shutdown
        );
    }
}

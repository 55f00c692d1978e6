//! What the native PBX inputs (AMI, ESL) share: the reconnect loop with jittered backoff, a
//! cancel-safe bounded framer, the per-input set of calls reported active (so calls that ended
//! while the socket was down are closed after the reconnect snapshot), and the hand-over to the
//! engine. Interprets no VoIP semantics beyond call ids: mapping is the presets' job.
//!
//! A PBX socket is back-pressured by TCP, so events go to the engine with `send().await`, never
//! dropped for a full queue. Every bad input (oversize, malformed, refused login, close mid-event,
//! silence) ends the session with a counted, logged reason and a reconnect; the task itself ends
//! only on the ingress cancellation token.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{NativeInputConfig, NativeKind, Preset};
use crate::engine::EngineInput;
use crate::event::{CallRecord, Direction, Disposition, EventMeta, VoipEvent, VoipEventKind};
use crate::stats::{InputError, InputStats, RecordOutcome, SelfStats};

/// Largest event, reply or snapshot accepted from a PBX. Real events are a few KiB (a
/// `CHANNEL_HANGUP_COMPLETE` with every variable some tens); anything past this is a broken or
/// hostile peer, and buffering it would let one socket take the sidecar's memory.
pub const MAX_FRAME_BYTES: usize = 512 * 1024;
/// Calls remembered per input for closing after a reconnect; the engine's TTL covers the rest.
pub const MAX_TRACKED_CALLS: usize = 50_000;
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A session that stayed up this long resets the backoff.
const STABLE: Duration = Duration::from_secs(60);

/// A connected byte stream (TCP or TLS).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why a session ended. Never carries the secret: login errors say only what the PBX answered.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// TCP connect (or name resolution) failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port` as configured.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS set-up or handshake failed.
    #[error("tls to {addr}: {reason}")]
    Tls {
        /// `host:port`.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    /// The PBX closed the connection.
    #[error("the pbx closed the connection{}", if *.mid_frame { " in the middle of an event" } else { "" })]
    Closed {
        /// Whether part of a frame had been read.
        mid_frame: bool,
    },
    /// A frame exceeded [`MAX_FRAME_BYTES`].
    #[error("a frame of more than {limit} bytes was refused")]
    Oversize {
        /// The limit.
        limit: usize,
    },
    /// The peer does not speak the protocol.
    #[error("protocol error: {0}")]
    Malformed(String),
    /// The PBX refused the credentials.
    #[error("login refused by the pbx: {0}")]
    LoginRefused(String),
    /// A reply did not come in time.
    #[error("no {what} reply within {timeout:?}")]
    Timeout {
        /// Which reply (`banner`, `login`, `snapshot`, `keep-alive`, …).
        what: &'static str,
        /// The deadline.
        timeout: Duration,
    },
}

impl NativeError {
    /// The counter reason.
    pub fn kind(&self) -> InputError {
        match self {
            NativeError::Connect { .. } | NativeError::Tls { .. } => InputError::Connect,
            NativeError::Io(_) | NativeError::Closed { .. } => InputError::Closed,
            NativeError::Oversize { .. } => InputError::Oversize,
            NativeError::Malformed(_) => InputError::Malformed,
            NativeError::LoginRefused(_) => InputError::LoginRefused,
            NativeError::Timeout { .. } => InputError::Timeout,
        }
    }
}

/// How a session ended without error.
pub(crate) enum Ended {
    /// Shutdown was asked, or the engine stopped.
    Stop,
}

/// Runs one input until `shutdown`: connect, log in, subscribe, snapshot, read; on any failure
/// count it, wait a jittered backoff (1 s doubling to 30 s) and start again.
pub async fn run(
    cfg: NativeInputConfig,
    tx: mpsc::Sender<EngineInput>,
    stats: Arc<SelfStats>,
    shutdown: CancellationToken,
) {
    let counters = stats.register_input(cfg.kind.as_str(), &cfg.name);
    let mut feed = Feed {
        pbx: cfg.name.clone(),
        preset: match cfg.kind {
            NativeKind::Ami => Preset::AsteriskAmi,
            NativeKind::Esl => Preset::FreeswitchEvent,
        },
        tx,
        stats: counters.clone(),
        queue: stats.clone(),
        active: ActiveCalls::new(MAX_TRACKED_CALLS),
        shutdown: shutdown.clone(),
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = Instant::now();
        let result = match cfg.kind {
            NativeKind::Ami => super::ami::session(&cfg, &mut feed).await,
            NativeKind::Esl => super::esl::session(&cfg, &mut feed).await,
        };
        counters.set_up(false);
        match result {
            Ok(Ended::Stop) => return,
            Err(e) => {
                if shutdown.is_cancelled() {
                    return;
                }
                counters.count_error(e.kind());
                warn!(
                    pbx = %cfg.name,
                    input = cfg.kind.as_str(),
                    reason = e.kind().as_str(),
                    error = %e,
                    "pbx input disconnected; reconnecting"
                );
            }
        }
        if started.elapsed() >= STABLE {
            backoff = BACKOFF_MIN;
        }
        let delay = jittered(backoff);
        debug!(pbx = %cfg.name, delay = ?delay, "pbx input waiting before reconnect");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `base` minus up to 20 %: many sidecars losing one PBX do not all come back on the same tick.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(1.0 - fastrand::f64() * 0.2)
}

/// Opens the TCP (or TLS) connection to the input's PBX within `reply_timeout`.
pub(crate) async fn connect(cfg: &NativeInputConfig) -> Result<Box<dyn Stream>, NativeError> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let connect_error = |source| NativeError::Connect {
        addr: addr.clone(),
        source,
    };
    let tcp = match tokio::time::timeout(
        cfg.reply_timeout,
        tokio::net::TcpStream::connect((cfg.host.as_str(), cfg.port)),
    )
    .await
    {
        Ok(r) => r.map_err(connect_error)?,
        Err(_) => {
            return Err(NativeError::Timeout {
                what: "connect",
                timeout: cfg.reply_timeout,
            });
        }
    };
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &cfg.tls else {
        return Ok(Box::new(tcp));
    };
    let tls_error = |reason: String| NativeError::Tls {
        addr: addr.clone(),
        reason,
    };
    let target = crate::probe::transport::tls_target(tls, &cfg.host)
        .map_err(|e| tls_error(e.to_string()))?;
    match tokio::time::timeout(
        cfg.reply_timeout,
        target.connector.connect(target.server_name, tcp),
    )
    .await
    {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(tls_error(e.to_string())),
        Err(_) => Err(NativeError::Timeout {
            what: "tls handshake",
            timeout: cfg.reply_timeout,
        }),
    }
}

/// Bytes read from the socket, cut into frames by the protocol module. Keeps partial input in
/// itself, so a read dropped by `select!` loses nothing.
pub(crate) struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub(crate) fn new() -> Self {
        Framer {
            buf: Vec::with_capacity(8192),
        }
    }

    /// Reads more bytes; a close is an error (mid-frame when bytes are pending). Cancel-safe.
    pub(crate) async fn fill(
        &mut self,
        io: &mut (impl AsyncRead + Unpin + ?Sized),
    ) -> Result<(), NativeError> {
        let mut chunk = [0u8; 16 * 1024];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(NativeError::Closed {
                mid_frame: !self.buf.iter().all(|b| b.is_ascii_whitespace()),
            });
        }
        self.push(&chunk[..n]);
        Ok(())
    }

    /// Appends bytes read from the socket (`fill`, and the fuzz hooks that split input at
    /// arbitrary points).
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The header block up to the first empty line (`\r\n\r\n` or `\n\n`), without it; `None`
    /// until one is complete. Leading blank lines are skipped.
    pub(crate) fn header_block(&mut self) -> Result<Option<String>, NativeError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        if skip > 0 {
            self.buf.drain(..skip);
        }
        match find_blank_line(&self.buf) {
            Some((end, sep)) => {
                let block: Vec<u8> = self.buf.drain(..end + sep).take(end).collect();
                Ok(Some(text(block)?))
            }
            None if self.buf.len() > MAX_FRAME_BYTES => Err(NativeError::Oversize {
                limit: MAX_FRAME_BYTES,
            }),
            None => Ok(None),
        }
    }

    /// One `\n`-ended line (the AMI banner), without its line end.
    pub(crate) fn line(&mut self) -> Result<Option<String>, NativeError> {
        match self.buf.iter().position(|b| *b == b'\n') {
            Some(end) => {
                let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
                Ok(Some(text(line)?.trim_end_matches('\r').to_owned()))
            }
            None if self.buf.len() > MAX_FRAME_BYTES => Err(NativeError::Oversize {
                limit: MAX_FRAME_BYTES,
            }),
            None => Ok(None),
        }
    }

    /// The next `len` bytes as text, once they are all there.
    pub(crate) fn body(&mut self, len: usize) -> Result<Option<String>, NativeError> {
        if len > MAX_FRAME_BYTES {
            return Err(NativeError::Oversize {
                limit: MAX_FRAME_BYTES,
            });
        }
        if self.buf.len() < len {
            return Ok(None);
        }
        let body: Vec<u8> = self.buf.drain(..len).collect();
        text(body).map(Some)
    }
}

fn text(bytes: Vec<u8>) -> Result<String, NativeError> {
    String::from_utf8(bytes).map_err(|_| NativeError::Malformed("a frame is not UTF-8".into()))
}

/// End of the first header block and the separator's length.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i + 1, 1));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i + 1, 2));
            }
        }
        i += 1;
    }
    None
}

/// `Key: Value` lines of a header block, in order (lines without a colon are skipped).
pub(crate) fn headers(block: &str) -> Vec<(&str, &str)> {
    block
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim_end_matches('\r').split_once(':')?;
            Some((k.trim(), v.strip_prefix(' ').unwrap_or(v)))
        })
        .collect()
}

/// The first value of `key` (any case).
pub(crate) fn header<'a>(h: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| *v)
}

/// Writes a whole command within `timeout`.
pub(crate) async fn write_all(
    io: &mut (impl AsyncWrite + Unpin + ?Sized),
    bytes: &[u8],
    timeout: Duration,
) -> Result<(), NativeError> {
    match tokio::time::timeout(timeout, async {
        io.write_all(bytes).await?;
        io.flush().await
    })
    .await
    {
        Ok(r) => r.map_err(NativeError::Io),
        Err(_) => Err(NativeError::Timeout {
            what: "write",
            timeout,
        }),
    }
}

/// A string attribute.
pub(crate) fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.to_owned())),
        }),
        ..Default::default()
    }
}

/// Calls this input has reported active, with whether they were answered: insertion-ordered and
/// capped, the oldest forgotten first.
pub(crate) struct ActiveCalls {
    calls: HashMap<String, bool>,
    order: VecDeque<String>,
    cap: usize,
}

impl ActiveCalls {
    pub(crate) fn new(cap: usize) -> Self {
        ActiveCalls {
            calls: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Follows the events going to the engine.
    pub(crate) fn observe(&mut self, events: &[VoipEvent]) {
        for e in events {
            match &e.kind {
                VoipEventKind::CallStart { call_id, .. } => self.start(call_id),
                VoipEventKind::CallAnswer { call_id, .. } => {
                    self.start(call_id);
                    if let Some(a) = self.calls.get_mut(call_id) {
                        *a = true;
                    }
                }
                VoipEventKind::CallEnd(r) | VoipEventKind::Cdr(r) => {
                    self.calls.remove(&r.call_id);
                }
                _ => {}
            }
        }
        // Ended calls leave stale ids in `order`; drop them once they dominate.
        if self.order.len() > 2 * self.calls.len() + 64 {
            let calls = &self.calls;
            self.order.retain(|id| calls.contains_key(id));
        }
    }

    fn start(&mut self, id: &str) {
        if self.calls.contains_key(id) {
            return;
        }
        while self.calls.len() >= self.cap {
            match self.order.pop_front() {
                Some(old) => {
                    self.calls.remove(&old);
                }
                None => break,
            }
        }
        self.calls.insert(id.to_owned(), false);
        self.order.push_back(id.to_owned());
    }

    /// How many calls are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }

    /// Call-end events for the calls held that the snapshot no longer lists: they ended while
    /// the socket was down. Answered ones end answered; others as cancelled (the caller gave
    /// up is the likeliest end of an unanswered call, and no cause is known).
    pub(crate) fn vanished(&self, pbx: &str, snapshot: &HashSet<String>) -> Vec<VoipEvent> {
        let mut ids: Vec<_> = self
            .calls
            .iter()
            .filter(|(id, _)| !snapshot.contains(*id))
            .collect();
        ids.sort();
        ids.into_iter()
            .map(|(id, answered)| VoipEvent {
                meta: EventMeta {
                    pbx: pbx.to_owned(),
                    time: None,
                },
                kind: VoipEventKind::CallEnd(CallRecord::new(
                    id.clone(),
                    if *answered {
                        Disposition::Answered
                    } else {
                        Disposition::Cancelled
                    },
                )),
            })
            .collect()
    }
}

/// A call's direction and trunk, as a preset routes it.
pub(crate) type Route = (Direction, Option<String>);

/// A call the snapshot lists, as start (and answer) events.
pub(crate) fn snapshot_call(
    pbx: &str,
    call_id: &str,
    answered: bool,
    route: Option<Route>,
    out: &mut Vec<VoipEvent>,
) {
    let meta = EventMeta {
        pbx: pbx.to_owned(),
        time: None,
    };
    let (direction, trunk) = route.unwrap_or((Direction::Unknown, None));
    out.push(VoipEvent {
        meta: meta.clone(),
        kind: VoipEventKind::CallStart {
            call_id: call_id.to_owned(),
            direction,
            trunk,
        },
    });
    if answered {
        out.push(VoipEvent {
            meta,
            kind: VoipEventKind::CallAnswer {
                call_id: call_id.to_owned(),
                post_dial_delay: None,
            },
        });
    }
}

/// Where a session's events go: the preset, the active-call set, the counters and the engine.
pub(crate) struct Feed {
    /// The PBX identity (`voip.pbx`).
    pub(crate) pbx: String,
    preset: Preset,
    tx: mpsc::Sender<EngineInput>,
    /// This input's counters.
    pub(crate) stats: Arc<InputStats>,
    /// The engine queue's event count, which the engine gives back as it takes a batch.
    queue: Arc<SelfStats>,
    /// Calls reported active.
    pub(crate) active: ActiveCalls,
    shutdown: CancellationToken,
}

impl Feed {
    /// Maps one native event (a record shaped as the preset reads it) and adds its events to
    /// `batch`; counts its outcome.
    pub(crate) fn map(&mut self, record: &LogRecord, batch: &mut Vec<VoipEvent>) {
        let n = crate::normalize::normalize_native(self.preset, &self.pbx, record);
        if let Some(why) = &n.first_invalid {
            debug!(pbx = %self.pbx, reason = %why, "pbx event invalid");
        }
        self.stats.count_events(RecordOutcome::Invalid, n.invalid);
        self.stats.count_events(RecordOutcome::Ignored, n.ignored);
        if !n.events.is_empty() {
            self.stats.count_events(RecordOutcome::Accepted, 1);
        }
        batch.extend(n.events);
    }

    /// Hands `batch` to the engine, waiting for room (TCP holds the PBX back meanwhile).
    pub(crate) async fn send(&mut self, batch: &mut Vec<VoipEvent>) -> Result<(), Ended> {
        if batch.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(batch);
        self.active.observe(&events);
        let n = events.len() as u64;
        // Counted in the queue's events like the receivers' batches (never refused: a PBX socket
        // waits instead), so the engine's give-back balances.
        self.queue.reserve_events(n, u64::MAX);
        let sent = tokio::select! {
            () = self.shutdown.cancelled() => Err(Ended::Stop),
            sent = self.tx.send(EngineInput::Events(events)) => sent.map_err(|_| Ended::Stop),
        };
        if sent.is_err() {
            self.queue.release_events(n);
        }
        sent
    }

    /// After the snapshot: reports the snapshot's calls and closes the ones that vanished.
    pub(crate) async fn apply_snapshot(
        &mut self,
        listed: HashSet<String>,
        mut starts: Vec<VoipEvent>,
    ) -> Result<(), Ended> {
        let mut ends = self.active.vanished(&self.pbx, &listed);
        info!(
            pbx = %self.pbx,
            active = listed.len(),
            closed = ends.len(),
            "pbx snapshot taken"
        );
        starts.append(&mut ends);
        self.send(&mut starts).await
    }

    /// The ingress cancellation token (sessions select on it while waiting).
    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// Sleeps until `at`, or forever.
pub(crate) async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The address a session reached, for logs.
pub(crate) fn describe(cfg: &NativeInputConfig) -> String {
    format!("{}:{}", cfg.host, cfg.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_jitter_stays_within_a_fifth_below_the_base() {
        for _ in 0..1000 {
            let d = jittered(BACKOFF_MAX);
            assert!(d <= BACKOFF_MAX && d >= BACKOFF_MAX.mul_f64(0.8), "{d:?}");
        }
    }

    #[test]
    fn blocks_split_on_either_blank_line() {
        let mut f = Framer::new();
        f.buf
            .extend_from_slice(b"\r\nEvent: A\r\nX: 1\r\n\r\nEvent: B\n\nEvent: C\r\n");
        assert_eq!(
            f.header_block().unwrap().as_deref(),
            Some("Event: A\r\nX: 1\r\n")
        );
        assert_eq!(f.header_block().unwrap().as_deref(), Some("Event: B\n"));
        assert_eq!(f.header_block().unwrap(), None);
        f.buf.extend(std::iter::repeat_n(b'x', MAX_FRAME_BYTES + 1));
        assert!(matches!(
            f.header_block(),
            Err(NativeError::Oversize { .. })
        ));
    }

    #[test]
    fn active_calls_are_capped_and_vanished_ones_close_by_answer_state() {
        let ev = |kind| VoipEvent {
            meta: EventMeta {
                pbx: "p".into(),
                time: None,
            },
            kind,
        };
        let start = |id: &str| {
            ev(VoipEventKind::CallStart {
                call_id: id.into(),
                direction: Direction::Unknown,
                trunk: None,
            })
        };
        let mut a = ActiveCalls::new(2);
        a.observe(&[
            start("a"),
            start("b"),
            ev(VoipEventKind::CallAnswer {
                call_id: "b".into(),
                post_dial_delay: None,
            }),
            start("c"),
        ]);
        assert_eq!(a.len(), 2, "the oldest is forgotten");
        let gone = a.vanished("p", &HashSet::new());
        let got: Vec<_> = gone
            .iter()
            .map(|e| match &e.kind {
                VoipEventKind::CallEnd(r) => (r.call_id.as_str(), r.disposition),
                _ => ("?", Disposition::Failed),
            })
            .collect();
        assert_eq!(
            got,
            [("b", Disposition::Answered), ("c", Disposition::Cancelled)]
        );
        a.observe(&[ev(VoipEventKind::CallEnd(CallRecord::new(
            "b",
            Disposition::Answered,
        )))]);
        assert_eq!(a.len(), 1);
    }
}

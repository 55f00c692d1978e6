//! The Asterisk Manager Interface client: banner, `Login` with an `Events:` class mask limited
//! to what the `asterisk_ami` preset maps, a `CoreShowChannels` snapshot, `Ping` keep-alives,
//! and every event block through the preset with the input's name as `voip.pbx`.
//!
//! Wire format (asterisk `main/manager.c`): `Key: Value\r\n` lines, blocks ended by an empty
//! line; actions carry an `ActionID` that the `Response` block (and a list's events) repeat.

use std::collections::{HashMap, HashSet};

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::time::Instant;
use tracing::{debug, info};

use super::native::{self, Ended, Feed, Framer, NativeError, Stream, header, headers};
use crate::config::NativeInputConfig;
use crate::event::{VoipEvent, VoipEventKind};

/// Event classes the preset maps: calls (`call`), registrations (`system`, `security`), queues
/// (`agent`) and RTCP (`reporting`). `cdr`, `dialplan`, `user` and the rest stay off the wire.
pub const EVENT_CLASSES: &str = "call,system,agent,security,reporting";

const LOGIN_ID: &str = "callpulse-login";
const SNAPSHOT_ID: &str = "callpulse-channels";
const PING_PREFIX: &str = "callpulse-ping-";

/// One session: connect, log in, snapshot, read until an error or shutdown.
pub(crate) async fn session(
    cfg: &NativeInputConfig,
    feed: &mut Feed,
) -> Result<Ended, NativeError> {
    let mut io = tokio::select! {
        () = feed.cancelled().cancelled() => return Ok(Ended::Stop),
        c = native::connect(cfg) => c?,
    };
    let mut framer = Framer::new();
    let timeout = cfg.reply_timeout;

    // Banner: one line, `Asterisk Call Manager/<version>`.
    let banner = wait_for(&mut io, &mut framer, timeout, "banner", Framer::line).await?;
    if !banner.starts_with("Asterisk Call Manager/") {
        return Err(NativeError::Malformed(format!(
            "unexpected banner {:?}",
            truncated(&banner)
        )));
    }

    // The secret is written here and nowhere else; it is never logged.
    let login = format!(
        "Action: Login\r\nActionID: {LOGIN_ID}\r\nUsername: {}\r\nSecret: {}\r\nEvents: {EVENT_CLASSES}\r\n\r\n",
        cfg.username.as_deref().unwrap_or_default(),
        cfg.secret.expose()
    );
    native::write_all(&mut io, login.as_bytes(), timeout).await?;
    let reply = wait_for(&mut io, &mut framer, timeout, "login", Framer::header_block).await?;
    let h = headers(&reply);
    match header(&h, "Response") {
        Some(r) if r.trim().eq_ignore_ascii_case("Success") => {}
        Some(_) => {
            let message = header(&h, "Message").unwrap_or("no message");
            return Err(NativeError::LoginRefused(truncated(message)));
        }
        None => {
            return Err(NativeError::Malformed(
                "the reply to Login has no Response".into(),
            ));
        }
    }
    info!(pbx = %feed.pbx, addr = %native::describe(cfg), banner = %banner, "ami logged in");

    let snapshot = format!("Action: CoreShowChannels\r\nActionID: {SNAPSHOT_ID}\r\n\r\n");
    native::write_all(&mut io, snapshot.as_bytes(), timeout).await?;

    let mut snap = Some(Snapshot {
        deadline: Instant::now() + timeout,
        listed: HashSet::new(),
        a_legs: HashMap::new(),
    });
    let mut next_ping = Instant::now() + cfg.keepalive;
    let mut ping: Option<(String, Instant)> = None;
    let mut pings = 0u64;
    let mut batch = Vec::new();
    loop {
        while let Some(block) = framer.header_block()? {
            let h = headers(&block);
            let action_id = header(&h, "ActionID").unwrap_or("");
            if let Some((id, _)) = &ping
                && action_id == id
            {
                ping = None;
                continue;
            }
            if action_id == SNAPSHOT_ID {
                if let Some(s) = snap.as_mut() {
                    match snapshot_block(&h, &feed.pbx, s) {
                        SnapshotStep::More => {}
                        SnapshotStep::Refused(why) => {
                            return Err(NativeError::Malformed(format!(
                                "CoreShowChannels refused: {}",
                                truncated(why)
                            )));
                        }
                        SnapshotStep::Done => {
                            if let Some(s) = snap.take() {
                                let (listed, events) = s.events(&feed.pbx);
                                if feed.send(&mut batch).await.is_err()
                                    || feed.apply_snapshot(listed, events).await.is_err()
                                {
                                    return Ok(Ended::Stop);
                                }
                                feed.stats.set_up(true);
                            }
                        }
                    }
                }
                continue;
            }
            if header(&h, "Event").is_none() {
                // A Response to nothing we sent, or a stray block: not an event.
                debug!(pbx = %feed.pbx, "ami block without Event ignored");
                continue;
            }
            feed.map(&record(&h), &mut batch);
        }
        match feed.send(&mut batch).await {
            Ok(()) => {}
            Err(Ended::Stop) => return Ok(Ended::Stop),
        }
        let ping_deadline = ping.as_ref().map(|(_, d)| *d);
        let snap_deadline = snap.as_ref().map(|s| s.deadline);
        tokio::select! {
            biased;
            () = feed.cancelled().cancelled() => return Ok(Ended::Stop),
            () = native::sleep_opt(ping_deadline) => {
                return Err(NativeError::Timeout { what: "keep-alive", timeout });
            }
            () = native::sleep_opt(snap_deadline) => {
                return Err(NativeError::Timeout { what: "snapshot", timeout });
            }
            () = tokio::time::sleep_until(next_ping), if ping.is_none() => {
                pings += 1;
                let id = format!("{PING_PREFIX}{pings}");
                let action = format!("Action: Ping\r\nActionID: {id}\r\n\r\n");
                native::write_all(&mut io, action.as_bytes(), timeout).await?;
                ping = Some((id, Instant::now() + timeout));
                next_ping = Instant::now() + cfg.keepalive;
            }
            r = framer.fill(&mut io) => r?,
        }
    }
}

/// Reads until `take` yields a frame, within `timeout`.
async fn wait_for<T>(
    io: &mut Box<dyn Stream>,
    framer: &mut Framer,
    timeout: std::time::Duration,
    what: &'static str,
    mut take: impl FnMut(&mut Framer) -> Result<Option<T>, NativeError>,
) -> Result<T, NativeError> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = take(framer)? {
            return Ok(t);
        }
        match tokio::time::timeout_at(deadline, framer.fill(io)).await {
            Ok(r) => r?,
            Err(_) => return Err(NativeError::Timeout { what, timeout }),
        }
    }
}

/// A snapshot being read: the calls listed (by `Linkedid`), and for those whose party-A
/// channel was listed, whether it is up and its route.
struct Snapshot {
    deadline: Instant,
    listed: HashSet<String>,
    a_legs: HashMap<String, (bool, Option<native::Route>)>,
}

impl Snapshot {
    /// Start (and answer) events for every call listed.
    fn events(mut self, pbx: &str) -> (HashSet<String>, Vec<VoipEvent>) {
        let mut ids: Vec<&String> = self.listed.iter().collect();
        ids.sort();
        let mut out = Vec::new();
        for id in ids {
            let (up, route) = self.a_legs.remove(id).unwrap_or((false, None));
            native::snapshot_call(pbx, id, up, route, &mut out);
        }
        (self.listed, out)
    }
}

enum SnapshotStep<'a> {
    More,
    Done,
    Refused(&'a str),
}

/// One block of the `CoreShowChannels` reply: the `Response`, a `CoreShowChannel` per channel,
/// `CoreShowChannelsComplete` at the end.
fn snapshot_block<'a>(h: &[(&'a str, &'a str)], pbx: &str, s: &mut Snapshot) -> SnapshotStep<'a> {
    if let Some(r) = header(h, "Response") {
        if r.trim().eq_ignore_ascii_case("Success") {
            return SnapshotStep::More;
        }
        return SnapshotStep::Refused(header(h, "Message").unwrap_or("no message"));
    }
    match header(h, "Event").map(str::trim) {
        Some("CoreShowChannel") => {
            let uid = header(h, "Uniqueid")
                .map(str::trim)
                .filter(|s| !s.is_empty());
            let lid = header(h, "Linkedid")
                .map(str::trim)
                .filter(|s| !s.is_empty());
            let Some(call_id) = lid.or(uid) else {
                return SnapshotStep::More;
            };
            s.listed.insert(call_id.to_owned());
            // Party A's channel (Uniqueid = Linkedid) tells whether the call is answered and,
            // routed the way the preset routes a Newchannel, its trunk and direction.
            if uid.is_none() || uid == lid {
                let up = header(h, "ChannelState").map(str::trim) == Some("6");
                let mut as_new = h.to_vec();
                if let Some(e) = as_new
                    .iter_mut()
                    .find(|(k, _)| k.eq_ignore_ascii_case("Event"))
                {
                    e.1 = "Newchannel";
                }
                let n = crate::normalize::normalize_native(
                    crate::config::Preset::AsteriskAmi,
                    pbx,
                    &record(&as_new),
                );
                let route = n.events.into_iter().find_map(|e| match e.kind {
                    VoipEventKind::CallStart {
                        direction, trunk, ..
                    } => Some((direction, trunk)),
                    _ => None,
                });
                s.a_legs.insert(call_id.to_owned(), (up, route));
            }
            SnapshotStep::More
        }
        Some("CoreShowChannelsComplete") => SnapshotStep::Done,
        _ => SnapshotStep::More,
    }
}

/// An AMI block as the preset reads it: one string attribute per header line.
fn record(h: &[(&str, &str)]) -> LogRecord {
    LogRecord {
        attributes: h.iter().map(|(k, v)| native::kv(k, v)).collect(),
        ..Default::default()
    }
}

/// At most 200 characters of PBX-provided text for a message.
fn truncated(s: &str) -> String {
    s.trim().chars().take(200).collect()
}

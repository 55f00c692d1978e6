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

/// Fuzzing hook (`fuzz/fuzz_targets/ami.rs`): what a PBX sends, cut into `chunks` the way reads
/// deliver it, through what a session does with it — the banner line, the header blocks and
/// their `Key: Value` lines, the Login reply, the `CoreShowChannels` snapshot blocks and every
/// other event block through the `asterisk_ami` preset. Refusals are noted, not acted on, so
/// every block reaches the parsers. Returns a transcript (one line per frame and what came of
/// it, then the error that would end the session) for the target to check that where the bytes
/// were split changes nothing. Not part of the API.
#[doc(hidden)]
pub fn fuzz_session<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let pbx = "pbx-fuzz";
    let mut framer = Framer::new();
    let mut out = Vec::new();
    let mut banner = false;
    let mut logged_in = false;
    let mut snap = Some(Snapshot {
        deadline: Instant::now(),
        listed: HashSet::new(),
        a_legs: HashMap::new(),
    });
    for chunk in chunks {
        framer.push(chunk);
        let read = (|| -> Result<(), NativeError> {
            if !banner {
                let Some(line) = framer.line()? else {
                    return Ok(());
                };
                banner = true;
                let ok = line.starts_with("Asterisk Call Manager/");
                out.push(format!("banner {line:?} {ok}"));
            }
            while let Some(block) = framer.header_block()? {
                let h = headers(&block);
                out.push(format!("block {h:?}"));
                if !logged_in {
                    logged_in = true;
                    let ok = header(&h, "Response")
                        .is_some_and(|r| r.trim().eq_ignore_ascii_case("Success"));
                    out.push(format!("login {ok} {:?}", header(&h, "Message")));
                    continue;
                }
                if header(&h, "ActionID") == Some(SNAPSHOT_ID) {
                    let Some(s) = snap.as_mut() else { continue };
                    match snapshot_block(&h, pbx, s) {
                        SnapshotStep::More => {}
                        SnapshotStep::Refused(why) => out.push(format!("refused {why:?}")),
                        SnapshotStep::Done => {
                            if let Some(s) = snap.take() {
                                let (listed, events) = s.events(pbx);
                                assert!(
                                    events.len() >= listed.len()
                                        && events.len() <= 2 * listed.len(),
                                    "{} events for {} calls",
                                    events.len(),
                                    listed.len()
                                );
                                out.push(format!("snapshot {events:?}"));
                            }
                        }
                    }
                    continue;
                }
                if header(&h, "Event").is_none() {
                    continue;
                }
                let n = crate::normalize::normalize_native(
                    crate::config::Preset::AsteriskAmi,
                    pbx,
                    &record(&h),
                );
                assert!(n.events.len() <= 8, "{n:?}");
                assert_eq!(n.first_invalid.is_some(), n.invalid > 0, "{n:?}");
                out.push(format!("events {:?}", n.events));
            }
            Ok(())
        })();
        if let Err(e) = read {
            out.push(format!("error {e}"));
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz hook's own check on a real-shaped session: byte-by-byte reads give what one
    /// read gives, and the snapshot and events are reached.
    #[test]
    fn a_session_read_byte_by_byte_reads_as_in_one_read() {
        let wire = "Asterisk Call Manager/7.0.3\r\n\
            Response: Success\r\nActionID: callpulse-login\r\n\r\n\
            Response: Success\r\nActionID: callpulse-channels\r\n\r\n\
            Event: CoreShowChannel\r\nActionID: callpulse-channels\r\nChannel: PJSIP/a-1\r\nChannelState: 6\r\nContext: from-trunk\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n\r\n\
            Event: CoreShowChannelsComplete\r\nActionID: callpulse-channels\r\n\r\n\
            Event: Hangup\nChannel: PJSIP/a-1\nUniqueid: 1.1\nLinkedid: 1.1\nCause: 16\n\n\
            Event: Trunc";
        let whole = fuzz_session([wire.as_bytes()]);
        let bytes: Vec<&[u8]> = wire.as_bytes().chunks(1).collect();
        assert_eq!(fuzz_session(bytes), whole);
        assert!(whole[0].starts_with("banner") && whole[0].ends_with("true"));
        assert!(whole.iter().any(|l| l.starts_with("snapshot [")));
        assert_eq!(whole.iter().filter(|l| l.starts_with("events")).count(), 1);
        let bad = fuzz_session([&b"Asterisk Call Manager/1\r\nX: \xff\r\n\r\n"[..]]);
        assert!(
            bad.last().is_some_and(|l| l.contains("not UTF-8")),
            "{bad:?}"
        );
    }
}

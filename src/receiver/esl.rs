//! The FreeSWITCH event-socket client (inbound mode): `auth`, `event json` for the events the
//! `freeswitch_event` preset maps, an `api show channels as json` snapshot, `api status`
//! keep-alives, and every `text/event-json` event through the preset with the input's name as
//! `voip.pbx`.
//!
//! Wire format (freeswitch `mod_event_socket.c`): a header block ended by an empty line, then
//! `Content-Length` bytes of body when the headers name one. Commands end with `\n\n`; replies
//! come in order (`command/reply` for commands, `api/response` for `api`).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::time::Instant;
use tracing::{debug, info};

use super::native::{self, Ended, Feed, Framer, NativeError, Stream, header, headers};
use crate::config::NativeInputConfig;
use crate::event::VoipEvent;

/// The events the preset maps: A-leg call life, sofia registrations and gateways, mod_callcenter.
pub const SUBSCRIPTION: &str = "event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE \
     CUSTOM sofia::register sofia::register_failure sofia::unregister sofia::expire \
     sofia::gateway_state callcenter::info";

/// One frame: its headers and body.
struct Frame {
    head: String,
    body: Option<String>,
}

impl Frame {
    fn content_type(&self) -> String {
        header(&headers(&self.head), "Content-Type")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    fn reply_text(&self) -> String {
        header(&headers(&self.head), "Reply-Text")
            .unwrap_or("")
            .trim()
            .to_owned()
    }
}

/// Reads ESL frames; a header block whose body is still arriving is kept across reads.
struct Reader {
    framer: Framer,
    head: Option<(String, usize)>,
}

impl Reader {
    fn next(&mut self) -> Result<Option<Frame>, NativeError> {
        if self.head.is_none() {
            let Some(head) = self.framer.header_block()? else {
                return Ok(None);
            };
            let len = match header(&headers(&head), "Content-Length") {
                None => 0,
                Some(v) => v.trim().parse::<usize>().map_err(|_| {
                    NativeError::Malformed(format!("bad Content-Length {:?}", truncated(v)))
                })?,
            };
            if len > native::MAX_FRAME_BYTES {
                return Err(NativeError::Oversize {
                    limit: native::MAX_FRAME_BYTES,
                });
            }
            self.head = Some((head, len));
        }
        let Some((_, len)) = &self.head else {
            return Ok(None);
        };
        let body = if *len == 0 {
            None
        } else {
            match self.framer.body(*len)? {
                Some(b) => Some(b),
                None => return Ok(None),
            }
        };
        Ok(self.head.take().map(|(head, _)| Frame { head, body }))
    }

    async fn fill(&mut self, io: &mut Box<dyn Stream>) -> Result<(), NativeError> {
        let mid = self.head.is_some();
        match self.framer.fill(io).await {
            Err(NativeError::Closed { mid_frame }) => Err(NativeError::Closed {
                mid_frame: mid_frame || mid,
            }),
            r => r,
        }
    }

    async fn wait(
        &mut self,
        io: &mut Box<dyn Stream>,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Frame, NativeError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = self.next()? {
                return Ok(f);
            }
            match tokio::time::timeout_at(deadline, self.fill(io)).await {
                Ok(r) => r?,
                Err(_) => return Err(NativeError::Timeout { what, timeout }),
            }
        }
    }
}

/// What an outstanding `api` command was for (replies come in order).
enum Pending {
    Snapshot(Instant),
    Ping(Instant),
}

/// One session: connect, authenticate, subscribe, snapshot, read until an error or shutdown.
pub(crate) async fn session(
    cfg: &NativeInputConfig,
    feed: &mut Feed,
) -> Result<Ended, NativeError> {
    let mut io = tokio::select! {
        () = feed.cancelled().cancelled() => return Ok(Ended::Stop),
        c = native::connect(cfg) => c?,
    };
    let timeout = cfg.reply_timeout;
    let mut r = Reader {
        framer: Framer::new(),
        head: None,
    };

    let hello = r.wait(&mut io, timeout, "auth request").await?;
    if hello.content_type() != "auth/request" {
        return Err(NativeError::Malformed(format!(
            "expected auth/request, got {:?}",
            truncated(&hello.content_type())
        )));
    }
    // The password is written here and nowhere else; it is never logged.
    let auth = format!("auth {}\n\n", cfg.secret.expose());
    native::write_all(&mut io, auth.as_bytes(), timeout).await?;
    let reply = r.wait(&mut io, timeout, "auth").await?;
    let text = reply.reply_text();
    if !text.starts_with("+OK") {
        return Err(NativeError::LoginRefused(if text.is_empty() {
            format!("{:?}", truncated(&reply.content_type()))
        } else {
            truncated(&text)
        }));
    }
    native::write_all(&mut io, format!("{SUBSCRIPTION}\n\n").as_bytes(), timeout).await?;
    let reply = r.wait(&mut io, timeout, "event subscription").await?;
    let text = reply.reply_text();
    if !text.starts_with("+OK") {
        return Err(NativeError::Malformed(format!(
            "event subscription refused: {}",
            truncated(&text)
        )));
    }
    info!(pbx = %feed.pbx, addr = %native::describe(cfg), "esl authenticated and subscribed");

    native::write_all(&mut io, b"api show channels as json\n\n", timeout).await?;
    let mut pending: VecDeque<Pending> = VecDeque::new();
    pending.push_back(Pending::Snapshot(Instant::now() + timeout));
    let mut next_ping = Instant::now() + cfg.keepalive;
    let mut batch: Vec<VoipEvent> = Vec::new();
    loop {
        while let Some(frame) = r.next()? {
            match frame.content_type().as_str() {
                "text/event-json" => {
                    let body = frame.body.unwrap_or_default();
                    let record = LogRecord {
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(body)),
                        }),
                        ..Default::default()
                    };
                    feed.map(&record, &mut batch);
                }
                "api/response" => match pending.pop_front() {
                    Some(Pending::Snapshot(_)) => {
                        let (listed, starts) =
                            snapshot(&feed.pbx, frame.body.as_deref().unwrap_or(""))?;
                        if feed.send(&mut batch).await.is_err()
                            || feed.apply_snapshot(listed, starts).await.is_err()
                        {
                            return Ok(Ended::Stop);
                        }
                        feed.stats.set_up(true);
                    }
                    Some(Pending::Ping(_)) => {}
                    None => debug!(pbx = %feed.pbx, "esl api reply to nothing ignored"),
                },
                "text/disconnect-notice" | "text/rude-rejection" => {
                    return Err(NativeError::Closed { mid_frame: false });
                }
                other => debug!(pbx = %feed.pbx, content_type = other, "esl frame ignored"),
            }
        }
        if feed.send(&mut batch).await.is_err() {
            return Ok(Ended::Stop);
        }
        let reply_deadline = pending.front().map(|p| match p {
            Pending::Snapshot(d) | Pending::Ping(d) => *d,
        });
        let pinging = pending.iter().any(|p| matches!(p, Pending::Ping(_)));
        tokio::select! {
            biased;
            () = feed.cancelled().cancelled() => return Ok(Ended::Stop),
            () = native::sleep_opt(reply_deadline) => {
                let what = match pending.front() {
                    Some(Pending::Snapshot(_)) => "snapshot",
                    _ => "keep-alive",
                };
                return Err(NativeError::Timeout { what, timeout });
            }
            () = tokio::time::sleep_until(next_ping), if !pinging => {
                native::write_all(&mut io, b"api status\n\n", timeout).await?;
                pending.push_back(Pending::Ping(Instant::now() + timeout));
                next_ping = Instant::now() + cfg.keepalive;
            }
            res = r.fill(&mut io) => res?,
        }
    }
}

/// The calls `show channels as json` lists (`{"row_count":N,"rows":[…]}`; `{"row_count":0}`
/// when idle), as start/answer events of A-legs: call id `call_uuid` (the A-leg's uuid, as the
/// preset's `Channel-Call-UUID`), else `uuid`; answered when `callstate` is `ACTIVE` or `HELD`.
fn snapshot(pbx: &str, body: &str) -> Result<(HashSet<String>, Vec<VoipEvent>), NativeError> {
    let v: serde_json::Value = serde_json::from_str(body.trim()).map_err(|_| {
        NativeError::Malformed(format!(
            "show channels reply is not JSON: {:?}",
            truncated(body)
        ))
    })?;
    let rows = v
        .get("rows")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let field = |row: &serde_json::Value, k: &str| {
        row.get(k)
            .and_then(|x| x.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut listed = HashSet::new();
    let mut answered = std::collections::BTreeMap::new();
    for row in rows {
        let uuid = field(row, "uuid");
        let call = field(row, "call_uuid");
        let Some(id) = call.clone().or(uuid.clone()) else {
            continue;
        };
        listed.insert(id.clone());
        let a_leg = call.is_none() || call == uuid;
        let up = matches!(field(row, "callstate").as_deref(), Some("ACTIVE" | "HELD"));
        let e = answered.entry(id).or_insert(false);
        if a_leg || up {
            *e |= up;
        }
    }
    let mut out = Vec::new();
    for (id, up) in &answered {
        native::snapshot_call(pbx, id, *up, None, &mut out);
    }
    Ok((listed, out))
}

fn truncated(s: &str) -> String {
    s.trim().chars().take(200).collect()
}

/// Fuzzing hook (`fuzz/fuzz_targets/esl.rs`): what FreeSWITCH sends, cut into `chunks` the way
/// reads deliver it, through what a session does with it — header blocks, `Content-Length`
/// bodies kept across reads, `Content-Type` and `Reply-Text`, every `text/event-json` body
/// through the `freeswitch_event` preset and every `api/response` body as a `show channels`
/// snapshot. Returns a transcript (one line per frame and what came of it, then the error that
/// would end the session) for the target to check that where the bytes were split changes
/// nothing. Not part of the API.
#[doc(hidden)]
pub fn fuzz_session<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    let pbx = "pbx-fuzz";
    let mut r = Reader {
        framer: Framer::new(),
        head: None,
    };
    let mut out = Vec::new();
    for chunk in chunks {
        r.framer.push(chunk);
        loop {
            let frame = match r.next() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    out.push(format!("error {e}"));
                    return out;
                }
            };
            let content_type = frame.content_type();
            out.push(format!(
                "frame {content_type:?} {:?} {:?} {:?}",
                frame.reply_text(),
                frame.head,
                frame.body
            ));
            match content_type.as_str() {
                "text/event-json" => {
                    let record = LogRecord {
                        body: Some(AnyValue {
                            value: Some(Value::StringValue(frame.body.unwrap_or_default())),
                        }),
                        ..Default::default()
                    };
                    let n = crate::normalize::normalize_native(
                        crate::config::Preset::FreeswitchEvent,
                        pbx,
                        &record,
                    );
                    assert!(n.events.len() <= 8, "{n:?}");
                    assert_eq!(n.first_invalid.is_some(), n.invalid > 0, "{n:?}");
                    out.push(format!("events {:?}", n.events));
                }
                "api/response" => match snapshot(pbx, frame.body.as_deref().unwrap_or("")) {
                    Ok((listed, events)) => {
                        assert!(
                            events.len() >= listed.len() && events.len() <= 2 * listed.len(),
                            "{} events for {} calls",
                            events.len(),
                            listed.len()
                        );
                        out.push(format!("snapshot {events:?}"));
                    }
                    Err(e) => out.push(format!("snapshot error {e}")),
                },
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::VoipEventKind;

    #[test]
    fn snapshot_rows_group_legs_by_call_uuid() {
        let body = r#"{"row_count":3,"rows":[
            {"uuid":"a","call_uuid":"a","callstate":"ACTIVE"},
            {"uuid":"b","call_uuid":"a","callstate":"ACTIVE"},
            {"uuid":"c","call_uuid":"","callstate":"RINGING"}]}"#;
        let (listed, events) = snapshot("fs", body).unwrap();
        assert_eq!(listed.len(), 2);
        let kinds: Vec<_> = events
            .iter()
            .map(|e| match &e.kind {
                VoipEventKind::CallStart { call_id, .. } => format!("start {call_id}"),
                VoipEventKind::CallAnswer { call_id, .. } => format!("answer {call_id}"),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(kinds, ["start a", "answer a", "start c"]);
        assert!(snapshot("fs", r#"{"row_count":0}"#).unwrap().0.is_empty());
        assert!(snapshot("fs", "-ERR no").is_err());
    }

    /// The fuzz hook's own check on a real-shaped session: byte-by-byte reads give what one
    /// read gives, bodies are kept whole across reads, and a bad Content-Length ends it.
    #[test]
    fn a_session_read_byte_by_byte_reads_as_in_one_read() {
        let event = r#"{"Event-Name":"CHANNEL_CREATE","Unique-ID":"a","Channel-Call-UUID":"a","Call-Direction":"inbound"}"#;
        let rows = r#"{"row_count":1,"rows":[{"uuid":"a","call_uuid":"a","callstate":"ACTIVE"}]}"#;
        let wire = format!(
            "Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\n\
             Content-Type: api/response\nContent-Length: {}\n\n{rows}\
             Content-Length: {}\nContent-Type: text/event-json\n\n{event}\
             Content-Type: api/response\nContent-Length: x\n\n",
            rows.len(),
            event.len()
        );
        let whole = fuzz_session([wire.as_bytes()]);
        let bytes: Vec<&[u8]> = wire.as_bytes().chunks(1).collect();
        assert_eq!(fuzz_session(bytes), whole);
        assert_eq!(whole.iter().filter(|l| l.starts_with("frame")).count(), 4);
        assert!(whole.iter().any(|l| l.starts_with("snapshot [")));
        assert!(whole.iter().any(|l| l.starts_with("events [")));
        assert!(
            whole
                .last()
                .is_some_and(|l| l.contains("bad Content-Length")),
            "{whole:?}"
        );
    }
}

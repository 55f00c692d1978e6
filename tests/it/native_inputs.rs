//! Native PBX inputs (issue 13) against protocol peers written from the protocols' documentation:
//! an AMI server (banner, `Action`/`Response` blocks with `ActionID`, events ended by an empty
//! line) and a FreeSWITCH event socket (`auth/request`, `command/reply`, `api/response`,
//! `text/event-json` with `Content-Length`), on 127.0.0.1 port 0. The fixtures of
//! `tests/data/asterisk_ami/` and `tests/data/freeswitch_event/` are replayed on the wire, the
//! whole sidecar maps them with the same presets as OTLP records, and the derived metrics are
//! asserted at an in-process OTLP sink. Each peer scripts its connections one by one: a snapshot
//! on connect, a drop mid-event, an oversize frame, silence, a refused login.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpulse::clock::SystemClock;
use callpulse::config::{NativeInputConfig, NativeKind};
use callpulse::metrics::{Metric, label};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::fixtures::{data, lines};
use crate::support::otlp_sink::{OtlpSink, Point};
use crate::support::sidecar::{Sidecar, test_config};

const WAIT: Duration = Duration::from_secs(30);
const SECRET: &str = "s3cr3t-Am1-pa55";

/// What a peer does with one connection after the snapshot.
#[derive(Debug, Clone)]
enum Then {
    /// Writes these bytes, answers keep-alives and stays.
    Stay(Vec<u8>),
    /// Writes these bytes, then half an event, then closes.
    CloseMidEvent(Vec<u8>, Vec<u8>),
    /// Writes these bytes (a frame past the size limit), then waits to be dropped.
    Write(Vec<u8>),
    /// Answers nothing more.
    Silent,
    /// Writes these bytes, then answers nothing more.
    WriteThenSilent(Vec<u8>),
}

/// One scripted connection.
#[derive(Debug, Clone)]
struct Conn {
    /// Refuse the login (and close).
    refuse: bool,
    /// The snapshot reply (AMI blocks or the ESL JSON body).
    snapshot: String,
    then: Then,
}

/// What the peer saw, for assertions.
#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    /// Every action or command block received, in order.
    commands: Vec<String>,
}

/// Sums a counter's latest values per value of `by` among points matching `subset`.
fn sums_by(
    sink: &OtlpSink,
    name: &str,
    subset: &[(&str, &str)],
    by: &str,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let points: Vec<Point> = sink.points(name, subset);
    // Points are in arrival order; the latest per series wins (cumulative counters).
    let mut latest: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
    for p in points {
        let v = match p.value {
            crate::support::otlp_sink::PointValue::Sum { value, .. } => value,
            crate::support::otlp_sink::PointValue::Gauge(v) => v,
            _ => continue,
        };
        latest.insert(p.attrs.clone(), v);
    }
    for (attrs, v) in latest {
        *out.entry(attrs.get(by).cloned().unwrap_or_default())
            .or_insert(0.0) += v;
    }
    out
}

fn value(sink: &OtlpSink, name: &str, subset: &[(&str, &str)]) -> Option<f64> {
    sink.sum(name, subset).or_else(|| sink.gauge(name, subset))
}

fn input_cfg(kind: NativeKind, name: &str, port: u16) -> NativeInputConfig {
    let mut c = NativeInputConfig::new(kind, name, "127.0.0.1", SECRET);
    c.port = port;
    c.username = Some("callpulse".into());
    c.keepalive = Duration::from_millis(300);
    c.reply_timeout = Duration::from_millis(1500);
    c
}

async fn sidecar(inputs: Vec<NativeInputConfig>) -> (OtlpSink, Sidecar) {
    let (sink, _) = OtlpSink::start().await;
    let mut cfg = test_config(Some(sink.endpoint()));
    cfg.engine.trunks = vec!["carrier-a".into(), "carrier-b".into()];
    cfg.native_inputs = inputs;
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    (sink, car)
}

/// Sum of `voip.calls.active` for `pbx` in the engine's latest gauges.
fn active_calls(snap: &callpulse::engine::SharedSnapshot, pbx: &str) -> Option<f64> {
    let points: Vec<_> = snap
        .points
        .iter()
        .filter(|p| p.metric == Metric::CallsActive)
        .filter(|p| p.labels.iter().any(|(k, v)| *k == label::PBX && v == pbx))
        .collect();
    (!points.is_empty()).then(|| points.iter().map(|p| p.value).sum())
}

// ---------------------------------------------------------------------------------------------
// AMI peer

/// Reads one `\r\n\r\n`-ended block.
async fn read_block(r: &mut ReadHalf<TcpStream>, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let block: Vec<u8> = buf.drain(..i + 4).collect();
            return Some(String::from_utf8_lossy(&block).into_owned());
        }
        let mut chunk = [0u8; 4096];
        let n = r.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    block.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// An AMI server that plays `script`, one entry per accepted connection (the last repeats).
async fn ami_peer(script: Vec<Conn>) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        let mut i = 0;
        while let Ok((stream, _)) = listener.accept().await {
            let conn = script[i.min(script.len() - 1)].clone();
            i += 1;
            s.lock().unwrap().connections += 1;
            tokio::spawn(ami_conn(stream, conn, s.clone()));
        }
    });
    (port, seen)
}

async fn ami_conn(stream: TcpStream, conn: Conn, seen: Arc<Mutex<Seen>>) {
    let (mut r, mut w) = tokio::io::split(stream);
    let mut buf = Vec::new();
    w.write_all(b"Asterisk Call Manager/7.0.3\r\n")
        .await
        .unwrap();
    let Some(login) = read_block(&mut r, &mut buf).await else {
        return;
    };
    seen.lock().unwrap().commands.push(login.clone());
    let id = field(&login, "ActionID").unwrap_or("").to_owned();
    if conn.refuse {
        let reply =
            format!("Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n\r\n");
        let _ = w.write_all(reply.as_bytes()).await;
        let _ = w.shutdown().await;
        return;
    }
    let ok = format!(
        "Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    );
    w.write_all(ok.as_bytes()).await.unwrap();
    let Some(show) = read_block(&mut r, &mut buf).await else {
        return;
    };
    seen.lock().unwrap().commands.push(show.clone());
    assert_eq!(field(&show, "Action"), Some("CoreShowChannels"));
    let id = field(&show, "ActionID").unwrap_or("").to_owned();
    let items = conn.snapshot.matches("Event: CoreShowChannel\r\n").count();
    let snapshot = format!(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n{}Event: CoreShowChannelsComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: {items}\r\n\r\n",
        conn.snapshot
            .replace("ActionID: ?", &format!("ActionID: {id}"))
    );
    w.write_all(snapshot.as_bytes()).await.unwrap();
    let w = Arc::new(tokio::sync::Mutex::new(w));
    let answer = !matches!(conn.then, Then::Silent);
    let pong = w.clone();
    let seen2 = seen.clone();
    let reader = tokio::spawn(async move {
        while let Some(block) = read_block(&mut r, &mut buf).await {
            seen2.lock().unwrap().commands.push(block.clone());
            if answer && field(&block, "Action") == Some("Ping") {
                let id = field(&block, "ActionID").unwrap_or("");
                let reply = format!(
                    "Response: Success\r\nActionID: {id}\r\nPing: Pong\r\nTimestamp: 1741943800.000000\r\n\r\n"
                );
                let _ = pong.lock().await.write_all(reply.as_bytes()).await;
            }
        }
    });
    match conn.then {
        Then::Stay(bytes) | Then::Write(bytes) => {
            w.lock().await.write_all(&bytes).await.unwrap();
        }
        Then::CloseMidEvent(bytes, half) => {
            let mut w = w.lock().await;
            w.write_all(&bytes).await.unwrap();
            w.write_all(&half).await.unwrap();
            let _ = w.shutdown().await;
            reader.abort();
            return;
        }
        Then::Silent | Then::WriteThenSilent(_) => {}
    }
    let _ = reader.await;
}

/// The AMI fixture (`events.jsonl`, every value a string) on the wire: one block per event.
fn ami_wire() -> Vec<u8> {
    let mut out = String::new();
    for line in lines(&data("asterisk_ami/events.jsonl")) {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        for (k, v) in v {
            match v {
                serde_json::Value::String(s) => out.push_str(&format!("{k}: {s}\r\n")),
                serde_json::Value::Array(a) => {
                    for x in a {
                        out.push_str(&format!("{k}: {}\r\n", x.as_str().unwrap()));
                    }
                }
                other => out.push_str(&format!("{k}: {other}\r\n")),
            }
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// A `CoreShowChannel` block.
fn channel(chan: &str, state: u8, context: &str, uid: &str, lid: &str) -> String {
    let desc = match state {
        6 => "Up",
        4 => "Ring",
        _ => "Down",
    };
    format!(
        "Event: CoreShowChannel\r\nActionID: ?\r\nChannel: {chan}\r\nChannelState: {state}\r\nChannelStateDesc: {desc}\r\nCallerIDNum: 4155550123\r\nCallerIDName: <unknown>\r\nConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\nAccountCode: \r\nContext: {context}\r\nExten: 1001\r\nPriority: 1\r\nUniqueid: {uid}\r\nLinkedid: {lid}\r\nApplication: Dial\r\nApplicationData: PJSIP/1001\r\nDuration: 00:01:05\r\nBridgeId: \r\n\r\n"
    )
}

#[tokio::test]
async fn ami_snapshot_events_drop_oversize_silence_and_reconnects() {
    // Connection 1 lists an answered inbound call from carrier-a (party A and its B-leg) and a
    // ringing internal call, replays the 26 fixture events, then closes in the middle of an
    // event. Connection 2 lists only the internal call, so the carrier-a call ended while the
    // socket was down: it is closed as answered. Then it sends a block past the size limit.
    // Connection 3 goes silent (no Pong); connection 4 stays.
    let both = format!(
        "{}{}{}",
        channel(
            "PJSIP/carrier-a-00000001",
            6,
            "from-trunk",
            "snap.1",
            "snap.1"
        ),
        channel(
            "PJSIP/1001-00000002",
            6,
            "from-internal",
            "snap.2",
            "snap.1"
        ),
        channel(
            "PJSIP/1003-00000003",
            4,
            "from-internal",
            "snap.3",
            "snap.3"
        ),
    );
    let internal = channel(
        "PJSIP/1003-00000003",
        4,
        "from-internal",
        "snap.3",
        "snap.3",
    );
    let mut oversize = b"Event: VarSet\r\nValue: ".to_vec();
    oversize.extend(std::iter::repeat_n(b'x', 1 << 20));
    let script = vec![
        Conn {
            refuse: false,
            snapshot: both,
            then: Then::CloseMidEvent(
                ami_wire(),
                b"Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/1003-0000".to_vec(),
            ),
        },
        Conn {
            refuse: false,
            snapshot: internal.clone(),
            then: Then::Write(oversize),
        },
        Conn {
            refuse: false,
            snapshot: internal.clone(),
            then: Then::Silent,
        },
        Conn {
            refuse: false,
            snapshot: internal,
            then: Then::Stay(Vec::new()),
        },
    ];
    let (port, seen) = ami_peer(script).await;
    let (sink, mut car) = sidecar(vec![input_cfg(NativeKind::Ami, "ast-1", port)]).await;

    // Right after the first snapshot: the two listed calls are active.
    car.wait_for_gauges(WAIT, |s| active_calls(s, "ast-1").is_some())
        .await;
    let pbx = [(label::PBX, "ast-1")];
    sink.wait_until(WAIT, |s| {
        value(
            s,
            "callpulse.input.errors",
            &[(label::PBX, "ast-1"), (label::REASON, "timeout")],
        ) == Some(1.0)
            && value(s, "callpulse.input.up", &[(label::PBX, "ast-1")]) == Some(1.0)
            && seen.lock().unwrap().connections >= 4
    })
    .await;
    assert_eq!(
        seen.lock().unwrap().connections,
        4,
        "one connection per script entry"
    );

    // The login asked only for the classes the preset maps.
    let login = seen.lock().unwrap().commands[0].clone();
    assert_eq!(field(&login, "Action"), Some("Login"));
    assert_eq!(field(&login, "Username"), Some("callpulse"));
    assert_eq!(field(&login, "Secret"), Some(SECRET));
    assert_eq!(
        field(&login, "Events"),
        Some("call,system,agent,security,reporting")
    );
    let pings = seen
        .lock()
        .unwrap()
        .commands
        .iter()
        .filter(|c| field(c, "Action") == Some("Ping"))
        .count();
    assert!(pings >= 1, "keep-alives were sent");

    let errors = sums_by(&sink, "callpulse.input.errors", &pbx, label::REASON);
    assert_eq!(errors.get("closed"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("oversize"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("timeout"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("login_refused"), Some(&0.0), "{errors:?}");

    // The fixture's calls as over OTLP (presets_e2e), plus the vanished carrier-a call closed
    // as answered on its trunk; the ringing internal call is still active.
    let calls = |trunk: &str, dir: &str, disp: &str| {
        value(
            &sink,
            "voip.calls",
            &[
                (label::PBX, "ast-1"),
                (label::TRUNK, trunk),
                (label::DIRECTION, dir),
                (label::DISPOSITION, disp),
            ],
        )
    };
    sink.wait_until(WAIT, |s| {
        value(
            s,
            "voip.calls",
            &[(label::PBX, "ast-1"), (label::TRUNK, "carrier-a")],
        ) == Some(2.0)
    })
    .await;
    assert_eq!(calls("carrier-a", "inbound", "answered"), Some(2.0));
    assert_eq!(calls("none", "internal", "busy"), Some(1.0));
    let by_disposition = sums_by(&sink, "voip.calls", &pbx, label::DISPOSITION);
    assert_eq!(
        by_disposition,
        BTreeMap::from([("answered".into(), 2.0), ("busy".into(), 1.0)])
    );
    let registrations = |outcome: &str, kind: &str| {
        value(
            &sink,
            "voip.registration.attempts",
            &[
                (label::PBX, "ast-1"),
                (label::REGISTRATION_OUTCOME, outcome),
                (label::REGISTRATION_KIND, kind),
            ],
        )
    };
    assert_eq!(registrations("success", "trunk"), Some(1.0));
    assert_eq!(registrations("failure", "trunk"), Some(1.0));
    assert_eq!(registrations("success", "endpoint"), Some(1.0));
    assert_eq!(registrations("unregistered", "endpoint"), Some(1.0));
    assert_eq!(registrations("failure", "endpoint"), Some(2.0));
    let queue = sums_by(
        &sink,
        "voip.queue.calls",
        &[(label::PBX, "ast-1"), (label::QUEUE, "support")],
        label::QUEUE_OUTCOME,
    );
    assert_eq!(
        queue,
        BTreeMap::from([
            ("abandoned".into(), 1.0),
            ("answered".into(), 1.0),
            ("joined".into(), 2.0)
        ])
    );
    // The RTCPReceived report: reported MES 86.4 → MOS 4.32 on carrier-a's inbound media.
    let mos = sink
        .histogram(
            "voip.call.mos.reported",
            &[(label::PBX, "ast-1"), (label::TRUNK, "carrier-a")],
        )
        .expect("reported MOS");
    assert_eq!(mos.count, 2);
    // The Hangup without ids is the one invalid event.
    assert_eq!(
        value(
            &sink,
            "callpulse.input.events",
            &[(label::PBX, "ast-1"), (label::RECEIVER_OUTCOME, "invalid")]
        ),
        Some(1.0)
    );
    // Only the internal call is still active after every reconnect.
    car.wait_for_gauges(WAIT, |s| active_calls(s, "ast-1") == Some(1.0))
        .await;
    car.stop().await.expect("clean stop");
}

#[tokio::test]
async fn ami_refused_login_is_counted_and_retried_without_the_secret_in_any_log() {
    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logs = logs.clone();
        move || LogWriter(logs.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let script = vec![Conn {
        refuse: true,
        snapshot: String::new(),
        then: Then::Silent,
    }];
    let (port, seen) = ami_peer(script).await;
    let (sink, car) = sidecar(vec![input_cfg(NativeKind::Ami, "ast-1", port)]).await;
    sink.wait_until(WAIT, |s| {
        seen.lock().unwrap().connections >= 3
            && value(
                s,
                "callpulse.input.errors",
                &[(label::PBX, "ast-1"), (label::REASON, "login_refused")],
            )
            .is_some_and(|v| v >= 2.0)
    })
    .await;
    assert_eq!(
        value(&sink, "callpulse.input.up", &[(label::PBX, "ast-1")]),
        Some(0.0)
    );
    // The peer did get the secret; the logs never do.
    assert!(
        seen.lock()
            .unwrap()
            .commands
            .iter()
            .all(|c| field(c, "Secret") == Some(SECRET))
    );
    car.stop().await.expect("clean stop");
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("login refused by the pbx: Authentication failed"),
        "the refusal is logged: {text}"
    );
    assert!(text.contains("login_refused"), "{text}");
    assert!(!text.contains(SECRET), "secret in the logs: {text}");
    assert!(!format!("{:?}", input_cfg(NativeKind::Ami, "x", 1)).contains(SECRET));
}

/// Collects formatted log lines.
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// ESL peer

/// Reads one `\n\n`-ended command.
async fn read_command(r: &mut ReadHalf<TcpStream>, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\n\n") {
            let block: Vec<u8> = buf.drain(..i + 2).collect();
            return Some(String::from_utf8_lossy(&block).trim().to_owned());
        }
        let mut chunk = [0u8; 4096];
        let n = r.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn esl_reply(text: &str) -> String {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n")
}

fn esl_api(body: &str) -> String {
    format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    )
}

fn esl_event(json: &str) -> String {
    format!(
        "Content-Length: {}\nContent-Type: text/event-json\n\n{json}",
        json.len()
    )
}

async fn esl_peer(script: Vec<Conn>) -> (u16, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        let mut i = 0;
        while let Ok((stream, _)) = listener.accept().await {
            let conn = script[i.min(script.len() - 1)].clone();
            i += 1;
            s.lock().unwrap().connections += 1;
            tokio::spawn(esl_conn(stream, conn, s.clone()));
        }
    });
    (port, seen)
}

async fn esl_conn(stream: TcpStream, conn: Conn, seen: Arc<Mutex<Seen>>) {
    let (mut r, mut w) = tokio::io::split(stream);
    let mut buf = Vec::new();
    w.write_all(b"Content-Type: auth/request\n\n")
        .await
        .unwrap();
    let Some(auth) = read_command(&mut r, &mut buf).await else {
        return;
    };
    seen.lock().unwrap().commands.push(auth.clone());
    if conn.refuse || auth != format!("auth {SECRET}") {
        let _ = w.write_all(esl_reply("-ERR invalid").as_bytes()).await;
        let _ = w
            .write_all(b"Content-Type: text/disconnect-notice\nContent-Length: 0\n\n")
            .await;
        let _ = w.shutdown().await;
        return;
    }
    w.write_all(esl_reply("+OK accepted").as_bytes())
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let answer = !matches!(conn.then, Then::Silent | Then::WriteThenSilent(_));
    let snapshot = conn.snapshot.clone();
    let seen2 = seen.clone();
    // Replies in order, as mod_event_socket sends them.
    let reader = tokio::spawn(async move {
        while let Some(cmd) = read_command(&mut r, &mut buf).await {
            seen2.lock().unwrap().commands.push(cmd.clone());
            let reply = if cmd.starts_with("event json ") {
                esl_reply("+OK event listener enabled json")
            } else if cmd == "api show channels as json" {
                esl_api(&snapshot)
            } else if cmd == "api status" {
                if !answer {
                    continue;
                }
                esl_api(
                    "UP 0 years, 0 days, 1 hour, 2 minutes\nFreeSWITCH (Version 1.10.12) is ready\n",
                )
            } else {
                esl_reply("-ERR command not found")
            };
            if tx.send(reply).is_err() {
                break;
            }
        }
    });
    // The first two replies (subscription, snapshot) go before the scripted bytes.
    for _ in 0..2 {
        let Some(reply) = rx.recv().await else { return };
        w.write_all(reply.as_bytes()).await.unwrap();
    }
    match conn.then {
        Then::Stay(bytes) | Then::Write(bytes) | Then::WriteThenSilent(bytes) => {
            w.write_all(&bytes).await.unwrap()
        }
        Then::CloseMidEvent(bytes, half) => {
            w.write_all(&bytes).await.unwrap();
            w.write_all(&half).await.unwrap();
            let _ = w.shutdown().await;
            reader.abort();
            return;
        }
        Then::Silent => {}
    }
    while let Some(reply) = rx.recv().await {
        if w.write_all(reply.as_bytes()).await.is_err() {
            break;
        }
    }
}

fn esl_fixture() -> Vec<u8> {
    lines(&data("freeswitch_event/events.jsonl"))
        .map(esl_event)
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn esl_snapshot_events_silence_oversize_and_drop_mid_event() {
    // Connection 1 lists one answered call (A- and B-leg) and replays the 22 fixture events,
    // then stops answering `api status`. Connection 2 lists no call: the listed one ended while
    // the socket was down and is closed as answered. It then announces a 1 MiB event.
    // Connection 3 closes in the middle of an event body; connection 4 stays.
    let one_call = r#"{"row_count":2,"rows":[
        {"uuid":"fs-snap-a","direction":"inbound","created_epoch":"1741946400","name":"sofia/external/4155550199@198.51.100.40","state":"CS_EXECUTE","callstate":"ACTIVE","call_uuid":"fs-snap-a"},
        {"uuid":"fs-snap-b","direction":"outbound","created_epoch":"1741946401","name":"sofia/internal/1001@192.0.2.50","state":"CS_EXCHANGE_MEDIA","callstate":"ACTIVE","call_uuid":"fs-snap-a"}]}"#;
    let mut big =
        b"Content-Length: 1048576\nContent-Type: text/event-json\n\n{\"Event-Name\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'A', 4096));
    let create = lines(&data("freeswitch_event/events.jsonl"))
        .next()
        .unwrap()
        .to_owned();
    let half = format!(
        "Content-Length: {}\nContent-Type: text/event-json\n\n{}",
        create.len(),
        &create[..create.len() / 2]
    );
    let script = vec![
        Conn {
            refuse: false,
            snapshot: one_call.into(),
            then: Then::WriteThenSilent(esl_fixture()),
        },
        Conn {
            refuse: false,
            snapshot: r#"{"row_count":0}"#.into(),
            then: Then::Write(big),
        },
        Conn {
            refuse: false,
            snapshot: r#"{"row_count":0}"#.into(),
            then: Then::CloseMidEvent(Vec::new(), half.into_bytes()),
        },
        Conn {
            refuse: false,
            snapshot: r#"{"row_count":0}"#.into(),
            then: Then::Stay(Vec::new()),
        },
    ];
    let (port, seen) = esl_peer(script).await;
    let (sink, mut car) = sidecar(vec![input_cfg(NativeKind::Esl, "fs-1", port)]).await;

    // Right after the first snapshot: the listed call is active.
    car.wait_for_gauges(WAIT, |s| active_calls(s, "fs-1").is_some_and(|v| v >= 1.0))
        .await;
    sink.wait_until(WAIT, |s| {
        value(s, "callpulse.input.up", &[(label::PBX, "fs-1")]) == Some(1.0)
            && seen.lock().unwrap().connections >= 4
            && value(
                s,
                "callpulse.input.errors",
                &[(label::PBX, "fs-1"), (label::REASON, "closed")],
            ) == Some(1.0)
    })
    .await;
    assert_eq!(seen.lock().unwrap().connections, 4);
    let commands = seen.lock().unwrap().commands.clone();
    assert_eq!(commands[0], format!("auth {SECRET}"));
    assert!(
        commands[1].starts_with("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM sofia::register"),
        "{}",
        commands[1]
    );
    assert_eq!(commands[2], "api show channels as json");
    assert!(
        commands.iter().any(|c| c == "api status"),
        "keep-alives sent"
    );

    let pbx = [(label::PBX, "fs-1")];
    let errors = sums_by(&sink, "callpulse.input.errors", &pbx, label::REASON);
    assert_eq!(errors.get("timeout"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("oversize"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("closed"), Some(&1.0), "{errors:?}");
    assert_eq!(errors.get("login_refused"), Some(&0.0), "{errors:?}");

    // The fixture as over OTLP (presets_e2e), plus the vanished snapshot call closed answered.
    let by_disposition = sums_by(&sink, "voip.calls", &pbx, label::DISPOSITION);
    assert_eq!(by_disposition, BTreeMap::from([("answered".into(), 2.0)]));
    assert_eq!(
        value(
            &sink,
            "voip.calls",
            &[
                (label::PBX, "fs-1"),
                (label::TRUNK, "carrier-a"),
                (label::DIRECTION, "inbound"),
                (label::DISPOSITION, "answered"),
            ]
        ),
        Some(1.0)
    );
    let duration = sink
        .histogram(
            "voip.call.duration",
            &[(label::PBX, "fs-1"), (label::TRUNK, "carrier-a")],
        )
        .expect("duration");
    assert_eq!(duration.count, 1);
    assert!((duration.sum - 212.12).abs() < 1e-9, "{}", duration.sum);
    let registrations = sums_by(
        &sink,
        "voip.registration.attempts",
        &pbx,
        label::REGISTRATION_OUTCOME,
    );
    assert_eq!(
        registrations,
        BTreeMap::from([
            ("expired".into(), 1.0),
            ("failure".into(), 2.0),
            ("success".into(), 3.0),
            ("unregistered".into(), 1.0),
        ])
    );
    let queue = sums_by(
        &sink,
        "voip.queue.calls",
        &[(label::PBX, "fs-1"), (label::QUEUE, "support@default")],
        label::QUEUE_OUTCOME,
    );
    assert_eq!(
        queue,
        BTreeMap::from([
            ("abandoned".into(), 1.0),
            ("answered".into(), 1.0),
            ("joined".into(), 2.0)
        ])
    );
    assert_eq!(
        value(
            &sink,
            "callpulse.input.events",
            &[(label::PBX, "fs-1"), (label::RECEIVER_OUTCOME, "invalid")]
        ),
        Some(1.0)
    );
    car.wait_for_gauges(WAIT, |s| active_calls(s, "fs-1") == Some(0.0))
        .await;
    car.stop().await.expect("clean stop");
}

#[test]
fn config_takes_the_secret_from_the_environment_only() {
    let yaml = "sources:\n  - ami:\n      name: ast-1\n      host: 192.0.2.10\n      username: callpulse\n      secret: ${env:AMI_SECRET}\n  - esl:\n      name: fs-1\n      host: 192.0.2.20\n      password: ${env:ESL_PASSWORD}\n      keepalive: 5s\n";
    let env = |name: &str| match name {
        "AMI_SECRET" => Some(SECRET.to_owned()),
        "ESL_PASSWORD" => Some("ClueCon-xyz".to_owned()),
        _ => None,
    };
    let cfg = callpulse::config::parse_str_with_env(yaml, "callpulse.yaml", &env).unwrap();
    assert_eq!(cfg.native_inputs.len(), 2);
    let ami = &cfg.native_inputs[0];
    assert_eq!(
        (ami.kind, ami.name.as_str(), ami.port, ami.secret.expose()),
        (NativeKind::Ami, "ast-1", 5038, SECRET)
    );
    let esl = &cfg.native_inputs[1];
    assert_eq!(
        (esl.kind, esl.port, esl.keepalive),
        (NativeKind::Esl, 8021, Duration::from_secs(5))
    );
    assert!(!format!("{cfg:?}").contains(SECRET));

    let literal = "sources:\n  - ami:\n      name: ast-1\n      host: 192.0.2.10\n      username: callpulse\n      secret: hunter2\n  - esl:\n      name: ast-1\n      host: h\n      password: ${env:ESL_PASSWORD}\n      prot: 1\n  - esl: { name: dup, host: h, password: \"${env:ESL_PASSWORD}\" }\n  - esl: { name: dup, host: h, password: \"${env:ESL_PASSWORD}\" }\n";
    let err = callpulse::config::parse_str_with_env(literal, "callpulse.yaml", &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("callpulse.yaml:6: sources[0].ami.secret: must come from the environment"),
        "{err}"
    );
    assert!(
        err.contains("callpulse.yaml:11: sources[1].esl.prot"),
        "{err}"
    );
    assert!(
        err.contains("callpulse.yaml:13: sources[3].esl: the name \"dup\" is used by another"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

/// The `sources` blocks of the native-input sections of `docs/pbx-setup.md` parse as they read.
#[test]
fn pbx_setup_guide_native_blocks_parse() {
    let guide = data("../../docs/pbx-setup.md");
    let env = |name: &str| Some(format!("value-of-{name}"));
    let mut got = Vec::new();
    for section in [
        "## Native input: Asterisk AMI",
        "## Native input: FreeSWITCH event socket",
    ] {
        let part = guide
            .split(section)
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_else(|| panic!("no section {section}"));
        let block = part
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .unwrap_or_else(|| panic!("no yaml block in {section}"));
        let indent = block.len() - block.trim_start().len();
        let yaml: String = block
            .lines()
            .map(|l| l.get(indent..).unwrap_or("").trim_end())
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = callpulse::config::parse_str_with_env(&yaml, section, &env)
            .unwrap_or_else(|e| panic!("{section}: {e}"));
        got.extend(cfg.native_inputs);
    }
    let summary: Vec<_> = got
        .iter()
        .map(|i| {
            (
                i.kind,
                i.name.as_str(),
                i.port,
                i.secret.expose().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                NativeKind::Ami,
                "pbx-1",
                5038,
                "value-of-AMI_SECRET".to_owned()
            ),
            (
                NativeKind::Esl,
                "fs-1",
                8021,
                "value-of-ESL_PASSWORD".to_owned()
            ),
        ]
    );
}

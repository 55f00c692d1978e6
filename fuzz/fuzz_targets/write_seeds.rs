//! Writes the seed corpora to `seeds/<target>/`: `cargo +nightly run --bin write_seeds`.
//!
//! `response_parser`: valid answers to the fuzz request in several spellings. The others come from
//! the fixtures in `../tests/data/` and `../examples/callpulse.yaml`: raw native bodies
//! (`presets`), the same lines as OTLP requests in protobuf (`otlp_protobuf`) and JSON
//! (`otlp_json`) — string bodies, and JSON objects also as attributes the way the Collector's
//! `json_parser` delivers them — gzipped bodies (`gunzip`), configs (`config`) and state files
//! (`alert_state`). The native inputs' streams (`ami`, `esl`: 4 bytes choosing where reads split
//! the stream, then a session's bytes with the fixtures' events on the wire), SIP the call probe
//! and the test UAS receive (`sip_dialog`), SDP answers (`sdp`) and RTP packets and streams
//! (`rtp`) are built here from the shapes the unit and integration tests use. Files that fuzzing found and that are kept as regression seeds are named
//! `crash-*` or `regress-*` and are not touched here.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn write(target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = root().join("seeds").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)?;
    Ok(())
}

/// Every fixture file (README files excepted), with a short name.
fn fixtures() -> Result<Vec<(String, String)>> {
    let data = root().join("../tests/data");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(&data)? {
        let dir = dir?.path();
        if !dir.is_dir() {
            continue;
        }
        let preset = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)?.collect::<std::result::Result<_, _>>()?;
        files.sort_by_key(|f| f.path());
        for (i, f) in files.iter().enumerate() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            out.push((format!("{preset}-{i}"), std::fs::read_to_string(&path)?));
        }
    }
    out.sort();
    Ok(out)
}

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::StringValue(s.to_owned())),
    }
}

fn json_value(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => return AnyValue { value: None },
        J::Bool(b) => Value::BoolValue(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::StringValue(s.clone()),
        J::Array(a) => Value::ArrayValue(ArrayValue {
            values: a.iter().map(json_value).collect(),
        }),
        J::Object(m) => Value::KvlistValue(KeyValueList {
            values: attributes(m),
        }),
    };
    AnyValue { value: Some(value) }
}

fn attributes(m: &serde_json::Map<String, serde_json::Value>) -> Vec<KeyValue> {
    m.iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(json_value(v)),
            ..Default::default()
        })
        .collect()
}

/// Records of a fixture: each line a string body; a JSON object line also as attributes; a whole
/// JSON document (a FreeSWITCH CDR) as one record both ways.
fn records(content: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let t = 1_700_000_000_000_000_000u64;
    let push_json = |s: &str, out: &mut Vec<LogRecord>| {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str(s) {
            out.push(LogRecord {
                time_unix_nano: t,
                attributes: attributes(&m),
                ..Default::default()
            });
        }
    };
    if content.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Value>(content).is_ok()
    {
        out.push(LogRecord {
            body: Some(text(content)),
            ..Default::default()
        });
        push_json(content, &mut out);
        return out;
    }
    for (i, line) in content.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        out.push(LogRecord {
            time_unix_nano: t + i as u64 * 1_000_000_000,
            body: Some(text(line)),
            ..Default::default()
        });
        push_json(line, &mut out);
    }
    out
}

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.instance.id".into(),
                    value: Some(text("pbx-1")),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A call in the generic contract: start, answer, end, cdr and quality, each with its own time.
fn contract_call() -> ExportLogsServiceRequest {
    let attr = |k: &str, v: Value| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    };
    let s = |v: &str| Value::StringValue(v.into());
    let t = 1_700_000_000_000_000_000u64;
    let ev = |name: &str, at: u64, mut extra: Vec<KeyValue>| {
        extra.push(attr("voip.call.id", s("call-1")));
        LogRecord {
            time_unix_nano: t + at * 1_000_000_000,
            event_name: name.into(),
            attributes: extra,
            ..Default::default()
        }
    };
    request(vec![
        ev(
            "voip.call.start",
            0,
            vec![
                attr("voip.call.direction", s("inbound")),
                attr("voip.trunk", s("carrier-a")),
            ],
        ),
        ev(
            "voip.call.answer",
            3,
            vec![attr("voip.call.post_dial_delay", Value::DoubleValue(2.5))],
        ),
        ev(
            "voip.quality",
            20,
            vec![
                attr("voip.rtp.loss_ratio", Value::DoubleValue(0.01)),
                attr("voip.rtp.jitter", Value::DoubleValue(0.02)),
                attr("voip.codec", s("PCMA")),
            ],
        ),
        ev(
            "voip.call.end",
            60,
            vec![
                attr("voip.call.disposition", s("answered")),
                attr("sip.response.status_code", Value::IntValue(200)),
            ],
        ),
        ev(
            "voip.cdr",
            60,
            vec![
                attr("voip.call.disposition", s("busy")),
                attr("voip.call.duration", Value::IntValue(60)),
            ],
        ),
        LogRecord {
            event_name: "voip.registration".into(),
            attributes: vec![
                attr("voip.registration.outcome", s("failure")),
                attr("sip.response.status_code", Value::IntValue(403)),
            ],
            ..Default::default()
        },
        LogRecord {
            event_name: "voip.queue.abandon".into(),
            attributes: vec![
                attr("voip.queue.name", s("support")),
                attr("voip.queue.wait_time", Value::DoubleValue(41.0)),
            ],
            ..Default::default()
        },
    ])
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

fn fixture(path: &str) -> Result<String> {
    Ok(std::fs::read_to_string(
        root().join("../tests/data").join(path),
    )?)
}

/// AMI event blocks of a JSON-lines fixture (every value a string, arrays one line per item),
/// as `tests/it/native_inputs.rs` puts them on the wire.
fn ami_blocks(jsonl: &str, take: usize) -> Result<String> {
    let mut out = String::new();
    for line in jsonl.lines().filter(|l| !l.trim().is_empty()).take(take) {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)?;
        for (k, v) in v {
            match v {
                serde_json::Value::String(s) => out.push_str(&format!("{k}: {s}\r\n")),
                serde_json::Value::Array(a) => {
                    for x in a {
                        out.push_str(&format!("{k}: {}\r\n", x.as_str().unwrap_or_default()));
                    }
                }
                other => out.push_str(&format!("{k}: {other}\r\n")),
            }
        }
        out.push_str("\r\n");
    }
    Ok(out)
}

/// A `CoreShowChannel` block of the snapshot.
fn ami_channel(chan: &str, state: u8, context: &str, uid: &str, lid: &str) -> String {
    format!(
        "Event: CoreShowChannel\r\nActionID: callpulse-channels\r\nChannel: {chan}\r\nChannelState: {state}\r\nCallerIDNum: 4155550123\r\nContext: {context}\r\nExten: 1001\r\nUniqueid: {uid}\r\nLinkedid: {lid}\r\nApplication: Dial\r\n\r\n"
    )
}

fn ami_seeds() -> Result<()> {
    let banner = "Asterisk Call Manager/7.0.3\r\n";
    let login = "Response: Success\r\nActionID: callpulse-login\r\nMessage: Authentication accepted\r\n\r\nEvent: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n";
    let snapshot = format!(
        "Response: Success\r\nActionID: callpulse-channels\r\nEventList: start\r\nMessage: Channels will follow\r\n\r\n{}{}{}Event: CoreShowChannelsComplete\r\nActionID: callpulse-channels\r\nEventList: Complete\r\nListItems: 3\r\n\r\n",
        ami_channel(
            "PJSIP/carrier-a-00000001",
            6,
            "from-trunk",
            "snap.1",
            "snap.1"
        ),
        ami_channel(
            "PJSIP/1001-00000002",
            6,
            "from-internal",
            "snap.2",
            "snap.1"
        ),
        ami_channel(
            "PJSIP/1003-00000003",
            4,
            "from-internal",
            "snap.3",
            "snap.3"
        ),
    );
    let pong = "Response: Success\r\nActionID: callpulse-ping-1\r\nPing: Pong\r\nTimestamp: 1741943800.000000\r\n\r\n";
    let session = |control: &[u8], events: &str| -> Vec<u8> {
        [
            control,
            banner.as_bytes(),
            login.as_bytes(),
            snapshot.as_bytes(),
            events.as_bytes(),
            pong.as_bytes(),
        ]
        .concat()
    };
    let calls = ami_blocks(&fixture("asterisk_ami/events.jsonl")?, 8)?;
    write("ami", "session", &session(&[255, 255, 255, 255], &calls))?;
    write("ami", "session-split", &session(&[0, 2, 16, 63], &calls))?;
    let queue = ami_blocks(&fixture("asterisk_ami/queue-abandon.jsonl")?, 6)?;
    write("ami", "queue", &session(&[31, 7, 200, 1], &queue))?;
    // The raw wire fixture: LF line ends.
    let raw = fixture("asterisk_ami/events.ami")?;
    let lf = format!(
        "Asterisk Call Manager/5.0.1\nResponse: Success\nActionID: callpulse-login\n\n{raw}"
    );
    write("ami", "lf", &[&[3, 0, 9, 127][..], lf.as_bytes()].concat())?;
    write(
        "ami",
        "refused",
        &[
            &[255, 255, 255, 255][..],
            banner.as_bytes(),
            b"Response: Error\r\nActionID: callpulse-login\r\nMessage: Authentication failed\r\n\r\n",
        ]
        .concat(),
    )?;
    Ok(())
}

fn esl_frame(content_type: &str, extra: &str, body: &str) -> String {
    if body.is_empty() {
        format!("Content-Type: {content_type}\n{extra}\n")
    } else {
        format!(
            "Content-Length: {}\nContent-Type: {content_type}\n{extra}\n{body}",
            body.len()
        )
    }
}

fn esl_seeds() -> Result<()> {
    let hello = esl_frame("auth/request", "", "");
    let ok = esl_frame("command/reply", "Reply-Text: +OK accepted\n", "");
    let subscribed = esl_frame(
        "command/reply",
        "Reply-Text: +OK event listener enabled json\n",
        "",
    );
    let snapshot = esl_frame(
        "api/response",
        "",
        r#"{"row_count":3,"rows":[{"uuid":"a","call_uuid":"a","callstate":"ACTIVE","direction":"inbound"},{"uuid":"b","call_uuid":"a","callstate":"ACTIVE"},{"uuid":"c","call_uuid":"","callstate":"RINGING"}]}"#,
    );
    let status = esl_frame(
        "api/response",
        "",
        "UP 0 years, 0 days, 1 hour, 2 minutes\nFreeSWITCH (Version 1.10.12) is ready\n",
    );
    let events = |path: &str, take: usize| -> Result<String> {
        Ok(fixture(path)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(take)
            .map(|l| esl_frame("text/event-json", "", l))
            .collect())
    };
    let session = |control: &[u8], events: &str, tail: &str| -> Vec<u8> {
        [
            control,
            hello.as_bytes(),
            ok.as_bytes(),
            subscribed.as_bytes(),
            snapshot.as_bytes(),
            events.as_bytes(),
            status.as_bytes(),
            tail.as_bytes(),
        ]
        .concat()
    };
    let calls = events("freeswitch_event/events.jsonl", 6)?;
    write(
        "esl",
        "session",
        &session(&[255, 255, 255, 255], &calls, ""),
    )?;
    write(
        "esl",
        "session-split",
        &session(&[0, 5, 40, 99], &calls, ""),
    )?;
    let gateways = events("freeswitch_event/gateway-fail-wait.jsonl", 4)?;
    write(
        "esl",
        "gateways-disconnect",
        &session(
            &[13, 255, 2, 77],
            &gateways,
            "Content-Type: text/disconnect-notice\nContent-Length: 0\n\n",
        ),
    )?;
    write(
        "esl",
        "refused",
        &[
            &[255, 255, 255, 255][..],
            hello.as_bytes(),
            esl_frame("command/reply", "Reply-Text: -ERR invalid\n", "").as_bytes(),
            b"Content-Type: text/rude-rejection\nContent-Length: 26\n\nAccess Denied, go away.\n\n\n",
        ]
        .concat(),
    )?;
    write(
        "esl",
        "idle-snapshot",
        &[
            &[255, 255, 255, 255][..],
            esl_frame("api/response", "", r#"{"row_count":0}"#).as_bytes(),
        ]
        .concat(),
    )?;
    Ok(())
}

fn sip_dialog_seeds() -> Result<()> {
    // The parser fuzz entry's seeds: a 200 with SDP to an INVITE, an in-dialog BYE, challenges.
    for (i, seed) in callpulse::probe::fuzzing::seeds().iter().enumerate() {
        write("sip_dialog", &format!("probe-{i}"), seed)?;
    }
    let sdp = "v=0\r\no=echo 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n";
    let dialog_head = "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-uas-1;rport\r\nFrom: <sip:echo@127.0.0.1>;tag=uas-1\r\nTo: <sip:callpulse@127.0.0.1>;tag=cp-tag\r\nCall-ID: fuzz-call\r\n";
    let with_sdp = |first: &str, cseq: &str| {
        format!(
            "{first}\r\n{dialog_head}CSeq: {cseq}\r\nContact: <sip:uas@127.0.0.1:5070>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    let bare = |first: &str, cseq: &str| {
        format!("{first}\r\n{dialog_head}CSeq: {cseq}\r\nContent-Length: 0\r\n\r\n")
    };
    let seeds: Vec<(&str, String)> = vec![
        ("reinvite", with_sdp("INVITE sip:callpulse@127.0.0.1:4000 SIP/2.0", "1 INVITE")),
        ("update", with_sdp("UPDATE sip:callpulse@127.0.0.1:4000 SIP/2.0", "2 UPDATE")),
        ("bye", bare("BYE sip:callpulse@127.0.0.1:4000 SIP/2.0", "2 BYE")),
        ("options", bare("OPTIONS sip:callpulse@127.0.0.1:4000 SIP/2.0", "3 OPTIONS")),
        ("info", bare("INFO sip:callpulse@127.0.0.1:4000 SIP/2.0", "4 INFO")),
        (
            "invite-to-uas",
            "INVITE sip:echo@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a;rport\r\nMax-Forwards: 70\r\nFrom: <sip:callpulse@127.0.0.1>;tag=cp-tag\r\nTo: <sip:echo@127.0.0.1:5060>\r\nCall-ID: fuzz-call\r\nCSeq: 2 INVITE\r\nContact: <sip:callpulse@127.0.0.1:4000>\r\nAuthorization: Digest username=\"alice\", realm=\"callpulse.test\", nonce=\"fuzz-nonce\", uri=\"sip:echo@127.0.0.1:5060\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n".to_string(),
        ),
        (
            "cancel",
            "CANCEL sip:echo@127.0.0.1:5060 SIP/2.0\nv: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a\nf: <sip:callpulse@127.0.0.1>;tag=cp-tag\nt: <sip:echo@127.0.0.1:5060>\ni: fuzz-call\nCSeq: 2 CANCEL\nl: 0\n\n".to_string(),
        ),
        ("ack", bare("ACK sip:callpulse@127.0.0.1:4000 SIP/2.0", "1 ACK")),
        (
            "ok-record-route",
            format!(
                "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a;rport=4000, SIP/2.0/UDP 10.0.0.1;branch=x\r\nf: <sip:callpulse@127.0.0.1>;tag=cp-tag\r\nTo: \"Echo\"\r\n <sip:echo@127.0.0.1:5060>;tag=222\r\ni: fuzz-call\r\nCSeq: 1 INVITE\r\nm: <sip:echo@127.0.0.1:5070;transport=udp>\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nl: {}\r\n\r\n{sdp}",
                sdp.len()
            ),
        ),
        (
            "busy",
            "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a;rport\r\nFrom: <sip:callpulse@127.0.0.1>;tag=cp-tag\r\nTo: <sip:echo@127.0.0.1:5060>;tag=uas-9\r\nCall-ID: fuzz-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n".to_string(),
        ),
        (
            "unauthorized",
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a;rport\r\nFrom: <sip:callpulse@127.0.0.1>;tag=cp-tag\r\nTo: <sip:echo@127.0.0.1:5060>;tag=uas-c\r\nCall-ID: fuzz-call\r\nCSeq: 1 INVITE\r\nWWW-Authenticate: Digest realm=\"callpulse.test\", nonce=\"fuzz-nonce\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n".to_string(),
        ),
        (
            "ringing",
            "SIP/2.0 180 Ringing\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK-cp-1-a\nFrom: <sip:callpulse@127.0.0.1>;tag=cp-tag\nTo: <sip:echo@127.0.0.1:5060>;tag=uas-1\nCall-ID: fuzz-call\nCSeq: 1 INVITE\nContact: <sip:uas@127.0.0.1:5070>\n\n".to_string(),
        ),
    ];
    for (name, bytes) in seeds {
        write("sip_dialog", name, bytes.as_bytes())?;
    }
    Ok(())
}

fn sdp_seeds() -> Result<()> {
    use callpulse::sip::sdp::{CallCodec, offer};
    use std::time::Duration;
    write(
        "sdp",
        "offer-v4",
        offer(
            42,
            "192.0.2.10:40000".parse()?,
            CallCodec::Pcma,
            Duration::from_millis(20),
        )
        .as_bytes(),
    )?;
    write(
        "sdp",
        "offer-v6",
        offer(
            1,
            "[2001:db8::1]:5004".parse()?,
            CallCodec::G722,
            Duration::from_millis(30),
        )
        .as_bytes(),
    )?;
    write(
        "sdp",
        "sipp-lf",
        b"v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n",
    )?;
    write(
        "sdp",
        "multi",
        b"v=0\r\nc=IN IP4 10.0.0.1\r\nm=video 7000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\nm=audio 8000/2 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.2/127\r\na=ptime:30\r\nm=audio 9000 RTP/AVP 8\r\n",
    )?;
    write(
        "sdp",
        "rejected",
        b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n",
    )?;
    Ok(())
}

fn rtp_seeds() -> Result<()> {
    use callpulse::rtp::RtpHeader;
    // A PCMU packet byte for byte (the unit test's).
    write(
        "rtp",
        "pcmu",
        &[
            0x80, 0x80, 0x12, 0x34, 0x00, 0x00, 0x00, 0xa0, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xfe,
            0x7f, 0x00,
        ],
    )?;
    let mut packet = Vec::new();
    RtpHeader {
        marker: false,
        payload_type: 111,
        sequence: 65535,
        timestamp: u32::MAX,
        ssrc: 7,
        csrc: vec![1, 2, 3],
        extension: Some((0xbede, vec![0x10, 0xaa, 0, 0])),
    }
    .write(&[1, 2, 3, 4, 5], 4, &mut packet)
    .map_err(|e| e.to_string())?;
    write("rtp", "csrc-extension-padding", &packet)?;
    // Streams of (sequence, timestamp, arrival) records: in order with a wrap, loss and
    // reordering; and a restart after a big jump.
    let stream = |records: &[(u16, u32, u32)]| -> Vec<u8> {
        records
            .iter()
            .flat_map(|(s, t, a)| {
                [
                    &s.to_be_bytes()[..],
                    &t.to_be_bytes()[..],
                    &a.to_be_bytes()[..],
                ]
                .concat()
            })
            .collect()
    };
    let mut ordered = Vec::new();
    for i in 0..20u32 {
        let seq = 65530u16.wrapping_add(i as u16);
        if i == 9 {
            continue;
        }
        ordered.push((seq, 160 * i, 160 * i + (i % 3) * 40));
    }
    ordered.swap(4, 5);
    write("rtp", "stream-wrap-loss-reorder", &stream(&ordered))?;
    write(
        "rtp",
        "stream-restart",
        &stream(&[
            (100, 0, 0),
            (101, 160, 170),
            (102, 320, 330),
            (9000, 480, 500),
            (9001, 640, 650),
            (9002, 800, 800),
            (9002, 800, 900),
        ]),
    )?;
    Ok(())
}

fn main() -> Result<()> {
    for (i, seed) in callpulse::probe::fuzzing::seeds().iter().enumerate() {
        write("response_parser", &format!("seed-{i}"), seed)?;
    }

    let mut requests = vec![("contract".to_owned(), contract_call())];
    for (name, content) in fixtures()? {
        write("presets", &name, content.as_bytes())?;
        requests.push((name, request(records(&content))));
    }
    for (name, req) in &requests {
        let pb = req.encode_to_vec();
        let json = serde_json::to_vec(req)?;
        write("otlp_protobuf", name, &pb)?;
        write("otlp_json", name, &json)?;
        write("gunzip", &format!("{name}.pb.gz"), &gzip(&pb)?)?;
    }
    write(
        "gunzip",
        "two-members.gz",
        &[gzip(b"hello ")?, gzip(b"world")?].concat(),
    )?;

    let example = std::fs::read_to_string(root().join("../examples/callpulse.yaml"))?;
    write("config", "callpulse.yaml", example.as_bytes())?;
    write(
        "config",
        "env-and-units.yaml",
        b"receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:${env:PORT_GRPC}\n        max_recv_msg_size: 4MiB\n      http:\n        endpoint: ${env:UNSET_HTTP}\nprobes:\n  sip:\n    - target: sips:probe@[2001:db8::1]:5061;transport=tls\n      interval: 1m30s\n      timeout: 250ms\n    - target: sip:10.0.0.1\n      interval: ${env:INTERVAL}\n",
    )?;

    write("alert_state", "empty", b"{\"version\":1,\"firing\":[]}")?;
    write(
        "alert_state",
        "two-firing",
        br#"{
  "version": 1,
  "firing": [
    {
      "rule": "call_mos_low",
      "scope": [["voip.pbx", "pbx-1"], ["voip.trunk", "carrier-a"]],
      "since_unix_ms": 1700000000000,
      "value": 3.1
    },
    {
      "rule": "sip_probe_down",
      "scope": [["sip.probe.target", "edge-1"], ["network.transport", "udp"]],
      "since_unix_ms": 1700000123456,
      "value": 1.0
    },
    {
      "rule": "unknown_scope",
      "scope": [["caller", "+15550100"]],
      "since_unix_ms": 0,
      "value": 0.5
    }
  ]
}"#,
    )?;
    write(
        "alert_state",
        "future-version",
        b"{\"version\":2,\"firing\":[]}",
    )?;

    ami_seeds()?;
    esl_seeds()?;
    sip_dialog_seeds()?;
    sdp_seeds()?;
    rtp_seeds()?;
    Ok(())
}

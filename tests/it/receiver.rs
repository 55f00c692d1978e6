//! receiver tests: the OTLP gRPC and HTTP servers on 127.0.0.1:0, driven by real clients.
//!
//! The mapping is a stand-in ([`fake_normalize`]): a `voip.cdr` record with `voip.call.id` is an
//! event, one without it is invalid, anything else is ignored. That keeps these tests about the
//! transport; the pipeline tests cover the real presets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use callpulse::config::{ListenerConfig, ReceiverConfig, ServerTlsConfig, SourceConfig};
use callpulse::engine::EngineInput;
use callpulse::event::{
    CallRecord, Direction, Disposition, EventMeta, QualityFields, VoipEvent, VoipEventKind,
};
use callpulse::normalize::Normalized;
use callpulse::receiver::{ReceiverHandle, RefusalReason, start, start_with_normalizer};
use callpulse::stats::{ReceiverTransport, RecordOutcome, SelfStats};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::support::otlp_client::*;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";
const SMALL_LIMIT: usize = 64 << 10;

// ---------------------------------------------------------------- rig

fn string_attr(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

/// Stand-in mapping: see the module doc.
fn fake_normalize(req: &ExportLogsServiceRequest, _: &[SourceConfig]) -> Normalized {
    let mut n = Normalized::default();
    for rl in &req.resource_logs {
        let pbx = rl
            .resource
            .as_ref()
            .and_then(|r| string_attr(&r.attributes, "service.instance.id"))
            .unwrap_or_default();
        for r in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
            if r.event_name != "voip.cdr" {
                n.ignored += 1;
                continue;
            }
            let Some(call_id) = string_attr(&r.attributes, "voip.call.id") else {
                n.invalid += 1;
                n.first_invalid
                    .get_or_insert_with(|| "voip.cdr lacks voip.call.id".into());
                continue;
            };
            n.events.push(VoipEvent {
                meta: EventMeta {
                    pbx: pbx.clone(),
                    time: (r.time_unix_nano > 0)
                        .then(|| UNIX_EPOCH + Duration::from_nanos(r.time_unix_nano)),
                },
                kind: VoipEventKind::Cdr(CallRecord {
                    call_id,
                    disposition: Disposition::Answered,
                    duration: None,
                    billable_duration: None,
                    post_dial_delay: None,
                    trunk: string_attr(&r.attributes, "voip.trunk"),
                    direction: Direction::Unknown,
                    sip_status: None,
                    hangup_cause: None,
                    quality: QualityFields::default(),
                }),
            });
        }
    }
    n
}

fn local() -> ListenerConfig {
    ListenerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)))
}

fn config() -> ReceiverConfig {
    ReceiverConfig {
        grpc: Some(local()),
        http: Some(local()),
        ..ReceiverConfig::default()
    }
}

struct Rig {
    handle: ReceiverHandle,
    grpc: SocketAddr,
    http: SocketAddr,
    rx: mpsc::Receiver<EngineInput>,
    stats: Arc<SelfStats>,
    shutdown: CancellationToken,
}

impl Rig {
    async fn start(cfg: ReceiverConfig) -> Rig {
        Rig::with_queue(cfg, 1024).await
    }

    async fn with_queue(cfg: ReceiverConfig, queue: usize) -> Rig {
        let (tx, rx) = mpsc::channel(queue);
        let stats = Arc::new(SelfStats::default());
        let shutdown = CancellationToken::new();
        let handle = start_with_normalizer(
            &cfg,
            Arc::from(Vec::new()),
            fake_normalize,
            tx,
            Arc::clone(&stats),
            shutdown.clone(),
        )
        .await
        .expect("receiver starts");
        Rig {
            grpc: handle.grpc_addr.expect("grpc enabled"),
            http: handle.http_addr.expect("http enabled"),
            handle,
            rx,
            stats,
            shutdown,
        }
    }

    /// Every batch the engine would have received so far.
    fn batches(&mut self) -> Vec<Vec<VoipEvent>> {
        let mut out = Vec::new();
        while let Ok(input) = self.rx.try_recv() {
            match input {
                EngineInput::Events(e) => out.push(e),
                other => panic!("unexpected engine input {other:?}"),
            }
        }
        out
    }

    fn count(&self, t: ReceiverTransport, o: RecordOutcome) -> u64 {
        self.stats.records(t, o)
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.handle.wait())
            .await
            .expect("receiver stops in time")
            .expect("receiver stops cleanly");
    }
}

fn call_ids(batch: &[VoipEvent]) -> Vec<String> {
    batch
        .iter()
        .map(|e| match &e.kind {
            VoipEventKind::Cdr(c) => c.call_id.clone(),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

/// `google.rpc.Status`, decoded on the test side to check the receiver's bodies.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

fn rpc_status(reply: &HttpReply) -> RpcStatus {
    assert_eq!(reply.header("content-type"), Some(PROTOBUF), "{reply:?}");
    RpcStatus::decode(&reply.body[..]).expect("google.rpc.Status body")
}

fn json_body(reply: &HttpReply) -> serde_json::Value {
    assert_eq!(reply.header("content-type"), Some(JSON), "{reply:?}");
    serde_json::from_slice(&reply.body).expect("json body")
}

fn ok_protobuf(reply: &HttpReply) -> ExportLogsServiceResponse {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.header("content-type"), Some(PROTOBUF));
    ExportLogsServiceResponse::decode(&reply.body[..]).expect("export response")
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

// ---------------------------------------------------------------- gRPC

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_plain_and_gzip_exports_reach_the_engine() {
    let mut rig = Rig::start(config()).await;
    for gzip in [false, true] {
        let mut client = grpc_client(rig.grpc, gzip).await;
        let req = request(
            "pbx-1",
            vec![cdr("a"), plain_log("GET /health 200"), cdr("b"), cdr("c")],
        );
        let resp = client.export(req).await.expect("export ok").into_inner();
        assert_eq!(resp.partial_success, None, "gzip={gzip}");
    }
    let batches = rig.batches();
    assert_eq!(batches.len(), 2);
    for b in &batches {
        assert_eq!(call_ids(b), ["a", "b", "c"]);
        assert_eq!(b[0].meta.pbx, "pbx-1");
    }
    let g = ReceiverTransport::Grpc;
    assert_eq!(rig.count(g, RecordOutcome::Accepted), 6);
    assert_eq!(rig.count(g, RecordOutcome::Ignored), 2);
    assert_eq!(rig.count(g, RecordOutcome::Refused), 0);
    assert_eq!(
        rig.count(ReceiverTransport::Http, RecordOutcome::Accepted),
        0
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_mixed_batch_is_a_partial_success_and_good_records_still_count() {
    let mut rig = Rig::start(config()).await;
    let mut client = grpc_client(rig.grpc, true).await;
    let bad = event("voip.cdr", vec![attr_str("voip.call.disposition", "busy")]);
    let req = request(
        "pbx-1",
        vec![cdr("a"), bad.clone(), plain_log("x"), bad, cdr("b")],
    );
    let resp = client.export(req).await.expect("export ok").into_inner();
    let partial = resp.partial_success.expect("partial success set");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("voip.call.id"),
        "{partial:?}"
    );
    let batches = rig.batches();
    assert_eq!(batches.len(), 1);
    assert_eq!(call_ids(&batches[0]), ["a", "b"]);
    let g = ReceiverTransport::Grpc;
    assert_eq!(rig.count(g, RecordOutcome::Accepted), 2);
    assert_eq!(rig.count(g, RecordOutcome::Invalid), 2);
    assert_eq!(rig.count(g, RecordOutcome::Ignored), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_request_without_voip_events_sends_nothing_to_the_engine() {
    let mut rig = Rig::start(config()).await;
    let mut client = grpc_client(rig.grpc, false).await;
    let resp = client
        .export(request("pbx-1", vec![plain_log("a"), plain_log("b")]))
        .await
        .expect("export ok")
        .into_inner();
    assert_eq!(resp.partial_success, None);
    // An empty request is a success too.
    client
        .export(ExportLogsServiceRequest::default())
        .await
        .expect("empty export ok");
    assert!(rig.batches().is_empty());
    assert_eq!(
        rig.count(ReceiverTransport::Grpc, RecordOutcome::Ignored),
        2
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_undecodable_protobuf_is_invalid_argument_and_the_next_request_is_served() {
    let mut rig = Rig::start(config()).await;
    let good = to_protobuf(&cdr_request("pbx-1", 3));
    let truncated = Bytes::copy_from_slice(&good[..good.len() / 2]);
    let garbage = Bytes::from(vec![0xffu8; 64]);
    let mut client = grpc_raw_client(rig.grpc).await;
    for bad in [truncated, garbage] {
        let err = grpc_raw_export(&mut client, bad)
            .await
            .expect_err("undecodable request refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        // The same connection still serves a good request.
        grpc_raw_export(&mut client, Bytes::from(good.clone()))
            .await
            .expect("good request after a bad one");
    }
    assert_eq!(rig.batches().len(), 2);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_oversize_is_resource_exhausted_plain_and_after_decompression() {
    let mut cfg = config();
    cfg.max_request_size = SMALL_LIMIT;
    let mut rig = Rig::start(cfg).await;
    // ~200 KiB of protobuf that gzips to a few KiB: over the limit only once inflated.
    let big = request(
        "pbx-1",
        (0..2000)
            .map(|i| event("app.log", vec![attr_str("filler", &format!("{i:0>90}"))]))
            .collect(),
    );
    assert!(big.encoded_len() > 2 * SMALL_LIMIT);
    assert!(gzip(&to_protobuf(&big)).len() < SMALL_LIMIT);
    for gzip in [false, true] {
        let mut client = grpc_client(rig.grpc, gzip).await;
        let err = client
            .export(big.clone())
            .await
            .expect_err("oversize refused");
        // tonic itself says OUT_OF_RANGE (retryable) for the plain case; the spec wants
        // RESOURCE_EXHAUSTED without RetryInfo.
        assert_eq!(err.code(), Code::ResourceExhausted, "gzip={gzip}: {err:?}");
        client
            .export(cdr_request("pbx-1", 2))
            .await
            .expect("good request after an oversize one");
    }
    assert_eq!(rig.batches().len(), 2);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_bomb_is_refused_without_inflating_it() {
    let mut cfg = config();
    cfg.max_request_size = 4 << 20;
    let rig = Rig::start(cfg).await;
    let bomb = gzip_bomb(100);
    assert!(bomb.len() < 4 << 20, "bomb is {} bytes", bomb.len());
    let before = peak_rss_kib();
    let call = H2Call::start(rig.grpc, &[("grpc-encoding", "gzip")]).await;
    call.body
        .send(Bytes::from(grpc_frame(true, &bomb)))
        .await
        .unwrap();
    let (status, grpc_status) = call.finish().await.expect("answered");
    assert_eq!(status, 200);
    assert_eq!(grpc_status.as_deref(), Some("8"), "RESOURCE_EXHAUSTED");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(grown_mib < 50, "peak RSS grew by {grown_mib} MiB");
    rig.stop().await;
}

// ---------------------------------------------------------------- HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_plain_and_gzip_exports_reach_the_engine() {
    let mut rig = Rig::start(config()).await;
    let body = to_protobuf(&request("pbx-7", vec![cdr("x"), plain_log("y")]));
    let plain = http_post(rig.http, PROTOBUF, &[], body.clone()).await;
    assert_eq!(ok_protobuf(&plain).partial_success, None);
    let zipped = http_post(
        rig.http,
        PROTOBUF,
        &[("content-encoding", "gzip")],
        gzip(&body),
    )
    .await;
    assert_eq!(ok_protobuf(&zipped).partial_success, None);
    let batches = rig.batches();
    assert_eq!(batches.len(), 2);
    assert!(batches.iter().all(|b| call_ids(b) == ["x"]));
    let h = ReceiverTransport::Http;
    assert_eq!(rig.count(h, RecordOutcome::Accepted), 2);
    assert_eq!(rig.count(h, RecordOutcome::Ignored), 2);
    rig.stop().await;
}

/// The shape of opentelemetry-proto's `examples/logs.json`: camelCase keys, int64 as strings
/// (and as plain numbers, which decoders must also take), upper-case hex ids, integer enums.
const SPEC_SHAPED_JSON: &str = r#"{
  "resourceLogs": [{
    "resource": {
      "attributes": [
        { "key": "service.name", "value": { "stringValue": "my.service" } },
        { "key": "service.instance.id", "value": { "stringValue": "pbx-json" } }
      ]
    },
    "scopeLogs": [{
      "scope": { "name": "my.library", "version": "1.0.0" },
      "logRecords": [
        {
          "timeUnixNano": "1544712660300000000",
          "observedTimeUnixNano": "1544712660300000000",
          "severityNumber": 10,
          "severityText": "Information",
          "traceId": "5B8EFFF798038103D269B633813FC60C",
          "spanId": "EEE19B7EC3C1B174",
          "eventName": "voip.cdr",
          "body": { "stringValue": "Example log record" },
          "attributes": [
            { "key": "voip.call.id", "value": { "stringValue": "json-1" } },
            { "key": "voip.trunk", "value": { "stringValue": "carrier-b" } },
            { "key": "sip.response.status_code", "value": { "intValue": "200" } },
            { "key": "voip.call.duration", "value": { "doubleValue": 637.704 } },
            { "key": "array.attribute", "value": { "arrayValue": { "values": [ { "stringValue": "many" }, { "stringValue": "values" } ] } } },
            { "key": "map.attribute", "value": { "kvlistValue": { "values": [ { "key": "some.map.key", "value": { "stringValue": "some value" } } ] } } }
          ],
          "unknownFutureField": { "ignored": true }
        },
        {
          "timeUnixNano": 1544712661000000000,
          "severityNumber": 9,
          "eventName": "voip.cdr",
          "attributes": [
            { "key": "voip.call.id", "value": { "stringValue": "json-2" } },
            { "key": "sip.response.status_code", "value": { "intValue": 486 } }
          ]
        },
        { "severityNumber": 13, "body": { "stringValue": "not a voip event" } }
      ]
    }]
  }]
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_spec_shape_plain_and_gzip_reaches_the_engine() {
    let mut rig = Rig::start(config()).await;
    let body = SPEC_SHAPED_JSON.as_bytes().to_vec();
    let plain = http_post(rig.http, JSON, &[], body.clone()).await;
    assert_eq!(plain.status, 200, "{plain:?}");
    assert_eq!(json_body(&plain), serde_json::json!({}));
    let zipped = http_post(
        rig.http,
        "application/json; charset=utf-8",
        &[("content-encoding", "gzip")],
        gzip(&body),
    )
    .await;
    assert_eq!(zipped.status, 200, "{zipped:?}");
    let batches = rig.batches();
    assert_eq!(batches.len(), 2);
    for b in &batches {
        assert_eq!(call_ids(b), ["json-1", "json-2"]);
        assert_eq!(b[0].meta.pbx, "pbx-json");
        assert_eq!(
            b[0].meta.time,
            Some(UNIX_EPOCH + Duration::from_nanos(1_544_712_660_300_000_000))
        );
        assert_eq!(
            b[1].meta.time,
            Some(UNIX_EPOCH + Duration::from_nanos(1_544_712_661_000_000_000))
        );
        let VoipEventKind::Cdr(c) = &b[0].kind else {
            unreachable!()
        };
        assert_eq!(c.trunk.as_deref(), Some("carrier-b"));
    }
    assert_eq!(
        rig.count(ReceiverTransport::Http, RecordOutcome::Ignored),
        2
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_written_by_our_own_encoder_round_trips() {
    let mut rig = Rig::start(config()).await;
    let json = to_json(&cdr_request("pbx-2", 5));
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        text.contains("\"timeUnixNano\":\"1700000000000000000\""),
        "{text}"
    );
    let reply = http_post(rig.http, JSON, &[], json).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(call_ids(&rig.batches()[0]).len(), 5);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_partial_success_in_both_encodings() {
    let mut rig = Rig::start(config()).await;
    let bad = event("voip.cdr", vec![]);
    let req = request("pbx-1", vec![cdr("a"), bad]);
    let proto = ok_protobuf(&http_post(rig.http, PROTOBUF, &[], to_protobuf(&req)).await);
    let partial = proto.partial_success.expect("partial success");
    assert_eq!(partial.rejected_log_records, 1);
    assert!(partial.error_message.contains("voip.call.id"));

    let reply = http_post(rig.http, JSON, &[], to_json(&req)).await;
    assert_eq!(reply.status, 200);
    let v = json_body(&reply);
    assert_eq!(v["partialSuccess"]["rejectedLogRecords"], "1", "{v}");
    assert!(
        v["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("voip.call.id")
    );
    assert_eq!(rig.batches().len(), 2);
    assert_eq!(
        rig.count(ReceiverTransport::Http, RecordOutcome::Invalid),
        2
    );
    assert_eq!(
        rig.count(ReceiverTransport::Http, RecordOutcome::Accepted),
        2
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_bodies_are_400_with_a_status_body_and_the_next_request_is_served() {
    let mut rig = Rig::start(config()).await;
    let good = to_protobuf(&cdr_request("pbx-1", 2));
    type Case = (&'static str, Vec<(&'static str, &'static str)>, Vec<u8>);
    let cases: Vec<Case> = vec![
        (PROTOBUF, vec![], good[..good.len() / 2].to_vec()),
        (PROTOBUF, vec![], vec![0xff; 64]),
        (
            PROTOBUF,
            vec![("content-encoding", "gzip")],
            b"not gzip".to_vec(),
        ),
        (JSON, vec![], b"{\"resourceLogs\": [".to_vec()),
        (JSON, vec![], b"\xff\xfe not utf-8".to_vec()),
        (
            JSON,
            vec![],
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}"#
                .to_vec(),
        ),
    ];
    let mut cases = cases;
    // Nesting past the decoders' recursion limits is refused, not a stack overflow.
    let depth = 2000;
    let nested_json = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"body":{}{{"stringValue":"x"}}{}}}]}}]}}]}}"#,
        r#"{"arrayValue":{"values":["#.repeat(depth),
        "]}}".repeat(depth)
    );
    let shallow = ExportLogsServiceRequest::decode(&nested_protobuf(5)[..]).expect("depth 5 ok");
    assert!(
        shallow.resource_logs[0].scope_logs[0].log_records[0]
            .body
            .is_some()
    );
    cases.push((JSON, vec![], nested_json.into_bytes()));
    cases.push((PROTOBUF, vec![], nested_protobuf(depth)));
    let n_cases = cases.len();
    for (ct, headers, body) in cases {
        let reply = http_post(rig.http, ct, &headers, body).await;
        assert_eq!(reply.status, 400, "{ct} {headers:?}: {reply:?}");
        let code = if ct == JSON {
            json_body(&reply)["code"].as_i64().unwrap()
        } else {
            i64::from(rpc_status(&reply).code)
        };
        assert_eq!(code, 3, "INVALID_ARGUMENT");
        let next = http_post(rig.http, PROTOBUF, &[], good.clone()).await;
        assert_eq!(next.status, 200, "good request after {ct} {headers:?}");
    }
    assert_eq!(rig.batches().len(), n_cases);
    let mut client = grpc_raw_client(rig.grpc).await;
    let err = grpc_raw_export(&mut client, Bytes::from(nested_protobuf(depth)))
        .await
        .expect_err("too deep");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    rig.stop().await;
}

/// A request whose one log body is an array nested `depth` times, encoded by hand (building it
/// as structs would recurse as deep on drop).
fn nested_protobuf(depth: usize) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    // Innermost AnyValue { string_value: "x" }.
    let mut any = vec![0x0a, 0x01, b'x'];
    for _ in 0..depth {
        // ArrayValue { values: [any] } (field 1), then AnyValue { array_value } (field 5).
        let mut array = Vec::new();
        encode_key(1, WireType::LengthDelimited, &mut array);
        encode_varint(any.len() as u64, &mut array);
        array.extend_from_slice(&any);
        any.clear();
        encode_key(5, WireType::LengthDelimited, &mut any);
        encode_varint(array.len() as u64, &mut any);
        any.extend_from_slice(&array);
    }
    let wrap = |field: u32, inner: &[u8]| {
        let mut out = Vec::new();
        encode_key(field, WireType::LengthDelimited, &mut out);
        encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    // LogRecord.body = 5, ScopeLogs.log_records = 2, ResourceLogs.scope_logs = 2,
    // ExportLogsServiceRequest.resource_logs = 1.
    wrap(1, &wrap(2, &wrap(2, &wrap(5, &any))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_wrong_content_type_is_415() {
    let rig = Rig::start(config()).await;
    let body = to_protobuf(&cdr_request("pbx-1", 1));
    for ct in ["text/plain", "application/grpc", "application/protobuf"] {
        let reply = http_post(rig.http, ct, &[], body.clone()).await;
        assert_eq!(reply.status, 415, "{ct}");
        assert_eq!(rpc_status(&reply).code, 3);
    }
    let reply = http_send(
        rig.http,
        "POST",
        "/v1/logs",
        &[],
        body.clone(),
        Framing::Length,
    )
    .await;
    assert_eq!(reply.status, 415, "no content type");
    // An unknown Content-Encoding is a packaging the server does not take: 415 too (issue 10).
    for ce in ["br", "zstd", "deflate"] {
        let reply = http_post(
            rig.http,
            PROTOBUF,
            &[("content-encoding", ce)],
            body.clone(),
        )
        .await;
        assert_eq!(reply.status, 415, "{ce}");
        assert_eq!(rpc_status(&reply).code, 3);
    }
    assert_eq!(
        rig.handle
            .refusals
            .get(ReceiverTransport::Http, RefusalReason::UnsupportedEncoding),
        3
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_oversize_body_is_413_by_length_by_chunks_and_after_gunzip() {
    let mut cfg = config();
    cfg.max_request_size = SMALL_LIMIT;
    let mut rig = Rig::start(cfg).await;
    let big = vec![7u8; SMALL_LIMIT + 1];
    let ct = [("content-type", PROTOBUF)];
    for framing in [Framing::Length, Framing::Chunked] {
        let reply = http_send(rig.http, "POST", "/v1/logs", &ct, big.clone(), framing).await;
        assert_eq!(reply.status, 413, "{framing:?}: {reply:?}");
        assert_eq!(rpc_status(&reply).code, 8);
    }
    // Small on the wire, over the limit once inflated.
    let zipped = gzip(&vec![0u8; SMALL_LIMIT * 4]);
    let reply = http_post(rig.http, JSON, &[("content-encoding", "gzip")], zipped).await;
    assert_eq!(reply.status, 413);
    assert_eq!(json_body(&reply)["code"], 8);
    // Exactly the limit is fine (a valid protobuf padded with an unknown field).
    let mut exact = to_protobuf(&cdr_request("pbx-1", 1));
    // field 999, length-delimited: a 2-byte key and a 3-byte length
    let pad = SMALL_LIMIT - exact.len() - 5;
    prost::encoding::encode_key(999, prost::encoding::WireType::LengthDelimited, &mut exact);
    prost::encoding::encode_varint(pad as u64, &mut exact);
    exact.extend(std::iter::repeat_n(0u8, pad));
    assert_eq!(exact.len(), SMALL_LIMIT);
    let reply = http_post(rig.http, PROTOBUF, &[], exact).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(rig.batches().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_gzip_bomb_is_413_and_memory_stays_flat() {
    let mut cfg = config();
    cfg.max_request_size = 4 << 20;
    let mut rig = Rig::start(cfg).await;
    let bomb = gzip_bomb(100);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let before = peak_rss_kib();
    let reply = http_post(rig.http, PROTOBUF, &[("content-encoding", "gzip")], bomb).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 50,
        "peak RSS grew by {grown_mib} MiB for a 100 MiB bomb"
    );
    let next = http_post(rig.http, PROTOBUF, &[], to_protobuf(&cdr_request("p", 1))).await;
    assert_eq!(next.status, 200);
    assert_eq!(rig.batches().len(), 1);
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_other_paths_are_404_and_other_methods_405() {
    let rig = Rig::start(config()).await;
    let body = to_protobuf(&cdr_request("pbx-1", 1));
    let ct = [("content-type", PROTOBUF)];
    for path in ["/v1/metrics", "/v1/traces", "/", "/v1/logs/", "/v1/log"] {
        let reply = http_send(rig.http, "POST", path, &ct, body.clone(), Framing::Length).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(rpc_status(&reply).code, 5);
    }
    for method in ["GET", "PUT", "DELETE"] {
        let reply = http_send(
            rig.http,
            method,
            "/v1/logs",
            &ct,
            Vec::new(),
            Framing::Length,
        )
        .await;
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("POST"));
    }
    rig.stop().await;
}

// ---------------------------------------------------------------- auth

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_is_required_on_both_transports() {
    let mut cfg = config();
    cfg.bearer_token = Some("s3cret-token".into());
    let mut rig = Rig::start(cfg).await;

    let mut client = grpc_client(rig.grpc, false).await;
    for token in [
        None,
        Some("wrong"),
        Some("s3cret-toke"),
        Some("s3cret-token2"),
    ] {
        let err = client
            .export(with_token(cdr_request("p", 1), token))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
    }
    client
        .export(with_token(cdr_request("p", 1), Some("s3cret-token")))
        .await
        .expect("right token accepted");

    let body = to_protobuf(&cdr_request("p", 1));
    for auth in [None, Some("Bearer wrong"), Some("Basic s3cret-token")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let reply = http_post(rig.http, PROTOBUF, &headers, body.clone()).await;
        assert_eq!(reply.status, 401, "{auth:?}");
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        assert_eq!(rpc_status(&reply).code, 16);
    }
    let reply = http_post(
        rig.http,
        PROTOBUF,
        &[("authorization", "Bearer s3cret-token")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);

    assert_eq!(
        rig.batches().len(),
        2,
        "only authorised requests reach the engine"
    );
    rig.stop().await;
}

// ---------------------------------------------------------------- TLS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_round_trip_on_both_servers() {
    let dir = std::env::temp_dir().join(format!(
        "callpulse-receiver-tls-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca_pem = key.cert.pem();
    let cert_file = dir.join("cert.pem");
    let key_file = dir.join("key.pem");
    std::fs::write(&cert_file, &ca_pem).unwrap();
    std::fs::write(&key_file, key.signing_key.serialize_pem()).unwrap();
    let tls = ServerTlsConfig {
        cert_file,
        key_file,
    };
    let mut cfg = config();
    for l in [cfg.grpc.as_mut().unwrap(), cfg.http.as_mut().unwrap()] {
        l.tls = Some(tls.clone());
    }
    let mut rig = Rig::start(cfg).await;

    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", rig.grpc))
        .unwrap()
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("grpc over tls connects");
    let mut client =
        opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient::new(
            channel,
        );
    client
        .export(cdr_request("pbx-tls", 2))
        .await
        .expect("grpc over tls export");

    let reply = https_post(
        rig.http,
        &ca_pem,
        "localhost",
        PROTOBUF,
        to_protobuf(&cdr_request("pbx-tls", 3)),
    )
    .await
    .expect("https export");
    assert_eq!(ok_protobuf(&reply).partial_success, None);

    // Plain text to a TLS port gets no OTLP answer.
    let mut tcp = tokio::net::TcpStream::connect(rig.http).await.unwrap();
    tcp.write_all(b"POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
    assert!(
        !buf.starts_with(b"HTTP/1.1 200"),
        "plain HTTP served on a TLS port"
    );

    let batches = rig.batches();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [2, 3]);
    rig.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn unreadable_tls_files_and_busy_ports_are_start_errors_naming_them() {
    let mut cfg = config();
    cfg.http.as_mut().unwrap().tls = Some(ServerTlsConfig {
        cert_file: "/nonexistent/callpulse-cert.pem".into(),
        key_file: "/nonexistent/callpulse-key.pem".into(),
    });
    let (tx, _rx) = mpsc::channel(1);
    let err = start(
        &cfg,
        Arc::from(Vec::new()),
        tx.clone(),
        Arc::new(SelfStats::default()),
        CancellationToken::new(),
    )
    .await
    .expect_err("tls files missing");
    assert!(
        err.to_string().contains("/nonexistent/callpulse-cert.pem"),
        "{err}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut cfg = config();
    cfg.grpc = Some(ListenerConfig::new(addr));
    let err = start(
        &cfg,
        Arc::from(Vec::new()),
        tx,
        Arc::new(SelfStats::default()),
        CancellationToken::new(),
    )
    .await
    .expect_err("port taken");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

// ---------------------------------------------------------------- back-pressure

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_engine_queue_gets_retryable_refusals_counted_as_refused() {
    let mut cfg = config();
    cfg.retry_after = Duration::from_secs(3);
    // A queue of one batch that nobody reads: the engine is stuck.
    let mut rig = Rig::with_queue(cfg, 1).await;
    const N: usize = 24;
    const RECORDS: usize = 5;

    let mut grpc = Vec::new();
    for _ in 0..N {
        let addr = rig.grpc;
        grpc.push(tokio::spawn(async move {
            let mut client = grpc_client(addr, true).await;
            client.export(cdr_request("flood", RECORDS)).await
        }));
    }
    let mut http = Vec::new();
    for _ in 0..N {
        let addr = rig.http;
        let body = to_protobuf(&cdr_request("flood", RECORDS));
        http.push(tokio::spawn(async move {
            http_post(addr, PROTOBUF, &[], body).await
        }));
    }

    let (mut grpc_ok, mut grpc_busy) = (0, 0);
    for h in grpc {
        match h.await.unwrap() {
            Ok(_) => grpc_ok += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                let details = RpcStatus::decode(status.details()).expect("status details");
                let info = RetryInfo::decode(&details.details[0].value[..]).unwrap();
                assert_eq!(info.retry_delay.unwrap().seconds, 3);
                grpc_busy += 1;
            }
        }
    }
    let (mut http_ok, mut http_busy) = (0, 0);
    for h in http {
        let reply = h.await.unwrap();
        match reply.status {
            200 => http_ok += 1,
            503 => {
                assert_eq!(reply.header("retry-after"), Some("3"));
                assert_eq!(rpc_status(&reply).code, 14);
                http_busy += 1;
            }
            other => panic!("unexpected status {other}: {reply:?}"),
        }
    }
    // Exactly one batch fits in the queue, whichever transport got there first.
    assert_eq!(grpc_ok + http_ok, 1, "grpc ok {grpc_ok}, http ok {http_ok}");
    assert_eq!(grpc_busy + http_busy, 2 * N - 1);
    let refused = rig.count(ReceiverTransport::Grpc, RecordOutcome::Refused)
        + rig.count(ReceiverTransport::Http, RecordOutcome::Refused);
    assert_eq!(refused, ((2 * N - 1) * RECORDS) as u64);
    assert_eq!(
        rig.count(ReceiverTransport::Grpc, RecordOutcome::Refused),
        (grpc_busy * RECORDS) as u64
    );

    // Once the engine catches up, requests are accepted again.
    assert_eq!(rig.batches().len(), 1);
    let mut client = grpc_client(rig.grpc, false).await;
    client
        .export(cdr_request("after", 1))
        .await
        .expect("accepted after the queue drained");
    rig.stop().await;
}

// ---------------------------------------------------------------- shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_request_in_flight_at_shutdown_is_answered() {
    let mut rig = Rig::start(config()).await;
    let body = to_protobuf(&cdr_request("pbx-1", 4));
    let (head, tail) = body.split_at(body.len() / 2);
    let mut tcp = tokio::net::TcpStream::connect(rig.http).await.unwrap();
    tcp.write_all(
        format!(
            "POST /v1/logs HTTP/1.1\r\nhost: test\r\ncontent-type: {PROTOBUF}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tcp.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    rig.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connections once shutdown fired...
    assert!(
        tokio::net::TcpStream::connect(rig.http).await.is_err(),
        "listener still open after shutdown"
    );
    // ...but the request already started is finished and answered.
    tcp.write_all(tail).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut response))
        .await
        .expect("answered in time")
        .unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(call_ids(&rig.batches()[0]).len(), 4);
    tokio::time::timeout(Duration::from_secs(10), rig.handle.wait())
        .await
        .expect("wait returns after the last request")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_request_in_flight_at_shutdown_is_answered() {
    let mut rig = Rig::start(config()).await;
    let frame = grpc_frame(false, &to_protobuf(&cdr_request("pbx-1", 3)));
    let (head, tail) = frame.split_at(frame.len() / 2);
    let call = H2Call::start(rig.grpc, &[]).await;
    call.body.send(Bytes::copy_from_slice(head)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    rig.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.body.send(Bytes::copy_from_slice(tail)).await.unwrap();
    let (status, grpc_status) = tokio::time::timeout(Duration::from_secs(10), call.finish())
        .await
        .expect("answered in time")
        .expect("response");
    assert_eq!(status, 200);
    assert_eq!(grpc_status.as_deref(), Some("0"), "OK");
    assert_eq!(call_ids(&rig.batches()[0]), ["call-0", "call-1", "call-2"]);
    tokio::time::timeout(Duration::from_secs(10), rig.handle.wait())
        .await
        .expect("wait returns after the last request")
        .unwrap();
}

/// Issue 10: a body still arriving when shutdown starts gets a short grace, then a retryable
/// refusal (HTTP 503 + Retry-After, gRPC UNAVAILABLE), counted as `shutting_down`; the receivers
/// stop well before the app's grace period would run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_stalled_at_shutdown_are_refused_as_retryable_and_counted() {
    let rig = Rig::start(config()).await;
    let mut tcp = tokio::net::TcpStream::connect(rig.http).await.unwrap();
    tcp.write_all(
        format!("POST /v1/logs HTTP/1.1\r\nhost: test\r\ncontent-type: {PROTOBUF}\r\ncontent-length: 100\r\n\r\nab")
            .as_bytes(),
    )
    .await
    .unwrap();
    let call = H2Call::start(rig.grpc, &[]).await;
    call.body
        .send(Bytes::from_static(&[0, 0, 0]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = tokio::time::Instant::now();
    rig.shutdown.cancel();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_string(&mut response))
        .await
        .expect("answered in time")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("retry-after: 1"),
        "{response}"
    );
    let body = call.body.clone();
    let (status, grpc_status) = tokio::time::timeout(Duration::from_secs(5), call.finish())
        .await
        .expect("answered in time")
        .expect("response");
    drop(body);
    assert_eq!((status.as_u16(), grpc_status.as_deref()), (200, Some("14")));
    let refusals = Arc::clone(&rig.handle.refusals);
    tokio::time::timeout(Duration::from_secs(5), rig.handle.wait())
        .await
        .expect("receivers stop")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    for t in [ReceiverTransport::Http, ReceiverTransport::Grpc] {
        assert_eq!(refusals.get(t, RefusalReason::ShuttingDown), 1, "{t:?}");
    }
}

#[tokio::test]
async fn disabled_protocols_are_not_started() {
    let mut cfg = config();
    cfg.grpc = None;
    let (tx, _rx) = mpsc::channel(1);
    let shutdown = CancellationToken::new();
    let handle = start(
        &cfg,
        Arc::from(Vec::new()),
        tx,
        Arc::new(SelfStats::default()),
        shutdown.clone(),
    )
    .await
    .unwrap();
    assert!(handle.grpc_addr.is_none());
    assert!(handle.http_addr.is_some());
    shutdown.cancel();
    handle.wait().await.unwrap();
}

//! Issue 10, "Survive what production throws at it": attackers on 127.0.0.1 against the whole
//! sidecar (`app::run`). Each test is bounded in time and in connections, and asserts
//! availability, never throughput: while attacked, a bystander's small export on a fresh
//! connection to either receiver is answered with success within [`ANSWER_WITHIN`]. The measured
//! latencies are printed: `cargo test --test it attacks -- --nocapture --test-threads 1`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use callpulse::clock::SystemClock;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::support::otlp_client::*;
use crate::support::otlp_sink::{prom_value, scrape};
use crate::support::sidecar::{Sidecar, test_config};

const PROTOBUF: &str = "application/x-protobuf";
/// How soon a bystander must be answered while an attack runs.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// The same while 17 MB of requests are being decoded and normalised: CPU-bound work, measured
/// here in a debug build on a shared machine (a few hundred ms seen), so a looser bound that
/// still fails if a receiver is blocked (before issue 10: HTTP waited out the whole burst).
const ANSWER_WITHIN_UNDER_LOAD: Duration = Duration::from_secs(3);
/// The default `receivers.otlp.max_request_size`.
const LIMIT: usize = 4 << 20;

async fn start() -> Sidecar {
    Sidecar::start(test_config(None), Arc::new(SystemClock)).await
}

/// One small export over gRPC on a fresh connection; its latency, connect included.
async fn grpc_bystander(addr: SocketAddr, within: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let call = async {
        let mut client = grpc_client(addr, false).await;
        client.export(cdr_request("bystander", 1)).await
    };
    match tokio::time::timeout(within, call).await {
        Err(_) => Err(format!("grpc bystander not answered within {within:?}")),
        Ok(Err(status)) => Err(format!("grpc bystander refused: {status:?}")),
        Ok(Ok(_)) => Ok(started.elapsed()),
    }
}

/// One HTTP/1.1 request on a fresh connection: status and headers (the body is read and dropped).
async fn http_raw(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> (u16, http::HeaderMap) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let resp = send.send_request(req).await.expect("http response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let _ = resp.into_body().collect().await;
    (status, headers)
}

fn export_request(addr: SocketAddr, extra: &[(&str, &str)]) -> http::Request<Full<Bytes>> {
    let body = to_protobuf(&cdr_request("bystander", 1));
    let mut b = http::Request::post(format!("http://{addr}/v1/logs"))
        .header("host", "test")
        .header("content-type", PROTOBUF);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::from(body))).expect("request")
}

/// One small export over HTTP on a fresh connection; its latency, connect included.
async fn http_bystander(addr: SocketAddr, within: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    match tokio::time::timeout(within, http_raw(addr, export_request(addr, &[]))).await {
        Err(_) => Err(format!("http bystander not answered within {within:?}")),
        Ok((200, _)) => Ok(started.elapsed()),
        Ok((status, _)) => Err(format!("http bystander got {status}")),
    }
}

/// `rounds` bystanders on each receiver, a little apart; panics on the first one not served
/// `within`, prints the latencies, returns the worst.
async fn bystanders(car: &Sidecar, attack: &str, rounds: usize, within: Duration) -> Duration {
    let mut grpc = Vec::new();
    let mut http = Vec::new();
    for _ in 0..rounds {
        let (g, h) = tokio::join!(
            grpc_bystander(car.grpc(), within),
            http_bystander(car.http(), within)
        );
        grpc.push(g.unwrap_or_else(|e| panic!("during {attack}: {e}")));
        http.push(h.unwrap_or_else(|e| panic!("during {attack}: {e}")));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worst = grpc.iter().chain(&http).max().copied().unwrap_or_default();
    let max = |v: &[Duration]| v.iter().max().copied().unwrap_or_default();
    eprintln!(
        "attack: {attack}: bystanders answered, grpc max {:?}, http max {:?} ({rounds} rounds)",
        max(&grpc),
        max(&http)
    );
    worst
}

/// Streams on one HTTP/2 connection that send their headers and never a byte of body: the
/// returned senders keep the bodies open, the tasks resolve if the server ever answers.
async fn stalled_grpc_streams(
    addr: SocketAddr,
    n: usize,
) -> (Vec<mpsc::Sender<Bytes>>, JoinSet<Result<String, String>>) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2 handshake");
    tokio::spawn(conn);
    let mut senders = Vec::new();
    let mut calls = JoinSet::new();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel::<Bytes>(1);
        senders.push(tx);
        let body = StreamBody::new(tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            |b| Ok::<_, Infallible>(Frame::data(b)),
        ));
        let req = http::Request::post(format!("http://{addr}{EXPORT_PATH}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(body)
            .expect("request");
        let mut send = send.clone();
        calls.spawn(async move {
            send.ready().await.map_err(|e| e.to_string())?;
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("in trailers")
                .to_string();
            Ok(status)
        });
    }
    (senders, calls)
}

/// (a) One gRPC connection holding 16 streams that send headers and never their message blocked
/// both receivers: they shared one 16-slot limit taken before the body was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_grpc_streams_do_not_block_other_clients() {
    let car = start().await;
    let (_senders, mut calls) = stalled_grpc_streams(car.grpc(), 16).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second stalling connection for good measure: 32 stalled streams in all.
    let (_more, mut more_calls) = stalled_grpc_streams(car.grpc(), 16).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let worst = bystanders(
        &car,
        "32 stalled grpc streams on 2 connections",
        5,
        ANSWER_WITHIN,
    )
    .await;
    assert!(worst < ANSWER_WITHIN);
    // The attack was in place all along: no stalled stream has been answered yet.
    assert!(
        calls.try_join_next().is_none() && more_calls.try_join_next().is_none(),
        "a stalled stream was answered during the test"
    );
    car.stop().await.expect("clean stop");
}

/// (b) Slow HTTP uploads trickling a byte every few hundred ms (half with a Content-Length, half
/// chunked) each held a slot for as long as they liked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_uploads_do_not_block_other_clients() {
    const UPLOADS: usize = 200;
    let car = start().await;
    let stop = CancellationToken::new();
    let mut tricklers = JoinSet::new();
    for i in 0..UPLOADS {
        let mut tcp = TcpStream::connect(car.http()).await.expect("connect");
        let chunked = i % 2 == 1;
        let framing = if chunked {
            "transfer-encoding: chunked".to_string()
        } else {
            "content-length: 100000".to_string()
        };
        tcp.write_all(
            format!("POST /v1/logs HTTP/1.1\r\nhost: test\r\ncontent-type: {PROTOBUF}\r\n{framing}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("headers");
        let stop = stop.clone();
        tricklers.spawn(async move {
            let piece: &[u8] = if chunked { b"1\r\nx\r\n" } else { b"x" };
            let mut sent = 0usize;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return Ok(sent),
                    () = tokio::time::sleep(Duration::from_millis(300)) => {}
                }
                if let Err(e) = tcp.write_all(piece).await {
                    return Err(format!("after {sent} bytes: {e}"));
                }
                sent += 1;
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let worst = bystanders(&car, "200 slow http uploads", 5, ANSWER_WITHIN).await;
    assert!(worst < ANSWER_WITHIN);
    stop.cancel();
    let mut still_sending = 0;
    while let Some(joined) = tricklers.join_next().await {
        still_sending += usize::from(joined.expect("trickler").is_ok());
    }
    // The attack was in place: the uploads were still being accepted byte by byte.
    assert_eq!(still_sending, UPLOADS);
    car.stop().await.expect("clean stop");
}

/// A request of about 270 KB.
fn request_of_270kb() -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    let per_record = cdr_request("busy", 101).encoded_len() - cdr_request("busy", 1).encoded_len();
    let req = cdr_request("busy", 270_000 / (per_record / 100).max(1));
    let len = req.encoded_len();
    assert!((250_000..290_000).contains(&len), "{len}");
    req
}

/// (c) 64 concurrent 270 KB exports on one channel starved themselves (37-44 of 64
/// DEADLINE_EXCEEDED) and blocked HTTP: streams waiting for a slot held the connection window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_on_one_channel_is_served_or_told_to_retry() {
    let car = start().await;
    // Encoded once, sent as raw bytes: all 64 calls go out at once, as from a busy exporter.
    let client = grpc_raw_client(car.grpc()).await;
    let body = Bytes::from(request_of_270kb().encode_to_vec());
    let started = Instant::now();
    let mut calls = JoinSet::new();
    for _ in 0..64 {
        let mut client = client.clone();
        let mut r = tonic::Request::new(body.clone());
        r.set_timeout(Duration::from_secs(10));
        calls.spawn(async move {
            let t = Instant::now();
            let result = async {
                client
                    .ready()
                    .await
                    .map_err(|e| tonic::Status::unknown(e.to_string()))?;
                client
                    .unary(
                        r,
                        http::uri::PathAndQuery::from_static(EXPORT_PATH),
                        RawCodec,
                    )
                    .await
            }
            .await;
            (result.map(|_| ()), t.elapsed())
        });
    }
    // Both receivers serve others meanwhile.
    let worst = bystanders(
        &car,
        "64 x 270 KB exports on one channel",
        3,
        ANSWER_WITHIN_UNDER_LOAD,
    )
    .await;
    assert!(worst < ANSWER_WITHIN_UNDER_LOAD);
    let (mut ok, mut retry, mut slowest) = (0, 0, Duration::ZERO);
    let mut others = Vec::new();
    while let Some(joined) = calls.join_next().await {
        let (result, took) = joined.expect("call task");
        slowest = slowest.max(took);
        match result {
            Ok(()) => ok += 1,
            Err(s) if matches!(s.code(), Code::Unavailable | Code::ResourceExhausted) => retry += 1,
            Err(s) => others.push(s),
        }
    }
    eprintln!(
        "attack: 64 x 270 KB on one channel: {ok} ok, {retry} told to retry, slowest {slowest:?}, all in {:?}",
        started.elapsed()
    );
    assert!(
        others.is_empty(),
        "calls neither served nor retryable: {others:?}"
    );
    assert!(ok > 0, "nothing was served");
    car.stop().await.expect("clean stop");
}

/// (d) An unsupported Content-Encoding is 415, like an unsupported Content-Type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_content_encoding_is_415() {
    let car = start().await;
    let (status, _) = http_raw(
        car.http(),
        export_request(car.http(), &[("content-encoding", "br")]),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = http_raw(
        car.http(),
        export_request(car.http(), &[("content-encoding", "gzip, zstd")]),
    )
    .await;
    assert_eq!(status, 415);
    car.stop().await.expect("clean stop");
}

/// Sends `head` on a fresh connection and reads what the server says within `wait`.
async fn raw_exchange(addr: SocketAddr, head: &str, wait: Duration) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// (e) A client that asks `Expect: 100-continue` for a body over the limit must get the 413
/// without first being told to send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_length_with_expect_continue_is_refused_before_continuing() {
    let car = start().await;
    let head = |length: usize| {
        format!(
            "POST /v1/logs HTTP/1.1\r\nhost: test\r\ncontent-type: {PROTOBUF}\r\ncontent-length: {length}\r\nexpect: 100-continue\r\n\r\n"
        )
    };
    let reply = raw_exchange(car.http(), &head(LIMIT + 1), Duration::from_secs(2)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(!reply.contains("100 Continue"), "{reply}");
    // The control: a body within the limit is told to continue (so the check above can fail).
    let reply = raw_exchange(car.http(), &head(100), Duration::from_millis(500)).await;
    assert!(reply.starts_with("HTTP/1.1 100 Continue"), "{reply}");
    car.stop().await.expect("clean stop");
}

/// (f) With a stalled client connected, SIGTERM took the whole grace period and exited 1: stalled
/// bodies and half-sent requests must not hold shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_stalled_clients_is_fast_and_clean() {
    let car = start().await;
    let grace = test_config(None).telemetry.shutdown_grace;
    let (_senders, mut calls) = stalled_grpc_streams(car.grpc(), 4).await;
    // An HTTP upload that stops half way, one that stops in its headers, an idle connection.
    let mut half_body = TcpStream::connect(car.http()).await.expect("connect");
    half_body
        .write_all(
            format!("POST /v1/logs HTTP/1.1\r\nhost: test\r\ncontent-type: {PROTOBUF}\r\ncontent-length: 1000\r\n\r\nxx")
                .as_bytes(),
        )
        .await
        .expect("write");
    let mut half_head = TcpStream::connect(car.http()).await.expect("connect");
    half_head
        .write_all(b"POST /v1/logs HTTP/1.1\r\nhost: te")
        .await
        .expect("write");
    let _idle_http = TcpStream::connect(car.http()).await.expect("connect");
    let _idle_grpc = TcpStream::connect(car.grpc()).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    car.stop().await.expect("clean stop");
    let took = started.elapsed();
    eprintln!("attack: shutdown with stalled clients took {took:?} (grace {grace:?})");
    assert!(
        took < grace / 2,
        "shutdown took {took:?} of a {grace:?} grace"
    );
    // The stalled gRPC streams were answered (retryable), not left hanging.
    let mut answered = 0;
    while let Some(joined) = calls.join_next().await {
        if let Ok(Ok(status)) = joined {
            assert_eq!(status, "14", "UNAVAILABLE");
            answered += 1;
        }
    }
    assert_eq!(answered, 4);
    // The stalled HTTP upload was told the receiver is going away (503, retryable).
    let mut reply = String::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(1), half_body.read_to_string(&mut reply)).await;
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
}

/// (g) A client that opens connections without end: past `max_connections` each new one is closed
/// at once and counted, the connections already open keep being served, and a slot freed is
/// usable again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_and_counted_and_open_ones_still_served() {
    const CAP: usize = 8;
    let mut cfg = test_config(None);
    cfg.receiver.max_connections = CAP;
    let car = Sidecar::start(cfg, Arc::new(SystemClock)).await;
    // One served HTTP/1.1 connection, kept open, then idle ones up to the cap.
    let tcp = TcpStream::connect(car.http()).await.expect("connect");
    let (mut kept, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("http handshake");
    tokio::spawn(conn);
    let send = |kept: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>| {
        kept.send_request(export_request(car.http(), &[]))
    };
    assert_eq!(send(&mut kept).await.expect("served").status(), 200);
    let mut idle = Vec::new();
    for _ in 1..CAP {
        idle.push(TcpStream::connect(car.http()).await.expect("connect"));
    }
    // Give the acceptor time to take every one of them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Past the cap: the TCP handshake completes (the kernel's backlog), then the server closes.
    for _ in 0..3 {
        let mut extra = TcpStream::connect(car.http()).await.expect("connect");
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a connection past the cap must be closed at once: {read:?}"
        );
    }
    assert_eq!(
        send(&mut kept).await.expect("still served").status(),
        200,
        "an open connection is still served at the cap"
    );
    let text = scrape(car.endpoints.prometheus.unwrap()).await;
    assert_eq!(
        prom_value(
            &text,
            "callpulse_receiver_requests_refused_total",
            &[("reason", "too_many_connections"), ("transport", "http")]
        ),
        Some(3.0),
        "{text}"
    );
    // A freed slot is usable again; the gRPC listener has its own cap, untouched.
    drop(idle.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    http_bystander(car.http(), ANSWER_WITHIN)
        .await
        .expect("served after a slot was freed");
    grpc_bystander(car.grpc(), ANSWER_WITHIN)
        .await
        .expect("grpc has its own cap");
    drop(idle);
    car.stop().await.expect("clean stop");
}

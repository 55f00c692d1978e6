//! probe_call tests: INVITE probes (synthetic calls). In-process against the built-in responder
//! (answering INVITE and echoing RTP), and — `#[ignore]`d interop, run by `.ci/run` — against
//! SIPp as a UAS with `-rtp_echo` (tests/sipp/invite_echo_uas.xml) through a seeded UDP
//! impairment relay written here. The relay sits between the probe's RTP socket and SIPp's echo
//! port: SIPp's SDP names the relay's port (`-key relay_port`), the relay forwards to SIPp's
//! `-mp` port and the echoes back to the probe, so it sees both directions, and it records the
//! loss and delay it actually injected so the test can compare the probe's figures with them.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callpulse::config::{ProbeMethod, QualityConfig, SipProbeConfig};
use callpulse::engine::call_estimate;
use callpulse::probe::{
    CallMedia, CallOutcome, CallResult, ProbeContext, ProbeReport, TargetProbe,
};
use callpulse::quality::jitter::InterarrivalJitter;
use callpulse::sip::sdp::CallCodec;
use tokio::net::UdpSocket;
use tokio::time::Instant;

fn call_cfg(target: String, duration: Duration) -> SipProbeConfig {
    let mut c = SipProbeConfig::new("call", &target);
    c.method = ProbeMethod::Invite;
    c.timeout = Duration::from_secs(2);
    c.call.duration = duration;
    c.call.answer_timeout = Duration::from_secs(5);
    c.interval = Duration::from_secs(300);
    c
}

async fn call(c: SipProbeConfig) -> (ProbeReport, CallResult) {
    let mut probe = TargetProbe::new(c, ProbeContext::new(None)).unwrap();
    let report = probe.round().await;
    let result = *report.call.clone().expect("a call report");
    (report, result)
}

// ---------------------------------------------------------------------------------------------
// The impairment relay.

/// What the relay did, per direction: packets in, packets dropped, and each forwarded packet's
/// actual delay (from its arrival at the relay to its send).
#[derive(Debug, Default)]
struct RelayLog {
    fwd_in: u64,
    fwd_dropped: u64,
    back_in: u64,
    back_dropped: u64,
    /// Forward delay by RTP sequence number.
    fwd_delay: HashMap<u16, f64>,
    /// Echoes sent back to the probe, in send order: (sequence, forward + back delay).
    back: Vec<(u16, f64)>,
}

struct Relay {
    port: u16,
    log: Arc<Mutex<RelayLog>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn seq_of(packet: &[u8]) -> u16 {
    u16::from_be_bytes([packet[2], packet[3]])
}

/// A relay to `echo` dropping `loss` of the packets in each direction and delaying the rest by
/// a uniform 0..`max_delay`, from a seeded generator.
async fn start_relay(echo: SocketAddr, loss: f64, max_delay: Duration, seed: u64) -> Relay {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let port = front.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(RelayLog::default()));
    let probe_addr: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let fwd = {
        let (front, back, log, probe_addr) =
            (front.clone(), back.clone(), log.clone(), probe_addr.clone());
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, from)) = front.recv_from(&mut buf).await else {
                    return;
                };
                let at = Instant::now();
                *probe_addr.lock().unwrap() = Some(from);
                let packet = buf[..n].to_vec();
                let drop_it = rng.f64() < loss;
                let delay = max_delay.mul_f64(rng.f64());
                {
                    let mut l = log.lock().unwrap();
                    l.fwd_in += 1;
                    if drop_it {
                        l.fwd_dropped += 1;
                        continue;
                    }
                }
                let (back, log) = (back.clone(), log.clone());
                tokio::spawn(async move {
                    tokio::time::sleep_until(at + delay).await;
                    let _ = back.send_to(&packet, echo).await;
                    let actual = at.elapsed().as_secs_f64();
                    log.lock()
                        .unwrap()
                        .fwd_delay
                        .insert(seq_of(&packet), actual);
                });
            }
        })
    };
    let bwd = {
        let (front, back, log) = (front.clone(), back.clone(), log.clone());
        tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, _)) = back.recv_from(&mut buf).await else {
                    return;
                };
                let at = Instant::now();
                let packet = buf[..n].to_vec();
                let drop_it = rng.f64() < loss;
                let delay = max_delay.mul_f64(rng.f64());
                {
                    let mut l = log.lock().unwrap();
                    l.back_in += 1;
                    if drop_it {
                        l.back_dropped += 1;
                        continue;
                    }
                }
                let Some(to) = *probe_addr.lock().unwrap() else {
                    continue;
                };
                let (front, log) = (front.clone(), log.clone());
                tokio::spawn(async move {
                    tokio::time::sleep_until(at + delay).await;
                    let _ = front.send_to(&packet, to).await;
                    let actual = at.elapsed().as_secs_f64();
                    let mut l = log.lock().unwrap();
                    let seq = seq_of(&packet);
                    let fwd = l.fwd_delay.get(&seq).copied().unwrap_or(0.0);
                    l.back.push((seq, fwd + actual));
                });
            }
        })
    };
    Relay {
        port,
        log,
        tasks: vec![fwd, bwd],
    }
}

// ---------------------------------------------------------------------------------------------
// SIPp.

fn have(binary: &str) -> bool {
    Command::new("which")
        .arg(binary)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

struct Sipp {
    child: Child,
    dir: PathBuf,
}

impl Sipp {
    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("errors.log"))
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..30 {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A UDP port free on 127.0.0.1 with `port + 2` free too (SIPp's echo also binds that one).
fn free_udp_pair() -> u16 {
    loop {
        let a = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < 65_000 && StdUdpSocket::bind(("127.0.0.1", port + 2)).is_ok() {
            return port;
        }
    }
}

fn free_udp() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIPp answering INVITEs with SDP naming `relay_port`, echoing RTP on its own `echo_port`.
fn start_sipp(relay_port: u16, echo_port: u16) -> (Sipp, u16) {
    assert!(
        have("sipp"),
        "sipp is not installed: apt-get install -y sip-tester (see .ci/run)"
    );
    let port = free_udp();
    let dir = std::env::temp_dir().join(format!(
        "callpulse-sipp-call-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/invite_echo_uas.xml");
    let child = Command::new("sipp")
        .arg("-sf")
        .arg(&xml)
        .args([
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(["-t", "u1", "-rtp_echo", "-mp", &echo_port.to_string()])
        .args(["-key", "relay_port", &relay_port.to_string()])
        .args(["-nostdin", "-nd", "-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("start sipp");
    let mut sipp = Sipp { child, dir };
    for _ in 0..100 {
        if StdUdpSocket::bind(("127.0.0.1", port)).is_err()
            && StdUdpSocket::bind(("127.0.0.1", echo_port)).is_err()
        {
            return (sipp, port);
        }
        if let Ok(Some(status)) = sipp.child.try_wait() {
            panic!("sipp exited early ({status}):\n{}", sipp.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sipp never bound its ports:\n{}", sipp.log());
}

/// The E-model of what the relay injected: its realised round-trip loss, the RFC 3550 jitter of
/// its injected round-trip delays in the order it sent them, their median as the RTT, and the
/// probe's fixed 2 × 20 ms buffer.
fn injected_media(log: &RelayLog) -> CallMedia {
    let passed = log.back.len() as f64;
    let loss = 1.0 - passed / log.fwd_in as f64;
    let mut j = InterarrivalJitter::new();
    for (_, d) in &log.back {
        j.update(*d);
    }
    let mut delays: Vec<f64> = log.back.iter().map(|(_, d)| *d).collect();
    delays.sort_by(f64::total_cmp);
    let median = delays.get(delays.len() / 2).copied().unwrap_or(0.0);
    CallMedia {
        codec: CallCodec::Pcmu,
        ptime: Duration::from_millis(20),
        sent: log.fwd_in,
        received: log.back.len() as u64,
        expected: log.fwd_in,
        lost: (log.fwd_in - log.back.len() as u64) as i64,
        loss_ratio: Some(loss),
        jitter: Some(Duration::from_secs_f64(j.value())),
        echoed: log.back.len() as u64,
        rtt_median: Some(Duration::from_secs_f64(median)),
        rtt_mean: None,
        jitter_buffer: Duration::from_millis(40),
        late_discards: 0,
        effective_loss_ratio: Some(loss),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs sipp (installed by .ci/run)"]
async fn sipp_echo_through_a_lossy_jittery_relay_measures_what_was_injected() {
    // 5 % loss each way and 0..10 ms of delay each way (so at most 20 ms of round-trip
    // variation, inside the 40 ms buffer); 20 s at 20 ms = 1000 packets.
    let echo_port = free_udp_pair();
    let relay = start_relay(
        SocketAddr::from(([127, 0, 0, 1], echo_port)),
        0.05,
        Duration::from_millis(10),
        0xca11,
    )
    .await;
    let (sipp, port) = start_sipp(relay.port, echo_port);
    let c = call_cfg(
        format!("sip:echo@127.0.0.1:{port}"),
        Duration::from_secs(20),
    );
    let (report, result) = tokio::time::timeout(Duration::from_secs(60), call(c))
        .await
        .expect("the call ends in time");
    assert_eq!(
        result.outcome,
        CallOutcome::Ok,
        "{result:?}\n{}",
        sipp.log()
    );
    assert!(report.up);
    assert_eq!(result.teardown, "BYE 200", "{result:?}");
    let pdd = result.post_dial_delay.expect("a 180 came");
    let setup = result.setup.expect("a 200 came");
    assert!(
        setup >= pdd + Duration::from_millis(90),
        "SIPp pauses 100 ms between 180 and 200: pdd {pdd:?} setup {setup:?}"
    );
    let media = result.media.clone().expect("media figures");
    // Let the relay's last spawned sends finish before reading its log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = relay.log.lock().unwrap();
    assert_eq!(media.sent, 1000);
    assert_eq!(log.fwd_in, media.sent, "the relay saw every packet sent");
    assert_eq!(
        media.received,
        log.back.len() as u64,
        "the probe received exactly what the relay passed back"
    );

    // Loss: within 3 sampling standard deviations of 1 − 0.95².
    let p = 1.0 - 0.95f64 * 0.95;
    let n = media.expected as f64;
    let sigma = (p * (1.0 - p) / n).sqrt();
    let loss = media.loss_ratio.expect("loss measured");
    assert!(
        (loss - p).abs() <= 3.0 * sigma,
        "loss {loss:.4} vs {p:.4} ± {:.4}",
        3.0 * sigma
    );
    // And the sequence accounting matches what the relay actually dropped, to within the
    // packets RFC 3550 cannot see (before the source is validated, after the last received).
    let injected = injected_media(&log);
    let realised = injected.loss_ratio.unwrap();
    assert!(
        (loss - realised).abs() <= 3.0 / n,
        "loss {loss:.4} vs realised {realised:.4}"
    );

    // Jitter: the RFC 3550 estimate over the injected round-trip delays, plus the scheduling
    // noise of sender and relay timers (1 ms ticks) as slack.
    let jitter = media.jitter.expect("jitter measured").as_secs_f64();
    let want = injected.jitter.unwrap().as_secs_f64();
    assert!(
        (jitter - want).abs() <= 0.25 * want + 0.001,
        "jitter {:.3} ms vs injected {:.3} ms",
        jitter * 1e3,
        want * 1e3
    );
    let rtt = media.rtt_median.expect("echoes timed").as_secs_f64();
    let want_rtt = injected.rtt_median.unwrap().as_secs_f64();
    assert!(
        rtt >= want_rtt - 0.001 && rtt <= want_rtt + 0.005,
        "rtt {:.3} ms vs injected {:.3} ms",
        rtt * 1e3,
        want_rtt * 1e3
    );

    // MOS: the E-model of the injected figures, within 0.1.
    let q = QualityConfig::default();
    let mos = call_estimate(&media, &q).expect("a score").mos;
    let want_mos = call_estimate(&injected, &q).unwrap().mos;
    assert!(
        (mos - want_mos).abs() <= 0.1,
        "mos {mos:.3} vs injected {want_mos:.3}"
    );
    eprintln!(
        "measured loss {loss:.4} (injected {realised:.4}, expected {p:.4} ± {:.4}), jitter {:.3} ms (injected {:.3} ms), rtt {:.3} ms (injected {:.3} ms), late discards {}, mos {mos:.3} (injected {want_mos:.3})",
        3.0 * sigma,
        jitter * 1e3,
        want * 1e3,
        rtt * 1e3,
        want_rtt * 1e3,
        media.late_discards
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "interop: needs sipp (installed by .ci/run)"]
async fn sipp_echo_without_impairment_scores_the_codec_ceiling() {
    // SIPp's SDP names its own echo port: nothing between the probe and the echo.
    let echo_port = free_udp_pair();
    let (sipp, port) = start_sipp(echo_port, echo_port);
    let c = call_cfg(format!("sip:echo@127.0.0.1:{port}"), Duration::from_secs(4));
    let (_, result) = tokio::time::timeout(Duration::from_secs(30), call(c))
        .await
        .expect("the call ends in time");
    assert_eq!(
        result.outcome,
        CallOutcome::Ok,
        "{result:?}\n{}",
        sipp.log()
    );
    let media = result.media.clone().unwrap();
    assert_eq!(media.sent, 200);
    assert_eq!(media.received, 200, "{media:?}");
    assert_eq!(media.loss_ratio, Some(0.0));
    let est = call_estimate(&media, &QualityConfig::default()).unwrap();
    // G.711 without impairment: R = 93.2 minus the delay of buffer + packetisation, MOS ≈ 4.4.
    assert!(
        (4.35..=4.45).contains(&est.mos),
        "mos {} r {}: {media:?}",
        est.mos,
        est.r
    );
    assert!(
        media.jitter.unwrap() < Duration::from_millis(2),
        "{media:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// In-process: the built-in responder as a UAS that echoes RTP.

use callpulse::probe::responder::{ResponderBehaviour, ResponderStats, spawn_responder_with_stats};
use callpulse::probe::uas::CallUas;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

async fn uas(cfg: CallUas) -> (SocketAddr, Arc<ResponderStats>, CancellationToken) {
    let stop = CancellationToken::new();
    let (addr, stats) = spawn_responder_with_stats(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour {
            uas: Some(cfg),
            ..ResponderBehaviour::default()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    (addr, stats, stop)
}

fn target_of(addr: SocketAddr) -> String {
    format!("sip:echo@{addr}")
}

fn auth(password: &str) -> callpulse::config::ProbeAuth {
    callpulse::config::ProbeAuth {
        username: "probe".into(),
        password: callpulse::config::PasswordSource::Value(callpulse::sip::digest::Secret::new(
            password,
        )),
        realm: None,
    }
}

#[tokio::test]
async fn a_call_is_set_up_measured_and_torn_down() {
    let (addr, stats, _stop) = uas(CallUas {
        ring: Duration::from_millis(80),
        echo_drop_every: Some(10),
        ..CallUas::default()
    })
    .await;
    let (report, r) = call(call_cfg(target_of(addr), Duration::from_secs(2))).await;
    assert_eq!(r.outcome, CallOutcome::Ok, "{r:?}");
    assert!(report.up);
    assert_eq!(r.status, Some(200));
    assert_eq!(r.teardown, "BYE 200");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (pdd, setup) = (r.post_dial_delay.unwrap(), r.setup.unwrap());
    assert!(
        setup >= pdd + Duration::from_millis(80),
        "{pdd:?} {setup:?}"
    );
    let m = r.media.unwrap();
    assert_eq!((m.sent, m.received, m.echoed), (100, 90, 90), "{m:?}");
    // RFC 3550 accounting starts at the second packet (probation) and ends at the highest
    // received (the 100th was dropped): 98 expected, 89 counted, 9 lost.
    assert_eq!((m.expected, m.lost), (98, 9), "{m:?}");
    assert!((m.loss_ratio.unwrap() - 9.0 / 98.0).abs() < 1e-9);
    assert_eq!(m.late_discards, 0);
    assert!(m.rtt_median.unwrap() < Duration::from_millis(50));
    assert_eq!(report.loss_ratio, m.loss_ratio.unwrap());
    let offer = stats.uas.offer.lock().unwrap().clone().unwrap();
    assert!(
        offer.contains("m=audio ") && offer.contains(" RTP/AVP 0\r\n"),
        "{offer}"
    );
    assert!(offer.contains("a=rtpmap:0 PCMU/8000\r\n") && offer.contains("a=ptime:20\r\n"));
    assert_eq!(stats.uas.acks.load(Ordering::SeqCst), 1);
    assert_eq!(stats.uas.byes.load(Ordering::SeqCst), 1);
    assert_eq!(stats.uas.rtp_received.load(Ordering::SeqCst), 100);
    // The engine's score: 9.2 % loss takes G.711 well below its ceiling of about 4.4.
    let est = call_estimate(&m, &QualityConfig::default()).unwrap();
    assert!(est.mos < 3.6 && est.r < 70.0, "{est:?}");
}

#[tokio::test]
async fn a_digest_challenge_is_answered_once() {
    let challenge = Some(("probe".to_string(), "right".to_string(), false));
    let (addr, stats, _stop) = uas(CallUas {
        challenge: challenge.clone(),
        ..CallUas::default()
    })
    .await;
    let mut c = call_cfg(target_of(addr), Duration::from_millis(200));
    c.register.auth = Some(auth("right"));
    let (_, r) = call(c.clone()).await;
    assert_eq!(r.outcome, CallOutcome::Ok, "{r:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.uas.invites.load(Ordering::SeqCst), 2);
    assert_eq!(
        stats.uas.acks.load(Ordering::SeqCst),
        2,
        "the 401 and the 200"
    );

    let (addr, _, _stop2) = uas(CallUas {
        challenge: Some(("probe".to_string(), "right".to_string(), true)),
        ..CallUas::default()
    })
    .await;
    let mut c = call_cfg(target_of(addr), Duration::from_millis(200));
    c.register.auth = Some(auth("n0t-the-pw"));
    let (report, r) = call(c).await;
    assert_eq!(r.outcome, CallOutcome::AuthFailed, "{r:?}");
    assert_eq!(r.status, Some(407));
    assert!(!report.up && r.media.is_none());
    assert!(!format!("{r:?}").contains("n0t-the-pw"));
}

#[tokio::test]
async fn no_answer_in_time_is_cancelled_and_a_refusal_is_rejected() {
    let (addr, stats, _stop) = uas(CallUas {
        status: None,
        ..CallUas::default()
    })
    .await;
    let mut c = call_cfg(target_of(addr), Duration::from_secs(1));
    c.call.answer_timeout = Duration::from_millis(300);
    let (report, r) = call(c).await;
    assert_eq!(r.outcome, CallOutcome::NoAnswer, "{r:?}");
    assert_eq!(r.teardown, "CANCEL (487)");
    assert!(r.post_dial_delay.is_some() && r.setup.is_none());
    // The responder counts what it read; give its task a moment.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.uas.cancels.load(Ordering::SeqCst), 1);
    assert_eq!(stats.uas.acks.load(Ordering::SeqCst), 1, "the 487 is ACKed");
    assert!(!report.up);

    let (addr, stats, _stop) = uas(CallUas {
        status: Some(486),
        ..CallUas::default()
    })
    .await;
    let (_, r) = call(call_cfg(target_of(addr), Duration::from_secs(1))).await;
    assert_eq!((r.outcome, r.status), (CallOutcome::Rejected, Some(486)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.uas.acks.load(Ordering::SeqCst), 1);
    assert_eq!(stats.uas.rtp_received.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn silence_is_a_timeout_and_still_cancelled() {
    // A socket that reads and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let mut c = call_cfg(target_of(addr), Duration::from_secs(1));
    c.timeout = Duration::from_millis(700);
    let started = Instant::now();
    let (_, r) = call(c).await;
    assert_eq!(r.outcome, CallOutcome::Timeout, "{r:?}");
    assert!(r.teardown.starts_with("CANCEL"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut buf = vec![0u8; 4096];
    let mut methods = Vec::new();
    while let Ok(Ok((n, _))) =
        tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await
    {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        methods.push(text.split(' ').next().unwrap_or_default().to_string());
    }
    assert!(
        methods.iter().filter(|m| *m == "INVITE").count() >= 2,
        "Timer A: {methods:?}"
    );
    assert!(methods.iter().any(|m| m == "CANCEL"), "{methods:?}");
}

#[tokio::test]
async fn re_invites_are_answered_and_a_remote_bye_ends_the_call() {
    let (addr, stats, _stop) = uas(CallUas {
        reinvite_after: Some(Duration::from_millis(200)),
        hangup_after: Some(Duration::from_millis(500)),
        ..CallUas::default()
    })
    .await;
    let (_, r) = call(call_cfg(target_of(addr), Duration::from_secs(3))).await;
    assert_eq!(r.outcome, CallOutcome::Ok, "{r:?}");
    assert_eq!(r.reoffers_answered, 1);
    assert_eq!(r.teardown, "remote BYE");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stats.uas.reinvites_answered.load(Ordering::SeqCst), 1);
    assert_eq!(stats.uas.byes_answered.load(Ordering::SeqCst), 1);
    assert_eq!(
        stats.uas.byes.load(Ordering::SeqCst),
        0,
        "no BYE of ours after theirs"
    );
    let m = r.media.unwrap();
    assert!(m.sent < 50, "media stopped at the remote BYE: {m:?}");
}

#[tokio::test]
async fn a_call_cut_short_by_shutdown_is_still_torn_down() {
    let (addr, stats, _stop) = uas(CallUas::default()).await;
    let mut probe = TargetProbe::new(
        call_cfg(target_of(addr), Duration::from_secs(10)),
        ProbeContext::new(None),
    )
    .unwrap();
    // The round is dropped mid-call, as the runner drops rounds at shutdown.
    let cut = tokio::time::timeout(Duration::from_millis(500), probe.round()).await;
    assert!(cut.is_err());
    assert!(probe.needs_unregister(), "a BYE is pending");
    assert!(probe.unregister().await, "the BYE got its 200");
    assert_eq!(stats.uas.byes.load(Ordering::SeqCst), 1);
    assert!(!probe.needs_unregister());
}

#[tokio::test]
async fn the_one_shot_prints_the_figures_and_exits_by_outcome() {
    let (addr, _, _stop) = uas(CallUas::default()).await;
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_callpulse"))
                .args(args)
                .output()
                .unwrap()
        })
    };
    let out = run(vec![
        "probe".into(),
        target_of(addr),
        "--method".into(),
        "invite".into(),
        "--duration".into(),
        "1s".into(),
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("outcome: ok, status 200"), "{text}");
    assert!(text.contains("50 sent, 50 received (50 echoed)"), "{text}");
    assert!(
        text.contains("quality: R 9") && text.contains("MOS 4.3"),
        "{text}"
    );
    assert!(text.ends_with("result: healthy\n"), "{text}");

    let silent = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let dead = silent.local_addr().unwrap();
    let out = run(vec![
        "probe".into(),
        target_of(dead),
        "--method".into(),
        "invite".into(),
        "--timeout".into(),
        "300ms".into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run(vec![
        "probe".into(),
        format!("sip:echo@{addr};transport=tcp"),
        "--method".into(),
        "invite".into(),
    ])
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

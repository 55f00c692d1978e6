//! probe tests: real sockets on 127.0.0.1 (and ::1 when present), real time, against the
//! in-process responder.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use callpulse::config::{SipProbeConfig, SipTransport};
use callpulse::engine::EngineInput;
use callpulse::probe::responder::{
    ResponderBehaviour, ResponderStats, spawn_responder, spawn_responder_with_stats,
    spawn_tls_responder,
};
use callpulse::probe::{ProbeContext, ProbeReport, RequestOutcome, TargetProbe, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

struct Responder {
    addr: SocketAddr,
    stats: Arc<ResponderStats>,
    _stop: DropGuard,
}

async fn responder(behaviour: ResponderBehaviour) -> Responder {
    responder_at("127.0.0.1:0".parse().unwrap(), behaviour).await
}

async fn responder_at(bind: SocketAddr, behaviour: ResponderBehaviour) -> Responder {
    let stop = CancellationToken::new();
    let (addr, stats) = spawn_responder_with_stats(bind, behaviour, stop.clone())
        .await
        .unwrap();
    Responder {
        addr,
        stats,
        _stop: stop.drop_guard(),
    }
}

fn cfg(target: String) -> SipProbeConfig {
    let mut c = SipProbeConfig::new("t1", &target);
    c.count = 10;
    c.spacing = Duration::from_millis(20);
    c.timeout = Duration::from_millis(1000);
    c
}

async fn one_round(c: SipProbeConfig) -> ProbeReport {
    TargetProbe::new(c, ProbeContext::new(None))
        .unwrap()
        .round()
        .await
}

fn statuses(r: &ProbeReport) -> Vec<Option<u16>> {
    r.outcomes
        .iter()
        .map(|o| match o {
            RequestOutcome::Answered { status, .. } => Some(*status),
            _ => None,
        })
        .collect()
}

fn assert_plausible_rtts(r: &ProbeReport) {
    for rtt in r.rtts() {
        assert!(
            rtt > Duration::ZERO && rtt < Duration::from_millis(500),
            "{rtt:?}"
        );
    }
}

#[tokio::test]
async fn udp_compact_answers_give_zero_loss() {
    let peer = responder(ResponderBehaviour {
        compact: true,
        ..ResponderBehaviour::default()
    })
    .await;
    let r = one_round(cfg(format!("sip:{}", peer.addr))).await;
    assert_eq!(r.target, "t1");
    assert_eq!(r.transport, SipTransport::Udp);
    assert_eq!(statuses(&r), vec![Some(200); 10], "{r:?}");
    assert_eq!(r.loss_ratio, 0.0);
    assert!(r.up);
    assert_plausible_rtts(&r);
    let median = r.rtt_median.unwrap();
    assert!(median >= *r.rtts().iter().min().unwrap() && median <= *r.rtts().iter().max().unwrap());
    assert!(r.jitter.is_some());
    assert_eq!(r.dropped.total(), 0, "{:?}", r.dropped);
    assert_eq!((r.connect_duration, r.tls_handshake_duration), (None, None));
    assert_eq!(peer.stats.received.load(Ordering::SeqCst), 10);
}

#[tokio::test]
async fn udp_every_fourth_unanswered_is_exactly_25_percent_loss() {
    let peer = responder(ResponderBehaviour {
        drop_every: Some(4),
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = cfg(format!("sip:{};transport=udp", peer.addr));
    c.count = 20;
    c.spacing = Duration::from_millis(10);
    c.timeout = Duration::from_millis(300);
    let r = one_round(c).await;
    assert_eq!(r.loss_ratio, 0.25, "{r:?}");
    for (i, o) in r.outcomes.iter().enumerate() {
        if i % 4 == 3 {
            assert_eq!(o, &RequestOutcome::Timeout, "request {i}");
        } else {
            assert!(
                matches!(o, RequestOutcome::Answered { status: 200, .. }),
                "request {i}: {o:?}"
            );
        }
    }
    assert!(r.up, "a partly answering target is up");
}

#[tokio::test]
async fn garbage_foreign_spoofed_and_duplicate_answers_are_counted_and_dropped() {
    let peer = responder(ResponderBehaviour {
        noise: true,
        provisional: true,
        ..ResponderBehaviour::default()
    })
    .await;
    let r = one_round(cfg(format!("sip:{}", peer.addr))).await;
    assert_eq!(statuses(&r), vec![Some(200); 10], "{r:?}");
    assert_eq!(r.loss_ratio, 0.0);
    assert_plausible_rtts(&r);
    let d = r.dropped;
    assert_eq!(d.malformed, 10, "{d:?}");
    assert_eq!(d.unmatched, 10, "{d:?}");
    assert_eq!(d.spoofed, 10, "{d:?}");
    // The last answer's twin may arrive after the round has ended.
    assert!((9..=10).contains(&d.duplicate), "{d:?}");
    assert_eq!(d.late, 0);
}

#[tokio::test]
async fn late_answers_are_late_not_success() {
    let peer = responder(ResponderBehaviour {
        delay: Duration::from_millis(150),
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = cfg(format!("sip:{}", peer.addr));
    // Requests at 0, 200, 400 and 600 ms time out 120 ms later; their answers come at +150 ms.
    // The round lasts until 720 ms, so the first three answers are late within it with 170 ms
    // or more to spare (a loaded machine shifts the responder's sleeps by tens of ms).
    c.count = 4;
    c.spacing = Duration::from_millis(200);
    c.timeout = Duration::from_millis(120);
    let r = one_round(c).await;
    assert_eq!(r.outcomes, vec![RequestOutcome::Timeout; 4]);
    assert_eq!(r.loss_ratio, 1.0);
    assert!(!r.up);
    assert!(r.dropped.late >= 2, "{:?}", r.dropped);
}

#[tokio::test]
async fn unhealthy_status_is_alive_but_not_up() {
    let peer = responder(ResponderBehaviour {
        status: 503,
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = cfg(format!("sip:{}", peer.addr));
    c.count = 3;
    let r = one_round(c.clone()).await;
    assert_eq!(statuses(&r), vec![Some(503); 3]);
    assert_eq!(r.loss_ratio, 0.0);
    assert!(!r.up);
    c.up_codes = vec![200, 503];
    assert!(one_round(c).await.up);
}

#[tokio::test]
async fn tcp_frames_by_content_length_and_keeps_one_connection() {
    for compact in [false, true] {
        let peer = responder(ResponderBehaviour {
            compact,
            ..ResponderBehaviour::default()
        })
        .await;
        let mut probe = TargetProbe::new(
            cfg(format!("sip:{};transport=tcp", peer.addr)),
            ProbeContext::new(None),
        )
        .unwrap();
        let first = probe.round().await;
        assert_eq!(first.transport, SipTransport::Tcp);
        assert_eq!(statuses(&first), vec![Some(200); 10], "{first:?}");
        assert!(first.connect_duration.is_some());
        assert_eq!(first.tls_handshake_duration, None);
        let second = probe.round().await;
        assert_eq!(second.loss_ratio, 0.0);
        assert_eq!(second.connect_duration, None, "the connection is reused");
        assert_eq!(peer.stats.connections.load(Ordering::SeqCst), 1);
        assert_plausible_rtts(&second);
    }
}

#[tokio::test]
async fn tcp_noise_is_counted_and_reconnects_after_the_peer_goes_away() {
    let stop = CancellationToken::new();
    let behaviour = ResponderBehaviour {
        noise: true,
        ..ResponderBehaviour::default()
    };
    let (addr, _) = spawn_responder_with_stats(
        "127.0.0.1:0".parse().unwrap(),
        behaviour.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    let mut c = cfg(format!("sip:{addr};transport=tcp"));
    c.count = 4;
    let mut probe = TargetProbe::new(c, ProbeContext::new(None)).unwrap();
    let r = probe.round().await;
    assert_eq!(r.loss_ratio, 0.0, "{r:?}");
    assert_eq!(r.dropped.unmatched, 4, "{:?}", r.dropped);
    assert!(r.dropped.duplicate >= 3, "{:?}", r.dropped);

    // The peer closes; a new one comes up on the same port.
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let peer = responder_at(addr, ResponderBehaviour::default()).await;
    let r = probe.round().await;
    assert_eq!(r.loss_ratio, 0.0, "{r:?}");
    assert!(r.connect_duration.is_some(), "a new connection was made");
    assert_eq!(peer.stats.connections.load(Ordering::SeqCst), 1);
    // The first round's duplicate twin, queued on the old connection, never counts as an answer.
    assert_eq!(r.answered(), 4);
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Pki {
    dir: PathBuf,
    ca_file: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA and a leaf for `localhost` and 127.0.0.1 signed by it; the CA PEM is written to a file.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "callpulse test ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = std::env::temp_dir().join(format!(
        "callpulse-probe-tls-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    Pki {
        dir,
        ca_file,
        server: Arc::new(server),
    }
}

async fn tls_responder(pki: &Pki) -> (SocketAddr, DropGuard) {
    let stop = CancellationToken::new();
    let (addr, _) = spawn_tls_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour {
            compact: true,
            ..ResponderBehaviour::default()
        },
        pki.server.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    (addr, stop.drop_guard())
}

#[tokio::test]
async fn tls_with_a_private_ca_measures_connect_and_handshake_apart() {
    let pki = pki();
    let (addr, _stop) = tls_responder(&pki).await;
    for server_name in [Some("localhost"), None] {
        let mut c = cfg(format!("sip:{addr};transport=tls"));
        c.count = 3;
        c.tls.ca_file = Some(pki.ca_file.clone());
        c.tls.server_name = server_name.map(str::to_string);
        let r = one_round(c).await;
        assert_eq!(r.transport, SipTransport::Tls);
        assert_eq!(statuses(&r), vec![Some(200); 3], "{server_name:?}: {r:?}");
        let connect = r.connect_duration.unwrap();
        let handshake = r.tls_handshake_duration.unwrap();
        assert!(connect < Duration::from_secs(1) && handshake < Duration::from_secs(2));
        assert!(handshake > Duration::ZERO);
    }
}

#[tokio::test]
async fn tls_with_the_wrong_server_name_fails_clearly() {
    let pki = pki();
    let (addr, _stop) = tls_responder(&pki).await;
    let mut c = cfg(format!("sip:{addr};transport=tls"));
    c.count = 2;
    c.tls.ca_file = Some(pki.ca_file.clone());
    c.tls.server_name = Some("wrong.example".into());
    let r = one_round(c).await;
    assert_eq!(r.loss_ratio, 1.0);
    assert!(!r.up);
    let RequestOutcome::Error(first) = &r.outcomes[0] else {
        panic!("{r:?}")
    };
    assert!(first.contains("tls handshake with"), "{first}");
    assert!(first.contains("wrong.example"), "{first}");
    // The second request waits for the reconnect backoff instead of hammering the peer.
    let RequestOutcome::Error(second) = &r.outcomes[1] else {
        panic!("{r:?}")
    };
    assert!(second.contains("next reconnect attempt"), "{second}");
}

#[tokio::test]
async fn tls_untrusted_fails_and_insecure_skip_verify_works() {
    let pki = pki();
    let (addr, _stop) = tls_responder(&pki).await;
    let mut c = cfg(format!("sip:{addr};transport=tls"));
    c.count = 2;
    let r = one_round(c.clone()).await;
    assert!(
        matches!(&r.outcomes[0], RequestOutcome::Error(e) if e.contains("certificate")),
        "{r:?}"
    );
    c.tls.insecure_skip_verify = true;
    let r = one_round(c).await;
    assert_eq!(statuses(&r), vec![Some(200); 2], "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Oneshot

async fn run_oneshot(c: SipProbeConfig) -> (i32, String) {
    let mut out = Vec::new();
    let code = oneshot(c, &mut out).await;
    (code, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn oneshot_healthy_degraded_unreachable() {
    let healthy = responder(ResponderBehaviour::default()).await;
    let mut c = cfg(format!("sip:{}", healthy.addr));
    c.count = 4;
    let (code, out) = run_oneshot(c).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("status=200 rtt=").count(), 4, "{out}");
    assert!(
        out.contains("4 sent, 4 answered, 0 lost, 0.0% loss"),
        "{out}"
    );
    assert!(out.contains("rtt min/avg/max/median = "), "{out}");
    assert!(out.contains("result: healthy"), "{out}");

    let lossy = responder(ResponderBehaviour {
        drop_every: Some(2),
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = cfg(format!("sip:{}", lossy.addr));
    c.count = 4;
    c.timeout = Duration::from_millis(200);
    let (code, out) = run_oneshot(c).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("seq=2 timeout after 200ms"), "{out}");
    assert!(out.contains("50.0% loss"), "{out}");

    let busy = responder(ResponderBehaviour {
        status: 486,
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = cfg(format!("sip:{}", busy.addr));
    c.count = 2;
    assert_eq!(
        run_oneshot(c).await.0,
        1,
        "answers outside up_codes are degraded"
    );

    // Nothing listening: a port that was free a moment ago.
    let free = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = cfg(format!("sip:{free}"));
    c.count = 2;
    c.timeout = Duration::from_millis(200);
    let (code, out) = run_oneshot(c).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("result: unreachable"), "{out}");

    let free_tcp = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = cfg(format!("sip:{free_tcp};transport=tcp"));
    c.count = 2;
    let (code, out) = run_oneshot(c).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("seq=1 error: connect to"), "{out}");

    let (code, out) = run_oneshot(cfg("sip:[::1".into())).await;
    assert_eq!(code, callpulse::probe::oneshot::EXIT_USAGE);
    assert!(out.contains("invalid ipv6"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Addresses, marking

#[tokio::test]
async fn ipv6_dscp_and_source_binding() {
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        let peer = responder_at("[::1]:0".parse().unwrap(), ResponderBehaviour::default()).await;
        let mut c = cfg(format!("sip:[::1]:{}", peer.addr.port()));
        c.count = 3;
        c.dscp = Some(46);
        let r = one_round(c.clone()).await;
        assert_eq!(statuses(&r), vec![Some(200); 3], "{r:?}");
        c.target = format!("sip:[::1]:{};transport=tcp", peer.addr.port());
        assert_eq!(one_round(c).await.loss_ratio, 0.0);
    } else {
        eprintln!("no ipv6 loopback here; ipv6 part skipped");
    }
    let peer = responder(ResponderBehaviour::default()).await;
    let mut c = cfg(format!("sip:{}", peer.addr));
    c.count = 3;
    c.dscp = Some(46);
    c.source = Some("127.0.0.1:0".parse().unwrap());
    assert_eq!(one_round(c.clone()).await.loss_ratio, 0.0);
    c.target = format!("sip:{};transport=tcp", peer.addr);
    assert_eq!(one_round(c).await.loss_ratio, 0.0);
}

#[tokio::test]
async fn hostnames_resolve() {
    let peer = responder(ResponderBehaviour::default()).await;
    let mut c = cfg(format!("sip:localhost:{}", peer.addr.port()));
    c.count = 2;
    c.source = Some("127.0.0.1:0".parse().unwrap());
    let r = one_round(c).await;
    assert_eq!(r.loss_ratio, 0.0, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Scheduler

#[tokio::test]
async fn runner_caps_requests_in_flight_and_reports_every_target() {
    let peer = responder(ResponderBehaviour {
        delay: Duration::from_millis(60),
        ..ResponderBehaviour::default()
    })
    .await;
    let targets: Vec<SipProbeConfig> = (0..20)
        .map(|i| {
            let mut c = SipProbeConfig::new(&format!("t{i}"), &format!("sip:{}", peer.addr));
            c.interval = Duration::from_millis(400);
            c.count = 3;
            c.spacing = Duration::from_millis(5);
            c.timeout = Duration::from_secs(3);
            c
        })
        .collect();
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(callpulse::probe::run(targets, 4, tx, shutdown.clone()));
    let mut seen = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 20 {
        let msg = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("all targets report in time")
            .expect("runner alive");
        let EngineInput::Probe(r) = msg else {
            panic!("unexpected input")
        };
        assert_eq!(r.loss_ratio, 0.0, "{r:?}");
        assert!(r.rtts().iter().all(|rtt| *rtt >= Duration::from_millis(60)));
        seen.insert(r.target);
    }
    let max = peer.stats.max_in_progress.load(Ordering::SeqCst);
    assert!(max <= 4, "cap of 4 requests in flight exceeded: {max}");
    assert!(max >= 2, "the test should make requests overlap: {max}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(2), runner)
        .await
        .expect("runner stops promptly")
        .unwrap();
    // The runner dropped its sender: the engine sees the end of the stream after what is queued.
    while rx.recv().await.is_some() {}
}

#[tokio::test]
async fn runner_skips_invalid_targets_and_ends_when_the_engine_is_gone() {
    let addr = spawn_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let mut good = SipProbeConfig::new("good", &format!("sip:{addr}"));
    good.interval = Duration::from_millis(100);
    good.count = 1;
    let bad = SipProbeConfig::new("bad", "sip:[nope");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let runner = tokio::spawn(callpulse::probe::run(
        vec![bad, good],
        8,
        tx,
        CancellationToken::new(),
    ));
    let Some(EngineInput::Probe(r)) = rx.recv().await else {
        panic!("a report")
    };
    assert_eq!(r.target, "good");
    drop(rx);
    tokio::time::timeout(Duration::from_secs(3), runner)
        .await
        .expect("runner ends once the engine is gone")
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// REGISTER against the in-process registrar

use callpulse::config::{PasswordSource, ProbeAuth, ProbeMethod};
use callpulse::probe::responder::Registrar;
use callpulse::probe::{RegisterOutcome, RegisterResult};
use callpulse::sip::digest::{Algorithm, Secret};

const PASSWORD: &str = "pw-7c1e9d0a-probe";

fn register_cfg(target: String, password: &str) -> SipProbeConfig {
    let mut c = SipProbeConfig::new("reg-alice", &target);
    c.method = ProbeMethod::Register;
    c.timeout = Duration::from_millis(1000);
    c.register.aor = Some("sip:alice@callpulse.test".into());
    c.register.auth = Some(ProbeAuth {
        username: "alice".into(),
        password: PasswordSource::Value(Secret::new(password)),
        realm: None,
    });
    c
}

async fn registrar(r: Registrar) -> Responder {
    responder(ResponderBehaviour {
        registrar: Some(r),
        ..ResponderBehaviour::default()
    })
    .await
}

fn reg(r: &ProbeReport) -> &RegisterResult {
    r.register.as_ref().expect("a register result")
}

fn step_statuses(r: &RegisterResult) -> Vec<Option<u16>> {
    r.steps
        .iter()
        .map(|s| match s.result {
            RequestOutcome::Answered { status, .. } => Some(status),
            _ => None,
        })
        .collect()
}

fn bindings(s: &ResponderStats) -> Vec<(String, String, u32)> {
    s.bindings.lock().unwrap().clone()
}

#[tokio::test]
async fn register_answers_an_md5_challenge_and_unregisters_over_udp_and_tcp() {
    let peer = registrar(Registrar::new("alice", PASSWORD)).await;
    for transport in ["udp", "tcp"] {
        let report = one_round(register_cfg(
            format!("sip:{};transport={transport}", peer.addr),
            PASSWORD,
        ))
        .await;
        let r = reg(&report);
        assert_eq!(r.outcome, RegisterOutcome::Ok, "{transport}: {r:?}");
        assert!(report.up && report.outcomes.is_empty());
        assert_eq!(step_statuses(r), [Some(401), Some(200), Some(200)], "{r:?}");
        assert_eq!(
            r.steps
                .iter()
                .map(|s| (s.expires, s.authorized))
                .collect::<Vec<_>>(),
            [(120, false), (120, true), (0, true)],
            "challenge, answer, unREGISTER with a preemptive answer"
        );
        let d = r.duration.expect("a duration");
        assert!(
            d > Duration::ZERO && d < Duration::from_millis(500),
            "{d:?}"
        );
        let contact = r.contact.clone().unwrap();
        assert!(contact.starts_with("sip:alice@127.0.0.1:"), "{contact}");
        assert_eq!(contact.ends_with(";transport=tcp"), transport == "tcp");
        assert!(
            r.bindings.iter().any(|b| b.contains(&contact)),
            "the 200 lists our binding: {:?}",
            r.bindings
        );
        assert_eq!(r.unregistered, Some(true));
        assert!(bindings(&peer.stats).is_empty(), "unREGISTER removed it");
        assert_eq!(report.loss_ratio, 0.0);
    }
    assert_eq!(peer.stats.unregistered.load(Ordering::SeqCst), 2);
    assert_eq!(peer.stats.auth_failures.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn register_prefers_the_first_offered_algorithm_sha256() {
    let mut r = Registrar::new("alice", PASSWORD);
    r.algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
    let peer = registrar(r).await;
    let report = one_round(register_cfg(format!("sip:{}", peer.addr), PASSWORD)).await;
    assert_eq!(reg(&report).outcome, RegisterOutcome::Ok, "{report:?}");
    let used = peer.stats.answered_with.lock().unwrap().clone();
    assert_eq!(used, ["SHA-256", "SHA-256"], "REGISTER and unREGISTER");
}

#[tokio::test]
async fn register_with_a_wrong_password_is_auth_failed() {
    let peer = registrar(Registrar::new("alice", PASSWORD)).await;
    let report = one_round(register_cfg(format!("sip:{}", peer.addr), "Wr0ng-9e4b")).await;
    let r = reg(&report);
    assert_eq!(r.outcome, RegisterOutcome::AuthFailed, "{r:?}");
    assert_eq!((r.status, r.duration), (Some(401), None));
    assert_eq!(step_statuses(r), [Some(401), Some(401)]);
    assert!(!report.up);
    assert_eq!(peer.stats.auth_failures.load(Ordering::SeqCst), 1);
    assert!(bindings(&peer.stats).is_empty());
    let mut probe = TargetProbe::new(
        register_cfg(format!("sip:{}", peer.addr), "Wr0ng-9e4b"),
        ProbeContext::new(None),
    )
    .unwrap();
    assert_eq!(
        reg(&probe.round().await).outcome,
        RegisterOutcome::AuthFailed
    );
    assert!(
        !probe.needs_unregister(),
        "a refused REGISTER bound nothing"
    );
    let detail = r.detail.clone().unwrap();
    assert!(
        detail.contains("401") && !detail.contains("Wr0ng-9e4b"),
        "{detail}"
    );
    assert!(!format!("{report:?}").contains("Wr0ng-9e4b"));

    // No credentials at all: the challenge cannot be answered.
    let mut c = register_cfg(format!("sip:{}", peer.addr), PASSWORD);
    c.register.auth = None;
    let report = one_round(c).await;
    assert_eq!(reg(&report).outcome, RegisterOutcome::AuthFailed);
    assert_eq!(step_statuses(reg(&report)), [Some(401)]);
}

#[tokio::test]
async fn register_answers_stale_once_and_a_407_proxy_challenge() {
    let mut r = Registrar::new("alice", PASSWORD);
    r.stale_once = true;
    r.proxy = true;
    r.algorithms = vec![Algorithm::Sha256];
    let peer = registrar(r).await;
    let report = one_round(register_cfg(format!("sip:{}", peer.addr), PASSWORD)).await;
    let r = reg(&report);
    assert_eq!(r.outcome, RegisterOutcome::Ok, "{r:?}");
    assert_eq!(
        step_statuses(r),
        [Some(407), Some(407), Some(200), Some(200)],
        "challenge, stale=true, 200, unREGISTER"
    );
    assert!(
        r.steps[3].authorized,
        "the unREGISTER answers the last challenge"
    );
    // A second stale is not answered again: with stale_once spent, a wrong answer fails.
    let report = one_round(register_cfg(format!("sip:{}", peer.addr), "wrong")).await;
    assert_eq!(reg(&report).outcome, RegisterOutcome::AuthFailed);
}

#[tokio::test]
async fn register_retries_a_423_with_min_expires_and_keeps_it() {
    let mut r = Registrar::new("alice", PASSWORD);
    r.min_expires = Some(1800);
    let peer = registrar(r).await;
    let mut c = register_cfg(format!("sip:{}", peer.addr), PASSWORD);
    c.register.keep_registered = true;
    let mut probe = TargetProbe::new(c, ProbeContext::new(None)).unwrap();
    let report = probe.round().await;
    let r = reg(&report);
    assert_eq!(r.outcome, RegisterOutcome::Ok, "{r:?}");
    assert_eq!(step_statuses(r), [Some(401), Some(423), Some(200)]);
    assert_eq!(r.steps[2].expires, 1800);
    assert_eq!(r.unregistered, None, "keep_registered: no unREGISTER");
    assert_eq!(bindings(&peer.stats).len(), 1);
    assert_eq!(bindings(&peer.stats)[0].2, 1800);
    // The next round asks for 1800 straight away and refreshes the same binding.
    let report = probe.round().await;
    assert_eq!(step_statuses(reg(&report)), [Some(401), Some(200)]);
    assert_eq!(bindings(&peer.stats).len(), 1);
    // What shutdown does for a probe holding a binding.
    assert!(probe.unregister().await);
    assert!(bindings(&peer.stats).is_empty());
}

#[tokio::test]
async fn register_timeouts_retransmit_on_udp_and_connect_errors_are_errors() {
    // A bound socket that never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut c = register_cfg(format!("sip:{}", silent.local_addr().unwrap()), PASSWORD);
    c.timeout = Duration::from_millis(1200);
    let report = one_round(c).await;
    let r = reg(&report);
    assert_eq!(r.outcome, RegisterOutcome::Timeout, "{r:?}");
    assert_eq!(r.steps.len(), 1);
    assert_eq!(
        r.steps[0].retransmissions, 1,
        "Timer E: at 500 ms, next due at 1.5 s"
    );
    let mut buf = [0u8; 2048];
    let mut received = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await
    {
        received += 1;
    }
    assert_eq!(received, 2, "the request and one retransmission");
    assert_eq!(report.loss_ratio, 1.0);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let report = one_round(register_cfg(format!("sip:{addr};transport=tcp"), PASSWORD)).await;
    assert_eq!(reg(&report).outcome, RegisterOutcome::Error);
}

#[tokio::test]
async fn register_oneshot_prints_steps_duration_and_exit_code() {
    let peer = registrar(Registrar::new("alice", PASSWORD)).await;
    let (code, out) = run_oneshot(register_cfg(format!("sip:{}", peer.addr), PASSWORD)).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("step=1 REGISTER expires=120 status=401"),
        "{out}"
    );
    assert!(
        out.contains("step=2 REGISTER expires=120 (digest) status=200"),
        "{out}"
    );
    assert!(
        out.contains("step=3 unREGISTER (digest) status=200"),
        "{out}"
    );
    assert!(out.contains("outcome: ok, register duration "), "{out}");
    assert!(out.contains("result: healthy"), "{out}");
    assert!(!out.contains(PASSWORD));
    let (code, out) = run_oneshot(register_cfg(format!("sip:{}", peer.addr), "bad")).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("outcome: auth_failed"), "{out}");
}

#[tokio::test]
async fn register_cli_reads_the_password_from_the_environment_only() {
    let peer = registrar(Registrar::new("alice", PASSWORD)).await;
    let bin = env!("CARGO_BIN_EXE_callpulse");
    let uri = format!("sip:{};transport=tcp", peer.addr);
    let run = move |pw: Option<&str>| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["probe", &uri, "--method", "register", "--user", "alice"]);
        cmd.args(["--aor", "sip:alice@callpulse.test", "--timeout", "1s"]);
        cmd.env_remove("CALLPULSE_PROBE_PASSWORD");
        if let Some(pw) = pw {
            cmd.env("CALLPULSE_PROBE_PASSWORD", pw);
        }
        cmd.output().unwrap()
    };
    let ok = tokio::task::spawn_blocking(move || {
        let ok = run(Some(PASSWORD));
        let bad = run(Some("not-the-password"));
        let none = run(None);
        (ok, bad, none)
    })
    .await
    .unwrap();
    let (ok, bad, none) = ok;
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).contains("outcome: ok"), "{}", text(&ok));
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(!text(&bad).contains("not-the-password"));
    assert!(!text(&ok).contains(PASSWORD));
    // A missing password is a usage error (64), not "unreachable" (2).
    assert_eq!(none.status.code(), Some(64));
    assert!(
        text(&none).contains("CALLPULSE_PROBE_PASSWORD"),
        "{}",
        text(&none)
    );
}

#[test]
fn register_passwords_never_reach_validate_output() {
    let dir = std::env::temp_dir().join(format!("cp-reg-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "Sup3r-Secret-7f3a";
    let run = |yaml: &str| {
        let path = dir.join("callpulse.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callpulse"))
            .args(["validate", "--config"])
            .arg(&path)
            .env("CP_TEST_PROBE_PASS", secret)
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let base = "probes:\n  sip:\n    - name: reg-alice\n      method: REGISTER\n      target: \"sip:pbx.example.net;transport=tls\"\n      aor: \"sip:alice@example.net\"\n";
    let (code, out) = run(&format!(
        "{base}      auth: {{ username: alice, password: \"${{env:CP_TEST_PROBE_PASS}}\" }}\n"
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(secret), "{out}");
    // Another problem in the same probe: the report lists it, never the password.
    let (code, out) = run(&format!(
        "{base}      count: 3\n      auth: {{ username: alice, password: \"${{env:CP_TEST_PROBE_PASS}}\" }}\n"
    ));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("count: does not apply to method REGISTER"),
        "{out}"
    );
    assert!(!out.contains(secret), "{out}");
    // A literal password is refused without being echoed.
    let (code, out) = run(&format!(
        "{base}      auth: {{ username: alice, password: {secret} }}\n"
    ));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("must come from the environment"), "{out}");
    assert!(!out.contains(secret), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn register_config_keys_are_validated_together() {
    use callpulse::config::parse_str_with_env;
    let env = |name: &str| (name == "PROBE_PASS").then(|| "env-pw-1d2c".to_string());
    let head =
        "probes:\n  sip:\n    - name: reg\n      target: \"sip:pbx.example.net;transport=tls\"\n";
    let c = parse_str_with_env(
        &format!(
            "{head}      method: REGISTER\n      aor: \"sip:alice@example.net\"\n      expires: 300s\n      keep_registered: true\n      auth: {{ username: alice, password: \"${{env:PROBE_PASS}}\", realm: example.net }}\n"
        ),
        "t.yaml",
        &env,
    )
    .unwrap();
    let p = &c.probes.sip[0];
    assert_eq!(p.method, ProbeMethod::Register);
    assert_eq!(p.register.aor.as_deref(), Some("sip:alice@example.net"));
    assert_eq!(p.register.expires, Some(Duration::from_secs(300)));
    assert!(p.register.keep_registered);
    let auth = p.register.auth.as_ref().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.realm.as_deref()),
        ("alice", Some("example.net"))
    );
    assert!(matches!(&auth.password, PasswordSource::Value(s) if s.expose() == "env-pw-1d2c"));
    assert!(
        !format!("{c:?}").contains("env-pw-1d2c"),
        "Debug never shows it"
    );

    let c = parse_str_with_env(
        &format!("{head}      method: REGISTER\n      auth: {{ username: alice, password_file: /run/pw }}\n"),
        "t.yaml",
        &env,
    )
    .unwrap();
    assert!(matches!(
        &c.probes.sip[0].register.auth.as_ref().unwrap().password,
        PasswordSource::File(p) if p.to_str() == Some("/run/pw")
    ));

    for (body, path, needle) in [
        (
            "      method: register\n",
            "probes.sip[0].method",
            "expected one of OPTIONS, REGISTER",
        ),
        (
            "      aor: \"sip:a@b\"\n",
            "probes.sip[0].aor",
            "does not apply to method OPTIONS",
        ),
        (
            "      method: REGISTER\n      up_codes: [200]\n",
            "probes.sip[0].up_codes",
            "does not apply to method REGISTER",
        ),
        (
            "      method: REGISTER\n      auth: { username: alice }\n",
            "probes.sip[0].auth",
            "needs password",
        ),
        (
            "      method: REGISTER\n      auth: { username: alice, password: \"${env:PROBE_PASS}\", password_file: /x }\n",
            "probes.sip[0].auth",
            "not both",
        ),
        (
            "      method: REGISTER\n      auth: { username: alice, password: \"pre-${env:PROBE_PASS}\" }\n",
            "probes.sip[0].auth.password",
            "must come from the environment",
        ),
        (
            "      method: REGISTER\n      auth: { username: alice, password: \"${env:NOPE:-literal-pw}\" }\n",
            "probes.sip[0].auth.password",
            "without a default",
        ),
        (
            "      method: REGISTER\n      auth: { password: \"${env:PROBE_PASS}\" }\n",
            "probes.sip[0].auth",
            "missing required key \"username\"",
        ),
        (
            "      method: REGISTER\n      expires: 1500ms\n",
            "probes.sip[0].expires",
            "whole seconds",
        ),
        (
            "      method: REGISTER\n      keep_registered: true\n      expires: 60s\n",
            "probes.sip[0].expires",
            "outlive the interval",
        ),
        (
            "      method: REGISTER\n      timeout: 10s\n",
            "probes.sip[0].interval",
            "6 × timeout",
        ),
    ] {
        let err = parse_str_with_env(&format!("{head}{body}"), "t.yaml", &env).unwrap_err();
        let p = err
            .problems
            .iter()
            .find(|p| p.path == path)
            .unwrap_or_else(|| panic!("{path} in {err}"));
        assert!(p.message.contains(needle), "{body}: {}", p.message);
        assert!(!err.to_string().contains("env-pw-1d2c"), "{err}");
    }
}

#[tokio::test]
async fn register_over_tls_and_ipv6() {
    let pki = pki();
    let stop = CancellationToken::new();
    let (addr, stats) = spawn_tls_responder(
        "127.0.0.1:0".parse().unwrap(),
        ResponderBehaviour {
            registrar: Some(Registrar::new("alice", PASSWORD)),
            ..ResponderBehaviour::default()
        },
        pki.server.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    let _stop = stop.drop_guard();
    let mut c = register_cfg(
        format!("sip:localhost:{};transport=tls", addr.port()),
        PASSWORD,
    );
    c.tls.ca_file = Some(pki.ca_file.clone());
    let report = one_round(c).await;
    let r = reg(&report);
    assert_eq!(r.outcome, RegisterOutcome::Ok, "{r:?}");
    assert!(r.contact.as_deref().unwrap().ends_with(";transport=tls"));
    assert!(report.tls_handshake_duration.is_some());
    assert_eq!(stats.unregistered.load(Ordering::SeqCst), 1);

    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        let peer = responder_at(
            "[::1]:0".parse().unwrap(),
            ResponderBehaviour {
                registrar: Some(Registrar::new("alice", PASSWORD)),
                ..ResponderBehaviour::default()
            },
        )
        .await;
        for transport in ["udp", "tcp"] {
            let c = register_cfg(
                format!("sip:[::1]:{};transport={transport}", peer.addr.port()),
                PASSWORD,
            );
            let report = one_round(c).await;
            let r = reg(&report);
            assert_eq!(r.outcome, RegisterOutcome::Ok, "{transport}: {r:?}");
            assert!(
                r.contact
                    .as_deref()
                    .unwrap()
                    .starts_with("sip:alice@[::1]:"),
                "{r:?}"
            );
        }
    } else {
        eprintln!("no ipv6 loopback here; ipv6 part skipped");
    }
}

#[tokio::test]
async fn runner_unregisters_a_round_cut_short_at_shutdown() {
    let peer = responder(ResponderBehaviour {
        registrar: Some(Registrar::new("alice", PASSWORD)),
        delay: Duration::from_millis(300),
        ..ResponderBehaviour::default()
    })
    .await;
    let mut c = register_cfg(format!("sip:{}", peer.addr), PASSWORD);
    c.interval = Duration::from_secs(30);
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let shutdown = CancellationToken::new();
    let runner = tokio::spawn(callpulse::probe::run(vec![c], 8, tx, shutdown.clone()));
    // The first REGISTER is out (its 401 is 300 ms away) when shutdown comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(peer.stats.registers.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("runner stops within its unregister deadline")
        .unwrap();
    assert!(
        rx.recv().await.is_none(),
        "no report for the abandoned round"
    );
    assert_eq!(
        peer.stats.unregistered.load(Ordering::SeqCst),
        1,
        "an Expires: 0 REGISTER went out and was accepted"
    );
    assert!(bindings(&peer.stats).is_empty());
}

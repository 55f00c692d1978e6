//! probe_interop tests: the prober against real SIP peers on 127.0.0.1 — Kamailio (stateless
//! `sl_send_reply`, tests/kamailio/kamailio.cfg) and SIPp as a UAS (tests/sipp/*.xml).
//! `#[ignore]`d: `.ci/run` installs Debian's `kamailio` and `sip-tester`, then runs them with
//! `cargo test --test it -- --ignored probe_interop::`.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use callpulse::config::SipProbeConfig;
use callpulse::probe::{ProbeContext, ProbeReport, RequestOutcome, TargetProbe, oneshot};

fn have(binary: &str) -> bool {
    Command::new("which")
        .arg(binary)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn require(binary: &str) {
    assert!(
        have(binary),
        "{binary} is not installed: apt-get install -y kamailio sip-tester (see .ci/run)"
    );
}

/// A port free on 127.0.0.1 for both UDP and TCP a moment ago.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "callpulse-{tag}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A peer process, stopped by its pid (SIGTERM, then SIGKILL) and its temp dir removed on drop.
struct Peer {
    child: Child,
    dir: PathBuf,
    name: &'static str,
}

impl Peer {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} ({pid}) ignored SIGTERM; killing", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(name: &'static str, cmd: &mut Command, dir: PathBuf) -> Peer {
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let stdout = std::fs::File::create(dir.join("stdout.log")).unwrap();
    let child = cmd
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Peer { child, dir, name }
}

/// Waits until something holds UDP `port` on 127.0.0.1 (our own bind fails).
fn wait_udp_bound(peer: &mut Peer, port: u16) {
    for _ in 0..100 {
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            return;
        }
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!("{} exited early ({status}):\n{}", peer.name, peer.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} never bound udp port {port}:\n{}", peer.name, peer.log());
}

fn start_kamailio() -> (Peer, u16) {
    require("kamailio");
    let port = free_port();
    let dir = temp_dir("kamailio");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/kamailio.cfg");
    let mut cmd = Command::new("kamailio");
    cmd.arg("-f")
        .arg(&cfg)
        .arg("-A")
        .arg(format!("CP_PORT={port}"))
        .args(["-DD", "-E"])
        .arg("-Y")
        .arg(&dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .arg("-w")
        .arg(&dir);
    let mut peer = spawn("kamailio", &mut cmd, dir);
    wait_udp_bound(&mut peer, port);
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (peer, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kamailio never listened on tcp {port}:\n{}", peer.log());
}

fn start_sipp(scenario: &str, pause: Duration) -> (Peer, u16) {
    require("sipp");
    let port = free_port();
    let dir = temp_dir("sipp");
    let xml = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let mut cmd = Command::new("sipp");
    cmd.arg("-sf")
        .arg(&xml)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1"])
        .args(["-nostdin", "-nd", "-trace_err", "-error_file"])
        .arg(dir.join("errors.log"))
        .args(["-d", &pause.as_millis().to_string()]);
    let mut peer = spawn("sipp", &mut cmd, dir);
    wait_udp_bound(&mut peer, port);
    (peer, port)
}

fn target(name: &str, uri: String, count: u32, spacing_ms: u64, timeout_ms: u64) -> SipProbeConfig {
    let mut c = SipProbeConfig::new(name, &uri);
    c.count = count;
    c.spacing = Duration::from_millis(spacing_ms);
    c.timeout = Duration::from_millis(timeout_ms);
    c
}

async fn round(c: SipProbeConfig) -> ProbeReport {
    TargetProbe::new(c, ProbeContext::new(None))
        .unwrap()
        .round()
        .await
}

fn all_200(r: &ProbeReport) -> bool {
    r.outcomes
        .iter()
        .all(|o| matches!(o, RequestOutcome::Answered { status: 200, .. }))
}

#[tokio::test]
#[ignore = "interop: needs kamailio and sipp (installed by .ci/run)"]
async fn kamailio_answers_options_over_udp_and_tcp() {
    let (kamailio, port) = start_kamailio();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();

    let r = round(target("kamailio-udp", format!("sip:{addr}"), 10, 50, 2000)).await;
    assert!(all_200(&r), "{r:?}\n{}", kamailio.log());
    assert_eq!(r.loss_ratio, 0.0);
    assert!(r.up);
    assert_eq!(r.dropped.total(), 0, "{:?}", r.dropped);
    assert!(r.rtt_median.unwrap() < Duration::from_millis(100));

    let mut probe = TargetProbe::new(
        target(
            "kamailio-tcp",
            format!("sip:{addr};transport=tcp"),
            10,
            50,
            2000,
        ),
        ProbeContext::new(None),
    )
    .unwrap();
    let r = probe.round().await;
    assert!(all_200(&r), "{r:?}\n{}", kamailio.log());
    assert!(r.connect_duration.is_some());
    let again = probe.round().await;
    assert!(all_200(&again), "{again:?}");
    assert_eq!(
        again.connect_duration, None,
        "kamailio kept the connection open"
    );

    let mut out = Vec::new();
    let code = oneshot(
        target("kamailio", format!("sip:{addr}"), 3, 50, 2000),
        &mut out,
    )
    .await;
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&out));
}

#[tokio::test]
#[ignore = "interop: needs kamailio and sipp (installed by .ci/run)"]
async fn sipp_answering_after_a_pause_gives_that_rtt() {
    let pause = Duration::from_millis(50);
    let (sipp, port) = start_sipp("options_uas.xml", pause);
    // Spacing above the pause: one request at a time, as an operator's probe would be.
    let r = round(target(
        "sipp",
        format!("sip:127.0.0.1:{port}"),
        8,
        120,
        2000,
    ))
    .await;
    assert!(all_200(&r), "{r:?}\n{}", sipp.log());
    let slack = Duration::from_millis(15);
    // SIPp times its pause with a millisecond clock read once per loop (`clock_tick`), so it can
    // start the pause from a reading up to ~1 ms stale and answer up to 1 ms before a true 50 ms.
    let sipp_clock = Duration::from_millis(1);
    for rtt in r.rtts() {
        assert!(
            rtt + sipp_clock >= pause,
            "rtt {rtt:?} shorter than the pause"
        );
        assert!(
            rtt <= pause + slack,
            "rtt {rtt:?} more than {slack:?} over the pause"
        );
    }
    let median = r.rtt_median.unwrap();
    assert!(
        median.abs_diff(pause) < Duration::from_millis(5),
        "median {median:?}"
    );
    eprintln!(
        "sipp pause {pause:?}: rtts {:?}, median {median:?}, jitter {:?}",
        r.rtts(),
        r.jitter
    );
}

#[tokio::test]
#[ignore = "interop: needs kamailio and sipp (installed by .ci/run)"]
async fn sipp_leaving_every_fourth_unanswered_gives_25_percent_loss() {
    let (sipp, port) = start_sipp("options_uas_drop4.xml", Duration::ZERO);
    let r = round(target(
        "sipp-drop4",
        format!("sip:127.0.0.1:{port}"),
        20,
        20,
        500,
    ))
    .await;
    assert_eq!(r.loss_ratio, 0.25, "{r:?}\n{}", sipp.log());
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
}

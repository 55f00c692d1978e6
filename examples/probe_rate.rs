//! How many active probes one process sustains: REGISTER rounds (digest challenge, 200,
//! unREGISTER) and synthetic calls (INVITE, 1 s of RTP at 20 ms, BYE), each run by many targets
//! at once against the built-in registrar / echo UAS on 127.0.0.1, in this same process (so the
//! CPU figure covers both ends: an upper bound for the prober alone).
//!
//! ```sh
//! cargo run --release --example probe_rate            # 10 s per stage
//! cargo run --release --example probe_rate -- 30      # 30 s per stage
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use callpulse::config::{PasswordSource, ProbeAuth, ProbeMethod, SipProbeConfig};
use callpulse::probe::responder::{Registrar, ResponderBehaviour, spawn_responder_with_stats};
use callpulse::probe::round::{ProbeContext, TargetProbe};
use callpulse::probe::uas::CallUas;
use callpulse::sip::digest::Secret;
use tokio_util::sync::CancellationToken;

/// CPU seconds this process has used (utime + stime).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn stage(
    name: &str,
    targets: usize,
    span: Duration,
    cfg: impl Fn(usize) -> SipProbeConfig,
    ok: impl Fn(&callpulse::probe::ProbeReport) -> bool + Send + Sync + 'static,
) {
    let ctx = ProbeContext::new(None);
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(ok);
    let stop = Instant::now() + span;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..targets {
        let mut probe = match TargetProbe::new(cfg(i), ctx.clone()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{name}: target {i}: {e}");
                return;
            }
        };
        let (done, failed, ok) = (done.clone(), failed.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < stop {
                let r = probe.round().await;
                if ok(&r) {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let n = done.load(Ordering::Relaxed);
    println!(
        "{name:<40} {targets:>4} targets: {:>8.1} rounds/s ok, {} failed, CPU {:.2} cores ({:.0} µs per round, both ends)",
        n as f64 / secs,
        failed.load(Ordering::Relaxed),
        cpu / secs,
        cpu * 1e6 / n.max(1) as f64,
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let span = Duration::from_secs(secs);
    let stop = CancellationToken::new();
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let Ok((reg_addr, _)) = spawn_responder_with_stats(
        local,
        ResponderBehaviour {
            registrar: Some(Registrar::new("alice", "s3cret-bench")),
            ..ResponderBehaviour::default()
        },
        stop.clone(),
    )
    .await
    else {
        eprintln!("cannot start the registrar");
        return;
    };
    let Ok((uas_addr, _)) = spawn_responder_with_stats(
        local,
        ResponderBehaviour {
            uas: Some(CallUas::default()),
            ..ResponderBehaviour::default()
        },
        stop.clone(),
    )
    .await
    else {
        eprintln!("cannot start the echo UAS");
        return;
    };
    println!(
        "one tokio worker (current_thread), prober and peers in one process, {secs} s per stage"
    );
    for targets in [1, 10, 100] {
        stage(
            "REGISTER (401 challenge, 200, unREGISTER)",
            targets,
            span,
            |i| {
                let mut c = SipProbeConfig::new(&format!("reg-{i}"), &format!("sip:{reg_addr}"));
                c.method = ProbeMethod::Register;
                c.timeout = Duration::from_secs(2);
                c.register.aor = Some("sip:alice@callpulse.test".into());
                c.register.auth = Some(ProbeAuth {
                    username: "alice".into(),
                    password: PasswordSource::Value(Secret::new("s3cret-bench")),
                    realm: None,
                });
                c
            },
            |r| r.up,
        )
        .await;
    }
    for targets in [1, 20, 100] {
        stage(
            "INVITE, 1 s of PCMU at 20 ms, BYE",
            targets,
            span,
            |i| {
                let mut c =
                    SipProbeConfig::new(&format!("call-{i}"), &format!("sip:echo@{uas_addr}"));
                c.method = ProbeMethod::Invite;
                c.timeout = Duration::from_secs(2);
                c.call.duration = Duration::from_secs(1);
                c.call.answer_timeout = Duration::from_secs(5);
                c.interval = Duration::from_secs(300);
                c
            },
            |r| r.up,
        )
        .await;
    }
    stop.cancel();
}

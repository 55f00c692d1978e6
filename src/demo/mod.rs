//! `callpulse demo`: the real pipeline on the embedded defaults, fed over real OTLP by a simulated
//! PBX, probing built-in SIP responders, printing the derived metrics on the console.
//!
//! Time: the PBX's traffic and the engine's clock run `speed` times faster than the wall clock
//! (a [`ManualClock`] the feeder advances), so a 5-minute alert window passes in 30 s at the
//! default speed 10. Probe rounds keep their real timers, with the interval divided by `speed`.

pub mod pbx;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::app::{self, Hooks};
use crate::clock::ManualClock;
use crate::config::{Config, ConsoleConfig, ListenerConfig, SipProbeConfig};
use crate::probe::responder::{ResponderBehaviour, spawn_responder};
use pbx::SimulatedPbx;

/// The PBX identity the simulated PBX reports.
pub const DEMO_PBX: &str = "demo-pbx";
/// Simulated seconds during which the second SBC answers nothing.
pub const SBC_DARK: std::ops::Range<u64> = 300..600;

fn resource_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    let attr = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    attr("service.name", "asterisk"),
                    attr("service.instance.id", DEMO_PBX),
                ],
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

/// The demo's config: the embedded defaults, with receivers on free ports (so a Collector
/// already on 4317/4318 is not in the way), the console every 10 s, and three probe targets.
pub fn demo_config(speed: u32, sbc_a: SocketAddr, sbc_b: SocketAddr, sbc_c: SocketAddr) -> Config {
    let mut cfg = Config::default();
    cfg.receiver.grpc = Some(ListenerConfig::new(([127, 0, 0, 1], 0).into()));
    cfg.receiver.http = Some(ListenerConfig::new(([127, 0, 0, 1], 0).into()));
    cfg.exporters.console = Some(ConsoleConfig {
        interval: Duration::from_secs(10),
        verbose: false,
    });
    cfg.telemetry.instance_id = Some("callpulse-demo".into());
    let interval = Duration::from_secs(60) / speed.max(1);
    let target = |name: &str, uri: String| {
        let mut t = SipProbeConfig::new(name, &uri);
        t.interval = interval;
        t.count = 10;
        t.spacing = (interval / 40).max(Duration::from_millis(20));
        t.timeout = Duration::from_millis(800).min(interval / 2);
        t
    };
    cfg.probes.sip = vec![
        target("sbc-lossy", format!("sip:{sbc_a}")),
        target("sbc-flaky", format!("sip:{sbc_b}")),
        target("sbc-tcp", format!("sip:{sbc_c};transport=tcp")),
    ];
    cfg
}

/// What each built-in responder of [`demo_config`] does, for the banner.
fn responder_role(name: &str) -> String {
    match name {
        "sbc-lossy" => "UDP, drops 5 % of requests".into(),
        "sbc-flaky" => format!(
            "UDP, stops answering {}–{} of each cycle",
            mmss(SBC_DARK.start),
            mmss(SBC_DARK.end)
        ),
        "sbc-tcp" => "TCP, compact headers".into(),
        _ => String::new(),
    }
}

fn mmss(sim: u64) -> String {
    format!("{:02}:{:02}", sim / 60, sim % 60)
}

fn announce(sim: u64) -> Option<String> {
    let phase = sim % pbx::CYCLE_SECONDS;
    let msg = match phase {
        p if p == pbx::REGISTRATION_BURST.start => {
            "registration failures burst (403s): expect registration_failures to fire"
        }
        p if p == pbx::REGISTRATION_BURST.end => {
            "registrations healthy again: registration_failures resolves once the burst leaves its 5 m window"
        }
        p if p == pbx::POOR_QUALITY.start => {
            "carrier-b degrades (G.729, 4 % loss, 300 ms RTT): MOS falls, call_mos_low fires after 5 m"
        }
        p if p == pbx::POOR_QUALITY.end => "carrier-b recovers",
        p if p == SBC_DARK.start => {
            "sbc-flaky stops answering: probe_unreachable fires after 3 rounds"
        }
        p if p == SBC_DARK.end => "sbc-flaky answers again",
        p if p == pbx::OUTAGE_AT => {
            "half of carrier-a's calls drop at once: active_calls_drop fires"
        }
        p if p == pbx::ABANDON_SURGE.start => {
            "queue 'support' understaffed: abandon ratio climbs past 15 %"
        }
        p if p == pbx::ABANDON_SURGE.end => "queue 'support' staffed again",
        _ => return None,
    };
    Some(format!("[demo {}] {msg}", mmss(sim)))
}

/// Runs the demo until `shutdown` fires; `verbose` prints every series instead of the summary.
pub async fn run(
    speed: u32,
    prometheus: SocketAddr,
    verbose: bool,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let local: SocketAddr = ([127, 0, 0, 1], 0).into();
    let responders = shutdown.child_token();
    let lossy = ResponderBehaviour {
        loss: 0.05,
        delay: Duration::from_millis(3),
        ..Default::default()
    };
    let sbc_a = spawn_responder(local, lossy, responders.clone())
        .await
        .context("starting demo SIP responder")?;
    let mut flaky_token = responders.child_token();
    let sbc_b = spawn_responder(local, ResponderBehaviour::default(), flaky_token.clone())
        .await
        .context("starting demo SIP responder")?;
    let sbc_c = spawn_responder(
        local,
        ResponderBehaviour {
            compact: true,
            ..Default::default()
        },
        responders.clone(),
    )
    .await
    .context("starting demo SIP responder")?;

    let mut cfg = demo_config(speed, sbc_a, sbc_b, sbc_c);
    if let Some(console) = &mut cfg.exporters.console {
        console.verbose = verbose;
    }
    let probes: Vec<(String, String)> = cfg
        .probes
        .sip
        .iter()
        .map(|t| (t.name.clone(), t.target.clone()))
        .collect();
    cfg.exporters.prometheus = Some(crate::config::PrometheusConfig {
        endpoint: prometheus,
    });
    let clock = ManualClock::new(SystemTime::now());
    let (ready_tx, ready_rx) = oneshot::channel();
    let app_shutdown = CancellationToken::new();
    let app = tokio::spawn(app::run(
        cfg,
        Arc::new(clock.clone()),
        app_shutdown.clone(),
        Hooks {
            ready: Some(ready_tx),
            snapshots: None,
        },
    ));
    let endpoints = match ready_rx.await {
        Ok(e) => e,
        Err(_) => {
            return app
                .await
                .context("callpulse task")?
                .context("callpulse did not start");
        }
    };
    let grpc = endpoints.grpc.context("demo needs the gRPC receiver")?;
    println!(
        "callpulse demo: a simulated PBX sends OTLP logs to {grpc}; SIP probes hit {} built-in responders:",
        probes.len()
    );
    for (name, target) in &probes {
        println!("  {name:<10} {target:<40} {}", responder_role(name));
    }
    if let Some(p) = endpoints.prometheus {
        println!("  metrics: http://{p}/metrics   (console summary every 10 s; Ctrl-C stops)");
    }
    println!(
        "  simulated time runs {speed}x (a {}-minute scenario repeats)",
        pbx::CYCLE_SECONDS / 60
    );

    let mut client = LogsServiceClient::connect(format!("http://{grpc}"))
        .await
        .context("connecting the simulated PBX to the receiver")?
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let mut pbx = SimulatedPbx::new(42);
    let step = Duration::from_secs(1) / speed.max(1);
    let mut ticker = tokio::time::interval(step);
    let mut pending: Vec<LogRecord> = Vec::new();
    let mut sim: u64 = 0;
    let mut dark = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticker.tick() => {}
        }
        clock.advance(Duration::from_secs(1));
        sim += 1;
        if let Some(line) = announce(sim) {
            println!("{line}");
        }
        let phase = sim % pbx::CYCLE_SECONDS;
        if SBC_DARK.contains(&phase) != dark {
            dark = !dark;
            if dark {
                flaky_token.cancel();
            } else {
                flaky_token = responders.child_token();
                // The port was ours a moment ago; a failed re-bind only keeps the target down longer.
                if let Err(e) =
                    spawn_responder(sbc_b, ResponderBehaviour::default(), flaky_token.clone()).await
                {
                    tracing::warn!(error = %e, "demo responder could not restart");
                    dark = true;
                }
            }
        }
        let nanos = clock_nanos(&clock);
        pending.extend(pbx.step(sim, nanos));
        // Unavailable (back-pressure) keeps the records for the next second, like an OTLP client.
        match client.export(resource_request(pending.clone())).await {
            Ok(_) => pending.clear(),
            Err(status) if pending.len() > 10_000 => {
                tracing::warn!(%status, "demo feeder dropping records");
                pending.clear();
            }
            Err(_) => {}
        }
    }
    app_shutdown.cancel();
    responders.cancel();
    app.await.context("callpulse task")?
}

fn clock_nanos(clock: &ManualClock) -> u64 {
    use crate::clock::Clock;
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

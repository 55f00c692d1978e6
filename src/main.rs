//! The `callpulse` command: parses arguments, sets up logging and the runtime, maps outcomes to
//! exit codes (0 clean stop, 1 runtime failure, 2 config or usage error; `probe` has its own: 0
//! healthy, 1 degraded, 2 unreachable, 64 usage). No logic lives here.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use callpulse::clock::SystemClock;
use callpulse::config::{self, Config};

/// mimalloc instead of glibc's malloc: decoding allocates a `String` for every attribute key and
/// value (about 15 per CDR) and frees them a moment later, and glibc's `malloc`/`free` took a
/// quarter of the samples at 30,000 records/s; mimalloc's per-thread free lists serve that
/// pattern faster, and its per-thread heaps do not contend when the blocking pool decodes
/// concurrent requests (figures in docs/performance.md, "Fixes made"). Built with `no_thp`:
/// otherwise it asks for transparent huge pages and the sidecar's RSS nearly doubles (46
/// instead of 27 MiB at 10,000 records/s). MIT-licensed C, built by `cc` with the system compiler.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Call-experience metrics and alerts for VoIP, next to an OpenTelemetry Collector.
#[derive(Debug, Parser)]
#[command(name = "callpulse", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the sidecar (config: --config, else ./callpulse.yaml when present, else the embedded defaults).
    Run {
        /// Config file (YAML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Console: print every series, one line each, instead of the one-screen summary.
        #[arg(long)]
        verbose: bool,
    },
    /// Check a config file (`validate FILE` or `validate --config FILE`); exit 0 when valid, 2
    /// listing every problem.
    #[command(group(clap::ArgGroup::new("input").required(true).args(["file", "config"])))]
    Validate {
        /// Config file (YAML).
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Config file (YAML), as `run --config` takes it.
        #[arg(long, short, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the real pipeline fed by a built-in simulated PBX and SIP responder (no PBX, Collector or backend needed).
    Demo {
        /// Stop after this long (e.g. `2m`); default: until Ctrl-C.
        #[arg(long)]
        duration: Option<String>,
        /// Simulated-time speed-up of the PBX traffic and the engine's clock (1 = real time).
        #[arg(long, default_value_t = 10)]
        speed: u32,
        /// Address of the Prometheus `/metrics` endpoint (port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:9464")]
        prometheus: std::net::SocketAddr,
        /// Print every series, one line each, instead of the one-screen summary.
        #[arg(long)]
        verbose: bool,
    },
    /// Probe one SIP URI with OPTIONS, like sipsak: one line per request, then a summary; or
    /// register once with `--method register` (password from CALLPULSE_PROBE_PASSWORD).
    /// Exit 0 healthy, 1 degraded, 2 unreachable, 64 usage error.
    Probe {
        /// `sip:host[:port][;transport=udp|tcp|tls]`.
        uri: String,
        /// Requests to send.
        #[arg(long, default_value_t = 10)]
        count: u32,
        /// Gap between requests.
        #[arg(long, default_value = "200ms")]
        spacing: String,
        /// How long to wait for each response.
        #[arg(long, default_value = "2s")]
        timeout: String,
        /// `options`, `register` or `invite`.
        #[arg(long, default_value = "options")]
        method: String,
        /// REGISTER: digest username (the password comes from CALLPULSE_PROBE_PASSWORD).
        #[arg(long)]
        user: Option<String>,
        /// REGISTER: address of record (default sip:USER@target-host).
        #[arg(long)]
        aor: Option<String>,
        /// INVITE: how long RTP flows once the call is answered (default 10s).
        #[arg(long)]
        duration: Option<String>,
    },
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // The SDK repeats its failure lines on every failed export: once a minute per line is enough.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .with(callpulse::export::SdkLogLimit::default())
        .try_init();
}

fn load_config(path: Option<&Path>) -> Result<Config, config::ConfigError> {
    match path {
        Some(p) => config::load(p),
        None if Path::new("callpulse.yaml").exists() => config::load(Path::new("callpulse.yaml")),
        None => Ok(Config::default()),
    }
}

fn report_config_error(e: &config::ConfigError) -> ExitCode {
    for p in &e.problems {
        eprintln!("error: {p}");
    }
    eprintln!("{} problem(s) found", e.problems.len());
    ExitCode::from(2)
}

fn parse_duration_arg(name: &str, value: &str) -> Result<Duration, ExitCode> {
    config::parse_duration(value).map_err(|e| {
        eprintln!("error: --{name}: {e}");
        ExitCode::from(2)
    })
}

/// `probe`'s usage errors exit 64 (EX_USAGE): its 2 means "unreachable".
const PROBE_EXIT_USAGE: u8 = callpulse::probe::oneshot::EXIT_USAGE as u8;

/// Parses the command line; a usage error of `probe` exits 64 instead of clap's 2.
fn parse_cli() -> Cli {
    Cli::try_parse().unwrap_or_else(|e| {
        let probe = std::env::args().nth(1).as_deref() == Some("probe");
        if probe && e.use_stderr() {
            let _ = e.print();
            std::process::exit(PROBE_EXIT_USAGE.into());
        }
        e.exit()
    })
}

/// `--method register --user U [--aor A]`: the password only from the environment, so it is
/// never on a command line (visible in `ps`) or in shell history.
fn probe_method_args(
    cfg: &mut config::SipProbeConfig,
    method: &str,
    user: Option<String>,
    aor: Option<String>,
) -> Result<(), String> {
    const PASSWORD_ENV: &str = "CALLPULSE_PROBE_PASSWORD";
    match method.to_ascii_lowercase().as_str() {
        "options" if user.is_none() && aor.is_none() => Ok(()),
        "options" => Err("--user and --aor apply to --method register or invite".into()),
        "invite" if aor.is_some() => Err("--aor applies to --method register".into()),
        "invite" => {
            cfg.method = config::ProbeMethod::Invite;
            if let Some(username) = user {
                let password = std::env::var(PASSWORD_ENV)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| format!("--user needs the password in {PASSWORD_ENV}"))?;
                cfg.register.auth = Some(config::ProbeAuth {
                    username,
                    password: config::PasswordSource::Value(callpulse::sip::digest::Secret::new(
                        password,
                    )),
                    realm: None,
                });
            }
            Ok(())
        }
        "register" => {
            cfg.method = config::ProbeMethod::Register;
            cfg.register.aor = aor;
            if let Some(username) = user {
                let password = std::env::var(PASSWORD_ENV)
                    .ok()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| format!("--user needs the password in {PASSWORD_ENV}"))?;
                cfg.register.auth = Some(config::ProbeAuth {
                    username,
                    password: config::PasswordSource::Value(callpulse::sip::digest::Secret::new(
                        password,
                    )),
                    realm: None,
                });
            }
            Ok(())
        }
        other => Err(format!(
            "--method: expected options, register or invite, got {other:?}"
        )),
    }
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Multi-thread: the OTLP gRPC exporter spawns onto the runtime and its SDK threads block on it.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // One worker unless `TOKIO_WORKER_THREADS` says otherwise: a sidecar should stay small. At
    // 10,000 records/s two workers cost ~4.5 % of a core, mostly waking each other; one costs ~3 %
    // and still ingests over 300,000 records/s (docs/performance.md).
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    builder
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn run_service(cfg: Config) -> anyhow::Result<()> {
    let rt = runtime()?;
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            stop_signal().await;
            s.cancel();
        });
        callpulse::app::run(cfg, Arc::new(SystemClock), shutdown, Default::default()).await
    })
}

fn main() -> ExitCode {
    let cli = parse_cli();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Validate { file, config } => {
            match file.or(config).map(|f| (config::load(&f), f)) {
                None => ExitCode::from(2),
                Some((loaded, config)) => match loaded {
                    Ok(_) => {
                        println!("{}: ok", config.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => report_config_error(&e),
                },
            }
        }
        Command::Run { config, verbose } => {
            let mut cfg = match load_config(config.as_deref()) {
                Ok(c) => c,
                Err(e) => return report_config_error(&e),
            };
            if let (true, Some(console)) = (verbose, &mut cfg.exporters.console) {
                console.verbose = true;
            }
            init_logging(&cfg.telemetry.log_level);
            match run_service(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "callpulse failed");
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Demo {
            duration,
            speed,
            prometheus,
            verbose,
        } => {
            let duration = match duration
                .map(|d| parse_duration_arg("duration", &d))
                .transpose()
            {
                Ok(d) => d,
                Err(code) => return code,
            };
            init_logging("info,opentelemetry_sdk=warn");
            let result = runtime().and_then(|rt| {
                rt.block_on(async move {
                    let shutdown = CancellationToken::new();
                    let s = shutdown.clone();
                    tokio::spawn(async move {
                        match duration {
                            Some(d) => tokio::select! { _ = stop_signal() => {}, _ = tokio::time::sleep(d) => {} },
                            None => stop_signal().await,
                        }
                        s.cancel();
                    });
                    callpulse::demo::run(speed.max(1), prometheus, verbose, shutdown).await
                })
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Probe {
            uri,
            count,
            spacing,
            timeout,
            method,
            user,
            aor,
            duration,
        } => {
            let (spacing, timeout) = match (
                parse_duration_arg("spacing", &spacing),
                parse_duration_arg("timeout", &timeout),
            ) {
                (Ok(s), Ok(t)) => (s, t),
                (Err(_), _) | (_, Err(_)) => return ExitCode::from(PROBE_EXIT_USAGE),
            };
            init_logging("warn");
            let mut cfg = config::SipProbeConfig::new("cli", &uri);
            cfg.count = count.max(1);
            cfg.spacing = spacing;
            cfg.timeout = timeout;
            if let Err(e) = callpulse::probe::oneshot::check(&cfg) {
                eprintln!("error: {e}");
                return ExitCode::from(PROBE_EXIT_USAGE);
            }
            if let Err(message) = probe_method_args(&mut cfg, &method, user, aor) {
                eprintln!("error: {message}");
                return ExitCode::from(PROBE_EXIT_USAGE);
            }
            match (duration, cfg.method) {
                (None, _) => {}
                (Some(d), config::ProbeMethod::Invite) => {
                    match parse_duration_arg("duration", &d) {
                        Ok(d) if d >= cfg.call.ptime && d <= Duration::from_secs(600) => {
                            cfg.call.duration = d
                        }
                        Ok(_) => {
                            eprintln!("error: --duration: expected 20ms to 10m");
                            return ExitCode::from(PROBE_EXIT_USAGE);
                        }
                        Err(_) => return ExitCode::from(PROBE_EXIT_USAGE),
                    }
                }
                (Some(_), _) => {
                    eprintln!("error: --duration applies to --method invite");
                    return ExitCode::from(PROBE_EXIT_USAGE);
                }
            }
            if let Err(e) = callpulse::probe::oneshot::check(&cfg) {
                eprintln!("error: {e}");
                return ExitCode::from(PROBE_EXIT_USAGE);
            }
            let code = runtime().map(|rt| {
                rt.block_on(async move {
                    let quality = config::QualityConfig::default();
                    let score = |m: &callpulse::probe::CallMedia| {
                        callpulse::engine::call_estimate(m, &quality).map(|e| (e.r, e.mos))
                    };
                    callpulse::probe::oneshot::oneshot_scored(cfg, &mut std::io::stdout(), &score)
                        .await
                })
            });
            match code {
                Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(2)),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

//! The validated configuration: what every other module reads. Built by `config::load`/`parse_str`
//! from YAML; `Default` gives the embedded defaults (the same values `examples/callpulse.yaml`
//! documents).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::event::Preset;
pub use crate::signal::{AlertScope, AlertSignal, CompareOp, Severity};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// `receivers.otlp`.
    pub receiver: ReceiverConfig,
    /// `exporters`.
    pub exporters: ExportersConfig,
    /// `sources`: which preset maps which log records.
    pub sources: Vec<SourceConfig>,
    /// `sources` entries with `ami:` or `esl:`: PBXs callpulse connects to itself.
    pub native_inputs: Vec<NativeInputConfig>,
    /// `probes`.
    pub probes: ProbesConfig,
    /// `quality`.
    pub quality: QualityConfig,
    /// `alerts`.
    pub alerts: AlertsConfig,
    /// `engine`: windows, TTLs, names and cardinality.
    pub engine: EngineConfig,
    /// `telemetry`: callpulse's own logs and shutdown.
    pub telemetry: TelemetryConfig,
}

/// Server-side TLS (`tls: { cert_file, key_file }`).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerTlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key.
    pub key_file: PathBuf,
}

/// `receivers.otlp`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// gRPC listener; `None` when the protocol is left out.
    pub grpc: Option<ListenerConfig>,
    /// HTTP listener; `None` when the protocol is left out.
    pub http: Option<ListenerConfig>,
    /// Largest request accepted, after decompression too (default 4 MiB).
    pub max_request_size: usize,
    /// `auth.bearer_token`: when set, requests without `Authorization: Bearer <token>` are refused.
    pub bearer_token: Option<String>,
    /// Capacity of the receiver → engine queue, in requests (default 1024).
    pub queue_capacity: usize,
    /// Events buffered for the engine, across all queued requests (default 200,000): the queue's
    /// real bound, since one request may hold tens of thousands of events.
    pub queue_events: usize,
    /// Retry-After seconds sent with HTTP 503 (default 1).
    pub retry_after: Duration,
    /// Open connections per listener (default 512); a new one past it is closed at once, so a
    /// client opening connections without end runs out of them, not the process of descriptors.
    pub max_connections: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            grpc: Some(ListenerConfig::new(([127, 0, 0, 1], 4317).into())),
            http: Some(ListenerConfig::new(([127, 0, 0, 1], 4318).into())),
            max_request_size: 4 << 20,
            bearer_token: None,
            queue_capacity: 1024,
            queue_events: 200_000,
            retry_after: Duration::from_secs(1),
            max_connections: 512,
        }
    }
}

/// One listening server.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Address to bind (port 0 picks a free port).
    pub endpoint: SocketAddr,
    /// TLS, when set.
    pub tls: Option<ServerTlsConfig>,
}

impl ListenerConfig {
    /// A plain listener on `endpoint`.
    pub fn new(endpoint: SocketAddr) -> Self {
        ListenerConfig {
            endpoint,
            tls: None,
        }
    }
}

/// `exporters`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportersConfig {
    /// `exporters.otlp`; `None` when absent (the embedded default has none: no backend needed).
    pub otlp: Option<OtlpExporterConfig>,
    /// `exporters.prometheus`; `None` when absent.
    pub prometheus: Option<PrometheusConfig>,
    /// `exporters.console`; `None` when absent.
    pub console: Option<ConsoleConfig>,
}

impl Default for ExportersConfig {
    fn default() -> Self {
        ExportersConfig {
            otlp: None,
            prometheus: Some(PrometheusConfig {
                endpoint: ([127, 0, 0, 1], 9464).into(),
            }),
            console: Some(ConsoleConfig::default()),
        }
    }
}

/// OTLP wire protocol of the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// gRPC (`grpc`).
    #[default]
    Grpc,
    /// HTTP with protobuf bodies (`http/protobuf`).
    HttpProtobuf,
}

/// Aggregation temporality of exported sums and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// Running totals since start (Prometheus, Mimir).
    #[default]
    Cumulative,
    /// Per-interval increments (Datadog).
    Delta,
}

/// `exporters.otlp`.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpExporterConfig {
    /// `http://host:4317` for gRPC; for HTTP the base URL, `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: String,
    /// Wire protocol.
    pub protocol: OtlpProtocol,
    /// Extra headers (e.g. `dd-api-key: ${env:DD_API_KEY}`).
    pub headers: BTreeMap<String, String>,
    /// gzip when true.
    pub gzip: bool,
    /// Temporality.
    pub temporality: Temporality,
    /// Export interval (default 15 s).
    pub interval: Duration,
    /// Per-export timeout (default 10 s).
    pub timeout: Duration,
    /// `tls.ca_file`: trust this CA for an `https://` endpoint.
    pub ca_file: Option<PathBuf>,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        OtlpExporterConfig {
            endpoint: "http://127.0.0.1:4317".into(),
            protocol: OtlpProtocol::Grpc,
            headers: BTreeMap::new(),
            gzip: true,
            temporality: Temporality::Cumulative,
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            ca_file: None,
        }
    }
}

/// `exporters.prometheus`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusConfig {
    /// Address of the `/metrics` endpoint.
    pub endpoint: SocketAddr,
}

/// `exporters.console`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleConfig {
    /// How often the derived metrics are printed (default 15 s).
    pub interval: Duration,
    /// Print every series, one line each, instead of the one-screen summary grouped by PBX,
    /// trunk and probe target (default false; `--verbose` on `run` and `demo` sets it).
    pub verbose: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            interval: Duration::from_secs(15),
            verbose: false,
        }
    }
}

/// One `sources` entry: records whose resource or log attributes equal every `match` pair go
/// through `preset`. Records matching no source are detected (presets recognise their shape),
/// else taken as the generic contract.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// The preset.
    pub preset: Preset,
    /// Attribute equalities, all of which must hold (resource attributes first, then log attributes).
    pub matches: BTreeMap<String, String>,
}

/// `probes`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProbesConfig {
    /// `probes.sip`: the OPTIONS targets.
    pub sip: Vec<SipProbeConfig>,
    /// Cap on requests in flight across all targets (default 256).
    pub max_in_flight: Option<usize>,
}

/// SIP transport (defined in [`crate::sip`], which config and probe both use).
pub use crate::sip::SipTransport;

/// Client-side TLS for a probe target.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientTlsConfig {
    /// Trust this CA (PEM) besides the built-in roots.
    pub ca_file: Option<PathBuf>,
    /// Name to verify, when it differs from the target host.
    pub server_name: Option<String>,
    /// Skip certificate verification (for lab SBCs only).
    pub insecure_skip_verify: bool,
}

/// One `probes.sip` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct SipProbeConfig {
    /// The name used as the `sip.probe.target` label.
    pub name: String,
    /// `sip:host[:port][;transport=udp|tcp|tls]` as written.
    pub target: String,
    /// Time between rounds (default 60 s).
    pub interval: Duration,
    /// Requests per round (default 10).
    pub count: u32,
    /// Gap between requests of a round (default 200 ms).
    pub spacing: Duration,
    /// How long to wait for each final response (default 2 s).
    pub timeout: Duration,
    /// From URI (default `sip:callpulse@<local host>`).
    pub from: Option<String>,
    /// Request-URI (default the target without transport params).
    pub request_uri: Option<String>,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Status codes that count as healthy (default: 200–299 plus 403, 404, 405, 489? no: see probe docs).
    pub up_codes: Vec<u16>,
    /// TLS settings for `transport=tls`.
    pub tls: ClientTlsConfig,
    /// DSCP value to mark requests with (e.g. 46 = EF).
    pub dscp: Option<u8>,
    /// Source address to bind.
    pub source: Option<SocketAddr>,
    /// `method`: OPTIONS (default) or REGISTER.
    pub method: ProbeMethod,
    /// `aor`, `auth`, `expires`, `keep_registered`: used when `method` is REGISTER (`auth`
    /// also by INVITE).
    pub register: RegisterConfig,
    /// `call`: used when `method` is INVITE.
    pub call: CallConfig,
}

/// `call:` settings of an INVITE probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallConfig {
    /// How long RTP flows once the call is answered (default 10 s).
    pub duration: Duration,
    /// Codec offered and sent: PCMU (default), PCMA or G722.
    pub codec: crate::sip::sdp::CallCodec,
    /// Packet time (default 20 ms).
    pub ptime: Duration,
    /// How long to wait for the 200 before CANCELling (default 30 s): ringing is not a failure
    /// until then.
    pub answer_timeout: Duration,
}

impl Default for CallConfig {
    fn default() -> Self {
        CallConfig {
            duration: Duration::from_secs(10),
            codec: crate::sip::sdp::CallCodec::Pcmu,
            ptime: Duration::from_millis(20),
            answer_timeout: Duration::from_secs(30),
        }
    }
}

/// What a probe sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeMethod {
    /// Rounds of OPTIONS: reachability, RTT, loss, jitter.
    #[default]
    Options,
    /// One REGISTER per round, answering a digest challenge: can a phone register?
    Register,
    /// One synthetic call per round: INVITE, RTP for `call.duration`, BYE.
    Invite,
}

impl ProbeMethod {
    /// The SIP method name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeMethod::Options => "OPTIONS",
            ProbeMethod::Register => "REGISTER",
            ProbeMethod::Invite => "INVITE",
        }
    }
}

/// REGISTER settings of a probe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterConfig {
    /// Address of record (To and From); default `sip:<username>@<target host>`.
    pub aor: Option<String>,
    /// Digest credentials; without them a challenge ends the round as `auth_failed`.
    pub auth: Option<ProbeAuth>,
    /// Requested binding lifetime; default twice the interval, at least 60 s.
    pub expires: Option<Duration>,
    /// Stay registered (refresh every round, never unREGISTER) instead of unREGISTERing after
    /// each round and at shutdown.
    pub keep_registered: bool,
}

/// Digest credentials of a REGISTER probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeAuth {
    /// Username (digest `username`).
    pub username: String,
    /// Where the password comes from.
    pub password: PasswordSource,
    /// Only answer challenges of this realm; default: the realm of the challenge.
    pub realm: Option<String>,
}

/// Where a probe password comes from: never the config file itself.
#[derive(Debug, Clone, PartialEq)]
pub enum PasswordSource {
    /// Expanded from `${env:NAME}` at load time.
    Value(crate::sip::digest::Secret),
    /// Read (first line) when the probe starts.
    File(PathBuf),
}

impl SipProbeConfig {
    /// A target with every default.
    pub fn new(name: &str, target: &str) -> Self {
        SipProbeConfig {
            name: name.into(),
            target: target.into(),
            interval: Duration::from_secs(60),
            count: 10,
            spacing: Duration::from_millis(200),
            timeout: Duration::from_secs(2),
            from: None,
            request_uri: None,
            headers: Vec::new(),
            up_codes: (200..300).collect(),
            tls: ClientTlsConfig::default(),
            dscp: None,
            source: None,
            method: ProbeMethod::Options,
            register: RegisterConfig::default(),
            call: CallConfig::default(),
        }
    }
}

/// One codec entry of `quality.codecs` (overrides or extends the G.113 table).
#[derive(Debug, Clone, PartialEq)]
pub struct CodecConfig {
    /// Equipment impairment factor Ie.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl.
    pub bpl: f64,
    /// Wideband (E-model on the 129 scale, G.107.1) rather than narrowband.
    pub wideband: bool,
    /// Packetisation (frame) time, used for the jitter-buffer delay.
    pub packet_time: Duration,
}

/// `quality`.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Codec assumed for probe MOS and for calls that report none (default `PCMU`, G.711 with PLC).
    pub assumed_codec: String,
    /// Jitter-buffer depth assumed as a multiple of the measured jitter (default 2.0).
    pub jitter_buffer_factor: f64,
    /// Jitter-buffer floor (default 20 ms).
    pub jitter_buffer_min: Duration,
    /// Fixed delay added for codec and network beyond the measured one-way delay (default 0).
    pub extra_delay: Duration,
    /// Codec overrides and additions by name.
    pub codecs: BTreeMap<String, CodecConfig>,
    /// Window of the per-trunk MOS gauges and KPIs (default 5 m).
    pub window: Duration,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            assumed_codec: "PCMU".into(),
            jitter_buffer_factor: 2.0,
            jitter_buffer_min: Duration::from_millis(20),
            extra_delay: Duration::ZERO,
            codecs: BTreeMap::new(),
            window: Duration::from_secs(300),
        }
    }
}

/// One alert rule (`alerts.rules[]`, or a built-in default).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRuleConfig {
    /// Unique name (the `voip.alert.rule` attribute).
    pub name: String,
    /// What is measured.
    pub signal: AlertSignal,
    /// Grouping.
    pub scope: AlertScope,
    /// Comparison.
    pub op: CompareOp,
    /// Threshold.
    pub threshold: f64,
    /// Window the signal is computed over.
    pub window: Duration,
    /// How long the condition must hold before firing (0 = at once).
    pub for_: Duration,
    /// Traffic gate: fewer samples in the window → no evaluation.
    pub min_samples: u64,
    /// Severity while firing.
    pub severity: Severity,
    /// How long it keeps firing after the condition clears (hysteresis).
    pub keep_firing_for: Duration,
    /// Extra labels copied onto the event.
    pub labels: BTreeMap<String, String>,
}

/// `alerts`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// Built-in default rules on (default true).
    pub defaults: bool,
    /// Names of built-in rules to leave out.
    pub disable: Vec<String>,
    /// User rules (a user rule with a built-in's name replaces it).
    pub rules: Vec<AlertRuleConfig>,
    /// Storm control: most transitions per rule per minute (default 60).
    pub max_transitions_per_minute: u32,
    /// Optional file holding firing alerts across restarts.
    pub state_file: Option<PathBuf>,
    /// Evaluation interval (default 10 s).
    pub evaluation_interval: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            defaults: true,
            disable: Vec::new(),
            rules: Vec::new(),
            max_transitions_per_minute: 60,
            state_file: None,
            evaluation_interval: Duration::from_secs(10),
        }
    }
}

/// `engine`.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Known trunk names; others fold into `other`. Empty = keep names up to `max_series`.
    pub trunks: Vec<String>,
    /// Known queue names; same folding.
    pub queues: Vec<String>,
    /// Calls whose end never arrives leave the active table after this (default 4 h).
    pub call_ttl: Duration,
    /// Registration failure-ratio window (default 5 m).
    pub registration_window: Duration,
    /// Queue abandon-ratio window (default 15 m).
    pub queue_window: Duration,
    /// Active-calls drop window (default 60 s).
    pub active_calls_window: Duration,
    /// Cardinality cap per label dimension (default 200); past it values fold into `other`.
    pub max_series: usize,
    /// Engine tick (gauge refresh, TTL sweep, alert evaluation) (default 1 s).
    pub tick: Duration,
    /// Most calls in the active table; past it the oldest is evicted and counted (default
    /// 100,000: about 11 MiB, well inside the 64 MiB-per-100k-calls budget).
    pub max_active_calls: usize,
    /// Call events remembered to drop a re-delivered one (default 100,000 calls).
    pub dedup_capacity: usize,
    /// An event time further ahead of the clock than this is clamped to now (default 60 s).
    pub max_clock_skew: Duration,
    /// Which time places an event: its own record's (default) or its arrival.
    pub event_time: EventTimeSource,
}

/// `engine.event_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventTimeSource {
    /// The native record's time, else the OTLP record time, else observed, else arrival.
    #[default]
    Record,
    /// Arrival at callpulse: for PBXs whose clocks cannot be trusted, or replays of old files
    /// whose numbers should count as if they happened now.
    Arrival,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            trunks: Vec::new(),
            queues: Vec::new(),
            call_ttl: Duration::from_secs(4 * 3600),
            registration_window: Duration::from_secs(300),
            queue_window: Duration::from_secs(900),
            active_calls_window: Duration::from_secs(60),
            max_series: 200,
            tick: Duration::from_secs(1),
            max_active_calls: 100_000,
            dedup_capacity: 100_000,
            max_clock_skew: Duration::from_secs(60),
            event_time: EventTimeSource::Record,
        }
    }
}

/// `telemetry`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// Log filter for callpulse's own logs (`info`, `debug`, `callpulse=debug,warn`); `RUST_LOG` wins.
    pub log_level: String,
    /// Budget for a graceful stop (default 10 s).
    pub shutdown_grace: Duration,
    /// `service.instance.id` (default: the host name).
    pub instance_id: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_level: "info".into(),
            shutdown_grace: Duration::from_secs(10),
            instance_id: None,
        }
    }
}

/// Which PBX protocol a native input speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NativeKind {
    /// Asterisk Manager Interface (`ami:` in `sources`), mapped by the `asterisk_ami` preset.
    Ami,
    /// FreeSWITCH event socket (`esl:` in `sources`), mapped by the `freeswitch_event` preset.
    Esl,
}

impl NativeKind {
    /// Config and label spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NativeKind::Ami => "ami",
            NativeKind::Esl => "esl",
        }
    }

    /// The protocol's usual port (AMI 5038, ESL 8021).
    pub fn default_port(self) -> u16 {
        match self {
            NativeKind::Ami => 5038,
            NativeKind::Esl => 8021,
        }
    }
}

/// A password that never shows in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The password, for the one place that writes it to the PBX.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A `sources` entry with `ami:` or `esl:`: callpulse connects to the PBX itself, subscribes to
/// the events the presets map and feeds them through the same preset as OTLP records.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeInputConfig {
    /// AMI or ESL.
    pub kind: NativeKind,
    /// The PBX identity its events carry (`voip.pbx`), also the input's label.
    pub name: String,
    /// Host name or address of the PBX.
    pub host: String,
    /// TCP port (default 5038 for AMI, 8021 for ESL).
    pub port: u16,
    /// AMI login user (`manager.conf` section name); unused by ESL.
    pub username: Option<String>,
    /// AMI `Secret` or ESL password, from `${env:…}`.
    pub secret: Secret,
    /// TLS to the PBX (AMI's `tlsenable` port); `None` for plain TCP.
    pub tls: Option<ClientTlsConfig>,
    /// Time between keep-alives (AMI `Ping`, ESL `api status`) on a quiet connection (default 20 s).
    pub keepalive: Duration,
    /// How long a login, snapshot or keep-alive reply may take before the connection is
    /// taken as dead and re-made (default 10 s).
    pub reply_timeout: Duration,
}

impl NativeInputConfig {
    /// An input with every default.
    pub fn new(kind: NativeKind, name: &str, host: &str, secret: &str) -> Self {
        NativeInputConfig {
            kind,
            name: name.into(),
            host: host.into(),
            port: kind.default_port(),
            username: None,
            secret: Secret::new(secret),
            tls: None,
            keepalive: Duration::from_secs(20),
            reply_timeout: Duration::from_secs(10),
        }
    }
}

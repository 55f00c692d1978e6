//! Domain types that flow from the edges (receiver/normalize, probe) into the engine.
//!
//! No OTLP or SIP wire types here: the engine, quality and alert modules speak only these.

use std::time::{Duration, SystemTime};

/// Where an event came from: the PBX identity taken from resource attributes
/// (`service.instance.id`, else `host.name`, else `service.name`) and the record's timestamp.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMeta {
    /// The PBX identity, reported as the `voip.pbx` label.
    pub pbx: String,
    /// When the event happened: the native record's own time field where its format has one,
    /// else the OTLP `time_unix_nano`, else `observed_time_unix_nano` (`docs/schema.md`, "Event
    /// time"). For a whole-call record (`voip.cdr`) it is the end of the call.
    pub time: Option<SystemTime>,
}

/// Which way a call went, from the PBX's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Into the PBX from a trunk.
    Inbound,
    /// Out of the PBX to a trunk.
    Outbound,
    /// Between two extensions of the same PBX.
    Internal,
    /// Not reported.
    #[default]
    Unknown,
}

impl Direction {
    /// The label value used on metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
            Direction::Unknown => "unknown",
        }
    }
}

/// How a call ended (the input contract's `voip.call.disposition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// The callee answered.
    Answered,
    /// Rang out without an answer.
    NoAnswer,
    /// The callee was busy.
    Busy,
    /// The call failed (network or server error).
    Failed,
    /// The caller hung up before an answer.
    Cancelled,
    /// No route or circuit available.
    Congestion,
}

impl Disposition {
    /// The label value used on metrics and in the input contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Failed => "failed",
            Disposition::Cancelled => "cancelled",
            Disposition::Congestion => "congestion",
        }
    }

    /// Parses the input contract's spelling (case-insensitive; a few common aliases).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "answered" => Disposition::Answered,
            "no_answer" | "noanswer" | "no answer" => Disposition::NoAnswer,
            "busy" => Disposition::Busy,
            "failed" => Disposition::Failed,
            "cancelled" | "canceled" | "cancel" => Disposition::Cancelled,
            "congestion" => Disposition::Congestion,
            _ => return None,
        })
    }
}

/// Quality measurements reported for a call leg (the input contract's quality fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityFields {
    /// Lost / expected packets, 0..1.
    pub loss_ratio: Option<f64>,
    /// RFC 3550 interarrival jitter.
    pub jitter: Option<Duration>,
    /// Round-trip time (one-way delay is taken as half of it when no one-way delay is given).
    pub rtt: Option<Duration>,
    /// One-way mouth-to-ear or network delay.
    pub one_way_delay: Option<Duration>,
    /// Burst ratio (G.107 BurstR), when the endpoint reports it.
    pub burst_ratio: Option<f64>,
    /// Codec name as reported (`PCMU`, `G729`, …); normalised by `quality`.
    pub codec: Option<String>,
    /// MOS as reported by the endpoint, kept apart from the computed one.
    pub reported_mos: Option<f64>,
}

impl QualityFields {
    /// True when no quality field at all was present.
    pub fn is_empty(&self) -> bool {
        *self == QualityFields::default()
    }
}

/// Outcome of a REGISTER as the PBX saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegistrationOutcome {
    /// 2xx to a REGISTER.
    Success,
    /// A rejected or failed REGISTER (4xx/5xx/6xx, auth failure, timeout).
    Failure,
    /// A binding expired without a refresh.
    Expired,
    /// The endpoint removed its binding.
    Unregistered,
}

impl RegistrationOutcome {
    /// The label value used on metrics and in the input contract.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationOutcome::Success => "success",
            RegistrationOutcome::Failure => "failure",
            RegistrationOutcome::Expired => "expired",
            RegistrationOutcome::Unregistered => "unregistered",
        }
    }
}

/// Whether a registration is a phone's or a trunk's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RegistrationKind {
    /// A phone or softphone registering to the PBX.
    #[default]
    Endpoint,
    /// The PBX registering to a provider.
    Trunk,
}

/// What happened to a caller in a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueOutcome {
    /// The caller entered the queue.
    Join,
    /// An agent answered.
    Answer,
    /// The caller hung up before an agent answered.
    Abandon,
}

impl QueueOutcome {
    /// The label value used on metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOutcome::Join => "joined",
            QueueOutcome::Answer => "answered",
            QueueOutcome::Abandon => "abandoned",
        }
    }
}

/// A completed call's record (`voip.cdr`), or the summary that `voip.call.end` carries.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The PBX's call identifier (never used as a label).
    pub call_id: String,
    /// How it ended.
    pub disposition: Disposition,
    /// Total duration from start to end.
    pub duration: Option<Duration>,
    /// Talk time after answer.
    pub billable_duration: Option<Duration>,
    /// Time from the last digit (INVITE) to ringback/answer, RFC 6076 PDD.
    pub post_dial_delay: Option<Duration>,
    /// Trunk name as reported (folded to a configured name or `other` by the engine).
    pub trunk: Option<String>,
    /// Direction.
    pub direction: Direction,
    /// The final SIP status code.
    pub sip_status: Option<u16>,
    /// Q.850 hangup cause.
    pub hangup_cause: Option<u16>,
    /// Quality fields, when the CDR carried any.
    pub quality: QualityFields,
}

impl CallRecord {
    /// A record with only the required fields; presets and tests fill in what their source has.
    pub fn new(call_id: impl Into<String>, disposition: Disposition) -> Self {
        CallRecord {
            call_id: call_id.into(),
            disposition,
            duration: None,
            billable_duration: None,
            post_dial_delay: None,
            trunk: None,
            direction: Direction::Unknown,
            sip_status: None,
            hangup_cause: None,
            quality: QualityFields::default(),
        }
    }
}

/// One VoIP event of the input contract (`docs/schema.md`).
#[derive(Debug, Clone, PartialEq)]
pub enum VoipEventKind {
    /// `voip.call.start`.
    CallStart {
        /// Call identifier.
        call_id: String,
        /// Direction.
        direction: Direction,
        /// Trunk.
        trunk: Option<String>,
    },
    /// `voip.call.answer`.
    CallAnswer {
        /// Call identifier.
        call_id: String,
        /// Post-dial delay if known.
        post_dial_delay: Option<Duration>,
    },
    /// `voip.call.ringing`: the far end is alerting (the first 18x): the end of post-dial delay
    /// when the start was the dial (RFC 6076 §4.1).
    CallRinging {
        /// Call identifier.
        call_id: String,
    },
    /// `voip.call.end`: the call left the active table.
    CallEnd(CallRecord),
    /// `voip.cdr`: a whole call in one record.
    Cdr(CallRecord),
    /// `voip.quality`: mid-call or end-of-call quality for a leg.
    Quality {
        /// Call identifier.
        call_id: String,
        /// Trunk, when known.
        trunk: Option<String>,
        /// Direction, when known.
        direction: Direction,
        /// The measurements.
        quality: QualityFields,
    },
    /// `voip.registration`.
    Registration {
        /// Outcome.
        outcome: RegistrationOutcome,
        /// Endpoint or trunk.
        kind: RegistrationKind,
        /// SIP status code, when known.
        sip_status: Option<u16>,
        /// Trunk, for trunk registrations.
        trunk: Option<String>,
    },
    /// `voip.queue.join` / `.answer` / `.abandon`.
    Queue {
        /// Queue name.
        queue: String,
        /// What happened.
        outcome: QueueOutcome,
        /// The call, when known.
        call_id: Option<String>,
        /// Time spent waiting in the queue.
        wait_time: Option<Duration>,
    },
}

/// A VoIP event with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct VoipEvent {
    /// Where and when.
    pub meta: EventMeta,
    /// What.
    pub kind: VoipEventKind,
}

/// A mapping preset (see `normalize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The input contract as is (`generic`).
    Generic,
    /// Asterisk Master.csv via the Collector's csv parser.
    AsteriskCdrCsv,
    /// Asterisk AMI events as attributes.
    AsteriskAmi,
    /// Asterisk queue_log.
    AsteriskQueueLog,
    /// FreeSWITCH mod_json_cdr.
    FreeswitchJsonCdr,
    /// FreeSWITCH ESL events.
    FreeswitchEvent,
    /// Kamailio acc (syslog line or JSON).
    KamailioAcc,
}

impl Preset {
    /// Every preset with its config spelling.
    pub const ALL: [(Preset, &'static str); 7] = [
        (Preset::Generic, "generic"),
        (Preset::AsteriskCdrCsv, "asterisk_cdr_csv"),
        (Preset::AsteriskAmi, "asterisk_ami"),
        (Preset::AsteriskQueueLog, "asterisk_queue_log"),
        (Preset::FreeswitchJsonCdr, "freeswitch_json_cdr"),
        (Preset::FreeswitchEvent, "freeswitch_event"),
        (Preset::KamailioAcc, "kamailio_acc"),
    ];

    /// Config spelling.
    pub fn as_str(self) -> &'static str {
        Preset::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, s)| *s)
            .unwrap_or("generic")
    }
}

//! Attribute and event names read by `normalize`: the input contract (`docs/schema.md`), the
//! resource attributes that name the PBX, and the native field names of each preset.
//!
//! One place for every key, so the presets, the docs and the tests agree. Holds names only, no
//! logic.

/// Event names of the input contract (`event_name`, `otel.event.name` or `event.name`).
pub mod event {
    /// A call began (active calls +1).
    pub const CALL_START: &str = "voip.call.start";
    /// A call was answered.
    pub const CALL_ANSWER: &str = "voip.call.answer";
    /// The far end is alerting (first 18x).
    pub const CALL_RINGING: &str = "voip.call.ringing";
    /// A call ended (active calls −1; counted by disposition).
    pub const CALL_END: &str = "voip.call.end";
    /// A whole call in one record.
    pub const CDR: &str = "voip.cdr";
    /// Quality of a call leg.
    pub const QUALITY: &str = "voip.quality";
    /// A REGISTER outcome.
    pub const REGISTRATION: &str = "voip.registration";
    /// A caller entered a queue.
    pub const QUEUE_JOIN: &str = "voip.queue.join";
    /// An agent answered a queued caller.
    pub const QUEUE_ANSWER: &str = "voip.queue.answer";
    /// A queued caller hung up before an agent answered.
    pub const QUEUE_ABANDON: &str = "voip.queue.abandon";
}

/// Log-record attributes that carry the event name when the `event_name` field cannot.
pub mod event_name {
    /// The stable attribute for exporters without the `event_name` field (semconv ≥ 1.39).
    pub const OTEL_EVENT_NAME: &str = "otel.event.name";
    /// The deprecated attribute (semconv < 1.30), still sent by older SDKs.
    pub const EVENT_NAME: &str = "event.name";
}

/// Attributes of the input contract.
pub mod contract {
    /// The PBX's call identifier (string; never a metric label).
    pub const CALL_ID: &str = "voip.call.id";
    /// `inbound`, `outbound`, `internal` or `unknown`.
    pub const DIRECTION: &str = "voip.call.direction";
    /// Trunk name.
    pub const TRUNK: &str = "voip.trunk";
    /// `answered`, `no_answer`, `busy`, `failed`, `cancelled`, `congestion`.
    pub const DISPOSITION: &str = "voip.call.disposition";
    /// Final SIP status code (100–699).
    pub const SIP_STATUS: &str = "sip.response.status_code";
    /// Q.850 cause code.
    pub const HANGUP_CAUSE: &str = "voip.call.hangup_cause";
    /// Seconds from start to end.
    pub const DURATION: &str = "voip.call.duration";
    /// Seconds from answer to end.
    pub const BILLABLE_DURATION: &str = "voip.call.billable_duration";
    /// Seconds from INVITE to ringback or answer (RFC 6076 PDD).
    pub const POST_DIAL_DELAY: &str = "voip.call.post_dial_delay";
    /// Codec name as the PBX spells it.
    pub const CODEC: &str = "voip.codec";
    /// Lost ÷ expected packets, 0..1 (a value in (1, 100] is read as a percent).
    pub const LOSS_RATIO: &str = "voip.rtp.loss_ratio";
    /// Packets lost (with [`PACKETS_EXPECTED`] gives the loss ratio).
    pub const PACKETS_LOST: &str = "voip.rtp.packets_lost";
    /// Packets expected.
    pub const PACKETS_EXPECTED: &str = "voip.rtp.packets_expected";
    /// RFC 3550 interarrival jitter, seconds.
    pub const JITTER: &str = "voip.rtp.jitter";
    /// Round-trip time, seconds.
    pub const RTT: &str = "voip.rtp.rtt";
    /// One-way delay, seconds.
    pub const ONE_WAY_DELAY: &str = "voip.rtp.one_way_delay";
    /// G.107 burst ratio (≥ 0; 1 = random loss).
    pub const BURST_RATIO: &str = "voip.rtp.burst_ratio";
    /// MOS as reported by the endpoint, 1..5.
    pub const MOS: &str = "voip.mos";
    /// `success`, `failure`, `expired`, `unregistered`.
    pub const REGISTRATION_OUTCOME: &str = "voip.registration.outcome";
    /// `endpoint` or `trunk`.
    pub const REGISTRATION_KIND: &str = "voip.registration.kind";
    /// Queue name.
    pub const QUEUE_NAME: &str = "voip.queue.name";
    /// Seconds the caller waited in the queue.
    pub const QUEUE_WAIT_TIME: &str = "voip.queue.wait_time";
}

/// Resource attributes that identify the PBX, in order of preference.
pub mod resource {
    /// The instance, unique per PBX (first choice).
    pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
    /// The host (second choice).
    pub const HOST_NAME: &str = "host.name";
    /// The service (third choice).
    pub const SERVICE_NAME: &str = "service.name";
    /// The PBX name when the resource names none.
    pub const UNKNOWN_PBX: &str = "unknown";
}

/// Asterisk `Master.csv` columns (`cdr_csv`), named as in `cdr.conf`/`CDR()` and as the
/// Collector's `csv_parser` header names them.
pub mod asterisk_csv {
    /// Column 1.
    pub const ACCOUNTCODE: &str = "accountcode";
    /// Column 2: caller number.
    pub const SRC: &str = "src";
    /// Column 3: dialled number.
    pub const DST: &str = "dst";
    /// Column 4: dialplan context.
    pub const DCONTEXT: &str = "dcontext";
    /// Column 5.
    pub const CLID: &str = "clid";
    /// Column 6: party A's channel.
    pub const CHANNEL: &str = "channel";
    /// Column 7: party B's channel.
    pub const DSTCHANNEL: &str = "dstchannel";
    /// Column 8.
    pub const LASTAPP: &str = "lastapp";
    /// Column 9.
    pub const LASTDATA: &str = "lastdata";
    /// Column 10.
    pub const START: &str = "start";
    /// Column 11: empty when never answered.
    pub const ANSWER: &str = "answer";
    /// Column 12.
    pub const END: &str = "end";
    /// Column 13: seconds.
    pub const DURATION: &str = "duration";
    /// Column 14: seconds after answer.
    pub const BILLSEC: &str = "billsec";
    /// Column 15.
    pub const DISPOSITION: &str = "disposition";
    /// Column 16.
    pub const AMAFLAGS: &str = "amaflags";
    /// Column 17 (`loguniqueid=yes`).
    pub const UNIQUEID: &str = "uniqueid";
    /// Column 18 (`loguserfield=yes`).
    pub const USERFIELD: &str = "userfield";
    /// Column 19 (`newcdrcolumns=yes`).
    pub const PEERACCOUNT: &str = "peeraccount";
    /// Column 20 (`newcdrcolumns=yes`).
    pub const LINKEDID: &str = "linkedid";
    /// Column 21 (`newcdrcolumns=yes`).
    pub const SEQUENCE: &str = "sequence";
    /// The 16 base columns in file order.
    pub const BASE: [&str; 16] = [
        ACCOUNTCODE,
        SRC,
        DST,
        DCONTEXT,
        CLID,
        CHANNEL,
        DSTCHANNEL,
        LASTAPP,
        LASTDATA,
        START,
        ANSWER,
        END,
        DURATION,
        BILLSEC,
        DISPOSITION,
        AMAFLAGS,
    ];
    /// Columns 19–21 (`newcdrcolumns=yes`), after uniqueid and userfield.
    pub const NEW_COLUMNS: [&str; 3] = [PEERACCOUNT, LINKEDID, SEQUENCE];
}

/// Asterisk AMI event fields (matched case-insensitively; AMI spells them as below).
pub mod ami {
    /// The event type.
    pub const EVENT: &str = "Event";
    /// Channel name of the channel block.
    pub const CHANNEL: &str = "Channel";
    /// Channel state (6 = Up).
    pub const CHANNEL_STATE: &str = "ChannelState";
    /// Dialplan context.
    pub const CONTEXT: &str = "Context";
    /// The channel's unique id.
    pub const UNIQUEID: &str = "Uniqueid";
    /// The id shared by every channel of one call (party A's Uniqueid).
    pub const LINKEDID: &str = "Linkedid";
    /// Q.850 cause of a hangup.
    pub const CAUSE: &str = "Cause";
    /// SIP code of an off-nominal hangup (Asterisk ≥ 20.17 / 22.7 / 23.1).
    pub const TECH_CAUSE: &str = "TechCause";
    /// Outcome of a Dial.
    pub const DIAL_STATUS: &str = "DialStatus";
    /// The called channel of Dial* events.
    pub const DEST_CHANNEL: &str = "DestChannel";
    /// `Registry`: `Registered`, `Unregistered`, `Rejected`.
    pub const STATUS: &str = "Status";
    /// `Registry`: server URI.
    pub const DOMAIN: &str = "Domain";
    /// `ContactStatus`: `Reachable`, `Unreachable`, `NonQualified`, `Created`, `Removed`, …
    pub const CONTACT_STATUS: &str = "ContactStatus";
    /// Security events: the service (`PJSIP`).
    pub const SERVICE: &str = "Service";
    /// Queue name.
    pub const QUEUE: &str = "Queue";
    /// Seconds the caller waited.
    pub const HOLD_TIME: &str = "HoldTime";
    /// `RTCPReceived`: round-trip time, seconds.
    pub const RTT: &str = "RTT";
    /// Media experience score, 0–100 (= pseudo-MOS × 20).
    pub const MES: &str = "MES";
    /// Number of report blocks.
    pub const REPORT_COUNT: &str = "ReportCount";
    /// First report block: fraction lost, 0–255.
    pub const REPORT0_FRACTION_LOST: &str = "Report0FractionLost";
    /// First report block: interarrival jitter, RTP clock units.
    pub const REPORT0_IA_JITTER: &str = "Report0IAJitter";
    /// `Cdr` event: the `Master.csv` columns under their AMI names.
    pub const CDR_UNIQUEID: &str = "UniqueID";
    /// `Cdr` event.
    pub const CDR_DESTINATION_CONTEXT: &str = "DestinationContext";
    /// `Cdr` event.
    pub const CDR_DESTINATION_CHANNEL: &str = "DestinationChannel";
    /// `Cdr` event.
    pub const CDR_LAST_APPLICATION: &str = "LastApplication";
    /// `Cdr` event.
    pub const CDR_DURATION: &str = "Duration";
    /// `Cdr` event.
    pub const CDR_BILLABLE_SECONDS: &str = "BillableSeconds";
    /// `Cdr` event.
    pub const CDR_DISPOSITION: &str = "Disposition";
    /// `Cdr` event: answer time, empty when never answered.
    pub const CDR_ANSWER_TIME: &str = "AnswerTime";
    /// With `timestampevents=yes`: epoch seconds with µs.
    pub const TIMESTAMP: &str = "Timestamp";
    /// A channel variable listed in `manager.conf` `channelvars`: `NAME=value`.
    pub const CHAN_VARIABLE: &str = "ChanVariable";
    /// Set to `TRUE` on a caller's channel by `Queue()` when it leaves without a member.
    pub const ABANDONED: &str = "ABANDONED";

    /// Event names the preset maps.
    pub mod events {
        /// A channel was created.
        pub const NEWCHANNEL: &str = "Newchannel";
        /// A channel hung up.
        pub const HANGUP: &str = "Hangup";
        /// A Dial started ringing a destination.
        pub const DIAL_BEGIN: &str = "DialBegin";
        /// A Dial finished.
        pub const DIAL_END: &str = "DialEnd";
        /// A Dial's destination changed state (`RINGING`, `PROGRESS`, `PROCEEDING`).
        pub const DIAL_STATE: &str = "DialState";
        /// Outbound (trunk) registration state.
        pub const REGISTRY: &str = "Registry";
        /// Inbound contact state.
        pub const CONTACT_STATUS: &str = "ContactStatus";
        /// Security: wrong digest response.
        pub const CHALLENGE_RESPONSE_FAILED: &str = "ChallengeResponseFailed";
        /// Security: wrong password.
        pub const INVALID_PASSWORD: &str = "InvalidPassword";
        /// Security: unknown user.
        pub const INVALID_ACCOUNT_ID: &str = "InvalidAccountID";
        /// Security: blocked by an ACL.
        pub const FAILED_ACL: &str = "FailedACL";
        /// Security: authentication method not allowed.
        pub const AUTH_METHOD_NOT_ALLOWED: &str = "AuthMethodNotAllowed";
        /// A caller joined a queue.
        pub const QUEUE_CALLER_JOIN: &str = "QueueCallerJoin";
        /// A caller left a queue without an agent.
        pub const QUEUE_CALLER_ABANDON: &str = "QueueCallerAbandon";
        /// An agent answered a queued caller.
        pub const AGENT_CONNECT: &str = "AgentConnect";
        /// RTCP report sent by Asterisk (describes the stream it receives).
        pub const RTCP_SENT: &str = "RTCPSent";
        /// RTCP report received by Asterisk (describes the stream it sends).
        pub const RTCP_RECEIVED: &str = "RTCPReceived";
        /// A CDR posted by `cdr_manager`: recognised, deliberately not mapped (the call is
        /// counted from its `Hangup`).
        pub const CDR: &str = "Cdr";
    }
}

/// Asterisk `queue_log` events.
pub mod queue_log {
    /// A caller entered a queue.
    pub const ENTERQUEUE: &str = "ENTERQUEUE";
    /// An agent answered (`holdtime|bridged_uniqueid|ringtime`).
    pub const CONNECT: &str = "CONNECT";
    /// The caller hung up while queued (`position|origposition|waittime`).
    pub const ABANDON: &str = "ABANDON";
}

/// FreeSWITCH `mod_json_cdr` documents and variables.
pub mod freeswitch_cdr {
    /// Top level: instance UUID.
    pub const CORE_UUID: &str = "core-uuid";
    /// Top level: switch name.
    pub const SWITCHNAME: &str = "switchname";
    /// Top level: channel data object.
    pub const CHANNEL_DATA: &str = "channel_data";
    /// Top level: RTP statistics object.
    pub const CALL_STATS: &str = "callStats";
    /// Top level: channel variables object.
    pub const VARIABLES: &str = "variables";
    /// Top level: caller profiles array.
    pub const CALLFLOW: &str = "callflow";
    /// `callflow[].caller_profile`.
    pub const CALLER_PROFILE: &str = "caller_profile";
    /// Present in a B-leg's caller profile: the leg that originated it.
    pub const ORIGINATOR: &str = "originator";
    /// `callStats.audio`.
    pub const AUDIO: &str = "audio";
    /// `callStats.audio.inbound`.
    pub const INBOUND: &str = "inbound";
    /// Statistic: packets received.
    pub const PACKET_COUNT: &str = "packet_count";
    /// Statistic: flaws (lost packets plus penalties).
    pub const FLAW_TOTAL: &str = "flaw_total";
    /// Statistic: FreeSWITCH's packet-based MOS.
    pub const MOS: &str = "mos";

    /// Channel variables.
    pub mod var {
        /// The leg's UUID.
        pub const UUID: &str = "uuid";
        /// The call's UUID.
        pub const CALL_UUID: &str = "call_uuid";
        /// Set on a B-leg by originate.
        pub const ORIGINATING_LEG_UUID: &str = "originating_leg_uuid";
        /// `inbound`/`outbound` relative to FreeSWITCH.
        pub const DIRECTION: &str = "direction";
        /// SIP profile that handled the leg.
        pub const SOFIA_PROFILE_NAME: &str = "sofia_profile_name";
        /// Gateway of a leg through a gateway.
        pub const SIP_GATEWAY_NAME: &str = "sip_gateway_name";
        /// Last application's argument (a `bridge` target names the gateway).
        pub const LAST_ARG: &str = "last_arg";
        /// FreeSWITCH hangup cause name.
        pub const HANGUP_CAUSE: &str = "hangup_cause";
        /// Q.850 number of the cause.
        pub const HANGUP_CAUSE_Q850: &str = "hangup_cause_q850";
        /// SIP status that ended the leg.
        pub const SIP_TERM_STATUS: &str = "sip_term_status";
        /// SIP status of a failed INVITE.
        pub const SIP_INVITE_FAILURE_STATUS: &str = "sip_invite_failure_status";
        /// Epoch seconds of answer, `0` if never.
        pub const ANSWER_EPOCH: &str = "answer_epoch";
        /// Epoch µs of the end.
        pub const END_UEPOCH: &str = "end_uepoch";
        /// End of the leg, epoch seconds (`0` when unset).
        pub const END_EPOCH: &str = "end_epoch";
        /// Seconds.
        pub const DURATION: &str = "duration";
        /// Milliseconds.
        pub const MDURATION: &str = "mduration";
        /// Seconds.
        pub const BILLSEC: &str = "billsec";
        /// Milliseconds.
        pub const BILLMSEC: &str = "billmsec";
        /// Milliseconds from creation to answer.
        pub const ANSWERMSEC: &str = "answermsec";
        /// Milliseconds from creation to the first 180; 0 if none.
        pub const PROGRESSMSEC: &str = "progressmsec";
        /// Milliseconds from creation to early media; 0 if none.
        pub const PROGRESS_MEDIAMSEC: &str = "progress_mediamsec";
        /// Codec read.
        pub const READ_CODEC: &str = "read_codec";
        /// Codec negotiated.
        pub const RTP_USE_CODEC_NAME: &str = "rtp_use_codec_name";
        /// FreeSWITCH's MOS of the inbound stream.
        pub const RTP_AUDIO_IN_MOS: &str = "rtp_audio_in_mos";
        /// Packets received.
        pub const RTP_AUDIO_IN_PACKET_COUNT: &str = "rtp_audio_in_packet_count";
        /// Flaws of the inbound stream.
        pub const RTP_AUDIO_IN_FLAW_TOTAL: &str = "rtp_audio_in_flaw_total";
    }
}

/// FreeSWITCH event-socket headers.
pub mod freeswitch_event {
    /// The event type.
    pub const EVENT_NAME: &str = "Event-Name";
    /// The CUSTOM subclass.
    pub const EVENT_SUBCLASS: &str = "Event-Subclass";
    /// µs epoch of the event.
    pub const EVENT_DATE_TIMESTAMP: &str = "Event-Date-Timestamp";
    /// The leg's UUID.
    pub const UNIQUE_ID: &str = "Unique-ID";
    /// The call's UUID (party A's).
    pub const CHANNEL_CALL_UUID: &str = "Channel-Call-UUID";
    /// `originator` on a B-leg, `originatee` on an A-leg.
    pub const OTHER_TYPE: &str = "Other-Type";
    /// `inbound`/`outbound` relative to FreeSWITCH.
    pub const CALL_DIRECTION: &str = "Call-Direction";
    /// FreeSWITCH hangup cause name.
    pub const HANGUP_CAUSE: &str = "Hangup-Cause";
    /// Codec read.
    pub const READ_CODEC_NAME: &str = "Channel-Read-Codec-Name";
    /// µs epoch: channel created.
    pub const CREATED_TIME: &str = "Caller-Channel-Created-Time";
    /// µs epoch: first 180.
    pub const PROGRESS_TIME: &str = "Caller-Channel-Progress-Time";
    /// µs epoch: early media.
    pub const PROGRESS_MEDIA_TIME: &str = "Caller-Channel-Progress-Media-Time";
    /// µs epoch: answer.
    pub const ANSWERED_TIME: &str = "Caller-Channel-Answered-Time";
    /// Prefix of channel variables.
    pub const VARIABLE_PREFIX: &str = "variable_";
    /// `sofia::gateway_state`: gateway name.
    pub const GATEWAY: &str = "Gateway";
    /// `sofia::gateway_state`: state.
    pub const STATE: &str = "State";
    /// `sofia::gateway_state`: SIP code.
    pub const STATUS: &str = "Status";
    /// `sofia::register_failure`: `REGISTER` or `INVITE`.
    pub const REGISTRATION_TYPE: &str = "registration-type";
    /// mod_callcenter action.
    pub const CC_ACTION: &str = "CC-Action";
    /// mod_callcenter queue.
    pub const CC_QUEUE: &str = "CC-Queue";
    /// mod_callcenter: the caller's session.
    pub const CC_MEMBER_SESSION_UUID: &str = "CC-Member-Session-UUID";
    /// mod_callcenter: `Terminated` or `Cancel`.
    pub const CC_CAUSE: &str = "CC-Cause";
    /// mod_callcenter: why a member was cancelled (`NONE` = caller hung up).
    pub const CC_CANCEL_REASON: &str = "CC-Cancel-Reason";
    /// mod_callcenter: epoch s the caller joined.
    pub const CC_MEMBER_JOINED_TIME: &str = "CC-Member-Joined-Time";
    /// mod_callcenter: epoch s the caller left.
    pub const CC_MEMBER_LEAVING_TIME: &str = "CC-Member-Leaving-Time";
    /// mod_callcenter: epoch s the agent answered.
    pub const CC_AGENT_ANSWERED_TIME: &str = "CC-Agent-Answered-Time";

    /// Event names and subclasses the preset maps.
    pub mod events {
        /// Channel created.
        pub const CHANNEL_CREATE: &str = "CHANNEL_CREATE";
        /// Channel answered.
        pub const CHANNEL_ANSWER: &str = "CHANNEL_ANSWER";
        /// Channel gone, CDR variables set.
        pub const CHANNEL_HANGUP_COMPLETE: &str = "CHANNEL_HANGUP_COMPLETE";
        /// Custom events carry `Event-Subclass`.
        pub const CUSTOM: &str = "CUSTOM";
        /// New or refreshed registration.
        pub const SOFIA_REGISTER: &str = "sofia::register";
        /// Registration refused with 403.
        pub const SOFIA_REGISTER_FAILURE: &str = "sofia::register_failure";
        /// Explicit unregister.
        pub const SOFIA_UNREGISTER: &str = "sofia::unregister";
        /// Registration timed out.
        pub const SOFIA_EXPIRE: &str = "sofia::expire";
        /// Trunk (gateway) registration state.
        pub const SOFIA_GATEWAY_STATE: &str = "sofia::gateway_state";
        /// mod_callcenter.
        pub const CALLCENTER_INFO: &str = "callcenter::info";
    }
}

/// Kamailio `acc` fields (log line pairs and `acc_json` keys).
pub mod kamailio {
    /// The marker that starts an acc log line's payload.
    pub const ACC_MARKER: &str = "ACC: ";
    /// Syslog receiver attribute holding the message.
    pub const MESSAGE: &str = "message";
    /// Log line: epoch seconds.
    pub const TIMESTAMP: &str = "timestamp";
    /// JSON: epoch seconds.
    pub const TIME: &str = "time";
    /// CSeq method.
    pub const METHOD: &str = "method";
    /// Log line: Call-ID.
    pub const CALL_ID: &str = "call_id";
    /// JSON and DB: Call-ID.
    pub const CALLID: &str = "callid";
    /// Log line: SIP code.
    pub const CODE: &str = "code";
    /// JSON and DB: SIP code (a string).
    pub const SIP_CODE: &str = "sip_code";
    /// SIP method of a call.
    pub const INVITE: &str = "INVITE";
    /// SIP method that ends a call.
    pub const BYE: &str = "BYE";
    /// SIP method of a registration.
    pub const REGISTER: &str = "REGISTER";
}

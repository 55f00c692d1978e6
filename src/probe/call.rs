//! INVITE probes: one synthetic call per round (issue 11). INVITE with an SDP offer (one audio
//! m-line, the codec's static payload type, our RTP socket's address) → 1xx → 200 → ACK → RTP
//! for `call.duration` every `call.ptime` → BYE. A 401/407 is answered once with digest
//! credentials (`auth`); no final answer within `call.answer_timeout` is CANCELled; a re-INVITE
//! or UPDATE during the call gets a 200 with our unchanged SDP; a BYE from the far end is
//! answered and ends the media early. Every path ends the call: a BYE after a 2xx, a CANCEL
//! before one, and — when the round is cut short by shutdown — [`TargetProbe::unregister`]
//! sends the teardown the round left pending.
//!
//! What is measured, never assumed: setup time (first INVITE → 200), post-dial delay (first
//! INVITE → first 18x), RTP sent and received, loss by RFC 3550 §A.1/§A.3 sequence accounting,
//! interarrival jitter by §A.8, the round trip of every echoed packet (matched to its send time
//! by sequence number and timestamp), and the late discards of a fixed 2 × ptime jitter buffer
//! ([`crate::rtp::FixedJitterBuffer`]). Against an echo peer every figure is round-trip. MOS is
//! `quality`'s job (the engine's probe measure turns these figures into R and MOS).
//!
//! UDP only, on sockets of its own (one for the dialog's SIP, one for RTP), because the dialog
//! must receive and answer requests, which the prober's shared sockets never do.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::config::SipProbeConfig;
use crate::probe::message::{BRANCH_PREFIX, USER_AGENT, random_hex};
use crate::probe::register::{Credentials, load_credentials};
use crate::probe::round::TargetProbe;
use crate::probe::transport::local_ip_towards;
use crate::probe::{DroppedResponses, ProbeReport};
use crate::rtp::{FixedJitterBuffer, Playout, ReceiverStats, RtpHeader, RtpPacket};
use crate::sip::SipTransport;
use crate::sip::dialog::{self, DialogMessage, DialogRequest, StartLine};
use crate::sip::digest::{self, AnswerInput};
use crate::sip::sdp::{self, CallCodec};

/// RFC 3261 T1.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2.
const T2: Duration = Duration::from_secs(4);
/// How long echoes may still arrive after the last packet was sent.
const ECHO_GRACE: Duration = Duration::from_millis(500);

/// What a call round came to (`sip.probe.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Answered with a 2xx; media flowed for the configured duration (or until the far end hung
    /// up) and the call was torn down.
    Ok,
    /// A challenge was answered and the peer still said 401/407/403, or it challenged and we
    /// could not answer.
    AuthFailed,
    /// A final 3xx–6xx.
    Rejected,
    /// Provisional answers but no final one within `call.answer_timeout`: CANCELled.
    NoAnswer,
    /// No response at all within `timeout` (INVITE retransmissions included).
    Timeout,
    /// A socket could not be opened or used, or the 200 carried no usable SDP.
    Error,
}

impl CallOutcome {
    /// The `sip.probe.outcome` value.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::AuthFailed => "auth_failed",
            CallOutcome::Rejected => "rejected",
            CallOutcome::NoAnswer => "no_answer",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Error => "error",
        }
    }
}

/// RTP figures of an answered call. Against an echo peer they are round-trip.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMedia {
    /// Codec sent.
    pub codec: CallCodec,
    /// Packet time.
    pub ptime: Duration,
    /// RTP packets sent.
    pub sent: u64,
    /// RTP packets received (every datagram that parsed as RTP of the tracked source).
    pub received: u64,
    /// RFC 3550 §A.3: packets expected (extended highest − base + 1) of the tracked source.
    pub expected: u64,
    /// RFC 3550 §A.3 cumulative lost (expected − received; negative with duplicates).
    pub lost: i64,
    /// `lost / expected`, clamped to 0..1; `None` when too few packets arrived to say.
    pub loss_ratio: Option<f64>,
    /// RFC 3550 §A.8 interarrival jitter of the received stream.
    pub jitter: Option<Duration>,
    /// Received packets that were echoes of ours (same SSRC, sequence number and timestamp).
    pub echoed: u64,
    /// Round trip of each echoed packet: median.
    pub rtt_median: Option<Duration>,
    /// Round trip of each echoed packet: mean.
    pub rtt_mean: Option<Duration>,
    /// Depth of the modelled fixed jitter buffer (2 × ptime).
    pub jitter_buffer: Duration,
    /// Packets the modelled buffer discarded as late (duplicates not included).
    pub late_discards: u64,
    /// What a listener loses: (lost + late discards) / expected, 0..1 — the E-model's Ppl.
    pub effective_loss_ratio: Option<f64>,
}

/// What a call round came to.
#[derive(Debug, Clone, PartialEq)]
pub struct CallResult {
    /// The round's outcome.
    pub outcome: CallOutcome,
    /// The final status of the (last) INVITE, when one came.
    pub status: Option<u16>,
    /// Why, in words, for anything but `Ok` (never holds the password).
    pub detail: Option<String>,
    /// First INVITE sent → 2xx received (challenge round trip included).
    pub setup: Option<Duration>,
    /// First INVITE sent → first 18x received (RFC 6076 §4.2 post-dial delay).
    pub post_dial_delay: Option<Duration>,
    /// Media figures, once the call was answered.
    pub media: Option<CallMedia>,
    /// How the call ended: `BYE 200`, `CANCEL`, `remote BYE`, …
    pub teardown: String,
    /// re-INVITEs / UPDATEs answered during the call.
    pub reoffers_answered: u32,
}

/// A teardown a round left to do: the request's bytes and where they go.
#[derive(Debug, Clone)]
pub struct PendingTeardown {
    bytes: Vec<u8>,
    peer: SocketAddr,
    method: &'static str,
}

/// What an INVITE probe keeps between rounds.
#[derive(Debug)]
pub struct CallState {
    credentials: Option<Credentials>,
    /// The CANCEL or BYE the round in progress would need, should it be cut short.
    pub(super) pending: Option<PendingTeardown>,
}

/// Loads an INVITE probe's credentials.
pub fn call_state(cfg: &SipProbeConfig) -> Result<CallState, String> {
    let credentials = match &cfg.register.auth {
        None => None,
        Some(auth) => Some(load_credentials(auth)?),
    };
    Ok(CallState {
        credentials,
        pending: None,
    })
}

/// The dialog's identity and route.
struct Dialog {
    sip: UdpSocket,
    peer: SocketAddr,
    local: SocketAddr,
    request_uri: String,
    from: String,
    tag: String,
    to: String,
    call_id: String,
    cseq: u32,
    branch_prefix: String,
    remote_tag: Option<String>,
    remote_target: Option<String>,
    route: Vec<String>,
    contact: String,
    sdp: String,
    headers: Vec<(String, String)>,
    user_agent: bool,
    reoffers: u32,
    remote_bye: bool,
    dropped: DroppedResponses,
}

/// One received SIP message, stamped.
struct Received {
    msg: DialogMessage,
    at: Instant,
}

impl Dialog {
    fn branch(&self) -> String {
        format!("{}{}", self.branch_prefix, random_hex(8))
    }

    /// A request of the dialog: INVITE/CANCEL/ACK-of-non-2xx out of dialog, BYE/ACK-of-2xx in.
    fn request(
        &self,
        method: &str,
        branch: &str,
        cseq: u32,
        auth: Option<(&str, &str)>,
        sdp: bool,
    ) -> Vec<u8> {
        let in_dialog =
            matches!(method, "BYE") || (method == "ACK" && self.remote_target.is_some());
        let ruri = match (&self.remote_target, in_dialog) {
            (Some(target), true) => target.as_str(),
            _ => self.request_uri.as_str(),
        };
        let route: &[String] = if in_dialog { &self.route } else { &[] };
        dialog::format_request(&DialogRequest {
            method,
            request_uri: ruri,
            transport: SipTransport::Udp,
            sent_by: self.local,
            branch,
            from: (&self.from, &self.tag),
            to: (&self.to, self.remote_tag.as_deref()),
            call_id: &self.call_id,
            cseq,
            contact: (method == "INVITE").then_some(self.contact.as_str()),
            route,
            authorization: auth,
            user_agent: (self.user_agent && method != "ACK").then_some(USER_AGENT),
            extra: if method == "ACK" || method == "CANCEL" {
                &[]
            } else {
                &self.headers
            },
            sdp: sdp.then_some(self.sdp.as_str()),
        })
    }

    async fn send(&self, bytes: &[u8]) -> std::io::Result<()> {
        self.sip.send_to(bytes, self.peer).await.map(|_| ())
    }

    /// Reads one SIP datagram. Requests of our dialog are answered here (BYE: 200 and the call
    /// is over; re-INVITE/UPDATE: 200 with our unchanged SDP; OPTIONS: 200; ACK: nothing);
    /// requests of other calls get a 481. Responses of our Call-ID are handed back.
    async fn recv(&mut self, buf: &mut [u8]) -> std::io::Result<Option<Received>> {
        let (n, from) = self.sip.recv_from(buf).await?;
        let at = Instant::now();
        let Some(bytes) = buf.get(..n) else {
            return Ok(None);
        };
        if crate::sip::parse::is_keepalive(bytes) {
            return Ok(None);
        }
        let msg = match dialog::parse(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.dropped.malformed += 1;
                return Ok(None);
            }
        };
        let ours = msg.header("call-id") == Some(self.call_id.as_str());
        match &msg.start {
            StartLine::Response { .. } => {
                if !ours {
                    self.dropped.unmatched += 1;
                    return Ok(None);
                }
                if from != self.peer {
                    self.dropped.spoofed += 1;
                    return Ok(None);
                }
                Ok(Some(Received { msg, at }))
            }
            StartLine::Request { method, .. } => {
                let method = method.clone();
                if method == "ACK" {
                    return Ok(None);
                }
                let (status, reason, body) = if !ours {
                    (481, "Call/Transaction Does Not Exist", None)
                } else {
                    match method.as_str() {
                        "BYE" => {
                            self.remote_bye = true;
                            (200, "OK", None)
                        }
                        "INVITE" | "UPDATE" => {
                            self.reoffers += 1;
                            (200, "OK", Some(self.sdp.clone()))
                        }
                        "OPTIONS" => (200, "OK", None),
                        _ => (405, "Method Not Allowed", None),
                    }
                };
                let contact = body.as_ref().map(|_| self.contact.clone());
                let reply = dialog::format_response(
                    &msg,
                    status,
                    reason,
                    &self.tag,
                    contact.as_deref(),
                    body.as_deref(),
                );
                // A lost answer is retransmitted by its sender; nothing to do on error.
                let _ = self.sip.send_to(&reply, from).await;
                Ok(None)
            }
        }
    }
}

/// How the INVITE transaction ended.
enum InviteEnd {
    Answered(Box<DialogMessage>, Instant),
    Final,
    NoAnswer,
    Timeout,
    Error(String),
}

impl TargetProbe {
    /// One synthetic call.
    pub(super) async fn call_round(&mut self) -> ProbeReport {
        let (result, dropped) = match self.place_call().await {
            Ok(r) => r,
            Err(e) => (
                CallResult {
                    outcome: CallOutcome::Error,
                    status: None,
                    detail: Some(e),
                    setup: None,
                    post_dial_delay: None,
                    media: None,
                    teardown: "none".into(),
                    reoffers_answered: 0,
                },
                DroppedResponses::default(),
            ),
        };
        let up = result.outcome == CallOutcome::Ok;
        ProbeReport {
            target: self.cfg.name.clone(),
            transport: SipTransport::Udp,
            at: self.ctx.now(),
            outcomes: Vec::new(),
            loss_ratio: result
                .media
                .as_ref()
                .and_then(|m| m.loss_ratio)
                .unwrap_or(if up { 0.0 } else { 1.0 }),
            jitter: None,
            rtt_median: None,
            up,
            connect_duration: None,
            tls_handshake_duration: None,
            dropped,
            register: None,
            call: Some(Box::new(result)),
        }
    }

    /// Whether a call round left a BYE or CANCEL to send.
    pub(super) fn call_pending(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.pending.is_some())
    }

    /// Sends the teardown a cut-short round left, from a fresh socket, and waits up to
    /// `timeout` for any final answer (retransmitting on Timer E).
    pub(super) async fn send_pending_teardown(&mut self) -> bool {
        let Some(pending) = self.call.as_mut().and_then(|c| c.pending.take()) else {
            return true;
        };
        let bind: SocketAddr = if pending.peer.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let Ok(sock) = UdpSocket::bind(bind).await else {
            return false;
        };
        let deadline = Instant::now() + self.cfg.timeout;
        let mut gap = T1;
        let mut buf = vec![0u8; 4096];
        loop {
            if sock.send_to(&pending.bytes, pending.peer).await.is_err() {
                return false;
            }
            let wake = (Instant::now() + gap).min(deadline);
            loop {
                match tokio::time::timeout_at(wake, sock.recv_from(&mut buf)).await {
                    Ok(Ok((n, _))) => {
                        if let Some(Ok(m)) = buf.get(..n).map(dialog::parse)
                            && m.status().is_some_and(|s| s >= 200)
                            && m.cseq().is_some_and(|(_, meth)| meth == pending.method)
                        {
                            return true;
                        }
                    }
                    Ok(Err(_)) => return false,
                    Err(_) => break,
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            gap = (gap * 2).min(T2);
        }
    }

    fn set_pending(&mut self, pending: Option<PendingTeardown>) {
        if let Some(c) = self.call.as_mut() {
            c.pending = pending;
        }
    }

    async fn place_call(&mut self) -> Result<(CallResult, DroppedResponses), String> {
        let peer = self.resolve().await.map_err(|e| e.to_string())?;
        let ip = self
            .cfg
            .source
            .map(|s| s.ip())
            .unwrap_or_else(|| local_ip_towards(peer, None));
        let sip = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("sip socket on {ip}: {e}"))?;
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))
            .await
            .map_err(|e| format!("rtp socket on {ip}: {e}"))?;
        let local = sip.local_addr().map_err(|e| e.to_string())?;
        let rtp_local = rtp.local_addr().map_err(|e| e.to_string())?;
        let call = self.cfg.call;
        let from =
            self.cfg.from.clone().unwrap_or_else(|| {
                format!("sip:callpulse@{}", crate::sip::request::host_of(local))
            });
        let request_uri = self
            .cfg
            .request_uri
            .clone()
            .unwrap_or_else(|| self.uri.request_uri());
        let user_agent = !self
            .cfg
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
        let session_id = u64::from(fastrand::u32(..));
        let mut d = Dialog {
            sip,
            peer,
            local,
            to: request_uri.clone(),
            request_uri,
            from,
            tag: random_hex(8),
            call_id: random_hex(16),
            cseq: 1,
            branch_prefix: format!("{BRANCH_PREFIX}{:x}-", self.id),
            remote_tag: None,
            remote_target: None,
            route: Vec::new(),
            contact: format!(
                "sip:callpulse@{}:{}",
                crate::sip::request::host_of(local),
                local.port()
            ),
            sdp: sdp::offer(session_id, rtp_local, call.codec, call.ptime),
            headers: self.cfg.headers.clone(),
            user_agent,
            reoffers: 0,
            remote_bye: false,
            dropped: DroppedResponses::default(),
        };
        let mut result = CallResult {
            outcome: CallOutcome::Ok,
            status: None,
            detail: None,
            setup: None,
            post_dial_delay: None,
            media: None,
            teardown: "none".into(),
            reoffers_answered: 0,
        };
        let start = Instant::now();
        let end = self.invite(&mut d, start, &mut result).await;
        let (ok, ok_at) = match end {
            InviteEnd::Answered(ok, at) => (ok, at),
            InviteEnd::Final => {
                self.set_pending(None);
                return Ok((result, d.dropped));
            }
            InviteEnd::NoAnswer | InviteEnd::Timeout => {
                result.outcome = if matches!(end, InviteEnd::NoAnswer) {
                    CallOutcome::NoAnswer
                } else {
                    CallOutcome::Timeout
                };
                result.teardown = self.cancel(&mut d, &mut result).await;
                self.set_pending(None);
                return Ok((result, d.dropped));
            }
            InviteEnd::Error(e) => {
                result.outcome = CallOutcome::Error;
                result.detail = Some(e);
                result.teardown = self.cancel(&mut d, &mut result).await;
                self.set_pending(None);
                return Ok((result, d.dropped));
            }
        };
        result.setup = Some(ok_at.saturating_duration_since(start));
        // The dialog: remote tag, remote target, route set (Record-Route reversed, RFC 3261 §12.1.2).
        d.remote_tag = ok.to_tag();
        d.remote_target = ok.remote_target();
        d.route = ok.route_set();
        // The ACK carries our INVITE's CSeq (RFC 3261 §13.2.2.4), not whatever number the 2xx
        // claims: a peer's CSeq of 2^32 − 1 would otherwise overflow the BYE's below.
        let invite_cseq = d.cseq;
        let ack = d.request("ACK", &d.branch(), invite_cseq, None, false);
        d.send(&ack).await.map_err(|e| format!("send ACK: {e}"))?;
        let bye_cseq = invite_cseq + 1;
        let bye = d.request("BYE", &d.branch(), bye_cseq, None, false);
        self.set_pending(Some(PendingTeardown {
            bytes: bye,
            peer: d.peer,
            method: "BYE",
        }));
        match sdp::parse(&ok.body) {
            Ok(answer) if answer.payload_types.contains(&call.codec.payload_type()) => {
                let media = run_media(&mut d, &rtp, answer.media, &ack, call).await;
                result.media = Some(media);
            }
            Ok(answer) => {
                result.outcome = CallOutcome::Error;
                result.detail = Some(format!(
                    "the answer offers payload types {:?}, not {} ({})",
                    answer.payload_types,
                    call.codec.payload_type(),
                    call.codec.as_str()
                ));
            }
            Err(e) => {
                result.outcome = CallOutcome::Error;
                result.detail = Some(format!("the 200's sdp: {e}"));
            }
        }
        result.reoffers_answered = d.reoffers;
        if d.remote_bye {
            result.teardown = "remote BYE".into();
            self.set_pending(None);
        } else {
            result.teardown = self.bye(&mut d, bye_cseq).await;
        }
        Ok((result, d.dropped))
    }

    /// The INVITE transaction: retransmitted on Timer A until a response, 1xx noted, a
    /// 401/407 answered once, non-2xx finals ACKed.
    async fn invite(
        &mut self,
        d: &mut Dialog,
        start: Instant,
        result: &mut CallResult,
    ) -> InviteEnd {
        let answer_deadline = start + self.cfg.call.answer_timeout;
        let mut auth: Option<(&'static str, String)> = None;
        let mut challenged = false;
        let mut buf = vec![0u8; 65_536];
        loop {
            let branch = d.branch();
            let cseq = d.cseq;
            let bytes = d.request(
                "INVITE",
                &branch,
                cseq,
                auth.as_ref().map(|(h, v)| (*h, v.as_str())),
                true,
            );
            let cancel = dialog::format_request(&DialogRequest {
                method: "CANCEL",
                request_uri: &d.request_uri,
                transport: SipTransport::Udp,
                sent_by: d.local,
                branch: &branch,
                from: (&d.from, &d.tag),
                to: (&d.to, None),
                call_id: &d.call_id,
                cseq,
                contact: None,
                route: &[],
                authorization: None,
                user_agent: None,
                extra: &[],
                sdp: None,
            });
            self.set_pending(Some(PendingTeardown {
                bytes: cancel,
                peer: d.peer,
                method: "CANCEL",
            }));
            if let Err(e) = d.send(&bytes).await {
                return InviteEnd::Error(format!("send INVITE to {}: {e}", d.peer));
            }
            let sent = Instant::now();
            let first_deadline = sent + self.cfg.timeout;
            let mut provisional = false;
            let mut gap = T1;
            let mut next_retransmit = sent + T1;
            let final_msg = loop {
                let deadline = if provisional {
                    answer_deadline
                } else {
                    first_deadline.min(answer_deadline)
                };
                let wake = if provisional {
                    deadline
                } else {
                    next_retransmit.min(deadline)
                };
                tokio::select! {
                    biased;
                    got = d.recv(&mut buf) => match got {
                        Ok(Some(r)) => {
                            let Some((n, method)) = r.msg.cseq() else { continue };
                            if n != cseq || method != "INVITE" {
                                d.dropped.unmatched += 1;
                                continue;
                            }
                            match r.msg.status() {
                                Some(s) if s < 200 => {
                                    provisional = true;
                                    if (180..190).contains(&s) && result.post_dial_delay.is_none() {
                                        result.post_dial_delay = Some(r.at.saturating_duration_since(start));
                                    }
                                }
                                Some(_) => break (r.msg, r.at),
                                None => {}
                            }
                        }
                        Ok(None) => {}
                        Err(e) => return InviteEnd::Error(format!("receive on the sip socket: {e}")),
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        let now = Instant::now();
                        if now >= deadline {
                            return if provisional || now >= answer_deadline {
                                InviteEnd::NoAnswer
                            } else {
                                InviteEnd::Timeout
                            };
                        }
                        if !provisional && now >= next_retransmit {
                            let _ = d.send(&bytes).await;
                            gap = (gap * 2).min(T2);
                            next_retransmit = now + gap;
                        }
                    }
                }
            };
            let (msg, at) = final_msg;
            let status = msg.status().unwrap_or(500);
            result.status = Some(status);
            if (200..300).contains(&status) {
                return InviteEnd::Answered(Box::new(msg), at);
            }
            // RFC 3261 §17.1.1.3: a non-2xx final is ACKed in its transaction (same branch).
            let saved_tag = d.remote_tag.take();
            d.remote_tag = msg.to_tag();
            let ack = d.request("ACK", &branch, cseq, None, false);
            d.remote_tag = saved_tag;
            let _ = d.send(&ack).await;
            d.cseq += 1;
            match status {
                401 | 407 if !challenged => {
                    challenged = true;
                    let creds = self.call.as_ref().and_then(|c| c.credentials.clone());
                    let Some(creds) = creds else {
                        result.outcome = CallOutcome::AuthFailed;
                        result.detail =
                            Some(format!("{status} challenge, but no auth is configured"));
                        return InviteEnd::Final;
                    };
                    let header = if status == 407 {
                        ("proxy-authenticate", "Proxy-Authorization")
                    } else {
                        ("www-authenticate", "Authorization")
                    };
                    let values: Vec<String> = msg
                        .headers
                        .iter()
                        .filter(|(n, _)| n == header.0)
                        .map(|(_, v)| v.clone())
                        .collect();
                    match digest::choose(&values, creds.realm.as_deref()) {
                        Ok(ch) => {
                            let value = digest::authorization(
                                &ch,
                                &AnswerInput {
                                    username: &creds.username,
                                    password: &creds.password,
                                    method: "INVITE",
                                    uri: &d.request_uri,
                                    cnonce: &random_hex(16),
                                    nc: 1,
                                },
                            );
                            auth = Some((header.1, value));
                        }
                        Err(e) => {
                            result.outcome = CallOutcome::AuthFailed;
                            result.detail =
                                Some(format!("cannot answer the {status} challenge: {e}"));
                            return InviteEnd::Final;
                        }
                    }
                }
                401 | 407 | 403 if challenged => {
                    result.outcome = CallOutcome::AuthFailed;
                    result.detail = Some(format!(
                        "{status} after answering the challenge (wrong username or password?)"
                    ));
                    return InviteEnd::Final;
                }
                _ => {
                    result.outcome = CallOutcome::Rejected;
                    let reason = match &msg.start {
                        StartLine::Response { reason, .. } => reason.clone(),
                        StartLine::Request { .. } => String::new(),
                    };
                    result.detail = Some(format!("{status} {reason}"));
                    return InviteEnd::Final;
                }
            }
        }
    }

    /// CANCELs the pending INVITE (RFC 3261 §9.1) and waits for the 487, ACKing it; if a 200
    /// crosses the CANCEL, the call is ACKed and BYEd instead.
    async fn cancel(&mut self, d: &mut Dialog, result: &mut CallResult) -> String {
        let Some(pending) = self.call.as_ref().and_then(|c| c.pending.clone()) else {
            return "none".into();
        };
        let _ = d.send(&pending.bytes).await;
        let deadline = Instant::now() + self.cfg.timeout;
        let mut buf = vec![0u8; 65_536];
        let mut cancelled = false;
        let mut gap = T1;
        let mut next = Instant::now() + T1;
        loop {
            tokio::select! {
                biased;
                got = d.recv(&mut buf) => {
                    let Ok(Some(r)) = got else { continue };
                    let (Some(status), Some((n, method))) = (r.msg.status(), r.msg.cseq()) else { continue };
                    match method {
                        "CANCEL" if status >= 200 => cancelled = true,
                        "INVITE" if (200..300).contains(&status) => {
                            // The answer crossed our CANCEL: the call exists now, end it.
                            result.status = Some(status);
                            d.remote_tag = r.msg.to_tag();
                            d.remote_target = r.msg.remote_target();
                            d.route = r.msg.route_set();
                            let ack = d.request("ACK", &d.branch(), n, None, false);
                            let _ = d.send(&ack).await;
                            return format!("CANCEL crossed by a 2xx; {}", self.bye(d, n + 1).await);
                        }
                        "INVITE" if status >= 300 => {
                            let tag = d.remote_tag.take();
                            d.remote_tag = r.msg.to_tag();
                            let branch = r.msg.top_branch().unwrap_or_default();
                            let ack = d.request("ACK", &branch, n, None, false);
                            d.remote_tag = tag;
                            let _ = d.send(&ack).await;
                            return format!("CANCEL ({status})");
                        }
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(next.min(deadline)) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return if cancelled { "CANCEL (no 487)".into() } else { "CANCEL unanswered".into() };
                    }
                    if !cancelled {
                        let _ = d.send(&pending.bytes).await;
                    }
                    gap = (gap * 2).min(T2);
                    next = now + gap;
                }
            }
        }
    }

    /// BYE (RFC 3261 §15.1.1), retransmitted on Timer E, a 401/407 answered once.
    async fn bye(&mut self, d: &mut Dialog, mut cseq: u32) -> String {
        let mut auth: Option<(&'static str, String)> = None;
        let mut buf = vec![0u8; 65_536];
        for _ in 0..2 {
            let bytes = d.request(
                "BYE",
                &d.branch(),
                cseq,
                auth.as_ref().map(|(h, v)| (*h, v.as_str())),
                false,
            );
            self.set_pending(Some(PendingTeardown {
                bytes: bytes.clone(),
                peer: d.peer,
                method: "BYE",
            }));
            if d.send(&bytes).await.is_err() {
                return "BYE not sent".into();
            }
            let deadline = Instant::now() + self.cfg.timeout;
            let mut gap = T1;
            let mut next = Instant::now() + T1;
            let status = loop {
                tokio::select! {
                    biased;
                    got = d.recv(&mut buf) => {
                        let Ok(Some(r)) = got else { continue };
                        match (r.msg.status(), r.msg.cseq()) {
                            (Some(s), Some((n, "BYE"))) if n == cseq && s >= 200 => {
                                break Some((s, r.msg));
                            }
                            _ => {}
                        }
                    }
                    _ = tokio::time::sleep_until(next.min(deadline)) => {
                        let now = Instant::now();
                        if now >= deadline {
                            break None;
                        }
                        let _ = d.send(&bytes).await;
                        gap = (gap * 2).min(T2);
                        next = now + gap;
                    }
                }
            };
            match status {
                None => return "BYE unanswered".into(),
                Some((s @ (401 | 407), msg)) if auth.is_none() => {
                    let creds = self.call.as_ref().and_then(|c| c.credentials.clone());
                    let header = if s == 407 {
                        ("proxy-authenticate", "Proxy-Authorization")
                    } else {
                        ("www-authenticate", "Authorization")
                    };
                    let values: Vec<String> = msg
                        .headers
                        .iter()
                        .filter(|(n, _)| n == header.0)
                        .map(|(_, v)| v.clone())
                        .collect();
                    let uri = d
                        .remote_target
                        .clone()
                        .unwrap_or_else(|| d.request_uri.clone());
                    match creds.and_then(|c| {
                        digest::choose(&values, c.realm.as_deref())
                            .ok()
                            .map(|ch| (c, ch))
                    }) {
                        Some((c, ch)) => {
                            auth = Some((
                                header.1,
                                digest::authorization(
                                    &ch,
                                    &AnswerInput {
                                        username: &c.username,
                                        password: &c.password,
                                        method: "BYE",
                                        uri: &uri,
                                        cnonce: &random_hex(16),
                                        nc: 1,
                                    },
                                ),
                            ));
                            cseq += 1;
                        }
                        None => {
                            self.set_pending(None);
                            return format!("BYE {s} (cannot answer)");
                        }
                    }
                }
                Some((s, _)) => {
                    self.set_pending(None);
                    return format!("BYE {s}");
                }
            }
        }
        self.set_pending(None);
        "BYE refused after the challenge".into()
    }
}

/// Sends RTP for the call's duration at `ptime` and measures what comes back. Keeps answering
/// SIP meanwhile (a re-INVITE, a BYE from the far end, a retransmitted 200 that wants its ACK
/// again).
async fn run_media(
    d: &mut Dialog,
    rtp: &UdpSocket,
    remote: SocketAddr,
    ack: &[u8],
    call: crate::config::CallConfig,
) -> CallMedia {
    let codec = call.codec;
    let clock = f64::from(codec.clock_rate());
    let samples = (call.ptime.as_secs_f64() * clock).round() as u32;
    let total = (call.duration.as_nanos() / call.ptime.as_nanos().max(1)).max(1) as u64;
    let payload =
        vec![codec.silence_byte(); codec.bytes_per_ms() * call.ptime.as_millis() as usize];
    let ssrc = fastrand::u32(..);
    let seq0 = fastrand::u16(..);
    let ts0 = fastrand::u32(..);
    let mut send_times: Vec<Instant> = Vec::with_capacity(total as usize);
    let mut echoed_seen = vec![false; total as usize];
    let mut rtts: Vec<Duration> = Vec::new();
    let mut stats = ReceiverStats::new();
    let mut tracked: Option<u32> = None;
    let mut received = 0u64;
    let mut jb = FixedJitterBuffer::new(2 * samples);
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start, call.ptime);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sip_buf = vec![0u8; 65_536];
    let mut rtp_buf = vec![0u8; 2048];
    let mut packet = Vec::with_capacity(12 + payload.len());
    let mut done_at: Option<Instant> = None;
    loop {
        if d.remote_bye {
            break;
        }
        let grace = done_at.map(|t| t + ECHO_GRACE);
        tokio::select! {
            biased;
            got = rtp.recv_from(&mut rtp_buf) => {
                let at = Instant::now();
                let Ok((n, _from)) = got else { continue };
                let Some(Ok(p)) = rtp_buf.get(..n).map(RtpPacket::parse) else { continue };
                let h = &p.header;
                if *tracked.get_or_insert(h.ssrc) != h.ssrc {
                    continue;
                }
                received += 1;
                let index = usize::from(h.sequence.wrapping_sub(seq0));
                let echo_of = (h.ssrc == ssrc
                    && h.timestamp == ts0.wrapping_add(samples.wrapping_mul(index as u32)))
                    .then(|| send_times.get(index).copied())
                    .flatten();
                // Arrival in timestamp units, as RFC 3550 §A.8 wants. An echo of ours arrives
                // its round trip after the instant its timestamp stands for: our own send-side
                // scheduling delay (a late timer tick) is not network jitter, so it is taken
                // out. Another source's packets are stamped on our media clock (ts0 = start).
                let arrival = match echo_of {
                    Some(sent) => h.timestamp.wrapping_add(
                        (at.saturating_duration_since(sent).as_secs_f64() * clock) as u32,
                    ),
                    None => ts0.wrapping_add(
                        (at.saturating_duration_since(start).as_secs_f64() * clock) as u32,
                    ),
                };
                stats.on_packet(h.sequence, h.timestamp, arrival);
                if jb.on_packet(h.timestamp, arrival) == Playout::Duplicate {
                    continue;
                }
                if let (Some(sent), Some(seen)) = (echo_of, echoed_seen.get_mut(index))
                    && !*seen
                {
                    *seen = true;
                    rtts.push(at.saturating_duration_since(sent));
                }
            }
            got = d.recv(&mut sip_buf) => {
                // A retransmitted 2xx means our ACK was lost: send it again.
                if let Ok(Some(r)) = got
                    && r.msg.status().is_some_and(|s| (200..300).contains(&s))
                    && r.msg.cseq().is_some_and(|(_, m)| m == "INVITE")
                {
                    let _ = d.send(ack).await;
                }
            }
            _ = ticker.tick(), if done_at.is_none() => {
                let i = send_times.len() as u64;
                let header = RtpHeader {
                    marker: i == 0,
                    payload_type: codec.payload_type(),
                    sequence: seq0.wrapping_add(i as u16),
                    timestamp: ts0.wrapping_add(samples.wrapping_mul(i as u32)),
                    ssrc,
                    csrc: Vec::new(),
                    extension: None,
                };
                packet.clear();
                if header.write(&payload, 0, &mut packet).is_ok() {
                    let sent_at = Instant::now();
                    // A send error (ICMP unreachable, a full buffer) is a lost packet, counted
                    // by the receiver's sequence accounting.
                    let _ = rtp.send_to(&packet, remote).await;
                    send_times.push(sent_at);
                }
                if send_times.len() as u64 >= total {
                    done_at = Some(Instant::now());
                }
            }
            _ = sleep_opt(grace) => break,
        }
    }
    let report = stats.report();
    let expected = u64::from(report.expected);
    let lost = i64::from(report.cumulative_lost);
    let enough = expected >= 2;
    let loss_ratio = enough.then(|| (lost.max(0) as f64 / expected as f64).clamp(0.0, 1.0));
    let effective_loss_ratio =
        enough.then(|| ((lost.max(0) as f64 + jb.late() as f64) / expected as f64).clamp(0.0, 1.0));
    let echoed = rtts.len() as u64;
    let rtt_mean = (!rtts.is_empty()).then(|| rtts.iter().sum::<Duration>() / rtts.len() as u32);
    let rtt_median = crate::probe::round::median(&mut rtts);
    CallMedia {
        codec,
        ptime: call.ptime,
        sent: send_times.len() as u64,
        received,
        expected,
        lost,
        loss_ratio,
        jitter: (received >= 2).then(|| Duration::from_secs_f64(f64::from(report.jitter) / clock)),
        echoed,
        rtt_median,
        rtt_mean,
        jitter_buffer: call.ptime * 2,
        late_discards: jb.late(),
        effective_loss_ratio,
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

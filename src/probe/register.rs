//! REGISTER probes (RFC 3261 §10.2): one registration per round — REGISTER, answer the 401/407
//! digest challenge (RFC 7616/8760 via [`crate::sip::digest`]), answer once more on `stale=true`,
//! retry once with `Min-Expires` on a 423 — then, unless `keep_registered`, an unREGISTER
//! (`Expires: 0` for our contact only, never `Contact: *`, which would drop the AoR's real
//! phones too). The time from the first REGISTER to the final 2xx is the round's duration.
//!
//! State that outlives a round lives in [`RegisterState`]: one Call-ID and a CSeq counting up
//! (RFC 3261 §10.2: a UA reuses its Call-ID for all registrations of a boot cycle, so registrars
//! can order refreshes), the requested expiry (raised for good by a 423), and the contact the
//! registrar may hold, which shutdown removes. Each request is its own transaction on the
//! target's transport; on UDP it is retransmitted on Timer E (500 ms doubling to 4 s) until the
//! timeout, because unlike an OPTIONS sample a registration is one event that a single lost
//! datagram should not fail.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::{PasswordSource, ProbeAuth, SipProbeConfig};
use crate::probe::matcher::{Matcher, PastRequest, Verdict};
use crate::probe::message::{BRANCH_PREFIX, RequestKey, USER_AGENT, random_hex};
use crate::probe::round::{Link, TargetProbe, recv};
use crate::probe::uri::TargetUri;
use crate::probe::{
    DroppedResponses, ProbeReport, RegisterOutcome, RegisterResult, RegisterStep, RequestOutcome,
};
use crate::sip::digest::{self, AnswerInput, Challenge, Secret};
use crate::sip::parse::Response;
use crate::sip::request::{OutRequest, format_request, host_of};
use crate::sip::{SipTransport, is_token_byte};

/// RFC 3261 T1: first UDP retransmission interval.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: retransmission interval cap for non-INVITE requests.
const T2: Duration = Duration::from_secs(4);
/// CSeq stays below 2^31 (RFC 3261 §8.1.1.5).
const CSEQ_LIMIT: u32 = 1 << 31;
/// Transactions a round may use; config checks `interval` against it.
const MAX_TRANSACTIONS: usize = crate::config::MAX_REGISTER_TRANSACTIONS as usize;

/// Digest credentials, loaded when the probe starts.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
    pub(crate) realm: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// The challenge being answered and how often its nonce was used.
#[derive(Debug, Clone)]
struct Answering {
    header: &'static str,
    challenge: Challenge,
    nc: u32,
}

/// What a REGISTER probe keeps between rounds.
#[derive(Debug)]
pub struct RegisterState {
    aor: String,
    request_uri: String,
    contact_user: String,
    credentials: Option<Credentials>,
    call_id: String,
    from_tag: String,
    branch_prefix: String,
    next_cseq: u32,
    expires: u32,
    keep_registered: bool,
    headers: Vec<(String, String)>,
    user_agent: bool,
    /// The contact the registrar may hold for us: set before any REGISTER with an expiry goes
    /// out, cleared by a 2xx to an unREGISTER.
    binding: Option<String>,
    /// The challenge the last successful REGISTER answered: the unREGISTER answers it again
    /// (next nc) instead of waiting for a fresh 401, as phones do.
    last_answer: Option<Answering>,
}

/// Why a REGISTER probe cannot start (reported like the other target settings).
pub fn register_state(
    cfg: &SipProbeConfig,
    uri: &TargetUri,
    target_id: u64,
) -> Result<RegisterState, String> {
    let reg = &cfg.register;
    let credentials = match &reg.auth {
        None => None,
        Some(auth) => Some(load_credentials(auth)?),
    };
    let host = uri.host.to_string();
    let aor = match &reg.aor {
        Some(aor) => {
            let aor = aor.trim();
            if aor.is_empty() || aor.contains(['\r', '\n', '<', '>']) {
                return Err(format!("aor {aor:?} is not a usable sip uri"));
            }
            aor.to_string()
        }
        None => {
            let user = credentials
                .as_ref()
                .map(|c| c.username.clone())
                .or_else(|| uri.user.clone())
                .unwrap_or_else(|| "callpulse".to_string());
            format!("sip:{user}@{host}")
        }
    };
    // The Contact's user part: the AoR's, so a registrar that checks it (or a human reading the
    // location table) sees whose binding this is.
    let contact_user = aor
        .split_once(':')
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once('@'))
        .map(|(user, _)| user.to_string())
        .filter(|u| {
            !u.is_empty()
                && u.bytes()
                    .all(|b| is_token_byte(b) || b"&=+$,;?/".contains(&b))
        })
        .unwrap_or_else(|| "callpulse".to_string());
    // RFC 3261 §10.2: the Request-URI names the registrar's domain, without user part.
    let scheme = if uri.request_uri().starts_with("sips:") {
        "sips"
    } else {
        "sip"
    };
    let request_uri = match uri.port {
        Some(port) => format!("{scheme}:{host}:{port}"),
        None => format!("{scheme}:{host}"),
    };
    let expires = match reg.expires {
        Some(d) => u32::try_from(d.as_secs()).unwrap_or(u32::MAX).max(1),
        None => u32::try_from(cfg.interval.as_secs().saturating_mul(2))
            .unwrap_or(u32::MAX)
            .max(60),
    };
    let user_agent = !cfg
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"));
    Ok(RegisterState {
        aor,
        request_uri,
        contact_user,
        credentials,
        call_id: random_hex(16),
        from_tag: random_hex(8),
        branch_prefix: format!("{BRANCH_PREFIX}{target_id:x}-"),
        next_cseq: 1,
        expires,
        keep_registered: reg.keep_registered,
        headers: cfg.headers.clone(),
        user_agent,
        binding: None,
        last_answer: None,
    })
}

pub(crate) fn load_credentials(auth: &ProbeAuth) -> Result<Credentials, String> {
    let password = match &auth.password {
        PasswordSource::Value(secret) => secret.clone(),
        PasswordSource::File(path) => {
            // The error names the file and the OS reason, never its content.
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("password_file {}: {e}", path.display()))?;
            let first = text.lines().next().unwrap_or_default();
            if first.is_empty() {
                return Err(format!(
                    "password_file {}: the first line is empty",
                    path.display()
                ));
            }
            Secret::new(first)
        }
    };
    Ok(Credentials {
        username: auth.username.clone(),
        password,
        realm: auth.realm.clone(),
    })
}

impl RegisterState {
    /// The requested binding lifetime in seconds (after any 423).
    pub fn expires(&self) -> u32 {
        self.expires
    }

    /// The contact the registrar may still hold.
    pub fn binding(&self) -> Option<&str> {
        self.binding.as_deref()
    }

    /// Whether shutdown should unREGISTER.
    pub fn needs_unregister(&self) -> bool {
        self.binding.is_some() && !self.keep_registered
    }

    fn contact_for(&self, local: SocketAddr, transport: SipTransport) -> String {
        let t = match transport {
            SipTransport::Udp => String::new(),
            other => format!(";transport={}", other.as_str()),
        };
        // A sips: registrar gets a sips: contact (RFC 3261 §10.2.1: reachable over TLS only).
        let scheme = if self.request_uri.starts_with("sips:") {
            "sips"
        } else {
            "sip"
        };
        format!(
            "{scheme}:{}@{}:{}{t}",
            self.contact_user,
            host_of(local),
            local.port()
        )
    }

    /// One REGISTER: a new branch and CSeq, the same Call-ID; a digest answer when answering.
    fn build(
        &mut self,
        local: SocketAddr,
        transport: SipTransport,
        contact: &str,
        expires: u32,
        answering: Option<&mut Answering>,
    ) -> (Vec<u8>, RequestKey) {
        if self.next_cseq >= CSEQ_LIMIT {
            self.next_cseq = 1;
        }
        let cseq = self.next_cseq;
        self.next_cseq += 1;
        let branch = format!("{}{}", self.branch_prefix, random_hex(8));
        let auth_value = match (answering, &self.credentials) {
            (Some(a), Some(c)) => {
                a.nc = a.nc.saturating_add(1);
                let cnonce = random_hex(16);
                let value = digest::authorization(
                    &a.challenge,
                    &AnswerInput {
                        username: &c.username,
                        password: &c.password,
                        method: "REGISTER",
                        uri: &self.request_uri,
                        cnonce: &cnonce,
                        nc: a.nc,
                    },
                );
                Some((a.header, value))
            }
            _ => None,
        };
        let bytes = format_request(&OutRequest {
            method: "REGISTER",
            request_uri: &self.request_uri,
            transport,
            sent_by: local,
            branch: &branch,
            from: &self.aor,
            from_tag: &self.from_tag,
            to: &self.aor,
            call_id: &self.call_id,
            cseq,
            contact: Some(contact),
            expires: Some(expires),
            authorization: auth_value.as_ref().map(|(h, v)| (*h, v.as_str())),
            accept: None,
            user_agent: self.user_agent.then_some(USER_AGENT),
            extra: &self.headers,
        });
        let key = RequestKey {
            branch,
            call_id: self.call_id.clone(),
            cseq,
            method: "REGISTER",
        };
        (bytes, key)
    }
}

/// One transaction's end.
enum Exchange {
    Final {
        response: Box<Response>,
        rtt: Duration,
    },
    Timeout,
    Error(String),
}

/// Connection facts and drops gathered over a round's transactions.
#[derive(Default)]
struct RoundNet {
    connect: Option<Duration>,
    tls_handshake: Option<Duration>,
    dropped: DroppedResponses,
    past: Vec<PastRequest>,
    sent: usize,
    answered: usize,
}

/// What the request loop decided.
struct Decision {
    outcome: RegisterOutcome,
    status: Option<u16>,
    detail: Option<String>,
    duration: Option<Duration>,
    bindings: Vec<String>,
}

impl Decision {
    fn fail(outcome: RegisterOutcome, status: Option<u16>, detail: String) -> Decision {
        Decision {
            outcome,
            status,
            detail: Some(detail),
            duration: None,
            bindings: Vec::new(),
        }
    }
}

impl TargetProbe {
    /// One REGISTER round (and its unREGISTER unless `keep_registered`).
    pub(super) async fn register_round(&mut self) -> ProbeReport {
        let mut net = RoundNet {
            past: std::mem::take(&mut self.past),
            ..RoundNet::default()
        };
        let mut steps = Vec::new();
        let prior_binding = self.register.as_ref().and_then(|r| r.binding.clone());
        let decision = self.register_flow(&mut net, &mut steps).await;
        let sent_contact = self.register.as_ref().and_then(|r| r.binding.clone());
        if matches!(
            decision.outcome,
            RegisterOutcome::AuthFailed | RegisterOutcome::Rejected
        ) && let Some(r) = self.register.as_mut()
        {
            // A final non-2xx means this REGISTER bound nothing: only an earlier binding may
            // remain (timeouts and errors leave the question open, so shutdown still tries).
            r.binding = prior_binding;
        }
        let mut result = RegisterResult {
            outcome: decision.outcome,
            status: decision.status,
            duration: decision.duration,
            detail: decision.detail,
            bindings: decision.bindings,
            contact: sent_contact,
            unregistered: None,
            steps,
        };
        if decision.outcome == RegisterOutcome::Ok
            && self.register.as_ref().is_some_and(|r| !r.keep_registered)
        {
            let (ok, more) = self.unregister_with(&mut net).await;
            result.unregistered = Some(ok);
            result.steps.extend(more);
        }
        self.past = net.past;
        let loss_ratio = if net.sent == 0 {
            1.0
        } else {
            (net.sent - net.answered) as f64 / net.sent as f64
        };
        ProbeReport {
            target: self.cfg.name.clone(),
            transport: self.uri.transport,
            at: self.ctx.now(),
            outcomes: Vec::new(),
            loss_ratio,
            jitter: None,
            rtt_median: None,
            up: result.outcome == RegisterOutcome::Ok,
            connect_duration: net.connect,
            tls_handshake_duration: net.tls_handshake,
            dropped: net.dropped,
            register: Some(Box::new(result)),
            call: None,
        }
    }

    /// Removes our binding (shutdown): one unREGISTER, answering one challenge. `true` when the
    /// registrar confirmed with a 2xx or there was nothing to remove.
    pub async fn unregister(&mut self) -> bool {
        if self.call_pending() {
            return self.send_pending_teardown().await;
        }
        if self.register.as_ref().is_none_or(|r| r.binding.is_none()) {
            return true;
        }
        let mut net = RoundNet {
            past: std::mem::take(&mut self.past),
            ..RoundNet::default()
        };
        let (ok, _) = self.unregister_with(&mut net).await;
        self.past = net.past;
        ok
    }

    /// Whether this probe may hold a binding that shutdown should remove.
    pub fn needs_unregister(&self) -> bool {
        self.call_pending()
            || self
                .register
                .as_ref()
                .is_some_and(RegisterState::needs_unregister)
    }

    async fn register_flow(
        &mut self,
        net: &mut RoundNet,
        steps: &mut Vec<RegisterStep>,
    ) -> Decision {
        use RegisterOutcome as O;
        let mut link = match self.open_link(8).await {
            Ok(link) => link,
            Err(e) => return Decision::fail(O::Error, None, e.to_string()),
        };
        let start = Instant::now();
        let mut answering: Option<Answering> = None;
        let mut answered_challenge = false;
        let mut stale_retried = false;
        let mut interval_retried = false;
        // Leave room for the unREGISTER and its challenge.
        for _ in 0..MAX_TRANSACTIONS - 2 {
            let Some(expires) = self.register.as_ref().map(|r| r.expires) else {
                return Decision::fail(O::Error, None, "not a register probe".into());
            };
            let exchange = self
                .register_once(&mut link, net, expires, answering.as_mut(), steps)
                .await;
            let response = match exchange {
                Exchange::Timeout => {
                    return Decision::fail(
                        O::Timeout,
                        None,
                        format!("no final response within {:?}", self.cfg.timeout),
                    );
                }
                Exchange::Error(e) => return Decision::fail(O::Error, None, e),
                Exchange::Final { response, .. } => response,
            };
            let status = response.status;
            match status {
                200..=299 => {
                    if let Some(r) = self.register.as_mut() {
                        r.last_answer = answering;
                    }
                    return Decision {
                        outcome: O::Ok,
                        status: Some(status),
                        detail: None,
                        duration: Some(start.elapsed()),
                        bindings: response.contacts.clone(),
                    };
                }
                401 | 407 => {
                    let Some(creds) = self.register.as_ref().and_then(|r| r.credentials.clone())
                    else {
                        return Decision::fail(
                            O::AuthFailed,
                            Some(status),
                            format!("{status} challenge, but no auth is configured"),
                        );
                    };
                    let challenge =
                        match digest::choose(&response.challenges, creds.realm.as_deref()) {
                            Ok(c) => c,
                            Err(e) => {
                                return Decision::fail(
                                    O::AuthFailed,
                                    Some(status),
                                    format!("cannot answer the {status} challenge: {e}"),
                                );
                            }
                        };
                    if answered_challenge {
                        // RFC 7616 §3.3: stale=true means the nonce expired, not the password.
                        if challenge.stale && !stale_retried {
                            stale_retried = true;
                        } else {
                            return Decision::fail(
                                O::AuthFailed,
                                Some(status),
                                format!(
                                    "{status} {} after answering the challenge (wrong username or password?)",
                                    response.reason
                                ),
                            );
                        }
                    }
                    answered_challenge = true;
                    answering = Some(Answering {
                        header: if status == 407 {
                            "Proxy-Authorization"
                        } else {
                            "Authorization"
                        },
                        challenge,
                        nc: 0,
                    });
                }
                403 if answered_challenge => {
                    return Decision::fail(
                        O::AuthFailed,
                        Some(status),
                        format!("403 {} after answering the challenge", response.reason),
                    );
                }
                423 => match response.min_expires {
                    Some(min) if !interval_retried && min > expires => {
                        interval_retried = true;
                        if let Some(r) = self.register.as_mut() {
                            r.expires = min;
                        }
                    }
                    _ => {
                        return Decision::fail(
                            O::Rejected,
                            Some(status),
                            "423 Interval Too Brief without a usable Min-Expires".into(),
                        );
                    }
                },
                _ => {
                    return Decision::fail(
                        O::Rejected,
                        Some(status),
                        format!("{status} {}", response.reason),
                    );
                }
            }
        }
        Decision::fail(
            O::Rejected,
            None,
            format!(
                "no 2xx after {} REGISTER transactions",
                MAX_TRANSACTIONS - 2
            ),
        )
    }

    /// The unREGISTER: `Expires: 0` for our binding, answering one challenge.
    async fn unregister_with(&mut self, net: &mut RoundNet) -> (bool, Vec<RegisterStep>) {
        let mut steps = Vec::new();
        let mut link = match self.open_link(8).await {
            Ok(link) => link,
            Err(_) => return (false, steps),
        };
        // Preemptively answer the last challenge; a registrar that wants a fresh nonce says 401
        // (often stale=true) and gets one answer more.
        let mut answering = self.register.as_mut().and_then(|r| r.last_answer.take());
        let mut challenged = false;
        for _ in 0..2 {
            let exchange = self
                .register_once(&mut link, net, 0, answering.as_mut(), &mut steps)
                .await;
            let Exchange::Final { response, .. } = exchange else {
                return (false, steps);
            };
            match response.status {
                200..=299 => {
                    if let Some(r) = self.register.as_mut() {
                        r.binding = None;
                    }
                    return (true, steps);
                }
                401 | 407 if !challenged => {
                    challenged = true;
                    let realm = self
                        .register
                        .as_ref()
                        .and_then(|r| r.credentials.as_ref())
                        .map(|c| c.realm.clone());
                    let Some(realm) = realm else {
                        return (false, steps);
                    };
                    let Ok(challenge) = digest::choose(&response.challenges, realm.as_deref())
                    else {
                        return (false, steps);
                    };
                    answering = Some(Answering {
                        header: if response.status == 407 {
                            "Proxy-Authorization"
                        } else {
                            "Authorization"
                        },
                        challenge,
                        nc: 0,
                    });
                }
                _ => return (false, steps),
            }
        }
        (false, steps)
    }

    /// Sends one REGISTER (`expires` 0: the unREGISTER of our binding) and waits for its final
    /// response, retransmitting on UDP.
    async fn register_once(
        &mut self,
        link: &mut Link,
        net: &mut RoundNet,
        expires: u32,
        answering: Option<&mut Answering>,
        steps: &mut Vec<RegisterStep>,
    ) -> Exchange {
        let authorized = answering.is_some();
        let mut step = RegisterStep {
            expires,
            authorized,
            result: RequestOutcome::Timeout,
            retransmissions: 0,
        };
        let local = match self
            .prepare(link, &mut net.connect, &mut net.tls_handshake)
            .await
        {
            Ok(local) => local,
            Err(e) => {
                step.result = RequestOutcome::Error(e.to_string());
                steps.push(step);
                return Exchange::Error(e.to_string());
            }
        };
        let transport = self.uri.transport;
        let Some(reg) = self.register.as_mut() else {
            return Exchange::Error("not a register probe".into());
        };
        let contact = if expires == 0 {
            match reg.binding.clone() {
                Some(c) => c,
                None => reg.contact_for(local, transport),
            }
        } else {
            let c = reg.contact_for(local, transport);
            // Set before sending: if the round is cut short, shutdown still removes it.
            reg.binding = Some(c.clone());
            c
        };
        let (bytes, key) = reg.build(local, transport, &contact, expires, answering);
        let (exchange, retransmissions) = self.exchange(link, net, bytes, key).await;
        step.retransmissions = retransmissions;
        step.result = match &exchange {
            Exchange::Final { response, rtt } => RequestOutcome::Answered {
                status: response.status,
                rtt: *rtt,
            },
            Exchange::Timeout => RequestOutcome::Timeout,
            Exchange::Error(e) => RequestOutcome::Error(e.clone()),
        };
        steps.push(step);
        exchange
    }

    /// One client transaction: send, retransmit on UDP (Timer E), wait for the final response
    /// matched by branch, Call-ID, CSeq, method and source; 1xx are ignored.
    async fn exchange(
        &mut self,
        link: &mut Link,
        net: &mut RoundNet,
        bytes: Vec<u8>,
        key: RequestKey,
    ) -> (Exchange, u32) {
        let _permit = self.ctx.permit().await;
        let (peer, sent_at) = match self.transmit(link, &bytes).await {
            Ok(sent) => sent,
            Err(e) => return (Exchange::Error(e.to_string()), 0),
        };
        net.sent += 1;
        let timeout = self.cfg.timeout;
        let deadline = sent_at + timeout;
        let mut matcher = Matcher::new(net.past.iter().cloned());
        matcher.sent(0, key, peer, sent_at, timeout);
        let udp = matches!(link, Link::Udp { .. });
        let mut gap = T1;
        let mut next_retransmit = sent_at + T1;
        let mut retransmissions = 0;
        let exchange = loop {
            let wake = if udp {
                next_retransmit.min(deadline)
            } else {
                deadline
            };
            tokio::select! {
                biased;
                inbound = recv(link, &mut self.stream) => match inbound {
                    Some(inbound) => {
                        let verdict = matcher.on_message(inbound.parsed.as_ref(), inbound.from, inbound.at);
                        if let (Verdict::Answered { rtt, .. }, Ok(response)) = (verdict, inbound.parsed) {
                            net.answered += 1;
                            break Exchange::Final { response: Box::new(response), rtt };
                        }
                    }
                    None => {
                        if matches!(link, Link::Stream) {
                            self.stream = None;
                        }
                        break Exchange::Error("the connection closed before the final response".into());
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= deadline {
                        break Exchange::Timeout;
                    }
                    if udp && now >= next_retransmit {
                        // A retransmission is the same transaction: same bytes, same branch.
                        if self.transmit(link, &bytes).await.is_ok() {
                            retransmissions += 1;
                        }
                        gap = (gap * 2).min(T2);
                        next_retransmit = now + gap;
                    }
                }
            }
        };
        let _ = matcher.expire(Instant::now());
        add_dropped(&mut net.dropped, matcher.dropped());
        net.past.extend(matcher.into_past());
        // Bound what is remembered for straggler classification.
        let keep = net.past.len().saturating_sub(16);
        net.past.drain(..keep);
        (exchange, retransmissions)
    }
}

fn add_dropped(into: &mut DroppedResponses, more: DroppedResponses) {
    into.unmatched += more.unmatched;
    into.late += more.late;
    into.duplicate += more.duplicate;
    into.spoofed += more.spoofed;
    into.malformed += more.malformed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProbeMethod;
    use crate::sip::parse::parse_message;

    fn state(cfg: &SipProbeConfig) -> RegisterState {
        let uri = TargetUri::parse(&cfg.target).unwrap();
        register_state(cfg, &uri, 7).unwrap()
    }

    fn reg_cfg(target: &str) -> SipProbeConfig {
        let mut cfg = SipProbeConfig::new("r", target);
        cfg.method = ProbeMethod::Register;
        cfg.register.auth = Some(ProbeAuth {
            username: "alice".into(),
            password: PasswordSource::Value(Secret::new("s3cret-pw")),
            realm: None,
        });
        cfg
    }

    #[test]
    fn register_request_follows_rfc3261_10_2() {
        let mut cfg = reg_cfg("sip:alice@pbx.example.net:5080;transport=tcp");
        cfg.register.aor = Some("sip:alice@example.net".into());
        let mut st = state(&cfg);
        assert_eq!(st.request_uri, "sip:pbx.example.net:5080");
        assert_eq!(st.expires(), 120, "twice the 60 s interval");
        let local: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let contact = st.contact_for(local, SipTransport::Tcp);
        assert_eq!(contact, "sip:alice@192.0.2.10:40000;transport=tcp");
        let (bytes, key) = st.build(local, SipTransport::Tcp, &contact, 120, None);
        let msg = parse_message(&bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("REGISTER sip:pbx.example.net:5080 SIP/2.0\r\n"));
        assert!(
            text.contains("\r\nTo: <sip:alice@example.net>\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nFrom: <sip:alice@example.net>;tag="));
        assert!(text.contains("\r\nContact: <sip:alice@192.0.2.10:40000;transport=tcp>\r\n"));
        assert!(text.contains("\r\nExpires: 120\r\n"));
        assert!(text.contains("\r\nCSeq: 1 REGISTER\r\n"));
        assert!(!text.contains("Authorization"));
        assert!(key.branch.starts_with("z9hG4bK-cp-7-"));
        assert_eq!(
            msg.values(&ezk_sip_types::Name::CALL_ID),
            std::slice::from_ref(&key.call_id)
        );

        // The next request: same Call-ID, next CSeq, new branch, a digest answer with nc=1.
        let mut answering = Answering {
            header: "Authorization",
            challenge: digest::parse_challenge(
                "Digest realm=\"example.net\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256",
            )
            .unwrap(),
            nc: 0,
        };
        let (bytes2, key2) = st.build(
            local,
            SipTransport::Tcp,
            &contact,
            120,
            Some(&mut answering),
        );
        let text2 = String::from_utf8(bytes2).unwrap();
        assert_eq!(key2.call_id, key.call_id);
        assert_eq!(key2.cseq, 2);
        assert_ne!(key2.branch, key.branch);
        assert!(text2.contains("Authorization: Digest username=\"alice\", realm=\"example.net\""));
        assert!(text2.contains("uri=\"sip:pbx.example.net:5080\""));
        assert!(text2.contains("algorithm=SHA-256") && text2.contains("nc=00000001"));
        assert!(!text2.contains("s3cret-pw"));
        let (bytes3, _) = st.build(local, SipTransport::Tcp, &contact, 0, Some(&mut answering));
        assert!(String::from_utf8(bytes3).unwrap().contains("nc=00000002"));
    }

    #[test]
    fn defaults_and_ipv6_contact() {
        let mut cfg = reg_cfg("sip:[2001:db8::1]");
        cfg.interval = Duration::from_secs(10);
        let st = state(&cfg);
        assert_eq!(st.aor, "sip:alice@[2001:db8::1]");
        assert_eq!(st.request_uri, "sip:[2001:db8::1]");
        assert_eq!(st.expires(), 60, "at least 60 s");
        let local: SocketAddr = "[2001:db8::2]:5062".parse().unwrap();
        assert_eq!(
            st.contact_for(local, SipTransport::Udp),
            "sip:alice@[2001:db8::2]:5062"
        );
        assert!(!format!("{st:?}").contains("s3cret-pw"));
        let st = state(&reg_cfg("sips:sbc.example.net"));
        assert_eq!(st.request_uri, "sips:sbc.example.net");
        assert_eq!(
            st.contact_for("192.0.2.1:5061".parse().unwrap(), SipTransport::Tls),
            "sips:alice@192.0.2.1:5061;transport=tls"
        );
    }

    #[test]
    fn password_file_errors_name_the_file_not_the_content() {
        let mut cfg = reg_cfg("sip:127.0.0.1");
        cfg.register.auth = Some(ProbeAuth {
            username: "alice".into(),
            password: PasswordSource::File("/nonexistent/pw".into()),
            realm: None,
        });
        let uri = TargetUri::parse(&cfg.target).unwrap();
        let err = register_state(&cfg, &uri, 1).unwrap_err();
        assert!(err.contains("/nonexistent/pw"), "{err}");
        let dir = std::env::temp_dir().join(format!("cp-pw-{}", std::process::id()));
        std::fs::write(&dir, "file-secret\nignored\n").unwrap();
        cfg.register.auth = Some(ProbeAuth {
            username: "alice".into(),
            password: PasswordSource::File(dir.clone()),
            realm: None,
        });
        let st = register_state(&cfg, &uri, 1).unwrap();
        let creds = st.credentials.as_ref().unwrap();
        assert_eq!(creds.password.expose(), "file-secret");
        assert!(!format!("{st:?}").contains("file-secret"));
        let _ = std::fs::remove_file(dir);
    }
}

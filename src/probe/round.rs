//! One round against one target: `count` OPTIONS `spacing` apart on a fixed grid, no
//! retransmission (a lost request is loss), each answered or timed out after `timeout`, turned
//! into a [`ProbeReport`]. Also the per-target state that outlives a round: the request factory
//! (Call-ID, CSeq), the TCP/TLS connection and its backoff, the jitter estimator and the previous
//! round's requests (so their stragglers count as late or duplicate).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::config::{ProbeMethod, SipProbeConfig, SipTransport};
use crate::probe::matcher::{Matcher, PastRequest, Verdict};
use crate::probe::message::{MessageError, RequestFactory};
use crate::probe::register::{RegisterState, register_state};
use crate::probe::transport::{
    Backoff, HubKey, Inbound, RouteGuard, StreamConn, TlsTarget, TransportError, UdpHub,
    connect_stream, local_ip_towards, tls_target,
};
use crate::probe::uri::{TargetUri, UriError};
use crate::probe::{DroppedResponses, ProbeReport, RequestOutcome};
use crate::quality::jitter::RttJitter;

/// Why a target cannot be probed at all (a configuration problem, reported once at start).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The target URI is invalid.
    #[error("probe {name:?}: target: {source}")]
    Uri {
        /// Target name.
        name: String,
        /// What is wrong.
        source: UriError,
    },
    /// `from`, `request_uri` or `headers` are unusable.
    #[error("probe {name:?}: {source}")]
    Message {
        /// Target name.
        name: String,
        /// What is wrong.
        source: MessageError,
    },
    /// The TLS settings are unusable.
    #[error("probe {name:?}: {source}")]
    Tls {
        /// Target name.
        name: String,
        /// What is wrong.
        source: TransportError,
    },
    /// `count` is 0, `timeout` is 0 or `dscp` is over 63.
    #[error("probe {name:?}: {what}")]
    Setting {
        /// Target name.
        name: String,
        /// What is wrong.
        what: String,
    },
}

#[derive(Debug)]
struct ContextInner {
    hubs: Mutex<HashMap<HubKey, Arc<UdpHub>>>,
    limiter: Option<Arc<Semaphore>>,
    clock: Arc<dyn Clock>,
    next_id: AtomicU64,
}

/// What the targets of one prober share: the UDP sockets, the in-flight cap and the wall clock.
#[derive(Debug, Clone)]
pub struct ProbeContext {
    inner: Arc<ContextInner>,
}

impl ProbeContext {
    /// A context capping requests awaiting an answer at `max_in_flight` (none when `None`).
    pub fn new(max_in_flight: Option<usize>) -> ProbeContext {
        ProbeContext::with_clock(max_in_flight, Arc::new(SystemClock))
    }

    /// The same, with an injected wall clock for report times.
    pub fn with_clock(max_in_flight: Option<usize>, clock: Arc<dyn Clock>) -> ProbeContext {
        ProbeContext {
            inner: Arc::new(ContextInner {
                hubs: Mutex::default(),
                limiter: max_in_flight.map(|n| Arc::new(Semaphore::new(n.max(1)))),
                clock,
                next_id: AtomicU64::new(1),
            }),
        }
    }

    fn hub(&self, key: HubKey) -> std::io::Result<Arc<UdpHub>> {
        let mut hubs = self
            .inner
            .hubs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(hub) = hubs.get(&key) {
            return Ok(hub.clone());
        }
        let hub = Arc::new(UdpHub::bind(key)?);
        hubs.insert(key, hub.clone());
        Ok(hub)
    }

    /// The wall clock's now, for report times.
    pub(super) fn now(&self) -> std::time::SystemTime {
        self.inner.clock.now()
    }

    /// A slot of the in-flight cap (none when uncapped); held while a request awaits its answer.
    pub(super) async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        acquire(self.inner.limiter.clone()).await
    }

    /// UDP datagrams received that belonged to no round in progress, over all shared sockets.
    pub fn stray_datagrams(&self) -> u64 {
        let hubs = self
            .inner
            .hubs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        hubs.values().map(|h| h.stray()).sum()
    }

    /// UDP datagrams dropped because their round's queue was full, over all shared sockets.
    pub fn route_full_datagrams(&self) -> u64 {
        let hubs = self
            .inner
            .hubs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        hubs.values().map(|h| h.route_full()).sum()
    }
}

/// One configured target and everything about it that lasts between rounds.
pub struct TargetProbe {
    pub(super) cfg: SipProbeConfig,
    pub(super) uri: TargetUri,
    pub(super) ctx: ProbeContext,
    pub(super) id: u64,
    factory: RequestFactory,
    tls: Option<TlsTarget>,
    local_ip: Option<(SocketAddr, IpAddr)>,
    pub(super) stream: Option<StreamConn>,
    backoff: Backoff,
    jitter: RttJitter,
    pub(super) past: Vec<PastRequest>,
    /// REGISTER probes: Call-ID, CSeq, binding and credentials that outlive a round.
    pub(super) register: Option<RegisterState>,
    /// INVITE probes: credentials and the teardown a cut-short round left.
    pub(super) call: Option<crate::probe::call::CallState>,
}

impl std::fmt::Debug for TargetProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetProbe")
            .field("name", &self.cfg.name)
            .field("uri", &self.uri)
            .field("connected", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

/// Where a round sends and listens.
pub(super) enum Link {
    Udp {
        hub: Arc<UdpHub>,
        peer: SocketAddr,
        local: SocketAddr,
        rx: mpsc::Receiver<Inbound>,
        _guard: RouteGuard,
    },
    Stream,
}

enum Event {
    Inbound(Option<Box<Inbound>>),
    Permit(Option<OwnedSemaphorePermit>),
    Tick,
}

impl TargetProbe {
    /// Validates a target; nothing is opened until the first round.
    pub fn new(cfg: SipProbeConfig, ctx: ProbeContext) -> Result<TargetProbe, ProbeError> {
        let name = cfg.name.clone();
        let uri = TargetUri::parse(&cfg.target).map_err(|source| ProbeError::Uri {
            name: name.clone(),
            source,
        })?;
        let setting = |what: String| ProbeError::Setting {
            name: name.clone(),
            what,
        };
        if cfg.count == 0 {
            return Err(setting("count must be at least 1".into()));
        }
        if cfg.timeout.is_zero() {
            return Err(setting("timeout must be above 0".into()));
        }
        if let Some(dscp) = cfg.dscp.filter(|d| *d > 63) {
            return Err(setting(format!("dscp {dscp} is out of range 0..=63")));
        }
        let id = ctx.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let factory =
            RequestFactory::new(&uri, &cfg, id).map_err(|source| ProbeError::Message {
                name: name.clone(),
                source,
            })?;
        let register = match cfg.method {
            ProbeMethod::Options | ProbeMethod::Invite => None,
            ProbeMethod::Register => Some(register_state(&cfg, &uri, id).map_err(setting)?),
        };
        let call = match cfg.method {
            ProbeMethod::Invite => {
                if uri.transport != SipTransport::Udp {
                    return Err(setting(format!(
                        "an INVITE probe runs over udp only, not {}",
                        uri.transport.as_str()
                    )));
                }
                Some(crate::probe::call::call_state(&cfg).map_err(setting)?)
            }
            ProbeMethod::Options | ProbeMethod::Register => None,
        };
        let tls = match uri.transport {
            SipTransport::Tls => Some(
                tls_target(&cfg.tls, &uri.server_name())
                    .map_err(|source| ProbeError::Tls { name, source })?,
            ),
            SipTransport::Udp | SipTransport::Tcp => None,
        };
        Ok(TargetProbe {
            cfg,
            uri,
            ctx,
            id,
            factory,
            tls,
            local_ip: None,
            stream: None,
            backoff: Backoff::default(),
            jitter: RttJitter::new(),
            past: Vec::new(),
            register,
            call,
        })
    }

    /// The target's configuration.
    pub fn config(&self) -> &SipProbeConfig {
        &self.cfg
    }

    /// The parsed target.
    pub fn uri(&self) -> &TargetUri {
        &self.uri
    }

    /// Runs one round.
    pub async fn round(&mut self) -> ProbeReport {
        self.round_with(&mut |_, _| {}).await
    }

    /// Runs one round, telling `on_outcome` about each request as it completes (completion
    /// order: a timeout is known only at its deadline).
    pub async fn round_with<F>(&mut self, on_outcome: &mut F) -> ProbeReport
    where
        F: FnMut(usize, &RequestOutcome),
    {
        if self.register.is_some() {
            return self.register_round().await;
        }
        if self.call.is_some() {
            return self.call_round().await;
        }
        let count = self.cfg.count as usize;
        let mut outcomes: Vec<Option<RequestOutcome>> = vec![None; count];
        let mut permits: Vec<Option<OwnedSemaphorePermit>> = (0..count).map(|_| None).collect();
        let mut matcher = Matcher::new(std::mem::take(&mut self.past));
        let mut connect_duration = None;
        let mut tls_handshake_duration = None;

        let mut link = match self.open_link(count).await {
            Ok(link) => link,
            Err(e) => {
                let reason = e.to_string();
                for (i, slot) in outcomes.iter_mut().enumerate() {
                    let outcome = RequestOutcome::Error(reason.clone());
                    on_outcome(i, &outcome);
                    *slot = Some(outcome);
                }
                return self.report(outcomes, matcher.dropped(), None, None);
            }
        };

        let start = Instant::now();
        let mut next_send = 0usize;
        let mut rx_open = true;
        loop {
            // Everything already received first: arrival stamps, not processing time, decide.
            while let Some(inbound) = try_recv(&mut link, &mut self.stream) {
                on_inbound(
                    &mut matcher,
                    inbound,
                    &mut outcomes,
                    &mut permits,
                    on_outcome,
                );
            }
            let now = Instant::now();
            for index in matcher.expire(now) {
                finish(
                    index,
                    RequestOutcome::Timeout,
                    &mut outcomes,
                    &mut permits,
                    on_outcome,
                );
            }
            if next_send >= count && matcher.pending() == 0 {
                break;
            }
            let send_at = start + self.cfg.spacing.saturating_mul(next_send as u32);
            let send_due = next_send < count && now >= send_at;
            let mut wake = matcher.next_deadline();
            if next_send < count && !send_due {
                wake = Some(wake.map_or(send_at, |w| w.min(send_at)));
            }
            let wake = wake.unwrap_or(now + Duration::from_secs(3600));
            let limiter = self.ctx.inner.limiter.clone();
            let event = tokio::select! {
                biased;
                m = recv(&mut link, &mut self.stream), if rx_open => Event::Inbound(m.map(Box::new)),
                p = acquire(limiter), if send_due => Event::Permit(p),
                _ = tokio::time::sleep_until(wake) => Event::Tick,
            };
            match event {
                Event::Inbound(Some(inbound)) => {
                    let inbound = *inbound;
                    on_inbound(
                        &mut matcher,
                        inbound,
                        &mut outcomes,
                        &mut permits,
                        on_outcome,
                    );
                }
                Event::Inbound(None) => match &link {
                    // The peer closed the connection: pending requests will time out.
                    Link::Stream => self.stream = None,
                    Link::Udp { .. } => rx_open = false,
                },
                Event::Permit(permit) => {
                    let index = next_send;
                    next_send += 1;
                    match self
                        .send(
                            &mut link,
                            &mut connect_duration,
                            &mut tls_handshake_duration,
                        )
                        .await
                    {
                        Ok((key, peer, sent_at)) => {
                            matcher.sent(index, key, peer, sent_at, self.cfg.timeout);
                            permits[index] = permit;
                        }
                        Err(e) => finish(
                            index,
                            RequestOutcome::Error(e.to_string()),
                            &mut outcomes,
                            &mut permits,
                            on_outcome,
                        ),
                    }
                }
                Event::Tick => {}
            }
        }
        let dropped = matcher.dropped();
        self.past = matcher.into_past();
        self.report(outcomes, dropped, connect_duration, tls_handshake_duration)
    }

    pub(super) async fn open_link(&mut self, count: usize) -> Result<Link, TransportError> {
        if self.uri.transport != SipTransport::Udp {
            return Ok(Link::Stream);
        }
        let peer = self.resolve().await?;
        let key = HubKey {
            source: self.cfg.source,
            v6: peer.is_ipv6(),
            dscp: self.cfg.dscp,
        };
        let hub = self
            .ctx
            .hub(key)
            .map_err(|source| TransportError::Socket { peer, source })?;
        let ip = match self.local_ip {
            Some((p, ip)) if p == peer => ip,
            _ => {
                let ip = local_ip_towards(peer, self.cfg.source);
                self.local_ip = Some((peer, ip));
                ip
            }
        };
        let local = SocketAddr::new(ip, hub.local_addr().port());
        let (guard, rx) = hub.register(self.id, peer, count * 2 + 16);
        Ok(Link::Udp {
            hub,
            peer,
            local,
            rx,
            _guard: guard,
        })
    }

    pub(super) async fn resolve(&self) -> Result<SocketAddr, TransportError> {
        let host = self.uri.host.to_string();
        let addrs = crate::probe::uri::resolve(&self.uri)
            .await
            .map_err(|source| TransportError::Resolve {
                host: host.clone(),
                source,
            })?;
        // Prefer the family of a configured source address.
        let want_v6 = self.cfg.source.map(|s| s.is_ipv6());
        addrs
            .iter()
            .find(|a| want_v6.is_none_or(|v6| a.is_ipv6() == v6))
            .or(addrs.first())
            .copied()
            .ok_or_else(|| TransportError::Resolve {
                host,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
            })
    }

    /// Sends the next OPTIONS request; returns its key, destination and send time.
    async fn send(
        &mut self,
        link: &mut Link,
        connect_duration: &mut Option<Duration>,
        tls_handshake_duration: &mut Option<Duration>,
    ) -> Result<(crate::probe::message::RequestKey, SocketAddr, Instant), TransportError> {
        let local = self
            .prepare(link, connect_duration, tls_handshake_duration)
            .await?;
        let req = self.factory.build(local);
        let (peer, sent_at) = self.transmit(link, &req.bytes).await?;
        Ok((req.key, peer, sent_at))
    }

    /// Makes sure a request can go out on `link` (connecting a stream if needed, with backoff)
    /// and returns the local address the peer will see, for Via and Contact.
    pub(super) async fn prepare(
        &mut self,
        link: &mut Link,
        connect_duration: &mut Option<Duration>,
        tls_handshake_duration: &mut Option<Duration>,
    ) -> Result<SocketAddr, TransportError> {
        match link {
            Link::Udp { local, .. } => Ok(*local),
            Link::Stream => {
                if self.stream.as_ref().is_none_or(|c| c.is_closed()) {
                    self.stream = None;
                    self.backoff
                        .ready(Instant::now())
                        .map_err(TransportError::Backoff)?;
                    let connected = match self.connect().await {
                        Ok(c) => c,
                        Err(e) => {
                            self.backoff.failed(Instant::now());
                            return Err(e);
                        }
                    };
                    self.backoff.reset();
                    *connect_duration = Some(connected.connect);
                    *tls_handshake_duration = connected.tls_handshake;
                    self.stream = Some(connected.conn);
                }
                match self.stream.as_ref() {
                    Some(conn) => Ok(conn.local),
                    None => Err(TransportError::Backoff(Duration::ZERO)),
                }
            }
        }
    }

    /// Writes one prepared request; returns where it went and when.
    pub(super) async fn transmit(
        &mut self,
        link: &mut Link,
        bytes: &[u8],
    ) -> Result<(SocketAddr, Instant), TransportError> {
        match link {
            Link::Udp { hub, peer, .. } => {
                let sent_at = Instant::now();
                hub.send_to(bytes, *peer)
                    .await
                    .map_err(|source| TransportError::Send {
                        peer: *peer,
                        source,
                    })?;
                Ok((*peer, sent_at))
            }
            Link::Stream => {
                let Some(conn) = self.stream.as_mut() else {
                    return Err(TransportError::Backoff(Duration::ZERO));
                };
                let peer = conn.peer;
                let sent_at = Instant::now();
                if let Err(e) = conn.send(bytes, self.cfg.timeout).await {
                    self.stream = None;
                    return Err(e);
                }
                Ok((peer, sent_at))
            }
        }
    }

    async fn connect(&mut self) -> Result<crate::probe::transport::Connected, TransportError> {
        let peer = self.resolve().await?;
        connect_stream(
            peer,
            self.cfg.source,
            self.cfg.dscp,
            self.tls.as_ref(),
            self.cfg.timeout,
        )
        .await
    }

    fn report(
        &mut self,
        outcomes: Vec<Option<RequestOutcome>>,
        dropped: DroppedResponses,
        connect_duration: Option<Duration>,
        tls_handshake_duration: Option<Duration>,
    ) -> ProbeReport {
        let outcomes: Vec<RequestOutcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or(RequestOutcome::Timeout))
            .collect();
        let mut rtts = Vec::new();
        let mut up = false;
        for outcome in &outcomes {
            if let RequestOutcome::Answered { status, rtt } = outcome {
                self.jitter.update(*rtt);
                rtts.push(*rtt);
                up |= self.cfg.up_codes.contains(status);
            }
        }
        let sent = outcomes.len().max(1) as f64;
        let loss_ratio = (outcomes.len() - rtts.len()) as f64 / sent;
        ProbeReport {
            target: self.cfg.name.clone(),
            transport: self.uri.transport,
            at: self.ctx.inner.clock.now(),
            outcomes,
            loss_ratio,
            jitter: self.jitter.value(),
            rtt_median: median(&mut rtts),
            up,
            connect_duration,
            tls_handshake_duration,
            dropped,
            register: None,
            call: None,
        }
    }
}

fn on_inbound<F: FnMut(usize, &RequestOutcome)>(
    matcher: &mut Matcher,
    inbound: Inbound,
    outcomes: &mut [Option<RequestOutcome>],
    permits: &mut [Option<OwnedSemaphorePermit>],
    on_outcome: &mut F,
) {
    let verdict = matcher.on_message(inbound.parsed.as_ref(), inbound.from, inbound.at);
    if let Verdict::Answered { index, status, rtt } = verdict {
        finish(
            index,
            RequestOutcome::Answered { status, rtt },
            outcomes,
            permits,
            on_outcome,
        );
    }
}

fn finish<F: FnMut(usize, &RequestOutcome)>(
    index: usize,
    outcome: RequestOutcome,
    outcomes: &mut [Option<RequestOutcome>],
    permits: &mut [Option<OwnedSemaphorePermit>],
    on_outcome: &mut F,
) {
    if let Some(slot) = outcomes.get_mut(index)
        && slot.is_none()
    {
        on_outcome(index, &outcome);
        *slot = Some(outcome);
        if let Some(permit) = permits.get_mut(index) {
            *permit = None;
        }
    }
}

/// Median of answered RTTs (mean of the middle two for an even count).
pub fn median(values: &mut [Duration]) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2
    })
}

async fn acquire(limiter: Option<Arc<Semaphore>>) -> Option<OwnedSemaphorePermit> {
    match limiter {
        Some(sem) => sem.acquire_owned().await.ok(),
        None => None,
    }
}

pub(super) async fn recv(link: &mut Link, stream: &mut Option<StreamConn>) -> Option<Inbound> {
    match link {
        Link::Udp { rx, .. } => rx.recv().await,
        Link::Stream => match stream {
            Some(conn) => conn.rx.recv().await,
            None => std::future::pending().await,
        },
    }
}

pub(super) fn try_recv(link: &mut Link, stream: &mut Option<StreamConn>) -> Option<Inbound> {
    match link {
        Link::Udp { rx, .. } => rx.try_recv().ok(),
        Link::Stream => stream.as_mut().and_then(|c| c.rx.try_recv().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        let ms = Duration::from_millis;
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [ms(5), ms(1), ms(3)]), Some(ms(3)));
        assert_eq!(
            median(&mut [ms(4), ms(1), ms(3), ms(2)]),
            Some(Duration::from_micros(2500))
        );
    }

    #[tokio::test]
    async fn bad_settings_are_refused_up_front() {
        let ctx = ProbeContext::new(None);
        let mut cfg = SipProbeConfig::new("t", "sip:127.0.0.1:9");
        cfg.count = 0;
        assert!(matches!(
            TargetProbe::new(cfg.clone(), ctx.clone()),
            Err(ProbeError::Setting { .. })
        ));
        cfg.count = 1;
        cfg.dscp = Some(64);
        assert!(TargetProbe::new(cfg.clone(), ctx.clone()).is_err());
        cfg.dscp = None;
        cfg.target = "sip:[::1".into();
        let err = TargetProbe::new(cfg, ctx).unwrap_err().to_string();
        assert!(err.contains("\"t\"") && err.contains("[::1"), "{err}");
    }
}

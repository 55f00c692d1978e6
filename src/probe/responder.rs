//! A small SIP OPTIONS responder with configurable misbehaviour (drop every Nth request, random
//! loss, delay, compact headers, noise: garbage, foreign and spoofed answers, duplicates), on UDP
//! and TCP on one port, or on TLS; optionally also a digest-challenging registrar
//! ([`Registrar`]: MD5/SHA-256 challenges, 401 or 407, a `stale=true` round, 423 Min-Expires).
//! It exists for the tests, the benchmark and the demo; the prober never uses it and never
//! answers inbound SIP itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ezk_sip_types::Name;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::probe::framing::StreamFramer;
use crate::probe::parse::{Message, StartLine, parse_message};
use crate::sip::digest::{self, Algorithm};

/// How the responder behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponderBehaviour {
    /// Final status to answer with (default 200).
    pub status: u16,
    /// Use compact header names (`v:`, `f:`, `t:`, `i:`, `l:`).
    pub compact: bool,
    /// Leave every Nth request unanswered (counted over all transports, 1-based).
    pub drop_every: Option<u32>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Probability of leaving a request unanswered (0..1), e.g. the demo's injected loss.
    pub loss: f64,
    /// Send a `100 Trying` before the final answer.
    pub provisional: bool,
    /// With each answer also send noise: on UDP a garbage datagram, an answer with a foreign
    /// branch and the answer from another port (spoofed); on every transport the answer twice.
    pub noise: bool,
    /// Also answer REGISTER as a digest-authenticating registrar (otherwise REGISTER is ignored).
    pub registrar: Option<Registrar>,
    /// Also answer INVITE (UDP only) and echo RTP (otherwise INVITE is ignored).
    pub uas: Option<crate::probe::uas::CallUas>,
}

/// How the test registrar authenticates and binds.
#[derive(Debug, Clone, PartialEq)]
pub struct Registrar {
    /// The one user it knows.
    pub username: String,
    /// Its password (a test peer: plain text).
    pub password: String,
    /// Realm of the challenges.
    pub realm: String,
    /// One challenge per algorithm, in this order (RFC 8760: preferred first).
    pub algorithms: Vec<Algorithm>,
    /// Challenge with 407 Proxy-Authenticate instead of 401 WWW-Authenticate.
    pub proxy: bool,
    /// Answer the first correct response with 401 `stale=true` and a fresh nonce.
    pub stale_once: bool,
    /// Refuse an Expires below this with 423 and `Min-Expires`.
    pub min_expires: Option<u32>,
}

impl Registrar {
    /// A registrar for `username`/`password` in realm `callpulse.test`, challenging with MD5.
    pub fn new(username: &str, password: &str) -> Registrar {
        Registrar {
            username: username.into(),
            password: password.into(),
            realm: "callpulse.test".into(),
            algorithms: vec![Algorithm::Md5],
            proxy: false,
            stale_once: false,
            min_expires: None,
        }
    }
}

impl Default for ResponderBehaviour {
    fn default() -> Self {
        ResponderBehaviour {
            status: 200,
            compact: false,
            drop_every: None,
            delay: Duration::ZERO,
            loss: 0.0,
            provisional: false,
            noise: false,
            registrar: None,
            uas: None,
        }
    }
}

/// What the responder saw, for tests.
#[derive(Debug, Default)]
pub struct ResponderStats {
    /// OPTIONS requests received.
    pub received: AtomicU64,
    /// Final answers sent.
    pub answered: AtomicU64,
    /// Requests left unanswered on purpose.
    pub dropped: AtomicU64,
    /// Requests received and not answered yet.
    pub in_progress: AtomicU64,
    /// The most requests ever in progress at once.
    pub max_in_progress: AtomicU64,
    /// Connections accepted (TCP/TLS).
    pub connections: AtomicU64,
    /// REGISTERs received.
    pub registers: AtomicU64,
    /// REGISTERs that carried a wrong digest answer.
    pub auth_failures: AtomicU64,
    /// Current bindings: (AoR, contact URI, expires) in order of registration.
    pub bindings: std::sync::Mutex<Vec<(String, String, u32)>>,
    /// Bindings removed by an `Expires: 0` REGISTER.
    pub unregistered: AtomicU64,
    /// `algorithm` of every correct digest answer, in order.
    pub answered_with: std::sync::Mutex<Vec<String>>,
    /// The INVITE side's counters (all 0 without `uas`).
    pub uas: Arc<crate::probe::uas::UasStats>,
}

impl ResponderStats {
    fn begin(&self) {
        let now = self.in_progress.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_progress.fetch_max(now, Ordering::SeqCst);
    }

    fn end(&self) {
        self.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a responder on UDP and TCP at `bind` (port 0: one free port for both); returns the
/// address. It stops when `shutdown` fires.
pub async fn spawn_responder(
    bind: SocketAddr,
    behaviour: ResponderBehaviour,
    shutdown: CancellationToken,
) -> io::Result<SocketAddr> {
    spawn_responder_with_stats(bind, behaviour, shutdown)
        .await
        .map(|(addr, _)| addr)
}

/// [`spawn_responder`], also returning its counters.
pub async fn spawn_responder_with_stats(
    bind: SocketAddr,
    behaviour: ResponderBehaviour,
    shutdown: CancellationToken,
) -> io::Result<(SocketAddr, Arc<ResponderStats>)> {
    let (udp, tcp) = bind_pair(bind).await?;
    let addr = udp.local_addr()?;
    let spoof = if behaviour.noise {
        Some(UdpSocket::bind(SocketAddr::new(addr.ip(), 0)).await?)
    } else {
        None
    };
    let uas_cfg = behaviour.uas.clone();
    let shared = Arc::new(Shared::new(behaviour));
    let stats = shared.stats.clone();
    let uas = match uas_cfg {
        Some(cfg) => Some(Arc::new(
            crate::probe::uas::Uas::start(cfg, addr, stats.uas.clone(), shutdown.clone()).await?,
        )),
        None => None,
    };
    tokio::spawn(udp_loop(
        Arc::new(udp),
        spoof.map(Arc::new),
        uas,
        shared.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(accept_loop(tcp, None, shared, shutdown));
    Ok((addr, stats))
}

/// A TLS responder at `bind` using `tls` (certificate and key); returns its address and counters.
pub async fn spawn_tls_responder(
    bind: SocketAddr,
    behaviour: ResponderBehaviour,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> io::Result<(SocketAddr, Arc<ResponderStats>)> {
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(behaviour));
    let stats = shared.stats.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(accept_loop(listener, Some(acceptor), shared, shutdown));
    Ok((addr, stats))
}

async fn bind_pair(bind: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(bind).await?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if bind.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port for udp and tcp")))
}

#[derive(Debug)]
struct Shared {
    behaviour: ResponderBehaviour,
    stats: Arc<ResponderStats>,
    /// Registrar: nonces handed out, and whether the stale round was played.
    nonces: std::sync::Mutex<Vec<String>>,
    stale_done: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn new(behaviour: ResponderBehaviour) -> Shared {
        Shared {
            behaviour,
            stats: Arc::default(),
            nonces: std::sync::Mutex::default(),
            stale_done: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// What to send for one request.
struct Answer {
    provisional: Option<Vec<u8>>,
    answer: Vec<u8>,
    foreign: Vec<u8>,
}

impl Shared {
    /// Decides about one message: `None` to stay silent.
    fn plan(&self, bytes: &[u8], from: SocketAddr, transport: &str) -> Option<Answer> {
        let msg = parse_message(bytes).ok()?;
        let StartLine::Request { method, .. } = &msg.start else {
            return None; // responses and junk are ignored
        };
        if method == "REGISTER"
            && let Some(registrar) = &self.behaviour.registrar
        {
            return self.register(&msg, from, transport, registrar);
        }
        if method != "OPTIONS" {
            return None;
        }
        let n = self.stats.received.fetch_add(1, Ordering::SeqCst) + 1;
        let b = &self.behaviour;
        if b.drop_every
            .is_some_and(|k| k > 0 && n.is_multiple_of(u64::from(k)))
            || (b.loss > 0.0 && fastrand::f64() < b.loss)
        {
            self.stats.dropped.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        let answer = build_response(&msg, from, b.status, b.compact, transport, None)?;
        let foreign = build_response(
            &msg,
            from,
            b.status,
            b.compact,
            transport,
            Some("z9hG4bK-foreign"),
        )?;
        let provisional = if b.provisional {
            build_response(&msg, from, 100, b.compact, transport, None)
        } else {
            None
        };
        Some(Answer {
            provisional,
            answer,
            foreign,
        })
    }
}

impl Shared {
    /// The registrar: challenge, check the answer, play stale/423, keep the bindings.
    fn register(
        &self,
        msg: &Message,
        from: SocketAddr,
        transport: &str,
        r: &Registrar,
    ) -> Option<Answer> {
        self.stats.registers.fetch_add(1, Ordering::SeqCst);
        let compact = self.behaviour.compact;
        let reply = |status: u16, extra: Vec<String>| {
            build_response_with(msg, from, status, compact, transport, None, &extra).map(|answer| {
                Answer {
                    provisional: None,
                    foreign: answer.clone(),
                    answer,
                }
            })
        };
        let (auth_name, challenge_name, challenge_status) = if r.proxy {
            (Name::PROXY_AUTHORIZATION, "Proxy-Authenticate", 407)
        } else {
            (Name::AUTHORIZATION, "WWW-Authenticate", 401)
        };
        let challenges = |stale: bool| -> Vec<String> {
            r.algorithms
                .iter()
                .map(|alg| {
                    let nonce = crate::probe::message::random_hex(12);
                    lock_std(&self.nonces).push(nonce.clone());
                    format!(
                        "{challenge_name}: Digest realm=\"{}\", nonce=\"{nonce}\", qop=\"auth\", algorithm={}{}",
                        r.realm,
                        alg.as_str(),
                        if stale { ", stale=true" } else { "" }
                    )
                })
                .collect()
        };
        let Some(credentials) = msg.values(&auth_name).into_iter().next() else {
            return reply(challenge_status, challenges(false));
        };
        let answer = digest::Credentials::parse(&credentials);
        let get = |n: &str| answer.get(n);
        let nonce = get("nonce");
        if !lock_std(&self.nonces).contains(&nonce) {
            // Not a nonce of ours (or forgotten): the answer may be right, the nonce is not.
            return reply(challenge_status, challenges(true));
        }
        let challenge = digest::Challenge {
            realm: r.realm.clone(),
            nonce,
            opaque: None,
            algorithm: digest::algorithm(&get("algorithm")).unwrap_or(Algorithm::Md5),
            qop: if get("qop").is_empty() {
                digest::Qop::None
            } else {
                digest::Qop::Auth
            },
            stale: false,
        };
        let password = digest::Secret::new(r.password.clone());
        let expected = answer.expected(&challenge, &r.username, &password, "REGISTER");
        if get("username") != r.username || get("realm") != r.realm || get("response") != expected {
            self.stats.auth_failures.fetch_add(1, Ordering::SeqCst);
            return reply(challenge_status, challenges(false));
        }
        lock_std(&self.stats.answered_with).push(get("algorithm"));
        if r.stale_once && !self.stale_done.swap(true, Ordering::SeqCst) {
            return reply(challenge_status, challenges(true));
        }
        let expires: u32 = msg
            .values(&Name::EXPIRES)
            .first()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(3600);
        if let Some(min) = r.min_expires
            && expires > 0
            && expires < min
        {
            return reply(423, vec![format!("Min-Expires: {min}")]);
        }
        let aor = uri_of(&msg.values(&Name::TO).into_iter().next().unwrap_or_default());
        let contact = uri_of(
            &msg.values(&Name::CONTACT)
                .into_iter()
                .next()
                .unwrap_or_default(),
        );
        let mut bindings = lock_std(&self.stats.bindings);
        bindings.retain(|(a, c, _)| !(a == &aor && c == &contact));
        if expires == 0 {
            self.stats.unregistered.fetch_add(1, Ordering::SeqCst);
        } else {
            bindings.push((aor.clone(), contact, expires));
        }
        let listed: Vec<String> = bindings
            .iter()
            .filter(|(a, _, _)| a == &aor)
            .map(|(_, c, e)| format!("Contact: <{c}>;expires={e}"))
            .collect();
        drop(bindings);
        reply(200, listed)
    }
}

/// The URI inside `<…>` of a name-addr, else the value up to its first `;`.
fn uri_of(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].to_string(),
        _ => value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn lock_std<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn udp_loop(
    socket: Arc<UdpSocket>,
    spoof: Option<Arc<UdpSocket>>,
    uas: Option<Arc<crate::probe::uas::Uas>>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = socket.recv_from(&mut buf) => match got {
                Ok(got) => got,
                Err(error) => {
                    debug!(%error, "responder udp receive failed");
                    continue;
                }
            },
        };
        if let Some(uas) = &uas
            && uas.on_datagram(&socket, &buf[..n], from)
        {
            continue;
        }
        let Some(answer) = shared.plan(&buf[..n], from, "UDP") else {
            continue;
        };
        shared.stats.begin();
        let (socket, spoof, shared) = (socket.clone(), spoof.clone(), shared.clone());
        let send = async move {
            if let Some(p) = &answer.provisional {
                let _ = socket.send_to(p, from).await;
            }
            if !shared.behaviour.delay.is_zero() {
                tokio::time::sleep(shared.behaviour.delay).await;
            }
            if shared.behaviour.noise {
                let _ = socket
                    .send_to(b"\x00\x01 garbage \xff\xfe not sip", from)
                    .await;
                let _ = socket.send_to(&answer.foreign, from).await;
                if let Some(spoof) = &spoof {
                    let _ = spoof.send_to(&answer.answer, from).await;
                }
            }
            let _ = socket.send_to(&answer.answer, from).await;
            if shared.behaviour.noise {
                let _ = socket.send_to(&answer.answer, from).await;
            }
            shared.stats.answered.fetch_add(1, Ordering::SeqCst);
            shared.stats.end();
        };
        tokio::spawn(send);
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = listener.accept() => match got {
                Ok(got) => got,
                Err(error) => {
                    debug!(%error, "responder accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        shared.stats.connections.fetch_add(1, Ordering::SeqCst);
        let (shared, shutdown, tls) = (shared.clone(), shutdown.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => {
                    let (r, w) = stream.into_split();
                    serve_stream(r, w, from, "TCP", shared, shutdown).await;
                }
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        let (r, w) = tokio::io::split(tls);
                        serve_stream(r, w, from, "TLS", shared, shutdown).await;
                    }
                    Err(error) => debug!(%error, "responder tls handshake failed"),
                },
            }
        });
    }
}

async fn serve_stream<R, W>(
    mut reader: R,
    writer: W,
    from: SocketAddr,
    transport: &'static str,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer = Arc::new(Mutex::new(writer));
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            _ = shutdown.cancelled() => return,
            got = reader.read(&mut buf) => match got {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
        };
        framer.push(&buf[..n]);
        while let Some(frame) = framer.next_frame() {
            let Ok(frame) = frame else { return };
            let Some(answer) = shared.plan(&frame.bytes, from, transport) else {
                continue;
            };
            shared.stats.begin();
            let (writer, shared) = (writer.clone(), shared.clone());
            tokio::spawn(async move {
                if let Some(p) = &answer.provisional {
                    let _ = writer.lock().await.write_all(p).await;
                }
                if !shared.behaviour.delay.is_zero() {
                    tokio::time::sleep(shared.behaviour.delay).await;
                }
                let mut w = writer.lock().await;
                if shared.behaviour.noise {
                    let _ = w.write_all(&answer.foreign).await;
                }
                let _ = w.write_all(&answer.answer).await;
                if shared.behaviour.noise {
                    let _ = w.write_all(&answer.answer).await;
                }
                let _ = w.flush().await;
                shared.stats.answered.fetch_add(1, Ordering::SeqCst);
                shared.stats.end();
            });
        }
    }
}

/// Builds the response to `req` per RFC 3261 §8.2.6: Vias (the top one with `received` and,
/// when asked for, `rport` filled in, RFC 3581), From, To with a tag, Call-ID and CSeq copied.
/// `branch` replaces the top branch (to make a foreign answer).
fn build_response(
    req: &Message,
    from: SocketAddr,
    status: u16,
    compact: bool,
    transport: &str,
    branch: Option<&str>,
) -> Option<Vec<u8>> {
    build_response_with(req, from, status, compact, transport, branch, &[])
}

/// [`build_response`] with extra header lines (challenges, Min-Expires, Contact).
fn build_response_with(
    req: &Message,
    from: SocketAddr,
    status: u16,
    compact: bool,
    transport: &str,
    branch: Option<&str>,
    extra: &[String],
) -> Option<Vec<u8>> {
    let vias = req.values(&Name::VIA);
    let (top, rest) = vias.split_first()?;
    let top = fill_top_via(top, from, branch);
    let from_hdr = req.values(&Name::FROM).into_iter().next()?;
    let mut to = req.values(&Name::TO).into_iter().next()?;
    let call_id = req.values(&Name::CALL_ID).into_iter().next()?;
    let cseq = req.values(&Name::CSEQ).into_iter().next()?;
    if status >= 200 && !to.to_ascii_lowercase().contains(";tag=") {
        to.push_str(";tag=cpr");
    }
    let reason = match status {
        100 => "Trying",
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        407 => "Proxy Authentication Required",
        423 => "Interval Too Brief",
        404 => "Not Found",
        486 => "Busy Here",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let (v, f, t, i, l) = if compact {
        ("v", "f", "t", "i", "l")
    } else {
        ("Via", "From", "To", "Call-ID", "Content-Length")
    };
    let mut out = format!("SIP/2.0 {status} {reason}\r\n{v}: {top}\r\n");
    for via in rest {
        out.push_str(&format!("{v}: {via}\r\n"));
    }
    out.push_str(&format!(
        "{f}: {from_hdr}\r\n{t}: {to}\r\n{i}: {call_id}\r\nCSeq: {cseq}\r\n\
         Server: callpulse-responder ({transport})\r\nAllow: OPTIONS\r\n"
    ));
    for line in extra {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str(&format!("{l}: 0\r\n\r\n"));
    Some(out.into_bytes())
}

fn fill_top_via(value: &str, from: SocketAddr, branch: Option<&str>) -> String {
    // Only the first of comma-joined values is ours to touch.
    let (first, tail) = match value.find(',') {
        Some(at) => (&value[..at], Some(&value[at..])),
        None => (value, None),
    };
    let mut parts: Vec<String> = first.split(';').map(|p| p.trim().to_string()).collect();
    for part in parts.iter_mut().skip(1) {
        if part.eq_ignore_ascii_case("rport") {
            *part = format!("rport={}", from.port());
        } else if let Some(b) = branch
            && part.to_ascii_lowercase().starts_with("branch=")
        {
            *part = format!("branch={b}");
        }
    }
    parts.push(format!("received={}", from.ip()));
    let mut out = parts.join(";");
    if let Some(tail) = tail {
        out.push_str(tail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::parse::parse_response;

    const REQ: &str = "OPTIONS sip:127.0.0.1 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:5000;branch=z9hG4bK-cp-1-aa;rport\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:callpulse@127.0.0.1>;tag=f1\r\n\
        To: <sip:127.0.0.1>\r\n\
        Call-ID: c1\r\n\
        CSeq: 4 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn answers_with_copied_ids_and_filled_rport() {
        let msg = parse_message(REQ.as_bytes()).unwrap();
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        for compact in [false, true] {
            let bytes = build_response(&msg, from, 200, compact, "UDP", None).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert_eq!(text.contains("\r\nv: "), compact, "{text}");
            let r = parse_response(&bytes).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.top_via.branch.as_deref(), Some("z9hG4bK-cp-1-aa"));
            assert_eq!(r.top_via.rport, Some(40000));
            assert_eq!(r.top_via.received.as_deref(), Some("127.0.0.1"));
            assert_eq!((r.call_id.as_str(), r.cseq), ("c1", 4));
        }
        let foreign = build_response(&msg, from, 200, true, "UDP", Some("z9hG4bK-x")).unwrap();
        assert_eq!(
            parse_response(&foreign).unwrap().top_via.branch.as_deref(),
            Some("z9hG4bK-x")
        );
    }

    #[test]
    fn plan_drops_every_nth_and_ignores_non_options() {
        let shared = Shared::new(ResponderBehaviour {
            drop_every: Some(4),
            ..ResponderBehaviour::default()
        });
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let answered: Vec<bool> = (0..8)
            .map(|_| shared.plan(REQ.as_bytes(), from, "UDP").is_some())
            .collect();
        assert_eq!(answered, [true, true, true, false, true, true, true, false]);
        assert!(shared.plan(b"garbage", from, "UDP").is_none());
        assert!(
            shared
                .plan(
                    REQ.replace("OPTIONS sip", "INVITE sip").as_bytes(),
                    from,
                    "UDP"
                )
                .is_none()
        );
        assert_eq!(shared.stats.received.load(Ordering::SeqCst), 8);
    }
}

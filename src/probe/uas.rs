//! The test responder's INVITE side ([`CallUas`]): answers INVITE over UDP (100, 180, then 200
//! with SDP after `ring`, or another final status, or never), challenges once when asked,
//! answers CANCEL with 200 + 487 and BYE with 200, can send a re-INVITE or a BYE of its own
//! during the call, and echoes RTP on a socket of its own (dropping every Nth packet when asked).
//! A test and demo peer like the rest of [`crate::probe::responder`]; the prober never uses it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::probe::message::random_hex;
use crate::sip::SipTransport;
use crate::sip::dialog::{self, DialogMessage, DialogRequest, StartLine, uri_of};
use crate::sip::digest;
use crate::sip::sdp::{self, CallCodec};

/// How the test UAS treats INVITEs.
#[derive(Debug, Clone, PartialEq)]
pub struct CallUas {
    /// Time between the 180 and the final answer.
    pub ring: Duration,
    /// Final status (200 answers with SDP); `None` rings until CANCELled.
    pub status: Option<u16>,
    /// Challenge the first INVITE with 401 (407 with `proxy`) and check the answer: (username,
    /// password, proxy).
    pub challenge: Option<(String, String, bool)>,
    /// Send a re-INVITE (same SDP) this long after the ACK.
    pub reinvite_after: Option<Duration>,
    /// Hang up (send BYE) this long after the ACK.
    pub hangup_after: Option<Duration>,
    /// Echo RTP, leaving every Nth packet unechoed.
    pub echo_drop_every: Option<u64>,
}

impl Default for CallUas {
    fn default() -> Self {
        CallUas {
            ring: Duration::from_millis(50),
            status: Some(200),
            challenge: None,
            reinvite_after: None,
            hangup_after: None,
            echo_drop_every: None,
        }
    }
}

/// What the UAS saw.
#[derive(Debug, Default)]
pub struct UasStats {
    /// INVITEs received (retransmissions and the challenged one included).
    pub invites: AtomicU64,
    /// ACKs received.
    pub acks: AtomicU64,
    /// BYEs received (and answered).
    pub byes: AtomicU64,
    /// CANCELs received (and answered).
    pub cancels: AtomicU64,
    /// 200s the probe gave to our re-INVITE.
    pub reinvites_answered: AtomicU64,
    /// 200s the probe gave to our BYE.
    pub byes_answered: AtomicU64,
    /// RTP packets received.
    pub rtp_received: AtomicU64,
    /// RTP packets echoed.
    pub rtp_echoed: AtomicU64,
    /// The last INVITE's SDP offer, as received.
    pub offer: std::sync::Mutex<Option<String>>,
}

/// The UAS state the responder's UDP loop holds.
#[derive(Debug)]
pub(crate) struct Uas {
    cfg: CallUas,
    pub(crate) stats: Arc<UasStats>,
    rtp: SocketAddr,
    /// INVITEs waiting for their final answer, by Call-ID (for CANCEL → 487).
    pending: std::sync::Mutex<HashMap<String, DialogMessage>>,
    nonce: String,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Uas {
    /// Binds the echo socket next to `sip` and starts echoing.
    pub(crate) async fn start(
        cfg: CallUas,
        sip: SocketAddr,
        stats: Arc<UasStats>,
        shutdown: CancellationToken,
    ) -> std::io::Result<Uas> {
        let rtp = UdpSocket::bind(SocketAddr::new(sip.ip(), 0)).await?;
        let rtp_addr = rtp.local_addr()?;
        let (st, drop_every) = (stats.clone(), cfg.echo_drop_every);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let (n, from) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    got = rtp.recv_from(&mut buf) => match got {
                        Ok(got) => got,
                        Err(_) => continue,
                    },
                };
                let k = st.rtp_received.fetch_add(1, Ordering::SeqCst) + 1;
                if drop_every.is_some_and(|d| d > 0 && k.is_multiple_of(d)) {
                    continue;
                }
                if rtp.send_to(&buf[..n], from).await.is_ok() {
                    st.rtp_echoed.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Ok(Uas {
            cfg,
            stats,
            rtp: rtp_addr,
            pending: std::sync::Mutex::default(),
            nonce: random_hex(12),
        })
    }

    /// Handles one datagram if it is the UAS's business (INVITE, ACK, BYE, CANCEL, or a response
    /// to its own requests); returns false otherwise.
    pub(crate) fn on_datagram(
        self: &Arc<Self>,
        socket: &Arc<UdpSocket>,
        bytes: &[u8],
        from: SocketAddr,
    ) -> bool {
        let Ok(msg) = dialog::parse(bytes) else {
            return false;
        };
        let method = match &msg.start {
            StartLine::Response { status, .. } => {
                match msg.cseq() {
                    Some((_, "INVITE")) if (200..300).contains(status) => {
                        self.stats.reinvites_answered.fetch_add(1, Ordering::SeqCst);
                        // ACK our re-INVITE's 200.
                        let ack = ack_of(&msg, socket);
                        let socket = socket.clone();
                        tokio::spawn(async move {
                            let _ = socket.send_to(&ack, from).await;
                        });
                    }
                    Some((_, "BYE")) if (200..300).contains(status) => {
                        self.stats.byes_answered.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                return true;
            }
            StartLine::Request { method, .. } => method.clone(),
        };
        let uas = self.clone();
        let socket = socket.clone();
        match method.as_str() {
            "INVITE" => {
                self.stats.invites.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move { uas.invite(msg, &socket, from).await });
            }
            "ACK" => {
                self.stats.acks.fetch_add(1, Ordering::SeqCst);
                if msg.to_tag().is_some_and(|t| t.starts_with("uas")) {
                    tokio::spawn(async move { uas.after_ack(msg, &socket, from).await });
                }
            }
            "BYE" => {
                self.stats.byes.fetch_add(1, Ordering::SeqCst);
                let ok = dialog::format_response(&msg, 200, "OK", "uas", None, None);
                tokio::spawn(async move {
                    let _ = socket.send_to(&ok, from).await;
                });
            }
            "CANCEL" => {
                self.stats.cancels.fetch_add(1, Ordering::SeqCst);
                let ok = dialog::format_response(&msg, 200, "OK", "uas", None, None);
                let call_id = msg.header("call-id").unwrap_or_default().to_string();
                let invite = lock(&self.pending).remove(&call_id);
                tokio::spawn(async move {
                    let _ = socket.send_to(&ok, from).await;
                    if let Some(invite) = invite {
                        let t = dialog::format_response(
                            &invite,
                            487,
                            "Request Terminated",
                            "uas-1",
                            None,
                            None,
                        );
                        let _ = socket.send_to(&t, from).await;
                    }
                });
            }
            _ => return false,
        }
        true
    }

    async fn invite(&self, msg: DialogMessage, socket: &UdpSocket, from: SocketAddr) {
        let send = |bytes: Vec<u8>| async move {
            let _ = socket.send_to(&bytes, from).await;
        };
        *lock(&self.stats.offer) = Some(String::from_utf8_lossy(&msg.body).into_owned());
        if let Some((user, password, proxy)) = &self.cfg.challenge {
            let (auth, challenge_header, status) = if *proxy {
                ("proxy-authorization", "Proxy-Authenticate", 407)
            } else {
                ("authorization", "WWW-Authenticate", 401)
            };
            let ok = msg
                .header(auth)
                .is_some_and(|value| self.check(value, user, password));
            if !ok {
                let mut reply =
                    dialog::format_response(&msg, status, "Unauthorized", "uas-c", None, None);
                let header = format!(
                    "{challenge_header}: Digest realm=\"callpulse.test\", nonce=\"{}\", qop=\"auth\", algorithm=MD5\r\n",
                    self.nonce
                );
                // Insert the challenge before Content-Length (the last header).
                if let Some(at) = find(&reply, b"Content-Length:") {
                    reply.splice(at..at, header.into_bytes());
                }
                send(reply).await;
                return;
            }
        }
        send(dialog::format_response(&msg, 100, "Trying", "", None, None)).await;
        let tag = format!("uas-{}", random_hex(4));
        let contact = format!("sip:uas@{}", socket_addr_text(socket));
        send(dialog::format_response(
            &msg,
            180,
            "Ringing",
            &tag,
            Some(&contact),
            None,
        ))
        .await;
        let call_id = msg.header("call-id").unwrap_or_default().to_string();
        lock(&self.pending).insert(call_id.clone(), msg.clone());
        tokio::time::sleep(self.cfg.ring).await;
        let Some(status) = self.cfg.status else {
            return; // ring until CANCELled
        };
        if lock(&self.pending).remove(&call_id).is_none() {
            return; // CANCELled meanwhile
        }
        let answer = sdp::offer(7, self.rtp, CallCodec::Pcmu, Duration::from_millis(20));
        let reply = if status == 200 {
            dialog::format_response(&msg, 200, "OK", &tag, Some(&contact), Some(&answer))
        } else {
            dialog::format_response(&msg, status, "Busy Here", &tag, None, None)
        };
        send(reply).await;
    }

    fn check(&self, value: &str, user: &str, password: &str) -> bool {
        let answer = digest::Credentials::parse(value);
        let get = |n: &str| answer.get(n);
        let challenge = digest::Challenge {
            realm: "callpulse.test".into(),
            nonce: self.nonce.clone(),
            opaque: None,
            algorithm: digest::Algorithm::Md5,
            qop: digest::Qop::Auth,
            stale: false,
        };
        let expected = answer.expected(&challenge, user, &digest::Secret::new(password), "INVITE");
        get("username") == user && get("nonce") == self.nonce && get("response") == expected
    }

    /// After the ACK of our 200: the re-INVITE and the BYE, when configured.
    async fn after_ack(&self, ack: DialogMessage, socket: &UdpSocket, from: SocketAddr) {
        let mut waited = Duration::ZERO;
        let mut plan: Vec<(Duration, &str)> = Vec::new();
        if let Some(d) = self.cfg.reinvite_after {
            plan.push((d, "INVITE"));
        }
        if let Some(d) = self.cfg.hangup_after {
            plan.push((d, "BYE"));
        }
        plan.sort_by_key(|(d, _)| *d);
        for (at, method) in plan {
            tokio::time::sleep(at.saturating_sub(waited)).await;
            waited = at;
            let bytes = self.request_from(&ack, method, socket);
            let _ = socket.send_to(&bytes, from).await;
        }
    }

    /// A request of ours in the dialog the probe's `ack` belongs to.
    fn request_from(&self, ack: &DialogMessage, method: &str, socket: &UdpSocket) -> Vec<u8> {
        let local = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let to = ack.header("to").unwrap_or_default();
        let from = ack.header("from").unwrap_or_default();
        let our_tag = ack.to_tag().unwrap_or_default();
        let their_tag = ack.from_tag();
        let cseq = if method == "INVITE" { 1 } else { 2 };
        let sdp_body = sdp::offer(7, self.rtp, CallCodec::Pcmu, Duration::from_millis(20));
        // The probe's Contact is not in the ACK; its From URI's host is ours to guess, so send
        // to the address it came from with its From URI as Request-URI.
        dialog::format_request(&DialogRequest {
            method,
            request_uri: uri_of(from),
            transport: SipTransport::Udp,
            sent_by: local,
            branch: &format!("z9hG4bK-uas-{}", random_hex(6)),
            from: (uri_of(to), &our_tag),
            to: (uri_of(from), their_tag.as_deref()),
            call_id: ack.header("call-id").unwrap_or_default(),
            cseq,
            contact: Some(&format!("sip:uas@{}", socket_addr_text(socket))),
            route: &[],
            authorization: None,
            user_agent: None,
            extra: &[],
            sdp: (method == "INVITE").then_some(sdp_body.as_str()),
        })
    }
}

fn socket_addr_text(socket: &UdpSocket) -> String {
    socket
        .local_addr()
        .map(|a| format!("{}:{}", crate::sip::request::host_of(a), a.port()))
        .unwrap_or_default()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The ACK of the 200 the probe gave our re-INVITE (same dialog, same CSeq number).
fn ack_of(response: &DialogMessage, socket: &UdpSocket) -> Vec<u8> {
    let local = socket
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let from = response.header("from").unwrap_or_default();
    let to = response.header("to").unwrap_or_default();
    let cseq = response.cseq().map_or(1, |(n, _)| n);
    dialog::format_request(&DialogRequest {
        method: "ACK",
        request_uri: uri_of(to),
        transport: SipTransport::Udp,
        sent_by: local,
        branch: &format!("z9hG4bK-uas-{}", random_hex(6)),
        from: (uri_of(from), &response.from_tag().unwrap_or_default()),
        to: (uri_of(to), response.to_tag().as_deref()),
        call_id: response.header("call-id").unwrap_or_default(),
        cseq,
        contact: None,
        route: &[],
        authorization: None,
        user_agent: None,
        extra: &[],
        sdp: None,
    })
}

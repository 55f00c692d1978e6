//! Sockets for the prober. UDP: one shared socket per (source, address family, DSCP) — a "hub" —
//! whose receive task timestamps each datagram, parses it once and routes it by the target id in
//! the branch (else by source address) to the round waiting for it; so 10,000 targets need a
//! handful of file descriptors. TCP/TLS: one persistent connection per target with its own reader
//! task doing Content-Length framing; connect and TLS handshake timed apart. Also: DSCP marking,
//! source binding, TLS client configuration and reconnect backoff.
//!
//! Never answers inbound SIP: whatever arrives is only ever matched or dropped.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::debug;

use crate::config::ClientTlsConfig;
use crate::probe::framing::StreamFramer;
use crate::probe::message::target_id_of_branch;
use crate::probe::parse::{ParseError, Response, is_keepalive, parse_response};

/// One message received for a round, stamped on arrival.
#[derive(Debug)]
pub struct Inbound {
    /// The parsed response, or why it was not one.
    pub parsed: Result<Response, ParseError>,
    /// Source address (the connection's peer on TCP/TLS).
    pub from: SocketAddr,
    /// When it was read from the socket.
    pub at: Instant,
}

/// Why a target could not be reached at the transport level.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// DNS found nothing or failed.
    #[error("resolve {host}: {source}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// Socket creation or binding failed (bad `source`, DSCP refused).
    #[error("socket for {peer}: {source}")]
    Socket {
        /// The target address.
        peer: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TCP connect failed.
    #[error("connect to {peer}: {source}")]
    Connect {
        /// The target address.
        peer: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// TCP connect or TLS handshake took longer than the request timeout.
    #[error("{what} with {peer} timed out after {after:?}")]
    Timeout {
        /// `connect` or `tls handshake`.
        what: &'static str,
        /// The target address.
        peer: SocketAddr,
        /// The limit.
        after: Duration,
    },
    /// The TLS handshake failed (certificate, name, protocol).
    #[error("tls handshake with {peer} failed: {source}")]
    Tls {
        /// The target address.
        peer: SocketAddr,
        /// What rustls said.
        source: io::Error,
    },
    /// The TLS settings are unusable.
    #[error("tls settings: {0}")]
    TlsConfig(String),
    /// Reconnecting waits for the backoff.
    #[error("not connected; next reconnect attempt in {0:?}")]
    Backoff(Duration),
    /// Writing the request failed.
    #[error("send to {peer}: {source}")]
    Send {
        /// The target address.
        peer: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
}

/// Aborts a task when dropped, so reader tasks die with their connection or hub.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------
// UDP

#[derive(Debug)]
struct Route {
    peer: SocketAddr,
    tx: mpsc::Sender<Inbound>,
}

type Routes = Arc<Mutex<HashMap<u64, Route>>>;

/// A shared UDP socket and the rounds listening on it.
#[derive(Debug)]
pub struct UdpHub {
    socket: Arc<UdpSocket>,
    routes: Routes,
    stray: Arc<AtomicU64>,
    /// Answers for a round whose queue was full (dropped, not stray).
    full: Arc<AtomicU64>,
    local: SocketAddr,
    _task: AbortOnDrop,
}

/// Which hub a target uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HubKey {
    /// Configured source address.
    pub source: Option<SocketAddr>,
    /// IPv6 rather than IPv4.
    pub v6: bool,
    /// DSCP mark.
    pub dscp: Option<u8>,
}

impl UdpHub {
    /// Binds a socket for `key` and starts its receive task (needs a tokio runtime).
    pub fn bind(key: HubKey) -> io::Result<UdpHub> {
        let socket = bind_udp(key)?;
        let local = socket.local_addr()?;
        let socket = Arc::new(socket);
        let routes: Routes = Arc::default();
        let stray = Arc::new(AtomicU64::new(0));
        let full = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(receive_loop(
            socket.clone(),
            routes.clone(),
            stray.clone(),
            full.clone(),
        ));
        Ok(UdpHub {
            socket,
            routes,
            stray,
            full,
            local,
            _task: AbortOnDrop(task),
        })
    }

    /// Starts routing target `id`'s responses (and anything else from `peer`) to the returned
    /// receiver until the guard is dropped.
    pub fn register(
        &self,
        id: u64,
        peer: SocketAddr,
        capacity: usize,
    ) -> (RouteGuard, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(capacity.max(4));
        lock(&self.routes).insert(id, Route { peer, tx });
        (
            RouteGuard {
                routes: self.routes.clone(),
                id,
            },
            rx,
        )
    }

    /// Sends one datagram.
    pub async fn send_to(&self, bytes: &[u8], peer: SocketAddr) -> io::Result<()> {
        let sent = self.socket.send_to(bytes, peer).await?;
        if sent != bytes.len() {
            return Err(io::Error::other(format!(
                "sent {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(())
    }

    /// The bound address (the port the peer sees).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Datagrams that belonged to no round in progress (late after the round ended, or from a
    /// stranger); logged at debug, not attributed to a target.
    pub fn stray(&self) -> u64 {
        self.stray.load(Ordering::Relaxed)
    }

    /// Datagrams for a round whose queue was full.
    pub fn route_full(&self) -> u64 {
        self.full.load(Ordering::Relaxed)
    }
}

/// Removes a route when the round ends.
#[derive(Debug)]
pub struct RouteGuard {
    routes: Routes,
    id: u64,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        lock(&self.routes).remove(&self.id);
    }
}

fn bind_udp(key: HubKey) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if key.v6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if key.v6 {
        socket.set_only_v6(true)?;
    }
    set_dscp(&socket, key.v6, key.dscp)?;
    // Best effort: room for a burst of answers from many targets.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    let bind = key.source.unwrap_or(if key.v6 {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    });
    socket.bind(&bind.into())?;
    UdpSocket::from_std(socket.into())
}

/// Marks packets: DSCP in the upper six bits of the IPv4 TOS / IPv6 traffic class byte.
fn set_dscp(socket: &socket2::Socket, v6: bool, dscp: Option<u8>) -> io::Result<()> {
    let Some(dscp) = dscp else { return Ok(()) };
    if dscp > 63 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("dscp {dscp} is out of range 0..=63"),
        ));
    }
    let tos = u32::from(dscp) << 2;
    if v6 {
        socket.set_tclass_v6(tos)
    } else {
        socket.set_tos_v4(tos)
    }
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    routes: Routes,
    stray: Arc<AtomicU64>,
    full: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(error) => {
                // ICMP errors and the like: nothing to route; avoid a hot loop on a broken socket.
                debug!(%error, "probe udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let at = Instant::now();
        let data = &buf[..n];
        if is_keepalive(data) {
            continue;
        }
        let parsed = parse_response(data);
        let id = parsed
            .as_ref()
            .ok()
            .and_then(|r| r.top_via.branch.as_deref())
            .and_then(target_id_of_branch);
        let delivered = {
            let routes = lock(&routes);
            let route = id
                .and_then(|id| routes.get(&id))
                .or_else(|| routes.values().find(|r| r.peer == from));
            route.map(|route| route.tx.try_send(Inbound { parsed, from, at }).is_ok())
        };
        match delivered {
            Some(true) => {}
            Some(false) => {
                full.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %from, bytes = n, "probe udp datagram dropped: its round's queue is full");
            }
            None => {
                stray.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %from, bytes = n, "probe udp datagram belongs to no round");
            }
        }
    }
}

/// The address our packets to `peer` leave from, for Via sent-by and From: the configured source,
/// else what the routing table picks (a connected UDP socket sends nothing).
pub fn local_ip_towards(peer: SocketAddr, source: Option<SocketAddr>) -> IpAddr {
    if let Some(src) = source.filter(|s| !s.ip().is_unspecified()) {
        return src.ip();
    }
    let unspecified = if peer.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    std::net::UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(unspecified)
}

// ---------------------------------------------------------------------------------------------
// TCP and TLS

/// A persistent stream connection to one target.
pub struct StreamConn {
    writer: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    /// Framed, parsed messages from the peer.
    pub rx: mpsc::Receiver<Inbound>,
    /// Our end.
    pub local: SocketAddr,
    /// Their end.
    pub peer: SocketAddr,
    _reader: AbortOnDrop,
}

impl std::fmt::Debug for StreamConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamConn")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl StreamConn {
    /// Writes one request within `timeout`.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), TransportError> {
        let peer = self.peer;
        let write = async {
            self.writer.write_all(bytes).await?;
            self.writer.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(TransportError::Send { peer, source }),
            Err(_) => Err(TransportError::Send {
                peer,
                source: io::Error::new(io::ErrorKind::TimedOut, "write timed out"),
            }),
        }
    }

    /// The reader saw EOF or an error: the connection is gone (queued messages may remain).
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }
}

/// A new connection and what it cost.
#[derive(Debug)]
pub struct Connected {
    /// The connection.
    pub conn: StreamConn,
    /// TCP connect time.
    pub connect: Duration,
    /// TLS handshake time, for TLS.
    pub tls_handshake: Option<Duration>,
}

/// What a TLS target needs to connect.
#[derive(Clone)]
pub struct TlsTarget {
    /// Connector with the target's trust settings.
    pub connector: tokio_rustls::TlsConnector,
    /// Name checked against the certificate (and sent as SNI when a DNS name).
    pub server_name: ServerName<'static>,
}

impl std::fmt::Debug for TlsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTarget")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Connects to `peer` (TCP, then TLS when `tls` is set), each step within `timeout`.
pub async fn connect_stream(
    peer: SocketAddr,
    source: Option<SocketAddr>,
    dscp: Option<u8>,
    tls: Option<&TlsTarget>,
    timeout: Duration,
) -> Result<Connected, TransportError> {
    let socket =
        tcp_socket(peer, source, dscp).map_err(|source| TransportError::Socket { peer, source })?;
    let t0 = Instant::now();
    let tcp = match tokio::time::timeout(timeout, socket.connect(peer)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => return Err(TransportError::Connect { peer, source }),
        Err(_) => {
            return Err(TransportError::Timeout {
                what: "connect",
                peer,
                after: timeout,
            });
        }
    };
    let connect = t0.elapsed();
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .map_err(|source| TransportError::Connect { peer, source })?;
    let Some(tls) = tls else {
        let (r, w) = tcp.into_split();
        return Ok(Connected {
            conn: spawn_reader(r, Box::new(w), local, peer),
            connect,
            tls_handshake: None,
        });
    };
    let t1 = Instant::now();
    let stream =
        match tokio::time::timeout(timeout, tls.connector.connect(tls.server_name.clone(), tcp))
            .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(TransportError::Tls { peer, source }),
            Err(_) => {
                return Err(TransportError::Timeout {
                    what: "tls handshake",
                    peer,
                    after: timeout,
                });
            }
        };
    let handshake = t1.elapsed();
    let (r, w) = tokio::io::split(stream);
    Ok(Connected {
        conn: spawn_reader(r, Box::new(w), local, peer),
        connect,
        tls_handshake: Some(handshake),
    })
}

fn tcp_socket(
    peer: SocketAddr,
    source: Option<SocketAddr>,
    dscp: Option<u8>,
) -> io::Result<TcpSocket> {
    let socket = if peer.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(dscp) = dscp {
        if dscp > 63 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("dscp {dscp} is out of range 0..=63"),
            ));
        }
        let tos = u32::from(dscp) << 2;
        if peer.is_ipv6() {
            socket.set_tclass_v6(tos)?;
        } else {
            socket.set_tos_v4(tos)?;
        }
    }
    if let Some(source) = source {
        socket.bind(source)?;
    }
    Ok(socket)
}

fn spawn_reader<R>(
    reader: R,
    writer: Box<dyn AsyncWrite + Send + Sync + Unpin>,
    local: SocketAddr,
    peer: SocketAddr,
) -> StreamConn
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(read_loop(reader, peer, tx));
    StreamConn {
        writer,
        rx,
        local,
        peer,
        _reader: AbortOnDrop(task),
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    peer: SocketAddr,
    tx: mpsc::Sender<Inbound>,
) {
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(error) => {
                debug!(%peer, %error, "probe stream read failed");
                return;
            }
        };
        let at = Instant::now();
        framer.push(&buf[..n]);
        while let Some(frame) = framer.next_frame() {
            let parsed = match frame {
                Ok(frame) => parse_response(&frame.bytes),
                Err(e) => Err(ParseError::Framing(e.to_string())),
            };
            let fatal = matches!(parsed, Err(ParseError::Framing(_)));
            if tx
                .send(Inbound {
                    parsed,
                    from: peer,
                    at,
                })
                .await
                .is_err()
                || fatal
            {
                return;
            }
        }
    }
}

/// Builds the TLS client side of a target: the built-in web PKI roots plus `ca_file`, or no
/// verification at all with `insecure_skip_verify`; the ring provider, TLS 1.2 and 1.3.
pub fn tls_target(cfg: &ClientTlsConfig, default_name: &str) -> Result<TlsTarget, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsConfig(e.to_string()))?;
    let config = if cfg.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots: rustls::RootCertStore =
            webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        if let Some(path) = &cfg.ca_file {
            let shown = path.display();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| TransportError::TlsConfig(format!("ca_file {shown}: {e}")))?;
            let mut added = 0;
            for cert in certs {
                let cert =
                    cert.map_err(|e| TransportError::TlsConfig(format!("ca_file {shown}: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| TransportError::TlsConfig(format!("ca_file {shown}: {e}")))?;
                added += 1;
            }
            if added == 0 {
                return Err(TransportError::TlsConfig(format!(
                    "ca_file {shown}: no certificate found"
                )));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    let name = cfg.server_name.as_deref().unwrap_or(default_name);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|e| TransportError::TlsConfig(format!("server_name {name:?}: {e}")))?;
    Ok(TlsTarget {
        connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        server_name,
    })
}

/// `insecure_skip_verify`: accepts any certificate, but still checks the handshake signatures so
/// the session is at least with the holder of the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// Reconnect backoff

/// Exponential reconnect backoff: 1 s, 2 s, 4 s … capped at 30 s; reset by a success.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Backoff {
    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(30);

    /// `Ok` when a connect may be tried at `now`, else how long to wait.
    pub fn ready(&self, now: Instant) -> Result<(), Duration> {
        match self.not_before {
            Some(t) if t > now => Err(t - now),
            _ => Ok(()),
        }
    }

    /// A connect failed at `now`.
    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let exp = self.failures.saturating_sub(1).min(16);
        let delay = Self::BASE.saturating_mul(1 << exp).min(Self::MAX);
        self.not_before = Some(now + delay);
    }

    /// A connect succeeded.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert_eq!(b.ready(t0), Ok(()));
        let mut waits = Vec::new();
        for _ in 0..7 {
            b.failed(t0);
            waits.push(b.ready(t0).unwrap_err().as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.ready(t0 + Duration::from_secs(30)), Ok(()));
        b.reset();
        assert_eq!(b.ready(t0), Ok(()));
    }

    #[tokio::test]
    async fn dscp_is_set_on_udp_sockets_and_checked() {
        let key = HubKey {
            source: Some("127.0.0.1:0".parse().unwrap()),
            v6: false,
            dscp: Some(46),
        };
        let socket = bind_udp(key).unwrap();
        let sock2 = socket2::SockRef::from(&socket);
        assert_eq!(sock2.tos_v4().unwrap(), 46 << 2);
        let bad = HubKey {
            dscp: Some(64),
            ..key
        };
        assert!(bind_udp(bad).is_err());
    }

    #[test]
    fn local_ip_for_loopback_is_loopback() {
        let ip = local_ip_towards("127.0.0.1:5060".parse().unwrap(), None);
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let src: SocketAddr = "127.0.0.2:0".parse().unwrap();
        assert_eq!(
            local_ip_towards("127.0.0.1:5060".parse().unwrap(), Some(src)),
            src.ip()
        );
    }

    #[test]
    fn tls_settings_errors_name_the_file() {
        let cfg = ClientTlsConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..ClientTlsConfig::default()
        };
        let err = tls_target(&cfg, "localhost").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let cfg = ClientTlsConfig {
            server_name: Some("bad name!".into()),
            ..ClientTlsConfig::default()
        };
        assert!(tls_target(&cfg, "localhost").is_err());
        assert!(tls_target(&ClientTlsConfig::default(), "127.0.0.1").is_ok());
    }
}

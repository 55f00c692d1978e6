//! Accepting connections for both servers: TCP accept, optional TLS handshake (concurrent, under
//! a deadline, so one slow client cannot stall the others), handed over as ready [`Conn`]s.
//!
//! Stops accepting as soon as shutdown fires and closes the listening socket; connections already
//! handed over are the servers' to finish, within a bound: once the `close` token given to
//! [`spawn_acceptor`] fires, every read and write on them fails, so a connection whose peer is
//! stalled (half-sent headers, no HTTP/2 preface, an unread response) ends, and with it the task
//! serving it and the engine sender that task holds.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tracing::{debug, warn};

use super::{RefusalReason, Refusals};
use crate::stats::ReceiverTransport;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; past it new connections are closed at once.
const MAX_HANDSHAKES: usize = 256;
/// Accepted connections waiting for their server.
const BACKLOG: usize = 64;

/// One accepted connection, plain or TLS.
pub(crate) struct Conn {
    io: Io,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    /// Our address.
    pub(crate) local: Option<SocketAddr>,
    /// Resolves when the connection must close, whatever its state.
    close: Pin<Box<WaitForCancellationFutureOwned>>,
    /// This connection's place under `max_connections`, given back when it is dropped.
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    fn new(
        io: Io,
        peer: SocketAddr,
        local: Option<SocketAddr>,
        close: &CancellationToken,
        slot: OwnedSemaphorePermit,
    ) -> Conn {
        Conn {
            io,
            peer,
            local,
            close: Box::pin(close.clone().cancelled_owned()),
            _slot: slot,
        }
    }

    /// `Err` once the connection must close; otherwise registers the task to be woken then.
    fn check_open(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.close.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "receiver stopped",
            )),
            Poll::Pending => Ok(()),
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The cap on open connections of one listener. Past it a new connection is closed at once rather
/// than left waiting: the peer sees the close and retries, while the connections already open,
/// and the process's file descriptors, are untouched.
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    refusals: Arc<Refusals>,
    transport: ReceiverTransport,
}

impl Admission {
    pub(crate) fn new(max: usize, refusals: &Arc<Refusals>, transport: ReceiverTransport) -> Self {
        Admission {
            slots: Arc::new(Semaphore::new(max.max(1))),
            refusals: Arc::clone(refusals),
            transport,
        }
    }

    /// A slot for a new connection, or `None` (counted) when all are taken.
    fn admit(&self, peer: SocketAddr) -> Option<OwnedSemaphorePermit> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok();
        if slot.is_none() {
            self.refusals
                .count(self.transport, RefusalReason::TooManyConnections);
            debug!(peer = %peer, "connection limit reached, connection closed");
        }
        slot
    }
}

/// Starts accepting on `listener`; ready connections arrive on the returned channel, which closes
/// after `shutdown`. Their reads and writes fail once `close` fires.
pub(crate) fn spawn_acceptor(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    admission: Admission,
    shutdown: CancellationToken,
    close: CancellationToken,
) -> mpsc::Receiver<Conn> {
    let (tx, rx) = mpsc::channel(BACKLOG);
    tokio::spawn(accept_loop(listener, tls, admission, tx, shutdown, close));
    rx
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    admission: Admission,
    tx: mpsc::Sender<Conn>,
    shutdown: CancellationToken,
    close: CancellationToken,
) {
    let mut handshakes = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = tx.closed() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "otlp receiver accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = admission.admit(peer) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().ok();
        match &tls {
            None => {
                let conn = Conn::new(Io::Plain(tcp), peer, local, &close, slot);
                if tx.send(conn).await.is_err() {
                    break;
                }
            }
            Some(acceptor) => {
                if handshakes.len() >= MAX_HANDSHAKES {
                    debug!(peer = %peer, "too many tls handshakes, connection closed");
                    continue;
                }
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let close = close.clone();
                handshakes.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let conn =
                                Conn::new(Io::Tls(Box::new(stream)), peer, local, &close, slot);
                            let _ = tx.send(conn).await;
                        }
                        Ok(Err(e)) => debug!(peer = %peer, error = %e, "tls handshake failed"),
                        Err(_) => debug!(peer = %peer, "tls handshake timed out"),
                    }
                });
            }
        }
    }
    // Dropping the listener closes the socket; pending handshakes are abandoned.
    drop(listener);
    handshakes.shutdown().await;
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_open(cx)?;
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check_open(cx)?;
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_open(cx)?;
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_open(cx)?;
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

//! SIP over UDP, TCP and TLS (RFC 3261 §18) on tokio.
//!
//! [`TransportLayer::start`] binds what the profile asks for and returns the
//! layer and one channel of [`Incoming`] messages, each with the peer it came
//! from: whole datagrams from UDP, and from TCP/TLS connections the messages
//! cut out by a [`StreamFramer`] — strict Content-Length (a stream message
//! without it is an error, the connection is closed because the stream can
//! no longer be resynchronised), a size limit, and RFC 5626 keep-alives (a
//! double-CRLF ping is answered with a CRLF pong). A lone CRLF datagram on
//! UDP is a keep-alive and is dropped.
//!
//! [`TransportLayer::send`] writes to a peer, reusing a connection to it or
//! opening one (TLS verified against the system roots plus the clinic's CA
//! file, see [`tls_client_config`]; a certificate problem is reported by
//! name: expired, unknown issuer, wrong name). [`spawn_keepalive`] sends the
//! CRLF keep-alive every 25 s toward the registrar; [`local_addr_toward`]
//! finds the local address a peer sees us from, for Via, Contact and SDP.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::headers::{HeaderName, parse_content_length};
use super::message::find_head_end;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// TCP and TLS deliver reliably: no retransmissions, zero linger timers.
    pub fn is_reliable(self) -> bool {
        self != Transport::Udp
    }

    /// The name in a Via header and in `;transport=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// From a Via transport or a `transport=` parameter (case-insensitive).
    pub fn parse(s: &str) -> Option<Transport> {
        match s.to_ascii_uppercase().as_str() {
            "UDP" => Some(Transport::Udp),
            "TCP" => Some(Transport::Tcp),
            "TLS" => Some(Transport::Tls),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        if self == Transport::Tls { 5061 } else { 5060 }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The other end of a message: transport and address (and, for TLS we
/// connect to, the name its certificate must carry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Peer {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// The server name to verify (TLS); the IP address is used when absent.
    pub tls_name: Option<String>,
}

impl Peer {
    pub fn new(transport: Transport, addr: SocketAddr) -> Peer {
        Peer { transport, addr, tls_name: None }
    }
}

/// One message from the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub peer: Peer,
    pub data: Vec<u8>,
}

/// What went wrong in the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind { what: &'static str, addr: SocketAddr, source: io::Error },
    #[error("cannot send to {to}: {source}")]
    Send { to: SocketAddr, source: io::Error },
    #[error("cannot connect to {to} over {transport}: {source}")]
    Connect { to: SocketAddr, transport: Transport, source: io::Error },
    #[error("connecting to {to} over {transport} timed out")]
    ConnectTimeout { to: SocketAddr, transport: Transport },
    #[error("TLS with {to} failed: {problem}")]
    Tls { to: SocketAddr, problem: String },
    #[error("TLS is not configured for this account")]
    NoTls,
    #[error("no {0} socket is open")]
    NotOpen(Transport),
    #[error("the clinic CA file {path}: {problem}")]
    CaFile { path: PathBuf, problem: String },
    #[error("TLS setup: {0}")]
    TlsSetup(String),
    #[error("message of {size} bytes is larger than the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
}

/// Why a stream can no longer be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("a message on a stream has no Content-Length")]
    NoContentLength,
    #[error("a message on a stream has a malformed Content-Length")]
    BadContentLength,
    #[error("a message on a stream has several different Content-Length values")]
    ConflictingContentLength,
    #[error("a message on a stream is larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// One unit cut from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A whole SIP message (head and body).
    Message(Vec<u8>),
    /// RFC 5626 §3.5.1 ping (CRLF CRLF): answer with a pong.
    Ping,
    /// RFC 5626 pong (CRLF).
    Pong,
}

/// Cuts SIP messages out of a byte stream (RFC 3261 §18.3).
#[derive(Debug, Clone)]
pub struct StreamFramer {
    buf: Vec<u8>,
    max_message: usize,
}

impl StreamFramer {
    pub fn new(max_message: usize) -> StreamFramer {
        StreamFramer { buf: Vec::new(), max_message }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed, or an
    /// error after which the stream must be closed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramingError> {
        if self.buf.starts_with(b"\r\n") {
            return match self.buf.get(2..4) {
                Some(b"\r\n") => {
                    self.buf.drain(..4);
                    Ok(Some(Frame::Ping))
                }
                // A CRLF not followed by another: a pong. Wait while it could still become a ping.
                Some(_) | None if self.buf.len() >= 3 && self.buf.get(2..) != Some(b"\r") => {
                    self.buf.drain(..2);
                    Ok(Some(Frame::Pong))
                }
                _ => Ok(None),
            };
        }
        let Some(head_end) = find_head_end(&self.buf) else {
            if self.buf.len() > self.max_message {
                return Err(FramingError::TooLarge { limit: self.max_message });
            }
            return Ok(None);
        };
        let head = self.buf.get(..head_end).unwrap_or(&[]);
        let length = content_length_of_head(head)?;
        let total = head_end.checked_add(length).ok_or(FramingError::TooLarge { limit: self.max_message })?;
        if total > self.max_message {
            return Err(FramingError::TooLarge { limit: self.max_message });
        }
        if self.buf.len() < total {
            return Ok(None);
        }
        let message: Vec<u8> = self.buf.drain(..total).collect();
        Ok(Some(Frame::Message(message)))
    }
}

/// The Content-Length of a message head (every line named Content-Length or `l`).
fn content_length_of_head(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|b| *b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = line.split_at_checked(colon).unwrap_or((line, &[]));
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if HeaderName::parse(name.trim_matches([' ', '\t'])) != HeaderName::ContentLength {
            continue;
        }
        let value = std::str::from_utf8(value.get(1..).unwrap_or(&[])).map_err(|_| FramingError::BadContentLength)?;
        let n = parse_content_length(value.trim_matches([' ', '\t'])).map_err(|_| FramingError::BadContentLength)?;
        match found {
            Some(prev) if prev != n => return Err(FramingError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    found.ok_or(FramingError::NoContentLength)
}

/// What to open.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Bind a UDP socket here (port 0: any free port).
    pub udp: Option<SocketAddr>,
    /// Listen for TCP connections here.
    pub tcp: Option<SocketAddr>,
    /// Client configuration for outgoing TLS connections.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The largest message accepted or sent (RFC 3261 suggests staying well below 64 KiB).
    pub max_message: usize,
}

impl Default for TransportOptions {
    fn default() -> TransportOptions {
        TransportOptions { udp: None, tcp: None, tls: None, max_message: 65_535 }
    }
}

type ConnectionMap = HashMap<(Transport, SocketAddr), mpsc::Sender<Vec<u8>>>;
type Connections = Arc<Mutex<ConnectionMap>>;

fn lock(c: &Connections) -> std::sync::MutexGuard<'_, ConnectionMap> {
    // A panic elsewhere while holding the lock leaves a map that is still consistent.
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The open sockets and connections of the user agent.
pub struct TransportLayer {
    udp: Option<Arc<UdpSocket>>,
    tcp_local: Option<SocketAddr>,
    tls: Option<tokio_rustls::TlsConnector>,
    connections: Connections,
    incoming: mpsc::Sender<Incoming>,
    max_message: usize,
}

impl fmt::Debug for TransportLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportLayer")
            .field("udp", &self.udp_local_addr())
            .field("tcp", &self.tcp_local)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl TransportLayer {
    /// Binds the sockets and starts receiving.
    pub async fn start(
        opts: TransportOptions,
    ) -> Result<(Arc<TransportLayer>, mpsc::Receiver<Incoming>), TransportError> {
        let (tx, rx) = mpsc::channel(1024);
        let udp = match opts.udp {
            Some(addr) => Some(Arc::new(UdpSocket::bind(addr).await.map_err(|source| TransportError::Bind {
                what: "UDP",
                addr,
                source,
            })?)),
            None => None,
        };
        let listener = match opts.tcp {
            Some(addr) => {
                // "Any port" for both: TCP takes the port UDP got, so one Contact port serves both.
                let same_port = match (addr.port(), udp.as_ref().and_then(|u| u.local_addr().ok())) {
                    (0, Some(u)) if u.ip() == addr.ip() => {
                        TcpListener::bind(SocketAddr::new(addr.ip(), u.port())).await.ok()
                    }
                    _ => None,
                };
                match same_port {
                    Some(l) => Some(l),
                    None => Some(TcpListener::bind(addr).await.map_err(|source| TransportError::Bind {
                        what: "TCP",
                        addr,
                        source,
                    })?),
                }
            }
            None => None,
        };
        let layer = Arc::new(TransportLayer {
            udp: udp.clone(),
            tcp_local: listener.as_ref().and_then(|l| l.local_addr().ok()),
            tls: opts.tls.map(tokio_rustls::TlsConnector::from),
            connections: Arc::new(Mutex::new(HashMap::new())),
            incoming: tx.clone(),
            max_message: opts.max_message,
        });
        if let Some(sock) = udp {
            tokio::spawn(udp_receive(sock, tx.clone(), opts.max_message));
        }
        if let Some(listener) = listener {
            let weak = Arc::downgrade(&layer);
            tokio::spawn(async move {
                loop {
                    let accepted = listener.accept().await;
                    let Some(layer) = weak.upgrade() else { break };
                    match accepted {
                        Ok((stream, addr)) => {
                            let _ = stream.set_nodelay(true);
                            layer.attach_stream(stream, Peer::new(Transport::Tcp, addr));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "TCP accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        }
        Ok((layer, rx))
    }

    pub fn udp_local_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_local_addr(&self) -> Option<SocketAddr> {
        self.tcp_local
    }

    /// Sends one message (or keep-alive) to `peer`, opening a TCP/TLS connection if none is open.
    pub async fn send(&self, peer: &Peer, data: &[u8]) -> Result<(), TransportError> {
        if data.len() > self.max_message {
            return Err(TransportError::TooLarge { size: data.len(), limit: self.max_message });
        }
        if peer.transport == Transport::Udp {
            let sock = self.udp.as_ref().ok_or(TransportError::NotOpen(Transport::Udp))?;
            sock.send_to(data, peer.addr).await.map_err(|source| TransportError::Send { to: peer.addr, source })?;
            return Ok(());
        }
        let key = (peer.transport, peer.addr);
        let existing = lock(&self.connections).get(&key).cloned();
        if let Some(conn) = existing {
            if conn.send(data.to_vec()).await.is_ok() {
                return Ok(());
            }
            lock(&self.connections).remove(&key);
        }
        let conn = self.connect(peer).await?;
        conn.send(data.to_vec()).await.map_err(|_| TransportError::Send {
            to: peer.addr,
            source: io::Error::new(io::ErrorKind::BrokenPipe, "the connection closed"),
        })
    }

    async fn connect(&self, peer: &Peer) -> Result<mpsc::Sender<Vec<u8>>, TransportError> {
        let timeout = Duration::from_secs(10);
        let connect = TcpStream::connect(peer.addr);
        let tcp = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| TransportError::ConnectTimeout { to: peer.addr, transport: peer.transport })?
            .map_err(|source| TransportError::Connect { to: peer.addr, transport: peer.transport, source })?;
        let _ = tcp.set_nodelay(true);
        match peer.transport {
            Transport::Tls => {
                let connector = self.tls.as_ref().ok_or(TransportError::NoTls)?;
                let name = match &peer.tls_name {
                    Some(n) => ServerName::try_from(n.clone()).map_err(|_| TransportError::Tls {
                        to: peer.addr,
                        problem: format!("{n:?} is not a valid server name"),
                    })?,
                    None => ServerName::IpAddress(peer.addr.ip().into()),
                };
                let shown = peer.tls_name.clone().unwrap_or_else(|| peer.addr.ip().to_string());
                let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| TransportError::ConnectTimeout { to: peer.addr, transport: Transport::Tls })?
                    .map_err(|e| TransportError::Tls { to: peer.addr, problem: describe_tls_io_error(&e, &shown) })?;
                Ok(self.attach_stream(tls, peer.clone()))
            }
            _ => Ok(self.attach_stream(tcp, peer.clone())),
        }
    }

    /// Starts reading and writing a connected stream; returns its writer.
    fn attach_stream<S>(&self, stream: S, peer: Peer) -> mpsc::Sender<Vec<u8>>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let key = (peer.transport, peer.addr);
        lock(&self.connections).insert(key, tx.clone());
        tokio::spawn(async move {
            while let Some(buf) = rx.recv().await {
                if let Err(e) = wr.write_all(&buf).await {
                    tracing::debug!(error = %e, "stream write failed");
                    break;
                }
            }
            let _ = wr.shutdown().await;
        });
        let connections = self.connections.clone();
        let incoming = self.incoming.clone();
        let pong = tx.clone();
        let max = self.max_message;
        tokio::spawn(async move {
            let mut framer = StreamFramer::new(max);
            let mut chunk = vec![0u8; 16 * 1024];
            'read: loop {
                let n = match rd.read(&mut chunk).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, peer = %peer.addr, "stream read failed");
                        break;
                    }
                };
                framer.push(chunk.get(..n).unwrap_or(&[]));
                loop {
                    match framer.next_frame() {
                        Ok(Some(Frame::Message(data))) => {
                            if incoming.send(Incoming { peer: peer.clone(), data }).await.is_err() {
                                break 'read;
                            }
                        }
                        Ok(Some(Frame::Ping)) => {
                            let _ = pong.send(b"\r\n".to_vec()).await;
                        }
                        Ok(Some(Frame::Pong)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, peer = %peer.addr, "closing the SIP connection");
                            break 'read;
                        }
                    }
                }
            }
            let mut map = lock(&connections);
            if map.get(&key).is_some_and(|s| s.same_channel(&pong)) {
                map.remove(&key);
            }
        });
        tx
    }

    /// Whether a TCP/TLS connection to `peer` is open.
    pub fn is_connected(&self, peer: &Peer) -> bool {
        lock(&self.connections).contains_key(&(peer.transport, peer.addr))
    }
}

async fn udp_receive(sock: Arc<UdpSocket>, tx: mpsc::Sender<Incoming>, max: usize) {
    let mut buf = vec![0u8; max.max(1500)];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let data = buf.get(..n).unwrap_or(&[]);
                // RFC 5626 §4.4.1 / common practice: CRLF datagrams are keep-alives.
                if data.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                    continue;
                }
                let msg = Incoming { peer: Peer::new(Transport::Udp, from), data: data.to_vec() };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
            // ICMP port unreachable and the like surface here on some systems; keep listening.
            Err(e) => tracing::debug!(error = %e, "UDP receive error"),
        }
    }
}

/// Sends keep-alives to `peer` every `every` (25 s for the registrar):
/// CRLF on UDP, the CRLF CRLF ping on TCP/TLS. Abort the handle to stop.
pub fn spawn_keepalive(transport: Arc<TransportLayer>, peer: Peer, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let data: &[u8] = if peer.transport == Transport::Udp { b"\r\n" } else { b"\r\n\r\n" };
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            if let Err(e) = transport.send(&peer, data).await {
                tracing::debug!(error = %e, "keep-alive not sent");
            }
        }
    })
}

/// The local address packets to `peer` leave from: the address to put in
/// Via, Contact and SDP. Connecting a UDP socket sends nothing; it only asks
/// the routing table.
pub fn local_addr_toward(peer: SocketAddr) -> io::Result<IpAddr> {
    let any: IpAddr = if peer.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let sock = std::net::UdpSocket::bind(SocketAddr::new(any, 0))?;
    sock.connect(peer)?;
    Ok(sock.local_addr()?.ip())
}

/// The TLS client configuration: the system's root certificates plus, if
/// given, the clinic's own CA (PEM file).
pub fn tls_client_config(clinic_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    tls_client_config_with_time(clinic_ca, true, Arc::new(rustls::time_provider::DefaultTimeProvider))
}

fn tls_client_config_with_time(
    clinic_ca: Option<&Path>,
    system_roots: bool,
    time: Arc<dyn rustls::time_provider::TimeProvider>,
) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    if system_roots {
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system root certificate could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system root certificates");
    }
    if let Some(path) = clinic_ca {
        let bad = |problem: String| TransportError::CaFile { path: path.to_owned(), problem };
        let iter = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
        let mut count = 0;
        for cert in iter {
            let cert = cert.map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
            roots.add(cert).map_err(|e| bad(format!("certificate refused: {e}")))?;
            count += 1;
        }
        if count == 0 {
            return Err(bad("no certificate in the file".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_details(provider, time)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::TlsSetup(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Names a TLS failure the way an administrator needs to read it.
pub fn describe_tls_error(e: &rustls::Error, server_name: &str) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired | C::ExpiredContext { .. } => {
                format!("the server's certificate has expired (server {server_name})")
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                format!("the server's certificate is not valid yet: check this computer's clock (server {server_name})")
            }
            C::UnknownIssuer => format!(
                "the server's certificate is issued by an unknown authority: give the clinic's CA file (server {server_name})"
            ),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("the server's certificate is not valid for the name {server_name} (wrong name)")
            }
            C::Revoked => format!("the server's certificate has been revoked (server {server_name})"),
            other => format!("the server's certificate was refused: {other:?} (server {server_name})"),
        },
        other => format!("{other}"),
    }
}

fn describe_tls_io_error(e: &io::Error, server_name: &str) -> String {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => describe_tls_error(tls, server_name),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framer_cuts_messages_pings_and_pongs() {
        let mut f = StreamFramer::new(4096);
        let msg = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";
        f.push(b"\r\n\r\n");
        f.push(&msg[..30]);
        assert_eq!(f.next_frame(), Ok(Some(Frame::Ping)));
        assert_eq!(f.next_frame(), Ok(None));
        f.push(&msg[30..]);
        f.push(b"\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Message(msg.to_vec()))));
        assert_eq!(f.next_frame(), Ok(None), "a lone CRLF could still become a ping");
        f.push(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(f.next_frame(), Ok(Some(Frame::Pong)));
        assert!(matches!(f.next_frame(), Ok(Some(Frame::Message(m))) if m.starts_with(b"SIP/2.0 200")));
        assert_eq!(f.next_frame(), Ok(None));
    }

    #[test]
    fn framer_is_strict_about_content_length_and_size() {
        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::NoContentLength));
        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::BadContentLength));
        let mut f = StreamFramer::new(4096);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::ConflictingContentLength));
        let mut f = StreamFramer::new(100);
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge { limit: 100 }));
        let mut f = StreamFramer::new(100);
        f.push(&[b'x'; 101]);
        assert_eq!(f.next_frame(), Err(FramingError::TooLarge { limit: 100 }));
    }

    #[test]
    fn local_address_toward_loopback() {
        assert_eq!(local_addr_toward("127.0.0.1:5060".parse().unwrap()).unwrap(), IpAddr::from([127, 0, 0, 1]));
    }

    const OPTIONS: &[u8] =
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n";

    async fn recv(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("nothing received in 10 s")
            .expect("channel closed")
    }

    #[tokio::test]
    async fn udp_round_trip_and_keepalives_dropped() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (a, mut a_rx) =
            TransportLayer::start(TransportOptions { udp: Some(any), ..Default::default() }).await.unwrap();
        let (b, _b_rx) =
            TransportLayer::start(TransportOptions { udp: Some(any), ..Default::default() }).await.unwrap();
        let a_peer = Peer::new(Transport::Udp, a.udp_local_addr().unwrap());
        b.send(&a_peer, b"\r\n").await.unwrap();
        b.send(&a_peer, OPTIONS).await.unwrap();
        let got = recv(&mut a_rx).await;
        assert_eq!(got.data, OPTIONS, "the CRLF keep-alive before it was dropped");
        assert_eq!(got.peer, Peer::new(Transport::Udp, b.udp_local_addr().unwrap()));
    }

    #[tokio::test]
    async fn tcp_frames_messages_and_answers_pings() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (server, mut server_rx) =
            TransportLayer::start(TransportOptions { tcp: Some(any), ..Default::default() }).await.unwrap();
        let (client, mut client_rx) = TransportLayer::start(TransportOptions::default()).await.unwrap();
        let to_server = Peer::new(Transport::Tcp, server.tcp_local_addr().unwrap());
        client.send(&to_server, b"\r\n\r\n").await.unwrap();
        client.send(&to_server, &OPTIONS[..20]).await.unwrap();
        client.send(&to_server, &OPTIONS[20..]).await.unwrap();
        let got = recv(&mut server_rx).await;
        assert_eq!(got.data, OPTIONS);
        assert_eq!(got.peer.transport, Transport::Tcp);
        // The answer goes back on the same connection.
        server.send(&got.peer, b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n").await.unwrap();
        let back = recv(&mut client_rx).await;
        assert!(back.data.starts_with(b"SIP/2.0 200 OK"));
        assert_eq!(back.peer.addr, to_server.addr);
        assert!(client.is_connected(&to_server));
    }

    /// A CA, a server certificate for `localhost` signed by it, via the openssl command.
    struct Pki {
        dir: tempfile::TempDir,
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command is needed for the TLS tests (Debian package: openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn make_pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=Clinic Test CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n").unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "30",
                "-extfile",
                "ext.cnf",
            ],
        );
        Pki { dir }
    }

    async fn tls_server(pki: &Pki) -> SocketAddr {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pki.dir.path().join("server.pem")).unwrap().map(|c| c.unwrap()).collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.dir.path().join("server.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = vec![0u8; 4096];
                        if let Ok(n) = tls.read(&mut buf).await {
                            let _ = tls.write_all(&buf[..n]).await; // echo
                        }
                    }
                });
            }
        });
        addr
    }

    async fn tls_client(config: Arc<rustls::ClientConfig>) -> (Arc<TransportLayer>, mpsc::Receiver<Incoming>) {
        TransportLayer::start(TransportOptions { tls: Some(config), ..Default::default() }).await.unwrap()
    }

    #[derive(Debug)]
    struct FixedTime(u64);
    impl rustls::time_provider::TimeProvider for FixedTime {
        fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
            Some(rustls::pki_types::UnixTime::since_unix_epoch(Duration::from_secs(self.0)))
        }
    }

    #[tokio::test]
    async fn tls_verifies_and_names_certificate_problems() {
        let pki = make_pki();
        let addr = tls_server(&pki).await;
        let ca = pki.dir.path().join("ca.pem");
        let named = |name: &str| Peer { transport: Transport::Tls, addr, tls_name: Some(name.to_owned()) };
        let system = Arc::new(rustls::time_provider::DefaultTimeProvider);

        // With the clinic CA: connects, and the echo comes back framed.
        let (client, mut rx) = tls_client(tls_client_config(Some(&ca)).unwrap()).await;
        client.send(&named("localhost"), OPTIONS).await.unwrap();
        assert_eq!(recv(&mut rx).await.data, OPTIONS);

        // Without it: unknown issuer.
        let (client, _) = tls_client(tls_client_config_with_time(None, false, system.clone()).unwrap()).await;
        let err = client.send(&named("localhost"), OPTIONS).await.unwrap_err().to_string();
        assert!(err.contains("unknown authority"), "{err}");

        // The certificate is for localhost, not for this name.
        let (client, _) = tls_client(tls_client_config_with_time(Some(&ca), false, system).unwrap()).await;
        let err = client.send(&named("pbx.example.com"), OPTIONS).await.unwrap_err().to_string();
        assert!(err.contains("not valid for the name pbx.example.com"), "{err}");

        // Seen from the year 2100 the certificate has expired.
        let future = Arc::new(FixedTime(4_102_444_800));
        let (client, _) = tls_client(tls_client_config_with_time(Some(&ca), false, future).unwrap()).await;
        let err = client.send(&named("localhost"), OPTIONS).await.unwrap_err().to_string();
        assert!(err.contains("has expired"), "{err}");

        // A CA file that is not one says so.
        let bogus = pki.dir.path().join("server.key");
        let err = tls_client_config(Some(&bogus)).unwrap_err().to_string();
        assert!(err.contains("no certificate in the file"), "{err}");
        let err = tls_client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }
}

//! One call's media on tokio: RTP out of the microphone, RTP into the headset, RTCP beside.
//!
//! A single task owns everything of the call (sockets, codec, jitter buffer, DTMF, the audio
//! source and sink), so nothing is shared and nothing locks. It wakes on a 20 ms tick, on a
//! datagram, or on a command from the `MediaHandle`; what the operator must see comes out as
//! `MediaEvent`s.
//!
//! NAT: we send from the socket we receive on (symmetric RTP) and, once the peer's first
//! valid packets arrive, send to the address they really came from (latching), since the
//! address in a phone's SDP is often its private one.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use super::MediaError;
use super::audio::{AudioSink, AudioSource, DeviceEvent};
use super::codec::{Codec, CodecKind};
use super::dtmf::{DtmfReceiver, DtmfSender, TelephoneEvent};
use super::jitter::{JitterBuffer, JitterConfig};
use super::resample::Resampler;
use super::rtp::{self, ReceiveStatistics, ReceiverReport, RtcpPacket, RtpHeader, RtpPacket, SdesChunk, SenderReport};
use super::stats::{CallStats, Quality};

/// Which way media flows, from our side (the SDP direction attribute we put in our answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// Reads `sendrecv`, `sendonly`, `recvonly` or `inactive` (the SDP attribute names).
    pub fn from_sdp(attribute: &str) -> Option<Direction> {
        match attribute.trim().to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Our direction when the peer's SDP says `self` (their sendonly is our recvonly).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// A call's media as negotiated in SDP.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The peer's `c=` address and `m=audio` port.
    pub remote_rtp: SocketAddr,
    /// The peer's RTCP address (`a=rtcp`); None means RTP port + 1, or the RTP address with mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// `a=rtcp-mux` agreed: RTCP shares the RTP port.
    pub rtcp_mux: bool,
    pub codec: CodecKind,
    /// The payload type the codec was negotiated under.
    pub payload_type: u8,
    /// `telephone-event` payload type and clock rate, when negotiated.
    pub telephone_event: Option<(u8, u32)>,
    pub ptime_ms: u32,
    pub direction: Direction,
    /// Our RTCP CNAME (e.g. `operator@workstation`).
    pub cname: String,
    /// How often a `MediaEvent::Stats` is sent.
    pub stats_interval: Duration,
}

impl MediaConfig {
    /// The usual case: a codec with its payload type, 20 ms, sendrecv, RTCP on port + 1.
    pub fn new(remote_rtp: SocketAddr, codec: CodecKind, payload_type: u8) -> MediaConfig {
        MediaConfig {
            remote_rtp,
            remote_rtcp: None,
            rtcp_mux: false,
            codec,
            payload_type,
            telephone_event: None,
            ptime_ms: 20,
            direction: Direction::SendRecv,
            cname: "clinicdesk".to_string(),
            stats_interval: Duration::from_secs(1),
        }
    }

    fn rtcp_target(&self, rtp: SocketAddr) -> SocketAddr {
        match self.remote_rtcp {
            Some(addr) => addr,
            None if self.rtcp_mux => rtp,
            None => SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
        }
    }
}

/// The local sockets of a call: RTP on an even port, RTCP on the next one (absent with mux).
pub struct RtpSockets {
    pub rtp: UdpSocket,
    pub rtcp: Option<UdpSocket>,
}

impl RtpSockets {
    /// The RTP port to put in our SDP's `m=audio` line.
    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }
}

/// Binds RTP on a free even port of `ip` and RTCP on the odd port after it.
pub async fn bind_rtp(ip: IpAddr) -> Result<RtpSockets, MediaError> {
    let mut last_error = None;
    for _ in 0..64 {
        let rtp = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
            Ok(s) => s,
            Err(e) => return Err(MediaError::Bind { address: SocketAddr::new(ip, 0), source: e }),
        };
        let port =
            rtp.local_addr().map_err(|e| MediaError::Bind { address: SocketAddr::new(ip, 0), source: e })?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        let rtcp_addr = SocketAddr::new(ip, port + 1);
        match UdpSocket::bind(rtcp_addr).await {
            Ok(rtcp) => return Ok(RtpSockets { rtp, rtcp: Some(rtcp) }),
            Err(e) => last_error = Some((rtcp_addr, e)),
        }
    }
    let (address, source) = last_error.unwrap_or_else(|| {
        (SocketAddr::new(ip, 0), std::io::Error::new(std::io::ErrorKind::AddrInUse, "only odd ports were offered"))
    });
    Err(MediaError::Bind { address, source })
}

/// What the media task tells the rest of the application.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// A DTMF digit received from the peer (each once, in order).
    Dtmf(char),
    /// The call's figures, every `stats_interval`.
    Stats(CallStats),
    /// The peer's media comes from another address than its SDP said; we now send there.
    Latched(SocketAddr),
    /// A sound device was replaced (the call goes on) or could not be opened.
    Device(DeviceEvent),
    /// Something went wrong that the operator may need to know; the call goes on.
    Error(String),
}

enum Command {
    Direction(Direction),
    Mute(bool),
    Hold(bool),
    Codec { codec: CodecKind, payload_type: u8, telephone_event: Option<(u8, u32)> },
    Dtmf(String),
    Remote { rtp: SocketAddr, rtcp: Option<SocketAddr> },
    Stop(oneshot::Sender<Result<CallStats, MediaError>>),
}

/// Controls a running call's media. Dropping it stops the media too (without the figures).
pub struct MediaHandle {
    commands: mpsc::UnboundedSender<Command>,
    stats: watch::Receiver<CallStats>,
    local_rtp: SocketAddr,
    heard: Arc<Heard>,
}

/// When the peer was last heard: its RTP (from the peer's address and
/// stream) or any RTCP it sent. Written by the media task, read by whoever
/// watches the call for a dead peer (a BYE lost on the way).
#[derive(Debug)]
struct Heard {
    epoch: Instant,
    /// Milliseconds after `epoch`, plus one; 0: never.
    at_ms: AtomicU64,
}

impl Heard {
    fn new(epoch: Instant) -> Heard {
        Heard { epoch, at_ms: AtomicU64::new(0) }
    }

    fn mark(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.epoch).as_millis() as u64 + 1;
        self.at_ms.fetch_max(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Option<Instant> {
        match self.at_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms - 1)),
        }
    }
}

impl MediaHandle {
    /// Hold/resume per the SDP direction.
    pub fn set_direction(&self, direction: Direction) {
        let _ = self.commands.send(Command::Direction(direction));
    }

    /// Mute sends silence (so NAT bindings and the peer's jitter buffer stay alive).
    pub fn mute(&self, muted: bool) {
        let _ = self.commands.send(Command::Mute(muted));
    }

    /// Switches the running call to another codec or payload type (a mid-call
    /// offer agreed on it): sending and receiving change together, the stream
    /// (SSRC, sequence) goes on.
    pub fn set_codec(&self, codec: CodecKind, payload_type: u8, telephone_event: Option<(u8, u32)>) {
        let _ = self.commands.send(Command::Codec { codec, payload_type, telephone_event });
    }

    /// While we hold the call nothing of the microphone leaves: the held party
    /// gets silence, whatever the SDP direction still allows us to send (a
    /// hold is offered `sendonly`, which permits music on hold, not the
    /// operator's next conversation). Set before the hold is even offered, and
    /// separate from mute so that resuming does not unmute.
    pub fn hold(&self, held: bool) {
        let _ = self.commands.send(Command::Hold(held));
    }

    /// Queues DTMF digits (0-9, *, #, A-D) as RFC 4733 events.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        // Check here so the caller hears about a bad digit at once.
        for c in digits.chars().filter(|c| !c.is_whitespace()) {
            super::dtmf::event_code(c)?;
        }
        self.commands.send(Command::Dtmf(digits.to_string())).map_err(|_| MediaError::Stopped)
    }

    /// The peer moved (re-INVITE with a new address).
    pub fn set_remote(&self, rtp: SocketAddr, rtcp: Option<SocketAddr>) {
        let _ = self.commands.send(Command::Remote { rtp, rtcp });
    }

    /// The latest figures.
    pub fn stats(&self) -> CallStats {
        self.stats.borrow().clone()
    }

    /// Our RTP address.
    pub fn local_rtp(&self) -> SocketAddr {
        self.local_rtp
    }

    /// When RTP or RTCP of the peer last arrived (`None`: nothing yet).
    pub fn last_heard(&self) -> Option<Instant> {
        self.heard.last()
    }

    /// Ends the media (RTCP BYE, recordings finalised) and returns the call's figures.
    pub async fn stop(self) -> Result<CallStats, MediaError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::Stop(tx)).map_err(|_| MediaError::Stopped)?;
        rx.await.map_err(|_| MediaError::Stopped)?
    }
}

/// Starting a call's media.
pub struct MediaSession;

impl MediaSession {
    /// Starts the media task on the current tokio runtime.
    pub fn start(
        config: MediaConfig,
        sockets: RtpSockets,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<(MediaHandle, mpsc::UnboundedReceiver<MediaEvent>), MediaError> {
        let codec = config.codec.build(config.ptime_ms)?;
        let local_rtp = sockets
            .rtp
            .local_addr()
            .map_err(|e| MediaError::Bind { address: SocketAddr::from(([0, 0, 0, 0], 0)), source: e })?;
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (event_tx, event_rx) = mpsc::unbounded_channel();
        let (stats_tx, stats_rx) = watch::channel(CallStats::default());
        let engine = Engine::new(config, codec, source, sink, event_tx, stats_tx)?;
        let heard = engine.heard.clone();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
        runtime.spawn(run(engine, sockets, cmd_rx));
        Ok((MediaHandle { commands: cmd_tx, stats: stats_rx, local_rtp, heard }, event_rx))
    }
}

async fn run(mut engine: Engine, sockets: RtpSockets, mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut tick = tokio::time::interval(Duration::from_millis(engine.config.ptime_ms as u64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtcp_buf = vec![0u8; 2048];
    let rtcp_socket = sockets.rtcp.as_ref();
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => match command {
                Some(Command::Stop(reply)) => {
                    let _ = reply.send(engine.stop(&sockets));
                    return;
                }
                Some(command) => engine.command(command),
                None => {
                    let _ = engine.stop(&sockets);
                    return;
                }
            },
            received = sockets.rtp.recv_from(&mut rtp_buf) => match received {
                Ok((n, from)) => engine.on_datagram(&rtp_buf[..n], from, Instant::now(), false),
                Err(e) => engine.on_socket_error(e),
            },
            received = async { match rtcp_socket { Some(s) => s.recv_from(&mut rtcp_buf).await, None => std::future::pending().await } } => {
                match received {
                    Ok((n, from)) => engine.on_datagram(&rtcp_buf[..n], from, Instant::now(), true),
                    Err(e) => engine.on_socket_error(e),
                }
            },
            _ = tick.tick() => engine.on_tick(Instant::now(), &sockets),
        }
    }
}

/// A small non-cryptographic random number (SSRC, initial sequence and timestamp).
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish() as u32
}

struct Engine {
    config: MediaConfig,
    codec: Box<dyn Codec>,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    events: mpsc::UnboundedSender<MediaEvent>,
    stats_tx: watch::Sender<CallStats>,
    epoch: Instant,
    /// When the peer was last heard (shared with the handle).
    heard: Arc<Heard>,

    // Sending.
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    marker_next: bool,
    muted: bool,
    held: bool,
    dtmf_out: DtmfSender,
    capture_resampler: Resampler,
    capture_raw: Vec<f32>,
    capture_fifo: Vec<f32>,
    pcm_out: Vec<i16>,
    payload: Vec<u8>,
    packet: Vec<u8>,
    packets_sent: u64,
    bytes_sent: u64,
    sent_since_report: bool,
    last_sent_rtp_ts: u32,

    // Receiving.
    remote_rtp: SocketAddr,
    remote_rtcp: SocketAddr,
    latched: bool,
    rtcp_latched: bool,
    remote_ssrc: Option<u32>,
    rx_stats: ReceiveStatistics,
    jitter: JitterBuffer,
    dtmf_in: DtmfReceiver,
    playback_resampler: Resampler,
    pcm_in: Vec<i16>,
    playback_f32: Vec<f32>,
    playback_out: Vec<f32>,
    rtt_ms: Option<f64>,
    remote_loss: Option<f64>,
    remote_jitter: Option<f64>,
    invalid_packets: u64,
    /// RTP from an address and stream other than the peer's, ignored.
    foreign_packets: u64,

    next_rtcp: Instant,
    next_stats: Instant,
    socket_error_reported: bool,
}

/// What an engine builds from its codec (its two clocks and frame): made once
/// by [`Engine::new`] and again by `switch_codec`, all or nothing. Audio
/// (resamplers, frames) runs at the codec's sample rate; RTP (receive
/// statistics, timestamps) at its clock rate — they differ for G.722.
struct CodecParts {
    capture_resampler: Resampler,
    playback_resampler: Resampler,
    jitter: JitterBuffer,
    rx_stats: ReceiveStatistics,
    dtmf_out: DtmfSender,
}

impl CodecParts {
    fn new(
        codec: &dyn Codec,
        source: &dyn AudioSource,
        sink: &dyn AudioSink,
        telephone_event: Option<(u8, u32)>,
        ptime_ms: u32,
    ) -> Result<CodecParts, MediaError> {
        let rate = codec.sample_rate();
        let frame = codec.frame_samples();
        Ok(CodecParts {
            capture_resampler: Resampler::new(source.sample_rate(), rate)?,
            playback_resampler: Resampler::new(rate, sink.sample_rate())?,
            jitter: JitterBuffer::new(JitterConfig::with_clock(codec.clock(), frame)),
            rx_stats: ReceiveStatistics::new(codec.clock_rate()),
            dtmf_out: DtmfSender::new(telephone_event.map_or(8000, |(_, clock)| clock), ptime_ms),
        })
    }
}

impl Engine {
    fn new(
        config: MediaConfig,
        codec: Box<dyn Codec>,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
        events: mpsc::UnboundedSender<MediaEvent>,
        stats_tx: watch::Sender<CallStats>,
    ) -> Result<Engine, MediaError> {
        let frame = codec.frame_samples();
        let now = Instant::now();
        let CodecParts { capture_resampler, playback_resampler, jitter, rx_stats, dtmf_out } =
            CodecParts::new(&*codec, &*source, &*sink, config.telephone_event, config.ptime_ms)?;
        Ok(Engine {
            capture_resampler,
            playback_resampler,
            jitter,
            rx_stats,
            dtmf_out,
            remote_rtp: config.remote_rtp,
            remote_rtcp: config.rtcp_target(config.remote_rtp),
            ssrc: random_u32(),
            sequence: random_u32() as u16,
            timestamp: random_u32(),
            marker_next: true,
            muted: false,
            held: false,
            capture_raw: Vec::with_capacity(4800),
            capture_fifo: Vec::with_capacity(frame * 4),
            pcm_out: Vec::with_capacity(frame),
            payload: Vec::with_capacity(1500),
            packet: Vec::with_capacity(1500),
            packets_sent: 0,
            bytes_sent: 0,
            sent_since_report: false,
            last_sent_rtp_ts: 0,
            latched: false,
            rtcp_latched: false,
            remote_ssrc: None,
            dtmf_in: DtmfReceiver::new(),
            pcm_in: Vec::with_capacity(frame * 2),
            playback_f32: Vec::with_capacity(frame * 2),
            playback_out: Vec::with_capacity(4800),
            rtt_ms: None,
            remote_loss: None,
            remote_jitter: None,
            invalid_packets: 0,
            foreign_packets: 0,
            next_rtcp: now + Duration::from_millis(2500),
            next_stats: now + config.stats_interval,
            socket_error_reported: false,
            epoch: now,
            heard: Arc::new(Heard::new(now)),
            config,
            codec,
            source,
            sink,
            events,
            stats_tx,
        })
    }

    fn emit(&self, event: MediaEvent) {
        // The receiver may have gone (the UI closed); the call's media does not care.
        let _ = self.events.send(event);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Direction(d) => {
                let was = self.config.direction;
                if d.sends() && !was.sends() {
                    self.marker_next = true;
                }
                if d.receives() && !was.receives() {
                    // Whatever was buffered before the hold is stale.
                    self.jitter.reset();
                }
                self.config.direction = d;
            }
            Command::Mute(m) => self.muted = m,
            Command::Codec { codec, payload_type, telephone_event } => {
                if let Err(e) = self.switch_codec(codec, payload_type, telephone_event) {
                    self.emit(MediaEvent::Error(format!("the new codec {codec} cannot be used: {e}")));
                }
            }
            Command::Hold(h) => {
                if self.held && !h {
                    self.marker_next = true;
                }
                self.held = h;
            }
            Command::Dtmf(digits) => {
                if self.config.telephone_event.is_none() {
                    self.emit(MediaEvent::Error(
                        "the peer did not accept telephone-event: DTMF digits cannot be sent".into(),
                    ));
                } else if let Err(e) = self.dtmf_out.queue(&digits) {
                    self.emit(MediaEvent::Error(e.to_string()));
                }
            }
            Command::Remote { rtp, rtcp } => {
                self.config.remote_rtp = rtp;
                self.config.remote_rtcp = rtcp;
                self.remote_rtp = rtp;
                self.remote_rtcp = self.config.rtcp_target(rtp);
                self.latched = false;
                self.rtcp_latched = false;
            }
            Command::Stop(_) => {}
        }
    }

    fn on_socket_error(&mut self, e: std::io::Error) {
        // ICMP port unreachable shows up here on Linux while the peer is not yet listening.
        if e.kind() == std::io::ErrorKind::ConnectionRefused {
            return;
        }
        if !self.socket_error_reported {
            self.socket_error_reported = true;
            self.emit(MediaEvent::Error(format!("receiving media failed: {e}")));
        }
    }

    fn on_datagram(&mut self, buf: &[u8], from: SocketAddr, now: Instant, on_rtcp_socket: bool) {
        if on_rtcp_socket || rtp::is_rtcp(buf) {
            self.on_rtcp(buf, from, now, on_rtcp_socket);
            return;
        }
        let Ok(packet) = RtpPacket::parse(buf) else {
            self.invalid_packets += 1;
            return;
        };
        let h = &packet.header;
        let te_pt = self.config.telephone_event.map(|(pt, _)| pt);
        let is_audio = h.payload_type == self.config.payload_type;
        let is_dtmf = Some(h.payload_type) == te_pt;
        if !is_audio && !is_dtmf {
            return; // Comfort noise and payloads we did not negotiate.
        }
        // Latch onto where the peer really sends from: on its first packets, or when the
        // same stream comes from a new address (a NAT rebinding). Once latched, another
        // stream from another address is somebody else's (a scanner, a stale call, an
        // attacker guessing ports): it is neither played nor answered.
        if from != self.remote_rtp && self.latched && self.remote_ssrc != Some(h.ssrc) {
            self.foreign_packets += 1;
            return;
        }
        if from != self.remote_rtp {
            self.remote_rtp = from;
            if !self.rtcp_latched && !self.config.rtcp_mux && self.config.remote_rtcp.is_none() {
                self.remote_rtcp = SocketAddr::new(from.ip(), from.port().wrapping_add(1));
            } else if self.config.rtcp_mux {
                self.remote_rtcp = from;
            }
            self.emit(MediaEvent::Latched(from));
        }
        self.latched = true;
        self.heard.mark(now);
        if self.remote_ssrc != Some(h.ssrc) {
            if self.remote_ssrc.is_some() {
                // The peer restarted its stream (a transfer, a new device): start afresh.
                self.jitter.reset();
            }
            self.remote_ssrc = Some(h.ssrc);
            self.rx_stats = ReceiveStatistics::new(self.codec.clock_rate());
        }
        self.rx_stats.on_packet(h.sequence, h.timestamp, now.saturating_duration_since(self.epoch));
        if is_dtmf {
            if let Some(digit) = self.dtmf_in.on_packet(h.timestamp, packet.payload) {
                self.emit(MediaEvent::Dtmf(digit));
            }
        } else if self.config.direction.receives() {
            self.jitter.push(h.sequence, h.timestamp, packet.payload, now);
        }
    }

    fn on_rtcp(&mut self, buf: &[u8], from: SocketAddr, now: Instant, on_rtcp_socket: bool) {
        let Ok(packets) = rtp::parse_rtcp(buf) else {
            self.invalid_packets += 1;
            return;
        };
        if on_rtcp_socket && !self.rtcp_latched && from != self.remote_rtcp {
            self.remote_rtcp = from;
        }
        self.rtcp_latched = true;
        self.heard.mark(now);
        let arrival_ntp = rtp::ntp_timestamp(SystemTime::now());
        for packet in packets {
            let blocks = match packet {
                RtcpPacket::SenderReport(sr) => {
                    if Some(sr.ssrc) == self.remote_ssrc {
                        self.rx_stats.on_sender_report(sr.ntp_timestamp, now.saturating_duration_since(self.epoch));
                    }
                    sr.reports
                }
                RtcpPacket::ReceiverReport(rr) => rr.reports,
                _ => continue,
            };
            for block in blocks.iter().filter(|b| b.ssrc == self.ssrc) {
                if let Some(rtt) = rtp::round_trip(block, arrival_ntp) {
                    self.rtt_ms = Some(rtt.as_secs_f64() * 1000.0);
                }
                let loss = block.fraction_lost as f64 * 100.0 / 256.0;
                self.remote_loss = Some(loss);
                self.remote_jitter = Some(block.jitter as f64 * 1000.0 / self.codec.clock_rate() as f64);
                self.codec.set_expected_loss(loss.ceil() as u8);
            }
        }
    }

    fn send_rtp(&mut self, socket: &UdpSocket, marker: bool, payload_type: u8, timestamp: u32) {
        let header = RtpHeader {
            marker,
            payload_type,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            csrc: Vec::new(),
            extension: None,
        };
        self.packet.clear();
        header.write(&self.payload, &mut self.packet);
        self.sequence = self.sequence.wrapping_add(1);
        match socket.try_send_to(&self.packet, self.remote_rtp) {
            Ok(_) => {
                self.packets_sent += 1;
                self.bytes_sent += self.payload.len() as u64;
                self.sent_since_report = true;
                self.last_sent_rtp_ts = timestamp;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => self.on_socket_error(e),
        }
    }

    /// Rebuilds what depends on the codec: the codec itself, the resamplers
    /// at its clock rate, the jitter buffer (whose packets were the old
    /// codec's), the receive statistics and the DTMF clock.
    fn switch_codec(
        &mut self,
        kind: CodecKind,
        payload_type: u8,
        telephone_event: Option<(u8, u32)>,
    ) -> Result<(), MediaError> {
        let codec = kind.build(self.config.ptime_ms)?;
        let parts = CodecParts::new(&*codec, &*self.source, &*self.sink, telephone_event, self.config.ptime_ms)?;
        self.capture_resampler = parts.capture_resampler;
        self.playback_resampler = parts.playback_resampler;
        self.jitter = parts.jitter;
        self.rx_stats = parts.rx_stats;
        self.dtmf_out = parts.dtmf_out;
        self.capture_fifo.clear();
        self.codec = codec;
        self.config.codec = kind;
        self.config.payload_type = payload_type;
        self.config.telephone_event = telephone_event;
        // A new talkspurt in the new format; the stream (SSRC, sequence) goes on.
        self.marker_next = true;
        Ok(())
    }

    fn capture_frame(&mut self) {
        let frame = self.codec.frame_samples();
        let rate = self.source.sample_rate();
        if rate != self.capture_resampler.input_rate() {
            // The device was replaced by one at another rate.
            match Resampler::new(rate, self.codec.sample_rate()) {
                Ok(r) => self.capture_resampler = r,
                Err(e) => self.emit(MediaEvent::Error(e.to_string())),
            }
        }
        let chunk = (rate * self.config.ptime_ms / 1000) as usize;
        self.capture_raw.resize(chunk, 0.0);
        self.source.read(&mut self.capture_raw);
        if let Err(e) = self.capture_resampler.process(&self.capture_raw, &mut self.capture_fifo) {
            tracing::debug!("{e}");
        }
        if self.capture_fifo.len() < frame {
            // The resampler's start-up delay: pad once, it does not recur.
            let missing = frame - self.capture_fifo.len();
            self.capture_fifo.splice(0..0, std::iter::repeat_n(0.0, missing));
        }
        self.pcm_out.clear();
        self.pcm_out.extend(self.capture_fifo.drain(..frame).map(to_i16));
        // Do not let a resampler that runs ahead build up latency.
        if self.capture_fifo.len() > frame * 2 {
            let excess = self.capture_fifo.len() - frame;
            self.capture_fifo.drain(..excess);
        }
        if self.muted || self.held {
            self.pcm_out.fill(0);
        }
    }

    fn on_tick(&mut self, now: Instant, sockets: &RtpSockets) {
        while let Some(e) = self.source.poll_event() {
            self.emit(MediaEvent::Device(e));
        }
        while let Some(e) = self.sink.poll_event() {
            self.emit(MediaEvent::Device(e));
        }

        // Send.
        self.capture_frame();
        let frame = self.codec.frame_samples();
        if self.config.direction.sends() {
            let te = self.config.telephone_event;
            match (te, self.dtmf_out.tick(self.timestamp)) {
                (Some((pt, _)), Some(packet)) => {
                    self.payload.clear();
                    self.payload.extend_from_slice(&TelephoneEvent::to_bytes(packet.event));
                    self.send_rtp(&sockets.rtp, packet.marker, pt, packet.timestamp);
                    // Audio resumes as a new talkspurt after the digit.
                    self.marker_next = true;
                }
                _ => {
                    self.payload.clear();
                    match self.codec.encode(&self.pcm_out, &mut self.payload) {
                        // Opus DTX: a payload of 2 bytes or less need not be sent.
                        Ok(()) if self.payload.len() <= 2 && matches!(self.config.codec, CodecKind::Opus { .. }) => {
                            self.marker_next = true;
                        }
                        Ok(()) => {
                            let marker = std::mem::take(&mut self.marker_next);
                            self.send_rtp(&sockets.rtp, marker, self.config.payload_type, self.timestamp);
                        }
                        Err(e) => tracing::debug!("encoding: {e}"),
                    }
                }
            }
        }
        // RTP time moves by the frame's ticks, not its samples (half of them for G.722).
        self.timestamp = self.timestamp.wrapping_add(self.codec.frame_ticks());

        // Play.
        self.pcm_in.clear();
        if self.config.direction.receives() {
            self.jitter.pop(now, self.codec.as_mut(), &mut self.pcm_in);
        } else {
            self.pcm_in.resize(frame, 0);
        }
        let out_rate = self.sink.sample_rate();
        if out_rate != self.playback_resampler.output_rate() {
            match Resampler::new(self.codec.sample_rate(), out_rate) {
                Ok(r) => self.playback_resampler = r,
                Err(e) => self.emit(MediaEvent::Error(e.to_string())),
            }
        }
        self.playback_f32.clear();
        self.playback_f32.extend(self.pcm_in.iter().map(|&s| s as f32 / 32768.0));
        self.playback_out.clear();
        if let Err(e) = self.playback_resampler.process(&self.playback_f32, &mut self.playback_out) {
            tracing::debug!("{e}");
        }
        self.sink.write(&self.playback_out);

        if now >= self.next_rtcp {
            self.send_rtcp(&sockets.rtcp, &sockets.rtp, false);
            // RFC 3550 §6.3.5: randomise the interval (0.5–1.5 ×) so peers do not synchronise.
            let spread = 2500 + (random_u32() % 5000) as u64;
            self.next_rtcp = now + Duration::from_millis(spread);
        }
        if now >= self.next_stats {
            self.next_stats = now + self.config.stats_interval;
            let stats = self.stats(now);
            self.emit(MediaEvent::Stats(stats.clone()));
            self.stats_tx.send_replace(stats);
        }
    }

    fn send_rtcp(&mut self, rtcp_socket: &Option<UdpSocket>, rtp_socket: &UdpSocket, bye: bool) {
        let since_epoch = Instant::now().saturating_duration_since(self.epoch);
        let mut reports = Vec::new();
        if let Some(ssrc) = self.remote_ssrc {
            reports.push(self.rx_stats.report_block(ssrc, since_epoch));
        }
        let mut packets = Vec::with_capacity(3);
        if self.sent_since_report {
            packets.push(RtcpPacket::SenderReport(SenderReport {
                ssrc: self.ssrc,
                ntp_timestamp: rtp::ntp_timestamp(SystemTime::now()),
                rtp_timestamp: self.timestamp,
                packet_count: self.packets_sent as u32,
                octet_count: self.bytes_sent as u32,
                reports,
            }));
        } else {
            packets.push(RtcpPacket::ReceiverReport(ReceiverReport { ssrc: self.ssrc, reports }));
        }
        self.sent_since_report = false;
        packets.push(RtcpPacket::SourceDescription(vec![SdesChunk {
            ssrc: self.ssrc,
            items: vec![(1, self.config.cname.clone())],
        }]));
        if bye {
            packets.push(RtcpPacket::Bye { sources: vec![self.ssrc], reason: None });
        }
        let mut buf = Vec::with_capacity(256);
        rtp::write_rtcp(&packets, &mut buf);
        let socket = match (self.config.rtcp_mux, rtcp_socket) {
            (false, Some(s)) => s,
            _ => rtp_socket,
        };
        if let Err(e) = socket.try_send_to(&buf, self.remote_rtcp) {
            tracing::debug!("RTCP to {}: {e}", self.remote_rtcp);
        }
    }

    fn stats(&self, now: Instant) -> CallStats {
        let jb = self.jitter.stats();
        let expected = self.rx_stats.expected();
        let lost = self.rx_stats.cumulative_lost();
        let mut stats = CallStats {
            codec: self.config.codec.to_string(),
            duration_ms: now.saturating_duration_since(self.epoch).as_millis() as u64,
            packets_sent: self.packets_sent,
            bytes_sent: self.bytes_sent,
            packets_received: self.rx_stats.received() as u64,
            packets_lost: lost,
            loss_percent: if expected == 0 { 0.0 } else { (lost.max(0) as f64 * 100.0 / expected as f64).min(100.0) },
            jitter_ms: self.rx_stats.jitter_ms(),
            rtt_ms: self.rtt_ms,
            jitter_buffer_ms: self.jitter.delay_ms().max(0.0),
            jitter_buffer_target_ms: self.jitter.target_ms(),
            remote_loss_percent: self.remote_loss,
            remote_jitter_ms: self.remote_jitter,
            frames_concealed: jb.frames_concealed,
            frames_fec: jb.frames_fec,
            frames_underrun: jb.frames_underrun,
            packets_late: jb.packets_late,
            foreign_packets: self.foreign_packets,
            mos: 0.0,
            quality: Quality::Good,
        };
        stats.rate();
        stats
    }

    fn stop(&mut self, sockets: &RtpSockets) -> Result<CallStats, MediaError> {
        self.send_rtcp(&sockets.rtcp, &sockets.rtp, true);
        let stats = self.stats(Instant::now());
        self.stats_tx.send_replace(stats.clone());
        let source = self.source.finish();
        self.sink.finish()?;
        source?;
        Ok(stats)
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_heard_last_is_kept_to_the_millisecond() {
        let epoch = Instant::now();
        let heard = Heard::new(epoch);
        assert_eq!(heard.last(), None);
        heard.mark(epoch);
        assert_eq!(heard.last(), Some(epoch));
        heard.mark(epoch + Duration::from_millis(2500));
        // An older packet handled late never moves it back.
        heard.mark(epoch + Duration::from_millis(100));
        assert_eq!(heard.last(), Some(epoch + Duration::from_millis(2500)));
    }

    #[test]
    fn directions_from_sdp() {
        assert_eq!(Direction::from_sdp("sendonly"), Some(Direction::SendOnly));
        assert_eq!(Direction::from_sdp(" Inactive "), Some(Direction::Inactive));
        assert_eq!(Direction::from_sdp("bogus"), None);
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert!(Direction::RecvOnly.receives() && !Direction::RecvOnly.sends());
    }

    #[test]
    fn quality_from_figures() {
        let mut good = CallStats { jitter_buffer_ms: 20.0, jitter_ms: 2.0, rtt_ms: Some(20.0), ..Default::default() };
        good.rate();
        assert_eq!(good.quality, Quality::Good, "{good:?}");
        let mut fair = CallStats { loss_percent: 5.0, jitter_ms: 20.0, jitter_buffer_ms: 60.0, ..Default::default() };
        fair.rate();
        assert_eq!(fair.quality, Quality::Fair, "{fair:?}");
        let mut poor = CallStats { loss_percent: 12.0, rtt_ms: Some(600.0), ..Default::default() };
        poor.rate();
        assert_eq!(poor.quality, Quality::Poor, "{poor:?}");
    }

    #[tokio::test]
    async fn binds_an_even_rtp_port_with_rtcp_next_to_it() {
        let sockets = bind_rtp("127.0.0.1".parse().unwrap()).await.unwrap();
        let port = sockets.port();
        assert_eq!(port % 2, 0);
        assert_eq!(sockets.rtcp.as_ref().unwrap().local_addr().unwrap().port(), port + 1);
    }
}

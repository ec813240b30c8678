//! SDP (RFC 4566) and the RFC 3264 offer/answer model for the one audio
//! stream of a call: Opus/48000/2, G722/8000 (16 kHz audio under an 8000 Hz
//! RTP clock, RFC 3551 §4.5.2), PCMA/8000, PCMU/8000 and telephone-event
//! (RFC 4733) at the audio codec's clock rate.
//!
//! We offer in [`Codec::PREFERENCE`] order — Opus (the best, where the peer
//! has it), G.722 (wideband, what desk phones and Asterisk have), then G.711 —
//! and answer with the first codec of the offer's order that we do, so a desk
//! phone that offers G.722 first gets G.722.
//!
//! The user agent calls:
//! - [`build_offer`] for an outgoing INVITE (or a re-INVITE: bump the version,
//!   set the direction to `SendOnly` to hold);
//! - [`answer_offer`] for an incoming offer: the answer to send and what was
//!   agreed ([`NegotiatedAudio`]); `Err(SdpError::NoCommonCodec)` means 488;
//! - [`accept_answer`] with the offer it sent and the answer it received.
//!
//! Answers follow RFC 3264 §6: one m= line per offered m= line in the same
//! order, streams we do not take (video, a second audio stream, no common
//! codec) rejected with port 0, the offer's payload type numbers kept, the
//! direction mirrored and narrowed by what we want, and the c= address the
//! one the user agent found the peer can reach (see
//! [`crate::sip::transport::local_addr_toward`]). An offer with
//! `c=0.0.0.0` (RFC 2543 hold) is treated as "do not send".

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// What is wrong with a session description or an offer/answer exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("malformed SDP line {line}: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("SDP is not UTF-8 text")]
    NotUtf8,
    #[error("no audio format in common (offered: {offered})")]
    NoCommonCodec { offered: String },
    #[error("the answer rejected the audio stream")]
    Rejected,
    #[error("the audio stream has no connection address (c=)")]
    NoConnection,
}

/// `o=` (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub address: String,
}

/// `c=`: the address, kept as text (it may be a host name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6`.
    pub addr_type: String,
    pub address: String,
}

impl Connection {
    pub fn new(ip: IpAddr) -> Connection {
        Connection { addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_owned(), address: ip.to_string() }
    }

    /// The IP address, if the address is one (multicast `/ttl` suffixes dropped).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next().and_then(|a| a.parse().ok())
    }
}

/// `a=name[:value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub port_count: Option<u16>,
    pub protocol: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub attributes: Vec<Attribute>,
    /// Other lines (`i=`, `b=`, `k=`), type letter and value, in order.
    pub other: Vec<(char, String)>,
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    /// Other session lines (`i= u= e= p= b= t= r= z= k=`), type letter and value, in order.
    pub other: Vec<(char, String)>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The other side's view of the same stream.
    pub fn reversed(self) -> Direction {
        Direction::from_flags(self.receives(), self.sends())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        match s {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RTP payload format: number, encoding, clock rate, channels, fmtp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadFormat {
    pub pt: u8,
    /// As in rtpmap (`opus`, `PCMU`, `telephone-event`); compare case-insensitively.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

impl PayloadFormat {
    /// Whether this is the codec named `encoding` (compared
    /// case-insensitively) at `clock_rate`, whatever its payload type or fmtp.
    pub fn is_codec(&self, encoding: &str, clock_rate: u32) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding) && self.clock_rate == clock_rate
    }
}

/// The codecs this user agent can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus/48000/2 (RFC 7587).
    Opus,
    /// G.722, static payload type 9, rtpmap `G722/8000` (its audio is 16 kHz).
    G722,
    /// G.711 μ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// What we offer, best first: Opus, G.722, then G.711 (A-law before μ-law: A-law
    /// is the G.711 of Europe, Russia and Ukraine).
    pub const PREFERENCE: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcma, Codec::Pcmu];

    fn encoding(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::G722 => "G722",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48000,
            // The RTP clock, not the sample rate (RFC 3551 §4.5.2).
            Codec::G722 | Codec::Pcmu | Codec::Pcma => 8000,
        }
    }

    fn matches(self, f: &PayloadFormat) -> bool {
        f.is_codec(self.encoding(), self.clock_rate()) && (self != Codec::Opus || f.channels == 2)
    }

    /// The payload type this UA offers the codec with.
    fn offer_pt(self) -> u8 {
        match self {
            Codec::Opus => 111,
            Codec::G722 => 9,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    fn format(self, pt: u8) -> PayloadFormat {
        PayloadFormat {
            pt,
            encoding: self.encoding().to_owned(),
            clock_rate: self.clock_rate(),
            channels: if self == Codec::Opus { 2 } else { 1 },
            fmtp: (self == Codec::Opus).then(|| OPUS_FMTP.to_owned()),
        }
    }
}

/// What this UA asks of an Opus sender: in-band FEC and DTX.
const OPUS_FMTP: &str = "useinbandfec=1;usedtx=1";
/// RFC 4733 events 0–15 (DTMF digits, * # A–D).
const DTMF_EVENTS: &str = "0-16";

/// The local side of the audio stream and what we want from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// Codecs in order of preference (used when we offer).
    pub codecs: Vec<Codec>,
    /// Offer and accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// Packet time in milliseconds (a=ptime).
    pub ptime: u32,
    /// What we want: `SendRecv`, or `SendOnly` to put the call on hold.
    pub direction: Direction,
    /// Mid-call: the codec the media runs with (encoding, clock rate). An
    /// answer keeps it while the new offer still lists it, whatever the
    /// offer's order, so both sides go on agreeing.
    pub in_use: Option<(String, u32)>,
}

impl Default for AudioConfig {
    fn default() -> AudioConfig {
        AudioConfig {
            codecs: Codec::PREFERENCE.to_vec(),
            telephone_event: true,
            ptime: 20,
            direction: Direction::SendRecv,
            in_use: None,
        }
    }
}

/// Where our RTP is received and the identity of our session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address the peer can reach (c=), and the RTP port (m=).
    pub rtp: SocketAddr,
    pub session_id: u64,
    /// Increment for every new offer or answer that changes something (RFC 3264 §8).
    pub session_version: u64,
}

/// The agreed audio stream, from our point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedAudio {
    /// Where to send RTP; `None` when we must not send (hold, inactive, c=0.0.0.0).
    pub remote: Option<SocketAddr>,
    /// The codec to send with (and expect), with the payload type number agreed.
    pub codec: PayloadFormat,
    /// telephone-event at the codec's clock rate, if both sides do it.
    pub telephone_event: Option<PayloadFormat>,
    /// The peer's a=ptime, if given.
    pub remote_ptime: Option<u32>,
    /// Our direction: whether we send and/or receive.
    pub direction: Direction,
}

impl MediaDescription {
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        self.attributes.iter().find(|a| a.name.eq_ignore_ascii_case(name)).map(|a| a.value.as_deref())
    }

    /// The direction attribute of this stream, else the session's, else sendrecv.
    pub fn direction(&self, session: &SessionDescription) -> Direction {
        let find = |attrs: &[Attribute]| attrs.iter().find_map(|a| Direction::parse(&a.name));
        find(&self.attributes).or_else(|| find(&session.attributes)).unwrap_or(Direction::SendRecv)
    }

    /// The payload formats of m=, with rtpmap/fmtp applied and the static
    /// types of RFC 3551 filled in (0 PCMU, 8 PCMA, 9 G722, 18 G729, ...).
    pub fn payload_formats(&self) -> Vec<PayloadFormat> {
        let mut out = Vec::new();
        for f in &self.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            let rtpmap = self.attributes.iter().filter(|a| a.name.eq_ignore_ascii_case("rtpmap")).find_map(|a| {
                let v = a.value.as_deref()?;
                let (num, rest) = v.split_once(' ')?;
                if num.parse::<u8>().ok()? != pt {
                    return None;
                }
                let mut parts = rest.trim().split('/');
                let encoding = parts.next()?.to_owned();
                let clock_rate = parts.next()?.parse().ok()?;
                let channels = parts.next().map_or(Some(1), |c| c.parse().ok())?;
                Some((encoding, clock_rate, channels))
            });
            let (encoding, clock_rate, channels) = match rtpmap.or_else(|| static_payload(pt)) {
                Some(m) => m,
                None => continue,
            };
            let fmtp = self.attributes.iter().filter(|a| a.name.eq_ignore_ascii_case("fmtp")).find_map(|a| {
                let (num, params) = a.value.as_deref()?.split_once(' ')?;
                (num.parse::<u8>().ok()? == pt).then(|| params.trim().to_owned())
            });
            out.push(PayloadFormat { pt, encoding, clock_rate, channels, fmtp });
        }
        out
    }

    /// The connection of this stream (media-level c= over session-level).
    pub fn connection_in<'a>(&'a self, session: &'a SessionDescription) -> Option<&'a Connection> {
        self.connection.as_ref().or(session.connection.as_ref())
    }
}

fn static_payload(pt: u8) -> Option<(String, u32, u8)> {
    let (name, rate) = match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some((name.to_owned(), rate, 1))
}

impl SessionDescription {
    /// Parses SDP text (CRLF or LF line ends).
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut other = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();
        let mut seen_version = false;
        for (i, raw) in text.split('\n').enumerate() {
            let line_no = i + 1;
            let bad = |reason: &'static str| SdpError::Malformed { line: line_no, reason };
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let mut chars = line.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(bad("expected 'x=value'"));
            };
            let value = chars.as_str();
            if !seen_version {
                if kind != 'v' || value != "0" {
                    return Err(bad("must start with v=0"));
                }
                seen_version = true;
                continue;
            }
            match (kind, media.last_mut()) {
                ('v', _) => return Err(bad("v= repeated")),
                ('o', None) => origin = Some(parse_origin(value).ok_or(bad("malformed o="))?),
                ('s', None) => session_name = Some(value.to_owned()),
                ('c', None) => connection = Some(parse_connection(value).ok_or(bad("malformed c="))?),
                ('c', Some(m)) => m.connection = Some(parse_connection(value).ok_or(bad("malformed c="))?),
                ('a', None) => attributes.push(parse_attribute(value)),
                ('a', Some(m)) => m.attributes.push(parse_attribute(value)),
                ('m', _) => media.push(parse_media(value).ok_or(bad("malformed m="))?),
                (k, None) if k.is_ascii_lowercase() => other.push((k, value.to_owned())),
                (k, Some(m)) if k.is_ascii_lowercase() => m.other.push((k, value.to_owned())),
                _ => return Err(bad("unknown line type")),
            }
        }
        if !seen_version {
            return Err(SdpError::Malformed { line: 1, reason: "empty session description" });
        }
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::Malformed { line: 2, reason: "no o= line" })?,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            other,
            attributes,
            media,
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    /// The first audio stream that is not rejected (port 0), with its index.
    pub fn audio(&self) -> Option<(usize, &MediaDescription)> {
        self.media.iter().enumerate().find(|(_, m)| m.media == "audio" && m.port != 0)
    }
}

fn parse_origin(v: &str) -> Option<Origin> {
    let parts: Vec<&str> = v.split(' ').collect();
    let [username, id, version, "IN", _addr_type, address] = parts.as_slice() else { return None };
    Some(Origin {
        username: (*username).to_owned(),
        session_id: id.parse().ok()?,
        session_version: version.parse().ok()?,
        address: (*address).to_owned(),
    })
}

fn parse_connection(v: &str) -> Option<Connection> {
    let parts: Vec<&str> = v.split(' ').collect();
    let ["IN", addr_type, address] = parts.as_slice() else { return None };
    if !matches!(*addr_type, "IP4" | "IP6") || address.is_empty() {
        return None;
    }
    Some(Connection { addr_type: (*addr_type).to_owned(), address: (*address).to_owned() })
}

fn parse_attribute(v: &str) -> Attribute {
    match v.split_once(':') {
        Some((name, value)) => Attribute { name: name.to_owned(), value: Some(value.to_owned()) },
        None => Attribute { name: v.to_owned(), value: None },
    }
}

fn parse_media(v: &str) -> Option<MediaDescription> {
    let mut parts = v.split(' ').filter(|p| !p.is_empty());
    let media = parts.next()?.to_owned();
    let port_text = parts.next()?;
    let (port, port_count) = match port_text.split_once('/') {
        Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
        None => (port_text.parse().ok()?, None),
    };
    let protocol = parts.next()?.to_owned();
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    Some(MediaDescription {
        media,
        port,
        port_count,
        protocol,
        formats,
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    })
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c=IN {} {}\r\n", self.addr_type, self.address)
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{v}\r\n", self.name),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

impl fmt::Display for SessionDescription {
    /// RFC 4566 order: v o s i u e p c b t r z k a, then each m i c b k a.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        let addr_type = if o.address.contains(':') { "IP6" } else { "IP4" };
        write!(
            f,
            "v=0\r\no={} {} {} IN {addr_type} {}\r\ns={}\r\n",
            o.username, o.session_id, o.session_version, o.address, self.session_name
        )?;
        for (k, v) in self.other.iter().filter(|(k, _)| "iuep".contains(*k)) {
            write!(f, "{k}={v}\r\n")?;
        }
        if let Some(c) = &self.connection {
            c.fmt(f)?;
        }
        for (k, v) in self.other.iter().filter(|(k, _)| !"iuep".contains(*k)) {
            write!(f, "{k}={v}\r\n")?;
        }
        for a in &self.attributes {
            a.fmt(f)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.protocol)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            for (k, v) in m.other.iter().filter(|(k, _)| *k == 'i') {
                write!(f, "{k}={v}\r\n")?;
            }
            if let Some(c) = &m.connection {
                c.fmt(f)?;
            }
            for (k, v) in m.other.iter().filter(|(k, _)| *k != 'i') {
                write!(f, "{k}={v}\r\n")?;
            }
            for a in &m.attributes {
                a.fmt(f)?;
            }
        }
        Ok(())
    }
}

fn session_shell(local: &LocalMedia) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "clinicdesk".to_owned(),
            session_id: local.session_id,
            session_version: local.session_version,
            address: local.rtp.ip().to_string(),
        },
        session_name: "ClinicDesk".to_owned(),
        connection: Some(Connection::new(local.rtp.ip())),
        other: vec![('t', "0 0".to_owned())],
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

fn push_format(m: &mut MediaDescription, f: &PayloadFormat) {
    m.formats.push(f.pt.to_string());
    let channels = if f.channels > 1 { format!("/{}", f.channels) } else { String::new() };
    m.attributes.push(Attribute {
        name: "rtpmap".into(),
        value: Some(format!("{} {}/{}{channels}", f.pt, f.encoding, f.clock_rate)),
    });
    if let Some(fmtp) = &f.fmtp {
        m.attributes.push(Attribute { name: "fmtp".into(), value: Some(format!("{} {fmtp}", f.pt)) });
    }
}

fn telephone_event(pt: u8, clock_rate: u32) -> PayloadFormat {
    PayloadFormat { pt, encoding: "telephone-event".into(), clock_rate, channels: 1, fmtp: Some(DTMF_EVENTS.into()) }
}

fn audio_section(port: u16) -> MediaDescription {
    MediaDescription {
        media: "audio".into(),
        port,
        port_count: None,
        protocol: "RTP/AVP".into(),
        formats: Vec::new(),
        connection: None,
        attributes: Vec::new(),
        other: Vec::new(),
    }
}

/// An offer with one audio stream: our codecs in preference order, then
/// telephone-event at 8000 Hz (101), also beside Opus. Offering it at
/// 48000 Hz too would be RFC 4733's letter, but peers then pick that one and
/// some (baresip) never decode it; 8000 Hz beside Opus is what they send themselves.
pub fn build_offer(local: &LocalMedia, cfg: &AudioConfig) -> SessionDescription {
    let mut sdp = session_shell(local);
    let mut m = audio_section(local.rtp.port());
    for codec in &cfg.codecs {
        push_format(&mut m, &codec.format(codec.offer_pt()));
    }
    if cfg.telephone_event {
        push_format(&mut m, &telephone_event(101, 8000));
    }
    m.attributes.push(Attribute { name: "ptime".into(), value: Some(cfg.ptime.to_string()) });
    m.attributes.push(Attribute { name: cfg.direction.as_str().into(), value: None });
    sdp.media.push(m);
    sdp
}

fn is_telephone_event(f: &PayloadFormat) -> bool {
    f.encoding.eq_ignore_ascii_case("telephone-event")
}

/// The telephone-event format to use with `codec`: the one at its clock rate
/// (RFC 4733 §7.1.1), else one at 8000 Hz — what baresip and many PBXes offer
/// beside Opus; the media engine times events in the format's own clock.
fn telephone_event_for(formats: &[PayloadFormat], codec: &PayloadFormat) -> Option<PayloadFormat> {
    let te = |rate: u32| formats.iter().find(|f| is_telephone_event(f) && f.clock_rate == rate).cloned();
    te(codec.clock_rate).or_else(|| te(8000))
}

fn remote_addr(m: &MediaDescription, sdp: &SessionDescription) -> Result<Option<SocketAddr>, SdpError> {
    let c = m.connection_in(sdp).ok_or(SdpError::NoConnection)?;
    let ip = c.ip().ok_or(SdpError::NoConnection)?;
    // RFC 2543 hold: c=0.0.0.0 means "do not send to me".
    if ip == IpAddr::V4(Ipv4Addr::UNSPECIFIED) {
        return Ok(None);
    }
    Ok(Some(SocketAddr::new(ip, m.port)))
}

/// Answers an offer (see the module docs). `Err(NoCommonCodec)` → answer 488.
pub fn answer_offer(
    offer: &SessionDescription,
    local: &LocalMedia,
    cfg: &AudioConfig,
) -> Result<(SessionDescription, NegotiatedAudio), SdpError> {
    let mut answer = session_shell(local);
    let mut agreed: Option<NegotiatedAudio> = None;
    let mut offered_names = Vec::new();
    for m in &offer.media {
        let formats = m.payload_formats();
        offered_names.extend(formats.iter().map(|f| format!("{}/{}", f.encoding, f.clock_rate)));
        // The codec in use if the offer still lists it, else the first in the
        // offer's order that we do (RFC 3264 §6.1 recommends keeping the offer's order).
        let ours = |f: &&PayloadFormat| cfg.codecs.iter().any(|c| c.matches(f));
        let in_use = |f: &&PayloadFormat| cfg.in_use.as_ref().is_some_and(|(name, rate)| f.is_codec(name, *rate));
        let chosen = (m.media == "audio" && m.port != 0 && m.protocol == "RTP/AVP" && agreed.is_none())
            .then(|| formats.iter().filter(ours).find(in_use).or_else(|| formats.iter().find(ours)))
            .flatten();
        let Some(codec) = chosen else {
            // Rejected stream: port 0, same media and protocol, one format (RFC 3264 §6).
            let mut rejected = audio_section(0);
            rejected.media = m.media.clone();
            rejected.protocol = m.protocol.clone();
            rejected.formats = m.formats.iter().take(1).cloned().collect();
            answer.media.push(rejected);
            continue;
        };
        let mut codec = codec.clone();
        if let Some(ours) = cfg.codecs.iter().find(|c| c.matches(&codec)) {
            // Our fmtp says what we want to receive; the number stays the offer's.
            codec.fmtp = ours.format(codec.pt).fmtp;
        }
        let te = if cfg.telephone_event { telephone_event_for(&formats, &codec) } else { None };
        let offer_dir = m.direction(offer);
        let remote = remote_addr(m, offer)?;
        let mut ours = offer_dir.reversed();
        ours = Direction::from_flags(
            ours.sends() && cfg.direction.sends() && remote.is_some(),
            ours.receives() && cfg.direction.receives(),
        );
        let mut section = audio_section(local.rtp.port());
        push_format(&mut section, &codec);
        if let Some(te) = &te {
            push_format(&mut section, &PayloadFormat { fmtp: Some(DTMF_EVENTS.into()), ..te.clone() });
        }
        section.attributes.push(Attribute { name: "ptime".into(), value: Some(cfg.ptime.to_string()) });
        section.attributes.push(Attribute { name: ours.as_str().into(), value: None });
        answer.media.push(section);
        agreed = Some(NegotiatedAudio {
            remote: if ours.sends() { remote } else { None },
            codec,
            telephone_event: te,
            remote_ptime: m.attribute("ptime").flatten().and_then(|p| p.trim().parse().ok()),
            direction: ours,
        });
    }
    match agreed {
        Some(a) => Ok((answer, a)),
        None => Err(SdpError::NoCommonCodec { offered: offered_names.join(" ") }),
    }
}

/// Reads the answer to an offer we sent.
pub fn accept_answer(offer: &SessionDescription, answer: &SessionDescription) -> Result<NegotiatedAudio, SdpError> {
    let (index, ours) = offer.audio().ok_or(SdpError::Rejected)?;
    let m = answer.media.get(index).ok_or(SdpError::Rejected)?;
    if m.port == 0 || m.media != "audio" {
        return Err(SdpError::Rejected);
    }
    let offered = ours.payload_formats();
    let formats = m.payload_formats();
    let codec = formats
        .iter()
        .find(|f| !is_telephone_event(f) && offered.iter().any(|o| o.is_codec(&f.encoding, f.clock_rate)))
        .cloned()
        .ok_or_else(|| SdpError::NoCommonCodec {
            offered: formats.iter().map(|f| format!("{}/{}", f.encoding, f.clock_rate)).collect::<Vec<_>>().join(" "),
        })?;
    let te = telephone_event_for(&formats, &codec);
    let remote = remote_addr(m, answer)?;
    let ours_wanted = ours.direction(offer);
    let theirs = m.direction(answer).reversed();
    let direction = Direction::from_flags(
        ours_wanted.sends() && theirs.sends() && remote.is_some(),
        ours_wanted.receives() && theirs.receives(),
    );
    Ok(NegotiatedAudio {
        remote: if direction.sends() { remote } else { None },
        codec,
        telephone_event: te,
        remote_ptime: m.attribute("ptime").flatten().and_then(|p| p.trim().parse().ok()),
        direction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> LocalMedia {
        LocalMedia { rtp: "192.0.2.10:40000".parse().unwrap(), session_id: 42, session_version: 1 }
    }

    const ASTERISK_OFFER: &str = "v=0\r\no=- 1234 1234 IN IP4 198.51.100.5\r\ns=Asterisk\r\nc=IN IP4 198.51.100.5\r\n\
t=0 0\r\nm=audio 12000 RTP/AVP 0 8 96 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=maxptime:150\r\na=sendrecv\r\nm=video 0 RTP/AVP 31\r\n";

    #[test]
    fn parses_and_serialises_round_trip() {
        let sdp = SessionDescription::parse(ASTERISK_OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.origin.session_id, 1234);
        assert_eq!(sdp.connection.as_ref().unwrap().ip(), Some("198.51.100.5".parse().unwrap()));
        let (i, audio) = sdp.audio().unwrap();
        assert_eq!((i, audio.port), (0, 12000));
        let f = audio.payload_formats();
        assert_eq!(f.len(), 4);
        assert_eq!((f[2].pt, f[2].encoding.as_str(), f[2].clock_rate, f[2].channels), (96, "opus", 48000, 2));
        assert_eq!(f[2].fmtp.as_deref(), Some("useinbandfec=1"));
        assert_eq!(audio.direction(&sdp), Direction::SendRecv);
        assert_eq!(sdp.to_string(), ASTERISK_OFFER);
        assert!(SessionDescription::parse(b"o=x\r\n").is_err());
        assert!(SessionDescription::parse(b"v=0\r\nbogus\r\n").is_err());
        assert!(SessionDescription::parse(b"v=0\r\nm=audio x RTP/AVP 0\r\n").is_err());
    }

    #[test]
    fn static_payload_types_need_no_rtpmap() {
        // RFC 4475 bodies: m=audio 49217 RTP/AVP 0 12.
        let sdp = SessionDescription::parse(
            b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n\
m=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\na=rtpmap:31 LPC\r\n",
        )
        .unwrap();
        let f = sdp.media[0].payload_formats();
        assert_eq!(f.len(), 1, "12 (QCELP) is not in our table");
        assert_eq!(f[0].encoding, "PCMU");
    }

    #[test]
    fn offer_lists_our_codecs_with_telephone_events() {
        let offer = build_offer(&local(), &AudioConfig::default());
        let text = offer.to_string();
        assert!(text.contains("c=IN IP4 192.0.2.10\r\n"), "{text}");
        assert!(text.contains("m=audio 40000 RTP/AVP 111 9 8 0 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:9 G722/8000\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1;usedtx=1\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"), "{text}");
        assert!(!text.contains("telephone-event/48000"), "{text}");
        assert!(text.contains("a=ptime:20\r\na=sendrecv\r\n"), "{text}");
        assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), offer);
    }

    #[test]
    fn answer_keeps_offer_numbers_order_and_rejects_other_streams() {
        let offer = SessionDescription::parse(ASTERISK_OFFER.as_bytes()).unwrap();
        let (answer, agreed) = answer_offer(&offer, &local(), &AudioConfig::default()).unwrap();
        // The offer's first codec we do is PCMU; telephone-event/8000 matches its rate.
        assert_eq!((agreed.codec.pt, agreed.codec.encoding.as_str()), (0, "PCMU"));
        assert_eq!(agreed.telephone_event.as_ref().map(|t| t.pt), Some(101));
        assert_eq!(agreed.remote, Some("198.51.100.5:12000".parse().unwrap()));
        assert_eq!(agreed.remote_ptime, Some(20));
        assert_eq!(agreed.direction, Direction::SendRecv);
        assert_eq!(answer.media.len(), 2);
        assert_eq!(answer.media[0].formats, ["0", "101"]);
        assert_eq!(answer.media[0].port, 40000);
        assert_eq!((answer.media[1].media.as_str(), answer.media[1].port), ("video", 0));
        assert_eq!(answer.connection.as_ref().unwrap().address, "192.0.2.10");
        // Opus first in the offer: Opus with its 48 kHz telephone-event, under the offer's number.
        let opus_first = ASTERISK_OFFER
            .replace("RTP/AVP 0 8 96 101", "RTP/AVP 96 0 8 101 97")
            .replace("a=fmtp:101 0-16\r\n", "a=fmtp:101 0-16\r\na=rtpmap:97 telephone-event/48000\r\n");
        let offer = SessionDescription::parse(opus_first.as_bytes()).unwrap();
        let (answer, agreed) = answer_offer(&offer, &local(), &AudioConfig::default()).unwrap();
        assert_eq!((agreed.codec.pt, agreed.codec.fmtp.as_deref()), (96, Some("useinbandfec=1;usedtx=1")));
        assert_eq!(agreed.telephone_event.unwrap().pt, 97);
        assert!(answer.to_string().contains("a=rtpmap:96 opus/48000/2\r\n"));
    }

    /// What a desk phone (and Asterisk with `allow=g722,ulaw,alaw`) offers: G.722 first,
    /// under its static number, with only the static types listed.
    #[test]
    fn a_g722_first_offer_gets_g722_at_its_8000_hz_rtp_clock() {
        let desk_phone = "v=0\r\no=- 7 7 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n\
m=audio 5004 RTP/AVP 9 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";
        let offer = SessionDescription::parse(desk_phone.as_bytes()).unwrap();
        let (answer, agreed) = answer_offer(&offer, &local(), &AudioConfig::default()).unwrap();
        assert_eq!((agreed.codec.pt, agreed.codec.encoding.as_str(), agreed.codec.clock_rate), (9, "G722", 8000));
        // telephone-event runs at the codec's RTP clock, 8000, not the 16 kHz of its audio.
        assert_eq!(agreed.telephone_event.as_ref().map(|t| (t.pt, t.clock_rate)), Some((101, 8000)));
        let text = answer.to_string();
        assert!(text.contains("m=audio 40000 RTP/AVP 9 101\r\na=rtpmap:9 G722/8000\r\n"), "{text}");
        // The media engine takes it as 16 kHz audio under an 8000 Hz clock.
        let kind = crate::media::CodecKind::from_rtpmap(&agreed.codec.encoding, agreed.codec.clock_rate).unwrap();
        assert_eq!((kind.sample_rate(), kind.clock_rate()), (16000, 8000));
        // Offered after G.711, G.722 is not taken: the offer's order rules.
        let g711_first = desk_phone.replace("RTP/AVP 9 0 8 101", "RTP/AVP 0 9 101");
        let offer = SessionDescription::parse(g711_first.as_bytes()).unwrap();
        assert_eq!(answer_offer(&offer, &local(), &AudioConfig::default()).unwrap().1.codec.pt, 0);
        // Our G.722-first offer, answered with G.722, is read back as G.722.
        let g722_only = AudioConfig { codecs: vec![Codec::G722, Codec::Pcmu], ..AudioConfig::default() };
        let ours = build_offer(&local(), &g722_only);
        let (answer, _) = answer_offer(&ours, &local(), &AudioConfig::default()).unwrap();
        let accepted = accept_answer(&ours, &answer).unwrap();
        assert_eq!((accepted.codec.pt, accepted.codec.encoding.as_str()), (9, "G722"));
    }

    #[test]
    fn directions_mirror_and_hold() {
        let offer_with =
            |dir: &str| SessionDescription::parse(ASTERISK_OFFER.replace("a=sendrecv", dir).as_bytes()).unwrap();
        let cfg = AudioConfig::default();
        let dir = |o: &SessionDescription, cfg: &AudioConfig| answer_offer(o, &local(), cfg).unwrap().1;
        assert_eq!(dir(&offer_with("a=sendonly"), &cfg).direction, Direction::RecvOnly);
        let a = dir(&offer_with("a=recvonly"), &cfg);
        assert_eq!((a.direction, a.remote.is_some()), (Direction::SendOnly, true));
        let a = dir(&offer_with("a=inactive"), &cfg);
        assert_eq!((a.direction, a.remote), (Direction::Inactive, None));
        // We hold: only send (music on hold would be ours), never receive.
        let hold = AudioConfig { direction: Direction::SendOnly, ..AudioConfig::default() };
        assert_eq!(dir(&offer_with("a=sendrecv"), &hold).direction, Direction::SendOnly);
        let (answer, _) = answer_offer(&offer_with("a=sendrecv"), &local(), &hold).unwrap();
        assert!(answer.to_string().contains("a=sendonly\r\n"));
        // RFC 2543 hold: c=0.0.0.0.
        let old_hold =
            SessionDescription::parse(ASTERISK_OFFER.replace("c=IN IP4 198.51.100.5", "c=IN IP4 0.0.0.0").as_bytes())
                .unwrap();
        let a = dir(&old_hold, &cfg);
        assert_eq!((a.direction, a.remote), (Direction::RecvOnly, None));
    }

    #[test]
    fn opus_with_telephone_event_at_8000_as_baresip_answers() {
        let ours = build_offer(&local(), &AudioConfig::default());
        let answer = "v=0\r\no=- 1 2 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nt=0 0\r\n\
m=audio 20000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\na=sendrecv\r\n";
        let agreed = accept_answer(&ours, &SessionDescription::parse(answer.as_bytes()).unwrap()).unwrap();
        assert_eq!(agreed.codec.encoding, "opus");
        assert_eq!(agreed.telephone_event.map(|t| (t.pt, t.clock_rate)), Some((101, 8000)));
        // Offered at both rates, the one at the codec's rate wins.
        let both = answer.replace("m=audio 20000 RTP/AVP 111 101", "m=audio 20000 RTP/AVP 111 101 110")
            + "a=rtpmap:110 telephone-event/48000\r\n";
        let (_, agreed) =
            answer_offer(&SessionDescription::parse(both.as_bytes()).unwrap(), &local(), &AudioConfig::default())
                .unwrap();
        assert_eq!(agreed.telephone_event.map(|t| (t.pt, t.clock_rate)), Some((110, 48000)));
    }

    #[test]
    fn a_mid_call_answer_keeps_the_codec_in_use_while_it_is_offered() {
        let local = LocalMedia { rtp: "192.0.2.10:40000".parse().unwrap(), session_id: 7, session_version: 1 };
        let offer = SessionDescription::parse(ASTERISK_OFFER.as_bytes()).unwrap();
        let first = answer_offer(&offer, &local, &AudioConfig::default()).unwrap().1.codec;
        let offered: Vec<_> = offer.audio().unwrap().1.payload_formats();
        let other = offered.iter().find(|f| f.encoding != first.encoding && f.encoding != "telephone-event").unwrap();
        let cfg = AudioConfig { in_use: Some((other.encoding.clone(), other.clock_rate)), ..AudioConfig::default() };
        assert_eq!(answer_offer(&offer, &local, &cfg).unwrap().1.codec.encoding, other.encoding);
        // No longer offered: the offer's first again.
        let gone = AudioConfig { in_use: Some(("G729".into(), 8000)), ..AudioConfig::default() };
        assert_eq!(answer_offer(&offer, &local, &gone).unwrap().1.codec.encoding, first.encoding);
    }

    #[test]
    fn no_common_codec_and_answers_to_our_offer() {
        let g729 = ASTERISK_OFFER.replace("RTP/AVP 0 8 96 101", "RTP/AVP 18").replace(
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n",
            "",
        );
        let offer = SessionDescription::parse(g729.as_bytes()).unwrap();
        assert!(matches!(answer_offer(&offer, &local(), &AudioConfig::default()), Err(SdpError::NoCommonCodec { .. })));

        let ours = build_offer(&local(), &AudioConfig::default());
        let their_local = LocalMedia { rtp: "198.51.100.7:30000".parse().unwrap(), session_id: 9, session_version: 9 };
        let pcma_only = AudioConfig { codecs: vec![Codec::Pcma], ..AudioConfig::default() };
        let (answer, _) = answer_offer(&ours, &their_local, &pcma_only).unwrap();
        let agreed = accept_answer(&ours, &answer).unwrap();
        assert_eq!((agreed.codec.pt, agreed.codec.encoding.as_str()), (8, "PCMA"));
        assert_eq!(agreed.telephone_event.map(|t| t.pt), Some(101));
        assert_eq!(agreed.remote, Some("198.51.100.7:30000".parse().unwrap()));
        let mut rejected = answer.clone();
        rejected.media[0].port = 0;
        assert_eq!(accept_answer(&ours, &rejected), Err(SdpError::Rejected));
    }
}

//! A call's life in the user agent: ringing at the operator with the caller's
//! card, answering with an SDP answer, placing calls (digest challenges,
//! ringback or early media, cancelling while it rings), hold and resume by
//! re-INVITE, answering the peer's re-INVITE and UPDATE, blind transfer by
//! REFER with its NOTIFY progress, DTMF, and hanging up from either side.
//!
//! The flows are methods of [`Ua`] in the files beside this one (they send
//! through its transaction layer and report through its phone link);
//! [`Call`] is what one call remembers, and the pure helpers the flows share.
//! Nothing here waits for the peer: each step reacts to one message and
//! returns, so a slow or silent peer never holds up another call.

use std::net::SocketAddr;

use tokio::time::Instant;

use crate::crm::caller_number;
use crate::media::{AudioSink, AudioSource, CodecKind, MediaConfig, MediaError, MediaHandle, RtpSockets, TonePlayer};
use crate::sip::auth::DigestClient;
use crate::sip::dialog::Dialog;
use crate::sip::headers::HeaderName;
use crate::sip::message::{Method, Request};
use crate::sip::sdp::{Direction, LocalMedia, NegotiatedAudio, PayloadFormat, SdpError, SessionDescription};
use crate::sip::transaction::TransactionId;
use crate::sip::transport::Peer;
use crate::sip::uri::Uri;

/// A call's microphone and headset (or what stands in for them).
pub(super) type AudioEnds = (Box<dyn AudioSource>, Box<dyn AudioSink>);

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
    /// Incoming, ringing at the operator.
    Ringing,
    /// Outgoing, INVITE sent (before or after the first provisional answer).
    Calling,
    /// Answered (held or not).
    Active,
    /// Outgoing, given up before the answer: its end is reported, the CANCEL
    /// (or the BYE for a 2xx that crosses it) is still to be completed.
    Cancelling,
}

/// What one call remembers.
pub(super) struct Call {
    pub(super) state: CallState,
    /// The first hop of its signalling (the caller's address, or our proxy).
    pub(super) peer: Peer,
    pub(super) answered: Option<Instant>,
    /// 1 for the first call of this run, 2 for the next (recording names).
    pub(super) index: u32,
    /// The initial INVITE: the caller's, or ours as last sent (with auth).
    pub(super) invite: Request,
    /// The server transaction of an incoming INVITE (its answer and ACK).
    pub(super) invite_tx: Option<TransactionId>,
    pub(super) remote_offer: Option<SessionDescription>,
    pub(super) provisional: bool,
    pub(super) cancel_pending: bool,
    pub(super) auth: Option<DigestClient>,
    pub(super) auth_rounds: u8,
    pub(super) ringing_reported: bool,
    pub(super) end_reported: bool,
    pub(super) dialog: Option<Dialog>,
    pub(super) local_media: Option<LocalMedia>,
    pub(super) rtp: Option<RtpSockets>,
    /// An offer of ours waiting for its answer.
    pub(super) our_offer: Option<SessionDescription>,
    /// The last SDP we sent (offer or answer): re-offers reuse its formats.
    pub(super) last_local_sdp: Option<SessionDescription>,
    pub(super) media: Option<MediaHandle>,
    pub(super) media_generation: u64,
    pub(super) held: bool,
    /// The codec the media runs with: a re-offer (hold) lists it first, so a
    /// PBX does not switch codecs (and silence its music on hold) on the way.
    pub(super) codec_in_use: Option<PayloadFormat>,
    pub(super) reinvite_out: bool,
    /// A re-INVITE of the peer we answered, until its ACK.
    pub(super) reinvite_tx: Option<TransactionId>,
    pub(super) transfer_target: Option<String>,
    /// In an attended transfer, the call (to the target) the caller's new call replaces.
    pub(super) transfer_replaces: Option<String>,
    /// A call placed because the other side of this one transferred us (REFER): its id.
    pub(super) referred_to: Option<String>,
    /// For a call placed on a REFER: the call whose dialog hears how it goes (NOTIFY).
    pub(super) referred_from: Option<String>,
    /// We completed a transfer asked of us: the call's end is a transfer, whoever hangs up.
    pub(super) transferred_away: bool,
    pub(super) ringback: Option<(TonePlayer, Box<dyn AudioSource>)>,
    /// The ring timeout and auto-answer of an incoming call, cancelled once it stops ringing.
    pub(super) ring_timers: Vec<u64>,
    /// The media as last negotiated is sendrecv (neither side holds).
    pub(super) media_sendrecv: bool,
    /// When the media timeout's clock last started (see `media_timeout.rs`).
    pub(super) media_watched_since: Instant,
    /// The timer of the next media check.
    pub(super) media_check: Option<u64>,
    /// The targets of an outgoing call that was redirected (3xx).
    pub(super) redirects: Option<super::redirect::Redirects>,
}

impl Call {
    pub(super) fn new(state: CallState, peer: Peer, invite: Request, index: u32) -> Call {
        Call {
            state,
            peer,
            answered: None,
            index,
            invite,
            invite_tx: None,
            remote_offer: None,
            provisional: false,
            cancel_pending: false,
            auth: None,
            auth_rounds: 0,
            ringing_reported: false,
            end_reported: false,
            dialog: None,
            local_media: None,
            rtp: None,
            our_offer: None,
            last_local_sdp: None,
            media: None,
            media_generation: 0,
            held: false,
            codec_in_use: None,
            reinvite_out: false,
            reinvite_tx: None,
            transfer_target: None,
            transfer_replaces: None,
            referred_to: None,
            referred_from: None,
            transferred_away: false,
            ringback: None,
            ring_timers: Vec::new(),
            media_sendrecv: false,
            media_watched_since: Instant::now(),
            media_check: None,
            redirects: None,
        }
    }

    pub(super) fn is_cancelling(&self) -> bool {
        self.state == CallState::Cancelling
    }

    pub(super) fn talk_seconds(&self) -> u64 {
        self.answered.map_or(0, |a| a.elapsed().as_secs())
    }
}

/// The media figures' direction for an SDP direction.
pub(super) fn media_direction(d: Direction) -> crate::media::Direction {
    match d {
        Direction::SendRecv => crate::media::Direction::SendRecv,
        Direction::SendOnly => crate::media::Direction::SendOnly,
        Direction::RecvOnly => crate::media::Direction::RecvOnly,
        Direction::Inactive => crate::media::Direction::Inactive,
    }
}

/// The peer's RTP address in its SDP (even when we must not send to it now).
pub(super) fn remote_rtp(sdp: &SessionDescription) -> Option<SocketAddr> {
    let (_, m) = sdp.audio()?;
    let ip = m.connection_in(sdp)?.ip()?;
    Some(SocketAddr::new(ip, m.port))
}

/// The peer's RTCP address (`a=rtcp:port [IN IP4 addr]`, RFC 3605), if given.
pub(super) fn remote_rtcp(sdp: &SessionDescription, rtp: SocketAddr) -> Option<SocketAddr> {
    let (_, m) = sdp.audio()?;
    let value = m.attribute("rtcp")??;
    let mut parts = value.split_whitespace();
    let port: u16 = parts.next()?.parse().ok()?;
    let ip = parts.nth(2).and_then(|a| a.parse().ok()).unwrap_or(rtp.ip());
    Some(SocketAddr::new(ip, port))
}

/// The media engine's configuration for what SDP agreed.
pub(super) fn media_config(neg: &NegotiatedAudio, remote: &SessionDescription) -> Result<MediaConfig, MediaError> {
    let mut codec = CodecKind::from_rtpmap(&neg.codec.encoding, neg.codec.clock_rate)?;
    if let CodecKind::Opus { stereo } = &mut codec {
        // The peer's own fmtp for the format says whether it wants stereo.
        let theirs = remote
            .audio()
            .and_then(|(_, m)| m.payload_formats().into_iter().find(|f| f.pt == neg.codec.pt).and_then(|f| f.fmtp));
        *stereo = theirs.is_some_and(|f| f.split(';').any(|p| p.trim().eq_ignore_ascii_case("stereo=1")));
    }
    let rtp = neg.remote.or_else(|| remote_rtp(remote)).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 9)));
    let mut cfg = MediaConfig::new(rtp, codec, neg.codec.pt);
    cfg.remote_rtcp = remote_rtcp(remote, rtp);
    cfg.telephone_event = neg.telephone_event.as_ref().map(|t| (t.pt, t.clock_rate));
    cfg.ptime_ms = neg.remote_ptime.filter(|p| [10, 20, 40, 60].contains(p)).unwrap_or(20);
    cfg.direction = media_direction(neg.direction);
    Ok(cfg)
}

/// A copy of `sdp` with a new version and `direction` on its audio stream.
pub(super) fn with_direction(sdp: &SessionDescription, direction: Direction) -> SessionDescription {
    let mut out = sdp.clone();
    out.origin.session_version = out.origin.session_version.wrapping_add(1);
    const NAMES: [&str; 4] = ["sendrecv", "sendonly", "recvonly", "inactive"];
    out.attributes.retain(|a| !NAMES.contains(&a.name.as_str()));
    for m in out.media.iter_mut().filter(|m| m.media == "audio" && m.port != 0) {
        m.attributes.retain(|a| !NAMES.contains(&a.name.as_str()));
        m.attributes.push(crate::sip::sdp::Attribute { name: direction.as_str().to_owned(), value: None });
    }
    out
}

/// The same codec under the same payload type (fmtp aside).
pub(super) fn same_format(a: &PayloadFormat, b: &PayloadFormat) -> bool {
    a.pt == b.pt && a.is_codec(&b.encoding, b.clock_rate)
}

/// Moves `codec`'s format to the front of the audio stream's list (matched by
/// name and clock rate, or by its static payload type), leaving the rest in order.
pub(super) fn put_codec_first(sdp: &mut SessionDescription, codec: &PayloadFormat) {
    for m in sdp.media.iter_mut().filter(|m| m.media == "audio" && m.port != 0) {
        let found = m
            .payload_formats()
            .into_iter()
            .find(|f| f.is_codec(&codec.encoding, codec.clock_rate))
            .map(|f| f.pt.to_string());
        let Some(pt) = found else { continue };
        if let Some(at) = m.formats.iter().position(|f| *f == pt) {
            let first = m.formats.remove(at);
            m.formats.insert(0, first);
        }
    }
}

/// Whether an offer puts us on hold (sendonly, inactive, or the RFC 2543 c=0.0.0.0).
pub(super) fn offer_holds(offer: &SessionDescription) -> bool {
    let Some((_, m)) = offer.audio() else { return false };
    let silent = m.connection_in(offer).and_then(|c| c.ip()).is_some_and(|ip| ip.is_unspecified());
    silent || !m.direction(offer).receives()
}

/// The status line of a `message/sipfrag` NOTIFY body (`SIP/2.0 200 OK`).
pub(super) fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let mut parts = line.split_whitespace();
    if !parts.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    parts.next()?.parse().ok().filter(|s| (100..700).contains(s))
}

/// A DTMF digit from an INFO body (`application/dtmf-relay`: `Signal=5`, or `application/dtmf`: `5`).
pub(super) fn info_digit(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    let value = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then_some(v.trim())
        })
        .unwrap_or(text.trim());
    let c = value.chars().next()?;
    let c = c.to_ascii_uppercase();
    (value.chars().count() == 1 && (c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'))).then_some(c)
}

/// The caller's number (normalised) and display name: P-Asserted-Identity
/// from the PBX when present, else From.
pub(super) fn caller_identity(req: &Request, country: crate::crm::Country) -> (String, Option<String>) {
    let from = req.headers.from().ok();
    let asserted = req.headers.p_asserted_identity().ok().and_then(|v| v.into_iter().next());
    let who = asserted.as_ref().or(from.as_ref());
    let raw = who.map(|n| uri_user(&n.uri)).unwrap_or_default();
    let display = who
        .and_then(|n| n.display.clone())
        .or_else(|| from.as_ref().and_then(|f| f.display.clone()))
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty());
    let number = if raw.is_empty() { "anonymous".to_owned() } else { caller_number(&raw, country) };
    (number, display)
}

/// The user part of a SIP URI (decoded), the number of a tel URI.
pub(super) fn uri_user(uri: &Uri) -> String {
    match uri {
        Uri::Sip(u) => u.user_decoded().map(|u| u.into_owned()).unwrap_or_default(),
        Uri::Tel(t) => t.number.clone(),
        Uri::Other(_) => String::new(),
    }
}

pub(super) fn session_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (nanos as u64) & 0x7fff_ffff_ffff
}

/// `record.wav` for the first call, `record-2.wav` for the second...
pub(super) fn numbered(path: &std::path::Path, index: u32) -> std::path::PathBuf {
    if index <= 1 {
        return path.to_owned();
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    path.with_file_name(name)
}

pub(super) fn sdp_body(req_or_resp_body: &[u8]) -> Option<Result<SessionDescription, SdpError>> {
    (!req_or_resp_body.is_empty()).then(|| SessionDescription::parse(req_or_resp_body))
}

/// The Refer-To of an attended transfer: the target's address with the dialog
/// to replace, from the target's point of view (its tag is the to-tag).
pub(super) fn replaces_uri(target: &Dialog) -> Uri {
    let mut uri = target.remote.uri.clone();
    if let Uri::Sip(u) = &mut uri {
        u.params = Default::default();
        let value = format!("{};to-tag={};from-tag={}", target.id.call_id, target.id.remote_tag, target.id.local_tag);
        u.headers = vec![("Replaces".to_owned(), escape_uri_header(&value))];
    }
    uri
}

/// Escapes a URI header value (RFC 3261 §25.1 hvalue: unreserved and `[]/?:+$` stay).
pub(super) fn escape_uri_header(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for b in value.bytes() {
        let plain = b.is_ascii_alphanumeric() || b"-_.!~*'()[]/?:+$".contains(&b);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3261 §9.1: the CANCEL for an INVITE (same branch, Request-URI, Call-ID, From, To, CSeq number).
pub(super) fn cancel_for(invite: &Request) -> Request {
    let mut cancel = Request::new(Method::Cancel, invite.uri.clone());
    if let Ok(via) = invite.headers.top_via() {
        cancel.headers.push_typed(HeaderName::Via, &via);
    }
    for h in invite.headers.iter() {
        if matches!(h.name, HeaderName::Route | HeaderName::From | HeaderName::To | HeaderName::CallId) {
            cancel.headers.push(h.name.clone(), h.value.clone());
        }
    }
    cancel.headers.push(HeaderName::MaxForwards, "70");
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(1);
    cancel.headers.push(HeaderName::CSeq, format!("{seq} CANCEL"));
    cancel
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::sdp::{AudioConfig, answer_offer, build_offer};

    #[test]
    fn sipfrag_and_info_bodies() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(sipfrag_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 2000 OK"), None);
        assert_eq!(info_digit(b"Signal=5\r\nDuration=160\r\n"), Some('5'));
        assert_eq!(info_digit(b"Signal= #\r\n"), Some('#'));
        assert_eq!(info_digit(b"7"), Some('7'));
        assert_eq!(info_digit(b"Signal=55"), None);
        assert_eq!(info_digit(&[0xff]), None);
    }

    #[test]
    fn hold_offer_keeps_formats_and_bumps_the_version() {
        let local = LocalMedia { rtp: "192.0.2.10:40000".parse().unwrap(), session_id: 7, session_version: 3 };
        let base = build_offer(&local, &AudioConfig::default());
        let held = with_direction(&base, Direction::SendOnly);
        assert_eq!(held.origin.session_version, 4);
        let (_, m) = held.audio().unwrap();
        assert_eq!(m.direction(&held), Direction::SendOnly);
        assert_eq!(m.formats, base.audio().unwrap().1.formats);
        assert_eq!(m.attributes.iter().filter(|a| a.name == "sendonly" || a.name == "sendrecv").count(), 1);
        assert!(offer_holds(&held));
        assert!(!offer_holds(&base));
    }

    #[test]
    fn the_hold_offer_lists_the_codec_in_use_first() {
        let local = LocalMedia { rtp: "192.0.2.10:40000".parse().unwrap(), session_id: 7, session_version: 3 };
        let base = build_offer(&local, &AudioConfig::default());
        let before = base.audio().unwrap().1.payload_formats();
        assert!(before[0].encoding.eq_ignore_ascii_case("opus"), "{before:?}");
        let pcmu = before.iter().find(|f| f.encoding == "PCMU").unwrap().clone();
        let mut held = with_direction(&base, Direction::SendOnly);
        put_codec_first(&mut held, &pcmu);
        let (_, m) = held.audio().unwrap();
        assert_eq!(m.formats[0], "0", "{:?}", m.formats);
        // Nothing lost, the others in their order.
        let mut rest: Vec<_> = base.audio().unwrap().1.formats.iter().filter(|f| *f != "0").cloned().collect();
        rest.insert(0, "0".into());
        assert_eq!(m.formats, rest);
    }

    #[test]
    fn media_config_follows_the_agreement() {
        let local = LocalMedia { rtp: "192.0.2.10:40000".parse().unwrap(), session_id: 7, session_version: 1 };
        let offer = build_offer(&local, &AudioConfig::default());
        let mut remote_text = String::from_utf8(offer.to_bytes()).unwrap();
        remote_text = remote_text.replace("40000", "50000").replace("192.0.2.10", "198.51.100.2");
        remote_text.push_str("a=rtcp:50011\r\n");
        let remote = SessionDescription::parse(remote_text.as_bytes()).unwrap();
        let mine = LocalMedia { rtp: "192.0.2.11:40002".parse().unwrap(), session_id: 8, session_version: 1 };
        let (_, neg) = answer_offer(&remote, &mine, &AudioConfig::default()).unwrap();
        let cfg = media_config(&neg, &remote).unwrap();
        assert_eq!(cfg.remote_rtp, "198.51.100.2:50000".parse().unwrap());
        assert_eq!(cfg.remote_rtcp, Some("198.51.100.2:50011".parse().unwrap()));
        assert_eq!(cfg.codec, CodecKind::Opus { stereo: false });
        assert_eq!((cfg.payload_type, cfg.telephone_event), (111, Some((101, 8000))));
        assert_eq!(cfg.direction, crate::media::Direction::SendRecv);
    }

    #[test]
    fn cancel_matches_its_invite() {
        let text = "INVITE sip:200@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5070;rport;branch=z9hG4bKabc\r\n\
Route: <sip:proxy;lr>\r\nFrom: <sip:100@x>;tag=a\r\nTo: <sip:200@x>\r\nCall-ID: c@x\r\nCSeq: 2 INVITE\r\n\
Authorization: Digest x=1\r\nContent-Length: 0\r\n\r\n";
        let Ok(crate::sip::message::Message::Request(inv)) = crate::sip::message::Message::parse(text.as_bytes())
        else {
            panic!("request")
        };
        let c = cancel_for(&inv);
        assert_eq!(c.headers.top_via().unwrap().branch(), Some("z9hG4bKabc"));
        assert_eq!(c.headers.cseq().unwrap().to_string(), "2 CANCEL");
        assert_eq!(c.headers.get(&HeaderName::Route), Some("<sip:proxy;lr>"));
        assert_eq!(c.headers.get(&HeaderName::Authorization), None);
        assert_eq!(c.uri, inv.uri);
    }

    #[test]
    fn attended_transfer_names_the_dialog_to_replace_from_the_targets_side() {
        let text = "INVITE sip:300@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa\r\n\
From: <sip:100@pbx>;tag=ours\r\nTo: <sip:300@pbx>\r\nCall-ID: b@x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKa\r\nFrom: <sip:100@pbx>;tag=ours\r\n\
To: <sip:300@pbx>;tag=theirs\r\nCall-ID: b@x\r\nCSeq: 1 INVITE\r\nContact: <sip:300@192.0.2.3>\r\n\
Content-Length: 0\r\n\r\n";
        use crate::sip::message::Message;
        let (Ok(Message::Request(inv)), Ok(Message::Response(ok))) =
            (Message::parse(text.as_bytes()), Message::parse(ok.as_bytes()))
        else {
            panic!("parse")
        };
        let d = Dialog::as_uac(&inv, &ok).unwrap();
        let uri = replaces_uri(&d);
        assert_eq!(uri.to_string(), "sip:300@pbx?Replaces=b%40x%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours");
        let back = crate::sip::headers::Replaces::parse(&uri.as_sip().unwrap().header("Replaces").unwrap()).unwrap();
        assert_eq!((back.call_id.as_str(), back.to_tag.as_str(), back.from_tag.as_str()), ("b@x", "theirs", "ours"));
    }

    #[test]
    fn numbered_recordings() {
        let p = std::path::Path::new("/tmp/rec.wav");
        assert_eq!(numbered(p, 1), p);
        assert_eq!(numbered(p, 3), std::path::Path::new("/tmp/rec-3.wav"));
    }
}

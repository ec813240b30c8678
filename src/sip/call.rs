//! A call's life in the user agent: ringing at the operator with the caller's
//! card, answering with an SDP answer, placing calls (digest challenges,
//! ringback or early media, cancelling while it rings), hold and resume by
//! re-INVITE, answering the peer's re-INVITE and UPDATE, blind transfer by
//! REFER with its NOTIFY progress, DTMF, and hanging up from either side.
//!
//! The flows are methods of [`Ua`] (they send through its transaction layer
//! and report through its phone link); [`Call`] is what one call remembers.
//! Nothing here waits for the peer: each step reacts to one message and
//! returns, so a slow or silent peer never holds up another call.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::auth::DigestClient;
use super::dialog::{Dialog, DialogError, DialogId};
use super::headers::{HeaderName, NameAddr};
use super::message::{Method, Request, Response};
use super::sdp::{
    AudioConfig, Direction, LocalMedia, NegotiatedAudio, PayloadFormat, SdpError, SessionDescription, accept_answer,
    answer_offer, build_offer,
};
use super::transaction::{TransactionId, TuEvent};
use super::transport::Peer;
use super::ua::{AudioChoice, Pending, Timer, Ua, put_top_via};
use super::uri::{Host, SipUri, Uri};
use super::validate::stateless_response;
use crate::media::{
    AudioSink, AudioSource, CodecKind, MediaConfig, MediaError, MediaHandle, MediaSession, NullSink, NullSource,
    RtpSockets, TeeSource, TonePattern, TonePlayer, WavSink, WavSource, bind_rtp, open_devices, play_tone,
};
use crate::phone::{Availability, EndReason, PhoneEvent};
use crate::store::card::caller_number;

/// A call's microphone and headset (or what stands in for them).
type AudioEnds = (Box<dyn AudioSource>, Box<dyn AudioSink>);

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
}

impl Call {
    fn new(state: CallState, peer: Peer, invite: Request, index: u32) -> Call {
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
        }
    }

    pub(super) fn is_cancelling(&self) -> bool {
        self.state == CallState::Cancelling
    }

    fn talk_seconds(&self) -> u64 {
        self.answered.map_or(0, |a| a.elapsed().as_secs())
    }
}

/// The media figures' direction for an SDP direction.
fn media_direction(d: Direction) -> crate::media::Direction {
    match d {
        Direction::SendRecv => crate::media::Direction::SendRecv,
        Direction::SendOnly => crate::media::Direction::SendOnly,
        Direction::RecvOnly => crate::media::Direction::RecvOnly,
        Direction::Inactive => crate::media::Direction::Inactive,
    }
}

/// The peer's RTP address in its SDP (even when we must not send to it now).
fn remote_rtp(sdp: &SessionDescription) -> Option<SocketAddr> {
    let (_, m) = sdp.audio()?;
    let ip = m.connection_in(sdp)?.ip()?;
    Some(SocketAddr::new(ip, m.port))
}

/// The peer's RTCP address (`a=rtcp:port [IN IP4 addr]`, RFC 3605), if given.
fn remote_rtcp(sdp: &SessionDescription, rtp: SocketAddr) -> Option<SocketAddr> {
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
        m.attributes.push(super::sdp::Attribute { name: direction.as_str().to_owned(), value: None });
    }
    out
}

/// The same codec under the same payload type (fmtp aside).
fn same_format(a: &PayloadFormat, b: &PayloadFormat) -> bool {
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
fn offer_holds(offer: &SessionDescription) -> bool {
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
fn info_digit(body: &[u8]) -> Option<char> {
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
fn caller_identity(req: &Request, country: crate::crm::Country) -> (String, Option<String>) {
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
fn uri_user(uri: &Uri) -> String {
    match uri {
        Uri::Sip(u) => u.user_decoded().map(|u| u.into_owned()).unwrap_or_default(),
        Uri::Tel(t) => t.number.clone(),
        Uri::Other(_) => String::new(),
    }
}

fn session_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    (nanos as u64) & 0x7fff_ffff_ffff
}

/// `record.wav` for the first call, `record-2.wav` for the second...
fn numbered(path: &std::path::Path, index: u32) -> std::path::PathBuf {
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

fn sdp_body(req_or_resp_body: &[u8]) -> Option<Result<SessionDescription, SdpError>> {
    (!req_or_resp_body.is_empty()).then(|| SessionDescription::parse(req_or_resp_body))
}

impl Ua {
    fn audio_config(&self, direction: Direction) -> AudioConfig {
        AudioConfig { codecs: self.cfg.codecs.clone(), telephone_event: true, ptime: 20, direction, in_use: None }
    }

    /// A response to `req` that belongs to a call's dialog: our tag, Contact,
    /// the Record-Route copied (RFC 3261 §12.1.1), Allow.
    fn dialog_response(&self, req: &Request, status: u16, tag: &str, peer: &Peer) -> Response {
        let mut resp = Response::for_request(req, status);
        resp.set_to_tag(tag);
        if status > 100 && status < 300 {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push(HeaderName::RecordRoute, rr);
            }
            resp.headers.push_typed(HeaderName::Contact, &self.contact(peer));
            resp.headers.push(HeaderName::Allow, self.policy.allow_header());
        }
        resp
    }

    /// The microphone and headset (or files, or nothing) for a call's media at `rate`.
    fn audio_ends(&self, index: u32, rate: u32) -> Result<AudioEnds, MediaError> {
        match &self.cfg.audio {
            AudioChoice::Silent => Ok((Box::new(NullSource { rate }), Box::new(NullSink { rate }))),
            AudioChoice::Devices { input, output } => {
                let (source, sink) = open_devices(input.as_deref(), output.as_deref())?;
                Ok((Box::new(source), Box::new(sink)))
            }
            AudioChoice::Files { play, record, record_sent } => {
                let mut source: Box<dyn AudioSource> = match play {
                    Some(p) => Box::new(WavSource::open(p)?.looped(true)),
                    None => Box::new(NullSource { rate }),
                };
                if let Some(p) = record_sent {
                    // What is sent is kept at the rate the source gives it (the played file's).
                    let sent = WavSink::create(&numbered(p, index), source.sample_rate())?;
                    source = Box::new(TeeSource::new(source, Box::new(sent)));
                }
                let sink: Box<dyn AudioSink> = match record {
                    Some(p) => Box::new(WavSink::create(&numbered(p, index), rate)?),
                    None => Box::new(NullSink { rate }),
                };
                Ok((source, sink))
            }
        }
    }

    /// Starts the call's media for what SDP agreed, or steers the running one.
    async fn apply_media(&mut self, call_id: &str, neg: &NegotiatedAudio, remote: &SessionDescription) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let codec_changed = call.codec_in_use.as_ref().is_some_and(|c| !same_format(c, &neg.codec));
        call.codec_in_use = Some(neg.codec.clone());
        if let Some(media) = &call.media {
            media.set_direction(media_direction(neg.direction));
            if let Some(addr) = neg.remote.or_else(|| remote_rtp(remote)) {
                media.set_remote(addr, remote_rtcp(remote, addr));
            }
            if codec_changed {
                // A mid-call offer moved to another codec (or payload type): the
                // running media follows, or each side would be deaf to the other.
                match media_config(neg, remote) {
                    Ok(c) => {
                        tracing::info!(call_id, codec = %c.codec, pt = c.payload_type, "the call's codec changes");
                        media.set_codec(c.codec, c.payload_type, c.telephone_event);
                    }
                    Err(e) => tracing::warn!(call_id, error = %e, "the new codec cannot be used; the old one goes on"),
                }
            }
            return;
        }
        let Some(sockets) = call.rtp.take() else { return };
        let index = call.index;
        let ringback = call.ringback.take();
        let config = match media_config(neg, remote) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "no media for this call");
                return;
            }
        };
        let rate = config.codec.sample_rate();
        let ends = match ringback {
            Some((player, source)) => match player.stop().await {
                Some(sink) => Ok((source, sink)),
                None => self.audio_ends(index, rate),
            },
            None => self.audio_ends(index, rate),
        };
        let (source, sink) = match ends {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "no sound for this call");
                (
                    Box::new(NullSource { rate }) as Box<dyn AudioSource>,
                    Box::new(NullSink { rate }) as Box<dyn AudioSink>,
                )
            }
        };
        match MediaSession::start(config, sockets, source, sink) {
            Ok((handle, mut events)) => {
                let Some(call) = self.calls.get_mut(call_id) else { return };
                call.media_generation += 1;
                let generation = call.media_generation;
                call.media = Some(handle);
                let tx = self.internal.clone();
                let id = call_id.to_owned();
                tokio::spawn(async move {
                    while let Some(event) = events.recv().await {
                        let msg = super::ua::Internal::Media { call_id: id.clone(), generation, event };
                        if tx.send(msg).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(call_id, error = %e, "the call's media did not start"),
        }
    }

    /// Binds the call's RTP sockets toward `peer`; the address for SDP and the sockets.
    async fn bind_media(&self, peer: SocketAddr) -> Result<(LocalMedia, RtpSockets), MediaError> {
        let sockets = bind_rtp(self.local_ip_toward(peer)).await?;
        let rtp = SocketAddr::new(self.media_ip(peer), sockets.port());
        Ok((LocalMedia { rtp, session_id: session_id(), session_version: 1 }, sockets))
    }

    /// Stops a call's sound and reports its end (once); the call stays known.
    async fn report_end(&mut self, call_id: &str, reason: EndReason) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.end_reported {
            return;
        }
        call.end_reported = true;
        let ring_timers = std::mem::take(&mut call.ring_timers);
        let media = call.media.take();
        let ringback = call.ringback.take();
        call.rtp = None;
        let duration_s = call.talk_seconds();
        for t in ring_timers {
            self.cancel_timer(t);
        }
        let mut stats = None;
        if let Some(media) = media {
            match media.stop().await {
                Ok(s) => stats = Some(s),
                Err(e) => tracing::warn!(call_id, error = %e, "media did not stop cleanly"),
            }
        }
        if let Some((player, mut source)) = ringback {
            if let Some(mut sink) = player.stop().await {
                let _ = sink.finish();
            }
            let _ = source.finish();
        }
        self.emit_end(call_id, stats, PhoneEvent::Ended { call_id: call_id.to_owned(), reason, duration_s });
    }

    /// Reports a call's end and forgets it.
    pub(super) async fn finish_call(&mut self, call_id: &str, reason: EndReason) {
        self.report_end(call_id, reason).await;
        self.calls.remove(call_id);
    }

    // ----- incoming calls -----

    pub(super) async fn on_new_invite(&mut self, id: TransactionId, req: Request, peer: Peer) {
        let taken = std::time::Instant::now();
        let refuse = |status: u16, reason: &str| stateless_response(&req, status, reason);
        if self.stopping {
            self.respond(id, refuse(503, "Service Unavailable - shutting down")).await;
            return;
        }
        if self.call_from_outside(peer.addr) {
            tracing::warn!(from = %peer.addr, "a call from outside the clinic's PBX refused");
            self.respond(id, refuse(403, "Forbidden - calls come through the clinic's PBX")).await;
            return;
        }
        let Ok(call_id) = req.headers.call_id().map(str::to_owned) else { return };
        if self.calls.contains_key(&call_id) {
            // The same call again by another path (RFC 3261 §8.2.2.2 merged request).
            self.respond(id, refuse(482, "Loop Detected")).await;
            return;
        }
        match self.availability {
            Availability::Available => {}
            Availability::Busy => {
                self.respond(id, refuse(486, "")).await;
                return;
            }
            Availability::DoNotDisturb => {
                self.respond(id, refuse(480, "")).await;
                return;
            }
        }
        let busy = self.calls.values().any(|c| c.state != CallState::Cancelling);
        if busy && self.cfg.when_in_call == super::ua::WhenInCall::Busy {
            self.respond(id, refuse(486, "")).await;
            return;
        }
        let offer = match sdp_body(&req.body) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                self.respond(id, refuse(400, &format!("Bad Request - SDP: {e}"))).await;
                return;
            }
        };
        if let Some(o) = &offer {
            // Refuse at once what we could never answer, before ringing the operator.
            let probe = LocalMedia { rtp: SocketAddr::from(([127, 0, 0, 1], 9)), session_id: 1, session_version: 1 };
            if let Err(e) = answer_offer(o, &probe, &self.audio_config(Direction::SendRecv)) {
                let mut resp = refuse(488, "");
                resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                self.respond(id, resp).await;
                return;
            }
        }
        let tag = super::new_tag();
        let dialog = match Dialog::as_uas(&req, &tag) {
            Ok(d) => d,
            Err(e) => {
                self.respond(id, refuse(400, &format!("Bad Request - {e}"))).await;
                return;
            }
        };
        let (number, display_name) = caller_identity(&req, self.cfg.country);
        let did = req.headers.to().ok().map(|t| uri_user(&t.uri)).filter(|d| !d.is_empty());
        let card_started = std::time::Instant::now();
        let card = self.card(&number, did.as_deref());
        let card_us = card_started.elapsed().as_micros() as u64;
        let ringing = self.dialog_response(&req, 180, &tag, &peer);
        self.call_counter += 1;
        let mut call = Call::new(CallState::Ringing, peer, req, self.call_counter);
        call.invite_tx = Some(id);
        call.remote_offer = offer;
        call.dialog = Some(dialog);
        self.calls.insert(call_id.clone(), call);
        self.respond(id, ringing).await;
        if self.cfg.timings {
            let handled_us = taken.elapsed().as_micros() as u64;
            let _ = self.timings.send(super::ua::IncomingTiming { call_id: call_id.clone(), card_us, handled_us });
        }
        self.emit(PhoneEvent::Incoming { call_id: call_id.clone(), from: number, display_name, did, card });
        self.start_ringtone(&call_id).await;
        let mut timers = vec![self.schedule(self.cfg.ring_timeout, Timer::RingTimeout { call_id: call_id.clone() })];
        if let Some(after) = self.cfg.auto_answer {
            timers.push(self.schedule(after, Timer::AutoAnswer { call_id: call_id.clone() }));
        }
        if let Some(call) = self.calls.get_mut(&call_id) {
            call.ring_timers = timers;
        }
    }

    /// Answers a ringing call. `hold_others`: the operator took a waiting
    /// call, so the one they were talking on goes on hold first (not so for
    /// auto-answer, which takes every call as it comes).
    pub(super) async fn answer(&mut self, call_id: &str, hold_others: bool) {
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state != CallState::Ringing {
            return;
        }
        let talking: Vec<String> = if !hold_others {
            Vec::new()
        } else {
            self.calls
                .iter()
                .filter(|(id, c)| id.as_str() != call_id && c.state == CallState::Active && !c.held)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for other in talking {
            self.hold(&other, true).await;
        }
        let Some(call) = self.calls.get(call_id) else { return };
        let (Some(tx), peer) = (call.invite_tx, call.peer.clone()) else { return };
        let (local, sockets) = match self.bind_media(peer.addr).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(call_id, error = %e, "cannot answer: no RTP socket");
                if let Some(call) = self.calls.get(call_id) {
                    let resp = stateless_response(&call.invite, 500, "Server Internal Error - no media");
                    self.respond(tx, resp).await;
                }
                self.finish_call(call_id, EndReason::Failed).await;
                return;
            }
        };
        let Some(call) = self.calls.get(call_id) else { return };
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let cfg = self.audio_config(Direction::SendRecv);
        let (body, negotiated) = match &call.remote_offer {
            Some(offer) => match answer_offer(offer, &local, &cfg) {
                Ok((answer, neg)) => (answer, Some(neg)),
                Err(e) => {
                    let mut resp = self.dialog_response(&call.invite, 488, &tag, &peer);
                    resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                    self.respond(tx, resp).await;
                    self.finish_call(call_id, EndReason::Failed).await;
                    return;
                }
            },
            // No offer in the INVITE: ours goes in the 2xx, the answer comes in the ACK.
            None => (build_offer(&local, &cfg), None),
        };
        let mut ok = self.dialog_response(&call.invite, 200, &tag, &peer);
        ok.set_body("application/sdp", body.to_bytes());
        let remote = call.remote_offer.clone();
        let ring_timers = self.calls.get_mut(call_id).map(|c| std::mem::take(&mut c.ring_timers)).unwrap_or_default();
        for t in ring_timers {
            self.cancel_timer(t);
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            call.state = CallState::Active;
            call.answered = Some(Instant::now());
            call.rtp = Some(sockets);
            call.local_media = Some(local);
            call.last_local_sdp = Some(body.clone());
            if negotiated.is_none() {
                call.our_offer = Some(body);
            }
        }
        self.respond(tx, ok).await;
        if let (Some(neg), Some(remote)) = (negotiated, remote) {
            self.apply_media(call_id, &neg, &remote).await;
        }
        self.emit(PhoneEvent::Answered { call_id: call_id.to_owned() });
    }

    /// The operator's "reject": a ringing call is declined with `status`
    /// (486 busy); any other is hung up.
    pub(super) async fn reject(&mut self, call_id: &str, status: u16) {
        match self.calls.get(call_id) {
            Some(call) if call.state == CallState::Ringing => self.decline(call_id, status).await,
            Some(_) => self.hangup(call_id).await,
            None => {}
        }
    }

    /// Declines a ringing call with `status` (486 busy, 603 decline, 480 unavailable).
    async fn decline(&mut self, call_id: &str, status: u16) {
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state != CallState::Ringing {
            return;
        }
        let Some(tx) = call.invite_tx else { return };
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let resp = self.dialog_response(&call.invite, status, &tag, &call.peer.clone());
        self.respond(tx, resp).await;
        let reason = if status == 480 { EndReason::NotAnswered } else { EndReason::Rejected };
        self.finish_call(call_id, reason).await;
    }

    pub(super) async fn ring_timeout(&mut self, call_id: &str) {
        if self.calls.get(call_id).is_some_and(|c| c.state == CallState::Ringing) {
            self.decline(call_id, 480).await;
        }
    }

    pub(super) async fn on_cancel(&mut self, id: TransactionId, req: &Request, cancels: Option<TransactionId>) {
        let Some(invite_tx) = cancels else {
            self.respond(id, stateless_response(req, 481, "")).await;
            return;
        };
        let found = self.calls.iter().find(|(_, c)| c.invite_tx == Some(invite_tx)).map(|(k, _)| k.clone());
        let mut ok = Response::for_request(req, 200);
        if let Some(tag) = found.as_ref().and_then(|k| self.calls.get(k)).and_then(|c| c.dialog.as_ref()) {
            ok.set_to_tag(&tag.id.local_tag);
        } else {
            ok = stateless_response(req, 200, "");
        }
        self.respond(id, ok).await;
        let Some(call_id) = found else { return };
        let Some(call) = self.calls.get(&call_id) else { return };
        if call.state != CallState::Ringing {
            return; // answered already: the CANCEL changes nothing (RFC 3261 §9.2)
        }
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let terminated = self.dialog_response(&call.invite, 487, &tag, &call.peer.clone());
        self.respond(invite_tx, terminated).await;
        self.finish_call(&call_id, EndReason::NotAnswered).await;
    }

    pub(super) async fn on_ack(&mut self, req: Request, invite: Option<TransactionId>) {
        let did = DialogId::of_incoming(&req);
        let found = self
            .calls
            .iter()
            .find(|(_, c)| {
                (invite.is_some() && (c.invite_tx == invite || c.reinvite_tx == invite))
                    || (did.is_some() && c.dialog.as_ref().map(|d| &d.id) == did.as_ref())
            })
            .map(|(k, _)| k.clone());
        let Some(call_id) = found else { return };
        let Some(call) = self.calls.get_mut(&call_id) else { return };
        call.reinvite_tx = None;
        let Some(offer) = call.our_offer.clone() else { return };
        if req.body.is_empty() {
            return;
        }
        call.our_offer = None;
        match SessionDescription::parse(&req.body).and_then(|answer| Ok((accept_answer(&offer, &answer)?, answer))) {
            Ok((neg, answer)) => self.apply_media(&call_id, &neg, &answer).await,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "the answer in the ACK is unusable: ending the call");
                self.hangup(&call_id).await;
            }
        }
    }

    pub(super) async fn on_ack_timeout(&mut self, id: TransactionId) {
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.invite_tx == Some(id) || c.reinvite_tx == Some(id))
            .map(|(k, _)| k.clone());
        if let Some(call_id) = found {
            tracing::warn!(call_id, "our 2xx was never acknowledged: ending the call");
            self.send_bye(&call_id).await;
            self.finish_call(&call_id, EndReason::Failed).await;
        }
    }

    /// A server transaction could not deliver our answer, or a client one of ours got none.
    pub(super) async fn on_server_timeout(&mut self, id: TransactionId, event: TuEvent) {
        if !matches!(event, TuEvent::TransportError(_)) {
            return;
        }
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.invite_tx == Some(id) && c.state == CallState::Ringing)
            .map(|(k, _)| k.clone());
        if let Some(call_id) = found {
            tracing::warn!(call_id, "the caller cannot be reached");
            self.finish_call(&call_id, EndReason::Failed).await;
        }
    }

    // ----- requests inside a call -----

    pub(super) async fn on_in_dialog(&mut self, id: TransactionId, req: Request, peer: Peer) {
        let did = DialogId::of_incoming(&req);
        let found = self
            .calls
            .iter()
            .find(|(_, c)| did.is_some() && c.dialog.as_ref().map(|d| &d.id) == did.as_ref())
            .map(|(k, _)| k.clone());
        let Some(call_id) = found else {
            if req.method == Method::Options {
                let resp = self.options_response(&req);
                self.respond(id, resp).await;
            } else {
                self.respond(id, stateless_response(&req, 481, "")).await;
            }
            return;
        };
        let checked = match self.calls.get_mut(&call_id).and_then(|c| c.dialog.as_mut()) {
            Some(d) => d.on_request(&req),
            None => Ok(()),
        };
        if let Err(e @ DialogError::OutOfOrder { .. }) = checked {
            self.respond(id, stateless_response(&req, 500, &format!("Server Internal Error - {e}"))).await;
            return;
        }
        let tag = did.map(|d| d.local_tag).unwrap_or_default();
        match req.method {
            Method::Bye => {
                let ok = self.dialog_response(&req, 200, &tag, &peer);
                self.respond(id, ok).await;
                let ringing = self.calls.get(&call_id).is_some_and(|c| c.state == CallState::Ringing);
                if ringing {
                    // A BYE in the early dialog ends the INVITE too.
                    if let Some(call) = self.calls.get(&call_id)
                        && let Some(tx) = call.invite_tx
                    {
                        let resp = self.dialog_response(&call.invite, 487, &tag, &peer);
                        self.respond(tx, resp).await;
                    }
                    self.finish_call(&call_id, EndReason::NotAnswered).await;
                } else {
                    let away = self.calls.get(&call_id).is_some_and(|c| c.transferred_away);
                    let reason = if away { EndReason::Transferred } else { EndReason::HungUp };
                    self.finish_call(&call_id, reason).await;
                }
            }
            Method::Invite | Method::Update => self.on_offer_in_dialog(id, &call_id, req, &tag, peer).await,
            Method::Info => {
                let ok = self.dialog_response(&req, 200, &tag, &peer);
                self.respond(id, ok).await;
                if let Some(digit) = info_digit(&req.body) {
                    self.emit(PhoneEvent::Dtmf { call_id, digit });
                }
            }
            Method::Notify => self.on_notify(id, &call_id, &req, &tag, &peer).await,
            Method::Refer => self.on_refer(id, &call_id, &req, &tag, &peer).await,
            Method::Options => {
                let mut resp = self.options_response(&req);
                resp.set_to_tag(&tag);
                self.respond(id, resp).await;
            }
            _ => {
                let mut resp = stateless_response(&req, 405, "");
                resp.headers.push(HeaderName::Allow, self.policy.allow_header());
                self.respond(id, resp).await;
            }
        }
    }

    /// A re-INVITE or UPDATE from the peer: answer its offer (hold, resume,
    /// a new address), or make one when it carries none.
    async fn on_offer_in_dialog(&mut self, id: TransactionId, call_id: &str, req: Request, tag: &str, peer: Peer) {
        let Some(call) = self.calls.get(call_id) else { return };
        let invite = req.method == Method::Invite;
        if call.reinvite_out || (invite && call.reinvite_tx.is_some()) {
            self.respond(id, self.dialog_response(&req, 491, tag, &peer)).await;
            return;
        }
        let early = call.state != CallState::Active;
        let offer = match sdp_body(&req.body) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                self.respond(id, stateless_response(&req, 400, &format!("Bad Request - SDP: {e}"))).await;
                return;
            }
        };
        if early || call.local_media.is_none() {
            // Nothing agreed yet to change (an UPDATE while ringing): accept without SDP.
            if offer.is_some() {
                self.respond(id, self.dialog_response(&req, 488, tag, &peer)).await;
            } else {
                self.respond(id, self.dialog_response(&req, 200, tag, &peer)).await;
            }
            return;
        }
        let Some(mut local) = call.local_media.clone() else { return };
        local.session_version += 1;
        let wanted = if call.held { Direction::SendOnly } else { Direction::SendRecv };
        let in_use = call.codec_in_use.as_ref().map(|c| (c.encoding.clone(), c.clock_rate));
        let mut ok = self.dialog_response(&req, 200, tag, &peer);
        match offer {
            Some(offer) => {
                let cfg = AudioConfig { in_use, ..self.audio_config(wanted) };
                match answer_offer(&offer, &local, &cfg) {
                    Ok((answer, neg)) => {
                        ok.set_body("application/sdp", answer.to_bytes());
                        if offer_holds(&offer) {
                            tracing::info!(call_id, "the other side holds the call");
                        }
                        if let Some(call) = self.calls.get_mut(call_id) {
                            call.local_media = Some(local);
                            call.last_local_sdp = Some(answer);
                            if invite {
                                call.reinvite_tx = Some(id);
                            }
                        }
                        self.respond(id, ok).await;
                        self.apply_media(call_id, &neg, &offer).await;
                    }
                    Err(e) => {
                        let mut resp = self.dialog_response(&req, 488, tag, &peer);
                        resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                        self.respond(id, resp).await;
                    }
                }
            }
            None if invite => {
                // An offerless re-INVITE: our current session goes in the 2xx, the answer in the ACK.
                let base =
                    call.last_local_sdp.clone().unwrap_or_else(|| build_offer(&local, &self.audio_config(wanted)));
                let ours = with_direction(&base, wanted);
                ok.set_body("application/sdp", ours.to_bytes());
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.reinvite_tx = Some(id);
                    call.our_offer = Some(ours.clone());
                    call.last_local_sdp = Some(ours);
                }
                self.respond(id, ok).await;
            }
            None => self.respond(id, ok).await,
        }
    }

    async fn on_notify(&mut self, id: TransactionId, call_id: &str, req: &Request, tag: &str, peer: &Peer) {
        self.respond(id, self.dialog_response(req, 200, tag, peer)).await;
        let is_refer = req.headers.event().ok().flatten().is_some_and(|e| e.package.eq_ignore_ascii_case("refer"));
        let Some(status) = sipfrag_status(&req.body).filter(|_| is_refer) else { return };
        let Some(target) = self.calls.get(call_id).and_then(|c| c.transfer_target.clone()) else { return };
        match status {
            100..=199 => {}
            200..=299 => {
                // The transfer target answered: our part of the call is over (and, in an
                // attended transfer, of the call to the target, which the caller now has).
                let replaced = self.calls.get(call_id).and_then(|c| c.transfer_replaces.clone());
                self.send_bye(call_id).await;
                self.emit(PhoneEvent::Transferred { call_id: call_id.to_owned(), target });
                self.finish_call(call_id, EndReason::Transferred).await;
                if let Some(other) = replaced.filter(|o| self.calls.contains_key(o)) {
                    self.send_bye(&other).await;
                    self.finish_call(&other, EndReason::Transferred).await;
                }
            }
            _ => {
                tracing::warn!(call_id, target, status, "the transfer failed; the call goes on");
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.transfer_target = None;
                    call.transfer_replaces = None;
                }
            }
        }
    }

    // ----- outgoing calls -----

    /// What to dial: a SIP address as given, or a number (any national form,
    /// normalised) at the account's server. The URI and the number to show.
    pub(super) fn dial_target(&self, target: &str) -> Result<(Uri, String), String> {
        let t = target.trim();
        if t.is_empty() {
            return Err("nothing to dial".to_owned());
        }
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") || (t.contains('@') && !lower.starts_with("tel:")) {
            let text = if t.contains(':') && (lower.starts_with("sip:") || lower.starts_with("sips:")) {
                t.to_owned()
            } else {
                format!("sip:{t}")
            };
            let uri = SipUri::parse(&text).map_err(|e| format!("{t:?} is not a SIP address: {e}"))?;
            let user = uri.user_decoded().map(|u| u.into_owned()).unwrap_or_default();
            let shown = if user.is_empty() { uri.host.to_string() } else { caller_number(&user, self.cfg.country) };
            return Ok((Uri::Sip(uri), shown));
        }
        let raw = t.strip_prefix("tel:").unwrap_or(t);
        let digits: String =
            raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}')).collect();
        let valid = !digits.is_empty()
            && digits
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0));
        if !valid {
            return Err(format!("{t:?} is neither a phone number nor a SIP address"));
        }
        let number = crate::crm::Phone::parse(raw, self.cfg.country).map(|p| p.as_str().to_owned()).unwrap_or(digits);
        let Some(reg_host) = self.aor_host() else {
            return Err(format!("no SIP server is set up: dial a full address such as {number}@192.0.2.10:5060"));
        };
        let mut uri = SipUri::new(Some(&number), reg_host.0, reg_host.1);
        uri.params = Default::default();
        Ok((Uri::Sip(uri), number))
    }

    /// The host and port of the account's domain (the host part of numbers we dial).
    fn aor_host(&self) -> Option<(Host, Option<u16>)> {
        let Some(account) = self.cfg.account.as_ref() else {
            let peer = self.cfg.direct_peer?;
            let host = match peer.ip() {
                std::net::IpAddr::V4(ip) => Host::Ipv4(ip),
                std::net::IpAddr::V6(ip) => Host::Ipv6(ip),
            };
            return Some((host, Some(peer.port())));
        };
        let uri = super::ua::server_uri(&account.server).ok()?;
        Some((uri.host, uri.port))
    }

    pub(super) async fn dial(&mut self, target: &str) {
        if self.stopping {
            return;
        }
        match self.dial_target(target) {
            Ok((uri, number)) => {
                self.place_call(uri, number, Vec::new()).await;
            }
            Err(why) => {
                let call_id = super::new_call_id(&self.bound.ip().to_string());
                self.fail_to_place(&call_id, target.trim().to_owned(), &why);
            }
        }
    }

    /// Reports a call that could not even be placed.
    fn fail_to_place(&self, call_id: &str, shown: String, why: &str) {
        tracing::warn!(target = shown, reason = why, "call not placed");
        self.emit(PhoneEvent::Dialing { call_id: call_id.to_owned(), to: shown, card: None });
        let ended = PhoneEvent::Ended { call_id: call_id.to_owned(), reason: EndReason::Failed, duration_s: 0 };
        self.emit_end(call_id, None, ended);
    }

    /// Places a call to `uri` (shown as `number`), with `extra` headers (Replaces,
    /// Referred-By); its id, unless it could not be placed.
    async fn place_call(&mut self, uri: Uri, number: String, extra: Vec<(HeaderName, String)>) -> Option<String> {
        let call_id = super::new_call_id(&self.bound.ip().to_string());
        let peer = match self.peer_for(&uri, true).await {
            Ok(p) => p,
            Err(why) => {
                self.fail_to_place(&call_id, number, &why);
                return None;
            }
        };
        let (local, sockets) = match self.bind_media(peer.addr).await {
            Ok(m) => m,
            Err(e) => {
                self.fail_to_place(&call_id, number, &e.to_string());
                return None;
            }
        };
        let offer = build_offer(&local, &self.audio_config(Direction::SendRecv));
        let mut from = self.aor(&peer);
        from.set_tag(&super::new_tag());
        let mut req = Request::new(Method::Invite, uri.clone());
        req.headers.push_typed(HeaderName::Via, &self.via(&peer));
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push_typed(HeaderName::From, &from);
        req.headers.push_typed(HeaderName::To, &NameAddr::new(uri));
        req.headers.push(HeaderName::CallId, call_id.clone());
        req.headers.push(HeaderName::CSeq, "1 INVITE");
        req.headers.push_typed(HeaderName::Contact, &self.contact(&peer));
        req.headers.push(HeaderName::Allow, self.policy.allow_header());
        req.headers.push(HeaderName::UserAgent, self.cfg.user_agent.clone());
        for (name, value) in extra {
            req.headers.push(name, value);
        }
        req.set_body("application/sdp", offer.to_bytes());
        let card = self.card(&number, None);
        self.call_counter += 1;
        let mut call = Call::new(CallState::Calling, peer.clone(), req.clone(), self.call_counter);
        call.auth = self.credentials();
        call.local_media = Some(local);
        call.rtp = Some(sockets);
        call.our_offer = Some(offer.clone());
        call.last_local_sdp = Some(offer);
        self.calls.insert(call_id.clone(), call);
        self.emit(PhoneEvent::Dialing { call_id: call_id.clone(), to: number, card });
        let pending = |sent: &Request| Pending::Invite { call_id: call_id.clone(), sent: sent.clone() };
        if self.send(req, &peer, pending).await.is_none() {
            self.finish_call(&call_id, EndReason::Failed).await;
            return None;
        }
        Some(call_id)
    }

    /// The other side transfers us (RFC 3515): accept, call the target, and
    /// tell the transferor how that call goes by NOTIFY.
    async fn on_refer(&mut self, id: TransactionId, call_id: &str, req: &Request, tag: &str, peer: &Peer) {
        let refer_to = match req.headers.refer_to() {
            Ok(Some(r)) => r,
            _ => {
                self.respond(id, stateless_response(req, 400, "Bad Request - no usable Refer-To")).await;
                return;
            }
        };
        let Uri::Sip(mut target) = refer_to.uri else {
            self.respond(id, self.dialog_response(req, 603, tag, peer)).await;
            return;
        };
        if self.stopping
            || self.calls.get(call_id).is_none_or(|c| c.state != CallState::Active || c.referred_to.is_some())
        {
            self.respond(id, self.dialog_response(req, 603, tag, peer)).await;
            return;
        }
        self.respond(id, self.dialog_response(req, 202, tag, peer)).await;
        self.notify_refer(call_id, "SIP/2.0 100 Trying", false).await;
        // Headers in the Refer-To (Replaces for an attended transfer) go into the INVITE.
        let names: Vec<String> = target.headers.iter().map(|(name, _)| name.clone()).collect();
        let mut extra: Vec<(HeaderName, String)> = names
            .iter()
            .filter_map(|name| Some((HeaderName::parse(name), target.header(name)?.into_owned())))
            .collect();
        target.headers.clear();
        if let Some(by) = req.headers.get(&HeaderName::ReferredBy) {
            extra.push((HeaderName::ReferredBy, by.to_owned()));
        }
        let user = target.user_decoded().map(|u| u.into_owned()).unwrap_or_default();
        let shown = if user.is_empty() { target.host.to_string() } else { caller_number(&user, self.cfg.country) };
        match self.place_call(Uri::Sip(target), shown, extra).await {
            Some(new_call) => {
                if let Some(c) = self.calls.get_mut(&new_call) {
                    c.referred_from = Some(call_id.to_owned());
                }
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.referred_to = Some(new_call);
                }
            }
            None => self.notify_refer(call_id, "SIP/2.0 503 Service Unavailable", true).await,
        }
    }

    /// Tells the transferor of `call_id` how the call it asked for goes (RFC 3515 §2.4.5).
    async fn notify_refer(&mut self, call_id: &str, status_line: &str, last: bool) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut notify = dialog.request(Method::Notify);
        let hop = dialog.next_hop().clone();
        notify.headers.push(HeaderName::Event, "refer");
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        notify.headers.push(HeaderName::SubscriptionState, state);
        notify.set_body("message/sipfrag;version=2.0", format!("{status_line}\r\n").into_bytes());
        if last {
            call.referred_to = None;
        }
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(notify, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    /// A call placed on a REFER reached its outcome: report it to the transferor.
    async fn report_referred(&mut self, new_call: &str, status: u16, reason: &str) {
        let Some(from) = self.calls.get(new_call).and_then(|c| c.referred_from.clone()) else { return };
        if self.calls.get(&from).and_then(|c| c.referred_to.as_deref()) != Some(new_call) {
            return;
        }
        let reason = if reason.is_empty() { super::message::default_reason(status) } else { reason };
        self.notify_refer(&from, &format!("SIP/2.0 {status} {reason}"), true).await;
        if (200..300).contains(&status)
            && let Some(c) = self.calls.get_mut(&from)
        {
            // The transferor ends our old call; however it ends, it was a transfer.
            c.transferred_away = true;
        }
    }

    pub(super) async fn on_invite_response(
        &mut self,
        id: TransactionId,
        call_id: String,
        sent: Request,
        resp: Response,
    ) {
        let status = resp.status;
        let Some(call) = self.calls.get_mut(&call_id) else {
            if resp.is_success() {
                // The call is forgotten but the peer answered: ACK and hang up at once.
                self.ack_and_bye(id, &sent, &resp).await;
            }
            return;
        };
        match status {
            100 => {
                call.provisional = true;
                self.pending.insert(id, Pending::Invite { call_id: call_id.clone(), sent });
                self.send_pending_cancel(&call_id).await;
            }
            101..=199 => {
                call.provisional = true;
                let first = !call.ringing_reported;
                call.ringing_reported = true;
                let cancelling = call.state == CallState::Cancelling;
                let offer = call.our_offer.clone();
                self.pending.insert(id, Pending::Invite { call_id: call_id.clone(), sent });
                if self.send_pending_cancel(&call_id).await || cancelling {
                    return;
                }
                if first {
                    self.emit(PhoneEvent::Ringing { call_id: call_id.clone() });
                }
                match (sdp_body(&resp.body), offer) {
                    (Some(Ok(answer)), Some(offer)) => match accept_answer(&offer, &answer) {
                        // Early media (183): the far end's ringback or announcement replaces ours.
                        Ok(neg) => self.apply_media(&call_id, &neg, &answer).await,
                        Err(e) => tracing::warn!(call_id, error = %e, "unusable early media"),
                    },
                    _ => self.start_ringback(&call_id).await,
                }
            }
            200..=299 => self.on_invite_accepted(id, &call_id, &sent, &resp).await,
            401 | 407 => {
                call.auth_rounds += 1;
                let retry = match (&mut call.auth, call.auth_rounds <= 2, call.state) {
                    (Some(auth), true, CallState::Calling) => match auth.on_challenge(&sent, &resp) {
                        Ok(_) => {
                            let mut again = sent.clone();
                            again.headers.remove(&HeaderName::Via);
                            let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1).wrapping_add(1);
                            again.headers.set(HeaderName::CSeq, format!("{seq} INVITE"));
                            auth.authorize_request(&mut again);
                            Some(again)
                        }
                        Err(e) => {
                            tracing::warn!(call_id, error = %e, "the call was refused");
                            None
                        }
                    },
                    _ => None,
                };
                match retry {
                    Some(mut again) => {
                        let peer = call.peer.clone();
                        put_top_via(&mut again, &self.via(&peer));
                        if let Some(call) = self.calls.get_mut(&call_id) {
                            call.invite = again.clone();
                            call.provisional = false;
                        }
                        let pending = |sent: &Request| Pending::Invite { call_id: call_id.clone(), sent: sent.clone() };
                        if self.send(again, &peer, pending).await.is_none() {
                            self.finish_call(&call_id, EndReason::Failed).await;
                        }
                    }
                    None => self.on_invite_failed(&call_id, status).await,
                }
            }
            _ => self.on_invite_failed(&call_id, status).await,
        }
    }

    /// The INVITE failed with `status` (or timed out: 408, or could not be sent: 503).
    pub(super) async fn on_invite_failed(&mut self, call_id: &str, status: u16) {
        self.report_referred(call_id, status, "").await;
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state == CallState::Cancelling {
            self.calls.remove(call_id);
            return;
        }
        let reason = match status {
            486 | 600 => EndReason::Busy,
            603 => EndReason::Rejected,
            408 | 480 | 487 => EndReason::NotAnswered,
            _ => EndReason::Failed,
        };
        self.finish_call(call_id, reason).await;
    }

    async fn on_invite_accepted(&mut self, id: TransactionId, call_id: &str, sent: &Request, resp: &Response) {
        let dialog = match Dialog::as_uac(sent, resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "unusable 2xx: ending the call");
                self.ack_and_bye(id, sent, resp).await;
                self.finish_call(call_id, EndReason::Failed).await;
                return;
            }
        };
        let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let fallback = self.calls.get(call_id).map(|c| c.peer.clone());
        let hop = self.hop_peer(dialog.next_hop(), fallback).await;
        let mut ack = dialog.ack(seq);
        put_top_via(&mut ack, &self.via(&hop));
        let bytes = ack.to_bytes();
        self.send_stateless(&hop, bytes.clone()).await;
        self.pending.insert(id, Pending::Accepted { ack: bytes, peer: hop, since: Instant::now() });
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.dialog = Some(dialog);
        if call.state == CallState::Cancelling {
            // Answered while our CANCEL was on its way: end it properly.
            self.send_bye(call_id).await;
            self.calls.remove(call_id);
            return;
        }
        call.state = CallState::Active;
        call.answered = Some(Instant::now());
        let offer = call.our_offer.take();
        self.report_referred(call_id, resp.status, &resp.reason).await;
        match (sdp_body(&resp.body), offer) {
            (Some(Ok(answer)), Some(offer)) => match accept_answer(&offer, &answer) {
                Ok(neg) => self.apply_media(call_id, &neg, &answer).await,
                Err(e) => {
                    tracing::warn!(call_id, error = %e, "the answer is unusable: ending the call");
                    self.send_bye(call_id).await;
                    self.finish_call(call_id, EndReason::Failed).await;
                    return;
                }
            },
            (_, None) => {} // the answer came in a 183 already, media runs
            (_, Some(_)) => tracing::warn!(call_id, "the 2xx carries no usable SDP answer"),
        }
        if let Some((player, mut source)) = self.calls.get_mut(call_id).and_then(|c| c.ringback.take()) {
            if let Some(mut sink) = player.stop().await {
                let _ = sink.finish();
            }
            let _ = source.finish();
        }
        self.emit(PhoneEvent::Answered { call_id: call_id.to_owned() });
    }

    /// Acknowledges a 2xx for a call we no longer want and sends BYE.
    async fn ack_and_bye(&mut self, id: TransactionId, sent: &Request, resp: &Response) {
        let Ok(mut dialog) = Dialog::as_uac(sent, resp) else { return };
        let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let Some(peer) = self.peer_for(dialog.next_hop(), false).await.ok() else { return };
        let mut ack = dialog.ack(seq);
        put_top_via(&mut ack, &self.via(&peer));
        let bytes = ack.to_bytes();
        self.send_stateless(&peer, bytes.clone()).await;
        self.pending.insert(id, Pending::Accepted { ack: bytes, peer: peer.clone(), since: Instant::now() });
        let bye = dialog.request(Method::Bye);
        self.send(bye, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    /// The peer for a dialog's next hop; when it cannot be resolved, `fallback`.
    async fn hop_peer(&self, hop: &Uri, fallback: Option<Peer>) -> Peer {
        match self.peer_for(hop, false).await {
            Ok(p) => p,
            Err(e) => match fallback {
                Some(f) => f,
                None => {
                    tracing::warn!(error = e, "next hop unknown");
                    Peer::new(self.cfg.transport, SocketAddr::from(([127, 0, 0, 1], 5060)))
                }
            },
        }
    }

    /// Plays ringback to the operator while the far end rings (only on sound cards).
    async fn start_ringback(&mut self, call_id: &str) {
        self.start_tone(call_id, TonePattern::ringback()).await;
    }

    /// Rings the operator's sound card for an incoming call, unless another
    /// call already has the headset (then the window's call waiting shows it).
    async fn start_ringtone(&mut self, call_id: &str) {
        if self.calls.iter().any(|(id, c)| id != call_id && (c.media.is_some() || c.ringback.is_some())) {
            return;
        }
        self.start_tone(call_id, TonePattern::ringtone()).await;
    }

    /// A tone on the sound card for a call without media yet; the devices
    /// opened for it go on to carry the call's sound when it starts.
    async fn start_tone(&mut self, call_id: &str, pattern: TonePattern) {
        if !matches!(self.cfg.audio, AudioChoice::Devices { .. }) {
            return;
        }
        let Some(call) = self.calls.get(call_id) else { return };
        if call.ringback.is_some() || call.media.is_some() {
            return;
        }
        let index = call.index;
        match self.audio_ends(index, 8000) {
            Ok((source, sink)) => match play_tone(pattern, sink) {
                Ok(player) => {
                    if let Some(call) = self.calls.get_mut(call_id) {
                        call.ringback = Some((player, source));
                    }
                }
                Err(e) => tracing::warn!(call_id, error = %e, "no tone on the sound card"),
            },
            Err(e) => tracing::warn!(call_id, error = %e, "no tone on the sound card"),
        }
    }

    /// Sends the CANCEL asked for before the first provisional answer; true when sent.
    async fn send_pending_cancel(&mut self, call_id: &str) -> bool {
        let Some(call) = self.calls.get_mut(call_id) else { return false };
        if !call.cancel_pending {
            return false;
        }
        call.cancel_pending = false;
        let cancel = cancel_for(&call.invite);
        let peer = call.peer.clone();
        self.send(cancel, &peer, |_| Pending::Fire { since: Instant::now() }).await;
        true
    }

    /// Ends a call from our side: decline if ringing, CANCEL if calling, BYE if talking.
    pub(super) async fn hangup(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        match call.state {
            CallState::Ringing => self.decline(call_id, 603).await,
            CallState::Calling => {
                call.state = CallState::Cancelling;
                if call.provisional {
                    let cancel = cancel_for(&call.invite);
                    let peer = call.peer.clone();
                    self.send(cancel, &peer, |_| Pending::Fire { since: Instant::now() }).await;
                } else {
                    // RFC 3261 §9.1: no CANCEL before a provisional answer; it goes with the first.
                    call.cancel_pending = true;
                }
                let give_up = self.cfg.timers.t64() + Duration::from_secs(5);
                self.schedule(give_up, Timer::CancelGiveUp { call_id: call_id.to_owned() });
                self.report_end(call_id, EndReason::NotAnswered).await;
            }
            CallState::Active => {
                self.send_bye(call_id).await;
                self.finish_call(call_id, EndReason::HungUp).await;
            }
            CallState::Cancelling => {}
        }
    }

    /// Sends BYE in the call's dialog (if it has one).
    pub(super) async fn send_bye(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let bye = dialog.request(Method::Bye);
        let hop = dialog.next_hop().clone();
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(bye, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    // ----- hold, resume, transfer -----

    /// Puts the call on hold (`hold`) or takes it off hold, by re-INVITE.
    pub(super) async fn hold(&mut self, call_id: &str, hold: bool) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.state != CallState::Active {
            return;
        }
        if hold && let Some(media) = &call.media {
            // The microphone goes quiet now, not when the peer agrees: the held
            // party must not hear the operator's next conversation meanwhile.
            media.hold(true);
        }
        if call.reinvite_out || call.reinvite_tx.is_some() {
            // Another offer is under way: ask again once it is done.
            self.schedule(Duration::from_millis(500), Timer::ReInviteRetry { call_id: call_id.to_owned(), hold });
            return;
        }
        let Some(base) = call.last_local_sdp.clone() else { return };
        let direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        let mut offer = with_direction(&base, direction);
        if let Some(codec) = &call.codec_in_use {
            put_codec_first(&mut offer, codec);
        }
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut req = dialog.request(Method::Invite);
        let hop = dialog.next_hop().clone();
        req.set_body("application/sdp", offer.to_bytes());
        call.reinvite_out = true;
        call.our_offer = Some(offer.clone());
        call.last_local_sdp = Some(offer);
        if let Some(local) = &mut call.local_media {
            local.session_version = local.session_version.wrapping_add(1);
        }
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        let pending = |sent: &Request| Pending::ReInvite { call_id: call_id.to_owned(), sent: sent.clone(), hold };
        if self.send(req, &peer, pending).await.is_none()
            && let Some(call) = self.calls.get_mut(call_id)
        {
            call.reinvite_out = false;
        }
    }

    pub(super) async fn on_reinvite_response(
        &mut self,
        id: TransactionId,
        call_id: &str,
        sent: &Request,
        hold: bool,
        resp: Response,
    ) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.reinvite_out = false;
        let offer = call.our_offer.take();
        match resp.status {
            200..=299 => {
                let fallback = call.peer.clone();
                let Some(dialog) = call.dialog.as_mut() else { return };
                dialog.on_refresh_response(&resp);
                let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
                let mut ack = dialog.ack(seq);
                let hop = dialog.next_hop().clone();
                let peer = self.hop_peer(&hop, Some(fallback)).await;
                put_top_via(&mut ack, &self.via(&peer));
                let bytes = ack.to_bytes();
                self.send_stateless(&peer, bytes.clone()).await;
                self.pending.insert(id, Pending::Accepted { ack: bytes, peer, since: Instant::now() });
                if let (Some(Ok(answer)), Some(offer)) = (sdp_body(&resp.body), offer) {
                    match accept_answer(&offer, &answer) {
                        Ok(neg) => self.apply_media(call_id, &neg, &answer).await,
                        Err(e) => tracing::warn!(call_id, error = %e, "unusable answer to our re-INVITE"),
                    }
                }
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.held = hold;
                    if let Some(media) = &call.media {
                        media.hold(hold);
                    }
                }
                let call_id = call_id.to_owned();
                self.emit(if hold { PhoneEvent::Held { call_id } } else { PhoneEvent::Resumed { call_id } });
            }
            491 => {
                // RFC 3261 §14.1: glare; try again after a while.
                self.schedule(Duration::from_millis(2500), Timer::ReInviteRetry { call_id: call_id.to_owned(), hold });
            }
            408 | 481 => {
                tracing::warn!(call_id, status = resp.status, "the call is gone on the other side");
                self.send_bye(call_id).await;
                self.finish_call(call_id, EndReason::HungUp).await;
            }
            status => {
                tracing::warn!(call_id, status, "the other side refused the change; the call stays as it was");
                if let Some(call) = self.calls.get_mut(call_id)
                    && let Some(prev) = call.last_local_sdp.take()
                {
                    let back = if call.held { Direction::SendOnly } else { Direction::SendRecv };
                    call.last_local_sdp = Some(with_direction(&prev, back));
                }
                if hold && let Some(call) = self.calls.get_mut(call_id) {
                    // The peer would not hear of hold, but the operator asked for it: the
                    // microphone stays quiet and the call counts as held here.
                    call.held = true;
                    let call_id = call_id.to_owned();
                    self.emit(PhoneEvent::Held { call_id });
                }
            }
        }
    }

    /// Transfer (RFC 3515): asks the other side to call `target` — a number or
    /// address (blind), or the id of another call of ours (attended: the other
    /// side calls that call's party with Replaces, RFC 3891, taking our place).
    pub(super) async fn transfer(&mut self, call_id: &str, target: &str) {
        let attended = self
            .calls
            .get(target)
            .filter(|t| target != call_id && t.state == CallState::Active)
            .and_then(|t| t.dialog.as_ref())
            .map(|d| (replaces_uri(d), uri_user(&d.remote.uri)));
        let (uri, shown, replaces) = match attended {
            Some((uri, shown)) => (uri, shown, Some(target.to_owned())),
            None => match self.dial_target(target) {
                Ok((uri, shown)) => (uri, shown, None),
                Err(why) => {
                    tracing::warn!(call_id, target, reason = why, "transfer not started");
                    return;
                }
            },
        };
        let referred_by = match self.calls.get(call_id) {
            Some(c) => self.aor(&c.peer),
            None => return,
        };
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.state != CallState::Active {
            return;
        }
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut req = dialog.request(Method::Refer);
        let hop = dialog.next_hop().clone();
        req.headers.push_typed(HeaderName::ReferTo, &NameAddr::new(uri));
        req.headers.push_typed(HeaderName::ReferredBy, &referred_by);
        call.transfer_target = Some(shown.clone());
        call.transfer_replaces = replaces;
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(req, &peer, |_| Pending::Refer { call_id: call_id.to_owned(), target: shown }).await;
    }
}

/// The Refer-To of an attended transfer: the target's address with the dialog
/// to replace, from the target's point of view (its tag is the to-tag).
fn replaces_uri(target: &Dialog) -> Uri {
    let mut uri = target.remote.uri.clone();
    if let Uri::Sip(u) = &mut uri {
        u.params = Default::default();
        let value = format!("{};to-tag={};from-tag={}", target.id.call_id, target.id.remote_tag, target.id.local_tag);
        u.headers = vec![("Replaces".to_owned(), escape_uri_header(&value))];
    }
    uri
}

/// Escapes a URI header value (RFC 3261 §25.1 hvalue: unreserved and `[]/?:+$` stay).
fn escape_uri_header(value: &str) -> String {
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
fn cancel_for(invite: &Request) -> Request {
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
        let Ok(super::super::message::Message::Request(inv)) = super::super::message::Message::parse(text.as_bytes())
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
        use super::super::message::Message;
        let (Ok(Message::Request(inv)), Ok(Message::Response(ok))) =
            (Message::parse(text.as_bytes()), Message::parse(ok.as_bytes()))
        else {
            panic!("parse")
        };
        let d = Dialog::as_uac(&inv, &ok).unwrap();
        let uri = replaces_uri(&d);
        assert_eq!(uri.to_string(), "sip:300@pbx?Replaces=b%40x%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours");
        let back = super::super::headers::Replaces::parse(&uri.as_sip().unwrap().header("Replaces").unwrap()).unwrap();
        assert_eq!((back.call_id.as_str(), back.to_tag.as_str(), back.from_tag.as_str()), ("b@x", "theirs", "ours"));
    }

    #[test]
    fn numbered_recordings() {
        let p = std::path::Path::new("/tmp/rec.wav");
        assert_eq!(numbered(p, 1), p);
        assert_eq!(numbered(p, 3), std::path::Path::new("/tmp/rec-3.wav"));
    }
}

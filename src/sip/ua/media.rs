//! A call's sound: the codecs offered, the microphone and headset (or files,
//! or silence) of each call, starting and changing its media session after
//! an offer/answer, ring and ringback tones, and stopping it when the call ends.

use std::net::SocketAddr;

use super::call::*;
use super::{AudioChoice, Ua};
use crate::media::{
    AudioSink, AudioSource, DeviceError, MediaError, MediaSession, NullSink, NullSource, RtpSockets, TeeSource,
    TonePattern, WavSink, WavSource, bind_rtp, open_devices, play_tone,
};
use crate::sip::phone::{EndReason, PhoneEvent};
use crate::sip::sdp::{AudioConfig, Direction, LocalMedia, NegotiatedAudio, SessionDescription};

impl Ua {
    pub(super) fn audio_config(&self, direction: Direction) -> AudioConfig {
        AudioConfig { codecs: self.cfg.codecs.clone(), telephone_event: true, ptime: 20, direction, in_use: None }
    }

    /// The microphone and headset (or files, or nothing) for a call's media at
    /// `rate`. Opening sound cards waits for the audio server and files for
    /// the disk: that runs on a blocking thread, never on the SIP task.
    pub(super) async fn audio_ends(&self, index: u32, rate: u32) -> Result<AudioEnds, MediaError> {
        let choice = self.cfg.audio.clone();
        tokio::task::spawn_blocking(move || open_audio_ends(&choice, index, rate))
            .await
            .map_err(|e| MediaError::Device(DeviceError::Thread(format!("opening the call's sound failed: {e}"))))?
    }

    /// Starts the call's media for what SDP agreed, or steers the running one.
    pub(super) async fn apply_media(&mut self, call_id: &str, neg: &NegotiatedAudio, remote: &SessionDescription) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.media_sendrecv = neg.direction == Direction::SendRecv;
        self.watch_media(call_id);
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
                None => self.audio_ends(index, rate).await,
            },
            None => self.audio_ends(index, rate).await,
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
                        let msg = super::Internal::Media { call_id: id.clone(), generation, event };
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
    pub(super) async fn bind_media(&self, peer: SocketAddr) -> Result<(LocalMedia, RtpSockets), MediaError> {
        let sockets = bind_rtp(self.local_ip_toward(peer)).await?;
        let rtp = SocketAddr::new(self.media_ip(peer), sockets.port());
        Ok((LocalMedia { rtp, session_id: session_id(), session_version: 1 }, sockets))
    }

    /// Stops a call's sound and reports its end (once); the call stays known.
    pub(super) async fn report_end(&mut self, call_id: &str, reason: EndReason) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.end_reported {
            return;
        }
        call.end_reported = true;
        let mut ring_timers = std::mem::take(&mut call.ring_timers);
        ring_timers.extend(call.media_check.take());
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

    /// Plays ringback to the operator while the far end rings (only on sound cards).
    pub(super) async fn start_ringback(&mut self, call_id: &str) {
        self.start_tone(call_id, TonePattern::ringback()).await;
    }

    /// Rings the operator's sound card for an incoming call, unless another
    /// call already has the headset (then the window's call waiting shows it).
    pub(super) async fn start_ringtone(&mut self, call_id: &str) {
        if self.calls.iter().any(|(id, c)| id != call_id && (c.media.is_some() || c.ringback.is_some())) {
            return;
        }
        self.start_tone(call_id, TonePattern::ringtone()).await;
    }

    /// A tone on the sound card for a call without media yet; the devices
    /// opened for it go on to carry the call's sound when it starts.
    pub(super) async fn start_tone(&mut self, call_id: &str, pattern: TonePattern) {
        if !matches!(self.cfg.audio, AudioChoice::Devices { .. }) {
            return;
        }
        let Some(call) = self.calls.get(call_id) else { return };
        if call.ringback.is_some() || call.media.is_some() {
            return;
        }
        let index = call.index;
        match self.audio_ends(index, 8000).await {
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
}

/// What [`Ua::audio_ends`] opens, on the blocking thread.
fn open_audio_ends(choice: &AudioChoice, index: u32, rate: u32) -> Result<AudioEnds, MediaError> {
    match choice {
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

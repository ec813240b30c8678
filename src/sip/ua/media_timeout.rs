//! The media timeout: a call whose BYE was lost on the way (the peer's
//! network or PBX gone) would otherwise stay up for ever. While a call is
//! answered, not on hold either way and its media runs, RTP or RTCP of the
//! peer must arrive at least every `media_timeout`; when nothing has for that
//! long the phone hangs up with BYE and the call ends as
//! [`EndReason::MediaTimeout`]. The clock starts again whenever the media is
//! (re)negotiated (answer, hold, resume), so a call resumed after a long hold
//! gets the whole period before it counts as dead.
//!
//! [`verdict`] is the pure decision (tested on a made-up clock); the timer
//! that asks it is [`Ua::watch_media`] / [`Ua::check_media`].

use std::time::Duration;

use tokio::time::Instant;

use super::Timer;
use super::Ua;
use super::call::CallState;
use crate::sip::phone::EndReason;

/// What the watch of a call's media decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Nothing to watch: timeout off, held either way, no media, not answered.
    Off,
    /// Nothing heard for the whole period: hang up.
    Expired,
    /// Look again at this time (the period after the last sign of life).
    CheckAt(Instant),
}

/// Whether a watched call's peer is gone: `watched_since` is when the
/// clock last started (the media negotiated), `heard` the last RTP/RTCP of
/// the peer, `both_send` whether the call is neither held nor holding.
pub(super) fn verdict(
    now: Instant,
    timeout: Option<Duration>,
    watched_since: Instant,
    heard: Option<Instant>,
    both_send: bool,
) -> Verdict {
    let Some(timeout) = timeout.filter(|t| !t.is_zero()) else { return Verdict::Off };
    if !both_send {
        return Verdict::Off;
    }
    let alive = heard.map_or(watched_since, |h| h.max(watched_since));
    let deadline = alive + timeout;
    if now >= deadline { Verdict::Expired } else { Verdict::CheckAt(deadline) }
}

impl Ua {
    /// Starts (again) the watch of a call's media: the clock restarts now
    /// and the check is set for when the period would run out.
    pub(super) fn watch_media(&mut self, call_id: &str) {
        let Some(timeout) = self.cfg.media_timeout.filter(|t| !t.is_zero()) else { return };
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.end_reported {
            return;
        }
        call.media_watched_since = Instant::now();
        let old = call.media_check.take();
        if let Some(old) = old {
            self.cancel_timer(old);
        }
        let seq = self.schedule(timeout, Timer::MediaCheck { call_id: call_id.to_owned() });
        if let Some(call) = self.calls.get_mut(call_id) {
            call.media_check = Some(seq);
        }
    }

    /// The media check of a call is due: hang up when the peer has been
    /// silent for the whole period, else look again when it could run out.
    pub(super) async fn check_media(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.media_check = None;
        if call.end_reported {
            return;
        }
        let both_send = call.state == CallState::Active && !call.held && call.media_sendrecv && call.media.is_some();
        let heard = call.media.as_ref().and_then(|m| m.last_heard()).map(Instant::from_std);
        let now = Instant::now();
        match verdict(now, self.cfg.media_timeout, call.media_watched_since, heard, both_send) {
            // Held (or not answered yet): the next negotiation starts the watch again.
            Verdict::Off => {}
            Verdict::CheckAt(at) => {
                let seq =
                    self.schedule(at.saturating_duration_since(now), Timer::MediaCheck { call_id: call_id.to_owned() });
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.media_check = Some(seq);
                }
            }
            Verdict::Expired => {
                let silent = heard.map_or(now - call.media_watched_since, |h| now - h);
                tracing::warn!(
                    call_id,
                    silent_ms = silent.as_millis() as u64,
                    "no RTP or RTCP from the other side: hanging up"
                );
                self.send_bye(call_id).await;
                self.finish_call(call_id, EndReason::MediaTimeout).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Option<Duration> = Some(Duration::from_secs(30));

    #[test]
    fn silence_for_the_whole_period_ends_the_call() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        // Nothing ever heard: the period counts from the start of the watch.
        assert_eq!(verdict(at(29), T, start, None, true), Verdict::CheckAt(at(30)));
        assert_eq!(verdict(at(30), T, start, None, true), Verdict::Expired);
        // Each packet moves the deadline.
        assert_eq!(verdict(at(40), T, start, Some(at(20)), true), Verdict::CheckAt(at(50)));
        assert_eq!(verdict(at(50), T, start, Some(at(20)), true), Verdict::Expired);
        // A packet heard before the watch restarted (a resume) does not shorten it.
        assert_eq!(verdict(at(120), T, at(100), Some(at(5)), true), Verdict::CheckAt(at(130)));
    }

    #[test]
    fn held_calls_and_a_timeout_of_zero_never_end() {
        let start = Instant::now();
        let late = start + Duration::from_secs(3600);
        assert_eq!(verdict(late, T, start, None, false), Verdict::Off);
        assert_eq!(verdict(late, Some(Duration::ZERO), start, None, true), Verdict::Off);
        assert_eq!(verdict(late, None, start, None, true), Verdict::Off);
    }
}

//! The one call tracker of both faces: it follows the user agent's events
//! call by call and, when a call ends, makes the call-log entry to record.
//! The window records it through its writer thread, `clinicdesk phone`
//! through its [`super::call_log::CallLog`]: the same call gives the same
//! row (number, direction, operator, times, result, person) whichever face
//! took it.

use crate::crm::card::CallerCard;
use crate::crm::{CallDirection, CallResult, Millis, new_id, now_millis};
use crate::media::{DeviceEvent, Quality};
use crate::sip::phone::{EndReason, PhoneEvent};
use crate::store::calls::FinishedCall;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    Ringing,
    Dialing,
    Active,
    Held,
}

/// A call in progress.
#[derive(Clone, Debug)]
pub struct CallView {
    pub sip_call_id: String,
    /// The id its call-log entry will have (chosen now, so an inquiry typed
    /// during the call can refer to it).
    pub call_id: String,
    pub direction: CallDirection,
    /// The other party, normalised (E.164 when it is a phone number).
    pub number: String,
    pub display_name: Option<String>,
    pub did: Option<String>,
    pub card: Option<CallerCard>,
    pub state: CallState,
    pub started_at: Millis,
    pub answered_at: Option<Millis>,
    /// The person the operator picked when several share the number.
    pub chosen_person: Option<String>,
    pub muted: bool,
    /// How the call sounds, as last reported.
    pub quality: Option<QualityView>,
    /// The last sound-device problem of this call (it goes on).
    pub device: Option<DeviceEvent>,
}

/// The call-quality indicator's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QualityView {
    pub quality: Quality,
    pub mos: f64,
    pub loss_percent: f64,
    pub jitter_ms: f64,
    pub rtt_ms: Option<f64>,
}

impl CallView {
    /// The person the call is about: the one picked, or the only match.
    pub fn person_id(&self) -> Option<String> {
        self.chosen_person.clone().or_else(|| match self.card.as_ref().map(|c| c.people.as_slice()) {
            Some([only]) => Some(only.id.clone()),
            _ => None,
        })
    }

    fn new(sip_call_id: &str, direction: CallDirection, number: String, card: Option<CallerCard>) -> CallView {
        CallView {
            sip_call_id: sip_call_id.to_owned(),
            call_id: new_id(),
            direction,
            number,
            display_name: None,
            did: None,
            card,
            state: if direction == CallDirection::In { CallState::Ringing } else { CallState::Dialing },
            started_at: now_millis(),
            answered_at: None,
            chosen_person: None,
            muted: false,
            quality: None,
            device: None,
        }
    }
}

/// What an event meant for the face.
#[derive(Debug)]
pub enum Followed {
    /// Nothing more than the tracked state.
    Nothing,
    /// The call was answered (as it is now).
    Answered(Box<CallView>),
    /// The call ended: its call-log entry, to record.
    Ended(Box<FinishedCall>),
}

/// The calls going on, in the order they began.
#[derive(Default)]
pub struct CallTracker {
    pub calls: Vec<CallView>,
}

impl CallTracker {
    /// Follows one event of the user agent. `operator`: the user answering
    /// (their id), recorded with a call that ends.
    pub fn follow(&mut self, event: &PhoneEvent, operator: Option<&str>) -> Followed {
        match event {
            PhoneEvent::Incoming { call_id, from, display_name, did, card } => {
                let number = card.as_ref().map_or_else(|| from.clone(), |c| c.number.clone());
                let mut call = CallView::new(call_id, CallDirection::In, number, card.as_deref().cloned());
                call.display_name = display_name.clone();
                call.did = did.clone();
                self.calls.push(call);
            }
            PhoneEvent::Dialing { call_id, to, card } => {
                let number = card.as_ref().map_or_else(|| to.clone(), |c| c.number.clone());
                self.calls.push(CallView::new(call_id, CallDirection::Out, number, card.as_deref().cloned()));
            }
            PhoneEvent::Answered { call_id } => {
                if let Some(call) = self.find_mut(call_id) {
                    call.state = CallState::Active;
                    call.answered_at = Some(now_millis());
                    return Followed::Answered(Box::new(call.clone()));
                }
            }
            PhoneEvent::Held { call_id } => self.set_state(call_id, CallState::Held),
            PhoneEvent::Resumed { call_id } => self.set_state(call_id, CallState::Active),
            PhoneEvent::Quality { call_id, quality, mos, loss_percent, jitter_ms, rtt_ms } => {
                if let Some(call) = self.find_mut(call_id) {
                    call.quality = Some(QualityView {
                        quality: *quality,
                        mos: *mos,
                        loss_percent: *loss_percent,
                        jitter_ms: *jitter_ms,
                        rtt_ms: *rtt_ms,
                    });
                }
            }
            PhoneEvent::Device { call_id, device } => {
                if let Some(call) = self.find_mut(call_id) {
                    call.device = Some(device.clone());
                }
            }
            PhoneEvent::Ended { call_id, reason, .. } => {
                let Some(index) = self.calls.iter().position(|c| &c.sip_call_id == call_id) else {
                    return Followed::Nothing;
                };
                let call = self.calls.remove(index);
                return Followed::Ended(Box::new(finished(call, *reason, operator)));
            }
            PhoneEvent::Registered { .. }
            | PhoneEvent::RegistrationFailed { .. }
            | PhoneEvent::Ringing { .. }
            | PhoneEvent::Dtmf { .. }
            | PhoneEvent::Transferred { .. } => {}
        }
        Followed::Nothing
    }

    pub fn find(&self, sip_call_id: &str) -> Option<&CallView> {
        self.calls.iter().find(|c| c.sip_call_id == sip_call_id)
    }

    pub fn find_mut(&mut self, sip_call_id: &str) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.sip_call_id == sip_call_id)
    }

    /// The latest call in one of `states`.
    pub fn latest(&self, states: &[CallState]) -> Option<&CallView> {
        self.calls.iter().rev().find(|c| states.contains(&c.state))
    }

    /// Is the call with this call-log id still going on?
    pub fn in_progress(&self, call_id: &str) -> bool {
        self.calls.iter().any(|c| c.call_id == call_id)
    }

    fn set_state(&mut self, sip_call_id: &str, state: CallState) {
        if let Some(call) = self.find_mut(sip_call_id) {
            call.state = state;
        }
    }
}

/// The call-log entry of a call that ended (the missed-call rules apply
/// when it is recorded).
fn finished(call: CallView, reason: EndReason, operator: Option<&str>) -> FinishedCall {
    let result = match (call.answered_at, reason) {
        (Some(_), _) => CallResult::Answered,
        (None, EndReason::Busy) => CallResult::Busy,
        (None, EndReason::Failed | EndReason::TooManyRedirects) => CallResult::Failed,
        (None, _) => CallResult::Missed,
    };
    FinishedCall {
        id: Some(call.call_id.clone()),
        direction: call.direction,
        peer: call.number.clone(),
        did: call.did.clone(),
        person_id: call.person_id(),
        operator_id: operator.map(str::to_owned),
        started_at: call.started_at,
        answered_at: call.answered_at,
        ended_at: now_millis(),
        result,
        sip_call_id: Some(call.sip_call_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::card::CardPerson;

    fn incoming(id: &str, card: Option<CallerCard>) -> PhoneEvent {
        PhoneEvent::Incoming {
            call_id: id.into(),
            from: "+79161234567".into(),
            display_name: None,
            did: Some("+74950000000".into()),
            card: card.map(Box::new),
        }
    }

    #[test]
    fn a_call_that_ends_gives_its_log_entry() {
        let card = CallerCard {
            number: "+79161234567".into(),
            people: vec![CardPerson { id: "p1".into(), ..Default::default() }],
            tracking: None,
        };
        let mut t = CallTracker::default();
        assert!(matches!(t.follow(&incoming("a", Some(card)), Some("op")), Followed::Nothing));
        assert!(matches!(t.follow(&PhoneEvent::Answered { call_id: "a".into() }, Some("op")), Followed::Answered(_)));
        let ended = PhoneEvent::Ended { call_id: "a".into(), reason: EndReason::HungUp, duration_s: 3 };
        let Followed::Ended(call) = t.follow(&ended, Some("op")) else { panic!("no entry") };
        assert_eq!(call.peer, "+79161234567");
        assert_eq!((call.direction, call.result), (CallDirection::In, CallResult::Answered));
        assert_eq!((call.person_id.as_deref(), call.operator_id.as_deref()), (Some("p1"), Some("op")));
        assert_eq!(call.did.as_deref(), Some("+74950000000"));
        assert!(t.calls.is_empty());
    }

    #[test]
    fn unanswered_busy_and_failed_calls_keep_their_result() {
        let mut t = CallTracker::default();
        for (id, reason, result) in [
            ("m", EndReason::NotAnswered, CallResult::Missed),
            ("b", EndReason::Busy, CallResult::Busy),
            ("f", EndReason::Failed, CallResult::Failed),
        ] {
            t.follow(&PhoneEvent::Dialing { call_id: id.into(), to: "+380671112233".into(), card: None }, None);
            assert_eq!(t.latest(&[CallState::Dialing]).map(|c| c.sip_call_id.as_str()), Some(id));
            let Followed::Ended(call) =
                t.follow(&PhoneEvent::Ended { call_id: id.into(), reason, duration_s: 0 }, None)
            else {
                panic!("no entry")
            };
            assert_eq!((call.direction, call.result, call.operator_id), (CallDirection::Out, result, None));
        }
    }
}

//! The user agent's vocabulary, shared by the SIP user agent that produces it
//! and the two faces that consume it (the window and the headless
//! `clinicdesk phone`, through `crate::softphone`). Commands go to the user
//! agent, events come back; the link calls a waker of the face's choosing
//! when an event arrives (the window repaints only then). Nothing here knows
//! of a window: the waker is any function.

use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender, unbounded};
use serde::Serialize;

use crate::crm::card::CallerCard;
use crate::media::{DeviceEvent, Quality};

/// What the operator asks the softphone to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneCommand {
    Dial {
        number: String,
    },
    Answer {
        call_id: String,
    },
    /// Decline a ringing call (busy).
    Reject {
        call_id: String,
    },
    Hangup {
        call_id: String,
    },
    Hold {
        call_id: String,
    },
    Resume {
        call_id: String,
    },
    Mute {
        call_id: String,
        on: bool,
    },
    Transfer {
        call_id: String,
        target: String,
    },
    Dtmf {
        call_id: String,
        digits: String,
    },
    /// The operator's status changed: whether calls may ring.
    SetAvailability(Availability),
}

/// Whether calls ring at this workstation (from the operator's status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    #[default]
    Available,
    /// Answer new calls busy (486).
    Busy,
    /// Do not disturb: decline new calls as temporarily unavailable (480).
    DoNotDisturb,
}

/// Why a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Either side hung up after talking.
    HungUp,
    /// The caller gave up (CANCEL) or nobody answered in time.
    NotAnswered,
    /// The operator declined the call.
    Rejected,
    /// The other side was busy.
    Busy,
    /// The call could not be set up (network, PBX refusal).
    Failed,
    /// Transferred to someone else.
    Transferred,
    /// Hung up by the phone: no RTP or RTCP came from the other side for the
    /// media timeout (its BYE was most likely lost).
    MediaTimeout,
    /// Our call was redirected (3xx) in a loop or more times than allowed.
    TooManyRedirects,
}

/// What the softphone reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum PhoneEvent {
    Registered {
        account: String,
    },
    /// Not registered: the registrar refused or failed, or did not answer.
    RegistrationFailed {
        code: u16,
        reason: String,
        /// When the phone registers again by itself (milliseconds from now);
        /// none when it waits for new settings (a wrong password).
        retry_in_ms: Option<u64>,
    },
    /// A call rings: the card is looked up before this is sent.
    Incoming {
        call_id: String,
        from: String,
        display_name: Option<String>,
        /// The clinic number that was dialled (call tracking).
        did: Option<String>,
        card: Option<Box<CallerCard>>,
    },
    /// The operator's call is being set up.
    Dialing {
        call_id: String,
        to: String,
        card: Option<Box<CallerCard>>,
    },
    /// The other side rings.
    Ringing {
        call_id: String,
    },
    Answered {
        call_id: String,
    },
    Held {
        call_id: String,
    },
    Resumed {
        call_id: String,
    },
    Transferred {
        call_id: String,
        target: String,
    },
    Dtmf {
        call_id: String,
        digit: char,
    },
    Ended {
        call_id: String,
        reason: EndReason,
        duration_s: u64,
    },
    /// How the call sounds now (from loss, jitter and delay), every second
    /// or so while it has media.
    Quality {
        call_id: String,
        quality: Quality,
        /// Estimated mean opinion score, 1–4.5.
        mos: f64,
        loss_percent: f64,
        jitter_ms: f64,
        rtt_ms: Option<f64>,
    },
    /// A sound device was replaced mid-call (the call goes on) or could not
    /// be opened.
    Device {
        call_id: String,
        device: DeviceEvent,
    },
}

/// What a face wants done when an event arrives (the window: repaint).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

impl PhoneEvent {
    /// The call the event is about (none for registration events).
    pub fn call_id(&self) -> Option<&str> {
        match self {
            PhoneEvent::Registered { .. } | PhoneEvent::RegistrationFailed { .. } => None,
            PhoneEvent::Incoming { call_id, .. }
            | PhoneEvent::Dialing { call_id, .. }
            | PhoneEvent::Ringing { call_id }
            | PhoneEvent::Answered { call_id }
            | PhoneEvent::Held { call_id }
            | PhoneEvent::Resumed { call_id }
            | PhoneEvent::Transferred { call_id, .. }
            | PhoneEvent::Dtmf { call_id, .. }
            | PhoneEvent::Ended { call_id, .. }
            | PhoneEvent::Quality { call_id, .. }
            | PhoneEvent::Device { call_id, .. } => Some(call_id),
        }
    }
}

/// The face's end of the link.
pub struct PhoneLink {
    commands: Sender<PhoneCommand>,
    events: Receiver<PhoneEvent>,
    waker: Arc<OnceLock<Waker>>,
}

/// The user agent's end of the link.
#[derive(Clone)]
pub struct PhoneEnd {
    events: Sender<PhoneEvent>,
    pub commands: Receiver<PhoneCommand>,
    waker: Arc<OnceLock<Waker>>,
}

/// A connected pair.
pub fn link() -> (PhoneLink, PhoneEnd) {
    let (command_tx, command_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    let waker = Arc::new(OnceLock::new());
    (
        PhoneLink { commands: command_tx, events: event_rx, waker: waker.clone() },
        PhoneEnd { events: event_tx, commands: command_rx, waker },
    )
}

impl PhoneLink {
    /// Lets events wake this face: `waker` runs after each event is sent
    /// (set once; later calls change nothing).
    pub fn wake(&self, waker: impl Fn() + Send + Sync + 'static) {
        let _ = self.waker.set(Arc::new(waker));
    }

    pub fn send(&self, command: PhoneCommand) {
        // A closed link means the user agent stopped; it reported why.
        let _ = self.commands.send(command);
    }

    pub fn drain(&self) -> impl Iterator<Item = PhoneEvent> + '_ {
        self.events.try_iter()
    }

    /// Whether events wait to be handled (checked while the window is
    /// hidden, to decide whether to run its ui anyway).
    pub fn has_pending(&self) -> bool {
        !self.events.is_empty()
    }

    /// The events as a channel, for a face that waits on several at once
    /// (the headless `clinicdesk phone` also waits on its stdin).
    pub fn events(&self) -> &Receiver<PhoneEvent> {
        &self.events
    }
}

impl PhoneEnd {
    /// Reports an event and wakes the face.
    pub fn send(&self, event: PhoneEvent) {
        if self.events.send(event).is_ok()
            && let Some(wake) = self.waker.get()
        {
            wake();
        }
    }
}

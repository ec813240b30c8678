//! Calls as the window follows them: the link to the softphone and how it
//! runs, the call tracker fed with the phone's events, and what follows a
//! call — it is recorded (with the missed-call rules) and the inquiry form
//! opens pre-filled, kept as a draft while the operator types. Nothing here
//! draws: the caller card is `caller_card.rs`, the phone panel `softphone.rs`.

use std::time::{Duration, Instant};

use super::forms::Editor;
use super::message::Message;
use super::services::{Command, Services};
use crate::crm::*;
use crate::settings::UnavailableAnswer;
use crate::sip::phone::{Availability, EndReason, PhoneCommand, PhoneEvent, PhoneLink};
use crate::softphone::config::SetupError;
use crate::softphone::run::PhoneStatus;
use crate::softphone::tracker::{CallTracker, Followed};

/// How the softphone of this workstation runs.
#[derive(Clone, Debug, Default)]
pub enum PhoneMode {
    /// IP telephony is off on this workstation (nothing registered).
    #[default]
    Off,
    /// It could not start: why, and what to do.
    Problem(Message),
    /// Registering with the clinic's PBX as this account.
    Account(String),
    /// No PBX: calls come straight to this address (the demo).
    Direct(String),
}

impl PhoneMode {
    /// The window's words for how the softphone runs.
    pub fn of(status: &PhoneStatus) -> PhoneMode {
        match status {
            PhoneStatus::Off => PhoneMode::Off,
            PhoneStatus::Problem(e) => PhoneMode::Problem(match e {
                SetupError::NoServer => Message::new("phone-no-server"),
                SetupError::NoUser => Message::new("phone-no-user"),
                SetupError::MediaTimeout { secs, min, max } => {
                    Message::new("phone-bad-media-timeout").with("secs", secs).with("min", min).with("max", max)
                }
                SetupError::NoPassword { account } | SetupError::Keyring { account, .. } => {
                    Message::new("phone-no-password").with("account", account)
                }
                other => Message::new("phone-cannot-start").with("reason", other),
            }),
            PhoneStatus::Account(account) => PhoneMode::Account(account.clone()),
            PhoneStatus::Direct(addr) => PhoneMode::Direct(addr.clone()),
        }
    }
}

/// The softphone's state in the window.
#[derive(Default)]
pub struct Calls {
    link: Option<PhoneLink>,
    pub mode: PhoneMode,
    /// The calls going on (the same tracker as `clinicdesk phone`'s).
    pub tracker: CallTracker,
    /// The account registered, or why not.
    pub registration: Option<Result<String, NotRegistered>>,
    /// Why the last call ended, when the operator should be told (the
    /// phone hung up a silent call, a redirect loop); gone with the next call.
    pub last_end: Option<Message>,
    /// Draft autosave: the last form written and when.
    last_draft: Option<(InquiryForm, Instant)>,
}

/// Why the phone is not registered, and when it tries again by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRegistered {
    pub code: u16,
    pub reason: String,
    /// None: it waits for new settings (a wrong password).
    pub retry_at: Option<Instant>,
}

/// How often a changing draft is written at most.
const DRAFT_EVERY: Duration = Duration::from_millis(400);

impl Calls {
    pub fn connect(&mut self, link: PhoneLink) {
        self.link = Some(link);
    }

    pub fn wake(&self, ctx: &egui::Context) {
        if let Some(link) = &self.link {
            let ctx = ctx.clone();
            link.wake(move || ctx.request_repaint());
        }
    }

    /// Whether the phone rings, from the operator's status and the setting
    /// for what callers hear meanwhile (busy, or do not disturb).
    pub fn follow_status(&mut self, status: OperatorStatus, answer: UnavailableAnswer) {
        let availability = match (status.declines_calls(), answer) {
            (false, _) => Availability::Available,
            (true, UnavailableAnswer::Busy) => Availability::Busy,
            (true, UnavailableAnswer::DoNotDisturb) => Availability::DoNotDisturb,
        };
        self.send(PhoneCommand::SetAvailability(availability));
    }

    pub fn send(&mut self, command: PhoneCommand) {
        if let PhoneCommand::Mute { call_id, on } = &command
            && let Some(call) = self.tracker.find_mut(call_id)
        {
            call.muted = *on;
        }
        if let Some(link) = &self.link {
            link.send(command);
        }
    }

    pub fn is_connected(&self) -> bool {
        self.link.is_some()
    }

    /// Whether a call rings or goes on, or news of one waits.
    pub fn needs_attention(&self) -> bool {
        !self.tracker.calls.is_empty() || self.link.as_ref().is_some_and(|l| l.has_pending())
    }

    pub fn drain(&self) -> Vec<PhoneEvent> {
        self.link.as_ref().map(|l| l.drain().collect()).unwrap_or_default()
    }

    /// Applies one event of the softphone: the call tracker follows it;
    /// a call answered opens the inquiry form, a call ended is recorded.
    pub fn handle(&mut self, event: PhoneEvent, env: &mut CallEnv<'_>) {
        match &event {
            PhoneEvent::Registered { account } => self.registration = Some(Ok(account.clone())),
            PhoneEvent::RegistrationFailed { code, reason, retry_in_ms } => {
                let retry_at = retry_in_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
                self.registration = Some(Err(NotRegistered { code: *code, reason: reason.clone(), retry_at }));
            }
            PhoneEvent::Incoming { .. } | PhoneEvent::Dialing { .. } => self.last_end = None,
            PhoneEvent::Ended { reason, .. } => {
                if let Some(notice) = end_notice(*reason) {
                    self.last_end = Some(notice);
                }
            }
            _ => {}
        }
        match self.tracker.follow(&event, env.user_id.as_deref()) {
            // The inquiry form opens as soon as the talk starts, so what the
            // operator types is kept from the first word.
            Followed::Answered(call) if call.direction == CallDirection::In && env.editor.is_none() => {
                *env.editor = Some(Editor::for_call(&call));
            }
            Followed::Ended(call) => env.services.command(Command::RecordCall(*call)),
            Followed::Answered(_) | Followed::Nothing => {}
        }
    }

    /// Is the call of this draft still going on?
    pub fn in_progress(&self, call_id: &str) -> bool {
        self.tracker.in_progress(call_id)
    }

    /// Writes the draft of the open inquiry when it changed (at most every
    /// few hundred milliseconds), so a crash or a dropped call loses nothing.
    pub fn autosave_draft(&mut self, ctx: &egui::Context, editor: Option<&Editor>, services: &Services) {
        let Some((key, form)) = editor.and_then(|e| e.draft()) else {
            self.last_draft = None;
            return;
        };
        let changed = self.last_draft.as_ref().is_none_or(|(last, _)| last != form);
        if !changed {
            return;
        }
        let due = self.last_draft.as_ref().is_none_or(|(_, at)| at.elapsed() >= DRAFT_EVERY);
        if due {
            if let Ok(json) = serde_json::to_value(form) {
                services.command(Command::SaveDraft { key, form: json });
            }
            self.last_draft = Some((form.clone(), Instant::now()));
        } else {
            ctx.request_repaint_after(DRAFT_EVERY);
        }
    }
}

/// What the operator is told about a call that ended this way, if anything
/// beyond the call log: the reasons the phone itself ended it.
pub fn end_notice(reason: EndReason) -> Option<Message> {
    match reason {
        EndReason::MediaTimeout => Some(Message::new("phone-ended-media-timeout")),
        EndReason::TooManyRedirects => Some(Message::new("phone-ended-redirects")),
        EndReason::HungUp
        | EndReason::NotAnswered
        | EndReason::Rejected
        | EndReason::Busy
        | EndReason::Failed
        | EndReason::Transferred => None,
    }
}

/// What handling a phone event may touch.
pub struct CallEnv<'a> {
    pub services: &'a Services,
    pub user_id: Option<String>,
    pub editor: &'a mut Option<Editor>,
}

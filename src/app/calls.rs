//! Calls as the window lives them: the caller card that pops up in a window of
//! its own (above the others) when a call rings, answering and declining
//! from it, and what follows a call — it is recorded (with the missed-call
//! rules) and the inquiry form opens pre-filled, kept as a draft while the
//! operator types.

use std::time::{Duration, Instant};

use egui::RichText;

use super::forms::Editor;
use super::message::Message;
use super::services::{Command, Services};
use super::widgets::{OVERDUE, WARNING, enum_text, format_time};
use super::{Action, Env};
use crate::crm::card::CardPerson;
use crate::crm::*;
use crate::settings::LocalSettings;
use crate::sip::phone::{EndReason, PhoneCommand, PhoneEvent, PhoneLink};
use crate::softphone::config::SetupError;
use crate::softphone::run::PhoneStatus;
use crate::softphone::tracker::{CallState, CallTracker, CallView, Followed};

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

/// The caller card of every ringing or active call, in a window of its own
/// that stays above other windows (embedded where the platform has only one
/// window, as in tests).
pub fn caller_cards_ui(ctx: &egui::Context, env: &mut Env<'_>, calls: &mut Calls, settings: &LocalSettings) {
    let mut commands = Vec::new();
    for call in calls.tracker.calls.iter_mut() {
        let id = egui::ViewportId::from_hash_of(("caller-card", &call.sip_call_id));
        let title = env.i18n.tr(match call.state {
            CallState::Ringing => "card-title-incoming",
            CallState::Dialing => "card-title-dialing",
            CallState::Active | CallState::Held => "card-title-active",
        });
        let builder = egui::ViewportBuilder::default()
            .with_title(&title)
            .with_inner_size([440.0, 560.0])
            .with_window_level(egui::WindowLevel::AlwaysOnTop);
        ctx.show_viewport_immediate(id, builder, |ui, class| {
            if class == egui::ViewportClass::EmbeddedWindow {
                // egui already put it in a window of the main viewport.
                card_ui(ui, env, call, settings, &mut commands);
            } else {
                egui::CentralPanel::default_margins().show(ui, |ui| card_ui(ui, env, call, settings, &mut commands));
            }
        });
    }
    for command in commands {
        calls.send(command);
    }
}

fn card_ui(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    call: &mut CallView,
    settings: &LocalSettings,
    commands: &mut Vec<PhoneCommand>,
) {
    let number = Phone::parse(&call.number, env.country).map(|p| p.display()).unwrap_or_else(|_| call.number.clone());
    ui.heading(&number);
    if let Some(name) = &call.display_name {
        ui.label(RichText::new(name).weak());
    }
    if let Some(tracking) = call.card.as_ref().and_then(|c| c.tracking.as_ref()) {
        let source = match &tracking.campaign {
            Some(campaign) => format!("{} · {campaign}", tracking.channel),
            None => tracking.channel.clone(),
        };
        ui.label(env.i18n.tr_args("card-channel", &[("channel", source)]));
    }
    ui.horizontal(|ui| {
        let id = call.sip_call_id.clone();
        match call.state {
            CallState::Ringing => {
                if ui.button(RichText::new(env.tr("action-answer")).strong()).clicked() {
                    commands.push(PhoneCommand::Answer { call_id: id.clone() });
                }
                if ui.button(env.tr("action-reject")).clicked() {
                    commands.push(PhoneCommand::Reject { call_id: id });
                }
            }
            CallState::Dialing | CallState::Active | CallState::Held => {
                if ui.button(env.tr("action-hang-up")).clicked() {
                    commands.push(PhoneCommand::Hangup { call_id: id });
                }
            }
        }
    });
    ui.separator();
    let people = call.card.as_ref().map(|c| c.people.clone()).unwrap_or_default();
    if people.is_empty() {
        ui.label(RichText::new(env.tr("card-new-caller")).strong());
        if ui.button(env.tr("action-new-person")).clicked() {
            env.actions.push(Action::Edit(Box::new(Editor::new_person(Some(call.number.clone())))));
        }
        return;
    }
    if people.len() > 1 {
        ui.label(env.i18n.tr_args("card-shared-number", &[("count", people.len().to_string())]));
    }
    egui::ScrollArea::vertical().show(ui, |ui| {
        for person in &people {
            person_card_ui(ui, env, call, person, settings, people.len() > 1);
            ui.separator();
        }
    });
}

fn person_card_ui(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    call: &mut CallView,
    p: &CardPerson,
    settings: &LocalSettings,
    several: bool,
) {
    ui.horizontal(|ui| {
        if several {
            let chosen = call.chosen_person.as_deref() == Some(&p.id);
            if ui.radio(chosen, "").on_hover_text(env.tr("card-this-is-the-caller")).clicked() {
                call.chosen_person = Some(p.id.clone());
            }
        }
        if ui.link(RichText::new(&p.full_name).strong()).clicked() {
            env.actions.push(Action::OpenPerson(p.id.clone()));
        }
        super::forms::new_task_menu_ui(ui, env, Some(&p.id), None, Some(&p.full_name));
    });
    let why = enum_text(env.i18n, "phone-kind", &p.matched_phone_kind);
    ui.label(RichText::new(env.i18n.tr_args("card-why-match", &[("kind", why)])).weak());
    if let Some(birth) = &p.birth_date {
        ui.label(format!("{}: {birth}", env.tr("field-birth-date")));
    }
    if let Some(channel) = &p.first_channel {
        ui.label(env.i18n.tr_args("card-first-channel", &[("channel", channel.clone())]));
    }
    if !settings.show_history_during_call {
        return;
    }
    let section = |ui: &mut egui::Ui, key: &str, count: usize| {
        ui.label(RichText::new(env.i18n.tr_args(key, &[("count", count.to_string())])).strong());
    };
    section(ui, "card-open-inquiries", p.open_inquiries.len());
    for i in &p.open_inquiries {
        ui.label(format!(
            "{} · {} · {}",
            format_time(i.created_at),
            i.reason.clone().unwrap_or_else(|| enum_text(env.i18n, "inquiry-source", i.source.code())),
            enum_text(env.i18n, "inquiry-status", i.status.code())
        ));
    }
    if env.rights.has(Right::ViewDeals) {
        section(ui, "card-open-deals", p.open_deals.len());
        for d in &p.open_deals {
            ui.label(format!("{} · {} · {}", d.title, d.stage, format_amount(d.amount_cents)));
        }
    }
    section(ui, "card-open-tasks", p.open_tasks.len());
    for t in &p.open_tasks {
        let text = RichText::new(format!("{} · {}", format_time(t.deadline_at), t.title));
        ui.label(if t.deadline_at < env.now { text.color(OVERDUE) } else { text });
    }
    for (key, visit) in [("card-next-visit", &p.next_visit), ("card-last-visit", &p.last_visit)] {
        if let Some(v) = visit {
            let what = format!(
                "{} · {} · {} · {}",
                format_time(v.starts_at),
                v.doctor,
                v.service,
                enum_text(env.i18n, "visit-status", v.status.code())
            );
            ui.label(env.i18n.tr_args(key, &[("visit", what)]));
        }
    }
    section(ui, "card-last-calls", p.last_calls.len());
    for c in &p.last_calls {
        let text = format!(
            "{} · {} · {} · {}",
            format_time(c.started_at),
            enum_text(env.i18n, "call-direction", c.direction.code()),
            enum_text(env.i18n, "call-result", c.result.code()),
            c.operator.clone().unwrap_or_default()
        );
        ui.label(if c.result == CallResult::Missed { RichText::new(text).color(WARNING) } else { RichText::new(text) });
    }
}

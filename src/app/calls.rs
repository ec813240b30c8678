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
use crate::crm::card::{CallerCard, CardPerson};
use crate::crm::*;
use crate::media::{DeviceEvent, Quality};
use crate::settings::LocalSettings;
use crate::sip::phone::{EndReason, PhoneCommand, PhoneEvent, PhoneLink};
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
    /// The id its call-log entry will have.
    pub call_id: String,
    pub direction: CallDirection,
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

impl CallView {
    /// The person the call is about: the one picked, or the only match.
    pub fn person_id(&self) -> Option<String> {
        self.chosen_person.clone().or_else(|| match self.card.as_ref().map(|c| c.people.as_slice()) {
            Some([only]) => Some(only.id.clone()),
            _ => None,
        })
    }
}

/// The softphone's state in the window.
#[derive(Default)]
pub struct Calls {
    link: Option<PhoneLink>,
    pub mode: PhoneMode,
    pub calls: Vec<CallView>,
    pub registration: Option<Result<String, (u16, String)>>,
    /// Draft autosave: the last form written and when.
    last_draft: Option<(InquiryForm, Instant)>,
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
            && let Some(call) = self.find(call_id)
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
        !self.calls.is_empty() || self.link.as_ref().is_some_and(|l| l.has_pending())
    }

    pub fn drain(&self) -> Vec<PhoneEvent> {
        self.link.as_ref().map(|l| l.drain().collect()).unwrap_or_default()
    }

    /// Applies one event of the softphone.
    pub fn handle(&mut self, event: PhoneEvent, env: &mut CallEnv<'_>) {
        match event {
            PhoneEvent::Registered { account } => self.registration = Some(Ok(account)),
            PhoneEvent::RegistrationFailed { code, reason } => self.registration = Some(Err((code, reason))),
            PhoneEvent::Incoming { call_id, from, display_name, did, card } => {
                let number = card.as_ref().map_or_else(|| from.clone(), |c| c.number.clone());
                self.calls.push(CallView {
                    sip_call_id: call_id,
                    call_id: new_id(),
                    direction: CallDirection::In,
                    number,
                    display_name,
                    did,
                    card: card.map(|c| *c),
                    state: CallState::Ringing,
                    started_at: now_millis(),
                    answered_at: None,
                    chosen_person: None,
                    muted: false,
                    quality: None,
                    device: None,
                });
            }
            PhoneEvent::Dialing { call_id, to, card } => self.calls.push(CallView {
                sip_call_id: call_id,
                call_id: new_id(),
                direction: CallDirection::Out,
                number: card.as_ref().map_or_else(|| to.clone(), |c| c.number.clone()),
                display_name: None,
                did: None,
                card: card.map(|c| *c),
                state: CallState::Dialing,
                started_at: now_millis(),
                answered_at: None,
                chosen_person: None,
                muted: false,
                quality: None,
                device: None,
            }),
            PhoneEvent::Answered { call_id } => {
                if let Some(call) = self.find(&call_id) {
                    call.state = CallState::Active;
                    call.answered_at = Some(now_millis());
                    let call = call.clone();
                    // The inquiry form opens as soon as the talk starts, so
                    // what the operator types is kept from the first word.
                    if call.direction == CallDirection::In && env.editor.is_none() {
                        *env.editor = Some(Editor::for_call(&call));
                    }
                }
            }
            PhoneEvent::Held { call_id } => self.set_state(&call_id, CallState::Held),
            PhoneEvent::Resumed { call_id } => self.set_state(&call_id, CallState::Active),
            PhoneEvent::Quality { call_id, quality, mos, loss_percent, jitter_ms, rtt_ms } => {
                if let Some(call) = self.find(&call_id) {
                    call.quality = Some(QualityView { quality, mos, loss_percent, jitter_ms, rtt_ms });
                }
            }
            PhoneEvent::Device { call_id, device } => {
                if let Some(call) = self.find(&call_id) {
                    call.device = Some(device);
                }
            }
            PhoneEvent::Ringing { .. } | PhoneEvent::Dtmf { .. } | PhoneEvent::Transferred { .. } => {}
            PhoneEvent::Ended { call_id, reason, .. } => {
                let Some(index) = self.calls.iter().position(|c| c.sip_call_id == call_id) else { return };
                let call = self.calls.remove(index);
                let result = match (call.answered_at, reason) {
                    (Some(_), _) => CallResult::Answered,
                    (None, EndReason::Busy) => CallResult::Busy,
                    (None, EndReason::Failed) => CallResult::Failed,
                    (None, _) => CallResult::Missed,
                };
                env.services.command(Command::RecordCall(FinishedCall {
                    id: Some(call.call_id.clone()),
                    direction: call.direction,
                    peer: call.number.clone(),
                    did: call.did.clone(),
                    person_id: call.person_id(),
                    operator_id: env.user_id.clone(),
                    started_at: call.started_at,
                    answered_at: call.answered_at,
                    ended_at: now_millis(),
                    result,
                    sip_call_id: Some(call.sip_call_id.clone()),
                }));
            }
        }
    }

    fn find(&mut self, sip_call_id: &str) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.sip_call_id == sip_call_id)
    }

    fn set_state(&mut self, sip_call_id: &str, state: CallState) {
        if let Some(call) = self.find(sip_call_id) {
            call.state = state;
        }
    }

    /// Is the call of this draft still going on?
    pub fn in_progress(&self, call_id: &str) -> bool {
        self.calls.iter().any(|c| c.call_id == call_id)
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
    for call in calls.calls.iter_mut() {
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

/// The softphone of the window, started before it opens, and stopped after.
pub struct PhoneRun {
    pub link: Option<PhoneLink>,
    pub mode: PhoneMode,
    ua: Option<crate::sip::ua::UaHandle>,
    demo: Option<crate::demo::caller::DemoCaller>,
}

impl PhoneRun {
    /// No softphone.
    pub fn off() -> PhoneRun {
        PhoneRun { link: None, mode: PhoneMode::Off, ua: None, demo: None }
    }

    /// Hangs up, unregisters and stops the demo caller (on exit).
    pub fn stop(self) {
        if let Some(demo) = self.demo {
            demo.stop();
        }
        if let Some(ua) = self.ua {
            ua.shutdown();
        }
    }
}

/// Starts this workstation's softphone as its settings say: nothing when
/// telephony is off; the `[sip]` account with its password from the keyring
/// (or `CLINICDESK_SIP_PASSWORD`); in the demo without an account, a phone on
/// loopback that the demo caller rings. What goes wrong is shown in the
/// phone panel, never fatal for the window.
pub fn start_phone(settings: &LocalSettings, replica: &std::path::Path, demo: bool) -> PhoneRun {
    use crate::demo::caller::{DemoAnswerer, DemoCaller, DemoCallerConfig};
    use crate::sip::ua::{self, AudioChoice, UaConfig, UaError};

    let off = |mode| PhoneRun { mode, ..PhoneRun::off() };
    if !settings.telephony_enabled {
        return off(PhoneMode::Off);
    }
    let problem = |e: &UaError| match e {
        UaError::NoServer => Message::new("phone-no-server"),
        UaError::NoUser => Message::new("phone-no-user"),
        UaError::NoPassword { account } => Message::new("phone-no-password").with("account", account),
        other => Message::new("phone-cannot-start").with("reason", other),
    };
    let replica = Some(replica.to_path_buf()).filter(|p| p.exists());
    let mut answerer = None;
    let config = if settings.sip.server.trim().is_empty() && demo {
        let a = match DemoAnswerer::start() {
            Ok(a) => a,
            Err(e) => return off(PhoneMode::Problem(problem(&e))),
        };
        let config = UaConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            country: settings.country,
            replica: replica.clone(),
            audio: AudioChoice::Devices {
                input: settings.audio.input_device.clone(),
                output: settings.audio.output_device.clone(),
            },
            local_user: settings.user_login.clone().unwrap_or_else(|| "operator".into()),
            direct_peer: Some(a.local_addr()),
            ..UaConfig::default()
        };
        answerer = Some(a);
        Ok(config)
    } else if settings.sip.server.trim().is_empty() || settings.sip.username.trim().is_empty() {
        // The keyring is not asked for an account that is not there.
        UaConfig::for_workstation(settings, replica.clone(), None)
    } else {
        let password = crate::settings::secrets::sip_password(&settings.sip.label())
            .map_err(|e| tracing::warn!(error = %e, "the SIP password cannot be read from the keyring"))
            .ok()
            .flatten();
        UaConfig::for_workstation(settings, replica.clone(), password)
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => return off(PhoneMode::Problem(problem(&e))),
    };
    let account = config.account.as_ref().map(|a| a.label());
    let (link, end) = crate::sip::phone::link();
    let handle = match ua::start(config, end) {
        Ok(h) => h,
        Err(e) => return off(PhoneMode::Problem(problem(&e))),
    };
    let mode = match account {
        Some(account) => PhoneMode::Account(account),
        None => PhoneMode::Direct(handle.local_addr().to_string()),
    };
    let demo = match (answerer, &replica) {
        (Some(a), Some(replica)) => {
            Some(DemoCaller::start(a, handle.local_addr(), replica, DemoCallerConfig::default()))
        }
        _ => None,
    };
    PhoneRun { link: Some(link), mode, ua: Some(handle), demo }
}

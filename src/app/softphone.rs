//! The softphone panel: how the phone stands (registered, or why not), the
//! number field with its dial pad, and every call in progress with its
//! buttons (answer, reject, hang up, hold, mute, transfer, DTMF keypad) and
//! its quality. The caller's card opens in a window of its own
//! ([`super::caller_card`]); this panel is what the operator's hands use.

use egui::{Key, KeyboardShortcut, Modifiers, RichText};

use super::Env;
use super::calls::{Calls, PhoneMode};
use super::widgets::{GOOD, OVERDUE, WARNING};
use crate::crm::{CallDirection, Phone, now_millis};
use crate::media::{DeviceDirection, DeviceEvent, Quality};
use crate::sip::phone::PhoneCommand;
use crate::softphone::tracker::{CallState, CallView, QualityView};

pub const SHORTCUT_DIAL: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::D);
pub const SHORTCUT_MUTE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F7);
pub const SHORTCUT_HOLD: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F8);
pub const SHORTCUT_ANSWER: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F9);
pub const SHORTCUT_HANG_UP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F10);

const KEYS: [[char; 3]; 4] = [['1', '2', '3'], ['4', '5', '6'], ['7', '8', '9'], ['*', '0', '#']];

/// What the panel keeps between frames.
#[derive(Default)]
pub struct Softphone {
    number: String,
    transfer_to: String,
    focus_number: bool,
}

impl Softphone {
    /// Applies the softphone's keyboard shortcuts.
    pub fn shortcuts(&mut self, ctx: &egui::Context, calls: &mut Calls) {
        let mut commands = Vec::new();
        ctx.input_mut(|input| {
            if input.consume_shortcut(&SHORTCUT_DIAL) {
                self.focus_number = true;
            }
            if input.consume_shortcut(&SHORTCUT_ANSWER)
                && let Some(call) = latest(calls, &[CallState::Ringing])
            {
                commands.push(PhoneCommand::Answer { call_id: call.sip_call_id.clone() });
            }
            if input.consume_shortcut(&SHORTCUT_HANG_UP) {
                if let Some(call) = latest(calls, &[CallState::Active, CallState::Held, CallState::Dialing]) {
                    commands.push(PhoneCommand::Hangup { call_id: call.sip_call_id.clone() });
                } else if let Some(call) = latest(calls, &[CallState::Ringing]) {
                    commands.push(PhoneCommand::Reject { call_id: call.sip_call_id.clone() });
                }
            }
            if input.consume_shortcut(&SHORTCUT_HOLD) {
                if let Some(call) = latest(calls, &[CallState::Active]) {
                    commands.push(PhoneCommand::Hold { call_id: call.sip_call_id.clone() });
                } else if let Some(call) = latest(calls, &[CallState::Held]) {
                    commands.push(PhoneCommand::Resume { call_id: call.sip_call_id.clone() });
                }
            }
            if input.consume_shortcut(&SHORTCUT_MUTE)
                && let Some(call) = latest(calls, &[CallState::Active, CallState::Held])
            {
                commands.push(PhoneCommand::Mute { call_id: call.sip_call_id.clone(), on: !call.muted });
            }
        });
        for command in commands {
            calls.send(command);
        }
    }

    /// The panel's content.
    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>, calls: &mut Calls) {
        let mut commands = Vec::new();
        ui.add_space(6.0);
        ui.heading(env.tr("phone-title"));
        registration_ui(ui, env, calls);
        if let Some(notice) = &calls.last_end {
            ui.label(RichText::new(notice.text(env.i18n)).color(WARNING));
        }
        ui.add_space(6.0);

        let connected = calls.is_connected();
        let talking = latest(calls, &[CallState::Active, CallState::Held]).map(|c| c.sip_call_id.clone());
        let label = ui.label(env.tr("phone-number-label"));
        let field = egui::TextEdit::singleline(&mut self.number)
            .hint_text(env.tr("phone-number-hint"))
            .desired_width(ui.available_width());
        let response = ui
            .add_enabled(connected, field)
            .labelled_by(label.id)
            .on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_DIAL));
        if std::mem::take(&mut self.focus_number) {
            response.request_focus();
        }
        let enter = response.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
        let ready = connected && !self.number.trim().is_empty();
        let dial = ui.add_enabled(ready, egui::Button::new(env.tr("action-dial")).min_size(egui::vec2(140.0, 26.0)));
        if (dial.clicked() || enter) && ready {
            commands.push(PhoneCommand::Dial { number: self.number.trim().to_owned() });
            self.number.clear();
        }
        // The pad types into the number field, or sends tones during a call.
        let pad_hint = env.tr(if talking.is_some() { "phone-pad-dtmf" } else { "phone-pad-number" });
        egui::Grid::new("dial-pad").spacing([4.0, 4.0]).show(ui, |ui| {
            for row in KEYS {
                for key in row {
                    let button = egui::Button::new(RichText::new(key.to_string()).monospace().size(16.0))
                        .min_size(egui::vec2(44.0, 30.0));
                    if ui.add_enabled(connected, button).on_hover_text(&pad_hint).clicked() {
                        match &talking {
                            Some(call_id) => {
                                commands.push(PhoneCommand::Dtmf { call_id: call_id.clone(), digits: key.to_string() })
                            }
                            None => self.number.push(key),
                        }
                    }
                }
                ui.end_row();
            }
        });

        let now = now_millis();
        let several = calls.tracker.calls.len() > 1;
        let ids: Vec<String> = calls.tracker.calls.iter().map(|c| c.sip_call_id.clone()).collect();
        for call in &calls.tracker.calls {
            ui.separator();
            call_ui(ui, env, call, now, &mut commands);
            if matches!(call.state, CallState::Active | CallState::Held) {
                self.transfer_ui(ui, env, call, several.then_some(ids.as_slice()), &mut commands);
            }
        }
        if calls.tracker.calls.iter().any(|c| c.state != CallState::Ringing) {
            // The call timer moves once a second while a call goes on.
            ui.ctx().request_repaint_after(std::time::Duration::from_secs(1));
        }
        for command in commands {
            calls.send(command);
        }
    }

    /// Blind transfer to a typed number; with two calls, connecting them
    /// (attended transfer).
    fn transfer_ui(
        &mut self,
        ui: &mut egui::Ui,
        env: &Env<'_>,
        call: &CallView,
        others: Option<&[String]>,
        commands: &mut Vec<PhoneCommand>,
    ) {
        let label = ui.label(env.tr("phone-transfer-label"));
        ui.horizontal(|ui| {
            let field = egui::TextEdit::singleline(&mut self.transfer_to)
                .hint_text(env.tr("phone-number-hint"))
                .desired_width(ui.available_width() - 90.0);
            ui.add(field).labelled_by(label.id);
            let ready = !self.transfer_to.trim().is_empty();
            if ui.add_enabled(ready, egui::Button::new(env.tr("action-transfer"))).clicked() {
                commands.push(PhoneCommand::Transfer {
                    call_id: call.sip_call_id.clone(),
                    target: self.transfer_to.trim().to_owned(),
                });
                self.transfer_to.clear();
            }
        });
        if let Some(others) = others
            && call.state == CallState::Held
        {
            for other in others.iter().filter(|id| **id != call.sip_call_id) {
                if ui.button(env.tr("action-connect-calls")).on_hover_text(env.tr("phone-connect-hint")).clicked() {
                    commands.push(PhoneCommand::Transfer { call_id: call.sip_call_id.clone(), target: other.clone() });
                }
            }
        }
    }
}

/// The latest call in one of `states`.
fn latest<'a>(calls: &'a Calls, states: &[CallState]) -> Option<&'a CallView> {
    calls.tracker.latest(states)
}

fn registration_ui(ui: &mut egui::Ui, env: &Env<'_>, calls: &Calls) {
    let (text, color) = match (&calls.mode, &calls.registration) {
        (PhoneMode::Off, _) => (env.tr("phone-off"), ui.visuals().weak_text_color()),
        (PhoneMode::Problem(m), _) => (m.text(env.i18n), OVERDUE),
        (PhoneMode::Direct(addr), _) => {
            (env.i18n.tr_args("phone-direct", &[("address", addr.clone())]), ui.visuals().text_color())
        }
        (PhoneMode::Account(account), None) => {
            (env.i18n.tr_args("phone-registering", &[("account", account.clone())]), WARNING)
        }
        (PhoneMode::Account(_), Some(Ok(account))) => {
            (env.i18n.tr_args("phone-registered", &[("account", account.clone())]), GOOD)
        }
        (PhoneMode::Account(account), Some(Err(not))) => {
            let mut args =
                vec![("account", account.clone()), ("code", not.code.to_string()), ("reason", not.reason.clone())];
            let key = match not.retry_at {
                None => "phone-registration-refused",
                Some(at) => match wait_text(env, at.saturating_duration_since(std::time::Instant::now())) {
                    Some(wait) => {
                        args.push(("wait", wait));
                        // The countdown moves once a second.
                        ui.ctx().request_repaint_after(std::time::Duration::from_secs(1));
                        "phone-registration-retrying"
                    }
                    None => "phone-registration-retrying-now",
                },
            };
            (env.i18n.tr_args(key, &args), OVERDUE)
        }
    };
    ui.label(RichText::new(text).color(color));
}

/// How long until the next attempt: "12 s", "4 min" (rounded up); None once it is due.
fn wait_text(env: &Env<'_>, left: std::time::Duration) -> Option<String> {
    if left.is_zero() {
        return None;
    }
    let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Some(if seconds < 60 {
        env.i18n.tr_args("phone-wait-seconds", &[("n", seconds.to_string())])
    } else {
        env.i18n.tr_args("phone-wait-minutes", &[("n", seconds.div_ceil(60).to_string())])
    })
}

fn call_ui(ui: &mut egui::Ui, env: &Env<'_>, call: &CallView, now: i64, commands: &mut Vec<PhoneCommand>) {
    let number = Phone::parse(&call.number, env.country).map(|p| p.display()).unwrap_or_else(|_| call.number.clone());
    let who = call
        .card
        .as_ref()
        .and_then(|c| match c.people.as_slice() {
            [only] => Some(only.full_name.clone()),
            [] => None,
            several => Some(env.i18n.tr_args("card-shared-number", &[("count", several.len().to_string())])),
        })
        .or_else(|| call.display_name.clone());
    if let Some(who) = who {
        ui.label(RichText::new(who).strong());
    }
    ui.label(RichText::new(number).monospace());
    let since = call.answered_at.unwrap_or(call.started_at);
    let seconds = ((now - since).max(0) / 1000).to_string();
    let state = match (call.state, call.direction) {
        (CallState::Ringing, _) => env.tr("phone-state-ringing"),
        (CallState::Dialing, _) => env.tr("phone-state-dialing"),
        (CallState::Active, _) => env.i18n.tr_args("phone-state-talking", &[("seconds", seconds)]),
        (CallState::Held, _) => env.i18n.tr_args("phone-state-held", &[("seconds", seconds)]),
    };
    let state = if call.muted { format!("{state} · {}", env.tr("phone-muted")) } else { state };
    ui.label(state);

    let id = call.sip_call_id.clone();
    ui.horizontal_wrapped(|ui| match call.state {
        CallState::Ringing if call.direction == CallDirection::In => {
            let answer = ui.button(RichText::new(env.tr("action-answer")).strong());
            if answer.on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_ANSWER)).clicked() {
                commands.push(PhoneCommand::Answer { call_id: id.clone() });
            }
            let reject = ui.button(env.tr("action-reject"));
            if reject.on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_HANG_UP)).clicked() {
                commands.push(PhoneCommand::Reject { call_id: id });
            }
        }
        CallState::Ringing | CallState::Dialing => {
            if ui.button(env.tr("action-hang-up")).clicked() {
                commands.push(PhoneCommand::Hangup { call_id: id });
            }
        }
        CallState::Active | CallState::Held => {
            let hang_up = ui.button(env.tr("action-hang-up"));
            if hang_up.on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_HANG_UP)).clicked() {
                commands.push(PhoneCommand::Hangup { call_id: id.clone() });
            }
            let held = call.state == CallState::Held;
            let hold = ui.button(env.tr(if held { "action-resume" } else { "action-hold" }));
            if hold.on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_HOLD)).clicked() {
                commands.push(if held {
                    PhoneCommand::Resume { call_id: id.clone() }
                } else {
                    PhoneCommand::Hold { call_id: id.clone() }
                });
            }
            let mute = ui.button(env.tr(if call.muted { "action-unmute" } else { "action-mute" }));
            if mute.on_hover_text(ui.ctx().format_shortcut(&SHORTCUT_MUTE)).clicked() {
                commands.push(PhoneCommand::Mute { call_id: id, on: !call.muted });
            }
        }
    });
    if let Some(q) = &call.quality {
        quality_ui(ui, env, q);
    }
    if let Some(device) = &call.device {
        ui.label(RichText::new(device_text(env, device)).color(WARNING));
    }
}

/// The call-quality indicator: a coloured word, the figures on hover.
fn quality_ui(ui: &mut egui::Ui, env: &Env<'_>, q: &QualityView) {
    let (key, color) = match q.quality {
        Quality::Good => ("quality-good", GOOD),
        Quality::Fair => ("quality-fair", WARNING),
        Quality::Poor => ("quality-poor", OVERDUE),
    };
    let figures = env.i18n.tr_args(
        "quality-figures",
        &[
            ("mos", format!("{:.1}", q.mos)),
            ("loss", format!("{:.1}", q.loss_percent)),
            ("jitter", format!("{:.0}", q.jitter_ms)),
            ("rtt", q.rtt_ms.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"))),
        ],
    );
    ui.horizontal(|ui| {
        ui.label(env.tr("quality-label"));
        ui.label(RichText::new(env.tr(key)).color(color).strong()).on_hover_text(figures);
    });
}

fn device_text(env: &Env<'_>, event: &DeviceEvent) -> String {
    let side = |d: &DeviceDirection| {
        env.tr(match d {
            DeviceDirection::Input => "device-input",
            DeviceDirection::Output => "device-output",
        })
    };
    match event {
        DeviceEvent::Changed { direction, from, to, .. } => {
            env.i18n.tr_args("device-changed", &[("side", side(direction)), ("from", from.clone()), ("to", to.clone())])
        }
        DeviceEvent::Failed { direction, device, reason } => env.i18n.tr_args(
            "device-failed",
            &[("side", side(direction)), ("device", device.clone()), ("reason", reason.clone())],
        ),
    }
}

//! The caller card that pops up in a window of its own (above the others)
//! when a call rings, answering and declining from it: who calls (every
//! person sharing the number), with their open inquiries, deals and tasks,
//! visits and last calls. The calls themselves are followed in `calls.rs`.

use egui::RichText;

use super::calls::Calls;
use super::forms::Editor;
use super::widgets::{OVERDUE, WARNING, enum_text, format_time};
use super::{Action, Env};
use crate::crm::card::CardPerson;
use crate::crm::*;
use crate::settings::LocalSettings;
use crate::sip::phone::PhoneCommand;
use crate::softphone::tracker::{CallState, CallView};

/// The caller card of every ringing or active call, in a window of its own
/// that stays above other windows (embedded where the platform has only one
/// window, as in tests).
pub(super) fn caller_cards_ui(ctx: &egui::Context, env: &mut Env<'_>, calls: &mut Calls, settings: &LocalSettings) {
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

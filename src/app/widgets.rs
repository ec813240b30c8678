//! Small pieces the screens share: form fields, pickers, messages, the
//! status bar and the paged table.

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder, TableRow};

use super::lists::{Need, PagedList};
use super::{Action, Env, screens};
use crate::crm::{FieldError, Millis, Phone};
use crate::i18n::I18n;
use crate::services::Message;
use crate::services::{ListKind, Query};
use crate::store::queries::Choice;

pub const OVERDUE: Color32 = Color32::from_rgb(0xd0, 0x3b, 0x3b);
pub const WARNING: Color32 = Color32::from_rgb(0xd9, 0x8a, 0x1c);
pub const GOOD: Color32 = Color32::from_rgb(0x2f, 0x9e, 0x44);

pub fn error_text_ui(ui: &mut egui::Ui, text: &str) {
    ui.label(RichText::new(text).color(OVERDUE));
}

fn field_errors_ui(ui: &mut egui::Ui, env: &Env<'_>, field: &str, errors: &[FieldError]) {
    if field.is_empty() {
        return;
    }
    for e in errors.iter().filter(|e| e.field == field) {
        ui.label("");
        error_text_ui(ui, &Message::from(e).text(env.i18n));
        ui.end_row();
    }
}

/// A labelled one-line text field in a two-column grid, with its errors.
pub fn field_ui(
    ui: &mut egui::Ui,
    env: &Env<'_>,
    label_key: &str,
    value: &mut String,
    field: &str,
    errors: &[FieldError],
) {
    let label = ui.label(env.tr(label_key));
    ui.add(egui::TextEdit::singleline(value).desired_width(300.0)).labelled_by(label.id);
    ui.end_row();
    field_errors_ui(ui, env, field, errors);
}

/// A labelled picker of dictionary entries.
pub fn choice_ui(
    ui: &mut egui::Ui,
    env: &Env<'_>,
    label_key: &str,
    value: &mut Option<String>,
    choices: &[Choice],
    field: &str,
    errors: &[FieldError],
) {
    let label = ui.label(env.tr(label_key));
    let none = env.tr("choice-none");
    let selected =
        value.as_deref().and_then(|id| choices.iter().find(|c| c.id == id)).map_or(none.clone(), |c| c.name.clone());
    egui::ComboBox::from_id_salt(label_key)
        .selected_text(selected)
        .width(300.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, none);
            for c in choices {
                ui.selectable_value(value, Some(c.id.clone()), &c.name);
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    field_errors_ui(ui, env, field, errors);
}

/// A labelled picker of an enumeration whose names are `prefix-code`.
pub fn enum_ui<E: Copy + PartialEq>(
    ui: &mut egui::Ui,
    env: &Env<'_>,
    label_key: &str,
    value: &mut Option<E>,
    all: &[E],
    code: impl Fn(E) -> &'static str,
    prefix: &str,
) {
    let label = ui.label(env.tr(label_key));
    let name = |e: E| enum_text(env.i18n, prefix, code(e));
    let none = env.tr("choice-none");
    egui::ComboBox::from_id_salt(label_key)
        .selected_text(value.map_or(none.clone(), name))
        .width(300.0)
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, none);
            for e in all {
                ui.selectable_value(value, Some(*e), name(*e));
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
}

/// The translated name of an enumeration value: key `prefix-code`.
pub fn enum_text(i18n: &I18n, prefix: &str, code: &str) -> String {
    i18n.tr(&format!("{prefix}-{}", code.replace('_', "-")))
}

pub fn format_time(millis: Millis) -> String {
    crate::crm::format_local_datetime(millis)
}

pub fn format_duration(seconds: Option<i64>) -> String {
    match seconds {
        Some(s) if s > 0 => format!("{}:{:02}", s / 60, s % 60),
        _ => String::new(),
    }
}

/// The whole window when the replica cannot be opened.
pub fn fatal_ui(ui: &mut egui::Ui, i18n: &I18n, message: &Message) {
    egui::CentralPanel::default_margins().show(ui, |ui| {
        ui.add_space(40.0);
        ui.vertical_centered(|ui| {
            ui.heading(i18n.tr("fatal-title"));
            ui.add_space(12.0);
            ui.label(message.text(i18n));
            ui.add_space(20.0);
            if ui.button(i18n.tr("action-quit")).clicked() {
                ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
            }
        });
    });
}

/// A dismissable message; true once dismissed.
pub fn notice_ui(ctx: &egui::Context, i18n: &I18n, message: &Message) -> bool {
    let mut dismissed = false;
    egui::Modal::new(egui::Id::unique("notice")).show(ctx, |ui| {
        ui.set_max_width(520.0);
        ui.heading(i18n.tr("notice-title"));
        ui.add_space(6.0);
        ui.label(message.text(i18n));
        ui.add_space(10.0);
        if ui.button(i18n.tr("action-ok")).clicked() {
            dismissed = true;
        }
    });
    dismissed || ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Enter))
}

pub fn status_bar_ui(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    status: Option<&Message>,
    operator_status: &mut crate::crm::OperatorStatus,
    sync: Option<&crate::services::SyncStatus>,
) {
    ui.horizontal(|ui| {
        match env.user {
            Some(u) => {
                ui.label(format!("{} · {}", u.full_name, enum_text(env.i18n, "role", u.role.code())));
                let label = ui.label(env.tr("status-mine"));
                egui::ComboBox::from_id_salt("operator-status")
                    .selected_text(enum_text(env.i18n, "operator-status", operator_status.code()))
                    .show_ui(ui, |ui| {
                        for s in crate::crm::OperatorStatus::ALL {
                            ui.selectable_value(operator_status, *s, enum_text(env.i18n, "operator-status", s.code()));
                        }
                    })
                    .response
                    .labelled_by(label.id);
            }
            None => {
                ui.label(env.tr("status-no-user"));
            }
        }
        ui.separator();
        sync_status_ui(ui, env, sync);
        if let Some(status) = status {
            ui.separator();
            ui.label(RichText::new(status.text(env.i18n)).color(GOOD));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(RichText::new(env.tr("status-help-hint")).weak());
        });
    });
}

/// Where the replica stands with the clinic database.
fn sync_status_ui(ui: &mut egui::Ui, env: &mut Env<'_>, sync: Option<&crate::services::SyncStatus>) {
    let Some(s) = sync else {
        ui.label(env.tr("status-offline-replica"));
        return;
    };
    let (text, colour) = if s.online {
        (env.i18n.tr_args("sync-online", &[("pending", s.pending.to_string())]), GOOD)
    } else {
        (env.i18n.tr_args("sync-offline", &[("pending", s.pending.to_string())]), WARNING)
    };
    let response = ui.label(RichText::new(text).color(colour));
    let mut detail = Vec::new();
    if let Some(at) = s.last_sync {
        detail.push(env.i18n.tr_args("sync-last", &[("time", format_time(at))]));
    }
    if let Some(error) = &s.error {
        detail.push(error.clone());
    }
    if !detail.is_empty() {
        response.on_hover_text(detail.join("\n"));
    }
    if s.conflicts > 0 {
        let text =
            RichText::new(env.i18n.tr_args("sync-conflicts", &[("count", s.conflicts.to_string())])).color(OVERDUE);
        if ui.link(text).clicked() {
            env.actions.push(super::Action::ShowConflicts);
        }
    }
    if s.rejected > 0 {
        ui.label(RichText::new(env.i18n.tr_args("sync-rejected", &[("count", s.rejected.to_string())])).color(OVERDUE));
    }
    if s.unencrypted {
        ui.label(RichText::new(env.tr("sync-unencrypted")).color(OVERDUE))
            .on_hover_text(env.tr("sync-unencrypted-hint"));
    }
}

/// The sync conflicts with what this workstation wrote and what the clinic
/// database kept; returns the conflict the operator acknowledged.
pub fn conflicts_ui(
    ctx: &egui::Context,
    i18n: &I18n,
    list: &[crate::services::Conflict],
    open: &mut bool,
) -> Option<i64> {
    let mut acknowledged = None;
    egui::Window::new(i18n.tr("conflicts-title")).open(open).default_width(560.0).show(ctx, |ui| {
        if list.is_empty() {
            ui.label(i18n.tr("conflicts-none"));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for c in list {
                let what = match &c.column {
                    Some(column) => format!("{} · {column}", c.table),
                    None => c.table.clone(),
                };
                ui.strong(what);
                ui.label(i18n.tr_args("conflict-yours", &[("value", c.local_value.to_string())]));
                ui.label(i18n.tr_args("conflict-server", &[("value", c.server_value.to_string())]));
                ui.label(RichText::new(format_time(c.detected_at)).weak());
                if ui.button(i18n.tr("conflict-acknowledge")).clicked() {
                    acknowledged = Some(c.id);
                }
                ui.separator();
            }
        });
    });
    acknowledged
}

/// A virtual table over a [`PagedList`]: only visible rows are built, and
/// pages not yet read show as placeholders until the reader answers.
pub fn paged_table_ui<R>(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    list: &mut PagedList<R>,
    kind: ListKind,
    headers: &[&str],
    mut row_ui: impl FnMut(&mut TableRow<'_, '_>, &R, &mut Env<'_>),
) {
    let mut need = Vec::new();
    let total = list.total(&mut need);
    match total {
        None => {
            ui.spinner();
        }
        Some(0) => {
            ui.label(env.tr("list-empty"));
        }
        Some(total) => {
            ui.label(RichText::new(env.i18n.tr_args("list-count", &[("count", total.to_string())])).weak());
            let mut table =
                TableBuilder::new(ui).striped(true).cell_layout(egui::Layout::left_to_right(egui::Align::Center));
            for (i, _) in headers.iter().enumerate() {
                table = table.column(if i + 1 == headers.len() {
                    Column::remainder()
                } else {
                    Column::auto().resizable(true)
                });
            }
            table
                .header(22.0, |mut header| {
                    for h in headers {
                        header.col(|ui| {
                            ui.strong(env.tr(h));
                        });
                    }
                })
                .body(|body| {
                    body.rows(screens::ROW_HEIGHT, total, |mut row| {
                        let index = row.index();
                        match list.row(index, &mut need) {
                            Some(r) => row_ui(&mut row, r, env),
                            None => {
                                row.col(|ui| {
                                    ui.label(RichText::new("…").weak());
                                });
                            }
                        }
                    });
                });
        }
    }
    let user = env.user_id();
    for n in need {
        env.services.query(match n {
            Need::Count(generation) => Query::Count { list: kind, generation, user: user.clone() },
            Need::Page(generation, page) => Query::Page { list: kind, generation, page, user: user.clone() },
        });
    }
}

/// A phone number as a link: a click calls it when the softphone runs (a
/// right click copies it); without a softphone a click copies it.
pub fn phone_ui(ui: &mut egui::Ui, env: &mut Env<'_>, phone: &Phone) {
    let hint = env.tr(if env.can_dial { "phone-call-number" } else { "phone-copy" });
    let response = ui.link(phone.display()).on_hover_text(hint);
    if response.clicked() && env.can_dial {
        env.actions.push(Action::Dial(phone.as_str().to_owned()));
    } else if response.clicked() || response.secondary_clicked() {
        ui.ctx().copy_text(phone.as_str().to_owned());
    }
}

//! The audit trail for the clinic head: who changed what and when, read
//! from the clinic database's change log (the server refuses everyone
//! without `audit.view`). The read waits for the network, so it runs on the
//! services' audit thread; this screen only sends the question and shows
//! the answer.

use egui::RichText;
use egui_extras::{Column, TableBuilder};

use crate::app::widgets::{WARNING, enum_text, error_text_ui, format_time};
use crate::app::{Env, Message};
use crate::crm::{Millis, Right, parse_date, parse_local_datetime};
use crate::services::{AuditEntry, AuditQuery, SYNCED_TABLES};

const ROW_HEIGHT: f32 = 22.0;

#[derive(Default)]
pub struct AuditScreen {
    author: String,
    table: Option<&'static str>,
    search: String,
    since: String,
    until: String,
    /// The question asked last; older answers are dropped.
    seq: u64,
    waiting: bool,
    result: Option<Result<Vec<AuditEntry>, Message>>,
    /// A time filter that could not be read.
    filter_error: Option<Message>,
}

/// A moment as typed: "2025-03-01" (the day's start, or with `end_of_day`
/// the next day's) or "2025-03-01 14:30", local time.
fn parse_moment(text: &str, end_of_day: bool) -> Option<Millis> {
    use chrono::TimeZone;
    let text = text.trim();
    if let Some(at) = parse_local_datetime(text) {
        return Some(at);
    }
    let day = parse_date(text)?;
    let day = if end_of_day { day.succ_opt()? } else { day };
    chrono::Local.from_local_datetime(&day.and_hms_opt(0, 0, 0)?).earliest().map(|t| t.timestamp_millis())
}

fn non_empty(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

impl AuditScreen {
    pub fn set_result(&mut self, seq: u64, result: Result<Vec<AuditEntry>, Message>) {
        if seq == self.seq {
            self.waiting = false;
            self.result = Some(result);
        }
    }

    /// The filters as a query, or what is wrong with a time.
    fn query(&self) -> Result<AuditQuery, Message> {
        let moment = |text: &str, end: bool| match non_empty(text) {
            None => Ok(None),
            Some(t) => parse_moment(&t, end).map(Some).ok_or_else(|| Message::new("audit-bad-time").with("input", t)),
        };
        Ok(AuditQuery {
            author: non_empty(&self.author),
            table: self.table.map(str::to_owned),
            search: non_empty(&self.search),
            since: moment(&self.since, false)?,
            until: moment(&self.until, true)?,
            limit: 0,
        })
    }

    fn ask(&mut self, env: &Env<'_>, database_url: &str) {
        match self.query() {
            Ok(query) => {
                self.filter_error = None;
                self.seq += 1;
                self.waiting = true;
                env.services.audit(self.seq, database_url.to_owned(), query);
            }
            Err(m) => self.filter_error = Some(m),
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>, database_url: Option<&str>) {
        ui.heading(env.tr("nav-audit"));
        if !env.rights.has(Right::ViewAudit) {
            ui.label(env.tr("no-right"));
            return;
        }
        let Some(url) = database_url else {
            ui.label(RichText::new(env.tr("audit-no-database")).color(WARNING));
            return;
        };
        let mut search = false;
        egui::Grid::new("audit-filters").num_columns(4).spacing([10.0, 6.0]).show(ui, |ui| {
            let mut text = |ui: &mut egui::Ui, key: &str, value: &mut String, hint: Option<String>| {
                let label = ui.label(env.tr(key));
                let mut edit = egui::TextEdit::singleline(value).desired_width(200.0);
                if let Some(hint) = hint {
                    edit = edit.hint_text(hint);
                }
                let response = ui.add(edit).labelled_by(label.id);
                search |= response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            };
            text(ui, "audit-user", &mut self.author, None);
            text(ui, "audit-text", &mut self.search, None);
            ui.end_row();
            text(ui, "audit-since", &mut self.since, Some(env.tr("audit-time-hint")));
            text(ui, "audit-until", &mut self.until, Some(env.tr("audit-time-hint")));
            ui.end_row();
            let label = ui.label(env.tr("audit-table"));
            let any = env.tr("audit-any-table");
            egui::ComboBox::from_id_salt("audit-table")
                .selected_text(self.table.map_or(any.clone(), str::to_owned))
                .width(200.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.table, None, any);
                    for t in SYNCED_TABLES {
                        ui.selectable_value(&mut self.table, Some(t), t);
                    }
                })
                .response
                .labelled_by(label.id);
            search |= ui.button(env.tr("audit-search")).clicked();
            ui.end_row();
        });
        // The first look needs no click.
        if search || (self.seq == 0 && !self.waiting) {
            self.ask(env, url);
        }
        if let Some(error) = &self.filter_error {
            error_text_ui(ui, &error.text(env.i18n));
        }
        ui.separator();
        if self.waiting {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(env.tr("audit-loading"));
            });
        }
        match &self.result {
            None => {}
            Some(Err(m)) => error_text_ui(ui, &m.text(env.i18n)),
            Some(Ok(entries)) if entries.is_empty() => {
                ui.label(RichText::new(env.tr("audit-nothing")).weak());
            }
            Some(Ok(entries)) => {
                ui.label(
                    RichText::new(env.i18n.tr_args("audit-count", &[("count", entries.len().to_string())])).weak(),
                );
                entries_ui(ui, env, entries);
            }
        }
    }
}

fn entries_ui(ui: &mut egui::Ui, env: &Env<'_>, entries: &[AuditEntry]) {
    TableBuilder::new(ui)
        .striped(true)
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(130.0))
        .column(Column::exact(200.0))
        .column(Column::exact(80.0))
        .column(Column::exact(120.0))
        .column(Column::remainder().clip(true))
        .header(ROW_HEIGHT, |mut header| {
            for key in ["audit-col-when", "audit-col-who", "audit-col-op", "audit-col-table", "audit-col-changes"] {
                header.col(|ui| {
                    ui.strong(env.tr(key));
                });
            }
        })
        .body(|body| {
            // Only the rows in view are laid out.
            body.rows(ROW_HEIGHT, entries.len(), |mut row| {
                let e = &entries[row.index()];
                row.col(|ui| {
                    ui.label(format_time(e.changed_at));
                });
                row.col(|ui| {
                    let who = match (&e.author, &e.full_name) {
                        (Some(login), Some(name)) => format!("{login} ({name})"),
                        (Some(login), None) => login.clone(),
                        (None, _) => env.tr("audit-unknown-author"),
                    };
                    ui.label(who);
                });
                row.col(|ui| {
                    ui.label(e.op.as_deref().map(|op| enum_text(env.i18n, "audit-op", op)).unwrap_or_default());
                });
                row.col(|ui| {
                    ui.label(&e.table).on_hover_text(&e.row_id);
                });
                row.col(|ui| {
                    let changes = describe(env, e);
                    ui.label(&changes).on_hover_text(format!("{} {}\n{changes}", e.table, e.row_id));
                });
            });
        });
}

/// The changed fields, in the window's words (values as JSON).
fn describe(env: &Env<'_>, e: &AuditEntry) -> String {
    e.changes
        .iter()
        .map(|c| {
            let column = ("column", c.column.clone());
            match c.old {
                serde_json::Value::Null if matches!(e.op.as_deref(), Some("insert" | "refused")) => {
                    env.i18n.tr_args("audit-change-set", &[column, ("new", c.new.to_string())])
                }
                _ => {
                    env.i18n.tr_args("audit-change", &[column, ("new", c.new.to_string()), ("old", c.old.to_string())])
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters_take_a_day_or_a_moment() {
        let day = parse_moment("2025-03-01", false).unwrap();
        let end = parse_moment("2025-03-01", true).unwrap();
        assert!(end > day && end - day >= 23 * 3_600_000, "until a day means to its end");
        assert_eq!(parse_moment("2025-03-01 00:00", false), Some(day));
        assert_eq!(parse_moment("01.03.2025", false), Some(day));
        assert_eq!(parse_moment("yesterday", false), None);
        let screen = AuditScreen { since: "tomorrow".into(), ..Default::default() };
        assert_eq!(screen.query().unwrap_err().key, "audit-bad-time");
        let screen = AuditScreen { author: " operator ".into(), until: "2025-03-01".into(), ..Default::default() };
        let q = screen.query().unwrap();
        assert_eq!(q.author.as_deref(), Some("operator"));
        assert_eq!(q.until, Some(end));
        assert_eq!(q.search, None);
    }
}

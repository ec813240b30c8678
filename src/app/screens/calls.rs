//! The call log: every call, newest first, a million rows scrolled virtually.

use egui::RichText;

use crate::app::lists::PagedList;
use crate::app::widgets::{OVERDUE, enum_text, format_duration, format_time, paged_table_ui, phone_ui};
use crate::app::{Action, Env};
use crate::crm::{CallResult, Phone};
use crate::services::ListKind;
use crate::store::queries::{CallFilter, CallRow};

#[derive(Default)]
pub struct CallsScreen {
    pub list: PagedList<CallRow>,
    filter: CallFilter,
}

impl CallsScreen {
    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.heading(env.tr("nav-calls"));
        let choices =
            [(CallFilter::All, "filter-all"), (CallFilter::Missed, "filter-missed"), (CallFilter::Mine, "filter-mine")];
        if super::filter_ui(ui, env, &mut self.filter, &choices) {
            self.list.invalidate();
        }
        let headers =
            ["col-time", "col-direction", "col-number", "col-person", "col-operator", "col-result", "col-duration"];
        paged_table_ui(ui, env, &mut self.list, ListKind::Calls(self.filter), &headers, |row, call, env| {
            row.col(|ui| {
                ui.label(format_time(call.started_at));
            });
            row.col(|ui| {
                ui.label(enum_text(env.i18n, "call-direction", call.direction.code()));
            });
            row.col(|ui| {
                phone_ui(ui, env, &Phone::from_e164_unchecked(call.peer.clone()));
            });
            row.col(|ui| match (&call.person_name, &call.person_id) {
                (Some(name), Some(id)) => {
                    if ui.link(name).clicked() {
                        env.actions.push(Action::OpenPerson(id.clone()));
                    }
                }
                _ => {
                    ui.label(RichText::new(env.tr("person-unknown")).weak());
                }
            });
            row.col(|ui| {
                ui.label(call.operator_name.as_deref().unwrap_or(""));
            });
            row.col(|ui| {
                let text = enum_text(env.i18n, "call-result", call.result.code());
                if call.result == CallResult::Missed {
                    ui.label(RichText::new(text).color(OVERDUE));
                } else {
                    ui.label(text);
                }
            });
            row.col(|ui| {
                ui.label(format_duration(call.duration_s));
            });
        });
    }
}

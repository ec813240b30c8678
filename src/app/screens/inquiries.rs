//! Inquiries: open ones first to be processed, or all of them.

use crate::app::forms::Editor;
use crate::app::lists::PagedList;
use crate::app::widgets::{enum_text, format_time, paged_table_ui};
use crate::app::{Action, Env};
use crate::crm::{Phone, Right};
use crate::services::{FormRef, ListKind};
use crate::store::queries::{InquiryFilter, InquiryRow};

#[derive(Default)]
pub struct InquiriesScreen {
    pub list: PagedList<InquiryRow>,
    filter: InquiryFilter,
}

impl InquiriesScreen {
    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.horizontal(|ui| {
            ui.heading(env.tr("nav-inquiries"));
            if env.rights.has(Right::ProcessInquiries) && ui.button(env.tr("action-new-inquiry")).clicked() {
                env.actions.push(Action::Edit(Box::new(Editor::new_inquiry(None))));
            }
        });
        if !env.rights.has(Right::ViewInquiries) {
            ui.label(env.tr("no-right"));
            return;
        }
        let choices = [(InquiryFilter::Open, "filter-open"), (InquiryFilter::All, "filter-all")];
        if super::filter_ui(ui, env, &mut self.filter, &choices) {
            self.list.invalidate();
        }
        let headers =
            ["col-created", "col-person", "col-reason", "col-channel", "col-status", "col-result", "col-operator"];
        paged_table_ui(ui, env, &mut self.list, ListKind::Inquiries(self.filter), &headers, |row, inquiry, env| {
            row.col(|ui| {
                if ui.link(format_time(inquiry.created_at)).clicked() {
                    env.actions.push(Action::Load(FormRef::Inquiry(inquiry.id.clone())));
                }
            });
            row.col(|ui| {
                let who = inquiry
                    .person_name
                    .clone()
                    .or_else(|| inquiry.phone.clone().map(|p| Phone::from_e164_unchecked(p).display()))
                    .unwrap_or_default();
                match &inquiry.person_id {
                    Some(id) => {
                        if ui.link(who).clicked() {
                            env.actions.push(Action::OpenPerson(id.clone()));
                        }
                    }
                    None => {
                        ui.label(who);
                    }
                }
            });
            row.col(|ui| {
                ui.label(inquiry.reason.as_deref().unwrap_or(""));
            });
            row.col(|ui| {
                ui.label(inquiry.channel.as_deref().unwrap_or(""));
            });
            row.col(|ui| {
                ui.label(enum_text(env.i18n, "inquiry-status", inquiry.status.code()));
            });
            row.col(|ui| {
                ui.label(inquiry.result.map(|r| enum_text(env.i18n, "inquiry-result", r.code())).unwrap_or_default());
            });
            row.col(|ui| {
                ui.label(inquiry.operator_name.as_deref().unwrap_or(""));
            });
        });
    }
}

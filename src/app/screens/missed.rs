//! Missed calls waiting for a call back, oldest first, coloured by how late
//! the call back is (on time, late, overdue).

use egui::RichText;
use egui_extras::{Column, TableBuilder};

use crate::app::widgets::{GOOD, OVERDUE, WARNING, format_time};
use crate::app::{Action, Env};
use crate::crm::Phone;
use crate::services::Query;
use crate::store::calls::{Ageing, MissedCallRow};

#[derive(Default)]
pub struct MissedScreen {
    rows: Option<Vec<MissedCallRow>>,
    asked: bool,
}

impl MissedScreen {
    pub fn invalidate(&mut self) {
        self.asked = false;
        self.rows = None;
    }

    pub fn set_rows(&mut self, rows: Vec<MissedCallRow>) {
        self.rows = Some(rows);
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.heading(env.tr("nav-missed"));
        if !self.asked {
            env.services.query(Query::MissedCalls);
            self.asked = true;
        }
        // Ageing colours move with the clock.
        ui.ctx().request_repaint_after(std::time::Duration::from_secs(30));
        let Some(rows) = &self.rows else {
            ui.spinner();
            return;
        };
        if rows.is_empty() {
            ui.label(env.tr("missed-none"));
            return;
        }
        let headers = ["col-first-missed", "col-number", "col-person", "col-attempts", "col-deadline", ""];
        TableBuilder::new(ui)
            .striped(true)
            .columns(Column::auto().resizable(true), headers.len() - 1)
            .column(Column::remainder())
            .header(22.0, |mut header| {
                for h in headers {
                    header.col(|ui| {
                        if !h.is_empty() {
                            ui.strong(env.tr(h));
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(super::ROW_HEIGHT, rows.len(), |mut row| {
                    let m = &rows[row.index()];
                    let colour = match m.ageing(env.now) {
                        Ageing::OnTime => GOOD,
                        Ageing::Late => WARNING,
                        Ageing::Overdue => OVERDUE,
                    };
                    row.col(|ui| {
                        ui.label(RichText::new(format_time(m.first_missed_at)).color(colour));
                    });
                    row.col(|ui| {
                        ui.label(Phone::parse(&m.phone, env.country).map(|p| p.display()).unwrap_or(m.phone.clone()));
                    });
                    row.col(|ui| {
                        if let (Some(id), Some(name)) = (&m.person_id, &m.person_name)
                            && ui.link(name).clicked()
                        {
                            env.actions.push(Action::OpenPerson(id.clone()));
                        }
                    });
                    row.col(|ui| {
                        ui.label(m.attempts.to_string());
                    });
                    row.col(|ui| {
                        if let Some(deadline) = m.deadline_at {
                            ui.label(RichText::new(format_time(deadline)).color(colour));
                        }
                    });
                    row.col(|ui| {
                        if ui.button(env.tr("action-call-back")).clicked() {
                            env.actions.push(Action::Dial(m.phone.clone()));
                        }
                    });
                });
            });
    }
}

//! The deal board: one column per stage of a deal type, newest deals on top.

use egui::RichText;

use crate::app::forms::Editor;
use crate::app::widgets::{GOOD, OVERDUE};
use crate::app::{Action, Env};
use crate::crm::{DealStatus, Right, format_amount};
use crate::services::{FormRef, Query};
use crate::store::queries::StageColumn;

#[derive(Default)]
pub struct DealsScreen {
    deal_type_id: Option<String>,
    board: Option<(String, Vec<StageColumn>)>,
    asked: Option<String>,
}

const COLUMN_WIDTH: f32 = 230.0;

impl DealsScreen {
    pub fn invalidate(&mut self) {
        self.board = None;
        self.asked = None;
    }

    pub fn set_board(&mut self, deal_type_id: &str, columns: Vec<StageColumn>) {
        if self.deal_type_id.as_deref() == Some(deal_type_id) {
            self.board = Some((deal_type_id.to_owned(), columns));
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        if !env.rights.has(Right::ViewDeals) {
            ui.heading(env.tr("nav-deals"));
            ui.label(env.tr("no-right"));
            return;
        }
        if self.deal_type_id.is_none() {
            self.deal_type_id = env.dicts.deal_types.first().map(|d| d.id.clone());
        }
        ui.horizontal(|ui| {
            ui.heading(env.tr("nav-deals"));
            let selected = self
                .deal_type_id
                .as_deref()
                .and_then(|id| env.dicts.deal_types.iter().find(|d| d.id == id))
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let before = self.deal_type_id.clone();
            egui::ComboBox::from_id_salt("deal-type").selected_text(selected).show_ui(ui, |ui| {
                for d in &env.dicts.deal_types {
                    ui.selectable_value(&mut self.deal_type_id, Some(d.id.clone()), &d.name);
                }
            });
            if before != self.deal_type_id {
                self.invalidate();
            }
            if env.rights.has(Right::EditDeals) && ui.button(env.tr("action-new-deal")).clicked() {
                env.actions.push(Action::Edit(Box::new(Editor::new_deal(None, self.deal_type_id.as_deref()))));
            }
        });
        let Some(deal_type_id) = self.deal_type_id.clone() else {
            ui.label(env.tr("list-empty"));
            return;
        };
        let Some((_, columns)) = &self.board else {
            if self.asked.as_deref() != Some(&deal_type_id) {
                env.services.query(Query::Board { deal_type_id: deal_type_id.clone() });
                self.asked = Some(deal_type_id);
            }
            ui.spinner();
            return;
        };
        egui::ScrollArea::horizontal().show(ui, |ui| {
            ui.horizontal_top(|ui| {
                for column in columns {
                    ui.vertical(|ui| {
                        ui.set_width(COLUMN_WIDTH);
                        stage_ui(ui, env, column);
                    });
                    ui.separator();
                }
            });
        });
    }
}

fn stage_ui(ui: &mut egui::Ui, env: &mut Env<'_>, column: &StageColumn) {
    let name = RichText::new(&column.name).strong();
    ui.label(match column.outcome {
        DealStatus::Won => name.color(GOOD),
        DealStatus::Lost => name.color(OVERDUE),
        DealStatus::Open => name,
    });
    ui.label(
        RichText::new(env.i18n.tr_args(
            "deals-stage-summary",
            &[("count", column.count.to_string()), ("amount", format_amount(column.amount_cents))],
        ))
        .weak(),
    );
    egui::ScrollArea::vertical().id_salt(&column.stage_id).show(ui, |ui| {
        for deal in &column.deals {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(COLUMN_WIDTH - 16.0);
                if ui.link(&deal.title).clicked() {
                    env.actions.push(Action::Load(FormRef::Deal(deal.id.clone())));
                }
                if let Some(person) = &deal.person_name {
                    ui.label(person);
                }
                ui.label(RichText::new(format_amount(deal.amount_cents)).weak());
            });
        }
        if column.count > column.deals.len() {
            ui.label(
                RichText::new(
                    env.i18n.tr_args("deals-more", &[("count", (column.count - column.deals.len()).to_string())]),
                )
                .weak(),
            );
        }
    });
}

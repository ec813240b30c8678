//! The team: what each operator is doing now (for supervisors), and each
//! user's rights on top of their role (for the clinic head).

use egui::RichText;

use crate::app::Env;
use crate::app::widgets::{GOOD, WARNING, enum_text, format_time};
use crate::crm::{OperatorStatus, Right};
use crate::services::{Command, Query};
use crate::store::queries::{RightRow, TeamMember};

#[derive(Default)]
pub struct TeamScreen {
    members: Option<Vec<TeamMember>>,
    asked: bool,
    /// The user whose rights are open in the editor.
    editing: Option<String>,
    rights: Option<(String, Vec<RightRow>)>,
}

impl TeamScreen {
    pub fn invalidate(&mut self) {
        self.asked = false;
        if let Some(user) = &self.editing {
            self.rights = self.rights.take().filter(|(id, _)| id == user);
        }
    }

    pub fn set_members(&mut self, members: Vec<TeamMember>) {
        self.members = Some(members);
    }

    pub fn set_rights(&mut self, user_id: String, rows: Vec<RightRow>) {
        if self.editing.as_deref() == Some(&user_id) {
            self.rights = Some((user_id, rows));
        }
    }

    /// Who may open this screen.
    pub fn allowed(rights: &crate::crm::Rights) -> bool {
        rights.has(Right::ViewAllCalls) || rights.has(Right::AllCrm)
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.heading(env.tr("nav-team"));
        if !Self::allowed(env.rights) {
            ui.label(env.tr("no-right"));
            return;
        }
        if !self.asked {
            env.services.query(Query::Team);
            if let Some(user) = &self.editing {
                env.services.query(Query::UserRights { user_id: user.clone() });
            }
            self.asked = true;
        }
        let Some(members) = self.members.clone() else {
            ui.spinner();
            return;
        };
        let head = env.rights.has(Right::AllCrm);
        egui::Grid::new("team").striped(true).num_columns(4).spacing([16.0, 6.0]).show(ui, |ui| {
            for m in &members {
                ui.label(&m.full_name);
                ui.label(RichText::new(enum_text(env.i18n, "role", m.role.code())).weak());
                let status = m.status.unwrap_or(OperatorStatus::Free);
                let text = RichText::new(enum_text(env.i18n, "operator-status", status.code()));
                ui.label(if status == OperatorStatus::Free { text.color(GOOD) } else { text.color(WARNING) });
                ui.label(m.since.map(format_time).unwrap_or_default());
                if head && ui.button(env.tr("action-edit-rights")).clicked() {
                    self.editing = Some(m.user_id.clone());
                    self.rights = None;
                    env.services.query(Query::UserRights { user_id: m.user_id.clone() });
                }
                ui.end_row();
            }
        });
        if head {
            ui.separator();
            self.rights_ui(ui, env, &members);
        }
    }

    fn rights_ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>, members: &[TeamMember]) {
        let Some(user) = self.editing.clone() else {
            ui.label(RichText::new(env.tr("rights-pick-user")).weak());
            return;
        };
        let name = members.iter().find(|m| m.user_id == user).map(|m| m.full_name.clone()).unwrap_or_default();
        ui.strong(env.i18n.tr_args("rights-of", &[("name", name)]));
        let Some((_, rows)) = self.rights.clone() else {
            ui.spinner();
            return;
        };
        let mut changes = Vec::new();
        egui::Grid::new("rights").num_columns(2).spacing([16.0, 4.0]).show(ui, |ui| {
            for row in &rows {
                let mut on = row.effective;
                let label = enum_text(env.i18n, "right", row.right.code().replace('.', "-").as_str());
                if ui.checkbox(&mut on, label).changed() {
                    changes.push((row.right, on));
                }
                match row.over_role {
                    Some(_) => {
                        if ui.small_button(env.tr("rights-reset")).clicked() {
                            changes.push((row.right, !row.effective));
                        }
                    }
                    None => {
                        ui.label(RichText::new(env.tr("rights-from-role")).weak());
                    }
                }
                ui.end_row();
            }
        });
        for (right, on) in changes {
            let row = rows.iter().find(|r| r.right == right);
            // Back to what the role gives removes the override.
            let by_role = row.map(|r| if r.over_role.is_some() { !r.effective } else { r.effective });
            let granted = if Some(on) == by_role { None } else { Some(on) };
            env.services.command(Command::SetUserRight { user_id: user.clone(), right, granted });
            self.rights = None;
        }
    }
}

//! Tasks: mine and the shared queue, or everyone's where rights allow;
//! overdue ones stand out.

use egui::RichText;

use crate::app::forms::Editor;
use crate::app::lists::PagedList;
use crate::app::widgets::{OVERDUE, WARNING, enum_text, format_time, paged_table_ui};
use crate::app::{Action, Env};
use crate::crm::Right;
use crate::services::{FormRef, ListKind};
use crate::store::queries::{TaskFilter, TaskRow};

#[derive(Default)]
pub struct TasksScreen {
    pub list: PagedList<TaskRow>,
    filter: TaskFilter,
}

/// Minutes before the deadline when a task shows as due soon.
const DUE_SOON_MS: i64 = 60 * 60 * 1000;

impl TasksScreen {
    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.horizontal(|ui| {
            ui.heading(env.tr("nav-tasks"));
            if env.rights.has(Right::EditTasks) && ui.button(env.tr("action-new-task")).clicked() {
                env.actions.push(Action::Edit(Box::new(Editor::new_task(None, env.user))));
            }
        });
        let mut choices = vec![(TaskFilter::MineOpen, "filter-my-tasks")];
        if env.rights.has(Right::ViewAllTasks) {
            choices.extend([(TaskFilter::AllOpen, "filter-all-open"), (TaskFilter::All, "filter-all")]);
        } else if self.filter != TaskFilter::MineOpen {
            self.filter = TaskFilter::MineOpen;
            self.list.invalidate();
        }
        if super::filter_ui(ui, env, &mut self.filter, &choices) {
            self.list.invalidate();
        }
        // Overdue highlighting changes with the clock: look again in a minute.
        ui.ctx().request_repaint_after(std::time::Duration::from_secs(60));
        let headers = ["col-deadline", "col-title", "col-type", "col-person", "col-responsible", "col-status"];
        paged_table_ui(ui, env, &mut self.list, ListKind::Tasks(self.filter), &headers, |row, task, env| {
            let overdue = task.is_overdue(env.now);
            let soon = !overdue && task.status.is_open() && task.deadline_at - env.now < DUE_SOON_MS;
            row.col(|ui| {
                let text = RichText::new(format_time(task.deadline_at));
                let text = if overdue {
                    text.color(OVERDUE).strong()
                } else if soon {
                    text.color(WARNING)
                } else {
                    text
                };
                let response = ui.label(text);
                if overdue {
                    response.on_hover_text(env.tr("task-overdue"));
                }
            });
            row.col(|ui| {
                if ui.link(&task.title).clicked() {
                    env.actions.push(Action::Load(FormRef::Task(task.id.clone())));
                }
            });
            row.col(|ui| {
                ui.label(&task.task_type);
            });
            row.col(|ui| {
                if let (Some(name), Some(id)) = (&task.person_name, &task.person_id)
                    && ui.link(name).clicked()
                {
                    env.actions.push(Action::OpenPerson(id.clone()));
                }
            });
            row.col(|ui| {
                ui.label(task.responsible_name.clone().unwrap_or_else(|| env.tr("task-shared-queue")));
            });
            row.col(|ui| {
                ui.label(enum_text(env.i18n, "task-status", task.status.code()));
            });
        });
    }
}

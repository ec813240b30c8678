//! People: search by any part of a name or number, and a person's page with
//! their whole history.

use egui::RichText;

use crate::app::forms::Editor;
use crate::app::widgets::{OVERDUE, enum_text, format_duration, format_time, phone_ui};
use crate::app::{Action, Env};
use crate::crm::{Right, format_amount, phone::search_digits};
use crate::services::{FormRef, Query, Services};
use crate::store::queries::PersonHistory;
use crate::store::search::PersonHit;

#[derive(Default)]
pub struct PeopleScreen {
    query: String,
    seq: u64,
    answered_seq: u64,
    results: Vec<PersonHit>,
    focus_search: bool,
    open_id: Option<String>,
    person: Option<PersonHistory>,
    /// The open person was not found (deleted elsewhere).
    missing: bool,
}

impl PeopleScreen {
    pub fn focus_search(&mut self) {
        self.focus_search = true;
    }

    pub fn open_person_id(&self) -> Option<&str> {
        self.person.as_ref().map(|p| p.id.as_str())
    }

    pub fn open(&mut self, id: String, services: &Services) {
        if self.open_id.as_deref() != Some(&id) {
            self.person = None;
        }
        services.query(Query::Person { id: id.clone() });
        self.open_id = Some(id);
        self.missing = false;
    }

    pub fn reload(&mut self, id: &str, services: &Services) {
        if self.open_id.as_deref() == Some(id) {
            services.query(Query::Person { id: id.to_owned() });
        }
    }

    pub fn refresh(&mut self, services: &Services) {
        if let Some(id) = self.open_id.clone() {
            self.reload(&id, services);
        }
        if !self.query.trim().is_empty() {
            self.search(services);
        }
    }

    fn search(&mut self, services: &Services) {
        self.seq += 1;
        services.query(Query::Search { seq: self.seq, text: self.query.clone() });
    }

    pub fn set_results(&mut self, seq: u64, hits: Vec<PersonHit>) {
        if seq == self.seq {
            self.results = hits;
            self.answered_seq = seq;
        }
    }

    pub fn set_person(&mut self, id: &str, history: Option<PersonHistory>) {
        if self.open_id.as_deref() == Some(id) {
            self.missing = history.is_none();
            self.person = history;
        }
    }

    pub fn ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        egui::Panel::left("people-search").resizable(true).default_size(320.0).show(ui, |ui| {
            self.search_ui(ui, env);
        });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            if let Some(person) = &self.person {
                person_ui(ui, env, person);
            } else if self.missing {
                ui.label(env.tr("err-record-gone"));
            } else if self.open_id.is_some() {
                ui.spinner();
            } else {
                ui.label(RichText::new(env.tr("people-hint")).weak());
            }
        });
    }

    fn search_ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.heading(env.tr("nav-people"));
        let label = ui.label(env.tr("people-search"));
        let edit = ui.add(
            egui::TextEdit::singleline(&mut self.query)
                .hint_text(env.tr("people-search-hint"))
                .desired_width(f32::INFINITY),
        );
        let edit = edit.labelled_by(label.id);
        if self.focus_search {
            edit.request_focus();
            self.focus_search = false;
        }
        if edit.changed() {
            if self.query.trim().is_empty() {
                self.results.clear();
                self.seq += 1;
            } else {
                self.search(env.services);
            }
        }
        if ui.button(env.tr("action-new-person")).clicked() {
            let phone = search_digits(&self.query).map(|_| self.query.trim().to_owned());
            env.actions.push(Action::Edit(Box::new(Editor::new_person(phone))));
        }
        ui.separator();
        if !self.query.trim().is_empty() && self.answered_seq == self.seq && self.results.is_empty() {
            ui.label(env.tr("people-nothing-found"));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            for hit in &self.results {
                let selected = self.open_id.as_deref() == Some(&hit.id);
                let text = format!("{}\n{}", hit.full_name, hit.phones.join(", "));
                if ui.selectable_label(selected, text).clicked() {
                    env.actions.push(Action::OpenPerson(hit.id.clone()));
                }
            }
        });
    }
}

fn person_ui(ui: &mut egui::Ui, env: &mut Env<'_>, p: &PersonHistory) {
    ui.heading(p.full_name());
    if let Some(birth) = &p.birth_date {
        ui.label(format!("{}: {birth}", env.tr("field-birth-date")));
    }
    ui.horizontal_wrapped(|ui| {
        for phone in &p.phones {
            phone_ui(ui, env, phone);
        }
    });
    if !p.note.is_empty() {
        ui.label(RichText::new(&p.note).italics());
    }
    ui.horizontal_wrapped(|ui| {
        let label = Some(p.full_name());
        if ui.button(env.tr("action-edit")).clicked() {
            env.actions.push(Action::Load(FormRef::Person(p.id.clone())));
        }
        if env.rights.has(Right::ProcessInquiries) && ui.button(env.tr("action-new-inquiry")).clicked() {
            env.actions.push(Action::Edit(Box::new(Editor::new_inquiry(Some(&p.id)).labelled(label.clone()))));
        }
        if env.rights.has(Right::EditTasks) && ui.button(env.tr("action-new-task")).clicked() {
            env.actions.push(Action::Edit(Box::new(Editor::new_task(Some(&p.id), env.user).labelled(label.clone()))));
        }
        if env.rights.has(Right::EditDeals) && ui.button(env.tr("action-new-deal")).clicked() {
            env.actions.push(Action::Edit(Box::new(Editor::new_deal(Some(&p.id), None).labelled(label.clone()))));
        }
        if env.rights.has(Right::EditVisits) && ui.button(env.tr("action-new-visit")).clicked() {
            env.actions.push(Action::Edit(Box::new(Editor::new_visit(&p.id).labelled(label))));
        }
    });
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        section_ui(ui, env, "history-inquiries", p.inquiries.len(), |ui, env| {
            for i in &p.inquiries {
                ui.horizontal(|ui| {
                    if ui.link(format_time(i.created_at)).clicked() {
                        env.actions.push(Action::Load(FormRef::Inquiry(i.id.clone())));
                    }
                    ui.label(i.reason.as_deref().unwrap_or(""));
                    ui.label(RichText::new(enum_text(env.i18n, "inquiry-status", i.status.code())).weak());
                    if let Some(r) = i.result {
                        ui.label(enum_text(env.i18n, "inquiry-result", r.code()));
                    }
                    if let Some(c) = &i.channel {
                        ui.label(RichText::new(c).weak());
                    }
                });
            }
        });
        if env.rights.has(Right::ViewDeals) {
            section_ui(ui, env, "history-deals", p.deals.len(), |ui, env| {
                for d in &p.deals {
                    ui.horizontal(|ui| {
                        if ui.link(&d.title).clicked() {
                            env.actions.push(Action::Load(FormRef::Deal(d.id.clone())));
                        }
                        ui.label(RichText::new(format!("{} · {}", d.deal_type, d.stage)).weak());
                        ui.label(format_amount(d.amount_cents));
                    });
                }
            });
        }
        section_ui(ui, env, "history-tasks", p.tasks.len(), |ui, env| {
            for t in &p.tasks {
                ui.horizontal(|ui| {
                    let deadline = RichText::new(format_time(t.deadline_at));
                    ui.label(if t.is_overdue(env.now) { deadline.color(OVERDUE) } else { deadline });
                    if ui.link(&t.title).clicked() {
                        env.actions.push(Action::Load(FormRef::Task(t.id.clone())));
                    }
                    ui.label(RichText::new(enum_text(env.i18n, "task-status", t.status.code())).weak());
                });
            }
        });
        section_ui(ui, env, "history-visits", p.visits.len(), |ui, env| {
            for v in &p.visits {
                ui.horizontal(|ui| {
                    if ui.link(format_time(v.starts_at)).clicked() {
                        env.actions.push(Action::Load(FormRef::Visit(v.id.clone())));
                    }
                    ui.label(&v.doctor_name);
                    ui.label(&v.service);
                    ui.label(RichText::new(enum_text(env.i18n, "visit-status", v.status.code())).weak());
                    if let Some(reason) = &v.cancel_reason {
                        ui.label(RichText::new(reason).italics());
                    }
                });
            }
        });
        section_ui(ui, env, "history-calls", p.calls.len(), |ui, env| {
            for c in &p.calls {
                ui.horizontal(|ui| {
                    ui.label(format_time(c.started_at));
                    ui.label(enum_text(env.i18n, "call-direction", c.direction.code()));
                    ui.label(enum_text(env.i18n, "call-result", c.result.code()));
                    ui.label(c.operator_name.as_deref().unwrap_or(""));
                    ui.label(format_duration(c.duration_s));
                });
            }
        });
    });
}

fn section_ui(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    key: &str,
    count: usize,
    body: impl FnOnce(&mut egui::Ui, &mut Env<'_>),
) {
    let title = env.i18n.tr_args(key, &[("count", count.to_string())]);
    egui::CollapsingHeader::new(title).id_salt(key).default_open(true).show(ui, |ui| {
        if count == 0 {
            ui.label(RichText::new(env.tr("list-empty")).weak());
        } else {
            body(ui, env);
        }
    });
}

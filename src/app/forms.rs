//! The editors of people, inquiries, tasks, deals and visits: modal forms
//! that validate on save and say, next to the field, what is wrong.

use egui::{Key, KeyboardShortcut, Modifiers};

use super::widgets::{choice_ui, enum_ui, error_text_ui, field_ui};
use super::{Env, Screen};
use crate::crm::*;
use crate::services::Message;
use crate::services::{Command, LoadedForm, RecordKind};
use crate::store::history::{TaskChange, TaskChangeKind};
use crate::store::queries::{CurrentUser, Dictionaries, TemplateChoice};

const SHORTCUT_SAVE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::S);
const SHORTCUT_SAVE_ENTER: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::Enter);

/// The form being edited.
#[derive(Clone, Debug, PartialEq)]
pub enum Form {
    Person(PersonForm),
    Inquiry(InquiryForm),
    Task(TaskForm),
    Deal(DealForm),
    Visit(VisitForm),
}

/// An open editor: the form, and what went wrong on the last save.
#[derive(Clone, Debug, PartialEq)]
pub struct Editor {
    pub form: Form,
    /// Who the record is about, shown read-only.
    pub person_label: Option<String>,
    /// Where the form is kept as a draft while it is typed (inquiries of a
    /// call).
    draft_key: Option<String>,
    /// The call this inquiry is about is still going on: saving waits for
    /// its call-log entry.
    call_in_progress: bool,
    /// The person's open deals, for a visit's deal picker.
    deal_choices: Vec<crate::store::queries::Choice>,
    /// The deal a new task is for, shown read-only.
    deal_label: Option<String>,
    /// An existing task's History, once read.
    history: Option<Vec<TaskChange>>,
    field_errors: Vec<FieldError>,
    error: Option<Message>,
    saving: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Open,
    Close,
}

pub fn saved_key(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Person => "status-person-saved",
        RecordKind::Inquiry => "status-inquiry-saved",
        RecordKind::Task => "status-task-saved",
        RecordKind::Deal => "status-deal-saved",
        RecordKind::Visit => "status-visit-saved",
        RecordKind::Call => "status-call-recorded",
        RecordKind::Draft => "status-draft-saved",
        RecordKind::TaskTemplate => "status-template-saved",
    }
}

/// Where the inquiry typed during a call is kept.
pub fn draft_key_for(call_id: &str) -> String {
    format!("inquiry:{call_id}")
}

/// "Now + hours", rounded to the minute, as the deadline field shows it.
fn local_in(hours: i64) -> String {
    format_local_datetime(now_millis() + hours * 3_600_000)
}

impl Editor {
    fn with(form: Form) -> Editor {
        Editor {
            form,
            person_label: None,
            draft_key: None,
            call_in_progress: false,
            deal_choices: Vec::new(),
            deal_label: None,
            history: None,
            field_errors: Vec::new(),
            error: None,
            saving: false,
        }
    }

    pub fn from_loaded(form: LoadedForm) -> Editor {
        Editor::with(match form {
            LoadedForm::Person(f) => Form::Person(f),
            LoadedForm::Inquiry(f) => Form::Inquiry(f),
            LoadedForm::Task(f) => Form::Task(f),
            LoadedForm::Deal(f) => Form::Deal(f),
            LoadedForm::Visit(f) => Form::Visit(f),
        })
    }

    pub fn new_person(phone: Option<String>) -> Editor {
        Editor::with(Form::Person(PersonForm { phones: vec![phone.unwrap_or_default()], ..Default::default() }))
    }

    pub fn new_inquiry(person_id: Option<&str>) -> Editor {
        Editor::with(Form::Inquiry(InquiryForm {
            person_id: person_id.map(str::to_owned),
            source: Some(InquirySource::Call),
            ..Default::default()
        }))
    }

    pub fn new_task(person_id: Option<&str>, user: Option<&CurrentUser>) -> Editor {
        Editor::with(Form::Task(TaskForm {
            person_id: person_id.map(str::to_owned),
            responsible_id: user.map(|u| u.id.clone()),
            deadline: local_in(1),
            ..Default::default()
        }))
    }

    /// A new task about a person and/or a deal, filled from `template` in
    /// one step when one is given (type, title, deadline, reminder and
    /// responsible).
    pub fn new_task_from(
        person_id: Option<&str>,
        deal_id: Option<&str>,
        template: Option<&TemplateChoice>,
        dicts: &Dictionaries,
        user: Option<&CurrentUser>,
    ) -> Editor {
        let mut editor = Editor::new_task(person_id, user);
        if let Form::Task(f) = &mut editor.form {
            f.deal_id = deal_id.map(str::to_owned);
            if let Some(t) = template {
                apply_template(f, t, dicts, user.map(|u| u.id.as_str()));
            }
        }
        editor
    }

    /// Shows which deal the record is for.
    pub fn for_deal(mut self, deal_label: Option<String>) -> Editor {
        self.deal_label = deal_label;
        self
    }

    /// The task whose History this editor shows, until it is read.
    pub fn wants_history_of(&self) -> Option<&str> {
        match (&self.form, &self.history) {
            (Form::Task(f), None) => f.id.as_deref(),
            _ => None,
        }
    }

    pub fn set_history(&mut self, task_id: &str, changes: Vec<TaskChange>) {
        if let Form::Task(f) = &self.form
            && f.id.as_deref() == Some(task_id)
        {
            self.history = Some(changes);
        }
    }

    pub fn new_deal(person_id: Option<&str>, deal_type_id: Option<&str>) -> Editor {
        Editor::with(Form::Deal(DealForm {
            person_id: person_id.map(str::to_owned),
            deal_type_id: deal_type_id.map(str::to_owned),
            ..Default::default()
        }))
    }

    pub fn new_visit(person_id: &str) -> Editor {
        Editor::with(Form::Visit(VisitForm {
            person_id: Some(person_id.to_owned()),
            starts: local_in(24),
            duration_min: "30".into(),
            ..Default::default()
        }))
    }

    /// The inquiry of a call, pre-filled from what the softphone knows.
    pub fn for_call(call: &crate::softphone::tracker::CallView) -> Editor {
        let person_id = call.person_id();
        let label = person_id.as_ref().and_then(|id| {
            call.card.as_ref().and_then(|c| c.people.iter().find(|p| &p.id == id)).map(|p| p.full_name.clone())
        });
        let form = InquiryForm {
            person_id,
            phone: call.number.clone(),
            call_id: Some(call.call_id.clone()),
            channel_id: call.card.as_ref().and_then(|c| c.tracking.as_ref()).map(|t| t.channel_id.clone()),
            source: Some(InquirySource::Call),
            status: Some(InquiryStatus::Closed),
            ..Default::default()
        };
        Editor::from_draft(draft_key_for(&call.call_id), form).labelled(label).during_call(true)
    }

    /// A draft form restored (after a restart, or a call).
    pub fn from_draft(key: String, form: InquiryForm) -> Editor {
        let mut editor = Editor::with(Form::Inquiry(form));
        editor.draft_key = Some(key);
        editor
    }

    pub fn during_call(mut self, in_progress: bool) -> Editor {
        self.call_in_progress = in_progress;
        self
    }

    pub fn set_call_in_progress(&mut self, in_progress: bool) {
        self.call_in_progress = in_progress;
    }

    /// The person whose deals a visit form needs, if it is one.
    pub fn wants_deals_of(&self) -> Option<&str> {
        match &self.form {
            Form::Visit(f) => f.person_id.as_deref(),
            _ => None,
        }
    }

    pub fn set_deal_choices(&mut self, person_id: &str, deals: Vec<crate::store::queries::Choice>) {
        if self.wants_deals_of() == Some(person_id) {
            self.deal_choices = deals;
        }
    }

    /// The call this editor's inquiry is about.
    pub fn call_id(&self) -> Option<&str> {
        match &self.form {
            Form::Inquiry(f) => f.call_id.as_deref(),
            _ => None,
        }
    }

    /// The draft to keep: its key and the form.
    /// Nothing while a save is under way: the save removes the draft, and a
    /// late copy must not bring it back.
    pub fn draft(&self) -> Option<(String, &InquiryForm)> {
        if self.saving {
            return None;
        }
        match (&self.draft_key, &self.form) {
            (Some(key), Form::Inquiry(f)) => Some((key.clone(), f)),
            _ => None,
        }
    }

    pub fn draft_key(&self) -> Option<&str> {
        self.draft_key.as_deref()
    }

    /// Suggests a result from what happened during the call, unless the
    /// operator chose one.
    pub fn suggest_result(&mut self, result: InquiryResult) {
        if let Form::Inquiry(f) = &mut self.form
            && f.result.is_none()
        {
            f.result = Some(result);
        }
    }

    pub fn labelled(mut self, person_label: Option<String>) -> Editor {
        self.person_label = person_label;
        self
    }

    /// The person the edited record belongs to.
    pub fn person_id(&self) -> Option<&str> {
        match &self.form {
            Form::Person(f) => f.id.as_deref(),
            Form::Inquiry(f) => f.person_id.as_deref(),
            Form::Task(f) => f.person_id.as_deref(),
            Form::Deal(f) => f.person_id.as_deref(),
            Form::Visit(f) => f.person_id.as_deref(),
        }
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.field_errors
    }

    /// The save was refused by the store.
    pub fn failed(&mut self, error: Message) {
        self.saving = false;
        self.error = Some(error);
    }

    fn title_key(&self) -> &'static str {
        let new = match &self.form {
            Form::Person(f) => f.id.is_none(),
            Form::Inquiry(f) => f.id.is_none(),
            Form::Task(f) => f.id.is_none(),
            Form::Deal(f) => f.id.is_none(),
            Form::Visit(f) => f.id.is_none(),
        };
        match (&self.form, new) {
            (Form::Person(_), true) => "form-new-person",
            (Form::Person(_), false) => "form-edit-person",
            (Form::Inquiry(_), true) => "form-new-inquiry",
            (Form::Inquiry(_), false) => "form-edit-inquiry",
            (Form::Task(_), true) => "form-new-task",
            (Form::Task(_), false) => "form-edit-task",
            (Form::Deal(_), true) => "form-new-deal",
            (Form::Deal(_), false) => "form-edit-deal",
            (Form::Visit(_), true) => "form-new-visit",
            (Form::Visit(_), false) => "form-edit-visit",
        }
    }

    /// Validates and, if valid, asks the writer to save.
    pub fn save(&mut self, env: &Env<'_>) {
        let user = env.user_id();
        let command = match &self.form {
            Form::Person(f) => f.validate(env.country).map(Command::SavePerson),
            Form::Inquiry(f) => f.validate(env.country).map(|record| Command::SaveInquiry {
                record,
                operator: user,
                draft_key: self.draft_key.clone(),
            }),
            Form::Task(f) => f.validate().map(|record| Command::SaveTask { record, author: user }),
            Form::Deal(f) => f.validate().map(Command::SaveDeal),
            Form::Visit(f) => f.validate().map(Command::SaveVisit),
        };
        self.error = None;
        match command {
            Ok(command) => {
                self.field_errors.clear();
                self.saving = true;
                env.services.command(command);
            }
            Err(errors) => self.field_errors = errors,
        }
    }

    /// Draws the editor; `Close` when the operator cancelled.
    pub fn ui(&mut self, ctx: &egui::Context, mut env: Env<'_>) -> Outcome {
        let mut outcome = Outcome::Open;
        // Read the form's keys before the fields do, so Esc closes the form
        // even while a field has the focus.
        let (save, cancel) = ctx.input_mut(|i| {
            (
                i.consume_shortcut(&SHORTCUT_SAVE) || i.consume_shortcut(&SHORTCUT_SAVE_ENTER),
                i.consume_key(Modifiers::NONE, Key::Escape),
            )
        });
        egui::Modal::new(egui::Id::unique("editor")).show(ctx, |ui| {
            ui.set_width(460.0);
            ui.heading(env.tr(self.title_key()));
            ui.add_space(6.0);
            if let Some(label) = &self.person_label {
                ui.label(format!("{}: {label}", env.tr("field-person")));
            }
            if let Some(label) = &self.deal_label {
                ui.label(format!("{}: {label}", env.tr("field-deal")));
            }
            egui::Grid::new("editor-grid").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
                let errors = &self.field_errors;
                match &mut self.form {
                    Form::Person(f) => person_fields_ui(ui, &env, f, errors),
                    Form::Inquiry(f) => inquiry_fields_ui(ui, &env, f, errors),
                    Form::Task(f) => task_fields_ui(ui, &env, f, errors),
                    Form::Deal(f) => deal_fields_ui(ui, &env, f, errors),
                    Form::Visit(f) => visit_fields_ui(ui, &env, f, &self.deal_choices, errors),
                }
            });
            if let Some(error) = &self.error {
                error_text_ui(ui, &error.text(env.i18n));
            }
            if let Form::Task(f) = &self.form
                && f.id.is_some()
            {
                history_ui(ui, &env, self.history.as_deref());
            }
            ui.add_space(8.0);
            if self.call_in_progress {
                ui.label(egui::RichText::new(env.tr("form-save-after-call")).weak());
            }
            ui.horizontal(|ui| {
                let save = ui
                    .add_enabled(!self.saving && !self.call_in_progress, egui::Button::new(env.tr("action-save")))
                    .on_hover_text(ctx.format_shortcut(&SHORTCUT_SAVE));
                if save.clicked() {
                    self.save(&env);
                }
                if ui.button(env.tr("action-cancel")).on_hover_text("Esc").clicked() {
                    outcome = Outcome::Close;
                }
                if let (Form::Person(f), Some(_)) = (&self.form, &self.person_label)
                    && f.id.is_some()
                    && ui.button(env.tr("action-open-person")).clicked()
                {
                    env.actions.push(super::Action::Go(Screen::People));
                }
                // A task for this deal, from a template in one step.
                if let Form::Deal(f) = &self.form
                    && let Some(deal_id) = &f.id
                {
                    new_task_menu_ui(ui, &mut env, f.person_id.as_deref(), Some((deal_id, &f.title)), None);
                }
            });
        });
        if save && !self.saving && !self.call_in_progress {
            self.save(&env);
        }
        // Only Esc or Cancel close: a stray click beside the form must not
        // throw away what was typed.
        if cancel {
            outcome = Outcome::Close;
        }
        outcome
    }
}

fn person_fields_ui(ui: &mut egui::Ui, env: &Env<'_>, f: &mut PersonForm, errors: &[FieldError]) {
    field_ui(ui, env, "field-last-name", &mut f.last_name, "name", errors);
    field_ui(ui, env, "field-first-name", &mut f.first_name, "", errors);
    field_ui(ui, env, "field-middle-name", &mut f.middle_name, "", errors);
    field_ui(ui, env, "field-birth-date", &mut f.birth_date, "birth_date", errors);
    if f.phones.is_empty() || f.phones.last().is_some_and(|p| !p.trim().is_empty()) {
        f.phones.push(String::new());
    }
    for phone in f.phones.iter_mut() {
        field_ui(ui, env, "field-phone", phone, "", &[]);
    }
    // Phone errors name the number, so they are listed once below the phones.
    for e in errors.iter().filter(|e| e.field == "phones") {
        ui.label("");
        error_text_ui(ui, &Message::from(e).text(env.i18n));
        ui.end_row();
    }
    field_ui(ui, env, "field-note", &mut f.note, "", errors);
}

fn inquiry_fields_ui(ui: &mut egui::Ui, env: &Env<'_>, f: &mut InquiryForm, errors: &[FieldError]) {
    if f.person_id.is_none() {
        field_ui(ui, env, "field-phone", &mut f.phone, "phone", errors);
    }
    let person_error: Vec<FieldError> = errors.iter().filter(|e| e.field == "person").cloned().collect();
    for e in &person_error {
        ui.label("");
        error_text_ui(ui, &Message::from(e).text(env.i18n));
        ui.end_row();
    }
    choice_ui(ui, env, "field-reason", &mut f.reason_id, &env.dicts.reasons, "reason", errors);
    choice_ui(ui, env, "field-channel", &mut f.channel_id, &env.dicts.channels, "channel", errors);
    enum_ui(ui, env, "field-source", &mut f.source, InquirySource::ALL, |s| s.code(), "inquiry-source");
    enum_ui(ui, env, "field-status", &mut f.status, InquiryStatus::ALL, |s| s.code(), "inquiry-status");
    enum_ui(ui, env, "field-result", &mut f.result, InquiryResult::ALL, |s| s.code(), "inquiry-result");
    for e in errors.iter().filter(|e| e.field == "result") {
        ui.label("");
        error_text_ui(ui, &Message::from(e).text(env.i18n));
        ui.end_row();
    }
    field_ui(ui, env, "field-note", &mut f.note, "", errors);
}

fn task_fields_ui(ui: &mut egui::Ui, env: &Env<'_>, f: &mut TaskForm, errors: &[FieldError]) {
    // A template fills type, title, deadline and reminder in one step.
    let templates: Vec<crate::store::queries::Choice> = env
        .dicts
        .task_templates
        .iter()
        .map(|t| crate::store::queries::Choice { id: t.id.clone(), name: t.title.clone() })
        .collect();
    let before = f.template_id.clone();
    choice_ui(ui, env, "field-template", &mut f.template_id, &templates, "", errors);
    if f.template_id != before
        && let Some(t) = env.dicts.task_templates.iter().find(|t| Some(&t.id) == f.template_id.as_ref())
    {
        apply_template(f, t, env.dicts, env.user.map(|u| u.id.as_str()));
    }
    field_ui(ui, env, "field-title", &mut f.title, "title", errors);
    choice_ui(ui, env, "field-task-type", &mut f.task_type_id, &env.dicts.task_types, "task_type", errors);
    field_ui(ui, env, "field-deadline", &mut f.deadline, "deadline", errors);
    field_ui(ui, env, "field-remind-before", &mut f.remind_before, "remind_before", errors);
    choice_ui(ui, env, "field-responsible", &mut f.responsible_id, &env.dicts.users, "", errors);
    enum_ui(ui, env, "field-status", &mut f.status, TaskStatus::ALL, |s| s.code(), "task-status");
    field_ui(ui, env, "field-description", &mut f.description, "", errors);
}

fn deal_fields_ui(ui: &mut egui::Ui, env: &Env<'_>, f: &mut DealForm, errors: &[FieldError]) {
    field_ui(ui, env, "field-title", &mut f.title, "title", errors);
    let before = f.deal_type_id.clone();
    choice_ui(ui, env, "field-deal-type", &mut f.deal_type_id, &env.dicts.deal_types, "", errors);
    if f.deal_type_id != before {
        f.stage_id = None;
    }
    let stages: Vec<crate::store::queries::Choice> = env
        .dicts
        .stages
        .iter()
        .filter(|s| Some(&s.deal_type_id) == f.deal_type_id.as_ref())
        .map(|s| crate::store::queries::Choice { id: s.id.clone(), name: s.name.clone() })
        .collect();
    if f.stage_id.is_none() {
        f.stage_id = stages.first().map(|s| s.id.clone());
    }
    choice_ui(ui, env, "field-stage", &mut f.stage_id, &stages, "stage", errors);
    field_ui(ui, env, "field-amount", &mut f.amount, "amount", errors);
    choice_ui(ui, env, "field-responsible", &mut f.responsible_id, &env.dicts.users, "", errors);
}

fn visit_fields_ui(
    ui: &mut egui::Ui,
    env: &Env<'_>,
    f: &mut VisitForm,
    deals: &[crate::store::queries::Choice],
    errors: &[FieldError],
) {
    choice_ui(ui, env, "field-doctor", &mut f.doctor_id, &env.dicts.doctors, "doctor", errors);
    choice_ui(ui, env, "field-deal", &mut f.deal_id, deals, "", errors);
    field_ui(ui, env, "field-service", &mut f.service, "", errors);
    field_ui(ui, env, "field-starts", &mut f.starts, "starts", errors);
    field_ui(ui, env, "field-duration", &mut f.duration_min, "duration", errors);
    enum_ui(ui, env, "field-status", &mut f.status, VisitStatus::ALL, |s| s.code(), "visit-status");
    if f.status == Some(VisitStatus::Cancelled) {
        field_ui(ui, env, "field-cancel-reason", &mut f.cancel_reason, "cancel_reason", errors);
    }
}

/// Fills a task from a template: type, title, deadline and reminder, and
/// the responsible: `me` when I have the template's role (or it names
/// none), otherwise the first active user who has it.
pub fn apply_template(f: &mut TaskForm, t: &TemplateChoice, dicts: &Dictionaries, me: Option<&str>) {
    f.template_id = Some(t.id.clone());
    f.task_type_id = Some(t.task_type_id.clone());
    f.title = t.title.clone();
    f.deadline = format_local_datetime(now_millis() + t.deadline_offset_min * 60_000);
    f.remind_before = t.reminder_offset_min.map(|m| m.to_string()).unwrap_or_default();
    let role_of = |user: &str| dicts.user_roles.iter().find(|(u, _)| u == user).map(|(_, r)| r.as_str());
    f.responsible_id = match &t.responsible_role_id {
        None => me.map(str::to_owned),
        Some(role) if me.and_then(role_of) == Some(role.as_str()) => me.map(str::to_owned),
        Some(role) => dicts.user_roles.iter().find(|(_, r)| r == role).map(|(u, _)| u.clone()),
    };
}

/// "New task" with the templates to start from: opens the task editor
/// about the person and/or deal, filled in one click. Only for those who
/// may create tasks.
pub fn new_task_menu_ui(
    ui: &mut egui::Ui,
    env: &mut Env<'_>,
    person_id: Option<&str>,
    deal: Option<(&str, &str)>,
    person_label: Option<&str>,
) {
    if !env.rights.may_save(Saving::NewTask) {
        return;
    }
    // A menu is drawn only while open; its choice is collected here.
    let mut chosen: Option<Option<&TemplateChoice>> = None;
    ui.menu_button(env.tr("action-new-task"), |ui| {
        for t in &env.dicts.task_templates {
            if ui.button(&t.title).clicked() {
                chosen = Some(Some(t));
            }
        }
        ui.separator();
        if ui.button(env.tr("task-without-template")).clicked() {
            chosen = Some(None);
        }
    });
    if let Some(template) = chosen {
        let editor = Editor::new_task_from(person_id, deal.map(|(id, _)| id), template, env.dicts, env.user)
            .labelled(person_label.map(str::to_owned))
            .for_deal(deal.map(|(_, title)| title.to_owned()));
        env.actions.push(super::Action::Edit(Box::new(editor)));
    }
}

/// The History of a task: every change with when and who, newest last.
fn history_ui(ui: &mut egui::Ui, env: &Env<'_>, history: Option<&[TaskChange]>) {
    egui::CollapsingHeader::new(env.tr("task-history-title")).id_salt("task-history").show(ui, |ui| {
        let Some(history) = history else {
            ui.spinner();
            return;
        };
        if history.is_empty() {
            ui.label(egui::RichText::new(env.tr("task-history-empty")).weak());
        }
        let status = |s: &Option<TaskStatus>| match s {
            Some(s) => super::widgets::enum_text(env.i18n, "task-status", s.code()),
            None => "—".to_owned(),
        };
        let deadline = |d: &Option<Millis>| d.map(format_local_datetime).unwrap_or_else(|| "—".to_owned());
        let person = |p: &Option<String>| p.clone().unwrap_or_else(|| env.tr("task-history-shared-queue"));
        egui::ScrollArea::vertical().max_height(160.0).show(ui, |ui| {
            for change in history {
                let what = match &change.kind {
                    TaskChangeKind::Created { title } => {
                        env.i18n.tr_args("task-history-created", &[("title", title.clone())])
                    }
                    TaskChangeKind::Status { old, new } => {
                        env.i18n.tr_args("task-history-status", &[("from", status(old)), ("to", status(new))])
                    }
                    TaskChangeKind::Deadline { old, new } => {
                        env.i18n.tr_args("task-history-deadline", &[("from", deadline(old)), ("to", deadline(new))])
                    }
                    TaskChangeKind::Responsible { old, new } => {
                        env.i18n.tr_args("task-history-responsible", &[("from", person(old)), ("to", person(new))])
                    }
                    TaskChangeKind::Title { old, new } => {
                        env.i18n.tr_args("task-history-title-changed", &[("from", old.clone()), ("to", new.clone())])
                    }
                };
                let who = change.author.clone().unwrap_or_else(|| env.tr("task-history-by-sync"));
                ui.label(format!("{} · {who} · {what}", format_local_datetime(change.changed_at)));
            }
        });
    });
}

//! The threads behind the window and the typed messages to and from them.
//!
//! The UI never touches the disk, a lock or D-Bus: it sends a [`Query`] (to
//! the reader, which owns a read-only connection) or a [`Command`] (to the
//! writer, which owns the read-write connection, settings.toml and the
//! keyring), and gets an [`Event`] back, after which the thread asks egui for
//! a repaint. An idle window therefore costs nothing.

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::message::Message;
use crate::crm::*;
use crate::settings::{LocalSettings, secrets};
use crate::store::calls::{FinishedCall, MissedCallRow, RecordedCall, drafts, missed_calls, visit_booked_since};
use crate::store::history::TaskChange;
use crate::store::queries::{self, *};
use crate::store::{Replica, forms, search};
use crate::sync::audit::{AuditEntry, AuditQuery};

/// A list the window pages through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    Calls(CallFilter),
    Inquiries(InquiryFilter),
    Tasks(TaskFilter),
}

/// Rows of one page of a list.
#[derive(Clone, Debug)]
pub enum Rows {
    Calls(Vec<CallRow>),
    Inquiries(Vec<InquiryRow>),
    Tasks(Vec<TaskRow>),
}

/// A read the window asks for. `generation` lets the window drop answers
/// to questions it no longer asks (the filter changed meanwhile).
#[derive(Clone, Debug)]
pub enum Query {
    Count {
        list: ListKind,
        generation: u64,
        user: Option<String>,
    },
    Page {
        list: ListKind,
        generation: u64,
        page: usize,
        user: Option<String>,
    },
    Search {
        seq: u64,
        text: String,
    },
    Person {
        id: String,
    },
    Board {
        deal_type_id: String,
    },
    Dictionaries,
    User {
        login: String,
    },
    /// An existing record, to edit it.
    Form(FormRef),
    /// Drafts left by a crash or a dropped call.
    Drafts,
    /// The missed-calls board.
    MissedCalls,
    /// A person's open deals (the deal picker of a visit).
    OpenDeals {
        person_id: String,
    },
    /// Operators and their statuses.
    Team,
    /// One user's rights, for the head's editor.
    UserRights {
        user_id: String,
    },
    /// Sync conflicts not yet acknowledged.
    Conflicts,
    /// What changed in a task, when and by whom (its editor's History).
    TaskHistory {
        task_id: String,
    },
}

/// A record to open in its editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormRef {
    Person(String),
    Inquiry(String),
    Task(String),
    Deal(String),
    Visit(String),
}

/// A record loaded into its form.
#[derive(Clone, Debug)]
pub enum LoadedForm {
    Person(PersonForm),
    Inquiry(InquiryForm),
    Task(TaskForm),
    Deal(DealForm),
    Visit(VisitForm),
}

/// A change the window asks for.
#[derive(Clone, Debug)]
pub enum Command {
    SavePerson(PersonRecord),
    SaveInquiry {
        record: InquiryRecord,
        operator: Option<String>,
        /// The draft it was typed in, removed with the save.
        draft_key: Option<String>,
    },
    SaveTask {
        record: TaskRecord,
        author: Option<String>,
    },
    SaveDeal(DealRecord),
    SaveVisit(VisitRecord),
    /// Write settings.toml.
    SaveSettings(LocalSettings),
    /// Put the SIP password into the OS keyring.
    StoreSipPassword {
        account: String,
        password: String,
    },
    /// List the audio devices (for the Settings screen).
    ListAudioDevices,
    /// A call ended: log it and apply the missed-call rules.
    RecordCall(FinishedCall),
    SaveDraft {
        key: String,
        form: serde_json::Value,
    },
    DeleteDraft {
        key: String,
    },
    /// The rights of the signed-in user, which every save is checked
    /// against.
    SetRights(Rights),
    SetOperatorStatus {
        user_id: String,
        status: OperatorStatus,
    },
    SetUserRight {
        user_id: String,
        right: Right,
        granted: Option<bool>,
    },
    /// The operator has seen a sync conflict (the server's value stands).
    AcknowledgeConflict(i64),
    /// The setup admin saves a task template.
    SaveTaskTemplate(TaskTemplateRecord),
}

/// What was saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Person,
    Inquiry,
    Task,
    Deal,
    Visit,
    Call,
    Draft,
    TaskTemplate,
}

/// An answer or a report from a service.
#[derive(Debug)]
pub enum Event {
    Count {
        list: ListKind,
        generation: u64,
        total: usize,
    },
    Page {
        list: ListKind,
        generation: u64,
        page: usize,
        rows: Rows,
    },
    SearchResults {
        seq: u64,
        hits: Vec<search::PersonHit>,
    },
    Person {
        id: String,
        history: Option<Box<PersonHistory>>,
    },
    Board {
        deal_type_id: String,
        columns: Vec<StageColumn>,
    },
    Dictionaries(Box<Dictionaries>),
    User {
        login: String,
        found: Option<(CurrentUser, Rights)>,
    },
    Form(Option<LoadedForm>),
    Saved {
        kind: RecordKind,
        id: String,
    },
    SaveFailed {
        kind: RecordKind,
        error: Message,
    },
    SettingsSaved,
    SettingsFailed(Message),
    SecretStored,
    SecretFailed(Message),
    AudioDevices {
        inputs: Vec<String>,
        outputs: Vec<String>,
    },
    CallRecorded {
        recorded: RecordedCall,
        result: CallResult,
        visit_booked: bool,
    },
    Drafts(Vec<(String, serde_json::Value)>),
    OpenDeals {
        person_id: String,
        deals: Vec<Choice>,
    },
    Team(Vec<TeamMember>),
    UserRights {
        user_id: String,
        rows: Vec<RightRow>,
    },
    /// Team or rights changed: read them again.
    TeamChanged,
    Conflicts(Vec<crate::sync::Conflict>),
    MissedCalls(Vec<MissedCallRow>),
    TaskHistory {
        task_id: String,
        changes: Vec<TaskChange>,
    },
    /// The server's audit trail, or why it could not be read.
    Audit {
        seq: u64,
        result: Result<Vec<AuditEntry>, Message>,
    },
    /// A read failed (the replica may be damaged).
    ReadFailed(Message),
}

/// The running services and the channels to them.
pub struct Services {
    queries: Sender<Query>,
    commands: Sender<Command>,
    audit: Sender<AuditRequest>,
    events: Receiver<Event>,
    threads: Vec<JoinHandle<()>>,
}

impl Services {
    /// Starts the writer (owning `replica`) and the reader thread.
    pub fn start(replica: Replica, settings_path: PathBuf, repaint: egui::Context) -> Services {
        let (query_tx, query_rx) = unbounded::<Query>();
        let (command_tx, command_rx) = unbounded::<Command>();
        let (event_tx, event_rx) = unbounded::<Event>();
        let replica_path = replica.path().to_owned();
        let mut threads = Vec::new();

        let events = Notifier { tx: event_tx.clone(), ctx: repaint.clone() };
        threads.push(spawn("clinicdesk-writer", move || writer_loop(replica, settings_path, command_rx, events)));

        let events = Notifier { tx: event_tx.clone(), ctx: repaint.clone() };
        threads.push(spawn("clinicdesk-reader", move || reader_loop(&replica_path, query_rx, events)));

        let (audit_tx, audit_rx) = unbounded::<AuditRequest>();
        let events = Notifier { tx: event_tx, ctx: repaint };
        threads.push(spawn("clinicdesk-audit", move || audit_loop(audit_rx, events)));

        Services { queries: query_tx, commands: command_tx, audit: audit_tx, events: event_rx, threads }
    }

    pub fn query(&self, query: Query) {
        // A closed channel means the service ended; its error was reported.
        let _ = self.queries.send(query);
    }

    pub fn command(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Reads the clinic database's audit trail on the audit thread (it
    /// waits for the network); answered by [`Event::Audit`] with `seq`.
    pub fn audit(&self, seq: u64, database_url: String, query: AuditQuery) {
        let _ = self.audit.send(AuditRequest { seq, database_url, query });
    }

    /// The events that arrived since the last frame.
    pub fn drain(&self) -> impl Iterator<Item = Event> + '_ {
        self.events.try_iter()
    }

    /// Stops the threads after they finish what they were asked.
    pub fn shutdown(self) {
        drop(self.queries);
        drop(self.commands);
        drop(self.audit);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .unwrap_or_else(|e| panic!("cannot start thread {name}: {e}"))
}

struct Notifier {
    tx: Sender<Event>,
    ctx: egui::Context,
}

impl Notifier {
    fn send(&self, event: Event) {
        if self.tx.send(event).is_ok() {
            self.ctx.request_repaint();
        }
    }
}

/// One read of the audit trail.
struct AuditRequest {
    seq: u64,
    database_url: String,
    query: AuditQuery,
}

fn audit_loop(requests: Receiver<AuditRequest>, events: Notifier) {
    while let Ok(first) = requests.recv() {
        // Only the newest question is worth the network.
        let request = requests.try_iter().last().unwrap_or(first);
        let result = crate::sync::audit::read(&request.database_url, &request.query).map_err(|e| match e {
            crate::sync::SyncError::NotAllowed(detail) => Message::new("audit-refused").with("detail", detail),
            other => Message::new("audit-failed").with("detail", other),
        });
        events.send(Event::Audit { seq: request.seq, result });
    }
}

fn reader_loop(path: &std::path::Path, queries: Receiver<Query>, events: Notifier) {
    let replica = match Replica::open_read_only(path) {
        Ok(r) => r,
        Err(e) => return events.send(Event::ReadFailed(Message::from(&e))),
    };
    let conn = replica.conn();
    while let Ok(first) = queries.recv() {
        // Answer only the newest page request of each list: when the operator
        // scrolls fast, pages scrolled past are not worth reading.
        let mut batch = vec![first];
        batch.extend(queries.try_iter());
        let mut newest_pages: Vec<(ListKind, u64, usize)> = Vec::new();
        for q in batch.iter().rev() {
            if let Query::Page { list, generation, page, .. } = q
                && newest_pages.iter().filter(|(l, g, _)| l == list && g == generation).count() < 6
            {
                newest_pages.push((*list, *generation, *page));
            }
        }
        for q in batch {
            if let Query::Page { list, generation, page, .. } = &q
                && !newest_pages.contains(&(*list, *generation, *page))
            {
                continue;
            }
            let event = answer(conn, q).unwrap_or_else(|e| Event::ReadFailed(Message::from(&e)));
            events.send(event);
        }
    }
}

fn answer(conn: &rusqlite::Connection, query: Query) -> crate::store::Result<Event> {
    Ok(match query {
        Query::Count { list, generation, user } => {
            let user = user.as_deref();
            let total = match list {
                ListKind::Calls(f) => count_calls(conn, f, user)?,
                ListKind::Inquiries(f) => count_inquiries(conn, f)?,
                ListKind::Tasks(f) => count_tasks(conn, f, user)?,
            };
            Event::Count { list, generation, total }
        }
        Query::Page { list, generation, page, user } => {
            let offset = page * PAGE_SIZE;
            let user = user.as_deref();
            let rows = match list {
                ListKind::Calls(f) => Rows::Calls(calls_page(conn, f, user, offset, PAGE_SIZE)?),
                ListKind::Inquiries(f) => Rows::Inquiries(inquiries_page(conn, f, offset, PAGE_SIZE)?),
                ListKind::Tasks(f) => Rows::Tasks(tasks_page(conn, f, user, offset, PAGE_SIZE)?),
            };
            Event::Page { list, generation, page, rows }
        }
        Query::Search { seq, text } => Event::SearchResults { seq, hits: search::search_people(conn, &text, 50)? },
        Query::Person { id } => {
            let history = queries::person_history(conn, &id)?.map(Box::new);
            Event::Person { id, history }
        }
        Query::Board { deal_type_id } => {
            let columns = deal_board(conn, &deal_type_id, 100)?;
            Event::Board { deal_type_id, columns }
        }
        Query::Dictionaries => Event::Dictionaries(Box::new(dictionaries(conn)?)),
        Query::User { login } => {
            let found = user_with_rights(conn, &login)?;
            Event::User { login, found }
        }
        Query::Form(form) => Event::Form(match form {
            FormRef::Person(id) => forms::person(conn, &id)?.map(LoadedForm::Person),
            FormRef::Inquiry(id) => forms::inquiry(conn, &id)?.map(LoadedForm::Inquiry),
            FormRef::Task(id) => forms::task(conn, &id)?.map(LoadedForm::Task),
            FormRef::Deal(id) => forms::deal(conn, &id)?.map(LoadedForm::Deal),
            FormRef::Visit(id) => forms::visit(conn, &id)?.map(LoadedForm::Visit),
        }),
        Query::Drafts => Event::Drafts(drafts(conn)?),
        Query::MissedCalls => Event::MissedCalls(missed_calls(conn, 500)?),
        Query::Team => Event::Team(queries::team(conn)?),
        Query::Conflicts => match crate::sync::conflicts(conn) {
            Ok(list) => Event::Conflicts(list),
            Err(e) => Event::ReadFailed(Message::new("err-database").with("detail", e)),
        },
        Query::UserRights { user_id } => {
            let rows = queries::user_rights(conn, &user_id)?;
            Event::UserRights { user_id, rows }
        }
        Query::TaskHistory { task_id } => {
            let changes = crate::store::history::task_history(conn, &task_id)?;
            Event::TaskHistory { task_id, changes }
        }
        Query::OpenDeals { person_id } => {
            let deals = queries::open_deals_of(conn, &person_id)?;
            Event::OpenDeals { person_id, deals }
        }
    })
}

fn writer_loop(mut replica: Replica, settings_path: PathBuf, commands: Receiver<Command>, events: Notifier) {
    // Until the user is known, the rights of an operator.
    let mut rights = RoleCode::Operator.default_rights();
    while let Ok(command) = commands.recv() {
        if let Some((kind, what)) = saving(&command)
            && !rights.may_save(what)
        {
            events.send(Event::SaveFailed { kind, error: Message::new("err-no-right-to-save") });
            continue;
        }
        let saved = |kind, result: crate::store::Result<String>| match result {
            Ok(id) => Event::Saved { kind, id },
            Err(e) => Event::SaveFailed { kind, error: Message::from(&e) },
        };
        let event = match command {
            Command::SavePerson(p) => saved(RecordKind::Person, replica.save_person(&p)),
            Command::SaveInquiry { record, operator, draft_key } => {
                saved(RecordKind::Inquiry, replica.save_inquiry(&record, operator.as_deref(), draft_key.as_deref()))
            }
            Command::SaveTask { record, author } => {
                saved(RecordKind::Task, replica.save_task(&record, author.as_deref()))
            }
            Command::SaveDeal(d) => saved(RecordKind::Deal, replica.save_deal(&d)),
            Command::SaveVisit(v) => saved(RecordKind::Visit, replica.save_visit(&v)),
            Command::SaveTaskTemplate(t) => saved(RecordKind::TaskTemplate, replica.save_task_template(&t)),
            Command::SaveSettings(s) => match s.save(&settings_path) {
                Ok(()) => Event::SettingsSaved,
                Err(e) => Event::SettingsFailed(Message::from(&e)),
            },
            Command::StoreSipPassword { account, password } => {
                match secrets::store(&secrets::Secret::Sip { account }, &password) {
                    Ok(()) => Event::SecretStored,
                    Err(e) => Event::SecretFailed(Message::from(&e)),
                }
            }
            Command::ListAudioDevices => {
                let (inputs, outputs) = audio_devices();
                Event::AudioDevices { inputs, outputs }
            }
            Command::RecordCall(call) => match record(&mut replica, &call) {
                Ok((recorded, visit_booked)) => Event::CallRecorded { recorded, result: call.result, visit_booked },
                Err(e) => Event::SaveFailed { kind: RecordKind::Call, error: Message::from(&e) },
            },
            Command::SaveDraft { key, form } => match replica.save_draft(&key, &form) {
                Ok(()) => continue,
                Err(e) => Event::SaveFailed { kind: RecordKind::Draft, error: Message::from(&e) },
            },
            Command::SetOperatorStatus { user_id, status } => match replica.set_operator_status(&user_id, status) {
                Ok(()) => Event::TeamChanged,
                Err(e) => Event::SaveFailed { kind: RecordKind::Person, error: Message::from(&e) },
            },
            // Only the clinic head changes rights.
            Command::SetUserRight { .. } if !rights.has(Right::AllCrm) => {
                Event::SaveFailed { kind: RecordKind::Person, error: Message::new("err-no-right-to-save") }
            }
            Command::SetUserRight { user_id, right, granted } => match replica.set_user_right(&user_id, right, granted)
            {
                Ok(()) => Event::TeamChanged,
                Err(e) => Event::SaveFailed { kind: RecordKind::Person, error: Message::from(&e) },
            },
            Command::AcknowledgeConflict(id) => match crate::sync::resolve_conflict(replica.conn(), id) {
                Ok(_) => Event::TeamChanged,
                Err(e) => Event::SettingsFailed(Message::new("err-database").with("detail", e)),
            },
            Command::SetRights(new) => {
                rights = new;
                continue;
            }
            Command::DeleteDraft { key } => match replica.delete_draft(&key) {
                Ok(()) => continue,
                Err(e) => Event::SaveFailed { kind: RecordKind::Draft, error: Message::from(&e) },
            },
        };
        events.send(event);
    }
}

/// What a command saves, for the rights check.
fn saving(command: &Command) -> Option<(RecordKind, Saving)> {
    Some(match command {
        Command::SavePerson(_) => (RecordKind::Person, Saving::Person),
        Command::SaveInquiry { .. } => (RecordKind::Inquiry, Saving::Inquiry),
        Command::SaveTask { record, .. } if record.id.is_none() => (RecordKind::Task, Saving::NewTask),
        Command::SaveTask { .. } => (RecordKind::Task, Saving::Task),
        Command::SaveDeal(_) => (RecordKind::Deal, Saving::Deal),
        Command::SaveVisit(_) => (RecordKind::Visit, Saving::Visit),
        Command::SaveTaskTemplate(_) => (RecordKind::TaskTemplate, Saving::TaskTemplate),
        _ => return None,
    })
}

/// Records a call; says whether a visit was booked while it went on.
fn record(replica: &mut Replica, call: &FinishedCall) -> crate::store::Result<(RecordedCall, bool)> {
    let recorded = replica.record_call(call)?;
    let booked = match (&call.person_id, call.answered_at) {
        (Some(person), Some(answered)) => visit_booked_since(replica.conn(), person, answered)?,
        _ => false,
    };
    Ok((recorded, booked))
}

/// Names of the capture and playback devices cpal sees.
fn audio_devices() -> (Vec<String>, Vec<String>) {
    use cpal::traits::{DeviceTrait, HostTrait};
    let host = cpal::default_host();
    let names = |devices: Result<_, _>| -> Vec<String> {
        match devices {
            Ok(devices) => {
                let devices: Box<dyn Iterator<Item = cpal::Device>> = Box::new(devices);
                devices.filter_map(|d| d.description().ok().map(|d| d.name().to_owned())).collect()
            }
            Err(_) => Vec::new(),
        }
    };
    (names(host.input_devices()), names(host.output_devices()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_event(services: &Services) -> Event {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(e) = services.drain().next() {
                return e;
            }
            assert!(std::time::Instant::now() < deadline, "no answer from the writer");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// A modified window that shows a button it should not is still refused
    /// by the writer.
    #[test]
    fn the_command_layer_refuses_what_the_rights_do_not_allow() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let services = Services::start(replica, dir.path().join("settings.toml"), egui::Context::default());
        services.command(Command::SetRights(RoleCode::Nurse.default_rights()));
        let inquiry = InquiryForm { phone: "+79161234567".into(), reason_id: Some("r".into()), ..Default::default() }
            .validate(Country::Ru)
            .unwrap();
        services.command(Command::SaveInquiry { record: inquiry, operator: None, draft_key: None });
        match next_event(&services) {
            Event::SaveFailed { kind: RecordKind::Inquiry, error } => assert_eq!(error.key, "err-no-right-to-save"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        services.shutdown();
        let conn = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM inquiries", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    /// Task templates are the setup admin's: an operator's window that
    /// sent one anyway is refused, and nothing is written or queued.
    #[test]
    fn the_writer_refuses_a_template_without_the_dictionaries_right() {
        let dir = tempfile::tempdir().unwrap();
        let mut replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let opts = crate::demo::DemoOptions { patients: 5, calls: 5, seed: 1, now: now_millis() };
        crate::demo::generate(&mut replica, &opts, &mut |_| {}).unwrap();
        let task_type: String =
            replica.conn().query_row("SELECT id FROM task_types LIMIT 1", [], |r| r.get(0)).unwrap();
        let count = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM task_templates", [], |r| r.get(0)).unwrap()
        };
        let before = count(replica.conn());
        let services = Services::start(replica, dir.path().join("settings.toml"), egui::Context::default());
        let template = TaskTemplateForm {
            task_type_id: Some(task_type),
            title: "Напомнить о вакцинации".into(),
            deadline_offset_min: "60".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        services.command(Command::SetRights(RoleCode::Operator.default_rights()));
        services.command(Command::SaveTaskTemplate(template.clone()));
        match next_event(&services) {
            Event::SaveFailed { kind: RecordKind::TaskTemplate, error } => {
                assert_eq!(error.key, "err-no-right-to-save")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        services.command(Command::SetRights(RoleCode::Admin.default_rights()));
        services.command(Command::SaveTaskTemplate(template));
        assert!(matches!(next_event(&services), Event::Saved { kind: RecordKind::TaskTemplate, .. }));
        services.shutdown();
        let conn = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
        assert_eq!(count(&conn), before + 1, "only the admin's save is kept");
        let queued: i64 = conn
            .query_row("SELECT count(*) FROM outbox WHERE table_name = 'task_templates'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 1, "queued for sync in the same transaction");
    }
}

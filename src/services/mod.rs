//! The services behind the window, in a room of their own outside the
//! drawing code: the threads and the typed messages to and from them.
//!
//! The UI never touches the disk, a lock or D-Bus: it sends a [`Query`] (to
//! the reader, which owns a read-only connection) or a [`Command`] (to the
//! writer, which owns the read-write connection, settings.toml and the
//! keyring), and gets an [`Event`] back, after which the thread asks egui for
//! a repaint. An idle window therefore costs nothing.
//!
//! * [`writer`]: the one thread that writes the replica, with the rights check.
//! * [`reader`]: the window's reads.
//! * [`sync`]: the sync engine for the window and the audit trail.
//! * [`notify`]: the deadline notifier of the signed-in user.
//!
//! Everything reaches the window as an [`Event`] on one channel: answers,
//! the sync status, what the notifier has to say. The window names only
//! this module's types (some are the lower modules' types, re-exported here).

pub mod message;
mod notify;

mod reader;
mod sync;
mod writer;

use std::path::PathBuf;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

pub use message::Message;

use crate::crm::*;
pub use crate::notify::{NotifyEvent, Texts as NotifyTexts};
use crate::settings::LocalSettings;
use crate::store::calls::{FinishedCall, MissedCallRow, RecordedCall};
use crate::store::history::TaskChange;
use crate::store::queries::*;
use crate::store::{Replica, search};
pub use crate::sync::audit::{AuditEntry, AuditQuery};
pub use crate::sync::tables::SYNCED_TABLES;
pub use crate::sync::{Conflict, SyncStatus};
use sync::AuditRequest;

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
    /// "Done" on a deadline notification: the task is closed, with the same
    /// rights check as a task saved done in its editor. Answered by
    /// [`Event::TaskDone`].
    CompleteTask {
        task_id: String,
    },
    /// "Snooze" on a deadline notification.
    SnoozeTask {
        task_id: String,
    },
    /// The notifier records notices as given before it shows them; `done`
    /// hears once they are committed (or why not).
    MarkNotified {
        notices: Vec<crate::notify::DueNotice>,
        via: &'static str,
        done: Sender<Result<(), String>>,
    },
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
    Conflicts(Vec<Conflict>),
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
    /// The sync engine's status changed (for the status bar).
    SyncStatus(SyncStatus),
    /// What the deadline notifier has to say.
    Notify(NotifyEvent),
    /// "Done" on a notification closed the task, or why it did not.
    TaskDone {
        task_id: String,
        result: Result<(), Message>,
    },
}

/// The running services and the channels to them.
pub struct Services {
    queries: Sender<Query>,
    commands: Sender<Command>,
    /// Dropped on shutdown: the writer then finishes what it was asked and
    /// ends, though a notification still waiting for a click holds a
    /// sender of `commands`.
    stop_writer: Sender<()>,
    audit: Sender<AuditRequest>,
    events: Receiver<Event>,
    /// For the services started later (sync, notifier).
    sink: EventSink,
    replica_path: PathBuf,
    threads: Vec<JoinHandle<()>>,
    /// The sync engine, when this workstation has a clinic database.
    sync: Option<crate::sync::SyncHandle>,
    /// Deadline notifications, once the user is known.
    notifier: Option<crate::notify::Notifier>,
}

impl Services {
    /// Starts the writer (owning `replica`) and the reader thread.
    pub fn start(replica: Replica, settings_path: PathBuf, repaint: egui::Context) -> Services {
        let (query_tx, query_rx) = unbounded::<Query>();
        let (command_tx, command_rx) = unbounded::<Command>();
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let (event_tx, event_rx) = unbounded::<Event>();
        let sink = EventSink { tx: event_tx, ctx: repaint };
        let replica_path = replica.path().to_owned();
        let mut threads = Vec::new();

        let events = sink.clone();
        threads.push(spawn("clinicdesk-writer", move || {
            writer::writer_loop(replica, settings_path, command_rx, stop_rx, events)
        }));

        let events = sink.clone();
        let path = replica_path.clone();
        threads.push(spawn("clinicdesk-reader", move || reader::reader_loop(&path, query_rx, events)));

        let (audit_tx, audit_rx) = unbounded::<AuditRequest>();
        let events = sink.clone();
        threads.push(spawn("clinicdesk-audit", move || sync::audit_loop(audit_rx, events)));

        Services {
            queries: query_tx,
            commands: command_tx,
            stop_writer: stop_tx,
            audit: audit_tx,
            events: event_rx,
            sink,
            replica_path,
            threads,
            sync: None,
            notifier: None,
        }
    }

    /// Starts the sync engine with the clinic database at `database_url`;
    /// its status arrives as [`Event::SyncStatus`].
    pub fn start_sync(&mut self, database_url: String) {
        if let Some(old) = self.sync.take() {
            old.stop();
        }
        self.sync = Some(sync::start(self.replica_path.clone(), database_url, self.sink.clone()));
    }

    /// Something was saved: the sync engine uploads it now rather than at
    /// its next look.
    pub fn nudge_sync(&self) {
        if let Some(sync) = &self.sync {
            sync.nudge();
        }
    }

    /// Starts (or restarts for another user) the deadline notifications of
    /// `user_id`; they arrive as [`Event::Notify`], and the notifier's
    /// writes go to the writer.
    pub fn start_notifier(&mut self, user_id: String, enabled: bool, texts: NotifyTexts) {
        if let Some(old) = self.notifier.take() {
            old.stop();
        }
        let path = self.replica_path.clone();
        self.notifier = Some(notify::start(path, user_id, enabled, texts, self.sink.clone(), self.commands.clone()));
    }

    /// Follows the workstation's "Show task deadline notifications" toggle.
    pub fn set_notifications(&self, on: bool) {
        if let Some(notifier) = &self.notifier {
            notifier.set_enabled(on);
        }
    }

    /// Tells the desktop of an incoming call while the window is hidden
    /// (once the notifier runs for a signed-in user).
    pub fn announce_call(&self, summary: String, body: String) {
        if let Some(notifier) = &self.notifier {
            notifier.announce_call(summary, body);
        }
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
        if let Some(sync) = self.sync {
            sync.stop();
        }
        if let Some(notifier) = self.notifier {
            notifier.stop();
        }
        drop(self.queries);
        drop(self.commands);
        drop(self.stop_writer);
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

/// Where a service thread sends its events: the window's channel, then a
/// repaint so the window applies them.
#[derive(Clone)]
struct EventSink {
    tx: Sender<Event>,
    ctx: egui::Context,
}

impl EventSink {
    fn send(&self, event: Event) {
        if self.tx.send(event).is_ok() {
            self.ctx.request_repaint();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The next event from the services (waits a little for their threads).
    pub fn next_event(services: &Services) -> Event {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(e) = services.drain().next() {
                return e;
            }
            assert!(std::time::Instant::now() < deadline, "no answer from the writer");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

//! The operator's window (egui/eframe).
//!
//! [`ClinicApp`] holds the view state of every screen; data comes from the
//! service threads of [`crate::services`] as events, and what the operator does
//! becomes an [`Action`] collected while drawing and applied once at the end
//! of the frame. Nothing here reads the disk or waits.

pub mod calls;
pub mod forms;
pub mod handover;
mod help;
pub mod lists;
mod screens;
mod softphone;
mod widgets;

use std::time::{Duration, Instant};

use egui::{Key, KeyboardShortcut, Modifiers};

use crate::crm::*;
use crate::i18n::{I18n, Language};
pub use crate::services::Message;
use crate::settings::UnavailableAnswer;
use crate::settings::{LocalSettings, Profile};
use crate::sip::phone::{Availability, PhoneCommand, PhoneLink};
use crate::store::Replica;
use crate::store::queries::{CurrentUser, Dictionaries};
// The children of the window name them as `super::services` and `super::message`.
use crate::services::{self, Command, Event, NotifyEvent, Query, Services, SyncStatus, message};
pub use forms::Editor;

/// What `main` found before the window opened.
pub struct Startup {
    pub profile: Profile,
    pub settings: LocalSettings,
    /// settings.toml could not be read: shown once, and the file is not
    /// overwritten until the operator saves settings on purpose.
    pub settings_problem: Option<Message>,
    /// The opened replica, or why it cannot be used (shown instead of the
    /// screens; nothing on disk is touched).
    pub replica: Result<Replica, Message>,
    /// When the process started, to log the time to the first frame.
    pub started: Instant,
    /// Log frame-time percentiles every few hundred frames (for the
    /// scrolling figures; `CLINICDESK_FRAME_STATS=1`).
    pub frame_stats: bool,
    /// The link to the softphone, when telephony runs on this workstation.
    pub phone: Option<PhoneLink>,
    /// How the softphone runs (or why it does not), for its panel.
    pub phone_mode: calls::PhoneMode,
}

/// The screens of the navigation bar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Calls,
    Missed,
    Inquiries,
    Deals,
    Tasks,
    People,
    Team,
    Audit,
    Settings,
}

impl Screen {
    pub const ALL: [Screen; 9] = [
        Screen::Calls,
        Screen::Missed,
        Screen::Inquiries,
        Screen::Deals,
        Screen::Tasks,
        Screen::People,
        Screen::Team,
        Screen::Audit,
        Screen::Settings,
    ];

    fn title_key(self) -> &'static str {
        match self {
            Screen::Calls => "nav-calls",
            Screen::Missed => "nav-missed",
            Screen::Inquiries => "nav-inquiries",
            Screen::Deals => "nav-deals",
            Screen::Tasks => "nav-tasks",
            Screen::People => "nav-people",
            Screen::Team => "nav-team",
            Screen::Audit => "nav-audit",
            Screen::Settings => "nav-settings",
        }
    }

    fn shortcut(self) -> KeyboardShortcut {
        let key = match self {
            Screen::Calls => Key::Num1,
            Screen::Missed => Key::Num2,
            Screen::Inquiries => Key::Num3,
            Screen::Deals => Key::Num4,
            Screen::Tasks => Key::Num5,
            Screen::People => Key::Num6,
            Screen::Settings => Key::Num7,
            Screen::Team => Key::Num8,
            Screen::Audit => Key::Num9,
        };
        KeyboardShortcut::new(Modifiers::ALT, key)
    }
}

/// Something the operator asked for while a frame was drawn.
#[derive(Debug)]
pub enum Action {
    Go(Screen),
    OpenPerson(String),
    Edit(Box<Editor>),
    /// Open an existing record in its editor (read first).
    Load(services::FormRef),
    /// Data changed: refetch what is on screen.
    Refresh,
    ToggleHelp,
    /// Call a number (click-to-call, call back).
    Dial(String),
    /// Show the sync conflicts with both values.
    ShowConflicts,
}

/// The [`Env`] of a frame, built from the app's fields one by one so the
/// screens (other fields) can be borrowed mutably beside it.
macro_rules! env {
    ($app:ident, $services:expr, $actions:expr) => {
        Env {
            i18n: &$app.i18n,
            services: $services,
            dicts: &$app.dicts,
            user: $app.user.as_ref(),
            rights: &$app.rights,
            now: now_millis(),
            country: $app.settings.country,
            can_dial: $app.phone.is_connected(),
            actions: $actions,
        }
    };
}

/// What a screen needs to draw itself.
pub struct Env<'a> {
    pub i18n: &'a I18n,
    pub services: &'a Services,
    pub dicts: &'a Dictionaries,
    pub user: Option<&'a CurrentUser>,
    pub rights: &'a Rights,
    pub now: Millis,
    pub country: Country,
    /// Whether the softphone runs: phone numbers are then click-to-call.
    pub can_dial: bool,
    pub actions: &'a mut Vec<Action>,
}

impl Env<'_> {
    pub fn tr(&self, key: &str) -> String {
        self.i18n.tr(key)
    }

    pub fn user_id(&self) -> Option<String> {
        self.user.map(|u| u.id.clone())
    }
}

/// A frame's time for applying the services' events: what is left waits for the next frame.
const EVENT_BUDGET: Duration = Duration::from_millis(8);

/// How long a handed-over number waits for the phone to register before it is called anyway.
const DIAL_WAIT: Duration = Duration::from_secs(15);

const SHORTCUT_HELP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F1);
const SHORTCUT_SEARCH: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);
const SHORTCUT_NEW_INQUIRY: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::N);
const SHORTCUT_NEW_TASK: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::T);
const SHORTCUT_REFRESH: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F5);

/// The whole window.
pub struct ClinicApp {
    i18n: I18n,
    settings: LocalSettings,
    /// False while settings.toml has an error the operator has not fixed.
    settings_writable: bool,
    profile: Profile,
    pending_replica: Option<Replica>,
    services: Option<Services>,
    fatal: Option<Message>,
    notices: Vec<Message>,
    status: Option<(Message, Instant)>,
    dicts: Dictionaries,
    user: Option<CurrentUser>,
    rights: Rights,
    screen: Screen,
    calls: screens::calls::CallsScreen,
    missed: screens::missed::MissedScreen,
    team: screens::team::TeamScreen,
    audit: screens::audit::AuditScreen,
    /// What this operator is doing now.
    my_status: OperatorStatus,
    phone: calls::Calls,
    softphone: softphone::Softphone,
    inquiries: screens::inquiries::InquiriesScreen,
    deals: screens::deals::DealsScreen,
    tasks: screens::tasks::TasksScreen,
    people: screens::people::PeopleScreen,
    settings_screen: screens::settings::SettingsScreen,
    editor: Option<Editor>,
    help_open: bool,
    /// The main window is minimised or covered.
    window_hidden: bool,
    /// What the sync engine last reported (when this workstation has a
    /// clinic database).
    sync_status: Option<SyncStatus>,
    /// Sync conflicts shown to the operator (both values), when asked for.
    conflicts: Option<Vec<services::Conflict>>,
    /// What the notifier said, applied with the frame's actions.
    notify_events: Vec<NotifyEvent>,
    ctx: Option<egui::Context>,
    /// Set until the first frame and the first rows are logged.
    started: Option<Instant>,
    first_rows_logged: bool,
    frame_times: Option<Vec<Duration>>,
    /// Events taken from the services and not yet applied: a frame applies
    /// them in order until its budget is spent, the next frame goes on.
    /// None is ever dropped (a dropped page would never be asked for again).
    backlog: std::collections::VecDeque<Event>,
    /// How long one frame may spend applying events.
    event_budget: Duration,
    /// Numbers other programs hand to this window (`clinicdesk --dial`).
    handover: Option<handover::Inbox>,
    /// A number to call as soon as the phone is ready, and since when.
    pending_dial: Option<(handover::DialTarget, Instant)>,
}

impl ClinicApp {
    pub fn new(startup: Startup) -> ClinicApp {
        let language = Language::from_setting(startup.settings.language.as_deref());
        let (pending_replica, fatal) = match startup.replica {
            Ok(r) => (Some(r), None),
            Err(m) => (None, Some(m)),
        };
        ClinicApp {
            i18n: I18n::new(language),
            settings_writable: startup.settings_problem.is_none(),
            notices: startup.settings_problem.into_iter().collect(),
            settings: startup.settings,
            profile: startup.profile,
            pending_replica,
            services: None,
            fatal,
            status: None,
            dicts: Dictionaries::default(),
            user: None,
            rights: RoleCode::Operator.default_rights(),
            screen: Screen::Calls,
            calls: Default::default(),
            missed: Default::default(),
            team: Default::default(),
            audit: Default::default(),
            my_status: OperatorStatus::Free,
            phone: {
                let mut phone = calls::Calls::default();
                phone.mode = startup.phone_mode;
                if let Some(link) = startup.phone {
                    phone.connect(link);
                }
                phone
            },
            softphone: Default::default(),
            inquiries: Default::default(),
            deals: Default::default(),
            tasks: Default::default(),
            people: Default::default(),
            settings_screen: Default::default(),
            editor: None,
            help_open: false,
            window_hidden: false,
            sync_status: None,
            conflicts: None,
            notify_events: Vec::new(),
            ctx: None,
            started: Some(startup.started),
            first_rows_logged: false,
            frame_times: startup.frame_stats.then(Vec::new),
            backlog: Default::default(),
            event_budget: EVENT_BUDGET,
            handover: None,
            pending_dial: None,
        }
    }

    /// Takes the numbers other programs hand over on the profile's socket.
    pub fn take_numbers(&mut self, inbox: handover::Inbox) {
        self.handover = Some(inbox);
    }

    /// Calls `target` once the phone is ready (`clinicdesk --dial` that opened this window).
    pub fn dial_when_ready(&mut self, target: handover::DialTarget) {
        self.pending_dial = Some((target, Instant::now()));
    }

    /// Sets how long a frame may spend applying the services' events (tests
    /// set zero: one event a frame, to show none is lost across frames).
    #[doc(hidden)]
    pub fn set_event_budget(&mut self, budget: Duration) {
        self.event_budget = budget;
    }

    /// Events received and not yet applied.
    pub fn events_waiting(&self) -> usize {
        self.backlog.len()
    }

    pub fn screen(&self) -> Screen {
        self.screen
    }

    pub fn settings(&self) -> &LocalSettings {
        &self.settings
    }

    pub fn editor(&self) -> Option<&Editor> {
        self.editor.as_ref()
    }

    pub fn current_user(&self) -> Option<&CurrentUser> {
        self.user.as_ref()
    }

    /// The calls in progress.
    pub fn calls_in_progress(&self) -> &[crate::softphone::tracker::CallView] {
        &self.phone.tracker.calls
    }

    /// Starts the services on the first frame, when the egui context to
    /// wake is known.
    fn ensure_services(&mut self, ctx: &egui::Context) {
        if self.ctx.is_none() {
            self.ctx = Some(ctx.clone());
        }
        if let Some(replica) = self.pending_replica.take() {
            let mut services = Services::start(replica, self.profile.settings_path(), ctx.clone());
            services.query(Query::Dictionaries);
            services.query(Query::Drafts);
            if let Some(url) = self.settings.database_url.clone() {
                services.start_sync(url);
            }
            self.phone.wake(ctx);
            if let Some(inbox) = &self.handover {
                inbox.wake(ctx);
            }
            let login = self.settings.user_login.clone().unwrap_or_default();
            if !login.is_empty() {
                services.query(Query::User { login });
            }
            self.services = Some(services);
        }
    }

    /// Applies what the services reported, within a time budget so one
    /// frame never takes long.
    fn handle_events(&mut self) {
        let Some(services) = &self.services else { return };
        let deadline = Instant::now() + self.event_budget;
        let mut refresh = false;
        let mut notifier_for = None;
        self.backlog.extend(services.drain());
        while let Some(event) = self.backlog.pop_front() {
            match event {
                Event::Count { list, generation, total } => match list {
                    services::ListKind::Calls(_) => self.calls.list.set_total(generation, total),
                    services::ListKind::Inquiries(_) => self.inquiries.list.set_total(generation, total),
                    services::ListKind::Tasks(_) => self.tasks.list.set_total(generation, total),
                },
                Event::Page { generation, page, rows, .. } => match rows {
                    services::Rows::Calls(rows) => self.calls.list.set_page(generation, page, rows),
                    services::Rows::Inquiries(rows) => self.inquiries.list.set_page(generation, page, rows),
                    services::Rows::Tasks(rows) => self.tasks.list.set_page(generation, page, rows),
                },
                Event::SearchResults { seq, hits } => self.people.set_results(seq, hits),
                Event::Person { id, history } => self.people.set_person(&id, history.map(|h| *h)),
                Event::Board { deal_type_id, columns } => self.deals.set_board(&deal_type_id, columns),
                Event::Dictionaries(d) => self.dicts = *d,
                Event::User { login, found } => match found {
                    Some((user, rights)) => {
                        services.command(Command::SetRights(rights.clone()));
                        services.query(Query::Team);
                        notifier_for = Some(user.id.clone());
                        self.user = Some(user);
                        self.rights = rights;
                        refresh = true;
                    }
                    None => self.notices.push(Message::new("err-unknown-user").with("login", login)),
                },
                Event::Form(Some(form)) => {
                    let editor = Editor::from_loaded(form);
                    if let Some(person_id) = editor.wants_deals_of() {
                        services.query(Query::OpenDeals { person_id: person_id.to_owned() });
                    }
                    if let Some(task_id) = editor.wants_history_of() {
                        services.query(Query::TaskHistory { task_id: task_id.to_owned() });
                    }
                    self.editor = Some(editor);
                }
                Event::Form(None) => self.notices.push(Message::new("err-record-gone")),
                Event::Saved { kind: services::RecordKind::TaskTemplate, .. } => {
                    services.nudge_sync();
                    // The templates' editor and every task form read them anew.
                    services.query(Query::Dictionaries);
                    self.settings_screen.template_saved();
                    self.status = Some((Message::new("status-template-saved"), Instant::now()));
                }
                Event::SaveFailed { kind: services::RecordKind::TaskTemplate, error } => {
                    self.settings_screen.template_failed(error)
                }
                Event::Saved { kind, id } => {
                    services.nudge_sync();
                    let opened_person = self.editor.as_ref().and_then(|e| e.person_id()).map(str::to_owned);
                    // Its draft went with the save; another may be waiting.
                    if self.editor.as_ref().and_then(|e| e.draft_key()).is_some() {
                        services.query(Query::Drafts);
                    }
                    self.editor = None;
                    self.status = Some((Message::new(forms::saved_key(kind)), Instant::now()));
                    refresh = true;
                    if kind == services::RecordKind::Person {
                        self.people.open(id, services);
                    } else if let Some(person) = opened_person {
                        self.people.reload(&person, services);
                    }
                }
                Event::SaveFailed { error, .. } => match &mut self.editor {
                    Some(editor) => editor.failed(error),
                    None => self.notices.push(error),
                },
                Event::SettingsSaved => self.status = Some((Message::new("status-settings-saved"), Instant::now())),
                Event::SettingsFailed(m) | Event::SecretFailed(m) | Event::ReadFailed(m) => self.notices.push(m),
                Event::SecretStored => self.status = Some((Message::new("status-password-saved"), Instant::now())),
                Event::AudioDevices { inputs, outputs } => self.settings_screen.set_devices(inputs, outputs),
                Event::CallRecorded { recorded, result, visit_booked } => {
                    if let Some(editor) = &mut self.editor
                        && editor.call_id() == Some(recorded.call_id.as_str())
                    {
                        editor.set_call_in_progress(false);
                        // A visit booked while talking means "booked";
                        // otherwise the talk itself was the consultation.
                        if visit_booked {
                            editor.suggest_result(InquiryResult::Booked);
                        } else if result == CallResult::Answered {
                            editor.suggest_result(InquiryResult::Consultation);
                        }
                    }
                    if result == CallResult::Missed {
                        self.status = Some((Message::new("status-missed-recorded"), Instant::now()));
                    }
                    refresh = true;
                }
                Event::Drafts(drafts) => {
                    if self.editor.is_none()
                        && let Some((key, form)) = drafts.into_iter().next()
                        && let Ok(form) = serde_json::from_value::<InquiryForm>(form)
                    {
                        self.editor = Some(Editor::from_draft(key, form));
                        self.status = Some((Message::new("status-draft-restored"), Instant::now()));
                    }
                }
                Event::MissedCalls(rows) => self.missed.set_rows(rows),
                Event::Team(members) => {
                    if let Some(me) = self.user.as_ref().and_then(|u| members.iter().find(|m| m.user_id == u.id)) {
                        self.my_status = me.status.unwrap_or(OperatorStatus::Free);
                    }
                    self.team.set_members(members);
                }
                Event::UserRights { user_id, rows } => self.team.set_rights(user_id, rows),
                Event::TeamChanged => {
                    self.team.invalidate();
                    if self.conflicts.is_some() {
                        services.query(Query::Conflicts);
                    }
                }
                Event::Conflicts(list) => self.conflicts = Some(list),
                Event::TaskHistory { task_id, changes } => {
                    if let Some(editor) = &mut self.editor {
                        editor.set_history(&task_id, changes);
                    }
                }
                Event::Audit { seq, result } => self.audit.set_result(seq, result),
                Event::OpenDeals { person_id, deals } => {
                    if let Some(editor) = &mut self.editor {
                        editor.set_deal_choices(&person_id, deals);
                    }
                }
                Event::SyncStatus(status) => self.sync_status = Some(status),
                Event::Notify(event) => self.notify_events.push(event),
                Event::TaskDone { result: Ok(()), .. } => {
                    services.nudge_sync();
                    refresh = true;
                }
                Event::TaskDone { result: Err(error), .. } => self.notices.push(error),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        if !self.backlog.is_empty()
            && let Some(ctx) = &self.ctx
        {
            // The rest waits for the next frame, which comes at once.
            ctx.request_repaint();
        }
        if let Some(user_id) = notifier_for {
            self.start_notifier(&user_id);
        }
        if refresh {
            self.refresh();
        }
    }

    /// Starts (or restarts for another user) the deadline notifications.
    fn start_notifier(&mut self, user_id: &str) {
        let Some(services) = &mut self.services else { return };
        let tr = |key| self.i18n.tr(key);
        let texts = services::NotifyTexts {
            reminder: tr("notify-reminder"),
            deadline: tr("notify-deadline"),
            summary: self.i18n.tr_args("notify-summary", &[("count", "{count}".into())]),
            open: tr("notify-open"),
            snooze: tr("notify-snooze"),
            done: tr("notify-done"),
        };
        services.start_notifier(user_id.to_owned(), self.settings.deadline_notifications, texts);
    }

    fn handle_notify_events(&mut self, actions: &mut Vec<Action>) {
        for event in std::mem::take(&mut self.notify_events) {
            match event {
                NotifyEvent::ShowInWindow { notice, why } => {
                    tracing::info!(task = %notice.title, "reminder shown in the window: no desktop notifications ({why})");
                    self.notices.push(
                        Message::new("notify-in-window")
                            .with("title", &notice.title)
                            .with("detail", notice.detail())
                            .with("why", why),
                    );
                }
                NotifyEvent::SummaryInWindow { overdue, why } => {
                    self.notices.push(Message::new("notify-summary-in-window").with("count", overdue).with("why", why))
                }
                NotifyEvent::OpenTask { task_id } => {
                    if let Some(ctx) = &self.ctx {
                        ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
                        ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
                    }
                    actions.push(Action::Load(services::FormRef::Task(task_id)));
                }
            }
        }
    }

    /// What other programs handed over: the window comes to the front, and a
    /// number is called through the phone once it is ready (registered, or
    /// not after [`DIAL_WAIT`]); without a phone the operator is told why.
    fn handed_over(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        for request in self.handover.iter().flat_map(|h| h.drain()).collect::<Vec<_>>() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Minimized(false));
            ctx.send_viewport_cmd(egui::ViewportCommand::Focus);
            if let handover::Request::Dial(target) = request {
                self.pending_dial = Some((target, Instant::now()));
            }
        }
        let Some((target, since)) = &self.pending_dial else { return };
        let unavailable = match &self.phone.mode {
            _ if !self.phone.is_connected() => Some(Message::new("dial-phone-off")),
            calls::PhoneMode::Off => Some(Message::new("dial-phone-off")),
            calls::PhoneMode::Problem(why) => Some(why.clone()),
            calls::PhoneMode::Account(_) | calls::PhoneMode::Direct(_) => None,
        };
        let ready = matches!(self.phone.mode, calls::PhoneMode::Direct(_))
            || self.phone.registration.is_some()
            || since.elapsed() >= DIAL_WAIT;
        if let Some(why) = unavailable {
            let why = why.text(&self.i18n);
            let number = target.shown(self.settings.country);
            self.notices.push(Message::new("dial-no-phone").with("number", number).with("reason", why));
            self.pending_dial = None;
            ctx.request_repaint();
        } else if ready {
            tracing::info!(number = %target, "calling a number handed over to the window");
            actions.push(Action::Dial(target.as_str().to_owned()));
            self.pending_dial = None;
        } else {
            if self.status.as_ref().is_none_or(|(m, _)| m.key != "dial-waiting") {
                // Shown from the next frame on (the status bar is drawn already).
                let number = target.shown(self.settings.country);
                self.status = Some((Message::new("dial-waiting").with("number", number), Instant::now()));
                ctx.request_repaint();
            }
            ctx.request_repaint_after(DIAL_WAIT.saturating_sub(since.elapsed()));
        }
    }

    /// Forgets cached lists so what is on screen is read again.
    fn refresh(&mut self) {
        self.calls.list.invalidate();
        self.inquiries.list.invalidate();
        self.tasks.list.invalidate();
        self.deals.invalidate();
        self.missed.invalidate();
        self.team.invalidate();
        if let Some(services) = &self.services {
            self.people.refresh(services);
        }
    }

    fn shortcuts(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
        ctx.input_mut(|input| {
            if input.consume_shortcut(&SHORTCUT_HELP) {
                self.help_open = !self.help_open;
            }
            for screen in Screen::ALL {
                if input.consume_shortcut(&screen.shortcut()) {
                    actions.push(Action::Go(screen));
                }
            }
            if input.consume_shortcut(&SHORTCUT_SEARCH) {
                actions.push(Action::Go(Screen::People));
                self.people.focus_search();
            }
            if self.editor.is_none() {
                if input.consume_shortcut(&SHORTCUT_NEW_INQUIRY) {
                    actions.push(Action::Edit(Box::new(Editor::new_inquiry(self.people.open_person_id()))));
                }
                if input.consume_shortcut(&SHORTCUT_NEW_TASK) {
                    actions.push(Action::Edit(Box::new(Editor::new_task(
                        self.people.open_person_id(),
                        self.user.as_ref(),
                    ))));
                }
            }
            if input.consume_shortcut(&SHORTCUT_REFRESH) {
                actions.push(Action::Refresh);
            }
            if self.help_open && input.consume_key(Modifiers::NONE, Key::Escape) {
                self.help_open = false;
            }
        });
    }

    /// Draws the whole window into `ui` (the eframe root, or a test harness).
    pub fn root_ui(&mut self, ui: &mut egui::Ui) {
        let frame_start = Instant::now();
        self.frame_ui(ui);
        if let Some(times) = &mut self.frame_times {
            times.push(frame_start.elapsed());
            if times.len() == 200 {
                times.sort();
                let ms = |d: Duration| d.as_secs_f64() * 1000.0;
                tracing::info!(
                    frames = times.len(),
                    p50_ms = ms(times[times.len() / 2]),
                    p99_ms = ms(times[times.len() * 99 / 100]),
                    max_ms = ms(times[times.len() - 1]),
                    cached_call_pages = self.calls.list.cached_pages(),
                    "frame times (building the UI)"
                );
                times.clear();
            }
        }
    }

    fn frame_ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if let Some(started) = self.started {
            if !self.first_rows_logged {
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "first frame");
                self.first_rows_logged = true;
            } else if self.calls.list.cached_pages() > 0 {
                tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "first call log rows on screen");
                self.started = None;
            }
        }
        self.ensure_services(&ctx);
        self.handle_events();
        let mut actions = Vec::new();

        if let Some(fatal) = &self.fatal {
            widgets::fatal_ui(ui, &self.i18n, fatal);
            return;
        }
        if self.services.is_none() {
            return;
        }
        self.handle_notify_events(&mut actions);
        self.shortcuts(&ctx, &mut actions);
        if self.phone.is_connected() {
            self.softphone.shortcuts(&ctx, &mut self.phone);
        }
        let Some(services) = &self.services else { return };
        for event in self.phone.drain() {
            if let (crate::sip::phone::PhoneEvent::Incoming { from, card, .. }, true) = (&event, self.window_hidden) {
                let who = card
                    .as_ref()
                    .and_then(|c| c.people.first().map(|p| p.full_name.clone()))
                    .unwrap_or_else(|| self.i18n.tr("card-new-caller"));
                services.announce_call(self.i18n.tr("card-title-incoming"), format!("{who} · {from}"));
            }
            let mut call_env = calls::CallEnv {
                services,
                user_id: self.user.as_ref().map(|u| u.id.clone()),
                editor: &mut self.editor,
            };
            self.phone.handle(event, &mut call_env);
        }
        if let Some(editor) = &mut self.editor
            && let Some(call_id) = editor.call_id()
        {
            let in_progress = self.phone.in_progress(call_id);
            editor.set_call_in_progress(in_progress);
        }
        self.phone.autosave_draft(&ctx, self.editor.as_ref(), services);

        let mut env = env!(self, services, &mut actions);

        let mut status = self.my_status;
        let sync = self.sync_status.as_ref();
        egui::Panel::top("status").show(ui, |ui| {
            widgets::status_bar_ui(ui, &mut env, self.status.as_ref().map(|(m, _)| m), &mut status, sync);
        });
        if status != self.my_status {
            self.my_status = status;
            if let Some(user) = &self.user {
                services.command(Command::SetOperatorStatus { user_id: user.id.clone(), status });
            }
            let availability = match (status.declines_calls(), self.settings.when_unavailable) {
                (false, _) => Availability::Available,
                (true, UnavailableAnswer::Busy) => Availability::Busy,
                (true, UnavailableAnswer::DoNotDisturb) => Availability::DoNotDisturb,
            };
            self.phone.send(PhoneCommand::SetAvailability(availability));
        }
        if !matches!(self.phone.mode, calls::PhoneMode::Off) {
            egui::Panel::right("softphone").resizable(false).default_size(250.0).show(ui, |ui| {
                self.softphone.ui(ui, &mut env, &mut self.phone);
            });
        }
        egui::Panel::left("navigation").resizable(false).default_size(170.0).show(ui, |ui| {
            nav_ui(ui, &mut env, self.screen);
        });
        let settings_change = egui::CentralPanel::default_margins()
            .show(ui, |ui| {
                match self.screen {
                    Screen::Calls => self.calls.ui(ui, &mut env),
                    Screen::Missed => self.missed.ui(ui, &mut env),
                    Screen::Inquiries => self.inquiries.ui(ui, &mut env),
                    Screen::Deals => self.deals.ui(ui, &mut env),
                    Screen::Tasks => self.tasks.ui(ui, &mut env),
                    Screen::People => self.people.ui(ui, &mut env),
                    Screen::Team => self.team.ui(ui, &mut env),
                    Screen::Audit => self.audit.ui(ui, &mut env, self.settings.database_url.as_deref()),
                    Screen::Settings => {
                        return self.settings_screen.ui(ui, &mut env, &mut self.settings, self.settings_writable);
                    }
                }
                None
            })
            .inner;
        if let Some(change) = settings_change {
            apply_settings_change(change, &self.settings, self.settings_writable, &mut self.i18n, services);
            services.set_notifications(self.settings.deadline_notifications);
        }

        if let Some(editor) = &mut self.editor {
            let env = env!(self, services, &mut actions);
            if editor.ui(&ctx, env) == forms::Outcome::Close {
                // Closing on purpose discards the draft.
                if let Some(key) = editor.draft_key() {
                    services.command(Command::DeleteDraft { key: key.to_owned() });
                }
                self.editor = None;
            }
        }
        if !self.phone.tracker.calls.is_empty() {
            let mut env = env!(self, services, &mut actions);
            calls::caller_cards_ui(&ctx, &mut env, &mut self.phone, &self.settings);
        }
        if self.help_open {
            help::help_ui(&ctx, &self.i18n, &mut self.help_open);
        }
        if let Some(list) = &self.conflicts {
            let mut open = true;
            if let Some(id) = widgets::conflicts_ui(&ctx, &self.i18n, list, &mut open) {
                services.command(Command::AcknowledgeConflict(id));
            }
            if !open {
                self.conflicts = None;
            }
        }
        if let Some(notice) = self.notices.first()
            && widgets::notice_ui(&ctx, &self.i18n, notice)
        {
            self.notices.remove(0);
        }
        // A status line fades after a few seconds: one repaint to clear it.
        if let Some((_, at)) = &self.status {
            let left = Duration::from_secs(4).saturating_sub(at.elapsed());
            if left.is_zero() {
                self.status = None;
            } else {
                ctx.request_repaint_after(left);
            }
        }
        self.handed_over(&ctx, &mut actions);
        self.apply(actions);
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                // Its shortcut does nothing for those who may not see it.
                Action::Go(Screen::Audit) if !allowed(Screen::Audit, &self.rights) => {}
                Action::Go(screen) => {
                    if screen == Screen::People && self.screen != Screen::People {
                        self.people.focus_search();
                    }
                    self.screen = screen;
                    if screen == Screen::Settings
                        && let Some(s) = &self.services
                    {
                        self.settings_screen.on_open(s);
                    }
                }
                Action::OpenPerson(id) => {
                    self.screen = Screen::People;
                    if let Some(services) = &self.services {
                        self.people.open(id, services);
                    }
                }
                Action::Edit(editor) => {
                    if let (Some(person_id), Some(services)) = (editor.wants_deals_of(), &self.services) {
                        services.query(Query::OpenDeals { person_id: person_id.to_owned() });
                    }
                    self.editor = Some(*editor);
                }
                Action::Load(form) => {
                    if let Some(services) = &self.services {
                        services.query(Query::Form(form));
                    }
                }
                Action::Refresh => self.refresh(),
                Action::ToggleHelp => self.help_open = !self.help_open,
                Action::Dial(number) => self.phone.send(PhoneCommand::Dial { number }),
                Action::ShowConflicts => {
                    if let Some(services) = &self.services {
                        services.query(Query::Conflicts);
                    }
                    self.conflicts = Some(Vec::new());
                }
            }
        }
    }

    /// Stops the service threads (on exit).
    pub fn shutdown(&mut self) {
        // The socket goes first: a link clicked now starts a new window.
        self.handover = None;
        if let Some(services) = self.services.take() {
            services.shutdown();
        }
    }
}

/// What changed on the Settings screen.
pub enum SettingsChange {
    /// Persist the settings (and maybe switch language).
    Save,
    /// The SIP password was entered: to the keyring, not the file.
    SipPassword(String),
}

fn apply_settings_change(
    change: SettingsChange,
    settings: &LocalSettings,
    writable: bool,
    i18n: &mut I18n,
    services: &Services,
) {
    match change {
        SettingsChange::Save => {
            let language = Language::from_setting(settings.language.as_deref());
            if language != i18n.language() {
                *i18n = I18n::new(language);
            }
            if writable {
                services.command(Command::SaveSettings(settings.clone()));
            }
        }
        SettingsChange::SipPassword(password) => {
            let account = settings.sip.label();
            services.command(Command::StoreSipPassword { account, password });
        }
    }
}

/// Screens shown only with a right: the team (supervisors, the head) and
/// the audit trail (the clinic head).
fn allowed(screen: Screen, rights: &Rights) -> bool {
    match screen {
        Screen::Team => screens::team::TeamScreen::allowed(rights),
        Screen::Audit => rights.has(Right::ViewAudit),
        _ => true,
    }
}

fn nav_ui(ui: &mut egui::Ui, env: &mut Env<'_>, current: Screen) {
    ui.add_space(6.0);
    ui.heading("ClinicDesk");
    ui.add_space(8.0);
    for screen in Screen::ALL {
        if !allowed(screen, env.rights) {
            continue;
        }
        let label = env.tr(screen.title_key());
        let response = ui
            .add_sized([ui.available_width(), 28.0], egui::Button::selectable(current == screen, label))
            .on_hover_text(ui.ctx().format_shortcut(&screen.shortcut()));
        if response.clicked() {
            env.actions.push(Action::Go(screen));
        }
    }
    ui.with_layout(egui::Layout::bottom_up(egui::Align::Min), |ui| {
        if ui.button(env.tr("nav-help")).on_hover_text("F1").clicked() {
            env.actions.push(Action::ToggleHelp);
        }
    });
}

impl eframe::App for ClinicApp {
    /// Runs also while the window is minimised or covered: a ringing call
    /// then asks for the ui anyway, so its card window opens above the
    /// others, and the desktop is told of the call.
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.window_hidden = ctx.input(|i| i.viewport().visible() == Some(false));
        if self.window_hidden && self.phone.needs_attention() {
            ctx.send_viewport_cmd(egui::ViewportCommand::RequestPaintWhileHidden);
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.root_ui(ui);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.shutdown();
    }
}

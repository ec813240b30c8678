//! The operator's window (egui/eframe).
//!
//! [`ClinicApp`] holds the view state of every screen; data comes from the
//! service threads of [`crate::services`] as events, and what the operator does
//! becomes an [`Action`] collected while drawing and applied once at the end
//! of the frame. Nothing here reads the disk or waits.
//!
//! This file keeps the window's types; the rest is split by concern:
//! applying what the services and the phone report (`events.rs`), applying
//! what the operator asked for (`actions.rs`), drawing a frame (`frame.rs`),
//! the caller card (`caller_card.rs`) and the phone panel (`softphone.rs`).

mod actions;
mod caller_card;
pub mod calls;
mod events;
pub mod forms;
mod frame;
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
use crate::settings::{LocalSettings, Profile};
use crate::sip::phone::PhoneLink;
use crate::store::Replica;
use crate::store::queries::{CurrentUser, Dictionaries};
// The children of the window name them as `super::services` and `super::message`.
use crate::services::{self, Event, NotifyEvent, Services, SyncStatus, message};
pub use actions::{Action, SettingsChange};
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
    /// A status the operator picked that the stored one has not caught up
    /// with yet: an older answer about the team must not undo it.
    my_status_pending: Option<OperatorStatus>,
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
            my_status_pending: None,
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
            event_budget: events::EVENT_BUDGET,
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

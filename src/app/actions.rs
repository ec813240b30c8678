//! What the operator asks for while a frame is drawn, applied once at the
//! end of the frame: an [`Action`] (from the screens, the navigation, the
//! window's keyboard shortcuts), a change on the Settings screen, and which
//! screens a user's rights show at all.

use egui::{Key, KeyboardShortcut, Modifiers};

use super::services::{self, Command, Query, Services};
use super::{ClinicApp, Editor, Screen, screens};
use crate::crm::{Right, Rights};
use crate::i18n::{I18n, Language};
use crate::settings::LocalSettings;
use crate::sip::phone::PhoneCommand;

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

const SHORTCUT_HELP: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F1);
const SHORTCUT_SEARCH: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::F);
const SHORTCUT_NEW_INQUIRY: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::N);
const SHORTCUT_NEW_TASK: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::T);
const SHORTCUT_REFRESH: KeyboardShortcut = KeyboardShortcut::new(Modifiers::NONE, Key::F5);

impl ClinicApp {
    pub(super) fn shortcuts(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
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

    pub(super) fn apply(&mut self, actions: Vec<Action>) {
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
}

/// What changed on the Settings screen.
pub enum SettingsChange {
    /// Persist the settings (and maybe switch language).
    Save,
    /// The SIP password was entered: to the keyring, not the file.
    SipPassword(String),
}

pub(super) fn apply_settings_change(
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
pub(super) fn allowed(screen: Screen, rights: &Rights) -> bool {
    match screen {
        Screen::Team => screens::team::TeamScreen::allowed(rights),
        Screen::Audit => rights.has(Right::ViewAudit),
        _ => true,
    }
}

//! This workstation's settings: applied at once, kept in settings.toml
//! (the SIP password goes to the OS keyring instead).

use egui::RichText;

use crate::app::widgets::{WARNING, choice_ui, enum_text, error_text_ui, field_ui};
use crate::app::{Env, Message, SettingsChange};
use crate::crm::{Country, FieldError, Right, TaskTemplateForm};
use crate::i18n::Language;
use crate::services::{Command, Query, Services};
use crate::settings::{LocalSettings, SipTransport, UnavailableAnswer};
use crate::store::queries::Dictionaries;

#[derive(Default)]
pub struct SettingsScreen {
    devices: Option<(Vec<String>, Vec<String>)>,
    devices_asked: bool,
    password: String,
    /// The task template being edited (the setup admin's).
    template: Option<TaskTemplateForm>,
    template_errors: Vec<FieldError>,
    template_error: Option<Message>,
    template_saving: bool,
}

impl SettingsScreen {
    /// Called when the screen opens: devices are listed off the UI thread.
    pub fn on_open(&mut self, services: &Services) {
        if !self.devices_asked {
            self.devices_asked = true;
            services.command(Command::ListAudioDevices);
        }
    }

    pub fn set_devices(&mut self, inputs: Vec<String>, outputs: Vec<String>) {
        self.devices = Some((inputs, outputs));
    }

    pub fn template_saved(&mut self) {
        self.template = None;
        self.template_saving = false;
        self.template_error = None;
    }

    pub fn template_failed(&mut self, error: Message) {
        self.template_saving = false;
        self.template_error = Some(error);
    }

    /// Draws the settings; returns what must be persisted.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        env: &mut Env<'_>,
        s: &mut LocalSettings,
        writable: bool,
    ) -> Option<SettingsChange> {
        let mut change = None;
        let mut dirty = false;
        ui.heading(env.tr("nav-settings"));
        if !writable {
            ui.label(RichText::new(env.tr("settings-not-saved")).color(WARNING));
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.add_space(6.0);
            ui.strong(env.tr("settings-workstation"));
            dirty |= ui.checkbox(&mut s.telephony_enabled, env.tr("setting-telephony")).changed();
            dirty |= ui.checkbox(&mut s.show_history_during_call, env.tr("setting-history-during-call")).changed();
            dirty |= ui.checkbox(&mut s.deadline_notifications, env.tr("setting-deadline-notifications")).changed();
            dirty |= ui.checkbox(&mut s.call_center_mode, env.tr("setting-call-center-mode")).changed();
            ui.add_space(10.0);

            egui::Grid::new("settings-grid").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
                let label = ui.label(env.tr("setting-language"));
                let current = Language::from_setting(s.language.as_deref());
                let system = env.tr("setting-language-system");
                let selected = match &s.language {
                    None => system.clone(),
                    Some(_) => current.native_name().to_owned(),
                };
                egui::ComboBox::from_id_salt("language")
                    .selected_text(selected)
                    .show_ui(ui, |ui| {
                        dirty |= ui.selectable_value(&mut s.language, None, system).changed();
                        for lang in Language::ALL {
                            dirty |= ui
                                .selectable_value(&mut s.language, Some(lang.code().to_owned()), lang.native_name())
                                .changed();
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();

                let label = ui.label(env.tr("setting-country"));
                egui::ComboBox::from_id_salt("country")
                    .selected_text(enum_text(env.i18n, "country", s.country.code()))
                    .show_ui(ui, |ui| {
                        for c in [Country::Ru, Country::Ua] {
                            dirty |= ui
                                .selectable_value(&mut s.country, c, enum_text(env.i18n, "country", c.code()))
                                .changed();
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();

                let label = ui.label(env.tr("setting-when-unavailable"));
                let names = |a: UnavailableAnswer| match a {
                    UnavailableAnswer::Busy => env.tr("unavailable-busy"),
                    UnavailableAnswer::DoNotDisturb => env.tr("unavailable-dnd"),
                };
                egui::ComboBox::from_id_salt("when-unavailable")
                    .selected_text(names(s.when_unavailable))
                    .show_ui(ui, |ui| {
                        for a in [UnavailableAnswer::Busy, UnavailableAnswer::DoNotDisturb] {
                            dirty |= ui.selectable_value(&mut s.when_unavailable, a, names(a)).changed();
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();

                let label = ui.label(env.tr("setting-user-login"));
                let mut login = s.user_login.clone().unwrap_or_default();
                let edit = ui.text_edit_singleline(&mut login).labelled_by(label.id);
                if edit.changed() {
                    s.user_login = Some(login.trim().to_owned()).filter(|l| !l.is_empty());
                }
                if edit.lost_focus() {
                    dirty = true;
                    if let Some(login) = &s.user_login {
                        env.services.query(Query::User { login: login.clone() });
                    }
                }
                ui.end_row();
            });

            ui.add_space(10.0);
            ui.strong(env.tr("settings-audio"));
            egui::Grid::new("audio-grid").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
                let (inputs, outputs) = match &self.devices {
                    Some((i, o)) => (i.as_slice(), o.as_slice()),
                    None => (&[][..], &[][..]),
                };
                dirty |= device_ui(ui, env, "setting-input-device", &mut s.audio.input_device, inputs);
                dirty |= device_ui(ui, env, "setting-output-device", &mut s.audio.output_device, outputs);
            });

            ui.add_space(10.0);
            ui.strong(env.tr("settings-sip"));
            egui::Grid::new("sip-grid").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
                for (key, value) in [
                    ("setting-sip-server", &mut s.sip.server),
                    ("setting-sip-user", &mut s.sip.username),
                    ("setting-sip-auth-user", &mut s.sip.auth_username),
                    ("setting-sip-display-name", &mut s.sip.display_name),
                ] {
                    let label = ui.label(env.tr(key));
                    dirty |= ui.text_edit_singleline(value).labelled_by(label.id).lost_focus();
                    ui.end_row();
                }
                ui.label(env.tr("setting-sip-transport"));
                ui.horizontal(|ui| {
                    for (t, name) in
                        [(SipTransport::Udp, "UDP"), (SipTransport::Tcp, "TCP"), (SipTransport::Tls, "TLS")]
                    {
                        dirty |= ui.selectable_value(&mut s.sip.transport, t, name).changed();
                    }
                });
                ui.end_row();
                if s.sip.transport == SipTransport::Tls {
                    let label = ui.label(env.tr("setting-sip-ca-file"));
                    let mut text = s.sip.ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                    let field = egui::TextEdit::singleline(&mut text).hint_text(env.tr("setting-sip-ca-file-hint"));
                    if ui.add(field).labelled_by(label.id).lost_focus() {
                        let path = Some(text.trim()).filter(|t| !t.is_empty()).map(std::path::PathBuf::from);
                        if path != s.sip.ca_file {
                            s.sip.ca_file = path;
                            dirty = true;
                        }
                    }
                    ui.end_row();
                }
                let label = ui.label(env.tr("setting-sip-media-timeout"));
                dirty |= media_timeout_ui(ui, &mut s.sip.media_timeout_secs).labelled_by(label.id).changed();
                ui.end_row();
                let label = ui.label(env.tr("setting-sip-password"));
                ui.horizontal(|ui| {
                    ui.add(egui::TextEdit::singleline(&mut self.password).password(true)).labelled_by(label.id);
                    if ui
                        .add_enabled(!self.password.is_empty(), egui::Button::new(env.tr("action-save-password")))
                        .clicked()
                    {
                        change = Some(SettingsChange::SipPassword(std::mem::take(&mut self.password)));
                    }
                });
                ui.end_row();
            });
            ui.label(RichText::new(env.tr("setting-sip-password-hint")).weak());
            // The clinic's task templates: a global setting, the setup admin's.
            if env.rights.has(Right::EditDictionaries) {
                ui.add_space(10.0);
                self.templates_ui(ui, env);
            }
        });
        if dirty && change.is_none() {
            change = Some(SettingsChange::Save);
        }
        change
    }
}

impl SettingsScreen {
    fn templates_ui(&mut self, ui: &mut egui::Ui, env: &mut Env<'_>) {
        ui.strong(env.tr("settings-templates"));
        ui.label(RichText::new(env.tr("settings-templates-hint")).weak());
        let mut edit = None;
        egui::Grid::new("templates").striped(true).num_columns(5).spacing([12.0, 4.0]).show(ui, |ui| {
            for key in
                ["field-title", "field-task-type", "field-deadline-offset", "field-reminder-offset", "field-role"]
            {
                ui.label(RichText::new(env.tr(key)).weak());
            }
            ui.end_row();
            for t in &env.dicts.task_templates {
                // The title opens the template in the editor below.
                let open = ui.link(&t.title).on_hover_text(env.tr("action-edit")).clicked();
                ui.label(Dictionaries::name_of(&env.dicts.task_types, Some(&t.task_type_id)).unwrap_or_default());
                ui.label(t.deadline_offset_min.to_string());
                ui.label(t.reminder_offset_min.map(|m| m.to_string()).unwrap_or_default());
                ui.label(Dictionaries::name_of(&env.dicts.roles, t.responsible_role_id.as_deref()).unwrap_or_default());
                if open {
                    edit = Some(TaskTemplateForm {
                        id: Some(t.id.clone()),
                        task_type_id: Some(t.task_type_id.clone()),
                        title: t.title.clone(),
                        deadline_offset_min: t.deadline_offset_min.to_string(),
                        reminder_offset_min: t.reminder_offset_min.map(|m| m.to_string()).unwrap_or_default(),
                        responsible_role_id: t.responsible_role_id.clone(),
                    });
                }
                ui.end_row();
            }
        });
        if self.template.is_none() && ui.button(env.tr("action-new-template")).clicked() {
            edit = Some(TaskTemplateForm { deadline_offset_min: "60".into(), ..Default::default() });
        }
        if let Some(form) = edit {
            self.template = Some(form);
            self.template_errors.clear();
            self.template_error = None;
            self.template_saving = false;
        }
        let Some(form) = &mut self.template else { return };
        let mut cancel = false;
        // Over the screen, like the other editors: the list is at the end of
        // a long page.
        egui::Modal::new(egui::Id::unique("template-editor")).show(ui.ctx(), |ui| {
            ui.set_width(460.0);
            ui.heading(env.tr(if form.id.is_some() { "settings-edit-template" } else { "settings-new-template" }));
            egui::Grid::new("template-form").num_columns(2).spacing([10.0, 6.0]).show(ui, |ui| {
                let errors = &self.template_errors;
                field_ui(ui, env, "field-title", &mut form.title, "title", errors);
                choice_ui(
                    ui,
                    env,
                    "field-task-type",
                    &mut form.task_type_id,
                    &env.dicts.task_types,
                    "task_type",
                    errors,
                );
                field_ui(ui, env, "field-deadline-offset", &mut form.deadline_offset_min, "deadline_offset", errors);
                field_ui(ui, env, "field-reminder-offset", &mut form.reminder_offset_min, "reminder_offset", errors);
                choice_ui(ui, env, "field-role", &mut form.responsible_role_id, &env.dicts.roles, "", errors);
            });
            if let Some(error) = &self.template_error {
                error_text_ui(ui, &error.text(env.i18n));
            }
            ui.horizontal(|ui| {
                if ui.add_enabled(!self.template_saving, egui::Button::new(env.tr("action-save-template"))).clicked() {
                    match form.validate() {
                        Ok(record) => {
                            self.template_errors.clear();
                            self.template_error = None;
                            self.template_saving = true;
                            env.services.command(Command::SaveTaskTemplate(record));
                        }
                        Err(errors) => self.template_errors = errors,
                    }
                }
                cancel = ui.button(env.tr("action-cancel")).clicked();
            });
        });
        if cancel {
            self.template = None;
        }
    }
}

/// A device picker; true when the choice changed.
fn device_ui(ui: &mut egui::Ui, env: &Env<'_>, key: &str, value: &mut Option<String>, devices: &[String]) -> bool {
    let mut changed = false;
    let label = ui.label(env.tr(key));
    let default = env.tr("setting-device-default");
    egui::ComboBox::from_id_salt(key)
        .selected_text(value.clone().unwrap_or_else(|| default.clone()))
        .width(300.0)
        .show_ui(ui, |ui| {
            changed |= ui.selectable_value(value, None, default).changed();
            for d in devices {
                changed |= ui.selectable_value(value, Some(d.clone()), d).changed();
            }
        })
        .response
        .labelled_by(label.id);
    ui.end_row();
    changed
}

/// The media timeout's field: 0 (never) or a number of seconds the phone
/// takes (below the shortest it jumps to 0 or to the shortest, by the
/// direction it moved), so what is saved always starts the phone.
fn media_timeout_ui(ui: &mut egui::Ui, secs: &mut u64) -> egui::Response {
    use crate::softphone::config::{MEDIA_TIMEOUT_MAX_SECS, MEDIA_TIMEOUT_MIN_SECS};
    let before = *secs;
    let response = ui.add(egui::DragValue::new(secs).range(0..=MEDIA_TIMEOUT_MAX_SECS).suffix(" s"));
    if (1..MEDIA_TIMEOUT_MIN_SECS).contains(secs) {
        *secs = if before == 0 { MEDIA_TIMEOUT_MIN_SECS } else { 0 };
    }
    response
}

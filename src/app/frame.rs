//! Drawing the window, one frame from top to bottom: the status bar, the
//! phone panel, the navigation, the screen, then the editor, the caller
//! cards, help, sync conflicts and notices above it. What the services and
//! the phone said is applied first (`events.rs`); what the operator asked
//! for is collected as [`Action`]s and applied once at the end (`actions.rs`).

use std::time::{Duration, Instant};

use super::actions::{Action, allowed, apply_settings_change};
use super::services::Command;
use super::{ClinicApp, Env, Screen, caller_card, calls, forms, help, widgets};
use crate::crm::now_millis;

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

impl ClinicApp {
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
        self.handle_phone_events(&ctx);
        let Some(services) = &self.services else { return };

        let mut env = env!(self, services, &mut actions);

        let mut status = self.my_status;
        let sync = self.sync_status.as_ref();
        egui::Panel::top("status").show(ui, |ui| {
            widgets::status_bar_ui(ui, &mut env, self.status.as_ref().map(|(m, _)| m), &mut status, sync);
        });
        if status != self.my_status {
            self.my_status = status;
            self.my_status_pending = Some(status);
            if let Some(user) = &self.user {
                services.command(Command::SetOperatorStatus { user_id: user.id.clone(), status });
            }
            self.phone.follow_status(status, self.settings.when_unavailable);
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
            caller_card::caller_cards_ui(&ctx, &mut env, &mut self.phone, &self.settings);
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

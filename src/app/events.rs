//! The window's side of the service threads and the softphone: starting the
//! services on the first frame, applying what they report (every event on
//! their one channel, drained within a time budget and never dropped), the
//! notifier's news, the softphone's events, numbers handed over by other
//! programs, and stopping the services on exit. Nothing here draws.

use std::time::{Duration, Instant};

use super::actions::Action;
use super::services::{self, Command, Event, NotifyEvent, Query, Services};
use super::{ClinicApp, Editor, Message, calls, forms, handover};
use crate::crm::*;

/// A frame's time for applying the services' events: what is left waits for the next frame.
pub(super) const EVENT_BUDGET: Duration = Duration::from_millis(8);

/// How long a handed-over number waits for the phone to register before it is called anyway.
const DIAL_WAIT: Duration = Duration::from_secs(15);

impl ClinicApp {
    /// Starts the services on the first frame, when the egui context to
    /// wake is known.
    pub(super) fn ensure_services(&mut self, ctx: &egui::Context) {
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
    pub(super) fn handle_events(&mut self) {
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
                        let stored = me.status.unwrap_or(OperatorStatus::Free);
                        match self.my_status_pending {
                            // Read before the operator's own choice was saved: keep the choice.
                            Some(picked) if picked != stored => {}
                            _ => {
                                self.my_status_pending = None;
                                if stored != self.my_status {
                                    // Set before this start, or at another desk: the phone follows it
                                    // as it follows a choice made here (a break means no ringing).
                                    self.my_status = stored;
                                    self.phone.follow_status(self.my_status, self.settings.when_unavailable);
                                }
                            }
                        }
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

    pub(super) fn handle_notify_events(&mut self, actions: &mut Vec<Action>) {
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

    /// What the softphone reported: a call ringing while the window is hidden
    /// is announced on the desktop, the call tracker follows every event,
    /// and the open form learns whether its call goes on and is kept as a draft.
    pub(super) fn handle_phone_events(&mut self, ctx: &egui::Context) {
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
        self.phone.autosave_draft(ctx, self.editor.as_ref(), services);
    }

    /// What other programs handed over: the window comes to the front, and a
    /// number is called through the phone once it is ready (registered, or
    /// not after [`DIAL_WAIT`]); without a phone the operator is told why.
    pub(super) fn handed_over(&mut self, ctx: &egui::Context, actions: &mut Vec<Action>) {
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
    pub(super) fn refresh(&mut self) {
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

    /// Stops the service threads (on exit).
    pub fn shutdown(&mut self) {
        // The socket goes first: a link clicked now starts a new window.
        self.handover = None;
        if let Some(services) = self.services.take() {
            services.shutdown();
        }
    }
}

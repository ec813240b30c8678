//! Task deadline notifications on the desktop.
//!
//! A thread watches the open tasks of this workstation's user and, when the
//! toggle "Show task deadline notifications" is on, raises a desktop
//! notification (notify-rust, freedesktop notifications over D-Bus) at each
//! task's reminder time and at its deadline — once each: what was given is
//! kept in the replica's local `notified` table, so neither a restart nor a
//! sync repeats it. On start, overdue tasks get one summary instead of one
//! notification each. Where the notification server offers actions, "Open",
//! "Snooze 10 min" and "Done" work from the notification. When no server
//! answers, the window shows the reminder and says why.

mod due;

pub use due::{DueNotice, NoticeKind, due_notices, mark_notified, overdue_count, overdue_for_summary};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::crm::now_millis;
use crate::store::Replica;

/// How long "Snooze" puts a reminder off.
pub const SNOOZE: Duration = Duration::from_secs(10 * 60);

/// How often the watcher looks at the tasks at most (it also wakes when told
/// the data changed).
const TICK: Duration = Duration::from_secs(1);

/// What the notifier tells the window.
#[derive(Clone, Debug, PartialEq)]
pub enum NotifyEvent {
    /// No notification server answered: show this reminder in the window.
    ShowInWindow { notice: DueNotice, why: String },
    /// The summary of overdue tasks could not go to the desktop either.
    SummaryInWindow { overdue: usize, why: String },
    /// The operator clicked the notification (or "Open").
    OpenTask { task_id: String },
    /// "Done" was chosen on the notification; the task is closed.
    TaskDone { task_id: String },
}

/// Texts of the notifications, in the operator's language (made by the
/// window from the translations).
#[derive(Clone, Debug)]
pub struct Texts {
    pub reminder: String,
    pub deadline: String,
    /// "{count}" is replaced by the number of overdue tasks.
    pub summary: String,
    pub open: String,
    pub snooze: String,
    pub done: String,
}

/// The running notifier.
pub struct Notifier {
    enabled: Arc<AtomicBool>,
    wake: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notifier {
    /// Starts watching the tasks of `user_id` in the replica at `path`.
    pub fn spawn(
        path: PathBuf,
        user_id: String,
        enabled: bool,
        texts: Texts,
        events: impl Fn(NotifyEvent) + Send + Sync + 'static,
    ) -> Notifier {
        let enabled = Arc::new(AtomicBool::new(enabled));
        let (wake_tx, wake_rx) = bounded(1);
        let flag = enabled.clone();
        let thread = std::thread::Builder::new()
            .name("clinicdesk-notify".into())
            .spawn(move || watch(path, user_id, flag, texts, Arc::new(events), wake_rx))
            .map_err(|e| tracing::error!("cannot start the notification thread: {e}"))
            .ok();
        Notifier { enabled, wake: wake_tx, thread }
    }

    /// Follows the workstation toggle.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
        self.poke();
    }

    /// Tasks changed: look again now.
    pub fn poke(&self) {
        let _ = self.wake.try_send(());
    }

    /// A desktop notification of an incoming call, for when the window is
    /// hidden (shown from a thread of its own: D-Bus may take a while).
    pub fn announce_call(&self, summary: String, body: String) {
        let spawned = std::thread::Builder::new().name("clinicdesk-announce".into()).spawn(move || {
            if let Err(e) = desktop::show_call(&summary, &body) {
                tracing::info!("no desktop notification of the call: {e}");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot announce the call: {e}");
        }
    }

    pub fn stop(mut self) {
        drop(self.wake);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

type Events = Arc<dyn Fn(NotifyEvent) + Send + Sync>;

fn watch(path: PathBuf, user_id: String, enabled: Arc<AtomicBool>, texts: Texts, events: Events, wake: Receiver<()>) {
    let mut replica = match Replica::open(&path) {
        Ok(r) => r,
        Err(e) => return tracing::error!("notifications stopped: {e}"),
    };
    let mut summary_done = false;
    loop {
        if enabled.load(Ordering::Relaxed) {
            if !summary_done {
                summary_done = true;
                summary(&mut replica, &user_id, &texts, &events);
            }
            if let Err(e) = notify_due(&mut replica, &user_id, &texts, &events) {
                tracing::warn!("deadline notifications: {e}");
            }
        }
        match wake.recv_timeout(TICK) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One notification for everything already overdue at start.
fn summary(replica: &mut Replica, user_id: &str, texts: &Texts, events: &Events) {
    let now = now_millis();
    // Deadlines that passed while the window was closed are covered by the
    // summary, not given one by one.
    let count = overdue_for_summary(replica.conn(), user_id, now)
        .and_then(|covered| mark_notified(replica, &covered, "summary"))
        .and_then(|()| overdue_count(replica.conn(), user_id, now));
    let overdue = match count {
        Ok(n) => n,
        Err(e) => return tracing::warn!("overdue summary: {e}"),
    };
    if overdue == 0 {
        return;
    }
    let body = texts.summary.replace("{count}", &overdue.to_string());
    if let Err(why) = desktop::show_summary(&body) {
        events(NotifyEvent::SummaryInWindow { overdue, why });
    }
}

fn notify_due(replica: &mut Replica, user_id: &str, texts: &Texts, events: &Events) -> crate::store::Result<()> {
    let now = now_millis();
    let due = due_notices(replica.conn(), user_id, now)?;
    for notice in due {
        // Recorded before it is shown: at most once, even if we crash now.
        match desktop::available() {
            Ok(actions) => {
                mark_notified(replica, std::slice::from_ref(&notice), "desktop")?;
                if let Err(why) = desktop::show(&notice, texts, actions, &path_of(replica), events.clone()) {
                    events(NotifyEvent::ShowInWindow { notice, why });
                }
            }
            Err(why) => {
                mark_notified(replica, std::slice::from_ref(&notice), "window")?;
                events(NotifyEvent::ShowInWindow { notice, why });
            }
        }
    }
    Ok(())
}

fn path_of(replica: &Replica) -> PathBuf {
    replica.path().to_owned()
}

/// Snoozes a task's reminder (from the notification or the window).
pub fn snooze(replica: &mut Replica, task_id: &str) -> crate::store::Result<()> {
    let until = now_millis() + SNOOZE.as_millis() as i64;
    let tx = replica.bulk_transaction()?;
    tx.execute(
        "INSERT INTO snoozes (task_id, until) VALUES (?1, ?2) ON CONFLICT (task_id) DO UPDATE SET until = excluded.until",
        rusqlite::params![task_id, until],
    )?;
    tx.commit()?;
    Ok(())
}

/// Marks a task done (from the notification's "Done").
pub fn complete(replica: &mut Replica, task_id: &str) -> crate::store::Result<()> {
    replica.write(|w| {
        // Notices are only of the user's own tasks: its responsible clicked.
        let responsible: Option<String> = rusqlite::OptionalExtension::optional(w.tx().query_row(
            "SELECT responsible_id FROM tasks WHERE id = ?",
            [task_id],
            |r| r.get::<_, Option<String>>(0),
        ))
        .map_err(crate::store::StoreError::from)?
        .flatten();
        w.act_as(responsible.as_deref())?;
        let now = w.now();
        w.update_changed(
            "tasks",
            task_id,
            &[("status", crate::store::text("done")), ("completed_at", crate::store::int(now))],
        )
    })
}

mod desktop {
    //! The freedesktop notification server, through notify-rust.

    use std::path::{Path, PathBuf};

    use notify_rust::{Notification, Timeout};

    use super::{DueNotice, Events, NoticeKind, NotifyEvent, Texts};

    const APP: &str = "ClinicDesk";

    /// Whether a server answers, and whether it offers actions.
    pub fn available() -> Result<bool, String> {
        match notify_rust::get_capabilities() {
            Ok(caps) => Ok(caps.iter().any(|c| c == "actions")),
            Err(e) => Err(e.to_string()),
        }
    }

    pub fn show_call(summary: &str, body: &str) -> Result<(), String> {
        Notification::new()
            .appname(APP)
            .summary(summary)
            .body(body)
            .hint(notify_rust::Hint::Urgency(notify_rust::Urgency::Critical))
            .timeout(Timeout::Milliseconds(30_000))
            .show()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn show_summary(body: &str) -> Result<(), String> {
        Notification::new()
            .appname(APP)
            .summary(body)
            .timeout(Timeout::Default)
            .show()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn show(
        notice: &DueNotice,
        texts: &Texts,
        actions: bool,
        replica: &Path,
        events: Events,
    ) -> Result<(), String> {
        let heading = match notice.kind {
            NoticeKind::Reminder | NoticeKind::Snooze => &texts.reminder,
            NoticeKind::Deadline => &texts.deadline,
        };
        let mut n = Notification::new();
        n.appname(APP).summary(&format!("{heading}: {}", notice.title)).body(&notice.detail()).timeout(Timeout::Never);
        if actions {
            n.action("default", &texts.open)
                .action("open", &texts.open)
                .action("snooze", &texts.snooze)
                .action("done", &texts.done);
        }
        let handle = n.show().map_err(|e| e.to_string())?;
        if actions {
            let task_id = notice.task_id.clone();
            let replica: PathBuf = replica.to_owned();
            // Waiting for a click blocks: one short-lived thread per notice.
            let spawned = std::thread::Builder::new().name("clinicdesk-notice".into()).spawn(move || {
                handle.wait_for_action(|action| act(action, &task_id, &replica, &events));
            });
            if let Err(e) = spawned {
                tracing::warn!("cannot wait for the notification's actions: {e}");
            }
        }
        Ok(())
    }

    fn act(action: &str, task_id: &str, replica: &Path, events: &Events) {
        let with_replica =
            |f: &dyn Fn(&mut crate::store::Replica) -> crate::store::Result<()>| match crate::store::Replica::open(
                replica,
            ) {
                Ok(mut r) => {
                    if let Err(e) = f(&mut r) {
                        tracing::warn!("notification action {action}: {e}");
                    }
                }
                Err(e) => tracing::warn!("notification action {action}: {e}"),
            };
        match action {
            "default" | "open" => events(NotifyEvent::OpenTask { task_id: task_id.to_owned() }),
            "snooze" => with_replica(&|r| super::snooze(r, task_id)),
            "done" => {
                with_replica(&|r| super::complete(r, task_id));
                events(NotifyEvent::TaskDone { task_id: task_id.to_owned() });
            }
            _ => {}
        }
    }
}

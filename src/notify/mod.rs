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
//!
//! The notifier only reads the replica (a read-only connection of its own):
//! what it writes — notices given, a snooze, "Done" — it asks of the
//! replica's one writer as a [`NotifyWrite`] (the window's writer thread in
//! `services`, which checks "Done" against the user's rights like any save).

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
}

/// A write the notifier needs, done by the replica's writer.
#[derive(Clone, Debug, PartialEq)]
pub enum NotifyWrite {
    /// Record these notices as given (`via`: desktop, window or summary).
    /// Asked before they are shown and answered once committed: at most once,
    /// even after a crash.
    MarkNotified { notices: Vec<DueNotice>, via: &'static str },
    /// "Snooze" on a notification: the reminder comes again in [`SNOOZE`].
    Snooze { task_id: String },
    /// "Done" on a notification: the task is closed (see [`complete`]), if
    /// the user's rights allow it.
    Complete { task_id: String },
}

/// Where the notifier's writes go; answers once the write is done (or sent,
/// for what nobody waits for), or why it could not be.
pub type Writes = Arc<dyn Fn(NotifyWrite) -> Result<(), String> + Send + Sync>;

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
    /// Starts watching the tasks of `user_id` in the replica at `path`;
    /// what it writes goes to `writes`.
    pub fn spawn(
        path: PathBuf,
        user_id: String,
        enabled: bool,
        texts: Texts,
        events: impl Fn(NotifyEvent) + Send + Sync + 'static,
        writes: Writes,
    ) -> Notifier {
        let enabled = Arc::new(AtomicBool::new(enabled));
        let (wake_tx, wake_rx) = bounded(1);
        let flag = enabled.clone();
        let thread = std::thread::Builder::new()
            .name("clinicdesk-notify".into())
            .spawn(move || watch(path, user_id, flag, texts, Arc::new(events), writes, wake_rx))
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

/// Where the notifier tells the window what it has to say.
pub type Events = Arc<dyn Fn(NotifyEvent) + Send + Sync>;

fn watch(
    path: PathBuf,
    user_id: String,
    enabled: Arc<AtomicBool>,
    texts: Texts,
    events: Events,
    writes: Writes,
    wake: Receiver<()>,
) {
    let replica = match Replica::open_read_only(&path) {
        Ok(r) => r,
        Err(e) => return tracing::error!("notifications stopped: {e}"),
    };
    let mut summary_done = false;
    loop {
        if enabled.load(Ordering::Relaxed) {
            if !summary_done {
                summary_done = true;
                summary(&replica, &user_id, &texts, &events, &writes);
            }
            if let Err(e) = notify_due(&replica, &user_id, &texts, &events, &writes) {
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
fn summary(replica: &Replica, user_id: &str, texts: &Texts, events: &Events, writes: &Writes) {
    let now = now_millis();
    // Deadlines that passed while the window was closed are covered by the
    // summary, not given one by one.
    let count = overdue_for_summary(replica.conn(), user_id, now)
        .map_err(|e| e.to_string())
        .and_then(|notices| writes(NotifyWrite::MarkNotified { notices, via: "summary" }))
        .and_then(|()| overdue_count(replica.conn(), user_id, now).map_err(|e| e.to_string()));
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

fn notify_due(replica: &Replica, user_id: &str, texts: &Texts, events: &Events, writes: &Writes) -> Result<(), String> {
    let now = now_millis();
    let due = due_notices(replica.conn(), user_id, now).map_err(|e| e.to_string())?;
    for notice in due {
        // Recorded before it is shown: at most once, even if we crash now.
        match desktop::available() {
            Ok(actions) => {
                writes(NotifyWrite::MarkNotified { notices: vec![notice.clone()], via: "desktop" })?;
                if let Err(why) = desktop::show(&notice, texts, actions, events.clone(), writes.clone()) {
                    events(NotifyEvent::ShowInWindow { notice, why });
                }
            }
            Err(why) => {
                writes(NotifyWrite::MarkNotified { notices: vec![notice.clone()], via: "window" })?;
                events(NotifyEvent::ShowInWindow { notice, why });
            }
        }
    }
    Ok(())
}

/// What a notification's action does: "Open" tells the window, "Snooze"
/// and "Done" are writes, asked of the writer.
pub fn act(action: &str, task_id: &str, events: &Events, writes: &Writes) {
    let write = match action {
        "default" | "open" => return events(NotifyEvent::OpenTask { task_id: task_id.to_owned() }),
        "snooze" => NotifyWrite::Snooze { task_id: task_id.to_owned() },
        "done" => NotifyWrite::Complete { task_id: task_id.to_owned() },
        _ => return,
    };
    if let Err(e) = writes(write) {
        tracing::warn!("notification action {action}: {e}");
    }
}

/// Snoozes a task's reminder (from the notification or the window): the
/// writer's part of [`NotifyWrite::Snooze`].
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

/// Marks a task done (from the notification's "Done"): the writer's part of
/// [`NotifyWrite::Complete`], after its rights check.
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

    use notify_rust::{Notification, Timeout};

    use super::{DueNotice, Events, NoticeKind, Texts, Writes};

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
        events: Events,
        writes: Writes,
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
            // Waiting for a click blocks: one short-lived thread per notice.
            let spawned = std::thread::Builder::new().name("clinicdesk-notice".into()).spawn(move || {
                handle.wait_for_action(|action| super::act(action, &task_id, &events, &writes));
            });
            if let Err(e) = spawned {
                tracing::warn!("cannot wait for the notification's actions: {e}");
            }
        }
        Ok(())
    }
}

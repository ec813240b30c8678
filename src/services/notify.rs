//! The deadline notifier of the signed-in user, wired to the services: what
//! it tells the window arrives as [`Event::Notify`] on the window's one
//! channel, and what it writes (notices given, "Snooze", "Done") goes to the
//! writer thread as a [`Command`], where "Done" meets the rights check of
//! any task save.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::Sender;

use super::{Command, Event, EventSink};
use crate::notify::{Notifier, NotifyWrite, Texts, Writes};

pub(super) fn start(
    path: PathBuf,
    user_id: String,
    enabled: bool,
    texts: Texts,
    events: EventSink,
    commands: Sender<Command>,
) -> Notifier {
    Notifier::spawn(path, user_id, enabled, texts, move |e| events.send(Event::Notify(e)), through_writer(commands))
}

/// The notifier's writes, as commands to the writer thread. Marking notices
/// given waits for the commit (they are shown only after it); the actions
/// of a notification do not wait: the writer answers the window.
pub(super) fn through_writer(commands: Sender<Command>) -> Writes {
    let stopped = || "the writer has stopped".to_owned();
    Arc::new(move |write| match write {
        NotifyWrite::MarkNotified { notices, via } => {
            let (done, answer) = crossbeam_channel::bounded(1);
            commands.send(Command::MarkNotified { notices, via, done }).map_err(|_| stopped())?;
            answer.recv().map_err(|_| stopped())?
        }
        NotifyWrite::Snooze { task_id } => commands.send(Command::SnoozeTask { task_id }).map_err(|_| stopped()),
        NotifyWrite::Complete { task_id } => commands.send(Command::CompleteTask { task_id }).map_err(|_| stopped()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::Services;
    use super::super::tests::next_event;
    use super::*;
    use crate::crm::*;
    use crate::notify::{DueNotice, Events, NoticeKind};
    use crate::store::{Replica, int, text};

    /// A replica with the user "me" and an open task of theirs.
    fn replica_with_a_task(path: &std::path::Path) -> (Replica, String) {
        let mut replica = Replica::open(path).unwrap();
        let task = replica
            .write(|w| {
                w.insert("roles", "role", &[("code", text("operator")), ("name", text("Op"))])?;
                w.insert(
                    "users",
                    "me",
                    &[("login", text("me")), ("full_name", text("Me")), ("role_id", text("role"))],
                )?;
                w.insert("task_types", "tt", &[("code", text("call_back")), ("name", text("Call back"))])?;
                let id = new_id();
                w.insert(
                    "tasks",
                    &id,
                    &[
                        ("task_type_id", text("tt")),
                        ("title", text("Позвонить")),
                        ("responsible_id", text("me")),
                        ("deadline_at", int(now_millis() - 1000)),
                        ("created_at", int(0)),
                    ],
                )?;
                Ok(id)
            })
            .unwrap();
        (replica, task)
    }

    /// "Done" on a notification is a write of the writer thread: refused
    /// without the right to work on tasks, like a task saved done in its
    /// editor; allowed, it closes the task with its outbox entry.
    #[test]
    fn done_on_a_notification_is_written_by_the_writer_with_the_rights_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let (replica, task) = replica_with_a_task(&path);
        let queued = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM outbox WHERE table_name = 'tasks' AND row_id = ?", [&task], |r| {
                r.get(0)
            })
            .unwrap()
        };
        let status = |conn: &rusqlite::Connection| -> String {
            conn.query_row("SELECT status FROM tasks WHERE id = ?", [&task], |r| r.get(0)).unwrap()
        };
        let before = queued(replica.conn());
        let services = Services::start(replica, dir.path().join("settings.toml"), egui::Context::default());
        let writes = through_writer(services.commands.clone());
        let events: Events = Arc::new(|_| {});

        services.command(Command::SetRights(Rights::default()));
        crate::notify::act("done", &task, &events, &writes);
        match next_event(&services) {
            Event::TaskDone { task_id, result: Err(error) } => {
                assert_eq!(task_id, task);
                assert_eq!(error.key, "err-no-right-to-save");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(status(&conn), "open", "refused: the task stays open");
        assert_eq!(queued(&conn), before, "and nothing is queued for sync");

        services.command(Command::SetRights(RoleCode::Operator.default_rights()));
        crate::notify::act("done", &task, &events, &writes);
        assert!(matches!(next_event(&services), Event::TaskDone { result: Ok(()), .. }));
        // Notices given are recorded by the writer too, before they are shown.
        let notice = DueNotice {
            task_id: task.clone(),
            kind: NoticeKind::Deadline,
            due_at: 1,
            title: "Позвонить".into(),
            deadline_at: 1,
            person: None,
        };
        writes(NotifyWrite::MarkNotified { notices: vec![notice], via: "desktop" }).unwrap();
        services.shutdown();
        assert_eq!(status(&conn), "done");
        assert_eq!(queued(&conn), before + 1, "closed with its outbox entry");
        let given: i64 =
            conn.query_row("SELECT count(*) FROM notified WHERE task_id = ?", [&task], |r| r.get(0)).unwrap();
        assert_eq!(given, 1);
        assert!(writes(NotifyWrite::Snooze { task_id: task.clone() }).is_err(), "the writer has stopped");
    }
}

//! Which notifications are due, and the record of those given.

use rusqlite::Connection;

use crate::crm::Millis;
use crate::store::{Replica, Result};

/// Why a task is brought up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeKind {
    Reminder,
    Deadline,
    Snooze,
}

impl NoticeKind {
    fn code(self) -> &'static str {
        match self {
            NoticeKind::Reminder => "reminder",
            NoticeKind::Deadline => "deadline",
            NoticeKind::Snooze => "snooze",
        }
    }
}

/// One notification to give.
#[derive(Clone, Debug, PartialEq)]
pub struct DueNotice {
    pub task_id: String,
    pub kind: NoticeKind,
    /// The moment it is for (reminder time, deadline, end of snooze).
    pub due_at: Millis,
    pub title: String,
    pub deadline_at: Millis,
    pub person: Option<String>,
}

impl DueNotice {
    /// The notification's body: deadline and person.
    pub fn detail(&self) -> String {
        let deadline = crate::crm::format_local_datetime(self.deadline_at);
        match &self.person {
            Some(person) => format!("{deadline} · {person}"),
            None => deadline,
        }
    }
}

const OPEN_MINE: &str = "t.responsible_id = ?1 AND t.status IN ('open', 'in_progress') AND t.deleted_at IS NULL";

/// Notifications due at `now` for the tasks of `user_id`, not given yet.
pub fn due_notices(conn: &Connection, user_id: &str, now: Millis) -> Result<Vec<DueNotice>> {
    let sql = format!(
        "SELECT t.id, 'reminder', t.remind_at, t.title, t.deadline_at, p.last_name || ' ' || p.first_name
         FROM tasks t LEFT JOIN people p ON p.id = t.person_id
         WHERE {OPEN_MINE} AND t.remind_at IS NOT NULL AND t.remind_at <= ?2 AND t.deadline_at > ?2
           AND NOT EXISTS (SELECT 1 FROM notified n WHERE n.task_id = t.id AND n.kind = 'reminder' AND n.due_at = t.remind_at)
         UNION ALL
         SELECT t.id, 'deadline', t.deadline_at, t.title, t.deadline_at, p.last_name || ' ' || p.first_name
         FROM tasks t LEFT JOIN people p ON p.id = t.person_id
         WHERE {OPEN_MINE} AND t.deadline_at <= ?2
           AND NOT EXISTS (SELECT 1 FROM notified n WHERE n.task_id = t.id AND n.kind = 'deadline' AND n.due_at = t.deadline_at)
         UNION ALL
         SELECT t.id, 'snooze', s.until, t.title, t.deadline_at, p.last_name || ' ' || p.first_name
         FROM snoozes s JOIN tasks t ON t.id = s.task_id LEFT JOIN people p ON p.id = t.person_id
         WHERE {OPEN_MINE} AND s.until <= ?2
           AND NOT EXISTS (SELECT 1 FROM notified n WHERE n.task_id = t.id AND n.kind = 'snooze' AND n.due_at = s.until)
         ORDER BY 3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![user_id, now], |r| {
        let kind = match r.get::<_, String>(1)?.as_str() {
            "reminder" => NoticeKind::Reminder,
            "snooze" => NoticeKind::Snooze,
            _ => NoticeKind::Deadline,
        };
        Ok(DueNotice {
            task_id: r.get(0)?,
            kind,
            due_at: r.get(2)?,
            title: r.get(3)?,
            deadline_at: r.get(4)?,
            person: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// At start: deadlines already passed and not yet given, covered by one
/// summary instead of a notification each.
pub fn overdue_for_summary(conn: &Connection, user_id: &str, now: Millis) -> Result<Vec<DueNotice>> {
    Ok(due_notices(conn, user_id, now)?.into_iter().filter(|n| n.kind == NoticeKind::Deadline).collect())
}

/// How many of the user's open tasks are past their deadline (the summary).
pub fn overdue_count(conn: &Connection, user_id: &str, now: Millis) -> Result<usize> {
    let sql = format!("SELECT count(*) FROM tasks t WHERE {OPEN_MINE} AND t.deadline_at <= ?2");
    let n: i64 = conn.prepare_cached(&sql)?.query_row(rusqlite::params![user_id, now], |r| r.get(0))?;
    Ok(n as usize)
}

/// Records notifications as given, in one transaction.
pub fn mark_notified(replica: &mut Replica, notices: &[DueNotice], via: &str) -> Result<()> {
    let tx = replica.bulk_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO notified (task_id, kind, due_at, via, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let now = crate::crm::now_millis();
        for n in notices {
            stmt.execute(rusqlite::params![n.task_id, n.kind.code(), n.due_at, via, now])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::*;

    fn task(r: &mut Replica, user: Option<&str>, deadline_at: Millis, remind_at: Option<Millis>) -> String {
        r.write(|w| {
            let type_id = new_id();
            w.insert(
                "task_types",
                &type_id,
                &[("code", crate::store::text(new_id())), ("name", crate::store::text("t"))],
            )?;
            let id = new_id();
            w.insert(
                "tasks",
                &id,
                &[
                    ("task_type_id", crate::store::text(type_id)),
                    ("title", crate::store::text("Позвонить")),
                    ("responsible_id", crate::store::opt_text(&user.map(str::to_owned))),
                    ("deadline_at", crate::store::int(deadline_at)),
                    ("remind_at", crate::store::opt_int(remind_at)),
                    ("created_at", crate::store::int(0)),
                ],
            )?;
            Ok(id)
        })
        .unwrap()
    }

    #[test]
    fn each_notice_once_and_only_for_my_tasks() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        r.write(|w| {
            w.insert("roles", "role", &[("code", crate::store::text("operator")), ("name", crate::store::text("Op"))])?;
            for u in ["me", "other"] {
                w.insert(
                    "users",
                    u,
                    &[
                        ("login", crate::store::text(u)),
                        ("full_name", crate::store::text(u)),
                        ("role_id", crate::store::text("role")),
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
        let now = 1_000_000;
        let mine = task(&mut r, Some("me"), now + 60_000, Some(now - 1000));
        task(&mut r, Some("other"), now - 1000, None);
        task(&mut r, None, now - 1000, None);
        let due = due_notices(r.conn(), "me", now).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!((due[0].task_id.as_str(), due[0].kind), (mine.as_str(), NoticeKind::Reminder));
        mark_notified(&mut r, &due, "desktop").unwrap();
        assert!(due_notices(r.conn(), "me", now).unwrap().is_empty(), "given once");
        let at_deadline = due_notices(r.conn(), "me", now + 61_000).unwrap();
        assert_eq!(at_deadline.len(), 1);
        assert_eq!(at_deadline[0].kind, NoticeKind::Deadline);
        mark_notified(&mut r, &at_deadline, "desktop").unwrap();
        // A moved deadline is a new one.
        r.write(|w| w.update_changed("tasks", &mine, &[("deadline_at", crate::store::int(now + 120_000))])).unwrap();
        assert_eq!(due_notices(r.conn(), "me", now + 121_000).unwrap().len(), 1);
    }
}

//! A task's history: what changed, when and by whom, as the replica's
//! triggers recorded it in `task_history` (local, never synced: see
//! `upgrades/0003_task_history.sql`). Local edits carry the user the writer
//! acted for; changes that arrived by sync carry no author.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::Result;
use crate::crm::{Millis, TaskStatus};

/// What one history entry changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskChangeKind {
    /// The task was created with this title.
    Created {
        title: String,
    },
    Status {
        old: Option<TaskStatus>,
        new: Option<TaskStatus>,
    },
    Deadline {
        old: Option<Millis>,
        new: Option<Millis>,
    },
    /// The responsible's name (`None`: the shared queue).
    Responsible {
        old: Option<String>,
        new: Option<String>,
    },
    Title {
        old: String,
        new: String,
    },
}

/// One entry of a task's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskChange {
    pub changed_at: Millis,
    /// Who made it: the user's name (their id when the user is unknown
    /// here); `None` when it came from another workstation by sync.
    pub author: Option<String>,
    pub kind: TaskChangeKind,
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Text(s) => s.parse().ok(),
        _ => None,
    }
}

/// The history of `task_id`, oldest first.
pub fn task_history(conn: &Connection, task_id: &str) -> Result<Vec<TaskChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.changed_at, coalesce(a.full_name, h.author_id), h.field, h.old_value, h.new_value,
                (SELECT full_name FROM users WHERE id = h.old_value), (SELECT full_name FROM users WHERE id = h.new_value)
         FROM task_history h LEFT JOIN users a ON a.id = h.author_id
         WHERE h.task_id = ? ORDER BY h.changed_at, h.id",
    )?;
    let rows = stmt.query_map([task_id], |r| {
        let field: String = r.get(2)?;
        let old: Value = r.get(3)?;
        let new: Value = r.get(4)?;
        let status = |v: &Value| as_text(v).and_then(|c| TaskStatus::from_code(&c));
        let kind = match field.as_str() {
            "status" => TaskChangeKind::Status { old: status(&old), new: status(&new) },
            "deadline_at" => TaskChangeKind::Deadline { old: as_int(&old), new: as_int(&new) },
            "responsible_id" => TaskChangeKind::Responsible {
                // A user this replica does not have is shown by id.
                old: r.get::<_, Option<String>>(5)?.or_else(|| as_text(&old)),
                new: r.get::<_, Option<String>>(6)?.or_else(|| as_text(&new)),
            },
            "title" => {
                TaskChangeKind::Title { old: as_text(&old).unwrap_or_default(), new: as_text(&new).unwrap_or_default() }
            }
            _ => TaskChangeKind::Created { title: as_text(&new).unwrap_or_default() },
        };
        Ok(TaskChange { changed_at: r.get(0)?, author: r.get(1)?, kind })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crm::*;
    use crate::store::{Replica, queries};

    /// A clinic with a task type and two users; returns (type, user a, user b).
    fn clinic(r: &mut Replica) -> (String, String, String, String) {
        crate::demo::generate(
            r,
            &crate::demo::DemoOptions { patients: 5, calls: 5, seed: 3, now: now_millis() },
            &mut |_| {},
        )
        .unwrap();
        let task_type: String = r.conn().query_row("SELECT id FROM task_types LIMIT 1", [], |x| x.get(0)).unwrap();
        let users: Vec<(String, String)> = r
            .conn()
            .prepare("SELECT id, full_name FROM users ORDER BY login LIMIT 2")
            .unwrap()
            .query_map([], |x| Ok((x.get(0)?, x.get(1)?)))
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
        (task_type, users[0].0.clone(), users[1].0.clone(), users[0].1.clone())
    }

    fn record(task_type: &str, responsible: &str) -> TaskRecord {
        TaskRecord {
            id: None,
            task_type_id: task_type.into(),
            title: "Перезвонить".into(),
            description: String::new(),
            responsible_id: Some(responsible.into()),
            deadline_at: 1_900_000_000_000,
            remind_at: None,
            template_id: None,
            status: TaskStatus::Open,
            person_id: None,
            inquiry_id: None,
            deal_id: None,
        }
    }

    #[test]
    fn local_edits_are_recorded_with_who_and_untracked_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let (task_type, a, b, a_name) = clinic(&mut r);
        let mut task = record(&task_type, &a);
        let id = r.save_task(&task, Some(&a)).unwrap();
        task.id = Some(id.clone());

        let history = task_history(r.conn(), &id).unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].kind, TaskChangeKind::Created { title: "Перезвонить".into() });
        assert_eq!(history[0].author.as_deref(), Some(a_name.as_str()));

        // Nothing tracked changed (only the description): no entry.
        task.description = "details".into();
        r.save_task(&task, Some(&b)).unwrap();
        assert_eq!(task_history(r.conn(), &id).unwrap().len(), 1);

        // Status, deadline and responsible in one save: one entry each.
        task.status = TaskStatus::Done;
        task.deadline_at += 3_600_000;
        task.responsible_id = None;
        r.save_task(&task, Some(&b)).unwrap();
        let history = task_history(r.conn(), &id).unwrap();
        assert_eq!(history.len(), 4, "{history:?}");
        let b_name: String =
            r.conn().query_row("SELECT full_name FROM users WHERE id = ?", [&b], |x| x.get(0)).unwrap();
        assert!(history[1..].iter().all(|h| h.author.as_deref() == Some(b_name.as_str())));
        assert!(history.contains(&TaskChange {
            changed_at: history[1].changed_at,
            author: Some(b_name.clone()),
            kind: TaskChangeKind::Status { old: Some(TaskStatus::Open), new: Some(TaskStatus::Done) },
        }));
        assert!(history.iter().any(|h| h.kind == TaskChangeKind::Responsible { old: Some(a_name.clone()), new: None }));
        assert!(
            history.iter().any(|h| matches!(h.kind, TaskChangeKind::Deadline { old: Some(1_900_000_000_000), .. }))
        );

        // The author is this transaction's only: nothing is left behind,
        // and the history itself is never queued for sync.
        let left: i64 = r.conn().query_row("SELECT count(*) FROM write_author", [], |x| x.get(0)).unwrap();
        assert_eq!(left, 0);
        let queued: i64 = r
            .conn()
            .query_row("SELECT count(*) FROM outbox WHERE table_name IN ('task_history', 'write_author')", [], |x| {
                x.get(0)
            })
            .unwrap();
        assert_eq!(queued, 0);
        assert!(queries::table_counts(r.conn()).is_ok());
    }

    #[test]
    fn a_change_applied_by_sync_is_recorded_without_an_author() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut r = Replica::open(&path).unwrap();
        let (task_type, a, _, _) = clinic(&mut r);
        let id = r.save_task(&record(&task_type, &a), Some(&a)).unwrap();
        // Uploaded and acknowledged: nothing pending for the row.
        r.conn().execute("DELETE FROM outbox", []).unwrap();
        drop(r);

        let mut local = crate::sync::local::Local::open(&path).unwrap();
        let specs = local.specs().to_vec();
        let table = specs.iter().position(|s| s.name == "tasks").unwrap();
        let spec = &specs[table];
        let mut values: Vec<Value> = local
            .conn()
            .query_row(&format!("SELECT {} FROM tasks WHERE id = ?", spec.column_list()), [&id], |row| {
                (0..spec.columns.len()).map(|i| row.get::<_, Value>(i)).collect()
            })
            .unwrap();
        let set = |values: &mut Vec<Value>, column: &str, v: Value| values[spec.index_of(column).unwrap()] = v;
        set(&mut values, "status", Value::Text("in_progress".into()));
        set(&mut values, "updated_at", Value::Integer(1_800_000_000_000));
        set(&mut values, "row_version", Value::Integer(2));
        let row = crate::sync::wire::RowState { table, id: id.clone(), values: Some(values.clone()) };
        local.apply_download(std::slice::from_ref(&row), crate::sync::wire::Cursor { xid: 10, seq: 1 }).unwrap();

        let history = task_history(local.conn(), &id).unwrap();
        assert_eq!(history.len(), 2, "{history:?}");
        assert_eq!(
            history[1],
            TaskChange {
                changed_at: 1_800_000_000_000,
                author: None,
                kind: TaskChangeKind::Status { old: Some(TaskStatus::Open), new: Some(TaskStatus::InProgress) },
            }
        );
        // The same row again (a repeated download): nothing tracked changed.
        local.apply_download(&[row], crate::sync::wire::Cursor { xid: 11, seq: 1 }).unwrap();
        assert_eq!(task_history(local.conn(), &id).unwrap().len(), 2);
    }
}

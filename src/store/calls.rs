//! What happens in the replica when a call ends: the call log entry, and the
//! missed-call rules — a call nobody answered becomes a missed-call inquiry
//! with a "call back" task, several missed calls from one number share one,
//! and an answered call or a call back to that number closes them. Also the
//! drafts the operator types during a call.

use rusqlite::OptionalExtension;

use super::{Replica, Result, int, opt_int, opt_text, text};
use crate::crm::*;

/// The global setting with the call-back deadline, in minutes.
pub const MISSED_CALL_DEADLINE_KEY: &str = "missed_call_deadline_min";
const DEFAULT_MISSED_CALL_DEADLINE_MIN: i64 = 15;

/// A finished call as the softphone saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedCall {
    /// The id the call log entry gets (chosen when the call started, so an
    /// inquiry typed during the call can refer to it); new when absent.
    pub id: Option<String>,
    pub direction: CallDirection,
    /// The other party, normalised (see `crm::caller_number`).
    pub peer: String,
    /// The clinic number dialled (incoming calls).
    pub did: Option<String>,
    /// The person the operator identified (or the only match of the number).
    pub person_id: Option<String>,
    pub operator_id: Option<String>,
    pub started_at: Millis,
    pub answered_at: Option<Millis>,
    pub ended_at: Millis,
    pub result: CallResult,
    pub sip_call_id: Option<String>,
}

/// What recording the call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedCall {
    pub call_id: String,
    /// The missed-call inquiry the call was added to or created.
    pub missed_inquiry_id: Option<String>,
    /// Its "call back" task, when one was created now.
    pub callback_task_id: Option<String>,
    /// Missed-call inquiries this call closed (answered, or called back).
    pub closed_inquiries: usize,
}

impl Replica {
    /// Records a finished call and applies the missed-call rules, all in one
    /// transaction.
    pub fn record_call(&mut self, call: &FinishedCall) -> Result<RecordedCall> {
        let deadline_min = self.missed_call_deadline_min()?;
        self.write(|w| {
            // The rules' tasks (a call-back created, or closed) are the operator's doing.
            w.act_as(call.operator_id.as_deref())?;
            let call_id = call.id.clone().unwrap_or_else(new_id);
            let person_id = match &call.person_id {
                Some(id) => Some(id.clone()),
                None => only_person_with(w.tx(), &call.peer)?,
            };
            w.insert(
                "calls",
                &call_id,
                &[
                    ("direction", text(call.direction.code())),
                    ("peer_e164", text(&call.peer)),
                    ("did_e164", opt_text(&call.did)),
                    ("person_id", opt_text(&person_id)),
                    ("operator_id", opt_text(&call.operator_id)),
                    ("started_at", int(call.started_at)),
                    ("answered_at", opt_int(call.answered_at)),
                    ("ended_at", int(call.ended_at.max(call.started_at))),
                    ("result", text(call.result.code())),
                    ("sip_call_id", opt_text(&call.sip_call_id)),
                ],
            )?;
            let mut recorded = RecordedCall { call_id: call_id.clone(), ..Default::default() };
            let open_missed: Vec<String> = w
                .tx()
                .prepare_cached(
                    "SELECT id FROM inquiries WHERE phone_e164 = ? AND source = 'missed_call' AND status <> 'closed'
                     AND deleted_at IS NULL ORDER BY created_at",
                )?
                .query_map([&call.peer], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            match (call.direction, call.result) {
                (CallDirection::In, CallResult::Missed) => {
                    if let Some(existing) = open_missed.first() {
                        // Merge: the new attempt joins the open inquiry.
                        w.update_changed("calls", &call_id, &[("inquiry_id", text(existing))])?;
                        recorded.missed_inquiry_id = Some(existing.clone());
                    } else {
                        let inquiry_id = new_id();
                        let channel = match &call.did {
                            Some(did) => super::card::tracking(w.tx(), did)?,
                            None => None,
                        };
                        w.insert(
                            "inquiries",
                            &inquiry_id,
                            &[
                                ("person_id", opt_text(&person_id)),
                                ("phone_e164", text(&call.peer)),
                                ("call_id", text(&call_id)),
                                ("channel_id", opt_text(&channel.as_ref().map(|t| t.channel_id.clone()))),
                                ("campaign_id", opt_text(&channel.and_then(|t| t.campaign_id))),
                                ("source", text(InquirySource::MissedCall.code())),
                                ("status", text(InquiryStatus::New.code())),
                                ("created_at", int(call.ended_at)),
                            ],
                        )?;
                        w.update_changed("calls", &call_id, &[("inquiry_id", text(&inquiry_id))])?;
                        let (type_id, type_name): (String, String) = w.tx().query_row(
                            "SELECT id, name FROM task_types WHERE code = 'call_back' AND deleted_at IS NULL",
                            [],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?;
                        let number =
                            Phone::parse(&call.peer, Country::Ru).map(|p| p.display()).unwrap_or(call.peer.clone());
                        let task_id = new_id();
                        w.insert(
                            "tasks",
                            &task_id,
                            &[
                                ("task_type_id", text(type_id)),
                                ("title", text(format!("{type_name} {number}"))),
                                ("deadline_at", int(call.ended_at + deadline_min * 60_000)),
                                ("status", text(TaskStatus::Open.code())),
                                ("person_id", opt_text(&person_id)),
                                ("inquiry_id", text(&inquiry_id)),
                                ("created_at", int(call.ended_at)),
                            ],
                        )?;
                        recorded.missed_inquiry_id = Some(inquiry_id);
                        recorded.callback_task_id = Some(task_id);
                    }
                }
                (_, CallResult::Answered) => {
                    // Talking to the number, either way, settles what was missed.
                    let when = call.answered_at.unwrap_or(call.ended_at);
                    for inquiry_id in &open_missed {
                        w.update_changed(
                            "inquiries",
                            inquiry_id,
                            &[
                                ("status", text(InquiryStatus::Closed.code())),
                                ("closed_at", int(when)),
                                ("first_response_at", int(when)),
                            ],
                        )?;
                        let tasks: Vec<String> = w
                            .tx()
                            .prepare_cached(
                                "SELECT id FROM tasks WHERE inquiry_id = ? AND status IN ('open', 'in_progress')
                                 AND deleted_at IS NULL",
                            )?
                            .query_map([inquiry_id], |r| r.get(0))?
                            .collect::<rusqlite::Result<_>>()?;
                        for task_id in tasks {
                            w.update_changed(
                                "tasks",
                                &task_id,
                                &[("status", text(TaskStatus::Done.code())), ("completed_at", int(when))],
                            )?;
                        }
                    }
                    recorded.closed_inquiries = open_missed.len();
                }
                _ => {}
            }
            Ok(recorded)
        })
    }

    fn missed_call_deadline_min(&self) -> Result<i64> {
        let value = super::queries::global_setting(self.conn(), MISSED_CALL_DEADLINE_KEY)?;
        Ok(value
            .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
            .filter(|m| *m > 0)
            .unwrap_or(DEFAULT_MISSED_CALL_DEADLINE_MIN))
    }

    /// Keeps what the operator typed under `key` (replacing the last copy).
    pub fn save_draft(&mut self, key: &str, form: &serde_json::Value) -> Result<()> {
        let tx = self.bulk_transaction()?;
        tx.execute(
            "INSERT INTO drafts (key, form, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET form = excluded.form, updated_at = excluded.updated_at",
            rusqlite::params![key, form.to_string(), now_millis()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets a draft once its form is saved or discarded.
    pub fn delete_draft(&mut self, key: &str) -> Result<()> {
        let tx = self.bulk_transaction()?;
        tx.execute("DELETE FROM drafts WHERE key = ?", [key])?;
        tx.commit()?;
        Ok(())
    }
}

/// Every draft left, oldest first (a restart offers them again).
pub fn drafts(conn: &rusqlite::Connection) -> Result<Vec<(String, serde_json::Value)>> {
    let mut stmt = conn.prepare_cached("SELECT key, form FROM drafts ORDER BY updated_at")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (key, form) = row?;
        // A draft that is not JSON any more is skipped, not fatal.
        if let Ok(value) = serde_json::from_str(&form) {
            out.push((key, value));
        }
    }
    Ok(out)
}

/// The person a number belongs to when exactly one person has it.
fn only_person_with(conn: &rusqlite::Connection, number: &str) -> Result<Option<String>> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT ph.person_id FROM person_phones ph JOIN people p ON p.id = ph.person_id
             WHERE ph.phone_e164 = ? AND ph.deleted_at IS NULL AND p.deleted_at IS NULL LIMIT 2",
        )?
        .query_map([number], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(if ids.len() == 1 { ids.into_iter().next() } else { None })
}

/// Open missed-call inquiries with the age of their oldest call-back task.
#[derive(Clone, Debug, PartialEq)]
pub struct MissedCallRow {
    pub inquiry_id: String,
    pub phone: String,
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    pub first_missed_at: Millis,
    pub attempts: i64,
    pub deadline_at: Option<Millis>,
}

/// How late a call back is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ageing {
    OnTime,
    /// Past half of the time to the deadline.
    Late,
    Overdue,
}

impl MissedCallRow {
    pub fn ageing(&self, now: Millis) -> Ageing {
        match self.deadline_at {
            Some(deadline) if now > deadline => Ageing::Overdue,
            Some(deadline) if now > self.first_missed_at + (deadline - self.first_missed_at) / 2 => Ageing::Late,
            _ => Ageing::OnTime,
        }
    }
}

/// The missed-calls board: open missed-call inquiries, oldest first.
pub fn missed_calls(conn: &rusqlite::Connection, limit: usize) -> Result<Vec<MissedCallRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.id, i.phone_e164, i.person_id, p.last_name || ' ' || p.first_name, i.created_at,
                (SELECT count(*) FROM calls c WHERE c.inquiry_id = i.id),
                (SELECT min(t.deadline_at) FROM tasks t WHERE t.inquiry_id = i.id AND t.status IN ('open', 'in_progress'))
         FROM inquiries i LEFT JOIN people p ON p.id = i.person_id
         WHERE i.source = 'missed_call' AND i.status <> 'closed' AND i.deleted_at IS NULL
         ORDER BY i.created_at LIMIT ?",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(MissedCallRow {
            inquiry_id: r.get(0)?,
            phone: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            person_id: r.get(2)?,
            person_name: r.get(3)?,
            first_missed_at: r.get(4)?,
            attempts: r.get(5)?,
            deadline_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Whether a visit was booked for `person_id` since `since` (the call's
/// answer): the inquiry's result is then suggested as "booked".
pub fn visit_booked_since(conn: &rusqlite::Connection, person_id: &str, since: Millis) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM visits WHERE person_id = ? AND updated_at >= ? AND status IN ('booked', 'confirmed')
             AND deleted_at IS NULL)",
        )?
        .query_row(rusqlite::params![person_id, since], |r| r.get(0))?)
}

/// The draft stored under `key`, if any.
pub fn draft(conn: &rusqlite::Connection, key: &str) -> Result<Option<serde_json::Value>> {
    let form: Option<String> =
        conn.prepare_cached("SELECT form FROM drafts WHERE key = ?")?.query_row([key], |r| r.get(0)).optional()?;
    Ok(form.and_then(|f| serde_json::from_str(&f).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, DemoOptions};

    fn clinic() -> (tempfile::TempDir, Replica) {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        demo::generate(&mut r, &DemoOptions { patients: 30, calls: 40, seed: 3, now: now_millis() }, &mut |_| {})
            .unwrap();
        (dir, r)
    }

    fn missed(peer: &str, at: Millis) -> FinishedCall {
        FinishedCall {
            id: None,
            direction: CallDirection::In,
            peer: peer.into(),
            did: Some("+74951234010".into()),
            person_id: None,
            operator_id: None,
            started_at: at,
            answered_at: None,
            ended_at: at + 20_000,
            result: CallResult::Missed,
            sip_call_id: None,
        }
    }

    fn count(r: &Replica, sql: &str) -> i64 {
        r.conn().query_row(sql, [], |x| x.get(0)).unwrap()
    }

    #[test]
    fn missed_calls_merge_and_a_call_back_closes_them() {
        let (_d, mut r) = clinic();
        let now = now_millis();
        let first = r.record_call(&missed("+79990001111", now)).unwrap();
        let inquiry = first.missed_inquiry_id.clone().unwrap();
        assert!(first.callback_task_id.is_some());
        let second = r.record_call(&missed("+79990001111", now + 60_000)).unwrap();
        assert_eq!(second.missed_inquiry_id.as_deref(), Some(inquiry.as_str()), "merged into one inquiry");
        assert_eq!(second.callback_task_id, None, "no second task");
        let board = missed_calls(r.conn(), 100).unwrap();
        let row = board.iter().find(|m| m.inquiry_id == inquiry).unwrap();
        assert_eq!(row.attempts, 2);
        // The deadline is the global setting (15 min) after the first miss.
        assert_eq!(row.deadline_at, Some(now + 20_000 + 15 * 60_000));
        assert_eq!(row.ageing(now + 60_000), Ageing::OnTime);
        assert_eq!(row.ageing(now + 12 * 60_000), Ageing::Late);
        assert_eq!(row.ageing(now + 16 * 60_000), Ageing::Overdue);
        let channel: Option<String> =
            r.conn().query_row("SELECT channel_id FROM inquiries WHERE id = ?", [&inquiry], |x| x.get(0)).unwrap();
        assert!(channel.is_some(), "attributed by the dialled number");

        let call_back = FinishedCall {
            direction: CallDirection::Out,
            answered_at: Some(now + 120_000),
            result: CallResult::Answered,
            did: None,
            ..missed("+79990001111", now + 110_000)
        };
        assert_eq!(r.record_call(&call_back).unwrap().closed_inquiries, 1);
        assert!(missed_calls(r.conn(), 100).unwrap().iter().all(|m| m.inquiry_id != inquiry));
        let open_tasks = count(
            &r,
            &format!("SELECT count(*) FROM tasks WHERE inquiry_id = '{inquiry}' AND status IN ('open', 'in_progress')"),
        );
        assert_eq!(open_tasks, 0);
    }

    #[test]
    fn a_known_callers_missed_call_is_theirs() {
        let (_d, mut r) = clinic();
        let (person, phone): (String, String) = r
            .conn()
            .query_row(
                "SELECT person_id, phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) = 1 LIMIT 1",
                [],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )
            .unwrap();
        let recorded = r.record_call(&missed(&phone, now_millis())).unwrap();
        let owner: Option<String> =
            r.conn().query_row("SELECT person_id FROM calls WHERE id = ?", [&recorded.call_id], |x| x.get(0)).unwrap();
        assert_eq!(owner, Some(person));
    }

    #[test]
    fn drafts_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        {
            let mut r = Replica::open(&path).unwrap();
            r.save_draft("inquiry:abc", &serde_json::json!({"note": "wants a dentist"})).unwrap();
            r.save_draft("inquiry:abc", &serde_json::json!({"note": "wants a dentist on Friday"})).unwrap();
        }
        let mut r = Replica::open(&path).unwrap();
        assert_eq!(
            drafts(r.conn()).unwrap(),
            vec![("inquiry:abc".to_string(), serde_json::json!({"note": "wants a dentist on Friday"}))]
        );
        r.delete_draft("inquiry:abc").unwrap();
        assert!(draft(r.conn(), "inquiry:abc").unwrap().is_none());
    }
}

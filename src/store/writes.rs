//! Saving what the operator entered. Each function is one transaction
//! (through [`Replica::write`]) that also queues the change for sync.

use rusqlite::{OptionalExtension, types::Value};

use super::search::{index_person, names_key, phones_key};
use super::{Replica, Result, StoreError, Writer, int, opt_int, opt_text, text};
use crate::crm::*;

impl Writer<'_> {
    /// Updates only the columns whose value differs from the stored one, so
    /// sync merges edits of different fields instead of overwriting them.
    pub fn update_changed(&mut self, table: &'static str, id: &str, columns: &[(&str, Value)]) -> Result<()> {
        let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
        let sql = format!("SELECT {} FROM {table} WHERE id = ? AND deleted_at IS NULL", names.join(", "));
        let current: Option<Vec<Value>> =
            self.tx().query_row(&sql, [id], |r| (0..names.len()).map(|i| r.get::<_, Value>(i)).collect()).optional()?;
        let Some(current) = current else {
            return Err(StoreError::NotFound { what: format!("{table} {id}") });
        };
        let changed: Vec<(&str, Value)> = columns
            .iter()
            .zip(current)
            .filter(|((_, new), old)| new != old)
            .map(|((n, v), _)| (*n, v.clone()))
            .collect();
        self.update(table, id, &changed)
    }
}

fn opt_ref(v: &Option<String>) -> Value {
    opt_text(v)
}

impl Replica {
    /// Creates or updates a person with their phones; returns the id.
    pub fn save_person(&mut self, person: &PersonRecord) -> Result<String> {
        self.write(|w| {
            let columns = [
                ("last_name", text(&person.last_name)),
                ("first_name", text(&person.first_name)),
                ("middle_name", text(&person.middle_name)),
                ("birth_date", opt_text(&person.birth_date.map(|d| d.to_string()))),
                ("note", text(&person.note)),
            ];
            let id = match &person.id {
                Some(id) => {
                    w.update_changed("people", id, &columns)?;
                    id.clone()
                }
                None => {
                    let id = new_id();
                    let mut all = columns.to_vec();
                    all.push(("created_at", int(w.now())));
                    w.insert("people", &id, &all)?;
                    id
                }
            };
            // Phones: tombstone the removed, insert the new.
            let stored: Vec<(String, String)> = w
                .tx()
                .prepare("SELECT id, phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL")?
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (phone_id, e164) in &stored {
                if !person.phones.iter().any(|p| p.as_str() == e164) {
                    w.delete("person_phones", phone_id)?;
                }
            }
            for phone in &person.phones {
                if !stored.iter().any(|(_, e164)| e164 == phone.as_str()) {
                    let revived: Option<String> = w
                        .tx()
                        .query_row(
                            "SELECT id FROM person_phones WHERE person_id = ? AND phone_e164 = ?",
                            [&id, phone.as_str()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    match revived {
                        // The unique (person, phone) row exists as a tombstone.
                        Some(phone_id) => {
                            w.tx().execute(
                                "UPDATE person_phones SET deleted_at = NULL, row_version = row_version + 1, updated_at = ? WHERE id = ?",
                                rusqlite::params![w.now(), phone_id],
                            )?;
                            w.queue_raw("person_phones", &phone_id, "update", &[("deleted_at", Value::Null)])?;
                        }
                        None => w.insert(
                            "person_phones",
                            &new_id(),
                            &[("person_id", text(&id)), ("phone_e164", text(phone.as_str())), ("kind", text("mobile"))],
                        )?,
                    }
                }
            }
            let rowid: i64 = w.tx().query_row("SELECT rowid FROM people WHERE id = ?", [&id], |r| r.get(0))?;
            index_person(
                w.tx(),
                rowid,
                &names_key(&person.last_name, &person.first_name, &person.middle_name),
                &phones_key(&person.phones),
            )?;
            Ok(id)
        })
    }

    /// Creates or updates an inquiry on behalf of `operator_id`. The draft
    /// it was typed in (if any) goes in the same transaction, so a crash can
    /// neither lose the inquiry nor offer it again to be saved twice.
    pub fn save_inquiry(
        &mut self,
        inquiry: &InquiryRecord,
        operator_id: Option<&str>,
        draft_key: Option<&str>,
    ) -> Result<String> {
        self.write(|w| {
            if let Some(key) = draft_key {
                w.tx().execute("DELETE FROM drafts WHERE key = ?", [key])?;
            }
            let now = w.now();
            let closed_at = (inquiry.status == InquiryStatus::Closed).then_some(now);
            let columns = [
                ("person_id", opt_ref(&inquiry.person_id)),
                ("phone_e164", opt_text(&inquiry.phone.as_ref().map(|p| p.as_str().to_owned()))),
                ("call_id", opt_ref(&inquiry.call_id)),
                ("channel_id", opt_ref(&inquiry.channel_id)),
                ("reason_id", opt_ref(&inquiry.reason_id)),
                ("source", text(inquiry.source.code())),
                ("status", text(inquiry.status.code())),
                ("result", opt_text(&inquiry.result.map(|r| r.code().to_owned()))),
                ("note", text(&inquiry.note)),
            ];
            match &inquiry.id {
                Some(id) => {
                    let was_closed: bool =
                        w.tx().query_row("SELECT closed_at IS NOT NULL FROM inquiries WHERE id = ?", [id], |r| {
                            r.get(0)
                        })?;
                    let mut all = columns.to_vec();
                    if !was_closed || closed_at.is_none() {
                        all.push(("closed_at", opt_int(closed_at)));
                    }
                    w.update_changed("inquiries", id, &all)?;
                    Ok(id.clone())
                }
                None => {
                    let id = new_id();
                    let mut all = columns.to_vec();
                    all.extend([
                        ("operator_id", opt_text(&operator_id.map(str::to_owned))),
                        ("created_at", int(now)),
                        ("first_response_at", int(now)),
                        ("closed_at", opt_int(closed_at)),
                    ]);
                    w.insert("inquiries", &id, &all)?;
                    if let Some(call_id) = &inquiry.call_id {
                        w.update_changed("calls", call_id, &[("inquiry_id", text(&id))])?;
                    }
                    Ok(id)
                }
            }
        })
    }

    /// Creates or updates a task on behalf of `user_id` (its author when
    /// new; in its History either way).
    pub fn save_task(&mut self, task: &TaskRecord, user_id: Option<&str>) -> Result<String> {
        self.write(|w| {
            w.act_as(user_id)?;
            let now = w.now();
            let completed_at = (!task.status.is_open()).then_some(now);
            let columns = [
                ("task_type_id", text(&task.task_type_id)),
                ("title", text(&task.title)),
                ("description", text(&task.description)),
                ("responsible_id", opt_ref(&task.responsible_id)),
                ("deadline_at", int(task.deadline_at)),
                ("remind_at", opt_int(task.remind_at)),
                ("template_id", opt_ref(&task.template_id)),
                ("status", text(task.status.code())),
                ("person_id", opt_ref(&task.person_id)),
                ("inquiry_id", opt_ref(&task.inquiry_id)),
                ("deal_id", opt_ref(&task.deal_id)),
            ];
            match &task.id {
                Some(id) => {
                    let mut all = columns.to_vec();
                    let was_open: bool = w.tx().query_row(
                        "SELECT status IN ('open', 'in_progress') FROM tasks WHERE id = ?",
                        [id],
                        |r| r.get(0),
                    )?;
                    if was_open || completed_at.is_none() {
                        all.push(("completed_at", opt_int(completed_at)));
                    }
                    w.update_changed("tasks", id, &all)?;
                    Ok(id.clone())
                }
                None => {
                    let id = new_id();
                    let mut all = columns.to_vec();
                    all.extend([
                        ("created_by", opt_text(&user_id.map(str::to_owned))),
                        ("created_at", int(now)),
                        ("completed_at", opt_int(completed_at)),
                    ]);
                    w.insert("tasks", &id, &all)?;
                    Ok(id)
                }
            }
        })
    }

    /// Creates or updates a task template (the setup admin's dictionary).
    pub fn save_task_template(&mut self, t: &TaskTemplateRecord) -> Result<String> {
        self.write(|w| {
            let columns = [
                ("task_type_id", text(&t.task_type_id)),
                ("title", text(&t.title)),
                ("deadline_offset_min", int(t.deadline_offset_min)),
                ("reminder_offset_min", opt_int(t.reminder_offset_min)),
                ("responsible_role_id", opt_ref(&t.responsible_role_id)),
            ];
            match &t.id {
                Some(id) => {
                    w.update_changed("task_templates", id, &columns)?;
                    Ok(id.clone())
                }
                None => {
                    let id = new_id();
                    w.insert("task_templates", &id, &columns)?;
                    Ok(id)
                }
            }
        })
    }

    /// Creates or updates a deal; its status follows its stage's outcome.
    pub fn save_deal(&mut self, deal: &DealRecord) -> Result<String> {
        self.write(|w| {
            let outcome: DealStatus = w
                .tx()
                .query_row(
                    "SELECT outcome FROM deal_stages WHERE id = ? AND deal_type_id = ? AND deleted_at IS NULL",
                    [&deal.stage_id, &deal.deal_type_id],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound { what: format!("deal stage {}", deal.stage_id) })?;
            let closed_at = (outcome != DealStatus::Open).then_some(w.now());
            let columns = [
                ("deal_type_id", text(&deal.deal_type_id)),
                ("stage_id", text(&deal.stage_id)),
                ("person_id", opt_ref(&deal.person_id)),
                ("inquiry_id", opt_ref(&deal.inquiry_id)),
                ("title", text(&deal.title)),
                ("amount_cents", int(deal.amount_cents)),
                ("status", text(outcome.code())),
                ("responsible_id", opt_ref(&deal.responsible_id)),
                ("closed_at", opt_int(closed_at)),
            ];
            match &deal.id {
                Some(id) => {
                    w.update_changed("deals", id, &columns)?;
                    Ok(id.clone())
                }
                None => {
                    let id = new_id();
                    let mut all = columns.to_vec();
                    all.push(("created_at", int(w.now())));
                    w.insert("deals", &id, &all)?;
                    Ok(id)
                }
            }
        })
    }

    /// Sets what the operator `user_id` is doing now (one row per user).
    pub fn set_operator_status(&mut self, user_id: &str, status: OperatorStatus) -> Result<()> {
        self.write(|w| {
            let existing: Option<String> = w
                .tx()
                .query_row("SELECT id FROM operator_statuses WHERE user_id = ?", [user_id], |r| r.get(0))
                .optional()?;
            let columns = [("status", text(status.code())), ("since", int(w.now())), ("deleted_at", Value::Null)];
            match existing {
                Some(id) => w.update_changed("operator_statuses", &id, &columns[..2]),
                None => {
                    let mut all = columns[..2].to_vec();
                    all.push(("user_id", text(user_id)));
                    w.insert("operator_statuses", &new_id(), &all)
                }
            }
        })
    }

    /// Grants (Some(true)) or takes (Some(false)) a right from one user on
    /// top of their role, or returns them to the role's default (None).
    pub fn set_user_right(&mut self, user_id: &str, right: Right, granted: Option<bool>) -> Result<()> {
        self.write(|w| {
            let existing: Option<(String, bool)> = w
                .tx()
                .query_row(
                    "SELECT id, deleted_at IS NULL FROM user_rights WHERE user_id = ? AND right_code = ?",
                    [user_id, right.code()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match (existing, granted) {
                (Some((id, true)), Some(g)) => w.update_changed("user_rights", &id, &[("granted", int(i64::from(g)))]),
                (Some((id, true)), None) => w.delete("user_rights", &id),
                (Some((id, false)), Some(g)) => {
                    // Revive the tombstone: the (user, right) pair is unique.
                    w.tx().execute(
                        "UPDATE user_rights SET deleted_at = NULL, granted = ?, row_version = row_version + 1, updated_at = ?
                         WHERE id = ?",
                        rusqlite::params![i64::from(g), w.now(), id],
                    )?;
                    w.queue_raw("user_rights", &id, "update", &[("granted", int(i64::from(g))), ("deleted_at", Value::Null)])
                }
                (None, Some(g)) => w.insert(
                    "user_rights",
                    &new_id(),
                    &[("user_id", text(user_id)), ("right_code", text(right.code())), ("granted", int(i64::from(g)))],
                ),
                (_, None) => Ok(()),
            }
        })
    }

    /// Creates or updates a visit; a change of its status moves its deal
    /// as the automatic transition rules of the deal's type say, in the same
    /// transaction.
    pub fn save_visit(&mut self, visit: &VisitRecord) -> Result<String> {
        self.write(|w| {
            let previous_status: Option<VisitStatus> = match &visit.id {
                Some(id) => {
                    w.tx().query_row("SELECT status FROM visits WHERE id = ?", [id], |r| r.get(0)).optional()?
                }
                None => None,
            };
            let columns = [
                ("person_id", text(&visit.person_id)),
                ("doctor_id", text(&visit.doctor_id)),
                ("deal_id", opt_ref(&visit.deal_id)),
                ("service", text(&visit.service)),
                ("starts_at", int(visit.starts_at)),
                ("duration_min", int(visit.duration_min)),
                ("status", text(visit.status.code())),
                ("cancel_reason", opt_ref(&visit.cancel_reason)),
            ];
            let id = match &visit.id {
                Some(id) => {
                    w.update_changed("visits", id, &columns)?;
                    id.clone()
                }
                None => {
                    let id = new_id();
                    w.insert("visits", &id, &columns)?;
                    id
                }
            };
            if previous_status != Some(visit.status)
                && let Some(deal_id) = &visit.deal_id
            {
                apply_transition_rules(w, deal_id, visit.status)?;
            }
            Ok(id)
        })
    }
}

/// Moves a deal to the stage its type's active rule names for a visit
/// status, if there is one and the deal is not there yet.
fn apply_transition_rules(w: &mut Writer<'_>, deal_id: &str, status: VisitStatus) -> Result<()> {
    let target: Option<(String, DealStatus)> = w
        .tx()
        .query_row(
            "SELECT r.target_stage_id, s.outcome FROM deals d
             JOIN auto_transition_rules r ON r.deal_type_id = d.deal_type_id
             JOIN deal_stages s ON s.id = r.target_stage_id
             WHERE d.id = ? AND r.visit_status = ? AND r.active = 1 AND r.deleted_at IS NULL AND d.deleted_at IS NULL
             ORDER BY r.rowid LIMIT 1",
            rusqlite::params![deal_id, status],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((stage_id, outcome)) = target {
        let closed_at = (outcome != DealStatus::Open).then_some(w.now());
        w.update_changed(
            "deals",
            deal_id,
            &[("stage_id", text(stage_id)), ("status", text(outcome.code())), ("closed_at", opt_int(closed_at))],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{queries, search};

    fn replica() -> (tempfile::TempDir, Replica) {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        (dir, replica)
    }

    fn person(last: &str, first: &str, phones: &[&str]) -> PersonRecord {
        PersonForm {
            last_name: last.into(),
            first_name: first.into(),
            phones: phones.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        }
        .validate(Country::Ru)
        .unwrap()
    }

    fn outbox_len(r: &Replica) -> i64 {
        r.conn().query_row("SELECT count(*) FROM outbox", [], |x| x.get(0)).unwrap()
    }

    #[test]
    fn person_is_searchable_by_name_typo_and_number() {
        let (_d, mut r) = replica();
        let id = r.save_person(&person("Иванова", "Мария", &["8 916 123-45-67"])).unwrap();
        r.save_person(&person("Петренко", "Тарас", &["067 765 43 21"])).unwrap();
        for q in ["Иванова", "ivanova", "Ivanova Maria", "Иваноав", "91612", "8916123", "123-45"] {
            let hits = search::search_people(r.conn(), q, 10).unwrap();
            assert_eq!(hits.first().map(|h| h.id.as_str()), Some(id.as_str()), "query {q:?} → {hits:?}");
        }
        assert!(search::search_people(r.conn(), "Сидоров", 10).unwrap().is_empty());
        let hits = search::search_people(r.conn(), "petrenko", 10).unwrap();
        assert_eq!(hits[0].phones, vec!["+380 67 765 43 21"]);
    }

    #[test]
    fn edits_queue_only_changed_fields_and_reindex() {
        let (_d, mut r) = replica();
        let mut p = person("Сидоров", "Иван", &["+79990001122"]);
        let id = r.save_person(&p).unwrap();
        let before = outbox_len(&r);
        p.id = Some(id.clone());
        p.first_name = "Пётр".into();
        p.phones = vec![Phone::parse("+79990003344", Country::Ru).unwrap()];
        r.save_person(&p).unwrap();
        let payloads: Vec<String> = r
            .conn()
            .prepare("SELECT payload FROM outbox WHERE mutation_id > ? ORDER BY mutation_id")
            .unwrap()
            .query_map([before], |x| x.get(0))
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
        assert_eq!(payloads[0], r#"{"first_name":"Пётр"}"#);
        assert_eq!(payloads.len(), 3, "{payloads:?}"); // name, old phone tombstoned, new phone
        assert!(search::search_people(r.conn(), "9990001122", 5).unwrap().is_empty());
        assert_eq!(search::search_people(r.conn(), "petr", 5).unwrap()[0].id, id);
        let version: i64 =
            r.conn().query_row("SELECT row_version FROM people WHERE id = ?", [&id], |x| x.get(0)).unwrap();
        assert_eq!(version, 2);
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let (_d, mut r) = replica();
        let before = outbox_len(&r);
        // A task of a type that does not exist violates a foreign key.
        let task = TaskRecord {
            id: None,
            task_type_id: "no-such-type".into(),
            title: "x".into(),
            description: String::new(),
            responsible_id: None,
            deadline_at: 0,
            remind_at: None,
            template_id: None,
            status: TaskStatus::Open,
            person_id: None,
            inquiry_id: None,
            deal_id: None,
        };
        assert!(r.save_task(&task, None).is_err());
        assert_eq!(outbox_len(&r), before);
        let tasks: i64 = r.conn().query_row("SELECT count(*) FROM tasks", [], |x| x.get(0)).unwrap();
        assert_eq!(tasks, 0);
    }

    #[test]
    fn inquiry_lifecycle_and_lists() {
        let (_d, mut r) = replica();
        let pid = r.save_person(&person("Коваль", "Оксана", &["+380501112233"])).unwrap();
        r.write(|w| {
            w.insert("inquiry_reasons", "reason-1", &[("name", text("Запись"))])?;
            Ok(())
        })
        .unwrap();
        let form =
            InquiryForm { person_id: Some(pid.clone()), reason_id: Some("reason-1".into()), ..Default::default() };
        let id = r.save_inquiry(&form.validate(Country::Ua).unwrap(), None, None).unwrap();
        assert_eq!(queries::count_inquiries(r.conn(), queries::InquiryFilter::Open).unwrap(), 1);
        let closed = InquiryForm {
            id: Some(id.clone()),
            status: Some(InquiryStatus::Closed),
            result: Some(InquiryResult::Booked),
            ..form
        };
        r.save_inquiry(&closed.validate(Country::Ua).unwrap(), None, None).unwrap();
        assert_eq!(queries::count_inquiries(r.conn(), queries::InquiryFilter::Open).unwrap(), 0);
        let page = queries::inquiries_page(r.conn(), queries::InquiryFilter::All, 0, 10).unwrap();
        assert_eq!(page[0].person_name.as_deref(), Some("Коваль Оксана"));
        assert_eq!(page[0].result, Some(InquiryResult::Booked));
        let history = queries::person_history(r.conn(), &pid).unwrap().unwrap();
        assert_eq!(history.inquiries.len(), 1);
        assert_eq!(history.phones[0].as_str(), "+380501112233");
    }

    #[test]
    fn a_visit_status_moves_its_deal_by_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let now = now_millis();
        crate::demo::generate(&mut r, &crate::demo::DemoOptions { patients: 20, calls: 30, seed: 9, now }, &mut |_| {})
            .unwrap();
        // A rule of the demo clinic: a visit that the patient arrived at.
        let (deal_type, target): (String, String) = r
            .conn()
            .query_row(
                "SELECT deal_type_id, target_stage_id FROM auto_transition_rules WHERE visit_status = 'arrived' LIMIT 1",
                [],
                |x| Ok((x.get(0)?, x.get(1)?)),
            )
            .unwrap();
        let first_stage: String = r
            .conn()
            .query_row(
                "SELECT id FROM deal_stages WHERE deal_type_id = ? ORDER BY position LIMIT 1",
                [&deal_type],
                |x| x.get(0),
            )
            .unwrap();
        let person: String = r.conn().query_row("SELECT id FROM people LIMIT 1", [], |x| x.get(0)).unwrap();
        let doctor: String = r
            .conn()
            .query_row(
                "SELECT u.id FROM users u JOIN roles ro ON ro.id = u.role_id WHERE ro.code = 'doctor' LIMIT 1",
                [],
                |x| x.get(0),
            )
            .unwrap();
        let deal = r
            .save_deal(&DealRecord {
                id: None,
                deal_type_id: deal_type.clone(),
                stage_id: first_stage.clone(),
                person_id: Some(person.clone()),
                inquiry_id: None,
                title: "Check-up".into(),
                amount_cents: 100,
                responsible_id: None,
            })
            .unwrap();
        let mut visit = VisitRecord {
            id: None,
            person_id: person,
            doctor_id: doctor,
            deal_id: Some(deal.clone()),
            service: "check-up".into(),
            starts_at: now,
            duration_min: 30,
            status: VisitStatus::Booked,
            cancel_reason: None,
        };
        visit.id = Some(r.save_visit(&visit).unwrap());
        visit.status = VisitStatus::Arrived;
        r.save_visit(&visit).unwrap();
        let stage: String =
            r.conn().query_row("SELECT stage_id FROM deals WHERE id = ?", [&deal], |x| x.get(0)).unwrap();
        assert_eq!(stage, target);
        let last_change: String = r
            .conn()
            .query_row(
                "SELECT payload FROM outbox WHERE table_name = 'deals' AND row_id = ? ORDER BY mutation_id DESC LIMIT 1",
                [&deal],
                |x| x.get(0),
            )
            .unwrap();
        assert!(last_change.contains(&target), "the move syncs like any change: {last_change}");
    }
}

//! Existing records read back into the forms that edit them.

use rusqlite::{Connection, OptionalExtension};

use super::Result;
use crate::crm::*;

pub fn person(conn: &Connection, id: &str) -> Result<Option<PersonForm>> {
    let form = conn
        .query_row(
            "SELECT last_name, first_name, middle_name, coalesce(birth_date, ''), note FROM people WHERE id = ? AND deleted_at IS NULL",
            [id],
            |r| {
                Ok(PersonForm {
                    id: Some(id.to_owned()),
                    last_name: r.get(0)?,
                    first_name: r.get(1)?,
                    middle_name: r.get(2)?,
                    birth_date: r.get(3)?,
                    phones: Vec::new(),
                    note: r.get(4)?,
                })
            },
        )
        .optional()?;
    let Some(mut form) = form else { return Ok(None) };
    form.phones = conn
        .prepare_cached(
            "SELECT phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL ORDER BY rowid",
        )?
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(form))
}

pub fn inquiry(conn: &Connection, id: &str) -> Result<Option<InquiryForm>> {
    Ok(conn
        .query_row(
            "SELECT person_id, coalesce(phone_e164, ''), call_id, channel_id, reason_id, source, status, result, note
             FROM inquiries WHERE id = ? AND deleted_at IS NULL",
            [id],
            |r| {
                Ok(InquiryForm {
                    id: Some(id.to_owned()),
                    person_id: r.get(0)?,
                    phone: r.get(1)?,
                    call_id: r.get(2)?,
                    channel_id: r.get(3)?,
                    reason_id: r.get(4)?,
                    source: r.get(5)?,
                    status: r.get(6)?,
                    result: r.get(7)?,
                    note: r.get(8)?,
                })
            },
        )
        .optional()?)
}

pub fn task(conn: &Connection, id: &str) -> Result<Option<TaskForm>> {
    Ok(conn
        .query_row(
            "SELECT task_type_id, title, description, responsible_id, deadline_at, status, person_id, inquiry_id, deal_id,
                    (deadline_at - remind_at) / 60000, template_id
             FROM tasks WHERE id = ? AND deleted_at IS NULL",
            [id],
            |r| {
                Ok(TaskForm {
                    id: Some(id.to_owned()),
                    task_type_id: r.get(0)?,
                    title: r.get(1)?,
                    description: r.get(2)?,
                    responsible_id: r.get(3)?,
                    deadline: format_local_datetime(r.get(4)?),
                    remind_before: r.get::<_, Option<i64>>(9)?.map(|m| m.to_string()).unwrap_or_default(),
                    template_id: r.get(10)?,
                    status: r.get(5)?,
                    person_id: r.get(6)?,
                    inquiry_id: r.get(7)?,
                    deal_id: r.get(8)?,
                })
            },
        )
        .optional()?)
}

pub fn deal(conn: &Connection, id: &str) -> Result<Option<DealForm>> {
    Ok(conn
        .query_row(
            "SELECT deal_type_id, stage_id, person_id, inquiry_id, title, amount_cents, responsible_id
             FROM deals WHERE id = ? AND deleted_at IS NULL",
            [id],
            |r| {
                Ok(DealForm {
                    id: Some(id.to_owned()),
                    deal_type_id: r.get(0)?,
                    stage_id: r.get(1)?,
                    person_id: r.get(2)?,
                    inquiry_id: r.get(3)?,
                    title: r.get(4)?,
                    amount: format_amount(r.get(5)?),
                    responsible_id: r.get(6)?,
                })
            },
        )
        .optional()?)
}

pub fn visit(conn: &Connection, id: &str) -> Result<Option<VisitForm>> {
    Ok(conn
        .query_row(
            "SELECT person_id, doctor_id, deal_id, service, starts_at, duration_min, status, coalesce(cancel_reason, '')
             FROM visits WHERE id = ? AND deleted_at IS NULL",
            [id],
            |r| {
                Ok(VisitForm {
                    id: Some(id.to_owned()),
                    person_id: r.get(0)?,
                    doctor_id: r.get(1)?,
                    deal_id: r.get(2)?,
                    service: r.get(3)?,
                    starts: format_local_datetime(r.get(4)?),
                    duration_min: r.get::<_, i64>(5)?.to_string(),
                    status: r.get(6)?,
                    cancel_reason: r.get(7)?,
                })
            },
        )
        .optional()?)
}

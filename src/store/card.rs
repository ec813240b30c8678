//! The caller card lookup: who is calling and what the clinic knows of them
//! (the card's types are in [`crate::crm::card`]), read from the local replica by an indexed phone lookup, so it is on screen
//! before the second ring and works with the server unreachable.

use rusqlite::{Connection, OptionalExtension};

use super::Result;
use crate::crm::card::*;
use crate::crm::*;

/// How many of each history the card carries.
const CARD_LIMIT: i64 = 5;

/// The card for a call from `number` (already normalised by
/// [`caller_number`](crate::crm::phone::caller_number)) to the clinic number `did`, at `now`.
pub fn caller_card(conn: &Connection, number: &str, did: Option<&str>, now: Millis) -> Result<CallerCard> {
    let mut card = CallerCard { number: number.to_owned(), people: Vec::new(), tracking: None };
    if let Some(did) = did {
        card.tracking = tracking(conn, did)?;
    }
    let matches: Vec<(String, String, Option<String>, String)> = conn
        .prepare_cached(
            "SELECT p.id, p.last_name || ' ' || p.first_name || CASE WHEN p.middle_name = '' THEN '' ELSE ' ' || p.middle_name END,
                    p.birth_date, ph.kind
             FROM person_phones ph JOIN people p ON p.id = ph.person_id
             WHERE ph.phone_e164 = ? AND ph.deleted_at IS NULL AND p.deleted_at IS NULL
             ORDER BY ph.kind = 'mobile' DESC, p.last_name, p.first_name",
        )?
        .query_map([number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, full_name, birth_date, kind) in matches {
        if card.people.iter().any(|p| p.id == id) {
            continue;
        }
        let mut person = CardPerson { id, full_name, birth_date, matched_phone_kind: kind, ..Default::default() };
        fill_history(conn, &mut person, now)?;
        card.people.push(person);
    }
    Ok(card)
}

/// The channel and campaign of a dialled clinic number.
pub fn tracking(conn: &Connection, did: &str) -> Result<Option<Tracking>> {
    Ok(conn
        .prepare_cached(
            "SELECT t.did_e164, c.id, c.name, k.id, k.name FROM tracking_numbers t
             JOIN ad_channels c ON c.id = t.channel_id LEFT JOIN campaigns k ON k.id = t.campaign_id
             WHERE t.did_e164 = ? AND t.deleted_at IS NULL",
        )?
        .query_row([did], |r| {
            Ok(Tracking {
                did: r.get(0)?,
                channel_id: r.get(1)?,
                channel: r.get(2)?,
                campaign_id: r.get(3)?,
                campaign: r.get(4)?,
            })
        })
        .optional()?)
}

fn fill_history(conn: &Connection, p: &mut CardPerson, now: Millis) -> Result<()> {
    let id = p.id.as_str();
    p.first_channel = conn
        .prepare_cached(
            "SELECT ch.name FROM inquiries i JOIN ad_channels ch ON ch.id = i.channel_id
             WHERE i.person_id = ? AND i.deleted_at IS NULL ORDER BY i.created_at LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    p.open_inquiries = conn
        .prepare_cached(
            "SELECT i.id, i.created_at, r.name, i.status, i.source FROM inquiries i
             LEFT JOIN inquiry_reasons r ON r.id = i.reason_id
             WHERE i.person_id = ? AND i.status <> 'closed' AND i.deleted_at IS NULL
             ORDER BY i.created_at DESC LIMIT ?",
        )?
        .query_map(rusqlite::params![id, CARD_LIMIT], |r| {
            Ok(CardInquiry {
                id: r.get(0)?,
                created_at: r.get(1)?,
                reason: r.get(2)?,
                status: r.get(3)?,
                source: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    p.open_deals = conn
        .prepare_cached(
            "SELECT d.id, d.title, dt.name, s.name, d.amount_cents FROM deals d
             JOIN deal_types dt ON dt.id = d.deal_type_id JOIN deal_stages s ON s.id = d.stage_id
             WHERE d.person_id = ? AND d.status = 'open' AND d.deleted_at IS NULL
             ORDER BY d.created_at DESC LIMIT ?",
        )?
        .query_map(rusqlite::params![id, CARD_LIMIT], |r| {
            Ok(CardDeal {
                id: r.get(0)?,
                title: r.get(1)?,
                deal_type: r.get(2)?,
                stage: r.get(3)?,
                amount_cents: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    p.open_tasks = conn
        .prepare_cached(
            "SELECT id, title, deadline_at, status FROM tasks
             WHERE person_id = ? AND status IN ('open', 'in_progress') AND deleted_at IS NULL
             ORDER BY deadline_at LIMIT ?",
        )?
        .query_map(rusqlite::params![id, CARD_LIMIT], |r| {
            Ok(CardTask { id: r.get(0)?, title: r.get(1)?, deadline_at: r.get(2)?, status: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let visit = |sql: &str| -> Result<Option<CardVisit>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(rusqlite::params![id, now], |r| {
                Ok(CardVisit {
                    id: r.get(0)?,
                    starts_at: r.get(1)?,
                    doctor: r.get(2)?,
                    service: r.get(3)?,
                    status: r.get(4)?,
                })
            })
            .optional()?)
    };
    p.next_visit = visit(
        "SELECT v.id, v.starts_at, u.full_name, v.service, v.status FROM visits v JOIN users u ON u.id = v.doctor_id
         WHERE v.person_id = ?1 AND v.starts_at >= ?2 AND v.status <> 'cancelled' AND v.deleted_at IS NULL
         ORDER BY v.starts_at LIMIT 1",
    )?;
    p.last_visit = visit(
        "SELECT v.id, v.starts_at, u.full_name, v.service, v.status FROM visits v JOIN users u ON u.id = v.doctor_id
         WHERE v.person_id = ?1 AND v.starts_at < ?2 AND v.deleted_at IS NULL
         ORDER BY v.starts_at DESC LIMIT 1",
    )?;
    p.last_calls = conn
        .prepare_cached(
            "SELECT c.started_at, c.direction, c.result, u.full_name FROM calls c LEFT JOIN users u ON u.id = c.operator_id
             WHERE c.person_id = ? AND c.deleted_at IS NULL ORDER BY c.started_at DESC LIMIT ?",
        )?
        .query_map(rusqlite::params![id, CARD_LIMIT], |r| {
            Ok(CardCall { started_at: r.get(0)?, direction: r.get(1)?, result: r.get(2)?, operator: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Replica;

    fn person(r: &mut Replica, last: &str, first: &str, phones: &[&str]) -> String {
        let form = PersonForm {
            last_name: last.into(),
            first_name: first.into(),
            phones: phones.iter().map(|p| p.to_string()).collect(),
            ..Default::default()
        };
        r.save_person(&form.validate(Country::Ru).unwrap()).unwrap()
    }

    #[test]
    fn national_and_international_forms_find_the_same_person() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let id = person(&mut r, "Орлова", "Вера", &["+79161234567"]);
        for raw in ["89161234567", "+7 (916) 123-45-67", "sip:89161234567@pbx.clinic", "9161234567"] {
            let number = caller_number(raw, Country::Ru);
            let card = caller_card(r.conn(), &number, None, now_millis()).unwrap();
            assert_eq!(card.people.len(), 1, "{raw}");
            assert_eq!(card.people[0].id, id);
            assert_eq!(card.people[0].matched_phone_kind, "mobile");
        }
    }

    #[test]
    fn a_shared_number_lists_everyone_and_an_unknown_one_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        person(&mut r, "Ткаченко", "Олена", &["+380671112233"]);
        person(&mut r, "Ткаченко", "Іван", &["+380671112233", "+380501234567"]);
        let card = caller_card(r.conn(), "+380671112233", None, now_millis()).unwrap();
        let names: Vec<&str> = card.people.iter().map(|p| p.full_name.as_str()).collect();
        assert_eq!(names, ["Ткаченко Іван", "Ткаченко Олена"]);
        let card = caller_card(r.conn(), "+380999999999", None, now_millis()).unwrap();
        assert!(card.is_new_caller());
        assert_eq!(caller_number("anonymous", Country::Ua), "anonymous");
    }
}

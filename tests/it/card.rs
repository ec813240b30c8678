//! The caller card and what follows a call, in the window: the test plays
//! the SIP user agent (it sends what the softphone would), the window, its
//! replica and its threads are the real ones.

use std::path::Path;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

use clinicdesk::crm::{Country, caller_number, now_millis};
use clinicdesk::sip::phone::{self, EndReason, PhoneCommand, PhoneEnd, PhoneEvent};
use clinicdesk::store::card::caller_card;

use super::gui::{app_with_phone, count, harness, has_label, has_text, settle, type_into};
use super::harness::demo_profile;

/// Rings the window from `from` (to the clinic number `did`), with the card
/// the user agent looks up.
pub(super) fn ring(end: &PhoneEnd, replica: &Path, call_id: &str, from: &str, did: Option<&str>) {
    let conn = rusqlite::Connection::open(replica).unwrap();
    let number = caller_number(from, Country::Ru);
    let card = caller_card(&conn, &number, did, now_millis()).unwrap();
    end.send(PhoneEvent::Incoming {
        call_id: call_id.into(),
        from: from.into(),
        display_name: None,
        did: did.map(str::to_owned),
        card: Some(Box::new(card)),
    });
}

pub(super) fn one(replica: &Path, sql: &str) -> String {
    let conn = rusqlite::Connection::open(replica).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A number only one person has, with their name.
pub(super) fn single_owner(replica: &Path) -> (String, String) {
    let conn = rusqlite::Connection::open(replica).unwrap();
    conn.query_row(
        "SELECT ph.phone_e164, p.last_name || ' ' || p.first_name || CASE WHEN p.middle_name = '' THEN '' ELSE ' ' || p.middle_name END
         FROM person_phones ph JOIN people p ON p.id = ph.person_id
         WHERE ph.phone_e164 IN (SELECT phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) = 1)
         AND EXISTS (SELECT 1 FROM calls c WHERE c.person_id = p.id)
         ORDER BY p.rowid LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn a_known_caller_pops_with_history_and_the_inquiry_follows_the_call() {
    let profile = demo_profile(200, 1500);
    let replica = profile.path().join("replica.sqlite");
    let (number, name) = single_owner(&replica);
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    h.run_steps(2);
    // The national form, as a PBX may send it.
    let national = format!("8{}", &number[2..]);
    ring(&end, &replica, "call-1", &format!("sip:{national}@pbx"), Some("+74951234010"));
    settle(&mut h, "the caller card", |h| has_label(h, &name) && has_text(h, "Last calls ("));
    assert!(has_text(&h, "Channel of the dialled number:"), "call tracking shown");
    // The card and the phone panel both offer it; either answers.
    let answers: Vec<_> = h.query_all_by_role_and_label(Role::Button, "Answer").collect();
    assert_eq!(answers.len(), 2, "Answer on the card and in the phone panel");
    answers[0].click();
    settle(&mut h, "the answer command", |_| {
        end.commands.try_recv().is_ok_and(|c| c == PhoneCommand::Answer { call_id: "call-1".into() })
    });
    end.send(PhoneEvent::Answered { call_id: "call-1".into() });
    settle(&mut h, "the inquiry form, pre-filled", |h| {
        h.state().editor().is_some() && has_text(h, &format!("Person: {name}"))
    });
    assert!(has_label(&h, "Save after the call ends."));
    choose_reason(&mut h);
    end.send(PhoneEvent::Ended { call_id: "call-1".into(), reason: EndReason::HungUp, duration_s: 42 });
    settle(&mut h, "the call recorded, the result suggested", |h| {
        !has_label(h, "Save after the call ends.") && h.query_all_by_value("Consulted").next().is_some()
    });
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());
    let (inquiry_call, call_inquiry) = {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        conn.query_row(
            "SELECT i.call_id, c.inquiry_id FROM inquiries i JOIN calls c ON c.id = i.call_id
             WHERE c.sip_call_id = 'call-1'",
            [],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .unwrap()
    };
    assert!(!inquiry_call.is_empty() && !call_inquiry.is_empty(), "the call and its inquiry point at each other");
    let channel = one(
        &replica,
        "SELECT ch.name FROM inquiries i JOIN calls c ON c.id = i.call_id JOIN ad_channels ch ON ch.id = i.channel_id
         WHERE c.sip_call_id = 'call-1'",
    );
    assert!(!channel.is_empty(), "attributed to the channel of the dialled number");
    assert_eq!(count(&replica, "SELECT count(*) FROM drafts"), 0, "the draft is gone once saved");
}

fn choose_reason(h: &mut egui_kittest::Harness<'_, clinicdesk::app::ClinicApp>) {
    super::gui::choose(h, "Reason", "Запись на приём");
}

#[test]
fn a_shared_number_lists_everyone_and_an_unknown_one_offers_a_new_caller() {
    let profile = demo_profile(300, 500);
    let replica = profile.path().join("replica.sqlite");
    let shared = one(&replica, "SELECT phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) >= 2 LIMIT 1");
    let names: Vec<String> = {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        conn.prepare("SELECT p.last_name || ' ' || p.first_name FROM person_phones ph JOIN people p ON p.id = ph.person_id WHERE ph.phone_e164 = ?")
            .unwrap()
            .query_map([&shared], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    h.run_steps(2);
    ring(&end, &replica, "family", &shared, None);
    settle(&mut h, "everyone with the number", |h| names.iter().all(|n| has_text(h, n)));
    assert!(has_text(&h, &format!("{} people share this number", names.len())));
    end.send(PhoneEvent::Ended { call_id: "family".into(), reason: EndReason::NotAnswered, duration_s: 0 });
    settle(&mut h, "the card closed", |h| !has_text(h, "people share this number"));

    ring(&end, &replica, "stranger", "+79000000001", None);
    settle(&mut h, "a new caller", |h| has_label(h, "New caller"));
    h.get_by_role_and_label(Role::Button, "New person").click();
    settle(&mut h, "the person form with the number", |h| {
        h.query_all_by_role(Role::TextInput).any(|n| n.value().as_deref() == Some("+79000000001"))
    });
}

#[test]
fn a_missed_call_becomes_an_inquiry_with_a_task_and_a_call_back_closes_them() {
    let profile = demo_profile(50, 100);
    let replica = profile.path().join("replica.sqlite");
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    h.run_steps(2);
    let open_missed = |r: &Path| {
        count(
            r,
            "SELECT count(*) FROM inquiries WHERE phone_e164 = '+79005550101' AND source = 'missed_call' AND status <> 'closed'",
        )
    };
    for attempt in ["m-1", "m-2"] {
        ring(&end, &replica, attempt, "+79005550101", Some("+74951234010"));
        settle(&mut h, "ringing", |h| has_label(h, "New caller"));
        end.send(PhoneEvent::Ended { call_id: attempt.into(), reason: EndReason::NotAnswered, duration_s: 0 });
        settle(&mut h, "recorded", |_| {
            count(&replica, &format!("SELECT count(*) FROM calls WHERE sip_call_id = '{attempt}'")) == 1
        });
    }
    assert_eq!(open_missed(&replica), 1, "two misses, one inquiry");
    let tasks = count(
        &replica,
        "SELECT count(*) FROM tasks t JOIN inquiries i ON i.id = t.inquiry_id WHERE i.phone_e164 = '+79005550101' AND t.status = 'open'",
    );
    assert_eq!(tasks, 1, "one call-back task");

    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num2);
    settle(&mut h, "the missed-calls board", |h| has_label(h, "+7 900 555-01-01"));
    h.get_all_by_role_and_label(Role::Button, "Call back").next().unwrap();
    let row_button = h.query_all_by_role_and_label(Role::Button, "Call back").count();
    assert!(row_button >= 1);

    // The operator calls back and the patient answers.
    end.send(PhoneEvent::Dialing { call_id: "cb".into(), to: "+79005550101".into(), card: None });
    end.send(PhoneEvent::Answered { call_id: "cb".into() });
    end.send(PhoneEvent::Ended { call_id: "cb".into(), reason: EndReason::HungUp, duration_s: 30 });
    settle(&mut h, "the call back recorded", |_| open_missed(&replica) == 0);
    let open_tasks = count(
        &replica,
        "SELECT count(*) FROM tasks t JOIN inquiries i ON i.id = t.inquiry_id WHERE i.phone_e164 = '+79005550101' AND t.status = 'open'",
    );
    assert_eq!(open_tasks, 0);
    settle(&mut h, "the board cleared", |h| !has_label(h, "+7 900 555-01-01"));
}

#[test]
fn what_is_typed_during_a_call_survives_a_restart() {
    let profile = demo_profile(50, 100);
    let replica = profile.path().join("replica.sqlite");
    {
        let (link, end) = phone::link();
        let mut h = harness(app_with_phone(profile.path(), Some(link)));
        h.run_steps(2);
        ring(&end, &replica, "c-9", "+79005550199", None);
        settle(&mut h, "ringing", |h| has_label(h, "New caller"));
        end.send(PhoneEvent::Answered { call_id: "c-9".into() });
        settle(&mut h, "the form", |h| h.query_by_role_and_label(Role::TextInput, "Note").is_some());
        type_into(&mut h, "Note", "wants a cardiologist on Friday");
        settle(&mut h, "the draft written", |_| {
            count(&replica, "SELECT count(*) FROM drafts WHERE form LIKE '%cardiologist on Friday%'") == 1
        });
        // The window dies here: no save, no cancel.
    }
    let (link, _end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    settle(&mut h, "the draft restored", |h| {
        h.query_all_by_role(Role::TextInput).any(|n| n.value().as_deref() == Some("wants a cardiologist on Friday"))
    });
    assert!(has_text(&h, "restored"));
}

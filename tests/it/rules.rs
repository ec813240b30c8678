//! Automatic transitions end to end: a visit's status set in the window moves
//! its deal to the stage the deal type's rule names.

use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT, Queryable};

use super::gui::{app_on, choose, harness, has_text, settle, type_into};
use super::harness::demo_profile;

#[test]
fn a_patient_arriving_moves_the_deal() {
    let profile = demo_profile(150, 400);
    let replica = profile.path().join("replica.sqlite");
    let conn = rusqlite::Connection::open(&replica).unwrap();
    // An open deal in the first stage of a type that has a rule for 'arrived',
    // of a person with a number of their own.
    let (deal, title, phone, target_stage): (String, String, String, String) = conn
        .query_row(
            "SELECT d.id, d.title, ph.phone_e164, r.target_stage_id FROM deals d
             JOIN auto_transition_rules r ON r.deal_type_id = d.deal_type_id AND r.visit_status = 'arrived'
             JOIN person_phones ph ON ph.person_id = d.person_id
             WHERE d.status = 'open' AND d.stage_id <> r.target_stage_id
               AND (SELECT count(*) FROM person_phones x WHERE x.phone_e164 = ph.phone_e164) = 1
               AND (SELECT count(*) FROM deals y WHERE y.person_id = d.person_id AND y.status = 'open') = 1
             LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    let stage_of =
        || -> String { conn.query_row("SELECT stage_id FROM deals WHERE id = ?", [&deal], |r| r.get(0)).unwrap() };

    let mut h = harness(app_on(profile.path()));
    h.get_by_role_and_label(Role::Button, "People").click();
    h.run_steps(2);
    type_into(&mut h, "Search", &phone[1..]);
    let is_hit = |n: &egui_kittest::Node<'_>| n.accesskit_node().label().is_some_and(|l| l.contains('\n'));
    settle(&mut h, "the person found", |h| h.query_all_by_role(Role::Button).any(|n| is_hit(&n)));
    h.query_all_by_role(Role::Button).find(|n| is_hit(n)).expect("a search hit").click();
    settle(&mut h, "the person's page", |h| h.query_by_role_and_label(Role::Button, "Book a visit").is_some());
    h.get_by_role_and_label(Role::Button, "Book a visit").click();
    settle(&mut h, "the visit form with the deal", |h| h.query_by_role_and_label(Role::ComboBox, "Deal").is_some());
    let doctor: String = conn
        .query_row(
            "SELECT u.full_name || coalesce(' (' || u.specialty || ')', '') FROM users u JOIN roles r ON r.id = u.role_id
             WHERE r.code = 'doctor' ORDER BY u.full_name LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    choose(&mut h, "Doctor", &doctor);
    // The picker lists the person's open deals as "title · stage".
    h.get_by_role_and_label(Role::ComboBox, "Deal").click();
    h.run_steps(2);
    let entry = h
        .query_all_by_role(Role::Button)
        .chain(h.query_all_by_role(Role::ListBoxOption))
        .find(|n| n.accesskit_node().label().is_some_and(|l| l.starts_with(&format!("{title} · "))))
        .expect("the deal in the picker");
    entry.click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "the visit saved", |h| h.state().editor().is_none());
    let visit: String = conn
        .query_row("SELECT id FROM visits WHERE deal_id = ? ORDER BY rowid DESC LIMIT 1", [&deal], |r| r.get(0))
        .unwrap();
    assert_ne!(stage_of(), target_stage, "booking alone does not mean the patient arrived");

    // The visit from the person's history, set to "Patient arrived".
    // The history is reloaded after the save; wait for this visit's own link,
    // not just any (the person may have older visits shown before the reload).
    let starts: i64 = conn.query_row("SELECT starts_at FROM visits WHERE id = ?", [&visit], |r| r.get(0)).unwrap();
    let when = clinicdesk::crm::format_local_datetime(starts);
    settle(&mut h, "the new visit in the history", |h| {
        has_text(h, "Visits (") && h.query_all_by_role_and_label(Role::Link, &when).next().is_some()
    });
    h.query_all_by_role_and_label(Role::Link, &when).last().expect("the visit's link").click();
    settle(&mut h, "the visit form", |h| h.query_by_role_and_label(Role::ComboBox, "Status").is_some());
    choose(&mut h, "Status", "Patient arrived");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());
    assert_eq!(stage_of(), target_stage, "the rule moved the deal");
}

//! Tasks in the window (issue 7): a task's History with who and when, a
//! task from a template in one step from the caller card and from a deal,
//! the setup admin's template editor, and who sees the audit screen. The
//! audit screen against a real clinic database is in rights.rs (it needs
//! the clinic's logins).

use std::path::Path;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use clinicdesk::app::{ClinicApp, Screen};
use clinicdesk::crm::{TaskRecord, TaskStatus, now_millis};
use clinicdesk::settings::LocalSettings;
use clinicdesk::sip::phone::{self, PhoneEvent};
use clinicdesk::store::Replica;

use super::card::{one, ring, single_owner};
use super::gui::{app_on, app_with_phone, choose, count, harness, has_label, has_text, settle, type_into};
use super::harness::demo_profile;

/// The window's settings: in English, as `login`, maybe with a clinic database.
pub fn sign_in(profile: &Path, login: &str, database_url: Option<&str>) {
    LocalSettings {
        language: Some("en".into()),
        user_login: Some(login.into()),
        deadline_notifications: false,
        database_url: database_url.map(str::to_owned),
        ..Default::default()
    }
    .save(&profile.join("settings.toml"))
    .unwrap();
}

/// Clicks the menu entry `entry` of the menu button `menu`.
fn pick_from_menu(h: &mut Harness<'_, ClinicApp>, menu: &str, entry: &str) {
    h.get_by_role_and_label(Role::Button, menu).click();
    h.run_steps(2);
    let item = h
        .query_all_by_label(entry)
        .find(|n| n.accesskit_node().role() == Role::Button)
        .unwrap_or_else(|| panic!("no entry {entry:?} in the menu {menu:?}"));
    item.click();
    h.run_steps(2);
}

/// The value of the text field labelled `field`.
fn field_value(h: &Harness<'_, ClinicApp>, field: &str) -> String {
    h.get_by_role_and_label(Role::TextInput, field).accesskit_node().value().unwrap_or_default().to_string()
}

/// (deadline, remind_at, template title, person, deal, responsible login) of the newest task titled `title`.
type TaskFacts = (i64, Option<i64>, Option<String>, Option<String>, Option<String>, Option<String>);

fn task_titled(replica: &Path, title: &str) -> TaskFacts {
    let conn = rusqlite::Connection::open(replica).unwrap();
    conn.query_row(
        "SELECT t.deadline_at, t.remind_at, tt.title, t.person_id, t.deal_id, u.login
         FROM tasks t LEFT JOIN task_templates tt ON tt.id = t.template_id LEFT JOIN users u ON u.id = t.responsible_id
         WHERE t.title = ? ORDER BY t.created_at DESC LIMIT 1",
        [title],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )
    .unwrap()
}

/// Within two minutes of now + `minutes` (the test takes a while).
fn about_in(at: i64, minutes: i64) -> bool {
    (at - (now_millis() + minutes * 60_000)).abs() < 120_000
}

#[test]
fn a_tasks_history_shows_a_status_change_with_who() {
    let profile = demo_profile(60, 100);
    let replica = profile.path().join("replica.sqlite");
    let (operator_id, operator_name): (String, String) = {
        let r = Replica::open(&replica).unwrap();
        r.conn()
            .query_row("SELECT id, full_name FROM users WHERE login = 'operator'", [], |x| Ok((x.get(0)?, x.get(1)?)))
            .unwrap()
    };
    let task_type = one(&replica, "SELECT id FROM task_types WHERE code = 'call_back'");
    Replica::open(&replica)
        .unwrap()
        .save_task(
            &TaskRecord {
                id: None,
                task_type_id: task_type,
                title: "Проверить историю".into(),
                description: String::new(),
                responsible_id: Some(operator_id),
                // The earliest deadline: first in my list.
                deadline_at: 60_000,
                remind_at: None,
                template_id: None,
                status: TaskStatus::Open,
                person_id: None,
                inquiry_id: None,
                deal_id: None,
            },
            None,
        )
        .unwrap();

    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num5);
    settle(&mut h, "my task in the list", |h| has_label(h, "Проверить историю"));
    h.get_by_label("Проверить историю").click();
    settle(&mut h, "the task editor", |h| h.state().editor().is_some() && has_label(h, "History"));
    choose(&mut h, "Status", "In progress");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());

    settle(&mut h, "the task still listed", |h| has_label(h, "Проверить историю"));
    h.get_by_label("Проверить историю").click();
    settle(&mut h, "the task editor again", |h| h.state().editor().is_some() && has_label(h, "History"));
    h.get_by_label("History").click();
    settle(&mut h, "the status change with who made it", |h| {
        has_text(h, &format!("{operator_name} · status: In progress (was Open)"))
    });
    assert!(has_text(&h, "another workstation (by sync) · created: Проверить историю"), "written without an author");
}

#[test]
fn a_task_from_the_caller_card_takes_the_template_and_the_person() {
    let profile = demo_profile(200, 1500);
    let replica = profile.path().join("replica.sqlite");
    let (number, name) = single_owner(&replica);
    let person = one(&replica, &format!("SELECT person_id FROM person_phones WHERE phone_e164 = '{number}'"));
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    h.run_steps(2);
    ring(&end, &replica, "call-t", &format!("sip:{number}@pbx"), None);
    settle(&mut h, "the caller card", |h| has_label(h, &name) && has_text(h, "Open tasks ("));
    pick_from_menu(&mut h, "New task", "Подтвердить визит");
    settle(&mut h, "the task editor, filled by the template", |h| {
        h.state().editor().is_some() && has_text(h, &format!("Person: {name}"))
    });
    assert_eq!(field_value(&h, "Title"), "Подтвердить визит");
    assert_eq!(field_value(&h, "Remind, min before"), "60");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());

    let (deadline, remind, template, task_person, deal, responsible) = task_titled(&replica, "Подтвердить визит");
    assert!(about_in(deadline, 1440), "the template's deadline, a day from now");
    assert_eq!(remind, Some(deadline - 60 * 60_000));
    assert_eq!(template.as_deref(), Some("Подтвердить визит"));
    assert_eq!(task_person.as_deref(), Some(person.as_str()));
    assert_eq!(deal, None);
    assert_eq!(responsible.as_deref(), Some("operator"), "the template's role is mine");
    end.send(PhoneEvent::Ended {
        call_id: "call-t".into(),
        reason: clinicdesk::sip::phone::EndReason::NotAnswered,
        duration_s: 0,
    });
}

#[test]
fn a_task_from_a_deal_takes_the_template_the_deal_and_its_person() {
    let profile = demo_profile(150, 300);
    let replica = profile.path().join("replica.sqlite");
    // An open deal of the board's first type, the newest of its stage.
    let deal = one(
        &replica,
        "SELECT d.id FROM deals d WHERE d.person_id IS NOT NULL AND d.status = 'open' AND d.deleted_at IS NULL
         AND d.deal_type_id = (SELECT id FROM deal_types WHERE deleted_at IS NULL ORDER BY name LIMIT 1)
         ORDER BY d.id LIMIT 1",
    );
    {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        conn.execute(
            "UPDATE deals SET title = 'Имплантация для задачи', created_at = ? WHERE id = ?",
            rusqlite::params![now_millis(), deal],
        )
        .unwrap();
    }
    let person = one(&replica, &format!("SELECT person_id FROM deals WHERE id = '{deal}'"));
    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num4);
    settle(&mut h, "the deal on the board", |h| has_label(h, "Имплантация для задачи"));
    h.get_by_label("Имплантация для задачи").click();
    settle(&mut h, "the deal editor", |h| h.state().editor().is_some() && has_label(h, "Deal"));
    pick_from_menu(&mut h, "New task", "Подготовить справку");
    settle(&mut h, "the task editor for the deal", |h| has_text(h, "Deal: Имплантация для задачи"));
    assert_eq!(field_value(&h, "Title"), "Подготовить справку");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());

    let (deadline, remind, template, task_person, task_deal, responsible) =
        task_titled(&replica, "Подготовить справку");
    assert!(about_in(deadline, 2880), "the template's deadline, two days from now");
    assert_eq!(remind, Some(deadline - 240 * 60_000));
    assert_eq!(template.as_deref(), Some("Подготовить справку"));
    assert_eq!(task_deal.as_deref(), Some(deal.as_str()));
    assert_eq!(task_person.as_deref(), Some(person.as_str()), "the deal's person");
    assert_eq!(responsible.as_deref(), Some("operator"));
}

#[test]
fn the_setup_admin_edits_a_template_and_an_operator_cannot() {
    let profile = demo_profile(20, 50);
    let replica = profile.path().join("replica.sqlite");
    sign_in(profile.path(), "admin", None);
    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num7);
    settle(&mut h, "the templates", |h| has_label(h, "Task templates") && has_label(h, "Подготовить справку"));
    h.get_by_label("Подготовить справку").click();
    settle(&mut h, "the template editor", |h| has_label(h, "Edit the template"));
    assert_eq!(field_value(&h, "Deadline, min after creation"), "2880");
    for (field, text) in [("Deadline, min after creation", "4320"), ("Title", "Подготовить справку для работы")]
    {
        h.get_by_role_and_label(Role::TextInput, field).focus();
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        type_into(&mut h, field, text);
    }
    // A bad number is explained and nothing is sent.
    h.get_by_role_and_label(Role::TextInput, "Remind, min before the deadline").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    type_into(&mut h, "Remind, min before the deadline", "soon");
    h.get_by_role_and_label(Role::Button, "Save the template").click();
    settle(&mut h, "the error", |h| has_text(h, "“soon” is not a number of minutes"));
    h.get_by_role_and_label(Role::TextInput, "Remind, min before the deadline").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    type_into(&mut h, "Remind, min before the deadline", "120");
    h.get_by_role_and_label(Role::Button, "Save the template").click();
    settle(&mut h, "saved", |h| !has_label(h, "Edit the template"));
    assert_eq!(
        count(
            &replica,
            "SELECT count(*) FROM task_templates WHERE title = 'Подготовить справку для работы'
             AND deadline_offset_min = 4320 AND reminder_offset_min = 120"
        ),
        1
    );
    assert_eq!(
        count(&replica, "SELECT count(*) FROM outbox WHERE table_name = 'task_templates'"),
        1,
        "queued for sync"
    );
    drop(h);

    // The operator's Settings have no templates to edit (the writer refuses
    // them anyway: services::tests::the_writer_refuses_a_template_without_the_dictionaries_right).
    sign_in(profile.path(), "operator", None);
    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num7);
    settle(&mut h, "the operator's settings", |h| {
        has_label(h, "Enable CRM call-center mode") && h.state().current_user().is_some()
    });
    h.run_steps(3);
    assert!(!has_label(&h, "Task templates"));
    assert!(h.query_by_role_and_label(Role::Button, "New template").is_none());
    assert!(!has_label(&h, "Подготовить справку для работы"));
}

#[test]
fn the_audit_screen_is_the_heads_and_says_why_it_is_empty() {
    let profile = demo_profile(20, 50);
    // The operator: no audit screen, and its shortcut does nothing.
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "signed in", |h| h.state().current_user().is_some());
    h.run_steps(3);
    assert!(h.query_by_role_and_label(Role::Button, "Audit").is_none());
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num9);
    h.run_steps(3);
    assert_eq!(h.state().screen(), Screen::Calls);
    drop(h);

    // The head without a clinic database: told why there is nothing.
    sign_in(profile.path(), "head", None);
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "the head's navigation", |h| h.query_by_role_and_label(Role::Button, "Audit").is_some());
    h.get_by_role_and_label(Role::Button, "Audit").click();
    settle(&mut h, "no clinic database", |h| has_text(h, "This workstation has no clinic database"));
    drop(h);

    // A clinic database nobody answers at: the reason, not a hang.
    sign_in(profile.path(), "head", Some("postgres://head@127.0.0.1:1/clinic"));
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "the head's navigation", |h| h.query_by_role_and_label(Role::Button, "Audit").is_some());
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num9);
    settle(&mut h, "the reason", |h| {
        has_text(h, "The audit trail could not be read") && has_text(h, "cannot reach the clinic database")
    });
    // A time that is not one is explained.
    type_into(&mut h, "From", "yesterday");
    h.get_by_role_and_label(Role::Button, "Search").click();
    settle(&mut h, "the time explained", |h| has_text(h, "“yesterday” is not a time"));
}

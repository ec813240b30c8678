//! The window, driven through its accessibility tree with egui_kittest: the
//! real app with its real service threads on a generated replica.

use std::path::Path;
use std::time::{Duration, Instant};

use egui::accesskit::{Role, Toggled};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use clinicdesk::app::{ClinicApp, Message, Startup};
use clinicdesk::settings::{LocalSettings, Profile};
use clinicdesk::store::Replica;

use super::harness::demo_profile;

/// The app on `dir`, in English, as the demo operator.
pub fn app_on(dir: &Path) -> ClinicApp {
    app_with_phone(dir, None)
}

/// The same, linked to a softphone (the test plays the user agent).
pub fn app_with_phone(dir: &Path, phone: Option<clinicdesk::sip::phone::PhoneLink>) -> ClinicApp {
    let profile = Profile::resolve(Some(dir), None).unwrap();
    let settings_path = profile.settings_path();
    if !settings_path.exists() {
        // Deadline notifications have their own tests (notify.rs); here a
        // reminder shown in the window would only stand in the way.
        let settings = LocalSettings {
            language: Some("en".into()),
            user_login: Some("operator".into()),
            deadline_notifications: false,
            ..Default::default()
        };
        settings.save(&settings_path).unwrap();
    }
    let (settings, settings_problem) = match LocalSettings::load(&settings_path) {
        Ok(s) => (s, None),
        Err(e) => (LocalSettings { language: Some("en".into()), ..Default::default() }, Some(Message::from(&e))),
    };
    let replica = Replica::open(&profile.replica_path()).map_err(|e| Message::from(&e));
    ClinicApp::new(Startup {
        profile,
        settings,
        settings_problem,
        replica,
        started: Instant::now(),
        frame_stats: false,
        phone_mode: if phone.is_some() {
            clinicdesk::app::calls::PhoneMode::Direct("127.0.0.1:5060".into())
        } else {
            clinicdesk::app::calls::PhoneMode::Off
        },
        phone,
    })
}

pub fn harness(app: ClinicApp) -> Harness<'static, ClinicApp> {
    Harness::builder().with_size([1280.0, 800.0]).build_ui_state(|ui, app: &mut ClinicApp| app.root_ui(ui), app)
}

/// Steps frames until `done` holds: the services answer on their threads.
pub fn settle(h: &mut Harness<'_, ClinicApp>, what: &str, mut done: impl FnMut(&Harness<'_, ClinicApp>) -> bool) {
    let start = Instant::now();
    loop {
        h.step();
        if done(h) {
            // Let sizes that changed with the news settle (egui lays out
            // from the previous frame), so clicks land where they aim.
            h.run_steps(3);
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "timed out waiting for {what}; the window holds:\n{}",
            labels(h)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every label in the window, for a failure message.
fn labels(h: &Harness<'_, ClinicApp>) -> String {
    h.query_all_by(|_| true)
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.label().or_else(|| node.value()).map(|l| format!("{:?} {l:?}", node.role()))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn has_label(h: &Harness<'_, ClinicApp>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

pub fn has_text(h: &Harness<'_, ClinicApp>, part: &str) -> bool {
    h.query_all_by_label_contains(part).next().is_some()
}

pub fn count(replica: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(replica).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Types into the text field labelled `field` (focusing it first).
pub fn type_into(h: &mut Harness<'_, ClinicApp>, field: &str, text: &str) {
    h.get_by_role_and_label(Role::TextInput, field).focus();
    h.run_steps(1);
    h.get_by_role_and_label(Role::TextInput, field).type_text(text);
    h.run_steps(1);
}

/// Picks `option` in the combo box that follows the label `field`.
pub fn choose(h: &mut Harness<'_, ClinicApp>, field: &str, option: &str) {
    h.get_by_role_and_label(Role::ComboBox, field).click();
    h.run_steps(2);
    // The popup's entry, not a row with the same text behind the form.
    let entry = h
        .query_all_by_label(option)
        .rev()
        .find(|n| !matches!(n.accesskit_node().role(), Role::Label | Role::Link))
        .unwrap_or_else(|| panic!("no entry {option:?} in {field}:\n{}", labels(h)));
    entry.click();
    h.run_steps(2);
}

#[test]
fn navigation_reaches_every_screen_by_click_and_shortcut() {
    let profile = demo_profile(200, 2000);
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "the call log", |h| has_text(h, "2,000 records") || has_text(h, "2000 records"));
    for (nav, heading) in
        [("Inquiries", "Inquiries"), ("Tasks", "Tasks"), ("People", "People"), ("Settings", "Settings")]
    {
        h.get_by_role_and_label(Role::Button, nav).click();
        settle(&mut h, heading, |h| h.query_all_by_label(heading).count() >= 2);
    }
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num4);
    settle(&mut h, "the deal board", |h| h.state().screen() == clinicdesk::app::Screen::Deals);
    settle(&mut h, "the stages", |h| has_text(h, "Записан"));
    h.key_press(egui::Key::F1);
    settle(&mut h, "the help overlay", |h| has_label(h, "Find a person"));
    h.key_press(egui::Key::Escape);
    settle(&mut h, "help closed", |h| !has_label(h, "Find a person"));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num1);
    settle(&mut h, "back to calls", |h| h.state().screen() == clinicdesk::app::Screen::Calls);
}

/// A frame applies the services' events only for its time budget; what is
/// left waits for the next frames. With no budget at all (one event a frame)
/// the start-up burst — dictionaries, the user, counts and pages of the call
/// log, drafts, the team — still all arrives: the rows show, nothing is left.
#[test]
fn a_burst_of_events_beyond_a_frames_budget_is_applied_over_the_next_frames() {
    let profile = demo_profile(200, 2000);
    let mut app = app_on(profile.path());
    app.set_event_budget(Duration::ZERO);
    let mut h = harness(app);
    settle(&mut h, "the signed-in user", |h| h.state().current_user().is_some());
    settle(&mut h, "the call log's count", |h| has_text(h, "2,000 records") || has_text(h, "2000 records"));
    let conn = rusqlite::Connection::open(profile.path().join("replica.sqlite")).unwrap();
    let newest: String = conn
        .query_row("SELECT peer_e164 FROM calls WHERE deleted_at IS NULL ORDER BY started_at DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let shown = clinicdesk::crm::Phone::from_e164_unchecked(newest).display();
    settle(&mut h, "the newest call's row", |h| has_label(h, &shown));
    settle(&mut h, "every event applied", |h| h.state().events_waiting() == 0);
}

/// A person of the generated clinic: (last name, first name, phone digits).
fn some_person(replica: &Path) -> (String, String, String) {
    let conn = rusqlite::Connection::open(replica).unwrap();
    conn.query_row(
        "SELECT p.last_name, p.first_name, ph.phone_e164 FROM people p JOIN person_phones ph ON ph.person_id = p.id
         WHERE (SELECT count(*) FROM person_phones x WHERE x.phone_e164 = ph.phone_e164) = 1
         ORDER BY p.rowid LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?[1..].to_string())),
    )
    .unwrap()
}

#[test]
fn people_search_finds_by_number_part_name_and_typo() {
    let profile = demo_profile(300, 500);
    let (last, first, digits) = some_person(&profile.path().join("replica.sqlite"));
    let full = format!("{last} {first}");
    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    settle(&mut h, "the people screen", |h| h.query_by_role_and_label(Role::TextInput, "Search").is_some());
    let latin_typo = {
        // Transliterated, with two letters swapped: still found.
        let mut t: Vec<char> = clinicdesk::store::search::translit(&last).chars().collect();
        if t.len() > 4 {
            t.swap(2, 3);
        }
        t.into_iter().collect::<String>()
    };
    for query in [digits[digits.len() - 7..].to_string(), last.clone(), latin_typo] {
        let search = h.get_by_role_and_label(Role::TextInput, "Search");
        search.focus();
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        type_into(&mut h, "Search", &query);
        settle(&mut h, &format!("{full} found by {query:?}"), |h| has_text(h, &full));
    }
    h.get_by_label_contains(&full).click();
    settle(&mut h, "the person's page", |h| has_text(h, "Calls (") && has_text(h, "Inquiries ("));
}

#[test]
fn an_inquiry_is_created_from_a_persons_page() {
    let profile = demo_profile(100, 300);
    let replica = profile.path().join("replica.sqlite");
    let (last, first, digits) = some_person(&replica);
    let before = count(&replica, "SELECT count(*) FROM inquiries");
    let mut h = harness(app_on(profile.path()));
    h.get_by_role_and_label(Role::Button, "People").click();
    h.run_steps(2);
    type_into(&mut h, "Search", &digits);
    settle(&mut h, "search result", |h| has_text(h, &last));
    h.get_by_label_contains(&format!("{last} {first}")).click();
    settle(&mut h, "person page", |h| h.query_by_role_and_label(Role::Button, "New inquiry").is_some());
    h.get_by_role_and_label(Role::Button, "New inquiry").click();
    settle(&mut h, "the inquiry form", |h| has_label(h, "New inquiry") && has_text(h, "Reason"));
    // Saving without a reason says what is missing and saves nothing.
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "the validation message", |h| has_label(h, "Choose the reason of the inquiry."));
    choose(&mut h, "Reason", "Консультация по ценам");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::S);
    settle(&mut h, "saved", |h| h.state().editor().is_none());
    assert_eq!(count(&replica, "SELECT count(*) FROM inquiries"), before + 1);
    let queued = count(
        &replica,
        "SELECT count(*) FROM outbox o JOIN inquiries i ON i.id = o.row_id WHERE o.table_name = 'inquiries' AND o.op = 'insert'",
    );
    assert_eq!(queued, 1, "the inquiry is queued for sync in the same transaction");
    let mine = count(
        &replica,
        "SELECT count(*) FROM inquiries i JOIN users u ON u.id = i.operator_id WHERE u.login = 'operator' AND i.note = ''
         AND i.created_at > strftime('%s','now') * 1000 - 60000",
    );
    assert_eq!(mine, 1);
    settle(&mut h, "history updated", |h| has_text(h, "Консультация по ценам"));
}

#[test]
fn a_task_is_created_and_a_bad_phone_is_explained() {
    let profile = demo_profile(100, 300);
    let replica = profile.path().join("replica.sqlite");
    let tasks_before = count(&replica, "SELECT count(*) FROM tasks");
    let inquiries_before = count(&replica, "SELECT count(*) FROM inquiries");
    let mut h = harness(app_on(profile.path()));

    // An inquiry by phone with a number that is too short.
    h.get_by_role_and_label(Role::Button, "Inquiries").click();
    settle(&mut h, "inquiries", |h| h.query_by_role_and_label(Role::Button, "New inquiry").is_some());
    h.get_by_role_and_label(Role::Button, "New inquiry").click();
    settle(&mut h, "form", |h| h.query_by_role_and_label(Role::TextInput, "Phone").is_some());
    type_into(&mut h, "Phone", "12-34");
    choose(&mut h, "Reason", "Запись на приём");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "the phone error", |h| has_text(h, "“12-34” has 4 digits"));
    h.key_press(egui::Key::Escape);
    settle(&mut h, "form closed", |h| h.state().editor().is_none());
    assert_eq!(count(&replica, "SELECT count(*) FROM inquiries"), inquiries_before);

    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num5);
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::T);
    settle(&mut h, "task form", |h| h.query_by_role_and_label(Role::TextInput, "Title").is_some());
    type_into(&mut h, "Title", "Перезвонить по анализам");
    choose(&mut h, "Task type", "Перезвонить");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());
    assert_eq!(count(&replica, "SELECT count(*) FROM tasks"), tasks_before + 1);
    settle(&mut h, "the task in my list", |h| has_label(h, "Перезвонить по анализам"));
}

#[test]
fn settings_toggles_survive_a_restart() {
    let profile = demo_profile(20, 50);
    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num7);
    settle(&mut h, "settings", |h| has_label(h, "Enable CRM call-center mode"));
    let toggled = |h: &Harness<'_, ClinicApp>, label: &str| {
        h.get_by_role_and_label(Role::CheckBox, label).accesskit_node().toggled() == Some(Toggled::True)
    };
    assert!(!toggled(&h, "Enable CRM call-center mode"));
    assert!(toggled(&h, "Show inquiry history during a call"));
    h.get_by_role_and_label(Role::CheckBox, "Enable CRM call-center mode").click();
    h.get_by_role_and_label(Role::CheckBox, "Show inquiry history during a call").click();
    settle(&mut h, "the settings written", |_| {
        LocalSettings::load(&profile.path().join("settings.toml"))
            .is_ok_and(|s| s.call_center_mode && !s.show_history_during_call)
    });
    drop(h);

    let mut h = harness(app_on(profile.path()));
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num7);
    settle(&mut h, "settings again", |h| has_label(h, "Enable CRM call-center mode"));
    assert!(toggled(&h, "Enable CRM call-center mode"));
    assert!(!toggled(&h, "Show inquiry history during a call"));

    // Switching the language applies at once.
    h.get_by_role_and_label(Role::ComboBox, "Language").click();
    h.run_steps(2);
    h.get_by_label("Українська").click();
    settle(&mut h, "Ukrainian", |h| has_label(h, "Увімкнути режим кол-центру CRM"));
    settle(&mut h, "language saved", |_| {
        LocalSettings::load(&profile.path().join("settings.toml")).is_ok_and(|s| s.language.as_deref() == Some("uk"))
    });
}

#[test]
fn a_damaged_replica_is_explained_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("replica.sqlite"), b"not a database at all").unwrap();
    let mut h = harness(app_on(dir.path()));
    h.run_steps(3);
    assert!(has_label(&h, "ClinicDesk cannot open this workstation's data"));
    assert!(has_text(&h, "is not a ClinicDesk database"));
    assert!(h.query_by_role_and_label(Role::Button, "Quit").is_some());
}

#[test]
fn a_settings_typo_is_shown_and_the_file_kept() {
    let profile = demo_profile(20, 50);
    let path = profile.path().join("settings.toml");
    std::fs::write(&path, "language = \"en\"\nshow_history_durring_call = false\n").unwrap();
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "the notice", |h| has_text(h, "unknown field `show_history_durring_call`"));
    h.get_by_role_and_label(Role::Button, "OK").click();
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num7);
    settle(&mut h, "settings", |h| has_text(h, "changes apply now but are not saved"));
    h.get_by_role_and_label(Role::CheckBox, "Enable CRM call-center mode").click();
    h.run_steps(5);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "language = \"en\"\nshow_history_durring_call = false\n");
}

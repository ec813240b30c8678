//! The sync engine inside the window: its status in the status bar, and a
//! record made in the window reaching the clinic database.

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

use clinicdesk::settings::LocalSettings;

use super::gui::{app_on, choose, harness, settle, type_into};
use super::sync::{Postgres, Sql, loaded_clinic, sync_once};

#[test]
fn the_window_syncs_and_says_so() {
    let pg = Postgres::start();
    let (url, _server_side) = loaded_clinic(&pg, "desk", 60, 120);
    let profile = tempfile::tempdir().unwrap();
    let first = sync_once(profile.path(), &url);
    assert!(first.contains("snapshot"), "{first}");
    LocalSettings {
        language: Some("en".into()),
        user_login: Some("operator".into()),
        deadline_notifications: false,
        database_url: Some(url.clone()),
        ..Default::default()
    }
    .save(&profile.path().join("settings.toml"))
    .unwrap();

    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "online in the status bar", |h| {
        h.query_all_by_label_contains("Clinic database: online").next().is_some()
    });
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num5);
    h.run_steps(2);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::T);
    settle(&mut h, "the task form", |h| h.query_by_role_and_label(Role::TextInput, "Title").is_some());
    type_into(&mut h, "Title", "Синхронизировать с сервером");
    choose(&mut h, "Task type", "Перезвонить");
    h.get_by_role_and_label(Role::Button, "Save").click();
    settle(&mut h, "saved", |h| h.state().editor().is_none());
    let server = Sql::connect(&url);
    settle(&mut h, "the task on the server and nothing left to send", |h| {
        server.i64("SELECT count(*) FROM tasks WHERE title = 'Синхронизировать с сервером'") == 1
            && h.query_all_by_label_contains("online · 0 to send").next().is_some()
    });

    pg.stop();
    settle(&mut h, "offline, still working", |h| {
        h.query_all_by_label_contains("offline, working locally").next().is_some()
    });
}

/// A deal's stage changed on two workstations: the later one sees both
/// values in the window, never a silent overwrite.
#[test]
fn a_conflict_is_shown_with_both_values() {
    use clinicdesk::store::text;

    use super::sync::{open, sync_once};

    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "conflicted", 40, 120);
    let b = tempfile::tempdir().unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    let (deal, stages): (String, Vec<String>) = {
        let ra = open(a.path());
        let deal: String = ra
            .conn()
            .query_row("SELECT id FROM deals WHERE deleted_at IS NULL ORDER BY id LIMIT 1", [], |r| r.get(0))
            .unwrap();
        let stages = ra
            .conn()
            .prepare(
                "SELECT s.id FROM deal_stages s JOIN deals d ON d.deal_type_id = s.deal_type_id
                 WHERE d.id = ? AND s.id <> d.stage_id ORDER BY s.position",
            )
            .unwrap()
            .query_map([&deal], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        (deal, stages)
    };
    open(a.path()).write(|w| w.update_changed("deals", &deal, &[("stage_id", text(&stages[0]))])).unwrap();
    open(b.path()).write(|w| w.update_changed("deals", &deal, &[("stage_id", text(&stages[1]))])).unwrap();
    sync_once(a.path(), &url);

    LocalSettings {
        language: Some("en".into()),
        user_login: Some("operator".into()),
        deadline_notifications: false,
        database_url: Some(url.clone()),
        ..Default::default()
    }
    .save(&b.path().join("settings.toml"))
    .unwrap();
    let mut h = harness(app_on(b.path()));
    settle(&mut h, "the conflict in the status bar", |h| h.query_all_by_label("Conflicts: 1").next().is_some());
    h.get_by_label("Conflicts: 1").click();
    settle(&mut h, "both values", |h| {
        h.query_all_by_label_contains(&format!("You wrote: \"{}\"", stages[1])).next().is_some()
            && h.query_all_by_label_contains(&format!("The clinic database kept: \"{}\"", stages[0])).next().is_some()
    });
    h.get_by_role_and_label(Role::Button, "Understood").click();
    let replica = b.path().join("replica.sqlite");
    settle(&mut h, "acknowledged", |_| {
        super::gui::count(&replica, "SELECT count(*) FROM sync_conflicts WHERE resolved_at IS NULL") == 0
    });
}

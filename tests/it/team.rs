//! Roles and rights in the window, operator statuses and the head's rights
//! editor.

use std::path::Path;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

use clinicdesk::crm::{Right, RoleCode};
use clinicdesk::settings::LocalSettings;

use super::gui::{app_on, choose, count, harness, settle};
use super::harness::demo_profile;

fn sign_in(profile: &Path, login: &str) {
    let settings = LocalSettings {
        language: Some("en".into()),
        user_login: Some(login.into()),
        deadline_notifications: false,
        ..Default::default()
    };
    settings.save(&profile.join("settings.toml")).unwrap();
}

/// For every role: what the window offers follows the role's rights.
#[test]
fn the_window_offers_what_each_role_may_do() {
    let profile = demo_profile(40, 80);
    for (login, role) in [
        ("head", RoleCode::Head),
        ("admin", RoleCode::Admin),
        ("operator", RoleCode::Operator),
        ("supervisor", RoleCode::Supervisor),
        ("doctor1", RoleCode::Doctor),
        ("nurse1", RoleCode::Nurse),
    ] {
        sign_in(profile.path(), login);
        let rights = role.default_rights();
        let mut h = harness(app_on(profile.path()));
        settle(&mut h, "signed in", |h| h.state().current_user().is_some_and(|u| u.login == login));
        let has_button = |h: &egui_kittest::Harness<'_, clinicdesk::app::ClinicApp>, label: &str| {
            h.query_all_by_role_and_label(Role::Button, label).next().is_some()
        };
        assert_eq!(
            has_button(&h, "Team"),
            rights.has(Right::ViewAllCalls) || rights.has(Right::AllCrm),
            "{login}: the Team screen"
        );
        for (key, screen_label, button, right) in [
            (egui::Key::Num3, "Inquiries", "New inquiry", Right::ProcessInquiries),
            (egui::Key::Num4, "Deals", "New deal", Right::EditDeals),
            (egui::Key::Num5, "Tasks", "New task", Right::EditTasks),
        ] {
            h.key_press_modifiers(egui::Modifiers::ALT, key);
            h.run_steps(3);
            assert!(h.query_all_by_label(screen_label).count() >= 2, "{login}: {screen_label}");
            assert_eq!(has_button(&h, button), rights.has(right), "{login}: {button}");
        }
    }
}

#[test]
fn a_status_set_by_an_operator_is_seen_by_the_supervisor() {
    let profile = demo_profile(40, 80);
    let replica = profile.path().join("replica.sqlite");
    sign_in(profile.path(), "operator");
    {
        let mut h = harness(app_on(profile.path()));
        settle(&mut h, "signed in", |h| h.state().current_user().is_some());
        assert!(h.query_all_by_role_and_label(Role::Button, "Team").next().is_none());
        choose(&mut h, "My status:", "Break");
        settle(&mut h, "the status stored", |_| {
            count(
                &replica,
                "SELECT count(*) FROM operator_statuses s JOIN users u ON u.id = s.user_id
                 WHERE u.login = 'operator' AND s.status = 'break'",
            ) == 1
        });
        let queued = count(&replica, "SELECT count(*) FROM outbox WHERE table_name = 'operator_statuses'");
        assert_eq!(queued, 1, "statuses sync to the supervisors' workstations");
    }
    sign_in(profile.path(), "supervisor");
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "signed in", |h| h.state().current_user().is_some());
    h.get_by_role_and_label(Role::Button, "Team").click();
    settle(&mut h, "the team", |h| h.query_all_by_label("Break").next().is_some());
}

#[test]
fn the_head_changes_a_users_rights() {
    let profile = demo_profile(40, 80);
    let replica = profile.path().join("replica.sqlite");
    sign_in(profile.path(), "head");
    let mut h = harness(app_on(profile.path()));
    settle(&mut h, "signed in", |h| h.state().current_user().is_some());
    h.get_by_role_and_label(Role::Button, "Team").click();
    settle(&mut h, "the team", |h| h.query_all_by_role_and_label(Role::Button, "Rights…").next().is_some());
    // A member without rights of their own yet, by their row on the screen
    // (operators first, then supervisors, each by name).
    let (row, user_id): (usize, String) = {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        let members: Vec<(i64, String)> = conn
            .prepare(
                "SELECT (SELECT count(*) FROM user_rights x WHERE x.user_id = u.id), u.id FROM users u
                 JOIN roles r ON r.id = u.role_id
                 WHERE r.code IN ('operator', 'supervisor') AND u.active = 1 ORDER BY r.code, u.full_name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let row = members.iter().position(|(n, _)| *n == 0).expect("a member without overrides");
        (row, members[row].1.clone())
    };
    let overrides = |granted: &str| {
        count(
            &replica,
            &format!(
                "SELECT count(*) FROM user_rights WHERE user_id = '{user_id}' AND right_code = 'deal.edit'
                 AND deleted_at IS NULL {granted}"
            ),
        )
    };
    h.query_all_by_role_and_label(Role::Button, "Rights…").nth(row).unwrap().click();
    settle(&mut h, "the rights", |h| h.query_by_role_and_label(Role::CheckBox, "Create and edit deals").is_some());
    h.get_by_role_and_label(Role::CheckBox, "Create and edit deals").click();
    settle(&mut h, "the right granted", |_| overrides("AND granted = 1") == 1);
    settle(&mut h, "shown as over the role", |h| {
        h.query_all_by_role_and_label(Role::Button, "As the role").next().is_some()
    });
    h.get_by_role_and_label(Role::Button, "As the role").click();
    settle(&mut h, "back to the role", |_| overrides("") == 0);
}

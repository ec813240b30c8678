//! Deadline notifications through a real notification server (dunst) on a
//! private D-Bus session, recorded by dbus-monitor, with the real window.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clinicdesk::crm::{new_id, now_millis};

use super::harness::{DbusSession, Display, Peer, binary, demo_profile, require, wait_for};

/// Notify calls seen on the bus, as the text dbus-monitor printed for each.
struct NotifyLog {
    calls: Arc<Mutex<Vec<String>>>,
    _monitor: Peer,
}

impl NotifyLog {
    fn start(bus: &DbusSession) -> NotifyLog {
        let monitor = require("dbus-monitor", "dbus");
        let mut peer = Peer::spawn(
            "dbus-monitor",
            Command::new(monitor)
                .args(["--address", &bus.address, "interface='org.freedesktop.Notifications',member='Notify'"])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        let stdout = peer.take_stdout();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink = calls.clone();
        std::thread::spawn(move || {
            // Each Notify call starts an entry; the lines of its arguments
            // follow it.
            let mut in_notify = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("method call") || line.starts_with("signal") || line.starts_with("method return") {
                    in_notify = line.contains("member=Notify");
                    if in_notify {
                        sink.lock().unwrap().push(String::new());
                    }
                } else if in_notify && let Some(last) = sink.lock().unwrap().last_mut() {
                    last.push_str(&line);
                    last.push('\n');
                }
            }
        });
        NotifyLog { calls, _monitor: peer }
    }

    /// Notify calls so far whose text contains `part`.
    fn naming(&self, part: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| c.contains(part)).count()
    }

    fn total(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

/// A task for the user `login`, due `in_ms` from now.
fn add_task(replica: &Path, login: &str, title: &str, in_ms: i64) {
    let conn = rusqlite::Connection::open(replica).unwrap();
    let now = now_millis();
    conn.execute(
        "INSERT INTO tasks (id, task_type_id, title, responsible_id, deadline_at, status, created_at, updated_at)
         SELECT ?1, (SELECT id FROM task_types WHERE code = 'call_back'), ?2, (SELECT id FROM users WHERE login = ?3),
                ?4, 'open', ?5, ?5",
        rusqlite::params![new_id(), title, login, now + in_ms, now],
    )
    .unwrap();
}

fn window(profile: &Path, display: &Display, bus: &DbusSession) -> Peer {
    Peer::spawn(
        "clinicdesk",
        Command::new(binary())
            .arg("--profile")
            .arg(profile)
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("CLINICDESK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn notification_server(display: &Display, bus: &DbusSession) -> Peer {
    let dunst = require("dunst", "dunst");
    let peer = Peer::spawn(
        "dunst",
        Command::new(dunst)
            .env("DISPLAY", &display.name)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // The server is up once it owns its name on the bus.
    bus.wait_for_name("org.freedesktop.Notifications");
    peer
}

#[test]
fn a_task_due_soon_is_notified_once_and_never_again() {
    let display = Display::start();
    let bus = DbusSession::start();
    let _server = notification_server(&display, &bus);
    let log = NotifyLog::start(&bus);
    let profile = demo_profile(30, 60);
    let replica = profile.path().join("replica.sqlite");
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\nuser_login = \"operator\"\n").unwrap();
    add_task(&replica, "operator", "Call back Mrs Kovalenko about her tests", 4_000);
    add_task(&replica, "operator2", "Someone else's task", 4_000);

    let mut app = window(profile.path(), &display, &bus);
    wait_for("the task's notification", Duration::from_secs(30), || log.naming("Mrs Kovalenko") >= 1);
    // Give a repeat every chance to happen before counting.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(log.naming("Mrs Kovalenko"), 1, "exactly one Notify for the task");
    assert_eq!(log.naming("Someone else"), 0, "another user's task is not ours to notify");
    assert_eq!(log.naming("Overdue tasks:"), 1, "one summary of what was overdue at start");
    assert!(app.is_running());
    drop(app);

    let before = log.total();
    let _app = window(profile.path(), &display, &bus);
    wait_for("the summary after the restart", Duration::from_secs(30), || log.total() > before);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(log.naming("Mrs Kovalenko"), 1, "not again after a restart");
}

#[test]
fn nothing_when_the_toggle_is_off() {
    let display = Display::start();
    let bus = DbusSession::start();
    let _server = notification_server(&display, &bus);
    let log = NotifyLog::start(&bus);
    let profile = demo_profile(30, 60);
    let replica = profile.path().join("replica.sqlite");
    std::fs::write(
        profile.path().join("settings.toml"),
        "language = \"en\"\nuser_login = \"operator\"\ndeadline_notifications = false\n",
    )
    .unwrap();
    add_task(&replica, "operator", "Confirm the visit of Mr Bondar", 2_000);
    let mut app = window(profile.path(), &display, &bus);
    // Long enough for the deadline to pass and a notification to be due.
    let conn = rusqlite::Connection::open(&replica).unwrap();
    wait_for("the deadline to pass", Duration::from_secs(20), || {
        conn.query_row(
            "SELECT count(*) FROM tasks WHERE title = 'Confirm the visit of Mr Bondar' AND deadline_at < ?",
            [now_millis() - 3_000],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            == 1
    });
    assert!(app.is_running());
    assert_eq!(log.total(), 0, "no notification at all with the toggle off");
}

#[test]
fn without_a_notification_server_the_window_shows_the_reminder() {
    let display = Display::start();
    let bus = DbusSession::start();
    let profile = demo_profile(30, 60);
    let replica = profile.path().join("replica.sqlite");
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\nuser_login = \"operator\"\n").unwrap();
    add_task(&replica, "operator", "Send Mr Lysenko his results", 2_000);
    let mut app = Peer::spawn(
        "clinicdesk",
        Command::new(binary())
            .arg("--profile")
            .arg(profile.path())
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("CLINICDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stderr = app.take_stderr();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    wait_for("the reminder in the window", Duration::from_secs(30), || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("Send Mr Lysenko his results") && l.contains("shown in the window"))
    });
    assert!(app.is_running());
}

/// "Done" on a notification is a save like any other: for an operator whose
/// right to work on tasks was taken away, it is refused and the task stays
/// open (it used to be written on a connection of the notifier's own, with
/// no rights check). The click is the notification server's ActionInvoked
/// signal, sent here as dunst would send it.
#[test]
fn done_on_a_notification_is_refused_without_the_right_to_work_on_tasks() {
    use clinicdesk::crm::Right;
    let display = Display::start();
    let bus = DbusSession::start();
    let _server = notification_server(&display, &bus);
    let log = NotifyLog::start(&bus);
    let profile = demo_profile(30, 60);
    let replica = profile.path().join("replica.sqlite");
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\nuser_login = \"operator\"\n").unwrap();
    {
        let mut r = clinicdesk::store::Replica::open(&replica).unwrap();
        let me: String =
            r.conn().query_row("SELECT id FROM users WHERE login = 'operator'", [], |row| row.get(0)).unwrap();
        r.set_user_right(&me, Right::WorkTasks, Some(false)).unwrap();
        r.set_user_right(&me, Right::EditTasks, Some(false)).unwrap();
    }
    let title = "Remind Mrs Shevchenko of her appointment";
    add_task(&replica, "operator", title, 3_000);

    let mut app = Peer::spawn(
        "clinicdesk",
        Command::new(binary())
            .arg("--profile")
            .arg(profile.path())
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("CLINICDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let stderr = app.take_stderr();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    wait_for("the task's notification", Duration::from_secs(30), || log.naming("Mrs Shevchenko") >= 1);
    let conn = rusqlite::Connection::open(&replica).unwrap();
    let status =
        || -> String { conn.query_row("SELECT status FROM tasks WHERE title = ?", [title], |r| r.get(0)).unwrap() };
    let dbus_send = require("dbus-send", "dbus-bin");
    // Only the task's notification waits for an action, and its waiter hears
    // only its own id (dunst counts them from 1 or 2). One signal at a time:
    // notify-rust's waiter takes a new message stream after each signal not
    // for it, and may lose one that arrived together with it.
    let refused = || lines.lock().unwrap().iter().any(|l| l.contains("on a notification refused"));
    let mut id = 0;
    wait_for("\"Done\" to be answered", Duration::from_secs(20), || {
        id = id % (log.total() as u32 + 2) + 1;
        let sent = Command::new(&dbus_send)
            .arg(format!("--bus={}", bus.address))
            .args(["--type=signal", "/org/freedesktop/Notifications"])
            .arg("org.freedesktop.Notifications.ActionInvoked")
            .arg(format!("uint32:{id}"))
            .arg("string:done")
            .status()
            .unwrap();
        assert!(sent.success(), "dbus-send failed");
        std::thread::sleep(Duration::from_millis(300));
        refused() || status() != "open"
    });
    assert_eq!(status(), "open", "no right to work on tasks: \"Done\" does not close it");
    assert!(app.is_running());
}

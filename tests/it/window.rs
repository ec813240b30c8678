//! The real binary under Xvfb on a generated replica: the window shows the
//! call log (a screenshot that is not blank).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::harness::{Display, Peer, binary, demo_profile, require};

#[test]
fn the_window_shows_the_call_log_under_xvfb() {
    let import = require("import", "imagemagick");
    let identify = require("identify", "imagemagick");
    let display = Display::start();
    let profile = demo_profile(2_000, 20_000);
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\nuser_login = \"operator\"\n").unwrap();
    let mut app = Peer::spawn(
        "clinicdesk",
        Command::new(binary())
            .arg("--profile")
            .arg(profile.path())
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env("CLINICDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let stderr = app.take_stderr();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                let done = line.contains("first call log rows on screen");
                log.push(line);
                if done {
                    break;
                }
            }
            Err(_) => assert!(app.is_running(), "clinicdesk exited:\n{}", log.join("\n")),
        }
        assert!(std::time::Instant::now() < deadline, "no rows on screen after 60 s:\n{}", log.join("\n"));
    }
    // Rows arrive one frame after they are read: let that frame render.
    std::thread::sleep(Duration::from_millis(500));
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("window.png");
    let status = Command::new(import).args(["-display", &display.name, "-window", "root"]).arg(&shot).status().unwrap();
    assert!(status.success(), "screenshot failed");
    let colours = Command::new(identify).args(["-format", "%k %[fx:standard_deviation]"]).arg(&shot).output().unwrap();
    let text = String::from_utf8_lossy(&colours.stdout).into_owned();
    let mut parts = text.split_whitespace();
    let unique: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let deviation: f64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    assert!(unique > 50 && deviation > 0.02, "the screenshot looks blank ({text}); see {}", shot.display());
    assert!(app.is_running(), "clinicdesk died:\n{}", log.join("\n"));
}

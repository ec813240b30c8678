//! The desktop integration the Debian package installs: the desktop file and
//! the AppStream metadata pass their validators, and `clinicdesk --dial`
//! (what a click on a tel:, sip: or callto: link runs) hands the number to the
//! window already open, which calls it (sipp as the PBX), instead of opening
//! a second window. The package itself is built and installed by
//! packaging/check-deb.sh (a release build: too slow for every run).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clinicdesk::app::handover::{self, Claim, Request};
use clinicdesk::i18n::Language;
use clinicdesk::sip::phone::{self, PhoneCommand};

use super::gui::{app_on, app_with_phone, harness, has_text, settle};
use super::harness::{Display, Peer, binary, demo_profile, require, wait_for};
use super::sip::{scenario, sipp_waiting};

fn linux_asset(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/linux").join(name)
}

#[test]
fn the_desktop_file_is_valid_and_handles_phone_links() {
    let validate = require("desktop-file-validate", "desktop-file-utils");
    let file = linux_asset("clinicdesk.desktop");
    let out = Command::new(validate).arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "desktop-file-validate:\n{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().any(|l| l == "MimeType=x-scheme-handler/tel;x-scheme-handler/sip;x-scheme-handler/callto;"),
        "{text}"
    );
    assert!(text.lines().any(|l| l == "Exec=clinicdesk --dial %u"), "{text}");
}

#[test]
fn the_appstream_metadata_is_valid() {
    let appstreamcli = require("appstreamcli", "appstream");
    let file = linux_asset("app.clinicdesk.clinicdesk.metainfo.xml");
    let out = Command::new(appstreamcli).args(["validate", "--no-net", "--pedantic"]).arg(&file).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "appstreamcli validate:\n{said}");
    assert!(said.contains("Validation was successful") && !said.contains("pedantic:"), "not clean:\n{said}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("<launchable type=\"desktop-id\">clinicdesk.desktop</launchable>"));
    assert!(
        text.contains(&format!("<release version=\"{}\"", env!("CARGO_PKG_VERSION"))),
        "no release entry for this version"
    );
}

/// `--dial` with something that is not a number: the reason, a non-zero
/// exit, and no window (nothing listens on the profile's socket).
#[test]
fn dial_refuses_what_is_not_a_number() {
    let profile = tempfile::tempdir().unwrap();
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\n").unwrap();
    for (input, expected) in [
        ("rm -rf /", "“rm -rf /” is neither a phone number nor a SIP address"),
        ("tel:+7 495 <script>", "is neither a phone number nor a SIP address"),
        ("sip:100@pbx\r\nBYE", "is neither a phone number nor a SIP address"),
        ("https://example.com/", "“https:” links cannot be called"),
    ] {
        let started = Instant::now();
        let out = Command::new(binary())
            .arg("--profile")
            .arg(profile.path())
            .args(["--dial", input])
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{input:?}: {stderr}");
        assert!(stderr.contains(expected), "{input:?}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{input:?} took {:?}", started.elapsed());
    }
    assert!(!handover::socket_path(profile.path()).exists(), "no window listened");
    assert!(!profile.path().join("replica.sqlite").exists(), "nothing was created in the profile");
}

/// The window side without a display: a number handed over on the socket
/// becomes the phone's dial; without a phone the operator is told why.
#[test]
fn a_number_handed_to_the_window_is_called() {
    let profile = demo_profile(50, 50);
    let (link, end) = phone::link();
    let mut app = app_with_phone(profile.path(), Some(link));
    let Ok(Claim::Listening(inbox)) = handover::listen(profile.path(), Language::En) else {
        panic!("the socket was not ours")
    };
    app.take_numbers(inbox);
    let mut h = harness(app);
    h.run_steps(2);
    let target = handover::parse_dial("callto://+7 (495) 123-45-67").unwrap();
    assert_eq!(handover::hand_over(profile.path(), &Request::Dial(target)).unwrap(), Some(Ok(())));
    let start = Instant::now();
    let command = loop {
        h.step();
        if let Ok(c) = end.commands.try_recv() {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the window did not dial");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(command, PhoneCommand::Dial { number: "+74951234567".into() });

    // A second window of the same profile finds this one and does not take the socket.
    assert!(matches!(handover::listen(profile.path(), Language::En), Ok(Claim::Taken)));
    drop(h);
    assert!(!handover::socket_path(profile.path()).exists(), "the socket went with the window");

    // Telephony off: nothing is dialled, the window says why.
    let quiet = demo_profile(50, 50);
    let mut app = app_on(quiet.path());
    app.dial_when_ready(handover::parse_dial("tel:+74951234567").unwrap());
    let mut h = harness(app);
    settle(&mut h, "the reason shown", |h| {
        has_text(h, "+7 495 123-45-67 cannot be called: IP telephony is off on this workstation")
    });
}

/// A number given while the phone registers waits for it (the window says
/// so), and is called once the phone is registered.
#[test]
fn a_handed_over_number_waits_for_the_phone_to_register() {
    use clinicdesk::app::calls::PhoneMode;
    use clinicdesk::app::{ClinicApp, Startup};
    use clinicdesk::settings::{LocalSettings, Profile};
    use clinicdesk::sip::phone::PhoneEvent;
    use clinicdesk::store::Replica;

    let dir = demo_profile(50, 50);
    let profile = Profile::resolve(Some(dir.path()), None).unwrap();
    let settings = LocalSettings {
        language: Some("en".into()),
        user_login: Some("operator".into()),
        deadline_notifications: false,
        ..Default::default()
    };
    let (link, end) = phone::link();
    let mut app = ClinicApp::new(Startup {
        replica: Replica::open(&profile.replica_path()).map_err(|e| clinicdesk::app::Message::from(&e)),
        profile,
        settings,
        settings_problem: None,
        started: Instant::now(),
        frame_stats: false,
        phone: Some(link),
        phone_mode: PhoneMode::Account("101@pbx.clinic.test".into()),
    });
    app.dial_when_ready(handover::parse_dial("sip:100@pbx.clinic.test").unwrap());
    let mut h = harness(app);
    settle(&mut h, "the number waiting", |h| {
        has_text(h, "sip:100@pbx.clinic.test will be called as soon as the phone is registered")
    });
    assert!(end.commands.try_recv().is_err(), "dialled before the phone was registered");
    end.send(PhoneEvent::Registered { account: "101@pbx.clinic.test".into() });
    let start = Instant::now();
    let command = loop {
        h.step();
        if let Ok(c) = end.commands.try_recv() {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the window did not dial once registered");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(command, PhoneCommand::Dial { number: "sip:100@pbx.clinic.test".into() });
}

/// The window's stderr, collected by a thread.
fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The INVITEs sipp received for `number` (its message trace).
fn invites_for(dir: &Path, port: u16, number: &str) -> usize {
    let trace = std::fs::read_to_string(dir.join(format!("sipp-{port}.msg"))).unwrap_or_default();
    trace.matches(&format!("INVITE sip:{number}@127.0.0.1:{port} SIP/2.0")).count()
}

/// The real window under Xvfb, its phone registered with sipp: `--dial`
/// with no window open starts one (over the socket a crashed window left)
/// which calls once registered; `--dial` again hands the number to it and
/// exits at once, and the window calls again. Garbage on the socket is
/// refused and the window goes on.
#[test]
fn a_link_clicked_goes_to_the_open_window_which_calls_it() {
    let display = Display::start();
    let sipp_dir = tempfile::tempdir().unwrap();
    let (port, pbx) = sipp_waiting(sipp_dir.path(), &["-sf", &scenario("registrar_then_callee.xml"), "-m", "20"]);
    let profile = demo_profile(100, 200);
    std::fs::write(
        profile.path().join("settings.toml"),
        format!(
            "language = \"en\"\nuser_login = \"operator\"\ndeadline_notifications = false\n\
             [sip]\nserver = \"127.0.0.1:{port}\"\nusername = \"101\"\n"
        ),
    )
    .unwrap();
    // A window that crashed left its socket behind.
    let socket = handover::socket_path(profile.path());
    drop(UnixListener::bind(&socket).unwrap());

    let dial = |args: &[&str]| {
        let mut cmd = Command::new(binary());
        cmd.arg("--profile")
            .arg(profile.path())
            .args(args)
            .env("DISPLAY", &display.name)
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("CLINICDESK_SIP_PASSWORD", "secret")
            .env("CLINICDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    };
    let mut window = Peer::spawn("clinicdesk --dial (the window)", &mut dial(&["--dial", "tel:+7-495-123-45-67"]));
    let log = collect(window.take_stderr());
    let shown = |log: &Arc<Mutex<Vec<String>>>| log.lock().unwrap().join("\n");
    wait_for("the first call at sipp", Duration::from_secs(60), || {
        assert!(window.is_running(), "the window exited:\n{}", shown(&log));
        invites_for(sipp_dir.path(), port, "+74951234567") >= 1
    });
    // The window's log is read by a thread of its own: wait for the lines, they may trail the INVITE.
    for line in ["calling a number handed over to the window", "replacing the socket of a window that is gone"] {
        wait_for(&format!("{line:?} in the window's log"), Duration::from_secs(15), || shown(&log).contains(line));
    }
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is the operator's alone");

    // A link clicked now: handed over, this process exits at once, no second window.
    let started = Instant::now();
    let out = dial(&["--dial", "tel:+74951234567"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--dial with a window open failed: {said}");
    assert!(said.contains("+7 495 123-45-67 was handed to the ClinicDesk window already open"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(5), "the hand-over took {:?}", started.elapsed());
    wait_for("the second call at sipp", Duration::from_secs(30), || {
        assert!(window.is_running(), "the window exited:\n{}", shown(&log));
        invites_for(sipp_dir.path(), port, "+74951234567") >= 2
    });

    // From the menu (`Exec=clinicdesk --dial %u` with no link): the open window comes to the front.
    let out = dial(&["--dial"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.contains("was brought to the front"), "--dial alone: {said}");

    // Another local program writing garbage gets a reason; the window goes on.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(b"dial ;reboot\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("error ") && answer.contains("neither a phone number"), "{answer}");
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(b"format c:\n").unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("error Not a request ClinicDesk understands"), "{answer}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(window.is_running(), "the window died:\n{}", shown(&log));
    assert_eq!(invites_for(sipp_dir.path(), port, "+74951234567"), 2, "garbage was not dialled");
    drop(window);
    drop(pbx);
}

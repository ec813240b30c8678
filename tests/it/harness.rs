//! Starting and stopping the real peers, and test profiles.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clinicdesk::demo::{self, DemoOptions};
use clinicdesk::store::Replica;

/// The `clinicdesk` binary built for this test run.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_clinicdesk"))
}

/// Fails the test, naming the Debian package, when a peer is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(program)).find(|p| p.is_file()));
    match found {
        Some(p) => p,
        None => panic!("`{program}` is not installed: install the Debian package `{package}` (make test does)"),
    }
}

/// A profile directory with a generated replica (small, fast).
pub fn demo_profile(patients: usize, calls: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut replica = Replica::open(&dir.path().join("replica.sqlite")).expect("new replica");
    let opts = DemoOptions { patients, calls, seed: 7, now: clinicdesk::crm::now_millis() };
    demo::generate(&mut replica, &opts, &mut |_| {}).expect("demo data");
    dir
}

/// Content hash of a file, to prove it was not touched.
pub fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A child process killed when dropped.
pub struct Peer {
    child: Child,
}

impl Peer {
    pub fn spawn(name: &'static str, command: &mut Command) -> Peer {
        let child = command.stdin(Stdio::null()).spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Peer { child }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child's stdout (spawned with `Stdio::piped()`).
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().expect("stdout was not piped")
    }

    /// The child's stderr (spawned with `Stdio::piped()`).
    pub fn take_stderr(&mut self) -> std::process::ChildStderr {
        self.child.stderr.take().expect("stderr was not piped")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done` holds, or fails after `timeout` with `what`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether some process on this machine has bound `port` (UDP or TCP, v4
/// or v6), read from the kernel's socket tables: a peer started on that port
/// is listening once this holds, however long its start took.
pub fn port_bound(port: u16) -> bool {
    let needle = format!(":{port:04X} ");
    ["/proc/net/udp", "/proc/net/tcp", "/proc/net/udp6", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            // Each row: "sl local_address rem_address st ...", the local port in hex.
            text.lines()
                .skip(1)
                .any(|row| row.split_whitespace().nth(1).is_some_and(|local| format!("{local} ").contains(&needle)))
        })
    })
}

/// An X server of our own on a free display number.
pub struct Display {
    pub name: String,
    _xvfb: Peer,
}

impl Display {
    pub fn start() -> Display {
        // One test at a time looks for a free number (other processes may
        // too: a server counts as ours only once its lock holds our pid).
        static CHOOSING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _choosing = CHOOSING.lock().unwrap_or_else(|e| e.into_inner());
        let xvfb = require("Xvfb", "xvfb");
        for n in 90..140 {
            // A lock whose server is gone (killed by an earlier run) is stale: Xvfb takes it over.
            let lock = std::fs::read_to_string(format!("/tmp/.X{n}-lock")).ok();
            let held = lock
                .and_then(|pid| pid.trim().parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if held {
                continue;
            }
            let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
            let name = format!(":{n}");
            let mut peer = Peer::spawn(
                "Xvfb",
                Command::new(&xvfb)
                    .args([&name, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let socket = format!("/tmp/.X11-unix/X{n}");
            let pid = peer.child.id();
            let ours = || {
                std::fs::read_to_string(format!("/tmp/.X{n}-lock")).ok().and_then(|p| p.trim().parse::<u32>().ok())
                    == Some(pid)
            };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) && peer.is_running() {
                // Another run's server may have taken the number meanwhile:
                // ours then gives up, and the next number is tried.
                if ours() && Path::new(&socket).exists() {
                    return Display { name, _xvfb: peer };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start Xvfb on any display :90..:139");
    }
}

/// A private D-Bus session bus.
pub struct DbusSession {
    pub address: String,
    _dir: tempfile::TempDir,
    _daemon: Peer,
}

impl DbusSession {
    pub fn start() -> DbusSession {
        let daemon = require("dbus-daemon", "dbus");
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("bus");
        let address = format!("unix:path={}", socket.display());
        let peer = Peer::spawn(
            "dbus-daemon",
            Command::new(daemon)
                .args(["--session", "--nofork", "--nopidfile", "--address", &address])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        wait_for("the D-Bus session socket", Duration::from_secs(10), || socket.exists());
        DbusSession { address, _dir: dir, _daemon: peer }
    }

    /// Starts gnome-keyring's Secret Service on this bus, its keyrings in
    /// `home`, unlocked, and waits until it answers.
    pub fn start_keyring(&self, home: &Path) {
        use std::io::Write;
        let daemon = require("gnome-keyring-daemon", "gnome-keyring");
        let mut keyring = Command::new(daemon)
            .args(["--unlock", "--components=secrets", "--daemonize"])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start gnome-keyring-daemon: {e}"));
        if let Some(mut stdin) = keyring.stdin.take() {
            stdin.write_all(b"unlock-pw").expect("unlock password to gnome-keyring-daemon");
        }
        let started = keyring.wait_with_output().expect("gnome-keyring-daemon");
        assert!(started.status.success(), "gnome-keyring-daemon did not start");
        // It forks before it owns its name on the bus.
        self.wait_for_name("org.freedesktop.secrets");
    }

    /// Waits until a service owns `name` on this bus (daemons that fork
    /// return before they do).
    pub fn wait_for_name(&self, name: &str) {
        let send = require("dbus-send", "dbus");
        wait_for(&format!("{name} on the bus"), Duration::from_secs(15), || {
            Command::new(&send)
                .arg(format!("--bus={}", self.address))
                .args(["--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
                .arg("org.freedesktop.DBus.NameHasOwner")
                .arg(format!("string:{name}"))
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
        });
    }
}

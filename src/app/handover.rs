//! A number handed to the window that is already open: a click on a `tel:`,
//! `sip:` or `callto:` link starts `clinicdesk --dial URI`, which gives the
//! number to the window of its profile instead of opening a second one.
//!
//! The window listens on a Unix socket in its profile directory,
//! `window.sock`, mode 0600 (bound under a private name, then renamed into
//! place). One request per connection, one line: `dial NUMBER_OR_URI` (the
//! window calls it) or `show` (the window comes to the front); the answer
//! is one line, `ok` or `error REASON`. A socket left behind by a window
//! that crashed refuses connections: the next window replaces it. The
//! listener is a thread of its own; it checks what it is given
//! ([`parse_dial`]), queues it and wakes the window, which never waits on
//! the socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::i18n::{I18n, Language};
use crate::services::Message;

/// The socket's name in the profile directory.
pub const SOCKET_NAME: &str = "window.sock";
/// Longest request line read; a longer one is refused.
const MAX_LINE: u64 = 1024;
/// Longest number or address accepted.
const MAX_TARGET: usize = 256;
/// How long one connection may take to send its line or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// The handover socket of a profile directory.
pub fn socket_path(profile_dir: &Path) -> PathBuf {
    profile_dir.join(SOCKET_NAME)
}

/// Something checked to be callable: a number (digits, `*`, `#`, a leading
/// `+`) or a SIP address (`sip:user@host`), as the softphone's dial takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialTarget(String);

impl DialTarget {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// How it reads in a message: `+7 495 123-45-67`, a SIP address as it is.
    /// (A number that reads as an integer would lose its `+` as a message
    /// argument: such a one is shown as its `tel:` link.)
    pub fn shown(&self, country: crate::crm::Country) -> String {
        if self.0.starts_with("sip") {
            return self.0.clone();
        }
        match crate::crm::Phone::parse(&self.0, country).map(|p| p.display()) {
            Ok(readable) if readable.contains(' ') => readable,
            _ if self.0.starts_with('+') => format!("tel:{}", self.0),
            _ => self.0.clone(),
        }
    }
}

impl std::fmt::Display for DialTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads what a link or another program asks to call: `tel:+7-495-123-45-67`,
/// `sip:100@pbx`, `callto:+74951234567`, `callto://100@pbx`, or a plain number
/// in any national form. Anything else is refused with the reason.
pub fn parse_dial(input: &str) -> Result<DialTarget, Message> {
    let invalid = || Message::new("dial-invalid").with("input", shown(input));
    let t = input.trim();
    if t.is_empty() {
        return Err(Message::new("dial-empty"));
    }
    if t.len() > MAX_LINE as usize || t.chars().any(char::is_control) {
        return Err(invalid());
    }
    let (scheme, rest) = match t.split_once(':') {
        Some((s, rest)) if is_scheme(s) => (Some(s.to_ascii_lowercase()), rest),
        _ => (None, t),
    };
    let target = match scheme.as_deref() {
        Some("tel") => number(&percent_decode(rest).ok_or_else(invalid)?),
        Some("callto") => {
            let rest = percent_decode(rest).ok_or_else(invalid)?;
            let rest = rest.trim_start_matches('/');
            // Skype-style `callto:name?call` options are not part of the address.
            let rest = rest.split('?').next().unwrap_or_default();
            let rest = rest.strip_prefix("sip:").unwrap_or(rest);
            number(rest).or_else(|| rest.contains('@').then(|| sip_address("sip", rest)).flatten())
        }
        Some(s @ ("sip" | "sips")) => sip_address(s, rest),
        Some(other) => return Err(Message::new("dial-scheme").with("scheme", shown(other))),
        None => {
            let plain = percent_decode(t).ok_or_else(invalid)?;
            number(&plain).or_else(|| plain.contains('@').then(|| sip_address("sip", &plain)).flatten())
        }
    };
    target.map(DialTarget).ok_or_else(invalid)
}

/// A URI scheme (RFC 3986): a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The input as it may be shown in a message: control characters escaped, at most 80 characters.
fn shown(input: &str) -> String {
    let mut out: String = input.trim().chars().flat_map(char::escape_debug).take(80).collect();
    if input.trim().chars().flat_map(char::escape_debug).nth(80).is_some() {
        out.push('…');
    }
    out
}

/// `%2B7%20495` → `+7 495`; None for a broken escape or what is not UTF-8 text.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// A phone number without its visual separators and `tel:` parameters
/// (`;phone-context=…`, `;ext=…`): digits, `*`, `#` and a leading `+`.
fn number(s: &str) -> Option<String> {
    let s = s.split(';').next().unwrap_or_default();
    let digits: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}')).collect();
    let valid = (1..=32).contains(&digits.len())
        && digits.chars().any(|c| c.is_ascii_digit())
        && digits
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0));
    valid.then_some(digits)
}

/// A SIP address as the softphone's dial takes it, `sip:user@host[:port][;params]`;
/// URI headers (`?…`, which could add headers to our INVITE) are dropped.
fn sip_address(scheme: &str, rest: &str) -> Option<String> {
    let rest = rest.split('?').next().unwrap_or_default();
    let ok_chars = rest.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\' | '`' | '{' | '}'));
    if !ok_chars || rest.is_empty() || rest.len() > MAX_TARGET {
        return None;
    }
    let text = format!("{scheme}:{rest}");
    let uri = crate::sip::SipUri::parse(&text).ok()?;
    if uri.password.is_some() || matches!(&uri.host, crate::sip::Host::Domain(d) if d.is_empty()) {
        return None;
    }
    Some(text)
}

/// What a window is asked over the socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Dial(DialTarget),
    /// Come to the front (a second start without a number).
    Show,
}

/// The window's end: what other programs handed over, and the socket,
/// removed when this is dropped (if it is still ours).
pub struct Inbox {
    requests: Receiver<Request>,
    waker: Arc<OnceLock<egui::Context>>,
    stop: Arc<AtomicBool>,
    path: PathBuf,
    /// The socket file's inode: another window's socket at the same path is left alone.
    inode: u64,
}

/// Who answers on a profile's socket.
pub enum Claim {
    /// This process does: its window takes what is handed over.
    Listening(Inbox),
    /// A window of this profile is already open and answers.
    Taken,
}

/// Claims the profile's socket for this window and starts listening on a
/// thread of its own, or finds that a live window already has it. A stale
/// socket (a crashed window: connections refused) is replaced; something
/// else at that path is an error and is left untouched.
pub fn listen(profile_dir: &Path, language: Language) -> std::io::Result<Claim> {
    let path = socket_path(profile_dir);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket; remove it", path.display()),
            ));
        }
        Ok(_) => match UnixStream::connect(&path) {
            Ok(_) => return Ok(Claim::Taken),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "replacing the socket of a window that is gone");
                std::fs::remove_file(&path)?;
            }
            Err(e) => return Err(e),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Bound under a private name and made 0600 before it appears under the
    // name others connect to.
    let private = profile_dir.join(format!(".{SOCKET_NAME}.{}", std::process::id()));
    let _ = std::fs::remove_file(&private);
    let listener = UnixListener::bind(&private)?;
    let placed = std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&private, &path))
        .and_then(|()| std::fs::symlink_metadata(&path));
    let inode = match placed {
        Ok(meta) => meta.ino(),
        Err(e) => {
            let _ = std::fs::remove_file(&private);
            return Err(e);
        }
    };
    let (tx, requests) = crossbeam_channel::unbounded();
    let waker = Arc::new(OnceLock::new());
    let stop = Arc::new(AtomicBool::new(false));
    let thread = Listener { tx, waker: waker.clone(), stop: stop.clone() };
    std::thread::Builder::new().name("handover".into()).spawn(move || thread.run(listener, &I18n::new(language)))?;
    tracing::info!(path = %path.display(), "taking numbers from other programs on this socket");
    Ok(Claim::Listening(Inbox { requests, waker, stop, path, inode }))
}

impl Inbox {
    /// Lets a handed-over request wake this window.
    pub fn wake(&self, ctx: &egui::Context) {
        let _ = self.waker.set(ctx.clone());
    }

    /// What was handed over since the last call (never waits).
    pub fn drain(&self) -> impl Iterator<Item = Request> + '_ {
        self.requests.try_iter()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours {
            // Wakes the thread from accept so it ends, then takes the name away.
            let _ = UnixStream::connect(&self.path);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct Listener {
    tx: Sender<Request>,
    waker: Arc<OnceLock<egui::Context>>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn run(self, listener: UnixListener, i18n: &I18n) {
        for stream in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            match stream {
                Ok(stream) => {
                    if let Err(e) = self.serve(stream, i18n) {
                        tracing::warn!(error = %e, "a handover connection failed");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the handover socket cannot accept");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }

    /// One connection: its line, checked, queued for the window, answered.
    fn serve(&self, stream: UnixStream, i18n: &I18n) -> std::io::Result<()> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut line = Vec::new();
        BufReader::new((&stream).take(MAX_LINE + 1)).read_until(b'\n', &mut line)?;
        let answer = match self.request(&line) {
            Ok(request) => {
                tracing::info!(?request, "handed over to the window");
                if self.tx.send(request).is_ok()
                    && let Some(ctx) = self.waker.get()
                {
                    ctx.request_repaint();
                }
                "ok".to_owned()
            }
            Err(message) => {
                let text = message.text(i18n);
                tracing::warn!(reason = %text, "a handover request refused");
                format!("error {}", text.replace(['\n', '\r'], " "))
            }
        };
        (&stream).write_all(format!("{answer}\n").as_bytes())?;
        // What the client sent beyond the line is read and dropped: closed
        // with unread data, the socket would reset and lose the answer.
        stream.set_nonblocking(true)?;
        let mut rest = [0u8; 4096];
        let mut dropped = 0;
        while dropped < 64 * 1024 {
            match (&stream).read(&mut rest) {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
        Ok(())
    }

    fn request(&self, line: &[u8]) -> Result<Request, Message> {
        let bad = || Message::new("handover-bad-request").with("request", shown(&String::from_utf8_lossy(line)));
        if line.len() as u64 > MAX_LINE {
            return Err(bad());
        }
        let text = std::str::from_utf8(line).map_err(|_| bad())?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        match text.split_once(' ') {
            Some(("dial", target)) => parse_dial(target).map(Request::Dial),
            None if text == "show" => Ok(Request::Show),
            _ => Err(bad()),
        }
    }
}

/// The other end, in `clinicdesk --dial`: gives `request` to the window of
/// the profile. `Ok(None)` when no window listens there (none open, or one
/// that crashed); `Ok(Some(Err(reason)))` when the window refused it.
pub fn hand_over(profile_dir: &Path, request: &Request) -> std::io::Result<Option<Result<(), String>>> {
    let path = socket_path(profile_dir);
    let stream = match UnixStream::connect(&path) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::InvalidInput
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let line = match request {
        Request::Dial(target) => format!("dial {target}\n"),
        Request::Show => "show\n".to_owned(),
    };
    (&stream).write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new((&stream).take(MAX_LINE)).read_line(&mut answer)?;
    let answer = answer.trim_end();
    if answer == "ok" {
        return Ok(Some(Ok(())));
    }
    match answer.strip_prefix("error ") {
        Some(reason) => Ok(Some(Err(reason.to_owned()))),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the window at {} gave no answer ({answer:?})", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        parse_dial(input).unwrap_or_else(|m| panic!("{input:?} refused: {m:?}")).into_string()
    }

    fn refused(input: &str) -> &'static str {
        match parse_dial(input) {
            Ok(t) => panic!("{input:?} taken as {t:?}"),
            Err(m) => m.key,
        }
    }

    #[test]
    fn links_and_numbers_are_read() {
        assert_eq!(ok("tel:+74951234567"), "+74951234567");
        assert_eq!(ok("tel:+7-495-123-45-67"), "+74951234567");
        assert_eq!(ok("TEL:+7(495)123.45.67"), "+74951234567");
        assert_eq!(ok("tel:%2B7%20495%20123-45-67"), "+74951234567");
        assert_eq!(ok("tel:1234;phone-context=+7495"), "1234");
        assert_eq!(ok("sip:100@pbx.clinic.test"), "sip:100@pbx.clinic.test");
        assert_eq!(ok("sip:100@127.0.0.1:5062;transport=tcp"), "sip:100@127.0.0.1:5062;transport=tcp");
        assert_eq!(ok("sips:100@pbx.clinic.test"), "sips:100@pbx.clinic.test");
        assert_eq!(ok("sip:100@pbx?subject=x&priority=urgent"), "sip:100@pbx");
        assert_eq!(ok("callto:+74951234567"), "+74951234567");
        assert_eq!(ok("callto://+7 495 123-45-67"), "+74951234567");
        assert_eq!(ok("callto://100@pbx.clinic.test"), "sip:100@pbx.clinic.test");
        assert_eq!(ok(" 8 (495) 123-45-67 "), "84951234567");
        assert_eq!(ok("100"), "100");
        assert_eq!(ok("*21#"), "*21#");
        assert_eq!(ok("100@pbx"), "sip:100@pbx");
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(refused(""), "dial-empty");
        assert_eq!(refused("   "), "dial-empty");
        assert_eq!(refused("http://example.com"), "dial-scheme");
        assert_eq!(refused("javascript:alert(1)"), "dial-scheme");
        for bad in [
            "tel:",
            "tel:abc",
            "tel:+7 495 123 45 67 & rm -rf /",
            "tel:7+495",
            "tel:%zz",
            "tel:%00123",
            "callto:skype.name",
            "sip:",
            "sip:100@",
            "sip:user:secret@pbx",
            "sip:100@pbx\nBYE",
            "sip:<100@pbx>",
            "12345678901234567890123456789012345",
            "hello world",
            "---",
            "+",
        ] {
            assert_eq!(refused(bad), "dial-invalid", "{bad:?}");
        }
        assert_eq!(refused(&"1".repeat(5000)), "dial-invalid");
    }

    #[test]
    fn a_number_reads_in_messages_with_its_plus() {
        use crate::crm::Country;
        let shown = |input: &str| parse_dial(input).unwrap().shown(Country::Ru);
        assert_eq!(shown("tel:+74951234567"), "+7 495 123-45-67");
        assert_eq!(shown("8 (495) 123-45-67"), "+7 495 123-45-67");
        assert_eq!(shown("tel:+12125550123"), "tel:+12125550123");
        assert_eq!(shown("100"), "100");
        assert_eq!(shown("sip:100@pbx"), "sip:100@pbx");
    }

    #[test]
    fn a_message_shows_the_input_escaped_and_short() {
        let m = parse_dial("abc\u{1b}[2J").unwrap_err();
        assert_eq!(m.args, vec![("input", "abc\\u{1b}[2J".to_owned())]);
        let m = parse_dial(&"x".repeat(500)).unwrap_err();
        assert_eq!(m.args[0].1.chars().count(), 81);
    }

    #[test]
    fn the_socket_hands_over_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(hand_over(dir.path(), &Request::Show).unwrap(), None, "no window yet");
        let Claim::Listening(inbox) = listen(dir.path(), Language::En).unwrap() else { panic!("no window was open") };
        let mode = std::fs::metadata(inbox.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(listen(dir.path(), Language::En).unwrap(), Claim::Taken));

        let target = parse_dial("tel:+7-495-123-45-67").unwrap();
        assert_eq!(hand_over(dir.path(), &Request::Dial(target.clone())).unwrap(), Some(Ok(())));
        let mut raw = UnixStream::connect(inbox.path()).unwrap();
        raw.write_all(b"dial rm -rf /\n").unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("error ") && answer.contains("rm -rf /"), "{answer}");
        let mut raw = UnixStream::connect(inbox.path()).unwrap();
        raw.write_all(&[b'x'; 5000]).unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("error "), "{answer}");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(inbox.drain().collect::<Vec<_>>(), vec![Request::Dial(target)]);

        let path = inbox.path().to_owned();
        drop(inbox);
        assert!(!path.exists(), "the socket goes with the window");
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_foreign_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = socket_path(dir.path());
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "a crashed window's socket stays behind");
        assert_eq!(hand_over(dir.path(), &Request::Show).unwrap(), None);
        let Claim::Listening(inbox) = listen(dir.path(), Language::En).unwrap() else { panic!("the stale socket won") };
        assert_eq!(hand_over(dir.path(), &Request::Show).unwrap(), Some(Ok(())));
        drop(inbox);

        std::fs::write(&path, "not a socket").unwrap();
        assert!(listen(dir.path(), Language::En).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}

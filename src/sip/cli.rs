//! `clinicdesk phone`: the softphone without a window, for scripts, tests
//! and load measurements. It is the same user agent as the window's
//! ([`crate::sip::ua`]) with another face: events are JSON objects, one per
//! line on stdout; commands are words, one per line on stdin.
//!
//! Events: `started` (the bound SIP address), then the [`PhoneEvent`]s by
//! their snake_case names (`registered`, `registration_failed`, `incoming`
//! with the caller's card, `dialing`, `ringing`, `answered`, `held`,
//! `resumed`, `transferred`, `dtmf`, `ended` with the call's media figures
//! under `media`), and `error` for a command that could not be understood.
//!
//! Commands: `dial NUMBER`, `answer`, `reject`, `hangup`, `hold`, `resume`,
//! `mute`, `unmute`, `transfer TARGET`, `dtmf DIGITS`, `available`, `busy`,
//! `dnd` (the operator's status), `stats` (what the user agent holds, see
//! [`COMMANDS_HELP`]), `quit` (end of input quits too). `transfer`
//! takes a number or address (blind), or the id of another call (attended).
//! Each acts on the call it obviously means (the ringing one for `answer`, the
//! talking one for `hold`...); a call id may follow to name another. Finished
//! calls go into the profile's replica, as in the window.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use crossbeam_channel::{Receiver, select};

use super::sdp::Codec;
use super::ua::{self, AccountConfig, AudioChoice, UaConfig, WhenInCall};
use crate::crm::{CallDirection, CallResult, Millis, now_millis};
use crate::phone::{Availability, EndReason, PhoneCommand, PhoneEvent, PhoneLink};
use crate::settings::{LocalSettings, Profile, SipTransport, secrets};
use crate::store::Replica;
use crate::store::calls::FinishedCall;

/// The SIP transport on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

/// A codec on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodecArg {
    Opus,
    G722,
    Pcma,
    Pcmu,
}

/// The commands and events, for `clinicdesk phone --help`.
pub const COMMANDS_HELP: &str = "\
Commands on stdin, one per line: dial NUMBER, answer, reject, hangup, hold, resume, mute, unmute,
transfer TARGET, dtmf DIGITS (each may end with a call id), available, busy, dnd, stats, quit.

Events on stdout, one JSON object per line: started, registered, registration_failed, incoming
(with the caller's card), dialing, ringing, answered, held, resumed, transferred, dtmf, ended
(with the call's media figures), error.

`stats` prints what the user agent holds now, for load tests and leak hunting:
{\"event\":\"stats\",\"transactions\":N,\"client_transactions\":N,\"server_transactions\":N,
\"dialogs\":N,\"calls\":N,\"pending\":N,\"timers\":N,\"rss_kib\":N}. Once calls have ended and
the transactions' last timers have run out (Timer J and L: 32 s over UDP) the counts are 0;
rss_kib is the process's resident memory (VmRSS; null where /proc is not there).";

/// Options of `clinicdesk phone`.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(after_help = COMMANDS_HELP)]
pub struct PhoneArgs {
    /// Registrar and proxy (host or host:port); default: settings.toml [sip] server.
    #[arg(long)]
    pub server: Option<String>,
    /// The extension to register; default: [sip] username.
    #[arg(long)]
    pub user: Option<String>,
    /// The digest user name when it differs; default: [sip] auth_username.
    #[arg(long = "auth-user")]
    pub auth_user: Option<String>,
    /// The name shown to the people we call; default: [sip] display_name.
    #[arg(long)]
    pub display_name: Option<String>,
    #[arg(long, value_enum)]
    pub transport: Option<TransportArg>,
    /// With TLS: the clinic's CA certificate (PEM), trusted beside the system's roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// The local SIP address (IP:PORT, port 0 for any). Without a server the
    /// phone registers nowhere and dials full SIP addresses (peer to peer).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Answer every incoming call, after SECONDS (0 when not given).
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, require_equals = true, default_missing_value = "0")]
    pub auto_answer: Option<f64>,
    /// A WAV file played as the microphone (looped).
    #[arg(long, value_name = "WAV")]
    pub play: Option<PathBuf>,
    /// Records what is received into a WAV file (`-2`, `-3`... for later calls).
    #[arg(long, value_name = "WAV")]
    pub record: Option<PathBuf>,
    /// Also records what is sent, into this WAV file.
    #[arg(long, value_name = "WAV")]
    pub record_sent: Option<PathBuf>,
    /// Uses the sound cards of settings.toml [audio] instead of silence.
    #[arg(long, conflicts_with_all = ["play", "record", "record_sent"])]
    pub devices: bool,
    /// Refuses a second call with 486 Busy Here instead of letting it ring.
    #[arg(long)]
    pub no_call_waiting: bool,
    /// Takes calls from any address while registered (by default only the
    /// registrar's: an INVITE from elsewhere gets 403 and never rings).
    #[arg(long)]
    pub calls_from_anywhere: bool,
    /// The registration interval to ask for, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub expires: u32,
    /// The CRLF keep-alive interval toward the registrar, in seconds (keeps NAT bindings open).
    #[arg(long, value_name = "SECONDS", default_value_t = 25)]
    pub keepalive: u64,
    /// Adds to each `incoming` event how long it took (`timing`: the caller card lookup and the whole
    /// handling of the INVITE, µs), and prints their percentiles (`timings`) on exit.
    #[arg(long)]
    pub timings: bool,
    /// Codecs offered, in order of preference.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [CodecArg::Opus, CodecArg::G722, CodecArg::Pcma, CodecArg::Pcmu])]
    pub codecs: Vec<CodecArg>,
}

/// The password: `CLINICDESK_SIP_PASSWORD`, else the keyring (`None` when neither has one).
fn sip_password(account: &str) -> anyhow::Result<Option<String>> {
    secrets::sip_password(account).with_context(|| {
        format!(
            "no SIP password for {account}: set CLINICDESK_SIP_PASSWORD, or keep it with \
             `clinicdesk password set --kind sip --account {account}`"
        )
    })
}

/// Turns the options and the profile's settings into the user agent's configuration:
/// the workstation's phone ([`UaConfig::for_workstation`]) with the options applied.
fn config(profile: &Profile, settings: &LocalSettings, args: &PhoneArgs) -> anyhow::Result<UaConfig> {
    let mut settings = settings.clone();
    let sip = &mut settings.sip;
    for (arg, setting) in [
        (&args.server, &mut sip.server),
        (&args.user, &mut sip.username),
        (&args.auth_user, &mut sip.auth_username),
        (&args.display_name, &mut sip.display_name),
    ] {
        if let Some(value) = arg {
            *setting = value.clone();
        }
    }
    if let Some(t) = args.transport {
        sip.transport = match t {
            TransportArg::Udp => SipTransport::Udp,
            TransportArg::Tcp => SipTransport::Tcp,
            TransportArg::Tls => SipTransport::Tls,
        };
    }
    let replica = Some(profile.replica_path()).filter(|p| p.exists());
    let mut cfg = if sip.server.trim().is_empty() {
        if args.listen.is_none() {
            bail!(
                "no SIP server: set [sip] server in settings.toml, pass --server HOST[:PORT], \
                 or --listen IP:PORT to take calls without a registrar"
            );
        }
        UaConfig { transport: sip.transport.into(), country: settings.country, replica, ..UaConfig::default() }
    } else {
        if sip.username.trim().is_empty() {
            bail!("no SIP user: set [sip] username in settings.toml or pass --user");
        }
        let label = sip.label();
        UaConfig::for_workstation(&settings, replica, sip_password(&label)?)?
    };
    cfg.audio = if args.devices {
        AudioChoice::Devices {
            input: settings.audio.input_device.clone(),
            output: settings.audio.output_device.clone(),
        }
    } else if args.play.is_some() || args.record.is_some() || args.record_sent.is_some() {
        if let Some(p) = &args.play {
            crate::media::WavSource::open(p).with_context(|| format!("--play {}", p.display()))?;
        }
        AudioChoice::Files {
            play: args.play.clone(),
            record: args.record.clone(),
            record_sent: args.record_sent.clone(),
        }
    } else {
        // Headless: no sound card needed unless asked for.
        AudioChoice::Silent
    };
    cfg.auto_answer = match args.auto_answer {
        Some(s) if !(0.0..=86_400.0).contains(&s) => bail!("--auto-answer takes 0 to 86400 seconds, not {s}"),
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let mut codecs = Vec::new();
    for c in &args.codecs {
        let codec = match c {
            CodecArg::Opus => Codec::Opus,
            CodecArg::G722 => Codec::G722,
            CodecArg::Pcma => Codec::Pcma,
            CodecArg::Pcmu => Codec::Pcmu,
        };
        if !codecs.contains(&codec) {
            codecs.push(codec);
        }
    }
    if codecs.is_empty() {
        bail!("--codecs needs at least one of opus, g722, pcma, pcmu");
    }
    cfg.codecs = codecs;
    if let Some(listen) = args.listen {
        cfg.listen = listen;
    }
    cfg.timings = args.timings;
    if let Some(ca) = &args.ca_file {
        cfg.tls_ca = Some(ca.clone());
    }
    cfg.when_in_call = if args.no_call_waiting { WhenInCall::Busy } else { WhenInCall::Ring };
    cfg.calls_only_from_registrar = !args.calls_from_anywhere;
    cfg.register_expires = args.expires.max(1);
    cfg.keepalive = Duration::from_secs(args.keepalive.max(1));
    cfg.local_user = settings.user_login.clone().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "operator".into());
    Ok(cfg)
}

/// What the command face remembers of a call: enough to pick the call a
/// command means, and to log it in the replica when it ends.
#[derive(Debug, Clone)]
struct CallView {
    order: u64,
    direction: CallDirection,
    number: String,
    did: Option<String>,
    person_id: Option<String>,
    started_at: Millis,
    answered_at: Option<Millis>,
    state: ViewState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewState {
    Ringing,
    Dialing,
    Talking,
    Held,
}

#[derive(Default)]
struct Calls {
    next: u64,
    map: HashMap<String, CallView>,
}

impl Calls {
    /// The latest call in one of `states`.
    fn latest(&self, states: &[ViewState]) -> Option<String> {
        self.map.iter().filter(|(_, c)| states.contains(&c.state)).max_by_key(|(_, c)| c.order).map(|(k, _)| k.clone())
    }

    fn add(&mut self, call_id: &str, view: CallView) {
        self.next += 1;
        self.map.insert(call_id.to_owned(), CallView { order: self.next, ..view });
    }

    fn set(&mut self, call_id: &str, state: ViewState) {
        if let Some(c) = self.map.get_mut(call_id) {
            if state == ViewState::Talking && c.answered_at.is_none() {
                c.answered_at = Some(now_millis());
            }
            c.state = state;
        }
    }
}

/// One command line → the command, or what is wrong with it.
fn parse_command(line: &str, calls: &Calls) -> Result<Option<PhoneCommand>, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else { return Ok(None) };
    let rest: Vec<&str> = words.collect();
    use ViewState::*;
    let pick = |explicit: Option<&&str>, states: &[ViewState], what: &str| -> Result<String, String> {
        match explicit {
            Some(id) if calls.map.contains_key(*id) => Ok((*id).to_owned()),
            Some(id) => Err(format!("no call {id}")),
            None => calls.latest(states).ok_or_else(|| format!("no {what} call")),
        }
    };
    let command = match verb.to_ascii_lowercase().as_str() {
        "dial" | "call" => {
            if rest.is_empty() {
                return Err("dial needs a number or SIP address".into());
            }
            PhoneCommand::Dial { number: rest.join(" ") }
        }
        "answer" => PhoneCommand::Answer { call_id: pick(rest.first(), &[Ringing], "ringing")? },
        "reject" => PhoneCommand::Reject { call_id: pick(rest.first(), &[Ringing], "ringing")? },
        "hangup" | "bye" => {
            let id = match rest.first() {
                Some(_) => pick(rest.first(), &[], "")?,
                None => calls
                    .latest(&[Talking, Held])
                    .or_else(|| calls.latest(&[Dialing, Ringing]))
                    .ok_or_else(|| "no call to hang up".to_owned())?,
            };
            PhoneCommand::Hangup { call_id: id }
        }
        "hold" => PhoneCommand::Hold { call_id: pick(rest.first(), &[Talking], "talking")? },
        "resume" | "unhold" => PhoneCommand::Resume { call_id: pick(rest.first(), &[Held], "held")? },
        "mute" | "unmute" => PhoneCommand::Mute {
            call_id: pick(rest.first(), &[Talking, Held], "talking")?,
            on: verb.eq_ignore_ascii_case("mute"),
        },
        "transfer" | "refer" => {
            let Some(target) = rest.first() else { return Err("transfer needs a target".into()) };
            // A target that is one of our calls is an attended transfer: the call moved is the
            // latest other one (usually the caller on hold while we asked the target).
            let call_id = match rest.get(1) {
                Some(_) => pick(rest.get(1), &[], "")?,
                None if calls.map.contains_key(*target) => calls
                    .map
                    .iter()
                    .filter(|(id, c)| id.as_str() != *target && matches!(c.state, Talking | Held))
                    .max_by_key(|(_, c)| c.order)
                    .map(|(id, _)| id.clone())
                    .ok_or_else(|| "no other call to transfer".to_owned())?,
                None => pick(None, &[Talking, Held], "talking")?,
            };
            PhoneCommand::Transfer { call_id, target: (*target).to_owned() }
        }
        "dtmf" => {
            let Some(digits) = rest.first() else { return Err("dtmf needs digits".into()) };
            if !digits.chars().all(|c| c.is_ascii_digit() || matches!(c.to_ascii_uppercase(), '*' | '#' | 'A'..='D')) {
                return Err(format!("{digits:?}: DTMF digits are 0-9, *, #, A-D"));
            }
            PhoneCommand::Dtmf {
                call_id: pick(rest.get(1), &[Talking, Held], "talking")?,
                digits: (*digits).to_owned(),
            }
        }
        // The operator's status: whether new calls ring, or are declined busy (486) or unavailable (480).
        "available" => PhoneCommand::SetAvailability(Availability::Available),
        "busy" => PhoneCommand::SetAvailability(Availability::Busy),
        "dnd" => PhoneCommand::SetAvailability(Availability::DoNotDisturb),
        other => {
            return Err(format!(
                "unknown command {other:?} (dial, answer, reject, hangup, hold, resume, mute, unmute, transfer, \
                 dtmf, available, busy, dnd, stats, quit)"
            ));
        }
    };
    Ok(Some(command))
}

/// Writes one JSON object as a line on stdout.
fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Writes finished calls to the replica on a thread of its own: recording a
/// call (the missed-call rules, an inquiry, a task) must never hold up the
/// next call's `incoming` line, which in a call center comes right after.
struct CallLog {
    calls: Option<crossbeam_channel::Sender<FinishedCall>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CallLog {
    fn start(mut replica: Replica) -> std::io::Result<CallLog> {
        let (tx, rx) = crossbeam_channel::unbounded::<FinishedCall>();
        let thread = std::thread::Builder::new().name("phone-call-log".into()).spawn(move || {
            for call in rx {
                if let Err(e) = replica.record_call(&call) {
                    tracing::warn!(error = %e, "the call could not be logged in the replica");
                }
            }
        })?;
        Ok(CallLog { calls: Some(tx), thread: Some(thread) })
    }

    fn record(&self, call: FinishedCall) {
        if let Some(tx) = &self.calls {
            let _ = tx.send(call);
        }
    }
}

impl Drop for CallLog {
    /// Every call handed over is written before the phone exits.
    fn drop(&mut self) {
        self.calls = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The face's state: calls, the call log, the figures seen.
struct Face {
    calls: Calls,
    log: Option<CallLog>,
    figures: HashMap<String, Option<crate::media::CallStats>>,
    /// The quality class last printed per call: `quality` lines are
    /// printed when it changes, not every second.
    quality: HashMap<String, crate::media::Quality>,
    /// `--timings`: of each incoming call, (card lookup, whole handling) in µs.
    timings: Option<Timings>,
}

/// Where the user agent reports incoming calls' timings, and those seen:
/// (card lookup, whole handling) in µs.
type Timings = (Receiver<ua::IncomingTiming>, Vec<(u64, u64)>);

impl Face {
    fn on_event(&mut self, event: PhoneEvent, figures: &Receiver<ua::CallFigures>) {
        for f in figures.try_iter() {
            self.figures.insert(f.call_id, f.stats);
        }
        let mut value = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
        match &event {
            PhoneEvent::Incoming { call_id, from, did, card, .. } => {
                if let Some((timings, seen)) = &mut self.timings
                    && let Some(t) = timings.try_iter().find(|t| &t.call_id == call_id)
                {
                    seen.push((t.card_us, t.handled_us));
                    if let serde_json::Value::Object(map) = &mut value {
                        let timing = serde_json::json!({"card_us": t.card_us, "handled_us": t.handled_us});
                        map.insert("timing".into(), timing);
                    }
                }
                let person_id = card.as_ref().and_then(|c| match c.people.as_slice() {
                    [only] => Some(only.id.clone()),
                    _ => None,
                });
                let view = CallView {
                    order: 0,
                    direction: CallDirection::In,
                    number: from.clone(),
                    did: did.clone(),
                    person_id,
                    started_at: now_millis(),
                    answered_at: None,
                    state: ViewState::Ringing,
                };
                self.calls.add(call_id, view);
            }
            PhoneEvent::Dialing { call_id, to, .. } => {
                let view = CallView {
                    order: 0,
                    direction: CallDirection::Out,
                    number: to.clone(),
                    did: None,
                    person_id: None,
                    started_at: now_millis(),
                    answered_at: None,
                    state: ViewState::Dialing,
                };
                self.calls.add(call_id, view);
            }
            PhoneEvent::Answered { call_id } | PhoneEvent::Resumed { call_id } => {
                self.calls.set(call_id, ViewState::Talking)
            }
            PhoneEvent::Held { call_id } => self.calls.set(call_id, ViewState::Held),
            PhoneEvent::Quality { call_id, quality, .. }
                if self.quality.insert(call_id.clone(), *quality) == Some(*quality) =>
            {
                return;
            }
            PhoneEvent::Ended { call_id, reason, .. } => {
                self.quality.remove(call_id);
                let stats = self.figures.remove(call_id).flatten();
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert("media".into(), serde_json::to_value(&stats).unwrap_or(serde_json::Value::Null));
                }
                if let Some(view) = self.calls.map.remove(call_id) {
                    self.log_call(call_id, &view, *reason);
                }
            }
            _ => {}
        }
        print_json(&value);
    }

    /// Logs a finished call in the replica (the missed-call rules apply there).
    fn log_call(&mut self, call_id: &str, view: &CallView, reason: EndReason) {
        let Some(log) = &self.log else { return };
        let result = match (view.answered_at, reason) {
            (Some(_), _) => CallResult::Answered,
            (None, EndReason::Busy) => CallResult::Busy,
            (None, EndReason::Failed) => CallResult::Failed,
            (None, _) => CallResult::Missed,
        };
        let call = FinishedCall {
            id: None,
            direction: view.direction,
            peer: view.number.clone(),
            did: view.did.clone(),
            person_id: view.person_id.clone(),
            operator_id: None,
            started_at: view.started_at,
            answered_at: view.answered_at,
            ended_at: now_millis(),
            result,
            sip_call_id: Some(call_id.to_owned()),
        };
        log.record(call);
    }
}

/// Runs the softphone until `quit`, the end of input, or SIGINT/SIGTERM.
pub fn run_phone(profile: Option<&Path>, args: PhoneArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::resolve(profile, None)?;
    let settings = LocalSettings::load(&profile.settings_path())?;
    if !settings.telephony_enabled {
        bail!(
            "IP telephony is disabled on this workstation (telephony_enabled = false in {}): nothing registered",
            profile.settings_path().display()
        );
    }
    let cfg = config(&profile, &settings, &args)?;
    let account = cfg.account.as_ref().map(AccountConfig::label);
    let transport = cfg.transport;
    let timings = cfg.timings;
    let log = match &cfg.replica {
        Some(path) => match Replica::open(path) {
            Ok(r) => Some(CallLog::start(r)?),
            Err(e) => {
                tracing::warn!(error = %e, "finished calls will not be logged");
                None
            }
        },
        None => None,
    };
    let (link, end): (PhoneLink, _) = crate::phone::link();
    let handle = ua::start(cfg, end)?;
    print_json(&serde_json::json!({
        "event": "started",
        "listen": handle.local_addr().to_string(),
        "transport": transport.as_str().to_ascii_lowercase(),
        "account": account,
    }));

    let (lines_tx, lines) = crossbeam_channel::unbounded::<Option<String>>();
    let _ = std::thread::Builder::new().name("phone-stdin".into()).spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) => {
                    if lines_tx.send(Some(l)).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = lines_tx.send(None);
    });
    let signals = quit_on_signal();

    let timings = timings.then(|| (handle.timings().clone(), Vec::new()));
    let mut face = Face { calls: Calls::default(), log, figures: HashMap::new(), quality: HashMap::new(), timings };
    let events = link.events().clone();
    loop {
        select! {
            recv(events) -> ev => match ev {
                Ok(ev) => face.on_event(ev, handle.figures()),
                Err(_) => break,
            },
            recv(lines) -> line => match line {
                Ok(Some(line)) => {
                    let line = line.trim();
                    if line.eq_ignore_ascii_case("quit") || line.eq_ignore_ascii_case("exit") {
                        break;
                    }
                    if line.eq_ignore_ascii_case("stats") {
                        print_stats(&handle);
                        continue;
                    }
                    match parse_command(line, &face.calls) {
                        Ok(Some(command)) => link.send(command),
                        Ok(None) => {}
                        Err(message) => print_json(&serde_json::json!({"event": "error", "message": message, "command": line})),
                    }
                }
                Ok(None) | Err(_) => break,
            },
            recv(signals) -> _ => break,
        }
        if !handle.is_running() {
            tracing::error!("the user agent stopped");
            break;
        }
    }
    let figures = handle.figures().clone();
    handle.shutdown();
    for ev in events.try_iter() {
        face.on_event(ev, &figures);
    }
    drop(link);
    if let Some((_, seen)) = &face.timings {
        print_json(&timings_summary(seen));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `timings` line: percentiles of the incoming calls' handling, in ms.
fn timings_summary(seen: &[(u64, u64)]) -> serde_json::Value {
    let percentiles = |mut v: Vec<u64>| -> serde_json::Value {
        v.sort_unstable();
        let at = |q: f64| -> f64 {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v.get(i).map_or(0.0, |us| *us as f64 / 1000.0)
        };
        serde_json::json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0)})
    };
    serde_json::json!({
        "event": "timings",
        "calls": seen.len(),
        "card": percentiles(seen.iter().map(|t| t.0).collect()),
        "handled": percentiles(seen.iter().map(|t| t.1).collect()),
    })
}

/// Prints the `stats` event: the user agent's counts and the resident memory.
fn print_stats(handle: &ua::UaHandle) {
    // The user agent answers between two messages; under load those queue up, so be patient.
    match handle.stats(Duration::from_secs(10)) {
        Some(stats) => print_json(&serde_json::json!({
            "event": "stats",
            "transactions": stats.transactions(),
            "client_transactions": stats.client_transactions,
            "server_transactions": stats.server_transactions,
            "dialogs": stats.dialogs,
            "calls": stats.calls,
            "pending": stats.pending,
            "timers": stats.timers,
            "rss_kib": rss_kib(),
        })),
        None => print_json(&serde_json::json!({
            "event": "error",
            "message": "the user agent did not answer",
            "command": "stats",
        })),
    }
}

/// This process's resident memory in KiB (VmRSS of /proc/self/status), where Linux tells it.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

/// A channel that receives once when SIGINT or SIGTERM arrives.
fn quit_on_signal() -> Receiver<()> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let _ = std::thread::Builder::new().name("phone-signals".into()).spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
                else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
            let _ = tx.send(());
        });
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(state: ViewState) -> CallView {
        CallView {
            order: 0,
            direction: CallDirection::In,
            number: "+79001234567".into(),
            did: None,
            person_id: None,
            started_at: 0,
            answered_at: None,
            state,
        }
    }

    #[test]
    fn resident_memory_is_read_from_proc_status() {
        assert_eq!(parse_vm_rss("Name:\tclinicdesk\nVmHWM:\t  35140 kB\nVmRSS:\t   17252 kB\n"), Some(17252));
        assert_eq!(parse_vm_rss("Name:\tclinicdesk\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots\n"), None);
        if cfg!(target_os = "linux") {
            assert!(rss_kib().is_some_and(|k| k > 0));
        }
    }

    #[test]
    fn commands_pick_the_call_they_mean() {
        let mut calls = Calls::default();
        calls.add("talk", view(ViewState::Talking));
        calls.add("ring", view(ViewState::Ringing));
        assert_eq!(parse_command("answer", &calls), Ok(Some(PhoneCommand::Answer { call_id: "ring".into() })));
        assert_eq!(parse_command("hangup", &calls), Ok(Some(PhoneCommand::Hangup { call_id: "talk".into() })));
        assert_eq!(parse_command("hangup ring", &calls), Ok(Some(PhoneCommand::Hangup { call_id: "ring".into() })));
        assert_eq!(parse_command("hold", &calls), Ok(Some(PhoneCommand::Hold { call_id: "talk".into() })));
        assert!(parse_command("resume", &calls).unwrap_err().contains("no held call"));
        assert_eq!(
            parse_command("transfer 201", &calls),
            Ok(Some(PhoneCommand::Transfer { call_id: "talk".into(), target: "201".into() }))
        );
        let mut two = Calls::default();
        two.add("caller", view(ViewState::Held));
        two.add("consult", view(ViewState::Talking));
        assert_eq!(
            parse_command("transfer consult", &two),
            Ok(Some(PhoneCommand::Transfer { call_id: "caller".into(), target: "consult".into() }))
        );
        assert_eq!(
            parse_command("dial 8 (916) 123-45-67", &calls),
            Ok(Some(PhoneCommand::Dial { number: "8 (916) 123-45-67".into() }))
        );
        assert!(parse_command("dtmf 12x", &calls).is_err());
        assert!(parse_command("fly", &calls).unwrap_err().contains("unknown command"));
        assert_eq!(parse_command("   ", &calls), Ok(None));
        assert_eq!(parse_command("busy", &calls), Ok(Some(PhoneCommand::SetAvailability(Availability::Busy))));
        assert!(parse_command("answer nosuch", &calls).unwrap_err().contains("no call nosuch"));
    }
}

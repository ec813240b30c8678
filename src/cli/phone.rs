//! `clinicdesk phone`: the softphone without a window, for scripts, tests
//! and load measurements. It is the same user agent as the window's
//! ([`crate::sip::ua`]), started from the same settings
//! ([`crate::softphone::config`]), its calls followed by the same tracker
//! ([`crate::softphone::tracker`]), with another face: events are JSON
//! objects, one per line on stdout; commands are words, one per line on stdin.
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
//! calls go into the profile's replica, the same row as the window's (with
//! the operator of `user_login`).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use crossbeam_channel::{Receiver, select};

use crate::settings::{LocalSettings, Profile, SipTransport};
use crate::sip::phone::{self, Availability, PhoneCommand, PhoneEvent, PhoneLink};
use crate::sip::sdp::Codec;
use crate::sip::ua::{self, AccountConfig, AudioChoice, UaConfig, WhenInCall};
use crate::softphone::call_log::{CallLog, operator_id};
use crate::softphone::config::{SetupError, WithoutServer, ua_config};
use crate::softphone::tracker::{CallState, CallTracker, Followed};
use crate::store::Replica;

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
(with the call's media figures), error. registration_failed has the code, the reason and
retry_in_ms: when the phone registers again by itself (null after a wrong password, which
waits for new settings).

`stats` prints what the user agent holds now, for load tests and leak hunting:
{\"event\":\"stats\",\"transactions\":N,\"client_transactions\":N,\"server_transactions\":N,
\"dialogs\":N,\"calls\":N,\"pending\":N,\"timers\":N,\"registered\":B,\"register_expires\":N,
\"rss_kib\":N}. Once calls have ended and the transactions' last timers have run out (Timer J
and L: 32 s over UDP) the counts are 0; rss_kib is the process's resident memory (VmRSS; null
where /proc is not there); registered says whether the account's binding holds, and
register_expires is the interval the phone asks for (raised to a registrar's Min-Expires).";

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
    /// The first wait before registering again after a failure (no answer, 5xx), in seconds;
    /// later ones double up to 12 times it, and a refusal (403, 404...) starts at 12 times it
    /// and doubles up to 120 times (with the default: 5 s to a minute, a minute to ten).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub retry: f64,
    /// Hangs up an answered call that is not on hold when no RTP or RTCP has come for SECONDS
    /// (its BYE was lost); 0: never. Default: [sip] media_timeout_secs (30).
    #[arg(long, value_name = "SECONDS")]
    pub media_timeout: Option<u64>,
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

/// Turns the options and the profile's settings into the user agent's configuration:
/// the workstation's phone ([`ua_config`]) with the options applied.
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
    if let Some(secs) = args.media_timeout {
        sip.media_timeout_secs = secs;
    }
    if let Some(t) = args.transport {
        sip.transport = match t {
            TransportArg::Udp => SipTransport::Udp,
            TransportArg::Tcp => SipTransport::Tcp,
            TransportArg::Tls => SipTransport::Tls,
        };
    }
    let without_server = if args.listen.is_some() { WithoutServer::Direct } else { WithoutServer::Refuse };
    let mut cfg = match ua_config(&settings, without_server) {
        Ok(cfg) => cfg,
        Err(SetupError::NoServer) => bail!(
            "no SIP server: set [sip] server in settings.toml, pass --server HOST[:PORT], \
             or --listen IP:PORT to take calls without a registrar"
        ),
        Err(SetupError::TelephonyOff) => bail!(
            "IP telephony is disabled on this workstation (telephony_enabled = false in {}): nothing registered",
            profile.settings_path().display()
        ),
        Err(e) => return Err(e.into()),
    };
    cfg.cards = crate::softphone::cards::lookup(&profile.replica_path());
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
    if !(0.1..=600.0).contains(&args.retry) {
        bail!("--retry takes 0.1 to 600 seconds, not {}", args.retry);
    }
    cfg.register_retry = Duration::from_secs_f64(args.retry);
    cfg.keepalive = Duration::from_secs(args.keepalive.max(1));
    Ok(cfg)
}

/// One command line → the command, or what is wrong with it.
fn parse_command(line: &str, calls: &CallTracker) -> Result<Option<PhoneCommand>, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else { return Ok(None) };
    let rest: Vec<&str> = words.collect();
    use CallState::{Active as Talking, Dialing, Held, Ringing};
    let latest = |states: &[CallState]| calls.latest(states).map(|c| c.sip_call_id.clone());
    let pick = |explicit: Option<&&str>, states: &[CallState], what: &str| -> Result<String, String> {
        match explicit {
            Some(id) if calls.find(id).is_some() => Ok((*id).to_owned()),
            Some(id) => Err(format!("no call {id}")),
            None => latest(states).ok_or_else(|| format!("no {what} call")),
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
                None => latest(&[Talking, Held])
                    .or_else(|| latest(&[Dialing, Ringing]))
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
                None if calls.find(target).is_some() => calls
                    .calls
                    .iter()
                    .rev()
                    .find(|c| c.sip_call_id != *target && matches!(c.state, Talking | Held))
                    .map(|c| c.sip_call_id.clone())
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

/// The face's state: calls, the call log, the figures seen.
struct Face {
    calls: CallTracker,
    log: Option<CallLog>,
    /// The operator of this workstation, whom its calls are logged against.
    operator: Option<String>,
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
        // The call log (the missed-call rules apply there) is written as the window writes it.
        if let (Followed::Ended(call), Some(log)) = (self.calls.follow(&event, self.operator.as_deref()), &self.log) {
            log.record(*call);
        }
        let mut value = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
        match &event {
            PhoneEvent::Incoming { call_id, .. } => {
                if let Some((timings, seen)) = &mut self.timings
                    && let Some(t) = timings.try_iter().find(|t| &t.call_id == call_id)
                {
                    seen.push((t.card_us, t.handled_us));
                    if let serde_json::Value::Object(map) = &mut value {
                        let timing = serde_json::json!({"card_us": t.card_us, "handled_us": t.handled_us});
                        map.insert("timing".into(), timing);
                    }
                }
            }
            PhoneEvent::Quality { call_id, quality, .. }
                if self.quality.insert(call_id.clone(), *quality) == Some(*quality) =>
            {
                return;
            }
            PhoneEvent::Ended { call_id, .. } => {
                self.quality.remove(call_id);
                let stats = self.figures.remove(call_id).flatten();
                if let serde_json::Value::Object(map) = &mut value {
                    map.insert("media".into(), serde_json::to_value(&stats).unwrap_or(serde_json::Value::Null));
                }
            }
            _ => {}
        }
        print_json(&value);
    }
}

/// Runs the softphone until `quit`, the end of input, or SIGINT/SIGTERM.
pub fn run_phone(profile: Option<&Path>, args: PhoneArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::resolve(profile, None)?;
    let settings = LocalSettings::load(&profile.settings_path())?;
    let cfg = config(&profile, &settings, &args)?;
    let account = cfg.account.as_ref().map(AccountConfig::label);
    let transport = cfg.transport;
    let timings = cfg.timings;
    let replica = profile.replica_path();
    // No replica yet: none is made here (nothing to log against).
    let opened = if replica.exists() { Some(Replica::open(&replica)) } else { None };
    let (log, operator) = match opened {
        None => (None, None),
        Some(Ok(r)) => {
            let operator = operator_id(&r, settings.user_login.as_deref());
            (Some(CallLog::start(r)?), operator)
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "finished calls will not be logged");
            (None, None)
        }
    };
    let (link, end): (PhoneLink, _) = phone::link();
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
    let mut face = Face {
        calls: CallTracker::default(),
        log,
        operator,
        figures: HashMap::new(),
        quality: HashMap::new(),
        timings,
    };
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
            "registered": stats.registered,
            "register_expires": stats.register_expires,
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

    /// A call `id` as the user agent reports it: ringing, or answered, or held.
    fn add(calls: &mut CallTracker, id: &str, state: CallState) {
        let call_id = id.to_owned();
        let incoming = PhoneEvent::Incoming {
            call_id: call_id.clone(),
            from: "+79001234567".into(),
            display_name: None,
            did: None,
            card: None,
        };
        calls.follow(&incoming, None);
        if matches!(state, CallState::Active | CallState::Held) {
            calls.follow(&PhoneEvent::Answered { call_id: call_id.clone() }, None);
        }
        if state == CallState::Held {
            calls.follow(&PhoneEvent::Held { call_id }, None);
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
        let mut calls = CallTracker::default();
        add(&mut calls, "talk", CallState::Active);
        add(&mut calls, "ring", CallState::Ringing);
        assert_eq!(parse_command("answer", &calls), Ok(Some(PhoneCommand::Answer { call_id: "ring".into() })));
        assert_eq!(parse_command("hangup", &calls), Ok(Some(PhoneCommand::Hangup { call_id: "talk".into() })));
        assert_eq!(parse_command("hangup ring", &calls), Ok(Some(PhoneCommand::Hangup { call_id: "ring".into() })));
        assert_eq!(parse_command("hold", &calls), Ok(Some(PhoneCommand::Hold { call_id: "talk".into() })));
        assert!(parse_command("resume", &calls).unwrap_err().contains("no held call"));
        assert_eq!(
            parse_command("transfer 201", &calls),
            Ok(Some(PhoneCommand::Transfer { call_id: "talk".into(), target: "201".into() }))
        );
        let mut two = CallTracker::default();
        add(&mut two, "caller", CallState::Held);
        add(&mut two, "consult", CallState::Active);
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

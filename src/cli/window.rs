//! The window, `clinicdesk [--dial NUMBER]` and `clinicdesk demo`: the
//! profile and replica opened (the demo clinic generated on first start),
//! a number handed to the window of the profile already open, the softphone
//! started beside the window's data, then eframe until the window closes.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use crate::app::handover::{self, Claim, Request};
use crate::app::{ClinicApp, Message, Startup};
use crate::demo::DemoOptions;
use crate::i18n::{I18n, Language};
use crate::settings::{LocalSettings, Profile};
use crate::store::Replica;

#[derive(Args)]
pub struct DemoArgs {
    /// Patients in the generated clinic (first start only).
    #[arg(long, default_value_t = 5_000)]
    pub patients: usize,
    /// Calls in the generated clinic (first start only).
    #[arg(long, default_value_t = 30_000)]
    pub calls: usize,
}

/// Gives `request` to the window of the profile if one is open: the exit
/// code then, else None (this process opens the window).
fn hand_over(
    profile: &Profile,
    request: &Request,
    i18n: &I18n,
    country: crate::crm::Country,
) -> anyhow::Result<Option<ExitCode>> {
    match handover::hand_over(profile.dir(), request) {
        Ok(None) => Ok(None),
        Ok(Some(Ok(()))) => {
            let key = if matches!(request, Request::Dial(_)) { "dial-handed-over" } else { "dial-shown" };
            let number = match request {
                Request::Dial(target) => target.shown(country),
                Request::Show => String::new(),
            };
            eprintln!("{}", Message::new(key).with("number", number).text(i18n));
            Ok(Some(ExitCode::SUCCESS))
        }
        Ok(Some(Err(reason))) => {
            eprintln!("clinicdesk: {}", Message::new("dial-window-refused").with("reason", reason).text(i18n));
            Ok(Some(ExitCode::FAILURE))
        }
        Err(e) => Err(anyhow::anyhow!("{}", Message::new("dial-socket-failed").with("detail", e).text(i18n))),
    }
}

/// Opens the window. With `demo`, on the demo profile, generating its
/// clinic (patients, calls) on first start. With `dial` (`--dial`), the
/// number goes to the window of the profile that is already open, if any;
/// else this window calls it once its phone is ready.
pub fn run_window(
    profile: Option<&Path>,
    demo: Option<(usize, usize)>,
    dial: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let profile = Profile::resolve(profile, demo.map(|_| "demo"))?;
    let saved = LocalSettings::load(&profile.settings_path()).unwrap_or_default();
    let i18n = I18n::new(Language::from_setting(saved.language.as_deref()));
    let request = match dial.map(str::trim) {
        None => None,
        Some("") => Some(Request::Show),
        Some(input) => match handover::parse_dial(input) {
            Ok(target) => Some(Request::Dial(target)),
            Err(m) => {
                eprintln!("clinicdesk: {}", m.text(&i18n));
                return Ok(ExitCode::from(2));
            }
        },
    };
    if let Some(request) = &request
        && let Some(code) = hand_over(&profile, request, &i18n, saved.country)?
    {
        return Ok(code);
    }
    let mut problems: Vec<String> = Vec::new();

    let writable = profile.ensure_writable();
    if let Err(e) = &writable {
        problems.push(e.to_string());
    }
    let (mut settings, settings_problem) = match LocalSettings::load(&profile.settings_path()) {
        Ok(s) => (s, None),
        Err(e) => {
            problems.push(e.to_string());
            (LocalSettings::default(), Some(Message::from(&e)))
        }
    };
    if let Some((patients, calls)) = demo
        && writable.is_ok()
        && !profile.replica_path().exists()
    {
        eprintln!("Generating the demo clinic in {} …", profile.dir().display());
        let opts = DemoOptions { patients, calls, seed: 1, now: crate::crm::now_millis() };
        let summary = super::demo_data::generate_replica(&profile.replica_path(), &opts)?;
        if settings.user_login.is_none() && settings_problem.is_none() {
            settings.user_login = Some(summary.operator_login);
            settings.save(&profile.settings_path())?;
        }
    }
    let replica = match writable {
        Err(e) => Err(Message::from(&e)),
        Ok(()) => Replica::open(&profile.replica_path()).map_err(|e| {
            problems.push(e.to_string());
            Message::from(&e)
        }),
    };
    let fatal = replica.is_err();
    for p in &problems {
        eprintln!("clinicdesk: {p}");
    }
    // The profile's socket: links clicked while this window is open come here.
    let language = Language::from_setting(settings.language.as_deref());
    let inbox = match replica.is_ok().then(|| handover::listen(profile.dir(), language)) {
        None => None,
        Some(Ok(Claim::Listening(inbox))) => Some(inbox),
        Some(Ok(Claim::Taken)) => {
            // Another window of this profile opened meanwhile: it takes the number.
            if let Some(request) = &request
                && let Some(code) = hand_over(&profile, request, &i18n, saved.country)?
            {
                return Ok(code);
            }
            tracing::info!("another window of this profile is open: it takes the numbers handed over");
            None
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "numbers cannot be handed to this window");
            None
        }
    };
    let frame_stats = std::env::var_os("CLINICDESK_FRAME_STATS").is_some();
    // The softphone runs beside the window's data: none when the replica cannot be opened.
    let mut phone = match &replica {
        Ok(_) => crate::softphone::run::start_phone(&settings, &profile.replica_path(), demo.is_some()),
        Err(_) => crate::softphone::run::PhoneRun::off(),
    };
    let startup = Startup {
        profile,
        settings,
        settings_problem,
        replica,
        started,
        frame_stats,
        phone: phone.link.take(),
        phone_mode: crate::app::calls::PhoneMode::of(&phone.status),
    };
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "opening the window");

    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ClinicDesk")
            .with_app_id("clinicdesk")
            .with_inner_size([1200.0, 760.0])
            .with_min_inner_size([800.0, 500.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "ClinicDesk",
        options,
        Box::new(move |_cc| {
            let mut app = ClinicApp::new(startup);
            if let Some(inbox) = inbox {
                app.take_numbers(inbox);
            }
            if let Some(Request::Dial(target)) = request {
                app.dial_when_ready(target);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"));
    phone.stop();
    result?;
    Ok(if fatal { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

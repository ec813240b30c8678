//! The softphone in the window: its panel drives calls (the test plays the
//! user agent's end of the link), numbers on screen call, the operator's
//! status makes a real user agent answer busy or unavailable to sipp, and the
//! demo clinic's caller rings a real user agent over SIP on loopback; the
//! same caller logs the same call-log row whether the window or
//! `clinicdesk phone` answered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;

use clinicdesk::app::calls::PhoneMode;
use clinicdesk::crm::Phone;
use clinicdesk::demo::caller::{DemoAnswerer, DemoCaller, DemoCallerConfig};
use clinicdesk::media::Quality;
use clinicdesk::settings::{LocalSettings, UnavailableAnswer};
use clinicdesk::sip::phone::{self, Availability, EndReason, PhoneCommand, PhoneEnd, PhoneEvent, PhoneLink};
use clinicdesk::sip::ua::{self, UaConfig};
use clinicdesk::softphone::run::start_phone;

use super::gui::{app_with_phone, choose, harness, has_label, has_text, settle, type_into};
use super::harness::demo_profile;
use super::sip::{assert_sipp_passed, free_port, scenario, sipp};

/// The next command the window sent, waiting for frames to run.
fn next_command(h: &mut egui_kittest::Harness<'_, clinicdesk::app::ClinicApp>, end: &PhoneEnd) -> PhoneCommand {
    let start = Instant::now();
    loop {
        h.step();
        if let Ok(c) = end.commands.try_recv() {
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the window sent no command");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn key(h: &mut egui_kittest::Harness<'_, clinicdesk::app::ClinicApp>, key: egui::Key) {
    h.key_press(key);
    h.run_steps(2);
}

#[test]
fn the_phone_panel_drives_a_call() {
    let profile = demo_profile(100, 200);
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    settle(&mut h, "the phone panel", |h| has_text(h, "No PBX: calls come straight to 127.0.0.1:5060"));

    // Dial from the number field, in a national form: the user agent normalises it.
    type_into(&mut h, "Number to call", "8 (916) 123-45-67");
    h.get_by_role_and_label(Role::Button, "Call").click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Dial { number: "8 (916) 123-45-67".into() });
    end.send(PhoneEvent::Dialing { call_id: "out-1".into(), to: "+79161234567".into(), card: None });
    settle(&mut h, "the call, dialling", |h| has_label(h, "Calling…") && has_label(h, "+7 916 123-45-67"));
    end.send(PhoneEvent::Answered { call_id: "out-1".into() });
    settle(&mut h, "the call, talking", |h| has_text(h, "Talking, "));

    h.get_by_role_and_label(Role::Button, "Hold").click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Hold { call_id: "out-1".into() });
    end.send(PhoneEvent::Held { call_id: "out-1".into() });
    settle(&mut h, "held", |h| has_text(h, "On hold, ") && has_label(h, "Resume"));
    key(&mut h, egui::Key::F8);
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Resume { call_id: "out-1".into() });
    end.send(PhoneEvent::Resumed { call_id: "out-1".into() });
    settle(&mut h, "resumed", |h| has_text(h, "Talking, "));

    // The keypad sends tones during a call.
    h.get_by_role_and_label(Role::Button, "5").click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Dtmf { call_id: "out-1".into(), digits: "5".into() });
    h.get_by_role_and_label(Role::Button, "Mute").click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Mute { call_id: "out-1".into(), on: true });
    settle(&mut h, "muted", |h| has_label(h, "Unmute") && has_text(h, "microphone off"));
    key(&mut h, egui::Key::F7);
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Mute { call_id: "out-1".into(), on: false });

    // The quality indicator follows what the media reports.
    end.send(PhoneEvent::Quality {
        call_id: "out-1".into(),
        quality: Quality::Poor,
        mos: 2.1,
        loss_percent: 12.0,
        jitter_ms: 60.0,
        rtt_ms: Some(180.0),
    });
    settle(&mut h, "poor quality shown", |h| has_label(h, "poor"));

    type_into(&mut h, "Transfer to", "102");
    h.get_by_role_and_label(Role::Button, "Transfer").click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Transfer { call_id: "out-1".into(), target: "102".into() });
    key(&mut h, egui::Key::F10);
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Hangup { call_id: "out-1".into() });
    end.send(PhoneEvent::Ended { call_id: "out-1".into(), reason: EndReason::HungUp, duration_s: 9 });
    settle(&mut h, "the call gone", |h| !has_text(h, "Talking, "));

    // A ringing call: F9 answers it, F10 would decline it.
    end.send(PhoneEvent::Incoming {
        call_id: "in-1".into(),
        from: "+79035550101".into(),
        display_name: None,
        did: None,
        card: None,
    });
    settle(&mut h, "ringing", |h| has_label(h, "Ringing"));
    key(&mut h, egui::Key::F9);
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Answer { call_id: "in-1".into() });
}

/// Every number on screen calls when clicked (the call log here).
#[test]
fn a_number_on_screen_is_click_to_call() {
    let profile = demo_profile(100, 200);
    let replica = profile.path().join("replica.sqlite");
    let peer: String = rusqlite::Connection::open(&replica)
        .unwrap()
        .query_row("SELECT peer_e164 FROM calls ORDER BY started_at DESC LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let shown = Phone::from_e164_unchecked(peer.clone()).display();
    let (link, end) = phone::link();
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    settle(&mut h, "the call log", |h| h.query_all_by_role_and_label(Role::Link, &shown).next().is_some());
    h.query_all_by_role_and_label(Role::Link, &shown).next().unwrap().click();
    assert_eq!(next_command(&mut h, &end), PhoneCommand::Dial { number: peer });
}

/// The operator's status reaches the real user agent: on a break calls are
/// answered busy (486), or unavailable (480) with "do not disturb", and
/// ring again once the operator is free.
#[test]
fn a_busy_operator_status_declines_calls_over_sip() {
    for (answer, scenario_file) in
        [(UnavailableAnswer::Busy, "uac_busy.xml"), (UnavailableAnswer::DoNotDisturb, "uac_unavailable.xml")]
    {
        let profile = demo_profile(100, 100);
        let settings = LocalSettings {
            language: Some("en".into()),
            user_login: Some("operator".into()),
            deadline_notifications: false,
            when_unavailable: answer,
            ..Default::default()
        };
        settings.save(&profile.path().join("settings.toml")).unwrap();
        let (link, end) = phone::link();
        let config = UaConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cards: clinicdesk::softphone::cards::lookup(&profile.path().join("replica.sqlite")),
            ..UaConfig::default()
        };
        let ua = ua::start(config, end).expect("the user agent starts");
        let target = ua.local_addr().to_string();
        let mut h = harness(app_with_phone(profile.path(), Some(link)));
        settle(&mut h, "the operator known", |h| has_text(h, "My status:"));
        choose(&mut h, "My status:", "Break");
        h.run_steps(3);
        wait_availability(
            &ua,
            match answer {
                UnavailableAnswer::Busy => Availability::Busy,
                UnavailableAnswer::DoNotDisturb => Availability::DoNotDisturb,
            },
        );

        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let run =
            sipp(dir.path(), port, &["-sf", &scenario(scenario_file), &target, "-m", "1", "-key", "caller", "205"]);
        // Frames go on while sipp runs: the window must not ring.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(500) {
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_sipp_passed(run, dir.path(), port);
        h.run_steps(3);
        assert!(!has_label(&h, "Ringing"), "a declined call never rings");

        // Free again: the next call rings in the window.
        choose(&mut h, "My status:", "Free");
        h.run_steps(3);
        wait_availability(&ua, Availability::Available);
        let port = free_port();
        let run = sipp(dir.path(), port, &["-sn", "uac", &target, "-m", "1", "-d", "100"]);
        settle(&mut h, &format!("the call ringing once the operator is free ({answer:?})"), |h| {
            has_label(h, "Ringing")
        });
        drop(run);
        ua.shutdown();
    }
}

/// Waits until the operator's status has reached the user agent (it goes
/// through a channel of its own, so a call placed at once could beat it).
fn wait_availability(ua: &ua::UaHandle, wanted: Availability) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = ua.stats(Duration::from_secs(5)).map(|s| s.availability);
        if now == Some(wanted) {
            return;
        }
        assert!(Instant::now() < deadline, "the user agent is still {now:?}, not {wanted:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a user agent taking calls on loopback, as the window's demo does.
fn operator_phone(replica: &std::path::Path, peer: SocketAddr) -> (ua::UaHandle, PhoneLink) {
    let (link, end) = phone::link();
    let config = UaConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cards: clinicdesk::softphone::cards::lookup(replica),
        direct_peer: Some(peer),
        ..UaConfig::default()
    };
    (ua::start(config, end).expect("the operator's user agent starts"), link)
}

fn wait_event(
    link: &PhoneLink,
    what: &str,
    timeout: Duration,
    mut matches: impl FnMut(&PhoneEvent) -> bool,
) -> PhoneEvent {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match link.events().recv_timeout(left) {
            Ok(e) if matches(&e) => return e,
            Ok(_) => {}
            Err(_) => panic!("no {what} within {timeout:?}"),
        }
    }
}

/// The demo clinic's caller rings over real SIP from the replica's numbers,
/// gives up when nobody answers, talks and hangs up when answered, and
/// answers the numbers the operator dials.
#[test]
fn the_demo_caller_rings_gives_up_talks_and_answers() {
    let profile = demo_profile(300, 300);
    let replica = profile.path().join("replica.sqlite");
    let answerer = DemoAnswerer::start().expect("the demo answerer starts");
    let (ua, link) = operator_phone(&replica, answerer.local_addr());
    let config = DemoCallerConfig {
        first_call: Duration::from_millis(100),
        between: (Duration::from_millis(100), Duration::from_millis(300)),
        give_up: (Duration::from_millis(1500), Duration::from_millis(2000)),
        talk: (Duration::from_millis(500), Duration::from_millis(800)),
        seed: 3,
    };
    let caller = DemoCaller::start(answerer, ua.local_addr(), &replica, config);
    let conn = rusqlite::Connection::open(&replica).unwrap();
    let known = |number: &str| -> bool {
        conn.query_row("SELECT count(*) FROM person_phones WHERE phone_e164 = ?", [number], |r| r.get::<_, i64>(0))
            .unwrap()
            > 0
    };

    // Nobody answers: the caller gives up.
    let PhoneEvent::Incoming { call_id, card, .. } =
        wait_event(&link, "a demo call", Duration::from_secs(10), |e| matches!(e, PhoneEvent::Incoming { .. }))
    else {
        unreachable!()
    };
    let card = card.expect("the card is looked up in the replica");
    assert_eq!(!card.people.is_empty(), known(&card.number), "a known number shows its people: {}", card.number);
    let ended =
        wait_event(&link, "the caller giving up", Duration::from_secs(10), |e| matches!(e, PhoneEvent::Ended { .. }));
    assert!(
        matches!(&ended, PhoneEvent::Ended { call_id: id, reason: EndReason::NotAnswered, .. } if *id == call_id),
        "{ended:?}"
    );

    // Answered: they talk, then the caller hangs up. Over a few calls both
    // known and unknown numbers ring.
    let mut numbers = Vec::new();
    for _ in 0..4 {
        let PhoneEvent::Incoming { call_id, card, .. } =
            wait_event(&link, "the next demo call", Duration::from_secs(10), |e| {
                matches!(e, PhoneEvent::Incoming { .. })
            })
        else {
            unreachable!()
        };
        numbers.push(card.expect("card").number);
        link.send(PhoneCommand::Answer { call_id: call_id.clone() });
        wait_event(&link, "answered", Duration::from_secs(5), |e| matches!(e, PhoneEvent::Answered { .. }));
        let ended = wait_event(&link, "the caller hanging up", Duration::from_secs(10), |e| {
            matches!(e, PhoneEvent::Ended { .. })
        });
        assert!(matches!(ended, PhoneEvent::Ended { reason: EndReason::HungUp, .. }), "{ended:?}");
    }
    assert!(numbers.iter().any(|n| known(n)), "some demo callers are patients: {numbers:?}");

    // The operator dials a number: the demo peer answers it.
    caller.stop();
    // The answerer stopped with the caller; a fresh pair answers the dial.
    let answerer = DemoAnswerer::start().expect("the demo answerer starts");
    let (ua2, link2) = operator_phone(&replica, answerer.local_addr());
    let quiet = DemoCallerConfig { first_call: Duration::from_secs(3600), ..DemoCallerConfig::default() };
    let caller = DemoCaller::start(answerer, ua2.local_addr(), &replica, quiet);
    link2.send(PhoneCommand::Dial { number: "8 916 000-11-22".into() });
    let dialing = wait_event(&link2, "dialing", Duration::from_secs(5), |e| matches!(e, PhoneEvent::Dialing { .. }));
    assert!(matches!(&dialing, PhoneEvent::Dialing { to, .. } if to == "+79160001122"), "{dialing:?}");
    wait_event(&link2, "the demo peer answering", Duration::from_secs(10), |e| {
        matches!(e, PhoneEvent::Answered { .. })
    });
    caller.stop();
    ua.shutdown();
    ua2.shutdown();
}

/// How the window's phone starts from the workstation's settings.
#[test]
fn the_window_phone_follows_the_settings() {
    let profile = demo_profile(50, 50);
    let replica = profile.path().join("replica.sqlite");
    let off = start_phone(&LocalSettings { telephony_enabled: false, ..Default::default() }, &replica, true);
    assert!(
        matches!(PhoneMode::of(&off.status), PhoneMode::Off) && off.link.is_none(),
        "telephony off: no phone at all"
    );
    off.stop();

    let no_server = start_phone(&LocalSettings::default(), &replica, false);
    let mode = PhoneMode::of(&no_server.status);
    assert!(matches!(&mode, PhoneMode::Problem(m) if m.key == "phone-no-server"), "{mode:?}");
    no_server.stop();

    let demo = start_phone(&LocalSettings::default(), &replica, true);
    let mode = PhoneMode::of(&demo.status);
    assert!(matches!(&mode, PhoneMode::Direct(addr) if addr.starts_with("127.0.0.1:")), "{mode:?}");
    assert!(demo.link.is_some());
    demo.stop();
}

/// The same caller, taken once by `clinicdesk phone` and once by the window,
/// leaves the same call-log row: both faces follow the call with the one
/// tracker (`softphone::tracker`), so the number (normalised from the
/// national form the PBX sends), the direction, the operator, the result
/// and the person are the same whichever face answered.
#[test]
fn both_faces_log_a_call_the_same_way() {
    let profile = demo_profile(100, 100);
    let replica = profile.path().join("replica.sqlite");
    let settings = LocalSettings {
        language: Some("en".into()),
        user_login: Some("operator".into()),
        deadline_notifications: false,
        ..Default::default()
    };
    settings.save(&profile.path().join("settings.toml")).unwrap();
    let (e164, person_id): (String, String) = rusqlite::Connection::open(&replica)
        .unwrap()
        .query_row(
            "SELECT ph.phone_e164, p.id FROM person_phones ph JOIN people p ON p.id = ph.person_id
             WHERE ph.deleted_at IS NULL AND p.deleted_at IS NULL AND ph.phone_e164 LIKE '+7%'
               AND (SELECT count(*) FROM person_phones x WHERE x.phone_e164 = ph.phone_e164 AND x.deleted_at IS NULL) = 1
             ORDER BY ph.phone_e164 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // As a Russian PBX sends it: 8 and the ten digits.
    let national = format!("8{}", &e164[2..]);
    type Row = (String, String, Option<String>, String, Option<String>);
    let row = |sip_call_id: &str| -> Option<Row> {
        rusqlite::Connection::open(&replica)
            .unwrap()
            .query_row(
                "SELECT peer_e164, direction, operator_id, result, person_id FROM calls WHERE sip_call_id = ?",
                [sip_call_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .ok()
    };
    let dir = tempfile::tempdir().unwrap();
    let call = |target: &str| {
        let port = free_port();
        let file = scenario("uac_wait_bye.xml");
        (sipp(dir.path(), port, &["-sf", &file, target, "-m", "1", "-key", "caller", &national]), port)
    };

    // The headless phone answers, and hangs up.
    let mut headless = super::sip::Phone::start(profile.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let (run, port) = call(&headless.addr.to_string());
    let incoming = headless.event("incoming");
    let headless_id = incoming["call_id"].as_str().unwrap().to_owned();
    headless.call_event("answered", &headless_id);
    headless.send("hangup");
    headless.call_event("ended", &headless_id);
    assert_sipp_passed(run, dir.path(), port);
    assert!(headless.quit().success());
    let by_headless = row(&headless_id).expect("the headless phone logged the call");

    // The window takes the same caller: F9 answers, F10 hangs up.
    let (link, end) = phone::link();
    let config = UaConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        cards: clinicdesk::softphone::cards::lookup(&replica),
        ..UaConfig::default()
    };
    let ua = ua::start(config, end).expect("the user agent starts");
    let mut h = harness(app_with_phone(profile.path(), Some(link)));
    settle(&mut h, "the operator known", |h| has_text(h, "My status:"));
    let (run, port) = call(&ua.local_addr().to_string());
    settle(&mut h, "the call ringing", |h| has_label(h, "Ringing"));
    let window_id = h.state().calls_in_progress().first().expect("a call rings").sip_call_id.clone();
    key(&mut h, egui::Key::F9);
    settle(&mut h, "the call talking", |h| has_text(h, "Talking, "));
    key(&mut h, egui::Key::F10);
    settle(&mut h, "the call over", |h| h.state().calls_in_progress().is_empty());
    assert_sipp_passed(run, dir.path(), port);
    let start = Instant::now();
    let by_window = loop {
        h.step();
        if let Some(r) = row(&window_id) {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "the window did not log the call");
        std::thread::sleep(Duration::from_millis(50));
    };
    ua.shutdown();

    assert_eq!(by_headless.0, e164, "the number normalised");
    assert_eq!((by_headless.1.as_str(), by_headless.3.as_str()), ("in", "answered"));
    assert_eq!(by_headless.4.as_deref(), Some(person_id.as_str()));
    assert!(by_headless.2.is_some(), "the operator of the workstation is logged with the call");
    assert_eq!(by_window, by_headless, "(peer, direction, operator, result, person)");
}

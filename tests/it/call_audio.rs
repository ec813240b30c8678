//! What the other side of a call hears: the real `clinicdesk phone` with
//! baresip as the patient's phone through kamailio, baresip playing what it
//! receives into a private PulseAudio's null sink, recorded from its monitor.
//! (baresip's own dump of the decoded sound stops at the first re-INVITE,
//! which is where hold begins.)
//!
//! G.722 is what desk phones and Asterisk offer first: wideband sound, which
//! a tone above 4 kHz (beyond any 8 kHz codec) proves end to end.
//!
//! Hold is a privacy matter: the held party must hear nothing of the
//! operator's microphone, whether the operator pressed hold or answered a
//! waiting call (which holds the first).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tempfile::TempDir;

use super::harness::{Peer, require, wait_for};
use super::media::{Pulse, active, longest_gap_ms, read_wav, tone_frequency};
use super::sip::{Baresip, Kamailio, Phone, assert_sipp_passed, free_port, kamailio_phone, scenario, sipp, write_tone};

/// Our microphone: a 1000 Hz tone (their own is 440 Hz, so neither is taken for the other).
const OURS_HZ: f32 = 1000.0;

/// How long a call stays held. baresip restarts its player on each re-INVITE,
/// and a PulseAudio stream takes ~2 s to start (more on a loaded machine):
/// that silence is there whether or not the hold silences anything, so the
/// hold is long enough to tell the two apart.
const HOLD_S: f32 = 7.0;

/// The least silence that shows the hold sent nothing: the whole hold less a
/// margin. Without the fix the gap is the player's restart alone (2.0 s here).
const HELD_SILENCE_S: f32 = 5.5;

/// The amplitude of `freq` in each 20 ms frame of `samples` at `rate` (Goertzel).
fn tone_levels(samples: &[f32], rate: u32, freq: f32) -> Vec<f32> {
    let n = rate as usize / 50;
    let k = 2.0 * (2.0 * std::f32::consts::PI * freq / rate as f32).cos();
    samples
        .chunks_exact(n)
        .map(|frame| {
            let (mut s1, mut s2) = (0.0f32, 0.0f32);
            for &x in frame {
                let s0 = x + k * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            let power = s1 * s1 + s2 * s2 - k * s1 * s2;
            2.0 * power.max(0.0).sqrt() / n as f32
        })
        .collect()
}

/// Seconds of our tone before the longest stretch without it, that stretch, and
/// seconds of tone after it. A frame "has" the tone at a tenth of the 0.5
/// amplitude we play (G.711 keeps it at ~0.5; silence is ~0).
fn tone_gap_tone(samples: &[f32]) -> (f32, f32, f32) {
    let has: Vec<bool> = tone_levels(samples, 8000, OURS_HZ).iter().map(|&a| a > 0.05).collect();
    let (Some(first), Some(last)) = (has.iter().position(|&h| h), has.iter().rposition(|&h| h)) else {
        return (0.0, 0.0, 0.0);
    };
    let (mut best, mut best_at, mut run) = (0, first, 0);
    for (i, &h) in has.iter().enumerate().take(last + 1).skip(first) {
        run = if h { 0 } else { run + 1 };
        if run > best {
            best = run;
            best_at = i + 1 - run;
        }
    }
    let frames = |range: &[bool]| range.iter().filter(|&&h| h).count() as f32 / 50.0;
    (frames(&has[..best_at]), best as f32 / 50.0, frames(&has[best_at + best..]))
}

/// The sound of `seconds` of a call: the peers exchange audio meanwhile.
fn let_audio_flow(seconds: f32) {
    std::thread::sleep(Duration::from_secs_f32(seconds));
}

fn tone_file(dir: &Path, freq: f32, name: &str) -> PathBuf {
    let path = dir.join(name);
    write_tone(&path, freq, 8000, 120.0);
    path
}

/// The operator's phone registered at a new kamailio, its microphone our
/// tone; and the patients' own (440 Hz).
fn operator_playing_a_tone() -> (TempDir, Kamailio, Phone, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let ours = tone_file(dir.path(), OURS_HZ, "ours.wav");
    let theirs = tone_file(dir.path(), 440.0, "theirs.wav");
    let play = ours.display().to_string();
    // G.711: silence is sent as silence, so the patient's player runs on through the hold.
    let phone = kamailio_phone(dir.path(), &kamailio, &["--play", &play, "--codecs", "pcmu"]);
    (dir, kamailio, phone, theirs)
}

/// A patient's phone: baresip registered as `user`, its speaker a sound
/// server of its own whose output is recorded (8 kHz mono) until `heard`.
struct Patient {
    phone: Baresip,
    recorder: Option<Peer>,
    speaker: PathBuf,
    _sound: Pulse,
}

impl Patient {
    fn start(dir: &Path, kamailio: &Kamailio, user: &str, tone: &Path) -> Patient {
        let home = dir.join(format!("patient-{user}"));
        std::fs::create_dir_all(&home).unwrap();
        let sound = Pulse::start(&home);
        let parec = require("parec", "pulseaudio-utils");
        let speaker = home.join("speaker.raw");
        let recorder = Peer::spawn(
            "parec",
            sound
                .command(&parec)
                .args(["-d", "spk.monitor", "--raw", "--format=s16le", "--rate=8000", "--channels=1"])
                .stdout(Stdio::from(std::fs::File::create(&speaker).unwrap()))
                .stderr(Stdio::null()),
        );
        let phone = Baresip::start_with_sound(dir, &kamailio.server(), user, tone, false, &sound.env_pairs());
        Patient { phone, recorder: Some(recorder), speaker, _sound: sound }
    }

    /// Calls the operator, who answers; the call's id.
    fn calls(&mut self, operator: &mut Phone, kamailio: &Kamailio) -> String {
        self.phone.command("dial", &format!("sip:100@{}", kamailio.server()));
        let id = operator.event("incoming")["call_id"].as_str().unwrap().to_owned();
        operator.send(&format!("answer {id}"));
        operator.call_event("answered", &id);
        self.phone.event("CALL_ESTABLISHED");
        id
    }

    /// What the patient's speaker played, once the call is over.
    fn heard(&mut self) -> Vec<f32> {
        drop(self.recorder.take());
        let raw = std::fs::read(&self.speaker).unwrap();
        raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect()
    }
}

/// baresip calls the phone, which plays a 1000 Hz tone; `hold` silences it
/// for the held patient (nothing of the tone arrives), `resume` brings it back.
#[test]
fn on_hold_the_patient_hears_nothing_of_the_operator() {
    let (dir, kamailio, mut phone, theirs) = operator_playing_a_tone();
    let mut patient = Patient::start(dir.path(), &kamailio, "200", &theirs);
    let id = patient.calls(&mut phone, &kamailio);
    let_audio_flow(2.0);
    phone.send(&format!("hold {id}"));
    phone.call_event("held", &id);
    let_audio_flow(HOLD_S);
    phone.send(&format!("resume {id}"));
    phone.call_event("resumed", &id);
    let_audio_flow(3.0);
    phone.send(&format!("hangup {id}"));
    phone.call_event("ended", &id);
    patient.phone.event("CALL_CLOSED");

    let (before, gap, after) = tone_gap_tone(&patient.heard());
    eprintln!("the patient heard the tone {before:.2} s, then nothing for {gap:.2} s, then the tone {after:.2} s");
    assert!(gap >= HELD_SILENCE_S, "the held patient heard the operator: longest stretch without the tone {gap} s");
    assert!(before >= 1.0 && after >= 1.0, "tone before the hold {before} s, after resuming {after} s");
    assert!(phone.quit().success());
}

/// Answering a waiting call holds the first: its patient hears nothing of the
/// conversation with the second, and the operator again once resumed.
#[test]
fn answering_a_waiting_call_keeps_the_first_patient_out_of_it() {
    let (dir, kamailio, mut phone, theirs) = operator_playing_a_tone();
    let mut first = Patient::start(dir.path(), &kamailio, "200", &theirs);
    let mut second = Patient::start(dir.path(), &kamailio, "300", &theirs);
    let one = first.calls(&mut phone, &kamailio);
    let_audio_flow(2.0);
    let two = second.calls(&mut phone, &kamailio);
    phone.call_event("held", &one);
    let_audio_flow(HOLD_S);
    phone.send(&format!("hangup {two}"));
    phone.call_event("ended", &two);
    second.phone.event("CALL_CLOSED");

    phone.send(&format!("resume {one}"));
    phone.call_event("resumed", &one);
    let_audio_flow(3.0);
    phone.send(&format!("hangup {one}"));
    phone.call_event("ended", &one);
    first.phone.event("CALL_CLOSED");

    let (before, gap, after) = tone_gap_tone(&first.heard());
    eprintln!(
        "the first patient heard the tone {before:.2} s, then nothing for {gap:.2} s, then the tone {after:.2} s"
    );
    assert!(gap >= HELD_SILENCE_S, "the first patient heard the second call: longest stretch without the tone {gap} s");
    assert!(before >= 1.0 && after >= 1.0, "tone before the hold {before} s, after resuming {after} s");
    // The second patient heard the operator all along.
    let (_, gap, _) = tone_gap_tone(&second.heard());
    assert!(gap < 1.0, "the second call had a gap of {gap} s");
    assert!(phone.quit().success());
}

/// sipp calls the phone (which plays 440 Hz) and changes the codec twice by
/// re-INVITE, PCMU → Opus → PCMA, echoing the phone's RTP back: every answer
/// names the codec offered, the media follows, and the phone hears its tone
/// through all three with no more than a short gap at each change.
#[test]
fn the_sound_goes_on_through_codec_changes_by_reinvite() {
    let dir = tempfile::tempdir().unwrap();
    let ours = tone_file(dir.path(), 440.0, "ours.wav");
    let heard = dir.path().join("heard.wav");
    let (play, record) = (ours.display().to_string(), heard.display().to_string());
    let mut phone =
        Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer", "--play", &play, "--record", &record]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_codec_changes.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "205", "-rtp_echo"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], "PCMA/8000", "{ended}");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());

    let (samples, rate) = read_wav(&heard);
    let tone = active(&samples, rate);
    let (seconds, gap) = (tone.len() as f32 / rate as f32, longest_gap_ms(tone, rate));
    let f = tone_frequency(tone, rate);
    eprintln!("through PCMU, Opus and PCMA: {seconds:.1} s of {f:.1} Hz, longest gap {gap} ms");
    assert!((f - 440.0).abs() <= 10.0, "{f} Hz");
    // 3 × 2.5 s, less the start and the end `active` leaves out.
    assert!(seconds >= 5.5, "only {seconds} s of sound: it stopped at a codec change");
    assert!(gap <= 250.0, "a silent gap of {gap} ms at a codec change");
}

/// A desk phone that does G.722 only (baresip with its G.722 module alone, sound
/// at 16 kHz) calls the phone, which answers with G.722 and plays 5 kHz; the desk
/// phone plays 6 kHz. Neither tone fits in 8 kHz G.711 (nothing above 4 kHz),
/// so each side hearing the other's shows the whole path is wideband: our
/// encoder and timestamps at baresip's (spandsp's) decoder, and back.
#[test]
fn a_g722_desk_phone_and_the_phone_hear_each_other_in_wideband() {
    const OURS: f32 = 5000.0;
    const THEIRS: f32 = 6000.0;
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let (ours, theirs) = (dir.path().join("ours.wav"), dir.path().join("theirs.wav"));
    write_tone(&ours, OURS, 16000, 120.0);
    write_tone(&theirs, THEIRS, 16000, 120.0);
    let heard = dir.path().join("heard.wav");
    let (play, record) = (ours.display().to_string(), heard.display().to_string());
    // The phone's default codecs (Opus, G.722, G.711): the desk phone's offer decides.
    let mut phone = kamailio_phone(dir.path(), &kamailio, &["--play", &play, "--record", &record]);
    // Its G.722 module alone: baresip 1.0 has no global codec filter.
    let g722_only = "ausrc_srate 16000\nauplay_srate 16000\nmodule g722.so\n";
    let mut desk = Baresip::start_with_audio(dir.path(), &kamailio.server(), "200", &theirs, false, &[], g722_only);
    desk.command("dial", &format!("sip:100@{}", kamailio.server()));
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.send(&format!("answer {id}"));
    phone.call_event("answered", &id);
    desk.event("CALL_ESTABLISHED");

    // Until both sides have decoded 4 s of the call (16-bit samples at 16 kHz).
    let four_seconds = 4 * 16000 * 2;
    let desk_dump = dir.path().join("baresip-200/recordings");
    let dumped = || {
        std::fs::read_dir(&desk_dump).into_iter().flatten().flatten().any(|e| {
            e.path().to_string_lossy().ends_with("-dec.wav") && e.metadata().is_ok_and(|m| m.len() > four_seconds)
        })
    };
    let recorded = || std::fs::metadata(&heard).is_ok_and(|m| m.len() > four_seconds);
    wait_for("4 s of the call on both sides", Duration::from_secs(60), || dumped() && recorded());
    phone.send(&format!("hangup {id}"));
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], "G722/8000", "{ended}");
    assert!(ended["media"]["packets_received"].as_u64().unwrap() > 150, "{ended}");
    desk.event("CALL_CLOSED");
    assert!(phone.quit().success());

    for (what, path, sent) in [("the desk phone", desk.received_recording(), OURS), ("we", heard, THEIRS)] {
        let (samples, rate) = read_wav(&path);
        assert!(rate >= 16000, "{what} recorded at {rate} Hz: no room for {sent} Hz");
        let tone = active(&samples, rate);
        let f = tone_frequency(tone, rate);
        eprintln!("{what} heard {f:.1} Hz for {:.1} s ({sent} Hz sent)", tone.len() as f32 / rate as f32);
        // ±1 %: G.711 would have carried nothing of it at all.
        assert!((f - sent).abs() <= sent / 100.0, "{what} heard {f} Hz where {sent} Hz was sent");
        assert!(tone.len() >= rate as usize * 2, "{what} heard only {} samples of tone", tone.len());
    }
}

//! The demo clinic's callers: a small SIP peer on loopback, built on the
//! same user agent, so a newcomer sees the whole call path with no PBX.
//!
//! Every 30–90 s (the first time a few seconds after start) it rings the
//! operator from one of the demo numbers — mostly patients of the replica,
//! sometimes a number nobody knows, now and then through one of the
//! clinic's tracking numbers — and hangs up after a while when nobody
//! answers, or after a short talk when somebody does. It also stands in for
//! the PBX of outgoing calls: numbers the operator dials are answered by
//! it after a few rings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use super::rng::Rng;
use crate::sip::phone::{PhoneCommand, PhoneEnd, PhoneEvent, PhoneLink, link};
use crate::sip::ua::{self, UaConfig, UaError, UaHandle};
use crate::store::Replica;

/// How the demo caller behaves (times shortened by tests).
#[derive(Debug, Clone)]
pub struct DemoCallerConfig {
    /// Before the first call.
    pub first_call: Duration,
    /// Between the end of one call and the next: a random time in this range.
    pub between: (Duration, Duration),
    /// A call nobody answers is given up after a random time in this range.
    pub give_up: (Duration, Duration),
    /// An answered call lasts a random time in this range.
    pub talk: (Duration, Duration),
    pub seed: u64,
}

impl Default for DemoCallerConfig {
    fn default() -> DemoCallerConfig {
        DemoCallerConfig {
            first_call: Duration::from_secs(8),
            between: (Duration::from_secs(30), Duration::from_secs(90)),
            give_up: (Duration::from_secs(20), Duration::from_secs(40)),
            talk: (Duration::from_secs(15), Duration::from_secs(45)),
            seed: 0x00C0_FFEE,
        }
    }
}

/// The part of the demo peer that answers the operator's outgoing calls,
/// bound on loopback before the operator's phone starts (which sends the
/// numbers it dials there).
pub struct DemoAnswerer {
    handle: UaHandle,
    link: PhoneLink,
}

impl DemoAnswerer {
    pub fn start() -> Result<DemoAnswerer, UaError> {
        let (link, end) = link();
        let config = UaConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            local_user: "patient".to_owned(),
            auto_answer: Some(Duration::from_secs(3)),
            ..UaConfig::default()
        };
        Ok(DemoAnswerer { handle: ua::start(config, end)?, link })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }
}

/// The running demo peer.
pub struct DemoCaller {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl DemoCaller {
    /// Rings the operator's phone at `operator` with numbers from `replica`;
    /// the answerer goes on answering the operator's calls meanwhile.
    pub fn start(answerer: DemoAnswerer, operator: SocketAddr, replica: &Path, config: DemoCallerConfig) -> DemoCaller {
        let numbers = DemoNumbers::read(replica);
        let (stop, stopped) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("demo-caller".into())
            .spawn(move || {
                caller_loop(operator, numbers, config, &stopped, &answerer.link);
                answerer.handle.shutdown();
            })
            .map_err(|e| tracing::warn!(error = %e, "the demo caller cannot start"))
            .ok();
        DemoCaller { stop, thread }
    }

    /// Stops ringing (a call going on is hung up) and stops the peer.
    pub fn stop(mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The numbers the demo callers call from, and the clinic numbers they dial.
#[derive(Debug, Default)]
struct DemoNumbers {
    known: Vec<String>,
    dids: Vec<String>,
}

impl DemoNumbers {
    fn read(replica: &Path) -> DemoNumbers {
        let read = || -> rusqlite::Result<DemoNumbers> {
            let replica = Replica::open_read_only(replica)
                .map_err(|e| rusqlite::Error::InvalidPath(PathBuf::from(format!("{}: {e}", replica.display()))))?;
            let conn = replica.conn();
            let column = |sql: &str| -> rusqlite::Result<Vec<String>> {
                let mut stmt = conn.prepare(sql)?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.collect()
            };
            Ok(DemoNumbers {
                known: column(
                    "SELECT phone_e164 FROM person_phones WHERE deleted_at IS NULL ORDER BY random() LIMIT 200",
                )?,
                dids: column("SELECT did_e164 FROM tracking_numbers WHERE deleted_at IS NULL")?,
            })
        };
        read().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "the demo caller calls from unknown numbers only");
            DemoNumbers::default()
        })
    }

    /// A caller's number and the clinic number it dials.
    fn pick(&self, rng: &mut Rng) -> (String, String) {
        let from = if !self.known.is_empty() && rng.chance(0.7) {
            rng.pick(&self.known).clone()
        } else {
            format!("+7916{:07}", rng.below(10_000_000))
        };
        let to =
            if !self.dids.is_empty() && rng.chance(0.5) { rng.pick(&self.dids).clone() } else { "reception".into() };
        (from, to)
    }
}

fn between(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    let lo_ms = lo.as_millis() as i64;
    let hi_ms = (hi.as_millis() as i64).max(lo_ms);
    Duration::from_millis(rng.range(lo_ms, hi_ms + 1).max(0) as u64)
}

fn caller_loop(
    operator: SocketAddr,
    numbers: DemoNumbers,
    config: DemoCallerConfig,
    stop: &Receiver<()>,
    answerer: &PhoneLink,
) {
    let mut rng = Rng::new(config.seed);
    let mut wait = config.first_call;
    loop {
        let until = Instant::now() + wait;
        loop {
            // What the answerer reports is not needed; it is only drained.
            crossbeam_channel::select! {
                recv(stop) -> _ => return,
                recv(answerer.events()) -> event => if event.is_err() { return },
                default(until.saturating_duration_since(Instant::now())) => break,
            }
        }
        let (from, to) = numbers.pick(&mut rng);
        let give_up = between(&mut rng, config.give_up);
        let talk = between(&mut rng, config.talk);
        if one_call(operator, &from, &to, give_up, talk, stop) == Flow::Stop {
            return;
        }
        wait = between(&mut rng, config.between);
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
}

/// One demo call: a user agent of its own, so its From carries the number.
fn one_call(
    operator: SocketAddr,
    from: &str,
    to: &str,
    give_up: Duration,
    talk: Duration,
    stop: &Receiver<()>,
) -> Flow {
    let (link, end): (PhoneLink, PhoneEnd) = link();
    let config =
        UaConfig { listen: SocketAddr::from(([127, 0, 0, 1], 0)), local_user: from.to_owned(), ..UaConfig::default() };
    let handle = match ua::start(config, end) {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "the demo caller cannot place a call");
            return Flow::Next;
        }
    };
    let target = format!("sip:{to}@{operator}");
    tracing::info!(from, target, "the demo caller rings the operator");
    link.send(PhoneCommand::Dial { number: target });
    let mut call_id: Option<String> = None;
    let mut deadline = Instant::now() + give_up;
    let flow = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        crossbeam_channel::select! {
            recv(stop) -> _ => break Flow::Stop,
            recv(link.events()) -> event => match event {
                Ok(PhoneEvent::Dialing { call_id: id, .. }) => call_id = Some(id),
                Ok(PhoneEvent::Answered { .. }) => deadline = Instant::now() + talk,
                Ok(PhoneEvent::Ended { .. }) => break Flow::Next,
                Ok(_) => {}
                Err(_) => break Flow::Next,
            },
            default(left) => {
                // Nobody answered in time, or the talk is over.
                match &call_id {
                    Some(id) => link.send(PhoneCommand::Hangup { call_id: id.clone() }),
                    None => break Flow::Next,
                }
                deadline = Instant::now() + Duration::from_secs(5);
                call_id = None;
            }
        }
    };
    handle.shutdown();
    flow
}

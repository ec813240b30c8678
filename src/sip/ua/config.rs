//! Everything the user agent needs to run, as plain data: built by the
//! application (`crate::softphone::config` from the workstation's settings,
//! `clinicdesk phone` from its options), never read here from a file.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::crm::Country;
use crate::crm::card::CallerCard;
use crate::sip::registration::RetryPlan;
use crate::sip::sdp::Codec;
use crate::sip::transaction::Timers;
use crate::sip::transport::Transport;

/// The SIP account registered with the clinic's PBX.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountConfig {
    /// Registrar and outbound proxy: `host`, `host:port` or an IP address.
    pub server: String,
    /// The extension (user part of the address of record).
    pub username: String,
    /// The digest user name, when it differs from `username` (empty: the same).
    pub auth_username: String,
    pub password: String,
    pub display_name: String,
}

impl fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("AccountConfig")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

impl AccountConfig {
    /// `user@server`: how the account is named in events and in the keyring.
    pub fn label(&self) -> String {
        format!("{}@{}", self.username, self.server)
    }
}

/// Where a call's sound comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AudioChoice {
    /// Silence out, nothing kept (headless default: no sound card needed).
    #[default]
    Silent,
    /// The sound cards by name (None: the system's default).
    Devices { input: Option<String>, output: Option<String> },
    /// Files: `play` as the microphone (looped), `record` what is received,
    /// `record_sent` what is sent. The second call's files get `-2` before
    /// the extension, and so on.
    Files { play: Option<PathBuf>, record: Option<PathBuf>, record_sent: Option<PathBuf> },
}

/// What a second call does while one is going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenInCall {
    /// It rings too (call waiting); the operator chooses.
    #[default]
    Ring,
    /// It is refused with 486 Busy Here.
    Busy,
}

/// The media timeout unless the settings say otherwise, seconds.
pub const DEFAULT_MEDIA_TIMEOUT_SECS: u64 = 30;

/// Everything the user agent needs to run.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// The account to register; `None` for a phone without registrar that
    /// only answers and dials full SIP addresses (`clinicdesk phone --listen`).
    pub account: Option<AccountConfig>,
    /// The local SIP address: UDP (and TCP when that is the transport) are
    /// bound here; port 0 takes a free one.
    pub listen: SocketAddr,
    pub transport: Transport,
    /// With TLS: the clinic's CA file (PEM), trusted beside the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// How national numbers are read (dialled numbers and callers).
    pub country: Country,
    /// How the caller's card is found (absent: calls ring without one).
    pub cards: Option<CardLookup>,
    pub audio: AudioChoice,
    /// Answer every incoming call after this long.
    pub auto_answer: Option<Duration>,
    pub when_in_call: WhenInCall,
    /// Codecs offered, in order of preference.
    pub codecs: Vec<Codec>,
    pub timers: Timers,
    /// The registration interval asked for, in seconds (raised for good to a
    /// registrar's Min-Expires).
    pub register_expires: u32,
    /// The first wait before registering again after a failure; later ones
    /// double, and refusals start slower (`registration::RetryPlan`).
    pub register_retry: Duration,
    /// The CRLF keep-alive toward the registrar (RFC 5626 style).
    pub keepalive: Duration,
    /// An incoming call nobody answers is declined (480) after this long.
    pub ring_timeout: Duration,
    /// An answered call that is not on hold (either way) and receives no RTP
    /// or RTCP for this long is hung up (its BYE was lost); `None`: never.
    pub media_timeout: Option<Duration>,
    /// The user part of our address when there is no account.
    pub local_user: String,
    /// Without an account: where dialled numbers go (`number@this address`),
    /// as for the demo clinic's caller, which stands in for a PBX.
    pub direct_peer: Option<SocketAddr>,
    /// Report [`IncomingTiming`]s (`clinicdesk phone --timings`).
    pub timings: bool,
    pub user_agent: String,
    /// While registered, new calls are taken only from the registrar's
    /// address; an INVITE from anywhere else (a SIP scanner's "ghost call")
    /// gets 403 and never rings. Off for PBXs that send calls from other hosts.
    pub calls_only_from_registrar: bool,
}

impl Default for UaConfig {
    fn default() -> UaConfig {
        UaConfig {
            account: None,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            transport: Transport::Udp,
            tls_ca: None,
            country: Country::Ru,
            cards: None,
            audio: AudioChoice::Silent,
            auto_answer: None,
            when_in_call: WhenInCall::Ring,
            codecs: Codec::PREFERENCE.to_vec(),
            timers: Timers::default(),
            register_expires: 600,
            register_retry: RetryPlan::default().first,
            keepalive: Duration::from_secs(25),
            ring_timeout: Duration::from_secs(180),
            media_timeout: Some(Duration::from_secs(DEFAULT_MEDIA_TIMEOUT_SECS)),
            local_user: "clinicdesk".to_owned(),
            direct_peer: None,
            timings: false,
            user_agent: format!("ClinicDesk/{}", env!("CARGO_PKG_VERSION")),
            calls_only_from_registrar: true,
        }
    }
}

/// The caller card of a number (normalised) dialled to a clinic number
/// (`did`, for call tracking): handed to the user agent by the application,
/// which knows where cards are kept. It may block (a database query): the
/// user agent runs it off its task, and a call's events wait for its card.
#[derive(Clone)]
pub struct CardLookup(Arc<LookupFn>);

/// A card lookup: the caller's number and the clinic number dialled → the card.
type LookupFn = dyn Fn(&str, Option<&str>) -> Option<Box<CallerCard>> + Send + Sync;

impl CardLookup {
    pub fn new(lookup: impl Fn(&str, Option<&str>) -> Option<Box<CallerCard>> + Send + Sync + 'static) -> CardLookup {
        CardLookup(Arc::new(lookup))
    }

    /// The card of `number`, looked up now (on the caller's thread).
    pub fn card(&self, number: &str, did: Option<&str>) -> Option<Box<CallerCard>> {
        (self.0)(number, did)
    }
}

impl fmt::Debug for CardLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardLookup")
    }
}

//! The softphone's media engine: what happens to a call's sound once SIP has agreed on it.
//!
//! The operator wears a headset all day, so the sound must be clear, immediate and never
//! drop out: an adaptive jitter buffer keeps the delay as small as the network allows, loss is
//! concealed (Opus PLC/FEC, pitch repetition for G.711 and G.722), and a headset unplugged mid-call is
//! replaced by the default device while the call goes on.
//!
//! | File | Owns |
//! |---|---|
//! | `rtp.rs` | RTP/RTCP packets (RFC 3550), sequence extension, loss/jitter/RTT statistics |
//! | `codec.rs` | the `Codec` trait and `MediaClock` (PCM rate vs RTP clock); PCMU, PCMA (own tables), G.722 and Opus; pitch concealment |
//! | `jitter.rs` | the adaptive jitter buffer and playout |
//! | `dtmf.rs` | RFC 4733 telephone-events, sending and receiving |
//! | `resample.rs` | rate conversion device ↔ codec (rubato) |
//! | `audio.rs` | `AudioSource`/`AudioSink`, null and memory ends, tones and `play_tone` (ringback, ringtone) |
//! | `wav.rs` | WAV files as microphone and recorder |
//! | `device.rs` | sound cards through cpal on their own thread, lock-free ring buffers |
//! | `session.rs` | `MediaSession`: one call's media task, its handle and events |
//!
//! # How the SIP layer starts a call's media
//!
//! ```no_run
//! # async fn call() -> Result<(), clinicdesk::media::MediaError> {
//! use clinicdesk::media::*;
//! // Before sending the offer/answer: bind, and put `sockets.port()` in `m=audio`.
//! let sockets = bind_rtp("192.0.2.10".parse().unwrap()).await?;
//! // From the negotiated SDP:
//! let mut config = MediaConfig::new("198.51.100.7:40000".parse().unwrap(), CodecKind::Pcmu, 0);
//! config.telephone_event = Some((101, 8000));
//! config.direction = Direction::from_sdp("sendrecv").unwrap_or(Direction::SendRecv);
//! // The headset (Settings' names, falling back to the default), or files for `phone --play/--record`.
//! let (source, sink) = open_devices(Some("USB Headset"), None)?;
//! let (handle, mut events) = MediaSession::start(config, sockets, Box::new(source), Box::new(sink))?;
//! handle.send_dtmf("1#")?;
//! handle.set_direction(Direction::SendOnly); // hold
//! while let Some(event) = events.recv().await {
//!     if let MediaEvent::Dtmf(digit) = event { println!("{digit}"); break; }
//! }
//! let figures = handle.stop().await?; // for the `ended` event (`CallStats` is `Serialize`)
//! # let _ = figures; Ok(()) }
//! ```
//!
//! Events: `Dtmf(char)` once per digit in order; `Stats(CallStats)` every `stats_interval`
//! (loss, jitter, RTT, jitter-buffer delay, MOS and a `Quality` for the window's indicator);
//! `Latched(addr)` when the peer's media comes from elsewhere than its SDP said (NAT);
//! `Device(DeviceEvent)` when a headset was replaced by the default or could not be opened;
//! `Error(text)` for what the operator may need to know while the call goes on.

pub mod audio;
pub mod codec;
pub mod device;
pub mod dtmf;
pub mod jitter;
pub mod resample;
pub mod rtp;
pub mod session;
pub mod stats;
pub mod wav;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use audio::{
    AudioSink, AudioSource, DeviceDirection, DeviceEvent, MemorySink, MemorySource, NullSink, NullSource, TeeSource,
    TonePattern, TonePlayer, ToneSource, play_tone,
};
pub use codec::{Codec, CodecKind, MediaClock};
pub use device::{DeviceError, DeviceSink, DeviceSource, list_devices, open_devices};
pub use session::{Direction, MediaConfig, MediaEvent, MediaHandle, MediaSession, RtpSockets, bind_rtp};
pub use stats::{CallStats, Quality};
pub use wav::{WavSink, WavSource};

/// Everything that can stop a call's media from starting or finishing cleanly.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot bind a UDP socket for RTP on {address}: {source} (is the address one of this machine's?)")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error(transparent)]
    Resample(#[from] resample::ResampleError),
    #[error(transparent)]
    Dtmf(#[from] dtmf::DtmfError),
    #[error(transparent)]
    Device(#[from] device::DeviceError),
    #[error("WAV file {}: {source}", path.display())]
    Wav {
        path: PathBuf,
        #[source]
        source: hound::Error,
    },
    #[error("WAV file {}: unusable format ({reason})", path.display())]
    WavFormat { path: PathBuf, reason: String },
    #[error("media must be started inside the tokio runtime of the services")]
    NoRuntime,
    #[error("the call's media has already stopped")]
    Stopped,
}

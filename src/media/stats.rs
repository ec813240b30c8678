//! A call's figures as the window and `clinicdesk phone` show them: what was
//! sent and received, loss and jitter both ways, what the jitter buffer and
//! concealment did, and an estimated opinion score with the quality it means.
//! Kept apart from the media task (`session.rs`) that fills them in.

use serde::Serialize;

/// Call quality as the window shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Quality {
    #[default]
    Good,
    Fair,
    Poor,
}

/// The figures of a call, sent every `stats_interval` and returned by `stop`.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct CallStats {
    pub codec: String,
    pub duration_ms: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    /// Packets lost on the way to us (RFC 3550 cumulative count).
    pub packets_lost: i64,
    /// Loss on the way to us, over the whole call, in percent.
    pub loss_percent: f64,
    /// Interarrival jitter of what we receive (RFC 3550 A.8), ms.
    pub jitter_ms: f64,
    /// Round-trip time from RTCP, ms.
    pub rtt_ms: Option<f64>,
    /// The delay our jitter buffer adds now, ms.
    pub jitter_buffer_ms: f64,
    /// The delay it is steering towards, ms.
    pub jitter_buffer_target_ms: f64,
    /// What the peer reports about our stream (RTCP), in percent and ms.
    pub remote_loss_percent: Option<f64>,
    pub remote_jitter_ms: Option<f64>,
    /// Frames rebuilt by concealment because their packet was lost.
    pub frames_concealed: u64,
    /// Frames rebuilt from the next packet's FEC.
    pub frames_fec: u64,
    /// Frames played with nothing buffered (late packets, or the peer paused).
    pub frames_underrun: u64,
    pub packets_late: u64,
    /// RTP packets from another address and stream than the peer's, ignored.
    pub foreign_packets: u64,
    /// Estimated mean opinion score (1–4.5) from loss, jitter and delay (ITU-T G.107, simplified).
    pub mos: f64,
    pub quality: Quality,
}

impl CallStats {
    /// Derives the opinion score and the quality shown from the figures.
    pub(super) fn rate(&mut self) {
        let one_way = self.rtt_ms.unwrap_or(0.0) / 2.0 + self.jitter_buffer_ms + 20.0;
        let effective = one_way + 2.0 * self.jitter_ms + 10.0;
        let mut r = if effective < 160.0 { 93.2 - effective / 40.0 } else { 93.2 - (effective - 120.0) / 10.0 };
        let loss = self.loss_percent.max(self.remote_loss_percent.unwrap_or(0.0));
        r -= 2.5 * loss;
        let r = r.clamp(0.0, 100.0);
        self.mos = (1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)).clamp(1.0, 4.5);
        self.quality = if self.mos >= 4.0 {
            Quality::Good
        } else if self.mos >= 3.4 {
            Quality::Fair
        } else {
            Quality::Poor
        };
    }
}

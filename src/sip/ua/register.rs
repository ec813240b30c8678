//! Registration with the clinic's PBX: REGISTER with our reachable address
//! (learned from rport behind NAT), refresh, recovery, and removal.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::sip::phone::PhoneEvent;
use crate::sip::registration::{Outcome, Registration};
use crate::sip::transport::Transport;
use crate::sip::uri::{Host, Uri};

impl Ua {
    pub(super) async fn register(&mut self, expires: u32) {
        let reachable = match &self.reg {
            Some(r) => self.reachable_addr(r.server.addr),
            None => return,
        };
        let Some(r) = &mut self.reg else { return };
        // Our address may have changed since the last time (network back, another interface).
        if let Uri::Sip(u) = &mut r.reg.contact.uri {
            u.host = Host::from(reachable.ip());
            u.port = Some(reachable.port());
            if r.server.transport != Transport::Udp {
                u.params.set("transport", Some(&r.server.transport.as_str().to_ascii_lowercase()));
            }
        }
        let req = r.reg.request(expires);
        let server = r.server.clone();
        self.send(req, &server, |sent| Pending::Register { sent: sent.clone() }).await;
    }

    pub(super) async fn on_register_outcome(&mut self, outcome: Outcome) {
        let Some(r) = &mut self.reg else { return };
        match outcome {
            Outcome::Pending => {}
            Outcome::Retry => {
                let expires = if r.removing { 0 } else { r.reg.expires };
                self.register(expires).await;
            }
            Outcome::Unregistered => {
                r.registered = false;
            }
            Outcome::Registered { expires, reflexive } => {
                if r.removing {
                    return;
                }
                let contact_addr = match &r.reg.contact.uri {
                    Uri::Sip(u) => u.host.ip().map(|ip| SocketAddr::new(ip, u.port.unwrap_or(5060))),
                    _ => None,
                };
                if let Some(seen) = reflexive
                    && contact_addr != Some(seen)
                    && self.public != Some(seen)
                    && !is_local_address(seen.ip(), self.bound)
                {
                    // RFC 3581: the registrar sees us elsewhere (NAT). Register where it can reach us.
                    tracing::info!(public = %seen, "behind NAT: registering the public address");
                    self.public = Some(seen);
                    self.register(self.cfg.register_expires).await;
                    return;
                }
                if self.public.is_some() && reflexive.is_some_and(|seen| is_local_address(seen.ip(), self.bound)) {
                    // No NAT any more (another network): register our own address again.
                    tracing::info!("no longer behind NAT");
                    self.public = None;
                    self.register(self.cfg.register_expires).await;
                    return;
                }
                let newly = !r.registered;
                r.registered = true;
                r.failures = 0;
                r.generation += 1;
                let generation = r.generation;
                let label = r.server_name.clone();
                self.schedule(Registration::refresh_after(expires), Timer::Register { generation });
                if newly {
                    self.emit(PhoneEvent::Registered { account: label });
                }
            }
            Outcome::Refused { code, reason } => {
                r.registered = false;
                r.generation += 1;
                if r.removing {
                    return;
                }
                tracing::error!(code, reason, "registration refused: not retried until the settings change");
                self.emit(PhoneEvent::RegistrationFailed { code, reason });
            }
            Outcome::Failed { code, reason } => {
                if r.removing {
                    r.registered = false;
                    return;
                }
                r.registered = false;
                r.failures = r.failures.saturating_add(1);
                r.generation += 1;
                let generation = r.generation;
                // Try again soon, then less often: the network or the PBX may come back.
                let shift = r.failures.saturating_sub(1).min(4);
                let wait = Duration::from_secs((5u64 << shift).min(60));
                self.schedule(wait, Timer::Register { generation });
                tracing::warn!(code, reason, retry_in = ?wait, "registration failed");
                self.emit(PhoneEvent::RegistrationFailed { code, reason });
            }
        }
    }
}

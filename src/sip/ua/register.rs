//! Registration with the clinic's PBX: REGISTER with our reachable address
//! (learned from rport behind NAT), refresh before the granted interval runs
//! out, retries after refusals and failures, and removal.

use std::net::SocketAddr;

use super::*;
use crate::sip::phone::PhoneEvent;
use crate::sip::registration::{Outcome, Registration};
use crate::sip::transport::Transport;
use crate::sip::uri::{Host, Uri};

impl Ua {
    /// Sends the account's next REGISTER: for the interval the registrar
    /// accepts, or to remove the binding when shutting down.
    pub(super) async fn register(&mut self) {
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
        let req = if r.removing { r.reg.request(0) } else { r.reg.refresh() };
        let server = r.server.clone();
        self.send(req, &server, |sent| Pending::Register { sent: sent.clone() }).await;
    }

    pub(super) async fn on_register_outcome(&mut self, outcome: Outcome) {
        let Some(r) = &mut self.reg else { return };
        match outcome {
            Outcome::Pending => {}
            Outcome::Retry => self.register().await,
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
                    self.register().await;
                    return;
                }
                if self.public.is_some() && reflexive.is_some_and(|seen| is_local_address(seen.ip(), self.bound)) {
                    // No NAT any more (another network): register our own address again.
                    tracing::info!("no longer behind NAT");
                    self.public = None;
                    self.register().await;
                    return;
                }
                let newly = !r.registered;
                r.registered = true;
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
                self.emit(PhoneEvent::RegistrationFailed { code, reason, retry_in_ms: None });
            }
            Outcome::Failed { code, reason, retry_in } => {
                r.registered = false;
                if r.removing {
                    return;
                }
                r.generation += 1;
                let generation = r.generation;
                // The network or the PBX may come back, or its administrator fix the account.
                self.schedule(retry_in, Timer::Register { generation });
                tracing::warn!(code, reason, retry_in = ?retry_in, "registration failed");
                let retry_in_ms = Some(u64::try_from(retry_in.as_millis()).unwrap_or(u64::MAX));
                self.emit(PhoneEvent::RegistrationFailed { code, reason, retry_in_ms });
            }
        }
    }
}

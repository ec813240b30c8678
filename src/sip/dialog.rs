//! Dialogs (RFC 3261 §12): what a call remembers between its requests.
//!
//! A dialog is born from an INVITE and its 2xx (or the 1xx/2xx we send as
//! UAS). It fixes the Call-ID and both tags, carries the two CSeq counters,
//! the peer's target (its Contact, refreshed by re-INVITE and UPDATE) and the
//! route set (Record-Route), and builds every request sent inside the call —
//! BYE, re-INVITE, UPDATE, REFER, NOTIFY and the ACK for a 2xx — with the
//! Request-URI and Route headers RFC 3261 §12.2.1.1 asks for (loose routing,
//! and the strict-routing fallback for old proxies).
//!
//! It is pure data: no sockets, no timers. The user agent adds Via, Contact
//! and the body, and decides where to send with [`Dialog::next_hop`].

use super::headers::{Contacts, HeaderError, HeaderName, NameAddr};
use super::message::{Method, Request, Response};
use super::uri::Uri;

/// Why a dialog cannot be made or a request does not fit it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("the {message} has no Contact to send later requests to")]
    NoContact { message: &'static str },
    #[error("the {message} has no tag in its {header}")]
    NoTag { message: &'static str, header: &'static str },
    #[error("CSeq {got} is not above {last}, the last one the peer used in this dialog")]
    OutOfOrder { got: u32, last: u32 },
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// What identifies a dialog from our side (RFC 3261 §12: Call-ID, local tag, remote tag).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

impl DialogId {
    /// The dialog an incoming request belongs to: our tag is in its To, theirs in its From.
    /// `None` for a request outside any dialog (no To tag).
    pub fn of_incoming(req: &Request) -> Option<DialogId> {
        let to = req.headers.to().ok()?;
        let from = req.headers.from().ok()?;
        Some(DialogId {
            call_id: req.headers.call_id().ok()?.to_owned(),
            local_tag: to.tag()?.to_owned(),
            remote_tag: from.tag().unwrap_or("").to_owned(),
        })
    }
}

/// One confirmed (or early) dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: DialogId,
    /// Our address of record with our tag (From in requests we send).
    pub local: NameAddr,
    /// The peer's, with its tag (To in requests we send).
    pub remote: NameAddr,
    /// The CSeq of the last request we sent in the dialog.
    pub local_seq: u32,
    /// The CSeq of the last request the peer sent, once it sent one.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go (the peer's Contact).
    pub remote_target: Uri,
    /// Record-Route, in the order our requests must visit it.
    pub route_set: Vec<NameAddr>,
}

fn first_contact(contacts: Result<Contacts, HeaderError>, message: &'static str) -> Result<Uri, DialogError> {
    match contacts? {
        Contacts::Addresses(list) => list.into_iter().next().map(|c| c.uri).ok_or(DialogError::NoContact { message }),
        Contacts::Wildcard => Err(DialogError::NoContact { message }),
    }
}

impl Dialog {
    /// The dialog we create as UAS when we answer `invite` (with a 1xx or 2xx
    /// carrying `local_tag` in its To). An RFC 2543 caller may send no From
    /// tag and no Contact (RFC 4475 §3.4.1): the tag is then empty and its
    /// From address is where later requests go.
    pub fn as_uas(invite: &Request, local_tag: &str) -> Result<Dialog, DialogError> {
        let from = invite.headers.from()?;
        let mut to = invite.headers.to()?;
        to.set_tag(local_tag);
        let remote_tag = from.tag().unwrap_or("").to_owned();
        let remote_target = match invite.headers.contacts()? {
            Contacts::Addresses(list) => list.into_iter().next().map_or_else(|| from.uri.clone(), |c| c.uri),
            Contacts::Wildcard => return Err(DialogError::NoContact { message: "INVITE" }),
        };
        Ok(Dialog {
            id: DialogId { call_id: invite.headers.call_id()?.to_owned(), local_tag: local_tag.to_owned(), remote_tag },
            remote_target,
            route_set: invite.headers.record_routes()?,
            remote_seq: Some(invite.headers.cseq()?.seq),
            local_seq: 0,
            local: to,
            remote: from,
        })
    }

    /// The dialog a 2xx (or a 1xx with a To tag) to our `invite` creates.
    pub fn as_uac(invite: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let local = invite.headers.from()?;
        let remote = resp.headers.to()?;
        let local_tag = local.tag().ok_or(DialogError::NoTag { message: "INVITE", header: "From" })?.to_owned();
        let remote_tag = remote.tag().ok_or(DialogError::NoTag { message: "response", header: "To" })?.to_owned();
        let mut route_set = resp.headers.record_routes()?;
        route_set.reverse();
        Ok(Dialog {
            id: DialogId { call_id: invite.headers.call_id()?.to_owned(), local_tag, remote_tag },
            remote_target: first_contact(resp.headers.contacts(), "response")?,
            route_set,
            local_seq: invite.headers.cseq()?.seq,
            remote_seq: None,
            local,
            remote,
        })
    }

    /// Takes a request the peer sent in this dialog: checks its CSeq is new
    /// (RFC 3261 §12.2.2: a lower one gets 500) and, for the target refresh
    /// requests (re-INVITE, UPDATE), takes the new Contact.
    pub fn on_request(&mut self, req: &Request) -> Result<(), DialogError> {
        let seq = req.headers.cseq()?.seq;
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(last) = self.remote_seq
                && seq <= last
            {
                return Err(DialogError::OutOfOrder { got: seq, last });
            }
            self.remote_seq = Some(seq);
        }
        if matches!(req.method, Method::Invite | Method::Update)
            && let Ok(target) = first_contact(req.headers.contacts(), "request")
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Takes the Contact of a 2xx to our re-INVITE or UPDATE (a target refresh).
    pub fn on_refresh_response(&mut self, resp: &Response) {
        if let Ok(target) = first_contact(resp.headers.contacts(), "response") {
            self.remote_target = target;
        }
    }

    /// Where requests of this dialog are sent: the first route, or the peer's target.
    pub fn next_hop(&self) -> &Uri {
        self.route_set.first().map_or(&self.remote_target, |r| &r.uri)
    }

    /// A new request in the dialog with the next CSeq: Request-URI, Route,
    /// From, To, Call-ID, CSeq and Max-Forwards set; the caller adds Via,
    /// Contact and the body.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1);
        let seq = self.local_seq;
        self.request_with_seq(method, seq)
    }

    /// The ACK for a 2xx to the INVITE sent with CSeq `invite_seq` (RFC 3261 §13.2.2.4).
    pub fn ack(&self, invite_seq: u32) -> Request {
        self.request_with_seq(Method::Ack, invite_seq)
    }

    fn request_with_seq(&self, method: Method, seq: u32) -> Request {
        let loose = self.route_set.first().is_none_or(|r| r.uri.as_sip().is_some_and(|u| u.is_loose_route()));
        let (uri, routes): (Uri, Vec<String>) = if loose {
            (self.remote_target.clone(), self.route_set.iter().map(ToString::to_string).collect())
        } else {
            // RFC 3261 §12.2.1.1: a strict router gets the request addressed to it,
            // with the peer's target appended as the last route.
            let mut uri = self.route_set.first().map_or(self.remote_target.clone(), |r| r.uri.clone());
            if let Uri::Sip(u) = &mut uri {
                u.headers.clear();
                u.params.remove("method");
            }
            let mut routes: Vec<String> = self.route_set.iter().skip(1).map(ToString::to_string).collect();
            routes.push(NameAddr::new(self.remote_target.clone()).to_string());
            (uri, routes)
        };
        let mut req = Request::new(method.clone(), uri);
        for r in routes {
            req.headers.push(HeaderName::Route, r);
        }
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push_typed(HeaderName::From, &self.local);
        req.headers.push_typed(HeaderName::To, &self.remote);
        req.headers.push(HeaderName::CallId, self.id.call_id.clone());
        req.headers.push(HeaderName::CSeq, format!("{seq} {method}"));
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    const INVITE: &str = "INVITE sip:100@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKp1\r\n\
Via: SIP/2.0/UDP 192.0.2.9:5080;branch=z9hG4bKa1\r\n\
Record-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n\
From: \"Anna\" <sip:200@example.com>;tag=from1\r\nTo: <sip:100@example.com>\r\nCall-ID: c1@x\r\n\
CSeq: 10 INVITE\r\nContact: <sip:200@192.0.2.9:5080>\r\nMax-Forwards: 69\r\nContent-Length: 0\r\n\r\n";

    fn parse(text: &str) -> Message {
        Message::parse(text.as_bytes()).unwrap()
    }

    fn invite() -> Request {
        match parse(INVITE) {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn uas_dialog_routes_through_the_record_route_in_order() {
        let mut d = Dialog::as_uas(&invite(), "ours").unwrap();
        assert_eq!(d.id, DialogId { call_id: "c1@x".into(), local_tag: "ours".into(), remote_tag: "from1".into() });
        assert_eq!(d.next_hop().to_string(), "sip:p2.example.com;lr");
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:200@192.0.2.9:5080");
        let routes: Vec<&str> = bye.headers.get_all(&HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"]);
        assert_eq!(bye.headers.from().unwrap().tag(), Some("ours"));
        assert_eq!(bye.headers.to().unwrap().tag(), Some("from1"));
        assert_eq!(bye.headers.cseq().unwrap().seq, 1);
        assert_eq!(d.request(Method::Bye).headers.cseq().unwrap().seq, 2);
    }

    #[test]
    fn uac_dialog_reverses_the_record_route_and_acks_with_the_invite_cseq() {
        let mut inv = invite();
        inv.headers.set(HeaderName::From, "<sip:100@example.com>;tag=me");
        let ok = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKp1\r\n\
             Record-Route: <sip:p2.example.com;lr>\r\nRecord-Route: <sip:p1.example.com;lr>\r\n\
             From: <sip:100@example.com>;tag=me\r\nTo: <sip:200@example.com>;tag=them\r\nCall-ID: c1@x\r\n\
             CSeq: 10 INVITE\r\nContact: <sip:200@192.0.2.9:5080;transport=udp>\r\nContent-Length: 0\r\n\r\n";
        let Message::Response(ok) = parse(ok) else { panic!("response") };
        let mut d = Dialog::as_uac(&inv, &ok).unwrap();
        assert_eq!(d.next_hop().to_string(), "sip:p1.example.com;lr");
        let ack = d.ack(10);
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "10 ACK");
        assert_eq!(ack.uri.to_string(), "sip:200@192.0.2.9:5080;transport=udp");
        assert_eq!(d.request(Method::Bye).headers.cseq().unwrap().seq, 11);
        assert_eq!(ack.headers.to().unwrap().tag(), Some("them"));
    }

    #[test]
    fn strict_router_gets_the_request_uri_and_the_target_goes_last() {
        let mut inv = invite();
        inv.headers.remove(&HeaderName::RecordRoute);
        inv.headers.push(HeaderName::RecordRoute, "<sip:old.example.com>");
        let mut d = Dialog::as_uas(&inv, "t").unwrap();
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri.to_string(), "sip:old.example.com");
        assert_eq!(bye.headers.get(&HeaderName::Route), Some("<sip:200@192.0.2.9:5080>"));
    }

    #[test]
    fn remote_cseq_must_grow_and_reinvite_refreshes_the_target() {
        let mut d = Dialog::as_uas(&invite(), "t").unwrap();
        let mut re = invite();
        re.headers.set(HeaderName::To, "<sip:100@example.com>;tag=t");
        assert_eq!(d.on_request(&re), Err(DialogError::OutOfOrder { got: 10, last: 10 }));
        re.headers.set(HeaderName::CSeq, "11 INVITE");
        re.headers.set(HeaderName::Contact, "<sip:200@192.0.2.77:5080>");
        d.on_request(&re).unwrap();
        assert_eq!(d.remote_target.to_string(), "sip:200@192.0.2.77:5080");
        assert_eq!(DialogId::of_incoming(&re), Some(d.id.clone()));
        // RFC 2543: no From tag, no Contact; later requests go to the From address.
        let mut old = invite();
        old.headers.remove(&HeaderName::Contact);
        old.headers.set(HeaderName::From, "<sip:200@example.com>");
        let d = Dialog::as_uas(&old, "t").unwrap();
        assert_eq!((d.id.remote_tag.as_str(), d.remote_target.to_string()), ("", "sip:200@example.com".to_owned()));
    }
}

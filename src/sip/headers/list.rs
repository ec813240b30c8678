//! The ordered header list of a message, its typed accessors, and the
//! syntax check the message parser runs on each header line.

use std::fmt;

use super::name::{HeaderError, HeaderName, malformed};
use super::scalar::{check_call_id, check_rfc1123_date, parse_content_length, parse_delta_seconds, parse_max_forwards};
use super::values::{CSeq, Contacts, Event, MediaType, NameAddr, Replaces, SubscriptionState, Via};
use crate::sip::method::Method;
use crate::sip::syntax::split_list;

/// One header line: its name and its value with folding undone and the
/// surrounding white space trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The header fields of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Appends a typed value (anything that displays as a header value).
    pub fn push_typed(&mut self, name: HeaderName, value: &impl fmt::Display) {
        self.push(name, value.to_string());
    }

    /// Inserts a header line before all others of the same name (a new top Via, a preloaded Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        let at = self.0.iter().position(|h| h.name.is(&name)).unwrap_or(self.0.len());
        self.0.insert(at, Header { name, value: value.into() });
    }

    /// Replaces every line of `name` with one line (appended if there was none).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name.is(&name)) {
            Some(first) => {
                if let Some(h) = self.0.get_mut(first) {
                    h.value = value;
                }
                let mut i = 0;
                self.0.retain(|h| {
                    i += 1;
                    i - 1 == first || !h.name.is(&name)
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of `name`; returns how many there were.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !h.name.is(name));
        before - self.0.len()
    }

    /// The value of the first line of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| h.name.is(name)).map(|h| h.value.as_str())
    }

    /// The values of every line of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |h| h.name.is(name)).map(|h| h.value.as_str())
    }

    /// How many lines of `name` there are.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| h.name.is(name)).count()
    }

    /// The comma-separated elements of every line of `name`, in order
    /// (for list headers such as Via, Contact, Route, Allow, Supported).
    pub fn list<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.get_all(name).flat_map(split_list)
    }

    /// The value of a header that must appear exactly once.
    pub fn single(&self, name: &HeaderName) -> Result<&str, HeaderError> {
        let mut all = self.get_all(name);
        let first = all.next().ok_or(HeaderError::Missing(name.static_name()))?;
        if all.next().is_some() {
            return Err(HeaderError::Repeated(name.static_name()));
        }
        Ok(first)
    }

    fn optional_single(&self, name: &HeaderName) -> Result<Option<&str>, HeaderError> {
        match self.single(name) {
            Ok(v) => Ok(Some(v)),
            Err(HeaderError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        self.list(&HeaderName::Via).map(Via::parse).collect()
    }

    /// The topmost Via (the one naming the sender of a request, or this UA in a response).
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let first = self.list(&HeaderName::Via).next().ok_or(HeaderError::Missing("Via"))?;
        Via::parse(first)
    }

    /// Replaces the topmost Via value (splitting its line if it held several values).
    pub fn set_top_via(&mut self, via: &Via) {
        let Some(pos) = self.0.iter().position(|h| h.name.is(&HeaderName::Via)) else {
            self.push_typed(HeaderName::Via, via);
            return;
        };
        let rest: Vec<String> =
            self.0.get(pos).map(|h| split_list(&h.value).skip(1).map(str::to_owned).collect()).unwrap_or_default();
        if let Some(h) = self.0.get_mut(pos) {
            h.value = via.to_string();
        }
        if !rest.is_empty() {
            self.0.insert(pos + 1, Header { name: HeaderName::Via, value: rest.join(", ") });
        }
    }

    /// The From header (exactly one required).
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse_header(&HeaderName::From, self.single(&HeaderName::From)?)
    }

    /// The To header (exactly one required).
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse_header(&HeaderName::To, self.single(&HeaderName::To)?)
    }

    /// The Call-ID (exactly one required).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = self.single(&HeaderName::CallId)?;
        check_call_id(v)?;
        Ok(v)
    }

    /// The CSeq (exactly one required).
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.single(&HeaderName::CSeq)?)
    }

    /// Max-Forwards (0–255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.optional_single(&HeaderName::MaxForwards)?.map(parse_max_forwards).transpose()
    }

    /// Expires in seconds, if present; values beyond 2³²−1 read as 2³²−1.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional_single(&HeaderName::Expires)?.map(|v| parse_delta_seconds(&HeaderName::Expires, v)).transpose()
    }

    /// Min-Expires in seconds (in a 423 response), if present.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional_single(&HeaderName::MinExpires)?
            .map(|v| parse_delta_seconds(&HeaderName::MinExpires, v))
            .transpose()
    }

    /// Retry-After's seconds (RFC 3261 §20.33: `120 (in a meeting);duration=60`), if present.
    pub fn retry_after(&self) -> Result<Option<u32>, HeaderError> {
        self.optional_single(&HeaderName::RetryAfter)?
            .map(|v| {
                let seconds = v.split(|c: char| c == ';' || c == '(' || c.is_ascii_whitespace()).next().unwrap_or(v);
                parse_delta_seconds(&HeaderName::RetryAfter, seconds)
            })
            .transpose()
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        self.optional_single(&HeaderName::ContentLength)?.map(parse_content_length).transpose()
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, HeaderError> {
        self.optional_single(&HeaderName::ContentType)?.map(MediaType::parse).transpose()
    }

    /// Contact: `*` or the listed addresses (empty when there is no Contact).
    pub fn contacts(&self) -> Result<Contacts, HeaderError> {
        let items: Vec<&str> = self.list(&HeaderName::Contact).collect();
        if items.contains(&"*") {
            if items.len() != 1 {
                return Err(malformed(&HeaderName::Contact, "'*' combined with other contacts"));
            }
            return Ok(Contacts::Wildcard);
        }
        items
            .into_iter()
            .map(|i| NameAddr::parse_header(&HeaderName::Contact, i))
            .collect::<Result<_, _>>()
            .map(Contacts::Addresses)
    }

    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::Route).map(|v| NameAddr::parse_header(&HeaderName::Route, v)).collect()
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::RecordRoute).map(|v| NameAddr::parse_header(&HeaderName::RecordRoute, v)).collect()
    }

    /// P-Asserted-Identity values (RFC 3325), in order.
    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::PAssertedIdentity)
            .map(|v| NameAddr::parse_header(&HeaderName::PAssertedIdentity, v))
            .collect()
    }

    /// The methods of Allow.
    pub fn allow(&self) -> Vec<Method> {
        self.list(&HeaderName::Allow).filter(|s| !s.is_empty()).map(Method::parse).collect()
    }

    /// The option tags of a Supported, Require, Unsupported or Proxy-Require header.
    pub fn option_tags<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.list(name).filter(|s| !s.is_empty())
    }

    /// Event (RFC 6665), if present.
    pub fn event(&self) -> Result<Option<Event>, HeaderError> {
        self.optional_single(&HeaderName::Event)?.map(Event::parse).transpose()
    }

    /// Subscription-State (RFC 6665), if present.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, HeaderError> {
        self.optional_single(&HeaderName::SubscriptionState)?.map(SubscriptionState::parse).transpose()
    }

    /// Refer-To (RFC 3515), if present.
    pub fn refer_to(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.optional_single(&HeaderName::ReferTo)?.map(|v| NameAddr::parse_header(&HeaderName::ReferTo, v)).transpose()
    }

    /// Referred-By (RFC 3892), if present.
    pub fn referred_by(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.optional_single(&HeaderName::ReferredBy)?
            .map(|v| NameAddr::parse_header(&HeaderName::ReferredBy, v))
            .transpose()
    }

    /// Replaces (RFC 3891), if present.
    pub fn replaces(&self) -> Result<Option<Replaces>, HeaderError> {
        self.optional_single(&HeaderName::Replaces)?.map(Replaces::parse).transpose()
    }
}

/// Checks a header value's syntax for the fields every message relies on;
/// the message parser calls this for each line so a malformed one is caught
/// with the message, not later in the user agent.
pub(crate) fn check_core_header(name: &HeaderName, value: &str) -> Result<(), HeaderError> {
    match name {
        HeaderName::Via => {
            for v in split_list(value) {
                Via::parse(v)?;
            }
        }
        HeaderName::From | HeaderName::To => {
            NameAddr::parse_header(name, value)?;
        }
        HeaderName::Contact if value != "*" => {
            for v in split_list(value) {
                NameAddr::parse_header(name, v)?;
            }
        }
        HeaderName::Route | HeaderName::RecordRoute => {
            for v in split_list(value) {
                NameAddr::parse_header(name, v)?;
            }
        }
        HeaderName::CallId => check_call_id(value)?,
        HeaderName::CSeq => {
            CSeq::parse(value)?;
        }
        HeaderName::MaxForwards => {
            parse_max_forwards(value)?;
        }
        HeaderName::ContentLength => {
            parse_content_length(value)?;
        }
        HeaderName::Expires => {
            parse_delta_seconds(name, value)?;
        }
        HeaderName::Date => check_rfc1123_date(value)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_list_and_edit() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2");
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        h.push(HeaderName::Allow, "INVITE, ACK,BYE");
        assert_eq!(h.vias().unwrap().len(), 3);
        let mut top = h.top_via().unwrap();
        top.params.set("received", Some("192.0.2.9"));
        h.set_top_via(&top);
        assert_eq!(
            h.get_all(&HeaderName::Via).collect::<Vec<_>>(),
            vec![
                "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.9",
                "SIP/2.0/UDP b;branch=z9hG4bK2",
                "SIP/2.0/UDP c;branch=z9hG4bK3"
            ]
        );
        assert_eq!(h.allow(), vec![Method::Invite, Method::Ack, Method::Bye]);
        h.push(HeaderName::Allow, "CANCEL");
        h.set(HeaderName::Allow, "OPTIONS");
        assert_eq!(h.get_all(&HeaderName::Allow).collect::<Vec<_>>(), vec!["OPTIONS"]);
        assert_eq!(h.remove(&HeaderName::Via), 3);
        assert_eq!(h.single(&HeaderName::CallId), Err(HeaderError::Missing("Call-ID")));
    }

    #[test]
    fn retry_after_with_comment_and_parameters() {
        let mut h = Headers::new();
        assert_eq!(h.retry_after(), Ok(None));
        h.push(HeaderName::RetryAfter, "120 (I'm in a meeting);duration=60");
        assert_eq!(h.retry_after(), Ok(Some(120)));
        h.set(HeaderName::RetryAfter, "18000;duration=3600");
        assert_eq!(h.retry_after(), Ok(Some(18000)));
        h.set(HeaderName::RetryAfter, "soon");
        assert!(h.retry_after().is_err());
    }
}

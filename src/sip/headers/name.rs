//! Header names (case-insensitive, compact forms folded to the full name)
//! and what can be wrong with a header field.

use std::borrow::Cow;
use std::fmt;

/// What is wrong with a header field (or that a required one is missing or repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("malformed {name}: {reason}")]
    Malformed { name: &'static str, reason: Cow<'static, str> },
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} appears more than once")]
    Repeated(&'static str),
}

pub(super) fn malformed(name: &HeaderName, reason: impl Into<Cow<'static, str>>) -> HeaderError {
    HeaderError::Malformed { name: name.static_name(), reason: reason.into() }
}

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal, $lower:literal $(, $compact:literal)? ; )*) => {
        /// A header field name. Known names (and their compact forms) parse to
        /// their variant; anything else is kept as written in `Other`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            Other(String),
        }

        impl HeaderName {
            /// The name from a header line: case-insensitive, compact forms accepted.
            pub fn parse(name: &str) -> HeaderName {
                let mut buf = [0u8; 24];
                let len = name.len();
                if let Some(lower) = buf.get_mut(..len) {
                    lower.copy_from_slice(name.as_bytes());
                    lower.make_ascii_lowercase();
                    match &*lower {
                        $( $lower $( | $compact )? => return HeaderName::$variant, )*
                        _ => {}
                    }
                }
                HeaderName::Other(name.to_owned())
            }

            /// The name as this user agent writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(s) => s,
                }
            }

            pub(super) fn static_name(&self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(_) => "extension header",
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept", b"accept";
    AcceptContact => "Accept-Contact", b"accept-contact", b"a";
    AcceptEncoding => "Accept-Encoding", b"accept-encoding";
    AcceptLanguage => "Accept-Language", b"accept-language";
    AlertInfo => "Alert-Info", b"alert-info";
    Allow => "Allow", b"allow";
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    AuthenticationInfo => "Authentication-Info", b"authentication-info";
    Authorization => "Authorization", b"authorization";
    CallId => "Call-ID", b"call-id", b"i";
    CallInfo => "Call-Info", b"call-info";
    Contact => "Contact", b"contact", b"m";
    ContentDisposition => "Content-Disposition", b"content-disposition";
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    ContentLanguage => "Content-Language", b"content-language";
    ContentLength => "Content-Length", b"content-length", b"l";
    ContentType => "Content-Type", b"content-type", b"c";
    CSeq => "CSeq", b"cseq";
    Date => "Date", b"date";
    ErrorInfo => "Error-Info", b"error-info";
    Event => "Event", b"event", b"o";
    Expires => "Expires", b"expires";
    From => "From", b"from", b"f";
    Identity => "Identity", b"identity", b"y";
    InReplyTo => "In-Reply-To", b"in-reply-to";
    MaxForwards => "Max-Forwards", b"max-forwards";
    MinExpires => "Min-Expires", b"min-expires";
    MinSe => "Min-SE", b"min-se";
    MimeVersion => "MIME-Version", b"mime-version";
    Organization => "Organization", b"organization";
    PAssertedIdentity => "P-Asserted-Identity", b"p-asserted-identity";
    PPreferredIdentity => "P-Preferred-Identity", b"p-preferred-identity";
    Priority => "Priority", b"priority";
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    ProxyRequire => "Proxy-Require", b"proxy-require";
    RAck => "RAck", b"rack";
    Reason => "Reason", b"reason";
    RecordRoute => "Record-Route", b"record-route";
    ReferTo => "Refer-To", b"refer-to", b"r";
    ReferredBy => "Referred-By", b"referred-by", b"b";
    RejectContact => "Reject-Contact", b"reject-contact", b"j";
    Replaces => "Replaces", b"replaces";
    ReplyTo => "Reply-To", b"reply-to";
    RequestDisposition => "Request-Disposition", b"request-disposition", b"d";
    Require => "Require", b"require";
    RetryAfter => "Retry-After", b"retry-after";
    Route => "Route", b"route";
    RSeq => "RSeq", b"rseq";
    Server => "Server", b"server";
    SessionExpires => "Session-Expires", b"session-expires", b"x";
    Subject => "Subject", b"subject", b"s";
    SubscriptionState => "Subscription-State", b"subscription-state";
    Supported => "Supported", b"supported", b"k";
    Timestamp => "Timestamp", b"timestamp";
    To => "To", b"to", b"t";
    Unsupported => "Unsupported", b"unsupported";
    UserAgent => "User-Agent", b"user-agent";
    Via => "Via", b"via", b"v";
    Warning => "Warning", b"warning";
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
}

impl HeaderName {
    /// Compares with another name the way SIP does (case-insensitively).
    pub fn is(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_and_compact_forms() {
        assert_eq!(HeaderName::parse("vIa"), HeaderName::Via);
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("K"), HeaderName::Supported);
        assert_eq!(HeaderName::parse("o"), HeaderName::Event);
        assert_eq!(HeaderName::parse("x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::parse("C%6Fntact"), HeaderName::Other("C%6Fntact".into()));
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
        assert!(HeaderName::parse("X-Foo").is(&HeaderName::parse("x-foo")));
    }
}

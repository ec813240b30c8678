//! One URI as it appears in a Request-Line or inside `<>` (sip, sips, tel,
//! any other scheme), and a host as in a Via sent-by.
//!
//! Checks: no panic; a URI or host that parses prints to text that parses
//! back to the same value; `SipUri::parse` agrees with `Uri::parse`.

#![no_main]

use clinicdesk::sip::{Host, SipUri, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match Uri::parse(s) {
        Ok(uri) => {
            let text = uri.to_string();
            match Uri::parse(&text) {
                Ok(again) => assert_eq!(again, uri, "{s:?} printed as {text:?} parses differently"),
                Err(e) => panic!("{s:?} printed as {text:?} does not parse: {e}"),
            }
            let _ = uri.scheme();
            if let Some(sip) = uri.as_sip() {
                let _ = sip.user_decoded();
                let _ = sip.user_bytes();
                let _ = sip.param("transport");
                let _ = sip.header("replaces");
                let _ = sip.port_or_default();
                let _ = sip.is_loose_route();
                assert_eq!(SipUri::parse(s).as_ref(), Ok(sip));
            } else {
                assert!(SipUri::parse(s).is_err());
            }
        }
        Err(_) => assert!(SipUri::parse(s).is_err()),
    }
    if let Ok(host) = Host::parse(s) {
        let text = host.to_string();
        match Host::parse(&text) {
            Ok(again) => assert_eq!(again, host, "host {s:?} printed as {text:?} parses differently"),
            Err(e) => panic!("host {s:?} printed as {text:?} does not parse: {e}"),
        }
        let _ = host.ip();
        assert!(host.same_as(&host));
    }
});

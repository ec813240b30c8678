//! Header values that are one number or token: Call-ID, Max-Forwards,
//! delta-seconds (Expires, Min-Expires), Content-Length, Date.

use super::name::{HeaderError, HeaderName, malformed};
use crate::sip::syntax::{is_word_char, parse_decimal};

pub(super) fn check_call_id(v: &str) -> Result<(), HeaderError> {
    // callid = word [ "@" word ]
    let mut parts = v.splitn(2, '@');
    let ok = parts.all(|w| !w.is_empty() && w.bytes().all(is_word_char));
    if ok { Ok(()) } else { Err(malformed(&HeaderName::CallId, "not word[@word]")) }
}

pub(super) fn parse_max_forwards(v: &str) -> Result<u8, HeaderError> {
    parse_decimal(v)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| malformed(&HeaderName::MaxForwards, "not a number from 0 to 255"))
}

pub(super) fn parse_delta_seconds(name: &HeaderName, v: &str) -> Result<u32, HeaderError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(name, "not a number of seconds"));
    }
    // RFC 3261 §20.19: larger values are taken as 2**32-1 (RFC 4475 §3.1.2.4).
    Ok(parse_decimal(v).and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX))
}

pub(crate) fn parse_content_length(v: &str) -> Result<usize, HeaderError> {
    parse_decimal(v)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| malformed(&HeaderName::ContentLength, "not a non-negative number"))
}

/// RFC 3261 §20.17: `Date: Sat, 13 Nov 2010 23:29:00 GMT` (rfc1123-date, always GMT).
pub(super) fn check_rfc1123_date(v: &str) -> Result<(), HeaderError> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let bad = |reason: &'static str| Err(malformed(&HeaderName::Date, reason));
    let Some((wkday, rest)) = v.split_once(", ") else { return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'") };
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'");
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = {
        let t: Vec<&str> = time.split(':').collect();
        t.len() == 3 && t.iter().all(|p| digits(p, 2))
    };
    if !DAYS.contains(&wkday) || !MONTHS.contains(month) || !digits(day, 2) || !digits(year, 4) || !time_ok {
        return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'");
    }
    if *zone != "GMT" {
        return bad("time zone must be GMT");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::CSeq;
    use crate::sip::method::Method;

    #[test]
    fn scalar_headers() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap(), CSeq { seq: 9, method: Method::Invite });
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("300").is_err());
        assert_eq!(parse_delta_seconds(&HeaderName::Expires, "1".repeat(40).as_str()), Ok(u32::MAX));
        assert!(parse_content_length("-999").is_err());
        assert!(check_rfc1123_date("Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_rfc1123_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }
}

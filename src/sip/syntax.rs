//! The small lexical pieces of RFC 3261 §25 shared by the URI, header, auth
//! and message parsers: tokens, linear white space, quoted strings, comma
//! lists that respect quotes and angle brackets, `;name=value` parameters and
//! `%HH` escapes.
//!
//! Everything here works on `&str` with byte searches for ASCII delimiters,
//! so every split lands on a character boundary and no input can make these
//! functions panic.

use std::borrow::Cow;
use std::fmt;

/// Character classes as 256-entry tables: the parser asks these for every byte.
// Evaluated at compile time only, where an out-of-range index is a build error, not a panic.
#[allow(clippy::indexing_slicing)]
const fn class_table(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

static TOKEN_CHARS: [bool; 256] = class_table(b"-.!%*_+`'~");
static WORD_CHARS: [bool; 256] = class_table(b"-.!%*_+`'~()<>:\\\"/[]?{}");

/// RFC 3261 `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~".
#[inline]
pub(crate) fn is_token_char(b: u8) -> bool {
    TOKEN_CHARS.get(usize::from(b)).copied().unwrap_or(false)
}

/// A non-empty RFC 3261 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// RFC 3261 `word` characters (Call-ID): token characters plus `( ) < > : \ " / [ ] ? { }`.
#[inline]
pub(crate) fn is_word_char(b: u8) -> bool {
    WORD_CHARS.get(usize::from(b)).copied().unwrap_or(false)
}

/// The position of the first `needle` in `hay`, eight bytes at a time (the
/// message parser's line search).
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0usize;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // A zero byte in x is a match (the classic "has zero byte" test).
        if x.wrapping_sub(LO) & !x & HI != 0 {
            return chunk.iter().position(|b| *b == needle).map(|i| offset + i);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|b| *b == needle).map(|i| offset + i)
}

/// SP or HTAB: what is left of linear white space once folding is undone.
pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

pub(crate) fn trim_ws_start(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

/// Splits `s` at the first byte that fails `keep`: (the run, the rest).
pub(crate) fn take_while(s: &str, keep: impl Fn(u8) -> bool) -> (&str, &str) {
    let end = s.bytes().position(|b| !keep(b)).unwrap_or(s.len());
    // `end` is at an ASCII byte or the end, so both halves are valid.
    s.split_at_checked(end).unwrap_or((s, ""))
}

/// Reads an RFC 3261 quoted-string at the start of `s` (which must begin
/// with `"`): the unescaped content and what follows the closing quote.
pub(crate) fn parse_quoted(s: &str) -> Result<(String, &str), &'static str> {
    let Some(inner) = s.strip_prefix('"') else {
        return Err("expected a quoted string");
    };
    let mut out = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let rest = inner.get(i + 1..).unwrap_or("");
                return Ok((out, rest));
            }
            '\\' => match chars.next() {
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                Some((_, e)) if e.is_ascii() && e != '\r' && e != '\n' => out.push(e),
                _ => return Err("invalid escape in quoted string"),
            },
            '\r' | '\n' => return Err("line break in quoted string"),
            c => out.push(c),
        }
    }
    Err("unterminated quoted string")
}

/// Writes `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// Splits a header value into its comma-separated elements, ignoring commas
/// inside quoted strings and `<...>`; elements come back trimmed (an empty
/// element means the list had a stray comma).
pub(crate) fn split_list(s: &str) -> ListIter<'_> {
    ListIter { rest: Some(s) }
}

pub(crate) struct ListIter<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for ListIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let mut in_quote = false;
        let mut escaped = false;
        let mut angle = false;
        for (i, b) in s.bytes().enumerate() {
            if in_quote {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quote = false;
                }
                continue;
            }
            match b {
                b'"' => in_quote = true,
                b'<' => angle = true,
                b'>' => angle = false,
                b',' if !angle => {
                    let (item, rest) = s.split_at_checked(i).unwrap_or((s, ""));
                    self.rest = rest.get(1..);
                    return Some(trim_ws(item));
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(trim_ws(s))
    }
}

/// Generic parameters (`;name[=value]`) of a header value or a URI, in order.
/// Values are kept as received (a quoted value keeps its quotes) so a message
/// re-serialises byte for byte; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// `Some(value)` when the parameter is present; the inner `None` is a
    /// parameter without `=value` (such as `lr` or a bare `rport`).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    /// The value of a parameter with one, without surrounding quotes.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        let v = self.get(name)??;
        Some(unquote(v))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replacing) or adds a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_owned);
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

/// Removes the quotes (and quoted-pair escapes) of a quoted parameter value.
pub(crate) fn unquote(v: &str) -> Cow<'_, str> {
    if v.starts_with('"')
        && let Ok((inner, rest)) = parse_quoted(v)
        && rest.is_empty()
    {
        return Cow::Owned(inner);
    }
    Cow::Borrowed(v)
}

/// Characters allowed in an unquoted generic-param value: token or host (RFC 3261 `gen-value`).
fn is_gen_value_char(b: u8) -> bool {
    is_token_char(b) || matches!(b, b':' | b'[' | b']')
}

/// Parses header parameters: `s` is empty or starts (after white space) with
/// `;`. White space is allowed around `;` and `=` (SEMI and EQUAL are
/// `SWS x SWS`); an empty parameter (`;;`) is an error.
pub(crate) fn parse_header_params(s: &str) -> Result<Params, &'static str> {
    let mut params = Params::default();
    let mut rest = trim_ws_start(s);
    while !rest.is_empty() {
        let Some(r) = rest.strip_prefix(';') else {
            return Err("expected ';' before a parameter");
        };
        let (name, r) = take_while(trim_ws_start(r), is_token_char);
        if name.is_empty() {
            return Err("empty parameter");
        }
        let r = trim_ws_start(r);
        let (value, r) = match r.strip_prefix('=') {
            Some(v) => {
                let v = trim_ws_start(v);
                if v.starts_with('"') {
                    let (_, after) = parse_quoted(v)?;
                    let raw = v.get(..v.len() - after.len()).unwrap_or(v);
                    (Some(raw.to_owned()), after)
                } else {
                    let (value, after) = take_while(v, is_gen_value_char);
                    if value.is_empty() {
                        return Err("parameter has '=' but no value");
                    }
                    (Some(value.to_owned()), after)
                }
            }
            None => (None, r),
        };
        params.0.push((name.to_owned(), value));
        rest = trim_ws_start(r);
    }
    Ok(params)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks that every `%` in `s` starts a `%HH` escape.
pub(crate) fn escapes_valid(s: &str) -> bool {
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = bytes.next().and_then(hex_val);
            let lo = bytes.next().and_then(hex_val);
            if hi.is_none() || lo.is_none() {
                return false;
            }
        }
    }
    true
}

/// Decodes `%HH` escapes; the result is bytes because an escape may stand
/// for any octet (RFC 4475 §3.1.1.4 escapes a NUL).
pub(crate) fn unescape(s: &str) -> Cow<'_, [u8]> {
    if !s.contains('%') {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let mut look = bytes.clone();
            if let (Some(hi), Some(lo)) = (look.next().and_then(hex_val), look.next().and_then(hex_val)) {
                out.push(hi << 4 | lo);
                bytes = look;
                continue;
            }
        }
        out.push(b);
    }
    Cow::Owned(out)
}

/// [`unescape`], shown as text (invalid UTF-8 replaced).
pub(crate) fn unescape_str(s: &str) -> Cow<'_, str> {
    match unescape(s) {
        Cow::Borrowed(_) => Cow::Borrowed(s),
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// Parses a run of decimal digits (leading zeros allowed) into a `u64`;
/// `None` for an empty or non-digit string or one too large for `u64`.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| acc.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let v: Vec<_> = split_list(r#""a, b" <sip:x@y;p=1,2>;q=1 , <sip:z>, "\",", w"#).collect();
        assert_eq!(v, vec![r#""a, b" <sip:x@y;p=1,2>;q=1"#, "<sip:z>", r#""\",""#, "w"]);
        let v: Vec<_> = split_list("a,,b").collect();
        assert_eq!(v, vec!["a", "", "b"]);
    }

    #[test]
    fn quoted_strings_unescape_and_report_errors() {
        assert_eq!(parse_quoted(r#""J Rosenberg \\\"" <x>"#), Ok((r#"J Rosenberg \""#.to_owned(), " <x>")));
        assert_eq!(parse_quoted("\"abc"), Err("unterminated quoted string"));
        assert_eq!(parse_quoted("\"a\\"), Err("invalid escape in quoted string"));
    }

    #[test]
    fn params_allow_white_space_and_reject_empty_ones() {
        let p = parse_header_params(" ;   tag    = 1918181833n ; lr ;q=\"0.5\"").unwrap();
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.value("q").as_deref(), Some("0.5"));
        assert_eq!(parse_header_params(";;"), Err("empty parameter"));
        assert_eq!(parse_header_params(";a="), Err("parameter has '=' but no value"));
        assert_eq!(p.to_string(), ";tag=1918181833n;lr;q=\"0.5\"");
    }

    #[test]
    fn escapes_decode_to_bytes() {
        assert_eq!(&*unescape("null-%00-null"), b"null-\0-null");
        assert_eq!(&*unescape("v%61lue%25%34%31"), b"value%41");
        assert_eq!(&*unescape("50%"), b"50%");
        assert!(escapes_valid("a%41"));
        assert!(!escapes_valid("a%4"));
        assert!(!escapes_valid("%ZZ"));
    }

    #[test]
    fn char_classes_and_byte_search() {
        for b in 0..=255u8 {
            let token = b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
            assert_eq!(is_token_char(b), token, "{b}");
            assert_eq!(is_word_char(b), token || b"()<>:\\\"/[]?{}".contains(&b), "{b}");
        }
        let hay: Vec<u8> = (0..100u8).collect();
        for n in 0..=100u8 {
            assert_eq!(find_byte(&hay, n), hay.iter().position(|b| *b == n));
        }
        assert_eq!(find_byte(b"", b'x'), None);
        assert_eq!(find_byte(b"abcdefgh\n", b'\n'), Some(8));
    }

    #[test]
    fn decimals_reject_overflow() {
        assert_eq!(parse_decimal("0009"), Some(9));
        assert_eq!(parse_decimal("36893488147419103232"), None);
        assert_eq!(parse_decimal("-1"), None);
        assert_eq!(parse_decimal(""), None);
    }
}

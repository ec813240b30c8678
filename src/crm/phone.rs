//! Phone numbers in the one form the replica stores and indexes: E.164.
//!
//! Operators type numbers any way a patient dictates them ("8 (916) 123-45-67",
//! "067 123 45 67", "+380 67 ..."), and SIP peers send them in national or
//! international form. Every number is turned into E.164 here, once, so the
//! caller card is an exact index lookup.

use std::fmt;

/// The country whose national forms are assumed for numbers without a
/// country code. Set per workstation (the clinic's country).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Country {
    /// Russia and Kazakhstan: +7, national trunk prefix 8.
    #[default]
    Ru,
    /// Ukraine: +380, national trunk prefix 0.
    Ua,
}

impl Country {
    pub fn code(self) -> &'static str {
        match self {
            Country::Ru => "RU",
            Country::Ua => "UA",
        }
    }
}

/// A phone number normalised to E.164 (`+` and 8 to 15 digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

/// Why a typed number is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("“{0}” has characters that do not belong in a phone number")]
    BadCharacters(String),
    #[error("“{input}” has {digits} digits; a phone number has 10 to 15 with its country code")]
    BadLength { input: String, digits: usize },
}

impl Phone {
    /// Normalises a number typed or received in any common form.
    pub fn parse(input: &str, country: Country) -> Result<Phone, PhoneError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(PhoneError::Empty);
        }
        // SIP URIs: take the user part.
        let trimmed = trimmed
            .strip_prefix("sip:")
            .or_else(|| trimmed.strip_prefix("sips:"))
            .or_else(|| trimmed.strip_prefix("tel:"))
            .map(|rest| rest.split(['@', ';']).next().unwrap_or(rest))
            .unwrap_or(trimmed);
        let mut digits = String::with_capacity(16);
        let mut plus = false;
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 || digits.is_empty() && !plus => plus = true,
                ' ' | '-' | '(' | ')' | '.' | '\u{a0}' | '/' => {}
                _ => return Err(PhoneError::BadCharacters(input.trim().to_string())),
            }
        }
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        let bad_len = |d: &str| PhoneError::BadLength { input: input.trim().to_string(), digits: d.len() };
        if !plus && let Some(rest) = digits.strip_prefix("00") {
            // International call prefix used in Ukraine and most of Europe.
            digits = rest.to_string();
            plus = true;
        } else if !plus && let Some(rest) = digits.strip_prefix("810") {
            // Russian international prefix.
            digits = rest.to_string();
            plus = true;
        }
        let international = if plus {
            digits
        } else {
            match (country, digits.len()) {
                // 8 916 123 45 67 / 7 916 123 45 67
                (Country::Ru, 11) if digits.starts_with('8') || digits.starts_with('7') => {
                    format!("7{}", &digits[1..])
                }
                // No Russian national number starts with 0: that is the
                // Ukrainian trunk prefix (patients from across the border).
                (Country::Ru, 10) if digits.starts_with('0') => format!("38{digits}"),
                (Country::Ru, 10) => format!("7{digits}"),
                // 067 123 45 67
                (Country::Ua, 10) if digits.starts_with('0') => format!("38{digits}"),
                (Country::Ua, 9) => format!("380{digits}"),
                // Already with a country code, just without '+'.
                (_, 12) if digits.starts_with("380") => digits,
                (_, 11) if digits.starts_with('7') => digits,
                (Country::Ua, 11) if digits.starts_with('8') => format!("3{digits}"),
                (_, n) if (11..=15).contains(&n) && !digits.starts_with('0') => digits,
                _ => return Err(bad_len(&digits)),
            }
        };
        if !(10..=15).contains(&international.len()) || international.starts_with('0') {
            return Err(bad_len(&international));
        }
        Ok(Phone(format!("+{international}")))
    }

    /// Wraps a string already known to be E.164 (read back from the replica).
    pub fn from_e164_unchecked(e164: String) -> Phone {
        Phone(e164)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits only, as the search index keeps them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// A readable form: +7 916 123-45-67, +380 67 123 45 67.
    pub fn display(&self) -> String {
        let d = self.digits();
        if d.len() == 11 && d.starts_with('7') {
            format!("+7 {} {}-{}-{}", &d[1..4], &d[4..7], &d[7..9], &d[9..11])
        } else if d.len() == 12 && d.starts_with("380") {
            format!("+380 {} {} {} {}", &d[3..5], &d[5..8], &d[8..10], &d[10..12])
        } else {
            self.0.clone()
        }
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Digits of a partial number typed into search: "916-12" → "91612".
pub fn search_digits(input: &str) -> Option<String> {
    let mut digits = String::new();
    for c in input.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '+' | ' ' | '-' | '(' | ')' | '.' => {}
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some(digits)
}

/// Normalises what a SIP peer sent as the caller (a number in any national
/// or international form, or a SIP URI) for the lookup.
pub fn caller_number(raw: &str, country: Country) -> String {
    Phone::parse(raw, country).map(|p| p.as_str().to_owned()).unwrap_or_else(|_| raw.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ru(s: &str) -> Result<String, PhoneError> {
        Phone::parse(s, Country::Ru).map(|p| p.as_str().to_string())
    }
    fn ua(s: &str) -> Result<String, PhoneError> {
        Phone::parse(s, Country::Ua).map(|p| p.as_str().to_string())
    }

    #[test]
    fn russian_forms() {
        for s in [
            "8 (916) 123-45-67",
            "+7 916 123 45 67",
            "79161234567",
            "9161234567",
            "sip:89161234567@pbx.local",
            "810 7 916 123 45 67",
        ] {
            assert_eq!(ru(s).as_deref(), Ok("+79161234567"), "{s}");
        }
    }

    #[test]
    fn ukrainian_forms() {
        for s in ["067 123 45 67", "+380 67 123 45 67", "380671234567", "00380671234567", "671234567"] {
            assert_eq!(ua(s).as_deref(), Ok("+380671234567"), "{s}");
        }
        // A Ukrainian number typed on a Russian workstation with its country code.
        assert_eq!(ru("380671234567").as_deref(), Ok("+380671234567"));
    }

    #[test]
    fn bad_numbers_say_why() {
        assert_eq!(ru(""), Err(PhoneError::Empty));
        assert!(matches!(ru("12345"), Err(PhoneError::BadLength { digits: 5, .. })));
        assert!(matches!(ru("8916abc4567"), Err(PhoneError::BadCharacters(_))));
        assert!(matches!(ru("+1234567890123456"), Err(PhoneError::BadLength { .. })));
        let msg = ru("12345").unwrap_err().to_string();
        assert!(msg.contains("5 digits"), "{msg}");
    }

    #[test]
    fn display_groups_digits() {
        assert_eq!(Phone::parse("89161234567", Country::Ru).unwrap().display(), "+7 916 123-45-67");
        assert_eq!(Phone::parse("0671234567", Country::Ua).unwrap().display(), "+380 67 123 45 67");
    }

    #[test]
    fn partial_digits_for_search() {
        assert_eq!(search_digits("916-12").as_deref(), Some("91612"));
        assert_eq!(search_digits("Иванов"), None);
    }
}

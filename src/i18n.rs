//! Translations: every string a person reads goes through here. Fluent files
//! live under `assets/i18n/<lang>/`, one per screen, compiled into the binary;
//! English is the fallback for a key a translation lacks.

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The languages of the UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    En,
    Ru,
    Uk,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::En, Language::Ru, Language::Uk];

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
            Language::Uk => "uk",
        }
    }

    /// The language's own name, shown in the language picker.
    pub fn native_name(self) -> &'static str {
        match self {
            Language::En => "English",
            Language::Ru => "Русский",
            Language::Uk => "Українська",
        }
    }

    pub fn from_code(code: &str) -> Option<Language> {
        let lang = code.split(['-', '_', '.']).next().unwrap_or(code).to_ascii_lowercase();
        match lang.as_str() {
            "en" => Some(Language::En),
            "ru" => Some(Language::Ru),
            "uk" | "ua" => Some(Language::Uk),
            _ => None,
        }
    }

    /// The system's language if we have it, else English.
    pub fn from_system() -> Language {
        sys_locale::get_locale().as_deref().and_then(Language::from_code).unwrap_or(Language::En)
    }

    /// The configured language, or the system's.
    pub fn from_setting(setting: Option<&str>) -> Language {
        setting.and_then(Language::from_code).unwrap_or_else(Language::from_system)
    }

    fn sources(self) -> &'static [&'static str] {
        macro_rules! files {
            ($lang:literal) => {
                &[
                    include_str!(concat!("../assets/i18n/", $lang, "/common.ftl")),
                    include_str!(concat!("../assets/i18n/", $lang, "/screens.ftl")),
                    include_str!(concat!("../assets/i18n/", $lang, "/forms.ftl")),
                    include_str!(concat!("../assets/i18n/", $lang, "/settings.ftl")),
                    include_str!(concat!("../assets/i18n/", $lang, "/errors.ftl")),
                    include_str!(concat!("../assets/i18n/", $lang, "/phone.ftl")),
                ]
            };
        }
        match self {
            Language::En => files!("en"),
            Language::Ru => files!("ru"),
            Language::Uk => files!("uk"),
        }
    }
}

type Bundle = FluentBundle<FluentResource>;

fn bundle(lang: Language) -> Bundle {
    let id: LanguageIdentifier = lang.code().parse().unwrap_or_default();
    let mut bundle = FluentBundle::new(vec![id]);
    // egui draws the isolation marks as boxes.
    bundle.set_use_isolating(false);
    for source in lang.sources() {
        // The files are ours and checked by the tests below; a broken entry
        // is skipped rather than failing the whole language.
        let resource = FluentResource::try_new((*source).to_owned()).unwrap_or_else(|(partial, _)| partial);
        // A duplicate key keeps the first definition.
        let _ = bundle.add_resource(resource);
    }
    bundle
}

/// The translations of the current language, with English behind them.
pub struct I18n {
    language: Language,
    current: Bundle,
    fallback: Option<Bundle>,
}

impl I18n {
    pub fn new(language: Language) -> I18n {
        I18n { language, current: bundle(language), fallback: (language != Language::En).then(|| bundle(Language::En)) }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The text of `key`.
    pub fn tr(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The text of `key` with its arguments filled in.
    pub fn tr_args(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            // Numbers stay numbers so plural rules apply.
            match value.parse::<i64>() {
                Ok(n) => fluent_args.set(*name, FluentValue::from(n)),
                Err(_) => fluent_args.set(*name, FluentValue::from(value.as_str())),
            }
        }
        self.format(key, Some(&fluent_args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        for bundle in std::iter::once(&self.current).chain(self.fallback.as_ref()) {
            if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle.format_pattern(pattern, args, &mut errors).into_owned();
            }
        }
        // A missing key shows itself so it is noticed (the tests forbid it).
        key.to_owned()
    }
}

/// Every key defined in one language, for the completeness tests.
pub fn keys(lang: Language) -> Vec<String> {
    let mut keys = Vec::new();
    for source in lang.sources() {
        let resource = match FluentResource::try_new((*source).to_owned()) {
            Ok(r) => r,
            Err((r, errors)) => {
                panic!("{} has syntax errors: {errors:?} (after {} entries)", lang.code(), r.entries().count())
            }
        };
        for entry in resource.entries() {
            if let fluent_syntax::ast::Entry::Message(m) = entry {
                keys.push(m.id.name.to_owned());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_language_has_every_key() {
        let en: BTreeSet<String> = keys(Language::En).into_iter().collect();
        assert!(en.len() > 50);
        for lang in [Language::Ru, Language::Uk] {
            let other: BTreeSet<String> = keys(lang).into_iter().collect();
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
            assert!(extra.is_empty(), "{} has keys English lacks: {extra:?}", lang.code());
        }
    }

    #[test]
    fn no_duplicate_keys() {
        for lang in Language::ALL {
            let all = keys(lang);
            let set: BTreeSet<&String> = all.iter().collect();
            assert_eq!(all.len(), set.len(), "{} defines a key twice", lang.code());
        }
    }

    #[test]
    fn every_key_used_in_the_code_exists() {
        let en: BTreeSet<String> = keys(Language::En).into_iter().collect();
        let mut missing = Vec::new();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut stack = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.ends_with("i18n.rs") {
                    continue; // this file names the markers themselves
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for key in used_keys(&text) {
                    if !en.contains(&key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys used but not defined: {missing:#?}");
    }

    /// Literal keys passed to tr/tr_args and `key: "..."` in FieldError.
    fn used_keys(text: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for marker in ["tr(\"", "tr_args(\"", "FieldError::new(field, \"", "FieldError::new(\""] {
            let mut rest = text;
            while let Some(pos) = rest.find(marker) {
                rest = &rest[pos + marker.len()..];
                let mut candidate = rest;
                if marker == "FieldError::new(\"" {
                    // FieldError::new("field", "key"): the second literal.
                    let Some(end) = candidate.find("\", \"") else { continue };
                    candidate = &candidate[end + 4..];
                }
                if let Some(end) = candidate.find('"') {
                    let key = &candidate[..end];
                    if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    {
                        keys.push(key.to_owned());
                    }
                }
            }
        }
        keys
    }

    /// Enumerations are shown through keys `prefix-code` built at run time.
    #[test]
    fn every_enumeration_value_has_a_name() {
        use crate::crm::*;
        let en: BTreeSet<String> = keys(Language::En).into_iter().collect();
        let mut wanted: Vec<String> = Vec::new();
        let mut add = |prefix: &str, codes: Vec<&str>| {
            wanted.extend(codes.into_iter().map(|c| format!("{prefix}-{}", c.replace('_', "-"))));
        };
        add("call-direction", CallDirection::ALL.iter().map(|v| v.code()).collect());
        add("call-result", CallResult::ALL.iter().map(|v| v.code()).collect());
        add("inquiry-source", InquirySource::ALL.iter().map(|v| v.code()).collect());
        add("inquiry-status", InquiryStatus::ALL.iter().map(|v| v.code()).collect());
        add("inquiry-result", InquiryResult::ALL.iter().map(|v| v.code()).collect());
        add("task-status", TaskStatus::ALL.iter().map(|v| v.code()).collect());
        add("visit-status", VisitStatus::ALL.iter().map(|v| v.code()).collect());
        add("role", RoleCode::ALL.iter().map(|v| v.code()).collect());
        add("country", vec![Country::Ru.code(), Country::Ua.code()]);
        add("operator-status", OperatorStatus::ALL.iter().map(|v| v.code()).collect());
        let rights: Vec<String> = Right::ALL.iter().map(|r| r.code().replace('.', "-")).collect();
        add("right", rights.iter().map(String::as_str).collect());
        // The kinds of person_phones (schema.sql).
        add("phone-kind", vec!["mobile", "home", "work", "relative", "other"]);
        // The audit trail's operations (the server's audit log).
        add("audit-op", vec!["insert", "update", "delete", "refused"]);
        let missing: Vec<_> = wanted.iter().filter(|k| !en.contains(*k)).collect();
        assert!(missing.is_empty(), "no translation for {missing:?}");
    }

    #[test]
    fn plural_and_arguments() {
        let i18n = I18n::new(Language::Ru);
        let text = i18n.tr_args("err-phone-length", &[("input", "12".into()), ("digits", "2".into())]);
        assert!(text.contains("12") && text.contains('2'), "{text}");
        assert_ne!(I18n::new(Language::Uk).tr("nav-calls"), I18n::new(Language::En).tr("nav-calls"));
    }

    #[test]
    fn languages_from_locales() {
        assert_eq!(Language::from_code("ru_RU.UTF-8"), Some(Language::Ru));
        assert_eq!(Language::from_code("uk-UA"), Some(Language::Uk));
        assert_eq!(Language::from_code("de"), None);
        assert_eq!(Language::from_setting(Some("uk")), Language::Uk);
    }
}

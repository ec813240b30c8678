//! A message for the operator in their language: a translation key with its
//! arguments. Errors of every layer become one of these at the edge of the
//! UI, so a dialog never shows an untranslated error.

use crate::crm::FieldError;
use crate::i18n::I18n;
use crate::settings::{ProfileError, SettingsError, secrets::SecretError};
use crate::store::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl Message {
    pub fn new(key: &'static str) -> Message {
        Message { key, args: Vec::new() }
    }

    pub fn with(mut self, name: &'static str, value: impl ToString) -> Message {
        self.args.push((name, value.to_string()));
        self
    }

    pub fn text(&self, i18n: &I18n) -> String {
        i18n.tr_args(self.key, &self.args)
    }
}

impl From<&StoreError> for Message {
    fn from(e: &StoreError) -> Message {
        match e {
            StoreError::NotADatabase { path } => Message::new("err-replica-not-database").with("path", path.display()),
            StoreError::NotClinicDesk { path } => Message::new("err-replica-foreign").with("path", path.display()),
            StoreError::FromTheFuture { path, found, supported } => Message::new("err-replica-future")
                .with("path", path.display())
                .with("found", found)
                .with("supported", supported),
            StoreError::Outdated { path, found, supported } => Message::new("err-replica-outdated")
                .with("path", path.display())
                .with("found", found)
                .with("supported", supported),
            StoreError::Corrupt { path, detail } => {
                Message::new("err-replica-corrupt").with("path", path.display()).with("detail", detail)
            }
            StoreError::ReadOnly { path, detail } => {
                Message::new("err-profile-readonly").with("path", path.display()).with("detail", detail)
            }
            StoreError::NotFound { what } => Message::new("err-not-found").with("what", what),
            StoreError::Sqlite(e) => Message::new("err-database").with("detail", e),
            StoreError::Thread(e) => Message::new("err-replica-thread").with("detail", e),
        }
    }
}

impl From<&SettingsError> for Message {
    fn from(e: &SettingsError) -> Message {
        match e {
            SettingsError::Invalid { path, message } => {
                Message::new("err-settings-invalid").with("path", path.display()).with("detail", message.trim_end())
            }
            SettingsError::Read { path, source } | SettingsError::Write { path, source } => {
                Message::new("err-settings-io").with("path", path.display()).with("detail", source)
            }
        }
    }
}

impl From<&ProfileError> for Message {
    fn from(e: &ProfileError) -> Message {
        match e {
            ProfileError::NoHome => Message::new("err-profile-nohome"),
            ProfileError::NotWritable { path, source } => {
                Message::new("err-profile-readonly").with("path", path.display()).with("detail", source)
            }
        }
    }
}

impl From<&SecretError> for Message {
    fn from(e: &SecretError) -> Message {
        match e {
            SecretError::NoKeyring => Message::new("err-no-keyring"),
            SecretError::Keyring(detail) => Message::new("err-keyring").with("detail", detail),
        }
    }
}

impl From<&FieldError> for Message {
    fn from(e: &FieldError) -> Message {
        Message { key: e.key, args: e.args.clone() }
    }
}

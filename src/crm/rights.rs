//! Roles and the rights they get by default, from the clinic's own setup
//! guide (DESIGN.md, "Roles"). A user's effective rights are their role's
//! defaults plus or minus the per-user grants the clinic head sets.

use std::collections::BTreeSet;

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code stored in the database.
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }

            pub fn from_code(code: &str) -> Option<$name> {
                match code { $($code => Some($name::$variant),)+ _ => None }
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let text = value.as_str()?;
                $name::from_code(text).ok_or_else(|| {
                    rusqlite::types::FromSqlError::Other(
                        format!("unknown {} code {text:?}", stringify!($name)).into(),
                    )
                })
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.code()))
            }
        }
    };
}
pub(crate) use code_enum;

code_enum! {
    /// A role of the clinic's setup guide.
    RoleCode {
        Head = "head",
        Admin = "admin",
        Operator = "operator",
        Supervisor = "supervisor",
        Doctor = "doctor",
        Nurse = "nurse",
    }
}

code_enum! {
    /// One right a user may hold.
    Right {
        AllCrm = "crm.all",
        EditSipSettings = "settings.sip",
        EditDictionaries = "settings.dictionaries",
        ViewInquiries = "inquiry.view",
        ProcessInquiries = "inquiry.process",
        DeleteInquiries = "inquiry.delete",
        ViewDeals = "deal.view",
        EditDeals = "deal.edit",
        EditTasks = "task.edit",
        WorkTasks = "task.work",
        DeleteTasks = "task.delete",
        ViewAllTasks = "task.view_all",
        EditVisits = "visit.edit",
        DeleteVisits = "visit.delete",
        CallLog = "call.log",
        ViewAllCalls = "call.view_all",
        Analytics = "analytics.view",
        ViewAudit = "audit.view",
    }
}

impl RoleCode {
    /// The rights a role has before the clinic head changes anything.
    pub fn default_rights(self) -> Rights {
        use Right::*;
        let list: &[Right] = match self {
            RoleCode::Head => Right::ALL,
            RoleCode::Admin => &[EditSipSettings, EditDictionaries],
            RoleCode::Operator => &[ViewInquiries, ProcessInquiries, ViewDeals, EditTasks, EditVisits, CallLog],
            RoleCode::Supervisor => &[
                ViewInquiries,
                ProcessInquiries,
                ViewDeals,
                EditTasks,
                EditVisits,
                CallLog,
                EditDeals,
                DeleteTasks,
                DeleteInquiries,
                DeleteVisits,
                ViewAllTasks,
                ViewAllCalls,
            ],
            RoleCode::Doctor => &[ViewDeals, EditDeals, EditTasks, WorkTasks],
            RoleCode::Nurse => &[EditTasks, WorkTasks],
        };
        Rights(list.iter().copied().collect())
    }
}

/// The effective rights of the signed-in user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights(BTreeSet<Right>);

impl Rights {
    pub fn all() -> Rights {
        Rights(Right::ALL.iter().copied().collect())
    }

    pub fn has(&self, right: Right) -> bool {
        self.0.contains(&right)
    }

    /// Applies a per-user grant (true) or revocation (false).
    pub fn apply(&mut self, right: Right, granted: bool) {
        if granted {
            self.0.insert(right);
        } else {
            self.0.remove(&right);
        }
    }
}

/// What a user saves, for the rights check of the command layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saving {
    Person,
    Inquiry,
    /// A new task (an existing one is [`Saving::Task`]).
    NewTask,
    Task,
    Deal,
    Visit,
    /// Task types' templates: the setup admin's dictionaries.
    TaskTemplate,
}

impl Rights {
    /// Whether these rights allow saving a record of this kind. The window
    /// hides what is not allowed; this is the check behind it.
    pub fn may_save(&self, what: Saving) -> bool {
        use Right::*;
        match what {
            Saving::Person => self.has(ProcessInquiries) || self.has(EditVisits) || self.has(EditDeals),
            Saving::Inquiry => self.has(ProcessInquiries),
            Saving::NewTask => self.has(EditTasks),
            Saving::Task => self.has(EditTasks) || self.has(WorkTasks),
            Saving::Deal => self.has(EditDeals),
            Saving::Visit => self.has(EditVisits),
            Saving::TaskTemplate => self.has(EditDictionaries),
        }
    }
}

/// Which calls and tasks a user sees. The replica holds only what the
/// server lets its user see; the server's row-level security policies
/// on calls and tasks (`server_v3.sql`, "Policies of calls and tasks")
/// follow these rules, and the rights matrix test holds them to it.
impl Rights {
    /// Everyone's calls with [`Right::ViewAllCalls`]; with the call log, one's
    /// own, those of nobody, and the missed-call queue.
    pub fn may_see_call(&self, me: &str, operator: Option<&str>, missed: bool) -> bool {
        self.has(Right::ViewAllCalls)
            || (self.has(Right::CallLog) && (operator.is_none() || operator == Some(me) || missed))
    }

    /// Everyone's tasks with [`Right::ViewAllTasks`]; for whoever works
    /// with tasks, their own (responsible or author) and the shared queue
    /// (no responsible).
    pub fn may_see_task(&self, me: &str, responsible: Option<&str>, created_by: Option<&str>) -> bool {
        self.has(Right::ViewAllTasks)
            || ((self.has(Right::EditTasks) || self.has(Right::WorkTasks))
                && (responsible.is_none() || responsible == Some(me) || created_by == Some(me)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_defaults_match_the_setup_guide() {
        let r = RoleCode::Operator.default_rights();
        assert!(r.has(Right::ProcessInquiries));
        assert!(r.has(Right::CallLog));
        assert!(!r.has(Right::EditDeals));
        assert!(!r.has(Right::DeleteTasks));
        let s = RoleCode::Supervisor.default_rights();
        assert!(s.has(Right::EditDeals) && s.has(Right::DeleteInquiries) && s.has(Right::ViewAllTasks));
        assert!(RoleCode::Head.default_rights().has(Right::Analytics));
        assert!(!RoleCode::Nurse.default_rights().has(Right::ViewInquiries));
    }

    #[test]
    fn saving_follows_the_rights() {
        let nurse = RoleCode::Nurse.default_rights();
        assert!(nurse.may_save(Saving::Task));
        assert!(!nurse.may_save(Saving::Inquiry));
        assert!(!RoleCode::Operator.default_rights().may_save(Saving::Deal));
        assert!(RoleCode::Supervisor.default_rights().may_save(Saving::Deal));
        let mut work_only = Rights::default();
        work_only.apply(Right::WorkTasks, true);
        assert!(work_only.may_save(Saving::Task) && !work_only.may_save(Saving::NewTask));
        // Templates are the setup admin's (and the head's, who has every right).
        assert!(RoleCode::Admin.default_rights().may_save(Saving::TaskTemplate));
        assert!(RoleCode::Head.default_rights().may_save(Saving::TaskTemplate));
        assert!(!RoleCode::Operator.default_rights().may_save(Saving::TaskTemplate));
        assert!(!RoleCode::Supervisor.default_rights().may_save(Saving::TaskTemplate));
    }

    #[test]
    fn operators_see_their_own_calls_and_tasks_and_the_queue_supervisors_all() {
        let op = RoleCode::Operator.default_rights();
        let sup = RoleCode::Supervisor.default_rights();
        assert!(op.may_see_call("me", Some("me"), false));
        assert!(op.may_see_call("me", Some("other"), true), "the missed-call queue");
        assert!(!op.may_see_call("me", Some("other"), false));
        assert!(sup.may_see_call("me", Some("other"), false));
        assert!(!RoleCode::Nurse.default_rights().may_see_call("me", Some("me"), false));
        assert!(op.may_see_task("me", None, None), "the shared queue");
        assert!(op.may_see_task("me", Some("other"), Some("me")));
        assert!(!op.may_see_task("me", Some("other"), Some("other")));
        assert!(sup.may_see_task("me", Some("other"), Some("other")));
        assert!(!RoleCode::Admin.default_rights().may_see_task("me", None, None));
        assert!(RoleCode::Head.default_rights().has(Right::ViewAudit));
        assert!(!sup.has(Right::ViewAudit));
    }

    #[test]
    fn codes_round_trip() {
        for r in Right::ALL {
            assert_eq!(Right::from_code(r.code()), Some(*r));
        }
        assert_eq!(RoleCode::from_code("nobody"), None);
    }
}

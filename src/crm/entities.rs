//! The clinic's records as the rest of the program sees them, and the forms
//! an operator fills in, with validation that names what is wrong.

use super::phone::{Country, Phone, PhoneError};
use super::rights::code_enum;

/// Unix milliseconds, UTC: how every time is stored.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// A new UUIDv7 primary key as stored (text).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

code_enum! {
    CallDirection { In = "in", Out = "out" }
}

code_enum! {
    CallResult { Answered = "answered", Missed = "missed", Busy = "busy", Failed = "failed" }
}

code_enum! {
    InquirySource { Call = "call", MissedCall = "missed_call", Web = "web", WalkIn = "walk_in", Messenger = "messenger" }
}

code_enum! {
    InquiryStatus { New = "new", InProgress = "in_progress", Closed = "closed" }
}

code_enum! {
    InquiryResult { Booked = "booked", Consultation = "consultation", Callback = "callback", Refused = "refused", Spam = "spam" }
}

code_enum! {
    DealStatus { Open = "open", Won = "won", Lost = "lost" }
}

code_enum! {
    TaskStatus { Open = "open", InProgress = "in_progress", Done = "done", Cancelled = "cancelled" }
}

code_enum! {
    VisitStatus { Booked = "booked", Confirmed = "confirmed", Arrived = "arrived", Cancelled = "cancelled" }
}

code_enum! {
    /// What an operator is doing now.
    OperatorStatus { Free = "free", WithClient = "with_client", Break = "break", Away = "away" }
}

impl OperatorStatus {
    /// Whether a call arriving now should not ring (answered busy or "do
    /// not disturb", as the workstation's setting says).
    pub fn declines_calls(self) -> bool {
        matches!(self, OperatorStatus::WithClient | OperatorStatus::Break)
    }
}

impl TaskStatus {
    pub fn is_open(self) -> bool {
        matches!(self, TaskStatus::Open | TaskStatus::InProgress)
    }
}

/// A validation failure of one form field: a translation key and its
/// arguments, so the UI shows it in the operator's language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub key: &'static str,
    pub args: Vec<(&'static str, String)>,
}

impl FieldError {
    fn new(field: &'static str, key: &'static str) -> FieldError {
        FieldError { field, key, args: Vec::new() }
    }

    fn arg(mut self, name: &'static str, value: impl Into<String>) -> FieldError {
        self.args.push((name, value.into()));
        self
    }

    pub fn from_phone(field: &'static str, err: &PhoneError) -> FieldError {
        match err {
            PhoneError::Empty => FieldError::new(field, "err-phone-empty"),
            PhoneError::BadCharacters(input) => FieldError::new(field, "err-phone-characters").arg("input", input),
            PhoneError::BadLength { input, digits } => {
                FieldError::new(field, "err-phone-length").arg("input", input).arg("digits", digits.to_string())
            }
        }
    }
}

/// Parses a phone field of a form; empty is allowed when `required` is false.
fn phone_field(
    field: &'static str,
    input: &str,
    country: Country,
    required: bool,
) -> Result<Option<Phone>, FieldError> {
    if input.trim().is_empty() && !required {
        return Ok(None);
    }
    Phone::parse(input, country).map(Some).map_err(|e| FieldError::from_phone(field, &e))
}

/// A person as the forms create or edit them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PersonForm {
    pub id: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub birth_date: String,
    pub phones: Vec<String>,
    pub note: String,
}

/// A validated person, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonRecord {
    pub id: Option<String>,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub birth_date: Option<chrono::NaiveDate>,
    pub phones: Vec<Phone>,
    pub note: String,
}

impl PersonForm {
    pub fn validate(&self, country: Country) -> Result<PersonRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.last_name.trim().is_empty() && self.first_name.trim().is_empty() {
            errors.push(FieldError::new("name", "err-name-required"));
        }
        let birth_date = match self.birth_date.trim() {
            "" => None,
            text => match parse_date(text) {
                Some(d) if d <= chrono::Utc::now().date_naive() => Some(d),
                Some(_) => {
                    errors.push(FieldError::new("birth_date", "err-date-future").arg("input", text));
                    None
                }
                None => {
                    errors.push(FieldError::new("birth_date", "err-date-format").arg("input", text));
                    None
                }
            },
        };
        let mut phones: Vec<Phone> = Vec::new();
        for raw in &self.phones {
            match phone_field("phones", raw, country, false) {
                Ok(Some(p)) if !phones.contains(&p) => phones.push(p),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(PersonRecord {
            id: self.id.clone(),
            last_name: self.last_name.trim().to_string(),
            first_name: self.first_name.trim().to_string(),
            middle_name: self.middle_name.trim().to_string(),
            birth_date,
            phones,
            note: self.note.trim().to_string(),
        })
    }
}

/// Dates as operators type them: 2024-03-01 or 01.03.2024.
pub fn parse_date(text: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .or_else(|_| chrono::NaiveDate::parse_from_str(text, "%d.%m.%Y"))
        .ok()
}

/// Date and time as operators type them: "2024-03-01 14:30" or "01.03.2024 14:30", local time.
pub fn parse_local_datetime(text: &str) -> Option<Millis> {
    use chrono::TimeZone;
    let naive = ["%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text.trim(), f).ok())?;
    chrono::Local.from_local_datetime(&naive).earliest().map(|t| t.timestamp_millis())
}

pub fn format_local_datetime(millis: Millis) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_millis_opt(millis)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// The inquiry form: after a call, or by hand. Serialisable: during a call
/// it is kept as a draft.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct InquiryForm {
    pub id: Option<String>,
    pub person_id: Option<String>,
    pub phone: String,
    pub call_id: Option<String>,
    pub channel_id: Option<String>,
    pub reason_id: Option<String>,
    pub source: Option<InquirySource>,
    pub status: Option<InquiryStatus>,
    pub result: Option<InquiryResult>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InquiryRecord {
    pub id: Option<String>,
    pub person_id: Option<String>,
    pub phone: Option<Phone>,
    pub call_id: Option<String>,
    pub channel_id: Option<String>,
    pub reason_id: Option<String>,
    pub source: InquirySource,
    pub status: InquiryStatus,
    pub result: Option<InquiryResult>,
    pub note: String,
}

impl InquiryForm {
    pub fn validate(&self, country: Country) -> Result<InquiryRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        let phone = phone_field("phone", &self.phone, country, false).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        if self.person_id.is_none() && phone.is_none() {
            errors.push(FieldError::new("person", "err-inquiry-who"));
        }
        if self.reason_id.is_none() {
            errors.push(FieldError::new("reason", "err-reason-required"));
        }
        let status = self.status.unwrap_or(InquiryStatus::New);
        if status == InquiryStatus::Closed && self.result.is_none() {
            errors.push(FieldError::new("result", "err-result-required"));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(InquiryRecord {
            id: self.id.clone(),
            person_id: self.person_id.clone(),
            phone,
            call_id: self.call_id.clone(),
            channel_id: self.channel_id.clone(),
            reason_id: self.reason_id.clone(),
            source: self.source.unwrap_or(InquirySource::Call),
            status,
            result: self.result,
            note: self.note.trim().to_string(),
        })
    }
}

/// The task form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskForm {
    pub id: Option<String>,
    pub task_type_id: Option<String>,
    pub title: String,
    pub description: String,
    pub responsible_id: Option<String>,
    pub deadline: String,
    /// Minutes before the deadline to remind; empty for no reminder.
    pub remind_before: String,
    pub template_id: Option<String>,
    pub status: Option<TaskStatus>,
    pub person_id: Option<String>,
    pub inquiry_id: Option<String>,
    pub deal_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskRecord {
    pub id: Option<String>,
    pub task_type_id: String,
    pub title: String,
    pub description: String,
    pub responsible_id: Option<String>,
    pub deadline_at: Millis,
    pub remind_at: Option<Millis>,
    pub template_id: Option<String>,
    pub status: TaskStatus,
    pub person_id: Option<String>,
    pub inquiry_id: Option<String>,
    pub deal_id: Option<String>,
}

impl TaskForm {
    pub fn validate(&self) -> Result<TaskRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.title.trim().is_empty() {
            errors.push(FieldError::new("title", "err-title-required"));
        }
        if self.task_type_id.is_none() {
            errors.push(FieldError::new("task_type", "err-task-type-required"));
        }
        let deadline_at = parse_local_datetime(&self.deadline);
        if deadline_at.is_none() {
            errors.push(FieldError::new("deadline", "err-datetime-format").arg("input", self.deadline.trim()));
        }
        let remind_before = match self.remind_before.trim() {
            "" => None,
            text => match text.parse::<i64>() {
                Ok(m) if (0..=7 * 24 * 60).contains(&m) => Some(m),
                _ => {
                    errors.push(FieldError::new("remind_before", "err-remind-before").arg("input", text));
                    None
                }
            },
        };
        match (errors.is_empty(), deadline_at, &self.task_type_id) {
            (true, Some(deadline_at), Some(task_type_id)) => Ok(TaskRecord {
                id: self.id.clone(),
                task_type_id: task_type_id.clone(),
                title: self.title.trim().to_string(),
                description: self.description.trim().to_string(),
                responsible_id: self.responsible_id.clone(),
                deadline_at,
                remind_at: remind_before.map(|m| deadline_at - m * 60_000),
                template_id: self.template_id.clone(),
                status: self.status.unwrap_or(TaskStatus::Open),
                person_id: self.person_id.clone(),
                inquiry_id: self.inquiry_id.clone(),
                deal_id: self.deal_id.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// The setup admin's form of a task template.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskTemplateForm {
    pub id: Option<String>,
    pub task_type_id: Option<String>,
    pub title: String,
    /// Minutes from creation to the deadline.
    pub deadline_offset_min: String,
    /// Minutes before the deadline to remind; empty for no reminder.
    pub reminder_offset_min: String,
    /// The role whose member gets the task; none: whoever creates it.
    pub responsible_role_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskTemplateRecord {
    pub id: Option<String>,
    pub task_type_id: String,
    pub title: String,
    pub deadline_offset_min: i64,
    pub reminder_offset_min: Option<i64>,
    pub responsible_role_id: Option<String>,
}

/// Whole minutes from 0 up to a year, as typed.
fn minutes(text: &str, field: &'static str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match text.trim().parse::<i64>() {
        Ok(m) if (0..=366 * 24 * 60).contains(&m) => Some(m),
        _ => {
            errors.push(FieldError::new(field, "err-minutes").arg("input", text.trim()));
            None
        }
    }
}

impl TaskTemplateForm {
    pub fn validate(&self) -> Result<TaskTemplateRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.title.trim().is_empty() {
            errors.push(FieldError::new("title", "err-title-required"));
        }
        if self.task_type_id.is_none() {
            errors.push(FieldError::new("task_type", "err-task-type-required"));
        }
        let deadline = minutes(&self.deadline_offset_min, "deadline_offset", &mut errors);
        let reminder = match self.reminder_offset_min.trim() {
            "" => None,
            text => minutes(text, "reminder_offset", &mut errors),
        };
        match (errors.is_empty(), deadline, &self.task_type_id) {
            (true, Some(deadline_offset_min), Some(task_type_id)) => Ok(TaskTemplateRecord {
                id: self.id.clone(),
                task_type_id: task_type_id.clone(),
                title: self.title.trim().to_string(),
                deadline_offset_min,
                reminder_offset_min: reminder,
                responsible_role_id: self.responsible_role_id.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// The deal form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DealForm {
    pub id: Option<String>,
    pub deal_type_id: Option<String>,
    pub stage_id: Option<String>,
    pub person_id: Option<String>,
    pub inquiry_id: Option<String>,
    pub title: String,
    pub amount: String,
    pub responsible_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DealRecord {
    pub id: Option<String>,
    pub deal_type_id: String,
    pub stage_id: String,
    pub person_id: Option<String>,
    pub inquiry_id: Option<String>,
    pub title: String,
    pub amount_cents: i64,
    pub responsible_id: Option<String>,
}

/// "1 500,50" → 150050 cents.
pub fn parse_amount(text: &str) -> Option<i64> {
    let cleaned: String = text.chars().filter(|c| !c.is_whitespace() && *c != '\u{a0}').collect();
    if cleaned.is_empty() {
        return Some(0);
    }
    let cleaned = cleaned.replace(',', ".");
    let (whole, frac) = cleaned.split_once('.').unwrap_or((&cleaned, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().ok()? };
    whole.checked_mul(100)?.checked_add(frac)
}

pub fn format_amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

impl DealForm {
    pub fn validate(&self) -> Result<DealRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.title.trim().is_empty() {
            errors.push(FieldError::new("title", "err-title-required"));
        }
        if self.deal_type_id.is_none() || self.stage_id.is_none() {
            errors.push(FieldError::new("stage", "err-stage-required"));
        }
        let amount = parse_amount(&self.amount);
        if amount.is_none() {
            errors.push(FieldError::new("amount", "err-amount-format").arg("input", self.amount.trim()));
        }
        match (errors.is_empty(), &self.deal_type_id, &self.stage_id, amount) {
            (true, Some(deal_type_id), Some(stage_id), Some(amount_cents)) => Ok(DealRecord {
                id: self.id.clone(),
                deal_type_id: deal_type_id.clone(),
                stage_id: stage_id.clone(),
                person_id: self.person_id.clone(),
                inquiry_id: self.inquiry_id.clone(),
                title: self.title.trim().to_string(),
                amount_cents,
                responsible_id: self.responsible_id.clone(),
            }),
            _ => Err(errors),
        }
    }
}

/// The visit form.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VisitForm {
    pub id: Option<String>,
    pub person_id: Option<String>,
    pub doctor_id: Option<String>,
    pub deal_id: Option<String>,
    pub service: String,
    pub starts: String,
    pub duration_min: String,
    pub status: Option<VisitStatus>,
    pub cancel_reason: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VisitRecord {
    pub id: Option<String>,
    pub person_id: String,
    pub doctor_id: String,
    pub deal_id: Option<String>,
    pub service: String,
    pub starts_at: Millis,
    pub duration_min: i64,
    pub status: VisitStatus,
    pub cancel_reason: Option<String>,
}

impl VisitForm {
    pub fn validate(&self) -> Result<VisitRecord, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.person_id.is_none() {
            errors.push(FieldError::new("person", "err-person-required"));
        }
        if self.doctor_id.is_none() {
            errors.push(FieldError::new("doctor", "err-doctor-required"));
        }
        let starts_at = parse_local_datetime(&self.starts);
        if starts_at.is_none() {
            errors.push(FieldError::new("starts", "err-datetime-format").arg("input", self.starts.trim()));
        }
        let duration = match self.duration_min.trim() {
            "" => Some(30),
            text => text.parse::<i64>().ok().filter(|m| (5..=600).contains(m)),
        };
        if duration.is_none() {
            errors.push(FieldError::new("duration", "err-duration").arg("input", self.duration_min.trim()));
        }
        let status = self.status.unwrap_or(VisitStatus::Booked);
        let cancel_reason = self.cancel_reason.trim();
        if status == VisitStatus::Cancelled && cancel_reason.is_empty() {
            errors.push(FieldError::new("cancel_reason", "err-cancel-reason"));
        }
        match (errors.is_empty(), &self.person_id, &self.doctor_id, starts_at, duration) {
            (true, Some(person_id), Some(doctor_id), Some(starts_at), Some(duration_min)) => Ok(VisitRecord {
                id: self.id.clone(),
                person_id: person_id.clone(),
                doctor_id: doctor_id.clone(),
                deal_id: self.deal_id.clone(),
                service: self.service.trim().to_string(),
                starts_at,
                duration_min,
                status,
                cancel_reason: (status == VisitStatus::Cancelled).then(|| cancel_reason.to_string()),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inquiry_needs_someone_and_a_reason() {
        let errors = InquiryForm::default().validate(Country::Ru).unwrap_err();
        let keys: Vec<_> = errors.iter().map(|e| e.key).collect();
        assert_eq!(keys, ["err-inquiry-who", "err-reason-required"]);
    }

    #[test]
    fn inquiry_with_a_bad_phone_names_it() {
        let form = InquiryForm { phone: "12-34".into(), reason_id: Some("r".into()), ..Default::default() };
        let errors = form.validate(Country::Ru).unwrap_err();
        assert_eq!(errors[0].key, "err-phone-length");
        assert_eq!(errors[0].args, vec![("input", "12-34".to_string()), ("digits", "4".to_string())]);
    }

    #[test]
    fn closed_inquiry_needs_a_result() {
        let form = InquiryForm {
            phone: "+79161234567".into(),
            reason_id: Some("r".into()),
            status: Some(InquiryStatus::Closed),
            ..Default::default()
        };
        assert_eq!(form.validate(Country::Ru).unwrap_err()[0].key, "err-result-required");
        let ok = InquiryForm { result: Some(InquiryResult::Booked), ..form }.validate(Country::Ru).unwrap();
        assert_eq!(ok.phone.unwrap().as_str(), "+79161234567");
    }

    #[test]
    fn task_deadline_must_parse() {
        let form = TaskForm {
            title: "Call back".into(),
            task_type_id: Some("t".into()),
            deadline: "tomorrow".into(),
            ..Default::default()
        };
        assert_eq!(form.validate().unwrap_err()[0].key, "err-datetime-format");
        let form = TaskForm { deadline: "2030-01-02 10:00".into(), ..form };
        assert!(form.validate().is_ok());
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("1 500,5"), Some(150050));
        assert_eq!(parse_amount("12.34"), Some(1234));
        assert_eq!(parse_amount(""), Some(0));
        assert_eq!(parse_amount("12.345"), None);
        assert_eq!(parse_amount("-5"), None);
        assert_eq!(format_amount(150050), "1500.50");
    }

    #[test]
    fn cancelled_visit_needs_a_reason() {
        let form = VisitForm {
            person_id: Some("p".into()),
            doctor_id: Some("d".into()),
            starts: "01.03.2030 14:30".into(),
            status: Some(VisitStatus::Cancelled),
            ..Default::default()
        };
        assert_eq!(form.validate().unwrap_err()[0].key, "err-cancel-reason");
        let ok = VisitForm { cancel_reason: "ill".into(), ..form }.validate().unwrap();
        assert_eq!(ok.duration_min, 30);
    }

    #[test]
    fn person_phones_deduplicated_and_checked() {
        let form = PersonForm {
            last_name: "Иванова".into(),
            phones: vec!["8 916 123 45 67".into(), "+79161234567".into(), "".into()],
            ..Default::default()
        };
        assert_eq!(form.validate(Country::Ru).unwrap().phones.len(), 1);
        let bad = PersonForm { phones: vec!["abc".into()], ..form };
        assert_eq!(bad.validate(Country::Ru).unwrap_err()[0].key, "err-phone-characters");
    }
}

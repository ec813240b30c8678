//! Reads for the screens: counted, paged lists (so a million calls scroll
//! without loading a million rows), the deal board, a person's history and
//! the dictionaries that fill the forms' pickers.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Result;
use crate::crm::*;

/// A page of a list: rows `offset..offset + len`.
pub const PAGE_SIZE: usize = 100;

/// Which calls the call log shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CallFilter {
    #[default]
    All,
    Missed,
    /// Calls handled by one operator.
    Mine,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CallRow {
    pub id: String,
    pub started_at: Millis,
    pub direction: CallDirection,
    pub peer: String,
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    pub operator_name: Option<String>,
    pub result: CallResult,
    pub duration_s: Option<i64>,
}

fn call_where(filter: CallFilter) -> &'static str {
    match filter {
        CallFilter::All => "c.deleted_at IS NULL",
        CallFilter::Missed => "c.deleted_at IS NULL AND c.result = 'missed'",
        CallFilter::Mine => "c.deleted_at IS NULL AND c.operator_id = ?1",
    }
}

fn user_param(filter_uses_user: bool, user_id: Option<&str>) -> Vec<String> {
    if filter_uses_user { vec![user_id.unwrap_or_default().to_owned()] } else { Vec::new() }
}

pub fn count_calls(conn: &Connection, filter: CallFilter, user_id: Option<&str>) -> Result<usize> {
    let sql = format!("SELECT count(*) FROM calls c WHERE {}", call_where(filter));
    let p = user_param(filter == CallFilter::Mine, user_id);
    let n: i64 = conn.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(p), |r| r.get(0))?;
    Ok(n as usize)
}

pub fn calls_page(
    conn: &Connection,
    filter: CallFilter,
    user_id: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Vec<CallRow>> {
    let sql = format!(
        "SELECT c.id, c.started_at, c.direction, c.peer_e164, c.person_id,
                p.last_name || ' ' || p.first_name, u.full_name, c.result,
                (c.ended_at - coalesce(c.answered_at, c.ended_at)) / 1000
         FROM (SELECT c.rowid AS k FROM calls c WHERE {} ORDER BY c.started_at DESC LIMIT {limit} OFFSET {offset}) page
         JOIN calls c ON c.rowid = page.k
         LEFT JOIN people p ON p.id = c.person_id
         LEFT JOIN users u ON u.id = c.operator_id
         ORDER BY c.started_at DESC",
        call_where(filter)
    );
    let p = user_param(filter == CallFilter::Mine, user_id);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(p), call_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A call-log row from the columns id, started_at, direction, peer,
/// person_id, person name, operator name, result, duration in seconds.
fn call_row(r: &Row<'_>) -> rusqlite::Result<CallRow> {
    Ok(CallRow {
        id: r.get(0)?,
        started_at: r.get(1)?,
        direction: r.get(2)?,
        peer: r.get(3)?,
        person_id: r.get(4)?,
        person_name: r.get(5)?,
        operator_name: r.get(6)?,
        result: r.get(7)?,
        duration_s: r.get(8)?,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InquiryFilter {
    #[default]
    Open,
    All,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InquiryRow {
    pub id: String,
    pub created_at: Millis,
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    pub phone: Option<String>,
    pub reason: Option<String>,
    pub channel: Option<String>,
    pub source: InquirySource,
    pub status: InquiryStatus,
    pub result: Option<InquiryResult>,
    pub operator_name: Option<String>,
    pub note: String,
}

fn inquiry_where(filter: InquiryFilter) -> &'static str {
    match filter {
        InquiryFilter::Open => "i.deleted_at IS NULL AND i.status <> 'closed'",
        InquiryFilter::All => "i.deleted_at IS NULL",
    }
}

const INQUIRY_COLUMNS: &str = "i.id, i.created_at, i.person_id, p.last_name || ' ' || p.first_name, i.phone_e164,
     r.name, ch.name, i.source, i.status, i.result, u.full_name, i.note";

const INQUIRY_JOINS: &str = "LEFT JOIN people p ON p.id = i.person_id
     LEFT JOIN inquiry_reasons r ON r.id = i.reason_id
     LEFT JOIN ad_channels ch ON ch.id = i.channel_id
     LEFT JOIN users u ON u.id = i.operator_id";

fn inquiry_row(r: &Row<'_>) -> rusqlite::Result<InquiryRow> {
    Ok(InquiryRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        person_id: r.get(2)?,
        person_name: r.get(3)?,
        phone: r.get(4)?,
        reason: r.get(5)?,
        channel: r.get(6)?,
        source: r.get(7)?,
        status: r.get(8)?,
        result: r.get(9)?,
        operator_name: r.get(10)?,
        note: r.get(11)?,
    })
}

pub fn count_inquiries(conn: &Connection, filter: InquiryFilter) -> Result<usize> {
    let sql = format!("SELECT count(*) FROM inquiries i WHERE {}", inquiry_where(filter));
    let n: i64 = conn.prepare_cached(&sql)?.query_row([], |r| r.get(0))?;
    Ok(n as usize)
}

pub fn inquiries_page(
    conn: &Connection,
    filter: InquiryFilter,
    offset: usize,
    limit: usize,
) -> Result<Vec<InquiryRow>> {
    let sql = format!(
        "SELECT {INQUIRY_COLUMNS}
         FROM (SELECT * FROM inquiries i WHERE {} ORDER BY i.created_at DESC LIMIT {limit} OFFSET {offset}) i
         {INQUIRY_JOINS} ORDER BY i.created_at DESC",
        inquiry_where(filter)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], inquiry_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskFilter {
    /// Open tasks of the user and the shared queue.
    #[default]
    MineOpen,
    /// Every open task (supervisors).
    AllOpen,
    /// Everything, done included.
    All,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub deadline_at: Millis,
    pub title: String,
    pub task_type: String,
    pub person_id: Option<String>,
    pub person_name: Option<String>,
    pub responsible_name: Option<String>,
    pub status: TaskStatus,
}

impl TaskRow {
    pub fn is_overdue(&self, now: Millis) -> bool {
        self.status.is_open() && self.deadline_at < now
    }
}

fn task_where(filter: TaskFilter) -> &'static str {
    match filter {
        TaskFilter::MineOpen => {
            "t.deleted_at IS NULL AND t.status IN ('open', 'in_progress') AND (t.responsible_id = ?1 OR t.responsible_id IS NULL)"
        }
        TaskFilter::AllOpen => "t.deleted_at IS NULL AND t.status IN ('open', 'in_progress')",
        TaskFilter::All => "t.deleted_at IS NULL",
    }
}

pub fn count_tasks(conn: &Connection, filter: TaskFilter, user_id: Option<&str>) -> Result<usize> {
    let sql = format!("SELECT count(*) FROM tasks t WHERE {}", task_where(filter));
    let p = user_param(filter == TaskFilter::MineOpen, user_id);
    let n: i64 = conn.prepare_cached(&sql)?.query_row(rusqlite::params_from_iter(p), |r| r.get(0))?;
    Ok(n as usize)
}

pub fn tasks_page(
    conn: &Connection,
    filter: TaskFilter,
    user_id: Option<&str>,
    offset: usize,
    limit: usize,
) -> Result<Vec<TaskRow>> {
    // Open lists come earliest deadline first (overdue on top); the full
    // history newest first.
    let order = if filter == TaskFilter::All { "t.deadline_at DESC" } else { "t.deadline_at ASC" };
    let sql = format!(
        "SELECT t.id, t.deadline_at, t.title, tt.name, t.person_id, p.last_name || ' ' || p.first_name, u.full_name, t.status
         FROM (SELECT * FROM tasks t WHERE {} ORDER BY {order} LIMIT {limit} OFFSET {offset}) t
         JOIN task_types tt ON tt.id = t.task_type_id
         LEFT JOIN people p ON p.id = t.person_id
         LEFT JOIN users u ON u.id = t.responsible_id
         ORDER BY {order}",
        task_where(filter)
    );
    let p = user_param(filter == TaskFilter::MineOpen, user_id);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(p), task_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn task_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        deadline_at: r.get(1)?,
        title: r.get(2)?,
        task_type: r.get(3)?,
        person_id: r.get(4)?,
        person_name: r.get(5)?,
        responsible_name: r.get(6)?,
        status: r.get(7)?,
    })
}

/// One deal on the board.
#[derive(Clone, Debug, PartialEq)]
pub struct DealCard {
    pub id: String,
    pub title: String,
    pub person_name: Option<String>,
    pub amount_cents: i64,
    pub created_at: Millis,
}

/// One column of the deal board.
#[derive(Clone, Debug, PartialEq)]
pub struct StageColumn {
    pub stage_id: String,
    pub name: String,
    pub outcome: DealStatus,
    pub count: usize,
    pub amount_cents: i64,
    /// The newest deals of the stage (at most `per_stage`).
    pub deals: Vec<DealCard>,
}

pub fn deal_board(conn: &Connection, deal_type_id: &str, per_stage: usize) -> Result<Vec<StageColumn>> {
    let mut stages = conn.prepare_cached(
        "SELECT s.id, s.name, s.outcome,
                (SELECT count(*) FROM deals d WHERE d.stage_id = s.id AND d.deleted_at IS NULL),
                (SELECT coalesce(sum(amount_cents), 0) FROM deals d WHERE d.stage_id = s.id AND d.deleted_at IS NULL)
         FROM deal_stages s WHERE s.deal_type_id = ? AND s.deleted_at IS NULL ORDER BY s.position",
    )?;
    let mut deals = conn.prepare_cached(
        "SELECT d.id, d.title, p.last_name || ' ' || p.first_name, d.amount_cents, d.created_at
         FROM deals d LEFT JOIN people p ON p.id = d.person_id
         WHERE d.stage_id = ? AND d.deleted_at IS NULL ORDER BY d.created_at DESC LIMIT ?",
    )?;
    let columns: Vec<(String, String, DealStatus, i64, i64)> = stages
        .query_map([deal_type_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut board = Vec::with_capacity(columns.len());
    for (stage_id, name, outcome, count, amount_cents) in columns {
        let cards = deals
            .query_map(params![stage_id, per_stage as i64], |r| {
                Ok(DealCard {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    person_name: r.get(2)?,
                    amount_cents: r.get(3)?,
                    created_at: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        board.push(StageColumn { stage_id, name, outcome, count: count as usize, amount_cents, deals: cards });
    }
    Ok(board)
}

/// A person with everything the clinic knows about them.
#[derive(Clone, Debug, PartialEq)]
pub struct PersonHistory {
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub birth_date: Option<String>,
    pub note: String,
    pub phones: Vec<Phone>,
    pub inquiries: Vec<InquiryRow>,
    pub deals: Vec<PersonDeal>,
    pub tasks: Vec<TaskRow>,
    pub visits: Vec<VisitRow>,
    pub calls: Vec<CallRow>,
}

impl PersonHistory {
    pub fn full_name(&self) -> String {
        [&self.last_name, &self.first_name, &self.middle_name]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct PersonDeal {
    pub id: String,
    pub title: String,
    pub deal_type: String,
    pub stage: String,
    pub status: DealStatus,
    pub amount_cents: i64,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct VisitRow {
    pub id: String,
    pub starts_at: Millis,
    pub doctor_name: String,
    pub service: String,
    pub status: VisitStatus,
    pub cancel_reason: Option<String>,
}

/// How much of each history a person's page loads.
const HISTORY_LIMIT: i64 = 200;

pub fn person_history(conn: &Connection, person_id: &str) -> Result<Option<PersonHistory>> {
    let person = conn
        .prepare_cached(
            "SELECT id, last_name, first_name, middle_name, birth_date, note FROM people WHERE id = ? AND deleted_at IS NULL",
        )?
        .query_row([person_id], |r| {
            Ok(PersonHistory {
                id: r.get(0)?,
                last_name: r.get(1)?,
                first_name: r.get(2)?,
                middle_name: r.get(3)?,
                birth_date: r.get(4)?,
                note: r.get(5)?,
                phones: Vec::new(),
                inquiries: Vec::new(),
                deals: Vec::new(),
                tasks: Vec::new(),
                visits: Vec::new(),
                calls: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut person) = person else { return Ok(None) };
    person.phones = conn
        .prepare_cached(
            "SELECT phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL ORDER BY rowid",
        )?
        .query_map([person_id], |r| r.get::<_, String>(0).map(Phone::from_e164_unchecked))?
        .collect::<rusqlite::Result<_>>()?;
    let sql = format!(
        "SELECT {INQUIRY_COLUMNS} FROM inquiries i {INQUIRY_JOINS}
         WHERE i.person_id = ?1 AND i.deleted_at IS NULL ORDER BY i.created_at DESC LIMIT {HISTORY_LIMIT}"
    );
    person.inquiries =
        conn.prepare_cached(&sql)?.query_map([person_id], inquiry_row)?.collect::<rusqlite::Result<_>>()?;
    person.deals = conn
        .prepare_cached(
            "SELECT d.id, d.title, dt.name, s.name, d.status, d.amount_cents, d.created_at
             FROM deals d JOIN deal_types dt ON dt.id = d.deal_type_id JOIN deal_stages s ON s.id = d.stage_id
             WHERE d.person_id = ? AND d.deleted_at IS NULL ORDER BY d.created_at DESC LIMIT 200",
        )?
        .query_map([person_id], |r| {
            Ok(PersonDeal {
                id: r.get(0)?,
                title: r.get(1)?,
                deal_type: r.get(2)?,
                stage: r.get(3)?,
                status: r.get(4)?,
                amount_cents: r.get(5)?,
                created_at: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    person.tasks = conn
        .prepare_cached(
            "SELECT t.id, t.deadline_at, t.title, tt.name, t.person_id, NULL, u.full_name, t.status
             FROM tasks t JOIN task_types tt ON tt.id = t.task_type_id LEFT JOIN users u ON u.id = t.responsible_id
             WHERE t.person_id = ? AND t.deleted_at IS NULL ORDER BY t.deadline_at DESC LIMIT 200",
        )?
        .query_map([person_id], task_row)?
        .collect::<rusqlite::Result<_>>()?;
    person.visits = conn
        .prepare_cached(
            "SELECT v.id, v.starts_at, u.full_name, v.service, v.status, v.cancel_reason
             FROM visits v JOIN users u ON u.id = v.doctor_id
             WHERE v.person_id = ? AND v.deleted_at IS NULL ORDER BY v.starts_at DESC LIMIT 200",
        )?
        .query_map([person_id], |r| {
            Ok(VisitRow {
                id: r.get(0)?,
                starts_at: r.get(1)?,
                doctor_name: r.get(2)?,
                service: r.get(3)?,
                status: r.get(4)?,
                cancel_reason: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    person.calls = conn
        .prepare_cached(
            "SELECT c.id, c.started_at, c.direction, c.peer_e164, c.person_id, NULL, u.full_name, c.result,
                    (c.ended_at - coalesce(c.answered_at, c.ended_at)) / 1000
             FROM calls c LEFT JOIN users u ON u.id = c.operator_id
             WHERE c.person_id = ? AND c.deleted_at IS NULL ORDER BY c.started_at DESC LIMIT 200",
        )?
        .query_map([person_id], call_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(person))
}

/// A choice in a picker: id and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageChoice {
    pub id: String,
    pub deal_type_id: String,
    pub name: String,
    pub outcome: DealStatus,
}

/// The user working at this workstation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: String,
    pub login: String,
    pub full_name: String,
    pub role: RoleCode,
}

/// A task template: type, title, deadline and reminder offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateChoice {
    pub id: String,
    pub title: String,
    pub task_type_id: String,
    pub deadline_offset_min: i64,
    pub reminder_offset_min: Option<i64>,
    /// The role whose member gets the task; none: whoever creates it.
    pub responsible_role_id: Option<String>,
}

/// Everything the forms' pickers offer, loaded once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dictionaries {
    pub task_templates: Vec<TemplateChoice>,
    pub reasons: Vec<Choice>,
    pub channels: Vec<Choice>,
    pub task_types: Vec<Choice>,
    pub deal_types: Vec<Choice>,
    pub stages: Vec<StageChoice>,
    pub users: Vec<Choice>,
    pub doctors: Vec<Choice>,
    pub roles: Vec<Choice>,
    /// (user id, role id) of every active user, to find who a template's
    /// task goes to.
    pub user_roles: Vec<(String, String)>,
}

impl Dictionaries {
    pub fn name_of<'a>(list: &'a [Choice], id: Option<&str>) -> Option<&'a str> {
        let id = id?;
        list.iter().find(|c| c.id == id).map(|c| c.name.as_str())
    }
}

fn choices(conn: &Connection, sql: &str) -> Result<Vec<Choice>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([], |r| Ok(Choice { id: r.get(0)?, name: r.get(1)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn dictionaries(conn: &Connection) -> Result<Dictionaries> {
    Ok(Dictionaries {
        task_templates: {
            let mut stmt = conn.prepare_cached(
                "SELECT id, title, task_type_id, deadline_offset_min, reminder_offset_min, responsible_role_id
                 FROM task_templates WHERE deleted_at IS NULL ORDER BY title",
            )?;
            stmt.query_map([], |r| {
                Ok(TemplateChoice {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    task_type_id: r.get(2)?,
                    deadline_offset_min: r.get(3)?,
                    reminder_offset_min: r.get(4)?,
                    responsible_role_id: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?
        },
        reasons: choices(conn, "SELECT id, name FROM inquiry_reasons WHERE deleted_at IS NULL ORDER BY name")?,
        channels: choices(conn, "SELECT id, name FROM ad_channels WHERE deleted_at IS NULL AND active = 1 ORDER BY name")?,
        task_types: choices(conn, "SELECT id, name FROM task_types WHERE deleted_at IS NULL ORDER BY name")?,
        deal_types: choices(conn, "SELECT id, name FROM deal_types WHERE deleted_at IS NULL ORDER BY name")?,
        stages: {
            let mut stmt = conn.prepare_cached(
                "SELECT id, deal_type_id, name, outcome FROM deal_stages WHERE deleted_at IS NULL ORDER BY deal_type_id, position",
            )?;
            stmt.query_map([], |r| Ok(StageChoice { id: r.get(0)?, deal_type_id: r.get(1)?, name: r.get(2)?, outcome: r.get(3)? }))?
                .collect::<rusqlite::Result<_>>()?
        },
        users: choices(conn, "SELECT id, full_name FROM users WHERE deleted_at IS NULL AND active = 1 ORDER BY full_name")?,
        doctors: choices(
            conn,
            "SELECT u.id, u.full_name || coalesce(' (' || u.specialty || ')', '') FROM users u JOIN roles r ON r.id = u.role_id
             WHERE r.code = 'doctor' AND u.deleted_at IS NULL AND u.active = 1 ORDER BY u.full_name",
        )?,
        roles: choices(conn, "SELECT id, name FROM roles WHERE deleted_at IS NULL ORDER BY name")?,
        user_roles: {
            let mut stmt = conn.prepare_cached(
                "SELECT id, role_id FROM users WHERE deleted_at IS NULL AND active = 1 ORDER BY full_name",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        },
    })
}

/// The user with `login` and their effective rights.
pub fn user_with_rights(conn: &Connection, login: &str) -> Result<Option<(CurrentUser, Rights)>> {
    let user = conn
        .prepare_cached(
            "SELECT u.id, u.login, u.full_name, r.code, r.id FROM users u JOIN roles r ON r.id = u.role_id
             WHERE u.login = ? AND u.deleted_at IS NULL",
        )?
        .query_row([login], |r| {
            Ok((
                CurrentUser { id: r.get(0)?, login: r.get(1)?, full_name: r.get(2)?, role: r.get(3)? },
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let Some((user, role_id)) = user else { return Ok(None) };
    let mut rights = Rights::default();
    let mut role_rights =
        conn.prepare_cached("SELECT right_code FROM role_rights WHERE role_id = ? AND deleted_at IS NULL")?;
    for code in role_rights.query_map([&role_id], |r| r.get::<_, String>(0))? {
        if let Some(right) = Right::from_code(&code?) {
            rights.apply(right, true);
        }
    }
    let mut user_rights =
        conn.prepare_cached("SELECT right_code, granted FROM user_rights WHERE user_id = ? AND deleted_at IS NULL")?;
    for row in user_rights.query_map([&user.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))? {
        let (code, granted) = row?;
        if let Some(right) = Right::from_code(&code) {
            rights.apply(right, granted);
        }
    }
    Ok(Some((user, rights)))
}

/// A person's open deals, for the deal picker of a visit.
pub fn open_deals_of(conn: &Connection, person_id: &str) -> Result<Vec<Choice>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.title || ' · ' || s.name FROM deals d JOIN deal_stages s ON s.id = d.stage_id
         WHERE d.person_id = ? AND d.status = 'open' AND d.deleted_at IS NULL ORDER BY d.created_at DESC",
    )?;
    let rows = stmt.query_map([person_id], |r| Ok(Choice { id: r.get(0)?, name: r.get(1)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// An operator (or supervisor) and what they are doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamMember {
    pub user_id: String,
    pub full_name: String,
    pub role: RoleCode,
    pub status: Option<OperatorStatus>,
    pub since: Option<Millis>,
}

/// Everyone who answers phones, with their status (for supervisors).
pub fn team(conn: &Connection) -> Result<Vec<TeamMember>> {
    let mut stmt = conn.prepare_cached(
        "SELECT u.id, u.full_name, r.code, s.status, s.since FROM users u JOIN roles r ON r.id = u.role_id
         LEFT JOIN operator_statuses s ON s.user_id = u.id AND s.deleted_at IS NULL
         WHERE u.deleted_at IS NULL AND u.active = 1 AND r.code IN ('operator', 'supervisor')
         ORDER BY r.code, u.full_name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(TeamMember {
            user_id: r.get(0)?,
            full_name: r.get(1)?,
            role: r.get(2)?,
            status: r.get(3)?,
            since: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A user's rights: for each right, whether they have it and whether that
/// differs from their role (the clinic head's rights editor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RightRow {
    pub right: Right,
    pub effective: bool,
    /// Set by the head on top of the role: granted (true) or taken (false).
    pub over_role: Option<bool>,
}

pub fn user_rights(conn: &Connection, user_id: &str) -> Result<Vec<RightRow>> {
    let role: Option<String> =
        conn.prepare_cached("SELECT role_id FROM users WHERE id = ?")?.query_row([user_id], |r| r.get(0)).optional()?;
    let Some(role) = role else { return Ok(Vec::new()) };
    let role_rights: Vec<String> = conn
        .prepare_cached("SELECT right_code FROM role_rights WHERE role_id = ? AND deleted_at IS NULL")?
        .query_map([&role], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let overrides: Vec<(String, bool)> = conn
        .prepare_cached("SELECT right_code, granted FROM user_rights WHERE user_id = ? AND deleted_at IS NULL")?
        .query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Right::ALL
        .iter()
        .map(|&right| {
            let over_role = overrides.iter().find(|(c, _)| c == right.code()).map(|(_, g)| *g);
            let by_role = role_rights.iter().any(|c| c == right.code());
            RightRow { right, effective: over_role.unwrap_or(by_role), over_role }
        })
        .collect())
}

/// One of the clinic's global settings (JSON), if set.
pub fn global_setting(conn: &Connection, key: &str) -> Result<Option<serde_json::Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM global_settings WHERE key = ? AND deleted_at IS NULL")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Counts of every synced table, for status lines and tests.
pub fn table_counts(conn: &Connection) -> Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for table in ["people", "person_phones", "calls", "inquiries", "deals", "tasks", "visits", "users"] {
        let n: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {table} WHERE deleted_at IS NULL"), [], |r| r.get(0))?;
        out.push((table, n));
    }
    Ok(out)
}

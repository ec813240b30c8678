//! The rights matrix against the real PostgreSQL server: for every role and
//! every right, the matching read or write done directly over SQL as that
//! role's own login (what a modified client could try) is allowed exactly
//! when the client's rules say so; operators see their own calls and tasks
//! and the shared queue, supervisors everyone's; a rights change made in
//! the head's editor syncs and the server follows it; an operator's
//! workstation syncs only what it may see, and its forbidden writes come
//! back as rejections; the audit trail is the head's alone.

#[path = "server_security.rs"]
mod security;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use clinicdesk::crm::{Right, Rights, RoleCode, Saving};
use clinicdesk::store::{Replica, int, queries, text};
use tokio_postgres::error::SqlState;

use super::sync::{Postgres, cli, count, loaded_clinic, replica_path, sync_once};

/// A cluster where every login but the administrator `postgres` must give
/// its password (SCRAM), with a demo clinic loaded, and a login for one
/// user of each role. Returns the server, the clinic's admin URL, the head's
/// workstation (the loaded replica) and the logins by role.
struct Clinic {
    pg: Postgres,
    admin_url: String,
    head_profile: tempfile::TempDir,
    logins: Vec<(RoleCode, String, String)>,
}

fn password_of(login: &str) -> String {
    format!("pw-{login}-Ω")
}

impl Clinic {
    fn start() -> Clinic {
        let pg = Postgres::init(&["password_encryption=scram-sha-256"]);
        std::fs::write(
            pg.dir().join("data/pg_hba.conf"),
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        pg.start_again();
        let (admin_url, head_profile) = loaded_clinic(&pg, "clinic", 300, 2000);
        let replica = Replica::open(&replica_path(head_profile.path())).unwrap();
        let mut logins = Vec::new();
        for role in RoleCode::ALL {
            let (login, id): (String, String) = replica
                .conn()
                .query_row(
                    "SELECT u.login, u.id FROM users u JOIN roles r ON r.id = u.role_id WHERE r.code = ?
                     ORDER BY u.login LIMIT 1",
                    [role.code()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            let out = add_login(&admin_url, &login, &format!("{}\n", password_of(&login)));
            assert!(out.status.success(), "user add {login}: {}", String::from_utf8_lossy(&out.stderr));
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(said.contains(&format!("the login {login} (")) && said.contains(role.code()), "{said}");
            assert!(!said.contains(&password_of(&login)), "the password is never shown");
            logins.push((*role, login, id));
        }
        Clinic { pg, admin_url, head_profile, logins }
    }

    fn url_of(&self, login: &str) -> String {
        format!("postgres://{login}:{}@127.0.0.1:{}/clinic", password_of(login), self.pg.port)
    }

    fn login_of(&self, role: RoleCode) -> (&str, &str) {
        let (_, login, id) = self.logins.iter().find(|(r, ..)| *r == role).unwrap();
        (login, id)
    }
}

fn add_login(url: &str, login: &str, stdin: &str) -> std::process::Output {
    let mut child = Command::new(super::sync::binary())
        .args(["server", "user", "add", "--database-url", url, "--login", login])
        .env_remove("CLINICDESK_DATABASE_URL")
        .env("CLINICDESK_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A connection of one login, for the test's direct SQL.
struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    fn connect(url: &str) -> Result<Db, tokio_postgres::Error> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, tokio_postgres::Error>(client)
        })?;
        Ok(Db { rt, client })
    }

    /// Runs `sql` in a transaction that is rolled back: Ok(rows affected or
    /// returned), Err(SQLSTATE) when the server refused.
    fn attempt(&mut self, sql: &str) -> Result<u64, SqlState> {
        self.rt.block_on(async {
            let tx = self.client.transaction().await.unwrap();
            let result = tx.query(sql, &[]).await;
            let _ = tx.rollback().await;
            match result {
                Ok(rows) if sql.trim_start().to_ascii_uppercase().starts_with("SELECT COUNT") => {
                    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
                }
                Ok(rows) => Ok(rows.len() as u64),
                Err(e) => Err(e.code().cloned().unwrap_or_else(|| panic!("{sql}: {e}"))),
            }
        })
    }

    fn ids(&self, sql: &str) -> BTreeSet<String> {
        self.rt
            .block_on(self.client.query(sql, &[]))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    fn one(&self, sql: &str) -> String {
        self.rt.block_on(self.client.query_one(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }
}

/// The user's effective rights as the client computes them (role defaults
/// plus the head's per-user changes, from the replica).
fn client_rights(replica: &Replica, user_id: &str) -> Rights {
    let mut rights = Rights::default();
    for row in queries::user_rights(replica.conn(), user_id).unwrap() {
        rights.apply(row.right, row.effective);
    }
    rights
}

/// The operation on the server that needs `right`, as SQL for user `me`
/// (`RETURNING 1` / `count(*)`: a refused read or write returns nothing or
/// fails).
fn probe(right: Right, me: &str, f: &Fixtures) -> String {
    let new = "gen_random_uuid()::text";
    match right {
        Right::AllCrm => format!(
            "INSERT INTO user_rights (id, user_id, right_code, granted, updated_at)
             VALUES ({new}, '{}', 'deal.edit', 1, 0) RETURNING 1",
            f.someone_else
        ),
        Right::EditSipSettings => {
            format!("UPDATE users SET sip_extension = '999' WHERE id = '{}' RETURNING 1", f.someone_else)
        }
        Right::EditDictionaries => {
            format!("INSERT INTO inquiry_reasons (id, name, updated_at) VALUES ({new}, 'probe', 0) RETURNING 1")
        }
        Right::ViewInquiries => "SELECT count(*) FROM inquiries".into(),
        Right::ProcessInquiries => format!(
            "INSERT INTO inquiries (id, source, status, operator_id, created_at, updated_at)
             VALUES ({new}, 'call', 'new', '{me}', 0, 0) RETURNING 1"
        ),
        Right::DeleteInquiries => format!("UPDATE inquiries SET deleted_at = 1 WHERE id = '{}' RETURNING 1", f.inquiry),
        Right::ViewDeals => "SELECT count(*) FROM deals".into(),
        Right::EditDeals => format!(
            "INSERT INTO deals (id, deal_type_id, stage_id, title, created_at, updated_at)
             VALUES ({new}, '{}', '{}', 'probe', 0, 0) RETURNING 1",
            f.deal_type, f.stage
        ),
        Right::EditTasks => format!(
            "INSERT INTO tasks (id, task_type_id, title, deadline_at, created_by, created_at, updated_at)
             VALUES ({new}, '{}', 'probe', 0, '{me}', 0, 0) RETURNING 1",
            f.task_type
        ),
        Right::WorkTasks => {
            format!("UPDATE tasks SET status = 'in_progress' WHERE id = '{}' RETURNING 1", f.queue_task)
        }
        Right::DeleteTasks => format!("UPDATE tasks SET deleted_at = 1 WHERE id = '{}' RETURNING 1", f.queue_task),
        Right::ViewAllTasks => {
            format!("SELECT count(*) FROM tasks WHERE responsible_id <> '{me}' AND created_by IS DISTINCT FROM '{me}'")
        }
        Right::EditVisits => format!(
            "INSERT INTO visits (id, person_id, doctor_id, starts_at, updated_at)
             VALUES ({new}, '{}', '{}', 0, 0) RETURNING 1",
            f.person, f.doctor
        ),
        Right::DeleteVisits => format!("UPDATE visits SET deleted_at = 1 WHERE id = '{}' RETURNING 1", f.visit),
        Right::CallLog => format!(
            "INSERT INTO calls (id, direction, peer_e164, operator_id, started_at, result, updated_at)
             VALUES ({new}, 'in', '+79990000000', '{me}', 0, 'answered', 0) RETURNING 1"
        ),
        Right::ViewAllCalls => {
            format!("SELECT count(*) FROM calls WHERE operator_id <> '{me}' AND result <> 'missed'")
        }
        Right::Analytics => "SELECT count(*) + 1 FROM clinicdesk_call_figures(0, 9000000000000000)".into(),
        Right::ViewAudit => "SELECT count(*) + 1 FROM clinicdesk_audit(NULL, NULL, NULL, NULL, NULL, 1)".into(),
    }
}

/// Whether the client lets these rights do what `probe(right)` does: the
/// right itself, except where the client's rule is wider.
fn client_allows(right: Right, rights: &Rights) -> bool {
    match right {
        // Changing a task's status is saving a task (task.edit or
        // task.work); "work with tasks" has no operation of its own.
        Right::WorkTasks => rights.may_save(Saving::Task),
        Right::EditTasks => rights.may_save(Saving::NewTask),
        // The head (all CRM rights) manages users, SIP extensions included.
        Right::EditSipSettings => rights.has(Right::EditSipSettings) || rights.has(Right::AllCrm),
        _ => rights.has(right),
    }
}

/// Rows the probes work on, read as the administrator.
struct Fixtures {
    someone_else: String,
    inquiry: String,
    deal_type: String,
    stage: String,
    task_type: String,
    queue_task: String,
    person: String,
    doctor: String,
    visit: String,
}

impl Fixtures {
    fn read(admin: &Db, logins: &[(RoleCode, String, String)]) -> Fixtures {
        let ours: Vec<String> = logins.iter().map(|(_, _, id)| format!("'{id}'")).collect();
        Fixtures {
            someone_else: admin
                .one(&format!("SELECT id FROM users WHERE id NOT IN ({}) ORDER BY login LIMIT 1", ours.join(", "))),
            inquiry: admin.one("SELECT id FROM inquiries WHERE deleted_at IS NULL ORDER BY id LIMIT 1"),
            deal_type: admin.one("SELECT deal_type_id FROM deal_stages ORDER BY id LIMIT 1"),
            stage: admin.one("SELECT id FROM deal_stages ORDER BY id LIMIT 1"),
            task_type: admin.one("SELECT id FROM task_types ORDER BY id LIMIT 1"),
            queue_task: admin
                .one("SELECT id FROM tasks WHERE responsible_id IS NULL AND deleted_at IS NULL ORDER BY id LIMIT 1"),
            person: admin.one("SELECT id FROM people ORDER BY id LIMIT 1"),
            doctor: admin
                .one("SELECT u.id FROM users u JOIN roles r ON r.id = u.role_id WHERE r.code = 'doctor' LIMIT 1"),
            visit: admin.one("SELECT id FROM visits WHERE deleted_at IS NULL ORDER BY id LIMIT 1"),
        }
    }
}

#[test]
fn every_role_gets_from_the_server_exactly_what_its_rights_allow() {
    let clinic = Clinic::start();
    let replica = Replica::open(&replica_path(clinic.head_profile.path())).unwrap();
    let admin = Db::connect(&clinic.admin_url).unwrap();
    let f = Fixtures::read(&admin, &clinic.logins);
    // The probes' rows must be deterministic in `stage` belonging to `deal_type`.
    assert_eq!(admin.one(&format!("SELECT deal_type_id FROM deal_stages WHERE id = '{}'", f.stage)), f.deal_type);

    // A wrong password is refused: the logins are real.
    let (op_login, _) = clinic.login_of(RoleCode::Operator);
    let wrong = format!("postgres://{op_login}:nope@127.0.0.1:{}/clinic", clinic.pg.port);
    assert!(Db::connect(&wrong).is_err(), "a wrong password must not get in");

    let mut table = Vec::new();
    for (role, login, me) in &clinic.logins {
        let rights = client_rights(&replica, me);
        let overrides =
            queries::user_rights(replica.conn(), me).unwrap().iter().filter(|r| r.over_role.is_some()).count();
        if overrides == 0 {
            assert_eq!(rights, role.default_rights(), "{login}'s rights are the defaults of {role:?}");
        }
        let mut db = Db::connect(&clinic.url_of(login)).unwrap_or_else(|e| panic!("{login} cannot sign in: {e}"));
        let mut line = format!("{:<10}", role.code());
        for right in Right::ALL {
            let sql = probe(*right, me, &f);
            let client = client_allows(*right, &rights);
            if !matches!(*right, Right::WorkTasks | Right::EditSipSettings) {
                // Where the client's rule is not the right itself, it agrees
                // with it for every role's defaults anyway.
                assert_eq!(client, rights.has(*right), "{login}: client rule for {right:?}");
            }
            let server = match db.attempt(&sql) {
                Ok(n) => n > 0,
                Err(code) => {
                    assert_eq!(code, SqlState::INSUFFICIENT_PRIVILEGE, "{login} {right:?}: refused for another reason");
                    false
                }
            };
            assert_eq!(
                server,
                client,
                "{login} ({role:?}) {right:?}: the server {} what the client {}\n{sql}",
                if server { "allowed" } else { "refused" },
                if client { "allows" } else { "refuses" }
            );
            line.push(if server { '+' } else { '.' });
        }
        table.push(line);

        // Calls and tasks: exactly the rows the client's rules let this user see.
        let all_calls: Vec<(String, Option<String>, String)> = admin
            .rt
            .block_on(admin.client.query("SELECT id, operator_id, result FROM calls", &[]))
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected: BTreeSet<String> = all_calls
            .iter()
            .filter(|(_, op, result)| rights.may_see_call(me, op.as_deref(), result == "missed"))
            .map(|(id, ..)| id.clone())
            .collect();
        assert_eq!(db.ids("SELECT id FROM calls"), expected, "{login}: the calls the server shows");
        let all_tasks: Vec<(String, Option<String>, Option<String>)> = admin
            .rt
            .block_on(admin.client.query("SELECT id, responsible_id, created_by FROM tasks", &[]))
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let expected: BTreeSet<String> = all_tasks
            .iter()
            .filter(|(_, resp, by)| rights.may_see_task(me, resp.as_deref(), by.as_deref()))
            .map(|(id, ..)| id.clone())
            .collect();
        assert_eq!(db.ids("SELECT id FROM tasks"), expected, "{login}: the tasks the server shows");
        if *role == RoleCode::Operator {
            assert!(expected.len() < all_tasks.len(), "an operator does not see every task");
            assert!(db.ids("SELECT id FROM calls").len() < all_calls.len(), "an operator does not see every call");
        }
        if *role == RoleCode::Supervisor {
            assert_eq!(expected.len(), all_tasks.len(), "a supervisor sees every task");
        }
        // Nobody forges the change log, nor reads who changed what in it
        // (only where and which row, of the rows it may see: its policy).
        assert_eq!(db.attempt("SELECT author FROM sync_changes"), Err(SqlState::INSUFFICIENT_PRIVILEGE));
        assert_eq!(
            db.attempt("INSERT INTO sync_changes (table_name, row_id) VALUES ('deals', 'x') RETURNING 1"),
            Err(SqlState::INSUFFICIENT_PRIVILEGE)
        );
    }
    let header: String = Right::ALL.iter().map(|r| r.code().chars().next().unwrap_or('?')).collect();
    eprintln!("rights matrix on the server (+ allowed), columns {header}:\n{}", table.join("\n"));
}

fn rejected_count(profile: &std::path::Path) -> i64 {
    count(profile, "SELECT count(*) FROM sync_rejections")
}

#[test]
fn workstations_sync_what_their_user_may_see_and_the_server_follows_the_heads_rights_editor() {
    let clinic = Clinic::start();
    let admin = Db::connect(&clinic.admin_url).unwrap();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (head_login, _) = clinic.login_of(RoleCode::Head);
    let op_url = clinic.url_of(op_login);
    let head_url = clinic.url_of(head_login);

    // The operator's workstation: a snapshot of what the operator may see,
    // and nothing left over to fetch again (no dangling references).
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &op_url);
    let op_db = Db::connect(&op_url).unwrap();
    for table in ["calls", "tasks", "inquiries", "deals", "visits", "people"] {
        let server = op_db.one(&format!("SELECT count(*)::text FROM {table}"));
        let local = count(b.path(), &format!("SELECT count(*) FROM {table}"));
        assert_eq!(local.to_string(), server, "{table} on the operator's workstation");
    }
    let all_calls: i64 = admin.one("SELECT count(*)::text FROM calls").parse().unwrap();
    assert!(count(b.path(), "SELECT count(*) FROM calls") < all_calls, "not everyone's calls");
    assert_eq!(count(b.path(), "SELECT count(*) FROM sync_refetch"), 0, "no dangling references");

    // The operator's allowed write goes up; a forbidden one (a modified
    // client skipping the window's check) comes back refused, recorded.
    let inquiry = clinicdesk::crm::new_id();
    let deal = clinicdesk::crm::new_id();
    {
        let mut r = Replica::open(&replica_path(b.path())).unwrap();
        r.write(|w| {
            w.insert(
                "inquiries",
                &inquiry,
                &[
                    ("source", text("walk_in")),
                    ("status", text("new")),
                    ("operator_id", text(op_id)),
                    ("note", text("пациент у стойки")),
                    ("created_at", int(w.now())),
                ],
            )
        })
        .unwrap();
        let (deal_type, stage): (String, String) = r
            .conn()
            .query_row("SELECT deal_type_id, id FROM deal_stages ORDER BY id LIMIT 1", [], |x| {
                Ok((x.get(0)?, x.get(1)?))
            })
            .unwrap();
        r.write(|w| {
            w.insert(
                "deals",
                &deal,
                &[
                    ("deal_type_id", text(deal_type)),
                    ("stage_id", text(stage)),
                    ("title", text("forged")),
                    ("created_at", int(w.now())),
                ],
            )
        })
        .unwrap();
    }
    let said = sync_once(b.path(), &op_url);
    assert!(said.contains("1 rejected"), "{said}");
    assert_eq!(rejected_count(b.path()), 1);
    let why = super::sync::text_of(b.path(), "SELECT error FROM sync_rejections").unwrap_or_default();
    assert!(why.contains("row-level security") && why.contains("deals"), "{why}");
    assert_eq!(admin.one(&format!("SELECT count(*)::text FROM inquiries WHERE id = '{inquiry}'")), "1");
    assert_eq!(admin.one(&format!("SELECT count(*)::text FROM deals WHERE id = '{deal}'")), "0");
    assert_eq!(
        admin.one(&format!(
            "SELECT string_agg(author || ' ' || op, ',') FROM clinicdesk_audit_log WHERE row_id = '{deal}'"
        )),
        format!("{op_login} refused"),
        "the workstation's refused upload is in the audit trail"
    );
    assert_eq!(count(b.path(), &format!("SELECT count(*) FROM deals WHERE id = '{deal}'")), 0, "undone locally");

    // The head takes "view deals" from the operator in the rights editor
    // (the head's workstation writes user_rights and syncs as the head):
    // the server stops showing the operator deals at once.
    let a = clinic.head_profile.path();
    sync_once(a, &head_url);
    assert!(op_db.one("SELECT count(*)::text FROM deals") != "0");
    Replica::open(&replica_path(a)).unwrap().set_user_right(op_id, Right::ViewDeals, Some(false)).unwrap();
    let said = sync_once(a, &head_url);
    assert!(said.contains("0 rejected"), "{said}");
    assert_eq!(op_db.one("SELECT count(*)::text FROM deals"), "0", "the server follows the stored rights");
    Replica::open(&replica_path(a)).unwrap().set_user_right(op_id, Right::ViewDeals, None).unwrap();
    sync_once(a, &head_url);
    assert!(op_db.one("SELECT count(*)::text FROM deals") != "0", "back to the role's default");
    // The operator cannot do the same for themselves.
    {
        let mut r = Replica::open(&replica_path(b.path())).unwrap();
        r.set_user_right(op_id, Right::ViewAllCalls, Some(true)).unwrap();
    }
    let said = sync_once(b.path(), &op_url);
    assert!(said.contains("1 rejected"), "{said}");
    assert_eq!(rejected_count(b.path()), 2);

    // The audit trail: the head reads who did what; the operator is refused.
    let out = cli(None, &["server", "audit", "--database-url", &head_url, "--user", op_login, "--table", "inquiries"]);
    let text_out = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = text_out.lines().find(|l| l.contains(&inquiry)).unwrap_or_else(|| panic!("no entry:\n{text_out}"));
    assert!(line.contains(op_login) && line.contains("insert") && line.contains("пациент у стойки"), "{line}");
    let out =
        cli(None, &["server", "audit", "--database-url", &head_url, "--search", "стойки", "--since", "2000-01-01"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&inquiry));
    let out = cli(None, &["server", "audit", "--database-url", &head_url, "--table", "user_rights"]);
    let rights_log = String::from_utf8_lossy(&out.stdout);
    assert!(rights_log.contains(head_login) && rights_log.contains("deal.view"), "{rights_log}");
    assert!(rights_log.contains("delete"), "taking the change back is a tombstone: {rights_log}");
    let out = cli(None, &["server", "audit", "--database-url", &head_url, "--since", "2999-01-01"]);
    assert!(out.status.success() && out.stdout.is_empty());
    let out = cli(None, &["server", "audit", "--database-url", &op_url]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only the clinic head may read the change log"), "{err}");
    let out = cli(None, &["server", "audit", "--database-url", &head_url, "--since", "yesterday"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--since"));
    // The reader the window uses says the same.
    let q = clinicdesk::sync::audit::AuditQuery { author: Some(op_login.into()), ..Default::default() };
    let entries = clinicdesk::sync::audit::read(&head_url, &q).unwrap();
    let e = entries.iter().find(|e| e.row_id == inquiry).unwrap();
    assert_eq!(e.user_id.as_deref(), Some(op_id));
    assert!(e.changes.iter().any(|c| c.column == "note"));
    assert!(matches!(clinicdesk::sync::audit::read(&op_url, &q), Err(clinicdesk::sync::SyncError::NotAllowed(_))));

    // Logins: reserved names and an empty password are refused, and a
    // PostgreSQL role that is not a ClinicDesk login is left alone.
    let out = add_login(&clinic.admin_url, "postgres", "x\n");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("reserved"));
    let out = add_login(&clinic.admin_url, "nurse1", "\n");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no password"));
    super::sync::execute(&clinic.admin_url, "CREATE ROLE reporting LOGIN");
    let out = add_login(&clinic.admin_url, "reporting", "pw\n");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a ClinicDesk login"));
    let out = add_login(&clinic.admin_url, "newcomer", "pw\n");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no ClinicDesk user"));
    let newcomer = Db::connect(&format!("postgres://newcomer:pw@127.0.0.1:{}/clinic", clinic.pg.port)).unwrap();
    assert_eq!(newcomer.one("SELECT count(*)::text FROM people"), "0", "a login without a user sees nothing");
    // A new password for an existing login works, the old one not.
    let out = add_login(&clinic.admin_url, op_login, "second\n");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("new password"));
    assert!(Db::connect(&op_url).is_err());
}

/// The head's audit screen reads the clinic database's change log on its
/// own thread: a change made by an operator shows with who made it, and
/// the search by user leaves only theirs.
#[test]
fn the_heads_audit_screen_shows_who_changed_what_and_filters_by_user() {
    use egui::accesskit::Role;
    use egui_kittest::kittest::Queryable;

    use super::gui::{app_on, harness, has_text, settle, type_into};

    let clinic = Clinic::start();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (head_login, head_id) = clinic.login_of(RoleCode::Head);
    let (op_url, head_url) = (clinic.url_of(op_login), clinic.url_of(head_login));
    let write_inquiry = |profile: &std::path::Path, user: &str, note: &str| {
        Replica::open(&replica_path(profile))
            .unwrap()
            .write(|w| {
                w.insert(
                    "inquiries",
                    &clinicdesk::crm::new_id(),
                    &[
                        ("source", text("walk_in")),
                        ("status", text("new")),
                        ("operator_id", text(user)),
                        ("note", text(note)),
                        ("created_at", int(w.now())),
                    ],
                )
            })
            .unwrap();
    };
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &op_url);
    write_inquiry(b.path(), op_id, "аудит-окно-оператор");
    assert!(sync_once(b.path(), &op_url).contains("0 rejected"));
    let a = clinic.head_profile.path();
    sync_once(a, &head_url);
    write_inquiry(a, head_id, "аудит-окно-руководитель");
    assert!(sync_once(a, &head_url).contains("0 rejected"));

    super::tasks_ui::sign_in(a, head_login, Some(&head_url));
    let mut h = harness(app_on(a));
    settle(&mut h, "the head's navigation", |h| h.query_by_role_and_label(Role::Button, "Audit").is_some());
    h.get_by_role_and_label(Role::Button, "Audit").click();
    settle(&mut h, "both changes with who made them", |h| {
        has_text(h, "аудит-окно-оператор") && has_text(h, "аудит-окно-руководитель") && has_text(h, op_login)
    });
    type_into(&mut h, "User", op_login);
    h.get_by_role_and_label(Role::Button, "Search").click();
    settle(&mut h, "only the operator's", |h| {
        has_text(h, "аудит-окно-оператор") && !has_text(h, "аудит-окно-руководитель")
    });
    assert!(has_text(&h, &format!("{op_login} (")), "the login and the user's name");

    // The same window for a workstation whose user has no audit.view on
    // the server (the operator's login, a head in the local replica): the
    // server's refusal is shown, not an empty list.
    drop(h);
    super::tasks_ui::sign_in(a, head_login, Some(&op_url));
    let mut h = harness(app_on(a));
    settle(&mut h, "the head's navigation", |h| h.query_by_role_and_label(Role::Button, "Audit").is_some());
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::Num9);
    settle(&mut h, "the refusal", |h| {
        has_text(h, "The clinic database refused to show the audit trail") && has_text(h, "ask the clinic head")
    });
}

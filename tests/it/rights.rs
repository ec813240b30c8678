//! The rights matrix against the real PostgreSQL server: for every role and
//! every right, the matching read or write done directly over SQL as that
//! role's own login (what a modified client could try) is allowed exactly
//! when the client's rules say so; operators see their own calls and tasks
//! and the shared queue, supervisors everyone's; a rights change made in
//! the head's editor syncs and the server follows it; an operator's
//! workstation syncs only what it may see, and its forbidden writes come
//! back as rejections; the audit trail is the head's alone.

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
    let sql = match right {
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
    };
    sql
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
        // Nobody reads or forges the change log directly.
        assert_eq!(db.attempt("SELECT count(*) FROM sync_changes"), Err(SqlState::INSUFFICIENT_PRIVILEGE));
        assert_eq!(
            db.attempt("INSERT INTO sync_changes (table_name, row_id) VALUES ('deals', 'x') RETURNING 1"),
            Err(SqlState::INSUFFICIENT_PRIVILEGE)
        );
    }
    let header: String = Right::ALL.iter().map(|r| r.code().chars().next().unwrap_or('?')).collect();
    eprintln!("rights matrix on the server (+ allowed), columns {header}:\n{}", table.join("\n"));
}

//! Sync against a real PostgreSQL: each test starts a throwaway server
//! (initdb into a temp dir, its own port on 127.0.0.1, stopped on drop) and
//! runs the real `clinicdesk` binary on profiles side by side, or the
//! engine in-process. Convergence is proved by checksums of every synced
//! table (and of the search index) on every workstation and the server.

#[path = "sync_cases.rs"]
mod cases;
#[path = "sync_crash.rs"]
mod crash;
#[path = "sync_flood.rs"]
mod flood;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use clinicdesk::store::Replica;
use clinicdesk::sync::checksum::{self, Checksums, SEARCH_INDEX};
use clinicdesk::sync::tables::{self, TableSpec};

use super::harness;

/// A throwaway PostgreSQL cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_root: bool,
    pub port: u16,
    extra: Vec<String>,
}

fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").is_file()).collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some(bin) = versions.pop() {
        return bin;
    }
    let initdb = harness::require("initdb", "postgresql");
    initdb.parent().unwrap().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Postgres {
    pub fn start() -> Postgres {
        let pg = Postgres::init(&[]);
        pg.start_again();
        pg
    }

    /// A new cluster, not started yet; `extra`: more `-c name=value`
    /// server settings.
    pub fn init(extra: &[&str]) -> Postgres {
        let bin = pg_bin();
        let as_root = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
        // Short path: it also holds the Unix socket.
        let dir = tempfile::Builder::new().prefix("cdpg").tempdir_in("/tmp").unwrap();
        let pg =
            Postgres { dir, bin, as_root, port: free_port(), extra: extra.iter().map(|s| s.to_string()).collect() };
        if as_root {
            let ok = Command::new("chown").args(["-R", "postgres:"]).arg(pg.dir.path()).status().unwrap();
            assert!(ok.success(), "chown of the PostgreSQL dir to postgres failed");
        }
        let data = pg.dir.path().join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        pg
    }

    pub fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts (again, after `stop`) on the same port and data.
    pub fn start_again(&self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        for e in &self.extra {
            options.push_str(" -c ");
            options.push_str(e);
        }
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("pg.log"))
            .args(["-w", "start", "-o", &options])
            .output()
            .unwrap();
        let log = std::fs::read_to_string(self.dir.path().join("pg.log")).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl start failed: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new database with the ClinicDesk schema.
    pub fn clinic(&self, name: &str) -> String {
        execute(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        let url = self.url(name);
        let out = cli(None, &["server", "init", "--database-url", &url]);
        assert!(out.status.success(), "server init: {}", String::from_utf8_lossy(&out.stderr));
        url
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A connection for the test's own SQL (the "other client" of the server).
pub struct Sql {
    rt: tokio::runtime::Runtime,
    pub client: tokio_postgres::Client,
}

impl Sql {
    pub fn connect(url: &str) -> Sql {
        let rt = runtime();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Sql { rt, client }
    }

    pub fn execute(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    pub fn i64(&self, sql: &str) -> i64 {
        self.rt.block_on(self.client.query_one(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
    }

    pub fn text(&self, sql: &str) -> Option<String> {
        self.rt.block_on(self.client.query_one(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
    }
}

pub fn execute(url: &str, sql: &str) {
    Sql::connect(url).execute(sql);
}

/// The binary under test: cargo's, or CLINICDESK_TEST_BINARY (a copy
/// that other builds sharing the target directory cannot replace midway).
pub fn binary() -> PathBuf {
    std::env::var_os("CLINICDESK_TEST_BINARY").map_or_else(harness::binary, PathBuf::from)
}

/// Runs the real binary; `profile` adds `--profile`.
pub fn cli(profile: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(binary());
    if let Some(p) = profile {
        c.arg("--profile").arg(p);
    }
    c.args(args).env_remove("CLINICDESK_DATABASE_URL").env("CLINICDESK_LOG", "warn").stdin(Stdio::null());
    c.output().unwrap()
}

/// `clinicdesk sync --once` on a profile; fails the test if it fails.
pub fn sync_once(profile: &Path, url: &str) -> String {
    let out = cli(Some(profile), &["sync", "--database-url", url, "--once"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sync --once on {} failed:\n{stdout}\n{}",
        profile.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

pub fn replica_path(profile: &Path) -> PathBuf {
    profile.join("replica.sqlite")
}

pub fn open(profile: &Path) -> Replica {
    Replica::open(&replica_path(profile)).unwrap()
}

pub fn specs() -> Vec<TableSpec> {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
    tables::specs(r.conn()).unwrap()
}

pub fn replica_sums(profile: &Path) -> Checksums {
    let r = open(profile);
    checksum::replica(r.conn(), &specs()).unwrap()
}

pub fn server_sums(url: &str) -> Checksums {
    checksum::server_blocking(url, &specs()).unwrap()
}

/// Every workstation holds exactly the server's rows, and the same search
/// index; returns the server's sums.
pub fn assert_converged(url: &str, profiles: &[&Path]) -> Checksums {
    let server = server_sums(url);
    let mut first_index = None;
    for p in profiles {
        let mut local = replica_sums(p);
        let index = local.remove(SEARCH_INDEX).unwrap();
        for (table, sum) in &server {
            assert_eq!(local.get(table), Some(sum), "table {table} of {} differs from the server", p.display());
        }
        assert_eq!(local.len(), server.len());
        match &first_index {
            None => first_index = Some(index),
            Some(i) => assert_eq!(&index, i, "the search index of {} differs", p.display()),
        }
        let outbox: i64 = open(p).conn().query_row("SELECT count(*) FROM outbox", [], |r| r.get(0)).unwrap();
        assert_eq!(outbox, 0, "{} still has pending changes", p.display());
    }
    server
}

/// A clinic database loaded from a generated replica, and that replica's
/// profile (workstation A).
pub fn loaded_clinic(pg: &Postgres, name: &str, patients: usize, calls: usize) -> (String, tempfile::TempDir) {
    let url = pg.clinic(name);
    let a = harness::demo_profile(patients, calls);
    let replica = replica_path(a.path());
    let out = cli(None, &["server", "load", "--database-url", &url, "--replica", replica.to_str().unwrap()]);
    assert!(out.status.success(), "server load: {}", String::from_utf8_lossy(&out.stderr));
    (url, a)
}

pub fn count(profile: &Path, sql: &str) -> i64 {
    open(profile).conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn text_of(profile: &Path, sql: &str) -> Option<String> {
    open(profile).conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

pub const PATIENT: Duration = Duration::from_secs(120);

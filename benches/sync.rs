//! Sync figures against a throwaway PostgreSQL started here (as the tests
//! do): criterion measures upload and download throughput; with `--bench`
//! the figures of the issue are printed too:
//!
//! * initial sync of the bench clinic (200,000 people, 1,000,000 calls;
//!   CLINICDESK_BENCH_PATIENTS / _CALLS to change): rows/s and peak memory
//!   of the real `clinicdesk sync --once`;
//! * propagation from a commit on workstation A to the row visible in the
//!   other replicas, p50/p99, with 20 workstations (`clinicdesk sync`
//!   processes) syncing and 10 writes/s, and the server's CPU meanwhile.
//!
//! cargo bench --bench sync
//! (CLINICDESK_SYNC_FIGURES=0 skips the figures; CLINICDESK_BENCH_SECONDS
//! sets the propagation run, default 30.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use clinicdesk::demo::{self, DemoOptions};
use clinicdesk::store::{Replica, text};
use clinicdesk::sync::{SyncConfig, sync_once};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A throwaway PostgreSQL cluster (stopped on drop).
struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_root: bool,
    port: u16,
}

impl Postgres {
    fn start() -> Postgres {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).filter(|p| p.join("initdb").is_file()).collect()
            })
            .unwrap_or_default();
        versions.sort();
        let bin = versions.pop().expect("PostgreSQL is not installed: install the Debian package `postgresql`");
        let as_root = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0";
        let dir = tempfile::Builder::new().prefix("cdpgb").tempdir_in("/tmp").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Postgres { dir, bin, as_root, port };
        if as_root {
            Command::new("chown").args(["-R", "postgres:"]).arg(pg.dir.path()).status().unwrap();
        }
        let data = pg.dir.path().join("data");
        let ok = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 -c shared_buffers=256MB",
            pg.dir.path().display()
        );
        let ok = pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(pg.dir.path().join("pg.log"))
            .args(["-w", "start", "-o", &options])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start");
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// A new clinic database; loaded from `replica` when given.
    fn clinic(&self, name: &str, replica: Option<&Path>) -> String {
        psql(&self.url("postgres"), &format!("CREATE DATABASE {name}"));
        let url = self.url(name);
        run(Command::new(binary()).args(["server", "init", "--database-url", &url]));
        if let Some(r) = replica {
            let started = Instant::now();
            run(Command::new(binary()).args(["server", "load", "--database-url", &url, "--replica"]).arg(r));
            eprintln!("  server load of {}: {:.1} s", r.display(), started.elapsed().as_secs_f64());
        }
        url
    }

    /// CPU seconds used so far by the server's processes.
    fn cpu_seconds(&self) -> f64 {
        let pid_file = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).unwrap_or_default();
        let Some(master) = pid_file.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) else { return 0.0 };
        let mut ticks = 0u64;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { continue };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the command: state ppid ... utime(12) stime(13).
            let ppid: u32 = fields.get(1).and_then(|f| f.parse().ok()).unwrap_or(0);
            if pid == master || ppid == master {
                ticks += fields.get(11).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
                ticks += fields.get(12).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            }
        }
        ticks as f64 / 100.0
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

/// cargo's binary, or CLINICDESK_TEST_BINARY (a copy other builds sharing
/// the target directory cannot replace midway).
fn binary() -> PathBuf {
    std::env::var_os("CLINICDESK_TEST_BINARY")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_clinicdesk")), PathBuf::from)
}

fn run(c: &mut Command) -> String {
    let out = c.env("CLINICDESK_LOG", "warn").output().unwrap();
    assert!(out.status.success(), "{c:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn psql(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client.batch_execute(sql).await.unwrap();
    });
}

fn demo_replica(dir: &Path, patients: usize, calls: usize) -> PathBuf {
    let path = dir.join(format!("replica-{patients}-{calls}.sqlite"));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let mut replica = Replica::open(&partial).unwrap();
        let opts = DemoOptions { patients, calls, seed: 42, now: 1_795_000_000_000 };
        demo::generate(&mut replica, &opts, &mut |p| eprintln!("  generating {patients}/{calls}: {p}")).unwrap();
        drop(replica);
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Criterion: local transactions uploaded per second, and downloaded
/// change-log rows applied per second.
fn throughput(c: &mut Criterion, pg: &Postgres) {
    let replica = demo_replica(&bench_dir(), 2_000, 5_000);
    let url = pg.clinic("throughput", Some(&replica));
    let work = tempfile::tempdir().unwrap();
    let a = work.path().join("a.sqlite");
    let b = work.path().join("b.sqlite");
    let config = SyncConfig::new(url.clone());
    sync_once(&a, &config).unwrap();
    sync_once(&b, &config).unwrap();
    let people: Vec<String> = {
        let r = Replica::open(&a).unwrap();
        let mut stmt = r.conn().prepare("SELECT id FROM people ORDER BY id LIMIT 1000").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|x| x.unwrap()).collect()
    };
    const TXS: usize = 1000;
    let mut g = c.benchmark_group("sync");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(TXS as u64));
    let mut round = 0u64;
    g.bench_function("upload 1000 local transactions (one update each)", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let mut r = Replica::open(&a).unwrap();
                for id in &people {
                    r.write(|w| w.update_changed("people", id, &[("note", text(format!("round {round}")))])).unwrap();
                }
                drop(r);
                let started = Instant::now();
                let report = sync_once(&a, &config).unwrap();
                total += started.elapsed();
                assert_eq!(report.uploaded_transactions, TXS);
            }
            total
        })
    });
    // Bulk work (an import): 10 local transactions of 200 new people with a
    // phone each, 4,000 changes.
    g.throughput(Throughput::Elements(4000));
    g.bench_function("upload 4000 changes in 10 local transactions", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let mut r = Replica::open(&a).unwrap();
                for t in 0..10 {
                    r.write(|w| {
                        for i in 0..200 {
                            let id = clinicdesk::crm::new_id();
                            w.insert(
                                "people",
                                &id,
                                &[
                                    ("last_name", text(format!("Bulk{round}"))),
                                    ("first_name", text(format!("N{t}-{i}"))),
                                    ("created_at", clinicdesk::store::int(w.now())),
                                ],
                            )?;
                            w.insert(
                                "person_phones",
                                &clinicdesk::crm::new_id(),
                                &[
                                    ("person_id", text(&id)),
                                    ("phone_e164", text(format!("+7917{:03}{t}{i:03}", round % 1000))),
                                ],
                            )?;
                        }
                        Ok(())
                    })
                    .unwrap();
                }
                drop(r);
                let started = Instant::now();
                let report = sync_once(&a, &config).unwrap();
                total += started.elapsed();
                assert_eq!(report.uploaded_changes, 4000);
            }
            total
        })
    });
    g.throughput(Throughput::Elements(TXS as u64));
    g.bench_function("download and apply 1000 changed rows", |bench| {
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                psql(&url, &format!("UPDATE people SET note = 'server {round}' WHERE id IN (SELECT id FROM people ORDER BY id LIMIT {TXS})"));
                let started = Instant::now();
                let report = sync_once(&b, &config).unwrap();
                total += started.elapsed();
                assert!(report.downloaded_rows >= TXS);
            }
            total
        })
    });
    g.finish();
}

/// Peak resident memory (VmHWM, KiB) of a running process.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn initial_sync_figure(pg: &Postgres) {
    let patients = size("CLINICDESK_BENCH_PATIENTS", 200_000);
    let calls = size("CLINICDESK_BENCH_CALLS", 1_000_000);
    eprintln!("initial sync of {patients} people and {calls} calls");
    let replica = demo_replica(&bench_dir(), patients, calls);
    let url = pg.clinic("initial", Some(&replica));
    let rows: i64 = {
        let r = Replica::open_read_only(&replica).unwrap();
        clinicdesk::sync::tables::SYNCED_TABLES
            .iter()
            .map(|t| r.conn().query_row(&format!("SELECT count(*) FROM {t}"), [], |x| x.get::<_, i64>(0)).unwrap())
            .sum()
    };
    let profile = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = Command::new(binary())
        .arg("--profile")
        .arg(profile.path())
        .args(["sync", "--database-url", &url, "--once"])
        .env("CLINICDESK_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak.max(peak_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    println!(
        "initial sync: {rows} rows in {elapsed:.1} s = {:.0} rows/s, peak RSS {:.0} MiB ({})",
        rows as f64 / elapsed,
        peak as f64 / 1024.0,
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

struct Workstation {
    profile: tempfile::TempDir,
    child: Child,
}

impl Drop for Workstation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn propagation_figure(pg: &Postgres) {
    const STATIONS: usize = 20;
    const RATE: f64 = 10.0;
    let seconds = size("CLINICDESK_BENCH_SECONDS", 30) as f64;
    let replica = demo_replica(&bench_dir(), 2_000, 5_000);
    let url = pg.clinic("propagation", Some(&replica));
    let config = SyncConfig::new(url.clone());
    eprintln!("propagation: {STATIONS} workstations, {RATE} writes/s on one for {seconds} s");
    let mut stations = Vec::new();
    for _ in 0..STATIONS {
        let profile = tempfile::tempdir().unwrap();
        sync_once(&profile.path().join("replica.sqlite"), &config).unwrap();
        let child = Command::new(binary())
            .arg("--profile")
            .arg(profile.path())
            .args(["sync", "--database-url", &url])
            .env("CLINICDESK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        stations.push(Workstation { profile, child });
    }
    let people: Vec<String> = {
        let r = Replica::open(&stations[0].profile.path().join("replica.sqlite")).unwrap();
        let mut stmt = r.conn().prepare("SELECT id FROM people ORDER BY id").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|x| x.unwrap()).collect()
    };
    std::thread::sleep(Duration::from_secs(2));
    let readers: Vec<rusqlite::Connection> = stations[1..]
        .iter()
        .map(|s| {
            let c = rusqlite::Connection::open_with_flags(
                s.profile.path().join("replica.sqlite"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .unwrap();
            c.busy_timeout(Duration::from_secs(5)).unwrap();
            c
        })
        .collect();
    let mut writer = Replica::open(&stations[0].profile.path().join("replica.sqlite")).unwrap();
    let cpu_before = pg.cpu_seconds();
    let started = Instant::now();
    let total = (seconds * RATE) as usize;
    // (person, value, committed at, replicas still to see it)
    let mut outstanding: Vec<(String, String, Instant, Vec<usize>)> = Vec::new();
    let mut latencies: Vec<f64> = Vec::new();
    let mut written = 0;
    while written < total || !outstanding.is_empty() {
        let due = started + Duration::from_secs_f64(written as f64 / RATE);
        if written < total && Instant::now() >= due {
            let id = people[written % people.len()].clone();
            let value = format!("propagation {written}");
            writer.write(|w| w.update_changed("people", &id, &[("note", text(&value))])).unwrap();
            outstanding.push((id, value, Instant::now(), (0..readers.len()).collect()));
            written += 1;
        }
        for (id, value, at, left) in &mut outstanding {
            left.retain(|&k| {
                let note: String = readers[k]
                    .query_row("SELECT note FROM people WHERE id = ?", [&*id], |r| r.get(0))
                    .unwrap_or_default();
                if note == *value {
                    latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                    false
                } else {
                    true
                }
            });
        }
        outstanding.retain(|(_, _, at, left)| !left.is_empty() && at.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = pg.cpu_seconds() - cpu_before;
    latencies.sort_by(f64::total_cmp);
    println!(
        "propagation A → other replicas ({} observations, {STATIONS} workstations, {RATE} writes/s): \
         p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; server CPU {:.1} s in {wall:.0} s = {:.1}% of one core",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        cpu,
        cpu / wall * 100.0
    );
    drop(stations);
}

fn main() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("CLINICDESK_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let pg = Postgres::start();
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c, &pg);
    c.final_summary();
    if bench_mode && std::env::var("CLINICDESK_SYNC_FIGURES").as_deref() != Ok("0") {
        propagation_figure(&pg);
        initial_sync_figure(&pg);
    }
}

//! Reads behind the screens on a full-size replica (200,000 people,
//! 1,000,000 calls; set CLINICDESK_BENCH_PATIENTS / _CALLS to change).
//! The replica is generated once into target/bench-data and reused.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};

use clinicdesk::demo::{self, DemoOptions};
use clinicdesk::store::queries::{self, CallFilter, PAGE_SIZE};
use clinicdesk::store::{Replica, card, search};

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The shared bench replica, generated on first use.
pub fn bench_replica() -> PathBuf {
    let patients = size("CLINICDESK_BENCH_PATIENTS", 200_000);
    let calls = size("CLINICDESK_BENCH_CALLS", 1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("replica-{patients}-{calls}.sqlite"));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        let mut replica = Replica::open(&partial).expect("replica");
        // A fixed moment: the same data on every run.
        let opts = DemoOptions { patients, calls, seed: 42, now: 1_795_000_000_000 };
        demo::generate(&mut replica, &opts, &mut |p| eprintln!("generating bench replica: {p}")).expect("demo data");
        drop(replica);
        std::fs::rename(&partial, &path).expect("rename");
    }
    path
}

fn store(c: &mut Criterion) {
    let path = bench_replica();
    let replica = Replica::open_read_only(&path).expect("open");
    let conn = replica.conn();
    let total = queries::count_calls(conn, CallFilter::All, None).expect("count");
    let (last, digits): (String, String) = conn
        .query_row(
            "SELECT p.last_name, ph.phone_e164 FROM people p JOIN person_phones ph ON ph.person_id = p.id
             ORDER BY p.rowid LIMIT 1 OFFSET 1000",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a person");
    let person_id: String = conn
        .query_row("SELECT person_id FROM calls WHERE person_id IS NOT NULL LIMIT 1", [], |r| r.get(0))
        .expect("id");

    let mut g = c.benchmark_group("call log");
    g.bench_function("count all", |b| b.iter(|| queries::count_calls(conn, CallFilter::All, None).unwrap()));
    g.bench_function("count missed", |b| b.iter(|| queries::count_calls(conn, CallFilter::Missed, None).unwrap()));
    for (name, offset) in
        [("page at top", 0), ("page in the middle", total / 2), ("page at the end", total - PAGE_SIZE)]
    {
        g.bench_function(name, |b| {
            b.iter(|| queries::calls_page(conn, CallFilter::All, None, offset, PAGE_SIZE).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("people search");
    let part = &digits[digits.len() - 7..];
    g.bench_function("7 digits of a number", |b| b.iter(|| search::search_people(conn, part, 50).unwrap()));
    g.bench_function("surname", |b| b.iter(|| search::search_people(conn, &last, 50).unwrap()));
    let mut typo: Vec<char> = search::translit(&last).chars().collect();
    typo.swap(1, 2);
    let typo: String = typo.into_iter().collect();
    g.bench_function("surname, Latin, with a typo", |b| b.iter(|| search::search_people(conn, &typo, 50).unwrap()));
    g.finish();

    c.bench_function("person history", |b| b.iter(|| queries::person_history(conn, &person_id).unwrap()));

    caller_card(c, conn);
}

/// The caller card for numbers of the clinic (known, shared by a family,
/// unknown), by criterion, and as p50/p99 over 10,000 lookups of different
/// numbers (the figure the caller-card issue asks for).
fn caller_card(c: &mut Criterion, conn: &rusqlite::Connection) {
    let numbers: Vec<String> = conn
        .prepare("SELECT phone_e164 FROM person_phones WHERE rowid % 37 = 0 LIMIT 10000")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let shared: String = conn
        .query_row("SELECT phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) > 2 LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let now = 1_795_000_000_000;
    let did = Some("+74951234010");
    let mut g = c.benchmark_group("caller card");
    g.bench_function("known number", |b| b.iter(|| card::caller_card(conn, &numbers[0], did, now).unwrap()));
    g.bench_function("family number", |b| b.iter(|| card::caller_card(conn, &shared, did, now).unwrap()));
    g.bench_function("unknown number", |b| b.iter(|| card::caller_card(conn, "+79000000000", did, now).unwrap()));
    g.finish();

    let mut times: Vec<f64> = numbers
        .iter()
        .map(|n| {
            let start = std::time::Instant::now();
            let card =
                card::caller_card(conn, &card::caller_number(n, clinicdesk::crm::Country::Ru), did, now).unwrap();
            assert!(!card.people.is_empty());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "caller card over {} different numbers: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = store
}
criterion_main!(benches);

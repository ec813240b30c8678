//! `clinicdesk import patients FILE.csv`: people from another system.
//!
//! Clinics arrive with a patient list exported from their old software. The
//! import must not make a mess of the shared database: each bad row is
//! reported with its line number and reason and skipped, good rows are
//! imported, and running the same file again creates nobody twice (people
//! are matched by `external_id`, their id in the old system). Rows are
//! written through `Replica::write` (so they sync like any local change)
//! with the people search index, a few hundred per transaction.
//!
//! Columns (header row required, names case-insensitive, in any order;
//! separator `,` or `;`, detected from the header; UTF-8, BOM allowed):
//!
//! | column        | required | content |
//! |---------------|----------|---------|
//! | `external_id` | yes      | the person's id in the old system, unique in the file |
//! | `last_name`   | one of the two names | |
//! | `first_name`  | one of the two names | |
//! | `middle_name` | no       | patronymic |
//! | `birth_date`  | no       | `YYYY-MM-DD` or `DD.MM.YYYY`, not in the future |
//! | `sex`         | no       | `f`/`m` (also `ж`/`м`, `female`/`male`) |
//! | `phones`      | no       | one or more numbers separated by `;` or `,`, national or international form |
//! | `email`       | no       | an address with `@` |
//! | `note`        | no       | free text |
//!
//! Importing a person again (same `external_id`) updates the fields that
//! differ and adds phones not yet known; phones are never removed (the
//! clinic may have added them since).

use std::collections::HashMap;
use std::path::Path;

use rusqlite::OptionalExtension;
use rusqlite::types::Value;

use super::search::{index_person, names_key, phones_key};
use super::{Replica, StoreError, Writer, int, opt_text, text};
use crate::crm::{Country, PersonForm, Phone, new_id};
use crate::i18n::{I18n, Language};

const COLUMNS: [&str; 9] =
    ["external_id", "last_name", "first_name", "middle_name", "birth_date", "sex", "phones", "email", "note"];

/// People per write transaction (and per server transaction after sync).
const BATCH: usize = 250;

/// A row that was not imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub bad: Vec<BadRow>,
}

/// Why a whole file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {detail}")]
    Unreadable { path: String, detail: String },
    #[error(
        "{path} has no usable header row ({detail}). The first line must name the columns: {}",
        COLUMNS.join(", ")
    )]
    BadHeader { path: String, detail: String },
}

type Result<T> = std::result::Result<T, ImportError>;

/// One validated row.
#[derive(Clone, Debug, PartialEq)]
struct Person {
    line: u64,
    external_id: String,
    last_name: String,
    first_name: String,
    middle_name: String,
    birth_date: Option<String>,
    sex: Option<&'static str>,
    email: Option<String>,
    note: String,
    phones: Vec<Phone>,
}

/// Imports the people of `file` into the replica.
pub fn import_patients(replica: &mut Replica, file: &Path, country: Country) -> Result<ImportReport> {
    let (people, mut bad) = read_file(file, country)?;
    let mut report = ImportReport::default();
    for batch in people.chunks(BATCH) {
        match replica.write(|w| batch.iter().map(|p| save(w, p)).collect::<super::Result<Vec<_>>>()) {
            Ok(outcomes) => count(&mut report, outcomes),
            // One row the database refuses must not cost the others: redo
            // the batch one by one to find it.
            Err(_) => {
                for p in batch {
                    match replica.write(|w| save(w, p)) {
                        Ok(outcome) => count(&mut report, vec![outcome]),
                        Err(e) => bad.push(BadRow { line: p.line, reason: store_reason(&e) }),
                    }
                }
            }
        }
    }
    bad.sort_by_key(|b| b.line);
    report.bad = bad;
    Ok(report)
}

fn store_reason(e: &StoreError) -> String {
    match e {
        StoreError::NotFound { .. } => {
            "this external_id belongs to a person deleted in ClinicDesk; not re-imported".into()
        }
        other => format!("the replica refused it: {other}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Saved {
    Created,
    Updated,
    Unchanged,
}

fn count(report: &mut ImportReport, outcomes: Vec<Saved>) {
    for o in outcomes {
        match o {
            Saved::Created => report.created += 1,
            Saved::Updated => report.updated += 1,
            Saved::Unchanged => report.unchanged += 1,
        }
    }
}

/// Creates or updates one person with their phones and search entry.
fn save(w: &mut Writer<'_>, p: &Person) -> super::Result<Saved> {
    let columns = [
        ("last_name", text(&p.last_name)),
        ("first_name", text(&p.first_name)),
        ("middle_name", text(&p.middle_name)),
        ("birth_date", opt_text(&p.birth_date)),
        ("sex", opt_text(&p.sex.map(str::to_owned))),
        ("email", opt_text(&p.email)),
        ("note", text(&p.note)),
    ];
    let existing: Option<(String, Option<i64>)> = w
        .tx()
        .query_row("SELECT id, deleted_at FROM people WHERE external_id = ?", [&p.external_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (id, mut saved) = match existing {
        Some((_, Some(_))) => {
            return Err(StoreError::NotFound { what: format!("person {}", p.external_id) });
        }
        Some((id, None)) => {
            let before = queued(w)?;
            w.update_changed("people", &id, &columns)?;
            let saved = if queued(w)? > before { Saved::Updated } else { Saved::Unchanged };
            (id, saved)
        }
        None => {
            let id = new_id();
            let mut all = columns.to_vec();
            all.push(("external_id", text(&p.external_id)));
            all.push(("created_at", int(w.now())));
            w.insert("people", &id, &all)?;
            (id, Saved::Created)
        }
    };
    let known: Vec<(String, String, Option<i64>)> = w
        .tx()
        .prepare_cached("SELECT id, phone_e164, deleted_at FROM person_phones WHERE person_id = ?")?
        .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for phone in &p.phones {
        match known.iter().find(|(_, e164, _)| e164 == phone.as_str()) {
            Some((_, _, None)) => {}
            Some((phone_id, _, Some(_))) => {
                // The (person, phone) pair is unique: revive the tombstone
                // (Writer::update skips tombstones), queued like any change.
                w.tx().execute(
                    "UPDATE person_phones SET deleted_at = NULL, row_version = row_version + 1, updated_at = ? WHERE id = ?",
                    rusqlite::params![w.now(), phone_id],
                )?;
                w.queue_raw("person_phones", phone_id, "update", &[("deleted_at", Value::Null)])?;
                if saved == Saved::Unchanged {
                    saved = Saved::Updated;
                }
            }
            None => {
                w.insert(
                    "person_phones",
                    &new_id(),
                    &[("person_id", text(&id)), ("phone_e164", text(phone.as_str())), ("kind", text("mobile"))],
                )?;
                if saved == Saved::Unchanged {
                    saved = Saved::Updated;
                }
            }
        }
    }
    if saved != Saved::Unchanged {
        let rowid: i64 = w.tx().query_row("SELECT rowid FROM people WHERE id = ?", [&id], |r| r.get(0))?;
        let phones: Vec<Phone> = w
            .tx()
            .prepare_cached(
                "SELECT phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL ORDER BY phone_e164",
            )?
            .query_map([&id], |r| r.get::<_, String>(0))?
            .map(|p| p.map(Phone::from_e164_unchecked))
            .collect::<rusqlite::Result<_>>()?;
        index_person(w.tx(), rowid, &names_key(&p.last_name, &p.first_name, &p.middle_name), &phones_key(&phones))?;
    }
    Ok(saved)
}

fn queued(w: &Writer<'_>) -> super::Result<i64> {
    Ok(w.tx().query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?)
}

/// Reads and validates the file: the good people, and the bad rows.
fn read_file(file: &Path, country: Country) -> Result<(Vec<Person>, Vec<BadRow>)> {
    let path = file.display().to_string();
    let bytes =
        std::fs::read(file).map_err(|e| ImportError::Unreadable { path: path.clone(), detail: e.to_string() })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let header_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let semicolons = header_line.iter().filter(|b| **b == b';').count();
    let commas = header_line.iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons > commas { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(bytes);
    let bad_header = |detail: String| ImportError::BadHeader { path: path.clone(), detail };
    let header = reader.byte_headers().map_err(|e| bad_header(e.to_string()))?.clone();
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(name).trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        let Some(known) = COLUMNS.iter().find(|c| **c == name) else {
            return Err(bad_header(format!("unknown column {name:?}")));
        };
        if index.insert(known, i).is_some() {
            return Err(bad_header(format!("column {name:?} appears twice")));
        }
    }
    if !index.contains_key("external_id") {
        return Err(bad_header("no external_id column".into()));
    }
    if !index.contains_key("last_name") && !index.contains_key("first_name") {
        return Err(bad_header("neither last_name nor first_name".into()));
    }
    let i18n = I18n::new(Language::En);
    let mut people = Vec::new();
    let mut bad = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                bad.push(BadRow { line, reason: format!("unreadable CSV: {e}") });
                // A broken record may not resync; stop where it is.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        match validate(&record, &index, country, &i18n) {
            Ok(mut person) => {
                person.line = line;
                if let Some(first) = seen.get(&person.external_id) {
                    bad.push(BadRow {
                        line,
                        reason: format!("external_id {:?} was already on line {first}", person.external_id),
                    });
                } else {
                    seen.insert(person.external_id.clone(), line);
                    people.push(person);
                }
            }
            Err(reason) => bad.push(BadRow { line, reason }),
        }
    }
    Ok((people, bad))
}

fn validate(
    record: &csv::ByteRecord,
    index: &HashMap<&'static str, usize>,
    country: Country,
    i18n: &I18n,
) -> std::result::Result<Person, String> {
    let field = |name: &str| -> std::result::Result<String, String> {
        match index.get(name).and_then(|i| record.get(*i)) {
            None => Ok(String::new()),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| s.trim().to_owned())
                .map_err(|_| format!("{name} is not UTF-8 text (save the file as UTF-8)")),
        }
    };
    let external_id = field("external_id")?;
    if external_id.is_empty() {
        return Err("external_id is empty".into());
    }
    if external_id.chars().count() > 100 {
        return Err("external_id is longer than 100 characters".into());
    }
    let phones_text = field("phones")?;
    let form = PersonForm {
        id: None,
        last_name: field("last_name")?,
        first_name: field("first_name")?,
        middle_name: field("middle_name")?,
        birth_date: field("birth_date")?,
        phones: phones_text.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
        note: field("note")?,
    };
    let sex = match field("sex")?.to_lowercase().as_str() {
        "" => None,
        "f" | "ж" | "female" | "жен" | "ж." => Some("f"),
        "m" | "м" | "male" | "муж" | "м." => Some("m"),
        other => return Err(format!("sex {other:?} is not f or m")),
    };
    let email = match field("email")? {
        e if e.is_empty() => None,
        e if e.contains('@') && !e.contains(char::is_whitespace) && !e.starts_with('@') && !e.ends_with('@') => Some(e),
        e => return Err(format!("email {e:?} is not an e-mail address")),
    };
    let record = form.validate(country).map_err(|errors| {
        errors.iter().map(|e| format!("{}: {}", e.field, i18n.tr_args(e.key, &e.args))).collect::<Vec<_>>().join("; ")
    })?;
    Ok(Person {
        line: 0,
        external_id,
        last_name: record.last_name,
        first_name: record.first_name,
        middle_name: record.middle_name,
        birth_date: record.birth_date.map(|d| d.to_string()),
        sex,
        email,
        note: record.note,
        phones: record.phones,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn import(csv: &str) -> (tempfile::TempDir, Replica, Result<ImportReport>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.csv");
        std::fs::write(&file, csv).unwrap();
        let mut replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let report = import_patients(&mut replica, &file, Country::Ru);
        (dir, replica, report)
    }

    #[test]
    fn bad_rows_are_reported_with_their_lines_and_good_ones_imported() {
        let csv = "\u{feff}external_id;last_name;first_name;birth_date;sex;phones;email\n\
                   A1;Иванова;Мария;1980-02-03;ж;8 916 123-45-67, +79031112233;m@example.com\n\
                   A2;;;;;;\n\
                   A3;Петров;Пётр;31.02.1990;m;;\n\
                   A4;Сидоров;Иван;;x;;\n\
                   A1;Дубль;Дубль;;;;\n\
                   A5;Коваль;Оксана;;;12;\n\
                   A6;Шевченко;Тарас;2999-01-01;;;\n\
                   A7;Lee;Ann;;f;;not-an-address\n\
                   A8;\"Multi\nLine\";Ok;;;;\n";
        let (_dir, replica, report) = import(csv);
        let report = report.unwrap();
        assert_eq!(report.created, 2, "{report:?}");
        let lines: Vec<u64> = report.bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9], "{report:?}");
        assert!(report.bad[0].reason.contains("name"), "{report:?}");
        assert!(report.bad[1].reason.contains("31.02.1990"), "{report:?}");
        assert!(report.bad[3].reason.contains("line 2"), "{report:?}");
        let hits = crate::store::search::search_people(replica.conn(), "9031112233", 5).unwrap();
        assert_eq!(hits.len(), 1);
        let sex: String =
            replica.conn().query_row("SELECT sex FROM people WHERE external_id = 'A1'", [], |r| r.get(0)).unwrap();
        assert_eq!(sex, "f");
    }

    #[test]
    fn a_second_import_changes_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.csv");
        let mut replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        std::fs::write(&file, "external_id,last_name,first_name,phones\nB1,Smith,Ann,+79161234567\nB2,Doe,Jo,\n")
            .unwrap();
        let first = import_patients(&mut replica, &file, Country::Ru).unwrap();
        assert_eq!((first.created, first.updated, first.unchanged), (2, 0, 0));
        let outbox =
            |r: &Replica| -> i64 { r.conn().query_row("SELECT count(*) FROM outbox", [], |x| x.get(0)).unwrap() };
        let queued = outbox(&replica);
        let again = import_patients(&mut replica, &file, Country::Ru).unwrap();
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 2));
        assert_eq!(outbox(&replica), queued, "nothing queued for unchanged people");
        std::fs::write(&file, "external_id,last_name,first_name,phones\nB1,Smith,Anna,+79161234567;+79990000001\n")
            .unwrap();
        let third = import_patients(&mut replica, &file, Country::Ru).unwrap();
        assert_eq!((third.created, third.updated, third.unchanged), (0, 1, 0));
        let people: i64 = replica.conn().query_row("SELECT count(*) FROM people", [], |r| r.get(0)).unwrap();
        let phones: i64 = replica.conn().query_row("SELECT count(*) FROM person_phones", [], |r| r.get(0)).unwrap();
        assert_eq!((people, phones), (2, 2));
    }

    #[test]
    fn a_file_without_the_key_column_is_refused_whole() {
        let (_dir, _r, report) = import("last_name,first_name\nA,B\n");
        assert!(report.unwrap_err().to_string().contains("external_id"));
        let (_dir, _r, report) = import("external_id,surname\n1,A\n");
        assert!(report.unwrap_err().to_string().contains("surname"));
    }
}

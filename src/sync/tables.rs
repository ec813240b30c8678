//! Which tables sync, and their columns as the replica declares them.
//!
//! The column lists are read from the replica itself (`PRAGMA table_info`),
//! so a column added to schema.sql syncs without touching this module; the
//! server's copy of each table is checked against them on connect.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::{Result, SyncError};

/// The synced tables, in an order where every foreign key points backwards
/// (the server's `sync_tables` holds the same list).
pub const SYNCED_TABLES: [&str; 23] = [
    "org_units",
    "roles",
    "role_rights",
    "users",
    "user_rights",
    "operator_statuses",
    "ad_channels",
    "campaigns",
    "tracking_numbers",
    "people",
    "person_phones",
    "inquiry_reasons",
    "deal_types",
    "deal_stages",
    "auto_transition_rules",
    "task_types",
    "task_templates",
    "calls",
    "inquiries",
    "deals",
    "tasks",
    "visits",
    "global_settings",
];

/// Contended fields: (table, column). An update of one carries the value
/// its writer started from (`sync_base`); the server turns it into a
/// conflict when another workstation changed it first. Must match the
/// server's `sync_contended` and the replica's `sync_base_*` triggers.
pub const CONTENDED: [(&str, &str); 3] = [("deals", "stage_id"), ("visits", "starts_at"), ("visits", "doctor_id")];

/// Tables whose rows not every user may see (the server's policies, see
/// server_v2.sql).
pub const PRIVATE_TABLES: [&str; 4] = ["calls", "inquiries", "deals", "tasks"];

/// References to rows of [`PRIVATE_TABLES`]: (table, column, referenced
/// table). A user who may see a row but not the row it refers to gets the
/// reference as null (the server's `clinicdesk_row_json` does the same for
/// the change feed), so their replica keeps its foreign keys.
pub const PRIVATE_REFERENCES: [(&str, &str, &str); 5] = [
    ("inquiries", "call_id", "calls"),
    ("deals", "inquiry_id", "inquiries"),
    ("tasks", "inquiry_id", "inquiries"),
    ("tasks", "deal_id", "deals"),
    ("visits", "deal_id", "deals"),
];

/// Whether `table`.`column` is contended.
pub fn is_contended(table: &str, column: &str) -> bool {
    CONTENDED.iter().any(|(t, c)| *t == table && *c == column)
}

/// The two storage types synced columns have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    /// SQLite INTEGER, PostgreSQL BIGINT.
    Integer,
    /// TEXT on both sides.
    Text,
}

impl ColType {
    pub fn postgres(self) -> tokio_postgres::types::Type {
        match self {
            ColType::Integer => tokio_postgres::types::Type::INT8,
            ColType::Text => tokio_postgres::types::Type::TEXT,
        }
    }

    pub fn postgres_name(self) -> &'static str {
        match self {
            ColType::Integer => "bigint",
            ColType::Text => "text",
        }
    }
}

/// One synced table: its name and columns in the replica's order.
#[derive(Clone, Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: Vec<(String, ColType)>,
    /// Index of `id` in `columns`.
    pub id_index: usize,
}

impl TableSpec {
    /// The column list, quoted, for SQL on either side.
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|(c, _)| quote_ident(c)).collect::<Vec<_>>().join(", ")
    }

    /// The column list for reading the server's rows as a user bound by its
    /// policies: references to rows that user may not see read as null
    /// ([`PRIVATE_REFERENCES`]; nothing changes for the schema's owner).
    pub fn visible_column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| match PRIVATE_REFERENCES.iter().find(|(t, col, _)| *t == self.name && col == c) {
                Some((_, _, parent)) => format!(
                    "CASE WHEN t.{c} IS NULL THEN NULL WHEN NOT (SELECT row_security_active({p})) THEN t.{c} \
                     WHEN EXISTS (SELECT 1 FROM {pi} p WHERE p.id = t.{c}) THEN t.{c} END AS {c}",
                    c = quote_ident(c),
                    p = quote_literal(parent),
                    pi = quote_ident(parent),
                ),
                None => format!("t.{}", quote_ident(c)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn index_of(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|(c, _)| c == column)
    }
}

/// `"name"`, for identifiers that come from our own schema.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, for the few literals that cannot be parameters (inside COPY).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Reads the synced tables' columns from the replica.
pub fn specs(conn: &Connection) -> Result<Vec<TableSpec>> {
    let mut out = Vec::with_capacity(SYNCED_TABLES.len());
    for name in SYNCED_TABLES {
        let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote_ident(name)))?;
        let columns: Vec<(String, String)> =
            stmt.query_map([], |r| Ok((r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        if columns.is_empty() {
            return Err(SyncError::SchemaMismatch(format!("the replica has no table {name}")));
        }
        let mut typed = Vec::with_capacity(columns.len());
        for (column, decl) in columns {
            let ty = match decl.to_ascii_uppercase().as_str() {
                "INTEGER" => ColType::Integer,
                "TEXT" => ColType::Text,
                other => {
                    return Err(SyncError::SchemaMismatch(format!(
                        "{name}.{column} is declared {other}; synced columns must be INTEGER or TEXT"
                    )));
                }
            };
            typed.push((column, ty));
        }
        let id_index = typed
            .iter()
            .position(|(c, _)| c == "id")
            .ok_or_else(|| SyncError::SchemaMismatch(format!("the replica's {name} has no id column")))?;
        for required in ["row_version", "updated_at", "deleted_at"] {
            if !typed.iter().any(|(c, _)| c == required) {
                return Err(SyncError::SchemaMismatch(format!("the replica's {name} has no {required} column")));
            }
        }
        out.push(TableSpec { name, columns: typed, id_index });
    }
    Ok(out)
}

/// The spec of `table`, if it is synced.
pub fn find<'a>(specs: &'a [TableSpec], table: &str) -> Option<&'a TableSpec> {
    specs.iter().find(|s| s.name == table)
}

/// A replica value as JSON (what the server's functions take).
pub fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        Value::Text(s) => s.clone().into(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
    }
}

/// A JSON value from the server as the replica stores it in a column of
/// type `ty`.
pub fn json_to_value(v: &serde_json::Value, ty: ColType, what: &str) -> Result<Value> {
    match (v, ty) {
        (serde_json::Value::Null, _) => Ok(Value::Null),
        (serde_json::Value::Number(n), ColType::Integer) => n
            .as_i64()
            .map(Value::Integer)
            .ok_or_else(|| SyncError::Protocol(format!("{what}: {n} is not a whole number"))),
        (serde_json::Value::String(s), ColType::Text) => Ok(Value::Text(s.clone())),
        (other, _) => Err(SyncError::Protocol(format!("{what}: unexpected value {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_synced_table_has_the_sync_columns_and_plain_types() {
        let dir = tempfile::tempdir().unwrap();
        let replica = crate::store::Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let specs = specs(replica.conn()).unwrap();
        assert_eq!(specs.len(), SYNCED_TABLES.len());
        for (table, column) in CONTENDED {
            assert!(find(&specs, table).unwrap().index_of(column).is_some(), "{table}.{column}");
        }
        // Every table of the replica with a row_version is synced.
        let mut stmt = replica
            .conn()
            .prepare("SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND c.name = 'row_version'")
            .unwrap();
        let versioned: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
        for t in versioned {
            assert!(SYNCED_TABLES.contains(&t.as_str()), "{t} has row_version but is not synced");
        }
    }

    #[test]
    fn every_reference_to_a_private_table_is_masked() {
        let dir = tempfile::tempdir().unwrap();
        let replica = crate::store::Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let mut found = Vec::new();
        for table in SYNCED_TABLES {
            let mut stmt = replica.conn().prepare(&format!("PRAGMA foreign_key_list({})", quote_ident(table))).unwrap();
            let refs: Vec<(String, String)> =
                stmt.query_map([], |r| Ok((r.get(2)?, r.get(3)?))).unwrap().map(|r| r.unwrap()).collect();
            for (parent, column) in refs {
                if PRIVATE_TABLES.contains(&parent.as_str()) {
                    found.push((table.to_owned(), column, parent));
                }
            }
        }
        found.sort();
        let mut expected: Vec<_> =
            PRIVATE_REFERENCES.iter().map(|(t, c, p)| (t.to_string(), c.to_string(), p.to_string())).collect();
        expected.sort();
        assert_eq!(found, expected);
        let specs = specs(replica.conn()).unwrap();
        let visits = find(&specs, "visits").unwrap().visible_column_list();
        assert!(visits.contains("WHEN EXISTS (SELECT 1 FROM \"deals\" p WHERE p.id = t.\"deal_id\")"), "{visits}");
    }

    #[test]
    fn json_values_round_trip_and_bad_ones_are_refused() {
        for v in [Value::Null, Value::Integer(-5), Value::Integer(1_795_000_000_000), Value::Text("Ёлка".into())] {
            let ty = if matches!(v, Value::Text(_)) { ColType::Text } else { ColType::Integer };
            assert_eq!(json_to_value(&value_to_json(&v), ty, "x").unwrap(), v);
        }
        assert!(json_to_value(&serde_json::json!(1.5), ColType::Integer, "x").is_err());
        assert!(json_to_value(&serde_json::json!("1"), ColType::Integer, "x").is_err());
        assert!(json_to_value(&serde_json::json!([1]), ColType::Text, "x").is_err());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}

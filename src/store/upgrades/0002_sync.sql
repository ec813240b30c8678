-- Sync bookkeeping (src/sync/) -----------------------------------------------

-- The value a contended field (a deal's stage, a visit's slot) had before
-- this workstation changed it: uploaded with the change, so the server can
-- tell whether another workstation changed it meanwhile (then the change is
-- a conflict, never a silent overwrite). Recorded by the triggers below on
-- the first local change; forgotten once the change is uploaded. `value` is
-- BLOB (no affinity) so it keeps the column's own type.
CREATE TABLE sync_base (
    table_name  TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    column_name TEXT NOT NULL,
    value       BLOB,
    PRIMARY KEY (table_name, row_id, column_name)
) WITHOUT ROWID;

CREATE TRIGGER sync_base_deal_stage AFTER UPDATE OF stage_id ON deals
WHEN OLD.stage_id IS NOT NEW.stage_id
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('deals', OLD.id, 'stage_id', OLD.stage_id);
END;

CREATE TRIGGER sync_base_visit_start AFTER UPDATE OF starts_at ON visits
WHEN OLD.starts_at IS NOT NEW.starts_at
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('visits', OLD.id, 'starts_at', OLD.starts_at);
END;

CREATE TRIGGER sync_base_visit_doctor AFTER UPDATE OF doctor_id ON visits
WHEN OLD.doctor_id IS NOT NEW.doctor_id
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('visits', OLD.id, 'doctor_id', OLD.doctor_id);
END;

-- A change of this workstation that the server did not apply because another
-- workstation got there first: it changed the same contended field ('field':
-- column_name, both values), or deleted the row ('deleted': local_value holds
-- the edited fields). Listed in the window until the operator resolves it.
CREATE TABLE sync_conflicts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id        TEXT NOT NULL,
    table_name   TEXT NOT NULL,
    row_id       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('field', 'deleted')),
    column_name  TEXT NOT NULL DEFAULT '',
    local_value  TEXT NOT NULL,             -- JSON: what this workstation wrote
    server_value TEXT NOT NULL,             -- JSON: what the server kept
    detected_at  INTEGER NOT NULL,
    resolved_at  INTEGER,
    UNIQUE (tx_id, table_name, row_id, column_name)
);

-- A local transaction the server refused as a whole (e.g. it broke a
-- constraint). Its rows were put back to the server's state; what was
-- attempted is kept here for the operator.
CREATE TABLE sync_rejections (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id        TEXT NOT NULL UNIQUE,
    changes      TEXT NOT NULL,             -- JSON array of the transaction's changes
    error        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    code         TEXT NOT NULL DEFAULT '',  -- SQLSTATE
    rejected_at  INTEGER NOT NULL,
    dismissed_at INTEGER
);

-- Downloaded rows that could not be applied yet (a local row still holds a
-- unique value the server has since given to another row); fetched again on
-- every round until they apply.
CREATE TABLE sync_refetch (
    table_name TEXT NOT NULL,
    row_id     TEXT NOT NULL,
    PRIMARY KEY (table_name, row_id)
) WITHOUT ROWID;

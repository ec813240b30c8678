-- A task's history (local, never synced) -------------------------------------

-- Every change of a task's tracked fields (created, status, deadline,
-- responsible, title), for the History of the task editor. Filled by the
-- triggers below, so changes that arrive by sync are recorded as well as
-- this workstation's own. Local to this workstation: no row_version, never
-- in the outbox. `author_id` is the user the writer acted for
-- (`write_author`), or on creation the task's `created_by`; NULL when the
-- change came from another workstation by sync (the clinic head's audit
-- trail on the server says who). Values are BLOB (no affinity) so they keep
-- the column's own type.
CREATE TABLE task_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    author_id  TEXT,
    field      TEXT NOT NULL CHECK (field IN ('created', 'status', 'deadline_at', 'responsible_id', 'title')),
    old_value  BLOB,
    new_value  BLOB
);

CREATE INDEX task_history_of_task ON task_history (task_id, changed_at);

-- The user a local write transaction acts for: set by the writer inside the
-- transaction and removed before it commits, so only the triggers of that
-- transaction see it (downloads from sync never set it).
CREATE TABLE write_author (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    user_id TEXT
);

CREATE TRIGGER task_history_created AFTER INSERT ON tasks
WHEN NOT EXISTS (SELECT 1 FROM task_history WHERE task_id = NEW.id AND field = 'created')
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.created_at, coalesce((SELECT user_id FROM write_author WHERE id = 1), NEW.created_by),
            'created', NULL, NEW.title);
END;

CREATE TRIGGER task_history_status AFTER UPDATE OF status ON tasks
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'status', OLD.status, NEW.status);
END;

CREATE TRIGGER task_history_deadline AFTER UPDATE OF deadline_at ON tasks
WHEN OLD.deadline_at IS NOT NEW.deadline_at
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'deadline_at',
            OLD.deadline_at, NEW.deadline_at);
END;

CREATE TRIGGER task_history_responsible AFTER UPDATE OF responsible_id ON tasks
WHEN OLD.responsible_id IS NOT NEW.responsible_id
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'responsible_id',
            OLD.responsible_id, NEW.responsible_id);
END;

CREATE TRIGGER task_history_title AFTER UPDATE OF title ON tasks
WHEN OLD.title IS NOT NEW.title
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'title', OLD.title, NEW.title);
END;

-- A task removed from the replica (a refused insert undone) takes its
-- history with it.
CREATE TRIGGER task_history_forget AFTER DELETE ON tasks
BEGIN
    DELETE FROM task_history WHERE task_id = OLD.id;
END;

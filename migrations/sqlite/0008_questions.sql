-- ask() questions (docs/DESIGN.md §1, §3): asked by the run's owner, answered by anyone
-- who can write the journal (booflow answer, the API, the pane, the owner's own terminal).
-- A resumed run finds the answer of a question by its key, so it asks only open ones again.
CREATE TABLE IF NOT EXISTS questions (
    run_id        TEXT NOT NULL,
    question_id   TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    question_key  TEXT NOT NULL,
    label         TEXT,
    question      TEXT NOT NULL,
    choices       TEXT,
    json_schema   TEXT,
    default_value TEXT,
    timeout_ms    INTEGER,
    status        TEXT NOT NULL,
    answer        TEXT,
    answered_by   TEXT,
    asked_at      TEXT NOT NULL,
    answered_at   TEXT,
    error         TEXT,
    PRIMARY KEY (run_id, question_id)
);
CREATE INDEX IF NOT EXISTS questions_by_key ON questions (run_id, question_key);

-- booflow pause / resume: a paused run starts no new agent call and holds its timers; the
-- flag outlives its owner, so an adopted run stays paused.
ALTER TABLE runs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;

-- The run journal and the content cache (DESIGN.md §3, §7).
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.

CREATE TABLE IF NOT EXISTS runs (
    run_id            TEXT PRIMARY KEY,
    workflow          TEXT NOT NULL,
    source            TEXT NOT NULL,
    path              TEXT NOT NULL,
    args              TEXT,
    status            TEXT NOT NULL,
    result            TEXT,
    error             TEXT,
    resumed_from      TEXT,
    no_cache          INTEGER NOT NULL DEFAULT 0,
    budget_total      BIGINT,
    sandbox           TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    pid               BIGINT
);

CREATE TABLE IF NOT EXISTS calls (
    run_id            TEXT NOT NULL,
    call_id           TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    content_key       TEXT NOT NULL,
    label             TEXT,
    phase             TEXT,
    line              INTEGER,
    status            TEXT NOT NULL,
    cached            INTEGER NOT NULL DEFAULT 0,
    agent             TEXT NOT NULL,
    model             TEXT,
    prompt            TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    duration_ms       BIGINT,
    first_update_ms   BIGINT,
    input_tokens      BIGINT NOT NULL DEFAULT 0,
    output_tokens     BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    retries           INTEGER NOT NULL DEFAULT 0,
    stop_reason       TEXT,
    tool_calls        INTEGER NOT NULL DEFAULT 0,
    result            TEXT,
    error             TEXT,
    worktree_branch   TEXT,
    worktree_stat     TEXT,
    worktree_diff     TEXT,
    PRIMARY KEY (run_id, call_id)
);
CREATE INDEX IF NOT EXISTS calls_by_key ON calls (run_id, content_key);

CREATE TABLE IF NOT EXISTS logs (
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    at       TEXT NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE IF NOT EXISTS cache (
    content_key       TEXT PRIMARY KEY,
    result            TEXT NOT NULL,
    agent             TEXT NOT NULL,
    model             TEXT,
    input_tokens      BIGINT NOT NULL DEFAULT 0,
    output_tokens     BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS artifacts (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    content  TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

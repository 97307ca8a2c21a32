-- The run journal and the content cache on PostgreSQL (docs/DESIGN.md §3, §7): the same
-- tables as the SQLite journal (migrations/sqlite, 0001–0006), with integers as BIGINT so
-- that one set of queries serves both.

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
    no_cache          BIGINT NOT NULL DEFAULT 0,
    budget_total      BIGINT,
    sandbox           TEXT NOT NULL,
    started_at        TEXT NOT NULL,
    finished_at       TEXT,
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    pid               BIGINT,
    phases            TEXT,
    annotation_rules  TEXT,
    owner             TEXT,
    owner_host        TEXT,
    epoch             BIGINT NOT NULL DEFAULT 0,
    lease_until       BIGINT NOT NULL DEFAULT 0,
    resume_count      BIGINT NOT NULL DEFAULT 0,
    detached          BIGINT NOT NULL DEFAULT 0,
    request           TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, detached, lease_until);

CREATE TABLE IF NOT EXISTS calls (
    run_id            TEXT NOT NULL,
    call_id           TEXT NOT NULL,
    seq               BIGINT NOT NULL,
    content_key       TEXT NOT NULL,
    label             TEXT,
    phase             TEXT,
    line              BIGINT,
    status            TEXT NOT NULL,
    cached            BIGINT NOT NULL DEFAULT 0,
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
    retries           BIGINT NOT NULL DEFAULT 0,
    stop_reason       TEXT,
    tool_calls        BIGINT NOT NULL DEFAULT 0,
    result            TEXT,
    error             TEXT,
    worktree_branch   TEXT,
    worktree_stat     TEXT,
    worktree_diff     TEXT,
    served_by         TEXT,
    PRIMARY KEY (run_id, call_id)
);
CREATE INDEX IF NOT EXISTS calls_by_key ON calls (run_id, content_key);

CREATE TABLE IF NOT EXISTS logs (
    run_id   TEXT NOT NULL,
    seq      BIGINT NOT NULL,
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

CREATE TABLE IF NOT EXISTS annotations (
    run_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

CREATE TABLE IF NOT EXISTS owners (
    owner_id      TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    runs_held     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS commands (
    id          BIGSERIAL PRIMARY KEY,
    run_id      TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_run ON commands (run_id, id);

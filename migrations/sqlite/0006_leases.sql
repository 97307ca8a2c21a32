-- Runs owned by a lease, writes fenced by an epoch (docs/DESIGN.md §7): the owner (a
-- server, worker or CLI process) renews `lease_until` (unix ms) by heartbeat; taking a run
-- bumps `epoch`, and every journal write of the run checks it. `detached` runs (queued for
-- servers) may be adopted by any server once their lease expired; a foreground
-- `booflow run` keeps its run (it shows `interrupted` when that process dies). `request`
-- is what a new owner needs to start the run again: the script and the run's options.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN owner_host TEXT;
ALTER TABLE runs ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN resume_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN detached BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN request TEXT;
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, detached, lease_until);

-- The processes that own runs: servers, workers and foreground CLI runs, each with its
-- heartbeat, for `/api/health` and to tell a dead owner from a slow one.
CREATE TABLE IF NOT EXISTS owners (
    owner_id      TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    runs_held     BIGINT NOT NULL DEFAULT 0
);

-- Skip/retry of one call, sent to whichever process owns the run.
CREATE TABLE IF NOT EXISTS commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id      TEXT NOT NULL,
    call_id     TEXT NOT NULL,
    command     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_run ON commands (run_id, id);

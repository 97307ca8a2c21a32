-- Run annotations: key → value set by a person after the run (e.g. an Arena winner override).
CREATE TABLE IF NOT EXISTS annotations (
    run_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);

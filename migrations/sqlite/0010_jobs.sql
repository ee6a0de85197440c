-- Durable background jobs and the files they read or write (SQLite).
-- A job is claimed by setting its lease; a worker that dies leaves the lease to expire, and the
-- job to the next worker. Timestamps are integer microseconds since the Unix epoch (UTC).

CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL CONSTRAINT jobs_status_check
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    payload          TEXT    NOT NULL,
    -- What the kind's handler committed with its last batch, so a resumed run goes on from there.
    checkpoint       TEXT,
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 5,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    run_at           INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    result           TEXT,
    error            TEXT,
    created_by       INTEGER CONSTRAINT jobs_created_by_fk REFERENCES users (id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);

-- The claim looks for queued jobs due to run and running ones whose lease has expired.
CREATE INDEX jobs_claim_idx ON jobs (status, run_at);
CREATE INDEX jobs_listing_idx ON jobs (kind, status, id);

-- A file in the database, so every instance can read it: an import's upload, an export's output.
CREATE TABLE job_files (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER CONSTRAINT job_files_job_fk REFERENCES jobs (id) ON DELETE CASCADE,
    content_type TEXT    NOT NULL,
    bytes        INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
CREATE INDEX job_files_job_idx ON job_files (job_id);

CREATE TABLE job_file_chunks (
    file_id INTEGER NOT NULL CONSTRAINT job_file_chunks_file_fk REFERENCES job_files (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    data    BLOB    NOT NULL,
    CONSTRAINT job_file_chunks_pkey PRIMARY KEY (file_id, seq)
);

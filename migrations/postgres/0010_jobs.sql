-- Durable background jobs and the files they read or write (PostgreSQL).
-- A job is claimed by setting its lease (FOR UPDATE SKIP LOCKED, so workers never take the same
-- one); a worker that dies leaves the lease to expire, and the job to the next worker.

CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             TEXT    NOT NULL,
    status           TEXT    NOT NULL CONSTRAINT jobs_status_check
                     CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    payload          TEXT    NOT NULL,
    -- What the kind's handler committed with its last batch, so a resumed run goes on from there.
    checkpoint       TEXT,
    progress_done    BIGINT  NOT NULL DEFAULT 0,
    progress_total   BIGINT,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    max_attempts     BIGINT  NOT NULL DEFAULT 5,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    run_at           TIMESTAMPTZ NOT NULL,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    result           TEXT,
    error            TEXT,
    created_by       BIGINT CONSTRAINT jobs_created_by_fk REFERENCES users (id) ON DELETE SET NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);

CREATE INDEX jobs_claim_idx ON jobs (status, run_at);
CREATE INDEX jobs_listing_idx ON jobs (kind, status, id);

-- A file in the database, so every instance can read it: an import's upload, an export's output.
CREATE TABLE job_files (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       BIGINT CONSTRAINT job_files_job_fk REFERENCES jobs (id) ON DELETE CASCADE,
    content_type TEXT   NOT NULL,
    bytes        BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX job_files_job_idx ON job_files (job_id);

CREATE TABLE job_file_chunks (
    file_id BIGINT NOT NULL CONSTRAINT job_file_chunks_file_fk REFERENCES job_files (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    data    BYTEA  NOT NULL,
    CONSTRAINT job_file_chunks_pkey PRIMARY KEY (file_id, seq)
);

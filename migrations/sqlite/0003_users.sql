-- Users and their refresh tokens (SQLite).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CONSTRAINT users_role_check CHECK (role IN ('admin', 'staff', 'customer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CONSTRAINT users_disabled_check CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Emails are ASCII, so lower() is exact on both engines.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Refresh tokens are stored only as SHA-256 hashes. A family is one login's chain of rotations:
-- presenting a token that was already used revokes the whole family.
CREATE TABLE refresh_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL CONSTRAINT refresh_tokens_user_fk REFERENCES users (id) ON DELETE CASCADE,
    family     TEXT    NOT NULL,
    token_hash TEXT    NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

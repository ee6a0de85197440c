-- Users and their refresh tokens (PostgreSQL).

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CONSTRAINT users_role_check CHECK (role IN ('admin', 'staff', 'customer')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Emails are ASCII, so lower() is exact on both engines.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Refresh tokens are stored only as SHA-256 hashes. A family is one login's chain of rotations:
-- presenting a token that was already used revokes the whole family.
CREATE TABLE refresh_tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT NOT NULL CONSTRAINT refresh_tokens_user_fk REFERENCES users (id) ON DELETE CASCADE,
    family     TEXT   NOT NULL,
    token_hash TEXT   NOT NULL CONSTRAINT refresh_tokens_hash_key UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

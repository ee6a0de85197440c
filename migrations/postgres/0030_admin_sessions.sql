-- The staff console's sign-ins (/admin). A session is stored only as the SHA-256 hash of its
-- random id, carries its own CSRF token, expires, and is revoked on sign-out or when its user is
-- disabled; the user's role is read on every request, so a session never outlives a demotion.
CREATE TABLE admin_sessions (
    id_hash    TEXT    NOT NULL CONSTRAINT admin_sessions_pkey PRIMARY KEY,
    user_id    BIGINT  NOT NULL CONSTRAINT admin_sessions_user_fk REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX admin_sessions_user_idx ON admin_sessions (user_id);
CREATE INDEX admin_sessions_expires_idx ON admin_sessions (expires_at);

-- What each console user chose to see: the product list's columns, comma-separated.
CREATE TABLE admin_prefs (
    user_id    BIGINT  NOT NULL CONSTRAINT admin_prefs_pkey PRIMARY KEY
                       CONSTRAINT admin_prefs_user_fk REFERENCES users (id) ON DELETE CASCADE,
    columns    TEXT    NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

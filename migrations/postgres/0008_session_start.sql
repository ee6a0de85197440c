-- A login's family of refresh tokens lives at most TIENDA_SESSION_MAX_DAYS from the login,
-- however often it is refreshed: every token carries the start of its family. Tokens issued
-- before this migration get the oldest creation time still stored for their family.
ALTER TABLE refresh_tokens ADD COLUMN family_started_at TIMESTAMPTZ;

UPDATE refresh_tokens
SET family_started_at = (SELECT min(f.created_at) FROM refresh_tokens f WHERE f.family = refresh_tokens.family);

-- Tokens of the vendor API (`/api/v1/vendor/`), created and revoked by the
-- vendor's operators. The token itself is shown once and stored only as its
-- SHA-256. `read` tokens read; `write` tokens also change things. The audit
-- log names the token (`api:<name>`), so live names are unique.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;

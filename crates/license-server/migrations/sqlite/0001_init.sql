-- Times are Unix seconds (UTC). Secrets (device codes, refresh tokens, session
-- ids) are stored only as SHA-256 hashes.

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    secret_key   BLOB NOT NULL,             -- Ed25519 seed, 32 bytes
    created_at   INTEGER NOT NULL,
    retired_at   INTEGER,                   -- stopped signing at
    -- Latest `exp` of anything this key signed; the public key stays in the
    -- JWKS until then.
    last_exp     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE organizations (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    features        TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    hub_server_name TEXT NOT NULL DEFAULT '',
    hub_server_url  TEXT NOT NULL DEFAULT '',
    renewal_date    INTEGER,
    valid_from      INTEGER NOT NULL,
    valid_until     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE memberships (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id  INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, org_id)
);

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    server_id    TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    authorized_at INTEGER,
    last_seen    INTEGER,
    token_expiry INTEGER,
    revoked_at   INTEGER,
    UNIQUE (org_id, name)
);

CREATE TABLE packages (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    valid_from    INTEGER NOT NULL,
    valid_until   INTEGER NOT NULL,
    last_verified INTEGER
);

CREATE TABLE package_licenses (
    package_id INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    total      INTEGER NOT NULL CHECK (total >= 0),
    PRIMARY KEY (package_id, kind)
);

CREATE TABLE assignments (
    id              INTEGER PRIMARY KEY,
    package_id      INTEGER NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    assignment_kind TEXT NOT NULL CHECK (assignment_kind IN ('agent', 'object'))
);

CREATE TABLE device_codes (
    id            INTEGER PRIMARY KEY,
    code_hash     BLOB NOT NULL UNIQUE,
    user_code     TEXT NOT NULL,           -- normalized: 8 upper-case letters
    client_id     TEXT NOT NULL,
    scope         TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    interval_secs INTEGER NOT NULL,
    last_poll_at  INTEGER,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    device_id     INTEGER REFERENCES devices(id) ON DELETE CASCADE,
    decided_by    INTEGER REFERENCES users(id) ON DELETE SET NULL
);
CREATE INDEX device_codes_user_code ON device_codes(user_code);

-- One chain per successful device authorization; every refresh token of the
-- chain rotates into the next. Revoking the chain kills all of them.
CREATE TABLE token_chains (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX token_chains_device ON token_chains(device_id);

CREATE TABLE refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    chain_id   INTEGER NOT NULL REFERENCES token_chains(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Set when exchanged; the successor pair is re-derivable for a short
    -- retry window (see README: "Lost responses").
    used_at    INTEGER,
    successor_claims TEXT,                 -- JSON claims of the access token issued in exchange
    successor_kid    TEXT
);
CREATE INDEX refresh_tokens_chain ON refresh_tokens(chain_id);

-- License tokens are not stored: their `jti` is "<chain id>.<random>", so a
-- revoked chain refuses them.

CREATE TABLE sessions (
    id_hash    BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id     INTEGER REFERENCES organizations(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    org_id INTEGER REFERENCES organizations(id) ON DELETE SET NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log(org_id, at);

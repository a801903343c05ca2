-- Two kinds of admins (roles.rs): the vendor's operators, who grant
-- licenses, and organization admins, the customer's staff, who authorize
-- their devices and read their license account. A user an older `init`
-- created is the vendor's first operator, hence the default.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'vendor'
    CHECK (role IN ('vendor', 'org_admin'));
-- A disabled user cannot sign in; their sessions end.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- An invitation is a single-use link (its token stored only as a SHA-256
-- hash) that expires. Accepting it sets the password of a new user, or adds
-- the organization to an existing one.
CREATE TABLE invitations (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    email      TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('vendor', 'org_admin')),
    org_id     INTEGER REFERENCES organizations(id) ON DELETE CASCADE,
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

-- A suspended organization's devices get no new tokens.
ALTER TABLE organizations ADD COLUMN suspended_at INTEGER;

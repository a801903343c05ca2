-- Air-gapped activation by file (offline.rs): a console that never reaches
-- the server sends an activation request by hand and gets back a response
-- file holding an offline license bound to its install key.
-- How many days an offline license of the organization lasts (1..=366; never
-- past the end of the organization's validity).
ALTER TABLE organizations ADD COLUMN offline_days INTEGER NOT NULL DEFAULT 30;

-- Each activation response given: the offline license's `jti`
-- (`license_id`), the install key it is bound to, and the response file's
-- text (no secret: only the install that made the request can use it).
CREATE TABLE offline_activations (
    id             INTEGER PRIMARY KEY,
    org_id         INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    device_id      INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    request_id     TEXT NOT NULL,
    install_jkt    TEXT NOT NULL,
    license_id     TEXT NOT NULL UNIQUE,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    deactivated_at INTEGER,
    response       TEXT NOT NULL
);
CREATE INDEX offline_activations_device ON offline_activations (device_id, install_jkt);

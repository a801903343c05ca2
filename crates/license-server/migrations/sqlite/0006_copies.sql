-- Copies of one console (a cloned VM, a restored backup) share a token
-- chain: each answers the other's rotations through the retry path. A chain
-- counts its retries; two within a week mark the device a possible copy
-- (oauth/token.rs), and the organization chooses what follows.
ALTER TABLE token_chains ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE token_chains ADD COLUMN last_retry_at INTEGER;
ALTER TABLE devices ADD COLUMN possible_copy_at INTEGER;
-- `flag`: mark the device and audit; `revoke`: also revoke the chain.
ALTER TABLE organizations ADD COLUMN on_copy TEXT NOT NULL DEFAULT 'flag'
    CHECK (on_copy IN ('flag', 'revoke'));

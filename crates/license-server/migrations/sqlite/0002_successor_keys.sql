-- A refresh token's successor is HMAC-SHA256(key, previous token) with a key
-- only the server holds (keys.rs), so a token seen once gives nothing about
-- the ones after it. The newest key derives new successors; older keys stay
-- so that a retried exchange (a lost response) is recognized after a
-- rotation.
CREATE TABLE successor_keys (
    id         INTEGER PRIMARY KEY,
    secret     BLOB NOT NULL CHECK (length(secret) = 32),
    created_at INTEGER NOT NULL
);

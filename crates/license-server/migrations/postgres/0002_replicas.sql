-- What replicas share that a single SQLite server keeps in memory
-- (limits.rs, dpop.rs): every replica counts the same attempts and knows
-- every DPoP proof taken, so a second replica is no second chance.

-- Attempt counters: sign-in per address and per account, user-code entry
-- per session and per address, device authorizations per address. `n` and
-- `at` are what the in-memory counter holds (attempts or failures, and the
-- window's start or the last attempt's time).
CREATE TABLE attempts (
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    n     BIGINT NOT NULL,
    at    BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX attempts_at ON attempts(at);

-- DPoP proofs taken (`jkt:jti`), until they could not be taken anyway.
CREATE TABLE dpop_proofs (
    id        TEXT PRIMARY KEY,
    forget_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_forget_at ON dpop_proofs(forget_at);

-- Key rollovers (license_core::anchor): each signing key, when the next one
-- replaces it, signs a statement vouching for the next. Published with the
-- JWKS, they let a console that pinned an old key follow the rotations it
-- missed while offline. Signed by the server (which knows its issuer) at its
-- next key reload after a rotation, before the old private key is erased.
CREATE TABLE key_rollovers (
    signed_by  TEXT NOT NULL,
    next_kid   TEXT NOT NULL,
    jws        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (signed_by, next_kid)
);

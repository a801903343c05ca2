-- Withdrawing signing keys (keys.rs): a withdrawn key leaves the JWKS at
-- once. Private keys of retired keys are erased (secret_key becomes an empty
-- blob) once nothing can need them; the public key stays, for the JWKS,
-- until the last token the key signed has expired. Rows from before this
-- get their public key when the server loads them.
ALTER TABLE signing_keys ADD COLUMN public_key BLOB;
ALTER TABLE signing_keys ADD COLUMN withdrawn_at INTEGER;

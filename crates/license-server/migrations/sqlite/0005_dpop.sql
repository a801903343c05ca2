-- DPoP (RFC 9449): a token chain started with a proof is bound to that
-- key's JWK thumbprint; its refresh grants and license fetches need proofs
-- by the same key.
ALTER TABLE token_chains ADD COLUMN dpop_jkt TEXT;

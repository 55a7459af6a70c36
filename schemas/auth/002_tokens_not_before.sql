-- auth 002: revocation at the edge.
--
-- Access tokens issued before tokens_not_before (integer seconds since the
-- epoch, the JWT's NumericDate) are refused by the edge once the
-- revocation event reached it: a subject-wide revocation at second s sets
-- it to s + 1, and tokens are issued with iat = max(now, tokens_not_before)
-- so that a login right after a revocation is not refused.

ALTER TABLE users
    ADD COLUMN tokens_not_before bigint NOT NULL DEFAULT 0
        CHECK (tokens_not_before >= 0);

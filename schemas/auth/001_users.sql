-- auth 001: accounts and refresh tokens.
--
-- Case-insensitive uniqueness without citext: unique indexes on lower().
-- Usernames are lower-case by rule already; the index on lower(username)
-- still guards rows written around the API (psql, future imports).

CREATE TABLE users (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    username       text        NOT NULL
                               CHECK (username ~ '^[a-z0-9_]{3,32}$'),
    email          text        NOT NULL
                               CHECK (length(email) BETWEEN 3 AND 254),
    password_hash  text        NOT NULL
                               CHECK (password_hash LIKE '$argon2id$%'),
    role           text        NOT NULL DEFAULT 'user'
                               CHECK (role IN ('user', 'moderator', 'admin')),
    bio            text        NOT NULL DEFAULT ''
                               CHECK (char_length(bio) <= 2000),
    disabled       boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- keyset order of the admin list (byte order, so cursors compare the same
-- way whatever the database's collation)
CREATE INDEX users_username_c_idx ON users (username COLLATE "C");

-- Refresh tokens rotate: each use marks the row used and issues a child in
-- the same family.  A used token presented again means a copy leaked, so
-- the whole family is revoked.  Only SHA-256(token) is stored.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    parent_id   uuid        REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id);

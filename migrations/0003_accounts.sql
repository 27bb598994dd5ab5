-- Read models for authentication, owned by the `accounts` and `auth_sessions`
-- projections (see docs/adr/05-accounts-and-sessions.md).

-- One row per account: what sign-in and the auth middleware read.
CREATE TABLE accounts
(
    user_id       uuid PRIMARY KEY,
    email         text        NOT NULL,
    -- argon2id PHC string; NULL for accounts created through Google.
    password_hash text,
    verified      boolean     NOT NULL DEFAULT false,
    disabled      boolean     NOT NULL DEFAULT false,
    roles         text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL
);
CREATE UNIQUE INDEX accounts_email ON accounts (email);
INSERT INTO projection_checkpoints (projection) VALUES ('accounts');

-- One row per refresh-token family. Token hashes stay in the event log (the Session
-- aggregate decides rotations); this table answers "is this session revoked?".
CREATE TABLE auth_sessions
(
    session_id      uuid PRIMARY KEY,
    user_id         uuid        NOT NULL,
    method          text        NOT NULL,
    started_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    refreshed_at    timestamptz,
    refresh_count   bigint      NOT NULL DEFAULT 0,
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
INSERT INTO projection_checkpoints (projection) VALUES ('auth_sessions');

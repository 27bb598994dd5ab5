-- Issue 18 (ADR 24): when each app credential was last used, and by which client. The
-- credentials themselves are events (`app_credentials` aggregates, read from the log);
-- this is request-path bookkeeping the edge writes (at most once a minute per credential),
-- not a fact worth an event: an event per use would make the aggregate grow with use.
CREATE TABLE app_credential_use (
    credential_id uuid PRIMARY KEY,
    user_id       uuid        NOT NULL,
    last_used_at  timestamptz NOT NULL,
    client        text        NOT NULL
);
CREATE INDEX app_credential_use_user ON app_credential_use (user_id);

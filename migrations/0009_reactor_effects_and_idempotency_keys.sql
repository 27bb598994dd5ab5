-- Issue 15: side effects from events, and idempotency keys scoped to their caller.

-- What a reactor did for an event (keyed by the event's id, `<type>:<id>:<sequence>`), so
-- a redelivered or re-fed event does nothing twice. `attempts` counts the tries that
-- reached the effect; `done_at` is set once the effect happened (a mail accepted by the
-- SMTP server), `effect` names it ('verification', 'already_registered', 'none').
CREATE TABLE reactor_effects (
    reactor    text        NOT NULL,
    event_id   text        NOT NULL,
    attempts   integer     NOT NULL DEFAULT 1,
    effect     text,
    first_seen timestamptz NOT NULL DEFAULT now(),
    done_at    timestamptz,
    PRIMARY KEY (reactor, event_id)
);

-- An Idempotency-Key's first use. `scope` is a keyed digest of (caller, route, key): the
-- caller is the user, or on anonymous routes the client's nonce; `request_digest` a keyed
-- digest of the request (method, path, query, body). Reusing a key with another request
-- is refused (422). No plain key, nonce or body is stored.
CREATE TABLE idempotency_keys (
    scope          text        PRIMARY KEY,
    request_digest text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

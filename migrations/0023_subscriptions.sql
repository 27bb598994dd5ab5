-- Issue 20 (ADR 40): one row per live subscription to a playlist, channel or feed, the
-- `subscriptions` read model of the `subscription` aggregate. The scheduler finds due
-- checks by `next_check_at` (a failed check moves it to its `retry_at`).
CREATE TABLE subscriptions
(
    id              text PRIMARY KEY,
    user_id         uuid        NOT NULL,
    url             text        NOT NULL,
    title           text,
    status          text        NOT NULL,
    latest          integer,
    subscribed_at   timestamptz NOT NULL,
    version         bigint      NOT NULL,
    checks          integer     NOT NULL,
    last_checked_at timestamptz,
    next_check_at   timestamptz,
    failures        integer     NOT NULL,
    rate_limited    boolean     NOT NULL,
    reason          text,
    retry_at        timestamptz,
    last_found      integer     NOT NULL,
    last_new        integer     NOT NULL,
    last_imported   integer     NOT NULL,
    last_skipped    integer     NOT NULL,
    imported_total  bigint      NOT NULL
);

CREATE INDEX subscriptions_user ON subscriptions (user_id, subscribed_at);
CREATE INDEX subscriptions_due ON subscriptions (next_check_at) WHERE status = 'active';

INSERT INTO projection_checkpoints (projection) VALUES ('subscriptions');

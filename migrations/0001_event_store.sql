-- The event log (postgres-es' shape) plus what the relay and audit need.
-- postgres-es names its INSERT columns, so the extra columns fill themselves.
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY,
    transaction_id  xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     timestamptz                  NOT NULL DEFAULT now(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- Relay order: a transaction's events become visible together at commit, so the relay
-- reads by (transaction_id, global_position) below the snapshot's xmin.
CREATE UNIQUE INDEX events_relay_order ON events (transaction_id, global_position);
-- Exactly-once effect: a redelivered command is looked up by its id.
CREATE INDEX events_command_id ON events ((metadata ->> 'command_id'));
-- Audit: every event one request caused.
CREATE INDEX events_correlation_id ON events ((metadata ->> 'correlation_id'));
CREATE INDEX events_recorded_at ON events (recorded_at);

CREATE TABLE snapshots
(
    aggregate_type   text                                 NOT NULL,
    aggregate_id     text                                 NOT NULL,
    last_sequence    bigint CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL,
    payload          json                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- No NOTIFY trigger on `events`: a NOTIFY in every writing transaction serializes all
-- commits behind one lock. Writers wake the relay with a coalesced `pg_notify` on the
-- channel `events_appended` after they commit (handlers/src/wake.rs).

-- How far the outbox relay has published, in relay order. One row.
CREATE TABLE relay_checkpoint
(
    id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO relay_checkpoint DEFAULT VALUES;

-- How far each read model has applied the log, in relay order.
CREATE TABLE projection_checkpoints
(
    projection      text PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT '0',
    global_position bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The answer to every processed command, for `GET /commands/{id}` and redeliveries.
CREATE TABLE command_outcomes
(
    command_id  uuid PRIMARY KEY,
    issued_by   uuid,
    status      text        NOT NULL,
    outcome     jsonb       NOT NULL,
    finished_at timestamptz NOT NULL DEFAULT now()
);

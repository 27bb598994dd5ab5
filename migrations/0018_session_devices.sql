-- Issue 21 (ADR 29): the devices page lists a person's live sessions.
-- When each session started: written with the session's first row (the processor's
-- insert leaves it to the default, in the commit of `SessionStarted`); older rows take
-- the time of their first event.
ALTER TABLE access_sessions ADD COLUMN started_at timestamptz NOT NULL DEFAULT now();
UPDATE access_sessions s
SET started_at = e.recorded_at
FROM events e
WHERE e.aggregate_type = 'session' AND e.aggregate_id = s.session_id::text
  AND e.sequence = 1;
CREATE INDEX access_sessions_user ON access_sessions (user_id);

-- Which client a session was last used from, and when: request-path bookkeeping the edge
-- writes at sign-in and at each refresh (as `app_credential_use`, ADR 24), not a fact
-- worth an event. The address is shortened (IPv4 /24, IPv6 /48): enough to tell two
-- places apart, not to find a person.
CREATE TABLE session_use (
    session_id   uuid PRIMARY KEY,
    user_id      uuid        NOT NULL,
    last_used_at timestamptz NOT NULL,
    user_agent   text        NOT NULL,
    client       text        NOT NULL
);
CREATE INDEX session_use_user ON session_use (user_id);

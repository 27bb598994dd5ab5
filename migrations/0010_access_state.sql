-- Write-side access state (issue 15, ADR 14): what access decisions read, written by the
-- processor in the same statement as the `User`/`Session` events that change it, so it is
-- never behind the log. Not a projection: no checkpoint, no rebuild; each row is its
-- aggregate's state (the backfill below folds the log written before this migration).

-- One row per account: sign-in and every authenticated request read it.
CREATE TABLE access_users
(
    user_id       uuid PRIMARY KEY,
    email         text        NOT NULL,
    -- argon2id PHC string; NULL for accounts created through Google.
    password_hash text,
    verified      boolean     NOT NULL,
    disabled      boolean     NOT NULL,
    roles         text[]      NOT NULL,
    -- Sessions started under an older epoch are over (`UserDisabled` bumps it).
    session_epoch integer     NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX access_users_email ON access_users (email);

-- One row per session (refresh-token family); no token hashes.
CREATE TABLE access_sessions
(
    session_id uuid PRIMARY KEY,
    user_id    uuid        NOT NULL,
    epoch      integer     NOT NULL,
    revoked    boolean     NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Backfill from the log written so far (events are JSON: {"<EventType>": {...}} or
-- "<EventType>" for unit variants).
INSERT INTO access_users (user_id, email, password_hash, verified, disabled, roles,
                          session_epoch, created_at)
SELECT s.aggregate_id::uuid,
       s.payload::jsonb -> s.event_type ->> 'email',
       (SELECT e.payload::jsonb -> e.event_type ->> 'password_hash'
        FROM events e
        WHERE e.aggregate_type = 'user' AND e.aggregate_id = s.aggregate_id
          AND e.event_type IN ('UserSignedUp', 'PasswordRehashed')
        ORDER BY e.sequence DESC LIMIT 1),
       EXISTS (SELECT 1 FROM events e
               WHERE e.aggregate_type = 'user' AND e.aggregate_id = s.aggregate_id
                 AND e.event_type = 'EmailVerified'),
       COALESCE((SELECT e.event_type = 'UserDisabled'
                 FROM events e
                 WHERE e.aggregate_type = 'user' AND e.aggregate_id = s.aggregate_id
                   AND e.event_type IN ('UserDisabled', 'UserEnabled')
                 ORDER BY e.sequence DESC LIMIT 1), false),
       ARRAY(SELECT r.role
             FROM (SELECT DISTINCT ON (role) e.payload::jsonb -> e.event_type ->> 'role' AS role,
                                             e.event_type
                   FROM events e
                   WHERE e.aggregate_type = 'user' AND e.aggregate_id = s.aggregate_id
                     AND e.event_type IN ('RoleGranted', 'RoleRevoked')
                   ORDER BY role, e.sequence DESC) r
             WHERE r.event_type = 'RoleGranted'
             ORDER BY r.role),
       (SELECT count(*) FROM events e
        WHERE e.aggregate_type = 'user' AND e.aggregate_id = s.aggregate_id
          AND e.event_type = 'UserDisabled'),
       s.recorded_at
FROM events s
WHERE s.aggregate_type = 'user'
  AND s.event_type IN ('UserSignedUp', 'UserSignedUpWithIdentity');

-- A session's epoch: the user's disables before it started (those sessions were revoked
-- one by one then, so this only matters for sessions opened after an enable).
INSERT INTO access_sessions (session_id, user_id, epoch, revoked, expires_at)
SELECT s.aggregate_id::uuid,
       (s.started ->> 'user_id')::uuid,
       (SELECT count(*) FROM events d
        WHERE d.aggregate_type = 'user' AND d.aggregate_id = s.started ->> 'user_id'
          AND d.event_type = 'UserDisabled' AND d.global_position < s.global_position),
       EXISTS (SELECT 1 FROM events r
               WHERE r.aggregate_type = 'session' AND r.aggregate_id = s.aggregate_id
                 AND r.event_type = 'SessionRevoked'),
       (s.started ->> 'expires_at')::timestamptz
FROM (SELECT aggregate_id, global_position, payload::jsonb -> 'SessionStarted' AS started
      FROM events
      WHERE aggregate_type = 'session' AND event_type = 'SessionStarted') s;

-- `LibraryEntry` (`<user_id>/<track_id>`) replaces the per-user `Library`; an entry with
-- no events of its own starts from its track's last event in the old aggregate.
CREATE INDEX events_legacy_library_track
    ON events (aggregate_id, ((payload -> event_type) ->> 'track_id'), sequence)
    WHERE aggregate_type = 'library';

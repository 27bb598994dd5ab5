-- Issue 19 (ADR 26): what each of a user's players plays now (Subsonic `scrobble` with
-- `submission=false`, `getNowPlaying`). Ephemeral: not an event, a row per (user, client)
-- the edge overwrites, read only until `expires_at` (the track's end, plus a minute).
CREATE TABLE now_playing
(
    user_id    uuid        NOT NULL,
    client     text        NOT NULL,
    track_id   text        NOT NULL,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client)
);

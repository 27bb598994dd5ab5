-- `library` (issue 5): what GET /library lists. One row per (user, track) with the
-- track's title, artist, duration and cover copied from `TrackStored`, plus one `track`
-- row per stored track (user_id NULL) that carries those values for the entries to copy
-- and how many libraries hold the track (`holders`, for the admin's catalog).
-- Keys: `<user_id>/<track_id>` for entries, `track/<track_id>` for track rows.
CREATE TABLE library
(
    entry_id    text PRIMARY KEY,
    user_id     uuid,
    track_id    text    NOT NULL,
    title       text,
    artist      text,
    -- lower(title), lower(artist) ('' when missing): the filter and sort keys.
    title_key   text    NOT NULL,
    artist_key  text    NOT NULL,
    duration_ms bigint  NOT NULL,
    has_cover   boolean NOT NULL,
    added_at    timestamptz,
    holders     integer NOT NULL
);
-- One index per sort; each ends with track_id, the keyset tie-breaker. `q` filters the
-- user's range of whichever index the sort uses (a library is thousands of rows, not
-- millions; a trigram index would not pay for itself here).
CREATE INDEX library_user_added ON library (user_id, added_at, track_id);
CREATE INDEX library_user_title ON library (user_id, title_key, track_id);
CREATE INDEX library_user_artist ON library (user_id, artist_key, track_id);
CREATE INDEX library_user_duration ON library (user_id, duration_ms, track_id);

-- The admin's job list: filters by status and by user, newest first.
CREATE INDEX jobs_status_created ON jobs (status, created_at DESC, job_id);
CREATE INDEX jobs_created ON jobs (created_at DESC, job_id);

INSERT INTO projection_checkpoints (projection) VALUES ('library');

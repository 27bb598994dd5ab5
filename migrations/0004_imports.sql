-- Read models of the import flow (issue 4), each owned by its projection.

-- `jobs`: one row per import job, for GET /jobs and GET /jobs/{id}.
CREATE TABLE jobs
(
    job_id        uuid PRIMARY KEY,
    user_id       uuid        NOT NULL,
    source_kind   text        NOT NULL,
    -- The video id, the URL, or the uploaded file's name.
    source        text        NOT NULL,
    status        text        NOT NULL,
    track_id      text,
    error_code    text,
    error_message text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX jobs_user_created ON jobs (user_id, created_at DESC, job_id);

-- `tracks`: every stored track (the shared catalog).
CREATE TABLE tracks
(
    track_id    text PRIMARY KEY,
    object_key  text        NOT NULL,
    size        bigint      NOT NULL,
    duration_ms bigint      NOT NULL,
    codec       text        NOT NULL,
    bitrate     bigint      NOT NULL,
    title       text,
    artist      text,
    album       text,
    has_cover   boolean     NOT NULL,
    origin      text        NOT NULL,
    stored_at   timestamptz NOT NULL
);

-- `library_entries`: which user has which track (key: `<user_id>/<track_id>`).
CREATE TABLE library_entries
(
    entry_id text PRIMARY KEY,
    user_id  uuid        NOT NULL,
    track_id text        NOT NULL,
    job_id   uuid        NOT NULL,
    added_at timestamptz NOT NULL
);
CREATE INDEX library_entries_user_added ON library_entries (user_id, added_at DESC, track_id);

INSERT INTO projection_checkpoints (projection) VALUES ('jobs'), ('tracks'), ('library_entries');

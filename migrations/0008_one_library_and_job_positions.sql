-- Issue 15: one read model answers both "is it in my library" and "may I stream it".
-- `library` takes over `library_entries` (who has which track) and keeps, on every row,
-- where the track's objects are (from `TrackStored`), so GET /library, GET /stream and
-- the stream role read one projection, applied in one transaction, and cannot disagree.
-- The values below are what a rebuild of `library` from the log gives. "May I stream
-- it" reads two rows by primary key: the entry `<user_id>/<track_id>` and `track/<track_id>`.
ALTER TABLE library
    ADD COLUMN object_key text,
    ADD COLUMN size       bigint,
    ADD COLUMN cover_key  text,
    ADD COLUMN cover_size bigint,
    ADD COLUMN cover_type text;

UPDATE library l
SET object_key = t.object_key,
    size       = t.size,
    cover_key  = t.cover_key,
    cover_size = t.cover_size,
    cover_type = t.cover_type
FROM tracks t
WHERE t.track_id = l.track_id;

DROP TABLE library_entries;
DELETE FROM projection_checkpoints WHERE projection = 'library_entries';

-- A job's row remembers the position of the last event applied to it, so GET /jobs/{id}
-- can wait for the library to show a completed job's track before saying `completed`.
ALTER TABLE jobs ADD COLUMN position text;
UPDATE jobs j
SET position = (SELECT e.transaction_id::text || '.' || e.global_position
                FROM events e
                WHERE e.aggregate_type = 'import' AND e.aggregate_id = j.job_id::text
                ORDER BY e.sequence DESC
                LIMIT 1);

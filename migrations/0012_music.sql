-- `music` (issue 18, ADR 23): each user's library as artists and albums. One table, four
-- kinds of row, keyed by text: `track/<track_id>` (a stored track's details, no user),
-- `<user>/t/<track_id>` (an entry with the owner's details), `<user>/al/<album_id>` and
-- `<user>/ar/<artist_id>` (counts and totals). Ids are UUIDv5 of normalized names.
-- Filled from the log: after upgrading, `jukebox projections rebuild music`.
CREATE TABLE music
(
    key          text PRIMARY KEY,
    kind         text     NOT NULL,
    user_id      uuid,
    id           text     NOT NULL,
    name         text     NOT NULL,
    name_key     text     NOT NULL,
    artists      text[]   NOT NULL,
    artist_ids   text[]   NOT NULL,
    artist_key   text     NOT NULL,
    album        text,
    album_id     text,
    year         integer,
    duration_ms  bigint   NOT NULL,
    track_count  integer  NOT NULL,
    album_count  integer  NOT NULL,
    cover_stored boolean  NOT NULL,
    size         bigint   NOT NULL,
    bitrate      bigint   NOT NULL,
    codec        text     NOT NULL,
    added_at     timestamptz
);
-- One index per list and sort, each on its kind only; the id ends each as a tie-breaker.
CREATE INDEX music_albums_added ON music (user_id, added_at, id) WHERE kind = 'album';
CREATE INDEX music_albums_name ON music (user_id, name_key, id) WHERE kind = 'album';
CREATE INDEX music_albums_artist ON music (user_id, artist_key, name_key, id) WHERE kind = 'album';
CREATE INDEX music_albums_year ON music (user_id, year, name_key, id) WHERE kind = 'album';
CREATE INDEX music_albums_of_artist ON music (user_id, (artist_ids[1])) WHERE kind = 'album';
CREATE INDEX music_artists_name ON music (user_id, name_key, id) WHERE kind = 'artist';
CREATE INDEX music_entries_album ON music (user_id, album_id, added_at, id) WHERE kind = 'entry';
CREATE INDEX music_entries_name ON music (user_id, name_key, id) WHERE kind = 'entry';
CREATE INDEX music_entries_artists ON music USING gin (artist_ids) WHERE kind = 'entry';

INSERT INTO projection_checkpoints (projection) VALUES ('music');

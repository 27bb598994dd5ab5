-- Issue 19 (ADR 27): playlists. `playlists` has one row per live playlist;
-- `playlist_entries` one row per entry, keyed `<playlist_id>/<entry>`, its order the
-- `rank` the aggregate assigned (a move rewrites one row). Two read models, each its own
-- projector and checkpoint.
CREATE TABLE playlists
(
    playlist_id uuid PRIMARY KEY,
    owner_id    uuid        NOT NULL,
    name        text        NOT NULL,
    description text        NOT NULL,
    public      boolean     NOT NULL,
    entry_count integer     NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX playlists_owner ON playlists (owner_id, name, playlist_id);
CREATE INDEX playlists_public ON playlists (name, playlist_id) WHERE public;

CREATE TABLE playlist_entries
(
    entry_key   text PRIMARY KEY,
    playlist_id uuid   NOT NULL,
    entry_no    bigint NOT NULL,
    track_id    text   NOT NULL,
    rank        bigint NOT NULL
);
CREATE INDEX playlist_entries_order ON playlist_entries (playlist_id, rank, entry_no);

INSERT INTO projection_checkpoints (projection) VALUES ('playlists'), ('playlist_entries');

-- Issue 19 (ADR 26): favourites and play counts, two read models.
-- `favourites`: one row per starred item, keyed as its `favourite` aggregate
-- (`<user>/<kind>:<item_id>`); an unstarred item has no row.
CREATE TABLE favourites
(
    key        text PRIMARY KEY,
    user_id    uuid        NOT NULL,
    kind       text        NOT NULL,
    item_id    text        NOT NULL,
    starred_at timestamptz NOT NULL
);
CREATE INDEX favourites_of_user ON favourites (user_id, kind, starred_at DESC, item_id);
CREATE INDEX favourites_item ON favourites (user_id, item_id);

-- `plays`: per user and track, how often and when last played (`<user>/<track_id>`).
CREATE TABLE plays
(
    key         text PRIMARY KEY,
    user_id     uuid        NOT NULL,
    track_id    text        NOT NULL,
    play_count  bigint      NOT NULL,
    last_played timestamptz NOT NULL
);
CREATE INDEX plays_recent ON plays (user_id, last_played DESC, track_id);
CREATE INDEX plays_frequent ON plays (user_id, play_count DESC, last_played DESC, track_id);
CREATE INDEX plays_track ON plays (user_id, track_id);

INSERT INTO projection_checkpoints (projection) VALUES ('favourites'), ('plays');

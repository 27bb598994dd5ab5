-- A user's marks (starred, play count, last played) are kept on their library entries,
-- so that a page of the library reads them with its rows instead of joining
-- `favourites` and `plays` per row (ADR 49). The library also keeps a
-- `marks/<user>/<track>` row per marked track, in the library or not (no `user_id`), so
-- that an entry added again gets its marks back; `owner_id` names the user of entries and
-- marks rows, and erasure deletes by it.
--
-- The values below are what the library's fold gives at its checkpoint: the favourite
-- and play events up to that position, nothing of an erased user. Events after it reach
-- the library through the projector, as every event does.
ALTER TABLE library
    ADD COLUMN owner_id    uuid,
    ADD COLUMN starred_at  timestamptz,
    ADD COLUMN play_count  bigint,
    ADD COLUMN last_played timestamptz;

UPDATE library SET owner_id = user_id WHERE user_id IS NOT NULL;

WITH checkpoint AS (
    SELECT transaction_id, global_position FROM projection_checkpoints
    WHERE projection = 'library'
), upto AS (
    SELECT e.* FROM events e, checkpoint c
    WHERE (e.transaction_id, e.global_position) <= (c.transaction_id, c.global_position)
), erased AS (
    SELECT aggregate_id::uuid AS user_id FROM events
    WHERE aggregate_type = 'user' AND event_type = 'UserErased'
), last_favourite AS (
    SELECT DISTINCT ON (aggregate_id) event_type, payload::jsonb AS payload
    FROM upto WHERE aggregate_type = 'favourite'
    ORDER BY aggregate_id, sequence DESC
), stars AS (
    SELECT (payload -> 'ItemStarred' ->> 'user_id')::uuid AS user_id,
           payload -> 'ItemStarred' -> 'item' ->> 'item_id' AS track_id,
           (payload -> 'ItemStarred' ->> 'starred_at')::timestamptz AS starred_at
    FROM last_favourite
    WHERE event_type = 'ItemStarred' AND payload -> 'ItemStarred' -> 'item' ->> 'kind' = 'track'
), played AS (
    SELECT (payload::jsonb -> 'PlayRecorded' ->> 'user_id')::uuid AS user_id,
           payload::jsonb -> 'PlayRecorded' ->> 'track_id' AS track_id,
           count(*) AS play_count,
           max((payload::jsonb -> 'PlayRecorded' ->> 'played_at')::timestamptz) AS last_played
    FROM upto WHERE aggregate_type = 'play' AND event_type = 'PlayRecorded'
    GROUP BY 1, 2
), marks AS (
    SELECT coalesce(s.user_id, p.user_id) AS user_id, coalesce(s.track_id, p.track_id) AS track_id,
           s.starred_at, p.play_count, p.last_played
    FROM stars s FULL JOIN played p ON p.user_id = s.user_id AND p.track_id = s.track_id
)
INSERT INTO library (entry_id, user_id, owner_id, track_id, title_key, artist_key,
                     duration_ms, has_cover, holders, starred_at, play_count, last_played)
SELECT 'marks/' || m.user_id || '/' || m.track_id, NULL, m.user_id, m.track_id, '', '',
       0, false, 0, m.starred_at, m.play_count, m.last_played
FROM marks m
WHERE m.user_id NOT IN (SELECT user_id FROM erased);

UPDATE library l
SET starred_at = m.starred_at, play_count = m.play_count, last_played = m.last_played
FROM library m
WHERE l.user_id IS NOT NULL AND m.entry_id = 'marks/' || l.user_id || '/' || l.track_id;

CREATE INDEX library_owner ON library (owner_id);

-- Erasure forgets the entries of an erased user's playlists too (ADR 42): every
-- `playlist_entries` row names the playlist's owner, and each playlist has an owner row
-- (key `<playlist_id>`, entry_no -1, no track) that entries added later copy it from.
-- The values below are what a rebuild of `playlist_entries` from the log gives: owners
-- from `PlaylistCreated`, no owner row for a deleted playlist, nothing of an erased owner.
ALTER TABLE playlist_entries ADD COLUMN owner_id uuid;

UPDATE playlist_entries e
SET owner_id = (c.payload::jsonb -> 'PlaylistCreated' ->> 'owner')::uuid
FROM events c
WHERE c.aggregate_type = 'playlist' AND c.aggregate_id = e.playlist_id::text
  AND c.event_type = 'PlaylistCreated';

INSERT INTO playlist_entries (entry_key, playlist_id, entry_no, track_id, rank, owner_id)
SELECT c.aggregate_id, c.aggregate_id::uuid, -1, '', -1,
       (c.payload::jsonb -> 'PlaylistCreated' ->> 'owner')::uuid
FROM events c
WHERE c.aggregate_type = 'playlist' AND c.event_type = 'PlaylistCreated'
  AND NOT EXISTS (SELECT 1 FROM events d
                  WHERE d.aggregate_type = 'playlist' AND d.aggregate_id = c.aggregate_id
                    AND d.event_type = 'PlaylistDeleted')
ON CONFLICT (entry_key) DO NOTHING;

DELETE FROM playlist_entries e
WHERE e.owner_id IS NULL
   OR EXISTS (SELECT 1 FROM events u
              WHERE u.aggregate_type = 'user' AND u.aggregate_id = e.owner_id::text
                AND u.event_type = 'UserErased');

ALTER TABLE playlist_entries ALTER COLUMN owner_id SET NOT NULL;

-- Issue 19 (ADR 28): each user's saved play queue, the latest `PlayQueueSaved` (each save
-- is its own `play_queue_save` aggregate). One row per user; a save replaces the row
-- unless the row holds a later one (`saved_at`, the edge's clock when it was asked).
CREATE TABLE play_queues
(
    user_id       uuid PRIMARY KEY,
    save_id       uuid        NOT NULL,
    track_ids     text[]      NOT NULL,
    current_track text,
    position_ms   bigint      NOT NULL,
    client        text        NOT NULL,
    saved_at      timestamptz NOT NULL
);

INSERT INTO projection_checkpoints (projection) VALUES ('play_queues');

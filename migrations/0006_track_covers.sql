-- Covers as image objects of their own (issue 7): `TrackStored` may name one.
-- `tracks` keeps where it is (the stream role serves it from there); `library` only
-- whether there is one, so GET /library can hand out a signed cover URL without a join.
-- Tracks stored before this have no cover object: NULL / false, as a rebuild gives.
ALTER TABLE tracks
    ADD COLUMN cover_key  text,
    ADD COLUMN cover_size bigint,
    ADD COLUMN cover_type text;

ALTER TABLE library
    ADD COLUMN cover_stored boolean NOT NULL DEFAULT false;

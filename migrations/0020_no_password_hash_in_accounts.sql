-- The `accounts` read model no longer holds password hashes: the events published to
-- EVENTS withhold credential material (docs/adr/33-no-credential-material-on-the-bus.md),
-- and sign-in reads the write side's `access_users`, which keeps the hash.
ALTER TABLE accounts DROP COLUMN password_hash;

-- Each user's key for the personal data sealed in their events (crypto-shredding,
-- docs/adr/34-erasure-by-crypto-shredding.md). Write-side state outside the log: never
-- published, never in a read model. `key` NULL: the user was erased, and nothing is
-- sealed for them again.
CREATE TABLE user_keys
(
    user_id    uuid PRIMARY KEY,
    key        bytea CHECK (key IS NULL OR length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz
);

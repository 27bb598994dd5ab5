-- Keys the server itself holds (docs/adr/43-keyed-claim-ids-and-sealed-typed-text.md).
-- `claim_ids`: the HMAC-SHA256 key that turns an address or `<issuer>|<subject>` into
-- the id of its EmailClaim or ExternalIdentity, made by the first process that needs it.
-- Never published; lose it and no claim is found again (back it up with the database).
CREATE TABLE server_keys
(
    name       text PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

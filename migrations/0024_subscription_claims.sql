-- Issue 20 (ADR 40): which scheduler runs a subscription's check, until when. Not a
-- read model and not a lock held across the check: a row that expires, so a scheduler
-- that dies frees its checks when the claim runs out, and two replicas never list one
-- subscription at once. The check itself is a command claimed at the aggregate's
-- version, so even a late second check is refused, never counted twice.
CREATE TABLE subscription_claims
(
    subscription_id text PRIMARY KEY,
    holder          text        NOT NULL,
    held_until      timestamptz NOT NULL
);

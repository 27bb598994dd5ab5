//! `jukebox events encrypt-legacy` (ADR 43): the one rewrite of the log. Events written
//! before ADR 34 and 43 hold plain addresses, Google subjects and typed text, and claim
//! streams named by the plain address or `<issuer>|<subject>`. This re-keys those claim
//! streams under their keyed ids and seals the plain fields in place with their owner's
//! key (an erased owner's read `erased`). Idempotent: what is keyed or sealed already is
//! left alone, so a run that stopped half-way is finished by running it again. Events
//! keep their global position and transaction id: the relay's order is unchanged, and
//! `EVENTS` is re-fed from the log afterwards (docs/operations.md).

use std::collections::HashMap;

use jukebox_nats::claim_ids::{self, ClaimIds, CLAIM_TYPES};
use jukebox_nats::{log, sealed, user_keys};
use sqlx::PgPool;
use uuid::Uuid;

/// Events read per round trip while sealing.
const BATCH: i64 = 1_000;

/// What a run changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LegacyReport {
    /// Claim streams moved to their keyed id.
    pub claims_rekeyed: u64,
    /// Events whose plain fields were sealed (or erased).
    pub events_sealed: u64,
}

/// Re-keys every claim stream still named by its plain id. The processor runs this at
/// start, so no step reads an empty keyed stream while the claim sits under its old id.
pub async fn rekey_claims(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let ids = ClaimIds::new(pool.clone());
    let mut moved = 0;
    for aggregate_type in CLAIM_TYPES {
        let plain = log::ids_without_prefix(pool, aggregate_type, claim_ids::PREFIX).await?;
        for old in plain {
            let new = ids.id(aggregate_type, &old).await?;
            if rekey(pool, aggregate_type, &old, &new).await? {
                moved += 1;
            }
        }
    }
    Ok(moved)
}

/// Moves one claim stream to its keyed id in one transaction, with the mail reactor's
/// record of it (whose event ids name the stream, so a re-feed mails nothing again).
/// Events a newer processor already wrote under the keyed id follow the old ones.
/// `false`: another process moved it meanwhile.
async fn rekey(
    pool: &PgPool,
    aggregate_type: &str,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    const AWAY: i64 = 1_000_000_000;
    let mut tx = pool.begin().await?;
    // Two processors starting at once: the second waits here, then finds nothing to move
    // (its count is read after the lock, in a fresh snapshot).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('jukebox.rekey_claims'))")
        .execute(&mut *tx)
        .await?;
    let count = log::last_sequence(&mut *tx, aggregate_type, old).await?;
    if count == 0 {
        tx.commit().await?;
        return Ok(false);
    }
    let (old_prefix, new_prefix) = (
        format!("{aggregate_type}:{old}:"),
        format!("{aggregate_type}:{new}:"),
    );
    // Out of the way first, then after the old ones (the primary key is checked per row).
    for (shift, from) in [(AWAY, 0), (count - AWAY, AWAY)] {
        sqlx::query(
            "UPDATE events SET sequence = sequence + $3
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $4",
        )
        .bind(aggregate_type)
        .bind(new)
        .bind(shift)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE reactor_effects
             SET event_id = $1 || (substring(event_id FROM '([0-9]+)$')::bigint + $2)
             WHERE left(event_id, length($1)) = $1
               AND substring(event_id FROM '([0-9]+)$')::bigint > $3",
        )
        .bind(&new_prefix)
        .bind(shift)
        .bind(from)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE events SET aggregate_id = $3 WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(old)
    .bind(new)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE reactor_effects SET event_id = $2 || substring(event_id FROM length($1) + 1)
         WHERE left(event_id, length($1)) = $1",
    )
    .bind(&old_prefix)
    .bind(&new_prefix)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The aggregate types with sealed fields, and which (`sealed.rs`).
const SEALED: &[(&str, &[&str])] = &[
    ("user", sealed::PERSONAL_KEYS),
    ("playlist", sealed::PLAYLIST_KEYS),
    (
        jukebox_domain::app_credentials::AGGREGATE_TYPE,
        sealed::APP_CREDENTIAL_KEYS,
    ),
    ("library_entry", sealed::CORRECTION_KEYS),
];

/// Seals the plain personal fields and typed text of every event, batch by batch.
pub async fn seal_plain(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut sealed_count = 0;
    for (aggregate_type, names) in SEALED {
        // A playlist's owner is in its first event, which the scan (in key order) meets
        // before the others.
        let mut owners: HashMap<String, Uuid> = HashMap::new();
        let mut after = (String::new(), 0i64);
        loop {
            let rows =
                log::payloads_after(pool, aggregate_type, (&after.0, after.1), BATCH).await?;
            let Some(last) = rows.last() else { break };
            after = (last.0.clone(), last.1);
            for (aggregate_id, sequence, mut payload) in rows {
                if let Some(owner) = payload["PlaylistCreated"]["owner"].as_str() {
                    if let Ok(owner) = owner.parse() {
                        owners.insert(aggregate_id.clone(), owner);
                    }
                }
                if !sealed::has_fields(&payload, names) {
                    continue;
                }
                let owner = match *aggregate_type {
                    "playlist" => owners.get(&aggregate_id).copied(),
                    // `<user id>/<track id>`
                    "library_entry" => aggregate_id
                        .split_once('/')
                        .and_then(|(user, _)| user.parse().ok()),
                    _ => aggregate_id.parse().ok(),
                };
                let key = match owner {
                    Some(user) => user_keys::for_sealing(pool, user).await?.map(|k| (user, k)),
                    None => None,
                };
                match key {
                    Some((user, key)) => sealed::seal_fields(&mut payload, user, &key, names),
                    // Erased (or no owner to be found): nobody may read it again.
                    None => sealed::seal_fields_for_nobody(&mut payload, owner, names),
                }
                sqlx::query(
                    "UPDATE events SET payload = $4::json
                     WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
                )
                .bind(aggregate_type)
                .bind(&aggregate_id)
                .bind(sequence)
                .bind(&payload)
                .execute(pool)
                .await?;
                sealed_count += 1;
            }
        }
    }
    Ok(sealed_count)
}

/// The whole migration: claim streams re-keyed, plain fields sealed.
pub async fn encrypt_legacy(pool: &PgPool) -> Result<LegacyReport, sqlx::Error> {
    Ok(LegacyReport {
        claims_rekeyed: rekey_claims(pool).await?,
        events_sealed: seal_plain(pool).await?,
    })
}

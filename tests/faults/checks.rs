//! After the load and the faults: what the system holds, checked from the outside
//! against what it accepted. Nothing accepted may be lost, nothing doubled, nothing left
//! in progress; every read model must equal a rebuild from the log, and `EVENTS` must hold
//! every event of the log exactly once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::Value;
use sqlx::PgPool;

use crate::load::Ledger;
use crate::system::System;

#[derive(Default, Debug)]
pub struct Findings {
    pub lost: Vec<String>,
    pub duplicated: Vec<String>,
    pub stuck: Vec<String>,
    /// Read models that differ from their rebuild, streams that differ from the log.
    pub mismatched: Vec<String>,
    /// Events stored in `EVENTS` after a later event of the log (see `finish`).
    pub out_of_order: Vec<String>,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.lost.is_empty()
            && self.duplicated.is_empty()
            && self.stuck.is_empty()
            && self.mismatched.is_empty()
    }
}

const IMPORT_ENDS: &str = "('ImportCompleted', 'ImportFailed')";

/// Waits (bounded) until nothing is in flight: no import job without an end, the relay
/// and every projection caught up, `COMMANDS` drained. What is still pending at the
/// bound is "stuck".
pub async fn quiesce(system: &mut System, within: Duration, findings: &mut Findings) {
    let pool = system.pool().await;
    let js = jetstream::new(system.nats_client().await);
    let deadline = Instant::now() + within;
    let mut last_report = Instant::now();
    loop {
        let open_jobs: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT aggregate_id FROM events WHERE aggregate_type = 'import'
             GROUP BY aggregate_id HAVING bool_and(event_type NOT IN {IMPORT_ENDS})"
        ))
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|_| vec!["(database unreachable)".into()]);
        let lagging: Vec<String> = match jukebox_projections::status::lags(&pool).await {
            Ok(lags) => lags
                .iter()
                .filter(|l| l.behind != 0)
                .map(|l| format!("{} behind by {}", l.name, l.behind))
                .collect(),
            Err(e) => vec![format!("lags unreadable: {e}")],
        };
        let commands = match js.get_stream("COMMANDS").await {
            Ok(mut stream) => match stream.info().await {
                Ok(info) => info.state.messages,
                Err(_) => u64::MAX,
            },
            Err(_) => u64::MAX,
        };
        let unfinished_rows: Vec<String> = sqlx::query_scalar(
            "SELECT job_id::text || ' ' || status FROM jobs WHERE status NOT IN ('completed', 'failed')",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        if open_jobs.is_empty() && lagging.is_empty() && commands == 0 && unfinished_rows.is_empty()
        {
            return;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!(
                "settling: {} open jobs, {} unfinished job rows, lagging: {lagging:?}, COMMANDS: {commands}",
                open_jobs.len(),
                unfinished_rows.len()
            );
        }
        if Instant::now() > deadline {
            findings.stuck.extend(
                open_jobs
                    .into_iter()
                    .map(|j| format!("import job {j} never ended")),
            );
            findings
                .stuck
                .extend(unfinished_rows.into_iter().map(|j| format!("jobs row {j}")));
            findings.stuck.extend(lagging);
            if commands != 0 {
                findings
                    .stuck
                    .push(format!("COMMANDS still holds {commands} messages"));
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn count(pool: &PgPool, sql: &str, binds: &[&str]) -> i64 {
    let mut query = sqlx::query_scalar::<_, i64>(sql);
    for b in binds {
        query = query.bind(*b);
    }
    query.fetch_one(pool).await.expect(sql)
}

/// Every accepted star has its state, every accepted play its one event (issue 19).
async fn stars_and_plays(pool: &PgPool, ledger: &Ledger, findings: &mut Findings) {
    let (stars, plays) = ledger.with(|l| (l.stars.clone(), l.plays.clone()));
    for ((email, track), on) in &stars {
        let rows = count(
            pool,
            "SELECT count(*) FROM favourites WHERE kind = 'track' AND item_id = $2
             AND user_id = (SELECT user_id FROM accounts WHERE email = $1)",
            &[email, track],
        )
        .await;
        if rows != i64::from(*on) {
            findings.lost.push(format!(
                "star of {track} by {email}: starred {on} answered, {rows} favourites rows"
            ));
        }
    }
    // The same play sent twice (same second) is one play.
    let plays: HashSet<(String, String, String)> = plays.into_iter().collect();
    let mut per_track: HashMap<(String, String), i64> = HashMap::new();
    for (email, track, at) in &plays {
        let events = count(
            pool,
            "SELECT count(*) FROM events WHERE aggregate_type = 'play' AND event_type = 'PlayRecorded'
             AND payload::jsonb->'PlayRecorded'->>'track_id' = $2
             AND (payload::jsonb->'PlayRecorded'->>'played_at')::timestamptz = $3::timestamptz
             AND payload::jsonb->'PlayRecorded'->>'user_id'
                 = (SELECT user_id::text FROM accounts WHERE email = $1)",
            &[email, track, at],
        )
        .await;
        match events {
            1 => *per_track.entry((email.clone(), track.clone())).or_default() += 1,
            0 => findings.lost.push(format!(
                "play of {track} by {email} at {at}: no PlayRecorded"
            )),
            n => findings.duplicated.push(format!(
                "play of {track} by {email} at {at}: {n} PlayRecorded"
            )),
        }
    }
    for ((email, track), plays) in per_track {
        let counted = count(
            pool,
            "SELECT COALESCE(max(play_count), 0) FROM plays WHERE track_id = $2
             AND user_id = (SELECT user_id FROM accounts WHERE email = $1)",
            &[&email, &track],
        )
        .await;
        // Unanswered retries may add plays; an answered one is never missing or doubled.
        if counted < plays {
            findings.lost.push(format!(
                "plays of {track} by {email}: {plays} answered, {counted} counted"
            ));
        }
    }
}

/// Each playlist holds exactly what its answered commands (create, add, move, remove)
/// make of a plain list applied in answer order: entry numbers and tracks, in order.
async fn playlists_hold_their_commands(pool: &PgPool, ledger: &Ledger, findings: &mut Findings) {
    let playlists = ledger.with(|l| l.playlists.clone());
    for (id, expected) in &playlists {
        let held: Vec<(i64, String)> = sqlx::query_as(
            "SELECT entry_no, track_id FROM playlist_entries
             WHERE playlist_id = $1 AND entry_no >= 0 ORDER BY rank, entry_no",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        let held: Vec<(u64, String)> = held.into_iter().map(|(n, t)| (n as u64, t)).collect();
        if held == expected.entries || expected.unanswered.as_ref() == Some(&held) {
            continue;
        }
        let line = format!(
            "playlist {id} of {}: {} commands answered leave {:?}, it holds {:?}",
            expected.email,
            expected.commands,
            expected.entries.iter().take(12).collect::<Vec<_>>(),
            held.iter().take(12).collect::<Vec<_>>()
        );
        if held.len() > expected.entries.len() {
            findings.duplicated.push(line);
        } else {
            findings.lost.push(line);
        }
    }
}

/// Every accepted command has its effect exactly once.
pub async fn accepted_effects(system: &mut System, ledger: &Ledger, findings: &mut Findings) {
    let pool = system.pool().await;
    stars_and_plays(&pool, ledger, findings).await;
    playlists_hold_their_commands(&pool, ledger, findings).await;
    let (signups, imports) = ledger.with(|l| (l.signups.clone(), l.imports.clone()));
    let claim_ids = jukebox_nats::claim_ids::ClaimIds::new(pool.clone());
    for email in &signups {
        let claim = claim_ids.id("email_claim", email).await.unwrap();
        let events = count(
            &pool,
            // The user's address is sealed (ADR 34); the claim, keyed (ADR 43), names
            // the user.
            "SELECT count(*) FROM events u JOIN events c
                 ON c.aggregate_type = 'email_claim' AND c.aggregate_id = $1
                AND c.event_type = 'EmailClaimed'
                AND u.aggregate_id = c.payload::jsonb->'EmailClaimed'->>'user_id'
             WHERE u.aggregate_type = 'user' AND u.event_type = 'UserSignedUp'",
            &[claim.as_str()],
        )
        .await;
        let rows = count(
            &pool,
            "SELECT count(*) FROM accounts WHERE email = $1",
            &[email],
        )
        .await;
        match (events, rows) {
            (1, 1) => {}
            (0, _) => findings
                .lost
                .push(format!("sign-up of {email}: no UserSignedUp")),
            (e, r) if e > 1 || r > 1 => findings.duplicated.push(format!(
                "sign-up of {email}: {e} UserSignedUp, {r} accounts rows"
            )),
            (e, r) => findings.lost.push(format!(
                "sign-up of {email}: {e} UserSignedUp but {r} accounts rows"
            )),
        }
    }
    for import in &imports {
        let job = import.job_id.to_string();
        let by_type: Vec<(String, i64)> = sqlx::query_as(
            "SELECT event_type, count(*) FROM events WHERE aggregate_type = 'import'
             AND aggregate_id = $1 GROUP BY event_type",
        )
        .bind(&job)
        .fetch_all(&pool)
        .await
        .unwrap();
        let by_type: HashMap<String, i64> = by_type.into_iter().collect();
        let n = |t: &str| by_type.get(t).copied().unwrap_or(0);
        if n("ImportRequested") == 0 {
            findings.lost.push(format!(
                "import {job} ({}): no ImportRequested",
                import.source
            ));
            continue;
        }
        if n("ImportRequested") > 1 || n("ImportCompleted") > 1 {
            findings
                .duplicated
                .push(format!("import {job}: {by_type:?}"));
        }
        if n("ImportFailed") > 0 {
            let reason: Option<String> = sqlx::query_scalar(
                "SELECT payload::text FROM events WHERE aggregate_type = 'import'
                 AND aggregate_id = $1 AND event_type = 'ImportFailed'",
            )
            .bind(&job)
            .fetch_optional(&pool)
            .await
            .unwrap();
            findings.lost.push(format!(
                "import {job} of {} failed: {}",
                import.source,
                reason.unwrap_or_default()
            ));
            continue;
        }
        if n("ImportCompleted") == 0 {
            continue; // reported as stuck by quiesce
        }
        let (user_id, track_id): (String, String) = sqlx::query_as(
            "SELECT (SELECT user_id::text FROM accounts WHERE email = $2),
                    payload::jsonb->'ImportCompleted'->>'track_id'
             FROM events WHERE aggregate_type = 'import' AND aggregate_id = $1
             AND event_type = 'ImportCompleted'",
        )
        .bind(&job)
        .bind(&import.email)
        .fetch_one(&pool)
        .await
        .unwrap();
        let added = count(
            &pool,
            "SELECT count(*) FROM events WHERE aggregate_type = 'library_entry'
             AND aggregate_id = $1 || '/' || $2 AND event_type = 'TrackAddedToLibrary'",
            &[&user_id, &track_id],
        )
        .await;
        let rows = count(
            &pool,
            "SELECT count(*) FROM library WHERE user_id = $1::uuid AND track_id = $2",
            &[&user_id, &track_id],
        )
        .await;
        if added == 0 || rows == 0 {
            findings.lost.push(format!(
                "import {job}: {track_id} in {}'s library: {added} events, {rows} rows",
                import.email
            ));
        } else if added > 1 || rows > 1 {
            findings.duplicated.push(format!(
                "import {job}: {track_id} in {}'s library: {added} events, {rows} rows",
                import.email
            ));
        }
    }

    // No command applied twice to one aggregate (the same command id on two events of
    // one type), whoever sent it.
    let doubled: Vec<String> = sqlx::query_scalar(
        "SELECT aggregate_type || ' ' || aggregate_id || ' ' || event_type || ' x' || count(*)
         FROM events GROUP BY aggregate_type, aggregate_id, event_type, metadata->>'command_id'
         HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    findings.duplicated.extend(
        doubled
            .into_iter()
            .map(|d| format!("one command, repeated event: {d}")),
    );

    // One stored object per source: one TrackStored per track, and the store holds
    // exactly those objects, each whole.
    let stored: Vec<(String, i64, String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, count(*) OVER (PARTITION BY aggregate_id),
                payload::jsonb->'TrackStored'->>'object_key',
                (payload::jsonb->'TrackStored'->>'size')::bigint
         FROM events WHERE event_type = 'TrackStored'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut keys = HashSet::new();
    for (track, times, key, size) in &stored {
        if *times > 1 {
            findings
                .duplicated
                .push(format!("track {track} stored {times} times"));
        }
        keys.insert(key.clone());
        let on_disk = std::fs::metadata(system.objects.join(key)).map(|m| m.len() as i64);
        if on_disk.as_ref().ok() != Some(size) {
            findings.lost.push(format!(
                "object {key}: TrackStored says {size} bytes, store has {on_disk:?}"
            ));
        }
    }
    let tracks_dir = system.objects.join("tracks");
    let files: Vec<String> = std::fs::read_dir(&tracks_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".m4a") && !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    for file in files {
        if !keys.contains(&format!("tracks/{file}")) {
            findings
                .duplicated
                .push(format!("object tracks/{file} has no TrackStored"));
        }
    }
}

/// A read model's rows, as JSON text, sorted.
pub async fn table(pool: &PgPool, name: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT row_to_json(t)::text AS r FROM {name} t ORDER BY 1"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Every read model equals a rebuild from the log (`jukebox projections rebuild --all`,
/// the operator's command, run as a process).
pub async fn read_models_equal_rebuild(system: &mut System, findings: &mut Findings) -> usize {
    let pool = system.pool().await;
    let mut live = BTreeMap::new();
    for name in jukebox_projections::ALL {
        live.insert(*name, table(&pool, name).await);
    }
    system.jukebox(
        &["projections", "rebuild", "--all"],
        Duration::from_secs(120),
    );
    let mut rows = 0;
    for name in jukebox_projections::ALL {
        let rebuilt = table(&pool, name).await;
        rows += rebuilt.len();
        if rebuilt != live[name] {
            let only_live: Vec<&String> = live[name]
                .iter()
                .filter(|r| !rebuilt.contains(r))
                .take(3)
                .collect();
            let only_rebuilt: Vec<&String> = rebuilt
                .iter()
                .filter(|r| !live[name].contains(r))
                .take(3)
                .collect();
            findings.mismatched.push(format!(
                "read model {name}: {} live rows, {} rebuilt; live only: {only_live:?}; rebuilt only: {only_rebuilt:?}",
                live[name].len(),
                rebuilt.len()
            ));
        }
    }
    rows
}

/// `EVENTS` holds every event of the log exactly once (by aggregate and sequence).
/// Returns how many events the log holds.
pub async fn events_stream_equals_log(system: &mut System, findings: &mut Findings) -> usize {
    let pool = system.pool().await;
    let log: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT aggregate_type, aggregate_id, sequence FROM events")
            .fetch_all(&pool)
            .await
            .unwrap();
    let js = jetstream::new(system.nats_client().await);
    let mut stream = js.get_stream("EVENTS").await.expect("EVENTS exists");
    let info = stream.info().await.unwrap().clone();
    let mut seen: HashMap<(String, String, i64), u32> = HashMap::new();
    // Projections apply in stream order and skip what is at or below their checkpoint:
    // an event stored after a later one (in relay order) would be skipped.
    let mut highest: ((u64, i64), u64) = ((0, 0), 0);
    let mut out_of_order = Vec::new();
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let event: Value = serde_json::from_slice(&message.payload).unwrap();
        let key = (
            event["aggregate_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            event["aggregate_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            event["sequence"].as_i64().unwrap_or(-1),
        );
        let position = (
            event["transaction_id"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0u64),
            event["global_position"].as_i64().unwrap_or(0),
        );
        if position < highest.0 && !seen.contains_key(&key) {
            out_of_order.push(format!(
                "{key:?} (relay position {position:?}) at stream sequence {sequence}, after {:?} at {}",
                highest.0, highest.1
            ));
        }
        if position > highest.0 {
            highest = (position, sequence);
        }
        *seen.entry(key).or_default() += 1;
    }
    findings.out_of_order.extend(
        out_of_order
            .into_iter()
            .map(|e| format!("EVENTS holds {e} after a later event of the log")),
    );
    let in_log: HashSet<&(String, String, i64)> = log.iter().collect();
    let mut missing = 0;
    for key in &log {
        match seen.get(key).copied().unwrap_or(0) {
            1 => {}
            0 => {
                missing += 1;
                if missing <= 5 {
                    findings.lost.push(format!("EVENTS lacks {key:?}"));
                }
            }
            n => findings
                .duplicated
                .push(format!("EVENTS holds {key:?} {n} times")),
        }
    }
    if missing > 5 {
        findings
            .lost
            .push(format!("EVENTS lacks {missing} events of the log in all"));
    }
    for key in seen.keys().filter(|k| !in_log.contains(k)) {
        findings
            .mismatched
            .push(format!("EVENTS holds {key:?}, which the log does not"));
    }
    log.len()
}

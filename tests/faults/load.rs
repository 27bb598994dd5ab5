//! A bounded load generator on loopback: virtual users sign up, sign in, import from a
//! few shared loopback sources, read their library, play, star, edit a playlist and
//! stream tracks, until told to stop. A request that fails with 5xx or a transport error
//! is retried with the same `Idempotency-Key`, as a careful client would; every 2xx
//! answer to a command goes into the ledger, which the checks compare with what the
//! system holds afterwards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::system::PASSWORD;

#[derive(Debug, Clone)]
pub struct AcceptedImport {
    pub job_id: Uuid,
    pub email: String,
    pub source: String,
}

/// One virtual user's playlist: the entries its answered commands leave, in order.
#[derive(Debug, Clone, Default)]
pub struct PlaylistLedger {
    pub email: String,
    /// `(entry number, track id)`: every 2xx add, move and removal applied in answer
    /// order to a plain list (the user edits one command at a time).
    pub entries: Vec<(u64, String)>,
    /// The next entry number the aggregate hands out.
    pub next_entry: u64,
    /// A command left unanswered (no 2xx and no 4xx within the retry bound): it may or may
    /// not have applied, so the playlist may also equal `entries` with it applied; the
    /// user stops editing this playlist then.
    pub unanswered: Option<Vec<(u64, String)>>,
    /// Commands answered 2xx.
    pub commands: u64,
}

#[derive(Default)]
pub struct LedgerInner {
    /// Sign-ups answered 201 or 202, by email.
    pub signups: Vec<String>,
    /// Imports answered 202.
    pub imports: Vec<AcceptedImport>,
    /// (request kind, status) -> count; status 0 is a transport error (refused, timeout).
    pub statuses: BTreeMap<(&'static str, u16), u64>,
    /// Every 500 (or other unexpected 5xx) with its body: each is a finding.
    pub server_errors: Vec<String>,
    /// Stream reads that returned the requested bytes.
    pub streamed: u64,
    /// Stars answered 200, by (email, track id): the last one says whether it is starred.
    pub stars: BTreeMap<(String, String), bool>,
    /// Plays answered 200: (email, track id, played_at as sent).
    pub plays: Vec<(String, String, String)>,
    /// Playlists answered 201, by id.
    pub playlists: BTreeMap<Uuid, PlaylistLedger>,
}

#[derive(Default, Clone)]
pub struct Ledger(pub Arc<Mutex<LedgerInner>>);

impl Ledger {
    pub fn with<T>(&self, f: impl FnOnce(&mut LedgerInner) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn record(&self, kind: &'static str, status: u16, body: &str) {
        self.with(|l| {
            *l.statuses.entry((kind, status)).or_default() += 1;
            if status >= 500 && status != 503 {
                l.server_errors.push(format!(
                    "{kind}: {status} {}",
                    body.chars().take(300).collect::<String>()
                ));
            }
        });
    }
}

/// One HTTP client for the load and the fault driver.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub api: String,
    pub ledger: Ledger,
}

/// How long one logical operation keeps retrying through an outage.
const RETRY_FOR: Duration = Duration::from_secs(90);

impl Client {
    /// Sends until the answer is not 5xx (or a transport error), within `RETRY_FOR`.
    pub async fn call(
        &self,
        kind: &'static str,
        make: impl Fn() -> RequestBuilder,
    ) -> Option<(StatusCode, Value)> {
        let deadline = Instant::now() + RETRY_FOR;
        loop {
            match make().send().await {
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    self.ledger.record(kind, status.as_u16(), &text);
                    if !status.is_server_error() {
                        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                        return Some((status, body));
                    }
                }
                Err(_) => self.ledger.record(kind, 0, ""),
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Signs up (one command, retried under one key); true when it was accepted (2xx).
    pub async fn sign_up(&self, email: &str) -> bool {
        let key = Uuid::new_v4().to_string();
        let answer = self
            .call("signup", || {
                self.http
                    .post(format!("{}/auth/signup", self.api))
                    .header("Idempotency-Key", &key)
                    // An anonymous key is scoped to the client's nonce (ADR 14).
                    .header("X-Client-Nonce", &key)
                    .json(&json!({ "email": email, "password": PASSWORD }))
            })
            .await;
        let accepted = matches!(answer, Some((s, _)) if s.is_success());
        if accepted {
            self.ledger.with(|l| l.signups.push(email.to_owned()));
        }
        accepted
    }

    /// Signs in; a 401 right after a sign-up answered 202 means "not committed yet".
    pub async fn sign_in(&self, email: &str) -> Option<String> {
        let deadline = Instant::now() + RETRY_FOR;
        while Instant::now() < deadline {
            let answer = self
                .call("signin", || {
                    self.http
                        .post(format!("{}/auth/signin", self.api))
                        .json(&json!({ "email": email, "password": PASSWORD }))
                })
                .await;
            match answer {
                Some((StatusCode::OK, body)) => {
                    return body["access_token"].as_str().map(str::to_owned)
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                None => return None,
            }
        }
        None
    }

    /// Imports a URL; returns the job id when accepted (202).
    pub async fn import(&self, token: &str, email: &str, url: &str) -> Option<Uuid> {
        let key = Uuid::new_v4().to_string();
        let (status, body) = self
            .call("import", || {
                self.http
                    .post(format!("{}/songs/import", self.api))
                    .bearer_auth(token)
                    .header("Idempotency-Key", &key)
                    .json(&json!({ "url": url }))
            })
            .await?;
        if !status.is_success() {
            return None;
        }
        let job_id: Uuid = body["job_id"].as_str()?.parse().ok()?;
        self.ledger.with(|l| {
            l.imports.push(AcceptedImport {
                job_id,
                email: email.to_owned(),
                source: url.to_owned(),
            })
        });
        Some(job_id)
    }

    /// The track ids in the caller's library (one page).
    pub async fn library(&self, token: &str) -> Vec<String> {
        match self
            .call("library", || {
                self.http
                    .get(format!("{}/library?limit=100", self.api))
                    .bearer_auth(token)
            })
            .await
        {
            Some((StatusCode::OK, body)) => body["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|i| i["track_id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Stars or unstars a track (one command, retried under one key).
    pub async fn star(&self, token: &str, email: &str, track_id: &str, on: bool) {
        let key = Uuid::new_v4().to_string();
        let url = format!("{}/me/favourites/track/{track_id}", self.api);
        let answer = self
            .call("star", || {
                let request = if on {
                    self.http.put(&url)
                } else {
                    self.http.delete(&url)
                };
                request.bearer_auth(token).header("Idempotency-Key", &key)
            })
            .await;
        if matches!(answer, Some((StatusCode::OK, _))) {
            self.ledger.with(|l| {
                l.stars.insert((email.to_owned(), track_id.to_owned()), on);
            });
        }
    }

    /// Records a play now (retried with the same time: one play).
    pub async fn play(&self, token: &str, email: &str, track_id: &str) {
        let played_at = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let answer = self
            .call("play", || {
                self.http
                    .post(format!("{}/me/plays", self.api))
                    .bearer_auth(token)
                    .json(&json!({ "track_id": track_id, "played_at": played_at }))
            })
            .await;
        if matches!(answer, Some((StatusCode::OK, _))) {
            self.ledger.with(|l| {
                l.plays
                    .push((email.to_owned(), track_id.to_owned(), played_at.clone()))
            });
        }
    }

    /// Creates a playlist of `tracks` (retried under one key); its id when answered 201.
    pub async fn create_playlist(
        &self,
        token: &str,
        email: &str,
        tracks: &[String],
    ) -> Option<Uuid> {
        let key = Uuid::new_v4().to_string();
        let (status, body) = self
            .call("pl-create", || {
                self.http
                    .post(format!("{}/playlists", self.api))
                    .bearer_auth(token)
                    .header("Idempotency-Key", &key)
                    .json(&json!({ "name": format!("{email}'s"), "track_ids": tracks }))
            })
            .await?;
        if status != StatusCode::CREATED {
            return None;
        }
        let id: Uuid = body["id"].as_str()?.parse().ok()?;
        let entries: Vec<(u64, String)> = (1..).zip(tracks.iter().cloned()).collect();
        self.ledger.with(|l| {
            l.playlists.insert(
                id,
                PlaylistLedger {
                    email: email.to_owned(),
                    next_entry: entries.len() as u64 + 1,
                    entries,
                    unanswered: None,
                    commands: 1,
                },
            )
        });
        Some(id)
    }

    /// One random edit of my playlist: add one to three tracks, move an entry or remove
    /// one; each one command, retried under one key, and noted in the ledger as answered.
    pub async fn edit_playlist(
        &self,
        token: &str,
        id: Uuid,
        tracks: &[String],
        pick: &mut impl FnMut(usize) -> usize,
    ) {
        let Some(mut list) = self.ledger.with(|l| {
            let p = &l.playlists[&id];
            p.unanswered.is_none().then(|| p.clone())
        }) else {
            return;
        };
        let key = Uuid::new_v4().to_string();
        let base = format!("{}/playlists/{id}", self.api);
        let len = list.entries.len();
        let (kind, request, after): (
            &'static str,
            Box<dyn Fn() -> RequestBuilder + Send + Sync>,
            _,
        ) = match pick(5) {
            0..=1 if len >= 2 => {
                let (from, to) = (pick(len), pick(len));
                let entry = list.entries[from].0;
                let mut after = list.entries.clone();
                let moved = after.remove(from);
                after.insert(to, moved);
                let (http, url) = (self.http.clone(), format!("{base}/entries/{entry}/move"));
                (
                    "pl-move",
                    Box::new(move || http.post(&url).json(&json!({ "to": to }))),
                    after,
                )
            }
            2 if len >= 1 => {
                let at = pick(len);
                let entry = list.entries[at].0;
                let mut after = list.entries.clone();
                after.remove(at);
                let (http, url) = (self.http.clone(), format!("{base}/entries/{entry}"));
                ("pl-remove", Box::new(move || http.delete(&url)), after)
            }
            _ => {
                let added: Vec<String> = (0..1 + pick(3))
                    .map(|_| tracks[pick(tracks.len())].clone())
                    .collect();
                let mut after = list.entries.clone();
                after.extend((list.next_entry..).zip(added.iter().cloned()));
                let (http, url) = (self.http.clone(), format!("{base}/tracks"));
                (
                    "pl-add",
                    Box::new(move || http.post(&url).json(&json!({ "track_ids": added }))),
                    after,
                )
            }
        };
        let answer = self
            .call(kind, || {
                request().bearer_auth(token).header("Idempotency-Key", &key)
            })
            .await;
        match answer {
            Some((StatusCode::OK, _)) => {
                if kind == "pl-add" {
                    list.next_entry += (after.len() - list.entries.len()) as u64;
                }
                list.entries = after;
                list.commands += 1;
            }
            // Refused as a whole (ADR 27: nothing half-applied).
            Some(_) => {}
            None => list.unanswered = Some(after),
        }
        self.ledger.with(|l| l.playlists.insert(id, list));
    }

    /// Asks for a signed URL and reads the first KiB through the stream role.
    pub async fn stream(&self, token: &str, track_id: &str) {
        let Some((StatusCode::OK, body)) = self
            .call("stream-url", || {
                self.http
                    .get(format!("{}/stream/{track_id}", self.api))
                    .bearer_auth(token)
                    .header("Accept", "application/json")
            })
            .await
        else {
            return;
        };
        let Some(url) = body["url"].as_str() else {
            return;
        };
        match self
            .http
            .get(url)
            .header("Range", "bytes=0-1023")
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                let bytes = response.bytes().await.map(|b| b.len()).unwrap_or(0);
                self.ledger.record("stream", status.as_u16(), "");
                if status == StatusCode::PARTIAL_CONTENT && bytes == 1024 {
                    self.ledger.with(|l| l.streamed += 1);
                }
            }
            Err(_) => self.ledger.record("stream", 0, ""),
        }
    }
}

/// A tiny xorshift generator: the load's choices need no quality, only variety.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Runs `users` virtual users until `stop`; each signs up once, then loops over
/// imports (at most `imports_each`), library reads, plays, stars, edits of its one
/// playlist and streams with a short pause between operations.
pub fn start(
    client: Client,
    users: usize,
    imports_each: usize,
    sources: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
    run_id: &str,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..users)
        .map(|vu| {
            let (client, sources, stop) = (client.clone(), sources.clone(), stop.clone());
            let email = format!("vu{vu}-{run_id}@faults.test");
            tokio::spawn(async move {
                let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ ((vu as u64 + 1) * 7919));
                // Spread the argon2-heavy sign-ups over the first seconds.
                tokio::time::sleep(Duration::from_millis(300 * vu as u64)).await;
                if !client.sign_up(&email).await {
                    return;
                }
                let Some(token) = client.sign_in(&email).await else {
                    return;
                };
                let mut tracks: Vec<String> = Vec::new();
                let mut imports = 0;
                let mut playlist: Option<Uuid> = None;
                while !stop.load(Ordering::Relaxed) {
                    match rng.below(10) {
                        0..=1 if imports < imports_each => {
                            imports += 1;
                            let source = &sources[rng.below(sources.len())];
                            client.import(&token, &email, source).await;
                        }
                        0..=4 => tracks = client.library(&token).await,
                        5..=6 if !tracks.is_empty() => {
                            let track = tracks[rng.below(tracks.len())].clone();
                            match (rng.below(4), playlist) {
                                (0, _) => client.play(&token, &email, &track).await,
                                (1, _) => {
                                    client.star(&token, &email, &track, rng.below(3) > 0).await
                                }
                                (_, None) => {
                                    playlist =
                                        client.create_playlist(&token, &email, &[track]).await
                                }
                                (_, Some(id)) => {
                                    client
                                        .edit_playlist(&token, id, &tracks, &mut |n| rng.below(n))
                                        .await
                                }
                            }
                        }
                        _ => {
                            if !tracks.is_empty() {
                                let track = tracks[rng.below(tracks.len())].clone();
                                client.stream(&token, &track).await;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(200 + rng.below(400) as u64)).await;
                }
            })
        })
        .collect()
}

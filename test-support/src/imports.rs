//! What the import tests (and the web and hostile-input tests, which import too) share:
//! an app with imports configured, signed-in users, and a fake YouTube Data API.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jukebox::app::Role;
use jukebox_nats::EventRecord;
use jukebox_projections::{Jobs, ReadModel, Tracks, UserLibrary};
use reqwest::Response;
use serde_json::{json, Value};

use crate::media::{files_under, MediaServer, Tone};
use crate::{spawn_app_with, S3sFs, TestApp};

pub const PASSWORD: &str = "correct horse battery";
pub const YOUTUBE_KEY: &str = "test-youtube-key";

/// A test app with imports set up, plus what it runs on.
pub struct ImportApp {
    pub app: TestApp,
    pub media: MediaServer,
    pub media_dir: tempfile::TempDir,
    pub objects: tempfile::TempDir,
    pub work: tempfile::TempDir,
    pub _s3: Option<S3sFs>,
    pub youtube: Option<FakeYoutube>,
}

/// Every role but the downloader: requested imports stay requested, so a test finishes
/// them by hand or looks at them before anything is fetched.
pub const ALL_BUT_DOWNLOADER: &[Role] = &[
    Role::Api,
    Role::Processor,
    Role::Relay,
    Role::Projector,
    Role::Reactor,
];

pub struct Options {
    pub roles: &'static [Role],
    pub s3: bool,
    pub youtube: bool,
    pub extra: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            roles: &[Role::All],
            s3: false,
            youtube: false,
            extra: Vec::new(),
        }
    }
}

pub async fn import_app(options: Options) -> ImportApp {
    let media_dir = tempfile::tempdir().unwrap();
    let objects = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let media = MediaServer::start(media_dir.path()).await;
    let mut vars: Vec<(&str, String)> = vec![
        ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
        ("OBJECT_STORE_DIR", objects.path().display().to_string()),
        ("IMPORT_WORK_DIR", work.path().display().to_string()),
        ("DOWNLOAD_CONCURRENCY", "2".into()),
        ("IMPORT_RETRY_BASE_MS", "200".into()),
        ("IMPORT_MAX_ATTEMPTS", "3".into()),
    ];
    let s3 = options.s3.then(S3sFs::start);
    if let Some(s3) = &s3 {
        vars.extend(s3.env("jukebox-test"));
    }
    let youtube = if options.youtube {
        Some(FakeYoutube::start().await)
    } else {
        None
    };
    if let Some(youtube) = &youtube {
        vars.extend([
            ("YOUTUBE_API_KEY", YOUTUBE_KEY.into()),
            ("YOUTUBE_API_BASE_URL", youtube.base.clone()),
        ]);
    }
    vars.extend(options.extra);
    let app = spawn_app_with(options.roles, &vars).await;
    ImportApp {
        app,
        media,
        media_dir,
        objects,
        work,
        _s3: s3,
        youtube,
    }
}

impl ImportApp {
    /// Makes a tone file in the media folder and returns its loopback URL.
    pub fn tone(&self, name: &str, tone: &Tone<'_>) -> String {
        self.media.tone(name, tone)
    }

    /// Puts arbitrary bytes in the media folder and returns its URL.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        self.media.file(name, bytes)
    }

    /// A user, signed up and signed in; returns the access token.
    /// A write with `token` after the latest position; notes the answer's position and
    /// returns its body, asserting a success.
    pub async fn write(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Value {
        let response = self
            .app
            .http
            .request(method, self.app.api(path))
            .bearer_auth(token)
            .header(crate::POSITION, self.app.latest())
            .json(&body)
            .send()
            .await
            .unwrap();
        self.app.saw(&response);
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    pub async fn user(&self, email: &str) -> String {
        let response = self.app.sign_up(email).await;
        assert_eq!(response.status(), StatusCode::CREATED, "sign-up of {email}");
        let response = self
            .app
            .http
            .post(self.app.api("/auth/signin"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "sign-in of {email}");
        self.app.saw(&response);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The bootstrap admin (`ADMIN_BOOTSTRAP_EMAIL`, with verification tokens exposed):
    /// signs up, verifies, signs in; returns the access token.
    pub async fn admin(&self, email: &str) -> String {
        let response = self.app.sign_up(email).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        let token = body["verification_token"].as_str().expect("exposed token");
        let response = self
            .app
            .http
            .post(self.app.api("/auth/verify-email"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        self.app.saw(&response);
        // The role is granted with the verification, in the write-side access state that
        // sign-in reads: the first sign-in has it.
        let response = self
            .app
            .http
            .post(self.app.api("/auth/signin"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        self.app.saw(&response);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["roles"], json!(["admin"]), "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST /songs/import` (remembering the answer's position).
    pub async fn import_url(&self, token: &str, url: &str) -> Response {
        let response = self
            .app
            .http
            .post(self.app.api("/songs/import"))
            .bearer_auth(token)
            .json(&json!({ "url": url }))
            .send()
            .await
            .unwrap();
        self.app.saw(&response);
        response
    }

    /// Imports `url` and returns the job id (asserting 202).
    pub async fn start_import(&self, token: &str, url: &str) -> String {
        let response = self.import_url(token, url).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(
            self.app.saw(&response).is_some(),
            "a 202 carries its position"
        );
        let body: Value = response.json().await.unwrap();
        body["job_id"].as_str().unwrap().to_owned()
    }

    /// A `GET` of `path` as `token`'s user after the latest position this test's writes
    /// had (if any), to send or to add to.
    pub fn read(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        let request = self.app.http.get(self.app.api(path)).bearer_auth(token);
        match self.app.try_latest() {
            Some(after) => request.header(crate::POSITION, after),
            None => request,
        }
    }

    /// `GET /jobs/{id}`, after the latest position this test's writes had (if any).
    pub async fn job(&self, token: &str, job_id: &str) -> Response {
        self.read(token, &format!("/jobs/{job_id}"))
            .send()
            .await
            .unwrap()
    }

    /// Waits until the job is completed or failed (60 s at most) and returns it, noting
    /// its position: later reads pass it. (Polls: the downloader's work answers no write
    /// of the test, so no position says when it ends.)
    pub async fn finished_job(&self, token: &str, job_id: &str) -> Value {
        for _ in 0..600 {
            let response = self.job(token, job_id).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or_default();
            assert_eq!(status, StatusCode::OK, "job {job_id}: {body}");
            if matches!(body["status"].as_str(), Some("completed" | "failed")) {
                self.app
                    .note(body["position"].as_str().expect("a job's position"));
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("job {job_id} did not finish");
    }

    /// The user id behind an access token, as `/auth/me` says it.
    pub async fn user_id(&self, token: &str) -> uuid::Uuid {
        let me: Value = self
            .app
            .http
            .get(self.app.api("/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        me["id"]
            .as_str()
            .or(me["user_id"].as_str())
            .or(me["user"]["id"].as_str())
            .expect("a user id in /auth/me")
            .parse()
            .unwrap()
    }

    /// The track ids in a user's library (the `library` read model), once it has applied
    /// this test's latest write.
    pub async fn library(&self, token: &str) -> Vec<String> {
        let user_id = self.user_id(token).await;
        self.app
            .applied_latest(&[ReadModel::of::<UserLibrary>()])
            .await;
        jukebox_projections::library::track_ids(self.app.pool(), user_id)
            .await
            .unwrap()
    }

    /// Returns once the `tracks` read model (which tests read directly) has applied this
    /// test's latest write.
    pub async fn tracks_applied(&self) {
        self.app.applied_latest(&[ReadModel::of::<Tracks>()]).await;
    }

    /// The events of one aggregate in the log, as (type, payload).
    pub async fn history(&self, aggregate_type: &str, id: &str) -> Vec<(String, Value)> {
        let rows: Vec<EventRecord> = sqlx::query_as(&format!(
            "SELECT {} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
            EventRecord::COLUMNS
        ))
        .bind(aggregate_type)
        .bind(id)
        .fetch_all(self.app.pool())
        .await
        .unwrap();
        rows.into_iter()
            .map(|r| (r.event_type, r.payload))
            .collect()
    }

    /// Every file left in the object folder and the job folder (temp files, partial
    /// objects, job folders).
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut left = files_under(self.work.path());
        left.extend(files_under(self.objects.path()).into_iter().filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        }));
        left
    }

    pub async fn cleanup(self) {
        self.app.cleanup().await;
    }
}

/// No job of this app is still in progress in the `jobs` read model, once it has applied
/// this test's latest write (a finished job's, with `finished_job`).
pub async fn nothing_in_progress(app: &TestApp) {
    app.applied_latest(&[ReadModel::of::<Jobs>()]).await;
    let (busy,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM jobs WHERE status NOT IN ('completed', 'failed')")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(busy, 0, "jobs left in progress");
}

pub async fn error_of(response: Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The YouTube Data API v3, as far as search uses it: `search` and `videos`. Queries
/// steer it: `quota` answers 403 quotaExceeded, `broken` 500, `garbage` a body that is
/// not the API's; a wrong key is 400 keyInvalid.
pub struct FakeYoutube {
    pub base: String,
    pub calls: Arc<Mutex<Vec<HashMap<String, String>>>>,
    task: tokio::task::JoinHandle<()>,
}

pub const FAKE_VIDEOS: [(&str, &str, &str, &str); 2] = [
    ("aaaaaaaaaaa", "First Song", "Channel One", "PT3M33S"),
    ("bbbbbbbbbbb", "Second Song", "Channel Two", "PT1H2M"),
];

impl FakeYoutube {
    pub async fn start() -> Self {
        type Calls = Arc<Mutex<Vec<HashMap<String, String>>>>;
        fn error(status: StatusCode, reason: &str, message: &str) -> axum::response::Response {
            (
                status,
                axum::Json(json!({"error": {
                    "code": status.as_u16(),
                    "message": message,
                    "errors": [{"reason": reason, "message": message}],
                }})),
            )
                .into_response()
        }
        fn key_ok(query: &HashMap<String, String>) -> bool {
            query.get("key").map(String::as_str) == Some(YOUTUBE_KEY)
        }
        async fn search(
            State(calls): State<Calls>,
            Query(query): Query<HashMap<String, String>>,
        ) -> axum::response::Response {
            calls.lock().unwrap().push(query.clone());
            if !key_ok(&query) {
                return error(StatusCode::BAD_REQUEST, "keyInvalid", "API key not valid.");
            }
            match query.get("q").map(String::as_str) {
                Some("quota") => {
                    return error(StatusCode::FORBIDDEN, "quotaExceeded", "quota exceeded")
                }
                Some("broken") => {
                    return error(StatusCode::INTERNAL_SERVER_ERROR, "backendError", "oops")
                }
                Some("garbage") => {
                    return (StatusCode::OK, "<html>not json</html>").into_response()
                }
                Some("badkey") => {
                    return error(StatusCode::BAD_REQUEST, "keyInvalid", "API key not valid.")
                }
                _ => {}
            }
            let items: Vec<Value> = FAKE_VIDEOS
                .iter()
                .map(|(id, title, channel, _)| {
                    json!({
                        "kind": "youtube#searchResult",
                        "id": {"kind": "youtube#video", "videoId": id},
                        "snippet": {
                            "title": title,
                            "channelTitle": channel,
                            "thumbnails": {"high": {"url": format!("https://i.ytimg.test/{id}.jpg")}},
                        }
                    })
                })
                .collect();
            axum::Json(json!({"kind": "youtube#searchListResponse", "items": items}))
                .into_response()
        }
        async fn videos(
            State(calls): State<Calls>,
            Query(query): Query<HashMap<String, String>>,
        ) -> axum::response::Response {
            calls.lock().unwrap().push(query.clone());
            if !key_ok(&query) {
                return error(StatusCode::BAD_REQUEST, "keyInvalid", "API key not valid.");
            }
            let wanted: Vec<&str> = query
                .get("id")
                .map(|ids| ids.split(',').collect())
                .unwrap_or_default();
            let items: Vec<Value> = FAKE_VIDEOS
                .iter()
                .filter(|(id, ..)| wanted.contains(id))
                .map(|(id, _, _, duration)| json!({"id": id, "contentDetails": {"duration": duration}}))
                .collect();
            axum::Json(json!({"items": items})).into_response()
        }
        let calls: Calls = Arc::default();
        let app = axum::Router::new()
            .route("/youtube/v3/search", axum::routing::get(search))
            .route("/youtube/v3/videos", axum::routing::get(videos))
            .with_state(calls.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/youtube/v3", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, calls, task }
    }
}

impl Drop for FakeYoutube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A tone like the pipeline tests use: noise + 440 Hz, tagged, with a cover.
pub fn tone(seconds: u32) -> Tone<'static> {
    Tone {
        seconds,
        title: "Loopback Sunrise",
        artist: "The Test Tones",
        cover: true,
    }
}

/// What `StoreTrack` stores for a track with no tags: a three-minute AAC file under the
/// track's key, no cover.
pub fn stored_track(track_id: &jukebox_domain::TrackId) -> jukebox_domain::StoredTrack {
    jukebox_domain::StoredTrack {
        track_id: track_id.clone(),
        object_key: format!("tracks/{}.m4a", track_id.as_str()),
        size: 5_000_000,
        duration_ms: 180_000,
        codec: "aac".into(),
        bitrate: 256_000,
        title: None,
        artist: None,
        album: None,
        artists: Vec::new(),
        year: None,
        has_cover: false,
        origin: format!("https://example.com/{}", track_id.as_str()),
        cover: None,
    }
}

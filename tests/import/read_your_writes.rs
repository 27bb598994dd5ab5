//! Read-after-write (issue 15): a client that passes the position of its own write back
//! (`Jukebox-Position`) sees it, and the server's own flows (a completed job, a removal)
//! answer only once the read models show them. Each flow runs many times in a row with
//! no retry and no wait for the projections: one stale read fails the test.
//!
//! `JUKEBOX_LONG=1` runs each flow 200 times; the default is shorter for CI
//! (`RYW_ROUNDS` overrides both). Run it beside a CPU hog to load the machine.

use jukebox::app::Role;
use jukebox_projections::{
    Accounts, AdminUsers, AuthSessions, Jobs, ProjectionRunner, Tracks, UserLibrary,
};
use reqwest::{header, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::helpers::{import_app, tone, ImportApp, Options, PASSWORD};

const POSITION: &str = "jukebox-position";
const SECRET: &str = "stream-secret-for-tests-only-0123456789";

fn rounds(short: usize) -> usize {
    if let Some(n) = std::env::var("RYW_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if std::env::var("JUKEBOX_LONG").is_ok_and(|v| v == "1") {
        200
    } else {
        short
    }
}

/// The position a write's answer carries, in its header and (same value) its body.
fn position_of(response: &reqwest::Response) -> String {
    let position = response
        .headers()
        .get(POSITION)
        .unwrap_or_else(|| panic!("{} without Jukebox-Position", response.url()))
        .to_str()
        .unwrap()
        .to_owned();
    assert!(position.split_once('.').is_some(), "{position}");
    position
}

async fn app(extra: &[(&'static str, &str)]) -> ImportApp {
    let mut vars = vec![
        ("STREAM_SIGNING_SECRET", SECRET.into()),
        // A stale read must fail the test, not a slow one: wait as long as it takes.
        ("READ_WAIT_MS", "30000".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    import_app(Options {
        extra: vars,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn sign_up_verify_sign_in_then_me_is_verified_every_time() {
    let app = app(&[
        ("EXPOSE_VERIFICATION_TOKEN", "1"),
        ("EMAIL_VERIFY_REQUIRED", "1"),
    ])
    .await;
    let http = &app.app.http;
    let n = rounds(20);
    for round in 0..n {
        let email = format!("ryw{round}@example.com");
        let signed_up = app.app.sign_up(&email).await;
        assert_eq!(signed_up.status(), StatusCode::CREATED, "round {round}");
        position_of(&signed_up);
        let body: Value = signed_up.json().await.unwrap();
        let token = body["verification_token"].as_str().unwrap();

        let verified = http
            .post(app.app.api("/auth/verify-email"))
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(verified.status(), StatusCode::OK, "round {round}");
        let after_verify = position_of(&verified);
        let body: Value = verified.json().await.unwrap();
        assert_eq!(
            body["position"],
            after_verify.as_str(),
            "body and header agree"
        );

        let signed_in = http
            .post(app.app.api("/auth/signin"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), StatusCode::OK, "round {round}");
        let after_sign_in = position_of(&signed_in);
        let body: Value = signed_in.json().await.unwrap();
        let access = body["access_token"].as_str().unwrap();

        let me: Value = http
            .get(app.app.api("/auth/me"))
            .bearer_auth(access)
            .header(POSITION, &after_sign_in)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["verified"], true, "round {round} of {n}: {me}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn import_is_listed_and_streams_then_delete_refuses_both_every_time() {
    let app = app(&[]).await;
    let http = &app.app.http;
    let alice = app.user("alice@example.com").await;
    let n = rounds(5);
    // One tone, served under a new name each round: a new source, so a real download and
    // transcode every time, without making a tone per round.
    let first = app.tone("ryw-0.mp3", &tone(2));
    let bytes = std::fs::read(app.media_dir.path().join("ryw-0.mp3")).unwrap();
    for round in 0..n {
        let url = if round == 0 {
            first.clone()
        } else {
            app.file(&format!("ryw-{round}.mp3"), &bytes)
        };
        let accepted = app.import_url(&alice, &url).await;
        assert_eq!(accepted.status(), StatusCode::ACCEPTED, "round {round}");
        let requested = position_of(&accepted);
        let body: Value = accepted.json().await.unwrap();
        let job_id = body["job_id"].as_str().unwrap().to_owned();

        // The job exists from the first read that passes the request's position; then
        // the downloader's work is awaited (that is not a read model catching up).
        let job = loop {
            let response = http
                .get(app.app.api(&format!("/jobs/{job_id}")))
                .bearer_auth(&alice)
                .header(POSITION, &requested)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "round {round}");
            let job: Value = response.json().await.unwrap();
            match job["status"].as_str() {
                Some("completed") => break job,
                Some("failed") => panic!("round {round}: {job}"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        let song = job["track_id"].as_str().unwrap().to_owned();

        // "completed" means listed and streamable for its owner, with no position passed.
        let listed: Value = http
            .get(app.app.api("/library?limit=200"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == song.as_str() || i["track_id"] == song.as_str()),
            "round {round}: {song} not listed: {listed}"
        );
        let issued = http
            .get(app.app.api(&format!("/stream/{}", escape(&song))))
            .bearer_auth(&alice)
            .header(header::ACCEPT, "application/json")
            .header(POSITION, job["position"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(issued.status(), StatusCode::OK, "round {round}");
        let signed: Value = issued.json().await.unwrap();
        let signed = on_stream_role(&app, signed["url"].as_str().unwrap());
        let streamed = http
            .get(signed.clone())
            .header(header::RANGE, "bytes=0-1023")
            .send()
            .await
            .unwrap();
        assert_eq!(
            streamed.status(),
            StatusCode::PARTIAL_CONTENT,
            "round {round}"
        );
        assert_eq!(streamed.bytes().await.unwrap().len(), 1024);

        // A removal answers once the library no longer has it: the list and both the
        // API and the stream role refuse, with no position passed.
        let removed = http
            .delete(app.app.api(&format!("/library/{}", escape(&song))))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(removed.status(), StatusCode::OK, "round {round}");
        let after_remove = position_of(&removed);
        let listed: Value = http
            .get(app.app.api("/library?limit=200"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == song.as_str() || i["track_id"] == song.as_str()),
            "round {round}: {song} still listed: {listed}"
        );
        let refused = http
            .get(app.app.api(&format!("/stream/{}", escape(&song))))
            .bearer_auth(&alice)
            .header(header::ACCEPT, "application/json")
            .header(POSITION, &after_remove)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "round {round}");
        let refused = http.get(signed).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "round {round}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_position_is_checked_and_a_read_model_that_cannot_catch_up_answers_503() {
    // Every role but the projectors; the test runs the projectors itself, so that
    // `library` can be held back while the others run.
    let app = import_app(Options {
        roles: &[
            Role::Api,
            Role::Stream,
            Role::Processor,
            Role::Relay,
            Role::Downloader,
        ],
        extra: vec![
            ("READ_WAIT_MS", "1000".into()),
            ("STREAM_SIGNING_SECRET", SECRET.into()),
        ],
        ..Default::default()
    })
    .await;
    let services = &app.app.services;
    let runner = ProjectionRunner::new(
        services.pool.clone(),
        services.nats.clone(),
        services.topology.clone(),
    );
    let stop = CancellationToken::new();
    let mut projectors = tokio::task::JoinSet::new();
    projectors.spawn(runner.clone().run::<Accounts>(stop.clone()));
    projectors.spawn(runner.clone().run::<AuthSessions>(stop.clone()));
    projectors.spawn(runner.clone().run::<AdminUsers>(stop.clone()));
    projectors.spawn(runner.clone().run::<Jobs>(stop.clone()));
    projectors.spawn(runner.clone().run::<Tracks>(stop.clone()));

    let http = &app.app.http;
    let alice = app.user("alice@example.com").await;
    for bad in [
        "x",
        "1",
        "1.",
        ".1",
        "1.2.3",
        "-1.2",
        "99999999999999999999999.1",
    ] {
        let response = http
            .get(app.app.api("/jobs"))
            .query(&[("after", bad)])
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "after={bad}");
        let response = http
            .get(app.app.api("/jobs"))
            .header(POSITION, bad)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "header {bad}");
    }

    let url = app.tone("held.mp3", &tone(2));
    let accepted = app.import_url(&alice, &url).await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let requested = position_of(&accepted);
    let job_id = accepted.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The library (stopped) holds no event of the request: reads of it are not held up.
    let listed = http
        .get(app.app.api("/library"))
        .header(POSITION, &requested)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.status(),
        StatusCode::OK,
        "the library does not consume imports"
    );

    // The job finishes; with the library behind it is shown `storing`, not `completed`.
    let job = loop {
        let response = http
            .get(app.app.api(&format!("/jobs/{job_id}")))
            .header(POSITION, &requested)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let job: Value = response.json().await.unwrap();
        assert_ne!(
            job["status"], "completed",
            "completed before the library has it: {job}"
        );
        assert_ne!(job["status"], "failed", "{job}");
        let (done,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM jobs WHERE job_id = $1::uuid AND status = 'completed')",
        )
        .bind(&job_id)
        .fetch_one(app.app.pool())
        .await
        .unwrap();
        if done {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let completed_at = job["position"].as_str().unwrap().to_owned();
    let job: Value = app.job(&alice, &job_id).await.json().await.unwrap();
    assert_eq!(job["status"], "storing", "{job}");
    assert!(job["track_id"].is_null(), "{job}");

    // A read of the library after the completion waits its bound, then 503 +
    // Retry-After: never the stale (empty) list.
    for request in [
        http.get(app.app.api("/library")),
        http.get(app.app.api("/stream/url%3Aanything"))
            .header(header::ACCEPT, "application/json"),
    ] {
        let behind = request
            .header(POSITION, &completed_at)
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap();
        assert_eq!(behind.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(behind.headers().contains_key(header::RETRY_AFTER));
    }

    // The library projector starts: the same read answers, and the job is completed.
    projectors.spawn(runner.clone().run::<UserLibrary>(stop.clone()));
    let listed = http
        .get(app.app.api("/library"))
        .query(&[("after", &completed_at)])
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    let job: Value = app.job(&alice, &job_id).await.json().await.unwrap();
    assert_eq!(job["status"], "completed", "{job}");

    stop.cancel();
    while let Some(stopped) = projectors.join_next().await {
        stopped.unwrap().unwrap();
    }
    app.cleanup().await;
}

fn on_stream_role(app: &ImportApp, issued: &str) -> url::Url {
    let addr = app.app.running.as_ref().unwrap().stream_addr.unwrap();
    let mut url = url::Url::parse(issued).unwrap();
    url.set_host(Some(&addr.ip().to_string())).unwrap();
    url.set_port(Some(addr.port())).unwrap();
    url
}

fn escape(song: &str) -> String {
    url::form_urlencoded::byte_serialize(song.as_bytes()).collect::<String>()
}

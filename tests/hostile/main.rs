//! Hostile input (issue 9): schemathesis fuzzes the running API from its own
//! `/openapi.json`, signed in as an admin and as a plain user, and fails on any 5xx, any
//! answer that does not match the document (status, content type, headers, body), any
//! input the document forbids that the API accepts, and any route that ignores its auth.
//!
//! Real roles on real Postgres and NATS; the fake YouTube Data API is the only stand-in.
//! `JUKEBOX_LONG=1` runs many more examples per operation (see docs/reliability.md).

mod rest;
mod values;

use std::process::Stdio;
use std::time::{Duration, Instant};

use jukebox_test_support::imports::{import_app, ImportApp, Options, ALL_BUT_DOWNLOADER};
use jukebox_test_support::tool;
use serde_json::Value;

/// Fuzzing budget per API operation, and a wall-clock cap on each run.
struct Budget {
    examples: u32,
    cap: Duration,
}

impl Budget {
    fn from_env() -> Self {
        if std::env::var("JUKEBOX_LONG").is_ok_and(|v| v == "1") {
            Self {
                examples: 1000,
                cap: Duration::from_secs(3600),
            }
        } else {
            Self {
                examples: 40,
                cap: Duration::from_secs(120),
            }
        }
    }
}

/// Every check but `positive_data_acceptance`: a value the schema allows may still be
/// refused on facts it cannot state (a cursor or token the server never issued, an
/// address without a dot in its domain, a source yt-dlp does not know).
const EXCLUDED_CHECKS: &str = "positive_data_acceptance";

/// Runs schemathesis against `base` with `token`, on the operations `filter` selects.
async fn schemathesis(
    who: &str,
    base: &str,
    token: &str,
    filter: &[&str],
    budget: &Budget,
) -> (bool, String) {
    let mut command = tokio::process::Command::new(tool("schemathesis"));
    command
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--url", base])
        .args(["--checks", "all", "--exclude-checks", EXCLUDED_CHECKS])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", &budget.examples.to_string()])
        // One worker: with two, hypothesis parses lambda sources on two threads at once,
        // and Debian 12's Python 3.11.2 (whose AST converter shares its depth counter
        // between threads; later CPython releases fixed it) failed the run with "AST
        // constructor recursion depth mismatch", an error of the tool, not of the API.
        .args(["--workers", "1"])
        .args(["--request-timeout", "20"])
        // Hypothesis' own health checks (data too slow to generate on a busy machine) say
        // nothing about the API; they would only make the test flaky.
        .args(["--suppress-health-check", "all"])
        // The same inputs on every run: a failure here reproduces.
        .args(["--seed", "9"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        // A JUnit report per run, under target/tmp/schemathesis/, for people to read.
        .args(["--report", "junit", "--report-dir"])
        .arg(format!(
            "{}/schemathesis/{who}",
            env!("CARGO_TARGET_TMPDIR")
        ))
        .args(filter)
        .env("NO_COLOR", "1")
        // Its example database (.schemathesis/) goes there, not into the checkout.
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command.spawn().expect("schemathesis starts");
    let output = tokio::time::timeout(budget.cap, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis ran past {:?}", budget.cap))
        .expect("schemathesis runs");
    let text = format!(
        "{}\n{}\n(schemathesis took {:.0?})",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        started.elapsed()
    );
    (output.status.success(), text)
}

async fn assert_signed_in(app: &ImportApp, token: &str) {
    let me = app
        .app
        .http
        .get(app.app.api("/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = me.status();
    assert_eq!(status, 200, "{}", me.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_hostile_input_with_4xx_as_its_document_says() {
    let budget = Budget::from_env();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let admin_email = "admin@hostile.test";
    let app = import_app(Options {
        // No downloader: requested imports stay requested, nothing is fetched.
        roles: ALL_BUT_DOWNLOADER,
        youtube: true,
        extra: vec![
            ("ADMIN_BOOTSTRAP_EMAIL", admin_email.into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
            (
                "STREAM_SIGNING_SECRET",
                "stream-secret-stream-secret-0123456789".into(),
            ),
            // The long mode runs past the default 15 minutes of an access token.
            ("ACCESS_TOKEN_TTL_SECS", "14400".into()),
            // Google sign-in configured against a closed port: login redirects, and a
            // callback is refused on its state before any request would leave.
            ("GOOGLE_CLIENT_ID", "hostile-client".into()),
            ("GOOGLE_CLIENT_SECRET", "hostile-secret".into()),
            (
                "GOOGLE_REDIRECT_URL",
                "http://127.0.0.1:9/auth/google/callback".into(),
            ),
            ("GOOGLE_AUTH_URL", "http://127.0.0.1:9/auth".into()),
            ("GOOGLE_TOKEN_URL", "http://127.0.0.1:9/token".into()),
            ("GOOGLE_JWKS_URL", "http://127.0.0.1:9/jwks".into()),
            // A discovered provider whose issuer does not answer: its login is a 503.
            ("OIDC_ID", "hostile".into()),
            ("OIDC_ISSUER", "http://127.0.0.1:9/realms/hostile".into()),
            ("OIDC_CLIENT_ID", "hostile-client".into()),
            ("OIDC_CLIENT_SECRET", "hostile-secret".into()),
        ],
        ..Options::default()
    })
    .await;
    let admin = app.admin(admin_email).await;
    let user = app.user("user@hostile.test").await;
    let base = app.app.api("");

    // The document is served and names every route family.
    let document: Value = app
        .app
        .http
        .get(app.app.api("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/auth/signin",
        "/auth/oidc/{provider}/login",
        "/songs/import",
        "/jobs/{job_id}/events",
        "/library",
        "/stream/{song_id}",
        "/admin/audit/{aggregate_type}/{aggregate_id}",
    ] {
        assert!(
            document["paths"][path].is_object(),
            "{path} is not documented"
        );
    }

    // First as a plain user, on the operations that answer them differently (the admin
    // routes' 403, their own library and jobs); then as the admin, every operation. In
    // that order because the admin's run may disable the user: it learns user ids from
    // `GET /admin/users`. It cannot disable or demote the admin itself (409).
    // "Sign out everywhere else" ends the very session the fuzzer signs its requests with
    // (that is what it is for): it gets its own run at the end.
    let user_filter = [
        "--include-path-regex",
        "^/(admin|library|jobs|stream|me)",
        "--exclude-path",
        SIGN_OUT_OTHERS,
    ];
    let (user_ok, user_report) = schemathesis("user", &base, &user, &user_filter, &budget).await;
    println!("--- as a plain user ---\n{user_report}");
    assert!(user_ok, "schemathesis failed as a user:\n{user_report}");
    // Signed in throughout: a token that stopped working part-way would have turned the
    // rest of the run into 401s, which the document allows.
    assert_signed_in(&app, &user).await;
    // The jobs SSE stream of a real job (the admin's run makes some, and learns their ids)
    // stays open until the job ends, and without a downloader none does: the user's run
    // covers that route (their job ids are all unknown, so each answer ends).
    let admin_filter = [
        "--exclude-path",
        "/jobs/{job_id}/events",
        "--exclude-path",
        SIGN_OUT_OTHERS,
    ];
    let (admin_ok, admin_report) =
        schemathesis("admin", &base, &admin, &admin_filter, &budget).await;
    println!("--- as the admin ---\n{admin_report}");
    assert!(
        admin_ok,
        "schemathesis failed as the admin:\n{admin_report}"
    );
    assert_signed_in(&app, &admin).await;
    // Last, the operation that ends the fuzzer's session: its first valid call answers a
    // new session and ends this one, so every later call is a documented 401.
    let only = ["--include-path", SIGN_OUT_OTHERS];
    let (ok, report) = schemathesis("user-sign-out", &base, &user, &only, &budget).await;
    println!("--- signing out everywhere else ---\n{report}");
    assert!(ok, "schemathesis failed on {SIGN_OUT_OTHERS}:\n{report}");
    app.cleanup().await;
}

const SIGN_OUT_OTHERS: &str = "/me/sessions/sign-out-others";

/// What schemathesis found, pinned down: each of these was a 500, a wrong answer or a
/// lock-out before it was fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_fuzzer_found_stays_fixed() {
    let admin_email = "admin@found.test";
    let app = import_app(Options {
        roles: ALL_BUT_DOWNLOADER,
        youtube: true,
        extra: vec![
            ("ADMIN_BOOTSTRAP_EMAIL", admin_email.into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Options::default()
    })
    .await;
    let admin = app.admin(admin_email).await;
    let user = app.user("user@found.test").await;
    let http = &app.app.http;
    let code = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };

    // A NUL character in text that reaches Postgres: 400, not 500.
    for (token, path) in [(&user, "/library?q=a%00b"), (&admin, "/admin/jobs?q=%00")] {
        let response = http
            .get(app.app.api(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            code(response).await,
            (400, "nul_character".into()),
            "{path}"
        );
    }

    // An Idempotency-Key names one request of one kind: the same key on another route is
    // another command, not the first one's answer (this removal used to answer 200 with
    // the import's outcome).
    let import = http
        .post(app.app.api("/songs/import"))
        .bearer_auth(&user)
        .header("Idempotency-Key", "same-key")
        .json(&serde_json::json!({ "video_id": "aaaaaaaaaaa" }))
        .send()
        .await
        .unwrap();
    assert_eq!(import.status(), 202);
    for _ in 0..2 {
        // The retry is answered from the stored outcome (JetStream drops its publish).
        let removal = http
            .delete(app.app.api("/library/yt:bbbbbbbbbbb"))
            .bearer_auth(&user)
            .header("Idempotency-Key", "same-key")
            .send()
            .await
            .unwrap();
        assert_eq!(code(removal).await, (404, "not_in_library".into()));
    }

    // A tab is not printable ASCII.
    let response = http
        .delete(app.app.api("/library/yt:bbbbbbbbbbb"))
        .bearer_auth(&user)
        .header("Idempotency-Key", "a\tb")
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(response).await,
        (400, "invalid_idempotency_key".into())
    );

    // An admin cannot disable or demote themselves (the fuzzer did, mid-run).
    let me: Value = http
        .get(app.app.api("/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let own = me["id"].as_str().unwrap();
    for request in [
        http.post(app.app.api(&format!("/admin/users/{own}/disable"))),
        http.delete(app.app.api(&format!("/admin/users/{own}/admin"))),
    ] {
        let response = request.bearer_auth(&admin).send().await.unwrap();
        assert_eq!(code(response).await, (409, "own_account".into()));
    }
    assert_signed_in(&app, &admin).await;
    app.cleanup().await;
}

//! Admin views (issue 5): users, songs and jobs for admins only (403 for everyone else),
//! and the audit replay from the Postgres log.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{error_of, import_app, ImportApp, Options, PASSWORD};
use crate::library::{video, Seeder, ROLES};
use jukebox_test_support::POSITION;

async fn admin_app() -> ImportApp {
    import_app(Options {
        roles: ROLES,
        extra: vec![
            ("ADMIN_BOOTSTRAP_EMAIL", "admin@example.com".into()),
            ("EXPOSE_VERIFICATION_TOKEN", "1".into()),
        ],
        ..Default::default()
    })
    .await
}

/// `GET {path}`, passing the latest position the test's writes had.
async fn get(app: &ImportApp, token: Option<&str>, path: &str) -> reqwest::Response {
    let mut request = app.app.http.get(app.app.api(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(after) = app.app.try_latest() {
        request = request.header(POSITION, after);
    }
    request.send().await.unwrap()
}

async fn ok(app: &ImportApp, token: &str, path: &str) -> Value {
    let response = get(app, Some(token), path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn admin_lists_answer_admins_only_with_filters() {
    let app = admin_app().await;
    let seeder = Seeder::new(&app).await;
    let admin = app.admin("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (alice_id, bob_id) = (app.user_id(&alice).await, app.user_id(&bob).await);
    let shared = seeder
        .import(alice_id, &video(1), "Shared", Some("Both"), 60)
        .await;
    seeder.import(bob_id, &video(1), "Shared", None, 60).await;
    let own = seeder
        .import(bob_id, &video(2), "Only Bob", Some("Bob"), 30)
        .await;
    // A job that fails, as the downloader records it.
    let failed_job = Uuid::now_v7();
    seeder
        .send(
            Some(alice_id),
            jukebox_domain::Command::RequestImport {
                job_id: failed_job,
                user_id: alice_id,
                source: jukebox_domain::SourceRef::url("https://example.com/broken").unwrap(),
            },
        )
        .await;
    seeder
        .send(
            None,
            jukebox_domain::Command::FailImport {
                job_id: failed_job,
                code: "not_audio".into(),
                reason: "the file has no audio stream".into(),
            },
        )
        .await;

    // Everyone else: 403 (signed in) or 401 (not).
    for path in ["/admin/users", "/admin/songs", "/admin/jobs"] {
        for token in [&alice, &bob] {
            let (status, code, _) = error_of(get(&app, Some(token), path).await).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::FORBIDDEN, "not_admin"),
                "{path}"
            );
        }
        assert_eq!(
            get(&app, None, path).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let path = format!("/admin/audit/user/{alice_id}");
    let (status, _, _) = error_of(get(&app, Some(&alice), &path).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Users: text filter and paging.
    let users = ok(&app, &admin, "/admin/users?q=ALICE").await;
    let emails: Vec<&str> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com"]);
    let first = ok(&app, &admin, "/admin/users?limit=2").await;
    let rest = ok(&app, &admin, "/admin/users?limit=2&offset=2").await;
    assert_eq!(first["users"].as_array().unwrap().len(), 2);
    assert_eq!(rest["users"].as_array().unwrap().len(), 1);

    // Songs: the catalog with how many libraries hold each track.
    let songs = ok(&app, &admin, "/admin/songs").await;
    let songs = songs["songs"].as_array().unwrap();
    assert_eq!(songs.len(), 2);
    let by_id = |id: &str| songs.iter().find(|s| s["track_id"] == id).unwrap().clone();
    let s = by_id(&shared);
    assert_eq!(s["libraries"], 2);
    assert_eq!(s["codec"], "aac");
    assert_eq!(s["bitrate"], 256_000);
    assert_eq!(s["duration_ms"], 60_000);
    assert_eq!(s["object_key"], format!("tracks/{shared}.m4a"));
    assert!(s["source"].as_str().unwrap().contains("youtube.com"));
    assert!(s["size"].as_i64().unwrap() > 0);
    assert_eq!(by_id(&own)["libraries"], 1);
    let only = ok(&app, &admin, "/admin/songs?q=only").await;
    assert_eq!(only["songs"].as_array().unwrap().len(), 1);

    // Jobs: filter by status, user and text.
    let failed = ok(&app, &admin, "/admin/jobs?status=failed").await;
    let failed = failed["jobs"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["job_id"], failed_job.to_string());
    assert_eq!(failed[0]["error"]["code"], "not_audio");
    assert_eq!(failed[0]["requester"]["email"], "alice@example.com");
    assert_eq!(failed[0]["source"]["kind"], "url");
    assert!(failed[0]["duration_ms"].is_i64());
    let bobs = ok(&app, &admin, &format!("/admin/jobs?user={bob_id}")).await;
    assert_eq!(bobs["jobs"].as_array().unwrap().len(), 2);
    let completed = ok(&app, &admin, "/admin/jobs?status=completed").await;
    assert_eq!(completed["jobs"].as_array().unwrap().len(), 3);
    let broken = ok(&app, &admin, "/admin/jobs?q=BROKEN").await;
    assert_eq!(broken["jobs"].as_array().unwrap().len(), 1);
    assert!(ok(&app, &admin, "/admin/jobs?status=running").await["jobs"]
        .as_array()
        .unwrap()
        .is_empty());

    for (path, code) in [
        ("/admin/jobs?status=done", "invalid_status"),
        ("/admin/jobs?user=bob", "invalid_user_id"),
        ("/admin/users?limit=0", "invalid_limit"),
        ("/admin/songs?offset=-1", "invalid_offset"),
        ("/admin/audit/user/x?as_of=yesterday", "invalid_as_of"),
        ("/admin/audit/correlation/nope", "invalid_correlation_id"),
    ] {
        let (status, got, _) = error_of(get(&app, Some(&admin), path).await).await;
        assert_eq!(
            (status, got.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, code),
            "{path}"
        );
    }
    let (status, _, _) = error_of(get(&app, Some(&admin), "/admin/audit/nope/x").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}

#[tokio::test]
async fn audit_replays_a_user_as_of_before_and_after_verification() {
    let app = admin_app().await;
    let admin = app.admin("admin@example.com").await;
    let correlation = Uuid::now_v7();
    let response = app
        .app
        .http
        .post(app.app.api("/auth/signup"))
        .header("x-correlation-id", correlation.to_string())
        .json(&json!({ "email": "carol@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let carol: Uuid = body["user_id"].as_str().unwrap().parse().unwrap();
    let token = body["verification_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let (before,): (time::OffsetDateTime,) = sqlx::query_as("SELECT now()")
        .fetch_one(app.app.pool())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let verified = app
        .app
        .http
        .post(app.app.api("/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    app.app.position_of(&verified);

    let path = format!("/admin/audit/user/{carol}");
    let now = ok(&app, &admin, &path).await;
    let types: Vec<&str> = now["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["UserSignedUp", "VerificationIssued", "EmailVerified"]
    );
    assert_eq!(now["state"]["verified"], true);
    assert_eq!(now["state"]["email"], "carol@example.com");
    let first = &now["events"][0];
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["correlation_id"], correlation.to_string());
    assert!(first["command_id"].is_string() && first["recorded_at"].is_string());
    // The verification was issued by Carol's request, not an admin's.
    assert!(now["events"][2]["command_id"].is_string());

    let as_of = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let then = ok(
        &app,
        &admin,
        &format!("{path}?as_of={}", as_of.replace('+', "%2B")),
    )
    .await;
    assert_eq!(then["state"]["verified"], false);
    assert_eq!(then["events"].as_array().unwrap().len(), 2);
    assert_eq!(then["version"], 2);

    // One request's events across aggregates: the email claim and the user.
    let request = ok(
        &app,
        &admin,
        &format!("/admin/audit/correlation/{correlation}"),
    )
    .await;
    let aggregates: Vec<&str> = request["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["aggregate_type"].as_str().unwrap())
        .collect();
    assert!(
        aggregates.starts_with(&["email_claim", "user"]),
        "{aggregates:?}"
    );

    // No credential anywhere: not the password hash, not the token or its hash. (The
    // audit reads the log; the hash is the write side's, in `access_users`.)
    let (hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM access_users WHERE user_id = $1")
            .bind(carol)
            .fetch_one(app.app.pool())
            .await
            .unwrap();
    for body in [&now, &then, &request] {
        let text = body.to_string();
        assert!(!text.contains(&hash), "a password hash in {text}");
        assert!(!text.contains("$argon2"), "{text}");
        assert!(!text.contains(&token), "a token in {text}");
        assert!(!text.contains(PASSWORD));
    }
    let (token_hash,): (String,) = sqlx::query_as(
        "SELECT payload -> 'VerificationIssued' ->> 'token_hash' FROM events
         WHERE aggregate_id = $1 AND event_type = 'VerificationIssued'",
    )
    .bind(carol.to_string())
    .fetch_one(app.app.pool())
    .await
    .unwrap();
    assert!(!now.to_string().contains(&token_hash));
    app.cleanup().await;
}

#[tokio::test]
async fn an_admin_grants_and_revokes_the_admin_role_and_others_cannot() {
    let app = admin_app().await;
    let admin = app.admin("admin@example.com").await;
    let alice = app.user("alice@example.com").await;
    let alice_id = app.user_id(&alice).await;
    let http = &app.app.http;
    let role_url = app.app.api(&format!("/admin/users/{alice_id}/admin"));
    let roles_of = |body: Value| body["roles"].clone();

    // A non-admin may not grant (not even to themselves).
    let refused = http
        .post(&role_url)
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let granted = http
        .post(&role_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::OK);
    // Alice's token now carries admin rights (her account row says so within the
    // auth memory's lifetime).
    let mut roles = Value::Null;
    for _ in 0..100 {
        roles = roles_of(ok(&app, &alice, "/auth/me").await);
        if roles
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r == "admin"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(roles, json!(["admin"]));
    assert_eq!(
        get(&app, Some(&alice), "/admin/users").await.status(),
        StatusCode::OK
    );

    let revoked = http
        .delete(&role_url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = get(&app, Some(&alice), "/admin/users").await.status();
        if status == StatusCode::FORBIDDEN {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Both changes are events in Alice's history.
    let history = app.history("user", &alice_id.to_string()).await;
    let types: Vec<&str> = history.iter().map(|(t, _)| t.as_str()).collect();
    assert!(
        types.contains(&"RoleGranted") && types.contains(&"RoleRevoked"),
        "{types:?}"
    );
    let (status, code, _) = error_of(
        http.post(app.app.api("/admin/users/not-a-uuid/admin"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status.is_client_error(), "{status} {code}");
    app.cleanup().await;
}

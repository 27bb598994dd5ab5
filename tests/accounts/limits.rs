//! Rate limits (SECURITY.md 4): per account and per client address, 429 + Retry-After,
//! reset after the window.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::*;

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}

#[tokio::test]
async fn failed_sign_ins_trip_the_account_limit_which_resets_and_spares_other_accounts() {
    let app = app(&[
        ("RATE_LIMIT_PER_ACCOUNT", "3"),
        ("RATE_LIMIT_PER_ADDRESS", "100"),
        ("RATE_LIMIT_WINDOW_SECS", "3"),
    ])
    .await;
    let tab = browser();
    sign_up(&app, &tab, "alice@example.com").await;
    sign_up(&app, &tab, "bob@example.com").await;
    for _ in 0..3 {
        let wrong = sign_in(&app, &tab, "alice@example.com", "wrong password!").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth attempt is refused, even with the right password.
    let limited = sign_in(&app, &tab, "alice@example.com", PASSWORD).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&limited);
    assert!((1..=3).contains(&wait), "Retry-After: {wait}");
    assert_eq!(error_code(limited).await, "rate_limited");
    // Another account is not locked out by alice's limit.
    let bob = sign_in(&app, &tab, "bob@example.com", PASSWORD).await;
    assert_eq!(bob.status(), StatusCode::OK);
    // After the window, alice may try again.
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let reset = sign_in(&app, &tab, "alice@example.com", PASSWORD).await;
    assert_eq!(reset.status(), StatusCode::OK);

    let metrics = reqwest::get(app.health("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("jukebox_rate_limited_total{kind=\"signin\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jukebox_auth_failures_total{kind=\"signin\"} 3"),
        "{metrics}"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn one_address_is_limited_across_accounts_and_sign_ups() {
    let app = app(&[
        ("RATE_LIMIT_PER_ACCOUNT", "100"),
        ("RATE_LIMIT_PER_ADDRESS", "3"),
        ("RATE_LIMIT_WINDOW_SECS", "3"),
    ])
    .await;
    let tab = browser();
    // Three sign-ups from one address, then a 429.
    for name in ["a", "b", "c"] {
        sign_up(&app, &tab, &format!("{name}@example.com")).await;
    }
    let fourth = post(
        &tab,
        app.api("/auth/signup"),
        serde_json::json!({ "email": "d@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&fourth);
    // Failed sign-ins against three different accounts trip the address limit.
    for name in ["a", "b", "c"] {
        let wrong = sign_in(
            &app,
            &tab,
            &format!("{name}@example.com"),
            "wrong password!",
        )
        .await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let blocked = sign_in(&app, &tab, "a@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(
        Duration::from_secs(wait.max(retry_after(&blocked))) + Duration::from_millis(100),
    )
    .await;
    assert_eq!(
        sign_in(&app, &tab, "a@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

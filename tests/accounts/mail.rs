//! Mail over real SMTP: lettre against an SMTP server on loopback (the `mailin` protocol
//! engine, the one inside mailin-embedded, behind a plain TCP accept loop).

use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::eventually;
use crate::support::smtp::{messages_to, smtp_server, Received};

#[tokio::test]
async fn verification_mail_goes_out_over_smtp_and_its_link_verifies() {
    let (smtp_url, messages) = smtp_server();
    let app = crate::support::spawn_app_with(
        &[jukebox::app::Role::All],
        &[
            ("SMTP_URL", smtp_url),
            ("MAIL_FROM", "Jukebox <jukebox@mail.test>".into()),
            ("PUBLIC_BASE_URL", "http://jukebox.test".into()),
            ("EMAIL_VERIFY_REQUIRED", "1".into()),
        ],
    )
    .await;
    let tab = browser();
    let body = sign_up(&app, &tab, "carol@example.com").await;
    assert!(
        body.get("verification_token").is_none(),
        "tokens are exposed only when asked for"
    );
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("the verification mail", || async {
        !messages_to(&messages, "carol@example.com").is_empty()
    })
    .await;
    let mail = messages_to(&messages, "carol@example.com").remove(0);
    assert!(
        mail.data.contains("From: Jukebox <jukebox@mail.test>"),
        "{}",
        mail.data
    );
    assert!(
        mail.data.contains("Subject: Confirm your email address"),
        "{}",
        mail.data
    );
    let token = mail
        .data
        .split("http://jukebox.test/?verify=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a verification link")
        .to_owned();
    assert_eq!(
        verify(&app, &tab, &token).await.status(),
        StatusCode::OK,
        "{}",
        mail.data
    );
    assert_eq!(
        sign_in(&app, &tab, "carol@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );

    // A sign-up with a taken address answers like a fresh one; the owner gets a mail.
    let again = post(
        &tab,
        app.api("/auth/signup"),
        serde_json::json!({ "email": "carol@example.com", "password": "another passphrase" }),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("the 'someone tried' mail", || async {
        messages_to(&messages, "carol@example.com").len() == 2
    })
    .await;
    let notice = messages_to(&messages, "carol@example.com").remove(1);
    assert!(notice.data.contains("already has one"), "{}", notice.data);

    // A new link can be asked for; the old one then no longer works.
    let dave = sign_up(&app, &tab, "dave@example.com").await;
    let _ = dave;
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("dave's first mail", || async {
        messages_to(&messages, "dave@example.com").len() == 1
    })
    .await;
    let resend = post(
        &tab,
        app.api("/auth/resend-verification"),
        serde_json::json!({ "email": "dave@example.com" }),
    )
    .await;
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("dave's second mail", || async {
        messages_to(&messages, "dave@example.com").len() == 2
    })
    .await;
    let link = |m: &Received| {
        m.data
            .split("?verify=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned()
    };
    let dave_mails = messages_to(&messages, "dave@example.com");
    let old = verify(&app, &tab, &link(&dave_mails[0])).await;
    assert_eq!(old.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        verify(&app, &tab, &link(&dave_mails[1])).await.status(),
        StatusCode::OK
    );
    app.cleanup().await;
}

/// Issue 15: a sign-up the edge could not wait for (processor paused) answers 202, and
/// its verification mail still goes out, once, when the processor resumes: the mail comes
/// from the reactor answering `UserSignedUp`, not from the HTTP handler. Fed every event
/// again from the start of `EVENTS`, the reactor sends nothing twice.
#[tokio::test]
async fn a_sign_up_answered_202_gets_exactly_one_mail_when_the_processor_resumes() {
    use jukebox::app::Role;
    use jukebox_nats::FailPoints;

    let (smtp_url, messages) = smtp_server();
    let app = crate::support::spawn_app_with(
        &[Role::Api, Role::Relay, Role::Projector],
        &[
            ("SMTP_URL", smtp_url),
            ("MAIL_FROM", "Jukebox <jukebox@mail.test>".into()),
            ("PUBLIC_BASE_URL", "http://jukebox.test".into()),
            ("EMAIL_VERIFY_REQUIRED", "1".into()),
            // The processor is not running: the edge gives up waiting at once.
            ("COMMAND_WAIT_MS", "300".into()),
        ],
    )
    .await;
    let reactor = app.start(&[Role::Reactor], FailPoints::default()).await;
    let tab = browser();
    let response = tab
        .post(app.api("/auth/signup"))
        .header("Idempotency-Key", "signup-1")
        .header("X-Client-Nonce", "nonce-of-this-tab-0001")
        .json(&serde_json::json!({ "email": "erin@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let accepted: serde_json::Value = response.json().await.unwrap();
    let location = accepted["location"].as_str().unwrap().to_owned();
    let command_id = accepted["command_id"].as_str().unwrap().to_owned();
    assert!(location.contains("capability="), "{location}");

    let processor = app.start(&[Role::Processor], FailPoints::default()).await;
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("the verification mail", || async {
        !messages_to(&messages, "erin@example.com").is_empty()
    })
    .await;

    // The outcome is the issuer's: with the 202's capability it reads, without it (or
    // with a made-up one) it is as unknown as any other id.
    let outcome: serde_json::Value = tab
        .get(app.api(&location))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outcome["status"], "committed", "{outcome}");
    assert!(
        !outcome.to_string().contains("erin@example.com"),
        "the outcome names no address: {outcome}"
    );
    for forged in [
        format!("/commands/{command_id}"),
        format!("/commands/{command_id}?capability={}", "0".repeat(64)),
    ] {
        let response = tab.get(app.api(&forged)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{forged}");
    }

    // The link in the one mail verifies.
    let mail = messages_to(&messages, "erin@example.com").remove(0);
    let token = mail
        .data
        .split("http://jukebox.test/?verify=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a verification link")
        .to_owned();
    assert_eq!(verify(&app, &tab, &token).await.status(), StatusCode::OK);

    // Every event fed to the reactor again (its consumer made anew from the stream's
    // start): it sees the sign-up once more and sends nothing.
    reactor.stop().await.unwrap();
    let attempts = || async {
        sqlx::query_scalar::<_, i32>(
            "SELECT attempts FROM reactor_effects WHERE event_id LIKE 'user:%:1'",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    let before = attempts().await;
    let js = app.js();
    let events = js
        .get_stream(app.services.topology.namespace.events_stream())
        .await
        .unwrap();
    events
        .delete_consumer(jukebox_handlers::reactor::CONSUMER)
        .await
        .unwrap();
    let again = app.start(&[Role::Reactor], FailPoints::default()).await;
    // The reactor's re-read of EVENTS answers no write of ours: no position to pass.
    eventually("the reactor sees the sign-up again", || async {
        attempts().await > before
    })
    .await;
    assert_eq!(messages_to(&messages, "erin@example.com").len(), 1);
    let effect: (String, bool) = sqlx::query_as(
        "SELECT effect, done_at IS NOT NULL FROM reactor_effects WHERE event_id LIKE 'user:%:1'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(effect, ("verification".to_owned(), true));

    again.stop().await.unwrap();
    processor.stop().await.unwrap();
    app.cleanup().await;
}

/// The reactor dies after the token is committed and before the mail: the event comes back
/// and the mail it sends carries that same, committed token (it is derived from the event
/// id), once. Dying after the SMTP server took the mail and before recording it sends the
/// same mail again, same `Message-ID` and link: the window ADR 15 names.
#[tokio::test]
async fn a_reactor_killed_around_the_send_mails_the_committed_link() {
    use jukebox::app::Role;
    use jukebox_nats::FailPoints;

    let (smtp_url, messages) = smtp_server();
    let app = crate::support::spawn_app_with(
        &[Role::Api, Role::Processor, Role::Relay],
        &[
            ("SMTP_URL", smtp_url),
            ("PUBLIC_BASE_URL", "http://jukebox.test".into()),
        ],
    )
    .await;
    let tab = browser();
    let link = |m: &Received| {
        m.data
            .split("http://jukebox.test/?verify=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a verification link")
            .to_owned()
    };
    let message_id = |m: &Received| {
        m.data
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .expect("a Message-ID")
            .to_owned()
    };

    // Before the send: the first reactor dies, the second mails once.
    let doomed = app
        .start(
            &[Role::Reactor],
            FailPoints::parse("reactor.before_send=1").unwrap(),
        )
        .await;
    sign_up(&app, &tab, "fay@example.com").await;
    assert!(
        doomed.wait().await.is_err(),
        "the reactor died at its fail point"
    );
    assert!(messages_to(&messages, "fay@example.com").is_empty());
    let reactor = app.start(&[Role::Reactor], FailPoints::default()).await;
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("fay's mail after the restart", || async {
        !messages_to(&messages, "fay@example.com").is_empty()
    })
    .await;
    let issued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'VerificationIssued'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(issued, 1, "the token was committed once");
    let fay = messages_to(&messages, "fay@example.com");
    assert_eq!(fay.len(), 1);
    assert_eq!(
        verify(&app, &tab, &link(&fay[0])).await.status(),
        StatusCode::OK
    );
    reactor.stop().await.unwrap();

    // After the send, before the record: the mail goes out again, the same one.
    let doomed = app
        .start(
            &[Role::Reactor],
            FailPoints::parse("reactor.after_send=1").unwrap(),
        )
        .await;
    sign_up(&app, &tab, "gus@example.com").await;
    assert!(
        doomed.wait().await.is_err(),
        "the reactor died at its fail point"
    );
    assert_eq!(messages_to(&messages, "gus@example.com").len(), 1);
    let reactor = app.start(&[Role::Reactor], FailPoints::default()).await;
    // Mail is the reactor's asynchronous work: no position marks it sent.
    eventually("gus's mail sent again", || async {
        messages_to(&messages, "gus@example.com").len() == 2
    })
    .await;
    let gus = messages_to(&messages, "gus@example.com");
    assert_eq!(message_id(&gus[0]), message_id(&gus[1]));
    assert_eq!(link(&gus[0]), link(&gus[1]));
    assert_eq!(
        verify(&app, &tab, &link(&gus[1])).await.status(),
        StatusCode::OK
    );
    // The SMTP server has the mail before the reactor records it: wait for the record.
    eventually("every effect recorded in the end", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT coalesce(bool_and(done_at IS NOT NULL), false) FROM reactor_effects",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    })
    .await;
    reactor.stop().await.unwrap();
    app.cleanup().await;
}

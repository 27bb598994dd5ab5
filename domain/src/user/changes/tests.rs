use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::value::{Email, PasswordHash, TokenHash};
use crate::{User, UserCommand, UserEvent};

type Framework = TestFramework<User>;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
const NEW: &str = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3";

fn alice() -> Email {
    Email::parse("alice@example.com").unwrap()
}

fn bob() -> Email {
    Email::parse("bob@example.com").unwrap()
}

fn signed_up() -> UserEvent {
    UserEvent::UserSignedUp {
        user_id: Uuid::nil(),
        email: alice(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn reset_issued(token: &str) -> UserEvent {
    UserEvent::PasswordResetIssued {
        token_hash: TokenHash::of(token),
        expires_at: now() + Duration::hours(1),
    }
}

fn reset(token: &str, at: OffsetDateTime) -> UserCommand {
    UserCommand::ResetPassword {
        token_hash: TokenHash::of(token),
        password_hash: PasswordHash::parse(NEW).unwrap(),
        now: at,
    }
}

fn new_password() -> UserEvent {
    UserEvent::PasswordReset {
        password_hash: PasswordHash::parse(NEW).unwrap(),
    }
}

#[test]
fn a_reset_is_requested_for_a_known_enabled_account() {
    Framework::with(())
        .given(vec![signed_up()])
        .when(UserCommand::RequestPasswordReset)
        .then_expect_events(vec![UserEvent::PasswordResetRequested { email: alice() }]);
    Framework::with(())
        .given_no_previous_events()
        .when(UserCommand::RequestPasswordReset)
        .then_expect_error_message("no such account");
    Framework::with(())
        .given(vec![signed_up(), UserEvent::UserDisabled])
        .when(UserCommand::RequestPasswordReset)
        .then_expect_error_message("this account is disabled; contact an administrator");
}

#[test]
fn the_latest_reset_link_works_once_before_it_expires() {
    Framework::with(())
        .given(vec![signed_up(), reset_issued("r1")])
        .when(reset("r1", now()))
        .then_expect_events(vec![new_password()]);
    let invalid = "this password reset link is invalid or was already used; ask for a new one";
    Framework::with(())
        .given(vec![signed_up(), reset_issued("r1"), new_password()])
        .when(reset("r1", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![signed_up(), reset_issued("r1"), reset_issued("r2")])
        .when(reset("r1", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![signed_up(), reset_issued("r1")])
        .when(reset("tampered", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![signed_up()])
        .when(reset("r1", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![signed_up(), reset_issued("r1")])
        .when(reset("r1", now() + Duration::hours(2)))
        .then_expect_error_message("this password reset link has expired; ask for a new one");
}

#[test]
fn a_reset_a_change_and_signing_out_everywhere_each_end_every_session() {
    let mut user = User::default();
    for event in [
        signed_up(),
        reset_issued("r1"),
        new_password(),
        UserEvent::PasswordChanged {
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::SessionsEnded,
    ] {
        user.apply(event);
    }
    assert_eq!(user.session_epoch(), 3);
    assert_eq!(user.password_hash().map(|h| h.as_str()), Some(HASH));
}

fn change_issued(email: Email, token: &str) -> UserEvent {
    UserEvent::EmailChangeIssued {
        email,
        token_hash: TokenHash::of(token),
        expires_at: now() + Duration::hours(24),
    }
}

fn change(token: &str, at: OffsetDateTime) -> UserCommand {
    UserCommand::ChangeEmail {
        token_hash: TokenHash::of(token),
        now: at,
    }
}

#[test]
fn a_new_address_takes_effect_only_with_its_latest_link() {
    Framework::with(())
        .given(vec![signed_up()])
        .when(UserCommand::RequestEmailChange { email: bob() })
        .then_expect_events(vec![UserEvent::EmailChangeRequested { email: bob() }]);
    Framework::with(())
        .given(vec![signed_up()])
        .when(UserCommand::RequestEmailChange { email: alice() })
        .then_expect_error_message("this is already the account's address");
    Framework::with(())
        .given(vec![signed_up(), change_issued(bob(), "c1")])
        .when(change("c1", now()))
        .then_expect_events(vec![UserEvent::EmailChanged {
            from: alice(),
            to: bob(),
        }]);
    // Checking writes nothing.
    Framework::with(())
        .given(vec![signed_up(), change_issued(bob(), "c1")])
        .when(UserCommand::CheckEmailChange {
            token_hash: TokenHash::of("c1"),
            now: now(),
        })
        .then_expect_events(vec![]);
    let invalid = "this confirmation link is invalid or was already used; change the address again";
    let carol = Email::parse("carol@example.com").unwrap();
    Framework::with(())
        .given(vec![
            signed_up(),
            change_issued(bob(), "c1"),
            change_issued(carol, "c2"),
        ])
        .when(change("c1", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![
            signed_up(),
            change_issued(bob(), "c1"),
            UserEvent::EmailChanged {
                from: alice(),
                to: bob(),
            },
        ])
        .when(change("c1", now()))
        .then_expect_error_message(invalid);
    Framework::with(())
        .given(vec![signed_up(), change_issued(bob(), "c1")])
        .when(change("c1", now() + Duration::hours(25)))
        .then_expect_error_message("this confirmation link has expired; change the address again");
}

#[test]
fn a_changed_address_is_the_account_s_and_an_old_reset_link_dies() {
    let mut user = User::default();
    for event in [
        signed_up(),
        reset_issued("r1"),
        change_issued(bob(), "c1"),
        UserEvent::EmailChanged {
            from: alice(),
            to: bob(),
        },
    ] {
        user.apply(event);
    }
    assert_eq!(user.email(), Some(&bob()));
    assert!(user.email_change().is_none());
    Framework::with(())
        .given(vec![
            signed_up(),
            reset_issued("r1"),
            UserEvent::EmailChanged {
                from: alice(),
                to: bob(),
            },
        ])
        .when(reset("r1", now()))
        .then_expect_error_message(
            "this password reset link is invalid or was already used; ask for a new one",
        );
}

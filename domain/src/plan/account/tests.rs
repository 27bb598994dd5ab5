//! Given an account command and the reports so far, the next step.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::command::{Command, CommandError};
use crate::plan::{next, AggregateCommand, Issued, Next, Report, State, Step};
use crate::value::{Email, PasswordHash, SignInMethod, TokenHash};
use crate::{
    EmailClaim, EmailClaimCommand, EmailClaimError, SessionCommand, User, UserCommand, UserEvent,
};
use cqrs_es::Aggregate;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn by(issuer: Option<Uuid>) -> Issued {
    Issued {
        by: issuer,
        at: at(),
    }
}

fn user(events: Vec<UserEvent>) -> User {
    let mut user = User::default();
    for event in events {
        user.apply(event);
    }
    user
}

fn signed_up(user_id: Uuid) -> UserEvent {
    UserEvent::UserSignedUp {
        user_id,
        email: Email::parse("alice@example.com").unwrap(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    }
}

pub(in crate::plan) fn bob() -> Email {
    Email::parse("bob@example.com").unwrap()
}

/// Alice, with a change to bob@ waiting for its link.
pub(in crate::plan) fn changing() -> User {
    user(vec![
        signed_up(id(1)),
        UserEvent::EmailChangeIssued {
            email: bob(),
            token_hash: TokenHash::of("t"),
            expires_at: at() + time::Duration::hours(1),
        },
    ])
}

fn applied(events: &[&str], state: impl Into<State>) -> Report {
    Report::Applied {
        events: events.iter().map(|e| e.to_string()).collect(),
        state: state.into(),
    }
}

fn rejected(error: impl Into<CommandError>) -> Report {
    Report::Rejected(error.into())
}

fn step(aggregate_id: &str, command: impl Into<AggregateCommand>, last: bool) -> Next {
    Next::Step(Step::Apply {
        aggregate_id: aggregate_id.to_owned(),
        command: command.into(),
        last,
    })
}

fn confirm() -> Command {
    Command::ConfirmEmailChange {
        user_id: id(1),
        token_hash: TokenHash::of("t"),
    }
}

#[test]
fn an_address_change_claims_the_new_address_moves_the_account_then_frees_the_old_one() {
    let user_id = id(1).to_string();
    let check = UserCommand::CheckEmailChange {
        token_hash: TokenHash::of("t"),
        now: at(),
    };
    let change = UserCommand::ChangeEmail {
        token_hash: TokenHash::of("t"),
        now: at(),
    };
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &[]),
        step(&user_id, check, false)
    );
    let mut done = vec![applied(&[], changing())];
    let claim = EmailClaimCommand::Claim { user_id: id(1) };
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        step("bob@example.com", claim, false)
    );
    done.push(applied(&["EmailClaimed"], EmailClaim::default()));
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        step(&user_id, change, false)
    );
    done.push(applied(&["EmailChanged"], user(vec![])));
    let release = EmailClaimCommand::Release { user_id: id(1) };
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        step("alice@example.com", release, true)
    );
    done.push(applied(&["EmailReleased"], EmailClaim::default()));
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        Next::Finish(Ok(()))
    );
}

#[test]
fn an_address_change_to_a_taken_address_or_with_a_stale_link_changes_nothing() {
    // The new address is someone's: refused, nothing written.
    let taken: CommandError = EmailClaimError::AlreadyClaimed.into();
    let done = [
        applied(&[], changing()),
        rejected(EmailClaimError::AlreadyClaimed),
    ];
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        Next::Finish(Err(taken))
    );
    // The link died between the check and the change: the claim is given back.
    let stale: CommandError = crate::UserError::InvalidEmailChangeToken.into();
    let mut done = vec![
        applied(&[], changing()),
        applied(&["EmailClaimed"], EmailClaim::default()),
        rejected(crate::UserError::InvalidEmailChangeToken),
    ];
    let release = EmailClaimCommand::Release { user_id: id(1) };
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        step("bob@example.com", release, false)
    );
    done.push(applied(&["EmailReleased"], EmailClaim::default()));
    assert_eq!(
        next(&confirm(), by(Some(id(1))), &done),
        Next::Finish(Err(stale))
    );
}

#[test]
fn a_password_change_ends_every_session_then_opens_the_caller_s_under_the_new_epoch() {
    let command = Command::ChangePassword {
        user_id: id(1),
        password_hash: PasswordHash::parse(HASH).unwrap(),
        session_id: id(2),
        refresh_token_hash: TokenHash::of("r"),
        session_expires_at: at(),
    };
    let changed = user(vec![
        signed_up(id(1)),
        UserEvent::PasswordChanged {
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
    ]);
    let done = [applied(&["PasswordChanged"], changed)];
    let start = SessionCommand::Start {
        user_id: id(1),
        token_hash: TokenHash::of("r"),
        expires_at: at(),
        method: SignInMethod::Renewed,
        epoch: 1,
    };
    assert_eq!(
        next(&command, by(Some(id(1))), &done),
        step(&id(2).to_string(), start, true)
    );
}

fn erase() -> Command {
    Command::EraseUser { user_id: id(1) }
}

#[test]
fn an_erasure_releases_the_address_and_identities_then_records_the_erasure() {
    let user_id = id(1).to_string();
    assert_eq!(
        next(&erase(), by(Some(id(1))), &[]),
        Next::Step(Step::ReadUser { user_id: id(1) })
    );
    let google = user(vec![
        UserEvent::UserSignedUpWithIdentity {
            user_id: id(1),
            email: Email::parse("alice@example.com").unwrap(),
            issuer: "https://accounts.google.com".into(),
            subject: "42".into(),
        },
        UserEvent::EmailVerified,
    ]);
    let mut done = vec![applied(&[], google)];
    assert_eq!(
        next(&erase(), by(Some(id(1))), &done),
        step(
            "alice@example.com",
            EmailClaimCommand::Release { user_id: id(1) },
            false
        )
    );
    done.push(applied(&["EmailReleased"], EmailClaim::default()));
    assert_eq!(
        next(&erase(), by(Some(id(1))), &done),
        step(
            "https://accounts.google.com|42",
            crate::ExternalIdentityCommand::Release { user_id: id(1) },
            false
        )
    );
    done.push(applied(
        &["IdentityReleased"],
        crate::ExternalIdentity::default(),
    ));
    assert_eq!(
        next(&erase(), by(Some(id(1))), &done),
        step(&user_id, UserCommand::Erase, true)
    );
    done.push(applied(&["UserErased"], user(vec![])));
    assert_eq!(next(&erase(), by(Some(id(1))), &done), Next::Finish(Ok(())));
}

#[test]
fn an_erasure_by_someone_else_needs_an_admin_and_an_erased_account_is_refused() {
    // Bob (2) is no admin: refused before anything is read of Alice.
    let done = [applied(&[], user(vec![signed_up(id(2))]))];
    let Next::Finish(Err(error)) = next(&erase(), by(Some(id(2))), &done) else {
        panic!("not refused");
    };
    assert_eq!(error.code, crate::command::ErrorCode::NotAdmin);
    // An admin reads the issuer first, then the account.
    let admin = user(vec![
        signed_up(id(2)),
        UserEvent::RoleGranted {
            role: crate::value::Role::Admin,
        },
    ]);
    let mut done = vec![applied(&[], admin)];
    assert_eq!(
        next(&erase(), by(Some(id(2))), &done),
        Next::Step(Step::ReadUser { user_id: id(1) })
    );
    done.push(applied(
        &[],
        user(vec![signed_up(id(1)), UserEvent::UserErased]),
    ));
    let Next::Finish(Err(error)) = next(&erase(), by(Some(id(2))), &done) else {
        panic!("not refused");
    };
    assert_eq!(error.message, "this account was deleted");
    // No such account.
    let Next::Finish(Err(error)) = next(&erase(), by(None), &[applied(&[], user(vec![]))]) else {
        panic!("not refused");
    };
    assert_eq!(error.message, "no such account");
}

const KEYCLOAK: &str = "https://id.example/realms/home";

fn link() -> Command {
    Command::LinkIdentity {
        user_id: id(1),
        provider: "keycloak".into(),
        issuer: KEYCLOAK.into(),
        subject: "kc-1".into(),
        email: bob(),
    }
}

#[test]
fn a_link_checks_the_account_claims_the_identity_then_records_it() {
    use crate::{ExternalIdentity, ExternalIdentityCommand, ExternalIdentityError, UserError};
    let user_id = id(1).to_string();
    assert_eq!(
        next(&link(), by(Some(id(1))), &[]),
        step(
            &user_id,
            UserCommand::CheckIdentityLink {
                issuer: KEYCLOAK.into(),
                subject: "kc-1".into(),
            },
            false
        )
    );
    // Another identity at this provider: refused before anything is claimed.
    let other = [rejected(UserError::ProviderLinked)];
    assert_eq!(
        next(&link(), by(Some(id(1))), &other),
        Next::Finish(Err(UserError::ProviderLinked.into()))
    );
    let mut done = vec![applied(&[], user(vec![signed_up(id(1))]))];
    assert_eq!(
        next(&link(), by(Some(id(1))), &done),
        step(
            &format!("{KEYCLOAK}|kc-1"),
            ExternalIdentityCommand::Link { user_id: id(1) },
            false
        )
    );
    // Linked to someone else: refused, nothing more.
    let taken = [
        applied(&[], user(vec![signed_up(id(1))])),
        rejected(ExternalIdentityError::AlreadyLinked),
    ];
    assert_eq!(
        next(&link(), by(Some(id(1))), &taken),
        Next::Finish(Err(ExternalIdentityError::AlreadyLinked.into()))
    );
    done.push(applied(&["IdentityLinked"], ExternalIdentity::default()));
    assert_eq!(
        next(&link(), by(Some(id(1))), &done),
        step(
            &user_id,
            UserCommand::LinkIdentity {
                provider: "keycloak".into(),
                issuer: KEYCLOAK.into(),
                subject: "kc-1".into(),
                email: bob(),
            },
            true
        )
    );
    done.push(applied(&["IdentityAdded"], user(vec![signed_up(id(1))])));
    assert_eq!(next(&link(), by(Some(id(1))), &done), Next::Finish(Ok(())));
}

#[test]
fn an_unlink_unlinks_the_account_then_releases_the_identity() {
    use crate::{ExternalIdentity, ExternalIdentityCommand, UserError};
    let unlink = Command::UnlinkIdentity {
        user_id: id(1),
        issuer: KEYCLOAK.into(),
        subject: "kc-1".into(),
    };
    assert_eq!(
        next(&unlink, by(Some(id(1))), &[]),
        step(
            &id(1).to_string(),
            UserCommand::UnlinkIdentity {
                issuer: KEYCLOAK.into(),
                subject: "kc-1".into(),
            },
            false
        )
    );
    let refused = [rejected(UserError::LastSignInMethod)];
    assert_eq!(
        next(&unlink, by(Some(id(1))), &refused),
        Next::Finish(Err(UserError::LastSignInMethod.into()))
    );
    let mut done = vec![applied(&["IdentityRemoved"], User::default())];
    assert_eq!(
        next(&unlink, by(Some(id(1))), &done),
        step(
            &format!("{KEYCLOAK}|kc-1"),
            ExternalIdentityCommand::Release { user_id: id(1) },
            true
        )
    );
    done.push(applied(&["IdentityReleased"], ExternalIdentity::default()));
    assert_eq!(next(&unlink, by(Some(id(1))), &done), Next::Finish(Ok(())));
}

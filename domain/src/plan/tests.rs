//! Given a command and the reports of the steps so far, when the runner asks for the
//! next step, then the plan answers it. The file is long because `all_commands` lists a
//! sample of every command, which the tests over every plan need.

use cqrs_es::Aggregate;
use time::OffsetDateTime;

use super::account::tests::{bob, changing};
use super::*;
use crate::media::{ImportStage, SourceRef, TrackId};
use crate::value::{Email, PasswordHash, RevokeReason, Role, SignInMethod, TokenHash};
use crate::{EmailClaimError, ImportError, UserEvent};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn email() -> Email {
    Email::parse("alice@example.com").unwrap()
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

fn track() -> TrackId {
    TrackId::parse("yt:dQw4w9WgXcQ").unwrap()
}

/// A user built from its events.
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
        email: email(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    }
}

fn applied(events: &[&str], state: impl Into<State>) -> Report {
    Report::Applied {
        events: events.iter().map(|e| (*e).to_owned()).collect(),
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

fn sign_up() -> Command {
    Command::SignUp {
        user_id: id(1),
        email: email(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    }
}

#[test]
fn sign_up_claims_the_address_then_creates_the_user_with_the_outcome() {
    let command = sign_up();
    let claim = EmailClaimCommand::Claim { user_id: id(1) };
    assert_eq!(
        next(&command, by(None), &[]),
        step("alice@example.com", claim, false)
    );
    let done = [applied(&["EmailClaimed"], EmailClaim::default())];
    let create = UserCommand::SignUp {
        user_id: id(1),
        email: email(),
        password_hash: PasswordHash::parse(HASH).unwrap(),
    };
    assert_eq!(
        next(&command, by(None), &done),
        step(&id(1).to_string(), create, true)
    );
    let done = [
        applied(&["EmailClaimed"], EmailClaim::default()),
        applied(&["UserSignedUp"], user(vec![])),
    ];
    assert_eq!(next(&command, by(None), &done), Next::Finish(Ok(())));
}

#[test]
fn sign_up_with_a_taken_address_records_the_attempt_and_stays_refused() {
    let command = sign_up();
    let done = [rejected(EmailClaimError::AlreadyClaimed)];
    let attempt = EmailClaimCommand::RecordSignUpAttempt {
        user_id: id(1),
        email: "alice@example.com".into(),
    };
    assert_eq!(
        next(&command, by(None), &done),
        step("alice@example.com", attempt, false)
    );
    let done = [
        rejected(EmailClaimError::AlreadyClaimed),
        applied(&["SignUpAttempted"], EmailClaim::default()),
    ];
    let Next::Finish(Err(error)) = next(&command, by(None), &done) else {
        panic!("the sign-up must end refused");
    };
    assert_eq!(error.code, ErrorCode::EmailTaken);
}

#[test]
fn a_sign_up_redelivered_after_its_attempt_committed_is_refused_without_creating_a_user() {
    // The first delivery recorded the attempt and died before storing the rejection: the
    // claim step of the redelivery finds that event as its own.
    let done = [applied(&["SignUpAttempted"], EmailClaim::default())];
    let Next::Finish(Err(error)) = next(&sign_up(), by(None), &done) else {
        panic!("the sign-up must end refused");
    };
    assert_eq!(error.code, ErrorCode::EmailTaken);
}

#[test]
fn sign_up_with_identity_claims_links_then_creates_and_stops_at_a_linked_identity() {
    let command = Command::SignUpWithIdentity {
        user_id: id(1),
        email: email(),
        issuer: "https://accounts.google.com".into(),
        subject: "42".into(),
        email_verified: true,
        admin_bootstrap_email: None,
    };
    let claimed = || applied(&["EmailClaimed"], EmailClaim::default());
    assert_eq!(
        next(&command, by(None), &[claimed()]),
        step(
            "https://accounts.google.com|42",
            ExternalIdentityCommand::Link { user_id: id(1) },
            false
        )
    );
    let linked = applied(&["IdentityLinked"], ExternalIdentity::default());
    let Next::Step(Step::Apply {
        aggregate_id,
        last,
        command: AggregateCommand::User(_),
    }) = next(&command, by(None), &[claimed(), linked])
    else {
        panic!("the user comes third");
    };
    assert_eq!((aggregate_id, last), (id(1).to_string(), true));
    let refused = [
        claimed(),
        rejected(crate::ExternalIdentityError::AlreadyLinked),
    ];
    let Next::Finish(Err(error)) = next(&command, by(None), &refused) else {
        panic!("a linked identity ends the sign-up");
    };
    assert_eq!(error.code, ErrorCode::IdentityLinked);
}

#[test]
fn sign_in_starts_the_session_under_the_epoch_the_user_allowed_it_with() {
    let command = Command::SignIn {
        user_id: id(1),
        session_id: id(2),
        method: SignInMethod::Password,
        require_verified: true,
        refresh_token_hash: TokenHash::of("refresh"),
        session_expires_at: at(),
        rehash: None,
    };
    let allow = UserCommand::SignIn {
        require_verified: true,
        rehash: None,
    };
    assert_eq!(
        next(&command, by(Some(id(1))), &[]),
        step(&id(1).to_string(), allow, false)
    );
    // Disabled and enabled twice: epoch 2.
    let user = user(vec![
        signed_up(id(1)),
        UserEvent::UserDisabled,
        UserEvent::UserEnabled,
        UserEvent::UserDisabled,
        UserEvent::UserEnabled,
    ]);
    let start = SessionCommand::Start {
        user_id: id(1),
        token_hash: TokenHash::of("refresh"),
        expires_at: at(),
        method: SignInMethod::Password,
        epoch: 2,
    };
    assert_eq!(
        next(&command, by(Some(id(1))), &[applied(&[], user)]),
        step(&id(2).to_string(), start, true)
    );
    let refused = [rejected(crate::UserError::Disabled)];
    let Next::Finish(Err(error)) = next(&command, by(Some(id(1))), &refused) else {
        panic!("a refused user opens no session");
    };
    assert_eq!(error.code, ErrorCode::AccountDisabled);
}

#[test]
fn admin_commands_read_the_issuer_and_refuse_one_that_is_not_an_enabled_admin() {
    let target = id(7);
    let commands = [
        (
            Command::GrantRole {
                user_id: target,
                role: Role::Admin,
            },
            UserCommand::GrantRole { role: Role::Admin },
        ),
        (
            Command::RevokeRole {
                user_id: target,
                role: Role::Admin,
            },
            UserCommand::RevokeRole { role: Role::Admin },
        ),
        (
            Command::DisableUser { user_id: target },
            UserCommand::Disable,
        ),
        (Command::EnableUser { user_id: target }, UserCommand::Enable),
    ];
    let admin = || {
        vec![
            signed_up(id(1)),
            UserEvent::RoleGranted { role: Role::Admin },
        ]
    };
    let mut disabled_admin = admin();
    disabled_admin.push(UserEvent::UserDisabled);
    for (command, on_target) in commands {
        assert_eq!(
            next(&command, by(Some(id(1))), &[]),
            Next::Step(Step::ReadUser { user_id: id(1) })
        );
        for not_admin in [vec![signed_up(id(1))], disabled_admin.clone(), vec![]] {
            let Next::Finish(Err(error)) =
                next(&command, by(Some(id(1))), &[applied(&[], user(not_admin))])
            else {
                panic!("{command:?} from a non-admin must be refused");
            };
            assert_eq!(error.code, ErrorCode::NotAdmin);
        }
        assert_eq!(
            next(&command, by(Some(id(1))), &[applied(&[], user(admin()))]),
            step(&target.to_string(), on_target.clone(), true)
        );
        // The operator's CLI (no issuer) goes straight to the target.
        assert_eq!(
            next(&command, by(None), &[]),
            step(&target.to_string(), on_target, true)
        );
    }
}

/// A track as the processor reports it: stored, or stored and then discarded.
fn track_state(discarded: bool) -> Track {
    let mut track = Track::default();
    track.apply(crate::TrackEvent::TrackStored(crate::track::tests::stored()));
    if discarded {
        track.apply(crate::TrackEvent::TrackDiscarded {
            object_keys: vec!["tracks/yt:dQw4w9WgXcQ.m4a".into()],
        });
    }
    track
}

#[test]
fn complete_import_adds_the_track_to_the_library_before_completing_the_job() {
    let command = Command::CompleteImport {
        job_id: id(3),
        user_id: id(1),
        track_id: track(),
    };
    let read = Next::Step(Step::ReadTrack { track_id: track() });
    assert_eq!(next(&command, by(None), &[]), read);
    let stored = || applied(&[], track_state(false));
    let add = LibraryCommand::AddTrack {
        user_id: id(1),
        track_id: track(),
        job_id: id(3),
    };
    let entry = format!("{}/yt:dQw4w9WgXcQ", id(1));
    assert_eq!(
        next(&command, by(None), &[stored()]),
        step(&entry, add, false)
    );
    let added = || applied(&["TrackAddedToLibrary"], LibraryEntry::default());
    let complete = ImportCommand::Complete { track_id: track() };
    assert_eq!(
        next(&command, by(None), &[stored(), added()]),
        step(&id(3).to_string(), complete, true)
    );
    let finished = [stored(), added(), rejected(ImportError::AlreadyFinished)];
    let Next::Finish(Err(error)) = next(&command, by(None), &finished) else {
        panic!("a finished job refuses completion");
    };
    assert_eq!(error.code, ErrorCode::JobFinished);
}

/// Given a track discarded after the downloader found it stored (ADR 42), when the job
/// completes, then it is refused before anything is written: no library entry names
/// objects that are gone.
#[test]
fn complete_import_of_a_track_no_longer_stored_is_refused_before_the_library() {
    let command = Command::CompleteImport {
        job_id: id(3),
        user_id: id(1),
        track_id: track(),
    };
    for track in [track_state(true), Track::default()] {
        let Next::Finish(Err(error)) = next(&command, by(None), &[applied(&[], track)]) else {
            panic!("a track not stored refuses the completion");
        };
        assert_eq!(error.code, ErrorCode::TrackNotStored);
    }
}

/// Every command's plan, when each step commits, ends right after one `last` step, and
/// only that one: the runner stores the outcome with it.
#[test]
fn every_plan_ends_committed_right_after_its_one_last_step() {
    let admin = user(vec![
        signed_up(id(1)),
        UserEvent::RoleGranted { role: Role::Admin },
    ]);
    for command in all_commands() {
        let mut done = Vec::new();
        let mut lasts = 0;
        let ended = loop {
            match next(&command, by(Some(id(1))), &done) {
                Next::Finish(result) => break result,
                Next::Step(Step::ReadUser { .. }) => {
                    done.push(applied(&[], admin.clone()));
                }
                Next::Step(Step::ReadTrack { .. }) => {
                    done.push(applied(&[], track_state(false)));
                }
                Next::Step(Step::Apply { last, .. }) => {
                    assert_eq!(lasts, 0, "{command:?}: a step after the last one");
                    lasts += usize::from(last);
                    done.push(applied(&[], changing()));
                }
            }
            assert!(done.len() <= 4, "{command:?}: more steps than any plan has");
        };
        assert_eq!(ended, Ok(()), "{command:?}");
        assert_eq!(lasts, 1, "{command:?}: one last step");
    }
}

/// A refusal at the first step ends every command with that refusal (sign-up records
/// the attempt first).
#[test]
fn a_refused_first_step_ends_the_command_refused() {
    for command in all_commands() {
        if matches!(command, Command::SignUp { .. }) {
            continue; // covered above
        }
        let refusal = CommandError::new(ErrorCode::UnknownUser, "no such user");
        let first = next(&command, by(None), &[]);
        assert!(matches!(first, Next::Step(_)), "{command:?}");
        assert_eq!(
            next(&command, by(None), &[Report::Rejected(refusal.clone())]),
            Next::Finish(Err(refusal)),
            "{command:?}"
        );
    }
}

fn all_commands() -> Vec<Command> {
    vec![
        sign_up(),
        Command::RecordSignIn { user_id: id(1) },
        Command::IssueVerification {
            user_id: id(1),
            token_hash: TokenHash::of("t"),
            expires_at: at(),
        },
        Command::RequestVerification { user_id: id(1) },
        Command::VerifyEmail {
            user_id: id(1),
            token_hash: TokenHash::of("t"),
            admin_bootstrap_email: None,
        },
        Command::SignIn {
            user_id: id(1),
            session_id: id(2),
            method: SignInMethod::Password,
            require_verified: false,
            refresh_token_hash: TokenHash::of("r"),
            session_expires_at: at(),
            rehash: None,
        },
        Command::RefreshSession {
            session_id: id(2),
            presented: TokenHash::of("r"),
            replacement: TokenHash::of("s"),
            grace_ms: 0,
        },
        Command::RevokeSession {
            session_id: id(2),
            presented: None,
            reason: RevokeReason::Logout,
        },
        Command::SignUpWithIdentity {
            user_id: id(1),
            email: email(),
            issuer: "i".into(),
            subject: "s".into(),
            email_verified: true,
            admin_bootstrap_email: None,
        },
        Command::GrantRole {
            user_id: id(7),
            role: Role::Admin,
        },
        Command::RevokeRole {
            user_id: id(7),
            role: Role::Admin,
        },
        Command::DisableUser { user_id: id(7) },
        Command::EnableUser { user_id: id(7) },
        Command::EraseUser { user_id: id(7) },
        Command::LinkIdentity {
            user_id: id(7),
            provider: "p".into(),
            issuer: "i".into(),
            subject: "s".into(),
            email: email(),
        },
        Command::UnlinkIdentity {
            user_id: id(7),
            issuer: "i".into(),
            subject: "s".into(),
        },
        Command::RequestImport {
            job_id: id(3),
            user_id: id(1),
            source: SourceRef::Video {
                video_id: "dQw4w9WgXcQ".into(),
            },
        },
        Command::ChangeImportStage {
            job_id: id(3),
            stage: ImportStage::Downloading,
        },
        Command::StoreTrack {
            track: crate::track::tests::stored(),
        },
        Command::DiscardTrack { track_id: track() },
        Command::FailImport {
            job_id: id(3),
            code: "too_long".into(),
            reason: "too long".into(),
        },
        Command::CompleteImport {
            job_id: id(3),
            user_id: id(1),
            track_id: track(),
        },
        Command::RemoveFromLibrary {
            user_id: id(1),
            track_id: track(),
        },
        Command::CreateAppCredential {
            user_id: id(1),
            credential_id: id(8),
            name: "phone".into(),
            nonce: "00".into(),
        },
        Command::RevokeAppCredential {
            user_id: id(1),
            credential_id: id(8),
        },
        Command::StarItem {
            user_id: id(1),
            item: star_item(),
        },
        Command::UnstarItem {
            user_id: id(1),
            item: star_item(),
        },
        Command::RecordPlay {
            user_id: id(1),
            track_id: track(),
            played_at: at(),
        },
        Command::EndSession {
            user_id: id(1),
            session_id: id(2),
        },
        Command::RequestPasswordReset { user_id: id(1) },
        Command::IssuePasswordReset {
            user_id: id(1),
            token_hash: TokenHash::of("t"),
            expires_at: at(),
        },
        Command::ResetPassword {
            user_id: id(1),
            token_hash: TokenHash::of("t"),
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        Command::ChangePassword {
            user_id: id(1),
            password_hash: PasswordHash::parse(HASH).unwrap(),
            session_id: id(2),
            refresh_token_hash: TokenHash::of("r"),
            session_expires_at: at(),
        },
        Command::SignOutOtherSessions {
            user_id: id(1),
            session_id: id(2),
            refresh_token_hash: TokenHash::of("r"),
            session_expires_at: at(),
        },
        Command::RequestEmailChange {
            user_id: id(1),
            email: bob(),
        },
        Command::IssueEmailChange {
            user_id: id(1),
            email: bob(),
            token_hash: TokenHash::of("t"),
            expires_at: at(),
        },
        Command::ConfirmEmailChange {
            user_id: id(1),
            token_hash: TokenHash::of("t"),
        },
        Command::SavePlayQueue {
            save_id: id(9),
            queue: crate::SavedQueue {
                user_id: id(1),
                track_ids: vec![track()],
                current_track: Some(track()),
                position_ms: 0,
                client: "web".into(),
                saved_at: OffsetDateTime::UNIX_EPOCH,
            },
        },
    ]
}

fn star_item() -> crate::FavouriteItem {
    crate::FavouriteItem::parse(crate::FavouriteKind::Track, "yt:dQw4w9WgXcQ").unwrap()
}

#[test]
fn a_star_and_a_play_each_land_on_their_own_small_aggregate() {
    let star = Command::StarItem {
        user_id: id(1),
        item: star_item(),
    };
    assert_eq!(
        next(&star, by(Some(id(1))), &[]),
        step(
            &format!("{}/track:yt:dQw4w9WgXcQ", id(1)),
            crate::FavouriteCommand::Star {
                user_id: id(1),
                item: star_item(),
                at: at(),
            },
            true
        )
    );
    let play = Command::RecordPlay {
        user_id: id(1),
        track_id: track(),
        played_at: at(),
    };
    assert_eq!(
        next(&play, by(Some(id(1))), &[]),
        step(
            &format!("{}/yt:dQw4w9WgXcQ@1800000000000", id(1)),
            crate::PlayCommand::Record {
                user_id: id(1),
                track_id: track(),
                played_at: at(),
                now: at(),
            },
            true
        )
    );
}

#[test]
fn a_play_queue_save_is_its_own_aggregate_dated_by_the_envelope() {
    let save = all_commands().pop().unwrap();
    match next(&save, by(Some(id(1))), &[]) {
        Next::Step(Step::Apply {
            aggregate_id,
            command: AggregateCommand::PlayQueueSave(PlayQueueCommand::Save(queue)),
            last: true,
        }) => {
            assert_eq!(aggregate_id, id(9).to_string());
            assert_eq!(queue.saved_at, by(None).at);
            assert_eq!(queue.track_ids, vec![track()]);
        }
        other => panic!("{other:?}"),
    }
}

/// A collection import: the collection, the playlist once, then one job per new entry,
/// the last committing with the outcome; nothing new finishes after the first step.
#[test]
fn a_collection_import_writes_the_collection_the_playlist_then_each_job() {
    use crate::collection::{job_id, CollectionEntry, CollectionImportEvent};
    let (user, batch, playlist) = (id(1), id(2), id(3));
    let entry = |n: u32| {
        let url = format!("http://127.0.0.1:9/t{n}.mp3");
        CollectionEntry {
            track_id: TrackId::of_direct_link(&url),
            source: SourceRef::url(&url).unwrap(),
            title: None,
        }
    };
    let command = Command::ImportCollection {
        collection_id: format!("{user}/0123"),
        batch_id: batch,
        user_id: user,
        url: "http://127.0.0.1:9/feed.xml".into(),
        title: "Tones".into(),
        playlist_id: playlist,
        entries: vec![entry(1), entry(2)],
        skipped: Vec::new(),
        listed: 2,
        capped: false,
    };
    let mut collection = CollectionImport::default();
    collection.apply(CollectionImportEvent::CollectionImported {
        batch_id: batch,
        user_id: user,
        url: "http://127.0.0.1:9/feed.xml".into(),
        title: "Tones".into(),
        playlist_id: playlist,
        added: vec![entry(1), entry(2)],
        skipped: Vec::new(),
        listed: 2,
        capped: false,
    });
    let Next::Step(Step::Apply {
        aggregate_id, last, ..
    }) = next(&command, by(Some(user)), &[])
    else {
        panic!("the collection first");
    };
    assert_eq!((aggregate_id, last), (format!("{user}/0123"), false));
    // Every entry taken before: done, nothing else written.
    let nothing_new = [applied(&[], CollectionImport::default())];
    assert_eq!(
        next(&command, by(Some(user)), &nothing_new),
        Next::Finish(Ok(()))
    );
    let mut done = vec![applied(&["CollectionImported"], collection)];
    match next(&command, by(Some(user)), &done) {
        Next::Step(Step::Apply {
            aggregate_id,
            command: AggregateCommand::Playlist(PlaylistCommand::Create { tracks, name, .. }),
            last: false,
        }) => {
            assert_eq!(aggregate_id, playlist.to_string());
            assert_eq!(tracks, vec![entry(1).track_id, entry(2).track_id]);
            assert_eq!(name, "Tones");
        }
        other => panic!("the playlist next, not {other:?}"),
    }
    done.push(applied(&["PlaylistCreated"], Playlist::default()));
    for index in 0..2 {
        match next(&command, by(Some(user)), &done) {
            Next::Step(Step::Apply {
                aggregate_id,
                command:
                    AggregateCommand::Import(ImportCommand::Request {
                        job_id: job,
                        source,
                        ..
                    }),
                last,
            }) => {
                assert_eq!(job, job_id(batch, index));
                assert_eq!(aggregate_id, job.to_string());
                assert_eq!(source, entry(index as u32 + 1).source);
                assert_eq!(last, index == 1);
            }
            other => panic!("job {index} next, not {other:?}"),
        }
        done.push(applied(&["ImportRequested"], Import::default()));
    }
    assert_eq!(next(&command, by(Some(user)), &done), Next::Finish(Ok(())));
}

/// A subscription check: the subscription first (a failed check is that one step, with
/// the outcome); then what it imports goes through the collection import of the same
/// id, into the same playlist; a check that imports nothing finishes there.
#[test]
fn a_subscription_check_records_itself_then_imports_through_the_collection() {
    use crate::collection::{self, CollectionEntry};
    use crate::subscription::{CheckResult, SubscriptionEvent};
    let user = id(1);
    let subscription_id = format!("{user}/0123");
    let url = "http://127.0.0.1:9/t1.mp3";
    let entry = CollectionEntry {
        track_id: TrackId::of_direct_link(url),
        source: SourceRef::url(url).unwrap(),
        title: None,
    };
    let at = OffsetDateTime::UNIX_EPOCH;
    let check = |result| Command::CheckSubscription {
        subscription_id: subscription_id.clone(),
        user_id: user,
        expected_version: 1,
        result,
    };
    let failed = check(CheckResult::Failed {
        rate_limited: true,
        reason: "HTTP Error 429".into(),
        backoff_base_s: 60,
        backoff_max_s: 600,
    });
    match next(&failed, by(Some(user)), &[]) {
        Next::Step(Step::Apply {
            aggregate_id,
            command: AggregateCommand::Subscription(_),
            last: true,
        }) => assert_eq!(aggregate_id, subscription_id),
        other => panic!("the subscription alone, not {other:?}"),
    }
    let listed = check(CheckResult::Listed {
        batch_id: id(2),
        title: "Tones".into(),
        entries: vec![entry.clone()],
        skipped: Vec::new(),
        listed: 1,
        capped: false,
        next_check_at: at,
    });
    let mut subscription = Subscription::default();
    subscription.apply(SubscriptionEvent::Subscribed {
        user_id: user,
        url: "http://127.0.0.1:9/feed.xml".into(),
        latest: None,
        at,
    });
    let mut nothing = subscription.clone();
    nothing.apply(SubscriptionEvent::SubscriptionChecked {
        check: 1,
        at,
        title: "Tones".into(),
        found: 1,
        new: 0,
        skipped: 0,
        batch_id: id(2),
        imported: Vec::new(),
        passed_over: Vec::new(),
        next_check_at: at,
    });
    let done = [applied(&["SubscriptionChecked"], nothing)];
    assert_eq!(next(&listed, by(Some(user)), &done), Next::Finish(Ok(())));
    subscription.apply(SubscriptionEvent::SubscriptionChecked {
        check: 1,
        at,
        title: "Tones".into(),
        found: 1,
        new: 1,
        skipped: 0,
        batch_id: id(2),
        imported: vec![entry.clone()],
        passed_over: Vec::new(),
        next_check_at: at,
    });
    let done = [applied(&["SubscriptionChecked"], subscription)];
    match next(&listed, by(Some(user)), &done) {
        Next::Step(Step::Apply {
            aggregate_id,
            command:
                AggregateCommand::CollectionImport(crate::CollectionImportCommand::Import {
                    batch_id,
                    entries,
                    playlist_id,
                    ..
                }),
            last: false,
        }) => {
            assert_eq!(aggregate_id, subscription_id);
            assert_eq!((batch_id, entries), (id(2), vec![entry]));
            assert_eq!(playlist_id, collection::playlist_id(&subscription_id));
        }
        other => panic!("the collection next, not {other:?}"),
    }
}

#[test]
fn a_discard_is_one_step_on_the_track() {
    let discard = Command::DiscardTrack { track_id: track() };
    assert_eq!(
        next(&discard, by(None), &[]),
        step("yt:dQw4w9WgXcQ", crate::TrackCommand::Discard, true)
    );
}

//! What a command does, as steps on aggregates: the business rules that span aggregates
//! ("complete an import = add the track to the library, then complete the job"; "admin
//! commands need an enabled admin"), kept pure. The processor runs the steps against the
//! event store and reports each result back; `next` decides the following step from the
//! command and the reports so far. Given the same reports it always answers the same.
//! The file is long because its one match names every command (a new one does not
//! compile without its plan); the account commands' plans are in `plan/account.rs`.

use uuid::Uuid;

use crate::command::{Command, CommandError, ErrorCode};
use crate::{
    AppCredentialCommand, AppCredentials, CollectionImport, CollectionImportCommand, EmailClaim,
    EmailClaimCommand, ExternalIdentity, ExternalIdentityCommand, Favourite, FavouriteCommand,
    Import, ImportCommand, LibraryCommand, LibraryEntry, Play, PlayCommand, PlayQueueCommand,
    PlayQueueSave, Playlist, PlaylistCommand, Session, SessionCommand, Subscription,
    SubscriptionCommand, Track, TrackCommand, TrackId, User, UserCommand,
};

/// Who issued the command and when (from its envelope).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Issued {
    /// `None`: the operator's CLI on the server.
    pub by: Option<Uuid>,
    pub at: time::OffsetDateTime,
}

/// What the runner does next.
// One per step, moved once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Step(Step),
    /// The command is done: committed, or refused with this error.
    Finish(Result<(), CommandError>),
}

// One per step, moved once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Load the user and report its state; writes nothing.
    ReadUser { user_id: Uuid },
    /// Load the track and report its state; writes nothing.
    ReadTrack { track_id: TrackId },
    /// Handle `command` on the aggregate and commit its events. `last`: the command's
    /// outcome commits with them (one transaction for the common one-step command).
    Apply {
        aggregate_id: String,
        command: AggregateCommand,
        last: bool,
    },
}

/// A command for one aggregate type.
#[derive(Debug, Clone, PartialEq)]
pub enum AggregateCommand {
    User(UserCommand),
    Session(SessionCommand),
    EmailClaim(EmailClaimCommand),
    ExternalIdentity(ExternalIdentityCommand),
    Import(ImportCommand),
    Track(TrackCommand),
    LibraryEntry(LibraryCommand),
    AppCredentials(AppCredentialCommand),
    Favourite(FavouriteCommand),
    Play(PlayCommand),
    Playlist(PlaylistCommand),
    PlayQueueSave(PlayQueueCommand),
    CollectionImport(CollectionImportCommand),
    Subscription(SubscriptionCommand),
}

/// What a step did, as the runner reports it.
// One per step, moved once: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Report {
    /// Committed (or found committed by an earlier delivery of this command).
    Applied {
        /// Types of the events this command has on the aggregate, in order.
        events: Vec<String>,
        /// The aggregate's state after the step.
        state: State,
    },
    Rejected(CommandError),
}

/// An aggregate's state after a step.
#[derive(Debug)]
pub enum State {
    User(User),
    Session(Session),
    EmailClaim(EmailClaim),
    ExternalIdentity(ExternalIdentity),
    Import(Import),
    Track(Track),
    LibraryEntry(LibraryEntry),
    AppCredentials(AppCredentials),
    Favourite(Favourite),
    Play(Play),
    Playlist(Playlist),
    PlayQueueSave(PlayQueueSave),
    CollectionImport(CollectionImport),
    Subscription(Subscription),
}

macro_rules! state_from {
    ($($aggregate:ident),*) => {$(
        impl From<$aggregate> for State {
            fn from(state: $aggregate) -> Self {
                Self::$aggregate(state)
            }
        }
    )*};
}
state_from!(
    User,
    Session,
    EmailClaim,
    ExternalIdentity,
    Import,
    Track,
    LibraryEntry,
    AppCredentials,
    Favourite,
    Play,
    Playlist,
    PlayQueueSave,
    CollectionImport,
    Subscription
);

/// The step after `done` (the reports of the steps taken so far, in order).
pub fn next(command: &Command, issued: Issued, done: &[Report]) -> Next {
    use Report::{Applied, Rejected};
    if let Some(next) = account::next(command, issued, done) {
        return next;
    }
    match command {
        Command::SignUp {
            user_id,
            email,
            password_hash,
        } => match done {
            [] => apply(
                email.as_str(),
                EmailClaimCommand::Claim { user_id: *user_id },
                false,
            ),
            // The address is taken: record the attempt (the mail reactor answers it with
            // a mail to the owner); the sign-up stays refused.
            [Rejected(_)] => apply(
                email.as_str(),
                EmailClaimCommand::RecordSignUpAttempt {
                    user_id: *user_id,
                    email: email.as_str().to_owned(),
                },
                false,
            ),
            [Rejected(taken), Applied { .. }] => Next::Finish(Err(taken.clone())),
            // A redelivery after the attempt above committed: still refused.
            [Applied { events, .. }] if events.iter().any(|e| e == "SignUpAttempted") => {
                Next::Finish(Err(crate::EmailClaimError::AlreadyClaimed.into()))
            }
            [Applied { .. }] => apply(
                &user_id.to_string(),
                UserCommand::SignUp {
                    user_id: *user_id,
                    email: email.clone(),
                    password_hash: password_hash.clone(),
                },
                true,
            ),
            _ => finished(done),
        },
        Command::SignUpWithIdentity {
            user_id,
            email,
            issuer,
            subject,
            email_verified,
            admin_bootstrap_email,
        } => match done {
            [] => apply(
                email.as_str(),
                EmailClaimCommand::Claim { user_id: *user_id },
                false,
            ),
            [Applied { .. }] => apply(
                &ExternalIdentity::id(issuer, subject),
                ExternalIdentityCommand::Link { user_id: *user_id },
                false,
            ),
            [Applied { .. }, Applied { .. }] => apply(
                &user_id.to_string(),
                UserCommand::SignUpWithIdentity {
                    user_id: *user_id,
                    email: email.clone(),
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                    email_verified: *email_verified,
                    admin_bootstrap_email: admin_bootstrap_email.clone(),
                },
                true,
            ),
            _ => finished(done),
        },
        Command::SignIn {
            user_id,
            session_id,
            method,
            require_verified,
            refresh_token_hash,
            session_expires_at,
            rehash,
        } => match done {
            // The user decides whether it may sign in (an event only for a rehash)...
            [] => apply(
                &user_id.to_string(),
                UserCommand::SignIn {
                    require_verified: *require_verified,
                    rehash: rehash.clone(),
                },
                false,
            ),
            // ...and the session records the sign-in under the epoch the user had when it
            // allowed it, so a sign-in that raced a disable starts dead.
            [Applied {
                state: State::User(user),
                ..
            }] => apply(
                &session_id.to_string(),
                SessionCommand::Start {
                    user_id: *user_id,
                    token_hash: refresh_token_hash.clone(),
                    expires_at: *session_expires_at,
                    method: *method,
                    epoch: user.session_epoch(),
                },
                true,
            ),
            _ => finished(done),
        },
        Command::RecordSignIn { user_id } => {
            only(done, user_id.to_string(), UserCommand::RecordSignIn)
        }
        Command::IssueVerification {
            user_id,
            token_hash,
            expires_at,
        } => only(
            done,
            user_id.to_string(),
            UserCommand::IssueVerification {
                token_hash: token_hash.clone(),
                expires_at: *expires_at,
            },
        ),
        Command::RequestVerification { user_id } => {
            only(done, user_id.to_string(), UserCommand::RequestVerification)
        }
        Command::VerifyEmail {
            user_id,
            token_hash,
            admin_bootstrap_email,
        } => only(
            done,
            user_id.to_string(),
            UserCommand::VerifyEmail {
                token_hash: token_hash.clone(),
                now: issued.at,
                admin_bootstrap_email: admin_bootstrap_email.clone(),
            },
        ),
        Command::RefreshSession {
            session_id,
            presented,
            replacement,
            grace_ms,
        } => only(
            done,
            session_id.to_string(),
            SessionCommand::Refresh {
                presented: presented.clone(),
                replacement: replacement.clone(),
                now: issued.at,
                grace: time::Duration::milliseconds(i64::from(*grace_ms)),
            },
        ),
        Command::RevokeSession {
            session_id,
            presented,
            reason,
        } => only(
            done,
            session_id.to_string(),
            SessionCommand::Revoke {
                presented: presented.clone(),
                reason: *reason,
            },
        ),
        Command::GrantRole { user_id, role } => by_admin(
            issued,
            done,
            *user_id,
            UserCommand::GrantRole { role: *role },
        ),
        Command::RevokeRole { user_id, role } => by_admin(
            issued,
            done,
            *user_id,
            UserCommand::RevokeRole { role: *role },
        ),
        // One event: it bumps the user's session epoch, which ends every session started
        // before it (checked where sessions are used), however many.
        Command::DisableUser { user_id } => by_admin(issued, done, *user_id, UserCommand::Disable),
        Command::EnableUser { user_id } => by_admin(issued, done, *user_id, UserCommand::Enable),
        Command::RequestImport {
            job_id,
            user_id,
            source,
        } => only(
            done,
            job_id.to_string(),
            ImportCommand::Request {
                job_id: *job_id,
                requested_by: *user_id,
                source: source.clone(),
            },
        ),
        Command::ChangeImportStage { job_id, stage } => only(
            done,
            job_id.to_string(),
            ImportCommand::ChangeStage { stage: *stage },
        ),
        Command::StoreTrack { track } => only(
            done,
            track.track_id.as_str().to_owned(),
            TrackCommand::Store(track.clone()),
        ),
        Command::DiscardTrack { track_id } => {
            only(done, track_id.as_str().to_owned(), TrackCommand::Discard)
        }
        Command::CompleteImport {
            job_id,
            user_id,
            track_id,
        } => match done {
            // Only a stored track completes a job: one discarded since the downloader
            // found it (ADR 42) has no objects left, so the job stores it again.
            [] => Next::Step(Step::ReadTrack {
                track_id: track_id.clone(),
            }),
            [Applied {
                state: State::Track(track),
                ..
            }] if track.stored().is_none() => Next::Finish(Err(CommandError::new(
                ErrorCode::TrackNotStored,
                "this track is no longer stored; its source is to be stored again",
            ))),
            // The track lands in the library first: a completed job always means the
            // requester has the track.
            [Applied { .. }] => apply(
                &LibraryEntry::id(*user_id, track_id),
                LibraryCommand::AddTrack {
                    user_id: *user_id,
                    track_id: track_id.clone(),
                    job_id: *job_id,
                },
                false,
            ),
            [Applied { .. }, Applied { .. }] => apply(
                &job_id.to_string(),
                ImportCommand::Complete {
                    track_id: track_id.clone(),
                },
                true,
            ),
            _ => finished(done),
        },
        Command::FailImport {
            job_id,
            code,
            reason,
        } => only(
            done,
            job_id.to_string(),
            ImportCommand::Fail {
                code: code.clone(),
                reason: reason.clone(),
            },
        ),
        Command::RemoveFromLibrary { user_id, track_id } => only(
            done,
            LibraryEntry::id(*user_id, track_id),
            LibraryCommand::RemoveTrack {
                user_id: *user_id,
                track_id: track_id.clone(),
            },
        ),
        Command::CreateAppCredential {
            user_id,
            credential_id,
            name,
            nonce,
        } => only(
            done,
            user_id.to_string(),
            AppCredentialCommand::Create {
                credential_id: *credential_id,
                name: name.clone(),
                nonce: nonce.clone(),
                now: issued.at,
            },
        ),
        Command::RevokeAppCredential {
            user_id,
            credential_id,
        } => only(
            done,
            user_id.to_string(),
            AppCredentialCommand::Revoke {
                credential_id: *credential_id,
            },
        ),
        Command::CorrectTrackDetails {
            user_id,
            track_id,
            correction,
        } => only(
            done,
            LibraryEntry::id(*user_id, track_id),
            LibraryCommand::CorrectDetails {
                user_id: *user_id,
                track_id: track_id.clone(),
                correction: correction.clone(),
            },
        ),
        Command::StarItem { user_id, item } => only(
            done,
            item.aggregate_id(*user_id),
            FavouriteCommand::Star {
                user_id: *user_id,
                item: item.clone(),
                at: issued.at,
            },
        ),
        Command::UnstarItem { user_id, item } => only(
            done,
            item.aggregate_id(*user_id),
            FavouriteCommand::Unstar {
                user_id: *user_id,
                item: item.clone(),
            },
        ),
        Command::RecordPlay {
            user_id,
            track_id,
            played_at,
        } => only(
            done,
            crate::play::id(*user_id, track_id, *played_at),
            PlayCommand::Record {
                user_id: *user_id,
                track_id: track_id.clone(),
                played_at: *played_at,
                now: issued.at,
            },
        ),
        // Planned in `account` above.
        Command::EndSession { .. }
        | Command::RequestPasswordReset { .. }
        | Command::IssuePasswordReset { .. }
        | Command::ResetPassword { .. }
        | Command::ChangePassword { .. }
        | Command::SignOutOtherSessions { .. }
        | Command::RequestEmailChange { .. }
        | Command::IssueEmailChange { .. }
        | Command::ConfirmEmailChange { .. }
        | Command::EraseUser { .. }
        | Command::LinkIdentity { .. }
        | Command::UnlinkIdentity { .. } => finished(done),
        Command::CreatePlaylist { .. }
        | Command::EditPlaylist { .. }
        | Command::MovePlaylistEntry { .. }
        | Command::ReplacePlaylistTracks { .. }
        | Command::DeletePlaylist { .. } => playlists::next(command, done),
        Command::ImportCollection { .. } => collections::next(command, done),
        Command::Subscribe { .. }
        | Command::PauseSubscription { .. }
        | Command::ResumeSubscription { .. }
        | Command::Unsubscribe { .. }
        | Command::CheckSubscription { .. } => subscriptions::next(command, issued, done),
        // One aggregate per save: nothing to load, nothing that grows (ADR 28). It is
        // dated by the envelope, the order the read model keeps.
        Command::SavePlayQueue { save_id, queue } => only(
            done,
            save_id.to_string(),
            PlayQueueCommand::Save(crate::SavedQueue {
                saved_at: issued.at,
                ..queue.clone()
            }),
        ),
    }
}

fn apply(aggregate_id: &str, command: impl Into<AggregateCommand>, last: bool) -> Next {
    Next::Step(Step::Apply {
        aggregate_id: aggregate_id.to_owned(),
        command: command.into(),
        last,
    })
}

/// A command of one step, which commits with the outcome.
fn only(done: &[Report], aggregate_id: String, command: impl Into<AggregateCommand>) -> Next {
    match done {
        [] => apply(&aggregate_id, command, true),
        _ => finished(done),
    }
}

/// Admin commands are decided against the issuer's state now, not the edge's view of it:
/// an issuer that is not (or no longer) an enabled admin is refused. No issuer is the
/// operator's CLI on the server (`jukebox admin`).
fn by_admin(issued: Issued, done: &[Report], user_id: Uuid, command: UserCommand) -> Next {
    let Some(issuer) = issued.by else {
        return only(done, user_id.to_string(), command);
    };
    match done {
        [] => Next::Step(Step::ReadUser { user_id: issuer }),
        [Report::Applied {
            state: State::User(admin),
            ..
        }] if !admin.is_admin() => Next::Finish(Err(CommandError::new(
            ErrorCode::NotAdmin,
            "this needs the admin role",
        ))),
        [_] => apply(&user_id.to_string(), command, true),
        _ => finished(done),
    }
}

/// The end of a plan: refused by the last step's rejection, else committed.
fn finished(done: &[Report]) -> Next {
    match done.last() {
        Some(Report::Rejected(error)) => Next::Finish(Err(error.clone())),
        _ => Next::Finish(Ok(())),
    }
}

macro_rules! aggregate_command_from {
    ($($variant:ident($command:ty)),*) => {$(
        impl From<$command> for AggregateCommand {
            fn from(command: $command) -> Self {
                Self::$variant(command)
            }
        }
    )*};
}
aggregate_command_from!(
    User(UserCommand),
    Session(SessionCommand),
    EmailClaim(EmailClaimCommand),
    ExternalIdentity(ExternalIdentityCommand),
    Import(ImportCommand),
    Track(TrackCommand),
    LibraryEntry(LibraryCommand),
    AppCredentials(AppCredentialCommand),
    Favourite(FavouriteCommand),
    Play(PlayCommand),
    Playlist(PlaylistCommand),
    PlayQueueSave(PlayQueueCommand),
    CollectionImport(CollectionImportCommand),
    Subscription(SubscriptionCommand)
);

mod account;
mod collections;
mod playlists;
mod subscriptions;
#[cfg(test)]
mod tests;

//! The commands that travel on the command bus, and how a rejected one is described.
//! It is long because it is the one list of commands and of error codes, each with its
//! wire name; an aggregate's own errors map to codes here.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::media::{ImportStage, SourceRef, TrackId};
use crate::track::StoredTrack;
use crate::value::{Email, PasswordHash, RevokeReason, Role, SignInMethod, TokenHash};

/// A command as the edge publishes it. Each variant names the aggregate it starts at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Command {
    /// Claims the email address, then creates the user.
    SignUp {
        user_id: Uuid,
        email: Email,
        password_hash: PasswordHash,
    },
    RecordSignIn {
        user_id: Uuid,
    },
    /// A new email-verification token for the user (its hash); replaces older ones.
    IssueVerification {
        user_id: Uuid,
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: time::OffsetDateTime,
    },
    /// Asks for a new verification link: `VerificationRequested`, which the mail reactor
    /// answers with a token (`IssueVerification`) and a mail.
    RequestVerification {
        user_id: Uuid,
    },
    /// Checked against the envelope's `issued_at`. The bootstrap address becomes admin.
    VerifyEmail {
        user_id: Uuid,
        token_hash: TokenHash,
        admin_bootstrap_email: Option<Email>,
    },
    /// Credentials were checked by the edge: record the sign-in, open the session.
    SignIn {
        user_id: Uuid,
        session_id: Uuid,
        method: SignInMethod,
        require_verified: bool,
        refresh_token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        session_expires_at: time::OffsetDateTime,
        rehash: Option<PasswordHash>,
    },
    /// Rotates a session's refresh token (reuse of a rotated one revokes the family).
    RefreshSession {
        session_id: Uuid,
        presented: TokenHash,
        replacement: TokenHash,
        /// How long after a rotation the token it replaced still gets the same
        /// replacement (two tabs refreshing at once; ADR 29). 0: strict.
        #[serde(default)]
        grace_ms: u32,
    },
    /// The owner ends one of their sessions.
    EndSession {
        user_id: Uuid,
        session_id: Uuid,
    },
    /// "Forgot password": the mail reactor answers `PasswordResetRequested` with a link.
    RequestPasswordReset {
        user_id: Uuid,
    },
    /// The reset token's hash, from the mail reactor; replaces older ones.
    IssuePasswordReset {
        user_id: Uuid,
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: time::OffsetDateTime,
    },
    /// The mailed link and a new password (checked against the envelope's `issued_at`);
    /// every session of the account ends.
    ResetPassword {
        user_id: Uuid,
        token_hash: TokenHash,
        password_hash: PasswordHash,
    },
    /// The edge checked the current password: the new one, every session ends, and the
    /// caller's new session opens.
    ChangePassword {
        user_id: Uuid,
        password_hash: PasswordHash,
        session_id: Uuid,
        refresh_token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        session_expires_at: time::OffsetDateTime,
    },
    /// Every session ends and the caller's new session opens.
    SignOutOtherSessions {
        user_id: Uuid,
        session_id: Uuid,
        refresh_token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        session_expires_at: time::OffsetDateTime,
    },
    /// A new address; the mail reactor mails it a confirmation link.
    RequestEmailChange {
        user_id: Uuid,
        email: Email,
    },
    /// The confirmation token's hash, from the mail reactor; replaces older ones.
    IssueEmailChange {
        user_id: Uuid,
        email: Email,
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: time::OffsetDateTime,
    },
    /// The link was followed: claims the new address, moves the account to it, releases
    /// the old one.
    ConfirmEmailChange {
        user_id: Uuid,
        token_hash: TokenHash,
    },
    RevokeSession {
        session_id: Uuid,
        presented: Option<TokenHash>,
        reason: RevokeReason,
    },
    /// Claims the address and the external identity, then creates the user.
    SignUpWithIdentity {
        user_id: Uuid,
        email: Email,
        issuer: String,
        subject: String,
        email_verified: bool,
        admin_bootstrap_email: Option<Email>,
    },
    GrantRole {
        user_id: Uuid,
        role: Role,
    },
    RevokeRole {
        user_id: Uuid,
        role: Role,
    },
    /// Disables the account and revokes its sessions.
    DisableUser {
        user_id: Uuid,
    },
    EnableUser {
        user_id: Uuid,
    },
    /// Erases the account (ADR 42): releases its address and identities, then records
    /// `UserErased`, destroying its key in that commit. By the owner (the edge checked
    /// the re-authentication) or an admin.
    EraseUser {
        user_id: Uuid,
    },
    /// The signed-in owner links a provider's identity (ADR 46): claims the identity,
    /// then records it on the account.
    LinkIdentity {
        user_id: Uuid,
        /// The configured provider's id, for the account's list.
        provider: String,
        issuer: String,
        subject: String,
        /// The address the provider verified (it need not be the account's).
        email: Email,
    },
    /// The owner unlinks an identity; the account keeps a way to sign in.
    UnlinkIdentity {
        user_id: Uuid,
        issuer: String,
        subject: String,
    },
    /// Opens an import job for the user (the downloader takes it from `ImportRequested`).
    RequestImport {
        job_id: Uuid,
        user_id: Uuid,
        source: SourceRef,
    },
    /// The downloader reached a new stage of the job.
    ChangeImportStage {
        job_id: Uuid,
        stage: ImportStage,
    },
    /// The downloader put the transcoded object in the store: record the track.
    StoreTrack {
        track: StoredTrack,
    },
    /// The track's objects are to leave the store (ADR 42): the mail reactor sends it for
    /// an erased user's upload nobody else has, then deletes what `TrackDiscarded` names.
    DiscardTrack {
        track_id: TrackId,
    },
    /// Adds the track to the requester's library, then completes the job.
    CompleteImport {
        job_id: Uuid,
        user_id: Uuid,
        track_id: TrackId,
    },
    FailImport {
        job_id: Uuid,
        code: String,
        reason: String,
    },
    /// Takes a track out of the user's library (the catalog keeps it).
    RemoveFromLibrary {
        user_id: Uuid,
        track_id: TrackId,
    },
    /// A named credential for music apps; the edge derives its secret from the nonce.
    CreateAppCredential {
        user_id: Uuid,
        credential_id: Uuid,
        name: String,
        nonce: String,
    },
    RevokeAppCredential {
        user_id: Uuid,
        credential_id: Uuid,
    },
    /// The owner corrects a track's details in their library.
    CorrectTrackDetails {
        user_id: Uuid,
        track_id: TrackId,
        correction: crate::music::Correction,
    },
    /// Stars a track, album or artist of the user's (the edge checked it is theirs).
    StarItem {
        user_id: Uuid,
        item: crate::FavouriteItem,
    },
    UnstarItem {
        user_id: Uuid,
        item: crate::FavouriteItem,
    },
    /// One play of a track; its command id is `play::command_id`, so a retry is the same.
    RecordPlay {
        user_id: Uuid,
        track_id: TrackId,
        #[serde(with = "time::serde::rfc3339")]
        played_at: time::OffsetDateTime,
    },
    /// A new playlist of the user's, with its first tracks (one add).
    CreatePlaylist {
        playlist_id: Uuid,
        user_id: Uuid,
        name: String,
        description: String,
        public: bool,
        tracks: Vec<TrackId>,
    },
    /// Details, removals and adds in one change, by the owner.
    EditPlaylist {
        playlist_id: Uuid,
        user_id: Uuid,
        edit: crate::playlist::Edit,
    },
    /// Moves one entry so that it ends at index `to`.
    MovePlaylistEntry {
        playlist_id: Uuid,
        user_id: Uuid,
        entry: u64,
        to: usize,
    },
    /// Replaces the whole list (how Subsonic apps reorder).
    ReplacePlaylistTracks {
        playlist_id: Uuid,
        user_id: Uuid,
        tracks: Vec<TrackId>,
    },
    DeletePlaylist {
        playlist_id: Uuid,
        user_id: Uuid,
    },
    /// Saves the user's play queue (a new save replaces the last; ADR 28). `save_id` is
    /// the save's own aggregate id.
    SavePlayQueue {
        save_id: Uuid,
        queue: crate::play_queue::SavedQueue,
    },
    /// Imports a playlist, channel or feed (issue 20, ADR 35): records the entries not
    /// taken before on the user's `CollectionImport`, writes them into its playlist (in
    /// the listing's order), then requests one import job per entry. `batch_id` names
    /// this import; each job's id is derived from it (`collection::job_id`).
    ImportCollection {
        collection_id: String,
        batch_id: Uuid,
        user_id: Uuid,
        url: String,
        title: String,
        playlist_id: Uuid,
        entries: Vec<crate::collection::CollectionEntry>,
        skipped: Vec<crate::collection::SkippedEntry>,
        listed: u64,
        capped: bool,
    },
    /// Subscribes the user to a playlist, channel or feed (issue 20, ADR 40); the first
    /// check imports at most `latest` entries when given.
    Subscribe {
        subscription_id: String,
        user_id: Uuid,
        url: String,
        latest: Option<u32>,
    },
    PauseSubscription {
        subscription_id: String,
        user_id: Uuid,
    },
    ResumeSubscription {
        subscription_id: String,
        user_id: Uuid,
    },
    Unsubscribe {
        subscription_id: String,
        user_id: Uuid,
    },
    /// One check of a subscription, claimed at `expected_version`: recorded on the
    /// `Subscription`, then its new entries imported as an `ImportCollection` would.
    CheckSubscription {
        subscription_id: String,
        user_id: Uuid,
        expected_version: u64,
        result: crate::subscription::CheckResult,
    },
}

impl Command {
    /// `<aggregate>.<command>`, the tail of the NATS subject `cmd.<aggregate>.<command>`.
    pub fn subject_suffix(&self) -> &'static str {
        match self {
            Self::SignUp { .. } => "user.signup",
            Self::RecordSignIn { .. } => "user.record_sign_in",
            Self::IssueVerification { .. } => "user.issue_verification",
            Self::RequestVerification { .. } => "user.request_verification",
            Self::VerifyEmail { .. } => "user.verify_email",
            Self::SignIn { .. } => "user.sign_in",
            Self::RefreshSession { .. } => "session.refresh",
            Self::RevokeSession { .. } => "session.revoke",
            Self::EndSession { .. } => "session.end",
            Self::RequestPasswordReset { .. } => "user.request_password_reset",
            Self::IssuePasswordReset { .. } => "user.issue_password_reset",
            Self::ResetPassword { .. } => "user.reset_password",
            Self::ChangePassword { .. } => "user.change_password",
            Self::SignOutOtherSessions { .. } => "user.sign_out_other_sessions",
            Self::RequestEmailChange { .. } => "user.request_email_change",
            Self::IssueEmailChange { .. } => "user.issue_email_change",
            Self::ConfirmEmailChange { .. } => "user.confirm_email_change",
            Self::SignUpWithIdentity { .. } => "user.signup_with_identity",
            Self::GrantRole { .. } => "user.grant_role",
            Self::RevokeRole { .. } => "user.revoke_role",
            Self::DisableUser { .. } => "user.disable",
            Self::EnableUser { .. } => "user.enable",
            Self::EraseUser { .. } => "user.erase",
            Self::LinkIdentity { .. } => "user.link_identity",
            Self::UnlinkIdentity { .. } => "user.unlink_identity",
            Self::RequestImport { .. } => "import.request",
            Self::ChangeImportStage { .. } => "import.change_stage",
            Self::StoreTrack { .. } => "track.store",
            Self::DiscardTrack { .. } => "track.discard",
            Self::CompleteImport { .. } => "import.complete",
            Self::FailImport { .. } => "import.fail",
            Self::RemoveFromLibrary { .. } => "library.remove_track",
            Self::CreateAppCredential { .. } => "app_credentials.create",
            Self::RevokeAppCredential { .. } => "app_credentials.revoke",
            Self::CorrectTrackDetails { .. } => "library.correct_details",
            Self::StarItem { .. } => "favourite.star",
            Self::UnstarItem { .. } => "favourite.unstar",
            Self::RecordPlay { .. } => "play.record",
            Self::CreatePlaylist { .. } => "playlist.create",
            Self::EditPlaylist { .. } => "playlist.edit",
            Self::MovePlaylistEntry { .. } => "playlist.move",
            Self::ReplacePlaylistTracks { .. } => "playlist.replace",
            Self::DeletePlaylist { .. } => "playlist.delete",
            Self::SavePlayQueue { .. } => "play_queue.save",
            Self::ImportCollection { .. } => "import.collection",
            Self::Subscribe { .. } => "subscription.subscribe",
            Self::PauseSubscription { .. } => "subscription.pause",
            Self::ResumeSubscription { .. } => "subscription.resume",
            Self::Unsubscribe { .. } => "subscription.unsubscribe",
            Self::CheckSubscription { .. } => "subscription.check",
        }
    }
}

/// Why a command was refused, for programs: the one list every crate matches on (the
/// edge maps each to an HTTP status). Serialized as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    EmailTaken,
    UserExists,
    UnknownUser,
    InvalidToken,
    TokenExpired,
    AlreadyVerified,
    AccountDisabled,
    EmailNotVerified,
    SessionExists,
    InvalidSession,
    SessionRevoked,
    SessionExpired,
    IdentityLinked,
    JobExists,
    UnknownJob,
    JobFinished,
    TrackStored,
    /// A completion for a track that is no longer (or never was) stored: its objects are
    /// gone (ADR 42), so the job stores the source again.
    TrackNotStored,
    NotInLibrary,
    /// An admin command from an issuer that is not (or no longer) an enabled admin.
    NotAdmin,
    UnknownCredential,
    CredentialExists,
    TooManyCredentials,
    InvalidCredentialName,
    InvalidItem,
    InvalidPlayTime,
    /// An address change to the address the account already has.
    SameEmail,
    UnknownPlaylist,
    PlaylistExists,
    NotPlaylistOwner,
    InvalidPlaylistName,
    InvalidPlaylistDescription,
    PositionOutOfRange,
    UnknownPlaylistEntry,
    PlaylistFull,
    /// A play queue that cannot be saved (too long, no current track, ...).
    InvalidPlayQueue,
    /// A collection import (its id is the user's and the URL's) of another user.
    NotCollectionOwner,
    TooManyEntries,
    AlreadySubscribed,
    UnknownSubscription,
    SubscriptionPaused,
    SubscriptionNotPaused,
    /// A check claimed before the subscription changed (another check, a pause).
    StaleCheck,
    InvalidLatest,
    AccountErased,
    ProviderLinked,
    IdentityNotLinked,
    LastSignInMethod,
}

impl ErrorCode {
    /// The wire name (`email_taken`), as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailTaken => "email_taken",
            Self::UserExists => "user_exists",
            Self::UnknownUser => "unknown_user",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
            Self::AlreadyVerified => "already_verified",
            Self::AccountDisabled => "account_disabled",
            Self::EmailNotVerified => "email_not_verified",
            Self::SessionExists => "session_exists",
            Self::InvalidSession => "invalid_session",
            Self::SessionRevoked => "session_revoked",
            Self::SessionExpired => "session_expired",
            Self::IdentityLinked => "identity_linked",
            Self::JobExists => "job_exists",
            Self::UnknownJob => "unknown_job",
            Self::JobFinished => "job_finished",
            Self::TrackStored => "track_stored",
            Self::TrackNotStored => "track_not_stored",
            Self::NotInLibrary => "not_in_library",
            Self::NotAdmin => "not_admin",
            Self::UnknownCredential => "unknown_credential",
            Self::CredentialExists => "credential_exists",
            Self::TooManyCredentials => "too_many_credentials",
            Self::InvalidCredentialName => "invalid_credential_name",
            Self::InvalidItem => "invalid_item",
            Self::InvalidPlayTime => "invalid_play_time",
            Self::SameEmail => "same_email",
            Self::UnknownPlaylist => "unknown_playlist",
            Self::PlaylistExists => "playlist_exists",
            Self::NotPlaylistOwner => "not_playlist_owner",
            Self::InvalidPlaylistName => "invalid_playlist_name",
            Self::InvalidPlaylistDescription => "invalid_playlist_description",
            Self::PositionOutOfRange => "position_out_of_range",
            Self::UnknownPlaylistEntry => "unknown_playlist_entry",
            Self::PlaylistFull => "playlist_full",
            Self::InvalidPlayQueue => "invalid_play_queue",
            Self::NotCollectionOwner => "not_collection_owner",
            Self::TooManyEntries => "too_many_entries",
            Self::AlreadySubscribed => "already_subscribed",
            Self::UnknownSubscription => "unknown_subscription",
            Self::SubscriptionPaused => "subscription_paused",
            Self::SubscriptionNotPaused => "subscription_not_paused",
            Self::StaleCheck => "stale_check",
            Self::InvalidLatest => "invalid_latest",
            Self::AccountErased => "account_erased",
            Self::ProviderLinked => "provider_linked",
            Self::IdentityNotLinked => "identity_not_linked",
            Self::LastSignInMethod => "last_sign_in_method",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a command was refused: a stable `code` for programs, a `message` for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct CommandError {
    pub code: ErrorCode,
    pub message: String,
}

impl CommandError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<crate::EmailClaimError> for CommandError {
    fn from(error: crate::EmailClaimError) -> Self {
        match error {
            crate::EmailClaimError::AlreadyClaimed => {
                Self::new(ErrorCode::EmailTaken, error.to_string())
            }
        }
    }
}

impl From<crate::UserError> for CommandError {
    fn from(error: crate::UserError) -> Self {
        let code = match error {
            crate::UserError::AlreadySignedUp => ErrorCode::UserExists,
            crate::UserError::UnknownUser => ErrorCode::UnknownUser,
            crate::UserError::InvalidVerificationToken => ErrorCode::InvalidToken,
            crate::UserError::VerificationTokenExpired => ErrorCode::TokenExpired,
            crate::UserError::AlreadyVerified => ErrorCode::AlreadyVerified,
            crate::UserError::Disabled => ErrorCode::AccountDisabled,
            crate::UserError::NotVerified => ErrorCode::EmailNotVerified,
            crate::UserError::InvalidResetToken | crate::UserError::InvalidEmailChangeToken => {
                ErrorCode::InvalidToken
            }
            crate::UserError::ResetTokenExpired | crate::UserError::EmailChangeTokenExpired => {
                ErrorCode::TokenExpired
            }
            crate::UserError::SameEmail => ErrorCode::SameEmail,
            crate::UserError::Erased => ErrorCode::AccountErased,
            crate::UserError::ProviderLinked => ErrorCode::ProviderLinked,
            crate::UserError::IdentityNotLinked => ErrorCode::IdentityNotLinked,
            crate::UserError::LastSignInMethod => ErrorCode::LastSignInMethod,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::SessionError> for CommandError {
    fn from(error: crate::SessionError) -> Self {
        let code = match error {
            crate::SessionError::AlreadyStarted => ErrorCode::SessionExists,
            crate::SessionError::InvalidToken => ErrorCode::InvalidSession,
            crate::SessionError::Revoked => ErrorCode::SessionRevoked,
            crate::SessionError::Expired => ErrorCode::SessionExpired,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::ExternalIdentityError> for CommandError {
    fn from(error: crate::ExternalIdentityError) -> Self {
        match error {
            crate::ExternalIdentityError::AlreadyLinked => {
                Self::new(ErrorCode::IdentityLinked, error.to_string())
            }
        }
    }
}

impl From<crate::ImportError> for CommandError {
    fn from(error: crate::ImportError) -> Self {
        let code = match error {
            crate::ImportError::AlreadyRequested => ErrorCode::JobExists,
            crate::ImportError::UnknownJob => ErrorCode::UnknownJob,
            crate::ImportError::AlreadyFinished => ErrorCode::JobFinished,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::TrackError> for CommandError {
    fn from(error: crate::TrackError) -> Self {
        match error {
            crate::TrackError::AlreadyStored => {
                Self::new(ErrorCode::TrackStored, error.to_string())
            }
        }
    }
}

impl From<crate::LibraryError> for CommandError {
    fn from(error: crate::LibraryError) -> Self {
        match error {
            crate::LibraryError::NotInLibrary => {
                Self::new(ErrorCode::NotInLibrary, error.to_string())
            }
        }
    }
}

impl From<crate::AppCredentialError> for CommandError {
    fn from(error: crate::AppCredentialError) -> Self {
        let code = match error {
            crate::AppCredentialError::UnknownCredential => ErrorCode::UnknownCredential,
            crate::AppCredentialError::AlreadyCreated => ErrorCode::CredentialExists,
            crate::AppCredentialError::TooMany => ErrorCode::TooManyCredentials,
            crate::AppCredentialError::InvalidName => ErrorCode::InvalidCredentialName,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::FavouriteError> for CommandError {
    fn from(error: crate::FavouriteError) -> Self {
        match error {
            crate::FavouriteError::InvalidItem => {
                Self::new(ErrorCode::InvalidItem, error.to_string())
            }
        }
    }
}

impl From<crate::PlayError> for CommandError {
    fn from(error: crate::PlayError) -> Self {
        match error {
            crate::PlayError::InvalidTime => {
                Self::new(ErrorCode::InvalidPlayTime, error.to_string())
            }
        }
    }
}

impl From<crate::PlaylistError> for CommandError {
    fn from(error: crate::PlaylistError) -> Self {
        let code = match error {
            crate::PlaylistError::UnknownPlaylist => ErrorCode::UnknownPlaylist,
            crate::PlaylistError::AlreadyCreated => ErrorCode::PlaylistExists,
            crate::PlaylistError::NotOwner => ErrorCode::NotPlaylistOwner,
            crate::PlaylistError::InvalidName => ErrorCode::InvalidPlaylistName,
            crate::PlaylistError::InvalidDescription => ErrorCode::InvalidPlaylistDescription,
            crate::PlaylistError::PositionOutOfRange { .. } => ErrorCode::PositionOutOfRange,
            crate::PlaylistError::UnknownEntry(_) => ErrorCode::UnknownPlaylistEntry,
            crate::PlaylistError::TooManyEntries => ErrorCode::PlaylistFull,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::PlayQueueError> for CommandError {
    fn from(error: crate::PlayQueueError) -> Self {
        Self::new(ErrorCode::InvalidPlayQueue, error.to_string())
    }
}

impl From<crate::SubscriptionError> for CommandError {
    fn from(error: crate::SubscriptionError) -> Self {
        use crate::SubscriptionError as E;
        let code = match error {
            E::AlreadySubscribed => ErrorCode::AlreadySubscribed,
            E::Unknown => ErrorCode::UnknownSubscription,
            E::Paused => ErrorCode::SubscriptionPaused,
            E::NotPaused => ErrorCode::SubscriptionNotPaused,
            E::StaleCheck => ErrorCode::StaleCheck,
            E::InvalidLatest => ErrorCode::InvalidLatest,
        };
        Self::new(code, error.to_string())
    }
}

impl From<crate::CollectionImportError> for CommandError {
    fn from(error: crate::CollectionImportError) -> Self {
        let code = match error {
            crate::CollectionImportError::NotOwner => ErrorCode::NotCollectionOwner,
            crate::CollectionImportError::TooMany => ErrorCode::TooManyEntries,
        };
        Self::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_code_travels_as_its_snake_case_name() {
        let error = CommandError::new(ErrorCode::EmailNotVerified, "verify first");
        let json = serde_json::to_value(&error).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "email_not_verified", "message": "verify first"})
        );
        assert_eq!(serde_json::from_value::<CommandError>(json).unwrap(), error);
        assert_eq!(ErrorCode::NotAdmin.to_string(), "not_admin");
    }
}

//! Write-side access state (issue 15, ADR 14): the rows in `access_users` and
//! `access_sessions` that sign-in and every authenticated request read. The processor
//! writes them in the statement that appends the `User`/`Session` events they come
//! from (`processor::Run::commit`), so an access decision never rests on a projection
//! that may lag. Each row is its aggregate's state after the step, so a row is only
//! ever written by commits on its own aggregate, serialized by the events primary key.

use cqrs_es::Aggregate;
use jukebox_domain::{
    AppCredentials, EmailClaim, ExternalIdentity, Import, Library, LibraryEntry, PlayQueueSave,
    Playlist, Session, Track, User,
};
use jukebox_nats::sealed;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// An `access_users` row (the JSON keys are its columns).
#[derive(Debug, Serialize)]
pub struct UserAccess {
    user_id: Uuid,
    email: String,
    password_hash: Option<String>,
    verified: bool,
    disabled: bool,
    roles: Vec<String>,
    session_epoch: u32,
    /// The account was erased in this step: the row is deleted instead, with the user's
    /// sessions, and the user's key destroyed (ADR 42).
    erased: bool,
}

/// An `access_sessions` row.
#[derive(Debug, Serialize)]
pub struct SessionAccess {
    session_id: Uuid,
    user_id: Uuid,
    /// `None` for a session started before epochs: its row was backfilled and keeps its
    /// epoch (an update never changes it).
    epoch: Option<u32>,
    revoked: bool,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// What an aggregate's state contributes to the access tables after a step.
pub trait AccessState: Aggregate {
    fn user_access(&self) -> Option<UserAccess> {
        None
    }
    fn session_access(&self, _aggregate_id: &str) -> Option<SessionAccess> {
        None
    }
    /// The payload keys of this aggregate's events that hold personal data or text the
    /// user typed (ADR 34, 43), sealed before the append with the key of
    /// [`AccessState::sealed_for`].
    fn sealed_keys() -> &'static [&'static str] {
        &[]
    }
    /// Whose key seals them, after the step (`None`: nobody's; they are written erased).
    fn sealed_for(&self, _aggregate_id: &str) -> Option<Uuid> {
        None
    }
}

impl AccessState for User {
    fn sealed_keys() -> &'static [&'static str] {
        sealed::PERSONAL_KEYS
    }
    fn sealed_for(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
    fn user_access(&self) -> Option<UserAccess> {
        if self.erased() {
            // Nothing personal travels to the statement that deletes the row.
            return Some(UserAccess {
                user_id: self.user_id()?,
                email: String::new(),
                password_hash: None,
                verified: false,
                disabled: true,
                roles: Vec::new(),
                session_epoch: self.session_epoch(),
                erased: true,
            });
        }
        Some(UserAccess {
            user_id: self.user_id()?,
            email: self.email()?.to_string(),
            password_hash: self.password_hash().map(|h| h.as_str().to_owned()),
            verified: self.verified(),
            disabled: self.disabled(),
            roles: self.roles().iter().map(|r| r.as_str().to_owned()).collect(),
            session_epoch: self.session_epoch(),
            erased: false,
        })
    }
}

impl AccessState for Session {
    fn session_access(&self, aggregate_id: &str) -> Option<SessionAccess> {
        Some(SessionAccess {
            session_id: aggregate_id.parse().ok()?,
            user_id: self.user_id()?,
            epoch: self.epoch(),
            revoked: self.revoked().is_some(),
            expires_at: self.expires_at()?,
        })
    }
}

impl AccessState for EmailClaim {
    // A sign-up attempt's address, for the mail to the account that holds it.
    fn sealed_keys() -> &'static [&'static str] {
        sealed::CLAIM_KEYS
    }
    fn sealed_for(&self, _aggregate_id: &str) -> Option<Uuid> {
        self.claimed_by()
    }
}
impl AccessState for ExternalIdentity {}
impl AccessState for Import {}
impl AccessState for Track {}
impl AccessState for Library {}
impl AccessState for LibraryEntry {
    // A correction's text, typed by the owner (ADR 43).
    fn sealed_keys() -> &'static [&'static str] {
        sealed::CORRECTION_KEYS
    }
    // Named `<user id>/<track id>`.
    fn sealed_for(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.split_once('/')?.0.parse().ok()
    }
}
impl AccessState for AppCredentials {
    fn sealed_keys() -> &'static [&'static str] {
        sealed::APP_CREDENTIAL_KEYS
    }
    // One aggregate per user, named by the user's id.
    fn sealed_for(&self, aggregate_id: &str) -> Option<Uuid> {
        aggregate_id.parse().ok()
    }
}
impl AccessState for jukebox_domain::Favourite {}
impl AccessState for jukebox_domain::Play {}
impl AccessState for Playlist {
    fn sealed_keys() -> &'static [&'static str] {
        sealed::PLAYLIST_KEYS
    }
    fn sealed_for(&self, _aggregate_id: &str) -> Option<Uuid> {
        self.owner()
    }
}
impl AccessState for PlayQueueSave {}
impl AccessState for jukebox_domain::CollectionImport {}
impl AccessState for jukebox_domain::Subscription {}

/// The CTEs `Run::commit` adds to its statement: `$12` is the `access_users` row and
/// `$13` the `access_sessions` row, each a JSON object or NULL. Each reads `appended`
/// first, so the events' primary key settles a race before the row is locked: two
/// commits on one aggregate locking in the other order would deadlock. An erased user's
/// row (`"erased": true`) deletes the access rows and destroys the key instead, in the
/// commit that appends `UserErased`, with what the edge wrote of the user's (where each
/// session and app credential was last used, what plays now) (ADR 42).
pub const ACCESS_CTES: &str = "
    erasure AS (
        SELECT ($12::jsonb ->> 'user_id')::uuid AS user_id
        WHERE ($12::jsonb ->> 'erased')::boolean AND (SELECT count(*) FROM appended) > 0
    ), erased_key AS (
        INSERT INTO user_keys (user_id, key, erased_at)
        SELECT user_id, NULL, now() FROM erasure
        ON CONFLICT (user_id) DO UPDATE SET key = NULL, erased_at = EXCLUDED.erased_at
        RETURNING 1
    ), erased_user AS (
        DELETE FROM access_users WHERE user_id IN (SELECT user_id FROM erasure) RETURNING 1
    ), erased_sessions AS (
        DELETE FROM access_sessions WHERE user_id IN (SELECT user_id FROM erasure) RETURNING 1
    ), erased_session_use AS (
        DELETE FROM session_use WHERE user_id IN (SELECT user_id FROM erasure) RETURNING 1
    ), erased_credential_use AS (
        DELETE FROM app_credential_use WHERE user_id IN (SELECT user_id FROM erasure)
        RETURNING 1
    ), erased_now_playing AS (
        DELETE FROM now_playing WHERE user_id IN (SELECT user_id FROM erasure) RETURNING 1
    ), user_access AS (
        INSERT INTO access_users (user_id, email, password_hash, verified, disabled, roles,
                                  session_epoch)
        SELECT r.user_id, r.email, r.password_hash, r.verified, r.disabled, r.roles,
               r.session_epoch
        FROM jsonb_to_record($12::jsonb) AS r(user_id uuid, email text, password_hash text,
             verified boolean, disabled boolean, roles text[], session_epoch integer)
        WHERE $12::jsonb IS NOT NULL AND (SELECT count(*) FROM appended) > 0
          AND NOT COALESCE(($12::jsonb ->> 'erased')::boolean, false)
        ON CONFLICT (user_id) DO UPDATE SET
            email = EXCLUDED.email, password_hash = EXCLUDED.password_hash,
            verified = EXCLUDED.verified, disabled = EXCLUDED.disabled,
            roles = EXCLUDED.roles, session_epoch = EXCLUDED.session_epoch
        RETURNING 1
    ), session_access AS (
        INSERT INTO access_sessions (session_id, user_id, epoch, revoked, expires_at)
        SELECT r.session_id, r.user_id, COALESCE(r.epoch, 0), r.revoked, r.expires_at
        FROM jsonb_to_record($13::jsonb) AS r(session_id uuid, user_id uuid, epoch integer,
             revoked boolean, expires_at timestamptz)
        WHERE $13::jsonb IS NOT NULL AND (SELECT count(*) FROM appended) > 0
        ON CONFLICT (session_id) DO UPDATE SET
            revoked = EXCLUDED.revoked, expires_at = EXCLUDED.expires_at
        RETURNING 1
    )";

//! `User`: one account. Its id is a UUID chosen by the edge when the sign-up arrives.
//!
//! Everything that changes an account is an event here, so the audit trail shows
//! sign-up, verification, role changes, Google links and disabling. A sign-in's event
//! lives on its `Session`, so using an account does not grow it (issue 16, ADR 14). The
//! owner's changes (password reset and change, new address) are in `changes.rs` (ADR 29),
//! linked sign-in providers in `identities.rs` (ADR 46). The file is long because its
//! command and event enums name every change an account has; their handling is split out.

mod changes;
mod erase;
mod event_type;
mod identities;
pub use changes::EmailChange;

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::value::{Email, PasswordHash, Role, SignInMethod, TokenHash};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct User {
    user_id: Option<Uuid>,
    email: Option<Email>,
    password_hash: Option<PasswordHash>,
    sign_ins: u64,
    verified: bool,
    /// The one verification token that is valid now (a new one replaces it).
    verification: Option<(TokenHash, OffsetDateTime)>,
    roles: BTreeSet<Role>,
    disabled: bool,
    /// Sessions started under an older epoch are no longer valid: disabling the account
    /// bumps it (the number of `UserDisabled` so far), so it costs one event.
    session_epoch: u32,
    /// Linked external identities, as (issuer, subject).
    identities: Vec<(String, String)>,
    /// The one password-reset token that is valid now (hash, expiry).
    #[serde(default)]
    password_reset: Option<(TokenHash, OffsetDateTime)>,
    /// The address change waiting for its link to be followed.
    #[serde(default)]
    email_change: Option<EmailChange>,
    /// Erased (ADR 42): every command is refused from then on.
    #[serde(default)]
    erased: bool,
}

impl User {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    pub fn password_hash(&self) -> Option<&PasswordHash> {
        self.password_hash.as_ref()
    }
    pub fn sign_ins(&self) -> u64 {
        self.sign_ins
    }
    pub fn verified(&self) -> bool {
        self.verified
    }
    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }
    pub fn disabled(&self) -> bool {
        self.disabled
    }
    pub fn session_epoch(&self) -> u32 {
        self.session_epoch
    }
    pub fn email_change(&self) -> Option<&EmailChange> {
        self.email_change.as_ref()
    }
    pub fn is_admin(&self) -> bool {
        self.user_id.is_some() && !self.disabled && self.roles.contains(&Role::Admin)
    }
    pub fn erased(&self) -> bool {
        self.erased
    }
    /// Linked external identities, as (issuer, subject).
    pub fn identities(&self) -> &[(String, String)] {
        &self.identities
    }

    fn known(&self) -> Result<(), UserError> {
        match self.user_id {
            Some(_) if self.erased => Err(UserError::Erased),
            Some(_) => Ok(()),
            None => Err(UserError::UnknownUser),
        }
    }

    /// Admin bootstrap: the configured address becomes admin once it is verified.
    fn bootstrap_admin(&self, bootstrap: Option<&Email>) -> Option<UserEvent> {
        let is_bootstrap = bootstrap.is_some() && bootstrap == self.email.as_ref();
        (is_bootstrap && !self.roles.contains(&Role::Admin))
            .then_some(UserEvent::RoleGranted { role: Role::Admin })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserCommand {
    SignUp {
        user_id: Uuid,
        email: Email,
        password_hash: PasswordHash,
    },
    /// A sign-in without a session (kept for the backbone benchmark).
    RecordSignIn,
    /// An account created by an external identity provider (Google).
    SignUpWithIdentity {
        user_id: Uuid,
        email: Email,
        issuer: String,
        subject: String,
        email_verified: bool,
        admin_bootstrap_email: Option<Email>,
    },
    IssueVerification {
        token_hash: TokenHash,
        expires_at: OffsetDateTime,
    },
    /// Someone asked for a new verification link; the mail reactor makes and mails it.
    RequestVerification,
    VerifyEmail {
        token_hash: TokenHash,
        now: OffsetDateTime,
        admin_bootstrap_email: Option<Email>,
    },
    /// The edge checked the credentials; this decides whether the account may sign in
    /// (the session it opens records the sign-in) and stores a rehash if there is one.
    SignIn {
        require_verified: bool,
        /// A new hash of the password when the stored one uses older parameters.
        rehash: Option<PasswordHash>,
    },
    GrantRole {
        role: Role,
    },
    RevokeRole {
        role: Role,
    },
    Disable,
    Enable,
    /// The mail reactor answers with a reset link.
    RequestPasswordReset,
    IssuePasswordReset {
        token_hash: TokenHash,
        expires_at: OffsetDateTime,
    },
    ResetPassword {
        token_hash: TokenHash,
        password_hash: PasswordHash,
        now: OffsetDateTime,
    },
    /// Checked by the edge; every session ends (epoch).
    ChangePassword {
        password_hash: PasswordHash,
    },
    EndSessions,
    RequestEmailChange {
        email: Email,
    },
    IssueEmailChange {
        email: Email,
        token_hash: TokenHash,
        expires_at: OffsetDateTime,
    },
    CheckEmailChange {
        token_hash: TokenHash,
        now: OffsetDateTime,
    },
    ChangeEmail {
        token_hash: TokenHash,
        now: OffsetDateTime,
    },
    /// Erasure (ADR 42): the processor destroys the user's key in the same commit.
    Erase,
    /// Whether the account may link this identity (ADR 46); writes nothing.
    CheckIdentityLink {
        issuer: String,
        subject: String,
    },
    /// Records a provider's identity the plan claimed for the account (ADR 46).
    LinkIdentity {
        provider: String,
        issuer: String,
        subject: String,
        email: Email,
    },
    UnlinkIdentity {
        issuer: String,
        subject: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserSignedUp {
        user_id: Uuid,
        email: Email,
        #[serde(default = "PasswordHash::withheld")]
        password_hash: PasswordHash,
    },
    /// Written by `RecordSignIn` only (the backbone benchmark).
    UserSignedIn,
    UserSignedUpWithIdentity {
        user_id: Uuid,
        email: Email,
        issuer: String,
        subject: String,
    },
    VerificationIssued {
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// A verification link was asked for (again); the mail reactor answers it.
    VerificationRequested {
        email: Email,
    },
    EmailVerified,
    /// Written before issue 16; a sign-in is now `SessionStarted` on its session. Kept so
    /// old logs load.
    SignedIn {
        session_id: Uuid,
        method: SignInMethod,
    },
    PasswordRehashed {
        #[serde(default = "PasswordHash::withheld")]
        password_hash: PasswordHash,
    },
    RoleGranted {
        role: Role,
    },
    RoleRevoked {
        role: Role,
    },
    UserDisabled,
    UserEnabled,
    /// The mail reactor mails a link to `email`.
    PasswordResetRequested {
        email: Email,
    },
    PasswordResetIssued {
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// A reset link was followed: the new password, and every session ends.
    PasswordReset {
        #[serde(default = "PasswordHash::withheld")]
        password_hash: PasswordHash,
    },
    /// Every session ends (the caller gets a new one).
    PasswordChanged {
        #[serde(default = "PasswordHash::withheld")]
        password_hash: PasswordHash,
    },
    /// "Sign out everywhere else": every session ends (the caller's new one follows).
    SessionsEnded,
    EmailChangeRequested {
        email: Email,
    },
    EmailChangeIssued {
        email: Email,
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// The new address was confirmed; the mail reactor tells the old one.
    EmailChanged {
        from: Email,
        to: Email,
    },
    /// The account was erased: its key is gone, so every sealed field of its events reads
    /// "erased"; read models delete the user's rows (ADR 42).
    UserErased,
    /// The owner linked a provider's identity (ADR 46). `provider` is the configured id
    /// at the time; `subject` and `email` (the provider's address) are sealed.
    IdentityAdded {
        provider: String,
        issuer: String,
        subject: String,
        email: Email,
    },
    IdentityRemoved {
        issuer: String,
        subject: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("this account already exists")]
    AlreadySignedUp,
    #[error("no such account")]
    UnknownUser,
    #[error("this verification link is invalid or was already used; ask for a new one")]
    InvalidVerificationToken,
    #[error("this verification link has expired; ask for a new one")]
    VerificationTokenExpired,
    #[error("this email address is already verified")]
    AlreadyVerified,
    #[error("this account is disabled; contact an administrator")]
    Disabled,
    #[error("verify your email address before signing in: follow the link we sent you, or ask for a new one")]
    NotVerified,
    #[error("this password reset link is invalid or was already used; ask for a new one")]
    InvalidResetToken,
    #[error("this password reset link has expired; ask for a new one")]
    ResetTokenExpired,
    #[error("this confirmation link is invalid or was already used; change the address again")]
    InvalidEmailChangeToken,
    #[error("this confirmation link has expired; change the address again")]
    EmailChangeTokenExpired,
    #[error("this is already the account's address")]
    SameEmail,
    #[error("this account was deleted")]
    Erased,
    #[error("this account already has a sign-in with this provider; unlink it first")]
    ProviderLinked,
    #[error("this provider is not linked to the account")]
    IdentityNotLinked,
    #[error(
        "this is the account's only way to sign in; link another provider or set a password first"
    )]
    LastSignInMethod,
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            UserCommand::SignUp {
                user_id,
                email,
                password_hash,
            } => {
                if self.user_id.is_some() {
                    return Err(UserError::AlreadySignedUp);
                }
                events.push(UserEvent::UserSignedUp {
                    user_id,
                    email,
                    password_hash,
                });
            }
            UserCommand::RecordSignIn => {
                self.known()?;
                events.push(UserEvent::UserSignedIn);
            }
            UserCommand::SignUpWithIdentity {
                user_id,
                email,
                issuer,
                subject,
                email_verified,
                admin_bootstrap_email,
            } => {
                if self.user_id.is_some() {
                    return Err(UserError::AlreadySignedUp);
                }
                events.push(UserEvent::UserSignedUpWithIdentity {
                    user_id,
                    email: email.clone(),
                    issuer,
                    subject,
                });
                if email_verified {
                    events.push(UserEvent::EmailVerified);
                    // Only a verified address counts for the bootstrap (SECURITY.md 12).
                    if admin_bootstrap_email.as_ref() == Some(&email) {
                        events.push(UserEvent::RoleGranted { role: Role::Admin });
                    }
                }
            }
            UserCommand::IssueVerification {
                token_hash,
                expires_at,
            } => {
                self.known()?;
                if self.verified {
                    return Err(UserError::AlreadyVerified);
                }
                events.push(UserEvent::VerificationIssued {
                    token_hash,
                    expires_at,
                });
            }
            UserCommand::RequestVerification => {
                self.known()?;
                if self.verified {
                    return Err(UserError::AlreadyVerified);
                }
                let email = self.email.clone().ok_or(UserError::UnknownUser)?;
                events.push(UserEvent::VerificationRequested { email });
            }
            UserCommand::VerifyEmail {
                token_hash,
                now,
                admin_bootstrap_email,
            } => {
                self.known()?;
                let Some((expected, expires_at)) = &self.verification else {
                    return Err(UserError::InvalidVerificationToken);
                };
                if !expected.matches(&token_hash) {
                    return Err(UserError::InvalidVerificationToken);
                }
                if now >= *expires_at {
                    return Err(UserError::VerificationTokenExpired);
                }
                events.push(UserEvent::EmailVerified);
                events.extend(self.bootstrap_admin(admin_bootstrap_email.as_ref()));
            }
            UserCommand::SignIn {
                require_verified,
                rehash,
            } => {
                self.known()?;
                if self.disabled {
                    return Err(UserError::Disabled);
                }
                if require_verified && !self.verified {
                    return Err(UserError::NotVerified);
                }
                if let Some(password_hash) = rehash {
                    events.push(UserEvent::PasswordRehashed { password_hash });
                }
            }
            UserCommand::GrantRole { role } => {
                self.known()?;
                if !self.roles.contains(&role) {
                    events.push(UserEvent::RoleGranted { role });
                }
            }
            UserCommand::RevokeRole { role } => {
                self.known()?;
                if self.roles.contains(&role) {
                    events.push(UserEvent::RoleRevoked { role });
                }
            }
            UserCommand::Disable => {
                self.known()?;
                if !self.disabled {
                    events.push(UserEvent::UserDisabled);
                }
            }
            UserCommand::Enable => {
                self.known()?;
                if self.disabled {
                    events.push(UserEvent::UserEnabled);
                }
            }
            command @ (UserCommand::CheckIdentityLink { .. }
            | UserCommand::LinkIdentity { .. }
            | UserCommand::UnlinkIdentity { .. }) => events.extend(self.link(command)?),
            change => events.extend(self.change(change)?),
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserSignedUp {
                user_id,
                email,
                password_hash,
            } => {
                self.user_id = Some(user_id);
                self.email = Some(email);
                self.password_hash = Some(password_hash);
            }
            UserEvent::UserSignedIn => self.sign_ins += 1,
            UserEvent::UserSignedUpWithIdentity {
                user_id,
                email,
                issuer,
                subject,
            } => {
                self.user_id = Some(user_id);
                self.email = Some(email);
                self.identities.push((issuer, subject));
            }
            UserEvent::VerificationIssued {
                token_hash,
                expires_at,
            } => self.verification = Some((token_hash, expires_at)),
            UserEvent::VerificationRequested { .. } => {}
            UserEvent::EmailVerified => {
                self.verified = true;
                self.verification = None;
            }
            UserEvent::SignedIn { .. } => self.sign_ins += 1,
            UserEvent::PasswordRehashed { password_hash } => {
                self.password_hash = Some(password_hash)
            }
            UserEvent::RoleGranted { role } => {
                self.roles.insert(role);
            }
            UserEvent::RoleRevoked { role } => {
                self.roles.remove(&role);
            }
            UserEvent::UserDisabled => {
                self.disabled = true;
                self.session_epoch += 1;
            }
            UserEvent::UserEnabled => self.disabled = false,
            event @ (UserEvent::IdentityAdded { .. } | UserEvent::IdentityRemoved { .. }) => {
                self.apply_link(event)
            }
            change => self.apply_change(change),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use time::Duration;

    type Framework = TestFramework<User>;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    fn alice() -> Email {
        Email::parse("alice@example.com").unwrap()
    }

    fn signed_up(user_id: Uuid) -> UserEvent {
        UserEvent::UserSignedUp {
            user_id,
            email: alice(),
            password_hash: PasswordHash::parse(HASH).unwrap(),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn issued(token: &str) -> UserEvent {
        UserEvent::VerificationIssued {
            token_hash: TokenHash::of(token),
            expires_at: now() + Duration::hours(24),
        }
    }

    fn verify(token: &str, at: OffsetDateTime, bootstrap: Option<Email>) -> UserCommand {
        UserCommand::VerifyEmail {
            token_hash: TokenHash::of(token),
            now: at,
            admin_bootstrap_email: bootstrap,
        }
    }

    fn sign_in(require_verified: bool) -> UserCommand {
        UserCommand::SignIn {
            require_verified,
            rehash: None,
        }
    }

    #[test]
    fn sign_up_creates_the_account() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given_no_previous_events()
            .when(UserCommand::SignUp {
                user_id,
                email: alice(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
            })
            .then_expect_events(vec![signed_up(user_id)]);
    }

    #[test]
    fn signing_up_twice_is_refused() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::SignUp {
                user_id,
                email: alice(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
            })
            .then_expect_error_message("this account already exists");
    }

    #[test]
    fn sign_in_is_recorded_for_a_known_user_only() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::RecordSignIn)
            .then_expect_events(vec![UserEvent::UserSignedIn]);
        Framework::with(())
            .given_no_previous_events()
            .when(UserCommand::RecordSignIn)
            .then_expect_error_message("no such account");
    }

    #[test]
    fn the_latest_token_verifies_once_before_it_expires() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given(vec![signed_up(user_id), issued("t1")])
            .when(verify("t1", now(), None))
            .then_expect_events(vec![UserEvent::EmailVerified]);
        // A second use finds no pending token.
        Framework::with(())
            .given(vec![
                signed_up(user_id),
                issued("t1"),
                UserEvent::EmailVerified,
            ])
            .when(verify("t1", now(), None))
            .then_expect_error_message(
                "this verification link is invalid or was already used; ask for a new one",
            );
        // A newer token replaces the older one.
        Framework::with(())
            .given(vec![signed_up(user_id), issued("t1"), issued("t2")])
            .when(verify("t1", now(), None))
            .then_expect_error_message(
                "this verification link is invalid or was already used; ask for a new one",
            );
        Framework::with(())
            .given(vec![signed_up(user_id), issued("t1")])
            .when(verify("t1", now() + Duration::hours(25), None))
            .then_expect_error_message("this verification link has expired; ask for a new one");
    }

    #[test]
    fn the_bootstrap_address_becomes_admin_when_verified() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given(vec![signed_up(user_id), issued("t1")])
            .when(verify("t1", now(), Some(alice())))
            .then_expect_events(vec![
                UserEvent::EmailVerified,
                UserEvent::RoleGranted { role: Role::Admin },
            ]);
        Framework::with(())
            .given(vec![signed_up(user_id), issued("t1")])
            .when(verify(
                "t1",
                now(),
                Some(Email::parse("boss@example.com").unwrap()),
            ))
            .then_expect_events(vec![UserEvent::EmailVerified]);
    }

    #[test]
    fn an_unverified_identity_address_does_not_bootstrap_an_admin() {
        let command = |email_verified| UserCommand::SignUpWithIdentity {
            user_id: Uuid::nil(),
            email: alice(),
            issuer: "https://accounts.google.com".into(),
            subject: "123".into(),
            email_verified,
            admin_bootstrap_email: Some(alice()),
        };
        let created = UserEvent::UserSignedUpWithIdentity {
            user_id: Uuid::nil(),
            email: alice(),
            issuer: "https://accounts.google.com".into(),
            subject: "123".into(),
        };
        Framework::with(())
            .given_no_previous_events()
            .when(command(false))
            .then_expect_events(vec![created.clone()]);
        Framework::with(())
            .given_no_previous_events()
            .when(command(true))
            .then_expect_events(vec![
                created,
                UserEvent::EmailVerified,
                UserEvent::RoleGranted { role: Role::Admin },
            ]);
    }

    #[test]
    fn sign_in_is_allowed_without_an_event_unless_disabled_or_unverified() {
        let user_id = Uuid::now_v7();
        // The account does not grow: the session records the sign-in.
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(sign_in(false))
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(sign_in(true))
            .then_expect_error_message("verify your email address before signing in: follow the link we sent you, or ask for a new one");
        Framework::with(())
            .given(vec![signed_up(user_id), UserEvent::UserDisabled])
            .when(sign_in(false))
            .then_expect_error_message("this account is disabled; contact an administrator");
    }

    #[test]
    fn an_old_hash_is_replaced_at_sign_in() {
        let user_id = Uuid::now_v7();
        let rehash = PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3").unwrap();
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::SignIn {
                require_verified: false,
                rehash: Some(rehash.clone()),
            })
            .then_expect_events(vec![UserEvent::PasswordRehashed {
                password_hash: rehash,
            }]);
    }

    #[test]
    fn roles_and_disabling_are_idempotent() {
        let user_id = Uuid::now_v7();
        let admin = UserEvent::RoleGranted { role: Role::Admin };
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::GrantRole { role: Role::Admin })
            .then_expect_events(vec![admin.clone()]);
        Framework::with(())
            .given(vec![signed_up(user_id), admin.clone()])
            .when(UserCommand::GrantRole { role: Role::Admin })
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![signed_up(user_id), admin])
            .when(UserCommand::RevokeRole { role: Role::Admin })
            .then_expect_events(vec![UserEvent::RoleRevoked { role: Role::Admin }]);
        Framework::with(())
            .given(vec![signed_up(user_id), UserEvent::UserDisabled])
            .when(UserCommand::Disable)
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![signed_up(user_id), UserEvent::UserDisabled])
            .when(UserCommand::Enable)
            .then_expect_events(vec![UserEvent::UserEnabled]);
    }

    #[test]
    fn disabling_bumps_the_session_epoch_and_old_sign_ins_still_fold() {
        let user_id = Uuid::now_v7();
        let mut user = User::default();
        for event in [
            signed_up(user_id),
            // A sign-in event written before issue 16 still loads.
            serde_json::from_value(serde_json::json!({"SignedIn": {
                "session_id": Uuid::nil(), "method": "password"}}))
            .unwrap(),
            UserEvent::UserDisabled,
            UserEvent::UserEnabled,
        ] {
            user.apply(event);
        }
        assert_eq!((user.sign_ins(), user.session_epoch()), (1, 1));
        assert!(!user.disabled());
    }

    #[test]
    fn a_new_link_is_requested_only_while_unverified() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::RequestVerification)
            .then_expect_events(vec![UserEvent::VerificationRequested { email: alice() }]);
        Framework::with(())
            .given(vec![signed_up(user_id), UserEvent::EmailVerified])
            .when(UserCommand::RequestVerification)
            .then_expect_error_message("this email address is already verified");
        Framework::with(())
            .given_no_previous_events()
            .when(UserCommand::RequestVerification)
            .then_expect_error_message("no such account");
    }
}

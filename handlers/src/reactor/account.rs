//! Mails of the owner's account changes (issue 21, ADR 29).
//!
//! - `PasswordResetRequested`: a reset link to the account's address;
//!   `EmailChangeRequested`: a confirmation link to the new address. Each token is
//!   derived from the event (its own purpose label) and its hash committed before the
//!   mail goes out, as for verification links (ADR 15).
//! - `PasswordReset`, `PasswordChanged`: a notice to the account's address now;
//!   `EmailChanged`: a notice to the old address, with what to do if it was not them.

use jukebox_domain::{Command, Email, TokenPurpose, UserEvent, VerificationToken};
use jukebox_nats::{CommandBus, EventRecord};
use uuid::Uuid;

use super::{message_id, KindOfMail, MailReactor, ReactError};
use crate::mail::Mail;

impl MailReactor {
    /// A reset or confirmation link, once its token's hash is committed; `None` when the
    /// token was refused (no such account any more).
    pub(super) async fn link(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
    ) -> Result<Option<KindOfMail>, ReactError> {
        let user_id = user_id(record)?;
        let now = time::OffsetDateTime::now_utc();
        let key = &self.settings.token_key;
        let base = &self.settings.public_base_url;
        let (command, mail) = match record.decode::<UserEvent>() {
            Ok(UserEvent::PasswordResetRequested { email }) => {
                let token = VerificationToken::derive_for(
                    TokenPurpose::PasswordReset,
                    key,
                    user_id,
                    event_id,
                );
                let ttl = self.settings.password_reset_ttl;
                let command = Command::IssuePasswordReset {
                    user_id,
                    token_hash: token.hash(),
                    expires_at: now + ttl,
                };
                let minutes = ttl.as_secs() / 60;
                let mail = KindOfMail {
                    kind: "password_reset",
                    mail: Mail {
                        message_id: message_id(event_id),
                        to: email,
                        subject: "Reset your Jukebox password".into(),
                        body: format!(
                            "Hello,\n\nsomeone (perhaps you) asked to reset the password of \
                             your Jukebox account. Choose a new one by opening this link \
                             within {minutes} minutes:\n\n{base}/?reset={}\n\nThe link works \
                             once. Every device signed in to your account will be signed out.\n\n\
                             If you did not ask for this, ignore this message: your password \
                             stays as it is.\n",
                            token.as_str()
                        ),
                    },
                };
                (command, mail)
            }
            Ok(UserEvent::EmailChangeRequested { email }) => {
                let token = VerificationToken::derive_for(
                    TokenPurpose::EmailChange,
                    key,
                    user_id,
                    event_id,
                );
                let ttl = self.settings.verification_ttl;
                let command = Command::IssueEmailChange {
                    user_id,
                    email: email.clone(),
                    token_hash: token.hash(),
                    expires_at: now + ttl,
                };
                let mail = KindOfMail {
                    kind: "email_change",
                    mail: Mail {
                        message_id: message_id(event_id),
                        to: email,
                        subject: "Confirm your new address for Jukebox".into(),
                        body: format!(
                            "Hello,\n\nyour Jukebox account asked to use this address from now \
                             on. Confirm it by opening this link within {} hours:\n\n\
                             {base}/?confirm-email={}\n\nUntil then the account keeps its \
                             current address. If you did not ask for this, ignore this message.\n",
                            ttl.as_secs() / 3600,
                            token.as_str()
                        ),
                    },
                };
                (command, mail)
            }
            _ => return Err(ReactError::Transient("not a request for a link".into())),
        };
        Ok(self
            .issue(bus, record, event_id, command)
            .await?
            .then_some(mail))
    }

    /// A notice of a changed password (to the account's address now) or address (to the
    /// old one). `None` when the account is gone.
    pub(super) async fn notice(
        &self,
        record: &EventRecord,
        event_id: &str,
    ) -> Result<Option<KindOfMail>, ReactError> {
        let base = &self.settings.public_base_url;
        let report = format!(
            "If it was not you, someone else controls your account: reset your password at \
             {base}/ (\"Forgot password\") and tell your Jukebox administrator, or reply to \
             this message."
        );
        let (kind, to, subject, body) = match record.decode::<UserEvent>() {
            Ok(UserEvent::EmailChanged { from, to }) => (
                "email_changed",
                from,
                "The address of your Jukebox account was changed".to_owned(),
                format!(
                    "Hello,\n\nyour Jukebox account now uses the address {to} instead of this \
                     one. This address no longer signs in.\n\n{report}\n"
                ),
            ),
            Ok(event @ (UserEvent::PasswordReset { .. } | UserEvent::PasswordChanged { .. })) => {
                let Some(to) = self.account_address(user_id(record)?).await? else {
                    return Ok(None);
                };
                let how = match event {
                    UserEvent::PasswordReset { .. } => "reset with a link mailed to this address",
                    _ => "changed",
                };
                (
                    "password_changed",
                    to,
                    "The password of your Jukebox account was changed".to_owned(),
                    format!(
                        "Hello,\n\nthe password of your Jukebox account was {how}, and every \
                         device signed in to it was signed out.\n\n{report}\n"
                    ),
                )
            }
            _ => return Err(ReactError::Transient("not a notice event".into())),
        };
        Ok(Some(KindOfMail {
            kind,
            mail: Mail {
                message_id: message_id(event_id),
                to,
                subject,
                body,
            },
        }))
    }

    /// The account's address now, from the write-side access state (ADR 14).
    async fn account_address(&self, user_id: Uuid) -> Result<Option<Email>, ReactError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT email FROM access_users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(email,)| Email::parse(&email).ok()))
    }
}

fn user_id(record: &EventRecord) -> Result<Uuid, ReactError> {
    record
        .aggregate_id
        .parse()
        .map_err(|_| ReactError::Transient("a user id that is not a UUID".into()))
}

//! What an account's owner changes (issue 21, ADR 29): a forgotten password reset by a
//! mailed link, a changed password, "sign out everywhere else", and a new address that
//! counts only once a link mailed to it is followed.
//!
//! Links follow the verification token's rules (ADR 15): the mail reactor derives the
//! token from the event that asked for it and commits only its hash here; a newer one
//! replaces the older, a used or expired one is refused. Ending every session is one
//! event: it bumps the session epoch, as a disable does (ADR 14).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{User, UserCommand, UserError, UserEvent};
use crate::value::{Email, TokenHash};

/// An address change waiting for its link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailChange {
    pub email: Email,
    token_hash: TokenHash,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl User {
    /// The events of the owner's changes; other commands are handled in `handle`.
    pub(super) fn change(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        Ok(match command {
            UserCommand::RequestPasswordReset => {
                self.known()?;
                if self.disabled {
                    return Err(UserError::Disabled);
                }
                let email = self.email.clone().ok_or(UserError::UnknownUser)?;
                vec![UserEvent::PasswordResetRequested { email }]
            }
            UserCommand::IssuePasswordReset {
                token_hash,
                expires_at,
            } => {
                self.known()?;
                vec![UserEvent::PasswordResetIssued {
                    token_hash,
                    expires_at,
                }]
            }
            UserCommand::ResetPassword {
                token_hash,
                password_hash,
                now,
            } => {
                self.known()?;
                let Some((expected, expires_at)) = &self.password_reset else {
                    return Err(UserError::InvalidResetToken);
                };
                if !expected.matches(&token_hash) {
                    return Err(UserError::InvalidResetToken);
                }
                if now >= *expires_at {
                    return Err(UserError::ResetTokenExpired);
                }
                vec![UserEvent::PasswordReset { password_hash }]
            }
            UserCommand::ChangePassword { password_hash } => {
                self.allowed()?;
                vec![UserEvent::PasswordChanged { password_hash }]
            }
            UserCommand::EndSessions => {
                self.allowed()?;
                vec![UserEvent::SessionsEnded]
            }
            UserCommand::RequestEmailChange { email } => {
                self.allowed()?;
                if self.email.as_ref() == Some(&email) {
                    return Err(UserError::SameEmail);
                }
                vec![UserEvent::EmailChangeRequested { email }]
            }
            UserCommand::IssueEmailChange {
                email,
                token_hash,
                expires_at,
            } => {
                self.known()?;
                vec![UserEvent::EmailChangeIssued {
                    email,
                    token_hash,
                    expires_at,
                }]
            }
            // Checks the link without writing (the plan claims the address next).
            UserCommand::CheckEmailChange { token_hash, now } => {
                self.pending_change(&token_hash, now)?;
                vec![]
            }
            UserCommand::ChangeEmail { token_hash, now } => {
                let change = self.pending_change(&token_hash, now)?;
                let from = self.email.clone().ok_or(UserError::UnknownUser)?;
                vec![UserEvent::EmailChanged {
                    from,
                    to: change.email.clone(),
                }]
            }
            UserCommand::Erase => {
                self.known()?;
                vec![UserEvent::UserErased]
            }
            _ => vec![],
        })
    }

    pub(super) fn apply_change(&mut self, event: UserEvent) {
        match event {
            UserEvent::PasswordResetIssued {
                token_hash,
                expires_at,
            } => self.password_reset = Some((token_hash, expires_at)),
            UserEvent::PasswordReset { password_hash } => {
                self.password_hash = Some(password_hash);
                self.password_reset = None;
                self.session_epoch += 1;
            }
            UserEvent::PasswordChanged { password_hash } => {
                self.password_hash = Some(password_hash);
                self.password_reset = None;
                self.session_epoch += 1;
            }
            UserEvent::SessionsEnded => self.session_epoch += 1,
            UserEvent::EmailChangeIssued {
                email,
                token_hash,
                expires_at,
            } => {
                self.email_change = Some(EmailChange {
                    email,
                    token_hash,
                    expires_at,
                })
            }
            UserEvent::EmailChanged { to, .. } => {
                self.email = Some(to);
                self.email_change = None;
                // A reset link went to the old address: it no longer counts.
                self.password_reset = None;
            }
            UserEvent::UserErased => self.apply_erased(),
            _ => {}
        }
    }

    /// Known and not disabled.
    pub(super) fn allowed(&self) -> Result<(), UserError> {
        self.known()?;
        if self.disabled {
            return Err(UserError::Disabled);
        }
        Ok(())
    }

    fn pending_change(
        &self,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<&EmailChange, UserError> {
        self.allowed()?;
        let change = self
            .email_change
            .as_ref()
            .filter(|c| c.token_hash.matches(token_hash))
            .ok_or(UserError::InvalidEmailChangeToken)?;
        if now >= change.expires_at {
            return Err(UserError::EmailChangeTokenExpired);
        }
        Ok(change)
    }
}

#[cfg(test)]
mod tests;

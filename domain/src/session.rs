//! `Session`: one refresh-token family, opened at sign-in. Its id is a random UUID that
//! the refresh token carries (`<session_id>.<secret>`); only hashes of the secrets are
//! kept. Every refresh rotates the token; presenting a token that was already rotated
//! means it leaked, so the whole family is revoked and the reuse is recorded.
//!
//! `SessionStarted` is the sign-in's record (it names the user and the method) and
//! carries the user's session epoch at that moment: a later `UserDisabled` bumps the
//! user's epoch, which ends every older session without touching them (ADR 14).
//!
//! Two tabs refreshing with one token at once (ADR 29): the edge derives the new token
//! from the presented one with a server key, so both ask for the same replacement. The
//! second finds the token just rotated *to that replacement*, within the grace window,
//! and is answered with it (no event). Any other reuse still revokes the family.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::value::{RevokeReason, SignInMethod, TokenHash};

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Session {
    user_id: Option<Uuid>,
    current: Option<TokenHash>,
    rotated: Vec<TokenHash>,
    expires_at: Option<OffsetDateTime>,
    revoked: Option<RevokeReason>,
    /// `None` for sessions started before epochs existed (they were revoked one by one).
    epoch: Option<u32>,
    /// When `current` replaced the last of `rotated` (`None` before ADR 29).
    #[serde(default)]
    rotated_at: Option<OffsetDateTime>,
}

impl Session {
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_id
    }
    pub fn revoked(&self) -> Option<RevokeReason> {
        self.revoked
    }
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.expires_at
    }
    pub fn epoch(&self) -> Option<u32> {
        self.epoch
    }

    /// `presented` is the token the last rotation replaced, it asks for the replacement
    /// that rotation made, and the rotation is younger than `grace`.
    fn same_rotation(
        &self,
        presented: &TokenHash,
        replacement: &TokenHash,
        now: OffsetDateTime,
        grace: time::Duration,
    ) -> bool {
        self.rotated.last().is_some_and(|r| r.matches(presented))
            && self
                .current
                .as_ref()
                .is_some_and(|c| c.matches(replacement))
            && self.rotated_at.is_some_and(|at| now < at + grace)
    }

    fn is_family_token(&self, token_hash: &TokenHash) -> bool {
        self.current.as_ref().is_some_and(|c| c.matches(token_hash))
            || self.rotated.iter().any(|r| r.matches(token_hash))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionCommand {
    Start {
        user_id: Uuid,
        token_hash: TokenHash,
        expires_at: OffsetDateTime,
        method: SignInMethod,
        /// The user's session epoch when the user aggregate allowed the sign-in.
        epoch: u32,
    },
    Refresh {
        presented: TokenHash,
        replacement: TokenHash,
        now: OffsetDateTime,
        /// How long after a rotation the token it replaced may ask for the same
        /// replacement again (two tabs at once).
        grace: time::Duration,
    },
    /// The owner ends one of their sessions (devices page).
    End { user_id: Uuid },
    /// Ends the family. `presented` (logout) must be one of its tokens; `None` is an
    /// operator's or the system's decision (a disabled user).
    Revoke {
        presented: Option<TokenHash>,
        reason: RevokeReason,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SessionEvent {
    SessionStarted {
        user_id: Uuid,
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        method: SignInMethod,
        /// Absent in events written before issue 16.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u32>,
    },
    SessionRefreshed {
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
        /// Absent in events written before ADR 29.
        #[serde(
            default,
            with = "time::serde::rfc3339::option",
            skip_serializing_if = "Option::is_none"
        )]
        at: Option<OffsetDateTime>,
    },
    /// A rotated token came back: someone holds a copy. Always followed by a revocation.
    RefreshTokenReused {
        #[serde(default = "TokenHash::withheld")]
        token_hash: TokenHash,
    },
    SessionRevoked {
        reason: RevokeReason,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SessionError {
    #[error("this session already exists")]
    AlreadyStarted,
    #[error("your session is not valid; sign in again")]
    InvalidToken,
    #[error("your session has ended; sign in again")]
    Revoked,
    #[error("your session has expired; sign in again")]
    Expired,
}

impl DomainEvent for SessionEvent {
    fn event_type(&self) -> String {
        match self {
            Self::SessionStarted { .. } => "SessionStarted",
            Self::SessionRefreshed { .. } => "SessionRefreshed",
            Self::RefreshTokenReused { .. } => "RefreshTokenReused",
            Self::SessionRevoked { .. } => "SessionRevoked",
        }
        .into()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = "session";
    type Command = SessionCommand;
    type Event = SessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let mut events = Vec::new();
        match command {
            SessionCommand::Start {
                user_id,
                token_hash,
                expires_at,
                method,
                epoch,
            } => {
                if self.user_id.is_some() {
                    return Err(SessionError::AlreadyStarted);
                }
                events.push(SessionEvent::SessionStarted {
                    user_id,
                    token_hash,
                    expires_at,
                    method,
                    epoch: Some(epoch),
                });
            }
            SessionCommand::Refresh {
                presented,
                replacement,
                now,
                grace,
            } => {
                if self.user_id.is_none() {
                    return Err(SessionError::InvalidToken);
                }
                if self.revoked.is_some() {
                    return Err(SessionError::Revoked);
                }
                if self.same_rotation(&presented, &replacement, now, grace) {
                    // The other tab's refresh already rotated to this very replacement.
                } else if self.rotated.iter().any(|r| r.matches(&presented)) {
                    events.push(SessionEvent::RefreshTokenReused {
                        token_hash: presented,
                    });
                    events.push(SessionEvent::SessionRevoked {
                        reason: RevokeReason::RefreshTokenReused,
                    });
                } else if !self.current.as_ref().is_some_and(|c| c.matches(&presented)) {
                    return Err(SessionError::InvalidToken);
                } else if self.expires_at.is_some_and(|at| now >= at) {
                    return Err(SessionError::Expired);
                } else {
                    events.push(SessionEvent::SessionRefreshed {
                        token_hash: replacement,
                        at: Some(now),
                    });
                }
            }
            SessionCommand::End { user_id } => {
                if self.user_id != Some(user_id) {
                    return Err(SessionError::InvalidToken);
                }
                if self.revoked.is_none() {
                    events.push(SessionEvent::SessionRevoked {
                        reason: RevokeReason::EndedByOwner,
                    });
                }
            }
            SessionCommand::Revoke { presented, reason } => {
                if self.user_id.is_none() {
                    return Err(SessionError::InvalidToken);
                }
                if presented.is_some_and(|p| !self.is_family_token(&p)) {
                    return Err(SessionError::InvalidToken);
                }
                if self.revoked.is_none() {
                    events.push(SessionEvent::SessionRevoked { reason });
                }
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            SessionEvent::SessionStarted {
                user_id,
                token_hash,
                expires_at,
                epoch,
                ..
            } => {
                self.user_id = Some(user_id);
                self.current = Some(token_hash);
                self.expires_at = Some(expires_at);
                self.epoch = epoch;
            }
            SessionEvent::SessionRefreshed { token_hash, at } => {
                if let Some(previous) = self.current.replace(token_hash) {
                    self.rotated.push(previous);
                }
                self.rotated_at = at;
            }
            SessionEvent::RefreshTokenReused { .. } => {}
            SessionEvent::SessionRevoked { reason } => self.revoked = Some(reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use time::Duration;

    type Framework = TestFramework<Session>;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn started() -> SessionEvent {
        SessionEvent::SessionStarted {
            user_id: Uuid::nil(),
            token_hash: TokenHash::of("r1"),
            expires_at: now() + Duration::days(30),
            method: SignInMethod::Password,
            epoch: Some(0),
        }
    }

    #[test]
    fn a_session_records_the_sign_in_and_its_epoch() {
        Framework::with(())
            .given_no_previous_events()
            .when(SessionCommand::Start {
                user_id: Uuid::nil(),
                token_hash: TokenHash::of("r1"),
                expires_at: now() + Duration::days(30),
                method: SignInMethod::Password,
                epoch: 0,
            })
            .then_expect_events(vec![started()]);
    }

    #[test]
    fn a_session_started_before_epochs_still_loads() {
        let old = serde_json::json!({"SessionStarted": {"user_id": Uuid::nil(),
            "token_hash": TokenHash::of("r1"), "expires_at": "2027-01-01T00:00:00Z",
            "method": "password"}});
        let mut session = Session::default();
        session.apply(serde_json::from_value(old).unwrap());
        assert_eq!(
            (session.user_id(), session.epoch()),
            (Some(Uuid::nil()), None)
        );
    }

    fn refresh(presented: &str, replacement: &str, at: OffsetDateTime) -> SessionCommand {
        SessionCommand::Refresh {
            presented: TokenHash::of(presented),
            replacement: TokenHash::of(replacement),
            now: at,
            grace: Duration::seconds(10),
        }
    }

    fn refreshed(token: &str) -> SessionEvent {
        SessionEvent::SessionRefreshed {
            token_hash: TokenHash::of(token),
            at: Some(now()),
        }
    }

    #[test]
    fn a_second_refresh_within_the_grace_window_gets_the_same_replacement() {
        // Both tabs presented r1 and derived r2 from it: the second is answered with r2.
        Framework::with(())
            .given(vec![started(), refreshed("r2")])
            .when(refresh("r1", "r2", now() + Duration::seconds(9)))
            .then_expect_events(vec![]);
        let reused = vec![
            SessionEvent::RefreshTokenReused {
                token_hash: TokenHash::of("r1"),
            },
            SessionEvent::SessionRevoked {
                reason: RevokeReason::RefreshTokenReused,
            },
        ];
        // After the window, the same request is a reuse.
        Framework::with(())
            .given(vec![started(), refreshed("r2")])
            .when(refresh("r1", "r2", now() + Duration::seconds(10)))
            .then_expect_events(reused.clone());
        // Asking for another replacement is a reuse (a copy of r1 without the key).
        Framework::with(())
            .given(vec![started(), refreshed("r2")])
            .when(refresh("r1", "other", now()))
            .then_expect_events(reused.clone());
        // Only the last rotation's token: r1 after r2 rotated to r3 is a reuse.
        Framework::with(())
            .given(vec![started(), refreshed("r2"), refreshed("r3")])
            .when(refresh("r1", "r2", now()))
            .then_expect_events(reused);
        // A rotation written before ADR 29 (no time) has no grace.
        let old: SessionEvent = serde_json::from_value(serde_json::json!({"SessionRefreshed":
            {"token_hash": TokenHash::of("r2")}}))
        .unwrap();
        Framework::with(())
            .given(vec![started(), old])
            .when(refresh("r1", "r2", now()))
            .then_expect_events(vec![
                SessionEvent::RefreshTokenReused {
                    token_hash: TokenHash::of("r1"),
                },
                SessionEvent::SessionRevoked {
                    reason: RevokeReason::RefreshTokenReused,
                },
            ]);
    }

    #[test]
    fn only_the_owner_ends_a_session() {
        let ended = SessionEvent::SessionRevoked {
            reason: RevokeReason::EndedByOwner,
        };
        Framework::with(())
            .given(vec![started()])
            .when(SessionCommand::End {
                user_id: Uuid::nil(),
            })
            .then_expect_events(vec![ended.clone()]);
        Framework::with(())
            .given(vec![started()])
            .when(SessionCommand::End {
                user_id: Uuid::max(),
            })
            .then_expect_error_message("your session is not valid; sign in again");
        Framework::with(())
            .given(vec![started(), ended])
            .when(SessionCommand::End {
                user_id: Uuid::nil(),
            })
            .then_expect_events(vec![]);
    }

    #[test]
    fn the_current_token_rotates() {
        Framework::with(())
            .given(vec![started()])
            .when(refresh("r1", "r2", now()))
            .then_expect_events(vec![refreshed("r2")]);
        Framework::with(())
            .given(vec![started(), refreshed("r2")])
            .when(refresh("r2", "r3", now()))
            .then_expect_events(vec![refreshed("r3")]);
    }

    #[test]
    fn a_rotated_token_revokes_the_family() {
        Framework::with(())
            .given(vec![started(), refreshed("r2")])
            .when(refresh("r1", "r3", now()))
            .then_expect_events(vec![
                SessionEvent::RefreshTokenReused {
                    token_hash: TokenHash::of("r1"),
                },
                SessionEvent::SessionRevoked {
                    reason: RevokeReason::RefreshTokenReused,
                },
            ]);
        // ... including the live token.
        Framework::with(())
            .given(vec![
                started(),
                refreshed("r2"),
                SessionEvent::SessionRevoked {
                    reason: RevokeReason::RefreshTokenReused,
                },
            ])
            .when(refresh("r2", "r3", now()))
            .then_expect_error_message("your session has ended; sign in again");
    }

    #[test]
    fn unknown_and_expired_tokens_are_refused() {
        Framework::with(())
            .given(vec![started()])
            .when(refresh("forged", "r2", now()))
            .then_expect_error_message("your session is not valid; sign in again");
        Framework::with(())
            .given_no_previous_events()
            .when(refresh("r1", "r2", now()))
            .then_expect_error_message("your session is not valid; sign in again");
        Framework::with(())
            .given(vec![started()])
            .when(refresh("r1", "r2", now() + Duration::days(31)))
            .then_expect_error_message("your session has expired; sign in again");
    }

    #[test]
    fn logout_needs_a_family_token_and_happens_once() {
        let logout = |token: &str| SessionCommand::Revoke {
            presented: Some(TokenHash::of(token)),
            reason: RevokeReason::Logout,
        };
        let revoked = SessionEvent::SessionRevoked {
            reason: RevokeReason::Logout,
        };
        Framework::with(())
            .given(vec![started()])
            .when(logout("r1"))
            .then_expect_events(vec![revoked.clone()]);
        Framework::with(())
            .given(vec![started()])
            .when(logout("other"))
            .then_expect_error_message("your session is not valid; sign in again");
        Framework::with(())
            .given(vec![started(), revoked])
            .when(logout("r1"))
            .then_expect_events(vec![]);
    }
}

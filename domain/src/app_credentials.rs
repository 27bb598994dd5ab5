//! `AppCredentials`: one user's named credentials for music apps (the Subsonic API), one
//! aggregate per user (id = the user id), so it grows with what the person creates and
//! revokes, never with use. A credential holds no secret: the secret is derived by the
//! edge from a server key, the credential id and its `nonce` (ADR 24), so what the log
//! and the bus carry cannot be used on its own.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The aggregate type, for readers of the log without `cqrs_es`.
pub const AGGREGATE_TYPE: &str = "app_credentials";
/// Live credentials a user may hold at once: keeps the aggregate (and the check of a
/// token against each of them) small.
pub const MAX_LIVE_CREDENTIALS: usize = 50;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppCredential {
    pub credential_id: Uuid,
    pub name: String,
    /// Input of the secret's derivation; useless without the server's key.
    pub nonce: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub revoked: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AppCredentials {
    credentials: Vec<AppCredential>,
}

impl AppCredentials {
    /// Folds an aggregate's events (as the log reader returns them).
    pub fn from_events(events: impl IntoIterator<Item = AppCredentialEvent>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Credentials not revoked, oldest first.
    pub fn live(&self) -> impl Iterator<Item = &AppCredential> {
        self.credentials.iter().filter(|c| !c.revoked)
    }

    pub fn live_one(&self, credential_id: Uuid) -> Option<&AppCredential> {
        self.live().find(|c| c.credential_id == credential_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppCredentialCommand {
    Create {
        credential_id: Uuid,
        name: String,
        nonce: String,
        now: OffsetDateTime,
    },
    Revoke {
        credential_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AppCredentialEvent {
    AppCredentialCreated {
        credential_id: Uuid,
        name: String,
        nonce: String,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
    },
    AppCredentialRevoked {
        credential_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppCredentialError {
    #[error("no such app credential (it may have been revoked already)")]
    UnknownCredential,
    #[error("an app credential with this id exists")]
    AlreadyCreated,
    #[error("at most 50 app credentials can be live at once; revoke one you no longer use")]
    TooMany,
    #[error("a credential name is 1 to 64 characters, without control characters")]
    InvalidName,
}

/// A name as people type it: trimmed, 1 to 64 characters, no control characters.
pub fn valid_name(name: &str) -> bool {
    let chars = name.chars().count();
    name.trim() == name
        && (1..=MAX_NAME_CHARS).contains(&chars)
        && !name.chars().any(char::is_control)
}

impl DomainEvent for AppCredentialEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AppCredentialCreated { .. } => "AppCredentialCreated".into(),
            Self::AppCredentialRevoked { .. } => "AppCredentialRevoked".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for AppCredentials {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = AppCredentialCommand;
    type Event = AppCredentialEvent;
    type Error = AppCredentialError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            AppCredentialCommand::Create {
                credential_id,
                name,
                nonce,
                now,
            } => {
                if !valid_name(&name) {
                    return Err(AppCredentialError::InvalidName);
                }
                if self
                    .credentials
                    .iter()
                    .any(|c| c.credential_id == credential_id)
                {
                    return Err(AppCredentialError::AlreadyCreated);
                }
                if self.live().count() >= MAX_LIVE_CREDENTIALS {
                    return Err(AppCredentialError::TooMany);
                }
                let event = AppCredentialEvent::AppCredentialCreated {
                    credential_id,
                    name,
                    nonce,
                    created_at: now,
                };
                sink.write(event, self).await;
                Ok(())
            }
            AppCredentialCommand::Revoke { credential_id } => {
                if self.live_one(credential_id).is_none() {
                    return Err(AppCredentialError::UnknownCredential);
                }
                sink.write(
                    AppCredentialEvent::AppCredentialRevoked { credential_id },
                    self,
                )
                .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AppCredentialEvent::AppCredentialCreated {
                credential_id,
                name,
                nonce,
                created_at,
            } => self.credentials.push(AppCredential {
                credential_id,
                name,
                nonce,
                created_at,
                revoked: false,
            }),
            AppCredentialEvent::AppCredentialRevoked { credential_id } => {
                for credential in &mut self.credentials {
                    if credential.credential_id == credential_id {
                        credential.revoked = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<AppCredentials>;

    fn created(id: Uuid) -> AppCredentialEvent {
        AppCredentialEvent::AppCredentialCreated {
            credential_id: id,
            name: "phone".into(),
            nonce: "n".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn create(id: Uuid, name: &str) -> AppCredentialCommand {
        AppCredentialCommand::Create {
            credential_id: id,
            name: name.into(),
            nonce: "n".into(),
            now: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_credential_is_created_with_its_name_and_nonce() {
        let id = Uuid::now_v7();
        Framework::with(())
            .given_no_previous_events()
            .when(create(id, "phone"))
            .then_expect_events(vec![created(id)]);
    }

    #[test]
    fn names_are_trimmed_short_and_printable() {
        for name in ["", " phone", "a\u{7}b", &"x".repeat(65)] {
            Framework::with(())
                .given_no_previous_events()
                .when(create(Uuid::now_v7(), name))
                .then_expect_error(AppCredentialError::InvalidName);
        }
        assert!(valid_name(&"é".repeat(64)));
    }

    #[test]
    fn a_live_credential_is_revoked_once() {
        let id = Uuid::now_v7();
        Framework::with(())
            .given(vec![created(id)])
            .when(AppCredentialCommand::Revoke { credential_id: id })
            .then_expect_events(vec![AppCredentialEvent::AppCredentialRevoked {
                credential_id: id,
            }]);
        Framework::with(())
            .given(vec![
                created(id),
                AppCredentialEvent::AppCredentialRevoked { credential_id: id },
            ])
            .when(AppCredentialCommand::Revoke { credential_id: id })
            .then_expect_error(AppCredentialError::UnknownCredential);
        Framework::with(())
            .given(vec![created(id)])
            .when(AppCredentialCommand::Revoke {
                credential_id: Uuid::now_v7(),
            })
            .then_expect_error(AppCredentialError::UnknownCredential);
    }

    #[test]
    fn at_most_fifty_are_live_and_a_revoked_one_makes_room() {
        let ids: Vec<Uuid> = (0..MAX_LIVE_CREDENTIALS).map(|_| Uuid::now_v7()).collect();
        let full: Vec<AppCredentialEvent> = ids.iter().map(|id| created(*id)).collect();
        Framework::with(())
            .given(full.clone())
            .when(create(Uuid::now_v7(), "one more"))
            .then_expect_error(AppCredentialError::TooMany);
        let mut freed = full;
        freed.push(AppCredentialEvent::AppCredentialRevoked {
            credential_id: ids[0],
        });
        let id = Uuid::now_v7();
        Framework::with(())
            .given(freed)
            .when(create(id, "phone"))
            .then_expect_events(vec![created(id)]);
    }

    #[test]
    fn the_fold_keeps_revoked_credentials_out_of_the_live_ones() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let state = AppCredentials::from_events([
            created(a),
            created(b),
            AppCredentialEvent::AppCredentialRevoked { credential_id: a },
        ]);
        let live: Vec<Uuid> = state.live().map(|c| c.credential_id).collect();
        assert_eq!(live, vec![b]);
        assert!(state.live_one(a).is_none());
    }
}

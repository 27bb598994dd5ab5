//! `ExternalIdentity`: an account at an identity provider, linked to one user. Its id is
//! `<issuer>|<subject>`: accounts link by (issuer, subject), never by email alone
//! (SECURITY.md 12), and two first sign-ins race on the events primary key.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ExternalIdentity {
    user_id: Option<Uuid>,
}

impl ExternalIdentity {
    /// The aggregate id for an identity.
    pub fn id(issuer: &str, subject: &str) -> String {
        format!("{issuer}|{subject}")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExternalIdentityCommand {
    Link {
        user_id: Uuid,
    },
    /// The account was erased: the identity may sign up again. Only its holder
    /// releases it; otherwise nothing happens.
    Release {
        user_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExternalIdentityEvent {
    IdentityLinked { user_id: Uuid },
    IdentityReleased { user_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExternalIdentityError {
    #[error("this identity is already linked to an account")]
    AlreadyLinked,
}

impl DomainEvent for ExternalIdentityEvent {
    fn event_type(&self) -> String {
        match self {
            Self::IdentityLinked { .. } => "IdentityLinked".into(),
            Self::IdentityReleased { .. } => "IdentityReleased".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for ExternalIdentity {
    const TYPE: &'static str = "external_identity";
    type Command = ExternalIdentityCommand;
    type Event = ExternalIdentityEvent;
    type Error = ExternalIdentityError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ExternalIdentityCommand::Link { user_id } => {
                // Linked to this user already: a second link changes nothing (ADR 46).
                if self.user_id == Some(user_id) {
                    return Ok(());
                }
                if self.user_id.is_some() {
                    return Err(ExternalIdentityError::AlreadyLinked);
                }
                sink.write(ExternalIdentityEvent::IdentityLinked { user_id }, self)
                    .await;
                Ok(())
            }
            ExternalIdentityCommand::Release { user_id } => {
                if self.user_id == Some(user_id) {
                    sink.write(ExternalIdentityEvent::IdentityReleased { user_id }, self)
                        .await;
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ExternalIdentityEvent::IdentityLinked { user_id } => self.user_id = Some(user_id),
            ExternalIdentityEvent::IdentityReleased { .. } => self.user_id = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn an_identity_links_once() {
        let user_id = Uuid::now_v7();
        TestFramework::<ExternalIdentity>::with(())
            .given_no_previous_events()
            .when(ExternalIdentityCommand::Link { user_id })
            .then_expect_events(vec![ExternalIdentityEvent::IdentityLinked { user_id }]);
        TestFramework::<ExternalIdentity>::with(())
            .given(vec![ExternalIdentityEvent::IdentityLinked { user_id }])
            .when(ExternalIdentityCommand::Link {
                user_id: Uuid::now_v7(),
            })
            .then_expect_error_message("this identity is already linked to an account");
        TestFramework::<ExternalIdentity>::with(())
            .given(vec![ExternalIdentityEvent::IdentityLinked { user_id }])
            .when(ExternalIdentityCommand::Link { user_id })
            .then_expect_events(vec![]);
    }
}

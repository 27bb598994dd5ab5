//! `EmailClaim`: keeps email addresses unique. The plan names it by the normalized address
//! (stored as a keyed hash of it, ADR 43), so two sign-ups with one address race on the
//! events primary key and only one can win.
//! An address change claims the new address before the account takes it and releases
//! the old one after (ADR 29), so an address is never held by two accounts.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct EmailClaim {
    claimed_by: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EmailClaimCommand {
    Claim {
        user_id: Uuid,
    },
    /// A sign-up found the address taken: the fact the mail reactor answers with an
    /// "already registered" mail to the owner (SECURITY.md 3).
    RecordSignUpAttempt {
        user_id: Uuid,
        /// The address, for the mail to its owner: the claim's id is a keyed hash of it
        /// (ADR 43), so the event carries it, sealed with the owner's key.
        email: String,
    },
    /// The account left this address (or a change that claimed it did not happen):
    /// anyone may claim it again. Only its holder releases it; otherwise nothing happens.
    Release {
        user_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EmailClaimEvent {
    EmailClaimed {
        user_id: Uuid,
    },
    /// Someone tried to sign up with the claimed address (`user_id`: the id that sign-up
    /// would have had, never an account).
    SignUpAttempted {
        user_id: Uuid,
        /// The address, sealed with the owner's key (ADR 43); absent in events written
        /// before it, whose claim id was the address.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    EmailReleased {
        user_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmailClaimError {
    #[error("this email address is already registered")]
    AlreadyClaimed,
}

impl EmailClaim {
    /// The account holding the address (whose key seals a sign-up attempt's address).
    pub fn claimed_by(&self) -> Option<Uuid> {
        self.claimed_by
    }

    /// The claim after these events (its whole history: an address released and claimed
    /// again belongs to whoever claimed it last).
    pub fn from_events(events: impl IntoIterator<Item = EmailClaimEvent>) -> Self {
        let mut claim = Self::default();
        for event in events {
            claim.apply(event);
        }
        claim
    }
}

impl DomainEvent for EmailClaimEvent {
    fn event_type(&self) -> String {
        match self {
            Self::EmailClaimed { .. } => "EmailClaimed".into(),
            Self::SignUpAttempted { .. } => "SignUpAttempted".into(),
            Self::EmailReleased { .. } => "EmailReleased".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

impl Aggregate for EmailClaim {
    const TYPE: &'static str = "email_claim";
    type Command = EmailClaimCommand;
    type Event = EmailClaimEvent;
    type Error = EmailClaimError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            EmailClaimCommand::Claim { user_id } => {
                if self.claimed_by.is_some() {
                    return Err(EmailClaimError::AlreadyClaimed);
                }
                sink.write(EmailClaimEvent::EmailClaimed { user_id }, self)
                    .await;
                Ok(())
            }
            EmailClaimCommand::RecordSignUpAttempt { user_id, email } => {
                let email = Some(email);
                sink.write(EmailClaimEvent::SignUpAttempted { user_id, email }, self)
                    .await;
                Ok(())
            }
            EmailClaimCommand::Release { user_id } => {
                if self.claimed_by == Some(user_id) {
                    sink.write(EmailClaimEvent::EmailReleased { user_id }, self)
                        .await;
                }
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            EmailClaimEvent::EmailClaimed { user_id } => self.claimed_by = Some(user_id),
            EmailClaimEvent::SignUpAttempted { .. } => {}
            EmailClaimEvent::EmailReleased { .. } => self.claimed_by = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<EmailClaim>;

    #[test]
    fn a_free_address_is_claimed() {
        let user_id = Uuid::now_v7();
        Framework::with(())
            .given_no_previous_events()
            .when(EmailClaimCommand::Claim { user_id })
            .then_expect_events(vec![EmailClaimEvent::EmailClaimed { user_id }]);
    }

    #[test]
    fn a_claimed_address_cannot_be_claimed_again() {
        Framework::with(())
            .given(vec![EmailClaimEvent::EmailClaimed {
                user_id: Uuid::now_v7(),
            }])
            .when(EmailClaimCommand::Claim {
                user_id: Uuid::now_v7(),
            })
            .then_expect_error_message("this email address is already registered");
    }

    #[test]
    fn an_attempt_on_a_claimed_address_is_recorded_and_changes_nothing() {
        let owner = Uuid::now_v7();
        let other = Uuid::now_v7();
        Framework::with(())
            .given(vec![
                EmailClaimEvent::EmailClaimed { user_id: owner },
                EmailClaimEvent::SignUpAttempted {
                    user_id: other,
                    email: None,
                },
            ])
            .when(EmailClaimCommand::Claim { user_id: other })
            .then_expect_error_message("this email address is already registered");
        Framework::with(())
            .given(vec![EmailClaimEvent::EmailClaimed { user_id: owner }])
            .when(EmailClaimCommand::RecordSignUpAttempt {
                user_id: other,
                email: "ann@example.com".into(),
            })
            .then_expect_events(vec![EmailClaimEvent::SignUpAttempted {
                user_id: other,
                email: Some("ann@example.com".into()),
            }]);
    }

    #[test]
    fn only_the_holder_releases_an_address_which_can_then_be_claimed_again() {
        let owner = Uuid::now_v7();
        let other = Uuid::now_v7();
        let claimed = EmailClaimEvent::EmailClaimed { user_id: owner };
        Framework::with(())
            .given(vec![claimed.clone()])
            .when(EmailClaimCommand::Release { user_id: other })
            .then_expect_events(vec![]);
        Framework::with(())
            .given(vec![claimed.clone()])
            .when(EmailClaimCommand::Release { user_id: owner })
            .then_expect_events(vec![EmailClaimEvent::EmailReleased { user_id: owner }]);
        Framework::with(())
            .given(vec![
                claimed,
                EmailClaimEvent::EmailReleased { user_id: owner },
            ])
            .when(EmailClaimCommand::Claim { user_id: other })
            .then_expect_events(vec![EmailClaimEvent::EmailClaimed { user_id: other }]);
    }

    #[test]
    fn the_holder_is_whoever_claimed_it_last() {
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let history = [
            EmailClaimEvent::EmailClaimed { user_id: first },
            EmailClaimEvent::EmailReleased { user_id: first },
            EmailClaimEvent::EmailClaimed { user_id: second },
        ];
        assert_eq!(
            EmailClaim::from_events(history.clone()).claimed_by(),
            Some(second)
        );
        assert_eq!(
            EmailClaim::from_events(history[..2].to_vec()).claimed_by(),
            None
        );
    }
}

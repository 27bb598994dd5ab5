//! `User`: one account. Its id is a UUID chosen by the edge when the sign-up arrives.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::value::{Email, PasswordHash};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct User {
    user_id: Option<Uuid>,
    email: Option<Email>,
    password_hash: Option<PasswordHash>,
    sign_ins: u64,
}

impl User {
    pub fn email(&self) -> Option<&Email> {
        self.email.as_ref()
    }
    pub fn sign_ins(&self) -> u64 {
        self.sign_ins
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserCommand {
    SignUp {
        user_id: Uuid,
        email: Email,
        password_hash: PasswordHash,
    },
    RecordSignIn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserSignedUp {
        user_id: Uuid,
        email: Email,
        password_hash: PasswordHash,
    },
    UserSignedIn,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UserError {
    #[error("this account already exists")]
    AlreadySignedUp,
    #[error("no such account")]
    UnknownUser,
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UserSignedUp { .. } => "UserSignedUp".into(),
            Self::UserSignedIn => "UserSignedIn".into(),
        }
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
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
        match command {
            UserCommand::SignUp {
                user_id,
                email,
                password_hash,
            } => {
                if self.user_id.is_some() {
                    return Err(UserError::AlreadySignedUp);
                }
                let event = UserEvent::UserSignedUp {
                    user_id,
                    email,
                    password_hash,
                };
                sink.write(event, self).await;
            }
            UserCommand::RecordSignIn => {
                if self.user_id.is_none() {
                    return Err(UserError::UnknownUser);
                }
                sink.write(UserEvent::UserSignedIn, self).await;
            }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Framework = TestFramework<User>;

    fn signed_up(user_id: Uuid) -> UserEvent {
        UserEvent::UserSignedUp {
            user_id,
            email: Email::parse("alice@example.com").unwrap(),
            password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
                .unwrap(),
        }
    }

    #[test]
    fn sign_up_creates_the_account() {
        let user_id = Uuid::now_v7();
        let UserEvent::UserSignedUp {
            email,
            password_hash,
            ..
        } = signed_up(user_id)
        else {
            unreachable!()
        };
        Framework::with(())
            .given_no_previous_events()
            .when(UserCommand::SignUp {
                user_id,
                email,
                password_hash,
            })
            .then_expect_events(vec![signed_up(user_id)]);
    }

    #[test]
    fn signing_up_twice_is_refused() {
        let user_id = Uuid::now_v7();
        let UserEvent::UserSignedUp {
            email,
            password_hash,
            ..
        } = signed_up(user_id)
        else {
            unreachable!()
        };
        Framework::with(())
            .given(vec![signed_up(user_id)])
            .when(UserCommand::SignUp {
                user_id,
                email,
                password_hash,
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
}

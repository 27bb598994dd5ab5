//! Erasure (issue 21, ADR 42): `UserErased` ends the account for good. The processor
//! destroys the user's key and deletes the access row in the commit that records it, and
//! the plan releases the address and the linked identities first, so the address can
//! sign up again as a new person.

use super::User;

impl User {
    pub(super) fn apply_erased(&mut self) {
        self.erased = true;
        self.disabled = true;
        // Every session ends, as a disable does (ADR 14).
        self.session_epoch += 1;
        self.password_hash = None;
        self.verification = None;
        self.password_reset = None;
        self.email_change = None;
        self.identities.clear();
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use crate::value::{Email, PasswordHash, Role};
    use crate::{User, UserCommand, UserEvent};

    fn signed_up(user_id: Uuid) -> UserEvent {
        UserEvent::UserSignedUp {
            user_id,
            email: Email::parse("ann@example.com").unwrap(),
            password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
                .unwrap(),
        }
    }

    #[test]
    fn an_account_is_erased_once_and_refuses_everything_after() {
        let user_id = Uuid::now_v7();
        TestFramework::<User>::with(())
            .given(vec![
                signed_up(user_id),
                UserEvent::RoleGranted { role: Role::Admin },
            ])
            .when(UserCommand::Erase)
            .then_expect_events(vec![UserEvent::UserErased]);
        for command in [
            UserCommand::Erase,
            UserCommand::EndSessions,
            UserCommand::GrantRole { role: Role::Admin },
            UserCommand::RequestPasswordReset,
        ] {
            TestFramework::<User>::with(())
                .given(vec![signed_up(user_id), UserEvent::UserErased])
                .when(command)
                .then_expect_error_message("this account was deleted");
        }
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when(UserCommand::Erase)
            .then_expect_error_message("no such account");
    }

    #[test]
    fn an_erased_account_is_no_admin_and_has_no_password() {
        let user_id = Uuid::now_v7();
        let mut user = User::default();
        for event in [
            signed_up(user_id),
            UserEvent::RoleGranted { role: Role::Admin },
            UserEvent::UserErased,
        ] {
            cqrs_es::Aggregate::apply(&mut user, event);
        }
        assert!(user.erased() && !user.is_admin());
        assert_eq!((user.password_hash(), user.session_epoch()), (None, 1));
    }
}

//! Sign-in providers linked to an account by its signed-in owner (ADR 46). The plan checks
//! the account, claims the `ExternalIdentity` (a subject linked to someone else is refused
//! there), then the account records the link. An account keeps at least one way to sign in: a
//! password or another identity.

use super::{User, UserCommand, UserError, UserEvent};

impl User {
    pub(super) fn link(&self, command: UserCommand) -> Result<Vec<UserEvent>, UserError> {
        Ok(match command {
            // Before the identity is claimed: writes nothing, so the plan may write
            // this account again after the claim (one commit per aggregate and command).
            UserCommand::CheckIdentityLink { issuer, subject } => {
                self.allowed()?;
                let other = self
                    .identities
                    .iter()
                    .any(|(i, s)| *i == issuer && *s != subject);
                if other {
                    return Err(UserError::ProviderLinked);
                }
                vec![]
            }
            // After the claim: the identity is this account's now, so it is recorded
            // whatever happened between (a refusal here would leave it claimed unseen).
            UserCommand::LinkIdentity {
                provider,
                issuer,
                subject,
                email,
            } => {
                self.known()?;
                if self.identities.contains(&(issuer.clone(), subject.clone())) {
                    vec![]
                } else {
                    vec![UserEvent::IdentityAdded {
                        provider,
                        issuer,
                        subject,
                        email,
                    }]
                }
            }
            UserCommand::UnlinkIdentity { issuer, subject } => {
                self.allowed()?;
                if !self.identities.contains(&(issuer.clone(), subject.clone())) {
                    return Err(UserError::IdentityNotLinked);
                }
                if self.password_hash.is_none() && self.identities.len() <= 1 {
                    return Err(UserError::LastSignInMethod);
                }
                vec![UserEvent::IdentityRemoved { issuer, subject }]
            }
            _ => vec![],
        })
    }

    pub(super) fn apply_link(&mut self, event: UserEvent) {
        match event {
            UserEvent::IdentityAdded {
                issuer, subject, ..
            } => self.identities.push((issuer, subject)),
            UserEvent::IdentityRemoved { issuer, subject } => self
                .identities
                .retain(|(i, s)| *i != issuer || *s != subject),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use crate::value::{Email, PasswordHash};
    use crate::{User, UserCommand, UserEvent};

    const ISSUER: &str = "https://id.example/realms/home";

    fn password_account(user_id: Uuid) -> UserEvent {
        UserEvent::UserSignedUp {
            user_id,
            email: Email::parse("ann@example.com").unwrap(),
            password_hash: PasswordHash::parse("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
                .unwrap(),
        }
    }

    fn identity_account(user_id: Uuid) -> UserEvent {
        UserEvent::UserSignedUpWithIdentity {
            user_id,
            email: Email::parse("ann@example.com").unwrap(),
            issuer: "https://accounts.google.com".into(),
            subject: "g-1".into(),
        }
    }

    fn check(subject: &str) -> UserCommand {
        UserCommand::CheckIdentityLink {
            issuer: ISSUER.into(),
            subject: subject.into(),
        }
    }

    fn link(subject: &str) -> UserCommand {
        UserCommand::LinkIdentity {
            provider: "keycloak".into(),
            issuer: ISSUER.into(),
            subject: subject.into(),
            email: Email::parse("ann@work.example").unwrap(),
        }
    }

    fn added(subject: &str) -> UserEvent {
        UserEvent::IdentityAdded {
            provider: "keycloak".into(),
            issuer: ISSUER.into(),
            subject: subject.into(),
            email: Email::parse("ann@work.example").unwrap(),
        }
    }

    fn unlink(issuer: &str, subject: &str) -> UserCommand {
        UserCommand::UnlinkIdentity {
            issuer: issuer.into(),
            subject: subject.into(),
        }
    }

    #[test]
    fn an_identity_links_once_and_one_per_provider() {
        let id = Uuid::now_v7();
        TestFramework::<User>::with(())
            .given(vec![password_account(id)])
            .when(check("kc-1"))
            .then_expect_events(vec![]);
        TestFramework::<User>::with(())
            .given(vec![password_account(id)])
            .when(link("kc-1"))
            .then_expect_events(vec![added("kc-1")]);
        // The same identity again changes nothing.
        TestFramework::<User>::with(())
            .given(vec![password_account(id), added("kc-1")])
            .when(check("kc-1"))
            .then_expect_events(vec![]);
        TestFramework::<User>::with(())
            .given(vec![password_account(id), added("kc-1")])
            .when(link("kc-1"))
            .then_expect_events(vec![]);
        TestFramework::<User>::with(())
            .given(vec![password_account(id), added("kc-1")])
            .when(check("kc-2"))
            .then_expect_error_message(
                "this account already has a sign-in with this provider; unlink it first",
            );
        TestFramework::<User>::with(())
            .given(vec![password_account(id), UserEvent::UserDisabled])
            .when(check("kc-1"))
            .then_expect_error_message("this account is disabled; contact an administrator");
    }

    #[test]
    fn the_last_way_to_sign_in_is_not_unlinked() {
        let id = Uuid::now_v7();
        // A password account may drop every identity.
        TestFramework::<User>::with(())
            .given(vec![password_account(id), added("kc-1")])
            .when(unlink(ISSUER, "kc-1"))
            .then_expect_events(vec![UserEvent::IdentityRemoved {
                issuer: ISSUER.into(),
                subject: "kc-1".into(),
            }]);
        // An account made by Google keeps Google unless another identity is linked.
        TestFramework::<User>::with(())
            .given(vec![identity_account(id)])
            .when(unlink("https://accounts.google.com", "g-1"))
            .then_expect_error_message(
                "this is the account's only way to sign in; link another provider or set a password first",
            );
        TestFramework::<User>::with(())
            .given(vec![identity_account(id), added("kc-1")])
            .when(unlink("https://accounts.google.com", "g-1"))
            .then_expect_events(vec![UserEvent::IdentityRemoved {
                issuer: "https://accounts.google.com".into(),
                subject: "g-1".into(),
            }]);
        TestFramework::<User>::with(())
            .given(vec![
                identity_account(id),
                added("kc-1"),
                UserEvent::IdentityRemoved {
                    issuer: ISSUER.into(),
                    subject: "kc-1".into(),
                },
            ])
            .when(unlink(ISSUER, "kc-1"))
            .then_expect_error_message("this provider is not linked to the account");
    }
}

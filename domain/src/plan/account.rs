//! Plans of the owner's account changes (issue 21, ADR 29).

use uuid::Uuid;

use super::{apply, finished, only, AggregateCommand, Issued, Next, Report, State, Step};
use crate::command::{Command, CommandError, ErrorCode};
use crate::value::{SignInMethod, TokenHash};
use crate::{
    EmailClaimCommand, ExternalIdentity, ExternalIdentityCommand, SessionCommand, UserCommand,
};

/// The next step of an account command; `None` for the other commands.
pub(super) fn next(command: &Command, issued: Issued, done: &[Report]) -> Option<Next> {
    use Report::{Applied, Rejected};
    Some(match command {
        Command::EndSession {
            user_id,
            session_id,
        } => only(
            done,
            session_id.to_string(),
            SessionCommand::End { user_id: *user_id },
        ),
        Command::RequestPasswordReset { user_id } => {
            only(done, user_id.to_string(), UserCommand::RequestPasswordReset)
        }
        Command::IssuePasswordReset {
            user_id,
            token_hash,
            expires_at,
        } => only(
            done,
            user_id.to_string(),
            UserCommand::IssuePasswordReset {
                token_hash: token_hash.clone(),
                expires_at: *expires_at,
            },
        ),
        Command::ResetPassword {
            user_id,
            token_hash,
            password_hash,
        } => only(
            done,
            user_id.to_string(),
            UserCommand::ResetPassword {
                token_hash: token_hash.clone(),
                password_hash: password_hash.clone(),
                now: issued.at,
            },
        ),
        Command::ChangePassword {
            user_id,
            password_hash,
            session_id,
            refresh_token_hash,
            session_expires_at,
        } => renewed(
            done,
            *user_id,
            UserCommand::ChangePassword {
                password_hash: password_hash.clone(),
            },
            *session_id,
            refresh_token_hash,
            *session_expires_at,
        ),
        Command::SignOutOtherSessions {
            user_id,
            session_id,
            refresh_token_hash,
            session_expires_at,
        } => renewed(
            done,
            *user_id,
            UserCommand::EndSessions,
            *session_id,
            refresh_token_hash,
            *session_expires_at,
        ),
        Command::RequestEmailChange { user_id, email } => only(
            done,
            user_id.to_string(),
            UserCommand::RequestEmailChange {
                email: email.clone(),
            },
        ),
        Command::IssueEmailChange {
            user_id,
            email,
            token_hash,
            expires_at,
        } => only(
            done,
            user_id.to_string(),
            UserCommand::IssueEmailChange {
                email: email.clone(),
                token_hash: token_hash.clone(),
                expires_at: *expires_at,
            },
        ),
        Command::ConfirmEmailChange {
            user_id,
            token_hash,
        } => {
            let user = user_id.to_string();
            let check = UserCommand::CheckEmailChange {
                token_hash: token_hash.clone(),
                now: issued.at,
            };
            // The account's addresses before the change: (old, new).
            let addresses = match done.first() {
                Some(Applied {
                    state: State::User(before),
                    ..
                }) => before
                    .email()
                    .cloned()
                    .zip(before.email_change().map(|c| c.email.clone())),
                _ => None,
            };
            let release = |address: &str, last| {
                apply(
                    address,
                    EmailClaimCommand::Release { user_id: *user_id },
                    last,
                )
            };
            match (done, addresses) {
                ([], _) => apply(&user, check, false),
                ([Applied { .. }], None) => Next::Finish(Err(CommandError::new(
                    ErrorCode::InvalidToken,
                    "this confirmation link is invalid or was already used",
                ))),
                // The new address is claimed before the account takes it: another
                // account holding it (or racing for it) refuses the change here.
                ([Applied { .. }], Some((_, new))) => apply(
                    new.as_str(),
                    EmailClaimCommand::Claim { user_id: *user_id },
                    false,
                ),
                ([Applied { .. }, Applied { .. }], _) => apply(
                    &user,
                    UserCommand::ChangeEmail {
                        token_hash: token_hash.clone(),
                        now: issued.at,
                    },
                    false,
                ),
                // The link was used or replaced meanwhile: give the claim back.
                ([Applied { .. }, Applied { .. }, Rejected(_)], Some((_, new))) => {
                    release(new.as_str(), false)
                }
                ([_, _, Rejected(refused), Applied { .. }], _) => {
                    Next::Finish(Err(refused.clone()))
                }
                // The old address is free only once the account has left it.
                ([Applied { .. }, Applied { .. }, Applied { .. }], Some((old, _))) => {
                    release(old.as_str(), true)
                }
                _ => finished(done),
            }
        }
        Command::EraseUser { user_id } => erase(issued, done, *user_id),
        Command::LinkIdentity {
            user_id,
            provider,
            issuer,
            subject,
            email,
        } => {
            let user = user_id.to_string();
            match done {
                // The account first (disabled, or another identity at this provider),
                // writing nothing: one command commits once per aggregate, so a claim
                // made here could not be given back after a refusal by the account.
                [] => apply(
                    &user,
                    UserCommand::CheckIdentityLink {
                        issuer: issuer.clone(),
                        subject: subject.clone(),
                    },
                    false,
                ),
                // Then the identity: one linked to someone else refuses here.
                [Applied { .. }] => apply(
                    &ExternalIdentity::id(issuer, subject),
                    ExternalIdentityCommand::Link { user_id: *user_id },
                    false,
                ),
                [Applied { .. }, Applied { .. }] => apply(
                    &user,
                    UserCommand::LinkIdentity {
                        provider: provider.clone(),
                        issuer: issuer.clone(),
                        subject: subject.clone(),
                        email: email.clone(),
                    },
                    true,
                ),
                _ => finished(done),
            }
        }
        Command::UnlinkIdentity {
            user_id,
            issuer,
            subject,
        } => match done {
            // The account first: it refuses to lose its last way to sign in.
            [] => apply(
                &user_id.to_string(),
                UserCommand::UnlinkIdentity {
                    issuer: issuer.clone(),
                    subject: subject.clone(),
                },
                false,
            ),
            [Applied { .. }] => apply(
                &ExternalIdentity::id(issuer, subject),
                ExternalIdentityCommand::Release { user_id: *user_id },
                true,
            ),
            _ => finished(done),
        },
        _ => return None,
    })
}

/// Erasure (ADR 42): someone else must be an enabled admin (checked as `by_admin` does);
/// then the account is read, its address and linked identities released, and the last
/// step records `UserErased`, which the processor commits with the key's destruction.
/// The releases come first: once the key is gone the address no longer opens.
fn erase(issued: Issued, done: &[Report], user_id: Uuid) -> Next {
    use Report::Applied;
    let rest = match issued.by.filter(|issuer| *issuer != user_id) {
        None => done,
        Some(issuer) => match done {
            [] => return Next::Step(Step::ReadUser { user_id: issuer }),
            [Applied {
                state: State::User(admin),
                ..
            }, ..]
                if !admin.is_admin() =>
            {
                return Next::Finish(Err(CommandError::new(
                    ErrorCode::NotAdmin,
                    "this needs the admin role",
                )))
            }
            [_, rest @ ..] => rest,
        },
    };
    let user = match rest {
        [] => return Next::Step(Step::ReadUser { user_id }),
        [Applied {
            state: State::User(user),
            ..
        }, ..] => user,
        _ => return finished(done),
    };
    if user.user_id().is_none() {
        return Next::Finish(Err(crate::UserError::UnknownUser.into()));
    }
    let mut releases: Vec<(String, AggregateCommand)> = Vec::new();
    if user.erased() {
        // Already erased (or a redelivery past its commit): nothing more to release.
        if rest.len() == 1 {
            return Next::Finish(Err(crate::UserError::Erased.into()));
        }
    } else if let Some(email) = user.email() {
        releases.push((
            email.as_str().to_owned(),
            EmailClaimCommand::Release { user_id }.into(),
        ));
        for (issuer, subject) in user.identities() {
            releases.push((
                ExternalIdentity::id(issuer, subject),
                ExternalIdentityCommand::Release { user_id }.into(),
            ));
        }
    }
    let taken = rest.len() - 1;
    match releases.get(taken) {
        Some((aggregate_id, command)) => Next::Step(Step::Apply {
            aggregate_id: aggregate_id.clone(),
            command: command.clone(),
            last: false,
        }),
        None if taken == releases.len() => apply(&user_id.to_string(), UserCommand::Erase, true),
        None => finished(done),
    }
}

/// Every session ends (an event on the user, which bumps the epoch), then the caller's
/// new session opens under the new epoch.
fn renewed(
    done: &[Report],
    user_id: Uuid,
    first: UserCommand,
    session_id: Uuid,
    refresh_token_hash: &TokenHash,
    session_expires_at: time::OffsetDateTime,
) -> Next {
    match done {
        [] => apply(&user_id.to_string(), first, false),
        [Report::Applied {
            state: State::User(user),
            ..
        }] => apply(
            &session_id.to_string(),
            SessionCommand::Start {
                user_id,
                token_hash: refresh_token_hash.clone(),
                expires_at: session_expires_at,
                method: SignInMethod::Renewed,
                epoch: user.session_epoch(),
            },
            true,
        ),
        _ => finished(done),
    }
}

#[cfg(test)]
pub(super) mod tests;

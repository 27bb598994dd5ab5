//! The names `User`'s events are stored under: never changed once written.

use cqrs_es::DomainEvent;

use super::UserEvent;

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UserSignedUp { .. } => "UserSignedUp",
            Self::UserSignedIn => "UserSignedIn",
            Self::UserSignedUpWithIdentity { .. } => "UserSignedUpWithIdentity",
            Self::VerificationIssued { .. } => "VerificationIssued",
            Self::VerificationRequested { .. } => "VerificationRequested",
            Self::EmailVerified => "EmailVerified",
            Self::SignedIn { .. } => "SignedIn",
            Self::PasswordRehashed { .. } => "PasswordRehashed",
            Self::RoleGranted { .. } => "RoleGranted",
            Self::RoleRevoked { .. } => "RoleRevoked",
            Self::UserDisabled => "UserDisabled",
            Self::UserEnabled => "UserEnabled",
            Self::PasswordResetRequested { .. } => "PasswordResetRequested",
            Self::PasswordResetIssued { .. } => "PasswordResetIssued",
            Self::PasswordReset { .. } => "PasswordReset",
            Self::PasswordChanged { .. } => "PasswordChanged",
            Self::SessionsEnded => "SessionsEnded",
            Self::EmailChangeRequested { .. } => "EmailChangeRequested",
            Self::EmailChangeIssued { .. } => "EmailChangeIssued",
            Self::EmailChanged { .. } => "EmailChanged",
            Self::UserErased => "UserErased",
            Self::IdentityAdded { .. } => "IdentityAdded",
            Self::IdentityRemoved { .. } => "IdentityRemoved",
        }
        .into()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.into()
    }
}

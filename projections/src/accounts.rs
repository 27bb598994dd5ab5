//! `accounts`: one row per account (email -> user id, verified, disabled, roles). No
//! password hash: the published events withhold it (ADR 33), and no access decision reads
//! this model (ADR 14). `AccountRow` is also the shape of the write-side `access_users`
//! row, which has the hash.

use std::collections::HashMap;

use jukebox_domain::UserEvent;
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::{text_array, Projection};

pub struct Accounts;

#[derive(Clone, PartialEq, sqlx::FromRow)]
pub struct AccountRow {
    pub user_id: Uuid,
    pub email: String,
    /// Only in `access_users`; always `None` in this read model.
    #[sqlx(default)]
    pub password_hash: Option<String>,
    pub verified: bool,
    pub disabled: bool,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for AccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("user_id", &self.user_id)
            .field("email", &self.email)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .field("verified", &self.verified)
            .field("disabled", &self.disabled)
            .field("roles", &self.roles)
            .finish()
    }
}

impl AccountRow {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    fn new(user_id: Uuid, email: String, at: OffsetDateTime) -> Self {
        Self {
            user_id,
            email,
            password_hash: None,
            verified: false,
            disabled: false,
            roles: Vec::new(),
            created_at: at,
        }
    }
}

/// Folds one user event into an account row (shared with the read-through fallback).
pub fn apply_user_event(
    row: Option<&mut AccountRow>,
    event: UserEvent,
    recorded_at: OffsetDateTime,
) -> Option<AccountRow> {
    match (event, row) {
        (UserEvent::UserSignedUp { user_id, email, .. }, _)
        | (UserEvent::UserSignedUpWithIdentity { user_id, email, .. }, _) => {
            Some(AccountRow::new(user_id, email.to_string(), recorded_at))
        }
        (_, None) => None,
        (event, Some(row)) => {
            match event {
                UserEvent::EmailVerified => row.verified = true,
                UserEvent::RoleGranted { role }
                    if !row.roles.iter().any(|r| r == role.as_str()) =>
                {
                    row.roles.push(role.as_str().to_owned());
                    row.roles.sort();
                }
                UserEvent::RoleRevoked { role } => row.roles.retain(|r| r != role.as_str()),
                UserEvent::UserDisabled => row.disabled = true,
                UserEvent::UserEnabled => row.disabled = false,
                UserEvent::EmailChanged { to, .. } => row.email = to.to_string(),
                _ => {}
            }
            None
        }
    }
}

impl Projection for Accounts {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "accounts";
    const AGGREGATES: &'static [&'static str] = &["user"];
    const TABLE: &'static str = "accounts";
    const KEY_COLUMN: &'static str = "user_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "user_id",
        "email",
        "verified",
        "disabled",
        "roles",
        "created_at",
    ];
    type Row = AccountRow;

    fn key(row: &Self::Row) -> String {
        row.user_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        if event.aggregate_type == "user" {
            vec![event.aggregate_id.clone()]
        } else {
            Vec::new()
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(user_event) = event.decode::<UserEvent>() else {
            return;
        };
        let row = rows.get_mut(&event.aggregate_id);
        if let Some(created) = apply_user_event(row, user_event, event.recorded_at) {
            rows.insert(event.aggregate_id.clone(), created);
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        vec![
            Some(row.user_id.to_string()),
            Some(row.email.clone()),
            Some(row.verified.to_string()),
            Some(row.disabled.to_string()),
            Some(text_array(&row.roles)),
            Some(row.created_at.format(&Rfc3339).expect("timestamps format")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use jukebox_domain::{Email, PasswordHash, Role};

    use super::*;
    use crate::given::Log;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
    const REHASH: &str = "$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$bmV3aGFzaG5ld2hhc2g";

    fn user() -> Uuid {
        Uuid::from_u128(7)
    }

    fn signed_up() -> Log {
        Log::new().event(
            "user",
            user(),
            UserEvent::UserSignedUp {
                user_id: user(),
                email: Email::parse("carol@example.com").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
            },
        )
    }

    #[test]
    fn a_sign_up_makes_an_account_without_its_password_hash() {
        let rows = signed_up().rows::<Accounts>();
        assert_eq!(
            rows.values().collect::<Vec<_>>(),
            [&AccountRow {
                user_id: user(),
                email: "carol@example.com".into(),
                password_hash: None,
                verified: false,
                disabled: false,
                roles: Vec::new(),
                created_at: Log::time(1),
            }]
        );
    }

    #[test]
    fn a_google_account_has_no_password_hash() {
        let rows = Log::new()
            .event(
                "user",
                user(),
                UserEvent::UserSignedUpWithIdentity {
                    user_id: user(),
                    email: Email::parse("carol@example.com").unwrap(),
                    issuer: "https://accounts.google.com".into(),
                    subject: "42".into(),
                },
            )
            .rows::<Accounts>();
        assert_eq!(rows[&user().to_string()].password_hash, None);
    }

    #[test]
    fn a_rehash_changes_nothing_and_state_changes_show() {
        let rows = signed_up()
            .event(
                "user",
                user(),
                UserEvent::PasswordRehashed {
                    password_hash: PasswordHash::parse(REHASH).unwrap(),
                },
            )
            .event("user", user(), UserEvent::EmailVerified)
            .event("user", user(), UserEvent::RoleGranted { role: Role::Admin })
            .event("user", user(), UserEvent::UserDisabled)
            .rows::<Accounts>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.password_hash, None);
        assert!(row.verified);
        assert_eq!(row.roles, ["admin"]);
        assert!(row.disabled);
        assert_eq!(
            row.created_at,
            Log::time(1),
            "later events keep the creation time"
        );
    }

    #[test]
    fn enabling_and_revoking_undo_disabling_and_granting() {
        let rows = signed_up()
            .event("user", user(), UserEvent::RoleGranted { role: Role::Admin })
            .event("user", user(), UserEvent::UserDisabled)
            .event("user", user(), UserEvent::RoleRevoked { role: Role::Admin })
            .event("user", user(), UserEvent::UserEnabled)
            .rows::<Accounts>();
        let row = &rows[&user().to_string()];
        assert!(row.roles.is_empty());
        assert!(!row.disabled);
    }

    #[test]
    fn a_confirmed_address_replaces_the_email_and_no_password_hash_is_kept() {
        let rows = signed_up()
            .event(
                "user",
                user(),
                UserEvent::PasswordReset {
                    password_hash: PasswordHash::parse(REHASH).unwrap(),
                },
            )
            .event(
                "user",
                user(),
                UserEvent::EmailChangeRequested {
                    email: Email::parse("dan@example.com").unwrap(),
                },
            )
            .rows::<Accounts>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.password_hash, None);
        assert_eq!(row.email, "carol@example.com", "a request changes nothing");
        let rows = signed_up()
            .event(
                "user",
                user(),
                UserEvent::PasswordChanged {
                    password_hash: PasswordHash::parse(REHASH).unwrap(),
                },
            )
            .event(
                "user",
                user(),
                UserEvent::EmailChanged {
                    from: Email::parse("carol@example.com").unwrap(),
                    to: Email::parse("dan@example.com").unwrap(),
                },
            )
            .rows::<Accounts>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.password_hash, None);
        assert_eq!(row.email, "dan@example.com");
    }

    #[test]
    fn events_before_a_sign_up_make_no_account() {
        let rows = Log::new()
            .event("user", user(), UserEvent::EmailVerified)
            .event("user", user(), UserEvent::UserDisabled)
            .rows::<Accounts>();
        assert!(rows.is_empty(), "{rows:?}");
    }

    #[test]
    fn the_debug_output_hides_the_password_hash() {
        // The write side's `access_users` row, which has one.
        let mut row = signed_up().rows::<Accounts>()[&user().to_string()].clone();
        row.password_hash = Some(HASH.into());
        let shown = format!("{row:?}");
        assert!(!shown.contains(HASH), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}

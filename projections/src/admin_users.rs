//! `admin_users`: one row per account, for the admin's user list.

use std::collections::HashMap;

use jukebox_domain::{SessionEvent, UserEvent};
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::{text_array, Projection};

pub struct AdminUsers;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AdminUserRow {
    pub user_id: Uuid,
    pub email: String,
    pub roles: Vec<String>,
    pub verified: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub last_sign_in_at: Option<OffsetDateTime>,
    pub sign_in_count: i64,
    pub track_count: i32,
}

impl Projection for AdminUsers {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "admin_users";
    const AGGREGATES: &'static [&'static str] = &["user", "session"];
    const TABLE: &'static str = "admin_users";
    const KEY_COLUMN: &'static str = "user_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "user_id",
        "email",
        "roles",
        "verified",
        "disabled",
        "created_at",
        "last_sign_in_at",
        "sign_in_count",
        "track_count",
    ];
    type Row = AdminUserRow;

    fn key(row: &Self::Row) -> String {
        row.user_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        match event.aggregate_type.as_str() {
            "user" => vec![event.aggregate_id.clone()],
            "session" => sign_in(event)
                .map(|u| vec![u.to_string()])
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        if let Some(user_id) = sign_in(event) {
            if let Some(row) = rows.get_mut(&user_id.to_string()) {
                row.last_sign_in_at = Some(event.recorded_at);
                row.sign_in_count += 1;
            }
            return;
        }
        let Ok(user_event) = event.decode::<UserEvent>() else {
            return;
        };
        match user_event {
            UserEvent::UserSignedUp { user_id, email, .. } => {
                rows.insert(
                    event.aggregate_id.clone(),
                    AdminUserRow {
                        user_id,
                        email: email.to_string(),
                        roles: Vec::new(),
                        verified: false,
                        disabled: false,
                        created_at: event.recorded_at,
                        last_sign_in_at: None,
                        sign_in_count: 0,
                        track_count: 0,
                    },
                );
            }
            UserEvent::UserSignedUpWithIdentity { user_id, email, .. } => {
                rows.insert(
                    event.aggregate_id.clone(),
                    AdminUserRow {
                        user_id,
                        email: email.to_string(),
                        roles: Vec::new(),
                        verified: false,
                        disabled: false,
                        created_at: event.recorded_at,
                        last_sign_in_at: None,
                        sign_in_count: 0,
                        track_count: 0,
                    },
                );
            }
            // Sign-ins recorded on the user before issue 16.
            UserEvent::UserSignedIn | UserEvent::SignedIn { .. } => {
                if let Some(row) = rows.get_mut(&event.aggregate_id) {
                    row.last_sign_in_at = Some(event.recorded_at);
                    row.sign_in_count += 1;
                }
            }
            other => {
                let Some(row) = rows.get_mut(&event.aggregate_id) else {
                    return;
                };
                match other {
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
            }
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.user_id.to_string()),
            Some(row.email.clone()),
            Some(text_array(&row.roles)),
            Some(row.verified.to_string()),
            Some(row.disabled.to_string()),
            Some(time(&row.created_at)),
            row.last_sign_in_at.as_ref().map(time),
            Some(row.sign_in_count.to_string()),
            Some(row.track_count.to_string()),
        ]
    }
}

/// The user a sign-in is recorded for: `SessionStarted` since issue 16. One written
/// before it (no epoch) came with the user's own `SignedIn`, which counts it instead.
/// A renewed session (password change, "sign out everywhere else") is no sign-in.
fn sign_in(event: &EventRecord) -> Option<uuid::Uuid> {
    if event.aggregate_type != "session" {
        return None;
    }
    match event.decode::<SessionEvent>() {
        Ok(SessionEvent::SessionStarted {
            user_id,
            epoch: Some(_),
            method,
            ..
        }) if method != jukebox_domain::SignInMethod::Renewed => Some(user_id),
        _ => None,
    }
}

/// A page of accounts, newest first; `pattern` (a `LIKE` pattern) on the lower-cased
/// address.
pub async fn page(
    pool: &sqlx::PgPool,
    pattern: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AdminUserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, email, roles, verified, disabled, created_at, last_sign_in_at,
                sign_in_count, track_count
         FROM admin_users WHERE ($1::text IS NULL OR lower(email) LIKE $1)
         ORDER BY created_at DESC, user_id LIMIT $2 OFFSET $3",
    )
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use jukebox_domain::{Email, PasswordHash, Role, SignInMethod};

    use super::*;
    use crate::given::Log;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

    fn user() -> Uuid {
        Uuid::from_u128(1)
    }

    fn signed_up() -> Log {
        Log::new().event(
            "user",
            user(),
            UserEvent::UserSignedUp {
                user_id: user(),
                email: Email::parse("Alice@Example.com").unwrap(),
                password_hash: PasswordHash::parse(HASH).unwrap(),
            },
        )
    }

    #[test]
    fn a_sign_up_makes_a_row() {
        let rows = signed_up().rows::<AdminUsers>();
        assert_eq!(
            rows.values().collect::<Vec<_>>(),
            [&AdminUserRow {
                user_id: user(),
                email: "alice@example.com".into(),
                roles: Vec::new(),
                verified: false,
                disabled: false,
                created_at: Log::time(1),
                last_sign_in_at: None,
                sign_in_count: 0,
                track_count: 0,
            }]
        );
        assert!(rows.contains_key(&user().to_string()));
    }

    #[test]
    fn a_confirmed_address_change_shows_and_a_renewed_session_is_no_sign_in() {
        let rows = signed_up()
            .event(
                "user",
                user(),
                UserEvent::EmailChanged {
                    from: Email::parse("alice@example.com").unwrap(),
                    to: Email::parse("ada@example.com").unwrap(),
                },
            )
            .event(
                "session",
                Uuid::from_u128(9),
                SessionEvent::SessionStarted {
                    user_id: user(),
                    token_hash: jukebox_domain::TokenHash::of("r"),
                    expires_at: Log::time(100),
                    method: SignInMethod::Renewed,
                    epoch: Some(1),
                },
            )
            .rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert_eq!(
            (row.email.as_str(), row.sign_in_count),
            ("ada@example.com", 0)
        );
    }

    #[test]
    fn a_sign_up_with_google_makes_a_row_too() {
        let rows = Log::new()
            .event(
                "user",
                user(),
                UserEvent::UserSignedUpWithIdentity {
                    user_id: user(),
                    email: Email::parse("bob@example.com").unwrap(),
                    issuer: "https://accounts.google.com".into(),
                    subject: "123".into(),
                },
            )
            .rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.email, "bob@example.com");
        assert_eq!(row.created_at, Log::time(1));
    }

    #[test]
    fn sign_ins_of_both_shapes_are_counted_with_the_last_time() {
        let rows = signed_up()
            .event("user", user(), UserEvent::UserSignedIn)
            .event(
                "user",
                user(),
                UserEvent::SignedIn {
                    session_id: Uuid::from_u128(9),
                    method: SignInMethod::Password,
                },
            )
            .rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.sign_in_count, 2);
        assert_eq!(row.last_sign_in_at, Some(Log::time(3)));
    }

    #[test]
    fn a_session_started_with_an_epoch_counts_as_its_users_sign_in() {
        let session = |epoch| SessionEvent::SessionStarted {
            user_id: user(),
            token_hash: jukebox_domain::TokenHash::of("t"),
            expires_at: Log::time(100),
            method: SignInMethod::Password,
            epoch,
        };
        let rows = signed_up()
            .event("session", Uuid::from_u128(10), session(Some(0)))
            // Written before issue 16: the user's own `SignedIn` counted it.
            .event("session", Uuid::from_u128(11), session(None))
            .rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert_eq!(row.sign_in_count, 1);
        assert_eq!(row.last_sign_in_at, Some(Log::time(2)));
    }

    #[test]
    fn verification_roles_and_disabling_show() {
        let log = signed_up()
            .event("user", user(), UserEvent::EmailVerified)
            .event("user", user(), UserEvent::RoleGranted { role: Role::Admin })
            .event("user", user(), UserEvent::RoleGranted { role: Role::Admin })
            .event("user", user(), UserEvent::UserDisabled);
        let rows = log.rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert!(row.verified);
        assert_eq!(row.roles, ["admin"], "a role granted twice is held once");
        assert!(row.disabled);

        let rows = log
            .event("user", user(), UserEvent::RoleRevoked { role: Role::Admin })
            .event("user", user(), UserEvent::UserEnabled)
            .rows::<AdminUsers>();
        let row = &rows[&user().to_string()];
        assert!(row.roles.is_empty());
        assert!(!row.disabled);
    }

    #[test]
    fn events_of_an_unknown_user_or_of_other_aggregates_make_no_row() {
        let rows = Log::new()
            .event("user", user(), UserEvent::EmailVerified)
            .event("user", user(), UserEvent::UserSignedIn)
            .event(
                "email_claim",
                "alice@example.com",
                jukebox_domain::EmailClaimEvent::EmailClaimed { user_id: user() },
            )
            .rows::<AdminUsers>();
        assert!(rows.is_empty(), "{rows:?}");
    }
}

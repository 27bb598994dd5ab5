//! `admin_users`: one row per account, for the admin's user list.

use std::collections::HashMap;

use jukebox_domain::UserEvent;
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
    const NAME: &'static str = "admin_users";
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

//! `auth_sessions`: one row per refresh-token family, so the auth middleware can tell a
//! revoked session from a live one. Token hashes are not copied here.

use std::collections::HashMap;

use jukebox_domain::{RevokeReason, SessionEvent, SignInMethod};
use jukebox_nats::EventRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::runtime::Projection;

pub struct AuthSessions;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuthSessionRow {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub method: String,
    pub started_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub refreshed_at: Option<OffsetDateTime>,
    pub refresh_count: i64,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_reason: Option<String>,
}

fn method_name(method: SignInMethod) -> &'static str {
    match method {
        SignInMethod::Password => "password",
        SignInMethod::Google => "google",
    }
}

fn reason_name(reason: RevokeReason) -> &'static str {
    match reason {
        RevokeReason::Logout => "logout",
        RevokeReason::RefreshTokenReused => "refresh_token_reused",
        RevokeReason::UserDisabled => "user_disabled",
    }
}

impl Projection for AuthSessions {
    const NAME: &'static str = "auth_sessions";
    const TABLE: &'static str = "auth_sessions";
    const KEY_COLUMN: &'static str = "session_id";
    const KEY_TYPE: &'static str = "uuid";
    const COLUMNS: &'static [&'static str] = &[
        "session_id",
        "user_id",
        "method",
        "started_at",
        "expires_at",
        "refreshed_at",
        "refresh_count",
        "revoked_at",
        "revoked_reason",
    ];
    type Row = AuthSessionRow;

    fn key(row: &Self::Row) -> String {
        row.session_id.to_string()
    }

    fn keys(event: &EventRecord) -> Vec<String> {
        if event.aggregate_type == "session" {
            vec![event.aggregate_id.clone()]
        } else {
            Vec::new()
        }
    }

    fn apply(rows: &mut HashMap<String, Self::Row>, event: &EventRecord) {
        let Ok(session_event) = event.decode::<SessionEvent>() else {
            return;
        };
        let at = event.recorded_at;
        match session_event {
            SessionEvent::SessionStarted {
                user_id,
                expires_at,
                method,
                ..
            } => {
                let Ok(session_id) = event.aggregate_id.parse() else {
                    return;
                };
                rows.insert(
                    event.aggregate_id.clone(),
                    AuthSessionRow {
                        session_id,
                        user_id,
                        method: method_name(method).to_owned(),
                        started_at: at,
                        expires_at,
                        refreshed_at: None,
                        refresh_count: 0,
                        revoked_at: None,
                        revoked_reason: None,
                    },
                );
            }
            SessionEvent::SessionRefreshed { .. } => {
                if let Some(row) = rows.get_mut(&event.aggregate_id) {
                    row.refreshed_at = Some(at);
                    row.refresh_count += 1;
                }
            }
            SessionEvent::RefreshTokenReused { .. } => {}
            SessionEvent::SessionRevoked { reason } => {
                if let Some(row) = rows.get_mut(&event.aggregate_id) {
                    row.revoked_at = Some(at);
                    row.revoked_reason = Some(reason_name(reason).to_owned());
                }
            }
        }
    }

    fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
        let time = |t: &OffsetDateTime| t.format(&Rfc3339).expect("timestamps format");
        vec![
            Some(row.session_id.to_string()),
            Some(row.user_id.to_string()),
            Some(row.method.clone()),
            Some(time(&row.started_at)),
            Some(time(&row.expires_at)),
            row.refreshed_at.as_ref().map(time),
            Some(row.refresh_count.to_string()),
            row.revoked_at.as_ref().map(time),
            row.revoked_reason.clone(),
        ]
    }
}

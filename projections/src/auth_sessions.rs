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
        SignInMethod::Oidc => "oidc",
        SignInMethod::Renewed => "renewed",
    }
}

fn reason_name(reason: RevokeReason) -> &'static str {
    match reason {
        RevokeReason::Logout => "logout",
        RevokeReason::RefreshTokenReused => "refresh_token_reused",
        RevokeReason::UserDisabled => "user_disabled",
        RevokeReason::EndedByOwner => "ended_by_owner",
    }
}

impl Projection for AuthSessions {
    const USER_COLUMN: Option<&'static str> = Some("user_id");
    const NAME: &'static str = "auth_sessions";
    const AGGREGATES: &'static [&'static str] = &["session"];
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

#[cfg(test)]
mod tests {
    use jukebox_domain::TokenHash;

    use super::*;
    use crate::given::Log;

    fn session() -> Uuid {
        Uuid::from_u128(0x5e55)
    }

    fn user() -> Uuid {
        Uuid::from_u128(1)
    }

    fn started(method: SignInMethod) -> Log {
        Log::new().event(
            "session",
            session(),
            SessionEvent::SessionStarted {
                user_id: user(),
                token_hash: TokenHash::of("first"),
                expires_at: Log::time(60 * 24 * 30),
                method,
                epoch: Some(0),
            },
        )
    }

    #[test]
    fn a_started_session_is_a_live_row() {
        let rows = started(SignInMethod::Google).rows::<AuthSessions>();
        assert_eq!(
            rows.values().collect::<Vec<_>>(),
            [&AuthSessionRow {
                session_id: session(),
                user_id: user(),
                method: "google".into(),
                started_at: Log::time(1),
                expires_at: Log::time(60 * 24 * 30),
                refreshed_at: None,
                refresh_count: 0,
                revoked_at: None,
                revoked_reason: None,
            }]
        );
    }

    #[test]
    fn refreshes_are_counted_and_a_reuse_alone_changes_nothing() {
        let rows = started(SignInMethod::Password)
            .event(
                "session",
                session(),
                SessionEvent::SessionRefreshed {
                    token_hash: TokenHash::of("second"),
                    at: None,
                },
            )
            .event(
                "session",
                session(),
                SessionEvent::SessionRefreshed {
                    token_hash: TokenHash::of("third"),
                    at: None,
                },
            )
            .event(
                "session",
                session(),
                SessionEvent::RefreshTokenReused {
                    token_hash: TokenHash::of("first"),
                },
            )
            .rows::<AuthSessions>();
        let row = &rows[&session().to_string()];
        assert_eq!(row.method, "password");
        assert_eq!(row.refresh_count, 2);
        assert_eq!(row.refreshed_at, Some(Log::time(3)));
        assert_eq!(row.revoked_at, None);
    }

    #[test]
    fn a_revocation_records_when_and_why() {
        for (reason, name) in [
            (RevokeReason::Logout, "logout"),
            (RevokeReason::RefreshTokenReused, "refresh_token_reused"),
            (RevokeReason::UserDisabled, "user_disabled"),
        ] {
            let rows = started(SignInMethod::Password)
                .event(
                    "session",
                    session(),
                    SessionEvent::SessionRevoked { reason },
                )
                .rows::<AuthSessions>();
            let row = &rows[&session().to_string()];
            assert_eq!(row.revoked_at, Some(Log::time(2)));
            assert_eq!(row.revoked_reason.as_deref(), Some(name));
        }
    }

    #[test]
    fn no_row_for_an_unknown_session_or_an_id_that_is_not_a_uuid() {
        let rows = Log::new()
            .event(
                "session",
                session(),
                SessionEvent::SessionRevoked {
                    reason: RevokeReason::Logout,
                },
            )
            .event(
                "session",
                "not-a-uuid",
                SessionEvent::SessionStarted {
                    user_id: user(),
                    token_hash: TokenHash::of("x"),
                    expires_at: Log::time(10),
                    method: SignInMethod::Password,
                    epoch: None,
                },
            )
            .rows::<AuthSessions>();
        assert!(rows.is_empty(), "{rows:?}");
    }
}

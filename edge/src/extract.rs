//! Extractors whose rejections use the API's error shape: the JSON body, the caller's
//! address, the authenticated user and the admin.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use jukebox_projections::access::{self, Verdict};
use jukebox_projections::accounts::AccountRow;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// `Json<T>` whose failures are 400/413/415/422 with a message, never a bare string.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::unprocessable("invalid_body", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("malformed_json", e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            )
        }
        other => ApiError::bad_request("bad_request", other.body_text()),
    }
}

/// The caller's address (the TCP peer), the key of the per-address limits.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

/// A request with a valid access token whose session and account are live.
pub struct AuthUser {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub account: AccountRow,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.account.is_admin()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = AccessToken::from_request_parts(parts, state).await?;
        // No memory of earlier answers: a revoked admin or session is refused at once.
        let Some((account, revoked)) =
            access::authenticate(&state.pool, token.user_id, token.session_id).await?
        else {
            return Err(denied(Verdict::NoAccount));
        };
        if account.disabled {
            return Err(denied(Verdict::Disabled));
        }
        if revoked {
            return Err(denied(Verdict::SessionOver));
        }
        Ok(Self {
            user_id: token.user_id,
            session_id: token.session_id,
            account,
        })
    }
}

/// A request with a valid access token (signature and expiry), whose session and account
/// are not checked yet: for a route that folds that check into its own statement
/// (`projections::access::live_sql`) and answers a denial with [`denied`].
pub struct AccessToken {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl FromRequestParts<AppState> for AccessToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "send an access token: `Authorization: Bearer <token>`",
                )
            })?;
        let claims = state.auth.jwt.verify(token.trim()).map_err(|_| {
            state.metrics.auth_failure("access_token");
            ApiError::unauthorized(
                "invalid_token",
                "the access token is invalid or expired; refresh it or sign in again",
            )
        })?;
        // A request that passes a position is answered as of it; the access state is
        // written with the events that change it, so there is nothing to wait for, but a
        // malformed position is refused here like on every read.
        crate::fresh::After::from_request_parts(parts, state).await?;
        Ok(Self {
            user_id: claims.sub,
            session_id: claims.sid,
        })
    }
}

/// The answer to an access token whose account or session does not allow the request.
pub fn denied(verdict: Verdict) -> ApiError {
    match verdict {
        Verdict::NoAccount | Verdict::Live => {
            ApiError::unauthorized("invalid_token", "no such account")
        }
        Verdict::Disabled => ApiError::unauthorized(
            "account_disabled",
            "this account is disabled; contact an administrator",
        ),
        Verdict::SessionOver => {
            ApiError::unauthorized("session_revoked", "this session has ended; sign in again")
        }
    }
}

/// An authenticated admin.
pub struct Admin(pub AuthUser);

impl axum::extract::FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin() {
            return Err(ApiError::forbidden(
                "not_admin",
                "this needs the admin role",
            ));
        }
        Ok(Self(user))
    }
}

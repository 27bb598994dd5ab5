//! `/subscriptions` (issue 20, ADR 40): subscribe to a playlist, channel or feed, list
//! and read my subscriptions (state, last check, `retry_at` and the reason when backing
//! off), pause, resume, unsubscribe. Checks run in the downloader's scheduler; each is an
//! event of the `Subscription`, whose history the audit routes show.
//!
//! A subscription's `{id}` is the URL's key; the aggregate id is `<my user id>/<key>`,
//! so another user's id names nothing of mine (404).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jukebox_domain::subscription::MAX_LATEST;
use jukebox_domain::{collection, Command, SourceRef};
use jukebox_nats::OutcomeStatus;
use jukebox_projections::subscriptions::{self as model, SubscriptionRow};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::{envelope, rejection, send, CommandHeaders};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::fresh::{models, After};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscriptions", get(list).post(subscribe))
        .route("/subscriptions/{id}", get(one).delete(unsubscribe))
        .route("/subscriptions/{id}/pause", post(pause))
        .route("/subscriptions/{id}/resume", post(resume))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(subscribe, list, one, pause, resume, unsubscribe))]
pub(crate) struct Doc;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// A playlist, channel or feed link (anything yt-dlp lists as a playlist).
    url: String,
    /// The first check imports only the first `latest` entries of the list (a feed's or
    /// channel's newest); later checks import every new entry. All when absent.
    #[schema(minimum = 1, maximum = 5000)]
    latest: Option<u32>,
}

/// What the last check found.
#[derive(Serialize, ToSchema)]
pub struct LastCheck {
    /// Importable entries listed.
    found: i32,
    /// Of those, not seen by an earlier check.
    new: i32,
    /// Of those, imported (the first check's `latest` passes over the rest).
    imported: i32,
    /// Not importable (private, deleted, too long, not audio).
    skipped: i32,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionView {
    /// Names it in these routes.
    id: String,
    url: String,
    /// The list's title, once a check has read it.
    title: Option<String>,
    /// `active`, `paused` or `backing_off` (the last check failed; see `retry_at`).
    #[schema(example = "active")]
    state: &'static str,
    latest: Option<i32>,
    /// The playlist the imported entries go to (the collection import's).
    playlist_id: Uuid,
    /// RFC 3339.
    subscribed_at: String,
    checks: i32,
    last_checked_at: Option<String>,
    /// When the next check is due (RFC 3339); none while paused.
    next_check_at: Option<String>,
    /// Backing off: when it tries again (RFC 3339).
    retry_at: Option<String>,
    /// Backing off: why the last check failed.
    reason: Option<String>,
    /// The site asked us to slow down (HTTP 429 or a bot check).
    rate_limited: bool,
    /// Failed checks in a row.
    failures: i32,
    last_check: Option<LastCheck>,
    /// Entries imported by every check.
    imported_total: i64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

impl From<SubscriptionRow> for SubscriptionView {
    fn from(row: SubscriptionRow) -> Self {
        let key = row.id.split_once('/').map_or("", |(_, k)| k).to_owned();
        let paused = row.status == "paused";
        let state = match (paused, row.failures > 0) {
            (true, _) => "paused",
            (false, true) => "backing_off",
            (false, false) => "active",
        };
        let checked = row.last_checked_at.is_some() && row.failures == 0;
        Self {
            id: key,
            playlist_id: collection::playlist_id(&row.id),
            url: row.url,
            title: row.title,
            state,
            latest: row.latest,
            subscribed_at: rfc3339(row.subscribed_at),
            checks: row.checks,
            last_checked_at: row.last_checked_at.map(rfc3339),
            next_check_at: (!paused)
                .then_some(row.next_check_at)
                .flatten()
                .map(rfc3339),
            retry_at: (row.failures > 0)
                .then_some(row.retry_at)
                .flatten()
                .map(rfc3339),
            reason: (row.failures > 0).then_some(row.reason).flatten(),
            rate_limited: row.failures > 0 && row.rate_limited,
            failures: row.failures,
            last_check: checked.then_some(LastCheck {
                found: row.last_found,
                new: row.last_new,
                imported: row.last_imported,
                skipped: row.last_skipped,
            }),
            imported_total: row.imported_total,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    id: String,
    url: String,
    playlist_id: Uuid,
    /// `GET` it (with the answer's position) to see the subscription.
    location: String,
}

fn too_many(cap: usize) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_subscriptions",
        format!(
            "you have {cap} subscriptions, the most one user may have \
             (SUBSCRIPTION_MAX_PER_USER); unsubscribe from one first"
        ),
    )
}

/// `POST /subscriptions {url, latest?}`: 201; the first check runs soon after.
#[utoipa::path(post, path = "/subscriptions", tag = "imports", security(("bearer" = [])),
    params(CommandHeaders), request_body = NewSubscription,
    responses((status = 201, body = Subscribed),
        (status = 400, body = ErrorBody, description = "malformed JSON or headers"),
        (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "subscribed to this list already"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not an http(s) link, or latest out of range"),
        (status = 429, body = ErrorBody, description = "as many subscriptions as one user may have"),
        (status = 503, body = ErrorBody)))]
async fn subscribe(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewSubscription>,
) -> Result<Response, ApiError> {
    let settings = state
        .imports
        .as_deref()
        .ok_or_else(|| ApiError::Unavailable("imports are not configured".into()))?;
    let url = match SourceRef::url(&body.url) {
        Ok(SourceRef::Url { url }) => url,
        Ok(_) => return Err(ApiError::unprocessable("invalid_source", "not a link")),
        Err(e) => return Err(ApiError::unprocessable("invalid_source", e.0)),
    };
    if body.latest.is_some_and(|n| n == 0 || n > MAX_LATEST) {
        return Err(ApiError::unprocessable(
            "invalid_latest",
            format!("\"latest\" must be between 1 and {MAX_LATEST}"),
        ));
    }
    after.wait(&state, &[models::SUBSCRIPTIONS]).await?;
    let cap = settings.max_subscriptions_per_user;
    let count = model::count(&state.pool, user.user_id).await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= cap {
        return Err(too_many(cap));
    }
    let subscription_id = jukebox_domain::subscription::id(user.user_id, &url);
    let command = Command::Subscribe {
        subscription_id: subscription_id.clone(),
        user_id: user.user_id,
        url: url.clone(),
        latest: body.latest,
    };
    let envelope = envelope(&headers, Some(user.user_id), command)?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => {}
        Some(outcome) => return Err(rejection(outcome)),
        None => return Err(ApiError::Unavailable("not answered in time".into())),
    }
    let key = collection::key(&url);
    let location = format!("{}/subscriptions/{key}", state.mount);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location.clone())],
        Json(Subscribed {
            id: key,
            url,
            playlist_id: collection::playlist_id(&subscription_id),
            location,
        }),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    /// Oldest first.
    subscriptions: Vec<SubscriptionView>,
    /// `SUBSCRIPTION_MAX_PER_USER`.
    limit: usize,
}

/// `GET /subscriptions`: my subscriptions.
#[utoipa::path(get, path = "/subscriptions", tag = "imports", security(("bearer" = [])),
    responses((status = 200, body = SubscriptionList),
        (status = 400, body = ErrorBody, description = "a malformed position"),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn list(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
) -> Result<Json<SubscriptionList>, ApiError> {
    after.wait(&state, &[models::SUBSCRIPTIONS]).await?;
    let rows = model::of_user(&state.pool, user.user_id).await?;
    Ok(Json(SubscriptionList {
        subscriptions: rows.into_iter().map(SubscriptionView::from).collect(),
        limit: state
            .imports
            .as_deref()
            .map_or(0, |s| s.max_subscriptions_per_user),
    }))
}

/// The aggregate id of my subscription `key`, or 404.
fn my_id(user: &AuthUser, key: &str) -> Result<String, ApiError> {
    if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    Ok(format!("{}/{}", user.user_id, key.to_ascii_lowercase()))
}

fn not_found() -> ApiError {
    ApiError::not_found("no subscription to this list here")
}

/// `GET /subscriptions/{id}`: one of my subscriptions.
#[utoipa::path(get, path = "/subscriptions/{id}", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path, description = "from the subscribe answer or the list")),
    responses((status = 200, body = SubscriptionView),
        (status = 400, body = ErrorBody, description = "a malformed position"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such subscription of mine"),
        (status = 503, body = ErrorBody)))]
async fn one(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<SubscriptionView>, ApiError> {
    let id = my_id(&user, &key)?;
    after.wait(&state, &[models::SUBSCRIPTIONS]).await?;
    let row = model::get(&state.pool, &id).await?.ok_or_else(not_found)?;
    Ok(Json(row.into()))
}

async fn change(
    user: AuthUser,
    state: AppState,
    headers: HeaderMap,
    key: String,
    make: fn(String, Uuid) -> Command,
) -> Result<StatusCode, ApiError> {
    let id = my_id(&user, &key)?;
    let envelope = envelope(&headers, Some(user.user_id), make(id, user.user_id))?;
    match send(&state, &envelope).await? {
        Some(outcome) if outcome.status == OutcomeStatus::Committed => Ok(StatusCode::NO_CONTENT),
        Some(outcome) => Err(rejection(outcome)),
        None => Err(ApiError::Unavailable("not answered in time".into())),
    }
}

/// `POST /subscriptions/{id}/pause`: 204; no check runs until it is resumed.
#[utoipa::path(post, path = "/subscriptions/{id}/pause", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path), CommandHeaders),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such subscription of mine"),
        (status = 422, body = ErrorBody, description = "a reused Idempotency-Key"),
        (status = 503, body = ErrorBody)))]
async fn pause(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    change(user, state, headers, key, |subscription_id, user_id| {
        Command::PauseSubscription {
            subscription_id,
            user_id,
        }
    })
    .await
}

/// `POST /subscriptions/{id}/resume`: 204; the next check is due now (or when a running
/// backoff ends).
#[utoipa::path(post, path = "/subscriptions/{id}/resume", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path), CommandHeaders),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such subscription of mine"),
        (status = 409, body = ErrorBody, description = "not paused"),
        (status = 422, body = ErrorBody, description = "a reused Idempotency-Key"),
        (status = 503, body = ErrorBody)))]
async fn resume(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    change(user, state, headers, key, |subscription_id, user_id| {
        Command::ResumeSubscription {
            subscription_id,
            user_id,
        }
    })
    .await
}

/// `DELETE /subscriptions/{id}`: 204; no more checks. What was imported stays.
#[utoipa::path(delete, path = "/subscriptions/{id}", tag = "imports", security(("bearer" = [])),
    params(("id" = String, Path), CommandHeaders),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no such subscription of mine"),
        (status = 422, body = ErrorBody, description = "a reused Idempotency-Key"),
        (status = 503, body = ErrorBody)))]
async fn unsubscribe(
    user: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    change(user, state, headers, key, |subscription_id, user_id| {
        Command::Unsubscribe {
            subscription_id,
            user_id,
        }
    })
    .await
}

//! Reading your own writes over HTTP (`jukebox_projections::freshness` does the waiting).
//!
//! - Every command's answer carries the position of the last event it wrote: `send`
//!   records it for the request ([`record`]) and [`stamp`] writes it into the 2xx answer
//!   as the `Jukebox-Position` header and, for a JSON object body, a `position` field.
//! - Every read route takes [`After`] (`?after=<position>` or the `Jukebox-Position`
//!   request header) and calls [`After::wait`] with the read models it reads before it
//!   reads them: a `503` with `Retry-After` when they do not catch up in time, never
//!   stale data; a malformed position is a `400`.

use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use jukebox_projections::{Position, ReadModel, WaitError};

use crate::error::ApiError;
use crate::state::AppState;

/// The response header (and request header) that carries a position.
pub const POSITION_HEADER: HeaderName = HeaderName::from_static("jukebox-position");

/// A command's answer body is small; anything larger is passed through untouched.
const BODY_LIMIT: usize = 256 * 1024;

tokio::task_local! {
    static WRITTEN: Mutex<Option<Position>>;
}

/// Notes the position of a command this request sent (the latest one wins).
pub fn record(position: Option<&str>) {
    let Some(position) = position.and_then(|p| p.parse::<Position>().ok()) else {
        return;
    };
    let _ = WRITTEN.try_with(|written| {
        let mut written = written.lock().expect("position lock");
        *written = Some(written.map_or(position, |w| w.max(position)));
    });
}

/// Drops the positions recorded so far: for an answer that must look the same whether or
/// not its command wrote anything ("forgot password" does not tell who has an account).
pub fn forget() {
    let _ = WRITTEN.try_with(|written| *written.lock().expect("position lock") = None);
}

/// Middleware: writes the recorded position into a successful answer.
pub async fn stamp(request: Request, next: Next) -> Response {
    let (response, written) = WRITTEN
        .scope(Mutex::new(None), async {
            let response = next.run(request).await;
            let written = WRITTEN.with(|w| *w.lock().expect("position lock"));
            (response, written)
        })
        .await;
    let Some(position) = written else {
        return response;
    };
    if !response.status().is_success() {
        return response;
    }
    let token = position.to_string();
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        POSITION_HEADER,
        HeaderValue::from_str(&token).expect("a position is ASCII"),
    );
    let json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.insert("position".into(), token.into());
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(serde_json::to_vec(&object).expect("JSON serializes"))
        }
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// The position a read must reflect: `?after=` or the `Jukebox-Position` header (the
/// later of the two when both are given).
#[derive(Debug, Clone, Copy, Default)]
pub struct After(pub Option<Position>);

impl<S: Send + Sync> FromRequestParts<S> for After {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let malformed = |e: jukebox_projections::position::MalformedPosition| {
            ApiError::bad_request("invalid_position", e.to_string())
        };
        let mut after = None;
        let query = parts.uri.query().unwrap_or("");
        let mut given = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key == "after")
            .map(|(_, value)| value.into_owned());
        if let Some(value) = given.next() {
            if given.next().is_some() {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "after is given twice",
                ));
            }
            after = Some(value.parse::<Position>().map_err(malformed)?);
        }
        let mut headers = parts.headers.get_all(&POSITION_HEADER).iter();
        if let Some(value) = headers.next() {
            if headers.next().is_some() {
                return Err(ApiError::bad_request(
                    "invalid_position",
                    "Jukebox-Position is given twice",
                ));
            }
            let header: Position = value
                .to_str()
                .map_err(|_| jukebox_projections::position::MalformedPosition)
                .and_then(str::parse)
                .map_err(malformed)?;
            after = Some(after.map_or(header, |a: Position| a.max(header)));
        }
        Ok(Self(after))
    }
}

impl After {
    /// Returns once `models` reflect the position (at once without one).
    pub async fn wait(&self, state: &AppState, models: &[ReadModel]) -> Result<(), ApiError> {
        let Some(after) = self.0 else {
            return Ok(());
        };
        wait_for(state, after, models).await
    }
}

/// The server's own flows wait the same way (sign-in after verification, a removal, a
/// completed job).
pub async fn wait_for(
    state: &AppState,
    after: Position,
    models: &[ReadModel],
) -> Result<(), ApiError> {
    match state.freshness.wait_for(after, models).await {
        Ok(()) => Ok(()),
        Err(WaitError::Behind(model)) => {
            state.metrics.read_behind(model);
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_caught_up",
                "your latest change is not visible here yet; try again in a moment",
            ))
        }
        Err(WaitError::Database(error)) => Err(error.into()),
    }
}

/// The read models, as routes name what they read.
pub mod models {
    use jukebox_projections::{
        Accounts, AdminUsers, AuthSessions, Favourites, Jobs, Music, PlayQueues, PlaylistEntries,
        Playlists, Plays, ReadModel, Subscriptions, Tracks, UserLibrary,
    };

    pub const ACCOUNTS: ReadModel = ReadModel::of::<Accounts>();
    pub const ADMIN_USERS: ReadModel = ReadModel::of::<AdminUsers>();
    pub const SESSIONS: ReadModel = ReadModel::of::<AuthSessions>();
    pub const JOBS: ReadModel = ReadModel::of::<Jobs>();
    pub const TRACKS: ReadModel = ReadModel::of::<Tracks>();
    pub const LIBRARY: ReadModel = ReadModel::of::<UserLibrary>();
    pub const MUSIC: ReadModel = ReadModel::of::<Music>();
    pub const FAVOURITES: ReadModel = ReadModel::of::<Favourites>();
    pub const PLAYS: ReadModel = ReadModel::of::<Plays>();
    pub const PLAYLISTS: ReadModel = ReadModel::of::<Playlists>();
    pub const PLAYLIST_ENTRIES: ReadModel = ReadModel::of::<PlaylistEntries>();
    pub const PLAY_QUEUES: ReadModel = ReadModel::of::<PlayQueues>();
    pub const SUBSCRIPTIONS: ReadModel = ReadModel::of::<Subscriptions>();
}

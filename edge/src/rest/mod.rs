//! The OpenSubsonic API (issue 18, ADR 25): `/rest/<method>` and `/rest/<method>.view`,
//! GET or form POST, on the API port and on the web app's, so an app is given the same
//! address as the browser. Every answer is a `subsonic-response` (errors too, as HTTP
//! 200 with the spec's code), but for `stream`, `download` and `getCoverArt`, which answer
//! the bytes. A user sees only their own library: another user's id is "not found" (70).

mod annotation;
mod auth;
mod browse;
mod envelope;
mod media;
mod playlists;
mod queue;
mod song;
mod system;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

pub use auth::Caller;
pub use envelope::{Reply, SubsonicError};

use crate::state::AppState;

/// The request's parameters: the query string, then a form body's.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The first value of `name` (an empty value counts as given, as clients send it).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`, in order (`id` may be given many times).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    pub fn required(&self, name: &str) -> Result<&str, SubsonicError> {
        self.get(name).ok_or_else(|| SubsonicError::missing(name))
    }

    /// An optional integer in `min..=max`, `default` when absent.
    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, SubsonicError> {
        match self.get(name) {
            None | Some("") => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    SubsonicError::invalid(format!(
                        "{name} must be a whole number from {min} to {max}"
                    ))
                }),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route(
            "/rest/{method}",
            get(answer).post(answer).options(preflight),
        )
        .layer(axum::middleware::from_fn(cors))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &axum::http::Request<_>| {
                    // The method, never the query: it carries the credentials.
                    let method = request.uri().path().trim_start_matches("/rest/");
                    tracing::info_span!("http", method = %request.method(), route = "/rest/{method}", subsonic = %method)
                },
            ),
        )
        .with_state(state);
    crate::headers::with_security_headers(router)
}

/// Browser clients (Feishin's web build, Airsonic Refix) call from another origin with
/// credentials in the parameters, never cookies: any origin may read the answers.
async fn cors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range, Accept-Ranges"),
    );
    response
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Content-Type, Range, Authorization",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

async fn answer(
    State(state): State<AppState>,
    http_method: Method,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if http_method == Method::POST && form {
        pairs.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let params = Params::from_pairs(pairs);
    let reply = Reply::new(params.get("f"), params.get("callback"));
    // No parameter is ever valid with a NUL character (and Postgres cannot store one).
    if params
        .0
        .iter()
        .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    {
        return reply.error(&SubsonicError::invalid(
            "a parameter contains a NUL character (%00), which is never valid",
        ));
    }
    let method = method.strip_suffix(".view").unwrap_or(&method).to_owned();
    match dispatch(&state, &method, &params, &headers, &http_method).await {
        Ok(Answer::Body(body)) => reply.ok(body),
        Ok(Answer::Raw(response)) => response,
        Err(error) => reply.error(&error),
    }
}

/// What a method answers: elements for the envelope, or a response of its own (bytes).
pub enum Answer {
    Body(Value),
    Raw(Response),
}

async fn dispatch(
    state: &AppState,
    method: &str,
    params: &Params,
    headers: &HeaderMap,
    http_method: &Method,
) -> Result<Answer, SubsonicError> {
    // Without authentication (OpenSubsonic requires it of this one).
    if method == "getOpenSubsonicExtensions" {
        return Ok(Answer::Body(system::extensions()));
    }
    if !KNOWN.contains(&method) {
        return Err(SubsonicError::unknown_method(method));
    }
    let caller = auth::authenticate(state, params).await?;
    let mut body = match method {
        "ping" => Value::Object(Default::default()),
        "getLicense" => system::license(&caller),
        "tokenInfo" => system::token_info(&caller)?,
        "getUser" => system::user(&caller, params)?,
        "getMusicFolders" => system::music_folders(),
        "getSong" => song::get_song(state, &caller, params).await?,
        "getRandomSongs" => song::random_songs(state, &caller, params).await?,
        "search3" => song::search3(state, &caller, params).await?,
        "getGenres" => song::genres(),
        "getIndexes" => browse::indexes(state, &caller, params).await?,
        "getMusicDirectory" => browse::directory(state, &caller, params).await?,
        "getArtists" => browse::artists(state, &caller, params).await?,
        "getArtist" => browse::artist(state, &caller, params).await?,
        "getAlbum" => browse::album(state, &caller, params).await?,
        "getAlbumList2" => browse::album_list2(state, &caller, params).await?,
        "star" => annotation::star(state, &caller, params, true).await?,
        "unstar" => annotation::star(state, &caller, params, false).await?,
        "getStarred" => annotation::starred(state, &caller, false).await?,
        "getStarred2" => annotation::starred(state, &caller, true).await?,
        "scrobble" => annotation::scrobble(state, &caller, params).await?,
        "getNowPlaying" => annotation::now_playing(state, &caller).await?,
        "savePlayQueue" => queue::save_play_queue(state, &caller, params).await?,
        "getPlayQueue" => queue::get_play_queue(state, &caller).await?,
        "stream" | "download" => {
            return media::audio(state, &caller, params, headers, http_method)
                .await
                .map(Answer::Raw)
        }
        "getPlaylists" => playlists::list(state, &caller, params).await?,
        "getPlaylist" => playlists::get(state, &caller, params).await?,
        "createPlaylist" => playlists::create(state, &caller, params).await?,
        "updatePlaylist" => playlists::update(state, &caller, params).await?,
        "deletePlaylist" => playlists::delete(state, &caller, params).await?,
        "getCoverArt" => {
            return media::cover(state, &caller, params, headers)
                .await
                .map(Answer::Raw)
        }
        other => return Err(SubsonicError::unknown_method(other)),
    };
    // Every song, album and artist carries the caller's stars and plays (issue 19).
    annotation::mark(state, &caller, &mut body).await?;
    Ok(Answer::Body(body))
}

/// The methods Jukebox answers (getOpenSubsonicExtensions aside).
const KNOWN: &[&str] = &[
    "ping",
    "getLicense",
    "tokenInfo",
    "getUser",
    "getMusicFolders",
    "getSong",
    "getRandomSongs",
    "search3",
    "getGenres",
    "getIndexes",
    "getMusicDirectory",
    "getArtists",
    "getArtist",
    "getAlbum",
    "getAlbumList2",
    "star",
    "unstar",
    "getStarred",
    "getStarred2",
    "scrobble",
    "getNowPlaying",
    "savePlayQueue",
    "getPlayQueue",
    "stream",
    "download",
    "getCoverArt",
    "getPlaylists",
    "getPlaylist",
    "createPlaylist",
    "updatePlaylist",
    "deletePlaylist",
];

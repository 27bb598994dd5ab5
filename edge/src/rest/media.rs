//! The bytes: `stream` and `download` (the stored audio itself, with Range/206, never a
//! redirect: DSub does not follow one; no play is counted) and `getCoverArt`.

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use jukebox_projections::library::{playable, Playable};

use super::{Caller, Params, SubsonicError};
use crate::state::AppState;
use crate::stream::StoredImage;

/// How long an app may keep a cover without asking again.
const COVER_MAX_AGE: i64 = 3600;

fn store(state: &AppState) -> Result<&dyn jukebox_storage::ObjectStore, SubsonicError> {
    state
        .store
        .as_deref()
        .ok_or_else(|| SubsonicError::generic("this server has no object store configured"))
}

/// `stream` and `download`: `maxBitRate`, `format` and the like are accepted and ignored
/// (every track is served as stored, AAC in MP4).
pub async fn audio(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Response, SubsonicError> {
    let id = params.required("id")?;
    let Playable::InLibrary(track) = playable(&state.pool, caller.user_id, id).await? else {
        return Err(SubsonicError::not_found("Song"));
    };
    let store = store(state)?;
    crate::stream::audio(
        store,
        &state.metrics,
        method,
        headers,
        &track.object_key,
        track.size,
    )
    .await
    .map_err(|error| SubsonicError::internal(&error))
}

/// `getCoverArt`: the stored picture as it is; `size` is checked, and apps scale it.
pub async fn cover(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, SubsonicError> {
    let id = params.required("id")?;
    params.int("size", 0, 1, 8192)?;
    let Playable::InLibrary(track) = playable(&state.pool, caller.user_id, id).await? else {
        return Err(SubsonicError::not_found("Cover art"));
    };
    let Some((key, size, content_type)) = track.cover else {
        return Err(SubsonicError::not_found("Cover art"));
    };
    let image = StoredImage {
        key,
        size,
        content_type,
    };
    let store = store(state)?;
    crate::stream::picture(store, &Method::GET, headers, &image, COVER_MAX_AGE)
        .await
        .map_err(|error| SubsonicError::internal(&error))
}

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

/// The largest `size` a cover is scaled to; stored covers are at most 512 px (ADR 08).
const MAX_SCALED_SIZE: u32 = 2048;

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

/// `getCoverArt`: the stored picture; with `size`, one larger than `size`×`size` is scaled
/// down to fit (aspect kept) and answered as a JPEG. A `size` above [`MAX_SCALED_SIZE`]
/// answers the stored picture, which is smaller anyway.
pub async fn cover(
    state: &AppState,
    caller: &Caller,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response, SubsonicError> {
    let id = params.required("id")?;
    let fit_to = params.int("size", 0, 1, 8192)?;
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
    let fit = u32::try_from(fit_to)
        .ok()
        .filter(|size| (1..=MAX_SCALED_SIZE).contains(size));
    crate::stream::picture(store, &Method::GET, headers, &image, COVER_MAX_AGE, fit)
        .await
        .map_err(|error| SubsonicError::internal(&error))
}

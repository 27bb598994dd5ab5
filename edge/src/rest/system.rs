//! System methods: getOpenSubsonicExtensions (without authentication), getLicense,
//! tokenInfo, getUser, getMusicFolders. Each user has one music folder: their library.

use serde_json::{json, Value};

use super::{Caller, Params, SubsonicError};

/// The one music folder every user has.
pub const LIBRARY_FOLDER: i64 = 1;

pub fn extensions() -> Value {
    json!({"openSubsonicExtensions": [
        {"name": "apiKeyAuthentication", "versions": [1]},
        {"name": "formPost", "versions": [1]},
    ]})
}

pub fn license(caller: &Caller) -> Value {
    json!({"license": {"valid": true, "email": caller.email}})
}

/// Only for an `apiKey` (the method is part of apiKeyAuthentication).
pub fn token_info(caller: &Caller) -> Result<Value, SubsonicError> {
    if !caller.api_key {
        return Err(SubsonicError::invalid_api_key());
    }
    Ok(json!({"tokenInfo": {"username": caller.email}}))
}

/// The caller themselves (no one else: a user sees only their own account).
pub fn user(caller: &Caller, params: &Params) -> Result<Value, SubsonicError> {
    let username = params.required("username")?;
    if !username.trim().eq_ignore_ascii_case(&caller.email) {
        return Err(SubsonicError::not_authorized(
            "you can only see your own user",
        ));
    }
    Ok(json!({"user": {
        "username": caller.email,
        "email": caller.email,
        "scrobblingEnabled": false,
        "adminRole": false,
        "settingsRole": false,
        "downloadRole": true,
        "uploadRole": false,
        "playlistRole": false,
        "coverArtRole": false,
        "commentRole": false,
        "podcastRole": false,
        "streamRole": true,
        "jukeboxRole": false,
        "shareRole": false,
        "videoConversionRole": false,
        "folder": [LIBRARY_FOLDER],
    }}))
}

pub fn music_folders() -> Value {
    json!({"musicFolders": {"musicFolder": [{"id": LIBRARY_FOLDER, "name": "Library"}]}})
}

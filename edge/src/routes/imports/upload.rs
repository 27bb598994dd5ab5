//! `POST /songs/upload`: a file spooled to disk with a size cap, probed, and kept for
//! the downloader.

use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use jukebox_domain::SourceRef;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{request_import, settings, within_quota, ImportAccepted};
use crate::commands::CommandHeaders;
use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::After;
use crate::ports::UploadError;
use crate::state::AppState;

#[derive(ToSchema)]
#[allow(dead_code)] // the multipart form, for the document
struct UploadForm {
    /// The audio file (`UPLOAD_MAX_BYTES` at most).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// `POST /songs/upload` (multipart, one `file` field) -> 202 `{job_id}`. The file is
/// spooled to disk with a size cap, probed, and kept for the downloader.
#[utoipa::path(post, path = "/songs/upload", tag = "imports", security(("bearer" = [])),
    params(CommandHeaders), request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses((status = 202, body = ImportAccepted),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "`quota_exceeded`: the file would pass IMPORT_MAX_TRACKS_PER_USER or IMPORT_MAX_BYTES_PER_USER"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "no file, or not audio"),
        (status = 503, body = ErrorBody)))]
pub(super) async fn upload(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let settings = settings(&state)?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the file as multipart/form-data with a `file` field ({})",
                e.body_text()
            ),
        )
    })?;
    let bad = |m: String| ApiError::bad_request("invalid_upload", m);
    let too_big = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            format!(
                "the file is larger than the upload limit of {} MiB",
                settings.upload_max_bytes / (1 << 20)
            ),
        )
    };
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if length > settings.upload_max_bytes + 64 * 1024 {
            return Err(too_big());
        }
    }
    // Before the body is read when the library is full already; with the size, after.
    within_quota(&state, &after, user.user_id, 1, 0).await?;
    let spool = match &settings.upload_dir {
        Some(dir) => tempfile::Builder::new()
            .prefix("jukebox-upload-")
            .tempfile_in(dir),
        None => tempfile::Builder::new()
            .prefix("jukebox-upload-")
            .tempfile(),
    }
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling an upload")))?;
    let mut file = tokio::fs::File::from_std(
        spool
            .reopen()
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spool file")))?,
    );
    let mut filename = None;
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    let mut found = false;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(e.body_text()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        if found {
            return Err(bad("send one file per upload".into()));
        }
        found = true;
        filename = field.file_name().map(|n| {
            n.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        });
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.body_text()))? {
            size += chunk.len() as u64;
            if size > settings.upload_max_bytes {
                return Err(too_big());
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling")))?;
        }
    }
    if !found || size == 0 {
        return Err(ApiError::unprocessable(
            "invalid_upload",
            "send the audio file as the multipart field `file`",
        ));
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("spooling")))?;
    drop(file);
    within_quota(&state, &after, user.user_id, 1, size).await?;
    let job_id = Uuid::now_v7();
    let accepted = settings
        .uploads
        .accept(spool.path(), job_id)
        .await
        .map_err(|e| match e {
            UploadError::Refused(m) => ApiError::unprocessable("not_audio", m),
            UploadError::Unavailable(m) => ApiError::Unavailable(m),
        })?;
    let source = SourceRef::Upload {
        object_key: accepted.object_key,
        sha256: hex::encode(hasher.finalize()),
        size,
        filename,
    };
    request_import(&state, &headers, user.user_id, job_id, source).await
}

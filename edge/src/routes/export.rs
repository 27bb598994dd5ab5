//! `GET /me/export` (issue 21): everything of mine as one zip archive: `jukebox.json`
//! (account, library, playlists, favourites, plays, app credentials' names; no password
//! hash, token or secret) and one M3U8 file per playlist of mine. The data is read first
//! (from the read side, waiting for the caller's last write like any read); the archive
//! is then written on a blocking thread straight into the response body, chunk by chunk.
//! An import still running is not waited for: its track is in the next export.

use std::io::Write;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jukebox_projections::{access, export, music, playlists};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::{ApiError, ErrorBody};
use crate::extract::AuthUser;
use crate::fresh::{models, After};
use crate::routes::playlists::m3u8_text;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/me/export", get(export_archive))
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(export_archive))]
pub(crate) struct Doc;

/// What the export reads, each waited for when the request carries a position.
const READS: &[jukebox_projections::ReadModel] = &[
    models::MUSIC,
    models::PLAYLISTS,
    models::PLAYLIST_ENTRIES,
    models::FAVOURITES,
    models::PLAYS,
];

/// The archive's version of `jukebox.json`; a changed shape gets a new number.
const FORMAT: u32 = 1;
/// Tracks read per query while the library is gathered.
const LIBRARY_PAGE: i64 = 1_000;

#[derive(Serialize)]
struct Archive {
    format: u32,
    exported_at: String,
    account: Account,
    library: Vec<LibraryTrack>,
    playlists: Vec<Playlist>,
    favourites: Vec<Favourite>,
    plays: Vec<Played>,
    app_credentials: Vec<AppCredential>,
}

#[derive(Serialize)]
struct Account {
    id: Uuid,
    email: String,
    verified: bool,
    roles: Vec<String>,
    created_at: String,
}

#[derive(Serialize)]
struct LibraryTrack {
    id: String,
    title: String,
    artists: Vec<String>,
    album: String,
    year: Option<i32>,
    duration_ms: i64,
    added_at: Option<String>,
}

#[derive(Serialize)]
struct Playlist {
    id: Uuid,
    name: String,
    description: String,
    public: bool,
    created_at: String,
    updated_at: String,
    /// The song ids in playlist order.
    tracks: Vec<String>,
    /// Its M3U8 file in this archive.
    file: String,
}

#[derive(Serialize)]
struct Favourite {
    /// `track`, `album` or `artist`.
    kind: String,
    id: String,
    starred_at: String,
}

#[derive(Serialize)]
struct Played {
    track_id: String,
    play_count: i64,
    last_played: String,
}

#[derive(Serialize)]
struct AppCredential {
    id: Uuid,
    name: String,
    created_at: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A playlist's file name in the archive: its id (unique) and its name, kept to letters,
/// digits, `-` and `_` so no name can make a path or a name an unzip tool refuses.
fn playlist_file(playlist_id: Uuid, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    format!("playlists/{playlist_id}-{safe}.m3u8")
}

/// `GET /me/export`: a zip archive of my data.
#[utoipa::path(get, path = "/me/export", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>,
            description = "jukebox.json and playlists/<id>-<name>.m3u8"),
        (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn export_archive(
    user: AuthUser,
    after: After,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    after.wait(&state, READS).await?;
    let user_id = user.user_id;
    let account = access::by_id(&state.pool, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    let now = OffsetDateTime::now_utc();

    let mut library = Vec::new();
    loop {
        let page =
            music::tracks::page(&state.pool, user_id, LIBRARY_PAGE, library.len() as i64).await?;
        let last = (page.len() as i64) < LIBRARY_PAGE;
        library.extend(page.into_iter().map(|t| LibraryTrack {
            id: t.track_id,
            title: t.title,
            artists: t.artists,
            album: t.album,
            year: t.year,
            duration_ms: t.duration_ms,
            added_at: t.added_at.map(rfc3339),
        }));
        if last {
            break;
        }
    }

    let mut lists = Vec::new();
    let mut files = Vec::new();
    for summary in playlists::visible(&state.pool, user_id, false).await? {
        let limit = i64::try_from(jukebox_domain::playlist::MAX_ENTRIES).unwrap_or(i64::MAX);
        let items = playlists::items(&state.pool, summary.playlist_id, 0, limit).await?;
        let file = playlist_file(summary.playlist_id, &summary.name);
        files.push((file.clone(), m3u8_text(&state, &summary).await?));
        lists.push(Playlist {
            id: summary.playlist_id,
            name: summary.name,
            description: summary.description,
            public: summary.public,
            created_at: rfc3339(summary.created_at),
            updated_at: rfc3339(summary.updated_at),
            tracks: items.into_iter().map(|i| i.track_id).collect(),
            file,
        });
    }

    let favourites = export::favourites(&state.pool, user_id)
        .await?
        .into_iter()
        .map(|f| Favourite {
            kind: f.kind,
            id: f.item_id,
            starred_at: rfc3339(f.starred_at),
        })
        .collect();
    let plays = export::plays(&state.pool, user_id)
        .await?
        .into_iter()
        .map(|p| Played {
            track_id: p.track_id,
            play_count: p.play_count,
            last_played: rfc3339(p.last_played),
        })
        .collect();
    let app_credentials = crate::app_credentials::load(&state.pool, user_id)
        .await?
        .live()
        .map(|c| AppCredential {
            id: c.credential_id,
            name: c.name.clone(),
            created_at: rfc3339(c.created_at),
        })
        .collect();

    let archive = Archive {
        format: FORMAT,
        exported_at: rfc3339(now),
        account: Account {
            id: account.user_id,
            email: account.email,
            verified: account.verified,
            roles: account.roles,
            created_at: rfc3339(account.created_at),
        },
        library,
        playlists: lists,
        favourites,
        plays,
        app_credentials,
    };
    let json = serde_json::to_vec_pretty(&archive).map_err(anyhow::Error::from)?;
    files.insert(
        0,
        (
            "jukebox.json".to_owned(),
            String::from_utf8(json).map_err(anyhow::Error::from)?,
        ),
    );

    let (sender, mut receiver) = mpsc::channel::<std::io::Result<Bytes>>(8);
    tokio::task::spawn_blocking(move || {
        let failed = sender.clone();
        if let Err(error) = write_zip(ChannelWriter(sender), files) {
            // The body ends with the error: the client sees a broken download, not a
            // short archive that looks whole.
            tracing::warn!(%error, "export archive not finished");
            let _ = failed.blocking_send(Err(std::io::Error::other(error.to_string())));
        }
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)));
    let name = format!("attachment; filename=\"jukebox-export-{}.zip\"", now.date());
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// Writes the files, deflated, as a streamed zip (sizes in data descriptors: no seeking).
fn write_zip(out: ChannelWriter, files: Vec<(String, String)>) -> zip::result::ZipResult<()> {
    let mut zip = ZipWriter::new_stream(std::io::BufWriter::with_capacity(64 * 1024, out));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, text) in files {
        zip.start_file(name, options)?;
        zip.write_all(text.as_bytes())?;
    }
    zip.finish()?.into_inner().flush()?;
    Ok(())
}

/// The response body's end of the archive: each write becomes a chunk. A client that
/// went away makes the next write fail, which stops the writer.
struct ChannelWriter(mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

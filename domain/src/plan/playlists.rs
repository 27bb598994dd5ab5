//! The playlist commands' plans (issue 19): each is one step on its `Playlist`, whose
//! id the command names; the owner check is the aggregate's own.

use super::{only, Next, Report};
use crate::command::{Command, CommandError, ErrorCode};
use crate::PlaylistCommand;

pub(super) fn next(command: &Command, done: &[Report]) -> Next {
    let (playlist_id, step) = match command {
        Command::CreatePlaylist {
            playlist_id,
            user_id,
            name,
            description,
            public,
            tracks,
        } => (
            playlist_id,
            PlaylistCommand::Create {
                playlist_id: *playlist_id,
                owner: *user_id,
                name: name.clone(),
                description: description.clone(),
                public: *public,
                tracks: tracks.clone(),
            },
        ),
        Command::EditPlaylist {
            playlist_id,
            user_id,
            edit,
        } => (
            playlist_id,
            PlaylistCommand::Edit {
                by: *user_id,
                edit: edit.clone(),
            },
        ),
        Command::MovePlaylistEntry {
            playlist_id,
            user_id,
            entry,
            to,
        } => (
            playlist_id,
            PlaylistCommand::Move {
                by: *user_id,
                entry: *entry,
                to: *to,
            },
        ),
        Command::ReplacePlaylistTracks {
            playlist_id,
            user_id,
            tracks,
        } => (
            playlist_id,
            PlaylistCommand::Replace {
                by: *user_id,
                tracks: tracks.clone(),
            },
        ),
        Command::DeletePlaylist {
            playlist_id,
            user_id,
        } => (playlist_id, PlaylistCommand::Delete { by: *user_id }),
        // `plan::next` sends only the commands above here.
        _ => {
            return Next::Finish(Err(CommandError::new(
                ErrorCode::UnknownPlaylist,
                "not a playlist command",
            )))
        }
    };
    only(done, playlist_id.to_string(), step)
}

//! The plan of `ImportCollection` (issue 20, ADR 35): the user's `CollectionImport`
//! records what is new; then its playlist is written once (created on the first import,
//! appended to later) with every new entry in the listing's order; then one `Import` per
//! new entry. Each step is its own aggregate, so nothing contends however long the list
//! is: no step can exhaust the processor's conflict retries. A redelivered command adopts
//! the steps it committed, so a crash midway never leaves the import half done.

use super::{apply, finished, Next, Report, State};
use crate::collection::{job_id, CollectionImportCommand};
use crate::command::{Command, CommandError, ErrorCode};
use crate::playlist::{valid_name, Edit, MAX_NAME_CHARS};
use crate::{ImportCommand, PlaylistCommand};

/// The playlist's name: the collection's title, printable and at most 200 characters.
fn playlist_name(title: &str) -> String {
    let name: String = title
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim()
        .to_owned();
    if valid_name(&name) {
        name
    } else {
        "Imported playlist".to_owned()
    }
}

pub(super) fn next(command: &Command, done: &[Report]) -> Next {
    use Report::{Applied, Rejected};
    let Command::ImportCollection {
        collection_id,
        batch_id,
        user_id,
        url,
        title,
        playlist_id,
        entries,
        skipped,
        listed,
        capped,
    } = command
    else {
        return Next::Finish(Err(CommandError::new(
            ErrorCode::UnknownJob,
            "not a collection import",
        )));
    };
    match done {
        [] => apply(
            collection_id,
            CollectionImportCommand::Import {
                batch_id: *batch_id,
                user_id: *user_id,
                url: url.clone(),
                title: title.clone(),
                playlist_id: *playlist_id,
                entries: entries.clone(),
                skipped: skipped.clone(),
                listed: *listed,
                capped: *capped,
            },
            false,
        ),
        [Rejected(error)] => Next::Finish(Err(error.clone())),
        // Every entry was taken before: nothing is added twice.
        [Applied { events, .. }] if events.is_empty() => Next::Finish(Ok(())),
        [Applied {
            state: State::CollectionImport(collection),
            ..
        }] => {
            let playlist_id = collection.playlist_id().unwrap_or(*playlist_id);
            let tracks = collection
                .last_added()
                .iter()
                .map(|e| e.track_id.clone())
                .collect();
            let step = if collection.imports() == 1 {
                PlaylistCommand::Create {
                    playlist_id,
                    owner: *user_id,
                    name: playlist_name(collection.title()),
                    description: format!("Imported from {}", collection.url())
                        .chars()
                        .take(crate::playlist::MAX_DESCRIPTION_CHARS)
                        .collect(),
                    public: false,
                    tracks,
                }
            } else {
                // A deleted or full playlist refuses this; the jobs are requested anyway.
                PlaylistCommand::Edit {
                    by: *user_id,
                    edit: Edit {
                        add: tracks,
                        ..Edit::default()
                    },
                }
            };
            apply(&playlist_id.to_string(), step, false)
        }
        [Applied {
            state: State::CollectionImport(collection),
            ..
        }, _playlist, requested @ ..] => {
            let added = collection.last_added();
            let index = requested.len();
            match added.get(index) {
                Some(entry) => {
                    let job_id = job_id(*batch_id, index);
                    apply(
                        &job_id.to_string(),
                        ImportCommand::Request {
                            job_id,
                            requested_by: *user_id,
                            source: entry.source.clone(),
                        },
                        index + 1 == added.len(),
                    )
                }
                // A job refused (it existed) does not undo the others.
                None => Next::Finish(Ok(())),
            }
        }
        _ => finished(done),
    }
}

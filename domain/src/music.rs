//! Artists and albums (issue 18): what a track is called in a library, and the stable ids
//! of the artists and albums it belongs to (ADR 23).
//!
//! A track's [`TrackDetails`] start from its `TrackStored` (cleaned metadata) and change
//! with its owner's corrections ([`Correction`]), which are per library entry. Ids are
//! UUIDv5 of normalized names, the same for every owner and every rebuild: an artist is
//! its name; an album is its album artist (the first artist of its tracks) and title; a
//! track without album data is its own single, whose id is its track id's.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::{UNKNOWN_ARTIST, UNTITLED};
use crate::track::StoredTrack;

/// Names for ids: lower case, inner whitespace collapsed, trimmed.
pub fn normalize(name: &str) -> String {
    name.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The namespace of every id below (a random UUID, fixed forever).
const NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_8a6c_49a1_4f0e_9a59_2f4c_7f1b_3e21);

pub fn artist_id(name: &str) -> Uuid {
    Uuid::new_v5(
        &NAMESPACE,
        format!("artist\u{1f}{}", normalize(name)).as_bytes(),
    )
}

pub fn album_id(album_artist: &str, title: &str) -> Uuid {
    let name = format!(
        "album\u{1f}{}\u{1f}{}",
        normalize(album_artist),
        normalize(title)
    );
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

/// The album of a track with no album data: its own single.
pub fn single_id(track_id: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("single\u{1f}{track_id}").as_bytes())
}

/// What a track is called in one library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackDetails {
    pub title: String,
    /// One or more, main artist first, no two with the same normalized name.
    pub artists: Vec<String>,
    /// `None`: the track is its own single.
    pub album: Option<String>,
    pub year: Option<i32>,
}

impl TrackDetails {
    /// The stored track's (cleaned) metadata. Events written before issue 18 have no
    /// `artists`: their single `artist` stands in.
    pub fn of(track: &StoredTrack) -> Self {
        let artists = if track.artists.is_empty() {
            track.artist.iter().cloned().collect()
        } else {
            track.artists.clone()
        };
        Self::new(
            track.title.clone(),
            artists,
            track.album.clone(),
            track.year,
        )
    }

    /// Tidied: blank title → [`UNTITLED`], no artist → [`UNKNOWN_ARTIST`], repeated
    /// artists once, blank album → none.
    pub fn new(
        title: Option<String>,
        artists: Vec<String>,
        album: Option<String>,
        year: Option<i32>,
    ) -> Self {
        let title = title
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| UNTITLED.to_owned());
        let mut seen = Vec::new();
        let mut unique = Vec::new();
        for artist in artists {
            let artist = artist.trim().to_owned();
            let key = normalize(&artist);
            if !key.is_empty() && !seen.contains(&key) {
                seen.push(key);
                unique.push(artist);
            }
        }
        if unique.is_empty() {
            unique.push(UNKNOWN_ARTIST.to_owned());
        }
        let album = album.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
        Self {
            title,
            artists: unique,
            album,
            year: year.filter(|y| (1..=9999).contains(y)),
        }
    }

    /// These details with an owner's correction laid over them.
    pub fn corrected(&self, correction: &Correction) -> Self {
        Self::new(
            Some(
                correction
                    .title
                    .clone()
                    .unwrap_or_else(|| self.title.clone()),
            ),
            correction
                .artists
                .clone()
                .unwrap_or_else(|| self.artists.clone()),
            correction.album.clone().or_else(|| self.album.clone()),
            correction.year.or(self.year),
        )
    }

    /// The album's artist: the first artist.
    pub fn album_artist(&self) -> &str {
        &self.artists[0]
    }

    /// The album's title: the album, or for a single the track's title.
    pub fn album_title(&self) -> &str {
        self.album.as_deref().unwrap_or(&self.title)
    }

    pub fn album_id(&self, track_id: &str) -> Uuid {
        match &self.album {
            Some(album) => album_id(self.album_artist(), album),
            None => single_id(track_id),
        }
    }

    pub fn artist_ids(&self) -> Vec<Uuid> {
        self.artists.iter().map(|a| artist_id(a)).collect()
    }

    /// The artists as one line ("A, B").
    pub fn artist_line(&self) -> String {
        self.artists.join(", ")
    }
}

/// An owner's correction of a track's details: each field given replaces the source's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub artists: Option<Vec<String>>,
    #[serde(default)]
    pub album: Option<String>,
    #[serde(default)]
    pub year: Option<i32>,
}

/// Longest title, artist or album name a correction takes, in characters.
pub const MAX_NAME_CHARS: usize = 300;
/// Most artists a correction names.
pub const MAX_ARTISTS: usize = 20;

/// Why a correction was refused, as a sentence a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CorrectionError(pub String);

impl Correction {
    /// Checks and tidies (trims) a correction: at least one field; names neither blank
    /// nor over [`MAX_NAME_CHARS`], without control characters; 1 to [`MAX_ARTISTS`]
    /// artists; a year from 1 to 9999.
    pub fn parse(
        title: Option<String>,
        artists: Option<Vec<String>>,
        album: Option<String>,
        year: Option<i32>,
    ) -> Result<Self, CorrectionError> {
        if title.is_none() && artists.is_none() && album.is_none() && year.is_none() {
            return Err(CorrectionError(
                "Give at least one of title, artists, album or year to change.".into(),
            ));
        }
        let title = title.map(|t| name("The title", t)).transpose()?;
        let album = album.map(|a| name("The album", a)).transpose()?;
        let artists = match artists {
            None => None,
            Some(list) if list.is_empty() => {
                return Err(CorrectionError(
                    "Name at least one artist, or leave artists out to keep them.".into(),
                ))
            }
            Some(list) if list.len() > MAX_ARTISTS => {
                return Err(CorrectionError(format!(
                    "Name at most {MAX_ARTISTS} artists."
                )))
            }
            Some(list) => Some(
                list.into_iter()
                    .map(|a| name("An artist's name", a))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        if let Some(year) = year {
            if !(1..=9999).contains(&year) {
                return Err(CorrectionError(
                    "The year must be a number from 1 to 9999.".into(),
                ));
            }
        }
        Ok(Self {
            title,
            artists,
            album,
            year,
        })
    }
}

fn name(what: &str, value: String) -> Result<String, CorrectionError> {
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Err(CorrectionError(format!("{what} cannot be empty.")));
    }
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(CorrectionError(format!(
            "{what} is too long: at most {MAX_NAME_CHARS} characters."
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(CorrectionError(format!(
            "{what} cannot contain control characters such as line breaks."
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_ignore_case_and_spacing() {
        assert_eq!(artist_id("Daft  Punk "), artist_id("daft punk"));
        assert_ne!(artist_id("Daft Punk"), artist_id("Daft Punks"));
        assert_eq!(
            album_id("Daft Punk", "Discovery"),
            album_id("DAFT PUNK", " discovery")
        );
        assert_ne!(
            album_id("Daft Punk", "Discovery"),
            album_id("Justice", "Discovery")
        );
        // Pinned: ids must not change between releases (apps keep them).
        assert_eq!(
            artist_id("Daft Punk").to_string(),
            Uuid::new_v5(&NAMESPACE, "artist\u{1f}daft punk".as_bytes()).to_string()
        );
        assert_ne!(single_id("yt:a"), single_id("yt:b"));
    }

    #[test]
    fn details_fall_back_to_the_single_artist_and_name_the_unknown() {
        let mut track = crate::track::tests::stored();
        track.artists = vec![];
        let details = TrackDetails::of(&track);
        assert_eq!(details.artists, ["Artist"]);
        assert_eq!(details.album_title(), "Song");
        assert_eq!(
            details.album_id("yt:dQw4w9WgXcQ"),
            single_id("yt:dQw4w9WgXcQ")
        );
        track.artist = None;
        track.title = Some("  ".into());
        let details = TrackDetails::of(&track);
        assert_eq!(details.artists, [UNKNOWN_ARTIST]);
        assert_eq!(details.title, UNTITLED);
        let details = TrackDetails::new(
            Some("T".into()),
            vec!["A".into(), "a ".into(), "B".into()],
            Some(" LP ".into()),
            Some(0),
        );
        assert_eq!(details.artists, ["A", "B"]);
        assert_eq!((details.album.as_deref(), details.year), (Some("LP"), None));
        assert_eq!(details.album_id("x"), album_id("A", "LP"));
    }

    #[test]
    fn a_correction_replaces_only_what_it_names() {
        let details = TrackDetails::new(Some("T".into()), vec!["A".into()], None, Some(2001));
        let correction = Correction::parse(
            None,
            Some(vec!["B".into(), "C".into()]),
            Some("LP".into()),
            None,
        )
        .unwrap();
        let corrected = details.corrected(&correction);
        assert_eq!(
            corrected,
            TrackDetails {
                title: "T".into(),
                artists: vec!["B".into(), "C".into()],
                album: Some("LP".into()),
                year: Some(2001),
            }
        );
        assert_eq!(corrected.artist_line(), "B, C");
    }

    #[test]
    fn bad_corrections_are_refused_with_a_sentence() {
        let refused = |t: Option<&str>, a: Option<Vec<&str>>, al: Option<&str>, y: Option<i32>| {
            Correction::parse(
                t.map(Into::into),
                a.map(|a| a.into_iter().map(Into::into).collect()),
                al.map(Into::into),
                y,
            )
            .unwrap_err()
            .0
        };
        assert_eq!(
            refused(None, None, None, None),
            "Give at least one of title, artists, album or year to change."
        );
        assert_eq!(
            refused(Some("  "), None, None, None),
            "The title cannot be empty."
        );
        assert_eq!(
            refused(None, None, Some(&"x".repeat(301)), None),
            "The album is too long: at most 300 characters."
        );
        assert_eq!(
            refused(None, Some(vec![]), None, None),
            "Name at least one artist, or leave artists out to keep them."
        );
        assert_eq!(
            refused(None, Some(vec!["a\nb"]), None, None),
            "An artist's name cannot contain control characters such as line breaks."
        );
        assert_eq!(
            refused(None, None, None, Some(10_000)),
            "The year must be a number from 1 to 9999."
        );
        assert_eq!(
            Correction::parse(Some(" T ".into()), None, None, None)
                .unwrap()
                .title,
            Some("T".into())
        );
    }
}

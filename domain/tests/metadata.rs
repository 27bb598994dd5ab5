//! Clean metadata against a corpus of real-world-shaped titles (`data/metadata_titles.json`:
//! each entry is what a source says and the title, artists and album expected), and
//! properties that hold for any input.

use jukebox_domain::metadata::{clean, CleanMetadata, SourceFields, UNKNOWN_ARTIST, UNTITLED};
use proptest::prelude::*;
use serde_json::Value;

const CORPUS: &str = include_str!("data/metadata_titles.json");

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn source(entry: &Value) -> SourceFields {
    SourceFields {
        title: text(&entry["title"]),
        track: text(&entry["track"]),
        artists: entry["artists"]
            .as_array()
            .map(|a| a.iter().filter_map(text).collect())
            .unwrap_or_default(),
        artist: text(&entry["artist"]),
        album: text(&entry["album"]),
        release_year: entry["release_year"].as_i64().map(|y| y as i32),
        channel: text(&entry["channel"]),
    }
}

fn expected(entry: &Value) -> CleanMetadata {
    CleanMetadata {
        title: text(&entry["title"]).expect("every entry expects a title"),
        artists: entry["artists"]
            .as_array()
            .expect("every entry expects artists")
            .iter()
            .filter_map(text)
            .collect(),
        album: text(&entry["album"]),
        year: entry["year"].as_i64().map(|y| y as i32),
    }
}

#[test]
fn the_corpus_cleans_as_expected() {
    let corpus: Vec<Value> = serde_json::from_str(CORPUS).expect("the corpus is JSON");
    assert!(corpus.len() >= 60, "{} entries", corpus.len());
    let mut wrong = Vec::new();
    for entry in &corpus {
        let fields = source(&entry["source"]);
        let want = expected(&entry["expect"]);
        let got = clean(&fields);
        if got != want {
            wrong.push(format!(
                "{:?} (channel {:?})\n    want {want:?}\n    got  {got:?}",
                fields.title, fields.channel
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} entries differ:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
}

#[test]
fn nothing_known_gives_the_placeholders() {
    let got = clean(&SourceFields::default());
    assert_eq!(got.title, UNTITLED);
    assert_eq!(got.artists, [UNKNOWN_ARTIST]);
    assert_eq!(got.album, None);
    assert_eq!(got.year, None);
}

#[test]
fn an_implausible_year_is_dropped() {
    let fields = SourceFields {
        title: Some("A - B".into()),
        release_year: Some(0),
        ..SourceFields::default()
    };
    assert_eq!(clean(&fields).year, None);
}

fn any_text() -> impl Strategy<Value = Option<String>> {
    // Titles as people write them, with the characters the rules look at made common.
    prop::option::of(prop::string::string_regex(
        r"[a-zA-Zé강 \t\n()\[\]【】'\x22“”|/,&.:~–—-]{0,60}|(feat\.|ft\.|VEVO| - Topic| - | x |Official Video|\(|\)){0,8}",
    )
    .expect("a valid pattern"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the source says: no panic, a title, one or more artists, all trimmed and
    /// none blank.
    #[test]
    fn any_input_gives_a_title_and_artists(
        title in any_text(),
        track in any_text(),
        artist in any_text(),
        artists in prop::collection::vec(any_text(), 0..3),
        album in any_text(),
        channel in any_text(),
        release_year in prop::option::of(any::<i32>()),
    ) {
        let fields = SourceFields {
            title,
            track,
            artists: artists.into_iter().flatten().collect(),
            artist,
            album,
            release_year,
            channel,
        };
        let got = clean(&fields);
        prop_assert!(!got.title.is_empty());
        prop_assert_eq!(got.title.trim(), got.title.as_str());
        prop_assert!(!got.artists.is_empty());
        for artist in &got.artists {
            prop_assert!(!artist.is_empty());
            prop_assert_eq!(artist.trim(), artist.as_str());
        }
        if let Some(album) = &got.album {
            prop_assert!(!album.is_empty());
        }
        // The clean artists, given back as the site's own list, stay first and in order.
        let again = clean(&SourceFields {
            track: Some(got.title.clone()),
            artists: got.artists.clone(),
            album: got.album.clone(),
            release_year: got.year,
            ..SourceFields::default()
        });
        prop_assert_eq!(&again.artists[..got.artists.len()], &got.artists[..]);
    }
}

//! Clean metadata (issue 18): a track's title, artists and album, from the source's own
//! fields first (yt-dlp's `track`, `artists`/`artist`, `album`, `release_year`; an
//! upload's tags), then from the title as people write it: "Artist - Title (Official
//! Video) [HD]", "Title (Lyrics)" on a channel named "ArtistVEVO" or "Artist - Topic",
//! "feat."/"ft." guests. Pure: no I/O.
//!
//! An upload maps its tags onto [`SourceFields`]: `title` tag → `track`, `artist` tag(s)
//! → `artist`/`artists`, `album`, the date's year → `release_year`, and the file's name
//! (without extension) → `title`, the fallback when the file has no `title` tag.
//!
//! Long because it is one parser: the title rules share their helpers (brackets, dash
//! separators, decoration words, guest lists), which split apart would only scatter it.

/// What a source says about a track, as it says it. Absent and blank are alike.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFields {
    /// The video's (page's) title, or an upload's file name.
    pub title: Option<String>,
    /// The track's own name, when the site knows it (yt-dlp's `track`) or the file's tag.
    pub track: Option<String>,
    /// The artists one by one (yt-dlp's `artists`, an upload's artist tags).
    pub artists: Vec<String>,
    /// The artist as one string (yt-dlp's `artist`, an upload's `artist` tag).
    pub artist: Option<String>,
    pub album: Option<String>,
    pub release_year: Option<i32>,
    /// The channel or uploader that published it.
    pub channel: Option<String>,
}

/// A track's metadata, cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanMetadata {
    /// Never empty: [`UNTITLED`] when nothing names the track.
    pub title: String,
    /// One or more, main artists first, then guests; [`UNKNOWN_ARTIST`] when nothing
    /// names one.
    pub artists: Vec<String>,
    /// `None` when the source names no album: the track is its own single.
    pub album: Option<String>,
    pub year: Option<i32>,
}

pub const UNTITLED: &str = "Untitled";
pub const UNKNOWN_ARTIST: &str = "Unknown artist";

/// Words that only describe the upload, never the recording: a bracketed group or a
/// `-`/`|` segment made of nothing else is dropped ("(Official Music Video)", "[HD]").
/// "Live", "Remix", "Acoustic", "Remastered" name a version and stay.
const NOISE_WORDS: &[&str] = &[
    "official",
    "officiel",
    "officielle",
    "oficial",
    "ufficiale",
    "offizielles",
    "video",
    "videoclip",
    "vidéo",
    "clip",
    "audio",
    "music",
    "musicvideo",
    "lyric",
    "lyrics",
    "letra",
    "paroles",
    "hd",
    "hq",
    "uhd",
    "4k",
    "8k",
    "1080p",
    "720p",
    "visualizer",
    "visualiser",
    "mv",
    "m",
    "v",
    "explicit",
    "with",
    "only",
    "full",
    "version",
    "new",
    "musikvideo",
    "vevo",
    "youtube",
];

/// Words that introduce guests: "feat. X", "ft. X", "featuring X".
const FEATURING: &[&str] = &["feat.", "feat", "ft.", "ft", "featuring"];

/// Cleans what `fields` say into a title, artists and album.
pub fn clean(fields: &SourceFields) -> CleanMetadata {
    let channel = fields.channel.as_deref().map(channel_name);
    let site_artists = site_artists(fields);
    let album = fields.album.as_deref().map(tidy).filter(|a| !a.is_empty());
    let year = fields.release_year.filter(|y| (1..=9999).contains(y));
    let mut guests = Vec::new();

    // The site (or the file's tags) names the track: it is the title; only decorations
    // and guests come off.
    if let Some(track) = present(fields.track.as_deref()) {
        let title = clean_title(track, &mut guests);
        let mut artists = site_artists;
        if artists.is_empty() {
            if let Some(from_title) = present(fields.title.as_deref())
                .and_then(|t| split_artist_title(&strip_noise(t)))
                .map(|(artist, _)| artist)
            {
                artists = split_artists(&from_title, &mut guests);
            } else if let Some(channel) = channel.as_ref() {
                artists = vec![channel.name.clone()];
            }
        }
        return finish(title, artists, guests, album, year, fields);
    }

    let raw = present(fields.title.as_deref()).unwrap_or_default();
    let stripped = strip_noise(raw);
    let topic = channel.as_ref().is_some_and(|c| c.topic);
    // "Artist - Title", unless the channel is an artist's auto-generated "Topic" one,
    // whose titles are the track's own (a dash in them is part of the name).
    let split = if topic {
        None
    } else {
        split_artist_title(&stripped)
    };
    let (artists, title) = match split {
        Some((left, right)) => {
            let channel_is = |s: &str| channel.as_ref().is_some_and(|c| same(&c.name, s));
            let named = |s: &str| site_artists.iter().any(|a| same(a, s)) || channel_is(s);
            if !site_artists.is_empty() {
                // The site knows the artist: a title that repeats it loses it.
                let title = if named(&left) {
                    right
                } else if named(&right) {
                    left
                } else {
                    stripped.clone()
                };
                (site_artists, clean_title(&title, &mut guests))
            } else if channel_is(&right) && !channel_is(&left) {
                // "Title - Artist" on the artist's own channel.
                let artists = split_artists(&right, &mut guests);
                (artists, clean_title(&left, &mut guests))
            } else {
                let artists = split_artists(&left, &mut guests);
                (artists, clean_title(&right, &mut guests))
            }
        }
        None => {
            let artists = if !site_artists.is_empty() {
                site_artists
            } else {
                channel.map(|c| vec![c.name]).unwrap_or_default()
            };
            (artists, clean_title(&stripped, &mut guests))
        }
    };
    finish(title, artists, guests, album, year, fields)
}

fn finish(
    title: String,
    artists: Vec<String>,
    guests: Vec<String>,
    album: Option<String>,
    year: Option<i32>,
    fields: &SourceFields,
) -> CleanMetadata {
    let title = if title.is_empty() {
        // Everything was decoration ("Official Video"): the raw title beats nothing.
        present(fields.track.as_deref())
            .or(present(fields.title.as_deref()))
            .map(tidy)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| UNTITLED.to_owned())
    } else {
        title
    };
    let mut all: Vec<String> = Vec::new();
    for artist in artists.into_iter().chain(guests) {
        let artist = tidy(&artist);
        if !artist.is_empty() && !all.iter().any(|a| same(a, &artist)) {
            all.push(artist);
        }
    }
    if all.is_empty() {
        all.push(UNKNOWN_ARTIST.to_owned());
    }
    CleanMetadata {
        title,
        artists: all,
        album,
        year,
    }
}

/// The artists the site names: its list, else its one string split at "feat.".
fn site_artists(fields: &SourceFields) -> Vec<String> {
    let listed: Vec<String> = fields
        .artists
        .iter()
        .map(|a| tidy(a))
        .filter(|a| !a.is_empty())
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    match present(fields.artist.as_deref()) {
        Some(artist) => {
            let mut guests = Vec::new();
            let mut artists = split_artists(artist, &mut guests);
            artists.extend(guests);
            artists
        }
        None => Vec::new(),
    }
}

struct Channel {
    /// The artist the channel's name gives.
    name: String,
    /// "Artist - Topic": YouTube's auto-generated channel of an artist's tracks.
    topic: bool,
}

/// "Artist - Topic" → Artist; "ArtistVEVO" → Artist; "Artist Official" → Artist.
fn channel_name(raw: &str) -> Channel {
    let name = tidy(raw);
    if let Some(artist) = strip_suffix_ignore_case(&name, " - topic") {
        let artist = tidy(artist);
        if !artist.is_empty() {
            return Channel {
                name: artist,
                topic: true,
            };
        }
    }
    let mut artist = name.as_str();
    for suffix in ["vevo", " official channel", " official"] {
        if let Some(rest) = strip_suffix_ignore_case(artist, suffix) {
            if !rest.trim().is_empty() {
                artist = rest.trim_end();
            }
        }
    }
    Channel {
        name: artist.to_owned(),
        topic: false,
    }
}

/// Splits "Artist - Title" at its first dash separator (" - ", " – ", " — ", " ~ "),
/// dropping segments that are all decoration ("Artist - Title - Official Video").
fn split_artist_title(title: &str) -> Option<(String, String)> {
    let mut parts: Vec<&str> = Vec::new();
    let mut rest = title;
    while let Some((at, len)) = dash_separator(rest) {
        parts.push(&rest[..at]);
        rest = &rest[at + len..];
    }
    parts.push(rest);
    let parts: Vec<&str> = parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty() && !is_noise(p))
        .collect();
    match parts.as_slice() {
        [artist, title @ ..] if !title.is_empty() => {
            Some(((*artist).to_owned(), title.join(" - ")))
        }
        _ => None,
    }
}

fn dash_separator(s: &str) -> Option<(usize, usize)> {
    [" - ", " – ", " — ", " ― ", " -- ", " ~ "]
        .iter()
        .filter_map(|sep| s.find(sep).map(|at| (at, sep.len())))
        .min()
}

/// The title without decorations and "|" segments of them, spaces tidied.
fn strip_noise(title: &str) -> String {
    let without_groups = remove_groups(title, is_noise);
    let segments: Vec<&str> = without_groups
        .split(" | ")
        .flat_map(|s| s.split(" // "))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !is_noise(s))
        .collect();
    let joined = segments.join(" | ");
    // A decoration written without brackets at the end: "Title Official Video".
    let mut words: Vec<&str> = joined.split_whitespace().collect();
    let trailing = words.iter().rev().take_while(|w| is_noise(w)).count();
    let kept = words.len() - trailing;
    // Only when it says so plainly ("Official Video", "M/V") and something is left: a
    // title may end in "Music" or "Video" ("Home Video").
    let plain = match &words[kept..] {
        [one] => ["m/v", "mv"].contains(&one.to_lowercase().as_str()),
        run => run.len() >= 2 && run.iter().any(|w| is_strong_noise(w)),
    };
    if kept > 0 && plain {
        words.truncate(kept);
    }
    tidy(&words.join(" "))
}

/// A title with decorations, guests and quotes taken off; guests go to `guests`.
fn clean_title(title: &str, guests: &mut Vec<String>) -> String {
    let mut found = Vec::new();
    let without = remove_groups(title, |inside| {
        if is_noise(inside) {
            return true;
        }
        if let Some(names) = after_featuring(inside).or_else(|| after_with(inside)) {
            found.push(names.to_owned());
            return true;
        }
        false
    });
    let mut title = tidy(&without);
    // "Title feat. Guest" without brackets.
    if let Some((at, names)) = featuring_at(&title) {
        found.push(names.to_owned());
        title = tidy(&title[..at]);
    }
    for names in found {
        guests.extend(split_guest_list(&names));
    }
    let title = strip_noise(&title);
    unquote(trim_separators(&title)).to_owned()
}

/// The main artists of an artist part ("A feat. B", "A x B"), guests to `guests`.
fn split_artists(part: &str, guests: &mut Vec<String>) -> Vec<String> {
    let mut found = Vec::new();
    let without = remove_groups(part, |inside| {
        if let Some(names) = after_featuring(inside) {
            found.push(names.to_owned());
            return true;
        }
        is_noise(inside)
    });
    let mut main = tidy(&without);
    if let Some((at, names)) = featuring_at(&main) {
        found.push(names.to_owned());
        main = tidy(&main[..at]);
    }
    for names in found {
        guests.extend(split_guest_list(&names));
    }
    // " x " joins a collaboration ("Artist x Artist"); "&" and "," may be one name
    // ("Simon & Garfunkel", "Earth, Wind & Fire"), so the main part keeps them.
    main.split(" x ")
        .flat_map(|s| s.split(" X "))
        .map(|s| unquote(trim_separators(s.trim())).to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// "A, B & C" and "A and B" after "feat.": a guest list names people one by one.
fn split_guest_list(names: &str) -> Vec<String> {
    names
        .split(", ")
        .flat_map(|s| s.split(" & "))
        .flat_map(|s| s.split(" and "))
        .flat_map(|s| s.split(" x "))
        .map(|s| unquote(trim_separators(s.trim())).to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The names after a leading "feat."/"ft."/"featuring" in a group's text.
fn after_featuring(inside: &str) -> Option<&str> {
    let inside = inside.trim();
    let (word, rest) = inside.split_once(char::is_whitespace)?;
    let lower = word.to_lowercase();
    FEATURING
        .contains(&lower.as_str())
        .then(|| rest.trim())
        .filter(|r| !r.is_empty())
}

/// "(with Guest)", as streaming services write guests.
fn after_with(inside: &str) -> Option<&str> {
    let inside = inside.trim();
    let (word, rest) = inside.split_once(char::is_whitespace)?;
    (word.eq_ignore_ascii_case("with") && !is_noise(rest))
        .then(|| rest.trim())
        .filter(|r| !r.is_empty())
}

/// Where an unbracketed " feat. Guest" starts, and the guests.
fn featuring_at(text: &str) -> Option<(usize, &str)> {
    let mut at = 0;
    for word in text.split(' ') {
        let lower = word.to_lowercase();
        if at > 0 && FEATURING.contains(&lower.as_str()) {
            let names = text[at + word.len()..].trim();
            if !names.is_empty() {
                return Some((at, names));
            }
        }
        at += word.len() + 1;
    }
    None
}

/// The text with every top-level bracketed group for which `drop` says so removed.
fn remove_groups(text: &str, mut drop: impl FnMut(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find(['(', '[', '【']) {
        let opener = rest[open..].chars().next().unwrap_or('(');
        let closer = match opener {
            '(' => ')',
            '[' => ']',
            _ => '】',
        };
        let after_open = open + opener.len_utf8();
        let Some(close) = matching(&rest[after_open..], opener, closer) else {
            break;
        };
        let inside = &rest[after_open..after_open + close];
        out.push_str(&rest[..open]);
        if !drop(inside) {
            out.push_str(&rest[open..after_open + close + closer.len_utf8()]);
        } else {
            out.push(' ');
        }
        rest = &rest[after_open + close + closer.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of the `closer` that closes a group already opened.
fn matching(text: &str, opener: char, closer: char) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        if c == opener {
            depth += 1;
        } else if c == closer {
            if depth == 0 {
                return Some(at);
            }
            depth -= 1;
        }
    }
    None
}

/// Every word of `text` is a decoration word.
fn is_noise(text: &str) -> bool {
    let mut words = text
        .split(|c: char| c.is_whitespace() || matches!(c, '/' | '-' | '|' | ',' | '.' | ':' | '+'))
        .filter(|w| !w.is_empty())
        .peekable();
    words.peek().is_some()
        && words.all(|w| {
            let w = w.to_lowercase();
            NOISE_WORDS.contains(&w.as_str())
        })
}

fn is_strong_noise(word: &str) -> bool {
    let word = word.to_lowercase();
    [
        "official",
        "lyrics",
        "lyric",
        "video",
        "audio",
        "visualizer",
    ]
    .contains(&word.as_str())
}

fn trim_separators(s: &str) -> &str {
    s.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '-' | '–' | '—' | '|' | ':' | '~' | ',')
    })
}

fn unquote(s: &str) -> &str {
    for (open, close) in [('"', '"'), ('“', '”'), ('\'', '\''), ('‘', '’'), ('«', '»')] {
        if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
            if !inner.trim().is_empty() {
                return inner.trim();
            }
        }
    }
    s
}

/// Whitespace collapsed to single spaces, control characters gone, trimmed.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn present(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.trim().is_empty())
}

fn same(a: &str, b: &str) -> bool {
    tidy(a).to_lowercase() == tidy(b).to_lowercase()
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    (s.is_char_boundary(at) && s[at..].eq_ignore_ascii_case(suffix)).then(|| &s[..at])
}

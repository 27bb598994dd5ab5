//! M3U8 playlists (issue 19): reading a file's entries for an import, writing a playlist
//! out. Pure text work; matching entries to a library is the read side's.

/// The largest file an import reads (1 MiB): a 10,000-entry list fits.
pub const MAX_BYTES: usize = 1 << 20;

/// One entry of a file: where it points and what `#EXTINF` said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct M3uEntry {
    pub location: String,
    pub artist: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum M3uError {
    #[error("the file is larger than 1 MiB")]
    TooLarge,
    #[error("the file is not UTF-8 text (an M3U8 playlist is)")]
    NotText,
    #[error("the file lists more than {0} entries")]
    TooManyEntries(usize),
}

/// The entries of an M3U or M3U8 file, in order (comments and blank lines skipped; a BOM
/// and Windows line ends accepted).
pub fn parse(bytes: &[u8], max_entries: usize) -> Result<Vec<M3uEntry>, M3uError> {
    if bytes.len() > MAX_BYTES {
        return Err(M3uError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| M3uError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\0') {
        return Err(M3uError::NotText);
    }
    let mut entries = Vec::new();
    let mut info: Option<(Option<String>, Option<String>)> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            // `#EXTINF:<seconds>[ attributes],<artist> - <title>`
            let name = rest.split_once(',').map_or("", |(_, name)| name.trim());
            info = Some(match name.split_once(" - ") {
                Some((artist, title)) => (Some(artist.trim().into()), Some(title.trim().into())),
                None if name.is_empty() => (None, None),
                None => (None, Some(name.into())),
            });
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if entries.len() == max_entries {
            return Err(M3uError::TooManyEntries(max_entries));
        }
        let (artist, title) = info.take().unwrap_or((None, None));
        entries.push(M3uEntry {
            location: line.to_owned(),
            artist,
            title,
        });
    }
    Ok(entries)
}

/// One entry to write: its location, length and names.
pub struct Line<'a> {
    pub location: &'a str,
    pub duration_ms: i64,
    pub artist: &'a str,
    pub title: &'a str,
}

/// An extended M3U8 file of these entries.
pub fn write<'a>(name: &str, lines: impl IntoIterator<Item = Line<'a>>) -> String {
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut out = format!("#EXTM3U\n#PLAYLIST:{}\n", clean(name));
    for line in lines {
        let seconds = line.duration_ms.div_euclid(1000);
        out.push_str(&format!(
            "#EXTINF:{seconds},{} - {}\n{}\n",
            clean(line.artist),
            clean(line.title),
            clean(line.location)
        ));
    }
    out
}

/// The YouTube video id of a watch, short or music link.
pub fn youtube_video_id(location: &str) -> Option<&str> {
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))?;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let id = if let Some(query) = rest
        .strip_prefix("youtube.com/watch?")
        .or_else(|| rest.strip_prefix("music.youtube.com/watch?"))
        .or_else(|| rest.strip_prefix("m.youtube.com/watch?"))
    {
        query.split('&').find_map(|p| p.strip_prefix("v="))?
    } else {
        let tail = rest.strip_prefix("youtu.be/")?;
        tail.split(['?', '#']).next()?
    };
    (id.len() == 11
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_read_with_their_extinf() {
        let file = "\u{feff}#EXTM3U\r\n#EXTINF:215,Adele - Hello\r\nhttps://youtu.be/YQHsXMglC9A\r\n\r\n# note\nsong.mp3\n#EXTINF:-1,Only a title\nx\n";
        let entries = parse(file.as_bytes(), 10).unwrap();
        assert_eq!(
            entries,
            vec![
                M3uEntry {
                    location: "https://youtu.be/YQHsXMglC9A".into(),
                    artist: Some("Adele".into()),
                    title: Some("Hello".into()),
                },
                M3uEntry {
                    location: "song.mp3".into(),
                    artist: None,
                    title: None,
                },
                M3uEntry {
                    location: "x".into(),
                    artist: None,
                    title: Some("Only a title".into()),
                },
            ]
        );
    }

    #[test]
    fn binary_huge_and_long_files_are_refused() {
        assert_eq!(parse(&[0xff, 0xfe, 0x00], 10), Err(M3uError::NotText));
        assert_eq!(parse(b"a\0b", 10), Err(M3uError::NotText));
        assert_eq!(
            parse(&vec![b'a'; MAX_BYTES + 1], 10),
            Err(M3uError::TooLarge)
        );
        assert_eq!(parse(b"a\nb\nc\n", 2), Err(M3uError::TooManyEntries(2)));
    }

    #[test]
    fn a_written_file_reads_back() {
        let text = write(
            "Mix",
            [Line {
                location: "https://www.youtube.com/watch?v=YQHsXMglC9A",
                duration_ms: 215_500,
                artist: "Adele",
                title: "Hello\nthere",
            }],
        );
        assert_eq!(
            text,
            "#EXTM3U\n#PLAYLIST:Mix\n#EXTINF:215,Adele - Hello there\nhttps://www.youtube.com/watch?v=YQHsXMglC9A\n"
        );
        let back = parse(text.as_bytes(), 10).unwrap();
        assert_eq!(youtube_video_id(&back[0].location), Some("YQHsXMglC9A"));
        assert_eq!(back[0].title.as_deref(), Some("Hello there"));
        assert_eq!(
            youtube_video_id("https://example.com/watch?v=YQHsXMglC9A"),
            None
        );
    }
}

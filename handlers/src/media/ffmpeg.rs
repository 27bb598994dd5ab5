//! ffprobe (what is in a file, and is it audio at all) and ffmpeg (transcode to AAC
//! 256 kbps in MP4 with `+faststart`).
//!
//! Inputs are our own files in a job folder, passed as `file:<absolute path>` so that no
//! name is ever read as an option or a protocol. ffmpeg has no `--`; the `file:` prefix is
//! its equivalent. Every input is opened with `-protocol_whitelist file` and a
//! `-format_whitelist` of audio containers, so a hostile "audio" file that is really an
//! HLS or concat playlist cannot make ffmpeg read other files or fetch URLs.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::process::{self, Stdout};
use super::{MediaError, Progress, Stage};

/// Demuxers allowed for audio inputs. (`mov` covers mp4/m4a, `matroska` covers webm.)
const AUDIO_FORMATS: &str = "mp3,mov,matroska,ogg,flac,wav,aac,asf,aiff,caf,w64,wv,ape";
/// Demuxers allowed for a cover image.
const IMAGE_FORMATS: &str = "image2,jpeg_pipe,png_pipe,webp_pipe,mjpeg";

/// The target of every transcode.
pub const AAC_BITRATE: u32 = 256_000;

fn file_arg(path: &Path) -> Result<OsString, MediaError> {
    let absolute = std::path::absolute(path).map_err(|e| MediaError::Tool {
        tool: "ffmpeg",
        reason: format!("resolving {}: {e}", path.display()),
    })?;
    let mut arg = OsString::from("file:");
    arg.push(absolute.as_os_str());
    Ok(arg)
}

fn input_args(path: &Path, formats: &str) -> Result<Vec<OsString>, MediaError> {
    Ok(vec![
        "-protocol_whitelist".into(),
        "file".into(),
        "-format_whitelist".into(),
        formats.into(),
        "-i".into(),
        file_arg(path)?,
    ])
}

/// What ffprobe found in a file that is usable audio.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaInfo {
    /// Container, as ffprobe names it (`mp3`, `mov,mp4,m4a,3gp,3g2,mj2`, ...).
    pub format: String,
    pub duration: Duration,
    /// Overall bit rate in bits/s, when known.
    pub bit_rate: Option<u64>,
    pub audio: AudioStream,
    /// The stream index of an embedded cover picture, if there is one.
    pub cover_stream: Option<CoverStream>,
    /// Tags, from the container and the audio stream (stream tags win), keys lower-cased.
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AudioStream {
    pub index: u32,
    pub codec: String,
    pub bit_rate: Option<u64>,
    pub sample_rate: Option<u32>,
    pub channels: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CoverStream {
    pub index: u32,
    pub codec: String,
}

impl MediaInfo {
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.tags
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

#[derive(Deserialize)]
struct ProbeJson {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    index: u32,
    codec_type: Option<String>,
    codec_name: Option<String>,
    bit_rate: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: BTreeMap<String, i64>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    format_name: Option<String>,
    duration: Option<String>,
    bit_rate: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn corrupt(reason: impl Into<String>) -> MediaError {
    MediaError::CorruptMedia {
        reason: reason.into(),
    }
}

/// Runs ffprobe on `path` and accepts it only if it holds a decodable audio stream with a
/// positive duration. Anything else is [`MediaError::CorruptMedia`] with the reason.
pub async fn probe(
    ffprobe: &Path,
    path: &Path,
    timeout: Duration,
) -> Result<MediaInfo, MediaError> {
    let mut args: Vec<OsString> = vec![
        "-v".into(),
        "error".into(),
        "-hide_banner".into(),
        "-print_format".into(),
        "json".into(),
        "-show_format".into(),
        "-show_streams".into(),
        "-protocol_whitelist".into(),
        "file".into(),
        "-format_whitelist".into(),
        AUDIO_FORMATS.into(),
    ];
    args.push(file_arg(path)?);
    let done = process::run(
        "ffprobe",
        "probe",
        ffprobe,
        args,
        timeout,
        Stdout::Collect(8 << 20),
    )
    .await?;
    if !done.status.success() {
        let why = if done.stderr.contains("not on whitelist") {
            "it is not in an accepted audio format"
        } else {
            "it could not be read as audio (mp3, m4a, webm, ogg, flac, wav, ...)"
        };
        tracing::debug!(stderr = %done.stderr, "ffprobe refused a file");
        return Err(corrupt(why));
    }
    let parsed: ProbeJson = serde_json::from_slice(&done.stdout).map_err(|e| MediaError::Tool {
        tool: "ffprobe",
        reason: format!("unreadable ffprobe output: {e}"),
    })?;
    media_info(parsed)
}

fn media_info(probe: ProbeJson) -> Result<MediaInfo, MediaError> {
    let format = probe
        .format
        .ok_or_else(|| corrupt("not a readable audio file (no container found)"))?;
    let is_pic = |s: &ProbeStream| s.disposition.get("attached_pic").copied() == Some(1);
    let audio = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("audio"))
        .ok_or_else(|| corrupt("the file has no audio in it"))?;
    let codec = audio
        .codec_name
        .clone()
        .ok_or_else(|| corrupt("the audio is in a format that cannot be decoded"))?;
    let channels = audio.channels.unwrap_or(0);
    let sample_rate = audio.sample_rate.as_deref().and_then(|s| s.parse().ok());
    if channels == 0 || sample_rate.unwrap_or(0) == 0 {
        return Err(corrupt(
            "the audio stream is damaged (no channels or sample rate)",
        ));
    }
    let seconds = format
        .duration
        .as_deref()
        .or(audio.duration.as_deref())
        .and_then(|d| d.parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0)
        .ok_or_else(|| corrupt("the audio is damaged or empty (its length cannot be read)"))?;
    let cover_stream = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && is_pic(s))
        .and_then(|s| {
            Some(CoverStream {
                index: s.index,
                codec: s.codec_name.clone()?,
            })
        });
    let lower = |tags: &BTreeMap<String, String>| {
        tags.iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect::<Vec<_>>()
    };
    let mut tags: BTreeMap<String, String> = lower(&format.tags).into_iter().collect();
    tags.extend(lower(&audio.tags));
    Ok(MediaInfo {
        format: format.format_name.unwrap_or_default(),
        duration: Duration::from_secs_f64(seconds),
        bit_rate: format.bit_rate.as_deref().and_then(|b| b.parse().ok()),
        audio: AudioStream {
            index: audio.index,
            codec,
            bit_rate: audio.bit_rate.as_deref().and_then(|b| b.parse().ok()),
            sample_rate,
            channels,
        },
        cover_stream,
        tags,
    })
}

fn last_line(stderr: &str) -> Option<&str> {
    stderr.lines().map(str::trim).rfind(|l| !l.is_empty())
}

/// What to write into the output's tags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackTags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
}

/// A cover for the output: a stream of the input, or a separate image file.
#[derive(Clone, Debug)]
pub enum Cover<'a> {
    Embedded(&'a CoverStream),
    File(&'a Path),
}

/// Transcodes `input` (already probed as `info`) to AAC 256 kbps in an MP4 (`.m4a`) at
/// `output`, with the moov atom up front (`+faststart`, so playback and seeking start
/// before the whole file is fetched), `tags` written, and the cover attached when given.
/// Other metadata of the input is dropped. Progress goes to `progress` as a percentage of
/// the input's duration.
#[allow(clippy::too_many_arguments)]
pub async fn transcode(
    ffmpeg: &Path,
    input: &Path,
    info: &MediaInfo,
    output: &Path,
    tags: &TrackTags,
    cover: Option<Cover<'_>>,
    timeout: Duration,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<(), MediaError> {
    let mut args: Vec<OsString> = vec![
        "-nostdin".into(),
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-nostats".into(),
        "-progress".into(),
        "pipe:1".into(),
        "-y".into(),
    ];
    args.extend(input_args(input, AUDIO_FORMATS)?);
    if let Some(Cover::File(image)) = cover {
        args.extend(input_args(image, IMAGE_FORMATS)?);
    }
    args.extend(["-map".into(), format!("0:{}", info.audio.index).into()]);
    let cover_codec = match cover {
        Some(Cover::Embedded(stream)) => {
            args.extend(["-map".into(), format!("0:{}", stream.index).into()]);
            Some(stream.codec.as_str())
        }
        Some(Cover::File(_)) => {
            args.extend(["-map".into(), "1:v:0".into()]);
            None
        }
        None => None,
    };
    args.extend([
        "-c:a".into(),
        "aac".into(),
        "-b:a".into(),
        AAC_BITRATE.to_string().into(),
    ]);
    if info.audio.channels > 2 {
        args.extend(["-ac".into(), "2".into()]);
    }
    if cover.is_some() {
        // MP4 cover art is JPEG or PNG: keep those as they are, re-encode anything else.
        let codec = match cover_codec {
            Some("mjpeg" | "png") => "copy",
            _ => "mjpeg",
        };
        args.extend([
            "-c:v".into(),
            codec.into(),
            "-disposition:v:0".into(),
            "attached_pic".into(),
        ]);
    }
    args.extend(["-map_metadata".into(), "-1".into()]);
    for (name, value) in [
        ("title", &tags.title),
        ("artist", &tags.artist),
        ("album", &tags.album),
    ] {
        if let Some(value) = value {
            // One argument `name=value`: it starts with the name, never with `-`.
            args.extend(["-metadata".into(), format!("{name}={value}").into()]);
        }
    }
    args.extend([
        "-movflags".into(),
        "+faststart".into(),
        "-f".into(),
        "mp4".into(),
        file_arg(output)?,
    ]);

    let total_us = info.duration.as_micros().max(1) as f64;
    let mut last = None;
    let mut on_line = |line: &str| {
        if let Some(us) = line.strip_prefix("out_time_us=") {
            if let Ok(us) = us.trim().parse::<i64>() {
                let percent = ((us.max(0) as f64 / total_us) * 100.0).clamp(0.0, 100.0) as u8;
                if last != Some(percent) {
                    last = Some(percent);
                    progress(Progress {
                        stage: Stage::Transcoding,
                        percent,
                    });
                }
            }
        } else if line == "progress=end" && last != Some(100) {
            last = Some(100);
            progress(Progress {
                stage: Stage::Transcoding,
                percent: 100,
            });
        }
        Ok(())
    };
    let done = process::run(
        "ffmpeg",
        "transcode",
        ffmpeg,
        args,
        timeout,
        Stdout::Lines(&mut on_line),
    )
    .await?;
    if !done.status.success() {
        let why = last_line(&done.stderr).unwrap_or("no message");
        if done.stderr.contains("No space left on device") {
            return Err(MediaError::Tool {
                tool: "ffmpeg",
                reason: why.to_owned(),
            });
        }
        // Otherwise ffmpeg failed on the input's data: our arguments are fixed.
        return Err(corrupt(format!("the audio could not be converted ({why})")));
    }
    Ok(())
}

/// Largest side of a stored cover, in pixels: plenty for a list row, a player bar and a
/// lock screen, and a few tens of kilobytes instead of a full-size picture.
pub const COVER_MAX_SIDE: u32 = 512;

/// Writes the cover picture of `input` (stream `cover`, e.g. of a transcoded `.m4a`) to
/// `output` as a JPEG no larger than [`COVER_MAX_SIDE`] on either side, aspect kept.
pub async fn extract_cover(
    ffmpeg: &Path,
    input: &Path,
    cover: &CoverStream,
    output: &Path,
    timeout: Duration,
) -> Result<(), MediaError> {
    let side = COVER_MAX_SIDE;
    let mut args: Vec<OsString> = vec![
        "-nostdin".into(),
        "-hide_banner".into(),
        "-loglevel".into(),
        "error".into(),
        "-y".into(),
    ];
    args.extend(input_args(input, AUDIO_FORMATS)?);
    args.extend([
        "-map".into(),
        format!("0:{}", cover.index).into(),
        "-frames:v".into(),
        "1".into(),
        "-vf".into(),
        format!("scale=w='min({side},iw)':h='min({side},ih)':force_original_aspect_ratio=decrease")
            .into(),
        "-c:v".into(),
        "mjpeg".into(),
        "-q:v".into(),
        "3".into(),
        "-map_metadata".into(),
        "-1".into(),
        "-f".into(),
        "mjpeg".into(),
        file_arg(output)?,
    ]);
    let done = process::run(
        "ffmpeg",
        "cover",
        ffmpeg,
        args,
        timeout,
        Stdout::Collect(1 << 16),
    )
    .await?;
    if !done.status.success() {
        let why = last_line(&done.stderr).unwrap_or("no message");
        return Err(corrupt(format!(
            "the cover picture could not be read ({why})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<MediaInfo, MediaError> {
        media_info(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn audio_with_tags_and_cover_is_read() {
        let info = parse(
            r#"{"streams":[
                {"index":0,"codec_type":"audio","codec_name":"opus","sample_rate":"48000","channels":2,
                 "disposition":{"attached_pic":0},"tags":{"TITLE":"Song","ARTIST":"Band"}},
                {"index":1,"codec_type":"video","codec_name":"png","disposition":{"attached_pic":1}}],
              "format":{"format_name":"ogg","duration":"6.5","bit_rate":"96000","tags":{"title":"Container","album":"LP"}}}"#,
        )
        .unwrap();
        assert_eq!(info.duration, Duration::from_millis(6500));
        assert_eq!(info.audio.codec, "opus");
        assert_eq!(info.tag("title"), Some("Song"));
        assert_eq!(info.tag("artist"), Some("Band"));
        assert_eq!(info.tag("album"), Some("LP"));
        assert_eq!(info.cover_stream.unwrap().index, 1);
    }

    #[test]
    fn files_without_usable_audio_are_corrupt() {
        for (json, why) in [
            (
                r#"{"streams":[],"format":{"format_name":"mp3"}}"#,
                "no audio",
            ),
            (
                r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"mp3","sample_rate":"44100","channels":2}],"format":{"format_name":"mp3"}}"#,
                "length cannot be read",
            ),
            (
                r#"{"streams":[{"index":0,"codec_type":"audio","codec_name":"mp3","sample_rate":"0","channels":0}],"format":{"duration":"3.0"}}"#,
                "damaged",
            ),
            (
                r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264"}],"format":{"duration":"3.0"}}"#,
                "no audio",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.is_permanent(), "{err:?}");
            assert!(err.to_string().contains(why), "{err}");
        }
    }
}

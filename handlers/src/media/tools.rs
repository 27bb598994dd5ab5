//! Where yt-dlp, ffmpeg and ffprobe are found.

use std::path::{Path, PathBuf};

use super::MediaError;

/// Where yt-dlp, ffmpeg and ffprobe are.
#[derive(Clone, Debug)]
pub struct Tools {
    pub yt_dlp: PathBuf,
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Tools {
    /// Finds each tool: the folder of scripts/install-deps.sh first
    /// (`$JUKEBOX_TOOLS_DIR/bin`, default `~/.local/share/jukebox/tools/bin`, where a
    /// current yt-dlp lives), then `PATH`.
    pub fn discover() -> Result<Self, MediaError> {
        let find = |name: &'static str| {
            find_tool(name).ok_or_else(|| MediaError::Tool {
                tool: name,
                reason: format!(
                    "{name} was not found in the tools folder or on PATH; run scripts/install-deps.sh"
                ),
            })
        };
        Ok(Self {
            yt_dlp: find("yt-dlp")?,
            ffmpeg: find("ffmpeg")?,
            ffprobe: find("ffprobe")?,
        })
    }
}

/// `$JUKEBOX_TOOLS_DIR/bin/<name>` (default `~/.local/share/jukebox/tools/bin/<name>`),
/// else the first `<name>` on `PATH`.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let tools = std::env::var_os("JUKEBOX_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share/jukebox/tools"))
        });
    tools
        .map(|dir| dir.join("bin").join(name))
        .filter(|p| p.is_file())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
}

//! Running yt-dlp, ffmpeg and ffprobe: an argument array (never a shell), stdin closed,
//! stdout read line by line or collected, the tail of stderr kept for error messages, a
//! deadline, and the child killed when the future is dropped.

use std::ffi::OsString;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::MediaError;

/// How much of stderr is kept for error messages.
const STDERR_TAIL: usize = 16 * 1024;

pub(crate) struct Finished {
    pub status: ExitStatus,
    /// Everything on stdout, when it was collected (else empty).
    pub stdout: Vec<u8>,
    /// The last few KiB of stderr, lossily decoded.
    pub stderr: String,
}

pub(crate) enum Stdout<'a> {
    /// Keep stdout, refusing more than this many bytes.
    Collect(usize),
    /// Hand each line to the callback; an error from it kills the process and is returned.
    Lines(&'a mut (dyn FnMut(&str) -> Result<(), MediaError> + Send)),
}

/// Runs `program args...` and waits for it, at most `timeout`. `tool` and `stage` name it
/// in errors ("yt-dlp", "download").
pub(crate) async fn run(
    tool: &'static str,
    stage: &'static str,
    program: &Path,
    args: Vec<OsString>,
    timeout: Duration,
    stdout: Stdout<'_>,
) -> Result<Finished, MediaError> {
    let mut command = Command::new(program);
    command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // yt-dlp is Python: unbuffered, so progress lines arrive as they are written.
        .env("PYTHONUNBUFFERED", "1")
        .kill_on_drop(true);
    tracing::debug!(tool, ?args, "running");
    let mut child = command.spawn().map_err(|e| MediaError::Tool {
        tool,
        reason: format!("could not start {}: {e}", program.display()),
    })?;
    let child_stdout = child.stdout.take().expect("stdout is piped");
    let child_stderr = child.stderr.take().expect("stderr is piped");

    let stderr_task = tokio::spawn(read_tail(child_stderr));
    let work = async {
        let out = match read_stdout(tool, child_stdout, stdout).await {
            Ok(out) => out,
            Err(e) => {
                // The caller gave up on this run (a limit was crossed): stop the process
                // now rather than when it ends by itself.
                let _ = child.start_kill();
                return Err(e);
            }
        };
        let status = child.wait().await.map_err(|e| MediaError::Tool {
            tool,
            reason: format!("waiting for {tool}: {e}"),
        })?;
        Ok((out, status))
    };
    // On a timeout or an error, `child` is dropped on return and kill_on_drop kills it.
    let (stdout, status) = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            stderr_task.abort();
            return Err(e);
        }
        Err(_) => {
            stderr_task.abort();
            return Err(MediaError::Timeout {
                stage,
                after: timeout,
            });
        }
    };
    let stderr = stderr_task.await.unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

async fn read_stdout(
    tool: &'static str,
    stdout: impl AsyncRead + Unpin,
    mode: Stdout<'_>,
) -> Result<Vec<u8>, MediaError> {
    let mut reader = BufReader::new(stdout);
    match mode {
        Stdout::Collect(max) => {
            let mut out = Vec::new();
            let n = (&mut reader)
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .await
                .map_err(|e| MediaError::Tool {
                    tool,
                    reason: format!("reading output: {e}"),
                })?;
            if n > max {
                return Err(MediaError::Tool {
                    tool,
                    reason: format!("more than {max} bytes of output"),
                });
            }
            Ok(out)
        }
        Stdout::Lines(on_line) => {
            let mut line = Vec::new();
            loop {
                line.clear();
                let n =
                    reader
                        .read_until(b'\n', &mut line)
                        .await
                        .map_err(|e| MediaError::Tool {
                            tool,
                            reason: format!("reading output: {e}"),
                        })?;
                if n == 0 {
                    return Ok(Vec::new());
                }
                // Progress lines end in \n; some tools redraw with \r.
                for part in String::from_utf8_lossy(&line).split(['\r', '\n']) {
                    if !part.is_empty() {
                        on_line(part)?;
                    }
                }
            }
        }
    }
}

async fn read_tail(stderr: impl AsyncRead + Unpin) -> String {
    let mut reader = BufReader::new(stderr);
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
        }
    }
    if tail.len() > STDERR_TAIL {
        tail.drain(..tail.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&tail).into_owned()
}

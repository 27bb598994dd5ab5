//! Every way an import can fail, as a sentence a person can read, and whether trying
//! again could help.

use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    // Permanent: the request or the source is the problem.
    #[error("this link cannot be imported: {reason}")]
    UnsupportedUrl { reason: String },
    #[error(
        "this link points to {kind} ({}), which is not allowed",
        host_is(host, addr)
    )]
    PrivateAddress {
        host: String,
        addr: IpAddr,
        kind: &'static str,
    },
    #[error("the source is not available: {reason}")]
    Unavailable { reason: String },
    #[error("the track is too long: {} (the limit is {})", hms(*duration), hms(*max))]
    TooLong { duration: Duration, max: Duration },
    #[error("the file is too big{} (the limit is {})", size.map(|s| format!(": {}", mib(s))).unwrap_or_default(), mib(*max))]
    TooBig { size: Option<u64>, max: u64 },
    #[error("the file is not usable audio: {reason}")]
    CorruptMedia { reason: String },
    // Transient: worth another try later.
    #[error("network problem while fetching the source: {reason}")]
    Network { reason: String },
    #[error("the {stage} step took longer than {}s and was stopped", after.as_secs())]
    Timeout {
        stage: &'static str,
        after: Duration,
    },
    #[error("{tool} failed: {reason}")]
    Tool { tool: &'static str, reason: String },
}

fn host_is(host: &str, addr: &IpAddr) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare == addr.to_string() {
        bare.to_owned()
    } else {
        format!("{host} is {addr}")
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn mib(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

impl MediaError {
    /// Retrying cannot help: fail the job now with this message.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::UnsupportedUrl { .. }
                | Self::PrivateAddress { .. }
                | Self::Unavailable { .. }
                | Self::TooLong { .. }
                | Self::TooBig { .. }
                | Self::CorruptMedia { .. }
        )
    }

    /// A stable machine-readable name (for API error codes and metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedUrl { .. } => "unsupported_url",
            Self::PrivateAddress { .. } => "private_address",
            Self::Unavailable { .. } => "unavailable",
            Self::TooLong { .. } => "too_long",
            Self::TooBig { .. } => "too_big",
            Self::CorruptMedia { .. } => "corrupt_media",
            Self::Network { .. } => "network",
            Self::Timeout { .. } => "timeout",
            Self::Tool { .. } => "tool_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        let too_long = MediaError::TooLong {
            duration: Duration::from_secs(3725),
            max: Duration::from_secs(3600),
        };
        assert_eq!(
            too_long.to_string(),
            "the track is too long: 1:02:05 (the limit is 1:00:00)"
        );
        let too_big = MediaError::TooBig {
            size: Some(3 << 20),
            max: 1 << 20,
        };
        assert_eq!(
            too_big.to_string(),
            "the file is too big: 3.0 MiB (the limit is 1.0 MiB)"
        );
        let private = MediaError::PrivateAddress {
            host: "intranet.example".into(),
            addr: "10.0.0.5".parse().unwrap(),
            kind: "a private network address",
        };
        assert_eq!(
            private.to_string(),
            "this link points to a private network address (intranet.example is 10.0.0.5), which is not allowed"
        );
        let literal = MediaError::PrivateAddress {
            host: "[::1]".into(),
            addr: "::1".parse().unwrap(),
            kind: "a loopback address",
        };
        assert_eq!(
            literal.to_string(),
            "this link points to a loopback address (::1), which is not allowed"
        );
        let unknown_size = MediaError::TooBig {
            size: None,
            max: 20 * 1024,
        };
        assert_eq!(
            unknown_size.to_string(),
            "the file is too big (the limit is 20 KiB)"
        );
        assert!(too_long.is_permanent() && too_big.is_permanent() && private.is_permanent());
        let timeout = MediaError::Timeout {
            stage: "download",
            after: Duration::from_secs(1800),
        };
        assert!(!timeout.is_permanent());
        assert_eq!(timeout.code(), "timeout");
    }
}

//! Stream, subject and consumer names. A namespace prefix isolates environments and test
//! runs on one NATS server: `<ns>_EVENTS`, `<ns>.evt.>`.

/// Header carrying the subject the processor answers on, after the events are committed.
pub const REPLY_TO_HEADER: &str = "Jukebox-Reply-To";
pub const CORRELATION_ID_HEADER: &str = "Jukebox-Correlation-Id";
pub const COMMAND_ID_HEADER: &str = "Jukebox-Command-Id";
pub const GLOBAL_POSITION_HEADER: &str = "Jukebox-Global-Position";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    /// `prefix` may be empty (production default). It must be a single subject token.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let ok = prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(Self {
                prefix: prefix.to_owned(),
            })
        } else {
            Err(format!(
                "NATS_NAMESPACE {prefix:?} may only hold letters, digits, '_' and '-'"
            ))
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn stream(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}_{name}", self.prefix)
        }
    }

    pub fn subject(&self, subject: &str) -> String {
        if self.prefix.is_empty() {
            subject.to_owned()
        } else {
            format!("{}.{subject}", self.prefix)
        }
    }

    pub fn commands_stream(&self) -> String {
        self.stream("COMMANDS")
    }

    pub fn events_stream(&self) -> String {
        self.stream("EVENTS")
    }

    /// `cmd.<aggregate>.<command>`
    pub fn command_subject(&self, suffix: &str) -> String {
        self.subject(&format!("cmd.{suffix}"))
    }

    /// `evt.<aggregate>.<id>.<EventType>`; the id is encoded to one subject token.
    pub fn event_subject(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
    ) -> String {
        self.subject(&format!(
            "evt.{aggregate_type}.{}.{event_type}",
            subject_token(aggregate_id)
        ))
    }

    /// Core NATS subject of an import job's live progress (not stored anywhere).
    pub fn progress_subject(&self, job_id: &str) -> String {
        self.subject(&format!("progress.import.{}", subject_token(job_id)))
    }

    /// Subject the processor answers a command on; the edge listens on `reply.<edge>.*`,
    /// where `<edge>` is `<NATS user>.<random>`.
    pub fn reply_subject(&self, edge_id: &str, command_id: &str) -> String {
        self.subject(&format!("reply.{edge_id}.{command_id}"))
    }
}

/// Makes any aggregate id one valid subject token: `.`, `*`, `>`, `%`, whitespace and
/// control characters become `%XX`, so `alice@example.com` is `alice@example%2Ecom`.
pub fn subject_token(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        let c = byte as char;
        if byte.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '%') {
            out.push(c);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_prefixes_streams_and_subjects() {
        let ns = Namespace::new("t1").unwrap();
        assert_eq!(ns.events_stream(), "t1_EVENTS");
        assert_eq!(ns.command_subject("user.signup"), "t1.cmd.user.signup");
        let plain = Namespace::default();
        assert_eq!(plain.events_stream(), "EVENTS");
        assert_eq!(
            plain.event_subject("user", "u1", "UserSignedUp"),
            "evt.user.u1.UserSignedUp"
        );
        assert!(Namespace::new("a.b").is_err());
    }

    #[test]
    fn ids_become_one_token() {
        assert_eq!(subject_token("alice@example.com"), "alice@example%2Ecom");
        assert_eq!(subject_token("yt:abc>*"), "yt:abc%3E%2A");
        assert_eq!(subject_token("a b"), "a%20b");
        assert_eq!(subject_token("é"), "%C3%A9");
    }
}

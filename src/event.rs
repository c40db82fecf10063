//! The envelope every stage speaks: one captured event with a deterministic id.
//!
//! Capture builds an [`Event`] from a transcript line (or, later, a hook payload or a Cursor
//! bubble) *after* the privacy rules were applied, so the payload is already safe to store.
//! The queue carries it as flat stream fields; the fast path stores it as-is in `raw_traces`.
//!
//! Invariant: an event's id depends only on its source (transcript line uuid, file + byte
//! offset for lines without one), never on time of capture or randomness, so re-reading a
//! source produces the same ids and every insert downstream is idempotent.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

/// Which assistant produced an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    ClaudeCode,
    Cursor,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::ClaudeCode => "claude_code",
            Platform::Cursor => "cursor",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "claude_code" => Some(Platform::ClaudeCode),
            "cursor" => Some(Platform::Cursor),
            _ => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One captured event, privacy rules already applied to `payload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Deterministic id, see [`transcript_line_id`].
    pub id: String,
    pub platform: Platform,
    /// The source's own record type (`user`, `assistant`, `system`, `progress`, ...).
    pub kind: String,
    pub session_id: Option<String>,
    /// Event time in milliseconds since the Unix epoch (UTC), when the source gives one.
    pub timestamp_ms: Option<i64>,
    /// Where it came from: the transcript path.
    pub source: String,
    /// Byte offset of the line in `source`.
    pub offset: u64,
    /// The filtered record as compact JSON.
    pub payload: String,
}

/// Id of a transcript line: its `uuid` scoped by session when it has one (a resumed session may
/// copy earlier lines, uuids included, into a new file of another session), else the file path
/// and byte offset plus a hash of the line (so a rewritten file with other content at the same
/// offset gets another id).
pub fn transcript_line_id(
    session_id: Option<&str>,
    uuid: Option<&str>,
    source: &str,
    offset: u64,
    line: &[u8],
) -> String {
    match uuid {
        Some(uuid) if !uuid.is_empty() => {
            format!("cc:{}:{}", session_id.unwrap_or("-"), uuid)
        }
        _ => {
            let mut key = Vec::with_capacity(source.len() + line.len() + 24);
            key.extend_from_slice(source.as_bytes());
            key.push(0);
            key.extend_from_slice(offset.to_string().as_bytes());
            key.push(0);
            key.extend_from_slice(line);
            format!("cc:h:{:032x}", xxh3_128(&key))
        }
    }
}

/// Parses an RFC 3339 timestamp into epoch milliseconds.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_scoped() {
        let a = transcript_line_id(Some("s1"), Some("u1"), "/a", 0, b"x");
        assert_eq!(a, transcript_line_id(Some("s1"), Some("u1"), "/b", 9, b"y"));
        assert_ne!(a, transcript_line_id(Some("s2"), Some("u1"), "/a", 0, b"x"));
        let h = transcript_line_id(None, None, "/a", 10, b"{}");
        assert_eq!(h, transcript_line_id(None, None, "/a", 10, b"{}"));
        assert_ne!(h, transcript_line_id(None, None, "/a", 11, b"{}"));
        assert_ne!(h, transcript_line_id(None, None, "/a", 10, b"{ }"));
    }

    #[test]
    fn timestamps_parse() {
        assert_eq!(
            parse_timestamp_ms("2026-01-09T10:00:00.000Z"),
            Some(1_767_952_800_000)
        );
        assert_eq!(parse_timestamp_ms("nope"), None);
    }
}

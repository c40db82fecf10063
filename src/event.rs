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
    /// Where it came from.
    pub source: Source,
    /// The filtered record as compact JSON.
    pub payload: String,
}

/// Where an event came from. Ids of mutable sources (a database row rewritten in place)
/// include the content version, so a new version is a new event, never a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A line of a transcript file at a byte offset.
    FileLine { path: String, offset: u64 },
    /// A hook payload received on stdin.
    Hook { event: String, received_at: i64 },
    /// A row of an application database (Cursor's `state.vscdb`).
    DbRow {
        db: String,
        key: String,
        version: i64,
    },
}

impl Source {
    /// `file`, `hook` or `db` (the `raw_traces.source_kind` column).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::FileLine { .. } => "file",
            Source::Hook { .. } => "hook",
            Source::DbRow { .. } => "db",
        }
    }

    /// The path, hook event or database.
    pub fn location(&self) -> &str {
        match self {
            Source::FileLine { path, .. } => path,
            Source::Hook { event, .. } => event,
            Source::DbRow { db, .. } => db,
        }
    }

    /// The number that places the event in its source: byte offset, receive time, version.
    pub fn position(&self) -> i64 {
        match self {
            Source::FileLine { offset, .. } => *offset as i64,
            Source::Hook { received_at, .. } => *received_at,
            Source::DbRow { version, .. } => *version,
        }
    }

    /// The row key of a database source.
    pub fn key(&self) -> Option<&str> {
        match self {
            Source::DbRow { key, .. } => Some(key),
            _ => None,
        }
    }

    /// Rebuilds a source from its kind, location, position and key (the stream fields).
    pub fn from_parts(
        kind: &str,
        location: &str,
        position: i64,
        key: Option<&str>,
    ) -> Option<Source> {
        match kind {
            "file" => Some(Source::FileLine {
                path: location.to_string(),
                offset: u64::try_from(position).ok()?,
            }),
            "hook" => Some(Source::Hook {
                event: location.to_string(),
                received_at: position,
            }),
            "db" => Some(Source::DbRow {
                db: location.to_string(),
                key: key?.to_string(),
                version: position,
            }),
            _ => None,
        }
    }
}

/// Id of a database row at a content version: `<prefix>:<key>@<version>`.
pub fn db_row_id(prefix: &str, key: &str, version: i64) -> String {
    format!("{prefix}:{key}@{version}")
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
    fn sources_round_trip_through_their_parts() {
        for s in [
            Source::FileLine {
                path: "/a.jsonl".into(),
                offset: 7,
            },
            Source::Hook {
                event: "PreToolUse".into(),
                received_at: 1_700_000_000_000,
            },
            Source::DbRow {
                db: "/state.vscdb".into(),
                key: "bubbleId:c:b".into(),
                version: 3,
            },
        ] {
            let back = Source::from_parts(s.kind(), s.location(), s.position(), s.key());
            assert_eq!(back.as_ref(), Some(&s));
        }
        assert_eq!(Source::from_parts("ftp", "x", 0, None), None);
        assert_ne!(db_row_id("cu", "k", 1), db_row_id("cu", "k", 2));
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

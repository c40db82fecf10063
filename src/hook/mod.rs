//! The hook and status-line hot path: `blueplane hook claude`, `blueplane hook cursor` and
//! `blueplane statusline`.
//!
//! Runs before any async runtime or managed Redis exists (see `main.rs`): read stdin, apply
//! the privacy allow-list for hook payloads (`privacy::hooks`, `privacy::cursor_hooks` for
//! Cursor, whose session is its `conversation_id`), open one short-timeout
//! connection and send one pipelined XADD; on any failure the event goes to the spool
//! ([`spool`]), which the capture lease holder drains into the stream. Garbage on stdin is
//! counted and kept in the dead-letter stream (via the spool when Redis is down), never its
//! content. Nothing here prints on stdout (`cli::run_fast` prints the `{}` Cursor reads), and
//! nothing here fails the caller: the IDE never waits on Blueplane and never sees an error
//! from it.
//!
//! Invariant: an event's id is computed once, here, before it is sent or spooled, so a
//! payload that reached both Redis and the spool is stored once.

pub mod events;
pub mod spool;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use xxhash_rust::xxh3::Xxh3;

use crate::config::Config;
use crate::event::Platform;
use crate::privacy::PrivacyMode;
use crate::queue;
use spool::SpoolRecord;

/// Largest payload read from stdin; anything bigger is counted as a bad payload.
pub const MAX_PAYLOAD: u64 = 32 << 20;
/// How long the hot path waits for Redis to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(100);
/// How long it waits for Redis to answer.
const IO_TIMEOUT: Duration = Duration::from_millis(250);
/// Transcript paths named by hook payloads, for the capture lease holder to read at once.
pub const NUDGE: &str = "bp:capture:nudge";
/// How many nudges wait at most (the oldest are dropped: a rescan finds their files anyway).
const NUDGE_CAP: isize = 1000;

/// The directory Cursor keeps agent CLI transcripts in, inside a project directory.
pub const CURSOR_TRANSCRIPTS_DIR: &str = "agent-transcripts";

/// The conversation id and, for a sub-agent, its id, when `path` is a Cursor agent CLI
/// transcript (`agent-transcripts/<cid>.jsonl`, `agent-transcripts/<cid>/<cid>.jsonl` or
/// `agent-transcripts/<cid>/subagents/<id>.jsonl`, and the same with the legacy `.txt`;
/// formats.md §C6): the transcripts a Cursor hook nudges capture for, and what
/// `capture::cursor_agent` reads. Never a Claude Code transcript, whose project directory
/// is an encoded path (`-home-u-proj`), never `agent-transcripts`.
pub fn cursor_agent_transcript(path: &Path) -> Option<(&str, Option<&str>)> {
    fn name(p: Option<&Path>) -> Option<&str> {
        p.and_then(Path::file_name).and_then(|n| n.to_str())
    }
    if path.extension().is_none_or(|e| e != "jsonl" && e != "txt") {
        return None;
    }
    let stem = path.file_stem().and_then(|s| s.to_str())?;
    let parent = path.parent();
    let grand = parent.and_then(Path::parent);
    let flat = name(parent) == Some(CURSOR_TRANSCRIPTS_DIR);
    let nested = name(grand) == Some(CURSOR_TRANSCRIPTS_DIR) && name(parent) == Some(stem);
    if flat || nested {
        Some((stem, None))
    } else if name(parent) == Some("subagents")
        && name(grand.and_then(Path::parent)) == Some(CURSOR_TRANSCRIPTS_DIR)
    {
        Some((name(grand)?, Some(stem)))
    } else {
        None
    }
}

/// What the hot path reads and where it writes.
#[derive(Debug, Clone)]
pub struct Target {
    pub redis_url: String,
    pub spool_dir: PathBuf,
    pub privacy: PrivacyMode,
    /// `telemetry.db`, which the status line reads.
    pub db_path: PathBuf,
}

impl Target {
    /// From the configuration; when it cannot be loaded (an invalid config file), from the
    /// environment alone, in the strictest privacy mode, so the payload is still kept safely.
    pub fn from_config(cfg: Result<Config, crate::config::ConfigError>) -> Option<Target> {
        match cfg {
            Ok(c) => Some(Target {
                redis_url: c
                    .redis_url
                    .clone()
                    .unwrap_or_else(|| crate::queue::managed::ManagedRedis::new(&c.home).url()),
                spool_dir: c.spool_dir(),
                privacy: c.privacy,
                db_path: c.db_path(),
            }),
            Err(_) => {
                let home = crate::config::home_dir()?;
                let redis_url = std::env::var("REDIS_URL")
                    .ok()
                    .filter(|u| !u.trim().is_empty())
                    .unwrap_or_else(|| crate::queue::managed::ManagedRedis::new(&home).url());
                Some(Target {
                    redis_url,
                    spool_dir: home.join("spool"),
                    privacy: PrivacyMode::Metadata,
                    db_path: home.join("telemetry.db"),
                })
            }
        }
    }
}

/// One payload ready to deliver.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub record: SpoolRecord,
    /// Transcript files the payload names (`transcript_path`, `agent_transcript_path`).
    pub transcripts: Vec<String>,
}

/// Where a payload went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Redis,
    Spool,
    /// Neither Redis nor the spool took it (no writable home): lost, and said on stderr.
    Lost,
}

/// Reads a payload from `input` (at most [`MAX_PAYLOAD`] bytes).
pub fn read_payload(mut input: impl Read) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    input.by_ref().take(MAX_PAYLOAD + 1).read_to_end(&mut raw)?;
    Ok(raw)
}

/// Turns raw stdin into an event of `kind` (`hook` or `statusline`) for `platform`, privacy
/// rules applied, or into a bad-payload record. `origin` names the command (`hook:claude`).
pub fn prepare(
    raw: &[u8],
    platform: Platform,
    kind: &str,
    origin: &str,
    privacy: PrivacyMode,
    received_at: i64,
) -> Prepared {
    let bad = |why: String| Prepared {
        record: SpoolRecord::Bad {
            bad: why,
            src: origin.to_string(),
            bytes: raw.len() as u64,
            at: received_at,
        },
        transcripts: Vec::new(),
    };
    if raw.len() as u64 > MAX_PAYLOAD {
        return bad(format!("payload larger than {} MiB", MAX_PAYLOAD >> 20));
    }
    let parsed: Value = match serde_json::from_slice(raw) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad("payload is JSON but not an object".into()),
        Err(e) => return bad(format!("payload is not JSON: {e}")),
    };
    let str_of = |k: &str| {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let event = match kind {
        "hook" => str_of("hook_event_name").unwrap_or_else(|| "unknown".into()),
        other => other.to_string(),
    };
    let transcripts = ["transcript_path", "agent_transcript_path"]
        .iter()
        .filter_map(|k| str_of(k));
    let (session, transcripts) = match platform {
        // Cursor names its conversation `conversation_id` (`session_id` is only on the
        // session events); only agent transcripts have a capture source to nudge.
        Platform::Cursor => (
            str_of("conversation_id").or_else(|| str_of("session_id")),
            transcripts
                .filter(|t| cursor_agent_transcript(Path::new(t)).is_some())
                .collect(),
        ),
        Platform::ClaudeCode => (str_of("session_id"), transcripts.collect()),
    };
    let mut filtered = parsed;
    match platform {
        Platform::Cursor => {
            crate::privacy::cursor_hooks::filter_cursor_hook_payload(&mut filtered, privacy);
        }
        Platform::ClaudeCode => crate::privacy::hooks::filter_hook_payload(&mut filtered, privacy),
    }
    Prepared {
        record: SpoolRecord::Event {
            id: event_id(platform, kind, &event, raw, received_at),
            p: platform.as_str().to_string(),
            k: kind.to_string(),
            s: session,
            t: received_at,
            src: event,
            d: filtered.to_string(),
        },
        transcripts,
    }
}

/// `hk:<hash>` of the platform, kind, event, payload bytes and the second it was received:
/// the same payload delivered twice at once (a hook registered in two settings files) is one
/// event; the same payload a minute later is another.
fn event_id(platform: Platform, kind: &str, event: &str, raw: &[u8], received_at: i64) -> String {
    let mut h = Xxh3::new();
    for part in [
        platform.as_str().as_bytes(),
        kind.as_bytes(),
        event.as_bytes(),
    ] {
        h.update(part);
        h.update(&[0]);
    }
    h.update(raw);
    h.update(&[0]);
    h.update(&received_at.div_euclid(1000).to_le_bytes());
    format!("hk:{:032x}", h.digest128())
}

/// Delivers a prepared payload: one pipelined round trip to Redis, or the spool.
pub fn deliver(target: &Target, p: &Prepared) -> Delivery {
    match send(&target.redis_url, p) {
        Ok(()) => Delivery::Redis,
        Err(e) => {
            tracing::debug!(error = %e, "Redis did not take the hook payload; spooling it");
            match spool::append(&target.spool_dir, &p.record) {
                Ok(()) => Delivery::Spool,
                Err(e) => {
                    // stderr: Claude Code shows it only in verbose mode for an exit-0 hook.
                    tracing::error!(error = %e, dir = %target.spool_dir.display(), "Cannot spool the hook payload; it is lost");
                    Delivery::Lost
                }
            }
        }
    }
}

fn send(url: &str, p: &Prepared) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut pipe = redis::pipe();
    add_record(&mut pipe, &p.record);
    for t in &p.transcripts {
        pipe.rpush(NUDGE, t).ignore();
    }
    if !p.transcripts.is_empty() {
        pipe.ltrim(NUDGE, -NUDGE_CAP, -1).ignore();
    }
    pipe.query::<()>(&mut con)
}

/// The commands that put one spool record into Redis: the event on `bp:events` (fields as
/// `queue::event_fields` writes them) or the bad payload on `bp:dlq`, and the counters.
pub fn add_record(pipe: &mut redis::Pipeline, rec: &SpoolRecord) {
    match rec {
        SpoolRecord::Event { p, k, t, .. } => {
            // Records made by `prepare` always name a known platform.
            if let Ok(e) = rec.to_event() {
                let xadd = pipe.cmd("XADD").arg(queue::EVENTS).arg("*");
                for (field, value) in queue::event_fields(&e) {
                    xadd.arg(field).arg(value);
                }
                xadd.ignore();
            }
            pipe.hincr(queue::STATS, format!("{k}_events"), 1).ignore();
            pipe.hset(queue::LAST_EVENT, format!("{p}:{k}"), t).ignore();
        }
        SpoolRecord::Bad {
            bad,
            src,
            bytes,
            at,
        } => {
            // Never trimmed (see `queue::DLQ`); `offset` holds the payload's size.
            pipe.cmd("XADD")
                .arg(queue::DLQ)
                .arg("*")
                .arg("stage")
                .arg("hook")
                .arg("reason")
                .arg(bad)
                .arg("source")
                .arg(src)
                .arg("offset")
                .arg(bytes)
                .arg("at")
                .arg(at)
                .ignore();
            pipe.hincr(queue::STATS, "bad_input", 1).ignore();
            pipe.hincr(queue::STATS, "bad_hook_payloads", 1).ignore();
        }
    }
}

/// `blueplane hook <client>`: reads stdin, delivers, and returns where it went. Never fails.
pub fn run_hook(
    target: Option<&Target>,
    platform: Platform,
    origin: &str,
    input: impl Read,
) -> Delivery {
    let received_at = chrono::Utc::now().timestamp_millis();
    let raw = read_payload(input).unwrap_or_default();
    let Some(target) = target else {
        tracing::error!("No home directory: set BLUEPLANE_HOME; the hook payload is lost");
        return Delivery::Lost;
    };
    let p = prepare(&raw, platform, "hook", origin, target.privacy, received_at);
    deliver(target, &p)
}

/// `blueplane statusline`: reads Claude Code's status JSON, captures its cost and
/// `rate_limits` when they changed since the last refresh (the status line runs on every
/// refresh; an unchanged payload adds nothing), and returns the parsed JSON for the line.
pub fn run_statusline(target: Option<&Target>, input: impl Read) -> Option<Value> {
    let received_at = chrono::Utc::now().timestamp_millis();
    let raw = read_payload(input).unwrap_or_default();
    let target = target?;
    let p = prepare(
        &raw,
        Platform::ClaudeCode,
        "statusline",
        "statusline",
        target.privacy,
        received_at,
    );
    // The line shows the payload as Claude Code sent it, not as it is stored.
    let parsed: Option<Value> = serde_json::from_slice(&raw).ok().filter(Value::is_object);
    if let Some(v) = &parsed {
        let figures = serde_json::json!([v.get("session_id"), v.get("cost"), v.get("rate_limits")]);
        let mut h = Xxh3::new();
        h.update(figures.to_string().as_bytes());
        let digest = format!("{:032x}", h.digest128());
        let last = target.spool_dir.join(LAST_STATUS);
        if std::fs::read_to_string(&last).is_ok_and(|d| d == digest) {
            return parsed;
        }
        if deliver(target, &p) != Delivery::Lost {
            let _ = std::fs::create_dir_all(&target.spool_dir);
            let _ = std::fs::write(&last, digest);
        }
    } else {
        deliver(target, &p);
    }
    parsed
}

/// Digest of the last status-line figures captured (in the spool directory).
const LAST_STATUS: &str = "statusline.last";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_for_the_same_payload_in_the_same_second() {
        let raw = br#"{"session_id":"s","hook_event_name":"Stop"}"#;
        let a = prepare(
            raw,
            Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            1_000_100,
        );
        let b = prepare(
            raw,
            Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            1_000_900,
        );
        let c = prepare(
            raw,
            Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            1_001_000,
        );
        let id = |p: &Prepared| match &p.record {
            SpoolRecord::Event { id, .. } => id.clone(),
            SpoolRecord::Bad { .. } => String::new(),
        };
        assert_eq!(id(&a), id(&b));
        assert_ne!(id(&a), id(&c));
        assert!(id(&a).starts_with("hk:"));
    }

    #[test]
    fn garbage_and_non_objects_are_bad_payloads() {
        for raw in [&b"not json"[..], b"[1,2]", b""] {
            let p = prepare(
                raw,
                Platform::ClaudeCode,
                "hook",
                "hook:claude",
                PrivacyMode::Standard,
                5,
            );
            assert!(matches!(p.record, SpoolRecord::Bad { .. }), "{raw:?}");
        }
    }

    #[test]
    fn unknown_events_are_kept_with_their_name() {
        let raw = br#"{"session_id":"s","hook_event_name":"BrandNewEvent","transcript_path":"/t.jsonl","x":1}"#;
        let p = prepare(
            raw,
            Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            5,
        );
        match &p.record {
            SpoolRecord::Event { src, s, d, .. } => {
                assert_eq!(src, "BrandNewEvent");
                assert_eq!(s.as_deref(), Some("s"));
                assert!(d.contains("\"x\":1"));
            }
            SpoolRecord::Bad { .. } => panic!("kept as bad"),
        }
        assert_eq!(p.transcripts, vec!["/t.jsonl".to_string()]);
    }

    #[test]
    fn cursor_payloads_use_the_conversation_and_nudge_agent_transcripts_only() {
        let raw = br#"{"conversation_id":"c1","generation_id":"g1","hook_event_name":"stop",
            "user_email":"dev@example.com","status":"completed",
            "transcript_path":"/h/.cursor/projects/p/agent-transcripts/c1/c1.jsonl",
            "agent_transcript_path":"/h/elsewhere/notes.jsonl"}"#;
        let p = prepare(
            raw,
            Platform::Cursor,
            "hook",
            "hook:cursor",
            PrivacyMode::Standard,
            5,
        );
        match &p.record {
            SpoolRecord::Event {
                p: plat, s, src, d, ..
            } => {
                assert_eq!(plat, "cursor");
                assert_eq!(s.as_deref(), Some("c1"));
                assert_eq!(src, "stop");
                assert!(!d.contains("dev@example.com"), "{d}");
            }
            SpoolRecord::Bad { .. } => panic!("kept as bad"),
        }
        assert_eq!(
            p.transcripts,
            vec!["/h/.cursor/projects/p/agent-transcripts/c1/c1.jsonl".to_string()]
        );
        // The same payload from Claude Code is another event.
        let c = prepare(
            raw,
            Platform::ClaudeCode,
            "hook",
            "hook:claude",
            PrivacyMode::Standard,
            5,
        );
        let id = |p: &Prepared| match &p.record {
            SpoolRecord::Event { id, .. } => id.clone(),
            SpoolRecord::Bad { .. } => String::new(),
        };
        assert_ne!(id(&p), id(&c));
        // sessionStart/sessionEnd without a conversation_id: their session_id.
        let p = prepare(
            br#"{"session_id":"s9","hook_event_name":"sessionEnd"}"#,
            Platform::Cursor,
            "hook",
            "hook:cursor",
            PrivacyMode::Standard,
            5,
        );
        assert!(matches!(&p.record, SpoolRecord::Event { s: Some(s), .. } if s == "s9"));
    }
}

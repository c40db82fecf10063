//! Redis Streams: the queue between capture (layer 1) and processing (layer 2).
//!
//! Key layout (all prefixed `bp:` so a shared Redis is safe):
//!
//! | key | type | what |
//! |---|---|---|
//! | `bp:events` | stream | captured events; group `fastpath` |
//! | `bp:cdc` | stream | change feed fast path -> slow path (`seq` of the last committed raw row); group `slowpath` |
//! | `bp:dlq` | stream | dead letters: bad lines and poison messages, with the reason (capped, `MAXLEN ~ 100000`) |
//! | `bp:capture:cursors` | hash | transcript path -> `dev:inode:offset` |
//! | `bp:capture:lease` | string | holder of the capture lease (`SET NX PX`) |
//! | `bp:stats` | hash | counters (captured, bad lines, dead-lettered, ...) |
//! | `bp:last_event` | hash | source -> epoch ms of the newest event captured |
//! | `bp:m:*` | hashes, sets, zset | metrics, see `slow_path::metrics` |
//!
//! Invariants: a capture cursor is written in the same `MULTI/EXEC` as the events it covers,
//! so it never runs ahead of the stream; an event is acknowledged only together with the CDC
//! entry that follows its SQLite commit; streams are trimmed only below the oldest entry the
//! group has not acknowledged.

pub mod lease;
pub mod managed;

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Value};

use crate::event::{Event, Platform};

pub const EVENTS: &str = "bp:events";
pub const CDC: &str = "bp:cdc";
pub const DLQ: &str = "bp:dlq";
pub const CURSORS: &str = "bp:capture:cursors";
pub const STATS: &str = "bp:stats";
pub const LAST_EVENT: &str = "bp:last_event";
pub const FAST_GROUP: &str = "fastpath";
pub const SLOW_GROUP: &str = "slowpath";
/// Length cap of the dead-letter stream (it has no consumer group).
pub const DLQ_MAXLEN: usize = 100_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Redis could not be reached or dropped the connection: retry with backoff.
    #[error(
        "redis is unreachable ({0}); is it running? see 'blueplane redis status' or check REDIS_URL"
    )]
    Unavailable(#[source] redis::RedisError),
    /// Redis answered with an error or an unexpected reply.
    #[error("redis error: {0}")]
    Redis(#[source] redis::RedisError),
}

impl From<redis::RedisError> for QueueError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
        {
            QueueError::Unavailable(e)
        } else {
            QueueError::Redis(e)
        }
    }
}

pub type Result<T> = std::result::Result<T, QueueError>;

/// A line or message that cannot be processed, on its way to the dead-letter stream.
/// It never carries content: only where it was and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub stage: &'static str,
    pub reason: String,
    pub source: String,
    pub offset: u64,
}

/// A stream entry as read by a consumer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stream_id: String,
    pub fields: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Decodes the event envelope; `Err` names the first missing or malformed field.
    pub fn to_event(&self) -> std::result::Result<Event, String> {
        let need = |k: &str| {
            self.get_str(k)
                .ok_or_else(|| format!("missing or non-UTF-8 field '{k}'"))
        };
        let platform = need("p")?;
        let platform =
            Platform::parse(platform).ok_or_else(|| format!("unknown platform '{platform}'"))?;
        let offset = need("off")?
            .parse::<u64>()
            .map_err(|_| "field 'off' is not a number".to_string())?;
        let timestamp_ms = match self.get_str("t") {
            None | Some("") => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| "field 't' is not a number".to_string())?,
            ),
        };
        let session_id = match self.get_str("s") {
            None | Some("") => None,
            Some(s) => Some(s.to_string()),
        };
        let payload = need("d")?;
        if payload.is_empty() {
            return Err("empty payload".into());
        }
        Ok(Event {
            id: need("id")?.to_string(),
            platform,
            kind: need("k")?.to_string(),
            session_id,
            timestamp_ms,
            source: need("src")?.to_string(),
            offset,
            payload: payload.to_string(),
        })
    }
}

/// Connection settings: fail fast on connect, few quick retries, and a response timeout that
/// must exceed any BLOCK issued on the connection.
fn manager_config(response_timeout: Duration) -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

/// Client for the pipeline's streams. Cheap to clone (shares one multiplexed connection).
#[derive(Clone)]
pub struct Queue {
    conn: ConnectionManager,
    client: redis::Client,
}

impl Queue {
    /// Connects and makes sure both consumer groups exist.
    ///
    /// # Errors
    /// [`QueueError::Unavailable`] when Redis does not answer.
    pub async fn connect(url: &str) -> Result<Queue> {
        let client = redis::Client::open(url)?;
        let conn = client
            .get_connection_manager_with_config(manager_config(Duration::from_secs(10)))
            .await?;
        let q = Queue { conn, client };
        q.ensure_groups().await?;
        Ok(q)
    }

    /// A separate connection for blocking reads: a blocking XREADGROUP on the shared
    /// multiplexed connection would stall every other command behind it.
    ///
    /// # Errors
    /// When Redis does not answer.
    pub async fn blocking(&self, block: Duration) -> Result<Queue> {
        let conn = self
            .client
            .get_connection_manager_with_config(manager_config(block + Duration::from_secs(5)))
            .await?;
        Ok(Queue {
            conn,
            client: self.client.clone(),
        })
    }

    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn ensure_groups(&self) -> Result<()> {
        let mut c = self.conn.clone();
        for (stream, group) in [(EVENTS, FAST_GROUP), (CDC, SLOW_GROUP)] {
            let r: redis::RedisResult<()> = c.xgroup_create_mkstream(stream, group, "0").await;
            if let Err(e) = r
                && e.code() != Some("BUSYGROUP")
            {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Appends events and dead letters, and moves a capture cursor, in one `MULTI/EXEC`.
    ///
    /// # Errors
    /// Nothing was written when this fails.
    pub async fn publish(
        &self,
        events: &[Event],
        dead: &[DeadLetter],
        cursor: Option<(&str, &str)>,
    ) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic();
        let mut newest: Option<(Platform, i64)> = None;
        for e in events {
            let ts = e.timestamp_ms.map(|t| t.to_string()).unwrap_or_default();
            p.cmd("XADD")
                .arg(EVENTS)
                .arg("*")
                .arg("id")
                .arg(&e.id)
                .arg("p")
                .arg(e.platform.as_str())
                .arg("k")
                .arg(&e.kind)
                .arg("s")
                .arg(e.session_id.as_deref().unwrap_or(""))
                .arg("t")
                .arg(ts)
                .arg("src")
                .arg(&e.source)
                .arg("off")
                .arg(e.offset)
                .arg("d")
                .arg(&e.payload)
                .ignore();
            if let Some(t) = e.timestamp_ms
                && newest.is_none_or(|(_, n)| t > n)
            {
                newest = Some((e.platform, t));
            }
        }
        for d in dead {
            add_dead_letter(&mut p, d, None);
        }
        if let Some((path, value)) = cursor {
            p.hset(CURSORS, path, value).ignore();
        }
        if !events.is_empty() {
            p.hincr(STATS, "captured", events.len()).ignore();
        }
        if !dead.is_empty() {
            p.hincr(STATS, "bad_input", dead.len()).ignore();
        }
        if let Some((platform, t)) = newest {
            // Keep the maximum: a backfill of old files must not move "last event" back.
            p.cmd("EVAL")
                .arg(MAX_FIELD_LUA)
                .arg(1)
                .arg(LAST_EVENT)
                .arg(platform.as_str())
                .arg(t)
                .ignore();
        }
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c).await?;
        Ok(())
    }

    /// All capture cursors (path -> `dev:inode:offset`).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn cursors(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut c = self.conn.clone();
        Ok(c.hgetall(CURSORS).await?)
    }

    /// Reads up to `count` new entries for `consumer`, blocking up to `block`.
    /// Use a connection from [`Queue::blocking`].
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn read_group(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Entry>> {
        let mut c = self.conn.clone();
        let v: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(stream)
            .arg(">")
            .query_async(&mut c)
            .await?;
        Ok(parse_read_reply(v))
    }

    /// Acknowledges `ids` on `stream`; when `cdc_seq` is given, first appends a change-feed
    /// entry, atomically with the acknowledgement.
    ///
    /// # Errors
    /// When Redis fails; the entries stay pending and will be delivered again.
    pub async fn ack(
        &self,
        stream: &str,
        group: &str,
        ids: &[String],
        cdc_seq: Option<i64>,
    ) -> Result<()> {
        if ids.is_empty() && cdc_seq.is_none() {
            return Ok(());
        }
        let mut p = redis::pipe();
        p.atomic();
        if let Some(seq) = cdc_seq {
            p.cmd("XADD").arg(CDC).arg("*").arg("seq").arg(seq).ignore();
        }
        if !ids.is_empty() {
            p.cmd("XACK").arg(stream).arg(group).arg(ids).ignore();
        }
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c).await?;
        Ok(())
    }

    /// Claims entries idle for longer than `min_idle` from consumers that died, returning
    /// them with their delivery counts.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn autoclaim(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<(Entry, usize)>> {
        let mut c = self.conn.clone();
        let v: Value = redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(group)
            .arg(consumer)
            .arg(min_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut c)
            .await?;
        let entries = match v {
            Value::Array(mut parts) if parts.len() >= 2 => parse_entries(parts.swap_remove(1)),
            _ => Vec::new(),
        };
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // Delivery counts for the claimed range (XAUTOCLAIM itself increments them).
        let first = &entries[0].stream_id;
        let last = &entries[entries.len() - 1].stream_id;
        let pending: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg(first)
            .arg(last)
            .arg(entries.len())
            .arg(consumer)
            .query_async(&mut c)
            .await?;
        let counts: std::collections::HashMap<&str, usize> = pending
            .ids
            .iter()
            .map(|p| (p.id.as_str(), p.times_delivered))
            .collect();
        Ok(entries
            .into_iter()
            .map(|e| {
                let n = counts.get(e.stream_id.as_str()).copied().unwrap_or(1);
                (e, n)
            })
            .collect())
    }

    /// Moves a pending entry to the dead-letter stream (keeping its fields, which are
    /// already privacy-filtered) and acknowledges it, atomically.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dead_letter_entry(
        &self,
        stream: &str,
        group: &str,
        entry: &Entry,
        letter: &DeadLetter,
    ) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic();
        add_dead_letter(&mut p, letter, Some(entry));
        p.cmd("XACK")
            .arg(stream)
            .arg(group)
            .arg(&entry.stream_id)
            .ignore();
        p.hincr(STATS, "dead_lettered", 1).ignore();
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c).await?;
        Ok(())
    }

    /// Records dead letters that never became stream entries.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<()> {
        if letters.is_empty() {
            return Ok(());
        }
        let mut p = redis::pipe();
        p.atomic();
        for l in letters {
            add_dead_letter(&mut p, l, None);
        }
        p.hincr(STATS, "dead_lettered", letters.len()).ignore();
        let mut c = self.conn.clone();
        p.query_async::<()>(&mut c).await?;
        Ok(())
    }

    /// Trims `stream` below the oldest entry its group has not acknowledged.
    /// Returns the number of entries removed.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn trim_acknowledged(&self, stream: &str, group: &str) -> Result<usize> {
        let mut c = self.conn.clone();
        let groups: redis::streams::StreamInfoGroupsReply = c.xinfo_groups(stream).await?;
        let Some(g) = groups.groups.iter().find(|g| g.name == group) else {
            return Ok(0);
        };
        if groups.groups.len() != 1 {
            // Another group reads this stream: only trim what every group has seen.
            return Ok(0);
        }
        // Everything up to last-delivered is acknowledged unless it is still pending.
        let min_keep = if g.pending > 0 {
            let p: redis::streams::StreamPendingReply = c.xpending(stream, group).await?;
            match p {
                redis::streams::StreamPendingReply::Data(d) => d.start_id,
                _ => next_id(&g.last_delivered_id),
            }
        } else {
            next_id(&g.last_delivered_id)
        };
        let n: usize = redis::cmd("XTRIM")
            .arg(stream)
            .arg("MINID")
            .arg(&min_keep)
            .query_async(&mut c)
            .await?;
        Ok(n)
    }

    /// Depth figures for `get_pipeline_status`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn group_info(&self, stream: &str, group: &str) -> Result<GroupInfo> {
        let mut c = self.conn.clone();
        let length: usize = c.xlen(stream).await?;
        let groups: redis::streams::StreamInfoGroupsReply = c.xinfo_groups(stream).await?;
        let g = groups.groups.iter().find(|g| g.name == group);
        let mut lag = g.and_then(|g| g.lag);
        if let (None, Some(g)) = (lag, g) {
            // Redis cannot count the lag (e.g. after deletions): at least tell "none" from
            // "some" by looking for an entry after the last delivered one.
            let next: Value = redis::cmd("XRANGE")
                .arg(stream)
                .arg(format!("({}", g.last_delivered_id))
                .arg("+")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut c)
                .await?;
            lag = Some(usize::from(
                matches!(next, Value::Array(ref a) if !a.is_empty()),
            ));
        }
        Ok(GroupInfo {
            length,
            pending: g.map(|g| g.pending).unwrap_or(0),
            lag,
            consumers: g.map(|g| g.consumers).unwrap_or(0),
        })
    }

    /// Number of entries in the dead-letter stream.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_len(&self) -> Result<usize> {
        let mut c = self.conn.clone();
        Ok(c.xlen(DLQ).await?)
    }

    /// Everything in `bp:stats`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn stats(&self) -> Result<std::collections::HashMap<String, i64>> {
        let mut c = self.conn.clone();
        Ok(c.hgetall(STATS).await?)
    }

    /// Newest event time per source.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn last_events(&self) -> Result<std::collections::HashMap<String, i64>> {
        let mut c = self.conn.clone();
        Ok(c.hgetall(LAST_EVENT).await?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupInfo {
    pub length: usize,
    pub pending: usize,
    /// Entries not yet delivered to the group; when Redis cannot count them, 0 or 1 (some).
    /// None only when the group does not exist.
    pub lag: Option<usize>,
    pub consumers: usize,
}

const MAX_FIELD_LUA: &str = "local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') \
     if tonumber(ARGV[2]) > v then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return 0";

fn add_dead_letter(p: &mut redis::Pipeline, d: &DeadLetter, entry: Option<&Entry>) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(DLQ)
        .arg("MAXLEN")
        .arg("~")
        .arg(DLQ_MAXLEN)
        .arg("*")
        .arg("stage")
        .arg(d.stage)
        .arg("reason")
        .arg(&d.reason)
        .arg("source")
        .arg(&d.source)
        .arg("offset")
        .arg(d.offset)
        .arg("at")
        .arg(chrono::Utc::now().timestamp_millis());
    if let Some(e) = entry {
        cmd.arg("stream_id").arg(&e.stream_id);
        for (k, v) in &e.fields {
            cmd.arg(format!("orig_{k}")).arg(v.as_slice());
        }
    }
    p.add_command(cmd).ignore();
}

/// The smallest stream id greater than `id` (`ms-seq` + 1).
fn next_id(id: &str) -> String {
    match id.split_once('-') {
        Some((ms, seq)) => match seq.parse::<u64>() {
            Ok(s) => format!("{ms}-{}", s + 1),
            Err(_) => id.to_string(),
        },
        None => id.to_string(),
    }
}

fn value_bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

/// Parses `[[stream, [[id, [k, v, ...]], ...]], ...]` (RESP2) or a RESP3 map.
fn parse_read_reply(v: Value) -> Vec<Entry> {
    let mut out = Vec::new();
    match v {
        Value::Array(streams) => {
            for s in streams {
                if let Value::Array(mut kv) = s
                    && kv.len() == 2
                {
                    out.extend(parse_entries(kv.swap_remove(1)));
                }
            }
        }
        Value::Map(m) => {
            for (_, entries) in m {
                out.extend(parse_entries(entries));
            }
        }
        _ => {}
    }
    out
}

fn parse_entries(v: Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else {
            continue;
        };
        if pair.len() != 2 {
            continue;
        }
        let fields_v = pair.pop();
        let id_v = pair.pop();
        let Some(stream_id) = id_v
            .and_then(value_bytes)
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let mut fields = Vec::new();
        if let Some(Value::Array(flat)) = fields_v {
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                if let (Some(k), Some(v)) = (
                    value_bytes(k).and_then(|b| String::from_utf8(b).ok()),
                    value_bytes(v),
                ) {
                    fields.push((k, v));
                }
            }
        }
        // A nil field list is an entry deleted while pending: keep it so it gets acked.
        out.push(Entry { stream_id, fields });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_id_increments_sequence() {
        assert_eq!(next_id("1700-5"), "1700-6");
        assert_eq!(next_id("0-0"), "0-1");
    }

    #[test]
    fn entry_decodes_and_reports_missing_fields() {
        let e = Entry {
            stream_id: "1-0".into(),
            fields: vec![
                ("id".into(), b"cc:s:u".to_vec()),
                ("p".into(), b"claude_code".to_vec()),
                ("k".into(), b"user".to_vec()),
                ("s".into(), b"s".to_vec()),
                ("t".into(), b"5".to_vec()),
                ("src".into(), b"/f".to_vec()),
                ("off".into(), b"10".to_vec()),
                ("d".into(), b"{}".to_vec()),
            ],
        };
        let ev = e.to_event().unwrap();
        assert_eq!(ev.timestamp_ms, Some(5));
        assert_eq!(ev.offset, 10);
        let mut bad = e.clone();
        bad.fields.retain(|(k, _)| k != "d");
        assert!(bad.to_event().unwrap_err().contains("'d'"));
        let mut bad = e.clone();
        bad.fields[1].1 = b"vim".to_vec();
        assert!(bad.to_event().unwrap_err().contains("platform"));
    }
}

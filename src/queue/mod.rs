//! Redis Streams: the queue between capture (layer 1) and processing (layer 2).
//!
//! Key layout (all prefixed `bp:` so a shared Redis is safe):
//!
//! | key | type | what |
//! |---|---|---|
//! | `bp:events` | stream | captured events; group `fastpath` |
//! | `bp:cdc` | stream | change feed fast path -> slow path (`seq` of the last committed raw row); group `slowpath` |
//! | `bp:dlq` | stream | dead letters: bad lines, poison messages and underivable records, with the reason (never trimmed; `blueplane dlq`) |
//! | `bp:capture:cursors` | hash | transcript path -> `dev:inode:offset` (the Claude transcript source's cursors; each capture source names its own hash) |
//! | `bp:capture:lease` | string | holder of the capture lease (`SET NX PX`) |
//! | `bp:capture:scan_req`, `bp:capture:scan_done`, `bp:capture:scan_served` | counter, hash, string | `backfill`'s full-scan requests, their answers, the newest answered (see `lease`) |
//! | `bp:stats` | hash | counters (captured, bad lines, dead-lettered, ...) |
//! | `bp:stats:record_types` | hash | record type -> lines captured, for types without rules |
//! | `bp:last_event` | hash | source -> epoch ms of the newest event captured |
//! | `bp:m:*` | hashes, sets, zset | metrics, see `slow_path::metrics` |
//!
//! Invariants: a capture cursor is written in the same script as the events it covers, and
//! capture's writes are fenced by the lease token,
//! so it never runs ahead of the stream; an event is acknowledged only together with the CDC
//! entry that follows its SQLite commit; streams are trimmed only below the oldest entry the
//! group has not acknowledged.

pub mod dlq;
pub mod lease;
pub mod managed;

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Value};

use crate::event::{Event, Platform, Source};

pub const EVENTS: &str = "bp:events";
pub const CDC: &str = "bp:cdc";
pub const DLQ: &str = "bp:dlq";
pub const CURSORS: &str = "bp:capture:cursors";
pub const STATS: &str = "bp:stats";
pub const LAST_EVENT: &str = "bp:last_event";
/// Lines captured per record type the parser has no rules for (`api-request`, ...).
pub const RECORD_TYPES: &str = "bp:stats:record_types";
pub const FAST_GROUP: &str = "fastpath";
pub const SLOW_GROUP: &str = "slowpath";

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
        let position = need("off")?
            .parse::<i64>()
            .map_err(|_| "field 'off' is not a number".to_string())?;
        let source_kind = self.get_str("sk").unwrap_or("file");
        let source = Source::from_parts(source_kind, need("src")?, position, self.get_str("key"))
            .ok_or_else(|| format!("bad source (kind '{source_kind}')"))?;
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
            source,
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

    /// Appends events and dead letters without a lease (tests, tools); see [`Queue::publish_batch`].
    ///
    /// # Errors
    /// Nothing was written when this fails.
    pub async fn publish(
        &self,
        events: &[Event],
        dead: &[DeadLetter],
        cursor: Option<CursorWrite<'_>>,
    ) -> Result<()> {
        self.publish_batch(&Batch {
            events,
            dead,
            cursor,
            ..Batch::default()
        })
        .await
        .map(|_| ())
    }

    /// Appends a batch — events, dead letters, new-type counts — and moves its capture cursor,
    /// atomically in one script. With a `fence` the script first checks that the capture lease
    /// still holds that token: a holder that lost the lease (paused, partitioned, slow) writes
    /// nothing. Returns false when the fence failed.
    ///
    /// # Errors
    /// Nothing was written when this fails.
    pub async fn publish_batch(&self, b: &Batch<'_>) -> Result<bool> {
        let mut newest: Option<(Platform, i64)> = None;
        for e in b.events {
            if let Some(t) = e.timestamp_ms
                && newest.is_none_or(|(_, n)| t > n)
            {
                newest = Some((e.platform, t));
            }
        }
        let mut inv = PUBLISH_SCRIPT.prepare_invoke();
        inv.key(lease::LEASE)
            .key(EVENTS)
            .key(DLQ)
            .key(b.cursor.map_or(CURSORS, |c| c.hash))
            .key(STATS)
            .key(LAST_EVENT)
            .key(RECORD_TYPES)
            .arg(b.fence.unwrap_or(""))
            .arg(b.events.len())
            .arg(b.dead.len())
            .arg(b.new_types.len())
            .arg(b.cursor.map_or("", |c| c.field))
            .arg(b.cursor.map_or("", |c| c.value))
            .arg(chrono::Utc::now().timestamp_millis())
            .arg(newest.map_or("", |(p, _)| p.as_str()))
            .arg(newest.map(|(_, t)| t.to_string()).unwrap_or_default());
        for (kind, n) in b.new_types {
            inv.arg(kind).arg(*n);
        }
        for e in b.events {
            inv.arg(&e.id)
                .arg(e.platform.as_str())
                .arg(&e.kind)
                .arg(e.session_id.as_deref().unwrap_or(""))
                .arg(e.timestamp_ms.map(|t| t.to_string()).unwrap_or_default())
                .arg(e.source.location())
                .arg(e.source.position())
                .arg(&e.payload)
                .arg(match e.source {
                    Source::FileLine { .. } => "",
                    _ => e.source.kind(),
                })
                .arg(e.source.key().unwrap_or(""));
        }
        for d in b.dead {
            inv.arg(d.stage).arg(&d.reason).arg(&d.source).arg(d.offset);
        }
        let mut c = self.conn.clone();
        let written: i64 = inv.invoke_async(&mut c).await?;
        Ok(written == 1)
    }

    /// Every capture cursor in the hash `hash` (for transcripts, [`CURSORS`]: path ->
    /// `dev:inode:offset`).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn cursors(&self, hash: &str) -> Result<std::collections::HashMap<String, String>> {
        let mut c = self.conn.clone();
        Ok(c.hgetall(hash).await?)
    }

    /// This connection's client id (`CLIENT ID`), for [`Queue::unblock`].
    ///
    /// # Errors
    /// When Redis fails or refuses `CLIENT` (an ACL).
    pub async fn client_id(&self) -> Result<i64> {
        let mut c = self.conn.clone();
        Ok(redis::cmd("CLIENT").arg("ID").query_async(&mut c).await?)
    }

    /// Ends the blocking command of client `id` now, as if its `BLOCK` had timed out
    /// (`CLIENT UNBLOCK`): a blocked `XREADGROUP` returns empty, delivering nothing.
    ///
    /// # Errors
    /// When Redis fails or refuses `CLIENT` (an ACL).
    pub async fn unblock(&self, id: i64) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .query_async(&mut c)
            .await?;
        Ok(())
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

    /// Dead-letters a decoded event that the store rejects (its fields rebuilt from the event).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dead_letter_event(
        &self,
        stream: &str,
        group: &str,
        stream_id: &str,
        event: &Event,
        letter: &DeadLetter,
    ) -> Result<()> {
        let entry = Entry {
            stream_id: stream_id.to_string(),
            fields: event_fields(event),
        };
        self.dead_letter_entry(stream, group, &entry, letter).await
    }

    /// Claims `ids` for `consumer` again without counting a delivery (`XCLAIM … JUSTID`),
    /// which resets their idle time: a consumer that holds entries through a store outage
    /// keeps them, instead of letting others claim them (and raise their counts).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn touch(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        ids: &[&str],
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.conn.clone();
        for chunk in ids.chunks(1000) {
            let _: Value = redis::cmd("XCLAIM")
                .arg(stream)
                .arg(group)
                .arg(consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID")
                .query_async(&mut c)
                .await?;
        }
        Ok(())
    }

    /// Adds `id` to the set `key`; false when it was already there.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn mark_suspect(&self, key: &str, id: &str) -> Result<bool> {
        let mut c = self.conn.clone();
        let added: i64 = c.sadd(key, id).await?;
        Ok(added == 1)
    }

    /// Removes `id` from the set `key`.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn clear_suspect(&self, key: &str, id: &str) -> Result<()> {
        let mut c = self.conn.clone();
        let _: i64 = c.srem(key, id).await?;
        Ok(())
    }

    /// Records dead letters that never became stream entries.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dead_letters(&self, letters: &[DeadLetter]) -> Result<()> {
        dead_letters_on(&mut self.conn.clone(), letters).await
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
    /// Takes up to `n` transcript paths that hook payloads named (`hook::NUDGE`).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn take_nudges(&self, n: usize) -> Result<Vec<String>> {
        let v: Option<Vec<String>> = redis::cmd("LPOP")
            .arg(crate::hook::NUDGE)
            .arg(n)
            .query_async(&mut self.conn())
            .await?;
        Ok(v.unwrap_or_default())
    }

    pub async fn dlq_len(&self) -> Result<usize> {
        let mut c = self.conn.clone();
        Ok(c.xlen(DLQ).await?)
    }

    /// Dead letters added at or after `since_ms` (counted up to 100,000).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_added_since(&self, since_ms: i64) -> Result<usize> {
        let mut c = self.conn.clone();
        let v: Value = redis::cmd("XRANGE")
            .arg(DLQ)
            .arg(since_ms.max(0))
            .arg("+")
            .arg("COUNT")
            .arg(100_000)
            .query_async(&mut c)
            .await?;
        Ok(match v {
            Value::Array(a) => a.len(),
            _ => 0,
        })
    }

    /// Lines per record type without derivation rules.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn record_types(&self) -> Result<std::collections::HashMap<String, i64>> {
        let mut c = self.conn.clone();
        Ok(c.hgetall(RECORD_TYPES).await?)
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

/// What one [`Queue::publish_batch`] writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch<'a> {
    pub events: &'a [Event],
    pub dead: &'a [DeadLetter],
    /// The capture cursor moved with the events it covers.
    pub cursor: Option<CursorWrite<'a>>,
    /// Lines per record type the parser has no rules for.
    pub new_types: &'a [(String, u64)],
    /// The capture lease token that must still hold; None for unfenced producers.
    pub fence: Option<&'a str>,
}

/// One capture cursor set in the same script as the events it covers: `HSET hash field value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorWrite<'a> {
    /// The source's cursor hash (for transcripts, [`CURSORS`]).
    pub hash: &'a str,
    /// What the cursor is for (a transcript path).
    pub field: &'a str,
    /// The source's encoding of the cursor (`dev:inode:offset`).
    pub value: &'a str,
}

/// KEYS: lease, events, dlq, cursors (the batch's cursor hash), stats, last_event, record_types.
/// ARGV: fence, #events, #dead, #types, cursor field, cursor value, now, newest platform,
/// newest ts; then (type, n) pairs, 10 fields per event (the last two, source kind and key,
/// only written when not empty: a file line needs neither), 4 per dead letter.
static PUBLISH_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ne, nd, nt = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 10
for _ = 1, nt do
  redis.call('HINCRBY', KEYS[7], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, ne do
  local f = {'id', ARGV[i], 'p', ARGV[i + 1], 'k', ARGV[i + 2], 's', ARGV[i + 3],
    't', ARGV[i + 4], 'src', ARGV[i + 5], 'off', ARGV[i + 6], 'd', ARGV[i + 7]}
  if ARGV[i + 8] ~= '' then f[#f + 1] = 'sk'; f[#f + 1] = ARGV[i + 8] end
  if ARGV[i + 9] ~= '' then f[#f + 1] = 'key'; f[#f + 1] = ARGV[i + 9] end
  redis.call('XADD', KEYS[2], '*', unpack(f))
  i = i + 10
end
for _ = 1, nd do
  redis.call('XADD', KEYS[3], '*', 'stage', ARGV[i], 'reason', ARGV[i + 1],
    'source', ARGV[i + 2], 'offset', ARGV[i + 3], 'at', ARGV[7])
  i = i + 4
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[6]) end
if ne > 0 then redis.call('HINCRBY', KEYS[5], 'captured', ne) end
if nd > 0 then redis.call('HINCRBY', KEYS[5], 'bad_input', nd) end
if ARGV[9] ~= '' then
  local v = tonumber(redis.call('HGET', KEYS[6], ARGV[8]) or '0')
  if tonumber(ARGV[9]) > v then redis.call('HSET', KEYS[6], ARGV[8], ARGV[9]) end
end
return 1
",
    )
});

fn add_dead_letter(p: &mut redis::Pipeline, d: &DeadLetter, entry: Option<&Entry>) {
    let mut cmd = redis::cmd("XADD");
    // Never trimmed: dead letters leave only by `blueplane dlq replay` or `purge`.
    cmd.arg(DLQ)
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

/// Records dead letters that never became stream entries, on `conn`.
///
/// # Errors
/// When Redis fails.
pub async fn dead_letters_on(conn: &mut ConnectionManager, letters: &[DeadLetter]) -> Result<()> {
    if letters.is_empty() {
        return Ok(());
    }
    let mut p = redis::pipe();
    p.atomic();
    for l in letters {
        add_dead_letter(&mut p, l, None);
    }
    p.hincr(STATS, "dead_lettered", letters.len()).ignore();
    p.query_async::<()>(conn).await?;
    Ok(())
}

/// The stream fields of an event (as [`Queue::publish_batch`] writes them).
pub fn event_fields(e: &Event) -> Vec<(String, Vec<u8>)> {
    let mut f: Vec<(String, Vec<u8>)> = vec![
        ("id".into(), e.id.clone().into_bytes()),
        ("p".into(), e.platform.as_str().as_bytes().to_vec()),
        ("k".into(), e.kind.clone().into_bytes()),
        (
            "s".into(),
            e.session_id.clone().unwrap_or_default().into_bytes(),
        ),
        (
            "t".into(),
            e.timestamp_ms
                .map(|t| t.to_string())
                .unwrap_or_default()
                .into_bytes(),
        ),
        ("src".into(), e.source.location().as_bytes().to_vec()),
        ("off".into(), e.source.position().to_string().into_bytes()),
        ("d".into(), e.payload.clone().into_bytes()),
    ];
    if !matches!(e.source, Source::FileLine { .. }) {
        f.push(("sk".into(), e.source.kind().as_bytes().to_vec()));
    }
    if let Some(k) = e.source.key() {
        f.push(("key".into(), k.as_bytes().to_vec()));
    }
    f
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
        assert_eq!(
            ev.source,
            Source::FileLine {
                path: "/f".into(),
                offset: 10
            }
        );
        let mut db = e.clone();
        db.fields.push(("sk".into(), b"db".to_vec()));
        db.fields.push(("key".into(), b"bubbleId:a:b".to_vec()));
        assert_eq!(db.to_event().unwrap().source.key(), Some("bubbleId:a:b"));
        let mut bad = e.clone();
        bad.fields.retain(|(k, _)| k != "d");
        assert!(bad.to_event().unwrap_err().contains("'d'"));
        let mut bad = e.clone();
        bad.fields[1].1 = b"vim".to_vec();
        assert!(bad.to_event().unwrap_err().contains("platform"));
    }
}

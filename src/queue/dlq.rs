//! The dead-letter stream `bp:dlq`, from the reading side: list, fetch, replay and purge
//! letters (`blueplane dlq`).
//!
//! Capture, the fast path and the slow path write letters (see [`super::DeadLetter`] and
//! [`super::Queue::dead_letter_entry`]); the stream is never trimmed, so letters leave only
//! through this module. A replay puts an event back on `bp:events` and deletes its letter in
//! one script that does nothing when the letter is already gone: two replays of one letter,
//! even concurrent ones, queue it once (and event ids are deterministic with `INSERT OR
//! IGNORE` behind them, so even a repeat would store once). `bp:stats` counts what left
//! (`replayed`, `purged`); `bad_input` and `dead_lettered` keep counting what arrived.
//! Called by `cli::dlq`, which decides what each letter needs.

use redis::Value;

use super::{DLQ, EVENTS, Entry, Queue, RECORD_TYPES, Result, STATS, parse_entries};

/// Letters read per round trip when scanning.
pub const PAGE: usize = 200;

/// The prefix under which a queue entry's own fields are kept in its letter.
pub const ORIG: &str = "orig_";

/// `id` as a full stream id (`<ms>-<seq>`; a bare `<ms>` means `<ms>-0`), or None when it is
/// not one.
pub fn letter_id(id: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    match id.split_once('-') {
        Some((ms, seq)) => (digits(ms) && digits(seq)).then(|| id.to_string()),
        None => digits(id).then(|| format!("{id}-0")),
    }
}

/// The fields of the queue entry a `fast_path` letter was made from (the `orig_*` fields,
/// prefix removed, in their order); empty for letters that never were queue entries.
pub fn original_fields(letter: &Entry) -> Vec<(String, Vec<u8>)> {
    letter
        .fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(ORIG).map(|k| (k.to_string(), v.clone())))
        .collect()
}

/// KEYS: dlq, events, stats, record_types. ARGV: letter id, record type to count ('' for
/// none), then the event's field/value pairs. Returns 1 when the letter was there (and the
/// event is queued), 0 when it was already gone (and nothing is written).
static REQUEUE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
redis.call('HINCRBY', KEYS[3], 'replayed', 1)
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[4], ARGV[2], 1) end
return 1
",
    )
});

/// KEYS: dlq, stats. ARGV: letter ids. Returns how many were deleted.
static DELETE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local n = redis.call('XDEL', KEYS[1], unpack(ARGV))
if n > 0 then redis.call('HINCRBY', KEYS[2], 'purged', n) end
return n
",
    )
});

impl Queue {
    /// Up to `limit` letters, newest first, only those of `stage` when given.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_newest(&self, limit: usize, stage: Option<&str>) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut end = "+".to_string();
        while out.len() < limit {
            let page = self.dlq_range("XREVRANGE", &end, "-", PAGE).await?;
            let Some(last) = page.last() else { break };
            end = format!("({}", last.stream_id);
            let short = page.len() < PAGE;
            out.extend(
                page.into_iter()
                    .filter(|e| stage.is_none_or(|s| e.get_str("stage") == Some(s))),
            );
            if short {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Up to `count` letters after `after` (from the oldest when None), oldest first.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_page(&self, after: Option<&str>, count: usize) -> Result<Vec<Entry>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        self.dlq_range("XRANGE", &start, "+", count).await
    }

    /// One letter; None when there is no letter with this id. `id` must be a full stream id
    /// (see [`letter_id`]).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_get(&self, id: &str) -> Result<Option<Entry>> {
        let page = self.dlq_range("XRANGE", id, id, 1).await?;
        Ok(page.into_iter().find(|e| e.stream_id == id))
    }

    /// Appends `fields` (an event as [`super::event_fields`] spells it) to `bp:events` and
    /// deletes the letter `letter_id`, atomically, and only when the letter is still there.
    /// `record_type` is counted in `bp:stats:record_types` (a type without rules, as capture
    /// counts it). Returns false when the letter was already gone (nothing written).
    ///
    /// # Errors
    /// When Redis fails; nothing was written then.
    pub async fn dlq_requeue(
        &self,
        letter_id: &str,
        fields: &[(String, Vec<u8>)],
        record_type: Option<&str>,
    ) -> Result<bool> {
        let mut inv = REQUEUE_SCRIPT.prepare_invoke();
        inv.key(DLQ)
            .key(EVENTS)
            .key(STATS)
            .key(RECORD_TYPES)
            .arg(letter_id)
            .arg(record_type.unwrap_or(""));
        for (k, v) in fields {
            inv.arg(k).arg(v.as_slice());
        }
        let mut c = self.conn();
        let done: i64 = inv.invoke_async(&mut c).await?;
        Ok(done == 1)
    }

    /// Deletes letters, counting them as `purged`. Returns how many were there.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn dlq_delete(&self, ids: &[String]) -> Result<usize> {
        let mut total = 0;
        let mut c = self.conn();
        for chunk in ids.chunks(1000) {
            let mut inv = DELETE_SCRIPT.prepare_invoke();
            inv.key(DLQ).key(STATS);
            for id in chunk {
                inv.arg(id);
            }
            let n: usize = inv.invoke_async(&mut c).await?;
            total += n;
        }
        Ok(total)
    }

    async fn dlq_range(&self, cmd: &str, from: &str, to: &str, count: usize) -> Result<Vec<Entry>> {
        let mut c = self.conn();
        let v: Value = redis::cmd(cmd)
            .arg(DLQ)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut c)
            .await?;
        Ok(parse_entries(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_ids_are_recognised() {
        assert_eq!(
            letter_id("1767225600000-3").as_deref(),
            Some("1767225600000-3")
        );
        assert_eq!(
            letter_id("1767225600000").as_deref(),
            Some("1767225600000-0")
        );
        for bad in ["-0", "12-", "12-3-4", "+", "-", "abc", ""] {
            assert_eq!(letter_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn original_fields_drop_the_prefix_and_keep_order() {
        let letter = Entry {
            stream_id: "1-0".into(),
            fields: vec![
                ("stage".into(), b"fast_path".to_vec()),
                ("stream_id".into(), b"9-0".to_vec()),
                ("orig_id".into(), b"cc:s:u".to_vec()),
                ("orig_p".into(), b"claude_code".to_vec()),
                ("orig_d".into(), b"{}".to_vec()),
            ],
        };
        let f = original_fields(&letter);
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["id", "p", "d"]);
        assert_eq!(f[0].1, b"cc:s:u");
        let capture = Entry {
            stream_id: "2-0".into(),
            fields: vec![("stage".into(), b"capture".to_vec())],
        };
        assert!(original_fields(&capture).is_empty());
    }
}

//! ccusage's 5-hour billing blocks over `api_responses` (formats.md §E5): the rows of
//! `report blocks`, and the current block that [`super::usage`] estimates the 5-hour window
//! from.
//!
//! Invariant: the same entries give the blocks ccusage 20.0.24 gives. Entries are the
//! de-duplicated responses in time order. A block starts at its first entry floored to the
//! UTC hour and ends 5 h later; an entry more than 5 h after the block's start or after the
//! previous entry opens the next block, and when it is the pause that is longer than 5 h a
//! gap block spans from the last entry + 5 h to the new entry. Only `is_active` (and so the
//! burn rate and projection) depends on `now`: now before the end and the last entry less
//! than 5 h old. Callers: the CLI (`report blocks`), `usage`.

use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cols, Filter, Result, Tokens, push_filter, rfc3339};
use crate::pricing::{SYNTHETIC_MODEL, pusd_to_usd};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The length of a block (ccusage's default `--session-length`).
pub const BLOCK_MS: i64 = 5 * HOUR_MS;

/// One de-duplicated API response.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub ts: i64,
    pub model: Option<String>,
    pub input: i64,
    pub output: i64,
    pub cache_creation: i64,
    pub cache_read: i64,
    pub cost_pusd: i64,
    pub priced: bool,
}

/// A block as computed, times in epoch ms.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RawBlock {
    pub start: i64,
    pub end: i64,
    /// Times of the first and the last entry (None for a gap).
    pub first_entry: Option<i64>,
    pub last_entry: Option<i64>,
    pub is_gap: bool,
    pub is_active: bool,
    pub entries: i64,
    pub tokens: Tokens,
    pub cost_pusd: i64,
    pub unpriced: i64,
    /// Models in the order they first appear, `<synthetic>` left out.
    pub models: Vec<String>,
}

/// Tokens and cost per unit of time between a window's first and last entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BurnRate {
    /// All tokens (cache reads and writes included) per minute.
    pub tokens_per_minute: f64,
    /// Input + output tokens per minute.
    pub non_cache_tokens_per_minute: f64,
    pub cost_per_hour: f64,
}

/// The burn rate of a span of entries: None when it has no length (one entry, or all at
/// the same instant), as in ccusage.
pub fn burn_rate(
    first: i64,
    last: i64,
    tokens: i64,
    non_cache: i64,
    cost_pusd: i64,
) -> Option<BurnRate> {
    let minutes = (last - first) as f64 / MINUTE_MS as f64;
    (minutes > 0.0).then(|| BurnRate {
        tokens_per_minute: tokens as f64 / minutes,
        non_cache_tokens_per_minute: non_cache as f64 / minutes,
        cost_per_hour: pusd_to_usd(cost_pusd) / minutes * 60.0,
    })
}

/// Where the active block ends up if its burn rate holds until its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Projection {
    pub tokens: i64,
    pub cost_usd: f64,
    /// Whole minutes left until the block ends.
    pub remaining_minutes: i64,
}

impl RawBlock {
    fn open(start: i64) -> RawBlock {
        RawBlock {
            start,
            end: start + BLOCK_MS,
            ..RawBlock::default()
        }
    }

    fn gap(last_entry: i64, next_entry: i64) -> RawBlock {
        RawBlock {
            start: last_entry + BLOCK_MS,
            end: next_entry,
            is_gap: true,
            ..RawBlock::default()
        }
    }

    fn add(&mut self, e: &Entry) {
        self.first_entry.get_or_insert(e.ts);
        self.last_entry = Some(e.ts);
        self.entries += 1;
        let t = &mut self.tokens;
        t.input += e.input;
        t.output += e.output;
        t.cache_creation += e.cache_creation;
        t.cache_read += e.cache_read;
        t.total += e.input + e.output + e.cache_creation + e.cache_read;
        self.cost_pusd += e.cost_pusd;
        self.unpriced += i64::from(!e.priced);
        if let Some(m) = &e.model
            && m != SYNTHETIC_MODEL
            && !self.models.contains(m)
        {
            self.models.push(m.clone());
        }
    }

    fn close(mut self, now: i64) -> RawBlock {
        self.is_active = self
            .last_entry
            .is_some_and(|last| (now - last).max(0) < BLOCK_MS && now < self.end);
        self
    }

    pub fn cost_usd(&self) -> f64 {
        pusd_to_usd(self.cost_pusd)
    }

    /// Only for the active block, as in ccusage.
    pub fn burn_rate(&self) -> Option<BurnRate> {
        if !self.is_active || self.is_gap {
            return None;
        }
        burn_rate(
            self.first_entry?,
            self.last_entry?,
            self.tokens.total,
            self.tokens.input + self.tokens.output,
            self.cost_pusd,
        )
    }

    /// Only for the active block with a burn rate.
    pub fn projection(&self, now: i64) -> Option<Projection> {
        let rate = self.burn_rate()?;
        let remaining = ((self.end - now).max(0) as f64 / MINUTE_MS as f64).round();
        Some(Projection {
            tokens: (self.tokens.total as f64 + rate.tokens_per_minute * remaining).round() as i64,
            cost_usd: self.cost_usd() + rate.cost_per_hour / 60.0 * remaining,
            remaining_minutes: remaining as i64,
        })
    }

    pub fn to_block(&self, now: i64) -> Block {
        let start = rfc3339(self.start);
        Block {
            id: if self.is_gap {
                format!("gap-{start}")
            } else {
                start.clone()
            },
            start,
            end: rfc3339(self.end),
            actual_end: self.last_entry.map(rfc3339),
            is_active: self.is_active,
            is_gap: self.is_gap,
            entries: self.entries,
            tokens: self.tokens.clone(),
            cost_usd: self.cost_usd(),
            unpriced_responses: self.unpriced,
            models: self.models.clone(),
            burn_rate: self.burn_rate(),
            projection: self.projection(now),
        }
    }
}

fn floor_to_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The blocks of `entries` (sorted by time) as of `now`, gaps included, oldest first.
pub fn identify(entries: &[Entry], now: i64) -> Vec<RawBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<RawBlock> = None;
    for e in entries {
        if let Some(b) = current.take() {
            let last = b.last_entry.unwrap_or(b.start);
            let after_last = e.ts - last > BLOCK_MS;
            if e.ts - b.start > BLOCK_MS || after_last {
                blocks.push(b.close(now));
                if after_last {
                    blocks.push(RawBlock::gap(last, e.ts));
                }
            } else {
                current = Some(b);
            }
        }
        current
            .get_or_insert_with(|| RawBlock::open(floor_to_hour(e.ts)))
            .add(e);
    }
    if let Some(b) = current {
        blocks.push(b.close(now));
    }
    blocks
}

/// One block as `report blocks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Block {
    /// The start (RFC 3339), `gap-<start>` for a gap.
    pub id: String,
    /// RFC 3339, UTC: the first entry floored to the hour (a gap: last entry + 5 h).
    pub start: String,
    /// Start + 5 h (a gap: the next entry).
    pub end: String,
    /// The last entry; null for a gap.
    pub actual_end: Option<String>,
    pub is_active: bool,
    pub is_gap: bool,
    /// De-duplicated API responses in the block.
    pub entries: i64,
    pub tokens: Tokens,
    pub cost_usd: f64,
    /// Responses whose model has no known price (their cost counts as 0).
    pub unpriced_responses: i64,
    pub models: Vec<String>,
    /// Active block only.
    pub burn_rate: Option<BurnRate>,
    /// Active block only: where it ends if the burn rate holds.
    pub projection: Option<Projection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Blocks {
    /// The zone `since`/`until` dates were read in (block times are UTC).
    pub timezone: String,
    pub blocks: Vec<Block>,
}

/// The entries that pass `f`'s platform and project and start at or after `f.since`,
/// in time order.
fn load(conn: &Connection, f: &Filter) -> Result<Vec<Entry>> {
    let mut sql = String::from(
        "SELECT ts, model, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens,
                cost_pusd, priced
         FROM api_responses WHERE 1=1",
    );
    let mut args: Vec<SqlValue> = Vec::new();
    push_filter(
        &mut sql,
        &mut args,
        f,
        &Cols {
            start: "ts",
            end: "ts",
            platform: "platform",
            project: "project_path",
        },
    );
    sql.push_str(" ORDER BY ts, event_id");
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), |r| {
            Ok(Entry {
                ts: r.get(0)?,
                model: r.get(1)?,
                input: r.get(2)?,
                output: r.get(3)?,
                cache_creation: r.get(4)?,
                cache_read: r.get(5)?,
                cost_pusd: r.get(6)?,
                priced: r.get::<_, i64>(7)? != 0,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// Every block of the entries that pass `f`'s platform and project, as of `now`; `since`
/// and `until` keep the blocks that start inside them (ccusage filters by the block's start
/// date too). Blocks come from all entries either way, so a range never moves a boundary.
///
/// # Errors
/// Invalid filter or SQLite errors.
pub fn blocks(conn: &Connection, f: &Filter, tz: &super::time::Tz, now: i64) -> Result<Blocks> {
    f.check()?;
    let all = Filter {
        since: None,
        until: None,
        platform: f.platform.clone(),
        project: f.project.clone(),
    };
    let blocks = identify(&load(conn, &all)?, now)
        .iter()
        .filter(|b| f.since.is_none_or(|s| b.start >= s) && f.until.is_none_or(|u| b.start < u))
        .map(|b| b.to_block(now))
        .collect();
    Ok(Blocks {
        timezone: tz.name().to_string(),
        blocks,
    })
}

/// The block active at `now`, if any, without reading the whole history: it reads back from
/// `now` until it finds where the blocks restart (an entry more than 5 h after the one
/// before it, or the first entry of all), because from there on the blocks do not depend
/// on anything earlier. Usually one range of the `ts` index over the last day and one
/// look-up of the entry before it.
///
/// # Errors
/// SQLite errors.
pub fn current_block(
    conn: &Connection,
    now: i64,
    platform: Option<&str>,
) -> Result<Option<RawBlock>> {
    let mut lookback = DAY_MS;
    loop {
        // After 1, 4 and 16 days of uninterrupted use, read everything.
        let from = (lookback <= 16 * DAY_MS).then(|| now.saturating_sub(lookback));
        let f = Filter {
            since: from,
            until: None,
            platform: platform.map(str::to_string),
            project: None,
        };
        let entries = load(conn, &f)?;
        let Some(last) = entries.last() else {
            return Ok(None);
        };
        if now - last.ts >= BLOCK_MS {
            return Ok(None);
        }
        let restart = match (1..entries.len())
            .rev()
            .find(|&i| entries[i].ts - entries[i - 1].ts > BLOCK_MS)
        {
            Some(i) => Some(i),
            None => match from {
                None => Some(0),
                Some(from) => {
                    let before: Option<i64> = conn
                        .prepare_cached(&format!(
                            "SELECT max(ts) FROM api_responses WHERE ts < ?1{}",
                            if platform.is_some() {
                                " AND platform = ?2"
                            } else {
                                ""
                            }
                        ))?
                        .query_row(
                            params_from_iter(
                                std::iter::once(SqlValue::from(from))
                                    .chain(platform.map(|p| SqlValue::from(p.to_string()))),
                            ),
                            |r| r.get(0),
                        )?;
                    match before {
                        Some(b) if entries[0].ts - b <= BLOCK_MS => None,
                        _ => Some(0),
                    }
                }
            },
        };
        if let Some(i) = restart {
            return Ok(identify(&entries[i..], now).pop().filter(|b| b.is_active));
        }
        lookback *= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_millis()
    }

    fn entry(ts: &str, model: &str, tokens: i64, cost_pusd: i64) -> Entry {
        Entry {
            ts: ms(ts),
            model: Some(model.to_string()),
            input: tokens,
            output: 2 * tokens,
            cache_creation: 3 * tokens,
            cache_read: 4 * tokens,
            cost_pusd,
            priced: true,
        }
    }

    #[test]
    fn blocks_floor_to_the_hour_split_after_five_hours_and_insert_gaps() {
        let es = [
            entry("2026-02-10T21:17:00Z", "a", 1, 10),
            entry("2026-02-10T22:59:00Z", "b", 1, 10),
            // 5 h after the block start (21:00) but not after the last entry: a new block
            // without a gap.
            entry("2026-02-11T02:30:00Z", "a", 1, 10),
            // Exactly 5 h after the block start (02:00): the same block.
            entry("2026-02-11T07:00:00Z", "<synthetic>", 1, 0),
            // More than 5 h after the last entry: a gap, then a block.
            entry("2026-02-11T12:00:00.001Z", "c", 1, 10),
        ];
        let now = ms("2026-12-01T00:00:00Z");
        let b = identify(&es, now);
        /// (id, end, actual end, gap, entries, models)
        type Row = (String, String, Option<String>, bool, i64, Vec<String>);
        let got: Vec<Row> = b
            .iter()
            .map(|b| {
                let o = b.to_block(now);
                (o.id, o.end, o.actual_end, o.is_gap, o.entries, o.models)
            })
            .collect();
        let s = |x: &str| x.to_string();
        assert_eq!(
            got,
            vec![
                (
                    s("2026-02-10T21:00:00.000Z"),
                    s("2026-02-11T02:00:00.000Z"),
                    Some(s("2026-02-10T22:59:00.000Z")),
                    false,
                    2,
                    vec![s("a"), s("b")]
                ),
                (
                    s("2026-02-11T02:00:00.000Z"),
                    s("2026-02-11T07:00:00.000Z"),
                    Some(s("2026-02-11T07:00:00.000Z")),
                    false,
                    2,
                    vec![s("a")]
                ),
                (
                    s("gap-2026-02-11T12:00:00.000Z"),
                    s("2026-02-11T12:00:00.001Z"),
                    None,
                    true,
                    0,
                    vec![]
                ),
                (
                    s("2026-02-11T12:00:00.000Z"),
                    s("2026-02-11T17:00:00.000Z"),
                    Some(s("2026-02-11T12:00:00.001Z")),
                    false,
                    1,
                    vec![s("c")]
                ),
            ]
        );
        assert_eq!(b[0].tokens.total, 20);
        assert_eq!(b[1].cost_pusd, 10);
        assert!(b.iter().all(|b| !b.is_active && b.burn_rate().is_none()));
        assert!(identify(&[], now).is_empty());
    }

    #[test]
    fn the_active_block_has_a_burn_rate_and_a_projection() {
        let es = [
            entry("2026-02-10T21:10:00Z", "a", 100, 1_000_000_000_000),
            entry("2026-02-10T21:40:00Z", "a", 200, 2_000_000_000_000),
        ];
        // 30 minutes of use, 3000 tokens, $3: 100 tokens/min, $6/h.
        let now = ms("2026-02-10T22:00:00Z");
        let b = identify(&es, now);
        assert_eq!(b.len(), 1);
        assert!(b[0].is_active);
        let rate = b[0].burn_rate().unwrap();
        assert!((rate.tokens_per_minute - 100.0).abs() < 1e-9);
        assert!((rate.non_cache_tokens_per_minute - 30.0).abs() < 1e-9);
        assert!((rate.cost_per_hour - 6.0).abs() < 1e-9);
        // 4 h left (ends 02:00): 3000 + 240 × 100 tokens, $3 + $24.
        let p = b[0].projection(now).unwrap();
        assert_eq!(p.remaining_minutes, 240);
        assert_eq!(p.tokens, 3000 + 240 * 100);
        assert!((p.cost_usd - 27.0).abs() < 1e-9);
        // Past the end, or 5 h after the last entry: not active.
        assert!(!identify(&es, ms("2026-02-11T02:00:00Z"))[0].is_active);
        // One entry: active, but no burn rate (no duration), as in ccusage.
        let one = identify(&es[..1], now);
        assert!(
            one[0].is_active && one[0].burn_rate().is_none() && one[0].projection(now).is_none()
        );
    }

    fn store() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let c = crate::store::open_writer(&d.path().join("t.db")).unwrap();
        (d, c)
    }

    fn insert(c: &Connection, e: &Entry, platform: &str) {
        c.execute(
            "INSERT INTO api_responses (dedup_key, event_id, session_id, platform, ts, model,
               is_sidechain, has_speed, input_tokens, output_tokens, cache_creation_tokens,
               cache_read_tokens, cost_pusd, priced)
             VALUES (?1, ?1, 's', ?2, ?3, ?4, 0, 0, ?5, ?6, ?7, ?8, ?9, 1)",
            rusqlite::params![
                format!("{platform}:{}", e.ts),
                platform,
                e.ts,
                e.model,
                e.input,
                e.output,
                e.cache_creation,
                e.cache_read,
                e.cost_pusd
            ],
        )
        .unwrap();
    }

    /// The current block read backwards equals the last block of the whole history, for
    /// histories whose restart point lies inside the first day, far back (uninterrupted
    /// use for weeks) or nowhere (the first entry of all).
    #[test]
    fn current_block_equals_the_last_block_of_the_whole_history() {
        let now = ms("2026-03-01T12:00:00Z");
        let cases: Vec<Vec<i64>> = vec![
            // Use every 4 h for 40 days: no restart within 16 days.
            (0..241)
                .map(|i| now - 40 * DAY_MS + i * 4 * HOUR_MS - 30 * MINUTE_MS)
                .collect(),
            // A pause of 8 days, then every 3 h for 2 days: the restart is 2 days back.
            [now - 10 * DAY_MS]
                .into_iter()
                .chain((0..16).map(|i| now - 2 * DAY_MS + i * 3 * HOUR_MS))
                .chain([now - 10 * MINUTE_MS])
                .collect(),
            // One entry 20 minutes ago.
            vec![now - 20 * MINUTE_MS],
            // The last entry exactly 5 h ago: nothing active.
            vec![now - 6 * HOUR_MS, now - BLOCK_MS],
        ];
        for (n, ts) in cases.iter().enumerate() {
            let (_d, c) = store();
            let es: Vec<Entry> = ts
                .iter()
                .map(|&t| Entry {
                    ts: t,
                    model: Some("m".into()),
                    input: 1,
                    output: 1,
                    cache_creation: 0,
                    cache_read: 0,
                    cost_pusd: 5,
                    priced: true,
                })
                .collect();
            for e in &es {
                insert(&c, e, "claude_code");
            }
            // Another platform's entries never count.
            insert(
                &c,
                &Entry {
                    ts: now - MINUTE_MS,
                    ..es[0].clone()
                },
                "cursor",
            );
            let whole = identify(&es, now).pop().filter(|b| b.is_active);
            let got = current_block(&c, now, Some("claude_code")).unwrap();
            assert_eq!(got, whole, "case {n}");
            if n < 3 {
                assert!(got.is_some(), "case {n} has an active block");
            }
        }
    }

    #[test]
    fn report_filters_by_block_start_and_platform() {
        let (_d, c) = store();
        for (ts, p) in [
            ("2026-02-10T21:17:00Z", "claude_code"),
            ("2026-02-12T10:00:00Z", "claude_code"),
            ("2026-02-12T11:00:00Z", "cursor"),
        ] {
            insert(&c, &entry(ts, "m", 1, 1), p);
        }
        let tz = super::super::time::Tz::parse(Some("UTC")).unwrap();
        let now = ms("2026-12-01T00:00:00Z");
        let all = blocks(&c, &Filter::default(), &tz, now).unwrap();
        assert_eq!(all.blocks.len(), 3, "block, gap, block");
        assert_eq!(all.blocks[2].entries, 2);
        let f = Filter::parse(
            &tz,
            Some("2026-02-11"),
            None,
            Some("claude_code".into()),
            None,
        )
        .unwrap();
        let some = blocks(&c, &f, &tz, now).unwrap();
        let ids: Vec<&str> = some.blocks.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(
            ids,
            ["gap-2026-02-11T02:17:00.000Z", "2026-02-12T10:00:00.000Z"]
        );
        assert_eq!(some.blocks[1].entries, 1);
    }
}

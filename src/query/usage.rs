//! The Claude plan's usage windows — the current 5-hour block and the 7-day window — and
//! the one line `blueplane statusline` prints.
//!
//! A window is `official` when a status-line sample in `usage_samples` still holds for it
//! (the latest sample whose reset time is ahead of now: Claude Code's own used percentage and
//! reset time), else an `estimate` from the stored API responses: the active 5-hour block
//! (`blocks`) and the rolling last 7 days. Used tokens and cost are always blueplane's own
//! figures. Only `claude_code` responses count: the windows are Claude's.
//!
//! Invariant: cheap and read-only, because the status line runs on every refresh: each
//! figure is one query on an index (`api_responses_ts`, `usage_samples_ts`), nothing needs
//! Redis, and the status line still prints what its JSON holds without a database.
//! Callers: the MCP tool `get_usage_window`, the CLI's `statusline`.

use rusqlite::{Connection, OptionalExtension};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Result;
use super::blocks::{self, BLOCK_MS, BurnRate, HOUR_MS, MINUTE_MS, burn_rate};
use super::rfc3339;
use super::time::Tz;
use crate::pricing::pusd_to_usd;

/// The length of the weekly window.
pub const SEVEN_DAYS_MS: i64 = 7 * 24 * HOUR_MS;
/// The platform whose plan the windows belong to.
const PLATFORM: &str = "claude_code";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageWindow {
    /// `official` if either window is (see each), else `estimate`.
    pub source: String,
    /// The current 5-hour window.
    pub five_hour: Window,
    /// The 7-day window.
    pub seven_day: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Window {
    /// `official`: from a current status-line sample; `estimate`: from stored responses.
    pub source: String,
    /// Official only: seconds since that sample was taken.
    pub sample_age_s: Option<i64>,
    /// Official only: percentage of the plan's limit used.
    pub used_pct: Option<f64>,
    /// RFC 3339; null without an active block.
    pub start: Option<String>,
    /// RFC 3339; null for the 7-day estimate and without an active block.
    pub resets_at: Option<String>,
    /// All tokens (cache included) of the API responses in the window so far.
    pub tokens: i64,
    /// Their cost in USD (blueplane's prices).
    pub cost_usd: f64,
    /// Between the window's first and last response; null with fewer than two, and for the
    /// rolling 7-day estimate.
    pub burn_rate: Option<BurnRate>,
    /// At the reset time, if the burn rate holds.
    pub projection: Option<WindowProjection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowProjection {
    pub tokens: i64,
    pub cost_usd: f64,
    /// Official only: the used percentage grown in proportion to the cost.
    pub used_pct: Option<f64>,
    /// Whole minutes until the reset.
    pub remaining_minutes: i64,
}

/// Which `usage_samples` columns hold a window, and how long it is.
#[derive(Debug, Clone, Copy)]
enum Kind {
    FiveHour,
    SevenDay,
}

impl Kind {
    fn len_ms(self) -> i64 {
        match self {
            Kind::FiveHour => BLOCK_MS,
            Kind::SevenDay => SEVEN_DAYS_MS,
        }
    }

    fn sample_sql(self) -> &'static str {
        match self {
            Kind::FiveHour => {
                "SELECT ts, five_hour_pct, five_hour_resets_at FROM usage_samples
                 WHERE five_hour_pct IS NOT NULL AND five_hour_resets_at > ?1
                 ORDER BY ts DESC LIMIT 1"
            }
            Kind::SevenDay => {
                "SELECT ts, seven_day_pct, seven_day_resets_at FROM usage_samples
                 WHERE seven_day_pct IS NOT NULL AND seven_day_resets_at > ?1
                 ORDER BY ts DESC LIMIT 1"
            }
        }
    }
}

/// (sample time, used %, reset time) of the current sample of a window.
fn current_sample(conn: &Connection, kind: Kind, now: i64) -> Result<Option<(i64, f64, i64)>> {
    Ok(conn
        .prepare_cached(kind.sample_sql())?
        .query_row([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// The responses of `[from, to]`: (count, first, last, tokens, non-cache tokens, pUSD).
struct Span {
    responses: i64,
    first: Option<i64>,
    last: Option<i64>,
    tokens: i64,
    non_cache: i64,
    cost_pusd: i64,
}

fn span(conn: &Connection, from: i64, to: i64) -> Result<Span> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*), min(ts), max(ts),
                    coalesce(sum(input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens), 0),
                    coalesce(sum(input_tokens + output_tokens), 0), coalesce(sum(cost_pusd), 0)
             FROM api_responses WHERE ts >= ?1 AND ts <= ?2 AND platform = ?3",
        )?
        .query_row(rusqlite::params![from, to, PLATFORM], |r| {
            Ok(Span {
                responses: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
                tokens: r.get(3)?,
                non_cache: r.get(4)?,
                cost_pusd: r.get(5)?,
            })
        })?)
}

fn official(
    conn: &Connection,
    kind: Kind,
    now: i64,
    (ts, pct, resets): (i64, f64, i64),
) -> Result<Window> {
    let start = resets - kind.len_ms();
    let s = span(conn, start, now)?;
    let rate = match (s.first, s.last) {
        (Some(a), Some(b)) if s.responses > 1 => {
            burn_rate(a, b, s.tokens, s.non_cache, s.cost_pusd)
        }
        _ => None,
    };
    let cost = pusd_to_usd(s.cost_pusd);
    let projection = rate.as_ref().map(|r| {
        let remaining = ((resets - now).max(0) as f64 / MINUTE_MS as f64).round();
        let cost_then = cost + r.cost_per_hour / 60.0 * remaining;
        WindowProjection {
            tokens: (s.tokens as f64 + r.tokens_per_minute * remaining).round() as i64,
            cost_usd: cost_then,
            used_pct: (cost > 0.0).then(|| pct * cost_then / cost),
            remaining_minutes: remaining as i64,
        }
    });
    Ok(Window {
        source: "official".into(),
        sample_age_s: Some((now - ts).max(0) / 1000),
        used_pct: Some(pct),
        start: Some(rfc3339(start)),
        resets_at: Some(rfc3339(resets)),
        tokens: s.tokens,
        cost_usd: cost,
        burn_rate: rate,
        projection,
    })
}

fn estimated_five_hour(conn: &Connection, now: i64) -> Result<Window> {
    let b = blocks::current_block(conn, now, Some(PLATFORM))?;
    Ok(match b {
        Some(b) => Window {
            source: "estimate".into(),
            sample_age_s: None,
            used_pct: None,
            start: Some(rfc3339(b.start)),
            resets_at: Some(rfc3339(b.end)),
            tokens: b.tokens.total,
            cost_usd: b.cost_usd(),
            burn_rate: b.burn_rate(),
            projection: b.projection(now).map(|p| WindowProjection {
                tokens: p.tokens,
                cost_usd: p.cost_usd,
                used_pct: None,
                remaining_minutes: p.remaining_minutes,
            }),
        },
        None => Window {
            source: "estimate".into(),
            sample_age_s: None,
            used_pct: None,
            start: None,
            resets_at: None,
            tokens: 0,
            cost_usd: 0.0,
            burn_rate: None,
            projection: None,
        },
    })
}

fn estimated_seven_day(conn: &Connection, now: i64) -> Result<Window> {
    let start = now - SEVEN_DAYS_MS;
    let s = span(conn, start, now)?;
    Ok(Window {
        source: "estimate".into(),
        sample_age_s: None,
        used_pct: None,
        start: Some(rfc3339(start)),
        resets_at: None,
        tokens: s.tokens,
        cost_usd: pusd_to_usd(s.cost_pusd),
        burn_rate: None,
        projection: None,
    })
}

/// The 5-hour and 7-day windows as of `now` (epoch ms).
///
/// # Errors
/// SQLite errors.
pub fn usage_window(conn: &Connection, now: i64) -> Result<UsageWindow> {
    let five_hour = match current_sample(conn, Kind::FiveHour, now)? {
        Some(s) => official(conn, Kind::FiveHour, now, s)?,
        None => estimated_five_hour(conn, now)?,
    };
    let seven_day = match current_sample(conn, Kind::SevenDay, now)? {
        Some(s) => official(conn, Kind::SevenDay, now, s)?,
        None => estimated_seven_day(conn, now)?,
    };
    let source = if five_hour.source == "official" || seven_day.source == "official" {
        "official"
    } else {
        "estimate"
    };
    Ok(UsageWindow {
        source: source.into(),
        five_hour,
        seven_day,
    })
}

/// A number, or a string holding one.
fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// (used %, reset time in epoch ms) of `rate_limits.<name>` in a status JSON. The reset time
/// is epoch seconds; a value too large for seconds is taken as milliseconds.
fn rate_limit(status: &Value, name: &str) -> Option<(f64, Option<i64>)> {
    let w = status.get("rate_limits")?.get(name)?;
    let pct = number(w.get("used_percentage"))?;
    let resets = number(w.get("resets_at")).map(|t| {
        if t.abs() < 1e11 {
            (t * 1000.0) as i64
        } else {
            t as i64
        }
    });
    Some((pct, resets))
}

fn usd(v: f64) -> String {
    format!("${v:.2}")
}

/// The cost of today's responses (all platforms), in pUSD.
fn today_pusd(conn: &Connection, now: i64, tz: &Tz) -> Result<i64> {
    let Some((from, to)) = tz.day_span(now) else {
        return Ok(0);
    };
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(cost_pusd), 0) FROM api_responses WHERE ts >= ?1 AND ts < ?2",
        )?
        .query_row([from, to], |r| r.get(0))?)
}

/// The status line: one compact line from Claude Code's status JSON (formats.md §B4 plus
/// `rate_limits`) and the store, e.g.
/// `bp $4.12 today · session $0.84 · 5h 23% (resets 14:05) · 7d 41%`.
///
/// Today's cost is blueplane's (the local day in `tz`); the session's is Claude Code's own
/// `cost.total_cost_usd`; the windows are `rate_limits` when the JSON has them, else the
/// 5-hour block estimated from the store (`5h $1.20 est $3.10/h (ends 14:05)`). Without a
/// database (`conn` None) or when a query fails, the line has what the JSON gives. At most
/// two small indexed queries without `rate_limits`, one with them.
pub fn statusline_text(conn: Option<&Connection>, status: &Value, now_ms: i64, tz: &Tz) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(c) = conn {
        match today_pusd(c, now_ms, tz) {
            Ok(p) => parts.push(format!("{} today", usd(pusd_to_usd(p)))),
            Err(e) => tracing::debug!(error = %e, "status line: no cost for today"),
        }
    }
    if let Some(s) = number(status.pointer("/cost/total_cost_usd")) {
        parts.push(format!("session {}", usd(s)));
    }
    match rate_limit(status, "five_hour") {
        Some((pct, resets)) => {
            let mut s = format!("5h {pct:.0}%");
            if let Some(r) = resets {
                s.push_str(&format!(" (resets {})", tz.format(r, "%H:%M")));
            }
            parts.push(s);
        }
        None => {
            if let Some(c) = conn {
                match blocks::current_block(c, now_ms, Some(PLATFORM)) {
                    Ok(Some(b)) => {
                        let mut s = format!("5h {} est", usd(b.cost_usd()));
                        if let Some(r) = b.burn_rate() {
                            s.push_str(&format!(" {}/h", usd(r.cost_per_hour)));
                        }
                        s.push_str(&format!(" (ends {})", tz.format(b.end, "%H:%M")));
                        parts.push(s);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "status line: no 5-hour block"),
                }
            }
        }
    }
    if let Some((pct, _)) = rate_limit(status, "seven_day") {
        parts.push(format!("7d {pct:.0}%"));
    }
    if parts.is_empty() {
        "bp".to_string()
    } else {
        format!("bp {}", parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_780_000_000_000; // 2026-05-28T20:26:40Z

    fn store() -> (tempfile::TempDir, Connection) {
        let d = tempfile::tempdir().unwrap();
        let c = crate::store::open_writer(&d.path().join("t.db")).unwrap();
        (d, c)
    }

    /// A response `ago` ms before NOW with `tokens` input tokens costing `usd`.
    fn response(c: &Connection, ago: i64, tokens: i64, usd: f64, platform: &str) {
        c.execute(
            "INSERT INTO api_responses (dedup_key, event_id, session_id, platform, ts, model,
               is_sidechain, has_speed, input_tokens, output_tokens, cache_creation_tokens,
               cache_read_tokens, cost_pusd, priced)
             VALUES (?1, ?1, 's', ?2, ?3, 'claude-sonnet-4-5', 0, 0, ?4, 0, 0, 0, ?5, 1)",
            rusqlite::params![
                format!("{platform}:{ago}"),
                platform,
                NOW - ago,
                tokens,
                (usd * 1e12).round() as i64
            ],
        )
        .unwrap();
    }

    fn sample(
        c: &Connection,
        id: &str,
        ago: i64,
        five: Option<(f64, i64)>,
        seven: Option<(f64, i64)>,
    ) {
        c.execute(
            "INSERT INTO usage_samples VALUES (?1, 's', ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![
                id,
                NOW - ago,
                five.map(|f| f.0),
                five.map(|f| NOW + f.1),
                seven.map(|f| f.0),
                seven.map(|f| NOW + f.1)
            ],
        )
        .unwrap();
    }

    fn reader(d: &tempfile::TempDir) -> Connection {
        crate::store::open_reader(&d.path().join("t.db")).unwrap()
    }

    #[test]
    fn estimates_come_from_the_active_block_and_the_last_seven_days() {
        let (d, c) = store();
        response(&c, 8 * 24 * HOUR_MS, 1000, 9.0, "claude_code"); // older than 7 days
        response(&c, 3 * 24 * HOUR_MS, 100, 1.0, "claude_code");
        response(&c, 90 * MINUTE_MS, 60, 0.5, "claude_code");
        response(&c, 30 * MINUTE_MS, 60, 0.5, "claude_code");
        response(&c, 10 * MINUTE_MS, 5000, 50.0, "cursor"); // not Claude's plan
        let r = reader(&d);
        let w = usage_window(&r, NOW).unwrap();
        assert_eq!(w.source, "estimate");
        let f = &w.five_hour;
        assert_eq!(
            (f.source.as_str(), f.tokens, f.used_pct),
            ("estimate", 120, None)
        );
        assert!((f.cost_usd - 1.0).abs() < 1e-9);
        // The block starts at the first entry's hour (18:56:40 -> 18:00) and lasts 5 h.
        assert_eq!(f.start.as_deref(), Some("2026-05-28T18:00:00.000Z"));
        assert_eq!(f.resets_at.as_deref(), Some("2026-05-28T23:00:00.000Z"));
        // 120 tokens and $1 in 60 minutes.
        let rate = f.burn_rate.as_ref().unwrap();
        assert!((rate.tokens_per_minute - 2.0).abs() < 1e-9);
        assert!((rate.cost_per_hour - 1.0).abs() < 1e-9);
        let p = f.projection.as_ref().unwrap();
        assert_eq!(p.remaining_minutes, 153); // 20:26:40 -> 23:00, rounded
        assert_eq!(p.tokens, 120 + 2 * 153);
        let s = &w.seven_day;
        assert_eq!(
            (s.source.as_str(), s.tokens, s.resets_at.as_deref()),
            ("estimate", 220, None)
        );
        assert!((s.cost_usd - 2.0).abs() < 1e-9);
        assert!(s.burn_rate.is_none() && s.sample_age_s.is_none());
    }

    #[test]
    fn the_latest_sample_with_a_reset_ahead_is_official() {
        let (d, c) = store();
        response(&c, 4 * HOUR_MS, 100, 1.0, "claude_code"); // before the official window
        response(&c, 2 * HOUR_MS, 10, 0.25, "claude_code");
        response(&c, HOUR_MS, 20, 0.25, "claude_code");
        // An old sample with both windows ahead; a newer one whose 5-hour reset is past.
        sample(
            &c,
            "a",
            120_000,
            Some((23.5, 2 * HOUR_MS)),
            Some((41.0, 3 * 24 * HOUR_MS)),
        );
        sample(
            &c,
            "b",
            10_000,
            Some((90.0, -1)),
            Some((50.0, 3 * 24 * HOUR_MS)),
        );
        // A newer sample without figures is no sample of either window.
        sample(&c, "c", 1_000, None, None);
        let r = reader(&d);
        let w = usage_window(&r, NOW).unwrap();
        assert_eq!(w.source, "official");
        let f = &w.five_hour;
        assert_eq!(
            (f.source.as_str(), f.used_pct, f.sample_age_s),
            ("official", Some(23.5), Some(120))
        );
        assert_eq!(
            f.resets_at.as_deref(),
            Some(rfc3339(NOW + 2 * HOUR_MS)).as_deref()
        );
        // The window is [reset - 5 h, now]: the responses 2 h and 1 h ago.
        assert_eq!(
            f.start.as_deref(),
            Some(rfc3339(NOW - 3 * HOUR_MS)).as_deref()
        );
        assert_eq!(f.tokens, 30);
        assert!((f.cost_usd - 0.5).abs() < 1e-9);
        // $0.50 in the hour between them: $0.50/h for 120 more minutes makes $1.50 at the
        // reset, three times the cost so far.
        let p = f.projection.as_ref().unwrap();
        assert_eq!(p.remaining_minutes, 120);
        assert!((p.cost_usd - 1.5).abs() < 1e-9);
        assert!((p.used_pct.unwrap() - 70.5).abs() < 1e-9);
        let s = &w.seven_day;
        assert_eq!((s.used_pct, s.sample_age_s), (Some(50.0), Some(10)));
        assert_eq!(s.tokens, 130);
        // All samples past: estimates again.
        let later = usage_window(&r, NOW + 4 * 24 * HOUR_MS).unwrap();
        assert_eq!(
            (
                later.source.as_str(),
                later.five_hour.source.as_str(),
                later.seven_day.source.as_str()
            ),
            ("estimate", "estimate", "estimate")
        );
    }

    #[test]
    fn statusline_from_rate_limits_and_the_store() {
        let (d, c) = store();
        let utc = Tz::parse(Some("UTC")).unwrap();
        // Today (2026-05-28 UTC): $4.00 + $0.12; yesterday: $100 (not today).
        response(&c, 30 * MINUTE_MS, 10, 4.0, "claude_code");
        response(&c, 20 * MINUTE_MS, 10, 0.12, "cursor");
        response(&c, 21 * HOUR_MS, 10, 100.0, "claude_code");
        let r = reader(&d);
        let status = json!({
            "session_id": "s",
            "cost": {"total_cost_usd": 0.8412, "total_duration_ms": 1},
            "rate_limits": {
                "five_hour": {"used_percentage": 23.4, "resets_at": (NOW + 3 * HOUR_MS) / 1000},
                "seven_day": {"used_percentage": 41, "resets_at": (NOW + 86_400_000) / 1000}
            }
        });
        assert_eq!(
            statusline_text(Some(&r), &status, NOW, &utc),
            "bp $4.12 today · session $0.84 · 5h 23% (resets 23:26) · 7d 41%"
        );
        // The reset time is shown in the given zone.
        let ktm = Tz::parse(Some("Asia/Kathmandu")).unwrap();
        assert!(
            statusline_text(Some(&r), &status, NOW, &ktm).contains("(resets 05:11)"),
            "{}",
            statusline_text(Some(&r), &status, NOW, &ktm)
        );
        // No rate_limits: the estimated block (one response: no burn rate yet).
        let plain = json!({"cost": {"total_cost_usd": 0.5}});
        assert_eq!(
            statusline_text(Some(&r), &plain, NOW, &utc),
            "bp $4.12 today · session $0.50 · 5h $4.00 est (ends 00:00)"
        );
        response(&c, 10 * MINUTE_MS, 10, 1.0, "claude_code");
        assert_eq!(
            statusline_text(Some(&r), &plain, NOW, &utc),
            "bp $5.12 today · session $0.50 · 5h $5.00 est $15.00/h (ends 00:00)"
        );
        // No database: what the JSON gives; nothing at all: just the tag.
        assert_eq!(
            statusline_text(None, &status, NOW, &utc),
            "bp session $0.84 · 5h 23% (resets 23:26) · 7d 41%"
        );
        assert_eq!(statusline_text(None, &json!({}), NOW, &utc), "bp");
        assert_eq!(statusline_text(None, &json!("garbage"), NOW, &utc), "bp");
    }

    #[test]
    fn statusline_survives_a_database_without_tables() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("empty.db");
        Connection::open(&p)
            .unwrap()
            .execute_batch("CREATE TABLE x (a)")
            .unwrap();
        let r = crate::store::open_reader(&p).unwrap();
        let utc = Tz::parse(Some("UTC")).unwrap();
        let status = json!({"cost": {"total_cost_usd": "1.5"}, "rate_limits": {"seven_day": {"used_percentage": 7.6}}});
        assert_eq!(
            statusline_text(Some(&r), &status, NOW, &utc),
            "bp session $1.50 · 7d 8%"
        );
    }
}

//! Human tables and `--json` output for the CLI.
//!
//! Everything goes through [`emit`]: a locked stdout and `writeln!`, so a reader that goes
//! away (`blueplane sessions | head -1`) ends the command with [`StdoutClosed`] instead of a
//! panic.

use std::io::{self, StdoutLock, Write};
use std::time::Duration;

use serde::Serialize;

use super::BackfillSummary;
use crate::query::blocks::Blocks;
use crate::query::status::PipelineStatus;
use crate::query::time::Tz;
use crate::query::{Metrics, SearchResult, SessionList};
use crate::queue::managed::ManagedStatus;

/// Stdout was closed by its reader (EPIPE): nothing more can be shown, and nothing is wrong.
/// `main` ends the command quietly with exit status 0 on it.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
pub struct StdoutClosed;

/// Writes through a locked stdout; a closed stdout becomes [`StdoutClosed`].
pub(super) fn emit(
    f: impl FnOnce(&mut StdoutLock<'static>) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match f(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

pub(super) fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v)?;
    emit(|out| writeln!(out, "{text}"))
}

pub fn line(s: &str) -> anyhow::Result<()> {
    emit(|out| writeln!(out, "{s}"))
}

pub(super) fn int(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

pub fn metrics(m: &Metrics, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(m);
    }
    // Estimated tokens get their own labelled column, only when there are any (Claude Code
    // reports look exactly as before).
    let estimates = m.totals.estimated_tokens.is_some();
    let est = |e: Option<i64>| -> String {
        if !estimates {
            return String::new();
        }
        match e {
            Some(n) => format!(" {:>14}", format!("~{}", int(n))),
            None => format!(" {:>14}", "-"),
        }
    };
    emit(|out| {
        writeln!(
            out,
            "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10} {:>8}{}",
            m.group_by,
            "input",
            "output",
            "cache write",
            "cache read",
            "total",
            "cost USD",
            "sessions",
            if estimates {
                format!(" {:>14}", "est. tokens*")
            } else {
                String::new()
            }
        )?;
        for r in &m.rows {
            writeln!(
                out,
                "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10.2} {:>8}{}",
                r.key,
                int(r.tokens.input),
                int(r.tokens.output),
                int(r.tokens.cache_creation),
                int(r.tokens.cache_read),
                int(r.tokens.total),
                r.cost_usd,
                r.sessions,
                est(r.estimated_tokens)
            )?;
        }
        let t = &m.totals;
        writeln!(
            out,
            "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10.2} {:>8}{}",
            "total",
            int(t.tokens.input),
            int(t.tokens.output),
            int(t.tokens.cache_creation),
            int(t.tokens.cache_read),
            int(t.tokens.total),
            t.cost_usd,
            t.sessions,
            est(t.estimated_tokens)
        )?;
        if let Some(e) = t.estimated_tokens {
            writeln!(
                out,
                "* estimated (about 4 characters per token) for Cursor turns without token counts: {} tokens, ~${:.2}; not in the totals above",
                int(e),
                t.estimated_cost_usd.unwrap_or(0.0)
            )?;
        }
        if t.unpriced_responses > 0 {
            writeln!(
                out,
                "note: {} responses are of models without a known price; their cost counts as $0",
                int(t.unpriced_responses)
            )?;
        }
        writeln!(out, "(time zone {}, from {})", m.timezone, m.source)?;
        Ok(())
    })
}

pub fn blocks(b: &Blocks, tz: &Tz, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(b);
    }
    let local = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|t| tz.format(t.timestamp_millis(), "%Y-%m-%d %H:%M"))
            .unwrap_or_default()
    };
    emit(|out| {
        writeln!(
            out,
            "{:<17} {:<18} {:>7} {:>14} {:>10}  models",
            "block start", "status", "entries", "tokens", "cost USD"
        )?;
        for k in &b.blocks {
            if k.is_gap {
                writeln!(out, "{:<17} gap until {}", local(&k.start), local(&k.end))?;
                continue;
            }
            let status = if k.is_active {
                "ACTIVE".to_string()
            } else {
                let last = k.actual_end.as_deref().map_or(String::new(), local);
                format!("last {}", last.get(11..).unwrap_or(""))
            };
            writeln!(
                out,
                "{:<17} {:<18} {:>7} {:>14} {:>10.2}  {}",
                local(&k.start),
                status,
                k.entries,
                int(k.tokens.total),
                k.cost_usd,
                k.models.join(", ")
            )?;
            if let Some(r) = &k.burn_rate {
                writeln!(
                    out,
                    "{:<17} {:<18} {:>7} {:>14} {:>10.2}  per hour ({} tokens/min)",
                    "",
                    "burn rate",
                    "",
                    "",
                    r.cost_per_hour,
                    int(r.tokens_per_minute.round() as i64)
                )?;
            }
            if let Some(p) = &k.projection {
                writeln!(
                    out,
                    "{:<17} {:<18} {:>7} {:>14} {:>10.2}  at {} ({} min left)",
                    "",
                    "projected",
                    "",
                    int(p.tokens),
                    p.cost_usd,
                    local(&k.end),
                    p.remaining_minutes
                )?;
            }
        }
        writeln!(
            out,
            "(time zone {}; blocks are 5 hours from the UTC hour)",
            b.timezone
        )?;
        Ok(())
    })
}

pub fn sessions(l: &SessionList, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(l);
    }
    emit(|out| {
        writeln!(
            out,
            "{:<38} {:<20} {:>8} {:>7} {:>6} {:>12} {:>9}  title",
            "session", "started", "minutes", "prompts", "tools", "tokens", "cost USD"
        )?;
        for s in &l.sessions {
            writeln!(
                out,
                "{:<38} {:<20} {:>8} {:>7} {:>6} {:>12} {:>9.2}  {}",
                s.session_id,
                s.started_at.get(..19).unwrap_or(&s.started_at),
                s.duration_s / 60,
                s.user_prompts,
                s.tool_calls,
                int(s.tokens.total),
                s.cost_usd,
                s.title.as_deref().unwrap_or("")
            )?;
        }
        Ok(())
    })
}

pub fn search(r: &SearchResult, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(r);
    }
    emit(|out| {
        if let Some(n) = &r.notice {
            writeln!(out, "{n}")?;
        }
        for h in &r.hits {
            writeln!(
                out,
                "{} {} {:<9} {}",
                h.timestamp.get(..19).unwrap_or(&h.timestamp),
                h.session_id,
                h.role,
                h.snippet.replace('\n', " ")
            )?;
        }
        Ok(())
    })
}

pub fn status(s: &PipelineStatus, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    emit(|out| {
        let opt = |v: Option<i64>| v.map_or("-".to_string(), int);
        writeln!(out, "redis               {}", s.redis)?;
        writeln!(out, "sessions            {}", int(s.sessions))?;
        writeln!(out, "queue depth         {}", opt(s.queue_depth))?;
        writeln!(out, "consumer lag        {}", opt(s.consumer_lag))?;
        writeln!(out, "pending             {}", opt(s.pending))?;
        writeln!(out, "slow path backlog   {}", int(s.slow_path_backlog))?;
        writeln!(
            out,
            "dead letters        {} ({} in the last hour; see 'blueplane dlq list')",
            opt(s.dlq_size),
            opt(s.dlq_last_hour)
        )?;
        writeln!(
            out,
            "capture lease       {}",
            s.capture_lease_holder.as_deref().unwrap_or("(nobody)")
        )?;
        for (src, t) in &s.last_event_at {
            writeln!(out, "last event          {src}: {t}")?;
        }
        if let Some(f) = s.data_freshness_s {
            writeln!(out, "data freshness      {f:.1} s behind capture")?;
        }
        for (k, v) in &s.counters {
            writeln!(out, "{k:<20}{}", int(*v))?;
        }
        for (k, v) in &s.record_types {
            writeln!(
                out,
                "record type         {k}: {} lines (metadata only)",
                int(*v)
            )?;
        }
        Ok(())
    })
}

pub fn rebuilt(buckets: usize, took: Duration, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(&serde_json::json!({"buckets": buckets, "seconds": took.as_secs_f64()}));
    }
    emit(|out| {
        writeln!(
            out,
            "rebuilt {buckets} metric buckets in {:.2} s",
            took.as_secs_f64()
        )?;
        Ok(())
    })
}

pub fn redis_status(
    s: &ManagedStatus,
    external: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    emit(|out| {
        if let Some(u) = external {
            writeln!(
                out,
                "REDIS_URL is set ({u}): the managed redis-server is not used"
            )?;
        }
        writeln!(out, "running   {}", s.running)?;
        if let Some(p) = s.pid {
            writeln!(out, "pid       {p}")?;
        }
        writeln!(out, "socket    {}", s.socket.display())?;
        if let Some(m) = s.used_memory_bytes {
            writeln!(out, "memory    {} bytes", int(m as i64))?;
        }
        if let Some(a) = s.aof_enabled {
            writeln!(out, "aof       {a}")?;
        }
        if let Some(u) = s.uptime_s {
            writeln!(out, "uptime    {u} s")?;
        }
        Ok(())
    })
}

pub fn backfill(s: &BackfillSummary, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    emit(|out| {
        writeln!(
            out,
            "backfilled {} files, {} events ({} bad lines), {} sessions in {:.2} s ({:.1} MB/s, {} events/s)",
            s.files,
            int(s.events as i64),
            s.bad_lines,
            s.sessions,
            s.seconds,
            s.mb_per_s,
            int(s.events_per_s as i64)
        )?;
        Ok(())
    })
}

//! Human tables and `--json` output for the CLI.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use serde::Serialize;

use super::BackfillSummary;
use crate::query::status::PipelineStatus;
use crate::query::{Metrics, SearchResult, SessionList};
use crate::queue::managed::ManagedStatus;

fn json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub fn line(s: &str) {
    println!("{s}");
}

fn int(n: i64) -> String {
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
    println!(
        "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10} {:>8}",
        m.group_by, "input", "output", "cache write", "cache read", "total", "cost USD", "sessions"
    );
    for r in &m.rows {
        println!(
            "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10.2} {:>8}",
            r.key,
            int(r.tokens.input),
            int(r.tokens.output),
            int(r.tokens.cache_creation),
            int(r.tokens.cache_read),
            int(r.tokens.total),
            r.cost_usd,
            r.sessions
        );
    }
    let t = &m.totals;
    println!(
        "{:<40} {:>12} {:>12} {:>14} {:>14} {:>14} {:>10.2} {:>8}",
        "total",
        int(t.tokens.input),
        int(t.tokens.output),
        int(t.tokens.cache_creation),
        int(t.tokens.cache_read),
        int(t.tokens.total),
        t.cost_usd,
        t.sessions
    );
    println!("(time zone {}, from {})", m.timezone, m.source);
    Ok(())
}

pub fn sessions(l: &SessionList, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(l);
    }
    println!(
        "{:<38} {:<20} {:>8} {:>7} {:>6} {:>12} {:>9}  title",
        "session", "started", "minutes", "prompts", "tools", "tokens", "cost USD"
    );
    for s in &l.sessions {
        println!(
            "{:<38} {:<20} {:>8} {:>7} {:>6} {:>12} {:>9.2}  {}",
            s.session_id,
            s.started_at.get(..19).unwrap_or(&s.started_at),
            s.duration_s / 60,
            s.user_prompts,
            s.tool_calls,
            int(s.tokens.total),
            s.cost_usd,
            s.title.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub fn search(r: &SearchResult, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(r);
    }
    if let Some(n) = &r.notice {
        println!("{n}");
    }
    for h in &r.hits {
        println!(
            "{} {} {:<9} {}",
            h.timestamp.get(..19).unwrap_or(&h.timestamp),
            h.session_id,
            h.role,
            h.snippet.replace('\n', " ")
        );
    }
    Ok(())
}

pub fn status(s: &PipelineStatus, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    let opt = |v: Option<i64>| v.map_or("-".to_string(), int);
    println!("redis               {}", s.redis);
    println!("sessions            {}", int(s.sessions));
    println!("queue depth         {}", opt(s.queue_depth));
    println!("consumer lag        {}", opt(s.consumer_lag));
    println!("pending             {}", opt(s.pending));
    println!("slow path backlog   {}", int(s.slow_path_backlog));
    println!(
        "dead letters        {} ({} in the last hour; see 'blueplane dlq list')",
        opt(s.dlq_size),
        opt(s.dlq_last_hour)
    );
    println!(
        "capture lease       {}",
        s.capture_lease_holder.as_deref().unwrap_or("(nobody)")
    );
    for (src, t) in &s.last_event_at {
        println!("last event          {src}: {t}");
    }
    if let Some(f) = s.data_freshness_s {
        println!("data freshness      {f:.1} s behind capture");
    }
    for (k, v) in &s.counters {
        println!("{k:<20}{}", int(*v));
    }
    for (k, v) in &s.record_types {
        println!("record type         {k}: {} lines (metadata only)", int(*v));
    }
    Ok(())
}

pub fn rebuilt(buckets: usize, took: Duration, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(&serde_json::json!({"buckets": buckets, "seconds": took.as_secs_f64()}));
    }
    println!(
        "rebuilt {buckets} metric buckets in {:.2} s",
        took.as_secs_f64()
    );
    Ok(())
}

pub fn redis_status(
    s: &ManagedStatus,
    external: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    if let Some(u) = external {
        println!("REDIS_URL is set ({u}): the managed redis-server is not used");
    }
    println!("running   {}", s.running);
    if let Some(p) = s.pid {
        println!("pid       {p}");
    }
    println!("socket    {}", s.socket.display());
    if let Some(m) = s.used_memory_bytes {
        println!("memory    {} bytes", int(m as i64));
    }
    if let Some(a) = s.aof_enabled {
        println!("aof       {a}");
    }
    if let Some(u) = s.uptime_s {
        println!("uptime    {u} s");
    }
    Ok(())
}

pub fn backfill(s: &BackfillSummary, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return json(s);
    }
    println!(
        "backfilled {} files, {} events ({} bad lines), {} sessions in {:.2} s ({:.1} MB/s, {} events/s)",
        s.files,
        int(s.events as i64),
        s.bad_lines,
        s.sessions,
        s.seconds,
        s.mb_per_s,
        int(s.events_per_s as i64)
    );
    Ok(())
}

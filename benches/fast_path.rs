//! Fast-path micro-benchmark (BRIEF §7: ≤ 2 ms p95 to commit a batch of 100 events).
//!
//! Times `fast_path::insert_batch` (zlib compression with a reused
//! `store::codec::Compressor`, one IMMEDIATE transaction of `INSERT OR IGNORE`, commit; WAL,
//! `synchronous=NORMAL`, as `store::open_writer` sets them) on a file database in a temp dir:
//! 2000 batches of 100 realistic Claude Code payloads (~1.5 KB of compact JSON each, every id
//! unique), after 50 warm-up batches. The table grows to 205,000 rows while it runs, so WAL
//! auto-checkpoints and index growth are part of the figures.
//!
//! As shipped, the fast path's connection never checkpoints the WAL itself
//! (`store::no_autocheckpoint`; the slow path's connection does) and compresses against the
//! preset dictionary (`store::codec`), the consecutive records of one transcript together in
//! payload blocks (`store::blocks`, 0008). Side by side, alternating (after, before, after,
//! before), each on its own fresh database: "before" is the row model before migrations 0007
//! and 0008 (a store created at schema version 6, the text columns, the UNIQUE text id and one
//! stream per payload, written by a copy of that version's insert; the same compressor and
//! events). Then the same run with
//! SQLite's automatic checkpoint inside the commit, and compression alone: the shipped
//! codec, no dictionary, a fresh encoder per payload, and the dictionary at other levels.
//!
//! Run: `cargo bench --bench fast_path` (env `BATCHES`, `BATCH_SIZE` override the counts).
//! Plain `std::time::Instant`, no harness: it prints one table and a JSON line.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use blueplane::event::{Event, Platform, Source};
use blueplane::store::codec::{CURRENT, Compressor, DICTIONARIES, LEVEL};

const WORDS: &[&str] = &[
    "phoenix",
    "server",
    "migration",
    "database",
    "schema",
    "query",
    "index",
    "cache",
    "redis",
    "stream",
    "consumer",
    "backfill",
    "transcript",
    "session",
    "token",
    "latency",
    "throughput",
    "tokio",
    "runtime",
    "websocket",
    "liveview",
    "component",
    "template",
    "changeset",
    "ecto",
    "transaction",
    "rollback",
    "commit",
    "fixture",
    "coverage",
    "retry",
    "timeout",
    "tracing",
    "metric",
    "histogram",
    "docker",
    "compose",
    "terminal",
    "xterm",
    "tmux",
    "scroll",
    "parser",
    "refactor",
    "module",
    "function",
    "serialize",
    "config",
    "endpoint",
    "router",
    "sqlite",
    "compression",
    "pipeline",
    "watcher",
    "offset",
    "elixir",
    "rust",
    "python",
    "exporter",
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0x3fff | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
    fn words(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
        }
        s
    }
}

/// One event shaped like a real transcript line: alternates assistant text/tool_use lines,
/// tool results and progress lines, ~1.5 KB of compact JSON.
fn event(rng: &mut Rng, session: &str, source: &str, n: u64, ts: i64) -> Event {
    let uuid = rng.uuid();
    let parent = rng.uuid();
    let stamp = chrono::DateTime::from_timestamp_millis(ts)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default();
    let common = format!(
        r#""parentUuid":"{parent}","isSidechain":false,"userType":"external","cwd":"/home/dev/projects/billing-api","sessionId":"{session}","version":"2.1.39","gitBranch":"main","slug":"radiant-floating-music""#
    );
    let (kind, payload) = match n % 4 {
        0 | 1 => {
            let text = rng.words(95);
            (
                "assistant",
                format!(
                    r#"{{{common},"message":{{"model":"claude-opus-4-6","id":"msg_01{:022x}","type":"message","role":"assistant","content":[{{"type":"text","text":"{text}"}}],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":3,"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":{}}},"output_tokens":{},"service_tier":"standard","inference_geo":"not_available"}}}},"requestId":"req_011C{:016x}{:02x}","type":"assistant","uuid":"{uuid}","timestamp":"{stamp}"}}"#,
                    rng.next() as u128,
                    rng.below(20_000),
                    rng.below(200_000),
                    rng.below(20_000),
                    rng.below(2_000),
                    rng.next(),
                    rng.below(256)
                ),
            )
        }
        2 => {
            let out = rng.words(110);
            (
                "user",
                format!(
                    r#"{{{common},"type":"user","message":{{"role":"user","content":[{{"tool_use_id":"toolu_01{:022x}","type":"tool_result","content":"[content dropped: {} bytes, {} lines]","is_error":false}}]}},"uuid":"{uuid}","timestamp":"{stamp}","toolUseResult":{{"stdout_summary":"{out}","stderr":"","interrupted":false,"isImage":false,"noOutputExpected":false}},"sourceToolAssistantUUID":"{parent}"}}"#,
                    rng.next(),
                    rng.below(40_000),
                    rng.below(900)
                ),
            )
        }
        _ => {
            let cmd = rng.words(70);
            (
                "progress",
                format!(
                    r#"{{{common},"type":"progress","data":{{"type":"hook_progress","hookEvent":"PreToolUse","hookName":"PreToolUse:Bash","command":"{cmd}"}},"toolUseID":"toolu_01{:022x}","parentToolUseID":"toolu_01{:022x}","uuid":"{uuid}","timestamp":"{stamp}"}}"#,
                    n, n
                ),
            )
        }
    };
    Event {
        id: format!("cc:{session}:{uuid}"),
        platform: Platform::ClaudeCode,
        kind: kind.to_string(),
        session_id: Some(session.to_string()),
        timestamp_ms: Some(ts),
        source: Source::FileLine {
            path: source.to_string(),
            offset: n * 1500,
        },
        payload,
    }
}

/// A fresh zlib encoder per payload (what the fast path did before `store::codec`).
fn compress_fresh(level: u32, data: &[u8]) -> usize {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(level));
    let _ = enc.write_all(data);
    enc.finish().map(|v| v.len()).unwrap_or(0)
}

/// One reused `flate2::Compress`, reset per payload, at any level.
fn compress_reused(c: &mut flate2::Compress, out: &mut Vec<u8>, data: &[u8]) -> usize {
    c.reset();
    out.clear();
    out.reserve(data.len() + 64);
    let _ = c.compress_vec(data, out, flate2::FlushCompress::Finish);
    out.len()
}

/// Per-batch time of `f` over `batches`, sorted.
fn time_batches(
    batches: &[Vec<Event>],
    mut f: impl FnMut(&[Event]) -> usize,
) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(batches.len());
    let mut bytes = 0;
    for b in batches {
        let t = Instant::now();
        bytes += f(b);
        times.push(t.elapsed());
    }
    times.sort();
    (times, bytes)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic batches of realistic events; a new session every 400 events.
struct Batches {
    rng: Rng,
    ts: i64,
    n: u64,
    session: String,
    source: String,
    size: usize,
}

impl Batches {
    fn new(seed: u64, size: usize) -> Batches {
        Batches {
            rng: Rng(seed),
            ts: 1_788_000_000_000,
            n: 0,
            session: String::new(),
            source: String::new(),
            size,
        }
    }

    fn next_batch(&mut self) -> Vec<Event> {
        (0..self.size)
            .map(|_| {
                if self.n.is_multiple_of(400) {
                    self.session = self.rng.uuid();
                    self.source = format!(
                        "/home/dev/.claude/projects/-home-dev-projects-billing-api/{}.jsonl",
                        self.session
                    );
                }
                self.n += 1;
                self.ts += 700 + self.rng.below(4000) as i64;
                event(&mut self.rng, &self.session, &self.source, self.n, self.ts)
            })
            .collect()
    }
}

struct Phase {
    times: Vec<Duration>,
    total: Duration,
    payload_bytes: usize,
    rows: i64,
    db_bytes: u64,
    wal_bytes: u64,
    avg_payload: usize,
}

/// What a phase runs.
#[derive(Clone, Copy, PartialEq)]
enum Variant {
    /// As shipped.
    Shipped,
    /// Before migration 0007: schema version 6, its text row and insert.
    Before,
    /// As shipped, but SQLite's automatic WAL checkpoint inside the commit.
    CheckpointInCommit,
}

/// The fast path's insert of schema version 6 (before migration 0007), as it was.
fn insert_batch_v6(
    conn: &mut rusqlite::Connection,
    zlib: &mut Compressor,
    events: &[Event],
) -> Result<(usize, i64), rusqlite::Error> {
    let now = 1_788_000_000_000_i64;
    let compressed: Vec<Vec<u8>> = events
        .iter()
        .map(|e| zlib.compress(e.payload.as_bytes()))
        .collect();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut inserted = 0;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO raw_traces
               (id, platform, kind, session_id, ts, source_kind, source, source_offset,
                source_key, source_version, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for (e, z) in events.iter().zip(&compressed) {
            inserted += stmt.execute(rusqlite::params![
                e.id,
                e.platform.as_str(),
                e.kind,
                e.session_id,
                e.timestamp_ms,
                e.source.kind(),
                e.source.location(),
                Some(e.source.position()),
                e.source.key(),
                None::<i64>,
                z,
                now
            ])?;
        }
    }
    let max_seq: i64 = tx.query_row("SELECT coalesce(max(seq), 0) FROM raw_traces", [], |r| {
        r.get(0)
    })?;
    if inserted > 0 {
        tx.execute(
            "INSERT INTO pipeline_state (key, value) VALUES ('fast_path_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [max_seq],
        )?;
    }
    tx.commit()?;
    Ok((inserted, max_seq))
}

/// Commits `warmup + batches` batches through `fast_path::insert_batch` on a fresh file
/// database.
fn phase(batches: usize, size: usize, warmup: usize, variant: Variant) -> Phase {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("telemetry.db");
    let mut conn = if variant == Variant::Before {
        let c = blueplane::store::create_at_version(&db, 6).expect("v6 db");
        c.execute_batch("PRAGMA synchronous=NORMAL")
            .expect("pragmas");
        c
    } else {
        blueplane::store::open_writer(&db).expect("open writer")
    };
    if variant != Variant::CheckpointInCommit {
        blueplane::store::no_autocheckpoint(&conn).expect("fast path pragmas");
    }
    let mut zlib = Compressor::default();
    let mut batches_gen = Batches::new(0x9e37_79b9_7f4a_7c15, size);
    let mut times = Vec::with_capacity(batches);
    let mut payload_bytes = 0usize;
    let mut payload_events = 0usize;
    for i in 0..warmup + batches {
        let events = batches_gen.next_batch();
        let bytes: usize = events.iter().map(|e| e.payload.len()).sum();
        let t = Instant::now();
        let (inserted, _) = if variant == Variant::Before {
            insert_batch_v6(&mut conn, &mut zlib, &events)
        } else {
            blueplane::fast_path::insert_batch(&mut conn, &mut zlib, &events)
        }
        .expect("insert batch");
        let el = t.elapsed();
        assert_eq!(inserted, events.len(), "every event id is new");
        if i >= warmup {
            times.push(el);
            payload_bytes += bytes;
            payload_events += events.len();
        }
    }
    let total: Duration = times.iter().sum();
    times.sort();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
        .expect("count");
    let size_of = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    Phase {
        times,
        total,
        payload_bytes,
        rows,
        db_bytes: size_of(&db),
        wal_bytes: size_of(&dir.path().join("telemetry.db-wal")),
        avg_payload: payload_bytes / payload_events.max(1),
    }
}

fn report(label: &str, p: &Phase, size: usize) {
    let t = &p.times;
    if !label.is_empty() {
        println!("{label}");
    }
    println!("  p50   {:8.3} ms", ms(pct(t, 0.50)));
    println!("  p95   {:8.3} ms   (target <= 2 ms)", ms(pct(t, 0.95)));
    println!("  p99   {:8.3} ms", ms(pct(t, 0.99)));
    println!("  max   {:8.3} ms", ms(t[t.len() - 1]));
    println!("  mean  {:8.3} ms", ms(p.total) / t.len() as f64);
    let slow = t
        .iter()
        .filter(|d| ms(**d) > 2.0 * ms(pct(t, 0.50)))
        .count();
    println!(
        "  batches slower than 2x p50: {slow} of {} ({:.1}%)",
        t.len(),
        100.0 * slow as f64 / t.len() as f64
    );
    println!(
        "  throughput {:.0} events/s, {:.1} MB/s of payload; {} rows, db {:.1} MB, wal {:.1} MB",
        (t.len() * size) as f64 / p.total.as_secs_f64(),
        p.payload_bytes as f64 / 1e6 / p.total.as_secs_f64(),
        p.rows,
        p.db_bytes as f64 / 1e6,
        p.wal_bytes as f64 / 1e6
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; arguments are ignored.
    let batches = env_or("BATCHES", 2000);
    let size = env_or("BATCH_SIZE", 100);
    let rounds = env_or("ROUNDS", 2);
    let warmup = 50;

    // Side by side: after, before, after, before, ...
    let mut after = Vec::new();
    let mut before = Vec::new();
    for _ in 0..rounds {
        after.push(phase(batches, size, warmup, Variant::Shipped));
        before.push(phase(batches, size, warmup, Variant::Before));
    }
    println!(
        "fast_path::insert_batch: {batches} batches of {size} events (+{warmup} warm-up) per run, avg payload {} B, {rounds} runs each, alternating",
        after[0].avg_payload
    );
    for (i, (a, b)) in after.iter().zip(&before).enumerate() {
        report(
            &format!(
                "run {}: as shipped (dictionary {} B, zlib level {LEVEL}, compact rows of 0007, payload blocks of 0008)",
                i + 1,
                DICTIONARIES[CURRENT].len()
            ),
            a,
            size,
        );
        report(
            &format!(
                "run {}: before (schema version 6: text columns, UNIQUE text id)",
                i + 1
            ),
            b,
            size,
        );
    }
    let p95 = |v: &[Phase]| {
        median(
            &mut v
                .iter()
                .map(|p| ms(pct(&p.times, 0.95)))
                .collect::<Vec<_>>(),
        )
    };
    let p50 = |v: &[Phase]| {
        median(
            &mut v
                .iter()
                .map(|p| ms(pct(&p.times, 0.50)))
                .collect::<Vec<_>>(),
        )
    };
    let db = |v: &[Phase]| {
        median(
            &mut v
                .iter()
                .map(|p| p.db_bytes as f64 + p.wal_bytes as f64)
                .collect::<Vec<_>>(),
        )
    };
    println!(
        "median of runs: p50 {:.3} -> {:.3} ms, p95 {:.3} -> {:.3} ms, db+wal {:.1} -> {:.1} MB (before -> after)",
        p50(&before),
        p50(&after),
        p95(&before),
        p95(&after),
        db(&before) / 1e6,
        db(&after) / 1e6
    );

    // Comparison: SQLite's automatic WAL checkpoint inside the commit (a checkpoint copies
    // the WAL into the database and fsyncs it in the commit that crosses 1000 pages).
    let with_ckpt = phase(batches, size, warmup, Variant::CheckpointInCommit);
    report(
        "comparison: automatic WAL checkpoint in the commit (before 2026-11-22)",
        &with_ckpt,
        size,
    );

    // Where the time goes: compression alone, on 200 batches of the same shape.
    let mut batches_gen = Batches::new(0x5851_f42d_4c95_7f2d, size);
    let sample_batches: Vec<Vec<Event>> = (0..200).map(|_| batches_gen.next_batch()).collect();
    let raw: usize = sample_batches
        .iter()
        .flatten()
        .map(|e| e.payload.len())
        .sum();
    let mut rows: Vec<(String, Vec<Duration>, usize)> = Vec::new();
    let mut run = |name: String, c: &mut Compressor| {
        let (t, b) = time_batches(&sample_batches, |b| {
            b.iter()
                .map(|e| c.compress(e.payload.as_bytes()).len())
                .sum()
        });
        rows.push((name, t, b));
    };
    run(
        format!("store::codec::Compressor (shipped: dictionary, level {LEVEL})"),
        &mut Compressor::default(),
    );
    run(
        "no dictionary, level 1 (before)".to_string(),
        &mut Compressor::with_dictionary(None, 1),
    );
    for level in [1, 2, 3, 6] {
        if level != LEVEL {
            run(
                format!("dictionary, level {level}"),
                &mut Compressor::with_dictionary(Some(DICTIONARIES[CURRENT]), level),
            );
        }
    }
    let (fresh, fresh_bytes) = time_batches(&sample_batches, |b| {
        b.iter()
            .map(|e| compress_fresh(1, e.payload.as_bytes()))
            .sum()
    });
    rows.push((
        "fresh ZlibEncoder per payload, level 1".to_string(),
        fresh,
        fresh_bytes,
    ));
    let mut out = Vec::new();
    let mut c3 = flate2::Compress::new(flate2::Compression::new(3), true);
    let (re, re_bytes) = time_batches(&sample_batches, |b| {
        b.iter()
            .map(|e| compress_reused(&mut c3, &mut out, e.payload.as_bytes()))
            .sum()
    });
    rows.push((
        "reused flate2::Compress, no dictionary, level 3".to_string(),
        re,
        re_bytes,
    ));
    println!("compression only, per batch of {size} (200 batches):");
    for (name, t, b) in &rows {
        println!(
            "  {name:52} p50 {:7.3} ms  p95 {:7.3} ms  ratio {:.3}",
            ms(pct(t, 0.50)),
            ms(pct(t, 0.95)),
            *b as f64 / raw as f64
        );
    }
    let t = &after[0].times;
    let w = &with_ckpt.times;
    println!(
        "{{\"bench\":\"fast_path\",\"batches\":{batches},\"batch_size\":{size},\"avg_payload_bytes\":{},\"zlib_level\":{LEVEL},\"dictionary_bytes\":{},\"p50_ms\":{:.4},\"p95_ms\":{:.4},\"before_p50_ms\":{:.4},\"before_p95_ms\":{:.4},\"max_ms\":{:.4},\"checkpoint_in_commit_p50_ms\":{:.4},\"checkpoint_in_commit_p95_ms\":{:.4},\"compress_p50_ms\":{:.4}}}",
        after[0].avg_payload,
        DICTIONARIES[CURRENT].len(),
        p50(&after),
        p95(&after),
        p50(&before),
        p95(&before),
        ms(t[t.len() - 1]),
        ms(pct(w, 0.50)),
        ms(pct(w, 0.95)),
        ms(pct(&rows[0].1, 0.50)),
    );
}

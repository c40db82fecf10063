//! Fast-path micro-benchmark (BRIEF §7: ≤ 2 ms p95 to commit a batch of 100 events).
//!
//! Times `fast_path::insert_batch` (zlib compression + one IMMEDIATE transaction with
//! `INSERT OR IGNORE` + commit, WAL, `synchronous=NORMAL`) on a file database in a temp
//! dir: 2000 batches of 100 realistic Claude Code payloads (~1.5 KB of compact JSON each,
//! every id unique), after 50 warm-up batches. The table grows to 205,000 rows while it
//! runs, so WAL checkpoints and index growth are part of the figures.
//!
//! Run: `cargo bench --bench fast_path` (env `BATCHES`, `BATCH_SIZE` override the counts).
//! Plain `std::time::Instant`, no harness: it prints one table and a JSON line.

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use blueplane::event::{Event, Platform};

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
                    r#"{{{common},"message":{{"model":"claude-opus-4-6","id":"msg_01{:022x}","type":"message","role":"assistant","content":[{{"type":"text","text":"{text}"}}],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":3,"cache_creation_input_tokens":{},"cache_read_input_tokens":{},"cache_creation":{{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":{}}},"output_tokens":{},"service_tier":"standard","inference_geo":"not_available"}}}},"requestId":"req_011C{:018x}","type":"assistant","uuid":"{uuid}","timestamp":"{stamp}"}}"#,
                    rng.next() as u128,
                    rng.below(20_000),
                    rng.below(200_000),
                    rng.below(20_000),
                    rng.below(2_000),
                    rng.next() & 0xff_ffff_ffff_ffff_ffff
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
        source: source.to_string(),
        offset: n * 1500,
        payload,
    }
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

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let batches = env_or("BATCHES", 2000);
    let size = env_or("BATCH_SIZE", 100);
    let warmup = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("telemetry.db");
    let mut conn = blueplane::store::open_writer(&db).expect("open writer");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ts = 1_788_000_000_000_i64;
    let mut n = 0u64;
    let mut session = rng.uuid();
    let mut source =
        format!("/home/dev/.claude/projects/-home-dev-projects-billing-api/{session}.jsonl");
    let mut make_batch = |rng: &mut Rng| -> Vec<Event> {
        (0..size)
            .map(|_| {
                if n % 400 == 0 {
                    session = rng.uuid();
                    source = format!(
                        "/home/dev/.claude/projects/-home-dev-projects-billing-api/{session}.jsonl"
                    );
                }
                n += 1;
                ts += 700 + rng.below(4000) as i64;
                event(rng, &session, &source, n, ts)
            })
            .collect()
    };

    let sample = make_batch(&mut rng);
    let avg_payload = sample.iter().map(|e| e.payload.len()).sum::<usize>() / sample.len();
    let mut times = Vec::with_capacity(batches);
    let mut total_payload = 0usize;
    for i in 0..warmup + batches {
        let events = if i == 0 {
            sample.clone()
        } else {
            make_batch(&mut rng)
        };
        let bytes: usize = events.iter().map(|e| e.payload.len()).sum();
        let t = Instant::now();
        let (inserted, _) =
            blueplane::fast_path::insert_batch(&mut conn, &events).expect("insert batch");
        let el = t.elapsed();
        assert_eq!(inserted, events.len(), "every event id is new");
        if i >= warmup {
            times.push(el);
            total_payload += bytes;
        }
    }
    let total: Duration = times.iter().sum();
    times.sort();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
        .expect("count");
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);

    println!(
        "fast_path::insert_batch: {batches} batches of {size} events (+{warmup} warm-up), avg payload {avg_payload} B"
    );
    println!("  p50   {:8.3} ms", ms(pct(&times, 0.50)));
    println!(
        "  p95   {:8.3} ms   (target <= 2 ms)",
        ms(pct(&times, 0.95))
    );
    println!("  p99   {:8.3} ms", ms(pct(&times, 0.99)));
    println!("  max   {:8.3} ms", ms(times[times.len() - 1]));
    println!("  mean  {:8.3} ms", ms(total) / times.len() as f64);
    println!(
        "  throughput {:.0} events/s, {:.1} MB/s of payload; {rows} rows, db {:.1} MB",
        (batches * size) as f64 / total.as_secs_f64(),
        total_payload as f64 / 1e6 / total.as_secs_f64(),
        db_bytes as f64 / 1e6
    );
    println!(
        "{{\"bench\":\"fast_path\",\"batches\":{batches},\"batch_size\":{size},\"avg_payload_bytes\":{avg_payload},\"p50_ms\":{:.4},\"p95_ms\":{:.4},\"p99_ms\":{:.4},\"max_ms\":{:.4},\"mean_ms\":{:.4}}}",
        ms(pct(&times, 0.50)),
        ms(pct(&times, 0.95)),
        ms(pct(&times, 0.99)),
        ms(times[times.len() - 1]),
        ms(total) / times.len() as f64
    );
}

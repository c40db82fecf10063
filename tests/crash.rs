//! Crash safety: `kill -9` of `backfill`, `ingest` and `serve` at random points, then a
//! restart, must give exactly the counts of an uninterrupted run; and `serve` must stop
//! promptly when its stdin closes, even in the middle of a long first scan.
#![allow(clippy::print_stdout)]

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::redis::Resp;
use support::{Env, table_counts, write_corpus};

/// The heavy tests of this file run one at a time: they measure wall-clock behaviour on what
/// may be a 2-core machine.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Default seed of the kill schedule; `BLUEPLANE_CRASH_SEED` overrides it to explore others.
const SEED: u64 = 0x00b1_7e91_a4e5_eed5;

/// xorshift64*: enough randomness for a kill schedule, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn redis_int(env: &Env, args: &[&str]) -> i64 {
    match support::redis::command(&env.redis.socket, args).expect("redis command") {
        Resp::Integer(n) => n,
        Resp::Bulk(None) => 0,
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(&b).parse().expect("a number"),
        other => panic!("{args:?}: {other:?}"),
    }
}

/// `bp:stats captured`: events published to the stream, ever.
fn captured(env: &Env) -> i64 {
    redis_int(env, &["HGET", "bp:stats", "captured"])
}

/// raw_traces rows, 0 while the database does not exist yet.
fn raw_rows(env: &Env) -> i64 {
    rusqlite::Connection::open_with_flags(env.db(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| c.query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0)))
        .unwrap_or(0)
}

/// Everything a crash could get wrong: row counts, the capture counter, and both reports.
#[derive(Debug, PartialEq)]
struct Outcome {
    tables: Vec<(String, i64)>,
    captured: i64,
    daily: (Value, Value),
    session: (Value, Value),
}

fn outcome(env: &Env) -> Outcome {
    let report = |period: &str| {
        let v = env.json(&["report", period, "--json"]);
        (v["rows"].clone(), v["totals"].clone())
    };
    Outcome {
        tables: table_counts(&env.db()),
        captured: captured(env),
        daily: report("daily"),
        session: report("session"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Backfill,
    Ingest,
    Serve,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Backfill => "backfill",
            Mode::Ingest => "ingest",
            Mode::Serve => "serve",
        }
    }

    fn spawn(self, env: &Env) -> Child {
        let mut c = env.cmd(&[self.name()]);
        c.stdout(Stdio::null()).stderr(Stdio::inherit());
        if let Mode::Serve = self {
            // MCP over stdio: the pipe stays open (we hold it) until the kill.
            c.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            c.stdin(Stdio::null());
        }
        c.spawn().expect("spawn blueplane")
    }
}

/// One kill: when, and how far the pipeline had got.
#[derive(Debug)]
struct Kill {
    after_ms: u64,
    captured: i64,
    raw_rows: i64,
    /// The process had already exited on its own (a backfill that finished).
    finished: bool,
}

/// Runs `mode` on a fresh Env, kills it with SIGKILL 2-3 times at random delays (restarting
/// it after each kill), then finishes with a plain `backfill`. Returns the kills and the
/// outcome.
fn crash_and_recover(
    mode: Mode,
    corpus: &Path,
    lines: usize,
    mut rng: Rng,
    max_delay_ms: u64,
) -> (Vec<Kill>, Outcome) {
    let env = Env::new(&[corpus.to_path_buf()]);
    let n = rng.between(2, 3);
    let mut kills = Vec::new();
    for _ in 0..n {
        let after_ms = rng.between(50, max_delay_ms);
        let mut child = mode.spawn(&env);
        std::thread::sleep(Duration::from_millis(after_ms));
        let finished = child.try_wait().expect("try_wait").is_some();
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        // What the dead process left behind (SQLite commits and Redis replies are durable).
        let k = Kill {
            after_ms,
            captured: captured(&env),
            raw_rows: raw_rows(&env),
            finished,
        };
        assert!(
            k.captured <= lines as i64,
            "{}: {} events published for {lines} lines after a kill at {after_ms} ms",
            mode.name(),
            k.captured
        );
        kills.push(k);
        // The dead holder's capture lease would expire by itself after its TTL (6 s); the
        // restarted process should not sit out that wait in a test.
        redis_int(&env, &["DEL", "bp:capture:lease"]);
    }
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["bad_lines"], 0, "{s}");
    (kills, outcome(&env))
}

#[test]
fn kill_9_at_random_points_of_every_mode_then_restart_gives_exact_counts() {
    let _heavy = heavy();
    let seed = std::env::var("BLUEPLANE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    println!("crash seed {seed} (set BLUEPLANE_CRASH_SEED to replay another)");
    let dir = tempfile::tempdir().expect("dir");
    // About 2 MB: a debug build needs 2-3 s to capture, store and derive it.
    let lines = write_corpus(dir.path(), 8, 125);

    let reference = Env::new(&[dir.path().to_path_buf()]);
    let t0 = Instant::now();
    let s = reference.json(&["backfill", "--json"]);
    let took = t0.elapsed();
    assert_eq!(s["events"].as_u64(), Some(lines as u64), "{s}");
    let want = outcome(&reference);
    assert_eq!(want.captured, lines as i64, "reference run");
    drop(reference);
    // Kill points spread over the time an uninterrupted run takes here, so they land during
    // start-up, capture, storing and deriving (the raw row counts printed below show where).
    let max_delay_ms = (took.as_millis() as u64 * 3 / 5).clamp(300, 3_000);
    println!(
        "reference: {lines} lines in {} ms; kills between 50 and {max_delay_ms} ms",
        took.as_millis()
    );

    let modes = [Mode::Backfill, Mode::Ingest, Mode::Serve];
    let results: Vec<(Mode, Vec<Kill>, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = modes
            .iter()
            .enumerate()
            .map(|(i, &mode)| {
                let rng = Rng::new(seed ^ (0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1)));
                let corpus = dir.path();
                scope.spawn(move || {
                    let (kills, got) = crash_and_recover(mode, corpus, lines, rng, max_delay_ms);
                    (mode, kills, got)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });

    for (mode, kills, got) in &results {
        let shown: Vec<String> = kills
            .iter()
            .map(|k| {
                format!(
                    "{} ms: {} captured, {} raw rows{}",
                    k.after_ms,
                    k.captured,
                    k.raw_rows,
                    if k.finished { " (had finished)" } else { "" }
                )
            })
            .collect();
        println!(
            "figure: {} killed {} times [{}]; after a final backfill {:?}, captured {}/{lines}",
            mode.name(),
            kills.len(),
            shown.join("; "),
            got.tables,
            got.captured
        );
    }
    for (mode, kills, got) in &results {
        // A kill schedule that never interrupted anything would prove nothing.
        assert!(
            kills
                .iter()
                .any(|k| !k.finished && (k.raw_rows as usize) < lines),
            "{}: no kill landed before everything was stored: {kills:?}",
            mode.name()
        );
        // The cursor moves in the same MULTI/EXEC as its events: a kill can never make a
        // line be published twice.
        assert_eq!(
            got.captured,
            lines as i64,
            "{}: events published != lines",
            mode.name()
        );
        assert_eq!(got.tables, want.tables, "{}: table counts", mode.name());
        assert_eq!(got.daily, want.daily, "{}: report daily", mode.name());
        assert_eq!(got.session, want.session, "{}: report session", mode.name());
    }
}

/// Complete lines in the first `offset` bytes of `path`.
fn lines_below(path: &Path, offset: u64) -> i64 {
    let bytes = std::fs::read(path).expect("read transcript");
    let end = (offset as usize).min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() as i64
}

/// Sum over the capture cursors of the lines they cover (`dev:inode:offset` per path).
fn lines_under_cursors(env: &Env) -> i64 {
    let Resp::Array(Some(items)) =
        support::redis::command(&env.redis.socket, &["HGETALL", "bp:capture:cursors"])
            .expect("HGETALL")
    else {
        panic!("no cursor hash");
    };
    let text = |r: &Resp| match r {
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{other:?}"),
    };
    items
        .chunks(2)
        .map(|kv| {
            let offset: u64 = text(&kv[1])
                .rsplit(':')
                .next()
                .and_then(|o| o.parse().ok())
                .expect("cursor offset");
            lines_below(Path::new(&text(&kv[0])), offset)
        })
        .sum()
}

/// What one `serve` run did when its stdin closed in the middle of the first scan.
struct Closed {
    took: Duration,
    status: std::process::ExitStatus,
    stderr: String,
    at_close: i64,
    at_exit: i64,
    under_cursors: i64,
}

/// Starts `serve` (after an MCP handshake when `handshake`), closes its stdin once the first
/// scan is under way (and no earlier than 300 ms), and times the exit.
fn close_serve_mid_scan(corpus: &Path, handshake: bool) -> Closed {
    use std::io::{BufRead, Read, Write};
    let env = Env::new(&[corpus.to_path_buf()]);
    let mut serve = env
        .cmd(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut err = serve.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut stdout = std::io::BufReader::new(serve.stdout.take().expect("stdout"));
    if handshake {
        let stdin = serve.stdin.as_mut().expect("stdin");
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"crash-test","version":"0"}}}}}}"#
        )
        .expect("send initialize");
        let mut reply = String::new();
        stdout.read_line(&mut reply).expect("initialize reply");
        assert!(reply.contains(r#""id":1"#), "initialize reply: {reply}");
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .expect("send initialized");
    }
    let t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if t0.elapsed() >= Duration::from_millis(300) && captured(&env) > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "serve did not start capturing"
        );
        assert!(
            serve.try_wait().expect("try_wait").is_none(),
            "serve exited early"
        );
    }
    let at_close = captured(&env);
    drop(serve.stdin.take());
    let closed = Instant::now();
    let (took, status) = loop {
        if let Some(status) = serve.try_wait().expect("try_wait") {
            break (closed.elapsed(), status);
        }
        if closed.elapsed() > Duration::from_secs(15) {
            let _ = serve.kill();
            let _ = serve.wait();
            panic!("serve still running 15 s after its stdin closed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Closed {
        took,
        status,
        stderr: stderr.join().expect("stderr reader"),
        at_close,
        at_exit: captured(&env),
        under_cursors: lines_under_cursors(&env),
    }
}

#[test]
fn serve_exits_within_a_second_of_stdin_closing_even_mid_backfill() {
    let _heavy = heavy();
    let dir = tempfile::tempdir().expect("dir");
    // About 10 MB: the first capture scan alone takes several seconds in a debug build.
    let lines = write_corpus(dir.path(), 20, 250) as i64;
    for handshake in [true, false] {
        let c = close_serve_mid_scan(dir.path(), handshake);
        let what = if handshake {
            "after the MCP handshake"
        } else {
            "before any MCP request"
        };
        println!(
            "figure: serve exited {} ms after stdin closed {what} ({}); {} of {lines} lines captured at the close, {} at exit",
            c.took.as_millis(),
            c.status,
            c.at_close,
            c.at_exit
        );
        assert!(
            c.took < Duration::from_millis(1_500),
            "{what}: serve took {} ms to exit after its stdin closed; stderr:\n{}",
            c.took.as_millis(),
            c.stderr
        );
        assert!(
            !c.stderr.contains("panicked"),
            "{what}: serve panicked on the way out:\n{}",
            c.stderr
        );
        if handshake {
            assert!(
                c.status.success(),
                "serve exited with {}:\n{}",
                c.status,
                c.stderr
            );
        }
        assert!(
            c.at_exit < lines,
            "the first scan had finished ({} of {lines}): the corpus is too small to test this",
            c.at_exit
        );
        // Nothing captured is lost and nothing is published twice: the cursors cover exactly
        // the lines that were published, so the next scan carries on from there.
        assert_eq!(
            c.under_cursors, c.at_exit,
            "{what}: cursors vs published events"
        );
    }
}

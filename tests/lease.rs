//! Invariant 7 under real faults: one capture lease (`bp:capture:lease`, `SET NX PX 6000`,
//! renewed every 2 s), every publish fenced by its token. Real `ingest` and `backfill`
//! processes, a real redis-server, and a history whose first capture scan outlasts the TTL;
//! the test samples the lease every 100 ms the whole time, pauses the holder with SIGSTOP past
//! its TTL, kills it with SIGKILL, and runs `backfill` beside a running `ingest`. Every run
//! must end with exact counts: one event per line, one dead letter per bad line, the table
//! counts of an uninterrupted backfill.
#![allow(clippy::print_stdout)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::redis::Resp;
use support::{Env, table_counts, write_corpus};

/// `src/queue/lease.rs::TTL`.
const TTL: Duration = Duration::from_secs(6);
/// How often the test reads the lease.
const SAMPLE: Duration = Duration::from_millis(100);
/// Upper bound for anything that should finish; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(150);

const SESSIONS: usize = 24;
const TURNS: usize = 100;
/// Bytes of Bash output in each tool result (tabs, quotes and backslashes, all escaped in
/// the JSON line): capture must parse them, at about 10 MB/s of one core in a debug build, and
/// the privacy filter drops them. So the first scan is long (134 MB: about 11 s of CPU; 13 to
/// 29 s measured on a busy 2-core machine) while there are few events to store (4,800).
const STDOUT_BYTES: usize = 110_000;
/// Malformed lines planted in the middle of four transcripts.
const BAD_LINES: [&str; 4] = [
    "{this is not json",
    "[1,2,3]",
    r#"{"type":"user","sessionId":"bad","uuid":"bad-ts","message":{"role":"user","content":"no timestamp"}}"#,
    "\u{0}\u{1}binary\u{7f}",
];

/// The shared, read-only history.
struct Corpus {
    dir: PathBuf,
    /// Good lines (one event each).
    lines: i64,
    bad: i64,
    files: u64,
    bytes: u64,
}

/// Written once per run under the target dir (deterministic, 268 MB, so that the first scan
/// outlasts the TTL even on a fast machine: too big to leave a copy
/// per run in /tmp).
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lease-corpus");
        let _ = std::fs::remove_dir_all(&dir);
        let t0 = Instant::now();
        let lines = write_corpus(&dir, SESSIONS, TURNS) as i64;
        let output: String = (0..)
            .map(|i| format!(r#"\t\"k{i}\":\t\"C:\\tmp\\{i}\"\n"#))
            .scan(0, |n, s| {
                *n += s.len();
                (*n <= STDOUT_BYTES).then_some(s)
            })
            .collect();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("projects"))
            .expect("projects")
            .flat_map(|p| std::fs::read_dir(p.expect("project").path()).expect("project dir"))
            .map(|f| f.expect("file").path())
            .collect();
        files.sort();
        let mut bytes = 0;
        for (i, f) in files.iter().enumerate() {
            let text = std::fs::read_to_string(f).expect("read transcript");
            let mut text = text.replace(
                r#""toolUseResult":{"stdout":"total 0""#,
                &format!(r#""toolUseResult":{{"stdout":"{output}""#),
            );
            if i % 6 == 1 {
                // After the 10th line: the bad line is in the middle of a scan, not at its end.
                let at = text.match_indices('\n').nth(9).expect("10 lines").0 + 1;
                text.insert_str(at, &format!("{}\n", BAD_LINES[i / 6]));
            }
            bytes += text.len() as u64;
            std::fs::write(f, text).expect("write transcript");
        }
        // On disk before any process starts: the writeback of 268 MB would otherwise stall
        // the first SQLite commits (schema creation) of the processes under test for a second.
        for f in &files {
            std::fs::File::open(f)
                .and_then(|f| f.sync_all())
                .expect("sync transcript");
        }
        println!(
            "figure: corpus of {} files, {lines} lines + {} bad, {:.1} MB, written and synced in {} ms",
            files.len(),
            BAD_LINES.len(),
            bytes as f64 / 1e6,
            t0.elapsed().as_millis()
        );
        let c = Corpus {
            dir,
            lines,
            bad: BAD_LINES.len() as i64,
            files: files.len() as u64,
            bytes,
        };
        let for_reference = Corpus {
            dir: c.dir.clone(),
            ..c
        };
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(|| reference_backfill(&for_reference));
            let _ = REFERENCE.set(r.map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        });
        c
    })
}

/// Table counts of an uninterrupted `backfill` of the corpus on its own Env, computed on a
/// background thread started with the corpus (it overlaps the tests).
static REFERENCE: OnceLock<Result<Vec<(String, i64)>, String>> = OnceLock::new();

fn reference_backfill(c: &Corpus) -> Vec<(String, i64)> {
    let env = Env::new(std::slice::from_ref(&c.dir));
    let t0 = Instant::now();
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["events"].as_i64(), Some(c.lines), "reference: {s}");
    assert_eq!(s["bad_lines"].as_i64(), Some(c.bad), "reference: {s}");
    let counts = table_counts(&env.db());
    println!(
        "figure: reference backfill in {} ms (capture {:.1} s): {counts:?}",
        t0.elapsed().as_millis(),
        s["capture_seconds"].as_f64().unwrap_or(0.0)
    );
    counts
}

fn reference() -> &'static Vec<(String, i64)> {
    match REFERENCE.wait() {
        Ok(counts) => counts,
        Err(e) => panic!("the reference backfill failed: {e}"),
    }
}

fn redis(socket: &Path, args: &[&str]) -> Resp {
    support::redis::command(socket, args).unwrap_or_else(|e| panic!("redis {args:?}: {e}"))
}

fn int(env: &Env, args: &[&str]) -> i64 {
    match redis(&env.redis.socket, args) {
        Resp::Integer(n) => n,
        Resp::Bulk(None) => 0,
        Resp::Bulk(Some(b)) => String::from_utf8_lossy(&b).parse().expect("a number"),
        other => panic!("{args:?}: {other:?}"),
    }
}

fn holder(socket: &Path) -> Option<String> {
    match redis(socket, &["GET", "bp:capture:lease"]) {
        Resp::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
        Resp::Bulk(None) => None,
        other => panic!("GET lease: {other:?}"),
    }
}

/// `bp:stats captured`: events published, ever.
fn captured(env: &Env) -> i64 {
    int(env, &["HGET", "bp:stats", "captured"])
}

fn bad_input(env: &Env) -> i64 {
    int(env, &["HGET", "bp:stats", "bad_input"])
}

fn dlq(env: &Env) -> i64 {
    int(env, &["XLEN", "bp:dlq"])
}

/// The pid in a lease token (`host:pid:startms#n`).
fn token_pid(token: &str) -> u32 {
    token
        .rsplit(':')
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("lease token {token:?} has no pid"))
}

/// A child process, killed (SIGKILL, which also ends a stopped one) when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(env: &Env, args: &[&str], name: &str, stdout: Stdio) -> Proc {
        let log = env.home.path().join(format!("{name}.stderr"));
        let child = env
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(std::fs::File::create(&log).expect("stderr file"))
            .spawn()
            .expect("spawn blueplane");
        Proc { child, log }
    }

    fn ingest(env: &Env, name: &str) -> Proc {
        Proc::spawn(env, &["ingest"], name, Stdio::null())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {}", self.pid());
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One read of the lease, `at` after the test started its processes.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    holder: Option<String>,
}

/// Reads the lease every [`SAMPLE`] on its own thread until [`Sampler::finish`] (or until
/// dropped, before its Env, when a test fails).
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<Vec<Sample>>>,
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Sampler {
    fn start(env: &Env, t0: Instant) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let socket = env.redis.socket.clone();
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                out.push(Sample {
                    at: t0.elapsed(),
                    holder: holder(&socket),
                });
                next += SAMPLE;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            out
        });
        Sampler {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("sampler thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

/// The samples as runs of one value: (holder, first sample, last sample, samples).
fn runs(samples: &[Sample]) -> Vec<(Option<String>, Duration, Duration, usize)> {
    let mut out: Vec<(Option<String>, Duration, Duration, usize)> = Vec::new();
    for s in samples {
        match out.last_mut() {
            Some(r) if r.0 == s.holder => {
                r.2 = s.at;
                r.3 += 1;
            }
            _ => out.push((s.holder.clone(), s.at, s.at, 1)),
        }
    }
    out
}

/// The lease history in one line, for figures and failure messages.
fn show(samples: &[Sample]) -> String {
    runs(samples)
        .iter()
        .map(|(h, a, b, n)| {
            format!(
                "{} {:.1}-{:.1}s x{n}",
                h.as_deref().map_or("nil".to_string(), |t| format!(
                    "pid {}#{}",
                    token_pid(t),
                    t.rsplit('#').next().unwrap_or("?")
                )),
                a.as_secs_f64(),
                b.as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Asserts that the lease was taken within ~1 s of the start and then had exactly the
/// holders `pids` in that order, each one acquisition (one token), with a nil gap only
/// between two holders and shorter than one poll of the next holder plus slack. Returns the
/// tokens and when each was first seen.
fn assert_holders(samples: &[Sample], pids: &[u32]) -> Vec<(String, Duration)> {
    let history = show(samples);
    let r = runs(samples);
    let mut held: Vec<(String, Duration)> = Vec::new();
    for (i, (h, from, to, _)) in r.iter().enumerate() {
        match h {
            None if i == 0 => assert!(
                *to < Duration::from_millis(1_000),
                "nobody took the lease for {:.1} s after the start: {history}",
                to.as_secs_f64()
            ),
            None => {
                assert!(
                    i + 1 < r.len(),
                    "the lease was lost and not taken again: {history}"
                );
                // Sampled nil from `from` to `to`: the gap is shorter than (to - from) + 2
                // sample intervals; the next holder polls every 500 ms.
                assert!(
                    *to - *from < Duration::from_millis(1_000),
                    "the lease was free for {:.1} s: {history}",
                    (*to - *from).as_secs_f64()
                );
            }
            Some(t) => held.push((t.clone(), *from)),
        }
    }
    let got: Vec<u32> = held.iter().map(|(t, _)| token_pid(t)).collect();
    assert_eq!(got, pids, "lease holders (pids) over time: {history}");
    held
}

/// Waits until every event is in SQLite and derived (as `tests/pipeline.rs` does).
fn wait_drained(env: &Env, sessions: i64) -> Value {
    let t0 = Instant::now();
    loop {
        let out = env.cmd(&["status", "--json"]).output().expect("status");
        let st: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if st["sessions"].as_i64() == Some(sessions)
            && st["slow_path_backlog"] == 0
            && st["pending"] == 0
            && st["consumer_lag"] == 0
        {
            return st;
        }
        assert!(t0.elapsed() < PATIENCE, "pipeline did not drain: {st}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits for `cond`, failing with `what` after [`PATIENCE`]; returns when it held.
fn wait_for(t0: Instant, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    loop {
        if cond() {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Everything must be exact at the end: one event per good line, one dead letter per bad
/// line, the reference's table counts.
fn assert_exact(env: &Env, what: &str) -> Vec<(String, i64)> {
    let c = corpus();
    wait_drained(env, SESSIONS as i64);
    assert_eq!(captured(env), c.lines, "{what}: bp:stats captured != lines");
    assert_eq!(bad_input(env), c.bad, "{what}: bad_input != bad lines");
    assert_eq!(dlq(env), c.bad, "{what}: XLEN bp:dlq != bad lines");
    let got = table_counts(&env.db());
    assert_eq!(
        got.iter().find(|(t, _)| t == "raw_traces").map(|x| x.1),
        Some(c.lines),
        "{what}: raw_traces != lines"
    );
    assert_eq!(&got, reference(), "{what}: table counts != reference");
    got
}

/// Two `ingest` processes on a history whose first scan outlasts the TTL: one holder the
/// whole time, renewed across the long scan, and exact counts.
#[test]
fn two_ingests_one_holder_through_a_scan_longer_than_the_ttl() {
    let c = corpus();
    let env = Env::new(std::slice::from_ref(&c.dir));
    let t0 = Instant::now();
    let sampler = Sampler::start(&env, t0);
    let mut a = Proc::ingest(&env, "a");
    let mut b = Proc::ingest(&env, "b");
    let taken = wait_for(t0, "a lease holder", || holder(&env.redis.socket).is_some());
    let scanned = wait_for(t0, "the first scan", || {
        captured(&env) == c.lines && bad_input(&env) == c.bad
    });
    assert_exact(&env, "two ingests");
    // A little longer: renewals go on once the scan is over.
    std::thread::sleep(TTL / 2);
    let samples = sampler.finish();
    assert!(a.alive() && b.alive(), "an ingest exited");
    let first_scan = scanned - taken;
    println!(
        "figure: two ingests: first scan took {:.1} s (TTL {} s); lease taken {} ms after the start; {} samples: {}",
        first_scan.as_secs_f64(),
        TTL.as_secs(),
        taken.as_millis(),
        samples.len(),
        show(&samples)
    );
    assert!(
        first_scan > TTL,
        "the first scan took only {:.1} s: the corpus is too small to test renewal",
        first_scan.as_secs_f64()
    );
    let holder_pid = samples
        .iter()
        .find_map(|s| s.holder.as_deref().map(token_pid))
        .expect("a holder");
    assert!([a.pid(), b.pid()].contains(&holder_pid));
    assert_holders(&samples, &[holder_pid]);
    println!(
        "figure: two ingests: captured {} = lines, bad_input {} = dlq = planted, {:?}",
        c.lines,
        c.bad,
        table_counts(&env.db())
    );
}

/// Starts two ingests, waits until the holder is in the middle of its first scan (a tenth of
/// the lines published), and returns (holder, other, lines published by then).
fn two_ingests_mid_scan(env: &Env, t0: Instant) -> (Proc, Proc, i64) {
    let c = corpus();
    let a = Proc::ingest(env, "a");
    let b = Proc::ingest(env, "b");
    let mut at = 0;
    wait_for(t0, "the holder to be mid-scan", || {
        at = captured(env);
        at >= c.lines / 10
    });
    let h = token_pid(&holder(&env.redis.socket).expect("a holder mid-scan"));
    assert!(
        at < c.lines / 2,
        "the first scan is too fast to interrupt ({at} of {} lines)",
        c.lines
    );
    if h == a.pid() { (a, b, at) } else { (b, a, at) }
}

/// Waits until `pid` holds the lease; returns how long after `since` that was.
fn wait_holder(env: &Env, pid: u32, since: Instant) -> Duration {
    wait_for(since, "the takeover", || {
        holder(&env.redis.socket).is_some_and(|t| token_pid(&t) == pid)
    })
}

/// The holder is paused (SIGSTOP) mid-scan for longer than the TTL: the other ingest takes
/// over; resumed, the paused one publishes nothing (fenced) and does not take the lease back.
#[test]
fn a_paused_holder_is_replaced_and_fenced_when_it_resumes() {
    let c = corpus();
    let env = Env::new(std::slice::from_ref(&c.dir));
    let t0 = Instant::now();
    let sampler = Sampler::start(&env, t0);
    let (mut paused, mut other, at_stop) = two_ingests_mid_scan(&env, t0);
    paused.signal("-STOP");
    let stopped = Instant::now();
    let left = int(&env, &["PTTL", "bp:capture:lease"]);
    let takeover = wait_holder(&env, other.pid(), stopped);
    // The successor finishes the scan while the old holder is still paused.
    wait_for(stopped, "the successor to capture everything", || {
        captured(&env) == c.lines && bad_input(&env) == c.bad
    });
    std::thread::sleep((TTL + Duration::from_secs(1)).saturating_sub(stopped.elapsed()));
    let paused_for = stopped.elapsed();
    let before = (captured(&env), bad_input(&env), dlq(&env));
    paused.signal("-CONT");
    let resumed = Instant::now();
    // Resumed with a batch in hand and a lease it believes in: watch what it does.
    std::thread::sleep(Duration::from_secs(3));
    let after = (captured(&env), bad_input(&env), dlq(&env));
    assert!(
        paused.alive(),
        "the resumed ingest exited:\n{}",
        paused.stderr()
    );
    let counts = assert_exact(&env, "paused holder");
    // Long enough for the resumed process to have tried to take the lease back many times.
    std::thread::sleep((TTL + Duration::from_secs(1)).saturating_sub(resumed.elapsed()));
    let samples = sampler.finish();
    assert!(other.alive(), "the successor exited:\n{}", other.stderr());
    println!(
        "figure: SIGSTOP at {at_stop}/{} lines with {left} ms of lease left; taken over after {} ms (TTL + {} ms); resumed after {:.1} s; lease: {}",
        c.lines,
        takeover.as_millis(),
        takeover.as_millis() as i64 - TTL.as_millis() as i64,
        paused_for.as_secs_f64(),
        show(&samples)
    );
    println!(
        "figure: resumed holder: (captured, bad_input, dlq) {before:?} before SIGCONT, {after:?} 3 s after; final {counts:?}; its log: {:?}",
        paused
            .stderr()
            .lines()
            .filter(|l| l.contains("capture lease") || l.contains("lease was lost"))
            .collect::<Vec<_>>()
    );
    assert!(
        takeover <= TTL + Duration::from_millis(1_500),
        "takeover took {} ms",
        takeover.as_millis()
    );
    assert_eq!(
        before, after,
        "the resumed holder published after losing the lease"
    );
    let held = assert_holders(&samples, &[paused.pid(), other.pid()]);
    assert!(
        held[1].1 > stopped - t0,
        "the lease changed hands before the holder was paused"
    );
    // The successor kept it (one token, the last run) for more than a TTL after the old
    // holder resumed.
    assert!(
        samples
            .last()
            .is_some_and(|s| s.at > resumed - t0 + TTL && s.holder.as_ref() == Some(&held[1].0)),
        "the resumed holder took the lease back: {}",
        show(&samples)
    );
}

/// `backfill` while an `ingest` holds the lease mid-scan: it asks the holder for a full scan
/// instead of capturing, exits 0 once everything is stored, and nothing is counted twice.
#[test]
fn backfill_beside_a_running_ingest_counts_everything_once() {
    let c = corpus();
    let env = Env::new(std::slice::from_ref(&c.dir));
    let t0 = Instant::now();
    let sampler = Sampler::start(&env, t0);
    let mut ingest = Proc::ingest(&env, "ingest");
    let mut at = 0;
    wait_for(t0, "ingest to be mid-scan", || {
        at = captured(&env);
        at > 0
    });
    let started = Instant::now();
    let out = env
        .cmd(&["backfill", "--json"])
        .stdin(Stdio::null())
        .output()
        .expect("run backfill");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "backfill exited with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("backfill summary JSON");
    // A backfill returns once all history is in SQLite and derived: exact already.
    let at_exit = (captured(&env), bad_input(&env), dlq(&env));
    let counts_at_exit = table_counts(&env.db());
    let counts = assert_exact(&env, "backfill beside ingest");
    let samples = sampler.finish();
    assert!(ingest.alive(), "ingest exited:\n{}", ingest.stderr());
    println!(
        "figure: backfill started at {at}/{} captured lines, exited 0 after {} ms: {s}",
        c.lines,
        took.as_millis()
    );
    println!(
        "figure: at backfill exit (captured, bad_input, dlq) = {at_exit:?}; final {counts:?}; lease: {}",
        show(&samples)
    );
    assert!(at < c.lines, "ingest had finished before backfill started");
    assert_eq!(
        at_exit,
        (c.lines, c.bad, c.bad),
        "counters at backfill exit"
    );
    assert_eq!(
        &counts_at_exit,
        reference(),
        "table counts at backfill exit"
    );
    // Summary: the figures of the full scan it was served (ingest captured the rest).
    let n = |k: &str| {
        s[k].as_i64()
            .unwrap_or_else(|| panic!("summary has no {k}: {s}"))
    };
    assert_eq!(n("files"), c.files as i64, "{s}");
    assert_eq!(n("sessions"), SESSIONS as i64, "{s}");
    assert!((0..=c.lines).contains(&n("events")), "{s}");
    assert!((0..=c.bad).contains(&n("bad_lines")), "{s}");
    assert!((0..=c.bytes as i64).contains(&n("bytes")), "{s}");
    let secs = s["seconds"].as_f64().expect("seconds");
    let cap = s["capture_seconds"].as_f64().expect("capture_seconds");
    assert!(
        0.0 < cap && cap <= secs && secs <= took.as_secs_f64() + 0.5,
        "{s}"
    );
    assert_eq!(
        s["dirs"],
        serde_json::json!([c.dir.join("projects").display().to_string()]),
        "{s}"
    );
    // The ingest held the lease throughout: backfill never captured beside it.
    assert_holders(&samples, &[ingest.pid()]);
}

/// `kill -9` of the holder mid-scan, while a `backfill` waits for the full scan it asked that
/// holder for: the other ingest takes over once the lease expires, finishes the scan from the
/// dead holder's cursors, and serves the backfill's request. The backfill is paused during the
/// takeover, so that it sees the new holder, never a free lease, when it looks again (it would
/// otherwise capture by itself if it happened to look while the lease was free).
#[test]
fn a_killed_holder_is_replaced_and_a_waiting_backfill_is_served() {
    let c = corpus();
    let env = Env::new(std::slice::from_ref(&c.dir));
    let t0 = Instant::now();
    let sampler = Sampler::start(&env, t0);
    let (mut dead, mut other, _) = two_ingests_mid_scan(&env, t0);
    let dead_pid = dead.pid();
    let mut backfill = Proc::spawn(&env, &["backfill", "--json"], "backfill", Stdio::piped());
    wait_for(t0, "backfill to file its scan request", || {
        int(&env, &["GET", "bp:capture:scan_req"]) == 1
    });
    backfill.signal("-STOP");
    let at_kill = captured(&env);
    dead.child.kill().expect("kill -9");
    let killed = Instant::now();
    dead.child.wait().expect("wait");
    let left = int(&env, &["PTTL", "bp:capture:lease"]);
    let takeover = wait_holder(&env, other.pid(), killed);
    backfill.signal("-CONT");
    let resumed = Instant::now();
    let status = loop {
        if let Some(st) = backfill.child.try_wait().expect("try_wait") {
            break st;
        }
        assert!(
            resumed.elapsed() < Duration::from_secs(90),
            "backfill still waits {} s after the successor took the lease over ({} of {} lines captured); its log:\n{}",
            resumed.elapsed().as_secs(),
            captured(&env),
            c.lines,
            backfill.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = resumed.elapsed();
    let mut out = String::new();
    std::io::Read::read_to_string(
        backfill.child.stdout.as_mut().expect("backfill stdout"),
        &mut out,
    )
    .expect("read backfill stdout");
    assert!(
        status.success(),
        "backfill exited with {status}:\n{}",
        backfill.stderr()
    );
    let s: Value = serde_json::from_str(&out).expect("backfill summary JSON");
    let at_exit = (captured(&env), bad_input(&env), dlq(&env));
    let counts_at_exit = table_counts(&env.db());
    let counts = assert_exact(&env, "killed holder");
    std::thread::sleep(TTL / 2);
    let samples = sampler.finish();
    assert!(other.alive(), "the successor exited:\n{}", other.stderr());
    drop(dead);
    println!(
        "figure: kill -9 at {at_kill}/{} lines with {left} ms of lease left; taken over after {} ms (TTL + {} ms); final {counts:?}; lease: {}",
        c.lines,
        takeover.as_millis(),
        takeover.as_millis() as i64 - TTL.as_millis() as i64,
        show(&samples)
    );
    println!(
        "figure: the waiting backfill exited 0 {} ms after the takeover: {s}",
        waited.as_millis()
    );
    assert!(
        at_kill < c.lines,
        "the first scan had finished before the kill"
    );
    assert!(
        takeover <= TTL + Duration::from_millis(1_500),
        "takeover took {} ms",
        takeover.as_millis()
    );
    let held = assert_holders(&samples, &[dead_pid, other.pid()]);
    assert!(
        held[1].1 > killed - t0,
        "the lease changed hands before the kill"
    );
    assert_eq!(
        at_exit,
        (c.lines, c.bad, c.bad),
        "counters at backfill exit"
    );
    assert_eq!(
        &counts_at_exit,
        reference(),
        "table counts at backfill exit"
    );
    assert_eq!(s["sessions"].as_i64(), Some(SESSIONS as i64), "{s}");
    assert_eq!(s["files"].as_u64(), Some(c.files), "{s}");
}

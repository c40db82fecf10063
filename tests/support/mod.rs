//! Helpers shared by the integration tests: a private redis-server, a temp
//! `BLUEPLANE_HOME`, and running the real binary.
#![allow(dead_code)]

pub mod cursor;
pub mod http;
pub mod python;
pub mod redis;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_blueplane");

/// The shared fixture tree (`../shared/fixtures-external` next to the repository).
pub fn fixtures() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures-external");
    assert!(p.is_dir(), "fixtures not found at {}", p.display());
    p
}

/// Every `*.jsonl` below `dir`, depth first, entries sorted by name (the order the fixture
/// snapshot is written in).
pub fn jsonl_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            jsonl_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "jsonl") {
            out.push(p);
        }
    }
}

/// A test environment: its own Redis and its own data dir.
pub struct Env {
    pub redis: redis::TestRedis,
    pub home: tempfile::TempDir,
    pub claude_dirs: Vec<PathBuf>,
}

impl Env {
    pub fn new(claude_dirs: &[PathBuf]) -> Env {
        Env {
            redis: redis::TestRedis::start(),
            home: tempfile::tempdir().expect("tempdir"),
            claude_dirs: claude_dirs.to_vec(),
        }
    }

    /// A `blueplane` command with this environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("BLUEPLANE_HOME", self.home.path())
            .env("REDIS_URL", self.redis.url())
            .env(
                "CLAUDE_CONFIG_DIR",
                self.claude_dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            // Never the machine's Cursor agent transcripts (a test sets its own).
            .env("CURSOR_HOME", self.home.path().join("no-cursor-home"))
            .env("TZ", "UTC")
            // Never the developer's own Cursor data (tests that want Cursor set it again).
            .env("CURSOR_DATA_DIR", self.home.path().join("no-cursor"))
            .env_remove("BLUEPLANE_PRIVACY_MODE")
            .env("BLUEPLANE_LOG", "warn");
        c
    }

    /// Runs a command to completion and asserts success.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run blueplane");
        assert!(
            out.status.success(),
            "blueplane {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// Runs a `--json` command and parses its stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "blueplane {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn db(&self) -> PathBuf {
        self.home.path().join("telemetry.db")
    }
}

/// Counts rows with the plain sqlite3 crate connection (not the query layer).
pub fn count(db: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open db");
    c.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Writes a synthetic Claude Code corpus: `sessions` files under `dir/projects/-proj-N/`,
/// each with `turns` turns of 4 lines (prompt, assistant text with usage, tool_use,
/// tool_result). Returns the number of lines written.
pub fn write_corpus(dir: &Path, sessions: usize, turns: usize) -> usize {
    write_corpus_from(dir, 0, sessions, turns)
}

/// [`write_corpus`] with session numbers starting at `first` (ids never collide).
pub fn write_corpus_from(dir: &Path, first: usize, sessions: usize, turns: usize) -> usize {
    use std::io::Write;
    let mut lines = 0;
    for s in first..first + sessions {
        let project = dir.join("projects").join(format!("-proj-{}", s % 3));
        std::fs::create_dir_all(&project).expect("mkdir");
        let sid = format!("00000000-0000-4000-8000-{s:012}");
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(project.join(format!("{sid}.jsonl"))).expect("create"),
        );
        let cwd = format!("/home/u/proj-{}", s % 3);
        for t in 0..turns {
            let ts = |k: usize| {
                let secs = 1_767_225_600 + (s * 7_200 + t * 60 + k) as i64;
                chrono::DateTime::from_timestamp(secs, 0)
                    .expect("ts")
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            };
            let u = |k: usize| format!("{s:08}-{t:04}-4000-8000-{k:012}");
            let env = |k: usize, ty: &str| {
                format!(
                    r#""parentUuid":null,"isSidechain":false,"userType":"external","cwd":"{cwd}","sessionId":"{sid}","version":"2.1.39","gitBranch":"main","type":"{ty}","uuid":"{}","timestamp":"{}""#,
                    u(k),
                    ts(k)
                )
            };
            let tool = format!("toolu_{s:06}_{t:06}");
            writeln!(f, r#"{{{},"message":{{"role":"user","content":"turn {t} of session {s}: please check the retry budget"}}}}"#, env(0, "user")).expect("w");
            writeln!(f, r#"{{{},"requestId":"req_{s}_{t}","message":{{"model":"claude-sonnet-4-20250514","id":"msg_{s}_{t}","type":"message","role":"assistant","content":[{{"type":"text","text":"Looking at turn {t}."}}],"usage":{{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}}}}}"#, env(1, "assistant")).expect("w");
            writeln!(f, r#"{{{},"requestId":"req_{s}_{t}","message":{{"model":"claude-sonnet-4-20250514","id":"msg_{s}_{t}","type":"message","role":"assistant","content":[{{"type":"tool_use","id":"{tool}","name":"Bash","input":{{"command":"ls -la"}}}}],"usage":{{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}}}}}"#, env(2, "assistant")).expect("w");
            let is_err = t % 5 == 0;
            writeln!(f, r#"{{{},"message":{{"role":"user","content":[{{"tool_use_id":"{tool}","type":"tool_result","content":"total 0","is_error":{is_err}}}]}},"toolUseResult":{{"stdout":"total 0","stderr":"","interrupted":false}}}}"#, env(3, "user")).expect("w");
            lines += 4;
        }
    }
    lines
}

/// Row counts of the main tables, for comparing runs.
pub fn table_counts(db: &Path) -> Vec<(String, i64)> {
    [
        "raw_traces",
        "sessions",
        "messages",
        "messages_fts",
        "api_responses",
        "tool_calls",
        "subagents",
        "projects",
    ]
    .iter()
    .map(|t| {
        (
            t.to_string(),
            count(db, &format!("SELECT count(*) FROM {t}")),
        )
    })
    .collect()
}

/// Every `raw_traces` payload, decompressed, concatenated (for grepping: privacy tests).
pub fn raw_payloads(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).expect("open db");
    let mut out = String::new();
    for (_, p) in blueplane::store::blocks::all_texts(&c).expect("query raw_traces") {
        out.push_str(&p.expect("zlib payload"));
        out.push('\n');
    }
    out
}

/// Every string Redis holds for this store (streams, hashes, lists, sets), for grepping.
pub fn redis_dump(env: &Env) -> String {
    use redis::Resp;
    let sock = &env.redis.socket;
    let mut out = String::new();
    let Ok(Resp::Array(Some(keys))) = redis::command(sock, &["KEYS", "*"]) else {
        panic!("KEYS failed")
    };
    fn flat(r: &Resp, out: &mut String) {
        match r {
            Resp::Bulk(Some(b)) => {
                out.push_str(&String::from_utf8_lossy(b));
                out.push('\n');
            }
            Resp::Simple(s) | Resp::Error(s) => out.push_str(s),
            Resp::Array(Some(a)) => a.iter().for_each(|x| flat(x, out)),
            _ => {}
        }
    }
    for k in keys {
        let Resp::Bulk(Some(k)) = k else { continue };
        let k = String::from_utf8_lossy(&k).to_string();
        out.push_str(&k);
        let Ok(Resp::Simple(ty)) = redis::command(sock, &["TYPE", &k]) else {
            continue;
        };
        let r = match ty.as_str() {
            "stream" => redis::command(sock, &["XRANGE", &k, "-", "+"]),
            "hash" => redis::command(sock, &["HGETALL", &k]),
            "list" => redis::command(sock, &["LRANGE", &k, "0", "-1"]),
            "string" => redis::command(sock, &["GET", &k]),
            "set" => redis::command(sock, &["SMEMBERS", &k]),
            "zset" => redis::command(sock, &["ZRANGE", &k, "0", "-1"]),
            _ => continue,
        };
        if let Ok(r) = r {
            flat(&r, &mut out);
        }
    }
    out
}

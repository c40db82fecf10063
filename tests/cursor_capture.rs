//! Cursor database capture through the real binary and a real `redis-server`: `backfill` and
//! `ingest` with `CURSOR_DATA_DIR` pointing at real `state.vscdb` files (tests/support/cursor.rs)
//! and `CLAUDE_CONFIG_DIR` at an empty directory.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Env;
use support::cursor::*;

const T0: i64 = 1_766_691_308_486;

/// A test environment with an empty Claude dir and a Cursor data dir.
struct CursorEnv {
    env: Env,
    tmp: tempfile::TempDir,
    dir: CursorDir,
}

impl CursorEnv {
    fn new() -> CursorEnv {
        let tmp = tempfile::tempdir().unwrap();
        let claude = tmp.path().join("claude");
        std::fs::create_dir_all(claude.join("projects")).unwrap();
        let dir = CursorDir::new(&tmp.path().join("Cursor"));
        CursorEnv {
            env: Env::new(&[claude]),
            tmp,
            dir,
        }
    }

    fn cmd(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = self.env.cmd(args);
        c.env("CURSOR_DATA_DIR", root);
        c
    }

    fn backfill(&self, root: &Path) -> Value {
        let out = self
            .cmd(root, &["backfill", "--json"])
            .output()
            .expect("backfill");
        assert!(
            out.status.success(),
            "backfill failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("backfill json")
    }

    /// `raw_traces` rows per kind of the Cursor platform.
    fn kinds(&self) -> BTreeMap<String, i64> {
        let c = rusqlite::Connection::open(self.env.db()).unwrap();
        let mut s = c
            .prepare(
                "SELECT kind, count(*) FROM raw_traces_text WHERE platform = 'cursor' GROUP BY kind",
            )
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }
}

/// Writes `composers` modern composers of 4 bubbles each (user, assistant, tool, thinking),
/// one legacy composer with 2 inline bubbles, 3 agent blobs, credentials, and two workspaces.
/// Returns the expected `raw_traces` rows per kind.
fn corpus(dir: &CursorDir, composers: usize) -> BTreeMap<String, i64> {
    let g = dir.global();
    g.credentials();
    g.conn.execute_batch("BEGIN").unwrap();
    for c in 0..composers {
        let cid = format!("00000000-0000-4000-8000-{c:012}");
        let b = |k: usize| format!("{c:08}-b{k}");
        g.composer(&composer_v18(
            &cid,
            &format!("Chat {c}"),
            T0 + c as i64 * 1000,
            &[(&b(0), 1), (&b(1), 2), (&b(2), 2), (&b(3), 2)],
            "/home/u/proj",
            &[],
        ));
        g.bubble(
            &cid,
            &user_bubble(
                &b(0),
                "where is the retry budget?",
                "2025-12-25T19:36:35.467Z",
            ),
        );
        g.bubble(
            &cid,
            &assistant_bubble(&b(1), "In retry.rs.", T0 + 5000, (120, 40)),
        );
        g.bubble(
            &cid,
            &tool_bubble(
                &b(2),
                "run_terminal_cmd",
                "completed",
                &json!({"command": "cargo test"}),
                "{\"output\":\"ok\"}",
                T0 + 9000,
            ),
        );
        g.bubble(&cid, &thinking_bubble(&b(3), "hmm"));
    }
    g.composer(&composer_v3(
        "legacy-1",
        "Old chat",
        1_700_000_000_000,
        &[
            user_bubble("l1", "hello", "2023-11-14T22:13:20.000Z"),
            thinking_bubble("l2", "hmm"),
        ],
    ));
    for i in 0..3 {
        g.agent_blob(&blob_sha(i), "assistant", "agent message");
    }
    g.conn.execute_batch("COMMIT").unwrap();
    dir.workspace("ws-single", "/home/u/proj")
        .workspace_index(&[("00000000-0000-4000-8000-000000000000", "Chat 0", T0, T0)]);
    let file = dir.root.join("multi.code-workspace");
    dir.workspace_multi("ws-multi", &file, &["a", "b"])
        .workspace_index(&[("legacy-1", "Old chat", T0, T0)]);
    BTreeMap::from([
        ("agent_blob".to_string(), 3),
        ("bubble".to_string(), composers as i64 * 4 + 2),
        ("composer".to_string(), composers as i64 + 1),
        ("workspace".to_string(), 2),
    ])
}

/// Every decompressed `raw_traces` payload and every text column of every other table.
fn sqlite_dump(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut out = String::new();
    for (_, p) in blueplane::store::blocks::all_texts(&c).unwrap() {
        out.push_str(&p.expect("zlib"));
        out.push('\n');
    }
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'raw_traces'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for t in tables {
        let Ok(mut s) = c.prepare(&format!("SELECT * FROM \"{t}\"")) else {
            continue;
        };
        let n = s.column_count();
        let mut rows = s.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..n {
                if let Ok(rusqlite::types::ValueRef::Text(b)) = r.get_ref(i) {
                    out.push_str(&String::from_utf8_lossy(b));
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Proves the whole path: a backfill stores exactly one `raw_traces` row per composer, bubble
/// (inline legacy ones included), agent blob and workspace written; a second backfill adds
/// nothing; a copy of the databases at another path adds nothing; the planted credentials
/// appear nowhere in Redis or SQLite; and Cursor's database files are byte-for-byte unchanged.
/// Without the Cursor source, the counts are zero; without the key allow-list or
/// `json_remove`, the credentials show up in the dumps.
#[test]
fn backfill_counts_repeats_copies_and_credentials() {
    let ce = CursorEnv::new();
    let expected = corpus(&ce.dir, 25);
    let global = ce.dir.global_path();
    let before = file_hash(&global);
    let mtime = std::fs::metadata(&global).unwrap().modified().unwrap();

    let first = ce.backfill(&ce.dir.root);
    assert_eq!(ce.kinds(), expected, "{first}");
    let total: i64 = expected.values().sum();
    assert_eq!(first["events"], total);

    let second = ce.backfill(&ce.dir.root);
    assert_eq!(second["events"], 0, "{second}");
    assert_eq!(ce.kinds(), expected);

    // A copy elsewhere (with its WAL): every event again, nothing new stored.
    let copy = ce.tmp.path().join("CursorCopy");
    copy_tree(&ce.dir.root, &copy);
    let third = ce.backfill(&copy);
    assert_eq!(third["events"], total, "{third}");
    assert_eq!(ce.kinds(), expected);

    let redis = support::redis_dump(&ce.env);
    let sqlite = sqlite_dump(&ce.env.db());
    assert!(redis.contains("bp:capture:cursor_db"));
    assert!(sqlite.contains("retry budget"));
    for p in PLANTED_CREDENTIALS {
        assert!(!redis.contains(p), "{p} in Redis");
        assert!(!sqlite.contains(p), "{p} in SQLite");
    }
    for not_kept in [
        "fn code_block_content",
        "fn attached_chunk",
        "cargo test\"",
        "richText",
    ] {
        assert!(!sqlite.contains(not_kept), "{not_kept} in SQLite");
    }
    assert_eq!(file_hash(&global), before);
    assert_eq!(
        std::fs::metadata(&global).unwrap().modified().unwrap(),
        mtime
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else if !p.to_string_lossy().ends_with("-shm") {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Proves streaming rewrites are seen live: while `ingest` runs, a bubble rewritten in place
/// three times (text growing, new rowid each time) is captured as a new version each time,
/// within a few seconds, and the newest stored version has the final text. Without the
/// watermark (or the watcher/`data_version` polling and rescans), no new rows appear.
#[test]
fn ingest_captures_streaming_rewrites() {
    let ce = CursorEnv::new();
    let expected = corpus(&ce.dir, 2);
    // No periodic rescan during the test: only the watcher and `data_version` polling can
    // see the rewrites.
    std::fs::write(
        ce.env.home.path().join("config.toml"),
        "[capture]\nrescan_seconds = 600\n",
    )
    .unwrap();
    let mut ingest = ce
        .cmd(&ce.dir.root, &["ingest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rows_for = |key: &str| -> i64 {
        if !ce.env.db().exists() {
            return 0;
        }
        let c = rusqlite::Connection::open(ce.env.db()).unwrap();
        c.query_row(
            "SELECT count(*) FROM raw_traces WHERE source_key = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap_or(0)
    };
    let wait = |what: &str, f: &dyn Fn() -> bool, secs: u64| {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(secs) {
            if f() {
                return t.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    };
    let total: i64 = expected.values().sum();
    let all_rows = || -> i64 {
        if !ce.env.db().exists() {
            return 0;
        }
        let c = rusqlite::Connection::open(ce.env.db()).unwrap();
        c.query_row("SELECT count(*) FROM raw_traces", [], |r| r.get(0))
            .unwrap_or(0)
    };
    wait("the initial capture", &|| all_rows() == total, 30);
    let cid = "00000000-0000-4000-8000-000000000001";
    let bid = "00000001-b1";
    let key = format!("bubbleId:{cid}:{bid}");
    assert_eq!(rows_for(&key), 1);
    let g = ce.dir.global();
    let mut text = String::from("In");
    for n in 2..=4 {
        text.push_str(" more");
        g.bubble(cid, &assistant_bubble(bid, &text, T0 + 5000, (120, 40)));
        let took = wait("a rewritten bubble", &|| rows_for(&key) == n, 10);
        // Usually well under a second; the bound leaves room for a loaded machine.
        assert!(took < Duration::from_secs(5), "took {took:?}");
    }
    // The newest version (by seq) carries the final text.
    let c = rusqlite::Connection::open(ce.env.db()).unwrap();
    let seq: i64 = c
        .query_row(
            "SELECT seq FROM raw_traces WHERE source_key = ?1 ORDER BY seq DESC LIMIT 1",
            [&key],
            |r| r.get(0),
        )
        .unwrap();
    let texts = blueplane::store::blocks::all_texts(&c).unwrap();
    let s = texts
        .into_iter()
        .find(|(q, _)| *q == seq)
        .and_then(|(_, t)| t)
        .unwrap();
    let v: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["text"], text.as_str());
    let _ = Command::new("kill").arg(ingest.id().to_string()).status();
    let _ = ingest.wait();
}

/// Proves a backfill against a database another connection holds in an open write
/// transaction (`BEGIN IMMEDIATE` with pending writes) reads the committed snapshot only, and
/// never blocks or fails the writer: its statements stay fast during the backfill and its
/// commit succeeds; the next backfill captures what it committed.
#[test]
fn backfill_beside_an_open_write_transaction() {
    let ce = CursorEnv::new();
    let expected = corpus(&ce.dir, 10);
    let path = ce.dir.global_path();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_w = stop.clone();
    let writer = std::thread::spawn(move || {
        let w = VscDb::open(&path);
        w.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        ready_tx.send(()).unwrap();
        let mut worst = Duration::ZERO;
        let mut i = 0;
        while !stop_w.load(std::sync::atomic::Ordering::SeqCst) {
            let t = Instant::now();
            w.bubble(
                "pending-c",
                &user_bubble(&format!("p{i}"), "pending", "2025-12-25T19:40:00.000Z"),
            );
            worst = worst.max(t.elapsed());
            i += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        w.conn
            .execute_batch("COMMIT")
            .expect("the writer's commit succeeds");
        (worst, t.elapsed(), i)
    });
    ready.recv().unwrap();
    let first = ce.backfill(&ce.dir.root);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, commit, written) = writer.join().unwrap();
    assert_eq!(ce.kinds(), expected, "{first}");
    assert!(written > 0);
    assert!(
        worst < Duration::from_millis(250),
        "a writer statement took {worst:?}"
    );
    assert!(
        commit < Duration::from_millis(500),
        "the commit took {commit:?}"
    );
    ce.backfill(&ce.dir.root);
    assert_eq!(ce.kinds()["bubble"], expected["bubble"] + written as i64);
}

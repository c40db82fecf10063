//! The Cursor database source (`capture::cursor_db`) over real `state.vscdb` files
//! (tests/support/cursor.rs), into an in-memory sink: what it reads, what it never reads, how
//! it sees changes, and that it never disturbs Cursor.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use blueplane::capture::cursor_db::{self, CursorDb, NAMESPACE, Watermark};
use blueplane::capture::{CaptureError, CaptureSource, MemorySink};
use blueplane::event::{Platform, Source};
use blueplane::privacy::PrivacyMode;
use serde_json::{Value, json};
use support::cursor::*;
use tokio_util::sync::CancellationToken;

/// A sink that sets `stop` once it has written one batch.
struct StopAfterFirst {
    inner: MemorySink,
    stop: CancellationToken,
}

impl blueplane::capture::Sink for StopAfterFirst {
    fn publish<'a>(
        &'a mut self,
        b: blueplane::capture::sink::Batch<'a>,
    ) -> blueplane::capture::source::BoxFuture<'a, Result<bool, blueplane::queue::QueueError>> {
        Box::pin(async move {
            let r = self.inner.publish(b).await;
            self.stop.cancel();
            r
        })
    }

    fn cursors<'a>(
        &'a self,
        namespace: &'a str,
    ) -> blueplane::capture::source::BoxFuture<
        'a,
        Result<HashMap<String, String>, blueplane::queue::QueueError>,
    > {
        self.inner.cursors(namespace)
    }
}

const CID: &str = "98251e54-0000-4000-8000-000000000001";
const T0: i64 = 1_766_691_308_486;

fn source(dir: &CursorDir) -> CursorDb {
    CursorDb::new(Some(dir.root.clone()), PrivacyMode::Standard)
}

async fn scan(src: &mut CursorDb, sink: &mut MemorySink) -> u64 {
    src.scan(sink, &CancellationToken::new(), &mut |_| {})
        .await
        .expect("scan")
        .events
}

/// (kind, id) of every event, in order.
fn ids(sink: &MemorySink) -> Vec<(String, String)> {
    sink.events()
        .map(|e| (e.kind.clone(), e.id.clone()))
        .collect()
}

fn payload(sink: &MemorySink, id_part: &str) -> Value {
    let e = sink
        .events()
        .filter(|e| e.id.contains(id_part))
        .last()
        .unwrap_or_else(|| panic!("no event {id_part}"));
    serde_json::from_str(&e.payload).expect("payload json")
}

/// A global database with one modern composer (3 bubbles), a legacy one (2 inline bubbles),
/// an agent blob and the credential rows.
fn populated(dir: &CursorDir) -> VscDb {
    let g = dir.global();
    g.credentials();
    g.composer(&composer_v10(
        CID,
        "Fix the retry budget",
        T0,
        &[("b1", 1), ("b2", 2), ("b3", 2)],
    ));
    g.bubble(
        CID,
        &user_bubble(
            "b1",
            "where is the retry budget?",
            "2025-12-25T19:36:35.467Z",
        ),
    );
    g.bubble(
        CID,
        &assistant_bubble("b2", "In `retry.rs`.", T0 + 5_000, (120, 40)),
    );
    g.bubble(
        CID,
        &tool_bubble(
            "b3",
            "read_file",
            "completed",
            &json!({"target_file": "/p/retry.rs"}),
            "{\"contents\":\"x\"}",
            T0 + 9_000,
        ),
    );
    g.composer(&composer_v3(
        "legacy-1",
        "Old chat",
        1_700_000_000_000,
        &[
            user_bubble("l1", "hello", "2023-11-14T22:13:20.000Z"),
            thinking_bubble("l2", "hmm"),
        ],
    ));
    g.agent_blob(&blob_sha(1), "assistant", "agent message");
    g
}

/// Proves the contract's event kinds, ids, sessions and times come out of a real database,
/// and nothing outside the key allow-list does.
#[tokio::test]
async fn a_database_becomes_contract_events() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    assert_eq!(scan(&mut src, &mut sink).await, 8);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in sink.events() {
        assert_eq!(e.platform, Platform::Cursor);
        *kinds.entry(e.kind.clone()).or_default() += 1;
        let Source::DbRow { db, key, version } = &e.source else {
            panic!("not a db row")
        };
        assert_eq!(db, &g.path.display().to_string());
        assert_eq!(e.id, format!("cu:{key}@{version}"));
    }
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("agent_blob".into(), 1),
            ("bubble".into(), 5),
            ("composer".into(), 2)
        ])
    );
    let by_key: HashMap<String, &blueplane::event::Event> = sink
        .events()
        .map(|e| (e.source.key().unwrap().to_string(), e))
        .collect();
    let b1 = by_key[&format!("bubbleId:{CID}:b1")];
    assert_eq!(b1.session_id.as_deref(), Some(CID));
    assert_eq!(b1.timestamp_ms, Some(1_766_691_395_467)); // ISO createdAt
    assert_eq!(
        by_key[&format!("bubbleId:{CID}:b2")].timestamp_ms,
        Some(T0 + 5_000)
    ); // epoch
    assert_eq!(
        by_key[&format!("bubbleId:{CID}:b3")].timestamp_ms,
        Some(T0 + 9_000)
    ); // timingInfo
    let composer = by_key[&format!("composerData:{CID}")];
    assert_eq!(composer.timestamp_ms, Some(T0 + 60_000)); // lastUpdatedAt
    let legacy = by_key["composerData:legacy-1/conversation/l2"];
    assert_eq!(legacy.session_id.as_deref(), Some("legacy-1"));
    assert_eq!(legacy.timestamp_ms, Some(1_700_000_000_000)); // the composer's createdAt
    assert!(by_key.contains_key("composerData:legacy-1/conversation/l1"));
    let blob = by_key[&format!("agentKv:blob:{}", blob_sha(1))];
    assert_eq!(
        (blob.session_id.as_deref(), blob.timestamp_ms),
        (None, None)
    );
    let p: Value = serde_json::from_str(&composer.payload).unwrap();
    assert_eq!(p["headers"].as_array().unwrap().len(), 3);
    let p: Value = serde_json::from_str(&by_key["composerData:legacy-1"].payload).unwrap();
    assert_eq!(p["legacy"], true);
    let tool: Value = serde_json::from_str(&by_key[&format!("bubbleId:{CID}:b3")].payload).unwrap();
    assert_eq!(tool["tool"]["name"], "read_file");
    assert_eq!(tool["tool"]["args"]["target_file"], "/p/retry.rs");
    assert!(
        !by_key
            .keys()
            .any(|k| k.contains("cursorAuth") || k == "blobEncryptionKey")
    );
    // One batch, its cursor in the source's own namespace.
    assert_eq!(sink.batches.len(), 1);
    let cur = &sink.cursors_in(NAMESPACE)[&g.path.display().to_string()];
    let wm = Watermark::decode(cur).unwrap();
    assert_eq!(wm.pass, None);
    assert_eq!(
        wm.kv,
        g.conn
            .query_row("SELECT max(rowid) FROM cursorDiskKV", [], |r| r
                .get::<_, i64>(0))
            .unwrap()
    );
}

/// Proves the credential rows and the composer encryption keys never leave SQLite: not in
/// any event, dead letter or cursor (the query selects allow-listed prefixes and removes the
/// keys with `json_remove`).
#[tokio::test]
async fn credentials_never_leave_the_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    // A credential-looking value under an allowed prefix: only json_remove keeps it out.
    g.put_kv(
        "composerData:leaky",
        &json!({"composerId":"leaky","blobEncryptionKey":PLANTED_BLOB_KEY,
                "speculativeSummarizationEncryptionKey":PLANTED_SPEC_KEY})
        .to_string(),
    );
    for mode in [
        PrivacyMode::Metadata,
        PrivacyMode::Standard,
        PrivacyMode::Full,
    ] {
        let mut src = CursorDb::new(Some(dir.root.clone()), mode);
        let mut sink = MemorySink::default();
        scan(&mut src, &mut sink).await;
        let everything = format!("{:?}", sink.batches);
        assert!(everything.contains("composerData:leaky"));
        for p in PLANTED_CREDENTIALS {
            assert!(!everything.contains(p), "{p} leaked in {mode:?}");
        }
    }
    // And the version is computed from what left SQLite, not from the secret: the same
    // composer with another key is the same event.
    let mut sink = MemorySink::default();
    scan(&mut source(&dir), &mut sink).await;
    let before = payload(&sink, "composerData:leaky");
    g.put_kv(
        "composerData:leaky",
        &json!({"composerId":"leaky","blobEncryptionKey":"another"}).to_string(),
    );
    let mut again = MemorySink::default();
    scan(&mut source(&dir), &mut again).await;
    assert_eq!(before, payload(&again, "composerData:leaky"));
}

/// Proves change detection by watermark: a bubble rewritten in place (streaming, a new rowid)
/// is captured again with a new version; an unchanged database yields nothing; a restarted
/// source (cursors from the sink) yields nothing; the same content always the same id.
#[tokio::test]
async fn rewrites_are_new_versions_and_rescans_repeat_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    scan(&mut src, &mut sink).await;
    let first = ids(&sink);
    assert_eq!(scan(&mut src, &mut sink).await, 0);
    let key = format!("bubbleId:{CID}:b2");
    let old_rowid = g.rowid(&key);
    let mut texts = Vec::new();
    for t in ["In", "In `retry.rs`", "In `retry.rs`, line 40."] {
        g.bubble(CID, &assistant_bubble("b2", t, T0 + 5_000, (120, 40)));
        assert!(g.rowid(&key) > old_rowid);
        assert_eq!(scan(&mut src, &mut sink).await, 1, "rewrite to {t:?}");
        texts.push(payload(&sink, &key)["text"].as_str().unwrap().to_string());
    }
    assert_eq!(texts.last().unwrap(), "In `retry.rs`, line 40.");
    let all = ids(&sink);
    let versions: std::collections::HashSet<&String> = all
        .iter()
        .filter(|(_, id)| id.contains(&key))
        .map(|(_, id)| id)
        .collect();
    assert_eq!(versions.len(), 4);
    // Rewritten with content seen before: the id it had then.
    g.bubble(
        CID,
        &assistant_bubble("b2", "In `retry.rs`.", T0 + 5_000, (120, 40)),
    );
    let mut back = MemorySink::default();
    src.scan(&mut back, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert!(first.contains(&ids(&back)[0]));
    // A restart resumes from the stored watermark.
    let mut restarted = source(&dir);
    restarted.load_cursors(back.cursors_in(NAMESPACE));
    let mut none = MemorySink::default();
    assert_eq!(scan(&mut restarted, &mut none).await, 0);
    // A fresh source (no cursors) reads everything again with the same ids.
    let mut fresh = MemorySink::default();
    scan(&mut source(&dir), &mut fresh).await;
    let latest: std::collections::HashSet<_> = all.into_iter().chain(ids(&back)).collect();
    assert!(ids(&fresh).iter().all(|i| latest.contains(i)));
}

/// Proves a copy of a database at another path gives the same ids (nothing new downstream).
#[tokio::test]
async fn a_copied_database_gives_the_same_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(&tmp.path().join("a"));
    let g = populated(&dir);
    drop(g); // checkpoints the WAL into the main file, so a file copy is complete
    let copy = CursorDir::new(&tmp.path().join("b"));
    std::fs::copy(dir.global_path(), copy.global_path()).unwrap();
    let mut a = MemorySink::default();
    scan(&mut source(&dir), &mut a).await;
    let mut b = MemorySink::default();
    scan(&mut source(&copy), &mut b).await;
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(
        a.events().next().unwrap().source.location(),
        b.events().next().unwrap().source.location()
    );
}

/// Proves values that are not JSON objects (text, BLOB, invalid UTF-8) become dead letters by
/// rowid without their content, and capture goes on; BLOB JSON values are read like TEXT.
#[tokio::test]
async fn bad_values_are_dead_letters_and_blobs_are_read() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = dir.global();
    g.put_kv(
        &format!("bubbleId:{CID}:bad1"),
        "not json PLANTED_BAD_CONTENT",
    );
    g.put_kv_blob(
        &format!("bubbleId:{CID}:bad2"),
        b"\xff\xfe PLANTED_BAD_CONTENT",
    );
    g.put_kv(&format!("bubbleId:{CID}:bad3"), "[\"PLANTED_BAD_CONTENT\"]");
    g.put_kv_blob(
        &format!("bubbleId:{CID}:blob"),
        user_bubble("blob", "stored as a blob", "2025-12-25T19:36:35.467Z")
            .to_string()
            .as_bytes(),
    );
    let mut sink = MemorySink::default();
    let stats = source(&dir)
        .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!((stats.events, stats.bad_lines), (1, 3));
    assert_eq!(payload(&sink, ":blob@")["text"], "stored as a blob");
    let dead: Vec<_> = sink.dead().collect();
    assert_eq!(dead.len(), 3);
    for d in &dead {
        assert_eq!(d.stage, "capture");
        assert_eq!(d.source, g.path.display().to_string());
        assert!(!d.reason.contains("PLANTED"), "{}", d.reason);
    }
    let mut offsets: Vec<u64> = dead.iter().map(|d| d.offset).collect();
    offsets.sort();
    let expect: Vec<u64> = ["bad1", "bad2", "bad3"]
        .iter()
        .map(|b| g.rowid(&format!("bubbleId:{CID}:{b}")) as u64)
        .collect();
    assert_eq!(offsets, expect);
    assert!(!format!("{:?}", sink.batches).contains("PLANTED_BAD_CONTENT"));
}

/// Proves batching: at most 2,000 rows per batch, each with the cursor covering it, a stop
/// between batches loses nothing (the next scan resumes the first pass mid-prefix), and a
/// refused batch moves no cursor.
#[tokio::test]
async fn batches_resume_after_a_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = dir.global();
    let n = cursor_db::BATCH_ROWS + 500;
    g.conn.execute_batch("BEGIN").unwrap();
    for i in 0..n {
        g.bubble(
            CID,
            &user_bubble(&format!("b{i:05}"), "x", "2025-12-25T19:36:35.467Z"),
        );
    }
    g.conn.execute_batch("COMMIT").unwrap();
    let mut src = source(&dir);
    let mut refused = MemorySink {
        lease_lost: true,
        ..MemorySink::default()
    };
    assert!(matches!(
        src.scan(&mut refused, &CancellationToken::new(), &mut |_| {})
            .await,
        Err(CaptureError::LeaseLost)
    ));
    assert!(refused.cursors.is_empty());
    // Stopped before anything: nothing written.
    let stopped = CancellationToken::new();
    stopped.cancel();
    let mut sink = MemorySink::default();
    assert!(matches!(
        src.scan(&mut sink, &stopped, &mut |_| {}).await,
        Err(CaptureError::Stopped)
    ));
    assert!(sink.batches.is_empty());
    // Stopped after the first batch: the second is not read; the cursor says how far.
    let stop = CancellationToken::new();
    let mut once = StopAfterFirst {
        inner: MemorySink::default(),
        stop: stop.clone(),
    };
    assert!(matches!(
        src.scan(&mut once, &stop, &mut |_| {}).await,
        Err(CaptureError::Stopped)
    ));
    assert_eq!(once.inner.batches.len(), 1);
    let mut src = source(&dir);
    let stats = src
        .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(stats.events, n as u64);
    let sizes: Vec<usize> = sink.batches.iter().map(|b| b.events.len()).collect();
    assert_eq!(sizes, vec![cursor_db::BATCH_ROWS, 500]);
    let mid = Watermark::decode(&sink.batches[0].cursor.as_ref().unwrap().2).unwrap();
    let pass = mid
        .pass
        .clone()
        .expect("first pass in progress after batch 1");
    assert_eq!(
        pass.after,
        format!("bubbleId:{CID}:b{:05}", cursor_db::BATCH_ROWS - 1)
    );
    // Resume from the mid-pass cursor: exactly the rest.
    let mut resumed = source(&dir);
    resumed.load_cursors(HashMap::from([(
        g.path.display().to_string(),
        mid.encode(),
    )]));
    let mut rest = MemorySink::default();
    assert_eq!(scan(&mut resumed, &mut rest).await, 500);
    let a: std::collections::HashSet<_> = ids(&sink).into_iter().collect();
    assert!(ids(&rest).iter().all(|i| a.contains(i)));
}

/// Proves a shrunken table (deletions, VACUUM: `max(rowid)` below the watermark) is read
/// again from the start, and the repeated rows keep their ids.
#[tokio::test]
async fn a_shrunken_database_is_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    scan(&mut src, &mut sink).await;
    let before: std::collections::HashSet<_> = ids(&sink).into_iter().collect();
    g.conn
        .execute(
            "DELETE FROM cursorDiskKV WHERE rowid >= (SELECT max(rowid) - 2 FROM cursorDiskKV)",
            [],
        )
        .unwrap();
    g.conn.execute_batch("VACUUM").unwrap();
    let mut again = MemorySink::default();
    // Left: the composer and bubbles b1, b2 (b3, the legacy composer and the blob deleted).
    assert_eq!(scan(&mut src, &mut again).await, 3);
    assert!(ids(&again).iter().all(|i| before.contains(i)));
}

/// Proves a lock is "try again later", never an error, and nothing is lost: a rollback-journal
/// database held by an exclusive writer gives SQLITE_BUSY; once the writer commits, the next
/// scan reads everything.
#[tokio::test]
async fn a_locked_database_is_retried_later() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let path = dir.global_path();
    let w = rusqlite::Connection::open(&path).unwrap();
    w.execute_batch(
        "CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
         CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);",
    )
    .unwrap();
    w.execute_batch("BEGIN EXCLUSIVE").unwrap();
    w.execute(
        "INSERT INTO cursorDiskKV VALUES (?1, ?2)",
        [
            format!("bubbleId:{CID}:b1"),
            user_bubble("b1", "hi", "2025-12-25T19:36:35.467Z").to_string(),
        ],
    )
    .unwrap();
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    let stats = src
        .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
        .await
        .expect("busy is not an error");
    assert_eq!(stats.events, 0);
    assert!(sink.cursors.is_empty());
    w.execute_batch("COMMIT").unwrap();
    // The next poll hands the database back for another try.
    let again = src.poll().await;
    assert_eq!(again, vec![path.clone()]);
    let stats = src
        .on_change(&again, &mut sink, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(stats.events, 1);
    assert_eq!(scan(&mut src, &mut sink).await, 0);
}

/// Proves a database held in an open write transaction (WAL) is read consistently — the
/// committed rows, none of the pending ones — and that the writer is neither blocked nor
/// failed: its commit succeeds and its statements stay fast while we read.
#[tokio::test]
async fn an_open_write_transaction_is_not_disturbed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    let path = g.path.clone();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let commit_now = done.clone();
    let writer = std::thread::spawn(move || {
        let w = VscDb::open(&path);
        w.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        w.bubble(
            CID,
            &user_bubble("pending", "not committed yet", "2025-12-25T19:40:00.000Z"),
        );
        ready_tx.send(()).unwrap();
        let mut worst = Duration::ZERO;
        let mut i = 0;
        while !commit_now.load(std::sync::atomic::Ordering::SeqCst) {
            let t = Instant::now();
            w.bubble(
                CID,
                &user_bubble(&format!("p{i}"), "pending", "2025-12-25T19:40:00.000Z"),
            );
            worst = worst.max(t.elapsed());
            i += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        let t = Instant::now();
        w.conn
            .execute_batch("COMMIT")
            .expect("the writer's commit succeeds");
        (worst, t.elapsed(), i)
    });
    ready.recv().unwrap();
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    for _ in 0..20 {
        src.scan(&mut sink, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (worst, commit, written) = writer.join().unwrap();
    assert!(written > 0);
    assert!(
        worst < Duration::from_millis(200),
        "writer statement took {worst:?}"
    );
    assert!(
        commit < Duration::from_millis(500),
        "commit took {commit:?}"
    );
    let seen: Vec<_> = sink
        .events()
        .filter_map(|e| e.source.key().map(str::to_string))
        .collect();
    assert!(
        !seen
            .iter()
            .any(|k| k.ends_with(":pending") || k.contains(":p1")),
        "{seen:?}"
    );
    assert_eq!(seen.len(), 8);
    // After the commit, everything.
    assert_eq!(scan(&mut src, &mut sink).await, written as u64 + 1);
}

/// Proves `PRAGMA data_version` polling on the kept-open connection reports a database
/// another connection committed to, and only then.
#[tokio::test]
async fn polling_sees_other_connections_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    let mut src = source(&dir);
    let mut sink = MemorySink::default();
    scan(&mut src, &mut sink).await;
    assert!(src.poll().await.is_empty()); // first poll: a baseline
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(src.poll().await.is_empty());
    g.bubble(CID, &user_bubble("b9", "new", "2025-12-25T19:50:00.000Z"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let changed = src.poll().await;
    assert_eq!(changed, vec![g.path.clone()]);
    let stats = src
        .on_change(&changed, &mut sink, &CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(stats.events, 1);
}

/// Proves workspace databases become `workspace` events with the folder from
/// `workspace.json` (file URI, percent-decoded) or a multi-root `.code-workspace`'s folders,
/// and the watcher accepts database and WAL files only (never `-shm`).
#[tokio::test]
async fn workspaces_map_to_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    dir.global();
    let ws = dir.workspace("a1b2c3", "/home/u/my proj#1");
    ws.workspace_index(&[
        (CID, "Fix the retry budget", T0, T0 + 60_000),
        ("c2", "Other", T0, T0 + 90_000),
    ]);
    let file = tmp.path().join("multi.code-workspace");
    let multi = dir.workspace_multi("d4e5f6", &file, &["api", "/abs/web"]);
    multi.workspace_index(&[("c3", "Multi", T0, T0)]);
    let mut sink = MemorySink::default();
    let mut src = source(&dir);
    assert_eq!(scan(&mut src, &mut sink).await, 2);
    let a = payload(&sink, "a1b2c3/composer.composerData");
    assert_eq!(a["folder"], "/home/u/my proj#1");
    assert_eq!(a["workspace"], "a1b2c3");
    assert_eq!(a["composers"].as_array().unwrap().len(), 2);
    let e = sink.events().find(|e| e.id.contains("a1b2c3")).unwrap();
    assert_eq!(e.kind, "workspace");
    assert_eq!(e.timestamp_ms, Some(T0 + 90_000));
    assert_eq!(e.source.key(), Some("composer.composerData"));
    let m = payload(&sink, "d4e5f6/composer.composerData");
    assert_eq!(
        m["folders"],
        json!([tmp.path().join("api").display().to_string(), "/abs/web"])
    );
    // Unchanged: nothing; rewritten: a new version.
    assert_eq!(scan(&mut src, &mut sink).await, 0);
    ws.workspace_index(&[(CID, "Renamed", T0, T0 + 120_000)]);
    assert_eq!(scan(&mut src, &mut sink).await, 1);
    let accepts = src.watch().accepts;
    assert!(accepts(&dir.global_path()));
    assert!(accepts(
        &dir.workspace_dir("a1b2c3").join("state.vscdb-wal")
    ));
    assert!(!accepts(
        &dir.workspace_dir("a1b2c3").join("state.vscdb-shm")
    ));
    assert!(!accepts(
        &dir.workspace_dir("a1b2c3").join("workspace.json")
    ));
    assert_eq!(src.files().len(), 3);
}

/// Proves reading never writes Cursor's database file (content hash unchanged across scans,
/// polls and a dropped source), and `backlog_bytes` counts only databases never read.
#[tokio::test]
async fn reads_never_change_the_database_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = CursorDir::new(tmp.path());
    let g = populated(&dir);
    g.conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let before = file_hash(&g.path);
    let mtime = std::fs::metadata(&g.path).unwrap().modified().unwrap();
    let mut src = source(&dir);
    let files = src.files();
    assert_eq!(src.backlog_bytes(&files), files[0].1);
    let mut sink = MemorySink::default();
    scan(&mut src, &mut sink).await;
    src.poll().await;
    scan(&mut src, &mut sink).await;
    assert_eq!(src.backlog_bytes(&src.files()), 0);
    drop(src);
    assert_eq!(file_hash(&g.path), before);
    assert_eq!(
        std::fs::metadata(&g.path).unwrap().modified().unwrap(),
        mtime
    );
}

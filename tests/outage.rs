//! A store outage loses nothing: `BLUEPLANE_HOME` on a small tmpfs that is filled up while
//! `ingest` keeps capturing. The fast path must hold its batches (not let delivery counts
//! rise and dead-letter good events), and once space is back every event is stored.
//!
//! Needs root for `mount -t tmpfs` (CI runs as root); it fails, never skips, without it.
#![allow(clippy::print_stdout)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Env, count, write_corpus_from};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mount -t tmpfs failed ({st}): this test needs root to make a small full disk"
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes to `path` until the file system is full; returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler");
    let block = vec![0xa5u8; 64 * 1024];
    let mut n = 0;
    loop {
        match f.write(&block) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    // Fill the last partial block too.
    while let Ok(k) = f.write(&block[..512]) {
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    let _ = f.sync_all();
    n
}

fn xlen(env: &Env, key: &str) -> i64 {
    match support::redis::command(&env.redis.socket, &["XLEN", key]).expect("xlen") {
        support::redis::Resp::Integer(n) => n,
        other => panic!("XLEN {key}: {other:?}"),
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_full_disk_during_ingest_loses_nothing_and_dead_letters_nothing() {
    let corpus = tempfile::tempdir().expect("corpus");
    let home = tempfile::tempdir().expect("home");
    let mount = Tmpfs::mount(home.path(), "24m");
    let env = Env {
        redis: support::redis::TestRedis::start(),
        home,
        claude_dirs: vec![corpus.path().to_path_buf()],
    };
    let first = write_corpus_from(corpus.path(), 0, 4, 10);
    let mut ingest = env
        .cmd(&["ingest"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn ingest");
    wait_for(
        "the first lines to be stored",
        Duration::from_secs(30),
        || env.db().exists() && count(&env.db(), "SELECT count(*) FROM raw_traces") == first as i64,
    );

    // The disk fills up; capture goes on (Redis is elsewhere), storing cannot.
    let filler = env.home.path().join("filler");
    let filled = fill(&filler);
    let second = write_corpus_from(corpus.path(), 100, 60, 40);
    let total = (first + second) as i64;
    let outage = Instant::now();
    // Longer than MAX_DELIVERIES reclaim rounds of CLAIM_IDLE: under the old semantics every
    // held event would have been dead-lettered by now.
    std::thread::sleep(Duration::from_secs(35));
    let during = count(&env.db(), "SELECT count(*) FROM raw_traces");
    let captured =
        match support::redis::command(&env.redis.socket, &["HGET", "bp:stats", "captured"])
            .expect("hget")
        {
            support::redis::Resp::Bulk(Some(b)) => {
                String::from_utf8_lossy(&b).parse::<i64>().unwrap_or(0)
            }
            other => panic!("captured: {other:?}"),
        };
    assert!(
        during < total,
        "the outage did not stop storing ({during} of {total} stored): the test proves nothing"
    );
    assert_eq!(captured, total, "capture went on during the outage");
    assert_eq!(
        xlen(&env, "bp:dlq"),
        0,
        "nothing dead-lettered during the outage"
    );

    // Space comes back: everything is stored, nothing was lost or dead-lettered.
    std::fs::remove_file(&filler).expect("remove filler");
    let restored = Instant::now();
    wait_for("every event to be stored", Duration::from_secs(60), || {
        count(&env.db(), "SELECT count(*) FROM raw_traces") == total
    });
    let recovery = restored.elapsed();
    wait_for("the slow path to catch up", Duration::from_secs(60), || {
        let st = env.json(&["status", "--json"]);
        st["slow_path_backlog"] == 0 && st["pending"] == 0
    });
    assert_eq!(xlen(&env, "bp:dlq"), 0, "no dead letters");
    assert_eq!(
        count(&env.db(), "SELECT count(*) FROM sessions"),
        64,
        "every session derived"
    );
    let _ = ingest.kill();
    let _ = ingest.wait();
    println!(
        "figure: disk full for {:.0} s ({} MB filler): {during} of {total} events stored during \
         the outage, all {total} stored {:.1} s after space came back, 0 dead letters",
        restored.duration_since(outage).as_secs_f64(),
        filled / 1_000_000,
        recovery.as_secs_f64()
    );
    drop(env);
    drop(mount);
}

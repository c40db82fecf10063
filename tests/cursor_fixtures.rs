//! The hand-written Cursor values of `tests/data/cursor/` (see its README) written into real
//! `state.vscdb` files, captured by the real source in each privacy mode, and rendered as
//! stable text compared with `tests/data/cursor/payloads.expected` by `expect-test` (refresh
//! with `UPDATE_EXPECT=1 cargo test --test cursor_fixtures` and review the diff). A second
//! check proves no planted secret, code, command output or thinking survives `standard`.

mod support;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use blueplane::capture::{CaptureSource, CursorDb, MemorySink};
use blueplane::privacy::PrivacyMode;
use expect_test::expect_file;
use serde_json::Value;
use support::cursor::CursorDir;
use tokio_util::sync::CancellationToken;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor")
}

/// A Cursor data dir holding every fixture: `cursorDiskKV` rows in the global database,
/// `ItemTable` rows in one workspace database (folder `/home/u/proj`).
fn build(root: &Path) {
    let dir = CursorDir::new(root);
    let global = dir.global();
    let ws = dir.workspace("5d1e1e0f9c", "/home/u/proj");
    let mut files: Vec<PathBuf> = std::fs::read_dir(data())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    for f in files {
        let row: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let key = row["key"].as_str().unwrap();
        let value = row["value"].to_string();
        match row["table"].as_str() {
            Some("cursorDiskKV") => global.put_kv(key, &value),
            Some("ItemTable") => ws.put_item(key, &value),
            other => panic!("{}: table {other:?}", f.display()),
        }
    }
}

fn capture(root: &Path, mode: PrivacyMode) -> MemorySink {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sink = MemorySink::default();
    rt.block_on(async {
        CursorDb::new(Some(root.to_path_buf()), mode)
            .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap()
    });
    sink
}

fn render(root: &Path) -> String {
    let mut out = String::new();
    for mode in [
        PrivacyMode::Standard,
        PrivacyMode::Metadata,
        PrivacyMode::Full,
    ] {
        let sink = capture(root, mode);
        let mut events: Vec<_> = sink.events().collect();
        events.sort_by(|a, b| a.source.key().cmp(&b.source.key()));
        let _ = writeln!(
            out,
            "==== mode {} ({} events, {} dead)",
            mode.as_str(),
            events.len(),
            sink.dead().count()
        );
        for e in events {
            let _ = writeln!(
                out,
                "== {} {} id={} session={} ts={}",
                e.kind,
                e.source.key().unwrap_or("-"),
                e.id,
                e.session_id.as_deref().unwrap_or("-"),
                e.timestamp_ms.map_or("-".to_string(), |t| t.to_string())
            );
            let v: Value = serde_json::from_str(&e.payload).unwrap();
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap());
        }
    }
    out
}

#[test]
fn fixture_payloads_match_the_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    expect_file!["data/cursor/payloads.expected"].assert_eq(&render(tmp.path()));
}

/// Proves what the standard (and metadata) mode drops is gone from every fixture event,
/// while the full mode keeps it (so the planted markers are really in the input).
#[test]
fn standard_mode_drops_what_it_must() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path());
    let dropped = [
        "PLANTED_BLOB_KEY",
        "PLANTED_SPEC_KEY",
        "sk-ant-api03-PLANTED",
        "ghp_PLANTED",
        "PLANTED_RICH",
        "PLANTED_ATTACHED",
        "PLANTED_CODE",
        "PLANTED_COMMAND",
        "hunter2",
        "PLANTED_EDIT",
        "PLANTED_STACK_LINE",
        "PLANTED_THOUGHT",
        "PLANTED_AGENT_CONTENT",
        "PLANTED_USAGE_LABEL",
        "PLANTED_DRAFT",
    ];
    for mode in [PrivacyMode::Standard, PrivacyMode::Metadata] {
        let all = format!("{:?}", capture(tmp.path(), mode).batches);
        for p in dropped {
            assert!(!all.contains(p), "{p} survived {mode:?}");
        }
    }
    let full = format!("{:?}", capture(tmp.path(), PrivacyMode::Full).batches);
    for kept in [
        "PLANTED_CODE_ASSISTANT",
        "PLANTED_THOUGHT",
        "PLANTED_AGENT_CONTENT",
        "PLANTED_COMMAND_OUTPUT_42",
    ] {
        assert!(full.contains(kept), "{kept} missing in full mode");
    }
    for never in [
        "PLANTED_BLOB_KEY",
        "PLANTED_SPEC_KEY",
        "PLANTED_RICH",
        "PLANTED_ATTACHED",
        "PLANTED_CODE_BLOCK",
        "sk-ant-api03-PLANTED",
        "ghp_PLANTED",
    ] {
        assert!(!full.contains(never), "{never} in full mode");
    }
}

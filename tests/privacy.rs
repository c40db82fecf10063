//! Privacy (invariant 9): what the `standard` mode excludes reaches neither Redis, SQLite
//! (raw payloads included, decompressed), nor any output.
#![allow(clippy::print_stdout)]

mod support;

use std::path::Path;

use support::Env;

const SECRET: &str = "sk-ant-api03-PLANTEDsecretVALUE0123456789abcdefghijklmnop";
const GH_TOKEN: &str = "ghp_PLANTEDgithubTOKEN0123456789abcdefABCD";
const URL_PASSWORD: &str = "hunter2PLANTEDpw";
const SNIPPET: &str = "fn planted_snippet_xyz";
const OUTPUT: &str = "PLANTED_COMMAND_OUTPUT_42";

fn transcript() -> String {
    let env = |uuid: &str, ty: &str, ts: &str| {
        format!(
            r#""type":"{ty}","sessionId":"priv-1","uuid":"{uuid}","timestamp":"2026-04-01T10:00:{ts}.000Z","cwd":"/home/u/secretproj","version":"2.1.39""#
        )
    };
    let lines = [
        format!(
            r#"{{{},"message":{{"role":"user","content":"Use key {SECRET} and token {GH_TOKEN} to discuss the retry budget; db at postgres://admin:{URL_PASSWORD}@db.local/x"}}}}"#,
            env("p1", "user", "00")
        ),
        format!(
            r#"{{{},"requestId":"r1","message":{{"model":"claude-sonnet-4-20250514","id":"m1","role":"assistant","content":[{{"type":"text","text":"Here is the fix:\n```rust\n{SNIPPET}() {{ retry(3) }}\n```\nThe retry budget is three attempts."}}],"usage":{{"input_tokens":5,"output_tokens":7}}}}}}"#,
            env("a1", "assistant", "01")
        ),
        format!(
            r#"{{{},"requestId":"r1","message":{{"model":"claude-sonnet-4-20250514","id":"m1","role":"assistant","content":[{{"type":"tool_use","id":"t1","name":"Write","input":{{"file_path":"/home/u/secretproj/lib.rs","content":"{SNIPPET}() {{}}\nconst K: &str = \"{SECRET}\";\n"}}}}],"usage":{{"input_tokens":5,"output_tokens":9}}}}}}"#,
            env("a2", "assistant", "02")
        ),
        format!(
            r#"{{{},"message":{{"role":"user","content":[{{"tool_use_id":"t1","type":"tool_result","content":"wrote {SNIPPET}","is_error":false}}]}},"toolUseResult":{{"type":"create","filePath":"/home/u/secretproj/lib.rs","content":"{SNIPPET}() {{}}","structuredPatch":[]}}}}"#,
            env("u2", "user", "03")
        ),
        format!(
            r#"{{{},"requestId":"r2","message":{{"model":"claude-sonnet-4-20250514","id":"m2","role":"assistant","content":[{{"type":"tool_use","id":"t2","name":"Bash","input":{{"command":"cat secrets.txt | grep {SECRET}"}}}}],"usage":{{"input_tokens":5,"output_tokens":9}}}}}}"#,
            env("a3", "assistant", "04")
        ),
        format!(
            r#"{{{},"message":{{"role":"user","content":[{{"tool_use_id":"t2","type":"tool_result","content":"{OUTPUT}\n{SECRET}","is_error":true}}]}},"toolUseResult":{{"stdout":"{OUTPUT}","stderr":"{SECRET}","interrupted":false}}}}"#,
            env("u3", "user", "05")
        ),
        format!(
            r#"{{{},"message":{{"role":"user","content":"<command-name>/cost</command-name><local-command-stdout>{OUTPUT}</local-command-stdout>"}}}}"#,
            env("u4", "user", "06")
        ),
        format!(
            r#"{{{},"message":{{"role":"assistant","content":[{{"type":"thinking","thinking":"the user pasted {SECRET}; {SNIPPET}","signature":"x"}}]}},"requestId":"r3","message2":null}}"#,
            env("a4", "assistant", "07")
        ),
    ];
    lines.join("\n") + "\n"
}

const PLANTED: &[&str] = &[
    SECRET,
    GH_TOKEN,
    URL_PASSWORD,
    SNIPPET,
    OUTPUT,
    "planted_snippet",
];

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for p in PLANTED {
        assert!(!text.contains(p), "{what} contains '{p}'");
    }
}

fn scan_sqlite(db: &Path) -> usize {
    let c = rusqlite::Connection::open(db).expect("db");
    let mut scanned = 0;
    // Every raw payload, decompressed.
    let payloads = blueplane::store::blocks::all_texts(&c).expect("payloads");
    assert!(!payloads.is_empty());
    for (_, p) in payloads {
        let s = p.expect("zlib");
        assert_clean("raw_traces payload", s.as_bytes());
        scanned += 1;
    }
    // Every text column of every table.
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("prep")
        .query_map([], |r| r.get(0))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    for t in tables {
        if t == "raw_traces" || t.starts_with("sqlite_") {
            continue;
        }
        let cols = c
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .map(|s| s.column_count())
            .unwrap_or(0);
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("select");
        let mut rows = stmt.query([]).expect("query");
        while let Some(r) = rows.next().expect("row") {
            for i in 0..cols {
                let v: rusqlite::types::Value = r.get(i).expect("col");
                let bytes = match v {
                    rusqlite::types::Value::Text(s) => s.into_bytes(),
                    rusqlite::types::Value::Blob(b) => b,
                    _ => continue,
                };
                assert_clean(&format!("table {t}"), &bytes);
                scanned += 1;
            }
        }
    }
    // And the file itself (FTS segments, free pages, WAL).
    for suffix in ["", "-wal"] {
        let f = Path::new(&format!("{}{suffix}", db.display())).to_path_buf();
        if let Ok(b) = std::fs::read(&f) {
            assert_clean(&format!("file {}", f.display()), &b);
        }
    }
    scanned
}

/// Everything Redis was ever asked to store is in its append-only file.
fn scan_redis_aof(dir: &Path) -> usize {
    let mut n = 0;
    let aof = dir.join("appendonlydir");
    for e in std::fs::read_dir(&aof).expect("aof dir").flatten() {
        let b = std::fs::read(e.path()).expect("read aof");
        assert_clean(&format!("redis {}", e.path().display()), &b);
        n += b.len();
    }
    n
}

#[test]
fn planted_secrets_and_code_are_stored_nowhere() {
    let dir = tempfile::tempdir().expect("dir");
    let proj = dir.path().join("projects/-home-u-secretproj");
    std::fs::create_dir_all(&proj).expect("mkdir");
    std::fs::write(proj.join("priv-1.jsonl"), transcript()).expect("write");
    let env = Env::new(&[dir.path().to_path_buf()]);
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["events"], 8, "{s}");
    let cells = scan_sqlite(&env.db());
    let aof_bytes = scan_redis_aof(env.redis.dir.path());
    // Tool and CLI output.
    for args in [
        vec!["sessions", "--json"],
        vec!["search", "retry budget", "--json"],
        vec!["search", "planted_snippet_xyz", "--json"],
        vec![
            "search",
            "PLANTEDsecretVALUE0123456789abcdefghijklmnop",
            "--json",
        ],
        vec!["report", "daily", "--json"],
        vec!["report", "session", "--json"],
        vec!["status", "--json"],
    ] {
        let out = env.run(&args);
        assert_clean(&format!("output of {args:?}"), &out.stdout);
    }
    // Prose is kept for search, with the secret redacted.
    let hits = env.json(&["search", "retry budget", "--json"]);
    let hits = hits["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 2, "{hits:?}");
    let c = rusqlite::Connection::open(env.db()).expect("db");
    let prompt: String = c
        .query_row("SELECT text FROM messages WHERE is_prompt = 1", [], |r| {
            r.get(0)
        })
        .expect("prompt");
    assert!(prompt.contains("[REDACTED"), "{prompt}");
    assert!(prompt.contains("postgres://admin:"), "{prompt}");
    // Metadata survives: tool names, file path, error flag.
    let tools: Vec<(String, i64)> = c
        .prepare("SELECT name, is_error FROM tool_calls ORDER BY name")
        .expect("prep")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("q")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(
        tools,
        vec![("Bash".to_string(), 1), ("Write".to_string(), 0)]
    );
    let meta: String = c
        .query_row(
            "SELECT input_meta FROM tool_calls WHERE name = 'Write'",
            [],
            |r| r.get(0),
        )
        .expect("meta");
    assert!(
        meta.contains("/home/u/secretproj/lib.rs") && meta.contains("content_chars"),
        "{meta}"
    );
    println!(
        "figure: scanned {cells} SQLite values and {aof_bytes} bytes of Redis AOF: no planted secret or code"
    );
}

#[test]
fn metadata_mode_keeps_no_text_and_says_why_search_is_empty() {
    let dir = tempfile::tempdir().expect("dir");
    let proj = dir.path().join("projects/-p");
    std::fs::create_dir_all(&proj).expect("mkdir");
    std::fs::write(proj.join("priv-1.jsonl"), transcript()).expect("write");
    let env = Env::new(&[dir.path().to_path_buf()]);
    std::fs::write(
        env.home.path().join("config.toml"),
        "[privacy]\nmode = \"metadata\"\n",
    )
    .expect("config");
    env.run(&["backfill"]);
    assert_eq!(
        support::count(
            &env.db(),
            "SELECT count(*) FROM messages WHERE text IS NOT NULL"
        ),
        0
    );
    assert_eq!(
        support::count(
            &env.db(),
            "SELECT count(*) FROM messages WHERE is_prompt = 1"
        ),
        1
    );
    let r = env.json(&["search", "retry", "--json"]);
    assert_eq!(r["hits"].as_array().map(Vec::len), Some(0));
    assert!(r["notice"].as_str().expect("notice").contains("metadata"));
}

//! The CLI as a shell pipeline sees it: `blueplane report session | head -1` must not panic.
#![allow(clippy::print_stdout)]

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;

use support::Env;

/// `days` sessions, one per day from 2022-01-01: a long prompt (it becomes the title) and
/// an answer with usage, so daily, session and session-list output all have `days` rows.
fn write_days(dir: &Path, days: usize) {
    use std::io::Write;
    let project = dir.join("projects/-p");
    std::fs::create_dir_all(&project).expect("mkdir");
    let padding = "check the retry budget of the uploader again ".repeat(3);
    for d in 0..days {
        let sid = format!("00000000-0000-4000-9000-{d:012}");
        let ts = chrono::DateTime::from_timestamp(1_641_038_400 + d as i64 * 86_400, 0)
            .expect("ts")
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(project.join(format!("{sid}.jsonl"))).expect("create"),
        );
        writeln!(f, r#"{{"type":"user","sessionId":"{sid}","uuid":"u-{d}","timestamp":"{ts}","cwd":"/p","message":{{"role":"user","content":"day {d}: {padding}"}}}}"#).expect("w");
        writeln!(f, r#"{{"type":"assistant","sessionId":"{sid}","uuid":"a-{d}","timestamp":"{ts}","cwd":"/p","requestId":"r{d}","message":{{"model":"claude-sonnet-4-20250514","id":"m{d}","type":"message","role":"assistant","content":[{{"type":"text","text":"ok"}}],"usage":{{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}}}}}"#).expect("w");
    }
}

/// Runs `args` with stdout on a pipe, reads one line, closes the pipe, and returns the exit
/// status, the stderr text and the first line.
fn first_line_then_close(env: &Env, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut child = env
        .cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("read first line");
        // Dropping the reader closes the last read end: the next write gets EPIPE.
    }
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    (child.wait().expect("wait"), err, first)
}

#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("dir");
    write_days(dir.path(), 1_500);
    let env = Env::new(&[dir.path().to_path_buf()]);
    let s = env.json(&["backfill", "--json"]);
    assert_eq!(s["sessions"], 1_500, "{s}");
    for args in [
        &["report", "session"][..],
        &["report", "daily"],
        &["sessions", "--limit", "500"],
        &["report", "session", "--json"],
        &["sessions", "--limit", "500", "--json"],
    ] {
        // More than the pipe buffer (64 KiB) plus what the reader buffers (8 KiB), or every
        // write would succeed before the close.
        let full = env.run(args).stdout.len();
        assert!(full > 80 * 1024, "{args:?} prints only {full} bytes");
        let (status, stderr, first) = first_line_then_close(&env, args);
        assert!(!first.is_empty(), "{args:?} printed nothing");
        assert!(
            status.success(),
            "{args:?} | head -1 exited with {status}; stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("panicked") && stderr.trim().is_empty(),
            "{args:?} | head -1 wrote to stderr:\n{stderr}"
        );
        println!(
            "figure: {args:?} ({full} bytes) | head -1 -> {status}, stderr empty; first line {:?}",
            first.trim_end().get(..40).unwrap_or(first.trim_end())
        );
    }
}

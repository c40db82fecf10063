//! Cancellation of a tool other than search: `get_tool_stats` of one session with 800,000
//! tool calls (read from the calls themselves, not the rollups: about
//! a second of SQLite work in a debug build), called over stdio and abandoned with
//! `notifications/cancelled` 100 ms in. The server must stop the query: in the window after
//! the cancel it spends under half the CPU time the same call takes when it runs to its end
//! (over an idle baseline), and it still answers afterwards. Without the call's token wired to
//! the query, the query runs on to its end and the check fails.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Env;

const ROWS: i64 = 800_000;

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    ticks / 100.0
}

struct Stdio2 {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Drop for Stdio2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stdio2 {
    fn send(&mut self, v: &Value) {
        let mut line = v.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).expect("write");
        self.stdin.flush().expect("flush");
    }

    /// Reads messages until the response to `id`.
    fn wait(&mut self, id: i64) -> Value {
        loop {
            let mut l = String::new();
            let n = self.stdout.read_line(&mut l).expect("read");
            assert!(n > 0, "serve closed stdout");
            let v: Value = serde_json::from_str(&l).expect("a JSON-RPC line");
            if v["id"] == id {
                return v;
            }
        }
    }

    fn call(&mut self, id: i64) {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                           "params": {"name": "get_tool_stats", "arguments": {"session_id": "s"}}}));
    }
}

#[test]
fn a_cancelled_get_tool_stats_stops_on_the_server() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("no /proc: the CPU check needs Linux");
        return;
    }
    let empty = tempfile::tempdir().expect("tempdir");
    let env = Env::new(&[empty.path().to_path_buf()]);
    env.run(&["backfill", "--json"]);
    {
        let c = rusqlite::Connection::open(env.db()).expect("open the store");
        c.execute_batch(&format!(
            "BEGIN;
             INSERT INTO sessions (session_id, platform, started_at, ended_at)
                 VALUES ('s', 'claude_code', 1, 2);
             INSERT INTO tool_calls (tool_use_id, session_id, platform, name, started_at, finished_at)
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
                 SELECT 't' || i, 's', 'claude_code', 'Bash' || (i % 7), i, i + 1 FROM n;
             COMMIT;"
        ))
        .expect("insert the tool calls");
    }
    let mut child = env
        .cmd(&["serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut s = Stdio2 {
        child,
        stdin,
        stdout,
    };
    let pid = s.child.id();
    s.send(
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "cancel-test", "version": "0"}}}),
    );
    s.wait(1);
    s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    // The call run to its end: its wall and CPU time.
    let (c0, t0) = (cpu_s(pid), Instant::now());
    s.call(2);
    let full = s.wait(2);
    let (slow_s, slow_cpu) = (t0.elapsed().as_secs_f64(), cpu_s(pid) - c0);
    assert_eq!(
        full["result"]["structuredContent"]["tools"]
            .as_array()
            .map(|t| t.iter().filter_map(|x| x["calls"].as_i64()).sum::<i64>()),
        Some(ROWS),
        "{full}"
    );
    assert!(
        slow_cpu >= 0.3,
        "the call is too fast to tell a stopped query from a finished one: {slow_cpu:.2} s CPU"
    );
    let window = Duration::from_secs_f64((1.5 * slow_s).max(1.0));
    let c1 = cpu_s(pid);
    std::thread::sleep(window);
    let idle = cpu_s(pid) - c1;

    // The same call, cancelled 100 ms in.
    s.call(3);
    std::thread::sleep(Duration::from_millis(100));
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                   "params": {"requestId": 3, "reason": "the test moved on"}}),
    );
    let c2 = cpu_s(pid);
    std::thread::sleep(window);
    let used = cpu_s(pid) - c2;
    assert!(
        used - idle < 0.5 * slow_cpu,
        "after the cancel the server used {used:.2} s CPU in {:.1} s (idle {idle:.2} s); the whole call takes {slow_cpu:.2} s",
        window.as_secs_f64()
    );
    // Still serving.
    s.send(&json!({"jsonrpc": "2.0", "id": 4, "method": "ping"}));
    assert!(s.wait(4)["result"].is_object());
}

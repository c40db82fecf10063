//! blueplane's usage reports against ccusage's own output: every oracle file in
//! `tests/data/ccusage-oracle/` (its README.md says how each was made and which ccusage
//! quirks the comparisons below encode; "quirk N" refers to its list).
//!
//! For each tree and zone, `blueplane report daily|weekly|monthly|session --json -z <tz>`
//! is compared with ccusage's `claude daily|weekly|monthly|session --json -z <tz>` file:
//! every row and the totals, the four token columns and the total exactly, the cost within
//! 1e-9 USD. blueplane follows ccusage's default `auto` mode (a line's legacy `costUSD`
//! wins, quirk 2); the `-calculate` files are compared on a blueplane run over a copy of the
//! tree without `costUSD`, or on the same run when the tree has no `costUSD` at all (then
//! the two modes agree, quirk 2). The `*-session-id-*` files are compared response by
//! response with what blueplane stored.
//!
//! Trees (each backfilled once, by one test, and reused for every report and zone):
//! - `ccusage`: the fixture dir as is (auto), and a copy without `costUSD` (calculate).
//! - `spotter`, `ccl`, `ccl-compact`: built in a tempdir exactly as the README says.
//! - `ccl` as ccusage reads it: ccusage sees only lines with the bytes `"usage":{` (quirk 1),
//!   so its `ccl-*` files are compared with blueplane over the `ccl` tree cut down to those
//!   lines; blueplane over the full `ccl` tree reads the spaced lines too and must match
//!   ccusage's `ccl-compact-*` files instead.
//! - `synthetic` and `probe`: the directories checked in next to the oracle files.
//!
//! The `*-blocks-*` files (ccusage's 5-hour billing blocks) are compared with
//! `blueplane report blocks --json -z <tz>` block by block; see `compare_blocks` for what
//! depends on the clock. `every_oracle_file_is_compared` checks that no file is left out.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use blueplane::capture::claude_code::{FileContext, Parsed, parse_line};
use blueplane::privacy::PrivacyMode;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::Value;
use support::{Env, fixtures};

// ---------------------------------------------------------------------------------------
// Which oracle files exist, and which test compares them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Auto,
    Calculate,
}

impl Mode {
    fn suffix(self) -> &'static str {
        match self {
            Mode::Auto => "",
            Mode::Calculate => "-calculate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    Daily,
    Weekly,
    Monthly,
    Session,
    Blocks,
}

impl Report {
    /// The report's name, the same for both tools.
    fn name(self) -> &'static str {
        match self {
            Report::Daily => "daily",
            Report::Weekly => "weekly",
            Report::Monthly => "monthly",
            Report::Session => "session",
            Report::Blocks => "blocks",
        }
    }

    /// (array, row key) in ccusage's JSON.
    fn ccusage_keys(self) -> (&'static str, &'static str) {
        match self {
            Report::Daily => ("daily", "date"),
            Report::Weekly => ("weekly", "week"),
            Report::Monthly => ("monthly", "month"),
            Report::Session => ("sessions", "sessionId"),
            Report::Blocks => ("blocks", "id"),
        }
    }
}

const ALL_REPORTS: &[Report] = &[
    Report::Daily,
    Report::Weekly,
    Report::Monthly,
    Report::Session,
    Report::Blocks,
];
const BOTH_ZONES: &[&str] = &["UTC", "Asia/Kathmandu"];
const BOTH_MODES: &[Mode] = &[Mode::Auto, Mode::Calculate];

/// The files of one oracle tree: `<name>-<report>-<tz>[-calculate].json` for each
/// combination, plus `<name>-session-id-<id>-UTC[-calculate].json` for every session of
/// `<name>-session-UTC-calculate.json` when `session_ids` (README, "Version and
/// environment").
struct OracleSet {
    name: &'static str,
    reports: &'static [Report],
    zones: &'static [&'static str],
    modes: &'static [Mode],
    session_ids: bool,
}

const ORACLES: &[OracleSet] = &[
    OracleSet {
        name: "ccusage",
        reports: ALL_REPORTS,
        zones: BOTH_ZONES,
        modes: BOTH_MODES,
        session_ids: true,
    },
    OracleSet {
        name: "spotter",
        reports: ALL_REPORTS,
        zones: BOTH_ZONES,
        modes: BOTH_MODES,
        session_ids: true,
    },
    OracleSet {
        name: "ccl",
        reports: ALL_REPORTS,
        zones: BOTH_ZONES,
        modes: BOTH_MODES,
        session_ids: true,
    },
    OracleSet {
        name: "ccl-compact",
        reports: ALL_REPORTS,
        zones: BOTH_ZONES,
        modes: BOTH_MODES,
        session_ids: true,
    },
    OracleSet {
        name: "synthetic",
        reports: &[Report::Daily, Report::Session],
        zones: &["UTC"],
        modes: &[Mode::Calculate],
        session_ids: false,
    },
    // Compared by `probe_matches_ccusage_day_by_day_and_per_week_and_month`.
    OracleSet {
        name: "probe",
        reports: &[Report::Daily],
        zones: &["UTC"],
        modes: &[Mode::Calculate],
        session_ids: false,
    },
];

fn oracle_set(name: &str) -> &'static OracleSet {
    ORACLES
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no oracle set {name}"))
}

fn oracle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ccusage-oracle")
}

fn oracle(file: &str) -> Value {
    let p = oracle_dir().join(file);
    let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("oracle {}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("oracle {}: {e}", p.display()))
}

fn file_name(name: &str, report: Report, tz: &str, mode: Mode) -> String {
    format!(
        "{name}-{}-{}{}.json",
        report.name(),
        tz.replace('/', "-"),
        mode.suffix()
    )
}

fn session_id_files(name: &str, mode: Mode) -> Vec<(String, String)> {
    let list = oracle(&format!("{name}-session-UTC-calculate.json"));
    let ids: Vec<(String, String)> = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            let id = s["sessionId"].as_str().expect("sessionId").to_string();
            let file = format!("{name}-session-id-{id}-UTC{}.json", mode.suffix());
            (id, file)
        })
        .collect();
    assert!(!ids.is_empty(), "{name}: no sessions");
    ids
}

#[test]
fn every_oracle_file_is_compared() {
    let mut used = BTreeSet::new();
    for set in ORACLES {
        for &mode in set.modes {
            for tz in set.zones {
                for &report in set.reports {
                    used.insert(file_name(set.name, report, tz, mode));
                }
            }
            if set.session_ids {
                used.extend(session_id_files(set.name, mode).into_iter().map(|f| f.1));
            }
        }
    }
    let present: BTreeSet<String> = std::fs::read_dir(oracle_dir())
        .expect("oracle dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .filter(|n| n.ends_with(".json"))
        .collect();
    let missing: Vec<&String> = used.difference(&present).collect();
    assert!(missing.is_empty(), "oracle files missing: {missing:?}");
    let left_out: Vec<&String> = present.difference(&used).collect();
    assert!(
        left_out.is_empty(),
        "oracle files no test compares: {left_out:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Figures.

/// One row's usage: the token columns and the cost in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    input: i64,
    output: i64,
    cache_creation: i64,
    cache_read: i64,
    total: i64,
    cost: f64,
}

impl Usage {
    fn tokens(&self) -> [i64; 5] {
        [
            self.input,
            self.output,
            self.cache_creation,
            self.cache_read,
            self.total,
        ]
    }

    fn add(&mut self, o: &Usage) {
        self.input += o.input;
        self.output += o.output;
        self.cache_creation += o.cache_creation;
        self.cache_read += o.cache_read;
        self.total += o.total;
        self.cost += o.cost;
    }

    fn of_ccusage(v: &Value) -> Usage {
        Usage {
            input: int(v, "inputTokens"),
            output: int(v, "outputTokens"),
            cache_creation: int(v, "cacheCreationTokens"),
            cache_read: int(v, "cacheReadTokens"),
            total: int(v, "totalTokens"),
            cost: v["totalCost"].as_f64().expect("totalCost"),
        }
    }

    fn of_blueplane(v: &Value) -> Usage {
        let t = &v["tokens"];
        Usage {
            input: int(t, "input"),
            output: int(t, "output"),
            cache_creation: int(t, "cache_creation"),
            cache_read: int(t, "cache_read"),
            total: int(t, "total"),
            cost: v["cost_usd"].as_f64().expect("cost_usd"),
        }
    }
}

fn int(v: &Value, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("no integer '{k}' in {v}"))
}

type Rows = BTreeMap<String, Usage>;

fn collect_rows<'a>(what: &str, rows: impl Iterator<Item = (&'a str, Usage)>) -> Rows {
    let mut out = Rows::new();
    for (k, u) in rows {
        assert!(
            out.insert(k.to_string(), u).is_none(),
            "{what}: two rows {k}"
        );
    }
    out
}

/// The rows and totals of a ccusage report.
fn ccusage_rows(v: &Value, report: Report) -> (Rows, Usage) {
    let (array, key) = report.ccusage_keys();
    let rows = v[array]
        .as_array()
        .unwrap_or_else(|| panic!("ccusage report without '{array}'"))
        .iter()
        .map(|r| (r[key].as_str().expect("row key"), Usage::of_ccusage(r)));
    (
        collect_rows("ccusage", rows),
        Usage::of_ccusage(&v["totals"]),
    )
}

/// The rows and totals of a blueplane report.
fn blueplane_rows(v: &Value) -> (Rows, Usage) {
    let rows = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["key"].as_str().expect("key"), Usage::of_blueplane(r)));
    (
        collect_rows("blueplane", rows),
        Usage::of_blueplane(&v["totals"]),
    )
}

fn assert_usage(what: &str, ours: &Usage, theirs: &Usage) {
    assert_eq!(
        ours.tokens(),
        theirs.tokens(),
        "{what}: tokens [input, output, cache creation, cache read, total], blueplane left, ccusage right"
    );
    assert!(
        (ours.cost - theirs.cost).abs() < 1e-9,
        "{what}: cost blueplane {} ccusage {}",
        ours.cost,
        theirs.cost
    );
}

fn assert_rows(what: &str, ours: &Rows, theirs: &Rows) {
    assert!(!theirs.is_empty(), "{what}: the ccusage side has no rows");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{what}: row keys differ\nblueplane {ours:#?}\nccusage {theirs:#?}"
    );
    for (k, a) in ours {
        assert_usage(&format!("{what}, row {k}"), a, &theirs[k]);
    }
}

/// Sums rows under new keys.
fn rebucket(rows: &Rows, key: impl Fn(&str) -> String) -> Rows {
    let mut out = Rows::new();
    for (k, u) in rows {
        out.entry(key(k)).or_default().add(u);
    }
    out
}

fn date(day: &str) -> NaiveDate {
    NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap_or_else(|e| panic!("date {day}: {e}"))
}

/// The first day, `YYYY-MM-DD`, of the week that starts on `first` and holds `day`.
fn week_of(day: &str, first: Weekday) -> String {
    let d = date(day);
    let back = (d.weekday().num_days_from_monday() + 7 - first.num_days_from_monday()) % 7;
    (d - chrono::Duration::days(back.into()))
        .format("%Y-%m-%d")
        .to_string()
}

fn month_of(day: &str) -> String {
    day[..7].to_string()
}

// ---------------------------------------------------------------------------------------
// blueplane runs.

/// A backfilled environment and its reports, each fetched once.
struct Blueplane {
    env: Env,
    reports: std::cell::RefCell<BTreeMap<(&'static str, String), Value>>,
}

fn backfill(claude_dir: &Path) -> Blueplane {
    let env = Env::new(&[claude_dir.to_path_buf()]);
    let summary = env.json(&["backfill", "--json"]);
    assert_eq!(summary["bad_lines"], 0, "{summary}");
    Blueplane {
        env,
        reports: Default::default(),
    }
}

impl Blueplane {
    fn report(&self, report: Report, tz: &str) -> Value {
        self.reports
            .borrow_mut()
            .entry((report.name(), tz.to_string()))
            .or_insert_with(|| {
                self.env
                    .json(&["report", report.name(), "--json", "-z", tz])
            })
            .clone()
    }
}

// ---------------------------------------------------------------------------------------
// Trees.

fn jsonl_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no transcripts below {}", dir.display());
    out
}

/// `cp -a <src>/. <dst>/`: every directory and file below `src`.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("mkdir");
    for e in std::fs::read_dir(src).unwrap_or_else(|e| panic!("{}: {e}", src.display())) {
        let e = e.expect("entry");
        let to = dst.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).expect("copy");
        }
    }
}

/// The README's `spotter` and `ccl` trees: `cp -a <fixture>/. <cfg>/projects/<name>/`.
fn fixture_under_projects(tmp: &Path, fixture: &str, name: &str) -> PathBuf {
    let cfg = tmp.join(format!("{name}-cfg"));
    copy_tree(&fixtures().join(fixture), &cfg.join("projects").join(name));
    cfg
}

/// A copy of `src` at `dst` with every line of every `.jsonl` file passed through `f`
/// (`None` drops the line). Line ends stay as they are. Returns how many lines changed.
fn rewritten_copy(src: &Path, dst: &Path, f: impl Fn(&str) -> Option<String>) -> usize {
    copy_tree(src, dst);
    let mut changed = 0;
    for file in jsonl_files(dst) {
        let text = std::fs::read_to_string(&file).expect("read");
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            match f(body) {
                Some(b) => {
                    changed += usize::from(b != body);
                    out.push_str(&b);
                    out.push_str(&line[body.len()..]);
                }
                None => changed += 1,
            }
        }
        std::fs::write(&file, out).expect("write");
    }
    changed
}

/// A line re-serialized without spaces, as the README's
/// `json.dumps(obj, separators=(",", ":"), ensure_ascii=False)` does: whitespace outside
/// strings goes, keys keep their order (serde_json's `Value` would sort them). For the
/// claude-code-log fixtures this gives the same bytes as Python (they have no escapes
/// that `json.dumps` would rewrite); that the JSON is unchanged is checked here.
fn compact(line: &str) -> Option<String> {
    if line.trim().is_empty() {
        return Some(line.to_string());
    }
    let mut out = String::with_capacity(line.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in line.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    let before: Value = serde_json::from_str(line).expect("fixture line is JSON");
    let after: Value = serde_json::from_str(&out).expect("compact line is JSON");
    assert_eq!(before, after, "compacting changed {line}");
    Some(out)
}

/// The bytes by which ccusage finds usage lines (quirk 1).
const USAGE_BYTES: &str = r#""usage":{"#;

/// The `ccl` and `ccl-compact` trees of the README.
fn ccl_trees(tmp: &Path) -> (PathBuf, PathBuf) {
    let ccl = fixture_under_projects(tmp, "claude-code-log", "ccl");
    let compact_cfg = tmp.join("ccl-compact-cfg");
    let changed = rewritten_copy(&ccl, &compact_cfg, compact);
    assert!(changed > 0, "nothing to compact in the ccl tree");
    (ccl, compact_cfg)
}

/// Asserts that no line of the tree has a `costUSD`: there ccusage's `auto` and
/// `calculate` modes give the same figures (quirk 2), so one blueplane run serves both.
fn assert_no_cost_usd(tree: &Path) {
    for file in jsonl_files(tree) {
        let text = std::fs::read_to_string(&file).expect("read");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("JSON line");
            assert!(
                v.get("costUSD").is_none(),
                "{} has costUSD: {line}",
                file.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Sessions: ccusage names them by path, blueplane by the `sessionId` field (quirk 5).

/// ccusage's (session, project) of a transcript below `projects/` (quirk 5): the file
/// name directly under a project dir (`spotter/short.jsonl` -> `short`); the parent of a
/// `subagents/` dir (`spotter/4d56…/subagents/agent-x.jsonl` -> `4d56…`); else the dir
/// that holds the file (`project-alpha/session-alpha/chat.jsonl` -> `session-alpha`,
/// `ccl/minimal_showcase/5555….jsonl` -> `minimal_showcase`). The project is the path
/// above the session. `compare_sessions` checks both against ccusage's own rows.
fn ccusage_session(projects: &Path, file: &Path) -> (String, String) {
    let rel: Vec<String> = file
        .strip_prefix(projects)
        .expect("below projects/")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let n = rel.len();
    let stem = file
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    let (session, project) = if n == 2 {
        (stem, &rel[..1])
    } else if n >= 4 && rel[n - 2] == "subagents" {
        (rel[n - 3].clone(), &rel[..n - 3])
    } else {
        assert!(n >= 3, "{} is not below a project dir", file.display());
        (rel[n - 2].clone(), &rel[..n - 2])
    };
    (session, project.join("/"))
}

/// How the sessions of the two tools relate, from the lines ccusage reads in `tree`.
struct SessionMap {
    /// (ccusage session, blueplane session) of every usage line ccusage reads.
    edges: BTreeSet<(String, String)>,
    /// ccusage's project of each session.
    projects: BTreeMap<String, String>,
}

fn session_map(tree: &Path) -> SessionMap {
    let projects_dir = tree.join("projects");
    let mut map = SessionMap {
        edges: BTreeSet::new(),
        projects: BTreeMap::new(),
    };
    for file in jsonl_files(&projects_dir) {
        let (session, project) = ccusage_session(&projects_dir, &file);
        // blueplane's own capture decides its session (the `sessionId` field, else the path).
        let ctx = FileContext::for_path(&file);
        let text = std::fs::read_to_string(&file).expect("read");
        let mut offset = 0u64;
        for line in text.split_inclusive('\n') {
            let body = line.trim_end_matches(['\n', '\r']);
            if body.contains(USAGE_BYTES) {
                let ours = match parse_line(&ctx, offset, body.as_bytes(), PrivacyMode::Full) {
                    Parsed::Event(e) => e.session_id.expect("blueplane gives the line a session"),
                    other => panic!(
                        "blueplane does not read a line ccusage reads ({}): {other:?}",
                        file.display()
                    ),
                };
                map.edges.insert((session.clone(), ours));
                let p = map
                    .projects
                    .entry(session.clone())
                    .or_insert(project.clone());
                assert_eq!(*p, project, "session {session} in two projects");
            }
            offset += line.len() as u64;
        }
    }
    map
}

/// Groups of sessions that share lines: (ccusage sessions, blueplane sessions). Each
/// usage line ties its ccusage session (path) to its blueplane session (field); both
/// tools count every line under exactly one session of its group, so the groups' sums
/// must agree even where the ids do not. In `ccl`, `minimal_showcase/5555….jsonl` (ccusage
/// `minimal_showcase`) and its sub-agent file (ccusage `5555…`) both carry
/// `sessionId` `5555…`: one group, one blueplane row against two ccusage rows.
fn session_groups(map: &SessionMap) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let mut groups: Vec<(BTreeSet<String>, BTreeSet<String>)> = Vec::new();
    for (c, b) in &map.edges {
        let mut g = (BTreeSet::from([c.clone()]), BTreeSet::from([b.clone()]));
        let mut i = 0;
        while i < groups.len() {
            if groups[i].0.contains(c) || groups[i].1.contains(b) {
                let other = groups.remove(i);
                g.0.extend(other.0);
                g.1.extend(other.1);
            } else {
                i += 1;
            }
        }
        groups.push(g);
    }
    groups
}

fn compare_sessions(what: &str, ours: &Value, theirs: &Value, map: &SessionMap) {
    let (our_rows, our_total) = blueplane_rows(ours);
    let (their_rows, their_total) = ccusage_rows(theirs, Report::Session);
    // The path rule gives exactly ccusage's sessions and projects.
    let their_projects: BTreeMap<String, String> = theirs["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["sessionId"].as_str().expect("sessionId").to_string(),
                s["projectPath"].as_str().expect("projectPath").to_string(),
            )
        })
        .collect();
    assert_eq!(
        map.projects, their_projects,
        "{what}: ccusage's session ids"
    );
    let mut grouped_ours = Rows::new();
    let mut grouped_theirs = Rows::new();
    let mut seen = BTreeSet::new();
    for (cs, bs) in session_groups(map) {
        let key = format!("ccusage {cs:?} = blueplane {bs:?}");
        let t = grouped_theirs.entry(key.clone()).or_default();
        for c in &cs {
            t.add(&their_rows[c]);
        }
        // A blueplane session without a row has no usage.
        let o = grouped_ours.entry(key).or_default();
        for b in &bs {
            if let Some(u) = our_rows.get(b) {
                o.add(u);
            }
            seen.insert(b.clone());
        }
    }
    let unmapped: Vec<&String> = our_rows.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(
        unmapped.is_empty(),
        "{what}: blueplane sessions with no line ccusage reads: {unmapped:?}"
    );
    assert_rows(what, &grouped_ours, &grouped_theirs);
    assert_usage(&format!("{what}, totals"), &our_total, &their_total);
}

/// One stored response: (ts ms, model, input, output, cache creation, cache read), pUSD.
type Response = ((i64, Option<String>, i64, i64, i64, i64), i64);

fn responses(bp: &Blueplane) -> Vec<Response> {
    let c = rusqlite::Connection::open(bp.env.db()).expect("db");
    let mut stmt = c
        .prepare(
            "SELECT ts, model, input_tokens, output_tokens, cache_creation_tokens,
                    cache_read_tokens, cost_pusd FROM api_responses ORDER BY ts",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        Ok((
            (
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ),
            r.get(6)?,
        ))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// `ccusage session --id <id>` lists the de-duplicated responses it counts for `<id>`:
/// timestamp, model and tokens. Each must be one response blueplane stored (one to one),
/// and the file's totals the sum of those responses, tokens and blueplane's cost. The ids
/// are ccusage's; the entries say which responses they mean, so no id mapping is needed
/// (`--id 5555…` in ccl-compact lists the sub-agent line and the five lines ccusage's
/// session report files under `minimal_showcase`).
fn compare_session_ids(bp: &Blueplane, name: &str, mode: Mode) {
    let stored = responses(bp);
    for (id, file) in session_id_files(name, mode) {
        let v = oracle(&file);
        assert_eq!(v["sessionId"], id.as_str(), "{file}");
        let entries = v["entries"].as_array().expect("entries");
        assert!(!entries.is_empty(), "{file}: no entries");
        let mut used = vec![false; stored.len()];
        let (mut tokens, mut pusd) = (0i64, 0i64);
        for e in entries {
            let ts = chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().expect("ts"))
                .expect("timestamp")
                .timestamp_millis();
            let key = (
                ts,
                e["model"].as_str().map(str::to_string),
                int(e, "inputTokens"),
                int(e, "outputTokens"),
                int(e, "cacheCreationTokens"),
                int(e, "cacheReadTokens"),
            );
            let i = (0..stored.len())
                .find(|&i| !used[i] && stored[i].0 == key)
                .unwrap_or_else(|| {
                    panic!("{file}: blueplane stored no response {key:?}\nstored {stored:#?}")
                });
            used[i] = true;
            tokens += key.2 + key.3 + key.4 + key.5;
            pusd += stored[i].1;
            // Entries show the line's own costUSD in every mode (0 without one, quirk 3);
            // in auto mode blueplane's cost of such a line is that costUSD.
            let raw = e["costUSD"].as_f64().expect("costUSD");
            if mode == Mode::Auto && raw != 0.0 {
                assert!(
                    (stored[i].1 as f64 / 1e12 - raw).abs() < 1e-9,
                    "{file}: {key:?} costs {} in blueplane, its costUSD is {raw}",
                    stored[i].1
                );
            }
        }
        assert_eq!(tokens, int(&v, "totalTokens"), "{file}: totalTokens");
        let cost = v["totalCost"].as_f64().expect("totalCost");
        assert!(
            (pusd as f64 / 1e12 - cost).abs() < 1e-9,
            "{file}: totalCost {cost}, blueplane {} pUSD",
            pusd
        );
    }
}

// ---------------------------------------------------------------------------------------
// Blocks.

fn rfc3339_ms(v: &Value, what: &str) -> i64 {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a time: {v}"));
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("{what}: {t}: {e}"))
        .timestamp_millis()
}

/// The models of a ccusage block as blueplane names them: ccusage calls a fast-mode
/// response's model `<model>-fast` (quirk 7); `api_responses` records whether a response had
/// a `speed` field, not its value, so blueplane lists the model without the suffix.
fn models_without_fast(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in v.as_array().expect("models") {
        let m = m.as_str().expect("model");
        let m = m.strip_suffix("-fast").unwrap_or(m).to_string();
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

/// ccusage's blocks (the same in every zone, quirk 10) against blueplane's, in order: id,
/// start, end, actual end, gap, entries and models exactly, tokens exactly, cost within
/// 1e-9 USD.
///
/// Whether a block is active (and so its burn rate and projection) depends on the clock.
/// ccusage ran on 2026-11-22 (README, "Version and environment"), after every block of
/// these trees had ended and more than 5 h after each last entry, so no oracle block is
/// active and none has a burn rate or projection; that is asserted. blueplane runs now,
/// which must be later still (asserted too, so a wrong clock fails with its reason), and
/// must then say the same. The active block itself is covered by the unit tests of
/// `query::blocks`, which fix `now`.
fn compare_blocks(what: &str, ours: &Value, theirs: &Value) {
    let ours = ours["blocks"].as_array().expect("blueplane blocks");
    let theirs = theirs["blocks"].as_array().expect("ccusage blocks");
    assert!(!theirs.is_empty(), "{what}: the ccusage side has no blocks");
    let ids = |v: &[Value], k: &str| -> Vec<String> {
        v.iter()
            .map(|b| b[k].as_str().expect("id").to_string())
            .collect()
    };
    assert_eq!(
        ids(ours, "id"),
        ids(theirs, "id"),
        "{what}: block ids, blueplane left, ccusage right"
    );
    let generated = rfc3339_ms(&Value::from("2026-11-22T00:00:00Z"), "oracle date");
    let now = chrono::Utc::now().timestamp_millis();
    for (o, t) in ours.iter().zip(theirs) {
        let id = t["id"].as_str().expect("id");
        let what = format!("{what}, block {id}");
        let end = rfc3339_ms(&t["endTime"], &what);
        let settled = match t["actualEndTime"].as_str() {
            Some(_) => end.max(rfc3339_ms(&t["actualEndTime"], &what) + 5 * 3_600_000),
            None => end,
        };
        assert!(
            settled <= generated,
            "{what}: the oracle says it ended after it was generated"
        );
        assert!(
            settled <= now,
            "{what}: this machine's clock is before the block's end; the comparison needs a clock after {}",
            t["endTime"]
        );
        assert_eq!(
            (&t["isActive"], &t["burnRate"], &t["projection"]),
            (&Value::Bool(false), &Value::Null, &Value::Null),
            "{what}: ccusage"
        );
        assert_eq!(
            (&o["is_active"], &o["burn_rate"], &o["projection"]),
            (&Value::Bool(false), &Value::Null, &Value::Null),
            "{what}: blueplane"
        );
        assert_eq!(o["is_gap"], t["isGap"], "{what}: gap");
        assert_eq!(
            rfc3339_ms(&o["start"], &what),
            rfc3339_ms(&t["startTime"], &what),
            "{what}: start"
        );
        assert_eq!(rfc3339_ms(&o["end"], &what), end, "{what}: end");
        match t["actualEndTime"].as_str() {
            Some(_) => assert_eq!(
                rfc3339_ms(&o["actual_end"], &what),
                rfc3339_ms(&t["actualEndTime"], &what),
                "{what}: actual end"
            ),
            None => assert_eq!(o["actual_end"], Value::Null, "{what}: actual end"),
        }
        assert_eq!(int(o, "entries"), int(t, "entries"), "{what}: entries");
        let c = &t["tokenCounts"];
        let theirs = Usage {
            input: int(c, "inputTokens"),
            output: int(c, "outputTokens"),
            cache_creation: int(c, "cacheCreationInputTokens"),
            cache_read: int(c, "cacheReadInputTokens"),
            total: int(t, "totalTokens"),
            cost: t["costUSD"].as_f64().expect("costUSD"),
        };
        assert_usage(&what, &Usage::of_blueplane(o), &theirs);
        let our_models: Vec<String> = o["models"]
            .as_array()
            .expect("models")
            .iter()
            .map(|m| m.as_str().expect("model").to_string())
            .collect();
        assert_eq!(
            our_models,
            models_without_fast(&t["models"]),
            "{what}: models"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The comparison of one blueplane run with one oracle set in one mode.

/// Weeks: blueplane keys a week by its Monday, ccusage by its Sunday (quirk 10), so the two
/// weekly reports put a Sunday into different weeks and no mapping of keys can match
/// their rows once there is usage on a Sunday. A week is the sum of its days, so each
/// weekly report is compared with the *other* tool's daily report of the same zone summed
/// its way: blueplane's weeks with ccusage's days per Monday, ccusage's weeks with
/// blueplane's days per Sunday. The daily reports themselves are compared row by row.
fn compare_weeks(what: &str, bp: &Blueplane, name: &str, tz: &str, mode: Mode) {
    let (their_days, _) = ccusage_rows(
        &oracle(&file_name(name, Report::Daily, tz, mode)),
        Report::Daily,
    );
    let (their_weeks, their_total) = ccusage_rows(
        &oracle(&file_name(name, Report::Weekly, tz, mode)),
        Report::Weekly,
    );
    let (our_days, _) = blueplane_rows(&bp.report(Report::Daily, tz));
    let (our_weeks, our_total) = blueplane_rows(&bp.report(Report::Weekly, tz));
    assert_rows(
        &format!("{what}: blueplane weeks vs ccusage days summed per Monday"),
        &our_weeks,
        &rebucket(&their_days, |d| week_of(d, Weekday::Mon)),
    );
    assert_rows(
        &format!("{what}: blueplane days summed per Sunday vs ccusage weeks"),
        &rebucket(&our_days, |d| week_of(d, Weekday::Sun)),
        &their_weeks,
    );
    assert_usage(&format!("{what}, totals"), &our_total, &their_total);
}

/// Compares every report file of `name` in `mode` with blueplane's reports of the same
/// zone. `read` is the tree ccusage read (the session ids come from its paths).
fn compare_reports(bp: &Blueplane, name: &str, mode: Mode, read: &Path) {
    let set = oracle_set(name);
    assert!(set.modes.contains(&mode), "{name} has no {mode:?} files");
    let map = session_map(read);
    for tz in set.zones {
        for &report in set.reports {
            let file = file_name(name, report, tz, mode);
            let what = format!("{file} vs blueplane report {} -z {tz}", report.name());
            match report {
                Report::Daily | Report::Monthly => {
                    let (theirs, their_total) = ccusage_rows(&oracle(&file), report);
                    let (ours, our_total) = blueplane_rows(&bp.report(report, tz));
                    assert_rows(&what, &ours, &theirs);
                    assert_usage(&format!("{what}, totals"), &our_total, &their_total);
                }
                Report::Weekly => compare_weeks(&what, bp, name, tz, mode),
                Report::Session => {
                    compare_sessions(&what, &bp.report(report, tz), &oracle(&file), &map)
                }
                Report::Blocks => compare_blocks(&what, &bp.report(report, tz), &oracle(&file)),
            }
        }
    }
    if set.session_ids {
        compare_session_ids(bp, name, mode);
    }
}

// ---------------------------------------------------------------------------------------
// One test per blueplane run.

#[test]
fn ccusage_tree_matches_ccusage_auto_mode() {
    let tree = fixtures().join("ccusage");
    let bp = backfill(&tree);
    compare_reports(&bp, "ccusage", Mode::Auto, &tree);
}

/// ccusage's `calculate` mode ignores `costUSD` (quirk 2): the same tree without it makes
/// blueplane price every line, as ccusage does in that mode.
#[test]
fn ccusage_tree_without_cost_usd_matches_ccusage_calculate_mode() {
    let tree = fixtures().join("ccusage");
    let tmp = tempfile::tempdir().expect("tempdir");
    let stripped = tmp.path().join("ccusage-calculate");
    let changed = rewritten_copy(&tree, &stripped, |line| {
        if line.trim().is_empty() {
            return Some(line.to_string());
        }
        let mut v: Value = serde_json::from_str(line).expect("fixture line is JSON");
        v.as_object_mut().expect("object").remove("costUSD");
        Some(v.to_string())
    });
    assert_eq!(changed, 5, "the five ccusage fixture lines have costUSD");
    assert_no_cost_usd(&stripped);
    let bp = backfill(&stripped);
    compare_reports(&bp, "ccusage", Mode::Calculate, &tree);
}

#[test]
fn spotter_tree_matches_ccusage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tree = fixture_under_projects(tmp.path(), "spotter", "spotter");
    assert_no_cost_usd(&tree);
    let bp = backfill(&tree);
    compare_reports(&bp, "spotter", Mode::Auto, &tree);
    compare_reports(&bp, "spotter", Mode::Calculate, &tree);
}

/// ccusage's `ccl-*` files count only the lines with the bytes `"usage":{` (quirk 1: the
/// five of `dag_compact_after_rewind.jsonl`); blueplane parses JSON and counts the spaced
/// lines too. So these files are compared with blueplane over the lines ccusage reads:
/// the `ccl` tree with every other line left out.
#[test]
fn ccl_tree_as_ccusage_reads_it_matches_ccusage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ccl, _) = ccl_trees(tmp.path());
    let seen = tmp.path().join("ccl-as-ccusage-reads-it");
    let dropped = rewritten_copy(&ccl, &seen, |line| {
        line.contains(USAGE_BYTES).then(|| line.to_string())
    });
    assert!(dropped > 0);
    assert_no_cost_usd(&seen);
    let bp = backfill(&seen);
    compare_reports(&bp, "ccl", Mode::Auto, &ccl);
    compare_reports(&bp, "ccl", Mode::Calculate, &ccl);
}

/// blueplane over the `ccl` tree as it is reads every line, so it gives what ccusage gives
/// once the lines are compact (quirk 1: `ccl-compact` "shows what ccusage reports once
/// those lines are visible"). Sessions map through the compact tree, the one ccusage read.
#[test]
fn ccl_tree_with_spaced_lines_matches_ccusage_on_ccl_compact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (ccl, compact_tree) = ccl_trees(tmp.path());
    assert_no_cost_usd(&ccl);
    let bp = backfill(&ccl);
    compare_reports(&bp, "ccl-compact", Mode::Auto, &compact_tree);
    compare_reports(&bp, "ccl-compact", Mode::Calculate, &compact_tree);
}

#[test]
fn ccl_compact_tree_matches_ccusage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (_, compact_tree) = ccl_trees(tmp.path());
    assert_no_cost_usd(&compact_tree);
    let bp = backfill(&compact_tree);
    compare_reports(&bp, "ccl-compact", Mode::Auto, &compact_tree);
    compare_reports(&bp, "ccl-compact", Mode::Calculate, &compact_tree);
}

/// `<synthetic>` lines cost 0 and their tokens count in ccusage's rows and totals (quirk 8),
/// with 0 and with 10 tokens; an unknown model costs 0. Only token and cost columns are
/// compared: whether a `<synthetic>` line is a blueplane *response* does not matter here.
#[test]
fn synthetic_tree_matches_ccusage() {
    let tree = oracle_dir().join("synthetic");
    assert_no_cost_usd(&tree);
    let bp = backfill(&tree);
    compare_reports(&bp, "synthetic", Mode::Calculate, &tree);
}

/// Models whose price differs from ccusage 20.0.24 on purpose (README, "Probe";
/// `KNOWN_DIFFERENCES` in src/slow_path/pricing.rs, whose unit test checks that each still
/// differs). Their days are compared on tokens only.
const PROBE_KNOWN_DIFFERENCES: [&str; 6] = [
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-3-5-sonnet-latest",
    "claude-sonnet-4-5@20250929",
    "sonnet",
];

/// The probe is one line a UTC day through the whole pipeline (the unit test in
/// pricing.rs prices the same lines directly). Its 202 days cross many Sundays, so its
/// weekly report is the one that shows blueplane's Monday weeks summing the right days.
/// ccusage only made a daily file for it; the expected weeks and months are its days
/// summed per Monday and per month (see `compare_weeks` for why).
#[test]
fn probe_matches_ccusage_day_by_day_and_per_week_and_month() {
    let tree = oracle_dir().join("probe");
    assert_no_cost_usd(&tree);
    let set = oracle_set("probe");
    let file = file_name("probe", set.reports[0], set.zones[0], set.modes[0]);
    let (their_days, their_total) = ccusage_rows(&oracle(&file), Report::Daily);
    let mut model_of_day = BTreeMap::new();
    for file in jsonl_files(&tree) {
        for line in std::fs::read_to_string(&file).expect("read").lines() {
            let v: Value = serde_json::from_str(line).expect("probe line");
            let day = v["timestamp"].as_str().expect("timestamp")[..10].to_string();
            let model = v["message"]["model"].as_str().expect("model").to_string();
            assert!(model_of_day.insert(day, model).is_none(), "two lines a day");
        }
    }
    assert_eq!(model_of_day.len(), their_days.len());
    let bp = backfill(&tree);
    let (our_days, our_total) = blueplane_rows(&bp.report(Report::Daily, "UTC"));
    // ccusage's days, with blueplane's cost on the days of the known differences.
    let mut expected = their_days.clone();
    let mut exempt = 0;
    for (day, u) in expected.iter_mut() {
        if PROBE_KNOWN_DIFFERENCES.contains(&model_of_day[day].as_str()) {
            u.cost = our_days
                .get(day)
                .unwrap_or_else(|| panic!("blueplane has no {day}"))
                .cost;
            exempt += 1;
        }
    }
    // Each probe name has three lines (README, "Probe").
    assert_eq!(exempt, 3 * PROBE_KNOWN_DIFFERENCES.len());
    let mut expected_total = their_total;
    expected_total.cost = expected.values().map(|u| u.cost).sum();
    let what = format!("{file} vs blueplane report daily -z UTC");
    assert_rows(&what, &our_days, &expected);
    assert_usage(&format!("{what}, totals"), &our_total, &expected_total);

    assert!(
        expected.keys().any(|d| date(d).weekday() == Weekday::Sun),
        "the probe has usage on a Sunday"
    );
    let (our_weeks, our_week_total) = blueplane_rows(&bp.report(Report::Weekly, "UTC"));
    let what = format!("{file} summed per Monday vs blueplane report weekly -z UTC");
    assert_rows(
        &what,
        &our_weeks,
        &rebucket(&expected, |d| week_of(d, Weekday::Mon)),
    );
    assert_usage(&format!("{what}, totals"), &our_week_total, &expected_total);

    let (our_months, our_month_total) = blueplane_rows(&bp.report(Report::Monthly, "UTC"));
    let what = format!("{file} summed per month vs blueplane report monthly -z UTC");
    assert_rows(&what, &our_months, &rebucket(&expected, month_of));
    assert_usage(
        &format!("{what}, totals"),
        &our_month_total,
        &expected_total,
    );
}

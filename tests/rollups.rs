//! The rollups equal the tables: `get_metrics` in every grouping, zone and ragged date-time
//! range, and `get_tool_stats`, answered from the rollups, against figures folded here
//! directly from `api_responses`, `token_estimates` and `tool_calls` — after a backfill,
//! after more sessions arrive, and after a `derive_version` reset re-derives everything.
#![allow(clippy::print_stdout)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use blueplane::query::time::{GroupBy, Tz};
use blueplane::query::{self, Filter};
use rusqlite::Connection;
use support::{Env, fixtures, write_corpus_from};

struct Usage {
    platform: String,
    session: String,
    project: String,
    ts: i64,
    model: String,
    tokens: i64,
    cost: i64,
    response: bool,
    unpriced: bool,
    estimate: bool,
}

struct Call {
    platform: String,
    session: String,
    project: String,
    at: i64,
    name: String,
    failed: i64,
    took: Option<i64>,
}

fn load(db: &Path) -> (Vec<Usage>, Vec<Call>) {
    let c = Connection::open(db).expect("open");
    let mut usage = Vec::new();
    let mut stmt = c
        .prepare(
            "SELECT platform, session_id, coalesce(project_path, ''), ts, model,
                    input_tokens + output_tokens + cache_creation_tokens + cache_read_tokens,
                    cost_pusd, priced, 0 FROM api_responses
             UNION ALL
             SELECT platform, session_id, coalesce(project_path, ''), ts, model, 0, 0, 1, 1
             FROM token_estimates",
        )
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    while let Some(r) = rows.next().expect("row") {
        let model: Option<String> = r.get(4).expect("model");
        let estimate = r.get::<_, i64>(8).expect("kind") == 1;
        usage.push(Usage {
            platform: r.get(0).expect("platform"),
            session: r.get(1).expect("session"),
            project: r.get(2).expect("project"),
            ts: r.get(3).expect("ts"),
            response: !estimate && model.as_deref() != Some("<synthetic>"),
            model: model
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "(unknown)".into()),
            tokens: r.get(5).expect("tokens"),
            cost: r.get(6).expect("cost"),
            unpriced: r.get::<_, i64>(7).expect("priced") == 0,
            estimate,
        });
    }
    let mut calls = Vec::new();
    let mut stmt = c
        .prepare(
            "SELECT platform, session_id, coalesce(project_path, ''), coalesce(started_at, finished_at),
                    name, coalesce(failed, 0), took_ms
             FROM tool_calls WHERE name IS NOT NULL AND coalesce(started_at, finished_at) IS NOT NULL",
        )
        .expect("prepare");
    let mut rows = stmt.query([]).expect("query");
    while let Some(r) = rows.next().expect("row") {
        calls.push(Call {
            platform: r.get(0).expect("platform"),
            session: r.get(1).expect("session"),
            project: r.get(2).expect("project"),
            at: r.get(3).expect("at"),
            name: r.get(4).expect("name"),
            failed: r.get(5).expect("failed"),
            took: r.get(6).expect("took"),
        });
    }
    (usage, calls)
}

/// (tokens, cost, responses, unpriced, tool calls, tool errors, sessions) per key, and total.
type Fig = (i64, i64, i64, i64, i64, i64, i64);

fn keep(f: &Filter, platform: &str, project: &str, t: i64) -> bool {
    f.since.is_none_or(|s| t >= s)
        && f.until.is_none_or(|u| t < u)
        && f.platform.as_deref().is_none_or(|p| p == platform)
        && f.project.as_deref().is_none_or(|p| project.contains(p))
}

fn expected(
    usage: &[Usage],
    calls: &[Call],
    f: &Filter,
    g: GroupBy,
    tz: &Tz,
) -> (BTreeMap<String, Fig>, Fig) {
    let key = |platform: &str, session: &str, project: &str, model: Option<&str>, t: i64| match g {
        GroupBy::Model => model.map(str::to_string),
        GroupBy::Project => Some(if project.is_empty() {
            "(unknown)".to_string()
        } else {
            project.to_string()
        }),
        GroupBy::Platform => Some(platform.to_string()),
        GroupBy::Session => Some(session.to_string()),
        _ => Some(tz.key(t, g)),
    };
    let mut per: BTreeMap<String, (Fig, BTreeSet<(String, String)>)> = BTreeMap::new();
    let mut all: (Fig, BTreeSet<(String, String)>) = Default::default();
    for u in usage
        .iter()
        .filter(|u| keep(f, &u.platform, &u.project, u.ts))
    {
        let s = (u.platform.clone(), u.session.clone());
        let add = |x: &mut (Fig, BTreeSet<(String, String)>)| {
            if !u.estimate {
                x.0.0 += u.tokens;
                x.0.1 += u.cost;
                x.0.2 += i64::from(u.response);
                x.0.3 += i64::from(u.unpriced);
            }
            x.1.insert(s.clone());
        };
        add(&mut all);
        if let Some(k) = key(&u.platform, &u.session, &u.project, Some(&u.model), u.ts) {
            add(per.entry(k).or_default());
        }
    }
    for c in calls
        .iter()
        .filter(|c| keep(f, &c.platform, &c.project, c.at))
    {
        all.0.4 += 1;
        all.0.5 += c.failed;
        if let Some(k) = key(&c.platform, &c.session, &c.project, None, c.at) {
            let e = per.entry(k).or_default();
            e.0.4 += 1;
            e.0.5 += c.failed;
        }
    }
    let with_sessions = |(mut fig, s): (Fig, BTreeSet<(String, String)>)| {
        fig.6 = s.len() as i64;
        fig
    };
    (
        per.into_iter()
            .map(|(k, v)| (k, with_sessions(v)))
            .collect(),
        with_sessions(all),
    )
}

fn pusd(usd: f64) -> i64 {
    (usd * 1e12).round() as i64
}

fn actual(conn: &Connection, f: &Filter, g: GroupBy, tz: &Tz) -> (BTreeMap<String, Fig>, Fig) {
    let m = query::get_metrics(conn, None, f, g, tz).expect("get_metrics");
    assert_eq!(m.source, "sqlite");
    let per = m
        .rows
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                (
                    r.tokens.total,
                    pusd(r.cost_usd),
                    r.responses,
                    r.unpriced_responses,
                    r.tool_calls,
                    r.tool_errors,
                    r.sessions,
                ),
            )
        })
        .collect();
    let t = &m.totals;
    (
        per,
        (
            t.tokens.total,
            pusd(t.cost_usd),
            t.responses,
            t.unpriced_responses,
            t.tool_calls,
            t.tool_errors,
            t.sessions,
        ),
    )
}

/// Round-trips costs through f64 the way the tools report them.
fn rounded(x: (BTreeMap<String, Fig>, Fig)) -> (BTreeMap<String, Fig>, Fig) {
    let r = |mut f: Fig| {
        f.1 = pusd(blueplane::pricing::pusd_to_usd(f.1));
        f
    };
    (x.0.into_iter().map(|(k, v)| (k, r(v))).collect(), r(x.1))
}

/// Checks every grouping, zone and range; returns how many answers were compared.
fn check_all(env: &Env) -> usize {
    let (usage, calls) = load(&env.db());
    assert!(!usage.is_empty() && !calls.is_empty());
    let (lo, hi) = usage
        .iter()
        .map(|u| u.ts)
        .fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let span = hi - lo;
    let ragged = lo + span / 3 + 437_123;
    let filters = [
        Filter::default(),
        Filter {
            since: Some(ragged),
            ..Filter::default()
        },
        Filter {
            until: Some(hi - span / 4 - 91_777),
            ..Filter::default()
        },
        Filter {
            since: Some(ragged),
            until: Some(hi - 3_001),
            project: Some("proj".into()),
            ..Filter::default()
        },
        // Both bounds inside one quarter hour.
        Filter {
            since: Some(ragged),
            until: Some(ragged + 400_000),
            ..Filter::default()
        },
        Filter {
            platform: Some("claude_code".into()),
            ..Filter::default()
        },
    ];
    let conn = blueplane::store::open_reader(&env.db()).expect("reader");
    let mut n = 0;
    for f in &filters {
        // UTC and Berlin read UTC days (Berlin moving an hour or two of each day to the next),
        // the Azores (UTC-1, UTC+0 in summer) moving the first hour to the day before;
        // Kathmandu (+05:45) and St. John's (-03:30, -02:30) read hours and quarter hours.
        for zone in [
            "UTC",
            "Asia/Kathmandu",
            "Europe/Berlin",
            "America/St_Johns",
            "Atlantic/Azores",
        ] {
            let tz = Tz::parse(Some(zone)).expect("zone");
            for g in [
                "day", "week", "month", "model", "project", "platform", "session",
            ] {
                let g = GroupBy::parse(g).expect("group");
                if !g.is_time() && zone != "UTC" {
                    continue;
                }
                let want = rounded(expected(&usage, &calls, f, g, &tz));
                let got = actual(&conn, f, g, &tz);
                assert_eq!(got, want, "{g:?} in {zone} with {f:?}");
                n += 1;
            }
        }
        // Tool stats: calls, errors, total and longest duration per tool.
        let mut want: BTreeMap<String, (i64, i64, Option<i64>, Option<i64>)> = BTreeMap::new();
        for c in calls
            .iter()
            .filter(|c| keep(f, &c.platform, &c.project, c.at))
        {
            let e = want.entry(c.name.clone()).or_default();
            e.0 += 1;
            e.1 += c.failed;
            if let Some(t) = c.took {
                e.2 = Some(e.2.unwrap_or(0) + t);
                e.3 = Some(e.3.map_or(t, |m: i64| m.max(t)));
            }
        }
        let got: BTreeMap<String, (i64, i64, Option<i64>, Option<i64>)> =
            query::tool_stats(&conn, f, None)
                .expect("tool_stats")
                .tools
                .into_iter()
                .map(|t| (t.name, (t.calls, t.errors, t.total_ms, t.max_ms)))
                .collect();
        assert_eq!(got, want, "tool stats with {f:?}");
        n += 1;
    }
    n
}

#[test]
fn rollups_answer_like_the_tables_after_backfill_new_sessions_and_a_rederivation() {
    let f = fixtures();
    let corpus = tempfile::tempdir().expect("tempdir");
    write_corpus_from(corpus.path(), 0, 6, 30);
    let env = Env::new(&[
        f.join("ccusage"),
        f.join("spotter"),
        f.join("claude-code-log"),
        corpus.path().to_path_buf(),
    ]);
    env.run(&["backfill"]);
    let a = check_all(&env);

    // More sessions, some in buckets that already hold rows.
    write_corpus_from(corpus.path(), 6, 5, 45);
    env.run(&["backfill"]);
    let b = check_all(&env);

    // A deriver version the store does not know: everything is derived again, rollups too.
    {
        let c = Connection::open(env.db()).expect("open");
        c.execute(
            "UPDATE pipeline_state SET value = value + 100 WHERE key = 'derive_version:claude_code'",
            [],
        )
        .expect("bump");
    }
    env.run(&["backfill"]);
    let c = check_all(&env);
    println!("figure: {a} + {b} + {c} answers from the rollups equal the tables");
}

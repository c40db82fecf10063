//! `blueplane dlq list|show|replay|purge`: see, replay after a fix, or purge dead letters.
//!
//! What a replay does depends on the stage that wrote the letter:
//! - `fast_path`: a queue entry; its original fields go back to `bp:events`.
//! - `capture`: a transcript line (the letter keeps only path and offset); the line is read
//!   again and parsed with today's rules and privacy mode; an event now goes to `bp:events`,
//!   a line that is still bad, blank or gone keeps its letter, with the reason.
//! - `hook`: never replayed: a hook payload that was not an event kept only its size and
//!   why (its content is never stored); purge it once seen.
//! - `slow_path`: never replayed: the raw row stays in SQLite and is derived again whenever
//!   the derivation rules change.
//!
//! Replayed events are stored by whichever fast path runs next (`serve`, `ingest` or
//! `backfill`); ids are deterministic and inserts idempotent, so a replay never stores twice.
//! The Redis side is `queue::dlq`; printing goes through `output`.

use std::io::{BufRead, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::bail;
use clap::Subcommand;
use serde::Serialize;

use super::output::{self, emit};
use crate::capture::claude_code::{self, FileContext, Parsed};
use crate::capture::tailer::MAX_LINE;
use crate::config::Config;
use crate::event::Event;
use crate::pipeline;
use crate::privacy::PrivacyMode;
use crate::queue::{self, Entry, Queue, dlq};

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Dead letters, newest first: id, stage, reason, source:offset, age.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only letters of this stage.
        #[arg(long, value_enum)]
        stage: Option<Stage>,
        #[arg(long)]
        json: bool,
    },
    /// Every field of one dead letter (queue entries include their privacy-filtered payload).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back into the pipeline (IDs, every letter of --stage, or --all).
    #[command(override_usage = "blueplane dlq replay [--json] <ID>...|--all|--stage <STAGE>")]
    Replay {
        /// Dead-letter ids, as 'dlq list' shows them.
        #[arg(value_name = "ID", required_unless_present_any = ["all", "stage"])]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Every letter of this stage (with or without --all).
        #[arg(long, value_enum, conflicts_with = "ids")]
        stage: Option<Stage>,
        #[arg(long)]
        json: bool,
    },
    /// Delete dead letters (IDs, every letter of --stage, or --all); asks first unless --yes.
    #[command(
        override_usage = "blueplane dlq purge [--yes] [--json] <ID>...|--all|--stage <STAGE>"
    )]
    Purge {
        /// Dead-letter ids, as 'dlq list' shows them.
        #[arg(value_name = "ID", required_unless_present_any = ["all", "stage"])]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Every letter of this stage (with or without --all).
        #[arg(long, value_enum, conflicts_with = "ids")]
        stage: Option<Stage>,
        /// Do not ask for confirmation (needed when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
}

/// The stage that wrote a letter (its `stage` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    Capture,
    #[value(name = "fast_path", alias = "fast-path")]
    FastPath,
    #[value(name = "slow_path", alias = "slow-path")]
    SlowPath,
    /// Hook and status-line payloads that were not events (garbage on stdin), and torn
    /// spool lines.
    Hook,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Stage::Capture => "capture",
            Stage::FastPath => "fast_path",
            Stage::SlowPath => "slow_path",
            Stage::Hook => "hook",
        }
    }
}

/// Runs one `dlq` subcommand.
///
/// # Errors
/// Redis failures, unknown ids for `show`, an unconfirmed `purge`.
pub async fn run(action: DlqAction, cfg: Config) -> anyhow::Result<()> {
    let queue = pipeline::connect(&cfg).await?;
    match action {
        DlqAction::List { limit, stage, json } => {
            let letters = queue.dlq_newest(limit, stage.map(Stage::as_str)).await?;
            let total = queue.dlq_len().await?;
            let now = chrono::Utc::now().timestamp_millis();
            let list = LetterList {
                order: "newest first",
                total,
                letters: letters.iter().map(|l| Row::of(l, now)).collect(),
            };
            print_list(&list, stage, json)
        }
        DlqAction::Show { id, json } => {
            let id = parse_id(&id)?;
            let Some(letter) = queue.dlq_get(&id).await? else {
                bail!("there is no dead letter {id}; 'blueplane dlq list' shows the ids");
            };
            print_letter(&letter, json)
        }
        DlqAction::Replay {
            ids,
            all: _,
            stage,
            json,
        } => {
            let ids = parse_ids(&ids)?;
            let summary = replay(&queue, cfg.privacy, &ids, stage).await?;
            print_replay(&summary, json)
        }
        DlqAction::Purge {
            ids,
            all: _,
            stage,
            yes,
            json,
        } => {
            let ids = parse_ids(&ids)?;
            purge(&queue, &ids, stage, yes, json).await
        }
    }
}

fn parse_id(id: &str) -> anyhow::Result<String> {
    match dlq::letter_id(id) {
        Some(id) => Ok(id),
        None => bail!(
            "'{id}' is not a dead-letter id (ids look like 1767225600000-0; 'blueplane dlq list' shows them)"
        ),
    }
}

fn parse_ids(ids: &[String]) -> anyhow::Result<Vec<String>> {
    ids.iter().map(|i| parse_id(i)).collect()
}

/// The letters a `replay` or `purge` works on, in pages (oldest first): the named ones, or
/// every letter (of `stage` when given).
struct Selection<'a> {
    queue: &'a Queue,
    ids: &'a [String],
    stage: Option<Stage>,
    /// Where the scan of the whole stream stands (the last id seen); None before the first page.
    after: Option<String>,
    done: bool,
    not_found: Vec<String>,
}

impl<'a> Selection<'a> {
    fn new(queue: &'a Queue, ids: &'a [String], stage: Option<Stage>) -> Selection<'a> {
        Selection {
            queue,
            ids,
            stage,
            after: None,
            done: false,
            not_found: Vec::new(),
        }
    }

    /// The next letters; empty when there are no more.
    async fn next_page(&mut self) -> anyhow::Result<Vec<Entry>> {
        if self.done {
            return Ok(Vec::new());
        }
        if !self.ids.is_empty() {
            self.done = true;
            let mut out = Vec::new();
            for id in self.ids {
                if out.iter().any(|e: &Entry| &e.stream_id == id) {
                    continue;
                }
                match self.queue.dlq_get(id).await? {
                    Some(e) => out.push(e),
                    None => self.not_found.push(id.clone()),
                }
            }
            return Ok(out);
        }
        loop {
            let page = self
                .queue
                .dlq_page(self.after.as_deref(), dlq::PAGE)
                .await?;
            let Some(last) = page.last() else {
                self.done = true;
                return Ok(Vec::new());
            };
            self.after = Some(last.stream_id.clone());
            let page: Vec<Entry> = page
                .into_iter()
                .filter(|e| {
                    self.stage
                        .is_none_or(|s| e.get_str("stage") == Some(s.as_str()))
                })
                .collect();
            if !page.is_empty() {
                return Ok(page);
            }
        }
    }
}

// ---- replay ---------------------------------------------------------------------------------

#[derive(Debug, Default, Serialize)]
struct ReplaySummary {
    /// Letters whose event is back on `bp:events` (their letters are deleted).
    replayed: Vec<Replayed>,
    /// Letters left in place, each with the reason.
    kept: Vec<Kept>,
    /// Named ids with no letter (never there, or already replayed or purged).
    not_found: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Replayed {
    id: String,
    stage: String,
    event_id: String,
}

#[derive(Debug, Serialize)]
struct Kept {
    id: String,
    stage: String,
    source: String,
    offset: u64,
    reason: String,
}

const SLOW_PATH_KEPT: &str = "slow-path letters are not replayed: the raw row is still in SQLite and is derived again when the derivation rules change";
const HOOK_KEPT: &str = "hook letters are not replayed: the payload was not an event and its content was never kept (only its size and why); purge it with 'blueplane dlq purge --stage hook'";

async fn replay(
    queue: &Queue,
    mode: PrivacyMode,
    ids: &[String],
    stage: Option<Stage>,
) -> anyhow::Result<ReplaySummary> {
    let mut sel = Selection::new(queue, ids, stage);
    let mut summary = ReplaySummary::default();
    loop {
        let page = sel.next_page().await?;
        if page.is_empty() {
            break;
        }
        for letter in page {
            let stage = letter.get_str("stage").unwrap_or("").to_string();
            let kept = |reason: String| Kept {
                id: letter.stream_id.clone(),
                stage: stage.clone(),
                source: letter.get_str("source").unwrap_or("").to_string(),
                offset: offset_of(&letter),
                reason,
            };
            let (fields, record_type, event_id) = match plan(&letter, &stage, mode) {
                Ok(p) => p,
                Err(reason) => {
                    summary.kept.push(kept(reason));
                    continue;
                }
            };
            if queue
                .dlq_requeue(&letter.stream_id, &fields, record_type.as_deref())
                .await?
            {
                summary.replayed.push(Replayed {
                    id: letter.stream_id.clone(),
                    stage,
                    event_id,
                });
            } else {
                // Replayed or purged by someone else since it was read.
                sel.not_found.push(letter.stream_id.clone());
            }
        }
    }
    summary.not_found = sel.not_found;
    Ok(summary)
}

/// What replaying `letter` writes to `bp:events`: (fields, record type to count, event id),
/// or why it stays.
#[allow(clippy::type_complexity)]
fn plan(
    letter: &Entry,
    stage: &str,
    mode: PrivacyMode,
) -> Result<(Vec<(String, Vec<u8>)>, Option<String>, String), String> {
    match stage {
        "fast_path" => {
            let fields = dlq::original_fields(letter);
            if fields.is_empty() {
                return Err("it holds no original queue entry to replay".into());
            }
            let original = Entry {
                stream_id: letter.get_str("stream_id").unwrap_or("").to_string(),
                fields,
            };
            let event = original
                .to_event()
                .map_err(|e| format!("its original queue entry cannot be decoded: {e}"))?;
            Ok((original.fields, None, event.id))
        }
        "capture" => {
            let source = letter.get_str("source").unwrap_or("");
            let event = tokio::task::block_in_place(|| reparse(source, offset_of(letter), mode))?;
            let record_type =
                (!crate::privacy::is_known_type(&event.kind)).then(|| event.kind.clone());
            Ok((queue::event_fields(&event), record_type, event.id))
        }
        "slow_path" => Err(SLOW_PATH_KEPT.into()),
        "hook" => Err(HOOK_KEPT.into()),
        other => Err(format!(
            "unknown stage '{other}': nothing knows how to replay it"
        )),
    }
}

fn offset_of(letter: &Entry) -> u64 {
    letter
        .get_str("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0)
}

/// Reads the transcript line at `source`:`offset` again and parses it with today's rules
/// (a Cursor agent transcript's with `capture::cursor_agent`'s, Claude Code's otherwise).
fn reparse(source: &str, offset: u64, mode: PrivacyMode) -> Result<Event, String> {
    if source.is_empty() {
        return Err("it names no source file".into());
    }
    let path = Path::new(source);
    if let Some(ctx) = crate::capture::cursor_agent::FileContext::for_path(path) {
        if path.extension().is_some_and(|e| e == "txt") {
            return Err(
                "its source is a legacy Cursor .txt transcript: rescanned, not replayed".into(),
            );
        }
        let line = read_line_at(path, offset)?;
        let (index, mtime_ms) = crate::capture::cursor_agent::line_index_at(path, offset)
            .map_err(|e| format!("cannot read the file: {e}"))?;
        return match crate::capture::cursor_agent::parse_line(
            &ctx, offset, index, &line, mode, mtime_ms,
        ) {
            Parsed::Event(e) => Ok(*e),
            Parsed::Skip => Err("the line at this offset is blank now".into()),
            Parsed::Bad(reason) => Err(format!("still bad: {reason}")),
        };
    }
    if !claude_code::is_transcript(path) {
        return Err("its source is not a Claude Code transcript (*.jsonl)".into());
    }
    let line = read_line_at(path, offset)?;
    match claude_code::parse_line(&FileContext::for_path(path), offset, &line, mode) {
        Parsed::Event(e) => Ok(*e),
        Parsed::Skip => Err("the line at this offset is blank now".into()),
        Parsed::Bad(reason) => Err(format!("still bad: {reason}")),
    }
}

/// The line that starts at `offset`, without its newline: up to the next `\n` or the end of
/// the file, at most [`MAX_LINE`] bytes.
fn read_line_at(path: &Path, offset: u64) -> Result<Vec<u8>, String> {
    let io = |e: std::io::Error| format!("cannot read the file: {e}");
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "the file is gone".to_string(),
        _ => io(e),
    })?;
    let len = f.metadata().map_err(io)?.len();
    if offset >= len {
        return Err(format!(
            "the file ends before this offset now ({len} bytes)"
        ));
    }
    if offset > 0 {
        f.seek(SeekFrom::Start(offset - 1)).map_err(io)?;
        let mut before = [0u8; 1];
        f.read_exact(&mut before).map_err(io)?;
        if before[0] != b'\n' {
            return Err("no line starts at this offset any more (the file was rewritten)".into());
        }
    }
    let mut r = std::io::BufReader::new(f).take(MAX_LINE as u64 + 1);
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(io)?;
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() > MAX_LINE {
        return Err(format!(
            "the line is still longer than the {MAX_LINE} byte limit"
        ));
    }
    Ok(line)
}

fn print_replay(s: &ReplaySummary, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return output::json(s);
    }
    emit(|out| {
        writeln!(
            out,
            "replayed {} dead letter{} (stored by the running serve or ingest, or the next backfill)",
            s.replayed.len(),
            plural(s.replayed.len())
        )?;
        if !s.kept.is_empty() {
            writeln!(out, "kept {}:", s.kept.len())?;
            for k in &s.kept {
                writeln!(
                    out,
                    "  {}  {}  {}:{}  {}",
                    k.id, k.stage, k.source, k.offset, k.reason
                )?;
            }
        }
        if !s.not_found.is_empty() {
            writeln!(
                out,
                "not found (already replayed or purged?): {}",
                s.not_found.join(", ")
            )?;
        }
        Ok(())
    })
}

// ---- purge ----------------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct PurgeSummary {
    purged: usize,
    not_found: Vec<String>,
}

async fn purge(
    queue: &Queue,
    ids: &[String],
    stage: Option<Stage>,
    yes: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut sel = Selection::new(queue, ids, stage);
    let mut doomed = Vec::new();
    loop {
        let page = sel.next_page().await?;
        if page.is_empty() {
            break;
        }
        doomed.extend(page.into_iter().map(|e| e.stream_id));
    }
    let n = doomed.len();
    if n > 0 && !yes {
        let what = format!("{n} dead letter{}", plural(n));
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to delete {what} without confirmation: stdin is not a terminal, so pass --yes"
            );
        }
        if !confirm(&format!("Delete {what}? [y/N] "))? {
            return output::line("nothing deleted");
        }
    }
    // Letters that went away between reading and deleting (replayed meanwhile) are not counted.
    let purged = queue.dlq_delete(&doomed).await?;
    let s = PurgeSummary {
        purged,
        not_found: sel.not_found,
    };
    if as_json {
        return output::json(&s);
    }
    emit(|out| {
        writeln!(out, "purged {} dead letter{}", s.purged, plural(s.purged))?;
        if !s.not_found.is_empty() {
            writeln!(out, "not found: {}", s.not_found.join(", "))?;
        }
        Ok(())
    })
}

/// Asks on the terminal (prompt on stderr: stdout is for results).
fn confirm(prompt: &str) -> anyhow::Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{prompt}")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

// ---- list and show --------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct LetterList {
    order: &'static str,
    /// Letters in the stream (all stages).
    total: usize,
    letters: Vec<Row>,
}

#[derive(Debug, Serialize)]
struct Row {
    id: String,
    stage: String,
    reason: String,
    source: String,
    offset: u64,
    /// When it was dead-lettered (epoch ms).
    at: Option<i64>,
    age_s: Option<i64>,
}

impl Row {
    fn of(l: &Entry, now: i64) -> Row {
        let at = l.get_str("at").and_then(|a| a.parse::<i64>().ok());
        Row {
            id: l.stream_id.clone(),
            stage: l.get_str("stage").unwrap_or("").to_string(),
            reason: l.get_str("reason").unwrap_or("").to_string(),
            source: l.get_str("source").unwrap_or("").to_string(),
            offset: offset_of(l),
            at,
            age_s: at.map(|a| ((now - a) / 1000).max(0)),
        }
    }
}

fn print_list(l: &LetterList, stage: Option<Stage>, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        return output::json(l);
    }
    let reason = |r: &Row| clip(&r.reason, 60);
    let place = |r: &Row| format!("{}:{}", r.source, r.offset);
    let w_id = l
        .letters
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let w_reason = l
        .letters
        .iter()
        .map(|r| reason(r).chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let w_place = l
        .letters
        .iter()
        .map(|r| place(r).chars().count())
        .max()
        .unwrap_or(0)
        .max(13);
    emit(|out| {
        if l.letters.is_empty() {
            writeln!(out, "no dead letters{}", of_stage(stage))?;
            return Ok(());
        }
        writeln!(
            out,
            "{:<w_id$}  {:<9}  {:<w_reason$}  {:<w_place$}  {:>5}",
            "id", "stage", "reason", "source:offset", "age"
        )?;
        for r in &l.letters {
            writeln!(
                out,
                "{:<w_id$}  {:<9}  {:<w_reason$}  {:<w_place$}  {:>5}",
                r.id,
                r.stage,
                reason(r),
                place(r),
                r.age_s.map_or("-".to_string(), age)
            )?;
        }
        writeln!(
            out,
            "{} of {} dead letters{}, newest first; 'blueplane dlq show ID' for every field",
            l.letters.len(),
            output::int(l.total as i64),
            of_stage(stage)
        )?;
        Ok(())
    })
}

fn of_stage(stage: Option<Stage>) -> String {
    stage.map_or(String::new(), |s| format!(" (stage {})", s.as_str()))
}

fn print_letter(l: &Entry, as_json: bool) -> anyhow::Result<()> {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    if as_json {
        let fields: serde_json::Map<String, serde_json::Value> = l
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(text(v))))
            .collect();
        return output::json(&serde_json::json!({"id": l.stream_id, "fields": fields}));
    }
    let width = l
        .fields
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0)
        .max(2);
    let now = chrono::Utc::now().timestamp_millis();
    emit(|out| {
        writeln!(out, "{:<width$}  {}", "id", l.stream_id)?;
        for (k, v) in &l.fields {
            let mut v = text(v);
            if k == "at"
                && let Ok(ms) = v.parse::<i64>()
            {
                v = format!(
                    "{v} ({}, {} ago)",
                    crate::query::rfc3339(ms),
                    age(((now - ms) / 1000).max(0))
                );
            }
            writeln!(out, "{k:<width$}  {v}")?;
        }
        Ok(())
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn clip(s: &str, max: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Seconds as a short age: 42s, 5m, 3h, 12d.
fn age(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_again_at_their_offset() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.jsonl");
        std::fs::write(&p, b"{\"a\":1}\nsecond line\nlast").unwrap();
        assert_eq!(read_line_at(&p, 0).unwrap(), b"{\"a\":1}");
        assert_eq!(read_line_at(&p, 8).unwrap(), b"second line");
        // The last line has no newline: it ends at the end of the file.
        assert_eq!(read_line_at(&p, 20).unwrap(), b"last");
        assert!(read_line_at(&p, 9).unwrap_err().contains("no line starts"));
        assert!(read_line_at(&p, 24).unwrap_err().contains("ends before"));
        let gone = d.path().join("gone.jsonl");
        assert_eq!(read_line_at(&gone, 0).unwrap_err(), "the file is gone");
    }

    #[test]
    fn capture_letters_are_parsed_again() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sess-1.jsonl");
        let good = br#"{"type":"summary","summary":"x","leafUuid":"l"}"#;
        let mut body = b"{oops}\n".to_vec();
        body.extend_from_slice(good);
        body.push(b'\n');
        std::fs::write(&p, &body).unwrap();
        let src = p.display().to_string();
        let e = reparse(&src, 7, PrivacyMode::Standard).unwrap();
        assert_eq!(e.kind, "summary");
        assert_eq!(e.session_id.as_deref(), Some("sess-1"));
        assert!(
            reparse(&src, 0, PrivacyMode::Standard)
                .unwrap_err()
                .starts_with("still bad: malformed JSON")
        );
        let not_transcript = d.path().join("x.txt").display().to_string();
        assert!(
            reparse(&not_transcript, 0, PrivacyMode::Standard)
                .unwrap_err()
                .contains("not a Claude Code transcript")
        );
    }

    #[test]
    fn slow_path_and_unknown_letters_are_not_replayable() {
        let letter = |stage: &str| Entry {
            stream_id: "1-0".into(),
            fields: vec![("stage".into(), stage.as_bytes().to_vec())],
        };
        let m = PrivacyMode::Standard;
        assert_eq!(
            plan(&letter("slow_path"), "slow_path", m).unwrap_err(),
            SLOW_PATH_KEPT
        );
        assert!(
            plan(&letter("fast_path"), "fast_path", m)
                .unwrap_err()
                .contains("no original")
        );
        assert!(
            plan(&letter("mystery"), "mystery", m)
                .unwrap_err()
                .contains("unknown stage")
        );
    }

    #[test]
    fn ages_and_clipping() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(600), "10m");
        assert_eq!(age(7_200), "2h");
        assert_eq!(age(3 * 86_400), "3d");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("ab\ncd", 10), "ab cd");
    }
}

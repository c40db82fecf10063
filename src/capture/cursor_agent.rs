//! The Cursor agent CLI transcript source: tails
//! `<cursor home>/projects/<slug>/agent-transcripts/<cid>/<cid>.jsonl` (also the flat
//! `agent-transcripts/<cid>.jsonl` and the sub-agents' `<cid>/subagents/<id>.jsonl`) and emits
//! one `transcript:<role>` event per line (formats.md §C6, `docs/CURSOR.md`). Legacy
//! `.txt` transcripts (same places) give one event per `user:` / `assistant:` block; a block
//! is complete when the next header follows it, or, for the last one, once the file has been
//! quiet for [`TXT_QUIET`] (its cursor's line count counts blocks).
//!
//! Like `claude_transcripts`: an append-only file read by byte offset with a
//! [`FileCursor`] (device, inode, offset; restart on truncation or replacement; complete
//! lines only, so a torn last line waits for its end) plus the count of non-blank lines read,
//! kept in its own hash [`NAMESPACE`] (path -> `dev:inode:offset:lines`); batches of at most
//! [`PUBLISH_BATCH`] events and dead letters, each written with the cursor that covers it.
//! Privacy rules: `privacy::cursor_agent`. Bad lines are dead-lettered (reason and offset,
//! never content) and never stop the file. Ids are `ca:<cid>:<byte offset>` and, for a
//! sub-agent, `ca:<cid>/<sub-agent id>:<byte offset>`: stable because the file is
//! append-only, so a re-scan or a restart stores nothing twice. The session is the `<cid>`
//! directory (a sub-agent's is its parent's). Called by the runner (`Capture`) through
//! [`CaptureSource`]; [`is_agent_transcript`] also tells the Cursor hook which
//! `transcript_path` to nudge.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::claude_code::Parsed;
use super::sink::{Batch, Sink};
use super::source::{BoxFuture, CaptureSource, Each, Progress, Watch};
use super::tailer::{self, FileCursor};
use super::{CaptureError, CaptureStats};
use crate::event::{Event, Platform, Source, parse_timestamp_ms};
use crate::privacy::PrivacyMode;
use crate::privacy::cursor_agent::filter_cursor_transcript_line;
use crate::queue::{CursorWrite, DeadLetter};

/// Events per publish (and per cursor move).
pub const PUBLISH_BATCH: usize = 2_000;
/// How long a legacy `.txt` transcript must be unchanged before its last block is taken as
/// complete (a block has no end marker).
pub const TXT_QUIET: std::time::Duration = std::time::Duration::from_secs(60);
/// The hash of this source's cursors.
pub const NAMESPACE: &str = "bp:capture:cursor_agent";
use crate::hook::CURSOR_TRANSCRIPTS_DIR as TRANSCRIPTS_DIR;

/// Whether `path` is a Cursor agent transcript: `agent-transcripts/<cid>.jsonl`,
/// `agent-transcripts/<cid>/<cid>.jsonl` or `agent-transcripts/<cid>/subagents/<id>.jsonl`.
/// Never a Claude Code transcript (those live in `projects/<-encoded-path>/`). The layout is
/// known in `hook` (below capture), which nudges only such paths.
pub fn is_agent_transcript(path: &Path) -> bool {
    crate::hook::cursor_agent_transcript(path).is_some()
}

/// What the location of a transcript says: its session and, for a sub-agent, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContext {
    pub source: String,
    pub cid: String,
    pub subagent: Option<String>,
}

impl FileContext {
    /// None when `path` is not an agent transcript.
    pub fn for_path(path: &Path) -> Option<FileContext> {
        let (cid, subagent) = crate::hook::cursor_agent_transcript(path)?;
        Some(FileContext {
            source: path.display().to_string(),
            cid: cid.to_string(),
            subagent: subagent.map(str::to_string),
        })
    }

    /// The id of the line at `offset`.
    fn id(&self, offset: u64) -> String {
        match &self.subagent {
            Some(s) => format!("ca:{}/{s}:{offset}", self.cid),
            None => format!("ca:{}:{offset}", self.cid),
        }
    }
}

/// Parses and filters one line (without its newline). `line` is its index among the file's
/// non-blank lines; `mtime_ms` the file's modification time, the event's time when the line
/// has none.
pub fn parse_line(
    ctx: &FileContext,
    offset: u64,
    line: u64,
    raw: &[u8],
    mode: PrivacyMode,
    mtime_ms: Option<i64>,
) -> Parsed {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Parsed::Skip;
    }
    let v: Value = match serde_json::from_slice(trimmed) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Parsed::Bad("not a JSON object".into()),
        Err(e) => {
            let what = if e.is_eof() {
                "truncated JSON"
            } else {
                "malformed JSON"
            };
            return Parsed::Bad(format!("{what}: {e}"));
        }
    };
    let ts = line_time(&v).or(mtime_ms);
    let (kind, mut payload) = filter_cursor_transcript_line(&v, mode, line, trimmed.len());
    if let (Some(s), Some(o)) = (&ctx.subagent, payload.as_object_mut()) {
        o.insert("subagent".into(), Value::String(s.clone()));
    }
    Parsed::Event(Box::new(Event {
        id: ctx.id(offset),
        platform: Platform::Cursor,
        kind,
        session_id: Some(ctx.cid.clone()),
        timestamp_ms: ts,
        source: Source::FileLine {
            path: ctx.source.clone(),
            offset,
        },
        payload: payload.to_string(),
    }))
}

/// The index among non-blank lines of the line at `offset`, and the file's modification
/// time: what [`parse_line`] needs for a line read again (`dlq replay`).
///
/// # Errors
/// When the file cannot be read.
pub fn line_index_at(path: &Path, offset: u64) -> std::io::Result<(u64, Option<i64>)> {
    use std::io::{BufRead, Read};
    let f = std::fs::File::open(path)?;
    let mtime_ms = f
        .metadata()?
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    let mut r = std::io::BufReader::new(f.take(offset));
    let mut line = Vec::new();
    let mut index = 0;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok((index, mtime_ms));
        }
        if !line.trim_ascii().is_empty() {
            index += 1;
        }
    }
}

/// A time the line carries itself (newer builds may add one): ISO `timestamp`/`createdAt`,
/// or epoch milliseconds.
fn line_time(v: &Value) -> Option<i64> {
    ["timestamp", "createdAt", "timestamp_ms"]
        .iter()
        .filter_map(|k| v.get(*k))
        .find_map(|t| match t {
            Value::String(s) => parse_timestamp_ms(s),
            Value::Number(n) => n.as_i64().filter(|ms| *ms > 1_000_000_000_000),
            _ => None,
        })
}

/// How far one file was captured: the tail position and the non-blank lines before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineCursor {
    pub file: FileCursor,
    pub lines: u64,
}

impl LineCursor {
    pub fn encode(&self) -> String {
        format!("{}:{}", self.file.encode(), self.lines)
    }

    /// Exactly `dev:inode:offset:lines`, else None.
    pub fn decode(s: &str) -> Option<LineCursor> {
        let (file_s, lines) = s.rsplit_once(':')?;
        let file = FileCursor::decode(file_s).filter(|f| f.encode() == file_s)?;
        Some(LineCursor {
            file,
            lines: lines.parse().ok()?,
        })
    }
}

/// Cursor agent transcripts below `dirs` (each a `projects` directory of a Cursor home).
pub struct CursorAgent {
    dirs: Vec<PathBuf>,
    mode: PrivacyMode,
    cursors: HashMap<String, LineCursor>,
}

impl CursorAgent {
    /// A source with no cursors yet (see [`CaptureSource::load_cursors`]).
    pub fn new(dirs: Vec<PathBuf>, mode: PrivacyMode) -> CursorAgent {
        CursorAgent {
            dirs,
            mode,
            cursors: HashMap::new(),
        }
    }

    /// Captures the new complete lines of one file.
    ///
    /// # Errors
    /// The sink failed or refused a batch, or `stop` was set.
    pub async fn capture_file(
        &mut self,
        path: &Path,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let key = path.display().to_string();
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        let Some(ctx) = FileContext::for_path(path) else {
            return Ok(stats);
        };
        if path.extension().is_some_and(|e| e == "txt") {
            return self.capture_txt(path, ctx, sink, stop, progress).await;
        }
        loop {
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
            let prev = self.cursors.get(&key).copied();
            let mode = self.mode;
            let p = path.to_path_buf();
            let ctx2 = ctx.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mtime_ms = std::fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .and_then(|d| i64::try_from(d.as_millis()).ok());
                let chunk = tailer::read_new(&p, prev.map(|c| c.file))?;
                // Read from where the cursor was (same file): its count goes on; else from 0.
                let mut lines = prev
                    .filter(|c| c.file.offset == chunk.start && c.file.ino == chunk.next.ino)
                    .map_or(0, |c| c.lines);
                let parsed: Vec<(u64, u64, u64, Parsed)> = chunk
                    .lines()
                    .map(|(off, line)| {
                        let index = lines;
                        if !line.trim_ascii().is_empty() {
                            lines += 1;
                        }
                        (
                            off,
                            off + line.len() as u64 + 1,
                            lines,
                            parse_line(&ctx2, off, index, line, mode, mtime_ms),
                        )
                    })
                    .collect();
                Ok::<_, std::io::Error>((chunk, parsed, lines, prev))
            })
            .await;
            let (chunk, parsed, lines, prev) = match read {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    // Vanished or unreadable: nothing to capture now; a rescan retries.
                    tracing::debug!(path = %key, error = %e, "Cannot read Cursor agent transcript");
                    return Ok(stats);
                }
                Err(e) => {
                    tracing::error!(path = %key, error = %e, "Cursor transcript reader task failed");
                    return Ok(stats);
                }
            };
            let next = LineCursor {
                file: chunk.next,
                lines,
            };
            if chunk.restarted {
                tracing::info!(path = %key, "Cursor agent transcript was truncated or replaced; reading it from the start");
            }
            if prev.is_some_and(|p| p == next) && parsed.is_empty() && chunk.skipped.is_none() {
                return Ok(stats);
            }
            let mut events: Vec<Event> = Vec::new();
            let mut dead: Vec<DeadLetter> = Vec::new();
            if let Some((off, len)) = chunk.skipped {
                tracing::warn!(path = %key, offset = off, bytes = len, "Skipping over-long Cursor transcript line");
                dead.push(DeadLetter {
                    stage: "capture",
                    reason: format!(
                        "line of {len} bytes exceeds the {} byte limit",
                        tailer::MAX_LINE
                    ),
                    source: key.clone(),
                    offset: off,
                });
            }
            let mut consumed_from = prev
                .filter(|_| !chunk.restarted)
                .map_or(0, |c| c.file.offset);
            for (off, end, lines_after, p) in parsed {
                match p {
                    Parsed::Event(e) => events.push(*e),
                    Parsed::Skip => {}
                    Parsed::Bad(reason) => {
                        tracing::warn!(path = %key, offset = off, %reason, "Bad Cursor transcript line");
                        dead.push(DeadLetter {
                            stage: "capture",
                            reason,
                            source: key.clone(),
                            offset: off,
                        });
                    }
                }
                if events.len() + dead.len() >= PUBLISH_BATCH {
                    let cur = LineCursor {
                        file: FileCursor {
                            offset: end,
                            ..chunk.next
                        },
                        lines: lines_after,
                    };
                    self.publish(sink, &key, &events, &dead, cur).await?;
                    stats.events += events.len() as u64;
                    stats.bad_lines += dead.len() as u64;
                    stats.bytes += end - consumed_from;
                    progress(end - consumed_from);
                    consumed_from = end;
                    events.clear();
                    dead.clear();
                    if stop.is_cancelled() {
                        return Err(CaptureError::Stopped);
                    }
                }
            }
            self.publish(sink, &key, &events, &dead, next).await?;
            stats.events += events.len() as u64;
            stats.bad_lines += dead.len() as u64;
            let delta = next.file.offset.saturating_sub(consumed_from);
            stats.bytes += delta;
            progress(delta);
            if !chunk.more {
                return Ok(stats);
            }
        }
    }

    /// Captures the new complete blocks of a legacy `.txt` transcript.
    async fn capture_txt(
        &mut self,
        path: &Path,
        ctx: FileContext,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let key = path.display().to_string();
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        if stop.is_cancelled() {
            return Err(CaptureError::Stopped);
        }
        let prev = self.cursors.get(&key).copied();
        let mode = self.mode;
        let p = path.to_path_buf();
        let read = tokio::task::spawn_blocking(move || read_txt(&p, &ctx, prev, mode)).await;
        let (blocks, next, from) = match read {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(path = %key, error = %e, "Cannot read Cursor agent transcript");
                return Ok(stats);
            }
            Err(e) => {
                tracing::error!(path = %key, error = %e, "Cursor transcript reader task failed");
                return Ok(stats);
            }
        };
        if prev.is_some_and(|p| p == next) {
            return Ok(stats);
        }
        let mut consumed_from = from;
        let mut done = 0;
        for chunk in blocks.chunks(PUBLISH_BATCH) {
            done += chunk.len();
            let cur = match chunk.last() {
                Some((end, _)) if done < blocks.len() => LineCursor {
                    file: FileCursor {
                        offset: *end,
                        ..next.file
                    },
                    lines: next.lines - (blocks.len() - done) as u64,
                },
                _ => next,
            };
            let events: Vec<Event> = chunk.iter().map(|(_, e)| e.clone()).collect();
            self.publish(sink, &key, &events, &[], cur).await?;
            stats.events += events.len() as u64;
            let delta = cur.file.offset.saturating_sub(consumed_from);
            stats.bytes += delta;
            progress(delta);
            consumed_from = cur.file.offset;
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
        }
        if blocks.is_empty() {
            self.publish(sink, &key, &[], &[], next).await?;
            let delta = next.file.offset.saturating_sub(consumed_from);
            stats.bytes += delta;
            progress(delta);
        }
        Ok(stats)
    }

    /// Writes one batch with the cursor that covers it, and moves the cursor once written.
    async fn publish(
        &mut self,
        sink: &mut dyn Sink,
        key: &str,
        events: &[Event],
        dead: &[DeadLetter],
        cursor: LineCursor,
    ) -> Result<(), CaptureError> {
        let encoded = cursor.encode();
        let written = sink
            .publish(Batch {
                events,
                dead,
                new_types: &[],
                cursor: Some(CursorWrite {
                    hash: NAMESPACE,
                    field: key,
                    value: &encoded,
                }),
            })
            .await?;
        if !written {
            return Err(CaptureError::LeaseLost);
        }
        self.cursors.insert(key.to_string(), cursor);
        Ok(())
    }

    async fn scan_files(
        &mut self,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let mut total = CaptureStats::default();
        for (path, _) in self.files() {
            total += self.capture_file(&path, sink, stop, progress).await?;
        }
        Ok(total)
    }

    async fn capture_changed(
        &mut self,
        paths: &[PathBuf],
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let mut each = Each::default();
        for p in paths {
            each.add(self.capture_file(p, sink, stop, progress).await)?;
        }
        each.finish()
    }
}

/// Complete blocks of a `.txt` transcript, each with the offset it ends at; the cursor after
/// them; the offset reading started from.
type TxtRead = (Vec<(u64, Event)>, LineCursor, u64);

/// The complete blocks of a legacy `.txt` transcript after `prev`, each with the offset it
/// ends at, the cursor after them and the offset reading started from.
fn read_txt(
    path: &Path,
    ctx: &FileContext,
    prev: Option<LineCursor>,
    mode: PrivacyMode,
) -> std::io::Result<TxtRead> {
    use std::io::{Read, Seek, SeekFrom};
    use std::os::unix::fs::MetadataExt;
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
    let same = prev.filter(|p| p.file.dev == dev && p.file.ino == ino && p.file.offset <= len);
    let (start, mut index) = same.map_or((0, 0), |p| (p.file.offset, p.lines));
    let want = (len - start).min(tailer::MAX_LINE as u64);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity(want as usize);
    (&mut f).take(want).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let at_eof = start + want == len;
    let mtime = meta.modified().ok();
    let quiet = mtime
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age >= TXT_QUIET);
    let mtime_ms = mtime
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    // Header lines (`user:`, `assistant:`): (byte offset in `text`, role).
    let mut headers: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let role = line.trim_end();
        if line.ends_with('\n') && (role == "user:" || role == "assistant:") {
            headers.push((pos, &role[..role.len() - 1]));
        }
        pos += line.len();
    }
    let mut blocks = Vec::new();
    let mut next_at = match headers.first() {
        Some((at, _)) => *at,
        // No block starts here: skip the text once the writer is done with it.
        None if quiet || !at_eof => text.len(),
        None => 0,
    };
    for (i, (at, role)) in headers.iter().enumerate() {
        let end = match headers.get(i + 1) {
            Some((n, _)) => *n,
            None if quiet || !at_eof => text.len(),
            None => break,
        };
        let header_len = text[*at..].find('\n').map_or(0, |n| n + 1);
        let body = &text[*at + header_len..end];
        let (kind, payload) =
            crate::privacy::cursor_agent::filter_cursor_txt_block(role, body, mode, index);
        let mut payload = payload;
        if let (Some(s), Some(o)) = (&ctx.subagent, payload.as_object_mut()) {
            o.insert("subagent".into(), Value::String(s.clone()));
        }
        let offset = start + *at as u64;
        blocks.push((
            start + end as u64,
            Event {
                id: ctx.id(offset),
                platform: Platform::Cursor,
                kind,
                session_id: Some(ctx.cid.clone()),
                timestamp_ms: mtime_ms,
                source: Source::FileLine {
                    path: ctx.source.clone(),
                    offset,
                },
                payload: payload.to_string(),
            },
        ));
        index += 1;
        next_at = end;
    }
    // Byte offsets in `text` equal those in the file unless invalid UTF-8 was replaced; a
    // lossy text ends at the end of what was read.
    let next_offset = if text.len() == buf.len() {
        start + next_at as u64
    } else {
        start + want
    };
    Ok((
        blocks,
        LineCursor {
            file: FileCursor {
                dev,
                ino,
                offset: next_offset,
            },
            lines: index,
        },
        same.map_or(0, |p| p.file.offset),
    ))
}

/// Every agent transcript of every project below `projects`, sorted.
pub fn transcript_files(projects: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(projects) else {
        return out;
    };
    let mut stack: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path().join(TRANSCRIPTS_DIR))
        .filter(|p| p.is_dir())
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                stack.push(path);
            } else if is_agent_transcript(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

impl CaptureSource for CursorAgent {
    fn name(&self) -> &'static str {
        "cursor_agent"
    }

    fn cursor_namespace(&self) -> &'static str {
        NAMESPACE
    }

    fn load_cursors(&mut self, stored: HashMap<String, String>) {
        self.cursors = stored
            .into_iter()
            .filter_map(|(k, v)| LineCursor::decode(&v).map(|c| (k, c)))
            .collect();
    }

    fn watch(&self) -> Watch {
        Watch {
            dirs: self.dirs.clone(),
            accepts: is_agent_transcript,
        }
    }

    fn files(&self) -> Vec<(PathBuf, u64)> {
        self.dirs
            .iter()
            .flat_map(|d| transcript_files(d))
            .map(|p| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, len)
            })
            .collect()
    }

    fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64 {
        files
            .iter()
            .map(|(p, len)| {
                let done = self
                    .cursors
                    .get(&p.display().to_string())
                    .map_or(0, |c| c.file.offset.min(*len));
                len - done
            })
            .sum()
    }

    fn scan<'a>(
        &'a mut self,
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.scan_files(sink, stop, progress))
    }

    fn on_change<'a>(
        &'a mut self,
        paths: &'a [PathBuf],
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.capture_changed(paths, sink, stop, progress))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::capture::MemorySink;

    const USER: &str = r#"{"role":"user","message":{"content":[{"type":"text","text":"<user_query>\nwhere is the retry budget?\n</user_query>"}]}}"#;
    const ASSISTANT: &str = r#"{"role":"assistant","message":{"content":[{"type":"text","text":"In src/retry.rs."},{"type":"tool_use","name":"Grep","input":{"pattern":"budget","path":"/p"}}]}}"#;
    const ENDED: &str = r#"{"type":"turn_ended","status":"success"}"#;
    const CID: &str = "0b6c1a52-9f1e-4c39-8d7e-3a2f5e6d7c81";

    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let projects = d.path().join("projects");
        let dir = projects.join("home-u-proj").join(TRANSCRIPTS_DIR).join(CID);
        std::fs::create_dir_all(dir.join("subagents")).unwrap();
        (d, projects, dir)
    }

    async fn scan(src: &mut CursorAgent, sink: &mut MemorySink) -> CaptureStats {
        src.scan(sink, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap()
    }

    #[test]
    fn only_agent_transcripts_are_accepted() {
        let yes = [
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}/{CID}.jsonl"),
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}/subagents/s1.jsonl"),
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}.jsonl"),
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}.txt"),
        ];
        for p in &yes {
            assert!(is_agent_transcript(Path::new(p)), "{p}");
        }
        let no = [
            "/h/.claude/projects/-home-u-proj/7f3c.jsonl".to_string(),
            "/h/.claude/projects/-home-u-proj/7f3c/subagents/agent-a1.jsonl".to_string(),
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}/other.jsonl"),
            format!("/h/.cursor/projects/p/agent-transcripts/{CID}/notes.txt"),
            "/h/.blueplane/spool/hooks.jsonl".to_string(),
        ];
        for p in &no {
            assert!(!is_agent_transcript(Path::new(p)), "{p}");
        }
        let sub = FileContext::for_path(Path::new(&yes[1])).unwrap();
        assert_eq!(
            (sub.cid.as_str(), sub.subagent.as_deref()),
            (CID, Some("s1"))
        );
        assert_eq!(sub.id(7), format!("ca:{CID}/s1:7"));
    }

    #[test]
    fn line_cursor_round_trips() {
        let c = LineCursor {
            file: FileCursor {
                dev: 1,
                ino: 2,
                offset: 3,
            },
            lines: 4,
        };
        assert_eq!(LineCursor::decode(&c.encode()), Some(c));
        assert_eq!(LineCursor::decode("1:2:3"), None);
        assert_eq!(LineCursor::decode("garbage"), None);
    }

    #[tokio::test]
    async fn lines_sub_agents_bad_and_torn_lines() {
        let (_d, projects, dir) = layout();
        let main = dir.join(format!("{CID}.jsonl"));
        let torn = &ASSISTANT[..30];
        std::fs::write(&main, format!("{USER}\n{{oops\n\n{ASSISTANT}\n{torn}")).unwrap();
        std::fs::write(dir.join("subagents/s1.jsonl"), format!("{USER}\n{ENDED}\n")).unwrap();
        let mut src = CursorAgent::new(vec![projects], PrivacyMode::Standard);
        let mut sink = MemorySink::default();
        let stats = scan(&mut src, &mut sink).await;
        assert_eq!((stats.files, stats.events, stats.bad_lines), (2, 4, 1));
        let evs: Vec<&Event> = sink.events().collect();
        let main_evs: Vec<_> = evs.iter().filter(|e| !e.id.contains("/s1")).collect();
        assert_eq!(main_evs[0].id, format!("ca:{CID}:0"));
        assert_eq!(main_evs[0].kind, "transcript:user");
        assert_eq!(main_evs[0].session_id.as_deref(), Some(CID));
        assert!(main_evs[0].timestamp_ms.is_some(), "the file's mtime");
        let v: Value = serde_json::from_str(&main_evs[1].payload).unwrap();
        assert_eq!(v["line"], 2, "the bad line counts, the blank one does not");
        assert_eq!(v["tools"][0]["name"], "Grep");
        let sub: Vec<_> = evs.iter().filter(|e| e.id.contains("/s1")).collect();
        assert_eq!(sub.len(), 2);
        assert_eq!(sub[1].kind, "transcript:turn_ended");
        assert_eq!(sub[1].session_id.as_deref(), Some(CID));
        assert!(sub[1].payload.contains("\"subagent\":\"s1\""));
        let dead: Vec<_> = sink.dead().collect();
        assert_eq!(dead.len(), 1);
        assert!(!dead[0].reason.contains("oops"));

        // The torn line is finished: captured once, at its offset.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&main)
            .unwrap();
        writeln!(f, "{}", &ASSISTANT[30..]).unwrap();
        writeln!(f, "{ENDED}").unwrap();
        drop(f);
        let mut more = MemorySink::default();
        let stats = scan(&mut src, &mut more).await;
        assert_eq!(stats.events, 2);
        let evs: Vec<&Event> = more.events().collect();
        let torn_at = (USER.len() + "\n{oops\n\n".len() + ASSISTANT.len() + 1) as u64;
        assert_eq!(evs[0].id, format!("ca:{CID}:{torn_at}"));
        let v: Value = serde_json::from_str(&evs[1].payload).unwrap();
        assert_eq!(v["line"], 4);

        // What `dlq replay` reads again: the line's index and the same event.
        let (index, mtime) = line_index_at(&main, torn_at).unwrap();
        assert_eq!(index, 3);
        let ctx = FileContext::for_path(&main).unwrap();
        let again = parse_line(
            &ctx,
            torn_at,
            index,
            ASSISTANT.as_bytes(),
            PrivacyMode::Standard,
            mtime,
        );
        assert!(matches!(again, Parsed::Event(e) if e.payload == evs[0].payload));

        // Restart from the stored cursors: nothing again.
        let mut again = CursorAgent::new(src.dirs.clone(), PrivacyMode::Standard);
        let mut stored = sink.cursors_in(NAMESPACE);
        stored.extend(more.cursors_in(NAMESPACE));
        again.load_cursors(stored);
        let mut none = MemorySink::default();
        assert_eq!(scan(&mut again, &mut none).await.events, 0);
    }

    #[tokio::test]
    async fn a_truncated_transcript_is_read_again_from_line_zero() {
        let (_d, projects, dir) = layout();
        let main = dir.join(format!("{CID}.jsonl"));
        std::fs::write(&main, format!("{USER}\n{ASSISTANT}\n{ENDED}\n")).unwrap();
        let mut src = CursorAgent::new(vec![projects], PrivacyMode::Standard);
        let mut sink = MemorySink::default();
        assert_eq!(scan(&mut src, &mut sink).await.events, 3);
        std::fs::write(&main, format!("{ENDED}\n")).unwrap();
        let mut after = MemorySink::default();
        assert_eq!(scan(&mut src, &mut after).await.events, 1);
        let e = after.events().next().unwrap();
        let v: Value = serde_json::from_str(&e.payload).unwrap();
        assert_eq!(
            (e.id.as_str(), v["line"].as_u64()),
            (format!("ca:{CID}:0").as_str(), Some(0))
        );
        let c = LineCursor::decode(&after.cursors_in(NAMESPACE)[&main.display().to_string()]);
        assert_eq!(c.map(|c| c.lines), Some(1));
    }

    #[tokio::test]
    async fn a_refused_batch_moves_no_cursor() {
        let (_d, projects, dir) = layout();
        std::fs::write(dir.join(format!("{CID}.jsonl")), format!("{USER}\n")).unwrap();
        let mut src = CursorAgent::new(vec![projects], PrivacyMode::Standard);
        let mut sink = MemorySink {
            lease_lost: true,
            ..MemorySink::default()
        };
        let r = src
            .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
            .await;
        assert!(matches!(r, Err(CaptureError::LeaseLost)));
        assert!(src.cursors.is_empty());
        sink.lease_lost = false;
        assert_eq!(scan(&mut src, &mut sink).await.events, 1);
    }

    /// The fixtures of `tests/data/cursor-agent`, as events (update with `UPDATE_EXPECT=1`):
    /// kind, session, id and the payload that reaches Redis and `raw_traces`.
    #[test]
    fn fixture_snapshot() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cursor-agent");
        let mut out = String::new();
        // (The legacy `.txt` fixture's last block depends on its age: see the unit test.)
        for path in transcript_files(&root.join("projects"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        {
            let rel = path.strip_prefix(&root).unwrap().display().to_string();
            let ctx = FileContext::for_path(Path::new(&rel)).unwrap();
            let chunk = tailer::read_new(&path, None).unwrap();
            for (index, (off, line)) in (0u64..).zip(chunk.lines()) {
                if let Parsed::Event(e) =
                    parse_line(&ctx, off, index, line, PrivacyMode::Standard, Some(1))
                {
                    out.push_str(&format!(
                        "{} {} {:?}\n  {}\n",
                        e.id, e.kind, e.session_id, e.payload
                    ));
                }
            }
            out.push('\n');
        }
        expect_test::expect_file!["../../tests/data/cursor-agent/events.standard.txt"]
            .assert_eq(&out);
    }

    fn age(path: &Path, secs: u64) {
        let f = std::fs::File::options().append(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(secs))
            .unwrap();
    }

    #[tokio::test]
    async fn txt_blocks_wait_for_the_next_header_or_a_quiet_file() {
        let (_d, projects, _) = layout();
        let flat = projects
            .join("home-u-proj")
            .join(TRANSCRIPTS_DIR)
            .join("1e2d3c4b.txt");
        let user = "user:\n<user_query>\nfix the retry budget\n</user_query>\n\n";
        let assistant =
            "assistant:\n[Thinking] hmm\nDone.\n[Tool call] read_file\n  target_file: /p/a.rs\n";
        std::fs::write(&flat, format!("{user}{assistant}")).unwrap();
        let mut src = CursorAgent::new(vec![projects], PrivacyMode::Standard);
        let mut sink = MemorySink::default();
        let stats = scan(&mut src, &mut sink).await;
        assert_eq!(stats.events, 1, "the last block may still grow");
        let e: Vec<&Event> = sink.events().collect();
        assert_eq!(e[0].id, "ca:1e2d3c4b:0");
        assert_eq!(e[0].kind, "transcript:user");
        assert!(e[0].payload.contains("\"text\":\"fix the retry budget\""));
        // Quiet for long enough: the last block is complete.
        age(&flat, 3600);
        let mut more = MemorySink::default();
        assert_eq!(scan(&mut src, &mut more).await.events, 1);
        let e: Vec<&Event> = more.events().collect();
        assert_eq!(e[0].id, format!("ca:1e2d3c4b:{}", user.len()));
        let v: Value = serde_json::from_str(&e[0].payload).unwrap();
        assert_eq!(
            (v["line"].as_u64(), v["text"].as_str()),
            (Some(1), Some("Done."))
        );
        assert_eq!(v["tools"][0]["name"], "read_file");
        // Nothing twice; a new block later is captured once.
        let mut none = MemorySink::default();
        assert_eq!(scan(&mut src, &mut none).await.events, 0);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&flat)
            .unwrap();
        write!(f, "user:\n<user_query>\nthanks\n</user_query>\n").unwrap();
        drop(f);
        age(&flat, 3600);
        let mut last = MemorySink::default();
        assert_eq!(scan(&mut src, &mut last).await.events, 1);
        let v: Value = serde_json::from_str(&last.events().next().unwrap().payload).unwrap();
        assert_eq!(v["line"], 2);
    }
}

//! The Claude Code transcript source: tails every `*.jsonl` below the projects directories
//! and emits one event per line.
//!
//! [`claude_code`] knows the format (where transcripts are, how a line becomes an `Event`);
//! this file knows the capture: a [`FileCursor`] per file (kept in `bp:capture:cursors`,
//! path -> `dev:inode:offset`), complete lines only, restarts on truncation or replacement,
//! and batches of at most [`PUBLISH_BATCH`] events and dead letters, each written with the
//! cursor that covers it. Called by the runner (`Capture`) through [`CaptureSource`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::claude_code::{self, FileContext, Parsed};
use super::sink::{Batch, Sink};
use super::source::{BoxFuture, CaptureSource, Each, Progress, Watch};
use super::tailer::{self, FileCursor};
use super::{CaptureError, CaptureStats};
use crate::event::Event;
use crate::privacy::PrivacyMode;
use crate::queue::{CURSORS, CursorWrite, DeadLetter};

/// Files read ahead at most: the one after the file being published (one more while a
/// caller asks for the next before the current one is taken).
const READ_AHEAD: usize = 2;

/// Events per publish (and per cursor move).
pub const PUBLISH_BATCH: usize = 2_000;

/// Claude Code transcripts below `dirs`.
pub struct ClaudeTranscripts {
    dirs: Vec<PathBuf>,
    mode: PrivacyMode,
    /// Path -> how far it was captured.
    cursors: HashMap<String, FileCursor>,
    /// Reads started ahead of their files, oldest first (at most [`READ_AHEAD`]): (path, the
    /// cursor it started from, the read).
    ahead: Vec<(String, Option<FileCursor>, ReadTask)>,
}

type ReadTask = tokio::task::JoinHandle<std::io::Result<ReadChunk>>;

impl ClaudeTranscripts {
    /// A source with no cursors yet (see [`CaptureSource::load_cursors`]).
    pub fn new(dirs: Vec<PathBuf>, mode: PrivacyMode) -> ClaudeTranscripts {
        ClaudeTranscripts {
            dirs,
            mode,
            cursors: HashMap::new(),
            ahead: Vec::new(),
        }
    }

    /// Starts reading `path` (from its current cursor) in the background, so that it is
    /// parsed while the file before it is published; [`ClaudeTranscripts::capture_file`]
    /// takes the result if the cursor has not moved meanwhile.
    pub fn read_ahead(&mut self, path: &Path) {
        let key = path.display().to_string();
        let prev = self.cursors.get(&key).copied();
        if self.ahead.iter().any(|(k, p, _)| *k == key && *p == prev) {
            return;
        }
        self.ahead.retain(|(k, ..)| *k != key);
        if self.ahead.len() >= READ_AHEAD {
            self.ahead.remove(0);
        }
        let read = spawn_read(path, &FileContext::for_path(path), prev, self.mode);
        self.ahead.push((key, prev, read));
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
        let ctx = FileContext::for_path(path);
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        // A read started ahead counts only if it started from the cursor the file has now.
        let mut pending = None;
        if let Some(i) = self.ahead.iter().position(|(k, ..)| *k == key) {
            let (_, prev, read) = self.ahead.swap_remove(i);
            if prev == self.cursors.get(&key).copied() {
                pending = Some(read);
            }
        }
        loop {
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
            let read = match pending.take() {
                Some(r) => r,
                None => spawn_read(path, &ctx, self.cursors.get(&key).copied(), self.mode),
            };
            let (next, skipped, restarted, more, parsed, prev) = match read.await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    // Vanished or unreadable: nothing to capture now; a rescan retries.
                    tracing::debug!(path = %key, error = %e, "Cannot read transcript");
                    return Ok(stats);
                }
                Err(e) => {
                    tracing::error!(path = %key, error = %e, "Transcript reader task failed");
                    return Ok(stats);
                }
            };
            if restarted {
                tracing::info!(path = %key, "Transcript was truncated or replaced; reading it from the start");
            }
            if prev.is_some_and(|p| p == next) && parsed.is_empty() && skipped.is_none() {
                return Ok(stats);
            }
            // The next chunk is read and parsed while this one is published; the cursor it
            // starts from is the one this chunk's last publish writes.
            if more {
                pending = Some(spawn_read(path, &ctx, Some(next), self.mode));
            }
            let mut batch = Pending::default();
            if let Some((off, len)) = skipped {
                tracing::warn!(path = %key, offset = off, bytes = len, "Skipping over-long transcript line");
                batch.dead.push(DeadLetter {
                    stage: "capture",
                    reason: format!(
                        "line of {len} bytes exceeds the {} byte limit",
                        tailer::MAX_LINE
                    ),
                    source: key.clone(),
                    offset: off,
                });
            }
            let mut consumed_from = prev.filter(|_| !restarted).map_or(0, |c| c.offset);
            for (off, end, p) in parsed {
                match p {
                    Parsed::Event(e) => batch.push(*e),
                    Parsed::Skip => {}
                    Parsed::Bad(reason) => {
                        tracing::warn!(path = %key, offset = off, %reason, "Bad transcript line");
                        batch.dead.push(DeadLetter {
                            stage: "capture",
                            reason,
                            source: key.clone(),
                            offset: off,
                        });
                    }
                }
                if batch.len() >= PUBLISH_BATCH {
                    let cur = FileCursor {
                        offset: end,
                        ..next
                    };
                    self.publish(sink, &key, &batch, cur).await?;
                    stats.events += batch.events.len() as u64;
                    stats.bad_lines += batch.dead.len() as u64;
                    stats.bytes += end - consumed_from;
                    progress(end - consumed_from);
                    consumed_from = end;
                    batch = Pending::default();
                    if stop.is_cancelled() {
                        return Err(CaptureError::Stopped);
                    }
                }
            }
            self.publish(sink, &key, &batch, next).await?;
            stats.events += batch.events.len() as u64;
            stats.bad_lines += batch.dead.len() as u64;
            let delta = next.offset.saturating_sub(consumed_from);
            stats.bytes += delta;
            progress(delta);
            if !more {
                return Ok(stats);
            }
        }
    }

    /// Writes `batch` with the cursor that covers it, and moves the cursor once written.
    async fn publish(
        &mut self,
        sink: &mut dyn Sink,
        key: &str,
        batch: &Pending,
        cursor: FileCursor,
    ) -> Result<(), CaptureError> {
        let new_types: Vec<(String, u64)> = batch.new_types.clone().into_iter().collect();
        let encoded = cursor.encode();
        let written = sink
            .publish(Batch {
                events: &batch.events,
                dead: &batch.dead,
                new_types: &new_types,
                cursor: Some(CursorWrite {
                    hash: CURSORS,
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
        let files = self.files();
        for (i, (path, _)) in files.iter().enumerate() {
            if let Some((next, _)) = files.get(i + 1) {
                self.read_ahead(next);
            }
            total += self.capture_file(path, sink, stop, progress).await?;
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
        for (i, p) in paths.iter().enumerate() {
            if let Some(next) = paths.get(i + 1).filter(|n| *n != p) {
                self.read_ahead(next);
            }
            each.add(self.capture_file(p, sink, stop, progress).await)?;
        }
        each.finish()
    }
}

impl CaptureSource for ClaudeTranscripts {
    fn name(&self) -> &'static str {
        "claude_transcripts"
    }

    fn cursor_namespace(&self) -> &'static str {
        CURSORS
    }

    fn load_cursors(&mut self, stored: HashMap<String, String>) {
        // Reads started from the old cursors are not used once the cursors are replaced.
        self.ahead.clear();
        self.cursors = stored
            .into_iter()
            .filter_map(|(k, v)| FileCursor::decode(&v).map(|c| (k, c)))
            .collect();
    }

    fn watch(&self) -> Watch {
        Watch {
            dirs: self.dirs.clone(),
            accepts: claude_code::is_transcript,
        }
    }

    /// Every transcript file with its size.
    fn files(&self) -> Vec<(PathBuf, u64)> {
        self.dirs
            .iter()
            .flat_map(|d| claude_code::transcript_files(d))
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
                    .map_or(0, |c| c.offset.min(*len));
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

    fn read_ahead(&mut self, path: &Path) {
        ClaudeTranscripts::read_ahead(self, path);
    }
}

/// What reading one chunk of a transcript gives: the cursor after it, an over-long line
/// skipped (offset, length), whether the file was restarted, whether more follows, the parsed
/// lines (offset, end, what the line is) and the cursor it started from.
type ReadChunk = (
    FileCursor,
    Option<(u64, u64)>,
    bool,
    bool,
    Vec<(u64, u64, Parsed)>,
    Option<FileCursor>,
);

/// Reads and parses the chunk of `path` after `prev` on the blocking pool.
fn spawn_read(
    path: &Path,
    ctx: &FileContext,
    prev: Option<FileCursor>,
    mode: PrivacyMode,
) -> ReadTask {
    let p = path.to_path_buf();
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || {
        let chunk = tailer::read_new(&p, prev)?;
        let parsed: Vec<(u64, u64, Parsed)> = chunk
            .lines()
            .map(|(off, line)| {
                (
                    off,
                    off + line.len() as u64 + 1,
                    claude_code::parse_line(&ctx, off, line, mode),
                )
            })
            .collect();
        Ok((
            chunk.next,
            chunk.skipped,
            chunk.restarted,
            chunk.more,
            parsed,
            prev,
        ))
    })
}

/// One publish being assembled.
#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    dead: Vec<DeadLetter>,
    new_types: BTreeMap<String, u64>,
}

impl Pending {
    fn push(&mut self, e: Event) {
        if !crate::privacy::is_known_type(&e.kind) {
            *self.new_types.entry(e.kind.clone()).or_default() += 1;
        }
        self.events.push(e);
    }

    fn len(&self) -> usize {
        self.events.len() + self.dead.len()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::capture::MemorySink;

    const USER: &str = r#"{"type":"user","sessionId":"s1","uuid":"u1","timestamp":"2026-01-09T10:00:00.000Z","message":{"role":"user","content":"hi"}}"#;
    const ASSISTANT: &str = r#"{"type":"assistant","sessionId":"s1","uuid":"a1","timestamp":"2026-01-09T10:00:01.000Z","message":{"id":"m1","role":"assistant","content":[],"usage":{"input_tokens":1,"output_tokens":2}}}"#;
    const NEW_TYPE: &str = r#"{"type":"brand-new-type","sessionId":"s1","uuid":"n1"}"#;
    const LATER: &str = r#"{"type":"user","sessionId":"s1","uuid":"u2","timestamp":"2026-01-09T10:00:02.000Z","message":{"role":"user","content":"more"}}"#;

    /// A projects dir with one transcript `proj/s1.jsonl` holding `content`.
    fn transcript(content: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("proj").join("s1.jsonl");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        (d, path)
    }

    fn source(d: &tempfile::TempDir) -> ClaudeTranscripts {
        ClaudeTranscripts::new(vec![d.path().to_path_buf()], PrivacyMode::Standard)
    }

    async fn scan(
        src: &mut ClaudeTranscripts,
        sink: &mut MemorySink,
    ) -> Result<(CaptureStats, u64), CaptureError> {
        let mut progressed = 0;
        let stats = src
            .scan(sink, &CancellationToken::new(), &mut |n| progressed += n)
            .await?;
        Ok((stats, progressed))
    }

    /// `(uuid, offset)` of the events, in order.
    fn events(sink: &MemorySink) -> Vec<(String, u64)> {
        sink.events()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
                let uuid = v["uuid"].as_str().unwrap_or_default().to_string();
                match e.source {
                    crate::event::Source::FileLine { offset, .. } => (uuid, offset),
                    _ => panic!("not a file line"),
                }
            })
            .collect()
    }

    fn cursor_of(path: &Path, offset: u64) -> String {
        let m = std::fs::metadata(path).unwrap();
        FileCursor {
            dev: m.dev(),
            ino: m.ino(),
            offset,
        }
        .encode()
    }

    #[tokio::test]
    async fn lines_bad_lines_and_a_partial_last_line() {
        let partial = &LATER[..40];
        let content = format!("{USER}\n{{oops}}\n\n{ASSISTANT}\n{NEW_TYPE}\n{partial}");
        let (d, path) = transcript(&content);
        let key = path.display().to_string();
        let complete = (content.len() - partial.len()) as u64;
        let mut src = source(&d);
        let mut sink = MemorySink::default();

        let (stats, progressed) = scan(&mut src, &mut sink).await.unwrap();
        assert_eq!(
            stats,
            CaptureStats {
                files: 1,
                bytes: complete,
                events: 3,
                bad_lines: 1,
            }
        );
        assert_eq!(progressed, complete);
        let bad_at = USER.len() as u64 + 1;
        let assistant_at = bad_at + "{oops}\n\n".len() as u64;
        let new_type_at = assistant_at + ASSISTANT.len() as u64 + 1;
        assert_eq!(
            events(&sink),
            vec![
                ("u1".into(), 0),
                ("a1".into(), assistant_at),
                ("n1".into(), new_type_at),
            ]
        );
        let dead: Vec<&DeadLetter> = sink.dead().collect();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].stage, dead[0].offset), ("capture", bad_at));
        assert_eq!(dead[0].source, key);
        assert!(
            dead[0].reason.starts_with("malformed JSON"),
            "{}",
            dead[0].reason
        );
        // One batch: events, letters, the new type and the cursor together.
        assert_eq!(sink.batches.len(), 1);
        let b = &sink.batches[0];
        assert_eq!(b.new_types, vec![("brand-new-type".to_string(), 1)]);
        assert_eq!(
            b.cursor,
            Some((CURSORS.to_string(), key.clone(), cursor_of(&path, complete)))
        );
        assert_eq!(
            sink.cursors_in(CURSORS),
            HashMap::from([(key.clone(), cursor_of(&path, complete))])
        );
        assert_eq!(src.backlog_bytes(&src.files()), partial.len() as u64);

        // Nothing new: nothing written.
        let (stats, progressed) = scan(&mut src, &mut sink).await.unwrap();
        assert_eq!((stats.events, stats.bytes, progressed), (0, 0, 0));
        assert_eq!(sink.batches.len(), 1);

        // The partial line completes: it is captured once, at its own offset.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(format!("{}\n", &LATER[40..]).as_bytes())
            .unwrap();
        let (stats, _) = scan(&mut src, &mut sink).await.unwrap();
        assert_eq!((stats.events, stats.bad_lines), (1, 0));
        assert_eq!(events(&sink).last(), Some(&("u2".to_string(), complete)));
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(sink.cursors_in(CURSORS)[&key], cursor_of(&path, len));
        assert_eq!(src.backlog_bytes(&src.files()), 0);
    }

    #[tokio::test]
    async fn a_new_instance_resumes_from_the_sinks_cursors() {
        let (d, path) = transcript(&format!("{USER}\n{ASSISTANT}\n"));
        let mut sink = MemorySink::default();
        scan(&mut source(&d), &mut sink).await.unwrap();
        assert_eq!(sink.events().count(), 2);

        let mut again = source(&d);
        again.load_cursors(sink.cursors_in(again.cursor_namespace()));
        let mut fresh = MemorySink::default();
        let (stats, progressed) = scan(&mut again, &mut fresh).await.unwrap();
        assert_eq!(
            (stats.files, stats.events, stats.bytes, progressed),
            (1, 0, 0, 0)
        );
        assert!(fresh.batches.is_empty());
        // Cursors it cannot decode are dropped: that file is read again.
        let mut lost = source(&d);
        lost.load_cursors(HashMap::from([(
            path.display().to_string(),
            "garbage".to_string(),
        )]));
        let mut sink2 = MemorySink::default();
        scan(&mut lost, &mut sink2).await.unwrap();
        assert_eq!(sink2.events().count(), 2);
    }

    #[tokio::test]
    async fn truncated_or_replaced_files_are_read_from_the_start() {
        let (d, path) = transcript(&format!("{USER}\n{ASSISTANT}\n{LATER}\n"));
        let key = path.display().to_string();
        let mut src = source(&d);
        let mut sink = MemorySink::default();
        scan(&mut src, &mut sink).await.unwrap();
        assert_eq!(sink.events().count(), 3);

        // Truncated in place (same inode, shorter).
        std::fs::write(&path, format!("{ASSISTANT}\n")).unwrap();
        let mut after = MemorySink::default();
        let (stats, _) = scan(&mut src, &mut after).await.unwrap();
        assert_eq!(stats.events, 1);
        assert_eq!(events(&after), vec![("a1".to_string(), 0)]);
        let len = ASSISTANT.len() as u64 + 1;
        assert_eq!(after.cursors_in(CURSORS)[&key], cursor_of(&path, len));

        // Replaced by a new file (new inode), longer than the old offset.
        let tmp = d.path().join("tmp");
        std::fs::write(&tmp, format!("{LATER}\n{USER}\n")).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        let mut replaced = MemorySink::default();
        let (stats, _) = scan(&mut src, &mut replaced).await.unwrap();
        assert_eq!(stats.events, 2);
        assert_eq!(
            events(&replaced),
            vec![
                ("u2".to_string(), 0),
                ("u1".to_string(), LATER.len() as u64 + 1)
            ]
        );
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(replaced.cursors_in(CURSORS)[&key], cursor_of(&path, len));
    }

    #[tokio::test]
    async fn each_batch_carries_the_cursor_that_covers_it() {
        let line = |i: usize| format!(r#"{{"type":"brand-new-type","uuid":"n{i:05}"}}"#);
        let n = PUBLISH_BATCH + 1;
        let content: String = (0..n).map(|i| line(i) + "\n").collect();
        let (d, path) = transcript(&content);
        let mut sink = MemorySink::default();
        let (stats, progressed) = scan(&mut source(&d), &mut sink).await.unwrap();
        assert_eq!((stats.events, progressed), (n as u64, content.len() as u64));
        let sizes: Vec<usize> = sink.batches.iter().map(|b| b.events.len()).collect();
        assert_eq!(sizes, vec![PUBLISH_BATCH, 1]);
        let first_end = (PUBLISH_BATCH * (line(0).len() + 1)) as u64;
        let cursors: Vec<String> = sink
            .batches
            .iter()
            .map(|b| b.cursor.clone().unwrap().2)
            .collect();
        assert_eq!(
            cursors,
            vec![
                cursor_of(&path, first_end),
                cursor_of(&path, content.len() as u64)
            ]
        );
        assert_eq!(
            sink.batches[0].new_types,
            vec![("brand-new-type".to_string(), PUBLISH_BATCH as u64)]
        );
    }

    #[tokio::test]
    async fn a_refused_batch_moves_no_cursor() {
        let (d, _) = transcript(&format!("{USER}\n"));
        let mut src = source(&d);
        let mut sink = MemorySink {
            lease_lost: true,
            ..MemorySink::default()
        };
        assert!(matches!(
            scan(&mut src, &mut sink).await,
            Err(CaptureError::LeaseLost)
        ));
        assert!(sink.batches.is_empty() && sink.cursors.is_empty());
        // The next holder gets everything.
        sink.lease_lost = false;
        scan(&mut src, &mut sink).await.unwrap();
        assert_eq!(sink.events().count(), 1);
    }

    #[tokio::test]
    async fn a_stopped_scan_writes_nothing_more() {
        let (d, _) = transcript(&format!("{USER}\n"));
        let stop = CancellationToken::new();
        stop.cancel();
        let mut sink = MemorySink::default();
        let r = source(&d).scan(&mut sink, &stop, &mut |_| {}).await;
        assert!(matches!(r, Err(CaptureError::Stopped)));
        assert!(sink.batches.is_empty());
    }

    #[tokio::test]
    async fn a_read_ahead_is_used_once_and_only_from_the_cursor_it_started_at() {
        let (d, path) = transcript(&format!("{USER}\n"));
        let mut src = source(&d);
        let mut sink = MemorySink::default();
        let stop = CancellationToken::new();
        // Read ahead, then the file grows (before or after the read): every line once.
        src.read_ahead(&path);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(format!("{LATER}\n").as_bytes())
            .unwrap();
        for _ in 0..3 {
            src.capture_file(&path, &mut sink, &stop, &mut |_| {})
                .await
                .unwrap();
        }
        let second = USER.len() as u64 + 1;
        assert_eq!(
            events(&sink),
            vec![("u1".to_string(), 0), ("u2".to_string(), second)]
        );
        // A read ahead whose file's cursor moved since it started is not used.
        let key = path.display().to_string();
        let end = src.cursors[&key];
        src.cursors
            .insert(key.clone(), FileCursor { offset: 0, ..end });
        src.read_ahead(&path);
        src.cursors.insert(
            key.clone(),
            FileCursor {
                offset: second,
                ..end
            },
        );
        let mut again = MemorySink::default();
        src.capture_file(&path, &mut again, &stop, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(events(&again), vec![("u2".to_string(), second)]);
        assert!(src.ahead.is_empty());
    }

    #[tokio::test]
    async fn on_change_captures_only_the_changed_paths() {
        let (d, first) = transcript(&format!("{USER}\n"));
        let second = d.path().join("proj").join("s2.jsonl");
        std::fs::write(&second, format!("{ASSISTANT}\n")).unwrap();
        let mut src = source(&d);
        assert!((src.watch().accepts)(&second));
        assert!(!(src.watch().accepts)(
            &d.path().join("proj").join("notes.txt")
        ));
        let mut sink = MemorySink::default();
        let stats = src
            .on_change(
                std::slice::from_ref(&second),
                &mut sink,
                &CancellationToken::new(),
                &mut |_| {},
            )
            .await
            .unwrap();
        assert_eq!((stats.files, stats.events), (1, 1));
        assert_eq!(events(&sink), vec![("a1".to_string(), 0)]);
        let cursors = sink.cursors_in(CURSORS);
        assert!(cursors.contains_key(&second.display().to_string()));
        assert!(!cursors.contains_key(&first.display().to_string()));
        // A vanished file is nothing to capture (a rescan retries), not an error.
        let gone = d.path().join("proj").join("gone.jsonl");
        let stats = src
            .on_change(&[gone], &mut sink, &CancellationToken::new(), &mut |_| {})
            .await
            .unwrap();
        assert_eq!((stats.files, stats.events), (1, 0));
    }
}

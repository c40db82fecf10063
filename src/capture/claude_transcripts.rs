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
use super::source::{BoxFuture, CaptureSource, Progress, Watch};
use super::tailer::{self, FileCursor};
use super::{CaptureError, CaptureStats};
use crate::event::Event;
use crate::privacy::PrivacyMode;
use crate::queue::{CURSORS, CursorWrite, DeadLetter, QueueError};

/// Events per publish (and per cursor move).
pub const PUBLISH_BATCH: usize = 2_000;

/// Claude Code transcripts below `dirs`.
pub struct ClaudeTranscripts {
    dirs: Vec<PathBuf>,
    mode: PrivacyMode,
    /// Path -> how far it was captured.
    cursors: HashMap<String, FileCursor>,
}

impl ClaudeTranscripts {
    /// A source with no cursors yet (see [`CaptureSource::load_cursors`]).
    pub fn new(dirs: Vec<PathBuf>, mode: PrivacyMode) -> ClaudeTranscripts {
        ClaudeTranscripts {
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
        let ctx = FileContext::for_path(path);
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        loop {
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
            let prev = self.cursors.get(&key).copied();
            let mode = self.mode;
            let p = path.to_path_buf();
            let ctx2 = ctx.clone();
            let read = tokio::task::spawn_blocking(move || {
                let chunk = tailer::read_new(&p, prev)?;
                let parsed: Vec<(u64, u64, Parsed)> = chunk
                    .lines()
                    .map(|(off, line)| {
                        (
                            off,
                            off + line.len() as u64 + 1,
                            claude_code::parse_line(&ctx2, off, line, mode),
                        )
                    })
                    .collect();
                Ok::<_, std::io::Error>((
                    chunk.next,
                    chunk.skipped,
                    chunk.restarted,
                    chunk.more,
                    parsed,
                    prev,
                ))
            })
            .await;
            let (next, skipped, restarted, more, parsed, prev) = match read {
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
        let mut total = CaptureStats::default();
        let mut failed: Option<QueueError> = None;
        for p in paths {
            match self.capture_file(p, sink, stop, progress).await {
                Ok(s) => total += s,
                // Redis trouble for one file: the others may still get through.
                Err(CaptureError::Queue(e)) => {
                    failed.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match failed {
            Some(e) => Err(CaptureError::Queue(e)),
            None => Ok(total),
        }
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

//! Layer 1: capture. Reads the assistants' files and appends privacy-filtered events to the
//! `bp:events` stream.
//!
//! Invariants: capture never opens SQLite; its only output is the queue. A file's cursor
//! moves only in the same `MULTI/EXEC` that appends the events it covers (invariant 3), and
//! only the holder of the capture lease tails files continuously (invariant 7).

pub mod claude_code;
pub mod privacy;
pub mod redact;
pub mod tailer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::queue::{DeadLetter, Queue, QueueError};
use claude_code::{FileContext, Parsed};
use privacy::PrivacyMode;
use tailer::FileCursor;

/// Events per `MULTI/EXEC` (and per cursor move).
const PUBLISH_BATCH: usize = 2_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Counters of one scan or file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub files: u64,
    pub bytes: u64,
    pub events: u64,
    pub bad_lines: u64,
}

impl std::ops::AddAssign for CaptureStats {
    fn add_assign(&mut self, o: Self) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.events += o.events;
        self.bad_lines += o.bad_lines;
    }
}

/// Claude Code transcript capture.
pub struct Capture {
    queue: Queue,
    dirs: Vec<PathBuf>,
    mode: PrivacyMode,
    cursors: HashMap<String, FileCursor>,
}

impl Capture {
    /// # Errors
    /// When the cursors cannot be loaded from Redis.
    pub async fn new(
        queue: Queue,
        dirs: Vec<PathBuf>,
        mode: PrivacyMode,
    ) -> Result<Capture, CaptureError> {
        let mut c = Capture {
            queue,
            dirs,
            mode,
            cursors: HashMap::new(),
        };
        c.reload_cursors().await?;
        Ok(c)
    }

    async fn reload_cursors(&mut self) -> Result<(), CaptureError> {
        self.cursors = self
            .queue
            .cursors()
            .await?
            .into_iter()
            .filter_map(|(k, v)| FileCursor::decode(&v).map(|c| (k, c)))
            .collect();
        Ok(())
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// All transcript files with their sizes.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        self.dirs
            .iter()
            .flat_map(|d| claude_code::transcript_files(d))
            .map(|p| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, len)
            })
            .collect()
    }

    /// Bytes not yet captured across all files (for progress bars).
    pub fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64 {
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

    /// Captures everything new in every file once. `progress` gets the bytes consumed.
    ///
    /// `cancel` is checked between files and between published batches: a cancelled scan
    /// returns early with what it published, and the cursors (which move only with their
    /// events) tell the next scan where to carry on.
    ///
    /// # Errors
    /// When Redis fails; what was published stays published and cursors say how far.
    pub async fn scan(
        &mut self,
        cancel: &CancellationToken,
        mut progress: impl FnMut(u64),
    ) -> Result<CaptureStats, CaptureError> {
        let mut total = CaptureStats::default();
        for (path, _) in self.files() {
            if cancel.is_cancelled() {
                break;
            }
            let s = self.capture_file(&path, cancel, &mut progress).await?;
            total += s;
        }
        Ok(total)
    }

    /// Captures the new complete lines of one file, stopping early (between batches) when
    /// `cancel` fires.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn capture_file(
        &mut self,
        path: &Path,
        cancel: &CancellationToken,
        progress: &mut impl FnMut(u64),
    ) -> Result<CaptureStats, CaptureError> {
        let key = path.display().to_string();
        let ctx = FileContext::for_path(path);
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        loop {
            if cancel.is_cancelled() {
                return Ok(stats);
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
            let mut events: Vec<Event> = Vec::new();
            let mut dead: Vec<DeadLetter> = Vec::new();
            if let Some((off, len)) = skipped {
                tracing::warn!(path = %key, offset = off, bytes = len, "Skipping over-long transcript line");
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
            let mut consumed_from = prev.filter(|_| !restarted).map_or(0, |c| c.offset);
            for (off, end, p) in parsed {
                match p {
                    Parsed::Event(e) => events.push(*e),
                    Parsed::Skip => {}
                    Parsed::Bad(reason) => {
                        tracing::warn!(path = %key, offset = off, %reason, "Bad transcript line");
                        dead.push(DeadLetter {
                            stage: "capture",
                            reason,
                            source: key.clone(),
                            offset: off,
                        });
                    }
                }
                if events.len() + dead.len() >= PUBLISH_BATCH {
                    let cur = FileCursor {
                        offset: end,
                        ..next
                    };
                    self.publish(&key, &events, &dead, cur).await?;
                    stats.events += events.len() as u64;
                    stats.bad_lines += dead.len() as u64;
                    stats.bytes += end - consumed_from;
                    progress(end - consumed_from);
                    consumed_from = end;
                    events.clear();
                    dead.clear();
                    if cancel.is_cancelled() {
                        // The rest of the chunk is read again from the cursor next time.
                        return Ok(stats);
                    }
                }
            }
            self.publish(&key, &events, &dead, next).await?;
            stats.events += events.len() as u64;
            stats.bad_lines += dead.len() as u64;
            let delta = next.offset.saturating_sub(consumed_from);
            stats.bytes += delta;
            progress(delta);
            if !more {
                return Ok(stats);
            }
        }
    }

    async fn publish(
        &mut self,
        key: &str,
        events: &[Event],
        dead: &[DeadLetter],
        cursor: FileCursor,
    ) -> Result<(), CaptureError> {
        self.queue
            .publish(events, dead, Some((key, &cursor.encode())))
            .await?;
        self.cursors.insert(key.to_string(), cursor);
        Ok(())
    }

    /// Tails the files while this process holds the capture lease, until `shutdown`.
    pub async fn run(mut self, holder: String, rescan: Duration, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let _watcher = watch(&self.dirs, tx);
        let mut have_lease = false;
        let mut renew = tokio::time::interval(crate::queue::lease::TTL / 3);
        let mut rescan_tick = tokio::time::interval(rescan);
        let mut pending: HashSet<PathBuf> = HashSet::new();
        loop {
            if !have_lease {
                match self.queue.acquire_lease(&holder).await {
                    Ok(true) => {
                        tracing::info!(holder = %holder, "Took the capture lease");
                        have_lease = true;
                        if let Err(e) = self.reload_cursors().await {
                            tracing::warn!(error = %e, "Cannot load capture cursors");
                            have_lease = false;
                        } else {
                            self.scan_logged(&shutdown).await;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "Cannot reach Redis for the lease"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(p) = rx.recv() => {
                    pending.insert(p);
                    // Let a burst of writes settle, then take every path at once.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while let Ok(p) = rx.try_recv() {
                        pending.insert(p);
                    }
                    if have_lease {
                        for p in pending.drain() {
                            if let Err(e) = self.capture_file(&p, &shutdown, &mut |_| {}).await {
                                tracing::warn!(error = %e, "Capture failed; will retry");
                            }
                        }
                    } else {
                        pending.clear();
                    }
                }
                _ = rescan_tick.tick() => {
                    if have_lease {
                        self.scan_logged(&shutdown).await;
                    }
                }
                _ = renew.tick() => {
                    if have_lease {
                        match self.queue.renew_lease(&holder).await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!("Lost the capture lease");
                                have_lease = false;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "Cannot renew the capture lease");
                                have_lease = false;
                            }
                        }
                    }
                }
            }
        }
        if have_lease {
            let _ = self.queue.release_lease(&holder).await;
        }
    }

    async fn scan_logged(&mut self, shutdown: &CancellationToken) {
        match self.scan(shutdown, |_| {}).await {
            Ok(s) if s.events > 0 || s.bad_lines > 0 => {
                tracing::debug!(events = s.events, bad = s.bad_lines, "Captured");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Capture scan failed; will retry"),
        }
    }
}

/// Events that can mean new transcript content: creation, writes, renames (and rescans).
fn wants(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other
    )
}

/// Watches the directories recursively; changed transcript paths go to `tx`. Returns the
/// watcher (dropping it stops watching), or None when watching is unavailable, in which case
/// the periodic rescan does the work.
fn watch(
    dirs: &[PathBuf],
    tx: tokio::sync::mpsc::UnboundedSender<PathBuf>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // Reading a transcript raises access events; reacting to them would make every
            // capture trigger the next one.
            if !wants(&ev.kind) {
                return;
            }
            for p in ev.paths {
                if claude_code::is_transcript(&p) {
                    let _ = tx.send(p);
                }
            }
        }
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "File watching unavailable; relying on periodic rescans");
            return None;
        }
    };
    for d in dirs {
        if d.is_dir()
            && let Err(e) = w.watch(d, RecursiveMode::Recursive)
        {
            tracing::warn!(dir = %d.display(), error = %e, "Cannot watch directory; relying on periodic rescans");
        }
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};

    #[test]
    fn reading_a_file_does_not_trigger_capture() {
        assert!(!super::wants(&EventKind::Access(AccessKind::Open(
            AccessMode::Read
        ))));
        assert!(!super::wants(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(super::wants(&EventKind::Modify(ModifyKind::Any)));
        assert!(super::wants(&EventKind::Create(CreateKind::File)));
    }
}

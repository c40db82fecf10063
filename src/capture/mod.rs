//! Layer 1: capture. Reads the assistants' files and appends privacy-filtered events to the
//! `bp:events` stream.
//!
//! Invariants: capture never opens SQLite; its only output is the queue. A file's cursor
//! moves only in the same script that appends the events it covers (invariant 3), and only
//! the holder of the capture lease captures: every publish is fenced by the lease token, and
//! a lost lease stops capture between files and batches (invariant 7).

pub mod claude_code;
pub mod tailer;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::privacy::PrivacyMode;
use crate::queue::lease::HeldLease;
use crate::queue::{Batch, DeadLetter, Queue, QueueError};
use claude_code::{FileContext, Parsed};
use tailer::FileCursor;

/// Events per publish (and per cursor move).
const PUBLISH_BATCH: usize = 2_000;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The capture lease was lost (or never held): nothing more was written.
    #[error("the capture lease is held by another process")]
    LeaseLost,
    /// Capture was asked to stop; what was published stays published.
    #[error("capture stopped")]
    Stopped,
}

/// Counters of one scan or file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// The lease token every publish is fenced by.
    fence: Option<String>,
    /// Checked between files and batches.
    stop: CancellationToken,
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
            fence: None,
            stop: CancellationToken::new(),
        };
        c.reload_cursors().await?;
        Ok(c)
    }

    /// Captures under `lease` from now on: every publish is fenced by its token, and a lost
    /// lease (or `stop`) ends a scan between files and batches. Cursors are reloaded, since a
    /// previous holder may have moved them.
    ///
    /// # Errors
    /// When the cursors cannot be loaded.
    pub async fn attach(
        &mut self,
        lease: &HeldLease,
        stop: &CancellationToken,
    ) -> Result<(), CaptureError> {
        self.fence = Some(lease.token.clone());
        let stop = stop.child_token();
        let lost = lease.lost.clone();
        let s = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = lost.cancelled() => s.cancel(),
                _ = s.cancelled() => {}
            }
        });
        self.stop = stop;
        self.reload_cursors().await
    }

    async fn reload_cursors(&mut self) -> Result<(), CaptureError> {
        self.cursors = self
            .queue
            .cursors(crate::queue::CURSORS)
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
    /// # Errors
    /// Redis failures, a lost lease or a stop; what was published stays published and
    /// cursors say how far.
    pub async fn scan(
        &mut self,
        mut progress: impl FnMut(u64),
    ) -> Result<CaptureStats, CaptureError> {
        let mut total = CaptureStats::default();
        for (path, _) in self.files() {
            let s = self.capture_file(&path, &mut progress).await?;
            total += s;
        }
        Ok(total)
    }

    /// Captures the new complete lines of one file.
    ///
    /// # Errors
    /// Redis failures, a lost lease or a stop.
    pub async fn capture_file(
        &mut self,
        path: &Path,
        progress: &mut impl FnMut(u64),
    ) -> Result<CaptureStats, CaptureError> {
        let key = path.display().to_string();
        let ctx = FileContext::for_path(path);
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        loop {
            if self.stop.is_cancelled() {
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
                    self.publish(&key, &batch, cur).await?;
                    stats.events += batch.events.len() as u64;
                    stats.bad_lines += batch.dead.len() as u64;
                    stats.bytes += end - consumed_from;
                    progress(end - consumed_from);
                    consumed_from = end;
                    batch = Pending::default();
                    if self.stop.is_cancelled() {
                        return Err(CaptureError::Stopped);
                    }
                }
            }
            self.publish(&key, &batch, next).await?;
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

    async fn publish(
        &mut self,
        key: &str,
        batch: &Pending,
        cursor: FileCursor,
    ) -> Result<(), CaptureError> {
        let new_types: Vec<(String, u64)> = batch.new_types.clone().into_iter().collect();
        let encoded = cursor.encode();
        let written = self
            .queue
            .publish_batch(&Batch {
                events: &batch.events,
                dead: &batch.dead,
                cursor: Some(crate::queue::CursorWrite {
                    hash: crate::queue::CURSORS,
                    field: key,
                    value: &encoded,
                }),
                new_types: &new_types,
                fence: self.fence.as_deref(),
            })
            .await?;
        if !written {
            self.stop.cancel();
            return Err(CaptureError::LeaseLost);
        }
        self.cursors.insert(key.to_string(), cursor);
        Ok(())
    }

    /// Tails the files while this process holds the capture lease, until `shutdown`; takes
    /// the lease over when its holder dies, and serves `backfill`'s scan requests.
    pub async fn run(mut self, holder: String, rescan: Duration, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
        let _watcher = watch(&self.dirs, tx);
        let mut poll = tokio::time::interval(Duration::from_millis(500));
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        'acquire: loop {
            // Not the holder: try to take the lease twice a second; drop watcher events (the
            // holder captures those files).
            let lease = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = poll.tick() => {}
                    Some(_) = rx.recv() => continue,
                }
                match HeldLease::try_take(&self.queue, &holder).await {
                    Ok(Some(l)) => break l,
                    Ok(None) => {}
                    Err(e) => tracing::debug!(error = %e, "Cannot reach Redis for the lease"),
                }
            };
            tracing::info!(token = %lease.token, "Took the capture lease");
            if let Err(e) = self.attach(&lease, &shutdown).await {
                tracing::warn!(error = %e, "Cannot load capture cursors");
                lease.release().await;
                continue;
            }
            while rx.try_recv().is_ok() {}
            let mut served = self.queue.scan_requested().await.unwrap_or(0);
            if !self.scan_logged(&mut served).await {
                lease.release().await;
                continue 'acquire;
            }
            let mut rescan_tick = tokio::time::interval(rescan);
            rescan_tick.tick().await;
            let mut pending: HashSet<PathBuf> = HashSet::new();
            loop {
                let ok = tokio::select! {
                    _ = shutdown.cancelled() => {
                        lease.release().await;
                        return;
                    }
                    _ = lease.lost.cancelled() => false,
                    Some(p) = rx.recv() => {
                        pending.insert(p);
                        // Let a burst of writes settle, then take every path at once.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        while let Ok(p) = rx.try_recv() {
                            pending.insert(p);
                        }
                        let mut ok = true;
                        for p in pending.drain() {
                            match self.capture_file(&p, &mut |_| {}).await {
                                Ok(_) => {}
                                Err(CaptureError::Queue(e)) => {
                                    tracing::warn!(error = %e, "Capture failed; will retry");
                                }
                                Err(_) => ok = false,
                            }
                        }
                        ok
                    }
                    _ = rescan_tick.tick() => self.scan_logged(&mut served).await,
                    _ = poll.tick() => {
                        match self.queue.scan_requested().await {
                            Ok(n) if n > served => self.scan_logged(&mut served).await,
                            _ => true,
                        }
                    }
                };
                if !ok || lease.is_lost() {
                    tracing::warn!("Capture stopped: the lease was lost; waiting to take it again");
                    drop(lease);
                    continue 'acquire;
                }
            }
        }
    }

    /// A full scan that also serves every scan request filed before it started. Returns
    /// false when the lease was lost or capture stopped.
    async fn scan_logged(&mut self, served: &mut u64) -> bool {
        let asked = self.queue.scan_requested().await.unwrap_or(*served);
        match self.scan(|_| {}).await {
            Ok(s) => {
                if s.events > 0 || s.bad_lines > 0 {
                    tracing::debug!(events = s.events, bad = s.bad_lines, "Captured");
                }
                if asked > *served {
                    let figures = serde_json::to_string(&s).unwrap_or_default();
                    match self.queue.scan_served(*served, asked, &figures).await {
                        Ok(()) => *served = asked,
                        Err(e) => tracing::warn!(error = %e, "Cannot report a requested scan"),
                    }
                }
                true
            }
            Err(CaptureError::Queue(e)) => {
                tracing::warn!(error = %e, "Capture scan failed; will retry");
                true
            }
            Err(_) => false,
        }
    }
}

/// One publish being assembled.
#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    dead: Vec<DeadLetter>,
    new_types: std::collections::BTreeMap<String, u64>,
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

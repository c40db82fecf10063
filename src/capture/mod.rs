//! Layer 1: capture. Reads the assistants' files and appends privacy-filtered events to the
//! `bp:events` stream.
//!
//! Capture is a runner over sources: each [`CaptureSource`] (one file per source:
//! `claude_transcripts`, `cursor_agent`, ...) discovers and parses its input, keeps its own typed cursors and
//! emits batches into a [`Sink`]; [`Capture`] owns what is common — the capture lease and the
//! fence on every write, stopping, the file watcher, periodic rescans and `backfill`'s scan
//! requests. Adding a source means one file here and one entry in [`Capture::new`].
//!
//! Invariants: capture never opens Blueplane's SQLite store (only Cursor's databases,
//! read-only, in `cursor_db`); its only output is the queue. A source's cursor
//! moves only in the same script that appends the events it covers (invariant 3), and only
//! the holder of the capture lease captures: every publish is fenced by the lease token, and
//! a lost lease stops capture between files and batches (invariant 7).

pub mod claude_code;
pub mod claude_transcripts;
pub mod cursor_agent;
pub mod cursor_db;
pub mod hook_spool;
pub mod sink;
pub mod source;
pub mod tailer;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::privacy::PrivacyMode;
use crate::queue::lease::HeldLease;
use crate::queue::{Queue, QueueError};

pub use claude_transcripts::ClaudeTranscripts;
pub use cursor_agent::CursorAgent;
pub use cursor_db::CursorDb;
pub use hook_spool::HookSpool;
pub use sink::{MemorySink, RedisSink, Sink};
pub use source::{CaptureSource, Watch};

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

/// Where the Cursor sources read (see `config`).
#[derive(Debug, Clone, Default)]
pub struct CursorDirs {
    /// Cursor's data directory (holding `User/globalStorage` and `User/workspaceStorage`).
    pub data_dir: Option<PathBuf>,
    /// `projects` below Cursor's per-user directory (`~/.cursor`): agent CLI transcripts.
    pub projects: Vec<PathBuf>,
}

/// The capture runner: every source, one fenced Redis sink, one stop token.
pub struct Capture {
    /// The lease and scan requests.
    queue: Queue,
    /// Where every source writes; fenced by the lease token once attached.
    sink: RedisSink,
    sources: Vec<Box<dyn CaptureSource>>,
    /// Checked by the sources between files and batches.
    stop: CancellationToken,
}

impl Capture {
    /// The hook spool in `spool`, the Claude Code transcripts below `dirs`, and Cursor's
    /// databases and agent transcripts (`cursor`).
    ///
    /// # Errors
    /// When the cursors cannot be loaded from Redis.
    pub async fn new(
        queue: Queue,
        spool: PathBuf,
        dirs: Vec<PathBuf>,
        cursor: CursorDirs,
        mode: PrivacyMode,
    ) -> Result<Capture, CaptureError> {
        // The spool first: its `hooks.jsonl` must not be taken for a transcript; Cursor's
        // agent transcripts before Claude Code's, which accept any `*.jsonl` (a hook's nudge
        // names a path outside every watched directory).
        Capture::with_sources(
            queue,
            vec![
                Box::new(HookSpool::new(spool)),
                Box::new(CursorAgent::new(cursor.projects, mode)),
                Box::new(ClaudeTranscripts::new(dirs, mode)),
                Box::new(CursorDb::new(cursor.data_dir, mode)),
            ],
        )
        .await
    }

    /// A runner over `sources`, their cursors loaded.
    ///
    /// # Errors
    /// When the cursors cannot be loaded from Redis.
    pub async fn with_sources(
        queue: Queue,
        sources: Vec<Box<dyn CaptureSource>>,
    ) -> Result<Capture, CaptureError> {
        let mut c = Capture {
            sink: RedisSink::new(queue.clone()),
            queue,
            sources,
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
        self.sink.fence(lease.token.clone());
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
        for s in &mut self.sources {
            let stored = self.sink.cursors(s.cursor_namespace()).await?;
            s.load_cursors(stored);
        }
        Ok(())
    }

    /// Every source's files with their sizes.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        self.sources.iter().flat_map(|s| s.files()).collect()
    }

    /// Bytes not yet captured across `files` (for progress bars).
    pub fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64 {
        let mut by_source: BTreeMap<usize, Vec<(PathBuf, u64)>> = BTreeMap::new();
        for f in files {
            if let Some(i) = self.owner(&f.0) {
                by_source.entry(i).or_default().push(f.clone());
            }
        }
        by_source
            .iter()
            .map(|(i, files)| self.sources[*i].backlog_bytes(files))
            .sum()
    }

    /// The first source that accepts `path`.
    fn owner(&self, path: &Path) -> Option<usize> {
        self.sources.iter().position(|s| (s.watch().accepts)(path))
    }

    /// Captures everything new in every source once. `progress` gets the bytes consumed.
    ///
    /// # Errors
    /// Redis failures, a lost lease or a stop; what was published stays published and
    /// cursors say how far.
    pub async fn scan(
        &mut self,
        mut progress: impl FnMut(u64) + Send,
    ) -> Result<CaptureStats, CaptureError> {
        let mut total = CaptureStats::default();
        for s in &mut self.sources {
            let r = s.scan(&mut self.sink, &self.stop, &mut progress).await;
            total += stop_if_lost(&self.stop, r)?;
        }
        Ok(total)
    }

    /// Captures the new content of one file (of the source that accepts it).
    ///
    /// # Errors
    /// Redis failures, a lost lease or a stop.
    pub async fn capture_file(
        &mut self,
        path: &Path,
        progress: &mut (impl FnMut(u64) + Send),
    ) -> Result<CaptureStats, CaptureError> {
        match self.owner(path) {
            Some(i) => self.on_change(i, &[path.to_path_buf()], progress).await,
            None => Ok(CaptureStats::default()),
        }
    }

    /// A hint that `path` is captured next: its source may start reading it now (see
    /// [`CaptureSource::read_ahead`]).
    pub fn read_ahead(&mut self, path: &Path) {
        if let Some(i) = self.owner(path) {
            self.sources[i].read_ahead(path);
        }
    }

    async fn on_change(
        &mut self,
        source: usize,
        paths: &[PathBuf],
        progress: &mut (impl FnMut(u64) + Send),
    ) -> Result<CaptureStats, CaptureError> {
        let r = self.sources[source]
            .on_change(paths, &mut self.sink, &self.stop, progress)
            .await;
        stop_if_lost(&self.stop, r)
    }

    /// Captures the changed paths, each with its source. Returns false when the lease was
    /// lost or capture stopped.
    async fn capture_changed(&mut self, pending: &mut HashSet<(usize, PathBuf)>) -> bool {
        let mut by_source: BTreeMap<usize, Vec<PathBuf>> = BTreeMap::new();
        for (i, p) in pending.drain() {
            by_source.entry(i).or_default().push(p);
        }
        for (i, paths) in by_source {
            match self.on_change(i, &paths, &mut |_| {}).await {
                Ok(_) => {}
                Err(CaptureError::Queue(e)) => {
                    tracing::warn!(source = self.sources[i].name(), error = %e, "Capture failed; will retry");
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Captures the transcripts that hook payloads named (`hook::NUDGE`) since the last poll
    /// (a hook fires right after Claude Code wrote its line, and watching may be unavailable),
    /// and what polling sources ([`CaptureSource::poll`]) found changed.
    /// Returns false when the lease was lost or capture stopped.
    async fn capture_nudged(&mut self, pending: &mut HashSet<(usize, PathBuf)>) -> bool {
        let paths = match self.queue.take_nudges(256).await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "Cannot read capture nudges");
                return true;
            }
        };
        for p in paths {
            let p = PathBuf::from(p);
            if let Some(i) = self.owner(&p) {
                pending.insert((i, p));
            }
        }
        // Sources that poll for changes (Cursor's `data_version`).
        for (i, s) in self.sources.iter_mut().enumerate() {
            for p in s.poll().await {
                pending.insert((i, p));
            }
        }
        if pending.is_empty() {
            return true;
        }
        self.capture_changed(pending).await
    }

    /// Tails the files while this process holds the capture lease, until `shutdown`; takes
    /// the lease over when its holder dies, and serves `backfill`'s scan requests.
    pub async fn run(mut self, holder: String, rescan: Duration, shutdown: CancellationToken) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, PathBuf)>();
        let _watchers: Vec<notify::RecommendedWatcher> = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| watch(i, s.watch(), tx.clone()))
            .collect();
        drop(tx);
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
            // Requests filed before this acquisition and never answered (the previous holder
            // took them and died, was paused or lost the lease) are answered by the first
            // scan, which starts after them.
            let mut served = self.queue.scans_answered().await.unwrap_or(0);
            if !self.scan_logged(&mut served).await {
                lease.release().await;
                continue 'acquire;
            }
            let mut rescan_tick = tokio::time::interval(rescan);
            rescan_tick.tick().await;
            let mut pending: HashSet<(usize, PathBuf)> = HashSet::new();
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
                        self.capture_changed(&mut pending).await
                    }
                    _ = rescan_tick.tick() => self.scan_logged(&mut served).await,
                    _ = poll.tick() => {
                        match self.queue.scan_requested().await {
                            Ok(n) if n > served => self.scan_logged(&mut served).await,
                            _ => self.capture_nudged(&mut pending).await,
                        }
                    }
                };
                if shutdown.is_cancelled() {
                    lease.release().await;
                    return;
                }
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

/// A lost lease stops the runner's other work too (the next file or source stops at once).
fn stop_if_lost<T>(
    stop: &CancellationToken,
    r: Result<T, CaptureError>,
) -> Result<T, CaptureError> {
    if matches!(r, Err(CaptureError::LeaseLost)) {
        stop.cancel();
    }
    r
}

/// Events that can mean new content: creation, writes, renames (and rescans).
fn wants(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other
    )
}

/// Watches a source's directories recursively; changed paths it accepts go to `tx`, tagged
/// with `source`. Returns the watcher (dropping it stops watching), or None when watching is
/// unavailable, in which case the periodic rescan does the work.
fn watch(
    source: usize,
    spec: Watch,
    tx: tokio::sync::mpsc::UnboundedSender<(usize, PathBuf)>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let accepts = spec.accepts;
    let handler = move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // Reading a file raises access events; reacting to them would make every capture
            // trigger the next one.
            if !wants(&ev.kind) {
                return;
            }
            for p in ev.paths {
                if accepts(&p) {
                    let _ = tx.send((source, p));
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
    for d in &spec.dirs {
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

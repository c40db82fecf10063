//! The hook spool source: drains `$BLUEPLANE_HOME/spool` (hook and status-line payloads that
//! Redis could not take, see `hook::spool`) into the stream.
//!
//! Only the capture lease holder drains, like every source. A spool file is taken (moved
//! aside under its lock), published in batches through the fenced sink, and deleted once all
//! of it was accepted; a lost lease or a crash leaves it for the next holder, whose publish
//! repeats ids the fast path already stored (idempotent). Bad payloads become dead letters;
//! torn lines (a hook killed mid-append) too, with their offset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::sink::{Batch, Sink};
use super::source::{BoxFuture, CaptureSource, Progress, Watch};
use super::{CaptureError, CaptureStats};
use crate::hook::spool;
use crate::queue::DeadLetter;

/// Records per publish.
const BATCH: usize = 500;

/// The spool directory of one home.
pub struct HookSpool {
    dir: PathBuf,
}

impl HookSpool {
    pub fn new(dir: PathBuf) -> HookSpool {
        HookSpool { dir }
    }

    async fn drain(
        &mut self,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let dir = self.dir.clone();
        let files = tokio::task::spawn_blocking(move || spool::take(&dir))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let files = match files {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "Cannot take the hook spool; will retry");
                return Ok(CaptureStats::default());
            }
        };
        let mut stats = CaptureStats::default();
        for f in files {
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
            let path = f.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read(path))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let bytes = match read {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(file = %f.display(), error = %e, "Cannot read a spool file; will retry");
                    continue;
                }
            };
            let source = f.display().to_string();
            let records = spool::parse(&bytes);
            for chunk in records.chunks(BATCH) {
                if stop.is_cancelled() {
                    return Err(CaptureError::Stopped);
                }
                let mut events = Vec::with_capacity(chunk.len());
                let mut dead = Vec::new();
                for r in chunk {
                    match r {
                        Ok(rec) => match rec.to_event() {
                            Ok(e) => events.push(e),
                            Err(d) => dead.push(d),
                        },
                        Err(offset) => dead.push(DeadLetter {
                            stage: "hook",
                            reason: "torn spool line (a hook process died while writing it)".into(),
                            source: source.clone(),
                            offset: *offset,
                        }),
                    }
                }
                let accepted = sink
                    .publish(Batch {
                        events: &events,
                        dead: &dead,
                        new_types: &[],
                        cursor: None,
                    })
                    .await?;
                if !accepted {
                    return Err(CaptureError::LeaseLost);
                }
                stats.events += events.len() as u64;
                stats.bad_lines += dead.len() as u64;
            }
            stats.files += 1;
            stats.bytes += bytes.len() as u64;
            progress(bytes.len() as u64);
            if let Err(e) = std::fs::remove_file(&f) {
                tracing::warn!(file = %f.display(), error = %e, "Cannot remove a drained spool file; it will be drained again (idempotently)");
            }
        }
        if stats.events > 0 || stats.bad_lines > 0 {
            tracing::info!(
                events = stats.events,
                bad = stats.bad_lines,
                "Drained the hook spool"
            );
        }
        Ok(stats)
    }
}

fn accepts(p: &Path) -> bool {
    spool::is_spool_file(p)
        && p.parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "spool")
}

impl CaptureSource for HookSpool {
    fn name(&self) -> &'static str {
        "hook_spool"
    }

    /// Unused: a drained file is deleted, and ids make a repeated drain idempotent.
    fn cursor_namespace(&self) -> &'static str {
        "bp:capture:spool"
    }

    fn load_cursors(&mut self, _stored: HashMap<String, String>) {}

    fn watch(&self) -> Watch {
        Watch {
            dirs: vec![self.dir.clone()],
            accepts,
        }
    }

    fn files(&self) -> Vec<(PathBuf, u64)> {
        let mut out: Vec<(PathBuf, u64)> = spool::waiting(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let n = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, n)
            })
            .collect();
        let live = self.dir.join(spool::SPOOL_FILE);
        if let Ok(m) = std::fs::metadata(&live) {
            out.push((live, m.len()));
        }
        out
    }

    fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64 {
        files.iter().map(|(_, n)| n).sum()
    }

    fn scan<'a>(
        &'a mut self,
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.drain(sink, stop, progress))
    }

    fn on_change<'a>(
        &'a mut self,
        _paths: &'a [PathBuf],
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.drain(sink, stop, progress))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::MemorySink;
    use crate::hook::spool::SpoolRecord;

    #[tokio::test]
    async fn drains_events_and_dead_letters_once() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("spool");
        spool::append(
            &dir,
            &SpoolRecord::Event {
                id: "hk:1".into(),
                p: "claude_code".into(),
                k: "hook".into(),
                s: Some("s".into()),
                t: 7,
                src: "Stop".into(),
                d: "{}".into(),
            },
        )
        .unwrap();
        spool::append(
            &dir,
            &SpoolRecord::Bad {
                bad: "payload is not JSON".into(),
                src: "hook:claude".into(),
                bytes: 4,
                at: 8,
            },
        )
        .unwrap();
        let mut src = HookSpool::new(dir.clone());
        assert!((src.watch().accepts)(&dir.join("hooks.jsonl")));
        let mut sink = MemorySink::default();
        let stop = CancellationToken::new();
        let s = src.scan(&mut sink, &stop, &mut |_| {}).await.unwrap();
        assert_eq!((s.events, s.bad_lines), (1, 1));
        let e: Vec<_> = sink.events().collect();
        assert_eq!(e[0].id, "hk:1");
        assert_eq!(e[0].source.kind(), "hook");
        assert_eq!(sink.dead().next().map(|d| d.offset), Some(4));
        // Drained files are gone: a second scan publishes nothing.
        let s = src.scan(&mut sink, &stop, &mut |_| {}).await.unwrap();
        assert_eq!(s.events, 0);
        assert!(src.files().is_empty());
    }

    #[tokio::test]
    async fn a_lost_lease_keeps_the_file_for_the_next_holder() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("spool");
        spool::append(
            &dir,
            &SpoolRecord::Bad {
                bad: "x".into(),
                src: "hook:claude".into(),
                bytes: 1,
                at: 1,
            },
        )
        .unwrap();
        let mut src = HookSpool::new(dir.clone());
        let mut sink = MemorySink {
            lease_lost: true,
            ..MemorySink::default()
        };
        let r = src
            .scan(&mut sink, &CancellationToken::new(), &mut |_| {})
            .await;
        assert!(matches!(r, Err(CaptureError::LeaseLost)));
        assert_eq!(spool::waiting(&dir).unwrap().len(), 1);
    }
}

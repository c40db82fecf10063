//! The plug-in seam of capture: a [`CaptureSource`] reads one kind of input (Claude Code
//! transcripts, hook spools, Cursor's databases) into a [`Sink`].
//!
//! A source owns its input's discovery, parsing and its own typed cursors; the runner
//! (`Capture`) owns the lease, the watcher, rescans and stopping, and drives every source
//! through this trait alone. Invariant: a source moves a cursor only inside the batch that
//! carries the events it covers, and only after the sink accepted that batch; it checks
//! `stop` between files and batches and returns [`CaptureError::Stopped`] when it is set, and
//! [`CaptureError::LeaseLost`] when the sink refuses a batch.
//!
//! The methods that do I/O return boxed futures, so that the runner can hold sources of
//! different types in one `Vec<Box<dyn CaptureSource>>`.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use tokio_util::sync::CancellationToken;

use super::sink::Sink;
use super::{CaptureError, CaptureStats};
use crate::queue::QueueError;

/// A future a trait object can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Gets the number of input bytes consumed, as batches are written (progress bars).
pub type Progress<'a> = dyn FnMut(u64) + Send + 'a;

/// What the runner watches for a source.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Watched recursively.
    pub dirs: Vec<PathBuf>,
    /// Whether a changed path (or one given to `Capture::capture_file`) is this source's.
    /// Sources must not accept each other's paths: a path belongs to the first that does.
    pub accepts: fn(&Path) -> bool,
}

/// One capture source, driven by the runner.
pub trait CaptureSource: Send {
    /// A short stable id for logs (`claude_transcripts`).
    fn name(&self) -> &'static str;

    /// The hash its cursors live in (the same name in every sink). Never changes for a
    /// source, so that existing stores keep their cursors.
    fn cursor_namespace(&self) -> &'static str;

    /// Replaces the source's cursors by `stored` (key -> encoded value, as read from its
    /// namespace); entries it cannot decode are ignored (their input is read again).
    fn load_cursors(&mut self, stored: HashMap<String, String>);

    /// What to watch for changes.
    fn watch(&self) -> Watch;

    /// The files the source reads now, with their sizes.
    fn files(&self) -> Vec<(PathBuf, u64)>;

    /// Bytes of `files` (from [`CaptureSource::files`]) not captured yet.
    fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64;

    /// Captures everything new once.
    ///
    /// # Errors
    /// The sink failed, refused a batch (the lease is lost) or `stop` was set; what was
    /// written stays written and the cursors say how far.
    fn scan<'a>(
        &'a mut self,
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>>;

    /// Captures what is new in `paths`, which the watcher reported changed (and
    /// [`Watch::accepts`] accepted).
    ///
    /// # Errors
    /// As [`CaptureSource::scan`]; a sink failure on one path does not keep the others from
    /// being captured, and the first such failure is returned at the end.
    fn on_change<'a>(
        &'a mut self,
        paths: &'a [PathBuf],
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>>;

    /// A hint that `path` is captured next (through [`CaptureSource::on_change`]): a source
    /// may start reading and parsing it now, while the file before it is published. Reading
    /// ahead never moves a cursor.
    fn read_ahead(&mut self, _path: &Path) {}

    /// Paths with new content found by polling rather than watching (Cursor's `PRAGMA
    /// data_version`), asked on every poll tick of the runner (twice a second; a source
    /// throttles itself). The runner captures them through [`CaptureSource::on_change`].
    fn poll(&mut self) -> BoxFuture<'_, Vec<PathBuf>> {
        Box::pin(std::future::ready(Vec::new()))
    }
}

/// The results of capturing several inputs one after the other, as
/// [`CaptureSource::on_change`] promises: Redis trouble with one input does not keep the others
/// from being captured (the first such failure is returned at the end); a lost lease or a stop
/// ends the loop at once.
#[derive(Debug, Default)]
pub struct Each {
    total: CaptureStats,
    failed: Option<QueueError>,
}

impl Each {
    /// Adds one input's result.
    ///
    /// # Errors
    /// Any error but [`CaptureError::Queue`]: the loop must end now.
    pub fn add(&mut self, r: Result<CaptureStats, CaptureError>) -> Result<(), CaptureError> {
        match r {
            Ok(s) => self.total += s,
            Err(CaptureError::Queue(e)) => {
                self.failed.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// The sum of the inputs' stats.
    ///
    /// # Errors
    /// The first Redis failure, if there was one.
    pub fn finish(self) -> Result<CaptureStats, CaptureError> {
        match self.failed {
            Some(e) => Err(CaptureError::Queue(e)),
            None => Ok(self.total),
        }
    }
}

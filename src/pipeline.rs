//! Wires the stages together in one process and owns shutdown.
//!
//! `serve`, `ingest` and `backfill` all run the same pipeline: capture (gated by the lease),
//! fast path, slow path, and maintenance (trimming acknowledged stream entries, reclaiming
//! stale change-feed entries). Shutdown goes in flow order: capture stops first, then the
//! consumers finish their current batch.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capture::Capture;
use crate::config::Config;
use crate::fast_path::FastPath;
use crate::queue::{self, Queue};
use crate::slow_path::SlowPath;

/// Connects to `REDIS_URL` or the managed redis-server (starting it if needed).
///
/// # Errors
/// One sentence with the fix (e.g. redis-server missing).
pub async fn connect(cfg: &Config) -> anyhow::Result<Queue> {
    let url = match &cfg.redis_url {
        Some(u) => u.clone(),
        None => {
            let m = queue::managed::ManagedRedis::new(&cfg.home);
            tokio::task::spawn_blocking(move || m.ensure_running())
                .await
                .context("starting redis-server")??
        }
    };
    Ok(Queue::connect(&url).await?)
}

/// The running pipeline.
pub struct Running {
    pub capture_shutdown: CancellationToken,
    pub shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Checkpoints the WAL beside the writers; stopped after them.
    checkpointer: Option<crate::store::checkpoint::Checkpointer>,
}

impl Running {
    /// Stops capture, then the consumers, waiting up to `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.capture_shutdown.cancel();
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("Pipeline tasks did not stop in time");
        }
        if let Some(c) = self.checkpointer {
            // Joins its thread, which wakes at once.
            let _ = tokio::task::spawn_blocking(move || drop(c)).await;
        }
    }
}

/// A consumer name unique to this process.
pub fn consumer_name() -> String {
    queue::lease::holder_name()
}

/// Starts fast path, slow path and maintenance; with `capture`, also lease-gated tailing.
///
/// # Errors
/// When the database or Redis cannot be opened.
pub async fn start(cfg: &Config, queue: &Queue, capture: bool) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&cfg.home)
        .with_context(|| format!("creating {}", cfg.home.display()))?;
    let db = cfg.db_path();
    let name = consumer_name();
    let shutdown = CancellationToken::new();
    let capture_shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut fast = FastPath::new(queue.clone(), &db, name.clone()).await?;
    let mut slow = SlowPath::new(queue.clone(), &db, name.clone()).await?;
    // Neither writer's commit pays for a WAL checkpoint: one thread runs them beside both.
    let checkpointer = crate::store::checkpoint::Checkpointer::start(&db)?;
    fast.checkpoint_with(&checkpointer)?;
    slow.checkpoint_with(&checkpointer)?;
    tasks.spawn(fast.run(shutdown.clone()));
    tasks.spawn(slow.run(shutdown.clone()));
    let managed = cfg.redis_url.is_none().then(|| cfg.home.clone());
    tasks.spawn(maintenance(
        queue.clone(),
        managed,
        name.clone(),
        shutdown.clone(),
    ));
    if capture {
        let c = Capture::new(
            queue.clone(),
            cfg.spool_dir(),
            cfg.claude_projects.clone(),
            cfg.cursor_dirs(),
            cfg.privacy,
        )
        .await?;
        tasks.spawn(c.run(name, cfg.rescan, capture_shutdown.clone()));
    }
    Ok(Running {
        capture_shutdown,
        shutdown,
        tasks,
        checkpointer: Some(checkpointer),
    })
}

async fn maintenance(
    queue: Queue,
    managed_home: Option<std::path::PathBuf>,
    consumer: String,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    let mut watchdog = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = watchdog.tick() => {
                // The managed redis-server outlives its starter but not a crash or a kill:
                // bring it back (it replays its AOF) so every process keeps working.
                if let Some(home) = &managed_home
                    && let Err(queue::QueueError::Unavailable(_)) = queue.dlq_len().await
                {
                    let m = queue::managed::ManagedRedis::new(home);
                    match tokio::task::spawn_blocking(move || m.ensure_running()).await {
                        Ok(Ok(_)) => tracing::warn!("Restarted the managed redis-server"),
                        Ok(Err(e)) => tracing::error!(error = %e, "Cannot restart the managed redis-server"),
                        Err(e) => tracing::error!(error = %e, "Redis watchdog task failed"),
                    }
                }
                continue;
            }
            _ = tick.tick() => {}
        }
        // Change-feed entries are wake-ups only (the slow path works from its watermark), so
        // stale ones left by a dead consumer are simply acknowledged.
        match queue
            .autoclaim(
                queue::CDC,
                queue::SLOW_GROUP,
                &consumer,
                Duration::from_secs(30),
                1000,
            )
            .await
        {
            Ok(stale) if !stale.is_empty() => {
                let ids: Vec<String> = stale.into_iter().map(|(e, _)| e.stream_id).collect();
                let _ = queue.ack(queue::CDC, queue::SLOW_GROUP, &ids, None).await;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "Maintenance cannot reach Redis"),
        }
        for (stream, group) in [
            (queue::EVENTS, queue::FAST_GROUP),
            (queue::CDC, queue::SLOW_GROUP),
        ] {
            match queue.trim_acknowledged(stream, group).await {
                Ok(n) if n > 0 => {
                    tracing::debug!(stream, trimmed = n, "Trimmed acknowledged entries")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(stream, error = %e, "Cannot trim"),
            }
        }
    }
}

/// Waits until everything captured so far is in SQLite and the metrics are current:
/// no undelivered or pending events, and the slow path has derived every raw row.
///
/// # Errors
/// Redis or SQLite failures.
pub async fn drained(cfg: &Config, queue: &Queue) -> anyhow::Result<bool> {
    let ev = queue.group_info(queue::EVENTS, queue::FAST_GROUP).await?;
    if ev.pending > 0 || ev.lag.unwrap_or(ev.length) > 0 {
        return Ok(false);
    }
    let db = cfg.db_path();
    // One read of SQLite: the watermarks, what is still to flush or send, and what Redis
    // must show (after a flush or a new REDIS_URL, the slow path rebuilds the metrics first).
    let expected = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let conn = crate::store::open_reader(&db)?;
        let (fast, slow, dirty): (i64, i64, i64) = conn.query_row(
            "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'fast_path_seq'), 0),
                    coalesce((SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'), 0),
                    (SELECT count(*) FROM dirty_buckets)
                      + (SELECT count(*) FROM derive_rejects WHERE sent = 0)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        if slow < fast || dirty > 0 {
            return Ok(None);
        }
        Ok(Some(crate::metrics::expected(&conn)?))
    })
    .await??;
    let Some(expected) = expected else {
        return Ok(false);
    };
    Ok(crate::metrics::stamp(&mut queue.conn())
        .await?
        .trusted(&expected))
}

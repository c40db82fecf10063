//! The capture lease: exactly one process captures at a time (invariant 7).
//!
//! `SET bp:capture:lease <token> NX PX <ttl>` takes it, with a token unique to this
//! acquisition. [`HeldLease`] renews it in its own task every `ttl / 3` (so a long scan or a
//! busy runtime never lets it lapse while the holder works) and cancels its `lost` token
//! when a renewal finds another holder, or when Redis has not confirmed the lease for a
//! whole TTL. Every capture write is fenced by the token (`Queue::publish_batch` checks it
//! in the same script that writes), so a holder that was paused or partitioned and lost the
//! lease cannot write after its successor started: no gap, no duplicate.
//!
//! `backfill` needs a full scan while another process may hold the lease: it files a scan
//! request (`bp:capture:scan_req`, a counter); the holder runs a full scan after it and
//! records that scan's figures under the request number in `bp:capture:scan_done`, and the
//! newest request answered in `bp:capture:scan_served`. A new holder answers every request
//! above that mark with its first scan: a request its predecessor took but never answered
//! (killed, paused, lost the lease) is not left waiting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use tokio_util::sync::CancellationToken;

use super::{Queue, Result};

pub const LEASE: &str = "bp:capture:lease";
pub const SCAN_REQ: &str = "bp:capture:scan_req";
pub const SCAN_DONE: &str = "bp:capture:scan_done";
/// The newest scan request a completed scan has answered.
pub const SCAN_SERVED: &str = "bp:capture:scan_served";
/// How long answers nobody takes (their backfill went away) are kept.
const SCAN_DONE_TTL: Duration = Duration::from_secs(3_600);
/// How long a lease lives without renewal.
pub const TTL: Duration = Duration::from_secs(6);

const RENEW_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";
/// KEYS: done, served. ARGV: after, upto, figures, ttl ms. Answers the requests in
/// `(max(after, served), upto]` and raises `served` to `upto`.
const SERVED_LUA: &str = "local done = tonumber(redis.call('GET', KEYS[2]) or '0') \
     local upto = tonumber(ARGV[2]) \
     for n = math.max(tonumber(ARGV[1]), done) + 1, upto do \
       redis.call('HSET', KEYS[1], n, ARGV[3]) end \
     if upto > done then redis.call('SET', KEYS[2], upto) end \
     redis.call('PEXPIRE', KEYS[1], ARGV[4]) return 1";

/// A unique holder name for this process: host, pid and start time.
pub fn holder_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    )
}

static ACQUISITIONS: AtomicU64 = AtomicU64::new(0);

impl Queue {
    /// Takes the lease if nobody holds it; the token is `holder` plus an acquisition number.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn try_lease(&self, holder: &str) -> Result<Option<String>> {
        let token = format!(
            "{holder}#{}",
            ACQUISITIONS.fetch_add(1, Ordering::Relaxed) + 1
        );
        let mut c = self.conn();
        let set: Option<String> = redis::cmd("SET")
            .arg(LEASE)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(TTL.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        Ok(set.map(|_| token))
    }

    /// Extends the lease if `token` still holds it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn renew_lease(&self, token: &str) -> Result<bool> {
        let mut c = self.conn();
        let n: i64 = redis::cmd("EVAL")
            .arg(RENEW_LUA)
            .arg(1)
            .arg(LEASE)
            .arg(token)
            .arg(TTL.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up if `token` holds it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn release_lease(&self, token: &str) -> Result<()> {
        let mut c = self.conn();
        let _: i64 = redis::cmd("EVAL")
            .arg(RELEASE_LUA)
            .arg(1)
            .arg(LEASE)
            .arg(token)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Who holds the lease now, if anyone.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn lease_holder(&self) -> Result<Option<String>> {
        let mut c = self.conn();
        Ok(c.get(LEASE).await?)
    }

    /// Files a request for a full scan; returns its number.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn request_scan(&self) -> Result<u64> {
        let mut c = self.conn();
        Ok(c.incr(SCAN_REQ, 1).await?)
    }

    /// The newest scan request filed.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn scan_requested(&self) -> Result<u64> {
        let mut c = self.conn();
        let v: Option<u64> = c.get(SCAN_REQ).await?;
        Ok(v.unwrap_or(0))
    }

    /// The newest scan request answered so far: a new holder answers the ones above it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn scans_answered(&self) -> Result<u64> {
        let mut c = self.conn();
        let v: Option<u64> = c.get(SCAN_SERVED).await?;
        Ok(v.unwrap_or(0))
    }

    /// Records the figures of a scan that served every request in `(after, upto]` (those
    /// not answered already).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn scan_served(&self, after: u64, upto: u64, figures: &str) -> Result<()> {
        if upto <= after {
            return Ok(());
        }
        let mut c = self.conn();
        let _: i64 = redis::cmd("EVAL")
            .arg(SERVED_LUA)
            .arg(2)
            .arg(SCAN_DONE)
            .arg(SCAN_SERVED)
            .arg(after)
            .arg(upto)
            .arg(figures)
            .arg(SCAN_DONE_TTL.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        Ok(())
    }

    /// Takes the figures recorded for request `n`, if it was served.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn take_scan_result(&self, n: u64) -> Result<Option<String>> {
        let mut c = self.conn();
        let (v, _): (Option<String>, i64) = redis::pipe()
            .atomic()
            .hget(SCAN_DONE, n)
            .hdel(SCAN_DONE, n)
            .query_async(&mut c)
            .await?;
        Ok(v)
    }
}

/// A lease this process holds, renewed by its own task until released or lost.
pub struct HeldLease {
    pub token: String,
    /// Cancelled when the lease is lost (or released).
    pub lost: CancellationToken,
    queue: Queue,
    renewer: tokio::task::JoinHandle<()>,
}

impl HeldLease {
    /// Takes the lease if it is free and starts renewing it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn try_take(queue: &Queue, holder: &str) -> Result<Option<HeldLease>> {
        let Some(token) = queue.try_lease(holder).await? else {
            return Ok(None);
        };
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew_until_lost(queue.clone(), token.clone(), lost.clone()));
        Ok(Some(HeldLease {
            token,
            lost,
            queue: queue.clone(),
            renewer,
        }))
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Stops renewing and gives the lease up.
    pub async fn release(self) {
        self.renewer.abort();
        self.lost.cancel();
        if let Err(e) = self.queue.release_lease(&self.token).await {
            tracing::debug!(error = %e, "Cannot release the capture lease; it expires by itself");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

async fn renew_until_lost(queue: Queue, token: String, lost: CancellationToken) {
    let mut confirmed = Instant::now();
    let mut tick = tokio::time::interval(TTL / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = lost.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A renewal that takes longer than the lease has left cannot keep it.
        let left = TTL.saturating_sub(confirmed.elapsed());
        let sent = Instant::now();
        match tokio::time::timeout(left, queue.renew_lease(&token)).await {
            Ok(Ok(true)) => confirmed = sent,
            Ok(Ok(false)) => {
                tracing::warn!(token = %token, "Lost the capture lease to another process");
                lost.cancel();
                return;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "Cannot renew the capture lease"),
            Err(_) => tracing::warn!("Renewing the capture lease timed out"),
        }
        if confirmed.elapsed() >= TTL {
            tracing::warn!(
                "Capture lease expired: not confirmed by Redis for a whole TTL (Redis unreachable, or this process was paused)"
            );
            lost.cancel();
            return;
        }
    }
}

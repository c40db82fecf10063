//! The capture lease: exactly one process captures at a time (invariant 7).
//!
//! `SET bp:capture:lease <holder> NX PX <ttl>` takes it; the holder renews it with a
//! compare-and-extend script every `ttl / 3`; when the holder dies the key expires and another
//! process takes over within `ttl`. Capture cursors live in Redis, so the new holder carries on
//! where the old one stopped.

use std::time::Duration;

use redis::AsyncCommands;

use super::{Queue, Result};

pub const LEASE: &str = "bp:capture:lease";
/// How long a lease lives without renewal.
pub const TTL: Duration = Duration::from_secs(6);

const RENEW_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_LUA: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     return redis.call('DEL', KEYS[1]) else return 0 end";

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

impl Queue {
    /// Tries to take the lease; true when `holder` now has it (taken or renewed).
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn acquire_lease(&self, holder: &str) -> Result<bool> {
        let mut c = self.conn();
        let set: Option<String> = redis::cmd("SET")
            .arg(LEASE)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(TTL.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        if set.is_some() {
            return Ok(true);
        }
        self.renew_lease(holder).await
    }

    /// Extends the lease if `holder` still has it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn renew_lease(&self, holder: &str) -> Result<bool> {
        let mut c = self.conn();
        let n: i64 = redis::cmd("EVAL")
            .arg(RENEW_LUA)
            .arg(1)
            .arg(LEASE)
            .arg(holder)
            .arg(TTL.as_millis() as u64)
            .query_async(&mut c)
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up if `holder` has it.
    ///
    /// # Errors
    /// When Redis fails.
    pub async fn release_lease(&self, holder: &str) -> Result<()> {
        let mut c = self.conn();
        let _: i64 = redis::cmd("EVAL")
            .arg(RELEASE_LUA)
            .arg(1)
            .arg(LEASE)
            .arg(holder)
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
}

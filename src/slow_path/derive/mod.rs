//! Derivation per platform: one [`Deriver`] each, dispatched on the raw row's platform.
//!
//! Every deriver has a `derive_version`. The versions a store was derived with are kept in
//! `pipeline_state` (`derive_version:<platform>`); when a binary brings another version,
//! [`ensure_versions`] resets the derived tables and the watermark in one transaction, and
//! the slow path re-derives everything from `raw_traces`, the ground truth.

pub mod claude;
pub mod cursor;
pub mod cursor_agent;
pub mod cursor_hooks;
pub mod hooks;

use rusqlite::{Connection, Transaction, params};
use serde_json::Value;

use super::DeriveError;
use crate::event::Platform;
pub use claude::Round;

/// One raw row as a deriver sees it.
pub struct Record<'a> {
    /// The row's `raw_traces.seq` (arrival order).
    pub seq: i64,
    pub event_id: &'a str,
    pub platform: &'a str,
    pub kind: &'a str,
    pub session_id: Option<&'a str>,
    pub ts: Option<i64>,
    pub value: &'a Value,
}

/// Turns raw records of one platform into conversation rows. Every write is an upsert keyed
/// by the record, so the result does not depend on the order records arrive in.
pub trait Deriver: Sync {
    fn platform(&self) -> Platform;
    /// Bumped whenever derivation changes: stores derived with another version are
    /// re-derived from `raw_traces`.
    fn derive_version(&self) -> i64;
    /// Derives one record.
    ///
    /// # Errors
    /// [`DeriveError::Reject`] for a record that cannot be derived (nothing of it may have
    /// been written); SQLite errors.
    fn derive(
        &self,
        tx: &Transaction<'_>,
        rec: &Record<'_>,
        round: &mut Round,
    ) -> Result<(), DeriveError>;
}

/// Every deriver.
pub static DERIVERS: &[&dyn Deriver] = &[&claude::Claude, &cursor::Cursor];

/// The deriver of `platform` (`claude_code`, ...), if there is one.
pub fn deriver_for(platform: &str) -> Option<&'static dyn Deriver> {
    DERIVERS
        .iter()
        .copied()
        .find(|d| d.platform().as_str() == platform)
}

fn version_key(d: &dyn Deriver) -> String {
    format!("derive_version:{}", d.platform().as_str())
}

/// Makes sure the store was derived with this binary's deriver versions; when not, resets
/// every derived table and the watermark (in one transaction) so that the slow path derives
/// everything again. Returns true when it reset. A store that was never derived just
/// records the versions.
///
/// # Errors
/// SQLite errors; nothing changed then.
pub fn ensure_versions(conn: &mut Connection) -> rusqlite::Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let watermark: i64 = tx.query_row(
        "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'), 0)",
        [],
        |r| r.get(0),
    )?;
    let mut stale = Vec::new();
    for d in DERIVERS {
        let stored: Option<i64> = tx
            .query_row(
                "SELECT value FROM pipeline_state WHERE key = ?1",
                [version_key(*d)],
                |r| r.get(0),
            )
            .ok();
        // A derived store without a recorded version predates versions: version 1.
        let stored = stored.unwrap_or(if watermark > 0 { 1 } else { d.derive_version() });
        if stored != d.derive_version() {
            stale.push((d.platform(), stored, d.derive_version()));
        }
    }
    if !stale.is_empty() {
        tracing::warn!(?stale, "Derivation changed; deriving every raw trace again");
        // The buckets that hold data now must be rewritten (some may end up empty).
        super::flush::mark_all_dirty(&tx)?;
        crate::metrics::rollup::clear(&tx)?;
        tx.execute_batch(
            "DELETE FROM messages;
             INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
             DELETE FROM api_responses;
             DELETE FROM tool_calls;
             DELETE FROM subagents;
             DELETE FROM sessions;
             DELETE FROM projects;
             DELETE FROM session_titles;
             DELETE FROM summaries;
             DELETE FROM hook_events;
             DELETE FROM cost_states;
             DELETE FROM usage_samples;
             DELETE FROM token_estimates;
             DELETE FROM cursor_workspaces;
             DELETE FROM cursor_versions;
             DELETE FROM cursor_composers;
             DELETE FROM cursor_bubbles;
             DELETE FROM cursor_stop_tokens;
             INSERT INTO pipeline_state (key, value) VALUES ('slow_path_seq', 0)
               ON CONFLICT (key) DO UPDATE SET value = 0;",
        )?;
    }
    for d in DERIVERS {
        tx.execute(
            "INSERT INTO pipeline_state (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![version_key(*d), d.derive_version()],
        )?;
    }
    tx.commit()?;
    Ok(!stale.is_empty())
}

//! `get_pipeline_status`: queue depth, consumer lag, dead letters, freshness, lease holder.

use std::collections::BTreeMap;

use rusqlite::Connection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::rfc3339;
use crate::queue::{self, Queue};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PipelineStatus {
    /// `ok`, or why Redis cannot be used.
    pub redis: String,
    /// Entries in the event stream (acknowledged ones are trimmed periodically).
    pub queue_depth: Option<i64>,
    /// Events not yet delivered to the fast path.
    pub consumer_lag: Option<i64>,
    /// Events delivered but not yet stored and acknowledged.
    pub pending: Option<i64>,
    /// Raw events stored but not yet derived by the slow path.
    pub slow_path_backlog: i64,
    pub dlq_size: Option<i64>,
    /// Dead letters added in the last hour (growth of `dlq_size`).
    pub dlq_last_hour: Option<i64>,
    /// Lines per record type without derivation rules (e.g. `api-request`), kept as metadata.
    pub record_types: BTreeMap<String, i64>,
    /// Newest captured event per source (RFC 3339).
    pub last_event_at: BTreeMap<String, String>,
    /// Newest activity visible to queries (RFC 3339).
    pub newest_processed_at: Option<String>,
    /// How far queries trail capture, in seconds (0 when caught up).
    pub data_freshness_s: Option<f64>,
    pub capture_lease_holder: Option<String>,
    /// Pipeline counters: captured, bad_input, dead_lettered, replayed, purged.
    pub counters: BTreeMap<String, i64>,
    pub sessions: i64,
}

/// Collects the status; Redis failures are reported in the result, not as an error.
///
/// # Errors
/// SQLite errors.
pub async fn pipeline_status(
    db: &std::path::Path,
    queue: Option<&Queue>,
) -> Result<PipelineStatus, super::QueryError> {
    let redis = match queue {
        Some(q) => Some(redis_part(q).await),
        None => None,
    };
    let conn = crate::store::open_reader(db).map_err(super::QueryError::Store)?;
    sqlite_part(&conn, redis)
}

#[derive(Default)]
struct RedisPart {
    queue_depth: Option<i64>,
    consumer_lag: Option<i64>,
    pending: Option<i64>,
    dlq_size: Option<i64>,
    dlq_last_hour: Option<i64>,
    record_types: BTreeMap<String, i64>,
    lease: Option<String>,
    counters: BTreeMap<String, i64>,
    last: std::collections::HashMap<String, i64>,
}

async fn redis_part(q: &Queue) -> Result<RedisPart, queue::QueueError> {
    let g = q.group_info(queue::EVENTS, queue::FAST_GROUP).await?;
    Ok(RedisPart {
        queue_depth: Some(g.length as i64),
        consumer_lag: g.lag.map(|l| l as i64),
        pending: Some(g.pending as i64),
        dlq_size: Some(q.dlq_len().await? as i64),
        dlq_last_hour: Some(
            q.dlq_added_since(chrono::Utc::now().timestamp_millis() - 3_600_000)
                .await? as i64,
        ),
        record_types: q.record_types().await?.into_iter().collect(),
        lease: q.lease_holder().await?,
        counters: q.stats().await?.into_iter().collect(),
        last: q.last_events().await?,
    })
}

fn sqlite_part(
    conn: &Connection,
    redis: Option<Result<RedisPart, queue::QueueError>>,
) -> Result<PipelineStatus, super::QueryError> {
    let (fast, slow, newest, sessions): (i64, i64, Option<i64>, i64) =
        tokio::task::block_in_place(|| {
            conn.query_row(
            "SELECT coalesce((SELECT value FROM pipeline_state WHERE key = 'fast_path_seq'), 0),
                    coalesce((SELECT value FROM pipeline_state WHERE key = 'slow_path_seq'), 0),
                    (SELECT max(ended_at) FROM sessions),
                    (SELECT count(*) FROM sessions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        })?;
    let mut st = PipelineStatus {
        redis: "not connected".into(),
        queue_depth: None,
        consumer_lag: None,
        pending: None,
        slow_path_backlog: (fast - slow).max(0),
        dlq_size: None,
        dlq_last_hour: None,
        record_types: BTreeMap::new(),
        last_event_at: BTreeMap::new(),
        newest_processed_at: newest.map(rfc3339),
        data_freshness_s: None,
        capture_lease_holder: None,
        counters: BTreeMap::new(),
        sessions,
    };
    match redis {
        None => {}
        Some(Err(e)) => st.redis = e.to_string(),
        Some(Ok(r)) => {
            st.redis = "ok".into();
            st.queue_depth = r.queue_depth;
            st.consumer_lag = r.consumer_lag;
            st.pending = r.pending;
            st.dlq_size = r.dlq_size;
            st.dlq_last_hour = r.dlq_last_hour;
            st.record_types = r.record_types;
            st.capture_lease_holder = r.lease;
            st.counters = r.counters;
            let newest_capture = r.last.values().copied().max();
            st.last_event_at = r.last.into_iter().map(|(k, v)| (k, rfc3339(v))).collect();
            if let Some(c) = newest_capture {
                st.data_freshness_s = Some(((c - newest.unwrap_or(0)).max(0)) as f64 / 1000.0);
            }
        }
    }
    Ok(st)
}

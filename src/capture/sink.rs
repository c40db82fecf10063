//! Where a capture source's output goes: the [`Sink`] trait and its two implementations.
//!
//! A source emits [`Batch`]es — events, dead letters, counts of record types without rules,
//! and the source's own cursor update — and a sink writes each batch whole or not at all, so
//! a cursor never runs ahead of the events it covers (invariant 3). [`RedisSink`] is the
//! production sink: one fenced `Queue::publish_batch` per batch, refused once the capture
//! lease is lost (invariant 7). [`MemorySink`] keeps batches and cursors in memory, so
//! sources are tested without Redis.

use std::collections::HashMap;

use super::source::BoxFuture;
use crate::event::Event;
use crate::queue::{self, CursorWrite, DeadLetter, Queue, QueueError};

/// What a source emits in one atomic write.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch<'a> {
    pub events: &'a [Event],
    pub dead: &'a [DeadLetter],
    /// Lines per record type the parser has no rules for.
    pub new_types: &'a [(String, u64)],
    /// The source's cursor after this batch, in its own hash and encoding.
    pub cursor: Option<CursorWrite<'a>>,
}

/// The output of capture sources.
pub trait Sink: Send + Sync {
    /// Writes `batch` atomically. `Ok(false)`: the sink refused it because the capture lease
    /// is lost, and nothing was written.
    ///
    /// # Errors
    /// Nothing was written when this fails.
    fn publish<'a>(&'a mut self, batch: Batch<'a>) -> BoxFuture<'a, Result<bool, QueueError>>;

    /// The cursors stored in the hash `namespace` (key -> encoded value).
    ///
    /// # Errors
    /// When the store cannot be read.
    fn cursors<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, QueueError>>;
}

/// The Redis queue: every batch is one `publish_batch` script, fenced by the capture lease's
/// token once [`RedisSink::fence`] was given one.
pub struct RedisSink {
    queue: Queue,
    fence: Option<String>,
}

impl RedisSink {
    /// An unfenced sink (until [`RedisSink::fence`]).
    pub fn new(queue: Queue) -> RedisSink {
        RedisSink { queue, fence: None }
    }

    /// Fences every later publish by `token`: it writes only while the lease holds it.
    pub fn fence(&mut self, token: String) {
        self.fence = Some(token);
    }
}

impl Sink for RedisSink {
    fn publish<'a>(&'a mut self, b: Batch<'a>) -> BoxFuture<'a, Result<bool, QueueError>> {
        Box::pin(async move {
            self.queue
                .publish_batch(&queue::Batch {
                    events: b.events,
                    dead: b.dead,
                    cursor: b.cursor,
                    new_types: b.new_types,
                    fence: self.fence.as_deref(),
                })
                .await
        })
    }

    fn cursors<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, QueueError>> {
        Box::pin(self.queue.cursors(namespace))
    }
}

/// One batch as [`MemorySink`] recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedBatch {
    pub events: Vec<Event>,
    pub dead: Vec<DeadLetter>,
    pub new_types: Vec<(String, u64)>,
    /// (namespace, key, encoded value).
    pub cursor: Option<(String, String, String)>,
}

/// Batches and cursors in memory, for tests without Redis.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Every batch written, in order.
    pub batches: Vec<RecordedBatch>,
    /// namespace -> key -> encoded cursor, as the batches left them.
    pub cursors: HashMap<String, HashMap<String, String>>,
    /// When set, every publish is refused as if the lease were lost (nothing is recorded).
    pub lease_lost: bool,
}

impl MemorySink {
    /// Every event written, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.batches.iter().flat_map(|b| &b.events)
    }

    /// Every dead letter written, in order.
    pub fn dead(&self) -> impl Iterator<Item = &DeadLetter> {
        self.batches.iter().flat_map(|b| &b.dead)
    }

    /// The cursors of one namespace.
    pub fn cursors_in(&self, namespace: &str) -> HashMap<String, String> {
        self.cursors.get(namespace).cloned().unwrap_or_default()
    }
}

impl Sink for MemorySink {
    fn publish<'a>(&'a mut self, b: Batch<'a>) -> BoxFuture<'a, Result<bool, QueueError>> {
        Box::pin(async move {
            if self.lease_lost {
                return Ok(false);
            }
            if let Some(c) = b.cursor {
                self.cursors
                    .entry(c.hash.to_string())
                    .or_default()
                    .insert(c.field.to_string(), c.value.to_string());
            }
            self.batches.push(RecordedBatch {
                events: b.events.to_vec(),
                dead: b.dead.to_vec(),
                new_types: b.new_types.to_vec(),
                cursor: b
                    .cursor
                    .map(|c| (c.hash.to_string(), c.field.to_string(), c.value.to_string())),
            });
            Ok(true)
        })
    }

    fn cursors<'a>(
        &'a self,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<HashMap<String, String>, QueueError>> {
        Box::pin(async move { Ok(self.cursors_in(namespace)) })
    }
}

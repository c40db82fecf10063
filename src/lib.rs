//! Blueplane: local, privacy-first telemetry for AI-assisted coding.
//!
//! Modules in the order data flows (see docs/ARCHITECTURE.md):

// The envelope every stage speaks.
pub mod event;
// The privacy modes and the redaction rules, applied before anything is stored.
pub mod privacy;
// Layer 1: transcripts -> privacy filter -> events on the queue.
pub mod capture;
// The hook and status-line hot path: sync, one XADD or the spool.
pub mod hook;
// Redis Streams, the capture lease, the managed redis-server.
pub mod queue;
// Layer 2: events -> raw_traces.
pub mod fast_path;
// Layer 2: raw_traces -> conversation tables and Redis metrics.
pub mod slow_path;
// The embedded price table and cost arithmetic (integer pico-USD).
pub mod pricing;
// The metric key layout and aggregate SQL: written by the slow path, read by query.
pub mod metrics;
// SQLite: schema, migrations, writer and read-only connections.
pub mod store;
// Layer 3: the read API over conversation tables and metrics.
pub mod query;
// Layer 3: the MCP server.
pub mod mcp;
// Editing Claude Code's (and later Cursor's) config files: merge, backup, diff, undo.
pub mod install;
// Layer 3: the command line.
pub mod cli;
// Configuration and process wiring.
pub mod config;
pub mod pipeline;

//! The Cursor database source: reads chats out of Cursor's live `state.vscdb` files (the
//! global `User/globalStorage/state.vscdb` and every `User/workspaceStorage/<hash>/state.vscdb`)
//! into `composer`, `bubble`, `agent_blob` and `workspace` events (`docs/CURSOR.md`).
//!
//! Cursor must never notice: every database is opened read-only through a `file:…?mode=ro` URI
//! (never `immutable=1`: the file is a live WAL database), with a short busy timeout, no
//! checkpoint on close and `query_only`; all SQLite work runs in `spawn_blocking`, one short read
//! transaction per batch (WAL snapshot isolation reads a database mid-write consistently), and
//! `SQLITE_BUSY`/`SQLITE_LOCKED` only means "try again on the next tick". Only allow-listed key
//! prefixes are ever selected, as range comparisons (`key >= 'bubbleId:' AND key <
//! 'bubbleId;'`), and every value leaves SQLite through `json_remove` of the encryption keys
//! (guarded by `json_valid`), so `cursorAuth/*` rows and the composer keys are denied in the
//! query itself; a value that is not JSON never leaves SQLite at all (its row becomes a dead
//! letter by rowid).
//!
//! Change detection: the runner's watcher on the database and `-wal` files, `PRAGMA
//! data_version` polled on a kept-open connection per database ([`CaptureSource::poll`]), and a
//! per-database watermark in `bp:capture:cursor_db` (db path -> [`Watermark`]): `ON CONFLICT
//! REPLACE` gives a rewritten row a new rowid, so `rowid > watermark` finds streaming bubbles;
//! a shrunken `max(rowid)` (VACUUM, deletions) rescans from 0. The first pass over a database
//! walks each prefix in key order (an index range scan, resumable from the cursor); later
//! passes walk rowids. Ids carry a content version, so a rewrite is a new event and a re-scan,
//! a restart or a copy of the database repeats ids the fast path ignores. Called by the runner
//! (`Capture`) through [`CaptureSource`]; payloads come from `privacy::cursor`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use xxhash_rust::xxh3::xxh3_64;

use super::sink::{Batch, Sink};
use super::source::{BoxFuture, CaptureSource, Each, Progress, Watch};
use super::{CaptureError, CaptureStats};
use crate::event::{Event, Platform, Source, db_row_id};
use crate::privacy::{self, PrivacyMode};
use crate::queue::{CursorWrite, DeadLetter};

/// The hash the watermarks live in (db path -> encoded [`Watermark`]).
pub const NAMESPACE: &str = "bp:capture:cursor_db";

/// Rows per read transaction (and per publish).
pub const BATCH_ROWS: usize = 2_000;

/// The database file name, in both kinds of directory.
pub const DB_FILE: &str = "state.vscdb";

/// How long a read waits for a lock before giving up until the next tick.
const BUSY_TIMEOUT: Duration = Duration::from_millis(50);

/// Connections kept open (for polling) at most.
const MAX_KEPT: usize = 32;

/// How often `PRAGMA data_version` is polled.
const POLL_EVERY: Duration = Duration::from_millis(900);

/// `cursorDiskKV` key prefixes read, each as `[lo, hi)` (`hi` = the prefix with its last
/// character, `:`, replaced by the next one, `;`). Nothing else is ever selected.
pub const KV_PREFIXES: &[(&str, &str)] = &[
    ("composerData:", "composerData;"),
    ("bubbleId:", "bubbleId;"),
    ("agentKv:blob:", "agentKv:blob;"),
];

/// The workspace `ItemTable` key read.
pub const WORKSPACE_KEY: &str = "composer.composerData";

/// The value expression of every query: the UTF-8 JSON text with the secret keys removed
/// inside SQLite, NULL for anything that is not JSON; then its size in bytes.
const VALUE_SQL: &str = "CASE WHEN json_valid(CAST(value AS TEXT)) THEN json_remove(CAST(value AS TEXT), \
     '$.blobEncryptionKey', '$.speculativeSummarizationEncryptionKey', '$.encryptionKey', \
     '$.accessToken', '$.refreshToken', '$.apiKey') END, length(CAST(value AS BLOB))";

/// The Cursor data directory (`…/Cursor`, holding `User/`): `configured` (`CURSOR_DATA_DIR`
/// or the config file), else the default of this OS below `home` (Windows: `%APPDATA%`).
pub fn data_dir(configured: Option<&str>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(c) = configured.map(str::trim).filter(|c| !c.is_empty()) {
        return Some(match (c.strip_prefix("~/"), home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(c),
        });
    }
    if cfg!(windows) {
        return std::env::var_os("APPDATA").map(|a| PathBuf::from(a).join("Cursor"));
    }
    let home = home?;
    Some(if cfg!(target_os = "macos") {
        home.join("Library/Application Support/Cursor")
    } else {
        home.join(".config/Cursor")
    })
}

/// The global database and every workspace database below `root` (a Cursor data dir).
pub fn databases(root: &Path) -> Vec<PathBuf> {
    let user = root.join("User");
    let mut out = Vec::new();
    let global = user.join("globalStorage").join(DB_FILE);
    if global.is_file() {
        out.push(global);
    }
    if let Ok(rd) = std::fs::read_dir(user.join("workspaceStorage")) {
        let mut ws: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path().join(DB_FILE))
            .filter(|p| p.is_file())
            .collect();
        ws.sort();
        out.extend(ws);
    }
    out
}

/// Whether `path` is a Cursor database or its WAL (`globalStorage/state.vscdb[-wal]`,
/// `workspaceStorage/<hash>/state.vscdb[-wal]`). Never the `-shm` file: reading touches it.
pub fn is_database(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str());
    if !matches!(name, Some(n) if n == DB_FILE || n == "state.vscdb-wal") {
        return false;
    }
    fn name_of(p: Option<&Path>) -> Option<&str> {
        p.and_then(Path::file_name).and_then(|n| n.to_str())
    }
    let parent = path.parent();
    name_of(parent) == Some("globalStorage")
        || name_of(parent.and_then(Path::parent)) == Some("workspaceStorage")
}

/// The database a watched path belongs to (the `-wal` file's database).
fn database_of(path: &Path) -> PathBuf {
    match path.to_str().and_then(|s| s.strip_suffix("-wal")) {
        Some(db) => PathBuf::from(db),
        None => path.to_path_buf(),
    }
}

/// Whether a database is a workspace one (its directory's parent is `workspaceStorage`).
fn workspace_hash(db: &Path) -> Option<String> {
    let dir = db.parent()?;
    let parent = dir.parent()?.file_name()?.to_str()?;
    (parent == "workspaceStorage")
        .then(|| dir.file_name()?.to_str().map(str::to_string))
        .flatten()
}

/// The content version of a value: `xxh3_64` of its bytes as they left SQLite, without the
/// sign bit.
pub fn version(bytes: &[u8]) -> i64 {
    (xxh3_64(bytes) & 0x7FFF_FFFF_FFFF_FFFF) as i64
}

/// How far one database was read. `kv`/`item`: every `cursorDiskKV`/`ItemTable` row with a
/// rowid up to it was captured. `pass`: a first (key-ordered) pass in progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    pub kv: i64,
    pub item: i64,
    pub pass: Option<Pass>,
}

/// A key-ordered pass over the prefixes, up to rowid `target`; `prefix` indexes
/// [`KV_PREFIXES`], `after` is the last key captured in it (empty: none yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub target: i64,
    pub prefix: usize,
    pub after: String,
}

impl Watermark {
    /// `1|kv|item` or `1|kv|item|target|prefix|after`.
    pub fn encode(&self) -> String {
        match &self.pass {
            None => format!("1|{}|{}", self.kv, self.item),
            Some(p) => format!(
                "1|{}|{}|{}|{}|{}",
                self.kv, self.item, p.target, p.prefix, p.after
            ),
        }
    }

    pub fn decode(s: &str) -> Option<Watermark> {
        let mut it = s.splitn(6, '|');
        if it.next()? != "1" {
            return None;
        }
        let kv = it.next()?.parse().ok()?;
        let item = it.next()?.parse().ok()?;
        let pass = match it.next() {
            None => None,
            Some(t) => Some(Pass {
                target: t.parse().ok()?,
                prefix: it.next()?.parse().ok()?,
                after: it.next()?.to_string(),
            }),
        };
        Some(Watermark { kv, item, pass })
    }

    /// No `cursorDiskKV` row read yet: the next read starts a key-ordered first pass.
    fn fresh(&self) -> bool {
        self.kv == 0 && self.pass.is_none()
    }

    /// Whether a database with this cursor still has its first read to finish (for
    /// progress and backlog).
    fn unread(w: Option<&Watermark>) -> bool {
        w.is_none_or(|w| w.pass.is_some())
    }
}

/// A database connection kept open between reads (for `data_version`).
struct Db {
    conn: Connection,
    has_kv: bool,
    has_item: bool,
    data_version: Option<i64>,
}

/// Opens `path` read-only without disturbing its writer.
fn open(path: &Path) -> rusqlite::Result<Db> {
    let conn = Connection::open_with_flags(
        uri(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    let has = |t: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [t],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let (has_kv, has_item) = (has("cursorDiskKV")?, has("ItemTable")?);
    Ok(Db {
        conn,
        has_kv,
        has_item,
        data_version: None,
    })
}

/// `file:<path>?mode=ro`, with the characters a URI gives meaning to percent-encoded.
fn uri(path: &Path) -> String {
    let s = path.display().to_string();
    let s = if cfg!(windows) {
        format!("/{}", s.replace('\\', "/"))
    } else {
        s
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str("file:");
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            _ => out.push(c),
        }
    }
    out.push_str("?mode=ro");
    out
}

/// Whether an error means "someone holds a lock; try later".
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// One row as it left SQLite: its rowid, key, filtered JSON text (None: not JSON) and size.
struct Row {
    rowid: i64,
    key: String,
    text: Option<Result<String, ()>>,
    bytes: i64,
}

fn row(r: &rusqlite::Row<'_>, key_col: Option<usize>) -> rusqlite::Result<Row> {
    let key = match key_col {
        Some(i) => r.get::<_, String>(i)?,
        None => WORKSPACE_KEY.to_string(),
    };
    let off = if key_col.is_some() { 2 } else { 1 };
    let text = match r.get_ref(off)? {
        ValueRef::Null => None,
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            Some(String::from_utf8(t.to_vec()).map_err(|_| ()))
        }
        _ => None,
    };
    Ok(Row {
        rowid: r.get(0)?,
        key,
        text,
        bytes: r.get::<_, Option<i64>>(off + 1)?.unwrap_or(0),
    })
}

/// What one read transaction produced.
struct Read {
    rows: Vec<Row>,
    /// The workspace index row, when it changed.
    workspace: Option<Row>,
    /// The watermark after this read.
    next: Watermark,
    done: bool,
    /// How long the read transaction was held.
    held: Duration,
}

/// A first-pass page: one prefix in key order from `?1` (`cmp` is `>=` for the prefix's start,
/// `>` after the last key read) to `?2`, up to rowid `?3` (`+rowid`: never the rowid range),
/// at most `?4` rows — a range scan of the key index.
fn first_pass_sql(cmp: &str) -> String {
    format!(
        "SELECT rowid, key, {VALUE_SQL} FROM cursorDiskKV \
         WHERE key {cmp} ?1 AND key < ?2 AND +rowid <= ?3 ORDER BY key LIMIT ?4"
    )
}

/// A later-pass page: rows above rowid `?1` under any allowed prefix (`+key`: the rowid range
/// drives, the prefixes filter), in rowid order, at most `?2`.
fn later_pass_sql() -> String {
    let ranges: Vec<String> = KV_PREFIXES
        .iter()
        .map(|(lo, hi)| format!("(+key >= '{lo}' AND +key < '{hi}')"))
        .collect();
    format!(
        "SELECT rowid, key, {VALUE_SQL} FROM cursorDiskKV \
         WHERE rowid > ?1 AND ({}) ORDER BY rowid LIMIT ?2",
        ranges.join(" OR ")
    )
}

/// Reads the next batch of `db` after `wm` in one read transaction.
fn read_batch(
    db: &mut Db,
    wm: &Watermark,
    workspace: bool,
    limit: usize,
) -> rusqlite::Result<Read> {
    let started = Instant::now();
    let tx = db.conn.transaction()?;
    let mut next = wm.clone();
    let mut rows = Vec::new();
    let mut done = true;
    let mut ws_row = None;
    if workspace && db.has_item {
        let sql = format!("SELECT rowid, {VALUE_SQL} FROM ItemTable WHERE key = ?1");
        let r = tx
            .prepare_cached(&sql)?
            .query_row([WORKSPACE_KEY], |r| row(r, None))
            .optional()?;
        match r {
            Some(r) if r.rowid != wm.item => {
                next.item = r.rowid;
                ws_row = Some(r);
            }
            Some(_) => {}
            None => next.item = 0,
        }
    }
    if db.has_kv {
        let max: i64 = tx.query_row(
            "SELECT coalesce(max(rowid), 0) FROM cursorDiskKV",
            [],
            |r| r.get(0),
        )?;
        if max < next.kv || next.pass.as_ref().is_some_and(|p| max < p.target) {
            tracing::info!(
                kv = next.kv,
                max,
                "Cursor database shrank (VACUUM or deletions); reading it again"
            );
            next.kv = 0;
            next.pass = None;
        }
        if next.fresh() {
            next.pass = Some(Pass {
                target: max,
                ..Pass::default()
            });
        }
        if let Some(mut pass) = next.pass.take() {
            // First pass: each prefix in key order (the key index), resumable.
            while pass.prefix < KV_PREFIXES.len() && rows.len() < limit {
                let (lo, hi) = KV_PREFIXES[pass.prefix];
                let (cmp, from) = if pass.after.is_empty() {
                    (">=", lo)
                } else {
                    (">", pass.after.as_str())
                };
                let sql = first_pass_sql(cmp);
                let want = limit - rows.len();
                let got: Vec<Row> = tx
                    .prepare_cached(&sql)?
                    .query_map(rusqlite::params![from, hi, pass.target, want as i64], |r| {
                        row(r, Some(1))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let n = got.len();
                if let Some(last) = got.last() {
                    pass.after = last.key.clone();
                }
                rows.extend(got);
                if n < want {
                    pass.prefix += 1;
                    pass.after.clear();
                }
            }
            if pass.prefix >= KV_PREFIXES.len() {
                next.kv = pass.target;
            } else {
                done = false;
                next.pass = Some(pass);
            }
        } else if max > next.kv {
            // Later passes: rowids above the watermark (new and rewritten rows).
            let sql = later_pass_sql();
            let got: Vec<Row> = tx
                .prepare_cached(&sql)?
                .query_map(rusqlite::params![next.kv, limit as i64], |r| {
                    row(r, Some(1))
                })?
                .collect::<rusqlite::Result<_>>()?;
            if got.len() >= limit {
                done = false;
                next.kv = got.last().map_or(max, |r| r.rowid);
            } else {
                next.kv = max;
            }
            rows = got;
        }
    }
    tx.commit()?;
    Ok(Read {
        rows,
        workspace: ws_row,
        next,
        done,
        held: started.elapsed(),
    })
}

/// Only `createdAt` of one composer leaves SQLite.
const COMPOSER_CREATED_SQL: &str = "SELECT CASE WHEN json_valid(CAST(value AS TEXT)) \
     THEN json_extract(CAST(value AS TEXT), '$.createdAt') END \
     FROM cursorDiskKV WHERE key = ?1";

/// `createdAt` (epoch ms) of composer `cid`, by one indexed lookup of its key.
fn composer_created_at(conn: &Connection, cid: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached(COMPOSER_CREATED_SQL)?
        .query_row([format!("composerData:{cid}")], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Integer(i) => Some(i),
                ValueRef::Real(f) => Some(f as i64),
                _ => None,
            })
        })
        .optional()
        .map(Option::flatten)
}

/// A bubble's time: `createdAt` (ISO or epoch ms), else a `timingInfo` epoch time, else None
/// (the caller falls back to the composer's `createdAt`).
pub fn bubble_time(v: &Value) -> Option<i64> {
    match v.get("createdAt") {
        Some(Value::String(s)) => {
            if let Some(t) = crate::event::parse_timestamp_ms(s) {
                return Some(t);
            }
        }
        Some(Value::Number(n)) => {
            if let Some(t) = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)) {
                return Some(t);
            }
        }
        _ => {}
    }
    let t = v.get("timingInfo")?;
    ["clientRpcSendTime", "clientSettleTime", "clientEndTime"]
        .iter()
        .filter_map(|k| t.get(*k).and_then(Value::as_f64))
        .find(|f| *f > 1e12)
        .map(|f| f as i64)
}

/// What a read became: events and dead letters.
#[derive(Default)]
struct Parsed {
    events: Vec<Event>,
    dead: Vec<DeadLetter>,
    bytes: u64,
}

/// The context parsing needs besides the rows.
struct Ctx<'a> {
    db: &'a str,
    mode: PrivacyMode,
    /// The workspace hash of a workspace database.
    workspace: Option<&'a str>,
    dir: Option<&'a Path>,
}

fn dead(ctx: &Ctx<'_>, r: &Row, reason: &str) -> DeadLetter {
    tracing::warn!(
        db = ctx.db,
        rowid = r.rowid,
        reason,
        "Bad Cursor database value"
    );
    DeadLetter {
        stage: "capture",
        reason: format!("{reason} ({} bytes)", r.bytes),
        source: ctx.db.to_string(),
        offset: u64::try_from(r.rowid).unwrap_or(0),
    }
}

/// An event of `kind` for the row `key` at `version` (id `db_row_id("cu", key, version)`).
fn event(
    ctx: &Ctx<'_>,
    kind: &str,
    key: &str,
    version: i64,
    session: Option<&str>,
    ts: Option<i64>,
    payload: &Value,
) -> Event {
    Event {
        id: db_row_id("cu", key, version),
        platform: Platform::Cursor,
        kind: kind.to_string(),
        session_id: session.map(str::to_string),
        timestamp_ms: ts,
        source: Source::DbRow {
            db: ctx.db.to_string(),
            key: key.to_string(),
            version,
        },
        payload: payload.to_string(),
    }
}

/// Turns the rows of one read into events. `created` looks a composer's `createdAt` up.
fn parse(ctx: &Ctx<'_>, read: &Read, created: &mut dyn FnMut(&str) -> Option<i64>) -> Parsed {
    let mut out = Parsed::default();
    for r in read.rows.iter().chain(read.workspace.as_ref()) {
        out.bytes += u64::try_from(r.bytes).unwrap_or(0);
        let text = match &r.text {
            None => {
                out.dead.push(dead(ctx, r, "value is not valid JSON"));
                continue;
            }
            Some(Err(())) => {
                out.dead.push(dead(ctx, r, "value is not valid UTF-8"));
                continue;
            }
            Some(Ok(t)) => t,
        };
        let v: Value = match serde_json::from_str(text) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                out.dead.push(dead(ctx, r, "value is not a JSON object"));
                continue;
            }
            Err(_) => {
                out.dead.push(dead(ctx, r, "value is not valid JSON"));
                continue;
            }
        };
        let ver = version(text.as_bytes());
        let mode = ctx.mode;
        if r.key == WORKSPACE_KEY && read.workspace.as_ref().is_some_and(|w| w.rowid == r.rowid) {
            let hash = ctx.workspace.unwrap_or("");
            let (folder, folders) = ctx.dir.map(workspace_folders).unwrap_or_default();
            let payload = privacy::cursor::workspace(hash, folder.as_deref(), &folders, &v, mode);
            let ts = privacy::cursor::workspace_updated_at(&v);
            let mut e = event(ctx, "workspace", &r.key, ver, None, ts, &payload);
            // Ids never name the database path: the workspace hash scopes the key.
            e.id = db_row_id("cu", &format!("{hash}/{WORKSPACE_KEY}"), ver);
            out.events.push(e);
        } else if let Some(cid) = r.key.strip_prefix("composerData:") {
            let payload = privacy::cursor::composer(&v, mode);
            let created_at = v.get("createdAt").and_then(Value::as_i64);
            let ts = v
                .get("lastUpdatedAt")
                .and_then(Value::as_i64)
                .or(created_at);
            out.events
                .push(event(ctx, "composer", &r.key, ver, Some(cid), ts, &payload));
            // Legacy composers carry their bubbles inline.
            for b in v
                .get("conversation")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(bid) = b.get("bubbleId").and_then(Value::as_str) else {
                    continue;
                };
                let key = format!("{}/conversation/{bid}", r.key);
                let bver = version(b.to_string().as_bytes());
                let payload = privacy::cursor::bubble(b, cid, mode);
                let ts = bubble_time(b).or(created_at);
                out.events
                    .push(event(ctx, "bubble", &key, bver, Some(cid), ts, &payload));
            }
        } else if let Some(rest) = r.key.strip_prefix("bubbleId:") {
            let cid = rest.split(':').next().unwrap_or(rest);
            let payload = privacy::cursor::bubble(&v, cid, mode);
            let ts = bubble_time(&v).or_else(|| created(cid));
            out.events
                .push(event(ctx, "bubble", &r.key, ver, Some(cid), ts, &payload));
        } else if r.key.starts_with("agentKv:blob:") {
            let payload = privacy::cursor::agent_blob(&v, mode);
            out.events
                .push(event(ctx, "agent_blob", &r.key, ver, None, None, &payload));
        }
    }
    out
}

/// The folder(s) of a workspace directory's `workspace.json`: `folder` (a `file://` URI)
/// and, for a multi-root `workspace`, the folders of its `.code-workspace` file when readable.
pub fn workspace_folders(dir: &Path) -> (Option<String>, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(dir.join("workspace.json")) else {
        return (None, Vec::new());
    };
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return (None, Vec::new());
    };
    let folder = v.get("folder").and_then(Value::as_str).map(file_uri_path);
    let mut folders = Vec::new();
    if let Some(ws) = v.get("workspace").and_then(Value::as_str) {
        let file = PathBuf::from(file_uri_path(ws));
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        if let Some(list) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|w| w.get("folders").and_then(Value::as_array).cloned())
        {
            for f in list {
                if let Some(p) = f.get("path").and_then(Value::as_str) {
                    let p = Path::new(p);
                    let abs = if p.is_absolute() {
                        p.to_path_buf()
                    } else {
                        base.join(p)
                    };
                    folders.push(abs.display().to_string());
                } else if let Some(u) = f.get("uri").and_then(Value::as_str) {
                    folders.push(file_uri_path(u));
                }
            }
        }
    }
    (folder, folders)
}

/// A `file://` URI as a path (percent-decoded; `file:///c%3A/x` → `c:/x`); other strings as
/// they are.
pub fn file_uri_path(uri: &str) -> String {
    let Some(rest) = uri.strip_prefix("file://") else {
        return uri.to_string();
    };
    // Skip an authority (`file://host/path`): the path starts at the next '/'.
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => rest,
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8_lossy(&out).into_owned();
    // Windows drive paths: `/c:/x` → `c:/x`.
    let b = s.as_bytes();
    if b.len() >= 3 && b[0] == b'/' && b[2] == b':' && b[1].is_ascii_alphabetic() {
        return s[1..].to_string();
    }
    s
}

/// Cursor's databases below one data directory.
pub struct CursorDb {
    root: Option<PathBuf>,
    mode: PrivacyMode,
    /// Db path -> how far it was read.
    cursors: HashMap<String, Watermark>,
    /// Kept-open connections (for `data_version`), by db path.
    conns: HashMap<String, Db>,
    /// Composer `createdAt` by id, for bubbles without a time.
    created: HashMap<String, Option<i64>>,
    /// Databases a lock kept from being read: the next poll hands them back.
    retry: Vec<PathBuf>,
    last_poll: Option<Instant>,
}

impl CursorDb {
    /// A source over the databases below `root` (None: Cursor data dir unknown).
    pub fn new(root: Option<PathBuf>, mode: PrivacyMode) -> CursorDb {
        CursorDb {
            root,
            mode,
            cursors: HashMap::new(),
            conns: HashMap::new(),
            created: HashMap::new(),
            retry: Vec::new(),
            last_poll: None,
        }
    }

    /// Captures what is new in one database, batch by batch.
    ///
    /// # Errors
    /// The sink failed or refused a batch, or `stop` was set. Locks, a vanished or unreadable
    /// database are not errors: the next tick retries.
    pub async fn capture_db(
        &mut self,
        path: &Path,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let key = path.display().to_string();
        let mut stats = CaptureStats {
            files: 1,
            ..CaptureStats::default()
        };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let was_unread = Watermark::unread(self.cursors.get(&key));
        if self.created.len() > 100_000 {
            self.created.clear();
        }
        loop {
            if stop.is_cancelled() {
                return Err(CaptureError::Stopped);
            }
            let wm = self.cursors.get(&key).cloned().unwrap_or_default();
            let db = self.conns.remove(&key);
            let mode = self.mode;
            let p = path.to_path_buf();
            let k = key.clone();
            let from = wm.clone();
            let mut created = std::mem::take(&mut self.created);
            let job = tokio::task::spawn_blocking(move || {
                let mut db = match db {
                    Some(db) => db,
                    None => match open(&p) {
                        Ok(db) => db,
                        Err(e) => return (None, Err(e), created),
                    },
                };
                let hash = workspace_hash(&p);
                let read = match read_batch(&mut db, &from, hash.is_some(), BATCH_ROWS) {
                    Ok(r) => r,
                    Err(e) => return (Some(db), Err(e), created),
                };
                let ctx = Ctx {
                    db: &k,
                    mode,
                    workspace: hash.as_deref(),
                    dir: p.parent(),
                };
                // Composer lookups run after the batch's transaction, each its own short read.
                let conn = &db.conn;
                let mut lookup = |cid: &str| -> Option<i64> {
                    if let Some(c) = created.get(cid) {
                        return *c;
                    }
                    let c = composer_created_at(conn, cid).ok().flatten();
                    created.insert(cid.to_string(), c);
                    c
                };
                tracing::debug!(
                    db = %k,
                    rows = read.rows.len(),
                    held_ms = read.held.as_secs_f64() * 1e3,
                    "Cursor read transaction"
                );
                let parsed = parse(&ctx, &read, &mut lookup);
                (Some(db), Ok((read.next, read.done, parsed)), created)
            })
            .await;
            let (db, result, created) = match job {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(db = %key, error = %e, "Cursor database reader task failed");
                    return Ok(stats);
                }
            };
            self.created = created;
            let (next, done, parsed) = match result {
                Ok(r) => r,
                Err(e) => {
                    if is_busy(&e) {
                        tracing::debug!(db = %key, error = %e, "Cursor database busy; retrying on the next tick");
                        if !self.retry.iter().any(|p| p == path) {
                            self.retry.push(path.to_path_buf());
                        }
                        if let Some(db) = db {
                            self.keep(&key, db);
                        }
                    } else {
                        // Vanished, not a database, mid-creation: the next rescan retries
                        // with a new connection.
                        tracing::debug!(db = %key, error = %e, "Cannot read Cursor database");
                    }
                    return Ok(stats);
                }
            };
            if let Some(db) = db {
                self.keep(&key, db);
            }
            // The first read of a database always leaves a cursor, even an empty one.
            if next != wm
                || !parsed.events.is_empty()
                || !parsed.dead.is_empty()
                || !self.cursors.contains_key(&key)
            {
                let encoded = next.encode();
                let written = sink
                    .publish(Batch {
                        events: &parsed.events,
                        dead: &parsed.dead,
                        new_types: &[],
                        cursor: Some(CursorWrite {
                            hash: NAMESPACE,
                            field: &key,
                            value: &encoded,
                        }),
                    })
                    .await?;
                if !written {
                    return Err(CaptureError::LeaseLost);
                }
                self.cursors.insert(key.clone(), next);
                stats.events += parsed.events.len() as u64;
                stats.bad_lines += parsed.dead.len() as u64;
                stats.bytes += parsed.bytes;
            }
            if done {
                if was_unread {
                    progress(size);
                }
                return Ok(stats);
            }
        }
    }

    /// Keeps a connection open for polling: always the global database, workspace databases
    /// up to [`MAX_KEPT`] (hundreds of workspaces must not exhaust file descriptors; the
    /// others rely on the watcher and rescans).
    fn keep(&mut self, key: &str, db: Db) {
        let global = workspace_hash(Path::new(key)).is_none();
        if global || self.conns.contains_key(key) || self.conns.len() < MAX_KEPT {
            self.conns.insert(key.to_string(), db);
        }
    }

    async fn scan_all(
        &mut self,
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let mut total = CaptureStats::default();
        for (path, _) in self.files() {
            total += self.capture_db(&path, sink, stop, progress).await?;
        }
        Ok(total)
    }

    async fn capture_changed(
        &mut self,
        paths: &[PathBuf],
        sink: &mut dyn Sink,
        stop: &CancellationToken,
        progress: &mut Progress<'_>,
    ) -> Result<CaptureStats, CaptureError> {
        let mut dbs: Vec<PathBuf> = paths.iter().map(|p| database_of(p)).collect();
        dbs.sort();
        dbs.dedup();
        let mut each = Each::default();
        for db in dbs.iter().filter(|db| db.is_file()) {
            each.add(self.capture_db(db, sink, stop, progress).await)?;
        }
        each.finish()
    }

    /// The databases whose `PRAGMA data_version` moved since the last poll, and those a lock
    /// kept from being read (at most about once a second).
    async fn poll_versions(&mut self) -> Vec<PathBuf> {
        if self.last_poll.is_some_and(|t| t.elapsed() < POLL_EVERY) {
            return Vec::new();
        }
        self.last_poll = Some(Instant::now());
        let retry = std::mem::take(&mut self.retry);
        if self.conns.is_empty() {
            return retry;
        }
        let conns = std::mem::take(&mut self.conns);
        let job = tokio::task::spawn_blocking(move || {
            let mut conns = conns;
            let mut changed = Vec::new();
            for (path, db) in conns.iter_mut() {
                match db
                    .conn
                    .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                {
                    Ok(v) => {
                        if db.data_version.is_some_and(|old| old != v) {
                            changed.push(PathBuf::from(path));
                        }
                        db.data_version = Some(v);
                    }
                    Err(e) => {
                        tracing::debug!(db = %path, error = %e, "Cannot poll Cursor database");
                    }
                }
            }
            (conns, changed)
        });
        match job.await {
            Ok((conns, mut changed)) => {
                self.conns = conns;
                for p in retry {
                    if !changed.contains(&p) {
                        changed.push(p);
                    }
                }
                changed
            }
            Err(e) => {
                tracing::error!(error = %e, "Cursor poll task failed");
                Vec::new()
            }
        }
    }
}

impl CaptureSource for CursorDb {
    fn name(&self) -> &'static str {
        "cursor_db"
    }

    fn cursor_namespace(&self) -> &'static str {
        NAMESPACE
    }

    fn load_cursors(&mut self, stored: HashMap<String, String>) {
        self.cursors = stored
            .into_iter()
            .filter_map(|(k, v)| Watermark::decode(&v).map(|w| (k, w)))
            .collect();
    }

    fn watch(&self) -> Watch {
        let dirs = match &self.root {
            Some(r) => vec![
                r.join("User").join("globalStorage"),
                r.join("User").join("workspaceStorage"),
            ],
            None => Vec::new(),
        };
        Watch {
            dirs,
            accepts: is_database,
        }
    }

    fn files(&self) -> Vec<(PathBuf, u64)> {
        self.root
            .as_deref()
            .map(databases)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, len)
            })
            .collect()
    }

    /// A database never read counts whole; one read at least once counts nothing (its new
    /// rows are not known without reading it).
    fn backlog_bytes(&self, files: &[(PathBuf, u64)]) -> u64 {
        files
            .iter()
            .filter(|(p, _)| Watermark::unread(self.cursors.get(&p.display().to_string())))
            .map(|(_, len)| len)
            .sum()
    }

    fn scan<'a>(
        &'a mut self,
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.scan_all(sink, stop, progress))
    }

    fn on_change<'a>(
        &'a mut self,
        paths: &'a [PathBuf],
        sink: &'a mut dyn Sink,
        stop: &'a CancellationToken,
        progress: &'a mut Progress<'_>,
    ) -> BoxFuture<'a, Result<CaptureStats, CaptureError>> {
        Box::pin(self.capture_changed(paths, sink, stop, progress))
    }

    fn poll(&mut self) -> BoxFuture<'_, Vec<PathBuf>> {
        Box::pin(self.poll_versions())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn watermarks_round_trip() {
        for w in [
            Watermark::default(),
            Watermark {
                kv: 42,
                item: 7,
                pass: None,
            },
            Watermark {
                kv: 0,
                item: 3,
                pass: Some(Pass {
                    target: 99,
                    prefix: 1,
                    after: "bubbleId:c:b|with|bars".into(),
                }),
            },
        ] {
            assert_eq!(Watermark::decode(&w.encode()), Some(w));
        }
        assert_eq!(Watermark::decode("garbage"), None);
        assert_eq!(Watermark::decode("2|1|1"), None);
    }

    #[test]
    fn file_uris_become_paths() {
        assert_eq!(
            file_uri_path("file:///home/u/my%20proj%231"),
            "/home/u/my proj#1"
        );
        assert_eq!(
            file_uri_path("file:///c%3A/Users/u/proj"),
            "c:/Users/u/proj"
        );
        assert_eq!(file_uri_path("file://server/share/x"), "/share/x");
        assert_eq!(file_uri_path("/plain/path"), "/plain/path");
        assert_eq!(file_uri_path("file:///bad%zzescape%"), "/bad%zzescape%");
        assert_eq!(file_uri_path("file:///caf%C3%A9"), "/café");
    }

    #[test]
    fn only_databases_and_wals_are_watched() {
        let g = Path::new("/c/User/globalStorage/state.vscdb");
        assert!(is_database(g));
        assert!(is_database(Path::new(
            "/c/User/globalStorage/state.vscdb-wal"
        )));
        assert!(is_database(Path::new(
            "/c/User/workspaceStorage/abc/state.vscdb"
        )));
        assert!(!is_database(Path::new(
            "/c/User/globalStorage/state.vscdb-shm"
        )));
        assert!(!is_database(Path::new(
            "/c/User/globalStorage/ext/state.vscdb"
        )));
        assert!(!is_database(Path::new(
            "/c/User/globalStorage/storage.json"
        )));
        assert_eq!(
            database_of(Path::new("/c/User/globalStorage/state.vscdb-wal")),
            g
        );
        assert_eq!(
            workspace_hash(Path::new("/c/User/workspaceStorage/abc/state.vscdb")),
            Some("abc".into())
        );
        assert_eq!(workspace_hash(g), None);
    }

    #[test]
    fn uris_escape_what_sqlite_parses() {
        assert_eq!(
            uri(Path::new("/a b/50%?x#y/state.vscdb")),
            "file:/a b/50%25%3fx%23y/state.vscdb?mode=ro"
        );
    }

    #[test]
    fn data_dirs_default_per_os() {
        let home = Path::new("/home/u");
        assert_eq!(
            data_dir(Some("/x/Cursor"), Some(home)),
            Some(PathBuf::from("/x/Cursor"))
        );
        assert_eq!(
            data_dir(Some("~/C"), Some(home)),
            Some(PathBuf::from("/home/u/C"))
        );
        if cfg!(target_os = "linux") {
            assert_eq!(
                data_dir(None, Some(home)),
                Some(PathBuf::from("/home/u/.config/Cursor"))
            );
            assert_eq!(data_dir(Some("  "), None), None);
        }
    }

    #[test]
    fn bubble_times() {
        assert_eq!(
            bubble_time(&json!({"createdAt":"2025-12-25T19:36:35.467Z"})),
            Some(1_766_691_395_467)
        );
        assert_eq!(
            bubble_time(&json!({"createdAt":1_766_691_395_467_i64})),
            Some(1_766_691_395_467)
        );
        // The monotonic clientStartTime is never a time; the first epoch time is.
        assert_eq!(
            bubble_time(
                &json!({"timingInfo":{"clientStartTime":4745281.3,"clientSettleTime":1_766_691_395_467_i64}})
            ),
            Some(1_766_691_395_467)
        );
        assert_eq!(
            bubble_time(&json!({"timingInfo":{"clientStartTime":4745281.3}})),
            None
        );
        assert_eq!(bubble_time(&json!({"createdAt":"yesterday"})), None);
    }

    /// The first pass is a range scan of the key index, later passes a rowid range scan, the
    /// composer lookup an index seek: no query ever scans the whole table.
    #[test]
    fn queries_use_ranges_not_table_scans() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);",
        )
        .unwrap();
        let plan = |sql: &str| -> String {
            let mut s = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let n = s.parameter_count();
            let params: Vec<i64> = vec![1; n];
            s.query_map(rusqlite::params_from_iter(params), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<rusqlite::Result<Vec<_>>>()
            .unwrap()
            .join("; ")
        };
        for cmp in [">=", ">"] {
            let p = plan(&first_pass_sql(cmp));
            assert!(
                p.contains("USING INDEX") && p.contains("key>? AND key<?"),
                "{p}"
            );
        }
        let p = plan(&later_pass_sql());
        assert!(p.contains("INTEGER PRIMARY KEY (rowid>?)"), "{p}");
        let p = plan(COMPOSER_CREATED_SQL);
        assert!(p.contains("(key=?)"), "{p}");
    }

    #[test]
    fn versions_are_content_hashes() {
        assert_eq!(version(b"{}"), version(b"{}"));
        assert_ne!(version(b"{\"a\":1}"), version(b"{\"a\":2}"));
        assert!(version(b"x") >= 0);
    }
}

//! The compact row model of `raw_traces` (migration 0007, issue 9 item 3).
//!
//! An event's deterministic id (`cc:<session>:<line uuid>`, `cc:h:<hash>`, `hk:<hash>`,
//! `cu:<key>@<version>`, `ca:...`; see [`crate::event`]) is stored twice, compactly:
//! - as its **dedup key** [`id_key`], 16 bytes hashed from the id's text alone, the table's
//!   UNIQUE key (`raw_traces_id`): `INSERT OR IGNORE` on it makes inserts idempotent, exactly
//!   like the UNIQUE text id did (two ids with one key would need a 96-bit collision);
//! - as `id_form` + `id_tail`, from which the view `raw_traces_text` rebuilds the id text
//!   byte for byte ([`encode_id`] is its inverse, and the tests prove the round trip).
//!
//! The strings every row repeated (the source path, the platform and record kind, the
//! session id) are interned once in `raw_sources`, `raw_kinds` and `raw_sessions`, and the
//! row holds their integer `ref`. Those tables are append-only: a ref, once committed, never
//! changes, and no row is ever deleted from them.

use std::collections::HashMap;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

/// `id_form`: how `id_tail` rebuilds the id. Kept in step with the `raw_traces_text` view of
/// `schemas/sql/0007_compact_raw_traces.sql`: never renumbered.
pub mod form {
    /// The id is `id_tail` (TEXT) as it is.
    pub const VERBATIM: i64 = 0;
    /// `cc:<session_id>:<uuid>`; `id_tail` is the uuid's 16 bytes (a canonical lowercase
    /// hyphenated uuid, so the text is rebuilt exactly).
    pub const SESSION_UUID: i64 = 1;
    /// `cc:<session_id>:<id_tail>` (TEXT): a line uuid that is not a canonical uuid.
    pub const SESSION_TEXT: i64 = 2;
    /// `cc:h:<32 lowercase hex digits>`; `id_tail` is the 16 bytes.
    pub const LINE_HASH: i64 = 3;
    /// `hk:<32 lowercase hex digits>`; `id_tail` is the 16 bytes.
    pub const HOOK_HASH: i64 = 4;
}

/// The dedup key of an event id, 16 bytes, a function of the id's text alone: 4 bytes of the
/// xxh3-64 of its *group* (the id up to its last `:` — `cc:<session>`, `cu:bubbleId:<composer>`,
/// `hk`, ...), then 12 bytes (96 bits) of the xxh3-128 of the whole id. Equal ids give equal
/// keys (idempotence); two different ids share a key only if their 96-bit hashes collide.
/// The group prefix keeps one session's keys together in the index, as the text ids were: a
/// batch of one transcript touches a few leaf pages of `raw_traces_id`, not one random page
/// per event (measured: a fully random 16-byte key made the fast path write 2.9x the WAL).
pub fn id_key(id: &str) -> [u8; 16] {
    let group = id.rfind(':').map_or("", |i| &id[..i]);
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&xxh3_64(group.as_bytes()).to_be_bytes()[..4]);
    key[4..].copy_from_slice(&xxh3_128(id.as_bytes()).to_be_bytes()[..12]);
    key
}

/// `id_tail`: text or 16 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTail<'a> {
    Text(&'a str),
    Bytes([u8; 16]),
}

impl ToSql for IdTail<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            IdTail::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            IdTail::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// `(id_form, id_tail)` of an event id. `session_id` is the row's own `session_id` (the
/// view rebuilds from the same column), so only the row's own session shortens its id.
pub fn encode_id<'a>(id: &'a str, session_id: Option<&str>) -> (i64, IdTail<'a>) {
    if let Some(rest) = session_id.and_then(|s| {
        id.strip_prefix("cc:")
            .and_then(|r| r.strip_prefix(s))
            .and_then(|r| r.strip_prefix(':'))
    }) {
        return match uuid_bytes(rest) {
            Some(b) => (form::SESSION_UUID, IdTail::Bytes(b)),
            None => (form::SESSION_TEXT, IdTail::Text(rest)),
        };
    }
    if let Some(b) = id.strip_prefix("cc:h:").and_then(hex16) {
        return (form::LINE_HASH, IdTail::Bytes(b));
    }
    if let Some(b) = id.strip_prefix("hk:").and_then(hex16) {
        return (form::HOOK_HASH, IdTail::Bytes(b));
    }
    (form::VERBATIM, IdTail::Text(id))
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// 32 lowercase hex digits, exactly.
fn hex16(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(out)
}

/// A canonical lowercase hyphenated uuid (8-4-4-4-12), exactly.
fn uuid_bytes(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let mut digits = [0u8; 32];
    let mut n = 0;
    for &c in b {
        if c != b'-' {
            *digits.get_mut(n)? = c;
            n += 1;
        }
    }
    if n != 32 {
        return None;
    }
    hex16(std::str::from_utf8(&digits).ok()?)
}

fn text_arg<'a>(
    ctx: &'a rusqlite::functions::Context<'_>,
    i: usize,
) -> rusqlite::Result<Option<&'a str>> {
    match ctx.get_raw(i) {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => std::str::from_utf8(t)
            .map(Some)
            .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e))),
        _ => Err(rusqlite::Error::InvalidParameterType(
            i,
            ctx.get_raw(i).data_type(),
        )),
    }
}

/// Registers `bp_id_key(id)`, `bp_id_form(id, session_id)` and `bp_id_tail(id, session_id)`
/// on `conn`: migration 0007 rewrites the rows of an existing store with them, so old and
/// new rows are encoded by the same code ([`id_key`], [`encode_id`]).
///
/// # Errors
/// SQLite errors.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("bp_id_key", 1, flags, |ctx| {
        let id = text_arg(ctx, 0)?.unwrap_or_default();
        Ok(id_key(id).to_vec())
    })?;
    conn.create_scalar_function("bp_id_form", 2, flags, |ctx| {
        let id = text_arg(ctx, 0)?.unwrap_or_default();
        Ok(encode_id(id, text_arg(ctx, 1)?).0)
    })?;
    conn.create_scalar_function("bp_id_tail", 2, flags, |ctx| {
        let id = text_arg(ctx, 0)?.unwrap_or_default();
        Ok(match encode_id(id, text_arg(ctx, 1)?).1 {
            IdTail::Text(s) => rusqlite::types::Value::Text(s.to_string()),
            IdTail::Bytes(b) => rusqlite::types::Value::Blob(b.to_vec()),
        })
    })?;
    Ok(())
}

/// The refs of one transaction's interned strings: looked up (or inserted) once per distinct
/// value, so a batch of 100 events from one file costs a handful of lookups, not 300. Lives
/// for one transaction only (a ref inserted by a transaction that rolls back is gone).
#[derive(Default)]
pub struct Refs<'a> {
    kinds: HashMap<(&'a str, &'a str), i64>,
    sources: HashMap<(&'a str, &'a str), i64>,
    sessions: HashMap<&'a str, i64>,
}

impl<'a> Refs<'a> {
    /// The ref of (platform, kind) in `raw_kinds`, inserted when `insert` and new.
    fn kind_ref(
        &mut self,
        tx: &Transaction<'_>,
        platform: &'a str,
        kind: &'a str,
        insert: bool,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(r) = self.kinds.get(&(platform, kind)) {
            return Ok(Some(*r));
        }
        let r = intern(
            tx,
            "SELECT ref FROM raw_kinds WHERE platform = ?1 AND kind = ?2",
            insert.then_some("INSERT INTO raw_kinds (platform, kind) VALUES (?1, ?2)"),
            params![platform, kind],
        )?;
        if let Some(r) = r {
            self.kinds.insert((platform, kind), r);
        }
        Ok(r)
    }

    /// The ref of (source kind, location) in `raw_sources` (a kind outside
    /// `file`/`hook`/`db` fails its CHECK).
    fn source_ref(
        &mut self,
        tx: &Transaction<'_>,
        kind: &'a str,
        location: &'a str,
        insert: bool,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(r) = self.sources.get(&(kind, location)) {
            return Ok(Some(*r));
        }
        let r = intern(
            tx,
            "SELECT ref FROM raw_sources WHERE kind = ?1 AND location = ?2",
            insert.then_some("INSERT INTO raw_sources (kind, location) VALUES (?1, ?2)"),
            params![kind, location],
        )?;
        if let Some(r) = r {
            self.sources.insert((kind, location), r);
        }
        Ok(r)
    }

    /// The ref of a session id in `raw_sessions`.
    fn session_ref(
        &mut self,
        tx: &Transaction<'_>,
        session_id: &'a str,
        insert: bool,
    ) -> rusqlite::Result<Option<i64>> {
        if let Some(r) = self.sessions.get(session_id) {
            return Ok(Some(*r));
        }
        let r = intern(
            tx,
            "SELECT ref FROM raw_sessions WHERE session_id = ?1",
            insert.then_some("INSERT INTO raw_sessions (session_id) VALUES (?1)"),
            params![session_id],
        )?;
        if let Some(r) = r {
            self.sessions.insert(session_id, r);
        }
        Ok(r)
    }

    /// The refs of an event's (platform, kind), source and session, interning what is new —
    /// or `None` when a string is new and the event is a duplicate (its key is stored
    /// already): `INSERT OR IGNORE` would ignore it, and nothing of it may be left behind
    /// (a copy of a transcript at another path stores nothing, not even the path).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn for_event(
        &mut self,
        tx: &Transaction<'_>,
        e: &'a crate::event::Event,
        key: &[u8; 16],
    ) -> rusqlite::Result<Option<EventRefs>> {
        let mut insert = false;
        loop {
            let kind = self.kind_ref(tx, e.platform.as_str(), &e.kind, insert)?;
            let source = self.source_ref(tx, e.source.kind(), e.source.location(), insert)?;
            let session = match e.session_id.as_deref() {
                Some(s) => self.session_ref(tx, s, insert)?.map(Some),
                None => Some(None),
            };
            if let (Some(kind), Some(source), Some(session)) = (kind, source, session) {
                return Ok(Some(EventRefs {
                    kind,
                    source,
                    session,
                }));
            }
            let stored = tx
                .prepare_cached("SELECT 1 FROM raw_traces WHERE id_key = ?1")?
                .query_row([&key[..]], |_| Ok(()))
                .optional()?
                .is_some();
            if stored || insert {
                return Ok(None);
            }
            insert = true;
        }
    }
}

/// The refs of one event's row.
#[derive(Debug, Clone, Copy)]
pub struct EventRefs {
    pub kind: i64,
    pub source: i64,
    pub session: Option<i64>,
}

fn intern(
    tx: &Transaction<'_>,
    select: &str,
    insert: Option<&str>,
    p: &[&dyn ToSql],
) -> rusqlite::Result<Option<i64>> {
    if let Some(r) = tx
        .prepare_cached(select)?
        .query_row(p, |r| r.get(0))
        .optional()?
    {
        return Ok(Some(r));
    }
    let Some(insert) = insert else {
        return Ok(None);
    };
    tx.prepare_cached(insert)?.execute(p)?;
    Ok(Some(tx.last_insert_rowid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_take_their_compact_form() {
        let s = "0b4c6a5e-3f5c-4e1b-9a0e-2d7c1f8e9a10";
        let u = "7d1f0c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6";
        let cases: &[(&str, Option<&str>, i64)] = &[
            (&format!("cc:{s}:{u}"), Some(s), form::SESSION_UUID),
            // Another session's prefix, an upper-case or odd uuid: kept as text.
            (&format!("cc:{s}:{u}"), Some("other"), form::VERBATIM),
            (
                &format!("cc:{s}:{}", u.to_uppercase()),
                Some(s),
                form::SESSION_TEXT,
            ),
            (&format!("cc:{s}:u-1"), Some(s), form::SESSION_TEXT),
            (&format!("cc:{s}:"), Some(s), form::SESSION_TEXT),
            ("cc:-:u1", None, form::VERBATIM),
            (
                "cc:h:0123456789abcdef0123456789abcdef",
                Some(s),
                form::LINE_HASH,
            ),
            (
                "cc:h:0123456789ABCDEF0123456789abcdef",
                None,
                form::VERBATIM,
            ),
            ("cc:h:0123", None, form::VERBATIM),
            ("hk:fedcba9876543210fedcba9876543210", None, form::HOOK_HASH),
            ("cu:bubbleId:c:b@3", Some("c"), form::VERBATIM),
            ("ca:c/s1:7", Some("c"), form::VERBATIM),
        ];
        for (id, sid, f) in cases {
            assert_eq!(encode_id(id, *sid).0, *f, "{id}");
        }
        assert_eq!(uuid_bytes(u).map(|b| b[0]), Some(0x7d));
        assert_eq!(uuid_bytes("7d1f0c2a-1b2c-4d3e-8f90-a1b2c3d4e5f"), None);
        assert_eq!(uuid_bytes("7d1f0c2a-1b2c-4d3e-8f90_a1b2c3d4e5f6"), None);
        assert_ne!(id_key("a"), id_key("b"));
        assert_eq!(id_key("a"), id_key("a"));
        // One session's keys share their first 4 bytes (index locality), not their rest.
        let (a, b) = (
            id_key(&format!("cc:{s}:{u}")),
            id_key(&format!("cc:{s}:u2")),
        );
        assert_eq!(a[..4], b[..4]);
        assert_ne!(a[4..], b[4..]);
        assert_ne!(a[..4], id_key(&format!("cc:other:{u}"))[..4]);
    }
}

//! Payload blocks: how the fast path writes a batch's payloads and how layer 2 reads one back.
//!
//! Consecutive records of one source in a batch (the lines of one transcript, mostly) are
//! compressed together as one zlib stream in `raw_blocks` (migration 0008), each record
//! keeping its own `raw_traces` row with the byte range of its payload in the decoded block.
//! One stream per block instead of one per record: the stream reset and the preset dictionary
//! are paid once per block, and deflate sees what consecutive lines repeat. A record with no
//! neighbour of its source in the batch (a hook, a live line) is stored alone, its own stream
//! in `raw_traces.payload`, as every row before 0008 was.

use rusqlite::{Connection, OptionalExtension, Row};

use super::codec::{Compressor, Decompressor};

/// Most payload bytes in one block before a new one starts (a record larger than this is a
/// block of its own). Deflate's window is 32 KiB: longer blocks would compress little better
/// and make reading one record decode more.
pub const BLOCK_BYTES: usize = 32 * 1024;

/// Where one record of a [`Plan`] goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Its own zlib stream, for `raw_traces.payload`.
    Alone(Vec<u8>),
    /// Bytes `[start, start + len)` of block `block` (an index into [`Plan::blocks`]).
    InBlock {
        block: usize,
        start: usize,
        len: usize,
    },
}

/// The compressed form of a batch: blocks, and one [`Part`] per record in batch order.
#[derive(Debug, Default)]
pub struct Plan {
    /// One zlib stream each.
    pub blocks: Vec<Vec<u8>>,
    pub parts: Vec<Part>,
}

/// Compresses `records` — (source, payload) in batch order — into blocks of consecutive
/// records of one source.
pub fn plan<'a>(
    zlib: &mut Compressor,
    records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Plan {
    let records: Vec<(&str, &[u8])> = records.into_iter().collect();
    let mut plan = Plan::default();
    let mut buf = Vec::new();
    let mut i = 0;
    while i < records.len() {
        // The run of records of this source that fits one block (at least one record).
        let (source, first) = records[i];
        let mut end = i + 1;
        let mut bytes = first.len();
        while end < records.len()
            && records[end].0 == source
            && bytes + records[end].1.len() <= BLOCK_BYTES
        {
            bytes += records[end].1.len();
            end += 1;
        }
        if end - i == 1 {
            plan.parts.push(Part::Alone(zlib.compress(first)));
        } else {
            buf.clear();
            let block = plan.blocks.len();
            for (_, payload) in &records[i..end] {
                plan.parts.push(Part::InBlock {
                    block,
                    start: buf.len(),
                    len: payload.len(),
                });
                buf.extend_from_slice(payload);
            }
            plan.blocks.push(zlib.compress(&buf));
        }
        i = end;
    }
    plan
}

/// The columns a reader selects, in this order, to read a record with [`PayloadReader`].
pub const COLUMNS: &str = "payload, block, block_start, block_len";

/// A stored record as selected by [`COLUMNS`].
#[derive(Debug, Clone)]
pub struct Stored {
    payload: Vec<u8>,
    /// (block id, start, len) for a record in a block.
    part: Option<(i64, i64, i64)>,
}

impl Stored {
    /// Reads [`COLUMNS`] starting at column `first`.
    ///
    /// # Errors
    /// When the columns are not there or have other types.
    pub fn from_row(r: &Row<'_>, first: usize) -> rusqlite::Result<Stored> {
        let block: Option<i64> = r.get(first + 1)?;
        let part = match block {
            Some(b) => Some((b, r.get(first + 2)?, r.get(first + 3)?)),
            None => None,
        };
        Ok(Stored {
            payload: r.get(first)?,
            part,
        })
    }
}

/// Decodes stored records, keeping the last block decoded: a reader going through rows in
/// `seq` order decodes each block once.
#[derive(Default)]
pub struct PayloadReader {
    zlib: Decompressor,
    alone: Vec<u8>,
    /// The block in `block` (its id), when one was decoded and decoded cleanly.
    block_id: Option<i64>,
    block: Vec<u8>,
}

impl PayloadReader {
    /// The text of a stored record; `None` when it does not decode (not zlib, a dictionary we
    /// do not have, a range outside its block, a missing block, not UTF-8).
    ///
    /// # Errors
    /// SQLite errors reading the block.
    pub fn text<'a>(
        &'a mut self,
        conn: &Connection,
        rec: &Stored,
    ) -> rusqlite::Result<Option<&'a str>> {
        let Some((id, start, len)) = rec.part else {
            return Ok(self.zlib.decompress_str(&rec.payload, &mut self.alone));
        };
        if self.block_id != Some(id) {
            self.block_id = None;
            let found: Option<Vec<u8>> = conn
                .prepare_cached("SELECT data FROM raw_blocks WHERE id = ?1")?
                .query_row([id], |r| r.get(0))
                .optional()?;
            let Some(data) = found else {
                return Ok(None);
            };
            if self.zlib.decompress(&data, &mut self.block).is_none() {
                return Ok(None);
            }
            self.block_id = Some(id);
        }
        let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(len)) else {
            return Ok(None);
        };
        let bytes = start
            .checked_add(len)
            .and_then(|end| self.block.get(start..end));
        Ok(bytes.and_then(|b| std::str::from_utf8(b).ok()))
    }
}

/// Calls `f` with every stored record's seq and text, in `seq` order (`None` where it does not
/// decode), one row at a time: for `doctor --privacy`, tests and tools (the slow path reads in
/// rounds).
///
/// # Errors
/// SQLite errors, and `f`'s.
pub fn each_text<E: From<rusqlite::Error>>(
    conn: &Connection,
    mut f: impl FnMut(i64, Option<&str>) -> Result<(), E>,
) -> Result<(), E> {
    let mut stmt = conn.prepare(&format!(
        "SELECT seq, {COLUMNS} FROM raw_traces ORDER BY seq"
    ))?;
    let mut rows = stmt.query([])?;
    let mut reader = PayloadReader::default();
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let rec = Stored::from_row(r, 1)?;
        f(seq, reader.text(conn, &rec)?)?;
    }
    Ok(())
}

/// Every stored record's seq and text, in `seq` order: [`each_text`] collected (tests, small
/// stores).
///
/// # Errors
/// SQLite errors.
pub fn all_texts(conn: &Connection) -> rusqlite::Result<Vec<(i64, Option<String>)>> {
    let mut out = Vec::new();
    each_text(conn, |seq, text| {
        out.push((seq, text.map(str::to_string)));
        Ok::<(), rusqlite::Error>(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_plan(plan: &Plan) -> Vec<String> {
        let mut d = Decompressor::default();
        let blocks: Vec<Vec<u8>> = plan
            .blocks
            .iter()
            .map(|b| {
                let mut out = Vec::new();
                d.decompress(b, &mut out).expect("block decodes");
                out
            })
            .collect();
        plan.parts
            .iter()
            .map(|p| match p {
                Part::Alone(z) => super::super::codec::decode(z).expect("alone decodes"),
                Part::InBlock { block, start, len } => {
                    String::from_utf8(blocks[*block][*start..start + len].to_vec()).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn consecutive_records_of_a_source_share_a_block_and_read_back_exactly() {
        let big = "y".repeat(BLOCK_BYTES);
        let recs: Vec<(&str, String)> = vec![
            ("a.jsonl", r#"{"n":1}"#.into()),
            ("a.jsonl", r#"{"n":2,"é":"✓"}"#.into()),
            ("a.jsonl", r#"{"n":3}"#.into()),
            ("hook", r#"{"h":1}"#.into()),
            ("a.jsonl", r#"{"n":4}"#.into()),
            ("b.jsonl", String::new()),
            ("b.jsonl", r#"{"n":5}"#.into()),
            ("b.jsonl", big.clone()),
            ("b.jsonl", r#"{"n":6}"#.into()),
        ];
        let plan = plan(
            &mut Compressor::default(),
            recs.iter().map(|(s, p)| (*s, p.as_bytes())),
        );
        let kinds: Vec<Option<usize>> = plan
            .parts
            .iter()
            .map(|p| match p {
                Part::Alone(_) => None,
                Part::InBlock { block, .. } => Some(*block),
            })
            .collect();
        // a.jsonl x3 together; the hook and the lone a.jsonl line alone; b.jsonl's first two
        // together; the record of BLOCK_BYTES leaves no room for its neighbour: both alone.
        assert_eq!(
            kinds,
            [
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                Some(1),
                Some(1),
                None,
                None
            ]
        );
        assert_eq!(plan.blocks.len(), 2);
        let want: Vec<String> = recs.iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(decode_plan(&plan), want);
    }

    #[test]
    fn a_block_is_smaller_than_its_records_alone() {
        let line = |i: usize| {
            format!(
                r#"{{"cwd":"/home/dev/app","sessionId":"8f3c2a9e-1b7d-4c55-9a0e-5d2f6b1c7e40","parentUuid":"u{}","uuid":"u{i}","type":"user","message":{{"role":"user","content":"step {i}"}}}}"#,
                i.saturating_sub(1)
            )
        };
        let lines: Vec<String> = (0..16).map(line).collect();
        let mut z = Compressor::default();
        let alone: usize = lines.iter().map(|l| z.compress(l.as_bytes()).len()).sum();
        let p = plan(&mut z, lines.iter().map(|l| ("f", l.as_bytes())));
        assert_eq!(p.blocks.len(), 1);
        let block = p.blocks[0].len();
        assert!(block * 2 < alone, "block {block} B vs {alone} B alone");
    }

    #[test]
    fn a_reader_decodes_blocks_from_the_table_and_rejects_bad_ranges() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE raw_blocks (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")
            .unwrap();
        let mut z = Compressor::default();
        let p = plan(&mut z, [("f", &b"{\"a\":1}"[..]), ("f", &b"{\"b\":2}"[..])]);
        c.execute(
            "INSERT INTO raw_blocks (id, data) VALUES (7, ?1)",
            [&p.blocks[0]],
        )
        .unwrap();
        let mut r = PayloadReader::default();
        let at = |start, len| Stored {
            payload: Vec::new(),
            part: Some((7, start, len)),
        };
        assert_eq!(r.text(&c, &at(0, 7)).unwrap(), Some("{\"a\":1}"));
        assert_eq!(r.text(&c, &at(7, 7)).unwrap(), Some("{\"b\":2}"));
        assert_eq!(r.text(&c, &at(7, 8)).unwrap(), None, "past the end");
        assert_eq!(r.text(&c, &at(-1, 2)).unwrap(), None, "negative start");
        let missing = Stored {
            payload: Vec::new(),
            part: Some((8, 0, 1)),
        };
        assert_eq!(r.text(&c, &missing).unwrap(), None, "no such block");
        let alone = Stored {
            payload: z.compress(b"{\"c\":3}"),
            part: None,
        };
        assert_eq!(r.text(&c, &alone).unwrap(), Some("{\"c\":3}"));
        // Still reads the block after an alone record and a miss.
        assert_eq!(r.text(&c, &at(0, 7)).unwrap(), Some("{\"a\":1}"));
    }
}

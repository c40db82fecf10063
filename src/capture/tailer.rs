//! Tailing a growing file by byte offset, with file identity.
//!
//! A [`FileCursor`] is `(device, inode, offset)`. Reading resumes at `offset` when the file is
//! the same one and at least that long; a different inode (the file was replaced) or a shorter
//! length (truncated) restarts at 0. Only complete lines are returned: a partial last line
//! stays in the file until its newline arrives, unless it is a complete JSON value at the end
//! of the file (a prefix of a JSON object never parses, so such a line is whole; some
//! writers omit the final newline). A line longer than [`MAX_LINE`] is skipped
//! and reported, so one runaway line cannot stall a file forever.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes read per call.
pub const CHUNK: usize = 8 << 20;
/// Longest line accepted (Claude Code writes multi-MB lines for big tool results).
pub const MAX_LINE: usize = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCursor {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

impl FileCursor {
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.dev, self.ino, self.offset)
    }

    pub fn decode(s: &str) -> Option<FileCursor> {
        let mut it = s.split(':').map(|p| p.parse::<u64>().ok());
        Some(FileCursor {
            dev: it.next()??,
            ino: it.next()??,
            offset: it.next()??,
        })
    }
}

/// Complete lines read from one file.
#[derive(Debug, Default)]
pub struct Chunk {
    /// The bytes of the complete lines, starting at `start`.
    pub data: Vec<u8>,
    pub start: u64,
    /// Where the next read starts (after the last complete line, or after a skipped line).
    pub next: FileCursor,
    /// An over-long line that was skipped: (offset, length).
    pub skipped: Option<(u64, u64)>,
    /// True when the file restarted at 0 (replaced or truncated).
    pub restarted: bool,
    /// More complete data may follow (the chunk limit was hit).
    pub more: bool,
}

impl Chunk {
    /// Lines with their byte offsets, newline stripped.
    pub fn lines(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut pos = 0usize;
        let data = &self.data;
        let start = self.start;
        std::iter::from_fn(move || {
            if pos >= data.len() {
                return None;
            }
            let end = memchr_newline(&data[pos..]).map_or(data.len(), |i| pos + i);
            let line = &data[pos..end];
            let off = start + pos as u64;
            pos = end + 1;
            Some((off, line))
        })
    }
}

/// A non-empty tail that parses as one JSON value.
fn complete_json(tail: &[u8]) -> bool {
    !tail.trim_ascii().is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(tail).is_ok()
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

/// Reads the complete lines after `prev` (or from the start).
///
/// # Errors
/// I/O errors opening or reading the file.
pub fn read_new(path: &Path, prev: Option<FileCursor>) -> io::Result<Chunk> {
    let mut f = File::open(path)?;
    let meta = f.metadata()?;
    let (dev, ino, len) = (meta.dev(), meta.ino(), meta.len());
    let mut start = 0;
    let mut restarted = false;
    if let Some(p) = prev {
        if p.dev == dev && p.ino == ino && p.offset <= len {
            start = p.offset;
        } else {
            restarted = p.offset > 0;
        }
    }
    let mut chunk = Chunk {
        start,
        next: FileCursor {
            dev,
            ino,
            offset: start,
        },
        restarted,
        ..Chunk::default()
    };
    if start >= len {
        return Ok(chunk);
    }
    f.seek(SeekFrom::Start(start))?;
    let want = ((len - start) as usize).min(CHUNK);
    let mut buf = Vec::with_capacity(want);
    (&mut f).take(want as u64).read_to_end(&mut buf)?;
    let at_eof = start + want as u64 == len;
    if at_eof && complete_json(&buf[buf.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)..]) {
        chunk.next.offset = len;
        chunk.data = buf;
        return Ok(chunk);
    }
    if let Some(last_nl) = buf.iter().rposition(|&c| c == b'\n') {
        buf.truncate(last_nl + 1);
        chunk.more = start + (want as u64) < len;
        chunk.next.offset = start + buf.len() as u64;
        chunk.data = buf;
        return Ok(chunk);
    }
    // No newline in the first CHUNK bytes: one long line. Read on until it ends.
    let mut total = buf.len();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut block)?;
        if n == 0 {
            if total <= MAX_LINE && complete_json(&buf) {
                chunk.next.offset = start + buf.len() as u64;
                chunk.data = buf;
                return Ok(chunk);
            }
            // Partial line at EOF: wait for the writer (unless it is already too long).
            if total > MAX_LINE {
                chunk.skipped = Some((start, total as u64));
                chunk.next.offset = start + total as u64;
            }
            return Ok(chunk);
        }
        if let Some(i) = memchr_newline(&block[..n]) {
            let line_len = total + i;
            if line_len > MAX_LINE {
                chunk.skipped = Some((start, line_len as u64));
                chunk.next.offset = start + line_len as u64 + 1;
                chunk.more = true;
                return Ok(chunk);
            }
            buf.extend_from_slice(&block[..=i]);
            chunk.next.offset = start + buf.len() as u64;
            chunk.data = buf;
            chunk.more = chunk.next.offset < len;
            return Ok(chunk);
        }
        total += n;
        if total <= MAX_LINE {
            buf.extend_from_slice(&block[..n]);
        } else {
            buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(c: &Chunk) -> Vec<(u64, String)> {
        c.lines()
            .map(|(o, l)| (o, String::from_utf8_lossy(l).into_owned()))
            .collect()
    }

    #[test]
    fn partial_lines_wait_for_newline() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        let mut f = File::create(&p).unwrap();
        f.write_all(b"one\ntw").unwrap();
        let c = read_new(&p, None).unwrap();
        assert_eq!(lines(&c), vec![(0, "one".to_string())]);
        assert_eq!(c.next.offset, 4);
        f.write_all(b"o\nthree\n").unwrap();
        let c2 = read_new(&p, Some(c.next)).unwrap();
        assert_eq!(
            lines(&c2),
            vec![(4, "two".to_string()), (8, "three".to_string())]
        );
        let c3 = read_new(&p, Some(c2.next)).unwrap();
        assert!(c3.data.is_empty());
    }

    #[test]
    fn a_complete_json_last_line_without_newline_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        std::fs::write(&p, b"{\"a\":1}\n{\"b\":2}").unwrap();
        let c = read_new(&p, None).unwrap();
        assert_eq!(lines(&c).len(), 2);
        assert_eq!(c.next.offset, 15);
        // The writer adds the newline later: nothing new but an empty line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"\n{\"c\":3}\n").unwrap();
        let c2 = read_new(&p, Some(c.next)).unwrap();
        let got: Vec<String> = lines(&c2).into_iter().map(|(_, l)| l).collect();
        assert_eq!(got, vec!["".to_string(), "{\"c\":3}".to_string()]);
        // A partial object is still held back.
        std::fs::write(&p, b"{\"a\":1}\n{\"b\":").unwrap();
        assert_eq!(lines(&read_new(&p, None).unwrap()).len(), 1);
    }

    #[test]
    fn truncation_and_replacement_restart() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        std::fs::write(&p, b"aaaa\nbbbb\n").unwrap();
        let c = read_new(&p, None).unwrap();
        std::fs::write(&p, b"x\n").unwrap(); // same inode, shorter
        let c2 = read_new(&p, Some(c.next)).unwrap();
        assert!(c2.restarted);
        assert_eq!(lines(&c2), vec![(0, "x".to_string())]);
        // Replaced by a new file (new inode) that is longer than the old offset.
        let tmp = d.path().join("b");
        std::fs::write(&tmp, b"new1\nnew2\nnew3\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        let c3 = read_new(&p, Some(c2.next)).unwrap();
        assert!(c3.restarted);
        assert_eq!(lines(&c3).len(), 3);
    }

    #[test]
    fn cursor_round_trips() {
        let c = FileCursor {
            dev: 1,
            ino: 2,
            offset: 3,
        };
        assert_eq!(FileCursor::decode(&c.encode()), Some(c));
        assert_eq!(FileCursor::decode("1:x:3"), None);
    }
}

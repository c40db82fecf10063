//! The spool: where a hook or status-line payload waits when Redis cannot take it.
//!
//! `$BLUEPLANE_HOME/spool/hooks.jsonl`, one [`SpoolRecord`] per line. Writers are hook
//! processes, many at once: each takes an exclusive lock on the file, checks that the file
//! it locked is still the one at the path (the drainer may have just moved it away), appends
//! one whole line and fsyncs before it exits. The drainer (the capture lease holder, see
//! `capture::spool`) takes the lock, renames the file to `hooks.<unique>.draining` and
//! releases it, so it never holds the lock while it waits on Redis, and no writer can append
//! to a file being drained. A drained file is deleted only after every event in it was
//! published; a crash in between publishes them again, and their ids make that idempotent.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Platform, Source};
use crate::queue::DeadLetter;

/// The file hook processes append to.
pub const SPOOL_FILE: &str = "hooks.jsonl";
/// Extension of a file taken for draining.
pub const DRAINING_EXT: &str = "draining";

/// One spooled payload: an event as the stream would carry it, or a payload that was not
/// an event at all (never its content: only its size and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpoolRecord {
    Event {
        id: String,
        /// Platform (`claude_code`, `cursor`).
        p: String,
        /// Kind (`hook`, `statusline`).
        k: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s: Option<String>,
        t: i64,
        /// The hook event name.
        src: String,
        /// The payload, privacy rules applied.
        d: String,
    },
    Bad {
        /// Why the payload is not an event.
        bad: String,
        /// `hook:claude`, `statusline`, ...
        src: String,
        bytes: u64,
        at: i64,
    },
}

impl SpoolRecord {
    /// The event this record carries, or the dead letter it stands for (a payload that was
    /// not an event, or an event of a platform this binary does not know).
    pub fn to_event(&self) -> Result<Event, DeadLetter> {
        match self {
            SpoolRecord::Event {
                id,
                p,
                k,
                s,
                t,
                src,
                d,
            } => match Platform::parse(p) {
                Some(platform) => Ok(Event {
                    id: id.clone(),
                    platform,
                    kind: k.clone(),
                    session_id: s.clone(),
                    timestamp_ms: Some(*t),
                    source: Source::Hook {
                        event: src.clone(),
                        received_at: *t,
                    },
                    payload: d.clone(),
                }),
                None => Err(DeadLetter {
                    stage: "hook",
                    reason: format!("spooled event of unknown platform '{p}'"),
                    source: src.clone(),
                    offset: 0,
                }),
            },
            SpoolRecord::Bad {
                bad, src, bytes, ..
            } => Err(DeadLetter {
                stage: "hook",
                reason: bad.clone(),
                source: src.clone(),
                offset: *bytes,
            }),
        }
    }
}

/// Appends one record to the spool in `dir` (created with mode 0700 when missing),
/// durably: the line is on disk when this returns.
///
/// # Errors
/// When the directory or file cannot be created, locked or written.
pub fn append(dir: &Path, rec: &SpoolRecord) -> io::Result<()> {
    let mut line = serde_json::to_vec(rec).map_err(io::Error::other)?;
    line.push(b'\n');
    create_private_dir(dir)?;
    let path = dir.join(SPOOL_FILE);
    // The drainer may move the file between our open and our lock: retry on the new one.
    for _ in 0..50 {
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path)?;
        f.lock()?;
        if same_file(&f, &path)? {
            f.write_all(&line)?;
            f.sync_data()?;
            return Ok(());
        }
    }
    Err(io::Error::other(
        "the spool file kept moving while appending",
    ))
}

/// Moves the spool file (if any, and not empty) aside for draining and returns every file
/// waiting to be drained, oldest first — including those a drainer that died left behind.
///
/// # Errors
/// When the directory cannot be read or the file cannot be locked or renamed.
pub fn take(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let path = dir.join(SPOOL_FILE);
    match OpenOptions::new().append(true).open(&path) {
        Ok(f) => {
            f.lock()?;
            if f.metadata()?.len() > 0 && same_file(&f, &path)? {
                let unique = format!(
                    "hooks.{}.{}.{DRAINING_EXT}",
                    chrono::Utc::now().timestamp_micros(),
                    std::process::id()
                );
                fs::rename(&path, dir.join(unique))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    waiting(dir)
}

/// The files taken for draining and not yet drained, oldest first.
///
/// # Errors
/// When the directory cannot be read.
pub fn waiting(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_draining(p))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    out.sort();
    Ok(out)
}

/// Whether `p` is a spool file (waiting or being drained).
pub fn is_spool_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()) == Some(SPOOL_FILE) || is_draining(p)
}

fn is_draining(p: &Path) -> bool {
    p.extension().and_then(|x| x.to_str()) == Some(DRAINING_EXT)
        && p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("hooks."))
}

/// Bytes waiting in the spool (both the live file and files taken for draining).
pub fn pending_bytes(dir: &Path) -> u64 {
    let mut n = fs::metadata(dir.join(SPOOL_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    for p in waiting(dir).unwrap_or_default() {
        n += fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    n
}

/// Parses the lines of a drained file; a line that does not parse (a torn write of a
/// process killed mid-append) is returned as `Err` with its byte offset.
pub fn parse(bytes: &[u8]) -> Vec<Result<SpoolRecord, u64>> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        if !body.iter().all(u8::is_ascii_whitespace) {
            out.push(serde_json::from_slice(body).map_err(|_| offset));
        }
        offset += line.len() as u64;
    }
    out
}

#[cfg(unix)]
fn same_file(f: &File, path: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let a = f.metadata()?;
    match fs::metadata(path) {
        Ok(b) => Ok(a.dev() == b.dev() && a.ino() == b.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn same_file(f: &File, path: &Path) -> io::Result<bool> {
    // Without inode numbers: the path must exist and have the locked file's length.
    let a = f.metadata()?;
    match fs::metadata(path) {
        Ok(b) => Ok(a.len() == b.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> SpoolRecord {
        SpoolRecord::Event {
            id: format!("hk:{i}"),
            p: "claude_code".into(),
            k: "hook".into(),
            s: Some("s".into()),
            t: 1,
            src: "Stop".into(),
            d: "{}".into(),
        }
    }

    #[test]
    fn appended_records_are_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        append(&spool, &ev(1)).unwrap();
        append(
            &spool,
            &SpoolRecord::Bad {
                bad: "not JSON".into(),
                src: "hook:claude".into(),
                bytes: 3,
                at: 2,
            },
        )
        .unwrap();
        let files = take(&spool).unwrap();
        assert_eq!(files.len(), 1);
        let recs = parse(&fs::read(&files[0]).unwrap());
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0], Ok(ev(1)));
        assert!(matches!(recs[1], Ok(SpoolRecord::Bad { bytes: 3, .. })));
        // Appends after the take go to a new file; the taken one is still waiting.
        append(&spool, &ev(2)).unwrap();
        assert_eq!(take(&spool).unwrap().len(), 2);
        assert!(pending_bytes(&spool) > 0);
    }

    #[test]
    fn torn_lines_are_reported_with_their_offset() {
        let mut bytes = serde_json::to_vec(&ev(1)).unwrap();
        bytes.push(b'\n');
        let at = bytes.len() as u64;
        bytes.extend_from_slice(b"{\"id\":\"hk:2\",\"p\":");
        let recs = parse(&bytes);
        assert_eq!(recs, vec![Ok(ev(1)), Err(at)]);
    }

    #[test]
    fn concurrent_writers_lose_nothing_while_draining() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().to_path_buf();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let spool = spool.clone();
                std::thread::spawn(move || {
                    for i in 0..50 {
                        append(&spool, &ev(w * 1000 + i)).unwrap();
                    }
                })
            })
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut drained = std::collections::BTreeSet::new();
        let mut collect = |seen: &mut std::collections::BTreeSet<String>| {
            for f in take(&spool).unwrap() {
                if drained.insert(f.clone()) {
                    for r in parse(&fs::read(&f).unwrap()) {
                        if let Ok(SpoolRecord::Event { id, .. }) = r {
                            assert!(seen.insert(id), "a record was drained twice");
                        }
                    }
                }
            }
        };
        while writers.iter().any(|w| !w.is_finished()) {
            collect(&mut seen);
        }
        for w in writers {
            w.join().unwrap();
        }
        collect(&mut seen);
        assert_eq!(seen.len(), 400);
    }
}

//! Editing the config files of coding clients (`blueplane install claude`, `install cursor`):
//! merge, backup, diff, undo.
//!
//! A client module (`claude.rs`; `cursor.rs` for `~/.cursor/mcp.json` and `hooks.json`)
//! turns "register blueplane" or "unregister it" into [`FileChange`]s: each
//! the text of one file before and after, computed with [`json_text`], which edits JSON as
//! text so that everything else in the file keeps its bytes. This module then shows them
//! ([`unified_diff`] for `--dry-run`) or applies them ([`apply`]): a timestamped backup of
//! every file it changes, an atomic write (temp file + rename in the same directory) that
//! keeps the file's permissions, or a removal of a file it had created. What an install
//! added is remembered in a small [`record::Record`] under `$BLUEPLANE_HOME/install/`, so that
//! uninstall removes exactly that and puts back what it replaced.
//!
//! Invariants: a file that is not valid JSON is an error and is never written; a change
//! that leaves a file's text as it was writes nothing (a second install is a no-op, mtime
//! included); install followed by uninstall gives back the original bytes.
//!
//! Called by `cli` only; uses `hook::events` for the list of events to register.

pub mod claude;
pub mod cursor;
pub mod json_text;
pub mod record;
pub mod shell;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {message}; fix the file by hand (it was left untouched)")]
    Invalid { path: String, message: String },
    #[error("{path}: {message}")]
    Conflict { path: String, message: String },
    #[error(
        "CLAUDE_CONFIG_DIR names several directories ({0}); run the install once per directory, with CLAUDE_CONFIG_DIR set to that one"
    )]
    SeveralConfigDirs(String),
    #[error("no home directory found: set HOME or CLAUDE_CONFIG_DIR")]
    NoHome,
    #[error("no home directory found: set HOME or CURSOR_HOME")]
    NoCursorHome,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.display().to_string();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

/// One file's planned change: its text before (None = absent) and after (None = remove it).
#[derive(Debug, Clone)]
pub struct FileChange {
    pub path: PathBuf,
    pub before: Option<String>,
    pub after: Option<String>,
    /// What changes, one short phrase each ("added MCP server blueplane").
    pub notes: Vec<String>,
    /// Permissions for a file this change creates (an existing file keeps its own).
    pub new_mode: u32,
}

impl FileChange {
    pub fn is_noop(&self) -> bool {
        self.before == self.after
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Changed,
    Removed,
    Unchanged,
}

/// What [`apply`] did (or, in a dry run, would do) to one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub action: Action,
    pub notes: Vec<String>,
    pub backup: Option<PathBuf>,
    /// The unified diff of the change (dry runs only).
    pub diff: Option<String>,
}

/// Reads a config file: `Ok(None)` when it does not exist.
///
/// # Errors
/// Unreadable files (permissions, not UTF-8).
pub fn read_text(path: &Path) -> Result<Option<String>, InstallError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| InstallError::Invalid {
                path: path.display().to_string(),
                message: "not UTF-8 text".into(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", path)(e)),
    }
}

/// A unified diff of `before` → `after` with `path` in the headers (`/dev/null` for a side
/// that does not exist).
pub fn unified_diff(path: &Path, before: Option<&str>, after: Option<&str>) -> String {
    let name = path.display().to_string();
    let a = if before.is_some() {
        name.as_str()
    } else {
        "/dev/null"
    };
    let b = if after.is_some() {
        name.as_str()
    } else {
        "/dev/null"
    };
    similar::TextDiff::from_lines(before.unwrap_or(""), after.unwrap_or(""))
        .unified_diff()
        .context_radius(3)
        .header(a, b)
        .to_string()
}

/// Applies `changes` (or only describes them when `dry_run`): backup, atomic write or
/// removal. Stops at the first failure; files changed before it stay changed (each has its
/// backup).
///
/// # Errors
/// I/O failures, with the path.
pub fn apply(changes: &[FileChange], dry_run: bool) -> Result<Vec<FileReport>, InstallError> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let action = match (&c.before, &c.after) {
            _ if c.is_noop() => Action::Unchanged,
            (None, Some(_)) => Action::Created,
            (Some(_), None) => Action::Removed,
            _ => Action::Changed,
        };
        let mut report = FileReport {
            path: c.path.clone(),
            action,
            notes: c.notes.clone(),
            backup: None,
            diff: None,
        };
        if action != Action::Unchanged {
            if dry_run {
                report.diff = Some(unified_diff(
                    &c.path,
                    c.before.as_deref(),
                    c.after.as_deref(),
                ));
            } else {
                let real = real_path(&c.path);
                if c.before.is_some() {
                    report.backup = Some(backup(&real)?);
                }
                match &c.after {
                    Some(text) => write_atomic(&real, text, c.new_mode)?,
                    None => std::fs::remove_file(&real).map_err(io_err("remove", &real))?,
                }
            }
        }
        out.push(report);
    }
    Ok(out)
}

/// The file a path names, through symlinks (a dotfiles manager's link stays a link).
fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Copies `path` to `<path>.blueplane-backup-YYYYMMDDTHHMMSS` (local time; `-2`, `-3`, ...
/// when that name is taken), keeping its permissions.
fn backup(path: &Path) -> Result<PathBuf, InstallError> {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    let base = format!(
        "{}.blueplane-backup-{stamp}",
        path.file_name()
            .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned())
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let target = dir.join(name);
        // create_new: never overwrite an older backup, even in a race.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(mut f) => {
                let bytes = std::fs::read(path).map_err(io_err("read", path))?;
                f.write_all(&bytes)
                    .and_then(|()| f.sync_all())
                    .map_err(io_err("write", &target))?;
                if let Ok(m) = std::fs::metadata(path) {
                    let _ = std::fs::set_permissions(&target, m.permissions());
                }
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create", &target)(e)),
        }
    }
    Err(InstallError::Conflict {
        path: path.display().to_string(),
        message: "too many backups in one second".into(),
    })
}

/// Writes `text` to `path` through a temp file in the same directory and a rename, so a
/// reader (Claude Code) sees the old file or the new one, never half of one. An existing
/// file's permissions are kept; a new file gets `new_mode`; missing directories are created.
///
/// # Errors
/// I/O failures, with the path.
pub fn write_atomic(path: &Path, text: &str, new_mode: u32) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let perms = match std::fs::metadata(path) {
        Ok(m) => m.permissions(),
        Err(_) => std::fs::Permissions::from_mode(new_mode),
    };
    let name = path
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.blueplane-tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(perms)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", path)(e));
    }
    // The rename is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn apply_backs_up_writes_atomically_and_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("settings.json");
        std::fs::write(&p, "{}").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let change = FileChange {
            path: p.clone(),
            before: Some("{}".into()),
            after: Some("{\"a\": 1}".into()),
            notes: vec![],
            new_mode: 0o600,
        };
        let r = apply(std::slice::from_ref(&change), false).unwrap();
        assert_eq!(r[0].action, Action::Changed);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"a\": 1}");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let b = r[0].backup.clone().unwrap();
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "{}");
        assert!(
            b.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("settings.json.blueplane-backup-")
        );
        // A second backup in the same second gets its own name.
        let r2 = apply(&[change], false).unwrap();
        assert_ne!(r2[0].backup, r[0].backup);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("tmp")), "{names:?}");
    }

    #[test]
    fn dry_run_writes_nothing_and_diffs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new.json");
        let change = FileChange {
            path: p.clone(),
            before: None,
            after: Some("{\n  \"a\": 1\n}\n".into()),
            notes: vec![],
            new_mode: 0o600,
        };
        let r = apply(&[change], true).unwrap();
        assert!(!p.exists());
        let d = r[0].diff.as_deref().unwrap();
        assert!(d.starts_with("--- /dev/null\n+++ "), "{d}");
        assert!(d.contains("+  \"a\": 1\n"), "{d}");
    }

    #[test]
    fn symlinked_config_stays_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        let link = dir.path().join("settings.json");
        std::fs::write(&real, "{}").unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let change = FileChange {
            path: link.clone(),
            before: Some("{}".into()),
            after: Some("[]".into()),
            notes: vec![],
            new_mode: 0o600,
        };
        apply(&[change], false).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "[]");
    }
}

//! What an install added to each file, kept in `$BLUEPLANE_HOME/install/<client>.json`, so
//! that uninstall removes exactly that: the containers it created (and may remove once they
//! are empty again), whether it created the file, and the exact text of a status line it
//! replaced (put back as it was), and the URL of an MCP server entry it wrote in the URL
//! form.
//!
//! Without a record (another `BLUEPLANE_HOME`, a deleted record) uninstall still removes
//! every entry it recognises as blueplane's, and the containers that removal empties.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InstallError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// By the absolute path of the config file.
    #[serde(default)]
    pub files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file did not exist before the install.
    #[serde(default)]
    pub created_file: bool,
    /// Containers the install created, as key paths joined with `/` (`/hooks/Stop`).
    #[serde(default)]
    pub created: Vec<String>,
    /// The exact text of the status line the install replaced (`--statusline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status_line: Option<String>,
    /// The URL of the MCP server's URL form, when the install wrote that form (`--http`):
    /// how a later install or uninstall knows the entry is ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_url: Option<String>,
}

impl FileRecord {
    pub fn created(&self, path: &str) -> bool {
        self.created.iter().any(|p| p == path)
    }

    pub fn add_created(&mut self, path: String) {
        if !self.created(&path) {
            self.created.push(path);
        }
    }
}

/// `$BLUEPLANE_HOME/install/<client>.json`.
pub fn path(home: &Path, client: &str) -> PathBuf {
    home.join("install").join(format!("{client}.json"))
}

impl Record {
    /// Loads the record; a missing file is an empty record.
    ///
    /// # Errors
    /// An unreadable or invalid record file.
    pub fn load(path: &Path) -> Result<Record, InstallError> {
        match super::read_text(path)? {
            None => Ok(Record::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| InstallError::Invalid {
                path: path.display().to_string(),
                message: format!("not a blueplane install record ({e})"),
            }),
        }
    }

    /// Writes the record (atomically), or removes it when it holds nothing.
    ///
    /// # Errors
    /// I/O failures.
    pub fn save(&self, path: &Path) -> Result<(), InstallError> {
        if self.files.is_empty() {
            return match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(InstallError::Io {
                    action: "remove",
                    path: path.display().to_string(),
                    source: e,
                }),
            };
        }
        let mut text = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        super::write_atomic(path, &text, 0o600)
    }
}

//! Configuration: built-in defaults, then `$BLUEPLANE_HOME/config.toml`, then environment
//! variables (env wins over the file).
//!
//! ```toml
//! [privacy]
//! mode = "standard"          # metadata | standard | full
//! [redis]
//! url = "redis://127.0.0.1:6379/0"   # unset: a managed redis-server under $BLUEPLANE_HOME/redis
//! [capture]
//! claude_config_dir = "~/.claude"     # same meaning as CLAUDE_CONFIG_DIR
//! cursor_data_dir = "~/.config/Cursor" # same meaning as CURSOR_DATA_DIR (default per OS)
//! cursor_home = "~/.cursor"           # same meaning as CURSOR_HOME (agent CLI transcripts)
//! rescan_seconds = 5
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::privacy::PrivacyMode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    privacy: RawPrivacy,
    #[serde(default)]
    redis: RawRedis,
    #[serde(default)]
    capture: RawCapture,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    mode: Option<PrivacyMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    claude_config_dir: Option<String>,
    cursor_data_dir: Option<String>,
    cursor_home: Option<String>,
    rescan_seconds: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}; fix or remove the file")]
    Parse { path: String, message: String },
    #[error("no home directory found: set BLUEPLANE_HOME")]
    NoHome,
}

/// The validated configuration, built once at start-up and passed down.
#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    pub redis_url: Option<String>,
    pub privacy: PrivacyMode,
    pub claude_projects: Vec<PathBuf>,
    /// Cursor's data directory (`CURSOR_DATA_DIR`, else the OS default), when known.
    pub cursor_data_dir: Option<PathBuf>,
    /// Cursor's per-user directory (`CURSOR_HOME`, else `[capture] cursor_home`, else
    /// `~/.cursor`): agent CLI transcripts, `hooks.json`, `mcp.json`. None without a home.
    pub cursor_home: Option<PathBuf>,
    pub rescan: Duration,
}

impl Config {
    /// Loads the configuration from the environment and `$BLUEPLANE_HOME/config.toml`.
    ///
    /// # Errors
    /// An unreadable or invalid config file, or no home directory.
    pub fn load() -> Result<Config, ConfigError> {
        let user_home = std::env::var_os("HOME").map(PathBuf::from);
        let home = home_dir().ok_or(ConfigError::NoHome)?;
        let raw = read_file(&home.join("config.toml"))?;
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let claude_dir = env("CLAUDE_CONFIG_DIR").or(raw.capture.claude_config_dir);
        let cursor_dir = env("CURSOR_DATA_DIR").or(raw.capture.cursor_data_dir);
        let cursor_home = env("CURSOR_HOME")
            .or(raw.capture.cursor_home)
            .map(|s| expand_home(&s, user_home.as_deref()))
            .or_else(|| user_home.as_ref().map(|h| h.join(".cursor")));
        let privacy = match env("BLUEPLANE_PRIVACY_MODE") {
            Some(m) => match m.as_str() {
                "metadata" => PrivacyMode::Metadata,
                "standard" => PrivacyMode::Standard,
                "full" => PrivacyMode::Full,
                other => {
                    return Err(ConfigError::Parse {
                        path: "BLUEPLANE_PRIVACY_MODE".into(),
                        message: format!("unknown mode '{other}' (use metadata, standard or full)"),
                    });
                }
            },
            None => raw.privacy.mode.unwrap_or_default(),
        };
        Ok(Config {
            claude_projects: crate::capture::claude_code::projects_dirs(
                claude_dir.as_deref(),
                user_home.as_deref(),
            ),
            cursor_data_dir: crate::capture::cursor_db::data_dir(
                cursor_dir.as_deref(),
                user_home.as_deref(),
            ),
            cursor_home,
            redis_url: env("REDIS_URL").or(raw.redis.url),
            privacy,
            rescan: Duration::from_secs(raw.capture.rescan_seconds.unwrap_or(5).max(1)),
            home,
        })
    }

    /// The `projects` directories whose agent transcripts capture reads.
    pub fn cursor_projects(&self) -> Vec<PathBuf> {
        self.cursor_home
            .iter()
            .map(|h| h.join("projects"))
            .collect()
    }

    pub fn db_path(&self) -> PathBuf {
        self.home.join("telemetry.db")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.home.join("logs")
    }

    /// Where the Cursor capture sources read.
    pub fn cursor_dirs(&self) -> crate::capture::CursorDirs {
        crate::capture::CursorDirs {
            data_dir: self.cursor_data_dir.clone(),
            projects: self.cursor_projects(),
        }
    }

    /// Where hook and status-line payloads wait when Redis cannot take them
    /// (`*.jsonl`, drained by the capture lease holder; see `hook::spool`).
    pub fn spool_dir(&self) -> PathBuf {
        self.home.join("spool")
    }
}

/// `$BLUEPLANE_HOME`, else `~/.blueplane`; None without either.
pub fn home_dir() -> Option<PathBuf> {
    match std::env::var_os("BLUEPLANE_HOME").filter(|h| !h.is_empty()) {
        Some(h) => Some(PathBuf::from(h)),
        None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".blueplane")),
    }
}

/// `~/x` and `~` against the user's home; anything else as it is.
fn expand_home(s: &str, home: Option<&Path>) -> PathBuf {
    match (s.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if s == "~" => home.map_or_else(|| PathBuf::from(s), Path::to_path_buf),
        _ => PathBuf::from(s),
    }
}

fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(s) => toml::from_str(&s).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.message().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RawConfig::default()),
        Err(e) => Err(ConfigError::Read {
            path: path.display().to_string(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parses_and_rejects_unknown_keys() {
        let raw: RawConfig =
            toml::from_str("[privacy]\nmode = \"metadata\"\n[capture]\nrescan_seconds = 2\n")
                .unwrap();
        assert_eq!(raw.privacy.mode, Some(PrivacyMode::Metadata));
        assert!(toml::from_str::<RawConfig>("[privacy]\nmood = \"x\"\n").is_err());
        let raw: RawConfig = toml::from_str("[capture]\ncursor_home = \"~/c\"\n").unwrap();
        assert_eq!(raw.capture.cursor_home.as_deref(), Some("~/c"));
        assert_eq!(
            expand_home("~/c", Some(Path::new("/h"))),
            PathBuf::from("/h/c")
        );
    }
}

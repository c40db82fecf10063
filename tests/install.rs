//! `blueplane install claude`, through the real binary, in a temporary HOME and
//! CLAUDE_CONFIG_DIR that already hold other settings: other keys, another MCP server,
//! another tool's hooks on PreToolUse and Stop, and a status line. Everything that was there
//! survives byte for byte; a second install changes nothing (not even the mtime); uninstall
//! gives back the original bytes; `--dry-run` writes nothing; `--statusline` replaces and
//! uninstall restores; `--project` writes `.mcp.json` and `.claude/settings.json`; a file
//! that is not JSON is an error and stays as it was. `--http` (a URL or the ADDR of `serve
//! --http`) writes the URL form of
//! `claude mcp add --transport http` (a token only by `${BLUEPLANE_TOKEN}` reference) and
//! switches to and from the command form. With the real Claude Code CLI
//! (`BLUEPLANE_TEST_CLAUDE`), `claude mcp list` shows the registered server connected, over
//! stdio and over HTTP.

mod support;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const CLAUDE_JSON: &str = r#"{
  "numStartups": 3,
  "installMethod": "npm",
  "projects": {
    "/home/u/app": {
      "allowedTools": [],
      "hasTrustDialogAccepted": true
    }
  },
  "mcpServers": {
    "other": {
      "type": "stdio",
      "command": "/usr/local/bin/other-mcp",
      "args": [
        "--stdio"
      ],
      "env": {}
    }
  },
  "userID": "abc"
}"#;

const SETTINGS: &str = r#"{
    "model": "opus",
    "permissions": {"allow": ["Bash(ls:*)"], "deny": []},
    "hooks": {
        "PreToolUse": [
            {
                "matcher": "Bash|Edit",
                "hooks": [
                    {"type": "command", "command": "/opt/guard/bin/guard check", "timeout": 10}
                ]
            }
        ],
        "Stop": [
            {
                "hooks": [{"type": "command", "command": "notify-send done", "async": true}]
            }
        ]
    },
    "statusLine": {"type": "command", "command": "~/.claude/my-status.sh", "padding": 0},
    "env": {"FOO": "1.50"}
}
"#;

/// A temporary HOME with a CLAUDE_CONFIG_DIR and a BLUEPLANE_HOME inside.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(h.config()).expect("mkdir");
        h
    }

    /// With the pre-existing files.
    fn seeded() -> Home {
        let h = Home::new();
        std::fs::write(h.claude_json(), CLAUDE_JSON).expect("write");
        std::fs::write(h.settings(), SETTINGS).expect("write");
        h
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("claude-config")
    }

    fn bp_home(&self) -> PathBuf {
        self.dir.path().join("bp")
    }

    fn claude_json(&self) -> PathBuf {
        self.config().join(".claude.json")
    }

    fn settings(&self) -> PathBuf {
        self.config().join("settings.json")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(support::BIN);
        c.args(args)
            .env("HOME", self.dir.path())
            .env("CLAUDE_CONFIG_DIR", self.config())
            .env("BLUEPLANE_HOME", self.bp_home())
            .env_remove("REDIS_URL")
            .env_remove("BLUEPLANE_PRIVACY_MODE")
            .env_remove("BLUEPLANE_TOKEN")
            .env("BLUEPLANE_LOG", "warn");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run blueplane");
        assert!(
            out.status.success(),
            "blueplane {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        out
    }

    /// Every file in the config dir: name -> bytes.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(self.config())
            .expect("read dir")
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        v.sort();
        v
    }
}

fn exe() -> String {
    std::fs::canonicalize(support::BIN)
        .expect("canonical binary path")
        .display()
        .to_string()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("valid JSON")
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("mtime")
}

/// Every line of `orig` is still in `new`, in order and unchanged (but for the comma a
/// following insertion adds): the install only inserted text.
fn only_insertions(orig: &str, new: &str) {
    let mut new_lines = new.lines();
    for line in orig.lines() {
        let with_comma = format!("{line},");
        let found = new_lines.any(|n| n == line || n == with_comma);
        assert!(
            found,
            "original line {line:?} is gone or changed in:\n{new}"
        );
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn hook_command(home: &Home) -> String {
    format!(
        "env BLUEPLANE_HOME={} {} hook claude",
        home.bp_home().display(),
        exe()
    )
}

fn installed_events() -> Vec<&'static str> {
    blueplane::hook::events::CLAUDE_EVENTS
        .iter()
        .copied()
        .filter(|e| !blueplane::hook::events::CLAUDE_EVENTS_NOT_INSTALLED.contains(e))
        .collect()
}

#[test]
fn install_merges_a_second_install_is_a_no_op_and_uninstall_restores_the_bytes() {
    let home = Home::seeded();
    let out = home.run(&["install", "claude"]);
    let text = stdout(&out);
    assert!(text.contains("added MCP server blueplane"), "{text}");
    assert!(text.contains("kept your status line"), "{text}");
    assert!(text.contains("restart Claude Code"), "{text}");

    // Only insertions: every original byte is still there.
    let claude_now = std::fs::read_to_string(home.claude_json()).expect("read");
    let settings_now = std::fs::read_to_string(home.settings()).expect("read");
    only_insertions(CLAUDE_JSON, &claude_now);
    only_insertions(SETTINGS, &settings_now);

    // The MCP entry, as `claude mcp add --scope user` writes it, beside the other server.
    let c = read_json(&home.claude_json());
    let orig_c: Value = serde_json::from_str(CLAUDE_JSON).unwrap();
    assert_eq!(c["mcpServers"]["other"], orig_c["mcpServers"]["other"]);
    assert_eq!(c["projects"], orig_c["projects"]);
    assert_eq!(
        c["mcpServers"]["blueplane"],
        json!({"type": "stdio", "command": exe(), "args": ["serve"],
               "env": {"BLUEPLANE_HOME": home.bp_home().display().to_string()}})
    );
    assert!(
        claude_now.contains("\"blueplane\": {\n      \"type\": \"stdio\",\n      \"command\": "),
        "key order and 2-space layout of claude mcp add: {claude_now}"
    );

    // Hooks: ours after the other tool's, on every installed event; the status line kept.
    let s = read_json(&home.settings());
    let orig_s: Value = serde_json::from_str(SETTINGS).unwrap();
    assert_eq!(
        s["hooks"]["PreToolUse"][0],
        orig_s["hooks"]["PreToolUse"][0]
    );
    assert_eq!(s["hooks"]["Stop"][0], orig_s["hooks"]["Stop"][0]);
    let ours =
        json!({"hooks": [{"type": "command", "command": hook_command(&home), "timeout": 5}]});
    for event in installed_events() {
        let groups = s["hooks"][event]
            .as_array()
            .unwrap_or_else(|| panic!("{event} missing"));
        assert_eq!(
            groups.iter().filter(|g| **g == ours).count(),
            1,
            "{event}: {groups:?}"
        );
    }
    assert!(s["hooks"].get("WorktreeCreate").is_none());
    assert_eq!(s["statusLine"], orig_s["statusLine"]);
    assert_eq!(s["env"], orig_s["env"]);
    assert!(settings_now.contains("\"FOO\": \"1.50\""));

    // A backup of the original of each changed file.
    let backups: Vec<_> = home
        .files()
        .into_iter()
        .filter(|(n, _)| n.starts_with("settings.json.blueplane-backup-"))
        .collect();
    assert_eq!(
        backups.len(),
        1,
        "{:?}",
        home.files().iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert_eq!(backups[0].1, SETTINGS.as_bytes());

    // A second install: nothing written, and it says so.
    let before = home.files();
    let (m1, m2) = (mtime(&home.claude_json()), mtime(&home.settings()));
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = home.run(&["install", "claude"]);
    assert!(
        stdout(&out).contains("already installed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(home.files(), before);
    assert_eq!(mtime(&home.claude_json()), m1);
    assert_eq!(mtime(&home.settings()), m2);
    let j: Value =
        serde_json::from_slice(&home.run(&["install", "claude", "--json"]).stdout).unwrap();
    assert_eq!(j["changed"], false, "{j}");

    // Uninstall: the original bytes, exactly.
    let out = home.run(&["install", "claude", "--uninstall"]);
    assert!(
        stdout(&out).contains("removed 32 hooks") || stdout(&out).contains("removed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        CLAUDE_JSON
    );
    assert_eq!(std::fs::read_to_string(home.settings()).unwrap(), SETTINGS);
    assert!(!home.bp_home().join("install/claude.json").exists());
    // And uninstalling again finds nothing of ours.
    let out = home.run(&["install", "claude", "--uninstall"]);
    assert!(stdout(&out).contains("not installed"), "{}", stdout(&out));
}

#[test]
fn install_into_an_empty_config_dir_and_uninstall_leaves_it_empty() {
    let home = Home::new();
    home.run(&["install", "claude"]);
    let c = read_json(&home.claude_json());
    assert_eq!(c["mcpServers"]["blueplane"]["command"], exe());
    let s = read_json(&home.settings());
    assert_eq!(
        s["statusLine"]["command"],
        format!(
            "env BLUEPLANE_HOME={} {} statusline",
            home.bp_home().display(),
            exe()
        )
    );
    assert_eq!(
        s["hooks"].as_object().unwrap().len(),
        installed_events().len()
    );
    // .claude.json keeps account state: owner only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(home.claude_json())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    home.run(&["install", "claude", "--uninstall"]);
    assert!(!home.claude_json().exists());
    assert!(!home.settings().exists());
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let home = Home::new();
    std::fs::write(home.settings(), SETTINGS).unwrap();
    let before = home.files();
    let m = mtime(&home.settings());
    let out = home.run(&["install", "claude", "--dry-run"]);
    let text = stdout(&out);
    assert!(text.contains("--- /dev/null\n"), "{text}");
    assert!(
        text.contains(&format!("+++ {}\n", home.claude_json().display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("--- {}\n", home.settings().display())),
        "{text}"
    );
    assert!(text.contains("\n@@ "), "{text}");
    let added = format!("\"command\": \"{}\",", hook_command(&home));
    assert!(
        text.lines()
            .any(|l| l.starts_with('+') && l.trim_end().ends_with(&added)),
        "{text}"
    );
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(home.files(), before);
    assert_eq!(mtime(&home.settings()), m);
    assert!(!home.bp_home().exists(), "a dry run writes no record");
    // --dry-run --uninstall on an installed home writes nothing either.
    home.run(&["install", "claude"]);
    let installed = home.files();
    let out = home.run(&["install", "claude", "--uninstall", "--dry-run"]);
    assert!(
        stdout(&out).contains("would be removed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(home.files(), installed);
}

#[test]
fn statusline_flag_replaces_and_uninstall_puts_the_old_one_back() {
    let home = Home::seeded();
    let out = home.run(&["install", "claude", "--statusline"]);
    assert!(
        stdout(&out).contains("replaced the status line"),
        "{}",
        stdout(&out)
    );
    let s = read_json(&home.settings());
    assert_eq!(
        s["statusLine"],
        json!({"type": "command", "command": format!("env BLUEPLANE_HOME={} {} statusline", home.bp_home().display(), exe())})
    );
    // Installing again (with or without the flag) keeps ours and the remembered one.
    home.run(&["install", "claude"]);
    home.run(&["install", "claude", "--statusline"]);
    home.run(&["install", "claude", "--uninstall"]);
    assert_eq!(std::fs::read_to_string(home.settings()).unwrap(), SETTINGS);
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        CLAUDE_JSON
    );
}

#[test]
fn stale_paths_are_pointed_at_this_binary() {
    let home = Home::new();
    let old = r#"{
  "hooks": {
    "Stop": [
      {
        "hooks": [
          {
            "type": "command",
            "command": "/old/place/blueplane hook claude",
            "timeout": 5
          }
        ]
      }
    ]
  },
  "statusLine": {
    "type": "command",
    "command": "/old/place/blueplane statusline"
  }
}"#;
    std::fs::write(home.settings(), old).unwrap();
    let out = home.run(&["install", "claude"]);
    assert!(
        stdout(&out).contains("pointed 1 hooks at this binary"),
        "{}",
        stdout(&out)
    );
    let s = read_json(&home.settings());
    assert_eq!(s["hooks"]["Stop"].as_array().unwrap().len(), 1);
    assert_eq!(
        s["hooks"]["Stop"][0]["hooks"][0]["command"],
        hook_command(&home)
    );
    assert!(
        s["statusLine"]["command"]
            .as_str()
            .unwrap()
            .contains(&exe())
    );
    // Uninstall removes them too (they are blueplane's, whatever the path).
    home.run(&["install", "claude", "--uninstall"]);
    let s = read_json(&home.settings());
    assert!(s.get("statusLine").is_none(), "{s}");
    assert!(
        s["hooks"].get("Stop").is_none() || s["hooks"]["Stop"] == json!([]),
        "{s}"
    );
}

#[test]
fn project_scope_writes_mcp_json_and_the_project_settings() {
    let home = Home::seeded();
    let project = home.dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    let user_before = home.files();
    let p = project.display().to_string();
    let out = home.run(&["install", "claude", "--project", &p]);
    assert!(
        stdout(&out).contains("approve 'blueplane'"),
        "{}",
        stdout(&out)
    );
    let m = read_json(&project.join(".mcp.json"));
    assert_eq!(m["mcpServers"]["blueplane"]["command"], exe());
    assert_eq!(m["mcpServers"]["blueplane"]["args"], json!(["serve"]));
    let s = read_json(&project.join(".claude/settings.json"));
    assert_eq!(
        s["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        hook_command(&home)
    );
    assert_eq!(
        home.files(),
        user_before,
        "the user's files are not touched"
    );
    home.run(&["install", "claude", "--project", &p, "--uninstall"]);
    assert!(!project.join(".mcp.json").exists());
    assert!(!project.join(".claude/settings.json").exists());
    assert_eq!(home.files(), user_before);
}

#[test]
fn a_settings_file_that_is_not_json_is_an_error_and_nothing_is_written() {
    let home = Home::new();
    let bad = "{\n  \"model\": \"opus\",\n  // a comment\n}\n";
    std::fs::write(home.settings(), bad).unwrap();
    let out = home.cmd(&["install", "claude"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("settings.json is not valid JSON"), "{err}");
    assert!(err.contains("left untouched"), "{err}");
    assert_eq!(std::fs::read_to_string(home.settings()).unwrap(), bad);
    assert!(
        !home.claude_json().exists(),
        "no file changes when one is bad"
    );
    assert_eq!(home.files().len(), 1);
    // Same for uninstall.
    let out = home
        .cmd(&["install", "claude", "--uninstall"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(home.settings()).unwrap(), bad);
}

#[test]
fn a_foreign_server_named_blueplane_is_not_overwritten() {
    let home = Home::new();
    let text = "{\n  \"mcpServers\": {\n    \"blueplane\": {\n      \"command\": \"npx\",\n      \"args\": [\"something\"]\n    }\n  }\n}";
    std::fs::write(home.claude_json(), text).unwrap();
    let out = home.cmd(&["install", "claude"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runs 'npx'") && err.contains("claude mcp remove blueplane"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(home.claude_json()).unwrap(), text);
}

/// The real Claude Code CLI (`BLUEPLANE_TEST_CLAUDE`), or None when the test is to be
/// skipped (an error under CI or `BLUEPLANE_REQUIRE_CLAUDE=1`).
fn real_claude() -> Option<std::ffi::OsString> {
    let Some(claude) = std::env::var_os("BLUEPLANE_TEST_CLAUDE").filter(|v| !v.is_empty()) else {
        let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
            || std::env::var("BLUEPLANE_REQUIRE_CLAUDE").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "BLUEPLANE_TEST_CLAUDE is not set: install Claude Code 2.1.328 (npm install --prefix DIR @anthropic-ai/claude-code@2.1.328) and set BLUEPLANE_TEST_CLAUDE=DIR/node_modules/.bin/claude (tools/test.sh does)"
        );
        eprintln!(
            "skipped: BLUEPLANE_TEST_CLAUDE is not set (the real Claude Code CLI is not installed)"
        );
        return None;
    };
    Some(claude)
}

/// `claude mcp list` in `home` (its HOME and CLAUDE_CONFIG_DIR, no other environment but
/// `env`): stdout and stderr.
fn claude_mcp_list(claude: &std::ffi::OsStr, home: &Home, env: &[(&str, &str)]) -> String {
    let tmp = home.dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new(claude);
    cmd.args(["mcp", "list"])
        .current_dir(home.dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.dir.path())
        .env("CLAUDE_CONFIG_DIR", home.config())
        .env("TMPDIR", &tmp)
        .env("CLAUDE_CODE_TMPDIR", &tmp)
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("ANTHROPIC_API_KEY", "dummy")
        .env("ANTHROPIC_BASE_URL", "http://127.0.0.1:9");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run claude mcp list");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The real Claude Code CLI reads what we wrote: `claude mcp list` starts `blueplane serve`
/// and reports it connected.
#[test]
fn claude_mcp_list_shows_blueplane_connected() {
    let Some(claude) = real_claude() else {
        return;
    };
    let redis = support::redis::TestRedis::start();
    let home = Home::new();
    let out = home
        .cmd(&["install", "claude"])
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read_json(&home.claude_json())["mcpServers"]["blueplane"]["env"]["REDIS_URL"],
        redis.url()
    );
    let text = claude_mcp_list(&claude, &home, &[]);
    let line = text
        .lines()
        .find(|l| l.starts_with("blueplane"))
        .unwrap_or_else(|| panic!("blueplane not listed by claude mcp list:\n{text}"));
    assert!(line.contains(&exe()), "{line}");
    assert!(line.contains("✔ Connected"), "not connected:\n{text}");
}

const HTTP_URL: &str = "http://127.0.0.1:7532/mcp";
const TOKEN: &str = "tok-9d3e7a1c5b";

/// CLAUDE_JSON with the URL form of `claude mcp add --scope user --transport http blueplane
/// <HTTP_URL>` added after the other server, byte for byte as that command lays it out.
fn claude_json_with_http() -> String {
    let at = "      \"env\": {}\n    }\n";
    assert!(CLAUDE_JSON.contains(at));
    CLAUDE_JSON.replace(
        at,
        &format!(
            "      \"env\": {{}}\n    }},\n    \"blueplane\": {{\n      \"type\": \"http\",\n      \"url\": \"{HTTP_URL}\"\n    }}\n"
        ),
    )
}

#[test]
fn http_form_is_written_byte_exact_switches_with_the_command_form_and_uninstall_restores() {
    let home = Home::seeded();
    let out = home.run(&["install", "claude", "--http"]);
    let text = stdout(&out);
    assert!(text.contains("added MCP server blueplane"), "{text}");
    assert!(
        text.contains("keep 'blueplane serve --http 127.0.0.1:7532' running"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        claude_json_with_http()
    );
    // The hooks and the status line stay commands.
    let s = read_json(&home.settings());
    assert_eq!(
        s["hooks"]["SessionStart"][0]["hooks"][0]["command"],
        hook_command(&home)
    );
    let after_http = home.files();

    // The same install again: nothing written.
    let (m1, m2) = (mtime(&home.claude_json()), mtime(&home.settings()));
    std::thread::sleep(Duration::from_millis(20));
    let out = home.run(&["install", "claude", "--http", HTTP_URL]);
    assert!(
        stdout(&out).contains("already installed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(home.files(), after_http);
    assert_eq!(mtime(&home.claude_json()), m1);
    assert_eq!(mtime(&home.settings()), m2);

    // To the command form: the dry run shows the swap, the install does it.
    let out = home.run(&["install", "claude", "--dry-run"]);
    let diff = stdout(&out);
    assert!(diff.contains("\n-      \"type\": \"http\",\n"), "{diff}");
    assert!(
        diff.contains(&format!("\n-      \"url\": \"{HTTP_URL}\"\n")),
        "{diff}"
    );
    assert!(diff.contains("\n+      \"type\": \"stdio\",\n"), "{diff}");
    assert_eq!(home.files(), after_http, "a dry run writes nothing");
    home.run(&["install", "claude"]);
    let c = read_json(&home.claude_json());
    assert_eq!(
        c["mcpServers"]["blueplane"],
        json!({"type": "stdio", "command": exe(), "args": ["serve"],
               "env": {"BLUEPLANE_HOME": home.bp_home().display().to_string()}})
    );
    assert_eq!(c["mcpServers"].as_object().unwrap().len(), 2);
    // And back to the URL form, on another port: the same bytes as a first install there.
    let other = "http://localhost:7600/mcp";
    home.run(&["install", "claude", "--http", other]);
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        claude_json_with_http().replace(HTTP_URL, other)
    );
    // The record remembers the URL, which makes the entry ours: a switch back to the command
    // form, then an uninstall from the URL form, each find it.
    home.run(&["install", "claude"]);
    home.run(&["install", "claude", "--http"]);
    let out = home.run(&["install", "claude", "--uninstall"]);
    assert!(
        stdout(&out).contains("removed MCP server blueplane"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        CLAUDE_JSON
    );
    assert_eq!(std::fs::read_to_string(home.settings()).unwrap(), SETTINGS);
    assert!(!home.bp_home().join("install/claude.json").exists());
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn with_a_token_the_url_form_names_the_variable_and_no_file_holds_the_value() {
    let home = Home::seeded();
    let project = home.dir.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    let p = project.display().to_string();
    let want = json!({"type": "http", "url": HTTP_URL,
                      "headers": {"Authorization": "Bearer ${BLUEPLANE_TOKEN}"}});
    let mut printed = String::new();
    for args in [
        vec!["install", "claude", "--http"],
        vec!["install", "claude", "--http", "--project", &p],
        vec!["install", "claude", "--http", "--json"],
        vec!["install", "claude", "--http", "--dry-run", "--statusline"],
    ] {
        let out = home
            .cmd(&args)
            .env("BLUEPLANE_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        read_json(&home.claude_json())["mcpServers"]["blueplane"],
        want
    );
    assert_eq!(
        read_json(&project.join(".mcp.json"))["mcpServers"]["blueplane"],
        want
    );
    assert!(
        std::fs::read_to_string(home.claude_json())
            .unwrap()
            .contains("      \"headers\": {\n        \"Authorization\": \"Bearer ${BLUEPLANE_TOKEN}\"\n      }\n"),
        "the layout of claude mcp add --header"
    );
    assert!(printed.contains("$BLUEPLANE_TOKEN"), "{printed}");
    assert!(!printed.contains(TOKEN), "{printed}");
    let mut files = Vec::new();
    all_files(home.dir.path(), &mut files);
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "{} holds the token",
            f.display()
        );
    }
    // Installed again without the token: the header goes.
    home.run(&["install", "claude", "--http"]);
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        claude_json_with_http()
    );
    home.run(&["install", "claude", "--project", &p, "--uninstall"]);
    assert!(!project.join(".mcp.json").exists());
}

#[test]
fn a_url_that_is_not_a_local_serve_is_refused_and_nothing_is_written() {
    let home = Home::seeded();
    let before = home.files();
    for url in [
        "http://example.com:7532/mcp",
        "https://127.0.0.1:7532/mcp",
        "http://127.0.0.1:7532/",
    ] {
        let out = home
            .cmd(&["install", "claude", "--http", url])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("claude mcp add --transport http"), "{err}");
        assert_eq!(home.files(), before, "{url}");
    }
    // A URL server named blueplane that the install did not write is not ours either.
    let foreign = "{\n  \"mcpServers\": {\n    \"blueplane\": {\n      \"type\": \"http\",\n      \"url\": \"http://127.0.0.1:9000/mcp\"\n    }\n  }\n}\n";
    std::fs::write(home.claude_json(), foreign).unwrap();
    let out = home.cmd(&["install", "claude", "--http"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("points at 'http://127.0.0.1:9000/mcp'"),
        "{err}"
    );
    let out = home.cmd(&["install", "claude"]).output().unwrap();
    assert!(!out.status.success());
    home.run(&["install", "claude", "--uninstall"]);
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        foreign
    );
}

#[test]
fn doctor_accepts_the_url_form() {
    let home = Home::new();
    home.run(&["install", "claude", "--http"]);
    let out = home.cmd(&["doctor", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mcp server")
        .unwrap_or_else(|| panic!("no mcp server check: {report}"));
    assert_eq!(check["level"], "ok", "{check}");
    assert!(
        check["message"].as_str().unwrap().contains(HTTP_URL),
        "{check}"
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

/// A child killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real Claude Code CLI connects to a running `blueplane serve --http` through the URL
/// form, sending the token it reads from `${BLUEPLANE_TOKEN}` (a wrong one is refused).
#[test]
fn claude_mcp_list_shows_blueplane_connected_over_http() {
    let Some(claude) = real_claude() else {
        return;
    };
    let redis = support::redis::TestRedis::start();
    let home = Home::new();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("http://{addr}/mcp");
    let mut server = Killed(
        home.cmd(&["serve", "--http", &addr])
            .env("REDIS_URL", redis.url())
            .env("BLUEPLANE_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve --http"),
    );
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(st) = server.0.try_wait().expect("try_wait") {
            panic!("serve --http exited before listening: {st}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "serve --http did not listen"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let out = home
        .cmd(&["install", "claude", "--http", &url])
        .env("BLUEPLANE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = |token: &str| {
        let text = claude_mcp_list(&claude, &home, &[("BLUEPLANE_TOKEN", token)]);
        let line = text
            .lines()
            .find(|l| l.starts_with("blueplane"))
            .unwrap_or_else(|| panic!("blueplane not listed by claude mcp list:\n{text}"))
            .to_string();
        assert!(line.contains(&url) && line.contains("(HTTP)"), "{line}");
        line
    };
    let line = listed(TOKEN);
    assert!(line.contains("✔ Connected"), "not connected: {line}");
    let line = listed("wrong-token");
    assert!(
        !line.contains("✔ Connected"),
        "a wrong token connected: {line}"
    );
    assert!(
        !std::fs::read_to_string(home.claude_json())
            .unwrap()
            .contains(TOKEN)
    );
}

/// `--http` also takes the ADDR of `serve --http` (`:PORT`, `PORT`, `localhost:PORT`,
/// `HOST:PORT`) and registers `http://ADDR/mcp`; a non-loopback address is refused.
#[test]
fn http_takes_the_address_of_serve_too() {
    let home = Home::seeded();
    for (arg, url) in [
        (":7600", "http://127.0.0.1:7600/mcp"),
        ("7601", "http://127.0.0.1:7601/mcp"),
        ("localhost:7602", "http://127.0.0.1:7602/mcp"),
        ("[::1]:7603", "http://[::1]:7603/mcp"),
    ] {
        let out = home.run(&["install", "claude", "--http", arg]);
        assert_eq!(
            read_json(&home.claude_json())["mcpServers"]["blueplane"],
            json!({"type": "http", "url": url}),
            "{arg}"
        );
        let addr = url.trim_start_matches("http://").trim_end_matches("/mcp");
        assert!(
            stdout(&out).contains(&format!("'blueplane serve --http {addr}'")),
            "{}",
            stdout(&out)
        );
    }
    let before = home.files();
    for bad in ["10.0.0.1:7532", "example.com:7532", "0.0.0.0:7532"] {
        let out = home
            .cmd(&["install", "claude", "--http", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        assert_eq!(home.files(), before, "{bad}");
    }
    home.run(&["install", "claude", "--uninstall"]);
    assert_eq!(
        std::fs::read_to_string(home.claude_json()).unwrap(),
        CLAUDE_JSON
    );
}

//! `blueplane install cursor`, through the real binary, in a temporary HOME whose
//! `CURSOR_HOME` already holds another MCP server and another tool's hooks on `stop` and
//! `preToolUse`: everything that was there survives byte for byte, ours is appended; a second
//! install changes nothing (not even the mtime); uninstall gives back the original bytes;
//! `--dry-run` writes nothing; a hooks.json without `version` gets `"version": 1` and loses it
//! again on uninstall; `--project` writes `DIR/.cursor/`; a file that is not JSON is refused
//! and stays as it was; `--http` writes the URL form (a URL or the ADDR of `serve --http`,
//! loopback only, a token only by `${env:BLUEPLANE_TOKEN}` reference). `doctor` says one line
//! when Cursor is absent, and names a half install with its fix.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

const MCP_JSON: &str = r#"{
  "mcpServers": {
    "github": {
      "url": "https://api.githubcopilot.com/mcp/",
      "headers": {
        "Authorization": "Bearer ${env:GITHUB_TOKEN}"
      }
    },
    "local-tool": {
      "command": "npx",
      "args": ["-y", "local-tool"],
      "env": {"LEVEL": "1.50"}
    }
  }
}
"#;

const HOOKS_JSON: &str = r#"{
    "version": 1,
    "hooks": {
        "stop": [
            {"command": "./hooks/audit.sh", "timeout": 10}
        ],
        "preToolUse": [
            {"matcher": "Shell|Write", "command": "/opt/guard/bin/guard check", "failClosed": true}
        ]
    }
}
"#;

const TOKEN: &str = "tok-5c1e9a77f0";

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        std::fs::create_dir_all(h.cursor()).expect("mkdir");
        h
    }

    fn seeded() -> Home {
        let h = Home::new();
        std::fs::write(h.mcp_json(), MCP_JSON).expect("write");
        std::fs::write(h.hooks_json(), HOOKS_JSON).expect("write");
        h
    }

    fn cursor(&self) -> PathBuf {
        self.dir.path().join("cursor-home")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("cursor-data")
    }

    fn bp_home(&self) -> PathBuf {
        self.dir.path().join("bp")
    }

    fn mcp_json(&self) -> PathBuf {
        self.cursor().join("mcp.json")
    }

    fn hooks_json(&self) -> PathBuf {
        self.cursor().join("hooks.json")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(support::BIN);
        c.args(args)
            .env("HOME", self.dir.path())
            .env("CURSOR_HOME", self.cursor())
            .env("CURSOR_DATA_DIR", self.data_dir())
            .env("CLAUDE_CONFIG_DIR", self.dir.path().join("claude"))
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

    /// Every file under the Cursor home: name -> bytes.
    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(self.cursor())
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

    fn doctor(&self) -> Value {
        let out = self.cmd(&["doctor", "--json"]).output().expect("doctor");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "doctor printed no JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

fn exe() -> String {
    std::fs::canonicalize(support::BIN)
        .expect("canonical binary path")
        .display()
        .to_string()
}

fn hook_command(home: &Home) -> String {
    format!(
        "env BLUEPLANE_HOME={} {} hook cursor",
        home.bp_home().display(),
        exe()
    )
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read")).expect("valid JSON")
}

fn mtime(p: &Path) -> std::time::SystemTime {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .expect("mtime")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every line of `orig` is still in `new`, in order and unchanged (but for the comma a
/// following insertion adds).
fn only_insertions(orig: &str, new: &str) {
    let mut new_lines = new.lines();
    for line in orig.lines() {
        let with_comma = format!("{line},");
        assert!(
            new_lines.any(|n| n == line || n == with_comma),
            "original line {line:?} is gone or changed in:\n{new}"
        );
    }
}

fn events() -> &'static [&'static str] {
    blueplane::hook::events::CURSOR_EVENTS
}

fn check<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
}

#[test]
fn install_merges_a_second_install_is_a_no_op_and_uninstall_restores_the_bytes() {
    let home = Home::seeded();
    let out = home.run(&["install", "cursor"]);
    let text = stdout(&out);
    assert!(text.contains("added MCP server blueplane"), "{text}");
    assert!(text.contains("added hooks for 20 events"), "{text}");
    assert!(text.contains("backup: "), "{text}");
    assert!(text.contains("Cursor Settings > MCP"), "{text}");

    let mcp_text = std::fs::read_to_string(home.mcp_json()).unwrap();
    only_insertions(MCP_JSON, &mcp_text);
    let mcp = read_json(&home.mcp_json());
    assert_eq!(
        mcp["mcpServers"]["blueplane"],
        json!({"command": exe(), "args": ["serve"],
               "env": {"BLUEPLANE_HOME": home.bp_home().display().to_string()}})
    );
    assert_eq!(mcp["mcpServers"].as_object().unwrap().len(), 3);

    let hooks_text = std::fs::read_to_string(home.hooks_json()).unwrap();
    only_insertions(HOOKS_JSON, &hooks_text);
    let hooks = read_json(&home.hooks_json());
    assert_eq!(hooks["version"], 1);
    let ours = json!({"command": hook_command(&home), "timeout": 5});
    for event in events() {
        let list = hooks["hooks"][event].as_array().unwrap();
        assert_eq!(list.last(), Some(&ours), "{event}");
        assert_eq!(list.iter().filter(|e| **e == ours).count(), 1, "{event}");
    }
    // The other tool's hooks are still first, unchanged, on the same events.
    assert_eq!(
        hooks["hooks"]["stop"][0],
        json!({"command": "./hooks/audit.sh", "timeout": 10})
    );
    assert_eq!(
        hooks["hooks"]["preToolUse"][0],
        json!({"matcher": "Shell|Write", "command": "/opt/guard/bin/guard check", "failClosed": true})
    );
    assert!(!hooks_text.contains("\"failClosed\": false"));
    // Ours never fail closed.
    assert_eq!(hooks_text.matches("failClosed").count(), 1);
    // Backups hold the originals.
    let backups: Vec<_> = home
        .files()
        .into_iter()
        .filter(|(n, _)| n.contains(".blueplane-backup-"))
        .collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    for (name, bytes) in &backups {
        let orig = if name.starts_with("mcp.json") {
            MCP_JSON
        } else {
            HOOKS_JSON
        };
        assert_eq!(bytes, orig.as_bytes(), "{name}");
    }

    // A second install: nothing written, not even the mtime.
    let after = home.files();
    let (m1, m2) = (mtime(&home.mcp_json()), mtime(&home.hooks_json()));
    std::thread::sleep(Duration::from_millis(20));
    let out = home.run(&["install", "cursor"]);
    assert!(
        stdout(&out).contains("already installed"),
        "{}",
        stdout(&out)
    );
    assert_eq!(home.files(), after);
    assert_eq!(mtime(&home.mcp_json()), m1);
    assert_eq!(mtime(&home.hooks_json()), m2);
    assert!(home.bp_home().join("install/cursor.json").is_file());

    // Uninstall: the original bytes, the record gone; a second uninstall has nothing to do.
    let out = home.run(&["install", "cursor", "--uninstall"]);
    assert!(
        stdout(&out).contains("removed 20 hooks"),
        "{}",
        stdout(&out)
    );
    assert_eq!(std::fs::read_to_string(home.mcp_json()).unwrap(), MCP_JSON);
    assert_eq!(
        std::fs::read_to_string(home.hooks_json()).unwrap(),
        HOOKS_JSON
    );
    assert!(!home.bp_home().join("install/cursor.json").exists());
    let out = home.run(&["install", "cursor", "--uninstall"]);
    assert!(
        stdout(&out).contains("not installed here"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn install_into_an_empty_cursor_home_and_uninstall_leaves_it_empty() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = Home::new();
    home.run(&["install", "cursor"]);
    let hooks_text = std::fs::read_to_string(home.hooks_json()).unwrap();
    assert!(
        hooks_text.starts_with(&format!(
            "{{\n  \"version\": 1,\n  \"hooks\": {{\n    \"beforeSubmitPrompt\": [\n      {{\n        \"command\": \"{}\",\n        \"timeout\": 5\n      }}\n    ],\n",
            hook_command(&home)
        )),
        "{hooks_text}"
    );
    assert!(hooks_text.ends_with("}\n"));
    let keys: Vec<String> = read_json(&home.hooks_json())["hooks"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut want: Vec<&str> = events().to_vec();
    want.sort_unstable();
    assert_eq!(keys, want);
    assert_eq!(
        std::fs::read_to_string(home.mcp_json()).unwrap(),
        format!(
            "{{\n  \"mcpServers\": {{\n    \"blueplane\": {{\n      \"command\": \"{}\",\n      \"args\": [\n        \"serve\"\n      ],\n      \"env\": {{\n        \"BLUEPLANE_HOME\": \"{}\"\n      }}\n    }}\n  }}\n}}\n",
            exe(),
            home.bp_home().display()
        )
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home.mcp_json()), 0o600);
    assert_eq!(mode(&home.hooks_json()), 0o644);
    home.run(&["install", "cursor", "--uninstall"]);
    assert!(!home.mcp_json().exists());
    assert!(!home.hooks_json().exists());
}

#[test]
fn a_hooks_file_without_version_gets_version_1_and_uninstall_takes_it_away() {
    let home = Home::new();
    let old = "{\"hooks\":{\"afterFileEdit\":[{\"command\":\"fmt-on-save\"}]}}";
    std::fs::write(home.hooks_json(), old).unwrap();
    let out = home.run(&["install", "cursor"]);
    assert!(
        stdout(&out).contains("added \"version\": 1"),
        "{}",
        stdout(&out)
    );
    let hooks = read_json(&home.hooks_json());
    assert_eq!(hooks["version"], 1);
    assert_eq!(
        hooks["hooks"]["afterFileEdit"][0],
        json!({"command": "fmt-on-save"})
    );
    home.run(&["install", "cursor", "--uninstall"]);
    assert_eq!(std::fs::read_to_string(home.hooks_json()).unwrap(), old);
    // A version that is there is never removed, even when it is not 1.
    let v2 = "{\"version\": 2, \"hooks\": {}}";
    std::fs::write(home.hooks_json(), v2).unwrap();
    home.run(&["install", "cursor"]);
    assert_eq!(read_json(&home.hooks_json())["version"], 2);
    home.run(&["install", "cursor", "--uninstall"]);
    assert_eq!(std::fs::read_to_string(home.hooks_json()).unwrap(), v2);
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let home = Home::seeded();
    let before = home.files();
    let out = home.run(&["install", "cursor", "--dry-run"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("--- {}\n", home.hooks_json().display())),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "+    \"blueplane\": {{\n+      \"command\": \"{}\",\n",
            exe()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "+            {{\n+                \"command\": \"{}\",\n+                \"timeout\": 5\n",
            hook_command(&home)
        )),
        "{text}"
    );
    assert!(text.contains("would change"), "{text}");
    assert!(text.contains("dry run: nothing was written"), "{text}");
    assert_eq!(home.files(), before);
    assert!(!home.bp_home().join("install/cursor.json").exists());
    // And the same for an uninstall.
    home.run(&["install", "cursor"]);
    let installed = home.files();
    let out = home.run(&["install", "cursor", "--uninstall", "--dry-run"]);
    let diff = stdout(&out);
    assert!(diff.contains("-    \"blueplane\": {\n"), "{diff}");
    assert!(
        diff.contains(&format!(
            "-                \"command\": \"{}\",\n",
            hook_command(&home)
        )),
        "{diff}"
    );
    assert_eq!(home.files(), installed);
}

#[test]
fn project_mode_writes_the_project_cursor_dir_and_leaves_the_user_files_alone() {
    let home = Home::seeded();
    let project = home.dir.path().join("repo");
    std::fs::create_dir_all(&project).unwrap();
    let before = home.files();
    let p = project.display().to_string();
    let out = home.run(&["install", "cursor", "--project", &p]);
    assert!(
        stdout(&out).contains(".cursor/mcp.json"),
        "{}",
        stdout(&out)
    );
    assert_eq!(home.files(), before, "the user's files are untouched");
    let mcp = read_json(&project.join(".cursor/mcp.json"));
    assert_eq!(mcp["mcpServers"]["blueplane"]["command"], exe());
    let hooks = read_json(&project.join(".cursor/hooks.json"));
    assert_eq!(hooks["version"], 1);
    assert_eq!(
        hooks["hooks"]["sessionStart"][0]["command"],
        hook_command(&home)
    );
    // The user install and the project install are recorded apart.
    home.run(&["install", "cursor"]);
    home.run(&["install", "cursor", "--project", &p, "--uninstall"]);
    assert!(!project.join(".cursor/mcp.json").exists());
    assert!(!project.join(".cursor/hooks.json").exists());
    assert_eq!(
        read_json(&home.hooks_json())["hooks"]["stop"][1]["command"],
        hook_command(&home)
    );
    home.run(&["install", "cursor", "--uninstall"]);
    assert_eq!(
        std::fs::read_to_string(home.hooks_json()).unwrap(),
        HOOKS_JSON
    );
    let missing = home.dir.path().join("nope").display().to_string();
    let out = home
        .cmd(&["install", "cursor", "--project", &missing])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}

#[test]
fn a_file_that_is_not_json_is_refused_and_nothing_is_written() {
    let home = Home::seeded();
    let broken = "{\"version\": 1, \"hooks\": {\"stop\": [,]}}";
    std::fs::write(home.hooks_json(), broken).unwrap();
    let before = home.files();
    let out = home.cmd(&["install", "cursor"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&home.hooks_json().display().to_string()) && err.contains("not valid JSON"),
        "{err}"
    );
    assert!(err.contains("left untouched"), "{err}");
    // Neither file changed: the MCP change is not applied either.
    assert_eq!(home.files(), before);
    // A hooks object of the wrong shape is refused too.
    std::fs::write(home.hooks_json(), "{\"hooks\": []}").unwrap();
    let out = home.cmd(&["install", "cursor"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("hooks is not an object"));
    assert_eq!(std::fs::read_to_string(home.mcp_json()).unwrap(), MCP_JSON);
    // A foreign server named blueplane is not overwritten.
    std::fs::write(home.hooks_json(), HOOKS_JSON).unwrap();
    let foreign = "{\"mcpServers\": {\"blueplane\": {\"command\": \"npx\", \"args\": [\"bp\"]}}}";
    std::fs::write(home.mcp_json(), foreign).unwrap();
    let out = home.cmd(&["install", "cursor"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("runs 'npx'") && err.contains("Cursor Settings"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(home.mcp_json()).unwrap(), foreign);
    assert_eq!(
        std::fs::read_to_string(home.hooks_json()).unwrap(),
        HOOKS_JSON
    );
}

/// MCP_JSON with `entry` (already laid out at the server level) added after the last server.
fn mcp_json_with(entry: &str) -> String {
    let at = "      \"env\": {\"LEVEL\": \"1.50\"}\n    }\n";
    assert!(MCP_JSON.contains(at));
    MCP_JSON.replace(
        at,
        &format!("      \"env\": {{\"LEVEL\": \"1.50\"}}\n    }},\n    \"blueplane\": {entry}\n"),
    )
}

#[test]
fn http_registers_the_url_form_from_a_url_or_an_address_and_never_writes_the_token() {
    let home = Home::seeded();
    let out = home.run(&["install", "cursor", "--http"]);
    assert!(
        stdout(&out).contains("keep 'blueplane serve --http 127.0.0.1:7532' running"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(home.mcp_json()).unwrap(),
        mcp_json_with("{\n      \"url\": \"http://127.0.0.1:7532/mcp\"\n    }")
    );
    // The hooks stay commands.
    assert_eq!(
        read_json(&home.hooks_json())["hooks"]["stop"][1]["command"],
        hook_command(&home)
    );
    // The address forms of `serve --http` name the same URLs.
    for (arg, url) in [
        (":7600", "http://127.0.0.1:7600/mcp"),
        ("7601", "http://127.0.0.1:7601/mcp"),
        ("localhost:7602", "http://127.0.0.1:7602/mcp"),
        ("[::1]:7603", "http://[::1]:7603/mcp"),
        ("http://localhost:7604/mcp", "http://localhost:7604/mcp"),
    ] {
        home.run(&["install", "cursor", "--http", arg]);
        assert_eq!(
            read_json(&home.mcp_json())["mcpServers"]["blueplane"],
            json!({"url": url}),
            "{arg}"
        );
    }
    // With a token: the header names the variable the way Cursor expands it.
    let out = home
        .cmd(&["install", "cursor", "--http"])
        .env("BLUEPLANE_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("$BLUEPLANE_TOKEN") && !printed.contains(TOKEN));
    assert_eq!(
        std::fs::read_to_string(home.mcp_json()).unwrap(),
        mcp_json_with(
            "{\n      \"url\": \"http://127.0.0.1:7532/mcp\",\n      \"headers\": {\n        \"Authorization\": \"Bearer ${env:BLUEPLANE_TOKEN}\"\n      }\n    }"
        )
    );
    for (_, bytes) in home.files() {
        assert!(!String::from_utf8_lossy(&bytes).contains(TOKEN));
    }
    let report = home.doctor();
    let c = check(&report, "cursor mcp server").expect("cursor mcp server check");
    assert_eq!(c["level"], "ok", "{c}");
    assert!(
        c["message"].as_str().unwrap().contains("bearer token"),
        "{c}"
    );
    // Not a local serve: refused, nothing written.
    let before = home.files();
    for bad in [
        "http://example.com:7532/mcp",
        "10.0.0.1:7532",
        "example.com:7532",
        "http://127.0.0.1:7532/",
    ] {
        let out = home
            .cmd(&["install", "cursor", "--http", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Cursor Settings > MCP"), "{err}");
        assert_eq!(home.files(), before, "{bad}");
    }
    // Back to the command form, then uninstall from it: the original bytes.
    home.run(&["install", "cursor"]);
    assert_eq!(
        read_json(&home.mcp_json())["mcpServers"]["blueplane"]["command"],
        exe()
    );
    home.run(&["install", "cursor", "--http", ":7600"]);
    home.run(&["install", "cursor", "--uninstall"]);
    assert_eq!(std::fs::read_to_string(home.mcp_json()).unwrap(), MCP_JSON);
    assert_eq!(
        std::fs::read_to_string(home.hooks_json()).unwrap(),
        HOOKS_JSON
    );
}

#[test]
fn doctor_is_quiet_without_cursor_and_names_a_half_install_with_its_fix() {
    let home = Home::new();
    std::fs::remove_dir(home.cursor()).unwrap();
    // No Cursor at all: one note, no Cursor problem.
    let report = home.doctor();
    let c = check(&report, "cursor").expect("cursor check");
    assert_eq!(c["level"], "note", "{c}");
    assert!(check(&report, "cursor hooks").is_none(), "{report:#}");
    // Cursor installed, blueplane not: notes that say how.
    std::fs::create_dir_all(home.data_dir().join("User/globalStorage")).unwrap();
    std::fs::write(home.data_dir().join("User/globalStorage/state.vscdb"), b"").unwrap();
    let report = home.doctor();
    for name in ["cursor mcp server", "cursor hooks"] {
        let c = check(&report, name).unwrap_or_else(|| panic!("{name}: {report:#}"));
        assert_eq!(c["level"], "note", "{c}");
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("blueplane install cursor"),
            "{c}"
        );
    }
    assert_eq!(check(&report, "cursor data").unwrap()["level"], "ok");
    // Installed: every check ok, and the text form has one line each.
    home.run(&["install", "cursor"]);
    let report = home.doctor();
    for name in ["cursor mcp server", "cursor hooks", "cursor data"] {
        assert_eq!(
            check(&report, name).unwrap()["level"],
            "ok",
            "{name}: {report:#}"
        );
    }
    assert!(
        check(&report, "cursor hooks").unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("all 20 events")
    );
    let out = home.cmd(&["doctor"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok       cursor hooks: all 20 events")),
        "{text}"
    );
    // A hook of another binary, a missing event, a lost data dir: each a problem with its fix.
    let hooks = std::fs::read_to_string(home.hooks_json()).unwrap();
    std::fs::write(
        home.hooks_json(),
        hooks.replacen(&exe(), "/old/bin/blueplane", 1),
    )
    .unwrap();
    std::fs::remove_dir_all(home.data_dir()).unwrap();
    let report = home.doctor();
    let c = check(&report, "cursor hooks").unwrap();
    assert_eq!(c["level"], "problem", "{c}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("/old/bin/blueplane"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("blueplane install cursor"),
        "{c}"
    );
    let c = check(&report, "cursor data").unwrap();
    assert_eq!(c["level"], "problem", "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("CURSOR_DATA_DIR"),
        "{c}"
    );
    // The install repairs the hook; removing one event's hook is then "missing".
    home.run(&["install", "cursor"]);
    let mut v = read_json(&home.hooks_json());
    v["hooks"]["preCompact"] = json!([]);
    std::fs::write(home.hooks_json(), v.to_string()).unwrap();
    let report = home.doctor();
    let c = check(&report, "cursor hooks").unwrap();
    assert_eq!(c["level"], "problem", "{c}");
    assert!(
        c["message"].as_str().unwrap().starts_with("1 of 20 events"),
        "{c}"
    );
    // A broken file is named.
    std::fs::write(home.mcp_json(), "{").unwrap();
    let report = home.doctor();
    let c = check(&report, "cursor config").expect("cursor config check");
    assert_eq!(c["level"], "problem", "{c}");
}

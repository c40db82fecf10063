//! Real Cursor `state.vscdb` files for tests: a Cursor data directory
//! (`User/globalStorage/state.vscdb`, `User/workspaceStorage/<hash>/{state.vscdb,
//! workspace.json}`) with Cursor's schema (`ItemTable` and `cursorDiskKV`, both `key TEXT UNIQUE
//! ON CONFLICT REPLACE, value BLOB`) in WAL mode, and builders for the values of formats.md §C:
//! composers in the `_v` 3 (legacy inline `conversation`), 10 and 18 shapes, bubbles (ISO or
//! epoch `createdAt`, `toolFormerData`, `tokenCount`, `modelInfo`, `timingInfo`, `thinking`,
//! `codeBlocks`), `agentKv` blobs, credential keys with planted values, and workspace indexes.
//!
//! Shared by the Cursor capture, derive and end-to-end tests; nothing here depends on the
//! crate under test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::{Value, json};

/// Planted credential values: none may ever leave Cursor's database.
pub const PLANTED_ACCESS_TOKEN: &str = "PLANTEDaccessTOKENeyJhbGciOiJIUzI1NiJ9xyz";
pub const PLANTED_REFRESH_TOKEN: &str = "PLANTEDrefreshTOKEN0123456789";
pub const PLANTED_BLOB_KEY: &str = "PLANTEDblobENCRYPTIONkey0123456789abcdef";
pub const PLANTED_SPEC_KEY: &str = "PLANTEDspeculativeKEY0123456789abcdef";
/// Every planted credential.
pub const PLANTED_CREDENTIALS: &[&str] = &[
    PLANTED_ACCESS_TOKEN,
    PLANTED_REFRESH_TOKEN,
    PLANTED_BLOB_KEY,
    PLANTED_SPEC_KEY,
];

/// A Cursor data directory (what `CURSOR_DATA_DIR` points at).
pub struct CursorDir {
    pub root: PathBuf,
}

impl CursorDir {
    /// Creates `root/User/globalStorage` and `root/User/workspaceStorage`.
    pub fn new(root: &Path) -> CursorDir {
        std::fs::create_dir_all(root.join("User/globalStorage")).expect("mkdir globalStorage");
        std::fs::create_dir_all(root.join("User/workspaceStorage"))
            .expect("mkdir workspaceStorage");
        CursorDir {
            root: root.to_path_buf(),
        }
    }

    pub fn global_path(&self) -> PathBuf {
        self.root.join("User/globalStorage/state.vscdb")
    }

    /// The global database (created on first use).
    pub fn global(&self) -> VscDb {
        VscDb::open(&self.global_path())
    }

    pub fn workspace_dir(&self, hash: &str) -> PathBuf {
        self.root.join("User/workspaceStorage").join(hash)
    }

    /// A workspace database for one folder: `workspace.json` = `{"folder": "file://<folder>"}`
    /// (percent-encoded as Cursor writes it).
    pub fn workspace(&self, hash: &str, folder: &str) -> VscDb {
        let dir = self.workspace_dir(hash);
        std::fs::create_dir_all(&dir).expect("mkdir workspace");
        let uri = format!("file://{}", percent_encode(folder));
        std::fs::write(
            dir.join("workspace.json"),
            json!({ "folder": uri }).to_string(),
        )
        .expect("workspace.json");
        VscDb::open(&dir.join("state.vscdb"))
    }

    /// A multi-root workspace: `workspace.json` = `{"workspace": "file://<file>"}` and the
    /// `.code-workspace` file at `file` listing `folders` (relative paths stay relative).
    pub fn workspace_multi(&self, hash: &str, file: &Path, folders: &[&str]) -> VscDb {
        let dir = self.workspace_dir(hash);
        std::fs::create_dir_all(&dir).expect("mkdir workspace");
        let list: Vec<Value> = folders.iter().map(|f| json!({ "path": f })).collect();
        std::fs::write(file, json!({ "folders": list, "settings": {} }).to_string())
            .expect(".code-workspace");
        let uri = format!("file://{}", percent_encode(&file.display().to_string()));
        std::fs::write(
            dir.join("workspace.json"),
            json!({ "workspace": uri }).to_string(),
        )
        .expect("workspace.json");
        VscDb::open(&dir.join("state.vscdb"))
    }
}

/// `file://` path encoding as VS Code writes it (space, `%`, `#`, `?` and non-ASCII).
pub fn percent_encode(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One `state.vscdb`, open for writing like Cursor does (WAL mode).
pub struct VscDb {
    pub path: PathBuf,
    pub conn: Connection,
}

impl VscDb {
    /// Opens (creating if needed) a database with Cursor's schema in WAL mode.
    pub fn open(path: &Path) -> VscDb {
        let conn = Connection::open(path).expect("open state.vscdb");
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("wal");
        assert_eq!(mode, "wal");
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);
             CREATE TABLE IF NOT EXISTS cursorDiskKV (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB);",
        )
        .expect("schema");
        VscDb {
            path: path.to_path_buf(),
            conn,
        }
    }

    /// `cursorDiskKV[key] = value` as TEXT (a rewrite gets a new rowid, as in Cursor).
    pub fn put_kv(&self, key: &str, value: &str) {
        self.conn
            .execute(
                "INSERT INTO cursorDiskKV (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, value],
            )
            .expect("put kv");
    }

    /// `cursorDiskKV[key] = value` as a BLOB of the UTF-8 bytes.
    pub fn put_kv_blob(&self, key: &str, value: &[u8]) {
        self.conn
            .execute(
                "INSERT INTO cursorDiskKV (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, value],
            )
            .expect("put kv blob");
    }

    /// `ItemTable[key] = value` as TEXT.
    pub fn put_item(&self, key: &str, value: &str) {
        self.conn
            .execute(
                "INSERT INTO ItemTable (key, value) VALUES (?1, ?2)",
                rusqlite::params![key, value],
            )
            .expect("put item");
    }

    /// Writes a composer value under `composerData:<composerId>`.
    pub fn composer(&self, v: &Value) {
        let cid = v["composerId"].as_str().expect("composerId");
        self.put_kv(&format!("composerData:{cid}"), &v.to_string());
    }

    /// Writes a bubble value under `bubbleId:<cid>:<bubbleId>`.
    pub fn bubble(&self, cid: &str, v: &Value) {
        let bid = v["bubbleId"].as_str().expect("bubbleId");
        self.put_kv(&format!("bubbleId:{cid}:{bid}"), &v.to_string());
    }

    /// Writes an `agentKv:blob:<sha>` value.
    pub fn agent_blob(&self, sha: &str, role: &str, content: &str) {
        self.put_kv(
            &format!("agentKv:blob:{sha}"),
            &json!({ "role": role, "content": content }).to_string(),
        );
    }

    /// The credential rows Cursor keeps (planted values), in `ItemTable` and, to prove the
    /// key allow-list, in `cursorDiskKV` too.
    pub fn credentials(&self) {
        self.put_item("cursorAuth/accessToken", PLANTED_ACCESS_TOKEN);
        self.put_item("cursorAuth/refreshToken", PLANTED_REFRESH_TOKEN);
        self.put_item(
            "cursorAuth/cachedSignUpType",
            &json!({ "token": PLANTED_ACCESS_TOKEN }).to_string(),
        );
        self.put_kv(
            "cursorAuth/accessToken",
            &json!({ "accessToken": PLANTED_ACCESS_TOKEN }).to_string(),
        );
        self.put_kv(
            "blobEncryptionKey",
            &json!({ "blobEncryptionKey": PLANTED_BLOB_KEY }).to_string(),
        );
    }

    /// The workspace `ItemTable` index `composer.composerData` listing `composers`
    /// (composerId, name, createdAt, lastUpdatedAt).
    pub fn workspace_index(&self, composers: &[(&str, &str, i64, i64)]) {
        let all: Vec<Value> = composers
            .iter()
            .map(|(id, name, c, u)| {
                json!({"composerId": id, "name": name, "createdAt": c, "lastUpdatedAt": u,
                       "unifiedMode": "agent", "type": "head"})
            })
            .collect();
        self.put_item(
            "composer.composerData",
            &json!({ "allComposers": all, "selectedComposerIds": [] }).to_string(),
        );
    }

    /// Rowid of a `cursorDiskKV` key.
    pub fn rowid(&self, key: &str) -> i64 {
        self.conn
            .query_row(
                "SELECT rowid FROM cursorDiskKV WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .expect("rowid")
    }
}

/// A modern (`_v` 10) composer with ordered headers and the planted encryption keys.
pub fn composer_v10(cid: &str, name: &str, created: i64, headers: &[(&str, i64)]) -> Value {
    let h: Vec<Value> = headers
        .iter()
        .map(|(b, t)| json!({"bubbleId": b, "type": t}))
        .collect();
    json!({"_v":10,"composerId":cid,"name":name,"subtitle":"edited 2 files",
        "createdAt":created,"lastUpdatedAt":created + 60_000,
        "status":"completed","unifiedMode":"agent","forceMode":"edit","isAgentic":true,
        "modelConfig":{"modelName":"claude-4.5-opus-high-thinking","maxMode":true},
        "fullConversationHeadersOnly":h,"conversationMap":{},"usageData":{},
        "contextUsagePercent":41.2,"totalLinesAdded":120,"totalLinesRemoved":7,"filesChangedCount":3,
        "subComposerIds":[],"createdOnBranch":"main","richText":"{\"root\":{}}",
        "blobEncryptionKey":PLANTED_BLOB_KEY,
        "speculativeSummarizationEncryptionKey":PLANTED_SPEC_KEY})
}

/// A newer (`_v` 18) composer: [`composer_v10`] plus `workspaceIdentifier` and sub-composers.
pub fn composer_v18(
    cid: &str,
    name: &str,
    created: i64,
    headers: &[(&str, i64)],
    workspace: &str,
    sub: &[&str],
) -> Value {
    let mut v = composer_v10(cid, name, created, headers);
    v["_v"] = json!(18);
    v["workspaceIdentifier"] =
        json!({"id": "ws-1", "uri": {"fsPath": workspace, "path": workspace}});
    v["subComposerIds"] = json!(sub);
    v["usageData"] = json!({"claude-4.5-opus-high-thinking": {"costInCents": 12, "amount": 3}});
    v
}

/// A legacy (`_v` 3) composer with its bubbles inline in `conversation`.
pub fn composer_v3(cid: &str, name: &str, created: i64, bubbles: &[Value]) -> Value {
    json!({"_v":3,"composerId":cid,"name":name,"createdAt":created,"lastUpdatedAt":created + 1000,
        "conversation":bubbles,"status":"completed","richText":"",
        "blobEncryptionKey":PLANTED_BLOB_KEY})
}

/// A user (type 1) bubble with an ISO `createdAt`.
pub fn user_bubble(bid: &str, text: &str, created_iso: &str) -> Value {
    json!({"_v":3,"type":1,"bubbleId":bid,"text":text,"richText":"{\"root\":{\"children\":[]}}",
        "createdAt":created_iso,"requestId":format!("req-{bid}"),
        "modelInfo":{"modelName":"claude-4.5-sonnet"},"tokenCount":{"inputTokens":0,"outputTokens":0},
        "attachedCodeChunks":[{"text":"fn attached_chunk() {}"}],"workspaceUris":["file:///home/u/proj"]})
}

/// An assistant (type 2) text bubble with an epoch-ms `createdAt`, token counts and timing.
pub fn assistant_bubble(bid: &str, text: &str, created_ms: i64, tokens: (i64, i64)) -> Value {
    json!({"_v":3,"type":2,"bubbleId":bid,"serverBubbleId":format!("srv-{bid}"),"text":text,
        "createdAt":created_ms,"requestId":format!("req-{bid}"),"usageUuid":format!("usage-{bid}"),
        "tokenCount":{"inputTokens":tokens.0,"outputTokens":tokens.1},
        "modelInfo":{"modelName":"claude-4.5-sonnet"},
        "timingInfo":{"clientStartTime":4745281.3,"clientRpcSendTime":created_ms - 5000,
                      "clientSettleTime":created_ms,"clientEndTime":created_ms},
        "codeBlocks":[{"content":"fn code_block_content() {}","languageId":"rust"}],
        "capabilityType":15,"isAgentic":true,"unifiedMode":2})
}

/// An assistant tool-call bubble (no `createdAt`: timed by `timingInfo` only).
pub fn tool_bubble(
    bid: &str,
    name: &str,
    status: &str,
    args: &Value,
    result: &str,
    at_ms: i64,
) -> Value {
    json!({"_v":3,"type":2,"bubbleId":bid,"text":"",
        "toolFormerData":{"name":name,"status":status,"toolCallId":format!("call-{bid}"),
            "rawArgs":args.to_string(),"result":result},
        "timingInfo":{"clientRpcSendTime":at_ms,"clientEndTime":at_ms + 1500},
        "tokenCount":{"inputTokens":0,"outputTokens":0},"capabilityType":15})
}

/// An assistant thinking bubble (no time at all: the composer's `createdAt` applies).
pub fn thinking_bubble(bid: &str, thought: &str) -> Value {
    json!({"_v":3,"type":2,"bubbleId":bid,"text":"",
        "thinking":{"text":thought,"signature":"sig"},"tokenCount":{"inputTokens":0,"outputTokens":0}})
}

/// SHA-256-like hex id for agent blobs (not a real hash: ids only need to be unique).
pub fn blob_sha(i: usize) -> String {
    format!("{i:064x}")
}

/// The main file's bytes hashed (the `-wal`/`-shm` files may change on reads; this may not).
pub fn file_hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).expect("read db file");
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

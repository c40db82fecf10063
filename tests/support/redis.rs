//! A throw-away `redis-server` for integration tests.
//!
//! [`TestRedis::start`] runs `redis-server` in the foreground (not daemonized, so the test
//! owns the process) in a fresh temp dir, listening only on `<dir>/redis.sock` with
//! `port 0`, `appendonly yes`, `save ""`. [`TestRedis::kill`] is a SIGKILL; after it,
//! [`TestRedis::restart`] starts a server on the same dir, which replays the AOF, to prove
//! crash recovery. Dropping the value kills the server and removes the dir.
//!
//! Talking to it needs nothing from the crate under test: [`ping`] and [`command`] use the
//! `redis` crate's blocking client on the unix socket and hand back a plain [`Resp`].
//!
//! Redis 7 writes every command to the AOF file (the kernel page cache) before it replies,
//! so a reply the test has received survives a SIGKILL even with `appendfsync everysec`.
#![allow(dead_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct TestRedis {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Child,
}

impl TestRedis {
    /// Starts a fresh server and waits until it answers PING. Panics with the server log if
    /// it does not come up within 10 s.
    pub fn start() -> TestRedis {
        let dir = tempfile::Builder::new()
            .prefix("bp-redis-")
            .tempdir()
            .expect("create temp dir for redis-server");
        let socket = dir.path().join("redis.sock");
        let child = spawn(dir.path(), &socket);
        let mut redis = TestRedis { dir, socket, child };
        redis.wait_ready();
        redis
    }

    /// `redis+unix://<socket>`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown, no final AOF fsync. Idempotent.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server if it still runs and starts a new one on the same dir (same socket,
    /// same AOF, which is replayed).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.dir.path(), &self.socket);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(&self.socket) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "redis-server exited with {status} before it was ready; log:\n{}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "redis-server did not answer PING on {} within 10 s; log:\n{}",
                    self.socket.display(),
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(dir: &Path, socket: &Path) -> Child {
    let conf = dir.join("redis.conf");
    let text = format!(
        "port 0\n\
         unixsocket {}\n\
         unixsocketperm 700\n\
         dir {}\n\
         daemonize no\n\
         logfile {}\n\
         appendonly yes\n\
         appendfsync everysec\n\
         save \"\"\n",
        quote(socket),
        quote(dir),
        quote(&dir.join("redis.log")),
    );
    std::fs::write(&conf, text).expect("write redis.conf");
    Command::new("redis-server")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn redis-server (is it installed? apt install redis-server)")
}

/// A path as a double-quoted redis.conf value.
fn quote(path: &Path) -> String {
    let mut out = String::from("\"");
    for b in path.as_os_str().as_encoded_bytes() {
        if (b' '..=b'~').contains(b) && *b != b'"' && *b != b'\\' {
            out.push(char::from(*b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// True if the server on `socket` answers `+PONG`.
pub fn ping(socket: &Path) -> bool {
    matches!(command(socket, &["PING"]), Ok(Resp::Simple(s)) if s == "PONG")
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

/// Sends one command on a fresh connection and reads its reply. A server error (`-ERR …`) is
/// `Ok(Resp::Error)`; a RESP2 nil (`$-1`, `*-1`) is `Resp::Bulk(None)`.
pub fn command(socket: &Path, args: &[&str]) -> io::Result<Resp> {
    use redis::{ConnectionLike as _, IntoConnectionInfo as _};
    let timeout = Duration::from_secs(5);
    let info = redis::ConnectionAddr::Unix(socket.to_path_buf())
        .into_connection_info()
        .map_err(to_io)?
        .set_redis_settings(redis::RedisConnectionInfo::default().set_skip_set_lib_name());
    let client = redis::Client::open(info).map_err(to_io)?;
    let mut con = client.get_connection_with_timeout(timeout).map_err(to_io)?;
    con.set_read_timeout(Some(timeout)).map_err(to_io)?;
    con.set_write_timeout(Some(timeout)).map_err(to_io)?;
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(*a);
    }
    con.req_command(&cmd).map(Resp::from).map_err(to_io)
}

/// A client-side failure (connect, timeout, closed connection) as an `io::Error`.
fn to_io(e: redis::RedisError) -> io::Error {
    let kind = if e.is_connection_refusal() {
        io::ErrorKind::ConnectionRefused
    } else if e.is_timeout() {
        io::ErrorKind::TimedOut
    } else if e.is_connection_dropped() {
        io::ErrorKind::UnexpectedEof
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, e)
}

impl From<redis::Value> for Resp {
    fn from(v: redis::Value) -> Resp {
        use redis::Value;
        let array =
            |items: Vec<Value>| Resp::Array(Some(items.into_iter().map(Resp::from).collect()));
        let bulk = |s: String| Resp::Bulk(Some(s.into_bytes()));
        match v {
            Value::Nil => Resp::Bulk(None),
            Value::Int(n) => Resp::Integer(n),
            Value::BulkString(b) => Resp::Bulk(Some(b)),
            Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
                array(items)
            }
            Value::SimpleString(s) => Resp::Simple(s),
            Value::Okay => Resp::Simple("OK".to_owned()),
            Value::ServerError(e) => Resp::Error(match e.details() {
                Some(d) => format!("{} {d}", e.code()),
                None => e.code().to_owned(),
            }),
            // RESP3-only types, flattened the way RESP2 sends them.
            Value::Map(pairs) => array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
            Value::Attribute { data, .. } => Resp::from(*data),
            Value::Double(d) => bulk(d.to_string()),
            Value::Boolean(b) => Resp::Integer(i64::from(b)),
            Value::VerbatimString { text, .. } => bulk(text),
            other => Resp::Error(format!("unsupported reply {other:?}")),
        }
    }
}

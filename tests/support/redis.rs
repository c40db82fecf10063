//! A throw-away `redis-server` for integration tests.
//!
//! [`TestRedis::start`] runs `redis-server` in the foreground (not daemonized, so the test
//! owns the process) in a fresh temp dir, listening only on `<dir>/redis.sock` with
//! `port 0`, `appendonly yes`, `save ""`. [`TestRedis::kill`] is a SIGKILL; after it,
//! [`TestRedis::restart`] starts a server on the same dir, which replays the AOF, to prove
//! crash recovery. Dropping the value kills the server and removes the dir.
//!
//! Talking to it needs nothing from the crate: [`ping`] and [`command`] speak plain RESP
//! over a blocking unix socket.
//!
//! Redis 7 writes every command to the AOF file (the kernel page cache) before it replies,
//! so a reply the test has received survives a SIGKILL even with `appendfsync everysec`.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
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

/// Sends one command on a fresh connection and reads its reply.
pub fn command(socket: &Path, args: &[&str]) -> io::Result<Resp> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((reply, _)) = parse(&buf)? {
            return Ok(reply);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One reply at the start of `buf` and the bytes it used; `Ok(None)` while `buf` holds only
/// part of it.
fn parse(buf: &[u8]) -> io::Result<Option<(Resp, usize)>> {
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let line = String::from_utf8_lossy(&buf[1..eol]).into_owned();
    let next = eol + 2;
    let len = || line.parse::<i64>().map_err(|_| bad("bad length"));
    match buf[0] {
        b'+' => Ok(Some((Resp::Simple(line), next))),
        b'-' => Ok(Some((Resp::Error(line), next))),
        b':' => Ok(Some((Resp::Integer(len()?), next))),
        b'$' => {
            let Ok(n) = usize::try_from(len()?) else {
                return Ok(Some((Resp::Bulk(None), next)));
            };
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            Ok(Some((
                Resp::Bulk(Some(buf[next..next + n].to_vec())),
                next + n + 2,
            )))
        }
        b'*' => {
            let Ok(n) = usize::try_from(len()?) else {
                return Ok(Some((Resp::Array(None), next)));
            };
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = next;
            for _ in 0..n {
                let Some((item, used)) = parse(&buf[at..])? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            Ok(Some((Resp::Array(Some(items)), at)))
        }
        _ => Err(bad("unexpected RESP type")),
    }
}

//! A running `blueplane serve --http` on a free loopback port, for the HTTP and SSE tests.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Env;

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("addr").port()
}

/// A running `serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `serve <args>` with `--http 127.0.0.1:<free port>` and `env_extra`, once it accepts
    /// connections.
    pub fn start(env: &Env, args: &[&str], env_extra: &[(&str, &str)]) -> Server {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut cmd = env.cmd(&["serve", "--http", &addr]);
        cmd.args(args)
            .env_remove("BLUEPLANE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env_extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn serve --http");
        let mut s = Server { child, port };
        s.wait_listening();
        s
    }

    pub fn wait_listening(&mut self) {
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!("serve --http exited before listening: {st}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "serve --http did not listen on {} within 30 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends `signal` (`TERM`, `INT`) and waits for the exit (at most `deadline`).
    pub fn signal(&mut self, signal: &str, deadline: Duration) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{signal} failed");
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                t0.elapsed() < deadline,
                "serve --http did not exit within {deadline:?} of SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

//! The real `murr` binary, started on ephemeral ports over a data folder, for the tests of
//! this crate that drive it from outside.

#![allow(dead_code, unreachable_pub, reason = "each test file uses part of it")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub struct Murr {
    pub child: Child,
    pub base: String,
    pub grpc: String,
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Murr {
    fn drop(&mut self) {
        // A test that failed half-way leaves no server behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Murr {
    pub fn start(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Murr {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_murr"));
        cmd.args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--data-dir",
        ])
        .arg(data)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starts murr");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("murr| {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut murr = Murr {
            child,
            base: String::new(),
            grpc: String::new(),
            lines: rx,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let line = murr
                .lines
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("murr logs its listening address within 30 s");
            if line.contains("murr listening") {
                let addr = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("http="))
                    .expect("the listening line names the address");
                assert!(
                    !addr.ends_with(":0"),
                    "the bound port is logged, not 0: {line}"
                );
                murr.base = format!("http://{addr}");
                murr.grpc = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("grpc="))
                    .expect("the listening line names the gRPC address")
                    .to_owned();
                return murr;
            }
        }
    }

    pub fn stop(mut self) -> Vec<String> {
        // SIGTERM, as an orchestrator would send it.
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("waits");
        assert!(status.success(), "murr exits cleanly on SIGTERM: {status}");
        // Every line up to the end of its stderr (the reader thread may still be forwarding the
        // last ones when the process has exited).
        self.lines.iter().collect()
    }

    pub fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        self.call_as(None, method, path, body)
    }

    /// [`Murr::call`] with `authorization: Bearer <token>`.
    pub fn call_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", self.base),
            )
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let req = match body {
            Some(b) => req.body(b.to_owned()),
            None => req,
        };
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

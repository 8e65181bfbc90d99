//! murr's developer tasks, run as `cargo xtask <task>`.
//!
//! - `bench [criterion args]`: the criterion benches of `benches/` (in-process fetch, layout,
//!   write, open). `--quick` sets `MURR_BENCH_MAX_ROWS=100000` for a fast run.
//! - `load-report [--rows N] [--cols N]`: load, reopen, fetch latency and memory of one table.

#![allow(clippy::print_stderr, reason = "a command-line tool")]

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
        "bench" => {
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
        other => {
            eprintln!("xtask: unknown task {other:?} (bench, load-report)");
            ExitCode::FAILURE
        }
    }
}

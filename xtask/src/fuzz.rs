//! `cargo xtask fuzz`: every fuzz target of `fuzz/` (see `murr_tests::fuzz`), one after another,
//! with cargo-fuzz (libFuzzer) on the pinned stable toolchain.
//!
//! Stable Rust cannot build the sanitizers, so the targets run with `-s none`: libFuzzer's
//! coverage guidance without AddressSanitizer. murr's decoders are safe Rust (the only `unsafe`
//! in the format is prefetch hints), so what a sanitizer would add is little: a bad input shows
//! as a panic, a server error or an invalid answer, which the targets turn into crashes.
//!
//! Each target starts from the committed seeds (`fuzz/seeds/<target>`) and the corpus earlier
//! runs grew (`target/fuzz/corpus/<target>`, where new inputs go); a crash is saved by libFuzzer
//! under `fuzz/artifacts/<target>/`. Fix it, then move the input to `fuzz/regressions/<target>/`,
//! where the workspace's tests replay it.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask fuzz [--secs N] [TARGET ...] | cargo xtask fuzz --seeds";

/// What one target's run did.
struct Outcome {
    target: String,
    runs: u64,
    secs: f64,
    crashed: bool,
}

pub(crate) fn run(root: &Path, args: &[String]) -> ExitCode {
    let mut secs: u64 = 60;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seeds" => return write_seeds(root),
            "--secs" => match it.next().and_then(|v| v.parse().ok()) {
                Some(n) => secs = n,
                None => {
                    eprintln!("{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            flag if flag.starts_with('-') => {
                eprintln!("fuzz: unknown flag {flag:?}\n{USAGE}");
                return ExitCode::FAILURE;
            }
            target => targets.push(target.to_owned()),
        }
    }
    if !has_cargo_fuzz() {
        eprintln!("fuzz: installing cargo-fuzz from crates.io (about a minute)");
        let mut c = crate::cargo();
        c.args(["install", "--locked", "cargo-fuzz"]);
        if crate::run(c) != ExitCode::SUCCESS {
            return ExitCode::FAILURE;
        }
    }
    let Some(all) = list_targets(root) else {
        return ExitCode::FAILURE;
    };
    if let Some(unknown) = targets.iter().find(|t| !all.contains(t)) {
        eprintln!(
            "fuzz: no target {unknown:?} (the targets: {})",
            all.join(", ")
        );
        return ExitCode::FAILURE;
    }
    if targets.is_empty() {
        targets = all;
    }
    eprintln!("fuzz: building the targets (a release build with coverage instrumentation)");
    let mut build = fuzz_command(root);
    build.args(["build", "-s", "none", "--fuzz-dir", "fuzz"]);
    if crate::run(build) != ExitCode::SUCCESS {
        return ExitCode::FAILURE;
    }
    let logs = root.join("target/fuzz/logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        eprintln!("fuzz: cannot create {}: {e}", logs.display());
        return ExitCode::FAILURE;
    }
    let mut outcomes = Vec::new();
    for target in &targets {
        match run_target(root, target, secs, &logs) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                eprintln!("fuzz: {target}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "\nfuzz: {:<14} {:>12} {:>8}  result",
        "target", "inputs", "seconds"
    );
    let mut total = 0.0;
    for o in &outcomes {
        total += o.secs;
        eprintln!(
            "fuzz: {:<14} {:>12} {:>8.0}  {}",
            o.target,
            o.runs,
            o.secs,
            if o.crashed { "CRASH" } else { "clean" }
        );
    }
    let crashed = outcomes.iter().filter(|o| o.crashed).count();
    eprintln!(
        "fuzz: {:.1} CPU-minutes in all, {crashed} target(s) crashed",
        total / 60.0
    );
    if crashed > 0 {
        eprintln!(
            "fuzz: crashing inputs are in fuzz/artifacts/<target>/ (logs in {}): fix each, then \
             move it to fuzz/regressions/<target>/",
            logs.display()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn has_cargo_fuzz() -> bool {
    Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The targets `fuzz/Cargo.toml` declares, as `cargo fuzz list` gives them.
fn list_targets(root: &Path) -> Option<Vec<String>> {
    let out = fuzz_command(root)
        .args(["list", "--fuzz-dir", "fuzz"])
        .stderr(Stdio::inherit())
        .output();
    match out {
        Ok(out) if out.status.success() => Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
        ),
        Ok(out) => {
            eprintln!("fuzz: cargo fuzz list failed ({})", out.status);
            None
        }
        Err(e) => {
            eprintln!("fuzz: cargo fuzz: {e}");
            None
        }
    }
}

fn fuzz_command(root: &Path) -> Command {
    let mut c = Command::new("cargo");
    c.arg("fuzz").current_dir(root);
    c
}

/// Runs `target` for `secs` seconds; its log goes to `logs/<target>.log`.
fn run_target(root: &Path, target: &str, secs: u64, logs: &Path) -> Result<Outcome, String> {
    let corpus = root.join("target/fuzz/corpus").join(target);
    std::fs::create_dir_all(&corpus).map_err(|e| format!("creating {}: {e}", corpus.display()))?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    eprintln!("fuzz: {target} for {secs} s (log: {})", log_path.display());
    let mut c = fuzz_command(root);
    c.args(["run", "-s", "none", "--fuzz-dir", "fuzz", target])
        .arg(&corpus)
        .arg(root.join("fuzz/seeds").join(target))
        .args([
            "--",
            &format!("-max_total_time={secs}"),
            "-rss_limit_mb=4096",
            "-print_final_stats=1",
        ])
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    let status = c.status().map_err(|e| format!("cargo fuzz: {e}"))?;
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    // libFuzzer's own count, of the time it fuzzed (not the build before it): its last line
    // "Done N runs in S second(s)", or on a crash the stats it prints.
    let done = text.lines().rev().find_map(|l| {
        let rest = l.strip_prefix("Done ")?;
        let (runs, rest) = rest.split_once(" runs in ")?;
        let (secs, _) = rest.split_once(' ')?;
        Some((runs.parse().ok()?, secs.parse().ok()?))
    });
    let (runs, secs) = done.unwrap_or_else(|| {
        let runs = text
            .lines()
            .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .filter_map(|v| v.trim().parse().ok())
            .next_back()
            .unwrap_or(0);
        (runs, 0.0)
    });
    let crashed = !status.success();
    if crashed {
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for line in tail.into_iter().rev() {
            eprintln!("  {line}");
        }
    }
    Ok(Outcome {
        target: target.to_owned(),
        runs,
        secs,
        crashed,
    })
}

/// Writes the seed corpus, `fuzz/seeds/<target>/`, from `murr_tests::fuzz::seeds`.
fn write_seeds(root: &Path) -> ExitCode {
    let mut c = crate::cargo();
    c.args(["run", "-p", "murr-tests", "--bin", "murr-fuzz-seeds", "--"])
        .arg(root.join("fuzz/seeds"));
    crate::run(c)
}

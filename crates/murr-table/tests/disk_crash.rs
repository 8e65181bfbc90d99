//! Crashes on the real disk directory: a child process runs one operation (a write, a merge, a
//! create, a drop) on a real data folder and aborts at its n-th storage mutation, before it or
//! right after it (`std::process::abort`: no destructor runs, as after a kill -9). The parent
//! then opens the folder as the server does (open, then gc) and checks it holds exactly the state
//! before the operation or exactly the state after it, with no stray file, for every n.
//!
//! It runs without the test harness (`harness = false`): the same binary is the parent and, with
//! `MURR_CRASH_CHILD` set, the child. It prints its tally as `N passed, N failed`.

#![allow(
    clippy::disallowed_methods,
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use murr_directory::{Directory, FaultMode, FaultyDirectory, MmapDirectory};
use murr_table::{Store, StoreOptions};

const SCENARIOS: [&str; 4] = ["write", "merge", "create", "drop"];

fn options() -> StoreOptions {
    StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    }
}

/// Before the operation: table "t" with three writes (so that a merge has work).
fn setup(store: &Store) {
    let t = store.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..10), 1)]).expect("writes");
    t.write(&[valued(&keys(5..15), 2)]).expect("writes");
    t.write(&[valued(&keys(12..20), 3)]).expect("writes");
}

fn operation(store: &Store, scenario: &str) {
    let _ = match scenario {
        "write" => store.write("t", &[valued(&keys(3..25), 4)]).map(drop),
        "merge" => store.table("t").and_then(|t| t.compact()),
        "create" => store.create_table("u", schema()).map(drop),
        "drop" => store.drop_table("t"),
        other => panic!("unknown scenario {other}"),
    };
}

/// What a reader sees (every table, and `n` of keys k0..k30 of each) and how it is stored (rows
/// and segments: a merge changes only these).
fn state(folder: &Path) -> Vec<(String, Vec<Option<i64>>, u64, usize)> {
    let store = Store::open(
        Arc::new(MmapDirectory::open(folder).expect("opens the folder")),
        options(),
    )
    .expect("opens the store");
    store.gc(Duration::ZERO).expect("collects garbage");
    let mut out = Vec::new();
    for (name, _) in store.schemas() {
        let batch = store.fetch(&name, &keys(0..30), &["n"]).expect("reads");
        let stats = store.table(&name).expect("exists").stats();
        out.push((name.clone(), ns(&batch, 0), stats.rows, stats.segments));
    }
    // Exactly the manifests and the segments they list: nothing else survives the reopen.
    let mut live = 0;
    for (name, _) in store.schemas() {
        live += 1 + store.table(&name).expect("exists").stats().segments;
    }
    let files = store.directory().list("tables").expect("lists");
    assert_eq!(files.len(), live, "stray files: {files:?}");
    out
}

fn child(scenario: &str, folder: &str, fail_at: u64, mode: &str) {
    let mode = match mode {
        "before" => FaultMode::AbortBefore,
        _ => FaultMode::AbortAfter,
    };
    let inner: Arc<dyn Directory> = Arc::new(MmapDirectory::open(folder).expect("opens"));
    let faulty = Arc::new(FaultyDirectory::new(inner, fail_at, mode));
    let store = Store::open(Arc::clone(&faulty) as Arc<dyn Directory>, options()).expect("opens");
    operation(&store, scenario);
    drop(store);
    println!("OPS={}", faulty.ops());
}

fn run_child(scenario: &str, folder: &Path, fail_at: u64, mode: &str) -> (bool, Option<u64>) {
    let out = Command::new(std::env::current_exe().expect("this binary"))
        .env(
            "MURR_CRASH_CHILD",
            format!("{scenario} {} {fail_at} {mode}", folder.display()),
        )
        .output()
        .expect("runs the child");
    let ops = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("OPS=").and_then(|n| n.parse().ok()));
    (out.status.success(), ops)
}

fn prepared() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp folder");
    let store = Store::open(
        Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
        options(),
    )
    .expect("opens");
    setup(&store);
    tmp
}

fn main() {
    if let Ok(spec) = std::env::var("MURR_CRASH_CHILD") {
        let parts: Vec<&str> = spec.split(' ').collect();
        let [scenario, folder, fail_at, mode] = parts[..] else {
            panic!("bad child spec {spec:?}");
        };
        child(scenario, folder, fail_at.parse().expect("a number"), mode);
        return;
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for scenario in SCENARIOS {
        let before_dir = prepared();
        let before = state(before_dir.path());
        // A clean run counts the operation's steps and gives the state after it.
        let clean = prepared();
        let (ok, ops) = run_child(scenario, clean.path(), u64::MAX, "before");
        assert!(ok, "{scenario}: the clean run failed");
        let ops = ops.expect("the clean run counts its steps");
        assert!(ops > 0, "{scenario}: no storage step to crash at");
        let after = state(clean.path());
        assert_ne!(before, after, "{scenario}: the operation changes nothing");
        for fail_at in 1..=ops {
            for mode in ["before", "after"] {
                let folder = prepared();
                let (ok, _) = run_child(scenario, folder.path(), fail_at, mode);
                let got = state(folder.path());
                let verdict = if ok {
                    Err("the child did not crash".to_owned())
                } else if got == before || got == after {
                    Ok(())
                } else {
                    Err(format!("a state neither before nor after: {got:?}"))
                };
                match verdict {
                    Ok(()) => passed += 1,
                    Err(why) => {
                        failed += 1;
                        eprintln!("{scenario}, crash at step {fail_at} ({mode}): {why}");
                    }
                }
            }
        }
        println!("disk_crash: {scenario}: {ops} storage steps, crashed before and after each");
    }
    println!("disk_crash: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

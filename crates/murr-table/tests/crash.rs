//! A crash at every step of a write, a merge, a create and a drop leaves the old state or the new.
//!
//! A [`FaultyDirectory`] fails the n-th mutating operation and every later one (as a dead process
//! would), either before the operation takes effect or after it (a crash before the acknowledgement).
//! Then the store is reopened on the surviving files, and must show exactly the state before the
//! operation or exactly the state after it, with no stray file left behind.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::sync::Arc;

use common::*;
use murr_directory::{Directory, FaultMode, FaultyDirectory, RamDirectory};
use murr_table::{Store, StoreOptions};

fn options() -> StoreOptions {
    StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    }
}

/// The store reopened after a crash, as the server reopens it: open, then gc what no table needs.
fn reopen(dir: &Arc<RamDirectory>) -> Store {
    let store = Store::open(dir.clone(), options()).expect("reopens after a crash");
    store
        .gc(std::time::Duration::ZERO)
        .expect("collects garbage");
    store
}

/// `n` of every key 0..30 of table "t" and the rows it stores, or `None` when it does not exist.
fn state(dir: &Arc<RamDirectory>) -> Option<(Vec<Option<i64>>, u64)> {
    let store = reopen(dir);
    let t = store.table("t").ok()?;
    Some((
        ns(&t.fetch(&keys(0..30), &["n"]).expect("fetches"), 0),
        t.stats().rows,
    ))
}

/// Files are exactly the manifest and the segments it lists (the reopen removed the rest),
/// besides the record of the format versions the writer reads and the copies of a publish that
/// did not commit (gc keeps them for a while: a publish runs in another process and may be about
/// to commit them).
fn no_strays(dir: &Arc<RamDirectory>) {
    let store = reopen(dir);
    let mut manifests = 0;
    let mut segments = std::collections::HashSet::new();
    for (name, _) in store.schemas() {
        manifests += 1;
        let table = store.table(&name).expect("exists");
        for s in table.snapshot().segments() {
            segments.insert(s.path().to_string());
        }
    }
    let files = dir.list("").expect("lists");
    let kept = files
        .iter()
        .filter(|f| {
            let path = f.path.as_str();
            path != murr_table::FORMATS
                && (segments.contains(path) || !is_publish_copy(f.path.file_name()))
        })
        .count();
    assert_eq!(kept, manifests + segments.len(), "{files:?}");
}

/// Runs `op` against a copy of the store set up by `setup`, crashing at each step in turn.
fn crash_at_every_step(setup: impl Fn(&Store), op: impl Fn(&Store) -> bool) {
    // A clean run counts the steps and gives the state after.
    let base = Arc::new(RamDirectory::new());
    setup(&Store::open(base.clone(), options()).expect("opens"));
    let before = state(&base);
    let counting = Arc::new(FaultyDirectory::new(
        base.clone(),
        u64::MAX,
        FaultMode::Before,
    ));
    assert!(
        op(&Store::open(counting.clone(), options()).expect("opens")),
        "clean run succeeds"
    );
    let steps = counting.ops();
    let after = state(&base);
    assert_ne!(before, after, "the operation changes something");
    assert!(steps >= 1);
    for fail_at in 1..=steps {
        for mode in [FaultMode::Before, FaultMode::After] {
            let dir = Arc::new(RamDirectory::new());
            setup(&Store::open(dir.clone(), options()).expect("opens"));
            let faulty = Arc::new(FaultyDirectory::new(dir.clone(), fail_at, mode));
            let succeeded = op(&Store::open(faulty.clone(), options()).expect("opens"));
            assert!(faulty.crashed());
            let got = state(&dir);
            // A failure after the commit point (cleanup of old files) may still report success,
            // and then the new state must be there; otherwise either state is fine.
            assert!(
                got == after || (!succeeded && got == before),
                "step {fail_at}/{steps} {mode:?} (reported ok: {succeeded}): state is {got:?}"
            );
            no_strays(&dir);
        }
    }
}

/// A name `publish` gives its copies: `seg-<incarnation>-<n>-p<16 hex digits>.murr`.
fn is_publish_copy(name: &str) -> bool {
    name.strip_suffix(".murr")
        .and_then(|n| n.rsplit_once("-p"))
        .is_some_and(|(_, tag)| tag.len() == 16 && tag.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn with_data(store: &Store) {
    let t = store.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..20), 1)]).expect("writes");
    t.write(&[valued(&keys(5..10), 2)]).expect("writes");
    t.write(&[valued(&keys(8..12), 3)]).expect("writes");
}

#[test]
fn crash_during_write() {
    crash_at_every_step(with_data, |store| {
        store.write("t", &[valued(&keys(10..30), 4)]).is_ok()
    });
}

#[test]
fn crash_during_merge() {
    crash_at_every_step(
        |store| {
            with_data(store);
            // Make the merge change what is stored: the old rows of k5..k12 go.
            store
                .write("t", &[valued(&keys(25..30), 5)])
                .expect("writes");
        },
        |store| {
            let t = store.table("t").expect("exists");
            let rows = t.stats().rows;
            let ok = t.compact().is_ok();
            // The visible data is the same before and after a merge; check the rows really shrank.
            ok && t.stats().rows < rows && t.stats().segments == 1
        },
    );
}

#[test]
fn crash_during_create_and_drop() {
    crash_at_every_step(|_| {}, |store| store.create_table("t", schema()).is_ok());
    crash_at_every_step(with_data, |store| store.drop_table("t").is_ok());
}

#[test]
fn crash_during_publish() {
    let segment = |rows: std::ops::Range<usize>, v: i64| {
        let mut b = murr_segment::SegmentBuilder::new(&schema()).expect("schema");
        b.push(valued(&keys(rows), v)).expect("pushes");
        let mut out = Vec::new();
        b.finish(&mut out).expect("builds");
        murr_table::PublishSegment {
            name: format!("built-{v}.murr"),
            bytes: out.into(),
        }
    };
    let built = [segment(10..20, 7), segment(15..30, 8)];
    for mode in [
        murr_table::PublishMode::Append,
        murr_table::PublishMode::Replace,
    ] {
        crash_at_every_step(with_data, |store| {
            murr_table::publish(store.directory().as_ref(), "t", &built, mode).is_ok()
        });
    }
}

//! Background merges of more than `StoreOptions::merge_hold_bytes` wait while a table's writes
//! come in, and run once the writes stop (or once the table has too many segments); smaller
//! merges run at once.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions, Table};

fn store(hold_bytes: u64, quiet: Duration) -> (tempfile::TempDir, Store, Arc<Table>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(
        Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
        StoreOptions {
            merge_factor: 2,
            idle_compaction: None,
            merge_hold_bytes: hold_bytes,
            write_quiet: quiet,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let t = store.create_table("t", schema()).expect("creates");
    (tmp, store, t)
}

/// `writes` writes of 1000 keys each, back to back; write `w` holds keys `w*1000..` with n = w.
fn write_back_to_back(t: &Table, writes: usize) {
    for w in 0..writes {
        t.write(&[valued(&keys(w * 1000..(w + 1) * 1000), w as i64)])
            .expect("writes");
    }
}

fn wait_for(t: &Table, what: &str, done: impl Fn(usize) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(t.stats().segments) {
        assert!(Instant::now() < deadline, "{what}: {:?}", t.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_reads_right(t: &Table, writes: usize) {
    let all = keys(0..writes * 1000);
    let got = ns(&t.fetch(&all, &["n"]).expect("reads"), 0);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, Some((i / 1000) as i64), "k{i}");
    }
}

#[test]
fn merges_wait_while_writes_come_in_and_run_once_they_stop() {
    // Every merge is held (0 bytes); writes count as coming in for 2 s after the last.
    let (_tmp, _store, t) = store(0, Duration::from_secs(2));
    // Four writes of a tier: merged in pairs, then the pair of pairs, into one segment.
    write_back_to_back(&t, 4);
    assert_eq!(t.stats().segments, 4, "no merge ran between the writes");
    assert_reads_right(&t, 4);
    wait_for(&t, "merged once the writes stopped", |s| s == 1);
    assert_reads_right(&t, 4);
}

#[test]
fn small_merges_run_while_writes_come_in() {
    // Merges of less than 1 GiB never wait, however recent the writes.
    let (_tmp, _store, t) = store(1 << 30, Duration::from_secs(600));
    write_back_to_back(&t, 4);
    wait_for(&t, "merged while the writes were recent", |s| s == 1);
    assert_reads_right(&t, 4);
}

#[test]
fn held_merges_run_when_a_table_has_too_many_segments() {
    // Writes stay "recent" for the whole test: only the segment cap lets merges run.
    let (_tmp, _store, t) = store(0, Duration::from_secs(600));
    write_back_to_back(&t, 24);
    wait_for(&t, "merged down to the cap", |s| s <= 16);
    assert_reads_right(&t, 24);
}

//! Rows a newer write replaces stop costing memory before the merges: the merge thread marks
//! them in the larger, older segment and the directory drops the pages whose every row is
//! replaced; reads stay right (a dropped page comes back from the file if read), and merges
//! skip the marked rows.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use murr_directory::MmapDirectory;
use murr_table::{Store, StoreOptions};

/// A store on local disk (pages that can be dropped) with table `t`, with the merge thread
/// running, without idle compaction, merging `merge_factor` segments of a tier.
fn table_on_disk(merge_factor: usize) -> (tempfile::TempDir, Store, Arc<murr_table::Table>) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(
        Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
        StoreOptions {
            merge_factor,
            idle_compaction: None,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let t = store.create_table("t", schema()).expect("creates");
    (tmp, store, t)
}

#[test]
fn rows_a_write_replaces_leave_memory_and_reads_stay_right() {
    // The merge thread runs, but merges nothing here: the marks are what is tested.
    let (_tmp, _store, t) = table_on_disk(1000);
    let n = 200_000;
    t.write(&[valued(&keys(0..n), 1)]).expect("writes");
    let old = t.snapshot().segments()[0].clone();
    let resident = || murr_directory::residency::resident_pages_of(old.view().bytes());
    let before = resident();
    // A write of the first quarter of the keys, with new values.
    t.write(&[valued(&keys(0..n / 4), 2)]).expect("rewrites");
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.shadowed_rows() < n / 4 {
        assert!(Instant::now() < deadline, "marked {}", old.shadowed_rows());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(old.shadowed_rows(), n / 4, "only the rewritten keys");
    assert!(old.is_shadowed(0) && old.is_shadowed(n / 4 - 1) && !old.is_shadowed(n / 4));
    // The rows of the first quarter filled about a quarter of the row block's pages.
    let row_block = old.view().meta().rows_section.len as usize;
    let quarter_pages = row_block / 4 / 4096;
    let after = resident();
    assert!(
        before - after + 2 >= quarter_pages,
        "resident pages {before} -> {after}, a quarter of the rows is {quarter_pages} pages"
    );
    // A second write of the next quarter drops its pages too.
    t.write(&[valued(&keys(n / 4..n / 2), 3)])
        .expect("rewrites");
    let deadline = Instant::now() + Duration::from_secs(20);
    while old.shadowed_rows() < n / 2 {
        assert!(Instant::now() < deadline, "marked {}", old.shadowed_rows());
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after2 = resident();
    assert!(
        after - after2 + 2 >= quarter_pages,
        "resident pages {after} -> {after2} after the second write, a quarter of the rows is {quarter_pages} pages"
    );
    // Reads: the new values, and the old ones of the keys not rewritten.
    let probe = [0, n / 4 - 1, n / 4, n - 1];
    let probe_keys: Vec<String> = probe.iter().map(|&i| format!("k{i}")).collect();
    assert_eq!(
        ns(&t.fetch(&probe_keys, &["n"]).expect("reads"), 0),
        [Some(2), Some(2), Some(3), Some(1)]
    );
    // A reader of the old snapshot reads a dropped row: it comes back from the file.
    let row0 = murr_segment::gather(
        std::slice::from_ref(&old),
        "n",
        murr_format::DType::Int64,
        &[murr_segment::Loc { seg: 0, row: 0 }],
    )
    .expect("gathers");
    let row0 = row0
        .as_any()
        .downcast_ref::<arrow_array::Int64Array>()
        .expect("int64");
    assert_eq!(row0.value(0), 1);
    // A merge skips the marked rows and keeps every key's last write.
    t.compact().expect("compacts");
    assert_eq!(t.stats().rows, n as u64);
    assert_eq!(
        ns(&t.fetch(&probe_keys, &["n"]).expect("reads"), 0),
        [Some(2), Some(2), Some(3), Some(1)]
    );
}

#[test]
fn a_refresh_in_random_order_marks_every_old_row_and_merges_right() {
    let (_tmp, _store, t) = table_on_disk(StoreOptions::default().merge_factor);
    let n = 60_000;
    t.write(&[valued(&keys(0..n), 1)]).expect("writes");
    let old = t.snapshot().segments()[0].clone();
    // Every key again, in five writes of scattered keys, merged as they come.
    for part in 0..5 {
        let ks: Vec<String> = (0..n)
            .filter(|i| (i * 7919) % 5 == part)
            .map(|i| format!("k{i}"))
            .collect();
        t.write(&[valued(&ks, 2 + part as i64)]).expect("rewrites");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.stats().segments > 1 || t.stats().rows > n as u64 {
        assert!(Instant::now() < deadline, "{:?}", t.stats());
        t.compact().expect("compacts");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(old.shadowed_rows() > 0, "the merge thread marked rows");
    let all = keys(0..n);
    let got = ns(&t.fetch(&all, &["n"]).expect("reads"), 0);
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, Some(2 + ((i * 7919) % 5) as i64), "k{i}");
    }
}

#[test]
fn a_refresh_in_order_drops_the_old_rows_write_by_write() {
    // As a server runs: merges after each write, then a compaction, so the old rows sit in a
    // merged segment; then each quarter of the keys is rewritten. Each write's lookups must not
    // bring back the pages the writes before it dropped (a lookup skips the marked rows).
    let (_tmp, _store, t) = table_on_disk(StoreOptions::default().merge_factor);
    let n = 400_000;
    for i in 0..4 {
        t.write(&[valued(&keys(i * n / 4..(i + 1) * n / 4), 1)])
            .expect("writes");
    }
    // What idle compaction does (the merged file is read in before it returns).
    t.compact().expect("compacts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let old = t.snapshot().segments()[0].clone();
    let resident = || murr_directory::residency::resident_pages_of(old.view().bytes());
    let start = resident();
    let quarter = old.view().meta().rows_section.len as usize / 4 / 4096;
    for i in 0..4 {
        t.write(&[valued(&keys(i * n / 4..(i + 1) * n / 4), 2)])
            .expect("rewrites");
        while old.shadowed_rows() < (i + 1) * n / 4 {
            assert!(Instant::now() < deadline, "marked {}", old.shadowed_rows());
            std::thread::sleep(Duration::from_millis(10));
        }
        let now = resident();
        assert!(
            start - now + 2 * (i + 1) >= (i + 1) * quarter,
            "after rewrite {i}: resident pages {start} -> {now}, {quarter} a quarter"
        );
    }
    let all = keys(0..n);
    assert!(
        ns(&t.fetch(&all, &["n"]).expect("reads"), 0)
            .iter()
            .all(|v| *v == Some(2))
    );
}

#[test]
fn a_merge_reads_its_output_in_once_readers_let_go_of_its_inputs() {
    // A fetch that took the old snapshot before a merge's commit brings back the inputs' pages
    // it reads (2 MiB folios of a file the server wrote): the merged file is read in only once
    // such readers are done, so the two are not resident together.
    // At each warm: whether the test's reader had let go of its snapshot.
    let reader_gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let warms = Arc::new(std::sync::Mutex::new(Vec::new()));
    let dir = {
        let (gone, warms) = (Arc::clone(&reader_gone), Arc::clone(&warms));
        Hooked::new(Arc::new(murr_directory::RamDirectory::new())).on_warm(move || {
            let gone = gone.load(std::sync::atomic::Ordering::SeqCst);
            warms.lock().expect("warms").push(gone);
        })
    };
    let store = Store::open(
        Arc::new(dir),
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    let t = store.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..100), 1)]).expect("writes");
    t.write(&[valued(&keys(50..150), 2)]).expect("writes");
    warms.lock().expect("warms").clear();
    let held = t.snapshot();
    assert_eq!(held.segments().len(), 2);
    let merging = {
        let t = Arc::clone(&t);
        std::thread::spawn(move || t.compact())
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        warms.lock().expect("warms").is_empty(),
        "the merged file is not read in while a reader holds the inputs"
    );
    reader_gone.store(true, std::sync::atomic::Ordering::SeqCst);
    drop(held);
    merging.join().expect("merge thread").expect("compacts");
    assert_eq!(*warms.lock().expect("warms"), vec![true]);
    assert_eq!(t.snapshot().segments().len(), 1);
    let want: Vec<Option<i64>> = (0..150).map(|k| Some(if k < 50 { 1 } else { 2 })).collect();
    assert_eq!(
        ns(&t.fetch(&keys(0..150), &["n"]).expect("fetches"), 0),
        want
    );
}

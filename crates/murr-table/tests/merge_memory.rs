//! A large merge keeps the last write of every key and streams: its peak heap is a few merge
//! batches, not the table; a large write holds little beside its batch (a counting allocator in
//! this test binary measures both).

#![allow(
    clippy::disallowed_methods,
    clippy::clone_on_ref_ptr,
    clippy::print_stdout,
    reason = "tests"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float32Type;
use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch, StringArray};
use murr_directory::MmapDirectory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{MERGE_BATCH_ROWS, ManualClock, Store, StoreOptions};

/// Counts this thread's heap bytes: now and at the peak (the merge runs on the test's thread).
struct Counting;

thread_local! {
    static NOW: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

#[expect(unsafe_code, reason = "a global allocator is unsafe to implement")]
// SAFETY: every call forwards to the system allocator with the same arguments; the counters are
// plain thread-locals with const initialisers, which allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = NOW.try_with(|n| {
            n.set(n.get() + layout.size());
            let _ = PEAK.try_with(|p| p.set(p.get().max(n.get())));
        });
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = NOW.try_with(|n| n.set(n.get().saturating_sub(layout.size())));
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const COLUMNS: usize = 32;
const KEYS: usize = 1_000_000;

/// `id`, then `f0..f31` float32, every fourth one nullable, and `note` utf8 (nullable, too
/// long to sit in the row).
fn schema(notes: bool) -> TableSchema {
    let mut columns = vec![ColumnDef::new("id", DType::Utf8, false)];
    columns.extend(
        (0..COLUMNS).map(|c| ColumnDef::new(format!("f{c}"), DType::Float32, c.is_multiple_of(4))),
    );
    if notes {
        columns.push(ColumnDef::new("note", DType::Utf8, true));
    }
    TableSchema::new("id", columns)
}

fn key(k: usize) -> String {
    format!("key{k:08}")
}

/// Value of column `c` of key `k` in write `w`; `None` when it is null there.
fn value(k: usize, w: usize, c: usize) -> Option<f32> {
    let nullable = c.is_multiple_of(4);
    (!nullable || !(k + c + w).is_multiple_of(5)).then(|| (k * 31 + w * 7 + c) as f32)
}

/// A note on one row in ten: enough to exercise a column stored outside the rows, whose
/// values the encoder holds until the rows are written (the test bounds the rest).
fn note(k: usize, w: usize) -> Option<String> {
    (k + w)
        .is_multiple_of(10)
        .then(|| format!("a note long enough to stay out of the row: {k} {w}"))
}

fn batch(keys: &[usize], w: usize, notes: bool) -> RecordBatch {
    let mut fields: Vec<(String, ArrayRef)> = vec![(
        "id".to_owned(),
        Arc::new(StringArray::from_iter_values(keys.iter().map(|&k| key(k)))),
    )];
    for c in 0..COLUMNS {
        fields.push((
            format!("f{c}"),
            Arc::new(Float32Array::from_iter(
                keys.iter().map(|&k| value(k, w, c)),
            )),
        ));
    }
    if notes {
        fields.push((
            "note".to_owned(),
            Arc::new(StringArray::from_iter(keys.iter().map(|&k| note(k, w)))),
        ));
    }
    RecordBatch::try_from_iter(fields).expect("batch")
}

/// With a column stored outside the rows, the merge reads its batches into arrays.
#[test]
fn a_large_merge_keeps_the_last_writes_and_streams() {
    merge(true);
}

/// With every column in the rows, laid out alike in every segment, the merge copies rows.
#[test]
fn a_large_merge_of_rows_laid_out_alike_copies_them() {
    merge(false);
}

fn merge(notes: bool) {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = Arc::new(MmapDirectory::open(folder.path()).expect("dir"));
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let store = Store::open(
        dir,
        StoreOptions {
            background_merges: false,
            clock: clock.clone(),
            ..StoreOptions::default()
        },
    )
    .expect("store");
    let table = store.create_table("t", schema(notes)).expect("create");
    // Four writes, a second apart, that overlap: the last write of each key wins.
    let writes: Vec<Vec<usize>> = vec![
        (0..600_000).collect(),
        (400_000..KEYS).collect(),
        (0..500_000).step_by(2).collect(),
        (700_000..800_000).collect(),
    ];
    let mut last = vec![usize::MAX; KEYS];
    for (w, keys) in writes.iter().enumerate() {
        for chunk in keys.chunks(250_000) {
            table.write(&[batch(chunk, w, notes)]).expect("write");
        }
        for &k in keys {
            last[k] = w;
        }
        clock.advance(1);
    }
    let segments = table.snapshot().segments().len();
    assert!(segments >= 4, "{segments} segments to merge");
    let table_bytes: usize = table.snapshot().segments().iter().map(|s| s.size()).sum();

    let before = NOW.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let started = std::time::Instant::now();
    table.compact().expect("compact");
    let took = started.elapsed();
    let peak = PEAK.with(Cell::get) - before;
    println!("compact of {KEYS} keys took {took:?}");
    assert_eq!(table.snapshot().segments().len(), 1);

    // One merge batch: its rows as the segment stores them (the merged segment's row width).
    let snapshot = table.snapshot();
    let merged = &snapshot.segments()[0];
    let row_bytes = merged.view().meta().row_width as usize;
    let batch_bytes = MERGE_BATCH_ROWS * row_bytes;
    println!(
        "merge of {} bytes in {segments} segments: peak heap {peak} bytes; one batch {batch_bytes}",
        table_bytes
    );
    // A batch is held as Arrow arrays and as encoder rows; beside them grow the notes (held
    // until the rows are written), the new segment's key index and the write times (under 12
    // bytes a row), and the surviving rows, a bit each (8 bytes each as a list: the bound
    // fails then). Holding the table would take more than twice the merged segment (arrays
    // and rows).
    let note_bytes: usize = (0..KEYS)
        .filter(|_| notes)
        .filter_map(|k| note(k, last[k]))
        .map(|n| n.len() + 8)
        .sum();
    let bound = 4 * batch_bytes + note_bytes + 12 * KEYS;
    let merged_bytes = merged.size();
    println!("bound {bound}, notes {note_bytes}, merged segment {merged_bytes} bytes");
    assert!(peak <= bound, "peak heap {peak} bytes > {bound}");
    assert!(
        peak <= merged_bytes / 2,
        "peak heap {peak} bytes, merged segment {merged_bytes}"
    );

    // Every key has its last write's values.
    let names: Vec<String> = (0..COLUMNS)
        .map(|c| format!("f{c}"))
        .chain(notes.then(|| "note".to_owned()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    for ks in (0..KEYS).collect::<Vec<_>>().chunks(100_000) {
        let keys: Vec<String> = ks.iter().map(|&k| key(k)).collect();
        let got = table.fetch(&keys, &names).expect("fetch");
        for (i, &k) in ks.iter().enumerate() {
            let w = last[k];
            for c in 0..COLUMNS {
                let col = got.column(c).as_primitive::<Float32Type>();
                let have = col.is_valid(i).then(|| col.value(i));
                assert_eq!(have, value(k, w, c), "key {k} column f{c}");
            }
            if notes {
                let col = got.column(COLUMNS).as_string::<i32>();
                let have = col.is_valid(i).then(|| col.value(i).to_owned());
                assert_eq!(have, note(k, w), "key {k} note");
            }
        }
    }
    assert_eq!(merged.rows(), KEYS);
}

/// A write of a batch holds little beside the batch itself: the keys' selection and the new
/// segment's index and encoder (the file is written as it is encoded, never held in memory).
#[test]
fn a_large_write_holds_little_beside_its_batch() {
    let folder = tempfile::tempdir().expect("tempdir");
    let dir = Arc::new(MmapDirectory::open(folder.path()).expect("dir"));
    let store = Store::open(
        dir,
        StoreOptions {
            background_merges: false,
            ..StoreOptions::default()
        },
    )
    .expect("store");
    let table = store.create_table("t", schema(false)).expect("create");
    let keys: Vec<usize> = (0..KEYS).collect();
    let batch = batch(&keys, 0, false);
    let batch_bytes = batch.get_array_memory_size();

    let before = NOW.with(Cell::get);
    PEAK.with(|p| p.set(before));
    table.write(&[batch]).expect("write");
    let peak = PEAK.with(Cell::get) - before;
    println!("write of {KEYS} keys, batch {batch_bytes} bytes: peak heap beside it {peak} bytes");
    // Beside the batch: the table finding each key's last row (4 bytes a row, at most half
    // full), the rows kept, the new key index and one window of encoded rows. The whole
    // segment's rows (what the encoder held before it wrote them a window at a time) would
    // be as large as the batch.
    let window = MERGE_BATCH_ROWS * (4 * COLUMNS + 16);
    let bound = 24 * KEYS + window;
    assert!(peak <= bound, "peak heap {peak} bytes > {bound}");
    assert!(
        peak <= batch_bytes / 4,
        "peak heap {peak} bytes, batch {batch_bytes}"
    );
    assert_eq!(table.snapshot().segments()[0].rows(), KEYS);
}

//! One table: its schema, its snapshot of segments, the write path and merges.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Weak};
use std::time::Instant;

use arc_swap::ArcSwap;
use arrow_array::cast::AsArray;
use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, FieldRef, Schema, SchemaRef};
use hashbrown::HashMap;
use murr_directory::{Directory, DirectoryExt, FilePath};
use murr_format::{TableSchema, hash_key};
use murr_segment::{Input, Loc, Rows, Segment, arrow_type, encode, gather, gather_columns};
use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::manifest::{Manifest, SegmentEntry, manifest_path, segment_path};
use crate::normalize::{normalize, storage_schema};
use crate::policy::pick_merge;
use crate::store::Msg;

/// Rows per segment of a streamed write, at most.
const SEGMENT_ROWS: usize = 16 << 20;

/// Rows per batch when a merge reads segments back.
const MERGE_CHUNK_ROWS: usize = 1 << 18;

/// An immutable view of a table: its live segments, oldest first.
/// Readers hold one for the whole of a fetch; writers build a new one and swap it in.
#[derive(Debug, Default)]
pub struct Snapshot {
    segments: Vec<Segment>,
}

impl Snapshot {
    /// The live segments, oldest first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

/// Sizes of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableStats {
    /// Rows stored, counting rows that a later write shadows until a merge drops them.
    pub rows: u64,
    /// Live segments.
    pub segments: usize,
    /// Bytes of the live segment files.
    pub bytes: u64,
}

/// What a write did; its JSON form is the write answer of the front-ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct WriteStats {
    /// Rows received.
    pub rows: u64,
    /// Distinct keys stored (rows minus those a later row of the same write replaced).
    pub stored: u64,
    /// Bytes of the new segment (0 when nothing was written).
    pub bytes: u64,
}

struct State {
    manifest: Manifest,
    dropped: bool,
}

pub(crate) struct TableConfig {
    pub(crate) merge_factor: usize,
    pub(crate) segment_bytes: usize,
    pub(crate) compactor: Option<Sender<Msg>>,
}

/// A table: schema, segments and the key index they carry.
///
/// Reads take the current [`Snapshot`] without locking; writes and merges build a new one and
/// swap it in. One table's writes never block another table.
pub struct Table {
    name: String,
    schema: TableSchema,
    storage_schema: SchemaRef,
    /// Column positions by name, and each column's field in a fetch answer (always nullable: a
    /// missing key reads as nulls), built once instead of per fetch.
    positions: HashMap<String, usize>,
    answer_fields: Vec<FieldRef>,
    dir: Arc<dyn Directory>,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<State>,
    next_segment: AtomicU64,
    merging: Mutex<()>,
    config: TableConfig,
    me: Weak<Table>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Table {
    pub(crate) fn new(
        dir: Arc<dyn Directory>,
        manifest: Manifest,
        segments: Vec<Segment>,
        config: TableConfig,
    ) -> Arc<Table> {
        Arc::new_cyclic(|me| Table {
            name: manifest.table.clone(),
            schema: manifest.schema.clone(),
            storage_schema: storage_schema(&manifest.schema),
            positions: manifest
                .schema
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            answer_fields: manifest
                .schema
                .columns
                .iter()
                .map(|c| Arc::new(Field::new(&c.name, arrow_type(c.dtype), true)))
                .collect(),
            dir,
            snapshot: ArcSwap::from_pointee(Snapshot { segments }),
            next_segment: AtomicU64::new(manifest.next_segment),
            state: Mutex::new(State {
                manifest,
                dropped: false,
            }),
            merging: Mutex::new(()),
            config,
            me: Weak::clone(me),
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's schema.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// The Arrow schema of the table's columns, in order, with the schema's nullability.
    pub fn arrow_schema(&self) -> SchemaRef {
        Arc::clone(&self.storage_schema)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Current sizes.
    pub fn stats(&self) -> TableStats {
        let snap = self.snapshot.load();
        TableStats {
            rows: snap.segments.iter().map(|s| s.rows() as u64).sum(),
            segments: snap.segments.len(),
            bytes: snap.segments.iter().map(|s| s.size() as u64).sum(),
        }
    }

    pub(crate) fn mark_dropped(&self) {
        self.state.lock().dropped = true;
    }

    fn not_found(&self) -> Error {
        Error::TableNotFound {
            table: self.name.clone(),
        }
    }

    /// Writes `batches` atomically: when this returns `Ok` every row is readable and durable;
    /// after an error none is. Within the batches and across writes, the last row of a key wins.
    ///
    /// Columns are matched by name; a column the batches lack is written as nulls.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the column for input that does not fit the schema (nothing is
    /// written); [`Error::TableNotFound`] when the table was dropped; storage errors.
    pub fn write(&self, batches: &[RecordBatch]) -> Result<WriteStats> {
        self.write_stream(batches.iter().cloned().map(Ok))
    }

    /// As [`Table::write`], for batches that arrive one at a time (a large upload being decoded):
    /// every [`StoreOptions::write_segment_bytes`](crate::StoreOptions) of input becomes one segment file as it comes, so memory stays
    /// bounded, and all of them become visible together in one manifest commit at the end.
    /// An `Err` item (a decoding error of the caller's) aborts the write: nothing is visible.
    ///
    /// # Errors
    /// As [`Table::write`], and the first `Err` of `batches`.
    pub fn write_stream(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<WriteStats> {
        let started = Instant::now();
        let mut written: Vec<Segment> = Vec::new();
        let result = self.write_chunks(batches, &mut written, started);
        let stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                for s in &written {
                    let _ = self.dir.delete_if_exists(s.path());
                }
                return Err(e);
            }
        };
        if written.is_empty() {
            return Ok(stats);
        }
        self.commit(|segments| {
            segments.extend(written.iter().cloned());
            Ok(())
        })
        .inspect_err(|e| {
            if matches!(e, Error::TableNotFound { .. }) {
                for s in &written {
                    let _ = self.dir.delete_if_exists(s.path());
                }
            }
        })?;
        tracing::debug!(
            table = %self.name,
            rows = stats.rows,
            stored = stats.stored,
            bytes = stats.bytes,
            segments = written.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "write"
        );
        self.request_merge();
        Ok(stats)
    }

    fn write_chunks(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        written: &mut Vec<Segment>,
        started: Instant,
    ) -> Result<WriteStats> {
        let mut stats = WriteStats::default();
        let mut chunk: Vec<RecordBatch> = Vec::new();
        let mut chunk_bytes = 0usize;
        let mut chunk_rows = 0usize;
        let mut batches = batches.into_iter().peekable();
        while let Some(batch) = batches.next() {
            let batch = normalize(&self.name, &self.schema, &self.storage_schema, &batch?)?;
            chunk_rows += batch.num_rows();
            chunk_bytes += batch.get_array_memory_size();
            if batch.num_rows() > 0 {
                chunk.push(batch);
            }
            let last = batches.peek().is_none();
            if (last || chunk_bytes >= self.config.segment_bytes || chunk_rows >= SEGMENT_ROWS)
                && chunk_rows > 0
            {
                let (rows, stored, segment) = self.write_chunk(&chunk)?;
                stats.rows += rows;
                stats.stored += stored;
                stats.bytes += segment.size() as u64;
                written.push(segment);
                chunk.clear();
                (chunk_rows, chunk_bytes) = (0, 0);
                if !last {
                    tracing::info!(
                        table = %self.name,
                        rows = stats.rows,
                        mb = stats.bytes / (1 << 20),
                        s = started.elapsed().as_secs_f64(),
                        "write in progress"
                    );
                }
            }
        }
        Ok(stats)
    }

    /// Keeps the last row of each key of `batches` and writes them as one uncommitted segment.
    fn write_chunk(&self, batches: &[RecordBatch]) -> Result<(u64, u64, Segment)> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let selections = last_of_each_key(batches, self.schema.key_position());
        let inputs: Vec<Input<'_>> = batches
            .iter()
            .zip(&selections)
            .map(|(batch, rows)| Input { batch, rows })
            .collect();
        let stored: usize = selections.iter().map(Vec::len).sum();
        Ok((rows as u64, stored as u64, self.write_segment(&inputs)?))
    }

    /// Encodes the inputs as a new segment file and opens it. Nothing refers to it yet.
    fn write_segment(&self, inputs: &[Input<'_>]) -> Result<Segment> {
        let id = self.next_segment.fetch_add(1, Ordering::SeqCst);
        let file = self.state.lock().manifest.segment_file(id);
        let path = segment_path(&self.name, &file)?;
        let mut writer = self.dir.create(&path)?;
        encode(&self.schema, inputs, &mut writer)?;
        writer.finish()?;
        Segment::open(self.dir.as_ref(), &path, false).map_err(|e| {
            let _ = self.dir.delete_if_exists(&path);
            Error::from(e)
        })
    }

    /// Applies `change` to the segment list, makes the manifest durable, then publishes the
    /// new snapshot. On error the in-memory state is unchanged.
    fn commit(&self, change: impl FnOnce(&mut Vec<Segment>) -> Result<()>) -> Result<()> {
        let mut state = self.state.lock();
        if state.dropped {
            return Err(self.not_found());
        }
        let mut segments = self.snapshot.load().segments.clone();
        change(&mut segments)?;
        let mut manifest = state.manifest.clone();
        manifest.version += 1;
        manifest.next_segment = manifest
            .next_segment
            .max(self.next_segment.load(Ordering::SeqCst));
        manifest.segments = segments
            .iter()
            .map(|s| SegmentEntry {
                file: s.path().file_name().to_owned(),
                rows: s.rows() as u64,
                bytes: s.size() as u64,
            })
            .collect();
        // A failed replace may or may not have reached the disk: the new segment file is left in
        // place (if unlisted, the next open removes it) and the old state stays in memory.
        self.dir
            .replace(&manifest_path(&self.name)?, &manifest.encode()?)?;
        state.manifest = manifest;
        self.snapshot.store(Arc::new(Snapshot { segments }));
        Ok(())
    }

    /// One row per key, in order: the key's columns as requested, or all nulls for a key that
    /// was never written. The output fields are all nullable and in the requested order.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a column the table does not have.
    pub fn fetch<K: AsRef<str>, C: AsRef<str>>(
        &self,
        keys: &[K],
        columns: &[C],
    ) -> Result<RecordBatch> {
        let mut positions = Vec::with_capacity(columns.len());
        for c in columns {
            let c = c.as_ref();
            let Some(&p) = self.positions.get(c) else {
                return Err(Error::invalid(format!(
                    "column {c:?} is not in table {:?}",
                    self.name
                )));
            };
            positions.push(p);
        }
        let snap = self.snapshot.load();
        let locs = locate(&snap.segments, keys);
        let rows = Rows::new(&snap.segments, &locs);
        let wanted: Vec<(&str, murr_format::DType)> = positions
            .iter()
            .map(|&p| {
                let d = &self.schema.columns[p];
                (d.name.as_str(), d.dtype)
            })
            .collect();
        let arrays = gather_columns(&snap.segments, &rows, &wanted)?;
        let schema = Arc::new(Schema::new(
            positions
                .iter()
                .map(|&p| Arc::clone(&self.answer_fields[p]))
                .collect::<Vec<_>>(),
        ));
        RecordBatch::try_new_with_options(
            schema,
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(keys.len())),
        )
        .map_err(|e| Error::Internal(format!("fetch batch: {e}")))
    }

    fn request_merge(&self) {
        if let Some(tx) = &self.config.compactor {
            let _ = tx.send(Msg::Merge(Weak::clone(&self.me)));
        }
    }

    /// Runs one merge if the policy picks one; returns whether it did.
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub fn merge_step(&self) -> Result<bool> {
        let _merging = self.merging.lock();
        let snap = self.snapshot.load_full();
        let rows: Vec<u64> = snap.segments.iter().map(|s| s.rows() as u64).collect();
        match pick_merge(&rows, self.config.merge_factor) {
            Some(range) => self.merge(&snap, range).map(|()| true),
            None => Ok(false),
        }
    }

    /// Merges every segment into one, dropping shadowed rows.
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub fn compact(&self) -> Result<()> {
        let _merging = self.merging.lock();
        let snap = self.snapshot.load_full();
        let n = snap.segments.len();
        if n <= 1 {
            return Ok(());
        }
        self.merge(&snap, 0..n)
    }

    fn merge(&self, snap: &Snapshot, range: Range<usize>) -> Result<()> {
        let started = Instant::now();
        let run = &snap.segments[range.clone()];
        let newer = &snap.segments[range.end..];
        let before: usize = run.iter().map(Segment::rows).sum();
        let mut batches = Vec::new();
        let mut kept = 0usize;
        for (j, seg) in run.iter().enumerate() {
            let later = &run[j + 1..];
            let mut survivors = Vec::new();
            for row in 0..seg.rows() {
                let key = seg.key(row);
                let h = hash_key(key);
                if !later
                    .iter()
                    .chain(newer)
                    .any(|s| s.find_hashed(key, h).is_some())
                {
                    survivors.push(Loc {
                        seg: j as u32,
                        row: row as u32,
                    });
                }
            }
            kept += survivors.len();
            for chunk in survivors.chunks(MERGE_CHUNK_ROWS) {
                let arrays = self
                    .schema
                    .columns
                    .iter()
                    .map(|c| gather(run, &c.name, c.dtype, chunk))
                    .collect::<Result<Vec<_>, _>>()?;
                batches.push(
                    RecordBatch::try_new(Arc::clone(&self.storage_schema), arrays)
                        .map_err(|e| Error::Internal(format!("merge batch: {e}")))?,
                );
            }
        }
        let merged = if kept == 0 {
            None
        } else {
            let selections: Vec<Vec<u32>> = batches
                .iter()
                .map(|b| (0..b.num_rows() as u32).collect())
                .collect();
            let inputs: Vec<Input<'_>> = batches
                .iter()
                .zip(&selections)
                .map(|(batch, rows)| Input { batch, rows })
                .collect();
            Some(self.write_segment(&inputs)?)
        };
        drop(batches);
        let old: Vec<FilePath> = run.iter().map(|s| s.path().clone()).collect();
        let result = self.commit(|segments| {
            let still_there = segments.len() >= range.end
                && segments[range.clone()]
                    .iter()
                    .map(Segment::path)
                    .eq(old.iter());
            if !still_there {
                return Err(Error::Internal("segments changed under a merge".to_owned()));
            }
            segments.splice(range.clone(), merged.clone());
            Ok(())
        });
        if let Err(e) = result {
            if let Some(m) = &merged
                && !matches!(e, Error::Directory(_))
            {
                let _ = self.dir.delete_if_exists(m.path());
            }
            return Err(e);
        }
        for path in &old {
            if let Err(e) = self.dir.delete_if_exists(path) {
                tracing::warn!(table = %self.name, file = %path, error = %e, "could not delete a merged segment; the next open removes it");
            }
        }
        tracing::info!(
            table = %self.name,
            segments = run.len(),
            rows_in = before,
            rows_out = kept,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "merged segments"
        );
        Ok(())
    }
}

/// For each key, where its newest row lives: segments are searched newest first, each for the
/// keys not found yet, in one batched lookup.
pub(crate) fn locate<K: AsRef<str>>(segments: &[Segment], keys: &[K]) -> Vec<Loc> {
    let mut locs = vec![Loc::MISSING; keys.len()];
    if segments.is_empty() {
        return locs;
    }
    let bytes: Vec<&[u8]> = keys.iter().map(|k| k.as_ref().as_bytes()).collect();
    let hashes: Vec<u64> = bytes.iter().map(|k| hash_key(k)).collect();
    let mut todo: Vec<u32> = (0..keys.len() as u32).collect();
    for (i, s) in segments.iter().enumerate().rev() {
        if todo.is_empty() {
            break;
        }
        s.view().find_many(&bytes, &hashes, &mut todo, |k, row| {
            locs[k as usize] = Loc { seg: i as u32, row };
        });
    }
    locs
}

/// The rows to store from each batch: the last row of every key.
fn last_of_each_key(batches: &[RecordBatch], key: usize) -> Vec<Vec<u32>> {
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut last: HashMap<&str, (u32, u32)> = HashMap::with_capacity(total);
    for (b, batch) in batches.iter().enumerate() {
        let keys = batch.column(key).as_string::<i32>();
        for (r, k) in keys.iter().enumerate() {
            last.insert(k.expect("keys were checked non-null"), (b as u32, r as u32));
        }
    }
    batches
        .iter()
        .enumerate()
        .map(|(b, batch)| {
            let n = batch.num_rows() as u32;
            if last.len() == total {
                return (0..n).collect();
            }
            let keys = batch.column(key).as_string::<i32>();
            (0..n)
                .filter(|&r| last[keys.value(r as usize)] == (b as u32, r))
                .collect()
        })
        .collect()
}

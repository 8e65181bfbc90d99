//! One table: its snapshot (schema and segments), the commit of a new manifest, and the parts
//! that build on it: `write` (the write path), `merge` (merges and compaction), `fetch` (reads).

mod fetch;
mod merge;
mod normalize;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use arrow_schema::{Field, FieldRef, Schema, SchemaRef};
use murr_directory::{Directory, DirectoryExt, FileMeta, FilePath};
use murr_format::{ColumnDef, KeyCodec, TableSchema, Verify};
use murr_segment::Segment;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::manifest::{Manifest, SegmentEntry, manifest_path, segment_path};

pub use merge::MERGE_BATCH_ROWS;
pub(crate) use merge::MergeStep;
pub use write::WriteStats;

/// What a table's readers and writers derive from its schema, built once per schema.
#[derive(Debug)]
pub struct TableMeta {
    pub(crate) schema: TableSchema,
    key: KeyCodec,
    pub(crate) storage_schema: SchemaRef,
    /// Column positions by name.
    positions: HashMap<String, usize>,
    /// Each column's field in a fetch answer (always nullable: a missing key reads as nulls).
    answer_fields: Vec<FieldRef>,
}

impl TableMeta {
    /// What a table of `schema` derives from it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a schema that is not valid.
    pub fn new(schema: TableSchema) -> Result<TableMeta> {
        Ok(TableMeta {
            key: KeyCodec::new(&schema)?,
            // Stored batches: the table's columns, in order, with their nullability.
            storage_schema: Arc::new(Schema::new(
                schema
                    .columns
                    .iter()
                    .map(|c| Field::new(&c.name, c.dtype.to_arrow(), c.nullable))
                    .collect::<Vec<_>>(),
            )),
            positions: schema
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name.clone(), i))
                .collect(),
            answer_fields: schema
                .columns
                .iter()
                .map(|c| Arc::new(Field::new(&c.name, c.dtype.to_arrow(), true)))
                .collect(),
            schema,
        })
    }

    /// The schema.
    pub fn schema(&self) -> &TableSchema {
        &self.schema
    }

    /// How the table's keys are encoded: the API layer turns request keys into them.
    pub fn key_codec(&self) -> &KeyCodec {
        &self.key
    }

    /// The Arrow schema of the table's columns, in order, with the schema's nullability.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.storage_schema
    }

    /// Checks `batch` against the schema and brings it to the schema's exact columns, order and
    /// types, as a write does (`table` names the table in errors): what
    /// [`murr_segment::SegmentBuilder`] takes, from Parquet or Arrow data of wider or other
    /// compatible types.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the column: one the table lacks, a type that does not convert
    /// losslessly, a missing non-nullable column, a null key.
    pub fn normalize(
        &self,
        table: &str,
        batch: &arrow_array::RecordBatch,
    ) -> Result<arrow_array::RecordBatch> {
        normalize::normalize(table, self, batch)
    }

    /// The position of the column with this name.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.positions.get(column).copied()
    }
}

/// An immutable view of a table: its schema and live segments, oldest first.
/// Readers hold one for the whole of a fetch; writers build a new one and swap it in, so a
/// change of schema and the segments written under it become visible together.
#[derive(Debug)]
pub struct Snapshot {
    meta: Arc<TableMeta>,
    segments: Vec<Segment>,
    /// The version of the table's manifest this snapshot shows.
    version: u64,
}

impl Snapshot {
    /// The live segments, oldest first.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The schema and what is derived from it.
    pub fn meta(&self) -> &Arc<TableMeta> {
        &self.meta
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

/// What a table has done since this process loaded it, for metrics: monotonic counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TableCounters {
    /// Fetches answered.
    pub fetches: u64,
    /// Keys those fetches asked for.
    pub keys: u64,
    /// Keys found (neither never written nor expired).
    pub found: u64,
    /// Writes committed.
    pub writes: u64,
    /// Rows those writes held.
    pub rows_written: u64,
    /// Merges committed.
    pub merges: u64,
    /// Time spent in committed merges, in microseconds.
    pub merge_micros: u64,
}

/// Writes of a table running now, and when the last one ended.
#[derive(Debug, Default)]
pub(crate) struct WriteActivity {
    pub(crate) running: usize,
    pub(crate) last_end: Option<std::time::Instant>,
}

/// The live form of [`TableCounters`]: relaxed atomics, a few per request.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    fetches: AtomicU64,
    keys: AtomicU64,
    found: AtomicU64,
    writes: AtomicU64,
    rows_written: AtomicU64,
    merges: AtomicU64,
    merge_micros: AtomicU64,
}

impl Counters {
    pub(crate) fn fetched(&self, keys: usize, found: usize) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.keys.fetch_add(keys as u64, Ordering::Relaxed);
        self.found.fetch_add(found as u64, Ordering::Relaxed);
    }

    pub(crate) fn wrote(&self, rows: u64) {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.rows_written.fetch_add(rows, Ordering::Relaxed);
    }

    pub(crate) fn merged(&self, took: std::time::Duration) {
        self.merges.fetch_add(1, Ordering::Relaxed);
        self.merge_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn read(&self) -> TableCounters {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TableCounters {
            fetches: get(&self.fetches),
            keys: get(&self.keys),
            found: get(&self.found),
            writes: get(&self.writes),
            rows_written: get(&self.rows_written),
            merges: get(&self.merges),
            merge_micros: get(&self.merge_micros),
        }
    }
}

struct State {
    manifest: Manifest,
    /// The file `manifest` was read from or written to: what the next commit supersedes.
    file: FilePath,
    dropped: bool,
}

/// Where a table asks for merges after a write (the store's merge thread). A trait, so that the
/// table knows nothing of the thread: store -> merger -> table has no edge back.
pub(crate) trait MergeRequests: Send + Sync {
    /// Asks for a look at `table`.
    fn request(&self, table: &Weak<Table>);
}

/// Permits for writes in progress, shared by a store's tables: each write holds its input (up
/// to a segment's worth) and the encoded segment in memory, so their number is bounded.
#[derive(Debug)]
pub(crate) struct WriteSlots {
    free: parking_lot::Mutex<usize>,
    freed: parking_lot::Condvar,
}

impl WriteSlots {
    pub(crate) fn new(slots: usize) -> WriteSlots {
        WriteSlots {
            free: parking_lot::Mutex::new(slots.max(1)),
            freed: parking_lot::Condvar::new(),
        }
    }

    /// Waits for a free slot; the slot is given back when the guard drops.
    pub(crate) fn acquire(&self, table: &str) -> WriteSlot<'_> {
        let mut free = self.free.lock();
        if *free == 0 {
            tracing::debug!(table, "a write waits for another to finish");
        }
        while *free == 0 {
            self.freed.wait(&mut free);
        }
        *free -= 1;
        WriteSlot(self)
    }
}

/// A write's permit (see [`WriteSlots`]).
pub(crate) struct WriteSlot<'a>(&'a WriteSlots);

impl Drop for WriteSlot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}

pub(crate) struct TableConfig {
    pub(crate) write_slots: Arc<WriteSlots>,
    pub(crate) merge_factor: usize,
    pub(crate) max_merge_bytes: u64,
    pub(crate) merge_hold_bytes: u64,
    pub(crate) write_quiet: std::time::Duration,
    pub(crate) segment_bytes: usize,
    pub(crate) merger: Option<Arc<dyn MergeRequests>>,
    /// Delete superseded manifests and merged segments at once (local disk, one process):
    /// nobody else can be reading them. Otherwise `Store::gc` removes them after its grace.
    pub(crate) delete_at_once: bool,
    pub(crate) manifest_grace: std::time::Duration,
    pub(crate) read_only: bool,
    pub(crate) clock: Arc<dyn Clock>,
}

/// A change of a table's schema ([`Table::alter`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alter {
    /// Nullable columns to add after the existing ones.
    pub add_columns: Vec<ColumnDef>,
    /// A new time to live: `Some(None)` removes it, `None` leaves it as it is.
    pub ttl: Option<Option<u64>>,
}

/// A table: schema, segments and the key index they carry.
///
/// Reads take the current [`Snapshot`] without locking; writes and merges build a new one and
/// swap it in. One table's writes never block another table.
pub struct Table {
    name: String,
    dir: Arc<dyn Directory>,
    snapshot: ArcSwap<Snapshot>,
    state: Mutex<State>,
    next_segment: AtomicU64,
    merging: Mutex<()>,
    /// Writes running now, and when the last one ended: large merges wait while writes come
    /// in (see [`Table::merge_step_unless_writing`]).
    writes: Mutex<WriteActivity>,
    config: TableConfig,
    /// When the table was loaded: the write time of rows in segments of format versions before
    /// 5, which did not record one.
    loaded_at: i64,
    counters: Counters,
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

/// Opens the segments `manifest` lists, several at a time (checking checksums is a pass over
/// every byte, and a replica may have many to open), reusing those of `open` with the same file.
pub(crate) fn open_segments(
    dir: &dyn Directory,
    manifest: &Manifest,
    open: &[Segment],
    verify: Verify,
) -> Result<Vec<Segment>> {
    let entries = &manifest.segments;
    let mut out: Vec<Option<Segment>> = entries
        .iter()
        .map(|e| {
            open.iter()
                .find(|s| s.path().file_name() == e.file)
                .cloned()
        })
        .collect();
    let todo: Vec<usize> = (0..entries.len()).filter(|&i| out[i].is_none()).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(todo.len())
        .max(1);
    let opened: Vec<Result<(usize, Segment)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let todo = &todo;
                scope.spawn(move || {
                    todo.iter()
                        .skip(t)
                        .step_by(threads)
                        .map(|&i| {
                            let path = segment_path(&manifest.table, &entries[i].file)?;
                            Ok((i, Segment::open(dir, &path, verify)?))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a segment-opening thread panicked"))
            .collect()
    });
    for r in opened {
        let (i, seg) = r?;
        out[i] = Some(seg);
    }
    let segments: Vec<Segment> = out
        .into_iter()
        .map(|s| s.expect("every entry opened"))
        .collect();
    let manifest_file = manifest_path(&manifest.table, manifest.version)?.to_string();
    let codec = KeyCodec::new(&manifest.schema).map_err(|e| Error::CorruptManifest {
        path: manifest_file.clone(),
        reason: format!("schema: {e}"),
    })?;
    for (seg, entry) in segments.iter().zip(entries) {
        if let Err(reason) = agrees(seg, &manifest.schema, codec.stored_column()) {
            return Err(Error::CorruptManifest {
                path: manifest_file,
                reason: format!("segment {}: {reason}", entry.file),
            });
        }
        if seg.rows() as u64 != entry.rows {
            return Err(Error::CorruptManifest {
                path: manifest_file,
                reason: format!(
                    "segment {} has {} rows, the manifest says {}",
                    entry.file,
                    seg.rows(),
                    entry.rows
                ),
            });
        }
    }
    Ok(segments)
}

/// Whether `seg` can be read as a segment of a table of `schema`, whose keys it stores in column
/// `key`: the same key column, and each column the schema has stored with the schema's type (a
/// segment may lack columns: they read as null). A manifest that lists a segment of another
/// schema is corrupt; without this check, every read of the column would fail.
pub(crate) fn agrees(
    seg: &Segment,
    schema: &TableSchema,
    key: &str,
) -> std::result::Result<(), String> {
    let meta = seg.view().meta();
    let stored_key = meta
        .columns
        .get(meta.key_column as usize)
        .map_or("", |c| c.name.as_str());
    if stored_key != key {
        return Err(format!(
            "its key column is {stored_key:?}, the schema's is {key:?}"
        ));
    }
    for c in &meta.columns {
        if let Some(def) = schema.column(&c.name)
            && def.dtype != c.dtype
        {
            return Err(format!(
                "it stores column {:?} as {}, the schema says {}",
                c.name, c.dtype, def.dtype
            ));
        }
    }
    Ok(())
}

impl Table {
    pub(crate) fn new(
        dir: Arc<dyn Directory>,
        manifest: Manifest,
        file: FilePath,
        segments: Vec<Segment>,
        config: TableConfig,
    ) -> Result<Arc<Table>> {
        let meta = Arc::new(TableMeta::new(manifest.schema.clone())?);
        let loaded_at = config.clock.now();
        Ok(Arc::new_cyclic(|me| Table {
            name: manifest.table.clone(),
            dir,
            snapshot: ArcSwap::from_pointee(Snapshot {
                meta,
                segments,
                version: manifest.version,
            }),
            next_segment: AtomicU64::new(manifest.next_segment),
            state: Mutex::new(State {
                manifest,
                file,
                dropped: false,
            }),
            merging: Mutex::new(()),
            writes: Mutex::new(WriteActivity::default()),
            config,
            loaded_at,
            counters: Counters::default(),
            me: Weak::clone(me),
        }))
    }

    /// Numbers the segments this table writes from here on past every segment of its
    /// incarnation among `files` (its folder's listing), committed or not: a segment another
    /// writer (or a crashed write) left has a number no new segment may take.
    pub(crate) fn number_past_segments_in(&self, files: &[FileMeta]) {
        let incarnation = self.state.lock().manifest.incarnation.clone();
        if let Some(id) = crate::manifest::highest_segment(files, &incarnation) {
            self.next_segment.fetch_max(id + 1, Ordering::SeqCst);
        }
    }

    /// The files of the segments the table serves.
    pub(crate) fn segment_paths(&self) -> Vec<FilePath> {
        self.snapshot
            .load()
            .segments
            .iter()
            .map(|s| s.path().clone())
            .collect()
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's current schema (a copy: it may change with the next commit).
    pub fn schema(&self) -> TableSchema {
        self.snapshot.load().meta.schema.clone()
    }

    /// The current schema and what is derived from it.
    pub fn meta(&self) -> Arc<TableMeta> {
        Arc::clone(&self.snapshot.load().meta)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The version of the table's manifest that the current snapshot shows, and the
    /// incarnation it belongs to (a table dropped and created again is a new incarnation).
    pub fn version(&self) -> (String, u64) {
        let state = self.state.lock();
        (state.manifest.incarnation.clone(), state.manifest.version)
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

    /// What the table has done since this process loaded it.
    pub fn counters(&self) -> TableCounters {
        self.counters.read()
    }

    pub(crate) fn mark_dropped(&self) {
        self.state.lock().dropped = true;
    }

    pub(crate) fn manifest(&self) -> Manifest {
        self.state.lock().manifest.clone()
    }

    fn not_found(&self) -> Error {
        Error::TableNotFound {
            table: self.name.clone(),
        }
    }

    fn check_writable(&self, what: &str) -> Result<()> {
        if self.config.read_only {
            return Err(Error::ReadOnly {
                what: format!("{what} of table {:?}", self.name),
            });
        }
        Ok(())
    }

    /// The table layer's clock: now, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.config.clock.now()
    }

    /// When `row` of `seg` was written (seconds since the Unix epoch).
    #[inline]
    pub(crate) fn written(&self, seg: &Segment, row: usize) -> i64 {
        let view = seg.view();
        if view.meta().written.is_some() {
            view.written(row)
        } else {
            self.loaded_at
        }
    }

    /// When the rows of `seg` were written: the earliest and the latest.
    pub(crate) fn write_span(&self, seg: &Segment) -> (i64, i64) {
        match seg.view().meta().written {
            Some(w) => (w.min, w.max),
            None => (self.loaded_at, self.loaded_at),
        }
    }

    /// Applies `change` to the segment list, writes the next manifest (create-once), then
    /// publishes the new snapshot. On error the in-memory state is unchanged.
    fn commit(&self, change: impl FnOnce(&mut Vec<Segment>) -> Result<()>) -> Result<()> {
        self.commit_schema(|_| Ok(None), change)
    }

    /// As [`Table::commit`]; `schema` may also give the table a new schema (from the current
    /// one, under the commit lock: two changes never race).
    fn commit_schema(
        &self,
        schema: impl FnOnce(&TableSchema) -> Result<Option<TableSchema>>,
        change: impl FnOnce(&mut Vec<Segment>) -> Result<()>,
    ) -> Result<()> {
        let mut state = self.state.lock();
        if state.dropped {
            return Err(self.not_found());
        }
        let snap = self.snapshot.load();
        let new_meta = match schema(&snap.meta.schema)? {
            Some(schema) => Arc::new(TableMeta::new(schema)?),
            None => Arc::clone(&snap.meta),
        };
        let mut segments = snap.segments.clone();
        change(&mut segments)?;
        let mut manifest = state.manifest.clone();
        manifest.schema = new_meta.schema.clone();
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
        // A failed write may or may not have reached storage: the new segment files are left in
        // place (if unlisted, gc removes them) and the old state stays in memory.
        let file = match manifest.create(self.dir.as_ref()) {
            Ok(file) => file,
            Err(e @ Error::Conflict { .. }) => {
                drop(state);
                self.catch_up();
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let version = manifest.version;
        state.manifest = manifest;
        state.file = file;
        self.snapshot.store(Arc::new(Snapshot {
            meta: new_meta,
            segments,
            version,
        }));
        drop(state);
        if self.config.delete_at_once {
            self.drop_superseded_manifests();
        }
        Ok(())
    }

    /// Deletes the manifests superseded for longer than the manifest grace (a writer alone on
    /// its storage: nobody else reads them; see `StoreOptions::manifest_grace`).
    fn drop_superseded_manifests(&self) {
        let folder = crate::manifest::table_folder(&self.name);
        let files = match self.dir.list(&folder) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "could not list the table's manifests; superseded ones stay until gc");
                return;
            }
        };
        let now = std::time::SystemTime::now();
        let (superseded, _) = crate::manifest::superseded(&files, |f| {
            now.duration_since(f.modified).unwrap_or_default() >= self.config.manifest_grace
        });
        for m in superseded {
            if let Err(e) = self.dir.delete_if_exists(&m.path) {
                tracing::warn!(table = %self.name, file = %m.path, error = %e, "could not delete a superseded manifest; gc removes it");
            }
        }
    }

    /// Changes the table's schema: adds nullable columns after the existing ones (rows written
    /// before read null in them; no data is rewritten) and sets or removes the time to live
    /// (which applies to the rows already written). Writes running meanwhile commit under the
    /// old schema or the new one, never a mix. Returns the new schema.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty change, a bad column name, a non-nullable new column or
    /// a bad ttl; [`Error::ColumnExists`] for a column the table has; [`Error::ReadOnly`];
    /// storage errors. Nothing changes on error.
    pub fn alter(&self, alter: &Alter) -> Result<TableSchema> {
        self.check_writable("a schema change")?;
        if alter.add_columns.is_empty() && alter.ttl.is_none() {
            return Err(Error::invalid(
                "the change is empty: give columns to add, or a ttl",
            ));
        }
        let mut changed = None;
        self.commit_schema(
            |current| {
                let mut schema = current.clone();
                for c in &alter.add_columns {
                    if let Some(old) = current.column(&c.name) {
                        return Err(Error::ColumnExists {
                            table: self.name.clone(),
                            column: c.name.clone(),
                            detail: if old.dtype == c.dtype {
                                String::new()
                            } else {
                                format!(
                                    " as {}; a column's type never changes (this asks for {})",
                                    old.dtype, c.dtype
                                )
                            },
                        });
                    }
                    if !c.nullable {
                        return Err(Error::invalid(format!(
                            "column {:?} must be nullable: the rows already written have no \
                             value for it",
                            c.name
                        )));
                    }
                    schema.columns.push(c.clone());
                }
                if let Some(ttl) = alter.ttl {
                    schema.ttl = ttl;
                }
                // Names, duplicates within the change, and the ttl's bounds.
                schema.validate()?;
                changed = Some(schema.clone());
                Ok(Some(schema))
            },
            |_| Ok(()),
        )?;
        let schema = changed.expect("committed");
        tracing::info!(
            table = %self.name,
            added = alter.add_columns.len(),
            ttl = ?schema.ttl,
            columns = schema.columns.len(),
            "schema changed"
        );
        // The merge thread looks again at when rows expire.
        self.request_merge();
        Ok(schema)
    }

    /// After losing a commit to another writer: loads the table's newest manifest, so that the
    /// next change applies on top of it instead of losing every race that follows.
    fn catch_up(&self) {
        let folder = crate::manifest::table_folder(&self.name);
        let caught = self
            .dir
            .list(&folder)
            .map_err(Error::from)
            .and_then(|files| {
                self.number_past_segments_in(&files);
                match crate::manifest::read_latest(self.dir.as_ref(), &self.name, &files)? {
                    Some((m, file)) => self.apply_manifest(m, file, Verify::Full),
                    None => Ok(false),
                }
            });
        match caught {
            Ok(true) => {
                tracing::warn!(table = %self.name, version = self.manifest().version, "another writer committed to this table; loaded its state")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "another writer committed to this table, and its state does not load")
            }
        }
    }

    /// Makes `manifest` (a newer version of this table, read from `file`, written by another
    /// process: the writer, seen from a replica) the table's state: opens the segments it adds, reuses the
    /// open ones it keeps, and swaps the new snapshot in. Readers of the old snapshot finish on
    /// it. Does nothing when `manifest` is not newer than the current one.
    ///
    /// # Errors
    /// Storage and format errors of the new segments, [`Error::Invalid`] for a manifest of
    /// another incarnation (the table was dropped and created again: load it anew).
    pub fn apply_manifest(
        &self,
        manifest: Manifest,
        file: FilePath,
        verify: Verify,
    ) -> Result<bool> {
        let mut state = self.state.lock();
        if manifest.incarnation != state.manifest.incarnation {
            return Err(Error::invalid(format!(
                "manifest of table {:?} belongs to another incarnation",
                self.name
            )));
        }
        if manifest.version <= state.manifest.version {
            return Ok(false);
        }
        let snap = self.snapshot.load_full();
        let segments = open_segments(self.dir.as_ref(), &manifest, &snap.segments, verify)?;
        let meta = if manifest.schema == snap.meta.schema {
            Arc::clone(&snap.meta)
        } else {
            Arc::new(TableMeta::new(manifest.schema.clone())?)
        };
        self.next_segment
            .fetch_max(manifest.next_segment, Ordering::SeqCst);
        let version = manifest.version;
        state.manifest = manifest;
        state.file = file;
        let dropped: Vec<FilePath> = snap
            .segments
            .iter()
            .filter(|s| !segments.iter().any(|n| n.path() == s.path()))
            .map(|s| s.path().clone())
            .collect();
        self.snapshot.store(Arc::new(Snapshot {
            meta,
            segments,
            version,
        }));
        drop(state);
        // A writer alone on its storage applies another process's commit (a publish): what
        // that commit superseded, nobody else reads.
        if self.config.delete_at_once && !self.config.read_only {
            self.drop_superseded_manifests();
            for path in &dropped {
                if let Err(e) = self.dir.delete_if_exists(path) {
                    tracing::warn!(table = %self.name, file = %path, error = %e, "could not delete a file another writer's commit superseded; gc removes it");
                }
            }
        }
        Ok(true)
    }
}

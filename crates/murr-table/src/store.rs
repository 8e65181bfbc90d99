//! The catalog: every table in one Directory.
//!
//! A store knows its role. A writer ([`StoreOptions::read_only`] off, the default) creates,
//! drops and writes tables, runs the merge thread, and removes garbage with [`Store::gc`]. A
//! read-only store (a replica) serves reads and follows the writer's commits with
//! [`Store::refresh`]; it never deletes or writes a file, so it can share storage with a writer.
//! Opening a store deletes nothing in either role.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use murr_directory::{Directory, DirectoryExt, FileMeta, FilePath};
use murr_format::{TableSchema, Verify, validate_name};
use parking_lot::RwLock;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::manifest::{
    Manifest, TABLES, manifest_version, manifests, read_latest, superseded, table_of,
};
use crate::merger::MergeThread;
use crate::table::{Table, TableConfig, WriteSlots, WriteStats, open_segments};

/// How a [`Store`] behaves.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Serve reads only: no writes, merges or deletions (a replica following a writer on shared
    /// storage). Default: false.
    pub read_only: bool,
    /// Delete a superseded manifest and the segments a merge replaced right after the commit
    /// that supersedes them: right for storage that no other process reads (the default,
    /// true). With replicas on shared storage, set it off and run [`Store::gc`] with a grace
    /// period, so that a replica still loading them finds them.
    pub delete_at_once: bool,
    /// With [`StoreOptions::delete_at_once`]: how long a superseded manifest stays. Another
    /// process that commits to the table (a publish) reads the newest manifest and creates the
    /// next version within this time; were the version it creates already deleted, its commit
    /// would land in a slot nobody reads. Default: 60 s.
    pub manifest_grace: Duration,
    /// Check every segment's checksum when opening (one pass over its bytes). Default: true.
    pub verify_checksums: bool,
    /// Writes that run at once, over all tables; more wait for one to finish (each holds up to
    /// [`StoreOptions::write_segment_bytes`] of input and its encoded segment in memory).
    /// Default: 2.
    pub max_concurrent_writes: usize,
    /// How many segments of one size tier are merged together. Default: 4.
    pub merge_factor: usize,
    /// No merge takes segments larger than this together (bytes of segment files): a merge
    /// holds its input in memory while it runs. Default: 8 GiB.
    pub max_merge_bytes: u64,
    /// Merge segments on a background thread after writes. Default: true.
    pub background_merges: bool,
    /// A write is cut into segments of about this many bytes of input, so a large upload needs
    /// memory for one segment at a time. Default: 512 MiB.
    pub write_segment_bytes: usize,
    /// With background merges: once a table has had no write for this long, merge all its
    /// segments into one, so that every read probes one index; when the others are small beside
    /// its largest segment (below an eighth of it), only those after it are merged, so that a
    /// few small writes do not rewrite (and on object storage, upload again) the whole table.
    /// `None` keeps only the size-tiered merges. Default: 2 s.
    pub idle_compaction: Option<Duration>,
    /// Tables larger than this (bytes of segment files) are not compacted when idle: a full merge
    /// needs about twice the table's size in memory while it runs. Default: 8 GiB.
    pub idle_compaction_max_bytes: u64,
    /// With background merges: a merge of more than this many bytes of segments waits while
    /// writes to its table come in (one is running, or one ended less than
    /// [`StoreOptions::write_quiet`] ago), unless the table has more than 16 segments. A large
    /// merge beside a large write holds both in memory and takes the cores that reads need; a
    /// refresh's writes are merged once they stop. Smaller merges run at once. Default: 64 MiB.
    pub merge_hold_bytes: u64,
    /// How long a table's writes must have stopped for a held merge to run. Default: 500 ms.
    pub write_quiet: Duration,
    /// With background merges: how often, at most, a table with a time to live has its expired
    /// rows dropped (each time, the segments holding any are rewritten without them). Rows read
    /// as missing from the second they expire; this bounds only how long they keep costing
    /// memory. Default: 60 s.
    pub expiry_interval: Duration,
    /// Where the table layer reads the time (rows' write times, expiry). Default: the system's.
    pub clock: Arc<dyn Clock>,
    /// Called first on the merge thread, before it takes any work: the server confines it to
    /// the CPUs it keeps for background work there. Default: none.
    pub merge_thread_start: Option<ThreadStart>,
}

/// A hook run first on a thread the table layer starts (see
/// [`StoreOptions::merge_thread_start`]).
#[derive(Clone)]
pub struct ThreadStart(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for ThreadStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThreadStart")
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            read_only: false,
            delete_at_once: true,
            manifest_grace: Duration::from_secs(60),
            verify_checksums: true,
            max_concurrent_writes: 2,
            merge_factor: 4,
            max_merge_bytes: 8 << 30,
            background_merges: true,
            write_segment_bytes: 512 << 20,
            idle_compaction: Some(Duration::from_secs(2)),
            idle_compaction_max_bytes: 8 << 30,
            merge_hold_bytes: 64 << 20,
            write_quiet: Duration::from_millis(500),
            expiry_interval: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
            merge_thread_start: None,
        }
    }
}

/// A catalog entry.
#[derive(Debug, Clone)]
enum Entry {
    Ready(Arc<Table>),
    Failed(String),
    /// A create or a drop is writing to storage: the name is taken, the table does not serve.
    /// (Storage is written outside the catalog's lock, so that a slow disk or bucket never
    /// stalls the other tables' requests.)
    Pending,
}

/// What opening a store found, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableStatus {
    /// Loaded and serving.
    Ready,
    /// Could not be loaded; the reason.
    Failed(String),
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcStats {
    /// Files deleted.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// What [`Store::refresh`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshStats {
    /// Tables that appeared (or were created again).
    pub added: usize,
    /// Tables whose newer manifest was applied.
    pub updated: usize,
    /// Tables that were dropped.
    pub removed: usize,
}

/// All tables stored in one [`Directory`].
pub struct Store {
    dir: Arc<dyn Directory>,
    options: StoreOptions,
    write_slots: Arc<WriteSlots>,
    tables: RwLock<BTreeMap<String, Entry>>,
    merge_thread: Option<MergeThread>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("read_only", &self.options.read_only)
            .field("tables", &self.tables.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The files of `dir` under [`TABLES`], by table, for folders whose name is a valid table name.
fn files_by_table(dir: &dyn Directory) -> Result<BTreeMap<String, Vec<FileMeta>>> {
    let mut by_table: BTreeMap<String, Vec<FileMeta>> = BTreeMap::new();
    for file in dir.list(TABLES)? {
        let Some(table) = table_of(&file.path) else {
            continue;
        };
        if validate_name("table", table).is_err() {
            tracing::warn!(file = %file.path, "skipping a file that is not in a murr table's folder");
            continue;
        }
        by_table.entry(table.to_owned()).or_default().push(file);
    }
    Ok(by_table)
}

/// Whether `name` (a file in a table's folder) is a segment file.
fn is_segment(name: &str) -> bool {
    name.starts_with("seg-") && name.ends_with(".murr")
}

/// Whether `path` is a table's segment file: immutable under its name for good (a segment's
/// name carries its table's incarnation and a number no commit hands out twice), so a local
/// tier may keep copies of it by name. Manifests are not: a table dropped and created again
/// numbers its manifests from 1 again.
pub fn is_segment_file(path: &FilePath) -> bool {
    table_of(path).is_some() && is_segment(path.file_name())
}

impl Store {
    /// Opens every table in `dir`: reads its newest manifest and opens (and with
    /// [`StoreOptions::verify_checksums`], verifies) its segments. A table that fails to load is
    /// logged and reported as unavailable; the others serve. Deletes nothing: a writer calls
    /// [`Store::gc`] for that.
    ///
    /// # Errors
    /// Storage errors while listing the directory.
    pub fn open(dir: Arc<dyn Directory>, options: StoreOptions) -> Result<Store> {
        let started = Instant::now();
        let merge_thread = (options.background_merges && !options.read_only).then(|| {
            MergeThread::spawn(
                options.idle_compaction,
                options.idle_compaction_max_bytes,
                options.expiry_interval,
                options.merge_thread_start.clone(),
            )
        });
        let mut store = Store {
            dir,
            write_slots: Arc::new(WriteSlots::new(options.max_concurrent_writes)),
            options,
            tables: RwLock::new(BTreeMap::new()),
            merge_thread,
        };
        let mut entries = BTreeMap::new();
        for (name, files) in files_by_table(store.dir.as_ref())? {
            let loaded = Instant::now();
            let (manifest, file) = match read_latest(store.dir.as_ref(), &name, &files) {
                Ok(Some(found)) => found,
                Ok(None) => {
                    tracing::debug!(table = %name, files = files.len(), "a table folder without a manifest (a create or drop that did not finish); gc removes it");
                    continue;
                }
                Err(e) => {
                    tracing::error!(table = %name, error = %e, "table failed to load; it answers unavailable, other tables serve");
                    entries.insert(name, Entry::Failed(e.to_string()));
                    continue;
                }
            };
            match store.load_table(manifest, file, &files) {
                Ok(table) => {
                    let stats = table.stats();
                    tracing::info!(
                        table = %name,
                        rows = stats.rows,
                        segments = stats.segments,
                        bytes = stats.bytes,
                        ms = loaded.elapsed().as_secs_f64() * 1e3,
                        "table loaded"
                    );
                    entries.insert(name, Entry::Ready(table));
                }
                Err(e) => {
                    tracing::error!(table = %name, error = %e, "table failed to load; it answers unavailable, other tables serve");
                    entries.insert(name, Entry::Failed(e.to_string()));
                }
            }
        }
        let ready = store.ready(&entries);
        *store.tables.get_mut() = entries;
        if !store.options.read_only
            && let Err(e) = crate::publish::StoreFormats::record(store.dir.as_ref())
        {
            tracing::warn!(error = %e, "could not record the segment format versions this server reads; a publish checks against its own");
        }
        tracing::info!(
            tables = ready.len(),
            read_only = store.options.read_only,
            ms = started.elapsed().as_secs_f64() * 1e3,
            "store opened"
        );
        // Tables may have been closed mid-merge: let the merger look at each.
        if let Some(m) = &store.merge_thread {
            m.merger().request_all(&ready);
        }
        Ok(store)
    }

    fn ready(&self, entries: &BTreeMap<String, Entry>) -> Vec<Arc<Table>> {
        entries
            .values()
            .filter_map(|s| match s {
                Entry::Ready(t) => Some(Arc::clone(t)),
                Entry::Failed(_) | Entry::Pending => None,
            })
            .collect()
    }

    fn verify(&self) -> Verify {
        if self.options.verify_checksums {
            Verify::Full
        } else {
            Verify::FooterOnly
        }
    }

    fn config(&self) -> TableConfig {
        TableConfig {
            write_slots: Arc::clone(&self.write_slots),
            merge_factor: self.options.merge_factor,
            max_merge_bytes: self.options.max_merge_bytes,
            merge_hold_bytes: self.options.merge_hold_bytes,
            write_quiet: self.options.write_quiet,
            segment_bytes: self.options.write_segment_bytes.max(1),
            merger: self
                .merge_thread
                .as_ref()
                .map(|m| Arc::new(m.merger().clone()) as Arc<dyn crate::table::MergeRequests>),
            delete_at_once: self.options.delete_at_once,
            manifest_grace: self.options.manifest_grace,
            read_only: self.options.read_only,
            clock: Arc::clone(&self.options.clock),
        }
    }

    /// Opens the table `manifest` (read from `file`) describes.
    fn load_table(
        &self,
        manifest: Manifest,
        file: FilePath,
        files: &[FileMeta],
    ) -> Result<Arc<Table>> {
        let segments = open_segments(self.dir.as_ref(), &manifest, &[], self.verify())?;
        let table = Table::new(
            Arc::clone(&self.dir),
            manifest,
            file,
            segments,
            self.config(),
        )?;
        table.number_past_segments_in(files);
        Ok(table)
    }

    fn check_writable(&self, what: &str) -> Result<()> {
        if self.options.read_only {
            return Err(Error::ReadOnly {
                what: what.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates a table.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad name or schema, [`Error::TableExists`],
    /// [`Error::Conflict`] when another writer created it first, [`Error::ReadOnly`], storage
    /// errors.
    pub fn create_table(&self, name: &str, schema: TableSchema) -> Result<Arc<Table>> {
        self.check_writable("creating a table")?;
        validate_name("table", name)?;
        schema.validate()?;
        {
            let mut tables = self.tables.write();
            match tables.get(name) {
                None => {}
                Some(Entry::Pending) => {
                    return Err(Error::Busy {
                        table: name.to_owned(),
                    });
                }
                Some(_) => {
                    return Err(Error::TableExists {
                        table: name.to_owned(),
                    });
                }
            }
            tables.insert(name.to_owned(), Entry::Pending);
        }
        let created = self.write_new_table(name, schema);
        let mut tables = self.tables.write();
        match created {
            Ok(table) => {
                tables.insert(name.to_owned(), Entry::Ready(Arc::clone(&table)));
                tracing::info!(table = %name, "table created");
                Ok(table)
            }
            Err(e) => {
                tables.remove(name);
                Err(e)
            }
        }
    }

    /// Writes the first manifest of a new table, outside the catalog's lock.
    fn write_new_table(&self, name: &str, schema: TableSchema) -> Result<Arc<Table>> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let manifest = Manifest {
            table: name.to_owned(),
            schema,
            incarnation: format!("{nanos:x}"),
            version: 1,
            next_segment: 1,
            segments: Vec::new(),
        };
        let file = manifest.create(self.dir.as_ref())?;
        Table::new(
            Arc::clone(&self.dir),
            manifest,
            file,
            Vec::new(),
            self.config(),
        )
    }

    /// Drops a table: its name is free at once, its files are deleted. Reads already running
    /// finish on the data they started with.
    ///
    /// # Errors
    /// [`Error::TableNotFound`], [`Error::ReadOnly`], storage errors.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.check_writable("dropping a table")?;
        let entry = {
            let mut tables = self.tables.write();
            match tables.get(name) {
                None => {
                    return Err(Error::TableNotFound {
                        table: name.to_owned(),
                    });
                }
                Some(Entry::Pending) => {
                    return Err(Error::Busy {
                        table: name.to_owned(),
                    });
                }
                Some(_) => tables
                    .insert(name.to_owned(), Entry::Pending)
                    .expect("present"),
            }
        };
        // A commit in progress finishes first; every later one finds the table dropped.
        let incarnation = match &entry {
            Entry::Ready(t) => {
                t.mark_dropped();
                Some(t.manifest().incarnation)
            }
            _ => None,
        };
        let folder = crate::manifest::table_folder(name);
        let deleted = self.dir.list(&folder).and_then(|files| {
            // Manifests go oldest first: the deletion of the newest is the moment of the drop
            // (a crash before it leaves the table as it was).
            for m in manifests(&files) {
                self.dir.delete_if_exists(&m.path)?;
            }
            Ok(files)
        });
        let files = {
            let mut tables = self.tables.write();
            match deleted {
                Ok(files) => {
                    tables.remove(name);
                    files
                }
                Err(e) => {
                    tables.insert(name.to_owned(), entry);
                    return Err(e.into());
                }
            }
        };
        // Only this incarnation's segments: a table created again under the name meanwhile has
        // its own. What is left over, gc removes.
        for f in &files {
            let file = f.path.file_name();
            let ours = incarnation
                .as_ref()
                .is_none_or(|inc| crate::manifest::owns_segment_of(inc, file));
            if is_segment(file)
                && ours
                && let Err(e) = self.dir.delete_if_exists(&f.path)
            {
                tracing::warn!(table = %name, file = %f.path, error = %e, "could not delete a dropped table's file; gc removes it");
            }
        }
        tracing::info!(table = %name, "table dropped");
        Ok(())
    }

    /// Deletes what no table needs any more: manifests superseded for longer than `grace`,
    /// segment files that no kept manifest lists and that are older than `grace`, and the files
    /// of table folders left without a manifest (a create or drop that did not finish). Only
    /// murr's own file names are touched.
    ///
    /// With `grace` zero this is what a single process on local disk runs at start-up. On
    /// shared storage, `grace` must exceed the time a replica takes to load a manifest's
    /// segments and the time a write takes from its first segment to its commit.
    ///
    /// # Errors
    /// [`Error::ReadOnly`], storage errors.
    pub fn gc(&self, grace: Duration) -> Result<GcStats> {
        self.check_writable("garbage collection")?;
        let started = Instant::now();
        let now = SystemTime::now();
        let age = |f: &FileMeta| now.duration_since(f.modified).unwrap_or_default();
        // A publish's copies wait in the table's folder for its commit, from another process:
        // they are kept for PUBLISH_GRACE at least, whatever the grace.
        let old = |f: &FileMeta| {
            let at_least = if crate::publish::is_publish_copy(f.path.file_name()) {
                grace.max(crate::publish::PUBLISH_GRACE)
            } else {
                grace
            };
            age(f) >= at_least
        };
        let mut doomed: Vec<&FileMeta> = Vec::new();
        let by_table = files_by_table(self.dir.as_ref())?;
        for (name, files) in &by_table {
            // A manifest stays while the one after it is younger than the grace period: a
            // replica may still be loading the segments it lists.
            let (superseded, kept) = superseded(files, old);
            if kept.is_empty() {
                doomed.extend(
                    files
                        .iter()
                        .filter(|f| is_segment(f.path.file_name()) && old(f)),
                );
                continue;
            }
            let mut live: HashSet<String> = HashSet::new();
            let mut readable = true;
            for m in kept {
                let bytes = self.dir.open(&m.path)?;
                match Manifest::decode(&m.path, &bytes) {
                    Ok(manifest) => live.extend(manifest.segments.into_iter().map(|s| s.file)),
                    Err(e) => {
                        tracing::warn!(table = %name, file = %m.path, error = %e, "gc leaves a table whose manifest does not read as it is");
                        readable = false;
                    }
                }
            }
            if !readable {
                continue;
            }
            doomed.extend(superseded);
            doomed.extend(files.iter().filter(|f| {
                let file = f.path.file_name();
                is_segment(file) && !live.contains(file) && old(f)
            }));
        }
        let mut stats = GcStats::default();
        for f in doomed {
            debug_assert!(
                is_segment(f.path.file_name()) || manifest_version(&f.path).is_some(),
                "gc only deletes murr's files"
            );
            self.dir.delete_if_exists(&f.path)?;
            stats.files += 1;
            stats.bytes += f.len;
        }
        if stats.files > 0 {
            tracing::info!(
                files = stats.files,
                bytes = stats.bytes,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "removed files no table needs"
            );
        }
        Ok(stats)
    }

    /// For a writer: applies the manifests other processes committed to the tables it serves
    /// (segments published with [`crate::publish`]), so that their rows serve without a
    /// restart. Tables created or dropped elsewhere are not picked up: a writer owns its
    /// catalog. Returns how many tables changed. One listing of the directory per call.
    ///
    /// # Errors
    /// Storage errors while listing; a table whose new state does not load keeps serving the
    /// old one (logged).
    pub fn follow_commits(&self) -> Result<usize> {
        let by_table = files_by_table(self.dir.as_ref())?;
        let tables = self.ready(&self.tables.read());
        let mut changed = 0;
        for table in tables {
            let Some(files) = by_table.get(table.name()) else {
                continue;
            };
            let (incarnation, version) = table.version();
            let newer = crate::manifest::manifests(files)
                .last()
                .and_then(|f| manifest_version(&f.path).flatten())
                .is_some_and(|v| v > version);
            if !newer {
                continue;
            }
            let applied =
                read_latest(self.dir.as_ref(), table.name(), files).and_then(|found| match found {
                    Some((m, file)) if m.incarnation == incarnation => {
                        table.apply_manifest(m, file, self.verify())
                    }
                    _ => Ok(false),
                });
            match applied {
                Ok(true) => {
                    changed += 1;
                    let stats = table.stats();
                    tracing::info!(table = %table.name(), version = table.version().1, rows = stats.rows, segments = stats.segments, "applied a commit of another writer (a publish)");
                    table.request_merge();
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(table = %table.name(), error = %e, "another writer's commit does not load; the table keeps serving what it has");
                }
            }
        }
        Ok(changed)
    }

    /// Brings the catalog up to date with the directory, as another process (the writer) left
    /// it: tables created there appear, dropped ones disappear, and changed ones take their
    /// newest manifest ([`Table::apply_manifest`], which reuses the segments already open).
    /// What a replica runs on every poll; readers never wait for it.
    ///
    /// # Errors
    /// Storage errors while listing; a table that fails to load is reported unavailable.
    pub fn refresh(&self) -> Result<RefreshStats> {
        let mut stats = RefreshStats::default();
        let by_table = files_by_table(self.dir.as_ref())?;
        let current: BTreeMap<String, Entry> = self.tables.read().clone();
        let mut next = BTreeMap::new();
        for (name, files) in &by_table {
            let (manifest, file) = match read_latest(self.dir.as_ref(), name, files) {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(e) => {
                    // Storage trouble or a bad file: a table that serves keeps serving what it has.
                    let keep = current.get(name).filter(|e| matches!(e, Entry::Ready(_)));
                    if keep.is_some() {
                        tracing::warn!(table = %name, error = %e, "cannot read the table's newest manifest; it keeps serving the one before");
                    }
                    let entry = keep
                        .cloned()
                        .unwrap_or_else(|| Entry::Failed(e.to_string()));
                    next.insert(name.clone(), entry);
                    continue;
                }
            };
            if let Some(Entry::Ready(t)) = current.get(name)
                && t.manifest().incarnation == manifest.incarnation
            {
                match t.apply_manifest(manifest, file, self.verify()) {
                    Ok(true) => stats.updated += 1,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(table = %name, error = %e, "could not apply the table's newest manifest; it keeps serving the one before");
                    }
                }
                next.insert(name.clone(), Entry::Ready(Arc::clone(t)));
                continue;
            }
            match self.load_table(manifest, file, files) {
                Ok(t) => {
                    stats.added += 1;
                    next.insert(name.clone(), Entry::Ready(t));
                }
                Err(e) => {
                    tracing::error!(table = %name, error = %e, "table failed to load");
                    next.insert(name.clone(), Entry::Failed(e.to_string()));
                }
            }
        }
        for (name, entry) in &current {
            let gone = !next.contains_key(name);
            let replaced = matches!((entry, next.get(name)), (Entry::Ready(a), Some(Entry::Ready(b))) if !Arc::ptr_eq(a, b));
            if gone || replaced {
                if let Entry::Ready(t) = entry {
                    t.mark_dropped();
                }
                if gone {
                    stats.removed += 1;
                }
            }
        }
        let live: HashSet<FilePath> = next
            .values()
            .filter_map(|e| match e {
                Entry::Ready(t) => Some(t.segment_paths()),
                Entry::Failed(_) | Entry::Pending => None,
            })
            .flatten()
            .collect();
        *self.tables.write() = next;
        // Local copies (a cache tier) of segments no table serves any more.
        match self.dir.retain_local(&|p| live.contains(p)) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(files = n, "removed local copies no table serves"),
            Err(e) => tracing::warn!(error = %e, "could not remove local copies no table serves"),
        }
        if stats != RefreshStats::default() {
            tracing::info!(
                added = stats.added,
                updated = stats.updated,
                removed = stats.removed,
                "catalog refreshed"
            );
        }
        Ok(stats)
    }

    /// The table of this name.
    ///
    /// # Errors
    /// [`Error::TableNotFound`], or [`Error::Unavailable`] when it failed to load.
    pub fn table(&self, name: &str) -> Result<Arc<Table>> {
        match self.tables.read().get(name) {
            Some(Entry::Ready(t)) => Ok(Arc::clone(t)),
            Some(Entry::Failed(reason)) => Err(Error::Unavailable {
                table: name.to_owned(),
                reason: reason.clone(),
            }),
            None | Some(Entry::Pending) => Err(Error::TableNotFound {
                table: name.to_owned(),
            }),
        }
    }

    /// Every table's name and status, sorted by name.
    pub fn tables(&self) -> Vec<(String, TableStatus)> {
        self.tables
            .read()
            .iter()
            .filter_map(|(n, s)| {
                let status = match s {
                    Entry::Ready(_) => TableStatus::Ready,
                    Entry::Failed(r) => TableStatus::Failed(r.clone()),
                    Entry::Pending => return None,
                };
                Some((n.clone(), status))
            })
            .collect()
    }

    /// The schemas of the tables that serve, sorted by name.
    pub fn schemas(&self) -> Vec<(String, TableSchema)> {
        self.tables
            .read()
            .iter()
            .filter_map(|(n, s)| match s {
                Entry::Ready(t) => Some((n.clone(), t.schema())),
                Entry::Failed(_) | Entry::Pending => None,
            })
            .collect()
    }

    /// Shorthand for [`Table::write`] on the named table.
    ///
    /// # Errors
    /// As [`Store::table`] and [`Table::write`].
    pub fn write(&self, table: &str, batches: &[RecordBatch]) -> Result<WriteStats> {
        self.table(table)?.write(batches)
    }

    /// Shorthand for [`Table::fetch`] on the named table (keys encoded, see [`Table::fetch`]).
    ///
    /// # Errors
    /// As [`Store::table`] and [`Table::fetch`].
    pub fn fetch<K: AsRef<[u8]>, C: AsRef<str>>(
        &self,
        table: &str,
        keys: &[K],
        columns: &[C],
    ) -> Result<RecordBatch> {
        self.table(table)?.fetch(keys, columns)
    }

    /// The directory the store lives in.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.dir
    }

    /// Whether the store is read-only (a replica).
    pub fn is_read_only(&self) -> bool {
        self.options.read_only
    }
}

//! The catalog: every table in one Directory, and the background merger.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use murr_directory::{Directory, DirectoryExt, FilePath};
use murr_format::{TableSchema, validate_name};
use murr_segment::Segment;
use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST, Manifest, TABLES, manifest_path, segment_path, table_folder};
use crate::table::{Table, TableConfig, WriteStats};

/// How a [`Store`] behaves.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Check every segment's checksum when opening (one pass over its bytes). Default: true.
    pub verify_checksums: bool,
    /// How many segments of one size tier are merged together. Default: 4.
    pub merge_factor: usize,
    /// Merge segments on a background thread after writes. Default: true.
    pub background_merges: bool,
    /// A write is cut into segments of about this many bytes of input, so a large upload needs
    /// memory for one segment at a time. Default: 512 MiB.
    pub write_segment_bytes: usize,
    /// With background merges: once a table has had no write for this long, merge all its
    /// segments into one, so that every read probes one index. `None` keeps only the size-tiered
    /// merges. Default: 2 s.
    pub idle_compaction: Option<Duration>,
    /// Tables larger than this (bytes of segment files) are not compacted when idle: a full merge
    /// needs about twice the table's size in memory while it runs. Default: 8 GiB.
    pub idle_compaction_max_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            verify_checksums: true,
            merge_factor: 4,
            background_merges: true,
            write_segment_bytes: 512 << 20,
            idle_compaction: Some(Duration::from_secs(2)),
            idle_compaction_max_bytes: 8 << 30,
        }
    }
}

#[derive(Debug, Clone)]
enum Slot {
    Ready(Arc<Table>),
    Failed(String),
}

/// What opening a store found, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableStatus {
    /// Loaded and serving.
    Ready,
    /// Could not be loaded; the reason.
    Failed(String),
}

/// A request to the merge thread.
pub(crate) enum Msg {
    /// Look at this table.
    Merge(Weak<Table>),
    /// Finish.
    Stop,
}

/// All tables stored in one [`Directory`].
pub struct Store {
    dir: Arc<dyn Directory>,
    options: StoreOptions,
    tables: RwLock<BTreeMap<String, Slot>>,
    merger: Option<(Sender<Msg>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .field("tables", &self.tables.read().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens every table in `dir`: reads its manifest, opens (and with
    /// [`StoreOptions::verify_checksums`], verifies) its segments, and removes files no manifest
    /// lists. A table that fails to load is logged and reported as unavailable; the others serve.
    ///
    /// # Errors
    /// Storage errors while listing the directory.
    pub fn open(dir: Arc<dyn Directory>, options: StoreOptions) -> Result<Store> {
        let started = Instant::now();
        let merger = options
            .background_merges
            .then(|| spawn_merger(options.idle_compaction, options.idle_compaction_max_bytes));
        let mut store = Store {
            dir,
            options,
            tables: RwLock::new(BTreeMap::new()),
            merger,
        };
        let mut by_table: BTreeMap<String, Vec<FilePath>> = BTreeMap::new();
        for path in store.dir.list(TABLES)? {
            let mut parts = path.as_str().splitn(3, '/');
            let (Some(_), Some(table), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            by_table
                .entry(table.to_owned())
                .or_default()
                .push(path.clone());
        }
        let mut slots = BTreeMap::new();
        for (name, files) in by_table {
            if validate_name("table", &name).is_err() {
                tracing::warn!(folder = %table_folder(&name), "skipping a folder that is not a murr table");
                continue;
            }
            let manifest = manifest_path(&name)?;
            if !files.contains(&manifest) {
                // A create that never finished, or a drop that did not finish deleting.
                tracing::info!(table = %name, files = files.len(), "removing files of a table without a manifest");
                for f in &files {
                    store.dir.delete_if_exists(f)?;
                }
                continue;
            }
            let loaded = Instant::now();
            match store.load_table(&name) {
                Ok(table) => {
                    let live: Vec<FilePath> = table
                        .snapshot()
                        .segments()
                        .iter()
                        .map(|s| s.path().clone())
                        .collect();
                    for f in files
                        .iter()
                        .filter(|f| **f != manifest && !live.contains(f))
                    {
                        tracing::info!(table = %name, file = %f, "removing a file no manifest lists");
                        store.dir.delete_if_exists(f)?;
                    }
                    let stats = table.stats();
                    tracing::info!(
                        table = %name,
                        rows = stats.rows,
                        segments = stats.segments,
                        bytes = stats.bytes,
                        ms = loaded.elapsed().as_secs_f64() * 1e3,
                        "table loaded"
                    );
                    slots.insert(name, Slot::Ready(table));
                }
                Err(e) => {
                    tracing::error!(table = %name, error = %e, "table failed to load; it answers unavailable, other tables serve");
                    slots.insert(name, Slot::Failed(e.to_string()));
                }
            }
        }
        let ready: Vec<Arc<Table>> = slots
            .values()
            .filter_map(|s| match s {
                Slot::Ready(t) => Some(Arc::clone(t)),
                Slot::Failed(_) => None,
            })
            .collect();
        *store.tables.get_mut() = slots;
        tracing::info!(
            tables = ready.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "store opened"
        );
        // Tables may have been closed mid-merge: let the merger look at each.
        if let Some((tx, _)) = &store.merger {
            for t in &ready {
                let _ = tx.send(Msg::Merge(Arc::downgrade(t)));
            }
        }
        Ok(store)
    }

    fn config(&self) -> TableConfig {
        TableConfig {
            merge_factor: self.options.merge_factor,
            segment_bytes: self.options.write_segment_bytes.max(1),
            compactor: self.merger.as_ref().map(|(tx, _)| tx.clone()),
        }
    }

    fn load_table(&self, name: &str) -> Result<Arc<Table>> {
        let path = manifest_path(name)?;
        let bytes = self.dir.open(&path)?;
        let manifest = Manifest::decode(&path, &bytes)?;
        if manifest.table != name {
            return Err(Error::CorruptManifest {
                path: path.to_string(),
                reason: format!("names table {:?}", manifest.table),
            });
        }
        let mut segments = Vec::with_capacity(manifest.segments.len());
        for entry in &manifest.segments {
            let seg = Segment::open(
                self.dir.as_ref(),
                &segment_path(name, &entry.file)?,
                self.options.verify_checksums,
            )?;
            if seg.rows() as u64 != entry.rows {
                return Err(Error::CorruptManifest {
                    path: path.to_string(),
                    reason: format!(
                        "segment {} has {} rows, the manifest says {}",
                        entry.file,
                        seg.rows(),
                        entry.rows
                    ),
                });
            }
            segments.push(seg);
        }
        Ok(Table::new(
            Arc::clone(&self.dir),
            manifest,
            segments,
            self.config(),
        ))
    }

    /// Creates a table.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad name or schema, [`Error::TableExists`], storage errors.
    pub fn create_table(&self, name: &str, schema: TableSchema) -> Result<Arc<Table>> {
        validate_name("table", name)?;
        schema.validate()?;
        let mut tables = self.tables.write();
        if tables.contains_key(name) {
            return Err(Error::TableExists {
                table: name.to_owned(),
            });
        }
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
        self.dir
            .replace(&manifest_path(name)?, &manifest.encode()?)?;
        let table = Table::new(Arc::clone(&self.dir), manifest, Vec::new(), self.config());
        tables.insert(name.to_owned(), Slot::Ready(Arc::clone(&table)));
        tracing::info!(table = %name, "table created");
        Ok(table)
    }

    /// Drops a table: its name is free at once, its files are deleted. Reads already running
    /// finish on the data they started with.
    ///
    /// # Errors
    /// [`Error::TableNotFound`], storage errors.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        let mut tables = self.tables.write();
        let Some(slot) = tables.get(name) else {
            return Err(Error::TableNotFound {
                table: name.to_owned(),
            });
        };
        if let Slot::Ready(t) = slot {
            t.mark_dropped();
        }
        // The manifest's deletion is the moment of the drop; leftovers are removed at next open.
        self.dir.delete_if_exists(&manifest_path(name)?)?;
        tables.remove(name);
        drop(tables);
        for f in self.dir.list(&table_folder(name))? {
            if f.file_name() != MANIFEST
                && let Err(e) = self.dir.delete_if_exists(&f)
            {
                tracing::warn!(table = %name, file = %f, error = %e, "could not delete a dropped table's file; the next open removes it");
            }
        }
        tracing::info!(table = %name, "table dropped");
        Ok(())
    }

    /// The table of this name.
    ///
    /// # Errors
    /// [`Error::TableNotFound`], or [`Error::Unavailable`] when it failed to load.
    pub fn table(&self, name: &str) -> Result<Arc<Table>> {
        match self.tables.read().get(name) {
            Some(Slot::Ready(t)) => Ok(Arc::clone(t)),
            Some(Slot::Failed(reason)) => Err(Error::Unavailable {
                table: name.to_owned(),
                reason: reason.clone(),
            }),
            None => Err(Error::TableNotFound {
                table: name.to_owned(),
            }),
        }
    }

    /// Every table's name and status, sorted by name.
    pub fn tables(&self) -> Vec<(String, TableStatus)> {
        self.tables
            .read()
            .iter()
            .map(|(n, s)| {
                let status = match s {
                    Slot::Ready(_) => TableStatus::Ready,
                    Slot::Failed(r) => TableStatus::Failed(r.clone()),
                };
                (n.clone(), status)
            })
            .collect()
    }

    /// The schemas of the tables that serve, sorted by name.
    pub fn schemas(&self) -> Vec<(String, TableSchema)> {
        self.tables
            .read()
            .iter()
            .filter_map(|(n, s)| match s {
                Slot::Ready(t) => Some((n.clone(), t.schema().clone())),
                Slot::Failed(_) => None,
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

    /// Shorthand for [`Table::fetch`] on the named table.
    ///
    /// # Errors
    /// As [`Store::table`] and [`Table::fetch`].
    pub fn fetch<K: AsRef<str>, C: AsRef<str>>(
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
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.merger.take() {
            let _ = tx.send(Msg::Stop);
            if handle.join().is_err() {
                tracing::error!("the merge thread panicked");
            }
        }
    }
}

fn spawn_merger(idle: Option<Duration>, idle_max_bytes: u64) -> (Sender<Msg>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Msg>();
    let handle = std::thread::Builder::new()
        .name("murr-merge".to_owned())
        .spawn(move || merge_loop(&rx, idle, idle_max_bytes))
        .expect("spawning a thread");
    (tx, handle)
}

fn log_failure(table: &Table, e: &Error) {
    if !matches!(e, Error::TableNotFound { .. }) {
        tracing::warn!(table = %table.name(), error = %e, "merge failed; the table is unchanged");
    }
}

/// Runs the size-tiered merges a write asks for, and compacts tables that have gone idle.
fn merge_loop(rx: &Receiver<Msg>, idle: Option<Duration>, idle_max_bytes: u64) {
    // Tables written since their last full compaction, by when they were last written.
    let mut pending: Vec<(Weak<Table>, Instant)> = Vec::new();
    loop {
        let wait = match (idle, pending.iter().map(|(_, at)| *at).min()) {
            (Some(idle), Some(oldest)) => idle.saturating_sub(oldest.elapsed()),
            _ => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Msg::Merge(weak)) => {
                let Some(table) = weak.upgrade() else {
                    continue;
                };
                loop {
                    match table.merge_step() {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            log_failure(&table, &e);
                            break;
                        }
                    }
                }
                pending.retain(|(w, _)| !Weak::ptr_eq(w, &weak));
                pending.push((weak, Instant::now()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let Some(idle) = idle else {
            pending.clear();
            continue;
        };
        let (due, waiting): (Vec<_>, Vec<_>) =
            pending.drain(..).partition(|(_, at)| at.elapsed() >= idle);
        pending = waiting;
        for (weak, _) in due {
            let Some(table) = weak.upgrade() else {
                continue;
            };
            let stats = table.stats();
            if stats.segments > 1
                && stats.bytes <= idle_max_bytes
                && let Err(e) = table.compact()
            {
                log_failure(&table, &e);
            }
        }
    }
}

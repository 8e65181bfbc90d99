//! Loads: Parquet dumps read straight from object storage into a table
//! (`POST /api/v1/table/{name}/load`).
//!
//! A load runs on a thread of its own. It lists the files the URL names, reads them row group
//! by row group (several files at once, on a small tokio runtime of the load's own, each file
//! through `ParquetObjectReader`: ranged reads, never the whole file in memory), and hands the
//! batches, in the files' order, to the table's streaming write. The table checks them as it
//! checks any write and commits once, at the end: readers see the old rows until the load is
//! complete, and nothing at all after an error. `replace` swaps every segment in that commit,
//! `upsert` adds the new ones like a write. Progress is in the log and in [`Loads::status`].

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use arrow_array::RecordBatch;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use murr_api::{LoadMode, LoadRequest, LoadState, LoadStatus, WriteAnswer};
use murr_directory::RemoteOptions;
use murr_table::{Store, Table};
use object_store::path::Path as StorePath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use parking_lot::Mutex;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::parquet_upload::{BATCH_ROWS, checked};

/// Files read at once by one load.
const PARALLEL_FILES: usize = 2;
/// Decoded batches a file may have waiting for the write.
const QUEUED_BATCHES: usize = 2;
/// Finished loads whose status is kept (the oldest are forgotten first).
const KEPT_FINISHED: usize = 64;
/// How often a running load logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The loads of one server: running and recently finished.
#[derive(Debug)]
pub struct Loads {
    /// How loads reach object stores (`storage.s3` and the `AWS_*` environment).
    sources: RemoteOptions,
    jobs: Mutex<VecDeque<Arc<Job>>>,
    next: AtomicU64,
}

impl Default for Loads {
    fn default() -> Self {
        Loads::new(RemoteOptions::default())
    }
}

/// One load.
#[derive(Debug)]
struct Job {
    id: String,
    table: String,
    url: String,
    mode: LoadMode,
    started: Instant,
    /// `u64::MAX` until the files are listed.
    files: AtomicU64,
    files_done: AtomicU64,
    rows: AtomicU64,
    bytes: AtomicU64,
    /// The URL of the file whose rows are being written.
    current: Mutex<String>,
    /// `None` while running; then how it ended, and after how long.
    outcome: Mutex<Option<(Result<WriteAnswer, String>, Duration)>>,
}

impl Job {
    fn status(&self) -> LoadStatus {
        let outcome = self.outcome.lock().clone();
        let files = self.files.load(Ordering::Relaxed);
        let (state, error, result, seconds) = match outcome {
            None => (
                LoadState::Running,
                None,
                None,
                self.started.elapsed().as_secs_f64(),
            ),
            Some((Ok(answer), took)) => (LoadState::Done, None, Some(answer), took.as_secs_f64()),
            Some((Err(e), took)) => (LoadState::Failed, Some(e), None, took.as_secs_f64()),
        };
        LoadStatus {
            id: self.id.clone(),
            table: self.table.clone(),
            url: self.url.clone(),
            mode: self.mode,
            state,
            files: (files != u64::MAX).then_some(files),
            files_done: self.files_done.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            seconds,
            error,
            result,
        }
    }

    fn running(&self) -> bool {
        self.outcome.lock().is_none()
    }
}

impl Loads {
    /// No loads yet; they reach object stores with `sources`.
    pub fn new(sources: RemoteOptions) -> Loads {
        Loads {
            sources,
            jobs: Mutex::new(VecDeque::new()),
            next: AtomicU64::new(1),
        }
    }

    /// Starts loading `request.url` into table `table` of `store`; returns at once with the
    /// load's first status (poll [`Loads::status`]).
    ///
    /// # Errors
    /// 404 for a table that does not exist, 400 for a URL that names no store murr can read,
    /// 409 while another load of the table runs.
    pub fn start(
        self: &Arc<Self>,
        store: &Arc<Store>,
        table: &str,
        request: LoadRequest,
    ) -> ApiResult<LoadStatus> {
        let target = store.table(table)?;
        if store.is_read_only() {
            return Err(ApiError::from(murr_table::Error::ReadOnly {
                what: "a load".to_owned(),
            }));
        }
        if is_local(&request.url) {
            return Err(ApiError::bad_request(format!(
                "cannot load from {:?}: a load reads object storage (s3://, gs://, az://), not the server's own disk; write a local file with PUT /api/v1/table/{table}/write",
                request.url
            )));
        }
        let (source, path) = murr_directory::source_store(&request.url, &self.sources, "url")
            .map_err(|e| {
                ApiError::bad_request(format!("cannot load from {:?}: {e}", request.url))
            })?;
        let mut jobs = self.jobs.lock();
        if let Some(running) = jobs.iter().find(|j| j.table == table && j.running()) {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "table {table:?} is being loaded (load {}, from {}): wait for it to end",
                    running.id, running.url
                ),
            ));
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let since_epoch = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let job = Arc::new(Job {
            id: format!("{since_epoch:x}-{n}"),
            table: table.to_owned(),
            url: request.url,
            mode: request.mode,
            started: Instant::now(),
            files: AtomicU64::new(u64::MAX),
            files_done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            current: Mutex::new(String::new()),
            outcome: Mutex::new(None),
        });
        let finished = jobs.iter().filter(|j| !j.running()).count();
        if finished >= KEPT_FINISHED
            && let Some(oldest) = jobs.iter().position(|j| !j.running())
        {
            jobs.remove(oldest);
        }
        jobs.push_back(Arc::clone(&job));
        drop(jobs);
        let status = job.status();
        tracing::info!(table = %job.table, load = %job.id, url = %job.url, mode = ?job.mode, "load started");
        let spawned = std::thread::Builder::new()
            .name("murr-load".to_owned())
            .spawn({
                let job = Arc::clone(&job);
                move || run(&job, &target, source, &path)
            });
        if let Err(e) = spawned {
            let message = format!("cannot start the load's thread: {e}");
            *job.outcome.lock() = Some((Err(message.clone()), Duration::ZERO));
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                message,
            ));
        }
        Ok(status)
    }

    /// The status of load `id` of table `table`, while it runs and for a while after it ended.
    pub fn status(&self, table: &str, id: &str) -> Option<LoadStatus> {
        self.jobs
            .lock()
            .iter()
            .find(|j| j.id == id && j.table == table)
            .map(|j| j.status())
    }
}

/// A table that reloads when a new dump appears: `load.watch` of the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    /// The table loaded into.
    pub table: String,
    /// The prefix watched: the dump's folder (rewritten in place), or the parent of dated
    /// folders, one per dump.
    pub url: String,
    /// How each new dump is loaded (`replace` for a full dump).
    pub mode: LoadMode,
    /// How often the prefix is listed.
    pub interval: Duration,
    /// A file where the last dump loaded is remembered across restarts.
    pub state_file: std::path::PathBuf,
}

/// A dump's completion marker: its identity (path, time and tag) and the folder it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    identity: String,
    folder: String,
}

/// The newest `_SUCCESS` marker under `prefix`: the greatest path (the latest dated folder), or
/// the one marker of a folder rewritten in place (a rewrite changes its time and tag).
async fn latest_marker(
    source: &dyn ObjectStore,
    prefix: &str,
) -> object_store::Result<Option<Marker>> {
    let under = (!prefix.is_empty()).then(|| StorePath::from(prefix));
    let listed: Vec<ObjectMeta> = source.list(under.as_ref()).try_collect().await?;
    Ok(listed
        .into_iter()
        .filter(|m| m.location.filename() == Some("_SUCCESS"))
        .max_by(|a, b| a.location.cmp(&b.location))
        .map(|m| {
            let name = m.location.as_ref();
            Marker {
                identity: format!(
                    "{name} {} {}",
                    m.last_modified.to_rfc3339(),
                    m.e_tag.unwrap_or_default()
                ),
                folder: name.trim_end_matches("_SUCCESS").to_owned(),
            }
        }))
}

impl Loads {
    /// Starts watching `watch.url` for table `watch.table` of `store`: every `watch.interval`
    /// the prefix is listed, and when its newest `_SUCCESS` marker is not the one of the last
    /// dump loaded (remembered in `watch.state_file`), that marker's folder is loaded. A load
    /// that fails is logged and not retried for the same marker. The thread ends when the
    /// store or the loads are dropped.
    ///
    /// # Errors
    /// 400 for a URL that names no store murr can read; the thread failing to start.
    pub fn watch(self: &Arc<Self>, store: &Arc<Store>, watch: Watch) -> ApiResult<()> {
        if is_local(&watch.url) {
            return Err(ApiError::bad_request(format!(
                "load.watch {}: {:?} is not object storage (s3://, gs://, az://)",
                watch.table, watch.url
            )));
        }
        let (source, prefix) =
            murr_directory::source_store(&watch.url, &self.sources, "load.watch")
                .map_err(|e| ApiError::bad_request(format!("load.watch {}: {e}", watch.table)))?;
        let root = store_root(&watch.url, &prefix);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            })?;
        let (loads, store) = (Arc::downgrade(self), Arc::downgrade(store));
        tracing::info!(table = %watch.table, url = %watch.url, every_s = watch.interval.as_secs_f64(), "watching for dumps");
        std::thread::Builder::new()
            .name("murr-load-watch".to_owned())
            .spawn(move || {
                let mut last = std::fs::read_to_string(&watch.state_file).ok();
                let mut failing = false;
                loop {
                    let marker = runtime.block_on(latest_marker(source.as_ref(), &prefix));
                    let (Some(loads), Some(store)) = (loads.upgrade(), store.upgrade()) else {
                        return;
                    };
                    match marker {
                        Err(e) => {
                            if !failing {
                                tracing::warn!(table = %watch.table, url = %watch.url, error = %e, "cannot list the watched prefix; trying again");
                            }
                            failing = true;
                        }
                        Ok(None) => failing = false,
                        Ok(Some(m)) if last.as_deref() == Some(m.identity.as_str()) => failing = false,
                        Ok(Some(m)) => {
                            failing = false;
                            let url = format!("{root}{}", m.folder);
                            tracing::info!(table = %watch.table, url = %url, "a new dump is complete");
                            let request = LoadRequest { url, mode: watch.mode };
                            match loads.start(&store, &watch.table, request) {
                                Ok(status) => {
                                    let ended = loads.wait(&watch.table, &status.id);
                                    if ended.is_some_and(|s| s.state == LoadState::Failed) {
                                        tracing::error!(table = %watch.table, marker = %m.identity, "the new dump did not load; the table keeps its rows until the next dump");
                                    }
                                    match std::fs::write(&watch.state_file, &m.identity) {
                                        Ok(()) => tracing::info!(table = %watch.table, url = %status.url, "dump remembered"),
                                        Err(e) => tracing::warn!(file = %watch.state_file.display(), error = %e, "cannot remember the dump loaded; it loads again after a restart"),
                                    }
                                    last = Some(m.identity);
                                }
                                // Another load of the table is running: the next poll tries again.
                                Err(e) => tracing::warn!(table = %watch.table, error = %e.message, "cannot load the new dump yet"),
                            }
                        }
                    }
                    drop((loads, store));
                    std::thread::sleep(watch.interval);
                }
            })
            .map_err(|e| ApiError::new(axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
        Ok(())
    }

    /// Waits for load `id` of `table` to end; its last status (`None` for a load unknown).
    pub fn wait(&self, table: &str, id: &str) -> Option<LoadStatus> {
        loop {
            let status = self.status(table, id)?;
            if status.state != LoadState::Running {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs load `job` into `table` from `path` of `source`, and records how it ended.
fn run(job: &Job, table: &Table, source: Arc<dyn ObjectStore>, path: &str) {
    let outcome = load(job, table, source, path);
    let took = job.started.elapsed();
    match &outcome {
        Ok(answer) => tracing::info!(
            table = %job.table,
            load = %job.id,
            files = job.files_done.load(Ordering::Relaxed),
            rows = answer.rows,
            stored = answer.stored,
            mb = job.bytes.load(Ordering::Relaxed) / (1 << 20),
            s = took.as_secs_f64(),
            rows_per_s = answer.rows as f64 / took.as_secs_f64().max(1e-9),
            "load done"
        ),
        Err(e) => {
            tracing::warn!(table = %job.table, load = %job.id, error = %e, "load failed; nothing was committed")
        }
    }
    *job.outcome.lock() = Some((outcome, took));
}

fn load(
    job: &Job,
    table: &Table,
    source: Arc<dyn ObjectStore>,
    path: &str,
) -> Result<WriteAnswer, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(PARALLEL_FILES)
        .thread_name("murr-load-read")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load's runtime: {e}"))?;
    let files = runtime.block_on(list(source.as_ref(), path, &job.url))?;
    job.files.store(files.len() as u64, Ordering::Relaxed);
    let schema = table.schema();
    let columns: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    // Errors name a file by its whole URL.
    let root = store_root(&job.url, path);
    let batches = Batches {
        root,
        runtime: runtime.handle().clone(),
        source,
        table: table.name().to_owned(),
        columns: Arc::new(columns),
        waiting: files.into(),
        reading: VecDeque::new(),
        job,
        logged: Instant::now(),
    };
    let stats = match job.mode {
        LoadMode::Replace => table.replace_stream(batches),
        LoadMode::Upsert => table.write_stream(batches),
    }
    .map_err(|e| {
        // The table's checks name the column; the file is the one being written.
        let file = job.current.lock().clone();
        match e {
            murr_table::Error::Invalid(m) if !file.is_empty() && !m.starts_with(&file) => {
                format!("{file}: {m}")
            }
            e => e.to_string(),
        }
    })?;
    Ok(WriteAnswer {
        rows: stats.rows,
        stored: stats.stored,
        bytes: stats.bytes,
    })
}

/// Whether `url` names the local file system (`file://`), which loads never read.
fn is_local(url: &str) -> bool {
    url.trim_start().to_ascii_lowercase().starts_with("file:")
}

/// The part of `url` before `path`, the path inside its store: `s3://bucket/` for
/// `s3://bucket/dumps/a/` and `dumps/a` (a store path appended to it is the object's URL).
fn store_root(url: &str, path: &str) -> String {
    match url.rfind(path) {
        Some(i) if !path.is_empty() => url[..i].to_owned(),
        _ => format!("{}/", url.trim_end_matches('/')),
    }
}

/// Whether `path` is a glob (has `*`, `?` or `[`).
fn is_glob(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The files `path` names, in path order: the object itself, or every object under it (or
/// matching the glob) none of whose names below the prefix starts with `_` or `.` (`_SUCCESS`
/// markers, `.crc` files).
async fn list(source: &dyn ObjectStore, path: &str, url: &str) -> Result<Vec<ObjectMeta>, String> {
    let failed = |e: object_store::Error| format!("cannot list {url}: {e}");
    let (prefix, pattern) = if is_glob(path) {
        let literal = &path[..path.find(['*', '?', '[']).unwrap_or(path.len())];
        let prefix = literal.rfind('/').map_or("", |i| &literal[..i]);
        let pattern = glob::Pattern::new(path).map_err(|e| format!("{url}: bad glob: {e}"))?;
        (prefix.to_owned(), Some(pattern))
    } else {
        match source.head(&StorePath::from(path)).await {
            Ok(meta) => return Ok(vec![meta]),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(failed(e)),
        }
        (path.trim_end_matches('/').to_owned(), None)
    };
    let under = (!prefix.is_empty()).then(|| StorePath::from(prefix.as_str()));
    let listed: Vec<ObjectMeta> = source
        .list(under.as_ref())
        .try_collect()
        .await
        .map_err(failed)?;
    let options = glob::MatchOptions {
        require_literal_separator: true,
        ..glob::MatchOptions::default()
    };
    let mut files: Vec<ObjectMeta> = listed
        .into_iter()
        .filter(|m| {
            let name = m.location.as_ref();
            let below = name
                .strip_prefix(prefix.as_str())
                .unwrap_or(name)
                .trim_start_matches('/');
            !below.split('/').any(|p| p.starts_with(['_', '.']))
                && pattern
                    .as_ref()
                    .is_none_or(|p| p.matches_with(name, options))
        })
        .collect();
    if files.is_empty() {
        return Err(format!(
            "no files at {url} (a load reads one Parquet file, every file under a prefix, or the files a glob matches)"
        ));
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// What a file's reader sends: a batch, or what went wrong.
type Decoded = Result<RecordBatch, String>;

/// Reads `file` of `source` for `table` into `tx`, a batch at a time; stops early when the
/// receiver is gone (the load failed elsewhere).
async fn read_file(
    source: Arc<dyn ObjectStore>,
    file: ObjectMeta,
    table: String,
    columns: Arc<Vec<String>>,
    tx: mpsc::Sender<Decoded>,
) {
    let result = async {
        let mut reader = ObjectReader {
            source,
            file: file.clone(),
        };
        let meta = ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
            .await
            .map_err(|e| format!("invalid Parquet file: {e}"))?;
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let meta = checked(&meta, file.size, &table, &names).map_err(|e| e.message)?;
        let mut stream = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, meta)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| format!("invalid Parquet file: {e}"))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| format!("invalid Parquet file: {e}"))?;
            if tx.send(Ok(batch)).await.is_err() {
                break;
            }
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

/// A Parquet file in an object store, read by ranges.
struct ObjectReader {
    source: Arc<dyn ObjectStore>,
    file: ObjectMeta,
}

fn parquet_error(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.source
                .get_range(&self.file.location, range)
                .await
                .map_err(parquet_error)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.source
                .get_ranges(&self.file.location, &ranges)
                .await
                .map_err(parquet_error)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.file.size;
            let meta = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        }
        .boxed()
    }
}

/// The batches of a load's files, in the files' order, read [`PARALLEL_FILES`] at a time.
struct Batches<'a> {
    /// The URL of the store's root (`s3://bucket/`).
    root: String,
    runtime: tokio::runtime::Handle,
    source: Arc<dyn ObjectStore>,
    table: String,
    columns: Arc<Vec<String>>,
    /// Files not started yet.
    waiting: VecDeque<ObjectMeta>,
    /// Files being read, first the one being written.
    reading: VecDeque<(ObjectMeta, mpsc::Receiver<Decoded>)>,
    job: &'a Job,
    logged: Instant,
}

impl Batches<'_> {
    fn progress(&mut self) {
        if self.logged.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.logged = Instant::now();
        let job = self.job;
        let rows = job.rows.load(Ordering::Relaxed);
        tracing::info!(
            table = %job.table,
            load = %job.id,
            files = job.files.load(Ordering::Relaxed),
            files_done = job.files_done.load(Ordering::Relaxed),
            rows,
            mb = job.bytes.load(Ordering::Relaxed) / (1 << 20),
            rows_per_s = rows as f64 / job.started.elapsed().as_secs_f64().max(1e-9),
            "load in progress"
        );
    }
}

impl Iterator for Batches<'_> {
    type Item = murr_table::Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            while self.reading.len() < PARALLEL_FILES
                && let Some(file) = self.waiting.pop_front()
            {
                let (tx, rx) = mpsc::channel(QUEUED_BATCHES);
                self.runtime.spawn(read_file(
                    Arc::clone(&self.source),
                    file.clone(),
                    self.table.clone(),
                    Arc::clone(&self.columns),
                    tx,
                ));
                self.reading.push_back((file, rx));
            }
            let (file, rx) = self.reading.front_mut()?;
            match rx.blocking_recv() {
                Some(Ok(batch)) => {
                    let name = format!("{}{}", self.root, file.location);
                    let mut current = self.job.current.lock();
                    if *current != name {
                        *current = name;
                    }
                    drop(current);
                    self.job
                        .rows
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    self.progress();
                    return Some(Ok(batch));
                }
                Some(Err(e)) => {
                    return Some(Err(murr_table::Error::Invalid(format!(
                        "{}{}: {e}",
                        self.root, file.location
                    ))));
                }
                None => {
                    self.job.files_done.fetch_add(1, Ordering::Relaxed);
                    self.job.bytes.fetch_add(file.size, Ordering::Relaxed);
                    self.reading.pop_front();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_path_appended_to_the_root_is_the_objects_url() {
        assert_eq!(store_root("s3://b/dumps/a/", "dumps/a"), "s3://b/");
        assert_eq!(store_root("s3://b", ""), "s3://b/");
        assert!(is_local(" FILE:///etc") && !is_local("s3://file/x"));
    }

    #[test]
    fn globs_are_told_from_paths() {
        assert!(is_glob("dump/part-*.parquet"));
        assert!(is_glob("dump/2026-11-2?/x"));
        assert!(!is_glob("dump/2026-11-28/"));
    }
}

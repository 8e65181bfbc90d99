//! `murr segment build | publish | inspect`: segments built outside a server (a batch job with
//! many cores), committed to a table in its store, and looked into.
//!
//! Exit codes: 0 done; 1 the data was refused (a bad input file, a segment that does not fit
//! the table), nothing committed; 2 a usage error or storage that cannot be reached.

#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "a command-line tool: progress on stderr, the result on stdout"
)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use murr_directory::{Directory, MmapDirectory, ObjectStoreDirectory};
use murr_format::{TableSchema, Verify};
use murr_segment::{Loc, Segment, SegmentBuilder};
use murr_table::{PublishMode, PublishSegment, TableMeta};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

/// A built segment holds at most this much input (Arrow memory) before it is cut, as a server's
/// write does (`write_segment_bytes`).
const SEGMENT_BYTES: usize = 512 << 20;
/// Rows per batch read from Parquet.
const BATCH_ROWS: usize = 64 * 1024;

/// Why a command stopped: refused data (exit 1) or anything else (exit 2).
enum Failure {
    Refused(String),
    Usage(String),
}

impl Failure {
    fn exit(self, command: &str) -> ExitCode {
        match self {
            Failure::Refused(m) => {
                eprintln!("murr segment {command}: {m}");
                ExitCode::FAILURE
            }
            Failure::Usage(m) => {
                eprintln!("murr segment {command}: {m}");
                ExitCode::from(2)
            }
        }
    }
}

fn usage(m: impl Into<String>) -> Failure {
    Failure::Usage(m.into())
}

/// What `murr segment build` prints when done.
#[derive(Debug, Serialize)]
struct BuildSummary {
    files: usize,
    segments: usize,
    rows: u64,
    stored: u64,
    bytes: u64,
    seconds: f64,
    rows_per_second: f64,
}

/// The table's schema from `schema` (a file holding the JSON a table is created with), its key
/// given or overridden by `key`.
fn read_schema(schema: &Path, key: Option<&str>) -> Result<TableSchema, Failure> {
    let shown = schema.display();
    let mut text =
        std::fs::read_to_string(schema).map_err(|e| usage(format!("cannot read {shown}: {e}")))?;
    if let Some(key) = key {
        // Read only to look at "key": the columns' order is the text's.
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| usage(format!("{shown}: not JSON: {e}")))?;
        let object = json
            .as_object()
            .ok_or_else(|| usage(format!("{shown}: not a JSON object")))?;
        match object.get("key") {
            Some(k) if k.as_str() != Some(key) => {
                return Err(usage(format!(
                    "--key {key} and {shown} (\"key\": {k}) disagree"
                )));
            }
            Some(_) => {}
            None => {
                let at = text.find('{').map_or(0, |i| i + 1);
                let quoted = serde_json::Value::from(key).to_string();
                text.insert_str(at, &format!("\"key\": {quoted}, "));
            }
        }
    }
    let parsed: TableSchema = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{shown}: invalid table schema: {e}")))?;
    parsed
        .validate()
        .map_err(|e| usage(format!("{shown}: invalid table schema: {e}")))?;
    Ok(parsed)
}

/// The Parquet files `inputs` name: files as given, folders by their `*.parquet` files in name
/// order.
fn parquet_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| usage(format!("cannot list {}: {e}", input.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
                .collect();
            found.sort();
            if found.is_empty() {
                return Err(usage(format!("{} holds no .parquet file", input.display())));
            }
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(usage(format!(
                "{}: no such file or folder",
                input.display()
            )));
        }
    }
    if files.is_empty() {
        return Err(usage("give at least one Parquet file"));
    }
    Ok(files)
}

/// `murr segment build`: each Parquet file of `inputs` into segment files in `out`, `threads`
/// files at a time. Segment files are named by input order, then part: publishing them in name
/// order makes a later file's row of a key win over an earlier one's.
pub fn build(
    schema: &Path,
    key: Option<&str>,
    inputs: &[PathBuf],
    out: &Path,
    threads: Option<usize>,
) -> ExitCode {
    match build_inner(schema, key, inputs, out, threads) {
        Ok(summary) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(f) => f.exit("build"),
    }
}

fn build_inner(
    schema: &Path,
    key: Option<&str>,
    inputs: &[PathBuf],
    out: &Path,
    threads: Option<usize>,
) -> Result<BuildSummary, Failure> {
    let started = Instant::now();
    let schema = read_schema(schema, key)?;
    let files = parquet_inputs(inputs)?;
    std::fs::create_dir_all(out)
        .map_err(|e| usage(format!("cannot create {}: {e}", out.display())))?;
    if let Some(old) = segment_files(out)?.first() {
        return Err(usage(format!(
            "{} already holds segments ({}): give an empty folder, so that a publish takes only this build",
            out.display(),
            old.display()
        )));
    }
    let meta = TableMeta::new(schema).map_err(|e| usage(e.to_string()))?;
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, files.len());
    eprintln!(
        "murr segment build: {} files into {}, {threads} at a time",
        files.len(),
        out.display()
    );
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let results: Vec<Result<Vec<Built>, Failure>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut built = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= files.len() || failed.load(Ordering::SeqCst) {
                            return Ok(built);
                        }
                        let t = Instant::now();
                        match build_file(&meta, &files[i], i, out, &failed) {
                            Ok(parts) => {
                                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                                let rows: u64 = parts.iter().map(|b| b.rows).sum();
                                let bytes: u64 = parts.iter().map(|b| b.bytes).sum();
                                eprintln!(
                                    "murr segment build: [{n}/{}] {}: {rows} rows, {} segment(s), {:.1} MB, {:.2} s",
                                    files.len(),
                                    files[i].display(),
                                    parts.len(),
                                    bytes as f64 / 1e6,
                                    t.elapsed().as_secs_f64()
                                );
                                built.extend(parts);
                            }
                            Err(e) => {
                                failed.store(true, Ordering::SeqCst);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(usage("a build thread panicked")))
            })
            .collect()
    });
    let mut built = Vec::new();
    let mut first_error = None;
    for r in results {
        match r {
            Ok(parts) => built.extend(parts),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        // Nothing half built stays behind to be published.
        for b in &built {
            let _ = std::fs::remove_file(&b.path);
        }
        return Err(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    let rows: u64 = built.iter().map(|b| b.rows).sum();
    let summary = BuildSummary {
        files: files.len(),
        segments: built.len(),
        rows,
        stored: built.iter().map(|b| b.stored).sum(),
        bytes: built.iter().map(|b| b.bytes).sum(),
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
    };
    eprintln!(
        "murr segment build: {} rows into {} segments ({:.1} MB) in {seconds:.2} s, {:.0} rows/s",
        summary.rows,
        summary.segments,
        summary.bytes as f64 / 1e6,
        summary.rows_per_second
    );
    Ok(summary)
}

/// One segment file written by a build.
struct Built {
    path: PathBuf,
    rows: u64,
    stored: u64,
    bytes: u64,
}

/// Builds the segments of one Parquet file: `<input number>-<part>.murr` in `out`.
fn build_file(
    meta: &TableMeta,
    input: &Path,
    number: usize,
    out: &Path,
    failed: &AtomicBool,
) -> Result<Vec<Built>, Failure> {
    let shown = input.display().to_string();
    let refused = |m: String| Failure::Refused(format!("{shown}: {m}"));
    let file = File::open(input).map_err(|e| usage(format!("cannot open {shown}: {e}")))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| refused(format!("not a readable Parquet file: {e}")))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| refused(format!("not a readable Parquet file: {e}")))?;
    let mut parts: Vec<Built> = Vec::new();
    let result = (|| {
        let new_builder = || SegmentBuilder::new(meta.schema()).map_err(|e| usage(e.to_string()));
        let mut builder = new_builder()?;
        for batch in reader {
            if failed.load(Ordering::SeqCst) {
                return Err(usage("stopped: another file failed"));
            }
            let batch = batch.map_err(|e| refused(format!("cannot decode: {e}")))?;
            let batch = meta
                .normalize("the table", &batch)
                .map_err(|e| refused(e.to_string()))?;
            builder.push(batch).map_err(|e| refused(e.to_string()))?;
            if builder.is_full() || builder.memory() >= SEGMENT_BYTES {
                let full = std::mem::replace(&mut builder, new_builder()?);
                parts.push(finish(full, out, number, parts.len(), &shown)?);
            }
        }
        if builder.rows() > 0 {
            parts.push(finish(builder, out, number, parts.len(), &shown)?);
        }
        Ok(())
    })();
    match result {
        Ok(()) if parts.is_empty() => Err(refused("holds no rows".into())),
        Ok(()) => Ok(parts),
        Err(e) => {
            for p in &parts {
                let _ = std::fs::remove_file(&p.path);
            }
            Err(e)
        }
    }
}

/// Writes a finished segment under a temporary name, then renames it into place.
fn finish(
    builder: SegmentBuilder,
    out: &Path,
    number: usize,
    part: usize,
    shown: &str,
) -> Result<Built, Failure> {
    let name = format!("{number:05}-{part:04}.murr");
    let path = out.join(&name);
    let tmp = out.join(format!(".{name}.tmp"));
    let io = |e: std::io::Error| usage(format!("cannot write {}: {e}", path.display()));
    let file = File::create(&tmp).map_err(io)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let built = builder
        .finish(&mut w)
        .map_err(|e| Failure::Refused(format!("{shown}: {e}")));
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(Built {
        path,
        rows: built.rows,
        stored: built.stored,
        bytes: built.bytes,
    })
}

/// The `*.murr` files of `folder`, by name (names starting with `.` are skipped).
fn segment_files(folder: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| usage(format!("cannot list {}: {e}", folder.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "murr")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// `murr segment publish`: commits the segments of `from` (a folder's `*.murr` files in name
/// order, or one file) to `table` in the store at `target` (a URL, or a server's data folder).
pub fn publish(
    from: &Path,
    target: &str,
    table: &str,
    replace: bool,
    remote: &murr_directory::RemoteOptions,
) -> ExitCode {
    match publish_inner(from, target, table, replace, remote) {
        Ok(stats) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&stats).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(f) => f.exit("publish"),
    }
}

fn publish_inner(
    from: &Path,
    target: &str,
    table: &str,
    replace: bool,
    remote: &murr_directory::RemoteOptions,
) -> Result<murr_table::PublishStats, Failure> {
    let started = Instant::now();
    let paths = if from.is_dir() {
        segment_files(from)?
    } else if from.is_file() {
        vec![from.to_path_buf()]
    } else {
        return Err(usage(format!("{}: no such file or folder", from.display())));
    };
    // A replace with nothing would empty the table: a wrong folder must not do that.
    if paths.is_empty() {
        return Err(usage(format!("{} holds no .murr file", from.display())));
    }
    let segments = paths
        .iter()
        .map(|p| {
            Ok(PublishSegment {
                name: p.display().to_string(),
                bytes: murr_directory::map_path(p).map_err(|e| usage(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let dir: Arc<dyn Directory> = if target.contains("://") {
        let d = ObjectStoreDirectory::from_url(target, remote).map_err(|e| usage(e.to_string()))?;
        d.probe().map_err(|e| usage(format!("{target}: {e}")))?;
        Arc::new(d)
    } else {
        Arc::new(MmapDirectory::open_shared(target).map_err(|e| usage(e.to_string()))?)
    };
    let bytes: u64 = segments.iter().map(|s| s.bytes.len() as u64).sum();
    eprintln!(
        "murr segment publish: {} segment(s), {:.1} MB, to table {table:?} in {target} ({})",
        segments.len(),
        bytes as f64 / 1e6,
        if replace { "replace" } else { "append" }
    );
    let mode = if replace {
        PublishMode::Replace
    } else {
        PublishMode::Append
    };
    let stats =
        murr_table::publish(dir.as_ref(), table, &segments, mode).map_err(|e| match e.kind() {
            murr_table::ErrorKind::InvalidArgument | murr_table::ErrorKind::NotFound => {
                Failure::Refused(format!("{e}; nothing was committed"))
            }
            _ => usage(format!("{e}; nothing was committed")),
        })?;
    eprintln!(
        "murr segment publish: committed version {} of {table:?}: {} rows in {:.2} s; servers serve it within their poll interval",
        stats.version,
        stats.rows,
        started.elapsed().as_secs_f64()
    );
    Ok(stats)
}

/// `murr segment inspect`: a segment file's header, columns, checksums and first `rows` rows.
pub fn inspect(path: &Path, rows: usize) -> ExitCode {
    match inspect_inner(path, rows) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.exit("inspect"),
    }
}

fn inspect_inner(path: &Path, show: usize) -> Result<(), Failure> {
    let shown = path.display().to_string();
    let bytes = murr_directory::map_path(path).map_err(|e| usage(e.to_string()))?;
    println!("file        {shown} ({} bytes)", bytes.len());
    let Some(version) = murr_format::peek_version(&bytes) else {
        return Err(Failure::Refused(format!(
            "{shown} is not a murr segment (no segment header)"
        )));
    };
    println!(
        "format      segment version {version} (this murr reads {} to {})",
        murr_format::MIN_FORMAT_VERSION,
        murr_format::FORMAT_VERSION
    );
    let file_path =
        murr_directory::FilePath::new("inspected.murr").map_err(|e| usage(e.to_string()))?;
    let (segment, checksums) =
        match Segment::from_bytes(bytes.clone(), file_path.clone(), Verify::Full) {
            Ok(s) => (s, Ok(())),
            Err(full) => match Segment::from_bytes(bytes, file_path, Verify::FooterOnly) {
                Ok(s) => (s, Err(full)),
                Err(e) => {
                    println!("checksums   FAILED");
                    return Err(Failure::Refused(format!("{shown}: {e}")));
                }
            },
        };
    match &checksums {
        Ok(()) => println!("checksums   ok (footer and body)"),
        Err(e) => println!("checksums   FAILED: {e}"),
    }
    let meta = segment.view().meta();
    println!(
        "rows        {} (row width {} bytes)",
        meta.rows, meta.row_width
    );
    let key = meta
        .columns
        .get(meta.key_column as usize)
        .map_or("?", |c| c.name.as_str());
    println!(
        "key index   column {key:?}: {} slots of {} bytes, hash algorithm {}, seed {:#018x}",
        meta.index_capacity, meta.index_slot_width, meta.hash_algo, meta.hash_seed
    );
    match meta.written {
        Some(w) => println!(
            "written     {} to {} (seconds since the Unix epoch){}",
            w.min,
            w.max,
            if w.rows.is_some() { ", per row" } else { "" }
        ),
        None => println!("written     not recorded (format before version 5)"),
    }
    println!(
        "sections    rows {}+{}, index {}+{}{}",
        meta.rows_section.offset,
        meta.rows_section.len,
        meta.index_section.offset,
        meta.index_section.len,
        meta.sparse.map_or(String::new(), |s| format!(
            ", sparse {}+{}",
            s.records.offset, s.records.len
        ))
    );
    println!("columns     {}", meta.columns.len());
    for c in &meta.columns {
        println!(
            "  {:<24} {:<24} {:<9} {}{:?}",
            c.name,
            c.dtype.to_string(),
            if c.nullable { "nullable" } else { "not null" },
            c.null_bit
                .map_or(String::new(), |b| format!("null bit {b}, ")),
            c.storage
        );
    }
    let n = show.min(segment.rows());
    if n > 0 {
        println!("first {n} rows");
        let segments = [segment.clone()];
        let locs: Vec<Loc> = (0..n as u32).map(|row| Loc { seg: 0, row }).collect();
        let mut columns = Vec::new();
        for c in &meta.columns {
            let array = murr_segment::gather(&segments, &c.name, c.dtype, &locs)
                .map_err(|e| Failure::Refused(format!("{shown}: column {:?}: {e}", c.name)))?;
            columns.push((c.name.clone(), array));
        }
        let options = arrow_cast::display::FormatOptions::default().with_null("null");
        let formatters = columns
            .iter()
            .map(|(_, a)| arrow_cast::display::ArrayFormatter::try_new(a.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| usage(e.to_string()))?;
        for row in 0..n {
            let cells: Vec<String> = columns
                .iter()
                .zip(&formatters)
                .map(|((name, _), f)| format!("{name}={}", f.value(row)))
                .collect();
            println!("  {}", cells.join("  "));
        }
    }
    checksums.map_err(|e| Failure::Refused(format!("{shown}: {e}")))
}

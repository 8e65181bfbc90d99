//! Segments built elsewhere ([`murr_segment::SegmentBuilder`]) committed to a table.
//!
//! [`publish`] is a writer of its own: it validates every segment (checksums, format version,
//! schema against the table's) before it touches the table, copies them into the table's
//! folder under names no other writer uses, and commits the table's next manifest with the same
//! create-once step as a server's write. When a server commits first, the publish reads the
//! newer manifest and commits on top of it; a server that loses to the publish does the same
//! (see `Table::commit`). Running servers and replicas pick the commit up when they next look at
//! the table.
//!
//! Which segment format versions the store's servers read is recorded by the writer in
//! [`FORMATS`] at the root of the directory; a segment outside that range is refused here, at
//! publish time, instead of failing to load on a server.

use std::time::Instant;

use bytes::Bytes;
use murr_directory::{Directory, DirectoryExt, FilePath};
use murr_format::{FORMAT_VERSION, KeyCodec, MIN_FORMAT_VERSION, Verify, envelope};
use murr_segment::Segment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::{Manifest, SegmentEntry, read_latest, segment_path, table_folder};
use crate::table::agrees;

/// The file, at the root of a store's directory, naming the segment format versions its
/// servers read.
pub const FORMATS: &str = "FORMATS";
const MAGIC: [u8; 8] = *b"MURRFMTS";
const VERSION: u32 = 1;
/// How long garbage collection keeps a publish's copies that no manifest lists: from the copy
/// to the commit, a publish runs in another process.
pub(crate) const PUBLISH_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `file` (a name in a table's folder) is a segment a publish copied in.
pub(crate) fn is_publish_copy(file: &str) -> bool {
    file.strip_suffix(".murr")
        .and_then(|f| f.rsplit_once('-'))
        .is_some_and(|(_, tag)| tag.len() == 17 && tag.starts_with('p'))
}

/// How many times a publish commits on top of another writer's newer commit before it gives up.
const ATTEMPTS: usize = 32;

/// The segment format versions a store's servers read, as its writer recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFormats {
    /// The oldest version read.
    pub min: u32,
    /// The newest version read.
    pub max: u32,
    /// The program that recorded it.
    pub by: String,
}

impl StoreFormats {
    /// What this build reads.
    pub fn this_build() -> StoreFormats {
        StoreFormats {
            min: MIN_FORMAT_VERSION,
            max: FORMAT_VERSION,
            by: format!("murr {}", env!("CARGO_PKG_VERSION")),
        }
    }

    /// What the store's writer recorded; `None` when nothing is recorded (a store no server of
    /// this version has opened as its writer).
    ///
    /// # Errors
    /// Storage errors, [`Error::Invalid`] for a file that does not decode.
    pub fn read(dir: &dyn Directory) -> Result<Option<StoreFormats>> {
        let path = FilePath::new(FORMATS)?;
        let bytes = match dir.open(&path) {
            Ok(b) => b,
            Err(murr_directory::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (_, json) = envelope::open(MAGIC, VERSION, &bytes)
            .map_err(|e| Error::invalid(format!("{FORMATS}: {e}")))?;
        serde_json::from_slice(json)
            .map(Some)
            .map_err(|e| Error::invalid(format!("{FORMATS}: {e}")))
    }

    /// Records what this build reads, when it differs from what is recorded (a writer does
    /// this when it opens the store; a newer server replaces an older one's record).
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) fn record(dir: &dyn Directory) -> Result<()> {
        let mine = StoreFormats::this_build();
        let recorded = StoreFormats::read(dir).unwrap_or(None);
        if recorded
            .as_ref()
            .is_some_and(|r| r.min == mine.min && r.max == mine.max)
        {
            return Ok(());
        }
        let path = FilePath::new(FORMATS)?;
        let json = serde_json::to_vec(&mine).map_err(|e| Error::Internal(e.to_string()))?;
        // Files are create-once: the old record goes first. A reader in between sees none and
        // checks against its own build.
        dir.delete_if_exists(&path)?;
        match dir.write_new(&path, &envelope::seal(MAGIC, VERSION, &json)) {
            Ok(_) | Err(murr_directory::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// How a publish changes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublishMode {
    /// The segments go after the table's: their rows win over the rows already there.
    #[default]
    Append,
    /// The segments become the table's only ones.
    Replace,
}

/// What a publish committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct PublishStats {
    /// The table's manifest version the publish committed.
    pub version: u64,
    /// Segments published.
    pub segments: usize,
    /// Rows in them.
    pub rows: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Segments a replace took out of the table.
    pub replaced: usize,
    /// Times another writer committed first and the publish committed on top of it.
    pub retries: usize,
}

/// A built segment to publish: a name for messages (its file, say) and its bytes.
#[derive(Debug, Clone)]
pub struct Built {
    /// Names the segment in errors and logs.
    pub name: String,
    /// The segment file.
    pub bytes: Bytes,
}

/// Commits `segments` to `table` in `dir` (see the module docs). Segments go in the order
/// given: a later one's row of a key wins over an earlier one's. Nothing is committed when any
/// segment is refused.
///
/// # Errors
/// [`Error::Invalid`] naming the segment: not a valid segment, a checksum that does not match,
/// a format version the store's servers do not read, a key or a column that does not fit the
/// table; [`Error::TableNotFound`]; [`Error::Conflict`] when other writers kept committing
/// first; storage errors.
pub fn publish(
    dir: &dyn Directory,
    table: &str,
    segments: &[Built],
    mode: PublishMode,
) -> Result<PublishStats> {
    let started = Instant::now();
    murr_format::validate_name("table", table)?;
    if segments.is_empty() && mode == PublishMode::Append {
        return Err(Error::invalid(
            "nothing to publish: give at least one segment",
        ));
    }
    let formats = StoreFormats::read(dir)?.unwrap_or_else(StoreFormats::this_build);
    let opened = segments
        .iter()
        .map(|b| check(b, &formats))
        .collect::<Result<Vec<_>>>()?;
    let mut stats = PublishStats {
        segments: opened.len(),
        rows: opened.iter().map(|s| s.rows() as u64).sum(),
        bytes: opened.iter().map(|s| s.size() as u64).sum(),
        ..PublishStats::default()
    };
    // The copies in the table's folder, and the incarnation they were made for.
    let mut copies: Option<(String, Vec<SegmentEntry>)> = None;
    let result = (|| {
        for attempt in 0..ATTEMPTS {
            let files = dir.list(&table_folder(table))?;
            let manifest = match read_latest(dir, table, &files) {
                Ok(Some((manifest, _))) => manifest,
                Ok(None) => {
                    return Err(Error::TableNotFound {
                        table: table.to_owned(),
                    });
                }
                // A writer alone on local disk deletes the manifest its commit superseded:
                // this one was, between the listing and the read.
                Err(Error::Directory(murr_directory::Error::NotFound { .. })) => continue,
                Err(e) => return Err(e),
            };
            let codec = KeyCodec::new(&manifest.schema)?;
            for (seg, built) in opened.iter().zip(segments) {
                agrees(seg, &manifest.schema, codec.stored_column())
                    .and_then(|()| fits(seg, &manifest.schema))
                    .map_err(|reason| {
                        Error::invalid(format!(
                            "segment {} does not fit table {table:?}: {reason}",
                            built.name
                        ))
                    })?;
            }
            if copies
                .as_ref()
                .is_none_or(|(inc, _)| *inc != manifest.incarnation)
            {
                if let Some((_, old)) = copies.take() {
                    delete(dir, table, &old);
                }
                let mut made = Vec::new();
                let copied = copy_in(dir, &manifest, segments, &opened, &mut made);
                copies = Some((manifest.incarnation.clone(), made));
                copied?;
                // Copying takes a while: commit on top of the manifest as it is now.
                continue;
            }
            let (_, entries) = copies.as_ref().expect("copied");
            let mut next = manifest.clone();
            next.version += 1;
            stats.replaced = match mode {
                PublishMode::Append => 0,
                PublishMode::Replace => std::mem::take(&mut next.segments).len(),
            };
            next.segments.extend(entries.iter().cloned());
            match next.create(dir) {
                Ok(_) => {
                    stats.version = next.version;
                    stats.retries = attempt.saturating_sub(1);
                    return Ok(());
                }
                Err(Error::Conflict { .. }) => {
                    tracing::debug!(
                        table,
                        version = next.version,
                        "another writer committed first; publishing on top of it"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            table: table.to_owned(),
            what: format!("every one of {ATTEMPTS} versions the publish tried"),
        })
    })();
    if let Err(e) = result {
        if let Some((_, made)) = &copies {
            delete(dir, table, made);
        }
        return Err(e);
    }
    tracing::info!(
        table,
        version = stats.version,
        segments = stats.segments,
        rows = stats.rows,
        bytes = stats.bytes,
        replaced = stats.replaced,
        retries = stats.retries,
        ms = started.elapsed().as_secs_f64() * 1e3,
        "segments published"
    );
    Ok(stats)
}

/// What a server's write guarantees and `agrees` does not check (a segment written by the table
/// itself always holds): no column the table lacks, and values in every non-nullable column.
fn fits(seg: &Segment, schema: &murr_format::TableSchema) -> std::result::Result<(), String> {
    let meta = seg.view().meta();
    for c in &meta.columns {
        if c.name != murr_format::ENCODED_KEY_COLUMN && schema.column(&c.name).is_none() {
            return Err(format!(
                "it has column {:?}, which the table does not",
                c.name
            ));
        }
    }
    for def in schema.columns.iter().filter(|d| !d.nullable) {
        match meta.columns.iter().find(|c| c.name == def.name) {
            None => {
                return Err(format!(
                    "it lacks column {:?}, which the table says is not nullable",
                    def.name
                ));
            }
            Some(c) if c.null_bit.is_some() => {
                return Err(format!(
                    "it has nulls in column {:?}, which the table says is not nullable",
                    def.name
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Opens a built segment, checking its version against what the store's servers read and
/// every checksum.
fn check(built: &Built, formats: &StoreFormats) -> Result<Segment> {
    let version = murr_format::peek_version(&built.bytes).ok_or_else(|| {
        Error::invalid(format!(
            "{} is not a murr segment (no segment header)",
            built.name
        ))
    })?;
    if !(formats.min..=formats.max).contains(&version) {
        return Err(Error::invalid(format!(
            "segment {} is format version {version}; the servers of this store read versions {} to {} ({} recorded it): upgrade the servers first, or build with the murr they run",
            built.name, formats.min, formats.max, formats.by
        )));
    }
    let path = FilePath::new("published.murr")?;
    Segment::from_bytes(built.bytes.clone(), path, Verify::Full)
        .map_err(|e| match e {
            murr_segment::Error::Format { source, .. } => {
                Error::invalid(format!("segment {}: {source}", built.name))
            }
            other => Error::from(other),
        })
        .and_then(|s| {
            if s.rows() == 0 {
                return Err(Error::invalid(format!(
                    "segment {} holds no rows",
                    built.name
                )));
            }
            Ok(s)
        })
}

/// Copies the segments into the table's folder as new files of `manifest`'s incarnation,
/// pushing each copy made to `made` (so that a failure can remove them).
fn copy_in(
    dir: &dyn Directory,
    manifest: &Manifest,
    segments: &[Built],
    opened: &[Segment],
    made: &mut Vec<SegmentEntry>,
) -> Result<()> {
    // A server numbers its segments `seg-<incarnation>-<number>.murr`; a publish adds a random
    // part, so that its names never meet a server's or another publish's.
    let tag = random_tag();
    for (i, (built, seg)) in segments.iter().zip(opened).enumerate() {
        let file = format!(
            "seg-{}-{:010}-p{tag:016x}.murr",
            manifest.incarnation,
            manifest.next_segment + i as u64
        );
        let path = segment_path(&manifest.table, &file)?;
        dir.write_new(&path, &built.bytes)
            .map_err(|e| Error::create_failed(&manifest.table, &format!("segment {file}"), e))?;
        made.push(SegmentEntry {
            file,
            rows: seg.rows() as u64,
            bytes: seg.size() as u64,
        });
    }
    Ok(())
}

fn delete(dir: &dyn Directory, table: &str, entries: &[SegmentEntry]) {
    for e in entries {
        if let Ok(path) = segment_path(table, &e.file) {
            let _ = dir.delete_if_exists(&path);
        }
    }
}

fn random_tag() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

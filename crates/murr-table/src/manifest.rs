//! The per-table manifest: schema and the ordered list of live segments.
//!
//! Every change of a table writes a new, numbered, immutable manifest file
//! `tables/<name>/MANIFEST-<version, 20 digits>` with the directory's create-once operation: the
//! table's state is its highest-numbered manifest, and two writers that race for one version
//! cannot both commit it (the loser gets [`Error::Conflict`]). Folders written before numbered
//! manifests hold one `MANIFEST` file, which still reads (as the oldest version) and is removed
//! once a numbered manifest supersedes it. The content is JSON inside a checksummed envelope
//! (see `docs/format.md`). Files no live manifest lists are garbage that `Store::gc` removes.

use murr_directory::{Directory, DirectoryExt, FileMeta, FilePath};
use murr_format::{TableSchema, envelope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAGIC: [u8; 8] = *b"MURRMANI";
const VERSION: u32 = 1;
/// Folder of all tables.
pub(crate) const TABLES: &str = "tables";
/// File name of a table's manifest in folders written before numbered manifests; numbered ones
/// are `MANIFEST-<version>`.
pub(crate) const MANIFEST: &str = "MANIFEST";

/// One live segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SegmentEntry {
    /// File name inside the table's folder.
    pub(crate) file: String,
    /// Row count.
    pub(crate) rows: u64,
    /// File size.
    pub(crate) bytes: u64,
}

/// One version of a table's state: its schema and live segments (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub(crate) table: String,
    pub(crate) schema: TableSchema,
    /// Tells this incarnation's files from those of a dropped table of the same name.
    pub(crate) incarnation: String,
    /// Incremented on every change.
    pub(crate) version: u64,
    /// Next segment number to hand out.
    pub(crate) next_segment: u64,
    /// Live segments, oldest first: a later segment's row wins over an earlier one's.
    pub(crate) segments: Vec<SegmentEntry>,
}

pub(crate) fn table_folder(table: &str) -> String {
    format!("{TABLES}/{table}")
}

/// The path of manifest `version` of `table`.
pub(crate) fn manifest_path(table: &str, version: u64) -> Result<FilePath> {
    Ok(FilePath::new(format!(
        "{TABLES}/{table}/{MANIFEST}-{version:020}"
    ))?)
}

/// Which manifest a file of a table's folder is: `Some(Some(version))` for a numbered one,
/// `Some(None)` for the legacy `MANIFEST`, `None` for any other file.
pub(crate) fn manifest_version(path: &FilePath) -> Option<Option<u64>> {
    let name = path.file_name();
    if name == MANIFEST {
        return Some(None);
    }
    let digits = name.strip_prefix(MANIFEST)?.strip_prefix('-')?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
        .map(Some)
}

/// The manifests among `files` (one table's folder), oldest first: the legacy `MANIFEST` before
/// every numbered one, numbered ones by version.
pub(crate) fn manifests(files: &[FileMeta]) -> Vec<&FileMeta> {
    let mut found: Vec<(Option<u64>, &FileMeta)> = files
        .iter()
        .filter_map(|f| manifest_version(&f.path).map(|v| (v, f)))
        .collect();
    found.sort_by_key(|(v, _)| *v);
    found.into_iter().map(|(_, f)| f).collect()
}

/// The manifests among `files` (one table's folder) split by the rule of superseded ones: a
/// manifest goes once the one after it is `old` (readers, and writers about to create the next
/// version, have had time to move on); the newest always stays. Returns (the ones that go, the
/// ones that stay, the newest first); both empty when the folder holds no manifest.
pub(crate) fn superseded(
    files: &[FileMeta],
    old: impl Fn(&FileMeta) -> bool,
) -> (Vec<&FileMeta>, Vec<&FileMeta>) {
    let versions = manifests(files);
    let Some((&newest, older)) = versions.split_last() else {
        return (Vec::new(), Vec::new());
    };
    let mut kept = vec![newest];
    let mut gone = Vec::new();
    for (m, next) in older.iter().zip(versions.iter().skip(1)) {
        if old(next) {
            gone.push(*m);
        } else {
            kept.push(*m);
        }
    }
    (gone, kept)
}

/// The table a path under [`TABLES`] belongs to.
pub(crate) fn table_of(path: &FilePath) -> Option<&str> {
    let mut parts = path.as_str().splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(TABLES), Some(table), Some(_)) => Some(table),
        _ => None,
    }
}

pub(crate) fn segment_path(table: &str, file: &str) -> Result<FilePath> {
    Ok(FilePath::new(format!("{TABLES}/{table}/{file}"))?)
}

/// The newest manifest of `table` among `files` (the files of its folder), read and checked,
/// and the file it was read from; `None` when the folder holds none.
///
/// # Errors
/// Storage errors, and [`Error::CorruptManifest`] for a manifest that does not decode or
/// disagrees with its name.
pub(crate) fn read_latest(
    dir: &dyn Directory,
    table: &str,
    files: &[FileMeta],
) -> Result<Option<(Manifest, FilePath)>> {
    let Some(latest) = manifests(files).last().copied() else {
        return Ok(None);
    };
    let bytes = dir.open(&latest.path)?;
    let m = Manifest::decode(&latest.path, &bytes)?;
    let corrupt = |reason: String| Error::CorruptManifest {
        path: latest.path.to_string(),
        reason,
    };
    if m.table != table {
        return Err(corrupt(format!("names table {:?}", m.table)));
    }
    if let Some(Some(v)) = manifest_version(&latest.path)
        && m.version != v
    {
        return Err(corrupt(format!(
            "holds version {}, its name {v}",
            m.version
        )));
    }
    Ok(Some((m, latest.path.clone())))
}

impl Manifest {
    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The version: one more at every change of the table.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The incarnation: a table dropped and created again under its name is a new one.
    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let json =
            serde_json::to_vec(self).map_err(|e| Error::Internal(format!("manifest: {e}")))?;
        Ok(envelope::seal(MAGIC, VERSION, &json))
    }

    pub(crate) fn decode(path: &FilePath, bytes: &[u8]) -> Result<Manifest> {
        let corrupt = |reason: String| Error::CorruptManifest {
            path: path.to_string(),
            reason,
        };
        let (_, payload) =
            envelope::open(MAGIC, VERSION, bytes).map_err(|e| corrupt(e.to_string()))?;
        let m: Manifest = serde_json::from_slice(payload).map_err(|e| corrupt(e.to_string()))?;
        m.schema
            .validate()
            .map_err(|e| corrupt(format!("schema: {e}")))?;
        for s in &m.segments {
            if FilePath::new(&s.file).is_err() || s.file.contains('/') {
                return Err(corrupt(format!("bad segment file name {:?}", s.file)));
            }
        }
        Ok(m)
    }

    /// Writes this version of the table's manifest, create-once, and returns its file.
    ///
    /// # Errors
    /// [`Error::Conflict`] when another writer wrote this version first, storage errors.
    pub(crate) fn create(&self, dir: &dyn Directory) -> Result<FilePath> {
        let path = manifest_path(&self.table, self.version)?;
        dir.write_new(&path, &self.encode()?).map_err(|e| {
            Error::create_failed(
                &self.table,
                &format!("manifest version {}", self.version),
                e,
            )
        })?;
        Ok(path)
    }

    pub(crate) fn segment_file(&self, id: u64) -> String {
        format!("seg-{}-{id:010}.murr", self.incarnation)
    }
}

/// Whether `file` (a name in a table's folder) is a segment of the table's incarnation
/// `incarnation`, listed or not.
pub(crate) fn owns_segment_of(incarnation: &str, file: &str) -> bool {
    file.strip_prefix("seg-")
        .and_then(|rest| rest.strip_prefix(incarnation))
        .is_some_and(|rest| rest.starts_with('-'))
}

/// The highest segment number of `incarnation` among `files`: a writer numbers new segments
/// past it, so that a segment uploaded by a writer that crashed before its commit (not listed
/// by any manifest, so not counted by `next_segment`) never shares a name with a new one.
pub(crate) fn highest_segment(files: &[FileMeta], incarnation: &str) -> Option<u64> {
    let prefix = format!("seg-{incarnation}-");
    files
        .iter()
        .filter_map(|f| {
            f.path
                .file_name()
                .strip_prefix(prefix.as_str())?
                .strip_suffix(".murr")?
                .parse::<u64>()
                .ok()
        })
        .max()
}

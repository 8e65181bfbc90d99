//! The per-table manifest: schema and the ordered list of live segments.
//!
//! Stored at `tables/<name>/MANIFEST`, replaced atomically on every change, as JSON inside a
//! checksummed envelope (see `docs/format.md`). A segment file the manifest does not list is
//! garbage and is removed at open.

use murr_directory::FilePath;
use murr_format::{TableSchema, envelope};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const MAGIC: [u8; 8] = *b"MURRMANI";
const VERSION: u32 = 1;
/// Folder of all tables.
pub(crate) const TABLES: &str = "tables";
/// File name of a table's manifest.
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
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

pub(crate) fn manifest_path(table: &str) -> Result<FilePath> {
    Ok(FilePath::new(format!("{TABLES}/{table}/{MANIFEST}"))?)
}

pub(crate) fn segment_path(table: &str, file: &str) -> Result<FilePath> {
    Ok(FilePath::new(format!("{TABLES}/{table}/{file}"))?)
}

impl Manifest {
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

    pub(crate) fn segment_file(&self, id: u64) -> String {
        format!("seg-{}-{id:010}.murr", self.incarnation)
    }
}

//! Merges: adjacent segments combined into one, dropping the rows newer segments shadow.

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use murr_directory::{DirectoryExt, FilePath};
use murr_format::{DType, hash_key};
use murr_segment::{Input, Loc, ResolvedRows, Segment, gather_columns};

use super::{Snapshot, Table};
use crate::error::{Error, Result};
use crate::policy::pick_merge;

/// Rows per batch when a merge reads segments back.
const MERGE_CHUNK_ROWS: usize = 1 << 18;

impl Table {
    pub(super) fn request_merge(&self) {
        if let Some(merger) = &self.config.merger {
            merger.request(&self.me);
        }
    }

    /// Runs one merge if the policy picks one; returns whether it did.
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub fn merge_step(&self) -> Result<bool> {
        self.check_writable("a merge")?;
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
        self.check_writable("a compaction")?;
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
        let meta = &snap.meta;
        let run = &snap.segments[range.clone()];
        let newer = &snap.segments[range.end..];
        let before: usize = run.iter().map(Segment::rows).sum();
        let columns: Vec<(&str, DType)> = meta
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.dtype))
            .collect();
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
                // The chunk's rows are resolved once for all its columns.
                let rows = ResolvedRows::new(run, chunk);
                let arrays = gather_columns(run, &rows, &columns)?;
                batches.push(
                    RecordBatch::try_new(Arc::clone(&meta.storage_schema), arrays)
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
                .map(|(batch, rows)| Input {
                    batch,
                    row_ids: rows,
                })
                .collect();
            Some(self.write_segment(meta, &inputs)?)
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
                self.discard(std::slice::from_ref(m));
            }
            return Err(e);
        }
        if self.config.delete_at_once {
            for path in &old {
                if let Err(e) = self.dir.delete_if_exists(path) {
                    tracing::warn!(table = %self.name, file = %path, error = %e, "could not delete a merged segment; gc removes it");
                }
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

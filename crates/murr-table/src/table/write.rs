//! The write path: record batches into new segment files, committed in one manifest.

use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow_array::RecordBatch;
use murr_directory::DirectoryExt;
use murr_format::Verify;
use murr_segment::{Segment, SegmentBuilder};

use super::normalize::normalize;
use super::{Table, TableMeta};
use crate::error::{Error, Result};
use crate::manifest::segment_path;

/// Rows per segment of a streamed write, at most: the most a segment's key index holds in
/// 4-byte slots (one more row would double the index's memory).
pub(crate) const SEGMENT_ROWS: usize = murr_segment::MAX_SEGMENT_ROWS;

/// How many times a write commits again after another writer committed first.
const COMMIT_ATTEMPTS: usize = 16;

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

/// A write of the table running: counted from its start to its end, success or not (see
/// [`Table::merge_step_unless_writing`]).
struct WriteRunning<'a>(&'a Table);

impl<'a> WriteRunning<'a> {
    fn start(table: &'a Table) -> Self {
        table.writes.lock().running += 1;
        WriteRunning(table)
    }
}

impl Drop for WriteRunning<'_> {
    fn drop(&mut self) {
        let mut w = self.0.writes.lock();
        w.running -= 1;
        w.last_end = Some(Instant::now());
    }
}

impl Table {
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
        self.write_stream_as(batches, false)
    }

    /// As [`Table::write_stream`], but the rows written become the table's only rows: one
    /// commit swaps every segment for the new ones (readers see the old rows until then, and
    /// the old rows alone after an error). No rows at all leave the table empty.
    ///
    /// # Errors
    /// As [`Table::write_stream`].
    pub fn replace_stream(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
    ) -> Result<WriteStats> {
        self.write_stream_as(batches, true)
    }

    fn write_stream_as(
        &self,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        replace: bool,
    ) -> Result<WriteStats> {
        self.check_writable("a write")?;
        let _slot = self.config.write_slots.acquire(&self.name);
        let _running = WriteRunning::start(self);
        let started = Instant::now();
        let meta = self.meta();
        let mut written: Vec<Segment> = Vec::new();
        let result = self.write_chunks(&meta, batches, &mut written, started);
        let stats = match result {
            Ok(stats) => stats,
            Err(e) => {
                self.discard(&written);
                return Err(e);
            }
        };
        if written.is_empty() && !replace {
            return Ok(stats);
        }
        // The rows of larger, older segments that this write replaces, marked once it is
        // committed. (Only with merges running: they are what drops the marked rows.)
        let replacing = if !replace && self.config.merger.is_some() {
            self.find_replaced(&written)
        } else {
            Vec::new()
        };
        // Written files are mapped cold: read them in before readers see them.
        for s in &written {
            self.read_in(s);
        }
        let mut replaced = Vec::new();
        let mut attempt = 0;
        // Another writer (a publish) may commit first: the commit then loads its state, and the
        // write commits again on top of it, so that both land.
        let committed = loop {
            let result = self.commit(|segments| {
                if replace {
                    replaced = std::mem::take(segments);
                }
                segments.extend(written.iter().cloned());
                Ok(())
            });
            match result {
                Err(Error::Conflict { .. }) if attempt < COMMIT_ATTEMPTS => {
                    attempt += 1;
                    tracing::info!(table = %self.name, attempt, "another writer committed first; the write commits on top of it");
                }
                other => break other,
            }
        };
        committed.inspect_err(|e| {
            if matches!(e, Error::TableNotFound { .. } | Error::Conflict { .. }) {
                self.discard(&written);
            }
        })?;
        if self.config.delete_at_once {
            for s in &replaced {
                if let Err(e) = self.dir.delete_if_exists(s.path()) {
                    tracing::warn!(table = %self.name, file = %s.path(), error = %e, "could not delete a replaced segment; gc removes it");
                }
            }
        }
        self.mark_replaced(replacing);
        self.counters.wrote(stats.rows);
        tracing::debug!(
            table = %self.name,
            rows = stats.rows,
            stored = stats.stored,
            bytes = stats.bytes,
            segments = written.len(),
            replaced = replaced.len(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "write"
        );
        self.request_merge();
        Ok(stats)
    }

    /// Deletes segments written for a change that will never be committed.
    pub(super) fn discard(&self, segments: &[Segment]) {
        for s in segments {
            let _ = self.dir.delete_if_exists(s.path());
        }
    }

    fn write_chunks(
        &self,
        meta: &TableMeta,
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
            let batch = normalize(&self.name, meta, &batch?)?;
            chunk_rows += batch.num_rows();
            chunk_bytes += batch.get_array_memory_size();
            if batch.num_rows() > 0 {
                chunk.push(batch);
            }
            let last = batches.peek().is_none();
            if (last || chunk_bytes >= self.config.segment_bytes || chunk_rows >= SEGMENT_ROWS)
                && chunk_rows > 0
            {
                let (rows, stored, segment) = self.write_chunk(meta, std::mem::take(&mut chunk))?;
                stats.rows += rows;
                stats.stored += stored;
                stats.bytes += segment.size() as u64;
                written.push(segment);
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

    /// Keeps the last row of each key of `batches` and writes them as one uncommitted segment
    /// (opened from the bytes just written: no read back; nothing refers to it yet).
    fn write_chunk(
        &self,
        meta: &TableMeta,
        batches: Vec<RecordBatch>,
    ) -> Result<(u64, u64, Segment)> {
        let mut builder = SegmentBuilder::new(meta.schema())?.written_at(self.config.clock.now());
        for batch in batches {
            builder.push(batch)?;
        }
        let mut built = None;
        let segment = self.create_segment(|mut out| {
            let b = builder.finish(&mut out)?;
            built = Some(b);
            Ok(b.bytes)
        })?;
        let built = built.expect("a segment created is a segment built");
        Ok((built.rows, built.stored, segment))
    }

    /// Reads a segment this table wrote into memory (written files are mapped cold), then
    /// builds its key filter: a pass over its keys, whose pages are then in memory (built
    /// before, it read a merged file's pages while the merge's inputs were still resident).
    pub(super) fn read_in(&self, segment: &Segment) {
        self.dir.warm(segment.view().bytes());
        segment.build_key_filter();
    }

    /// Creates the next segment file with what `fill` writes into it, and opens it.
    pub(super) fn create_segment(
        &self,
        fill: impl FnOnce(&mut dyn std::io::Write) -> Result<u64>,
    ) -> Result<Segment> {
        let (mut file, mut path, mut writer);
        let mut attempt = 0;
        loop {
            let id = self.next_segment.fetch_add(1, Ordering::SeqCst);
            file = self.state.lock().manifest.segment_file(id);
            path = segment_path(&self.name, &file)?;
            match self.dir.create(&path) {
                Ok(w) => {
                    writer = w;
                    break;
                }
                // Another writer of this table took the number: number past its segments.
                Err(murr_directory::Error::AlreadyExists { .. }) if attempt < 2 => {
                    attempt += 1;
                    let files = self.dir.list(&crate::manifest::table_folder(&self.name))?;
                    self.number_past_segments_in(&files);
                }
                Err(e) => {
                    return Err(Error::create_failed(
                        &self.name,
                        &format!("segment {file}"),
                        e,
                    ));
                }
            }
        }
        let taken = |e| Error::create_failed(&self.name, &format!("segment {file}"), e);
        fill(&mut writer)?;
        let bytes = writer.finish().map_err(taken)?;
        Segment::from_bytes(bytes, path.clone(), Verify::FooterOnly).map_err(|e| {
            let _ = self.dir.delete_if_exists(&path);
            Error::from(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_streamed_segment_keeps_narrow_index_slots() {
        // A segment of SEGMENT_ROWS rows is the largest a streamed write cuts: its key index
        // must still use 4-byte slots (8-byte ones take twice the memory per key).
        assert_eq!(murr_format::index::slot_width_for(SEGMENT_ROWS as u64), 4);
        assert_eq!(
            murr_format::index::slot_width_for(SEGMENT_ROWS as u64 + 1),
            8
        );
    }
}

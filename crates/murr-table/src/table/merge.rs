//! Merges: adjacent segments combined into one, dropping the rows newer segments shadow.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use murr_directory::{DirectoryExt, FilePath};
use murr_format::DType;
use murr_segment::{
    Chunk, Counts, Loc, ResolvedRows, Segment, SegmentWatch, encode_merge, gather_columns,
};

use super::fetch::locate;
use super::{Snapshot, Table};
use crate::error::{Error, Result};
use crate::policy::pick_merge;

/// Keys of a segment looked up at once in the newer segments, to find the rows they shadow.
const SHADOW_BLOCK: usize = 4096;

/// Rows per batch when a merge reads segments back, at most: the merged segment is written a
/// batch at a time, so this bounds a merge's memory (beside the new segment's key index).
pub const MERGE_BATCH_ROWS: usize = murr_segment::MAX_CHUNK_ROWS;

/// Bytes of variable-width values per batch when a merge reads segments back, at most: one
/// Arrow string array holds at most 2 GiB, and a merge whose batch overflowed it would fail
/// again after every write, leaving the table unmerged for good.
const MERGE_CHUNK_BYTES: usize = 256 << 20;

/// Cuts a run of rows of these sizes into ranges of at most `max_rows` rows and, unless one
/// row alone is larger, at most `max_bytes` bytes.
fn chunk_bounds(
    sizes: impl IntoIterator<Item = usize>,
    max_rows: usize,
    max_bytes: usize,
) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes, mut n) = (0usize, 0usize, 0usize);
    for size in sizes {
        if n > start && (n - start >= max_rows || bytes.saturating_add(size) > max_bytes) {
            out.push(start..n);
            (start, bytes) = (n, 0);
        }
        bytes = bytes.saturating_add(size);
        n += 1;
    }
    if n > start {
        out.push(start..n);
    }
    out
}

/// The rows of a merge's inputs that survive it: a bit a row, read back in order (input by
/// input, row by row) as often as the merge needs.
struct Survivors {
    bits: Vec<Vec<u64>>,
    kept: usize,
}

impl Survivors {
    fn new(run: &[Segment]) -> Survivors {
        Survivors {
            bits: run.iter().map(|s| vec![0; s.rows().div_ceil(64)]).collect(),
            kept: 0,
        }
    }

    fn keep(&mut self, seg: usize, row: u32) {
        let word = &mut self.bits[seg][row as usize / 64];
        let bit = 1u64 << (row % 64);
        if *word & bit == 0 {
            *word |= bit;
            self.kept += 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = Loc> + Clone + '_ {
        self.bits.iter().enumerate().flat_map(|(seg, words)| {
            words.iter().enumerate().flat_map(move |(w, &word)| {
                let mut left = word;
                std::iter::from_fn(move || {
                    (left != 0).then(|| {
                        let bit = left.trailing_zeros();
                        left &= left - 1;
                        Loc {
                            seg: seg as u32,
                            row: w as u32 * 64 + bit,
                        }
                    })
                })
            })
        })
    }
}

/// Rows of a segment that a write replaces: see [`Table::find_replaced`].
pub(crate) struct Replaced {
    segment: Segment,
    rows: Vec<u32>,
}

/// Above this many segments, merges run whatever the writes (each read probes every segment
/// that may hold its keys).
pub(crate) const HOLD_MAX_SEGMENTS: usize = 16;

/// What one background merge step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MergeStep {
    /// Merged some segments; there may be more to merge.
    Merged,
    /// Nothing to merge.
    Nothing,
    /// A merge waits for writes to stop: look again after this long.
    Held(Duration),
}

impl Table {
    pub(crate) fn request_merge(&self) {
        if let Some(merger) = &self.config.merger {
            merger.request(&self.me);
        }
    }

    /// Runs one merge if the policy picks one; returns whether it did.
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub fn merge_step(&self) -> Result<bool> {
        self.merge_step_as(false)
            .map(|step| step == MergeStep::Merged)
    }

    /// As [`Table::merge_step`] for the background merges: a merge of more than
    /// `StoreOptions::merge_hold_bytes` waits while writes come in (one is running, or one
    /// ended less than `StoreOptions::write_quiet` ago), unless the table has more than
    /// [`HOLD_MAX_SEGMENTS`] segments. A large merge beside a large write held both in memory
    /// and took the cores the reads need; a refresh's writes are merged once they stop.
    pub(crate) fn merge_step_unless_writing(&self) -> Result<MergeStep> {
        self.merge_step_as(true)
    }

    /// How long until writes have been quiet for `StoreOptions::write_quiet`; `None` when they
    /// have.
    fn writes_quiet_in(&self) -> Option<Duration> {
        let quiet = self.config.write_quiet;
        let w = self.writes.lock();
        if w.running > 0 {
            return Some(quiet.max(Duration::from_millis(10)));
        }
        let since = w.last_end?.elapsed();
        (since < quiet).then(|| quiet - since)
    }

    fn merge_step_as(&self, hold_for_writes: bool) -> Result<MergeStep> {
        self.check_writable("a merge")?;
        let _merging = self.merging.lock();
        let snap = self.snapshot.load_full();
        let rows: Vec<u64> = snap.segments.iter().map(|s| s.rows() as u64).collect();
        let bytes: Vec<u64> = snap.segments.iter().map(|s| s.size() as u64).collect();
        let Some(range) = pick_merge(
            &rows,
            &bytes,
            self.config.merge_factor,
            self.config.max_merge_bytes,
        ) else {
            return Ok(MergeStep::Nothing);
        };
        if hold_for_writes
            && bytes[range.clone()].iter().sum::<u64>() > self.config.merge_hold_bytes
            && snap.segments.len() <= HOLD_MAX_SEGMENTS
            && let Some(wait) = self.writes_quiet_in()
        {
            return Ok(MergeStep::Held(wait));
        }
        self.merge(snap, range).map(|()| MergeStep::Merged)
    }

    /// The rows of the table's segments more than twice the size of one of `written` (a
    /// write's segments, not committed yet) that their keys replace. Found before the write
    /// commits, so that [`Table::mark_replaced`] marks them and drops their pages right after:
    /// the new segment is read in before the commit, and the old rows' pages should not stay
    /// beside it for the time the lookups take. (Smaller segments are merged soon anyway;
    /// looking the write's keys up in each would cost more than their pages.)
    pub(crate) fn find_replaced(&self, written: &[Segment]) -> Vec<Replaced> {
        let snap = self.snapshot.load();
        let mut found = Vec::new();
        for s in snap.segments.iter() {
            let one = std::slice::from_ref(s);
            let mut rows: Vec<u32> = Vec::new();
            for w in written.iter().filter(|w| s.rows() > 2 * w.rows()) {
                for start in (0..w.rows()).step_by(SHADOW_BLOCK) {
                    let keys: Vec<&[u8]> = (start..(start + SHADOW_BLOCK).min(w.rows()))
                        .map(|r| w.key(r))
                        .collect();
                    rows.extend(
                        // Rows marked already need no second look.
                        locate(one, &keys, u64::MAX)
                            .iter()
                            .filter(|l| l.is_found())
                            .map(|l| l.row),
                    );
                }
            }
            if !rows.is_empty() {
                found.push(Replaced {
                    segment: s.clone(),
                    rows,
                });
            }
        }
        found
    }

    /// Marks the rows [`Table::find_replaced`] found, once the write that replaces them is
    /// committed, and has the directory drop the pages of the row block whose every row is
    /// replaced. A table rewritten by a refresh then does not hold the old rows and the new
    /// ones in memory together until the merges catch up, and the merges skip the marked rows
    /// without reading them.
    pub(crate) fn mark_replaced(&self, replaced: Vec<Replaced>) {
        if replaced.is_empty() {
            return;
        }
        let started = Instant::now();
        // The commit's version or a later one: a reader skips a mark only once its snapshot
        // holds the write.
        let snap = self.snapshot.load_full();
        let (mut marked, mut released) = (0usize, 0usize);
        for Replaced { segment, rows } in replaced {
            // Only a segment still in the table: one merged since is another one, unmarked (a
            // merge that took the write too holds its rows).
            if !snap.segments.iter().any(|s| s.path() == segment.path()) {
                continue;
            }
            marked += rows.len();
            for range in segment.shadow(&rows, snap.version) {
                released += range.len();
                self.dir.release(segment.view().bytes(), range);
            }
        }
        if marked > 0 {
            tracing::debug!(
                table = %self.name,
                rows = marked,
                released_mb = released >> 20,
                ms = started.elapsed().as_secs_f64() * 1e3,
                "rows replaced by newer writes marked"
            );
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
        self.merge(snap, 0..n)
    }

    /// What the merge thread runs once the table has had no write for a while: merges all
    /// segments into one, or only the small ones after a large one (see `policy::pick_idle`).
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub(crate) fn compact_idle(&self) -> Result<()> {
        self.check_writable("a compaction")?;
        let _merging = self.merging.lock();
        let snap = self.snapshot.load_full();
        let bytes: Vec<u64> = snap.segments.iter().map(|s| s.size() as u64).collect();
        match crate::policy::pick_idle(&bytes) {
            Some(range) => self.merge(snap, range),
            None => Ok(()),
        }
    }

    /// When the next row of the table expires (seconds since the Unix epoch): the earliest write
    /// time of any segment plus the time to live; `None` without a time to live.
    pub fn next_expiry(&self) -> Option<i64> {
        let snap = self.snapshot.load();
        let ttl = snap.meta.schema.ttl?;
        snap.segments
            .iter()
            .map(|s| self.write_span(s).0.saturating_add_unsigned(ttl))
            .min()
    }

    /// Drops the expired rows: every segment holding one is rewritten without them (or
    /// dropped, when all its rows expired). Returns how many segments it rewrote or dropped.
    /// The merge thread runs this (at most every `StoreOptions::expiry_interval`); reads never
    /// see expired rows either way.
    ///
    /// # Errors
    /// Storage errors; the table stays as it was.
    pub fn expire(&self) -> Result<usize> {
        self.check_writable("dropping expired rows")?;
        let _merging = self.merging.lock();
        let mut done = 0usize;
        loop {
            let snap = self.snapshot.load_full();
            let Some(ttl) = snap.meta.schema.ttl else {
                return Ok(done);
            };
            let now = self.config.clock.now();
            let Some(i) = snap
                .segments
                .iter()
                .position(|s| self.write_span(s).0.saturating_add_unsigned(ttl) <= now)
            else {
                return Ok(done);
            };
            self.merge(snap, i..i + 1)?;
            done += 1;
        }
    }

    /// Merges the segments `range` of `snap` into one (or none, when no row survives) and
    /// commits. The merged file is read in (`Directory::warm`) only after `snap` is let go, so
    /// that the inputs' pages and the output's are not resident together for long.
    fn merge(&self, snap: Arc<Snapshot>, range: Range<usize>) -> Result<()> {
        let started = Instant::now();
        let meta = &snap.meta;
        // Rows written at or before this have expired, and are dropped.
        let expired_at = meta
            .schema
            .ttl
            .map(|ttl| self.config.clock.now().saturating_sub_unsigned(ttl));
        let run = &snap.segments[range.clone()];
        let before: usize = run.iter().map(Segment::rows).sum();
        let inputs = run.len();
        let columns: Vec<(&str, DType)> = meta
            .schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.dtype))
            .collect();
        // The rows that survive: not shadowed by a newer segment, not expired.
        // The segments after each are looked up for a block of its keys at once, as a fetch
        // does (the index misses of different keys overlap).
        // A bit a row: a merge of 10M rows kept 80 MB of `Loc`s for its whole length.
        let mut survivors = Survivors::new(run);
        let mut rows: Vec<u32> = Vec::with_capacity(SHADOW_BLOCK);
        for (j, seg) in run.iter().enumerate() {
            let later = &snap.segments[range.start + j + 1..];
            if expired_at.is_some_and(|at| self.write_span(seg).1 <= at) {
                continue; // every row expired
            }
            for start in (0..seg.rows()).step_by(SHADOW_BLOCK) {
                rows.clear();
                rows.extend(
                    (start..(start + SHADOW_BLOCK).min(seg.rows()))
                        // Rows known replaced are not read: their pages may be dropped.
                        .filter(|&row| !seg.is_shadowed(row))
                        .filter(|&row| expired_at.is_none_or(|at| self.written(seg, row) > at))
                        .map(|row| row as u32),
                );
                let keys: Vec<&[u8]> = rows.iter().map(|&r| seg.key(r as usize)).collect();
                let newest = locate(later, &keys, snap.version);
                for (&row, loc) in rows.iter().zip(&newest) {
                    if !loc.is_found() {
                        survivors.keep(j, row);
                    }
                }
            }
        }
        let kept = survivors.kept;
        // The bytes each survivor's variable-width values and lists take, to bound a batch.
        let chunks = {
            let var: Vec<Vec<_>> = run
                .iter()
                .map(|seg| {
                    let view = seg.view();
                    (0..view.meta().columns.len())
                        .map(|p| view.column(p))
                        .filter(|c| c.fixed_offset().is_none())
                        .collect()
                })
                .collect();
            let sizes = survivors.iter().map(|loc| {
                let view = run[loc.seg as usize].view();
                let r = loc.row as usize;
                let row = view.row(r);
                var[loc.seg as usize]
                    .iter()
                    .map(|c| c.outside_len(r, row))
                    .sum::<usize>()
            });
            chunk_bounds(sizes, MERGE_BATCH_ROWS, MERGE_CHUNK_BYTES)
        };
        // What the survivors hold decides the merged segment's storage: counted from the
        // stored rows. Then each batch is read back from the segments when the encoder asks
        // for it, so that only one is in memory at a time.
        let written = |loc: Loc| self.written(&run[loc.seg as usize], loc.row as usize);
        let counts = Counts::of_rows(meta.schema(), run, survivors.iter(), written)?;
        // A batch of rows that cannot be copied as they are is read into arrays.
        let gather = |locs: &[Loc]| -> murr_segment::Result<Chunk> {
            let rows = ResolvedRows::new(run, locs);
            let arrays = gather_columns(run, &rows, &columns)?;
            Ok(Chunk {
                batch: RecordBatch::try_new(Arc::clone(&meta.storage_schema), arrays)?,
                written: locs.iter().map(|&loc| written(loc)).collect(),
            })
        };
        let merged = if kept == 0 {
            None
        } else {
            Some(self.create_segment(|mut out| {
                Ok(encode_merge(
                    meta.schema(),
                    &counts,
                    run,
                    survivors.iter(),
                    &chunks,
                    written,
                    gather,
                    &mut out,
                )?)
            })?)
        };
        drop(survivors);
        let old: Vec<FilePath> = run.iter().map(|s| s.path().clone()).collect();
        let result = self.commit(|segments| {
            let still_there = segments.len() >= range.end
                && segments[range.clone()]
                    .iter()
                    .map(Segment::path)
                    .eq(old.iter());
            if !still_there {
                // Only a replacing write swaps segments out from under a merge.
                return Err(Error::Conflict {
                    table: self.name.clone(),
                    what: "the segments being merged (a replacing write swapped them)".to_owned(),
                });
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
        let ms = started.elapsed().as_secs_f64() * 1e3;
        self.counters.merged(started.elapsed());
        // The inputs' pages leave memory now, whoever still holds the segments (a reader that
        // took the old snapshot brings back what it reads, from the file).
        for s in run {
            self.dir.release(s.view().bytes(), 0..s.size());
        }
        // The inputs are let go before the merged file is read in, and so are the readers'
        // (a fetch that took the old snapshot before the commit brings back the pages it
        // reads, each a 2 MiB folio of the file: one fetch of 1000 keys maps nearly the whole
        // segment again). A reader that holds them longer than a bound is not waited for.
        let inputs_gone: Vec<SegmentWatch> = run.iter().map(Segment::watch).collect();
        drop(columns);
        drop(snap);
        if let Some(m) = &merged {
            if !wait_until_gone(&inputs_gone, READERS_LET_GO_WAIT) {
                tracing::debug!(table = %self.name, "a reader still holds a merge's inputs; reading the merged file in anyway");
            }
            self.read_in(m);
        }
        tracing::info!(
            table = %self.name,
            segments = inputs,
            rows_in = before,
            rows_out = kept,
            ms,
            warm_ms = started.elapsed().as_secs_f64() * 1e3 - ms,
            "merged segments"
        );
        Ok(())
    }
}

/// How long a merge waits for readers to let go of its inputs before it reads the merged file
/// in (a fetch takes well under a millisecond; a large one, tens).
const READERS_LET_GO_WAIT: Duration = Duration::from_millis(500);

/// Waits until every watched segment is gone, at most `bound`; whether they all went.
fn wait_until_gone(watches: &[SegmentWatch], bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if watches.iter().all(SegmentWatch::is_gone) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_by_rows_and_by_bytes() {
        assert_eq!(chunk_bounds([1, 1, 1, 1, 1], 2, 100), [0..2, 2..4, 4..5]);
        assert_eq!(
            chunk_bounds([60, 60, 30, 10, 90], 10, 100),
            [0..1, 1..4, 4..5]
        );
        // A row larger than the budget is a chunk of its own.
        assert_eq!(chunk_bounds([5, 500, 5], 10, 100), [0..1, 1..2, 2..3]);
        assert!(chunk_bounds([], 10, 100).is_empty());
        // Rows of 9 KiB strings: 2 GiB of them would overflow an Arrow string array; every
        // chunk stays under the limit.
        let sizes = std::iter::repeat_n(9 << 10, MERGE_BATCH_ROWS);
        let chunks = chunk_bounds(sizes, MERGE_BATCH_ROWS, MERGE_CHUNK_BYTES);
        assert!(chunks.len() > 1);
        assert!(
            chunks
                .iter()
                .all(|c| c.len() * (9 << 10) <= MERGE_CHUNK_BYTES)
        );
    }
}

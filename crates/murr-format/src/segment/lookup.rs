//! Key lookups in a segment's index: one key, or many at once with their cache misses overlapped.

use crate::segment::SegmentView;
use crate::segment::view::{Layout, inline_value};

/// How many keys ahead a batched lookup prefetches: enough to keep the memory system busy
/// (a dozen or two misses in flight per core), few enough that prefetched lines are still cached
/// when they are read. Prefetching a whole stage at once was slower: the prefetches beyond what
/// the core can track stall or are dropped.
const PREFETCH_DISTANCE: usize = 16;

pub(crate) use crate::prefetch::prefetch;

impl SegmentView {
    /// Hints the CPU to load row `row`, so that a read of it soon after finds it in cache.
    #[inline]
    pub fn prefetch_row(&self, row: usize) {
        let at = row * self.row_width;
        let end = at + self.row_width;
        for line in (at..end).step_by(64) {
            prefetch(&self.row_block, line);
        }
        // The last line, when the row straddles one more than its width suggests.
        prefetch(&self.row_block, end.saturating_sub(1));
    }

    #[inline]
    fn key_checked(&self, row: u32) -> Option<&[u8]> {
        ((row as usize) < self.rows()).then(|| self.key(row as usize))
    }

    /// The row holding the encoded key `key`, given its hash in this segment
    /// ([`SegmentView::hash`]).
    #[inline]
    pub fn find_hashed(&self, key: &[u8], hash: u64) -> Option<u32> {
        self.index().find(key, hash, |r| self.key_checked(r))
    }

    /// The row holding the encoded key `key`.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.find_hashed(key, self.hash(key))
    }

    /// Looks up many encoded keys at once: for each position `i` in `todo`, `keys[i]` (with hash
    /// `hashes[i]`, from [`SegmentView::hash`] or of the same seed). Calls `found(i, row)` for each key present and keeps in `todo` the positions
    /// of the keys that are not.
    ///
    /// The work goes in two stages (probe every key's slot, then compare every candidate's key),
    /// each one loop that prefetches the key 16 places ahead, so the cache
    /// misses of different keys overlap instead of queuing one behind the other.
    pub fn find_many<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        hashes: &[u64],
        todo: &mut Vec<u32>,
        found: impl FnMut(u32, u32),
    ) {
        self.find_many_skipping(keys, hashes, todo, |_| false, found);
    }

    /// As [`SegmentView::find_many`], never reading the rows `skip` names: their slots count as
    /// tag collisions. For rows the caller knows hold no key it looks for (rows newer segments
    /// replaced, whose pages may have left memory: reading one would bring its page back).
    pub fn find_many_skipping<K: AsRef<[u8]>>(
        &self,
        keys: &[K],
        hashes: &[u64],
        todo: &mut Vec<u32>,
        skip: impl Fn(u32) -> bool,
        mut found: impl FnMut(u32, u32),
    ) {
        let rows = self.rows();
        let key_checked = |r: u32| (!skip(r)).then(|| self.key_checked(r)).flatten();
        let index = self.index();
        let width = usize::from(self.meta().index_slot_width);
        let prefetch_slot = |i: u32| {
            prefetch(
                index.slots(),
                index.home(hashes[i as usize]) as usize * width,
            )
        };
        for &i in todo.iter().take(PREFETCH_DISTANCE) {
            prefetch_slot(i);
        }
        // Stage 1: the first slot whose tag matches, for every key.
        let mut cands: Vec<(u32, u64, u32)> = Vec::with_capacity(todo.len());
        let mut missing = Vec::new();
        for (n, &i) in todo.iter().enumerate() {
            if let Some(&ahead) = todo.get(n + PREFETCH_DISTANCE) {
                prefetch_slot(ahead);
            }
            let h = hashes[i as usize];
            let mut budget = index.capacity();
            match index.candidate(h, index.home(h), &mut budget) {
                Some((pos, row)) if (row as usize) < rows && !skip(row) => {
                    cands.push((i, pos, row));
                }
                Some((pos, _)) => match index.find_from(
                    keys[i as usize].as_ref(),
                    h,
                    index.next(pos),
                    &mut budget,
                    key_checked,
                ) {
                    Some(row) => found(i, row),
                    None => missing.push(i),
                },
                None => missing.push(i),
            }
        }
        // Stage 2: compare the candidates' keys; a tag collision continues its probe (rare: 1 in
        // 256 occupied slots).
        let mut check = |i: u32, pos: u64, row: u32, stored: &[u8]| {
            let key = keys[i as usize].as_ref();
            if stored == key {
                found(i, row);
            } else {
                let mut budget = index.capacity();
                let h = hashes[i as usize];
                match index.find_from(key, h, index.next(pos), &mut budget, key_checked) {
                    Some(row) => found(i, row),
                    None => missing.push(i),
                }
            }
        };
        match self.key_layout {
            // The key is in the row, which the fetch reads next anyway: one miss for both.
            Layout::Inline { offset, width } => {
                // The row's first line and the line(s) of the key: all of a narrow row; a wide
                // row's other lines are read by the gather.
                let prefetch_row = |row: u32| {
                    let at = row as usize * self.row_width;
                    prefetch(&self.row_block, at);
                    prefetch(&self.row_block, at + offset);
                    prefetch(&self.row_block, at + offset + width);
                };
                for &(_, _, row) in cands.iter().take(PREFETCH_DISTANCE) {
                    prefetch_row(row);
                }
                for (n, &(i, pos, row)) in cands.iter().enumerate() {
                    if let Some(&(_, _, ahead)) = cands.get(n + PREFETCH_DISTANCE) {
                        prefetch_row(ahead);
                    }
                    check(
                        i,
                        pos,
                        row,
                        inline_value(self.row(row as usize), offset, width),
                    );
                }
            }
            Layout::Var(v) => {
                // Three steps in one pipeline: the offsets of the candidate 2 x DISTANCE ahead
                // are prefetched, the key bytes of the one DISTANCE ahead, and this one compared.
                let keys_col = &self.var[v];
                let ow = if keys_col.wide { 8 } else { 4 };
                let d = PREFETCH_DISTANCE;
                let mut bounds: Vec<(usize, usize)> = Vec::with_capacity(cands.len());
                let bound = |n: usize, bounds: &mut Vec<(usize, usize)>| {
                    if let Some(&(_, _, row)) = cands.get(n) {
                        let (a, b) = keys_col.bounds(row as usize);
                        prefetch(&keys_col.data, a);
                        bounds.push((a, b));
                    }
                };
                for &(_, _, row) in cands.iter().take(2 * d) {
                    prefetch(&keys_col.offsets, row as usize * ow);
                }
                for n in 0..d {
                    bound(n, &mut bounds);
                }
                for (n, &(i, pos, row)) in cands.iter().enumerate() {
                    if let Some(&(_, _, ahead)) = cands.get(n + 2 * d) {
                        prefetch(&keys_col.offsets, ahead as usize * ow);
                    }
                    bound(n + d, &mut bounds);
                    let (a, b) = bounds[n];
                    check(i, pos, row, &keys_col.data[a..b]);
                }
            }
            Layout::Fixed { .. } | Layout::List(_) | Layout::Sparse { .. } => {
                unreachable!("the key column holds byte strings, checked at open")
            }
        }
        missing.sort_unstable();
        *todo = missing;
    }
}

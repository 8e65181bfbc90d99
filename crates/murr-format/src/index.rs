//! The per-segment key index: an open-addressing hash table stored inside the segment file.
//!
//! Each slot holds a row number and a few bits of the key's hash (the tag), so that most probes
//! of a slot that holds another key are rejected without reading that key.
//! Segments of fewer than 2^24 - 1 rows use 4-byte slots (8-bit tag, 24-bit row);
//! larger ones use 8-byte slots (32-bit tag, 32-bit row).
//! The table is filled to at most [`MAX_LOAD`], so it costs about 5.3 (or 10.7) bytes per key.
//!
//! Probing is linear from the key's home slot. The home slot is `hash * capacity >> 64`, which
//! uses the high bits of the hash; the tag uses the low bits.
//! The hash is xxh3-64 with a seed: segments of format version 3 draw a random seed each (hash
//! algorithm code 2, the seed in the footer), so that nobody can choose keys that collide in an
//! index (keys whose hashes share their high bits land in one run of slots, and building or
//! probing the index turns quadratic). Versions 1 and 2 used seed 0 (code 1). Both are written
//! into files, so they never change.

use crate::error::{Error, Result};

/// Hash algorithm code of xxh3-64, seed 0 (segment format versions 1 and 2).
pub const HASH_XXH3_64: u8 = 1;
/// Hash algorithm code of xxh3-64 with the segment's own seed, stored in its footer (version 3).
pub const HASH_XXH3_64_SEEDED: u8 = 2;

/// The highest fill ratio of the table.
pub const MAX_LOAD: f64 = 0.75;

/// Rows above this count use 8-byte slots.
pub const MAX_ROWS_NARROW: u64 = (1 << 24) - 2;

/// The hash of a key in an index of seed `seed` (seed 0 is algorithm code 1's hash).
#[inline]
pub fn hash_key(key: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, seed)
}

/// The slot width, in bytes, for a segment of `rows` rows.
pub fn slot_width_for(rows: u64) -> u8 {
    if rows <= MAX_ROWS_NARROW { 4 } else { 8 }
}

/// The number of slots for a segment of `rows` rows.
pub fn capacity_for(rows: u64) -> u64 {
    let min = (rows as f64 / MAX_LOAD).ceil() as u64;
    min.max(rows + 1).max(1)
}

#[inline]
fn home(hash: u64, capacity: u64) -> u64 {
    ((u128::from(hash) * u128::from(capacity)) >> 64) as u64
}

#[inline]
fn pack(width: u8, hash: u64, row: u64) -> u64 {
    if width == 4 {
        ((hash & 0xFF) << 24) | row
    } else {
        ((hash & 0xFFFF_FFFF) << 32) | row
    }
}

#[inline]
fn empty(width: u8) -> u64 {
    if width == 4 {
        u64::from(u32::MAX)
    } else {
        u64::MAX
    }
}

/// Builds the slot array for `keys` (which must be distinct) into `out`, little-endian.
///
/// # Errors
/// [`Error::Invalid`] if two keys are equal or there are too many rows.
pub fn build<'a>(
    keys: impl ExactSizeIterator<Item = &'a [u8]> + Clone,
    key_at: impl Fn(u64) -> &'a [u8],
    seed: u64,
    out: &mut Vec<u8>,
) -> Result<(u8, u64)> {
    let mut builder = Builder::new(keys.len() as u64, seed)?;
    for (row, key) in keys.enumerate() {
        builder.insert(row as u64, key, |r| Some(key_at(r)))?;
    }
    let (width, capacity, bytes) = builder.finish();
    out.extend_from_slice(&bytes);
    Ok((width, capacity))
}

/// Fills a slot array one key at a time, so that an encoder can insert the keys of rows it
/// has already written out (see `SegmentEncoder::streaming`). The slots are kept as they are
/// stored: 4 or 8 bytes each, little-endian.
#[derive(Debug)]
pub struct Builder {
    width: u8,
    capacity: u64,
    seed: u64,
    slots: Vec<u8>,
}

impl Builder {
    /// A slot array for `rows` keys hashed with `seed`, all slots empty.
    ///
    /// # Errors
    /// [`Error::Invalid`] when there are too many rows.
    pub fn new(rows: u64, seed: u64) -> Result<Builder> {
        if rows >= u64::from(u32::MAX) {
            return Err(Error::invalid(format!(
                "a segment holds at most {} rows, got {rows}",
                u32::MAX - 1
            )));
        }
        let width = slot_width_for(rows);
        let capacity = capacity_for(rows);
        let len = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_mul(usize::from(width)))
            .ok_or_else(|| Error::invalid("index too large"))?;
        Ok(Builder {
            width,
            capacity,
            seed,
            // Every byte 0xFF: every slot empty, whatever its width.
            slots: vec![0xFF; len],
        })
    }

    #[inline]
    fn get(&self, pos: usize) -> u64 {
        if self.width == 4 {
            let b = &self.slots[pos * 4..pos * 4 + 4];
            u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")))
        } else {
            let b = &self.slots[pos * 8..pos * 8 + 8];
            u64::from_le_bytes(b.try_into().expect("8 bytes"))
        }
    }

    #[inline]
    fn set(&mut self, pos: usize, slot: u64) {
        if self.width == 4 {
            let v = u32::try_from(slot).expect("a narrow slot");
            self.slots[pos * 4..pos * 4 + 4].copy_from_slice(&v.to_le_bytes());
        } else {
            self.slots[pos * 8..pos * 8 + 8].copy_from_slice(&slot.to_le_bytes());
        }
    }

    /// Inserts the key of `row`. When a slot on its probe path holds a row with the same tag,
    /// `key_at` gives that row's key to compare, or `None` when the caller no longer has it
    /// (the rows were written out): the keys are then taken to differ.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `key_at` shows an earlier row with the same key.
    #[inline]
    pub fn insert<'a>(
        &mut self,
        row: u64,
        key: &[u8],
        key_at: impl Fn(u64) -> Option<&'a [u8]>,
    ) -> Result<()> {
        let hash = self.hash(key);
        self.insert_hashed(row, key, hash, key_at)
    }

    /// The hash of `key` in this index.
    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        hash_key(key, self.seed)
    }

    /// Hints the CPU to load the home slot of a key of hash `hash`, to insert it soon after.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let at = home(hash, self.capacity) as usize * usize::from(self.width);
        crate::prefetch::prefetch(&self.slots, at);
    }

    /// [`Builder::insert`] for a key whose hash ([`Builder::hash`]) is known.
    ///
    /// # Errors
    /// As [`Builder::insert`].
    #[inline]
    pub fn insert_hashed<'a>(
        &mut self,
        row: u64,
        key: &[u8],
        hash: u64,
        key_at: impl Fn(u64) -> Option<&'a [u8]>,
    ) -> Result<()> {
        let (tag_mask, row_mask) = if self.width == 4 {
            (0xFF00_0000, 0x00FF_FFFF)
        } else {
            (0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF)
        };
        let packed = pack(self.width, hash, row);
        let mut pos = home(hash, self.capacity);
        loop {
            let slot = self.get(pos as usize);
            if slot == empty(self.width) {
                self.set(pos as usize, packed);
                return Ok(());
            }
            if slot & tag_mask == packed & tag_mask && key_at(slot & row_mask) == Some(key) {
                return Err(Error::invalid(format!(
                    "key {:?} appears twice in one segment",
                    String::from_utf8_lossy(key)
                )));
            }
            pos += 1;
            if pos == self.capacity {
                pos = 0;
            }
        }
    }

    /// The slot width, the capacity and the slots as stored.
    pub fn finish(self) -> (u8, u64, Vec<u8>) {
        (self.width, self.capacity, self.slots)
    }
}

/// A read-only view of a stored slot array.
#[derive(Debug, Clone, Copy)]
pub struct IndexView<'a> {
    slots: &'a [u8],
    width: u8,
    capacity: u64,
}

impl<'a> IndexView<'a> {
    /// Checks the slot array's size against its parameters.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the sizes disagree.
    pub fn new(slots: &'a [u8], width: u8, capacity: u64, rows: u64) -> Result<Self> {
        if width != slot_width_for(rows) {
            return Err(Error::corrupt(format!(
                "index slot width={width} does not fit rows={rows}"
            )));
        }
        if capacity <= rows || capacity != capacity_for(rows) {
            return Err(Error::corrupt(format!(
                "index capacity={capacity} does not fit rows={rows}"
            )));
        }
        if capacity.checked_mul(u64::from(width)) != Some(slots.len() as u64) {
            return Err(Error::corrupt(format!(
                "index is {} bytes, expected capacity={capacity} x width={width}",
                slots.len()
            )));
        }
        Ok(IndexView {
            slots,
            width,
            capacity,
        })
    }

    /// A view whose sizes were checked earlier by [`IndexView::new`].
    pub(crate) fn new_unchecked(slots: &'a [u8], width: u8, capacity: u64) -> Self {
        IndexView {
            slots,
            width,
            capacity,
        }
    }

    #[inline]
    fn slot(&self, pos: u64) -> u64 {
        let at = pos as usize * usize::from(self.width);
        if self.width == 4 {
            let b: [u8; 4] = self.slots[at..at + 4].try_into().expect("4 bytes");
            u64::from(u32::from_le_bytes(b))
        } else {
            let b: [u8; 8] = self.slots[at..at + 8].try_into().expect("8 bytes");
            u64::from_le_bytes(b)
        }
    }

    /// The home slot of a hash: where its probe starts.
    #[inline]
    pub fn home(&self, hash: u64) -> u64 {
        home(hash, self.capacity)
    }

    /// Probes from slot `pos` for the next slot whose tag matches `hash`: returns that slot's
    /// position and row, or `None` at the first empty slot. `budget` counts the slots read; it
    /// keeps a corrupt table (with no empty slot) from looping forever.
    #[inline]
    pub fn candidate(&self, hash: u64, mut pos: u64, budget: &mut u64) -> Option<(u64, u32)> {
        let (tag_mask, row_mask) = if self.width == 4 {
            (0xFF00_0000u64, 0x00FF_FFFFu64)
        } else {
            (0xFFFF_FFFF_0000_0000, 0xFFFF_FFFF)
        };
        let want = pack(self.width, hash, 0);
        let empty = empty(self.width);
        while *budget > 0 {
            *budget -= 1;
            let s = self.slot(pos);
            if s == empty {
                return None;
            }
            if s & tag_mask == want {
                return Some((pos, (s & row_mask) as u32));
            }
            pos = self.next(pos);
        }
        None
    }

    /// The slot after `pos`, wrapping around.
    #[inline]
    pub fn next(&self, pos: u64) -> u64 {
        if pos + 1 == self.capacity { 0 } else { pos + 1 }
    }

    /// The slot bytes.
    pub fn slots(&self) -> &'a [u8] {
        self.slots
    }

    /// The number of slots.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The row holding `key`, found by comparing candidates with `key_at(row)`, which returns
    /// `None` for a row out of range (a slot of a corrupt file is then skipped, never trusted).
    #[inline]
    pub fn find(
        &self,
        key: &[u8],
        hash: u64,
        key_at: impl Fn(u32) -> Option<&'a [u8]>,
    ) -> Option<u32> {
        self.find_from(key, hash, self.home(hash), &mut self.capacity(), key_at)
    }

    /// As [`IndexView::find`], starting the probe at slot `pos` with a budget of slot reads.
    #[inline]
    pub fn find_from(
        &self,
        key: &[u8],
        hash: u64,
        mut pos: u64,
        budget: &mut u64,
        key_at: impl Fn(u32) -> Option<&'a [u8]>,
    ) -> Option<u32> {
        while let Some((at, row)) = self.candidate(hash, pos, budget) {
            if key_at(row) == Some(key) {
                return Some(row);
            }
            pos = self.next(at);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_of(keys: &[String]) -> (Vec<u8>, u8, u64) {
        index_seeded(keys, 0)
    }

    fn index_seeded(keys: &[String], seed: u64) -> (Vec<u8>, u8, u64) {
        let mut out = Vec::new();
        let (w, c) = build(
            keys.iter().map(String::as_bytes),
            |r| keys[usize::try_from(r).expect("fits")].as_bytes(),
            seed,
            &mut out,
        )
        .expect("distinct keys");
        (out, w, c)
    }

    /// The mean distance of the keys from their home slots: what every lookup probes.
    fn mean_displacement(keys: &[String], seed: u64) -> f64 {
        let (bytes, w, c) = index_seeded(keys, seed);
        let view = IndexView::new(&bytes, w, c, keys.len() as u64).expect("valid");
        let mut total = 0u64;
        for pos in 0..c {
            let s = view.slot(pos);
            if s == empty(w) {
                continue;
            }
            let row = s & if w == 4 { 0x00FF_FFFF } else { 0xFFFF_FFFF };
            let home = view.home(hash_key(keys[row as usize].as_bytes(), seed));
            total += (pos + c - home) % c;
        }
        total as f64 / keys.len() as f64
    }

    /// Keys chosen so that their seed-0 hashes share their high bits all land in one run of
    /// slots of a seed-0 index (quadratic to build and to probe); under a random seed they
    /// spread as any keys do.
    #[test]
    fn chosen_keys_cannot_collide_in_a_seeded_index() {
        let chosen: Vec<String> = (0u64..)
            .map(|i| format!("key-{i}"))
            .filter(|k| hash_key(k.as_bytes(), 0) >> 53 == 0)
            .take(1500)
            .collect();
        let flooded = mean_displacement(&chosen, 0);
        assert!(flooded > 100.0, "seed 0: {flooded}");
        let seed = 0x9E37_79B9_7F4A_7C15;
        let spread = mean_displacement(&chosen, seed);
        assert!(spread < 4.0, "seeded: {spread}");
    }

    #[test]
    fn finds_every_key_and_no_other() {
        for n in [0usize, 1, 2, 3, 100, 5000] {
            let keys: Vec<String> = (0..n).map(|i| format!("key-{i}")).collect();
            let (bytes, w, c) = index_of(&keys);
            let view = IndexView::new(&bytes, w, c, n as u64).expect("valid");
            let at = |r: u32| keys.get(r as usize).map(String::as_bytes);
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(
                    view.find(k.as_bytes(), hash_key(k.as_bytes(), 0), at),
                    Some(i as u32)
                );
            }
            for i in n..n + 100 {
                let k = format!("key-{i}");
                assert_eq!(view.find(k.as_bytes(), hash_key(k.as_bytes(), 0), at), None);
            }
        }
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let keys = ["a".to_owned(), "b".to_owned(), "a".to_owned()];
        let mut out = Vec::new();
        let err = build(
            keys.iter().map(String::as_bytes),
            |r| keys[r as usize].as_bytes(),
            7,
            &mut out,
        )
        .expect_err("duplicate");
        assert!(err.to_string().contains("\"a\""));
    }

    #[test]
    fn size_mismatch_is_corrupt_and_bad_rows_are_skipped() {
        let keys: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let (bytes, w, c) = index_of(&keys);
        assert!(IndexView::new(&bytes[1..], w, c, 10).is_err());
        assert!(IndexView::new(&bytes, 8, c, 10).is_err());
        assert!(IndexView::new(&bytes, w, c + 1, 10).is_err());
        let view = IndexView::new(&bytes, w, c, 10).expect("valid");
        // A key_at that rejects every row stands for rows out of range: nothing is found, nothing panics.
        assert_eq!(view.find(b"3", hash_key(b"3", 0), |_| None), None);
    }

    #[test]
    fn bytes_per_key_stay_lean() {
        let rows = 1_000_000u64;
        let bytes = capacity_for(rows) * u64::from(slot_width_for(rows));
        assert!(bytes as f64 / rows as f64 <= 5.34, "{bytes}");
    }
}

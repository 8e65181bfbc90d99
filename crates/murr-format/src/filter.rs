//! A Bloom filter of a segment's keys, held in memory beside the segment (not stored in its
//! file): a key looked up in a segment it is not in is turned away by the filter (about 1.2
//! KiB per 1000 keys, which stays in cache) instead of probing the segment's index (5.3 bytes
//! per key, a cache and TLB miss per probe). A table that holds several segments looks each
//! key up newest first, so every segment newer than the key's costs such a probe: while a
//! refresh rewrites a table, ten of them per key.
//!
//! Blocked: a key's bits are all in one 64-bit word, so a query reads one cache line. The bits
//! come from the key's hash in the segment's index ([`crate::index::hash_key`] with the
//! segment's seed), which a lookup has computed anyway.

/// Bits of filter per key: with [`BITS_SET`] bits per key in one word, about 1.2% of the keys
/// not in the segment pass the filter.
pub const BITS_PER_KEY: usize = 10;

/// Bits set per key.
const BITS_SET: u32 = 4;

/// How many keys ahead [`KeyFilter::sift`] prefetches a key's word.
pub const SIFT_AHEAD: usize = 16;

/// A Bloom filter over hashes; no false negatives.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    words: Box<[u64]>,
}

impl KeyFilter {
    /// An empty filter sized for `keys` keys.
    pub fn with_capacity(keys: usize) -> KeyFilter {
        let words = (keys.saturating_mul(BITS_PER_KEY) / 64).max(1);
        KeyFilter {
            words: vec![0u64; words].into_boxed_slice(),
        }
    }

    /// The word and the bits of `hash`.
    #[inline]
    fn place(&self, hash: u64) -> (usize, u64) {
        // The index uses the hash's high bits for the slot and its low ones for the tag: mix
        // before taking the filter's from it.
        let m = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (hash >> 29);
        let word = (((m >> 32) * self.words.len() as u64) >> 32) as usize;
        let mut bits = 0u64;
        for i in 0..BITS_SET {
            bits |= 1 << ((m >> (6 * i)) & 63);
        }
        (word, bits)
    }

    /// Adds the key of hash `hash`.
    #[inline]
    pub fn insert(&mut self, hash: u64) {
        let (word, bits) = self.place(hash);
        self.words[word] |= bits;
    }

    /// Whether the key of hash `hash` may have been added: `false` means it was not.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let (word, bits) = self.place(hash);
        self.words[word] & bits == bits
    }

    /// Splits `keys` (key numbers, whose hashes `hash_of` gives) into those that may have been
    /// added, appended to `maybe`, and those that were not, appended to `absent`, each in the
    /// order of `keys`.
    ///
    /// The filter of a large segment does not stay in cache beside the rows a fetch reads, so a
    /// key's word is often a cache miss: the words are prefetched [`SIFT_AHEAD`] keys ahead, and
    /// the split takes no branch on a key's answer (a mispredicted one would discard the loads
    /// in flight behind it). Measured: 20 ns a key with `Iterator::partition`, see
    /// docs/performance.md.
    pub fn sift(
        &self,
        keys: &[u32],
        hash_of: impl Fn(u32) -> u64,
        maybe: &mut Vec<u32>,
        absent: &mut Vec<u32>,
    ) {
        let (m0, a0) = (maybe.len(), absent.len());
        maybe.resize(m0 + keys.len(), 0);
        absent.resize(a0 + keys.len(), 0);
        let (mut m, mut a) = (m0, a0);
        for (i, &k) in keys.iter().enumerate() {
            if let Some(&ahead) = keys.get(i + SIFT_AHEAD) {
                crate::prefetch::prefetch(&self.words, self.place(hash_of(ahead)).0);
            }
            let pass = self.may_contain(hash_of(k));
            maybe[m] = k;
            absent[a] = k;
            m += usize::from(pass);
            a += usize::from(!pass);
        }
        maybe.truncate(m);
        absent.truncate(a);
    }

    /// Bytes of memory the filter holds.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::hash_key;

    #[test]
    fn every_key_added_passes_and_few_others_do() {
        let seed = 0x5eed;
        let keys = 100_000u64;
        let mut filter = KeyFilter::with_capacity(keys as usize);
        for k in 0..keys {
            filter.insert(hash_key(format!("key{k}").as_bytes(), seed));
        }
        for k in 0..keys {
            assert!(filter.may_contain(hash_key(format!("key{k}").as_bytes(), seed)));
        }
        let passed = (keys..2 * keys)
            .filter(|k| filter.may_contain(hash_key(format!("key{k}").as_bytes(), seed)))
            .count();
        // 1.2% expected; a broken mix (bits taken from the index's slot bits, say) passes far more.
        assert!(
            passed < keys as usize * 2 / 100,
            "{passed} of {keys} absent keys passed"
        );
        assert!(
            passed > 0,
            "a filter of 10 bits per key passes some absent keys"
        );
        assert_eq!(filter.bytes(), 100_000 * 10 / 64 * 8);
    }

    #[test]
    fn sift_splits_keys_as_may_contain_answers_in_order() {
        let seed = 7;
        let hash = |k: u32| hash_key(format!("key{k}").as_bytes(), seed);
        let mut filter = KeyFilter::with_capacity(1000);
        for k in (0..3000).step_by(3) {
            filter.insert(hash(k));
        }
        // More keys than the prefetch distance, in no particular order, one given twice.
        let keys: Vec<u32> = (0..3000).rev().chain([42, 42]).collect();
        let (mut maybe, mut absent) = (vec![7777], vec![8888]);
        filter.sift(&keys, hash, &mut maybe, &mut absent);
        let expected: (Vec<u32>, Vec<u32>) =
            keys.iter().partition(|&&k| filter.may_contain(hash(k)));
        assert_eq!(maybe[0], 7777, "what was in the lists stays");
        assert_eq!(absent[0], 8888);
        assert_eq!(maybe[1..], expected.0[..]);
        assert_eq!(absent[1..], expected.1[..]);
        assert!(maybe.len() > 1000 && absent.len() > 1900);
    }

    #[test]
    fn an_empty_filter_passes_nothing_and_a_tiny_one_works() {
        let filter = KeyFilter::with_capacity(0);
        assert!(!filter.may_contain(12345));
        let mut one = KeyFilter::with_capacity(1);
        one.insert(42);
        assert!(one.may_contain(42));
    }
}

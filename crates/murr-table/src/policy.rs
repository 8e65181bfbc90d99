//! Which segments to merge: a size-tiered policy over the ordered segment list.
//!
//! Last write wins by segment order, so only adjacent segments can be merged. A segment's level
//! is `floor(log_factor(rows))`. Two rules, applied until neither fires:
//! 1. a segment whose level is below that of its newer neighbour is merged into it, so levels never
//!    rise from older to newer segments;
//! 2. `factor` adjacent segments of one level are merged.
//!
//! Levels then fall from old to new with fewer than `factor` segments per level, so a table of
//! N rows has at most `(factor - 1) * (log_factor(N) + 1)` segments, and a row is rewritten about
//! `log_factor(N)` times over its life, as in Lucene's LogMergePolicy.
//!
//! A merge streams its output a batch at a time, but it keeps its inputs mapped and a key index
//! and a list of surviving rows for the output (a dozen bytes a row), so a merge whose segments
//! together are larger than a cap is never picked (the segments stay as they are; reads probe
//! one more index).

use std::ops::Range;

fn level(rows: u64, factor: u64) -> u32 {
    let mut level = 0;
    let mut r = rows.max(1);
    while r >= factor {
        r /= factor;
        level += 1;
    }
    level
}

/// The range of segments (oldest first, by row count and bytes) to merge next, if any: never
/// one whose segments together take more than `max_bytes`.
pub(crate) fn pick_merge(
    rows: &[u64],
    bytes: &[u64],
    factor: usize,
    max_bytes: u64,
) -> Option<Range<usize>> {
    let factor = factor.max(2);
    let levels: Vec<u32> = rows.iter().map(|&r| level(r, factor as u64)).collect();
    let fits = |r: &Range<usize>| bytes[r.clone()].iter().sum::<u64>() <= max_bytes;
    let inverted = levels
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < w[1])
        .map(|(i, _)| i..i + 2)
        .find(fits);
    if inverted.is_some() {
        return inverted;
    }
    (0..levels.len().saturating_sub(factor - 1))
        .filter(|&s| levels[s..s + factor].iter().all(|&l| l == levels[s]))
        .map(|s| s..s + factor)
        .find(fits)
}

/// The segments to merge when a table has gone idle (`bytes` oldest first): all of them, so
/// reads probe one index, unless the largest segment would be rewritten for comparatively little
/// (the others together below an eighth of it); then only the segments after it, when there are
/// several. Rewriting a large table for every small write that follows it would cost, on object
/// storage, an upload of the whole table each time.
pub(crate) fn pick_idle(bytes: &[u64]) -> Option<Range<usize>> {
    let n = bytes.len();
    if n < 2 {
        return None;
    }
    let (largest, &big) = bytes
        .iter()
        .enumerate()
        .max_by_key(|&(i, b)| (*b, std::cmp::Reverse(i)))?;
    let rest: u64 = bytes.iter().sum::<u64>() - big;
    if rest >= big / 8 {
        return Some(0..n);
    }
    (n - largest > 2).then(|| largest + 1..n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(mut rows: Vec<u64>, factor: usize) -> (Vec<u64>, u64) {
        let mut rewritten = 0;
        while let Some(r) = pick_merge(&rows, &rows, factor, u64::MAX) {
            let merged: u64 = rows[r.clone()].iter().sum();
            rewritten += merged;
            rows.splice(r, [merged]);
        }
        (rows, rewritten)
    }

    #[test]
    fn equal_writes_stay_logarithmic() {
        let mut rows = Vec::new();
        let mut rewritten = 0;
        for _ in 0..10_000 {
            rows.push(100);
            let (r, w) = settle(rows, 4);
            rows = r;
            rewritten += w;
            assert!(rows.len() <= 3 * 8, "{} segments", rows.len());
        }
        // 1M rows written; each rewritten about log_4(10_000) ~ 7 times.
        assert!(rewritten <= 8 * 1_000_000, "{rewritten}");
        assert_eq!(rows.iter().sum::<u64>(), 1_000_000);
    }

    #[test]
    fn mixed_sizes_keep_levels_falling() {
        let mut rows = Vec::new();
        for i in 0..2000u64 {
            rows.push(if i % 2 == 0 { 10_000 } else { 3 + i % 7 });
            rows = settle(rows, 4).0;
            let levels: Vec<u32> = rows.iter().map(|&r| level(r, 4)).collect();
            assert!(levels.windows(2).all(|w| w[0] >= w[1]), "{levels:?}");
            assert!(rows.len() <= 3 * 12, "{}", rows.len());
        }
    }

    #[test]
    fn idle_compaction_spares_a_large_segment_small_writes_follow() {
        assert_eq!(pick_idle(&[]), None);
        assert_eq!(pick_idle(&[10]), None);
        assert_eq!(pick_idle(&[10, 10]), Some(0..2));
        assert_eq!(pick_idle(&[800, 50, 60]), Some(0..3));
        assert_eq!(pick_idle(&[800, 1, 2, 3]), Some(1..4));
        assert_eq!(pick_idle(&[800, 1]), None);
        assert_eq!(pick_idle(&[1, 800, 2, 3]), Some(2..4));
    }

    #[test]
    fn nothing_to_do() {
        let pick = |rows: &[u64]| pick_merge(rows, rows, 4, u64::MAX);
        assert_eq!(pick(&[]), None);
        assert_eq!(pick(&[5]), None);
        assert_eq!(pick(&[1000, 100, 10, 1]), None);
        assert_eq!(pick(&[1, 1, 1, 1]), Some(0..4));
        assert_eq!(pick(&[100, 1, 100]), Some(1..3));
    }

    #[test]
    fn merges_larger_than_the_cap_are_never_picked() {
        // Four equal segments of 3 GB: together above an 8 GB cap.
        let gb = 1u64 << 30;
        assert_eq!(pick_merge(&[100; 4], &[3 * gb; 4], 4, 8 * gb), None);
        assert_eq!(pick_merge(&[100; 4], &[2 * gb; 4], 4, 8 * gb), Some(0..4));
        // An inversion too large to merge is passed over for one that fits.
        assert_eq!(
            pick_merge(&[1, 100, 1, 100], &[9 * gb, 9 * gb, 1, 1], 4, 8 * gb),
            Some(2..4)
        );
    }
}

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

/// The range of segments (oldest first, by row count) to merge next, if any.
pub(crate) fn pick_merge(rows: &[u64], factor: usize) -> Option<Range<usize>> {
    let factor = factor.max(2);
    let levels: Vec<u32> = rows.iter().map(|&r| level(r, factor as u64)).collect();
    if let Some(i) = levels.windows(2).position(|w| w[0] < w[1]) {
        return Some(i..i + 2);
    }
    (0..levels.len().saturating_sub(factor - 1))
        .find(|&s| levels[s..s + factor].iter().all(|&l| l == levels[s]))
        .map(|s| s..s + factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(mut rows: Vec<u64>, factor: usize) -> (Vec<u64>, u64) {
        let mut rewritten = 0;
        while let Some(r) = pick_merge(&rows, factor) {
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
    fn nothing_to_do() {
        assert_eq!(pick_merge(&[], 4), None);
        assert_eq!(pick_merge(&[5], 4), None);
        assert_eq!(pick_merge(&[1000, 100, 10, 1], 4), None);
        assert_eq!(pick_merge(&[1, 1, 1, 1], 4), Some(0..4));
        assert_eq!(pick_merge(&[100, 1, 100], 4), Some(1..3));
    }
}

//! How a segment lays out its columns: the storage kind of each, chosen from the column's values,
//! and where each value sits inside a row.

use crate::DType;
use crate::error::{Error, Result};
use crate::segment::footer::StorageKind;

/// The longest string a row can hold inline (its length is one byte in the row).
pub(crate) const MAX_INLINE: usize = 64;

/// What the encoder knows of a column's values before it lays the segment out; it chooses the
/// column's storage from them (the caller measures, the format decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueStats {
    /// The longest value, in bytes (variable-width types).
    pub max_len: usize,
    /// All values' bytes together (variable-width types).
    pub total_len: usize,
    /// How many values are valid (not null); `usize::MAX` when not counted.
    pub values: usize,
}

impl ValueStats {
    /// Nothing is known of the values: the encoder picks the storage that takes any value.
    pub const UNKNOWN: ValueStats = ValueStats {
        max_len: usize::MAX,
        total_len: usize::MAX,
        values: usize::MAX,
    };
}

/// A fixed-width column is a candidate for sparse storage when at most one row in this many
/// holds a value: a fetch then reads its value from the row's record (one more cache miss per
/// row that has any), so only mostly-null columns are worth it.
pub(crate) const SPARSE_AT_MOST_ONE_IN: usize = 4;

/// The candidates go sparse together when they save at least this many bytes per row: the
/// record's position takes 4 of them in every row.
pub(crate) const SPARSE_MIN_SAVING_PER_ROW: usize = 8;

/// A column as the encoder is asked to lay it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub dtype: DType,
    /// Whether the schema allows nulls.
    pub nullable: bool,
    /// Whether this segment holds a null in it; only such columns get a validity bit.
    pub has_nulls: bool,
    /// Its values' sizes (variable-width types), from which the encoder picks the storage.
    pub stats: ValueStats,
}

/// The storage a column of `rows` values gets: its kind, and for inline strings the slot width.
///
/// Fixed-width types are [`StorageKind::Fixed`]. A string is [`StorageKind::Inline`] when the
/// longest fits [`MAX_INLINE`] and padding every value to the longest wastes at most 12 bytes
/// per row over what offsets and data would take (keys of an ID scheme mostly have one length,
/// and are then always inline): an inline key costs no extra cache miss to compare, as it is in
/// the row the fetch reads anyway. Otherwise [`StorageKind::Var`]. Lists are
/// [`StorageKind::List`]: an embedding of 3 KB in the row would spread every other column's
/// values of a fetch over 48 times the cache lines.
pub(crate) fn choose_storage(dtype: DType, rows: usize, stats: ValueStats) -> (StorageKind, u8) {
    if dtype.fixed_width().is_some() {
        return (StorageKind::Fixed, 0);
    }
    if dtype.list_item().is_some() {
        return (StorageKind::List, 0);
    }
    let fits = stats.max_len <= MAX_INLINE
        && (stats.max_len + 1).saturating_mul(rows)
            <= stats.total_len.saturating_add(rows.saturating_mul(12));
    if fits {
        (
            StorageKind::Inline,
            u8::try_from(stats.max_len).expect("<= MAX_INLINE"),
        )
    } else {
        (StorageKind::Var, 0)
    }
}

/// Whether each column is stored sparse: the nullable fixed-width columns (not the key) with at
/// most one value in [`SPARSE_AT_MOST_ONE_IN`] rows, when together they save at least
/// [`SPARSE_MIN_SAVING_PER_ROW`] bytes per row over dense storage (measured: docs/format.md).
pub(crate) fn choose_sparse(columns: &[ColumnSpec], key: usize, rows: usize) -> Vec<bool> {
    let sparse: Vec<bool> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            i != key
                && c.nullable
                && c.has_nulls
                && c.dtype.fixed_width().is_some()
                && c.stats.values != usize::MAX
                && c.stats.values.saturating_mul(SPARSE_AT_MOST_ONE_IN) <= rows
        })
        .collect();
    let saved: usize = columns
        .iter()
        .zip(&sparse)
        .filter(|(_, s)| **s)
        .map(|(c, _)| c.dtype.fixed_width().unwrap_or(0) * (rows - c.stats.values))
        .sum();
    if rows == 0 || saved < rows.saturating_mul(SPARSE_MIN_SAVING_PER_ROW) {
        return vec![false; columns.len()];
    }
    sparse
}

/// What a row holds besides the columns' values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Column(usize),
    /// The position of the row's sparse record.
    Pointer,
}

/// Where each column sits in a row.
pub(crate) struct RowLayout {
    /// Per column: its storage kind, and its offset in the row (fixed and inline columns).
    pub(crate) kinds: Vec<StorageKind>,
    pub(crate) offsets: Vec<Option<u32>>,
    /// Per inline column: its slot width.
    pub(crate) inline_widths: Vec<u8>,
    pub(crate) null_bits: Vec<Option<u32>>,
    pub(crate) validity_offset: u32,
    pub(crate) row_width: u32,
    /// The sparse columns' validity bits are `sparse_bits.0 .. sparse_bits.1`, widest first.
    pub(crate) sparse_bits: (u32, u32),
    /// Where the row's sparse record's position sits, and its width (when a column is sparse).
    pub(crate) pointer: Option<(u32, u8)>,
}

fn row_offset(at: usize) -> Result<u32> {
    u32::try_from(at).map_err(|_| Error::invalid("row too wide"))
}

impl RowLayout {
    /// The layout of `rows` rows of `columns`.
    pub(crate) fn compute(columns: &[ColumnSpec], key: usize, rows: usize) -> Result<RowLayout> {
        let sparse = choose_sparse(columns, key, rows);
        let chosen: Vec<(StorageKind, u8)> = columns
            .iter()
            .zip(&sparse)
            .map(|(c, &s)| {
                if s {
                    (StorageKind::Sparse, 0)
                } else {
                    choose_storage(c.dtype, rows, c.stats)
                }
            })
            .collect();
        let pointer_width: usize = if !sparse.contains(&true) {
            0
        } else {
            // The records' bytes, at most: 8-byte positions past 4 GiB.
            let bytes: usize = columns
                .iter()
                .zip(&sparse)
                .filter(|(_, s)| **s)
                .map(|(c, _)| c.dtype.fixed_width().unwrap_or(0) * c.stats.values)
                .sum();
            if bytes >= u32::MAX as usize { 8 } else { 4 }
        };
        // Widest values first, so each value is naturally aligned inside the row.
        let mut order: Vec<(usize, Slot)> = (0..columns.len())
            .filter(|&i| chosen[i].0 == StorageKind::Fixed)
            .map(|i| {
                (
                    columns[i].dtype.fixed_width().expect("fixed"),
                    Slot::Column(i),
                )
            })
            .collect();
        if pointer_width > 0 {
            order.push((pointer_width, Slot::Pointer));
        }
        order.sort_by_key(|&(w, _)| std::cmp::Reverse(w));
        let mut offsets = vec![None; columns.len()];
        let mut pointer = None;
        let mut at = 0usize;
        let mut max_align = 1usize;
        for (w, slot) in order {
            let offset = row_offset(at)?;
            match slot {
                Slot::Column(i) => offsets[i] = Some(offset),
                Slot::Pointer => pointer = Some((offset, w as u8)),
            }
            at += w;
            max_align = max_align.max(w);
        }
        // Then inline strings: a length byte and the value, byte-aligned.
        let mut inline_widths = vec![0; columns.len()];
        for (i, &(kind, width)) in chosen.iter().enumerate() {
            if kind == StorageKind::Inline {
                offsets[i] = Some(row_offset(at)?);
                inline_widths[i] = width;
                at += 1 + usize::from(width);
            }
        }
        let validity_offset = at;
        let mut null_bits = vec![None; columns.len()];
        let mut bits = 0u32;
        for (i, c) in columns.iter().enumerate() {
            if c.has_nulls {
                if i == key || !c.nullable {
                    return Err(Error::invalid(format!(
                        "column {:?} holds nulls but is not nullable",
                        c.name
                    )));
                }
                if !sparse[i] {
                    null_bits[i] = Some(bits);
                    bits += 1;
                }
            }
        }
        // The sparse columns' bits come last, widest first: a value's place in its row's record
        // is then the widths of the valid bits before its own, counted per width.
        let sparse_start = bits;
        let mut by_width: Vec<usize> = (0..columns.len()).filter(|&i| sparse[i]).collect();
        by_width.sort_by_key(|&i| std::cmp::Reverse(columns[i].dtype.fixed_width()));
        for i in by_width {
            null_bits[i] = Some(bits);
            bits += 1;
        }
        at += (bits as usize).div_ceil(8);
        let row_width = at.next_multiple_of(max_align);
        Ok(RowLayout {
            kinds: chosen.iter().map(|c| c.0).collect(),
            offsets,
            inline_widths,
            null_bits,
            validity_offset: row_offset(validity_offset)?,
            row_width: row_offset(row_width)?,
            sparse_bits: (sparse_start, bits),
            pointer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(max_len: usize, total_len: usize) -> ValueStats {
        ValueStats {
            max_len,
            total_len,
            values: usize::MAX,
        }
    }

    #[test]
    fn storage_rule() {
        let inline = |rows, s| match choose_storage(DType::Utf8, rows, s) {
            (StorageKind::Inline, w) => Some(w),
            _ => None,
        };
        // One length for every key: inline.
        assert_eq!(inline(1000, stats(11, 11_000)), Some(11));
        // Empty strings fit in a length byte.
        assert_eq!(inline(10, stats(0, 0)), Some(0));
        // Too long for a row.
        assert_eq!(inline(10, stats(65, 650)), None);
        // One long value among short ones would pad every row: sections instead.
        assert_eq!(inline(1000, stats(60, 1000 * 5 + 55)), None);
        // Nothing known: sections, which take anything.
        assert_eq!(inline(10, ValueStats::UNKNOWN), None);
        assert_eq!(
            choose_storage(DType::Int64, 10, ValueStats::UNKNOWN).0,
            StorageKind::Fixed
        );
    }
}

//! Reads: "these columns for these keys" as one Arrow record batch.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::Schema;
use murr_format::DType;
use murr_segment::{Loc, ResolvedRows, Segment, encode_key_arrays, gather_columns};

use super::Table;
use crate::error::{Error, Result};

impl Table {
    /// One row per key, in order: the key's columns as requested, or all nulls for a key that
    /// was never written. Keys are encoded keys (see [`murr_format::KeyCodec`]: for a utf8 key,
    /// its bytes). The output fields are all nullable and in the requested order.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a column the table does not have, or one asked for twice.
    pub fn fetch<K: AsRef<[u8]>, C: AsRef<str>>(
        &self,
        keys: &[K],
        columns: &[C],
    ) -> Result<RecordBatch> {
        self.fetch_rows(keys, columns, false)
            .map(|(_, batch)| batch)
    }

    /// A row for each key found, in order, and the positions of those keys in `keys` (a sparse
    /// answer: a key never written, or expired, has no row; a key given twice has two). The
    /// output fields are all nullable and in the requested order.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming a column the table does not have, or one asked for twice.
    pub fn fetch_found<K: AsRef<[u8]>, C: AsRef<str>>(
        &self,
        keys: &[K],
        columns: &[C],
    ) -> Result<(Vec<u32>, RecordBatch)> {
        self.fetch_rows(keys, columns, true)
    }

    /// [`Table::fetch_found`] for keys given as their key columns, in key order and of the key
    /// columns' types, without nulls (as `murr_api::KeyedFetch::key_arrays` gives them).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the arrays do not match the key, or as [`Table::fetch_found`].
    pub fn fetch_keyed<C: AsRef<str>>(
        &self,
        keys: &[ArrayRef],
        columns: &[C],
    ) -> Result<(Vec<u32>, RecordBatch)> {
        let meta = self.meta();
        let codec = meta.key_codec();
        let rows = keys.first().map_or(0, |a| a.len());
        let fits = keys.len() == codec.columns().len()
            && keys.iter().zip(codec.columns()).all(|(a, (_, d))| {
                a.len() == rows && a.null_count() == 0 && a.data_type() == &d.to_arrow()
            });
        if !fits {
            return Err(Error::invalid(format!(
                "the keys do not match table {:?}'s key columns",
                self.name
            )));
        }
        if codec.is_text() {
            // A utf8 key's bytes are its encoded key: borrowed, no copy.
            let texts = keys[0].as_string::<i32>();
            let encoded: Vec<&[u8]> = texts
                .iter()
                .map(|k| k.unwrap_or_default().as_bytes())
                .collect();
            return self.fetch_found(&encoded, columns);
        }
        let refs: Vec<&ArrayRef> = keys.iter().collect();
        let encoded = encode_key_arrays(codec, &refs, rows);
        let encoded: Vec<&[u8]> = encoded.iter().map(|k| k.unwrap_or_default()).collect();
        self.fetch_found(&encoded, columns)
    }

    fn fetch_rows<K: AsRef<[u8]>, C: AsRef<str>>(
        &self,
        keys: &[K],
        columns: &[C],
        sparse: bool,
    ) -> Result<(Vec<u32>, RecordBatch)> {
        let snap = self.snapshot.load();
        let meta = &snap.meta;
        let mut positions = Vec::with_capacity(columns.len());
        let mut asked = vec![false; meta.schema.columns.len()];
        for c in columns {
            let c = c.as_ref();
            let Some(p) = meta.position(c) else {
                return Err(Error::invalid(format!(
                    "column {c:?} is not in table {:?}",
                    self.name
                )));
            };
            if std::mem::replace(&mut asked[p], true) {
                return Err(Error::invalid(format!(
                    "column {c:?} is asked for twice (an answer has each column once)"
                )));
            }
            positions.push(p);
        }
        let mut locs = locate(&snap.segments, keys, snap.version);
        if let Some(ttl) = meta.schema.ttl {
            // A key's newest row decides: an expired row reads as missing (the older rows of
            // the key were written before it, so they expired too).
            let now = self.config.clock.now();
            for loc in &mut locs {
                if loc.is_found()
                    && self
                        .written(&snap.segments[loc.seg as usize], loc.row as usize)
                        .saturating_add_unsigned(ttl)
                        <= now
                {
                    *loc = Loc::MISSING;
                }
            }
        }
        let mut found = Vec::new();
        let hits = if sparse {
            found = (0..locs.len() as u32)
                .filter(|&k| locs[k as usize].is_found())
                .collect();
            locs.retain(|l| l.is_found());
            locs.len()
        } else {
            locs.iter().filter(|l| l.is_found()).count()
        };
        self.counters.fetched(keys.len(), hits);
        let rows = ResolvedRows::new(&snap.segments, &locs);
        murr_directory::residency::touch_all(rows.row_ptrs());
        let wanted: Vec<(&str, DType)> = positions
            .iter()
            .map(|&p| {
                let d = &meta.schema.columns[p];
                (d.name.as_str(), d.dtype)
            })
            .collect();
        let arrays = gather_columns(&snap.segments, &rows, &wanted)?;
        let schema = Arc::new(Schema::new(
            positions
                .iter()
                .map(|&p| Arc::clone(&meta.answer_fields[p]))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new_with_options(
            schema,
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(locs.len())),
        )
        .map_err(|e| Error::Internal(format!("fetch batch: {e}")))?;
        Ok((found, batch))
    }
}

/// For each encoded key, where its newest row lives: segments are searched newest first, each
/// for the keys not found yet, in one batched lookup.
///
/// `version` is the version of the snapshot `segments` come from: rows that newer writes of
/// that snapshot replaced are skipped unread (their pages may have left memory).
pub(crate) fn locate<K: AsRef<[u8]>>(segments: &[Segment], keys: &[K], version: u64) -> Vec<Loc> {
    let mut locs = vec![Loc::MISSING; keys.len()];
    if segments.is_empty() {
        return locs;
    }
    // Each segment hashes with its own seed: the keys still looked for are hashed again when
    // the seed changes (a compacted table has one segment, so one hash per key).
    let mut hashes = vec![0u64; keys.len()];
    let mut hashed_with = None;
    let mut todo: Vec<u32> = (0..keys.len() as u32).collect();
    for (i, s) in segments.iter().enumerate().rev() {
        if todo.is_empty() {
            break;
        }
        let view = s.view();
        if hashed_with != Some(view.hash_seed()) {
            for &k in &todo {
                hashes[k as usize] = view.hash(keys[k as usize].as_ref());
            }
            hashed_with = Some(view.hash_seed());
        }
        // The keys the segment's filter turns away skip its index (a cache miss each), and
        // join the keys it did not have afterwards.
        let turned_away = s.key_filter().map(|filter| {
            let (mut maybe, mut absent) = (Vec::new(), Vec::new());
            filter.sift(&todo, |k| hashes[k as usize], &mut maybe, &mut absent);
            todo = maybe;
            absent
        });
        let found = |k: u32, row: u32| locs[k as usize] = Loc { seg: i as u32, row };
        match s.shadowed_as_of(version) {
            Some(skip) => view.find_many_skipping(keys, &hashes, &mut todo, skip, found),
            None => view.find_many(keys, &hashes, &mut todo, found),
        }
        if let Some(absent) = turned_away {
            todo = merge_sorted(&todo, &absent);
        }
    }
    locs
}

/// The union of two ascending lists, ascending.
fn merge_sorted(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

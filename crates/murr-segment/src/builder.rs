//! Segments built outside a server: record batches in, one segment file out.

use std::hash::BuildHasher;
use std::io::Write;

use arrow_array::RecordBatch;
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use murr_format::{KeyCodec, TableSchema, index};

use crate::{Error, Input, Result, RowKeys, Written, encode};

/// The most rows a built segment should hold: one more and its key index needs 8-byte slots
/// instead of 4 (twice the index's memory). [`SegmentBuilder::is_full`] says when to cut.
pub const MAX_SEGMENT_ROWS: usize = index::MAX_ROWS_NARROW as usize;

/// Turns record batches of a table's columns into one segment file: what a server writes for
/// a write, built by any program (a batch job with many cores, say) and published to a table
/// later (see `murr_table::publish`).
///
/// The batches must have the schema's Arrow types exactly (`murr_table::TableMeta::normalize`
/// brings other types to them); columns are matched by name and a column they lack is all-null.
/// Within a segment the last row of a key wins, as within one write.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
/// use murr_format::{ColumnDef, DType, TableSchema, Verify};
/// use murr_segment::{Segment, SegmentBuilder};
///
/// let schema = TableSchema::new("id", vec![
///     ColumnDef::new("id", DType::Utf8, false),
///     ColumnDef::new("score", DType::Float32, true),
/// ]);
/// let mut builder = SegmentBuilder::new(&schema)?;
/// builder.push(RecordBatch::try_from_iter(vec![
///     ("id", Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef),
///     ("score", Arc::new(Float32Array::from(vec![0.5, 0.25, 1.0])) as ArrayRef),
/// ])?)?;
/// let mut file = Vec::new();
/// let built = builder.finish(&mut file)?;
/// assert_eq!((built.rows, built.stored), (3, 2));
///
/// // Any program can open what was built: here, from memory.
/// let path = murr_directory::FilePath::new("items.murr")?;
/// let segment = Segment::from_bytes(file.into(), path, Verify::Full)?;
/// assert_eq!(segment.find(b"a"), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SegmentBuilder {
    schema: TableSchema,
    codec: KeyCodec,
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
    written_at: Option<i64>,
}

/// What [`SegmentBuilder::finish`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Rows pushed.
    pub rows: u64,
    /// Rows stored: one per distinct key.
    pub stored: u64,
    /// Bytes of the segment file.
    pub bytes: u64,
}

impl SegmentBuilder {
    /// A builder of segments of a table of `schema`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the schema is not valid.
    pub fn new(schema: &TableSchema) -> Result<SegmentBuilder> {
        schema
            .validate()
            .map_err(|e| Error::Invalid(format!("schema: {e}")))?;
        Ok(SegmentBuilder {
            codec: KeyCodec::new(schema).map_err(|e| Error::Invalid(e.to_string()))?,
            schema: schema.clone(),
            batches: Vec::new(),
            rows: 0,
            bytes: 0,
            written_at: None,
        })
    }

    /// Records the rows as written at `secs` (seconds since the Unix epoch) instead of at the
    /// time of [`SegmentBuilder::finish`]: a table's time to live counts from it.
    #[must_use]
    pub fn written_at(mut self, secs: i64) -> SegmentBuilder {
        self.written_at = Some(secs);
        self
    }

    /// Adds a batch's rows.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the batch lacks a key column, has one of another type, or holds
    /// a null key (the other columns are checked by [`SegmentBuilder::finish`]).
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        RowKeys::check(&self.codec, &batch)?;
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        if batch.num_rows() > 0 {
            self.batches.push(batch);
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Memory the pushed batches take.
    pub fn memory(&self) -> usize {
        self.bytes
    }

    /// Whether the segment holds [`MAX_SEGMENT_ROWS`]: finish it and start another.
    pub fn is_full(&self) -> bool {
        self.rows >= MAX_SEGMENT_ROWS
    }

    /// Writes the segment into `out`: the last row of each key, indexed and checksummed.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a column has another type than the schema's, a non-nullable
    /// column holds a null, or there are no rows; errors of `out`.
    pub fn finish(self, out: &mut impl Write) -> Result<Built> {
        if self.rows == 0 {
            return Err(Error::Invalid("a segment needs at least one row".into()));
        }
        if u32::try_from(self.rows).is_err() {
            return Err(Error::Invalid(format!(
                "{} rows pushed: a segment holds at most {}",
                self.rows,
                u32::MAX - 1
            )));
        }
        let keys = self
            .batches
            .iter()
            .map(|b| RowKeys::new(&self.codec, b))
            .collect::<Result<Vec<_>>>()?;
        let selections = last_of_each_key(&keys);
        let at = self.written_at.unwrap_or_else(now);
        let inputs: Vec<Input<'_>> = self
            .batches
            .iter()
            .zip(&selections)
            .map(|(batch, row_ids)| Input {
                batch,
                row_ids,
                written: Written::At(at),
            })
            .collect();
        let bytes = encode(&self.schema, &inputs, out)?;
        Ok(Built {
            rows: self.rows as u64,
            stored: selections.iter().map(|s| s.len() as u64).sum(),
            bytes,
        })
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The rows to keep of each batch, in order: the last row of every key over all of them (a
/// later batch's row wins over an earlier one's).
///
/// The table holds row numbers (4 bytes a row, hashed once), not keys: a 1M-row write's takes
/// 10 MB where a map from key slices to positions took 50.
fn last_of_each_key(batches: &[RowKeys<'_>]) -> Vec<Vec<u32>> {
    let mut starts = Vec::with_capacity(batches.len());
    let mut total = 0usize;
    for keys in batches {
        starts.push(total);
        total += keys.len();
    }
    let key = |row: u32| {
        let b = starts.partition_point(|&s| s <= row as usize) - 1;
        batches[b].get(row as usize - starts[b])
    };
    let hasher = DefaultHashBuilder::default();
    let mut last: HashTable<u32> = HashTable::with_capacity(total);
    let mut repeats = false;
    let mut row = 0u32;
    for keys in batches {
        for r in 0..keys.len() {
            let k = keys.get(r);
            match last.entry(
                hasher.hash_one(k),
                |&other| key(other) == k,
                |&other| hasher.hash_one(key(other)),
            ) {
                Entry::Occupied(mut e) => {
                    *e.get_mut() = row;
                    repeats = true;
                }
                Entry::Vacant(e) => {
                    e.insert(row);
                }
            }
            row += 1;
        }
    }
    let mut kept = vec![!repeats; total];
    if repeats {
        for &r in &last {
            kept[r as usize] = true;
        }
    }
    drop(last);
    batches
        .iter()
        .zip(&starts)
        .map(|(keys, &start)| {
            (0..keys.len() as u32)
                .filter(|&r| kept[start + r as usize])
                .collect()
        })
        .collect()
}

//! Record batches into a segment file.

use std::io::Write;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, BinaryType, ByteArrayType, Utf8Type};
use arrow_array::{Array, ArrayRef, BinaryArray, GenericByteArray, RecordBatch, StringArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;
use murr_format::{
    ColumnSpec, ColumnView, DType, ENCODED_KEY_COLUMN, KeyCodec, KeyPart, Native, SegmentEncoder,
    StorageKind, TableSchema, ValueStats, WriteTimes, key_put,
};

use crate::{Error, Loc, Result, Segment, downcast_dtype};

/// The encoded key (see [`KeyCodec`]) of each row of a batch that has the table's columns and
/// types: what the write path deduplicates on and the index stores. A one-column utf8 key
/// borrows the batch's column; any other key is encoded once, into a binary array.
#[derive(Debug, Clone)]
pub enum RowKeys<'a> {
    /// The key column's values are the encoded keys.
    Text(&'a StringArray),
    /// Encoded keys built from the key columns.
    Encoded(BinaryArray),
}

impl<'a> RowKeys<'a> {
    /// The keys of `batch`'s rows.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the batch lacks a key column, one has another type, or holds a
    /// null.
    pub fn new(codec: &KeyCodec, batch: &'a RecordBatch) -> Result<RowKeys<'a>> {
        let arrays = key_arrays(codec, batch)?;
        if codec.is_text() {
            return Ok(RowKeys::Text(arrays[0].as_string::<i32>()));
        }
        Ok(RowKeys::Encoded(encode_key_arrays(
            codec,
            &arrays,
            batch.num_rows(),
        )))
    }

    /// Checks what [`RowKeys::new`] checks, without encoding the keys.
    ///
    /// # Errors
    /// As [`RowKeys::new`].
    pub fn check(codec: &KeyCodec, batch: &RecordBatch) -> Result<()> {
        key_arrays(codec, batch).map(drop)
    }

    /// The encoded key of row `row`.
    #[inline]
    pub fn get(&self, row: usize) -> &[u8] {
        match self {
            RowKeys::Text(values) => values.value(row).as_bytes(),
            RowKeys::Encoded(values) => values.value(row),
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            RowKeys::Text(values) => values.len(),
            RowKeys::Encoded(values) => values.len(),
        }
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The key columns of `batch`, in key order, checked: present, of the codec's types, without
/// nulls.
fn key_arrays<'a>(codec: &KeyCodec, batch: &'a RecordBatch) -> Result<Vec<&'a ArrayRef>> {
    let arrays = codec
        .columns()
        .map(|(name, dtype)| {
            batch
                .column_by_name(name)
                .filter(|a| a.data_type() == &dtype.to_arrow())
                .ok_or_else(|| {
                    Error::Invalid(format!("key column {name:?} is missing or not {dtype}"))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(((name, _), _)) = codec
        .columns()
        .zip(&arrays)
        .find(|(_, a)| a.null_count() > 0)
    {
        return Err(Error::Invalid(format!("key column {name:?} holds a null")));
    }
    Ok(arrays)
}

/// The encoded keys of `rows` rows whose key columns (in key order, of the codec's types, without
/// nulls) are `arrays`.
///
/// # Panics
/// When an array is shorter than `rows` or not of its column's type.
pub fn encode_key_arrays(codec: &KeyCodec, arrays: &[&ArrayRef], rows: usize) -> BinaryArray {
    let last = arrays.len() - 1;
    let mut offsets: Vec<i32> = Vec::with_capacity(rows + 1);
    let mut data: Vec<u8> = Vec::with_capacity(rows * 4 * arrays.len());
    offsets.push(0);
    // Column by column would be faster, but keys are short: row by row keeps one buffer.
    let parts: Vec<KeyPart> = (0..arrays.len()).map(|i| codec.part(i)).collect();
    for row in 0..rows {
        for (i, (array, part)) in arrays.iter().zip(&parts).enumerate() {
            match part {
                KeyPart::Utf8 => key_put::utf8(
                    &mut data,
                    array.as_string::<i32>().value(row).as_bytes(),
                    i == last,
                ),
                KeyPart::Signed => key_put::signed(&mut data, signed_at(array, row)),
                KeyPart::Unsigned => key_put::unsigned(&mut data, unsigned_at(array, row)),
            }
        }
        offsets.push(i32::try_from(data.len()).expect("encoded keys of a batch fit 2 GiB"));
    }
    BinaryArray::new(
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(data),
        None,
    )
}

fn signed_at(array: &ArrayRef, row: usize) -> i64 {
    use arrow_array::types::{Int8Type, Int16Type, Int32Type, Int64Type};
    match array.data_type() {
        DataType::Int8 => i64::from(array.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row),
        other => panic!("a signed key column is {other}"),
    }
}

fn unsigned_at(array: &ArrayRef, row: usize) -> u64 {
    use arrow_array::types::{UInt8Type, UInt16Type, UInt32Type, UInt64Type};
    match array.data_type() {
        DataType::UInt8 => u64::from(array.as_primitive::<UInt8Type>().value(row)),
        DataType::UInt16 => u64::from(array.as_primitive::<UInt16Type>().value(row)),
        DataType::UInt32 => u64::from(array.as_primitive::<UInt32Type>().value(row)),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row),
        other => panic!("an unsigned key column is {other}"),
    }
}

/// Rows of one record batch to put into a segment, in this order.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The batch. Its columns are matched to the schema by name and must have the schema's
    /// exact Arrow types; a column it lacks is all-null.
    pub batch: &'a RecordBatch,
    /// Positions of the rows to take. Their keys must be distinct across all inputs.
    pub row_ids: &'a [u32],
    /// When the batch's rows were written.
    pub written: Written<'a>,
}

/// When rows were written, in whole seconds since the Unix epoch.
#[derive(Debug, Clone, Copy)]
pub enum Written<'a> {
    /// Every row at this time (a write).
    At(i64),
    /// Each row of the batch at its own time, by position in the batch (a merge).
    Each(&'a [i64]),
}

impl Written<'_> {
    fn of(&self, row: u32) -> i64 {
        match self {
            Written::At(t) => *t,
            Written::Each(times) => times[row as usize],
        }
    }
}

/// Encodes the selected rows as one segment into `out`; returns the bytes written.
///
/// A column with no value in the selected rows is left out of the segment (it reads as nulls,
/// and costs nothing); mostly-null fixed-width columns are stored sparse (the format decides,
/// from the counts given here).
///
/// # Errors
/// [`Error::Invalid`] when a column has the wrong type, a key repeats, or a non-nullable column
/// holds a null; [`Error::Format`] when writing fails.
pub fn encode(schema: &TableSchema, inputs: &[Input<'_>], out: &mut impl Write) -> Result<u64> {
    let codec = KeyCodec::new(schema).map_err(invalid)?;
    let keys = encoded_keys(&codec, inputs)?;
    let mut counts = Counts::new(schema);
    counts.add(schema, inputs, &keys)?;
    let plan = Plan::new(schema, &codec, &counts)?;
    // The rows go out a window at a time, as a merge's do: the encoder holds one window's rows,
    // not the whole segment's (which would double a write's memory beside its batches).
    let mut enc = SegmentEncoder::streaming(
        plan.specs.clone(),
        plan.key,
        counts.total,
        plan.times,
        MAX_CHUNK_ROWS,
    )
    .map_err(invalid)?
    .with_hash_seed(random_seed(counts.total));
    let key_of = SelectedKeys::new(&codec, inputs, &keys)?;
    let window = enc.window();
    let mut pieces: Vec<Input<'_>> = Vec::new();
    let mut piece_keys: Vec<ArrayRef> = Vec::new();
    let mut filled = 0usize;
    for (i, input) in inputs.iter().enumerate() {
        let mut part = input.row_ids;
        while !part.is_empty() {
            let (now, rest) = part.split_at(part.len().min(window - filled));
            pieces.push(Input {
                row_ids: now,
                ..*input
            });
            if let Some(k) = keys.get(i) {
                piece_keys.push(Arc::clone(k));
            }
            filled += now.len();
            part = rest;
            if filled == window {
                plan.fill(&mut enc, schema, &pieces, &piece_keys)?;
                enc.flush_rows_resolving(out, filled, |row| key_of.get(row))
                    .map_err(invalid)?;
                (filled, pieces, piece_keys) = (0, Vec::new(), Vec::new());
            }
        }
    }
    if filled > 0 {
        plan.fill(&mut enc, schema, &pieces, &piece_keys)?;
        enc.flush_rows_resolving(out, filled, |row| key_of.get(row))
            .map_err(invalid)?;
    }
    enc.finish(out).map_err(invalid)
}

/// The key of each selected row of [`encode`]'s inputs, by its row number in the segment: the
/// encoder asks for those of rows already written out to refuse a key that repeats.
struct SelectedKeys<'a> {
    inputs: &'a [Input<'a>],
    /// Per input, the segment's row number of its first selected row.
    starts: Vec<u64>,
    /// Per input, its keys as stored.
    keys: Vec<RowKeys<'a>>,
}

impl<'a> SelectedKeys<'a> {
    /// `encoded` as [`encoded_keys`] gave them (empty for a utf8 key, read from the batches).
    fn new(codec: &KeyCodec, inputs: &'a [Input<'a>], encoded: &[ArrayRef]) -> Result<Self> {
        let mut starts = Vec::with_capacity(inputs.len());
        let mut at = 0u64;
        for input in inputs {
            starts.push(at);
            at += input.row_ids.len() as u64;
        }
        let keys = if codec.is_text() {
            inputs
                .iter()
                .map(|i| RowKeys::new(codec, i.batch))
                .collect::<Result<_>>()?
        } else {
            encoded
                .iter()
                .map(|a| RowKeys::Encoded(a.as_binary::<i32>().clone()))
                .collect()
        };
        Ok(SelectedKeys {
            inputs,
            starts,
            keys,
        })
    }

    fn get(&self, row: u64) -> Option<&[u8]> {
        let i = self.starts.partition_point(|&s| s <= row).checked_sub(1)?;
        let input = self.inputs.get(i)?;
        let r = *input
            .row_ids
            .get(usize::try_from(row - self.starts[i]).ok()?)?;
        Some(self.keys.get(i)?.get(r as usize))
    }
}

/// Rows read for [`encode_merge`]: a batch of the table's columns (every row of it is taken)
/// and each row's write time.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// The rows.
    pub batch: RecordBatch,
    /// When each row was written, seconds since the Unix epoch.
    pub written: Vec<i64>,
}

/// Encodes the rows `locs` of `segments` (stored with the table's columns), in order, as one
/// segment into `out` (a merge); returns the bytes written. `counts` says what the rows hold
/// (which decides each column's storage): take it from [`Counts::of_rows`]. The rows go in
/// `chunks` (ranges of positions in `locs`, at most [`MAX_CHUNK_ROWS`] each; `locs` is read a
/// chunk at a time, so it need not be held whole), each written out before the
/// next is read: memory is one chunk's rows, the key index and the sections written after the
/// rows (variable-width values, lists, sparse records), not the whole segment's rows, as
/// [`encode`] takes. The keys must be distinct (a merge's are; this is not checked across
/// chunks). A chunk
/// whose rows all come from one segment stored as the new one will be (segments written alike,
/// the common case) is copied row by row as it is; any other chunk is read into arrays by
/// `gather` and encoded.
///
/// # Errors
/// As [`encode`]; [`Error::Invalid`] when the chunks do not cover `locs` in order or hold other
/// rows than `counts` counted; those of `gather`.
#[allow(clippy::too_many_arguments, reason = "a merge's inputs, each needed")]
pub fn encode_merge(
    schema: &TableSchema,
    counts: &Counts,
    segments: &[Segment],
    locs: impl IntoIterator<Item = Loc>,
    chunks: &[std::ops::Range<usize>],
    written: impl Fn(Loc) -> i64,
    mut gather: impl FnMut(&[Loc]) -> Result<Chunk>,
    out: &mut impl Write,
) -> Result<u64> {
    let codec = KeyCodec::new(schema).map_err(invalid)?;
    let plan = Plan::new(schema, &codec, counts)?;
    let mut locs = locs.into_iter();
    let mut enc = SegmentEncoder::streaming(
        plan.specs.clone(),
        plan.key,
        counts.total,
        plan.times,
        MAX_CHUNK_ROWS.min(counts.total),
    )
    .map_err(invalid)?
    .with_hash_seed(random_seed(counts.total));
    let same: Vec<bool> = segments.iter().map(|s| enc.same_rows(s.view())).collect();
    let mut done = 0usize;
    let mut part: Vec<Loc> = Vec::new();
    for (i, range) in chunks.iter().enumerate() {
        if range.start != done || range.len() > enc.window() {
            return Err(Error::Invalid(format!(
                "chunk {i} ({range:?}) does not follow the last or is larger than {}",
                enc.window()
            )));
        }
        part.clear();
        part.extend(locs.by_ref().take(range.len()));
        if part.len() != range.len() || range.end > counts.total {
            return Err(Error::Invalid(format!(
                "chunk {i} ({range:?}) is past the {} rows to merge ({} counted)",
                done + part.len(),
                counts.total
            )));
        }
        let part = part.as_slice();
        done = range.end;
        let one = part.first().map(|l| l.seg);
        let copy = one.is_some_and(|s| same[s as usize] && part.iter().all(|l| l.seg == s));
        if copy {
            let seg = &segments[one.unwrap_or_default() as usize];
            let rows: Vec<u32> = part.iter().map(|l| l.row).collect();
            enc.copy_rows(seg.view(), &rows);
            if plan.times.min != plan.times.max {
                for (at, &loc) in part.iter().enumerate() {
                    enc.set_written(at, written(loc));
                }
            }
        } else {
            let c = gather(part)?;
            if c.batch.num_rows() != part.len() {
                return Err(Error::Invalid(format!(
                    "chunk {i}: {} rows read for {}",
                    c.batch.num_rows(),
                    part.len()
                )));
            }
            let ids = row_ids(&c);
            let inputs = [Input {
                batch: &c.batch,
                row_ids: &ids,
                written: Written::Each(&c.written),
            }];
            let keys = encoded_keys(&codec, &inputs)?;
            plan.fill(&mut enc, schema, &inputs, &keys)?;
        }
        enc.flush_rows(out, part.len()).map_err(invalid)?;
    }
    let left = locs.count();
    if done != counts.total || left > 0 {
        return Err(Error::Invalid(format!(
            "the chunks cover {done} of {} rows ({} counted)",
            done + left,
            counts.total
        )));
    }
    enc.finish(out).map_err(invalid)
}

/// The most rows a chunk of [`encode_merge`] may hold.
pub const MAX_CHUNK_ROWS: usize = 1 << 16;

fn row_ids(c: &Chunk) -> Vec<u32> {
    (0..c.batch.num_rows() as u32).collect()
}

/// A random seed per segment: nobody can choose keys that collide in its index.
fn random_seed(rows: usize) -> u64 {
    std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), rows)
}

/// Each input's encoded keys, when the key is not one utf8 column (which the segment stores as
/// it is); empty otherwise.
fn encoded_keys(codec: &KeyCodec, inputs: &[Input<'_>]) -> Result<Vec<ArrayRef>> {
    if codec.is_text() {
        return Ok(Vec::new());
    }
    inputs
        .iter()
        .map(|i| match RowKeys::new(codec, i.batch)? {
            RowKeys::Encoded(a) => Ok(Arc::new(a) as ArrayRef),
            RowKeys::Text(_) => unreachable!("not a text key"),
        })
        .collect()
}

/// What the rows of a segment to encode hold: per column, the valid values and the byte
/// lengths of strings, and the rows' write times. It decides each column's storage.
#[derive(Debug, Clone)]
pub struct Counts {
    total: usize,
    /// Per schema column: the valid values, and the byte lengths of utf8 and binary ones.
    values: Vec<usize>,
    bytes: Vec<ValueStats>,
    /// The byte lengths of the encoded keys (a key that is not one utf8 column).
    key_bytes: ValueStats,
    /// The earliest and the latest write time.
    times: Option<(i64, i64)>,
}

impl Counts {
    /// Counts rows `locs` of `segments` (stored with the table's columns and types) from the
    /// stored rows, without reading them into arrays: validity bits, and string lengths;
    /// `written` gives each row's write time.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the schema has no valid key, or a segment of a table whose key is
    /// not one utf8 column lacks its encoded keys.
    pub fn of_rows(
        schema: &TableSchema,
        segments: &[Segment],
        locs: impl Iterator<Item = Loc> + Clone,
        written: impl Fn(Loc) -> i64,
    ) -> Result<Counts> {
        let codec = KeyCodec::new(schema).map_err(invalid)?;
        let mut counts = Counts::new(schema);
        // Rows taken from each segment: a column without nulls there has a value in each.
        let mut taken = vec![0usize; segments.len()];
        for loc in locs.clone() {
            taken[loc.seg as usize] += 1;
        }
        counts.total = taken.iter().sum();
        // Per segment, the columns to look at row by row: those with nulls, and strings.
        let mut per_row: Vec<Vec<(usize, ColumnView<'_>, bool)>> = Vec::new();
        let mut keys: Vec<Option<ColumnView<'_>>> = Vec::new();
        for (s, seg) in segments.iter().enumerate() {
            let view = seg.view();
            let mut cols = Vec::new();
            for (c, column) in schema.columns.iter().enumerate() {
                let Some(p) = view.column_position(&column.name) else {
                    continue; // all null in this segment
                };
                let col = view.column(p);
                let lengths = matches!(column.dtype, DType::Utf8 | DType::Binary);
                if col.has_nulls() || lengths {
                    cols.push((c, col, lengths));
                } else {
                    counts.values[c] += taken[s];
                }
            }
            per_row.push(cols);
            keys.push(if codec.is_text() {
                None
            } else {
                let p = view.column_position(ENCODED_KEY_COLUMN).ok_or_else(|| {
                    Error::Invalid(format!("segment {} lacks its encoded keys", seg.path()))
                })?;
                Some(view.column(p))
            });
        }
        for loc in locs {
            let s = loc.seg as usize;
            let r = loc.row as usize;
            let row = segments[s].view().row(r);
            for (c, col, lengths) in &per_row[s] {
                if !col.is_valid(row) {
                    continue;
                }
                counts.values[*c] += 1;
                if *lengths {
                    add_length(&mut counts.bytes[*c], col.bytes(r, row).len());
                }
            }
            if let Some(k) = &keys[s] {
                add_length(&mut counts.key_bytes, k.bytes(r, row).len());
            }
            counts.saw_time(written(loc));
        }
        Ok(counts)
    }

    fn new(schema: &TableSchema) -> Counts {
        // Byte strings' lengths are measured (none yet); other columns' are not needed.
        let none = ValueStats {
            max_len: 0,
            total_len: 0,
            values: usize::MAX,
        };
        Counts {
            total: 0,
            values: vec![0; schema.columns.len()],
            bytes: schema
                .columns
                .iter()
                .map(|c| match c.dtype {
                    DType::Utf8 | DType::Binary => none,
                    _ => ValueStats::UNKNOWN,
                })
                .collect(),
            key_bytes: none,
            times: None,
        }
    }

    fn add(&mut self, schema: &TableSchema, inputs: &[Input<'_>], keys: &[ArrayRef]) -> Result<()> {
        self.total += inputs.iter().map(|i| i.row_ids.len()).sum::<usize>();
        for (c, column) in schema.columns.iter().enumerate() {
            let per_input: Vec<Option<&ArrayRef>> = inputs
                .iter()
                .map(|i| column_of(i.batch, c, &column.name))
                .collect();
            for (input, array) in inputs.iter().zip(&per_input) {
                if let Some(a) = array {
                    if a.data_type() != &column.dtype.to_arrow() {
                        return Err(Error::Invalid(format!(
                            "column {:?} is {}, expected {}",
                            column.name,
                            a.data_type(),
                            column.dtype.to_arrow()
                        )));
                    }
                    self.values[c] += if a.null_count() == 0 {
                        input.row_ids.len()
                    } else {
                        input
                            .row_ids
                            .iter()
                            .filter(|&&r| a.is_valid(r as usize))
                            .count()
                    };
                }
            }
            let stats = match column.dtype {
                DType::Utf8 => byte_lengths::<Utf8Type>(inputs, &per_input),
                DType::Binary => byte_lengths::<BinaryType>(inputs, &per_input),
                _ => continue,
            };
            add_lengths(&mut self.bytes[c], stats);
        }
        if !keys.is_empty() {
            let per_input: Vec<Option<&ArrayRef>> = keys.iter().map(Some).collect();
            add_lengths(
                &mut self.key_bytes,
                byte_lengths::<BinaryType>(inputs, &per_input),
            );
        }
        for t in inputs
            .iter()
            .flat_map(|i| i.row_ids.iter().map(|&r| i.written.of(r)))
        {
            self.saw_time(t);
        }
        Ok(())
    }

    /// Widens the write times seen to take in `t`.
    fn saw_time(&mut self, t: i64) {
        self.times = Some(match self.times {
            None => (t, t),
            Some((min, max)) => (min.min(t), max.max(t)),
        });
    }
}

/// Adds one value's byte length to `into`.
fn add_length(into: &mut ValueStats, len: usize) {
    into.max_len = into.max_len.max(len);
    into.total_len += len;
}

/// Adds measured byte lengths to `into`.
fn add_lengths(into: &mut ValueStats, add: ValueStats) {
    into.max_len = into.max_len.max(add.max_len);
    into.total_len += add.total_len;
}

/// The segment's columns, decided from a [`Counts`].
struct Plan {
    specs: Vec<ColumnSpec>,
    /// Schema positions of the columns the segment stores, in spec order.
    stored: Vec<usize>,
    /// The spec position of the column holding the encoded keys.
    key: usize,
    /// Whether the key is the one utf8 column, stored as it is.
    text_key: bool,
    times: WriteTimes,
}

impl Plan {
    fn new(schema: &TableSchema, codec: &KeyCodec, counts: &Counts) -> Result<Plan> {
        let total = counts.total;
        // A one-column utf8 key is the segment's key column; any other key is encoded into an
        // extra binary column, after the table's.
        let text_key = codec.is_text().then(|| schema.key_positions()[0]);
        let mut specs = Vec::with_capacity(schema.columns.len());
        let mut stored = Vec::with_capacity(schema.columns.len());
        for (c, column) in schema.columns.iter().enumerate() {
            let values = counts.values[c];
            let has_nulls = values < total;
            if has_nulls && !column.nullable {
                return Err(Error::Invalid(format!(
                    "column {:?} is not nullable but holds a null",
                    column.name
                )));
            }
            if values == 0 && total > 0 && Some(c) != text_key {
                continue; // all null: not stored
            }
            let mut stats = counts.bytes[c];
            stats.values = values;
            specs.push(ColumnSpec {
                name: column.name.clone(),
                dtype: column.dtype,
                nullable: column.nullable,
                has_nulls,
                stats,
            });
            stored.push(c);
        }
        let key = match text_key {
            Some(key) => stored
                .iter()
                .position(|&c| c == key)
                .expect("the key column is always stored"),
            None => {
                let mut stats = counts.key_bytes;
                stats.values = total;
                specs.push(ColumnSpec {
                    name: ENCODED_KEY_COLUMN.to_owned(),
                    dtype: DType::Binary,
                    nullable: false,
                    has_nulls: false,
                    stats,
                });
                specs.len() - 1
            }
        };
        let times = match counts.times {
            Some((min, max)) => WriteTimes::between(min, max),
            None => WriteTimes::at(0),
        };
        Ok(Plan {
            specs,
            stored,
            key,
            text_key: text_key.is_some(),
            times,
        })
    }

    /// Puts the inputs' rows into the encoder's window, from its first row on.
    fn fill(
        &self,
        enc: &mut SegmentEncoder,
        schema: &TableSchema,
        inputs: &[Input<'_>],
        keys: &[ArrayRef],
    ) -> Result<()> {
        if self.times.min != self.times.max {
            let mut row = 0usize;
            for input in inputs {
                for &r in input.row_ids {
                    enc.set_written(row, input.written.of(r));
                    row += 1;
                }
            }
        }
        if !self.text_key {
            let per_input: Vec<Option<&ArrayRef>> = keys.iter().map(Some).collect();
            fill_bytes::<BinaryType>(enc, self.key, inputs, &per_input);
        }
        for (c, &at) in self.stored.iter().enumerate() {
            let column = &schema.columns[at];
            let arrays: Vec<Option<&ArrayRef>> = inputs
                .iter()
                .map(|i| column_of(i.batch, at, &column.name))
                .collect();
            let arrays = &arrays;
            downcast_dtype!(column.dtype,
                |T| fill_fixed::<T>(enc, c, inputs, arrays),
                utf8 => fill_bytes::<Utf8Type>(enc, c, inputs, arrays),
                binary => fill_bytes::<BinaryType>(enc, c, inputs, arrays),
                bool => fill_bool(enc, c, inputs, arrays),
                list => fill_list(enc, c, column.dtype, inputs, arrays),
                other(d) => return Err(Error::Invalid(format!("dtype {d} cannot be stored yet"))),
            );
        }
        Ok(())
    }
}

/// Column `name` of `batch`, expected at position `at` (batches of the table's own schema, as
/// the write path and merges pass them, hold it there: no search, so wide tables cost O(C)).
fn column_of<'a>(batch: &'a RecordBatch, at: usize, name: &str) -> Option<&'a ArrayRef> {
    let schema = batch.schema_ref();
    match schema.fields().get(at) {
        Some(f) if f.name() == name => Some(batch.column(at)),
        _ => batch.column_by_name(name),
    }
}

/// The longest and the total byte length of the selected values of a utf8 or binary column
/// (types were checked by the caller; a column of another type counts as empty).
fn byte_lengths<T: ByteArrayType<Offset = i32>>(
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
) -> ValueStats {
    let (mut max_len, mut total_len) = (0usize, 0usize);
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array.and_then(|a| a.as_bytes_opt::<T>()) else {
            continue;
        };
        let offsets = array.value_offsets();
        for &r in input.row_ids {
            let len = (offsets[r as usize + 1] - offsets[r as usize]) as usize;
            max_len = max_len.max(len);
            total_len += len;
        }
    }
    ValueStats {
        max_len,
        total_len,
        values: usize::MAX,
    }
}

fn invalid(e: murr_format::Error) -> Error {
    match e {
        murr_format::Error::Invalid { reason } => Error::Invalid(reason),
        other => Error::Format {
            path: "(being written)".to_owned(),
            source: other,
        },
    }
}

fn fill_fixed<T>(
    enc: &mut SegmentEncoder,
    column: usize,
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
) where
    T: ArrowPrimitiveType,
    T::Native: Native,
{
    let w = <T::Native as Native>::WIDTH;
    if enc.storage_kind(column) == StorageKind::Sparse {
        let mut buf = [0u8; 8];
        for_valid(inputs, arrays, |row, array, r| {
            let array = array.as_primitive::<T>();
            array.value(r).write_le(&mut buf[..w]);
            enc.push_sparse(column, row, &buf[..w]);
        });
        return;
    }
    let width = enc.row_width();
    let offset = enc.fixed_offset(column).expect("fixed-width column");
    let mut row = 0usize;
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array else {
            row += input.row_ids.len();
            continue;
        };
        let array = array.as_primitive::<T>();
        let values = array.values();
        if array.null_count() == 0 {
            let first = row;
            let block = enc.rows_mut();
            for &r in input.row_ids {
                let at = row * width + offset;
                values[r as usize].write_le(&mut block[at..at + w]);
                row += 1;
            }
            // Other inputs may hold nulls, giving the column a validity bit: mark these valid.
            for valid in first..row {
                enc.set_valid(column, valid);
            }
        } else {
            for &r in input.row_ids {
                if array.is_valid(r as usize) {
                    let at = row * width + offset;
                    values[r as usize].write_le(&mut enc.rows_mut()[at..at + w]);
                    enc.set_valid(column, row);
                }
                row += 1;
            }
        }
    }
}

/// Calls `f(row, array, r)` for every selected row `r` of an input (`row` is its row in the
/// segment) whose value is valid.
fn for_valid(
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
    mut f: impl FnMut(usize, &ArrayRef, usize),
) {
    let mut row = 0usize;
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array else {
            row += input.row_ids.len();
            continue;
        };
        for &r in input.row_ids {
            if array.is_valid(r as usize) {
                f(row, array, r as usize);
            }
            row += 1;
        }
    }
}

fn fill_bool(
    enc: &mut SegmentEncoder,
    column: usize,
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
) {
    if enc.storage_kind(column) == StorageKind::Sparse {
        for_valid(inputs, arrays, |row, array, r| {
            let v = u8::from(array.as_boolean().value(r));
            enc.push_sparse(column, row, &[v]);
        });
        return;
    }
    let width = enc.row_width();
    let offset = enc.fixed_offset(column).expect("fixed-width column");
    let mut row = 0usize;
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array else {
            row += input.row_ids.len();
            continue;
        };
        let array = array.as_boolean();
        for &r in input.row_ids {
            if array.is_valid(r as usize) {
                enc.rows_mut()[row * width + offset] = u8::from(array.value(r as usize));
                enc.set_valid(column, row);
            }
            row += 1;
        }
    }
}

fn fill_bytes<T: ByteArrayType<Offset = i32>>(
    enc: &mut SegmentEncoder,
    column: usize,
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
) {
    let mut row = 0usize;
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array else {
            for _ in input.row_ids {
                enc.push_var(column, None);
            }
            row += input.row_ids.len();
            continue;
        };
        let array: &GenericByteArray<T> = array.as_bytes::<T>();
        enc.reserve_var(
            column,
            array.value_data().len().min(input.row_ids.len() * 64),
        );
        for &r in input.row_ids {
            if array.is_valid(r as usize) {
                let value: &[u8] = array.value(r as usize).as_ref();
                enc.push_var(column, Some(value));
                enc.set_valid(column, row);
            } else {
                enc.push_var(column, None);
            }
            row += 1;
        }
    }
}

/// The items of list `r` of a list or fixed-size list array: the child array and the range.
fn list_range(array: &dyn Array, r: usize) -> (usize, usize) {
    if let Some(list) = array.as_list_opt::<i32>() {
        let o = list.value_offsets();
        (o[r] as usize, o[r + 1] as usize)
    } else {
        let list = array.as_fixed_size_list();
        let n = list.value_length() as usize;
        (r * n, r * n + n)
    }
}

fn list_items(array: &dyn Array) -> &ArrayRef {
    match array.as_list_opt::<i32>() {
        Some(list) => list.values(),
        None => array.as_fixed_size_list().values(),
    }
}

fn fill_list(
    enc: &mut SegmentEncoder,
    column: usize,
    dtype: DType,
    inputs: &[Input<'_>],
    arrays: &[Option<&ArrayRef>],
) {
    let (item, _) = dtype.list_item().expect("a list dtype");
    for (input, array) in inputs.iter().zip(arrays) {
        let Some(array) = array else {
            for _ in input.row_ids {
                enc.end_list(column, false);
            }
            continue;
        };
        let items = list_items(array.as_ref());
        if let Some(width) = item.fixed_width() {
            let selected: usize = input
                .row_ids
                .iter()
                .map(|&r| {
                    let (a, b) = list_range(array.as_ref(), r as usize);
                    b - a
                })
                .sum();
            enc.reserve_var(column, selected * width);
        }
        for &r in input.row_ids {
            let r = r as usize;
            if array.is_null(r) {
                enc.end_list(column, false);
                continue;
            }
            let (a, b) = list_range(array.as_ref(), r);
            downcast_dtype!(item,
                |T| push_fixed_items::<T>(enc, column, items, a, b),
                utf8 => push_byte_items::<Utf8Type>(enc, column, items, a, b),
                binary => push_byte_items::<BinaryType>(enc, column, items, a, b),
                bool => {
                    let items = items.as_boolean();
                    for i in a..b {
                        enc.push_item(column, items.is_valid(i).then_some(&[u8::from(items.value(i))][..]));
                    }
                },
                list => unreachable!("lists do not nest"),
                other(d) => unreachable!("item type {d}"),
            );
            enc.end_list(column, true);
        }
    }
}

fn push_fixed_items<T>(
    enc: &mut SegmentEncoder,
    column: usize,
    items: &ArrayRef,
    a: usize,
    b: usize,
) where
    T: ArrowPrimitiveType,
    T::Native: Native,
{
    let items = items.as_primitive::<T>();
    let w = <T::Native as Native>::WIDTH;
    let all_valid = items.null_count() == 0 || (a..b).all(|i| items.is_valid(i));
    if all_valid && cfg!(target_endian = "little") {
        // Arrow's values are native-endian, the format little-endian: one copy of the run.
        let bytes = items.values().inner().as_slice();
        enc.push_items(column, &bytes[a * w..b * w]);
        return;
    }
    let mut buf = [0u8; 8];
    for i in a..b {
        if items.is_valid(i) {
            items.value(i).write_le(&mut buf[..w]);
            enc.push_item(column, Some(&buf[..w]));
        } else {
            enc.push_item(column, None);
        }
    }
}

fn push_byte_items<T: ByteArrayType<Offset = i32>>(
    enc: &mut SegmentEncoder,
    column: usize,
    items: &ArrayRef,
    a: usize,
    b: usize,
) {
    let items = items.as_bytes::<T>();
    for i in a..b {
        let value: Option<&[u8]> = items.is_valid(i).then(|| items.value(i).as_ref());
        enc.push_item(column, value);
    }
}

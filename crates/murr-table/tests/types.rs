//! The ML data types through the table: writes of several batches (last write wins), fetches
//! across segments, merges and a reopen, widening on write and clear refusals.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, FixedSizeListBuilder, Float32Builder, Int64Builder, ListBuilder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, Date32Array, Float16Array, LargeBinaryArray, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{Field, Schema};
use murr_directory::MmapDirectory;
use murr_format::{ColumnDef, DType, TableSchema};
use murr_table::{Store, StoreOptions};

fn dtype(s: &str) -> DType {
    s.parse().expect("a type")
}

fn schema() -> TableSchema {
    TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("half", DType::Float16, true),
            ColumnDef::new("blob", DType::Binary, true),
            ColumnDef::new("day", DType::Date32, true),
            ColumnDef::new("at", dtype("timestamp[ns, UTC]"), true),
            ColumnDef::new("counts", dtype("list<int64>"), true),
            ColumnDef::new("tags", dtype("list<utf8>"), true),
            ColumnDef::new("flags", dtype("list<bool>"), true),
            ColumnDef::new("seen", dtype("list<timestamp[us, UTC]>"), true),
            ColumnDef::new("emb", dtype("fixed_size_list<float32, 4>"), true),
        ],
    )
}

/// Rows `keys` of version `v`: every value a function of the key's number and `v`, with null
/// values, null lists and null items on some rows.
fn batch(keys: &[usize], v: i64) -> RecordBatch {
    let schema = schema();
    let ids = StringArray::from_iter_values(keys.iter().map(|k| format!("k{k}")));
    let half = Float16Array::from_iter(
        keys.iter()
            .map(|&k| (k % 4 != 1).then(|| half::f16::from_f32(k as f32 * 0.5 + v as f32))),
    );
    let mut blob = BinaryBuilder::new();
    let day = Date32Array::from_iter(
        keys.iter()
            .map(|&k| (k % 6 != 2).then_some(k as i32 - 30 + v as i32)),
    );
    let at = TimestampNanosecondArray::from_iter(
        keys.iter()
            .map(|&k| (k % 5 != 3).then_some(k as i64 * 1_000_000_007 - v)),
    )
    .with_timezone("UTC");
    let mut counts = ListBuilder::new(Int64Builder::new());
    let mut tags = ListBuilder::new(StringBuilder::new());
    let mut flags = ListBuilder::new(BooleanBuilder::new());
    let mut seen = ListBuilder::new(TimestampMicrosecondBuilder::new().with_timezone("UTC"));
    let mut emb = FixedSizeListBuilder::new(Float32Builder::new(), 4);
    for &k in keys {
        let ki = k as i64;
        if k % 3 == 0 {
            blob.append_null();
        } else {
            blob.append_value(vec![k as u8; k % 7]);
        }
        if k % 7 == 0 {
            counts.append(false);
            tags.append(false);
        } else {
            for j in 0..(k % 5) as i64 {
                counts
                    .values()
                    .append_option((j != 1).then_some(ki * 10 + j + v));
                tags.values()
                    .append_option((j != 2).then(|| format!("t{k}-{j}")));
            }
            counts.append(true);
            tags.append(true);
        }
        for j in 0..k % 3 {
            flags
                .values()
                .append_option((j != 1).then_some((k + j) % 2 == 0));
        }
        flags.append(k % 11 != 0);
        seen.values().append_value(ki * 1_000 + v);
        seen.append(true);
        if k % 5 == 4 {
            for _ in 0..4 {
                emb.values().append_null();
            }
            emb.append(false);
        } else {
            for j in 0..4 {
                emb.values().append_option(
                    (j != 3 || k % 2 == 0).then_some(ki as f32 + j as f32 / 4.0 + v as f32),
                );
            }
            emb.append(true);
        }
    }
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(half),
        Arc::new(blob.finish()),
        Arc::new(day),
        Arc::new(at),
        Arc::new(counts.finish()),
        Arc::new(tags.finish()),
        Arc::new(flags.finish()),
        Arc::new(seen.finish()),
        Arc::new(emb.finish()),
    ];
    let fields: Vec<Field> = schema
        .columns
        .iter()
        .zip(&arrays)
        .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("batch")
}

/// Every key's row as the last of `writes` that holds it has it.
fn check(store: &Store, writes: &[(Vec<usize>, i64)], all: &[usize], what: &str) {
    let t = store.table("t").expect("table");
    let keys: Vec<String> = all.iter().map(|k| format!("k{k}")).collect();
    let schema = schema();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let got = t.fetch(&keys, &names).expect("fetches");
    for (i, &k) in all.iter().enumerate() {
        let (rows, v) = writes
            .iter()
            .rev()
            .find(|(rows, _)| rows.contains(&k))
            .expect("written");
        let want = batch(rows, *v);
        let src = rows.iter().position(|&r| r == k).expect("there");
        for (c, name) in names.iter().enumerate() {
            assert_eq!(
                got.column(c).slice(i, 1).to_data(),
                want.column(c).slice(src, 1).to_data(),
                "{what}: column {name} of k{k}"
            );
            assert_eq!(
                got.schema().field(c).data_type(),
                &schema.columns[c].dtype.to_arrow()
            );
        }
    }
}

#[test]
fn every_type_survives_segments_merges_and_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = || StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    };
    let store = Store::open(
        Arc::new(MmapDirectory::open(dir.path()).expect("dir")),
        options(),
    )
    .expect("opens");
    store.create_table("t", schema()).expect("creates");
    let writes = vec![
        ((0..60).collect::<Vec<_>>(), 1),
        ((40..90).collect(), 2),
        ((0..90).step_by(3).collect(), 3),
    ];
    for (rows, v) in &writes {
        store.write("t", &[batch(rows, *v)]).expect("writes");
    }
    let all: Vec<usize> = (0..90).collect();
    check(&store, &writes, &all, "three segments");
    let t = store.table("t").expect("table");
    assert_eq!(t.snapshot().segments().len(), 3);
    t.compact().expect("merges");
    assert_eq!(t.snapshot().segments().len(), 1);
    check(&store, &writes, &all, "merged");
    drop((t, store));
    let store = Store::open(
        Arc::new(MmapDirectory::open(dir.path()).expect("dir")),
        options(),
    )
    .expect("reopens");
    check(&store, &writes, &all, "reopened");
}

#[test]
fn writes_widen_losslessly_and_refuse_the_rest_naming_the_column() {
    let store = Store::open(
        Arc::new(murr_directory::RamDirectory::new()),
        StoreOptions::default(),
    )
    .expect("opens");
    store.create_table("t", schema()).expect("creates");
    let write = |name: &str, array: ArrayRef| {
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..array.len()).map(|i| format!("w{i}")),
        ));
        let fields = vec![
            Field::new("id", arrow_schema::DataType::Utf8, false),
            Field::new(name, array.data_type().clone(), true),
        ];
        let batch =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), vec![ids, array]).expect("batch");
        store.write("t", &[batch])
    };
    // Large binary into binary; a list of float32 of the right length into the embedding.
    write(
        "blob",
        Arc::new(LargeBinaryArray::from_iter_values([b"ab".as_slice()])),
    )
    .expect("widens");
    let mut lists = ListBuilder::new(Float32Builder::new());
    lists.values().append_slice(&[1.0, 2.0, 3.0, 4.0]);
    lists.append(true);
    lists.append(false);
    write("emb", Arc::new(lists.finish())).expect("a list of four fits");
    let got = store
        .table("t")
        .expect("t")
        .fetch(&["w0", "w1"], &["emb", "blob"])
        .expect("fetches");
    let emb = got
        .column(0)
        .as_any()
        .downcast_ref::<arrow_array::FixedSizeListArray>()
        .expect("fsl");
    assert_eq!(
        emb.value(0)
            .as_any()
            .downcast_ref::<arrow_array::Float32Array>()
            .expect("f32")
            .values(),
        &[1.0, 2.0, 3.0, 4.0]
    );
    assert!(emb.is_null(1));

    let before = store.table("t").expect("t").stats().rows;
    let refused = |name: &str, array: ArrayRef, needle: &str| {
        let err = write(name, array).expect_err("refused").to_string();
        assert!(
            err.contains(&format!("{name:?}")) && err.contains(needle),
            "{err}"
        );
    };
    let mut short = ListBuilder::new(Float32Builder::new());
    short.values().append_slice(&[1.0, 2.0, 3.0]);
    short.append(true);
    refused("emb", Arc::new(short.finish()), "FixedSizeList");
    refused(
        "at",
        Arc::new(TimestampNanosecondArray::from(vec![1]).with_timezone("Europe/Paris")),
        "timestamp[ns, UTC]",
    );
    refused(
        "at",
        Arc::new(TimestampNanosecondArray::from(vec![1])),
        "without loss",
    );
    refused(
        "counts",
        Arc::new(arrow_array::Int64Array::from(vec![1])),
        "list<int64>",
    );
    refused(
        "day",
        Arc::new(arrow_array::Int32Array::from(vec![1])),
        "date32",
    );
    refused(
        "half",
        Arc::new(arrow_array::Float32Array::from(vec![1.0])),
        "float16",
    );
    assert_eq!(
        store.table("t").expect("t").stats().rows,
        before,
        "nothing written"
    );
}

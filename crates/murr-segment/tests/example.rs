//! The `read_segment` example reads what `SegmentBuilder` built, through the public API only.

#![allow(clippy::disallowed_methods, reason = "tests")]

use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use murr_format::{ColumnDef, DType, TableSchema};
use murr_segment::SegmentBuilder;

/// The example itself, compiled into this test: it runs exactly as `cargo run --example`.
#[path = "../examples/read_segment.rs"]
#[allow(dead_code, reason = "the example's main is not called here")]
mod read_segment;

#[test]
fn the_read_segment_example_prints_what_the_builder_built() {
    let schema = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("score", DType::Float32, true),
            ColumnDef::new("n", DType::Int64, true),
        ],
    );
    let mut builder = SegmentBuilder::new(&schema).expect("schema");
    builder
        .push(
            RecordBatch::try_from_iter(vec![
                (
                    "id",
                    Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
                ),
                (
                    "score",
                    Arc::new(Float32Array::from(vec![Some(0.5), None, Some(2.5)])) as ArrayRef,
                ),
                ("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ])
            .expect("batch"),
        )
        .expect("pushes");
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("built.murr");
    let mut out = std::fs::File::create(&file).expect("creates");
    let built = builder.finish(&mut out).expect("builds");
    assert_eq!((built.rows, built.stored), (3, 2));
    drop(out);
    let mut printed = Vec::new();
    read_segment::print(file.to_str().expect("utf8"), 10, &mut printed).expect("reads");
    let stdout = String::from_utf8_lossy(&printed);
    assert!(stdout.contains("2 rows, key column \"id\""), "{stdout}");
    assert!(stdout.contains("id=b score=null n=2"), "{stdout}");
    assert!(
        stdout.contains("id=a score=2.5 n=3"),
        "the last row of a key wins: {stdout}"
    );
    assert!(stdout.contains("row of the first key: Some(0)"), "{stdout}");
    // A damaged file: the example reports the checksum error.
    let mut bytes = std::fs::read(&file).expect("reads");
    bytes[64] ^= 0x08;
    std::fs::write(&file, bytes).expect("writes");
    let err = read_segment::print(file.to_str().expect("utf8"), 10, &mut Vec::new())
        .expect_err("damaged");
    assert!(err.to_string().contains("checksum"), "{err}");
}

//! Segments built offline and published to a table: append and replace, picked up by a running
//! writer and a replica, refused when damaged, of another schema or of a format version the
//! store's servers do not read, and racing a writer's writes without losing either side.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::sync::Arc;

use arrow_array::RecordBatch;
use bytes::Bytes;
use common::*;
use murr_directory::{Directory, DirectoryExt, FilePath, MmapDirectory, RamDirectory};
use murr_format::{ColumnDef, DType, TableSchema};
use murr_segment::SegmentBuilder;
use murr_table::{
    Error, PublishMode, PublishSegment, Store, StoreFormats, StoreOptions, TableMeta, publish,
};

fn built(name: &str, batches: &[RecordBatch]) -> PublishSegment {
    built_with(&schema(), name, batches)
}

fn built_with(schema: &TableSchema, name: &str, batches: &[RecordBatch]) -> PublishSegment {
    let mut b = SegmentBuilder::new(schema).expect("schema");
    for batch in batches {
        b.push(batch.clone()).expect("pushes");
    }
    let mut out = Vec::new();
    b.finish(&mut out).expect("builds");
    PublishSegment {
        name: name.to_owned(),
        bytes: Bytes::from(out),
    }
}

fn writer() -> StoreOptions {
    StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    }
}

fn segment_files(dir: &dyn Directory) -> Vec<String> {
    dir.list("tables/t")
        .expect("lists")
        .into_iter()
        .map(|f| f.path.file_name().to_owned())
        .filter(|f| f.starts_with("seg-"))
        .collect()
}

#[test]
fn published_segments_serve_on_the_writer_and_a_replica_in_order() {
    let dir: Arc<dyn Directory> = Arc::new(RamDirectory::new());
    let w = Store::open(dir.clone(), writer()).expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..4), 1)]).expect("writes");
    let replica = Store::open(
        dir.clone(),
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .expect("opens");
    // Two segments: the second's rows win over the first's, and both over the table's.
    let stats = publish(
        dir.as_ref(),
        "t",
        &[
            built("a.murr", &[valued(&keys(2..6), 2)]),
            built("b.murr", &[valued(&keys(5..8), 3)]),
        ],
        PublishMode::Append,
    )
    .expect("publishes");
    assert_eq!((stats.segments, stats.rows, stats.replaced), (2, 7, 0));
    assert_eq!(stats.version, 3);
    assert_eq!(w.follow_commits().expect("follows"), 1);
    assert_eq!(w.follow_commits().expect("follows"), 0, "nothing newer");
    replica.refresh().expect("refreshes");
    let all: Vec<String> = keys(0..9);
    let want = [
        Some(1),
        Some(1),
        Some(2),
        Some(2),
        Some(2),
        Some(3),
        Some(3),
        Some(3),
        None,
    ];
    assert_eq!(ns(&t.fetch(&all, &["n"]).expect("reads"), 0), want);
    assert_eq!(
        ns(&replica.fetch("t", &all, &["n"]).expect("reads"), 0),
        want
    );
    // The writer's next write and merge go on top of the published segments.
    t.write(&[valued(&keys(0..1), 4)]).expect("writes");
    t.compact().expect("merges");
    assert_eq!(
        ns(&t.fetch(&all[..3], &["n"]).expect("reads"), 0)[..],
        [Some(4), Some(1), Some(2)]
    );
    // A replace leaves only the published rows; the writer deletes what it superseded.
    let stats = publish(
        dir.as_ref(),
        "t",
        &[built("c.murr", &[valued(&keys(10..12), 5)])],
        PublishMode::Replace,
    )
    .expect("publishes");
    assert_eq!(stats.replaced, 1);
    assert_eq!(w.follow_commits().expect("follows"), 1);
    assert_eq!(
        ns(&t.fetch(&["k0", "k10", "k11"], &["n"]).expect("reads"), 0),
        [None, Some(5), Some(5)]
    );
    assert_eq!(segment_files(dir.as_ref()).len(), 1);
    // A store opened afresh reads the same.
    drop((t, w));
    let again = Store::open(dir, writer()).expect("opens");
    assert_eq!(
        ns(&again.fetch("t", &["k0", "k10"], &["n"]).expect("reads"), 0),
        [None, Some(5)]
    );
}

#[test]
fn a_bad_segment_commits_nothing_and_is_named() {
    let dir: Arc<dyn Directory> = Arc::new(RamDirectory::new());
    let w = Store::open(dir.clone(), writer()).expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..4), 1)]).expect("writes");
    let before = (t.version(), segment_files(dir.as_ref()));
    let good = built("good.murr", &[valued(&keys(0..2), 2)]);
    let refused = |segments: &[PublishSegment], mode: PublishMode| -> String {
        let err = publish(dir.as_ref(), "t", segments, mode).expect_err("refused");
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert_eq!(w.follow_commits().expect("follows"), 0);
        assert_eq!((t.version(), segment_files(dir.as_ref())), before);
        err.to_string()
    };
    // A flipped byte in the rows: the checksum catches it.
    let mut damaged = built("damaged.murr", &[valued(&keys(0..2), 2)]);
    let mut bytes = damaged.bytes.to_vec();
    bytes[100] ^= 0x40;
    damaged.bytes = Bytes::from(bytes);
    let msg = refused(&[good.clone(), damaged], PublishMode::Append);
    assert!(
        msg.contains("damaged.murr") && msg.contains("checksum"),
        "{msg}"
    );
    // A cut file.
    let mut cut = good.clone();
    cut.name = "cut.murr".into();
    cut.bytes = cut.bytes.slice(..cut.bytes.len() - 9);
    let msg = refused(&[cut], PublishMode::Replace);
    assert!(msg.contains("cut.murr"), "{msg}");
    // Not a segment at all.
    let parquet = PublishSegment {
        name: "part-0.parquet".into(),
        bytes: Bytes::from_static(b"PAR1 not a segment PAR1"),
    };
    let msg = refused(&[parquet], PublishMode::Append);
    assert!(
        msg.contains("part-0.parquet") && msg.contains("not a murr segment"),
        "{msg}"
    );
    // A column of another type than the table's.
    let other = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("n", DType::Float64, false),
        ],
    );
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(arrow_array::StringArray::from(vec!["k0"])) as arrow_array::ArrayRef,
        ),
        (
            "n",
            Arc::new(arrow_array::Float64Array::from(vec![1.0])) as arrow_array::ArrayRef,
        ),
    ])
    .expect("batch");
    let msg = refused(
        &[built_with(&other, "float.murr", &[batch])],
        PublishMode::Append,
    );
    assert!(msg.contains("float.murr") && msg.contains("\"n\""), "{msg}");
    // A column the table lacks, and nulls in a column the table says is not nullable.
    let wider = TableSchema::new(
        "id",
        vec![
            ColumnDef::new("id", DType::Utf8, false),
            ColumnDef::new("n", DType::Int64, true),
            ColumnDef::new("extra", DType::Int64, true),
        ],
    );
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(arrow_array::StringArray::from(vec!["k0", "k1"])) as arrow_array::ArrayRef,
        ),
        (
            "n",
            Arc::new(arrow_array::Int64Array::from(vec![Some(1), None])) as arrow_array::ArrayRef,
        ),
        (
            "extra",
            Arc::new(arrow_array::Int64Array::from(vec![1, 2])) as arrow_array::ArrayRef,
        ),
    ])
    .expect("batch");
    let msg = refused(
        &[built_with(
            &wider,
            "extra.murr",
            std::slice::from_ref(&batch),
        )],
        PublishMode::Append,
    );
    assert!(
        msg.contains("extra.murr") && msg.contains("\"extra\""),
        "{msg}"
    );
    let msg = refused(
        &[built_with(
            &wider,
            "nulls.murr",
            &[batch.project(&[0, 1]).expect("two columns")],
        )],
        PublishMode::Append,
    );
    assert!(
        msg.contains("nulls.murr") && msg.contains("not nullable"),
        "{msg}"
    );
    // Unknown table.
    let err = publish(dir.as_ref(), "nope", &[good], PublishMode::Append).expect_err("no table");
    assert!(matches!(err, Error::TableNotFound { .. }), "{err}");
}

#[test]
fn a_segment_newer_than_the_servers_read_is_refused_at_publish_time() {
    let dir: Arc<dyn Directory> = Arc::new(RamDirectory::new());
    let w = Store::open(dir.clone(), writer()).expect("opens");
    w.create_table("t", schema()).expect("creates");
    // The writer recorded what it reads.
    assert_eq!(
        StoreFormats::read(dir.as_ref()).expect("reads"),
        Some(StoreFormats::this_build())
    );
    // Servers of an older murr, which read versions 1 to 4.
    let path = FilePath::new(murr_table::FORMATS).expect("path");
    dir.delete(&path).expect("deletes");
    let mine = StoreFormats::this_build();
    // The record is checksummed: write it through the same envelope.
    let json = serde_json::json!({"min": mine.min, "max": mine.max - 1, "by": "murr 0.0.9"});
    let sealed = murr_format::envelope::seal(
        *b"MURRFMTS",
        1,
        serde_json::to_vec(&json).expect("json").as_slice(),
    );
    dir.write_new(&path, &sealed).expect("writes");
    let err = publish(
        dir.as_ref(),
        "t",
        &[built("new.murr", &[valued(&keys(0..2), 2)])],
        PublishMode::Append,
    )
    .expect_err("too new");
    let msg = err.to_string();
    assert!(
        msg.contains("new.murr")
            && msg.contains(&format!("format version {}", mine.max))
            && msg.contains("murr 0.0.9")
            && msg.contains("upgrade the servers"),
        "{msg}"
    );
    assert!(segment_files(dir.as_ref()).is_empty());
    // A header naming a version this build does not know either.
    let mut future = built("future.murr", &[valued(&keys(0..2), 2)]);
    let mut bytes = future.bytes.to_vec();
    bytes[8..12].copy_from_slice(&(mine.max + 1).to_le_bytes());
    future.bytes = Bytes::from(bytes);
    dir.delete(&path).expect("deletes");
    let msg = publish(dir.as_ref(), "t", &[future], PublishMode::Append)
        .expect_err("unknown version")
        .to_string();
    assert!(
        msg.contains("future.murr") && msg.contains(&format!("version {}", mine.max + 1)),
        "{msg}"
    );
}

#[test]
fn a_publish_racing_writes_loses_nothing() {
    // On local disk, where the writer deletes what its commits supersede at once.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir: Arc<dyn Directory> = Arc::new(MmapDirectory::open(tmp.path()).expect("opens"));
    let w = Store::open(dir.clone(), writer()).expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    let rounds = 20;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..rounds {
                t.write(&[valued(&keys(i * 10..i * 10 + 10), 1)])
                    .expect("a write commits, on top of a publish if need be");
            }
        });
        s.spawn(|| {
            for i in 0..rounds {
                let range = 1000 + i * 10..1000 + i * 10 + 10;
                publish(
                    dir.as_ref(),
                    "t",
                    &[built(&format!("p{i}.murr"), &[valued(&keys(range), 2)])],
                    PublishMode::Append,
                )
                .expect("a publish commits, on top of a write if need be");
            }
        });
    });
    w.follow_commits().expect("follows");
    let written: Vec<String> = keys(0..rounds * 10);
    let published: Vec<String> = keys(1000..1000 + rounds * 10);
    assert!(
        ns(&t.fetch(&written, &["n"]).expect("reads"), 0)
            .iter()
            .all(|v| *v == Some(1))
    );
    assert!(
        ns(&t.fetch(&published, &["n"]).expect("reads"), 0)
            .iter()
            .all(|v| *v == Some(2))
    );
    assert_eq!(t.version().1, 1 + 2 * rounds as u64);
    drop((t, w));
    let again = Store::open(dir, writer()).expect("opens");
    assert_eq!(
        again.table("t").expect("t").stats().rows,
        2 * rounds as u64 * 10
    );
}

#[test]
fn parquet_types_are_brought_to_the_table_s_before_building() {
    // What `murr segment build` does with a Parquet file's batches: int32 into an int64 column.
    let meta = TableMeta::new(schema()).expect("meta");
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(arrow_array::LargeStringArray::from(vec!["a"])) as arrow_array::ArrayRef,
        ),
        (
            "n",
            Arc::new(arrow_array::Int32Array::from(vec![7])) as arrow_array::ArrayRef,
        ),
    ])
    .expect("batch");
    let mut b = SegmentBuilder::new(meta.schema()).expect("schema");
    assert!(
        b.push(batch.clone()).is_err(),
        "the builder takes exact types only"
    );
    b.push(meta.normalize("t", &batch).expect("normalizes"))
        .expect("pushes");
    let mut out = Vec::new();
    assert_eq!(b.finish(&mut out).expect("builds").stored, 1);
    let err = meta
        .normalize("t", &valued(&keys(0..1), 1).project(&[1]).expect("no key"))
        .expect_err("no key");
    assert!(err.to_string().contains("id"), "{err}");
}

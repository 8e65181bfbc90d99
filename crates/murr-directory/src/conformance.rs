//! The checks every [`Directory`] implementation passes. Each implementation's tests call
//! [`run_all`] on a fresh, empty directory.

#![allow(
    clippy::disallowed_methods,
    reason = "test code: a panic is the failure report"
)]

use std::io::Write;

use crate::{Directory, DirectoryExt, Error, FilePath};

fn p(s: &str) -> FilePath {
    FilePath::new(s).expect("valid test path")
}

/// Runs every check; panics on the first failure.
pub fn run_all(dir: &dyn Directory) {
    write_once_then_read(dir);
    create_refuses_existing(dir);
    unfinished_writer_leaves_nothing(dir);
    finish_returns_the_bytes(dir);
    list_by_prefix(dir);
    delete_keeps_open_bytes(dir);
    missing_files(dir);
    read_range(dir);
    empty_file(dir);
}

/// A finished file reads back whole.
pub fn write_once_then_read(dir: &dyn Directory) {
    let path = p("c1/a.bin");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let mut w = dir.create(&path).expect("create");
    for chunk in data.chunks(7777) {
        w.write_all(chunk).expect("write");
    }
    assert!(!dir.exists(&path).expect("exists"), "visible before finish");
    w.finish().expect("finish");
    assert!(dir.exists(&path).expect("exists"));
    assert_eq!(&dir.open(&path).expect("open")[..], &data[..]);
}

/// A second file under a taken name is refused, at create or at finish.
pub fn create_refuses_existing(dir: &dyn Directory) {
    let path = p("c2/a");
    dir.write_new(&path, b"one").expect("first write");
    assert!(matches!(
        dir.create(&path),
        Err(Error::AlreadyExists { .. })
    ));
    let racing = p("c2/b");
    let mut w1 = dir.create(&racing).expect("create 1");
    let mut w2 = dir.create(&racing).expect("create 2");
    w1.write_all(b"first").expect("write");
    w2.write_all(b"second").expect("write");
    w1.finish().expect("first finish wins");
    assert!(matches!(w2.finish(), Err(Error::AlreadyExists { .. })));
    assert_eq!(&dir.open(&racing).expect("open")[..], b"first");
    assert_eq!(&dir.open(&path).expect("open")[..], b"one");
}

/// A writer dropped before finish leaves no file.
pub fn unfinished_writer_leaves_nothing(dir: &dyn Directory) {
    let path = p("c3/a");
    let mut w = dir.create(&path).expect("create");
    w.write_all(b"partial").expect("write");
    drop(w);
    assert!(!dir.exists(&path).expect("exists"));
    assert!(dir.list("c3").expect("list").is_empty());
    dir.write_new(&path, b"now").expect("name is free");
}

/// `finish` hands back the file's bytes, equal to what `open` reads.
pub fn finish_returns_the_bytes(dir: &dyn Directory) {
    let path = p("c4/MANIFEST-1");
    let written = dir.write_new(&path, b"version one").expect("write");
    assert_eq!(&written[..], b"version one");
    assert_eq!(dir.open(&path).expect("open"), written);
    let listed = dir.list("c4").expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!((&listed[0].path, listed[0].len), (&path, 11));
    let age = std::time::SystemTime::now()
        .duration_since(listed[0].modified)
        .unwrap_or_default();
    assert!(age < std::time::Duration::from_secs(60), "written just now");
}

/// List finds files under a folder, at any depth, sorted, and nothing beside it.
pub fn list_by_prefix(dir: &dyn Directory) {
    for f in ["c5/x/2", "c5/x/1", "c5/y", "c5x/z", "c5/x/deep/er"] {
        dir.write_new(&p(f), b"").expect("write");
    }
    let names = |prefix| -> Vec<String> {
        dir.list(prefix)
            .expect("list")
            .iter()
            .map(|f| f.path.to_string())
            .collect()
    };
    assert_eq!(names("c5"), ["c5/x/1", "c5/x/2", "c5/x/deep/er", "c5/y"]);
    assert_eq!(names("c5/x"), ["c5/x/1", "c5/x/2", "c5/x/deep/er"]);
    assert!(names("nothing/here").is_empty());
    assert!(names("").contains(&"c5x/z".to_owned()));
}

/// Deleting a file keeps bytes opened before valid, and frees the name.
pub fn delete_keeps_open_bytes(dir: &dyn Directory) {
    let path = p("c6/a");
    dir.write_new(&path, b"still here").expect("write");
    let bytes = dir.open(&path).expect("open");
    dir.delete(&path).expect("delete");
    assert!(!dir.exists(&path).expect("exists"));
    assert_eq!(&bytes[..], b"still here");
    assert!(matches!(dir.delete(&path), Err(Error::NotFound { .. })));
    dir.delete_if_exists(&path).expect("idempotent delete");
    dir.write_new(&path, b"again").expect("name is free");
}

/// Missing files are NotFound.
pub fn missing_files(dir: &dyn Directory) {
    let path = p("c7/none");
    assert!(matches!(dir.open(&path), Err(Error::NotFound { .. })));
    assert!(matches!(
        dir.read_range(&path, 0, 1),
        Err(Error::NotFound { .. })
    ));
    assert!(!dir.exists(&path).expect("exists"));
}

/// Ranges read what they name; a range past the end is an error.
pub fn read_range(dir: &dyn Directory) {
    let path = p("c8/a");
    dir.write_new(&path, b"0123456789").expect("write");
    assert_eq!(&dir.read_range(&path, 3, 4).expect("range")[..], b"3456");
    assert_eq!(&dir.read_range(&path, 10, 0).expect("empty range")[..], b"");
    assert!(dir.read_range(&path, 8, 5).is_err());
}

/// Empty files exist and open as no bytes.
pub fn empty_file(dir: &dyn Directory) {
    let path = p("c9/empty");
    dir.write_new(&path, b"").expect("write");
    assert!(dir.open(&path).expect("open").is_empty());
}

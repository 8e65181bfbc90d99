//! The Directory contract on a real S3 server (SeaweedFS): the object-store directory, alone
//! and with its local disk tier, passes the same conformance suite as the local directories,
//! and create-once holds between two clients of one bucket.

#![allow(clippy::disallowed_methods, reason = "tests")]

use murr_directory::{
    Directory, DirectoryExt, Error, FilePath, ObjectStoreDirectory, RemoteOptions, TieredDirectory,
    conformance,
};
use murr_tests::seaweed::{ACCESS_KEY, SECRET_KEY, Seaweed};

fn options(s3: &Seaweed) -> RemoteOptions {
    RemoteOptions {
        endpoint: Some(s3.endpoint.clone()),
        allow_http: true,
        s3_keys: Some((ACCESS_KEY.to_owned(), SECRET_KEY.to_owned())),
        ..RemoteOptions::default()
    }
}

#[test]
fn the_object_store_directory_on_seaweedfs() {
    let s3 = Seaweed::start("conformance");
    let dir = ObjectStoreDirectory::from_url(&s3.url("plain"), &options(&s3)).expect("opens");
    dir.probe().expect("the bucket answers");
    conformance::run_all(&dir);

    // Two clients of one bucket race for one name: exactly one wins (a conditional put).
    let other = ObjectStoreDirectory::from_url(&s3.url("plain"), &options(&s3)).expect("opens");
    let name = FilePath::new("race/MANIFEST-1").expect("path");
    let mut a = dir.create(&name).expect("create");
    let mut b = other.create(&name).expect("create");
    std::io::Write::write_all(&mut a, b"a").expect("write");
    std::io::Write::write_all(&mut b, b"b").expect("write");
    a.finish().expect("first wins");
    assert!(matches!(b.finish(), Err(Error::AlreadyExists { .. })));
    assert_eq!(&other.open(&name).expect("open")[..], b"a");

    // With the local tier in front (every file cached).
    let cache = tempfile::tempdir().expect("temp folder");
    let remote = ObjectStoreDirectory::from_url(&s3.url("tiered"), &options(&s3)).expect("opens");
    let tiered = TieredDirectory::open(remote, cache.path(), &s3.url("tiered"), |_| true, true)
        .expect("opens");
    conformance::run_all(&tiered);
    // What the tier wrote is in the bucket, where a plain client reads it.
    let plain = ObjectStoreDirectory::from_url(&s3.url("tiered"), &options(&s3)).expect("opens");
    tiered
        .write_new(&FilePath::new("t/x").expect("path"), b"xyz")
        .expect("write");
    assert_eq!(
        &plain
            .open(&FilePath::new("t/x").expect("path"))
            .expect("open")[..],
        b"xyz"
    );
}

#[test]
fn a_missing_bucket_and_wrong_keys_are_named() {
    let s3 = Seaweed::start("present");
    let missing = ObjectStoreDirectory::from_url("s3://absent/x", &options(&s3)).expect("builds");
    let e = missing.probe().expect_err("no such bucket").to_string();
    assert!(e.contains("NoSuchBucket") || e.contains("not found"), "{e}");
    let wrong = RemoteOptions {
        s3_keys: Some(("nobody".to_owned(), "nothing".to_owned())),
        ..options(&s3)
    };
    let e = ObjectStoreDirectory::from_url(&s3.url("x"), &wrong)
        .expect("builds")
        .probe()
        .expect_err("refused")
        .to_string();
    assert!(e.contains("InvalidAccessKeyId") || e.contains("403"), "{e}");
}

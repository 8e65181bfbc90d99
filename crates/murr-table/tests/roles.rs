//! Roles and manifests: a read-only store follows a writer on shared storage, two writers
//! cannot both commit one version, superseded files go at once or by gc, and a data folder
//! written by the released code still reads.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use murr_directory::{Directory, MmapDirectory, RamDirectory};
use murr_table::{Error, ErrorKind, RefreshStats, Store, StoreOptions};

fn writer() -> StoreOptions {
    StoreOptions {
        background_merges: false,
        ..StoreOptions::default()
    }
}

fn replica() -> StoreOptions {
    StoreOptions {
        read_only: true,
        ..StoreOptions::default()
    }
}

fn files(dir: &dyn Directory, prefix: &str) -> Vec<String> {
    dir.list(prefix)
        .expect("lists")
        .into_iter()
        .map(|f| f.path.file_name().to_owned())
        .collect()
}

#[test]
fn a_replica_follows_the_writer_and_reuses_open_segments() {
    let dir = Arc::new(RamDirectory::new());
    let w = Store::open(dir.clone(), writer()).expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..10), 1)]).expect("writes");
    let r = Store::open(dir, replica()).expect("opens read-only");
    assert_eq!(
        ns(&r.fetch("t", &keys(0..2), &["n"]).expect("reads"), 0),
        [Some(1), Some(1)]
    );
    let first = r.table("t").expect("exists").snapshot().segments()[0].clone();

    t.write(&[valued(&keys(5..15), 2)]).expect("writes");
    assert_eq!(
        r.fetch("t", &["k12"], &["n"])
            .map(|b| ns(&b, 0))
            .expect("reads"),
        [None],
        "not yet refreshed"
    );
    let stats = r.refresh().expect("refreshes");
    assert_eq!(
        stats,
        RefreshStats {
            added: 0,
            updated: 1,
            removed: 0
        }
    );
    let out = r.fetch("t", &["k0", "k7", "k12"], &["n"]).expect("reads");
    assert_eq!(ns(&out, 0), [Some(1), Some(2), Some(2)]);
    let snap = r.table("t").expect("exists").snapshot();
    assert_eq!(snap.segments().len(), 2);
    assert_eq!(
        snap.segments()[0].view().bytes().as_ptr(),
        first.view().bytes().as_ptr(),
        "the segment the replica had open is reused, not opened again"
    );
    assert_eq!(r.refresh().expect("refreshes"), RefreshStats::default());

    // Changes are the writer's alone.
    for err in [
        r.table("t")
            .expect("exists")
            .write(&[valued(&keys(0..1), 3)])
            .expect_err("read-only"),
        r.create_table("u", schema()).expect_err("read-only"),
        r.drop_table("t").expect_err("read-only"),
        r.gc(Duration::ZERO).expect_err("read-only"),
        r.table("t")
            .expect("exists")
            .compact()
            .expect_err("read-only"),
    ] {
        assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Conflict);
    }

    // A drop and a create again (a new incarnation) propagate too.
    w.drop_table("t").expect("drops");
    assert_eq!(r.refresh().expect("refreshes").removed, 1);
    assert_eq!(
        r.table("t").expect_err("dropped").kind(),
        ErrorKind::NotFound
    );
    w.create_table("t", schema())
        .expect("creates again")
        .write(&[valued(&keys(0..1), 9)])
        .expect("writes");
    assert_eq!(r.refresh().expect("refreshes").added, 1);
    assert_eq!(
        ns(&r.fetch("t", &["k0", "k1"], &["n"]).expect("reads"), 0),
        [Some(9), None]
    );
}

#[test]
fn two_writers_never_commit_one_version_and_the_loser_commits_on_top() {
    let dir = Arc::new(RamDirectory::new());
    let a = Store::open(dir.clone(), writer()).expect("opens");
    a.create_table("t", schema()).expect("creates");
    let b = Store::open(dir.clone(), writer()).expect("opens");
    let (ta, tb) = (a.table("t").expect("exists"), b.table("t").expect("exists"));
    ta.write(&[valued(&keys(0..3), 1)])
        .expect("a commits version 2");
    // B's first segment would take the name of A's: B numbers past A's segments, and its
    // commit of version 2 is A's: B loads A's state and commits version 3 on top of it.
    tb.write(&[valued(&keys(0..1), 2)])
        .expect("commits on top of A");
    // B's next write goes on as usual.
    tb.write(&[valued(&keys(2..4), 3)])
        .expect("commits version 4");
    assert_eq!(tb.version().1, 4);
    let fresh = Store::open(dir, replica()).expect("opens");
    let n = |keys: &[&str]| ns(&fresh.fetch("t", keys, &["n"]).expect("reads"), 0);
    assert_eq!(
        n(&["k0", "k1", "k2", "k3"]),
        [Some(2), Some(1), Some(3), Some(3)]
    );
    // A, behind now, does the same on its next write.
    ta.write(&[valued(&keys(0..1), 4)])
        .expect("commits version 5");
    fresh.refresh().expect("refreshes");
    assert_eq!(n(&["k0", "k1", "k2"]), [Some(4), Some(1), Some(3)]);
}

#[test]
fn superseded_files_go_at_once_or_after_the_grace_period() {
    // Alone on its storage, a writer deletes merged segments at once, and superseded manifests
    // once superseded for the manifest grace (here none).
    let dir = Arc::new(RamDirectory::new());
    let w = Store::open(
        dir.clone(),
        StoreOptions {
            manifest_grace: Duration::ZERO,
            ..writer()
        },
    )
    .expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    for v in 0..4 {
        t.write(&[valued(&keys(0..5), v)]).expect("writes");
    }
    t.compact().expect("compacts");
    let names = files(dir.as_ref(), "tables/t");
    assert_eq!(
        names,
        [
            "MANIFEST-00000000000000000006".to_owned(),
            t.snapshot().segments()[0].path().file_name().to_owned()
        ],
        "one manifest (create, four writes, a compaction) and the one live segment"
    );
    // With the default grace (60 s), the superseded manifests stay for now: a publish from
    // another process may be about to create the version after one of them.
    let dir = Arc::new(RamDirectory::new());
    let w = Store::open(dir.clone(), writer()).expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    for v in 0..4 {
        t.write(&[valued(&keys(0..5), v)]).expect("writes");
    }
    t.compact().expect("compacts");
    let names = files(dir.as_ref(), "tables/t");
    assert_eq!(
        names.iter().filter(|f| f.starts_with("MANIFEST-")).count(),
        6,
        "{names:?}"
    );
    assert_eq!(
        names.iter().filter(|f| f.starts_with("seg-")).count(),
        1,
        "{names:?}"
    );

    // With replicas on shared storage, superseded files stay until gc and its grace period.
    let shared = Arc::new(RamDirectory::new());
    let w = Store::open(
        shared.clone(),
        StoreOptions {
            delete_at_once: false,
            ..writer()
        },
    )
    .expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    for v in 0..4 {
        t.write(&[valued(&keys(0..5), v)]).expect("writes");
    }
    t.compact().expect("compacts");
    let count = |kind: &str| {
        files(shared.as_ref(), "tables/t")
            .iter()
            .filter(|f| f.starts_with(kind))
            .count()
    };
    assert_eq!((count("MANIFEST-"), count("seg-")), (6, 5));
    assert_eq!(
        w.gc(Duration::from_secs(3600)).expect("gc").files,
        0,
        "all younger than the grace"
    );
    let removed = w.gc(Duration::ZERO).expect("gc");
    assert_eq!(removed.files, 9);
    assert_eq!((count("MANIFEST-"), count("seg-")), (1, 1));
    let r = Store::open(shared.clone(), replica()).expect("opens");
    assert_eq!(
        ns(&r.fetch("t", &["k4"], &["n"]).expect("reads"), 0),
        [Some(3)]
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creates");
    for entry in std::fs::read_dir(from).expect("reads") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copies");
        }
    }
}

/// `tests/fixtures/data-0.1` was written by the released code: a legacy `MANIFEST`, version-2
/// segments with inline and section strings, and a version-1 segment.
#[test]
fn a_data_folder_written_by_release_0_1_still_reads_and_moves_to_numbered_manifests() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/data-0.1");
    let tmp = tempfile::tempdir().expect("temp folder");
    copy_dir(&fixture, tmp.path());
    let check = |store: &Store| {
        let out = store
            .fetch(
                "items",
                &["k1", "k2", "k3", "k4", "k9"],
                &["score", "n", "tag", "flag", "id"],
            )
            .expect("reads");
        assert_eq!(
            floats(&out, 0),
            [Some(0.5), Some(2.5), Some(1.5), Some(4.0), None]
        );
        assert_eq!(ns(&out, 1), [Some(1), Some(20), None, Some(40), None]);
        let tags = strings(&out, 2);
        assert_eq!(tags[0].as_deref(), Some("a"));
        assert!(tags[2].as_deref().is_some_and(|t| t.len() > 64), "{tags:?}");
        assert_eq!(tags[1].as_deref(), Some("b"));
        let ids = strings(&out, 4);
        assert_eq!(ids[3].as_deref(), Some("k4"));
        let long_key = format!("{}-3", "long key ".repeat(31));
        let out = store
            .fetch("longkeys", &[long_key.as_str(), "nope"], &["x"])
            .expect("reads");
        let x = out
            .column(0)
            .as_any()
            .downcast_ref::<arrow_array::Int32Array>()
            .expect("int32");
        assert_eq!(x.iter().collect::<Vec<_>>(), [Some(3), None]);
    };
    {
        // Superseded manifests go once superseded for the grace: none here.
        let store = Store::open(
            Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
            StoreOptions {
                manifest_grace: Duration::ZERO,
                ..writer()
            },
        )
        .expect("opens the old folder");
        check(&store);
        assert_eq!(store.table("items").expect("exists").version().1, 3);
        store
            .table("items")
            .expect("exists")
            .write(&[valued(&keys(100..101), 7)])
            .expect("writes");
        let names = files(store.directory().as_ref(), "tables/items");
        assert!(
            names.contains(&"MANIFEST-00000000000000000004".to_owned()),
            "{names:?}"
        );
        assert!(
            !names.contains(&"MANIFEST".to_owned()),
            "the legacy manifest is superseded"
        );
    }
    let store = Store::open(
        Arc::new(MmapDirectory::open(tmp.path()).expect("reopens")),
        writer(),
    )
    .expect("reopens");
    check(&store);
    assert_eq!(
        ns(&store.fetch("items", &["k100"], &["n"]).expect("reads"), 0),
        [Some(7)]
    );
}

/// A replica that cannot read a table's newest manifest (a bad or half-visible file, storage
/// trouble) keeps serving the version it has; gc leaves such a table's files alone.
#[test]
fn an_unreadable_newest_manifest_changes_nothing() {
    let dir = Arc::new(RamDirectory::new());
    let w = Store::open(
        dir.clone(),
        StoreOptions {
            delete_at_once: false,
            ..writer()
        },
    )
    .expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..3), 1)]).expect("writes");
    t.write(&[valued(&keys(0..3), 2)]).expect("writes");
    let r = Store::open(dir.clone(), replica()).expect("opens");
    let bad =
        murr_directory::FilePath::new("tables/t/MANIFEST-00000000000000000099").expect("valid");
    murr_directory::DirectoryExt::write_new(dir.as_ref(), &bad, b"not a manifest").expect("writes");
    r.refresh().expect("refreshes");
    assert_eq!(
        ns(&r.fetch("t", &["k0"], &["n"]).expect("still serves"), 0),
        [Some(2)]
    );
    let before = files(dir.as_ref(), "tables/t");
    assert_eq!(w.gc(Duration::ZERO).expect("gc").files, 0);
    assert_eq!(
        files(dir.as_ref(), "tables/t"),
        before,
        "nothing of that table is deleted"
    );
    // A replica that never had the table reports it unavailable.
    let fresh = Store::open(dir, replica()).expect("opens");
    assert_eq!(
        fresh.table("t").expect_err("unreadable").kind(),
        ErrorKind::Unavailable
    );
}

/// The gate of a directory whose writes into `tables/slow/` wait until the test lets them
/// through: storage that hangs.
#[derive(Debug)]
struct Gated {
    entered: parking_lot::Mutex<std::sync::mpsc::Sender<()>>,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gated {
    /// The gate, open or closed; an empty directory behind it; and what tells when a write
    /// reaches the gate.
    fn new(open: bool) -> (Arc<Gated>, Arc<Hooked>, std::sync::mpsc::Receiver<()>) {
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let gate = Arc::new(Gated {
            entered: parking_lot::Mutex::new(entered_tx),
            open: std::sync::Mutex::new(open),
            opened: std::sync::Condvar::new(),
        });
        let dir = {
            let gate = Arc::clone(&gate);
            Hooked::new(Arc::new(RamDirectory::new())).before_change(move |path| gate.wait(path))
        };
        (gate, Arc::new(dir), entered)
    }

    fn wait(&self, path: &murr_directory::FilePath) {
        if path.is_under("tables/slow") {
            let _ = self.entered.lock().send(());
            let mut open = self.open.lock().expect("lock");
            while !*open {
                open = self.opened.wait(open).expect("lock");
            }
        }
    }

    fn release(&self) {
        *self.open.lock().expect("lock") = true;
        self.opened.notify_all();
    }
}

/// A create or a drop waiting on storage holds no lock that other tables' requests need; the
/// table's own name answers "not found" or "busy" meanwhile.
#[test]
fn a_create_or_drop_stuck_in_storage_blocks_no_other_table() {
    let (gate, dir, entered) = Gated::new(false);
    let store = Arc::new(Store::open(dir, writer()).expect("opens"));
    store.create_table("fast", schema()).expect("creates");
    let in_background = |op: fn(&Store) -> murr_table::Result<()>| {
        let store = Arc::clone(&store);
        std::thread::spawn(move || op(&store))
    };
    let other_tables_answer = |store: &Arc<Store>| {
        let (tx, rx) = std::sync::mpsc::channel();
        let store = Arc::clone(store);
        std::thread::spawn(move || {
            let _ = tx.send((
                store.table("fast").is_ok(),
                store.tables().len(),
                store.table("slow").map(|_| ()).map_err(|e| e.kind()),
            ));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the catalog answers while another table waits on storage")
    };

    let create = in_background(|s| s.create_table("slow", schema()).map(drop));
    entered
        .recv_timeout(Duration::from_secs(5))
        .expect("the create reaches storage");
    assert_eq!(
        other_tables_answer(&store),
        (true, 1, Err(ErrorKind::NotFound))
    );
    let err = store
        .create_table("slow", schema())
        .expect_err("being created");
    assert!(matches!(err, Error::Busy { .. }), "{err}");
    gate.release();
    create.join().expect("joins").expect("creates");

    *gate.open.lock().expect("lock") = false;
    let drop_it = in_background(|s| s.drop_table("slow"));
    entered
        .recv_timeout(Duration::from_secs(5))
        .expect("the drop reaches storage");
    assert_eq!(
        other_tables_answer(&store),
        (true, 1, Err(ErrorKind::NotFound))
    );
    gate.release();
    drop_it.join().expect("joins").expect("drops");
    assert_eq!(
        store.table("slow").expect_err("dropped").kind(),
        ErrorKind::NotFound
    );
}

/// Writes beyond `max_concurrent_writes` wait for a running one to finish: their input and
/// segments are never all in memory at once.
#[test]
fn writes_beyond_the_limit_wait_their_turn() {
    let (gate, dir, entered) = Gated::new(true);
    let store = Arc::new(
        Store::open(
            dir,
            StoreOptions {
                max_concurrent_writes: 1,
                ..writer()
            },
        )
        .expect("opens"),
    );
    store.create_table("slow", schema()).expect("creates");
    store.create_table("other", schema()).expect("creates");
    while entered.try_recv().is_ok() {}
    *gate.open.lock().expect("lock") = false;
    let first = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || store.write("slow", &[valued(&keys(0..3), 1)]))
    };
    entered
        .recv_timeout(Duration::from_secs(5))
        .expect("the first write reaches storage");
    let (done_tx, done) = std::sync::mpsc::channel();
    let second = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            let r = store.write("other", &[valued(&keys(0..3), 2)]);
            let _ = done_tx.send(());
            r
        })
    };
    assert!(
        done.recv_timeout(Duration::from_millis(500)).is_err(),
        "the second write ran while the first held the only slot"
    );
    gate.release();
    first.join().expect("joins").expect("writes");
    done.recv_timeout(Duration::from_secs(5))
        .expect("the second write runs after");
    second.join().expect("joins").expect("writes");
    assert_eq!(
        ns(&store.fetch("other", &["k0"], &["n"]).expect("reads"), 0),
        [Some(2)]
    );
}

/// The roles over an object store: a writer and a replica share one bucket prefix through
/// `ObjectStoreDirectory` (object_store's in-memory store stands in for S3 here); create-once
/// manifests fence a second writer there too.
#[test]
fn a_replica_follows_a_writer_through_an_object_store() {
    use murr_directory::ObjectStoreDirectory;
    let bucket: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::memory::InMemory::new());
    let dir = || {
        Arc::new(ObjectStoreDirectory::new(Arc::clone(&bucket), "features/prod").expect("opens"))
    };
    let w = Store::open(
        dir(),
        StoreOptions {
            delete_at_once: false,
            ..writer()
        },
    )
    .expect("opens");
    let t = w.create_table("t", schema()).expect("creates");
    t.write(&[valued(&keys(0..10), 1)]).expect("writes");
    let r = Store::open(dir(), replica()).expect("opens read-only");
    assert_eq!(
        ns(&r.fetch("t", &["k3"], &["n"]).expect("reads"), 0),
        [Some(1)]
    );
    t.write(&[valued(&keys(0..5), 2)]).expect("writes");
    t.compact().expect("compacts");
    assert_eq!(r.refresh().expect("refreshes").updated, 1);
    assert_eq!(
        ns(&r.fetch("t", &["k3", "k7"], &["n"]).expect("reads"), 0),
        [Some(2), Some(1)]
    );
    // The superseded files stay for replicas until gc, after its grace period.
    assert_eq!(w.gc(Duration::from_secs(3600)).expect("gc").files, 0);
    assert!(w.gc(Duration::ZERO).expect("gc").files > 0);
    assert_eq!(
        ns(&r.fetch("t", &["k3"], &["n"]).expect("reads"), 0),
        [Some(2)]
    );
    // A second writer on the bucket loses the race for the next version, loads the first's
    // state and commits on top of it.
    let w2 = Store::open(dir(), writer()).expect("opens");
    t.write(&[valued(&keys(0..1), 3)]).expect("commits");
    w2.write("t", &[valued(&keys(1..2), 4)])
        .expect("commits on top");
    r.refresh().expect("refreshes");
    assert_eq!(
        ns(&r.fetch("t", &["k0", "k1"], &["n"]).expect("reads"), 0),
        [Some(3), Some(4)]
    );
}

//! Reads stay correct and consistent while writes and merges run.

#![allow(clippy::disallowed_methods, clippy::clone_on_ref_ptr, reason = "tests")]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use murr_directory::{MmapDirectory, RamDirectory};
use murr_table::{Store, StoreOptions};
use proptest::prelude::*;

#[test]
fn readers_see_whole_writes_while_merges_run() {
    let tmp = tempfile::tempdir().expect("temp folder");
    let store = Arc::new(
        Store::open(
            Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
            StoreOptions::default(),
        )
        .expect("opens"),
    );
    let t = store.create_table("t", schema()).expect("creates");
    let keys: Vec<String> = (0..300).map(|i| format!("key-{i}")).collect();
    t.write(&[valued(&keys, 0)]).expect("writes");
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (t, keys, done) = (Arc::clone(&t), keys.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut last = 0;
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) || reads < 10 {
                    let out = t.fetch(&keys, &["n", "tag"]).expect("fetches");
                    let n = ns(&out, 0);
                    let v = n[0].expect("every key has a value");
                    // Every write covers all keys: one fetch sees one write, never a mix.
                    assert!(n.iter().all(|x| *x == Some(v)), "torn read: {n:?}");
                    assert!(
                        strings(&out, 1)
                            .iter()
                            .all(|s| s.as_deref() == Some(format!("t{v}").as_str()))
                    );
                    assert!(v >= last, "went back from {last} to {v}");
                    last = v;
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let merger = {
        let (t, done) = (Arc::clone(&t), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                t.compact().expect("compacts");
            }
        })
    };
    for v in 1..=60 {
        t.write(&[valued(&keys, v)]).expect("writes");
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().expect("reader ok") >= 10);
    }
    merger.join().expect("merger ok");
    t.compact().expect("compacts");
    assert_eq!(t.stats().segments, 1);
    assert_eq!(t.stats().rows, 300);
    assert_eq!(
        ns(&t.fetch(&keys[..1], &["n"]).expect("fetches"), 0),
        [Some(60)]
    );
}

/// A refresh rewrites a table part by part (every key once, new values) while readers fetch
/// keys from every part and merges run: each answer holds, for each part, its old values or its
/// new ones, never a mix, and the parts turn new in the order they were written.
#[test]
fn reads_during_a_refresh_see_whole_writes_in_order() {
    const PARTS: usize = 8;
    const PER: usize = 500;
    let tmp = tempfile::tempdir().expect("temp folder");
    let store = Arc::new(
        Store::open(
            Arc::new(MmapDirectory::open(tmp.path()).expect("opens")),
            StoreOptions::default(),
        )
        .expect("opens"),
    );
    let t = store.create_table("t", schema()).expect("creates");
    let part_keys =
        |p: usize| -> Vec<String> { (p * PER..(p + 1) * PER).map(|i| format!("k{i}")).collect() };
    // The load: version 0 everywhere, in parts as a pipeline writes it.
    for p in 0..PARTS {
        t.write(&[valued(&part_keys(p), 0)]).expect("loads");
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (t, done) = (Arc::clone(&t), Arc::clone(&done));
            std::thread::spawn(move || {
                use rand::{Rng, SeedableRng};
                let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
                let mut newest = 0usize;
                let mut reads = 0;
                while !done.load(Ordering::SeqCst) || reads < 20 {
                    let picks: Vec<usize> =
                        (0..400).map(|_| rng.random_range(0..PARTS * PER)).collect();
                    let keys: Vec<String> = picks.iter().map(|i| format!("k{i}")).collect();
                    let n = ns(&t.fetch(&keys, &["n"]).expect("fetches"), 0);
                    // Per part: Some(true) new (version 1 + part), Some(false) old (0).
                    let mut state = [None::<bool>; PARTS];
                    for (&i, v) in picks.iter().zip(&n) {
                        let p = i / PER;
                        let v = v.expect("every key has a value");
                        let new = if v == 0 {
                            false
                        } else {
                            assert_eq!(v, 1 + p as i64, "key k{i} holds another part's value");
                            true
                        };
                        let seen = state[p].get_or_insert(new);
                        assert_eq!(*seen, new, "part {p} read partly rewritten: {n:?}");
                    }
                    // Parts turn new in order: no new part after an old one.
                    let mut old_seen = false;
                    let mut count = 0;
                    for (p, s) in state.iter().enumerate() {
                        match s {
                            Some(true) => {
                                assert!(!old_seen, "part {p} new after an old one");
                                count = p + 1;
                            }
                            Some(false) => old_seen = true,
                            None => {}
                        }
                    }
                    // And a later read never sees fewer new parts than it could before.
                    if let Some(first_old) = state.iter().position(|s| *s == Some(false)) {
                        assert!(
                            first_old >= newest,
                            "went back: part {first_old} old after {newest} were new"
                        );
                    }
                    newest = newest.max(count);
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let merger = {
        let (t, done) = (Arc::clone(&t), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                t.merge_step().expect("merges");
            }
        })
    };
    for p in 0..PARTS {
        t.write(&[valued(&part_keys(p), 1 + p as i64)])
            .expect("refreshes");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done.store(true, Ordering::SeqCst);
    for r in readers {
        assert!(r.join().expect("reader ok") >= 20);
    }
    merger.join().expect("merger ok");
    t.compact().expect("compacts");
    assert_eq!(t.stats().rows, (PARTS * PER) as u64);
}

#[test]
fn writes_to_one_table_do_not_disturb_another() {
    let store = Arc::new(
        Store::open(Arc::new(RamDirectory::new()), StoreOptions::default()).expect("opens"),
    );
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let name = format!("t{i}");
                let t = store.create_table(&name, schema()).expect("creates");
                for v in 0..30 {
                    t.write(&[valued(&[format!("k{v}")], v + i * 100)])
                        .expect("writes");
                }
                let keys: Vec<String> = (0..30).map(|v| format!("k{v}")).collect();
                let out = t.fetch(&keys, &["n"]).expect("fetches");
                assert_eq!(
                    ns(&out, 0),
                    (0..30).map(|v| Some(v + i * 100)).collect::<Vec<_>>()
                );
            })
        })
        .collect();
    for h in handles {
        h.join().expect("ok");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write(Vec<(u8, i64)>),
    Merge,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0u8..40, any::<i64>()), 0..30).prop_map(Op::Write),
        2 => Just(Op::Merge),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sequence of writes, merges and reopens reads like a map where the last write wins.
    #[test]
    fn behaves_like_a_map(ops in proptest::collection::vec(op(), 1..25)) {
        let dir = Arc::new(RamDirectory::new());
        let opts = StoreOptions { background_merges: false, merge_factor: 2, ..StoreOptions::default() };
        let mut store = Store::open(dir.clone(), opts.clone()).expect("opens");
        store.create_table("t", schema()).expect("creates");
        let mut model: HashMap<String, i64> = HashMap::new();
        let all: Vec<String> = (0..40).map(|k| format!("k{k}")).collect();
        for op in ops {
            match op {
                Op::Write(rows) => {
                    let keys: Vec<String> = rows.iter().map(|(k, _)| format!("k{k}")).collect();
                    // Some scores are null, so batches with and without nulls meet in one segment.
                    let rows_ref: Vec<(&str, Option<f32>, i64, Option<&str>)> = keys
                        .iter()
                        .zip(&rows)
                        .map(|(k, (_, v))| (k.as_str(), (v % 3 != 0).then_some(*v as f32), *v, None))
                        .collect();
                    let (first, second) = rows_ref.split_at(rows_ref.len() / 2);
                    store.write("t", &[batch(first), batch(second)]).expect("writes");
                    for (k, (_, v)) in keys.into_iter().zip(rows) {
                        model.insert(k, v);
                    }
                }
                Op::Merge => { store.table("t").expect("exists").merge_step().expect("merges"); }
                Op::Compact => store.table("t").expect("exists").compact().expect("compacts"),
                Op::Reopen => {
                    drop(store);
                    store = Store::open(dir.clone(), opts.clone()).expect("reopens");
                }
            }
            let out = store.fetch("t", &all, &["n", "score"]).expect("fetches");
            let want: Vec<Option<i64>> = all.iter().map(|k| model.get(k).copied()).collect();
            let scores: Vec<Option<f32>> = want.iter().map(|v| v.filter(|v| v % 3 != 0).map(|v| v as f32)).collect();
            prop_assert_eq!(ns(&out, 0), want);
            prop_assert_eq!(floats(&out, 1), scores);
        }
    }
}

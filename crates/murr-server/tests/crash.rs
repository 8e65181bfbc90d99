//! kill -9 at random moments: the real `murr` binary takes a stream of writes (each one sets
//! its keys to the write's number) while merges run behind them, and is killed with SIGKILL at
//! a random moment, again and again, over one data folder. After each restart every write the
//! client saw acknowledged must read back, and the write in flight at the kill must have landed
//! whole or not at all.
//!
//! `CRASH_CYCLES` sets the number of kills (default 10; `cargo xtask crash` runs 100 against the
//! release build), `CRASH_SEED` the random seed.

#![allow(clippy::disallowed_methods, clippy::print_stderr, reason = "tests")]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Murr;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const KEYS: usize = 2000;
const KEYS_PER_WRITE: usize = 50;

/// What the client knows: the last acknowledged write of each key, and the write in flight.
#[derive(Debug, Default)]
struct Ledger {
    last: Vec<Option<i64>>,
    in_flight: Option<(i64, Vec<usize>)>,
    next: i64,
    acked: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes until a write fails (the server was killed), recording each acknowledgement.
fn write_until_killed(base: &str, ledger: &Mutex<Ledger>, seed: u64) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut rng = SmallRng::seed_from_u64(seed);
    loop {
        let (id, keys) = {
            let mut l = ledger.lock().expect("ledger");
            let id = l.next;
            l.next += 1;
            let mut keys: Vec<usize> =
                rand::seq::index::sample(&mut rng, KEYS, KEYS_PER_WRITE).into_vec();
            keys.sort_unstable();
            l.in_flight = Some((id, keys.clone()));
            (id, keys)
        };
        let ids: Vec<String> = keys.iter().map(|k| format!("k{k}")).collect();
        let body = json!({"columns": {"id": ids, "n": vec![id; keys.len()]}}).to_string();
        let sent = client
            .put(format!("{base}/api/v1/table/t/write"))
            .header("content-type", "application/json")
            .body(body)
            .send();
        match sent {
            Ok(r) if r.status().as_u16() == 200 => {
                let mut l = ledger.lock().expect("ledger");
                for &k in &keys {
                    l.last[k] = Some(id);
                }
                l.in_flight = None;
                l.acked += 1;
            }
            // The kill (or its aftermath): the write in flight may or may not have landed.
            _ => return,
        }
        if id % 25 == 0 {
            // A compaction now and then, so that kills also land inside one.
            let _ = client.post(format!("{base}/api/v1/table/t/compact")).send();
        }
    }
}

/// Checks the table against the ledger; settles the write in flight (landed or not).
fn verify(m: &Murr, ledger: &mut Ledger) -> bool {
    let keys: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
    let (status, body) = m.call(
        "POST",
        "/api/v1/table/t/fetch",
        Some(&json!({"keys": keys, "columns": ["n"]}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    let got: Vec<Option<i64>> = body["columns"]["n"]
        .as_array()
        .expect("values")
        .iter()
        .map(Value::as_i64)
        .collect();
    let in_flight = ledger.in_flight.take();
    let mut landed = 0;
    for (k, value) in got.iter().enumerate() {
        let expected = ledger.last[k];
        let of_in_flight = in_flight
            .as_ref()
            .is_some_and(|(id, keys)| *value == Some(*id) && keys.binary_search(&k).is_ok());
        if of_in_flight {
            landed += 1;
        } else {
            assert_eq!(
                *value, expected,
                "key k{k}: the last acknowledged write was {expected:?}, the table has {value:?}"
            );
        }
    }
    match in_flight {
        Some((id, keys)) => {
            assert!(
                landed == 0 || landed == keys.len(),
                "write {id} is torn: {landed} of its {} keys landed",
                keys.len()
            );
            if landed > 0 {
                for k in keys {
                    ledger.last[k] = Some(id);
                }
            }
            landed > 0
        }
        None => false,
    }
}

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_write() {
    let cycles: usize = env_or("CRASH_CYCLES", 10);
    let seed: u64 = env_or("CRASH_SEED", 17);
    let mut rng = SmallRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().expect("temp folder");
    let data = tmp.path().join("data");
    let started = Instant::now();
    let ledger = Arc::new(Mutex::new(Ledger {
        last: vec![None; KEYS],
        ..Ledger::default()
    }));
    {
        let m = Murr::start(&data, &["--no-grpc"], &[]);
        let schema = r#"{"key": "id", "columns": {"id": {"dtype": "utf8", "nullable": false}, "n": {"dtype": "int64", "nullable": false}}}"#;
        assert_eq!(m.call("PUT", "/api/v1/table/t", Some(schema)).0, 201);
        m.stop();
    }
    let (mut in_flight_kills, mut landed) = (0, 0);
    for cycle in 0..cycles {
        let mut m = Murr::start(&data, &["--no-grpc"], &[]);
        if cycle > 0 && verify(&m, &mut ledger.lock().expect("ledger")) {
            landed += 1;
        }
        let writer = {
            let (base, ledger) = (m.base.clone(), Arc::clone(&ledger));
            let seed = rng.random();
            std::thread::spawn(move || write_until_killed(&base, &ledger, seed))
        };
        std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        m.child.kill().expect("SIGKILL");
        m.child.wait().expect("reaped");
        writer.join().expect("writer");
        if ledger.lock().expect("ledger").in_flight.is_some() {
            in_flight_kills += 1;
        }
    }
    let m = Murr::start(&data, &["--no-grpc"], &[]);
    if verify(&m, &mut ledger.lock().expect("ledger")) {
        landed += 1;
    }
    m.stop();
    let l = ledger.lock().expect("ledger");
    eprintln!(
        "crash loop: {cycles} kills in {:.1} s, {} writes acknowledged, all readable after each restart; \
         {in_flight_kills} kills with a write in flight ({landed} of those landed whole, the rest not at all), 0 torn",
        started.elapsed().as_secs_f64(),
        l.acked,
    );
    assert!(l.acked > 0, "the writer got no write through");
}

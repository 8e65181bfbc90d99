//! The RAM tier on real memory maps: with a budget, a file's resident pages stay under it, the
//! pages the reader keeps touching stay resident, and evicted pages read back unchanged.
//! (Its own test binary: the tier is process-wide.)

#![allow(clippy::disallowed_methods, reason = "tests")]

use std::time::{Duration, Instant};

use murr_directory::residency::{self, CHUNK, Residency, resident_pages_of};
use murr_directory::{Directory, DirectoryExt, FilePath, MmapDirectory};

#[test]
fn the_budget_holds_and_hot_pages_stay() {
    const SIZE: usize = 16 << 20;
    const BUDGET: u64 = 2 << 20;
    Residency::start(BUDGET);
    let tmp = tempfile::tempdir().expect("temp folder");
    let dir = MmapDirectory::open(tmp.path())
        .expect("opens")
        .with_populate(false);
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let path = FilePath::new("t/seg").expect("path");
    dir.write_new(&path, &data).expect("writes");
    let bytes = dir.open(&path).expect("opens");
    // Read it all: every page comes in.
    assert_eq!(&bytes[..], &data[..]);
    assert!(resident_pages_of(&bytes) * 4096 > SIZE / 2, "read in");
    let hot: Vec<usize> = (0..SIZE / CHUNK).step_by(64).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The reader keeps using a few pages.
        for &c in &hot {
            std::hint::black_box(bytes[c * CHUNK]);
        }
        residency::touch_all(hot.iter().map(|&c| bytes[c * CHUNK..].as_ptr()));
        std::thread::sleep(Duration::from_millis(100));
        let stats = Residency::stats();
        if stats.evicted > 0 && resident_pages_of(&bytes) as u64 * 4096 <= BUDGET {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tier keeps to its budget: {stats:?}, resident {} pages",
            resident_pages_of(&bytes)
        );
    }
    // Another sweep while the hot pages are in use: they stay.
    for _ in 0..3 {
        for &c in &hot {
            std::hint::black_box(bytes[c * CHUNK]);
        }
        residency::touch_all(hot.iter().map(|&c| bytes[c * CHUNK..].as_ptr()));
        std::thread::sleep(Residency::period());
    }
    let hot_resident = hot
        .iter()
        .filter(|&&c| resident_pages_of(&bytes[c * CHUNK..c * CHUNK + 1]) == 1)
        .count();
    assert!(
        hot_resident * 10 >= hot.len() * 9,
        "{hot_resident} of {} hot pages resident",
        hot.len()
    );
    // Evicted pages read back as they were.
    assert_eq!(&bytes[..], &data[..]);
}

//! The fuzz targets' committed inputs, replayed: the seed corpus (`fuzz/seeds/<target>/`) and
//! every input a fuzzer found to crash murr (`fuzz/regressions/<target>/`), each of which must
//! now be refused cleanly. Also the seeds as `murr_tests::fuzz::seeds` makes them today, so the
//! generator keeps working when the committed files are old.

#![allow(clippy::print_stderr, reason = "names each input as it is replayed")]

use std::path::{Path, PathBuf};

use murr_tests::fuzz;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `folder`, sorted; none when it does not exist.
fn inputs(folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut count = 0;
    for target in fuzz::TARGETS {
        for file in inputs(&fuzz_dir().join(kind).join(target)) {
            let data = std::fs::read(&file).expect("an input reads");
            eprintln!("{target}: {}", file.display());
            let _accepted = fuzz::run(target, &data);
            count += 1;
        }
    }
    count
}

#[test]
fn every_committed_seed_is_handled() {
    let count = replay("seeds");
    // Every target has seeds: a target without any would fuzz from nothing.
    for target in fuzz::TARGETS {
        assert!(
            !inputs(&fuzz_dir().join("seeds").join(target)).is_empty(),
            "fuzz/seeds/{target} holds no seed (cargo xtask fuzz --seeds writes them)"
        );
    }
    assert!(count >= fuzz::TARGETS.len());
}

#[test]
fn every_crash_found_is_fixed() {
    replay("regressions");
}

#[test]
fn fresh_seeds_are_handled() {
    for target in fuzz::TARGETS {
        let seeds = fuzz::seeds(target);
        assert!(!seeds.is_empty(), "{target} has seeds");
        for (name, data) in seeds {
            assert!(
                fuzz::run(target, &data),
                "{target}'s seed {name} is refused: a seed must be an input murr takes"
            );
        }
    }
}

#[test]
fn every_target_has_a_fuzz_entry_point() {
    let mut declared: Vec<String> = inputs(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .map(|p| {
            p.file_stem()
                .expect("a file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    declared.sort();
    let mut targets: Vec<String> = fuzz::TARGETS.iter().map(|t| (*t).to_owned()).collect();
    targets.sort();
    assert_eq!(
        declared, targets,
        "fuzz/fuzz_targets/ and murr_tests::fuzz::TARGETS agree"
    );
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in fuzz::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{target}\"")),
            "fuzz/Cargo.toml declares {target}"
        );
    }
}

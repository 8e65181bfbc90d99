//! Fuzz target `write_parquet`: see `murr_tests::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: murr_tests::fuzz::panic_hook(), |data: &[u8]| {
    murr_tests::fuzz::run("write_parquet", data);
});

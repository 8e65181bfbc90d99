//! Fuzz target `fetch_json`: see `murr_tests::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(init: murr_tests::fuzz::panic_hook(), |data: &[u8]| {
    murr_tests::fuzz::run("fetch_json", data);
});

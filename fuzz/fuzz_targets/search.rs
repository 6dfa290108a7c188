#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| samizdat::fuzz::search(data));

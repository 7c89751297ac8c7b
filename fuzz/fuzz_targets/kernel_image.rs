//! `loader::parse_image` on any bytes: never panics, and a recognised image covers at
//! least the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::parse_image;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = parse_image(data) {
        assert!(info.effective_size >= data.len() as u64);
    }
});
